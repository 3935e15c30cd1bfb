/* Tests for appliance/store/aggregate.c: disclosure control on crafted
 * tables (primary suppression, complementary suppression that an attacker
 * solving the totals line by line cannot undo, rates over small bases,
 * sums that follow their counts), and the shipped aggregates over a real
 * node database: coarsening of small districts, refusals with a reason
 * and nothing kept, the differencing attack (ask, add one person, ask
 * again) answered from the grid, and canary values planted in row-level
 * fields never appearing in any answer. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "egress.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

/* 2026-12-06T12:00:00Z: the last ended quarter is 2026-Q3, the last ended
 * year 2025, the current month 2026-12. */
#define NOW_MS UINT64_C(1796558400000)

static struct aggregate_table *table(size_t nr, size_t nc, const int64_t *n, const int64_t *x)
{
    static const char *const labels[] = {"a", "b", "c", "d", "e", "f"};
    struct aggregate_table *t = NULL;
    struct op_error err;
    if (aggregate_table_new(labels, nr, labels, nc, &t, &err) < 0)
        fx_die("aggregate_table_new", &err);
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++)
            aggregate_table_add(t, i, j, n[i * nc + j], x ? x[i * nc + j] : 0);
    return t;
}

/* The attacker: knows every shown figure of the table, solves every line
 * (row, column, totals) with exactly one unknown, and repeats. Returns
 * how many primary cells it recovered. */
static int recovered(const struct aggregate_table *t, size_t nr, size_t nc)
{
    int known[7][7];
    for (size_t i = 0; i <= nr; i++)
        for (size_t j = 0; j <= nc; j++)
            known[i][j] = aggregate_table_mark(t, i, j) == AGGREGATE_SHOWN;
    int changed = 1;
    while (changed) {
        changed = 0;
        for (size_t i = 0; i <= nr; i++) {
            size_t unknown = 0, which = 0;
            for (size_t j = 0; j <= nc; j++)
                if (!known[i][j]) {
                    unknown++;
                    which = j;
                }
            if (unknown == 1) {
                known[i][which] = 1;
                changed = 1;
            }
        }
        for (size_t j = 0; j <= nc; j++) {
            size_t unknown = 0, which = 0;
            for (size_t i = 0; i <= nr; i++)
                if (!known[i][j]) {
                    unknown++;
                    which = i;
                }
            if (unknown == 1) {
                known[which][j] = 1;
                changed = 1;
            }
        }
    }
    int got = 0;
    for (size_t i = 0; i <= nr; i++)
        for (size_t j = 0; j <= nc; j++)
            got += aggregate_table_mark(t, i, j) == AGGREGATE_PRIMARY && known[i][j];
    return got;
}

static void primary_cells_and_totals(void)
{
    /* row b's total is 7: primary too; zero cells are shown */
    const int64_t n[] = {40, 3, 0, /**/ 2, 5, 0};
    struct aggregate_table *t = table(2, 3, n, NULL);
    aggregate_protect(t, AGGREGATE_COUNT, 10);
    CHECK_EQ(aggregate_table_mark(t, 0, 1), AGGREGATE_PRIMARY);
    CHECK_EQ(aggregate_table_mark(t, 0, 0), AGGREGATE_SECONDARY); /* 43 - 3 */
    CHECK_EQ(aggregate_table_mark(t, 1, 0), AGGREGATE_PRIMARY);
    CHECK_EQ(aggregate_table_mark(t, 1, 1), AGGREGATE_PRIMARY);
    CHECK_EQ(aggregate_table_mark(t, 0, 2), AGGREGATE_SHOWN);
    CHECK_EQ(aggregate_table_n(t, 1, 3), 7);
    CHECK_EQ(aggregate_table_mark(t, 1, 3), AGGREGATE_PRIMARY);
    CHECK_EQ(aggregate_table_mark(t, 2, 1), AGGREGATE_PRIMARY); /* column b: 8 */
    CHECK_EQ(aggregate_table_n(t, 2, 3), 50);
    CHECK_EQ(recovered(t, 2, 3), 0);
    /* the answer carries null, never the small number */
    json_t *o = json_object();
    CHECK_EQ(aggregate_table_json(t, AGGREGATE_COUNT, o), 0);
    char *s = json_dumps(o, JSON_COMPACT);
    CHECK_CONTAINS(s, "{\"n\":null,\"s\":\"primary\"}");
    CHECK(!strstr(s, "\"n\":3") && !strstr(s, "\"n\":2") && !strstr(s, "\"n\":7"));
    free(s);
    json_decref(o);
    aggregate_table_free(t);
}

static void secondary_stops_recovery_from_totals(void)
{
    /* One small cell in an otherwise large table: without complementary
     * suppression, row total minus the shown cells gives it at once. */
    const int64_t n[] = {30, 4, 25, /**/ 22, 31, 40, /**/ 18, 27, 50};
    struct aggregate_table *t = table(3, 3, n, NULL);
    aggregate_protect(t, AGGREGATE_COUNT, 10);
    CHECK_EQ(aggregate_table_mark(t, 0, 1), AGGREGATE_PRIMARY);
    int hidden_row = 0, hidden_col = 0;
    for (size_t j = 0; j <= 3; j++)
        hidden_row += aggregate_table_mark(t, 0, j) != AGGREGATE_SHOWN;
    for (size_t i = 0; i <= 3; i++)
        hidden_col += aggregate_table_mark(t, i, 1) != AGGREGATE_SHOWN;
    CHECK_INT(hidden_row, >=, 2);
    CHECK_INT(hidden_col, >=, 2);
    /* the complement in row a is its smallest other cell (25) */
    CHECK_EQ(aggregate_table_mark(t, 0, 2), AGGREGATE_SECONDARY);
    CHECK_EQ(recovered(t, 3, 3), 0);
    aggregate_table_free(t);

    /* Every pattern of small cells in a 4 x 4 table: the attacker never
     * recovers a primary cell. */
    int failures = 0;
    for (unsigned mask = 0; mask < (1u << 16); mask += 37) {
        int64_t m[16];
        for (unsigned b = 0; b < 16; b++)
            m[b] = (mask >> b) & 1 ? 1 + (b % 9) : 10 + 3 * b;
        t = table(4, 4, m, NULL);
        aggregate_protect(t, AGGREGATE_COUNT, 10);
        failures += recovered(t, 4, 4) != 0;
        aggregate_table_free(t);
    }
    CHECK_EQ(failures, 0);

    /* A one-column table: the row total equals the cell, so it goes too,
     * and the grand total cannot give the small row. */
    const int64_t one[] = {40, 3, 25};
    t = table(3, 1, one, NULL);
    aggregate_protect(t, AGGREGATE_COUNT, 10);
    CHECK_EQ(aggregate_table_mark(t, 1, 1), AGGREGATE_PRIMARY);
    CHECK_EQ(aggregate_table_mark(t, 1, 0), AGGREGATE_PRIMARY);
    CHECK_EQ(recovered(t, 3, 1), 0);
    aggregate_table_free(t);
}

static void rates_need_a_base(void)
{
    /* n and x: the second cell's 45 of 50 would name the 5 who did not */
    const int64_t n[] = {50, 50, 40, 6};
    const int64_t x[] = {20, 45, 20, 3};
    struct aggregate_table *t = table(1, 4, n, x);
    aggregate_protect(t, AGGREGATE_RATE, 10);
    CHECK_EQ(aggregate_table_xmark(t, 0, 0), AGGREGATE_SHOWN);
    CHECK_EQ(aggregate_table_mark(t, 0, 1), AGGREGATE_SHOWN); /* the count may show */
    CHECK_EQ(aggregate_table_xmark(t, 0, 1), AGGREGATE_PRIMARY);
    CHECK_EQ(aggregate_table_mark(t, 0, 3), AGGREGATE_PRIMARY); /* base 6 */
    CHECK(aggregate_table_xmark(t, 0, 3) != AGGREGATE_SHOWN);
    /* the numerators add up as well: x of the row total (88) less the
     * shown ones must not give a hidden one */
    int hidden = 0;
    for (size_t j = 0; j <= 4; j++)
        hidden += aggregate_table_xmark(t, 0, j) != AGGREGATE_SHOWN;
    CHECK(hidden == 0 || hidden >= 2);
    json_t *o = json_object();
    CHECK_EQ(aggregate_table_json(t, AGGREGATE_RATE, o), 0);
    const json_t *cells = json_object_get(json_array_get(json_object_get(o, "rows"), 0), "cells");
    CHECK(json_real_value(json_object_get(json_array_get(cells, 0), "rate")) == 0.4);
    CHECK(json_is_null(json_object_get(json_array_get(cells, 1), "rate")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(cells, 1), "rs")), "small_base");
    json_decref(o);
    aggregate_table_free(t);
}

static void sums_follow_their_counts(void)
{
    const int64_t n[] = {12, 2, 30, 15};
    const int64_t x[] = {120000, 5000000, 90000, 31000};
    struct aggregate_table *t = table(2, 2, n, x);
    aggregate_protect(t, AGGREGATE_SUM, 10);
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j <= 2; j++)
            CHECK_EQ(aggregate_table_xmark(t, i, j), aggregate_table_mark(t, i, j));
    /* column totals would add currencies: counts only */
    for (size_t j = 0; j <= 2; j++)
        CHECK_EQ(aggregate_table_xmark(t, 2, j), AGGREGATE_SECONDARY);
    json_t *o = json_object();
    CHECK_EQ(aggregate_table_json(t, AGGREGATE_SUM, o), 0);
    char *s = json_dumps(o, JSON_COMPACT);
    CHECK(!strstr(s, "5000000")); /* the one large deal of a small cell */
    free(s);
    json_decref(o);
    aggregate_table_free(t);
}

/* ---- over a node database ------------------------------------------------ */

static void contact(struct store *s, const char *region, int i)
{
    char given[64];
    snprintf(given, sizeof given, "CANARY-given-%d", i);
    free(fx_create(s, &entity_contact,
                   json_pack("{s:s, s:s, s:s, s:s, s:s}", "given_name", given, "family_name",
                             "CANARY-family", "email", "canary@example.org", "locality",
                             "CANARY-locality", "region", region)));
}

static json_t *answer(struct store *s, const struct policy *p, const char *name, const char *param,
                      int want_rc, struct op_error *err)
{
    json_t *a = NULL;
    const char *params[1] = {param};
    int rc = aggregate_answer(s, p, name, params, param ? 1 : 0, NOW_MS, &a, err);
    if (rc != want_rc)
        fprintf(stderr, "  %s %s: rc %d (%s)\n", name, param ? param : "", rc, err->msg);
    CHECK_EQ(rc, want_rc);
    return a;
}

static void districts_coarsened_and_canaries_absent(void)
{
    struct store *s = fx_store("districts.db");
    struct policy *p = fx_policy_load("EU-DE");
    for (int i = 0; i < 25; i++)
        contact(s, "Bayern", i);
    for (int i = 0; i < 12; i++)
        contact(s, "Berlin", 100 + i);
    for (int i = 0; i < 3; i++)
        contact(s, "Bremen", 200 + i);
    struct op_error err;
    json_t *a = answer(s, p, "contacts_by_segment_district", NULL, 0, &err);
    char *text = json_dumps(a, JSON_COMPACT);
    CHECK(text != NULL);
    /* Bremen is folded into (other), which is then suppressed, and so is
     * its complement: the row total 40 would give it away */
    CHECK(!strstr(text, "Bremen"));
    CHECK_CONTAINS(text, "\"cols\":[\"(other)\",\"Bayern\",\"Berlin\"]");
    CHECK_CONTAINS(text, "{\"n\":null,\"s\":\"primary\"}");
    CHECK_CONTAINS(text, "{\"n\":null,\"s\":\"secondary\"}");
    CHECK_CONTAINS(text, "\"total\":{\"n\":40}");
    CHECK(!strstr(text, "\"n\":3}") && !strstr(text, "\"n\":12}"));
    CHECK(!strstr(text, "CANARY") && !strstr(text, "canary"));
    CHECK_CONTAINS(text, "\"policy_hash\":\"");
    CHECK_CONTAINS(text, "\"params\":{\"as_of\":\"2026-12\"}");
    free(text);
    json_decref(a);

    /* completeness: aggregate_only locality is counted, local_only
     * fields are not listed at all, and no value appears */
    a = answer(s, p, "completeness_by_field", "as_of=2026-12", 0, &err);
    text = json_dumps(a, JSON_COMPACT);
    CHECK_CONTAINS(text, "\"key\":\"locality\"");
    CHECK(!strstr(text, "CANARY") && !strstr(text, "canary"));
    free(text);
    json_decref(a);
    policy_free(p);
    store_close(s);
}

static void refusals_say_why_and_keep_nothing(void)
{
    struct store *s = fx_store("refuse.db");
    struct policy *de = fx_policy_load("EU-DE");
    struct policy *cn = fx_policy_load("CN");
    struct op_error err;
    json_t *a = answer(s, cn, "contacts_by_segment_district", NULL, -EPERM, &err);
    CHECK(a == NULL);
    CHECK_CONTAINS(err.msg, "not allowed by the CN policy (aggregates.queries)");
    answer(s, de, "contacts_by_postcode", NULL, -ENOENT, &err);
    CHECK_CONTAINS(err.msg, "not a shipped aggregate");
    answer(s, de, "activities_by_channel_week", "quarter=2026-Q4", -EINVAL, &err);
    CHECK_CONTAINS(err.msg, "quarter=2026-Q4 has not ended");
    answer(s, de, "activities_by_channel_week", "quarter=2026-05", -EINVAL, &err);
    CHECK_CONTAINS(err.msg, "not of the form YYYY-Qn");
    answer(s, de, "activities_by_channel_week", "since=2026-07-01", -EINVAL, &err);
    CHECK_CONTAINS(err.msg, "unknown parameter 'since'");
    answer(s, de, "contacts_by_segment_district", "as_of=2026-11", -EINVAL, &err);
    CHECK_CONTAINS(err.msg, "only for the current month (2026-12)");
    answer(s, de, "pipeline_by_stage_month", "year=2026", -EINVAL, &err);
    CHECK_CONTAINS(err.msg, "only ended years");
    answer(s, NULL, "pipeline_by_stage_month", NULL, -EPERM, &err);
    CHECK_CONTAINS(err.msg, "no region policy");
    /* a field the definition counts by is local_only in this region */
    for (size_t i = 0; i < de->nfields; i++)
        if (de->fields[i].entity == &entity_contact && !strcmp(de->fields[i].field, "region"))
            de->fields[i].cls = POLICY_LOCAL_ONLY;
    answer(s, de, "contacts_by_segment_district", NULL, -EPERM, &err);
    CHECK_CONTAINS(err.msg, "uses contact.region, which is local_only in the EU-DE policy");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM aggregate_answers"), 0);
    policy_free(de);
    policy_free(cn);
    store_close(s);
}

static void differencing_answered_from_the_grid(void)
{
    struct store *s = fx_store("grid.db");
    struct policy *p = fx_policy_load("EU-DE");
    for (int i = 0; i < 30; i++)
        contact(s, "Hessen", i);
    for (int i = 0; i < 40; i++)
        free(fx_create(s, &entity_activity,
                       json_pack("{s:s, s:s, s:s}", "channel", i % 2 ? "email" : "visit",
                                 "direction", "outbound", "occurred_at",
                                 i < 20 ? "2026-07-08T10:00:00Z" : "2026-09-15T10:00:00Z")));
    struct op_error err;
    json_t *a1 = answer(s, p, "contacts_by_segment_district", NULL, 0, &err);
    json_t *w1 = answer(s, p, "activities_by_channel_week", "quarter=2026-Q3", 0, &err);
    json_t *w0 = answer(s, p, "activities_by_channel_week", NULL, 0, &err);
    CHECK(json_equal(w1, w0)); /* the default is the last ended quarter */
    char *t1 = json_dumps(a1, JSON_COMPACT), *u1 = json_dumps(w1, JSON_COMPACT);
    /* the attack: one more person, one more visit, then ask again; the
     * difference of the two answers would be that person */
    contact(s, "Hessen", 99);
    free(fx_create(s, &entity_activity,
                   json_pack("{s:s, s:s, s:s}", "channel", "call", "direction", "outbound",
                             "occurred_at", "2026-07-08T11:00:00Z")));
    json_t *a2 = answer(s, p, "contacts_by_segment_district", "as_of=2026-12", 0, &err);
    json_t *w2 = answer(s, p, "activities_by_channel_week", "quarter=2026-Q3", 0, &err);
    char *t2 = json_dumps(a2, JSON_COMPACT), *u2 = json_dumps(w2, JSON_COMPACT);
    CHECK_STR(t2, t1);
    CHECK_STR(u2, u1);
    CHECK_CONTAINS(u1, "\"2026-07-06\"");   /* weeks by their Monday */
    CHECK(!strstr(u1, "\"2026-06-29\""));   /* that week belongs to Q2 */
    CHECK(!strstr(u1, "\"key\":\"call\"")); /* the late visit is not there */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM aggregate_answers"), 2);
    free(t1);
    free(t2);
    free(u1);
    free(u2);
    json_decref(a1);
    json_decref(a2);
    json_decref(w0);
    json_decref(w1);
    json_decref(w2);
    policy_free(p);
    store_close(s);
}

static void deal(struct store *s, const char *stage, int amount, const char *cur, const char *close)
{
    free(fx_create(s, &entity_deal,
                   json_pack("{s:s, s:s, s:i, s:s, s:s}", "title", "CANARY-deal", "stage", stage,
                             "amount_minor", amount, "currency", cur, "expected_close", close)));
}

static void pipeline_per_currency(void)
{
    struct store *s = fx_store("pipeline.db");
    struct policy *p = fx_policy_load("EU-DE");
    for (int i = 0; i < 14; i++)
        deal(s, "won", 1000, "EUR", "2025-03-10");
    for (int i = 0; i < 13; i++)
        deal(s, "won", 1000, "EUR", "2025-05-10");
    for (int i = 0; i < 20; i++)
        deal(s, "lost", 500, "EUR", "2025-03-12");
    deal(s, "won", 777777, "USD", "2025-03-11"); /* one large deal alone */
    struct op_error err;
    json_t *a = answer(s, p, "pipeline_by_stage_month", "year=2025", 0, &err);
    char *text = json_dumps(a, JSON_COMPACT);
    CHECK_CONTAINS(text, "\"key\":\"EUR won\"");
    CHECK_CONTAINS(text, "\"key\":\"USD won\"");
    CHECK_CONTAINS(text, "\"2025-12\"");
    /* the grand total counts deals but adds no amounts across currencies */
    CHECK_CONTAINS(text, "\"total\":{\"n\":48,\"sum\":null}");
    CHECK(!strstr(text, "777777") && !strstr(text, "CANARY"));
    free(text);
    json_decref(a);
    /* conversion: 28 won of 48 closed, both sides at least 10 */
    a = answer(s, p, "conversion_by_channel", "year=2025", 0, &err);
    text = json_dumps(a, JSON_COMPACT);
    CHECK_CONTAINS(text, "{\"key\":\"(none)\",\"cells\":[{\"n\":48,\"rate\":0.5833");
    free(text);
    json_decref(a);
    policy_free(p);
    store_close(s);
}

static char *contact_id(struct store *s, int i)
{
    char given[64];
    snprintf(given, sizeof given, "CANARY-c%d", i);
    return fx_create(s, &entity_contact,
                     json_pack("{s:s, s:s}", "given_name", given, "region", "Hessen"));
}

static void consent_row(struct store *s, const char *cid, const char *status, const char *at)
{
    free(fx_create(s, &entity_consent,
                   json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "contact_id", cid, "channel",
                             "email", "purpose", "newsletter", "kind", "marketing", "status",
                             status, "method", "opt_out", "requested_at", at)));
}

/* A person's latest decisive record counts, once: 30 people asked, 20
 * still granted, 10 who granted and then withdrew; pending ones count
 * nowhere. */
static void consent_rates_count_latest(void)
{
    struct store *s = fx_store("consent.db");
    struct policy *p = fx_policy_load("EU-DE");
    for (int i = 0; i < 30; i++) {
        char *cid = contact_id(s, i);
        consent_row(s, cid, "granted", "2026-01-01T00:00:00Z");
        if (i >= 20)
            consent_row(s, cid, "withdrawn", "2026-02-01T00:00:00Z");
        free(cid);
    }
    for (int i = 0; i < 4; i++) {
        char *cid = contact_id(s, 100 + i);
        consent_row(s, cid, "pending", "2026-03-01T00:00:00Z");
        free(cid);
    }
    struct op_error err;
    json_t *a = answer(s, p, "consent_rates_by_channel_purpose", NULL, 0, &err);
    char *text = json_dumps(a, AGGREGATE_JSON_FLAGS);
    CHECK_CONTAINS(text, "{\"key\":\"email\",\"cells\":[{\"n\":30,\"rate\":0.6667}]");
    CHECK(!strstr(text, "CANARY"));
    free(text);
    json_decref(a);
    policy_free(p);
    store_close(s);
}

/* What leaves in a segment passes egress_verify_aggregate (node and HQ):
 * the engine's answer does; a small count, a value in an unknown key, an
 * answer under another policy or for an aggregate the policy leaves out
 * do not. */
static void egress_checks_answers(void)
{
    struct store *s = fx_store("egress.db");
    struct policy *p = fx_policy_load("EU-DE");
    struct policy *cn = fx_policy_load("CN");
    for (int i = 0; i < 25; i++)
        contact(s, "Bayern", i);
    for (int i = 0; i < 12; i++)
        contact(s, "Berlin", 100 + i);
    struct op_error err;
    json_t *a = answer(s, p, "contacts_by_segment_district", NULL, 0, &err);
    char *text = json_dumps(a, JSON_COMPACT);
    struct egress_record *r = NULL;
    CHECK_EQ(egress_aggregate(p, text, strlen(text), &r, &err), 0);
    CHECK_STR(egress_op_name(egress_record_op(r)), "aggregate");
    CHECK_STR(egress_record_json(r), text);
    egress_record_free(r);
    r = NULL;
    CHECK_EQ(egress_aggregate(cn, text, strlen(text), &r, &err), -EPERM); /* other policy */
    free(text);

    json_t *bad = json_deep_copy(a);
    json_t *cell = json_array_get(
        json_object_get(json_array_get(json_object_get(bad, "rows"), 0), "cells"), 0);
    json_object_set_new(cell, "n", json_integer(3));
    CHECK_EQ(egress_verify_aggregate(p, bad, &err), -EPERM);
    CHECK_CONTAINS(err.msg, "a count of 3 is under the minimum cell size 10");
    json_decref(bad);

    bad = json_deep_copy(a);
    json_object_set_new(bad, "given_name", json_string("CANARY-given-1"));
    CHECK_EQ(egress_verify_aggregate(p, bad, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "unknown key \"given_name\"");
    json_decref(bad);

    bad = json_deep_copy(a);
    json_object_set_new(bad, "aggregate", json_string("contacts_by_country_and_street"));
    CHECK_EQ(egress_verify_aggregate(p, bad, &err), -EPERM);
    json_decref(bad);
    json_decref(a);
    policy_free(p);
    policy_free(cn);
    store_close(s);
}

/* ---- the fast path against the plain queries ------------------------------ */

static void exec_sql(struct store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(store_db(s), sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "  %s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    CHECK_EQ(rc, SQLITE_OK);
}

/* The same aggregate computed by the streams and by the plain queries of
 * sql/aggregate.sql, the kept answer dropped before each, gives the same
 * bytes. */
static void same_both_ways(struct store *s, const struct policy *p, const char *name,
                           const char *param)
{
    struct op_error err;
    exec_sql(s, "DELETE FROM aggregate_answers");
    aggregate_reference(1);
    json_t *want = answer(s, p, name, param, 0, &err);
    aggregate_reference(0);
    exec_sql(s, "DELETE FROM aggregate_answers");
    json_t *got = answer(s, p, name, param, 0, &err);
    char *w = json_dumps(want, AGGREGATE_JSON_FLAGS), *g = json_dumps(got, AGGREGATE_JSON_FLAGS);
    CHECK(w && g);
    if (w && g)
        CHECK_STR(g, w);
    /* the data is built so that these tables are not empty */
    CHECK(w && !strstr(w, "\"rows\":[]"));
    free(w);
    free(g);
    json_decref(want);
    json_decref(got);
}

static char *org(struct store *s, const char *industry)
{
    return fx_create(s, &entity_organization,
                     json_pack("{s:s, s:s}", "name", "CANARY-org", "industry", industry));
}

static void link_to(struct store *s, const char *cid, const char *oid)
{
    free(fx_create(s, &entity_contact_organization,
                   json_pack("{s:s, s:s}", "contact_id", cid, "organization_id", oid)));
}

static void consent_of(struct store *s, const char *cid, const char *channel, const char *purpose,
                       const char *status, const char *at)
{
    free(fx_create(s, &entity_consent,
                   json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "contact_id", cid, "channel",
                             channel, "purpose", purpose, "kind", "marketing", "status", status,
                             "method", "opt_out", "requested_at", at)));
}

static void activity_at(struct store *s, const char *channel, const char *at)
{
    free(fx_create(s, &entity_activity,
                   json_pack("{s:s, s:s, s:s}", "channel", channel, "direction", "outbound",
                             "occurred_at", at)));
}

/* Crafted for the corners: industries and districts that trim to the same
 * label or to nothing, a contact whose first link goes to a deleted or a
 * restricted organization (the next link counts) or to one without an
 * industry (it counts as none), deleted links, restricted contacts;
 * consent units decided by a later record, by a tie on the time (the
 * first in index order wins), pending records; activities on the first
 * and last day of a week, at the period's edges, deleted ones. Then the
 * same after updates and deletes. */
static void fast_path_equals_reference(void)
{
    struct store *s = fx_store("fastpath.db");
    struct policy *p = fx_policy_load("EU-DE");
    p->min_cell_size = 2; /* so that most cells are shown and compared */
    char *o[6] = {org(s, "retail"),    org(s, "health"), org(s, "public"),
                  org(s, "logistics"), org(s, "retail"), org(s, "services")};
    exec_sql(s, "UPDATE organizations SET industry = '  retail ' WHERE industry = 'services'");
    exec_sql(s, "UPDATE organizations SET industry = '' WHERE industry = 'logistics'");
    char *cid[60];
    static const char *const regions[] = {"Bayern", "Berlin", "Hessen", "Bremen"};
    for (int i = 0; i < 60; i++) {
        char given[32];
        snprintf(given, sizeof given, "CANARY-f%d", i);
        cid[i] = fx_create(s, &entity_contact,
                           json_pack("{s:s, s:s}", "given_name", given, "region", regions[i % 4]));
        if (i % 3 == 0)
            link_to(s, cid[i], o[i % 6]);
        if (i % 5 == 0)
            link_to(s, cid[i], o[(i + 1) % 6]);
    }
    exec_sql(s, "UPDATE contacts SET region = ' Bayern  ' WHERE rowid % 7 = 0");
    exec_sql(s, "UPDATE contacts SET region = '' WHERE rowid % 11 = 0");
    exec_sql(s, "UPDATE contacts SET region = NULL WHERE rowid % 13 = 0");
    exec_sql(s, "UPDATE contacts SET restricted = 1 WHERE rowid % 17 = 0");
    exec_sql(s, "UPDATE organizations SET deleted = 1 WHERE industry = 'health'");
    exec_sql(s, "UPDATE organizations SET restricted = 1 WHERE industry = 'public'");
    exec_sql(s, "UPDATE contact_organizations SET deleted = 1 WHERE rowid % 4 = 0");

    static const char *const ch[] = {"email", "sms", "call"};
    for (int i = 0; i < 60; i++) {
        const char *c = ch[i % 3], *pu = i % 2 ? "offers" : "newsletter";
        consent_of(s, cid[i], c, pu, i % 4 ? "granted" : "denied", "2026-01-01T00:00:00Z");
        if (i % 5 == 0) /* decided later */
            consent_of(s, cid[i], c, pu, "withdrawn", "2026-03-01T00:00:00Z");
        if (i % 7 == 0) /* a tie on the time: the first in index order decides */
            consent_of(s, cid[i], c, pu, i % 2 ? "denied" : "granted", "2026-01-01T00:00:00Z");
        if (i % 9 == 0)
            consent_of(s, cid[i], c, pu, "pending", "2026-05-01T00:00:00Z");
    }
    static const char *const when[] = {
        "2026-06-28T23:59:59Z",                         /* a Sunday of Q2's last week: not in Q3 */
        "2026-06-29T00:00:00Z",                         /* the Monday of the week of 1 July: Q2 */
        "2026-07-06T00:00:00Z",                         /* the first Monday of Q3 */
        "2026-07-12T23:59:59Z",                         /* its Sunday */
        "2026-08-15T12:00:00Z", "2026-09-27T23:59:59Z", /* the last Sunday of Q3 */
        "2026-09-28T00:00:00Z",                         /* the next quarter's first week */
        "2026-10-01T08:00:00Z",
    };
    for (int i = 0; i < 64; i++)
        activity_at(s, i % 3 ? "email" : "visit", when[i % 8]);
    exec_sql(s, "UPDATE activities SET deleted = 1 WHERE rowid % 9 = 0");
    exec_sql(s, "UPDATE activities SET restricted = 1 WHERE rowid % 10 = 0");

    same_both_ways(s, p, "contacts_by_segment_district", NULL);
    same_both_ways(s, p, "consent_rates_by_channel_purpose", NULL);
    same_both_ways(s, p, "activities_by_channel_week", "quarter=2026-Q3");
    same_both_ways(s, p, "activities_by_channel_week", "quarter=2026-Q2");

    /* after updates and deletes */
    exec_sql(s, "UPDATE contacts SET region = 'Sachsen' WHERE rowid % 3 = 1");
    exec_sql(s, "UPDATE contacts SET deleted = 1 WHERE rowid % 8 = 0");
    exec_sql(s, "UPDATE contact_organizations SET deleted = 0 WHERE rowid % 8 = 0");
    exec_sql(s, "UPDATE organizations SET restricted = 0, industry = 'energy' "
                "WHERE industry = 'public'");
    exec_sql(s, "UPDATE consents SET deleted = 1 WHERE rowid % 6 = 0");
    exec_sql(s, "UPDATE consents SET status = 'granted' WHERE status = 'denied' AND rowid % 2 = 0");
    exec_sql(s, "UPDATE activities SET channel = 'call', deleted = 0 WHERE rowid % 5 = 0");
    same_both_ways(s, p, "contacts_by_segment_district", NULL);
    same_both_ways(s, p, "consent_rates_by_channel_purpose", NULL);
    same_both_ways(s, p, "activities_by_channel_week", "quarter=2026-Q3");
    for (int i = 0; i < 60; i++)
        free(cid[i]);
    for (int i = 0; i < 6; i++)
        free(o[i]);
    policy_free(p);
    store_close(s);
}

/* ---- calibrated noise ------------------------------------------------------ */

/* The noise has the two-sided geometric law its epsilon says: over many
 * draws (a fixed seed, so the test is the same every run) the share of
 * zeros is (1 - a) / (1 + a) and the variance 2a / (1 - a)^2, a =
 * e^(-epsilon / sensitivity), each within a fixed tolerance; a doubled
 * sensitivity spreads it as a halved epsilon does. */
static void noise_has_its_scale(void)
{
    uint64_t seed = 42;
    aggregate_noise_seed(&seed);
    struct {
        uint32_t eps;
        unsigned sens;
        double zero, var; /* expected, worked out by hand from a */
    } cases[] = {
        {500000, 1, 0.24491866, 7.83584},   /* a = 0.60653066 */
        {1000000, 1, 0.46211716, 1.84106},  /* a = 0.36787944 */
        {1000000, 2, 0.24491866, 7.83584},  /* as epsilon 0.5 */
        {100000, 1, 0.04995837, 199.16681}, /* a = 0.90483742 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int draws = 200000;
        double sum = 0, sq = 0;
        int zeros = 0;
        for (int i = 0; i < draws; i++) {
            int64_t z;
            CHECK_EQ(aggregate_noise_draw(cases[c].eps, cases[c].sens, &z), 0);
            sum += (double)z;
            sq += (double)z * (double)z;
            zeros += z == 0;
        }
        double mean = sum / draws, var = sq / draws - mean * mean;
        double zshare = (double)zeros / draws;
        if (zshare < cases[c].zero - 0.005 || zshare > cases[c].zero + 0.005 ||
            var < cases[c].var * 0.95 || var > cases[c].var * 1.05 || mean < -0.1 || mean > 0.1)
            fprintf(stderr,
                    "  case %zu: zeros %.5f (want %.5f), variance %.3f (want %.3f), "
                    "mean %.4f\n",
                    c, zshare, cases[c].zero, var, cases[c].var, mean);
        CHECK(zshare > cases[c].zero - 0.005 && zshare < cases[c].zero + 0.005);
        CHECK(var > cases[c].var * 0.95 && var < cases[c].var * 1.05);
        CHECK(mean > -0.1 && mean < 0.1);
    }
    /* from getrandom, two runs of draws differ */
    aggregate_noise_seed(NULL);
    int64_t a[16], b[16];
    for (int i = 0; i < 16; i++) {
        CHECK_EQ(aggregate_noise_draw(100000, 1, &a[i]), 0);
        CHECK_EQ(aggregate_noise_draw(100000, 1, &b[i]), 0);
    }
    CHECK(memcmp(a, b, sizeof a) != 0);
}

static void noise_on(struct policy *p, uint32_t eps, uint32_t budget)
{
    p->noise.on = 1;
    p->noise.epsilon_micro = eps;
    p->noise.budget_micro = budget;
    p->noise.period = POLICY_NOISE_MONTH;
}

static int64_t spent(struct store *s)
{
    return fx_count(s, "SELECT coalesce(sum(spent_micro), 0) FROM aggregate_budget");
}

/* A budget of 1.0 at 0.4 an answer: two answers spend 0.8, the same two
 * asked again are given as kept and spend nothing, a third is refused
 * with the reason and nothing is kept; after a restart the spend is still
 * there; next month the budget is new. Every noisy answer says so, has
 * no shown count under k (suppression ran on the noisy counts), withholds
 * the pipeline's sums and passes the egress check. */
static void budget_spent_refused_and_kept(void)
{
    uint64_t seed = 7;
    aggregate_noise_seed(&seed);
    struct store *s = fx_store("budget.db");
    struct policy *p = fx_policy_load("EU-DE");
    noise_on(p, 400000, 1000000);
    for (int i = 0; i < 40; i++)
        contact(s, i % 2 ? "Bayern" : "Berlin", i);
    for (int i = 0; i < 30; i++)
        deal(s, "won", 1000, "EUR", "2025-03-10");
    struct op_error err;
    json_t *a1 = answer(s, p, "contacts_by_segment_district", NULL, 0, &err);
    CHECK_EQ(spent(s), 400000);
    json_t *a2 = answer(s, p, "pipeline_by_stage_month", "year=2025", 0, &err);
    CHECK_EQ(spent(s), 800000);
    char *t1 = json_dumps(a1, AGGREGATE_JSON_FLAGS), *t2 = json_dumps(a2, AGGREGATE_JSON_FLAGS);
    CHECK_CONTAINS(
        t1, "\"noise\":{\"mechanism\":\"geometric\",\"epsilon\":0.4,\"period\":\"2026-12\"}");
    CHECK_CONTAINS(t2, "\"sum\":null");
    CHECK(!strstr(t2, "\"sum\":30000") && !strstr(t2, "\"sum\":1000"));
    CHECK_EQ(egress_verify_aggregate(p, a1, &err), 0);
    CHECK_EQ(egress_verify_aggregate(p, a2, &err), 0);
    /* asked again: the kept bytes, no spend */
    json_t *b1 = answer(s, p, "contacts_by_segment_district", "as_of=2026-12", 0, &err);
    char *u1 = json_dumps(b1, AGGREGATE_JSON_FLAGS);
    CHECK_STR(u1, t1);
    CHECK_EQ(spent(s), 800000);
    /* the third would spend 1.2 of 1.0 */
    json_t *c = answer(s, p, "completeness_by_field", NULL, -EDQUOT, &err);
    CHECK(c == NULL);
    CHECK_CONTAINS(err.msg, "the EU-DE privacy budget for 2026-12 is spent: 0.800000 of "
                            "1.000000 used, and an answer costs 0.400000; it renews with the "
                            "next month");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM aggregate_answers WHERE name = "
                         "'completeness_by_field'"),
             0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM aggregate_answers WHERE epsilon_micro = 400000 "
                         "AND budget_period = '2026-12'"),
             2);

    /* a standing aggregate waits while the budget cannot pay for a new
     * answer, but one already kept is still due (it costs nothing) */
    int due = -1;
    CHECK_EQ(aggregate_standing_due(s, p, "activities_by_channel_week", NOW_MS, &due, &err), 0);
    CHECK_EQ(due, 0);
    CHECK_EQ(aggregate_standing_due(s, p, "contacts_by_segment_district", NOW_MS, &due, &err), 0);
    CHECK_EQ(due, 1);

    /* a restart keeps the spend */
    store_close(s);
    s = fx_store_reopen();
    CHECK_EQ(spent(s), 800000);
    answer(s, p, "completeness_by_field", NULL, -EDQUOT, &err);
    json_t *d1 = answer(s, p, "contacts_by_segment_district", NULL, 0, &err);
    char *v1 = json_dumps(d1, AGGREGATE_JSON_FLAGS);
    CHECK_STR(v1, t1);
    struct aggregate_budget_state b;
    CHECK_EQ(aggregate_budget(s, p, NOW_MS, &b, &err), 0);
    CHECK(b.on && b.spent_micro == 800000 && b.budget_micro == 1000000);
    CHECK_STR(b.period, "2026-12");

    /* next month: a new budget */
    json_t *e = NULL;
    const char *none[1] = {NULL};
    CHECK_EQ(aggregate_answer(s, p, "completeness_by_field", none, 0,
                              NOW_MS + UINT64_C(31) * 86400000u, &e, &err),
             0);
    CHECK_EQ(fx_count(s, "SELECT spent_micro FROM aggregate_budget WHERE period = '2027-01'"),
             400000);
    /* a noisy count is never shown under k: suppression ran on it */
    char *te = json_dumps(e, AGGREGATE_JSON_FLAGS);
    CHECK_EQ(egress_verify_aggregate(p, e, &err), 0);
    CHECK_CONTAINS(te, "\"period\":\"2027-01\"");
    free(te);
    json_decref(e);

    /* without noise nothing is spent and no answer says noise */
    struct policy *plain = fx_policy_load("EU-DE");
    exec_sql(s, "DELETE FROM aggregate_answers");
    json_t *f = answer(s, plain, "contacts_by_segment_district", NULL, 0, &err);
    char *tf = json_dumps(f, AGGREGATE_JSON_FLAGS);
    CHECK(!strstr(tf, "\"noise\""));
    CHECK_EQ(spent(s), 1200000);
    /* the egress gate: an exact answer does not leave under a policy that
     * asks for noise, nor a noisy one under a policy that adds none, nor
     * one at another epsilon */
    CHECK_EQ(egress_verify_aggregate(p, f, &err), -EPERM);
    CHECK_CONTAINS(err.msg, "exact counts, but the EU-DE policy asks for noise");
    CHECK_EQ(egress_verify_aggregate(plain, a1, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "noise, but the EU-DE policy adds none");
    p->noise.epsilon_micro = 300000;
    CHECK_EQ(egress_verify_aggregate(p, a1, &err), -EPERM);
    CHECK_CONTAINS(err.msg, "not the geometric mechanism at the policy's epsilon");
    p->noise.epsilon_micro = 400000;
    free(tf);
    json_decref(f);
    policy_free(plain);

    free(t1);
    free(t2);
    free(u1);
    free(v1);
    json_decref(a1);
    json_decref(a2);
    json_decref(b1);
    json_decref(d1);
    policy_free(p);
    store_close(s);
    aggregate_noise_seed(NULL);
}

/* The noise changes the counts, not the truth underneath: with a large
 * epsilon the noisy total is near the true one, with the same seed the
 * same, and a small epsilon moves it more. */
static void noise_moves_counts_by_its_scale(void)
{
    struct op_error err;
    int64_t dev[2] = {0, 0};
    uint32_t eps[2] = {8000000, 100000};
    for (int r = 0; r < 2; r++) {
        for (int rep = 0; rep < 4; rep++) {
            char name[32];
            snprintf(name, sizeof name, "scale%d-%d.db", r, rep);
            struct store *s = fx_store(name);
            struct policy *p = fx_policy_load("EU-DE");
            noise_on(p, eps[r], 100000000);
            for (int i = 0; i < 50; i++)
                contact(s, "Bayern", i);
            json_t *a = answer(s, p, "completeness_by_field", NULL, 0, &err);
            json_t *rows = json_object_get(a, "rows");
            size_t i;
            json_t *row;
            json_array_foreach(rows, i, row)
            {
                json_t *n = json_object_get(json_array_get(json_object_get(row, "cells"), 0), "n");
                if (json_is_integer(n))
                    dev[r] += llabs((long long)(json_integer_value(n) - 50));
                else
                    dev[r] += 50; /* suppressed: far off */
            }
            json_decref(a);
            policy_free(p);
            store_close(s);
        }
    }
    /* epsilon 8 over a sensitivity of 2 per field row: mostly exact */
    CHECK(dev[0] < dev[1]);
    CHECK(dev[1] > 0);
}

/* The API computes on a read connection while the writer goes on: a
 * read-only connection computes while a write transaction is open on the
 * writer (and does not see it), writes nothing, and the writer then keeps
 * the answer. Keeping under another policy than the one it was computed
 * under is refused. */
static void computed_without_the_writer(void)
{
    struct store *w = fx_store("reader.db");
    struct policy *p = fx_policy_load("EU-DE");
    for (int i = 0; i < 30; i++)
        contact(w, "Hessen", i);
    struct op_error err;
    CHECK_EQ(store_begin(w, &err), 0);
    contact(w, "Hessen", 99); /* uncommitted: the writer is busy */
    struct store *r = NULL;
    CHECK_EQ(store_open(fx_db, DB_OPEN_READONLY, &r, &err), 0);
    json_t *a = NULL;
    int kept = 1;
    const char *none[1] = {NULL};
    CHECK_EQ(
        aggregate_compute(r, p, "contacts_by_segment_district", none, 0, NOW_MS, &a, &kept, &err),
        0);
    CHECK_EQ(kept, 0);
    char *text = json_dumps(a, AGGREGATE_JSON_FLAGS);
    CHECK_CONTAINS(text, "\"total\":{\"n\":30}");
    free(text);
    CHECK_EQ(store_commit(w, &err), 0);
    CHECK_EQ(fx_count(w, "SELECT count(*) FROM aggregate_answers"), 0);
    /* kept by the writer under another policy: refused */
    struct policy *cn = fx_policy_load("CN");
    CHECK_EQ(aggregate_keep(w, cn, &a, NOW_MS, &err), -EAGAIN);
    CHECK_CONTAINS(err.msg, "the region policy changed while it was computed");
    CHECK_EQ(aggregate_keep(w, p, &a, NOW_MS, &err), 0);
    CHECK_EQ(fx_count(w, "SELECT count(*) FROM aggregate_answers"), 1);
    /* the reader now finds it kept */
    json_t *b = NULL;
    CHECK_EQ(
        aggregate_compute(r, p, "contacts_by_segment_district", none, 0, NOW_MS, &b, &kept, &err),
        0);
    CHECK_EQ(kept, 1);
    CHECK(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    policy_free(cn);
    policy_free(p);
    store_close(r);
    store_close(w);
}

/* ---- aggregates a profile defines ------------------------------------------ */

static const char DEFINES[] = "  define:\n"
                              "    - name: contacts_by_language_district\n"
                              "      count: contact\n"
                              "      rows: language\n"
                              "      columns: region\n"
                              "    - name: activities_by_channel_quarter_x\n"
                              "      count: activity\n"
                              "      rows: channel\n"
                              "      columns: occurred_at\n"
                              "      coarsen: quarter\n"
                              "    - name: contacts_by_country_x\n"
                              "      count: contact\n"
                              "      rows: country\n";

/* The shipped EU-DE profile with DEFINES added and the first two of them
 * listed in aggregates.queries (the third is defined, not allowed). */
static struct policy *defining_policy(void)
{
    char path[FX_PATH_MAX];
    fx_profile_path("EU-DE", path, sizeof path);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return NULL;
    static char base[65536], text[70000];
    size_t len = fread(base, 1, sizeof base - 1, f);
    fclose(f);
    base[len] = '\0';
    const char *q = strstr(base, "queries: [");
    CHECK(q != NULL);
    if (!q)
        return NULL;
    q += strlen("queries: [");
    snprintf(text, sizeof text,
             "%.*scontacts_by_language_district, activities_by_channel_quarter_x, %s%s%s",
             (int)(q - base), base, q, len && base[len - 1] == '\n' ? "" : "\n", DEFINES);
    struct policy *p = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = policy_load_buffer_for("EU-DE.yaml", "EU-DE", text, strlen(text), &p, &err);
    if (rc < 0)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ(rc, 0);
    return p;
}

static void person(struct store *s, const char *given, const char *language, const char *region)
{
    free(fx_create(s, &entity_contact,
                   json_pack("{s:s, s:s, s:s, s:s, s:s}", "given_name", given, "family_name",
                             "CANARY-family", "email", "canary@example.org", "language", language,
                             "region", region)));
}

/* Every shown cell of `a` that is not a fold equals the plain count of
 * `sql` with the row and column labels bound; returns how many it saw. */
static int cells_equal_counts(struct store *s, const json_t *a, const char *sql)
{
    const json_t *cols = json_object_get(a, "cols"), *rows = json_object_get(a, "rows"), *row;
    size_t i;
    int seen = 0;
    json_array_foreach(rows, i, row)
    {
        const char *rk = json_string_value(json_object_get(row, "key"));
        const json_t *cell;
        size_t j;
        json_array_foreach(json_object_get(row, "cells"), j, cell)
        {
            const char *ck = json_string_value(json_array_get(cols, j));
            const json_t *n = json_object_get(cell, "n");
            if (!json_is_integer(n) || !strcmp(rk, "(other)") || !strcmp(ck, "(other)"))
                continue;
            sqlite3_stmt *st = NULL;
            CHECK_EQ(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
            sqlite3_bind_text(st, 1, rk, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, ck, -1, SQLITE_STATIC);
            CHECK_EQ(sqlite3_step(st), SQLITE_ROW);
            if (sqlite3_column_int64(st, 0) != json_integer_value(n))
                fprintf(stderr, "  cell %s/%s: %lld, counted %lld\n", rk, ck,
                        (long long)json_integer_value(n), (long long)sqlite3_column_int64(st, 0));
            CHECK_EQ(sqlite3_column_int64(st, 0), json_integer_value(n));
            sqlite3_finalize(st);
            seen++;
        }
    }
    return seen;
}

static void defined_aggregates_count_like_sql(void)
{
    struct store *s = fx_store("defined.db");
    struct policy *p = defining_policy();
    CHECK(p != NULL);
    if (!p) {
        store_close(s);
        return;
    }
    for (int i = 0; i < 25; i++)
        person(s, "CANARY-a", "de-DE", "Bayern");
    for (int i = 0; i < 12; i++)
        person(s, "CANARY-b", "en-GB", " Bayern ");
    for (int i = 0; i < 11; i++)
        person(s, "CANARY-c", "de-DE", "Berlin");
    for (int i = 0; i < 3; i++)
        person(s, "CANARY-d", "fr-FR", "Bayern");
    for (int i = 0; i < 4; i++)
        person(s, "GONE", "de-DE", "Bayern");
    for (int i = 0; i < 4; i++)
        person(s, "HIDDEN", "de-DE", "Berlin");
    exec_sql(s, "UPDATE contacts SET deleted = 1 WHERE given_name = 'GONE'");
    exec_sql(s, "UPDATE contacts SET restricted = 1 WHERE given_name = 'HIDDEN'");

    struct op_error err;
    json_t *a = answer(s, p, "contacts_by_language_district", NULL, 0, &err);
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    CHECK(text != NULL);
    if (text) {
        /* labels trimmed; fr-FR (3) folded into (other) and suppressed;
         * deleted and restricted records not counted (25, not 29) */
        CHECK_CONTAINS(text, "\"aggregate\":\"contacts_by_language_district\"");
        CHECK_CONTAINS(text, "\"rows_label\":\"language\",\"cols_label\":\"region\"");
        CHECK_CONTAINS(text, "\"cols\":[\"Bayern\",\"Berlin\"]");
        CHECK_CONTAINS(text, "\"key\":\"de-DE\",\"cells\":[{\"n\":25},{\"n\":11}]");
        CHECK_CONTAINS(text, "\"key\":\"(other)\",\"cells\":[{\"n\":null,\"s\":\"primary\"}");
        CHECK_CONTAINS(text, "\"total\":{\"n\":51}");
        CHECK(!strstr(text, "fr-FR") && !strstr(text, "\"n\":3}"));
        CHECK(!strstr(text, "CANARY") && !strstr(text, "canary") && !strstr(text, "GONE"));
        CHECK(cells_equal_counts(s, a,
                                 "SELECT count(*) FROM contacts WHERE deleted = 0 AND "
                                 "restricted = 0 AND language = ?1 AND trim(region) = ?2") >= 2);
    }
    free(text);
    json_decref(a);

    /* activities by quarter: dates coarsened, never a day */
    static const struct {
        const char *channel, *at;
        int n;
    } acts[] = {
        {"email", "2026-08-04T09:00:00Z", 20}, {"email", "2026-11-02T10:00:00Z", 30},
        {"call", "2026-07-01T00:00:00Z", 20},  {"call", "2026-12-31T23:59:59Z", 25},
        {"visit", "2026-09-30T12:00:00Z", 12}, {"visit", "2026-10-01T12:00:00Z", 14},
        {"sms", "2026-11-03T09:00:00Z", 2},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        for (int j = 0; j < acts[i].n; j++)
            activity_at(s, acts[i].channel, acts[i].at);
    a = answer(s, p, "activities_by_channel_quarter_x", "as_of=2026-12", 0, &err);
    text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    CHECK(text != NULL);
    if (text) {
        CHECK_CONTAINS(text, "\"cols\":[\"2026-Q3\",\"2026-Q4\"]");
        CHECK_CONTAINS(text, "\"total\":{\"n\":123}");
        CHECK_CONTAINS(text, "\"key\":\"call\",\"cells\":[{\"n\":20},{\"n\":25}]");
        CHECK(!strstr(text, "sms") && !strstr(text, "2026-11-0"));
        CHECK(cells_equal_counts(s, a,
                                 "SELECT count(*) FROM activities WHERE deleted = 0 AND "
                                 "restricted = 0 AND channel = ?1 AND substr(occurred_at, 1, 4) "
                                 "|| '-Q' || ((substr(occurred_at, 6, 2) + 2) / 3) = ?2") >= 2);
    }
    free(text);
    json_decref(a);

    /* standing: a defined aggregate is due until an answer has left */
    int due = -1;
    CHECK_EQ(aggregate_standing_due(s, p, "contacts_by_language_district", NOW_MS, &due, &err), 0);
    CHECK_EQ(due, 1);
    CHECK_EQ(aggregate_standing_due(s, p, "contacts_by_language_x", NOW_MS, &due, &err), -ENOENT);

    /* asked again: the kept answer; refused: defined but not listed, off
     * the grid, unknown; then a local_only field: refused, nothing kept */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM aggregate_answers"), 2);
    answer(s, p, "contacts_by_country_x", NULL, -EPERM, &err);
    CHECK_CONTAINS(err.msg, "contacts_by_country_x is not allowed by the EU-DE policy "
                            "(aggregates.queries)");
    answer(s, p, "contacts_by_language_district", "as_of=2026-11", -EINVAL, &err);
    CHECK_CONTAINS(err.msg, "only for the current month (2026-12)");
    answer(s, p, "contacts_by_language_x", NULL, -ENOENT, &err);
    CHECK_CONTAINS(err.msg, "nor one the EU-DE policy defines");
    /* with noise: a new answer carries it, spends the budget, and passes
     * the egress check like a shipped one */
    exec_sql(s, "DELETE FROM aggregate_answers");
    noise_on(p, 500000, 4000000);
    a = answer(s, p, "contacts_by_language_district", NULL, 0, &err);
    CHECK(a != NULL && json_object_get(a, "noise") != NULL);
    CHECK_EQ(spent(s), 500000);
    if (a)
        CHECK_EQ(egress_verify_aggregate(p, a, &err), 0);
    json_decref(a);
    p->noise.on = 0;
    for (size_t i = 0; i < p->nfields; i++)
        if (p->fields[i].entity == &entity_contact && !strcmp(p->fields[i].field, "language"))
            p->fields[i].cls = POLICY_LOCAL_ONLY;
    exec_sql(s, "DELETE FROM aggregate_answers");
    answer(s, p, "contacts_by_language_district", NULL, -EPERM, &err);
    CHECK_CONTAINS(err.msg, "uses contact.language, which is local_only in the EU-DE policy");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM aggregate_answers"), 0);
    policy_free(p);
    store_close(s);
}

int main(void)
{
    fx_tmpdir("aggregate");
    RUN(primary_cells_and_totals);
    RUN(secondary_stops_recovery_from_totals);
    RUN(rates_need_a_base);
    RUN(sums_follow_their_counts);
    RUN(districts_coarsened_and_canaries_absent);
    RUN(refusals_say_why_and_keep_nothing);
    RUN(differencing_answered_from_the_grid);
    RUN(pipeline_per_currency);
    RUN(egress_checks_answers);
    RUN(consent_rates_count_latest);
    RUN(fast_path_equals_reference);
    RUN(noise_has_its_scale);
    RUN(budget_spent_refused_and_kept);
    RUN(noise_moves_counts_by_its_scale);
    RUN(computed_without_the_writer);
    RUN(defined_aggregates_count_like_sql);
    return fx_finish();
}
