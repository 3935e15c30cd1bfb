/*
 * Tests for sync/toolkit/buf.c: appends and formatted text grow the
 * buffer and keep it NUL-terminated; the cap holds exactly (max bytes fit,
 * one more is -EFBIG) and a refused call changes nothing; clear keeps the
 * memory; take hands over a string and leaves the buffer reusable.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "testlib.h"

static void grows(void)
{
    struct buf b = BUF_INIT(SIZE_MAX);
    CHECK(b.data == NULL);
    CHECK_EQ(buf_append(&b, NULL, 0), 0);
    CHECK(b.data != NULL);
    CHECK_STR(b.data, "");
    CHECK_EQ(buf_puts(&b, "hello"), 0);
    CHECK_EQ(buf_append(&b, ", world", 7), 0);
    CHECK_EQ(b.len, 12);
    CHECK_STR(b.data, "hello, world");
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(buf_printf(&b, "%04d", i), 0);
    CHECK_EQ(b.len, 12 + 4000);
    CHECK(b.cap > b.len);
    CHECK(memcmp(b.data + 12, "00000001", 8) == 0);
    CHECK_STR(b.data + b.len - 4, "0999");
    buf_done(&b);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.cap, 0);
}

static void binary(void)
{
    struct buf b = BUF_INIT(16);
    CHECK_EQ(buf_append(&b, "a\0b", 3), 0);
    CHECK_EQ(b.len, 3);
    CHECK(memcmp(b.data, "a\0b", 4) == 0); /* the terminator follows the bytes */
    buf_done(&b);
}

static void cap(void)
{
    struct buf b;
    buf_init(&b, 8);
    CHECK_EQ(buf_puts(&b, "12345678"), 0); /* exactly max */
    CHECK_EQ(b.len, 8);
    CHECK(b.cap <= 9); /* never more than max and the terminator */
    CHECK_EQ(buf_append(&b, "9", 1), -EFBIG);
    CHECK_EQ(buf_printf(&b, "%d", 9), -EFBIG);
    CHECK_EQ(buf_reserve(&b, 1), -EFBIG);
    CHECK_EQ(buf_reserve(&b, 0), 0);
    CHECK_EQ(b.len, 8);
    CHECK_STR(b.data, "12345678"); /* refused calls change nothing */
    buf_clear(&b);
    CHECK_EQ(b.len, 0);
    CHECK_STR(b.data, "");
    CHECK_EQ(buf_printf(&b, "%s", "123456789"), -EFBIG);
    CHECK_EQ(b.len, 0);
    CHECK_STR(b.data, "");
    CHECK_EQ(buf_reserve(&b, SIZE_MAX), -EFBIG);
    buf_done(&b);
    CHECK_EQ(b.max, 8);

    struct buf z = BUF_INIT(0);
    CHECK_EQ(buf_append(&z, "", 0), 0);
    CHECK_STR(z.data, "");
    CHECK_EQ(buf_append(&z, "x", 1), -EFBIG);
    buf_done(&z);

    /* a cap lowered below what is held refuses growth */
    struct buf l = BUF_INIT(64);
    CHECK_EQ(buf_puts(&l, "0123456789"), 0);
    l.max = 4;
    CHECK_EQ(buf_append(&l, "x", 1), -EFBIG);
    CHECK_EQ(l.len, 10);
    buf_done(&l);
}

static void reserve(void)
{
    struct buf b = BUF_INIT(1 << 20);
    CHECK_EQ(buf_reserve(&b, 5000), 0);
    CHECK(b.cap > 5000);
    CHECK_EQ(b.len, 0);
    CHECK_STR(b.data, "");
    char *before = b.data;
    for (int i = 0; i < 5000; i++)
        CHECK_EQ(buf_append(&b, "x", 1), 0);
    CHECK(b.data == before); /* no growth after reserving */
    buf_done(&b);
}

static void take(void)
{
    struct buf b = BUF_INIT(100);
    size_t len = 99;
    char *s = buf_take(&b, &len); /* nothing held: an empty string */
    CHECK(s != NULL);
    CHECK_STR(s, "");
    CHECK_EQ(len, 0);
    free(s);
    CHECK_EQ(buf_printf(&b, "%s=%d", "n", 42), 0);
    s = buf_take(&b, &len);
    CHECK_STR(s, "n=42");
    CHECK_EQ(len, 4);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.max, 100);
    free(s);
    CHECK_EQ(buf_puts(&b, "again"), 0);
    s = buf_take(&b, NULL);
    CHECK_STR(s, "again");
    free(s);
    buf_done(&b);
}

int main(void)
{
    grows();
    binary();
    cap();
    reserve();
    take();
    return tl_report();
}
