/*
 * The API as outpostd sees it; see api.h. This file wires the parts
 * together (api_route, api_dispatch, api_job, api_db, api_auth,
 * api_metrics) and keeps what belongs to the daemon: start-up and
 * shutdown, settings SIGHUP changes, the policy swap, the retention runs
 * and the request log line. docs/ARCHITECTURE.md draws who calls whom.
 */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_db.h"
#include "api_dispatch.h"
#include "api_gate.h"
#include "api_job.h"
#include "api_metrics.h"
#include "api_reply.h"
#include "api_request.h"
#include "api_route.h"
#include "hlc.h"
#include "log.h"
#include "node_policy.h"
#include "policy.h"
#include "retention.h"
#include "store.h"

struct api {
    uv_loop_t *loop;
    struct api_options opt;
    char db_path[1024];
    struct api_db *db;
    struct api_auth *auth;
    struct api_metrics *metrics;
    unsigned pending;
};

/* ---- requests ------------------------------------------------------------ */

static void serve_work(void *ctx, struct api_call *c)
{
    struct api *a = ctx;
    api_dispatch_run(a->db, a->auth, c);
}

static void serve_done(void *ctx, struct api_call *c)
{
    struct api *a = ctx;
    a->pending--;
    api_dispatch_finish(a->metrics, c);
}

void api_handle(void *ctx, struct http_exchange *x)
{
    struct api *a = ctx;
    struct api_route r;
    if (api_gate_early(x, &r))
        return;
    if (api_job_start(a->loop, x, &r, serve_work, serve_done, a) == 0)
        a->pending++;
}

void api_gate(void *ctx, struct http_exchange *x)
{
    struct api *a = ctx;
    api_gate_check(a->loop, a->db, &a->pending, x);
}

int api_serve(struct api *a, const struct api_request_view *req, struct api_response *out)
{
    struct api_call c;
    memset(&c, 0, sizeof c);
    api_route_match(req->path, &c.route);
    if (!api_dispatch_early(&c.route, req->method, &c.resp)) {
        int rc = api_request_init(&c.req, req);
        if (rc < 0)
            return rc;
        api_dispatch_run(a->db, a->auth, &c);
        api_dispatch_finish(a->metrics, &c);
        api_request_done(&c.req);
    }
    *out = c.resp;
    return 0;
}

void api_log(void *ctx, const struct http_log_entry *e)
{
    struct api *a = ctx;
    struct api_route r;
    api_route_match(e->path ? e->path : "", &r);
    api_metrics_observe(a->metrics, r.label, e->status, e->duration_ms);
    if (a->opt.log_requests)
        log_msg(e->status >= 500 ? LOG_LEVEL_WARNING : LOG_LEVEL_INFO,
                "%s %s %d %" PRIu64 " %.1fms %s %s", e->method ? e->method : "-",
                e->path ? e->path : "-", e->status, e->bytes_out, e->duration_ms,
                e->user ? e->user : "-", e->remote ? e->remote : "-");
}

/* ---- setup ---------------------------------------------------------------- */

/* The node's region policy: opt.policy_file, else $OUTPOST_POLICY, else
 * the HQ override beside the database, else the profile of the writer
 * store's region (node_policy.h). */
static int load_policy(struct api *a, struct policy **out, struct op_error *err)
{
    return node_policy_load(a->opt.policy_file, a->opt.db_path, api_db_region(a->db), out, err);
}

int api_new(uv_loop_t *loop, const struct api_options *opt, struct api **out, struct op_error *err)
{
    struct api *a = calloc(1, sizeof *a);
    if (!a)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    a->loop = loop;
    a->opt = *opt;
    snprintf(a->db_path, sizeof a->db_path, "%s", opt->db_path);
    a->opt.db_path = a->db_path;
    int rc = api_db_open(a->db_path, opt->workers, &a->db, err);
    if (rc < 0)
        goto fail;
    struct policy *p = NULL;
    rc = load_policy(a, &p, err);
    if (rc < 0)
        goto fail;
    api_db_set_policy(a->db, p);
    rc = api_auth_new(opt->session_ttl_s, opt->workers, &a->auth, err);
    if (rc < 0)
        goto fail;
    a->metrics = api_metrics_new(a->db_path);
    if (!a->metrics) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto fail;
    }
    *out = a;
    return 0;
fail:
    api_free(a);
    return rc;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    api_db_close(a->db);
    api_auth_free(a->auth);
    api_metrics_free(a->metrics);
    free(a);
}

void api_set_server(struct api *a, struct http_server *server)
{
    api_metrics_set_server(a->metrics, server);
}

void api_set_options(struct api *a, unsigned session_ttl_s, int log_requests)
{
    api_auth_set_session_ttl(a->auth, session_ttl_s);
    a->opt.log_requests = log_requests;
}

void api_set_sync_source(struct api *a, const struct sync_status *(*get)(void *ctx), void *ctx)
{
    api_metrics_set_sync_source(a->metrics, get, ctx);
}

unsigned api_pending(const struct api *a)
{
    return a->pending;
}

/* ---- region policy and retention ------------------------------------------ */

void api_set_policy(struct api *a, struct policy *p)
{
    api_db_set_policy(a->db, p);
}

int api_reload_policy(struct api *a, struct op_error *err)
{
    struct policy *p = NULL;
    int rc = load_policy(a, &p, err);
    if (rc < 0)
        return rc;
    api_set_policy(a, p);
    return 0;
}

const char *api_policy_hash(const struct api *a)
{
    return api_db_policy_hash(a->db);
}

struct retention_job {
    uv_work_t work;
    struct api *api;
    api_retention_cb done;
    void *ctx;
    int rc;
    struct op_error err;
    uint64_t purged;
};

/* Purges in slices of at most this many records, releasing the writer in
 * between so that API writes wait at most one slice. */
#define RETENTION_SLICE 1000

static void retention_work(uv_work_t *w)
{
    struct retention_job *j = w->data;
    struct api *a = j->api;
    op_error_clear(&j->err);
    for (;;) {
        const struct policy *policy;
        struct api_conn *writer = api_db_exclusive(a->db, &policy);
        struct retention_options o = {.max_records = RETENTION_SLICE};
        struct retention_report rep;
        store_set_actor(writer->store, "system:retention", NULL);
        j->rc = retention_run(writer->store, policy, hlc_wall_ms(NULL), &o, &rep, &j->err);
        store_set_actor(writer->store, "system", NULL);
        api_db_exclusive_end(a->db);
        j->purged += rep.total;
        if (j->rc < 0 || !rep.more)
            break;
    }
}

static void retention_after(uv_work_t *w, int status)
{
    struct retention_job *j = w->data;
    j->api->pending--;
    if (status == UV_ECANCELED && j->rc == 0)
        j->rc = op_error_set(&j->err, -ECANCELED, NULL, "cancelled at shutdown");
    if (j->done)
        j->done(j->ctx, j->rc, j->purged, &j->err);
    free(j);
}

int api_run_retention(struct api *a, api_retention_cb done, void *ctx)
{
    struct retention_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->api = a;
    j->done = done;
    j->ctx = ctx;
    j->work.data = j;
    int rc = uv_queue_work(a->loop, &j->work, retention_work, retention_after);
    if (rc < 0) {
        free(j);
        return rc;
    }
    a->pending++;
    return 0;
}
