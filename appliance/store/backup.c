/*
 * Online backup with the SQLite backup API; see backup.h.
 *
 * Why the copy is consistent while outpostd writes: the database is in WAL
 * mode, where a read transaction sees one snapshot for as long as it stays
 * open, and writers are not blocked by it. Three ways to drive
 * sqlite3_backup_step were possible:
 *   - step(-1): one call, one read transaction, consistent, but no progress
 *     and no way to stop a long copy;
 *   - step(N) with no transaction of our own: each step opens and closes its
 *     own read transaction, and SQLite restarts the whole backup whenever
 *     another connection commits between two steps, so on a busy node a
 *     large copy may never finish;
 *   - step(N) inside one read transaction held on the source connection
 *     (BEGIN plus a read) for the whole copy: every step reads the same
 *     snapshot, the source pager never sees a change, so nothing restarts,
 *     and we still get progress and cancellation between steps.
 * We do the third. The price is that checkpoints cannot move past our
 * snapshot until the copy ends, so the WAL grows by whatever is written
 * meanwhile; it shrinks at the next checkpoint after we let go.
 *
 * The destination is a temporary file next to DEST, written with its
 * journal off (if anything fails it is deleted, so a journal would protect
 * nothing), switched to rollback mode so that it is one standalone file,
 * closed, fsynced, reopened read-only for PRAGMA quick_check, and only then
 * renamed over DEST, after which the directory is fsynced so the rename
 * itself survives power loss.
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "sql.h"
#include "store_queries.h"

/* How long a step that finds the source busy is retried (in WAL a reader
 * is only kept waiting by recovery or a checkpoint restart, briefly). */
#define BACKUP_BUSY_RETRIES 200
#define BACKUP_BUSY_SLEEP_MS 25

/* ".tmp-XXXXXX" plus "-journal" for the side files SQLite may create. */
#define BACKUP_SUFFIX_MAX 24

static int sys_error(struct op_error *err, int e, const char *what, const char *path)
{
    return op_error_set(err, -e, NULL, "cannot %s %s: %s", what, path, strerror(e));
}

static int sql_error(struct op_error *err, sqlite3 *db, int rc, const char *what, const char *path)
{
    char step[PATH_MAX + 64];
    snprintf(step, sizeof step, "cannot %s %s", what, path);
    return sql_fail(db, rc, step, err);
}

/* Runs the named query `id` of sql/backup.sql to its end; `what` names the
 * step in err. */
static int exec(struct sql_cache *c, unsigned id, const char *what, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, id, &st, err);
    return rc < 0 ? rc : sql_run_what(c, st, what, err);
}

/* Removes the temporary file and any side file SQLite made next to it. */
static void remove_temp(const char *tmp)
{
    static const char *const sides[] = {"", "-journal", "-wal", "-shm"};
    char path[PATH_MAX + BACKUP_SUFFIX_MAX];
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        int n = snprintf(path, sizeof path, "%s%s", tmp, sides[i]);
        if (n > 0 && (size_t)n < sizeof path)
            (void)unlink(path);
    }
}

static int fsync_dir(const char *path, struct op_error *err)
{
    char dir[PATH_MAX];
    fsutil_dir_of(path, dir, sizeof dir);
    return fsutil_fsync_dir(dir, err);
}

/* DEST must not exist (unless forced), be a directory, or be the source. */
static int check_dest(sqlite3 *src, const char *dest, unsigned flags, struct op_error *err)
{
    struct stat ds;
    if (lstat(dest, &ds) < 0) {
        if (errno == ENOENT)
            return 0; /* a missing directory is reported when we create the temp file */
        return sys_error(err, errno, "use", dest);
    }
    if (S_ISDIR(ds.st_mode))
        return op_error_set(err, -EISDIR, NULL,
                            "cannot write backup to %s: it is a directory; give a file name", dest);
    const char *src_path = sqlite3_db_filename(src, "main");
    struct stat ss;
    if (src_path && *src_path && stat(src_path, &ss) == 0 && stat(dest, &ds) == 0 &&
        ss.st_dev == ds.st_dev && ss.st_ino == ds.st_ino)
        return op_error_set(err, -EINVAL, NULL,
                            "cannot write backup to %s: it is the database being backed up", dest);
    if (!(flags & BACKUP_FORCE))
        return op_error_set(err, -EEXIST, NULL,
                            "cannot write backup to %s: file exists (use --force to replace it)",
                            dest);
    return 0;
}

/* Copies every page of src into dst within the read transaction the caller
 * holds on src. Returns 0 and the page count, or a negative code. */
static int copy_pages(sqlite3 *src, sqlite3 *dst, const char *tmp,
                      const struct backup_options *opts, int *pages, struct op_error *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b)
        return sql_error(err, dst, sqlite3_errcode(dst), "start backup into", tmp);
    int step = opts && opts->step_pages > 0 ? opts->step_pages : BACKUP_STEP_PAGES;
    int busy = 0, rc, code = 0;
    for (;;) {
        rc = sqlite3_backup_step(b, step);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            if (++busy > BACKUP_BUSY_RETRIES)
                break;
            sqlite3_sleep(BACKUP_BUSY_SLEEP_MS);
            continue;
        }
        if (rc != SQLITE_OK && rc != SQLITE_DONE)
            break;
        busy = 0;
        int total = sqlite3_backup_pagecount(b);
        *pages = total;
        if (opts && opts->progress &&
            opts->progress(opts->ctx, total - sqlite3_backup_remaining(b), total)) {
            code = op_error_set(err, -ECANCELED, NULL, "backup cancelled");
            break;
        }
        if (rc == SQLITE_DONE)
            break;
    }
    int frc = sqlite3_backup_finish(b);
    if (code < 0)
        return code;
    if (rc != SQLITE_DONE) {
        /* The step's error is the one that explains; finish repeats it. */
        const char *why = sqlite3_errstr(rc);
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
            why = "the database stayed locked; try again";
        return op_error_set(err, sql_errno(rc) ? sql_errno(rc) : -EIO, NULL,
                            "cannot copy the database into %s: %s", tmp, why);
    }
    if (frc != SQLITE_OK)
        return sql_error(err, dst, frc, "finish backup into", tmp);
    return 0;
}

/* PRAGMA quick_check on a fresh read-only connection to the written file,
 * so that what is checked is what is on disk, not a page cache. */
static int verify_copy(const char *tmp, struct op_error *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int code = sql_error(err, db, rc, "reopen the copy", tmp);
        sqlite3_close(db);
        return code;
    }
    struct sql_cache c;
    int code = sql_cache_init(&c, db, &store_queries, err);
    if (code == 0) {
        sqlite3_stmt *st = sql_get(&c, STORE_Q_BACKUP_COPY_QUICK_CHECK, NULL);
        rc = st ? sqlite3_step(st) : sqlite3_errcode(db);
        if (rc != SQLITE_ROW) {
            code = sql_error(err, db, rc, "verify the copy", tmp);
        } else {
            const char *res = (const char *)sqlite3_column_text(st, 0);
            if (!res || strcmp(res, "ok") != 0)
                code = op_error_set(err, -EBADMSG, NULL,
                                    "cannot verify the copy %s: quick_check says: %s (is the "
                                    "source damaged? run 'outpost check')",
                                    tmp, res ? res : "(nothing)");
        }
    }
    sql_cache_close(&c);
    sqlite3_close(db);
    return code;
}

/* Moves tmp to dest: replacing it when forced, else only if dest still
 * does not exist (it may have appeared while we copied). */
static int install(const char *tmp, const char *dest, unsigned flags, struct op_error *err)
{
    if (flags & BACKUP_FORCE) {
        if (rename(tmp, dest) < 0)
            return sys_error(err, errno, "rename the copy to", dest);
        return 0;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
        return 0;
    int e = errno;
    if (e == EINVAL || e == ENOSYS) {
        /* File system without RENAME_NOREPLACE: link() refuses to replace
         * too, and the unlink only drops the temporary name. */
        if (link(tmp, dest) < 0)
            e = errno;
        else {
            (void)unlink(tmp);
            return 0;
        }
    }
    if (e == EEXIST)
        return op_error_set(err, -EEXIST, NULL,
                            "cannot write backup to %s: file exists (use --force to replace it)",
                            dest);
    return sys_error(err, e, "rename the copy to", dest);
}

int backup_to(sqlite3 *src, const char *dest_path, const struct backup_options *opts,
              struct backup_result *out, struct op_error *err)
{
    unsigned flags = opts ? opts->flags : 0;
    if (!src || !dest_path || !*dest_path)
        return op_error_set(err, -EINVAL, NULL, "cannot write backup: no destination given");
    if (strlen(dest_path) >= PATH_MAX - BACKUP_SUFFIX_MAX)
        return op_error_set(err, -EINVAL, NULL, "cannot write backup: destination path too long");
    if (!sqlite3_get_autocommit(src))
        return op_error_set(err, -EBUSY, NULL,
                            "cannot back up: the source connection is inside a transaction");
    int rc = check_dest(src, dest_path, flags, err);
    if (rc < 0)
        return rc;

    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dest_path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        char dir[PATH_MAX];
        int e = errno;
        fsutil_dir_of(dest_path, dir, sizeof dir);
        if (e == ENOENT || e == ENOTDIR)
            return op_error_set(err, -e, NULL,
                                "cannot write backup to %s: directory %s does not exist", dest_path,
                                dir);
        return op_error_set(err, -e, NULL, "cannot create a temporary file in %s: %s", dir,
                            strerror(e));
    }

    /* Both caches live for this backup only: the copy's PRAGMAs act when
     * they are prepared, and the source is the caller's connection. */
    struct sql_cache sc = {0}, dc = {0};
    sqlite3 *dst = NULL;
    int in_read_txn = 0, pages = 0, page_size = 0;
    struct stat st;
    rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = sql_error(err, dst, rc, "open", tmp);
        goto fail;
    }
    rc = sql_cache_init(&dc, dst, &store_queries, err);
    if (rc == 0)
        rc = sql_cache_init(&sc, src, &store_queries, err);
    if (rc == 0)
        rc = exec(&dc, STORE_Q_BACKUP_COPY_JOURNAL_OFF, "cannot prepare the copy", err);
    if (rc == 0)
        rc = exec(&dc, STORE_Q_BACKUP_COPY_SYNCHRONOUS_OFF, "cannot prepare the copy", err);
    if (rc < 0)
        goto fail;

    /* The snapshot: BEGIN alone takes no lock; the read does. */
    rc = exec(&sc, STORE_Q_BACKUP_SRC_BEGIN, "cannot start reading", err);
    if (rc < 0)
        goto fail;
    in_read_txn = 1;
    rc = exec(&sc, STORE_Q_BACKUP_SRC_READ, "cannot start reading", err);
    if (rc == 0)
        rc = copy_pages(src, dst, tmp, opts, &pages, err);
    (void)exec(&sc, STORE_Q_BACKUP_SRC_END, "end read", NULL);
    in_read_txn = 0;
    sql_cache_close(&sc);
    if (rc < 0)
        goto fail;

    /* The pages carry the source's WAL marker in the header; rollback mode
     * makes the copy a single self-contained file (a restore copies one
     * file, and opening it read-only needs no -shm). */
    rc = exec(&dc, STORE_Q_BACKUP_COPY_JOURNAL_DELETE, "cannot finish the copy", err);
    if (rc < 0)
        goto fail;
    sqlite3_stmt *ps = sql_get(&dc, STORE_Q_BACKUP_COPY_PAGE_SIZE, NULL);
    if (ps && sqlite3_step(ps) == SQLITE_ROW)
        page_size = sqlite3_column_int(ps, 0);
    sql_cache_close(&dc);
    rc = sqlite3_close(dst);
    dst = NULL;
    if (rc != SQLITE_OK) {
        rc = sql_error(err, NULL, rc, "close", tmp);
        goto fail;
    }
    if (fsync(fd) < 0 || fstat(fd, &st) < 0) {
        rc = sys_error(err, errno, "sync", tmp);
        goto fail;
    }
    rc = verify_copy(tmp, err);
    if (rc < 0)
        goto fail;
    rc = install(tmp, dest_path, flags, err);
    if (rc < 0)
        goto fail;
    (void)close(fd);
    rc = fsync_dir(dest_path, err);
    if (rc < 0)
        return rc; /* the copy is in place; only its durability is in doubt */
    if (out) {
        out->pages = pages;
        out->page_size = page_size;
        out->bytes = (int64_t)st.st_size;
    }
    return 0;

fail:
    if (in_read_txn)
        (void)exec(&sc, STORE_Q_BACKUP_SRC_END, "end read", NULL);
    sql_cache_close(&sc);
    sql_cache_close(&dc);
    sqlite3_close(dst);
    (void)close(fd);
    remove_temp(tmp);
    return rc;
}
