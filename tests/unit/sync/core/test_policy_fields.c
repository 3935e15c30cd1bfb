/* Tests for the region policy's collection rules as the store enforces
 * them (appliance/store/store.c with sync/core/policy.h): forbidden fields refused on
 * create and update through the store and the CSV importer, custom fields
 * checked against their rule (pattern, enumeration, required), unknown
 * custom keys refused, and nothing enforced without a policy. The policy
 * is loaded from a string so the test does not depend on a shipped profile.
 * hostile_table runs the shared table tests/cli/policy/hostile_custom.tsv
 * under the shipped profiles through store_create, store_update and the
 * importer, with `custom` as an object, as JSON text and as typed text. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"
#include "importer.h"
#include "policy.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

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
    struct store *s = fx_store(name);
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
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 0);

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
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 1);
    store_close(s);
}

/* Imports the CSV text csv into s with o; returns importer_run's result. */
static int import_text(struct store *s, const char *csv, const struct importer_opts *o,
                       struct importer_result *res, struct op_error *err)
{
    FILE *in = fmemopen((void *)csv, strlen(csv), "r");
    op_error_clear(err);
    int rc = importer_run(s, in, o, res, err);
    fclose(in);
    return rc;
}

/* Imports csv into s expecting a refusal that wrote nothing; the message
 * comes back in err. */
static void import_refused(struct store *s, const char *csv, struct op_error *err)
{
    struct importer_opts o = {.name = "people.csv"};
    struct importer_result res;
    CHECK_EQ(import_text(s, csv, &o, &res, err), -EINVAL);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 0);
}

static void import_names_column_and_rule(void)
{
    struct store *s = fresh_store("import.db", pol);
    const char csv[] = "family_name,email,birth_date\r\n"
                       "Weber,w@example.org,\r\n"
                       "Roth,r@example.org,1970-01-01\r\n";
    struct op_error err;
    import_refused(s, csv, &err);
    CHECK_CONTAINS(err.msg, "people.csv:3:3");
    CHECK_CONTAINS(err.msg, "birth_date");
    CHECK_CONTAINS(err.msg, "not collected in EU-DE: not needed for sales (GDPR Art. 5(1)(c))");

    const char csv2[] = "family_name,custom.segment\r\n"
                        "Weber,retail\r\n"
                        "Roth,pirate\r\n";
    import_refused(s, csv2, &err);
    CHECK_CONTAINS(err.msg, "people.csv:3:2");
    CHECK_CONTAINS(err.msg, "custom.segment");

    /* the whole object in one JSON column: the column and the key named */
    const char csv3[] = "family_name,custom\r\n"
                        "Weber,\"{\"\"segment\"\":\"\"retail\"\"}\"\r\n"
                        "Roth,\"{\"\"segment\"\":\"\"pirate\"\"}\"\r\n";
    import_refused(s, csv3, &err);
    CHECK_STR(err.msg, "people.csv:3:2 (custom): custom.segment: \"pirate\" is not one of: "
                       "retail, wholesale, government");
    store_close(s);
}

/* ---- the shared table of hostile values --------------------------------- */

/* A digest of every row of every table but virtual ones (their shadow
 * tables hold their content): equal before and after means unchanged. */
static uint64_t db_sum(struct store *s)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *names;
    uint64_t h = 1469598103934665603ull;
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT "
                           "LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
                           -1, &names, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(names) == SQLITE_ROW) {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", sqlite3_column_text(names, 0));
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
            continue;
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const unsigned char *b = sqlite3_column_blob(st, c);
                int n = sqlite3_column_bytes(st, c);
                h = (h ^ (uint64_t)sqlite3_column_type(st, c)) * 1099511628211ull;
                for (int i = 0; i < n; i++)
                    h = (h ^ b[i]) * 1099511628211ull;
            }
            h = (h ^ 0xffu) * 1099511628211ull;
        }
        sqlite3_finalize(st);
    }
    sqlite3_finalize(names);
    return h;
}

struct hostile {
    char *region, *name, *key, *json, *text, *json_msg, *text_msg;
};

/* Splits a table line at tabs into the 7 fields; 0 or -1. */
static int hostile_parse(char *line, struct hostile *h)
{
    char **f[] = {&h->region, &h->name, &h->key, &h->json, &h->text, &h->json_msg, &h->text_msg};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        *f[i] = line;
        char *tab = strchr(line, '\t');
        if (i + 1 < sizeof f / sizeof f[0]) {
            if (!tab)
                return -1;
            *tab = '\0';
            line = tab + 1;
        } else if (tab) {
            return -1;
        }
    }
    if (!strcmp(h->text_msg, "="))
        h->text_msg = h->json_msg;
    return 0;
}

/* One write through the store; checks that it is refused with `want`
 * after "custom.KEY: " and err->field custom.KEY. */
static void store_refuses(struct store *s, const struct hostile *h, const char *id, json_t *custom,
                          const char *want, const char *how)
{
    json_t *in = json_pack("{s:s, s:o}", "family_name", "Hostile", "custom", custom);
    struct op_error err;
    op_error_clear(&err);
    int rc = id ? store_update(s, &entity_contact, id, 1, in, 0, NULL, &err)
                : store_create(s, &entity_contact, in, 0, NULL, &err);
    json_decref(in);
    char field[80], msg[600];
    snprintf(field, sizeof field, "custom.%s", h->key);
    snprintf(msg, sizeof msg, "custom.%s: %s", h->key, want);
    CHECK_EQ(rc, -EINVAL);
    CHECK_STR(err.field, field);
    CHECK_CONTAINS(err.msg, msg);
    if (rc != -EINVAL || !strstr(err.msg, msg))
        fprintf(stderr, "  %s %s: store_%s with custom %s\n", h->region, h->name,
                id ? "update" : "create", how);
}

/* One CSV import, real and dry run; checks the refusal and its place. */
static void import_refuses(struct store *s, const struct hostile *h, const char *csv,
                           const char *want)
{
    for (int dry = 0; dry <= 1; dry++) {
        struct importer_opts o = {.name = "t.csv", .flags = dry ? IMPORTER_DRY_RUN : 0};
        struct importer_result res;
        struct op_error err;
        int rc = import_text(s, csv, &o, &res, &err);
        CHECK_EQ(rc, -EINVAL);
        CHECK_EQ(res.errors, 1);
        CHECK_EQ(res.imported, 1); /* the valid first row, rolled back */
        CHECK_CONTAINS(err.msg, want);
        if (rc != -EINVAL || !strstr(err.msg, want))
            fprintf(stderr, "  %s %s: import%s of\n%s", h->region, h->name, dry ? " --dry-run" : "",
                    csv);
    }
}

/* A CSV cell: quoted, quotes doubled. */
static void csv_cell(char *out, size_t cap, const char *v)
{
    size_t o = 0;
    out[o++] = '"';
    for (; *v && o + 3 < cap; v++) {
        if (*v == '"')
            out[o++] = '"';
        out[o++] = *v;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void hostile_case(const struct hostile *h)
{
    char ppath[1024];
    struct policy *p = NULL;
    struct op_error err;
    op_error_clear(&err);
    if (policy_find_file(h->region, ppath, sizeof ppath, &err) < 0 ||
        policy_load_file(ppath, &p, &err) < 0) {
        fprintf(stderr, "%s: %s\n", h->region, err.msg);
        CHECK(0);
        return;
    }
    char name[80];
    snprintf(name, sizeof name, "hostile-%s-%s.db", h->region, h->name);
    struct store *s = fx_store_region(name, h->region, NULL);
    store_set_policy(s, p);
    json_t *valid = NULL;
    CHECK_EQ(create(s, &entity_contact, "{\"family_name\":\"Valid\"}", &valid, &err), 0);
    const char *id = json_string_value(json_object_get(valid, "id"));

    json_error_t je;
    json_t *value = json_loads(h->json, JSON_DECODE_ANY, &je);
    if (!value) {
        fprintf(stderr, "%s %s: bad JSON in the table: %s\n", h->region, h->name, je.text);
        CHECK(0);
        goto out;
    }
    json_t *obj = json_pack("{s:O}", h->key, value);
    char *obj_text = json_dumps(obj, JSON_COMPACT);
    uint64_t before = db_sum(s);

    for (int upd = 0; upd <= 1; upd++) {
        const char *target = upd ? id : NULL;
        store_refuses(s, h, target, json_deep_copy(obj), h->json_msg, "an object");
        store_refuses(s, h, target, json_string(obj_text), h->json_msg, "as JSON text");
        store_refuses(s, h, target, json_pack("{s:s}", h->key, h->text), h->text_msg,
                      "holding the typed text");
    }

    char cell[1024], csv[2048], want[700];
    csv_cell(cell, sizeof cell, h->text);
    snprintf(csv, sizeof csv,
             "family_name,email,custom.%s\r\nGood,good@example.org,\r\n"
             "Hostile,hostile@example.org,%s\r\n",
             h->key, cell);
    snprintf(want, sizeof want, "t.csv:3:3 (custom.%s): %s", h->key, h->text_msg);
    import_refuses(s, h, csv, want);

    csv_cell(cell, sizeof cell, obj_text);
    snprintf(csv, sizeof csv,
             "family_name,email,custom\r\nGood,good@example.org,\r\n"
             "Hostile,hostile@example.org,%s\r\n",
             cell);
    snprintf(want, sizeof want, "t.csv:3:3 (custom): custom.%s: %s", h->key, h->json_msg);
    import_refuses(s, h, csv, want);

    CHECK(db_sum(s) == before);
    if (db_sum(s) != before)
        fprintf(stderr, "  %s %s: a refused write changed the database\n", h->region, h->name);
    free(obj_text);
    json_decref(obj);
    json_decref(value);
out:
    json_decref(valid);
    store_close(s);
    policy_free(p);
}

static void hostile_table(void)
{
    const char *tests = getenv("TESTS_DIR");
    char tpath[1024];
    snprintf(tpath, sizeof tpath, "%s/cli/policy/hostile_custom.tsv", tests ? tests : "tests");
    FILE *f = fopen(tpath, "re");
    if (!f) {
        fprintf(stderr, "cannot open %s (set TESTS_DIR)\n", tpath);
        CHECK(0);
        return;
    }
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        struct hostile h;
        int rc = hostile_parse(line, &h);
        CHECK_EQ(rc, 0);
        if (rc < 0) {
            fprintf(stderr, "  %s: a line without 7 tab-separated fields\n", tpath);
            continue;
        }
        hostile_case(&h);
        n++;
    }
    fclose(f);
    CHECK_INT(n, >=, 10);
}

int main(void)
{
    fx_tmpdir("policy-fields");
    build_policy();
    RUN(forbidden_field_refused);
    RUN(custom_fields_checked);
    RUN(import_names_column_and_rule);
    RUN(hostile_table);
    policy_free(pol);
    return fx_finish();
}
