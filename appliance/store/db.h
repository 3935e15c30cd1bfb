/*
 * Opening an Outpost database: the one place where connection settings are
 * chosen (WAL, foreign keys, busy timeout, synchronous=FULL, the outpost_fold
 * tokenizer) and where the embedded migrations are applied. The invariant:
 * a connection returned by db_open has the settings applied and a schema
 * this build understands; a database written by a newer build is refused.
 */
#ifndef OUTPOST_DB_H
#define OUTPOST_DB_H

#include <sqlite3.h>

#include "op_error.h"

/* Stored in PRAGMA application_id so that a foreign SQLite file is refused. */
#define DB_APPLICATION_ID 0x4f555450 /* "OUTP" */
/* How long a connection waits for another's write lock before SQLITE_BUSY,
 * unless the process chose otherwise (db_set_busy_timeout_default: the
 * CLI waits longer) or the store's owner did (store_set_busy_timeout). */
#define DB_BUSY_TIMEOUT_MS 5000

/* The wait of every connection this process opens from now on (db_open,
 * and so store_open), in ms; a program sets it once at its start, before
 * it opens any. The CLI sets OUTPOST_LOCK_WAIT's, so that each of its
 * paths to the database (the store, the sync ledger's, check, backup)
 * waits alike. */
void db_set_busy_timeout_default(unsigned ms);
unsigned db_busy_timeout_default(void);

/* Returned when the database's schema is newer than this build knows. */
#define DB_ENEWER (-2001)
/* Returned when the file is SQLite but not an Outpost database. */
#define DB_EFOREIGN (-2002)

enum db_open_flags {
    DB_OPEN_CREATE = 1 << 0,     /* create the file if missing */
    DB_OPEN_READONLY = 1 << 1,   /* read-only connection; no migration */
    DB_OPEN_NO_MIGRATE = 1 << 2, /* leave the schema as it is (tests, `outpost check`) */
};

/* Opens `path` (":memory:" works), applies the connection settings and,
 * unless told not to, migrates to the latest schema. On success *out owns
 * the connection (close with db_close). On failure returns a negative errno
 * or DB_ENEWER/DB_EFOREIGN, and err says why, naming the path. */
int db_open(const char *path, unsigned flags, sqlite3 **out, struct op_error *err);

/* Closes a connection from db_open; NULL is allowed. */
void db_close(sqlite3 *db);

/* The number of migrations this build embeds (the latest user_version). */
int db_latest_version(void);

/* Reads PRAGMA user_version. */
int db_schema_version(sqlite3 *db, int *out);

/* Applies migrations until user_version == target (-1: the latest), each in
 * its own IMMEDIATE transaction. Returns the number applied, DB_ENEWER when
 * the database is ahead of `target`'s build, or a negative errno. */
int db_migrate(sqlite3 *db, int target, struct op_error *err);

/* Reads PRAGMA application_id: DB_APPLICATION_ID for an Outpost
 * database, 0 for an empty SQLite file. */
int db_application_id(sqlite3 *db, int *out);

#endif
