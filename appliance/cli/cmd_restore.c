/*
 * `outpost restore BACKUP`: put a backup in place of the node database,
 * checked first, with the database it replaces kept aside. The
 * invariants: nothing is changed unless the backup passes `outpost check`
 * (a schema older than this build's is fine: outpostd migrates it) and no
 * process has the database open (outpostd must be stopped: restoring under
 * it would hand it a file it does not expect); the database path holds at
 * every moment either the old database or the verified copy, never a
 * half-written file, because the copy is written beside it (backup_to:
 * temporary file, fsync, rename) and then exchanged with it in one
 * renameat2(RENAME_EXCHANGE); and the old database survives whole as
 * DB.replaced-YYYYMMDD-HHMMSS (its -wal beside it when it had one that
 * could not be checkpointed), so a restore can be undone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "check.h"
#include "cli.h"
#include "db.h"
#include "fsutil.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost restore BACKUP [--db PATH]\n\n"
            "Replace the node database with the backup file BACKUP (from 'outpost\n"
            "backup' or the nightly job in /var/lib/outpost/backups), safely:\n"
            "  1. BACKUP is checked as 'outpost check' would; one that fails, or that a\n"
            "     newer Outpost wrote, is refused;\n"
            "  2. the restore is refused while any process (outpostd) has the database\n"
            "     open: stop it first (systemctl stop outpostd);\n"
            "  3. a verified copy of BACKUP is written beside the database and swapped\n"
            "     with it in one step; the old database is kept as\n"
            "     PATH.replaced-YYYYMMDD-HHMMSS (UTC) with its -wal, if any.\n"
            "Then start outpostd; a backup from an older Outpost is migrated as it\n"
            "opens it. Changes made after the backup was taken are gone on this node.\n\n"
            "  --db PATH  the database to replace (default: $OUTPOST_DB, else %s)\n\n"
            "Exit codes: 0 restored, 1 refused or failed (nothing changed), 2 usage.\n",
            CLI_DEFAULT_DB);
}

static void print_problem(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "  %s\n", line);
}

/* Another process with path open: its pid and name in who, 1; else 0.
 * Reads /proc/PID/fd of every process this user may look at (all of them
 * as root; the daemon's user sees outpostd's). */
static int held_open(const char *path, char *who, size_t cap)
{
    char real[PATH_MAX], wal[PATH_MAX + 8];
    if (!realpath(path, real))
        return 0;
    snprintf(wal, sizeof wal, "%s-wal", real);
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int found = 0;
    struct dirent *p;
    long self = (long)getpid();
    while (!found && (p = readdir(proc))) {
        char *end;
        long pid = strtol(p->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        char fddir[64];
        snprintf(fddir, sizeof fddir, "/proc/%ld/fd", pid);
        DIR *fds = opendir(fddir);
        if (!fds)
            continue;
        struct dirent *f;
        while ((f = readdir(fds))) {
            char link[400], target[PATH_MAX];
            if (f->d_name[0] == '.')
                continue;
            snprintf(link, sizeof link, "%s/%s", fddir, f->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, real) && strcmp(target, wal))
                continue;
            char comm[64] = "?", cpath[64];
            snprintf(cpath, sizeof cpath, "/proc/%ld/comm", pid);
            FILE *cf = fopen(cpath, "re");
            if (cf) {
                if (fgets(comm, sizeof comm, cf))
                    comm[strcspn(comm, "\n")] = '\0';
                fclose(cf);
            }
            snprintf(who, cap, "process %ld (%s)", pid, comm);
            found = 1;
            break;
        }
        closedir(fds);
    }
    closedir(proc);
    return found;
}

/* Checks BACKUP as `outpost check` does; 0 when it may be restored. */
static int verify(const char *backup, int *version)
{
    struct op_error err;
    op_error_clear(&err);
    sqlite3 *db = NULL;
    int rc = db_open(backup, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &db, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost restore: %s; nothing changed\n", err.msg);
        return -1;
    }
    int app_id = 0;
    (void)db_application_id(db, &app_id);
    if (app_id != DB_APPLICATION_ID) {
        db_close(db);
        fprintf(stderr, "outpost restore: %s is not an Outpost database; nothing changed\n",
                backup);
        return -1;
    }
    struct check_result res;
    rc = check_run(db, print_problem, NULL, &res, &err);
    db_close(db);
    if (rc < 0) {
        fprintf(stderr, "outpost restore: cannot check %s: %s; nothing changed\n", backup, err.msg);
        return -1;
    }
    if (rc > 0) {
        fprintf(stderr,
                "outpost restore: %s fails the check (%d problem%s, above); nothing changed: "
                "restore an older backup\n",
                backup, res.problems, res.problems == 1 ? "" : "s");
        return -1;
    }
    *version = res.schema_version;
    return 0;
}

/* Moves FROM to TO when FROM exists; 0, or -errno with a message. */
static int move_aside(const char *from, const char *to)
{
    if (rename(from, to) == 0 || errno == ENOENT)
        return 0;
    int e = errno;
    fprintf(stderr, "outpost restore: cannot move %s to %s: %s\n", from, to, strerror(e));
    return -e;
}

static int run(const struct cli_call *c)
{
    if (c->npos < 1)
        return cli_bad(c, "BACKUP is required (the backup file to restore)");
    if (c->npos > 1)
        return cli_bad(c, "unexpected argument '%s'", c->pos[1]);
    const char *backup = c->pos[0], *path = c->db_path;
    if (!*backup)
        return cli_bad(c, "BACKUP is empty");
    struct stat sb, sd;
    if (stat(backup, &sb) < 0) {
        fprintf(stderr, "outpost restore: %s: %s; nothing changed\n", backup, strerror(errno));
        return CLI_FAIL;
    }
    if (stat(path, &sd) == 0 && sb.st_dev == sd.st_dev && sb.st_ino == sd.st_ino)
        return cli_bad(c, "BACKUP is the database itself (%s)", path);

    int version = 0;
    if (verify(backup, &version) < 0)
        return CLI_FAIL;
    char who[128];
    if (held_open(path, who, sizeof who)) {
        fprintf(stderr,
                "outpost restore: %s has %s open: stop it first (systemctl stop outpostd); "
                "nothing changed\n",
                who, path);
        return CLI_FAIL;
    }

    /* The verified copy, beside the database (same file system, so the
     * exchange below is one rename). */
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.restoring", path) >= (int)sizeof tmp)
        return cli_bad(c, "the database path is too long");
    struct op_error err;
    op_error_clear(&err);
    sqlite3 *src = NULL;
    int rc = db_open(backup, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &src, &err);
    if (rc == 0) {
        struct backup_options bo = {.flags = BACKUP_FORCE};
        rc = backup_to(src, tmp, &bo, NULL, &err);
    }
    db_close(src);
    if (rc < 0) {
        fprintf(stderr, "outpost restore: cannot copy %s beside %s: %s; nothing changed\n", backup,
                path, err.msg);
        return CLI_FAIL;
    }

    /* The old database: its log folded in where it can be (a checkpoint;
     * closing the last connection then removes the emptied -wal), so it is
     * one self-contained file; else its -wal goes with it. */
    char stamp[32], aside[PATH_MAX], from[PATH_MAX + 8], to[PATH_MAX + 8];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(aside, sizeof aside, "%s.replaced-%s", path, stamp);
    int had_db = access(path, F_OK) == 0;
    if (had_db) {
        sqlite3 *old = NULL;
        struct op_error ignored;
        if (db_open(path, DB_OPEN_NO_MIGRATE, &old, &ignored) == 0) {
            (void)sqlite3_wal_checkpoint_v2(old, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        }
        db_close(old);
        snprintf(from, sizeof from, "%s-wal", path);
        snprintf(to, sizeof to, "%s-wal", aside);
        if (move_aside(from, to) < 0) {
            (void)unlink(tmp);
            return CLI_FAIL;
        }
        snprintf(from, sizeof from, "%s-shm", path);
        (void)unlink(from); /* an index of the log, rebuilt from it */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) < 0) {
            int e = errno;
            fprintf(stderr, "outpost restore: cannot put %s in place of %s: %s\n", tmp, path,
                    strerror(e));
            (void)unlink(tmp);
            return CLI_FAIL;
        }
        /* tmp now holds the old database */
        if (move_aside(tmp, aside) < 0)
            return CLI_FAIL;
    } else if (rename(tmp, path) < 0) {
        int e = errno;
        fprintf(stderr, "outpost restore: cannot put %s in place of %s: %s\n", tmp, path,
                strerror(e));
        (void)unlink(tmp);
        return CLI_FAIL;
    }
    op_error_clear(&err);
    if (fsutil_fsync_dir_of(path, &err) < 0)
        fprintf(stderr, "outpost restore: warning: %s\n", err.msg);
    printf("restored %s to %s (schema v%d%s)\n", backup, path, version,
           version < db_latest_version() ? ", migrated when outpostd opens it" : "");
    if (had_db)
        printf("the replaced database is %s\n", aside);
    printf("start outpostd again: systemctl start outpostd\n");
    return CLI_OK;
}

struct args {
    int none; /* restore has only the common options */
};

/* Options may follow BACKUP, as in the usage line. */
const struct cli_command cmd_restore = {
    CLI_COMMAND("restore", "replace the database with a checked backup, keeping the old one", run,
                usage, NULL, struct args),
};
