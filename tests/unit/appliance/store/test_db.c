/* Tests for appliance/store/db.c: settings, migrations from every version,
 * refusal of newer and foreign databases. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"
#include "fixture.h"
#include "testlib.h"
#include "sql.h"
#include "store_queries.h"

static int query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int v = -999;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -998;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *query_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

/* A new database `name` in the test directory, created at the latest
 * version; its path in path (cap bytes). */
static sqlite3 *created(const char *name, char *path, size_t cap)
{
    sqlite3 *db = NULL;
    struct op_error err;
    fx_path(path, cap, name);
    if (db_open(path, DB_OPEN_CREATE, &db, &err) < 0)
        fx_die(name, &err);
    return db;
}

static void fresh_database_settings(void)
{
    char path[256];
    sqlite3 *db = created("fresh.db", path, sizeof path);
    CHECK_EQ(query_int(db, "PRAGMA user_version"), db_latest_version());
    CHECK_EQ(query_int(db, "PRAGMA application_id"), DB_APPLICATION_ID);
    CHECK_EQ(query_int(db, "PRAGMA foreign_keys"), 1);
    CHECK_EQ(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
    char *mode = query_text(db, "PRAGMA journal_mode");
    CHECK_STR(mode, "wal");
    free(mode);
    db_close(db);
}

static char *schema_of(sqlite3 *db)
{
    return query_text(db, "SELECT group_concat(type || ':' || name || ':' || "
                          "coalesce(sql, ''), char(10)) FROM "
                          "(SELECT * FROM sqlite_schema ORDER BY type, name)");
}

/* Every older version migrates to the same schema as a fresh database,
 * and data written at the old version survives (and becomes searchable). */
static void migrate_from_every_version(void)
{
    char path[256];
    sqlite3 *db = created("reference.db", path, sizeof path);
    struct op_error err;
    char *reference = schema_of(db);
    db_close(db);

    for (int v = 0; v < db_latest_version(); v++) {
        char name[32];
        snprintf(name, sizeof name, "from-v%d.db", v);
        fx_path(path, sizeof path, name);
        CHECK_EQ(db_open(path, DB_OPEN_CREATE | DB_OPEN_NO_MIGRATE, &db, &err), 0);
        CHECK_EQ(db_migrate(db, v, &err), v);
        CHECK_EQ(query_int(db, "PRAGMA user_version"), v);
        if (v >= 1) {
            CHECK_EQ(sqlite3_exec(db,
                                  "INSERT INTO contacts (id, version, created_hlc, updated_hlc, "
                                  "given_name, family_name, locality) VALUES "
                                  "('0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b', 1, 1, 1, 'José', "
                                  "'Müller', 'Łódź')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
        }
        db_close(db);

        CHECK_EQ(db_open(path, 0, &db, &err), 0);
        CHECK_EQ(query_int(db, "PRAGMA user_version"), db_latest_version());
        char *schema = schema_of(db);
        CHECK_STR(schema, reference);
        free(schema);
        if (v >= 1)
            CHECK_EQ(query_int(db, "SELECT count(*) FROM contacts_fts WHERE contacts_fts "
                                   "MATCH 'lodz'"),
                     1);
        CHECK_EQ(db_migrate(db, -1, &err), 0); /* nothing left to do */
        db_close(db);
    }
    free(reference);
}

/* Migration 0024: auto-replies recorded before as 'delivered' become
 * 'auto_replied', other events keep their kind, outcomes stay, and the
 * event ids go on from where they were (none is handed out twice). */
static void migrates_auto_replies(void)
{
    char path[256];
    sqlite3 *db;
    struct op_error err;
    fx_path(path, sizeof path, "auto-replied.db");
    CHECK_EQ(db_open(path, DB_OPEN_CREATE | DB_OPEN_NO_MIGRATE, &db, &err), 0);
    CHECK_EQ(db_migrate(db, 23, &err), 23);
    CHECK_EQ(sqlite3_exec(db,
                          "INSERT INTO outreach_messages (id, contact_id, channel, purpose, "
                          "next_try_ms, created_ms, outcome) VALUES "
                          "(1, 'c1', 'email', 'offers', 0, 0, 'delivered');"
                          "INSERT INTO outreach_events (message_id, kind, at_ms, detail) VALUES "
                          "(1, 'delivered', 1, 'auto-reply Message-ID <a@example.org>'),"
                          "(1, 'delivered', 2, '2.0.0 delivered'),"
                          "(1, 'replied', 3, 'reply Message-ID <b@example.org>'),"
                          "(1, 'delivered', 4, 'gone');"
                          "DELETE FROM outreach_events WHERE detail = 'gone';",
                          NULL, NULL, NULL),
             SQLITE_OK);
    /* before 0024 the kind does not exist */
    CHECK(sqlite3_exec(db,
                       "INSERT INTO outreach_events (message_id, kind, at_ms) VALUES "
                       "(1, 'auto_replied', 5)",
                       NULL, NULL, NULL) != SQLITE_OK);
    db_close(db);
    CHECK_EQ(db_open(path, 0, &db, &err), 0);
    CHECK_EQ(query_int(db, "SELECT count(*) FROM outreach_events WHERE kind = 'auto_replied' "
                           "AND detail = 'auto-reply Message-ID <a@example.org>'"),
             1);
    CHECK_EQ(query_int(db, "SELECT count(*) FROM outreach_events WHERE kind = 'delivered' AND "
                           "detail = '2.0.0 delivered'"),
             1);
    CHECK_EQ(query_int(db, "SELECT count(*) FROM outreach_events WHERE kind = 'replied'"), 1);
    CHECK_EQ(query_int(db, "SELECT count(*) FROM outreach_events"), 3);
    CHECK_EQ(query_int(db, "SELECT count(*) FROM outreach_messages WHERE outcome = 'delivered'"),
             1);
    CHECK_EQ(sqlite3_exec(db,
                          "INSERT INTO outreach_events (message_id, kind, at_ms) VALUES "
                          "(1, 'auto_replied', 5)",
                          NULL, NULL, NULL),
             SQLITE_OK);
    CHECK_EQ(query_int(db, "SELECT max(id) FROM outreach_events"), 5); /* 4 was deleted */
    CHECK(sqlite3_exec(db,
                       "INSERT INTO outreach_events (message_id, kind, at_ms) VALUES "
                       "(1, 'autoreplied', 6)",
                       NULL, NULL, NULL) != SQLITE_OK);
    db_close(db);
}

static void refuses_newer(void)
{
    char path[256];
    sqlite3 *db = created("newer.db", path, sizeof path);
    struct op_error err;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", db_latest_version() + 1);
    CHECK_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    db_close(db);
    op_error_clear(&err);
    CHECK_EQ(db_open(path, 0, &db, &err), DB_ENEWER);
    CHECK_CONTAINS(err.msg, "newer than this build");
    CHECK_CONTAINS(err.msg, path);
    CHECK_EQ(db_open(path, DB_OPEN_READONLY, &db, &err), DB_ENEWER);
}

static void refuses_foreign_and_garbage(void)
{
    char path[256];
    sqlite3 *raw;
    sqlite3 *db = NULL;
    struct op_error err;
    fx_path(path, sizeof path, "foreign.db");
    CHECK_EQ(sqlite3_open(path, &raw), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(raw, "CREATE TABLE x (a); PRAGMA user_version = 3", NULL, NULL, NULL),
             SQLITE_OK);
    sqlite3_close(raw);
    CHECK_EQ(db_open(path, 0, &db, &err), DB_EFOREIGN);
    CHECK_CONTAINS(err.msg, "not an Outpost one");

    fx_path(path, sizeof path, "garbage.db");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database at all. ", f);
    fclose(f);
    op_error_clear(&err);
    int rc = db_open(path, 0, &db, &err);
    CHECK(rc < 0);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "not a database");

    fx_path(path, sizeof path, "missing.db");
    op_error_clear(&err);
    CHECK_EQ(db_open(path, 0, &db, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "outpost init");
    CHECK(access(path, F_OK) != 0);
}

/* Every named query of the store room prepares against the latest schema,
 * so a query that no longer fits it fails here, naming itself, and not
 * on first use in the field. */
static void every_query_prepares(void)
{
    char path[300];
    sqlite3 *db = created("queries.db", path, sizeof path);
    struct op_error err;
    struct sql_cache c;
    CHECK_EQ(sql_cache_init(&c, db, &store_queries, &err), 0);
    op_error_clear(&err);
    /* the import's staging queries name the temp table made on first use */
    CHECK(sql_exec(&c, STORE_Q_STORE_STAGE_TABLE, &err) >= 0);
    int rc = sql_cache_prepare_all(&c, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    sql_cache_close(&c);
    db_close(db);
}

static void maps_errors(void)
{
    CHECK_EQ(sql_errno(SQLITE_FULL), -ENOSPC);
    CHECK_EQ(sql_errno(SQLITE_BUSY), -EBUSY);
    CHECK_EQ(sql_errno(SQLITE_READONLY_DBMOVED), -EROFS);
    CHECK_EQ(sql_errno(SQLITE_CONSTRAINT_FOREIGNKEY), -EINVAL);
    CHECK_EQ(sql_errno(SQLITE_OK), 0);
}

int main(void)
{
    fx_tmpdir("db");
    RUN(fresh_database_settings);
    RUN(migrate_from_every_version);
    RUN(migrates_auto_replies);
    RUN(refuses_newer);
    RUN(refuses_foreign_and_garbage);
    RUN(maps_errors);
    RUN(every_query_prepares);
    return fx_finish();
}
