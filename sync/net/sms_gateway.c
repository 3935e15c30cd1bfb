/*
 * SMS over an HTTP gateway with libcurl's easy interface; see
 * sms_gateway.h.
 */
#include "sms_gateway.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_curl.h"

#define ANSWER_MAX 4096 /* the gateway's answer kept; the rest is dropped */

int sms_gateway_global_init(struct op_error *err)
{
    return net_curl_global_init(err);
}

/* The host of http[s]://host[:port][/path]; 0 or -EINVAL. */
static int url_host(const char *url, char *host, size_t cap)
{
    static const char *const schemes[] = {"http", "https", NULL};
    long port;
    const char *rest;
    if (net_curl_host(url, schemes, host, cap, &port, &rest) < 0)
        return -EINVAL;
    if (*rest && *rest != '/')
        return -EINVAL;
    for (; *rest; rest++)
        if ((unsigned char)*rest <= 0x20 || (unsigned char)*rest >= 0x7f || strchr("?#", *rest))
            return -EINVAL;
    return 0;
}

int sms_gateway_parse(const char *spec, enum sms_gateway_kind *kind, char *url, const char *key,
                      struct op_error *err)
{
    const char *u = NULL;
    if (spec && !strncmp(spec, "kannel:", 7)) {
        *kind = SMS_GATEWAY_KANNEL;
        u = spec + 7;
    } else if (spec && !strncmp(spec, "json:", 5)) {
        *kind = SMS_GATEWAY_JSON;
        u = spec + 5;
    }
    char host[256];
    if (!u || strlen(u) >= SMS_GATEWAY_URL_MAX || url_host(u, host, sizeof host) < 0)
        return op_error_set(err, -EINVAL, key,
                            "%s: '%.128s' is not kannel:URL or json:URL with an http(s)://HOST"
                            "[:PORT]/PATH URL (no query)",
                            key, spec ? spec : "");
    snprintf(url, SMS_GATEWAY_URL_MAX, "%s", u);
    return 0;
}

int sms_gateway_is_loopback(const char *url)
{
    char host[256];
    if (!url || url_host(url, host, sizeof host) < 0)
        return 0;
    return !strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strncmp(host, "127.", 4);
}

/* Appends s to the growing buffer; -1 when out of memory. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static int put(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int put_json_escaped(struct sbuf *b, const char *v)
{
    json_t *s = json_string(v ? v : "");
    char *d = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    if (!d)
        return -1;
    size_t n = strlen(d); /* "..." without the quotes */
    int rc = n >= 2 ? put(b, d + 1, n - 2) : -1;
    free(d);
    return rc;
}

char *sms_gateway_json_body(const char *tmpl, const char *to, const char *text, const char *ref)
{
    if (!tmpl || !strstr(tmpl, "{to}") || !strstr(tmpl, "{text}"))
        return NULL;
    struct sbuf b = {0};
    for (const char *p = tmpl; *p;) {
        const char *v = NULL;
        size_t skip = 0;
        if (!strncmp(p, "{to}", 4))
            v = to, skip = 4;
        else if (!strncmp(p, "{text}", 6))
            v = text, skip = 6;
        else if (!strncmp(p, "{ref}", 5))
            v = ref, skip = 5;
        int rc = skip ? put_json_escaped(&b, v) : put(&b, p, 1);
        if (rc < 0) {
            free(b.p);
            return NULL;
        }
        p += skip ? skip : 1;
    }
    return b.p;
}

static size_t write_cb(char *data, size_t size, size_t n, void *ctx)
{
    struct sbuf *b = ctx;
    size_t len = size * n;
    size_t room = b->len < ANSWER_MAX ? ANSWER_MAX - b->len : 0;
    if (room && put(b, data, len < room ? len : room) < 0)
        return 0;
    return len;
}

/* The answer as one line of printable text, at most cap-1 bytes. */
static void answer_words(const char *a, char *out, size_t cap)
{
    size_t o = 0;
    for (; a && *a && o + 1 < cap; a++) {
        unsigned char c = (unsigned char)*a;
        out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* The id at member path "a" or "a.b" of a JSON answer. */
static void read_id(const char *answer, const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *root = json_loads(answer ? answer : "", 0, NULL);
    json_t *v = root;
    char part[128];
    for (const char *p = path && *path ? path : "id"; v && *p;) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof part)
            n = sizeof part - 1;
        memcpy(part, p, n);
        part[n] = '\0';
        v = json_is_object(v) ? json_object_get(v, part) : NULL;
        p += n;
        if (*p == '.')
            p++;
    }
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    json_decref(root);
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c == 0x7f)
            *c = '_';
}

static int add_param(struct sbuf *b, CURL *h, const char *name, const char *value)
{
    char *e = curl_easy_escape(h, value ? value : "", 0);
    if (!e)
        return -1;
    int rc = put(b, b->len ? "&" : "", b->len ? 1 : 0);
    if (rc == 0)
        rc = put(b, name, strlen(name));
    if (rc == 0)
        rc = put(b, "=", 1);
    if (rc == 0)
        rc = put(b, e, strlen(e));
    curl_free(e);
    return rc;
}

/* The Kannel sendsms URL with its query. */
static char *kannel_url(CURL *h, const struct sms_message *m)
{
    struct sbuf q = {0};
    int rc = add_param(&q, h, "username", m->user);
    if (rc == 0)
        rc = add_param(&q, h, "password", m->password);
    if (rc == 0 && m->from && *m->from)
        rc = add_param(&q, h, "from", m->from);
    if (rc == 0)
        rc = add_param(&q, h, "to", m->to);
    if (rc == 0)
        rc = add_param(&q, h, "text", m->text);
    if (rc == 0)
        rc = add_param(&q, h, "charset", "UTF-8");
    if (rc == 0 && m->ucs2)
        rc = add_param(&q, h, "coding", "2");
    if (rc == 0 && m->dlr_url && *m->dlr_url) {
        rc = add_param(&q, h, "dlr-mask", "19");
        if (rc == 0)
            rc = add_param(&q, h, "dlr-url", m->dlr_url);
    }
    struct sbuf u = {0};
    if (rc == 0)
        rc = put(&u, m->url, strlen(m->url));
    if (rc == 0)
        rc = put(&u, "?", 1);
    if (rc == 0)
        rc = put(&u, q.p, q.len);
    if (q.p)
        explicit_bzero(q.p, q.len);
    free(q.p);
    if (rc < 0) {
        free(u.p);
        return NULL;
    }
    return u.p;
}

int sms_gateway_send(const struct sms_message *m, struct sms_result *r)
{
    memset(r, 0, sizeof *r);
    r->outcome = SMS_TEMPORARY;
    CURL *h = curl_easy_init();
    char *url = NULL, *body = NULL;
    struct curl_slist *headers = NULL;
    struct sbuf answer = {0};
    if (!h) {
        snprintf(r->detail, sizeof r->detail, "cannot start an HTTP request (out of memory)");
        return -EIO;
    }
    if (m->kind == SMS_GATEWAY_KANNEL) {
        url = kannel_url(h, m);
    } else {
        body = sms_gateway_json_body(m->json_body, m->to, m->text, m->ref);
        char auth[600];
        headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (m->auth && *m->auth) {
            snprintf(auth, sizeof auth, "Authorization: %s", m->auth);
            headers = curl_slist_append(headers, auth);
            explicit_bzero(auth, sizeof auth);
        }
    }
    if ((m->kind == SMS_GATEWAY_KANNEL && !url) ||
        (m->kind == SMS_GATEWAY_JSON && (!body || !headers))) {
        snprintf(r->detail, sizeof r->detail, "cannot build the gateway request");
        r->outcome = SMS_PERMANENT;
        goto out;
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    net_curl_common(h, url ? url : m->url, "http,https", m->timeout_ms, 30000L, m->ca_file, ebuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0, sent_bytes = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent_bytes);
    r->status = status;
    char words[200];
    answer_words(answer.p, words, sizeof words);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        r->outcome = SMS_SENT;
        if (m->kind == SMS_GATEWAY_JSON)
            read_id(answer.p, m->json_id, r->gateway_id, sizeof r->gateway_id);
        snprintf(r->detail, sizeof r->detail, "%ld %s", status, words);
    } else if (rc == CURLE_OK && status >= 500) {
        r->outcome = SMS_TEMPORARY;
        snprintf(r->detail, sizeof r->detail, "the gateway deferred the message: %ld %s", status,
                 words);
    } else if (rc == CURLE_OK) {
        /* 4xx (and anything else unexpected): this message or the node's
         * credentials were refused; retrying would not change that */
        r->outcome = SMS_PERMANENT;
        snprintf(r->detail, sizeof r->detail, "the gateway refused the message: %ld %s", status,
                 words);
    } else if (sent_bytes > 0 && (rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
                                  rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_PARTIAL_FILE)) {
        r->outcome = SMS_UNKNOWN;
        snprintf(r->detail, sizeof r->detail,
                 "the connection was lost after the request was written: %s",
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
    } else {
        r->outcome = SMS_TEMPORARY;
        snprintf(r->detail, sizeof r->detail, "cannot reach the gateway: %s",
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
    }
out:
    if (url) {
        explicit_bzero(url, strlen(url));
        free(url);
    }
    if (body) {
        explicit_bzero(body, strlen(body));
        free(body);
    }
    curl_slist_free_all(headers);
    free(answer.p);
    curl_easy_cleanup(h);
    return r->outcome == SMS_SENT ? 0 : -EIO;
}
