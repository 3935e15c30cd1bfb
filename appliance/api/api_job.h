/*
 * Job plumbing: an API request copied off its exchange on the loop
 * thread, run on the libuv thread pool, and answered from the after-work
 * callback back on the loop thread, where the exchange lives. The
 * invariant: every exchange handed to api_job_start is answered exactly
 * once: by the job, or at once with 503 when it cannot be queued, and
 * with 503 when the pool cancels it at shutdown.
 */
#ifndef OUTPOST_API_JOB_H
#define OUTPOST_API_JOB_H

#include <uv.h>

#include "api_reply.h"
#include "api_request.h"
#include "api_route.h"
#include "http_server.h"

/* A step of a job; ctx is what api_job_start was given. */
typedef void (*api_job_fn)(void *ctx, struct api_call *c);

/* Copies the request off x (api_request_init) with its matched route r,
 * runs work(ctx, call) on loop's thread pool, then on the loop thread
 * done(ctx, call) (also for a job cancelled at shutdown, which is
 * answered 503 first) and sends the call's answer on x. Returns 0 when
 * queued; otherwise x is already answered 503 ("out of memory", "cannot
 * queue the request") and the negative errno comes back. */
int api_job_start(uv_loop_t *loop, struct http_exchange *x, const struct api_route *r,
                  api_job_fn work, api_job_fn done, void *ctx);

#endif
