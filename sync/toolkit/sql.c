/*
 * Named queries prepared once per connection, and the one translation of
 * SQLite's result codes into errnos; see sql.h.
 */
#include "sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int sql_errno(int rc)
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

int sql_fail(sqlite3 *db, int rc, const char *what, struct op_error *err)
{
    int code = sql_errno(rc);
    return op_error_set(err, code ? code : -EIO, NULL, "%s: %s", what,
                        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int sql_cache_init(struct sql_cache *c, sqlite3 *db, const struct sql_queries *q,
                   struct op_error *err)
{
    c->db = db;
    c->q = q;
    c->stmt = calloc(q->count ? q->count : 1, sizeof(*c->stmt));
    if (!c->stmt)
        return op_error_set(err, -ENOMEM, NULL, "%s queries: out of memory", q->set);
    return 0;
}

void sql_cache_close(struct sql_cache *c)
{
    if (!c || !c->stmt)
        return;
    for (unsigned i = 0; i < c->q->count; i++)
        sqlite3_finalize(c->stmt[i]);
    free(c->stmt);
    c->stmt = NULL;
}

const char *sql_name(const struct sql_cache *c, unsigned id, char *buf, size_t len)
{
    if (id >= c->q->count)
        snprintf(buf, len, "%s.#%u", c->q->set, id);
    else
        snprintf(buf, len, "%s.%s", c->q->set, c->q->names[id]);
    return buf;
}

static int query_fail(struct sql_cache *c, unsigned id, int rc, struct op_error *err)
{
    char name[128];
    return sql_fail(c->db, rc, sql_name(c, id, name, sizeof(name)), err);
}

sqlite3_stmt *sql_get(struct sql_cache *c, unsigned id, struct op_error *err)
{
    if (id >= c->q->count) {
        op_error_set(err, -EINVAL, NULL, "%s queries: no query #%u", c->q->set, id);
        return NULL;
    }
    sqlite3_stmt *st = c->stmt[id];
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    int rc = sqlite3_prepare_v3(c->db, c->q->text[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        query_fail(c, id, rc, err);
        sqlite3_finalize(st);
        return NULL;
    }
    c->stmt[id] = st;
    return st;
}

int sql_get_st(struct sql_cache *c, unsigned id, sqlite3_stmt **out, struct op_error *err)
{
    struct op_error local;
    struct op_error *e = err ? err : &local;
    op_error_clear(&local);
    sqlite3_stmt *st = sql_get(c, id, e);
    if (!st)
        return e->code ? e->code : -EIO;
    *out = st;
    return 0;
}

int sql_cache_prepare_all(struct sql_cache *c, struct op_error *err)
{
    sqlite3_stmt *st;
    for (unsigned i = 0; i < c->q->count; i++) {
        int rc = sql_get_st(c, i, &st, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int sql_run(struct sql_cache *c, unsigned id, sqlite3_stmt *st, struct op_error *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        int code = query_fail(c, id, rc, err);
        sqlite3_reset(st);
        return code;
    }
    int changed = sqlite3_changes(c->db);
    sqlite3_reset(st);
    return changed;
}

int sql_exec(struct sql_cache *c, unsigned id, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, id, &st, err);
    return rc < 0 ? rc : sql_run(c, id, st, err);
}

/* Steps st once; an error fills err as "<what>: <message>", or with the
 * name of query id when what is NULL. */
static int step1(struct sql_cache *c, unsigned id, sqlite3_stmt *st, const char *what,
                 struct op_error *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    int code = what ? sql_fail(c->db, rc, what, err) : query_fail(c, id, rc, err);
    sqlite3_reset(st);
    return code;
}

int sql_step(struct sql_cache *c, unsigned id, sqlite3_stmt *st, struct op_error *err)
{
    return step1(c, id, st, NULL, err);
}

int sql_one_int64(struct sql_cache *c, unsigned id, sqlite3_stmt *st, const char *what,
                  int64_t *out, unsigned n, struct op_error *err)
{
    int64_t v[8];
    if (n > sizeof v / sizeof v[0]) {
        sqlite3_reset(st);
        return op_error_set(err, -EINVAL, NULL, "%s: %u columns asked for, at most 8", what, n);
    }
    int rc = sql_step(c, id, st, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -EIO, NULL, "%s: no row", what);
    for (unsigned i = 0; i < n; i++)
        v[i] = sqlite3_column_int64(st, (int)i);
    sqlite3_reset(st);
    for (unsigned i = 0; i < n; i++)
        out[i] = v[i];
    return 0;
}

int sql_run_what(struct sql_cache *c, sqlite3_stmt *st, const char *what, struct op_error *err)
{
    int rc;
    while ((rc = step1(c, 0, st, what, err)) == 1)
        ;
    return rc;
}

int sql_step_what(struct sql_cache *c, sqlite3_stmt *st, const char *what, struct op_error *err)
{
    return step1(c, 0, st, what, err);
}

int sql_each(struct sql_cache *c, unsigned id, sqlite3_stmt *st, sql_row_fn row, void *ctx,
             struct op_error *err)
{
    int rc;
    while ((rc = sql_step(c, id, st, err)) == 1) {
        int r = row(st, ctx, err);
        if (r != 0) {
            sqlite3_reset(st);
            return r;
        }
    }
    return rc;
}

int sql_script(sqlite3 *db, const char *sql, const char *what, struct op_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int code = sql_errno(rc);
        op_error_set(err, code ? code : -EIO, NULL, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return code ? code : -EIO;
    }
    return 0;
}
