/*
 * Tests for appliance/api/api_idempotency.c, driven through api_serve:
 * a create sent twice with one Idempotency-Key makes one record and the
 * replay answers it (201, Idempotency-Replayed); the key with another body
 * or collection is 422 and creates nothing; keys are per user; malformed
 * keys are 400 before anything is written; a refused create leaves no key
 * behind; and the room's queries prepare against a migrated database.
 */
#include "api_idempotency.h"

#include <sqlite3.h>

#include "api_fixture.h"
#include "api_queries.h"
#include "db.h"

/* POST path as u with body and Idempotency-Key key (NULL: none). */
static int post_key(const char *path, const struct fx_user *u, const char *body, const char *key)
{
    char authz[128];
    snprintf(authz, sizeof authz, "Bearer %s", u->token);
    struct api_request_view v = {
        .method = "POST",
        .path = path,
        .remote = "192.0.2.7:40000",
        .query = "",
        .body = body,
        .body_len = strlen(body),
        .authorization = authz,
        .content_type = "application/json",
        .idempotency_key = key,
    };
    return fx_serve(&v);
}

/* Rows of a table, read straight from the database file. */
static long long rows(const char *sql)
{
    sqlite3 *db = NULL;
    long long n = -1;
    if (sqlite3_open_v2(fx_db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static long long contacts(void)
{
    return rows("SELECT count(*) FROM contacts");
}

static void replay_makes_one(void)
{
    const char *body = "{\"given_name\":\"Amani\",\"family_name\":\"Njoroge\"}";
    long long before = contacts();
    CHECK_EQ(post_key("/api/v1/contacts", &ANA, body, "k-0001-replay"), 201);
    char id[AUTH_ID_LEN];
    snprintf(id, sizeof id, "%s", jstr("id") ? jstr("id") : "");
    CHECK(hdr("Idempotency-Replayed") == NULL);
    CHECK_EQ(contacts(), before + 1);
    /* the answer was lost; the device sends the same capture again */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(post_key("/api/v1/contacts", &ANA, body, "k-0001-replay"), 201);
        CHECK_STR(jstr("id"), id);
        CHECK_STR(hdr("Idempotency-Replayed"), "true");
        CHECK_STR(hdr("ETag"), "\"1\"");
        char loc[160];
        snprintf(loc, sizeof loc, "/api/v1/contacts/%s", id);
        CHECK_STR(hdr("Location"), loc);
    }
    CHECK_EQ(contacts(), before + 1);
    /* a replay answers the record as it is now */
    char path[160];
    snprintf(path, sizeof path, "/api/v1/contacts/%s", id);
    CHECK_EQ(call("PATCH", path, &ANA, "{\"locality\":\"Nakuru\"}", "\"1\""), 200);
    CHECK_EQ(post_key("/api/v1/contacts", &ANA, body, "k-0001-replay"), 201);
    CHECK_STR(jstr("locality"), "Nakuru");
    CHECK_STR(hdr("ETag"), "\"2\"");
    CHECK_EQ(contacts(), before + 1);
}

static void other_request_same_key(void)
{
    CHECK_EQ(post_key("/api/v1/notes", &ANA, "{\"body\":\"first\"}", "k-0002-mismatch"), 201);
    long long notes = rows("SELECT count(*) FROM notes");
    CHECK_EQ(post_key("/api/v1/notes", &ANA, "{\"body\":\"second\"}", "k-0002-mismatch"), 422);
    CHECK_PROBLEM(422);
    CHECK_CONTAINS(jstr("detail"), "Idempotency-Key: this key was already used for a different");
    CHECK_EQ(post_key("/api/v1/contacts", &ANA, "{\"body\":\"first\"}", "k-0002-mismatch"), 422);
    CHECK_EQ(rows("SELECT count(*) FROM notes"), notes);
}

static void per_user(void)
{
    const char *body = "{\"body\":\"same words\"}";
    CHECK_EQ(post_key("/api/v1/notes", &ANA, body, "k-0003-shared"), 201);
    char first[AUTH_ID_LEN];
    snprintf(first, sizeof first, "%s", jstr("id") ? jstr("id") : "");
    CHECK_EQ(post_key("/api/v1/notes", &BEN, body, "k-0003-shared"), 201);
    CHECK(hdr("Idempotency-Replayed") == NULL);
    CHECK(jstr("id") && strcmp(jstr("id"), first) != 0);
}

static void malformed_keys(void)
{
    char longkey[200];
    memset(longkey, 'a', 129);
    longkey[129] = '\0';
    const char *bad[] = {"",      "short",         "has space in it", "semi;colon-key",
                         longkey, "ключ-ключ-ключ"};
    long long before = contacts();
    long long keys = rows("SELECT count(*) FROM idempotency_keys");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(post_key("/api/v1/contacts", &ANA, "{\"given_name\":\"Bad\"}", bad[i]), 400);
        CHECK_PROBLEM(400);
        CHECK_CONTAINS(jstr("detail"), "Idempotency-Key: expected 8 to 128 characters");
    }
    memset(longkey, 'b', 128);
    longkey[128] = '\0';
    CHECK_EQ(post_key("/api/v1/notes", &ANA, "{\"body\":\"long key\"}", longkey), 201);
    CHECK_EQ(contacts(), before);
    CHECK_EQ(rows("SELECT count(*) FROM idempotency_keys"), keys + 1);
}

static void refused_leaves_no_key(void)
{
    long long keys = rows("SELECT count(*) FROM idempotency_keys");
    /* birth_date is forbidden by the fixture's policy */
    CHECK_EQ(post_key("/api/v1/contacts", &ANA,
                      "{\"given_name\":\"Ola\",\"birth_date\":\"1990-01-01\"}", "k-0004-refused"),
             422);
    CHECK_STR(pointer(), "/birth_date");
    CHECK_EQ(rows("SELECT count(*) FROM idempotency_keys"), keys);
    /* the corrected capture goes through under the same key */
    CHECK_EQ(post_key("/api/v1/contacts", &ANA, "{\"given_name\":\"Ola\"}", "k-0004-refused"), 201);
    CHECK(hdr("Idempotency-Replayed") == NULL);
    CHECK_EQ(rows("SELECT count(*) FROM idempotency_keys"), keys + 1);
}

/* Runs one statement on the database file (the test ages rows). */
static void exec_sql(const char *sql)
{
    sqlite3 *db = NULL;
    CHECK_EQ(sqlite3_open(fx_db, &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void old_keys_pruned(void)
{
    CHECK_EQ(post_key("/api/v1/notes", &ANA, "{\"body\":\"aged\"}", "k-0005-aged-key"), 201);
    CHECK_EQ(rows("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'k-0005-aged-key'"), 1);
    /* eight days old: the next keyed create prunes it */
    exec_sql("UPDATE idempotency_keys SET created_ms = created_ms - 8 * 86400000 "
             "WHERE idem_key = 'k-0005-aged-key'");
    CHECK_EQ(post_key("/api/v1/notes", &ANA, "{\"body\":\"fresh\"}", "k-0006-fresh-key"), 201);
    CHECK_EQ(rows("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'k-0005-aged-key'"), 0);
    CHECK_EQ(rows("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'k-0006-fresh-key'"), 1);
    /* a younger key stays */
    CHECK(rows("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'k-0001-replay'") == 1);
}

static void queries_prepare(void)
{
    sqlite3 *db = NULL;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(db_open(fx_db, DB_OPEN_NO_MIGRATE, &db, &err), 0);
    struct sql_cache c;
    CHECK_EQ(sql_cache_init(&c, db, &api_queries, &err), 0);
    int rc = sql_cache_prepare_all(&c, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    sql_cache_close(&c);
    db_close(db);
}

int main(void)
{
    fx_open();
    RUN(replay_makes_one);
    RUN(other_request_same_key);
    RUN(per_user);
    RUN(malformed_keys);
    RUN(refused_leaves_no_key);
    RUN(old_keys_pruned);
    RUN(queries_prepare);
    fx_close();
    return tl_report();
}
