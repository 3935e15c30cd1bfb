/* Tests for appliance/store/check.c: a clean database passes and is not changed
 * by the check; a foreign-key violation, a search index that drifted from
 * its table and a damaged index are each reported with the table named; an
 * older schema is no problem (a pre-upgrade copy); a file that is not an Outpost database, a
 * garbage file and a truncated database give a clear message, never a
 * crash. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "db.h"
#include "store_queries.h"
#include "store_fixture.h"
#include "testlib.h"

struct lines {
    int n;
    char text[256][512];
};

static void collect(void *ctx, const char *line)
{
    struct lines *l = ctx;
    if (l->n < 256)
        snprintf(l->text[l->n], sizeof l->text[0], "%s", line);
    l->n++;
}

/* The first collected line containing needle, or "" (so CHECK_CONTAINS
 * prints what there was). */
static const char *line_with(const struct lines *l, const char *needle)
{
    for (int i = 0; i < l->n && i < 256; i++)
        if (strstr(l->text[i], needle))
            return l->text[i];
    for (int i = 0; i < l->n && i < 256; i++)
        fprintf(stderr, "  reported: %s\n", l->text[i]);
    return "";
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "  %s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    return rc;
}

static int add_contacts(sqlite3 *db, int first, int n, const char *owner)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO contacts (id, version, created_hlc, updated_hlc, "
                           "given_name, family_name, email, owner_id) VALUES (?1, 1, 1, 1, ?2, "
                           "'Łódź', ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = 0;
    exec(db, "BEGIN");
    for (int i = first; i < first + n; i++) {
        char id[40], name[40], email[64];
        snprintf(id, sizeof id, "c-%06d", i);
        snprintf(name, sizeof name, "Name%d", i);
        snprintf(email, sizeof email, "n%d@example.org", i);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, email, -1, SQLITE_TRANSIENT);
        if (owner)
            sqlite3_bind_text(st, 4, owner, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, 4);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "  insert: %s\n", sqlite3_errmsg(db));
            rc = -1;
        }
        sqlite3_reset(st);
    }
    exec(db, rc == 0 ? "COMMIT" : "ROLLBACK");
    sqlite3_finalize(st);
    return rc;
}

/* Creates name with a migrated schema and n contacts; returns the open
 * read-write connection. */
static sqlite3 *make_db(const char *name, int n)
{
    sqlite3 *db = fx_db_create(name);
    if (!db) {
        CHECK(0);
        return NULL;
    }
    exec(db, "INSERT INTO users (id, version, created_hlc, updated_hlc, name, role) "
             "VALUES ('u-1', 1, 1, 1, 'ana', 'admin')");
    exec(db, "INSERT INTO organizations (id, version, created_hlc, updated_hlc, name) "
             "VALUES ('o-1', 1, 1, 1, 'Żabka Sp. z o.o.')");
    CHECK_EQ(add_contacts(db, 0, n, "u-1"), 0);
    return db;
}

/* Opens name the way `outpost check` does and runs the check. */
static int run_check(const char *name, struct lines *l, struct check_result *res,
                     struct op_error *err)
{
    char path[512];
    fx_path(path, sizeof path, name);
    sqlite3 *db = NULL;
    memset(l, 0, sizeof *l);
    op_error_clear(err);
    int rc = db_open(path, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &db, err);
    if (rc < 0)
        return rc;
    rc = check_run(db, collect, l, res, err);
    db_close(db);
    return rc;
}

static uint64_t file_hash(const char *name)
{
    char path[512];
    fx_path(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    uint64_t h = 1469598103934665603ull;
    if (!f)
        return 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        h = (h ^ (unsigned char)c) * 1099511628211ull;
    fclose(f);
    return h;
}

/* PRAGMA integrity_check takes no parameter, so its limit is written in
 * sql/check.sql: it must be the one check.h promises. */
static void test_integrity_limit(void)
{
    char want[64];
    snprintf(want, sizeof want, "integrity_check(%d)", CHECK_REPORT_MAX);
    CHECK_CONTAINS(store_queries.text[STORE_Q_CHECK_INTEGRITY], want);
}

static void test_clean(void)
{
    sqlite3 *db = make_db("clean.db", 50);
    if (!db)
        return;
    db_close(db); /* checkpoints; the file alone now holds everything */
    uint64_t before = file_hash("clean.db");

    struct lines l;
    struct check_result res = {-1, -1};
    struct op_error err;
    int rc = run_check("clean.db", &l, &res, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ(l.n, 0);
    if (l.n)
        fprintf(stderr, "  first: %s\n", l.text[0]);
    CHECK_EQ(res.problems, 0);
    CHECK_EQ(res.schema_version, db_latest_version());
    /* The check wrote nothing. */
    CHECK(file_hash("clean.db") == before);

    /* Checking while another connection holds the database open and has
     * uncheckpointed commits in the WAL works too. */
    char path[512];
    fx_path(path, sizeof path, "clean.db");
    CHECK_EQ(db_open(path, 0, &db, &err), 0);
    CHECK_EQ(add_contacts(db, 1000, 20, NULL), 0);
    rc = run_check("clean.db", &l, &res, &err);
    CHECK_EQ(rc, 0);
    db_close(db);
}

static void test_foreign_key(void)
{
    sqlite3 *db = make_db("fk.db", 5);
    if (!db)
        return;
    exec(db, "PRAGMA foreign_keys = OFF");
    CHECK_EQ(add_contacts(db, 100, 1, "no-such-user"), 0);
    exec(db, "PRAGMA foreign_keys = ON");
    long long rowid = sqlite3_last_insert_rowid(db);
    db_close(db);

    struct lines l;
    struct check_result res;
    struct op_error err;
    int rc = run_check("fk.db", &l, &res, &err);
    CHECK_EQ(rc, 1);
    CHECK_EQ(l.n, 1);
    char want[128];
    snprintf(want, sizeof want,
             "foreign key: contacts rowid %lld: owner_id refers to a missing "
             "users row",
             rowid);
    CHECK_STR(l.text[0], want);
}

static void test_many_foreign_keys(void)
{
    sqlite3 *db = make_db("fk-many.db", 0);
    if (!db)
        return;
    exec(db, "PRAGMA foreign_keys = OFF");
    CHECK_EQ(add_contacts(db, 0, CHECK_REPORT_MAX + 50, "ghost"), 0);
    exec(db, "PRAGMA foreign_keys = ON");
    db_close(db);
    struct lines l;
    struct check_result res;
    struct op_error err;
    int rc = run_check("fk-many.db", &l, &res, &err);
    CHECK_EQ(rc, CHECK_REPORT_MAX + 50);
    CHECK_EQ(res.problems, CHECK_REPORT_MAX + 50);
    CHECK_EQ(l.n, CHECK_REPORT_MAX + 1); /* the first 100 and one summary line */
    CHECK_STR(l.text[CHECK_REPORT_MAX], "foreign key: ... and 50 more");
}

static void test_search_index_drift(void)
{
    sqlite3 *db = make_db("drift.db", 10);
    if (!db)
        return;
    /* A row written with the index trigger gone: the index misses it. */
    exec(db, "DROP TRIGGER contacts_fts_ai");
    CHECK_EQ(add_contacts(db, 500, 1, NULL), 0);
    db_close(db);
    struct lines l;
    struct check_result res;
    struct op_error err;
    int rc = run_check("drift.db", &l, &res, &err);
    CHECK_EQ(rc, 1);
    CHECK_CONTAINS(line_with(&l, "search index contacts_fts"), "does not match the table contacts");
    /* The other index is fine and not blamed. */
    CHECK(strcmp(line_with(&l, "organizations_fts"), "") == 0);
}

static void test_search_index_damaged(void)
{
    sqlite3 *db = make_db("damaged.db", 200);
    if (!db)
        return;
    CHECK_EQ(exec(db, "DELETE FROM contacts_fts_data WHERE id = (SELECT max(id) FROM "
                      "contacts_fts_data)"),
             SQLITE_OK);
    db_close(db);
    struct lines l;
    struct check_result res;
    struct op_error err;
    int rc = run_check("damaged.db", &l, &res, &err);
    CHECK(rc >= 1);
    CHECK_CONTAINS(line_with(&l, "search index contacts_fts"), "contacts");
}

static void test_old_schema(void)
{
    char path[512];
    fx_path(path, sizeof path, "old.db");
    sqlite3 *db = NULL;
    struct op_error err;
    CHECK_EQ(db_open(path, DB_OPEN_CREATE | DB_OPEN_NO_MIGRATE, &db, &err), 0);
    if (!db)
        return;
    CHECK_EQ(db_migrate(db, 1, &err), 1);
    db_close(db);
    struct lines l;
    struct check_result res;
    int rc = run_check("old.db", &l, &res, &err);
    /* A copy from before an upgrade is not damage: no problem, and the
     * version is there for the caller to say so. The indexes come with a
     * later migration; their absence is not a problem either. */
    CHECK_EQ(rc, 0);
    CHECK_EQ(l.n, 0);
    CHECK_EQ(res.schema_version, 1);
}

static void test_not_outpost(void)
{
    /* An SQLite database of some other program, no application id. */
    char path[512];
    fx_path(path, sizeof path, "other.db");
    sqlite3 *raw = NULL;
    CHECK_EQ(sqlite3_open(path, &raw), SQLITE_OK);
    exec(raw, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello')");
    sqlite3_close(raw);
    struct lines l;
    struct check_result res;
    struct op_error err;
    int rc = run_check("other.db", &l, &res, &err);
    CHECK_EQ(rc, DB_EFOREIGN);
    CHECK_CONTAINS(err.msg, "not an Outpost database");

    /* One that says it is someone else's. */
    fx_path(path, sizeof path, "other2.db");
    CHECK_EQ(sqlite3_open(path, &raw), SQLITE_OK);
    exec(raw, "PRAGMA application_id = 1234; CREATE TABLE t (x)");
    sqlite3_close(raw);
    rc = run_check("other2.db", &l, &res, &err);
    CHECK_EQ(rc, DB_EFOREIGN);
    CHECK_CONTAINS(err.msg, "not an Outpost");
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    char path[512];
    fx_path(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void test_garbage_and_truncated(void)
{
    struct lines l;
    struct check_result res;
    struct op_error err;

    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_bytes("junk.db", junk, sizeof junk);
    int rc = run_check("junk.db", &l, &res, &err);
    CHECK_EQ(rc, -EBADMSG);
    CHECK_CONTAINS(err.msg, "not a database");

    const char *text = "name,email\nAna,ana@example.org\n";
    write_bytes("text.db", text, strlen(text));
    rc = run_check("text.db", &l, &res, &err);
    CHECK(rc < 0);
    CHECK(err.msg[0] != '\0');

    /* A real database cut short: either refused outright or reported as
     * damaged, with a message; not a crash and not "ok". */
    sqlite3 *db = make_db("cut.db", 2000);
    if (!db)
        return;
    db_close(db);
    char path[512];
    fx_path(path, sizeof path, "cut.db");
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(truncate(path, st.st_size / 2), 0);
    rc = run_check("cut.db", &l, &res, &err);
    fprintf(stderr, "  truncated: rc %d, %d lines, first: %s, err: %s\n", rc, l.n,
            l.n ? l.text[0] : "-", err.msg);
    CHECK(rc != 0);
    if (rc > 0)
        CHECK(l.n > 0);
    else
        CHECK(err.msg[0] != '\0');

    /* Only a header's worth left. */
    CHECK_EQ(truncate(path, 100), 0);
    rc = run_check("cut.db", &l, &res, &err);
    fprintf(stderr, "  100 octets: rc %d, %d lines, err: %s\n", rc, l.n, err.msg);
    CHECK(rc != 0);
}

int main(void)
{
    fx_tmpdir("check");
    RUN(test_integrity_limit);
    RUN(test_clean);
    RUN(test_foreign_key);
    RUN(test_many_foreign_keys);
    RUN(test_search_index_drift);
    RUN(test_search_index_damaged);
    RUN(test_old_schema);
    RUN(test_not_outpost);
    RUN(test_garbage_and_truncated);
    return fx_finish();
}
