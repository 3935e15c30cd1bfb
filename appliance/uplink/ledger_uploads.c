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
    sqlite3 *db = store_db(l->s);
    struct ledger_state s;
    int rc = ledger_load_state(db, &s, err);
    if (rc < 0)
        return rc;
    if (s.blocked[0]) {
        /* Nothing goes after a rejected segment: an ack of a later one
         * would acknowledge the rejected range too. */
        *found = 0;
        return 0;
    }
    sqlite3_stmt *st;
    rc = ledger_prep(db,
                     "SELECT " LEDGER_SEGMENT_COLS " FROM sync_segments WHERE state IN (0, 1) "
                     "ORDER BY no LIMIT 1",
                     &st, "cannot read the segment table", err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ledger_row_to_segment(st, out);
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
    int rc = ledger_prep(db, sql, &st, what, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, ledger_now(l));
    rc = ledger_done(db, st, what, err);
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

/* Voided uploads (docs/EGRESS.md, "In time"): what the uplink terminates at HQ. */

int sync_ledger_next_voided(struct sync_ledger *l, int *found, uint64_t *no, char *url,
                            size_t url_cap, struct op_error *err)
{
    sqlite3 *db = store_db(l->s);
    sqlite3_stmt *st;
    int rc =
        ledger_prep(db,
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
