/*
 * `outpost import`: load contacts from an RFC 4180 CSV file, all or
 * nothing. The work is importer.c's; this file turns the command line into
 * options, prints each problem once as "outpost import: FILE:LINE:COLUMN
 * (NAME): what", shows progress on a terminal and maps the outcome to an
 * exit code.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "importer.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost import FILE.csv [--db PATH] [--dry-run] [--skip-duplicate-check]\n\n"
            "Import contacts from an RFC 4180 CSV file (UTF-8, comma-separated, first\n"
            "row a header; FILE - reads standard input). Header columns are contact\n"
            "field names (case-insensitive):\n ");
    fprintf(out, " id");
    for (size_t i = 0; i < entity_contact.nfields; i++)
        if (!(entity_contact.fields[i].flags & FIELD_INTERNAL))
            fprintf(out, " %s", entity_contact.fields[i].name);
    fprintf(out,
            "\nplus custom.NAME for custom fields; version, created_at, updated_at and\n"
            "deleted (from an export with --with-meta) are accepted and ignored, except\n"
            "that rows marked deleted are skipped.\n\n"
            "The import is one transaction: any bad row stops it and nothing is\n"
            "changed. Problems are reported as FILE:LINE:COLUMN (NAME): what.\n\n"
            "  --db PATH               database file (default: $OUTPOST_DB, else %s)\n"
            "  --dry-run               check every row, including duplicates, and report\n"
            "                          up to %d problems; change nothing\n"
            "  --skip-duplicate-check  import rows that look like existing contacts\n\n"
            "Exit status: 0 imported, 1 failed (I/O, database), 2 usage, 3 bad input,\n"
            "4 probable duplicate or existing id; on 1, 3 and 4 nothing was changed.\n",
            CLI_DEFAULT_DB, IMPORTER_MAX_ERRORS_DEFAULT);
}

struct ui {
    struct cli_progress progress;
};

static void on_error(void *ctx, int rc, const struct op_error *err)
{
    struct ui *ui = ctx;
    (void)rc;
    cli_progress_done(&ui->progress);
    fprintf(stderr, "outpost import: %s\n", err->msg);
}

static void on_progress(void *ctx, uint64_t rows)
{
    struct ui *ui = ctx;
    cli_progress_tick(&ui->progress, rows);
}

struct args {
    int dry_run, skip_dup;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    unsigned flags =
        (a->dry_run ? IMPORTER_DRY_RUN : 0) | (a->skip_dup ? IMPORTER_SKIP_DUP_CHECK : 0);
    if (c->npos < 1)
        return cli_bad(c, "which file? give the CSV file to import");
    if (c->npos > 1)
        return cli_bad(c, "unexpected argument '%s' (one file at a time)", c->pos[1]);
    const char *file = c->pos[0];
    if (!*file)
        return cli_bad(c, "empty file name");

    FILE *in = stdin;
    const char *name = file;
    if (!strcmp(file, "-")) {
        name = "stdin";
    } else {
        in = fopen(file, "re");
        if (!in) {
            fprintf(stderr, "outpost import: cannot open %s: %s\n", file, strerror(errno));
            return CLI_FAIL;
        }
        struct stat st;
        if (fstat(fileno(in), &st) == 0 && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "outpost import: %s is a directory, not a CSV file\n", file);
            fclose(in);
            return CLI_FAIL;
        }
    }

    struct store *s;
    int ret = cli_open_store("import", c->db_path, 0, &s);
    if (ret != CLI_OK) {
        if (in != stdin)
            fclose(in);
        return ret;
    }
    if (!store_node_id(s)) {
        fprintf(stderr, "outpost import: %s is not initialized; run 'outpost init' first\n",
                c->db_path);
        store_close(s);
        if (in != stdin)
            fclose(in);
        return CLI_FAIL;
    }

    struct ui ui;
    cli_progress_start(&ui.progress, "imported");
    struct importer_opts o = {
        .name = name,
        .flags = flags,
        .on_error = on_error,
        .on_progress = on_progress,
        .ctx = &ui,
    };
    struct importer_result res;
    struct op_error err;
    int rc = importer_run(s, in, &o, &res, &err);
    cli_progress_done(&ui.progress);
    store_close(s);
    if (in != stdin)
        fclose(in);

    if (rc < 0) {
        if (flags & IMPORTER_DRY_RUN)
            fprintf(stderr, "outpost import: dry run: %zu problem%s found, nothing changed\n",
                    res.errors, res.errors == 1 ? "" : "s");
        else
            fprintf(stderr,
                    "outpost import: nothing imported from %s; the database is "
                    "unchanged\n",
                    name);
        return cli_exit_for(rc);
    }

    char skipped[128] = "";
    if (res.skipped_deleted && res.skipped_empty)
        snprintf(skipped, sizeof skipped,
                 " (%" PRIu64 " deleted and %" PRIu64 " empty rows skipped)", res.skipped_deleted,
                 res.skipped_empty);
    else if (res.skipped_deleted)
        snprintf(skipped, sizeof skipped, " (%" PRIu64 " deleted rows skipped)",
                 res.skipped_deleted);
    else if (res.skipped_empty)
        snprintf(skipped, sizeof skipped, " (%" PRIu64 " empty rows skipped)", res.skipped_empty);
    if (flags & IMPORTER_DRY_RUN)
        printf("dry run: %" PRIu64 " contacts would be imported, nothing changed%s\n", res.imported,
               skipped);
    else
        printf("imported %" PRIu64 " contacts from %s%s\n", res.imported, name, skipped);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_FLAG("dry-run", struct args, dry_run),
    CLI_FLAG("skip-duplicate-check", struct args, skip_dup),
    CLI_OPT_END,
};

const struct cli_command cmd_import = {
    CLI_COMMAND("import", "import contacts from an RFC 4180 CSV file", run, usage, opts,
                struct args),
};
