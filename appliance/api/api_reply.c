/*
 * Building API answers; see api_reply.h. The problem+json shape comes
 * from problem.h, shared with HQ and the tus server; the mapping of store
 * errors lives only here, so every handler words its errors the same way.
 * It is also where internal text stops: a detail that carries SQLite's
 * wording, a library's or a file's path never reaches the client, whose
 * answer says in product terms what was wrong; the text itself goes to
 * the log (escaped, log.h) for the person who runs the node.
 */
#include "api_reply.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_route.h"
#include "buf.h"
#include "http_server.h"
#include "log.h"
#include "problem.h"
#include "store.h"

void api_reply_done(struct api_response *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

void api_reply_json(struct api_response *r, int status, json_t *body)
{
    r->status = status;
    free(r->body);
    r->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    r->body_len = r->body ? strlen(r->body) : 0;
    r->type = "application/json";
    json_decref(body);
}

void api_reply_text(struct api_response *r, int status, struct buf *json)
{
    r->status = status;
    free(r->body);
    r->body = buf_take(json, &r->body_len);
    if (!r->body) { /* nothing was written, or out of memory: no body */
        r->body_len = 0;
        buf_done(json);
    }
    r->type = "application/json";
}

static json_t *problem_json(int status, const char *detail, const char *pointer)
{
    json_t *p = problem_new(status, http_status_text(status), detail);
    if (p && pointer && *pointer) {
        char ptr[80];
        if (!strncmp(pointer, "custom.", 7)) /* a custom field lives at /custom/NAME */
            snprintf(ptr, sizeof ptr, "/custom/%s", pointer + 7);
        else
            snprintf(ptr, sizeof ptr, "/%s", pointer);
        json_object_set_new(p, "errors",
                            json_pack("[{s:s, s:s}]", "pointer", ptr, "detail", detail));
    }
    return p;
}

/* Words that only SQLite, the C library or the HTTP parser use: a detail
 * with one of them was not written for a client. */
static const char *const internal_words[] = {
    "sqlite",         "constraint", "no such table", "no such column", "syntax error", "disk i/o",
    "unable to open", "disk image", "hpe_",          "database table", "sql ",
};

static int has_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    for (; *s; s++)
        if (!strncasecmp(s, w, n))
            return 1;
    return 0;
}

/* Where an absolute file path starts in s ('/' at the start or after a
 * space, quote or bracket, then a name and another '/', as in
 * "/var/lib/outpost/node.db"), or NULL; the API's own paths ("POST
 * /api/v1/session") are the client's to know. */
static const char *find_path(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p != '/' || !(p == s || strchr(" \t'\"(=:", p[-1])))
            continue;
        if (!strncmp(p, API_PREFIX "/", sizeof API_PREFIX))
            continue;
        const char *q = p + 1;
        while (*q && (isalnum((unsigned char)*q) || strchr("._-", *q)))
            q++;
        if (q > p + 1 && *q == '/')
            return p;
    }
    return NULL;
}

static int has_internal_word(const char *detail)
{
    for (size_t i = 0; i < sizeof internal_words / sizeof internal_words[0]; i++)
        if (has_word(detail, internal_words[i]))
            return 1;
    return 0;
}

int api_reply_detail_is_internal(const char *detail)
{
    if (!detail)
        return 0;
    return has_internal_word(detail) || find_path(detail) != NULL;
}

/* What a client is told when the detail was internal: the status's
 * meaning for a request to the CRM, and that nothing was written. */
static const char *generic_detail(int status)
{
    switch (status) {
    case 400:
    case 422:
        return "the request was refused: a value in it is not allowed; nothing was written";
    case 404:
        return "no such record";
    case 409:
        return "the request conflicts with the stored records; nothing was written";
    case 410:
        return "the record is no longer available";
    default:
        return status >= 500 ? "the node could not complete the request; nothing was written "
                               "(the node's log says why)"
                             : "the request was refused; nothing was written";
    }
}

const char *api_reply_client_detail(int status, const char *detail, char *buf, size_t cap)
{
    if (detail && has_internal_word(detail)) {
        log_warning("answered %d for internal error: %s", status, detail);
        return generic_detail(status);
    }
    if (detail && find_path(detail) && cap) {
        /* The rest was written for the client ("custom.shoe: not a custom
         * field ... (see the region policy /etc/outpost/EU-DE.yaml)"): keep
         * it, and say "on the node" for each path. */
        log_warning("answered %d naming a file: %s", status, detail);
        size_t o = 0;
        const char *d = detail, *p;
        while ((p = find_path(d)) && o < cap) {
            int n = snprintf(buf + o, cap - o, "%.*son the node", (int)(p - d), d);
            o += n > 0 ? (size_t)n : 0;
            d = p + strcspn(p, " \t'\"),;");
        }
        if (o < cap)
            snprintf(buf + o, cap - o, "%s", d);
        return buf;
    }
    return detail;
}

void api_reply_problem(struct api_response *r, int status, const char *detail, const char *pointer)
{
    char redacted[512];
    detail = api_reply_client_detail(status, detail, redacted, sizeof redacted);
    api_reply_json(r, status, problem_json(status, detail, pointer));
    r->type = PROBLEM_CONTENT_TYPE;
}

/* A constraint SQLite enforced ("contact refused by the database: NOT
 * NULL constraint failed: contacts.name"), said as what was wrong with
 * the record, naming the field where SQLite names a column. Returns 1
 * and answers, or 0 for a message that is not one. */
static int constraint_reply(struct api_response *r, const char *msg)
{
    static const char unique[] = "UNIQUE constraint failed: ",
                      notnull[] = "NOT NULL constraint failed: ";
    const char *k;
    char field[64] = "", detail[160];
    int status = 422;
    if ((k = strstr(msg, unique)) || (k = strstr(msg, notnull))) {
        int is_unique = !strncmp(k, unique, sizeof unique - 1);
        /* "table.column", maybe several joined with ", ": the first column */
        const char *col = k + (is_unique ? sizeof unique : sizeof notnull) - 1;
        const char *dot = strchr(col, '.');
        col = dot ? dot + 1 : col;
        size_t n = strcspn(col, ", ");
        if (n == 0 || n >= sizeof field)
            return 0;
        for (size_t j = 0; j < n; j++)
            if (!isalnum((unsigned char)col[j]) && col[j] != '_')
                return 0;
        memcpy(field, col, n);
        field[n] = '\0';
        if (is_unique) {
            status = 409;
            snprintf(detail, sizeof detail, "another record already has this %s", field);
        } else {
            snprintf(detail, sizeof detail, "%s is required", field);
        }
    } else if (strstr(msg, "FOREIGN KEY constraint failed")) {
        snprintf(detail, sizeof detail, "%s",
                 "the record refers to a record that does not exist (an owner_id or another "
                 "id); nothing was written");
    } else if (strstr(msg, "CHECK constraint failed")) {
        snprintf(detail, sizeof detail, "%s",
                 "a value is outside what the record allows; nothing was written");
    } else {
        return 0;
    }
    log_warning("answered %d for a constraint: %s", status, msg);
    api_reply_problem(r, status, detail, field[0] ? field : NULL);
    return 1;
}

void api_reply_store_error(struct api_response *r, int rc, const struct op_error *err)
{
    const char *msg = err->msg[0] ? err->msg : strerror(rc < 0 && rc > -4096 ? -rc : EIO);
    if ((rc == -EINVAL || rc == -EEXIST) && constraint_reply(r, msg))
        return;
    switch (rc) {
    case -EINVAL:
        api_reply_problem(r, err->field[0] ? 422 : 400, msg, err->field);
        return;
    case -ENOENT:
        api_reply_problem(r, 404, msg, NULL);
        return;
    case -EPERM: /* a field user's rule (store.h) */
        api_reply_problem(r, 403, msg, err->field);
        return;
    case STORE_EVERSION:
        api_reply_problem(r, 412, msg, NULL);
        return;
    case STORE_EDUP: {
        json_t *p = problem_json(409, msg, err->field);
        if (p && err->ref[0]) { /* no ref: a record the caller may not see */
            char url[160];
            snprintf(url, sizeof url, "%s/contacts/%s", API_PREFIX, err->ref);
            json_object_set_new(p, "existing_id", json_string(err->ref));
            json_object_set_new(p, "existing", json_string(url));
        }
        api_reply_json(r, 409, p);
        r->type = PROBLEM_CONTENT_TYPE;
        return;
    }
    case -EEXIST:
        api_reply_problem(r, 409, msg, err->field);
        return;
    case -EBUSY:
        snprintf(r->retry_after, sizeof r->retry_after, "1");
        api_reply_problem(r, 503, "the database is busy; retry shortly", NULL);
        return;
    case -ENOSPC:
        api_reply_problem(r, 507, "the node's disk is full; nothing was written", NULL);
        return;
    default:
        /* An error the request did not cause: its text is the node's. */
        log_warning("answered 500: %s", msg);
        api_reply_problem(r, 500, generic_detail(500), NULL);
        return;
    }
}

void api_reply_method_not_allowed(struct api_response *r, const char *method, const char *allow)
{
    char msg[128];
    snprintf(msg, sizeof msg, "method %.16s not allowed here (allowed: %s)", method, allow);
    api_reply_problem(r, 405, msg, NULL);
    r->allow = allow;
}

void api_reply_etag(struct api_response *r, const json_t *rec)
{
    snprintf(r->etag, sizeof r->etag, "\"%lld\"",
             (long long)json_integer_value(json_object_get(rec, "version")));
}

void api_reply_record(struct api_response *r, int rc, const struct op_error *err, int status,
                      json_t *rec)
{
    if (rc < 0) {
        json_decref(rec);
        api_reply_store_error(r, rc, err);
        return;
    }
    api_reply_etag(r, rec);
    api_reply_json(r, status, rec);
}

unsigned api_reply_headers(const struct api_response *r,
                           struct api_header out[API_REPLY_HEADERS_MAX])
{
    unsigned n = 0;
    if (r->etag[0])
        out[n++] = (struct api_header){"ETag", r->etag};
    if (r->location[0])
        out[n++] = (struct api_header){"Location", r->location};
    if (r->retry_after[0])
        out[n++] = (struct api_header){"Retry-After", r->retry_after};
    if (r->allow)
        out[n++] = (struct api_header){"Allow", r->allow};
    if (r->www_authenticate)
        out[n++] = (struct api_header){"WWW-Authenticate", "Bearer realm=\"outpost\""};
    if (r->no_store)
        out[n++] = (struct api_header){"Cache-Control", "no-store"};
    if (r->replayed)
        out[n++] = (struct api_header){"Idempotency-Replayed", "true"};
    return n;
}

void api_reply_send(struct http_exchange *x, const struct api_response *resp)
{
    if (resp->user[0])
        http_set_user(x, resp->user);
    struct api_header h[API_REPLY_HEADERS_MAX];
    unsigned nh = api_reply_headers(resp, h);
    for (unsigned i = 0; i < nh; i++)
        (void)http_add_header(x, h[i].name, h[i].value);
    http_respond(x, resp->status, resp->body ? resp->type : NULL, resp->body,
                 resp->body ? resp->body_len : 0);
}
