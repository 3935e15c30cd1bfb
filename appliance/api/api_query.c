/*
 * Query-string decoding for the API; see api_query.h.
 */
#include "api_query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "percent.h"

int api_query_parse(const char *q, struct api_param *ps, int max, char *bad, size_t badcap)
{
    int n = 0;
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len) {
            if (n == max) {
                snprintf(bad, badcap, "too many parameters");
                return -EINVAL;
            }
            const char *eq = memchr(q, '=', len);
            size_t nl = eq ? (size_t)(eq - q) : len;
            if (percent_decode(ps[n].name, sizeof ps[n].name, q, nl, PERCENT_PLUS_SPACE) < 0 ||
                percent_decode(ps[n].value, sizeof ps[n].value, eq ? eq + 1 : q + len,
                               eq ? len - nl - 1 : 0, PERCENT_PLUS_SPACE) < 0) {
                snprintf(bad, badcap, "%.*s", (int)(nl < 40 ? nl : 40), q);
                return -EINVAL;
            }
            n++;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return n;
}

int api_query_params(struct api_call *c, struct api_param ps[API_QUERY_PARAMS_MAX])
{
    char bad[64];
    int n = api_query_parse(c->req.query, ps, API_QUERY_PARAMS_MAX, bad, sizeof bad);
    if (n < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "query parameter '%s' is badly encoded or too long", bad);
        api_reply_problem(&c->resp, 400, msg, NULL);
    }
    return n;
}

int api_query_limit(struct api_call *c, const char *v, int max)
{
    char *end;
    errno = 0;
    long lim = strtol(v, &end, 10);
    if (errno || *end || end == v || lim < 1 || lim > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "limit: expected a whole number from 1 to %d", max);
        api_reply_problem(&c->resp, 400, msg, NULL);
        return -EINVAL;
    }
    return (int)lim;
}
