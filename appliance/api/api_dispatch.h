/*
 * Dispatch: what answers a matched request, in three steps. On the loop
 * thread, the answers that need no worker (/healthz, unknown paths); on a
 * worker, the method check against the route, authentication, the role
 * check and the handler; back on the loop thread, the finish (/metrics
 * rendered, Cache-Control). The invariant: nothing reaches a handler
 * unauthenticated except login, logout and the contact's confirmation
 * link, and every call leaves with an answer.
 */
#ifndef OUTPOST_API_DISPATCH_H
#define OUTPOST_API_DISPATCH_H

#include "api_auth.h"
#include "api_db.h"
#include "api_metrics.h"
#include "api_reply.h"
#include "api_request.h"
#include "api_route.h"

/* Loop thread: /healthz (200 {"status":"ok"} for GET and HEAD, else 405
 * "use GET") and paths the route table does not know (404) are answered
 * here, without authentication and without the database. Returns 1 when
 * resp holds the answer, 0 when the request must go to a worker. */
int api_dispatch_early(const struct api_route *r, const char *method, struct api_response *resp);

/* Worker thread: runs the call. The session and confirmation routes
 * check the method (405 naming the methods allowed) and go to their
 * handler. Every other route takes a read connection (503 with
 * Retry-After when none is free), authenticates (401), then: /metrics
 * checks the role and ends with status 200 and no body, for
 * api_dispatch_finish to render (any method); CRM routes check the role
 * (403), then the method (405), then run the handler. */
void api_dispatch_run(struct api_db *db, struct api_auth *auth, struct api_call *c);

/* Loop thread, after api_dispatch_run: renders an authorized /metrics,
 * answers 500 if nothing answered, and marks the answer no-store. */
void api_dispatch_finish(struct api_metrics *m, struct api_call *c);

#endif
