/*
 * One API request as a worker thread sees it. The exchange belongs to
 * the loop thread, so before a request is queued the parts the handlers
 * read are copied out of it; what a handler gets is an api_call: that
 * copy, the route, and the response it builds. Also here: the readers of
 * a request's parts (JSON body, If-Match). The
 * invariant: a request owns its copies, and the bearer token is wiped
 * from memory when the request is freed.
 */
#ifndef OUTPOST_API_REQUEST_H
#define OUTPOST_API_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api_reply.h"
#include "api_route.h"

/* A request as http_server hands it over (http_method, http_path, ...):
 * borrowed strings, NULL for an absent header. */
struct api_request_view {
    const char *method;
    const char *path;   /* percent-decoded */
    const char *remote; /* "ip:port", "[v6]:port" */
    const char *query;  /* raw, without '?' */
    const char *body;
    size_t body_len;
    const char *authorization;
    const char *if_match;
    const char *content_type;
    const char *idempotency_key;
    const struct auth_user *user; /* authenticated before the body was read (api_gate.h), or NULL */
};

struct api_request {
    char method[8];
    char ip[64]; /* the client's address without its port, for audit rows and evidence */
    char *query; /* never NULL */
    char *body;  /* NUL-terminated copy, or NULL when empty */
    size_t body_len;
    char *bearer; /* the token of "Authorization: Bearer TOKEN", or NULL */
    char if_match[64];
    int has_if_match;
    char content_type[128];
    char idempotency_key[160];  /* Idempotency-Key as sent (cut at 159 bytes) */
    size_t idempotency_key_len; /* its full length */
    int has_idempotency_key;    /* the header was sent */
    int has_user;               /* the gate authenticated the request: user is who */
    struct auth_user user;      /* copied from the view */
};

/* What every handler gets: the request, its route, the answer. */
struct api_call {
    struct api_route route;
    struct api_request req;
    struct api_response resp;
};

/* Copies the view into r. Strings longer than r's fields are cut; a
 * bearer token of AUTH_TOKEN_BUF bytes or more is not taken (the request
 * then has no credentials). Returns 0, or -ENOMEM with r freed. */
int api_request_init(struct api_request *r, const struct api_request_view *v);

/* Frees r's copies and wipes the bearer token. */
void api_request_done(struct api_request *r);

/* Frees the request and the response of c (not c itself). */
void api_call_done(struct api_call *c);

/* The body as a JSON object (the caller owns it), or NULL after
 * answering 415 (a Content-Type other than application/json), 400 with
 * line and column (not JSON, or a key twice) or 400 (not an object). An
 * empty body is not JSON. */
json_t *api_request_json(const struct api_request *r, struct api_response *resp);

/* The body as a JSON array, as api_request_json (400 "the body must be a
 * JSON array" for anything else). */
json_t *api_request_json_array(const struct api_request *r, struct api_response *resp);

/* If-Match: "N" or W/"N" gives N (at least 1), * gives 0; anything else
 * -1. Call only when r->has_if_match. */
int64_t api_request_if_match(const struct api_request *r);

#endif
