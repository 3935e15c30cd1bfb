/*
 * The sync ledger (see sync_ledger.h and docs/SYNC.md): the segmenter that
 * joins outbox, store, egress and segment writer, the segment table, HQ's
 * receipts and mailbox, and the figures `outpost status` shows. Tables:
 * schema/migrations/0007_sync.sql.
 *
 * Ordering that makes crashes harmless: a spool file is renamed into place
 * before the row that names it commits (a file without a row is deleted at
 * open); a receipt's acknowledgement commits before the file is unlinked
 * (a file of an acknowledged segment is deleted at open); a row whose file
 * is gone is dropped together with every later unacknowledged segment and
 * the segmented cursor rewinds to its start, so the range is segmented
 * again under a new number. Segment numbers are never reused.
 */
#include "sync_ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "db.h"
#include "egress.h"
#include "entity.h"
#include "node_policy.h"
#include "outbox.h"
#include "policy.h"
#include "residency.h"
#include "policy_change.h"
#include "segment.h"
#include "store.h"
#include "sync_mac.h"

#define LEDGER_SPOOL_MAX_DEFAULT (256ull * 1024 * 1024)
/* outbox rows read per batch while building a segment: bounds memory */
#define LEDGER_BATCH 128
/* compressed bytes per record assumed for the ETA before any segment */
#define LEDGER_BPR_DEFAULT 100.0
/* the largest receipt or mailbox answer parsed */
#define LEDGER_JSON_MAX (4u * 1024 * 1024)

struct sync_ledger {
    struct store *s;
    struct policy *p;
    unsigned char pkey[EGRESS_KEY_BYTES];
    struct node_credentials cred;
    char db_path[1024];
    char spool_dir[1024];
    char policy_file[1024]; /* "" unless given explicitly */
    uint64_t segment_bytes, spool_max;
    uint32_t schema_version;
    int64_t (*clock)(void *ctx); /* wall-clock ms since the epoch */
    void *clock_ctx;
    struct sync_ledger_news news; /* for the caller to log (sync_ledger_take_news) */
};

/* The sync_state row. */
struct lstate {
    int64_t seg_u, seg_o, ack_u, ack_o;
    uint64_t next_no;
    char blocked[256], blocked_kind[16], blocked_policy[POLICY_HASH_HEX];
    int spool_full;
    double bpr, goodput;
    int64_t last_sync_ms, bytes_day, bytes_today;
    char last_error[256];
    uint64_t mailbox_after, spool_cap;
    int64_t spool_epoch;
    char policy_hash[POLICY_HASH_HEX];
};

static int64_t real_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const struct sync_ledger *l)
{
    return l->clock(l->clock_ctx);
}

static int sql_fail(sqlite3 *db, int rc, const char *what, struct op_error *err)
{
    return op_error_set(err, db_errno(rc), NULL, "%s: %s", what, sqlite3_errmsg(db));
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                struct op_error *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(db, rc, what, err);
    return 0;
}

/* Steps a statement that returns no row and finalizes it. */
static int done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct op_error *err)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sql_fail(db, rc, what, err);
    return 0;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int has_table(sqlite3 *db, const char *name, int *out, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", &st,
                  "cannot read the schema", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the schema", err);
    *out = rc == SQLITE_ROW;
    return 0;
}

static int load_state(sqlite3 *db, struct lstate *o, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT segmented_urgent, segmented_ordinary, acked_urgent, acked_ordinary, "
                  "next_segment, blocked, blocked_kind, blocked_policy, spool_full, "
                  "bytes_per_record, goodput_bps, last_sync_ms, bytes_day, bytes_today, "
                  "last_error, mailbox_after, spool_cap, spool_epoch, policy_hash "
                  "FROM sync_state WHERE id = 1",
                  &st, "cannot read the sync state", err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return op_error_set(err, -EPROTO, "sync_state", "the sync_state row is missing");
        return sql_fail(db, rc, "cannot read the sync state", err);
    }
    memset(o, 0, sizeof *o);
    o->seg_u = sqlite3_column_int64(st, 0);
    o->seg_o = sqlite3_column_int64(st, 1);
    o->ack_u = sqlite3_column_int64(st, 2);
    o->ack_o = sqlite3_column_int64(st, 3);
    o->next_no = (uint64_t)sqlite3_column_int64(st, 4);
    copy_col(o->blocked, sizeof o->blocked, st, 5);
    copy_col(o->blocked_kind, sizeof o->blocked_kind, st, 6);
    copy_col(o->blocked_policy, sizeof o->blocked_policy, st, 7);
    o->spool_full = sqlite3_column_int(st, 8);
    o->bpr = sqlite3_column_double(st, 9);
    o->goodput = sqlite3_column_double(st, 10);
    o->last_sync_ms = sqlite3_column_int64(st, 11);
    o->bytes_day = sqlite3_column_int64(st, 12);
    o->bytes_today = sqlite3_column_int64(st, 13);
    copy_col(o->last_error, sizeof o->last_error, st, 14);
    o->mailbox_after = (uint64_t)sqlite3_column_int64(st, 15);
    o->spool_cap = (uint64_t)sqlite3_column_int64(st, 16);
    o->spool_epoch = sqlite3_column_int64(st, 17);
    copy_col(o->policy_hash, sizeof o->policy_hash, st, 18);
    sqlite3_finalize(st);
    return 0;
}

static void row_to_segment(sqlite3_stmt *st, struct sync_segment *out)
{
    memset(out, 0, sizeof *out);
    out->no = (uint64_t)sqlite3_column_int64(st, 0);
    out->from_urgent = (uint64_t)sqlite3_column_int64(st, 1);
    out->from_ordinary = (uint64_t)sqlite3_column_int64(st, 2);
    out->to_urgent = (uint64_t)sqlite3_column_int64(st, 3);
    out->to_ordinary = (uint64_t)sqlite3_column_int64(st, 4);
    out->bytes = (uint64_t)sqlite3_column_int64(st, 5);
    out->records = (uint64_t)sqlite3_column_int64(st, 6);
    out->state = sqlite3_column_int(st, 7);
    copy_col(out->path, sizeof out->path, st, 8);
    copy_col(out->upload_url, sizeof out->upload_url, st, 9);
    out->created_ms = sqlite3_column_int64(st, 10);
}

#define SEGMENT_COLS                                                                               \
    "no, from_urgent, from_ordinary, to_urgent, to_ordinary, bytes, records, state, path, "        \
    "upload_url, created_ms"

/* Segment `no`: 1 and *out, or 0 when there is no such row. */
static int get_segment(sqlite3 *db, uint64_t no, struct sync_segment *out, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT " SEGMENT_COLS " FROM sync_segments WHERE no = ?1", &st,
                  "cannot read the segment table", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_to_segment(st, out);
        sqlite3_finalize(st);
        return 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the segment table", err);
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Removes a spool file; a missing file is fine (the step is idempotent). */
static void unlink_spool(struct sync_ledger *l, const char *path)
{
    if (path[0] && unlink(path) == 0)
        (void)fsync_dir(l->spool_dir);
}

/* ---- reconciling spool and table ------------------------------------------- */

struct scan_ctx {
    struct sync_ledger *l;
    struct op_error *err;
};

/* A complete file in the spool: keep it only if a row still needs it. */
static int on_spool_file(void *vctx, uint64_t no, const char *path)
{
    struct scan_ctx *c = vctx;
    struct sync_segment seg;
    int rc = get_segment(store_db(c->l->s), no, &seg, c->err);
    if (rc < 0)
        return rc;
    if (rc == 0 || seg.state == SYNC_SEG_ACKED || seg.state == SYNC_SEG_REJECTED) {
        if (unlink(path) < 0 && errno != ENOENT)
            return op_error_set(c->err, -errno, "spool", "cannot delete %s: %s", path,
                                strerror(errno));
    }
    return 0;
}

/* Drops every unacknowledged segment from `first` on and rewinds the
 * segmented cursor to where `first` began. One transaction. */
static int drop_from(struct sync_ledger *l, const struct sync_segment *first, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    int rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    rc = prep(db, "DELETE FROM sync_segments WHERE no >= ?1 AND state IN (0, 1)", &st,
              "cannot drop segments", err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)first->no);
        rc = done(db, st, "cannot drop segments", err);
    }
    if (rc == 0)
        rc = prep(db,
                  "UPDATE sync_state SET segmented_urgent = ?1, segmented_ordinary = ?2 "
                  "WHERE id = 1",
                  &st, "cannot rewind the segmented cursor", err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)first->from_urgent);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)first->from_ordinary);
        rc = done(db, st, "cannot rewind the segmented cursor", err);
    }
    if (rc < 0) {
        store_rollback(l->s);
        return rc;
    }
    return store_commit(l->s, err);
}

static int reconcile(struct sync_ledger *l, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    /* 1. rows without their file: the first such row and everything after
     *    it is segmented again (later files then have no row: step 2). */
    sqlite3_stmt *st;
    int rc =
        prep(db, "SELECT " SEGMENT_COLS " FROM sync_segments WHERE state IN (0, 1) ORDER BY no",
             &st, "cannot read the segment table", err);
    if (rc < 0)
        return rc;
    struct sync_segment seg, missing;
    int found = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_to_segment(st, &seg);
        struct stat sb;
        if (stat(seg.path, &sb) < 0 && errno == ENOENT) {
            missing = seg;
            found = 1;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the segment table", err);
    if (found) {
        rc = drop_from(l, &missing, err);
        if (rc < 0)
            return rc;
    }
    /* 2. .tmp files, files without a row, files of finished segments. */
    struct scan_ctx c = {l, err};
    rc = segment_spool_scan(l->spool_dir, on_spool_file, &c, err);
    return rc < 0 ? rc : 0;
}

/* ---- open / close / policy ------------------------------------------------- */

static int set_blocked(struct sync_ledger *l, const char *kind, const char *why,
                       const char *policy_hash, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc = prep(db,
                  "UPDATE sync_state SET blocked = ?1, blocked_kind = ?2, blocked_policy = ?3 "
                  "WHERE id = 1",
                  &st, "cannot record why sync is blocked", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, why, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, policy_hash, -1, SQLITE_STATIC);
    return done(db, st, "cannot record why sync is blocked", err);
}

int sync_ledger_open(const struct sync_ledger_options *o, struct sync_ledger **out,
                     struct op_error *err)
{
    if (!o || !o->db_path || !o->spool_dir || !o->cred)
        return op_error_set(err, -EINVAL, NULL, "sync ledger: db_path, spool_dir and cred needed");
    struct sync_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc = 0;
    if (snprintf(l->db_path, sizeof l->db_path, "%s", o->db_path) >= (int)sizeof l->db_path ||
        snprintf(l->spool_dir, sizeof l->spool_dir, "%s", o->spool_dir) >=
            (int)sizeof l->spool_dir ||
        snprintf(l->policy_file, sizeof l->policy_file, "%s",
                 o->policy_file ? o->policy_file : "") >= (int)sizeof l->policy_file) {
        rc = op_error_set(err, -ENAMETOOLONG, NULL, "sync ledger: path too long");
        goto fail;
    }
    l->cred = *o->cred;
    l->segment_bytes = o->segment_bytes ? o->segment_bytes : SEGMENT_TARGET_BYTES;
    l->spool_max = o->spool_max_bytes ? o->spool_max_bytes : LEDGER_SPOOL_MAX_DEFAULT;
    l->clock = o->now_ms ? o->now_ms : real_clock;
    l->clock_ctx = o->clock_ctx;

    rc = store_open(l->db_path, 0, &l->s, err);
    if (rc < 0)
        goto fail;
    store_set_actor(l->s, "sync", NULL);
    const char *region = store_region(l->s);
    if (!region) {
        rc = op_error_set(err, -EINVAL, "region", "%s is not initialized; run 'outpost init'",
                          l->db_path);
        goto fail;
    }
    if (strcmp(region, l->cred.region)) {
        char why[256];
        snprintf(why, sizeof why, "credentials are for region %s, but this node is in %s",
                 l->cred.region, region);
        (void)set_blocked(l, "region", why, "", NULL);
        rc = op_error_set(err, -EINVAL, "region", "%s", why);
        goto fail;
    }
    rc = node_policy_load(l->policy_file, l->db_path, region, &l->p, err);
    if (rc < 0)
        goto fail;
    rc = store_pseudonym_key(l->s, l->pkey, err);
    if (rc < 0)
        goto fail;
    int v = 0;
    rc = db_schema_version(store_db(l->s), &v);
    if (rc < 0) {
        op_error_set(err, rc, NULL, "cannot read the schema version of %s", l->db_path);
        goto fail;
    }
    l->schema_version = (uint32_t)v;
    if (mkdir(l->spool_dir, 0700) < 0 && errno != EEXIST) {
        rc = op_error_set(err, -errno, "spool_dir", "cannot create spool directory %s: %s",
                          l->spool_dir, strerror(errno));
        goto fail;
    }

    /* Record who we are for `outpost status`; a region block is over. */
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    rc = prep(db,
              "UPDATE sync_state SET node_id = ?1, region = ?2, spool_cap = ?3, "
              "blocked = CASE blocked_kind WHEN 'region' THEN '' ELSE blocked END, "
              "blocked_kind = CASE blocked_kind WHEN 'region' THEN '' ELSE blocked_kind END "
              "WHERE id = 1",
              &st, "cannot record the sync state", err);
    if (rc < 0)
        goto fail;
    sqlite3_bind_text(st, 1, l->cred.node_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, l->cred.region, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)l->spool_max);
    rc = done(db, st, "cannot record the sync state", err);
    if (rc < 0)
        goto fail;
    rc = reconcile(l, err);
    if (rc == 0)
        rc = residency_sweep(l->s, err); /* voided files another process could not empty */
    if (rc < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    sync_ledger_close(l);
    return rc;
}

void sync_ledger_close(struct sync_ledger *l)
{
    if (!l)
        return;
    store_close(l->s);
    policy_free(l->p);
    explicit_bzero(l->pkey, sizeof l->pkey);
    explicit_bzero(&l->cred, sizeof l->cred);
    free(l);
}

int sync_ledger_reload_policy(struct sync_ledger *l, struct op_error *err)
{
    struct policy *np = NULL;
    int rc = node_policy_load(l->policy_file, l->db_path, store_region(l->s), &np, err);
    if (rc < 0)
        return rc;
    policy_free(l->p);
    l->p = np;
    struct lstate s;
    rc = load_state(store_db(l->s), &s, err);
    if (rc < 0)
        return rc;
    if (strcmp(s.blocked_kind, "rejected") || !strcmp(s.blocked_policy, np->hash))
        return 0;
    /* A new policy: segment again from the acknowledged cursor; spooled
     * segments were cut under the old one. */
    sqlite3 *db = store_db(l->s);
    rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    rc = prep(db, "DELETE FROM sync_segments WHERE state IN (0, 1)", &st, "cannot drop segments",
              err);
    if (rc == 0)
        rc = done(db, st, "cannot drop segments", err);
    if (rc == 0)
        rc = prep(db,
                  "UPDATE sync_state SET segmented_urgent = acked_urgent, segmented_ordinary = "
                  "acked_ordinary, blocked = '', blocked_kind = '', blocked_policy = '' "
                  "WHERE id = 1",
                  &st, "cannot unblock sync", err);
    if (rc == 0)
        rc = done(db, st, "cannot unblock sync", err);
    if (rc < 0) {
        store_rollback(l->s);
        return rc;
    }
    rc = store_commit(l->s, err);
    if (rc < 0)
        return rc;
    struct scan_ctx c = {l, err};
    rc = segment_spool_scan(l->spool_dir, on_spool_file, &c, err);
    return rc < 0 ? rc : 0;
}

/* ---- segmenting ------------------------------------------------------------ */

static int spool_usage(sqlite3 *db, uint64_t *bytes, uint64_t *segments, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT coalesce(sum(bytes), 0), count(*) FROM sync_segments "
                  "WHERE state IN (0, 1)",
                  &st, "cannot measure the spool", err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *bytes = (uint64_t)sqlite3_column_int64(st, 0);
        *segments = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sql_fail(db, rc, "cannot measure the spool", err);
    return 0;
}

/* Outbox rows not yet in a segment. */
static int unsegmented(sqlite3 *db, int64_t su, int64_t so, int64_t *n, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT (SELECT count(*) FROM outbox WHERE priority < 2 AND seq > ?1) + "
                  "(SELECT count(*) FROM outbox WHERE priority = 2 AND seq > ?2)",
                  &st, "cannot read the outbox", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, su);
    sqlite3_bind_int64(st, 2, so);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sql_fail(db, rc, "cannot read the outbox", err);
    return 0;
}

static int set_spool_full(struct sync_ledger *l, int full, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc = prep(db, "UPDATE sync_state SET spool_full = ?1 WHERE id = 1", &st,
                  "cannot record the spool state", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int(st, 1, full);
    return done(db, st, "cannot record the spool state", err);
}

/* Whether HQ may hold the record: put in a recorded segment, or in the
 * one being cut (which HQ applies in order). */
static int hq_may_have(struct sync_ledger *l, const struct residency_sent *sent, const char *entity,
                       const char *id, int *out, struct op_error *err)
{
    if (residency_sent_has(sent, entity, id)) {
        *out = 1;
        return 0;
    }
    return residency_hq_may_have(l->s, entity, id, out, err);
}

/* Adds one outbox row's record (or tombstone) to the segment. A tombstone
 * (erase, purge, withdraw, and the delete of a record) goes only for a
 * record HQ may hold: of a record it never received, HQ hears nothing. */
static int add_row(struct sync_ledger *l, struct segment_writer *w, const struct outbox_row *r,
                   struct residency_sent *sent, struct egress_counts *counts, struct op_error *err)
{
    const struct entity_def *e = entity_by_name(r->entity);
    if (!e)
        return op_error_set(err, -EPROTO, "entity", "outbox row %lld: unknown entity '%s'",
                            (long long)r->seq, r->entity);
    struct egress_record *er = NULL;
    int rc, has = 0;
    if (!strcmp(r->op, "erase") || !strcmp(r->op, "purge")) {
        rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
        if (rc < 0 || !has)
            return rc;
        enum egress_op op = r->op[0] == 'e' ? EGRESS_OP_ERASE : EGRESS_OP_PURGE;
        rc = egress_tombstone(l->p, e, r->record_id, r->version, op, &er, err);
        if (rc < 0)
            return rc;
    } else {
        json_t *rec = NULL;
        rc = store_get(l->s, e, r->record_id, STORE_INCLUDE_DELETED, &rec, err);
        if (rc == -ENOENT)
            return 0; /* gone: nothing to send */
        if (rc < 0)
            return rc;
        if (egress_expired(l->p, e, rec, now_ms(l)) != 0) {
            /* Past its retention (or not judgeable: fail closed): treated
             * as purged, whether or not the purge has run yet. */
            rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
            if (rc == 0 && has)
                rc = egress_tombstone(l->p, e, r->record_id,
                                      (int64_t)json_integer_value(json_object_get(rec, "version")),
                                      EGRESS_OP_PURGE, &er, err);
            json_decref(rec);
            if (rc < 0 || !er)
                return rc;
            rc = segment_writer_add(w, er, err);
            egress_record_free(er);
            return rc;
        }
        json_t *del = json_object_get(rec, "deleted");
        if (json_is_true(del) || (json_is_integer(del) && json_integer_value(del))) {
            /* a deleted record HQ never had: nothing to tell it */
            rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
            if (rc < 0 || !has) {
                json_decref(rec);
                return rc;
            }
        }
        enum residency_verdict v = RESIDENCY_KEEP;
        rc = residency_judge(l->s, l->p, e, rec, &v, err);
        if (rc == 0 && v != RESIDENCY_WITHHOLD) {
            residency_apply(v, rec);
            rc = egress_project(l->p, l->pkey, e, rec, &er, counts, err);
        }
        if (rc == 0 && !er) {
            /* Withheld now (restricted, pinned, about a withheld record):
             * HQ must drop what it holds, if it holds anything. */
            rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
            if (rc == 0 && has) {
                json_int_t ver = json_integer_value(json_object_get(rec, "version"));
                rc = egress_tombstone(l->p, e, r->record_id, (int64_t)ver, EGRESS_OP_WITHDRAW, &er,
                                      err);
            }
        } else if (rc == 0 && er) {
            rc = residency_sent_add(sent, e->name, r->record_id);
            if (rc < 0)
                op_error_set(err, rc, NULL, "out of memory");
        }
        json_decref(rec);
        if (rc < 0 || !er) {
            egress_record_free(er);
            return rc;
        }
    }
    rc = segment_writer_add(w, er, err);
    egress_record_free(er);
    return rc;
}

/* The cursor after rows[0..i] (processed in order, each lane's seqs
 * increasing as outbox_next_batch returns them), if stopping there leaves
 * no earlier row of a lane unprocessed; else 0. */
static int cursor_after(const struct outbox_row *rows, size_t n, size_t i,
                        const struct outbox_cursor *from, struct outbox_cursor *out)
{
    struct outbox_cursor c = *from;
    for (size_t k = 0; k <= i; k++) {
        int64_t *lane = rows[k].priority < OUTBOX_ORDINARY ? &c.urgent : &c.ordinary;
        if (rows[k].seq > *lane)
            *lane = rows[k].seq;
    }
    for (size_t k = i + 1; k < n; k++) {
        int64_t lane = rows[k].priority < OUTBOX_ORDINARY ? c.urgent : c.ordinary;
        if (rows[k].seq <= lane)
            return 0;
    }
    *out = c;
    return 1;
}

/* -ESTALE when a voiding committed since `epoch` was read: the segment may
 * hold values that may no longer leave. */
static int check_epoch(struct sync_ledger *l, int64_t epoch, struct op_error *err)
{
    struct lstate now;
    int rc = load_state(store_db(l->s), &now, err);
    if (rc < 0)
        return rc;
    if (now.spool_epoch != epoch)
        return op_error_set(err, -ESTALE, "spool",
                            "the spool was voided while a segment was cut; cutting again");
    return 0;
}

static int record_segment(struct sync_ledger *l, const struct sync_segment *sg,
                          const struct outbox_cursor *to, double bpr, int64_t epoch,
                          const struct residency_sent *sent, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    int rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    rc = check_epoch(l, epoch, err);
    if (rc == 0)
        rc = residency_sent_record(l->s, sent, sg->no, err);
    if (rc < 0) {
        store_rollback(l->s);
        return rc;
    }
    sqlite3_stmt *st;
    rc = prep(db,
              "INSERT INTO sync_segments (no, from_urgent, from_ordinary, to_urgent, to_ordinary, "
              "bytes, records, state, path, policy_hash, created_ms) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10)",
              &st, "cannot record the segment", err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)sg->no);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)sg->from_urgent);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)sg->from_ordinary);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)sg->to_urgent);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)sg->to_ordinary);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)sg->bytes);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)sg->records);
        sqlite3_bind_text(st, 8, sg->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, l->p->hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 10, sg->created_ms);
        rc = done(db, st, "cannot record the segment", err);
    }
    if (rc == 0)
        rc = prep(db,
                  "UPDATE sync_state SET segmented_urgent = ?1, segmented_ordinary = ?2, "
                  "next_segment = ?3, bytes_per_record = ?4 WHERE id = 1",
                  &st, "cannot advance the segmented cursor", err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, to->urgent);
        sqlite3_bind_int64(st, 2, to->ordinary);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(sg->no + 1));
        sqlite3_bind_double(st, 4, bpr);
        rc = done(db, st, "cannot advance the segmented cursor", err);
    }
    if (rc < 0) {
        store_rollback(l->s);
        return rc;
    }
    return store_commit(l->s, err);
}

/* The spool reached its cap (full = 1) or is below it again (-1). */
static void note_spool(struct sync_ledger *l, int full, uint64_t bytes, uint64_t segments)
{
    l->news.spool = full;
    l->news.spool_bytes = bytes;
    l->news.spool_segments = segments;
    l->news.spool_cap = l->spool_max;
}

static int cut_segment(struct sync_ledger *l, int *made, struct sync_segment *out,
                       struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    struct lstate s;
    int rc = load_state(db, &s, err);
    if (rc < 0)
        return rc;
    if (s.blocked[0]) {
        *made = 0;
        return 0;
    }
    uint64_t spool_bytes = 0, spool_segs = 0;
    rc = spool_usage(db, &spool_bytes, &spool_segs, err);
    if (rc < 0)
        return rc;
    if (spool_bytes >= l->spool_max) {
        if (!s.spool_full) {
            rc = set_spool_full(l, 1, err);
            if (rc < 0)
                return rc;
            note_spool(l, 1, spool_bytes, spool_segs);
        }
        *made = 0;
        return 0;
    }
    if (s.spool_full) {
        rc = set_spool_full(l, 0, err);
        if (rc < 0)
            return rc;
        note_spool(l, -1, spool_bytes, spool_segs);
    }
    int64_t pending = 0;
    rc = unsegmented(db, s.seg_u, s.seg_o, &pending, err);
    if (rc < 0)
        return rc;
    if (pending == 0) {
        *made = 0;
        return 0;
    }

    struct segment_info hdr;
    memset(&hdr, 0, sizeof hdr);
    snprintf(hdr.node_id, sizeof hdr.node_id, "%s", l->cred.node_id);
    hdr.from_urgent = (uint64_t)s.seg_u;
    hdr.from_ordinary = (uint64_t)s.seg_o;
    hdr.schema_version = l->schema_version;
    snprintf(hdr.policy_hash, sizeof hdr.policy_hash, "%s", l->p->hash);
    hdr.created_ms = now_ms(l);
    struct segment_writer *w = NULL;
    rc = segment_writer_new(&hdr, l->cred.hq_key, l->spool_dir, s.next_no, &w, err);
    if (rc < 0)
        return rc;

    struct outbox_row *rows = malloc(LEDGER_BATCH * sizeof *rows);
    struct residency_sent *sent = NULL;
    if (!rows || residency_sent_new(&sent) < 0) {
        free(rows);
        segment_writer_abort(w);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    struct outbox_cursor cur = {s.seg_u, s.seg_o};
    struct egress_counts counts;
    memset(&counts, 0, sizeof counts);
    int full = 0;
    while (!full) {
        size_t n = 0;
        struct outbox_cursor covered;
        rc = outbox_next_batch(l->s, &cur, LEDGER_BATCH, rows, &n, &covered, err);
        if (rc < 0)
            goto fail;
        if (n == 0)
            break;
        for (size_t i = 0; i < n && !full; i++) {
            rc = add_row(l, w, &rows[i], sent, &counts, err);
            if (rc < 0)
                goto fail;
            if (segment_writer_compressed_bytes(w) >= l->segment_bytes) {
                if (i + 1 == n)
                    full = 1; /* covered below */
                else if (cursor_after(rows, n, i, &cur, &cur))
                    full = 2;
            }
        }
        if (full != 2)
            cur = covered;
    }
    free(rows);
    rows = NULL;

    struct sync_segment sg;
    memset(&sg, 0, sizeof sg);
    struct segment_info info;
    rc = segment_writer_finish(w, (uint64_t)cur.urgent, (uint64_t)cur.ordinary, &counts, sg.path,
                               sizeof sg.path, &info, err);
    w = NULL;
    if (rc < 0) {
        residency_sent_free(sent);
        return rc;
    }
    struct stat sb;
    if (stat(sg.path, &sb) < 0) {
        rc = op_error_set(err, -errno, "spool", "cannot stat %s: %s", sg.path, strerror(errno));
        unlink_spool(l, sg.path);
        residency_sent_free(sent);
        return rc;
    }
    sg.no = s.next_no;
    sg.from_urgent = (uint64_t)s.seg_u;
    sg.from_ordinary = (uint64_t)s.seg_o;
    sg.to_urgent = (uint64_t)cur.urgent;
    sg.to_ordinary = (uint64_t)cur.ordinary;
    sg.bytes = (uint64_t)sb.st_size;
    sg.records = info.records;
    sg.state = SYNC_SEG_SPOOLED;
    sg.created_ms = info.created_ms;
    double bpr = s.bpr;
    if (sg.records > 0) {
        double sample = (double)sg.bytes / (double)sg.records;
        bpr = bpr > 0 ? 0.7 * bpr + 0.3 * sample : sample;
    }
    rc = record_segment(l, &sg, &cur, bpr, s.spool_epoch, sent, err);
    residency_sent_free(sent);
    if (rc < 0) {
        unlink_spool(l, sg.path); /* a file without its row */
        return rc;
    }
    *made = 1;
    *out = sg;
    return 0;
fail:
    free(rows);
    residency_sent_free(sent);
    segment_writer_abort(w);
    return rc;
}

/* The policy in force may have changed since the last segment (SIGHUP, or
 * another process such as `outpost policy accept`): cut under the one in
 * force, and if its hash is not the one the spool was cut under, void the
 * spool and queue every record again (residency_policy_changed). A policy
 * that does not load stops segmenting: fail closed. */
static int follow_policy(struct sync_ledger *l, struct op_error *err)
{
    struct policy *np = NULL;
    int rc = node_policy_load(l->policy_file, l->db_path, store_region(l->s), &np, err);
    if (rc < 0)
        return rc;
    if (strcmp(np->hash, l->p->hash)) {
        policy_free(l->p);
        l->p = np;
    } else {
        policy_free(np);
    }
    struct lstate s;
    rc = load_state(store_db(l->s), &s, err);
    if (rc < 0 || !strcmp(s.policy_hash, l->p->hash))
        return rc;
    char why[160];
    snprintf(why, sizeof why, "the policy in force changed to %.16s", l->p->hash);
    int changed = 0;
    rc = residency_policy_changed(l->s, l->p->hash, why, &changed, err);
    if (rc == 0 && changed) {
        if (!l->news.policy_now[0])
            snprintf(l->news.policy_was, sizeof l->news.policy_was, "%s", s.policy_hash);
        snprintf(l->news.policy_now, sizeof l->news.policy_now, "%s", l->p->hash);
    }
    return rc;
}

int sync_ledger_make_segment(struct sync_ledger *l, int *made, struct sync_segment *out,
                             struct op_error *err)
{
    *made = 0;
    /* Files voided by another process that could not empty them. */
    int rc = residency_sweep(l->s, err);
    if (rc < 0)
        return rc;
    rc = follow_policy(l, err);
    if (rc < 0)
        return rc;
    for (int attempt = 0;; attempt++) {
        rc = cut_segment(l, made, out, err);
        if (rc != -ESTALE || attempt == 2)
            return rc;
    }
}

/* ---- uploads --------------------------------------------------------------- */

int sync_ledger_next_upload(struct sync_ledger *l, int *found, struct sync_segment *out,
                            struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    struct lstate s;
    int rc = load_state(db, &s, err);
    if (rc < 0)
        return rc;
    if (s.blocked[0]) {
        /* Nothing goes after a rejected segment: an ack of a later one
         * would acknowledge the rejected range too. */
        *found = 0;
        return 0;
    }
    sqlite3_stmt *st;
    rc = prep(db,
              "SELECT " SEGMENT_COLS " FROM sync_segments WHERE state IN (0, 1) "
              "ORDER BY no LIMIT 1",
              &st, "cannot read the segment table", err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_to_segment(st, out);
        *found = 1;
    } else if (rc == SQLITE_DONE) {
        *found = 0;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the segment table", err);
    return 0;
}

/* Updates segment `no` if it is still waiting to be uploaded. */
static int update_pending(struct sync_ledger *l, uint64_t no, const char *sql, const char *text,
                          const char *what, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc = prep(db, sql, &st, what, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, now_ms(l));
    rc = done(db, st, what, err);
    if (rc < 0)
        return rc;
    if (sqlite3_changes(db) == 0)
        return op_error_set(err, -ENOENT, "segment",
                            "segment %" PRIu64 " is not waiting to be uploaded", no);
    return 0;
}

int sync_ledger_set_upload_url(struct sync_ledger *l, uint64_t no, const char *url,
                               struct op_error *err)
{
    if (!url || strlen(url) >= sizeof((struct sync_segment *)0)->upload_url)
        return op_error_set(err, -EINVAL, "upload_url", "upload URL missing or too long");
    return update_pending(l, no,
                          "UPDATE sync_segments SET upload_url = ?2 WHERE no = ?1 AND "
                          "state IN (0, 1)",
                          url, "cannot record the upload URL", err);
}

int sync_ledger_mark_uploaded(struct sync_ledger *l, uint64_t no, struct op_error *err)
{
    return update_pending(l, no,
                          "UPDATE sync_segments SET state = 1, uploaded_ms = ?2 WHERE no = ?1 "
                          "AND state IN (0, 1)",
                          NULL, "cannot mark the segment uploaded", err);
}

/* ---- receipts -------------------------------------------------------------- */

static int get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* A receipt for a voided segment: HQ settled it before the node could stop
 * it (a restriction came after its last byte). Its range is being cut
 * again, so the cursor stays; HQ may hold its records (egress_sent kept
 * them), so withdraws follow for what is withheld now; there is nothing
 * left to terminate. */
static int forget_voided(struct sync_ledger *l, uint64_t no, int *voided, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc = prep(db, "DELETE FROM spool_voided WHERE no = ?1", &st,
                  "cannot forget a voided segment", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    rc = done(db, st, "cannot forget a voided segment", err);
    if (rc == 0)
        *voided = sqlite3_changes(db) > 0;
    return rc;
}

int sync_ledger_apply_receipt(struct sync_ledger *l, uint64_t no, const char *json, size_t len,
                              int *outcome, struct op_error *err)
{
    if (len > LEDGER_JSON_MAX)
        return op_error_set(err, -EBADMSG, "receipt",
                            "receipt for segment %" PRIu64 " is %zu bytes, over the cap", no, len);
    json_error_t je;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(r)) {
        json_decref(r);
        return op_error_set(err, -EBADMSG, "receipt", "receipt is not a JSON object: %s", je.text);
    }
    int rc;
    const char *node = json_string_value(json_object_get(r, "node"));
    const char *status = json_string_value(json_object_get(r, "status"));
    const char *mac = json_string_value(json_object_get(r, "mac"));
    const char *reason = json_string_value(json_object_get(r, "reason"));
    json_t *to = json_object_get(r, "to");
    uint64_t segno = 0, to_u = 0, to_o = 0;
    char want[SYNC_MAC_HEX];
    struct sync_segment seg;
    if (!node || strcmp(node, l->cred.node_id)) {
        rc = op_error_set(err, -EBADMSG, "node", "receipt is for node '%s', not this node",
                          node ? node : "");
        goto out;
    }
    if (get_u64(r, "segment", &segno) < 0 || segno != no) {
        rc = op_error_set(err, -EBADMSG, "segment", "receipt is not for segment %" PRIu64, no);
        goto out;
    }
    if (!status || (strcmp(status, "applied") && strcmp(status, "rejected"))) {
        rc = op_error_set(err, -EBADMSG, "status",
                          "receipt status '%s' is neither applied nor rejected",
                          status ? status : "");
        goto out;
    }
    if (!json_is_object(to) || get_u64(to, "urgent", &to_u) < 0 ||
        get_u64(to, "ordinary", &to_o) < 0) {
        rc = op_error_set(err, -EBADMSG, "to", "receipt has no valid to.urgent and to.ordinary");
        goto out;
    }
    if (!mac || sync_receipt_mac(l->cred.hq_key, node, segno, status, to_u, to_o, want) < 0 ||
        !sync_mac_equal(mac, want)) {
        rc = op_error_set(err, -EBADMSG, "mac",
                          "receipt MAC does not verify under this node's HQ key");
        goto out;
    }
    rc = get_segment(store_db(l->s), no, &seg, err);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        int voided = 0;
        rc = forget_voided(l, no, &voided, err);
        if (rc == 0 && !voided)
            rc = op_error_set(err, -ENOENT, "segment", "no segment %" PRIu64 " in the ledger", no);
        if (rc == 0)
            *outcome = SYNC_SEG_VOIDED;
        goto out;
    }
    if (seg.to_urgent != to_u || seg.to_ordinary != to_o) {
        rc = op_error_set(err, -EBADMSG, "to",
                          "receipt range (%" PRIu64 ", %" PRIu64 ") is not segment %" PRIu64
                          "'s (%" PRIu64 ", %" PRIu64 ")",
                          to_u, to_o, no, seg.to_urgent, seg.to_ordinary);
        goto out;
    }
    int applied = !strcmp(status, "applied");
    if (seg.state == SYNC_SEG_ACKED || seg.state == SYNC_SEG_REJECTED) {
        /* a replay: harmless, but it must agree */
        if ((seg.state == SYNC_SEG_ACKED) != applied) {
            rc = op_error_set(err, -EBADMSG, "status",
                              "receipt says %s, but the segment was settled otherwise", status);
            goto out;
        }
        unlink_spool(l, seg.path);
        *outcome = seg.state;
        rc = 0;
        goto out;
    }

    sqlite3 *db = store_db(l->s);
    int64_t now = now_ms(l);
    rc = store_begin(l->s, err);
    if (rc < 0)
        goto out;
    sqlite3_stmt *st;
    if (applied) {
        struct outbox_cursor upto = {(int64_t)to_u, (int64_t)to_o};
        rc = outbox_ack(l->s, &upto, now, err);
        if (rc == 0)
            rc = prep(db, "UPDATE sync_segments SET state = 2, acked_ms = ?2 WHERE no = ?1", &st,
                      "cannot mark the segment acknowledged", err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
            sqlite3_bind_int64(st, 2, now);
            rc = done(db, st, "cannot mark the segment acknowledged", err);
        }
        if (rc == 0)
            rc = prep(db,
                      "UPDATE sync_state SET acked_urgent = max(acked_urgent, ?1), "
                      "acked_ordinary = max(acked_ordinary, ?2), last_sync_ms = ?3 WHERE id = 1",
                      &st, "cannot advance the acknowledged cursor", err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)to_u);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)to_o);
            sqlite3_bind_int64(st, 3, now);
            rc = done(db, st, "cannot advance the acknowledged cursor", err);
        }
    } else {
        char why[256];
        snprintf(why, sizeof why, "segment %" PRIu64 " rejected by HQ: %.200s", no,
                 reason && *reason ? reason : "(no reason given)");
        rc =
            prep(db, "UPDATE sync_segments SET state = 3, reason = ?2, acked_ms = ?3 WHERE no = ?1",
                 &st, "cannot mark the segment rejected", err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
            sqlite3_bind_text(st, 2, reason ? reason : "", -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, now);
            rc = done(db, st, "cannot mark the segment rejected", err);
        }
        if (rc == 0)
            rc = set_blocked(l, "rejected", why, l->p->hash, err);
    }
    if (rc < 0) {
        store_rollback(l->s);
        goto out;
    }
    rc = store_commit(l->s, err);
    if (rc < 0)
        goto out;
    unlink_spool(l, seg.path);
    *outcome = applied ? SYNC_SEG_ACKED : SYNC_SEG_REJECTED;
out:
    json_decref(r);
    return rc;
}

/* ---- voided uploads ---------------------------------------------------------- */

int sync_ledger_next_voided(struct sync_ledger *l, int *found, uint64_t *no, char *url,
                            size_t url_cap, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT no, upload_url FROM spool_voided WHERE upload_url != '' ORDER BY no "
                  "LIMIT 1",
                  &st, "cannot read the voided segments", err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    *found = 0;
    if (rc == SQLITE_ROW) {
        const char *u = (const char *)sqlite3_column_text(st, 1);
        *no = (uint64_t)sqlite3_column_int64(st, 0);
        if (!u || strlen(u) >= url_cap) {
            sqlite3_finalize(st);
            return op_error_set(err, -ENAMETOOLONG, "upload_url",
                                "voided segment %" PRIu64 ": upload URL too long", *no);
        }
        snprintf(url, url_cap, "%s", u);
        *found = 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the voided segments", err);
    return 0;
}

int sync_ledger_forget_voided(struct sync_ledger *l, uint64_t no, struct op_error *err)
{
    int voided = 0;
    return forget_voided(l, no, &voided, err);
}

/* ---- mailbox --------------------------------------------------------------- */

int sync_ledger_mailbox_after(struct sync_ledger *l, uint64_t *after, struct op_error *err)
{
    struct lstate s;
    int rc = load_state(store_db(l->s), &s, err);
    if (rc < 0)
        return rc;
    *after = s.mailbox_after;
    return 0;
}

/* A policy took effect on the node (a policy from HQ that loosened
 * nothing): from now on the ledger segments under it, and nothing
 * segmented under the old rules may leave. A failed reload is not fatal
 * here: the caller reports *policy_changed and the uplink reloads (and
 * logs) as after SIGHUP. */
static int policy_took_effect(struct sync_ledger *l, const char *why, struct op_error *err)
{
    struct policy *np = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    if (node_policy_load(l->policy_file, l->db_path, store_region(l->s), &np, &e2) == 0) {
        policy_free(l->p);
        l->p = np;
    }
    /* Nothing cut under the old rules may leave; every record is cut
     * again under the ones in force (the segmenter also checks this before
     * every segment, in case the reload above failed). */
    return residency_policy_changed(l->s, l->p->hash, why, NULL, err);
}

/* A policy message from HQ (docs/REGION_POLICY.md, "Policies from HQ"),
 * judged against the policy in force now: one that loosens nothing is
 * written as policy-override.yaml and, when that puts it in force,
 * recorded in the policy ledger (*took_effect = 1); one that loosens
 * anything waits as `pending` for a person at the node; one that does not
 * load for our region is `refused`. Any valid one supersedes older pending
 * ones. Runs inside the mailbox transaction; the override is written
 * before it commits (a crash in between re-reads the message, and an
 * identical policy is then the one in force). */
static int apply_policy_msg(struct sync_ledger *l, uint64_t seq, const char *body, size_t len,
                            const char **status, char *reason, size_t cap, int *took_effect,
                            struct sync_ledger_news *pending, struct op_error *err)
{
    const char *region = store_region(l->s);
    *took_effect = 0;
    /* The policy in force on disk (an acceptance at the node may be newer
     * than our copy); if it cannot be read, the one we enforce. */
    struct policy *cur = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    if (node_policy_load(l->policy_file, l->db_path, region, &cur, &e2) < 0)
        cur = NULL;
    const struct policy *in_force = cur ? cur : l->p;
    struct policy_offer o;
    int rc = policy_change_judge(in_force, seq, body, len, &o, err);
    if (rc == 0 && o.verdict != POLICY_OFFER_REFUSED)
        rc = policy_change_supersede(l->s, seq, err);
    if (rc < 0)
        goto out;
    if (o.verdict != POLICY_OFFER_REFUSED)
        pending->pending_seq = 0; /* superseded */
    snprintf(reason, cap, "%s", o.reason);
    switch (o.verdict) {
    case POLICY_OFFER_REFUSED:
        *status = "refused";
        break;
    case POLICY_OFFER_SAME:
        *status = "applied";
        break;
    case POLICY_OFFER_PENDING:
        *status = "pending";
        pending->pending_seq = seq;
        snprintf(pending->pending_hash, sizeof pending->pending_hash, "%s", o.hash);
        pending->pending_loosens = o.loosens;
        break;
    case POLICY_OFFER_APPLY: {
        *status = "applied";
        rc = policy_change_write_override(l->db_path, body, len, err);
        if (rc < 0)
            goto out;
        struct policy *now = NULL;
        op_error_clear(&e2);
        if (node_policy_load(l->policy_file, l->db_path, region, &now, &e2) == 0 &&
            !strcmp(now->hash, o.hash)) {
            rc = policy_change_record(l->s, POLICY_CHANGE_AUTO, POLICY_CHANGE_AUTO_ACTOR,
                                      in_force->hash, o.hash, seq, o.reason, err);
            *took_effect = rc == 0;
        } else if (now) {
            snprintf(reason, cap,
                     "written to %s, but not in force: %.400s names the policy the node obeys",
                     NODE_POLICY_OVERRIDE, now->path);
        } else {
            snprintf(reason, cap, "written to %s, but the policy in force cannot be read: %.400s",
                     NODE_POLICY_OVERRIDE, e2.msg);
        }
        policy_free(now);
        break;
    }
    }
out:
    policy_free(cur);
    return rc;
}

int sync_ledger_mailbox_store(struct sync_ledger *l, const char *json, size_t len,
                              int *policy_changed, struct op_error *err)
{
    if (len > LEDGER_JSON_MAX)
        return op_error_set(err, -EBADMSG, "mailbox", "mailbox answer is %zu bytes, over the cap",
                            len);
    json_error_t je;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    json_t *msgs = json_object_get(r, "messages");
    int rc = 0;
    if (!json_is_object(r) || !json_is_array(msgs)) {
        rc = op_error_set(err, -EBADMSG, "messages", "mailbox answer has no messages array%s%s",
                          r ? "" : ": ", r ? "" : je.text);
        goto out;
    }
    uint64_t after = 0;
    rc = sync_ledger_mailbox_after(l, &after, err);
    if (rc < 0)
        goto out;
    /* Verify everything before storing anything. */
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        uint64_t seq = 0;
        const char *kind = json_string_value(json_object_get(m, "kind"));
        json_t *jb = json_object_get(m, "body");
        const char *body = json_string_value(jb);
        const char *mac = json_string_value(json_object_get(m, "mac"));
        char want[SYNC_MAC_HEX];
        if (!json_is_object(m) || get_u64(m, "seq", &seq) < 0 || !kind || !body || !mac) {
            rc = op_error_set(err, -EBADMSG, "messages",
                              "mailbox message %zu lacks seq, kind, body or mac", i);
            goto out;
        }
        if (sync_mailbox_mac(l->cred.hq_key, l->cred.node_id, seq, kind, body,
                             json_string_length(jb), want) < 0 ||
            !sync_mac_equal(mac, want)) {
            rc = op_error_set(err, -EBADMSG, "mac",
                              "mailbox message %" PRIu64 ": MAC does not verify", seq);
            goto out;
        }
    }
    sqlite3 *db = store_db(l->s);
    int64_t now = now_ms(l);
    uint64_t last = after;
    int changed = 0;
    struct sync_ledger_news pending; /* news once the transaction commits */
    memset(&pending, 0, sizeof pending);
    rc = store_begin(l->s, err);
    if (rc < 0)
        goto out;
    json_array_foreach(msgs, i, m)
    {
        uint64_t seq = 0;
        (void)get_u64(m, "seq", &seq);
        if (seq <= after)
            continue; /* stored before */
        const char *kind = json_string_value(json_object_get(m, "kind"));
        json_t *jb = json_object_get(m, "body");
        const char *created = json_string_value(json_object_get(m, "created_at"));
        const char *status = "pending";
        char reason[POLICY_CHANGE_SUMMARY_MAX] = "";
        if (!strcmp(kind, "policy")) {
            int took = 0;
            rc = apply_policy_msg(l, seq, json_string_value(jb), json_string_length(jb), &status,
                                  reason, sizeof reason, &took, &pending, err);
            if (rc < 0)
                break;
            changed |= took;
        } else if (strcmp(kind, "reference") && strcmp(kind, "aggregate_request")) {
            status = "refused";
            snprintf(reason, sizeof reason, "unknown message kind '%.64s'", kind);
        }
        sqlite3_stmt *st;
        rc = prep(db,
                  "INSERT OR IGNORE INTO mailbox (seq, kind, created_at, body, status, reason, "
                  "received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                  &st, "cannot store a mailbox message", err);
        if (rc < 0)
            break;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, created ? created : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, json_string_value(jb), (int)json_string_length(jb), SQLITE_STATIC);
        sqlite3_bind_text(st, 5, status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, now);
        rc = done(db, st, "cannot store a mailbox message", err);
        if (rc < 0)
            break;
        if (seq > last)
            last = seq;
    }
    if (rc == 0) {
        sqlite3_stmt *st;
        rc = prep(db, "UPDATE sync_state SET mailbox_after = ?1 WHERE id = 1", &st,
                  "cannot advance the mailbox cursor", err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)last);
            rc = done(db, st, "cannot advance the mailbox cursor", err);
        }
    }
    if (rc < 0) {
        store_rollback(l->s);
        goto out;
    }
    rc = store_commit(l->s, err);
    if (rc == 0 && pending.pending_seq) {
        l->news.pending_seq = pending.pending_seq;
        memcpy(l->news.pending_hash, pending.pending_hash, sizeof l->news.pending_hash);
        l->news.pending_loosens = pending.pending_loosens;
    }
    if (rc == 0 && changed)
        rc = policy_took_effect(l, "a policy from HQ took effect", err);
    if (rc == 0)
        *policy_changed = changed;
out:
    json_decref(r);
    return rc;
}

/* ---- link statistics and status --------------------------------------------- */

int sync_ledger_note_link(struct sync_ledger *l, const struct sync_link_report *r,
                          struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    struct lstate s;
    int rc = load_state(db, &s, err);
    if (rc < 0)
        return rc;
    int64_t now = now_ms(l);
    int64_t day = now / 86400000;
    int64_t today = (s.bytes_day == day ? s.bytes_today : 0) + (int64_t)r->bytes_sent;
    double goodput = s.goodput;
    if (r->bytes_confirmed > 0 && r->duration_ms > 0) {
        double sample = (double)r->bytes_confirmed * 1000.0 / (double)r->duration_ms;
        goodput = goodput > 0 ? 0.7 * goodput + 0.3 * sample : sample;
    }
    rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    rc = prep(db,
              "UPDATE sync_state SET goodput_bps = ?1, bytes_day = ?2, bytes_today = ?3, "
              "last_error = coalesce(?4, last_error) WHERE id = 1",
              &st, "cannot record link statistics", err);
    char last[256];
    if (rc == 0) {
        sqlite3_bind_double(st, 1, goodput);
        sqlite3_bind_int64(st, 2, day);
        sqlite3_bind_int64(st, 3, today);
        if (r->error_kind) {
            snprintf(last, sizeof last, "%.31s: %s", r->error_kind,
                     r->error_msg ? r->error_msg : "");
            sqlite3_bind_text(st, 4, last, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(st, 4);
        }
        rc = done(db, st, "cannot record link statistics", err);
    }
    if (rc == 0 && r->error_kind) {
        rc = prep(db,
                  "INSERT INTO sync_errors (kind, n, last_ms, last) VALUES (?1, 1, ?2, ?3) "
                  "ON CONFLICT (kind) DO UPDATE SET n = n + 1, last_ms = ?2, last = ?3",
                  &st, "cannot count a sync error", err);
        if (rc == 0) {
            char kind[32];
            snprintf(kind, sizeof kind, "%s", r->error_kind);
            sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, now);
            sqlite3_bind_text(st, 3, r->error_msg ? r->error_msg : "", -1, SQLITE_STATIC);
            rc = done(db, st, "cannot count a sync error", err);
        }
    }
    if (rc < 0) {
        store_rollback(l->s);
        return rc;
    }
    return store_commit(l->s, err);
}

/* Fills out from the database: the outbox, and the ledger's tables if this
 * database has them. */
/* now: wall-clock ms, for the UTC day of bytes_today. */
static int fill_status(struct store *s, int64_t now, struct sync_status *out, struct op_error *err)
{
    sqlite3 *db = store_db(s);
    memset(out, 0, sizeof *out);
    out->eta_s = -1;
    int rc = outbox_stats(s, &out->outbox_depth, &out->oldest_unsent_ms, err);
    if (rc < 0)
        return rc;
    int have = 0;
    rc = has_table(db, "sync_state", &have, err);
    if (rc < 0 || !have)
        return rc;
    struct lstate st;
    rc = load_state(db, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *q;
    rc = prep(db, "SELECT node_id, region FROM sync_state WHERE id = 1", &q,
              "cannot read the sync state", err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW) {
        copy_col(out->node_id, sizeof out->node_id, q, 0);
        copy_col(out->region, sizeof out->region, q, 1);
    }
    sqlite3_finalize(q);
    out->enabled = out->node_id[0] != '\0';
    rc = spool_usage(db, &out->spool_bytes, &out->spool_segments, err);
    if (rc < 0)
        return rc;
    out->spool_cap = st.spool_cap;
    out->spool_full = st.spool_full;
    out->acked_urgent = (uint64_t)st.ack_u;
    out->acked_ordinary = (uint64_t)st.ack_o;
    out->next_segment = st.next_no;
    out->last_sync_ms = st.last_sync_ms;
    out->goodput_bps = st.goodput;
    out->bytes_today = st.bytes_day == now / 86400000 ? (uint64_t)st.bytes_today : 0;
    snprintf(out->blocked, sizeof out->blocked, "%s", st.blocked);
    /* A database outpostd has not migrated yet has no such column: not
     * waiting, as far as anyone recorded. */
    if (sqlite3_prepare_v2(db, "SELECT waiting FROM sync_state WHERE id = 1", -1, &q, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            copy_col(out->waiting, sizeof out->waiting, q, 0);
        sqlite3_finalize(q);
    }
    snprintf(out->last_error, sizeof out->last_error, "%s", st.last_error);
    out->mailbox_after = st.mailbox_after;
    rc = prep(db,
              "SELECT coalesce(sum(state = 2), 0), coalesce(sum(state = 3), 0) "
              "FROM sync_segments",
              &q, "cannot read the segment table", err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW) {
        out->segments_acked = (uint64_t)sqlite3_column_int64(q, 0);
        out->segments_rejected = (uint64_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    rc = prep(db, "SELECT kind, n FROM sync_errors ORDER BY n DESC, kind LIMIT 16", &q,
              "cannot read the sync errors", err);
    if (rc < 0)
        return rc;
    while (out->nerrors < 16 && sqlite3_step(q) == SQLITE_ROW) {
        struct sync_error_count *e = &out->errors[out->nerrors++];
        copy_col(e->kind, sizeof e->kind, q, 0);
        e->n = (uint64_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    int64_t pending = 0;
    rc = unsegmented(db, st.seg_u, st.seg_o, &pending, err);
    if (rc < 0)
        return rc;
    double todo =
        (double)out->spool_bytes + (double)pending * (st.bpr > 0 ? st.bpr : LEDGER_BPR_DEFAULT);
    if (todo <= 0)
        out->eta_s = 0;
    else if (st.goodput > 0)
        out->eta_s = todo / st.goodput;
    return 0;
}

int sync_ledger_set_waiting(struct sync_ledger *l, const char *why, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc = prep(db, "UPDATE sync_state SET waiting = ?1 WHERE id = 1 AND waiting <> ?1", &st,
                  "cannot record why sync waits", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, why ? why : "", -1, SQLITE_TRANSIENT);
    return done(db, st, "cannot record why sync waits", err);
}

void sync_ledger_take_news(struct sync_ledger *l, struct sync_ledger_news *out)
{
    *out = l->news;
    memset(&l->news, 0, sizeof l->news);
}

int sync_ledger_status(struct sync_ledger *l, struct sync_status *out, struct op_error *err)
{
    struct sync_status s;
    int rc = fill_status(l->s, now_ms(l), &s, err);
    if (rc < 0)
        return rc;
    s.enabled = 1;
    snprintf(s.node_id, sizeof s.node_id, "%s", l->cred.node_id);
    snprintf(s.region, sizeof s.region, "%s", l->cred.region);
    s.spool_cap = l->spool_max;
    *out = s;
    return 0;
}

int sync_ledger_status_db(const char *db_path, struct sync_status *out, struct op_error *err)
{
    struct store *s = NULL;
    int rc = store_open(db_path, DB_OPEN_READONLY, &s, err);
    if (rc < 0)
        return rc;
    struct sync_status st;
    rc = fill_status(s, real_clock(NULL), &st, err);
    store_close(s);
    if (rc < 0)
        return rc;
    *out = st;
    return 0;
}
