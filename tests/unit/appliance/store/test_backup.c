/* Tests for appliance/store/backup.c: the copy is a valid Outpost database;
 * DEST is never overwritten without BACKUP_FORCE and is untouched by any
 * failure (missing directory, cancellation); no temporary file is left
 * behind; and a backup taken while another process keeps committing
 * batches of exactly 10 rows holds a whole number of batches (a
 * consistent snapshot) and passes the integrity checks. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "db.h"
#include "store_fixture.h"
#include "testlib.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *read_file(const char *path)
{
    static char buf[256];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Counts directory entries whose name contains ".tmp-" (our temp files). */
static int temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) {
            fprintf(stderr, "  left behind: %s\n", e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "  %s: %s\n", sql, sqlite3_errmsg(db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static const char *query_text(sqlite3 *db, const char *sql)
{
    static char buf[512];
    sqlite3_stmt *st;
    snprintf(buf, sizeof buf, "(error)");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(buf, sizeof buf, "(prepare: %s)", sqlite3_errmsg(db));
        return buf;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

/* Inserts n contacts named "<tag> <i>" in one transaction. */
static int insert_contacts(sqlite3 *db, const char *tag, int first, int n)
{
    sqlite3_stmt *st;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO contacts (id, version, created_hlc, updated_hlc, "
                           "given_name, family_name, email) VALUES (?1, 1, ?2, ?2, ?3, "
                           "'Müller', ?4)",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "  insert: %s\n", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    int rc = 0;
    for (int i = first; i < first + n && rc == 0; i++) {
        char id[64], name[64], email[96];
        snprintf(id, sizeof id, "%s-%08d", tag, i);
        snprintf(name, sizeof name, "%s %d", tag, i);
        snprintf(email, sizeof email, "%s.%d@example.org", tag, i);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i << 16);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, email, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "  insert: %s\n", sqlite3_errmsg(db));
            rc = -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        rc = -1;
    return rc;
}

/* Closes db and checks that no backup left a temporary file behind. */
static void close_clean(sqlite3 *db)
{
    db_close(db);
    CHECK_EQ(temp_files(fx_dir), 0);
}

/* Creates name with a migrated schema and `contacts` contacts; returns the
 * open connection, with the path of dest_name, where a test backs it up,
 * in dest. */
static sqlite3 *make_db(const char *name, int contacts, const char *dest_name, char *dest,
                        size_t cap)
{
    fx_path(dest, cap, dest_name);
    sqlite3 *db = fx_db_create(name);
    CHECK(db != NULL);
    if (!db)
        return NULL;
    for (int i = 0; i < contacts; i += 10)
        CHECK_EQ(insert_contacts(db, "seed", i, 10), 0);
    return db;
}

static void test_copy_is_outpost_db(void)
{
    char dest[512];
    sqlite3 *db = make_db("a.db", 30, "a-backup.db", dest, sizeof dest);
    if (!db)
        return;
    struct backup_result res = {0};
    struct op_error err;
    op_error_clear(&err);
    int rc = backup_to(db, dest, NULL, &res, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(res.pages > 0);
    CHECK_EQ(res.bytes, (int64_t)res.pages * res.page_size);
    db_close(db);

    struct stat st;
    CHECK_EQ(stat(dest, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_size, res.bytes);

    /* A standalone file: header bytes 18/19 say rollback journal, not WAL. */
    unsigned char hdr[100] = {0};
    FILE *f = fopen(dest, "rb");
    CHECK(f && fread(hdr, 1, sizeof hdr, f) == sizeof hdr);
    if (f)
        fclose(f);
    CHECK_EQ(hdr[18], 1);
    CHECK_EQ(hdr[19], 1);

    sqlite3 *copy = NULL;
    rc = db_open(dest, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &copy, &err);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        int version = -1;
        CHECK_EQ(db_schema_version(copy, &version), 0);
        CHECK_EQ(version, db_latest_version());
        CHECK_EQ(query_int(copy, "PRAGMA application_id"), DB_APPLICATION_ID);
        CHECK_EQ(query_int(copy, "SELECT count(*) FROM contacts"), 30);
        /* The search index came along and works with the folding tokenizer. */
        CHECK_EQ(query_int(copy, "SELECT count(*) FROM contacts_fts WHERE contacts_fts "
                                 "MATCH 'muller'"),
                 30);
        CHECK_STR(query_text(copy, "PRAGMA integrity_check"), "ok");
        db_close(copy);
    }
    /* A migrating read-write open accepts it too (it is what a restore does). */
    rc = db_open(dest, 0, &copy, &err);
    CHECK_EQ(rc, 0);
    close_clean(copy);
}

static void test_refuses_overwrite(void)
{
    char dest[512];
    sqlite3 *db = make_db("b.db", 10, "b-backup.db", dest, sizeof dest);
    if (!db)
        return;
    write_file(dest, "precious");
    struct op_error err;
    op_error_clear(&err);
    int rc = backup_to(db, dest, NULL, NULL, &err);
    CHECK_EQ(rc, -EEXIST);
    CHECK_CONTAINS(err.msg, dest);
    CHECK_CONTAINS(err.msg, "--force");
    CHECK_STR(read_file(dest), "precious");

    struct backup_options opts = {.flags = BACKUP_FORCE};
    rc = backup_to(db, dest, &opts, NULL, &err);
    CHECK_EQ(rc, 0);
    CHECK(read_file(dest) && strcmp(read_file(dest), "precious") != 0);

    /* The live database itself is never a destination, even forced. */
    char self[512];
    fx_path(self, sizeof self, "b.db");
    rc = backup_to(db, self, &opts, NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_CONTAINS(err.msg, "database being backed up");

    /* A directory is not a file name. */
    rc = backup_to(db, fx_dir, &opts, NULL, &err);
    CHECK_EQ(rc, -EISDIR);
    CHECK_CONTAINS(err.msg, "directory");

    /* Inside a transaction the snapshot would not be ours to take. */
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    rc = backup_to(db, dest, &opts, NULL, &err);
    CHECK_EQ(rc, -EBUSY);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    close_clean(db);
}

static void test_missing_directory(void)
{
    char dest[512];
    sqlite3 *db = make_db("c.db", 10, "no-such-dir/backup.db", dest, sizeof dest);
    if (!db)
        return;
    struct op_error err;
    op_error_clear(&err);
    int rc = backup_to(db, dest, NULL, NULL, &err);
    CHECK_EQ(rc, -ENOENT);
    CHECK_CONTAINS(err.msg, "does not exist");
    CHECK_CONTAINS(err.msg, "no-such-dir");
    close_clean(db);
}

struct cancel_ctx {
    int calls;
    int stop_after;
    int last_copied, last_total;
};

static int progress_cb(void *ctx, int copied, int total)
{
    struct cancel_ctx *c = ctx;
    c->calls++;
    c->last_copied = copied;
    c->last_total = total;
    return c->stop_after && c->calls >= c->stop_after;
}

static void test_progress_and_cancel(void)
{
    char dest[512];
    sqlite3 *db = make_db("d.db", 200, "d-backup.db", dest, sizeof dest);
    if (!db)
        return;
    write_file(dest, "precious");

    /* Cancelled half-way with --force: the old DEST stays, no temp file. */
    struct cancel_ctx cc = {.stop_after = 3};
    struct backup_options opts = {
        .flags = BACKUP_FORCE, .step_pages = 2, .progress = progress_cb, .ctx = &cc};
    struct op_error err;
    int rc = backup_to(db, dest, &opts, NULL, &err);
    CHECK_EQ(rc, -ECANCELED);
    CHECK_EQ(cc.calls, 3);
    CHECK(cc.last_copied < cc.last_total);
    CHECK_STR(read_file(dest), "precious");
    CHECK_EQ(temp_files(fx_dir), 0);

    /* Run to the end: progress climbs to copied == total. */
    struct cancel_ctx done = {0};
    opts.ctx = &done;
    struct backup_result res;
    rc = backup_to(db, dest, &opts, &res, &err);
    CHECK_EQ(rc, 0);
    CHECK(done.calls > 3);
    CHECK_EQ(done.last_copied, done.last_total);
    CHECK_EQ(done.last_total, res.pages);
    db_close(db);
}

/* The writer: commits batches of exactly 10 contacts on its own connection
 * until the parent closes the pipe. */
static void writer(const char *path, int stop_fd, int ready_fd)
{
    sqlite3 *db = NULL;
    struct op_error err;
    if (db_open(path, 0, &db, &err) < 0) {
        fprintf(stderr, "writer: %s\n", err.msg);
        _exit(2);
    }
    int next = 1000000;
    int signalled = 0;
    for (;;) {
        if (insert_contacts(db, "live", next, 10) < 0)
            _exit(3);
        next += 10;
        if (!signalled) {
            (void)!write(ready_fd, "r", 1);
            signalled = 1;
        }
        struct pollfd p = {.fd = stop_fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0)
            break; /* the parent closed its end */
    }
    db_close(db);
    _exit(0);
}

static int slow_progress(void *ctx, int copied, int total)
{
    int *calls = ctx;
    (*calls)++;
    struct timespec ts = {0, 300000}; /* 0.3 ms: lets the writer commit between steps */
    nanosleep(&ts, NULL);
    return 0;
}

static void test_consistent_under_writes(void)
{
    char path[512], dest[512];
    sqlite3 *seed = make_db("e.db", 3000, "e-backup.db", dest, sizeof dest);
    if (!seed)
        return;
    db_close(seed);
    fx_path(path, sizeof path, "e.db");

    int stop[2], ready[2];
    CHECK_EQ(pipe(stop), 0);
    CHECK_EQ(pipe(ready), 0);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(stop[1]);
        close(ready[0]);
        writer(path, stop[0], ready[1]);
    }
    close(stop[0]);
    close(ready[1]);
    char c;
    CHECK_EQ(read(ready[0], &c, 1), 1); /* the writer has committed at least once */

    sqlite3 *db = NULL;
    struct op_error err;
    CHECK_EQ(db_open(path, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &db, &err), 0);
    long long before = query_int(db, "SELECT count(*) FROM contacts");
    int calls = 0;
    struct backup_options opts = {.step_pages = 4, .progress = slow_progress, .ctx = &calls};
    struct backup_result res;
    int rc = backup_to(db, dest, &opts, &res, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "  %s\n", err.msg);
    long long after = query_int(db, "SELECT count(*) FROM contacts");
    db_close(db);

    close(stop[1]); /* tells the writer to stop */
    int status = -1;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);

    /* The writer really wrote while the copy ran, over many steps. */
    CHECK(calls > 10);
    CHECK(after > before);

    sqlite3 *copy = NULL;
    CHECK_EQ(db_open(dest, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &copy, &err), 0);
    if (!copy)
        return;
    long long n = query_int(copy, "SELECT count(*) FROM contacts");
    fprintf(stderr, "  source had %lld rows before, %lld after; the copy holds %lld\n", before,
            after, n);
    CHECK_EQ(n % 10, 0);
    CHECK(n >= before && n <= after);
    CHECK_STR(query_text(copy, "PRAGMA integrity_check"), "ok");
    /* The search index matches its content in the copy as well. */
    CHECK_EQ(query_int(copy, "SELECT count(*) FROM contacts_fts WHERE contacts_fts MATCH "
                             "'muller'"),
             n);
    db_close(copy);
    sqlite3 *rw = NULL;
    CHECK_EQ(db_open(dest, DB_OPEN_NO_MIGRATE, &rw, &err), 0);
    if (rw) {
        CHECK_EQ(sqlite3_exec(rw,
                              "INSERT INTO contacts_fts (contacts_fts, rank) "
                              "VALUES ('integrity-check', 1)",
                              NULL, NULL, NULL),
                 SQLITE_OK);
        db_close(rw);
    }
    CHECK_EQ(temp_files(fx_dir), 0);
}

int main(void)
{
    fx_tmpdir("backup");
    RUN(test_copy_is_outpost_db);
    RUN(test_refuses_overwrite);
    RUN(test_missing_directory);
    RUN(test_progress_and_cancel);
    RUN(test_consistent_under_writes);
    return fx_finish();
}
