/*
 * Status (docs/SYNC.md, "The sync ledger", `outpost status`): the link
 * statistics the uplink reports (goodput, bytes sent today, errors by kind)
 * and the figures `outpost status` shows, read from the daemon's ledger or,
 * read-only, from the database beside a running daemon. The invariant: the
 * figures come only from what is committed, so both ways of reading them
 * agree; a database without the ledger's tables still shows its outbox.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "db.h" /* DB_OPEN_READONLY */

int sync_ledger_note_link(struct sync_ledger *l, const struct sync_link_report *r,
                          struct op_error *err)
{
    struct ledger_state s;
    int rc = ledger_load_state(&l->q, &s, err);
    if (rc < 0)
        return rc;
    int64_t now = ledger_now(l);
    int64_t day = now / 86400000;
    /* the budget is charged what HQ acknowledged, not what left the socket:
     * bytes a cut lost are counted as sent (and resent), not as delivered */
    int64_t today = (s.bytes_day == day ? s.bytes_today : 0) + (int64_t)r->bytes_confirmed;
    double goodput = s.goodput;
    if (r->sample_bytes > 0 && r->duration_ms > 0) {
        double sample = (double)r->sample_bytes * 1000.0 / (double)r->duration_ms;
        goodput = goodput > 0 ? 0.7 * goodput + 0.3 * sample : sample;
    }
    rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_STATUS_NOTE_LINK, err);
    char last[256];
    if (!st) {
        rc = err && err->code ? err->code : -EIO;
    } else {
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
        rc = sql_run(&l->q, UPLINK_Q_LEDGER_STATUS_NOTE_LINK, st, err);
    }
    if (rc >= 0) {
        st = sql_get(&l->q, UPLINK_Q_LEDGER_STATUS_NOTE_COUNTERS, err);
        if (!st) {
            rc = err && err->code ? err->code : -EIO;
        } else {
            /* a new day starts the wire counters again, as bytes_today */
            sqlite3_bind_int(st, 1, s.bytes_day == day);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)r->bytes_sent);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)r->bytes_resent);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)r->receipts_inline);
            sqlite3_bind_int64(st, 5, (sqlite3_int64)r->mailbox_skipped);
            rc = sql_run(&l->q, UPLINK_Q_LEDGER_STATUS_NOTE_COUNTERS, st, err);
        }
    }
    if (rc >= 0 && r->error_kind) {
        st = sql_get(&l->q, UPLINK_Q_LEDGER_STATUS_COUNT_ERROR, err);
        if (!st) {
            rc = err && err->code ? err->code : -EIO;
        } else {
            char kind[32];
            snprintf(kind, sizeof kind, "%s", r->error_kind);
            sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, now);
            sqlite3_bind_text(st, 3, r->error_msg ? r->error_msg : "", -1, SQLITE_STATIC);
            rc = sql_run(&l->q, UPLINK_Q_LEDGER_STATUS_COUNT_ERROR, st, err);
        }
    }
    return ledger_end_tx(l, rc, err);
}

static int has_table(struct sql_cache *c, const char *name, int *out, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(c, UPLINK_Q_LEDGER_STATUS_HAS_TABLE, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sql_step(c, UPLINK_Q_LEDGER_STATUS_HAS_TABLE, st, err);
    if (rc < 0)
        return rc;
    if (rc == 1)
        sqlite3_reset(st);
    *out = rc;
    return 0;
}

/* Runs query `id` (no parameters), handing its rows to row(). Only a
 * query that does not prepare fails; a failed step leaves the figures it
 * would have filled at zero, as they always were. */
static int read_rows(struct sql_cache *c, unsigned id, sql_row_fn row, void *ctx,
                     struct op_error *err)
{
    sqlite3_stmt *st = sql_get(c, id, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    (void)sql_each(c, id, st, row, ctx, NULL);
    return 0;
}

static int read_identity(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct sync_status *out = ctx;
    ledger_copy_col(out->node_id, sizeof out->node_id, st, 0);
    ledger_copy_col(out->region, sizeof out->region, st, 1);
    return 1;
}

static int read_waiting(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct sync_status *out = ctx;
    ledger_copy_col(out->waiting, sizeof out->waiting, st, 0);
    return 1;
}

struct counters_ctx {
    struct sync_status *out;
    int today; /* the counters' day is today */
};

static int read_counters(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct counters_ctx *c = ctx;
    if (c->today) {
        c->out->bytes_sent_today = (uint64_t)sqlite3_column_int64(st, 0);
        c->out->bytes_resent_today = (uint64_t)sqlite3_column_int64(st, 1);
    }
    c->out->receipts_inline = (uint64_t)sqlite3_column_int64(st, 2);
    c->out->mailbox_skipped = (uint64_t)sqlite3_column_int64(st, 3);
    return 1;
}

static int read_settled(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct sync_status *out = ctx;
    out->segments_acked = (uint64_t)sqlite3_column_int64(st, 0);
    out->segments_rejected = (uint64_t)sqlite3_column_int64(st, 1);
    return 1;
}

static int read_error(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct sync_status *out = ctx;
    if (out->nerrors >= 16)
        return 1;
    struct sync_error_count *e = &out->errors[out->nerrors++];
    ledger_copy_col(e->kind, sizeof e->kind, st, 0);
    e->n = (uint64_t)sqlite3_column_int64(st, 1);
    return 0;
}

static int read_upload(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct sync_status *out = ctx;
    if (out->nuploads >= 4)
        return 1;
    out->uploads[out->nuploads].no = (uint64_t)sqlite3_column_int64(st, 0);
    out->uploads[out->nuploads].at_hq = (uint64_t)sqlite3_column_int64(st, 1);
    out->uploads[out->nuploads].bytes = (uint64_t)sqlite3_column_int64(st, 2);
    out->nuploads++;
    return 0;
}

/* Fills out from the database: the outbox, and the ledger's tables if this
 * database has them. c: the uplink's queries on s. */
/* now: wall-clock ms, for the UTC day of bytes_today. */
static int fill_status(struct store *s, struct sql_cache *c, int64_t now, struct sync_status *out,
                       struct op_error *err)
{
    memset(out, 0, sizeof *out);
    out->eta_s = -1;
    int rc = outbox_stats(s, &out->outbox_depth, &out->oldest_unsent_ms, err);
    if (rc < 0)
        return rc;
    int have = 0;
    rc = has_table(c, "sync_state", &have, err);
    if (rc < 0 || !have)
        return rc;
    struct ledger_state st;
    rc = ledger_load_state(c, &st, err);
    if (rc < 0)
        return rc;
    rc = read_rows(c, UPLINK_Q_LEDGER_STATUS_IDENTITY, read_identity, out, err);
    if (rc < 0)
        return rc;
    out->enabled = out->node_id[0] != '\0';
    rc = ledger_spool_usage(c, &out->spool_bytes, &out->spool_segments, err);
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
    (void)read_rows(c, UPLINK_Q_LEDGER_STATUS_WAITING, read_waiting, out, NULL);
    struct counters_ctx cc = {out, st.bytes_day == now / 86400000};
    (void)read_rows(c, UPLINK_Q_LEDGER_STATUS_COUNTERS, read_counters, &cc, NULL);
    snprintf(out->last_error, sizeof out->last_error, "%s", st.last_error);
    out->mailbox_after = st.mailbox_after;
    rc = read_rows(c, UPLINK_Q_LEDGER_STATUS_SETTLED, read_settled, out, err);
    if (rc == 0)
        rc = read_rows(c, UPLINK_Q_LEDGER_STATUS_ERRORS, read_error, out, err);
    /* a database outpostd has not migrated yet has no charged column */
    (void)read_rows(c, UPLINK_Q_LEDGER_STATUS_UPLOADS, read_upload, out, NULL);
    if (rc < 0)
        return rc;
    int64_t pending = 0;
    rc = ledger_unsegmented(c, st.seg_u, st.seg_o, &pending, err);
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
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_STATUS_SET_WAITING, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_text(st, 1, why ? why : "", -1, SQLITE_TRANSIENT);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_STATUS_SET_WAITING, st, err);
    return rc < 0 ? rc : 0;
}

int sync_ledger_status(struct sync_ledger *l, struct sync_status *out, struct op_error *err)
{
    struct sync_status s;
    int rc = fill_status(l->s, &l->q, ledger_now(l), &s, err);
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
    struct sql_cache c;
    rc = store_queries_bind(s, &c, &uplink_queries, err);
    if (rc < 0) {
        store_close(s);
        return rc;
    }
    struct sync_status st;
    rc = fill_status(s, &c, ledger_real_clock(NULL), &st, err);
    sql_cache_close(&c);
    store_close(s);
    if (rc < 0)
        return rc;
    *out = st;
    return 0;
}

int sync_ledger_charge_upload(struct sync_ledger *l, uint64_t no, uint64_t offset,
                              uint64_t *charged, struct op_error *err)
{
    if (charged)
        *charged = 0;
    int rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    struct ledger_state s;
    rc = ledger_load_state(&l->q, &s, err);
    sqlite3_stmt *st = NULL;
    int64_t before = 0;
    if (rc >= 0) {
        st = sql_get(&l->q, UPLINK_Q_LEDGER_STATUS_CHARGED, err);
        if (!st)
            rc = err && err->code ? err->code : -EIO;
    }
    if (rc >= 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
        rc = sql_step(&l->q, UPLINK_Q_LEDGER_STATUS_CHARGED, st, err);
        if (rc == 1) {
            before = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, "segment", "segment %llu is not in the ledger",
                              (unsigned long long)no);
        }
    }
    /* the offset only grows on one upload; a smaller one (HQ lost bytes)
     * is stored so that what it takes again is charged again */
    int64_t gained = (int64_t)offset > before ? (int64_t)offset - before : 0;
    if (rc >= 0 && (int64_t)offset != before) {
        st = sql_get(&l->q, UPLINK_Q_LEDGER_STATUS_SET_CHARGED, err);
        if (!st) {
            rc = err && err->code ? err->code : -EIO;
        } else {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
            rc = sql_run(&l->q, UPLINK_Q_LEDGER_STATUS_SET_CHARGED, st, err);
        }
    }
    if (rc >= 0 && gained) {
        int64_t day = ledger_now(l) / 86400000;
        int64_t today = (s.bytes_day == day ? s.bytes_today : 0) + gained;
        st = sql_get(&l->q, UPLINK_Q_LEDGER_STATUS_CHARGE_DAY, err);
        if (!st) {
            rc = err && err->code ? err->code : -EIO;
        } else {
            sqlite3_bind_int64(st, 1, day);
            sqlite3_bind_int64(st, 2, today);
            rc = sql_run(&l->q, UPLINK_Q_LEDGER_STATUS_CHARGE_DAY, st, err);
        }
    }
    rc = ledger_end_tx(l, rc < 0 ? rc : 0, err);
    if (rc >= 0 && charged)
        *charged = (uint64_t)gained;
    return rc;
}
