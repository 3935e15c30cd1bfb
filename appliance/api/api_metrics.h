/*
 * /metrics for the API: who may read it, the request counts it keeps
 * (metrics.h), and the gauges read when it is rendered (open connections,
 * database size, uptime, and the sync figures when sync is on). The
 * invariant: counters and gauges are touched only on the loop thread; a
 * worker only decides whether the caller may see them.
 */
#ifndef OUTPOST_API_METRICS_H
#define OUTPOST_API_METRICS_H

#include "api_request.h"
#include "auth.h"
#include "http_server.h"

struct api_metrics;
struct sync_status;

/* Makes the counters, with db_path (copied) for the database size gauge
 * and now as the start of uptime. NULL when out of memory. */
struct api_metrics *api_metrics_new(const char *db_path);

/* Frees them; NULL is allowed. */
void api_metrics_free(struct api_metrics *m);

/* The server whose connections the open-connections gauge counts; NULL
 * reports 0. */
void api_metrics_set_server(struct api_metrics *m, struct http_server *server);

/* Where the outpost_sync_* figures come from: get(ctx) returns the
 * status as of the uplink's last ledger job, or NULL (no series); NULL
 * get turns them off. */
void api_metrics_set_sync_source(struct api_metrics *m, const struct sync_status *(*get)(void *ctx),
                                 void *ctx);

/* Counts one finished request under its route label (a literal of
 * api_route.h). Loop thread. */
void api_metrics_observe(struct api_metrics *m, const char *label, int status, double duration_ms);

/* Worker: /metrics is for the manager and admin roles; 403 for others,
 * else status 200 without a body, for api_metrics_render. */
void api_metrics_authorize(struct api_call *c, const struct auth_user *u);

/* Loop thread: renders everything into resp (Prometheus text 0.0.4); 500
 * when out of memory. */
void api_metrics_render(struct api_metrics *m, struct api_response *resp);

#endif
