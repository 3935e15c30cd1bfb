/*
 * `outpost retention run [--dry-run]`: purges what the region policy's
 * retention rules say is past its limit, now, and prints per rule what was
 * (or would be) purged. outpostd runs the same purge once a day; this is
 * for an operator who wants it done or previewed at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "hlc.h"
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

struct args {
    int dry_run;
    int64_t batch;
};

static void on_progress(void *ctx, uint64_t purged)
{
    cli_progress_tick(ctx, purged);
}

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    struct retention_options o = {.dry_run = a->dry_run, .batch = (unsigned)a->batch};
    if (c->npos != 1 || strcmp(c->pos[0], "run"))
        return cli_bad(c, "expected 'run'");

    struct store *s;
    int ret = cli_open_store("retention", c->db_path, 0, &s);
    if (ret != CLI_OK)
        return ret;
    const struct policy *p = store_policy(s);
    if (!p) {
        printf("no region policy for %s: nothing to purge\n",
               store_region(s) ? store_region(s) : "this node");
        store_close(s);
        return CLI_OK;
    }
    uint64_t now = hlc_wall_ms(NULL);
    struct retention_report rep;
    struct op_error err;
    op_error_clear(&err);
    /* On a terminal: count what is due first (a dry run, read-only), so
     * the progress line can say how much is left. */
    struct cli_progress progress;
    cli_progress_start(&progress, "purged");
    if (progress.enabled && !o.dry_run) {
        struct retention_options count = o;
        count.dry_run = 1;
        if (retention_run(s, p, now, &count, &rep, &err) == 0)
            cli_progress_total(&progress, rep.total, "records");
        op_error_clear(&err);
        o.on_progress = on_progress;
        o.ctx = &progress;
    }
    int rc = retention_run(s, p, now, &o, &rep, &err);
    cli_progress_done(&progress);
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

static const struct cli_option opts[] = {
    CLI_FLAG("dry-run", struct args, dry_run),
    CLI_INT("batch", struct args, batch, 1, RETENTION_BATCH_MAX),
    CLI_OPT_END,
};

const struct cli_command cmd_retention = {
    CLI_COMMAND("retention", "purge records past the region policy's retention limits", run, usage,
                opts, struct args),
};
