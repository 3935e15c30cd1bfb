/*
 * Status (docs/SYNC.md, "The sync ledger", `outpost status`): the link
 * statistics the uplink reports (goodput, bytes sent today, errors by kind)
 * and the figures `outpost status` shows, read from the daemon's ledger or,
 * read-only, from the database beside a running daemon. The invariant: the
 * figures come only from what is committed, so both ways of reading them
 * agree; a database without the ledger's tables still shows its outbox.
 */
#include "sync_ledger_int.h"

#include <stdio.h>
#include <string.h>

#include "db.h"

int sync_ledger_note_link(struct sync_ledger *l, const struct sync_link_report *r,
                          struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    struct ledger_state s;
    int rc = ledger_load_state(db, &s, err);
    if (rc < 0)
        return rc;
    int64_t now = ledger_now(l);
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
    rc = ledger_prep(db,
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
        rc = ledger_done(db, st, "cannot record link statistics", err);
    }
    if (rc == 0 && r->error_kind) {
        rc = ledger_prep(db,
                         "INSERT INTO sync_errors (kind, n, last_ms, last) VALUES (?1, 1, ?2, ?3) "
                         "ON CONFLICT (kind) DO UPDATE SET n = n + 1, last_ms = ?2, last = ?3",
                         &st, "cannot count a sync error", err);
        if (rc == 0) {
            char kind[32];
            snprintf(kind, sizeof kind, "%s", r->error_kind);
            sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, now);
            sqlite3_bind_text(st, 3, r->error_msg ? r->error_msg : "", -1, SQLITE_STATIC);
            rc = ledger_done(db, st, "cannot count a sync error", err);
        }
    }
    if (rc < 0) {
        store_rollback(l->s);
        return rc;
    }
    return store_commit(l->s, err);
}

static int has_table(sqlite3 *db, const char *name, int *out, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = ledger_prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", &st,
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
    struct ledger_state st;
    rc = ledger_load_state(db, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *q;
    rc = ledger_prep(db, "SELECT node_id, region FROM sync_state WHERE id = 1", &q,
                     "cannot read the sync state", err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(q) == SQLITE_ROW) {
        ledger_copy_col(out->node_id, sizeof out->node_id, q, 0);
        ledger_copy_col(out->region, sizeof out->region, q, 1);
    }
    sqlite3_finalize(q);
    out->enabled = out->node_id[0] != '\0';
    rc = ledger_spool_usage(db, &out->spool_bytes, &out->spool_segments, err);
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
            ledger_copy_col(out->waiting, sizeof out->waiting, q, 0);
        sqlite3_finalize(q);
    }
    snprintf(out->last_error, sizeof out->last_error, "%s", st.last_error);
    out->mailbox_after = st.mailbox_after;
    rc = ledger_prep(db,
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
    rc = ledger_prep(db, "SELECT kind, n FROM sync_errors ORDER BY n DESC, kind LIMIT 16", &q,
                     "cannot read the sync errors", err);
    if (rc < 0)
        return rc;
    while (out->nerrors < 16 && sqlite3_step(q) == SQLITE_ROW) {
        struct sync_error_count *e = &out->errors[out->nerrors++];
        ledger_copy_col(e->kind, sizeof e->kind, q, 0);
        e->n = (uint64_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    int64_t pending = 0;
    rc = ledger_unsegmented(db, st.seg_u, st.seg_o, &pending, err);
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
    int rc = ledger_prep(db, "UPDATE sync_state SET waiting = ?1 WHERE id = 1 AND waiting <> ?1",
                         &st, "cannot record why sync waits", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, why ? why : "", -1, SQLITE_TRANSIENT);
    return ledger_done(db, st, "cannot record why sync waits", err);
}

int sync_ledger_status(struct sync_ledger *l, struct sync_status *out, struct op_error *err)
{
    struct sync_status s;
    int rc = fill_status(l->s, ledger_now(l), &s, err);
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
    rc = fill_status(s, ledger_real_clock(NULL), &st, err);
    store_close(s);
    if (rc < 0)
        return rc;
    *out = st;
    return 0;
}
