/* Tests for the search of appliance/store/store.c: which records come back
 * and in what order. Type-ahead (one or two words of at most four
 * letters): names with the word first, exact word before longer words in
 * order, then by folded family and given name, then the full-text index's
 * best matches; longer queries by bm25. Latin with diacritics, Cyrillic,
 * Arabic, Chinese, Japanese and Thai; tombstoned, erased and purged
 * contacts are never found and leave nothing in the name index; a field
 * user sees only what a list shows them; the hits' records are the
 * records store_get returns; `outpost check` finds a name index out of
 * step and --rebuild-search mends it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "db.h"
#include "retention.h"
#include "store.h"
#include "store_fixture.h"
#include "subject.h"
#include "testlib.h"

#define DAY_MS UINT64_C(86400000)
#define NOW_MS UINT64_C(1780272000000) /* 2026-06-01T00:00:00Z */

static char *person(struct store *s, const char *given, const char *family, const char *extra)
{
    json_t *in = json_pack("{s:s?, s:s?}", "given_name", given, "family_name", family);
    if (extra) {
        json_t *x = json_loads(extra, 0, NULL);
        json_object_update(in, x);
        json_decref(x);
    }
    return fx_create(s, &entity_contact, in);
}

/* The labels of a search's hits, " | " between them ("-EINVAL" etc. on
 * an error). */
static const char *labels(struct store *s, const char *q, int limit)
{
    static char out[4096];
    json_t *hits = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = store_search(s, q, limit, &hits, &err);
    if (rc < 0) {
        snprintf(out, sizeof out, "error %d: %s", rc, err.msg);
        return out;
    }
    size_t o = 0;
    out[0] = '\0';
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h)
    {
        const char *l = json_string_value(json_object_get(h, "label"));
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", i ? " | " : "", l ? l : "(null)");
        if (o >= sizeof out)
            break;
    }
    json_decref(hits);
    return out;
}

#define CHECK_HITS(s, q, limit, want)                                                              \
    do {                                                                                           \
        const char *got_ = labels(s, q, limit);                                                    \
        if (strcmp(got_, want))                                                                    \
            fprintf(stderr, "  query '%s'\n    got  %s\n    want %s\n", q, got_, want);            \
        CHECK_STR(got_, want);                                                                     \
    } while (0)

static void org(struct store *s, const char *name)
{
    free(fx_create(s, &entity_organization, json_pack("{s:s}", "name", name)));
}

/* The order of type-ahead and of the full-text path. */
static void short_and_long_order(void)
{
    struct store *s = fx_store("order.db");
    /* written in an order unlike the one expected back */
    free(person(s, "Maria", "Zapata", NULL));
    free(person(s, "Zed", "Quinn", "{\"email\":\"marcus.q@example.org\"}"));
    free(person(s, "Márta", "Kovács", NULL));
    free(person(s, "Omar", "Sy", NULL)); /* "mar" inside a word: never */
    free(person(s, "Marek", "Nowak", NULL));
    free(person(s, "Maria", "Alves", NULL));
    org(s, "Marine Supplies");
    free(person(s, "Ana", "Mar", NULL));
    free(person(s, "Jan", "Kowalski", "{\"locality\":\"Marburg\"}"));

    /* names: "mar" exactly, then marek, maria (Alves before Zapata), marine,
     * marta; then what only the full-text index has (e-mail, locality),
     * best match first */
    CHECK_HITS(s, "mar", 20,
               "Ana Mar | Marek Nowak | Maria Alves | Maria Zapata | Marine Supplies | "
               "Márta Kovács | Jan Kowalski | Zed Quinn");
    /* folded the same way, whatever the case and accents typed */
    CHECK_HITS(s, "MÁR", 20,
               "Ana Mar | Marek Nowak | Maria Alves | Maria Zapata | Marine Supplies | "
               "Márta Kovács | Jan Kowalski | Zed Quinn");
    /* the limit cuts the type-ahead order */
    CHECK_HITS(s, "mar", 3, "Ana Mar | Marek Nowak | Maria Alves");
    CHECK_HITS(s, "m", 2, "Ana Mar | Marek Nowak");
    CHECK_HITS(s, "ková", 20, "Márta Kovács");
    CHECK_HITS(s, "kow", 20, "Jan Kowalski");
    /* two words: both must start a word; the longer one reads the index */
    CHECK_HITS(s, "mar now", 20, "Marek Nowak");
    CHECK_HITS(s, "alv ma", 20, "Maria Alves");
    /* a second word in another field: the full-text index finds it */
    CHECK_HITS(s, "jan marb", 20, "Jan Kowalski");
    /* five letters: full-text, bm25 (equal here: the two Marias by rowid) */
    CHECK_HITS(s, "maria", 20, "Maria Zapata | Maria Alves");
    CHECK_HITS(s, "marcus", 20, "Zed Quinn");
    CHECK_HITS(s, "omar", 20, "Omar Sy");
    CHECK_HITS(s, "xyz", 20, "");
    /* bad input is refused with what is wrong, as before */
    CHECK_HITS(s, "   ", 20, "error -22: search text is empty");
    CHECK_HITS(s, "mar", STORE_SEARCH_MAX + 1, "error -22: limit: at most 200");
    CHECK_HITS(s, "a b c d e f g h i j k l m n o p q", 20,
               "error -22: search text has more than 16 words");
    store_close(s);
}

/* Cyrillic and Arabic names have words like Latin ones; Chinese,
 * Japanese and Thai are found by any two characters anywhere, through
 * the full-text index's pairs. */
static void other_scripts(void)
{
    struct store *s = fx_store("scripts.db");
    free(person(s, "Иван", "Петров", NULL));
    free(person(s, "Ивона", "Андреева", NULL));
    free(person(s, "Пётр", "Иванов", NULL));
    free(person(s, "محمد", "العلي", NULL));
    free(person(s, "محمود", "حسن", NULL));
    CHECK_HITS(s, "ив", 20, "Иван Петров | Пётр Иванов | Ивона Андреева");
    CHECK_HITS(s, "ИВА", 20, "Иван Петров | Пётр Иванов");
    CHECK_HITS(s, "пёт", 20, "Пётр Иванов");
    CHECK_HITS(s, "محم", 20, "محمد العلي | محمود حسن");
    CHECK_HITS(s, "محمود", 20, "محمود حسن");
    store_close(s);

    s = fx_store_region("cjk.db", "CN", NULL);
    free(person(s, "小明", "王", "{\"locality\":\"上海市海淀区\"}"));
    free(person(s, "太郎", "山田", "{\"locality\":\"東京都新宿区\"}"));
    free(person(s, "สมชาย", "ใจดี", "{\"locality\":\"กรุงเทพมหานคร\"}"));
    free(person(s, "Li", "Hai", NULL));
    static const struct {
        const char *q, *want;
    } cases[] = {
        {"海淀", "小明 王"},   {"海淀区", "小明 王"},   {"王", "小明 王"},   {"小明", "小明 王"},
        {"新宿", "太郎 山田"}, {"山", "太郎 山田"},     {"海南", ""},        {"淀海", ""},
        {"ชาย", "สมชาย ใจดี"},  {"เทพมหา", "สมชาย ใจดี"}, {"สม", "สมชาย ใจดี"}, {"hai", "Li Hai"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_HITS(s, cases[i].q, 20, cases[i].want);
    /* no words of these scripts in the name index: their pairs are in the
     * full-text index */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM search_names"), 2);
    store_close(s);
}

/* Tombstoned, renamed, erased and purged contacts: not found, and their
 * old words gone from the name index in the same transaction. */
static void gone_stays_gone(void)
{
    struct store *s = fx_store_at("gone.db", NOW_MS - 400 * DAY_MS);
    struct op_error err;
    /* the clock (an HLC) only moves forward: the old ones first */
    char *old = person(s, "Marika", "Purgedova", NULL);
    char *del = person(s, "Marzena", "Deletedska", NULL);
    char *ren = person(s, "Marlena", "Renamedska", NULL);
    char *era = person(s, "Marzanna", "Canaryerased", "{\"email\":\"mz.canary@example.org\"}");
    fx_clock_ms = NOW_MS - 10 * DAY_MS;
    char *keep = person(s, "Marta", "Keeper", NULL);
    CHECK_HITS(s, "mar", 20,
               "Marika Purgedova | Marlena Renamedska | Marta Keeper | Marzanna Canaryerased | "
               "Marzena Deletedska");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM search_names"), 10);

    CHECK_EQ(store_contact_delete(s, del, 1, &err), 0);
    json_t *ch = json_pack("{s:s}", "given_name", "Jolanta");
    CHECK_EQ(store_update(s, &entity_contact, ren, 1, ch, 0, NULL, &err), 0);
    json_decref(ch);
    struct subject_erase_report rep;
    CHECK_EQ(subject_erase(s, era, "request 12", NOW_MS, &rep, &err), 0);
    CHECK_HITS(s, "mar", 20, "Marika Purgedova | Marta Keeper");
    CHECK_HITS(s, "jol", 20, "Jolanta Renamedska");
    CHECK_HITS(s, "deletedska", 20, "");
    CHECK_HITS(s, "canaryerased", 20, "");
    /* no key holds the old words, as a word or in the sort text */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM search_names WHERE instr(key, 'marzena') OR "
                         "instr(key, 'deletedska') OR instr(key, 'marlena') OR "
                         "instr(key, 'marzanna') OR instr(key, 'canaryerased')"),
             0);

    /* retention: contacts older than a year are purged */
    struct policy_retention rule = {.entity = &entity_contact, .days = 365};
    snprintf(rule.basis, sizeof rule.basis, "test");
    struct policy pol = {.retention = &rule, .nretention = 1};
    snprintf(pol.region, sizeof pol.region, "EU-DE");
    struct retention_report rr;
    fx_clock_ms = NOW_MS;
    CHECK_EQ(retention_run(s, &pol, NOW_MS, NULL, &rr, &err), 0);
    CHECK_EQ(rr.total, 1); /* Marika: the others changed since */
    CHECK_HITS(s, "mar", 20, "Marta Keeper");
    CHECK_HITS(s, "purg", 20, "");
    /* only the live contacts' words are left: Marta Keeper, Jolanta
     * Renamedska */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM search_names"), 4);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM search_names WHERE rid = "
                         "(SELECT rowid FROM contacts WHERE family_name = 'Keeper')"),
             2);
    free(del);
    free(ren);
    free(era);
    free(keep);
    free(old);
    store_close(s);
}

/* A field user sees their own and unowned contacts, in both paths, and
 * the hits' records are those store_get gives them. */
static void field_users_view(void)
{
    struct store *s = fx_store("view.db");
    struct op_error err;
    json_t *in = json_pack("{s:s, s:s}", "name", "anna", "role", "field");
    json_t *anna = NULL;
    CHECK_EQ(store_user_create(s, in, 0, &anna, &err), 0);
    json_decref(in);
    in = json_pack("{s:s, s:s}", "name", "boris", "role", "field");
    json_t *boris = NULL;
    CHECK_EQ(store_user_create(s, in, 0, &boris, &err), 0);
    json_decref(in);
    const char *a = json_string_value(json_object_get(anna, "id"));
    const char *b = json_string_value(json_object_get(boris, "id"));
    char extra[200];
    snprintf(extra, sizeof extra, "{\"owner_id\":\"%s\",\"locality\":\"Markt Erlbach\"}", a);
    free(person(s, "Mario", "Annas", extra));
    snprintf(extra, sizeof extra, "{\"owner_id\":\"%s\",\"locality\":\"Markt Erlbach\"}", b);
    free(person(s, "Marco", "Borisov", extra));
    free(person(s, "Marla", "Shared", "{\"locality\":\"Markt Erlbach\"}"));
    snprintf(extra, sizeof extra, "{\"owner_id\":\"%s\",\"locality\":\"Markt Erlbach\"}", b);
    free(person(s, "Ute", "Borisowa", extra));

    CHECK_HITS(s, "mar", 20, "Marco Borisov | Mario Annas | Marla Shared | Ute Borisowa");
    store_set_viewer(s, a);
    CHECK_HITS(s, "mar", 20, "Mario Annas | Marla Shared");
    CHECK_HITS(s, "markt", 20, "Mario Annas | Marla Shared");
    CHECK_HITS(s, "bor", 20, "");
    store_set_viewer(s, b);
    CHECK_HITS(s, "mar", 20, "Marco Borisov | Marla Shared | Ute Borisowa");

    /* each hit's record is what store_get gives this viewer */
    json_t *hits = NULL;
    CHECK_EQ(store_search(s, "mar", 20, &hits, &err), 0);
    CHECK_EQ(json_array_size(hits), 3);
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h)
    {
        CHECK_STR(json_string_value(json_object_get(h, "entity")), "contact");
        const char *id = json_string_value(json_object_get(h, "id"));
        json_t *rec = NULL;
        CHECK_EQ(store_get(s, &entity_contact, id, 0, &rec, &err), 0);
        CHECK(json_equal(rec, json_object_get(h, "record")));
        json_decref(rec);
    }
    json_decref(hits);

    /* the text the API answers is the same hits */
    struct buf body = BUF_INIT(1u << 20);
    CHECK_EQ(store_search_text(s, "mar", 20, &body, &err), 0);
    json_t *doc = json_loadb(body.data, body.len, 0, NULL);
    CHECK(doc != NULL);
    CHECK_EQ(json_array_size(json_object_get(doc, "items")), 3);
    json_decref(doc);
    buf_done(&body);
    store_set_viewer(s, NULL);
    json_decref(anna);
    json_decref(boris);
    store_close(s);
}

/* The hits' stamps, written from a memo of the day with the time of day
 * patched in, are the stamps store_get gives, across hours, minutes,
 * seconds and milliseconds of one day and across days. */
static void stamps_across_a_day(void)
{
    struct store *s = fx_store_at("stamps.db", NOW_MS);
    static const uint64_t at[] = {0,
                                  1,
                                  999,
                                  1000,
                                  59999,
                                  60000,
                                  3599999,
                                  3600000,
                                  12 * 3600000 + 34 * 60000 + 56789,
                                  DAY_MS - 1,
                                  DAY_MS,
                                  DAY_MS + 3723004,
                                  40 * DAY_MS + 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        fx_clock_ms = NOW_MS + at[i];
        char family[32];
        snprintf(family, sizeof family, "Stamp%02zu", i);
        free(person(s, "Mara", family, NULL));
    }
    struct op_error err;
    json_t *hits = NULL;
    CHECK_EQ(store_search(s, "mara", 50, &hits, &err), 0);
    CHECK_EQ(json_array_size(hits), sizeof at / sizeof at[0]);
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h)
    {
        json_t *rec = NULL;
        const char *id = json_string_value(json_object_get(h, "id"));
        CHECK_EQ(store_get(s, &entity_contact, id, 0, &rec, &err), 0);
        const char *want = json_string_value(json_object_get(rec, "created_at"));
        const char *got =
            json_string_value(json_object_get(json_object_get(h, "record"), "created_at"));
        CHECK_STR(got ? got : "", want ? want : "-");
        CHECK(json_equal(rec, json_object_get(h, "record")));
        json_decref(rec);
    }
    json_decref(hits);
    store_close(s);
}

static void last_problem(void *ctx, const char *line)
{
    snprintf(ctx, 512, "%s", line);
}

/* The check compares the name index with the names; the rebuild makes it
 * whole again. */
static void check_and_rebuild(void)
{
    struct store *s = fx_store("check.db");
    struct op_error err;
    free(person(s, "Maria", "Alves", NULL));
    free(person(s, "Marek", "Nowak", NULL));
    org(s, "Marine Supplies");
    char line[512] = "";
    struct check_result cr;
    CHECK_EQ(check_run(store_db(s), last_problem, line, &cr, &err), 0);
    CHECK_STR(line, "");

    /* a key lost, one left from a record that is gone */
    CHECK_EQ(fx_count(s, "DELETE FROM search_names WHERE key LIKE 'marek %' RETURNING 1"), 1);
    CHECK_EQ(fx_count(s, "INSERT INTO search_names VALUES (0, 'zofia canary', 999) RETURNING 1"),
             1);
    /* found still, by the full-text index, but out of type-ahead order */
    CHECK_HITS(s, "mar", 20, "Maria Alves | Marine Supplies | Marek Nowak");
    CHECK_EQ(check_run(store_db(s), last_problem, line, &cr, &err), 1);
    CHECK_CONTAINS(line, "search_names: 1 keys no live name gives, 1 missing");

    CHECK_EQ(check_rebuild_search(store_db(s), &err), 0);
    line[0] = '\0';
    CHECK_EQ(check_run(store_db(s), last_problem, line, &cr, &err), 0);
    CHECK_STR(line, "");
    CHECK_HITS(s, "mar", 20, "Marek Nowak | Maria Alves | Marine Supplies");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM search_names WHERE key LIKE 'zofia%'"), 0);
    store_close(s);
}

int main(void)
{
    fx_tmpdir("store_search");
    RUN(short_and_long_order);
    RUN(other_scripts);
    RUN(gone_stays_gone);
    RUN(field_users_view);
    RUN(stamps_across_a_day);
    RUN(check_and_rebuild);
    return fx_finish();
}
