/*
 * Aggregates (aggregate.h, docs/AGGREGATES.md): runs a shipped definition
 * over the node's data (streaming rows in index order where the plain
 * query would group a million rows), adds calibrated noise when the
 * policy asks for it, coarsens and protects the table, and keeps the
 * answer (with the privacy budget it spent, in one transaction) so that
 * the same grid point is answered with the same bytes.
 * The invariant: nothing built here holds a record field's value other
 * than a dimension label, and every count, rate and sum in an answer has
 * been through aggregate_protect (after the noise, when there is noise).
 */
#include "aggregate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "entity.h"
#include "sql.h"
#include "store_queries.h"
#include "timefmt.h"

/* ---- the table and its protection ---------------------------------------- */

struct aggregate_table {
    size_t nr, nc;
    char **rows, **cols;
    int64_t *n, *x;           /* (nr + 1) * (nc + 1): cells, then totals */
    unsigned char *mark, *xm; /* enum aggregate_mark per entry */
};

static size_t at(const struct aggregate_table *t, size_t i, size_t j)
{
    return i * (t->nc + 1) + j;
}

static int copy_labels(char ***dst, const char *const *src, size_t n, struct op_error *err)
{
    *dst = calloc(n ? n : 1, sizeof **dst);
    if (!*dst)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (strlen(src[i]) > AGGREGATE_MAX_KEY)
            return op_error_set(err, -EINVAL, NULL, "aggregate label longer than %d bytes",
                                AGGREGATE_MAX_KEY);
        if (!((*dst)[i] = strdup(src[i])))
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    return 0;
}

int aggregate_table_new(const char *const *rows, size_t nrows, const char *const *cols,
                        size_t ncols, struct aggregate_table **out, struct op_error *err)
{
    if (nrows > AGGREGATE_MAX_CELLS || ncols > AGGREGATE_MAX_CELLS ||
        (nrows + 1) * (ncols + 1) > AGGREGATE_MAX_CELLS)
        return op_error_set(err, -E2BIG, NULL,
                            "%zu rows by %zu columns is more than the %d cells a table holds",
                            nrows, ncols, AGGREGATE_MAX_CELLS);
    struct aggregate_table *t = calloc(1, sizeof *t);
    if (!t)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    t->nr = nrows;
    t->nc = ncols;
    size_t cells = (nrows + 1) * (ncols + 1);
    int rc = copy_labels(&t->rows, rows, nrows, err);
    if (rc == 0)
        rc = copy_labels(&t->cols, cols, ncols, err);
    if (rc == 0) {
        t->n = calloc(cells, sizeof *t->n);
        t->x = calloc(cells, sizeof *t->x);
        t->mark = calloc(cells, 1);
        t->xm = calloc(cells, 1);
        if (!t->n || !t->x || !t->mark || !t->xm)
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    if (rc < 0) {
        aggregate_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void aggregate_table_free(struct aggregate_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->rows && i < t->nr; i++)
        free(t->rows[i]);
    for (size_t j = 0; t->cols && j < t->nc; j++)
        free(t->cols[j]);
    free(t->rows);
    free(t->cols);
    free(t->n);
    free(t->x);
    free(t->mark);
    free(t->xm);
    free(t);
}

void aggregate_table_add(struct aggregate_table *t, size_t i, size_t j, int64_t n, int64_t x)
{
    if (i >= t->nr || j >= t->nc)
        return;
    t->n[at(t, i, j)] += n;
    t->x[at(t, i, j)] += x;
}

/* One line of the table: a row (entries (which, 0..nc)) or a column
 * (entries (0..nr, which)); the last entry is the line's total. If exactly
 * one entry is hidden, hides one more: the smallest non-zero shown cell,
 * else the total, else a shown zero cell. Returns 1 if it hid one. */
static int complete_line(const struct aggregate_table *t, const int64_t *v, unsigned char *m,
                         size_t which, int is_row)
{
    size_t len = is_row ? t->nc : t->nr;
    size_t hidden = 0;
    for (size_t e = 0; e <= len; e++)
        hidden += m[is_row ? at(t, which, e) : at(t, e, which)] != AGGREGATE_SHOWN;
    if (hidden != 1)
        return 0;
    size_t best = SIZE_MAX, zero = SIZE_MAX;
    for (size_t e = 0; e < len; e++) {
        size_t idx = is_row ? at(t, which, e) : at(t, e, which);
        if (m[idx] != AGGREGATE_SHOWN)
            continue;
        if (v[idx] > 0 && (best == SIZE_MAX || v[idx] < v[best]))
            best = idx;
        else if (v[idx] <= 0 && zero == SIZE_MAX)
            zero = idx;
    }
    size_t total = is_row ? at(t, which, len) : at(t, len, which);
    if (best == SIZE_MAX && m[total] == AGGREGATE_SHOWN)
        best = total;
    if (best == SIZE_MAX)
        best = zero;
    if (best == SIZE_MAX)
        return 0;
    m[best] = AGGREGATE_SECONDARY;
    return 1;
}

static void complete(const struct aggregate_table *t, const int64_t *v, unsigned char *m)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        for (size_t i = 0; i <= t->nr; i++)
            changed |= complete_line(t, v, m, i, 1);
        for (size_t j = 0; j <= t->nc; j++)
            changed |= complete_line(t, v, m, j, 0);
    }
}

static int small(int64_t v, unsigned k)
{
    return v > 0 && v < (int64_t)k;
}

void aggregate_protect(struct aggregate_table *t, enum aggregate_value v, unsigned k)
{
    if (k < 2)
        k = 2;
    size_t nr = t->nr, nc = t->nc;
    for (size_t i = 0; i <= nr; i++) {
        t->n[at(t, i, nc)] = 0;
        t->x[at(t, i, nc)] = 0;
    }
    for (size_t j = 0; j < nc; j++) {
        t->n[at(t, nr, j)] = 0;
        t->x[at(t, nr, j)] = 0;
    }
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
            int64_t n = t->n[at(t, i, j)], x = t->x[at(t, i, j)];
            t->n[at(t, i, nc)] += n;
            t->x[at(t, i, nc)] += x;
            t->n[at(t, nr, j)] += n;
            t->x[at(t, nr, j)] += x;
            t->n[at(t, nr, nc)] += n;
            t->x[at(t, nr, nc)] += x;
        }
    size_t cells = (nr + 1) * (nc + 1);
    for (size_t e = 0; e < cells; e++)
        t->mark[e] = small(t->n[e], k) ? AGGREGATE_PRIMARY : AGGREGATE_SHOWN;
    complete(t, t->n, t->mark);

    /* The second figure: a sum is shown exactly where its count is (the
     * count's pattern already leaves every line with none or two
     * unknowns); a rate also needs x and n - x to be 0 or >= k, and then
     * its own complementary pass, since the numerators add up too. */
    for (size_t e = 0; e < cells; e++) {
        t->xm[e] = t->mark[e];
        if (v == AGGREGATE_RATE && t->xm[e] == AGGREGATE_SHOWN &&
            (small(t->x[e], k) || small(t->n[e] - t->x[e], k)))
            t->xm[e] = AGGREGATE_PRIMARY;
    }
    if (v == AGGREGATE_RATE)
        complete(t, t->x, t->xm);
    /* The rows of a sum table are per currency: a column total of sums
     * would add currencies, so column totals and the grand total carry a
     * count and no sum. Hiding more keeps every line's unknowns >= 2. */
    if (v == AGGREGATE_SUM)
        for (size_t j = 0; j <= nc; j++)
            t->xm[at(t, nr, j)] = AGGREGATE_SECONDARY;
}

int64_t aggregate_table_n(const struct aggregate_table *t, size_t i, size_t j)
{
    return t->n[at(t, i, j)];
}

enum aggregate_mark aggregate_table_mark(const struct aggregate_table *t, size_t i, size_t j)
{
    return (enum aggregate_mark)t->mark[at(t, i, j)];
}

enum aggregate_mark aggregate_table_xmark(const struct aggregate_table *t, size_t i, size_t j)
{
    return (enum aggregate_mark)t->xm[at(t, i, j)];
}

static const char *mark_name(unsigned char m)
{
    return m == AGGREGATE_PRIMARY ? "primary" : "secondary";
}

static json_t *cell_json(const struct aggregate_table *t, enum aggregate_value v, size_t e)
{
    json_t *c = json_object();
    if (!c)
        return NULL;
    int bad = 0;
    if (t->mark[e] == AGGREGATE_SHOWN) {
        bad |= json_object_set_new(c, "n", json_integer(t->n[e]));
    } else {
        bad |= json_object_set_new(c, "n", json_null());
        bad |= json_object_set_new(c, "s", json_string(mark_name(t->mark[e])));
    }
    if (v == AGGREGATE_RATE) {
        if (t->xm[e] == AGGREGATE_SHOWN && t->n[e] > 0) {
            /* four decimals, rounded half up, in integers (no libm) */
            double r = (double)((t->x[e] * 10000 + t->n[e] / 2) / t->n[e]) / 10000.0;
            bad |= json_object_set_new(c, "rate", json_real(r));
        } else {
            bad |= json_object_set_new(c, "rate", json_null());
            const char *why = t->n[e] == 0                      ? "empty"
                              : t->xm[e] == AGGREGATE_SECONDARY ? "secondary"
                                                                : "small_base";
            bad |= json_object_set_new(c, "rs", json_string(why));
        }
    } else if (v == AGGREGATE_SUM) {
        bad |= json_object_set_new(
            c, "sum", t->xm[e] == AGGREGATE_SHOWN ? json_integer(t->x[e]) : json_null());
    }
    if (bad) {
        json_decref(c);
        return NULL;
    }
    return c;
}

int aggregate_table_json(const struct aggregate_table *t, enum aggregate_value v, json_t *obj)
{
    json_t *cols = json_array(), *rows = json_array(), *ct = json_array();
    int bad = !cols || !rows || !ct;
    for (size_t j = 0; !bad && j < t->nc; j++) {
        bad |= json_array_append_new(cols, json_string(t->cols[j]));
        bad |= json_array_append_new(ct, cell_json(t, v, at(t, t->nr, j)));
    }
    for (size_t i = 0; !bad && i < t->nr; i++) {
        json_t *row = json_object(), *cells = json_array();
        bad |= !row || !cells;
        for (size_t j = 0; !bad && j < t->nc; j++)
            bad |= json_array_append_new(cells, cell_json(t, v, at(t, i, j)));
        if (!bad) {
            bad |= json_object_set_new(row, "key", json_string(t->rows[i]));
            bad |= json_object_set(row, "cells", cells);
            bad |= json_object_set_new(row, "total", cell_json(t, v, at(t, i, t->nc)));
            bad |= json_array_append(rows, row);
        }
        json_decref(cells);
        json_decref(row);
    }
    if (!bad) {
        bad |= json_object_set(obj, "cols", cols);
        bad |= json_object_set(obj, "rows", rows);
        bad |= json_object_set(obj, "col_totals", ct);
        bad |= json_object_set_new(obj, "total", cell_json(t, v, at(t, t->nr, t->nc)));
    }
    json_decref(cols);
    json_decref(rows);
    json_decref(ct);
    return bad ? -ENOMEM : 0;
}

/* ---- the definitions ------------------------------------------------------ */

enum param_kind {
    P_AS_OF,   /* as_of=YYYY-MM: the current month only */
    P_QUARTER, /* quarter=YYYY-Qn: an ended quarter */
    P_YEAR,    /* year=YYYY: an ended year */
};

enum col_kind {
    C_DATA,  /* the columns the data has */
    C_WEEKS, /* every Monday of the period */
    C_MONTHS,
    C_ALL, /* one column */
};

struct def {
    const char *name;
    unsigned query;
    enum aggregate_value value;
    enum param_kind param;
    enum col_kind cols;
    int fold; /* free-text dimensions: fold rows and columns under k into "(other)" */
    const char *rows_label, *cols_label;
    const char *fields[5]; /* "entity.field" it groups by or counts; NULL-ended */
};

static const struct def defs[] = {
    {"contacts_by_segment_district",
     STORE_Q_AGGREGATE_CONTACTS_BY_SEGMENT_DISTRICT,
     AGGREGATE_COUNT,
     P_AS_OF,
     C_DATA,
     1,
     "segment",
     "district",
     {"organization.industry", "contact.region", NULL}},
    {"consent_rates_by_channel_purpose",
     STORE_Q_AGGREGATE_CONSENT_RATES_BY_CHANNEL_PURPOSE,
     AGGREGATE_RATE,
     P_AS_OF,
     C_DATA,
     0,
     "channel",
     "purpose",
     {"consent.channel", "consent.purpose", "consent.status", NULL}},
    {"activities_by_channel_week",
     STORE_Q_AGGREGATE_ACTIVITIES_BY_CHANNEL_WEEK,
     AGGREGATE_COUNT,
     P_QUARTER,
     C_WEEKS,
     0,
     "channel",
     "week",
     {"activity.channel", "activity.occurred_at", NULL}},
    {"pipeline_by_stage_month",
     STORE_Q_AGGREGATE_PIPELINE_BY_STAGE_MONTH,
     AGGREGATE_SUM,
     P_YEAR,
     C_MONTHS,
     0,
     "currency_stage",
     "month",
     {"deal.stage", "deal.currency", "deal.amount_minor", "deal.expected_close", NULL}},
    {"conversion_by_channel",
     STORE_Q_AGGREGATE_CONVERSION_BY_CHANNEL,
     AGGREGATE_RATE,
     P_YEAR,
     C_ALL,
     0,
     "first_channel",
     "all",
     {"deal.stage", "deal.expected_close", "activity.channel", NULL}},
    {"outreach_by_channel_country",
     STORE_Q_AGGREGATE_OUTREACH_BY_CHANNEL_COUNTRY,
     AGGREGATE_RATE,
     P_QUARTER,
     C_DATA,
     0,
     "channel",
     "country",
     {"contact.country", NULL}},
    {"completeness_by_field",
     STORE_Q_AGGREGATE_COMPLETENESS_BY_FIELD,
     AGGREGATE_RATE,
     P_AS_OF,
     C_ALL,
     0,
     "field",
     "all",
     {NULL}},
};
#define NDEFS (sizeof defs / sizeof defs[0])

const char *const aggregate_names[] = {
    "contacts_by_segment_district", "consent_rates_by_channel_purpose",
    "activities_by_channel_week",   "pipeline_by_stage_month",
    "conversion_by_channel",        "outreach_by_channel_country",
    "completeness_by_field",        NULL,
};

/* The contact fields completeness_by_field reports, in the order of the
 * query's columns. */
static const char *const completeness_fields[] = {
    "given_name", "family_name", "email",   "phone",    "street",    "locality",
    "region",     "postal_code", "country", "language", "job_title", "birth_date",
};
#define NCOMPLETE (sizeof completeness_fields / sizeof completeness_fields[0])

static const struct def *def_named(const char *name)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (!strcmp(defs[i].name, name))
            return &defs[i];
    return NULL;
}

static const struct def *def_find(const struct policy *p, const char *name, struct def *tmp);

static void names_joined(char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NDEFS && len < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", defs[i].name);
        if (w < 0)
            return;
        len += (size_t)w;
    }
}

/* The class of "entity.field" in p. */
static enum policy_class class_of(const struct policy *p, const char *qualified)
{
    char ent[32];
    const char *dot = strchr(qualified, '.');
    size_t len = dot ? (size_t)(dot - qualified) : 0;
    if (!dot || len >= sizeof ent)
        return POLICY_LOCAL_ONLY;
    memcpy(ent, qualified, len);
    ent[len] = '\0';
    const struct entity_def *e = entity_by_name(ent);
    return e ? policy_class_of(p, e, dot + 1) : POLICY_LOCAL_ONLY;
}

int aggregate_allowed(const struct policy *p, const char *name, struct op_error *err)
{
    struct def tmp;
    const struct def *d = def_find(p, name, &tmp);
    if (!d) {
        char all[512];
        names_joined(all, sizeof all);
        return op_error_set(err, -ENOENT, NULL,
                            "%s is not a shipped aggregate nor one the %s policy defines "
                            "(aggregates.define); the shipped ones are: %s",
                            name, p ? p->region : "(no)", all);
    }
    if (!p)
        return op_error_set(err, -EPERM, NULL,
                            "%s: no region policy is loaded, so no aggregate may leave", name);
    int listed = 0;
    for (size_t i = 0; i < p->naggregates; i++)
        listed |= !strcmp(p->aggregates[i].name, name);
    if (!listed)
        return op_error_set(err, -EPERM, NULL,
                            "%s is not allowed by the %s policy (aggregates.queries)", name,
                            p->region);
    for (size_t i = 0; d->fields[i]; i++) {
        enum policy_class c = class_of(p, d->fields[i]);
        if (c == POLICY_LOCAL_ONLY)
            return op_error_set(err, -EPERM, NULL,
                                "%s uses %s, which is %s in the %s policy, so it may not leave "
                                "even as a count",
                                name, d->fields[i], policy_class_name(c), p->region);
    }
    return 0;
}

/* ---- parameters: the grid ------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static void day_text(int64_t days, char out[11])
{
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 11, "%04d-%02u-%02u", y, m, d);
}

/* The first Monday on or after `days` (1970-01-01 was a Thursday). */
static int64_t monday_on_or_after(int64_t days)
{
    int64_t wd = ((days + 3) % 7 + 7) % 7; /* 0 = Monday */
    return wd ? days + 7 - wd : days;
}

struct grid {
    char canon[64];        /* "quarter=2026-Q3", the key of the kept answer */
    char from[11], to[11]; /* the query's range, [from, to) */
    int64_t from_day, to_day;
    int year; /* P_YEAR */
};

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int parse_params(const struct def *d, const char *const *params, size_t nparams,
                        uint64_t now_ms, struct grid *g, struct op_error *err)
{
    static const char *const keys[] = {"as_of", "quarter", "year"};
    static const char *const shapes[] = {"as_of=YYYY-MM (the current month)",
                                         "quarter=YYYY-Qn (a quarter that has ended)",
                                         "year=YYYY (a year that has ended)"};
    const char *key = keys[d->param];
    const char *value = NULL;
    for (size_t i = 0; i < nparams; i++) {
        const char *eq = strchr(params[i], '=');
        size_t klen = eq ? (size_t)(eq - params[i]) : strlen(params[i]);
        if (!eq || klen != strlen(key) || strncmp(params[i], key, klen))
            return op_error_set(err, -EINVAL, params[i],
                                "%s: unknown parameter '%.*s'; it takes only %s", d->name,
                                (int)(klen > 64 ? 64 : klen), params[i], shapes[d->param]);
        if (value)
            return op_error_set(err, -EINVAL, params[i], "%s: parameter %s given twice", d->name,
                                key);
        value = eq + 1;
    }
    int64_t today = (int64_t)(now_ms / 86400000u);
    int ny;
    unsigned nm, nd;
    civil_from_days(today, &ny, &nm, &nd);
    memset(g, 0, sizeof *g);
    if (d->param == P_AS_OF) {
        char cur[16];
        snprintf(cur, sizeof cur, "%04d-%02u", ny, nm);
        if (value && strcmp(value, cur))
            return op_error_set(err, -EINVAL, "as_of",
                                "%s: as_of=%.16s is off the grid: a snapshot is answered only "
                                "for the current month (%s)",
                                d->name, value, cur);
        snprintf(g->canon, sizeof g->canon, "as_of=%s", cur);
        return 0;
    }
    int y;
    unsigned q = 0;
    if (d->param == P_QUARTER) {
        if (value) {
            if (strlen(value) != 7 || !digits(value, 4) || value[4] != '-' || value[5] != 'Q' ||
                value[6] < '1' || value[6] > '4')
                return op_error_set(err, -EINVAL, "quarter",
                                    "%s: quarter=%.16s is not of the form YYYY-Qn (n 1 to 4)",
                                    d->name, value);
            y = (value[0] - '0') * 1000 + (value[1] - '0') * 100 + (value[2] - '0') * 10 +
                (value[3] - '0');
            q = (unsigned)(value[6] - '0');
        } else {
            /* the last quarter that has ended */
            q = (nm - 1) / 3; /* the current quarter, 0-based: last is q (1-based) */
            y = ny;
            if (q == 0) {
                q = 4;
                y--;
            }
        }
        int64_t qs = days_from_civil(y, 3 * (q - 1) + 1, 1);
        int64_t qe = q == 4 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, 3 * q + 1, 1);
        if (qe > today)
            return op_error_set(err, -EINVAL, "quarter",
                                "%s: quarter=%04d-Q%u has not ended; only ended quarters are on "
                                "the grid",
                                d->name, y, q);
        g->from_day = monday_on_or_after(qs);
        g->to_day = monday_on_or_after(qe);
        snprintf(g->canon, sizeof g->canon, "quarter=%04d-Q%u", y, q);
    } else {
        if (value) {
            if (strlen(value) != 4 || !digits(value, 4))
                return op_error_set(err, -EINVAL, "year", "%s: year=%.16s is not of the form YYYY",
                                    d->name, value);
            y = (value[0] - '0') * 1000 + (value[1] - '0') * 100 + (value[2] - '0') * 10 +
                (value[3] - '0');
        } else {
            y = ny - 1;
        }
        if (y >= ny || y < 1970)
            return op_error_set(err, -EINVAL, "year",
                                "%s: year=%04d is off the grid: only ended years from 1970 are "
                                "answered",
                                d->name, y);
        g->from_day = days_from_civil(y, 1, 1);
        g->to_day = days_from_civil(y + 1, 1, 1);
        g->year = y;
        snprintf(g->canon, sizeof g->canon, "year=%04d", y);
    }
    day_text(g->from_day, g->from);
    day_text(g->to_day, g->to);
    return 0;
}

/* ---- running a definition --------------------------------------------------- */

struct raw {
    char *r, *c;
    int64_t n, x;
};

struct raws {
    struct raw *v;
    size_t len, cap;
};

static void raws_done(struct raws *rs)
{
    for (size_t i = 0; i < rs->len; i++) {
        free(rs->v[i].r);
        free(rs->v[i].c);
    }
    free(rs->v);
}

static int raws_add(struct raws *rs, const char *r, const char *c, int64_t n, int64_t x,
                    struct op_error *err)
{
    if (rs->len >= AGGREGATE_MAX_CELLS)
        return op_error_set(err, -E2BIG, NULL,
                            "more than %d distinct categories; the dimension is too fine to "
                            "count safely",
                            AGGREGATE_MAX_CELLS);
    if (rs->len == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        struct raw *v = realloc(rs->v, cap * sizeof *v);
        if (!v)
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        rs->v = v;
        rs->cap = cap;
    }
    struct raw *w = &rs->v[rs->len];
    w->r = strndup(r ? r : "(none)", AGGREGATE_MAX_KEY);
    w->c = strndup(c ? c : "(none)", AGGREGATE_MAX_KEY);
    w->n = n;
    w->x = x;
    if (!w->r || !w->c) {
        free(w->r);
        free(w->c);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    rs->len++;
    return 0;
}

static int raw_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    return raws_add(ctx, (const char *)sqlite3_column_text(st, 0),
                    (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2),
                    sqlite3_column_int64(st, 3), err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct sorted keys of one side of the raw cells (borrowed pointers). */
static int distinct(const struct raws *rs, int rows, const char ***out, size_t *n,
                    struct op_error *err)
{
    const char **k = calloc(rs->len ? rs->len : 1, sizeof *k);
    if (!k)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < rs->len; i++)
        k[i] = rows ? rs->v[i].r : rs->v[i].c;
    qsort(k, rs->len, sizeof *k, cmp_str);
    size_t m = 0;
    for (size_t i = 0; i < rs->len; i++)
        if (m == 0 || strcmp(k[m - 1], k[i]))
            k[m++] = k[i];
    *out = k;
    *n = m;
    return 0;
}

/* Folds the categories of one side whose total is below k into "(other)":
 * a district with three contacts is not named at all. */
static int fold(struct raws *rs, int rows, unsigned k, struct op_error *err)
{
    const char **keys;
    size_t n;
    int rc = distinct(rs, rows, &keys, &n, err);
    if (rc < 0)
        return rc;
    int64_t *tot = calloc(n ? n : 1, sizeof *tot);
    if (!tot) {
        free(keys);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < rs->len; i++) {
        const char *key = rows ? rs->v[i].r : rs->v[i].c;
        const char **hit = bsearch(&key, keys, n, sizeof *keys, cmp_str);
        tot[hit - keys] += rs->v[i].n;
    }
    unsigned char *folded = calloc(rs->len ? rs->len : 1, 1);
    if (!folded)
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == 0 && i < rs->len; i++) {
        const char *key = rows ? rs->v[i].r : rs->v[i].c;
        const char **hit = bsearch(&key, keys, n, sizeof *keys, cmp_str);
        folded[i] = tot[hit - keys] < (int64_t)k;
    }
    /* keys[] borrows the raw strings: replace them only once it is done */
    free(keys);
    keys = NULL;
    for (size_t i = 0; rc == 0 && i < rs->len; i++) {
        if (!folded[i])
            continue;
        char *o = strdup("(other)");
        if (!o) {
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
            break;
        }
        char **key = rows ? &rs->v[i].r : &rs->v[i].c;
        free(*key);
        *key = o;
    }
    free(folded);
    free(tot);
    free(keys);
    return rc;
}

static int build(const struct def *d, const struct grid *g, struct raws *rs, unsigned k,
                 int folding, struct aggregate_table **out, struct op_error *err)
{
    int rc = 0;
    if (folding && d->fold) {
        if ((rc = fold(rs, 1, k, err)) < 0 || (rc = fold(rs, 0, k, err)) < 0)
            return rc;
    }
    const char **rows = NULL, **cols = NULL;
    size_t nr = 0, nc = 0;
    char(*fixed)[11] = NULL;
    rc = distinct(rs, 1, &rows, &nr, err);
    if (rc == 0 && d->cols == C_DATA) {
        rc = distinct(rs, 0, &cols, &nc, err);
    } else if (rc == 0) {
        size_t cap = d->cols == C_WEEKS ? 16 : d->cols == C_MONTHS ? 12 : 1;
        fixed = calloc(cap, sizeof *fixed);
        cols = calloc(cap, sizeof *cols);
        if (!fixed || !cols) {
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        } else if (d->cols == C_WEEKS) {
            for (int64_t day = g->from_day; day < g->to_day && nc < cap; day += 7) {
                day_text(day, fixed[nc]);
                cols[nc] = fixed[nc];
                nc++;
            }
        } else if (d->cols == C_MONTHS) {
            for (unsigned m = 1; m <= 12; m++) {
                snprintf(fixed[nc], sizeof fixed[nc], "%04d-%02u", g->year, m);
                cols[nc] = fixed[nc];
                nc++;
            }
        } else {
            snprintf(fixed[0], sizeof fixed[0], "all");
            cols[0] = fixed[0];
            nc = 1;
        }
    }
    struct aggregate_table *t = NULL;
    if (rc == 0)
        rc = aggregate_table_new(rows, nr, cols, nc, &t, err);
    for (size_t i = 0; rc == 0 && i < rs->len; i++) {
        const char **ri = bsearch(&rs->v[i].r, rows, nr, sizeof *rows, cmp_str);
        const char **ci = bsearch(&rs->v[i].c, cols, nc, sizeof *cols, cmp_str);
        if (ri && ci) /* a cell outside the fixed columns is outside the period */
            aggregate_table_add(t, (size_t)(ri - rows), (size_t)(ci - cols), rs->v[i].n,
                                rs->v[i].x);
    }
    free(rows);
    free(cols);
    free(fixed);
    if (rc < 0) {
        aggregate_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* ---- the fast path: streams in index order, counted in C ------------------ */

/* For tests: compute with the plain queries instead (aggregate.h). */
static int use_reference;

void aggregate_reference(int on)
{
    use_reference = on;
}

/* A string arena: many short strings in few allocations. */
struct arena {
    char **blocks;
    size_t nblocks, left;
    char *at;
};

static const char *arena_dup(struct arena *a, const char *s)
{
    size_t len = strlen(s) + 1;
    if (len > a->left) {
        size_t cap = len > 65536 ? len : 65536;
        char **b = realloc(a->blocks, (a->nblocks + 1) * sizeof *b);
        if (!b)
            return NULL;
        a->blocks = b;
        if (!(b[a->nblocks] = malloc(cap)))
            return NULL;
        a->at = b[a->nblocks++];
        a->left = cap;
    }
    char *out = a->at;
    memcpy(out, s, len);
    a->at += len;
    a->left -= len;
    return out;
}

static void arena_done(struct arena *a)
{
    for (size_t i = 0; i < a->nblocks; i++)
        free(a->blocks[i]);
    free(a->blocks);
}

/* A growable array of (key, label, index), kept in the order added. */
struct pair {
    const char *key, *val;
    size_t idx;
};

struct pairs {
    struct pair *v;
    size_t len, cap;
};

static int pairs_add(struct pairs *p, const char *k, const char *v, size_t idx,
                     struct op_error *err)
{
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        struct pair *n = realloc(p->v, cap * sizeof *n);
        if (!n)
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        p->v = n;
        p->cap = cap;
    }
    p->v[p->len++] = (struct pair){k, v, idx};
    return 0;
}

/* The pair whose key is key in p, sorted by key, or NULL. */
static const struct pair *pairs_find(const struct pairs *p, const char *key)
{
    size_t lo = 0, hi = p->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->v[mid].key, key);
        if (c == 0)
            return &p->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The first pair at or after *from whose key is not less than key, found
 * by galloping from *from (the contacts of a district come in id order,
 * so the next one's link is usually a step or two on), which becomes the
 * new *from; NULL when it is not key itself. */
static const struct pair *pairs_seek(const struct pairs *p, size_t *from, const char *key)
{
    size_t lo = *from, step = 1;
    if (lo >= p->len)
        return NULL;
    if (strcmp(p->v[lo].key, key) < 0) {
        /* gallop: v[lo] < key; find hi with v[hi] >= key (or the end) */
        size_t hi = lo + step;
        while (hi < p->len && strcmp(p->v[hi].key, key) < 0) {
            lo = hi;
            step *= 2;
            hi = lo + step;
        }
        if (hi > p->len)
            hi = p->len;
        /* v[lo] < key <= v[hi]: the first not less in (lo, hi] */
        lo++;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(p->v[mid].key, key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    *from = lo;
    return lo < p->len && !strcmp(p->v[lo].key, key) ? &p->v[lo] : NULL;
}

/* The index of key in the sorted keys[0..n-1]; n when it is not there. */
static size_t find_sorted(const char *const *keys, size_t n, const char *key)
{
    const char **hit = bsearch(&key, keys, n, sizeof *keys, cmp_str);
    return hit ? (size_t)(hit - (const char **)keys) : n;
}

/* SQLite's trim(): spaces only, both ends; "" and NULL become NULL. */
static const char *trimmed(const char *s, char *buf, size_t cap)
{
    if (!s)
        return NULL;
    while (*s == ' ')
        s++;
    size_t len = strlen(s);
    while (len && s[len - 1] == ' ')
        len--;
    if (!len)
        return NULL;
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

/* The label buffer: longer labels are cut by raws_add anyway. */
#define LABEL_CAP (AGGREGATE_MAX_KEY + 1)

struct seg_run {
    const char *region; /* the current district run (raw text), arena */
    int64_t *n;         /* per industry index, nind + 1 (last: none) */
    size_t *touched, ntouched;
};

static int seg_flush(struct seg_run *run, const char *const *ind, size_t nind, struct raws *rs,
                     struct op_error *err)
{
    char cb[LABEL_CAP];
    const char *col = trimmed(run->region, cb, sizeof cb);
    int rc = 0;
    for (size_t t = 0; t < run->ntouched; t++) {
        size_t i = run->touched[t];
        if (rc == 0)
            rc = raws_add(rs, i < nind ? ind[i] : NULL, col, run->n[i], 0, err);
        run->n[i] = 0;
    }
    run->ntouched = 0;
    return rc;
}

/* contacts_by_segment_district without a probe per contact: the live
 * organizations and the links are read once into sorted arrays, then the
 * contacts stream by district and look their first link up there. */
static int collect_segments(struct sql_cache *c, struct raws *rs, struct op_error *err)
{
    struct arena ar = {0};
    struct pairs orgs = {0}, links = {0};
    const char **ind = NULL; /* distinct industries, sorted */
    size_t nind = 0;
    struct seg_run run = {0};
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_AGGREGATE_SEGMENT_ORGS, &st, err);
    while (rc == 0 && (rc = sql_step(c, STORE_Q_AGGREGATE_SEGMENT_ORGS, st, err)) == 1) {
        rc = 0; /* a row */
        const char *id = arena_dup(&ar, (const char *)sqlite3_column_text(st, 0));
        const char *in = (const char *)sqlite3_column_text(st, 1);
        const char *iv = in ? arena_dup(&ar, in) : NULL;
        rc = !id || (in && !iv) ? op_error_set(err, -ENOMEM, NULL, "out of memory")
                                : pairs_add(&orgs, id, iv, 0, err);
    }
    /* the distinct industries, sorted, and each organization's index */
    if (rc == 0 && !(ind = calloc(orgs.len + 1, sizeof *ind)))
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == 0 && i < orgs.len; i++)
        if (orgs.v[i].val)
            ind[nind++] = orgs.v[i].val;
    if (rc == 0) {
        qsort(ind, nind, sizeof *ind, cmp_str);
        size_t m = 0;
        for (size_t i = 0; i < nind; i++)
            if (m == 0 || strcmp(ind[m - 1], ind[i]))
                ind[m++] = ind[i];
        nind = m;
    }
    for (size_t i = 0; rc == 0 && i < orgs.len; i++)
        orgs.v[i].idx = orgs.v[i].val ? find_sorted(ind, nind, orgs.v[i].val) : nind;

    /* each contact's first live link to a live organization */
    const char *last = NULL;
    if (rc == 0)
        rc = sql_get_st(c, STORE_Q_AGGREGATE_SEGMENT_LINKS, &st, err);
    while (rc == 0 && (rc = sql_step(c, STORE_Q_AGGREGATE_SEGMENT_LINKS, st, err)) == 1) {
        rc = 0; /* a row */
        const char *cid = (const char *)sqlite3_column_text(st, 0);
        if (last && !strcmp(last, cid))
            continue;
        const struct pair *o = pairs_find(&orgs, (const char *)sqlite3_column_text(st, 1));
        if (!o)
            continue; /* not a live organization: the next link may be the first */
        if (!(last = arena_dup(&ar, cid)))
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        else
            rc = pairs_add(&links, last, NULL, o->idx, err);
    }

    /* the contacts, district by district */
    if (rc == 0 && (!(run.n = calloc(nind + 1, sizeof *run.n)) ||
                    !(run.touched = calloc(nind + 1, sizeof *run.touched))))
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (rc == 0)
        rc = sql_get_st(c, STORE_Q_AGGREGATE_SEGMENT_CONTACTS, &st, err);
    int have_run = 0;
    size_t cursor = 0; /* where the district's last contact was sought in links */
    while (rc == 0 && (rc = sql_step(c, STORE_Q_AGGREGATE_SEGMENT_CONTACTS, st, err)) == 1) {
        rc = 0; /* a row */
        const char *region = (const char *)sqlite3_column_text(st, 0);
        if (!have_run || (region == NULL) != (run.region == NULL) ||
            (region && strcmp(region, run.region))) {
            if (have_run && (rc = seg_flush(&run, ind, nind, rs, err)) < 0)
                break;
            run.region = NULL;
            if (region && !(run.region = arena_dup(&ar, region))) {
                rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
                break;
            }
            have_run = 1;
            cursor = 0;
        }
        const struct pair *l =
            pairs_seek(&links, &cursor, (const char *)sqlite3_column_text(st, 1));
        size_t i = l ? l->idx : nind;
        if (run.n[i]++ == 0)
            run.touched[run.ntouched++] = i;
    }
    if (rc == 0 && have_run)
        rc = seg_flush(&run, ind, nind, rs, err);
    if (rc != 0)
        sqlite3_reset(st);
    free(run.n);
    free(run.touched);
    free(ind);
    free(orgs.v);
    free(links.v);
    arena_done(&ar);
    return rc < 0 ? rc : 0;
}

/* consent_rates_by_channel_purpose: one unit per contact, channel and
 * purpose, decided by its latest record; rows come grouped by channel,
 * purpose and contact, so each unit and each cell is a run. Within a
 * unit the first row with the greatest time decides, as SQLite's max()
 * picks its row (a later tie does not replace it). */
struct consent_run {
    char *channel, *purpose, *contact, *at;
    int granted, have_unit, have_cell;
    int64_t n, x;
};

/* Replaces *dst with a copy of s ("" for NULL); 0 or -1 out of memory. */
static int set_text(char **dst, const char *s)
{
    char *c = strdup(s ? s : "");
    if (!c)
        return -1;
    free(*dst);
    *dst = c;
    return 0;
}

static int collect_consents(struct sql_cache *c, struct raws *rs, struct op_error *err)
{
    struct consent_run u = {0};
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_AGGREGATE_CONSENT_STREAM, &st, err);
    while (rc == 0 && (rc = sql_step(c, STORE_Q_AGGREGATE_CONSENT_STREAM, st, err)) == 1) {
        rc = 0; /* a row */
        const char *ch = (const char *)sqlite3_column_text(st, 0);
        const char *pu = (const char *)sqlite3_column_text(st, 1);
        const char *co = (const char *)sqlite3_column_text(st, 2);
        const char *status = (const char *)sqlite3_column_text(st, 3);
        const char *at = (const char *)sqlite3_column_text(st, 4);
        int same_cell = u.have_cell && !strcmp(ch, u.channel) && !strcmp(pu, u.purpose);
        int same_unit = same_cell && !strcmp(co, u.contact);
        int oom = 0;
        if (same_unit) {
            if (at && strcmp(at, u.at) > 0) {
                oom = set_text(&u.at, at);
                u.granted = !strcmp(status, "granted");
            }
        } else {
            if (u.have_unit) {
                u.n++;
                u.x += u.granted;
            }
            if (!same_cell) {
                if (u.have_cell && (rc = raws_add(rs, u.channel, u.purpose, u.n, u.x, err)) < 0)
                    break;
                oom = set_text(&u.channel, ch) || set_text(&u.purpose, pu);
                u.n = u.x = 0;
                u.have_cell = 1;
            }
            oom = oom || set_text(&u.contact, co) || set_text(&u.at, at);
            u.granted = !strcmp(status, "granted");
            u.have_unit = 1;
        }
        if (oom)
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    if (rc == 0 && u.have_cell)
        rc = raws_add(rs, u.channel, u.purpose, u.n + 1, u.x + u.granted, err);
    free(u.channel);
    free(u.purpose);
    free(u.contact);
    free(u.at);
    return rc < 0 ? rc : 0;
}

/* The Monday of the week of a stored UTC time "YYYY-MM-DDTHH:MM:SSZ", as
 * date(t, 'weekday 0', '-6 days') gives it (days past the month's end
 * roll over as SQLite rolls them), or -1 when the text starts with no
 * date (SQLite gives NULL; such a row is outside every week). */
static int monday_of(const char *t, int64_t *out)
{
    if (!t || strlen(t) < 10 || !digits(t, 4) || t[4] != '-' || !digits(t + 5, 2) || t[7] != '-' ||
        !digits(t + 8, 2) || (t[10] && t[10] != 'T' && t[10] != ' '))
        return -1;
    int y = (t[0] - '0') * 1000 + (t[1] - '0') * 100 + (t[2] - '0') * 10 + (t[3] - '0');
    unsigned m = (unsigned)((t[5] - '0') * 10 + (t[6] - '0'));
    unsigned d = (unsigned)((t[8] - '0') * 10 + (t[9] - '0'));
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    int64_t days = days_from_civil(y, m, 1) + (d - 1);
    *out = days - ((days + 3) % 7 + 7) % 7;
    return 0;
}

struct week_cell {
    char *channel;
    int64_t n;
};

static int week_flush(int64_t week, struct week_cell *w, size_t *nw, struct raws *rs,
                      struct op_error *err)
{
    char label[11];
    day_text(week, label);
    int rc = 0;
    for (size_t i = 0; i < *nw; i++) {
        if (rc == 0)
            rc = raws_add(rs, w[i].channel, label, w[i].n, 0, err);
        free(w[i].channel);
    }
    *nw = 0;
    return rc;
}

/* activities_by_channel_week: the period's activities in time order, so a
 * week is a run; its channels are few and kept in a small list. */
static int collect_weeks(struct sql_cache *c, const struct grid *g, struct raws *rs,
                         struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_AGGREGATE_ACTIVITY_STREAM, &st, err);
    if (rc == 0 && (sqlite3_bind_text(st, 1, g->from, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
                    sqlite3_bind_text(st, 2, g->to, -1, SQLITE_TRANSIENT) != SQLITE_OK))
        rc = op_error_set(err, -ENOMEM, NULL, "activities_by_channel_week: cannot bind");
    struct week_cell *w = NULL;
    size_t nw = 0, cap = 0;
    int64_t week = 0;
    int have = 0;
    while (rc == 0 && (rc = sql_step(c, STORE_Q_AGGREGATE_ACTIVITY_STREAM, st, err)) == 1) {
        rc = 0; /* a row */
        int64_t mon;
        if (monday_of((const char *)sqlite3_column_text(st, 0), &mon) < 0)
            continue;
        if (have && mon != week && (rc = week_flush(week, w, &nw, rs, err)) < 0)
            break;
        week = mon;
        have = 1;
        const char *ch = (const char *)sqlite3_column_text(st, 1);
        size_t i = 0;
        while (i < nw && strcmp(w[i].channel, ch))
            i++;
        if (i == nw) {
            if (nw == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct week_cell *n = realloc(w, ncap * sizeof *n);
                if (!n) {
                    rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
                    break;
                }
                w = n;
                cap = ncap;
            }
            if (!(w[nw].channel = strdup(ch))) {
                rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
                break;
            }
            w[nw++].n = 0;
        }
        w[i].n++;
    }
    if (rc == 0 && have)
        rc = week_flush(week, w, &nw, rs, err);
    for (size_t i = 0; i < nw; i++)
        free(w[i].channel);
    free(w);
    return rc < 0 ? rc : 0;
}

/* ---- aggregates a profile defines -------------------------------------------- */

/* The named query that reads a countable entity's dimensions (the
 * entities policy.c lets aggregates.define count). */
static unsigned define_query(const char *entity)
{
    if (!strcmp(entity, "contact"))
        return STORE_Q_AGGREGATE_DEFINE_CONTACT;
    if (!strcmp(entity, "organization"))
        return STORE_Q_AGGREGATE_DEFINE_ORGANIZATION;
    if (!strcmp(entity, "activity"))
        return STORE_Q_AGGREGATE_DEFINE_ACTIVITY;
    return STORE_Q_AGGREGATE_DEFINE_DEAL;
}

static int is_define_query(unsigned q)
{
    return q == STORE_Q_AGGREGATE_DEFINE_CONTACT || q == STORE_Q_AGGREGATE_DEFINE_ORGANIZATION ||
           q == STORE_Q_AGGREGATE_DEFINE_ACTIVITY || q == STORE_Q_AGGREGATE_DEFINE_DEAL;
}

/* A defined aggregate as a definition: a count, a snapshot of the
 * current month (kept like any other), small rows and columns folded. */
static void define_def(const struct policy_aggregate_define *pd, struct def *d)
{
    memset(d, 0, sizeof *d);
    d->name = pd->name;
    d->query = define_query(pd->rows->entity);
    d->value = AGGREGATE_COUNT;
    d->param = P_AS_OF;
    d->cols = pd->cols ? C_DATA : C_ALL;
    d->fold = 1;
    d->rows_label = pd->rows->field;
    d->cols_label = pd->cols ? pd->cols->field : "all";
    d->fields[0] = pd->qualified[0];
    d->fields[1] = pd->cols ? pd->qualified[1] : NULL;
}

/* The shipped definition `name`, or the policy's aggregates.define entry
 * as one in *tmp; NULL when neither. */
static const struct def *def_find(const struct policy *p, const char *name, struct def *tmp)
{
    const struct def *d = def_named(name);
    if (d)
        return d;
    const struct policy_aggregate_define *pd = policy_define_named(p, name);
    if (!pd)
        return NULL;
    define_def(pd, tmp);
    return tmp;
}

/* One dimension's label for a record: codes as stored, free text trimmed,
 * dates by their grain; an empty or unreadable value is "(none)". */
static const char *dim_label(const struct policy_aggregate_dim *dim, enum policy_grain grain,
                             const char *v, char *buf, size_t cap)
{
    if (dim->kind == POLICY_DIM_TEXT)
        return trimmed(v, buf, cap);
    if (dim->kind == POLICY_DIM_CODE)
        return v && *v ? v : NULL;
    int64_t monday;
    if (monday_of(v, &monday) < 0) /* also checks YYYY-MM-DD at the start */
        return NULL;
    if (grain == POLICY_GRAIN_WEEK) {
        char day[11];
        day_text(monday, day);
        snprintf(buf, cap, "%s", day);
    } else if (grain == POLICY_GRAIN_QUARTER) {
        snprintf(buf, cap, "%.4s-Q%d", v, ((v[5] - '0') * 10 + (v[6] - '0') - 1) / 3 + 1);
    } else {
        snprintf(buf, cap, "%.7s", v);
    }
    return buf;
}

struct define_pair {
    char *r, *c;
};

static int cmp_pair(const void *a, const void *b)
{
    const struct define_pair *x = a, *y = b;
    int o = strcmp(x->r, y->r);
    return o ? o : strcmp(x->c, y->c);
}

struct define_run {
    const struct policy_aggregate_define *pd;
    struct define_pair *v;
    size_t len, cap;
};

static int define_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    struct define_run *run = ctx;
    const struct policy_aggregate_define *pd = run->pd;
    char rb[LABEL_CAP], cb[LABEL_CAP];
    const char *r =
        dim_label(pd->rows, pd->grain, (const char *)sqlite3_column_text(st, (int)pd->rows->column),
                  rb, sizeof rb);
    const char *c =
        pd->cols
            ? dim_label(pd->cols, pd->grain,
                        (const char *)sqlite3_column_text(st, (int)pd->cols->column), cb, sizeof cb)
            : "all";
    if (run->len == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 256;
        struct define_pair *v = realloc(run->v, cap * sizeof *v);
        if (!v)
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        run->v = v;
        run->cap = cap;
    }
    struct define_pair *w = &run->v[run->len];
    w->r = strndup(r ? r : "(none)", AGGREGATE_MAX_KEY);
    w->c = strndup(c ? c : "(none)", AGGREGATE_MAX_KEY);
    if (!w->r || !w->c) {
        free(w->r);
        free(w->c);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    run->len++;
    return 0;
}

/* Reads the entity's live records through its named query, labels each by
 * the definition's one or two dimensions (chosen by their column index in
 * policy_aggregate_dims[], never by a name from the file) and counts the
 * labels in C: sorted, each cell a run. */
static int collect_defined(struct sql_cache *c, const struct def *d, const struct policy *p,
                           sqlite3_stmt *st, struct raws *rs, struct op_error *err)
{
    struct define_run run = {policy_define_named(p, d->name), NULL, 0, 0};
    if (!run.pd)
        return op_error_set(err, -ENOENT, NULL, "%s is not defined by the policy", d->name);
    int rc = sql_each(c, d->query, st, define_row, &run, err);
    if (rc == 0 && run.len)
        qsort(run.v, run.len, sizeof *run.v, cmp_pair);
    for (size_t i = 0; rc == 0 && i < run.len;) {
        size_t j = i + 1;
        while (j < run.len && !cmp_pair(&run.v[i], &run.v[j]))
            j++;
        rc = raws_add(rs, run.v[i].r, run.v[i].c, (int64_t)(j - i), 0, err);
        i = j;
    }
    for (size_t i = 0; i < run.len; i++) {
        free(run.v[i].r);
        free(run.v[i].c);
    }
    free(run.v);
    return rc;
}

static int collect(struct sql_cache *c, const struct def *d, const struct policy *p,
                   const struct grid *g, struct raws *rs, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, d->query, &st, err);
    if (rc < 0)
        return rc;
    if (d->param != P_AS_OF) {
        if (sqlite3_bind_text(st, 1, g->from, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, g->to, -1, SQLITE_TRANSIENT) != SQLITE_OK)
            return op_error_set(err, -ENOMEM, NULL, "%s: cannot bind the period", d->name);
    }
    if (is_define_query(d->query))
        return collect_defined(c, d, p, st, rs, err);
    if (!use_reference && d->query == STORE_Q_AGGREGATE_CONTACTS_BY_SEGMENT_DISTRICT)
        return collect_segments(c, rs, err);
    if (!use_reference && d->query == STORE_Q_AGGREGATE_CONSENT_RATES_BY_CHANNEL_PURPOSE)
        return collect_consents(c, rs, err);
    if (!use_reference && d->query == STORE_Q_AGGREGATE_ACTIVITIES_BY_CHANNEL_WEEK)
        return collect_weeks(c, g, rs, err);
    if (d->query != STORE_Q_AGGREGATE_COMPLETENESS_BY_FIELD)
        return sql_each(c, d->query, st, raw_row, rs, err);
    int64_t v[NCOMPLETE + 1];
    rc = sql_step(c, d->query, st, err);
    if (rc == 1) {
        for (size_t i = 0; i <= NCOMPLETE; i++)
            v[i] = sqlite3_column_int64(st, (int)i);
        sqlite3_reset(st);
        rc = 0;
    } else if (rc == 0) {
        rc = op_error_set(err, -EIO, NULL, "%s: no row", d->name);
    }
    for (size_t i = 0; rc == 0 && i < NCOMPLETE; i++) {
        if (policy_class_of(p, &entity_contact, completeness_fields[i]) == POLICY_LOCAL_ONLY)
            continue;
        rc = raws_add(rs, completeness_fields[i], "all", v[0], v[i + 1], err);
    }
    return rc;
}

/* ---- calibrated noise ------------------------------------------------------- */

/* Random bits: getrandom(2) (the kernel's CSPRNG), read a block at a time;
 * or, after aggregate_noise_seed, splitmix64 from the seed (tests only). */
static struct {
    int seeded;
    uint64_t state;
    uint64_t buf[64];
    size_t left;
} rng;

void aggregate_noise_seed(const uint64_t *seed)
{
    rng.seeded = seed != NULL;
    rng.state = seed ? *seed : 0;
    rng.left = 0;
}

static int rand64(uint64_t *out)
{
    if (rng.seeded) {
        uint64_t z = (rng.state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        *out = z ^ (z >> 31);
        return 0;
    }
    if (rng.left == 0) {
        size_t got = 0;
        unsigned char *b = (unsigned char *)rng.buf;
        while (got < sizeof rng.buf) {
            ssize_t n = getrandom(b + got, sizeof rng.buf - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return -EIO;
            got += (size_t)n;
        }
        rng.left = sizeof rng.buf / sizeof rng.buf[0];
    }
    *out = rng.buf[--rng.left];
    rng.buf[rng.left] = 0;
    return 0;
}

/* e^-x for 0 <= x <= 64, without libm: e^-(x/2^k) by its series for a
 * small argument, then squared k times. Relative error about 1e-15. */
static double exp_neg(double x)
{
    unsigned k = 0;
    while (x > 0.001) {
        x /= 2;
        k++;
    }
    double term = 1, sum = 1;
    for (unsigned i = 1; i < 12; i++) {
        term *= -x / i;
        sum += term;
    }
    while (k--)
        sum *= sum;
    return sum;
}

/* One draw of the two-sided geometric distribution, P(z) proportional to
 * alpha^|z|: the difference of two geometric draws, each counting the
 * successes (probability alpha) before the first failure. alpha53 is
 * alpha scaled to 2^53. */
static int geometric(uint64_t alpha53, int64_t *out)
{
    int64_t g[2] = {0, 0};
    for (int s = 0; s < 2; s++)
        for (;;) {
            uint64_t r;
            if (rand64(&r) < 0)
                return -EIO;
            if ((r >> 11) >= alpha53)
                break;
            g[s]++;
        }
    *out = g[0] - g[1];
    return 0;
}

static uint64_t alpha53_for(uint32_t epsilon_micro, unsigned sensitivity)
{
    double a = exp_neg((double)epsilon_micro / 1e6 / (double)(sensitivity ? sensitivity : 1));
    return (uint64_t)(a * 9007199254740992.0); /* 2^53 */
}

int aggregate_noise_draw(uint32_t epsilon_micro, unsigned sensitivity, int64_t *out)
{
    return geometric(alpha53_for(epsilon_micro, sensitivity), out);
}

/* The calendar period now_ms falls in, as aggregates.noise.period names
 * it: "2026-12", "2026-Q4" or "2026". */
static void budget_period(const struct policy *p, uint64_t now_ms, char out[24])
{
    int y;
    unsigned m, d;
    civil_from_days((int64_t)(now_ms / 86400000u), &y, &m, &d);
    if (p->noise.period == POLICY_NOISE_MONTH)
        snprintf(out, 24, "%04d-%02u", y, m);
    else if (p->noise.period == POLICY_NOISE_QUARTER)
        snprintf(out, 24, "%04d-Q%u", y, (m - 1) / 3 + 1);
    else
        snprintf(out, 24, "%04d", y);
}

static int budget_spent(struct sql_cache *c, const char *region, const char *period, int64_t *spent,
                        struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_AGGREGATE_BUDGET_SPENT, &st, err);
    if (rc == 0 && (sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC) != SQLITE_OK))
        rc = op_error_set(err, -ENOMEM, NULL, "cannot bind the privacy budget");
    if (rc == 0)
        rc = sql_one_int64(c, STORE_Q_AGGREGATE_BUDGET_SPENT, st, "privacy budget", spent, 1, err);
    return rc;
}

/* -EDQUOT with the reason when one more answer would overspend. */
static int budget_check(const struct policy *p, const char *name, const char *period, int64_t spent,
                        struct op_error *err)
{
    const struct policy_noise *z = &p->noise;
    if (spent + (int64_t)z->epsilon_micro <= (int64_t)z->budget_micro)
        return 0;
    static const char *const next[] = {"month", "quarter", "year"};
    return op_error_set(err, -EDQUOT, "aggregates.noise.budget",
                        "%s: the %s privacy budget for %s is spent: %" PRId64 ".%06" PRId64
                        " of %u.%06u used, and an answer costs %u.%06u; it renews with the "
                        "next %s (aggregates.noise)",
                        name, p->region, period, spent / 1000000, spent % 1000000,
                        z->budget_micro / 1000000u, z->budget_micro % 1000000u,
                        z->epsilon_micro / 1000000u, z->epsilon_micro % 1000000u, next[z->period]);
}

int aggregate_budget(struct store *s, const struct policy *p, uint64_t now_ms,
                     struct aggregate_budget_state *out, struct op_error *err)
{
    memset(out, 0, sizeof *out);
    if (!p || !p->noise.on)
        return 0;
    out->on = 1;
    out->epsilon_micro = p->noise.epsilon_micro;
    out->budget_micro = p->noise.budget_micro;
    budget_period(p, now_ms, out->period);
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc == 0)
        rc = budget_spent(&c, p->region, out->period, &out->spent_micro, err);
    sql_cache_close(&c);
    return rc < 0 ? rc : 0;
}

/* How much one record can move the table's figures in all (the L1
 * sensitivity the noise is scaled to): a contact, activity or deal is one
 * count; a consent unit or a closed deal is a count and a numerator; a
 * contact in completeness_by_field is the count and maybe the numerator
 * of every row. */
static unsigned sensitivity(const struct def *d, size_t nrows)
{
    if (d->query == STORE_Q_AGGREGATE_COMPLETENESS_BY_FIELD)
        return (unsigned)(2 * (nrows ? nrows : 1));
    return d->value == AGGREGATE_RATE ? 2 : 1;
}

/* Replaces the raw cells with noisy ones: every cell of the unfolded
 * table (zeros too, or a zero would tell an empty cell from a small one)
 * gets two-sided geometric noise on its count and, for a rate, on its
 * numerator; counts are then at least 0 and numerators within the count.
 * Sums get none and are withheld later. Folding and suppression then work
 * on these numbers only. */
static int add_noise(const struct def *d, const struct grid *g, const struct policy *p,
                     struct raws *rs, unsigned k, struct op_error *err)
{
    struct aggregate_table *t0 = NULL;
    int rc = build(d, g, rs, k, 0, &t0, err);
    if (rc < 0)
        return rc;
    uint64_t a53 = alpha53_for(p->noise.epsilon_micro, sensitivity(d, t0->nr));
    struct raws out = {0};
    for (size_t i = 0; rc == 0 && i < t0->nr; i++)
        for (size_t j = 0; rc == 0 && j < t0->nc; j++) {
            int64_t n = t0->n[at(t0, i, j)], x = 0, z;
            if ((rc = geometric(a53, &z)) < 0)
                break;
            n = n + z < 0 ? 0 : n + z;
            if (d->value == AGGREGATE_RATE) {
                if ((rc = geometric(a53, &z)) < 0)
                    break;
                x = t0->x[at(t0, i, j)] + z;
                x = x < 0 ? 0 : x > n ? n : x;
            }
            rc = raws_add(&out, t0->rows[i], t0->cols[j], n, x, err);
        }
    if (rc == -EIO)
        op_error_set(err, -EIO, NULL, "%s: no random bytes from getrandom for the noise", d->name);
    aggregate_table_free(t0);
    if (rc < 0) {
        raws_done(&out);
        return rc;
    }
    raws_done(rs);
    *rs = out;
    return 0;
}

static int compute(struct sql_cache *c, const struct def *d, const struct policy *p,
                   const struct grid *g, uint64_t now_ms, json_t **out, struct op_error *err)
{
    struct raws rs = {0};
    struct aggregate_table *t = NULL;
    unsigned k = p->min_cell_size ? p->min_cell_size : 10;
    int rc = collect(c, d, p, g, &rs, err);
    if (rc == 0 && p->noise.on)
        rc = add_noise(d, g, p, &rs, k, err);
    if (rc == 0)
        rc = build(d, g, &rs, k, 1, &t, err);
    raws_done(&rs);
    if (rc < 0)
        return rc;
    aggregate_protect(t, d->value, k);
    /* an amount has no bound, so no finite noise hides one deal's: under
     * noise the sums are withheld and only the noisy counts leave */
    if (p->noise.on && d->value == AGGREGATE_SUM)
        for (size_t e = 0; e < (t->nr + 1) * (t->nc + 1); e++)
            t->xm[e] = AGGREGATE_SECONDARY;

    static const char *const values[] = {"count", "rate", "sum"};
    char when[40];
    if (timefmt_iso_ms((int64_t)now_ms, when, sizeof when) < 0)
        snprintf(when, sizeof when, "?");
    const char *eq = strchr(g->canon, '=');
    json_t *a =
        json_pack("{s:s, s:s, s:s, s:{s%:s}, s:s, s:i, s:s, s:s, s:s}", "aggregate", d->name,
                  "region", p->region, "policy_hash", p->hash, "params", g->canon, eq - g->canon,
                  eq + 1, "computed_at", when, "min_cell_size", (json_int_t)k, "rows_label",
                  d->rows_label, "cols_label", d->cols_label, "value", values[d->value]);
    int bad = !a || aggregate_table_json(t, d->value, a) < 0;
    if (!bad && p->noise.on) {
        char period[24];
        budget_period(p, now_ms, period);
        bad = json_object_set_new(a, "noise",
                                  json_pack("{s:s, s:f, s:s}", "mechanism", "geometric", "epsilon",
                                            (double)p->noise.epsilon_micro / 1e6, "period",
                                            period)) < 0;
    }
    aggregate_table_free(t);
    if (bad) {
        json_decref(a);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    *out = a;
    return 0;
}

/* The answer kept for this aggregate, grid point and policy: 1 with *a set,
 * 0 when none is kept, or a negative errno (err says why). */
static int kept_answer(struct sql_cache *c, const char *name, const char *canon, const char *hash,
                       json_t **a, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_AGGREGATE_ANSWER_GET, &st, err);
    if (rc == 0 && (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 2, canon, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC) != SQLITE_OK))
        rc = op_error_set(err, -ENOMEM, NULL, "%s: cannot bind", name);
    if (rc == 0 && (rc = sql_step(c, STORE_Q_AGGREGATE_ANSWER_GET, st, err)) == 1) {
        json_error_t je;
        *a = json_loads((const char *)sqlite3_column_text(st, 0), 0, &je);
        sqlite3_reset(st);
        if (!*a)
            return op_error_set(err, -EBADMSG, NULL, "%s: the kept answer is not JSON: %s", name,
                                je.text);
    }
    return rc;
}

int aggregate_compute(struct store *s, const struct policy *p, const char *name,
                      const char *const *params, size_t nparams, uint64_t now_ms, json_t **out,
                      int *kept, struct op_error *err)
{
    int rc = aggregate_allowed(p, name, err);
    if (rc < 0)
        return rc;
    struct def tmp;
    const struct def *d = def_find(p, name, &tmp);
    if (!d)
        return -ENOENT;
    struct grid g;
    if ((rc = parse_params(d, params, nparams, now_ms, &g, err)) < 0)
        return rc;
    struct sql_cache c;
    if ((rc = store_queries_bind(s, &c, &store_queries, err)) < 0)
        return rc;
    json_t *a = NULL;
    rc = kept_answer(&c, d->name, g.canon, p->hash, &a, err);
    *kept = rc == 1;
    if (rc == 0 && p->noise.on) {
        /* refuse before the work when the budget cannot pay for it;
         * aggregate_keep checks again where it spends */
        char period[24];
        int64_t spent = 0;
        budget_period(p, now_ms, period);
        if ((rc = budget_spent(&c, p->region, period, &spent, err)) == 0)
            rc = budget_check(p, d->name, period, spent, err);
    }
    if (rc == 0)
        rc = compute(&c, d, p, &g, now_ms, &a, err);
    sql_cache_close(&c);
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* The canonical "key=value" of an answer's params. */
static void answer_canon(const json_t *answer, char out[64])
{
    const char *k;
    const json_t *v;
    out[0] = '\0';
    json_object_foreach((json_t *)json_object_get(answer, "params"), k, v)
        snprintf(out, 64, "%s=%s", k, json_string_value(v) ? json_string_value(v) : "");
}

int aggregate_keep(struct store *s, const struct policy *p, json_t **answer, uint64_t now_ms,
                   struct op_error *err)
{
    const char *name = json_string_value(json_object_get(*answer, "aggregate"));
    const char *hash = json_string_value(json_object_get(*answer, "policy_hash"));
    if (!name || !hash)
        return op_error_set(err, -EINVAL, NULL, "not an aggregate answer");
    if (!p || strcmp(hash, p->hash))
        return op_error_set(err, -EAGAIN, NULL,
                            "%s: the region policy changed while it was computed; ask again", name);
    char canon[64], period[24] = "";
    answer_canon(*answer, canon);
    if (p->noise.on)
        budget_period(p, now_ms, period);
    char *body = json_dumps(*answer, AGGREGATE_JSON_FLAGS);
    if (!body)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    int began = 0;
    if (rc == 0 && (rc = store_begin(s, err)) == 0)
        began = 1;
    sqlite3_stmt *st;
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_AGGREGATE_ANSWER_PUT, &st, err);
    if (rc == 0 &&
        (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_bind_text(st, 2, canon, -1, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_bind_int64(st, 4, (sqlite3_int64)now_ms) != SQLITE_OK ||
         sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_bind_int64(st, 6, p->noise.on ? p->noise.epsilon_micro : 0) != SQLITE_OK ||
         (p->noise.on ? sqlite3_bind_text(st, 7, period, -1, SQLITE_STATIC)
                      : sqlite3_bind_null(st, 7)) != SQLITE_OK))
        rc = op_error_set(err, -ENOMEM, NULL, "%s: cannot bind", name);
    if (rc == 0)
        rc = sql_run(&c, STORE_Q_AGGREGATE_ANSWER_PUT, st, err);
    if (rc == 1 && p->noise.on) {
        /* this answer is the one kept: it spends, in the same transaction */
        int64_t spent = 0;
        rc = budget_spent(&c, p->region, period, &spent, err);
        if (rc == 0)
            rc = budget_check(p, name, period, spent, err);
        if (rc == 0)
            rc = sql_get_st(&c, STORE_Q_AGGREGATE_BUDGET_SPEND, &st, err);
        if (rc == 0 && (sqlite3_bind_text(st, 1, p->region, -1, SQLITE_STATIC) != SQLITE_OK ||
                        sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC) != SQLITE_OK ||
                        sqlite3_bind_int64(st, 3, p->noise.epsilon_micro) != SQLITE_OK))
            rc = op_error_set(err, -ENOMEM, NULL, "cannot bind the privacy budget");
        if (rc == 0)
            rc = sql_run_what(&c, st, "cannot spend the privacy budget", err);
    }
    if (rc >= 0 && began) {
        rc = store_commit(s, err);
        began = 0;
    }
    if (began)
        store_rollback(s);
    free(body);
    if (rc == 0) {
        /* the kept answer: this one, or one another caller kept first */
        json_t *a = NULL;
        rc = kept_answer(&c, name, canon, hash, &a, err);
        if (rc == 1) {
            json_decref(*answer);
            *answer = a;
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -EIO, NULL, "%s: the answer was not kept", name);
        }
    }
    sql_cache_close(&c);
    return rc < 0 ? rc : 0;
}

int aggregate_answer(struct store *s, const struct policy *p, const char *name,
                     const char *const *params, size_t nparams, uint64_t now_ms, json_t **out,
                     struct op_error *err)
{
    json_t *a = NULL;
    int kept = 0;
    int rc = aggregate_compute(s, p, name, params, nparams, now_ms, &a, &kept, err);
    if (rc == 0 && !kept)
        rc = aggregate_keep(s, p, &a, now_ms, err);
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* ---- the egress ledger ------------------------------------------------------ */

int aggregate_record_egress(struct store *s, const char *via, const char *requester,
                            int64_t segment_no, const json_t *answer, uint64_t now_ms,
                            struct op_error *err)
{
    const char *name = json_string_value(json_object_get(answer, "aggregate"));
    const char *hash = json_string_value(json_object_get(answer, "policy_hash"));
    const json_t *params = json_object_get(answer, "params");
    if (!name || !hash || !json_is_object(params))
        return op_error_set(err, -EINVAL, NULL, "not an aggregate answer");
    char canon[64];
    answer_canon(answer, canon);
    char *body = json_dumps(answer, AGGREGATE_JSON_FLAGS);
    if (!body)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_AGGREGATE_EGRESS_PUT, &st, err);
    if (rc == 0 && (sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms) != SQLITE_OK ||
                    sqlite3_bind_text(st, 2, via, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 3, requester, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 5, canon, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 6, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
                    (segment_no >= 0 ? sqlite3_bind_int64(st, 7, segment_no)
                                     : sqlite3_bind_null(st, 7)) != SQLITE_OK ||
                    sqlite3_bind_text(st, 8, body, -1, SQLITE_STATIC) != SQLITE_OK))
        rc = op_error_set(err, -ENOMEM, NULL, "cannot bind the egress ledger row");
    if (rc == 0)
        rc = sql_run_what(&c, st, "cannot record the aggregate in the egress ledger", err);
    sql_cache_close(&c);
    free(body);
    return rc < 0 ? rc : 0;
}

struct each_ctx {
    int (*fn)(const struct aggregate_egress_row *r, void *ctx);
    void *ctx;
};

static int egress_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    struct each_ctx *e = ctx;
    struct aggregate_egress_row r = {
        .seq = sqlite3_column_int64(st, 0),
        .sent_ms = sqlite3_column_int64(st, 1),
        .via = (const char *)sqlite3_column_text(st, 2),
        .requester = (const char *)sqlite3_column_text(st, 3),
        .name = (const char *)sqlite3_column_text(st, 4),
        .params = (const char *)sqlite3_column_text(st, 5),
        .policy_hash = (const char *)sqlite3_column_text(st, 6),
        .segment_no = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 7),
        .body = (const char *)sqlite3_column_text(st, 8),
    };
    (void)err;
    return e->fn(&r, e->ctx);
}

int aggregate_egress_each(struct store *s, unsigned limit,
                          int (*fn)(const struct aggregate_egress_row *r, void *ctx), void *ctx,
                          struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    struct each_ctx e = {fn, ctx};
    rc = sql_get_st(&c, STORE_Q_AGGREGATE_EGRESS_LIST, &st, err);
    if (rc == 0) {
        (void)sqlite3_bind_int64(st, 1, limit);
        rc = sql_each(&c, STORE_Q_AGGREGATE_EGRESS_LIST, st, egress_row, &e, err);
    }
    sql_cache_close(&c);
    return rc < 0 ? rc : 0;
}

int aggregate_standing_due(struct store *s, const struct policy *p, const char *name,
                           uint64_t now_ms, int *due, struct op_error *err)
{
    struct def tmp;
    const struct def *d = p ? def_find(p, name, &tmp) : NULL;
    if (!d)
        return op_error_set(err, -ENOENT, NULL, "%s is not a shipped aggregate", name);
    struct grid g;
    int rc = parse_params(d, NULL, 0, now_ms, &g, err);
    if (rc < 0)
        return rc;
    struct sql_cache c;
    if ((rc = store_queries_bind(s, &c, &store_queries, err)) < 0)
        return rc;
    sqlite3_stmt *st;
    int64_t n = 0;
    rc = sql_get_st(&c, STORE_Q_AGGREGATE_EGRESS_SENT, &st, err);
    if (rc == 0 && (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 2, g.canon, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_text(st, 3, p->hash, -1, SQLITE_STATIC) != SQLITE_OK))
        rc = op_error_set(err, -ENOMEM, NULL, "%s: cannot bind", name);
    if (rc == 0)
        rc = sql_one_int64(&c, STORE_Q_AGGREGATE_EGRESS_SENT, st, "aggregate ledger", &n, 1, err);
    *due = rc == 0 && n == 0;
    if (*due && p->noise.on) {
        /* with noise, not due while the period's budget cannot pay for a
         * new answer (a kept one costs nothing): it waits for the next
         * period rather than cut segments that would carry nothing */
        json_t *a = NULL;
        int64_t spent = 0;
        char period[24];
        budget_period(p, now_ms, period);
        struct op_error e2;
        op_error_clear(&e2);
        rc = kept_answer(&c, name, g.canon, p->hash, &a, err);
        json_decref(a);
        if (rc == 0 && (rc = budget_spent(&c, p->region, period, &spent, err)) == 0)
            *due = budget_check(p, name, period, spent, &e2) == 0;
        else if (rc == 1)
            rc = 0;
    }
    sql_cache_close(&c);
    return rc < 0 ? rc : 0;
}
