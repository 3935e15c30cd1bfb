/*
 * The API: routing on the loop thread, execution on the thread pool. A job
 * copies what it needs from the exchange on the loop thread, runs on a
 * worker (auth, role check, store call, JSON), and is answered in its
 * after-work callback on the loop thread. See api.h and docs/API.md.
 */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_auth.h"
#include "api_consents.h"
#include "api_db.h"
#include "api_metrics.h"
#include "api_query.h"
#include "api_records.h"
#include "api_reply.h"
#include "api_request.h"
#include "api_route.h"
#include "auth.h"
#include "consent.h"
#include "db.h"
#include "hlc.h"
#include "entity.h"
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

/* ---- jobs -------------------------------------------------------------- */

struct job {
    uv_work_t work;
    struct api *api;
    struct http_exchange *x;
    struct api_call c;
};

static void job_free(struct job *j)
{
    api_call_done(&j->c);
    free(j);
}

/* ---- dispatch ------------------------------------------------------------ */

static int method_is(const struct job *j, const char *m)
{
    return !strcmp(j->c.req.method, m);
}

static void method_not_allowed(struct job *j, const char *allow)
{
    char msg[96];
    snprintf(msg, sizeof msg, "method %s not allowed here (allowed: %s)", j->c.req.method, allow);
    api_reply_problem(&j->c.resp, 405, msg, NULL);
}

static void run_job(uv_work_t *w)
{
    struct job *j = w->data;
    struct api *a = j->api;
    const struct api_route *r = &j->c.route;

    if (r->kind == API_ROUTE_SESSION) {
        if (method_is(j, "POST"))
            api_auth_login(a->auth, a->db, &j->c);
        else if (method_is(j, "DELETE"))
            api_auth_logout(a->db, &j->c);
        else
            method_not_allowed(j, "POST, DELETE");
        return;
    }
    if (r->kind ==
        API_ROUTE_CONFIRM) { /* the contact follows a link: the token is the credential */
        if (method_is(j, "POST"))
            api_consents_confirm(a->db, &j->c);
        else
            method_not_allowed(j, "POST");
        return;
    }
    struct api_conn *c = api_db_reader(a->db);
    if (!c) {
        snprintf(j->c.resp.retry_after, sizeof j->c.resp.retry_after, "1");
        api_reply_problem(&j->c.resp, 503, "all database connections are busy", NULL);
        return;
    }
    struct auth_user u;
    if (api_auth_authenticate(a->db, c, &j->c, &u) < 0)
        goto out;
    if (r->kind == API_ROUTE_METRICS) {
        api_metrics_authorize(&j->c, &u);
        goto out;
    }
    if (api_auth_require_crm_role(&j->c, &u) < 0)
        goto out;
    switch (r->kind) {
    case API_ROUTE_SEARCH:
        if (method_is(j, "GET") || method_is(j, "HEAD"))
            api_records_search(c->store, &j->c, &u);
        else
            method_not_allowed(j, "GET");
        break;
    case API_ROUTE_COLLECTION:
        if (method_is(j, "GET") || method_is(j, "HEAD"))
            api_records_list(c->store, &j->c, &u, r->e, NULL, NULL);
        else if (method_is(j, "POST"))
            api_records_create(a->db, &j->c, &u);
        else
            method_not_allowed(j, "GET, POST");
        break;
    case API_ROUTE_RECORD:
        if (method_is(j, "GET") || method_is(j, "HEAD"))
            api_records_get(c->store, &j->c, &u);
        else if (method_is(j, "PATCH"))
            api_records_update(a->db, &j->c, &u);
        else if (method_is(j, "DELETE"))
            api_records_delete(a->db, &j->c, &u);
        else
            method_not_allowed(j, "GET, PATCH, DELETE");
        break;
    case API_ROUTE_CONSENTS:
        if (method_is(j, "GET") || method_is(j, "HEAD"))
            api_consents_list(c->store, &j->c, &u);
        else if (method_is(j, "POST"))
            api_consents_create(a->db, &j->c, &u);
        else
            method_not_allowed(j, "GET, POST");
        break;
    case API_ROUTE_WITHDRAW:
        if (method_is(j, "POST"))
            api_consents_withdraw(a->db, &j->c, &u);
        else
            method_not_allowed(j, "POST");
        break;
    case API_ROUTE_CONSENT_STATUS:
        if (method_is(j, "GET") || method_is(j, "HEAD"))
            api_consents_status(a->db, c->store, &j->c, &u);
        else
            method_not_allowed(j, "GET");
        break;
    default:
        api_reply_problem(&j->c.resp, 404, "no such resource", NULL);
        break;
    }
out:
    api_db_reader_release(a->db, c);
}

static void after_job(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct api *a = j->api;
    a->pending--;
    if (status == UV_ECANCELED)
        api_reply_problem(&j->c.resp, 503, "the daemon is shutting down", NULL);
    if (j->c.route.kind == API_ROUTE_METRICS && j->c.resp.status == 200) {
        api_metrics_render(a->metrics, &j->c.resp);
    }
    if (!j->c.resp.status)
        api_reply_problem(&j->c.resp, 500, "the request was not handled", NULL);
    j->c.resp.no_store = 1;
    if (j->c.resp.user[0])
        http_set_user(j->x, j->c.resp.user);
    struct api_header h[API_REPLY_HEADERS_MAX];
    unsigned nh = api_reply_headers(&j->c.resp, h);
    for (unsigned i = 0; i < nh; i++)
        (void)http_add_header(j->x, h[i].name, h[i].value);
    http_respond(j->x, j->c.resp.status, j->c.resp.body ? j->c.resp.type : NULL, j->c.resp.body,
                 j->c.resp.body ? j->c.resp.body_len : 0);
    job_free(j);
}

/* ---- loop-thread entry points ------------------------------------------- */

static void respond_now(struct http_exchange *x, int status, const char *detail)
{
    json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
                          http_status_text(status), "status", status, "detail", detail);
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    http_respond(x, status, "application/problem+json", s, s ? strlen(s) : 0);
    free(s);
}

void api_handle(void *ctx, struct http_exchange *x)
{
    struct api *a = ctx;
    struct api_route r;
    api_route_match(http_path(x), &r);
    if (r.kind == API_ROUTE_HEALTH) {
        static const char ok[] = "{\"status\":\"ok\"}";
        if (strcmp(http_method(x), "GET") && strcmp(http_method(x), "HEAD")) {
            respond_now(x, 405, "use GET");
            return;
        }
        http_respond(x, 200, "application/json", ok, sizeof ok - 1);
        return;
    }
    if (r.kind == API_ROUTE_NOT_FOUND) {
        respond_now(x, 404, "no such resource");
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        respond_now(x, 503, "out of memory");
        return;
    }
    j->api = a;
    j->x = x;
    j->c.route = r;
    j->work.data = j;
    size_t blen = 0;
    const char *body = http_body(x, &blen);
    struct api_request_view v = {
        .method = http_method(x),
        .path = http_path(x),
        .remote = http_remote(x),
        .query = http_query(x),
        .body = body,
        .body_len = blen,
        .authorization = http_header(x, "Authorization"),
        .if_match = http_header(x, "If-Match"),
        .content_type = http_header(x, "Content-Type"),
    };
    if (api_request_init(&j->c.req, &v) < 0) {
        free(j);
        respond_now(x, 503, "out of memory");
        return;
    }
    int rc = uv_queue_work(a->loop, &j->work, run_job, after_job);
    if (rc < 0) {
        job_free(j);
        respond_now(x, 503, "cannot queue the request");
        return;
    }
    a->pending++;
}

void api_log(void *ctx, const struct http_log_entry *e)
{
    struct api *a = ctx;
    struct api_route r;
    api_route_match(e->path ? e->path : "", &r);
    api_metrics_observe(a->metrics, r.label, e->status, e->duration_ms);
    if (a->opt.log_requests)
        fprintf(stderr, "%s %s %d %" PRIu64 " %.1fms %s %s\n", e->method ? e->method : "-",
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
    rc = api_auth_new(opt->session_ttl_s, &a->auth, err);
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
