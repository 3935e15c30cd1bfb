/*
 * Job plumbing; see api_job.h. A job is one heap block holding the
 * work request, the exchange it answers and the call; it is freed in the
 * after-work callback, the one place a job ends.
 */
#include "api_job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_gate.h"

struct job {
    uv_work_t work;
    struct http_exchange *x;
    api_job_fn run;
    api_job_fn done;
    void *ctx;
    struct api_call c;
};

/* Answers at once, for a request that never became a job. */
static void refuse(struct http_exchange *x, int status, const char *detail)
{
    struct api_response resp;
    memset(&resp, 0, sizeof resp);
    api_reply_problem(&resp, status, detail, NULL);
    api_reply_send(x, &resp);
    api_reply_done(&resp);
}

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    j->run(j->ctx, &j->c);
}

static void job_after(uv_work_t *w, int status)
{
    struct job *j = w->data;
    if (status == UV_ECANCELED)
        api_reply_problem(&j->c.resp, 503, "the daemon is shutting down", NULL);
    j->done(j->ctx, &j->c);
    api_reply_send(j->x, &j->c.resp);
    api_call_done(&j->c);
    free(j);
}

int api_job_start(uv_loop_t *loop, struct http_exchange *x, const struct api_route *r,
                  api_job_fn work, api_job_fn done, void *ctx)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        refuse(x, 503, "out of memory");
        return -ENOMEM;
    }
    j->x = x;
    j->run = work;
    j->done = done;
    j->ctx = ctx;
    j->c.route = *r;
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
        .idempotency_key = http_header(x, "Idempotency-Key"),
        .content_type = http_header(x, "Content-Type"),
        .user = api_gate_user(x),
    };
    int rc = api_request_init(&j->c.req, &v);
    if (rc < 0) {
        free(j);
        refuse(x, 503, "out of memory");
        return rc;
    }
    rc = uv_queue_work(loop, &j->work, job_work, job_after);
    if (rc < 0) {
        api_call_done(&j->c);
        free(j);
        refuse(x, 503, "cannot queue the request");
        return rc;
    }
    return 0;
}
