/*
 * Building API answers; see api_reply.h. The problem+json shape comes
 * from problem.h, shared with HQ and the tus server; the mapping of store
 * errors lives only here, so every handler words its errors the same way.
 */
#include "api_reply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_route.h"
#include "http_server.h"
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

void api_reply_problem(struct api_response *r, int status, const char *detail, const char *pointer)
{
    api_reply_json(r, status, problem_json(status, detail, pointer));
    r->type = PROBLEM_CONTENT_TYPE;
}

void api_reply_store_error(struct api_response *r, int rc, const struct op_error *err)
{
    const char *msg = err->msg[0] ? err->msg : strerror(rc < 0 && rc > -4096 ? -rc : EIO);
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
        api_reply_problem(r, 500, msg, NULL);
        return;
    }
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
    if (r->www_authenticate)
        out[n++] = (struct api_header){"WWW-Authenticate", "Bearer realm=\"outpost\""};
    if (r->no_store)
        out[n++] = (struct api_header){"Cache-Control", "no-store"};
    return n;
}
