/* Unit tests for sync/core/policy_diff.c: each kind of loosening and of
 * tightening is found and ranked; the two orders of field classes both
 * count; texts nothing enforces are neutral; comments, layout and key
 * order make no difference; policies of two regions are not compared. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outpost_config.h"
#include "policy.h"
#include "policy_diff.h"
#include "testlib.h"

static const char base[] =
    "format: outpost-region-policy/1\n"
    "region: EU-DE\n"
    "country: DE\n"
    "name: Test\n"
    "locale:\n"
    "  language: de-DE\n"
    "  date_format: DD.MM.YYYY\n"
    "transfer: {allowed: false, basis: \"b-transfer\"}\n"
    "default_class: local_only\n"
    "default_basis: \"b-default\"\n"
    "fields:\n"
    "  contact.given_name: {class: pseudonymize, basis: \"b1\"}\n"
    "  contact.email: {class: pseudonymize, basis: \"b2\"}\n"
    "  contact.family_name: {class: local_primary, basis: \"b3\"}\n"
    "  contact.country: {class: exportable, basis: \"b4\"}\n"
    "  contact.phone: {class: local_only, basis: \"b5\"}\n"
    "  contact.street: {class: aggregate_only, basis: \"b6\"}\n"
    "  contact.custom.citizenship: {class: local_primary, basis: \"b7\"}\n"
    "pin_records:\n"
    "  - entity: contact\n"
    "    field: custom.citizenship\n"
    "    values: [RU, BY]\n"
    "    basis: \"b-pin\"\n"
    "forbidden:\n"
    "  - field: contact.birth_date\n"
    "    reason: \"not asked\"\n"
    "    basis: \"b-forbidden\"\n"
    "custom_fields:\n"
    "  - entity: contact\n"
    "    name: citizenship\n"
    "    type: text\n"
    "    pattern: \"^[A-Z]{2}$\"\n"
    "    max_length: 2\n"
    "    labels: {en: Citizenship}\n"
    "    basis: \"b-cit\"\n"
    "  - entity: contact\n"
    "    name: segment\n"
    "    type: enum\n"
    "    values: [retail, wholesale]\n"
    "    basis: \"b-seg\"\n"
    "consent:\n"
    "  email: {mode: double_opt_in, token_ttl_hours: 72, basis: \"b-email\"}\n"
    "  sms: {mode: single_opt_in, basis: \"b-sms\"}\n"
    "  call: {mode: opt_out, basis: \"b-call\"}\n"
    "retention:\n"
    "  activity: {days: 365, basis: \"b-act\"}\n"
    "  note: {days: 30, basis: \"b-note\"}\n"
    "aggregates:\n"
    "  min_cell_size: 10\n"
    "  basis: \"b-agg\"\n"
    "  queries: [contacts_by_country, deals_by_stage]\n";

static struct policy *load(const char *yaml)
{
    struct policy *p = NULL;
    struct op_error err;
    op_error_clear(&err);
    if (policy_load_buffer("EU-DE.yaml", yaml, strlen(yaml), &p, &err) < 0) {
        fprintf(stderr, "policy does not load: %s\n", err.msg);
        return NULL;
    }
    return p;
}

/* base with `old` replaced by `new` (old must occur); the caller frees. */
static char *variant(const char *from, const char *old, const char *new)
{
    const char *at = strstr(from, old);
    if (!at) {
        fprintf(stderr, "test bug: \"%s\" not in the base policy\n", old);
        exit(2);
    }
    size_t n = strlen(from) - strlen(old) + strlen(new) + 1;
    char *out = malloc(n);
    if (!out)
        exit(2);
    snprintf(out, n, "%.*s%s%s", (int)(at - from), from, new, at + strlen(old));
    return out;
}

static struct policy_diff *diff_texts(const char *a, const char *b)
{
    struct policy *pa = load(a), *pb = load(b);
    struct policy_diff *d = NULL;
    struct op_error err;
    CHECK(pa && pb);
    if (pa && pb)
        CHECK_EQ(policy_diff(pa, pb, &d, &err), 0);
    policy_free(pa);
    policy_free(pb);
    return d;
}

static const struct policy_diff_item *find(const struct policy_diff *d, const char *text)
{
    for (size_t i = 0; d && i < d->n; i++)
        if (strstr(d->items[i].text, text))
            return &d->items[i];
    return NULL;
}

static void dump(const struct policy_diff *d)
{
    for (size_t i = 0; d && i < d->n; i++)
        fprintf(stderr, "    %s %s\n", policy_diff_kind_tag(d->items[i].kind), d->items[i].text);
}

/* Replacing old by new in the base gives an item containing `text` of
 * `kind`, and nothing else of substance than `loosens` and `tightens`
 * items; the reverse change gives the opposite. */
static void expect_change_back(const char *old, const char *new, enum policy_diff_kind kind,
                               const char *text, size_t loosens, size_t tightens,
                               size_t back_loosens, size_t back_tightens)
{
    char *v = variant(base, old, new);
    struct policy_diff *d = diff_texts(base, v);
    const struct policy_diff_item *it = find(d, text);
    if (!it) {
        fprintf(stderr, "no item \"%s\" for \"%s\" -> \"%s\"; the diff:\n", text, old, new);
        dump(d);
    }
    CHECK(it != NULL);
    if (it)
        CHECK_STR(policy_diff_kind_tag(it->kind), policy_diff_kind_tag(kind));
    CHECK_EQ(d ? d->loosens : 99, loosens);
    CHECK_EQ(d ? d->tightens : 99, tightens);
    if (d && (d->loosens != loosens || d->tightens != tightens))
        dump(d);
    policy_diff_free(d);
    /* and back again */
    d = diff_texts(v, base);
    CHECK_EQ(d ? d->loosens : 99, back_loosens);
    CHECK_EQ(d ? d->tightens : 99, back_tightens);
    if (d && (d->loosens != back_loosens || d->tightens != back_tightens))
        dump(d);
    policy_diff_free(d);
    free(v);
}

/* The usual case: the reverse change ranks the other way. */
static void expect_change(const char *old, const char *new, enum policy_diff_kind kind,
                          const char *text, size_t loosens, size_t tightens)
{
    expect_change_back(old, new, kind, text, loosens, tightens, tightens, loosens);
}

static void test_identical(void)
{
    struct policy_diff *d = diff_texts(base, base);
    CHECK(d && d->n == 0);
    char sum[200];
    policy_diff_summary(d, sum, sizeof sum);
    CHECK_STR(sum, "no change of substance (0 neutral)");
    policy_diff_free(d);

    /* comments, blank lines, flow vs block style and key order: the same
     * policy, another hash */
    char *v1 = variant(base, "name: Test\n", "# revised at HQ\n\nname:   Test   # same\n");
    char *v2 = variant(v1, "  contact.email: {class: pseudonymize, basis: \"b2\"}\n",
                       "  contact.email:\n    basis: \"b2\"\n    class: pseudonymize\n");
    char *v3 = variant(v2,
                       "retention:\n  activity: {days: 365, basis: \"b-act\"}\n"
                       "  note: {days: 30, basis: \"b-note\"}\n",
                       "retention:\n  note: {days: 30, basis: \"b-note\"}\n"
                       "  activity: {basis: \"b-act\", days: 365}\n");
    struct policy *a = load(base), *b = load(v3);
    CHECK(a && b && strcmp(a->hash, b->hash) != 0);
    policy_free(a);
    policy_free(b);
    d = diff_texts(base, v3);
    CHECK_EQ(d ? d->n : 99, 0);
    dump(d);
    policy_diff_free(d);
    free(v1);
    free(v2);
    free(v3);
}

static void test_field_classes(void)
{
    /* the example of the documentation, word for word */
    expect_change("contact.email: {class: pseudonymize", "contact.email: {class: exportable",
                  POLICY_DIFF_LOOSENS, "contact.email: pseudonymize -> exportable (loosens)", 1, 0);
    expect_change("contact.phone: {class: local_only", "contact.phone: {class: pseudonymize",
                  POLICY_DIFF_LOOSENS, "contact.phone: local_only -> pseudonymize (loosens)", 1, 0);
    expect_change("contact.phone: {class: local_only", "contact.phone: {class: aggregate_only",
                  POLICY_DIFF_LOOSENS, "contact.phone: local_only -> aggregate_only (loosens)", 1,
                  0);
    expect_change("contact.street: {class: aggregate_only", "contact.street: {class: pseudonymize",
                  POLICY_DIFF_LOOSENS, "contact.street: aggregate_only -> pseudonymize", 1, 0);
    expect_change("contact.given_name: {class: pseudonymize",
                  "contact.given_name: {class: exportable", POLICY_DIFF_LOOSENS,
                  "contact.given_name: pseudonymize -> exportable", 1, 0);
    /* local_primary without transfer sends nothing; pseudonymize sends an
     * HMAC: both directions loosen one of the two orders, so both loosen */
    expect_change_back("contact.family_name: {class: local_primary",
                       "contact.family_name: {class: pseudonymize", POLICY_DIFF_LOOSENS,
                       "contact.family_name: local_primary (transfer not allowed) -> pseudonymize "
                       "(loosens)",
                       1, 0, 1, 0);
    {
        char *v = variant(base, "contact.email: {class: pseudonymize",
                          "contact.email: {class: local_primary");
        struct policy_diff *d = diff_texts(base, v);
        const struct policy_diff_item *it =
            find(d, "contact.email: pseudonymize -> local_primary (transfer not allowed)");
        CHECK(it && it->kind == POLICY_DIFF_LOOSENS);
        policy_diff_free(d);
        free(v);
    }
    expect_change("contact.family_name: {class: local_primary",
                  "contact.family_name: {class: exportable", POLICY_DIFF_LOOSENS,
                  "contact.family_name: local_primary (transfer not allowed) -> exportable", 1, 0);
    /* custom fields by name */
    expect_change("contact.custom.citizenship: {class: local_primary",
                  "contact.custom.citizenship: {class: exportable", POLICY_DIFF_LOOSENS,
                  "contact.custom.citizenship: local_primary (transfer not allowed) -> exportable",
                  1, 0);
    /* a rule removed: the field falls to the default class */
    expect_change("  contact.country: {class: exportable, basis: \"b4\"}\n", "",
                  POLICY_DIFF_TIGHTENS, "contact.country: exportable -> local_only (tightens)", 0,
                  1);
    /* a field of another entity, listed in the new policy only */
    expect_change("fields:\n", "fields:\n  deal.amount_minor: {class: exportable, basis: \"x\"}\n",
                  POLICY_DIFF_LOOSENS, "deal.amount_minor: local_only -> exportable", 1, 0);
}

static void test_default_class(void)
{
    char *v = variant(base, "default_class: local_only", "default_class: pseudonymize");
    struct policy_diff *d = diff_texts(base, v);
    const struct policy_diff_item *it = find(d, "default_class: local_only -> pseudonymize");
    CHECK(it && it->kind == POLICY_DIFF_LOOSENS);
    /* every field not listed moves with it, custom ones too */
    it = find(d, "deal.title: local_only -> pseudonymize (loosens)");
    CHECK(it && it->kind == POLICY_DIFF_LOOSENS);
    it = find(d, "contact.custom.segment: local_only -> pseudonymize (loosens)");
    CHECK(it && it->kind == POLICY_DIFF_LOOSENS);
    /* listed fields keep their class */
    CHECK(find(d, "contact.email:") == NULL);
    CHECK_EQ(d ? d->tightens : 99, 0);
    /* internal and meta fields are never listed */
    CHECK(find(d, "password_hash") == NULL);
    CHECK(find(d, ".version") == NULL);
    policy_diff_free(d);
    free(v);
}

static void test_transfer(void)
{
    char *v = variant(base, "allowed: false", "allowed: true");
    struct policy_diff *d = diff_texts(base, v);
    const struct policy_diff_item *it = find(d, "transfer.allowed: false -> true");
    CHECK(it && it->kind == POLICY_DIFF_LOOSENS);
    /* contact.family_name and contact.custom.citizenship */
    if (it)
        CHECK_CONTAINS(it->text, "(loosens: 2 local_primary fields leave as they are)");
    CHECK_EQ(d ? d->n : 99, 1);
    policy_diff_free(d);
    d = diff_texts(v, base);
    it = find(d, "transfer.allowed: true -> false");
    CHECK(it && it->kind == POLICY_DIFF_TIGHTENS);
    policy_diff_free(d);
    /* transfer on, and a field moved from exportable to local_primary:
     * what leaves is the same, and the spec order says it closed */
    char *w =
        variant(v, "contact.country: {class: exportable", "contact.country: {class: local_primary");
    d = diff_texts(v, w);
    it = find(d, "contact.country: exportable -> local_primary (transfer allowed) (tightens)");
    CHECK(it != NULL);
    CHECK_EQ(d ? d->loosens : 99, 0);
    policy_diff_free(d);
    free(w);
    free(v);
}

static void test_pins(void)
{
    expect_change("values: [RU, BY]", "values: [RU]", POLICY_DIFF_LOOSENS,
                  "pin_records: contact.custom.citizenship no longer pins BY (loosens: narrowed)",
                  1, 0);
    expect_change("values: [RU, BY]", "values: [RU, BY, KZ]", POLICY_DIFF_TIGHTENS,
                  "pin_records: contact.custom.citizenship also pins KZ (tightens)", 0, 1);
    expect_change("pin_records:\n  - entity: contact\n    field: custom.citizenship\n"
                  "    values: [RU, BY]\n    basis: \"b-pin\"\n",
                  "", POLICY_DIFF_LOOSENS,
                  "pin_records: contact records with custom.citizenship in [RU, BY] no longer "
                  "stay on the node (loosens: rule removed)",
                  1, 0);
    /* one value swapped: one loosening, one tightening */
    expect_change("values: [RU, BY]", "values: [RU, KZ]", POLICY_DIFF_LOOSENS, "no longer pins BY",
                  1, 1);
    /* the same values split over two rules: the same pins */
    char *v = variant(base, "    values: [RU, BY]\n    basis: \"b-pin\"\n",
                      "    values: [RU]\n    basis: \"b-pin\"\n  - entity: contact\n"
                      "    field: custom.citizenship\n    values: [BY]\n    basis: \"b-pin\"\n");
    struct policy_diff *d = diff_texts(base, v);
    CHECK_EQ(d ? d->loosens + d->tightens : 99, 0);
    dump(d);
    policy_diff_free(d);
    free(v);
}

static void test_retention_forbidden(void)
{
    expect_change("activity: {days: 365", "activity: {days: 730", POLICY_DIFF_LOOSENS,
                  "retention.activity: 365 -> 730 days (loosens)", 1, 0);
    expect_change("activity: {days: 365", "activity: {days: 30", POLICY_DIFF_TIGHTENS,
                  "retention.activity: 365 -> 30 days (tightens)", 0, 1);
    expect_change("  note: {days: 30, basis: \"b-note\"}\n", "", POLICY_DIFF_LOOSENS,
                  "retention.note: 30 days -> no limit (loosens: kept without limit)", 1, 0);
    expect_change("retention:\n", "retention:\n  task: {days: 90, basis: \"t\"}\n",
                  POLICY_DIFF_TIGHTENS, "retention.task: no limit -> 90 days (tightens)", 0, 1);
    expect_change("forbidden:\n  - field: contact.birth_date\n    reason: \"not asked\"\n"
                  "    basis: \"b-forbidden\"\n",
                  "", POLICY_DIFF_LOOSENS,
                  "forbidden: contact.birth_date no longer forbidden (loosens: may be collected "
                  "again)",
                  1, 0);
    expect_change("forbidden:\n",
                  "forbidden:\n  - field: contact.job_title\n    reason: \"r\"\n    basis: \"b\"\n",
                  POLICY_DIFF_TIGHTENS, "forbidden: contact.job_title is forbidden (tightens)", 0,
                  1);
}

static void test_consent(void)
{
    expect_change("email: {mode: double_opt_in, token_ttl_hours: 72", "email: {mode: single_opt_in",
                  POLICY_DIFF_LOOSENS, "consent.email: double_opt_in -> single_opt_in (loosens)", 1,
                  0);
    expect_change("sms: {mode: single_opt_in", "sms: {mode: opt_out", POLICY_DIFF_LOOSENS,
                  "consent.sms: single_opt_in -> opt_out (loosens)", 1, 0);
    expect_change("email: {mode: double_opt_in, token_ttl_hours: 72", "email: {mode: opt_out",
                  POLICY_DIFF_LOOSENS, "consent.email: double_opt_in -> opt_out (loosens)", 1, 0);
    expect_change("token_ttl_hours: 72", "token_ttl_hours: 240", POLICY_DIFF_LOOSENS,
                  "consent.email: token_ttl_hours 72 -> 240 (loosens)", 1, 0);
    /* no rule: nothing may be sent for marketing on the channel */
    expect_change("  call: {mode: opt_out, basis: \"b-call\"}\n", "", POLICY_DIFF_TIGHTENS,
                  "consent.call: opt_out -> no rule (tightens: no marketing on the channel)", 0, 1);
    expect_change("consent:\n", "consent:\n  direct_mail: {mode: opt_out, basis: \"x\"}\n",
                  POLICY_DIFF_LOOSENS,
                  "consent.direct_mail: no rule -> opt_out (loosens: marketing on the channel "
                  "becomes possible)",
                  1, 0);
}

static void test_aggregates(void)
{
    expect_change("min_cell_size: 10", "min_cell_size: 5", POLICY_DIFF_LOOSENS,
                  "aggregates.min_cell_size: 10 -> 5 (loosens)", 1, 0);
    expect_change("min_cell_size: 10", "min_cell_size: 20", POLICY_DIFF_TIGHTENS,
                  "aggregates.min_cell_size: 10 -> 20 (tightens)", 0, 1);
    expect_change("queries: [contacts_by_country, deals_by_stage]",
                  "queries: [contacts_by_country, deals_by_stage, contacts_by_language]",
                  POLICY_DIFF_LOOSENS,
                  "aggregates: contacts_by_language added (loosens: HQ may pull it)", 1, 0);
    /* no aggregates section: min_cell_size 10, no queries */
    expect_change("aggregates:\n  min_cell_size: 10\n  basis: \"b-agg\"\n"
                  "  queries: [contacts_by_country, deals_by_stage]\n",
                  "", POLICY_DIFF_TIGHTENS, "aggregates: deals_by_stage removed (tightens)", 0, 2);
    /* a listed aggregate the profile defines, counted by other fields under
     * the same name: it cannot be ranked, so it loosens either way */
    {
        const char *cc = "  contact.country: {class: exportable, basis: \"b4\"}\n";
        const char *qq = "queries: [contacts_by_country, deals_by_stage]\n";
        char *v0 = variant(base, cc,
                           "  contact.country: {class: exportable, basis: \"b4\"}\n"
                           "  contact.language: {class: exportable, basis: \"b5\"}\n");
        char *v1 = v0 ? variant(v0, qq,
                                "queries: [contacts_by_country, deals_by_stage, cc_x]\n"
                                "  define:\n    - {name: cc_x, count: contact, rows: country}\n")
                      : NULL;
        char *v2 = v0 ? variant(v0, qq,
                                "queries: [contacts_by_country, deals_by_stage, cc_x]\n"
                                "  define:\n    - {name: cc_x, count: contact, rows: country, "
                                "columns: language}\n")
                      : NULL;
        CHECK(v1 && v2);
        for (int way = 0; v1 && v2 && way < 2; way++) {
            struct policy_diff *d = way ? diff_texts(v2, v1) : diff_texts(v1, v2);
            const struct policy_diff_item *it =
                find(d, "aggregates: cc_x: definition changed (loosens: a changed definition "
                        "cannot be ranked)");
            if (!it)
                dump(d);
            CHECK(it != NULL);
            CHECK_EQ(d ? d->loosens : 99, 1);
            CHECK_EQ(d ? d->tightens : 99, 0);
            policy_diff_free(d);
        }
        free(v0);
        free(v1);
        free(v2);
    }
    /* calibrated noise: adding it tightens, removing it or spending more loosens */
    const char *q = "queries: [contacts_by_country, deals_by_stage]\n";
    const char *z = "queries: [contacts_by_country, deals_by_stage]\n"
                    "  noise: {mechanism: geometric, epsilon: 0.5, budget: 4, period: month}\n";
    expect_change(q, z, POLICY_DIFF_TIGHTENS, "aggregates.noise: added (tightens)", 0, 1);
    char *zb = variant(base, q, z);
    static const struct {
        const char *old, *new, *text;
        enum policy_diff_kind kind;
    } steps[] = {
        {"epsilon: 0.5", "epsilon: 1",
         "aggregates.noise.epsilon: 500000 -> 1000000 millionths (loosens)", POLICY_DIFF_LOOSENS},
        {"budget: 4", "budget: 2.5",
         "aggregates.noise.budget: 4000000 -> 2500000 millionths (tightens)", POLICY_DIFF_TIGHTENS},
        {"period: month", "period: year", "aggregates.noise.period: month -> year (tightens)",
         POLICY_DIFF_TIGHTENS},
        {"  noise: {mechanism: geometric, epsilon: 0.5, budget: 4, period: month}\n", "",
         "aggregates.noise: removed (loosens: answers carry exact counts)", POLICY_DIFF_LOOSENS},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *v = variant(zb, steps[i].old, steps[i].new);
        struct policy_diff *d = diff_texts(zb, v);
        const struct policy_diff_item *it = find(d, steps[i].text);
        if (!it)
            dump(d);
        CHECK(it != NULL);
        if (it)
            CHECK_STR(policy_diff_kind_tag(it->kind), policy_diff_kind_tag(steps[i].kind));
        policy_diff_free(d);
        free(v);
    }
    free(zb);
}

static void test_custom_fields(void)
{
    expect_change("custom_fields:\n",
                  "custom_fields:\n  - entity: contact\n    name: shoe_size\n    type: integer\n"
                  "    basis: \"x\"\n",
                  POLICY_DIFF_LOOSENS,
                  "custom_fields: contact.custom.shoe_size added (loosens: the node may collect "
                  "it)",
                  1, 0);
    expect_change("    pattern: \"^[A-Z]{2}$\"\n", "", POLICY_DIFF_LOOSENS,
                  "custom_fields: contact.custom.citizenship: pattern removed (loosens: any text "
                  "is accepted)",
                  1, 0);
    {
        /* two patterns cannot be ranked: loosens either way */
        char *v = variant(base, "\"^[A-Z]{2}$\"", "\"^[A-Z][A-Z]$\"");
        struct policy_diff *d = diff_texts(base, v);
        CHECK(find(d, "pattern changed (loosens: two patterns cannot be ranked)") != NULL);
        CHECK_EQ(d ? d->loosens : 99, 1);
        policy_diff_free(d);
        d = diff_texts(v, base);
        CHECK_EQ(d ? d->loosens : 99, 1);
        policy_diff_free(d);
        free(v);
    }
    expect_change("max_length: 2", "max_length: 3", POLICY_DIFF_LOOSENS,
                  "custom_fields: contact.custom.citizenship: max_length 2 -> 3 (loosens)", 1, 0);
    expect_change("values: [retail, wholesale]", "values: [retail, wholesale, public]",
                  POLICY_DIFF_LOOSENS,
                  "custom_fields: contact.custom.segment: 1 enum value added (loosens)", 1, 0);
    expect_change("    max_length: 2\n", "    max_length: 2\n    required: true\n",
                  POLICY_DIFF_LOOSENS,
                  "custom_fields: contact.custom.citizenship: now required (loosens: collected "
                  "from everyone)",
                  1, 0);
    {
        char *v =
            variant(base, "    type: enum\n    values: [retail, wholesale]\n", "    type: text\n");
        struct policy_diff *d = diff_texts(base, v);
        CHECK(find(d, "contact.custom.segment: type enum -> text (loosens: cannot be ranked)"));
        policy_diff_free(d);
        free(v);
    }
    /* a custom field removed, and its class rule with it: the data is no
     * longer collected; the key falls to the default class */
    char *v = variant(base,
                      "  - entity: contact\n    name: segment\n    type: enum\n"
                      "    values: [retail, wholesale]\n    basis: \"b-seg\"\n",
                      "");
    struct policy_diff *d = diff_texts(base, v);
    const struct policy_diff_item *it = find(d, "contact.custom.segment removed");
    CHECK(it && it->kind == POLICY_DIFF_TIGHTENS);
    CHECK_EQ(d ? d->loosens : 99, 0);
    policy_diff_free(d);
    free(v);
}

static void test_country_and_neutral(void)
{
    expect_change_back("country: DE", "country: AT", POLICY_DIFF_LOOSENS,
                       "country: DE -> AT (loosens: cannot be ranked", 1, 0, 1, 0);
    /* texts nothing enforces: listed, neutral */
    char *v = variant(base, "name: Test", "name: Germany");
    char *w = variant(v, "basis: \"b2\"", "basis: \"GDPR Art. 6\"");
    char *x = variant(w, "labels: {en: Citizenship}", "labels: {en: Nationality}");
    char *y = variant(x, "language: de-DE", "language: de-AT");
    struct policy_diff *d = diff_texts(base, y);
    CHECK_EQ(d ? d->loosens : 99, 0);
    CHECK_EQ(d ? d->tightens : 99, 0);
    CHECK_EQ(d ? d->neutral : 99, 4);
    const struct policy_diff_item *it = find(d, "contact.email: basis changed (neutral)");
    CHECK(it && it->kind == POLICY_DIFF_NEUTRAL);
    CHECK(find(d, "name: \"Test\" -> \"Germany\" (neutral)") != NULL);
    char sum[200];
    policy_diff_summary(d, sum, sizeof sum);
    CHECK_STR(sum, "no change of substance (4 neutral)");
    policy_diff_free(d);
    /* a new default_basis is one line, not one per unlisted field */
    char *z = variant(base, "default_basis: \"b-default\"", "default_basis: \"new\"");
    d = diff_texts(base, z);
    CHECK_EQ(d ? d->n : 99, 1);
    CHECK(find(d, "default_class: basis changed (neutral)") != NULL);
    policy_diff_free(d);
    free(z);
    free(v);
    free(w);
    free(x);
    free(y);
}

static void test_mixed_and_summary(void)
{
    char *v =
        variant(base, "contact.email: {class: pseudonymize", "contact.email: {class: exportable");
    char *w = variant(v, "activity: {days: 365", "activity: {days: 30");
    struct policy_diff *d = diff_texts(base, w);
    CHECK_EQ(d ? d->loosens : 99, 1);
    CHECK_EQ(d ? d->tightens : 99, 1);
    char sum[512];
    policy_diff_summary(d, sum, sizeof sum);
    CHECK_STR(sum, "1 loosen, 1 tighten, 0 neutral: contact.email: pseudonymize -> exportable "
                   "(loosens); retention.activity: 365 -> 30 days (tightens)");
    /* a short buffer ends in "..." and stays terminated */
    char small[40];
    policy_diff_summary(d, small, sizeof small);
    CHECK_EQ(strlen(small) < sizeof small, 1);
    CHECK_CONTAINS(small, "...");
    CHECK_STR(policy_diff_kind_tag(POLICY_DIFF_LOOSENS), "LOOSEN");
    CHECK_STR(policy_diff_kind_tag(POLICY_DIFF_TIGHTENS), "TIGHTEN");
    policy_diff_free(d);
    free(v);
    free(w);
}

static void test_regions(void)
{
    char *v = variant(base, "region: EU-DE", "region: EU-FR");
    char *w = variant(v, "country: DE", "country: FR");
    struct policy *a = load(base), *b = NULL;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(policy_load_buffer("EU-FR.yaml", w, strlen(w), &b, &err), 0);
    struct policy_diff *d = (struct policy_diff *)1;
    if (a && b) {
        CHECK_EQ(policy_diff(a, b, &d, &err), -EINVAL);
        CHECK_STR(err.field, "region");
        CHECK_CONTAINS(err.msg, "EU-DE and EU-FR");
        CHECK(d == (struct policy_diff *)1);
    }
    policy_free(a);
    policy_free(b);
    policy_diff_free(NULL);
    free(v);
    free(w);
}

/* The shipped profiles against themselves: no differences. */
static void test_profiles(void)
{
    static const char *const regions[] = {"RU", "EU-DE", "KE", "BR"};
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        char path[512];
        struct op_error err;
        struct policy *p = NULL;
        snprintf(path, sizeof path, "%s/%s.yaml", OUTPOST_SOURCE_REGIONS_DIR, regions[i]);
        CHECK_EQ(policy_load_file(path, &p, &err), 0);
        struct policy_diff *d = NULL;
        if (p)
            CHECK_EQ(policy_diff(p, p, &d, &err), 0);
        CHECK_EQ(d ? d->n : 99, 0);
        policy_diff_free(d);
        policy_free(p);
    }
}

int main(void)
{
    RUN(test_identical);
    RUN(test_field_classes);
    RUN(test_default_class);
    RUN(test_transfer);
    RUN(test_pins);
    RUN(test_retention_forbidden);
    RUN(test_consent);
    RUN(test_aggregates);
    RUN(test_custom_fields);
    RUN(test_country_and_neutral);
    RUN(test_mixed_and_summary);
    RUN(test_regions);
    RUN(test_profiles);
    return tl_report();
}
