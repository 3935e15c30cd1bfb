/*
 * Tests for sync/core/projection_hash.c: three known vectors (a live
 * contact, a deleted one, a gone one), each the SHA-256 of the literal text
 * the spec in projection_hash.h describes, so the node and HQ (and any
 * other copy of the module) hash the same bytes; the version and key order
 * do not change the hash, every other member does; bad input is refused.
 */
#include "projection_hash.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

static void hex(const unsigned char *h, char out[65])
{
    for (int i = 0; i < PROJECTION_HASH_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void check_vector(const char *entity, enum projection_state st, const char *id,
                         const char *json, const char *want)
{
    json_t *rec = json ? json_loads(json, 0, NULL) : NULL;
    unsigned char h[PROJECTION_HASH_BYTES];
    char got[65];
    CHECK_EQ(projection_hash(entity, st, id, rec, h), 0);
    hex(h, got);
    CHECK_STR(got, want);
    json_decref(rec);
}

/* sha256("contact\nlive\n{\"id\":\"a\",\"name\":\"X\"}") and its kin,
 * computed outside the project (python3 hashlib). */
static void test_known_vectors(void)
{
    check_vector("contact", PROJECTION_LIVE, "a", "{\"id\":\"a\",\"version\":3,\"name\":\"X\"}",
                 "2e7300707f07d06ea23e041eca38ed1a28457a74650e02c6bc0700c3de9f2be7");
    check_vector("contact", PROJECTION_DELETED, "a",
                 "{\"name\":\"X\",\"version\":4,\"id\":\"a\",\"deleted\":true}",
                 "b6b2601e44d97e1707ac81754da7bb885924ab1de5e3903a81c45c29b3349f44");
    check_vector("contact", PROJECTION_GONE, "a", NULL,
                 "e6e53007414807880b9eea0d752826b981ffd6ed2b185d21b892f18f09c1592c");
    /* a tombstone's record gives its id; its version does not count */
    check_vector("contact", PROJECTION_GONE, NULL, "{\"id\":\"a\",\"version\":9}",
                 "e6e53007414807880b9eea0d752826b981ffd6ed2b185d21b892f18f09c1592c");
}

static void test_what_counts(void)
{
    json_t *a = json_loads("{\"id\":\"a\",\"version\":3,\"name\":\"X\"}", 0, NULL);
    json_t *b = json_loads("{\"name\":\"X\",\"id\":\"a\",\"version\":7}", 0, NULL);
    json_t *c = json_loads("{\"id\":\"a\",\"version\":3,\"name\":\"Y\"}", 0, NULL);
    unsigned char ha[32], hb[32], hc[32], hd[32], he[32];
    CHECK_EQ(projection_hash("contact", PROJECTION_LIVE, "a", a, ha), 0);
    CHECK_EQ(projection_hash("contact", PROJECTION_LIVE, "a", b, hb), 0);
    CHECK_EQ(projection_hash("contact", PROJECTION_LIVE, "a", c, hc), 0);
    CHECK_EQ(projection_hash("organization", PROJECTION_LIVE, "a", a, hd), 0);
    CHECK_EQ(projection_hash("contact", PROJECTION_DELETED, "a", a, he), 0);
    CHECK(memcmp(ha, hb, 32) == 0); /* version and key order do not count */
    CHECK(memcmp(ha, hc, 32) != 0);
    CHECK(memcmp(ha, hd, 32) != 0);
    CHECK(memcmp(ha, he, 32) != 0);
    /* the record is not modified: its version is still there */
    CHECK_EQ(json_integer_value(json_object_get(a, "version")), 3);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_refusals(void)
{
    unsigned char h[32];
    json_t *arr = json_array();
    CHECK_EQ(projection_hash("contact", PROJECTION_LIVE, "a", NULL, h), -EINVAL);
    CHECK_EQ(projection_hash("contact", PROJECTION_LIVE, "a", arr, h), -EINVAL);
    CHECK_EQ(projection_hash(NULL, PROJECTION_GONE, "a", NULL, h), -EINVAL);
    CHECK_EQ(projection_hash("contact", PROJECTION_GONE, NULL, NULL, h), -EINVAL);
    CHECK_EQ(projection_hash("contact", (enum projection_state)7, "a", NULL, h), -EINVAL);
    json_decref(arr);
}

int main(void)
{
    RUN(test_known_vectors);
    RUN(test_what_counts);
    RUN(test_refusals);
    return tl_report();
}
