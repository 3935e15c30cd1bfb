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
    int log_requests; /* one line per request on stderr */
};

/* Opens the writer and the read stores on db_path (which must be an
 * initialized node database). */
int api_new(uv_loop_t *loop, const struct api_options *opt, struct api **out, struct op_error *err);

/* Frees everything; call after the server has stopped and the loop has no
 * queued work. NULL is allowed. */
void api_free(struct api *a);

/* For the open-connections gauge. */
void api_set_server(struct api *a, struct http_server *server);

/* Applies changed options (SIGHUP): session_ttl_s and log_requests. */
void api_set_options(struct api *a, unsigned session_ttl_s, int log_requests);

/* Requests currently queued or running on the thread pool. */
unsigned api_pending(const struct api *a);

/* The http_server callbacks; ctx is the struct api. */
void api_handle(void *ctx, struct http_exchange *x);
void api_log(void *ctx, const struct http_log_entry *entry);

#endif
