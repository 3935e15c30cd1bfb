/*
 * The sync outbox: batches of queued changes for the segmenter, pruning on
 * HQ's acknowledgement, and the figures for status and /metrics. The rows
 * themselves are written only by the triggers of migration 0006, in the
 * writing transaction; this module never writes one. The invariant: a row
 * is deleted only by outbox_ack, and an ack deletes a prefix of each lane,
 * never a row queued after the batch it acknowledges was read. Queries:
 * sql/outbox.sql, on a cache bound to the caller's store for the length of
 * one call (the caller's transaction, if any, holds them).
 */
#include "outbox.h"

#include <errno.h>
#include <string.h>

#include <sqlite3.h>

#include "sql.h"
#include "store.h"
#include "uplink_queries.h"

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

/* A statement failed to prepare: its errno (err has the message). */
static int get_failed(const struct op_error *err)
{
    return err && err->code ? err->code : -EIO;
}

struct lane {
    struct outbox_row *rows;
    size_t *n;
    int64_t *last;
    size_t *window;
};

static int read_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    struct lane *ln = ctx;
    struct outbox_row *r = &ln->rows[*ln->n];
    r->seq = sqlite3_column_int64(st, 0);
    if (copy_text(r->entity, sizeof r->entity, st, 1) < 0 ||
        copy_text(r->record_id, sizeof r->record_id, st, 2) < 0 ||
        copy_text(r->op, sizeof r->op, st, 5) < 0)
        return op_error_set(err, -EOVERFLOW, NULL,
                            "outbox row %lld: entity, record id or op too long", (long long)r->seq);
    r->version = sqlite3_column_int64(st, 3);
    r->hlc = (uint64_t)sqlite3_column_int64(st, 4);
    r->priority = sqlite3_column_int(st, 6);
    r->created_ms = sqlite3_column_int64(st, 7);
    *ln->last = sqlite3_column_int64(st, 8);
    *ln->window = (size_t)sqlite3_column_int64(st, 9);
    (*ln->n)++;
    return 0;
}

/* One lane's window (sql/outbox.sql, lane_urgent and lane_ordinary): at
 * most `limit` rows past `after` in seq order, collapsed to the latest row
 * per record. Appends to rows[*n..] and returns the number of window rows
 * read (>= rows appended). */
static int read_lane(struct sql_cache *c, int urgent, int64_t after, size_t limit,
                     struct outbox_row *rows, size_t *n, int64_t *last, size_t *window,
                     struct op_error *err)
{
    unsigned id = urgent ? UPLINK_Q_OUTBOX_LANE_URGENT : UPLINK_Q_OUTBOX_LANE_ORDINARY;
    sqlite3_stmt *st = sql_get(c, id, err);
    if (!st)
        return get_failed(err);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    *window = 0;
    struct lane ln = {rows, n, last, window};
    int rc = sql_each(c, id, st, read_row, &ln, err);
    return rc < 0 ? rc : 0;
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
    *covered = *after;
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &uplink_queries, err);
    if (rc < 0)
        return rc;
    /* Both lanes are read in one read transaction so the batch is one
     * snapshot even while outpostd writes: a savepoint begins one, or
     * nests in the caller's. */
    rc = sql_exec(&c, UPLINK_Q_OUTBOX_READ_BEGIN, err);
    if (rc < 0)
        goto out;
    size_t window = 0;
    rc = read_lane(&c, 1, after->urgent, max_rows, rows, n, &covered->urgent, &window, err);
    if (rc == 0 && window < max_rows)
        rc = read_lane(&c, 0, after->ordinary, max_rows - window, rows, n, &covered->ordinary,
                       &window, err);
    (void)sql_exec(&c, UPLINK_Q_OUTBOX_READ_END, NULL);
out:
    sql_cache_close(&c);
    if (rc < 0) {
        *n = 0;
        *covered = *after;
    }
    return rc;
}

/* Runs acknowledgement query `id` with the cursor as ?1 and ?2 (and
 * now_ms as ?3 where it has one). */
static int ack_step(struct sql_cache *c, unsigned id, const struct outbox_cursor *upto,
                    int64_t now_ms, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(c, id, err);
    if (!st)
        return get_failed(err);
    sqlite3_bind_int64(st, 1, upto->urgent);
    sqlite3_bind_int64(st, 2, upto->ordinary);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_int64(st, 3, now_ms);
    int rc = sql_run(c, id, st, err);
    return rc < 0 ? rc : 0;
}

/* The largest seq ever issued. */
static int issued_seq(struct sql_cache *c, int64_t *out, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, UPLINK_Q_OUTBOX_ACK_ISSUED, &st, err);
    return rc < 0 ? rc
                  : sql_one_int64(c, UPLINK_Q_OUTBOX_ACK_ISSUED, st,
                                  "cannot read the outbox sequence", out, 1, err);
}

static int ack(struct sql_cache *c, const struct outbox_cursor *upto, int64_t now_ms,
               struct op_error *err)
{
    int rc = sql_exec(c, UPLINK_Q_OUTBOX_ACK_BEGIN, err);
    if (rc < 0)
        return rc;
    int64_t issued = 0;
    rc = issued_seq(c, &issued, err);
    if (rc == 0 && (upto->urgent > issued || upto->ordinary > issued))
        rc = op_error_set(err, -ERANGE, "upto",
                          "acknowledgement up to %lld/%lld is past the last outbox row %lld",
                          (long long)upto->urgent, (long long)upto->ordinary, (long long)issued);
    if (rc == 0)
        rc = ack_step(c, UPLINK_Q_OUTBOX_ACK_ERASURES_SENT, upto, now_ms, err);
    if (rc == 0)
        rc = ack_step(c, UPLINK_Q_OUTBOX_ACK_DELETE, upto, now_ms, err);
    if (rc < 0) {
        (void)sql_exec(c, UPLINK_Q_OUTBOX_ACK_ROLLBACK, NULL);
        (void)sql_exec(c, UPLINK_Q_OUTBOX_ACK_RELEASE, NULL);
        return rc;
    }
    rc = sql_exec(c, UPLINK_Q_OUTBOX_ACK_RELEASE, err);
    return rc < 0 ? rc : 0;
}

int outbox_ack(struct store *s, const struct outbox_cursor *upto, int64_t now_ms,
               struct op_error *err)
{
    if (upto->urgent < 0 || upto->ordinary < 0)
        return op_error_set(err, -EINVAL, "upto", "outbox cursor is negative");
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &uplink_queries, err);
    if (rc < 0)
        return rc;
    rc = ack(&c, upto, now_ms, err);
    sql_cache_close(&c);
    return rc;
}

int outbox_stats(struct store *s, int64_t *depth, int64_t *oldest_created_ms, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &uplink_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    int64_t v[2];
    rc = sql_get_st(&c, UPLINK_Q_OUTBOX_STATS, &st, err);
    if (rc == 0)
        rc = sql_one_int64(&c, UPLINK_Q_OUTBOX_STATS, st, "cannot read the outbox", v, 2, err);
    sql_cache_close(&c);
    if (rc < 0)
        return rc;
    *depth = v[0];
    *oldest_created_ms = v[1];
    return 0;
}
