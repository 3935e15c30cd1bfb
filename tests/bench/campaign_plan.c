/*
 * Campaign planning benchmark (docs/BENCHMARKS.md, "Campaigns"): on a
 * node database made by tests/bench/campaign, creates a campaign over
 * every contact (or the segment given as JSON), times its dry run and
 * then its planning in batches of CAMPAIGN_BATCH, each with the consent
 * ledger's decision per contact, and prints wall and CPU (user + sys)
 * seconds and the figures.
 *
 * usage: bench_campaign_plan DB [SEGMENT-JSON]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "campaign.h"
#include "node_policy.h"
#include "store.h"

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
           (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s DB [SEGMENT-JSON]\n", argv[0]);
        return 2;
    }
    struct op_error err;
    op_error_clear(&err);
    struct store *s = NULL;
    struct policy *p = NULL;
    if (store_open(argv[1], 0, &s, &err) < 0 ||
        node_policy_load(NULL, argv[1], store_region(s), &p, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    json_t *spec = json_pack(
        "{s:s, s:s, s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:s}", "name", "bench", "channel", "email",
        "purpose", "newsletter", "templates", "de", "subject", "Neues für {{given_name}}", "body",
        "Hallo {{name}},\nder Winter ist da.\n", "en", "subject", "News for {{given_name}}", "body",
        "Hello {{name}},\nwinter is here.\n", "fallback_language", "en");
    if (argc == 3)
        json_object_set_new(spec, "segment", json_loads(argv[2], 0, NULL));
    int64_t id = 0;
    if (campaign_create(s, spec, "bench", 0, &id, &err) < 0) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    json_decref(spec);
    double w0 = wall(), c0 = cpu();
    json_t *dry = NULL;
    if (campaign_dry_run(s, p, id, 0, &dry, &err) < 0) {
        fprintf(stderr, "dry run: %s\n", err.msg);
        return 1;
    }
    double w1 = wall(), c1 = cpu();
    char *t = json_dumps(dry, JSON_COMPACT | JSON_SORT_KEYS);
    printf("campaign %lld dry run: %.2f s wall, %.2f s CPU: %s\n", (long long)id, w1 - w0, c1 - c0,
           t);
    free(t);
    json_decref(dry);
    if (campaign_start(s, id, 0, &err) < 0) {
        fprintf(stderr, "start: %s\n", err.msg);
        return 1;
    }
    int done = 0, batches = 0;
    int64_t total = 0;
    w0 = wall();
    c0 = cpu();
    while (!done) {
        int64_t n = 0;
        if (campaign_plan_step(s, p, id, CAMPAIGN_BATCH, 0, &done, &n, &err) < 0) {
            fprintf(stderr, "plan: %s\n", err.msg);
            return 1;
        }
        total += n;
        batches++;
    }
    w1 = wall();
    c1 = cpu();
    printf("planning: %lld contacts in %d batches: %.2f s wall, %.2f s CPU, %.0f contacts/s "
           "(CPU)\n",
           (long long)total, batches, w1 - w0, c1 - c0, c1 > c0 ? (double)total / (c1 - c0) : 0.0);
    json_t *f = NULL;
    if (campaign_figures(s, id, &f, &err) == 0) {
        t = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
        printf("figures: %s\n", t);
        free(t);
        json_decref(f);
    }
    policy_free(p);
    store_close(s);
    return 0;
}
