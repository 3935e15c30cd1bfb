/*
 * The apply pool; contract in hq_workers.h. One mutex guards the queue,
 * the finished list and the counters; threads wait on one condition
 * variable for work. A finished job goes on the finished list and the
 * loop is woken with uv_async_send; the async callback takes the whole
 * list and calls the receiver's callback for each job, on the loop
 * thread, so nothing of the receiver (tus server, HTTP exchanges, log)
 * is touched from a worker. Stopping: the queue is emptied into the
 * finished list as abandoned (-ECANCELED), the threads are told to end
 * once idle, and the last thread to end wakes the loop once more; the
 * loop joins them there (they have returned, so joining does not wait).
 */
#include "hq_workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS_MAX 16u

struct worker {
    struct hq_workers *w;
    pthread_t thread;
    int started;
    struct hq_store store;
    struct hq_policies *policies;
    unsigned generation;      /* of the policy cache */
    const struct hq_job *cur; /* the job it runs (under mu), or NULL */
};

struct hq_workers {
    uv_loop_t *loop;
    uv_async_t wake;
    hq_job_done_fn done;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hq_job *head, *tail; /* waiting */
    struct hq_job *finished;    /* for the loop, newest first */
    unsigned queued, running, queue_max;
    unsigned queued_apply;  /* of queued, the applies (queue_max bounds them) */
    unsigned queued_run;    /* of queued, the generic jobs (queue_max bounds them too) */
    unsigned running_apply; /* of running, the applies */
    int stopping;           /* no new jobs; threads end when idle */
    unsigned ended;         /* threads that returned */
    atomic_uint generation;
    unsigned n;
    struct worker *worker;
    void (*stopped)(void *ctx);
    void *stopped_ctx;
};

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

struct hq_job *hq_job_new(const char *upload_id, const char *principal, const char *meta_node,
                          const char *meta_segment, const char *path, int64_t now_ms)
{
    struct hq_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    int oom = 0;
    j->upload_id = dup_or_null(upload_id ? upload_id : "", &oom);
    j->principal = dup_or_null(principal ? principal : "", &oom);
    j->meta_node = dup_or_null(meta_node, &oom);
    j->meta_segment = dup_or_null(meta_segment, &oom);
    j->path = dup_or_null(path ? path : "", &oom);
    j->now_ms = now_ms;
    if (oom) {
        hq_job_free(j);
        return NULL;
    }
    return j;
}

struct hq_job *hq_job_run_new(const char *principal, hq_job_run_fn run, void *arg)
{
    struct hq_job *j = hq_job_new(NULL, principal, NULL, NULL, NULL, 0);
    if (!j)
        return NULL;
    j->kind = HQ_JOB_RUN;
    j->run = run;
    j->arg = arg;
    return j;
}

void hq_job_free(struct hq_job *job)
{
    if (!job)
        return;
    free(job->upload_id);
    free(job->principal);
    free(job->meta_node);
    free(job->meta_segment);
    free(job->path);
    free(job);
}

static void apply_one(struct worker *me, struct hq_job *j)
{
    unsigned gen = atomic_load(&me->w->generation);
    if (gen != me->generation) {
        hq_policies_clear(me->policies);
        me->generation = gen;
    }
    struct hq_upload u = {
        .principal = j->principal,
        .meta_node = j->meta_node,
        .meta_segment = j->meta_segment,
        .path = j->path,
    };
    op_error_clear(&j->err);
    if (j->kind == HQ_JOB_TOUCH)
        j->rc = me->store.ops->node_touch(me->store.impl, j->principal, j->now_ms, &j->err);
    else if (j->kind == HQ_JOB_RUN)
        j->rc = j->run ? j->run(&me->store, j->arg) : -EINVAL;
    else
        j->rc = hq_apply_upload(&me->store, me->policies, &u, j->now_ms, &j->res, &j->err);
}

/* The segment number of an apply job's metadata; invalid ones sort last. */
static uint64_t seg_number(const struct hq_job *j)
{
    const char *p = j->meta_segment;
    if (!p || !*p || strlen(p) > 19)
        return UINT64_MAX;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return UINT64_MAX;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

static int node_busy(const struct hq_workers *w, const char *principal)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->worker[i].cur && strcmp(w->worker[i].cur->principal, principal) == 0)
            return 1;
    return 0;
}

/* Under mu: takes the next job a thread may run, or NULL. One node's jobs
 * never run at once, and of a node's queued applies the lowest segment
 * number goes first, so a node's segments are applied in number order
 * whatever order their uploads completed in (a restart's redelivery, a
 * final answer lost and the next segment sent meanwhile). */
static struct hq_job *take(struct hq_workers *w)
{
    struct hq_job *best = NULL, *best_prev = NULL, *prev = NULL;
    for (struct hq_job *j = w->head; j; prev = j, j = j->next) {
        if (node_busy(w, j->principal))
            continue;
        if (!best) {
            best = j;
            best_prev = prev;
        } else if (j->kind == HQ_JOB_APPLY && best->kind == HQ_JOB_APPLY &&
                   strcmp(j->principal, best->principal) == 0 && seg_number(j) < seg_number(best)) {
            best = j;
            best_prev = prev;
        }
    }
    if (!best)
        return NULL;
    if (best_prev)
        best_prev->next = best->next;
    else
        w->head = best->next;
    if (w->tail == best)
        w->tail = best_prev;
    best->next = NULL;
    return best;
}

static void *worker_main(void *arg)
{
    struct worker *me = arg;
    struct hq_workers *w = me->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct hq_job *j = NULL;
        while (!(j = take(w)) && !(w->stopping && !w->head))
            pthread_cond_wait(&w->cv, &w->mu);
        if (!j)
            break; /* stopping and nothing to do */
        me->cur = j;
        w->queued--;
        w->queued_apply -= j->kind == HQ_JOB_APPLY;
        w->queued_run -= j->kind == HQ_JOB_RUN;
        w->running++;
        w->running_apply += j->kind == HQ_JOB_APPLY;
        pthread_mutex_unlock(&w->mu);
        apply_one(me, j);
        pthread_mutex_lock(&w->mu);
        w->running--;
        w->running_apply -= j->kind == HQ_JOB_APPLY;
        me->cur = NULL;
        j->next = w->finished;
        w->finished = j;
        uv_async_send(&w->wake);
        pthread_cond_broadcast(&w->cv); /* that node's next job may run now */
    }
    w->ended++;
    if (w->ended == w->n)
        uv_async_send(&w->wake);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void free_pool(struct hq_workers *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        hq_store_close(&w->worker[i].store);
        hq_policies_free(w->worker[i].policies);
    }
    free(w->worker);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void wake_closed(uv_handle_t *h)
{
    struct hq_workers *w = h->data;
    void (*stopped)(void *) = w->stopped;
    void *ctx = w->stopped_ctx;
    free_pool(w);
    if (stopped)
        stopped(ctx);
}

/* On the loop: hands finished jobs back (oldest first); after the last
 * thread ended, joins them and closes the pool. */
static void on_wake(uv_async_t *a)
{
    struct hq_workers *w = a->data;
    pthread_mutex_lock(&w->mu);
    struct hq_job *list = w->finished;
    w->finished = NULL;
    int all_ended = w->stopping && w->ended == w->n;
    pthread_mutex_unlock(&w->mu);
    struct hq_job *rev = NULL;
    while (list) {
        struct hq_job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        struct hq_job *next = rev->next;
        rev->next = NULL;
        w->done(w->ctx, rev);
        rev = next;
    }
    if (all_ended && !uv_is_closing((uv_handle_t *)&w->wake)) {
        for (unsigned i = 0; i < w->n; i++)
            if (w->worker[i].started)
                pthread_join(w->worker[i].thread, NULL);
        uv_close((uv_handle_t *)&w->wake, wake_closed);
    }
}

int hq_workers_start(uv_loop_t *loop, unsigned n, unsigned queue_max,
                     const struct hq_store_opener *opener, hq_job_done_fn done, void *ctx,
                     struct hq_workers **out, struct op_error *err)
{
    if (n < 1 || n > WORKERS_MAX || queue_max < 1 || !opener || !opener->open || !done)
        return op_error_set(err, -EINVAL, "apply_workers", "apply pool: 1 to %u threads",
                            WORKERS_MAX);
    struct hq_workers *w = calloc(1, sizeof *w);
    struct worker *ws = calloc(n, sizeof *ws);
    if (!w || !ws) {
        free(w);
        free(ws);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    w->loop = loop;
    w->done = done;
    w->ctx = ctx;
    w->queue_max = queue_max;
    w->n = n;
    w->worker = ws;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    atomic_init(&w->generation, 0u);
    int rc = 0;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        ws[i].w = w;
        rc = opener->open(opener->ctx, &ws[i].store, err);
        if (rc == 0 && hq_policies_new(&ws[i].policies) < 0)
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    if (rc < 0) {
        free_pool(w);
        return rc;
    }
    uv_async_init(loop, &w->wake, on_wake);
    w->wake.data = w;
    for (unsigned i = 0; i < n; i++) {
        int e = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
        if (e != 0) {
            /* The threads started so far end at once; the pool closes on
             * the loop. The caller sees the error now. */
            pthread_mutex_lock(&w->mu);
            w->stopping = 1;
            w->ended += n - i;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
            if (i == 0)
                uv_async_send(&w->wake);
            *out = NULL;
            return op_error_set(err, -e, NULL, "apply pool: cannot start a thread");
        }
        ws[i].started = 1;
    }
    *out = w;
    return 0;
}

static int submit(struct hq_workers *w, struct hq_job *job, int bounded)
{
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    unsigned waiting = job->kind == HQ_JOB_RUN ? w->queued_run : w->queued_apply;
    if (w->stopping)
        rc = -ESHUTDOWN;
    else if (bounded && waiting >= w->queue_max)
        rc = -EAGAIN;
    if (rc == 0) {
        job->next = NULL;
        if (w->tail)
            w->tail->next = job;
        else
            w->head = job;
        w->tail = job;
        w->queued++;
        w->queued_apply += job->kind == HQ_JOB_APPLY;
        w->queued_run += job->kind == HQ_JOB_RUN;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int hq_workers_submit(struct hq_workers *w, struct hq_job *job)
{
    job->kind = HQ_JOB_APPLY;
    return submit(w, job, 1);
}

int hq_workers_submit_touch(struct hq_workers *w, struct hq_job *job)
{
    job->kind = HQ_JOB_TOUCH;
    return submit(w, job, 0);
}

int hq_workers_submit_run(struct hq_workers *w, struct hq_job *job)
{
    job->kind = HQ_JOB_RUN;
    return submit(w, job, 1);
}

int hq_workers_full(const struct hq_workers *w)
{
    struct hq_workers *m = (struct hq_workers *)w;
    pthread_mutex_lock(&m->mu);
    int full = m->stopping || m->queued_apply >= m->queue_max;
    pthread_mutex_unlock(&m->mu);
    return full;
}

unsigned hq_workers_pending(const struct hq_workers *w)
{
    struct hq_workers *m = (struct hq_workers *)w;
    pthread_mutex_lock(&m->mu);
    unsigned n = m->queued_apply + m->running_apply;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void hq_workers_reload(struct hq_workers *w)
{
    atomic_fetch_add(&w->generation, 1u);
}

void hq_workers_stop(struct hq_workers *w, void (*stopped)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&w->mu);
    w->stopped = stopped;
    w->stopped_ctx = ctx;
    w->stopping = 1;
    /* Abandon what no thread has taken: the uploads stay complete on disk. */
    while (w->head) {
        struct hq_job *j = w->head;
        w->head = j->next;
        j->rc = -ECANCELED;
        op_error_set(&j->err, -ECANCELED, NULL, "abandoned: the receiver is stopping");
        j->next = w->finished;
        w->finished = j;
    }
    w->tail = NULL;
    w->queued = 0;
    w->queued_apply = 0;
    w->queued_run = 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}
