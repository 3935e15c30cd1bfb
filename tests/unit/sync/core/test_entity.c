/* Tests for sync/core/entity.c: descriptors match the schema; each field
 * type accepts what it should and names the field when it refuses. */
#include <errno.h>
#include <stdlib.h>

#include "db.h"
#include "entity.h"
#include "testlib.h"

static void descriptors_match_schema(void)
{
    sqlite3 *db;
    struct op_error err;
    CHECK_EQ(db_open(":memory:", DB_OPEN_CREATE, &db, &err), 0);
    for (size_t i = 0; entity_all[i]; i++) {
        const struct entity_def *e = entity_all[i];
        CHECK(entity_by_name(e->name) == e);
        CHECK(entity_by_name(e->plural) == e);
        for (size_t k = 0; k < e->nfields; k++) {
            sqlite3_stmt *st;
            char sql[256];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM pragma_table_info('%s') WHERE name = ?1", e->table);
            CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
            sqlite3_bind_text(st, 1, e->fields[k].name, -1, SQLITE_STATIC);
            int found = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
            if (found != 1)
                fprintf(stderr, "missing column %s.%s\n", e->table, e->fields[k].name);
            CHECK_EQ(found, 1);
            sqlite3_finalize(st);
        }
    }
    CHECK(entity_by_name("widgets") == NULL);
    db_close(db);
}

/* Normalizes `in` (a JSON text) for entity.field; returns the result as
 * compact JSON or "ERR:<message>". */
static const char *norm(const struct entity_def *e, const char *field, const char *in)
{
    static char buf[600];
    const struct field_def *f = entity_field(e, field);
    if (!f)
        return "NOFIELD";
    json_t *v = json_loads(in, JSON_DECODE_ANY, NULL);
    json_t *out = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = entity_normalize_value(f, v, &out, &err);
    json_decref(v);
    if (rc < 0) {
        snprintf(buf, sizeof buf, "ERR:%s", err.msg);
        return buf;
    }
    char *d = json_dumps(out, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, sizeof buf, "%s", d);
    free(d);
    json_decref(out);
    return buf;
}

/* Each value normalized for its entity's field: exactly `want`, or a
 * result that contains it (most refusals, named by field). */
enum match { EXACT, CONTAINS };
static const struct {
    const struct entity_def *e;
    const char *field, *in, *want;
    enum match match;
} cases[] = {
    /* text and codes */
    {&entity_contact, "given_name", "\"  Ana \"", "\"Ana\"", EXACT},
    {&entity_contact, "given_name", "\"\"", "null", EXACT},
    {&entity_contact, "given_name", "42", "ERR:given_name: expected a string, not a number", EXACT},
    /* a nested value where a scalar belongs says what it is */
    {&entity_contact, "given_name", "{\"a\":\"b\"}",
     "ERR:given_name: expected a string, not an object", EXACT},
    {&entity_contact, "given_name", "[\"Ana\"]", "ERR:given_name: expected a string, not an array",
     EXACT},
    {&entity_contact, "country", "\"de\"", "\"DE\"", EXACT},
    {&entity_contact, "country", "\"XX\"", "ERR:country: not an ISO 3166-1", CONTAINS},
    {&entity_deal, "currency", "\"eur\"", "\"EUR\"", EXACT},
    {&entity_deal, "currency", "\"EUX\"", "ERR:currency: not an ISO 4217", CONTAINS},
    {&entity_contact, "language", "\"pt-BR\"", "\"pt-BR\"", EXACT},
    {&entity_contact, "language", "\"portuguese!\"", "ERR:language", CONTAINS},
    /* dates, times, numbers, flags */
    {&entity_contact, "birth_date", "\"2024-02-29\"", "\"2024-02-29\"", EXACT},
    {&entity_contact, "birth_date", "\"2023-02-29\"", "ERR:birth_date", CONTAINS},
    {&entity_contact, "birth_date", "\"29.02.2024\"", "YYYY-MM-DD", CONTAINS},
    {&entity_activity, "occurred_at", "\"2026-11-24T13:05:00Z\"", "\"2026-11-24T13:05:00Z\"",
     EXACT},
    {&entity_activity, "occurred_at", "\"2026-11-24T13:05:00.250Z\"",
     "\"2026-11-24T13:05:00.250Z\"", EXACT},
    {&entity_activity, "occurred_at", "\"2026-11-24 13:05\"", "ERR:occurred_at", CONTAINS},
    {&entity_deal, "amount_minor", "1250", "1250", EXACT},
    {&entity_deal, "amount_minor", "\"-300\"", "-300", EXACT},
    {&entity_deal, "amount_minor", "\"12.50\"", "1250 for 12.50", CONTAINS},
    {&entity_deal, "amount_minor", "\"99999999999999999999\"", "ERR:amount_minor", CONTAINS},
    {&entity_contact, "restricted", "\"yes\"", "true", EXACT},
    {&entity_contact, "restricted", "\"maybe\"", "ERR:restricted", CONTAINS},
    {&entity_contact, "restricted", "{\"ssn\":\"123-45-6789\"}",
     "ERR:restricted: expected true or false, not an object", EXACT},
    /* contact channels */
    {&entity_contact, "email", "\"Ana@Example.org\"", "\"Ana@Example.org\"", EXACT},
    {&entity_contact, "email", "\"bob@\"", "ERR:email: not an e-mail", CONTAINS},
    {&entity_contact, "email", "\"a b@example.org\"", "ERR:email", CONTAINS},
    {&entity_contact, "email", "\"a@b@example.org\"", "ERR:email", CONTAINS},
    {&entity_contact, "phone", "\"+49 (30) 123-4567\"", "\"+49 (30) 123-4567\"", EXACT},
    {&entity_contact, "phone", "\"call me\"", "ERR:phone", CONTAINS},
    {&entity_contact, "phone", "\"12+34\"", "ERR:phone", CONTAINS},
    {&entity_contact, "phone", "\"(415) 523-4567 ext. 12\"", "\"(415) 523-4567 ext. 12\"", EXACT},
    {&entity_contact, "phone", "\"+7 495 123-45-67 доб. 123\"", "\"+7 495 123-45-67 доб. 123\"",
     EXACT},
    {&entity_contact, "phone", "\"030 1234567 ext.\"", "ERR:phone", CONTAINS},
    {&entity_contact, "phone", "\"ext. 12\"", "ERR:phone", CONTAINS},
    /* enums, references, objects */
    {&entity_deal, "stage", "\"won\"", "\"won\"", EXACT},
    {&entity_deal, "stage", "\"closed\"",
     "ERR:stage: \"closed\" is not one of: lead, qualified, proposal, negotiation, won, lost",
     EXACT},
    {&entity_deal, "organization_id", "\"0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B\"",
     "\"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b\"", EXACT},
    {&entity_deal, "organization_id", "\"acme\"", "not a record id", CONTAINS},
    {&entity_contact, "custom", "{\"tier\":\"gold\"}", "{\"tier\":\"gold\"}", EXACT},
    {&entity_contact, "custom", "\"{\\\"a\\\":1}\"", "{\"a\":1}", EXACT},
    {&entity_contact, "custom", "[1,2]", "ERR:custom: expected a JSON object, not an array", EXACT},
    {&entity_contact, "custom", "\"[1,2]\"", "ERR:custom: expected a JSON object, not an array",
     EXACT},
    {&entity_contact, "custom", "\"{oops\"", "invalid JSON", CONTAINS},
};

static void normalize_values(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int failed = tl_failed;
        const char *got = norm(cases[i].e, cases[i].field, cases[i].in);
        if (cases[i].match == EXACT)
            CHECK_STR(got, cases[i].want);
        else
            CHECK_CONTAINS(got, cases[i].want);
        if (tl_failed != failed)
            fprintf(stderr, "  %s.%s <- %s\n", cases[i].e->name, cases[i].field, cases[i].in);
    }
}

static void limits_and_utf8(void)
{
    char *big = malloc(70000);
    big[0] = '"';
    memset(big + 1, 'a', 201);
    big[202] = '"';
    big[203] = '\0';
    CHECK_CONTAINS(norm(&entity_contact, "given_name", big), "longer than 200 bytes (201)");
    free(big);

    const struct field_def *f = entity_field(&entity_contact, "given_name");
    json_t *bad = json_stringn_nocheck("Jo\xc3\x28", 4);
    json_t *out = NULL;
    struct op_error err;
    CHECK_EQ(entity_normalize_value(f, bad, &out, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "invalid UTF-8 or control character at byte 3");
    CHECK_STR(err.field, "given_name");
    json_decref(bad);

    CHECK_EQ(entity_utf8_bad_offset("ok \xe2\x82\xac", 6), -1);
    CHECK_EQ(entity_utf8_bad_offset("\xc0\xaf", 2), 0);      /* overlong */
    CHECK_EQ(entity_utf8_bad_offset("a\xed\xa0\x80", 4), 1); /* surrogate */
    CHECK_EQ(entity_utf8_bad_offset("ab\x01", 3), 2);        /* control */
    CHECK_EQ(entity_utf8_bad_offset("line\nnext\ttab", 13), -1);
}

int main(void)
{
    RUN(descriptors_match_schema);
    RUN(normalize_values);
    RUN(limits_and_utf8);
    return tl_report();
}
