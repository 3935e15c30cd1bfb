/*
 * Connection setup and migrations; see db.h. The settings, and why:
 *   journal_mode=WAL      readers never block the writer and vice versa
 *   synchronous=FULL      a commit is on disk before it is acknowledged
 *                         (WAL with NORMAL may lose the last commits on
 *                         power loss, which would break promise 2)
 *   foreign_keys=ON       references between records are enforced
 *   busy_timeout=5000     the CLI and the daemon share the file
 *   secure_delete=FAST    erased values do not linger in freed pages
 */
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fold.h"
#include "migrations.h"

#define DB_BUSY_TIMEOUT_MS 5000

int db_fail(sqlite3 *db, int rc, const char *what, struct op_error *err)
{
    int code = db_errno(rc);
    return op_error_set(err, code ? code : -EIO, NULL, "%s: %s", what, sqlite3_errmsg(db));
}

int db_errno(int rc)
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
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
        return -EINVAL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_INTERRUPT:
        return -EINTR;
    default:
        return -EIO;
    }
}

int db_exec(sqlite3 *db, const char *sql, const char *what, struct op_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int code = db_errno(rc);
        op_error_set(err, code, NULL, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return code;
    }
    return 0;
}

int db_latest_version(void)
{
    return schema_migration_count;
}

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_errno(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return db_errno(rc);
}

int db_schema_version(sqlite3 *db, int *out)
{
    return pragma_int(db, "PRAGMA user_version", out);
}

static int apply_one(sqlite3 *db, const struct schema_migration *m, struct op_error *err)
{
    int rc = db_exec(db, "BEGIN IMMEDIATE", "cannot start migration", err);
    if (rc < 0)
        return rc;
    /* Another process may have migrated while we waited for the lock. */
    int version;
    rc = db_schema_version(db, &version);
    if (rc < 0 || version >= m->number) {
        (void)db_exec(db, "ROLLBACK", "rollback", NULL);
        return rc < 0 ? op_error_set(err, rc, NULL, "cannot read schema version") : 0;
    }
    char what[128];
    snprintf(what, sizeof what, "migration %04d_%s failed", m->number, m->name);
    rc = db_exec(db, m->sql, what, err);
    if (rc == 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", m->number);
        rc = db_exec(db, sql, what, err);
    }
    if (rc == 0)
        rc = db_exec(db, "COMMIT", what, err);
    if (rc < 0) {
        (void)db_exec(db, "ROLLBACK", "rollback", NULL);
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
        int code = db_errno(rc);
        op_error_set(err, code, NULL, "cannot open database %s: %s%s", path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                     rc == SQLITE_CANTOPEN && !(flags & DB_OPEN_CREATE)
                         ? " (does it exist? create one with 'outpost init')"
                         : "");
        sqlite3_close(db);
        return code;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);

    /* Reading the header tells us early whether this is a database at all. */
    int app_id = 0, version = 0;
    rc = pragma_int(db, "PRAGMA application_id", &app_id);
    if (rc == 0)
        rc = pragma_int(db, "PRAGMA user_version", &version);
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

    const char *settings = "PRAGMA foreign_keys = ON;"
                           "PRAGMA synchronous = FULL;"
                           "PRAGMA secure_delete = FAST;"
                           "PRAGMA temp_store = MEMORY;";
    rc = db_exec(db, settings, "cannot apply connection settings", err);
    if (rc < 0)
        goto fail;
    if (!(flags & DB_OPEN_READONLY) && !is_memory(path)) {
        rc = db_exec(db, "PRAGMA journal_mode = WAL", "cannot switch to WAL", err);
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
