/*
 * The analysts' aggregate endpoint; contract in hq_analyst_http.h. One
 * request: authenticate (analyst token, else 403 for a node's, else 401),
 * check the method and the query (only format and max_age, each checked),
 * then combine through hq_aggregate and answer in the format asked. The
 * listing combines each aggregate once and keeps only the regions' part.
 */
#include "hq_analyst_http.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hq_aggregate.h"
#include "timefmt.h"

#define PREFIX_LEN (sizeof HQ_ANALYST_HTTP_PREFIX - 1)
#define MAX_AGE_S_MAX (3650LL * 86400)
#define NAME_MAX_LEN 64

static void unauthorized(struct http_exchange *x, const char *detail)
{
    (void)http_add_header(x, "WWW-Authenticate", "Bearer realm=\"outpost-hq analysts\"");
    http_respond_problem(x, 401, NULL, detail);
}

/* 0 when the bearer token is a live analyst's (its name in who); else the
 * request has been answered (401, 403 or 503) and -1 is returned. */
static int authenticate(const struct hq_store *st, struct http_exchange *x, int64_t now_ms)
{
    const char *h = http_header(x, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(x, "an analyst token is required (Authorization: Bearer TOKEN); HQ's "
                        "administrator creates one with 'outpost-hq analyst add NAME'");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    if (!len || len > 256) {
        unauthorized(x, "unknown or revoked analyst token");
        return -1;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, len, digest);
    struct op_error err;
    op_error_clear(&err);
    struct hq_analyst a;
    int rc = st->ops->analyst_by_token(st->impl, digest, &a, &err);
    if (rc == 0 && !a.revoked) {
        http_set_user(x, a.name);
        op_error_clear(&err);
        (void)st->ops->analyst_touch(st->impl, a.name, now_ms, &err); /* best effort */
        return 0;
    }
    if (rc == 0) {
        unauthorized(x, "this analyst token was revoked (outpost-hq analyst revoke)");
        return -1;
    }
    if (rc == -ENOENT) {
        struct hq_node n;
        op_error_clear(&err);
        rc = st->ops->node_by_token(st->impl, digest, &n, &err);
        if (rc == 0) {
            char d[200];
            snprintf(d, sizeof d,
                     "this is the token of node %s: a node's credentials do not read "
                     "aggregates; use an analyst token (outpost-hq analyst add NAME)",
                     n.name);
            http_respond_problem(x, 403, NULL, d);
            return -1;
        }
        if (rc == -ENOENT) {
            unauthorized(x, "unknown or revoked analyst token");
            return -1;
        }
    }
    http_respond_problem(x, 503, NULL, "the credentials cannot be checked now: retry later");
    return -1;
}

struct query {
    const char *format; /* "json" or "csv" */
    char format_buf[8];
    int64_t max_age_s;
};

/* Checks the query: every key is format or max_age, each valid. 0, or
 * the request answered 400 and -1. */
static int read_query(struct http_exchange *x, struct query *q)
{
    char d[200];
    q->format = "json";
    q->max_age_s = HQ_AGGREGATE_MAX_AGE_MS / 1000;
    const char *s = http_query(x);
    while (s && *s) {
        size_t n = strcspn(s, "&");
        size_t k = strcspn(s, "=&");
        if (n && !((k == 6 && !strncmp(s, "format", 6)) || (k == 7 && !strncmp(s, "max_age", 7)))) {
            snprintf(d, sizeof d,
                     "unknown query parameter '%.*s': this path takes format=json|csv and "
                     "max_age=SECONDS",
                     (int)(k > 40 ? 40 : k), s);
            http_respond_problem(x, 400, NULL, d);
            return -1;
        }
        s += n + (s[n] == '&');
    }
    int rc = http_query_param(x, "format", q->format_buf, sizeof q->format_buf);
    if (rc >= 0) {
        if (strcmp(q->format_buf, "json") && strcmp(q->format_buf, "csv")) {
            snprintf(d, sizeof d, "format must be json or csv, not '%s'", q->format_buf);
            http_respond_problem(x, 400, NULL, d);
            return -1;
        }
        q->format = q->format_buf;
    } else if (rc != -ENOENT) {
        http_respond_problem(x, 400, NULL, "format must be json or csv");
        return -1;
    }
    char v[24];
    rc = http_query_param(x, "max_age", v, sizeof v);
    if (rc >= 0) {
        char *end = NULL;
        errno = 0;
        long long s_ = strtoll(v, &end, 10);
        if (errno || end == v || *end || s_ < 1 || s_ > MAX_AGE_S_MAX)
            rc = -EINVAL;
        else
            q->max_age_s = s_;
    }
    if (rc < 0 && rc != -ENOENT) {
        snprintf(d, sizeof d, "max_age must be a whole number of seconds from 1 to %lld",
                 MAX_AGE_S_MAX);
        http_respond_problem(x, 400, NULL, d);
        return -1;
    }
    return 0;
}

static void respond_text(struct http_exchange *x, const char *type, char *body)
{
    if (!body) {
        http_respond_problem(x, 500, NULL, "out of memory");
        return;
    }
    http_respond(x, 200, type, body, strlen(body));
    free(body);
}

static void one_aggregate(const struct hq_store *st, struct http_exchange *x, const char *name,
                          const struct query *q, int64_t now_ms)
{
    struct op_error err;
    op_error_clear(&err);
    json_t *t = NULL;
    struct hq_store copy = *st;
    int rc = hq_aggregate_combine(&copy, name, now_ms, q->max_age_s * 1000, &t, &err);
    if (rc == -ENOENT) {
        http_respond_problem(x, 404, NULL, err.msg);
        return;
    }
    if (rc < 0) {
        http_respond_problem(x, 503, NULL, "the HQ store is not available; try again later");
        return;
    }
    if (!strcmp(q->format, "csv")) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f || hq_aggregate_csv(t, f) < 0) {
            if (f)
                fclose(f);
            free(buf);
            buf = NULL;
        } else if (fclose(f) != 0) {
            free(buf);
            buf = NULL;
        }
        respond_text(x, "text/csv; charset=utf-8", buf);
    } else {
        respond_text(x, "application/json", json_dumps(t, JSON_COMPACT | JSON_REAL_PRECISION(6)));
    }
    json_decref(t);
}

static int collect_name(void *ctx, const struct hq_record_row *r)
{
    json_t *names = ctx;
    return json_object_set_new(names, r->id, json_true()) < 0 ? -ENOMEM : 0;
}

/* The listing: each aggregate some node answered or refused, with the
 * status of every region (hq_aggregate_combine's "regions"). */
static void list_aggregates(const struct hq_store *st, struct http_exchange *x,
                            const struct query *q, int64_t now_ms)
{
    struct op_error err;
    op_error_clear(&err);
    json_t *names = json_object(), *list = json_array();
    char *out = NULL;
    size_t outlen = 0;
    FILE *csv = NULL;
    int rc = names && list ? 0 : -ENOMEM;
    if (rc == 0)
        rc = st->ops->records_list(st->impl, NULL, "aggregate", collect_name, names, &err);
    if (rc == 0 && !strcmp(q->format, "csv")) {
        csv = open_memstream(&out, &outlen);
        if (!csv)
            rc = -ENOMEM;
        else
            fputs("aggregate,region,node,status,age_s,reason\n", csv);
    }
    const char *name;
    json_t *unused;
    json_object_foreach(names, name, unused)
    {
        if (rc < 0)
            break;
        json_t *t = NULL;
        struct hq_store copy = *st;
        rc = hq_aggregate_combine(&copy, name, now_ms, q->max_age_s * 1000, &t, &err);
        if (rc == -ENOENT) { /* only tombstones: nothing to show */
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
        json_t *regions = json_object_get(t, "regions");
        json_int_t counts[4] = {0, 0, 0, 0};
        static const char *const statuses[4] = {"answered", "stale", "refused", "no_answer"};
        size_t i;
        json_t *r;
        json_array_foreach(regions, i, r)
        {
            const char *s = json_string_value(json_object_get(r, "status"));
            for (int k = 0; k < 4; k++)
                if (s && !strcmp(s, statuses[k]))
                    counts[k]++;
            if (csv) {
                hq_aggregate_csv_field(csv, name);
                fputc(',', csv);
                hq_aggregate_csv_field(csv, json_string_value(json_object_get(r, "region")));
                fputc(',', csv);
                hq_aggregate_csv_field(csv, json_string_value(json_object_get(r, "node")));
                fputc(',', csv);
                hq_aggregate_csv_field(csv, s);
                fputc(',', csv);
                if (json_is_integer(json_object_get(r, "age_s")))
                    fprintf(csv, "%" JSON_INTEGER_FORMAT,
                            json_integer_value(json_object_get(r, "age_s")));
                fputc(',', csv);
                hq_aggregate_csv_field(csv, json_string_value(json_object_get(r, "reason")));
                fputc('\n', csv);
            }
        }
        json_t *e = json_pack("{s:s, s:I, s:I, s:I, s:I, s:O}", "name", name, "answered", counts[0],
                              "stale", counts[1], "refused", counts[2], "no_answer", counts[3],
                              "regions", regions);
        json_decref(t);
        if (!e || json_array_append_new(list, e) < 0)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        if (csv)
            fclose(csv);
        free(out);
        json_decref(names);
        json_decref(list);
        http_respond_problem(x, rc == -ENOMEM ? 500 : 503, NULL,
                             rc == -ENOMEM ? "out of memory"
                                           : "the HQ store is not available; try again later");
        return;
    }
    json_decref(names);
    if (csv) {
        json_decref(list);
        if (fclose(csv) != 0) {
            free(out);
            out = NULL;
        }
        respond_text(x, "text/csv; charset=utf-8", out);
        return;
    }
    char when[40];
    if (timefmt_iso_ms(now_ms, when, sizeof when) < 0)
        snprintf(when, sizeof when, "?");
    json_t *doc = json_pack("{s:s, s:I, s:o}", "generated_at", when, "max_age_s",
                            (json_int_t)q->max_age_s, "aggregates", list);
    respond_text(x, "application/json", doc ? json_dumps(doc, JSON_COMPACT) : NULL);
    json_decref(doc);
}

static int name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int hq_analyst_http_handle(const struct hq_store *st, struct http_exchange *x, int64_t now_ms)
{
    const char *path = http_path(x);
    if (strncmp(path, HQ_ANALYST_HTTP_PREFIX, PREFIX_LEN) != 0 ||
        (path[PREFIX_LEN] != '\0' && path[PREFIX_LEN] != '/'))
        return 0;
    if (authenticate(st, x, now_ms) < 0)
        return 1;
    const char *method = http_method(x);
    if (strcmp(method, "GET")) {
        char d[96];
        snprintf(d, sizeof d, "method %.16s not allowed here (allowed: GET)", method);
        (void)http_add_header(x, "Allow", "GET");
        http_respond_problem(x, 405, NULL, d);
        return 1;
    }
    struct query q;
    if (read_query(x, &q) < 0)
        return 1;
    const char *name = path + PREFIX_LEN;
    if (*name == '/')
        name++;
    if (!*name) {
        list_aggregates(st, x, &q, now_ms);
        return 1;
    }
    if (!name_valid(name)) {
        char d[160];
        snprintf(d, sizeof d,
                 "'%.64s' is not an aggregate name (1 to 64 of a-z 0-9 _); the path is "
                 "/api/v1/aggregates/NAME",
                 name);
        http_respond_problem(x, 404, NULL, d);
        return 1;
    }
    one_aggregate(st, x, name, &q, now_ms);
    return 1;
}
