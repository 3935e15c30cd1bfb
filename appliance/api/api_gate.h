/*
 * The API's gate (http_server.h): who is asking is settled as soon as a
 * request's headers are complete, before a byte of its body is read or
 * 100 Continue is sent, so a client without credentials costs a header
 * section and never a body. The bearer token is looked up on the thread
 * pool (the lookup needs the database); the user found travels with the
 * exchange to the handler, which does not look it up again. The
 * invariant: a request reaches the handler only authenticated, or on a
 * route that needs no credentials (login, logout, the contact's
 * confirmation link) with a body of at most API_GATE_OPEN_BODY_MAX bytes.
 */
#ifndef OUTPOST_API_GATE_H
#define OUTPOST_API_GATE_H

#include <uv.h>

#include "api_db.h"
#include "api_route.h"
#include "auth.h"
#include "http_server.h"

/* The body cap of the routes that need no credentials: a login
 * ({"name", "password"}, the password at most AUTH_PASSWORD_MAX_BYTES) or a
 * confirmation. */
#define API_GATE_OPEN_BODY_MAX 8192

/* Loop thread: matches x's route into r and answers x at once when
 * api_dispatch_early has the answer (/healthz, unknown paths). Returns 1
 * when x is answered (and gone), 0 when the request goes on. */
int api_gate_early(struct http_exchange *x, struct api_route *r);

/* Decides about x on the loop thread: answers /healthz and unknown paths
 * at once (api_dispatch_early); lets login, logout and confirmation pass
 * with a body of at most API_GATE_OPEN_BODY_MAX bytes; answers 401 with
 * WWW-Authenticate at once when a request carries no bearer token; else
 * looks the token up on loop's thread pool (*pending counts it while
 * queued) and then passes x (a body up to the server's max_body_bytes)
 * with the user attached, or answers 401 (unknown, expired or revoked),
 * 503 with Retry-After (no free read connection, shutting down) or the
 * store's error. */
void api_gate_check(uv_loop_t *loop, struct api_db *db, unsigned *pending, struct http_exchange *x);

/* The user the gate authenticated for x, or NULL (no gate, or a route
 * that needs no credentials). Valid while x is. */
const struct auth_user *api_gate_user(const struct http_exchange *x);

#endif
