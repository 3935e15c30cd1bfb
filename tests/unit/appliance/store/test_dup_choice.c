/* Tests for appliance/store/dup_choice.c: each choice on a probable
 * duplicate (refuse, skip, update at the current or an expected version,
 * new), a conflict that leaves the record as it was, a duplicate a field
 * user may not see, a created record's warning, and the names. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dup_choice.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

static const char *sval(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(null)";
}

static json_t *make(struct store *s, const char *json)
{
    json_t *in = json_loads(json, 0, NULL), *out = NULL;
    struct op_error err;
    CHECK_EQ(store_contact_create(s, in, 0, &out, &err), 0);
    json_decref(in);
    return out;
}

/* dup_choice_create of json with choice and version; returns the rc. */
static int decide(struct store *s, const char *json, enum dup_choice c, int64_t version,
                  struct dup_outcome *o, json_t **out)
{
    json_t *in = json_loads(json, 0, NULL);
    struct op_error err;
    op_error_clear(&err);
    int rc = dup_choice_create(s, &entity_contact, in, 0, c, version, o, out, &err);
    json_decref(in);
    return rc;
}

static int contacts(struct store *s)
{
    json_t *items = NULL;
    char next[STORE_CURSOR_MAX];
    struct op_error err;
    struct store_query q = {.limit = 1000};
    CHECK_EQ(store_contact_list(s, &q, &items, next, &err), 0);
    int n = (int)json_array_size(items);
    json_decref(items);
    return n;
}

static void choices(void)
{
    struct store *s = fx_store("choices.db");
    json_t *jose = make(s, "{\"given_name\":\"José\",\"family_name\":\"Müller\","
                           "\"email\":\"jose@example.org\",\"street\":\"Piotrkowska 12\","
                           "\"locality\":\"Łódź\"}");
    const char *id = sval(jose, "id");
    const char *dup = "{\"family_name\":\"Other\",\"email\":\"JOSE@example.org\","
                      "\"job_title\":\"Buyer\",\"street\":null}";
    struct dup_outcome o;
    json_t *rec = NULL;

    CHECK_EQ(decide(s, dup, DUP_CHOICE_REFUSE, 0, &o, &rec), 0);
    CHECK_EQ(o.action, DUP_ACTION_REFUSED);
    CHECK_STR(o.existing_id, id);
    CHECK_STR(o.reason, "same e-mail address");
    CHECK(rec == NULL);
    CHECK_EQ(decide(s, dup, DUP_CHOICE_SKIP, 0, &o, &rec), 0);
    CHECK_EQ(o.action, DUP_ACTION_SKIPPED);
    CHECK_STR(o.existing_id, id);
    CHECK_EQ(contacts(s), 1);

    /* update: the non-null fields, at the current version */
    CHECK_EQ(decide(s, dup, DUP_CHOICE_UPDATE, 0, &o, &rec), 0);
    CHECK_EQ(o.action, DUP_ACTION_UPDATED);
    CHECK_STR(sval(rec, "id"), id);
    CHECK_EQ(json_integer_value(json_object_get(rec, "version")), 2);
    CHECK_STR(sval(rec, "job_title"), "Buyer");
    CHECK_STR(sval(rec, "family_name"), "Other");
    CHECK_STR(sval(rec, "street"), "Piotrkowska 12"); /* null never clears */
    json_decref(rec);
    /* at an expected version that is no longer current: a conflict */
    CHECK_EQ(decide(s, "{\"email\":\"jose@example.org\",\"job_title\":\"Seller\"}",
                    DUP_CHOICE_UPDATE, 1, &o, &rec),
             0);
    CHECK_EQ(o.action, DUP_ACTION_CONFLICT);
    CHECK_CONTAINS(o.detail, "at version 2, not 1");
    CHECK(rec == NULL);
    json_t *now = NULL;
    struct op_error err;
    CHECK_EQ(store_contact_get(s, id, &now, &err), 0);
    CHECK_STR(sval(now, "job_title"), "Buyer");
    json_decref(now);
    /* an update the store refuses is an error, not an outcome */
    CHECK_EQ(decide(s, "{\"email\":\"jose@example.org\",\"country\":\"Germany\"}",
                    DUP_CHOICE_UPDATE, 0, &o, &rec),
             -EINVAL);

    /* new: created all the same, naming what it matched */
    CHECK_EQ(decide(s, dup, DUP_CHOICE_NEW, 0, &o, &rec), 0);
    CHECK_EQ(o.action, DUP_ACTION_NEW);
    CHECK_STR(o.existing_id, id);
    CHECK(strcmp(sval(rec, "id"), id) != 0);
    json_decref(rec);
    CHECK_EQ(contacts(s), 2);

    /* not a duplicate: created, with the same-name warning (José is Other now) */
    CHECK_EQ(decide(s, "{\"given_name\":\"Jose\",\"family_name\":\"Other\",\"locality\":\"Lodz\"}",
                    DUP_CHOICE_SKIP, 0, &o, &rec),
             0);
    CHECK_EQ(o.action, DUP_ACTION_CREATED);
    CHECK_CONTAINS(o.reason, "same name in the same locality");
    json_decref(rec);

    /* a duplicate the viewer may not see: no id, and no update of it */
    json_t *in = json_pack("{s:s, s:s}", "name", "ana", "role", "field");
    json_t *ana = NULL;
    CHECK_EQ(store_user_create(s, in, 0, &ana, &err), 0);
    json_decref(in);
    in = json_pack("{s:s, s:s}", "name", "ben", "role", "field");
    json_t *ben = NULL;
    CHECK_EQ(store_user_create(s, in, 0, &ben, &err), 0);
    json_decref(in);
    store_set_viewer(s, sval(ben, "id"));
    json_decref(make(s, "{\"family_name\":\"Bens\",\"email\":\"bens@example.org\"}"));
    store_set_viewer(s, sval(ana, "id"));
    CHECK_EQ(decide(s, "{\"family_name\":\"X\",\"email\":\"bens@example.org\"}", DUP_CHOICE_UPDATE,
                    0, &o, &rec),
             0);
    CHECK_EQ(o.action, DUP_ACTION_REFUSED);
    CHECK_STR(o.existing_id, "");
    CHECK_CONTAINS(o.reason, "is not yours");
    CHECK_EQ(decide(s, "{\"family_name\":\"X\",\"email\":\"bens@example.org\"}", DUP_CHOICE_SKIP, 0,
                    &o, &rec),
             0);
    CHECK_EQ(o.action, DUP_ACTION_SKIPPED);
    store_set_viewer(s, NULL);
    json_decref(ana);
    json_decref(ben);
    json_decref(jose);
    store_close(s);
}

static void names(void)
{
    enum dup_choice c;
    const char *const all[] = {"refuse", "skip", "update", "new"};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(dup_choice_parse(all[i], &c), 0);
        CHECK_STR(dup_choice_name(c), all[i]);
    }
    CHECK_EQ(dup_choice_parse("merge", &c), -EINVAL);
    CHECK_EQ(dup_choice_parse("", &c), -EINVAL);
    CHECK_EQ(dup_choice_parse(NULL, &c), -EINVAL);
}

int main(void)
{
    fx_tmpdir("dup_choice");
    RUN(choices);
    RUN(names);
    return fx_finish();
}
