/*
 * The JSON API under /api/v1, plus /healthz and /metrics, on top of
 * http_server. Requests are routed on the loop thread and executed on the
 * libuv thread pool (see docs/OUTPOSTD.md): reads on one read-only store
 * per worker, writes on the single writer store under a mutex. The loop
 * thread never waits for SQLite.
 *
 * Invariants: every request is authenticated (except /healthz and login),
 * authorized by role before any store call, and answered exactly once;
 * errors are RFC 9457 problem+json naming the field (JSON pointer) where
 * there is one.
 */
#ifndef OUTPOST_API_H
#define OUTPOST_API_H

#include <uv.h>

#include "http_server.h"
#include "op_error.h"

struct api;

struct api_options {
    const char *db_path;
    unsigned workers; /* read connections (match UV_THREADPOOL_SIZE) */
    unsigned session_ttl_s;
    int log_requests;        /* one line per request on stderr */
    const char *policy_file; /* region policy; NULL: $OUTPOST_POLICY, else the region's profile */
};

/* Opens the writer and the read stores on db_path (which must be an
 * initialized node database) and loads the node's region policy, which
 * the writer obeys (a missing or invalid policy fails, err naming the
 * file, line and key). */
int api_new(uv_loop_t *loop, const struct api_options *opt, struct api **out, struct op_error *err);

/* Frees everything; call after the server has stopped and the loop has no
 * queued work. NULL is allowed. */
void api_free(struct api *a);

/* For the open-connections gauge. */
void api_set_server(struct api *a, struct http_server *server);

/* Applies changed options (SIGHUP): session_ttl_s and log_requests. */
void api_set_options(struct api *a, unsigned session_ttl_s, int log_requests);

/* Loads the region policy again (SIGHUP) and swaps it in; on failure the
 * running policy stays and err says why ("FILE:LINE: KEY: ..."). */
int api_reload_policy(struct api *a, struct op_error *err);

/* Replaces the policy (ownership passes to the api) under the writer lock
 * and frees the old one. */
struct policy;
void api_set_policy(struct api *a, struct policy *p);

/* The SHA-256 of the running policy file, "" if none. */
const char *api_policy_hash(const struct api *a);

/* Queues a retention run (retention.h) on the thread pool with the
 * writer store, in slices that let API writes through in between. `done`
 * is called on the loop thread with 0 or the negative error, the number
 * of records purged and the error detail. Returns 0 or a negative errno. */
typedef void (*api_retention_cb)(void *ctx, int rc, uint64_t purged, const struct op_error *err);
int api_run_retention(struct api *a, api_retention_cb done, void *ctx);

/* Where /metrics gets the sync figures: get(ctx) returns the status as
 * of the uplink's last ledger job, or NULL (no outpost_sync_* series).
 * Called on the loop thread; NULL get turns it off. */
struct sync_status;
void api_set_sync_source(struct api *a, const struct sync_status *(*get)(void *ctx), void *ctx);

/* Requests currently queued or running on the thread pool. */
unsigned api_pending(const struct api *a);

/* The http_server callbacks; ctx is the struct api. api_gate
 * authenticates a request before its body is read (api_gate.h). */
void api_gate(void *ctx, struct http_exchange *x);
void api_handle(void *ctx, struct http_exchange *x);
void api_log(void *ctx, const struct http_log_entry *entry);

/* Serves one request on the calling thread, through the same route
 * table, dispatch, handlers and finish as api_handle but without the
 * thread pool or a socket (tests drive the API this way). req is a
 * request as http_server hands it over (api_request.h); *out receives
 * the answer as api_handle would send it (api_reply.h), to be freed with
 * api_reply_done. Returns 0, or -ENOMEM when the request could not be
 * copied. The request log and the request counters are not touched. */
struct api_request_view;
struct api_response;
int api_serve(struct api *a, const struct api_request_view *req, struct api_response *out);

#endif
