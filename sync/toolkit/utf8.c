/*
 * UTF-8 validation (utf8.h): one pass, no allocation, the offset of the
 * first byte that is not part of a well-formed character.
 */
#include "utf8.h"

#include <stdint.h>

/* Whether ASCII byte c is refused under flags. */
static int bad_ascii(unsigned c, unsigned flags)
{
    if (c == 0)
        return 1;
    if (!(flags & UTF8_REFUSE_CONTROLS))
        return 0;
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
}

long utf8_bad_offset(const char *s, size_t len, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (bad_ascii(c, flags))
                return (long)i;
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return (long)i;
        }
        if (i + n > len)
            return (long)i;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return (long)i;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return (long)i;
        i += n;
    }
    return -1;
}
