/* Tests for appliance/store/store.c: CRUD with versions and tombstones, duplicate
 * detection, keyset pagination (with filters the query serves and ones it
 * leaves to the store), search, transactions, audit, the HLC, a field
 * user's rules (owner, restricted, hidden duplicates and references), and the
 * named queries of sql/store.sql matching the entity descriptors. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "store.h"
#include "store_queries.h"
#include "store_fixture.h"
#include "testlib.h"
#include "uuid7.h"

static const char *sval(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(null)";
}

static int64_t ival(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static json_t *contact(struct store *s, const char *json, unsigned flags, int expect_rc)
{
    json_t *in = json_loads(json, 0, NULL);
    json_t *out = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = store_contact_create(s, in, flags, &out, &err);
    if (rc != expect_rc)
        fprintf(stderr, "create %s: rc %d, %s\n", json, rc, err.msg);
    CHECK_EQ(rc, expect_rc);
    json_decref(in);
    return out;
}

/* A new field user called name; the caller frees it. */
static json_t *field_user(struct store *s, const char *name)
{
    struct op_error err;
    json_t *user = NULL;
    json_t *in = json_pack("{s:s, s:s}", "name", name, "role", "field");
    CHECK_EQ(store_user_create(s, in, 0, &user, &err), 0);
    json_decref(in);
    return user;
}

static void crud_with_versions(void)
{
    struct store *s = fx_store("crud.db");
    json_t *c = contact(s,
                        "{\"given_name\":\" José \",\"family_name\":\"Müller\","
                        "\"email\":\"jose@example.org\",\"country\":\"de\"}",
                        0, 0);
    CHECK_EQ(ival(c, "version"), 1);
    CHECK_STR(sval(c, "given_name"), "José");
    CHECK_STR(sval(c, "country"), "DE");
    CHECK_STR(sval(c, "created_at"), sval(c, "updated_at"));
    CHECK(json_is_false(json_object_get(c, "deleted")));
    const char *id = sval(c, "id");
    char idbuf[UUID_TEXT_LEN];
    snprintf(idbuf, sizeof idbuf, "%s", id);

    struct op_error err;
    json_t *got = NULL;
    CHECK_EQ(store_contact_get(s, idbuf, &got, &err), 0);
    CHECK_STR(sval(got, "email"), "jose@example.org");
    json_decref(got);

    json_t *chg = json_pack("{s:s, s:n}", "locality", "Łódź", "country");
    json_t *upd = NULL;
    CHECK_EQ(store_contact_update(s, idbuf, 1, chg, &upd, &err), 0);
    CHECK_EQ(ival(upd, "version"), 2);
    CHECK_STR(sval(upd, "locality"), "Łódź");
    CHECK(json_is_null(json_object_get(upd, "country")));
    CHECK(strcmp(sval(upd, "updated_at"), sval(upd, "created_at")) >= 0);
    json_decref(upd);

    /* A stale version is refused and changes nothing. */
    op_error_clear(&err);
    CHECK_EQ(store_contact_update(s, idbuf, 1, chg, NULL, &err), STORE_EVERSION);
    CHECK_CONTAINS(err.msg, "is at version 2, not 1");
    CHECK_EQ(store_contact_delete(s, idbuf, 1, &err), STORE_EVERSION);
    CHECK_EQ(store_contact_get(s, idbuf, &got, &err), 0);
    CHECK_EQ(ival(got, "version"), 2);
    json_decref(got);

    /* Delete leaves a tombstone. */
    CHECK_EQ(store_contact_delete(s, idbuf, 2, &err), 0);
    CHECK_EQ(store_contact_get(s, idbuf, &got, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "was deleted");
    CHECK_EQ(store_get(s, &entity_contact, idbuf, STORE_INCLUDE_DELETED, &got, &err), 0);
    CHECK(json_is_true(json_object_get(got, "deleted")));
    CHECK_EQ(ival(got, "version"), 3);
    json_decref(got);
    CHECK_EQ(store_contact_update(s, idbuf, 3, chg, NULL, &err), -ENOENT);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 1);

    /* Every write left an audit row with its versions. */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log WHERE entity = 'contact'"), 3);
    CHECK_EQ(fx_count(s, "SELECT version_after FROM audit_log WHERE action = 'delete'"), 3);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log WHERE actor = 'system'"), 3);

    CHECK_EQ(store_contact_get(s, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", &got, &err), -ENOENT);
    json_decref(chg);
    json_decref(c);
    store_close(s);
}

static void bad_input_changes_nothing(void)
{
    struct store *s = fx_store("bad.db");
    struct op_error err;
    json_t *in = json_pack("{s:s, s:s}", "given_name", "Ana", "shoe_size", "42");
    op_error_clear(&err);
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "shoe_size");
    CHECK_CONTAINS(err.msg, "unknown field");
    json_decref(in);

    in = json_pack("{s:s, s:i}", "given_name", "Ana", "version", 7);
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "version");
    json_decref(in);

    in = json_pack("{s:s}", "job_title", "Engineer");
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "needs at least a name");
    json_decref(in);

    in = json_pack("{s:s, s:s}", "given_name", "Ana", "email", "ana@");
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "email");
    json_decref(in);

    in = json_pack("{s:s, s:s}", "given_name", "Ana", "id", "not-a-uuid");
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "id");
    json_decref(in);

    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log"), 0);
    store_close(s);
}

static void duplicate_detection(void)
{
    struct store *s = fx_store("dup.db");
    json_t *a = contact(s,
                        "{\"given_name\":\"José\",\"family_name\":\"Müller\","
                        "\"email\":\"Jose.Muller@Example.org\",\"phone\":\"030 1234567\","
                        "\"street\":\"Piotrkowska 12\",\"locality\":\"Łódź\"}",
                        0, 0);
    const char *aid = sval(a, "id");
    struct op_error err;

    /* refused: the same e-mail, the same phone however spelled, a similar
     * name (typo, transliteration, reordered, diacritics) at the same
     * street, a similar name with a phone ending alike */
    struct {
        const char *json;
        const char *field;
    } dups[] = {
        {"{\"given_name\":\"J\",\"email\":\"jose.muller@example.ORG\"}", "email"},
        {"{\"given_name\":\"J\",\"phone\":\"+49 30 123 4567\"}", "phone"},
        {"{\"given_name\":\"J\",\"phone\":\"0049301234567\"}", "phone"},
        {"{\"given_name\":\"J\",\"phone\":\"+49 (0)30 1234567\"}", "phone"},
        {"{\"given_name\":\"Jose\",\"family_name\":\"Mueller\",\"street\":\"piotrkowska "
         "12\",\"locality\":\"Lodz\"}",
         "street"},
        {"{\"given_name\":\"Müller\",\"family_name\":\"José\",\"street\":\"Piotrkowska 12\","
         "\"locality\":\"Łódź\"}",
         "street"},
        {"{\"given_name\":\"Jose\",\"family_name\":\"Muler\",\"street\":\"Piotrkowska 12\","
         "\"locality\":\"Łódź\"}",
         "street"},
        {"{\"given_name\":\"Josè\",\"family_name\":\"Muller\",\"phone\":\"123-4567\"}", "phone"},
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        json_t *in = json_loads(dups[i].json, 0, NULL);
        op_error_clear(&err);
        CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), STORE_EDUP);
        CHECK_STR(err.ref, aid);
        CHECK_STR(err.field, dups[i].field);
        CHECK_CONTAINS(err.msg, aid);
        json_decref(in);
    }
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 1);

    /* created: the same name in the same town with nothing else in common
     * is another person (a warning names the first), as is the same name
     * elsewhere (no warning), another name at the same street, and the
     * same name with another phone */
    json_t *b = contact(s,
                        "{\"given_name\":\"jose\",\"family_name\":\"MULLER\","
                        "\"locality\":\"lodz\",\"email\":\"other@example.org\"}",
                        0, 0);
    const char *ref = NULL;
    CHECK(store_warning(s, &ref) != NULL);
    CHECK_STR(ref ? ref : "", aid);
    CHECK_CONTAINS(store_warning(s, NULL), "same name in the same locality");
    json_t *b2 = contact(s,
                         "{\"given_name\":\"José\",\"family_name\":\"Müller\","
                         "\"locality\":\"Kraków\"}",
                         0, 0);
    CHECK(store_warning(s, NULL) == NULL);
    json_decref(contact(s,
                        "{\"given_name\":\"Anna\",\"family_name\":\"Nowak\","
                        "\"street\":\"Piotrkowska 12\",\"locality\":\"Łódź\"}",
                        0, 0));
    json_decref(contact(s,
                        "{\"given_name\":\"José\",\"family_name\":\"Müller\","
                        "\"phone\":\"030 7654321\"}",
                        0, 0));
    /* a phone that is no valid number is kept as typed, with a warning */
    json_t *n = contact(s, "{\"given_name\":\"Eva\",\"phone\":\"030 12\"}", 0, 0);
    CHECK_STR(sval(n, "phone"), "030 12");
    CHECK_CONTAINS(store_warning(s, NULL) ? store_warning(s, NULL) : "",
                   "phone: no such number in its country's numbering plan (read as dialled in "
                   "DE); kept as typed, not used to find duplicates");
    json_decref(n);
    json_t *c = contact(s, "{\"given_name\":\"J\",\"email\":\"jose.muller@example.org\"}",
                        STORE_SKIP_DUP_CHECK, 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 7);

    /* An update that makes b a duplicate of a is refused too. */
    json_t *chg = json_pack("{s:s}", "phone", "+49301234567");
    op_error_clear(&err);
    CHECK_EQ(store_contact_update(s, sval(b2, "id"), 1, chg, NULL, &err), STORE_EDUP);
    CHECK_STR(err.ref, aid);
    json_decref(chg);
    /* A deleted contact no longer counts. */
    CHECK_EQ(store_contact_delete(s, aid, 1, &err), 0);
    CHECK_EQ(store_contact_delete(s, sval(c, "id"), 1, &err), 0);
    json_t *d = contact(s, "{\"given_name\":\"J\",\"email\":\"jose.muller@example.org\"}", 0, 0);
    json_decref(a);
    json_decref(b);
    json_decref(b2);
    json_decref(c);
    json_decref(d);
    store_close(s);
}

/* A node whose phones were keyed by the former normalizer: opening it
 * re-keys the contacts and sends again (new version, outbox row, audit
 * row) exactly the records whose phone pseudonym changed, in one step
 * that is not repeated. */
static void phone_rekey_on_upgrade(void)
{
    struct store *s = fx_store_region("rekey.db", "AR", NULL);
    const char *phones[] = {"011 15-1234-5678", "+54 11 4123-4567", "12 34", "011 4123-4567"};
    char *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = fx_create(s, &entity_contact,
                         json_pack("{s:s, s:s}", "given_name", "P", "phone", phones[i]));
    char *o1 = fx_create(s, &entity_organization,
                         json_pack("{s:s, s:s}", "name", "O1", "phone", "(011) 15 1234-5678"));
    char *o2 = fx_create(s, &entity_organization,
                         json_pack("{s:s, s:s}", "name", "O2", "phone", "+54 11 4123 4567"));
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts WHERE phone_e164 = '+5491112345678'"), 1);
    /* as a node before libphonenumber left it: the former key of the AR
     * mobile, no marker, everything acknowledged by HQ */
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE contacts SET phone_e164 = '+54111512345678' WHERE id = '%s';"
             "UPDATE contacts SET name_key = 'p x|', street_key = NULL, phone_tail = NULL;"
             "DELETE FROM node_meta WHERE key IN ('phone_keys', 'dedup_keys');"
             "DELETE FROM outbox;",
             c[0]);
    CHECK_EQ(sqlite3_exec(store_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
    store_close(s);

    s = fx_store_reopen();
    /* the AR mobile's key and pseudonym changed; so did the pseudonym of
     * "12 34" (the text as typed, where it was the digits "1234"); the others did not */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 3);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox WHERE op = 'upsert' AND version = 2"), 3);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log WHERE action = 'rekey'"), 3);
    const char *want[] = {c[0], c[2], o1};
    for (int i = 0; i < 3; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE record_id = '%s'", want[i]);
        CHECK_EQ(fx_count(s, sql), 1);
    }
    snprintf(sql, sizeof sql, "SELECT version FROM contacts WHERE id = '%s'", c[1]);
    CHECK_EQ(fx_count(s, sql), 1);
    snprintf(sql, sizeof sql, "SELECT version FROM organizations WHERE id = '%s'", o2);
    CHECK_EQ(fx_count(s, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM contacts WHERE id = '%s' AND phone_e164 = '+5491112345678'",
             c[0]);
    CHECK_EQ(fx_count(s, sql), 1);
    snprintf(sql, sizeof sql, "SELECT phone_e164 IS NULL FROM contacts WHERE id = '%s'", c[2]);
    CHECK_EQ(fx_count(s, sql), 1);
    /* the other duplicate keys are made again, without a new version */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts WHERE name_key = 'p|'"), 4);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts WHERE phone_tail IS NOT NULL"), 3);
    /* the other spelling of the same mobile now meets it */
    json_t *in = json_pack("{s:s, s:s}", "given_name", "Q", "phone", "+54 9 11 1234 5678");
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), STORE_EDUP);
    CHECK_STR(err.ref, c[0]);
    json_decref(in);
    store_close(s);

    /* done once: a second open sends nothing more */
    s = fx_store_reopen();
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 3);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM node_meta WHERE key = 'phone_keys'"), 1);
    store_close(s);
    for (int i = 0; i < 4; i++)
        free(c[i]);
    free(o1);
    free(o2);
}

static void custom_fields_merge(void)
{
    struct store *s = fx_store("custom.db");
    json_t *c =
        contact(s, "{\"given_name\":\"Ana\",\"custom\":{\"tier\":\"gold\",\"cpf\":\"1\"}}", 0, 0);
    json_t *chg = json_loads("{\"custom\":{\"cpf\":null,\"region_code\":\"SP\"}}", 0, NULL);
    json_t *upd = NULL;
    struct op_error err;
    CHECK_EQ(store_contact_update(s, sval(c, "id"), 1, chg, &upd, &err), 0);
    json_t *custom = json_object_get(upd, "custom");
    CHECK_STR(sval(custom, "tier"), "gold");
    CHECK_STR(sval(custom, "region_code"), "SP");
    CHECK(json_object_get(custom, "cpf") == NULL);
    json_decref(chg);
    json_decref(upd);
    json_decref(c);
    store_close(s);
}

static void pagination_and_filters(void)
{
    struct store *s = fx_store("list.db");
    struct op_error err;
    json_t *user = field_user(s, "maria");
    char first_id[UUID_TEXT_LEN] = "";
    for (int i = 0; i < 120; i++) {
        json_t *in = json_pack("{s:s, s:s}", "given_name", "Person", "email", "x");
        char email[64];
        snprintf(email, sizeof email, "p%03d@example.org", i);
        json_object_set_new(in, "email", json_string(email));
        if (i % 3 == 0)
            json_object_set(in, "owner_id", json_object_get(user, "id"));
        json_t *out = NULL;
        CHECK_EQ(store_contact_create(s, in, STORE_SKIP_DUP_CHECK, &out, &err), 0);
        if (i == 0)
            snprintf(first_id, sizeof first_id, "%s", sval(out, "id"));
        json_decref(out);
        json_decref(in);
    }
    struct store_query q = {.limit = 50};
    char next[STORE_CURSOR_MAX];
    json_t *items = NULL;
    int pages = 0, total = 0, ordered = 1;
    char last[UUID_TEXT_LEN] = "";
    do {
        CHECK_EQ(store_contact_list(s, &q, &items, next, &err), 0);
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            ordered &= strcmp(sval(it, "id"), last) > 0;
            snprintf(last, sizeof last, "%s", sval(it, "id"));
            total++;
        }
        pages++;
        json_decref(items);
        static char cursor[STORE_CURSOR_MAX];
        snprintf(cursor, sizeof cursor, "%s", next);
        q.cursor = cursor;
    } while (next[0] && pages < 10);
    CHECK_EQ(pages, 3);
    CHECK_EQ(total, 120);
    CHECK(ordered);

    /* Owner filter. */
    struct store_filter owner = {"owner_id", sval(user, "id")};
    struct store_query fq = {.limit = 1000, .filters = &owner, .nfilters = 1};
    CHECK_EQ(store_contact_list(s, &fq, &items, next, &err), 0);
    CHECK_EQ(json_array_size(items), 40);
    CHECK_STR(next, "");
    json_decref(items);

    /* Update order: the contact changed last comes last. */
    json_t *chg = json_pack("{s:s}", "job_title", "Buyer");
    CHECK_EQ(store_contact_update(s, first_id, 1, chg, NULL, &err), 0);
    json_decref(chg);
    struct store_query uq = {.limit = 1000, .sort = STORE_SORT_UPDATED};
    CHECK_EQ(store_contact_list(s, &uq, &items, next, &err), 0);
    CHECK_STR(sval(json_array_get(items, 119), "id"), first_id);
    json_decref(items);
    struct store_query uq2 = {.limit = 119, .sort = STORE_SORT_UPDATED};
    CHECK_EQ(store_contact_list(s, &uq2, &items, next, &err), 0);
    json_decref(items);
    uq2.cursor = next;
    CHECK_EQ(store_contact_list(s, &uq2, &items, next, &err), 0);
    CHECK_EQ(json_array_size(items), 1);
    CHECK_STR(sval(json_array_get(items, 0), "id"), first_id);
    json_decref(items);

    /* updated_since far in the future matches nothing; in the past, all. */
    struct store_query sq = {.limit = 1000, .updated_since = "2999-01-01T00:00:00Z"};
    CHECK_EQ(store_contact_list(s, &sq, &items, next, &err), 0);
    CHECK_EQ(json_array_size(items), 0);
    json_decref(items);
    sq.updated_since = "2000-01-01";
    CHECK_EQ(store_contact_list(s, &sq, &items, next, &err), 0);
    CHECK_EQ(json_array_size(items), 120);
    json_decref(items);

    /* Bad queries name what is wrong. */
    struct store_query bad = {.cursor = "garbage"};
    CHECK_EQ(store_contact_list(s, &bad, &items, next, &err), -EINVAL);
    CHECK_STR(err.field, "cursor");
    struct store_filter nf = {"email", "x"};
    struct store_query bad2 = {.filters = &nf, .nfilters = 1};
    CHECK_EQ(store_contact_list(s, &bad2, &items, next, &err), -EINVAL);
    CHECK_STR(err.field, "email");
    struct store_query bad3 = {.limit = 5000};
    CHECK_EQ(store_contact_list(s, &bad3, &items, next, &err), -EINVAL);
    struct store_query bad4 = {.updated_since = "yesterday"};
    CHECK_EQ(store_contact_list(s, &bad4, &items, next, &err), -EINVAL);
    json_decref(user);
    store_close(s);
}

static void every_entity_round_trips(void)
{
    struct store *s = fx_store("entities.db");
    struct op_error err;
    json_t *c = contact(s, "{\"given_name\":\"Wanjiru\",\"family_name\":\"Kamau\"}", 0, 0);
    json_t *org = NULL, *deal = NULL, *out = NULL;
    json_t *in = json_pack("{s:s, s:s}", "name", "Łódzkie Zakłady", "country", "PL");
    CHECK_EQ(store_organization_create(s, in, 0, &org, &err), 0);
    json_decref(in);
    in = json_pack("{s:s, s:s, s:s}", "contact_id", sval(c, "id"), "organization_id",
                   sval(org, "id"), "role", "Buyer");
    CHECK_EQ(store_contact_organization_create(s, in, 0, &out, &err), 0);
    json_decref(out);
    /* The same link twice is refused by the unique pair index, naming
     * the field (the API answers 409 with a pointer). */
    CHECK_EQ(store_contact_organization_create(s, in, 0, NULL, &err), -EEXIST);
    CHECK_STR(err.field, "organization_id");
    CHECK_CONTAINS(err.msg, "already linked to this organization");
    json_decref(in);

    in = json_pack("{s:s, s:I, s:s, s:s}", "title", "Tractors", "amount_minor", (json_int_t)1250000,
                   "currency", "kes", "organization_id", sval(org, "id"));
    CHECK_EQ(store_deal_create(s, in, 0, &deal, &err), 0);
    CHECK_STR(sval(deal, "stage"), "lead"); /* default */
    CHECK_STR(sval(deal, "currency"), "KES");
    CHECK_EQ(ival(deal, "amount_minor"), 1250000);
    json_decref(in);

    in = json_pack("{s:s, s:I}", "title", "No currency", "amount_minor", (json_int_t)5);
    CHECK_EQ(store_deal_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "currency");
    json_decref(in);
    in = json_pack("{s:s, s:s}", "title", "Ghost org", "organization_id",
                   "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    CHECK_EQ(store_deal_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "organization_id");
    CHECK_CONTAINS(err.msg, "no organization with id");
    json_decref(in);

    in = json_pack("{s:s, s:s, s:s, s:s}", "channel", "visit", "occurred_at",
                   "2026-11-24T09:00:00Z", "contact_id", sval(c, "id"), "outcome", "order");
    CHECK_EQ(store_activity_create(s, in, 0, &out, &err), 0);
    CHECK_STR(sval(out, "direction"), "outbound");
    json_decref(out);
    json_decref(in);
    in =
        json_pack("{s:s, s:s}", "channel", "carrier pigeon", "occurred_at", "2026-11-24T09:00:00Z");
    CHECK_EQ(store_activity_create(s, in, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "channel");
    json_decref(in);

    in = json_pack("{s:s, s:s}", "title", "Call back", "deal_id", sval(deal, "id"));
    CHECK_EQ(store_task_create(s, in, 0, &out, &err), 0);
    CHECK_STR(sval(out, "status"), "open");
    json_decref(out);
    json_decref(in);

    in = json_pack("{s:s, s:s}", "body", "Prefers Swahili.", "contact_id", sval(c, "id"));
    CHECK_EQ(store_note_create(s, in, 0, NULL, &err), 0);
    json_decref(in);

    in =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "contact_id", sval(c, "id"), "channel",
                  "sms", "purpose", "newsletter", "status", "pending", "method", "double_opt_in",
                  "requested_at", "2026-11-24T09:00:00Z", "evidence", "source", "web form v3");
    CHECK_EQ(store_consent_create(s, in, 0, &out, &err), 0);
    CHECK_STR(sval(json_object_get(out, "evidence"), "source"), "web form v3");
    json_decref(out);
    json_decref(in);

    /* Users: a name is unique among live users, and hashes never come out. */
    in = json_pack("{s:s, s:s, s:s}", "name", "admin", "role", "admin", "password_hash", "$y$x");
    CHECK_EQ(store_user_create(s, in, 0, NULL, &err), -EINVAL); /* not from outside */
    CHECK_STR(err.field, "password_hash");
    CHECK_EQ(store_create(s, &entity_user, in, STORE_ALLOW_INTERNAL, &out, &err), 0);
    CHECK(json_object_get(out, "password_hash") == NULL);
    json_decref(out);
    CHECK_EQ(store_create(s, &entity_user, in, STORE_ALLOW_INTERNAL, NULL, &err), -EEXIST);
    json_decref(in);

    json_decref(c);
    json_decref(org);
    json_decref(deal);
    store_close(s);
}

static void transactions(void)
{
    struct store *s = fx_store("txn.db");
    struct op_error err;
    CHECK_EQ(store_begin(s, &err), 0);
    json_decref(contact(s, "{\"given_name\":\"A\",\"email\":\"a@example.org\"}", 0, 0));
    json_decref(contact(s, "{\"given_name\":\"B\",\"email\":\"b@example.org\"}", 0, 0));
    /* A failing write inside the transaction undoes only itself. */
    json_decref(contact(s, "{\"given_name\":\"A2\",\"email\":\"a@example.org\"}", 0, STORE_EDUP));
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 2);
    store_rollback(s);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log"), 0);

    CHECK_EQ(store_begin(s, &err), 0);
    CHECK_EQ(store_begin(s, &err), -EBUSY);
    json_decref(contact(s, "{\"given_name\":\"C\"}", 0, 0));
    CHECK_EQ(store_commit(s, &err), 0);
    CHECK_EQ(store_commit(s, &err), -EINVAL);
    store_close(s);
    s = fx_store_reopen();
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 1);
    store_close(s);
}

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void clock_survives_restart_and_backwards_time(void)
{
    struct store *s = fx_store("clock.db");
    fake_now = 1800000000000;
    store_set_clock(s, fake_clock, NULL);
    json_decref(contact(s, "{\"given_name\":\"First\"}", 0, 0));
    store_close(s);
    s = fx_store_reopen();
    fake_now = 1800000000000 - 3600 * 1000; /* wall clock an hour behind */
    store_set_clock(s, fake_clock, NULL);
    json_decref(contact(s, "{\"given_name\":\"Second\"}", 0, 0));
    CHECK_EQ(fx_count(s, "SELECT (SELECT created_hlc FROM contacts WHERE given_name = 'Second') > "
                         "(SELECT created_hlc FROM contacts WHERE given_name = 'First')"),
             1);
    /* A second store on the same file (the CLI beside the daemon) never
     * issues a stamp below one the first already committed. */
    struct store *other = fx_store_reopen();
    fake_now = 1000;
    store_set_clock(other, fake_clock, NULL);
    json_decref(contact(other, "{\"given_name\":\"Third\"}", 0, 0));
    CHECK_EQ(fx_count(s, "SELECT (SELECT created_hlc FROM contacts WHERE given_name = 'Third') > "
                         "(SELECT created_hlc FROM contacts WHERE given_name = 'Second')"),
             1);
    store_close(other);
    store_close(s);
}

static void search_folds(void)
{
    struct store *s = fx_store("search.db");
    struct op_error err;
    json_t *c = contact(s,
                        "{\"given_name\":\"José\",\"family_name\":\"Müller\","
                        "\"locality\":\"Łódź\"}",
                        0, 0);
    json_decref(contact(s, "{\"given_name\":\"Иван\",\"family_name\":\"Петров\"}", 0, 0));
    json_t *in = json_pack("{s:s}", "name", "Müller Landtechnik GmbH");
    CHECK_EQ(store_organization_create(s, in, 0, NULL, &err), 0);
    json_decref(in);

    static const struct {
        const char *q;
        size_t hits;
    } cases[] = {{"jose", 1},     {"lodz", 1}, {"muller", 2}, {"MÜLL", 2},         {"jose lodz", 1},
                 {"landtech", 1}, {"иван", 1}, {"paris", 0},  {"\"quoted\" OR", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *hits = NULL;
        CHECK_EQ(store_search(s, cases[i].q, 20, &hits, &err), 0);
        if (json_array_size(hits) != cases[i].hits)
            fprintf(stderr, "query '%s'\n", cases[i].q);
        CHECK_EQ(json_array_size(hits), cases[i].hits);
        json_decref(hits);
    }
    json_t *hits = NULL;
    CHECK_EQ(store_search(s, "jose", 20, &hits, &err), 0);
    CHECK_STR(sval(json_array_get(hits, 0), "label"), "José Müller");
    CHECK_STR(sval(json_array_get(hits, 0), "entity"), "contact");
    json_decref(hits);

    /* Deleted contacts are not found; changed names are found by the new name. */
    CHECK_EQ(store_contact_delete(s, sval(c, "id"), 1, &err), 0);
    CHECK_EQ(store_search(s, "jose", 20, &hits, &err), 0);
    CHECK_EQ(json_array_size(hits), 0);
    json_decref(hits);

    CHECK_EQ(store_search(s, "   ", 20, &hits, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "empty");
    char longq[400];
    memset(longq, 'a', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    CHECK_EQ(store_search(s, longq, 20, &hits, &err), -EINVAL);
    json_decref(c);
    store_close(s);
}

/* A full disk (simulated by capping the page count) fails the write with
 * -ENOSPC and a message, and leaves the database as it was. */
/* Chinese, Japanese and Thai are written without spaces: any two or more
 * characters of a name or place find it, wherever they stand in it, and a
 * pair that is not in it finds nothing; Latin text next to it still folds. */
static void search_unspaced_scripts(void)
{
    struct store *s = fx_store_region("cjk.db", "CN", NULL);
    struct op_error err;
    json_decref(contact(s,
                        "{\"given_name\":\"小明\",\"family_name\":\"王\","
                        "\"locality\":\"上海市海淀区\",\"job_title\":\"Müller工程师\"}",
                        0, 0));
    json_decref(contact(s,
                        "{\"given_name\":\"太郎\",\"family_name\":\"山田\","
                        "\"locality\":\"東京都新宿区\"}",
                        0, 0));
    json_decref(contact(s,
                        "{\"given_name\":\"สมชาย\",\"family_name\":\"ใจดี\","
                        "\"locality\":\"กรุงเทพมหานคร\"}",
                        0, 0));
    static const struct {
        const char *q;
        size_t hits;
    } cases[] = {
        {"海淀", 1},   {"海淀区", 1}, {"上海", 1},   {"市海", 1},      {"上海市海淀区", 1},
        {"海南", 0},   {"淀海", 0},   {"新宿", 1},   {"京都", 1},      {"山田", 1},
        {"田太", 0},   {"เทพ", 1},    {"มหานคร", 1}, {"ชาย", 1},       {"สมชาย ใจดี", 1},
        {"muller", 1}, {"工程", 1},   {"王", 1},     {"海淀 东京", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *hits = NULL;
        CHECK_EQ(store_search(s, cases[i].q, 20, &hits, &err), 0);
        if (json_array_size(hits) != cases[i].hits)
            fprintf(stderr, "query '%s': %zu hits\n", cases[i].q, json_array_size(hits));
        CHECK_EQ(json_array_size(hits), cases[i].hits);
        json_decref(hits);
    }
    store_close(s);
}

static void full_disk(void)
{
    struct store *s = fx_store("full.db");
    struct op_error err;
    json_decref(contact(s, "{\"given_name\":\"Before\"}", 0, 0));
    int64_t pages = fx_count(s, "PRAGMA page_count");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
    CHECK_EQ(sqlite3_exec(store_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(store_begin(s, &err), 0);
    int rc = 0;
    char body[3000];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    for (int i = 0; i < 200 && rc == 0; i++) {
        json_t *in = json_pack("{s:s, s:s}", "given_name", "Filler", "street", "x");
        json_object_set_new(in, "street", json_stringn(body, 400));
        op_error_clear(&err);
        rc = store_contact_create(s, in, STORE_SKIP_DUP_CHECK, NULL, &err);
        json_decref(in);
    }
    CHECK_EQ(rc, -ENOSPC);
    CHECK_CONTAINS(err.msg, "full");
    store_rollback(s);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts"), 1);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log"), 1);
    store_close(s);
}

/* A field user's view: own and unowned records; others' do not exist. */
static void viewer_sees_own_and_shared(void)
{
    struct store *s = fx_store("viewer.db");
    struct op_error err;
    json_t *ana = field_user(s, "ana"), *ben = field_user(s, "ben"), *in;
    const char *owners[] = {sval(ana, "id"), sval(ben, "id"), NULL};
    char ids[3][UUID_TEXT_LEN];
    for (int i = 0; i < 3; i++) {
        in = json_pack("{s:s}", "given_name", "Lukas");
        if (owners[i])
            json_object_set_new(in, "owner_id", json_string(owners[i]));
        json_t *out = NULL;
        CHECK_EQ(store_contact_create(s, in, STORE_SKIP_DUP_CHECK, &out, &err), 0);
        snprintf(ids[i], sizeof ids[i], "%s", sval(out, "id"));
        json_decref(out);
        json_decref(in);
    }
    store_set_viewer(s, sval(ana, "id"));
    json_t *items = NULL, *got = NULL;
    char next[STORE_CURSOR_MAX];
    struct store_query q = {.limit = 100};
    CHECK_EQ(store_contact_list(s, &q, &items, next, &err), 0);
    CHECK_EQ(json_array_size(items), 2);
    json_decref(items);
    CHECK_EQ(store_search(s, "lukas", 20, &items, &err), 0);
    CHECK_EQ(json_array_size(items), 2);
    json_decref(items);
    CHECK_EQ(store_contact_get(s, ids[0], &got, &err), 0);
    json_decref(got);
    CHECK_EQ(store_contact_get(s, ids[2], &got, &err), 0);
    json_decref(got);
    CHECK_EQ(store_contact_get(s, ids[1], &got, &err), -ENOENT);
    CHECK_EQ(store_contact_delete(s, ids[1], 1, &err), -ENOENT);
    store_set_viewer(s, NULL);
    CHECK_EQ(store_contact_get(s, ids[1], &got, &err), 0);
    json_decref(got);
    json_decref(ana);
    json_decref(ben);
    store_close(s);
}

static json_t *update_as(struct store *s, const char *id, json_t *changes, int expect_rc,
                         struct op_error *err)
{
    json_t *cur = NULL, *out = NULL;
    CHECK_EQ(store_contact_get(s, id, &cur, err), 0);
    int rc = store_contact_update(s, id, ival(cur, "version"), changes, &out, err);
    if (rc != expect_rc)
        fprintf(stderr, "update %s: rc %d, %s\n", id, rc, err->msg);
    CHECK_EQ(rc, expect_rc);
    json_decref(cur);
    json_decref(changes);
    return out;
}

/* The rules a field user (the viewer) writes under: no records made for
 * others, no change of owner, no clearing of restricted; a colleague's
 * private records neither named by the duplicate check nor reachable by a
 * reference. A store without a viewer (a manager, the CLI) does all of it. */
static void viewer_rules(void)
{
    struct store *s = fx_store("rules.db");
    struct op_error err;
    json_t *ana = field_user(s, "ana"), *ben = field_user(s, "ben"), *in, *got = NULL, *out = NULL;
    const char *ana_id = sval(ana, "id"), *ben_id = sval(ben, "id");

    /* made without a viewer: a shared restricted contact, ben's private one */
    json_t *shared = contact(s, "{\"family_name\":\"Shared\",\"restricted\":true}", 0, 0);
    char body[200];
    snprintf(body, sizeof body,
             "{\"family_name\":\"Private\",\"email\":\"private@x.org\",\"owner_id\":\"%s\"}",
             ben_id);
    json_t *bens = contact(s, body, 0, 0);
    const char *shared_id = sval(shared, "id"), *bens_id = sval(bens, "id");

    store_set_viewer(s, ana_id);
    /* create: the viewer's by default, shared on request, never someone else's */
    json_t *mine = contact(s, "{\"family_name\":\"Mine\"}", 0, 0);
    CHECK_STR(sval(mine, "owner_id"), ana_id);
    json_t *pool = contact(s, "{\"family_name\":\"Pool\",\"owner_id\":null}", 0, 0);
    CHECK(json_is_null(json_object_get(pool, "owner_id")));
    snprintf(body, sizeof body, "{\"family_name\":\"Planted\",\"owner_id\":\"%s\"}", ben_id);
    json_decref(contact(s, body, 0, -EPERM));
    in = json_loads(body, 0, NULL);
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), -EPERM);
    json_decref(in);
    CHECK_STR(err.field, "owner_id");
    CHECK_STR(err.msg, "owner_id: field users can only create records owned by themselves or by "
                       "nobody (shared)");

    /* update: taking a shared record, or letting go of one's own, is refused */
    json_decref(update_as(s, shared_id, json_pack("{s:s}", "owner_id", ana_id), -EPERM, &err));
    CHECK_STR(err.field, "owner_id");
    CHECK_STR(err.msg, "owner_id: only a manager can change who owns a record");
    json_decref(update_as(s, sval(mine, "id"), json_pack("{s:n}", "owner_id"), -EPERM, &err));
    json_decref(
        update_as(s, sval(mine, "id"), json_pack("{s:s}", "owner_id", ben_id), -EPERM, &err));
    CHECK_EQ(store_contact_get(s, shared_id, &got, &err), 0);
    CHECK(json_is_null(json_object_get(got, "owner_id")));
    CHECK_EQ(ival(got, "version"), 1); /* unchanged */
    json_decref(got);
    /* the owner it already has is no change */
    out = update_as(s, shared_id, json_pack("{s:n, s:s}", "owner_id", "locality", "Ulm"), 0, &err);
    CHECK_EQ(ival(out, "version"), 2);
    json_decref(out);

    /* restricted: clearing is refused (false and null alike), setting is fine */
    json_decref(update_as(s, shared_id, json_pack("{s:b}", "restricted", 0), -EPERM, &err));
    CHECK_STR(err.field, "restricted");
    CHECK_STR(err.msg, "restricted: only a manager can clear the restricted flag");
    json_decref(update_as(s, shared_id, json_pack("{s:n}", "restricted"), -EPERM, &err));
    CHECK_EQ(store_contact_get(s, shared_id, &got, &err), 0);
    CHECK(json_is_true(json_object_get(got, "restricted")));
    CHECK_EQ(ival(got, "version"), 2);
    json_decref(got);
    out = update_as(s, sval(pool, "id"), json_pack("{s:b}", "restricted", 1), 0, &err);
    CHECK(json_is_true(json_object_get(out, "restricted")));
    json_decref(out);

    /* a duplicate the viewer cannot see: reported, not named */
    json_decref(
        contact(s, "{\"family_name\":\"Again\",\"email\":\"PRIVATE@x.org\"}", 0, STORE_EDUP));
    in = json_pack("{s:s, s:s}", "family_name", "Again", "email", "private@x.org");
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), STORE_EDUP);
    json_decref(in);
    CHECK_STR(err.ref, "");
    CHECK_STR(err.field, "email");
    CHECK(!strstr(err.msg, bens_id));
    CHECK_STR(err.msg, "a contact with this e-mail address exists and is not yours; ask a "
                       "manager, or pass the skip-duplicate-check option to create it anyway");
    json_decref(update_as(s, sval(mine, "id"), json_pack("{s:s}", "email", "private@x.org"),
                          STORE_EDUP, &err));
    CHECK_STR(err.ref, "");
    /* one the viewer can see is named (the same name in the same locality
     * only warns) */
    in = json_pack("{s:s, s:s}", "family_name", "Shared", "locality", "Ulm");
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), 0);
    json_decref(in);
    const char *wref = NULL;
    CHECK(store_warning(s, &wref) != NULL);
    CHECK_STR(wref ? wref : "", shared_id);

    /* references: a colleague's private record is a missing one */
    char missing[] = "0190abcd-0000-7000-8000-000000000000", want[200];
    in = json_pack("{s:s, s:s}", "body", "hello", "contact_id", missing);
    CHECK_EQ(store_note_create(s, in, 0, NULL, &err), -EINVAL);
    json_decref(in);
    CHECK_STR(err.field, "contact_id");
    snprintf(want, sizeof want, "contact_id: no contact with id %s", missing);
    CHECK_STR(err.msg, want);
    in = json_pack("{s:s, s:s}", "body", "hello", "contact_id", bens_id);
    CHECK_EQ(store_note_create(s, in, 0, NULL, &err), -EINVAL);
    json_decref(in);
    CHECK_STR(err.field, "contact_id");
    snprintf(want, sizeof want, "contact_id: no contact with id %s", bens_id);
    CHECK_STR(err.msg, want);
    in = json_pack("{s:s, s:s}", "title", "Deal", "contact_id", bens_id);
    CHECK_EQ(store_deal_create(s, in, 0, NULL, &err), -EINVAL);
    json_decref(in);
    in = json_pack("{s:s, s:s}", "body", "hello", "contact_id", shared_id);
    json_t *note = NULL;
    CHECK_EQ(store_note_create(s, in, 0, &note, &err), 0);
    json_decref(in);
    in = json_pack("{s:s}", "contact_id", bens_id);
    CHECK_EQ(store_note_update(s, sval(note, "id"), 1, in, NULL, &err), -EINVAL);
    json_decref(in);
    CHECK_STR(err.field, "contact_id");
    /* a reference that does not change is not checked again */
    in = json_pack("{s:s}", "body", "edited");
    CHECK_EQ(store_note_update(s, sval(note, "id"), 1, in, NULL, &err), 0);
    json_decref(in);

    /* without a viewer all of it is allowed */
    store_set_viewer(s, NULL);
    json_decref(update_as(s, shared_id, json_pack("{s:s}", "owner_id", ben_id), 0, &err));
    json_decref(update_as(s, shared_id, json_pack("{s:b}", "restricted", 0), 0, &err));
    in = json_pack("{s:s, s:s}", "body", "hello", "contact_id", bens_id);
    CHECK_EQ(store_note_create(s, in, 0, NULL, &err), 0);
    json_decref(in);
    in = json_pack("{s:s, s:s}", "family_name", "Again", "email", "private@x.org");
    CHECK_EQ(store_contact_create(s, in, 0, NULL, &err), STORE_EDUP);
    json_decref(in);
    CHECK_STR(err.ref, bens_id);

    json_decref(note);
    json_decref(mine);
    json_decref(pool);
    json_decref(shared);
    json_decref(bens);
    json_decref(ana);
    json_decref(ben);
    store_close(s);
}

/* Pages of deals filtered by two fields: the first is the query's, the
 * second is checked on its rows; both orders and both sorts give the same
 * records, page after page. */
static void two_filters_page(void)
{
    struct store *s = fx_store("filters.db");
    struct op_error err;
    json_t *user = field_user(s, "ana");
    for (int i = 0; i < 30; i++) {
        json_t *in =
            json_pack("{s:s, s:s}", "title", "Deal", "stage", i % 2 == 0 ? "lead" : "qualified");
        if (i % 3 == 0)
            json_object_set(in, "owner_id", json_object_get(user, "id"));
        CHECK_EQ(store_deal_create(s, in, 0, NULL, &err), 0);
        json_decref(in);
    }
    struct store_filter both[2][2] = {
        {{"stage", "lead"}, {"owner_id", sval(user, "id")}},
        {{"owner_id", sval(user, "id")}, {"stage", "lead"}},
    };
    for (int order = 0; order < 2; order++) {
        for (int sort = 0; sort < 2; sort++) {
            struct store_query q = {.limit = 2,
                                    .sort = sort ? STORE_SORT_UPDATED : STORE_SORT_ID,
                                    .filters = both[order],
                                    .nfilters = 2};
            static char cursor[STORE_CURSOR_MAX];
            char next[STORE_CURSOR_MAX];
            int pages = 0, total = 0, match = 1;
            do {
                json_t *items = NULL;
                CHECK_EQ(store_deal_list(s, &q, &items, next, &err), 0);
                size_t i;
                json_t *it;
                json_array_foreach(items, i, it)
                {
                    match &= !strcmp(sval(it, "stage"), "lead") &&
                             !strcmp(sval(it, "owner_id"), sval(user, "id"));
                    total++;
                }
                json_decref(items);
                pages++;
                snprintf(cursor, sizeof cursor, "%s", next);
                q.cursor = cursor;
            } while (next[0] && pages < 10);
            CHECK_EQ(total, 5);
            CHECK_EQ(pages, 3);
            CHECK(match);
        }
    }
    /* A field the entity cannot be filtered by is refused, wherever it is. */
    struct store_filter bad[2] = {{"stage", "lead"}, {"title", "Deal"}};
    struct store_query bq = {.limit = 5, .filters = bad, .nfilters = 2};
    json_t *items = NULL;
    char next[STORE_CURSOR_MAX];
    CHECK_EQ(store_deal_list(s, &bq, &items, next, &err), -EINVAL);
    CHECK_STR(err.field, "title");
    json_decref(user);
    store_close(s);
}

/* store_list_text writes, page after page, the bytes json_dumps makes of
 * store_list's page in the API's shape; returns the pages walked. */
static int same_pages(struct store *s, const struct entity_def *e, struct store_query q)
{
    static char cursor[STORE_CURSOR_MAX];
    char next[STORE_CURSOR_MAX];
    struct op_error err;
    int pages = 0;
    do {
        json_t *items = NULL;
        CHECK_EQ(store_list(s, e, &q, &items, next, &err), 0);
        json_t *page =
            json_pack("{s:o, s:s?}", "items", items, "next_cursor", next[0] ? next : NULL);
        char *want = json_dumps(page, JSON_COMPACT);
        json_decref(page);
        struct buf got = BUF_INIT(1u << 24);
        CHECK_EQ(store_list_text(s, e, &q, &got, &err), 0);
        if (strcmp(got.data, want) != 0)
            fprintf(stderr, "page %d of %s:\n want %s\n got  %s\n", pages, e->plural, want,
                    got.data);
        CHECK_STR(got.data, want);
        free(want);
        buf_done(&got);
        pages++;
        snprintf(cursor, sizeof cursor, "%s", next);
        q.cursor = cursor;
    } while (next[0] && pages < 50);
    return pages;
}

static void list_text_matches_objects(void)
{
    struct store *s = fx_store("text.db");
    struct op_error err;
    json_t *user = field_user(s, "ana"), *other = field_user(s, "ben");
    for (int i = 0; i < 23; i++) {
        json_t *in = json_pack("{s:s, s:s, s:b}", "given_name", "Zoë \"Zo\" Ł", "family_name",
                               "Back\\slash/slash", "restricted", i % 4 == 0);
        char email[64];
        snprintf(email, sizeof email, "t%02d@example.org", i);
        json_object_set_new(in, "email", json_string(email));
        if (i % 3 == 0)
            json_object_set(in, "owner_id", json_object_get(user, "id"));
        else if (i % 3 == 1 && i < 12) /* ben's: hidden from ana */
            json_object_set(in, "owner_id", json_object_get(other, "id"));
        if (i % 5 == 0)
            json_object_set_new(in, "custom",
                                json_pack("{s:s, s:s}", "tier", "gold", "note", "ä\"b"));
        CHECK_EQ(store_contact_create(s, in, STORE_SKIP_DUP_CHECK, NULL, &err), 0);
        json_decref(in);
    }
    /* What the store's checks keep out of text (control characters) may
     * still be in a database written before them: it is escaped as jansson
     * escapes it. */
    CHECK_EQ(sqlite3_exec(store_db(s),
                          "UPDATE contacts SET job_title = 'a' || char(1) || char(9) || char(10) "
                          "|| char(13) || char(8) || char(12) || char(31) || char(127) || 'z', "
                          "custom = '{ \"spaced\" : [1, 2] }' "
                          "WHERE rowid = (SELECT min(rowid) FROM contacts)",
                          NULL, NULL, NULL),
             SQLITE_OK);
    for (int i = 0; i < 9; i++) {
        json_t *in = json_pack("{s:s, s:I, s:s, s:s}", "title", "Deal", "amount_minor",
                               (json_int_t)(i * 1000001 - 3), "currency", "eur", "stage",
                               i % 2 ? "lead" : "qualified");
        if (i % 2)
            json_object_set(in, "owner_id", json_object_get(user, "id"));
        CHECK_EQ(store_deal_create(s, in, 0, NULL, &err), 0);
        json_decref(in);
    }
    CHECK_EQ(same_pages(s, &entity_contact, (struct store_query){.limit = 5}), 5);
    CHECK_EQ(same_pages(s, &entity_contact, (struct store_query){.limit = 1000}), 1);
    CHECK_EQ(same_pages(s, &entity_contact,
                        (struct store_query){.limit = 7, .sort = STORE_SORT_UPDATED}),
             4);
    struct store_filter owner = {"owner_id", sval(user, "id")};
    CHECK_EQ(same_pages(s, &entity_contact,
                        (struct store_query){.limit = 3, .filters = &owner, .nfilters = 1}),
             3);
    struct store_filter two[2] = {{"owner_id", sval(user, "id")}, {"stage", "lead"}};
    CHECK_EQ(same_pages(s, &entity_deal,
                        (struct store_query){.limit = 2, .filters = two, .nfilters = 2}),
             2);
    CHECK_EQ(same_pages(s, &entity_deal, (struct store_query){.limit = 4}), 3);
    CHECK_EQ(same_pages(s, &entity_user, (struct store_query){.limit = 10}), 1);
    /* a field user's view, and an empty page */
    store_set_viewer(s, sval(user, "id"));
    CHECK_EQ(same_pages(s, &entity_contact, (struct store_query){.limit = 4}), 5);
    CHECK_EQ(same_pages(s, &entity_contact,
                        (struct store_query){.updated_since = "2999-01-01T00:00:00Z"}),
             1);
    store_set_viewer(s, NULL);
    /* errors as store_list's */
    struct buf got = BUF_INIT(1024);
    CHECK_EQ(
        store_list_text(s, &entity_contact, &(struct store_query){.cursor = "garbage"}, &got, &err),
        -EINVAL);
    CHECK_STR(err.field, "cursor");
    buf_done(&got);
    json_decref(user);
    json_decref(other);
    store_close(s);
}

static int has_param(sqlite3_stmt *st, const char *field)
{
    char param[80];
    snprintf(param, sizeof param, ":%s", field);
    return sqlite3_bind_parameter_index(st, param) > 0;
}

static int has_column(sqlite3_stmt *st, const char *name)
{
    for (int c = 0; c < sqlite3_column_count(st); c++)
        if (!strcmp(sqlite3_column_name(st, c), name))
            return 1;
    return 0;
}

/* sql/store.sql and the descriptors in entity.c meet by name: each
 * per-table query is the one for its entity's table, every field has its
 * parameter in the entity's insert and update and there is no other, and
 * every field is a column of what get_<table> reads. Every query of the
 * store room compiles against the schema. */
static void queries_match_descriptors(void)
{
    struct store *s = fx_store("queries.db");
    struct op_error err;
    struct sql_cache c;
    CHECK_EQ(store_queries_bind(s, &c, &store_queries, &err), 0);
    /* the import's staging queries name the temp table made on first use */
    CHECK(sql_exec(&c, STORE_Q_STORE_STAGE_TABLE, &err) >= 0);
    CHECK_EQ(sql_cache_prepare_all(&c, &err), 0);
    for (unsigned i = 0; entity_all[i]; i++) {
        const struct entity_def *e = entity_all[i];
        const struct {
            unsigned first;
            const char *stem;
            int fixed; /* numbered parameters besides the fields */
        } sets[] = {
            {STORE_Q_STORE_GET_USERS, "store_get_", -1},
            {STORE_Q_STORE_LIVE_USERS, "store_live_", -1},
            {STORE_Q_STORE_DELETE_USERS, "store_delete_", -1},
            {STORE_Q_STORE_EACH_USERS, "store_each_", -1},
            {STORE_Q_STORE_LIST_BY_ID_USERS, "store_list_by_id_", -1},
            {STORE_Q_STORE_LIST_BY_UPDATED_USERS, "store_list_by_updated_", -1},
            {STORE_Q_STORE_INSERT_USERS, "store_insert_", 2},
            {STORE_Q_STORE_UPDATE_USERS, "store_update_", 4},
        };
        for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
            char want[96];
            snprintf(want, sizeof want, "%s%s", sets[k].stem, e->table);
            CHECK_STR(store_queries.names[sets[k].first + i], want);
            if (sets[k].fixed < 0)
                continue;
            sqlite3_stmt *st = sql_get(&c, sets[k].first + i, &err);
            CHECK(st != NULL);
            if (!st)
                continue;
            int keys = (e->flags & ENTITY_DEDUP) ? 5 : 0; /* the duplicate keys */
            CHECK_EQ(sqlite3_bind_parameter_count(st), sets[k].fixed + (int)e->nfields + keys);
            for (size_t f = 0; f < e->nfields; f++) {
                if (!has_param(st, e->fields[f].name))
                    fprintf(stderr, "%s lacks :%s\n", want, e->fields[f].name);
                CHECK(has_param(st, e->fields[f].name));
            }
        }
        sqlite3_stmt *st = sql_get(&c, STORE_Q_STORE_GET_USERS + i, &err);
        CHECK(st != NULL);
        for (size_t f = 0; st && f < e->nfields; f++) {
            if (!has_column(st, e->fields[f].name))
                fprintf(stderr, "%s has no column %s\n", e->table, e->fields[f].name);
            CHECK(has_column(st, e->fields[f].name));
        }
        /* a list query for every field a list may filter on */
        for (size_t f = 0; f < e->nfields; f++) {
            if (!(e->fields[f].flags & FIELD_FILTER))
                continue;
            for (int sort = 0; sort < 2; sort++) {
                char want[128];
                snprintf(want, sizeof want, "store_list_by_%s_%s_%s", sort ? "updated" : "id",
                         e->table, e->fields[f].name);
                int found = 0;
                for (unsigned q = 0; q < store_queries.count; q++)
                    found |= !strcmp(store_queries.names[q], want);
                if (!found)
                    fprintf(stderr, "no query %s\n", want);
                CHECK(found);
            }
        }
    }
    sql_cache_close(&c);
    store_close(s);
}

/* A create in two halves gives what store_create gives: the same refusal
 * and message before the database (nothing written), the same stored
 * record with its phone key, the same duplicate rule, and a second write
 * of the same prepared create after a duplicate. The preparer works on a
 * thread of its own while the store is used here. */
struct prep_job {
    struct store_preparer *pr;
    json_t *fields;
    struct store_prepared *out;
    struct op_error err;
    int rc;
};

static void *prep_thread(void *arg)
{
    struct prep_job *j = arg;
    j->rc = store_prepare_create(j->pr, &entity_contact, j->fields, 0, &j->out, &j->err);
    return NULL;
}

static void prepared_creates(void)
{
    struct store *s = fx_store_next();
    struct op_error err;
    struct store_preparer *pr = NULL;
    CHECK_EQ(store_preparer_new(s, &pr), 0);

    /* refused before the database, with store_create's message */
    json_t *bad = json_pack("{s:s, s:s}", "given_name", "Ann", "email", "not-an-address");
    struct store_prepared *p = NULL;
    struct op_error perr;
    int prc = store_prepare_create(pr, &entity_contact, bad, 0, &p, &perr);
    int crc = store_create(s, &entity_contact, bad, 0, NULL, &err);
    CHECK_EQ(prc, -EINVAL);
    CHECK_EQ(crc, prc);
    CHECK_STR(perr.msg, err.msg);
    CHECK_STR(perr.field, err.field);
    CHECK(p == NULL);
    json_decref(bad);

    /* prepared on another thread while this one reads the store */
    struct prep_job j = {.pr = pr};
    j.fields = json_pack("{s:s, s:s, s:s}", "given_name", "Una", "phone", "030 1234567", "id",
                         "01900000-0000-7000-8000-0000000000AA");
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, prep_thread, &j), 0);
    json_t *none = NULL;
    CHECK_EQ(store_get(s, &entity_contact, "01900000-0000-7000-8000-0000000000aa", 0, &none, &err),
             -ENOENT);
    pthread_join(t, NULL);
    CHECK_EQ(j.rc, 0);
    CHECK_EQ(store_create_prepared(s, j.out, 0, &err), 0);
    json_t *got = NULL;
    CHECK_EQ(store_get(s, &entity_contact, "01900000-0000-7000-8000-0000000000aa", 0, &got, &err),
             0);
    CHECK_STR(json_string_value(json_object_get(got, "given_name")), "Una");
    CHECK_EQ(json_integer_value(json_object_get(got, "version")), 1);
    json_decref(got);

    /* the same number written another way is a duplicate, as with store_create */
    json_t *again = json_pack("{s:s, s:s}", "given_name", "Other", "phone", "+49 30 1234567");
    struct store_prepared *q = NULL;
    CHECK_EQ(store_prepare_create(pr, &entity_contact, again, 0, &q, &err), 0);
    CHECK_EQ(store_create_prepared(s, q, 0, &err), STORE_EDUP);
    CHECK_STR(err.ref, "01900000-0000-7000-8000-0000000000aa");
    CHECK_EQ(store_create(s, &entity_contact, again, 0, NULL, &err), STORE_EDUP);
    /* and may be written after all, once */
    CHECK_EQ(store_create_prepared(s, q, STORE_SKIP_DUP_CHECK, &err), 0);
    store_prepared_free(q);
    store_prepared_free(j.out);
    json_decref(again);
    json_decref(j.fields);
    store_preparer_free(pr);
    store_close(s);
}

static long long count_of(struct store *s, const char *sql)
{
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static struct store_prepared *prep(struct store_preparer *pr, const char *given, const char *email)
{
    json_t *f = json_pack("{s:s, s:s}", "given_name", given, "email", email);
    struct store_prepared *p = NULL;
    struct op_error err;
    CHECK_EQ(store_prepare_create(pr, &entity_contact, f, 0, &p, &err), 0);
    json_decref(f);
    return p;
}

/* Staged creates: batches that each reach the table (a batch after a
 * batch included), one audit and outbox row per contact, a duplicate of a
 * staged row sent to the ordinary path, no other write and no commit
 * while rows wait, and a rollback that leaves nothing. */
static void staged_creates(void)
{
    for (int held = 0; held < 2; held++) {
        struct store *s = fx_store_next();
        struct op_error err;
        if (held) {
            json_t *z = json_pack("{s:s, s:s}", "given_name", "Zed", "email", "zed@example.org");
            CHECK_EQ(store_create(s, &entity_contact, z, 0, NULL, &err), 0);
            json_decref(z);
        }
        long long c0 = count_of(s, "SELECT count(*) FROM contacts");
        long long a0 = count_of(s, "SELECT count(*) FROM audit_log WHERE action = 'create'");
        long long o0 = count_of(s, "SELECT count(*) FROM outbox");
        struct store_preparer *pr = NULL;
        CHECK_EQ(store_preparer_new(s, &pr), 0);
        struct store_prepared *p[6];
        static const char *const emails[] = {"a@example.org", "b@example.org", "c@example.org",
                                             "d@example.org", "e@example.org", "B@example.org"};
        for (int i = 0; i < 6; i++)
            p[i] = prep(pr, i == 5 ? "Bee" : "Person", emails[i]);

        /* without a bulk transaction: the ordinary path */
        CHECK_EQ(store_stage_create(s, p[0], 0, &err), STORE_ESTAGE);
        CHECK_EQ(store_begin_bulk(s, &err), 0);
        int replay = -1;
        for (int i = 0; i < 3; i++)
            CHECK_EQ(store_stage_create(s, p[i], 0, &err), 0);
        CHECK_EQ(store_staged(s), 3);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM contacts"), c0);
        /* the same e-mail as a staged row: not staged */
        CHECK_EQ(store_stage_create(s, p[5], 0, &err), STORE_ESTAGE);
        /* no other write while rows wait */
        CHECK_EQ(store_create_prepared(s, p[3], 0, &err), -EBUSY);
        CHECK_EQ(store_flush_staged(s, &replay, &err), 0);
        CHECK_EQ(replay, 0);
        CHECK_EQ(store_staged(s), 0);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM contacts"), c0 + 3);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM temp.import_stage"), 0);
        /* a second batch after the first */
        CHECK_EQ(store_stage_create(s, p[3], 0, &err), 0);
        CHECK_EQ(store_stage_create(s, p[4], 0, &err), 0);
        CHECK_EQ(store_flush_staged(s, &replay, &err), 0);
        CHECK_EQ(replay, 0);
        /* the duplicate, the ordinary way, names the written row */
        CHECK_EQ(store_create_prepared(s, p[5], 0, &err), STORE_EDUP);
        CHECK_EQ(store_commit(s, &err), 0);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM contacts"), c0 + 5);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM audit_log WHERE action = 'create'"), a0 + 5);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM outbox"), o0 + 5);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM contacts c JOIN audit_log a ON a.record_id "
                             "= c.id AND a.hlc = c.created_hlc AND a.version_after = 1"),
                 c0 + 5);

        /* staged and never written: commit refuses, nothing stays */
        struct store_prepared *q = prep(pr, "Late", "late@example.org");
        CHECK_EQ(store_begin_bulk(s, &err), 0);
        CHECK_EQ(store_stage_create(s, q, 0, &err), 0);
        CHECK_EQ(store_commit(s, &err), -EIO);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM contacts"), c0 + 5);
        /* and rolled back: nothing stays either */
        CHECK_EQ(store_begin_bulk(s, &err), 0);
        CHECK_EQ(store_stage_create(s, q, 0, &err), 0);
        CHECK_EQ(store_flush_staged(s, &replay, &err), 0);
        store_rollback(s);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM contacts"), c0 + 5);
        CHECK_EQ(count_of(s, "SELECT count(*) FROM outbox"), o0 + 5);
        store_prepared_free(q);
        for (int i = 0; i < 6; i++)
            store_prepared_free(p[i]);
        store_preparer_free(pr);
        store_close(s);
    }
}

int main(void)
{
    fx_tmpdir("store");
    RUN(crud_with_versions);
    RUN(bad_input_changes_nothing);
    RUN(duplicate_detection);
    RUN(phone_rekey_on_upgrade);
    RUN(custom_fields_merge);
    RUN(pagination_and_filters);
    RUN(every_entity_round_trips);
    RUN(transactions);
    RUN(clock_survives_restart_and_backwards_time);
    RUN(search_folds);
    RUN(search_unspaced_scripts);
    RUN(full_disk);
    RUN(viewer_sees_own_and_shared);
    RUN(viewer_rules);
    RUN(two_filters_page);
    RUN(list_text_matches_objects);
    RUN(queries_match_descriptors);
    RUN(prepared_creates);
    RUN(staged_creates);
    return fx_finish();
}
