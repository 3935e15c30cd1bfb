/*
 * UTF-8 validation: the one decoder that the CSV reader (every imported
 * byte) and the record store (every text field, entity.h) check text
 * with. The invariant: text it passes is well-formed UTF-8 as RFC 3629
 * defines it (no overlong forms, no surrogates, nothing past U+10FFFF, no
 * truncated sequence) and holds no NUL, so it is safe as a C string.
 */
#ifndef OUTPOST_UTF8_H
#define OUTPOST_UTF8_H

#include <stddef.h>

/* Also refuses the C0 control characters other than tab, newline and
 * carriage return, and DEL: for text a person typed, stored or shown. */
#define UTF8_REFUSE_CONTROLS 1u

/* The offset of the first byte of s[0..len) that does not begin a valid
 * character (flags: UTF8_REFUSE_CONTROLS or 0), or -1 when all is valid. */
long utf8_bad_offset(const char *s, size_t len, unsigned flags);

#endif
