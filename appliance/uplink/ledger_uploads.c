/*
 * Uploads (docs/SYNC.md, "The sync ledger"): which segment the uplink
 * sends next, the tus upload it goes into, and the voided segments whose
 * uploads HQ may still hold part of. The invariant: nothing goes after a
 * rejected segment, since an acknowledgement of a later one would
 * acknowledge the rejected range too; only a segment still waiting to be
 * uploaded changes here.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int sync_ledger_next_upload(struct sync_ledger *l, int *found, struct sync_segment *out,
                            struct op_error *err)
{
    return sync_ledger_next_upload_except(l, 0, found, out, err);
}

int sync_ledger_next_upload_except(struct sync_ledger *l, uint64_t except_no, int *found,
                                   struct sync_segment *out, struct op_error *err)
{
    struct ledger_state s;
    int rc = ledger_load_state(&l->q, &s, err);
    if (rc < 0)
        return rc;
    if (s.blocked[0]) {
        /* Nothing goes after a rejected segment: an ack of a later one
         * would acknowledge the rejected range too. */
        *found = 0;
        return 0;
    }
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_UPLOADS_NEXT, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)except_no);
    rc = sql_step(&l->q, UPLINK_Q_LEDGER_UPLOADS_NEXT, st, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        ledger_row_to_segment(st, out);
        sqlite3_reset(st);
    }
    *found = rc;
    return 0;
}

/* Runs `id`, an update of segment `no` (?1) with ?2 = text, or the
 * ledger's clock if text is NULL, that applies only while the segment is
 * still waiting to be uploaded. */
static int update_pending(struct sync_ledger *l, uint64_t no, unsigned id, const char *text,
                          struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, id, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, ledger_now(l));
    int rc = sql_run(&l->q, id, st, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -ENOENT, "segment",
                            "segment %" PRIu64 " is not waiting to be uploaded", no);
    return 0;
}

int sync_ledger_set_upload_url(struct sync_ledger *l, uint64_t no, const char *url,
                               struct op_error *err)
{
    if (!url || strlen(url) >= sizeof((struct sync_segment *)0)->upload_url)
        return op_error_set(err, -EINVAL, "upload_url", "upload URL missing or too long");
    return update_pending(l, no, UPLINK_Q_LEDGER_UPLOADS_SET_URL, url, err);
}

int sync_ledger_mark_uploaded(struct sync_ledger *l, uint64_t no, struct op_error *err)
{
    return update_pending(l, no, UPLINK_Q_LEDGER_UPLOADS_MARK_UPLOADED, NULL, err);
}

/* Voided uploads (docs/EGRESS.md, "In time"): what the uplink terminates at HQ. */

int sync_ledger_next_voided(struct sync_ledger *l, int *found, uint64_t *no, char *url,
                            size_t url_cap, struct op_error *err)
{
    *found = 0;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_UPLOADS_NEXT_VOIDED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    int rc = sql_step(&l->q, UPLINK_Q_LEDGER_UPLOADS_NEXT_VOIDED, st, err);
    if (rc <= 0)
        return rc;
    const char *u = (const char *)sqlite3_column_text(st, 1);
    *no = (uint64_t)sqlite3_column_int64(st, 0);
    if (!u || strlen(u) >= url_cap)
        rc = op_error_set(err, -ENAMETOOLONG, "upload_url",
                          "voided segment %" PRIu64 ": upload URL too long", *no);
    else
        snprintf(url, url_cap, "%s", u);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    *found = 1;
    return 0;
}

/* Runs `id` with segment number `no` as ?1; the rows changed or -errno. */
static int run_no(struct sync_ledger *l, unsigned id, uint64_t no, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, id, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    return sql_run(&l->q, id, st, err);
}

static int forget_unsent(struct sync_ledger *l, uint64_t no, int64_t *records, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_UPLOADS_CUT_AFTER, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    int64_t later = 0;
    *records = 0;
    int rc = sql_one_int64(&l->q, UPLINK_Q_LEDGER_UPLOADS_CUT_AFTER, st,
                           "segments cut after the voided one", &later, 1, err);
    if (rc < 0)
        return rc;
    if (later == 0) {
        rc = run_no(l, UPLINK_Q_LEDGER_UPLOADS_FORGET_UNSENT_RECORDS, no, err);
        if (rc < 0)
            return rc;
        *records = rc;
    }
    rc = run_no(l, UPLINK_Q_LEDGER_UPLOADS_FORGET_UNSENT_VOIDED, no, err);
    return rc < 0 ? rc : 0;
}

int sync_ledger_forget_unsent_voided(struct sync_ledger *l, uint64_t no, int64_t *records,
                                     struct op_error *err)
{
    *records = -1;
    int rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    rc = forget_unsent(l, no, records, err);
    rc = ledger_end_tx(l, rc, err);
    if (rc < 0)
        *records = -1;
    return rc;
}
