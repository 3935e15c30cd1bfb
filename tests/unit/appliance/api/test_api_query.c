/*
 * Tests for appliance/api/api_query.c: percent-decoding of names and values
 * ('+' as a space), malformed escapes and encoded NUL refused with the
 * parameter named, repeated names kept in order, empty pairs, and the
 * bounds (pairs, name and value length); then the 400 answers that
 * api_query_params and api_query_limit give.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api_query.h"
#include "testlib.h"

static struct api_param ps[API_QUERY_PARAMS_MAX];
static char bad[64];

static int parse(const char *q)
{
    bad[0] = '\0';
    return api_query_parse(q, ps, API_QUERY_PARAMS_MAX, bad, sizeof bad);
}

static void decoding(void)
{
    CHECK_EQ(parse("q=jose%20lodz&limit=20"), 2);
    CHECK_STR(ps[0].name, "q");
    CHECK_STR(ps[0].value, "jose lodz");
    CHECK_STR(ps[1].name, "limit");
    CHECK_STR(ps[1].value, "20");
    CHECK_EQ(parse("q=a+b%2Bc&na%6De=%C5%81%C3%B3d%C5%BA"), 2);
    CHECK_STR(ps[0].value, "a b+c");
    CHECK_STR(ps[1].name, "name");
    CHECK_STR(ps[1].value, "\xc5\x81\xc3\xb3"
                           "d\xc5\xba"); /* Łódź */
    CHECK_EQ(parse("x=a=b"), 1);         /* only the first '=' splits */
    CHECK_STR(ps[0].value, "a=b");
}

static void shapes(void)
{
    CHECK_EQ(parse(""), 0);
    CHECK_EQ(api_query_parse(NULL, ps, API_QUERY_PARAMS_MAX, bad, sizeof bad), 0);
    CHECK_EQ(parse("&&a=1&&"), 1);
    CHECK_STR(ps[0].name, "a");
    CHECK_EQ(parse("flag&b="), 2);
    CHECK_STR(ps[0].name, "flag");
    CHECK_STR(ps[0].value, "");
    CHECK_STR(ps[1].name, "b");
    CHECK_STR(ps[1].value, "");
    CHECK_EQ(parse("=v"), 1);
    CHECK_STR(ps[0].name, "");
    CHECK_STR(ps[0].value, "v");
}

static void repeated(void)
{
    CHECK_EQ(parse("owner=A&owner=B&limit=1&limit=2"), 4);
    CHECK_STR(ps[0].value, "A");
    CHECK_STR(ps[1].value, "B");
    CHECK_STR(ps[2].value, "1");
    CHECK_STR(ps[3].value, "2");
}

static void bad_escapes(void)
{
    CHECK_EQ(parse("ok=1&q=%zz"), -EINVAL);
    CHECK_STR(bad, "q");
    CHECK_EQ(parse("q%2=1"), -EINVAL);
    CHECK_STR(bad, "q%2");
    CHECK_EQ(parse("q=abc%"), -EINVAL);
    CHECK_STR(bad, "q");
    CHECK_EQ(parse("q=a%00b"), -EINVAL); /* NUL would cut the value */
    CHECK_STR(bad, "q");
}

static void bounds(void)
{
    char q[4096];
    size_t o = 0;
    for (int i = 0; i < API_QUERY_PARAMS_MAX; i++)
        o += (size_t)snprintf(q + o, sizeof q - o, "%sp%d=%d", i ? "&" : "", i, i);
    CHECK_EQ(parse(q), API_QUERY_PARAMS_MAX);
    CHECK_STR(ps[API_QUERY_PARAMS_MAX - 1].name, "p31");
    snprintf(q + o, sizeof q - o, "&one=more");
    CHECK_EQ(parse(q), -EINVAL);
    CHECK_STR(bad, "too many parameters");

    char name[64];
    memset(name, 'n', 47);
    name[47] = '\0';
    snprintf(q, sizeof q, "%s=1", name);
    CHECK_EQ(parse(q), 1); /* 47 bytes: the longest name */
    snprintf(q, sizeof q, "%sn=1", name);
    CHECK_EQ(parse(q), -EINVAL);
    CHECK_EQ(strlen(bad), 40); /* the name is cut in the message, not in the check */

    char value[600];
    memset(value, 'v', 511);
    value[511] = '\0';
    snprintf(q, sizeof q, "v=%s", value);
    CHECK_EQ(parse(q), 1);
    CHECK_EQ(strlen(ps[0].value), 511);
    snprintf(q, sizeof q, "v=%sv", value);
    CHECK_EQ(parse(q), -EINVAL);
    CHECK_STR(bad, "v");
    /* the cap is on the decoded value: 511 escapes decode to 511 bytes */
    o = (size_t)snprintf(q, sizeof q, "v=");
    for (int i = 0; i < 511 && o + 4 < sizeof q; i++)
        o += (size_t)snprintf(q + o, sizeof q - o, "%%41");
    CHECK_EQ(parse(q), 1);
    CHECK_EQ(strlen(ps[0].value), 511);
}

static json_t *problem_of(struct api_call *c)
{
    return c->resp.body ? json_loads(c->resp.body, 0, NULL) : NULL;
}

static void answers(void)
{
    struct api_call c;
    memset(&c, 0, sizeof c);
    c.req.query = "limit=5&q=%4";
    CHECK_EQ(api_query_params(&c, ps), -EINVAL);
    CHECK_EQ(c.resp.status, 400);
    CHECK_STR(c.resp.type, "application/problem+json");
    json_t *p = problem_of(&c);
    CHECK_STR(json_string_value(json_object_get(p, "detail")),
              "query parameter 'q' is badly encoded or too long");
    CHECK_EQ(json_integer_value(json_object_get(p, "status")), 400);
    CHECK(json_object_get(p, "errors") == NULL);
    json_decref(p);
    api_reply_done(&c.resp);

    memset(&c, 0, sizeof c);
    c.req.query = "limit=5&q=x";
    CHECK_EQ(api_query_params(&c, ps), 2);
    CHECK_EQ(c.resp.status, 0);
    CHECK_EQ(api_query_limit(&c, "5", 10), 5);
    CHECK_EQ(api_query_limit(&c, "10", 10), 10);
    CHECK_EQ(c.resp.status, 0);
    static const char *const wrong[] = {"0", "11", "-1", "", "5x", "1e3", "99999999999999999999"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        memset(&c.resp, 0, sizeof c.resp);
        CHECK_EQ(api_query_limit(&c, wrong[i], 10), -EINVAL);
        CHECK_EQ(c.resp.status, 400);
        p = problem_of(&c);
        CHECK_STR(json_string_value(json_object_get(p, "detail")),
                  "limit: expected a whole number from 1 to 10");
        json_decref(p);
        api_reply_done(&c.resp);
    }
}

int main(void)
{
    RUN(decoding);
    RUN(shapes);
    RUN(repeated);
    RUN(bad_escapes);
    RUN(bounds);
    RUN(answers);
    return tl_report();
}
