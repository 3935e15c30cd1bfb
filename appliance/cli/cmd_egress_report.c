/*
 * `outpost egress-report`: a dry run of egress over the whole database.
 * Every live record of every entity goes through egress_project (the same
 * function sync will use) under the region's policy and the node's
 * pseudonymization key; the report says per entity and field how many
 * values would leave as is, pseudonymized, or not at all, and --output
 * writes the projections themselves for a compliance officer. Nothing is
 * sent; the only possible write is the node's key, made on first use for
 * a node initialized before keys existed (docs/EGRESS.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "buf.h"
#include "cli.h"
#include "fsutil.h"
#include "egress.h"
#include "node_policy.h"
#include "policy.h"
#include "residency.h"
#include "timefmt.h"

/* Distinct custom and unknown keys reported per entity; the rest share a
 * row, so a database full of stray custom keys cannot blow up the report. */
#define EXTRA_ROWS_MAX 200

struct row {
    char field[96];
    const char *label; /* class name, "internal" or "unknown" */
    uint64_t n[EGRESS_OUTCOME_COUNT];
};

struct entity_report {
    const struct entity_def *e;
    struct buf rows;  /* struct row after struct row, as rows_of reads them */
    size_t extra;     /* rows added for keys no field or custom field describes */
    struct row other; /* keys past EXTRA_ROWS_MAX */
    struct egress_counts counts;
    uint64_t related; /* withheld whole: about a withheld contact, organization or deal */
    uint64_t expired; /* withheld whole: past the policy's retention, not yet purged */
};

struct run {
    struct store *s;
    int64_t now_ms; /* retention is judged at this instant */
    const struct policy *p;
    const unsigned char *key;
    struct entity_report *cur;
    FILE *out;
    uint64_t written;
    struct cli_progress progress;
    uint64_t done;
    int oom;
    struct op_error err;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost egress-report [--db PATH] [--policy FILE] [--output FILE]\n\n"
            "A dry run of egress: project every live record (tombstones are not included)\n"
            "with the region policy and the node's pseudonymization key, exactly as sync\n"
            "would, and print per entity and field how many values would leave as is,\n"
            "pseudonymized, or not at all, and how many records would be withheld whole\n"
            "(restricted or pinned). Nothing is sent.\n\n"
            "  --db PATH      database file (default: $OUTPOST_DB, else %s)\n"
            "  --policy FILE  the policy to apply, for example a draft (default:\n"
            "                 $OUTPOST_POLICY, else a policy HQ sent, else the installed\n"
            "                 profile of the node's region);\n"
            "                 it must be for the node's region\n"
            "  --output FILE  also write the projected records, one JSON object per line:\n"
            "                 {\"entity\":...,\"record\":{...}}, atomically, mode 0600\n\n"
            "Exit status: 0 ok, 1 failed (database, writing, no policy), 2 usage,\n"
            "3 invalid policy file.\n",
            CLI_DEFAULT_DB);
}

/* The rows of er, *n of them (the buffer's bytes are malloc'd, so aligned
 * for struct row). */
static struct row *rows_of(const struct entity_report *er, size_t *n)
{
    *n = er->rows.len / sizeof(struct row);
    return (struct row *)(void *)er->rows.data;
}

static struct row *add_row(struct entity_report *er, const char *field, const char *label)
{
    struct row r = {.label = label};
    snprintf(r.field, sizeof r.field, "%s", field);
    if (buf_append(&er->rows, &r, sizeof r) < 0)
        return NULL;
    size_t n;
    return &rows_of(er, &n)[n - 1];
}

/* Every described field and every declared custom field gets a row, so the
 * report shows each one's class even when no record has a value. */
static int report_init(struct entity_report *er, const struct policy *p, const struct entity_def *e)
{
    memset(er, 0, sizeof *er);
    er->e = e;
    buf_init(&er->rows, (e->nfields + p->ncustom + EXTRA_ROWS_MAX) * sizeof(struct row));
    snprintf(er->other.field, sizeof er->other.field, "(other keys)");
    er->other.label = "-";
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        if (!strcmp(f->name, "custom"))
            continue;
        const char *label = (f->flags & FIELD_INTERNAL)
                                ? "internal"
                                : policy_class_name(policy_class_of(p, e, f->name));
        if (!add_row(er, f->name, label))
            return -ENOMEM;
    }
    for (size_t i = 0; i < p->ncustom; i++) {
        if (p->custom[i].entity != e)
            continue;
        char name[96];
        snprintf(name, sizeof name, "custom.%s", p->custom[i].name);
        if (!add_row(er, name, policy_class_name(policy_class_of(p, e, name))))
            return -ENOMEM;
    }
    return 0;
}

static void on_value(void *ctx, const struct egress_event *ev)
{
    struct run *r = ctx;
    struct entity_report *er = r->cur;
    size_t nrows;
    struct row *rows = rows_of(er, &nrows), *row = NULL;
    for (size_t i = 0; i < nrows && !row; i++)
        if (!strcmp(rows[i].field, ev->field))
            row = &rows[i];
    if (!row && er->extra >= EXTRA_ROWS_MAX) {
        row = &er->other;
    } else if (!row) {
        const char *label = ev->reason == EGRESS_UNKNOWN_FIELD ? "unknown"
                            : ev->reason == EGRESS_INTERNAL    ? "internal"
                                                               : policy_class_name(ev->cls);
        row = add_row(er, ev->field, label);
        if (!row) {
            r->oom = 1;
            return;
        }
        er->extra++;
    }
    row->n[ev->outcome]++;
}

static int on_record(void *ctx, json_t *record)
{
    struct run *r = ctx;
    struct egress_record *out = NULL;
    /* The relation rules, as the segmenter applies them (residency.h). */
    enum residency_verdict v = RESIDENCY_KEEP;
    int rc = residency_judge(store_residency(r->s), r->p, r->cur->e, record, &v, &r->err);
    if (rc < 0)
        return rc;
    if (v != RESIDENCY_WITHHOLD && egress_expired(r->p, r->cur->e, record, r->now_ms) != 0) {
        r->cur->expired++;
        r->cur->counts.records++;
        cli_progress_tick(&r->progress, ++r->done);
        return 0;
    }
    if (v == RESIDENCY_WITHHOLD && !egress_withheld(r->p, r->cur->e, record)) {
        r->cur->related++;
        r->cur->counts.records++;
        cli_progress_tick(&r->progress, ++r->done);
        return 0;
    }
    json_t *copy = NULL;
    if (v == RESIDENCY_DROP_CONTACT) {
        copy = json_deep_copy(record);
        if (!copy)
            return op_error_set(&r->err, -ENOMEM, NULL, "out of memory");
        residency_apply(v, copy);
        record = copy;
    }
    rc = egress_project_traced(r->p, r->key, r->cur->e, record, &out, &r->cur->counts, on_value, r,
                               &r->err);
    json_decref(copy);
    if (rc < 0)
        return rc;
    if (r->oom) {
        egress_record_free(out);
        return op_error_set(&r->err, -ENOMEM, NULL, "out of memory");
    }
    if (out && r->out) {
        /* The entity name comes from the descriptor; the record is exactly
         * the bytes egress would send. */
        if (fprintf(r->out, "{\"entity\":\"%s\",\"record\":%s}\n", r->cur->e->name,
                    egress_record_json(out)) < 0) {
            int e = errno ? errno : EIO;
            egress_record_free(out);
            return op_error_set(&r->err, -e, NULL, "cannot write the output: %s", strerror(e));
        }
        r->written++;
    }
    egress_record_free(out);
    cli_progress_tick(&r->progress, ++r->done);
    return 0;
}

static void print_row(const struct row *w)
{
    printf("  %-28s %-15s %10" PRIu64 " %14" PRIu64 " %10" PRIu64 "\n", w->field, w->label,
           w->n[EGRESS_AS_IS], w->n[EGRESS_PSEUDONYMIZED], w->n[EGRESS_WITHHELD]);
}

static void print_entity(const struct entity_report *er)
{
    const struct egress_counts *c = &er->counts;
    printf("\n%s: %" PRIu64 " records, %" PRIu64 " would leave, %" PRIu64
           " withheld whole (%" PRIu64 " restricted, %" PRIu64 " pinned",
           er->e->plural, c->records, c->records_out,
           c->records_restricted + c->records_pinned + er->related + er->expired,
           c->records_restricted, c->records_pinned);
    if (er->related)
        printf(", %" PRIu64 " about a withheld record", er->related);
    if (er->expired)
        printf(", %" PRIu64 " past retention", er->expired);
    printf(")\n");
    printf("  %-28s %-15s %10s %14s %10s\n", "field", "class", "as-is", "pseudonymized",
           "withheld");
    size_t nrows;
    const struct row *rows = rows_of(er, &nrows);
    for (size_t i = 0; i < nrows; i++)
        print_row(&rows[i]);
    const struct row *w = &er->other;
    if (w->n[0] + w->n[1] + w->n[2])
        print_row(w);
}

/* Loads the policy to apply, by the node's one precedence (node_policy.h:
 * --policy, $OUTPOST_POLICY, a policy HQ sent through the mailbox, the
 * region's profile), so the report shows what sync would send; prints why
 * not and returns an exit code. */
static int load_policy(const char *opt, const char *db_path, const char *region,
                       struct policy **out)
{
    struct op_error err;
    op_error_clear(&err);
    int rc = node_policy_load(opt, db_path, region, out, &err);
    if (rc == -ENOENT) {
        fprintf(stderr,
                "outpost egress-report: no region policy for %s: %s (install it, or name a "
                "policy file with --policy)\n",
                region, err.msg);
        return CLI_FAIL;
    }
    if (rc < 0) {
        fprintf(stderr, "outpost egress-report: %s%s\n",
                strstr(err.msg, "is the policy of") ? "" : "invalid region policy: ", err.msg);
        return rc == -EINVAL && !strstr(err.msg, "is the policy of") ? CLI_BADINPUT : CLI_FAIL;
    }
    return CLI_OK;
}

struct args {
    const char *policy, *output;
};

/* Exit codes of failures after the policy loaded: the database's, never
 * "bad input" or "not found". */
static const struct cli_exit_rule fail_rules[] = {
    {-EINVAL, CLI_FAIL}, {-ENOENT, CLI_FAIL}, {0, CLI_EXIT_FOR}};

/* The aggregate egress ledger: every aggregate that left, newest first
 * (docs/AGGREGATES.md); the first AGG_LISTED are listed. */
#define AGG_LISTED 50

/* What report_aggregates counts: rows, and refusals among them. */
struct agg_count {
    uint64_t rows, refused;
};

/* One row: an answer with the count of its suppressed cells, or a
 * refusal (no cells left, only the reason; docs/AGGREGATES.md). */
static int print_aggregate(const struct aggregate_egress_row *r, void *ctx)
{
    struct agg_count *n = ctx;
    json_t *body = json_loads(r->body, 0, NULL);
    const char *refused = json_string_value(json_object_get(body, "refused"));
    if (refused)
        n->refused++;
    if (n->rows++ >= AGG_LISTED) {
        json_decref(body);
        return 0;
    }
    char when[40];
    if (timefmt_iso_ms(r->sent_ms, when, sizeof when) < 0)
        snprintf(when, sizeof when, "?");
    unsigned hidden = 0;
    for (const char *q = r->body; (q = strstr(q, "\"s\":\"")) != NULL; q++)
        hidden++;
    printf("  %s %s %s via %s to %s", when, r->name, r->params, r->via, r->requester);
    if (r->segment_no >= 0)
        printf(" in segment %" PRId64, r->segment_no);
    if (refused) {
        printf(", policy %.12s, refused (no cells): %s\n", r->policy_hash, refused);
        json_decref(body);
        return 0;
    }
    printf(", policy %.12s, %u cells suppressed", r->policy_hash, hidden);
    /* calibrated noise: the epsilon the answer spent from which period's
     * budget (once, when it was first kept; sending it again is free) */
    const json_t *z = json_object_get(body, "noise");
    if (z)
        printf(", noisy: epsilon %g of the %s privacy budget",
               json_number_value(json_object_get(z, "epsilon")),
               json_string_value(json_object_get(z, "period"))
                   ? json_string_value(json_object_get(z, "period"))
                   : "?");
    json_decref(body);
    printf("\n");
    return 0;
}

static int report_aggregates(struct store *s, struct op_error *err)
{
    struct agg_count n = {0, 0};
    printf("\naggregates that left (newest first):\n");
    int rc = aggregate_egress_each(s, UINT32_MAX, print_aggregate, &n, err);
    if (rc < 0)
        return rc;
    printf("aggregates sent: %" PRIu64 " (%" PRIu64 " of them refusals)%s\n", n.rows, n.refused,
           n.rows > AGG_LISTED ? " (the newest 50 listed)" : "");
    return 0;
}

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    const char *policy_file = a->policy, *output = a->output;

    /* Opened for writing only so that a node from before pseudonymization
     * keys gets one; the walk itself only reads. */
    const char *path = c->db_path;
    struct store *s = NULL;
    struct op_error err;
    op_error_clear(&err);
    int ret = cli_open_plain("egress-report", path, 0, &s);
    if (ret != CLI_OK)
        return ret;
    const char *region = store_region(s);
    if (!region) {
        fprintf(stderr, "outpost egress-report: %s is not initialized; run 'outpost init' first\n",
                path);
        store_close(s);
        return CLI_FAIL;
    }
    struct policy *p = NULL;
    ret = load_policy(policy_file, path, region, &p);
    if (ret != CLI_OK) {
        store_close(s);
        return ret;
    }
    unsigned char key[EGRESS_KEY_BYTES];
    int rc = store_pseudonym_key(s, key, &err);
    if (rc < 0) {
        policy_free(p);
        store_close(s);
        return cli_fail_by("egress-report", rc, &err, fail_rules);
    }

    struct run r = {.s = s, .p = p, .key = key, .now_ms = (int64_t)time(NULL) * 1000};
    op_error_clear(&r.err);
    char tmp[PATH_MAX] = "";
    int fd = -1;
    struct entity_report reports[16];
    size_t nrep = 0;
    if (output) {
        int n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", output);
        if (n < 0 || (size_t)n >= sizeof tmp) {
            tmp[0] = '\0';
            rc = op_error_set(&r.err, -ENAMETOOLONG, NULL, "output path too long: %s", output);
            goto done;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0 || fchmod(fd, 0600) < 0 || !(r.out = fdopen(fd, "w"))) {
            int e = errno;
            rc = op_error_set(&r.err, -e, NULL, "cannot create %s: %s", tmp, strerror(e));
            goto done;
        }
    }

    cli_progress_start(&r.progress, "projected");
    for (size_t i = 0; entity_all[i] && nrep < sizeof reports / sizeof reports[0]; i++) {
        if (entity_all[i]->flags & ENTITY_NODE_LOCAL)
            continue; /* never leaves: egress_project refuses it */
        rc = report_init(&reports[nrep], p, entity_all[i]);
        nrep++;
        if (rc < 0) {
            op_error_set(&r.err, rc, NULL, "out of memory");
            break;
        }
        r.cur = &reports[nrep - 1];
        rc = store_each(s, entity_all[i], 0, on_record, &r, &r.err);
        if (rc < 0)
            break;
    }
    cli_progress_done(&r.progress);
    if (rc < 0)
        goto done;

    if (r.out) {
        if (fflush(r.out) != 0 || fsync(fileno(r.out)) < 0) {
            int e = errno;
            rc = op_error_set(&r.err, -e, NULL, "cannot write %s: %s", tmp, strerror(e));
            goto done;
        }
        FILE *f = r.out;
        r.out = NULL;
        fd = -1;
        if (fclose(f) != 0 || rename(tmp, output) < 0) {
            int e = errno;
            rc = op_error_set(&r.err, -e, NULL, "cannot write %s: %s", output, strerror(e));
            goto done;
        }
        tmp[0] = '\0';
        char dir[PATH_MAX];
        fsutil_dir_of(output, dir, sizeof dir);
        rc = fsutil_fsync_dir(dir, &r.err);
        if (rc < 0)
            goto done;
    }

    struct egress_counts total = {0};
    uint64_t related = 0, expired = 0;
    for (size_t i = 0; i < nrep; i++) {
        egress_counts_add(&total, &reports[i].counts);
        related += reports[i].related;
        expired += reports[i].expired;
    }
    printf("egress report (dry run: nothing was sent)\n");
    printf("node:   %s, region %s\n", store_node_id(s), region);
    printf("policy: %s\n", p->path);
    printf("hash:   %s\n", p->hash);
    printf("transfer of local_primary copies: %s (%s)\n",
           p->transfer_allowed ? "allowed" : "not allowed", p->transfer_basis);
    printf("live records only; tombstones are not included\n");
    for (size_t i = 0; entity_all[i]; i++)
        if (entity_all[i]->flags & ENTITY_NODE_LOCAL)
            printf("%s: node-local, never leave the node whatever the policy\n",
                   entity_all[i]->plural);
    for (size_t i = 0; i < nrep; i++)
        print_entity(&reports[i]);
    uint64_t as_is = 0, pseud = 0, held = total.unknown + total.internal;
    for (int k = 0; k < POLICY_CLASS_COUNT; k++) {
        as_is += total.values[k][EGRESS_AS_IS];
        pseud += total.values[k][EGRESS_PSEUDONYMIZED];
        held += total.values[k][EGRESS_WITHHELD];
    }
    printf("\ntotal: %" PRIu64 " records, %" PRIu64 " would leave, %" PRIu64
           " withheld whole (%" PRIu64 " restricted, %" PRIu64 " pinned",
           total.records, total.records_out,
           total.records_restricted + total.records_pinned + related + expired,
           total.records_restricted, total.records_pinned);
    if (related)
        printf(", %" PRIu64 " about a withheld record", related);
    if (expired)
        printf(", %" PRIu64 " past retention", expired);
    printf("); values: %" PRIu64 " as-is, %" PRIu64 " pseudonymized, %" PRIu64 " withheld\n", as_is,
           pseud, held);
    if (output)
        printf("projected records: %s (%" PRIu64 " lines)\n", output, r.written);
    rc = report_aggregates(s, &r.err);

done:
    explicit_bzero(key, sizeof key);
    if (r.out)
        fclose(r.out);
    else if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    for (size_t i = 0; i < nrep; i++)
        buf_done(&reports[i].rows);
    policy_free(p);
    store_close(s);
    if (rc < 0)
        return cli_fail_by("egress-report", rc, &r.err, fail_rules);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_FILE("policy", struct args, policy),
    CLI_FILE("output", struct args, output),
    CLI_OPT_END,
};

const struct cli_command cmd_egress_report = {
    CLI_COMMAND("egress-report", "dry run: what would leave the node under the policy", run, usage,
                opts, struct args),
    .flags = CLI_NO_ARGS,
};
