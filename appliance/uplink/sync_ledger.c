/*
 * The sync ledger (see sync_ledger.h and docs/SYNC.md): opening the node
 * database for sync, reloading the policy, and reconciling spool and
 * segment table after a restart. The other concerns live in the ledger_*
 * modules (sync_ledger_int.h). Tables: schema/migrations/0007_sync.sql.
 *
 * Ordering that makes crashes harmless: a spool file is renamed into place
 * before the row that names it commits (a file without a row is deleted at
 * open); a receipt's acknowledgement commits before the file is unlinked
 * (a file of an acknowledged segment is deleted at open); a row whose file
 * is gone is dropped together with every later unacknowledged segment and
 * the segmented cursor rewinds to its start, so the range is segmented
 * again under a new number. Segment numbers are never reused.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_policy.h"
#include "residency.h"
#include "segment.h"

/* ---- reconciling spool and table ----------------------------------------- */

struct scan_ctx {
    struct sync_ledger *l;
    struct op_error *err;
};

/* A complete file in the spool: keep it only if a row still needs it. */
static int on_spool_file(void *vctx, uint64_t no, const char *path)
{
    struct scan_ctx *c = vctx;
    struct sync_segment seg;
    int rc = ledger_get_segment(&c->l->q, no, &seg, c->err);
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
    int rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_SYNC_LEDGER_DROP_FROM, err);
    if (!st) {
        rc = err && err->code ? err->code : -EIO;
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)first->no);
        rc = sql_run(&l->q, UPLINK_Q_SYNC_LEDGER_DROP_FROM, st, err);
    }
    if (rc >= 0) {
        st = sql_get(&l->q, UPLINK_Q_SYNC_LEDGER_REWIND_CURSOR, err);
        if (!st) {
            rc = err && err->code ? err->code : -EIO;
        } else {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)first->from_urgent);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)first->from_ordinary);
            rc = sql_run(&l->q, UPLINK_Q_SYNC_LEDGER_REWIND_CURSOR, st, err);
        }
    }
    return ledger_end_tx(l, rc, err);
}

/* The first unsettled row whose file is gone: 1 with it in *ctx. */
static int find_missing(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct sync_segment *seg = ctx;
    ledger_row_to_segment(st, seg);
    struct stat sb;
    return stat(seg->path, &sb) < 0 && errno == ENOENT;
}

static int reconcile(struct sync_ledger *l, struct op_error *err)
{
    /* 1. rows without their file: the first such row and everything after
     *    it is segmented again (later files then have no row: step 2). */
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_SYNC_LEDGER_UNSETTLED_SEGMENTS, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    struct sync_segment missing;
    int rc =
        sql_each(&l->q, UPLINK_Q_SYNC_LEDGER_UNSETTLED_SEGMENTS, st, find_missing, &missing, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
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

/* The schema version the segments are stamped with. */
static int schema_version(struct sync_ledger *l, uint32_t *out, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_SYNC_LEDGER_SCHEMA_VERSION, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    int rc = sql_step(&l->q, UPLINK_Q_SYNC_LEDGER_SCHEMA_VERSION, st, err);
    if (rc < 0)
        return rc;
    *out = rc ? (uint32_t)sqlite3_column_int(st, 0) : 0;
    if (rc)
        sqlite3_reset(st);
    return 0;
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
    l->pace = o->pace;
    l->first_ms = o->first_segment_ms;
    l->hold_ms = o->hold_ms;
    l->clock = o->now_ms ? o->now_ms : ledger_real_clock;
    l->clock_ctx = o->clock_ctx;

    rc = store_open(l->db_path, 0, &l->s, err);
    if (rc == 0)
        rc = store_queries_bind(l->s, &l->q, &uplink_queries, err);
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
        (void)ledger_set_blocked(l, "region", why, "", NULL);
        rc = op_error_set(err, -EINVAL, "region", "%s", why);
        goto fail;
    }
    rc = node_policy_load(l->policy_file, l->db_path, region, &l->p, err);
    if (rc < 0)
        goto fail;
    rc = store_pseudonym_key(l->s, l->pkey, err);
    if (rc < 0)
        goto fail;
    rc = schema_version(l, &l->schema_version, err);
    if (rc < 0) {
        op_error_set(err, rc, NULL, "cannot read the schema version of %s", l->db_path);
        goto fail;
    }
    if (mkdir(l->spool_dir, 0700) < 0 && errno != EEXIST) {
        rc = op_error_set(err, -errno, "spool_dir", "cannot create spool directory %s: %s",
                          l->spool_dir, strerror(errno));
        goto fail;
    }

    /* Record who we are for `outpost status`; a region block is over. */
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_SYNC_LEDGER_OPEN_RECORD, err);
    if (!st) {
        rc = err && err->code ? err->code : -EIO;
        goto fail;
    }
    sqlite3_bind_text(st, 1, l->cred.node_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, l->cred.region, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)l->spool_max);
    rc = sql_run(&l->q, UPLINK_Q_SYNC_LEDGER_OPEN_RECORD, st, err);
    if (rc < 0)
        goto fail;
    rc = reconcile(l, err);
    if (rc == 0)
        rc = residency_sweep(store_residency(l->s),
                             err); /* voided files another process could not empty */
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
    sql_cache_close(&l->q);
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
    /* A tighter policy holds from now on: whatever was cut under the old
     * one is voided before this returns, an upload in flight included
     * (its file is emptied, which stops the upload as a restriction does). */
    rc = ledger_policy_in_force(l, err);
    if (rc < 0)
        return rc;
    struct ledger_state s;
    rc = ledger_load_state(&l->q, &s, err);
    if (rc < 0)
        return rc;
    if (strcmp(s.blocked_kind, "rejected") || !strcmp(s.blocked_policy, np->hash))
        return 0;
    /* A new policy: segment again from the acknowledged cursor; spooled
     * segments were cut under the old one. */
    rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    rc = sql_exec(&l->q, UPLINK_Q_SYNC_LEDGER_DROP_UNSETTLED, err);
    if (rc >= 0)
        rc = sql_exec(&l->q, UPLINK_Q_SYNC_LEDGER_UNBLOCK, err);
    rc = ledger_end_tx(l, rc, err);
    if (rc < 0)
        return rc;
    struct scan_ctx c = {l, err};
    rc = segment_spool_scan(l->spool_dir, on_spool_file, &c, err);
    return rc < 0 ? rc : 0;
}

void sync_ledger_take_news(struct sync_ledger *l, struct sync_ledger_news *out)
{
    *out = l->news;
    memset(&l->news, 0, sizeof l->news);
}
