/*
 * The one way into an SQLite database, for the node and HQ alike
 * (docs/ARCHITECTURE.md, "One way into each database").
 *
 * SQL text lives in .sql files, one set per room (appliance/store/sql/,
 * appliance/uplink/sql/, sync/hq/sql/, ...), embedded at build time by
 * embed_queries.py into a `struct sql_queries` and an enum of names:
 *
 *     -- name: contact_get              (in appliance/store/sql/store.sql)
 *     SELECT body FROM contacts WHERE id = ?1;
 *
 * becomes STORE_Q_STORE_CONTACT_GET in store_queries.h. Code asks a
 * `struct sql_cache` for a statement by that name; it is prepared once per
 * connection (SQLITE_PREPARE_PERSISTENT) and handed out reset, with its
 * bindings cleared. Nothing else prepares SQL: there is no way to run text
 * built at run time (the layout lint refuses sqlite3_prepare and
 * sqlite3_exec outside this module).
 *
 * Errors: every function returns 0 (or a row count, where it says) or a
 * negative errno from sql_errno, with err naming the query as
 * "<set>.<name>: <SQLite's message>".
 */
#ifndef OUTPOST_SQL_H
#define OUTPOST_SQL_H

#include <sqlite3.h>
#include <stdint.h>

#include "op_error.h"

/* One room's named queries, generated from its .sql files. */
struct sql_queries {
    const char *set; /* the room's name: "store", "uplink", "hq" */
    unsigned count;
    const char *const *names; /* "<file>_<name>", e.g. "store_contact_get" */
    const char *const *text;
};

/* A set's statements prepared on one connection. */
struct sql_cache {
    sqlite3 *db;
    const struct sql_queries *q;
    sqlite3_stmt **stmt; /* q->count of them; NULL until first used */
};

/* Maps an SQLite result code to a negative errno: SQLITE_FULL -> -ENOSPC,
 * SQLITE_BUSY/LOCKED -> -EBUSY, SQLITE_READONLY -> -EROFS, SQLITE_CANTOPEN
 * -> -ENOENT, SQLITE_PERM/AUTH -> -EACCES, SQLITE_CONSTRAINT/MISMATCH/
 * RANGE/TOOBIG -> -EINVAL, SQLITE_CORRUPT/NOTADB -> -EBADMSG,
 * SQLITE_INTERRUPT -> -EINTR, SQLITE_NOMEM -> -ENOMEM, anything else
 * -> -EIO; SQLITE_OK/ROW/DONE -> 0. */
int sql_errno(int sqlite_rc);

/* Fills err with "<what>: <SQLite's message for db>" and returns
 * sql_errno(rc), or -EIO if rc is not an error code. */
int sql_fail(sqlite3 *db, int rc, const char *what, struct op_error *err);

/* Binds a set to a connection; nothing is prepared yet. -ENOMEM. */
int sql_cache_init(struct sql_cache *c, sqlite3 *db, const struct sql_queries *q,
                   struct op_error *err);

/* Finalizes every prepared statement; the connection stays open. A
 * zeroed or already closed cache is allowed. */
void sql_cache_close(struct sql_cache *c);

/* Prepares every statement of the set now: a query that no longer fits
 * the schema fails here, naming itself, rather than on first use. */
int sql_cache_prepare_all(struct sql_cache *c, struct op_error *err);

/* The statement named `id`, reset with its bindings cleared, or NULL with
 * err set (the query's name and SQLite's message). */
sqlite3_stmt *sql_get(struct sql_cache *c, unsigned id, struct op_error *err);

/* sql_get returning an errno: 0 with *out set, or a negative errno with
 * err filled (also when err is NULL, the code comes back). */
int sql_get_st(struct sql_cache *c, unsigned id, sqlite3_stmt **out, struct op_error *err);

/* The name of query `id` ("store.store_contact_get"), for messages. */
const char *sql_name(const struct sql_cache *c, unsigned id, char *buf, size_t len);

/* Steps `st` (from sql_get(c, id)) to its end, ignoring rows, then resets
 * it. Returns the number of rows changed, or a negative errno. */
int sql_run(struct sql_cache *c, unsigned id, sqlite3_stmt *st, struct op_error *err);

/* sql_get + sql_run for a statement without parameters. */
int sql_exec(struct sql_cache *c, unsigned id, struct op_error *err);

/* Steps `st` (from sql_get(c, id)) to SQLITE_ROW. Returns 1 with a row to
 * read, 0 at the end (the statement is then reset), or a negative errno. */
int sql_step(struct sql_cache *c, unsigned id, sqlite3_stmt *st, struct op_error *err);

/* For a query that always returns one row (a count, the one state row):
 * steps `st` (from sql_get(c, id)) to it and reads its first n columns
 * (n <= 8) as integers into out[0..n-1], then resets the statement.
 * Returns 0, a negative errno from the step, or -EIO with err reading
 * "<what>: no row" when the query returned none; out is written only on
 * success. */
int sql_one_int64(struct sql_cache *c, unsigned id, sqlite3_stmt *st, const char *what,
                  int64_t *out, unsigned n, struct op_error *err);

/* sql_run and sql_step for callers whose message says what the step was
 * for: err reads "<what>: <SQLite's message>" instead of naming the query.
 * sql_run_what returns 0 (not a count) or a negative errno; sql_step_what
 * returns as sql_step does. Both reset `st` as their twins do. */
int sql_run_what(struct sql_cache *c, sqlite3_stmt *st, const char *what, struct op_error *err);
int sql_step_what(struct sql_cache *c, sqlite3_stmt *st, const char *what, struct op_error *err);

/* The row loop: calls row(st, ctx) for each row of `st` (from
 * sql_get(c, id)). row returns 0 to go on, > 0 to stop early (sql_each
 * then returns that value) or a negative errno to fail (returned as is;
 * row fills err). The statement is reset at the end. */
typedef int (*sql_row_fn)(sqlite3_stmt *st, void *ctx, struct op_error *err);
int sql_each(struct sql_cache *c, unsigned id, sqlite3_stmt *st, sql_row_fn row, void *ctx,
             struct op_error *err);

/* Runs a script of several statements embedded at build time (the schema's
 * migrations), naming `what` in errors. Not for run-time text. */
int sql_script(sqlite3 *db, const char *sql, const char *what, struct op_error *err);

#endif
