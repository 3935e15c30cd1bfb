/*
 * The answer to one API request as a handler builds it: status, body,
 * the few headers the API sets, and the user for the log line. Bodies are
 * JSON, and every error is an RFC 9457 problem+json naming the field by
 * JSON pointer where there is one; store and auth errors map to statuses
 * in one place. The invariant: a response holds one body at a time (a new
 * one frees the old), and its headers come out in one fixed order.
 */
#ifndef OUTPOST_API_REPLY_H
#define OUTPOST_API_REPLY_H

#include <jansson.h>
#include <stddef.h>

#include "auth.h"
#include "op_error.h"

struct api_response {
    int status;                   /* 0 until a handler answers */
    char *body;                   /* malloc'd, or NULL for no body */
    size_t body_len;              /* bytes of body */
    const char *type;             /* Content-Type of body, a literal */
    char user[AUTH_NAME_MAX + 1]; /* who asked, for the log line; "" if unknown */
    char etag[32];                /* ETag; "" for none */
    char location[160];           /* Location; "" for none */
    char retry_after[24];         /* Retry-After, seconds; "" for none */
    const char *allow;            /* Allow (a 405), a literal (api_route_allow); NULL for none */
    int www_authenticate;         /* WWW-Authenticate: Bearer realm="outpost" */
    int no_store;                 /* Cache-Control: no-store */
    int replayed;                 /* Idempotency-Replayed: true (api_idempotency.h) */
};

/* Frees the body; r may then be dropped or reused for a new answer.
 * NULL is allowed. */
void api_reply_done(struct api_response *r);

/* Sets status and a JSON body (compact), taking the reference to body;
 * body NULL answers without one. Out of memory leaves no body. */
void api_reply_json(struct api_response *r, int status, json_t *body);

/* Sets status and a body of JSON text already written (the buffer's bytes
 * are taken; json is left empty). */
struct buf;
void api_reply_text(struct api_response *r, int status, struct buf *json);

/* Sets an application/problem+json answer: type, title (the status's
 * reason phrase), status and detail; with pointer (a field name, or
 * "custom.NAME" for a custom field) also errors[0] with the JSON pointer
 * ("/email", "/custom/NAME") and the same detail. A detail that is
 * internal (api_reply_detail_is_internal) is logged and replaced by what
 * the status means for the client's request. */
void api_reply_problem(struct api_response *r, int status, const char *detail, const char *pointer);

/* What a client may be told of detail for an answer with status: detail
 * itself; with its file paths said as "on the node" (written into buf);
 * or, when it carries internal text, what the status means for the
 * client's request (a fixed string). The original goes to the log. */
const char *api_reply_client_detail(int status, const char *detail, char *buf, size_t cap);

/* 1 when detail carries text that is not for a client: SQLite's wording
 * ("constraint failed", "no such table"), a library's names ("HPE_"), or
 * an absolute file path ("/var/lib/outpost/node.db"); else 0. */
int api_reply_detail_is_internal(const char *detail);

/* Answers a negative store or auth error (store.h, auth.h) with its
 * problem: -EINVAL 422 with a pointer when err names a field, else 400;
 * -ENOENT 404; STORE_EVERSION 412; STORE_EDUP 409 with existing_id and
 * existing (its URL); -EEXIST 409; -EBUSY 503 with Retry-After; -ENOSPC
 * 507; anything else 500. The detail is err's message when it is written
 * for the client; a constraint SQLite enforced is said in product terms
 * (UNIQUE 409 "another record already has this email", NOT NULL 422
 * "name is required", with the pointer; CHECK and FOREIGN KEY 422); a 500
 * and any other internal text get a fixed detail, and err's message goes
 * to the log. */
void api_reply_store_error(struct api_response *r, int rc, const struct op_error *err);

/* Answers 405 for method on a route that takes allow (api_route_allow):
 * the Allow header and a detail naming both, "method PUT not allowed
 * here (allowed: GET, HEAD, POST)". */
void api_reply_method_not_allowed(struct api_response *r, const char *method, const char *allow);

/* Sets ETag to the record's version: "N". */
void api_reply_etag(struct api_response *r, const json_t *rec);

/* Answers a store call's result rc about one record: on success the
 * record rec with its ETag and status, on failure the store error with
 * err (api_reply_store_error). Takes rec (may be NULL) either way. */
void api_reply_record(struct api_response *r, int rc, const struct op_error *err, int status,
                      json_t *rec);

/* One response header; both strings live as long as the response. */
struct api_header {
    const char *name;
    const char *value;
};
#define API_REPLY_HEADERS_MAX 7

/* The headers to send, in the order they are sent: ETag, Location,
 * Retry-After, Allow, WWW-Authenticate, Cache-Control, Idempotency-Replayed.
 * Returns how many. */
unsigned api_reply_headers(const struct api_response *r,
                           struct api_header out[API_REPLY_HEADERS_MAX]);

struct http_exchange;

/* Answers x with resp: the user for the log line, resp's headers in
 * their order, the body. x is gone afterwards; resp is not freed. */
void api_reply_send(struct http_exchange *x, const struct api_response *resp);

#endif
