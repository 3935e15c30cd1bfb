/*
 * Connection setup and migrations; see db.h. The settings, and why:
 *   journal_mode=WAL      readers never block the writer and vice versa
 *   synchronous=FULL      a commit is on disk before it is acknowledged
 *                         (WAL with NORMAL may lose the last commits on
 *                         power loss, which would break promise 2)
 *   foreign_keys=ON       references between records are enforced
 *   busy_timeout=5000     the CLI and the daemon share the file (the CLI
 *                         waits longer: db_set_busy_timeout_default)
 *   secure_delete=FAST    erased values do not linger in freed pages
 */
#include "db.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fold.h"
#include "migrations.h"
#include "sql.h"
#include "store_queries.h"

static unsigned busy_default_ms = DB_BUSY_TIMEOUT_MS;

void db_set_busy_timeout_default(unsigned ms)
{
    busy_default_ms = ms;
}

unsigned db_busy_timeout_default(void)
{
    return busy_default_ms;
}

int db_latest_version(void)
{
    return schema_migration_count;
}

/* One named query on a connection, with a cache that lives for the call
 * (db_open and the migrations run once a connection). */
static int run_once(sqlite3 *db, unsigned id, int *out, struct op_error *err)
{
    struct sql_cache c;
    int rc = sql_cache_init(&c, db, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&c, id, err);
    if (!st) {
        rc = err && err->code ? err->code : -EIO;
    } else if (out) {
        rc = sql_step(&c, id, st, err);
        if (rc == 1)
            *out = sqlite3_column_int(st, 0);
        rc = rc < 0 ? rc : 0;
    } else {
        rc = sql_run(&c, id, st, err);
        rc = rc < 0 ? rc : 0;
    }
    sql_cache_close(&c);
    return rc;
}

int db_application_id(sqlite3 *db, int *out)
{
    *out = 0;
    return run_once(db, STORE_Q_DB_APPLICATION_ID, out, NULL);
}

int db_schema_version(sqlite3 *db, int *out)
{
    *out = 0;
    return run_once(db, STORE_Q_DB_USER_VERSION, out, NULL);
}

static int apply_one(sqlite3 *db, const struct schema_migration *m, struct op_error *err)
{
    int rc = run_once(db, STORE_Q_DB_BEGIN_IMMEDIATE, NULL, err);
    if (rc < 0)
        return rc;
    /* Another process may have migrated while we waited for the lock. */
    int version;
    rc = db_schema_version(db, &version);
    if (rc < 0 || version >= m->number) {
        (void)run_once(db, STORE_Q_DB_ROLLBACK, NULL, NULL);
        return rc < 0 ? op_error_set(err, rc, NULL, "cannot read schema version") : 0;
    }
    char what[128];
    snprintf(what, sizeof what, "migration %04d_%s failed", m->number, m->name);
    /* the migration's text sets user_version itself (schema/embed_sql.py) */
    rc = sql_script(db, m->sql, what, err);
    if (rc == 0)
        rc = run_once(db, STORE_Q_DB_COMMIT, NULL, err);
    if (rc < 0) {
        (void)run_once(db, STORE_Q_DB_ROLLBACK, NULL, NULL);
        return rc;
    }
    return 1;
}

int db_migrate(sqlite3 *db, int target, struct op_error *err)
{
    if (target < 0 || target > schema_migration_count)
        target = schema_migration_count;
    int version;
    int rc = db_schema_version(db, &version);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot read schema version: %s", sqlite3_errmsg(db));
    if (version > schema_migration_count)
        return op_error_set(err, DB_ENEWER, NULL,
                            "database schema version %d is newer than this build of Outpost "
                            "supports (%d); install a newer Outpost",
                            version, schema_migration_count);
    int applied = 0;
    for (int i = version; i < target; i++) {
        rc = apply_one(db, &schema_migrations[i], err);
        if (rc < 0)
            return rc;
        applied += rc;
    }
    return applied;
}

static int is_memory(const char *path)
{
    return !strcmp(path, ":memory:") || !strncmp(path, "file::memory:", 13);
}

int db_open(const char *path, unsigned flags, sqlite3 **out, struct op_error *err)
{
    sqlite3 *db = NULL;
    int oflags = SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (flags & DB_OPEN_READONLY)
        oflags |= SQLITE_OPEN_READONLY;
    else
        oflags |= SQLITE_OPEN_READWRITE | ((flags & DB_OPEN_CREATE) ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db, oflags, NULL);
    if (rc != SQLITE_OK) {
        int code = sql_errno(rc);
        op_error_set(err, code, NULL, "cannot open database %s: %s%s", path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                     rc == SQLITE_CANTOPEN && !(flags & DB_OPEN_CREATE)
                         ? " (does it exist? create one with 'outpost init')"
                         : "");
        sqlite3_close(db);
        return code;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_default_ms > INT_MAX ? INT_MAX : (int)busy_default_ms);

    /* Reading the header tells us early whether this is a database at all. */
    int app_id = 0, version = 0;
    rc = run_once(db, STORE_Q_DB_APPLICATION_ID, &app_id, NULL);
    if (rc == 0)
        rc = run_once(db, STORE_Q_DB_USER_VERSION, &version, NULL);
    if (rc < 0) {
        op_error_set(err, rc, NULL, "cannot open database %s: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (app_id != DB_APPLICATION_ID && (app_id != 0 || version != 0)) {
        rc = op_error_set(err, DB_EFOREIGN, NULL, "%s is an SQLite database but not an Outpost one",
                          path);
        goto fail;
    }
    if (version > schema_migration_count) {
        rc = op_error_set(err, DB_ENEWER, NULL,
                          "database %s has schema version %d, newer than this build of "
                          "Outpost supports (%d); install a newer Outpost",
                          path, version, schema_migration_count);
        goto fail;
    }

    static const unsigned settings[] = {STORE_Q_DB_FOREIGN_KEYS_ON, STORE_Q_DB_SYNCHRONOUS_FULL,
                                        STORE_Q_DB_SECURE_DELETE_FAST,
                                        STORE_Q_DB_TEMP_STORE_MEMORY};
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        rc = run_once(db, settings[i], NULL, err);
        if (rc < 0)
            goto fail;
    }
    if (!(flags & DB_OPEN_READONLY) && !is_memory(path)) {
        int wal_mode = 0;
        rc = run_once(db, STORE_Q_DB_JOURNAL_WAL, &wal_mode, err);
        if (rc < 0)
            goto fail;
    }
    rc = fold_register(db);
    if (rc < 0) {
        op_error_set(err, rc, NULL, "cannot register the search tokenizer (SQLite needs FTS5)");
        goto fail;
    }
    if (!(flags & (DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE))) {
        rc = db_migrate(db, -1, err);
        if (rc < 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            op_error_set(err, rc, NULL, "cannot migrate database %s: %s", path, why);
            goto fail;
        }
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return rc;
}

void db_close(sqlite3 *db)
{
    if (db)
        sqlite3_close_v2(db);
}
