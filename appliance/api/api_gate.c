/*
 * The API's gate; see api_gate.h. A lookup is one heap block (work
 * request, exchange, the call the lookup fills), freed in its after-work
 * callback, the one place it ends.
 */
#include "api_gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_auth.h"
#include "api_dispatch.h"
#include "api_reply.h"
#include "api_request.h"
#include "api_route.h"

struct gate_job {
    uv_work_t work;
    struct http_exchange *x;
    struct api_db *db;
    unsigned *pending;
    struct api_call c;
    struct auth_user user;
    int ok;
};

/* What http_data holds for a request the gate authenticated. */
struct gate_user {
    struct auth_user user;
};

static void gate_user_free(void *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(struct gate_user));
    free(p);
}

const struct auth_user *api_gate_user(const struct http_exchange *x)
{
    const struct gate_user *g = http_data(x);
    return g ? &g->user : NULL;
}

/* Answers x with resp and frees resp. */
static void answer(struct http_exchange *x, struct api_response *resp)
{
    api_reply_send(x, resp);
    api_reply_done(resp);
}

static void answer_problem(struct http_exchange *x, int status, const char *detail)
{
    struct api_response resp;
    memset(&resp, 0, sizeof resp);
    if (status == 503)
        snprintf(resp.retry_after, sizeof resp.retry_after, "1");
    resp.no_store = 1;
    api_reply_problem(&resp, status, detail, NULL);
    answer(x, &resp);
}

static void lookup_work(uv_work_t *w)
{
    struct gate_job *j = w->data;
    struct api_conn *rd = api_db_reader(j->db);
    if (!rd) {
        snprintf(j->c.resp.retry_after, sizeof j->c.resp.retry_after, "1");
        api_reply_problem(&j->c.resp, 503, "all database connections are busy", NULL);
        return;
    }
    j->ok = api_auth_authenticate(j->db, rd, &j->c, &j->user) == 0;
    api_db_reader_release(j->db, rd);
}

static void lookup_after(uv_work_t *w, int status)
{
    struct gate_job *j = w->data;
    struct http_exchange *x = j->x;
    (*j->pending)--;
    if (status == UV_ECANCELED) {
        j->ok = 0;
        snprintf(j->c.resp.retry_after, sizeof j->c.resp.retry_after, "1");
        api_reply_problem(&j->c.resp, 503, "the daemon is shutting down", NULL);
    }
    struct gate_user *g = j->ok ? malloc(sizeof *g) : NULL;
    if (j->ok && !g) {
        j->ok = 0;
        api_reply_problem(&j->c.resp, 503, "out of memory", NULL);
    }
    if (g) {
        g->user = j->user;
        http_set_data(x, g, gate_user_free);
        http_set_user(x, g->user.name);
        http_gate_pass(x, 0);
    } else {
        j->c.resp.no_store = 1; /* as every answer from a worker */
        api_reply_send(x, &j->c.resp);
    }
    memset(&j->user, 0, sizeof j->user);
    api_call_done(&j->c);
    free(j);
}

/* Whether x carries a bearer token at all. */
static int has_bearer(const struct http_exchange *x)
{
    const char *h = http_header(x, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    return *h != '\0';
}

int api_gate_early(struct http_exchange *x, struct api_route *r)
{
    api_route_match(http_path(x), r);
    struct api_response resp;
    memset(&resp, 0, sizeof resp);
    if (!api_dispatch_early(r, http_method(x), &resp))
        return 0;
    answer(x, &resp);
    return 1;
}

void api_gate_check(uv_loop_t *loop, struct api_db *db, unsigned *pending, struct http_exchange *x)
{
    struct api_route r;
    if (api_gate_early(x, &r))
        return;
    if (r.kind == API_ROUTE_SESSION || r.kind == API_ROUTE_CONFIRM ||
        r.kind == API_ROUTE_O_CONFIRM || r.kind == API_ROUTE_O_UNSUBSCRIBE ||
        r.kind == API_ROUTE_O_SMS_DLR || r.kind == API_ROUTE_O_SMS_MO) {
        http_gate_pass(x, API_GATE_OPEN_BODY_MAX);
        return;
    }
    if (!has_bearer(x)) {
        struct api_response resp;
        memset(&resp, 0, sizeof resp);
        resp.www_authenticate = 1;
        resp.no_store = 1;
        api_reply_problem(&resp, 401,
                          "credentials missing: send Authorization: Bearer TOKEN (POST "
                          "/api/v1/session to get one)",
                          NULL);
        answer(x, &resp);
        return;
    }
    struct gate_job *j = calloc(1, sizeof *j);
    if (!j) {
        answer_problem(x, 503, "out of memory");
        return;
    }
    j->x = x;
    j->db = db;
    j->pending = pending;
    j->work.data = j;
    j->c.route = r;
    struct api_request_view v = {
        .method = http_method(x),
        .path = http_path(x),
        .remote = http_remote(x),
        .query = "",
        .authorization = http_header(x, "Authorization"),
    };
    if (api_request_init(&j->c.req, &v) < 0) {
        free(j);
        answer_problem(x, 503, "out of memory");
        return;
    }
    if (uv_queue_work(loop, &j->work, lookup_work, lookup_after) < 0) {
        api_call_done(&j->c);
        free(j);
        answer_problem(x, 503, "cannot queue the request");
        return;
    }
    (*pending)++;
}
