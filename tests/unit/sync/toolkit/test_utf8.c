/*
 * Tests for sync/toolkit/utf8.c: well-formed text in several scripts
 * passes; overlong forms, surrogates, code points past U+10FFFF, stray
 * and missing continuation bytes are refused at their first byte; NUL is
 * always refused, other control characters only for typed text.
 */
#include "testlib.h"
#include "utf8.h"

static void test_well_formed(void)
{
    CHECK_EQ(utf8_bad_offset("", 0, 0), -1);
    CHECK_EQ(utf8_bad_offset("plain", 5, UTF8_REFUSE_CONTROLS), -1);
    CHECK_EQ(utf8_bad_offset("\xc5\x81\xc3\xb3\xc5\xba", 6, 0), -1); /* Łóź */
    CHECK_EQ(utf8_bad_offset("\xe4\xb8\xad\xe6\x96\x87", 6, 0), -1); /* Han */
    CHECK_EQ(utf8_bad_offset("\xf0\x9f\x98\x80", 4, 0), -1);         /* emoji */
    CHECK_EQ(utf8_bad_offset("\xf4\x8f\xbf\xbf", 4, 0), -1);         /* U+10FFFF */
}

static void test_malformed(void)
{
    CHECK_EQ(utf8_bad_offset("ab\x80", 3, 0), 2);               /* stray continuation */
    CHECK_EQ(utf8_bad_offset("\xc0\xaf", 2, 0), 0);             /* overlong, 2 bytes */
    CHECK_EQ(utf8_bad_offset("\xe0\x80\xaf", 3, 0), 0);         /* overlong, 3 bytes */
    CHECK_EQ(utf8_bad_offset("\xf0\x80\x80\xaf", 4, 0), 0);     /* overlong, 4 bytes */
    CHECK_EQ(utf8_bad_offset("a\xed\xa0\x80", 4, 0), 1);        /* surrogate */
    CHECK_EQ(utf8_bad_offset("\xf4\x90\x80\x80", 4, 0), 0);     /* past U+10FFFF */
    CHECK_EQ(utf8_bad_offset("\xf8\x88\x80\x80\x80", 5, 0), 0); /* 5-byte form */
    CHECK_EQ(utf8_bad_offset("ok\xe2\x82", 4, 0), 2);           /* truncated */
    CHECK_EQ(utf8_bad_offset("\xe2(\xac", 3, 0), 0);            /* not a continuation */
}

static void test_controls(void)
{
    CHECK_EQ(utf8_bad_offset("a\0b", 3, 0), 1);
    CHECK_EQ(utf8_bad_offset("a\0b", 3, UTF8_REFUSE_CONTROLS), 1);
    CHECK_EQ(utf8_bad_offset("ab\x01", 3, 0), -1);
    CHECK_EQ(utf8_bad_offset("ab\x01", 3, UTF8_REFUSE_CONTROLS), 2);
    CHECK_EQ(utf8_bad_offset("x\x7f", 2, UTF8_REFUSE_CONTROLS), 1);
    CHECK_EQ(utf8_bad_offset("line\nnext\ttab\r", 14, UTF8_REFUSE_CONTROLS), -1);
}

int main(void)
{
    test_well_formed();
    test_malformed();
    test_controls();
    return tl_report();
}
