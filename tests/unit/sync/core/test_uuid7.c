/* Tests for sync/core/uuid7.c: layout, ordering, parsing. */
#include <errno.h>
#include <string.h>

#include "testlib.h"
#include "uuid7.h"

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static int no_random(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return -ENOSYS;
}

static void layout(void)
{
    struct uuid7_gen g;
    fake_now = 1700000000123;
    uuid7_init(&g, fake_clock, NULL, NULL, NULL);
    uint8_t u[16];
    CHECK_EQ(uuid7_next(&g, u), 0);
    CHECK_EQ(u[6] >> 4, 7);
    CHECK_EQ(u[8] >> 6, 2);
    CHECK_EQ(uuid7_time_ms(u), 1700000000123);
    char text[UUID_TEXT_LEN];
    uuid_format(u, text);
    CHECK_EQ(strlen(text), 36);
    CHECK(uuid_is_v7_text(text));
    uint8_t back[16];
    CHECK_EQ(uuid_parse(text, back), 0);
    CHECK(memcmp(u, back, 16) == 0);
}

static void strictly_increasing(void)
{
    struct uuid7_gen g;
    fake_now = 1700000001000;
    uuid7_init(&g, fake_clock, NULL, NULL, NULL);
    char prev[UUID_TEXT_LEN], cur[UUID_TEXT_LEN];
    CHECK_EQ(uuid7_next_text(&g, prev), 0);
    int ok = 1;
    /* 10,000 ids in one millisecond exhaust the counter several times. */
    for (int i = 0; i < 10000; i++) {
        uuid7_next_text(&g, cur);
        ok &= strcmp(cur, prev) > 0;
        memcpy(prev, cur, sizeof cur);
    }
    CHECK(ok);
    /* The clock jumps an hour back: ids keep increasing. */
    fake_now -= 3600 * 1000;
    for (int i = 0; i < 100; i++) {
        uuid7_next_text(&g, cur);
        ok &= strcmp(cur, prev) > 0;
        memcpy(prev, cur, sizeof cur);
    }
    CHECK(ok);
}

static void distinct_generators_differ(void)
{
    struct uuid7_gen a, b;
    fake_now = 1700000002000;
    uuid7_init(&a, fake_clock, NULL, NULL, NULL);
    uuid7_init(&b, fake_clock, NULL, NULL, NULL);
    char x[UUID_TEXT_LEN], y[UUID_TEXT_LEN];
    uuid7_next_text(&a, x);
    uuid7_next_text(&b, y);
    CHECK(strcmp(x, y) != 0);
}

static void parse_rejects(void)
{
    uint8_t u[16];
    CHECK_EQ(uuid_parse("", u), -EINVAL);
    CHECK_EQ(uuid_parse("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2", u), -EINVAL);
    CHECK_EQ(uuid_parse("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b3", u), -EINVAL);
    CHECK_EQ(uuid_parse("0190a1b2c3d4-7e5f-8a6b-7c8d9e0f1a2b", u), -EINVAL);
    CHECK_EQ(uuid_parse("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2g", u), -EINVAL);
    CHECK_EQ(uuid_parse("0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B", u), 0);
    CHECK(!uuid_is_v7_text("0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b")); /* version 4 */
    CHECK(!uuid_is_v7_text("0190a1b2-c3d4-7e5f-ca6b-7c8d9e0f1a2b")); /* wrong variant */
}

static void randomness_failure(void)
{
    struct uuid7_gen g;
    uuid7_init(&g, fake_clock, NULL, no_random, NULL);
    uint8_t u[16];
    memset(u, 0xaa, sizeof u);
    CHECK_EQ(uuid7_next(&g, u), -ENOSYS);
    CHECK_EQ(u[0], 0xaa);
}

int main(void)
{
    RUN(layout);
    RUN(strictly_increasing);
    RUN(distinct_generators_differ);
    RUN(parse_rejects);
    RUN(randomness_failure);
    return tl_report();
}
