/*
 * Tests for sync/hq/hq_verify.c on a real HQ store: HQ's set is the
 * node's records with data and, for a request of format 2, its tombstones
 * hashed as gone (format 1, an older node's, leaves them out; aggregate
 * answers and other nodes' records are always left out), hashed as the
 * node hashes its projections, so a node set built
 * from the same projections agrees in one request; the set is kept for
 * a check's next requests and built again after an apply to the node
 * (its applied segments changed) or once it is a minute old; a bad
 * request is refused naming the member before anything is read.
 */
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "hq_store.h"
#include "hq_verify.h"
#include "projection_hash.h"
#include "range_digest.h"
#include "testlib.h"

static char path[512];
static const unsigned char tok1[32] = {1}, tok2[32] = {2}, key[32] = {9};

static void put(struct hq_store *st, const char *node, const char *id, int64_t v, const char *op,
                const char *json)
{
    enum hq_record_result res;
    struct op_error err;
    CHECK_EQ(st->ops->record_apply(st->impl, node, "contact", id, v, op, json,
                                   json ? strlen(json) : 0, 1, &res, &err),
             0);
}

/* The node's set: the same texts, hashed as the node hashes projections. */
static struct range_set *node_set(const char *const *texts, size_t n)
{
    struct range_set *s = NULL;
    CHECK_EQ(range_set_new(&s), 0);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loads(texts[i], 0, NULL);
        unsigned char h[PROJECTION_HASH_BYTES];
        const char *id = json_string_value(json_object_get(j, "id"));
        enum projection_state state =
            json_is_true(json_object_get(j, "deleted")) ? PROJECTION_DELETED : PROJECTION_LIVE;
        CHECK_EQ(projection_hash("contact", state, id, j, h), 0);
        CHECK_EQ(
            range_set_add(s, "contact", id, json_integer_value(json_object_get(j, "version")), h),
            0);
        json_decref(j);
    }
    range_set_seal(s);
    return s;
}

/* One request of the node's root, in format 1 (an older node's) when v1;
 * returns HQ's answer (malloc'd). */
static char *ask_root_as(struct hq_store *st, const struct hq_node *n, int64_t now,
                         const struct range_set *mine, int v1, int *rc)
{
    struct range_walk *w = NULL;
    CHECK_EQ(range_walk_new(mine, &w), 0);
    char *body = NULL, *answer = NULL;
    size_t len = 0;
    CHECK_EQ(range_walk_request(w, &body, &len), 0);
    char *f = strstr(body, RANGE_FORMAT);
    CHECK(f != NULL);
    if (v1 && f)
        f[strlen(RANGE_FORMAT) - 1] = '1';
    struct op_error err;
    *rc = hq_verify_answer(st, n, now, body, len, &answer, &err);
    free(body);
    range_walk_free(w);
    return answer;
}

static char *ask_root(struct hq_store *st, const struct hq_node *n, int64_t now,
                      const struct range_set *mine, int *rc)
{
    return ask_root_as(st, n, now, mine, 0, rc);
}

/* A node set with the tombstone of contact `gone` the node keeps. */
static struct range_set *node_set_gone(const char *const *texts, size_t n, const char *gone)
{
    struct range_set *s = NULL;
    CHECK_EQ(range_set_new(&s), 0);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loads(texts[i], 0, NULL);
        unsigned char h[PROJECTION_HASH_BYTES];
        const char *id = json_string_value(json_object_get(j, "id"));
        enum projection_state state =
            json_is_true(json_object_get(j, "deleted")) ? PROJECTION_DELETED : PROJECTION_LIVE;
        CHECK_EQ(projection_hash("contact", state, id, j, h), 0);
        CHECK_EQ(
            range_set_add(s, "contact", id, json_integer_value(json_object_get(j, "version")), h),
            0);
        json_decref(j);
    }
    unsigned char h[PROJECTION_HASH_BYTES];
    CHECK_EQ(projection_hash("contact", PROJECTION_GONE, gone, NULL, h), 0);
    CHECK_EQ(range_set_add(s, "contact", gone, 4, h), 0);
    range_set_seal(s);
    return s;
}

static const char *AGG = "{\"aggregate\":\"by_country\"}";
static const char *A = "{\"id\":\"a\",\"version\":2,\"given_name\":\"h:00\",\"deleted\":false}";
static const char *B = "{\"id\":\"b\",\"version\":1,\"given_name\":\"h:01\",\"deleted\":true}";
static const char *C = "{\"id\":\"c\",\"version\":1,\"given_name\":\"h:02\",\"deleted\":false}";

static void test_set_and_kept(void)
{
    struct hq_store st = {0};
    struct op_error err;
    CHECK_EQ(hq_store_sqlite_open(path, &st, &err), 0);
    CHECK_EQ(st.ops->node_add(st.impl, "n1", "KE", tok1, key, 1, &err), 0);
    CHECK_EQ(st.ops->node_add(st.impl, "n2", "KE", tok2, key, 1, &err), 0);
    put(&st, "n1", "a", 2, "upsert", A);
    put(&st, "n1", "b", 1, "delete", B);
    put(&st, "n1", "gone", 3, "upsert", C);
    put(&st, "n1", "gone", 4, "erase", NULL); /* a tombstone: compared as gone in format 2 */
    put(&st, "n2", "c", 1, "upsert", C);      /* another node's */
    enum hq_record_result res;                /* an aggregate answer: not a projection */
    CHECK_EQ(st.ops->record_apply(st.impl, "n1", "aggregate", "by_country", 5, "upsert", AGG,
                                  strlen(AGG), 1, &res, &err),
             0);
    struct range_set *hq = NULL;
    CHECK_EQ(hq_verify_set(&st, "n1", 0, &hq, &err), 0);
    CHECK_EQ(range_set_count(hq), 2);
    range_set_free(hq);
    CHECK_EQ(hq_verify_set(&st, "n1", 1, &hq, &err), 0);
    CHECK_EQ(range_set_count(hq), 3);
    range_set_free(hq);

    const char *texts[] = {A, B};
    struct range_set *old = node_set(texts, 2);
    struct range_set *mine = node_set_gone(texts, 2, "gone");
    struct hq_node n;
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, &err), 0);
    int rc = 0;
    /* an older node leaves tombstones out, and HQ does too for it */
    char *ans = ask_root_as(&st, &n, 900, old, 1, &rc);
    CHECK_EQ(rc, 0);
    CHECK_STR(ans, "{\"differ\":[]}");
    free(ans);
    /* format 2 without the tombstone: HQ lists it, hashed as gone */
    ans = ask_root(&st, &n, 910, old, &rc);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(ans, "[\"contact\",\"gone\",4,\"");
    free(ans);
    range_set_free(old);
    /* HQ's tombstone lost (the row deleted): found */
    sqlite3 *db = NULL;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db, "DELETE FROM records WHERE id = 'gone'", NULL, NULL, NULL),
             SQLITE_OK);
    sqlite3_close(db);
    n.segments_applied++;
    ans = ask_root(&st, &n, 920, mine, &rc);
    CHECK_CONTAINS(ans, "\"differ\":[[\"\",2,[");
    free(ans);
    /* the tombstone again: agreement, the node's tombstone counted; a
     * stale upsert arriving after the repair (an older version, or the
     * erased one's own) brings no data back */
    put(&st, "n1", "gone", 4, "erase", NULL);
    put(&st, "n1", "gone", 3, "upsert", C);
    put(&st, "n1", "gone", 4, "upsert", C);
    CHECK_EQ(hq_verify_set(&st, "n1", 0, &hq, &err), 0);
    CHECK_EQ(range_set_count(hq), 2);
    range_set_free(hq);
    n.segments_applied++;
    ans = ask_root(&st, &n, 1000, mine, &rc);
    CHECK_EQ(rc, 0);
    CHECK_STR(ans, "{\"differ\":[]}");
    free(ans);

    /* HQ changes without an applied segment: the kept set answers */
    put(&st, "n1", "a", 3, "upsert", C);
    ans = ask_root(&st, &n, 2000, mine, &rc);
    CHECK_STR(ans, "{\"differ\":[]}");
    free(ans);
    /* a minute later it is built again and sees the change */
    ans = ask_root(&st, &n, 1000 + HQ_VERIFY_CACHE_MS + 1, mine, &rc);
    CHECK_CONTAINS(ans, "\"differ\":[[\"\",3,[");
    free(ans);
    /* so does an apply to the node (its applied segments changed) */
    put(&st, "n1", "a", 4, "upsert", A);
    n.segments_applied++;
    ans = ask_root(&st, &n, 1000 + HQ_VERIFY_CACHE_MS + 2, mine, &rc);
    CHECK_STR(ans, "{\"differ\":[]}");
    free(ans);
    range_set_free(mine);
    hq_verify_forget();
    hq_store_close(&st);
}

static void test_bad_request(void)
{
    struct hq_store st = {0};
    struct op_error err;
    CHECK_EQ(hq_store_sqlite_open(path, &st, &err), 0);
    struct hq_node n;
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, &err), 0);
    char *ans = (char *)"x";
    const char *body = "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"\",\"zz\",1]]}";
    op_error_clear(&err);
    CHECK_EQ(hq_verify_answer(&st, &n, 1, body, strlen(body), &ans, &err), -EINVAL);
    CHECK(ans == NULL);
    CHECK_STR(err.field, "ranges[0]");
    CHECK_CONTAINS(err.msg, "digest");
    CHECK_EQ(hq_verify_answer(&st, &n, 1, NULL, 0, &ans, &err), -EINVAL);
    CHECK_STR(err.field, "body");
    hq_verify_forget();
    hq_store_close(&st);
}

int main(void)
{
    fx_tmpdir("hq-verify");
    fx_path(path, sizeof path, "hq.db");
    RUN(test_set_and_kept);
    RUN(test_bad_request);
    return fx_finish();
}
