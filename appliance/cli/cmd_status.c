/*
 * `outpost status`: how far this node's sync to HQ has got, read from the
 * database beside a running outpostd (sync_ledger_status_db): the outbox
 * backlog and its age, the spool against its cap, the last acknowledged
 * segment, goodput and the time to drain, why sync is stopped, errors by
 * kind, a policy from HQ that waits for acceptance at the node, and the
 * last anti-entropy check with HQ (sync_ledger_verify_get_db).
 * Read-only; needs no credentials.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "db.h"
#include "hlc.h"
#include "policy_change.h"
#include "sync_ledger.h"

/* A policy from HQ waiting for acceptance (policy_change_pending). */
struct pending {
    int found;
    uint64_t seq;
    int64_t received_ms;
    char hash[POLICY_HASH_HEX]; /* "" when it no longer loads */
    char summary[POLICY_CHANGE_SUMMARY_MAX];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost status [--db PATH] [--json]\n\n"
            "Show the state of sync to HQ as outpostd recorded it: changes queued in\n"
            "the outbox and the age of the oldest, the spool (bytes, segments, cap;\n"
            "an ALARM line when it is full), the last successful sync, goodput, the\n"
            "estimated time to drain, why sync is blocked or waiting (sync window,\n"
            "daily budget), errors by kind, and a policy from HQ that loosens the\n"
            "policy in force and waits for acceptance (see 'outpost policy'), and\n"
            "the last check that HQ holds what it should ('outpost sync verify').\n"
            "Read-only; safe while outpostd runs.\n\n"
            "  --db PATH  node database (default: $OUTPOST_DB, else %s)\n"
            "  --json     one JSON object instead of lines\n",
            CLI_DEFAULT_DB);
}

/* "42s", "5m", "3h", "2d" */
static void fmt_age(char *out, size_t cap, double s)
{
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, cap, "%.0fs", s);
    else if (s < 7200)
        snprintf(out, cap, "%.0fm", s / 60);
    else if (s < 172800)
        snprintf(out, cap, "%.1fh", s / 3600);
    else
        snprintf(out, cap, "%.1fd", s / 86400);
}

static int print_json(const struct sync_status *s, const struct pending *pp,
                      const struct sync_verify_row *v, int64_t now)
{
    json_t *errs = json_object();
    for (size_t i = 0; i < s->nerrors; i++)
        json_object_set_new(errs, s->errors[i].kind, json_integer((json_int_t)s->errors[i].n));
    json_t *o = json_pack(
        "{sbsssssIsIsIsIsIsbsIsIsIsIsIsIsfsfsIsssssosI}", "enabled", s->enabled, "node_id",
        s->node_id, "region", s->region, "outbox_depth", (json_int_t)s->outbox_depth,
        "oldest_unsent_ms", (json_int_t)s->oldest_unsent_ms, "oldest_unsent_age_s",
        (json_int_t)(s->oldest_unsent_ms ? (now - s->oldest_unsent_ms) / 1000 : 0), "spool_bytes",
        (json_int_t)s->spool_bytes, "spool_segments", (json_int_t)s->spool_segments, "spool_full",
        s->spool_full, "spool_cap", (json_int_t)s->spool_cap, "acked_urgent",
        (json_int_t)s->acked_urgent, "acked_ordinary", (json_int_t)s->acked_ordinary,
        "next_segment", (json_int_t)s->next_segment, "segments_acked",
        (json_int_t)s->segments_acked, "segments_rejected", (json_int_t)s->segments_rejected,
        "goodput_bps", s->goodput_bps, "eta_s", s->eta_s, "last_sync_ms",
        (json_int_t)s->last_sync_ms, "blocked", s->blocked, "last_error", s->last_error, "errors",
        errs, "bytes_today", (json_int_t)s->bytes_today);
    if (!o)
        return CLI_FAIL;
    json_object_set_new(o, "mailbox_after", json_integer((json_int_t)s->mailbox_after));
    json_object_set_new(o, "bytes_sent_today", json_integer((json_int_t)s->bytes_sent_today));
    json_object_set_new(o, "bytes_resent_today", json_integer((json_int_t)s->bytes_resent_today));
    json_object_set_new(o, "receipts_inline", json_integer((json_int_t)s->receipts_inline));
    json_object_set_new(o, "mailbox_skipped", json_integer((json_int_t)s->mailbox_skipped));
    json_object_set_new(o, "waiting", json_string(s->waiting));
    json_t *ups = json_array();
    for (size_t i = 0; i < s->nuploads; i++)
        json_array_append_new(ups, json_pack("{sIsIsI}", "segment", (json_int_t)s->uploads[i].no,
                                             "at_hq", (json_int_t)s->uploads[i].at_hq, "bytes",
                                             (json_int_t)s->uploads[i].bytes));
    json_object_set_new(o, "uploads", ups);
    json_object_set_new(o, "policy_pending",
                        pp->found ? json_pack("{sIsssIss}", "seq", (json_int_t)pp->seq, "hash",
                                              pp->hash, "received_ms", (json_int_t)pp->received_ms,
                                              "summary", pp->summary)
                                  : json_null());
    json_object_set_new(
        o, "verify",
        v->id ? json_pack("{sIsIsssssIsIsIsIsIsIsIsIss}", "id", (json_int_t)v->id, "finished_ms",
                          (json_int_t)v->finished_ms, "origin", v->origin, "result", v->result,
                          "compared", (json_int_t)v->compared, "hq_records",
                          (json_int_t)v->hq_records, "ranges", (json_int_t)v->ranges, "requests",
                          (json_int_t)v->requests, "bytes", (json_int_t)v->bytes, "drift",
                          (json_int_t)v->drift, "resent", (json_int_t)v->resent, "reported",
                          (json_int_t)v->reported, "detail", v->detail)
              : json_null());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return CLI_FAIL;
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}

static void print_verify(const struct sync_verify_row *v, int64_t now)
{
    if (!v->id) {
        printf("verify: no check with HQ yet ('outpost sync verify')\n");
        return;
    }
    char age[32];
    fmt_age(age, sizeof age, (double)(now - v->finished_ms) / 1000.0);
    if (!strcmp(v->result, "failed")) {
        printf("verify: the last check (%s ago) failed: %s\n", age, v->detail);
        return;
    }
    printf("verify: last check %s ago: %s; %" PRIu64 " records here, %" PRIu64 " at HQ; %" PRIu64
           " ranges, %" PRIu64 " bytes; %" PRIu64 " differed, %" PRIu64 " queued again, %" PRIu64
           " reported%s%s\n",
           age, v->result, v->compared, v->hq_records, v->ranges, v->bytes, v->drift, v->resent,
           v->reported, v->detail[0] ? ": " : "", v->detail);
}

static void print_lines(const struct sync_status *s, const struct pending *pp,
                        const struct sync_verify_row *v, int64_t now)
{
    char age[32];
    if (!s->enabled)
        printf("sync: not configured (no hq_credentials in outpostd's config, or outpostd "
               "has not run with them)\n");
    else
        printf("sync: node %s, region %s\n", s->node_id, s->region);
    if (pp->found) {
        char pa[32];
        fmt_age(pa, sizeof pa, (double)(now - pp->received_ms) / 1000.0);
        printf("policy: a policy from HQ waits for acceptance at the node (policy message "
               "%" PRIu64 ", %s ago, sha256 %s): %s; sync goes on under the policy in force; "
               "see 'outpost policy show'\n",
               pp->seq, pa, pp->hash[0] ? pp->hash : "(no longer valid)", pp->summary);
    }
    if (s->outbox_depth > 0) {
        fmt_age(age, sizeof age, (double)(now - s->oldest_unsent_ms) / 1000.0);
        printf("outbox: %" PRId64 " changes queued, oldest %s old\n", s->outbox_depth, age);
    } else {
        printf("outbox: empty\n");
    }
    if (!s->enabled)
        return;
    printf("spool: %" PRIu64 " bytes in %" PRIu64 " segments (cap %" PRIu64 " bytes)\n",
           s->spool_bytes, s->spool_segments, s->spool_cap);
    for (size_t i = 0; i < s->nuploads; i++)
        printf("%s segment %" PRIu64 " (%" PRIu64 " of %" PRIu64 " bytes at HQ)%s",
               i ? "," : "uploads:", s->uploads[i].no, s->uploads[i].at_hq, s->uploads[i].bytes,
               i + 1 == s->nuploads ? "\n" : "");
    if (s->spool_full)
        printf("ALARM: sync spool full: segmenting is stopped until HQ acknowledges segments\n");
    if (s->last_sync_ms) {
        fmt_age(age, sizeof age, (double)(now - s->last_sync_ms) / 1000.0);
        printf("last sync: %s ago (%" PRIu64 " segments acknowledged, %" PRIu64 " rejected)\n", age,
               s->segments_acked, s->segments_rejected);
    } else {
        printf("last sync: never\n");
    }
    if (s->goodput_bps > 0)
        printf("goodput: %.0f bytes/s\n", s->goodput_bps);
    else
        printf("goodput: unknown (nothing confirmed yet)\n");
    if (s->eta_s >= 0) {
        fmt_age(age, sizeof age, s->eta_s);
        printf("time to drain: %s\n", age);
    } else {
        printf("time to drain: unknown\n");
    }
    printf("sent today: %" PRIu64 " bytes acknowledged by HQ (%" PRIu64 " on the wire, %" PRIu64
           " of them sent again after cuts)\n",
           s->bytes_today, s->bytes_sent_today, s->bytes_resent_today);
    if (s->receipts_inline || s->mailbox_skipped)
        printf("round trips saved: %" PRIu64 " receipts came with the last PATCH, %" PRIu64
               " mailbox checks skipped (HQ said nothing was new)\n",
               s->receipts_inline, s->mailbox_skipped);
    if (s->blocked[0])
        printf("blocked: %s\n", s->blocked);
    if (s->waiting[0])
        printf("waiting: %s\n", s->waiting);
    if (s->nerrors) {
        printf("errors:");
        for (size_t i = 0; i < s->nerrors; i++)
            printf("%s %s %" PRIu64, i ? "," : "", s->errors[i].kind, s->errors[i].n);
        printf("\n");
    }
    if (s->last_error[0])
        printf("last error: %s\n", s->last_error);
    print_verify(v, now);
}

static int read_pending(const char *path, struct pending *out)
{
    struct store *st = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = store_open(path, DB_OPEN_READONLY, &st, &err);
    struct policy_pending pp;
    int found = 0;
    if (rc == 0)
        rc = policy_change_pending(st, &pp, &found, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost status: %s\n", err.msg);
        store_close(st);
        return rc;
    }
    if (found) {
        out->found = 1;
        out->seq = pp.seq;
        out->received_ms = pp.received_ms;
        snprintf(out->hash, sizeof out->hash, "%s", pp.p ? pp.p->hash : "");
        snprintf(out->summary, sizeof out->summary, "%s", pp.reason);
    }
    policy_pending_done(&pp);
    store_close(st);
    return 0;
}

struct args {
    int json;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    const char *path = c->db_path;
    struct sync_status s;
    struct op_error err;
    op_error_clear(&err);
    int rc = sync_ledger_status_db(path, &s, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost status: %s\n", err.msg[0] ? err.msg : "cannot read the database");
        return CLI_FAIL;
    }
    struct pending pp = {0};
    if (read_pending(path, &pp) < 0)
        return CLI_FAIL;
    struct sync_verify_row v = {0};
    op_error_clear(&err);
    rc = sync_ledger_verify_get_db(path, 0, &v, &err);
    if (rc < 0) /* none yet (or a database outpostd has not upgraded): no check to show */
        memset(&v, 0, sizeof v);
    int64_t now = (int64_t)hlc_wall_ms(NULL);
    if (a->json)
        return print_json(&s, &pp, &v, now);
    print_lines(&s, &pp, &v, now);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_FLAG("json", struct args, json),
    CLI_OPT_END,
};

const struct cli_command cmd_status = {
    CLI_COMMAND("status", "sync to HQ: backlog, spool, last sync, goodput, errors", run, usage,
                opts, struct args),
    .flags = CLI_NO_ARGS,
};
