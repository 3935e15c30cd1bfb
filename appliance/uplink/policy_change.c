/*
 * Policies from HQ: judged against the policy in force, applied by
 * themselves when they loosen nothing, kept pending otherwise, accepted by
 * hash, and recorded (contract in policy_change.h). The override file is
 * written before the rows that say so commit, and acceptance holds the
 * database's write lock from reading the pending row to its commit, so a
 * policy message the daemon stores meanwhile cannot slip between the two.
 */
#include "policy_change.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fsutil.h"
#include "node_policy.h"
#include "policy_diff.h"
#include "sql.h"
#include "store.h"
#include "uplink_queries.h"

/* A statement failed to prepare: its errno (err has the message). */
static int get_failed(const struct op_error *err)
{
    return err && err->code ? err->code : -EIO;
}

/* Binds the uplink's queries to s for one call; the caller closes them. */
static int bind_queries(struct store *s, struct sql_cache *c, struct op_error *err)
{
    return store_queries_bind(s, c, &uplink_queries, err);
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* ---- loading and writing policy text -------------------------------------- */

int policy_change_load_text(const char *name, const char *region, const char *text, size_t len,
                            struct policy **out, struct op_error *err)
{
    if (len > NODE_POLICY_MAX_BYTES)
        return op_error_set(err, -EFBIG, "(file)", "%s: larger than %d bytes", name,
                            NODE_POLICY_MAX_BYTES);
    return policy_load_buffer_for(name, region, text, len, out, err);
}

int policy_change_load_file(const char *path, const char *region, struct policy **out,
                            struct op_error *err)
{
    return policy_load_file_for(path, region, out, err);
}

int policy_change_write_override(const char *db_path, const char *text, size_t len,
                                 struct op_error *err)
{
    char path[1024], tmp[1100];
    if (node_policy_override_path(db_path, path, sizeof path) < 0 ||
        snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
        return op_error_set(err, -ENAMETOOLONG, "policy_file", "database path too long");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return op_error_set(err, -errno, "policy_file", "cannot create %s: %s", tmp,
                            strerror(errno));
    int rc = 0;
    size_t off = 0;
    if (fchmod(fd, 0640) < 0)
        rc = -errno;
    while (rc == 0 && off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        else
            off += (size_t)n;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        (void)unlink(tmp);
        return op_error_set(err, rc, "policy_file", "cannot write %s: %s", path, strerror(-rc));
    }
    char dir[1024];
    fsutil_dir_of(path, dir, sizeof dir);
    rc = fsutil_fsync_dir(dir, NULL);
    if (rc < 0)
        return op_error_set(err, rc, "policy_file", "cannot sync %s: %s", dir, strerror(-rc));
    return 0;
}

/* ---- judging an offer ----------------------------------------------------- */

int policy_change_judge(const struct policy *in_force, uint64_t seq, const char *text, size_t len,
                        struct policy_offer *out, struct op_error *err)
{
    memset(out, 0, sizeof *out);
    char name[64];
    snprintf(name, sizeof name, "policy message %" PRIu64 " from HQ", seq);
    struct policy *p = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    int rc = policy_change_load_text(name, in_force->region, text, len, &p, &e2);
    if (rc == -ENOMEM)
        return op_error_set(err, rc, NULL, "out of memory");
    if (rc < 0) {
        out->verdict = POLICY_OFFER_REFUSED;
        snprintf(out->reason, sizeof out->reason, "not a valid policy for region %s: %.900s",
                 in_force->region, e2.msg);
        return 0;
    }
    snprintf(out->hash, sizeof out->hash, "%s", p->hash);
    if (!strcmp(p->hash, in_force->hash)) {
        policy_free(p);
        out->verdict = POLICY_OFFER_SAME;
        snprintf(out->reason, sizeof out->reason, "the policy in force already");
        return 0;
    }
    struct policy_diff *d = NULL;
    rc = policy_diff(in_force, p, &d, err);
    policy_free(p);
    if (rc < 0)
        return rc;
    out->loosens = d->loosens;
    out->tightens = d->tightens;
    out->verdict = d->loosens ? POLICY_OFFER_PENDING : POLICY_OFFER_APPLY;
    policy_diff_summary(d, out->reason, sizeof out->reason);
    policy_diff_free(d);
    return 0;
}

/* ---- the ledger and the mailbox rows ------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int record(struct sql_cache *c, const char *kind, const char *actor, const char *old_hash,
                  const char *new_hash, uint64_t seq, const char *summary, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(c, UPLINK_Q_POLICY_CHANGE_RECORD, err);
    if (!st)
        return get_failed(err);
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, old_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, new_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)seq);
    sqlite3_bind_text(st, 7, summary, -1, SQLITE_STATIC);
    int rc = sql_run(c, UPLINK_Q_POLICY_CHANGE_RECORD, st, err);
    return rc < 0 ? rc : 0;
}

int policy_change_record(struct store *s, const char *kind, const char *actor, const char *old_hash,
                         const char *new_hash, uint64_t seq, const char *summary,
                         struct op_error *err)
{
    struct sql_cache c;
    int rc = bind_queries(s, &c, err);
    if (rc < 0)
        return rc;
    rc = record(&c, kind, actor, old_hash, new_hash, seq, summary, err);
    sql_cache_close(&c);
    return rc;
}

int policy_change_supersede(struct store *s, uint64_t seq, struct op_error *err)
{
    struct sql_cache c;
    int rc = bind_queries(s, &c, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&c, UPLINK_Q_POLICY_CHANGE_SUPERSEDE, err);
    if (!st) {
        rc = get_failed(err);
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        rc = sql_run(&c, UPLINK_Q_POLICY_CHANGE_SUPERSEDE, st, err);
    }
    sql_cache_close(&c);
    return rc < 0 ? rc : 0;
}

void policy_pending_done(struct policy_pending *p)
{
    if (!p)
        return;
    free(p->text);
    policy_free(p->p);
    p->text = NULL;
    p->p = NULL;
}

static int read_pending(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    struct policy_pending *out = ctx;
    out->seq = (uint64_t)sqlite3_column_int64(st, 0);
    copy_col(out->created_at, sizeof out->created_at, st, 1);
    out->received_ms = sqlite3_column_int64(st, 2);
    copy_col(out->reason, sizeof out->reason, st, 3);
    const void *body = sqlite3_column_blob(st, 4);
    out->len = (size_t)sqlite3_column_bytes(st, 4);
    out->text = malloc(out->len + 1);
    if (!out->text)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (out->len)
        memcpy(out->text, body, out->len);
    out->text[out->len] = '\0';
    return 1;
}

int policy_change_pending(struct store *s, struct policy_pending *out, int *found,
                          struct op_error *err)
{
    memset(out, 0, sizeof *out);
    *found = 0;
    struct sql_cache c;
    int rc = bind_queries(s, &c, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&c, UPLINK_Q_POLICY_CHANGE_PENDING, err);
    rc = st ? sql_each(&c, UPLINK_Q_POLICY_CHANGE_PENDING, st, read_pending, out, err)
            : get_failed(err);
    sql_cache_close(&c);
    if (rc <= 0)
        return rc;
    *found = 1;
    const char *region = store_region(s);
    char name[64];
    snprintf(name, sizeof name, "policy message %" PRIu64 " from HQ", out->seq);
    struct op_error e2;
    op_error_clear(&e2);
    if (!region)
        snprintf(out->load_error, sizeof out->load_error, "the node has no region");
    else if (policy_change_load_text(name, region, out->text, out->len, &out->p, &e2) < 0)
        snprintf(out->load_error, sizeof out->load_error, "%s", e2.msg);
    return 0;
}

struct ledger_walk {
    policy_ledger_fn cb;
    void *ctx;
};

static int ledger_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct ledger_walk *w = ctx;
    struct policy_ledger_entry e = {
        .at_ms = sqlite3_column_int64(st, 0),
        .actor = (const char *)sqlite3_column_text(st, 1),
        .kind = (const char *)sqlite3_column_text(st, 2),
        .old_hash = (const char *)sqlite3_column_text(st, 3),
        .new_hash = (const char *)sqlite3_column_text(st, 4),
        .seq = (uint64_t)sqlite3_column_int64(st, 5),
        .summary = (const char *)sqlite3_column_text(st, 6),
    };
    return w->cb(w->ctx, &e);
}

static int walk_ledger(struct sql_cache *c, unsigned limit, policy_ledger_fn cb, void *ctx,
                       uint64_t *total, struct op_error *err)
{
    sqlite3_stmt *st;
    int64_t n = 0;
    int rc = sql_get_st(c, UPLINK_Q_POLICY_CHANGE_LEDGER_COUNT, &st, err);
    if (rc == 0)
        rc = sql_one_int64(c, UPLINK_Q_POLICY_CHANGE_LEDGER_COUNT, st,
                           "cannot read the policy ledger", &n, 1, err);
    if (rc == 0)
        rc = sql_get_st(c, UPLINK_Q_POLICY_CHANGE_LEDGER_ROWS, &st, err);
    if (rc < 0)
        return rc;
    *total = (uint64_t)n;
    /* the row just before the newest `limit`; none (all rows) for 0 */
    sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : INT64_MAX);
    struct ledger_walk w = {cb, ctx};
    return sql_each(c, UPLINK_Q_POLICY_CHANGE_LEDGER_ROWS, st, ledger_row, &w, err);
}

int policy_change_ledger(struct store *s, unsigned limit, policy_ledger_fn cb, void *ctx,
                         uint64_t *total, struct op_error *err)
{
    struct sql_cache c;
    int rc = bind_queries(s, &c, err);
    if (rc < 0)
        return rc;
    rc = walk_ledger(&c, limit, cb, ctx, total, err);
    sql_cache_close(&c);
    return rc;
}

/* ---- acceptance --------------------------------------------------------------- */

static int hash_text(const char *in, char *out)
{
    size_t n = strlen(in);
    if (n != POLICY_HASH_HEX - 1)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)in[i]))
            return -EINVAL;
        out[i] = (char)tolower((unsigned char)in[i]);
    }
    out[n] = '\0';
    return 0;
}

/* Everything after store_begin: the caller rolls back on failure. */
static int accept_locked(struct store *s, const char *db_path, const char *explicit_file,
                         const char *want, const char *actor, struct policy_accept *out,
                         struct op_error *err)
{
    struct policy_pending pp;
    int found = 0;
    int rc = policy_change_pending(s, &pp, &found, err);
    if (rc < 0)
        return rc;
    struct policy *cur = NULL;
    struct policy_diff *d = NULL;
    if (!found) {
        rc = op_error_set(err, -ENOENT, "pending",
                          "no policy from HQ waits for acceptance (outpost policy show)");
        goto out;
    }
    if (!pp.p) {
        rc = op_error_set(err, -EINVAL, "hash", "%s", pp.load_error);
        goto out;
    }
    if (strcmp(pp.p->hash, want)) {
        rc = op_error_set(err, -ENOENT, "hash",
                          "no pending policy from HQ has hash %s; the one waiting (policy "
                          "message %" PRIu64 ") is %s",
                          want, pp.seq, pp.p->hash);
        goto out;
    }
    rc = node_policy_load(explicit_file, db_path, store_region(s), &cur, err);
    if (rc < 0)
        goto out;
    rc = policy_diff(cur, pp.p, &d, err);
    if (rc < 0)
        goto out;
    memset(out, 0, sizeof *out);
    out->seq = pp.seq;
    snprintf(out->old_hash, sizeof out->old_hash, "%s", cur->hash);
    snprintf(out->new_hash, sizeof out->new_hash, "%s", pp.p->hash);
    out->loosens = d->loosens;
    out->tightens = d->tightens;
    policy_diff_summary(d, out->summary, sizeof out->summary);
    if (node_policy_override_path(db_path, out->path, sizeof out->path) < 0) {
        rc = op_error_set(err, -ENAMETOOLONG, "policy_file", "database path too long");
        goto out;
    }
    rc = policy_change_write_override(db_path, pp.text, pp.len, err);
    if (rc < 0)
        goto out;
    struct sql_cache c;
    rc = bind_queries(s, &c, err);
    if (rc < 0)
        goto out;
    sqlite3_stmt *st = sql_get(&c, UPLINK_Q_POLICY_CHANGE_ACCEPT, err);
    if (!st) {
        rc = get_failed(err);
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)pp.seq);
        sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
        rc = sql_run(&c, UPLINK_Q_POLICY_CHANGE_ACCEPT, st, err);
    }
    if (rc >= 0)
        rc = record(&c, POLICY_CHANGE_ACCEPTED, actor, out->old_hash, out->new_hash, pp.seq,
                    out->summary, err);
    sql_cache_close(&c);
out:
    policy_diff_free(d);
    policy_free(cur);
    policy_pending_done(&pp);
    return rc;
}

int policy_change_accept(struct store *s, const char *db_path, const char *explicit_file,
                         const char *hash, const char *actor, struct policy_accept *out,
                         struct op_error *err)
{
    char want[POLICY_HASH_HEX];
    if (hash_text(hash, want) < 0)
        return op_error_set(err, -EINVAL, "hash",
                            "'%.80s' is not a policy hash (64 hex digits, as 'outpost policy "
                            "show' prints it)",
                            hash);
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    struct policy_accept res;
    rc = accept_locked(s, db_path, explicit_file, want, actor, &res, err);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    rc = store_commit(s, err);
    if (rc < 0)
        return rc;
    *out = res;
    return 0;
}
