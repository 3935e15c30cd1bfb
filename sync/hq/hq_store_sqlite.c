/*
 * The SQLite backend of the HQ store (interface and invariants in
 * hq_store.h). One connection in WAL mode with synchronous=FULL, so a
 * committed apply survives power loss; the file is marked with its own
 * application_id ("OUTH") and a user_version that counts the migrations
 * below, so a node database or a foreign file is refused and a store from
 * a newer build is not written to. Statements are prepared once per
 * connection and bound with parameters. The schema lives here rather than
 * in schema/migrations because it belongs to a different database (the
 * node's migrations must never run on it, nor these on a node).
 *
 * HQ forgets what a node erased: the connection runs with secure_delete
 * ON, so a dropped record's bytes are zeroed in its page (and whole pages
 * going to the freelist, such as a long record's overflow pages, are
 * zeroed too), and after a transaction that applied an erase, purge or
 * withdraw commits, the log is checkpointed with TRUNCATE, because the
 * WAL still holds the frames that once wrote the old values. There is no
 * full-text index to optimize in this store.
 */
#include "hq_store.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define HQ_APPLICATION_ID 0x4f555448 /* "OUTH" */
#define HQ_BUSY_MS 10000
/* How long the log truncation after an erasure waits for readers: it runs
 * on outpost-hq's loop thread, so it must not stall it; what a reader
 * holds back is truncated later by `forget`. */
#define HQ_FORGET_BUSY_MS 200

/* Migration i (1-based) takes user_version i-1 to i. */
static const char *const migrations[] = {
    "CREATE TABLE nodes (\n"
    "  name TEXT PRIMARY KEY,\n"
    "  region TEXT NOT NULL,\n"
    "  token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),\n"
    "  hq_key BLOB NOT NULL CHECK (length(hq_key) = 32),\n"
    "  revoked INTEGER NOT NULL DEFAULT 0,\n"
    "  revoked_ms INTEGER,\n"
    "  created_ms INTEGER NOT NULL,\n"
    "  last_contact_ms INTEGER NOT NULL DEFAULT 0,\n"
    "  refused INTEGER NOT NULL DEFAULT 0,\n"
    "  last_refusal TEXT NOT NULL DEFAULT '',\n"
    "  mailbox_seq INTEGER NOT NULL DEFAULT 0\n"
    ") STRICT;\n"
    "CREATE TABLE receipts (\n"
    "  node TEXT NOT NULL REFERENCES nodes(name),\n"
    "  segment INTEGER NOT NULL,\n"
    "  status TEXT NOT NULL CHECK (status IN ('applied', 'rejected')),\n"
    "  to_urgent INTEGER NOT NULL,\n"
    "  to_ordinary INTEGER NOT NULL,\n"
    "  records INTEGER NOT NULL,\n"
    "  applied INTEGER NOT NULL,\n"
    "  set_aside INTEGER NOT NULL,\n"
    "  reason TEXT NOT NULL,\n"
    "  received_ms INTEGER NOT NULL,\n"
    "  segment_created_ms INTEGER NOT NULL,\n"
    "  PRIMARY KEY (node, segment)\n"
    ") STRICT, WITHOUT ROWID;\n"
    "CREATE TABLE records (\n"
    "  node TEXT NOT NULL REFERENCES nodes(name),\n"
    "  entity TEXT NOT NULL,\n"
    "  id TEXT NOT NULL,\n"
    "  version INTEGER NOT NULL,\n"
    "  op TEXT NOT NULL CHECK (op IN ('upsert', 'delete', 'erase', 'purge', 'withdraw')),\n"
    "  record TEXT,\n"
    "  segment INTEGER NOT NULL,\n"
    "  CHECK ((op IN ('upsert', 'delete')) = (record IS NOT NULL)),\n"
    "  PRIMARY KEY (node, entity, id)\n"
    ") STRICT, WITHOUT ROWID;\n"
    "CREATE TABLE set_aside (\n"
    "  node TEXT NOT NULL REFERENCES nodes(name),\n"
    "  segment INTEGER NOT NULL,\n"
    "  line INTEGER NOT NULL,\n"
    "  entity TEXT NOT NULL,\n"
    "  id TEXT NOT NULL,\n"
    "  reason TEXT NOT NULL,\n"
    "  PRIMARY KEY (node, segment, line)\n"
    ") STRICT, WITHOUT ROWID;\n"
    "CREATE TABLE mailbox (\n"
    "  node TEXT NOT NULL REFERENCES nodes(name),\n"
    "  seq INTEGER NOT NULL,\n"
    "  kind TEXT NOT NULL CHECK (kind IN ('policy', 'reference', 'aggregate_request')),\n"
    "  body BLOB NOT NULL,\n"
    "  created_ms INTEGER NOT NULL,\n"
    "  PRIMARY KEY (node, seq)\n"
    ") STRICT, WITHOUT ROWID;\n",
    /* 2: every policy HQ posted to a node, found by the SHA-256 of its
     * text, so a segment cut under one of them is checked under it */
    "ALTER TABLE mailbox ADD COLUMN policy_hash TEXT;\n"
    "UPDATE mailbox SET policy_hash = outpost_sha256_hex(body) WHERE kind = 'policy';\n"
    "CREATE INDEX mailbox_policy ON mailbox (node, policy_hash) WHERE policy_hash IS NOT NULL;\n",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

#define NODE_COLS                                                                                  \
    "SELECT n.name, n.region, n.hq_key, n.revoked, n.created_ms, n.last_contact_ms, n.refused, "   \
    "n.last_refusal, "                                                                             \
    "(SELECT count(*) FROM receipts r WHERE r.node = n.name AND r.status = 'applied'), "           \
    "(SELECT count(*) FROM receipts r WHERE r.node = n.name AND r.status = 'rejected'), "          \
    "(SELECT count(*) FROM set_aside s WHERE s.node = n.name), "                                   \
    "(SELECT max(segment) FROM receipts r WHERE r.node = n.name AND r.status = 'applied'), "       \
    "(SELECT segment_created_ms FROM receipts r WHERE r.node = n.name AND r.status = 'applied' "   \
    "ORDER BY segment DESC LIMIT 1) FROM nodes n "

#define RECEIPT_COLS                                                                               \
    "SELECT node, segment, status, to_urgent, to_ordinary, records, applied, set_aside, reason, "  \
    "received_ms, segment_created_ms FROM receipts "

enum q {
    Q_NODE_ADD,
    Q_NODE_GET,
    Q_NODE_BY_TOKEN,
    Q_NODE_REVOKE,
    Q_NODE_TOUCH,
    Q_NODE_REFUSED,
    Q_NODE_LIST,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_RECEIPT_GET,
    Q_RECEIPT_PUT,
    Q_RECORD_GET,
    Q_RECORD_PUT,
    Q_SET_ASIDE_ADD,
    Q_RECORDS_LIST,
    Q_RECORDS_COUNT,
    Q_RECEIPTS_LIST,
    Q_SET_ASIDE_LIST,
    Q_MAILBOX_NEXT,
    Q_MAILBOX_ADD,
    Q_MAILBOX_LIST,
    Q_MAILBOX_POLICY,
    Q_COUNT
};

static const char *const sql[Q_COUNT] = {
    [Q_NODE_ADD] = "INSERT INTO nodes (name, region, token_sha256, hq_key, created_ms) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_NODE_GET] = NODE_COLS "WHERE n.name = ?1",
    [Q_NODE_BY_TOKEN] = NODE_COLS "WHERE n.token_sha256 = ?1",
    [Q_NODE_REVOKE] = "UPDATE nodes SET revoked = 1, revoked_ms = coalesce(revoked_ms, ?2) "
                      "WHERE name = ?1",
    [Q_NODE_TOUCH] = "UPDATE nodes SET last_contact_ms = ?2 WHERE name = ?1 AND "
                     "last_contact_ms < ?2 - 5000",
    [Q_NODE_REFUSED] = "UPDATE nodes SET refused = refused + 1, last_refusal = ?2, "
                       "last_contact_ms = max(last_contact_ms, ?3) WHERE name = ?1",
    [Q_NODE_LIST] = NODE_COLS "ORDER BY n.name",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_RECEIPT_GET] = RECEIPT_COLS "WHERE node = ?1 AND segment = ?2",
    [Q_RECEIPT_PUT] = "INSERT INTO receipts (node, segment, status, to_urgent, to_ordinary, "
                      "records, applied, set_aside, reason, received_ms, segment_created_ms) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [Q_RECORD_GET] = "SELECT version, op FROM records WHERE node = ?1 AND entity = ?2 AND id = ?3",
    [Q_RECORD_PUT] = "INSERT INTO records (node, entity, id, version, op, record, segment) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (node, entity, id) DO "
                     "UPDATE SET version = excluded.version, op = excluded.op, "
                     "record = excluded.record, segment = excluded.segment",
    [Q_SET_ASIDE_ADD] = "INSERT INTO set_aside (node, segment, line, entity, id, reason) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_RECORDS_LIST] = "SELECT node, entity, id, version, op, record FROM records "
                       "WHERE op IN ('upsert', 'delete') AND (?1 IS NULL OR node = ?1) AND "
                       "(?2 IS NULL OR entity = ?2) ORDER BY node, entity, id",
    [Q_RECORDS_COUNT] = "SELECT entity, count(*) FROM records WHERE op IN ('upsert', 'delete') "
                        "AND (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR entity = ?2) "
                        "GROUP BY entity ORDER BY entity",
    [Q_RECEIPTS_LIST] = RECEIPT_COLS "WHERE (?1 IS NULL OR node = ?1) ORDER BY node, segment",
    [Q_SET_ASIDE_LIST] = "SELECT node, segment, line, entity, id, reason FROM set_aside "
                         "WHERE (?1 IS NULL OR node = ?1) ORDER BY node, segment, line",
    [Q_MAILBOX_NEXT] = "UPDATE nodes SET mailbox_seq = mailbox_seq + 1 WHERE name = ?1 "
                       "RETURNING mailbox_seq",
    [Q_MAILBOX_ADD] = "INSERT INTO mailbox (node, seq, kind, body, created_ms, policy_hash) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, "
                      "CASE ?3 WHEN 'policy' THEN outpost_sha256_hex(?4) END)",
    [Q_MAILBOX_LIST] = "SELECT seq, kind, body, created_ms FROM mailbox WHERE node = ?1 AND "
                       "seq > ?2 ORDER BY seq LIMIT ?3",
    [Q_MAILBOX_POLICY] = "SELECT seq, kind, body, created_ms FROM mailbox WHERE node = ?1 AND "
                         "policy_hash = ?2 ORDER BY seq LIMIT 1",
};

struct sq {
    sqlite3 *db;
    char path[1024];
    sqlite3_stmt *st[Q_COUNT];
    int in_tx;
    int tx_forgets;     /* the open transaction applied an erase/purge/withdraw */
    int forget_pending; /* committed, but the log could not be truncated yet */
};

static int sq_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EINVAL;
    default:
        return -EIO;
    }
}

static int fail(struct sq *s, int rc, const char *what, struct op_error *err)
{
    int e = sq_errno(rc);
    if (!e)
        e = -EIO;
    return op_error_set(err, e, NULL, "HQ store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

/* The prepared statement q, reset and unbound; NULL on failure (err set). */
static sqlite3_stmt *stmt(struct sq *s, enum q q, struct op_error *err)
{
    if (!s->st[q]) {
        int rc = sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s->st[q], NULL);
        if (rc != SQLITE_OK) {
            (void)fail(s, rc, "prepare", err);
            return NULL;
        }
    }
    sqlite3_reset(s->st[q]);
    sqlite3_clear_bindings(s->st[q]);
    return s->st[q];
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

/* Runs a statement that returns no rows. */
static int run(struct sq *s, sqlite3_stmt *st, const char *what, struct op_error *err)
{
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(s->db);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(s, rc, what, err);
    return changes;
}

static int exec(struct sq *s, const char *text, const char *what, struct op_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, text, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int e = sq_errno(rc);
        op_error_set(err, e ? e : -EIO, NULL, "HQ store %s: %s: %s", s->path, what,
                     msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return e ? e : -EIO;
    }
    return 0;
}

static int pragma_int(struct sq *s, const char *text, int *out, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, text, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : fail(s, rc, text, err);
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

static int migrate(struct sq *s, struct op_error *err)
{
    int app = 0, ver = 0, objects = 0;
    int rc = pragma_int(s, "PRAGMA application_id", &app, err);
    if (rc == 0)
        rc = pragma_int(s, "PRAGMA user_version", &ver, err);
    if (rc == 0)
        rc = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &objects, err);
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
    for (int i = ver; i < NMIGRATIONS; i++) {
        if ((rc = exec(s, "BEGIN IMMEDIATE", "migrate", err)) < 0)
            return rc;
        char tail[128];
        snprintf(tail, sizeof tail, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 HQ_APPLICATION_ID, i + 1);
        if ((rc = exec(s, migrations[i], "migrate", err)) < 0 ||
            (rc = exec(s, tail, "migrate", err)) < 0 ||
            (rc = exec(s, "COMMIT", "migrate", err)) < 0) {
            (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    return 0;
}

static void sq_close(void *impl)
{
    struct sq *s = impl;
    if (!s)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(s->st[i]);
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
}

static int sq_node_add(void *impl, const char *name, const char *region,
                       const unsigned char token_sha256[32], const unsigned char hq_key[32],
                       int64_t now_ms, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_NODE_ADD, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    bind_text(st, 2, region);
    sqlite3_bind_blob(st, 3, token_sha256, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, hq_key, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT)
        return op_error_set(err, -EEXIST, "name", "node %s already exists", name);
    if (rc != SQLITE_DONE)
        return fail(s, rc, "add node", err);
    return 0;
}

static int node_one(struct sq *s, sqlite3_stmt *st, const char *what, struct hq_node *out,
                    struct op_error *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_node(st, out);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return op_error_set(err, -ENOENT, "node", "no such node %s", what);
    return fail(s, rc, "read node", err);
}

static int sq_node_get(void *impl, const char *name, struct hq_node *out, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_NODE_GET, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    return node_one(s, st, name, out, err);
}

static int sq_node_by_token(void *impl, const unsigned char token_sha256[32], struct hq_node *out,
                            struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_NODE_BY_TOKEN, err);
    if (!st)
        return err ? err->code : -EIO;
    sqlite3_bind_blob(st, 1, token_sha256, 32, SQLITE_TRANSIENT);
    return node_one(s, st, "(token)", out, err);
}

static int sq_node_revoke(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_NODE_REVOKE, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = run(s, st, "revoke node", err);
    if (rc == 0)
        return op_error_set(err, -ENOENT, "node", "no such node %s", name);
    return rc < 0 ? rc : 0;
}

static int sq_node_touch(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_NODE_TOUCH, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = run(s, st, "record last contact", err);
    return rc < 0 ? rc : 0;
}

static int sq_node_refused(void *impl, const char *name, const char *reason, int64_t now_ms,
                           struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_NODE_REFUSED, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, name);
    bind_text(st, 2, reason);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = run(s, st, "count a refused upload", err);
    if (rc == 0)
        return op_error_set(err, -ENOENT, "node", "no such node %s", name);
    return rc < 0 ? rc : 0;
}

static int sq_node_list(void *impl, hq_node_fn cb, void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_NODE_LIST, err);
    if (!st)
        return err ? err->code : -EIO;
    int rc;
    struct hq_node n;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_node(st, &n);
        int r = cb(ctx, &n);
        if (r) {
            sqlite3_reset(st);
            return r;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc, "list nodes", err);
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
        return fail(s, rc, "truncate the log after an erasure", err);
    s->forget_pending = 0;
    return 0;
}

static int sq_begin(void *impl, struct op_error *err)
{
    struct sq *s = impl;
    if (s->in_tx)
        return op_error_set(err, -EBUSY, NULL, "HQ store %s: a transaction is already open",
                            s->path);
    sqlite3_stmt *st = stmt(s, Q_BEGIN, err);
    if (!st)
        return err ? err->code : -EIO;
    int rc = run(s, st, "begin", err);
    if (rc < 0)
        return rc;
    s->in_tx = 1;
    return 0;
}

static int sq_commit(void *impl, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_COMMIT, err);
    if (!st)
        return err ? err->code : -EIO;
    int rc = run(s, st, "commit", err);
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
    if (sqlite3_get_autocommit(s->db) == 0) {
        sqlite3_stmt *st = stmt(s, Q_ROLLBACK, NULL);
        if (st)
            (void)run(s, st, "rollback", NULL);
    }
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
    sqlite3_stmt *st = stmt(s, Q_RECEIPT_GET, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)segment);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_receipt(st, out);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return op_error_set(err, -ENOENT, "segment", "no receipt for node %s segment %" PRIu64,
                            node, segment);
    return fail(s, rc, "read receipt", err);
}

static int sq_receipt_put(void *impl, const struct hq_receipt *r, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_RECEIPT_PUT, err);
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
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return op_error_set(err, -EEXIST, "segment",
                            "a receipt for node %s segment %" PRIu64 " exists already", r->node,
                            r->segment);
    return rc == SQLITE_DONE ? 0 : fail(s, rc, "write receipt", err);
}

static int is_tombstone_op(const char *op)
{
    return !strcmp(op, "erase") || !strcmp(op, "purge") || !strcmp(op, "withdraw");
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
    sqlite3_stmt *st = stmt(s, Q_RECORD_GET, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    bind_text(st, 2, entity);
    bind_text(st, 3, id);
    int rc = sqlite3_step(st);
    int exists = 0, stored_tomb = 0, stored_erased = 0;
    int64_t stored = 0;
    if (rc == SQLITE_ROW) {
        exists = 1;
        stored = sqlite3_column_int64(st, 0);
        stored_tomb = is_tombstone_op(col_text(st, 1));
        stored_erased = stored_tomb && strcmp(col_text(st, 1), "withdraw") != 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, rc, "read record", err);

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
    st = stmt(s, Q_RECORD_PUT, err);
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
    rc = run(s, st, "write record", err);
    if (rc < 0)
        return rc;
    if (tomb && !s->in_tx) { /* its own transaction has committed */
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
    sqlite3_stmt *st = stmt(s, Q_SET_ASIDE_ADD, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)segment);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)line);
    bind_text(st, 4, entity);
    bind_text(st, 5, id);
    bind_text(st, 6, reason);
    int rc = run(s, st, "set a record aside", err);
    return rc < 0 ? rc : 0;
}

/* ---- listings ---- */

static int sq_records_list(void *impl, const char *node, const char *entity, hq_record_fn cb,
                           void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_RECORDS_LIST, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    bind_text(st, 2, entity);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct hq_record_row r = {
            .node = col_text(st, 0),
            .entity = col_text(st, 1),
            .id = col_text(st, 2),
            .version = sqlite3_column_int64(st, 3),
            .op = col_text(st, 4),
            .json = col_text(st, 5),
        };
        int c = cb(ctx, &r);
        if (c) {
            sqlite3_reset(st);
            return c;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc, "list records", err);
}

static int sq_records_count(void *impl, const char *node, const char *entity, hq_count_fn cb,
                            void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_RECORDS_COUNT, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    bind_text(st, 2, entity);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int c = cb(ctx, col_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
        if (c) {
            sqlite3_reset(st);
            return c;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc, "count records", err);
}

static int sq_receipts_list(void *impl, const char *node, hq_receipt_fn cb, void *ctx,
                            struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_RECEIPTS_LIST, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    int rc;
    struct hq_receipt r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_receipt(st, &r);
        int c = cb(ctx, &r);
        if (c) {
            sqlite3_reset(st);
            return c;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc, "list receipts", err);
}

static int sq_set_aside_list(void *impl, const char *node, hq_set_aside_fn cb, void *ctx,
                             struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_SET_ASIDE_LIST, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct hq_set_aside_row r = {
            .node = col_text(st, 0),
            .segment = (uint64_t)sqlite3_column_int64(st, 1),
            .line = (uint64_t)sqlite3_column_int64(st, 2),
            .entity = col_text(st, 3),
            .id = col_text(st, 4),
            .reason = col_text(st, 5),
        };
        int c = cb(ctx, &r);
        if (c) {
            sqlite3_reset(st);
            return c;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc, "list set-aside records", err);
}

static int one_count(struct sq *s, const char *text, uint64_t *out, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, text, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : fail(s, rc, "totals", err);
}

static int sq_totals(void *impl, struct hq_totals *out, struct op_error *err)
{
    struct sq *s = impl;
    struct hq_totals t = {0};
    int rc;
    if ((rc = one_count(s, "SELECT count(*) FROM nodes", &t.nodes, err)) < 0 ||
        (rc = one_count(s, "SELECT count(*) FROM nodes WHERE revoked", &t.nodes_revoked, err)) <
            0 ||
        (rc = one_count(s, "SELECT coalesce(sum(refused), 0) FROM nodes", &t.refused, err)) < 0 ||
        (rc = one_count(s, "SELECT count(*) FROM records WHERE record IS NOT NULL", &t.records,
                        err)) < 0 ||
        (rc = one_count(s, "SELECT count(*) FROM records WHERE record IS NULL", &t.tombstones,
                        err)) < 0 ||
        (rc = one_count(s, "SELECT count(*) FROM receipts WHERE status = 'applied'",
                        &t.receipts_applied, err)) < 0 ||
        (rc = one_count(s, "SELECT count(*) FROM receipts WHERE status = 'rejected'",
                        &t.receipts_rejected, err)) < 0 ||
        (rc = one_count(s, "SELECT count(*) FROM set_aside", &t.set_aside, err)) < 0 ||
        (rc = one_count(s, "SELECT count(*) FROM mailbox", &t.mailbox, err)) < 0)
        return rc;
    *out = t;
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
    sqlite3_stmt *st = stmt(s, Q_MAILBOX_NEXT, err);
    if (!st) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    bind_text(st, 1, node);
    rc = sqlite3_step(st);
    uint64_t next = 0;
    if (rc == SQLITE_ROW)
        next = (uint64_t)sqlite3_column_int64(st, 0);
    int step = rc;
    sqlite3_reset(st);
    if (step == SQLITE_DONE) {
        rc = op_error_set(err, -ENOENT, "node", "no such node %s", node);
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = fail(s, step, "mailbox sequence", err);
        goto out;
    }
    st = stmt(s, Q_MAILBOX_ADD, err);
    if (!st) {
        rc = err ? err->code : -EIO;
        goto out;
    }
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
    bind_text(st, 3, kind);
    sqlite3_bind_blob(st, 4, body_len ? body : "", (int)body_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_ms);
    rc = run(s, st, "post a mailbox message", err);
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

static int sq_mailbox_list(void *impl, const char *node, uint64_t after, unsigned limit,
                           hq_mailbox_fn cb, void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_MAILBOX_LIST, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(after > INT64_MAX ? INT64_MAX : after));
    sqlite3_bind_int(st, 3, (int)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 2);
        struct hq_mailbox_msg m = {
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .kind = col_text(st, 1),
            .body = b ? (const char *)b : "",
            .body_len = (size_t)sqlite3_column_bytes(st, 2),
            .created_ms = sqlite3_column_int64(st, 3),
        };
        int c = cb(ctx, &m);
        if (c) {
            sqlite3_reset(st);
            return c;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc, "list mailbox", err);
}

static int sq_mailbox_policy_get(void *impl, const char *node, const char *hash, hq_mailbox_fn cb,
                                 void *ctx, struct op_error *err)
{
    struct sq *s = impl;
    sqlite3_stmt *st = stmt(s, Q_MAILBOX_POLICY, err);
    if (!st)
        return err ? err->code : -EIO;
    bind_text(st, 1, node);
    bind_text(st, 2, hash);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return op_error_set(err, -ENOENT, "policy_hash",
                            "HQ posted no policy with hash %.64s to node %s", hash, node);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(s, rc, "find a posted policy", err);
    }
    const void *b = sqlite3_column_blob(st, 2);
    struct hq_mailbox_msg m = {
        .seq = (uint64_t)sqlite3_column_int64(st, 0),
        .kind = col_text(st, 1),
        .body = b ? (const char *)b : "",
        .body_len = (size_t)sqlite3_column_bytes(st, 2),
        .created_ms = sqlite3_column_int64(st, 3),
    };
    int c = cb(ctx, &m);
    sqlite3_reset(st);
    return c;
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
    .records_list = sq_records_list,
    .records_count = sq_records_count,
    .receipts_list = sq_receipts_list,
    .set_aside_list = sq_set_aside_list,
    .totals = sq_totals,
    .mailbox_post = sq_mailbox_post,
    .mailbox_list = sq_mailbox_list,
    .mailbox_policy_get = sq_mailbox_policy_get,
};

const char *hq_receipt_status_name(enum hq_receipt_status s)
{
    return s == HQ_RECEIPT_APPLIED ? "applied" : "rejected";
}

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
        int e = sq_errno(rc);
        op_error_set(err, e ? e : -EIO, NULL, "cannot open HQ store %s: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sq_close(s);
        return e ? e : -EIO;
    }
    sqlite3_busy_timeout(s->db, HQ_BUSY_MS);
    rc = sqlite3_create_function(s->db, "outpost_sha256_hex", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                 sha256_hex_fn, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(s, rc, "register outpost_sha256_hex", err);
        sq_close(s);
        return rc;
    }
    int app = 0; /* reading a pragma first: a file that is not SQLite fails here */
    if ((rc = pragma_int(s, "PRAGMA application_id", &app, err)) < 0 ||
        (rc = exec(s,
                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                   "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
                   "settings", err)) < 0 ||
        (rc = migrate(s, err)) < 0) {
        sq_close(s);
        return rc;
    }
    out->ops = &sqlite_ops;
    out->impl = s;
    return 0;
}

void hq_store_close(struct hq_store *st)
{
    if (!st || !st->ops)
        return;
    st->ops->close(st->impl);
    st->ops = NULL;
    st->impl = NULL;
}
