/*
 * Tests for the HQ store's backends through the hq_store interface: the
 * SQLite file (hq_store_sqlite.c) by default, and PostgreSQL
 * (hq_store_pg.c) when OUTPOST_TEST_PG names a database, as
 * tests/support/pg_cluster.sh sets it (test hq_store_pg). Both run the
 * same checks:
 * nodes, version ordering, tombstones beating late upserts, receipts
 * never replaced, rollback leaving nothing, set-aside and mailbox rows,
 * policy messages found by their hash (also after an upgrade), the last
 * anti-entropy check of a node kept and replaced,
 * and refusing files (or databases) that are not an HQ store; on
 * PostgreSQL also that an erased record's old row version is gone from
 * the table's pages once no older snapshot can see it, and that two
 * connections posting to one node's mailbox never share a seq.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_store.h"
#include "fixture.h"
#include "testlib.h"

#define BBB_SHA256 "3e744b9dc39389baf0c5a0660589b8402f3dbb49b89b3e75f2c9355852a3c677"
#define A_SHA256 "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"

static char path[512];
static const char *pg; /* the PostgreSQL database under test, or NULL */
static const unsigned char tok1[32] = {1}, tok2[32] = {2}, key1[32] = {9};

/* The test's own connection to the database under test, kept open (and
 * idle between commands, so it holds no snapshot); another database's
 * connection is opened for the call. */
static PGconn *pg_conn(const char *conninfo, int *own)
{
    static PGconn *mine;
    *own = conninfo != pg;
    if (!*own && mine)
        return mine;
    PGconn *c = PQconnectdb(conninfo);
    CHECK_EQ(PQstatus(c), CONNECTION_OK);
    if (!*own)
        mine = c;
    return c;
}

/* Runs SQL commands on the PostgreSQL database conninfo, as its
 * superuser (the test's own inspection and damage). */
static void pg_exec(const char *conninfo, const char *sql)
{
    int own;
    PGconn *c = pg_conn(conninfo, &own);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    if (own)
        PQfinish(c);
}

/* The first column of a one-row query, as an integer. */
static long long pg_int(const char *conninfo, const char *sql)
{
    int own;
    PGconn *c = pg_conn(conninfo, &own);
    PGresult *r = PQexec(c, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    if (own)
        PQfinish(c);
    return v;
}

/* Closes a session and waits until its server process is gone (a
 * closing session still counts as open for a moment). */
static void pg_close_wait(PGconn *c)
{
    char q[128];
    snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", PQbackendPID(c));
    PQfinish(c);
    for (int i = 0; i < 500 && pg_int(pg, q) != 0; i++)
        usleep(10000);
}

static struct hq_store open_store(void)
{
    struct hq_store st = {0};
    struct op_error err;
    int rc = hq_store_open(pg ? pg : path, &st, &err);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    return st;
}

static uint64_t count_of(struct hq_store *st, const char *node);

static int add_count(void *ctx, const char *entity, uint64_t n)
{
    (void)entity;
    *(uint64_t *)ctx += n;
    return 0;
}

static uint64_t count_of(struct hq_store *st, const char *node)
{
    uint64_t n = 0;
    CHECK_EQ(st->ops->records_count(st->impl, node, NULL, add_count, &n, NULL), 0);
    return n;
}

struct got {
    int64_t version;
    char op[16];
    char json[256];
    int rows;
};

static int grab(void *ctx, const struct hq_record_row *r)
{
    struct got *g = ctx;
    g->version = r->version;
    snprintf(g->op, sizeof g->op, "%s", r->op);
    snprintf(g->json, sizeof g->json, "%s", r->json);
    g->rows++;
    return 0;
}

/* A tombstone row: no record text. */
static int grab_tomb(void *ctx, const struct hq_record_row *r)
{
    struct got *g = ctx;
    g->version = r->version;
    snprintf(g->op, sizeof g->op, "%s", r->op);
    if (r->json && r->json[0])
        g->json[0] = '!';
    g->rows++;
    return 0;
}

static enum hq_record_result apply(struct hq_store *st, const char *id, int64_t v, const char *op,
                                   const char *json)
{
    enum hq_record_result res = (enum hq_record_result) - 1;
    struct op_error err;
    int rc = st->ops->record_apply(st->impl, "n1", "contact", id, v, op, json,
                                   json ? strlen(json) : 0, 1, &res, &err);
    CHECK_EQ(rc, 0);
    return res;
}

static void test_nodes(void)
{
    struct hq_store st = open_store();
    struct op_error err;
    CHECK_EQ(st.ops->node_add(st.impl, "n1", "KE", tok1, key1, 1000, &err), 0);
    CHECK_EQ(st.ops->node_add(st.impl, "n1", "KE", tok2, key1, 1000, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, "n1 already exists");
    CHECK_EQ(st.ops->node_add(st.impl, "n2", "EU-DE", tok2, key1, 1000, &err), 0);
    struct hq_node n;
    CHECK_EQ(st.ops->node_by_token(st.impl, tok2, &n, &err), 0);
    CHECK_STR(n.name, "n2");
    CHECK_STR(n.region, "EU-DE");
    CHECK_EQ(n.revoked, 0);
    CHECK_EQ(st.ops->node_revoke(st.impl, "n2", 2000, &err), 0);
    CHECK_EQ(st.ops->node_get(st.impl, "n2", &n, &err), 0);
    CHECK_EQ(n.revoked, 1);
    CHECK_EQ(st.ops->node_revoke(st.impl, "nobody", 2000, &err), -ENOENT);
    unsigned char none[32] = {7};
    CHECK_EQ(st.ops->node_by_token(st.impl, none, &n, &err), -ENOENT);
    CHECK_EQ(st.ops->node_refused(st.impl, "n1", "bad hmac", 3000, &err), 0);
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, &err), 0);
    CHECK_EQ(n.segments_refused, 1);
    CHECK_STR(n.last_refusal, "bad hmac");
    CHECK(!memcmp(n.hq_key, key1, 32));
    hq_store_close(&st);
}

static void test_versions_and_tombstones(void)
{
    struct hq_store st = open_store();
    CHECK_EQ(apply(&st, "c1", 2, "upsert", "{\"id\":\"c1\",\"version\":2}"), HQ_RECORD_CHANGED);
    CHECK_EQ(apply(&st, "c1", 1, "upsert", "{\"id\":\"c1\",\"version\":1}"), HQ_RECORD_STALE);
    /* the same version again is a re-projection under a new policy: it
     * replaces what HQ holds */
    CHECK_EQ(apply(&st, "c1", 2, "upsert", "{\"id\":\"c1\",\"version\":2,\"x\":1}"),
             HQ_RECORD_CHANGED);
    CHECK_EQ(apply(&st, "c1", 3, "delete", "{\"id\":\"c1\",\"version\":3,\"deleted\":true}"),
             HQ_RECORD_CHANGED);
    struct got g = {0};
    CHECK_EQ(st.ops->records_list(st.impl, "n1", "contact", grab, &g, NULL), 0);
    CHECK_EQ(g.rows, 1);
    CHECK_EQ(g.version, 3);
    CHECK_STR(g.op, "delete");

    /* An erase drops the data even below the stored version, and keeps
     * the higher version, so the late upsert of v3 cannot bring it back. */
    CHECK_EQ(apply(&st, "c1", 2, "erase", NULL), HQ_RECORD_CHANGED);
    memset(&g, 0, sizeof g);
    CHECK_EQ(st.ops->records_list(st.impl, "n1", NULL, grab, &g, NULL), 0);
    CHECK_EQ(g.rows, 0);
    CHECK_EQ(count_of(&st, "n1"), 0);
    CHECK_EQ(apply(&st, "c1", 3, "upsert", "{\"id\":\"c1\",\"version\":3}"), HQ_RECORD_STALE);
    CHECK_EQ(apply(&st, "c1", 1, "upsert", "{\"id\":\"c1\",\"version\":1}"), HQ_RECORD_STALE);
    CHECK_EQ(apply(&st, "c1", 3, "purge", NULL), HQ_RECORD_STALE);
    /* a genuinely newer record (recreated after a withdrawal) applies */
    CHECK_EQ(apply(&st, "c1", 4, "upsert", "{\"id\":\"c1\",\"version\":4}"), HQ_RECORD_CHANGED);
    CHECK_EQ(count_of(&st, "n1"), 1);
    /* a withdrawal of the same version goes when the record may leave
     * again under a looser policy, and comes back when it is withheld */
    CHECK_EQ(apply(&st, "c3", 2, "upsert", "{\"id\":\"c3\",\"version\":2}"), HQ_RECORD_CHANGED);
    CHECK_EQ(apply(&st, "c3", 2, "withdraw", NULL), HQ_RECORD_CHANGED);
    CHECK_EQ(apply(&st, "c3", 2, "withdraw", NULL), HQ_RECORD_STALE);
    CHECK_EQ(apply(&st, "c3", 2, "upsert", "{\"id\":\"c3\",\"version\":2}"), HQ_RECORD_CHANGED);
    CHECK_EQ(apply(&st, "c3", 2, "erase", NULL), HQ_RECORD_CHANGED);
    CHECK_EQ(apply(&st, "c3", 2, "upsert", "{\"id\":\"c3\",\"version\":2}"), HQ_RECORD_STALE);
    /* a tombstone before any data is kept too */
    CHECK_EQ(apply(&st, "c2", 5, "withdraw", NULL), HQ_RECORD_CHANGED);
    CHECK_EQ(apply(&st, "c2", 4, "upsert", "{\"id\":\"c2\",\"version\":4}"), HQ_RECORD_STALE);
    CHECK_EQ(count_of(&st, "n1"), 1);
    struct hq_totals t;
    CHECK_EQ(st.ops->totals(st.impl, &t, NULL), 0);
    CHECK_EQ(t.records, 1);
    CHECK_EQ(t.tombstones, 2);
    /* anti-entropy lists a node's tombstones (c2 withdrawn, c3 erased),
     * in id order and without record text */
    memset(&g, 0, sizeof g);
    CHECK_EQ(st.ops->tombstones_list(st.impl, "n1", grab_tomb, &g, NULL), 0);
    CHECK_EQ(g.rows, 2);
    CHECK_STR(g.op, "erase");
    CHECK_EQ(g.version, 2);
    CHECK_STR(g.json, "");
    memset(&g, 0, sizeof g);
    CHECK_EQ(st.ops->tombstones_list(st.impl, "n9", grab_tomb, &g, NULL), 0);
    CHECK_EQ(g.rows, 0);
    hq_store_close(&st);
}

static void test_receipts_and_rollback(void)
{
    struct hq_store st = open_store();
    struct op_error err;
    struct hq_receipt r = {.segment = 1,
                           .status = HQ_RECEIPT_APPLIED,
                           .to_urgent = 3,
                           .to_ordinary = 9,
                           .records = 2,
                           .applied = 2,
                           .received_ms = 5};
    snprintf(r.node, sizeof r.node, "n1");
    CHECK_EQ(st.ops->begin(st.impl, &err), 0);
    CHECK_EQ(apply(&st, "c9", 1, "upsert", "{\"id\":\"c9\",\"version\":1}"), HQ_RECORD_CHANGED);
    CHECK_EQ(st.ops->receipt_put(st.impl, &r, &err), 0);
    CHECK_EQ(st.ops->set_aside_add(st.impl, "n1", 1, 2, "widget", "w1", "unknown entity", &err), 0);
    st.ops->rollback(st.impl);
    struct hq_receipt got;
    CHECK_EQ(st.ops->receipt_get(st.impl, "n1", 1, &got, &err), -ENOENT);
    CHECK_EQ(count_of(&st, "n1"), 1); /* c1 from before; c9 rolled back */

    CHECK_EQ(st.ops->begin(st.impl, &err), 0);
    CHECK_EQ(st.ops->receipt_put(st.impl, &r, &err), 0);
    CHECK_EQ(st.ops->set_aside_add(st.impl, "n1", 1, 2, "widget", "w1", "unknown entity", &err), 0);
    CHECK_EQ(st.ops->commit(st.impl, &err), 0);
    struct hq_receipt r2 = r;
    r2.status = HQ_RECEIPT_REJECTED;
    CHECK_EQ(st.ops->receipt_put(st.impl, &r2, &err), -EEXIST);
    CHECK_EQ(st.ops->receipt_get(st.impl, "n1", 1, &got, &err), 0);
    CHECK_EQ(got.status, HQ_RECEIPT_APPLIED);
    CHECK_EQ(got.to_urgent, 3);
    CHECK_EQ(got.to_ordinary, 9);
    struct hq_node n;
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, &err), 0);
    CHECK_EQ(n.segments_applied, 1);
    CHECK_EQ(n.set_aside, 1);
    CHECK_EQ(n.has_last_segment, 1);
    CHECK_EQ(n.last_segment, 1);
    hq_store_close(&st);
}

static int grab_msg(void *ctx, const struct hq_mailbox_msg *m)
{
    uint64_t *last = ctx;
    *last = m->seq * 1000 + m->body_len;
    return 0;
}

static void test_mailbox(void)
{
    struct hq_store st = open_store();
    struct op_error err;
    uint64_t seq = 0;
    CHECK_EQ(st.ops->mailbox_post(st.impl, "n1", "reference", "a", 1, 1, &seq, &err), 0);
    CHECK_EQ(seq, 1);
    CHECK_EQ(st.ops->mailbox_post(st.impl, "n1", "policy", "bbb", 3, 1, &seq, &err), 0);
    CHECK_EQ(seq, 2);
    CHECK_EQ(st.ops->mailbox_post(st.impl, "nobody", "policy", "b", 1, 1, &seq, &err), -ENOENT);
    CHECK_EQ(st.ops->mailbox_post(st.impl, "n1", "junk", "b", 1, 1, &seq, &err), -EINVAL);
    uint64_t last = 0;
    CHECK_EQ(st.ops->mailbox_list(st.impl, "n1", 1, 100, grab_msg, &last, &err), 0);
    CHECK_EQ(last, 2003);
    last = 0;
    CHECK_EQ(st.ops->mailbox_list(st.impl, "n1", 2, 100, grab_msg, &last, &err), 0);
    CHECK_EQ(last, 0);
    /* a policy message is found by node and the SHA-256 of its text */
    last = 0;
    CHECK_EQ(st.ops->mailbox_policy_get(st.impl, "n1", BBB_SHA256, grab_msg, &last, &err), 0);
    CHECK_EQ(last, 2003);
    CHECK_EQ(st.ops->mailbox_policy_get(st.impl, "n2", BBB_SHA256, grab_msg, &last, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "HQ posted no policy with hash " BBB_SHA256 " to node n2");
    /* only policy messages: "a" was posted as reference data */
    CHECK_EQ(st.ops->mailbox_policy_get(st.impl, "n1", A_SHA256, grab_msg, &last, &err), -ENOENT);
    /* the first of two identical posts */
    CHECK_EQ(st.ops->mailbox_post(st.impl, "n1", "policy", "bbb", 3, 1, &seq, &err), 0);
    CHECK_EQ(seq, 3);
    CHECK_EQ(st.ops->mailbox_policy_get(st.impl, "n1", BBB_SHA256, grab_msg, &last, &err), 0);
    CHECK_EQ(last, 2003);
    hq_store_close(&st);
}

/* A store of schema 1 (before policy hashes were kept) gets the hashes of
 * the policies it holds when it is opened, and the analysts' table. */
static void test_mailbox_upgrade(void)
{
    if (pg) {
        /* PostgreSQL's schema 1 had no analysts' views: opening adds them */
        pg_exec(pg, "SET client_min_messages = warning; DROP SCHEMA analytics CASCADE; "
                    "UPDATE outpost_hq_schema SET version = 1");
    } else {
        sqlite3 *db = NULL;
        CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
        CHECK_EQ(
            sqlite3_exec(db,
                         "DROP TABLE verify_last; DROP TABLE analysts; DROP INDEX mailbox_policy; "
                         "ALTER TABLE mailbox "
                         "DROP COLUMN policy_hash; ALTER TABLE set_aside DROP COLUMN "
                         "needs_whole; PRAGMA user_version = 1",
                         NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);
    }
    struct hq_store st = open_store();
    struct op_error err;
    if (pg)
        CHECK_EQ(pg_int(pg, "SELECT records FROM analytics.record_counts WHERE entity = 'contact'"),
                 1);
    uint64_t last = 0;
    CHECK_EQ(st.ops->mailbox_policy_get(st.impl, "n1", BBB_SHA256, grab_msg, &last, &err), 0);
    CHECK_EQ(last, 2003);
    struct hq_analyst a;
    unsigned char sha[32];
    memset(sha, 0x11, sizeof sha);
    CHECK_EQ(st.ops->analyst_add(st.impl, "after-upgrade", sha, 5, &err), 0);
    CHECK_EQ(st.ops->analyst_by_token(st.impl, sha, &a, &err), 0);
    CHECK_STR(a.name, "after-upgrade");
    hq_store_close(&st);
}

static int list_analyst(void *ctx, const struct hq_analyst *a)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s:%d:%lld:%lld;", a->name, a->revoked, (long long)a->created_ms,
             (long long)a->revoked_ms);
    return 0;
}

/* Analysts: a name once, a token found by its hash only, revoked ones
 * still found (the caller refuses them) and listed, never a token kept
 * in clear; an analyst's token finds no node. */
static void test_analysts(void)
{
    struct hq_store st = open_store();
    struct op_error err;
    op_error_clear(&err);
    unsigned char t1[32], t2[32];
    SHA256((const unsigned char *)"clear-token-one", 15, t1);
    SHA256((const unsigned char *)"clear-token-two", 15, t2);
    CHECK_EQ(st.ops->analyst_add(st.impl, "zoe", t1, 100, &err), 0);
    CHECK_EQ(st.ops->analyst_add(st.impl, "zoe", t2, 101, &err), -EEXIST);
    CHECK_STR(err.msg, "analyst zoe already exists");
    CHECK_EQ(st.ops->analyst_add(st.impl, "bob", t1, 102, &err), -EEXIST); /* same token */
    CHECK_EQ(st.ops->analyst_add(st.impl, "bob", t2, 103, &err), 0);
    struct hq_analyst a;
    CHECK_EQ(st.ops->analyst_by_token(st.impl, t1, &a, &err), 0);
    CHECK_STR(a.name, "zoe");
    CHECK_EQ(a.revoked, 0);
    struct hq_node n;
    CHECK_EQ(st.ops->node_by_token(st.impl, t1, &n, &err), -ENOENT);
    CHECK_EQ(st.ops->analyst_revoke(st.impl, "zoe", 200, &err), 0);
    CHECK_EQ(st.ops->analyst_revoke(st.impl, "zoe", 300, &err), 0); /* first time kept */
    CHECK_EQ(st.ops->analyst_revoke(st.impl, "nobody", 300, &err), -ENOENT);
    CHECK_STR(err.msg, "no such analyst nobody");
    CHECK_EQ(st.ops->analyst_by_token(st.impl, t1, &a, &err), 0);
    CHECK_EQ(a.revoked, 1);
    CHECK_EQ(a.revoked_ms, 200);
    CHECK_EQ(st.ops->analyst_touch(st.impl, "bob", 10000, &err), 0);
    CHECK_EQ(st.ops->analyst_by_token(st.impl, t2, &a, &err), 0);
    CHECK_EQ(a.last_used_ms, 10000);
    char out[512] = "";
    CHECK_EQ(st.ops->analyst_list(st.impl, list_analyst, out, &err), 0);
    CHECK_STR(out, "after-upgrade:0:5:0;bob:0:103:0;zoe:1:100:200;");
    hq_store_close(&st);
    if (pg) { /* the table holds hashes, never a token */
        CHECK_EQ(pg_int(pg, "SELECT count(*) FROM analysts WHERE length(token_sha256) = 32"), 3);
        CHECK_EQ(pg_int(pg, "SELECT count(*) FROM analysts "
                            "WHERE position('clear-token' IN encode(token_sha256, 'escape')) > 0"),
                 0);
        return;
    }
    /* the file holds hashes, never a token */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static char bytes[1 << 20];
    size_t got = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f)
        fclose(f);
    CHECK(got > 0);
    CHECK(memmem(bytes, got, "clear-token", 11) == NULL);
}

static int stop_at(void *ctx, const struct hq_node *n)
{
    int *calls = ctx;
    (*calls)++;
    return strcmp(n->name, "n1") ? 0 : -ENOMEM;
}

/* The listings pass a callback's own return through untouched; a store
 * failure names the store's path and what it was doing, with sql_errno's
 * code, and a constraint is -EEXIST only where it means "already
 * there". */
static void test_listings_and_errors(void)
{
    struct hq_store st = open_store();
    struct op_error err;
    op_error_clear(&err);
    int calls = 0;
    CHECK_EQ(st.ops->node_list(st.impl, stop_at, &calls, &err), -ENOMEM);
    CHECK_EQ(calls, 1);
    CHECK_STR(err.msg, "");
    /* another name with a token in use: the token is taken, as a name */
    CHECK_EQ(st.ops->node_add(st.impl, "n9", "KE", tok1, key1, 1000, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, "n9 already exists");
    /* a row for a node that does not exist breaks a reference, not a
     * uniqueness rule */
    CHECK_EQ(st.ops->set_aside_add(st.impl, "nobody", 1, 1, "contact", "c1", "why", &err), -EINVAL);
    char want[700];
    if (pg) {
        CHECK_CONTAINS(err.msg, "HQ store postgresql outpost_test on ");
        CHECK_CONTAINS(err.msg, ": set a record aside: insert or update on table \"set_aside\" "
                                "violates foreign key constraint");
    } else {
        snprintf(want, sizeof want,
                 "HQ store %s: set a record aside: FOREIGN KEY constraint failed", path);
        CHECK_STR(err.msg, want);
    }
    struct hq_totals t;
    CHECK_EQ(st.ops->totals(st.impl, &t, &err), 0);
    CHECK_EQ(t.nodes, 2);
    CHECK_EQ(t.nodes_revoked, 1);
    CHECK_EQ(t.refused, 1);
    CHECK_EQ(t.receipts_applied, 1);
    CHECK_EQ(t.receipts_rejected, 0);
    CHECK_EQ(t.set_aside, 1);
    CHECK_EQ(t.mailbox, 3);
    hq_store_close(&st);
}

/* PostgreSQL: a database holding other tables is not taken over, a
 * schema from a newer build is not written to, and a refused login names
 * the server, never the conninfo's password. */
static void test_foreign_databases(void)
{
    const char *admin = getenv("OUTPOST_TEST_PG_ADMIN");
    CHECK(admin != NULL);
    if (!admin)
        return;
    char other[700];
    pg_exec(pg, "CREATE DATABASE someone_else");
    snprintf(other, sizeof other, "%s dbname=someone_else", admin);
    pg_exec(other, "CREATE TABLE contacts (id text)");
    struct hq_store st = {0};
    struct op_error err;
    CHECK_EQ(hq_store_open(other, &st, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "postgresql someone_else on ");
    CHECK_CONTAINS(err.msg, "is not an outpost-hq store");
    CHECK_EQ(pg_int(other, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 1);

    pg_exec(pg, "UPDATE outpost_hq_schema SET version = 99");
    CHECK_EQ(hq_store_open(pg, &st, &err), -EPROTO);
    CHECK_CONTAINS(err.msg, "schema version 99");
    pg_exec(pg, "UPDATE outpost_hq_schema SET version = 2");

    char bad[800];
    snprintf(bad, sizeof bad, "%s dbname=outpost_test user=nobody_here password=s3cret-canary",
             admin);
    CHECK(hq_store_open(bad, &st, &err) < 0);
    CHECK_CONTAINS(err.msg, "cannot open HQ store on PostgreSQL");
    CHECK(strstr(err.msg, "s3cret-canary") == NULL);
}

/* Erasure on PostgreSQL (docs/HQ.md): once an erase has committed and no
 * snapshot from before it is open, the old row version holding the
 * record's bytes is gone from the table's pages; while an older snapshot
 * is open, forget says -EBUSY and the store keeps trying. */
static void test_pg_erasure(void)
{
    pg_exec(pg, "CREATE EXTENSION IF NOT EXISTS pageinspect");
    const char *count_canary =
        "SELECT count(*) FROM generate_series(0, pg_relation_size('records') / 8192 - 1) b, "
        "heap_page_items(get_raw_page('records', b::int)) i "
        "WHERE position('canary-4711' IN encode(i.t_data, 'escape')) > 0";
    struct hq_store st = open_store();
    struct op_error err;
    CHECK_EQ(apply(&st, "e1", 1, "upsert", "{\"id\":\"e1\",\"note\":\"canary-4711\"}"),
             HQ_RECORD_CHANGED);
    CHECK(pg_int(pg, count_canary) >= 1);

    /* an analyst's long transaction from before the erasure */
    PGconn *reader = PQconnectdb(pg);
    PQclear(PQexec(reader, "BEGIN ISOLATION LEVEL REPEATABLE READ"));
    PQclear(PQexec(reader, "SELECT count(*) FROM records"));
    CHECK_EQ(st.ops->begin(st.impl, &err), 0);
    CHECK_EQ(apply(&st, "e1", 2, "erase", NULL), HQ_RECORD_CHANGED);
    CHECK_EQ(st.ops->commit(st.impl, &err), 0);
    CHECK_EQ(st.ops->forget(st.impl, &err), -EBUSY);
    CHECK_CONTAINS(err.msg, "still hold a snapshot from before the erasure");
    pg_close_wait(reader);
    CHECK_EQ(st.ops->forget(st.impl, &err), 0);
    CHECK_EQ(pg_int(pg, count_canary), 0);
    CHECK_EQ(st.ops->forget(st.impl, &err), 0); /* nothing pending */

    /* an erase in its own transaction, nobody reading */
    CHECK_EQ(apply(&st, "e2", 1, "upsert", "{\"id\":\"e2\",\"note\":\"canary-4711\"}"),
             HQ_RECORD_CHANGED);
    CHECK(pg_int(pg, count_canary) >= 1);
    CHECK_EQ(apply(&st, "e2", 1, "purge", NULL), HQ_RECORD_CHANGED);
    CHECK_EQ(pg_int(pg, count_canary), 0);
    hq_store_close(&st);
}

/* The server ends the store's session (a restart, an admin's
 * pg_terminate_backend): one call fails naming the store, the next one
 * works on a new connection, with nothing lost. */
static void test_pg_reconnect(void)
{
    struct hq_store st = open_store();
    struct op_error err;
    struct hq_node n;
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, &err), 0);
    CHECK_EQ(pg_int(pg, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'outpost-hq'"),
             1);
    int rc = st.ops->node_get(st.impl, "n1", &n, &err);
    CHECK(rc == 0 || rc == -EIO);
    if (rc)
        CHECK_CONTAINS(err.msg, "HQ store postgresql outpost_test on ");
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, &err), 0);
    CHECK_STR(n.name, "n1");
    uint64_t seq = 0;
    CHECK_EQ(st.ops->mailbox_post(st.impl, "n1", "reference", "r", 1, 1, &seq, &err), 0);
    CHECK_EQ(seq, n.mailbox_last + 1);
    hq_store_close(&st);
}

/* Two connections (two receivers) posting to one node at once: every
 * message gets its own seq, following on without a gap. */
struct poster {
    struct hq_store st;
    uint64_t seq[50];
    int failed;
};

static void *post_many(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < 50; i++)
        if (p->st.ops->mailbox_post(p->st.impl, "n1", "reference", "x", 1, 1, &p->seq[i], NULL))
            p->failed++;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_pg_mailbox_race(void)
{
    static struct poster ps[2];
    ps[0].st = open_store();
    ps[1].st = open_store();
    struct hq_node n;
    CHECK_EQ(ps[0].st.ops->node_get(ps[0].st.impl, "n1", &n, NULL), 0);
    uint64_t first = n.mailbox_last + 1;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, post_many, &ps[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(ps[0].failed + ps[1].failed, 0);
    uint64_t all[100];
    memcpy(all, ps[0].seq, sizeof ps[0].seq);
    memcpy(all + 50, ps[1].seq, sizeof ps[1].seq);
    qsort(all, 100, sizeof all[0], cmp_u64);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(all[i], first + (uint64_t)i);
    CHECK_EQ(ps[0].st.ops->node_get(ps[0].st.impl, "n1", &n, NULL), 0);
    CHECK_EQ(n.mailbox_last, first + 99);
    hq_store_close(&ps[0].st);
    hq_store_close(&ps[1].st);
}

static void test_foreign_files(void)
{
    char other[600];
    snprintf(other, sizeof other, "%s/node.db", fx_dir);
    sqlite3 *db = NULL;
    CHECK_EQ(sqlite3_open(other, &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "CREATE TABLE contacts (id TEXT)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct hq_store st = {0};
    struct op_error err;
    CHECK_EQ(hq_store_sqlite_open(other, &st, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "not an outpost-hq store");

    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ(hq_store_sqlite_open(path, &st, &err), -EPROTO);
    CHECK_CONTAINS(err.msg, "schema version 99");

    /* a file that is not SQLite at all is not an HQ store either */
    char junk[600];
    snprintf(junk, sizeof junk, "%s/junk.db", fx_dir);
    FILE *f = fopen(junk, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 64; i++)
            fputs("not a database, just text\n", f);
        fclose(f);
    }
    CHECK_EQ(hq_store_sqlite_open(junk, &st, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, junk);
}

static void test_verify_last(void)
{
    struct hq_store st = open_store();
    struct op_error err;
    struct hq_verify v = {.at_ms = 5000,
                          .compared = 100000,
                          .hq_records = 99990,
                          .ranges = 300,
                          .requests = 4,
                          .bytes = 20000,
                          .drift = 10,
                          .resent = 9,
                          .reported = 1};
    snprintf(v.node, sizeof v.node, "n1");
    snprintf(v.result, sizeof v.result, "repaired");
    struct hq_verify got;
    CHECK_EQ(st.ops->verify_get(st.impl, "n1", &got, &err), -ENOENT);
    CHECK_EQ(st.ops->verify_put(st.impl, &v, &err), 0);
    CHECK_EQ(st.ops->verify_get(st.impl, "n1", &got, &err), 0);
    CHECK_STR(got.result, "repaired");
    CHECK_EQ(got.compared, 100000);
    CHECK_EQ(got.hq_records, 99990);
    CHECK_EQ(got.reported, 1);
    CHECK_EQ(got.at_ms, 5000);
    /* the next check replaces it */
    v.at_ms = 6000;
    v.drift = v.resent = v.reported = 0;
    snprintf(v.result, sizeof v.result, "agree");
    CHECK_EQ(st.ops->verify_put(st.impl, &v, &err), 0);
    CHECK_EQ(st.ops->verify_get(st.impl, "n1", &got, &err), 0);
    CHECK_STR(got.result, "agree");
    CHECK_EQ(got.drift, 0);
    CHECK_EQ(got.at_ms, 6000);
    /* a result outside the four, or an unknown node, is refused */
    snprintf(v.result, sizeof v.result, "fine");
    CHECK(st.ops->verify_put(st.impl, &v, &err) < 0);
    snprintf(v.result, sizeof v.result, "agree");
    snprintf(v.node, sizeof v.node, "nobody");
    CHECK(st.ops->verify_put(st.impl, &v, &err) < 0);
    CHECK_EQ(st.ops->verify_get(st.impl, "nobody", &got, &err), -ENOENT);
    CHECK_EQ(st.ops->verify_get(st.impl, "n1", &got, &err), 0);
    CHECK_STR(got.result, "agree");
    hq_store_close(&st);
}

int main(void)
{
    fx_tmpdir("hq-store");
    fx_path(path, sizeof path, "hq.db");
    pg = getenv("OUTPOST_TEST_PG");
    if (pg && !*pg)
        pg = NULL;
    RUN(test_nodes);
    RUN(test_versions_and_tombstones);
    RUN(test_receipts_and_rollback);
    RUN(test_mailbox);
    RUN(test_mailbox_upgrade);
    RUN(test_analysts);
    RUN(test_verify_last);
    RUN(test_listings_and_errors);
    if (pg) {
        RUN(test_pg_erasure);
        RUN(test_pg_reconnect);
        RUN(test_pg_mailbox_race);
        RUN(test_foreign_databases);
    } else {
        RUN(test_foreign_files);
    }
    return fx_finish();
}
