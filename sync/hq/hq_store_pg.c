/*
 * The PostgreSQL backend of the HQ store (interface and invariants in
 * hq_store.h; when to choose it: docs/HQ.md, "Choosing a backend"). One
 * libpq connection per handle, so each apply worker has its own. The
 * schema is sql/pg_migrations.sql, versioned in the outpost_hq_schema
 * table and migrated under an advisory lock (two receivers starting at
 * once migrate once); the queries are sql/pg.sql, prepared once per
 * connection under their names and run with parameters. Nothing here
 * builds SQL text, except the one statement a role's name must be spelt
 * in (hq_store_pg_grant_analyst), which the server itself quotes.
 *
 * Concurrency between receivers: a transaction that writes a node's rows
 * first takes that node's advisory lock (pg.sql lock_node), so two
 * applies of one node run one after the other (the version rules
 * themselves are each record's one upsert, pg.sql record_put_*); a receipt's
 * primary key (node, segment) makes the second apply of a segment fail
 * -EEXIST and roll back whole; the mailbox's next seq comes from an
 * UPDATE ... RETURNING on the node's row, which orders concurrent posts.
 *
 * Erasure: a transaction that applies an erase, purge or withdraw notes
 * itself in forget_pending; after its commit the records table is
 * vacuumed, and `forget` (from any connection or receiver: the note is
 * in the database) says -EBUSY while a session
 * whose snapshot predates that commit is still open (VACUUM must keep
 * what it may see); what VACUUM does and does not guarantee is in
 * docs/HQ.md, "Erasure on PostgreSQL".
 *
 * Errors name the store: "HQ store postgresql DB on HOST:PORT: what:
 * PostgreSQL's message" (never the conninfo, which may hold a password),
 * with the SQLSTATE mapped to a negative errno as sql_errno does for
 * SQLite.
 */
#include "hq_store.h"
#include "hq_store_pg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_queries.h"

#define PG_MIGRATIONS 2
#define PG_MAX_PARAMS 12

struct pg {
    PGconn *c;
    char name[300];                 /* "postgresql DB on HOST:PORT" */
    unsigned char prep[HQ_Q_COUNT]; /* prepared on this connection */
    char state[6];                  /* the last failure's SQLSTATE */
    int in_tx;
    int tx_forgets;           /* the open transaction dropped record data (noted) */
    char locked[HQ_NODE_MAX]; /* the node whose lock this transaction holds */
};

struct params {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
};

static void p_text(struct params *a, const char *v)
{
    a->v[a->n] = v;
    a->len[a->n] = 0;
    a->fmt[a->n] = 0;
    a->n++;
}

static void p_i64(struct params *a, int64_t v)
{
    snprintf(a->num[a->n], sizeof a->num[a->n], "%" PRId64, v);
    p_text(a, a->num[a->n]);
}

static void p_bin(struct params *a, const void *v, size_t len)
{
    a->v[a->n] = len ? v : "";
    a->len[a->n] = (int)len;
    a->fmt[a->n] = 1;
    a->n++;
}

/* A SQLSTATE as a negative errno (the classes sql_errno gives SQLite's
 * codes). */
static int state_errno(const char *st)
{
    if (!st || strlen(st) != 5)
        return -EIO;
    if (!strncmp(st, "23", 2) || !strncmp(st, "22", 2))
        return -EINVAL; /* integrity constraint, data exception */
    if (!strcmp(st, "40001") || !strcmp(st, "40P01") || !strcmp(st, "55P03"))
        return -EBUSY;
    if (!strcmp(st, "53100"))
        return -ENOSPC;
    if (!strcmp(st, "53200"))
        return -ENOMEM;
    if (!strcmp(st, "42501") || !strncmp(st, "28", 2))
        return -EACCES;
    if (!strcmp(st, "57014"))
        return -EINTR;
    if (!strcmp(st, "25006"))
        return -EROFS;
    return -EIO;
}

/* PostgreSQL's message without its trailing newline. */
static void pg_msg(const char *m, char *out, size_t len)
{
    snprintf(out, len, "%s", m && *m ? m : "connection lost");
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

/* Fills err with "HQ store NAME: WHAT: message" from res (or the
 * connection), clears res, and returns the mapped errno. */
static int fail(struct pg *p, PGresult *res, const char *what, struct op_error *err)
{
    char msg[400];
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(p->state, sizeof p->state, "%s", st ? st : "");
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    pg_msg(primary ? primary : PQerrorMessage(p->c), msg, sizeof msg);
    int code = state_errno(st);
    PQclear(res);
    return op_error_set(err, code, NULL, "HQ store %s: %s: %s", p->name, what, msg);
}

static int unique_failed(struct pg *p)
{
    return !strcmp(p->state, "23505");
}

/* A connection lost outside a transaction is opened again (statements
 * are prepared again on first use, the session's settings set again): a
 * restarted server costs one failed call, not the receiver. */
static void revive(struct pg *p)
{
    if (p->in_tx || PQstatus(p->c) == CONNECTION_OK)
        return;
    PQreset(p->c);
    memset(p->prep, 0, sizeof p->prep);
    /* the session's settings went with the old connection */
    if (PQstatus(p->c) == CONNECTION_OK)
        PQclear(PQexec(p->c, hq_queries.text[HQ_Q_PG_SYNCHRONOUS_COMMIT_ON]));
}

/* Runs query id with parameters a (NULL: none): the result (rows or
 * done), or NULL with err set. */
static PGresult *run(struct pg *p, unsigned id, const struct params *a, const char *what,
                     struct op_error *err)
{
    revive(p);
    p->state[0] = '\0';
    const char *name = hq_queries.names[id];
    if (!p->prep[id]) {
        PGresult *r = PQprepare(p->c, name, hq_queries.text[id], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            (void)fail(p, r, what, err);
            return NULL;
        }
        PQclear(r);
        p->prep[id] = 1;
    }
    PGresult *r = PQexecPrepared(p->c, name, a ? a->n : 0, a ? a->v : NULL, a ? a->len : NULL,
                                 a ? a->fmt : NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        (void)fail(p, r, what, err);
        return NULL;
    }
    return r;
}

/* run() for a statement whose rows do not matter: the rows it changed,
 * or a negative errno. */
static int change(struct pg *p, unsigned id, const struct params *a, const char *what,
                  struct op_error *err)
{
    PGresult *r = run(p, id, a, what, err);
    if (!r)
        return err ? err->code : -EIO;
    const char *n = PQcmdTuples(r);
    int rows = n && *n ? (int)strtol(n, NULL, 10) : 0;
    PQclear(r);
    return rows;
}

/* Runs query id as a simple statement (transaction control, DDL,
 * VACUUM: statements that take no parameters and are not prepared). */
static int plain(struct pg *p, unsigned id, const char *what, struct op_error *err)
{
    revive(p);
    PGresult *r = PQexec(p->c, hq_queries.text[id]);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        return fail(p, r, what, err);
    PQclear(r);
    return 0;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static const char *col_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

/* A bytea column (text format, hex): malloc'd bytes and *len, or NULL. */
static unsigned char *col_bytes(const PGresult *r, int row, int col, size_t *len)
{
    *len = 0;
    if (PQgetisnull(r, row, col))
        return NULL;
    return PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), len);
}

/* A listing's callback and what became of it. */
struct rows {
    int (*row)(const PGresult *r, int i, struct rows *rs);
    union {
        hq_node_fn node;
        hq_record_fn record;
        hq_count_fn count;
        hq_receipt_fn receipt;
        hq_set_aside_fn set_aside;
        hq_mailbox_fn mailbox;
        hq_analyst_fn analyst;
    } cb;
    void *ctx;
    uint64_t seen;
};

/* Calls rs->row for each row of query id, one row in memory at a time
 * (libpq's single-row mode), so a listing of a large store stays small.
 * 0, the callback's non-zero return (the rest of the rows are read and
 * dropped), or a negative errno with err naming what. */
static int each(struct pg *p, unsigned id, const struct params *a, struct rows *rs,
                const char *what, struct op_error *err)
{
    revive(p);
    const char *name = hq_queries.names[id];
    if (!p->prep[id]) {
        PGresult *r = PQprepare(p->c, name, hq_queries.text[id], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return fail(p, r, what, err);
        PQclear(r);
        p->prep[id] = 1;
    }
    if (!PQsendQueryPrepared(p->c, name, a ? a->n : 0, a ? a->v : NULL, a ? a->len : NULL,
                             a ? a->fmt : NULL, 0))
        return fail(p, NULL, what, err);
    (void)PQsetSingleRowMode(p->c);
    int stop = 0, rc = 0;
    PGresult *r;
    while ((r = PQgetResult(p->c)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_SINGLE_TUPLE) {
            if (!stop) {
                rs->seen++;
                int c = rs->row(r, 0, rs);
                if (c)
                    stop = c;
            }
            PQclear(r);
        } else if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
            PQclear(r);
        } else {
            if (!rc)
                rc = fail(p, r, what, err);
            else
                PQclear(r);
        }
    }
    return stop ? stop : rc;
}

/* ---- nodes ---- */

static void read_node(const PGresult *r, int i, struct hq_node *n)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", col_text(r, i, 0));
    snprintf(n->region, sizeof n->region, "%s", col_text(r, i, 1));
    size_t len;
    unsigned char *k = col_bytes(r, i, 2, &len);
    if (k && len == 32)
        memcpy(n->hq_key, k, 32);
    PQfreemem(k);
    n->revoked = (int)col_i64(r, i, 3);
    n->created_ms = col_i64(r, i, 4);
    n->last_contact_ms = col_i64(r, i, 5);
    n->segments_refused = (uint64_t)col_i64(r, i, 6);
    snprintf(n->last_refusal, sizeof n->last_refusal, "%s", col_text(r, i, 7));
    n->segments_applied = (uint64_t)col_i64(r, i, 8);
    n->segments_rejected = (uint64_t)col_i64(r, i, 9);
    n->set_aside = (uint64_t)col_i64(r, i, 10);
    if (!PQgetisnull(r, i, 11)) {
        n->has_last_segment = 1;
        n->last_segment = (uint64_t)col_i64(r, i, 11);
        n->last_segment_created_ms = col_i64(r, i, 12);
    }
    n->mailbox_last = (uint64_t)col_i64(r, i, 13);
}

static int pg_node_add(void *impl, const char *name, const char *region,
                       const unsigned char token_sha256[32], const unsigned char hq_key[32],
                       int64_t now_ms, struct op_error *err)
{
    struct pg *p = impl;
    struct params a = {0};
    p_text(&a, name);
    p_text(&a, region);
    p_bin(&a, token_sha256, 32);
    p_bin(&a, hq_key, 32);
    p_i64(&a, now_ms);
    int rc = change(p, HQ_Q_PG_NODE_ADD, &a, "add node", err);
    if (rc < 0 && unique_failed(p))
        return op_error_set(err, -EEXIST, "name", "node %s already exists", name);
    return rc < 0 ? rc : 0;
}

static int node_one(struct pg *p, unsigned id, const struct params *a, const char *what,
                    struct hq_node *out, struct op_error *err)
{
    PGresult *r = run(p, id, a, "read node", err);
    if (!r)
        return err ? err->code : -EIO;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return op_error_set(err, -ENOENT, "node", "no such node %s", what);
    }
    read_node(r, 0, out);
    PQclear(r);
    return 0;
}

static int pg_node_get(void *impl, const char *name, struct hq_node *out, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, name);
    return node_one(impl, HQ_Q_PG_NODE_BY_NAME, &a, name, out, err);
}

static int pg_node_by_token(void *impl, const unsigned char token_sha256[32], struct hq_node *out,
                            struct op_error *err)
{
    struct params a = {0};
    p_bin(&a, token_sha256, 32);
    return node_one(impl, HQ_Q_PG_NODE_BY_TOKEN_SHA256, &a, "(token)", out, err);
}

static int node_update(struct pg *p, unsigned id, const char *name, const char *reason,
                       int64_t now_ms, int must_exist, const char *what, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, name);
    if (reason)
        p_text(&a, reason);
    p_i64(&a, now_ms);
    int rc = change(p, id, &a, what, err);
    if (rc == 0 && must_exist)
        return op_error_set(err, -ENOENT, "node", "no such node %s", name);
    return rc < 0 ? rc : 0;
}

static int pg_node_revoke(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    return node_update(impl, HQ_Q_PG_NODE_REVOKE, name, NULL, now_ms, 1, "revoke node", err);
}

static int pg_node_touch(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    return node_update(impl, HQ_Q_PG_NODE_TOUCH, name, NULL, now_ms, 0, "record last contact", err);
}

static int pg_node_refused(void *impl, const char *name, const char *reason, int64_t now_ms,
                           struct op_error *err)
{
    return node_update(impl, HQ_Q_PG_NODE_REFUSED, name, reason ? reason : "", now_ms, 1,
                       "count a refused upload", err);
}

static int node_row(const PGresult *r, int i, struct rows *rs)
{
    struct hq_node n;
    read_node(r, i, &n);
    return rs->cb.node(rs->ctx, &n);
}

static int pg_node_list(void *impl, hq_node_fn cb, void *ctx, struct op_error *err)
{
    struct rows rs = {.row = node_row, .cb.node = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_NODE_LIST, NULL, &rs, "list nodes", err);
}

/* ---- transactions ---- */

/* Finishes what transactions noted in forget_pending dropped: vacuums
 * records (and its TOAST table), then looks for a session whose snapshot
 * is older than the newest of them. 0 when nothing waits or none is left
 * (their old row versions are gone, and so are the notes), -EBUSY while
 * such a session is open (the notes stay, for the next call, from this
 * receiver or another). */
static int forget_now(struct pg *p, struct op_error *err)
{
    PGresult *r = run(p, HQ_Q_PG_FORGET_NEWEST, NULL, "look for erasures to finish", err);
    if (!r)
        return err ? err->code : -EIO;
    if (PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return 0;
    }
    char newest[24], xid32[24];
    snprintf(newest, sizeof newest, "%s", PQgetvalue(r, 0, 0));
    snprintf(xid32, sizeof xid32, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    int rc = plain(p, HQ_Q_PG_VACUUM_RECORDS, "vacuum records after an erasure", err);
    if (rc < 0)
        return rc;
    struct params a = {0};
    p_text(&a, xid32);
    r = run(p, HQ_Q_PG_OLDER_SNAPSHOTS, &a, "look for older snapshots", err);
    if (!r)
        return err ? err->code : -EIO;
    int64_t older = col_i64(r, 0, 0);
    PQclear(r);
    if (older > 0)
        return op_error_set(err, -EBUSY, NULL,
                            "HQ store %s: %" PRId64 " session(s) still hold a snapshot from "
                            "before the erasure; vacuum again later",
                            p->name, older);
    struct params b = {0};
    p_text(&b, newest);
    rc = change(p, HQ_Q_PG_FORGET_DONE, &b, "finish an erasure", err);
    return rc < 0 ? rc : 0;
}

/* Inside the open transaction: notes once that it drops record data. */
static int forget_note(struct pg *p, struct op_error *err)
{
    if (p->tx_forgets)
        return 0;
    int rc = change(p, HQ_Q_PG_FORGET_NOTE, NULL, "note an erasure", err);
    if (rc < 0)
        return rc;
    p->tx_forgets = 1;
    return 0;
}

static int pg_begin(void *impl, struct op_error *err)
{
    struct pg *p = impl;
    if (p->in_tx)
        return op_error_set(err, -EBUSY, NULL, "HQ store %s: a transaction is already open",
                            p->name);
    int rc = plain(p, HQ_Q_PG_BEGIN, "begin", err);
    if (rc < 0)
        return rc;
    p->in_tx = 1;
    p->locked[0] = '\0';
    return 0;
}

/* Inside a transaction, the node's lock, taken once (lock_node). */
static int lock_node(struct pg *p, const char *node, struct op_error *err)
{
    if (!p->in_tx || !strcmp(p->locked, node))
        return 0;
    struct params a = {0};
    p_text(&a, node);
    PGresult *r = run(p, HQ_Q_PG_LOCK_NODE, &a, "lock the node's applies", err);
    if (!r)
        return err ? err->code : -EIO;
    PQclear(r);
    snprintf(p->locked, sizeof p->locked, "%s", node);
    return 0;
}

static int pg_commit(void *impl, struct op_error *err)
{
    struct pg *p = impl;
    int rc = plain(p, HQ_Q_PG_COMMIT, "commit", err);
    if (rc < 0)
        return rc; /* still open: the caller rolls back */
    p->in_tx = 0;
    p->locked[0] = '\0';
    /* The commit is durable; a vacuum held back by an older snapshot is
     * finished by `forget`. */
    if (p->tx_forgets) {
        p->tx_forgets = 0;
        (void)forget_now(p, NULL);
    }
    return 0;
}

static void pg_rollback(void *impl)
{
    struct pg *p = impl;
    if (!p->in_tx)
        return;
    if (PQtransactionStatus(p->c) != PQTRANS_IDLE)
        (void)plain(p, HQ_Q_PG_ROLLBACK, "rollback", NULL);
    p->in_tx = 0;
    p->tx_forgets = 0;
    p->locked[0] = '\0';
}

static int pg_forget(void *impl, struct op_error *err)
{
    struct pg *p = impl;
    if (p->in_tx)
        return op_error_set(err, -EBUSY, NULL, "HQ store %s: a transaction is open", p->name);
    return forget_now(p, err);
}

/* ---- receipts and records ---- */

static void read_receipt(const PGresult *r, int i, struct hq_receipt *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->node, sizeof out->node, "%s", col_text(r, i, 0));
    out->segment = (uint64_t)col_i64(r, i, 1);
    out->status = strcmp(col_text(r, i, 2), "applied") ? HQ_RECEIPT_REJECTED : HQ_RECEIPT_APPLIED;
    out->to_urgent = (uint64_t)col_i64(r, i, 3);
    out->to_ordinary = (uint64_t)col_i64(r, i, 4);
    out->records = (uint64_t)col_i64(r, i, 5);
    out->applied = (uint64_t)col_i64(r, i, 6);
    out->set_aside = (uint64_t)col_i64(r, i, 7);
    snprintf(out->reason, sizeof out->reason, "%s", col_text(r, i, 8));
    out->received_ms = col_i64(r, i, 9);
    out->segment_created_ms = col_i64(r, i, 10);
}

static int pg_receipt_get(void *impl, const char *node, uint64_t segment, struct hq_receipt *out,
                          struct op_error *err)
{
    struct pg *p = impl;
    struct params a = {0};
    p_text(&a, node);
    p_i64(&a, (int64_t)segment);
    PGresult *r = run(p, HQ_Q_PG_RECEIPT_GET, &a, "read receipt", err);
    if (!r)
        return err ? err->code : -EIO;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return op_error_set(err, -ENOENT, "segment", "no receipt for node %s segment %" PRIu64,
                            node, segment);
    }
    read_receipt(r, 0, out);
    PQclear(r);
    return 0;
}

static int pg_receipt_put(void *impl, const struct hq_receipt *rc_in, struct op_error *err)
{
    struct pg *p = impl;
    int rc = lock_node(p, rc_in->node, err);
    if (rc < 0)
        return rc;
    struct params a = {0};
    p_text(&a, rc_in->node);
    p_i64(&a, (int64_t)rc_in->segment);
    p_text(&a, hq_receipt_status_name(rc_in->status));
    p_i64(&a, (int64_t)rc_in->to_urgent);
    p_i64(&a, (int64_t)rc_in->to_ordinary);
    p_i64(&a, (int64_t)rc_in->records);
    p_i64(&a, (int64_t)rc_in->applied);
    p_i64(&a, (int64_t)rc_in->set_aside);
    p_text(&a, rc_in->reason);
    p_i64(&a, rc_in->received_ms);
    p_i64(&a, rc_in->segment_created_ms);
    rc = change(p, HQ_Q_PG_RECEIPT_PUT, &a, "write receipt", err);
    if (rc < 0 && unique_failed(p))
        return op_error_set(err, -EEXIST, "segment",
                            "a receipt for node %s segment %" PRIu64 " exists already", rc_in->node,
                            rc_in->segment);
    return rc < 0 ? rc : 0;
}

static int is_tombstone_op(const char *op)
{
    return !strcmp(op, "erase") || !strcmp(op, "purge") || !strcmp(op, "withdraw");
}

static int pg_record_apply(void *impl, const char *node, const char *entity, const char *id,
                           int64_t version, const char *op, const char *json, size_t len,
                           uint64_t segment, enum hq_record_result *result, struct op_error *err)
{
    struct pg *p = impl;
    int tomb = is_tombstone_op(op);
    if (!tomb && strcmp(op, "upsert") && strcmp(op, "delete"))
        return op_error_set(err, -EINVAL, "op", "unknown op \"%s\"", op);
    if (!tomb && !json)
        return op_error_set(err, -EINVAL, "record", "%s %s: no record data", entity, id);
    /* A tombstone outside a transaction gets one of its own: the note
     * that it dropped data commits with it. */
    if (tomb && !p->in_tx) {
        int rc = pg_begin(p, err);
        if (rc < 0)
            return rc;
        rc = pg_record_apply(p, node, entity, id, version, op, json, len, segment, result, err);
        if (rc == 0)
            rc = pg_commit(p, err);
        pg_rollback(p);
        return rc;
    }
    int rc = lock_node(p, node, err);
    if (rc < 0)
        return rc;
    if (tomb && (rc = forget_note(p, err)) < 0)
        return rc;
    /* The record's text as the node sent it: len bytes, NUL-terminated
     * for libpq. */
    char *text = NULL;
    if (!tomb) {
        text = malloc(len + 1);
        if (!text)
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        memcpy(text, json, len);
        text[len] = '\0';
    }
    /* The version rules are the statement's (pg.sql record_put_*): a row
     * back when the record changed. */
    struct params b = {0};
    p_text(&b, node);
    p_text(&b, entity);
    p_text(&b, id);
    p_i64(&b, version);
    p_text(&b, op);
    if (!tomb)
        p_text(&b, text);
    p_i64(&b, (int64_t)segment);
    PGresult *r = run(p, tomb ? HQ_Q_PG_RECORD_PUT_TOMBSTONE : HQ_Q_PG_RECORD_PUT_DATA, &b,
                      "write record", err);
    free(text);
    if (!r)
        return err ? err->code : -EIO;
    int changed = PQntuples(r) == 1;
    PQclear(r);
    *result = changed ? HQ_RECORD_CHANGED : HQ_RECORD_STALE;
    return 0;
}

static int aside(struct pg *p, unsigned id, const char *node, uint64_t segment, uint64_t line,
                 const char *entity, const char *idv, const char *reason, struct op_error *err)
{
    int rc = lock_node(p, node, err);
    if (rc < 0)
        return rc;
    struct params a = {0};
    p_text(&a, node);
    p_i64(&a, (int64_t)segment);
    p_i64(&a, (int64_t)line);
    p_text(&a, entity);
    p_text(&a, idv);
    p_text(&a, reason);
    rc = change(p, id, &a, "set a record aside", err);
    return rc < 0 ? rc : 0;
}

static int pg_set_aside_add(void *impl, const char *node, uint64_t segment, uint64_t line,
                            const char *entity, const char *id, const char *reason,
                            struct op_error *err)
{
    return aside(impl, HQ_Q_PG_SET_ASIDE_ADD, node, segment, line, entity, id, reason, err);
}

static int pg_needs_whole_add(void *impl, const char *node, uint64_t segment, uint64_t line,
                              const char *entity, const char *id, const char *reason,
                              struct op_error *err)
{
    return aside(impl, HQ_Q_PG_NEEDS_WHOLE_ADD, node, segment, line, entity, id, reason, err);
}

static int pg_record_get(void *impl, const char *node, const char *entity, const char *id,
                         int64_t *version, char op[HQ_OP_MAX], char **json, struct op_error *err)
{
    struct pg *p = impl;
    *json = NULL;
    struct params a = {0};
    p_text(&a, node);
    p_text(&a, entity);
    p_text(&a, id);
    PGresult *r = run(p, HQ_Q_PG_RECORD_FULL, &a, "read record", err);
    if (!r)
        return err ? err->code : -EIO;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return op_error_set(err, -ENOENT, "id", "node %s holds no %s %s", node, entity, id);
    }
    *version = col_i64(r, 0, 0);
    snprintf(op, HQ_OP_MAX, "%s", col_text(r, 0, 1));
    if (!PQgetisnull(r, 0, 2)) {
        *json = strdup(PQgetvalue(r, 0, 2));
        if (!*json) {
            PQclear(r);
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        }
    }
    PQclear(r);
    return 0;
}

/* ---- listings ---- */

static int record_row(const PGresult *r, int i, struct rows *rs)
{
    struct hq_record_row row = {
        .node = col_text(r, i, 0),
        .entity = col_text(r, i, 1),
        .id = col_text(r, i, 2),
        .version = col_i64(r, i, 3),
        .op = col_text(r, i, 4),
        .json = col_text(r, i, 5),
    };
    return rs->cb.record(rs->ctx, &row);
}

static void two_filters(struct params *a, const char *x, const char *y)
{
    p_text(a, x);
    p_text(a, y);
}

static int pg_records_list(void *impl, const char *node, const char *entity, hq_record_fn cb,
                           void *ctx, struct op_error *err)
{
    struct params a = {0};
    two_filters(&a, node, entity);
    struct rows rs = {.row = record_row, .cb.record = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_RECORDS_LIST, &a, &rs, "list records", err);
}

static int pg_tombstones_list(void *impl, const char *node, hq_record_fn cb, void *ctx,
                              struct op_error *err)
{
    struct params a = {0};
    two_filters(&a, node, NULL);
    struct rows rs = {.row = record_row, .cb.record = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_TOMBSTONES_LIST, &a, &rs, "list tombstones", err);
}

static int count_row(const PGresult *r, int i, struct rows *rs)
{
    return rs->cb.count(rs->ctx, col_text(r, i, 0), (uint64_t)col_i64(r, i, 1));
}

static int pg_records_count(void *impl, const char *node, const char *entity, hq_count_fn cb,
                            void *ctx, struct op_error *err)
{
    struct params a = {0};
    two_filters(&a, node, entity);
    struct rows rs = {.row = count_row, .cb.count = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_RECORDS_COUNT, &a, &rs, "count records", err);
}

static int receipt_row(const PGresult *r, int i, struct rows *rs)
{
    struct hq_receipt rec;
    read_receipt(r, i, &rec);
    return rs->cb.receipt(rs->ctx, &rec);
}

static int pg_receipts_list(void *impl, const char *node, hq_receipt_fn cb, void *ctx,
                            struct op_error *err)
{
    struct params a = {0};
    p_text(&a, node);
    struct rows rs = {.row = receipt_row, .cb.receipt = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_RECEIPTS_LIST, &a, &rs, "list receipts", err);
}

static int set_aside_row(const PGresult *r, int i, struct rows *rs)
{
    struct hq_set_aside_row row = {
        .node = col_text(r, i, 0),
        .segment = (uint64_t)col_i64(r, i, 1),
        .line = (uint64_t)col_i64(r, i, 2),
        .entity = col_text(r, i, 3),
        .id = col_text(r, i, 4),
        .reason = col_text(r, i, 5),
    };
    return rs->cb.set_aside(rs->ctx, &row);
}

static int pg_set_aside_list(void *impl, const char *node, hq_set_aside_fn cb, void *ctx,
                             struct op_error *err)
{
    struct params a = {0};
    p_text(&a, node);
    struct rows rs = {.row = set_aside_row, .cb.set_aside = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_SET_ASIDE_LIST, &a, &rs, "list set-aside records", err);
}

static int pg_needs_whole_list(void *impl, const char *node, uint64_t segment, hq_set_aside_fn cb,
                               void *ctx, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, node);
    p_i64(&a, (int64_t)segment);
    struct rows rs = {.row = set_aside_row, .cb.set_aside = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_NEEDS_WHOLE_LIST, &a, &rs, "list records needing the whole", err);
}

static int pg_totals(void *impl, struct hq_totals *out, struct op_error *err)
{
    struct pg *p = impl;
    PGresult *r = run(p, HQ_Q_PG_TOTALS, NULL, "totals", err);
    if (!r)
        return err ? err->code : -EIO;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return op_error_set(err, -EIO, NULL, "HQ store %s: totals: no row", p->name);
    }
    uint64_t *const in_order[] = {&out->nodes,      &out->nodes_revoked,    &out->records,
                                  &out->tombstones, &out->receipts_applied, &out->receipts_rejected,
                                  &out->refused,    &out->set_aside,        &out->mailbox};
    for (int i = 0; i < (int)(sizeof in_order / sizeof in_order[0]); i++)
        *in_order[i] = (uint64_t)col_i64(r, 0, i);
    PQclear(r);
    return 0;
}

/* ---- mailbox ---- */

static int pg_mailbox_post(void *impl, const char *node, const char *kind, const char *body,
                           size_t body_len, int64_t now_ms, uint64_t *seq, struct op_error *err)
{
    struct pg *p = impl;
    if (body_len > HQ_MAILBOX_BODY_MAX)
        return op_error_set(err, -EFBIG, "body", "message body of %zu bytes is over %u", body_len,
                            HQ_MAILBOX_BODY_MAX);
    if (!kind ||
        (strcmp(kind, "policy") && strcmp(kind, "reference") && strcmp(kind, "aggregate_request")))
        return op_error_set(err, -EINVAL, "kind",
                            "mailbox kind must be policy, reference or aggregate_request");
    int own = !p->in_tx;
    int rc;
    if (own && (rc = pg_begin(p, err)) < 0)
        return rc;
    struct params a = {0};
    p_text(&a, node);
    PGresult *r = run(p, HQ_Q_PG_MAILBOX_NEXT, &a, "mailbox sequence", err);
    if (!r) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        rc = op_error_set(err, -ENOENT, "node", "no such node %s", node);
        goto out;
    }
    int64_t next = col_i64(r, 0, 0);
    PQclear(r);
    struct params b = {0};
    p_text(&b, node);
    p_i64(&b, next);
    p_text(&b, kind);
    p_bin(&b, body, body_len);
    p_i64(&b, now_ms);
    rc = change(p, HQ_Q_PG_MAILBOX_ADD, &b, "post a mailbox message", err);
    if (rc < 0)
        goto out;
    if (own && (rc = pg_commit(p, err)) < 0)
        goto out;
    *seq = (uint64_t)next;
    return 0;
out:
    if (own)
        pg_rollback(p);
    return rc;
}

static int mailbox_row(const PGresult *r, int i, struct rows *rs)
{
    size_t len = 0;
    unsigned char *b = col_bytes(r, i, 2, &len);
    /* NUL-terminated for the callback, as the SQLite backend's */
    char *body = malloc(len + 1);
    if (!body) {
        PQfreemem(b);
        return -ENOMEM;
    }
    if (len)
        memcpy(body, b, len);
    body[len] = '\0';
    PQfreemem(b);
    struct hq_mailbox_msg m = {
        .seq = (uint64_t)col_i64(r, i, 0),
        .kind = col_text(r, i, 1),
        .body = body,
        .body_len = len,
        .created_ms = col_i64(r, i, 3),
    };
    int c = rs->cb.mailbox(rs->ctx, &m);
    free(body);
    return c;
}

static int pg_mailbox_list(void *impl, const char *node, uint64_t after, unsigned limit,
                           hq_mailbox_fn cb, void *ctx, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, node);
    p_i64(&a, (int64_t)(after > INT64_MAX ? INT64_MAX : after));
    p_i64(&a, (int64_t)limit);
    struct rows rs = {.row = mailbox_row, .cb.mailbox = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_MAILBOX_LIST, &a, &rs, "list mailbox", err);
}

static int pg_mailbox_policy_get(void *impl, const char *node, const char *hash, hq_mailbox_fn cb,
                                 void *ctx, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, node);
    p_text(&a, hash);
    struct rows rs = {.row = mailbox_row, .cb.mailbox = cb, .ctx = ctx};
    int rc = each(impl, HQ_Q_PG_MAILBOX_POLICY, &a, &rs, "find a posted policy", err);
    if (rc == 0 && !rs.seen)
        return op_error_set(err, -ENOENT, "policy_hash",
                            "HQ posted no policy with hash %.64s to node %s", hash, node);
    return rc;
}

/* ---- analysts ---- */

static void read_analyst(const PGresult *r, int i, struct hq_analyst *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", col_text(r, i, 0));
    a->revoked = (int)col_i64(r, i, 1);
    a->created_ms = col_i64(r, i, 2);
    a->revoked_ms = col_i64(r, i, 3);
    a->last_used_ms = col_i64(r, i, 4);
}

static int pg_analyst_add(void *impl, const char *name, const unsigned char token_sha256[32],
                          int64_t now_ms, struct op_error *err)
{
    struct pg *p = impl;
    struct params a = {0};
    p_text(&a, name);
    p_bin(&a, token_sha256, 32);
    p_i64(&a, now_ms);
    int rc = change(p, HQ_Q_PG_ANALYST_ADD, &a, "add analyst", err);
    if (rc < 0 && unique_failed(p))
        return op_error_set(err, -EEXIST, "name", "analyst %s already exists", name);
    return rc < 0 ? rc : 0;
}

static int pg_analyst_by_token(void *impl, const unsigned char token_sha256[32],
                               struct hq_analyst *out, struct op_error *err)
{
    struct pg *p = impl;
    struct params a = {0};
    p_bin(&a, token_sha256, 32);
    PGresult *r = run(p, HQ_Q_PG_ANALYST_BY_TOKEN, &a, "read analyst", err);
    if (!r)
        return err ? err->code : -EIO;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return op_error_set(err, -ENOENT, "analyst", "no such analyst (token)");
    }
    read_analyst(r, 0, out);
    PQclear(r);
    return 0;
}

static int pg_analyst_revoke(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, name);
    p_i64(&a, now_ms);
    int rc = change(impl, HQ_Q_PG_ANALYST_REVOKE, &a, "revoke analyst", err);
    if (rc == 0)
        return op_error_set(err, -ENOENT, "analyst", "no such analyst %s", name);
    return rc < 0 ? rc : 0;
}

static int pg_analyst_touch(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, name);
    p_i64(&a, now_ms);
    int rc = change(impl, HQ_Q_PG_ANALYST_TOUCH, &a, "record an analyst's request", err);
    return rc < 0 ? rc : 0;
}

static int analyst_row(const PGresult *r, int i, struct rows *rs)
{
    struct hq_analyst a;
    read_analyst(r, i, &a);
    return rs->cb.analyst(rs->ctx, &a);
}

static int pg_analyst_list(void *impl, hq_analyst_fn cb, void *ctx, struct op_error *err)
{
    struct rows rs = {.row = analyst_row, .cb.analyst = cb, .ctx = ctx};
    return each(impl, HQ_Q_PG_ANALYST_LIST, NULL, &rs, "list analysts", err);
}

/* ---- anti-entropy ---- */

static int pg_verify_put(void *impl, const struct hq_verify *v, struct op_error *err)
{
    struct params a = {0};
    p_text(&a, v->node);
    p_i64(&a, v->at_ms);
    p_text(&a, v->result);
    const uint64_t n[] = {v->compared, v->hq_records, v->ranges, v->requests,
                          v->bytes,    v->drift,      v->resent, v->reported};
    for (int i = 0; i < 8; i++)
        p_i64(&a, (int64_t)n[i]);
    int rc = change(impl, HQ_Q_PG_VERIFY_PUT, &a, "record a check", err);
    return rc < 0 ? rc : 0;
}

static int pg_verify_get(void *impl, const char *node, struct hq_verify *out, struct op_error *err)
{
    struct pg *p = impl;
    struct params a = {0};
    p_text(&a, node);
    PGresult *r = run(p, HQ_Q_PG_VERIFY_GET, &a, "read the last check", err);
    if (!r)
        return err ? err->code : -EIO;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return op_error_set(err, -ENOENT, "node", "no check of node %s yet", node);
    }
    memset(out, 0, sizeof *out);
    snprintf(out->node, sizeof out->node, "%s", col_text(r, 0, 0));
    out->at_ms = col_i64(r, 0, 1);
    snprintf(out->result, sizeof out->result, "%s", col_text(r, 0, 2));
    uint64_t *n[] = {&out->compared, &out->hq_records, &out->ranges, &out->requests,
                     &out->bytes,    &out->drift,      &out->resent, &out->reported};
    for (int i = 0; i < 8; i++)
        *n[i] = (uint64_t)col_i64(r, 0, 3 + i);
    PQclear(r);
    return 0;
}

static void pg_close(void *impl)
{
    struct pg *p = impl;
    if (!p)
        return;
    PQfinish(p->c);
    free(p);
}

static const struct hq_store_ops pg_ops = {
    .close = pg_close,
    .node_add = pg_node_add,
    .node_get = pg_node_get,
    .node_by_token = pg_node_by_token,
    .node_revoke = pg_node_revoke,
    .node_touch = pg_node_touch,
    .node_refused = pg_node_refused,
    .node_list = pg_node_list,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .forget = pg_forget,
    .receipt_get = pg_receipt_get,
    .receipt_put = pg_receipt_put,
    .record_apply = pg_record_apply,
    .set_aside_add = pg_set_aside_add,
    .record_get = pg_record_get,
    .needs_whole_add = pg_needs_whole_add,
    .needs_whole_list = pg_needs_whole_list,
    .records_list = pg_records_list,
    .tombstones_list = pg_tombstones_list,
    .records_count = pg_records_count,
    .receipts_list = pg_receipts_list,
    .set_aside_list = pg_set_aside_list,
    .totals = pg_totals,
    .mailbox_post = pg_mailbox_post,
    .mailbox_list = pg_mailbox_list,
    .mailbox_policy_get = pg_mailbox_policy_get,
    .analyst_add = pg_analyst_add,
    .analyst_by_token = pg_analyst_by_token,
    .analyst_revoke = pg_analyst_revoke,
    .analyst_touch = pg_analyst_touch,
    .analyst_list = pg_analyst_list,
    .verify_put = pg_verify_put,
    .verify_get = pg_verify_get,
};

/* ---- opening and migrating ---- */

/* Migration N's statements in pg_migrations.sql, in order; each ends by
 * setting the version to N (set_version). */
static const unsigned pg_migration_1[] = {
    HQ_Q_PG_MIGRATIONS_V1_SCHEMA,         HQ_Q_PG_MIGRATIONS_V1_SCHEMA_ROW,
    HQ_Q_PG_MIGRATIONS_V1_NODES,          HQ_Q_PG_MIGRATIONS_V1_RECEIPTS,
    HQ_Q_PG_MIGRATIONS_V1_RECORDS,        HQ_Q_PG_MIGRATIONS_V1_SET_ASIDE,
    HQ_Q_PG_MIGRATIONS_V1_MAILBOX,        HQ_Q_PG_MIGRATIONS_V1_POLICY_INDEX,
    HQ_Q_PG_MIGRATIONS_V1_ANALYSTS,       HQ_Q_PG_MIGRATIONS_V1_VERIFY_LAST,
    HQ_Q_PG_MIGRATIONS_V1_FORGET_PENDING,
};
static const unsigned pg_migration_2[] = {
    HQ_Q_PG_MIGRATIONS_V2_SCHEMA,     HQ_Q_PG_MIGRATIONS_V2_REGIONS,
    HQ_Q_PG_MIGRATIONS_V2_RECORDS,    HQ_Q_PG_MIGRATIONS_V2_RECORD_COUNTS,
    HQ_Q_PG_MIGRATIONS_V2_CONTACTS,   HQ_Q_PG_MIGRATIONS_V2_ORGANIZATIONS,
    HQ_Q_PG_MIGRATIONS_V2_DEALS,      HQ_Q_PG_MIGRATIONS_V2_ACTIVITIES,
    HQ_Q_PG_MIGRATIONS_V2_AGGREGATES, HQ_Q_PG_MIGRATIONS_V2_RECEIPTS,
};
static const struct {
    const unsigned *steps;
    size_t n;
} pg_migrations[PG_MIGRATIONS] = {
    {pg_migration_1, sizeof pg_migration_1 / sizeof pg_migration_1[0]},
    {pg_migration_2, sizeof pg_migration_2 / sizeof pg_migration_2[0]},
};

/* Reads the schema's version under the migration lock (inside the open
 * transaction): 0 and *ver (-1: no schema table), or a negative errno. */
static int read_version(struct pg *p, int *ver, int64_t *objects, struct op_error *err)
{
    PGresult *r = run(p, HQ_Q_PG_MIGRATIONS_SCHEMA_EXISTS, NULL, "read the schema version", err);
    if (!r)
        return err ? err->code : -EIO;
    int64_t has = col_i64(r, 0, 0);
    PQclear(r);
    *ver = -1;
    if (has) {
        /* not prepared: the table may not have existed when a statement
         * naming it would have been */
        r = PQexec(p->c, hq_queries.text[HQ_Q_PG_MIGRATIONS_VERSION]);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            return fail(p, r, "read the schema version", err);
        *ver = PQntuples(r) == 1 ? (int)col_i64(r, 0, 0) : -2;
        PQclear(r);
    }
    r = run(p, HQ_Q_PG_MIGRATIONS_OBJECTS, NULL, "count schema objects", err);
    if (!r)
        return err ? err->code : -EIO;
    *objects = col_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

static int migrate(struct pg *p, struct op_error *err)
{
    int rc = plain(p, HQ_Q_PG_BEGIN, "migrate", err);
    if (rc < 0)
        return rc;
    PGresult *r = run(p, HQ_Q_PG_MIGRATIONS_LOCK, NULL, "lock the schema", err);
    if (!r) {
        rc = err ? err->code : -EIO;
        goto fail;
    }
    PQclear(r);
    int ver = -1;
    int64_t objects = 0;
    if ((rc = read_version(p, &ver, &objects, err)) < 0)
        goto fail;
    if (ver == -2 || (ver == -1 && objects != 0)) {
        rc = op_error_set(err, -EINVAL, NULL,
                          "%s is not an outpost-hq store (it holds %" PRId64
                          " tables or views but no outpost_hq_schema row); another "
                          "program's database?",
                          p->name, objects);
        goto fail;
    }
    if (ver > PG_MIGRATIONS) {
        rc = op_error_set(err, -EPROTO, NULL,
                          "%s has schema version %d, this outpost-hq knows up to %d: upgrade "
                          "outpost-hq",
                          p->name, ver, PG_MIGRATIONS);
        goto fail;
    }
    for (int i = ver < 0 ? 0 : ver; i < PG_MIGRATIONS; i++) {
        for (size_t k = 0; k < pg_migrations[i].n; k++)
            if ((rc = plain(p, pg_migrations[i].steps[k], "migrate", err)) < 0)
                goto fail;
        struct params a = {0};
        p_i64(&a, i + 1);
        PGresult *s = PQexecParams(p->c, hq_queries.text[HQ_Q_PG_MIGRATIONS_SET_VERSION], a.n, NULL,
                                   a.v, a.len, a.fmt, 0);
        if (PQresultStatus(s) != PGRES_COMMAND_OK) {
            rc = fail(p, s, "migrate", err);
            goto fail;
        }
        PQclear(s);
    }
    if ((rc = plain(p, HQ_Q_PG_COMMIT, "migrate", err)) < 0)
        goto fail;
    return 0;
fail:
    (void)plain(p, HQ_Q_PG_ROLLBACK, "rollback", NULL);
    return rc;
}

/* Connects to spec: 0 and *out (not yet migrated), or -EIO naming the
 * server (never the conninfo). */
static int connect_pg(const char *spec, struct pg **out, struct op_error *err)
{
    struct pg *p = calloc(1, sizeof *p);
    if (!p)
        return op_error_set(err, -ENOMEM, NULL, "out of memory opening the HQ store");
    /* seen as "outpost-hq" in pg_stat_activity unless spec names itself */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {spec, "outpost-hq", NULL};
    p->c = PQconnectdbParams(keys, vals, 1);
    if (!p->c) {
        free(p);
        return op_error_set(err, -ENOMEM, NULL, "out of memory opening the HQ store");
    }
    if (PQstatus(p->c) != CONNECTION_OK) {
        char msg[400];
        pg_msg(PQerrorMessage(p->c), msg, sizeof msg);
        int rc = op_error_set(
            err, strstr(msg, "password") || strstr(msg, "authentication") ? -EACCES : -EIO, "store",
            "cannot open HQ store on PostgreSQL: %s", msg);
        pg_close(p);
        return rc;
    }
    const char *host = PQhost(p->c);
    snprintf(p->name, sizeof p->name, "postgresql %s on %s:%s", PQdb(p->c),
             host && *host ? host : "(socket)", PQport(p->c));
    *out = p;
    return 0;
}

int hq_store_pg_open(const char *conninfo, struct hq_store *out, struct op_error *err)
{
    struct pg *p = NULL;
    int rc = connect_pg(conninfo, &p, err);
    if (rc < 0)
        return rc;
    if ((rc = plain(p, HQ_Q_PG_SYNCHRONOUS_COMMIT_ON, "settings", err)) < 0 ||
        (rc = migrate(p, err)) < 0) {
        pg_close(p);
        return rc;
    }
    out->ops = &pg_ops;
    out->impl = p;
    return 0;
}

/* An analyst's login role name: what PostgreSQL takes unquoted. */
static int role_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 63 || !islower((unsigned char)n[0]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!islower((unsigned char)n[i]) && !isdigit((unsigned char)n[i]) && n[i] != '_')
            return 0;
    return 1;
}

int hq_store_pg_grant_analyst(const char *conninfo, const char *role, const char *password,
                              struct op_error *err)
{
    if (!strncmp(role, "pg_", 3) || !strcmp(role, "outpost_analyst") || !strcmp(role, "public"))
        return op_error_set(err, -EINVAL, "name",
                            "analyst role \"%s\": that name is PostgreSQL's or the group role's",
                            role);
    if (!role_name_ok(role))
        return op_error_set(err, -EINVAL, "name",
                            "analyst role \"%s\": use 1 to 63 of a-z, 0-9 and _, starting with "
                            "a letter",
                            role);
    struct hq_store st;
    int rc = hq_store_pg_open(conninfo, &st, err); /* migrated: the views exist */
    if (rc < 0)
        return rc;
    struct pg *p = st.impl;
    if ((rc = plain(p, HQ_Q_PG_BEGIN, "grant analyst", err)) < 0)
        goto out;
    p->in_tx = 1;
    PGresult *r = run(p, HQ_Q_PG_ANALYST_ROLE_EXISTS, NULL, "grant analyst", err);
    if (!r) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    int64_t group = col_i64(r, 0, 0);
    PQclear(r);
    if (!group &&
        (rc = plain(p, HQ_Q_PG_ANALYST_ROLE_CREATE, "create role outpost_analyst", err)) < 0)
        goto out;
    if ((rc = plain(p, HQ_Q_PG_ANALYST_ROLE_USAGE, "grant analyst", err)) < 0 ||
        (rc = plain(p, HQ_Q_PG_ANALYST_ROLE_SELECT, "grant analyst", err)) < 0 ||
        (rc = plain(p, HQ_Q_PG_ANALYST_ROLE_DEFAULT, "grant analyst", err)) < 0)
        goto out;
    struct params a = {0};
    p_text(&a, role);
    r = run(p, HQ_Q_PG_ANALYST_LOGIN_EXISTS, &a, "grant analyst", err);
    if (!r) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    int64_t exists = col_i64(r, 0, 0);
    PQclear(r);
    if (exists) {
        rc = op_error_set(err, -EEXIST, "name", "role %s already exists in %s", role, p->name);
        goto out;
    }
    /* the SCRAM verifier, made here: the password never reaches the
     * server nor its log */
    char *verifier = PQencryptPasswordConn(p->c, password, role, "scram-sha-256");
    if (!verifier) {
        rc = fail(p, NULL, "hash the password", err);
        goto out;
    }
    struct params b = {0};
    p_text(&b, role);
    p_text(&b, verifier);
    r = run(p, HQ_Q_PG_ANALYST_LOGIN_TEXT, &b, "grant analyst", err);
    PQfreemem(verifier);
    if (!r) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    char *create = strdup(col_text(r, 0, 0));
    PQclear(r);
    if (!create) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    PGresult *c = PQexec(p->c, create);
    free(create);
    if (PQresultStatus(c) != PGRES_COMMAND_OK) {
        rc = fail(p, c, "create the analyst's role", err);
        goto out;
    }
    PQclear(c);
    if ((rc = plain(p, HQ_Q_PG_COMMIT, "grant analyst", err)) < 0)
        goto out;
    p->in_tx = 0;
out:
    pg_rollback(p);
    hq_store_close(&st);
    return rc;
}
