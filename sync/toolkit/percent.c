/*
 * Percent-decoding; see percent.h. One pass, no allocation: the output
 * index never passes the input index, so decoding in place is safe.
 */
#include "percent.h"

#include <errno.h>

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int percent_decode(char *out, size_t cap, const char *src, size_t n, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)src[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi * 16 + lo);
            if (ch == '\0')
                return -EINVAL;
            i += 2;
        } else if (ch == '+' && (flags & PERCENT_PLUS_SPACE)) {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return -E2BIG;
        out[o++] = ch;
    }
    if (o >= cap)
        return -E2BIG;
    out[o] = '\0';
    return (int)o;
}
