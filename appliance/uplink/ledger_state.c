/*
 * The ledger's state (sync_ledger_int.h): the one sync_state row, the rows
 * of the segment table, read and written by the named queries of
 * sql/ledger_state.sql that the other ledger modules share. Each helper is
 * one statement; transactions belong to the caller, so a change spread
 * over several helpers still commits as one. A statement that stopped on
 * its row is reset at once: left there, it would hold the connection's
 * read snapshot open.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"

int64_t ledger_real_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ledger_now(const struct sync_ledger *l)
{
    return l->clock(l->clock_ctx);
}

void ledger_copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

int ledger_end_tx(struct sync_ledger *l, int rc, struct op_error *err)
{
    if (rc < 0) {
        store_rollback(l->s);
        return rc;
    }
    return store_commit(l->s, err);
}

int ledger_load_state(struct sql_cache *c, struct ledger_state *o, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(c, UPLINK_Q_LEDGER_STATE_LOAD, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    int rc = sql_step(c, UPLINK_Q_LEDGER_STATE_LOAD, st, err);
    if (rc == 0)
        return op_error_set(err, -EPROTO, "sync_state", "the sync_state row is missing");
    if (rc < 0)
        return rc;
    memset(o, 0, sizeof *o);
    o->seg_u = sqlite3_column_int64(st, 0);
    o->seg_o = sqlite3_column_int64(st, 1);
    o->ack_u = sqlite3_column_int64(st, 2);
    o->ack_o = sqlite3_column_int64(st, 3);
    o->next_no = (uint64_t)sqlite3_column_int64(st, 4);
    ledger_copy_col(o->blocked, sizeof o->blocked, st, 5);
    ledger_copy_col(o->blocked_kind, sizeof o->blocked_kind, st, 6);
    ledger_copy_col(o->blocked_policy, sizeof o->blocked_policy, st, 7);
    o->spool_full = sqlite3_column_int(st, 8);
    o->bpr = sqlite3_column_double(st, 9);
    o->goodput = sqlite3_column_double(st, 10);
    o->last_sync_ms = sqlite3_column_int64(st, 11);
    o->bytes_day = sqlite3_column_int64(st, 12);
    o->bytes_today = sqlite3_column_int64(st, 13);
    ledger_copy_col(o->last_error, sizeof o->last_error, st, 14);
    o->mailbox_after = (uint64_t)sqlite3_column_int64(st, 15);
    o->spool_cap = (uint64_t)sqlite3_column_int64(st, 16);
    o->spool_epoch = sqlite3_column_int64(st, 17);
    ledger_copy_col(o->policy_hash, sizeof o->policy_hash, st, 18);
    sqlite3_reset(st);
    return 0;
}

void ledger_row_to_segment(sqlite3_stmt *st, struct sync_segment *out)
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
    ledger_copy_col(out->path, sizeof out->path, st, 8);
    ledger_copy_col(out->upload_url, sizeof out->upload_url, st, 9);
    out->created_ms = sqlite3_column_int64(st, 10);
}

int ledger_get_segment(struct sql_cache *c, uint64_t no, struct sync_segment *out,
                       struct op_error *err)
{
    sqlite3_stmt *st = sql_get(c, UPLINK_Q_LEDGER_STATE_GET_SEGMENT, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    int rc = sql_step(c, UPLINK_Q_LEDGER_STATE_GET_SEGMENT, st, err);
    if (rc == 1) {
        ledger_row_to_segment(st, out);
        sqlite3_reset(st);
    }
    return rc;
}

/* Idempotent: a file already gone is fine. */
void ledger_unlink_spool(struct sync_ledger *l, const char *path)
{
    if (path[0] && unlink(path) == 0)
        (void)fsutil_fsync_dir(l->spool_dir, NULL);
}

int ledger_set_blocked(struct sync_ledger *l, const char *kind, const char *why,
                       const char *policy_hash, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_STATE_SET_BLOCKED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_text(st, 1, why, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, policy_hash, -1, SQLITE_STATIC);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_STATE_SET_BLOCKED, st, err);
    return rc < 0 ? rc : 0;
}

int ledger_spool_usage(struct sql_cache *c, uint64_t *bytes, uint64_t *segments,
                       struct op_error *err)
{
    sqlite3_stmt *st;
    int64_t v[2];
    int rc = sql_get_st(c, UPLINK_Q_LEDGER_STATE_SPOOL_USAGE, &st, err);
    if (rc == 0)
        rc = sql_one_int64(c, UPLINK_Q_LEDGER_STATE_SPOOL_USAGE, st, "cannot measure the spool", v,
                           2, err);
    if (rc < 0)
        return rc;
    *bytes = (uint64_t)v[0];
    *segments = (uint64_t)v[1];
    return 0;
}

/* Outbox rows not yet in a segment. */
int ledger_unsegmented(struct sql_cache *c, int64_t su, int64_t so, int64_t *n,
                       struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, UPLINK_Q_LEDGER_STATE_UNSEGMENTED, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, su);
    sqlite3_bind_int64(st, 2, so);
    return sql_one_int64(c, UPLINK_Q_LEDGER_STATE_UNSEGMENTED, st, "cannot read the outbox", n, 1,
                         err);
}

int ledger_get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}
