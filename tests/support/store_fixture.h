/*
 * A node database for the unit tests that need one (store, io, uplink and
 * the policy tests): fresh databases in the test's directory (fixture.h),
 * initialized for a region, optionally on the injected clock; records
 * created without ceremony; a region profile from schema/regions; and the
 * one query helper tests use to count what a table holds. Set-up that
 * fails ends the run (fx_die): it is not what a test checks.
 */
#ifndef OUTPOST_TEST_STORE_FIXTURE_H
#define OUTPOST_TEST_STORE_FIXTURE_H

#include <jansson.h>
#include <sqlite3.h>

#include "db.h"
#include "entity.h"
#include "fixture.h"
#include "node_credentials.h"
#include "outpost_config.h"
#include "policy.h"
#include "store.h"

/* The path of the database fx_store or fx_store_at opened last. */
static char fx_db[FX_PATH_MAX] __attribute__((unused));

/* Opens (creating) fx_db and initializes it for region when it has no
 * node yet; clock (NULL: the real one) is set before. */
static inline struct store *fx_store_open(const char *region, uint64_t (*clock)(void *))
{
    struct store *s = NULL;
    struct op_error err;
    if (store_open(fx_db, DB_OPEN_CREATE, &s, &err) < 0)
        fx_die("store_open", &err);
    if (clock)
        store_set_clock(s, clock, NULL);
    if (!store_node_id(s) && store_init_node(s, region, &err) < 0)
        fx_die("store_init_node", &err);
    return s;
}

/* The same for fx_dir/NAME. */
static inline struct store *fx_store_region(const char *name, const char *region,
                                            uint64_t (*clock)(void *))
{
    fx_path(fx_db, sizeof fx_db, name);
    return fx_store_open(region, clock);
}

/* fx_db opened again (a restart), on the real clock. */
static inline struct store *fx_store_reopen(void)
{
    return fx_store_open("EU-DE", NULL);
}

/* A fresh EU-DE node at fx_dir/NAME on the real clock. */
static inline struct store *fx_store(const char *name)
{
    return fx_store_region(name, "EU-DE", NULL);
}

/* A fresh EU-DE node under a new name (node0.db, node1.db, ...). */
static inline struct store *fx_store_next(void)
{
    static int n;
    char name[32];
    snprintf(name, sizeof name, "node%d.db", n++);
    return fx_store(name);
}

/* A fresh EU-DE node at fx_dir/NAME on fx_clock, set to start_ms first:
 * the HLC never runs backwards, so records meant to be old must be written
 * on the injected clock from the start. */
static inline struct store *fx_store_at(const char *name, uint64_t start_ms)
{
    fx_clock_ms = start_ms;
    return fx_store_region(name, "EU-DE", fx_clock);
}

/* Creates a record of e from in (taken) without the duplicate check;
 * returns its id, which the caller frees. */
static inline char *fx_create(struct store *s, const struct entity_def *e, json_t *in)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = store_create(s, e, in, STORE_SKIP_DUP_CHECK, &out, &err);
    json_decref(in);
    if (rc < 0) {
        fprintf(stderr, "create %s: %s\n", e->name, err.msg);
        exit(1);
    }
    char *id = strdup(json_string_value(json_object_get(out, "id")));
    json_decref(out);
    return id;
}

/* A new database name in the test's directory with the schema migrated,
 * open read-write; NULL, the reason on stderr, when it cannot be made (the
 * caller checks that). */
static inline sqlite3 *fx_db_create(const char *name)
{
    char path[FX_PATH_MAX];
    fx_path(path, sizeof path, name);
    sqlite3 *db = NULL;
    struct op_error err;
    if (db_open(path, DB_OPEN_CREATE, &db, &err) < 0) {
        fprintf(stderr, "  db_open %s: %s\n", path, err.msg);
        return NULL;
    }
    return db;
}

/* The first column of sql's first row as an integer: -1 without a row,
 * -2 when sql does not prepare. */
static inline int64_t fx_count(struct store *s, const char *sql)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The path of a region's profile in the source tree into out. */
static inline char *fx_profile_path(const char *region, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s.yaml", OUTPOST_SOURCE_REGIONS_DIR, region);
    if (n < 0 || (size_t)n >= cap)
        fx_die("profile path too long", NULL);
    return out;
}

/* Points OUTPOST_POLICY (what the node loads) at a region's profile. */
static inline void fx_policy_env(const char *region)
{
    char p[FX_PATH_MAX];
    setenv("OUTPOST_POLICY", fx_profile_path(region, p, sizeof p), 1);
}

/* A region's profile from the source tree, loaded; the caller frees it. */
static inline struct policy *fx_policy_load(const char *region)
{
    char p[FX_PATH_MAX];
    struct policy *pol = NULL;
    struct op_error err;
    if (policy_load_file(fx_profile_path(region, p, sizeof p), &pol, &err) < 0)
        fx_die("policy_load_file", &err);
    return pol;
}

/* Test credentials: node id, region and an HQ key whose byte i is
 * i * mul + add (different tests use different keys). */
static inline void fx_cred_init(struct node_credentials *c, const char *node_id, const char *region,
                                unsigned mul, unsigned add)
{
    memset(c, 0, sizeof *c);
    snprintf(c->node_id, sizeof c->node_id, "%s", node_id);
    snprintf(c->region, sizeof c->region, "%s", region);
    for (unsigned i = 0; i < sizeof c->hq_key; i++)
        c->hq_key[i] = (unsigned char)(i * mul + add);
}

/* Replaces *st with a fresh node database fx_dir/NAME.db for region, and
 * names its spool fx_dir/NAME-spool: db and spool get the paths (each
 * FX_PATH_MAX bytes). */
static inline void fx_node(const char *name, const char *region, char *db, char *spool,
                           struct store **st)
{
    char leaf[FX_PATH_MAX / 2];
    snprintf(leaf, sizeof leaf, "%s.db", name);
    fx_path(db, FX_PATH_MAX, leaf);
    snprintf(leaf, sizeof leaf, "%s-spool", name);
    fx_path(spool, FX_PATH_MAX, leaf);
    struct op_error err;
    store_close(*st);
    *st = NULL;
    if (store_open(db, DB_OPEN_CREATE, st, &err) < 0 || store_init_node(*st, region, &err) < 0)
        fx_die("store", &err);
}

#endif
