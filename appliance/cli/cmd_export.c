/*
 * `outpost export`: write contacts as CSV (the format `outpost import`
 * reads back) or as vCard 4.0, to standard output or atomically to a file.
 * The work is exporter.c's; this file parses the command line, shows
 * progress on a terminal and maps the outcome to an exit code.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "exporter.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost export [--db PATH] [--format csv|vcard] [--output FILE]\n"
            "                      [--include-deleted] [--with-meta] [--raw-cells]\n\n"
            "Export contacts. CSV (the default) is RFC 4180 with CRLF line ends and a\n"
            "header row: id, the contact fields, then one custom.NAME column per custom\n"
            "field in use. A text cell that a spreadsheet would run as a formula (it\n"
            "begins with = + - @, TAB or CR, phone numbers such as +49... included) is\n"
            "written quoted with a single quote in front (\"'=1+1\") so that it shows\n"
            "as text. Such a file is for people; for one that `outpost import` reads\n"
            "back into the same records, use --raw-cells.\n\n"
            "  --db PATH          database file (default: $OUTPOST_DB, else %s)\n"
            "  --format FORMAT    csv (default) or vcard (vCard 4.0)\n"
            "  --output FILE      write to FILE atomically (mode 0600) instead of\n"
            "                     standard output\n"
            "  --include-deleted  include deleted contacts (tombstones)\n"
            "  --with-meta        CSV: add version, created_at, updated_at, deleted\n"
            "  --raw-cells        CSV: write every value exactly as stored, without the\n"
            "                     formula guard (for re-import and scripts; do not\n"
            "                     open such a file in a spreadsheet)\n\n"
            "Exit status: 0 ok, 1 failed (database, writing), 2 usage.\n",
            CLI_DEFAULT_DB);
}

static void on_progress(void *ctx, uint64_t n)
{
    cli_progress_tick(ctx, n);
}

struct args {
    int format; /* EXPORTER_CSV, EXPORTER_VCARD: the order of the choices */
    const char *output;
    int include_deleted, with_meta, raw_cells;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    const char *output = a->output;
    struct exporter_opts o = {
        .format = a->format == 1 ? EXPORTER_VCARD : EXPORTER_CSV,
        .include_deleted = a->include_deleted,
        .with_meta = a->with_meta,
        .raw_cells = a->raw_cells,
    };
    if (o.with_meta && o.format != EXPORTER_CSV)
        return cli_bad(c, "--with-meta applies to CSV only");
    if (o.raw_cells && o.format != EXPORTER_CSV)
        return cli_bad(c, "--raw-cells applies to CSV only");

    struct store *s;
    int ret = cli_open_store("export", c->db_path, DB_OPEN_READONLY, &s);
    if (ret != CLI_OK)
        return ret;

    struct cli_progress progress;
    cli_progress_start(&progress, "exported");
    o.on_progress = on_progress;
    o.ctx = &progress;
    struct op_error err;
    uint64_t n = 0;
    int rc;
    if (output) {
        rc = exporter_to_file(s, output, &o, &n, &err);
    } else {
        rc = exporter_run(s, stdout, &o, &n, &err);
        errno = 0;
        if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
            int e = errno ? errno : EIO;
            rc = op_error_set(&err, -e, NULL, "cannot write to standard output: %s", strerror(e));
        }
    }
    cli_progress_done(&progress);
    store_close(s);
    if (rc < 0) {
        static const struct cli_exit_rule rules[] = {{-EINVAL, CLI_USAGE}, {0, CLI_FAIL}};
        return cli_fail_by("export", rc, &err, rules);
    }
    if (output)
        printf("exported %" PRIu64 " contacts to %s\n", n, output);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_CHOICE("format", struct args, format, "csv", "vcard"),
    CLI_FILE("output", struct args, output),
    CLI_FLAG("include-deleted", struct args, include_deleted),
    CLI_FLAG("with-meta", struct args, with_meta),
    CLI_FLAG("raw-cells", struct args, raw_cells),
    CLI_OPT_END,
};

const struct cli_command cmd_export = {
    CLI_COMMAND("export", "export contacts as CSV or vCard 4.0", run, usage, opts, struct args),
    .flags = CLI_NO_ARGS,
};
