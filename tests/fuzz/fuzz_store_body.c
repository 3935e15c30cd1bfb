/*
 * libFuzzer target for JSON record bodies on their way into the store, as
 * the API takes them (api_records_create and _update): the body is read
 * by api_request_json (appliance/api/api_request.c), then given to
 * store_create, or to store_update of an existing record, on a node
 * database under a region policy (appliance/store/store.c with
 * sync/core/entity.c's normalization and sync/core/policy.c's custom
 * field checks). Each input runs inside store_begin ... store_rollback,
 * so every input meets the same database.
 *
 * Byte 0 of the input: bits 0-2 pick the entity (contact, organization,
 * contact_organization, deal, activity, task, note, consent); bits 3-4
 * the policy (none, EU-DE, IN with a forbidden custom field, BR); bit 5
 * updates the entity's seeded record instead of creating one; bit 6
 * skips the duplicate check. The rest is the body. Seeded records have
 * fixed ids (018f0000-0000-7000-8000-00000000000N: 1 contact, 2
 * organization, 3 deal, 4 user, 5 contact_organization, 6 activity,
 * 7 task, 8 note, 9 consent), so bodies can refer to them.
 *
 * Beyond "no crash, no leak, no overflow" it checks the promises: a body
 * that is not a JSON object is answered 400 (or 415) and never reaches
 * the store; a refusal has a documented code, a message, and for
 * -EINVAL the field, for a duplicate the existing id, and no record out;
 * an accepted record has an id and the next version, reads back equal
 * with store_get, carries only the entity's fields (no internal ones),
 * and each stored value passes entity_normalize_value unchanged.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_store_body -max_len=20000 tests/fuzz/corpus/store_body
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_request.h"
#include "db.h"
#include "entity.h"
#include "fuzz_util.h"
#include "policy.h"
#include "store.h"

#define SEED_ID(n) "018f0000-0000-7000-8000-00000000000" #n

static struct store *st;
static struct policy *policies[4]; /* [0] stays NULL: no policy */
static const struct entity_def *const entities[] = {
    &entity_contact, &entity_organization, &entity_contact_organization,
    &entity_deal,    &entity_activity,     &entity_task,
    &entity_note,    &entity_consent};
static const char *const seed_ids[] = {SEED_ID(1), SEED_ID(2), SEED_ID(5), SEED_ID(3),
                                       SEED_ID(6), SEED_ID(7), SEED_ID(8), SEED_ID(9)};

static uint64_t fixed_clock(void *ctx)
{
    return 1795000000000;
}

static void seed(const struct entity_def *e, const char *json)
{
    json_error_t je;
    json_t *in = json_loads(json, 0, &je);
    struct op_error err;
    op_error_clear(&err);
    if (!in ||
        store_create(st, e, in, STORE_SKIP_DUP_CHECK | STORE_ALLOW_INTERNAL, NULL, &err) < 0) {
        fprintf(stderr, "cannot seed %s: %s\n", e->name, in ? err.msg : je.text);
        abort();
    }
    json_decref(in);
}

static struct policy *load_policy(const char *region)
{
    char path[1024];
    struct policy *p = NULL;
    struct op_error err;
    op_error_clear(&err);
    if (policy_find_file(region, path, sizeof path, &err) < 0 ||
        policy_load_file(path, &p, &err) < 0) {
        fprintf(stderr, "cannot load the %s policy: %s\n", region, err.msg);
        abort();
    }
    return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[400];
    snprintf(path, sizeof path, "%s/node.db", fuzz_tmpdir());
    struct op_error err;
    op_error_clear(&err);
    if (store_open(path, DB_OPEN_CREATE, &st, &err) < 0 || store_init_node(st, "EU-DE", &err) < 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        abort();
    }
    store_set_clock(st, fixed_clock, NULL);
    seed(&entity_contact,
         "{\"id\":\"" SEED_ID(1) "\",\"given_name\":\"Ada\","
                                 "\"family_name\":\"Lovelace\",\"email\":\"ada@example.org\","
                                 "\"phone\":\"+49 30 1234567\",\"country\":\"DE\"}");
    seed(&entity_organization, "{\"id\":\"" SEED_ID(2) "\",\"name\":\"Analytical Engines\"}");
    seed(&entity_deal, "{\"id\":\"" SEED_ID(3) "\",\"title\":\"Engine\","
                                               "\"organization_id\":\"" SEED_ID(2) "\"}");
    seed(&entity_user, "{\"id\":\"" SEED_ID(4) "\",\"name\":\"field1\",\"role\":\"field\","
                                               "\"password_hash\":\"x\"}");
    seed(&entity_contact_organization, "{\"id\":\"" SEED_ID(5) "\",\"contact_id\":\"" SEED_ID(
                                           1) "\",\"organization_id\":\"" SEED_ID(2) "\"}");
    seed(&entity_activity, "{\"id\":\"" SEED_ID(6) "\",\"channel\":\"email\","
                                                   "\"occurred_at\":\"2026-11-18T10:00:00Z\"}");
    seed(&entity_task, "{\"id\":\"" SEED_ID(7) "\",\"title\":\"Call back\"}");
    seed(&entity_note, "{\"id\":\"" SEED_ID(8) "\",\"body\":\"met at the fair\"}");
    seed(&entity_consent, "{\"id\":\"" SEED_ID(9) "\",\"contact_id\":\"" SEED_ID(
                              1) "\",\"channel\":\"email\",\"purpose\":\"newsletter\","
                                 "\"status\":\"granted\",\"method\":\"single_opt_in\","
                                 "\"requested_at\":\"2026-11-18T10:00:00Z\"}");
    policies[1] = load_policy("EU-DE");
    policies[2] = load_policy("IN");
    policies[3] = load_policy("BR");
    return 0;
}

static int common_column(const char *k)
{
    static const char *const cols[] = {"id", "version", "created_at", "updated_at", "deleted"};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (!strcmp(k, cols[i]))
            return 1;
    return 0;
}

static void check_record(const struct entity_def *e, json_t *rec, int64_t version)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    must(id && strlen(id) == 36, "a stored record has an id");
    must(json_integer_value(json_object_get(rec, "version")) == version,
         "a stored record has the next version");
    const char *k;
    json_t *v;
    json_object_foreach(rec, k, v)
    {
        if (common_column(k))
            continue;
        const struct field_def *f = entity_field(e, k);
        must(f != NULL, "a stored record carries only its entity's fields");
        must(!(f->flags & FIELD_INTERNAL), "a stored record shows no internal field");
        if (json_is_null(v))
            continue;
        json_t *n = NULL;
        struct op_error err;
        op_error_clear(&err);
        int rc = entity_normalize_value(f, v, &n, &err);
        if (rc < 0 || !json_equal(n, v)) {
            char *s = json_dumps(v, JSON_ENCODE_ANY);
            fprintf(stderr, "%s.%s = %s: %s\n", e->name, k, s ? s : "?", rc < 0 ? err.msg : "");
            free(s);
        }
        must(rc == 0, "a stored value passes its field's check");
        must(json_equal(n, v), "a stored value is already normalized");
        json_decref(n);
    }
    json_t *back = NULL;
    struct op_error err;
    op_error_clear(&err);
    must(store_get(st, e, id, 0, &back, &err) == 0, "a stored record reads back");
    must(json_equal(back, rec), "a stored record reads back equal");
    json_decref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 200000)
        return 0;
    unsigned ei = data[0] & 7;
    const struct entity_def *e = entities[ei];
    const struct policy *p = policies[(data[0] >> 3) & 3];
    int update = (data[0] >> 5) & 1;
    unsigned flags = (data[0] >> 6) & 1 ? STORE_SKIP_DUP_CHECK : 0;

    struct api_call c;
    memset(&c, 0, sizeof c);
    struct api_request_view view = {
        .method = update ? "PATCH" : "POST",
        .path = "/api/v1/records",
        .remote = "192.0.2.1:4000",
        .query = "",
        .body = (const char *)data + 1,
        .body_len = size - 1,
        .content_type = "application/json",
    };
    must(api_request_init(&c.req, &view) == 0, "request copied");
    json_t *body = api_request_json(&c.req, &c.resp);
    if (!body) {
        must(c.resp.status == 400 || c.resp.status == 415, "a body that is no object is 400");
        api_call_done(&c);
        return 0;
    }
    must(c.resp.status == 0, "an object body is not answered yet");

    store_set_policy(st, p);
    struct op_error err;
    op_error_clear(&err);
    must(store_begin(st, &err) == 0, "store_begin");
    json_t *rec = NULL;
    int rc = update ? store_update(st, e, seed_ids[ei], 1, body, flags, &rec, &err)
                    : store_create(st, e, body, flags, &rec, &err);
    if (rc < 0) {
        must(rec == NULL, "a refusal gives no record");
        must(err.msg[0] != '\0', "a refusal has a message");
        int documented = rc == -EINVAL || rc == -EEXIST || rc == STORE_EDUP || rc == -ENOENT ||
                         rc == STORE_EVERSION;
        if (!documented)
            fprintf(stderr, "refused with %d: %s (field %s)\n", rc, err.msg, err.field);
        must(documented, "a refusal has a documented code");
        must(rc != -EEXIST || err.field[0], "-EEXIST names the field");
        /* store.h: -EINVAL names the field (a key "" is named as ""). */
        if (rc == -EINVAL && !err.field[0] && !json_object_get(body, "")) {
            fprintf(stderr, "-EINVAL without a field: %s\n", err.msg);
            abort();
        }
        must(rc != STORE_EDUP || strlen(err.ref) == 36, "a duplicate names the existing id");
    } else {
        must(rc == 0, "success is 0");
        check_record(e, rec, update ? 2 : 1);
        json_decref(rec);
    }
    store_rollback(st);
    store_set_policy(st, NULL);
    json_decref(body);
    api_call_done(&c);
    return 0;
}
