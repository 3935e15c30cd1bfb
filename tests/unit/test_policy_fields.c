/* Tests for the region policy's collection rules as the store enforces
 * them (appliance/store.c with sync/policy.h): forbidden fields refused on
 * create and update through the store and the CSV importer, custom fields
 * checked against their rule (pattern, enumeration, required), unknown
 * custom keys refused, and nothing enforced without a policy. The policy
 * is loaded from a string so the test does not depend on a shipped profile. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"
#include "importer.h"
#include "policy.h"
#include "store.h"
#include "testlib.h"

static char dir[] = "/tmp/outpost-test-policy-fields-XXXXXX";
static char path[300];

static struct policy *pol;

static const char policy_yaml[] = "format: outpost-region-policy/1\n"
                                  "region: EU-DE\n"
                                  "country: DE\n"
                                  "name: Test\n"
                                  "default_class: local_only\n"
                                  "default_basis: test\n"
                                  "forbidden:\n"
                                  "  - field: contact.birth_date\n"
                                  "    reason: not needed for sales\n"
                                  "    basis: \"GDPR Art. 5(1)(c)\"\n"
                                  "custom_fields:\n"
                                  "  - entity: contact\n"
                                  "    name: tax_no\n"
                                  "    type: text\n"
                                  "    pattern: \"^[0-9]{11}$\"\n"
                                  "    basis: \"AO §139b\"\n"
                                  "  - entity: contact\n"
                                  "    name: segment\n"
                                  "    type: enum\n"
                                  "    values: [retail, wholesale, government]\n"
                                  "    basis: design\n"
                                  "  - entity: organization\n"
                                  "    name: register_no\n"
                                  "    type: text\n"
                                  "    required: true\n"
                                  "    basis: \"HGB §8\"\n";

static void build_policy(void)
{
    struct op_error err;
    if (policy_load_buffer("EU-DE.yaml", policy_yaml, sizeof policy_yaml - 1, &pol, &err) < 0) {
        fprintf(stderr, "test policy: %s\n", err.msg);
        exit(1);
    }
}

static struct store *fresh_store(const char *name, const struct policy *p)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct store *s = NULL;
    struct op_error err;
    if (store_open(path, DB_OPEN_CREATE, &s, &err) < 0 || store_init_node(s, "EU-DE", &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    store_set_policy(s, p);
    return s;
}

/* Creates a record from JSON text; returns the rc and fills err. */
static int create(struct store *s, const struct entity_def *e, const char *json, json_t **out,
                  struct op_error *err)
{
    json_error_t je;
    json_t *in = json_loads(json, 0, &je);
    if (!in) {
        fprintf(stderr, "bad test JSON %s: %s\n", json, je.text);
        exit(1);
    }
    op_error_clear(err);
    int rc = store_create(s, e, in, 0, out, err);
    json_decref(in);
    return rc;
}

static int64_t count(struct store *s, const char *sql)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void forbidden_field_refused(void)
{
    struct store *s = fresh_store("forbidden.db", pol);
    struct op_error err;
    int rc = create(s, &entity_contact, "{\"family_name\":\"Weber\",\"birth_date\":\"1980-02-03\"}",
                    NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "birth_date");
    CHECK_STR(err.msg,
              "birth_date: not collected in EU-DE: not needed for sales (GDPR Art. 5(1)(c))");
    CHECK_EQ(count(s, "SELECT count(*) FROM contacts"), 0);

    /* an empty value is no value: allowed, and so is clearing the field */
    json_t *c = NULL;
    rc = create(s, &entity_contact, "{\"family_name\":\"Weber\",\"birth_date\":\"\"}", &c, &err);
    CHECK_EQ(rc, 0);
    const char *id = json_string_value(json_object_get(c, "id"));
    json_t *ch = json_pack("{s:s}", "birth_date", "1980-02-03");
    op_error_clear(&err);
    rc = store_update(s, &entity_contact, id, 1, ch, 0, NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "birth_date");
    CHECK_CONTAINS(err.msg, "not collected in EU-DE");
    json_decref(ch);
    ch = json_pack("{s:n}", "birth_date");
    rc = store_update(s, &entity_contact, id, 1, ch, 0, NULL, &err);
    CHECK_EQ(rc, 0);
    json_decref(ch);
    json_decref(c);

    /* the same input passes without a policy */
    store_set_policy(s, NULL);
    rc = create(s, &entity_contact, "{\"family_name\":\"Roth\",\"birth_date\":\"1980-02-03\"}",
                NULL, &err);
    CHECK_EQ(rc, 0);
    store_close(s);
}

static void custom_fields_checked(void)
{
    struct store *s = fresh_store("custom.db", pol);
    struct op_error err;
    json_t *c = NULL;
    int rc = create(s, &entity_contact,
                    "{\"family_name\":\"Weber\",\"custom\":{\"tax_no\":\"12345678901\","
                    "\"segment\":\"retail\"}}",
                    &c, &err);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_STR(json_string_value(json_object_get(json_object_get(c, "custom"), "segment")),
              "retail");

    rc = create(s, &entity_contact, "{\"family_name\":\"A\",\"custom\":{\"tax_no\":\"12-34\"}}",
                NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "custom.tax_no");

    rc = create(s, &entity_contact, "{\"family_name\":\"B\",\"custom\":{\"segment\":\"pirate\"}}",
                NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "custom.segment");

    rc = create(s, &entity_contact, "{\"family_name\":\"C\",\"custom\":{\"shoe_size\":\"44\"}}",
                NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "custom.shoe_size");
    CHECK_CONTAINS(err.msg, "not a custom field of a contact in EU-DE");

    /* required custom field of organizations */
    rc = create(s, &entity_organization, "{\"name\":\"Acme GmbH\"}", NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "custom.register_no");
    CHECK_CONTAINS(err.msg, "required in EU-DE (HGB §8)");
    json_t *o = NULL;
    rc = create(s, &entity_organization,
                "{\"name\":\"Acme GmbH\",\"custom\":{\"register_no\":\"HRB 1234\"}}", &o, &err);
    CHECK_EQ(rc, 0);
    /* and it cannot be removed afterwards */
    json_t *ch = json_loads("{\"custom\":{\"register_no\":null}}", 0, NULL);
    rc = store_update(s, &entity_organization, json_string_value(json_object_get(o, "id")), 1, ch,
                      0, NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "custom.register_no");
    json_decref(ch);
    /* nor emptied, nor dropped with the whole object, in any form */
    static const char *const removals[] = {
        "{\"custom\":{\"register_no\":\"\"}}",
        "{\"custom\":{\"register_no\":\"  \"}}",
        "{\"custom\":\"{\\\"register_no\\\":null}\"}",
        "{\"custom\":\"{\\\"register_no\\\":\\\"\\\"}\"}",
        "{\"custom\":null}",
    };
    for (size_t i = 0; i < sizeof removals / sizeof removals[0]; i++) {
        ch = json_loads(removals[i], 0, NULL);
        CHECK(ch != NULL);
        op_error_clear(&err);
        rc = store_update(s, &entity_organization, json_string_value(json_object_get(o, "id")), 1,
                          ch, 0, NULL, &err);
        CHECK_EQ(rc, -EINVAL);
        CHECK_STR(err.field, "custom.register_no");
        CHECK_CONTAINS(err.msg, "custom.register_no: required in EU-DE (HGB §8)");
        if (rc != -EINVAL)
            fprintf(stderr, "  update %s: %d %s\n", removals[i], rc, err.msg);
        json_decref(ch);
    }
    /* an empty merge patch ("" or {}) changes no key, so it passes */
    ch = json_loads("{\"custom\":\"\"}", 0, NULL);
    rc = store_update(s, &entity_organization, json_string_value(json_object_get(o, "id")), 1, ch,
                      0, NULL, &err);
    CHECK_EQ(rc, 0);
    json_decref(ch);

    /* updates are checked the same way */
    ch = json_loads("{\"custom\":{\"segment\":\"pirate\"}}", 0, NULL);
    rc = store_update(s, &entity_contact, json_string_value(json_object_get(c, "id")), 1, ch, 0,
                      NULL, &err);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, "custom.segment");
    json_decref(ch);
    json_decref(o);
    json_decref(c);
    CHECK_EQ(count(s, "SELECT count(*) FROM contacts"), 1);
    store_close(s);
}

static void import_names_column_and_rule(void)
{
    struct store *s = fresh_store("import.db", pol);
    const char csv[] = "family_name,email,birth_date\r\n"
                       "Weber,w@example.org,\r\n"
                       "Roth,r@example.org,1970-01-01\r\n";
    FILE *in = fmemopen((void *)csv, sizeof csv - 1, "r");
    struct importer_opts o = {.name = "people.csv"};
    struct importer_result res;
    struct op_error err;
    op_error_clear(&err);
    int rc = importer_run(s, in, &o, &res, &err);
    fclose(in);
    CHECK_EQ(rc, -EINVAL);
    CHECK_CONTAINS(err.msg, "people.csv:3:3");
    CHECK_CONTAINS(err.msg, "birth_date");
    CHECK_CONTAINS(err.msg, "not collected in EU-DE: not needed for sales (GDPR Art. 5(1)(c))");
    CHECK_EQ(count(s, "SELECT count(*) FROM contacts"), 0);

    const char csv2[] = "family_name,custom.segment\r\n"
                        "Weber,retail\r\n"
                        "Roth,pirate\r\n";
    in = fmemopen((void *)csv2, sizeof csv2 - 1, "r");
    op_error_clear(&err);
    rc = importer_run(s, in, &o, &res, &err);
    fclose(in);
    CHECK_EQ(rc, -EINVAL);
    CHECK_CONTAINS(err.msg, "people.csv:3:2");
    CHECK_CONTAINS(err.msg, "custom.segment");
    CHECK_EQ(count(s, "SELECT count(*) FROM contacts"), 0);

    /* the whole object in one JSON column: the column and the key named */
    const char csv3[] = "family_name,custom\r\n"
                        "Weber,\"{\"\"segment\"\":\"\"retail\"\"}\"\r\n"
                        "Roth,\"{\"\"segment\"\":\"\"pirate\"\"}\"\r\n";
    in = fmemopen((void *)csv3, sizeof csv3 - 1, "r");
    op_error_clear(&err);
    rc = importer_run(s, in, &o, &res, &err);
    fclose(in);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.msg, "people.csv:3:2 (custom): custom.segment: \"pirate\" is not one of: "
                       "retail, wholesale, government");
    CHECK_EQ(count(s, "SELECT count(*) FROM contacts"), 0);
    store_close(s);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    build_policy();
    RUN(forbidden_field_refused);
    RUN(custom_fields_checked);
    RUN(import_names_column_and_rule);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
    policy_free(pol);
    return tl_report();
}
