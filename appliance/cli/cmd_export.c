/*
 * `outpost export`: write contacts as CSV (the format `outpost import`
 * reads back) or as vCard 4.0, to standard output or atomically to a file.
 * The work is exporter.c's; this file parses the command line, shows
 * progress on a terminal and maps the outcome to an exit code.
 */
#include <errno.h>
#include <getopt.h>
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
            "                      [--include-deleted] [--with-meta]\n\n"
            "Export contacts. CSV (the default) is RFC 4180 with CRLF line ends and a\n"
            "header row: id, the contact fields, then one custom.NAME column per custom\n"
            "field in use; `outpost import` reads it back into the same records.\n\n"
            "  --db PATH          database file (default: $OUTPOST_DB, else %s)\n"
            "  --format FORMAT    csv (default) or vcard (vCard 4.0)\n"
            "  --output FILE      write to FILE atomically (mode 0600) instead of\n"
            "                     standard output\n"
            "  --include-deleted  include deleted contacts (tombstones)\n"
            "  --with-meta        CSV: add version, created_at, updated_at, deleted\n\n"
            "Exit status: 0 ok, 1 failed (database, writing), 2 usage.\n",
            CLI_DEFAULT_DB);
}

static void on_progress(void *ctx, uint64_t n)
{
    cli_progress_tick(ctx, n);
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"include-deleted", no_argument, NULL, 'D'},
        {"with-meta", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *output = NULL;
    struct exporter_opts o = {.format = EXPORTER_CSV};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'f':
            if (!strcmp(optarg, "csv"))
                o.format = EXPORTER_CSV;
            else if (!strcmp(optarg, "vcard"))
                o.format = EXPORTER_VCARD;
            else
                return cli_usage_error("export", "unknown format '%s' (csv or vcard)", optarg);
            break;
        case 'o':
            if (!*optarg)
                return cli_usage_error("export", "--output needs a file name");
            output = optarg;
            break;
        case 'D':
            o.include_deleted = 1;
            break;
        case 'm':
            o.with_meta = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_usage_error("export", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (o.with_meta && o.format != EXPORTER_CSV)
        return cli_usage_error("export", "--with-meta applies to CSV only");

    struct store *s;
    int ret = cli_open_store("export", cli_db_path(db), DB_OPEN_READONLY, &s);
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
        fprintf(stderr, "outpost export: %s\n", err.msg[0] ? err.msg : strerror(-rc));
        return rc == -EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    if (output)
        printf("exported %" PRIu64 " contacts to %s\n", n, output);
    return CLI_OK;
}
