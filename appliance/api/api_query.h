/*
 * Query strings of API requests: "a=1&b=x%20y" into decoded name/value
 * pairs (percent.h, '+' as a space), in order and with repeated names
 * kept, and the checks the handlers share. The invariant: everything is
 * bounded by fixed arrays (API_QUERY_PARAMS_MAX pairs, names under 48
 * bytes, values under 512); a query past a bound is refused, never cut.
 */
#ifndef OUTPOST_API_QUERY_H
#define OUTPOST_API_QUERY_H

#include <stddef.h>

#include "api_request.h"

#define API_QUERY_PARAMS_MAX 32

struct api_param {
    char name[48];
    char value[512];
};

/* Parses the raw query q (NULL or "" has no pairs) into ps[0..max).
 * Empty pairs ("a=1&&b=2") are skipped; a pair without '=' has the value
 * "". Returns the number of pairs, or -EINVAL with bad naming the
 * offending parameter (its raw name, at most 40 bytes) or "too many
 * parameters" for a malformed escape, an encoded NUL, a name or value too
 * long, or more than max pairs. */
int api_query_parse(const char *q, struct api_param *ps, int max, char *bad, size_t badcap);

/* Parses the request's query into ps; on failure answers 400 ("query
 * parameter 'NAME' is badly encoded or too long") and returns -EINVAL. */
int api_query_params(struct api_call *c, struct api_param ps[API_QUERY_PARAMS_MAX]);

/* The value of a `limit` parameter: a whole number from 1 to max; else
 * answers 400 and returns -EINVAL. */
int api_query_limit(struct api_call *c, const char *v, int max);

#endif
