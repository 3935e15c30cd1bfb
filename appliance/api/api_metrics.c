/*
 * /metrics for the API; see api_metrics.h.
 */
#include "api_metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "hlc.h"
#include "metrics.h"
#include "outpost_config.h"

struct api_metrics {
    struct metrics *counts;
    char db_path[1024];
    uint64_t started_ms;
    struct http_server *server;
    const struct sync_status *(*sync_get)(void *ctx); /* may be NULL */
    void *sync_ctx;
};

struct api_metrics *api_metrics_new(const char *db_path)
{
    struct api_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->counts = metrics_new();
    if (!m->counts) {
        free(m);
        return NULL;
    }
    snprintf(m->db_path, sizeof m->db_path, "%s", db_path);
    m->started_ms = hlc_wall_ms(NULL);
    return m;
}

void api_metrics_free(struct api_metrics *m)
{
    if (!m)
        return;
    metrics_free(m->counts);
    free(m);
}

void api_metrics_set_server(struct api_metrics *m, struct http_server *server)
{
    m->server = server;
}

void api_metrics_set_sync_source(struct api_metrics *m, const struct sync_status *(*get)(void *ctx),
                                 void *ctx)
{
    m->sync_get = get;
    m->sync_ctx = ctx;
}

void api_metrics_observe(struct api_metrics *m, const char *label, int status, double duration_ms)
{
    metrics_observe(m->counts, label, status, duration_ms);
}

void api_metrics_authorize(struct api_call *c, const struct auth_user *u)
{
    if (u->role != AUTH_ROLE_MANAGER && u->role != AUTH_ROLE_ADMIN) {
        api_reply_problem(&c->resp, 403, "metrics are for the manager and admin roles", NULL);
        return;
    }
    c->resp.status = 200; /* rendered on the loop thread, where the counters live */
}

static uint64_t db_bytes(const char *path)
{
    uint64_t total = 0;
    struct stat st;
    char wal[1100];
    if (stat(path, &st) == 0)
        total += (uint64_t)st.st_size;
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (stat(wal, &st) == 0)
        total += (uint64_t)st.st_size;
    return total;
}

void api_metrics_render(struct api_metrics *m, struct api_response *resp)
{
    struct metrics_gauges g = {
        .open_connections = m->server ? http_server_connections(m->server) : 0,
        .db_bytes = db_bytes(m->db_path),
        .uptime_s = (hlc_wall_ms(NULL) - m->started_ms) / 1000u,
        .sync = m->sync_get ? m->sync_get(m->sync_ctx) : NULL,
        .version = OUTPOST_VERSION,
        .start_s = (double)m->started_ms / 1000.0,
    };
    free(resp->body);
    resp->body = NULL;
    if (metrics_render(m->counts, &g, &resp->body, &resp->body_len) < 0) {
        api_reply_problem(resp, 500, "out of memory", NULL);
    } else {
        resp->type = "text/plain; version=0.0.4; charset=utf-8";
    }
}
