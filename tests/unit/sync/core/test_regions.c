/* Tests for the shipped region profiles in schema/regions/: each of the 13
 * files is found and loaded by sync/core/policy.c, names its own region,
 * classifies every built-in field of every entity explicitly (nothing is
 * left to default_class by omission), has consent rules, and every rule
 * names the law and article it follows or says it is a design choice.
 * A few region-specific rules a user would notice (German double opt-in,
 * US opt-out e-mail, Russian and Chinese localisation) are checked by
 * value, and each declared custom field accepts a real example and
 * refuses a wrong one. */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "outpost_config.h"
#include "policy.h"
#include "testlib.h"

struct region_case {
    const char *code;
    const char *country;
};

static const struct region_case regions[] = {
    {"EU-DE", "DE"}, {"EU-FR", "FR"}, {"BR", "BR"},    {"AR", "AR"}, {"CO", "CO"},
    {"RU", "RU"},    {"CN", "CN"},    {"IN", "IN"},    {"ID", "ID"}, {"KE", "KE"},
    {"NG", "NG"},    {"US-CA", "US"}, {"US-TX", "US"},
};
#define NREGIONS (sizeof regions / sizeof regions[0])

/* Loads a shipped profile through policy_find_file, as the node does;
 * prints the loader's message when it fails. */
static struct policy *load(const char *code)
{
    char path[1024];
    struct op_error err;
    struct policy *p = NULL;
    op_error_clear(&err);
    int rc = policy_find_file(code, path, sizeof path, &err);
    if (rc < 0) {
        fprintf(stderr, "%s: policy_find_file: %s\n", code, err.msg);
        CHECK_EQ(rc, 0);
        return NULL;
    }
    op_error_clear(&err);
    rc = policy_load_file(path, &p, &err);
    if (rc < 0) {
        fprintf(stderr, "%s: policy_load_file: %s\n", code, err.msg);
        CHECK_EQ(rc, 0);
        return NULL;
    }
    return p;
}

/* A basis names a law with an article, section or paragraph, a statute
 * reference in another common form, or says it is a design choice. */
static regex_t law_re;

static int names_law_or_design(const char *basis)
{
    return basis[0] && regexec(&law_re, basis, 0, NULL, 0) == 0;
}

static void check_basis(const char *code, const char *what, const char *basis)
{
    if (!names_law_or_design(basis))
        fprintf(stderr, "%s: %s: basis names no law, article or design: \"%s\"\n", code, what,
                basis);
    CHECK(names_law_or_design(basis));
}

static void basis_pattern_discriminates(void)
{
    /* The check above must be able to fail. */
    CHECK(names_law_or_design("GDPR Art. 9(1)"));
    CHECK(names_law_or_design("UWG §7(2) Nr. 2; BGH I ZR 164/09"));
    CHECK(names_law_or_design("Kenya DPA 2019 s.48-50"));
    CHECK(names_law_or_design("CAN-SPAM 15 U.S.C. 7704"));
    CHECK(names_law_or_design("152-FZ Art. 18(5)"));
    CHECK(names_law_or_design("CCPA Cal. Civ. Code 1798.120"));
    CHECK(names_law_or_design("Ley 1581/2012 Art. 26"));
    CHECK(names_law_or_design("design: HQ needs counts only"));
    CHECK(!names_law_or_design("Ley 26.951"));
    CHECK(!names_law_or_design("because it seemed right"));
    CHECK(!names_law_or_design("the law says so"));
    CHECK(!names_law_or_design(""));
}

static const struct policy_field_rule *listed(const struct policy *p, const struct entity_def *e,
                                              const char *field)
{
    for (size_t i = 0; i < p->nfields; i++)
        if (p->fields[i].entity == e && !strcmp(p->fields[i].field, field))
            return &p->fields[i];
    return NULL;
}

static void every_profile_loads_and_is_complete(void)
{
    for (size_t r = 0; r < NREGIONS; r++) {
        const char *code = regions[r].code;
        struct policy *p = load(code);
        if (!p)
            continue;
        CHECK_STR(p->region, code);
        CHECK_STR(p->country, regions[r].country);
        CHECK_INT(strlen(p->hash), ==, 64);
        CHECK_INT(strlen(p->name), >, 0);
        CHECK_INT(strlen(p->language), >, 0);
        CHECK_INT(p->npreferred_channels, >, 0);
        CHECK(strstr(p->address_format, "{street}") != NULL);
        CHECK(strstr(p->address_format, "{locality}") != NULL);
        CHECK(strstr(p->address_format, "{country}") != NULL);
        /* Every profile says its time zone and its quiet hours for SMS
         * and calls (docs/REGIONS.md). */
        CHECK_INT(strlen(p->time_zone), >, 0);
        CHECK(p->quiet_sms.set);
        CHECK(p->quiet_call.set);

        /* Every built-in, non-internal field is classified explicitly. The
         * custom object is classified member by member (custom.NAME), so
         * it is not a field of its own here. */
        for (size_t i = 0; entity_all[i]; i++) {
            const struct entity_def *e = entity_all[i];
            for (size_t k = 0; k < e->nfields; k++) {
                const struct field_def *f = &e->fields[k];
                if ((f->flags & FIELD_INTERNAL) || !strcmp(f->name, "custom"))
                    continue;
                if (!listed(p, e, f->name))
                    fprintf(stderr, "%s: %s.%s is not classified explicitly\n", code, e->name,
                            f->name);
                CHECK(listed(p, e, f->name) != NULL);
            }
        }
        /* Every declared custom field is classified too. */
        for (size_t i = 0; i < p->ncustom; i++) {
            char name[80];
            snprintf(name, sizeof name, "custom.%s", p->custom[i].name);
            if (!listed(p, p->custom[i].entity, name))
                fprintf(stderr, "%s: %s.%s is not classified\n", code, p->custom[i].entity->name,
                        name);
            CHECK(listed(p, p->custom[i].entity, name) != NULL);
            check_basis(code, name, p->custom[i].basis);
        }

        CHECK_INT(p->nconsent, >=, 1);
        CHECK_INT(p->nretention, >=, 1);
        CHECK_INT(p->min_cell_size, >=, 5);
        CHECK_INT(p->naggregates, >=, 1);

        char what[160];
        check_basis(code, "default_basis", p->default_basis);
        check_basis(code, "transfer", p->transfer_basis);
        for (size_t i = 0; i < p->nfields; i++) {
            snprintf(what, sizeof what, "fields.%s.%s", p->fields[i].entity->name,
                     p->fields[i].field);
            check_basis(code, what, p->fields[i].basis);
        }
        for (size_t i = 0; i < p->nforbidden; i++)
            check_basis(code, "forbidden", p->forbidden[i].basis);
        for (size_t i = 0; i < p->npins; i++)
            check_basis(code, "pin_records", p->pins[i].basis);
        for (size_t i = 0; i < p->nconsent; i++) {
            snprintf(what, sizeof what, "consent.%s", p->consent[i].channel);
            check_basis(code, what, p->consent[i].basis);
        }
        for (size_t i = 0; i < p->nretention; i++) {
            snprintf(what, sizeof what, "retention.%s", p->retention[i].entity->name);
            check_basis(code, what, p->retention[i].basis);
        }
        for (size_t i = 0; i < p->naggregates; i++)
            check_basis(code, "aggregates", p->aggregates[i].basis);

        /* Shared shape: free text never leaves in clear, pipeline figures do. */
        CHECK_EQ(policy_class_of(p, &entity_note, "body"), POLICY_LOCAL_ONLY);
        CHECK_EQ(policy_class_of(p, &entity_activity, "body"), POLICY_LOCAL_ONLY);
        CHECK_EQ(policy_class_of(p, &entity_deal, "amount_minor"), POLICY_EXPORTABLE);
        CHECK_EQ(policy_class_of(p, &entity_deal, "stage"), POLICY_EXPORTABLE);
        CHECK(policy_class_of(p, &entity_contact, "email") != POLICY_EXPORTABLE);
        CHECK(policy_class_of(p, &entity_contact, "family_name") != POLICY_EXPORTABLE);
        policy_free(p);
    }
}

static enum policy_consent_mode mode_of(const struct policy *p, const char *channel)
{
    const struct policy_consent_rule *r = policy_consent_for(p, channel);
    CHECK(r != NULL);
    return r ? r->mode : (enum policy_consent_mode) - 1;
}

static void regional_rules_by_value(void)
{
    struct policy *p = load("EU-DE");
    if (p) {
        CHECK_EQ(mode_of(p, "email"), POLICY_CONSENT_DOUBLE_OPT_IN);
        CHECK_EQ(mode_of(p, "sms"), POLICY_CONSENT_DOUBLE_OPT_IN);
        CHECK_EQ(mode_of(p, "call"), POLICY_CONSENT_SINGLE_OPT_IN);
        CHECK_EQ(mode_of(p, "direct_mail"), POLICY_CONSENT_OPT_OUT);
        CHECK_INT(policy_consent_for(p, "email")->token_ttl_hours, >=, 1);
        CHECK_EQ(policy_class_of(p, &entity_contact, "email"), POLICY_PSEUDONYMIZE);
        /* No law forbids it; it stays on the node instead. */
        CHECK(policy_forbidden_field(p, &entity_contact, "birth_date") == NULL);
        CHECK_EQ(policy_class_of(p, &entity_contact, "birth_date"), POLICY_LOCAL_ONLY);
        CHECK(p->transfer_allowed);
        policy_free(p);
    }
    p = load("EU-FR");
    if (p) {
        CHECK_EQ(mode_of(p, "email"), POLICY_CONSENT_SINGLE_OPT_IN);
        CHECK_EQ(mode_of(p, "call"), POLICY_CONSENT_SINGLE_OPT_IN); /* Bloctel ended 2026 */
        CHECK_CONTAINS(policy_consent_for(p, "call")->basis, "L.223-1");
        policy_free(p);
    }
    const char *us[] = {"US-CA", "US-TX"};
    for (size_t i = 0; i < 2; i++) {
        p = load(us[i]);
        if (!p)
            continue;
        CHECK_EQ(mode_of(p, "email"), POLICY_CONSENT_OPT_OUT);
        CHECK_CONTAINS(policy_consent_for(p, "email")->basis, "7704");
        CHECK(mode_of(p, "sms") != POLICY_CONSENT_OPT_OUT);
        CHECK_CONTAINS(policy_consent_for(p, "sms")->basis, "prior express written consent");
        CHECK(mode_of(p, "call") != POLICY_CONSENT_OPT_OUT);
        policy_free(p);
    }
    p = load("RU");
    if (p) {
        CHECK(!p->transfer_allowed);
        CHECK_EQ(policy_class_of(p, &entity_contact, "family_name"), POLICY_LOCAL_PRIMARY);
        CHECK_EQ(policy_class_of(p, &entity_contact, "phone"), POLICY_LOCAL_PRIMARY);
        int pinned = 0;
        for (size_t i = 0; i < p->npins; i++)
            if (p->pins[i].entity == &entity_contact &&
                !strcmp(p->pins[i].field, "custom.citizenship"))
                for (size_t k = 0; k < p->pins[i].nvalues; k++)
                    pinned |= !strcmp(p->pins[i].values[k], "RU");
        CHECK(pinned);
        CHECK_CONTAINS(p->pins[0].basis, "18(5)");
        CHECK_EQ(mode_of(p, "email"), POLICY_CONSENT_SINGLE_OPT_IN);
        policy_free(p);
    }
    p = load("CN");
    if (p) {
        CHECK(!p->transfer_allowed);
        CHECK_CONTAINS(p->transfer_basis, "PIPL");
        CHECK_EQ(policy_class_of(p, &entity_contact, "email"), POLICY_LOCAL_PRIMARY);
        CHECK_INT(p->npins, >=, 1);
        policy_free(p);
    }
    p = load("KE");
    if (p) {
        CHECK_INT(p->npins, >=, 1);
        CHECK_CONTAINS(p->pins[0].basis, "s.50");
        policy_free(p);
    }
}

/* Checks one example value against a region's custom field. */
/* The quiet hours that a law sets, by value (docs/REGIONS.md). */
static void quiet_hours_by_law(void)
{
    static const struct {
        const char *code, *zone;
        unsigned start, end;
    } law[] = {
        {"US-CA", "America/Los_Angeles", 21 * 60, 8 * 60}, /* TCPA 47 CFR 64.1200(c)(1) */
        {"US-TX", "America/Chicago", 21 * 60, 9 * 60},     /* Tex. Bus. & Com. Code 301.051 */
        {"IN", "Asia/Kolkata", 21 * 60, 10 * 60},          /* TRAI TCCCPR 2018 */
        {"CO", "America/Bogota", 19 * 60, 7 * 60},         /* Ley 2300 de 2023 */
        {"EU-FR", "Europe/Paris", 20 * 60, 10 * 60},       /* decret 2022-1313 */
        {"KE", "Africa/Nairobi", 20 * 60, 8 * 60},
    };
    for (size_t i = 0; i < sizeof law / sizeof law[0]; i++) {
        struct policy *p = load(law[i].code);
        if (!p)
            continue;
        CHECK_STR(p->time_zone, law[i].zone);
        CHECK_EQ(p->quiet_sms.start_min, law[i].start);
        CHECK_EQ(p->quiet_sms.end_min, law[i].end);
        CHECK_EQ(p->quiet_call.start_min, law[i].start);
        CHECK_EQ(p->quiet_call.end_min, law[i].end);
        policy_free(p);
    }
}

static void custom_value(const char *code, const struct policy *p, const struct entity_def *e,
                         const char *name, const char *value, int ok)
{
    const struct policy_custom_field *f = policy_custom_field(p, e, name);
    if (!f) {
        fprintf(stderr, "%s: custom field %s.%s not declared\n", code, e->name, name);
        CHECK(f != NULL);
        return;
    }
    struct op_error err;
    op_error_clear(&err);
    json_t *v = json_string(value);
    json_t *out = NULL;
    int rc = policy_custom_check(f, v, &out, &err);
    if ((rc == 0) != ok)
        fprintf(stderr, "%s: %s.custom.%s = \"%s\": expected %s, got rc %d (%s)\n", code, e->name,
                name, value, ok ? "accepted" : "refused", rc, err.msg);
    CHECK_EQ(rc == 0, ok);
    json_decref(v);
    json_decref(out);
}

struct custom_case {
    const char *code;
    const struct entity_def *entity;
    const char *name;
    const char *good;
    const char *bad;
};

static void custom_fields_accept_real_identifiers(void)
{
    const struct custom_case cases[] = {
        {"EU-DE", &entity_organization, "ust_id", "DE123456789", "DE12345678"},
        {"EU-FR", &entity_organization, "siret", "73282932000074", "732 829 320"},
        {"BR", &entity_contact, "cpf", "123.456.789-09", "12345678909"},
        {"BR", &entity_organization, "cnpj", "12.345.678/0001-95", "12345678000195"},
        {"BR", &entity_organization, "cnpj", "12.ABC.345/01DE-35", "12.ABC.345/01DE-3X"},
        {"AR", &entity_contact, "dni", "12345678", "12.345.678"},
        {"AR", &entity_organization, "cuit", "30-71234567-1", "99-71234567-1"},
        {"CO", &entity_contact, "cedula", "1020304050", "10203040501"},
        {"CO", &entity_organization, "nit", "900123456-7", "900123456"},
        {"RU", &entity_contact, "citizenship", "RU", "Russia"},
        {"RU", &entity_organization, "inn", "7707083893", "77070838931"},
        {"CN", &entity_organization, "uscc", "91350100M000100Y43", "91350100M000100Y4"},
        {"CN", &entity_contact, "data_category", "important", "secret"},
        {"IN", &entity_organization, "gstin", "27AAPFU0939F1ZV", "27AAPFU0939F1Z"},
        {"ID", &entity_organization, "npwp", "01.234.567.8-901.000", "01.234.567"},
        {"ID", &entity_organization, "npwp", "0123456789012345", "012345678901234567"},
        {"KE", &entity_organization, "kra_pin", "P051234567X", "X051234567P"},
        {"KE", &entity_contact, "processing_category", "prescribed", "strategic"},
        {"NG", &entity_organization, "rc_number", "RC123456", "123-456"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct policy *p = load(cases[i].code);
        if (!p)
            continue;
        custom_value(cases[i].code, p, cases[i].entity, cases[i].name, cases[i].good, 1);
        custom_value(cases[i].code, p, cases[i].entity, cases[i].name, cases[i].bad, 0);
        policy_free(p);
    }
}

int main(void)
{
    /* Test the source tree's files, not whatever may be installed. */
    setenv("OUTPOST_REGIONS_DIR", OUTPOST_SOURCE_REGIONS_DIR, 1);
    if (regcomp(&law_re,
                "design|Art\\. ?[0-9]|§ ?[0-9]|(^|[ (])ss?\\.[0-9]|U\\.S\\.C\\.|CFR [0-9]|"
                "Recital [0-9]|ch\\. [0-9]|reg\\. [0-9]|[LR]\\.[0-9]|Code (§ "
                "?)?[0-9]|[0-9]+/[0-9]{4}|-FZ",
                REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "regcomp failed\n");
        return 1;
    }
    RUN(basis_pattern_discriminates);
    RUN(every_profile_loads_and_is_complete);
    RUN(regional_rules_by_value);
    RUN(quiet_hours_by_law);
    RUN(custom_fields_accept_real_identifiers);
    regfree(&law_re);
    return tl_report();
}
