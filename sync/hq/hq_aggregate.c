/*
 * Combining aggregate answers at HQ; see hq_aggregate.h. Answers are read
 * from the store as records of entity "aggregate" (one per node and
 * aggregate: the latest segment's), joined with the nodes' regions.
 */
#include "hq_aggregate.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "timefmt.h"

struct collect {
    const char *name;
    json_t *answers; /* node name -> answer */
    json_t *regions; /* node name -> region */
    int oom;
};

static int node_row(void *ctx, const struct hq_node *n)
{
    struct collect *c = ctx;
    if (!n->revoked && json_object_set_new(c->regions, n->name, json_string(n->region)) < 0)
        c->oom = 1;
    return 0;
}

static int answer_row(void *ctx, const struct hq_record_row *r)
{
    struct collect *c = ctx;
    if (strcmp(r->id, c->name))
        return 0;
    json_t *a = json_loads(r->json, 0, NULL);
    if (a && json_object_set_new(c->answers, r->node, a) < 0)
        c->oom = 1;
    return 0;
}

/* Adds a cell's count into the combined cell; a suppressed or missing
 * one makes the combined cell suppressed, naming the region. */
static int combine_cell(json_t *sum, const json_t *cell, const char *region)
{
    const json_t *n = json_object_get(cell, "n");
    json_t *in = json_object_get(sum, "in");
    if (json_is_integer(n) && !in) {
        json_int_t v = json_integer_value(json_object_get(sum, "n"));
        return json_object_set_new(sum, "n", json_integer(v + json_integer_value(n)));
    }
    if (json_is_integer(n))
        return 0;
    if (!in) {
        if (json_object_set_new(sum, "n", json_null()) < 0 ||
            json_object_set_new(sum, "s", json_string("suppressed")) < 0 ||
            json_object_set_new(sum, "in", json_array()) < 0)
            return -1;
        in = json_object_get(sum, "in");
    }
    return json_array_append_new(in, json_string(region));
}

static int index_of(const json_t *arr, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), s)) return (int)i;
    return -1;
}

int hq_aggregate_combine(struct hq_store *st, const char *name, int64_t now_ms, int64_t max_age_ms,
                         json_t **out, struct op_error *err)
{
    if (max_age_ms <= 0)
        max_age_ms = HQ_AGGREGATE_MAX_AGE_MS;
    struct collect c = {name, json_object(), json_object(), 0};
    json_t *res = json_object(), *regions = json_array(), *rows = json_array(),
           *cols = json_array(), *combined = json_array();
    int rc = 0;
    if (!c.answers || !c.regions || !res || !regions || !rows || !cols || !combined) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto done;
    }
    if ((rc = st->ops->node_list(st->impl, node_row, &c, err)) < 0 ||
        (rc = st->ops->records_list(st->impl, NULL, "aggregate", answer_row, &c, err)) < 0)
        goto done;
    if (c.oom) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto done;
    }
    if (json_object_size(c.answers) == 0) {
        rc = op_error_set(err, -ENOENT, NULL,
                          "no node has answered %s yet; ask with outpost-hq aggregate-request",
                          name);
        goto done;
    }
    char when[40];
    if (timefmt_iso_ms(now_ms, when, sizeof when) < 0)
        snprintf(when, sizeof when, "?");
    const json_t *shape = NULL;
    /* the union of the columns, in the order first seen */
    const char *node;
    json_t *a;
    json_object_foreach(c.answers, node, a)
    {
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(a, "cols"), j,
                           v) if (index_of(cols, json_string_value(v)) < 0)
            json_array_append(cols, v);
        if (!shape && json_object_get(a, "cols"))
            shape = a;
    }
    const char *region_of;
    json_t *rv;
    json_object_foreach(c.regions, node, rv)
    {
        region_of = json_string_value(rv);
        a = json_object_get(c.answers, node);
        json_t *reg = json_pack("{s:s, s:s}", "node", node, "region", region_of);
        if (!reg) {
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
            goto done;
        }
        json_array_append_new(regions, reg);
        if (!a) {
            json_object_set_new(reg, "status", json_string("no_answer"));
            continue;
        }
        const char *at = json_string_value(json_object_get(a, "computed_at"));
        int64_t at_ms = 0;
        int64_t age = at && timefmt_parse_iso_ms(at, &at_ms) == 0 ? (now_ms - at_ms) / 1000 : -1;
        json_object_set_new(reg, "computed_at", json_string(at ? at : ""));
        json_object_set_new(reg, "age_s", json_integer(age));
        if (json_object_get(a, "refused")) {
            json_object_set_new(reg, "status", json_string("refused"));
            json_object_set(reg, "reason", json_object_get(a, "refused"));
            continue;
        }
        int stale = age < 0 || age * 1000 > max_age_ms;
        json_object_set_new(reg, "status", json_string(stale ? "stale" : "answered"));
        json_object_set(reg, "params", json_object_get(a, "params"));
        const json_t *acols = json_object_get(a, "cols");
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(a, "rows"), i, row)
        {
            const char *key = json_string_value(json_object_get(row, "key"));
            json_t *cells = json_array();
            size_t j;
            json_t *col;
            json_array_foreach(cols, j, col)
            {
                int k = index_of(acols, json_string_value(col));
                json_t *cell =
                    k < 0
                        ? json_pack("{s:i}", "n", 0)
                        : json_deep_copy(json_array_get(json_object_get(row, "cells"), (size_t)k));
                json_array_append_new(cells, cell);
            }
            json_array_append_new(rows, json_pack("{s:s, s:s, s:s?, s:o, s:O}", "region", region_of,
                                                  "node", node, "key", key, "cells", cells, "total",
                                                  json_object_get(row, "total")));
            /* the combined row of this key: stale answers count too (their
             * age is shown), refused ones have no rows */
            json_t *crow = NULL;
            size_t ci;
            json_t *cr;
            json_array_foreach(combined, ci,
                               cr) if (!strcmp(json_string_value(json_object_get(cr, "key")),
                                               key ? key : "")) crow = cr;
            if (!crow) {
                json_t *z = json_array();
                for (size_t q = 0; q < json_array_size(cols); q++)
                    json_array_append_new(z, json_pack("{s:i}", "n", 0));
                crow = json_pack("{s:s, s:o}", "key", key ? key : "", "cells", z);
                json_array_append_new(combined, crow);
            }
            json_array_foreach(cols, j, col)
            {
                int k = index_of(acols, json_string_value(col));
                if (k < 0)
                    continue;
                const json_t *cell = json_array_get(json_object_get(row, "cells"), (size_t)k);
                if (combine_cell(json_array_get(json_object_get(crow, "cells"), j), cell,
                                 region_of) < 0) {
                    rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
                    goto done;
                }
            }
        }
    }
    json_object_set_new(res, "aggregate", json_string(name));
    json_object_set_new(res, "generated_at", json_string(when));
    json_object_set_new(res, "max_age_s", json_integer(max_age_ms / 1000));
    json_object_set(res, "regions", regions);
    if (shape) {
        json_object_set(res, "rows_label", json_object_get(shape, "rows_label"));
        json_object_set(res, "cols_label", json_object_get(shape, "cols_label"));
        json_object_set(res, "value", json_object_get(shape, "value"));
    }
    json_object_set(res, "cols", cols);
    json_object_set(res, "rows", rows);
    json_object_set(res, "combined", combined);
    *out = res;
    res = NULL;
done:
    json_decref(res);
    json_decref(regions);
    json_decref(rows);
    json_decref(cols);
    json_decref(combined);
    json_decref(c.answers);
    json_decref(c.regions);
    return rc;
}

void hq_aggregate_csv_field(FILE *f, const char *s)
{
    if (!s)
        s = "";
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void cell_csv(FILE *f, const char *scope, const char *region, const char *node,
                     const char *status, json_int_t age, const char *row, const char *col,
                     const json_t *cell)
{
    hq_aggregate_csv_field(f, scope);
    fputc(',', f);
    hq_aggregate_csv_field(f, region);
    fputc(',', f);
    hq_aggregate_csv_field(f, node);
    fputc(',', f);
    hq_aggregate_csv_field(f, status);
    fputc(',', f);
    if (age >= 0)
        fprintf(f, "%" JSON_INTEGER_FORMAT, age);
    fputc(',', f);
    hq_aggregate_csv_field(f, row);
    fputc(',', f);
    hq_aggregate_csv_field(f, col);
    fputc(',', f);
    const json_t *n = json_object_get(cell, "n");
    if (json_is_integer(n))
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(n));
    fputc(',', f);
    hq_aggregate_csv_field(f, json_string_value(json_object_get(cell, "s")));
    fputc(',', f);
    const json_t *r = json_object_get(cell, "rate");
    if (json_is_number(r))
        fprintf(f, "%.4f", json_number_value(r));
    fputc(',', f);
    const json_t *sum = json_object_get(cell, "sum");
    if (json_is_integer(sum))
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(sum));
    fputc('\n', f);
}

int hq_aggregate_csv(const json_t *t, FILE *f)
{
    fputs("scope,region,node,status,age_s,row,col,n,mark,rate,sum\n", f);
    const json_t *cols = json_object_get(t, "cols"), *regions = json_object_get(t, "regions");
    size_t i, j, r;
    const json_t *row, *col, *reg;
    json_array_foreach(regions, r, reg)
    {
        const char *st = json_string_value(json_object_get(reg, "status"));
        const char *node = json_string_value(json_object_get(reg, "node"));
        json_int_t age = json_is_integer(json_object_get(reg, "age_s"))
                             ? json_integer_value(json_object_get(reg, "age_s"))
                             : -1;
        if (strcmp(st, "answered") && strcmp(st, "stale")) {
            cell_csv(f, "region", json_string_value(json_object_get(reg, "region")), node, st, age,
                     json_string_value(json_object_get(reg, "reason")), "", NULL);
            continue;
        }
        json_array_foreach(json_object_get(t, "rows"), i, row)
        {
            if (strcmp(json_string_value(json_object_get(row, "node")), node))
                continue;
            json_array_foreach(cols, j, col)
                cell_csv(f, "region", json_string_value(json_object_get(row, "region")), node, st,
                         age, json_string_value(json_object_get(row, "key")),
                         json_string_value(col), json_array_get(json_object_get(row, "cells"), j));
        }
    }
    json_array_foreach(json_object_get(t, "combined"), i, row) json_array_foreach(cols, j, col)
        cell_csv(f, "combined", "", "", "", -1, json_string_value(json_object_get(row, "key")),
                 json_string_value(col), json_array_get(json_object_get(row, "cells"), j));
    return ferror(f) ? -EIO : 0;
}
