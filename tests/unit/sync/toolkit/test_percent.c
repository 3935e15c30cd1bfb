/*
 * Tests for sync/toolkit/percent.c: escapes of either case, '+' only with
 * PERCENT_PLUS_SPACE, malformed and NUL escapes refused, the cap counting
 * the NUL, and decoding in place.
 */
#include <errno.h>
#include <string.h>

#include "percent.h"
#include "testlib.h"

static int dec(const char *src, unsigned flags, char *out, size_t cap)
{
    return percent_decode(out, cap, src, strlen(src), flags);
}

static void escapes(void)
{
    char out[64];
    CHECK_EQ(dec("plain", 0, out, sizeof out), 5);
    CHECK_STR(out, "plain");
    CHECK_EQ(dec("a%2Fb%2fc", 0, out, sizeof out), 5);
    CHECK_STR(out, "a/b/c");
    CHECK_EQ(dec("jos%C3%A9", 0, out, sizeof out), 5);
    CHECK_STR(out, "jos\xc3\xa9");
    CHECK_EQ(dec("", 0, out, sizeof out), 0);
    CHECK_STR(out, "");
    CHECK_EQ(dec("%25", 0, out, sizeof out), 1); /* an escaped '%' is not decoded twice */
    CHECK_STR(out, "%");
}

static void plus(void)
{
    char out[64];
    CHECK_EQ(dec("a+b%2B", PERCENT_PLUS_SPACE, out, sizeof out), 4);
    CHECK_STR(out, "a b+");
    CHECK_EQ(dec("a+b", 0, out, sizeof out), 3);
    CHECK_STR(out, "a+b");
}

static void malformed(void)
{
    char out[64];
    CHECK_EQ(dec("%", 0, out, sizeof out), -EINVAL);
    CHECK_EQ(dec("%4", 0, out, sizeof out), -EINVAL);
    CHECK_EQ(dec("ab%4", 0, out, sizeof out), -EINVAL);
    CHECK_EQ(dec("%zz", 0, out, sizeof out), -EINVAL);
    CHECK_EQ(dec("%4g", 0, out, sizeof out), -EINVAL);
    CHECK_EQ(dec("%g4", 0, out, sizeof out), -EINVAL);
    CHECK_EQ(dec("a%00b", 0, out, sizeof out), -EINVAL);
    /* only the first n bytes count: a valid escape cut by n is malformed */
    CHECK_EQ(percent_decode(out, sizeof out, "%41", 2, 0), -EINVAL);
}

static void caps(void)
{
    char out[8];
    CHECK_EQ(dec("abc", 0, out, 4), 3);
    CHECK_STR(out, "abc");
    CHECK_EQ(dec("abcd", 0, out, 4), -E2BIG);
    CHECK_EQ(dec("%41%42%43", 0, out, 4), 3); /* the cap is on the output */
    CHECK_STR(out, "ABC");
    CHECK_EQ(dec("", 0, out, 0), -E2BIG); /* no room even for the NUL */
    CHECK_EQ(dec("", 0, out, 1), 0);
}

static void in_place(void)
{
    char buf[] = "/api/v1/contacts/a%20b%2Fc";
    CHECK_EQ(percent_decode(buf, sizeof buf, buf, strlen(buf), 0), 22);
    CHECK_STR(buf, "/api/v1/contacts/a b/c");
}

int main(void)
{
    RUN(escapes);
    RUN(plus);
    RUN(malformed);
    RUN(caps);
    RUN(in_place);
    return tl_report();
}
