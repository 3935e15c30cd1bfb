/*
 * `outpost check`: verify a node database (or a backup) without changing
 * it: integrity, foreign keys, the full-text indexes, the schema version
 * and the application id (see check.h). Problems go to stdout, one line
 * each, so the output can be mailed or logged as it is.
 */
#include <errno.h>
#include <stdio.h>

#include "check.h"
#include "cli.h"
#include "db.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost check [--db PATH] [--rebuild-search-index]\n\n"
            "Check the node database without changing it: SQLite integrity, foreign\n"
            "keys, the full-text search indexes against their tables, the schema\n"
            "version and that the file is an Outpost database. Safe while outpostd\n"
            "runs, and on a backup file.\n\n"
            "  --db PATH  database to check (default: $OUTPOST_DB, else %s)\n"
            "  --rebuild-search-index\n"
            "             first rebuild the full-text indexes from the records (the one\n"
            "             repair for a search index a check reports as damaged; writes,\n"
            "             in one transaction), then check\n\n"
            "Prints one line per problem. Exit codes: 0 clean, 1 problems found or the\n"
            "file could not be checked, 2 usage.\n",
            CLI_DEFAULT_DB);
}

static void print_problem(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
}

struct args {
    int rebuild;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    const char *path = c->db_path;

    struct op_error err;
    op_error_clear(&err);
    sqlite3 *db = NULL;
    if (a->rebuild) {
        /* The index is derived data: rebuilding it from the record tables
         * loses nothing. One transaction, so a failure leaves the old one. */
        int rrc = db_open(path, 0, &db, &err);
        if (rrc == 0)
            rrc = check_rebuild_search(db, &err);
        if (rrc < 0) {
            db_close(db);
            fprintf(stderr, "outpost check: %s\n", err.msg);
            return CLI_FAIL;
        }
        db_close(db);
        db = NULL;
        printf("search index rebuilt\n");
    }
    /* Read-only and unmigrated: the check must see the file as it is and
     * leave it so. In WAL mode a read-only connection still reads the
     * latest commits (through the -shm index) and never blocks writers. */
    int rc = db_open(path, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &db, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost check: %s\n", err.msg);
        if (rc == -EBADMSG)
            fprintf(stderr, "outpost check: the file is damaged or not a database; restore the "
                            "latest backup (see 'outpost backup --help')\n");
        return CLI_FAIL;
    }
    struct check_result res;
    rc = check_run(db, print_problem, NULL, &res, &err);
    db_close(db);
    fflush(stdout);
    if (rc < 0) {
        fprintf(stderr, "outpost check: cannot check %s: %s\n", path, err.msg);
        return CLI_FAIL;
    }
    if (rc > 0) {
        printf("check: %d problem%s found in %s\n", res.problems, res.problems == 1 ? "" : "s",
               path);
        return CLI_FAIL;
    }
    if (res.schema_version < db_latest_version())
        printf("check: ok (integrity, foreign keys, search index, schema v%d: older than this "
               "build's v%d, as in a copy from before an upgrade; outpostd migrates it when it "
               "opens it)\n",
               res.schema_version, db_latest_version());
    else
        printf("check: ok (integrity, foreign keys, search index, schema v%d)\n",
               res.schema_version);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_FLAG("rebuild-search-index", struct args, rebuild),
    CLI_OPT_END,
};

const struct cli_command cmd_check = {
    CLI_COMMAND("check", "check database integrity, foreign keys and the search index", run, usage,
                opts, struct args),
    .flags = CLI_NO_ARGS,
};
