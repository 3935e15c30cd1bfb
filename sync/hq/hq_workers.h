/*
 * The apply pool: a few threads that verify and apply completed uploads
 * (hq_apply_upload) off the receiver's event loop, so that HEAD, PATCH
 * and receipt requests are answered while segments are applied. Each
 * thread opens its own store connection (through the opener the caller
 * gives, so any backend fits) and keeps its own policy cache. Jobs wait
 * in one bounded queue; a finished job is handed back to the loop
 * (uv_async) and its callback runs there, where the receiver logs,
 * settles the upload and answers the request that completed it.
 *
 * A node's last contact is written by the pool too (HQ_JOB_TOUCH), so the
 * loop never waits for the store's write lock while an apply holds it.
 *
 * Any other work that reads or writes the store for long (building a
 * node's range digests, docs/SYNC_PROTOCOL.md "Anti-entropy") is a
 * generic job (HQ_JOB_RUN): a function the caller gives, run on a thread
 * with that thread's store connection, its result handed back to the loop
 * like an apply's, where the caller answers the request that waits. Such
 * jobs wait in a queue of their own, bounded like the applies' (a full
 * one is -EAGAIN: the caller answers 503 with Retry-After), and count as
 * their principal's jobs: one never runs beside an apply of the same
 * node.
 *
 * Invariants: a job's callback runs exactly once, on the loop: with the
 * apply's return and outcome, or with -ECANCELED for a job abandoned
 * before a thread took it (hq_workers_stop); an apply a thread started
 * always runs to its commit or rollback (exactly-once holds by the
 * receipt keyed (node, segment) in the apply's own transaction, not by
 * the pool). The queue never holds more than queue_max applies. Two jobs
 * of one node never run at once, and a node's queued applies run in the
 * order of their segment numbers, so the order in which a node's uploads
 * completed (a restart's redelivery reads the spool in directory order)
 * does not reorder its segments.
 */
#ifndef OUTPOST_HQ_WORKERS_H
#define OUTPOST_HQ_WORKERS_H

#include <stdint.h>

#include <uv.h>

#include "hq_apply.h"
#include "hq_store.h"
#include "op_error.h"

/* Opens one more connection to the receiver's store for a worker thread
 * (for SQLite: hq_store_sqlite_open of the same path). */
struct hq_store_opener {
    int (*open)(void *ctx, struct hq_store *out, struct op_error *err);
    void *ctx;
};

enum hq_job_kind {
    HQ_JOB_APPLY = 0, /* verify and apply the upload at path */
    HQ_JOB_TOUCH,     /* write principal's last contact (node_touch) */
    HQ_JOB_RUN,       /* run(store, arg) (hq_job_run_new) */
};

struct hq_job;
/* A generic job's work, on a worker thread with its store connection:
 * returns 0 or a negative errno, kept in job->rc for the callback. It
 * must not touch the loop's objects (the request, the server, the log). */
typedef int (*hq_job_run_fn)(struct hq_store *st, void *arg);

/* One upload to apply, or one last contact to write (hq_job_new,
 * hq_job_free). */
struct hq_job {
    enum hq_job_kind kind;
    char *upload_id;
    char *principal;
    char *meta_node;    /* NULL if absent */
    char *meta_segment; /* NULL if absent */
    char *path;
    int64_t now_ms;    /* the receipt's time, read on the loop */
    void *x;           /* the caller's: the request waiting for the outcome, or NULL */
    hq_job_run_fn run; /* HQ_JOB_RUN: the work */
    void *arg;         /* HQ_JOB_RUN: its argument, the caller's to free */
    /* filled by the worker */
    int rc; /* hq_apply_upload's return, or -ECANCELED */
    struct hq_apply_result res;
    struct op_error err;
    struct hq_job *next;
};

/* A job with copies of the strings (meta_node, meta_segment may be NULL);
 * NULL when out of memory. */
struct hq_job *hq_job_new(const char *upload_id, const char *principal, const char *meta_node,
                          const char *meta_segment, const char *path, int64_t now_ms);

/* A generic job (kind HQ_JOB_RUN) of principal (copied; the node whose
 * jobs it must not run beside) doing run(store, arg); the caller keeps
 * arg, and frees it when the job comes back. NULL when out of memory. */
struct hq_job *hq_job_run_new(const char *principal, hq_job_run_fn run, void *arg);

/* NULL is allowed. */
void hq_job_free(struct hq_job *job);

/* Called on the loop for each finished or abandoned job; the callee owns
 * job (hq_job_free it). */
typedef void (*hq_job_done_fn)(void *ctx, struct hq_job *job);

struct hq_workers;

/* Starts n threads (1 to 16) on the caller's loop, each with its own store
 * connection opened now (a failure to open one stops the others and is
 * returned with err saying why). queue_max: jobs waiting at most (1 or
 * more). */
int hq_workers_start(uv_loop_t *loop, unsigned n, unsigned queue_max,
                     const struct hq_store_opener *opener, hq_job_done_fn done, void *ctx,
                     struct hq_workers **out, struct op_error *err);

/* Queues job (owned by the pool from now on when 0 is returned). -EAGAIN
 * when the queue is full, -ESHUTDOWN while stopping: the caller keeps job. */
int hq_workers_submit(struct hq_workers *w, struct hq_job *job);

/* Queues a last-contact write (kind HQ_JOB_TOUCH): not counted against
 * queue_max, because the caller writes each node's at most once a
 * minute. -ESHUTDOWN while stopping. */
int hq_workers_submit_touch(struct hq_workers *w, struct hq_job *job);

/* Queues a generic job (from hq_job_run_new), owned by the pool when 0
 * is returned. -EAGAIN when queue_max generic jobs wait already,
 * -ESHUTDOWN while stopping: the caller keeps job. */
int hq_workers_submit_run(struct hq_workers *w, struct hq_job *job);

/* True when a submit would get -EAGAIN or -ESHUTDOWN now. */
int hq_workers_full(const struct hq_workers *w);

/* Applies waiting plus applies running (last-contact writes not counted). */
unsigned hq_workers_pending(const struct hq_workers *w);

/* Makes every thread forget its cached profiles and policies before its
 * next job (SIGHUP). */
void hq_workers_reload(struct hq_workers *w);

/* Stops: queued jobs are abandoned (done with -ECANCELED), applies under
 * way finish; then the threads are joined, their connections closed, the
 * pool freed and stopped(ctx) called on the loop. Call once. */
void hq_workers_stop(struct hq_workers *w, void (*stopped)(void *ctx), void *ctx);

#endif
