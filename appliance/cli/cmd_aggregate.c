/*
 * `outpost aggregate list | NAME [KEY=VALUE] [--json]`: shows the admin
 * what an aggregate would send to HQ, after the region policy allowed it
 * and disclosure control suppressed what must not leave
 * (docs/AGGREGATES.md). The answer shown is the one kept for that grid
 * point, so what is seen here is exactly what would leave.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "cli.h"
#include "hlc.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost aggregate list [--db PATH]\n"
            "       outpost aggregate --budget [--db PATH]\n"
            "       outpost aggregate NAME [KEY=VALUE] [--json] [--db PATH]\n\n"
            "Show what an aggregate would send to HQ: the table after the region\n"
            "policy's disclosure control. '*' marks a cell suppressed because it is\n"
            "below the minimum cell size, '+' one suppressed so that the first cannot\n"
            "be recovered from the totals; '-' a rate whose base is too small.\n\n"
            "  list         the shipped aggregates and whether this region allows each\n"
            "  KEY=VALUE    the one grid parameter: as_of=YYYY-MM (snapshots, the\n"
            "               current month), quarter=YYYY-Qn or year=YYYY (ended periods)\n"
            "  --json       print the answer exactly as it would leave\n"
            "  --budget     the privacy budget of calibrated noise (aggregates.noise):\n"
            "               what this period's answers spent and what is left\n"
            "  --db PATH    database file (default: $OUTPOST_DB, else %s)\n\n"
            "Exit status: 0 ok, 1 refused by the policy (or its privacy budget is spent)\n"
            "or failed, 2 usage, 3 a parameter off the grid, 5 no such aggregate.\n",
            CLI_DEFAULT_DB);
}

struct args {
    int json, budget;
};

static void epsilon(char *out, size_t cap, int64_t micro)
{
    snprintf(out, cap, "%" PRId64 ".%06" PRId64, micro / 1000000, micro % 1000000);
    /* 0.500000 -> 0.5, 4.000000 -> 4 */
    size_t len = strlen(out);
    while (len && out[len - 1] == '0')
        out[--len] = '\0';
    if (len && out[len - 1] == '.')
        out[--len] = '\0';
}

static int budget(struct store *s, const struct policy *p)
{
    struct aggregate_budget_state b;
    struct op_error err;
    op_error_clear(&err);
    int rc = aggregate_budget(s, p, hlc_wall_ms(NULL), &b, &err);
    if (rc < 0)
        return cli_fail("aggregate", rc, &err);
    if (!b.on) {
        printf("the %s policy adds no noise to aggregates (aggregates.noise is not set): "
               "answers carry exact counts after suppression and spend no privacy budget\n",
               p ? p->region : "node's");
        return CLI_OK;
    }
    char e[32], tot[32], used[32], left[32];
    epsilon(e, sizeof e, b.epsilon_micro);
    epsilon(tot, sizeof tot, b.budget_micro);
    epsilon(used, sizeof used, b.spent_micro);
    int64_t rest = (int64_t)b.budget_micro - b.spent_micro;
    epsilon(left, sizeof left, rest > 0 ? rest : 0);
    printf("privacy budget of %s (aggregates.noise): geometric noise, epsilon %s per answer, "
           "%s per %s\n",
           p->region, e, tot, policy_noise_period_name(p->noise.period));
    printf("%s: spent %s, left %s (%" PRId64 " more answers)\n", b.period, used, left,
           rest > 0 ? rest / (int64_t)b.epsilon_micro : 0);
    return CLI_OK;
}

static int list(const struct policy *p)
{
    for (size_t i = 0; aggregate_names[i]; i++) {
        struct op_error err;
        op_error_clear(&err);
        if (aggregate_allowed(p, aggregate_names[i], &err) == 0)
            printf("%-34s allowed\n", aggregate_names[i]);
        else
            printf("%-34s refused: %s\n", aggregate_names[i], err.msg);
    }
    /* the ones the profile defines (aggregates.define) */
    for (size_t i = 0; p && i < p->ndefines; i++) {
        struct op_error err;
        op_error_clear(&err);
        if (aggregate_allowed(p, p->defines[i].name, &err) == 0)
            printf("%-34s allowed (defined by the profile)\n", p->defines[i].name);
        else
            printf("%-34s refused: %s\n", p->defines[i].name, err.msg);
    }
    return CLI_OK;
}

static void print_cell(const json_t *c, const char *value)
{
    const json_t *n = json_object_get(c, "n");
    const char *s = json_string_value(json_object_get(c, "s"));
    char buf[64];
    if (json_is_integer(n))
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(n));
    else
        snprintf(buf, sizeof buf, "%s", s && !strcmp(s, "primary") ? "*" : "+");
    if (!strcmp(value, "rate")) {
        const json_t *r = json_object_get(c, "rate");
        size_t len = strlen(buf);
        if (json_is_number(r))
            snprintf(buf + len, sizeof buf - len, " %.1f%%", json_number_value(r) * 100.0);
        else
            snprintf(buf + len, sizeof buf - len, " -");
    } else if (!strcmp(value, "sum")) {
        const json_t *r = json_object_get(c, "sum");
        size_t len = strlen(buf);
        if (json_is_integer(r))
            snprintf(buf + len, sizeof buf - len, " (%" JSON_INTEGER_FORMAT ")",
                     json_integer_value(r));
        else
            snprintf(buf + len, sizeof buf - len, " (-)");
    }
    printf(" %14s", buf);
}

static void print_table(const json_t *a)
{
    const char *value = json_string_value(json_object_get(a, "value"));
    const json_t *cols = json_object_get(a, "cols"), *rows = json_object_get(a, "rows");
    printf("%s for %s (%s), policy %.12s, min cell size %" JSON_INTEGER_FORMAT ", computed %s\n",
           json_string_value(json_object_get(a, "aggregate")),
           json_string_value(json_object_get(a, "region")),
           json_string_value(json_object_get(
               json_object_get(a, "params"),
               json_object_iter_key(json_object_iter((json_t *)json_object_get(a, "params"))))),
           json_string_value(json_object_get(a, "policy_hash")),
           json_integer_value(json_object_get(a, "min_cell_size")),
           json_string_value(json_object_get(a, "computed_at")));
    printf("%-24s", json_string_value(json_object_get(a, "rows_label")));
    size_t j;
    const json_t *v;
    json_array_foreach(cols, j, v) printf(" %14s", json_string_value(v));
    printf(" %14s\n", "total");
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        printf("%-24.24s", json_string_value(json_object_get(row, "key")));
        json_array_foreach(json_object_get(row, "cells"), j, v) print_cell(v, value);
        print_cell(json_object_get(row, "total"), value);
        printf("\n");
    }
    printf("%-24s", "total");
    json_array_foreach(json_object_get(a, "col_totals"), j, v) print_cell(v, value);
    print_cell(json_object_get(a, "total"), value);
    printf("\n");
}

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    if (c->npos < 1 && !a->budget)
        return cli_bad(c, "expected 'list', --budget or an aggregate's name");
    struct store *s;
    int ret = cli_open_store("aggregate", c->db_path, 0, &s);
    if (ret != CLI_OK)
        return ret;
    const struct policy *p = store_policy(s);
    if (a->budget) {
        ret = c->npos == 0 ? budget(s, p) : cli_bad(c, "--budget takes no arguments");
        store_close(s);
        return ret;
    }
    if (!strcmp(c->pos[0], "list")) {
        ret = c->npos == 1 ? list(p) : cli_bad(c, "list takes no arguments");
        store_close(s);
        return ret;
    }
    struct op_error err;
    op_error_clear(&err);
    json_t *ans = NULL;
    int rc = aggregate_answer(s, p, c->pos[0], (const char *const *)c->pos + 1, (size_t)c->npos - 1,
                              hlc_wall_ms(NULL), &ans, &err);
    store_close(s);
    if (rc < 0)
        return cli_fail("aggregate", rc, &err);
    if (a->json) {
        char *text = json_dumps(ans, AGGREGATE_JSON_FLAGS);
        if (text)
            printf("%s\n", text);
        free(text);
    } else {
        print_table(ans);
    }
    json_decref(ans);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_FLAG("json", struct args, json),
    CLI_FLAG("budget", struct args, budget),
    CLI_OPT_END,
};

const struct cli_command cmd_aggregate = {
    CLI_COMMAND("aggregate", "show what an aggregate would send to HQ, after disclosure control",
                run, usage, opts, struct args),
};
