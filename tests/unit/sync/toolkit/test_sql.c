/*
 * The one way into SQLite (sync/toolkit/sql.h): named statements prepared
 * once and handed out clean, errors that name the query, the row loop,
 * and one errno for each kind of SQLite failure.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>

#include "sql.h"
#include "testlib.h"

enum { Q_CREATE, Q_PUT, Q_COUNT_ROWS, Q_LIST, Q_GET, Q_BROKEN, Q_N };
static const char *const names[] = {"t_create", "t_put", "t_count", "t_list", "t_get", "t_broken"};
static const char *const text[] = {
    "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)",
    "INSERT INTO t (k, v) VALUES (?1, ?2)",
    "SELECT count(*) FROM t",
    "SELECT k, v FROM t ORDER BY k",
    "SELECT k, length(v) FROM t WHERE k = ?1",
    "SELECT x FROM nowhere",
};
static const struct sql_queries test_queries = {"test", Q_N, names, text};

static void test_errno_map(void)
{
    CHECK_EQ(sql_errno(SQLITE_OK), 0);
    CHECK_EQ(sql_errno(SQLITE_DONE), 0);
    CHECK_EQ(sql_errno(SQLITE_FULL), -ENOSPC);
    CHECK_EQ(sql_errno(SQLITE_BUSY), -EBUSY);
    CHECK_EQ(sql_errno(SQLITE_LOCKED), -EBUSY);
    CHECK_EQ(sql_errno(SQLITE_READONLY), -EROFS);
    CHECK_EQ(sql_errno(SQLITE_CONSTRAINT_UNIQUE), -EINVAL); /* extended codes too */
    CHECK_EQ(sql_errno(SQLITE_NOTADB), -EBADMSG);
    CHECK_EQ(sql_errno(SQLITE_IOERR_FSYNC), -EIO);
}

static int collect(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    char *buf = ctx;
    size_t n = strlen(buf);
    snprintf(buf + n, 64 - n, "%d=%s;", sqlite3_column_int(st, 0),
             (const char *)sqlite3_column_text(st, 1));
    return sqlite3_column_int(st, 0) == 2 ? 7 : 0; /* stop early after k=2 */
}

static void test_named_queries(void)
{
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    struct sql_cache c;
    struct op_error err = {0};
    CHECK_EQ(sql_cache_init(&c, db, &test_queries, &err), 0);
    CHECK_EQ(sql_exec(&c, Q_CREATE, &err), 0);

    for (int k = 1; k <= 3; k++) {
        sqlite3_stmt *st = sql_get(&c, Q_PUT, &err);
        CHECK(st != NULL);
        /* the same statement every time: prepared once */
        if (k > 1)
            CHECK(st == sql_get(&c, Q_PUT, &err));
        sqlite3_bind_int(st, 1, k);
        sqlite3_bind_text(st, 2, k == 1 ? "a" : k == 2 ? "b" : "c", -1, SQLITE_STATIC);
        CHECK_EQ(sql_run(&c, Q_PUT, st, &err), 1);
    }

    /* handed out with bindings cleared: v NULL breaks NOT NULL, and the
     * error names the query */
    sqlite3_stmt *st = sql_get(&c, Q_PUT, &err);
    sqlite3_bind_int(st, 1, 9);
    CHECK_EQ(sql_run(&c, Q_PUT, st, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "test.t_put: ");
    CHECK_CONTAINS(err.msg, "NOT NULL");

    st = sql_get(&c, Q_COUNT_ROWS, &err);
    CHECK_EQ(sql_step(&c, Q_COUNT_ROWS, st, &err), 1);
    CHECK_EQ(sqlite3_column_int(st, 0), 3);

    /* the one-row reader: both columns, the statement reset after; no row
     * is an error naming what was read, and leaves out alone */
    int64_t two[2] = {-1, -1};
    st = sql_get(&c, Q_GET, &err);
    sqlite3_bind_int(st, 1, 2);
    CHECK_EQ(sql_one_int64(&c, Q_GET, st, "cannot read t", two, 2, &err), 0);
    CHECK_EQ(two[0], 2);
    CHECK_EQ(two[1], 1);
    CHECK(!sqlite3_stmt_busy(st));
    st = sql_get(&c, Q_GET, &err);
    sqlite3_bind_int(st, 1, 42);
    CHECK_EQ(sql_one_int64(&c, Q_GET, st, "cannot read t", two, 2, &err), -EIO);
    CHECK_STR(err.msg, "cannot read t: no row");
    CHECK_EQ(two[0], 2);
    CHECK_EQ(sql_one_int64(&c, Q_GET, st, "cannot read t", two, 9, &err), -EINVAL);

    char buf[64] = "";
    CHECK_EQ(sql_each(&c, Q_LIST, sql_get(&c, Q_LIST, &err), collect, buf, &err), 7);
    CHECK_STR(buf, "1=a;2=b;");

    /* a query that does not fit the schema fails naming itself, on use
     * and when the whole set is prepared up front */
    op_error_clear(&err);
    CHECK(sql_get(&c, Q_BROKEN, &err) == NULL);
    CHECK_CONTAINS(err.msg, "test.t_broken");
    op_error_clear(&err);
    CHECK_EQ(sql_cache_prepare_all(&c, &err), -EIO);
    CHECK_CONTAINS(err.msg, "test.t_broken: no such table: nowhere");

    /* an id outside the set */
    CHECK(sql_get(&c, Q_N, &err) == NULL);
    CHECK_EQ(err.code, -EINVAL);

    sql_cache_close(&c);
    sql_cache_close(&c);                    /* twice is allowed */
    CHECK_EQ(sqlite3_close(db), SQLITE_OK); /* nothing left prepared */
}

static void test_script(void)
{
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    struct op_error err = {0};
    CHECK_EQ(sql_script(db, "CREATE TABLE a (x); CREATE TABLE b (y);", "setup", &err), 0);
    CHECK_EQ(sql_script(db, "CREATE TABLE a (x);", "migration 0002_again", &err), -EIO);
    CHECK_CONTAINS(err.msg, "migration 0002_again: table a already exists");
    sqlite3_close(db);
}

int main(void)
{
    test_errno_map();
    test_named_queries();
    test_script();
    return tl_report();
}
