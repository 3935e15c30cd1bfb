/*
 * Egress takes the phone key the store made at write (contacts'
 * phone_e164) instead of parsing the number again (egress.h,
 * egress_project_known; docs/EGRESS.md, "Phone numbers from the store").
 * The claim is that nothing changes on the wire, and this test holds it
 * to that: for every shipped region, a node of that region stores the
 * contacts tests/tools/gen_contacts writes (all thirteen locales), each
 * phone also spelt the other ways people type it (trailing spaces, "00"
 * for "+", the national form with a trunk "0", an extension, a number no
 * plan knows), and every contact's projection made with the stored key is
 * byte for byte the one made by parsing, phone pseudonym included (a
 * region whose profile keeps phones at the node is loaded with phones
 * pseudonymized, so its keys are compared too). Then the edges: a key
 * that is not the number's changes the pseudonym (the key is really
 * used), a key from another region, a malformed key or a value with a NUL
 * byte is not used, an organization (no stored key) and a store whose
 * keys were made by an older build give no key.
 *
 * GEN_CONTACTS names the generator (tests/meson.build sets it).
 */
#include "egress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv_reader.h"
#include "db.h"
#include "store_fixture.h"
#include "testlib.h"

static const char *const regions[] = {"AR", "BR", "CN", "CO", "EU-DE", "EU-FR", "ID",
                                      "IN", "KE", "NG", "RU", "US-CA", "US-TX"};
#define NREGIONS (sizeof regions / sizeof regions[0])
/* 13 locales, 8 rows each: every locale many times over */
#define ROWS 104
#define SPELLINGS 6

struct row {
    char given[256], family[256], phone[64];
};
static struct row rows[ROWS];
static size_t nrows;

static void read_contacts(void)
{
    const char *gen = getenv("GEN_CONTACTS");
    if (!gen || !*gen) {
        fprintf(stderr, "GEN_CONTACTS is not set\n");
        exit(1);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' --count %d --seed 13", gen, ROWS);
    FILE *f = popen(cmd, "r");
    struct csv_reader *r = NULL;
    struct op_error err;
    if (!f || csv_reader_new(f, NULL, &r) < 0)
        fx_die("gen_contacts", NULL);
    int n, first = 1;
    size_t cg = 0, cf = 0, cp = 0;
    while ((n = csv_reader_next(r, &err)) > 0) {
        const struct csv_field *fl = csv_reader_fields(r);
        if (first) {
            for (int i = 0; i < n; i++) {
                if (!strcmp(fl[i].data, "given_name"))
                    cg = (size_t)i;
                else if (!strcmp(fl[i].data, "family_name"))
                    cf = (size_t)i;
                else if (!strcmp(fl[i].data, "phone"))
                    cp = (size_t)i;
            }
            first = 0;
            continue;
        }
        if (nrows == ROWS)
            break;
        struct row *w = &rows[nrows++];
        snprintf(w->given, sizeof w->given, "%s", fl[cg].data);
        snprintf(w->family, sizeof w->family, "%s", fl[cf].data);
        snprintf(w->phone, sizeof w->phone, "%s", fl[cp].data);
    }
    csv_reader_free(r);
    pclose(f);
    if (n < 0 || nrows != ROWS)
        fx_die("gen_contacts output", n < 0 ? &err : NULL);
}

/* The k-th spelling of a generated "+CC REST" number. */
static void spell(const char *phone, int k, char *out, size_t cap)
{
    const char *rest = strchr(phone, ' ');
    switch (k) {
    case 0:
        snprintf(out, cap, "%s", phone);
        break;
    case 1:
        snprintf(out, cap, "%s  ", phone);
        break;
    case 2:
        snprintf(out, cap, "00%s", phone + 1);
        break;
    case 3:
        snprintf(out, cap, "0%s", rest ? rest + 1 : phone + 1);
        break;
    case 4:
        snprintf(out, cap, "%s ext. 12", phone);
        break;
    default:
        snprintf(out, cap, "12%s", rest ? rest : "3");
        break;
    }
}

/* The region's profile, with contact.phone pseudonymized when the
 * profile keeps it at the node. */
static struct policy *phone_policy(const char *region)
{
    char path[FX_PATH_MAX];
    size_t len;
    char *text = fx_read_file(fx_profile_path(region, path, sizeof path), &len);
    if (!text)
        fx_die("read profile", NULL);
    static const char *const keep[] = {"contact.phone: {class: local_primary",
                                       "contact.phone: {class: local_only"};
    for (size_t i = 0; i < 2; i++) {
        if (strstr(text, keep[i])) {
            char *t = fx_edit(text, keep[i], "contact.phone: {class: pseudonymize");
            free(text);
            text = t;
        }
    }
    CHECK(strstr(text, "contact.phone: {class: pseudonymize") != NULL);
    struct policy *p = NULL;
    struct op_error err;
    if (policy_load_buffer_for("profile", region, text, strlen(text), &p, &err) < 0)
        fx_die("policy", &err);
    free(text);
    return p;
}

static char *project(const struct policy *p, const unsigned char key[32], json_t *rec,
                     const struct egress_known *known)
{
    struct egress_record *er = NULL;
    struct op_error err;
    int rc = known ? egress_project_known(p, key, &entity_contact, rec, known, &er, NULL, &err)
                   : egress_project(p, key, &entity_contact, rec, &er, NULL, &err);
    CHECK_EQ(rc, 0);
    char *s = er ? strdup(egress_record_json(er)) : NULL;
    egress_record_free(er);
    return s;
}

static const char *phone_of(const char *json, char *buf, size_t cap)
{
    json_t *j = json_loads(json, 0, NULL);
    const char *v = json_string_value(json_object_get(j, "phone"));
    snprintf(buf, cap, "%s", v ? v : "");
    json_decref(j);
    return buf;
}

/* Every stored contact of every region: the same bytes both ways. */
static void test_regions(void)
{
    size_t keyed_total = 0, compared_total = 0, same_total = 0;
    for (size_t ri = 0; ri < NREGIONS; ri++) {
        const char *region = regions[ri];
        char name[32];
        snprintf(name, sizeof name, "%s.db", region);
        struct store *s = fx_store_region(name, region, NULL);
        struct policy *p = phone_policy(region);
        unsigned char key[32];
        struct op_error err;
        if (store_pseudonym_key(s, key, &err) < 0)
            fx_die("pseudonym key", &err);
        static char ids[ROWS * SPELLINGS][64];
        static int spelling[ROWS * SPELLINGS];
        size_t nids = 0;
        if (store_begin(s, &err) < 0)
            fx_die("begin", &err);
        for (size_t i = 0; i < nrows; i++) {
            for (int k = 0; k < SPELLINGS; k++) {
                char ph[128];
                spell(rows[i].phone, k, ph, sizeof ph);
                json_t *in = json_pack("{ssssss}", "given_name", rows[i].given, "family_name",
                                       rows[i].family, "phone", ph);
                json_t *out = NULL;
                int rc = store_create(s, &entity_contact, in, STORE_SKIP_DUP_CHECK, &out, &err);
                json_decref(in);
                if (rc == 0) {
                    spelling[nids] = k;
                    snprintf(ids[nids++], sizeof ids[0], "%s",
                             json_string_value(json_object_get(out, "id")));
                }
                json_decref(out);
            }
        }
        if (store_commit(s, &err) < 0)
            fx_die("commit", &err);
        /* the generated spelling and its padded and "00" forms are stored
         * for every row at least */
        CHECK(nids >= 3 * nrows);
        size_t keyed = 0, same = 0, keyed_as_generated = 0;
        for (size_t i = 0; i < nids; i++) {
            json_t *rec = NULL;
            char pk[PHONE_E164_MAX];
            CHECK_EQ(store_get_keyed(s, &entity_contact, ids[i], 0, &rec, pk, &err), 0);
            if (!rec)
                continue;
            struct egress_known known = {store_region(s), pk};
            char *parsed = project(p, key, rec, NULL), *stored = project(p, key, rec, &known);
            if (parsed && stored && !strcmp(parsed, stored))
                same++;
            else
                fprintf(stderr, "%s: %s differs:\n  parsed %s\n  stored %s\n", region,
                        json_string_value(json_object_get(rec, "phone")), parsed ? parsed : "-",
                        stored ? stored : "-");
            if (pk[0]) {
                keyed++;
                keyed_as_generated += spelling[i] == 0;
                /* the key is the phone's pseudonymized text */
                char h[EGRESS_PSEUDONYM_LEN], got[64];
                CHECK_EQ(egress_pseudonym(key, pk, strlen(pk), h), 0);
                CHECK_STR(phone_of(stored, got, sizeof got), h);
            }
            free(parsed);
            free(stored);
            json_decref(rec);
        }
        CHECK_EQ(same, nids);
        /* the key path was taken for most generated numbers (a few are
         * not valid in their plan: the fictional 555 range, for one),
         * and not for the number no plan knows */
        CHECK(keyed_as_generated * 8 >= nrows * 7);
        CHECK(keyed < nids);
        keyed_total += keyed;
        compared_total += nids;
        same_total += same;
        policy_free(p);
        store_close(s);
    }
    printf("  %zu contacts in %zu regions, %zu with a stored key; %zu projections the same "
           "both ways\n",
           compared_total, NREGIONS, keyed_total, same_total);
}

/* The key is used when it may be, and only then. */
static void test_edges(void)
{
    struct store *s = fx_store_region("edges.db", "KE", NULL);
    struct policy *p = phone_policy("KE");
    unsigned char key[32];
    struct op_error err;
    if (store_pseudonym_key(s, key, &err) < 0)
        fx_die("pseudonym key", &err);
    char *id = fx_create(s, &entity_contact,
                         json_pack("{ssss}", "given_name", "Neema", "phone", "0720 380830"));
    json_t *rec = NULL;
    char pk[PHONE_E164_MAX];
    CHECK_EQ(store_get_keyed(s, &entity_contact, id, 0, &rec, pk, &err), 0);
    CHECK_STR(pk, "+254720380830");
    char *parsed = project(p, key, rec, NULL);

    /* a key that is not the number's: the pseudonym is the key's */
    struct egress_known wrong = {"KE", "+254700000001"};
    char *w = project(p, key, rec, &wrong);
    char h[EGRESS_PSEUDONYM_LEN], got[64];
    CHECK_EQ(egress_pseudonym(key, "+254700000001", 13, h), 0);
    CHECK_STR(phone_of(w, got, sizeof got), h);
    CHECK(strcmp(w, parsed) != 0);
    free(w);

    /* not used: another region's key, malformed keys, no key */
    const struct egress_known unused[] = {
        {"NG", "+254700000001"},
        {NULL, "+254700000001"},
        {"KE", "254700000001"},
        {"KE", "+"},
        {"KE", "+2547x0001"},
        {"KE", "+254700000001;ext="},
        {"KE", ""},
        {"KE", NULL},
    };
    for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++) {
        char *u = project(p, key, rec, &unused[i]);
        CHECK_STR(u, parsed);
        free(u);
    }
    /* an extension is part of a key */
    struct egress_known ext = {"KE", "+254700000001;ext=12"};
    char *x = project(p, key, rec, &ext);
    CHECK_EQ(egress_pseudonym(key, "+254700000001;ext=12", 20, h), 0);
    CHECK_STR(phone_of(x, got, sizeof got), h);
    free(x);

    /* a value with a NUL byte is hashed as typed, never by a key */
    json_t *nul = json_deep_copy(rec);
    json_object_set_new(nul, "phone", json_stringn("0720 380830\0x", 13));
    char *np = project(p, key, nul, NULL), *nk = project(p, key, nul, &wrong);
    CHECK_STR(nk, np);
    CHECK(strcmp(np, parsed) != 0);
    free(np);
    free(nk);
    json_decref(nul);
    json_decref(rec);
    free(parsed);

    /* an organization keeps no key */
    char *org = fx_create(s, &entity_organization,
                          json_pack("{ssss}", "name", "Duka", "phone", "+254 720 380830"));
    CHECK_EQ(store_get_keyed(s, &entity_organization, org, 0, &rec, pk, &err), 0);
    CHECK_STR(pk, "");
    json_decref(rec);
    /* a contact without a phone, and one whose number is no number */
    char *none = fx_create(s, &entity_contact, json_pack("{ss}", "given_name", "Amani"));
    CHECK_EQ(store_get_keyed(s, &entity_contact, none, 0, &rec, pk, &err), 0);
    CHECK_STR(pk, "");
    json_decref(rec);
    char *bad =
        fx_create(s, &entity_contact, json_pack("{ssss}", "given_name", "Baraka", "phone", "123"));
    CHECK_EQ(store_get_keyed(s, &entity_contact, bad, 0, &rec, pk, &err), 0);
    CHECK_STR(pk, "");
    json_decref(rec);
    /* a missing record: the store's error, no key */
    CHECK_EQ(store_get_keyed(s, &entity_contact, "0190f000-0000-7000-8000-000000000000", 0, &rec,
                             pk, &err),
             -ENOENT);
    CHECK_STR(pk, "");
    store_close(s);

    /* keys made by an older build, read before the upgrade step ran (a
     * read-only open): none given, so egress parses */
    sqlite3 *db = NULL;
    if (db_open(fx_db, 0, &db, &err) < 0)
        fx_die("db_open", &err);
    CHECK_EQ(sqlite3_exec(db, "UPDATE node_meta SET value = 'older' WHERE key = 'phone_keys'", NULL,
                          NULL, NULL),
             SQLITE_OK);
    sqlite3_close(db);
    if (store_open(fx_db, DB_OPEN_READONLY, &s, &err) < 0)
        fx_die("store_open", &err);
    CHECK_EQ(store_get_keyed(s, &entity_contact, id, 0, &rec, pk, &err), 0);
    CHECK_STR(pk, "");
    json_decref(rec);
    store_close(s);
    /* opened for writing, the store re-keys and gives the key again */
    if (store_open(fx_db, DB_OPEN_CREATE, &s, &err) < 0)
        fx_die("store_open", &err);
    CHECK_EQ(store_get_keyed(s, &entity_contact, id, 0, &rec, pk, &err), 0);
    CHECK_STR(pk, "+254720380830");
    json_decref(rec);
    store_close(s);
    policy_free(p);
    free(id);
    free(org);
    free(none);
    free(bad);
}

int main(void)
{
    fx_tmpdir("egress-phone-key");
    read_contacts();
    test_regions();
    test_edges();
    return fx_finish();
}
