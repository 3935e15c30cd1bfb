/*
 * `outpost sync verify`: asks outpostd for an anti-entropy check with HQ
 * (docs/SYNC_PROTOCOL.md, "Anti-entropy") and waits for its result. The
 * request is a row in the node database (sync_verify) that outpostd's
 * uplink picks up at its next cycle, as it picks up every change; the CLI
 * then reads the row until the check has run. Exit 0 when node and HQ
 * agree, 7 when they differed (the repairs queued, or drift reported that
 * a person must judge), 1 when the check failed or no result came in time
 * (the request stays queued).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "sync_ledger.h"

#define SYNC_VERIFY_TIMEOUT_S 120

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost sync verify [--db PATH] [--timeout SECONDS] [--json]\n\n"
            "Ask outpostd to compare what HQ holds of this node's records with what it\n"
            "should hold (digests of ranges; about a kilobyte when they agree), and wait\n"
            "for the result. Records that differ are queued again and go out through the\n"
            "usual sync, as egress gives them now; what cannot be settled from here (HQ\n"
            "holds a newer version, or a record this node does not know) is reported.\n"
            "The check runs when no change is in flight; outpostd also runs one every\n"
            "verify_interval seconds (default a day).\n\n"
            "Exit status: 0 node and HQ agree; 7 they differed (repairs queued, or\n"
            "drift reported); 1 the check failed, or no result within the timeout\n"
            "(the request stays queued for outpostd).\n\n"
            "  --db PATH        node database (default: $OUTPOST_DB, else %s)\n"
            "  --timeout S      seconds to wait for the result (default %d)\n"
            "  --json           the result as one JSON object\n",
            CLI_DEFAULT_DB, SYNC_VERIFY_TIMEOUT_S);
}

struct args {
    int64_t timeout;
    int json;
};

static void print_row(const struct sync_verify_row *r, int json)
{
    if (json) {
        json_t *o = json_pack("{sIsssIsIsIsIsIsIsIsIsIss}", "id", (json_int_t)r->id, "result",
                              r->result, "finished_ms", (json_int_t)r->finished_ms, "compared",
                              (json_int_t)r->compared, "hq_records", (json_int_t)r->hq_records,
                              "ranges", (json_int_t)r->ranges, "requests", (json_int_t)r->requests,
                              "bytes", (json_int_t)r->bytes, "drift", (json_int_t)r->drift,
                              "resent", (json_int_t)r->resent, "reported", (json_int_t)r->reported,
                              "detail", r->detail);
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        printf("%s\n", t ? t : "{}");
        free(t);
        return;
    }
    if (!strcmp(r->result, "failed")) {
        printf("check %" PRId64 " failed: %s\n", r->id, r->detail);
        return;
    }
    printf("check %" PRId64 ": %s\n", r->id,
           !strcmp(r->result, "agree")      ? "node and HQ agree"
           : !strcmp(r->result, "repaired") ? "drift found; the records that differed are queued "
                                              "again"
                                            : "drift found that this node cannot repair");
    printf("compared: %" PRIu64 " records here, %" PRIu64 " at HQ\n", r->compared, r->hq_records);
    printf("exchanged: %" PRIu64 " ranges in %" PRIu64 " requests, %" PRIu64 " bytes\n", r->ranges,
           r->requests, r->bytes);
    printf("drift: %" PRIu64 " records differed; %" PRIu64 " queued again; %" PRIu64 " reported\n",
           r->drift, r->resent, r->reported);
    if (r->detail[0])
        printf("reported: %s\n", r->detail);
}

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    int64_t timeout = a->timeout ? a->timeout : SYNC_VERIFY_TIMEOUT_S;
    struct op_error err;
    op_error_clear(&err);
    /* a node without credentials has no daemon that could run the check */
    struct sync_status st;
    if (sync_ledger_status_db(c->db_path, &st, &err) < 0) {
        fprintf(stderr, "outpost sync: verify: %s\n", err.msg);
        return CLI_FAIL;
    }
    if (!st.enabled) {
        fprintf(stderr, "outpost sync: verify: sync is not configured (no hq_credentials in "
                        "outpostd's config, or outpostd has not run with them): there is no HQ "
                        "to compare with; nothing was queued\n");
        return CLI_FAIL;
    }
    op_error_clear(&err);
    int64_t id = 0;
    if (sync_ledger_verify_request_db(c->db_path, &id, &err) < 0) {
        fprintf(stderr, "outpost sync: verify: %s\n", err.msg);
        return CLI_FAIL;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct sync_verify_row r;
    for (;;) {
        op_error_clear(&err);
        int rc = sync_ledger_verify_get_db(c->db_path, id, &r, &err);
        if (rc < 0 && rc != -EBUSY) {
            fprintf(stderr, "outpost sync: verify: %s\n", err.msg);
            return CLI_FAIL;
        }
        if (rc == 0 && r.finished_ms)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= timeout) {
            fprintf(stderr,
                    "outpost sync: verify: no result within %" PRId64 " s: check %" PRId64
                    " stays queued; outpostd runs it when it is syncing and no change is in "
                    "flight ('outpost status' shows the outbox and the spool)\n",
                    timeout, id);
            return CLI_FAIL;
        }
        struct timespec nap = {0, 200 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    print_row(&r, a->json);
    if (!strcmp(r.result, "agree"))
        return CLI_OK;
    return !strcmp(r.result, "failed") ? CLI_FAIL : CLI_DRIFT;
}

static const struct cli_option opts[] = {
    CLI_INT("timeout", struct args, timeout, 1, 86400),
    CLI_FLAG("json", struct args, json),
    CLI_OPT_END,
};

const struct cli_command cmd_sync = {
    CLI_COMMAND("sync", "sync verify: check that HQ holds what it should, and repair", run, usage,
                opts, struct args),
    .subs = (const char *const[]){"verify", NULL},
    .flags = CLI_NO_ARGS,
};
