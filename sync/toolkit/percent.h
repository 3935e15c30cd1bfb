/*
 * Percent-decoding (RFC 3986 section 2.1) of request paths and query
 * strings: the one decoder the HTTP server and the API share. The
 * invariant: what comes out is a C string holding exactly what was
 * encoded, so an escape that encodes NUL (it would cut every string after
 * it) is refused rather than passed on, and output never overruns its cap.
 */
#ifndef OUTPOST_PERCENT_H
#define OUTPOST_PERCENT_H

#include <stddef.h>

/* '+' decodes to a space (query strings, form encoding); without it '+'
 * stays '+' (paths). */
#define PERCENT_PLUS_SPACE 1u

/* Decodes src[0..n) into out, cap bytes counting the NUL it always writes
 * on success; out may equal src (the output is never longer). Escapes are
 * '%' and two hex digits of either case. Returns the decoded length,
 * -EINVAL for a malformed escape ("%4", "%zz") or one that encodes NUL,
 * -E2BIG when the result does not fit; out is unspecified on failure. */
int percent_decode(char *out, size_t cap, const char *src, size_t n, unsigned flags);

#endif
