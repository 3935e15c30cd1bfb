/*
 * `outpost backup DEST`: write a consistent, verified copy of the node
 * database while outpostd keeps running (see backup.h for how). The source
 * is opened read-only and without migrating, so a backup never changes the
 * database it copies, whatever its schema version.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "cli.h"
#include "db.h"

/* Set by SIGINT/SIGTERM; the progress callback turns it into a clean
 * cancel, so an interrupted backup removes its temporary file. The one
 * piece of global state here: a signal handler has nowhere else to write. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost backup DEST [--db PATH] [--force]\n\n"
            "Write a consistent copy of the node database to the file DEST. Safe while\n"
            "outpostd runs: the copy is one snapshot, checked with PRAGMA quick_check\n"
            "before it is renamed into place, and DEST is never left half-written.\n\n"
            "  --db PATH  database to copy (default: $OUTPOST_DB, else %s)\n"
            "  --force    replace DEST if it exists\n\n"
            "To restore: stop outpostd, 'outpost restore DEST', start outpostd.\n"
            "Exit codes: 0 written, 1 failed (DEST unchanged), 2 usage, 4 DEST exists\n"
            "(use --force).\n",
            CLI_DEFAULT_DB);
}

static int on_progress(void *ctx, int copied, int total)
{
    struct cli_progress *p = ctx;
    if (total > 0) {
        cli_progress_total(p, (uint64_t)total, "pages");
        cli_progress_tick(p, (uint64_t)copied);
    }
    return interrupted ? 1 : 0;
}

struct args {
    int force;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    if (c->npos < 1)
        return cli_bad(c, "DEST is required (the file to write the copy to)");
    if (c->npos > 1)
        return cli_bad(c, "unexpected argument '%s'", c->pos[1]);
    const char *dest = c->pos[0];
    if (!*dest)
        return cli_bad(c, "DEST is empty");
    const char *path = c->db_path;

    struct op_error err;
    op_error_clear(&err);
    sqlite3 *db = NULL;
    int rc = db_open(path, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &db, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost backup: %s\n", err.msg);
        return CLI_FAIL;
    }
    /* db_open lets an empty SQLite file through (it could become one);
     * there is nothing of ours to back up in it. */
    int app_id = 0;
    (void)db_application_id(db, &app_id);
    if (app_id != DB_APPLICATION_ID) {
        fprintf(stderr, "outpost backup: cannot back up %s: not an Outpost database\n", path);
        db_close(db);
        return CLI_FAIL;
    }

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, &old_int);
    (void)sigaction(SIGTERM, &sa, &old_term);

    struct cli_progress prog;
    cli_progress_start(&prog, "copied");
    struct backup_options bo = {
        .flags = a->force ? BACKUP_FORCE : 0, .progress = on_progress, .ctx = &prog};
    struct backup_result res;
    uint64_t start = cli_now_ms();
    rc = backup_to(db, dest, &bo, &res, &err);
    uint64_t ms = cli_now_ms() - start;
    db_close(db);
    (void)sigaction(SIGINT, &old_int, NULL);
    (void)sigaction(SIGTERM, &old_term, NULL);
    cli_progress_done(&prog);

    if (rc == -ECANCELED) {
        fprintf(stderr, "outpost backup: cannot write backup to %s: interrupted (%s unchanged)\n",
                dest, dest);
        return CLI_FAIL;
    }
    if (rc < 0) {
        static const struct cli_exit_rule rules[] = {
            {-EEXIST, CLI_CONFLICT}, {-EINVAL, CLI_USAGE}, {-EISDIR, CLI_USAGE}, {0, CLI_FAIL}};
        return cli_fail_by("backup", rc, &err, rules);
    }
    printf("backup written to %s (%d pages, %lld bytes) in %.1f s\n", dest, res.pages,
           (long long)res.bytes, (double)ms / 1000.0);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_FLAG("force", struct args, force),
    CLI_OPT_END,
};

/* Options may follow DEST, as in the usage line. */
const struct cli_command cmd_backup = {
    CLI_COMMAND("backup", "write a consistent copy of the database", run, usage, opts, struct args),
};
