/*
 * `outpost retention run [--dry-run]`: purges what the region policy's
 * retention rules say is past its limit, now, and prints per rule what was
 * (or would be) purged. outpostd runs the same purge once a day; this is
 * for an operator who wants it done or previewed at once.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "db.h"
#include "retention.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost retention run [--db PATH] [--dry-run] [--batch N]\n\n"
            "Purge records older than the region policy's retention limits: their personal\n"
            "fields are blanked, they become tombstones (so HQ purges its copy) and the\n"
            "audit log says which rule purged them. Activities age from occurred_at,\n"
            "everything else from its last change.\n\n"
            "  --db PATH    database file (default: $OUTPOST_DB, else %s)\n"
            "  --dry-run    print what would be purged; change nothing\n"
            "  --batch N    records per transaction (1..%d, default %d)\n\n"
            "Exit status: 0 ok, 1 failed, 2 usage.\n",
            CLI_DEFAULT_DB, RETENTION_BATCH_MAX, RETENTION_BATCH_DEFAULT);
}

int cmd_retention(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"dry-run", no_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    struct retention_options o = {0};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'n':
            o.dry_run = 1;
            break;
        case 'b': {
            int64_t v;
            if (cli_parse_int(optarg, 1, RETENTION_BATCH_MAX, &v) < 0)
                return cli_usage_error("retention", "--batch: expected 1 to %d, got '%s'",
                                       RETENTION_BATCH_MAX, optarg);
            o.batch = (unsigned)v;
            break;
        }
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_usage_error("retention", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (argc - optind != 1 || strcmp(argv[optind], "run"))
        return cli_usage_error("retention", "expected 'run'");

    struct store *s;
    int ret = cli_open_store("retention", cli_db_path(db), 0, &s);
    if (ret != CLI_OK)
        return ret;
    const struct policy *p = store_policy(s);
    if (!p) {
        printf("no region policy for %s: nothing to purge\n",
               store_region(s) ? store_region(s) : "this node");
        store_close(s);
        return CLI_OK;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    struct retention_report rep;
    struct op_error err;
    op_error_clear(&err);
    int rc = retention_run(s, p, now, &o, &rep, &err);
    if (rep.nitems == 0)
        printf("the %s policy has no retention rules: nothing to purge\n", p->region);
    for (size_t i = 0; i < rep.nitems; i++) {
        const struct retention_item *it = &rep.items[i];
        printf("%s: %" PRIu64 " %s (older than %u days by %s, before %s; %s)\n", it->entity->plural,
               it->purged, o.dry_run ? "would be purged" : "purged", it->days, it->age_by,
               it->cutoff, it->basis);
    }
    store_close(s);
    if (rc < 0)
        return cli_fail("retention", rc, &err);
    if (rep.nitems)
        printf("%s %" PRIu64 " records\n", o.dry_run ? "would purge" : "purged", rep.total);
    return CLI_OK;
}
