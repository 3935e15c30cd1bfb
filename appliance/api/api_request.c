/*
 * Copying a request off its exchange and reading its parts; see
 * api_request.h.
 */
#include "api_request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

/* The remote address without its port ("192.0.2.4", "2001:db8::1"). */
static void client_ip(const char *remote, char *out, size_t cap)
{
    snprintf(out, cap, "%s", remote);
    char *colon = strrchr(out, ':');
    if (colon && out[0] != '[')
        *colon = '\0';
    else if (out[0] == '[') {
        char *end = strchr(out, ']');
        if (end) {
            memmove(out, out + 1, (size_t)(end - out - 1));
            out[end - out - 1] = '\0';
        }
    }
}

int api_request_init(struct api_request *r, const struct api_request_view *v)
{
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", v->method);
    client_ip(v->remote ? v->remote : "", r->ip, sizeof r->ip);
    r->query = strdup(v->query ? v->query : "");
    size_t blen = v->body ? v->body_len : 0;
    if (blen) {
        r->body = malloc(blen + 1);
        if (r->body) {
            memcpy(r->body, v->body, blen);
            r->body[blen] = '\0';
            r->body_len = blen;
        }
    }
    const char *auth = v->authorization;
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        if (strlen(t) < AUTH_TOKEN_BUF)
            r->bearer = strdup(t);
    }
    if (v->idempotency_key) {
        r->has_idempotency_key = 1;
        r->idempotency_key_len = strlen(v->idempotency_key);
        snprintf(r->idempotency_key, sizeof r->idempotency_key, "%s", v->idempotency_key);
    }
    if (v->if_match) {
        r->has_if_match = 1;
        snprintf(r->if_match, sizeof r->if_match, "%s", v->if_match);
    }
    if (v->content_type)
        snprintf(r->content_type, sizeof r->content_type, "%s", v->content_type);
    if (v->user) {
        r->has_user = 1;
        r->user = *v->user;
    }
    if ((blen && !r->body) || !r->query) {
        api_request_done(r);
        return -ENOMEM;
    }
    return 0;
}

void api_request_done(struct api_request *r)
{
    free(r->query);
    r->query = NULL;
    free(r->body);
    r->body = NULL;
    if (r->bearer) {
        memset(r->bearer, 0, strlen(r->bearer));
        free(r->bearer);
        r->bearer = NULL;
    }
}

void api_call_done(struct api_call *c)
{
    api_request_done(&c->req);
    api_reply_done(&c->resp);
}

/* The body as JSON of the type `want` (JSON_OBJECT or JSON_ARRAY). */
static json_t *body_json(const struct api_request *r, struct api_response *resp, json_type want)
{
    if (r->content_type[0] && strncasecmp(r->content_type, "application/json", 16)) {
        api_reply_problem(resp, 415, "send the body as application/json", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *o = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        api_reply_problem(resp, 400, msg, NULL);
        return NULL;
    }
    if (json_typeof(o) != want) {
        json_decref(o);
        api_reply_problem(resp, 400,
                          want == JSON_ARRAY ? "the body must be a JSON array"
                                             : "the body must be a JSON object",
                          NULL);
        return NULL;
    }
    return o;
}

json_t *api_request_json(const struct api_request *r, struct api_response *resp)
{
    return body_json(r, resp, JSON_OBJECT);
}

json_t *api_request_json_array(const struct api_request *r, struct api_response *resp)
{
    return body_json(r, resp, JSON_ARRAY);
}

int64_t api_request_if_match(const struct api_request *r)
{
    const char *v = r->if_match;
    if (!strcmp(v, "*"))
        return 0;
    if (!strncmp(v, "W/", 2))
        v += 2;
    if (*v != '"')
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v + 1, &end, 10);
    if (errno || end == v + 1 || *end != '"' || end[1] || n < 1)
        return -1;
    return n;
}
