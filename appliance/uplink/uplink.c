/*
 * The uplink state machine; see uplink.h and docs/UPLINK.md. One cycle:
 *
 *   PREPARE (pool): make segments while the ledger makes them, then pick
 *     the lowest unacknowledged segment
 *   upload (loop, tus): on_created -> SET_URL (pool; the upload is held
 *     until the URL is recorded, so no byte leaves before the ledger knows
 *     HQ may hold the segment; a crash in between costs HQ one empty
 *     upload, which its eviction makes harmless); on_done -> NOTE +
 *     MARK_UPLOADED (pool)
 *   receipt: the one the completing PATCH carried (Outpost-Receipt), else
 *     GET /v1/receipts/N with backoff -> RECEIPT (pool)
 *   mailbox (loop, GET /v1/mailbox?after=A, only when due: HQ's
 *     Outpost-Mailbox-Last is above the cursor, no request this cycle
 *     carried the hint, or the slow poll is due) -> MAILBOX (pool) -> reload
 *   verify (only when a check is asked for or due, and nothing is in
 *     flight): VERIFY_START (pool: the node's range set) -> POST
 *     /v1/digest level by level (loop) -> VERIFY_FINISH (pool: repairs
 *     queued in the outbox with the result) -> POST /v1/verify (the
 *     report, for `outpost-hq nodes`); docs/SYNC_PROTOCOL.md, "Anti-entropy"
 *   next cycle at once if anything moved, else after sync_interval.
 *
 * Ledger jobs run one at a time from a FIFO; each ends with a status read
 * that is cached for /metrics. The invariants: at most two segments are in
 * flight (uploads_in_flight): the cycle's, and beside it the side slot's
 * (the next one, on a second tus client), whose creation is sent only once
 * HQ answered the cycle's and carries `after` = the lower upload's id
 * while that has no receipt (docs/UPLINK.md, "Two uploads"); every SQLite
 * call is on the pool; after stop no callback touches the uplink except
 * to finish stopping.
 */
#include "uplink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "range_digest.h"
#include "sync_sched.h"
#include "tus_client.h"

#define UPLINK_INTERVAL_DEFAULT 10000u
#define UPLINK_SEGMENTS_PER_JOB 16 /* bounds one PREPARE job's time */
#define UPLINK_RECEIPT_MAX ((size_t)64 * 1024)
#define UPLINK_MAILBOX_MAX ((size_t)4 * 1024 * 1024) /* the ledger parses up to this */
#define UPLINK_MAILBOX_PAGES 10                      /* full pages fetched per cycle */
#define UPLINK_MAILBOX_PAGE 100                      /* HQ's page size */
#define UPLINK_RECEIPT_FIRST_MS 250u
/* once HQ has given no receipt past the patience (and the one upload
 * again), receipt polls back off up to this, not every interval forever */
#define UPLINK_RECEIPT_SLOW_MS (5u * 60u * 1000u)
#define UPLINK_CHUNK_MAX ((size_t)512 * 1024) /* under HQ's default 1 MiB body cap */
/* while an upload runs, the bytes put on the wire are reported (a
 * committed transaction) at most this often, and at its end; what HQ
 * acknowledged is charged each time its offset is learned (J_CHARGE) */
#define UPLINK_CHARGE_MS 2000u
/* the mailbox is fetched at start and at least this often, for an HQ that
 * sends no Outpost-Mailbox-Last */
#define UPLINK_MAILBOX_POLL_MS (15u * 60 * 1000)
/* the largest answer to one digest request (RANGE_ANSWER_ENTRIES entries
 * of about 120 bytes, and the counts) */
#define UPLINK_DIGEST_MAX ((size_t)2 * 1024 * 1024)

enum job_kind {
    J_OPEN,
    J_PREPARE,
    J_SET_URL,
    J_MARK_UPLOADED,
    J_RECEIPT,
    J_MAILBOX,
    J_RELOAD,
    J_NOTE,
    J_CHARGE,
    J_STATUS,
    J_WAITING,
    J_VOIDED,
    J_FORGET_VOIDED,
    J_VERIFY_START,
    J_VERIFY_FINISH,
    J_FORGET_UNSENT_VOIDED,
    J_CUT,
    J_SIDE_PICK,
    J_CLOSE
};

struct job;
typedef void (*job_then)(struct uplink *u, struct job *j);

struct job {
    uv_work_t work;
    struct uplink *u;
    struct job *next;
    enum job_kind kind;
    job_then then;
    int rc, rc2;
    struct op_error err, err2;
    /* inputs */
    int allow_segment;
    uint64_t no;
    uint64_t offset; /* J_CHARGE: HQ's offset of segment `no` */
    char *text;      /* URL, receipt or mailbox body */
    size_t len;
    struct sync_link_report rep;
    char rep_kind[32], rep_msg[256];
    /* outputs */
    int made, found, outcome, policy_changed;
    int64_t records; /* J_FORGET_UNSENT_VOIDED: the records forgotten as sent */
    struct sync_segment seg;
    struct sync_ledger_news news;
    int have_status;
    struct sync_status st;
    /* anti-entropy */
    int64_t vid;                 /* the check */
    struct range_set *vset;      /* VERIFY_START: the node's set (NULL: none due, or in flight) */
    uint64_t in_flight;          /* VERIFY_START: changes in flight */
    struct sync_verify_row vrow; /* VERIFY_FINISH: in (failed) and out */
    int vwalk;                   /* VERIFY_FINISH: with the uplink's walk */
};

/* The side slot: a second upload beside the cycle's (docs/UPLINK.md, "Two
 * uploads"), on its own tus client so the uploader's control law stays per
 * connection. It holds one segment from its pick until that segment's
 * receipt is applied, it fails, or it is paused or voided. */
struct side {
    struct tus_client *tus;
    uv_timer_t timer; /* the next receipt poll */
    int active;       /* holds `seg` */
    int picking;      /* a J_SIDE_PICK is queued or running */
    int uploading;    /* its upload is under way */
    int created;      /* HQ answered its creation (or the HEAD of a resumed upload) */
    struct sync_segment seg;
    uint64_t confirmed;   /* HQ's offset of its upload */
    uint64_t budget_left; /* what it may have acknowledged today; UINT64_MAX: no budget */
    struct tus_client_stats before;
    uint64_t start_ms, rep_confirmed, rep_sent, rep_resent, rep_ms;
    char *inline_receipt;
    size_t inline_receipt_len;
    unsigned poll_attempt;
    uint64_t poll_start_ms;
    struct job *charge_queued;
};

struct uplink {
    uv_loop_t *loop;
    struct uplink_config cfg;
    struct node_credentials cred;
    char db_path[1024], spool_dir[1024], policy_file[1024], ca_file[1024];
    char base[TUS_URL_MAX + 1]; /* HQ base URL without a trailing slash */
    char auth[80];
    struct sync_window window;
    struct tus_client *tus;
    struct sync_ledger *ledger; /* written and used on the pool only, one job at a time */

    uv_timer_t timer;       /* the next cycle, or the next receipt poll */
    uv_timer_t pause_timer; /* the sync window closes, or the budget is spent: pause */
    int uploading;          /* an upload of `seg` is under way */
    int holding;            /* the cycle holds `seg` (uploading it or awaiting its receipt) */
    int created;            /* HQ holds the upload of `seg`: the side slot may start */
    int wait_side;          /* the upload of `seg` waits for the side's creation answer */
    struct side side;
    uint64_t seg_confirmed; /* its bytes HQ has confirmed */
    uint64_t budget_left;   /* bytes HQ may acknowledge of this upload today; UINT64_MAX: no
                               budget */
    /* of this upload's counters (since `before`), what is already reported
     * to the ledger, and when */
    uint64_t rep_confirmed, rep_sent, rep_resent, rep_ms;
    /* round trips saved, not yet reported */
    uint64_t saved_inline, saved_mailbox;
    char *inline_receipt; /* the receipt the completing PATCH carried; NULL: none */
    size_t inline_receipt_len;
    int talked;               /* a request of this cycle carried HQ's mailbox hint */
    uint64_t talked_ms;       /* when (mono) the last cycle with a request ended; 0: never */
    int mailbox_polled;       /* the mailbox was fetched since start */
    uint64_t mailbox_poll_ms; /* when (mono) */
    int budget_pause;         /* the pause timer is for the budget, not the window */
    int resume_charge;        /* a resumed upload under a budget: its HEAD's offset is
                                 charged before the next request is sized */
    int charge_held;          /* the uploader waits for that charge (tus_client_hold) */
    struct job *active, *qhead, *qtail;
    int busy;                  /* a cycle is under way */
    int kick_pending;          /* run again as soon as it ends */
    int cut_queued;            /* a J_CUT is queued or running */
    uint64_t cut_ms;           /* when the last J_CUT was queued (mono) */
    int progress;              /* this cycle moved something: do not wait */
    int note_queued;           /* a retry NOTE is waiting: coalesce */
    struct job *charge_queued; /* a CHARGE waiting to run: a newer offset replaces its own */

    /* the segment of this cycle */
    struct sync_segment seg;
    struct tus_client_stats before;
    uint64_t upload_start_ms, poll_start_ms;
    unsigned poll_attempt;
    uint64_t reuploaded_no; /* uploaded again once for lack of a receipt */
    uint64_t voided_no;     /* the voided segment whose upload is being terminated */
    unsigned mailbox_pages;
    uint64_t budget_logged_day;
    char last_log[256]; /* the last repeated error logged, to log it once */
    char waiting[256];  /* what set_waiting recorded last; "\1" before the first */

    struct sync_status status;
    int have_status;

    /* the anti-entropy check under way (verify_id 0: none) */
    int64_t verify_id;
    struct range_set *vset;
    struct range_walk *vwalk;
    uint64_t verify_jitter_ms;
    int64_t started_wall_ms; /* the first scheduled check counts from here */
    uint64_t verify_start_ms;
    uint64_t verify_waiting_logged; /* the check last said to wait for changes in flight */

    int stopping, tus_stopped, timers_closed, side_tus_made;
    void (*stop_cb)(void *);
    void *stop_ctx;
};

static void cycle_end(struct uplink *u);
static void start_cycle(struct uplink *u);
static void prepare_segments(struct uplink *u, int allow_segment);
static void upload_segment(struct uplink *u);
static void after_prepare(struct uplink *u, struct job *j);
static void after_voided(struct uplink *u, struct job *j);
static void next_voided(struct uplink *u);
static void check_budget(struct uplink *u);
static void after_charge(struct uplink *u, struct job *j);
static void report_link_as(struct uplink *u, int final, const char *kind, const char *msg);
static void poll_receipt(struct uplink *u);
static void poll_mailbox(struct uplink *u);
static void check_mailbox(struct uplink *u);
static void maybe_finish_stop(struct uplink *u);
static void verify_or_mailbox(struct uplink *u);
static void side_try(struct uplink *u);
static void side_cancel(struct uplink *u, const char *why);
static void log_receipt(struct uplink *u, const struct job *j, const struct sync_segment *seg);

static uint64_t mono_ms(const struct uplink *u)
{
    return u->cfg.mono_ms ? u->cfg.mono_ms(u->cfg.clock_ctx) : uv_now(u->loop);
}

static int64_t real_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(const struct uplink *u)
{
    return u->cfg.wall_ms(u->cfg.clock_ctx);
}

/* Logs a line at level, or at debug when it repeats the last repeated
 * one (a link that stays down does not flood the log). */
static void log_once(struct uplink *u, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_once(struct uplink *u, enum log_level level, const char *fmt, ...)
{
    char line[sizeof u->last_log];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!strcmp(line, u->last_log))
        level = LOG_LEVEL_DEBUG;
    snprintf(u->last_log, sizeof u->last_log, "%s", line);
    log_msg(level, "sync: %s", line);
}

/* What the ledger noted during a job (sync_ledger_take_news). */
static void log_news(const struct sync_ledger_news *n)
{
    if (n->spool > 0)
        log_err("ALARM: sync spool full (%llu bytes in %llu segments, cap %llu): segmenting "
                "stopped until HQ acknowledges segments; changes stay queued in the outbox",
                (unsigned long long)n->spool_bytes, (unsigned long long)n->spool_segments,
                (unsigned long long)n->spool_cap);
    else if (n->spool < 0)
        log_notice("sync spool below its cap again (%llu bytes)",
                   (unsigned long long)n->spool_bytes);
    if (n->policy_now[0])
        log_notice("sync: the policy in force is now %.16s (was %.16s): the spool was voided and "
                   "every record is cut again under it",
                   n->policy_now, n->policy_was);
    if (n->pending_seq)
        log_warning("sync: policy message %llu from HQ (sha256 %s) loosens the policy in force "
                    "(%zu loosen); it waits for acceptance at the node: outpost policy show",
                    (unsigned long long)n->pending_seq, n->pending_hash, n->pending_loosens);
}

/* ---- ledger jobs ---------------------------------------------------------- */

static void job_free(struct job *j)
{
    if (!j)
        return;
    range_set_free(j->vset);
    free(j->text);
    free(j);
}

static struct job *job_new(struct uplink *u, enum job_kind kind, job_then then)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->u = u;
    j->kind = kind;
    j->then = then;
    j->work.data = j;
    op_error_clear(&j->err);
    op_error_clear(&j->err2);
    return j;
}

/* A job carrying a copy of text: len bytes and the NUL after them. NULL when memory runs out. */
static struct job *job_new_text(struct uplink *u, enum job_kind kind, job_then then,
                                const char *text, size_t len)
{
    struct job *j = job_new(u, kind, then);
    if (!j)
        return NULL;
    j->text = malloc(len + 1);
    if (!j->text) {
        job_free(j);
        return NULL;
    }
    memcpy(j->text, text, len + 1);
    j->len = len;
    return j;
}

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct uplink *u = j->u;
    switch (j->kind) {
    case J_OPEN: {
        struct sync_ledger_options o = {
            .db_path = u->db_path,
            .spool_dir = u->spool_dir,
            .cred = &u->cred,
            .segment_bytes = u->cfg.segment_bytes,
            .spool_max_bytes = u->cfg.spool_max_bytes,
            .policy_file = u->policy_file[0] ? u->policy_file : NULL,
            .now_ms = u->cfg.wall_ms,
            .clock_ctx = u->cfg.clock_ctx,
            .pace = u->cfg.pace,
            .first_segment_ms = u->cfg.first_segment_ms,
            .hold_ms = u->cfg.hold_ms,
        };
        j->rc = sync_ledger_open(&o, &u->ledger, &j->err);
        break;
    }
    case J_PREPARE:
        for (int i = 0; j->allow_segment && i < UPLINK_SEGMENTS_PER_JOB; i++) {
            int made = 0;
            j->rc = sync_ledger_make_segment(u->ledger, &made, &j->seg, &j->err);
            if (j->rc < 0 || !made)
                break;
            j->made++;
        }
        j->rc2 = sync_ledger_next_upload_except(u->ledger, j->no, &j->found, &j->seg, &j->err2);
        break;
    case J_SIDE_PICK:
        j->rc = sync_ledger_next_upload_except(u->ledger, j->no, &j->found, &j->seg, &j->err);
        break;
    case J_CUT: {
        int made = 0;
        j->rc = sync_ledger_make_segment(u->ledger, &made, &j->seg, &j->err);
        j->made = made;
        break;
    }
    case J_SET_URL:
        j->rc = sync_ledger_set_upload_url(u->ledger, j->no, j->text, &j->err);
        break;
    case J_MARK_UPLOADED:
        j->rc = sync_ledger_mark_uploaded(u->ledger, j->no, &j->err);
        break;
    case J_RECEIPT:
        j->rc = sync_ledger_apply_receipt(u->ledger, j->no, j->text, j->len, &j->outcome, &j->err);
        break;
    case J_MAILBOX:
        j->rc = sync_ledger_mailbox_store(u->ledger, j->text, j->len, &j->policy_changed, &j->err);
        break;
    case J_RELOAD:
        j->rc = sync_ledger_reload_policy(u->ledger, &j->err);
        break;
    case J_NOTE:
        j->rc = sync_ledger_note_link(u->ledger, &j->rep, &j->err);
        break;
    case J_CHARGE:
        j->rc = sync_ledger_charge_upload(u->ledger, j->no, j->offset, NULL, &j->err);
        break;
    case J_STATUS:
        break;
    case J_WAITING:
        j->rc = sync_ledger_set_waiting(u->ledger, j->text, &j->err);
        break;
    case J_VOIDED:
        j->text = malloc(TUS_URL_MAX + 1);
        if (!j->text) {
            j->rc = op_error_set(&j->err, -ENOMEM, NULL, "out of memory");
            break;
        }
        j->rc = sync_ledger_next_voided(u->ledger, &j->found, &j->no, j->text, TUS_URL_MAX + 1,
                                        &j->err);
        break;
    case J_FORGET_VOIDED:
        j->rc = sync_ledger_forget_voided(u->ledger, j->no, &j->err);
        break;
    case J_VERIFY_START:
        j->rc = sync_ledger_verify_due(u->ledger, (int64_t)u->cfg.verify_interval_ms,
                                       (int64_t)u->verify_jitter_ms, u->started_wall_ms, &j->vid,
                                       &j->err);
        if (j->rc == 0 && j->vid)
            j->rc = sync_ledger_verify_set(u->ledger, &j->vset, &j->in_flight, &j->err);
        break;
    case J_VERIFY_FINISH:
        j->rc = sync_ledger_verify_finish(u->ledger, j->vid, j->vwalk ? u->vwalk : NULL, &j->vrow,
                                          &j->err);
        break;
    case J_FORGET_UNSENT_VOIDED:
        j->rc = sync_ledger_forget_unsent_voided(u->ledger, j->no, &j->records, &j->err);
        break;
    case J_CLOSE:
        sync_ledger_close(u->ledger);
        u->ledger = NULL;
        return;
    }
    if (u->ledger) {
        struct op_error e;
        j->have_status = sync_ledger_status(u->ledger, &j->st, &e) == 0;
        sync_ledger_take_news(u->ledger, &j->news);
    }
}

static void run_next_job(struct uplink *u);

static void job_after(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct uplink *u = j->u;
    u->active = NULL;
    if (j->kind == J_NOTE)
        u->note_queued = 0;
    log_news(&j->news);
    if (status == 0 && j->have_status) {
        u->status = j->st;
        u->have_status = 1;
        if (u->tus) {
            struct tus_client_stats ts;
            tus_client_get_stats(u->tus, &ts);
            u->status.link_bytes_sent = ts.bytes_sent;
            u->status.link_bytes_resent = ts.bytes_resent;
            u->status.link_retries = ts.retries;
            u->status.link_chunk_bytes = ts.chunk_size;
            u->status.link_bytes_confirmed = ts.bytes_confirmed;
            if (u->side.tus) { /* the counters are sums over both clients */
                tus_client_get_stats(u->side.tus, &ts);
                u->status.link_bytes_sent += ts.bytes_sent;
                u->status.link_bytes_resent += ts.bytes_resent;
                u->status.link_retries += ts.retries;
                u->status.link_bytes_confirmed += ts.bytes_confirmed;
            }
        }
    }
    if (status == 0 && !u->stopping && j->then)
        j->then(u, j);
    job_free(j);
    run_next_job(u);
    maybe_finish_stop(u);
}

static void run_next_job(struct uplink *u)
{
    if (u->active || !u->qhead)
        return;
    struct job *j = u->qhead;
    u->qhead = j->next;
    if (!u->qhead)
        u->qtail = NULL;
    j->next = NULL;
    if (j == u->charge_queued)
        u->charge_queued = NULL;
    if (j == u->side.charge_queued)
        u->side.charge_queued = NULL;
    /* Only OPEN and CLOSE may run without an open ledger. */
    if (!u->ledger && j->kind != J_OPEN) {
        job_free(j);
        run_next_job(u);
        return;
    }
    int rc = uv_queue_work(u->loop, &j->work, job_work, job_after);
    if (rc < 0) {
        log_warning("sync: cannot queue ledger work: %s", uv_strerror(rc));
        job_free(j);
        return;
    }
    u->active = j;
}

/* Queues a job; on allocation failure the cycle ends (retried later). */
static int queue_job(struct uplink *u, struct job *j)
{
    if (!j) {
        log_warning("sync: out of memory");
        return -ENOMEM;
    }
    if (u->qtail)
        u->qtail->next = j;
    else
        u->qhead = j;
    u->qtail = j;
    run_next_job(u);
    return 0;
}

/* Records a link error (or, with kind NULL, a successful transfer). */
static void note(struct uplink *u, const char *kind, const char *msg,
                 const struct sync_link_report *r)
{
    struct job *j = job_new(u, J_NOTE, NULL);
    if (!j)
        return;
    if (r)
        j->rep = *r;
    if (kind) {
        snprintf(j->rep_kind, sizeof j->rep_kind, "%s", kind);
        snprintf(j->rep_msg, sizeof j->rep_msg, "%s", msg ? msg : "");
        j->rep.error_kind = j->rep_kind;
        j->rep.error_msg = j->rep_msg;
    }
    (void)queue_job(u, j);
}

/* Reports what the upload under way did since the last report: the bytes
 * HQ acknowledged are charged to the day, with the bytes put on the wire
 * and the round trips saved. While it runs (final 0) at most every
 * UPLINK_CHARGE_MS, so a stuck upload is charged too; at its end (final 1)
 * the rest, with the goodput sample of the whole upload, and kind/msg when
 * it failed. */
static void report_link(struct uplink *u, int final)
{
    report_link_as(u, final, NULL, NULL);
}

static void report_link_as(struct uplink *u, int final, const char *kind, const char *msg)
{
    uint64_t now = mono_ms(u);
    if (!final && now - u->rep_ms < UPLINK_CHARGE_MS)
        return;
    struct tus_client_stats st;
    tus_client_get_stats(u->tus, &st);
    uint64_t conf = st.bytes_confirmed - u->before.bytes_confirmed;
    uint64_t sent = st.bytes_sent - u->before.bytes_sent;
    uint64_t resent = st.bytes_resent - u->before.bytes_resent;
    /* what HQ acknowledged is charged by J_CHARGE, from its offset */
    struct sync_link_report r = {
        .bytes_sent = sent - u->rep_sent,
        .bytes_resent = resent - u->rep_resent,
        .receipts_inline = u->saved_inline,
        .mailbox_skipped = u->saved_mailbox,
    };
    if (final) {
        r.sample_bytes = conf;
        r.duration_ms = now - u->upload_start_ms;
    }
    if (!final && conf == u->rep_confirmed && !r.bytes_sent && !r.bytes_resent)
        return;
    u->rep_confirmed = conf;
    u->rep_sent = sent;
    u->rep_resent = resent;
    u->rep_ms = now;
    u->saved_inline = u->saved_mailbox = 0;
    note(u, kind, msg, &r);
}

/* Reports the round trips saved outside an upload. */
static void report_saved(struct uplink *u)
{
    if (!u->saved_inline && !u->saved_mailbox)
        return;
    struct sync_link_report r = {.receipts_inline = u->saved_inline,
                                 .mailbox_skipped = u->saved_mailbox};
    u->saved_inline = u->saved_mailbox = 0;
    note(u, NULL, NULL, &r);
}

/* ---- timing ------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

/* The one timer: the next cycle when idle, the next receipt poll when busy. */
static void arm(struct uplink *u, uint64_t ms)
{
    (void)uv_timer_start(&u->timer, on_timer, ms, 0);
}

/* The minute of the local day (and its second) by the uplink's clock: what
 * the sync window is decided on. */
static unsigned local_minute(const struct uplink *u, unsigned *second)
{
    int64_t ms = wall_ms(u);
    time_t now = (time_t)(ms >= 0 ? ms / 1000 : 0);
    struct tm tm;
    if (!localtime_r(&now, &tm)) {
        *second = 0;
        return 0;
    }
    *second = (unsigned)tm.tm_sec;
    return (unsigned)(tm.tm_hour * 60 + tm.tm_min);
}

/* Records why sync waits with nothing wrong ("" for not waiting), for
 * `outpost status`; a ledger write only when the text changes. */
static void set_waiting(struct uplink *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_waiting(struct uplink *u, const char *fmt, ...)
{
    char text[sizeof u->waiting];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!strcmp(text, u->waiting))
        return;
    struct job *j = job_new_text(u, J_WAITING, NULL, text, strlen(text));
    if (queue_job(u, j) == 0)
        snprintf(u->waiting, sizeof u->waiting, "%s", text);
}

/* ---- the cycle --------------------------------------------------------------- */

static const char *tus_error_kind(const struct op_error *e)
{
    if (!strcmp(e->field, "tls") || e->code == -EPERM)
        return "tls";
    if (e->code == -EACCES)
        return "auth";
    if (!strcmp(e->field, "Upload-Checksum"))
        return "checksum";
    if (!strcmp(e->field, "network"))
        return "network";
    if (e->code == -ENOENT || e->code == -ESTALE || (e->code == -EIO && e->field[0] == '/'))
        return "spool";
    return "http";
}

static void after_open(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_ERR,
                 "cannot open the sync ledger, sync is off until this is fixed: %s", j->err.msg);
        cycle_end(u);
        return;
    }
    u->last_log[0] = '\0';
    log_notice("sync: node %s (%s) syncing to %s", u->cred.node_id, u->cred.region, u->base);
    start_cycle(u);
}

static void on_timer(uv_timer_t *t)
{
    struct uplink *u = t->data;
    if (u->stopping)
        return;
    if (u->busy) { /* a receipt poll waiting for its turn */
        poll_receipt(u);
        return;
    }
    u->busy = 1;
    u->kick_pending = 0;
    u->progress = 0;
    u->mailbox_pages = 0;
    u->talked = 0;
    if (!u->ledger) {
        if (queue_job(u, job_new(u, J_OPEN, after_open)) < 0)
            cycle_end(u);
        return;
    }
    start_cycle(u);
}

static uint64_t budget_left(const struct uplink *u)
{
    uint64_t today = u->have_status ? u->status.bytes_today : 0;
    return sync_budget_left(u->cfg.daily_bytes, today);
}

static void wait_for_budget(struct uplink *u)
{
    set_waiting(u,
                "the daily budget of %llu bytes is spent (%llu sent today, UTC); uploads "
                "resume after 00:00 UTC",
                (unsigned long long)u->cfg.daily_bytes, (unsigned long long)u->status.bytes_today);
}

static void after_prepare(struct uplink *u, struct job *j)
{
    if (j->no && (!u->side.active || u->side.seg.no != j->no)) {
        /* the side let go of the segment passed over meanwhile: look again */
        prepare_segments(u, j->allow_segment);
        return;
    }
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot make a segment: %s", j->err.msg);
        note(u, "segment", j->err.msg, NULL);
    }
    if (j->made)
        u->progress = 1;
    if (j->rc2 < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot read the segment table: %s", j->err2.msg);
        check_mailbox(u);
        return;
    }
    if (!j->found) {
        set_waiting(u, "%s", "");
        verify_or_mailbox(u);
        return;
    }
    u->seg = j->seg;
    u->holding = 1;
    u->created = 0;
    if (u->seg.state == SYNC_SEG_UPLOADED) {
        u->created = 1; /* HQ has it whole */
        side_try(u);
        u->poll_attempt = 0;
        u->poll_start_ms = mono_ms(u);
        poll_receipt(u);
        return;
    }
    if (!budget_left(u)) {
        int64_t day = sync_utc_day(wall_ms(u));
        if ((uint64_t)day != u->budget_logged_day) {
            u->budget_logged_day = (uint64_t)day;
            log_info("sync: daily budget of %llu bytes reached (%llu sent today); uploads wait "
                     "for the next UTC day",
                     (unsigned long long)u->cfg.daily_bytes,
                     (unsigned long long)u->status.bytes_today);
        }
        wait_for_budget(u);
        check_mailbox(u);
        return;
    }
    upload_segment(u);
}

static void start_cycle(struct uplink *u)
{
    unsigned sec;
    unsigned minute = local_minute(u, &sec);
    if (!sync_window_contains(&u->window, minute)) {
        /* outside the window: only refresh the figures */
        set_waiting(
            u, "outside the sync window %02u:%02u-%02u:%02u (local time); it opens at %02u:%02u",
            u->window.start_min / 60, u->window.start_min % 60, u->window.end_min / 60,
            u->window.end_min % 60, u->window.start_min / 60, u->window.start_min % 60);
        if (queue_job(u, job_new(u, J_STATUS, NULL)) < 0) {
            cycle_end(u);
            return;
        }
        cycle_end(u);
        return;
    }
    /* First take back at HQ what voided segments left there. */
    next_voided(u);
}

static void prepare_segments(struct uplink *u, int allow_segment)
{
    struct job *j = job_new(u, J_PREPARE, after_prepare);
    if (j) {
        j->allow_segment = allow_segment;
        j->no = u->side.active ? u->side.seg.no : 0; /* the side slot holds it */
    }
    if (queue_job(u, j) < 0)
        cycle_end(u);
}

static void prepare(struct uplink *u)
{
    prepare_segments(u, 1);
}

/* A voided segment's fate at HQ is not known yet (no answer to its
 * termination or to the receipt asked after it): nothing is cut until it
 * is, since what the new segments withdraw depends on it (the records of
 * a segment HQ never had are not withdrawn). What is already cut goes on. */
static void prepare_unresolved(struct uplink *u)
{
    prepare_segments(u, 0);
}

/* The next voided segment, if any, before anything is cut. */
static void next_voided(struct uplink *u)
{
    if (queue_job(u, job_new(u, J_VOIDED, after_voided)) < 0)
        cycle_end(u);
}

static void after_forget_voided(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot forget voided segment %llu: %s",
                 (unsigned long long)j->no, j->err.msg);
        prepare(u); /* its records stay counted as sent: withdrawals follow */
        return;
    }
    next_voided(u);
}

static void forget_voided(struct uplink *u, enum job_kind kind, job_then then)
{
    struct job *j = job_new(u, kind, then);
    if (j)
        j->no = u->voided_no;
    if (queue_job(u, j) < 0)
        cycle_end(u);
}

static void after_forget_unsent(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot forget voided segment %llu: %s",
                 (unsigned long long)j->no, j->err.msg);
        prepare_unresolved(u);
        return;
    }
    log_notice("sync: voided segment %llu never reached HQ (no upload, no receipt): %lld "
               "records that went only into it are not withdrawn",
               (unsigned long long)j->no, (long long)j->records);
    next_voided(u);
}

/* HQ's answer to GET /v1/receipts/N for a voided segment whose upload it
 * does not know: a receipt means it had the segment whole and settled it
 * (the upload record expired since), so its records are withdrawn; none
 * means it never had it. */
static void on_voided_receipt(void *ctx, int status, const char *body, size_t len,
                              const struct op_error *err)
{
    (void)body;
    (void)len;
    struct uplink *u = ctx;
    if (u->stopping || status == -ECANCELED)
        return;
    if (status == 200) {
        log_notice("sync: voided segment %llu: HQ settled it before it was voided; what is "
                   "withheld now follows as withdrawals",
                   (unsigned long long)u->voided_no);
        forget_voided(u, J_FORGET_VOIDED, after_forget_voided);
        return;
    }
    if (status == 404) {
        forget_voided(u, J_FORGET_UNSENT_VOIDED, after_forget_unsent);
        return;
    }
    log_once(u, LOG_LEVEL_WARNING, "voided segment %llu: cannot ask HQ for its receipt yet: %s",
             (unsigned long long)u->voided_no,
             err && err->msg[0] ? err->msg
             : status < 0       ? strerror(-status)
                                : "unexpected status");
    prepare_unresolved(u);
}

/* The end of the DELETE of a voided segment's upload. */
static void on_terminated(void *ctx, int status, const struct op_error *err)
{
    struct uplink *u = ctx;
    if (u->stopping || status == -ECANCELED)
        return;
    if (status == 0 || status == -EALREADY) {
        log_notice("sync: voided segment %llu: %s", (unsigned long long)u->voided_no,
                   status == 0 ? "its partial upload at HQ was terminated"
                               : "HQ had received it whole before it was voided; what is "
                                 "withheld now follows as withdrawals");
        forget_voided(u, J_FORGET_VOIDED, after_forget_voided);
        return;
    }
    if (status == -ENOENT) {
        /* No such upload: never created (the URL is recorded before the
         * creation is sent), or expired after HQ settled it. The receipt
         * tells the two apart. */
        char url[TUS_URL_MAX + 64];
        snprintf(url, sizeof url, "%s/v1/receipts/%llu", u->base, (unsigned long long)u->voided_no);
        struct op_error e;
        op_error_clear(&e);
        if (tus_client_get(u->tus, url, UPLINK_RECEIPT_MAX, on_voided_receipt, u, &e) < 0) {
            log_once(u, LOG_LEVEL_WARNING, "voided segment %llu: cannot ask for its receipt: %s",
                     (unsigned long long)u->voided_no, e.msg);
            prepare_unresolved(u);
        }
        return;
    }
    log_once(u, LOG_LEVEL_WARNING, "voided segment %llu: cannot terminate its upload at HQ yet: %s",
             (unsigned long long)u->voided_no, err ? err->msg : strerror(-status));
    prepare_unresolved(u);
}

static void after_voided(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot read the voided segments: %s", j->err.msg);
        prepare_unresolved(u);
        return;
    }
    if (!j->found) {
        prepare(u);
        return;
    }
    u->voided_no = j->no;
    struct op_error e;
    op_error_clear(&e);
    /* through the client sending to it, if one is: that upload ends first */
    struct tus_client *t =
        u->side.active && !strcmp(u->side.seg.upload_url, j->text) ? u->side.tus : u->tus;
    if (tus_client_terminate(t, j->text, on_terminated, u, &e) < 0) {
        log_once(u, LOG_LEVEL_WARNING, "voided segment %llu: cannot ask HQ to terminate it: %s",
                 (unsigned long long)j->no, e.msg);
        prepare_unresolved(u);
    }
}

static void cycle_end(struct uplink *u)
{
    u->busy = 0;
    u->holding = 0;
    u->created = 0;
    u->wait_side = 0;
    if (u->stopping)
        return;
    uint64_t delay = u->cfg.interval_ms;
    unsigned sec;
    unsigned minute = local_minute(u, &sec);
    uint64_t wait = sync_window_wait_ms(&u->window, minute, sec);
    if (wait && wait + 1000 < delay)
        delay = wait + 1000;
    if ((u->kick_pending || u->progress) && u->ledger && !wait)
        delay = 0;
    arm(u, delay);
}

/* ---- upload -------------------------------------------------------------- */

static void after_cut(struct uplink *u, struct job *j)
{
    u->cut_queued = 0;
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot make a segment: %s", j->err.msg);
        note(u, "segment", j->err.msg, NULL);
    }
}

/* Cutting ahead (docs/UPLINK.md): while the link takes a segment, the
 * next one is cut beside it, if the ledger's pace says one is due (full,
 * urgent rows, or rows that waited sync_hold_ms). One ledger job at a
 * time: queued when the link takes a segment and on a write while it
 * does, at most once a second. */
static void cut_ahead(struct uplink *u)
{
    if (!u->cfg.pace || u->cut_queued || !u->ledger || u->stopping)
        return;
    u->cut_queued = 1;
    u->cut_ms = mono_ms(u);
    if (queue_job(u, job_new(u, J_CUT, after_cut)) < 0)
        u->cut_queued = 0;
}

/* HQ holds the cycle's upload (it answered its creation, or the HEAD of a
 * resumed one): the side slot may create the next segment's upload. */
static void mark_created(struct uplink *u)
{
    if (u->created)
        return;
    u->created = 1;
    side_try(u);
}

/* The URL is in the ledger (or could not be recorded): only now may
 * bytes of the segment go. A byte sent before would let a voiding think HQ
 * never saw the segment's records (docs/EGRESS.md). */
static void after_set_url(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING,
                 "segment %llu: cannot record its upload URL: %s; nothing of it is sent",
                 (unsigned long long)j->no, j->err.msg);
        tus_client_cancel(u->tus, "the upload URL could not be recorded");
        return;
    }
    tus_client_resume(u->tus);
    cut_ahead(u);
    if (!u->cfg.create_with_data) /* HQ answered the creation */
        mark_created(u);
}

static int on_created(void *ctx, const char *url)
{
    struct uplink *u = ctx;
    if (u->stopping)
        return 0;
    u->resume_charge = 0; /* a new upload: HQ held nothing of it */
    snprintf(u->seg.upload_url, sizeof u->seg.upload_url, "%s", url);
    struct job *j = job_new_text(u, J_SET_URL, after_set_url, url, strlen(url));
    if (j)
        j->no = u->seg.no;
    if (queue_job(u, j) < 0) {
        tus_client_cancel(u->tus, "the upload URL could not be recorded");
        return 0;
    }
    return TUS_CREATED_HOLD;
}

static void on_retry(void *ctx, unsigned attempt, uint64_t delay_ms, const struct op_error *why)
{
    struct uplink *u = ctx;
    if (u->stopping)
        return;
    /* 1, 2, 4, 8...: a flaky link does not flood the log; the rest at debug */
    log_msg((attempt & (attempt - 1)) == 0 ? LOG_LEVEL_WARNING : LOG_LEVEL_DEBUG,
            "sync: segment %llu: %s; retry %u in %llu ms", (unsigned long long)u->seg.no, why->msg,
            attempt, (unsigned long long)delay_ms);
    if (!u->note_queued) {
        u->note_queued = 1;
        note(u, tus_error_kind(why), why->msg, NULL);
    }
    report_link(u, 0);
    check_budget(u);
}

static void after_receipt(struct uplink *u, struct job *j);

/* The receipt the completing PATCH carried, verified and applied as a
 * GET's: one round trip saved. One that does not verify changed nothing;
 * it is logged and the GET asks for the receipt as before. */
static void after_inline_receipt(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING,
                 "segment %llu: the receipt on the completing PATCH is refused (%s); asking HQ "
                 "for it",
                 (unsigned long long)j->no, j->err.msg);
        poll_receipt(u);
        return;
    }
    u->saved_inline++;
    after_receipt(u, j);
}

static void after_mark_uploaded(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot record segment %llu as uploaded: %s",
                 (unsigned long long)j->no, j->err.msg);
        cycle_end(u);
        return;
    }
    u->seg.state = SYNC_SEG_UPLOADED;
    u->poll_attempt = 0;
    u->poll_start_ms = mono_ms(u);
    char *rcpt = u->inline_receipt;
    u->inline_receipt = NULL;
    if (rcpt) {
        struct job *r =
            job_new_text(u, J_RECEIPT, after_inline_receipt, rcpt, u->inline_receipt_len);
        free(rcpt);
        if (r) {
            r->no = u->seg.no;
            if (queue_job(u, r) == 0)
                return;
        }
    }
    poll_receipt(u);
}

static void on_upload_done(void *ctx, int status, const char *url, const struct op_error *err)
{
    struct uplink *u = ctx;
    if (u->stopping || status == -ECANCELED)
        return;
    u->uploading = 0;
    (void)uv_timer_stop(&u->pause_timer);
    if (status == -EINTR) { /* paused (window or budget): on_pause said so */
        report_link(u, 1);
        cycle_end(u);
        return;
    }
    if (status == -ESTALE) {
        /* A write withheld a record and voided the spool: nothing more of
         * this segment leaves; the next cycle terminates its upload at HQ
         * and cuts the range again (docs/EGRESS.md, "In time"). */
        log_notice("sync: segment %llu voided during its upload (%llu of %llu bytes "
                   "confirmed): upload stopped",
                   (unsigned long long)u->seg.no, (unsigned long long)u->seg_confirmed,
                   (unsigned long long)u->seg.bytes);
        report_link(u, 1);
        u->progress = 1;
        cycle_end(u);
        return;
    }
    if (status < 0) {
        const char *kind = tus_error_kind(err);
        log_warning("sync: segment %llu: upload failed (%s): %s", (unsigned long long)u->seg.no,
                    kind, err ? err->msg : strerror(-status));
        report_link_as(u, 1, kind, err ? err->msg : strerror(-status));
        cycle_end(u);
        return;
    }
    (void)url;
    report_link(u, 1);
    struct job *j = job_new(u, J_MARK_UPLOADED, after_mark_uploaded);
    if (j)
        j->no = u->seg.no;
    if (queue_job(u, j) < 0)
        cycle_end(u);
}

/* The sync window closed, or the upload used up today's budget, with an
 * upload under way: stop sending now. HQ keeps what it confirmed and the
 * segment row keeps the upload URL, so the first cycle inside the next
 * window (or UTC day) resumes after a HEAD. */
static void on_pause(uv_timer_t *t)
{
    struct uplink *u = t->data;
    if (u->stopping || (!u->uploading && !u->side.uploading))
        return;
    if (u->budget_pause) {
        log_info("sync: daily budget of %llu bytes spent: segment %llu paused at %llu of %llu "
                 "bytes; it resumes after 00:00 UTC",
                 (unsigned long long)u->cfg.daily_bytes, (unsigned long long)u->seg.no,
                 (unsigned long long)u->seg_confirmed, (unsigned long long)u->seg.bytes);
        u->budget_logged_day = (uint64_t)sync_utc_day(wall_ms(u));
        side_cancel(u, "the daily budget is spent");
        tus_client_cancel(u->tus, "the daily budget is spent");
        return;
    }
    unsigned sec;
    unsigned minute = local_minute(u, &sec);
    if (sync_window_contains(&u->window, minute)) { /* the clock moved back: look again */
        uint64_t left = sync_window_left_ms(&u->window, minute, sec);
        (void)uv_timer_start(&u->pause_timer, on_pause, left ? left : 1000, 0);
        return;
    }
    log_info("sync: the sync window closed: segment %llu paused at %llu of %llu bytes; it "
             "resumes when the window opens at %02u:%02u",
             (unsigned long long)u->seg.no, (unsigned long long)u->seg_confirmed,
             (unsigned long long)u->seg.bytes, u->window.start_min / 60, u->window.start_min % 60);
    set_waiting(u,
                "the sync window closed: segment %llu paused at %llu of %llu bytes; it resumes at "
                "%02u:%02u (local time)",
                (unsigned long long)u->seg.no, (unsigned long long)u->seg_confirmed,
                (unsigned long long)u->seg.bytes, u->window.start_min / 60,
                u->window.start_min % 60);
    side_cancel(u, "the sync window closed");
    tus_client_cancel(u->tus, "the sync window closed");
}

/* Pauses the upload once it has sent what today's budget leaves (within
 * one chunk: the check runs as chunks are confirmed or retried). */
static void check_budget(struct uplink *u)
{
    if (!u->uploading || u->budget_left == UINT64_MAX || u->budget_pause)
        return;
    struct tus_client_stats st;
    tus_client_get_stats(u->tus, &st);
    if (st.bytes_confirmed - u->before.bytes_confirmed >= u->budget_left) {
        /* pause from the loop, not from inside the uploader's callback */
        u->budget_pause = 1;
        (void)uv_timer_start(&u->pause_timer, on_pause, 0, 0);
    }
}

/* HQ stated its offset of the upload: charged to the day in the ledger
 * (the difference to what is charged already, so a restart's HEAD charges
 * what HQ took before the kill). One waiting job takes the newest. */
static void charge_offset(struct uplink *u, uint64_t confirmed)
{
    if (u->charge_queued && u->charge_queued->no == u->seg.no) {
        u->charge_queued->offset = confirmed;
        return;
    }
    struct job *j = job_new(u, J_CHARGE, after_charge);
    if (!j) {
        if (u->charge_held) { /* not charged now: the budget pauses later */
            u->charge_held = 0;
            tus_client_resume(u->tus);
        }
        return; /* the next offset charges it */
    }
    j->no = u->seg.no;
    j->offset = confirmed;
    u->charge_queued = j; /* until run_next_job takes it */
    (void)queue_job(u, j);
}

/* A charge can spend the budget by itself: after a restart, the HEAD's
 * offset charges what HQ took before it, which the budget the upload
 * started with did not know of. Pause then, as check_budget would. */
static void after_charge(struct uplink *u, struct job *j)
{
    (void)j;
    int held = u->charge_held;
    u->charge_held = 0;
    if (!u->uploading || u->budget_left == UINT64_MAX || u->budget_pause ||
        u->seg_confirmed >= u->seg.bytes) {
        if (held)
            tus_client_resume(u->tus);
        return;
    }
    uint64_t left = budget_left(u);
    if (left) {
        if (held) {
            /* The restart's HEAD is charged: the resumed request carries
             * what the day has left, no more. */
            u->budget_left = left;
            tus_client_get_stats(u->tus, &u->before);
            tus_client_set_chunk_cap(u->tus, left);
            tus_client_resume(u->tus);
        }
        return;
    }
    u->budget_pause = 1;
    (void)uv_timer_start(&u->pause_timer, on_pause, 0, 0);
}

static void on_upload_progress(void *ctx, uint64_t confirmed, uint64_t total)
{
    struct uplink *u = ctx;
    if (u->resume_charge) {
        /* the first offset of a resumed upload (its HEAD): nothing more
         * goes before it is charged (after_charge resumes) */
        u->resume_charge = 0;
        if (confirmed < total) {
            u->charge_held = 1;
            tus_client_hold(u->tus);
        }
    }
    u->seg_confirmed = confirmed;
    mark_created(u);
    charge_offset(u, confirmed);
    report_link(u, 0);
    if (confirmed < total)
        check_budget(u);
}

/* The completing PATCH carried HQ's receipt: kept until the upload is
 * recorded, then verified as a GET's would be. */
static void on_upload_receipt(void *ctx, const char *json, size_t len)
{
    struct uplink *u = ctx;
    if (u->stopping || len > UPLINK_RECEIPT_MAX)
        return;
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* the GET asks for it */
    memcpy(copy, json, len);
    copy[len] = '\0';
    free(u->inline_receipt);
    u->inline_receipt = copy;
    u->inline_receipt_len = len;
}

/* The id HQ knows an upload by: the last path component of its URL. */
static const char *upload_id(const char *url)
{
    const char *slash = strrchr(url, '/');
    return slash ? slash + 1 : url;
}

static void upload_segment(struct uplink *u)
{
    u->created = 0;
    struct side *s = &u->side;
    int below = s->active && s->seg.no < u->seg.no;
    if (below && !s->created) {
        /* the ordering contract: this creation goes only once HQ answered
         * the lower segment's (side_created resumes here) */
        u->wait_side = 1;
        return;
    }
    char no[24];
    snprintf(no, sizeof no, "%llu", (unsigned long long)u->seg.no);
    char key[24];
    snprintf(key, sizeof key, "seg-%llu", (unsigned long long)u->seg.no);
    struct tus_meta meta[] = {{"node", u->cred.node_id},
                              {"segment", no},
                              {"after", below ? upload_id(s->seg.upload_url) : ""}};
    struct tus_upload_params p = {
        .path = u->seg.path,
        .upload_url = u->seg.upload_url[0] ? u->seg.upload_url : NULL,
        .meta = meta,
        .nmeta = below && s->seg.upload_url[0] ? 3 : 2,
        /* Named by the node: the URL is recorded before the POST, which
         * carries the first bytes (docs/UPLINK.md). */
        .upload_key = key,
        .principal = u->cred.node_id,
        .create_with_data = u->cfg.create_with_data,
        .cb = {.on_created = on_created,
               .on_progress = on_upload_progress,
               .on_retry = on_retry,
               .on_receipt = on_upload_receipt,
               .on_done = on_upload_done},
        .ctx = u,
    };
    /* One PATCH may carry a whole segment: the one that reaches today's
     * budget ends there, so the pause comes within the budget. */
    uint64_t allowed = budget_left(u);
    if (allowed != UINT64_MAX)
        p.chunk_cap = allowed;
    tus_client_get_stats(u->tus, &u->before);
    u->upload_start_ms = mono_ms(u);
    u->rep_confirmed = u->rep_sent = u->rep_resent = 0;
    u->rep_ms = u->upload_start_ms;
    free(u->inline_receipt);
    u->inline_receipt = NULL;
    u->talked = 1;
    struct op_error e;
    op_error_clear(&e);
    if (tus_client_upload(u->tus, &p, &e) < 0) {
        log_once(u, LOG_LEVEL_WARNING, "segment %llu: cannot start the upload: %s",
                 (unsigned long long)u->seg.no, e.msg);
        note(u, "spool", e.msg, NULL);
        cycle_end(u);
        return;
    }
    u->uploading = 1;
    u->seg_confirmed = 0;
    u->budget_left = budget_left(u);
    u->budget_pause = 0;
    u->charge_held = 0;
    u->resume_charge = p.upload_url && u->budget_left != UINT64_MAX;
    if (p.upload_url)
        cut_ahead(u); /* the link takes it now (a new upload: once its URL is recorded) */
    set_waiting(u, "%s", "");
    unsigned sec;
    unsigned minute = local_minute(u, &sec);
    uint64_t left = sync_window_left_ms(&u->window, minute, sec);
    if (left != UINT64_MAX)
        (void)uv_timer_start(&u->pause_timer, on_pause, left ? left : 1, 0);
}

/* ---- receipt -------------------------------------------------------------- */

static void log_receipt(struct uplink *u, const struct job *j, const struct sync_segment *seg)
{
    (void)u;
    json_error_t je;
    json_t *r = json_loadb(j->text, j->len, 0, &je);
    json_int_t applied = 0, set_aside = 0, records = (json_int_t)seg->records;
    const char *reason = "";
    if (r) {
        applied = json_integer_value(json_object_get(r, "applied"));
        set_aside = json_integer_value(json_object_get(r, "set_aside"));
        if (json_is_integer(json_object_get(r, "records")))
            records = json_integer_value(json_object_get(r, "records"));
        if (json_is_string(json_object_get(r, "reason")))
            reason = json_string_value(json_object_get(r, "reason"));
    }
    if (j->outcome == SYNC_SEG_ACKED)
        log_info("sync: segment %llu uploaded (%llu bytes, %lld records) applied at HQ (%lld "
                 "applied, %lld set aside)",
                 (unsigned long long)j->no, (unsigned long long)seg->bytes, (long long)records,
                 (long long)applied, (long long)set_aside);
    else if (j->outcome == SYNC_SEG_VOIDED)
        log_notice("sync: segment %llu was voided after its last byte left; HQ settled it, and "
                   "what is withheld now follows as withdrawals",
                   (unsigned long long)j->no);
    else
        log_err("sync: ALARM: segment %llu REJECTED by HQ: %s; sync is stopped until the region "
                "policy changes",
                (unsigned long long)j->no, reason[0] ? reason : "(no reason given)");
    json_decref(r);
}

static void after_receipt(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "segment %llu: receipt refused: %s",
                 (unsigned long long)j->no, j->err.msg);
        note(u, "receipt", j->err.msg, NULL);
        /* HQ may fix what it sends; ask again after an interval */
        u->poll_attempt = 30;
        arm(u, u->cfg.interval_ms);
        return;
    }
    u->last_log[0] = '\0';
    log_receipt(u, j, &u->seg);
    u->progress = 1;
    check_mailbox(u);
}

/* A GET to HQ that failed: logged once and noted under `kind`, as
 * "<what> answered <status>: <body>" when HQ answered, else as the
 * transport's message. */
static void get_failed(struct uplink *u, const char *kind, const char *what, int status,
                       const char *body, const struct op_error *err)
{
    char msg[256];
    if (status > 0)
        snprintf(msg, sizeof msg, "%s answered %d: %.150s", what, status, body);
    else
        snprintf(msg, sizeof msg, "%.250s", err ? err->msg : strerror(-status));
    log_once(u, LOG_LEVEL_WARNING, "%s", msg);
    note(u, kind, msg, NULL);
}

static void on_receipt(void *ctx, int status, const char *body, size_t len,
                       const struct op_error *err)
{
    struct uplink *u = ctx;
    if (u->stopping || status == -ECANCELED)
        return;
    if (status == 200) {
        struct job *j = job_new_text(u, J_RECEIPT, after_receipt, body, len);
        if (j)
            j->no = u->seg.no;
        if (queue_job(u, j) < 0)
            cycle_end(u);
        return;
    }
    uint64_t waited = mono_ms(u) - u->poll_start_ms;
    uint64_t patience = u->cfg.interval_ms * 6 > 60000 ? u->cfg.interval_ms * 6 : 60000;
    if (status == 404 && waited > patience && u->reuploaded_no != u->seg.no) {
        /* HQ holds no receipt long after the upload: it may have refused
         * the bytes without one (docs/SYNC_PROTOCOL.md). Upload once more,
         * as a new upload: the old URL answers "complete" while HQ keeps
         * it settled, and would send nothing. */
        u->reuploaded_no = u->seg.no;
        u->seg.upload_url[0] = '\0';
        char msg[160];
        snprintf(msg, sizeof msg, "no receipt for segment %llu after %llu s; uploading it again",
                 (unsigned long long)u->seg.no, (unsigned long long)(waited / 1000));
        log_warning("sync: %s", msg);
        note(u, "receipt", msg, NULL);
        upload_segment(u);
        return;
    }
    if (status != 404) {
        const char *kind = status == -EPERM                 ? "tls"
                           : status == 401 || status == 403 ? "auth"
                           : status < 0 && status != -EFBIG ? "network"
                                                            : "receipt";
        char what[64];
        snprintf(what, sizeof what, "GET receipt %llu", (unsigned long long)u->seg.no);
        get_failed(u, kind, what, status, body, err);
    }
    /* not applied yet: 250 ms, 500 ms, ... up to the sync interval; when
     * HQ answers but has no receipt past the patience, with the one upload
     * again already spent, on up to
     * UPLINK_RECEIPT_SLOW_MS: a receiver that gives no receipt is not
     * asked every interval forever, and `outpost status` says what sync
     * waits for */
    uint64_t cap = u->cfg.interval_ms;
    if (status == 404 && waited > patience && u->reuploaded_no == u->seg.no) {
        if (cap < UPLINK_RECEIPT_SLOW_MS)
            cap = UPLINK_RECEIPT_SLOW_MS;
        set_waiting(u,
                    "waiting for HQ's receipt of segment %llu: none since it was uploaded "
                    "(and uploaded again); asking less often, at most every %u s",
                    (unsigned long long)u->seg.no, (unsigned)(UPLINK_RECEIPT_SLOW_MS / 1000u));
    }
    uint64_t delay = UPLINK_RECEIPT_FIRST_MS;
    for (unsigned i = 0; i < u->poll_attempt && delay < cap; i++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    u->poll_attempt++;
    arm(u, delay);
}

static void poll_receipt(struct uplink *u)
{
    u->talked = 1;
    char url[TUS_URL_MAX + 64];
    snprintf(url, sizeof url, "%s/v1/receipts/%llu", u->base, (unsigned long long)u->seg.no);
    struct op_error e;
    op_error_clear(&e);
    if (tus_client_get(u->tus, url, UPLINK_RECEIPT_MAX, on_receipt, u, &e) < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot ask for receipt %llu: %s",
                 (unsigned long long)u->seg.no, e.msg);
        cycle_end(u);
    }
}

/* ---- mailbox -------------------------------------------------------------- */

static void after_mailbox(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "mailbox answer refused: %s", j->err.msg);
        note(u, "mailbox", j->err.msg, NULL);
        cycle_end(u);
        return;
    }
    if (j->policy_changed) {
        log_notice("sync: a new region policy arrived from HQ; reloading it");
        if (u->cfg.policy_changed)
            u->cfg.policy_changed(u->cfg.ctx);
        (void)queue_job(u, job_new(u, J_RELOAD, NULL));
        u->progress = 1;
    }
    /* a full page: there may be more */
    json_error_t je;
    json_t *r = json_loadb(j->text, j->len, 0, &je);
    size_t n = r ? json_array_size(json_object_get(r, "messages")) : 0;
    json_decref(r);
    if (n >= UPLINK_MAILBOX_PAGE && ++u->mailbox_pages < UPLINK_MAILBOX_PAGES) {
        poll_mailbox(u);
        return;
    }
    cycle_end(u);
}

static void on_mailbox(void *ctx, int status, const char *body, size_t len,
                       const struct op_error *err)
{
    struct uplink *u = ctx;
    if (u->stopping || status == -ECANCELED)
        return;
    if (status != 200) {
        const char *kind = status == -EPERM                 ? "tls"
                           : status == 401 || status == 403 ? "auth"
                           : status == -EAGAIN              ? "network"
                                                            : "mailbox";
        get_failed(u, kind, "GET mailbox", status, body, err);
        cycle_end(u);
        return;
    }
    struct job *j = job_new_text(u, J_MAILBOX, after_mailbox, body, len);
    if (queue_job(u, j) < 0)
        cycle_end(u);
}

/* Whether this cycle asks HQ for its mailbox. The mailbox check rides on
 * the requests already made: when a request of this cycle, or of a cycle
 * that ended less than one sync_interval ago, carried HQ's
 * Outpost-Mailbox-Last and it is not above the cursor, nothing is new and
 * the GET is skipped (counted as saved); the first cycle after start
 * included. A node idle for a sync_interval learns nothing from HQ
 * otherwise and asks. An HQ that sends no hint is asked in the first cycle
 * and then every cycle without a request, and UPLINK_MAILBOX_POLL_MS after
 * the last poll. */
static int mailbox_due(struct uplink *u)
{
    uint64_t now = mono_ms(u);
    if (u->talked)
        u->talked_ms = now ? now : 1;
    /* a side upload under way talks to HQ: its answers bring the hint,
     * and its end starts the next cycle */
    int fresh =
        u->talked || u->side.active || (u->talked_ms && now - u->talked_ms < u->cfg.interval_ms);
    int known = 0, known2 = 0;
    uint64_t last = tus_client_mailbox_last(u->tus, &known);
    if (u->side.tus) { /* the side's answers carry the hint too */
        uint64_t last2 = tus_client_mailbox_last(u->side.tus, &known2);
        if (known2 && (!known || last2 > last))
            last = last2;
        known |= known2;
    }
    if (!fresh)
        return 1;
    if (!known)
        return !u->mailbox_polled || now - u->mailbox_poll_ms >= UPLINK_MAILBOX_POLL_MS;
    uint64_t after = u->have_status ? u->status.mailbox_after : 0;
    return last > after;
}

/* The mailbox step of a cycle: a GET when due, else the cycle ends. */
static void check_mailbox(struct uplink *u)
{
    if (mailbox_due(u)) {
        report_saved(u);
        poll_mailbox(u);
        return;
    }
    u->saved_mailbox++;
    report_saved(u);
    cycle_end(u);
}

static void poll_mailbox(struct uplink *u)
{
    u->mailbox_polled = 1;
    u->mailbox_poll_ms = mono_ms(u);
    char url[TUS_URL_MAX + 64];
    uint64_t after = u->have_status ? u->status.mailbox_after : 0;
    snprintf(url, sizeof url, "%s/v1/mailbox?after=%llu", u->base, (unsigned long long)after);
    struct op_error e;
    op_error_clear(&e);
    if (tus_client_get(u->tus, url, UPLINK_MAILBOX_MAX, on_mailbox, u, &e) < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot poll the mailbox: %s", e.msg);
        cycle_end(u);
    }
}

/* ---- anti-entropy ------------------------------------------------------------ */

static void verify_next(struct uplink *u);

static void verify_drop(struct uplink *u)
{
    range_walk_free(u->vwalk);
    range_set_free(u->vset);
    u->vwalk = NULL;
    u->vset = NULL;
    u->verify_id = 0;
}

static void on_report(void *ctx, int status, const char *body, size_t len,
                      const struct op_error *err)
{
    (void)len;
    struct uplink *u = ctx;
    if (u->stopping || status == -ECANCELED)
        return;
    if (status != 200)
        log_once(u, LOG_LEVEL_WARNING, "HQ did not take the check's report: %s",
                 status < 0 && err ? err->msg : body);
    else
        u->talked = 1;
    check_mailbox(u);
}

static void after_verify_finish(struct uplink *u, struct job *j)
{
    const struct sync_verify_row *r = &j->vrow;
    int walked = j->vwalk;
    verify_drop(u);
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "anti-entropy check %lld: cannot record it: %s",
                 (long long)j->vid, j->err.msg);
        check_mailbox(u);
        return;
    }
    if (!strcmp(r->result, "failed"))
        log_warning("sync: anti-entropy check %lld failed: %s", (long long)j->vid, r->detail);
    else
        log_notice("sync: anti-entropy check %lld: %s: %llu records here, %llu at HQ, %llu "
                   "differed, %llu queued again, %llu reported; %llu ranges in %llu requests, "
                   "%llu bytes%s%s",
                   (long long)j->vid, r->result, (unsigned long long)r->compared,
                   (unsigned long long)r->hq_records, (unsigned long long)r->drift,
                   (unsigned long long)r->resent, (unsigned long long)r->reported,
                   (unsigned long long)r->ranges, (unsigned long long)r->requests,
                   (unsigned long long)r->bytes, r->detail[0] ? ": " : "", r->detail);
    if (r->resent)
        u->progress = 1; /* the repairs go out in the next cycle, at once */
    if (!walked) {
        check_mailbox(u);
        return;
    }
    json_t *doc =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "result", r->result, "compared",
                  (json_int_t)r->compared, "hq_records", (json_int_t)r->hq_records, "ranges",
                  (json_int_t)r->ranges, "requests", (json_int_t)r->requests, "bytes",
                  (json_int_t)r->bytes, "drift", (json_int_t)r->drift, "resent",
                  (json_int_t)r->resent, "reported", (json_int_t)r->reported);
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    char url[TUS_URL_MAX + 32];
    snprintf(url, sizeof url, "%s/v1/verify", u->base);
    struct op_error e;
    op_error_clear(&e);
    if (!body || tus_client_post(u->tus, url, body, strlen(body), 4096, on_report, u, &e) < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot send the check's report to HQ: %s",
                 body ? e.msg : "out of memory");
        check_mailbox(u);
    }
    free(body);
}

/* Ends the check under way: with the walk (finished), or failed with why. */
static void verify_finish(struct uplink *u, int walked, const char *why)
{
    struct job *j = job_new(u, J_VERIFY_FINISH, after_verify_finish);
    if (j) {
        j->vid = u->verify_id;
        j->vwalk = walked;
        if (!walked) {
            snprintf(j->vrow.result, sizeof j->vrow.result, "failed");
            snprintf(j->vrow.detail, sizeof j->vrow.detail, "%s", why);
        }
    }
    if (queue_job(u, j) < 0) {
        verify_drop(u);
        cycle_end(u);
    }
}

static void on_digest(void *ctx, int status, const char *body, size_t len,
                      const struct op_error *err)
{
    struct uplink *u = ctx;
    if (u->stopping || status == -ECANCELED)
        return;
    u->talked = 1;
    char why[400];
    if (status == 503) {
        /* HQ's digest queue is full (or it is stopping): the check stays
         * asked for and runs again at the next idle cycle */
        if (u->verify_waiting_logged != (uint64_t)u->verify_id)
            log_info("sync: anti-entropy check %lld: HQ is busy (503); asked again later",
                     (long long)u->verify_id);
        u->verify_waiting_logged = (uint64_t)u->verify_id;
        verify_drop(u);
        check_mailbox(u);
        return;
    }
    if (status != 200) {
        if (status < 0)
            snprintf(why, sizeof why, "no answer from HQ: %.300s", err ? err->msg : "?");
        else
            snprintf(why, sizeof why, "HQ answered %d: %.300s", status, body);
        verify_finish(u, 0, why);
        return;
    }
    struct op_error e;
    op_error_clear(&e);
    if (range_walk_answer(u->vwalk, body, len, &e) < 0) {
        verify_finish(u, 0, e.msg);
        return;
    }
    verify_next(u);
}

/* Sends the walk's next level, or ends the check when it is over. */
static void verify_next(struct uplink *u)
{
    char *body = NULL;
    size_t len = 0;
    int rc = range_walk_request(u->vwalk, &body, &len);
    if (rc == 1) {
        verify_finish(u, 1, NULL);
        return;
    }
    if (rc < 0) {
        verify_finish(u, 0,
                      rc == -E2BIG ? "HQ's answers never let the comparison end" : "out of memory");
        return;
    }
    char url[TUS_URL_MAX + 32];
    snprintf(url, sizeof url, "%s/v1/digest", u->base);
    struct op_error e;
    op_error_clear(&e);
    rc = tus_client_post(u->tus, url, body, len, UPLINK_DIGEST_MAX, on_digest, u, &e);
    free(body);
    if (rc < 0)
        verify_finish(u, 0, e.msg);
}

static void after_verify_start(struct uplink *u, struct job *j)
{
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "anti-entropy check: %s", j->err.msg);
        if (j->vid) {
            u->verify_id = j->vid;
            verify_finish(u, 0, j->err.msg);
        } else {
            check_mailbox(u);
        }
        return;
    }
    if (!j->vid) {
        check_mailbox(u);
        return;
    }
    if (!j->vset) { /* changes in flight: the check waits until HQ has them */
        if (u->verify_waiting_logged != (uint64_t)j->vid)
            log_info("sync: anti-entropy check %lld waits for %llu changes in flight",
                     (long long)j->vid, (unsigned long long)j->in_flight);
        u->verify_waiting_logged = (uint64_t)j->vid;
        check_mailbox(u);
        return;
    }
    u->verify_id = j->vid;
    u->vset = j->vset;
    j->vset = NULL;
    u->verify_start_ms = mono_ms(u);
    if (range_walk_new(u->vset, &u->vwalk) < 0) {
        verify_finish(u, 0, "out of memory");
        return;
    }
    verify_next(u);
}

/* At the end of a cycle with nothing to upload: a check, if one is asked
 * for or due, then the mailbox. */
static void verify_or_mailbox(struct uplink *u)
{
    if (u->verify_id) { /* cannot happen: one check at a time */
        check_mailbox(u);
        return;
    }
    if (queue_job(u, job_new(u, J_VERIFY_START, after_verify_start)) < 0)
        cycle_end(u);
}

/* ---- the side slot (docs/UPLINK.md, "Two uploads") ------------------------------ */

static void side_poll(struct uplink *u);
static void side_on_timer(uv_timer_t *t);

/* An answer to the side's request carried HQ's mailbox hint: the cycle's
 * mailbox check counts it as recent (mailbox_due). */
static void side_talked(struct uplink *u)
{
    uint64_t now = mono_ms(u);
    u->talked_ms = now ? now : 1;
}

/* The side slot lets go of its segment: settled, failed, paused or voided.
 * The cycle picks it up again if it still waits (the lowest one first). */
static void side_release(struct uplink *u, int moved)
{
    struct side *s = &u->side;
    s->active = s->uploading = s->created = 0;
    (void)uv_timer_stop(&s->timer);
    free(s->inline_receipt);
    s->inline_receipt = NULL;
    if (u->wait_side) {
        /* the cycle's segment waited for this one's creation, which will
         * not come now: the cycle starts again from the lowest segment */
        u->wait_side = 0;
        u->progress = 1;
        cycle_end(u);
        return;
    }
    if (moved) {
        u->progress = 1;
        uplink_kick(u);
    }
}

/* What the side's upload did since its last report, as report_link_as
 * does for the cycle's. */
static void side_report(struct uplink *u, int final, const char *kind, const char *msg)
{
    struct side *s = &u->side;
    uint64_t now = mono_ms(u);
    if (!final && now - s->rep_ms < UPLINK_CHARGE_MS)
        return;
    struct tus_client_stats st;
    tus_client_get_stats(s->tus, &st);
    uint64_t conf = st.bytes_confirmed - s->before.bytes_confirmed;
    uint64_t sent = st.bytes_sent - s->before.bytes_sent;
    uint64_t resent = st.bytes_resent - s->before.bytes_resent;
    struct sync_link_report r = {
        .bytes_sent = sent - s->rep_sent,
        .bytes_resent = resent - s->rep_resent,
        .receipts_inline = u->saved_inline,
        .mailbox_skipped = u->saved_mailbox,
    };
    if (final) {
        r.sample_bytes = conf;
        r.duration_ms = now - s->start_ms;
    }
    if (!final && conf == s->rep_confirmed && !r.bytes_sent && !r.bytes_resent)
        return;
    s->rep_confirmed = conf;
    s->rep_sent = sent;
    s->rep_resent = resent;
    s->rep_ms = now;
    u->saved_inline = u->saved_mailbox = 0;
    note(u, kind, msg, &r);
}

static void side_after_receipt(struct uplink *u, struct job *j)
{
    struct side *s = &u->side;
    if (!s->active || j->no != s->seg.no)
        return;
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "segment %llu: receipt refused: %s",
                 (unsigned long long)j->no, j->err.msg);
        note(u, "receipt", j->err.msg, NULL);
        side_release(u, 0); /* the cycle asks for it, with its patience */
        return;
    }
    u->last_log[0] = '\0';
    log_receipt(u, j, &s->seg);
    side_release(u, 1);
    side_try(u);
}

static void side_after_inline(struct uplink *u, struct job *j)
{
    struct side *s = &u->side;
    if (!s->active || j->no != s->seg.no)
        return;
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING,
                 "segment %llu: the receipt on the completing PATCH is refused (%s); asking HQ "
                 "for it",
                 (unsigned long long)j->no, j->err.msg);
        side_poll(u);
        return;
    }
    u->saved_inline++;
    side_after_receipt(u, j);
}

static void side_on_receipt(void *ctx, int status, const char *body, size_t len,
                            const struct op_error *err)
{
    struct uplink *u = ctx;
    struct side *s = &u->side;
    if (u->stopping || status == -ECANCELED || !s->active)
        return;
    if (status > 0)
        side_talked(u);
    if (status == 200) {
        struct job *j = job_new_text(u, J_RECEIPT, side_after_receipt, body, len);
        if (j)
            j->no = s->seg.no;
        if (queue_job(u, j) < 0)
            side_release(u, 0);
        return;
    }
    uint64_t waited = mono_ms(u) - s->poll_start_ms;
    uint64_t patience = u->cfg.interval_ms * 6 > 60000 ? u->cfg.interval_ms * 6 : 60000;
    if (waited > patience) {
        /* the cycle takes it over: it uploads once more and then asks
         * less often (on_receipt) */
        side_release(u, 1);
        return;
    }
    if (status != 404) {
        char what[64];
        snprintf(what, sizeof what, "GET receipt %llu", (unsigned long long)s->seg.no);
        get_failed(u,
                   status == 401 || status == 403 ? "auth"
                   : status < 0                   ? "network"
                                                  : "receipt",
                   what, status, body, err);
    }
    uint64_t delay = UPLINK_RECEIPT_FIRST_MS;
    for (unsigned i = 0; i < s->poll_attempt && delay < u->cfg.interval_ms; i++)
        delay *= 2;
    if (delay > u->cfg.interval_ms)
        delay = u->cfg.interval_ms;
    s->poll_attempt++;
    (void)uv_timer_start(&s->timer, side_on_timer, delay, 0);
}

static void side_poll(struct uplink *u)
{
    struct side *s = &u->side;
    if (u->stopping || !s->active)
        return;
    char url[TUS_URL_MAX + 64];
    snprintf(url, sizeof url, "%s/v1/receipts/%llu", u->base, (unsigned long long)s->seg.no);
    struct op_error e;
    op_error_clear(&e);
    if (tus_client_get(s->tus, url, UPLINK_RECEIPT_MAX, side_on_receipt, u, &e) < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot ask for receipt %llu: %s",
                 (unsigned long long)s->seg.no, e.msg);
        side_release(u, 0);
    }
}

static void side_on_timer(uv_timer_t *t)
{
    side_poll(t->data);
}

static void side_after_mark(struct uplink *u, struct job *j)
{
    struct side *s = &u->side;
    if (!s->active || j->no != s->seg.no)
        return;
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING, "cannot record segment %llu as uploaded: %s",
                 (unsigned long long)j->no, j->err.msg);
        side_release(u, 0);
        return;
    }
    s->seg.state = SYNC_SEG_UPLOADED;
    s->poll_attempt = 0;
    s->poll_start_ms = mono_ms(u);
    char *rcpt = s->inline_receipt;
    s->inline_receipt = NULL;
    if (rcpt) {
        struct job *r = job_new_text(u, J_RECEIPT, side_after_inline, rcpt, s->inline_receipt_len);
        free(rcpt);
        if (r) {
            r->no = s->seg.no;
            if (queue_job(u, r) == 0)
                return;
        }
    }
    side_poll(u);
}

static void side_on_done(void *ctx, int status, const char *url, const struct op_error *err)
{
    (void)url;
    struct uplink *u = ctx;
    struct side *s = &u->side;
    if (u->stopping || status == -ECANCELED || !s->active)
        return;
    s->uploading = 0;
    if (status == -EINTR) { /* paused: on_pause said so */
        side_report(u, 1, NULL, NULL);
        side_release(u, 0);
        return;
    }
    if (status == -ESTALE) {
        log_notice("sync: segment %llu voided during its upload (%llu of %llu bytes "
                   "confirmed): upload stopped",
                   (unsigned long long)s->seg.no, (unsigned long long)s->confirmed,
                   (unsigned long long)s->seg.bytes);
        side_report(u, 1, NULL, NULL);
        side_release(u, 1);
        return;
    }
    if (status < 0) {
        const char *kind = tus_error_kind(err);
        log_warning("sync: segment %llu: upload failed (%s): %s", (unsigned long long)s->seg.no,
                    kind, err ? err->msg : strerror(-status));
        side_report(u, 1, kind, err ? err->msg : strerror(-status));
        side_release(u, 0);
        return;
    }
    side_report(u, 1, NULL, NULL);
    struct job *j = job_new(u, J_MARK_UPLOADED, side_after_mark);
    if (j)
        j->no = s->seg.no;
    if (queue_job(u, j) < 0)
        side_release(u, 0);
}

static void side_on_receipt_header(void *ctx, const char *json, size_t len)
{
    struct uplink *u = ctx;
    struct side *s = &u->side;
    if (u->stopping || len > UPLINK_RECEIPT_MAX)
        return;
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, json, len);
    copy[len] = '\0';
    free(s->inline_receipt);
    s->inline_receipt = copy;
    s->inline_receipt_len = len;
}

static void side_after_charge(struct uplink *u, struct job *j)
{
    (void)j;
    if (u->cfg.daily_bytes && !budget_left(u) && !u->budget_pause &&
        (u->uploading || u->side.uploading)) {
        u->budget_pause = 1;
        (void)uv_timer_start(&u->pause_timer, on_pause, 0, 0);
    }
}

static void side_charge(struct uplink *u, uint64_t confirmed)
{
    struct side *s = &u->side;
    if (s->charge_queued && s->charge_queued->no == s->seg.no) {
        s->charge_queued->offset = confirmed;
        return;
    }
    struct job *j = job_new(u, J_CHARGE, side_after_charge);
    if (!j)
        return;
    j->no = s->seg.no;
    j->offset = confirmed;
    s->charge_queued = j;
    (void)queue_job(u, j);
}

/* HQ answered the side's creation (or its HEAD): the cycle's upload that
 * waited for it may create its own. */
static void side_created(struct uplink *u)
{
    struct side *s = &u->side;
    if (s->created)
        return;
    s->created = 1;
    if (u->wait_side) {
        u->wait_side = 0;
        upload_segment(u);
    }
}

static void side_on_progress(void *ctx, uint64_t confirmed, uint64_t total)
{
    struct uplink *u = ctx;
    struct side *s = &u->side;
    if (u->stopping || !s->active)
        return;
    s->confirmed = confirmed;
    side_talked(u);
    side_created(u);
    side_charge(u, confirmed);
    side_report(u, 0, NULL, NULL);
    if (confirmed < total && s->budget_left != UINT64_MAX && !u->budget_pause) {
        struct tus_client_stats st;
        tus_client_get_stats(s->tus, &st);
        if (st.bytes_confirmed - s->before.bytes_confirmed >= s->budget_left) {
            u->budget_pause = 1; /* the pause stops both uploads */
            (void)uv_timer_start(&u->pause_timer, on_pause, 0, 0);
        }
    }
}

static void side_on_retry(void *ctx, unsigned attempt, uint64_t delay_ms,
                          const struct op_error *why)
{
    struct uplink *u = ctx;
    if (u->stopping || !u->side.active)
        return;
    log_msg((attempt & (attempt - 1)) == 0 ? LOG_LEVEL_WARNING : LOG_LEVEL_DEBUG,
            "sync: segment %llu: %s; retry %u in %llu ms", (unsigned long long)u->side.seg.no,
            why->msg, attempt, (unsigned long long)delay_ms);
    if (!u->note_queued) {
        u->note_queued = 1;
        note(u, tus_error_kind(why), why->msg, NULL);
    }
    side_report(u, 0, NULL, NULL);
}

static void side_after_set_url(struct uplink *u, struct job *j)
{
    struct side *s = &u->side;
    if (!s->active || j->no != s->seg.no)
        return;
    if (j->rc < 0) {
        log_once(u, LOG_LEVEL_WARNING,
                 "segment %llu: cannot record its upload URL: %s; nothing of it is sent",
                 (unsigned long long)j->no, j->err.msg);
        tus_client_cancel(s->tus, "the upload URL could not be recorded");
        return;
    }
    tus_client_resume(s->tus);
    cut_ahead(u); /* the link took this one: the next may be cut */
    if (!u->cfg.create_with_data)
        side_created(u);
}

static int side_on_created(void *ctx, const char *url)
{
    struct uplink *u = ctx;
    struct side *s = &u->side;
    if (u->stopping || !s->active)
        return 0;
    snprintf(s->seg.upload_url, sizeof s->seg.upload_url, "%s", url);
    struct job *j = job_new_text(u, J_SET_URL, side_after_set_url, url, strlen(url));
    if (j)
        j->no = s->seg.no;
    if (queue_job(u, j) < 0) {
        tus_client_cancel(s->tus, "the upload URL could not be recorded");
        return 0;
    }
    return TUS_CREATED_HOLD;
}

/* The budget the side's upload may spend: half of what the cycle's upload
 * has left of its own (which is cut by as much), or what the day has left
 * when the cycle is not uploading. 0: the side does not start. */
static uint64_t side_budget(struct uplink *u)
{
    if (!u->cfg.daily_bytes)
        return UINT64_MAX;
    if (!u->uploading)
        return budget_left(u);
    if (u->budget_left == UINT64_MAX || u->budget_pause)
        return 0;
    struct tus_client_stats st;
    tus_client_get_stats(u->tus, &st);
    uint64_t used = st.bytes_confirmed - u->before.bytes_confirmed;
    uint64_t rest = u->budget_left > used ? u->budget_left - used : 0;
    if (rest < 2 * (uint64_t)65536) /* not worth splitting */
        return 0;
    u->budget_left -= rest / 2;
    tus_client_set_chunk_cap(u->tus, rest - rest / 2);
    return rest / 2;
}

static void side_upload(struct uplink *u)
{
    struct side *s = &u->side;
    int below = u->holding && u->seg.no < s->seg.no && u->seg.upload_url[0];
    char no[24];
    snprintf(no, sizeof no, "%llu", (unsigned long long)s->seg.no);
    char key[24];
    snprintf(key, sizeof key, "seg-%llu", (unsigned long long)s->seg.no);
    struct tus_meta meta[] = {{"node", u->cred.node_id},
                              {"segment", no},
                              {"after", below ? upload_id(u->seg.upload_url) : ""}};
    struct tus_upload_params p = {
        .path = s->seg.path,
        .upload_url = s->seg.upload_url[0] ? s->seg.upload_url : NULL,
        .meta = meta,
        .nmeta = below ? 3 : 2,
        .upload_key = key,
        .principal = u->cred.node_id,
        .create_with_data = u->cfg.create_with_data,
        .cb = {.on_created = side_on_created,
               .on_progress = side_on_progress,
               .on_retry = side_on_retry,
               .on_receipt = side_on_receipt_header,
               .on_done = side_on_done},
        .ctx = u,
    };
    s->budget_left = side_budget(u);
    if (!s->budget_left) {
        side_release(u, 0);
        return;
    }
    if (s->budget_left != UINT64_MAX)
        p.chunk_cap = s->budget_left;
    /* its stall limits start from the link the cycle's client measured,
     * at about half the rate while both send */
    uint64_t rtt = 0, rate = 0;
    tus_client_measured(u->tus, &rtt, &rate);
    tus_client_seed(s->tus, rtt, rate / 2);
    tus_client_get_stats(s->tus, &s->before);
    s->start_ms = s->rep_ms = mono_ms(u);
    s->rep_confirmed = s->rep_sent = s->rep_resent = 0;
    s->confirmed = 0;
    free(s->inline_receipt);
    s->inline_receipt = NULL;
    struct op_error e;
    op_error_clear(&e);
    if (tus_client_upload(s->tus, &p, &e) < 0) {
        log_once(u, LOG_LEVEL_WARNING, "segment %llu: cannot start the upload: %s",
                 (unsigned long long)s->seg.no, e.msg);
        note(u, "spool", e.msg, NULL);
        side_release(u, 0);
        return;
    }
    s->uploading = 1;
    if (p.upload_url)
        cut_ahead(u);
}

static void side_after_pick(struct uplink *u, struct job *j)
{
    struct side *s = &u->side;
    s->picking = 0;
    if (j->rc < 0 || !j->found || s->active || u->stopping)
        return;
    /* the cycle's segment must still be held, and a new creation above it
     * goes only once HQ answered the cycle's */
    if (!u->holding || j->seg.no == u->seg.no || (j->seg.no > u->seg.no && !u->created))
        return;
    s->active = 1;
    s->created = 0;
    s->seg = j->seg;
    if (s->seg.state == SYNC_SEG_UPLOADED) {
        s->created = 1;
        s->poll_attempt = 0;
        s->poll_start_ms = mono_ms(u);
        side_poll(u);
        return;
    }
    side_upload(u);
}

/* Starts the side slot on the next segment when it may: two uploads are
 * allowed, it is free, the cycle holds a segment HQ has (its creation
 * answered), and the window and the budget allow. */
static void side_try(struct uplink *u)
{
    struct side *s = &u->side;
    if (u->cfg.uploads_in_flight < 2 || !s->tus || s->active || s->picking || u->stopping ||
        !u->ledger || !u->holding || !u->created || u->budget_pause)
        return;
    unsigned sec;
    if (!sync_window_contains(&u->window, local_minute(u, &sec)))
        return;
    if (u->cfg.daily_bytes && !budget_left(u))
        return;
    struct job *j = job_new(u, J_SIDE_PICK, side_after_pick);
    if (!j)
        return;
    j->no = u->seg.no;
    s->picking = 1;
    if (queue_job(u, j) < 0)
        s->picking = 0;
}

/* Pauses the side's upload (window closed, budget spent). */
static void side_cancel(struct uplink *u, const char *why)
{
    if (u->side.tus && u->side.uploading)
        tus_client_cancel(u->side.tus, why);
}

/* ---- public API -------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    struct uplink *u = h->data;
    u->timers_closed++;
    maybe_finish_stop(u);
}

static void on_tus_stopped(void *ctx)
{
    struct uplink *u = ctx;
    u->tus_stopped++;
    maybe_finish_stop(u);
}

static void maybe_finish_stop(struct uplink *u)
{
    if (!u->stopping || u->active)
        return;
    if (u->ledger) {
        /* the last job: close the ledger on the pool */
        struct job *j = job_new(u, J_CLOSE, NULL);
        if (j && uv_queue_work(u->loop, &j->work, job_work, job_after) == 0) {
            u->active = j;
            return;
        }
        job_free(j);
        sync_ledger_close(u->ledger); /* cannot queue: close here, at shutdown */
        u->ledger = NULL;
    }
    if (u->tus_stopped < (u->side_tus_made ? 2 : 1) || u->timers_closed < 3)
        return;
    void (*cb)(void *) = u->stop_cb;
    void *ctx = u->stop_ctx;
    u->stop_cb = NULL;
    free(u->inline_receipt);
    free(u->side.inline_receipt);
    range_walk_free(u->vwalk);
    range_set_free(u->vset);
    free(u);
    if (cb)
        cb(ctx);
}

int uplink_start(uv_loop_t *loop, const struct uplink_config *cfg, struct uplink **out,
                 struct op_error *err)
{
    if (!loop || !cfg || !cfg->db_path || !cfg->cred || !out)
        return op_error_set(err, -EINVAL, NULL, "uplink_start: missing argument");
    struct uplink *u = calloc(1, sizeof *u);
    if (!u)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    u->loop = loop;
    u->cfg = *cfg;
    snprintf(u->waiting, sizeof u->waiting, "\1"); /* the first set_waiting writes */
    u->cred = *cfg->cred;
    if (!u->cfg.interval_ms)
        u->cfg.interval_ms = UPLINK_INTERVAL_DEFAULT;
    if (!u->cfg.wall_ms)
        u->cfg.wall_ms = real_wall_ms;
    int rc = sync_window_parse(cfg->window, &u->window, err);
    if (rc < 0) {
        free(u);
        return rc;
    }
    const char *base = cfg->hq_url && *cfg->hq_url ? cfg->hq_url : u->cred.hq_url;
    if (!base[0] || strlen(base) > TUS_URL_MAX - 32 ||
        (strncasecmp(base, "https://", 8) && strncasecmp(base, "http://", 7))) {
        free(u);
        return op_error_set(err, -EINVAL, "hq_url",
                            "hq_url: no usable HQ URL (set hq_url, or give one at 'outpost-hq node "
                            "add --url'); got '%.80s'",
                            base);
    }
    snprintf(u->base, sizeof u->base, "%s", base);
    size_t bl = strlen(u->base);
    while (bl && u->base[bl - 1] == '/')
        u->base[--bl] = '\0';
    snprintf(u->db_path, sizeof u->db_path, "%s", cfg->db_path);
    if (cfg->spool_dir && *cfg->spool_dir) {
        snprintf(u->spool_dir, sizeof u->spool_dir, "%s", cfg->spool_dir);
    } else {
        const char *slash = strrchr(u->db_path, '/');
        if (slash)
            snprintf(u->spool_dir, sizeof u->spool_dir, "%.*s/spool", (int)(slash - u->db_path),
                     u->db_path);
        else
            snprintf(u->spool_dir, sizeof u->spool_dir, "spool");
        if (slash == u->db_path)
            snprintf(u->spool_dir, sizeof u->spool_dir, "/spool");
    }
    snprintf(u->policy_file, sizeof u->policy_file, "%s", cfg->policy_file ? cfg->policy_file : "");
    snprintf(u->ca_file, sizeof u->ca_file, "%s", cfg->ca_file ? cfg->ca_file : "");
    snprintf(u->auth, sizeof u->auth, "Bearer %s", u->cred.token);
    u->cfg.db_path = u->db_path;
    u->cfg.spool_dir = u->spool_dir;
    u->cfg.policy_file = u->policy_file;
    u->cfg.ca_file = u->ca_file;
    u->cfg.hq_url = u->base;
    u->cfg.window = NULL;
    u->cfg.cred = &u->cred;

    char endpoint[TUS_URL_MAX + 1];
    snprintf(endpoint, sizeof endpoint, "%s/files/", u->base);
    struct tus_client_config tc = {
        .endpoint = endpoint,
        .auth = u->auth,
        .ca_file = u->ca_file[0] ? u->ca_file : NULL,
        .insecure_skip_verify = cfg->insecure_tls,
        .max_chunk = UPLINK_CHUNK_MAX,
        .server_keeps_cut_bytes = 1, /* outpost-hq keeps them (docs/TUS.md) */
        .max_send_bps = cfg->bandwidth_bps,
        .now_ms = cfg->mono_ms,
        .clock_ctx = cfg->clock_ctx,
    };
    rc = tus_client_new(loop, &tc, &u->tus, err);
    if (rc < 0) {
        free(u);
        return rc;
    }
    if (u->cfg.uploads_in_flight >= 2) {
        /* the side slot's client: same config, its own connection and
         * control law (docs/UPLINK.md, "Two uploads") */
        rc = tus_client_new(loop, &tc, &u->side.tus, err);
        if (rc < 0) {
            tus_client_stop(u->tus, NULL, NULL);
            free(u);
            return rc;
        }
        u->side_tus_made = 1;
    }
    (void)uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    (void)uv_timer_init(loop, &u->pause_timer);
    u->pause_timer.data = u;
    (void)uv_timer_init(loop, &u->side.timer);
    u->side.timer.data = u;
    /* checks are spread over a tenth of the interval, so nodes enrolled
     * together do not all ask HQ at once */
    if (u->cfg.verify_interval_ms >= 10)
        u->verify_jitter_ms = uv_hrtime() % (u->cfg.verify_interval_ms / 10);
    u->started_wall_ms = wall_ms(u);
    arm(u, 0);
    *out = u;
    return 0;
}

void uplink_stop(struct uplink *u, void (*done)(void *ctx), void *ctx)
{
    if (!u || u->stopping)
        return;
    u->stopping = 1;
    u->stop_cb = done;
    u->stop_ctx = ctx;
    (void)uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, on_timer_closed);
    (void)uv_timer_stop(&u->pause_timer);
    uv_close((uv_handle_t *)&u->pause_timer, on_timer_closed);
    (void)uv_timer_stop(&u->side.timer);
    uv_close((uv_handle_t *)&u->side.timer, on_timer_closed);
    /* queued jobs never start; the running one finishes (it cannot be
     * interrupted) and the ledger is closed after it */
    while (u->qhead) {
        struct job *j = u->qhead;
        u->qhead = j->next;
        job_free(j);
    }
    u->qtail = NULL;
    struct tus_client *t = u->tus;
    u->tus = NULL;
    tus_client_stop(t, on_tus_stopped, u);
    if (u->side.tus) {
        t = u->side.tus;
        u->side.tus = NULL;
        tus_client_stop(t, on_tus_stopped, u);
    }
}

void uplink_reload_policy(struct uplink *u)
{
    if (!u || u->stopping || !u->ledger)
        return;
    (void)queue_job(u, job_new(u, J_RELOAD, NULL));
    uplink_kick(u);
}

void uplink_kick(struct uplink *u)
{
    if (!u || u->stopping)
        return;
    if (u->busy) {
        u->kick_pending = 1;
        if (u->uploading && mono_ms(u) - u->cut_ms >= 1000)
            cut_ahead(u);
        return;
    }
    arm(u, 0);
}

const struct sync_status *uplink_status(const struct uplink *u)
{
    return u && u->have_status ? &u->status : NULL;
}
