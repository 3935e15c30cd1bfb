/*
 * `outpost policy show|diff|accept`: the region policy a node obeys, and
 * the one way a policy from HQ that loosens it takes effect: a person at
 * the node reads the difference and accepts that policy by its hash
 * (docs/REGION_POLICY.md, "Policies from HQ"). show and diff only read;
 * accept writes policy-override.yaml and the policy ledger
 * (appliance/policy_change).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "db.h"
#include "node_policy.h"
#include "policy.h"
#include "policy_change.h"
#include "residency.h"
#include "policy_diff.h"
#include "timefmt.h"

/* ledger entries `show` lists */
#define SHOW_LEDGER_MAX 20

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost policy show [--db PATH]\n"
            "       outpost policy diff [--db PATH] [FILE]\n"
            "       outpost policy accept [--db PATH] HASH\n\n"
            "The region policy this node obeys, and policies from HQ. A policy HQ sends\n"
            "takes effect by itself only when it loosens nothing; one that lets more be\n"
            "collected, kept or leave waits until a person here accepts it.\n\n"
            "  show     the policy in force (file, region, SHA-256), the policy from HQ\n"
            "           waiting for acceptance with its differences, and the ledger of\n"
            "           policies from HQ that took effect (who, when, hashes, what)\n"
            "  diff     the differences of FILE, or of the waiting policy, against the\n"
            "           policy in force: one line each, LOOSEN, TIGHTEN or NEUTRAL\n"
            "  accept   put the waiting policy in force; HASH is its SHA-256 as 'show'\n"
            "           prints it (so you accept what you read). Written atomically as\n"
            "           policy-override.yaml beside the database and recorded; outpostd\n"
            "           takes it up at once\n\n"
            "  --db PATH  node database (default: $OUTPOST_DB, else %s)\n\n"
            "Exit status: 0 ok (diff: nothing loosens), 1 failed, 2 usage, 3 FILE or the\n"
            "waiting policy is not a valid policy of this node's region, 4 accept while\n"
            "$OUTPOST_POLICY overrides the file, 5 nothing waits or HASH is not the one\n"
            "waiting, 6 diff: something loosens.\n",
            CLI_DEFAULT_DB);
}

/* ---- helpers -------------------------------------------------------------- */

static void fmt_time(int64_t ms, char *out, size_t cap)
{
    if (timefmt_iso_s(ms, out, cap) < 0)
        snprintf(out, cap, "?");
}

/* Where the policy in force comes from, in words. */
static const char *source_of(const struct policy *p, const char *db_path)
{
    char over[1024];
    const char *env = getenv("OUTPOST_POLICY");
    if (node_policy_override_path(db_path, over, sizeof over) == 0 && !strcmp(p->path, over))
        return "from HQ";
    if (env && *env && !strcmp(p->path, env))
        return "named by $OUTPOST_POLICY";
    return "the region's profile";
}

static void print_diff(const struct policy_diff *d, const char *indent)
{
    /* loosenings first: they are what a person decides on */
    static const enum policy_diff_kind order[] = {POLICY_DIFF_LOOSENS, POLICY_DIFF_TIGHTENS,
                                                  POLICY_DIFF_NEUTRAL};
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < d->n; i++)
            if (d->items[i].kind == order[k])
                printf("%s%-8s %s\n", indent, policy_diff_kind_tag(d->items[i].kind),
                       d->items[i].text);
}

static int open_ro(const char *cmd, const char *path, struct store **s, struct policy **in_force)
{
    int ret = cli_open_store(cmd, path, DB_OPEN_READONLY, s);
    if (ret != CLI_OK)
        return ret;
    if (!store_region(*s)) {
        fprintf(stderr, "outpost %s: %s is not initialized; run 'outpost init'\n", cmd, path);
        store_close(*s);
        return CLI_FAIL;
    }
    struct op_error err;
    op_error_clear(&err);
    if (node_policy_load(NULL, path, store_region(*s), in_force, &err) < 0) {
        fprintf(stderr, "outpost %s: the policy in force cannot be read: %s\n", cmd, err.msg);
        store_close(*s);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* A new policy is in force on this node from now on: nothing cut under
 * the old one may leave, and every record is cut again under the new one
 * (store_policy_changed: the spool voided and its files emptied before
 * this returns). */
static int policy_took_effect(struct store *s, const char *new_hash, const char *why,
                              struct op_error *err)
{
    return store_policy_changed(s, new_hash, why, NULL, err);
}

/* ---- show ------------------------------------------------------------------ */

static int print_entry(void *ctx, const struct policy_ledger_entry *e)
{
    (void)ctx;
    char when[32];
    fmt_time(e->at_ms, when, sizeof when);
    printf("  %s %s by %s (policy message %" PRIu64 "): %s -> %s\n      %s\n", when, e->kind,
           e->actor, e->seq, e->old_hash, e->new_hash, e->summary);
    return 0;
}

static int do_show(const char *path)
{
    struct store *s;
    struct policy *cur = NULL;
    int ret = open_ro("policy show", path, &s, &cur);
    if (ret != CLI_OK)
        return ret;
    printf("policy in force: %s (%s)\n  region %s, sha256 %s\n", cur->path, source_of(cur, path),
           cur->region, cur->hash);
    struct policy_pending pp;
    int found = 0;
    struct op_error err;
    op_error_clear(&err);
    int rc = policy_change_pending(s, &pp, &found, &err);
    if (rc < 0)
        goto fail;
    if (!found) {
        printf("pending from HQ: none\n");
    } else {
        char when[32];
        fmt_time(pp.received_ms, when, sizeof when);
        printf("pending from HQ: policy message %" PRIu64 ", received %s", pp.seq, when);
        if (!pp.p) {
            printf(", not a valid policy for this node:\n  %s\n", pp.load_error);
        } else {
            printf(", sha256 %s\n", pp.p->hash);
            struct policy_diff *d = NULL;
            rc = policy_diff(cur, pp.p, &d, &err);
            if (rc < 0) {
                policy_pending_done(&pp);
                goto fail;
            }
            char sum[128];
            snprintf(sum, sizeof sum, "%zu loosen, %zu tighten, %zu neutral", d->loosens,
                     d->tightens, d->neutral);
            printf("  against the policy in force: %s\n", sum);
            print_diff(d, "  ");
            printf("  to put it in force: outpost policy accept %s\n", pp.p->hash);
            policy_diff_free(d);
        }
    }
    policy_pending_done(&pp);
    uint64_t total = 0;
    printf("policy ledger:\n");
    rc = policy_change_ledger(s, SHOW_LEDGER_MAX, print_entry, NULL, &total, &err);
    if (rc < 0)
        goto fail;
    if (total == 0)
        printf("  no policy from HQ has taken effect\n");
    else if (total > SHOW_LEDGER_MAX)
        printf("  (the newest %d of %" PRIu64 " entries)\n", SHOW_LEDGER_MAX, total);
    policy_free(cur);
    store_close(s);
    return CLI_OK;
fail:
    policy_free(cur);
    store_close(s);
    return cli_fail("policy show", rc, &err);
}

/* ---- diff ------------------------------------------------------------------ */

static int do_diff(const char *path, const char *file)
{
    struct store *s;
    struct policy *cur = NULL, *p = NULL;
    int ret = open_ro("policy diff", path, &s, &cur);
    if (ret != CLI_OK)
        return ret;
    struct op_error err;
    op_error_clear(&err);
    int rc;
    if (file) {
        rc = policy_change_load_file(file, cur->region, &p, &err);
        if (rc < 0) {
            static const struct cli_exit_rule rules[] = {
                {-EINVAL, CLI_BADINPUT}, {-EFBIG, CLI_BADINPUT}, {0, CLI_FAIL}};
            ret = cli_fail_by("policy diff", rc, &err, rules);
            goto out;
        }
    } else {
        struct policy_pending pp;
        int found = 0;
        rc = policy_change_pending(s, &pp, &found, &err);
        if (rc < 0) {
            ret = cli_fail("policy diff", rc, &err);
            goto out;
        }
        if (!found) {
            fprintf(stderr, "outpost policy diff: no policy from HQ waits for acceptance; name a "
                            "FILE to compare\n");
            ret = CLI_NOTFOUND;
        } else if (!pp.p) {
            fprintf(stderr, "outpost policy diff: %s\n", pp.load_error);
            ret = CLI_BADINPUT;
        } else {
            printf("policy message %" PRIu64 " from HQ (sha256 %s)\n", pp.seq, pp.p->hash);
            p = pp.p;
            pp.p = NULL;
        }
        policy_pending_done(&pp);
        if (ret != CLI_OK)
            goto out;
    }
    printf("against the policy in force: %s (sha256 %s)\n", cur->path, cur->hash);
    struct policy_diff *d = NULL;
    rc = policy_diff(cur, p, &d, &err);
    if (rc < 0) {
        ret = cli_fail("policy diff", rc, &err);
        goto out;
    }
    if (!strcmp(cur->hash, p->hash))
        printf("identical to the policy in force\n");
    else if (d->n == 0)
        printf("no differences (only comments or layout differ)\n");
    print_diff(d, "");
    printf("%zu loosen, %zu tighten, %zu neutral\n", d->loosens, d->tightens, d->neutral);
    ret = d->loosens ? CLI_LOOSENS : CLI_OK;
    policy_diff_free(d);
out:
    policy_free(p);
    policy_free(cur);
    store_close(s);
    return ret;
}

/* ---- accept ---------------------------------------------------------------- */

static int is_hash(const char *h)
{
    if (strlen(h) != POLICY_HASH_HEX - 1)
        return 0;
    for (; *h; h++)
        if (!strchr("0123456789abcdefABCDEF", *h))
            return 0;
    return 1;
}

static int do_accept(const char *path, const char *hash)
{
    const char *env = getenv("OUTPOST_POLICY");
    if (env && *env) {
        fprintf(stderr,
                "outpost policy accept: OUTPOST_POLICY names %s, which outranks "
                "policy-override.yaml, so an accepted policy would not be in force; unset it "
                "(and outpostd's policy_file) first\n",
                env);
        return CLI_CONFLICT;
    }
    struct store *s;
    int ret = cli_open_store("policy accept", path, 0, &s);
    if (ret != CLI_OK)
        return ret;
    char actor[128];
    cli_actor(actor, sizeof actor);
    struct policy_accept a;
    struct op_error err;
    op_error_clear(&err);
    int rc = policy_change_accept(s, path, NULL, hash, actor, &a, &err);
    if (rc < 0) {
        store_close(s);
        return cli_fail("policy accept", rc, &err);
    }
    char why[256];
    snprintf(why, sizeof why, "policy message %" PRIu64 " from HQ accepted by %s", a.seq, actor);
    rc = policy_took_effect(s, a.new_hash, why, &err);
    store_close(s);
    printf("accepted policy message %" PRIu64 " from HQ (sha256 %s): %zu loosen, %zu tighten\n",
           a.seq, a.new_hash, a.loosens, a.tightens);
    printf("in force now: %s (was sha256 %s)\n", a.path, a.old_hash);
    if (rc < 0)
        return cli_fail("policy accept", rc, &err);
    return CLI_OK;
}

static int run(const struct cli_call *c)
{
    int n = c->npos;
    char **argv = c->pos;
    const char *sub = n > 0 ? argv[0] : NULL;
    const char *path = c->db_path;
    if (!sub)
        return cli_bad(c, "expected 'show', 'diff' or 'accept'");
    if (!strcmp(sub, "show")) {
        if (n != 1)
            return cli_bad(c, "show takes no arguments");
        return do_show(path);
    }
    if (!strcmp(sub, "diff")) {
        if (n > 2)
            return cli_bad(c, "diff takes at most one FILE");
        return do_diff(path, n == 2 ? argv[1] : NULL);
    }
    if (!strcmp(sub, "accept")) {
        if (n != 2)
            return cli_bad(c, "accept needs the HASH of the waiting policy");
        if (!is_hash(argv[1]))
            return cli_bad(c,
                           "'%.80s' is not a policy hash: 64 hex digits, as 'outpost "
                           "policy show' prints it",
                           argv[1]);
        return do_accept(path, argv[1]);
    }
    return cli_bad(c, "unknown subcommand '%s' (show, diff or accept)", sub);
}

/* show, diff and accept are arguments, not subcommands: options may come
 * first ("outpost policy --db x show"). */
const struct cli_command cmd_policy = {
    .name = "policy",
    .summary = "the region policy in force; accept a policy from HQ that loosens it",
    .run = run,
    .usage = usage,
};
