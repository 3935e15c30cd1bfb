/*
 * A node for the sync ledger's unit tests (test_ledger_*.c): a database
 * initialized for EU-DE in a temporary directory, a spool beside it, test
 * credentials, and a ledger on a clock the test moves. snapshot() prints
 * every table the ledger writes and the spool's files, so a test can show
 * that a refused call changed nothing and an accepted one only what it
 * should.
 */
#ifndef OUTPOST_TEST_LEDGER_FIXTURE_H
#define OUTPOST_TEST_LEDGER_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "db.h"
#include "outpost_config.h"
#include "store.h"
#include "sync_ledger.h"
#include "sync_mac.h"
#include "testlib.h"

static char fx_dir[] = "/tmp/outpost-test-ledger-unit-XXXXXX";
static char fx_db[300], fx_spool[300];
static struct node_credentials fx_cred;
static struct store *fx_st;
static int64_t fx_now = 1795000000000; /* 2026-11-18, ms */

static inline int64_t fx_clock(void *ctx)
{
    (void)ctx;
    return fx_now;
}

static inline void fx_die(const char *what, const struct op_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static inline void fx_setup(void)
{
    if (!mkdtemp(fx_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    char policy[400];
    snprintf(policy, sizeof policy, "%s/EU-DE.yaml", OUTPOST_SOURCE_REGIONS_DIR);
    setenv("OUTPOST_POLICY", policy, 1);
    snprintf(fx_cred.node_id, sizeof fx_cred.node_id, "test-node-1");
    snprintf(fx_cred.region, sizeof fx_cred.region, "EU-DE");
    for (int i = 0; i < 32; i++)
        fx_cred.hq_key[i] = (unsigned char)(i * 7 + 1);
}

static inline int fx_teardown(void)
{
    store_close(fx_st);
    fx_st = NULL;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx_dir);
    return tl_report();
}

/* A new database `name` (and spool) in the test directory, kept open in fx_st. */
static inline void fx_fresh(const char *name)
{
    snprintf(fx_db, sizeof fx_db, "%s/%s.db", fx_dir, name);
    snprintf(fx_spool, sizeof fx_spool, "%s/%s-spool", fx_dir, name);
    struct op_error err;
    store_close(fx_st);
    if (store_open(fx_db, DB_OPEN_CREATE, &fx_st, &err) < 0 ||
        store_init_node(fx_st, "EU-DE", &err) < 0)
        fx_die("store", &err);
}

static inline struct sync_ledger *fx_open(uint64_t seg_bytes)
{
    struct sync_ledger_options o = {.db_path = fx_db,
                                    .spool_dir = fx_spool,
                                    .cred = &fx_cred,
                                    .segment_bytes = seg_bytes,
                                    .now_ms = fx_clock};
    struct sync_ledger *l = NULL;
    struct op_error err;
    if (sync_ledger_open(&o, &l, &err) < 0)
        fx_die("sync_ledger_open", &err);
    return l;
}

/* A new contact; the caller frees its id. */
static inline char *fx_contact(const char *name)
{
    json_t *in = json_pack("{ss}", "given_name", name);
    json_t *out = NULL;
    struct op_error err;
    if (store_create(fx_st, &entity_contact, in, STORE_SKIP_DUP_CHECK, &out, &err) < 0)
        fx_die("create", &err);
    json_decref(in);
    char *id = strdup(json_string_value(json_object_get(out, "id")));
    json_decref(out);
    return id;
}

static inline struct sync_segment fx_segment(struct sync_ledger *l)
{
    struct sync_segment sg;
    struct op_error err;
    int made = 0;
    if (sync_ledger_make_segment(l, &made, &sg, &err) < 0 || !made)
        fx_die("make_segment", &err);
    return sg;
}

/* Appends `sql`'s rows to out, each column as text. */
static inline void fx_dump(const char *sql, char *out, size_t cap)
{
    sqlite3 *db = store_db(fx_st);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        fx_die(sqlite3_errmsg(db), NULL);
    size_t n = strlen(out);
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "[%s]\n", sql);
    while (sqlite3_step(q) == SQLITE_ROW && n < cap) {
        for (int c = 0; c < sqlite3_column_count(q) && n < cap; c++) {
            const unsigned char *t = sqlite3_column_text(q, c);
            n += (size_t)snprintf(out + n, cap - n, "%s|", t ? (const char *)t : "NULL");
        }
        if (n < cap)
            n += (size_t)snprintf(out + n, cap - n, "\n");
    }
    sqlite3_finalize(q);
}

/* Every table the ledger writes, and the names of the spool's files. */
static inline char *fx_snapshot(void)
{
    size_t cap = 1 << 20;
    char *out = calloc(1, cap);
    if (!out)
        fx_die("out of memory", NULL);
    fx_dump("SELECT seq, op, priority FROM outbox ORDER BY seq", out, cap);
    fx_dump("SELECT * FROM sync_state", out, cap);
    fx_dump("SELECT * FROM sync_segments ORDER BY no", out, cap);
    fx_dump("SELECT * FROM spool_voided ORDER BY no", out, cap);
    fx_dump("SELECT * FROM sync_errors ORDER BY kind", out, cap);
    fx_dump("SELECT * FROM mailbox ORDER BY seq", out, cap);
    DIR *d = opendir(fx_spool);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(out);
            if (e->d_name[0] != '.')
                snprintf(out + n, cap - n, "file %s\n", e->d_name);
        }
        closedir(d);
    }
    return out;
}

static inline int fx_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

#endif
