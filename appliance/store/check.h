/*
 * Checking an Outpost database without changing it: `outpost check`. Runs
 * SQLite's integrity check, the foreign-key check and the FTS5
 * integrity check of every full-text index (index against its content
 * table), and verifies the schema version (newer than this build is a
 * problem; older is not: outpostd migrates it) and the application id. The
 * invariant: nothing is written to the database being checked (the FTS5
 * check, which SQLite only runs inside a write transaction, is run on a
 * private snapshot copy), so it is safe on a live node and on a backup.
 */
#ifndef OUTPOST_CHECK_H
#define OUTPOST_CHECK_H

#include <sqlite3.h>

#include "op_error.h"

/* At most this many problems are reported per check; the rest are counted
 * and summed up in one more line. */
#define CHECK_REPORT_MAX 100

/* Receives one problem as one line of text (no newline), e.g.
 *   "foreign key: contacts rowid 7: owner_id refers to a missing users row"
 * The line is only valid during the call. */
typedef void (*check_report_fn)(void *ctx, const char *line);

struct check_result {
    int problems;       /* problems found, including those not reported */
    int schema_version; /* PRAGMA user_version of the database */
};

/* Checks `db`, best opened with db_open(path, DB_OPEN_READONLY |
 * DB_OPEN_NO_MIGRATE) (the search-index check needs the tokenizer that
 * db_open registers). Calls report (may be NULL) for each problem. Returns
 * the number of problems (0: clean) and fills *out (if not NULL), or a
 * negative code when the checks could not be run at all:
 *   DB_EFOREIGN  the file is not an Outpost database (wrong application_id)
 *   -EBADMSG     the file is not an SQLite database at all
 *   other negative errnos (-ENOMEM, -EIO, -EBUSY)
 * err says why. A database so damaged that a check stops with SQLite's
 * "malformed" error counts as a problem, not as a failure to check. */
int check_run(sqlite3 *db, check_report_fn report, void *ctx, struct check_result *out,
              struct op_error *err);

/* Builds the search indexes of contacts and organizations again from
 * their tables, in one IMMEDIATE transaction: all of it or none. `db` is
 * a writable connection from db_open. Returns 0 or a negative errno, err
 * saying why. */
int check_rebuild_search(sqlite3 *db, struct op_error *err);

#endif
