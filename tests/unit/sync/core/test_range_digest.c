/*
 * Tests for sync/core/range_digest.c: buckets and range boundaries (every
 * record in exactly one child of its range, the top and bottom edges of
 * the bucket space), digests independent of insertion order and changed
 * by any entry, the whole exchange between a node set and an HQ set
 * (agreement in one small request; each kind of drift found exactly, and
 * nothing else), HQ's refusals of malformed requests naming the member,
 * and the node's refusal of an answer to a question it did not ask.
 */
#include "range_digest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static void hash_of(const char *text, unsigned char h[PROJECTION_HASH_BYTES])
{
    json_t *r = json_pack("{ss}", "name", text);
    (void)projection_hash("contact", PROJECTION_LIVE, "x", r, h);
    json_decref(r);
}

/* n contacts "c<i>" with hash of "v<i>", version 1. */
static struct range_set *make(int n, int reverse)
{
    struct range_set *s = NULL;
    CHECK_EQ(range_set_new(&s), 0);
    for (int k = 0; k < n; k++) {
        int i = reverse ? n - 1 - k : k;
        char id[32], v[32];
        unsigned char h[32];
        snprintf(id, sizeof id, "c%d", i);
        snprintf(v, sizeof v, "v%d", i);
        hash_of(v, h);
        CHECK_EQ(range_set_add(s, "contact", id, 1, h), 0);
    }
    range_set_seal(s);
    return s;
}

static int count_cb(void *ctx, const struct range_entry *e)
{
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

static void test_boundaries(void)
{
    struct range_set *s = make(5000, 0);
    CHECK_EQ(range_set_count(s), 5000);
    unsigned char d[RANGE_DIGEST_BYTES];
    uint64_t total = 0, sum = 0;
    CHECK_EQ(range_digest(s, "", d, &total), 0);
    CHECK_EQ(total, 5000);
    /* the children of a range partition it, at every depth tried */
    const char *parents[] = {"", "7", "a3", "f", "0"};
    for (size_t p = 0; p < sizeof parents / sizeof *parents; p++) {
        uint64_t whole = 0;
        CHECK_EQ(range_digest(s, parents[p], d, &whole), 0);
        sum = 0;
        for (int c = 0; c < 16; c++) {
            char child[16];
            uint64_t n = 0;
            snprintf(child, sizeof child, "%s%x", parents[p], (unsigned)c);
            CHECK_EQ(range_digest(s, child, d, &n), 0);
            size_t seen = 0;
            CHECK_EQ(range_each(s, child, count_cb, &seen), 0);
            CHECK_EQ(seen, n);
            sum += n;
        }
        CHECK_EQ(sum, whole);
    }
    /* each record is found in the ranges its bucket names, to the deepest */
    uint64_t b = range_bucket("contact", "c42");
    char hexb[17], pre[RANGE_DEPTH_MAX + 1];
    snprintf(hexb, sizeof hexb, "%016llx", (unsigned long long)b);
    for (int depth = 0; depth <= RANGE_DEPTH_MAX; depth++) {
        memcpy(pre, hexb, (size_t)depth);
        pre[depth] = '\0';
        uint64_t n = 0;
        CHECK_EQ(range_digest(s, pre, d, &n), 0);
        CHECK(n >= 1);
    }
    /* the edges of the bucket space: all-f and all-0 ranges are valid */
    uint64_t n = 99;
    CHECK_EQ(range_digest(s, "ffffffff", d, &n), 0);
    CHECK(n <= 1);
    CHECK_EQ(range_digest(s, "00000000", d, &n), 0);
    CHECK(n <= 1);
    /* names that are not ranges */
    CHECK_EQ(range_digest(s, "fffffffff", d, &n), -EINVAL);
    CHECK_EQ(range_digest(s, "A", d, &n), -EINVAL);
    CHECK_EQ(range_digest(s, "g", d, &n), -EINVAL);
    CHECK_EQ(range_prefix_valid(NULL), 0);
    CHECK_EQ(range_prefix_valid(""), 1);
    range_set_free(s);
}

static void test_digest_order_and_change(void)
{
    struct range_set *a = make(300, 0), *b = make(300, 1);
    unsigned char da[16], db[16];
    uint64_t na = 0, nb = 0;
    CHECK_EQ(range_digest(a, "", da, &na), 0);
    CHECK_EQ(range_digest(b, "", db, &nb), 0);
    CHECK(memcmp(da, db, 16) == 0);
    /* one entry's hash changed: the root and exactly one child differ */
    struct range_set *c = NULL;
    CHECK_EQ(range_set_new(&c), 0);
    for (int i = 0; i < 300; i++) {
        char id[32], v[32];
        unsigned char h[32];
        snprintf(id, sizeof id, "c%d", i);
        snprintf(v, sizeof v, i == 17 ? "changed" : "v%d", i);
        hash_of(v, h);
        CHECK_EQ(range_set_add(c, "contact", id, 1, h), 0);
    }
    /* a duplicate add is dropped at seal */
    unsigned char h0[32];
    hash_of("other", h0);
    CHECK_EQ(range_set_add(c, "contact", "c3", 1, h0), 0);
    range_set_seal(c);
    CHECK_EQ(range_set_count(c), 300);
    unsigned char dc[16];
    CHECK_EQ(range_digest(c, "", dc, &nb), 0);
    CHECK(memcmp(da, dc, 16) != 0);
    int differ = 0;
    for (int k = 0; k < 16; k++) {
        char p[2];
        snprintf(p, sizeof p, "%x", (unsigned)k);
        CHECK_EQ(range_digest(a, p, da, &na), 0);
        CHECK_EQ(range_digest(c, p, dc, &nb), 0);
        differ += memcmp(da, dc, 16) != 0;
    }
    CHECK_EQ(differ, 1);
    CHECK_EQ(range_set_add(c, "contact", "bad\nid", 1, h0), -EINVAL);
    CHECK_EQ(range_set_add(c, "", "x", 1, h0), -EINVAL);
    range_set_free(a);
    range_set_free(b);
    range_set_free(c);
}

struct found {
    char text[4096];
    int n;
};

static int drift_cb(void *ctx, const struct range_drift *d)
{
    struct found *f = ctx;
    size_t l = strlen(f->text);
    snprintf(f->text + l, sizeof f->text - l, "%s %s %s %lld %lld;", range_drift_name(d->kind),
             d->entity, d->id, (long long)d->node_version, (long long)d->hq_version);
    f->n++;
    return 0;
}

/* Runs the whole exchange; returns the walk's stats and drift text. */
static void exchange(const struct range_set *node, const struct range_set *hq,
                     struct range_walk_stats *st, struct found *f)
{
    struct range_walk *w = NULL;
    CHECK_EQ(range_walk_new(node, &w), 0);
    char *body = NULL;
    size_t len = 0;
    int rounds = 0;
    while (range_walk_request(w, &body, &len) == 0) {
        char *ans = NULL;
        struct op_error err;
        op_error_clear(&err);
        CHECK_EQ(range_answer(hq, body, len, &ans, &err), 0);
        CHECK_EQ(range_walk_answer(w, ans, strlen(ans), &err), 0);
        free(ans);
        free(body);
        CHECK(++rounds < 64);
        if (rounds >= 64)
            break;
    }
    memset(f, 0, sizeof *f);
    range_walk_each_drift(w, drift_cb, f);
    range_walk_stats(w, st);
    range_walk_free(w);
}

static void test_agreement(void)
{
    struct range_set *node = make(20000, 0), *hq = make(20000, 1);
    struct range_walk_stats st;
    struct found f;
    exchange(node, hq, &st, &f);
    CHECK_EQ(f.n, 0);
    CHECK_EQ(st.requests, 1);
    CHECK_EQ(st.ranges, 1);
    CHECK_EQ(st.compared, 20000);
    CHECK_EQ(st.hq_records, 20000);
    CHECK(st.bytes_out + st.bytes_in < 200);
    range_set_free(node);
    range_set_free(hq);
}

static void add_contact(struct range_set *s, const char *id, int64_t version, const char *v)
{
    unsigned char h[32];
    hash_of(v, h);
    CHECK_EQ(range_set_add(s, "contact", id, version, h), 0);
}

static void test_each_kind_of_drift(void)
{
    struct range_set *node = NULL, *hq = NULL;
    CHECK_EQ(range_set_new(&node), 0);
    CHECK_EQ(range_set_new(&hq), 0);
    for (int i = 0; i < 20000; i++) {
        char id[32], v[32];
        snprintf(id, sizeof id, "c%d", i);
        snprintf(v, sizeof v, "v%d", i);
        if (i != 11) /* missing at HQ */
            add_contact(hq, id, 2, i == 22 ? "old" : i == 33 ? "newer" : v);
        add_contact(node, id, 2 + (i == 22) - (i == 33), v);
    }
    add_contact(hq, "gone-at-node", 5, "x");
    range_set_seal(node);
    range_set_seal(hq);
    struct range_walk_stats st;
    struct found f;
    exchange(node, hq, &st, &f);
    CHECK_EQ(f.n, 4);
    CHECK_CONTAINS(f.text, "missing contact c11 2 -1;");
    CHECK_CONTAINS(f.text, "differs contact c22 3 2;");
    CHECK_CONTAINS(f.text, "hq-newer contact c33 1 2;");
    CHECK_CONTAINS(f.text, "hq-only contact gone-at-node -1 5;");
    CHECK_EQ(st.drift, 4);
    CHECK_EQ(st.hq_records, 20000);
    /* only the ranges on the paths to the four records were opened: a few
     * levels of 16, not the 20,000 entries */
    CHECK(st.ranges < 4 * 16 * 5 + 1);
    CHECK(st.bytes_in < 8000);
    range_set_free(node);
    range_set_free(hq);
}

static void refused(const struct range_set *hq, const char *body, const char *field,
                    const char *says)
{
    char *ans = (char *)"untouched";
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(range_answer(hq, body, strlen(body), &ans, &err), -EINVAL);
    CHECK(ans == NULL);
    CHECK_STR(err.field, field);
    CHECK_CONTAINS(err.msg, says);
}

static void test_bad_requests(void)
{
    struct range_set *hq = make(10, 0);
    const char *d = "00112233445566778899aabbccddeeff";
    char buf[512];
    refused(hq, "not json", "body", "not a JSON object");
    refused(hq, "[1]", "body", "not a JSON object");
    refused(hq, "{\"format\":\"x\",\"ranges\":[]}", "format", "outpost-digest-1");
    refused(hq, "{\"format\":\"outpost-digest-1\",\"ranges\":[]}", "ranges", "1 to 1024");
    refused(hq, "{\"format\":\"outpost-digest-1\",\"ranges\":{}}", "ranges", "array");
    snprintf(buf, sizeof buf,
             "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"\",\"%s\",1]],\"x\":1}", d);
    refused(hq, buf, "body", "unknown member \"x\"");
    snprintf(buf, sizeof buf,
             "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"\",\"%s\",1],[\"G\",\"%s\",1]]}", d,
             d);
    refused(hq, buf, "ranges[1]", "lower-case hex");
    snprintf(buf, sizeof buf,
             "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"123456789\",\"%s\",1]]}", d);
    refused(hq, buf, "ranges[0]", "0 to 8");
    refused(hq, "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"\",\"00\",1]]}", "ranges[0]",
            "digest must be 32");
    snprintf(buf, sizeof buf, "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"\",\"%s\",-1]]}", d);
    refused(hq, buf, "ranges[0]", "count");
    snprintf(buf, sizeof buf, "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"\",\"%s\"]]}", d);
    refused(hq, buf, "ranges[0]", "[prefix, digest, count]");
    snprintf(buf, sizeof buf,
             "{\"format\":\"outpost-digest-1\",\"ranges\":[[\"a\",\"%s\",1],[\"a\",\"%s\",2]]}", d,
             d);
    refused(hq, buf, "ranges[1]", "asked twice");
    /* too many ranges: RANGE_REQUEST_MAX + 1 */
    size_t cap = 64 * (RANGE_REQUEST_MAX + 2);
    char *big = malloc(cap);
    size_t l = (size_t)snprintf(big, cap, "{\"format\":\"outpost-digest-1\",\"ranges\":[");
    for (int i = 0; i <= RANGE_REQUEST_MAX; i++)
        l += (size_t)snprintf(big + l, cap - l, "%s[\"%03x\",\"%s\",0]", i ? "," : "", (unsigned)i,
                              d);
    snprintf(big + l, cap - l, "]}");
    refused(hq, big, "ranges", "1 to 1024");
    free(big);
    range_set_free(hq);
}

static void test_bad_answers(void)
{
    struct range_set *node = make(100, 0);
    struct range_walk *w = NULL;
    CHECK_EQ(range_walk_new(node, &w), 0);
    char *body = NULL;
    size_t len = 0;
    CHECK_EQ(range_walk_request(w, &body, &len), 0);
    free(body);
    struct op_error err;
    op_error_clear(&err);
    const char *a = "{\"differ\":[[\"7\",3]]}"; /* "7" was not asked */
    CHECK_EQ(range_walk_answer(w, a, strlen(a), &err), -EBADMSG);
    CHECK_STR(err.field, "differ");
    CHECK_EQ(range_walk_request(w, &body, &len), 1); /* the walk is over */
    range_walk_free(w);
    /* an entry that is not in the range it is listed under */
    CHECK_EQ(range_walk_new(node, &w), 0);
    CHECK_EQ(range_walk_request(w, &body, &len), 0);
    free(body);
    CHECK_EQ(range_walk_request(w, &body, &len), 1); /* nothing pending until answered */
    range_walk_free(w);
    CHECK_EQ(range_walk_new(node, &w), 0);
    CHECK_EQ(range_walk_request(w, &body, &len), 0);
    free(body);
    a = "{\"differ\":[[\"\",500]]}"; /* HQ holds more: descend */
    CHECK_EQ(range_walk_answer(w, a, strlen(a), &err), 0);
    CHECK_EQ(range_walk_request(w, &body, &len), 0);
    CHECK_CONTAINS(body, "[\"f\",");
    free(body);
    char hexb[17], ans[256];
    snprintf(hexb, sizeof hexb, "%016llx", (unsigned long long)range_bucket("contact", "c1"));
    char wrong = hexb[0] == '0' ? '1' : '0';
    snprintf(
        ans, sizeof ans,
        "{\"differ\":[[\"%c\",1,[[\"contact\",\"c1\",1,\"00112233445566778899aabbccddeeff\"]]]]}",
        wrong);
    op_error_clear(&err);
    CHECK_EQ(range_walk_answer(w, ans, strlen(ans), &err), -EBADMSG);
    CHECK_CONTAINS(err.msg, "outside its range");
    range_walk_free(w);
    range_set_free(node);
}

int main(void)
{
    RUN(test_boundaries);
    RUN(test_digest_order_and_change);
    RUN(test_agreement);
    RUN(test_each_kind_of_drift);
    RUN(test_bad_requests);
    RUN(test_bad_answers);
    return tl_report();
}
