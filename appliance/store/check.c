/*
 * Database checks for `outpost check`; see check.h. Every check only reads
 * the database it is given. The one that cannot: FTS5 runs its
 * 'integrity-check' command only as an INSERT, that is inside a write
 * transaction, which a read-only connection refuses and which on a live
 * node would hold the write lock (and make outpostd's writers wait) for as
 * long as the check runs. So the full-text indexes are checked on a
 * snapshot: the database is copied with the backup API in one read
 * transaction into a private temporary database (SQLite deletes it when
 * the connection closes, or at once on a crash, because it is unlinked on
 * open), and the command runs there. The copy is page for page, so what
 * it finds is what the original holds.
 */
#include "check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "entity.h"
#include "fold.h"
#include "sql.h"
#include "store.h"
#include "store_queries.h"

struct run {
    sqlite3 *db;
    struct sql_cache q; /* the store's queries on db, for this run */
    check_report_fn report;
    void *ctx;
    int problems;
    int version;
    sqlite3 *snapshot;     /* the private copy for the FTS5 checks, made on first use */
    struct sql_cache snap; /* the store's queries on the snapshot */
    int snapshot_failed;   /* reported once; the other indexes are skipped */
};

/* The FTS5 check of each full-text index (sql/check.sql; SQLite cannot
 * bind a table name). */
static const struct store_entity_query search_checks[] = {
    {&entity_contact, STORE_Q_CHECK_SEARCH_INDEX_CONTACTS},
    {&entity_organization, STORE_Q_CHECK_SEARCH_INDEX_ORGANIZATIONS},
    {NULL, 0},
};

static void problem(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct run *r, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->problems++;
    if (r->report)
        r->report(r->ctx, line);
}

/* Whether a failed statement says "this database is damaged" (a finding,
 * reported as a problem) rather than "we could not look at it" (memory,
 * I/O, locks: the check stops and says so). A damaged FTS5 index fails
 * with SQLITE_CORRUPT or with a plain SQLITE_ERROR such as "invalid fts5
 * file format", so everything that is not about the environment counts. */
static int is_damage(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_INTERRUPT:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_NOLFS:
        return 0;
    default:
        return 1;
    }
}

/* Steps the named query `id` on c: SQLITE_ROW, SQLITE_DONE or SQLite's
 * error (a query that cannot be prepared gives the prepare's error). */
static int step(struct sql_cache *c, unsigned id, sqlite3_stmt **st)
{
    *st = sql_get(c, id, NULL);
    return *st ? sqlite3_step(*st) : sqlite3_errcode(c->db);
}

static int check_identity(struct run *r, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = step(&r->q, STORE_Q_CHECK_APPLICATION_ID, &st);
    if (rc != SQLITE_ROW)
        return sql_fail(r->db, rc, "cannot read the database header", err);
    int app_id = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    if (app_id != DB_APPLICATION_ID)
        return op_error_set(err, DB_EFOREIGN, NULL,
                            "not an Outpost database (application_id 0x%08x, expected 0x%08x)",
                            (unsigned)app_id, (unsigned)DB_APPLICATION_ID);
    rc = db_schema_version(r->db, &r->version);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot read the schema version: %s",
                            sqlite3_errmsg(r->db));
    /* An older schema is a copy from before an upgrade (a pre-upgrade
     * backup): outpostd migrates it as it opens it, so it is not damage.
     * The caller sees the version in check_result and may say so. */
    int latest = db_latest_version();
    if (r->version > latest)
        problem(r,
                "schema: version %d is newer than this build knows (%d); install a newer "
                "Outpost",
                r->version, latest);
    return 0;
}

/* Reports each line of one integrity_check row, without SQLite's
 * "*** in database main ***" heading. */
static void report_integrity_row(struct run *r, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n && strncmp(p, "*** in database", 15) != 0)
            problem(r, "integrity: %.*s", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

static int check_integrity(struct run *r, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc;
    for (rc = step(&r->q, STORE_Q_CHECK_INTEGRITY, &st); rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        if (text && strcmp(text, "ok") != 0)
            report_integrity_row(r, text);
    }
    int code = 0;
    if (rc != SQLITE_DONE) {
        if (is_damage(rc))
            problem(r, "integrity: the check stopped: %s", sqlite3_errmsg(r->db));
        else
            code = sql_fail(r->db, rc, "cannot run the integrity check", err);
    }
    if (st)
        sqlite3_reset(st);
    return code;
}

/* The column of foreign key `fkid` of `table`, for the message. */
static void fk_column(struct run *r, const char *table, int fkid, char *out, size_t cap)
{
    snprintf(out, cap, "a column");
    sqlite3_stmt *st = sql_get(&r->q, STORE_Q_CHECK_FOREIGN_KEY_COLUMN, NULL);
    if (!st)
        return;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, fkid);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
}

static int check_foreign_keys(struct run *r, struct op_error *err)
{
    sqlite3_stmt *st;
    int found = 0, rc;
    for (rc = step(&r->q, STORE_Q_CHECK_FOREIGN_KEYS, &st); rc == SQLITE_ROW;
         rc = sqlite3_step(st)) {
        if (++found > CHECK_REPORT_MAX) {
            r->problems++; /* counted, not printed */
            continue;
        }
        const char *table = (const char *)sqlite3_column_text(st, 0);
        const char *parent = (const char *)sqlite3_column_text(st, 2);
        char col[128];
        fk_column(r, table ? table : "", sqlite3_column_int(st, 3), col, sizeof col);
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            problem(r, "foreign key: %s: %s refers to a missing %s row", table ? table : "?", col,
                    parent ? parent : "?");
        else
            problem(r, "foreign key: %s rowid %lld: %s refers to a missing %s row",
                    table ? table : "?", (long long)sqlite3_column_int64(st, 1), col,
                    parent ? parent : "?");
    }
    int code = 0;
    if (rc != SQLITE_DONE) {
        if (is_damage(rc))
            problem(r, "foreign key: the check stopped: %s", sqlite3_errmsg(r->db));
        else
            code = sql_fail(r->db, rc, "cannot run the foreign-key check", err);
    } else if (found > CHECK_REPORT_MAX) {
        /* One line for the rest; it is not itself a problem. */
        if (r->report) {
            char line[128];
            snprintf(line, sizeof line, "foreign key: ... and %d more", found - CHECK_REPORT_MAX);
            r->report(r->ctx, line);
        }
    }
    if (st)
        sqlite3_reset(st);
    return code;
}

static int table_exists(struct run *r, const char *name)
{
    sqlite3_stmt *st = sql_get(&r->q, STORE_Q_CHECK_TABLE_EXISTS, NULL);
    if (!st)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return found;
}

/* Copies the database into a private temporary one (see the top of the
 * file). Returns 0, or a negative code with err set. */
static int make_snapshot(struct run *r, struct op_error *err)
{
    sqlite3 *tmp = NULL;
    int rc = sqlite3_open_v2("", &tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        int code = op_error_set(err, sql_errno(rc), NULL,
                                "cannot create a temporary copy for the search-index check: %s",
                                tmp ? sqlite3_errmsg(tmp) : sqlite3_errstr(rc));
        sqlite3_close(tmp);
        return code;
    }
    rc = fold_register(tmp);
    if (rc < 0) {
        sqlite3_close(tmp);
        return op_error_set(err, rc, NULL, "cannot register the search tokenizer");
    }
    /* One step of everything: a single read transaction, one snapshot. */
    sqlite3_backup *b = sqlite3_backup_init(tmp, "main", r->db, "main");
    if (!b) {
        int code = op_error_set(err, -EIO, NULL,
                                "cannot copy the database for the search-index "
                                "check: %s",
                                sqlite3_errmsg(tmp));
        sqlite3_close(tmp);
        return code;
    }
    int step = sqlite3_backup_step(b, -1);
    int fin = sqlite3_backup_finish(b);
    if (step != SQLITE_DONE || fin != SQLITE_OK) {
        int bad = step != SQLITE_DONE ? step : fin;
        /* -EBADMSG tells the caller this is a finding about the source. */
        int code = op_error_set(err, is_damage(bad) ? -EBADMSG : sql_errno(bad), NULL,
                                "cannot copy the database for the search-index check: %s",
                                sqlite3_errstr(bad));
        sqlite3_close(tmp);
        return code;
    }
    int code = sql_cache_init(&r->snap, tmp, &store_queries, err);
    if (code < 0) {
        sqlite3_close(tmp);
        return code;
    }
    r->snapshot = tmp;
    return 0;
}

static int check_search_index(struct run *r, const struct entity_def *e, struct op_error *err)
{
    char index[96];
    snprintf(index, sizeof index, "%s_fts", e->table);
    int id = store_entity_query(search_checks, e);
    if (id < 0)
        return op_error_set(err, -EINVAL, NULL, "cannot check the search index %s: no check for it",
                            index);
    if (!table_exists(r, index)) {
        /* An older schema may not have it yet; that is reported above. */
        if (r->version >= db_latest_version())
            problem(r, "search index %s: missing (the table %s has no full-text index)", index,
                    e->table);
        return 0;
    }
    if (r->snapshot_failed)
        return 0;
    if (!r->snapshot) {
        struct op_error why;
        op_error_clear(&why);
        int rc = make_snapshot(r, &why);
        if (rc == -EBADMSG) {
            /* A damaged source cannot be copied; that is a finding. Out of
             * memory or temporary space is not, and stops the check. */
            problem(r, "search index: %s", why.msg);
            r->snapshot_failed = 1;
            return 0;
        }
        if (rc < 0) {
            if (err)
                *err = why;
            return rc;
        }
    }
    sqlite3_stmt *st;
    int rc = step(&r->snap, id, &st);
    int code = 0;
    if (rc != SQLITE_DONE) {
        if (is_damage(rc)) {
            problem(r,
                    "search index %s: does not match the table %s (%s); searches may miss or "
                    "invent records",
                    index, e->table, sqlite3_errmsg(r->snapshot));
        } else {
            char what[160];
            snprintf(what, sizeof what, "cannot check the search index %s", index);
            code = sql_fail(r->snapshot, rc, what, err);
        }
    }
    if (st)
        sqlite3_reset(st);
    return code;
}

/* The type-ahead name index against the names of the live records. */
static int check_names(struct run *r, struct op_error *err)
{
    if (!table_exists(r, "search_names"))
        return 0; /* an older schema: reported above */
    sqlite3_stmt *st;
    int rc = step(&r->q, STORE_Q_CHECK_NAMES_DRIFT, &st);
    if (rc != SQLITE_ROW) {
        if (st)
            sqlite3_reset(st);
        return sql_fail(r->db, rc, "cannot check the name index search_names", err);
    }
    int64_t extra = sqlite3_column_int64(st, 0), missing = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    if (extra || missing)
        problem(r,
                "search index search_names: %lld keys no live name gives, %lld missing; "
                "type-ahead searches may miss or invent records (outpost check "
                "--rebuild-search)",
                (long long)extra, (long long)missing);
    return 0;
}

int check_run(sqlite3 *db, check_report_fn report, void *ctx, struct check_result *out,
              struct op_error *err)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.db = db;
    r.report = report;
    r.ctx = ctx;
    int rc = sql_cache_init(&r.q, db, &store_queries, err);
    if (rc == 0)
        rc = check_identity(&r, err);
    if (rc == 0)
        rc = check_integrity(&r, err);
    if (rc == 0)
        rc = check_foreign_keys(&r, err);
    for (size_t i = 0; rc == 0 && entity_all[i]; i++)
        if (entity_all[i]->flags & ENTITY_SEARCH)
            rc = check_search_index(&r, entity_all[i], err);
    if (rc == 0)
        rc = check_names(&r, err);
    sql_cache_close(&r.snap);
    sqlite3_close(r.snapshot);
    sql_cache_close(&r.q);
    if (rc < 0)
        return rc;
    if (out) {
        out->problems = r.problems;
        out->schema_version = r.version;
    }
    return r.problems;
}

int check_rebuild_search(sqlite3 *db, struct op_error *err)
{
    static const unsigned steps[] = {
        STORE_Q_CHECK_REBUILD_BEGIN,          STORE_Q_CHECK_REBUILD_CONTACTS,
        STORE_Q_CHECK_REBUILD_ORGANIZATIONS,  STORE_Q_CHECK_REBUILD_NAMES_CLEAR,
        STORE_Q_CHECK_REBUILD_NAMES_CONTACTS, STORE_Q_CHECK_REBUILD_NAMES_ORGANIZATIONS,
        STORE_Q_CHECK_REBUILD_COMMIT};
    struct sql_cache c;
    int rc = sql_cache_init(&c, db, &store_queries, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc >= 0; i++) {
        sqlite3_stmt *st = NULL;
        rc = sql_get_st(&c, steps[i], &st, err);
        if (rc == 0)
            rc = sql_run_what(&c, st, "cannot rebuild the search index", err);
        if (rc < 0 && i > 0)
            (void)sql_exec(&c, STORE_Q_CHECK_REBUILD_ROLLBACK, NULL);
    }
    sql_cache_close(&c);
    return rc < 0 ? rc : 0;
}
