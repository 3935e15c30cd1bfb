/*
 * RFC 9457 problem documents (application/problem+json): the one shape
 * every error answer takes, from the node API, the tus server, HQ and
 * the HTTP server's own refusals. A document is
 * {"type":"about:blank","title":T,"status":N,"detail":D} followed by any
 * members its caller adds. The invariant: the four standard members come
 * first and in that order, compact, so every server words its errors
 * byte for byte the same way. It stands below the HTTP server, which
 * answers with it (http_respond_problem).
 */
#ifndef OUTPOST_PROBLEM_H
#define OUTPOST_PROBLEM_H

#include <jansson.h>

#include "buf.h"

#define PROBLEM_CONTENT_TYPE "application/problem+json"

/* A new problem object: title is the status's reason phrase
 * (http_status_text) or a name of the protocol's own. The caller owns the
 * reference and may add members. Returns NULL when out of memory or when
 * title or detail is NULL or not UTF-8. */
json_t *problem_new(int status, const char *title, const char *detail);

/* Appends p, compact, to b, taking the reference (p may be NULL, for a
 * problem_new that failed). Returns 0, -ENOMEM (p NULL or out of memory)
 * or -EFBIG past b's cap; b is as it was on failure. */
int problem_render(struct buf *b, json_t *p);

#endif
