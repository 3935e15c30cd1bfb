/*
 * The sync outbox: batches of queued changes for the segmenter, pruning on
 * HQ's acknowledgement, and the figures for status and /metrics. The rows
 * themselves are written only by the triggers of migration 0006, in the
 * writing transaction; this module never writes one. The invariant: a row
 * is deleted only by outbox_ack, and an ack deletes a prefix of each lane,
 * never a row queued after the batch it acknowledges was read.
 */
#include "outbox.h"

#include <errno.h>
#include <string.h>

#include <sqlite3.h>

#include "db.h"
#include "store.h"
#include "sql.h"

static int copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t len = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (len >= cap)
        return -EOVERFLOW;
    if (len)
        memcpy(dst, t, len);
    dst[len] = '\0';
    return 0;
}

/* One lane's window: at most `limit` rows past `after` in seq order,
 * collapsed to the latest row per record. Appends to rows[*n..] and
 * returns the number of window rows read (>= rows appended). */
static int read_lane(sqlite3 *db, int urgent, int64_t after, size_t limit, struct outbox_row *rows,
                     size_t *n, int64_t *last, size_t *window, struct op_error *err)
{
    /* The window's seq range is fixed first, then each record's latest row
     * in it is read; ordering by priority puts erasures before policy
     * acknowledgements within the urgent lane. */
    const char *sql = urgent ? "WITH w AS (SELECT seq, entity, record_id FROM outbox "
                               "WHERE priority < 2 AND seq > ?1 ORDER BY seq LIMIT ?2) "
                               "SELECT o.seq, o.entity, o.record_id, o.version, o.hlc, o.op, "
                               "o.priority, o.created_ms, (SELECT max(seq) FROM w), "
                               "(SELECT count(*) FROM w) FROM outbox AS o "
                               "WHERE o.seq IN (SELECT max(seq) FROM w GROUP BY entity, "
                               "record_id) ORDER BY o.priority, o.seq"
                             : "WITH w AS (SELECT seq, entity, record_id FROM outbox "
                               "WHERE priority = 2 AND seq > ?1 ORDER BY seq LIMIT ?2) "
                               "SELECT o.seq, o.entity, o.record_id, o.version, o.hlc, o.op, "
                               "o.priority, o.created_ms, (SELECT max(seq) FROM w), "
                               "(SELECT count(*) FROM w) FROM outbox AS o "
                               "WHERE o.seq IN (SELECT max(seq) FROM w GROUP BY entity, "
                               "record_id) ORDER BY o.priority, o.seq";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(db, rc, "cannot read the outbox", err);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    *window = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct outbox_row *r = &rows[*n];
        r->seq = sqlite3_column_int64(st, 0);
        if (copy_text(r->entity, sizeof r->entity, st, 1) < 0 ||
            copy_text(r->record_id, sizeof r->record_id, st, 2) < 0 ||
            copy_text(r->op, sizeof r->op, st, 5) < 0) {
            sqlite3_finalize(st);
            return op_error_set(err, -EOVERFLOW, NULL,
                                "outbox row %lld: entity, record id or op too long",
                                (long long)r->seq);
        }
        r->version = sqlite3_column_int64(st, 3);
        r->hlc = (uint64_t)sqlite3_column_int64(st, 4);
        r->priority = sqlite3_column_int(st, 6);
        r->created_ms = sqlite3_column_int64(st, 7);
        *last = sqlite3_column_int64(st, 8);
        *window = (size_t)sqlite3_column_int64(st, 9);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the outbox", err);
    return 0;
}

int outbox_next_batch(struct store *s, const struct outbox_cursor *after, size_t max_rows,
                      struct outbox_row *rows, size_t *n, struct outbox_cursor *covered,
                      struct op_error *err)
{
    *n = 0;
    if (max_rows == 0 || max_rows > OUTBOX_BATCH_MAX)
        return op_error_set(err, -EINVAL, "max_rows", "batch size %zu is not within 1..%d",
                            max_rows, OUTBOX_BATCH_MAX);
    if (after->urgent < 0 || after->ordinary < 0)
        return op_error_set(err, -EINVAL, "after", "outbox cursor is negative");
    sqlite3 *db = store_db(s);
    *covered = *after;
    /* Both lanes are read in one read transaction so the batch is one
     * snapshot even while outpostd writes. */
    int auto_commit = sqlite3_get_autocommit(db);
    int rc = auto_commit ? db_exec(db, "BEGIN", "cannot read the outbox", err) : 0;
    if (rc < 0)
        return rc;
    size_t window = 0;
    rc = read_lane(db, 1, after->urgent, max_rows, rows, n, &covered->urgent, &window, err);
    if (rc == 0 && window < max_rows)
        rc = read_lane(db, 0, after->ordinary, max_rows - window, rows, n, &covered->ordinary,
                       &window, err);
    if (auto_commit)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc < 0) {
        *n = 0;
        *covered = *after;
    }
    return rc;
}

static int step_done(sqlite3 *db, const char *sql, const struct outbox_cursor *upto, int64_t now_ms,
                     struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(db, rc, "cannot prune the outbox", err);
    sqlite3_bind_int64(st, 1, upto->urgent);
    sqlite3_bind_int64(st, 2, upto->ordinary);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_int64(st, 3, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(db, rc, "cannot prune the outbox", err);
}

int outbox_ack(struct store *s, const struct outbox_cursor *upto, int64_t now_ms,
               struct op_error *err)
{
    if (upto->urgent < 0 || upto->ordinary < 0)
        return op_error_set(err, -EINVAL, "upto", "outbox cursor is negative");
    sqlite3 *db = store_db(s);
    int rc = db_exec(db, "SAVEPOINT outbox_ack", "cannot prune the outbox", err);
    if (rc < 0)
        return rc;
    /* AUTOINCREMENT never reuses a seq, so sqlite_sequence holds the
     * largest ever issued (no row: none issued yet). */
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db,
                            "SELECT coalesce((SELECT seq FROM sqlite_sequence "
                            "WHERE name = 'outbox'), 0)",
                            -1, &st, NULL);
    int64_t issued = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        issued = sqlite3_column_int64(st, 0);
        rc = 0;
    } else
        rc = sql_fail(db, rc, "cannot read the outbox sequence", err);
    sqlite3_finalize(st);
    if (rc == 0 && (upto->urgent > issued || upto->ordinary > issued))
        rc = op_error_set(err, -ERANGE, "upto",
                          "acknowledgement up to %lld/%lld is past the last outbox row %lld",
                          (long long)upto->urgent, (long long)upto->ordinary, (long long)issued);
    if (rc == 0)
        rc = step_done(db,
                       "UPDATE erasures SET sent_at_ms = ?3 WHERE sent_at_ms IS NULL AND "
                       "EXISTS (SELECT 1 FROM outbox AS o WHERE o.priority < 2 AND "
                       "o.seq <= ?1 AND o.op = 'erase' AND o.entity = erasures.entity AND "
                       "o.record_id = erasures.record_id)",
                       upto, now_ms, err);
    if (rc == 0)
        rc = step_done(db,
                       "DELETE FROM outbox WHERE (priority < 2 AND seq <= ?1) OR "
                       "(priority = 2 AND seq <= ?2)",
                       upto, now_ms, err);
    if (rc < 0) {
        sqlite3_exec(db, "ROLLBACK TO outbox_ack; RELEASE outbox_ack", NULL, NULL, NULL);
        return rc;
    }
    return db_exec(db, "RELEASE outbox_ack", "cannot commit the outbox acknowledgement", err);
}

int outbox_stats(struct store *s, int64_t *depth, int64_t *oldest_created_ms, struct op_error *err)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*), coalesce(min(created_ms), 0) FROM outbox", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(db, rc, "cannot read the outbox", err);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *depth = sqlite3_column_int64(st, 0);
        *oldest_created_ms = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sql_fail(db, rc, "cannot read the outbox", err);
}
