/*
 * Tests for sync/core/policy.c: a full policy loads and every lookup returns
 * what the file says; each kind of bad file is refused with the exact
 * "FILE:LINE: KEY:" a person needs to fix it; policy_find_file looks where
 * it says and refuses names that could escape the directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "policy.h"
#include "testlib.h"

/* Line numbers in the comments are what the bad-file table relies on. */
static const char VALID[] =
    "format: outpost-region-policy/1\n"                                                  /* 1 */
    "region: BR\n"                                                                       /* 2 */
    "country: BR\n"                                                                      /* 3 */
    "name: Brazil\n"                                                                     /* 4 */
    "locale:\n"                                                                          /* 5 */
    "  language: pt-BR\n"                                                                /* 6 */
    "  date_format: DD/MM/YYYY\n"                                                        /* 7 */
    "  phone_example: \"+55 11 91234-5678\"\n"                                           /* 8 */
    "  address_format: \"{street}\\n{postal_code} {locality} - {region}\\n{country}\"\n" /* 9 */
    "  preferred_channels: [messaging_app, visit, call]\n"                               /* 10 */
    "transfer:\n"                                                                        /* 11 */
    "  allowed: true\n"                                                                  /* 12 */
    "  basis: \"LGPD Art. 33 II\"\n"                                                     /* 13 */
    "default_class: local_only\n"                                                        /* 14 */
    "default_basis: \"design: nothing leaves unless classified\"\n"                      /* 15 */
    "fields:\n"                                                                          /* 16 */
    "  contact.given_name: {class: pseudonymize, basis: \"LGPD Art. 6 III\"}\n"          /* 17 */
    "  contact.country: {class: exportable, basis: \"LGPD Art. 6 III\"}\n"               /* 18 */
    "  contact.custom.cpf: {class: local_primary, basis: \"LGPD Art. 5 II\"}\n"          /* 19 */
    "  deal.amount_minor: {class: exportable, basis: \"not personal data\"}\n"           /* 20 */
    "  contact.custom.segment: {class: aggregate_only, basis: \"design\"}\n"             /* 21 */
    "pin_records:\n"                                                                     /* 22 */
    "  - entity: contact\n"                                                              /* 23 */
    "    field: custom.citizenship\n"                                                    /* 24 */
    "    values: [RU]\n"                                                                 /* 25 */
    "    basis: \"152-FZ Art. 18(5)\"\n"                                                 /* 26 */
    "  - entity: contact\n"                                                              /* 27 */
    "    field: country\n"                                                               /* 28 */
    "    values: [ru, by]\n"                                                             /* 29 */
    "    basis: \"152-FZ Art. 18(5)\"\n"                                                 /* 30 */
    "forbidden:\n"                                                                       /* 31 */
    "  - field: contact.birth_date\n"                                                    /* 32 */
    "    reason: \"not asked of customers in this market\"\n"                            /* 33 */
    "    basis: \"design: cultural\"\n"                                                  /* 34 */
    "custom_fields:\n"                                                                   /* 35 */
    "  - entity: contact\n"                                                              /* 36 */
    "    name: cpf\n"                                                                    /* 37 */
    "    type: text\n"                                                                   /* 38 */
    "    pattern: '^[0-9]{3}\\.[0-9]{3}\\.[0-9]{3}-[0-9]{2}$'\n"                         /* 39 */
    "    max_length: 14\n"                                                               /* 40 */
    "    required: false\n"                                                              /* 41 */
    "    labels: {pt-BR: CPF, en: \"Taxpayer number (CPF)\"}\n"                          /* 42 */
    "    basis: \"Receita Federal IN 1548/2015\"\n"                                      /* 43 */
    "  - entity: contact\n"                                                              /* 44 */
    "    name: segment\n"                                                                /* 45 */
    "    type: enum\n"                                                                   /* 46 */
    "    values: [varejo, atacado, governo]\n"                                           /* 47 */
    "    labels: {pt-BR: Segmento, en: Segment}\n"                                       /* 48 */
    "    basis: \"design\"\n"                                                            /* 49 */
    "  - entity: contact\n"                                                              /* 50 */
    "    name: citizenship\n"                                                            /* 51 */
    "    type: text\n"                                                                   /* 52 */
    "    max_length: 2\n"                                                                /* 53 */
    "    basis: \"design\"\n"                                                            /* 54 */
    "  - entity: deal\n"                                                                 /* 55 */
    "    name: employees\n"                                                              /* 56 */
    "    type: integer\n"                                                                /* 57 */
    "    required: true\n"                                                               /* 58 */
    "    basis: \"design\"\n"                                                            /* 59 */
    "  - entity: contact\n"                                                              /* 60 */
    "    name: since\n"                                                                  /* 61 */
    "    type: date\n"                                                                   /* 62 */
    "    basis: \"design\"\n"                                                            /* 63 */
    "  - entity: contact\n"                                                              /* 64 */
    "    name: vip\n"                                                                    /* 65 */
    "    type: boolean\n"                                                                /* 66 */
    "    basis: \"design\"\n"                                                            /* 67 */
    "consent:\n"                                                                         /* 68 */
    "  email: {mode: double_opt_in, token_ttl_hours: 48, basis: \"LGPD Art. 7 I, Art. 8\"}\n" /* 69
                                                                                               */
    "  sms: {mode: single_opt_in, basis: \"LGPD Art. 7 I\"}\n"         /* 70 */
    "  call: {mode: opt_out, basis: \"Lei 13.709 Art. 18\"}\n"         /* 71 */
    "  messaging_app: {mode: double_opt_in, basis: \"LGPD Art. 8\"}\n" /* 72 */
    "retention:\n"                                                     /* 73 */
    "  activity: {days: 1825, basis: \"LGPD Art. 15 I\"}\n"            /* 74 */
    "  note: {days: 365, basis: \"LGPD Art. 16\"}\n"                   /* 75 */
    "aggregates:\n"                                                    /* 76 */
    "  min_cell_size: 10\n"                                            /* 77 */
    "  basis: \"design: small-cell practice\"\n"                       /* 78 */
    "  queries: [contacts_by_country, deals_by_stage, activities_by_channel_month]\n" /* 79 */;

static struct policy *load_ok(const char *name, const char *text, size_t len)
{
    struct policy *p = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = policy_load_buffer(name, text, len, &p, &err);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "  unexpected error: %s\n", err.msg);
    return p;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    CHECK(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1);
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void test_valid_policy(void)
{
    struct policy *p = load_ok("BR.yaml", VALID, strlen(VALID));
    if (!p)
        return;
    CHECK_STR(p->path, "BR.yaml");
    CHECK_STR(p->region, "BR");
    CHECK_STR(p->country, "BR");
    CHECK_STR(p->name, "Brazil");
    CHECK_STR(p->language, "pt-BR");
    CHECK_STR(p->date_format, "DD/MM/YYYY");
    CHECK_STR(p->phone_example, "+55 11 91234-5678");
    CHECK_STR(p->address_format, "{street}\n{postal_code} {locality} - {region}\n{country}");
    CHECK_EQ(p->npreferred_channels, 3);
    if (p->npreferred_channels == 3) {
        CHECK_STR(p->preferred_channels[0], "messaging_app");
        CHECK_STR(p->preferred_channels[2], "call");
    }
    CHECK_EQ(p->transfer_allowed, 1);
    CHECK_STR(p->transfer_basis, "LGPD Art. 33 II");
    CHECK_EQ(p->default_class, POLICY_LOCAL_ONLY);
    CHECK_STR(p->default_basis, "design: nothing leaves unless classified");

    char want[65];
    sha256_hex(VALID, strlen(VALID), want);
    CHECK_STR(p->hash, want);
    CHECK_EQ(strlen(p->hash), 64);

    /* Classes: listed, custom, default. */
    CHECK_EQ(p->nfields, 5);
    CHECK_EQ(policy_class_of(p, &entity_contact, "given_name"), POLICY_PSEUDONYMIZE);
    CHECK_EQ(policy_class_of(p, &entity_contact, "country"), POLICY_EXPORTABLE);
    CHECK_EQ(policy_class_of(p, &entity_contact, "custom.cpf"), POLICY_LOCAL_PRIMARY);
    CHECK_EQ(policy_class_of(p, &entity_contact, "custom.segment"), POLICY_AGGREGATE_ONLY);
    CHECK_EQ(policy_class_of(p, &entity_deal, "amount_minor"), POLICY_EXPORTABLE);
    CHECK_EQ(policy_class_of(p, &entity_contact, "email"), POLICY_LOCAL_ONLY);
    CHECK_EQ(policy_class_of(p, &entity_organization, "country"), POLICY_LOCAL_ONLY);
    CHECK_EQ(policy_class_of(p, &entity_contact, "custom.vip"), POLICY_LOCAL_ONLY);
    CHECK_EQ(p->fields[0].line, 17);
    CHECK_STR(p->fields[0].basis, "LGPD Art. 6 III");
    CHECK_STR(policy_class_name(POLICY_AGGREGATE_ONLY), "aggregate_only");
    CHECK_STR(policy_consent_mode_name(POLICY_CONSENT_OPT_OUT), "opt_out");

    /* Forbidden. */
    const struct policy_forbidden *f = policy_forbidden_field(p, &entity_contact, "birth_date");
    CHECK(f != NULL);
    if (f) {
        CHECK_STR(f->reason, "not asked of customers in this market");
        CHECK_STR(f->basis, "design: cultural");
        CHECK_EQ(f->line, 32);
    }
    CHECK(policy_forbidden_field(p, &entity_contact, "email") == NULL);
    CHECK(policy_forbidden_field(p, &entity_organization, "birth_date") == NULL);

    /* Pins, stored normalized. */
    CHECK_EQ(p->npins, 2);
    if (p->npins == 2) {
        CHECK(p->pins[0].entity == &entity_contact);
        CHECK_STR(p->pins[0].field, "custom.citizenship");
        CHECK_EQ(p->pins[0].nvalues, 1);
        CHECK_STR(p->pins[0].values[0], "RU");
        CHECK_STR(p->pins[1].field, "country");
        CHECK_EQ(p->pins[1].nvalues, 2);
        CHECK_STR(p->pins[1].values[0], "RU");
        CHECK_STR(p->pins[1].values[1], "BY");
        CHECK(p->pins[1].values[2] == NULL);
        CHECK_STR(p->pins[0].basis, "152-FZ Art. 18(5)");
    }

    /* Custom fields. */
    CHECK_EQ(p->ncustom, 6);
    const struct policy_custom_field *cpf = policy_custom_field(p, &entity_contact, "cpf");
    CHECK(cpf != NULL);
    CHECK(policy_custom_field(p, &entity_deal, "cpf") == NULL);
    CHECK(policy_custom_field(p, &entity_contact, "nope") == NULL);
    if (cpf) {
        CHECK_EQ(cpf->type, POLICY_CUSTOM_TEXT);
        CHECK_STR(cpf->pattern, "^[0-9]{3}\\.[0-9]{3}\\.[0-9]{3}-[0-9]{2}$");
        CHECK(cpf->regex != NULL);
        CHECK_EQ(cpf->max_length, 14);
        CHECK_EQ(cpf->required, 0);
        CHECK_EQ(cpf->nlabels, 2);
        if (cpf->nlabels == 2) {
            CHECK_STR(cpf->labels[0].lang, "pt-BR");
            CHECK_STR(cpf->labels[0].text, "CPF");
            CHECK_STR(cpf->labels[1].lang, "en");
            CHECK_STR(cpf->labels[1].text, "Taxpayer number (CPF)");
        }
        CHECK_STR(cpf->basis, "Receita Federal IN 1548/2015");
        CHECK_EQ(cpf->line, 36);
    }
    const struct policy_custom_field *seg = policy_custom_field(p, &entity_contact, "segment");
    CHECK(seg != NULL);
    if (seg) {
        CHECK_EQ(seg->type, POLICY_CUSTOM_ENUM);
        CHECK_EQ(seg->nvalues, 3);
        CHECK_STR(seg->values[2], "governo");
        CHECK(seg->values[3] == NULL);
    }
    const struct policy_custom_field *emp = policy_custom_field(p, &entity_deal, "employees");
    CHECK(emp != NULL);
    if (emp) {
        CHECK_EQ(emp->type, POLICY_CUSTOM_INTEGER);
        CHECK_EQ(emp->required, 1);
    }

    /* Consent. */
    CHECK_EQ(p->nconsent, 4);
    const struct policy_consent_rule *c = policy_consent_for(p, "email");
    CHECK(c != NULL);
    if (c) {
        CHECK_EQ(c->mode, POLICY_CONSENT_DOUBLE_OPT_IN);
        CHECK_EQ(c->token_ttl_hours, 48);
        CHECK_STR(c->basis, "LGPD Art. 7 I, Art. 8");
        CHECK_EQ(c->line, 69);
    }
    c = policy_consent_for(p, "messaging_app");
    CHECK(c && c->mode == POLICY_CONSENT_DOUBLE_OPT_IN && c->token_ttl_hours == 72);
    c = policy_consent_for(p, "sms");
    CHECK(c && c->mode == POLICY_CONSENT_SINGLE_OPT_IN && c->token_ttl_hours == 0);
    c = policy_consent_for(p, "call");
    CHECK(c && c->mode == POLICY_CONSENT_OPT_OUT);
    CHECK(policy_consent_for(p, "direct_mail") == NULL);

    /* Retention. */
    CHECK_EQ(p->nretention, 2);
    if (p->nretention == 2) {
        CHECK(p->retention[0].entity == &entity_activity);
        CHECK_EQ(p->retention[0].days, 1825);
        CHECK_STR(p->retention[0].basis, "LGPD Art. 15 I");
        CHECK(p->retention[1].entity == &entity_note);
        CHECK_EQ(p->retention[1].days, 365);
    }

    /* Aggregates. */
    CHECK_EQ(p->min_cell_size, 10);
    CHECK_EQ(p->naggregates, 3);
    if (p->naggregates == 3) {
        CHECK_STR(p->aggregates[0].name, "contacts_by_country");
        CHECK_STR(p->aggregates[2].name, "activities_by_channel_month");
        CHECK_STR(p->aggregates[1].basis, "design: small-cell practice");
        CHECK_EQ(p->aggregates[1].line, 79);
    }
    policy_free(p);
}

/* Checks one custom value: accepted (normalized to `want`, a JSON text) or
 * refused (the message contains `want`). */
static void custom_case(const struct policy *p, const struct entity_def *e, const char *name,
                        json_t *value, int ok, const char *want)
{
    const struct policy_custom_field *f = policy_custom_field(p, e, name);
    CHECK(f != NULL);
    if (!f) {
        json_decref(value);
        return;
    }
    json_t *out = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = policy_custom_check(f, value, &out, &err);
    if (ok) {
        CHECK_EQ(rc, 0);
        if (rc == 0) {
            char *s = json_dumps(out, JSON_ENCODE_ANY);
            CHECK_STR(s, want);
            free(s);
            json_decref(out);
        } else {
            fprintf(stderr, "  refused: %s\n", err.msg);
        }
    } else {
        CHECK_EQ(rc, -EINVAL);
        CHECK_CONTAINS(err.msg, want);
        char field[80];
        snprintf(field, sizeof field, "custom.%s", name);
        CHECK_STR(err.field, field);
        if (rc == 0)
            json_decref(out);
    }
    json_decref(value);
}

static void test_custom_check(void)
{
    struct policy *p = load_ok("BR.yaml", VALID, strlen(VALID));
    if (!p)
        return;
    const struct entity_def *ct = &entity_contact;
    custom_case(p, ct, "cpf", json_string("123.456.789-09"), 1, "\"123.456.789-09\"");
    custom_case(p, ct, "cpf", json_string("  123.456.789-09 "), 1, "\"123.456.789-09\"");
    custom_case(p, ct, "cpf", json_string(""), 1, "null");
    custom_case(p, ct, "cpf", json_null(), 1, "null");
    custom_case(p, ct, "cpf", json_string("12345678909"), 0,
                "custom.cpf: \"12345678909\" does not match the pattern ^[0-9]{3}");
    custom_case(p, ct, "cpf", json_string("123.456.789-099"), 0,
                "custom.cpf: longer than 14 bytes");
    custom_case(p, ct, "cpf", json_integer(12345678909), 0, "custom.cpf: expected a string");
    custom_case(p, ct, "segment", json_string("atacado"), 1, "\"atacado\"");
    custom_case(p, ct, "segment", json_string("retail"), 0, "custom.segment:");
    custom_case(p, &entity_deal, "employees", json_integer(42), 1, "42");
    custom_case(p, &entity_deal, "employees", json_string(" -7 "), 1, "-7");
    custom_case(p, &entity_deal, "employees", json_string("4x"), 0,
                "custom.employees: expected a whole number");
    custom_case(p, &entity_deal, "employees", json_real(1.5), 0,
                "custom.employees: expected a whole number");
    custom_case(p, ct, "since", json_string("2024-02-29"), 1, "\"2024-02-29\"");
    custom_case(p, ct, "since", json_string("2023-02-29"), 0, "custom.since: not a date");
    custom_case(p, ct, "vip", json_string("yes"), 1, "true");
    custom_case(p, ct, "vip", json_false(), 1, "false");
    custom_case(p, ct, "vip", json_string("maybe"), 0, "custom.vip: expected true or false");
    policy_free(p);
}

/* VALID with the first `from` replaced by `to`. */
static char *mutate(const char *from, const char *to)
{
    const char *at = strstr(VALID, from);
    if (!at) {
        fprintf(stderr, "  test bug: \"%s\" not in VALID\n", from);
        return NULL;
    }
    size_t pre = (size_t)(at - VALID), fl = strlen(from), tl = strlen(to);
    size_t len = strlen(VALID) - fl + tl;
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    memcpy(s, VALID, pre);
    memcpy(s + pre, to, tl);
    memcpy(s + pre + tl, at + fl, strlen(at + fl) + 1);
    return s;
}

/* Loads `text` as BR.yaml and checks it is refused with a message that
 * starts with `prefix`. */
static void refused(const char *what, const char *text, size_t len, const char *prefix)
{
    struct policy *p = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = policy_load_buffer("BR.yaml", text, len, &p, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK(p == NULL);
    if (getenv("TEST_POLICY_VERBOSE")) /* to read every message at once */
        fprintf(stderr, "  %-28s %s\n", what, err.msg);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0) {
        tl_failed++;
        fprintf(stderr, "  %s: message \"%s\"\n  does not start with \"%s\"\n", what, err.msg,
                prefix);
    }
    tl_checks++;
    policy_free(p);
}

struct bad {
    const char *what, *from, *to, *prefix;
};

static const struct bad bad_files[] = {
    {"missing format", "format: outpost-region-policy/1\n", "", "BR.yaml:1: format: missing"},
    {"wrong format", "outpost-region-policy/1", "outpost-region-policy/2",
     "BR.yaml:1: format: expected outpost-region-policy/1 (got \"outpost-region-policy/2\")"},
    {"region mismatch", "region: BR", "region: AR",
     "BR.yaml:2: region: \"AR\" does not match the file name (BR.yaml)"},
    {"region syntax", "region: BR", "region: br", "BR.yaml:2: region: \"br\" is not a region code"},
    {"bad country", "country: BR", "country: XX",
     "BR.yaml:3: country: \"XX\" is not an ISO 3166-1 alpha-2 country code"},
    {"lower-case country", "country: BR", "country: br", "BR.yaml:3: country: \"br\" is not"},
    {"unknown top-level key", "name: Brazil", "nmae: Brazil", "BR.yaml:4: nmae: unknown key"},
    {"unknown key in a rule",
     "contact.country: {class: exportable, basis:", "contact.country: {class: exportable, basys:",
     "BR.yaml:18: fields.contact.country.basys: unknown key (expected class, basis)"},
    {"misspelled entity", "contact.given_name:", "contct.given_name:",
     "BR.yaml:17: fields.contct.given_name: no entity \"contct\""},
    {"plural entity", "contact.given_name:", "contacts.given_name:",
     "BR.yaml:17: fields.contacts.given_name: entities are named in the singular: contact"},
    {"misspelled field", "contact.given_name:", "contact.givn_name:",
     "BR.yaml:17: fields.contact.givn_name: contact has no field \"givn_name\""},
    {"meta field", "contact.given_name:", "contact.created_at:",
     "BR.yaml:17: fields.contact.created_at: created_at is a meta field and cannot be "
     "classified"},
    {"internal field", "contact.given_name:", "user.password_hash:",
     "BR.yaml:17: fields.user.password_hash: user.password_hash is internal"},
    {"whole custom object", "contact.given_name:", "contact.custom:",
     "BR.yaml:17: fields.contact.custom: name custom fields one at a time"},
    {"duplicate field", "  contact.country: {", "  contact.given_name: {",
     "BR.yaml:18: fields.contact.given_name: appears twice (first on line 17)"},
    {"bad class", "class: pseudonymize", "class: pseudonymise",
     "BR.yaml:17: fields.contact.given_name.class: \"pseudonymise\" is not one of local_only, "
     "local_primary, pseudonymize, exportable, aggregate_only"},
    {"bad default class", "default_class: local_only", "default_class: local",
     "BR.yaml:14: default_class: \"local\" is not one of"},
    {"missing basis", "{class: exportable, basis: \"not personal data\"}", "{class: exportable}",
     "BR.yaml:20: fields.deal.amount_minor.basis: missing"},
    {"empty basis", "basis: \"design: cultural\"", "basis: \"\"",
     "BR.yaml:34: forbidden[0].basis: empty; every rule names the law"},
    {"blank basis", "basis: \"LGPD Art. 33 II\"", "basis:   ", "BR.yaml:13: transfer.basis: empty"},
    {"transfer not a boolean", "allowed: true", "allowed: yes",
     "BR.yaml:12: transfer.allowed: must be true or false (got \"yes\")"},
    {"forbidden required field", "field: contact.birth_date", "field: deal.title",
     "BR.yaml:32: forbidden[0].field: deal.title is required by every deal"},
    {"forbidden without reason", "    reason: \"not asked of customers in this market\"\n", "",
     "BR.yaml:32: forbidden[0].reason: missing"},
    {"bad consent channel", "  sms: {mode", "  fax: {mode",
     "BR.yaml:70: consent.fax: \"fax\" is not an activity channel (visit, call, sms"},
    {"bad consent mode", "mode: opt_out", "mode: optout",
     "BR.yaml:71: consent.call.mode: \"optout\" is not one of double_opt_in, single_opt_in, "
     "opt_out"},
    {"ttl with single opt-in", "sms: {mode: single_opt_in,",
     "sms: {mode: single_opt_in, token_ttl_hours: 24,",
     "BR.yaml:70: consent.sms.token_ttl_hours: only double_opt_in takes a token lifetime"},
    {"ttl out of range", "token_ttl_hours: 48", "token_ttl_hours: 721",
     "BR.yaml:69: consent.email.token_ttl_hours: must be a whole number from 1 to 720 (got "
     "\"721\")"},
    {"ttl zero", "token_ttl_hours: 48", "token_ttl_hours: 0",
     "BR.yaml:69: consent.email.token_ttl_hours: must be a whole number from 1 to 720"},
    {"retention days 0", "days: 365", "days: 0",
     "BR.yaml:75: retention.note.days: must be a whole number from 1 to 36500"},
    {"retention days too many", "days: 365", "days: 36501",
     "BR.yaml:75: retention.note.days: must be a whole number from 1 to 36500"},
    {"retention negative", "days: 365", "days: -1",
     "BR.yaml:75: retention.note.days: must be a whole number from 1 to 36500"},
    {"retention unknown entity", "  note: {days", "  notes: {days",
     "BR.yaml:75: retention.notes: entities are named in the singular: note"},
    {"retention of users", "  note: {days", "  user: {days",
     "BR.yaml:75: retention.user: user accounts are not purged"},
    {"unknown aggregate query", "deals_by_stage,", "deals_by_stag,",
     "BR.yaml:79: aggregates.queries[1]: \"deals_by_stag\" is not a built-in query"},
    {"duplicate aggregate query", "deals_by_stage,", "contacts_by_country,",
     "BR.yaml:79: aggregates.queries[1]: contacts_by_country listed twice"},
    {"standing aggregate not in queries", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  standing: [deals_by_stage_month]\n",
     "BR.yaml:80: aggregates.standing[0]: \"deals_by_stage_month\" is not in "
     "aggregates.queries"},
    {"standing aggregate twice", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  standing: [deals_by_stage, deals_by_stage]\n",
     "BR.yaml:80: aggregates.standing[1]: deals_by_stage listed twice"},
    {"noise epsilon not a number", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  noise: {mechanism: geometric, epsilon: 0.5x, budget: 4, "
     "period: month}\n",
     "BR.yaml:80: aggregates.noise.epsilon: must be a decimal number from 0.010000 to 10 (at most "
     "six decimals; got \"0.5x\")"},
    {"noise epsilon too small", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  noise: {mechanism: geometric, epsilon: 0.001, budget: 4, "
     "period: month}\n",
     "BR.yaml:80: aggregates.noise.epsilon: must be a decimal number from 0.010000 to 10"},
    {"noise budget under epsilon", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  noise: {mechanism: geometric, epsilon: 0.5, budget: 0.25, "
     "period: month}\n",
     "BR.yaml:80: aggregates.noise.budget: 0.250000 is less than one answer's epsilon 0.500000: "
     "no answer could be given"},
    {"noise mechanism", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  noise: {mechanism: laplace, epsilon: 0.5, budget: 4, period: "
     "month}\n",
     "BR.yaml:80: aggregates.noise.mechanism: \"laplace\" is not one of geometric"},
    {"noise period", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  noise: {mechanism: geometric, epsilon: 0.5, budget: 4, "
     "period: week}\n",
     "BR.yaml:80: aggregates.noise.period: \"week\" is not one of month, quarter, year"},
    {"noise without budget", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  noise: {mechanism: geometric, epsilon: 0.5, period: month}\n",
     "BR.yaml:80: aggregates.noise.budget: missing"},
    {"noise unknown key", "activities_by_channel_month]\n",
     "activities_by_channel_month]\n  noise: {mechanism: geometric, epsilon: 0.5, budget: 4, "
     "period: month, seed: 3}\n",
     "BR.yaml:80: aggregates.noise.seed: "},
    {"min_cell_size 1", "min_cell_size: 10", "min_cell_size: 1",
     "BR.yaml:77: aggregates.min_cell_size: must be a whole number from 2 to 1000"},
    {"custom field bad type", "type: integer", "type: number",
     "BR.yaml:57: custom_fields[3].type: \"number\" is not one of text, enum, integer, date, "
     "boolean"},
    {"custom field bad name", "name: citizenship", "name: Citizenship",
     "BR.yaml:51: custom_fields[2].name: \"Citizenship\" must be lower-case"},
    {"custom field declared twice", "name: since", "name: cpf",
     "BR.yaml:61: custom_fields[4].name: contact.custom.cpf declared twice (first on line 36)"},
    {"bad regex", "'^[0-9]{3}\\.[0-9]{3}\\.[0-9]{3}-[0-9]{2}$'", "'^[0-9{3}'",
     "BR.yaml:39: custom_fields[0].pattern: not a POSIX extended regular expression"},
    {"pattern on an enum", "    values: [varejo, atacado, governo]\n",
     "    values: [varejo, atacado, governo]\n    pattern: x\n",
     "BR.yaml:48: custom_fields[1].pattern: only text fields take a pattern"},
    {"enum without values", "    values: [varejo, atacado, governo]\n", "",
     "BR.yaml:44: custom_fields[1].values: missing: an enum field lists its values"},
    {"enum with empty values", "[varejo, atacado, governo]", "[]",
     "BR.yaml:47: custom_fields[1].values: empty list"},
    {"duplicate enum value", "[varejo, atacado, governo]", "[varejo, atacado, varejo]",
     "BR.yaml:47: custom_fields[1].values[2]: \"varejo\" listed twice"},
    {"max_length too large", "max_length: 14", "max_length: 100000",
     "BR.yaml:40: custom_fields[0].max_length: must be a whole number from 1 to 16384"},
    {"bad label tag", "labels: {pt-BR: Segmento", "labels: {pt_BR: Segmento",
     "BR.yaml:48: custom_fields[1].labels.pt_BR: \"pt_BR\" is not a BCP 47 language tag"},
    {"bad locale language", "language: pt-BR", "language: portuguese",
     "BR.yaml:6: locale.language: \"portuguese\" is not a BCP 47 language tag"},
    {"bad preferred channel", "[messaging_app, visit, call]", "[messaging_app, pigeon]",
     "BR.yaml:10: locale.preferred_channels[1]: \"pigeon\" is not an activity channel"},
    {"bad address placeholder", "{postal_code}", "{postcode}",
     "BR.yaml:9: locale.address_format: {postcode} is not a field of a contact's address"},
    {"unknown time zone", "[messaging_app, visit, call]\n",
     "[messaging_app, visit, call]\n  time_zone: America/Atlantis\n",
     "BR.yaml:11: locale.time_zone: \"America/Atlantis\" is not in the TZ database"},
    {"time zone path", "[messaging_app, visit, call]\n",
     "[messaging_app, visit, call]\n  time_zone: ../../etc/passwd\n",
     "BR.yaml:11: locale.time_zone: \"../../etc/passwd\" is not a time zone name"},
    {"quiet hours without a zone", "[messaging_app, visit, call]\n",
     "[messaging_app, visit, call]\n  quiet_hours: {sms: \"21:00-08:00\"}\n",
     "BR.yaml:11: locale.quiet_hours: needs locale.time_zone"},
    {"bad quiet hours", "[messaging_app, visit, call]\n",
     "[messaging_app, visit, call]\n  time_zone: America/Sao_Paulo\n"
     "  quiet_hours: {sms: \"21:00-08:00\", call: \"9pm-8am\"}\n",
     "BR.yaml:12: locale.quiet_hours.call: \"9pm-8am\" is not HH:MM-HH:MM"},
    {"quiet hours out of range", "[messaging_app, visit, call]\n",
     "[messaging_app, visit, call]\n  time_zone: America/Sao_Paulo\n"
     "  quiet_hours: {sms: \"24:00-08:00\"}\n",
     "BR.yaml:12: locale.quiet_hours.sms: \"24:00-08:00\" is not HH:MM-HH:MM"},
    {"quiet hours empty window", "[messaging_app, visit, call]\n",
     "[messaging_app, visit, call]\n  time_zone: America/Sao_Paulo\n"
     "  quiet_hours: {sms: \"08:00-08:00\"}\n",
     "BR.yaml:12: locale.quiet_hours.sms: \"08:00-08:00\" starts and ends at the same minute"},
    {"quiet hours for email", "[messaging_app, visit, call]\n",
     "[messaging_app, visit, call]\n  time_zone: America/Sao_Paulo\n"
     "  quiet_hours: {email: \"21:00-08:00\"}\n",
     "BR.yaml:12: locale.quiet_hours.email: unknown key (expected sms, call)"},
    {"undeclared custom field", "contact.custom.cpf:", "contact.custom.rg:",
     "BR.yaml:19: fields.contact.custom.rg: custom field contact.custom.rg is not declared in "
     "custom_fields"},
    {"custom field of another entity", "contact.custom.cpf:", "organization.custom.cpf:",
     "BR.yaml:19: fields.organization.custom.cpf: custom field organization.custom.cpf is not "
     "declared"},
    {"pin on unknown field", "field: custom.citizenship", "field: citizenship",
     "BR.yaml:24: pin_records[0].field: contact has no field \"citizenship\""},
    {"pin value not valid", "[ru, by]", "[ru, xx]",
     "BR.yaml:29: pin_records[1].values[1]: not a valid value: country: not an ISO 3166-1"},
    {"pin without values", "values: [RU]", "values: []",
     "BR.yaml:25: pin_records[0].values: empty list"},
    {"duplicate YAML key", "  date_format: DD/MM/YYYY\n",
     "  date_format: DD/MM/YYYY\n  language: pt-BR\n",
     "BR.yaml:8: locale.language: appears twice (first on line 6)"},
    {"duplicate top-level key", "name: Brazil\n", "name: Brazil\nregion: BR\n",
     "BR.yaml:5: region: appears twice (first on line 2)"},
    {"anchor", "default_basis: \"design", "default_basis: &b \"design",
     "BR.yaml:15: (yaml): anchor &b: anchors are not allowed"},
    {"tag", "name: Brazil", "name: !!str Brazil", "BR.yaml:4: (yaml): tag tag:yaml.org,2002:str"},
    {"section of the wrong kind",
     "retention:\n  activity: {days: 1825, basis: \"LGPD Art. 15 I\"}\n  note: {days: 365, "
     "basis: \"LGPD Art. 16\"}\n",
     "retention: []\n", "BR.yaml:73: retention: expected a mapping (key: value lines), not a list"},
    {"list instead of value", "name: Brazil", "name: [Brazil]",
     "BR.yaml:4: name: expected a single value, not a list"},
    {"value too long", "name: Brazil",
     "name: Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil "
     "Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil Brazil",
     "BR.yaml:4: name: longer than 127 bytes"},
    {"control character by escape", "name: Brazil", "name: \"Bra\\u0001zil\"",
     "BR.yaml:4: name: control character or NUL at byte 4"},
    {"invalid UTF-8", "name: Brazil", "name: Bra\xffzil",
     "BR.yaml:4: (file): not UTF-8 text (bad byte or control character at byte"},
    {"tab indentation", "  language: pt-BR", "\tlanguage: pt-BR",
     "BR.yaml:6: (yaml): found character that cannot start any token at column 1 (while "
     "scanning for the next token on line 6); indent with spaces, not tabs"},
    {"unclosed quote", "basis: \"LGPD Art. 16\"}", "basis: \"LGPD Art. 16}",
     "BR.yaml:78: (yaml): did not find expected ',' or '}' at column 11 (while parsing a flow "
     "mapping on line 75)"},
};

static void test_bad_files(void)
{
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        char *text = mutate(bad_files[i].from, bad_files[i].to);
        CHECK(text != NULL);
        if (!text)
            continue;
        refused(bad_files[i].what, text, strlen(text), bad_files[i].prefix);
        free(text);
    }
}

/* aggregates.noise: the keys load into the policy, epsilon in millionths */
static void test_noise(void)
{
    char *text = mutate("activities_by_channel_month]\n",
                        "activities_by_channel_month]\n  noise: {mechanism: geometric, "
                        "epsilon: 0.25, budget: 12.5, period: quarter}\n");
    CHECK(text != NULL);
    struct policy *p = text ? load_ok("BR.yaml", text, strlen(text)) : NULL;
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ(p->noise.on, 1);
        CHECK_EQ(p->noise.epsilon_micro, 250000);
        CHECK_EQ(p->noise.budget_micro, 12500000);
        CHECK_EQ(p->noise.period, POLICY_NOISE_QUARTER);
    }
    policy_free(p);
    free(text);
    p = load_ok("BR.yaml", VALID, strlen(VALID));
    CHECK(p && !p->noise.on);
    policy_free(p);
}

/* ---- aggregates.define ---------------------------------------------------- */

/* VALID with three more fields classified (lines 22-24), `queries` as the
 * aggregates.queries line (82) and `define` after it (from line 83). */
static char *with_defines(const char *queries, const char *define)
{
    static const char seg[] =
        "  contact.custom.segment: {class: aggregate_only, basis: \"design\"}\n";
    static const char more[] =
        "  activity.channel: {class: exportable, basis: \"design\"}\n"
        "  activity.occurred_at: {class: aggregate_only, basis: \"design\"}\n"
        "  contact.region: {class: exportable, basis: \"design\"}\n";
    const char *q = strstr(VALID, "  queries: [");
    const char *at = strstr(VALID, seg);
    if (!q || !at)
        return NULL;
    size_t need = strlen(VALID) + sizeof more + strlen(queries) + strlen(define) + 16;
    char *s = malloc(need);
    if (!s)
        return NULL;
    size_t pre = (size_t)(at - VALID) + strlen(seg);
    snprintf(s, need, "%.*s%s%.*s  queries: [%s]\n%s", (int)pre, VALID, more,
             (int)(q - (VALID + pre)), VALID + pre, queries, define);
    return s;
}

static const char ONE_DEFINE[] = "  define:\n"                                 /* 83 */
                                 "    - name: activities_by_channel_month_x\n" /* 84 */
                                 "      count: activity\n"                     /* 85 */
                                 "      rows: channel\n"                       /* 86 */
                                 "      columns: occurred_at\n"                /* 87 */
                                 "      coarsen: month\n";                     /* 88 */

static void test_defines(void)
{
    char *text = with_defines("contacts_by_country, activities_by_channel_month_x", ONE_DEFINE);
    CHECK(text != NULL);
    struct policy *p = text ? load_ok("BR.yaml", text, strlen(text)) : NULL;
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ(p->ndefines, 1);
        const struct policy_aggregate_define *d =
            policy_define_named(p, "activities_by_channel_month_x");
        CHECK(d != NULL);
        if (d) {
            CHECK_STR(d->rows->field, "channel");
            CHECK_STR(d->cols->field, "occurred_at");
            CHECK_EQ(d->grain, POLICY_GRAIN_MONTH);
            CHECK_STR(d->qualified[1], "activity.occurred_at");
            CHECK_EQ(d->line, 84);
        }
        CHECK_EQ(p->naggregates, 2);
        CHECK(policy_define_named(p, "contacts_by_country") == NULL);
    }
    policy_free(p);
    free(text);

    /* defined but not listed: it loads, and is simply not allowed */
    text = with_defines("contacts_by_country", ONE_DEFINE);
    p = text ? load_ok("BR.yaml", text, strlen(text)) : NULL;
    CHECK(p != NULL && p->ndefines == 1 && p->naggregates == 1);
    policy_free(p);
    free(text);

    static const struct bad bad[] = {
        {"listed, not defined", "", "",
         "BR.yaml:82: aggregates.queries[1]: \"activities_by_channel_month_x\" is not a built-in "
         "query"},
        {"bad name", "name: activities_by_channel_month_x", "name: Contacts; DROP",
         "BR.yaml:84: aggregates.define[0].name: \"Contacts; DROP\" is not a name: 3 to 48 of "
         "a-z, 0-9 and _"},
        {"shipped name", "name: activities_by_channel_month_x", "name: completeness_by_field",
         "BR.yaml:84: aggregates.define[0].name: completeness_by_field is a built-in aggregate"},
        {"unknown entity", "count: activity", "count: campaign",
         "BR.yaml:85: aggregates.define[0].count: no entity \"campaign\""},
        {"entity not countable", "count: activity", "count: note",
         "BR.yaml:85: aggregates.define[0].count: note records cannot be counted by a defined "
         "aggregate (contact, organization, activity, deal can)"},
        {"unknown field", "rows: channel", "rows: chanel",
         "BR.yaml:86: aggregates.define[0].rows: activity has no field \"chanel\" (it may count "
         "by: channel, direction, occurred_at (with coarsen))"},
        {"free text", "rows: channel", "rows: subject",
         "BR.yaml:86: aggregates.define[0].rows: activity.subject cannot be counted by: it is "
         "free text or names a person, and the engine cannot fold it safely (activity may count "
         "by: channel, direction, occurred_at (with coarsen))"},
        {"local_only field", "rows: channel", "rows: direction",
         "BR.yaml:86: aggregates.define[0].rows: activity.direction is local_only in this "
         "policy: it may not leave, not even inside a count"},
        {"same field twice", "columns: occurred_at", "columns: channel",
         "BR.yaml:87: aggregates.define[0].columns: channel is already the rows"},
        {"date without coarsening", "      coarsen: month\n", "",
         "BR.yaml:84: aggregates.define[0].coarsen: activity.occurred_at is a date: say coarsen: "
         "week, month or quarter (never by day)"},
        {"by day", "coarsen: month", "coarsen: day",
         "BR.yaml:88: aggregates.define[0].coarsen: never by day: week, month or quarter"},
        {"unknown grain", "coarsen: month", "coarsen: fortnight",
         "BR.yaml:88: aggregates.define[0].coarsen: \"fortnight\" is not one of week, month, "
         "quarter"},
        {"unknown key", "coarsen: month", "sql: \"SELECT 1\"",
         "BR.yaml:88: aggregates.define[0].sql: unknown key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char def[512];
        const char *at = *bad[i].from ? strstr(ONE_DEFINE, bad[i].from) : NULL;
        if (at)
            snprintf(def, sizeof def, "%.*s%s%s", (int)(at - ONE_DEFINE), ONE_DEFINE, bad[i].to,
                     at + strlen(bad[i].from));
        else
            snprintf(def, sizeof def, "%s", ONE_DEFINE);
        const char *queries =
            i == 0 ? "contacts_by_country, activities_by_channel_month_x" : "contacts_by_country";
        if (i == 0)
            def[0] = '\0';
        char *t = with_defines(queries, def);
        CHECK(t != NULL);
        if (t)
            refused(bad[i].what, t, strlen(t), bad[i].prefix);
        free(t);
    }

    /* the same name twice, and more than 32 */
    char many[16384] = "  define:\n";
    for (int i = 0; i < 2; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "    - {name: dup_name, count: contact, rows: country}\n");
    text = with_defines("contacts_by_country", many);
    if (text)
        refused("defined twice", text, strlen(text),
                "BR.yaml:85: aggregates.define[1].name: dup_name is defined twice (first on line "
                "84)");
    free(text);
    snprintf(many, sizeof many, "  define:\n");
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "    - {name: agg_%02d, count: contact, rows: country}\n", i);
    text = with_defines("contacts_by_country", many);
    if (text)
        refused("too many", text, strlen(text),
                "BR.yaml:84: aggregates.define: 33 definitions; at most 32");
    free(text);
}

static void test_bad_documents(void)
{
    refused("alias", "format: *x\n", 11, "BR.yaml:1: (yaml): alias *x: aliases are not allowed");
    refused("not a mapping", "- a\n- b\n", 8,
            "BR.yaml:1: (file): the top level must be a mapping (format: ..., region: ...), not "
            "a list");
    refused("a plain value", "hello\n", 6, "BR.yaml:1: (file): the top level must be a mapping");
    refused("empty", "", 0, "BR.yaml:1: (file): empty; a policy starts with format:");
    refused("only a comment", "# nothing\n", 10, "BR.yaml:1: (file): empty");
    refused("NUL byte", "format: a\0b\n", 12, "BR.yaml:1: (file): not UTF-8 text");

    /* Two documents: the second starts after the last line of VALID. */
    size_t n = strlen(VALID);
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += VALID[i] == '\n';
    char *two = malloc(n + 32);
    CHECK(two != NULL);
    if (two) {
        memcpy(two, VALID, n);
        memcpy(two + n, "---\nformat: x\n", 15);
        char prefix[96];
        snprintf(prefix, sizeof prefix, "BR.yaml:%d: (yaml): a second YAML document", lines + 1);
        refused("two documents", two, strlen(two), prefix);
        free(two);
    }

    /* Just over the cap, though every byte is a valid comment. */
    size_t big = POLICY_MAX_BYTES + 1;
    char *huge = malloc(big);
    CHECK(huge != NULL);
    if (huge) {
        memset(huge, '#', big);
        for (size_t i = 79; i < big; i += 80)
            huge[i] = '\n';
        refused("oversized", huge, big, "BR.yaml:1: (file): larger than 262144 bytes (262145)");
        free(huge);
    }
}

/* Minimal files: only the required keys, and sections with defaults. */
static void test_minimal(void)
{
    static const char min[] = "format: outpost-region-policy/1\n"
                              "region: EU-DE\n"
                              "country: DE\n"
                              "default_class: local_only\n"
                              "default_basis: 'DSGVO Art. 5 (1) c'\n";
    struct policy *p = load_ok("regions/EU-DE.yaml", min, strlen(min));
    if (p) {
        CHECK_STR(p->region, "EU-DE");
        CHECK_EQ(p->nfields + p->nforbidden + p->ncustom + p->npins + p->nconsent, 0);
        CHECK_EQ(p->transfer_allowed, 0);
        CHECK_EQ(policy_class_of(p, &entity_contact, "email"), POLICY_LOCAL_ONLY);
        CHECK(policy_consent_for(p, "email") == NULL);
        policy_free(p);
    }
    /* A name without .yaml stands for the region itself. */
    p = load_ok("EU-DE", min, strlen(min));
    policy_free(p);
    /* Missing required keys, named in turn. */
    struct op_error err;
    struct policy *q = NULL;
    op_error_clear(&err);
    size_t len = strlen(min) - strlen("default_basis: 'DSGVO Art. 5 (1) c'\n");
    CHECK_EQ(policy_load_buffer("EU-DE.yaml", min, len, &q, &err), -EINVAL);
    CHECK_STR(err.msg, "EU-DE.yaml:1: default_basis: missing");
    CHECK_STR(err.field, "default_basis");
    policy_free(q);
    /* Text named otherwise (a mailbox message, a file anywhere): the
     * region is given, and messages name the text. */
    q = NULL;
    CHECK_EQ(policy_load_buffer_for("/tmp/offer.txt", "EU-DE", min, strlen(min), &q, &err), 0);
    CHECK(q && !strcmp(q->region, "EU-DE") && !strcmp(q->path, "/tmp/offer.txt"));
    policy_free(q);
    q = NULL;
    CHECK_EQ(policy_load_buffer_for("message 7 from HQ", "KE", min, strlen(min), &q, &err),
             -EINVAL);
    CHECK_STR(err.msg, "message 7 from HQ:2: region: \"EU-DE\" is not KE, the region it is "
                       "loaded for");
    CHECK(q == NULL);
    CHECK_EQ(policy_load_buffer_for("/tmp/x", "EU-DE", min, len, &q, &err), -EINVAL);
    CHECK_STR(err.msg, "/tmp/x:1: default_basis: missing");
}

static void test_files(void)
{
    char dir[] = "/tmp/test_policy.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], found[512];
    snprintf(path, sizeof path, "%s/BR.yaml", dir);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (!fp)
        return;
    CHECK_EQ(fwrite(VALID, 1, strlen(VALID), fp), strlen(VALID));
    fclose(fp);

    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(setenv("OUTPOST_REGIONS_DIR", dir, 1), 0);
    CHECK_EQ(policy_find_file("BR", found, sizeof found, &err), 0);
    CHECK_STR(found, path);

    struct policy *p = NULL;
    CHECK_EQ(policy_load_file(found, &p, &err), 0);
    if (p) {
        CHECK_STR(p->path, path);
        char want[65];
        sha256_hex(VALID, strlen(VALID), want);
        CHECK_STR(p->hash, want);
        policy_free(p);
    }

    /* The same bytes under another region's name. */
    char other[256];
    snprintf(other, sizeof other, "%s/AR.yaml", dir);
    CHECK_EQ(rename(path, other), 0);
    p = NULL;
    CHECK_EQ(policy_load_file(other, &p, &err), -EINVAL);
    CHECK(p == NULL);
    char prefix[300];
    CHECK(snprintf(prefix, sizeof prefix,
                   "%s:2: region: \"BR\" does not match the file name (AR.yaml)",
                   other) < (int)sizeof prefix);
    CHECK_STR(err.msg, prefix);
    /* Loaded for its region, the file's name says nothing; for another
     * region it is refused, naming both. */
    CHECK_EQ(policy_load_file_for(other, "BR", &p, &err), 0);
    if (p)
        CHECK_STR(p->region, "BR");
    policy_free(p);
    p = NULL;
    CHECK_EQ(policy_load_file_for(other, "KE", &p, &err), -EINVAL);
    CHECK(p == NULL);
    CHECK_CONTAINS(err.msg, ":2: region: \"BR\" is not KE");

    /* A file over the cap is refused before it is read. */
    char big[256];
    snprintf(big, sizeof big, "%s/US-TX.yaml", dir);
    fp = fopen(big, "w");
    CHECK(fp != NULL);
    if (fp) {
        for (int i = 0; i <= POLICY_MAX_BYTES / 8; i++)
            fputs("# pad.\n\n", fp); /* 8 bytes */
        fclose(fp);
        CHECK_EQ(policy_load_file(big, &p, &err), -EINVAL);
        CHECK(p == NULL);
        CHECK_CONTAINS(err.msg, ":1: (file): larger than 262144 bytes");
        CHECK_EQ(unlink(big), 0);
    }

    CHECK_EQ(policy_load_file("/nonexistent/BR.yaml", &p, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "cannot open /nonexistent/BR.yaml");
    CHECK_EQ(policy_load_file(dir, &p, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "not a regular file");

    /* Missing region: the message lists every place looked in. */
    op_error_clear(&err);
    CHECK_EQ(policy_find_file("ZZ-NOWHERE", found, sizeof found, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "no policy file ZZ-NOWHERE.yaml for region ZZ-NOWHERE");
    CHECK_CONTAINS(err.msg, dir);
    CHECK_CONTAINS(err.msg, "schema/regions");

    /* Names that could leave the directory, or are not region codes. */
    CHECK_EQ(policy_find_file("../AR", found, sizeof found, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "\"../AR\" is not a region code");
    CHECK_EQ(policy_find_file("EU/DE", found, sizeof found, &err), -EINVAL);
    CHECK_EQ(policy_find_file("br", found, sizeof found, &err), -EINVAL);
    CHECK_EQ(policy_find_file("", found, sizeof found, &err), -EINVAL);
    CHECK_EQ(policy_find_file("-BR", found, sizeof found, &err), -EINVAL);

    /* Found but the buffer is too small. */
    CHECK_EQ(policy_find_file("AR", found, 8, &err), -ENAMETOOLONG);

    CHECK_EQ(unsetenv("OUTPOST_REGIONS_DIR"), 0);
    CHECK_EQ(unlink(other), 0);
    CHECK_EQ(rmdir(dir), 0);
}

int main(void)
{
    RUN(test_valid_policy);
    RUN(test_custom_check);
    RUN(test_bad_files);
    RUN(test_noise);
    RUN(test_defines);
    RUN(test_bad_documents);
    RUN(test_minimal);
    RUN(test_files);
    return tl_report();
}
