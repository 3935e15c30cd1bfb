/*
 * `outpost import`: load contacts from an RFC 4180 CSV file, all or
 * nothing. The work is importer.c's; this file turns the command line into
 * options, prints each problem once as "outpost import: FILE:LINE:COLUMN
 * (NAME): what", shows progress on a terminal, writes the report file
 * (atomically: complete or absent), prints the summary and maps the
 * outcome to an exit code.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

#include "cli.h"
#include "importer.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost import FILE.csv [--db PATH] [--dry-run]\n"
                 "                      [--on-duplicate skip|update|new] [--report FILE]\n"
                 "                      [--skip-duplicate-check]\n\n"
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
            "  --on-duplicate CHOICE   a row that is a probable duplicate of a contact:\n"
            "                          skip it, update the contact from its non-empty\n"
            "                          cells (at the row's version column if it has one),\n"
            "                          or import it as new; without this option such a row\n"
            "                          stops the import\n"
            "  --report FILE           write a CSV of every row: line, action (create,\n"
            "                          update, skip, new, conflict, error), existing id,\n"
            "                          reason; written in a dry run and on failure too\n"
            "  --skip-duplicate-check  import rows that look like existing contacts\n"
            "                          (the same as --on-duplicate new, without the check)\n\n"
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
    const char *on_duplicate, *report;
};

/* The report file: written to a temporary file beside it, renamed into
 * place when complete. */
struct report_file {
    char path[PATH_MAX], tmp[PATH_MAX];
    FILE *f;
};

static int report_open(struct report_file *r, const char *path)
{
    int n = snprintf(r->tmp, sizeof r->tmp, "%s.tmp-XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof r->tmp) {
        fprintf(stderr, "outpost import: report path too long: %.200s\n", path);
        return CLI_USAGE;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    int fd = mkostemp(r->tmp, O_CLOEXEC);
    if (fd < 0 || !(r->f = fdopen(fd, "w"))) {
        fprintf(stderr, "outpost import: cannot create the report %s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(r->tmp);
        }
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int report_close(struct report_file *r)
{
    errno = 0;
    int bad = fflush(r->f) != 0 || ferror(r->f) || fsync(fileno(r->f)) < 0;
    int e = errno;
    bad |= fclose(r->f) != 0;
    if (!bad && rename(r->tmp, r->path) < 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(r->tmp);
        fprintf(stderr, "outpost import: cannot write the report %s: %s\n", r->path,
                strerror(e ? e : EIO));
        return CLI_FAIL;
    }
    (void)fsutil_fsync_dir_of(r->path, NULL);
    return CLI_OK;
}

static void summary(const struct importer_result *res, int dry)
{
    if (!res->duplicates && !res->warnings)
        return;
    printf("%s%" PRIu64 " probable duplicate%s: %" PRIu64 " skipped, %" PRIu64 " updated, %" PRIu64
           " imported as new, %" PRIu64 " not updated (version conflict); %" PRIu64
           " imported with a warning (same name and locality)\n",
           dry ? "dry run: " : "", res->duplicates, res->duplicates == 1 ? "" : "s",
           res->dup_skipped, res->dup_updated, res->dup_new, res->conflicts, res->warnings);
}

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
    enum importer_on_dup on_dup = IMPORTER_DUP_REFUSE;
    if (a->on_duplicate) {
        if (!strcmp(a->on_duplicate, "skip"))
            on_dup = IMPORTER_DUP_SKIP;
        else if (!strcmp(a->on_duplicate, "update"))
            on_dup = IMPORTER_DUP_UPDATE;
        else if (!strcmp(a->on_duplicate, "new"))
            on_dup = IMPORTER_DUP_NEW;
        else
            return cli_bad(c, "--on-duplicate: expected skip, update or new, not '%s'",
                           a->on_duplicate);
        if (a->skip_dup)
            return cli_bad(c, "--on-duplicate and --skip-duplicate-check do not go together");
    }
    if (a->report && !*a->report)
        return cli_bad(c, "--report: empty file name");

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

    struct report_file rf = {.f = NULL};
    if (a->report && (ret = report_open(&rf, a->report)) != CLI_OK) {
        store_close(s);
        if (in != stdin)
            fclose(in);
        return ret;
    }
    struct ui ui;
    cli_progress_start(&ui.progress, "imported");
    struct importer_opts o = {
        .name = name,
        .flags = flags,
        .on_error = on_error,
        .on_progress = on_progress,
        .ctx = &ui,
        .on_duplicate = on_dup,
        .report = rf.f,
    };
    /* contacts a statement, for measuring (docs/BENCHMARKS.md, "Import");
     * the result is the same for any value */
    const char *batch = getenv("OUTPOST_IMPORT_BATCH_ROWS");
    if (batch && *batch)
        o.batch_rows = strtoul(batch, NULL, 10);
    struct importer_result res;
    struct op_error err;
    int rc = importer_run(s, in, &o, &res, &err);
    cli_progress_done(&ui.progress);
    store_close(s);
    if (in != stdin)
        fclose(in);
    if (rf.f && report_close(&rf) != CLI_OK && rc == 0)
        return CLI_FAIL;
    if (rf.f)
        fprintf(stderr, "outpost import: report written to %s\n", rf.path);

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
    summary(&res, (flags & IMPORTER_DRY_RUN) != 0);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_FLAG("dry-run", struct args, dry_run),
    CLI_FLAG("skip-duplicate-check", struct args, skip_dup),
    CLI_STR("on-duplicate", struct args, on_duplicate),
    CLI_STR("report", struct args, report),
    CLI_OPT_END,
};

const struct cli_command cmd_import = {
    CLI_COMMAND("import", "import contacts from an RFC 4180 CSV file", run, usage, opts,
                struct args),
};
