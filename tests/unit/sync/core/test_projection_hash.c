/*
 * Tests for sync/core/projection_hash.c: three known vectors (a live
 * contact, a deleted one, a gone one; computed with Python's hashlib over
 * the text the spec lays out), the version left out, member order not
 * mattering, every visible change changing the hash, bad input refused;
 * and the field digests naming exactly the members that differ.
 */
#include "projection_hash.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

static void hex(const unsigned char *b, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void check_vector(const char *entity, enum projection_state s, const char *id,
                         const char *json, const char *want)
{
    json_t *r = json ? json_loads(json, 0, NULL) : NULL;
    unsigned char h[PROJECTION_HASH_BYTES];
    char got[65];
    CHECK_EQ(projection_hash(entity, s, id, r, h), 0);
    hex(h, got);
    CHECK_STR(got, want);
    json_decref(r);
}

static void test_known_vectors(void)
{
    check_vector("contact", PROJECTION_LIVE, NULL, "{\"id\":\"a\",\"version\":3,\"name\":\"X\"}",
                 "2e7300707f07d06ea23e041eca38ed1a28457a74650e02c6bc0700c3de9f2be7");
    check_vector("contact", PROJECTION_DELETED, NULL,
                 "{\"id\":\"a\",\"version\":4,\"name\":\"X\",\"deleted\":true}",
                 "b6b2601e44d97e1707ac81754da7bb885924ab1de5e3903a81c45c29b3349f44");
    check_vector("contact", PROJECTION_GONE, "a", NULL,
                 "e6e53007414807880b9eea0d752826b981ffd6ed2b185d21b892f18f09c1592c");
    /* GONE from a tombstone record: the id alone counts */
    check_vector("contact", PROJECTION_GONE, NULL, "{\"id\":\"a\",\"version\":9}",
                 "e6e53007414807880b9eea0d752826b981ffd6ed2b185d21b892f18f09c1592c");
}

static void hash_of(const char *entity, enum projection_state s, const char *json,
                    unsigned char out[PROJECTION_HASH_BYTES])
{
    json_t *r = json_loads(json, 0, NULL);
    CHECK(r != NULL);
    CHECK_EQ(projection_hash(entity, s, NULL, r, out), 0);
    json_decref(r);
}

static void test_what_counts(void)
{
    unsigned char a[32], b[32];
    /* version, updated_at and member order do not count */
    hash_of("contact", PROJECTION_LIVE,
            "{\"id\":\"a\",\"version\":3,\"name\":\"X\",\"city\":\"Y\"}", a);
    hash_of("contact", PROJECTION_LIVE,
            "{\"city\":\"Y\",\"name\":\"X\",\"version\":7,\"id\":\"a\"}", b);
    CHECK(!memcmp(a, b, 32));
    hash_of(
        "contact", PROJECTION_LIVE,
        "{\"id\":\"a\",\"version\":8,\"updated_at\":\"2026-12-06T10:00:00.000Z\",\"name\":\"X\","
        "\"city\":\"Y\"}",
        b);
    CHECK(!memcmp(a, b, 32));
    /* created_at counts: it is set once */
    hash_of("contact", PROJECTION_LIVE,
            "{\"id\":\"a\",\"created_at\":\"2026-12-06T10:00:00.000Z\",\"name\":\"X\","
            "\"city\":\"Y\"}",
            b);
    CHECK(memcmp(a, b, 32) != 0);
    /* a value, a field gone, the entity, the state: each counts */
    hash_of("contact", PROJECTION_LIVE,
            "{\"id\":\"a\",\"version\":3,\"name\":\"X\",\"city\":\"Z\"}", b);
    CHECK(memcmp(a, b, 32) != 0);
    hash_of("contact", PROJECTION_LIVE, "{\"id\":\"a\",\"version\":3,\"name\":\"X\"}", b);
    CHECK(memcmp(a, b, 32) != 0);
    hash_of("organization", PROJECTION_LIVE,
            "{\"id\":\"a\",\"version\":3,\"name\":\"X\",\"city\":\"Y\"}", b);
    CHECK(memcmp(a, b, 32) != 0);
    hash_of("contact", PROJECTION_DELETED,
            "{\"id\":\"a\",\"version\":3,\"name\":\"X\",\"city\":\"Y\"}", b);
    CHECK(memcmp(a, b, 32) != 0);
    /* the record is not changed by hashing */
    json_t *r = json_loads("{\"id\":\"a\",\"version\":3}", 0, NULL);
    CHECK_EQ(projection_hash("contact", PROJECTION_LIVE, NULL, r, a), 0);
    CHECK_EQ(json_integer_value(json_object_get(r, "version")), 3);
    /* bad input */
    CHECK_EQ(projection_hash(NULL, PROJECTION_LIVE, NULL, r, a), -EINVAL);
    CHECK_EQ(projection_hash("contact", PROJECTION_LIVE, "a", NULL, a), -EINVAL);
    CHECK_EQ(projection_hash("contact", PROJECTION_GONE, NULL, NULL, a), -EINVAL);
    CHECK_EQ(projection_hash("contact", (enum projection_state)7, "a", r, a), -EINVAL);
    json_decref(r);
    CHECK_STR(projection_state_name(PROJECTION_DELETED), "deleted");
    CHECK_STR(projection_state_name((enum projection_state)9), "");
}

static void test_field_digests(void)
{
    json_t *a = json_loads(
        "{\"id\":\"a\",\"version\":3,\"name\":\"X\",\"custom\":{\"k\":1,\"j\":2}}", 0, NULL);
    json_t *b = json_loads(
        "{\"id\":\"b\",\"version\":4,\"name\":\"Y\",\"custom\":{\"j\":2,\"k\":1}}", 0, NULL);
    json_t *da = projection_field_digests(a), *db = projection_field_digests(b);
    CHECK(da && db);
    CHECK_EQ(json_object_size(da), 2); /* id and version are not fields */
    CHECK(json_object_get(da, "id") == NULL);
    CHECK_EQ(strlen(json_string_value(json_object_get(da, "name"))), 16);
    /* the first 8 bytes of SHA-256("name" NUL "\"X\""), lower-case hex:
     * nodes keep these digests, so their form never changes */
    CHECK_STR(json_string_value(json_object_get(da, "name")), "12487ffe3d569114");
    CHECK_STR(json_string_value(json_object_get(da, "custom")), "64b902dac357cb09");
    CHECK(!json_equal(json_object_get(da, "name"), json_object_get(db, "name")));
    CHECK(json_equal(json_object_get(da, "custom"), json_object_get(db, "custom")));
    /* a name moved into another member's value is another digest */
    json_t *c = json_loads("{\"nam\":\"eX\"}", 0, NULL), *dc = projection_field_digests(c);
    json_t *d = json_loads("{\"name\":\"X\"}", 0, NULL), *dd = projection_field_digests(d);
    CHECK(!json_equal(json_object_get(dc, "nam"), json_object_get(dd, "name")));
    json_t *arr = json_array();
    CHECK(projection_field_digests(arr) == NULL);
    json_decref(arr);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
    json_decref(da);
    json_decref(db);
    json_decref(dc);
    json_decref(dd);
}

int main(void)
{
    RUN(test_known_vectors);
    RUN(test_what_counts);
    RUN(test_field_digests);
    return tl_report();
}
