/*
 * The SQLite backend of the HQ store (interface and invariants in
 * hq_store.h). One connection in WAL mode with synchronous=FULL, so a
 * committed apply survives power loss; the file is marked with its own
 * application_id ("OUTH") and a user_version that counts the migrations
 * (sql/migrations.sql), so a node database or a foreign file is refused
 * and a store from a newer build is not written to. Its queries are the
 * hq room's named queries (sql/hq.sql, sync/toolkit/sql.h): prepared once
 * per connection and bound with parameters. The schema is HQ's own rather
 * than schema/migrations because it belongs to a different database (the
 * node's migrations must never run on it, nor these on a node).
 *
 * Errors name the store: "HQ store PATH: what: SQLite's message", with
 * sql_errno's code; a constraint is -EEXIST only where it means "already
 * there" (a node's name or token, a segment's receipt).
 *
 * HQ forgets what a node erased: the connection runs with secure_delete
 * ON, so a dropped record's bytes are zeroed in its page (and whole pages
 * going to the freelist, such as a long record's overflow pages, are
 * zeroed too), and after a transaction that applied an erase, purge or
 * withdraw commits, the log is checkpointed with TRUNCATE, because the
 * WAL still holds the frames that once wrote the old values. So it is
 * after a record is replaced by one that lacks a field the stored one had,
 * or by a same-version re-projection with other text (a node's
 * re-projection under a tighter policy drops or pseudonymizes the values
 * it may no longer send: docs/EGRESS.md, "Paced segments"). There is no
 * full-text index to optimize in this store.
 */
#include "hq_store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hq_queries.h"
#include "sql.h"

#define HQ_APPLICATION_ID 0x4f555448 /* "OUTH"; migrations.sql's mark_hq sets it */
#define HQ_BUSY_MS 10000
/* How long the log truncation after an erasure waits for readers: it runs
 * on outpost-hq's loop thread, so it must not stall it; what a reader
 * holds back is truncated later by `forget`. */
#define HQ_FORGET_BUSY_MS 200

/* Migration N takes user_version N-1 to N in one transaction: its
 * statements in migrations.sql, marking the file as HQ's and ending with
 * its user_version. */
static const unsigned migration_1[] = {
    HQ_Q_MIGRATIONS_V1_NODES,           HQ_Q_MIGRATIONS_V1_RECEIPTS, HQ_Q_MIGRATIONS_V1_RECORDS,
    HQ_Q_MIGRATIONS_V1_SET_ASIDE,       HQ_Q_MIGRATIONS_V1_MAILBOX,  HQ_Q_MIGRATIONS_MARK_HQ,
    HQ_Q_MIGRATIONS_SET_USER_VERSION_1,
};
static const unsigned migration_2[] = {
    HQ_Q_MIGRATIONS_V2_POLICY_HASH,     HQ_Q_MIGRATIONS_V2_POLICY_HASH_FILL,
    HQ_Q_MIGRATIONS_V2_POLICY_INDEX,    HQ_Q_MIGRATIONS_MARK_HQ,
    HQ_Q_MIGRATIONS_SET_USER_VERSION_2,
};
static const unsigned migration_3[] = {
    HQ_Q_MIGRATIONS_V3_ANALYSTS,
    HQ_Q_MIGRATIONS_MARK_HQ,
    HQ_Q_MIGRATIONS_SET_USER_VERSION_3,
};
static const unsigned migration_4[] = {
    HQ_Q_MIGRATIONS_V4_NEEDS_WHOLE,
    HQ_Q_MIGRATIONS_MARK_HQ,
    HQ_Q_MIGRATIONS_SET_USER_VERSION_4,
};
static const unsigned migration_5[] = {
    HQ_Q_MIGRATIONS_V5_VERIFY_LAST,
    HQ_Q_MIGRATIONS_MARK_HQ,
    HQ_Q_MIGRATIONS_SET_USER_VERSION_5,
};
static const struct migration {
    const unsigned *steps;
    size_t n;
} migrations[] = {
    {migration_1, sizeof migration_1 / sizeof migration_1[0]},
    {migration_2, sizeof migration_2 / sizeof migration_2[0]},
    {migration_3, sizeof migration_3 / sizeof migration_3[0]},
    {migration_4, sizeof migration_4 / sizeof migration_4[0]},
    {migration_5, sizeof migration_5 / sizeof migration_5[0]},
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

struct sq {
    sqlite3 *db;
    char path[1024];
    struct sql_cache q; /* the hq set on db */
    int in_tx;
    int tx_forgets;     /* the open transaction applied an erase/purge/withdraw,
                           or dropped a field of a record */
    int forget_pending; /* committed, but the log could not be truncated yet */
};

/* Fills err with "HQ store PATH: WHAT: SQLite's last message" and returns
 * code, a negative errno (sql_errno's translation), or -EIO. */
static int fail(struct sq *s, int code, const char *what, struct op_error *err)
{
    return op_error_set(err, code < 0 ? code : -EIO, NULL, "HQ store %s: %s: %s", s->path, what,
                        sqlite3_errmsg(s->db));
}

/* Whether the last statement failed on a constraint (a UNIQUE or PRIMARY
 * KEY among them): the one failure that can mean "already there". */
static int constraint_failed(struct sq *s)
{
    return (sqlite3_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT;
}

/* Query id, reset and unbound; NULL on failure (err set). */
static sqlite3_stmt *stmt(struct sq *s, unsigned id, const char *what, struct op_error *err)
{
    struct op_error e;
    op_error_clear(&e);
    sqlite3_stmt *st = sql_get(&s->q, id, &e);
    if (!st)
        (void)fail(s, e.code, what, err);
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        (void)sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        (void)sqlite3_bind_null(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Runs query id's statement st to its end: the rows it changed. */
static int run(struct sq *s, unsigned id, sqlite3_stmt *st, const char *what, struct op_error *err)
{
    int rc = sql_run(&s->q, id, st, NULL);
    return rc < 0 ? fail(s, rc, what, err) : rc;
}

/* Steps query id's statement st: 1 with a row (reset st when done with
 * it), 0 at the end. */
static int step(struct sq *s, unsigned id, sqlite3_stmt *st, const char *what, struct op_error *err)
{
    int rc = sql_step(&s->q, id, st, NULL);
    return rc < 0 ? fail(s, rc, what, err) : rc;
}

/* Runs query id, which takes no parameters. */
static int exec(struct sq *s, unsigned id, const char *what, struct op_error *err)
{
    sqlite3_stmt *st = stmt(s, id, what, err);
    if (!st)
        return err ? err->code : -EIO;
    int rc = run(s, id, st, what, err);
    return rc < 0 ? rc : 0;
}

/* The first column of query id's one row (0 when it has none). */
static int read_int(struct sq *s, unsigned id, const char *what, int *out, struct op_error *err)
{
    sqlite3_stmt *st = stmt(s, id, what, err);
    if (!st)
        return err ? err->code : -EIO;
    int rc = step(s, id, st, what, err);
    if (rc < 0)
        return rc;
    *out = rc ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return 0;
}

/* A listing's callback and what became of it; the row functions below
 * call it once per row (sql_each). */
struct rows {
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
    int stopped; /* the callback returned non-zero: that is the result */
};

/* Counts the row and notes whether the callback's return c stops the
 * listing. */
static int rows_took(struct rows *r, int c)
{
    r->seen++;
    if (c)
        r->stopped = 1;
    return c;
}

/* Calls row for each row of query id's statement st: 0, the callback's
 * non-zero return, or a negative errno with err naming what. */
static int list(struct sq *s, unsigned id, sqlite3_stmt *st, sql_row_fn row, struct rows *r,
                const char *what, struct op_error *err)
{
    int rc = sql_each(&s->q, id, st, row, r, NULL);
    if (r->stopped)
        return rc;
    return rc < 0 ? fail(s, rc, what, err) : 0;
}

/* list() of query id with its text parameters bound: ?1 = a and, when
 * the query takes a second, ?2 = b (NULL binds NULL). */
static int list_text(struct sq *s, unsigned id, const char *a, const char *b, sql_row_fn row,
                     struct rows *r, const char *what, struct op_error *err)
{
    sqlite3_stmt *st = stmt(s, id, what, err);
    if (!st)
        return err ? err->code : -EIO;
    int n = sqlite3_bind_parameter_count(st);
    if (n >= 1)
        bind_text(st, 1, a);
    if (n >= 2)
        bind_text(st, 2, b);
    return list(s, id, st, row, r, what, err);
}

/* outpost_sha256_hex(X): the SHA-256 of X's bytes in lower-case hex, as
 * a policy's hash is (policy.h); NULL for NULL. */
static void sha256_hex_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const void *data = sqlite3_value_blob(argv[0]);
    int len = sqlite3_value_bytes(argv[0]);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(data ? data : "", (size_t)len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        sqlite3_result_error(ctx, "cannot compute SHA-256", -1);
        return;
    }
    char hex[65];
    (void)codec_hex_encode(md, 32, hex, sizeof hex);
    sqlite3_result_text(ctx, hex, 64, SQLITE_TRANSIENT);
}

/* Runs one migration in its own transaction; the statements come from a
 * cache of their own, finalized after the migrations (they are never run
 * again on this connection). */
static int migrate_one(struct sq *s, struct sql_cache *m, const struct migration *mg,
                       struct op_error *err)
{
    int rc = exec(s, HQ_Q_HQ_BEGIN, "migrate", err);
    if (rc < 0)
        return rc;
    for (size_t k = 0; k < mg->n; k++) {
        rc = sql_exec(m, mg->steps[k], NULL);
        if (rc < 0) {
            (void)fail(s, rc, "migrate", err);
            (void)exec(s, HQ_Q_HQ_ROLLBACK, "rollback", NULL);
            return rc;
        }
    }
    if ((rc = exec(s, HQ_Q_HQ_COMMIT, "migrate", err)) < 0) {
        (void)exec(s, HQ_Q_HQ_ROLLBACK, "rollback", NULL);
        return rc;
    }
    return 0;
}

static int migrate(struct sq *s, struct op_error *err)
{
    int app = 0, ver = 0, objects = 0;
    int rc = read_int(s, HQ_Q_HQ_APPLICATION_ID, "read application_id", &app, err);
    if (rc == 0)
        rc = read_int(s, HQ_Q_HQ_USER_VERSION, "read user_version", &ver, err);
    if (rc == 0)
        rc = read_int(s, HQ_Q_HQ_SCHEMA_OBJECTS, "count schema objects", &objects, err);
    if (rc < 0)
        return rc;
    if (app != HQ_APPLICATION_ID && (app != 0 || objects != 0))
        return op_error_set(err, -EINVAL, NULL,
                            "%s is not an outpost-hq store (application_id 0x%08x); a node "
                            "database or another program's file?",
                            s->path, (unsigned)app);
    if (ver > NMIGRATIONS)
        return op_error_set(err, -EPROTO, NULL,
                            "%s has schema version %d, this outpost-hq knows up to %d: upgrade "
                            "outpost-hq",
                            s->path, ver, NMIGRATIONS);
    if (ver == NMIGRATIONS)
        return 0;
    struct sql_cache m;
    if ((rc = sql_cache_init(&m, s->db, &hq_queries, err)) < 0)
        return rc;
    for (int i = ver; i < NMIGRATIONS && rc == 0; i++)
        rc = migrate_one(s, &m, &migrations[i], err);
    sql_cache_close(&m);
    return rc;
}

static void sq_close(void *impl)
{
    struct sq *s = impl;
    if (!s)
        return;
    sql_cache_close(&s->q);
    sqlite3_close(s->db);
    free(s);
}

/* ---- nodes ---- */

static void read_node(sqlite3_stmt *st, struct hq_node *n)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", col_text(st, 0));
    snprintf(n->region, sizeof n->region, "%s", col_text(st, 1));
    if (sqlite3_column_bytes(st, 2) == 32)
        memcpy(n->hq_key, sqlite3_column_blob(st, 2), 32);
    n->revoked = sqlite3_column_int(st, 3);
    n->created_ms = sqlite3_column_int64(st, 4);
    n->last_contact_ms = sqlite3_column_int64(st, 5);
    n->segments_refused = (uint64_t)sqlite3_column_int64(st, 6);
    snprintf(n->last_refusal, sizeof n->last_refusal, "%s", col_text(st, 7));
    n->segments_applied = (uint64_t)sqlite3_column_int64(st, 8);
    n->segments_rejected = (uint64_t)sqlite3_column_int64(st, 9);
    n->set_aside = (uint64_t)sqlite3_column_int64(st, 10);
    if (sqlite3_column_type(st, 11) != SQLITE_NULL) {
        n->has_last_segment = 1;
        n->last_segment = (uint64_t)sqlite3_column_int64(st, 11);
        n->last_segment_created_ms = sqlite3_column_int64(st, 12);
    }
    n->mailbox_last = (uint64_t)sqlite3_column_int64(st, 13);
}

static int sq_node_add(void *impl, const char *name, const char *region,
                       const unsigned char token_sha256[32], const unsigned char hq_key[32],
                       int64_t now_ms, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_NODE_ADD, "add node", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    bind_text(st, 2, region);
    sqlite3_bind_blob(st, 3, token_sha256, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, hq_key, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_ms);
    int rc = run(s, HQ_Q_HQ_NODE_ADD, st, "add node", err);
    if (rc < 0 && constraint_failed(s))
        return op_error_set(err, -EEXIST, "name", "node %s already exists", name);
    return rc < 0 ? rc : 0;
}

/* The node query id finds (node_by_name, node_by_token_sha256), its key
 * bound; -ENOENT naming `what` when there is none. */
static int node_one(struct sq *s, unsigned id, sqlite3_stmt *st, const char *what,
                    struct hq_node *out, struct op_error *err)
{
    int rc = step(s, id, st, "read node", err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -ENOENT, "node", "no such node %s", what);
    read_node(st, out);
    sqlite3_reset(st);
    return 0;
}

static int sq_node_get(void *impl, const char *name, struct hq_node *out, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_NODE_BY_NAME, "read node", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    return node_one(s, HQ_Q_HQ_NODE_BY_NAME, st, name, out, err);
}

static int sq_node_by_token(void *impl, const unsigned char token_sha256[32], struct hq_node *out,
                            struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_NODE_BY_TOKEN_SHA256, "read node", err);
    if (!st)
        return err ? err->code : -EIO;
    sqlite3_bind_blob(st, 1, token_sha256, 32, SQLITE_TRANSIENT);
    return node_one(s, HQ_Q_HQ_NODE_BY_TOKEN_SHA256, st, "(token)", out, err);
}

/* Runs update `id` of node `name`: ?1 = name, then reason when the query
 * takes three parameters, and now_ms last. -ENOENT when it changed no row
 * and `must_exist`. */
static int node_update(struct sq *s, unsigned id, const char *name, const char *reason,
                       int64_t now_ms, int must_exist, const char *what, struct op_error *err)
{
    sqlite3_stmt *st = stmt(s, id, what, err);
    if (!st)
        return err ? err->code : -EIO;
    int n = sqlite3_bind_parameter_count(st);
    bind_text(st, 1, name);
    if (n == 3)
        bind_text(st, 2, reason);
    sqlite3_bind_int64(st, n, now_ms);
    int rc = run(s, id, st, what, err);
    if (rc == 0 && must_exist)
        return op_error_set(err, -ENOENT, "node", "no such node %s", name);
    return rc < 0 ? rc : 0;
}

static int sq_node_revoke(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    return node_update(impl, HQ_Q_HQ_NODE_REVOKE, name, NULL, now_ms, 1, "revoke node", err);
}

static int sq_node_touch(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    return node_update(impl, HQ_Q_HQ_NODE_TOUCH, name, NULL, now_ms, 0, "record last contact", err);
}

static int sq_node_refused(void *impl, const char *name, const char *reason, int64_t now_ms,
                           struct op_error *err)
{
    return node_update(impl, HQ_Q_HQ_NODE_REFUSED, name, reason, now_ms, 1,
                       "count a refused upload", err);
}

static int node_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct rows *r = ctx;
    struct hq_node n;
    read_node(st, &n);
    return rows_took(r, r->cb.node(r->ctx, &n));
}

static int sq_node_list(void *impl, hq_node_fn cb, void *ctx, struct op_error *err)
{
    struct rows r = {.cb.node = cb, .ctx = ctx};
    return list_text(impl, HQ_Q_HQ_NODE_LIST, NULL, NULL, node_row, &r, "list nodes", err);
}

/* ---- transactions ---- */

/* Copies every committed frame into the database file and truncates the
 * log to zero bytes, so the frames that held dropped data are gone from
 * the files. -EBUSY when a reader keeps part of the log (it stays
 * pending). */
static int truncate_log(struct sq *s, struct op_error *err)
{
    int logged = 0, done = 0;
    (void)sqlite3_busy_timeout(s->db, HQ_FORGET_BUSY_MS);
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logged, &done);
    (void)sqlite3_busy_timeout(s->db, HQ_BUSY_MS);
    if (rc != SQLITE_OK)
        return fail(s, sql_errno(rc), "truncate the log after an erasure", err);
    s->forget_pending = 0;
    return 0;
}

static int sq_begin(void *impl, struct op_error *err)
{
    struct sq *s = impl;
    if (s->in_tx)
        return op_error_set(err, -EBUSY, NULL, "HQ store %s: a transaction is already open",
                            s->path);
    int rc = exec(s, HQ_Q_HQ_BEGIN, "begin", err);
    if (rc < 0)
        return rc;
    s->in_tx = 1;
    return 0;
}

static int sq_commit(void *impl, struct op_error *err)
{
    struct sq *s = impl;
    int rc = exec(s, HQ_Q_HQ_COMMIT, "commit", err);
    if (rc < 0)
        return rc; /* still open: the caller rolls back */
    s->in_tx = 0;
    if (s->tx_forgets) {
        s->tx_forgets = 0;
        s->forget_pending = 1;
    }
    /* The commit is durable; a reader holding the log back only delays
     * the truncation until `forget`, so its failure is not the commit's. */
    if (s->forget_pending)
        (void)truncate_log(s, NULL);
    return 0;
}

static void sq_rollback(void *impl)
{
    struct sq *s = impl;
    if (!s->in_tx)
        return;
    if (sqlite3_get_autocommit(s->db) == 0)
        (void)exec(s, HQ_Q_HQ_ROLLBACK, "rollback", NULL);
    s->in_tx = 0;
    s->tx_forgets = 0;
}

static int sq_forget(void *impl, struct op_error *err)
{
    struct sq *s = impl;
    if (!s->forget_pending)
        return 0;
    if (s->in_tx)
        return op_error_set(err, -EBUSY, NULL, "HQ store %s: a transaction is open", s->path);
    return truncate_log(s, err);
}

/* ---- receipts and records ---- */

static void read_receipt(sqlite3_stmt *st, struct hq_receipt *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->node, sizeof r->node, "%s", col_text(st, 0));
    r->segment = (uint64_t)sqlite3_column_int64(st, 1);
    r->status = strcmp(col_text(st, 2), "applied") ? HQ_RECEIPT_REJECTED : HQ_RECEIPT_APPLIED;
    r->to_urgent = (uint64_t)sqlite3_column_int64(st, 3);
    r->to_ordinary = (uint64_t)sqlite3_column_int64(st, 4);
    r->records = (uint64_t)sqlite3_column_int64(st, 5);
    r->applied = (uint64_t)sqlite3_column_int64(st, 6);
    r->set_aside = (uint64_t)sqlite3_column_int64(st, 7);
    snprintf(r->reason, sizeof r->reason, "%s", col_text(st, 8));
    r->received_ms = sqlite3_column_int64(st, 9);
    r->segment_created_ms = sqlite3_column_int64(st, 10);
}

static int sq_receipt_get(void *impl, const char *node, uint64_t segment, struct hq_receipt *out,
                          struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_RECEIPT_GET, "read receipt", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)segment);
    int rc = step(s, HQ_Q_HQ_RECEIPT_GET, st, "read receipt", err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -ENOENT, "segment", "no receipt for node %s segment %" PRIu64,
                            node, segment);
    read_receipt(st, out);
    sqlite3_reset(st);
    return 0;
}

static int sq_receipt_put(void *impl, const struct hq_receipt *r, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_RECEIPT_PUT, "write receipt", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, r->node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)r->segment);
    bind_text(st, 3, hq_receipt_status_name(r->status));
    sqlite3_bind_int64(st, 4, (sqlite3_int64)r->to_urgent);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)r->to_ordinary);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)r->records);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)r->applied);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)r->set_aside);
    bind_text(st, 9, r->reason);
    sqlite3_bind_int64(st, 10, r->received_ms);
    sqlite3_bind_int64(st, 11, r->segment_created_ms);
    int rc = run(s, HQ_Q_HQ_RECEIPT_PUT, st, "write receipt", err);
    if (rc < 0 && constraint_failed(s))
        return op_error_set(err, -EEXIST, "segment",
                            "a receipt for node %s segment %" PRIu64 " exists already", r->node,
                            r->segment);
    return rc < 0 ? rc : 0;
}

static int is_tombstone_op(const char *op)
{
    return !strcmp(op, "erase") || !strcmp(op, "purge") || !strcmp(op, "withdraw");
}

/* 1 when `held` has a member (at any depth of objects) that `next` lacks:
 * replacing one with the other drops a value. Text that does not parse
 * counts as dropping, so the log is truncated rather than kept. */
static int drops_member(const json_t *held, const json_t *next)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)held, k, v)
    {
        json_t *n = json_object_get(next, k);
        if (!n)
            return 1;
        if (json_is_object(v) && (!json_is_object(n) || drops_member(v, n)))
            return 1;
    }
    return 0;
}

static int drops_value(const char *held, const char *next, size_t len)
{
    json_t *h = json_loads(held, 0, NULL);
    json_t *n = json_loadb(next, len, 0, NULL);
    int drops = !h || !n || !json_is_object(h) || !json_is_object(n) || drops_member(h, n);
    json_decref(h);
    json_decref(n);
    return drops;
}

static int sq_record_apply(void *impl, const char *node, const char *entity, const char *id,
                           int64_t version, const char *op, const char *json, size_t len,
                           uint64_t segment, enum hq_record_result *result, struct op_error *err)
{
    struct sq *s = impl;
    int tomb = is_tombstone_op(op);
    if (!tomb && strcmp(op, "upsert") && strcmp(op, "delete"))
        return op_error_set(err, -EINVAL, "op", "unknown op \"%s\"", op);
    if (!tomb && !json)
        return op_error_set(err, -EINVAL, "record", "%s %s: no record data", entity, id);
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_RECORD_FULL, "read record", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    bind_text(st, 2, entity);
    bind_text(st, 3, id);
    int rc = step(s, HQ_Q_HQ_RECORD_FULL, st, "read record", err);
    if (rc < 0)
        return rc;
    int exists = 0, stored_tomb = 0, stored_erased = 0, drops = 0;
    int64_t stored = 0;
    if (rc == 1) {
        exists = 1;
        stored = sqlite3_column_int64(st, 0);
        stored_tomb = is_tombstone_op(col_text(st, 1));
        stored_erased = stored_tomb && strcmp(col_text(st, 1), "withdraw") != 0;
        /* A record replaced by one without a field it had, or by the
         * node's re-projection at the same version with other text (a
         * value now pseudonymized): the old value must not stay in the log
         * (a tighter policy, or a field the node cleared). */
        if (!tomb && sqlite3_column_type(st, 2) != SQLITE_NULL) {
            const char *held = col_text(st, 2);
            drops = (version == stored && (strlen(held) != len || memcmp(held, json, len))) ||
                    drops_value(held, json, len);
        }
        sqlite3_reset(st);
    }

    int64_t keep = version;
    if (tomb) {
        /* Whatever happens below, the commit truncates the log: the
         * cheap way to be sure nothing of the record stays in it. */
        if (s->in_tx)
            s->tx_forgets = 1;
        /* Data goes whatever the version says: an erasure is never stale
         * while data is held. A tombstone over a tombstone only raises it. */
        if (exists && stored_tomb && stored >= version) {
            *result = HQ_RECORD_STALE;
            return 0;
        }
        if (exists && stored > keep)
            keep = stored;
    } else if (exists && (version < stored || (version == stored && stored_erased))) {
        /* The same version again is the node's re-projection under a new
         * policy (docs/EGRESS.md, "In time"): it replaces what HQ holds,
         * a withdrawal included, but never an erasure or purge. */
        *result = HQ_RECORD_STALE;
        return 0;
    }
    st = stmt(s, HQ_Q_HQ_RECORD_PUT, "write record", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    bind_text(st, 2, entity);
    bind_text(st, 3, id);
    sqlite3_bind_int64(st, 4, keep);
    bind_text(st, 5, op);
    if (tomb)
        sqlite3_bind_null(st, 6);
    else
        sqlite3_bind_text(st, 6, json, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)segment);
    rc = run(s, HQ_Q_HQ_RECORD_PUT, st, "write record", err);
    if (rc < 0)
        return rc;
    if (drops && s->in_tx)
        s->tx_forgets = 1;
    if ((tomb || drops) && !s->in_tx) { /* its own transaction has committed */
        s->forget_pending = 1;
        (void)truncate_log(s, NULL);
    }
    *result = HQ_RECORD_CHANGED;
    return 0;
}

static int sq_set_aside_add(void *impl, const char *node, uint64_t segment, uint64_t line,
                            const char *entity, const char *id, const char *reason,
                            struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_SET_ASIDE_ADD, "set a record aside", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)segment);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)line);
    bind_text(st, 4, entity);
    bind_text(st, 5, id);
    bind_text(st, 6, reason);
    int rc = run(s, HQ_Q_HQ_SET_ASIDE_ADD, st, "set a record aside", err);
    return rc < 0 ? rc : 0;
}

static int sq_needs_whole_add(void *impl, const char *node, uint64_t segment, uint64_t line,
                              const char *entity, const char *id, const char *reason,
                              struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_NEEDS_WHOLE_ADD, "set a record aside", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)segment);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)line);
    bind_text(st, 4, entity);
    bind_text(st, 5, id);
    bind_text(st, 6, reason);
    int rc = run(s, HQ_Q_HQ_NEEDS_WHOLE_ADD, st, "set a record aside", err);
    return rc < 0 ? rc : 0;
}

static int sq_record_get(void *impl, const char *node, const char *entity, const char *id,
                         int64_t *version, char op[HQ_OP_MAX], char **json, struct op_error *err)
{
    struct sq *s = impl;
    *json = NULL;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_RECORD_FULL, "read record", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    bind_text(st, 2, entity);
    bind_text(st, 3, id);
    int rc = step(s, HQ_Q_HQ_RECORD_FULL, st, "read record", err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -ENOENT, "id", "node %s holds no %s %s", node, entity, id);
    *version = sqlite3_column_int64(st, 0);
    snprintf(op, HQ_OP_MAX, "%s", col_text(st, 1));
    if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
        *json = strdup(col_text(st, 2));
        if (!*json) {
            sqlite3_reset(st);
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        }
    }
    sqlite3_reset(st);
    return 0;
}

/* ---- listings ---- */

static int record_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct rows *r = ctx;
    struct hq_record_row row = {
        .node = col_text(st, 0),
        .entity = col_text(st, 1),
        .id = col_text(st, 2),
        .version = sqlite3_column_int64(st, 3),
        .op = col_text(st, 4),
        .json = col_text(st, 5),
    };
    return rows_took(r, r->cb.record(r->ctx, &row));
}

static int sq_records_list(void *impl, const char *node, const char *entity, hq_record_fn cb,
                           void *ctx, struct op_error *err)
{
    struct rows r = {.cb.record = cb, .ctx = ctx};
    return list_text(impl, HQ_Q_HQ_RECORDS_LIST, node, entity, record_row, &r, "list records", err);
}

static int sq_tombstones_list(void *impl, const char *node, hq_record_fn cb, void *ctx,
                              struct op_error *err)
{
    struct rows r = {.cb.record = cb, .ctx = ctx};
    return list_text(impl, HQ_Q_HQ_TOMBSTONES_LIST, node, NULL, record_row, &r, "list tombstones",
                     err);
}

static int count_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct rows *r = ctx;
    return rows_took(r,
                     r->cb.count(r->ctx, col_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1)));
}

static int sq_records_count(void *impl, const char *node, const char *entity, hq_count_fn cb,
                            void *ctx, struct op_error *err)
{
    struct rows r = {.cb.count = cb, .ctx = ctx};
    return list_text(impl, HQ_Q_HQ_RECORDS_COUNT, node, entity, count_row, &r, "count records",
                     err);
}

static int receipt_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct rows *r = ctx;
    struct hq_receipt rec;
    read_receipt(st, &rec);
    return rows_took(r, r->cb.receipt(r->ctx, &rec));
}

static int sq_receipts_list(void *impl, const char *node, hq_receipt_fn cb, void *ctx,
                            struct op_error *err)
{
    struct rows r = {.cb.receipt = cb, .ctx = ctx};
    return list_text(impl, HQ_Q_HQ_RECEIPTS_LIST, node, NULL, receipt_row, &r, "list receipts",
                     err);
}

static int set_aside_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct rows *r = ctx;
    struct hq_set_aside_row row = {
        .node = col_text(st, 0),
        .segment = (uint64_t)sqlite3_column_int64(st, 1),
        .line = (uint64_t)sqlite3_column_int64(st, 2),
        .entity = col_text(st, 3),
        .id = col_text(st, 4),
        .reason = col_text(st, 5),
    };
    return rows_took(r, r->cb.set_aside(r->ctx, &row));
}

static int sq_set_aside_list(void *impl, const char *node, hq_set_aside_fn cb, void *ctx,
                             struct op_error *err)
{
    struct rows r = {.cb.set_aside = cb, .ctx = ctx};
    return list_text(impl, HQ_Q_HQ_SET_ASIDE_LIST, node, NULL, set_aside_row, &r,
                     "list set-aside records", err);
}

static int sq_needs_whole_list(void *impl, const char *node, uint64_t segment, hq_set_aside_fn cb,
                               void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    struct rows r = {.cb.set_aside = cb, .ctx = ctx};
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_NEEDS_WHOLE_LIST, "list records needing the whole", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)segment);
    return list(s, HQ_Q_HQ_NEEDS_WHOLE_LIST, st, set_aside_row, &r,
                "list records needing the whole", err);
}

static int sq_totals(void *impl, struct hq_totals *out, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_TOTALS, "totals", err);
    if (!st)
        return err ? err->code : -EIO;
    int rc = step(s, HQ_Q_HQ_TOTALS, st, "totals", err);
    if (rc < 0)
        return rc;
    if (rc == 0) /* an aggregate always has its row */
        return fail(s, -EIO, "totals", err);
    uint64_t *const in_order[] = {&out->nodes,      &out->nodes_revoked,    &out->records,
                                  &out->tombstones, &out->receipts_applied, &out->receipts_rejected,
                                  &out->refused,    &out->set_aside,        &out->mailbox};
    for (int i = 0; i < (int)(sizeof in_order / sizeof in_order[0]); i++)
        *in_order[i] = (uint64_t)sqlite3_column_int64(st, i);
    sqlite3_reset(st);
    return 0;
}

/* ---- mailbox ---- */

static int sq_mailbox_post(void *impl, const char *node, const char *kind, const char *body,
                           size_t body_len, int64_t now_ms, uint64_t *seq, struct op_error *err)
{
    struct sq *s = impl;
    if (body_len > HQ_MAILBOX_BODY_MAX)
        return op_error_set(err, -EFBIG, "body", "message body of %zu bytes is over %u", body_len,
                            HQ_MAILBOX_BODY_MAX);
    if (!kind ||
        (strcmp(kind, "policy") && strcmp(kind, "reference") && strcmp(kind, "aggregate_request")))
        return op_error_set(err, -EINVAL, "kind",
                            "mailbox kind must be policy, reference or aggregate_request");
    int own = !s->in_tx;
    int rc;
    if (own && (rc = sq_begin(s, err)) < 0)
        return rc;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_MAILBOX_NEXT, "mailbox sequence", err);
    if (!st) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    bind_text(st, 1, node);
    rc = step(s, HQ_Q_HQ_MAILBOX_NEXT, st, "mailbox sequence", err);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        rc = op_error_set(err, -ENOENT, "node", "no such node %s", node);
        goto out;
    }
    uint64_t next = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    st = stmt(s, HQ_Q_HQ_MAILBOX_ADD, "post a mailbox message", err);
    if (!st) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
    bind_text(st, 3, kind);
    sqlite3_bind_blob(st, 4, body_len ? body : "", (int)body_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_ms);
    rc = run(s, HQ_Q_HQ_MAILBOX_ADD, st, "post a mailbox message", err);
    if (rc < 0)
        goto out;
    rc = 0;
    if (own && (rc = sq_commit(s, err)) < 0)
        goto out;
    *seq = next;
    return 0;
out:
    if (own)
        sq_rollback(s);
    return rc;
}

static int mailbox_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct rows *r = ctx;
    const void *b = sqlite3_column_blob(st, 2);
    struct hq_mailbox_msg m = {
        .seq = (uint64_t)sqlite3_column_int64(st, 0),
        .kind = col_text(st, 1),
        .body = b ? (const char *)b : "",
        .body_len = (size_t)sqlite3_column_bytes(st, 2),
        .created_ms = sqlite3_column_int64(st, 3),
    };
    return rows_took(r, r->cb.mailbox(r->ctx, &m));
}

static int sq_mailbox_list(void *impl, const char *node, uint64_t after, unsigned limit,
                           hq_mailbox_fn cb, void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_MAILBOX_LIST, "list mailbox", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(after > INT64_MAX ? INT64_MAX : after));
    sqlite3_bind_int(st, 3, (int)limit);
    struct rows r = {.cb.mailbox = cb, .ctx = ctx};
    return list(s, HQ_Q_HQ_MAILBOX_LIST, st, mailbox_row, &r, "list mailbox", err);
}

static int sq_mailbox_policy_get(void *impl, const char *node, const char *hash, hq_mailbox_fn cb,
                                 void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    struct rows r = {.cb.mailbox = cb, .ctx = ctx};
    int rc = list_text(s, HQ_Q_HQ_MAILBOX_POLICY, node, hash, mailbox_row, &r,
                       "find a posted policy", err);
    if (rc == 0 && !r.seen)
        return op_error_set(err, -ENOENT, "policy_hash",
                            "HQ posted no policy with hash %.64s to node %s", hash, node);
    return rc;
}

/* ---- analysts ---- */

static void read_analyst(sqlite3_stmt *st, struct hq_analyst *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", col_text(st, 0));
    a->revoked = sqlite3_column_int(st, 1);
    a->created_ms = sqlite3_column_int64(st, 2);
    a->revoked_ms = sqlite3_column_int64(st, 3);
    a->last_used_ms = sqlite3_column_int64(st, 4);
}

static int sq_analyst_add(void *impl, const char *name, const unsigned char token_sha256[32],
                          int64_t now_ms, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_ANALYST_ADD, "add analyst", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    sqlite3_bind_blob(st, 2, token_sha256, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = run(s, HQ_Q_HQ_ANALYST_ADD, st, "add analyst", err);
    if (rc < 0 && constraint_failed(s))
        return op_error_set(err, -EEXIST, "name", "analyst %s already exists", name);
    return rc < 0 ? rc : 0;
}

static int sq_analyst_by_token(void *impl, const unsigned char token_sha256[32],
                               struct hq_analyst *out, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_ANALYST_BY_TOKEN, "read analyst", err);
    if (!st)
        return err ? err->code : -EIO;
    sqlite3_bind_blob(st, 1, token_sha256, 32, SQLITE_TRANSIENT);
    int rc = step(s, HQ_Q_HQ_ANALYST_BY_TOKEN, st, "read analyst", err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -ENOENT, "analyst", "no such analyst (token)");
    read_analyst(st, out);
    sqlite3_reset(st);
    return 0;
}

static int sq_analyst_revoke(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_ANALYST_REVOKE, "revoke analyst", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = run(s, HQ_Q_HQ_ANALYST_REVOKE, st, "revoke analyst", err);
    if (rc == 0)
        return op_error_set(err, -ENOENT, "analyst", "no such analyst %s", name);
    return rc < 0 ? rc : 0;
}

static int sq_analyst_touch(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_ANALYST_TOUCH, "record an analyst's request", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = run(s, HQ_Q_HQ_ANALYST_TOUCH, st, "record an analyst's request", err);
    return rc < 0 ? rc : 0;
}

static int analyst_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    struct rows *r = ctx;
    struct hq_analyst a;
    read_analyst(st, &a);
    return rows_took(r, r->cb.analyst(r->ctx, &a));
}

static int sq_analyst_list(void *impl, hq_analyst_fn cb, void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    struct rows r = {.cb.analyst = cb, .ctx = ctx};
    return list_text(s, HQ_Q_HQ_ANALYST_LIST, NULL, NULL, analyst_row, &r, "list analysts", err);
}

/* ---- anti-entropy ---- */

static int sq_verify_put(void *impl, const struct hq_verify *v, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_VERIFY_PUT, "record a check", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, v->node);
    sqlite3_bind_int64(st, 2, v->at_ms);
    bind_text(st, 3, v->result);
    const uint64_t n[] = {v->compared, v->hq_records, v->ranges, v->requests,
                          v->bytes,    v->drift,      v->resent, v->reported};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_int64(st, 4 + i, (sqlite3_int64)n[i]);
    int rc = run(s, HQ_Q_HQ_VERIFY_PUT, st, "record a check", err);
    return rc < 0 ? rc : 0;
}

static int sq_verify_get(void *impl, const char *node, struct hq_verify *out, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, HQ_Q_HQ_VERIFY_GET, "read the last check", err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    int rc = step(s, HQ_Q_HQ_VERIFY_GET, st, "read the last check", err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -ENOENT, "node", "no check of node %s yet", node);
    memset(out, 0, sizeof *out);
    snprintf(out->node, sizeof out->node, "%s", col_text(st, 0));
    out->at_ms = sqlite3_column_int64(st, 1);
    snprintf(out->result, sizeof out->result, "%s", col_text(st, 2));
    uint64_t *n[] = {&out->compared, &out->hq_records, &out->ranges, &out->requests,
                     &out->bytes,    &out->drift,      &out->resent, &out->reported};
    for (int i = 0; i < 8; i++)
        *n[i] = (uint64_t)sqlite3_column_int64(st, 3 + i);
    sqlite3_reset(st);
    return 0;
}

static const struct hq_store_ops sqlite_ops = {
    .close = sq_close,
    .node_add = sq_node_add,
    .node_get = sq_node_get,
    .node_by_token = sq_node_by_token,
    .node_revoke = sq_node_revoke,
    .node_touch = sq_node_touch,
    .node_refused = sq_node_refused,
    .node_list = sq_node_list,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .forget = sq_forget,
    .receipt_get = sq_receipt_get,
    .receipt_put = sq_receipt_put,
    .record_apply = sq_record_apply,
    .set_aside_add = sq_set_aside_add,
    .record_get = sq_record_get,
    .needs_whole_add = sq_needs_whole_add,
    .needs_whole_list = sq_needs_whole_list,
    .records_list = sq_records_list,
    .tombstones_list = sq_tombstones_list,
    .records_count = sq_records_count,
    .receipts_list = sq_receipts_list,
    .set_aside_list = sq_set_aside_list,
    .totals = sq_totals,
    .mailbox_post = sq_mailbox_post,
    .mailbox_list = sq_mailbox_list,
    .mailbox_policy_get = sq_mailbox_policy_get,
    .analyst_add = sq_analyst_add,
    .analyst_by_token = sq_analyst_by_token,
    .analyst_revoke = sq_analyst_revoke,
    .analyst_touch = sq_analyst_touch,
    .analyst_list = sq_analyst_list,
    .verify_put = sq_verify_put,
    .verify_get = sq_verify_get,
};

/* The connection's settings, in this order (see the top of this file). */
static const unsigned settings[] = {HQ_Q_HQ_JOURNAL_WAL, HQ_Q_HQ_SYNCHRONOUS_FULL,
                                    HQ_Q_HQ_FOREIGN_KEYS_ON, HQ_Q_HQ_SECURE_DELETE_ON};

int hq_store_sqlite_open(const char *path, struct hq_store *out, struct op_error *err)
{
    struct sq *s = calloc(1, sizeof *s);
    if (!s)
        return op_error_set(err, -ENOMEM, NULL, "out of memory opening %s", path);
    snprintf(s->path, sizeof s->path, "%s", path);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) {
        int e = sql_errno(rc);
        op_error_set(err, e ? e : -EIO, NULL, "cannot open HQ store %s: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sq_close(s);
        return e ? e : -EIO;
    }
    sqlite3_busy_timeout(s->db, HQ_BUSY_MS);
    if ((rc = sql_cache_init(&s->q, s->db, &hq_queries, err)) < 0) {
        sq_close(s);
        return rc;
    }
    rc = sqlite3_create_function(s->db, "outpost_sha256_hex", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                 sha256_hex_fn, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(s, sql_errno(rc), "register outpost_sha256_hex", err);
        sq_close(s);
        return rc;
    }
    /* Reading the header first: a file that is not SQLite fails here, and
     * is not an HQ store either (-EINVAL, as for another program's
     * database). */
    int app = 0;
    rc = read_int(s, HQ_Q_HQ_APPLICATION_ID, "read application_id", &app, err);
    if (rc == -EBADMSG) {
        rc = -EINVAL;
        if (err)
            err->code = rc;
    }
    for (size_t i = 0; rc == 0 && i < sizeof settings / sizeof settings[0]; i++)
        rc = exec(s, settings[i], "settings", err);
    if (rc == 0)
        rc = migrate(s, err);
    if (rc < 0) {
        sq_close(s);
        return rc;
    }
    out->ops = &sqlite_ops;
    out->impl = s;
    return 0;
}
