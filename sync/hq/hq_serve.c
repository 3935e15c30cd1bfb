/*
 * The HQ daemon's loop, routes and callbacks; contract in hq_serve.h.
 * Applying a segment (about 100 ms for a default half-megabyte segment)
 * runs on the apply pool (hq_workers.h) when the caller gives a store
 * opener and apply_workers is above 0: tus_complete queues a job and
 * answers TUS_COMPLETE_LATER, the loop goes on serving, and job_done
 * (on the loop again) logs, settles and has tus_server_finish answer the
 * waiting PATCH with its receipt. A full queue turns the completing
 * PATCH away at the gate (503, Retry-After) before its body is read.
 * Without an opener, or with apply_workers 0, the apply runs on the loop
 * thread as before. A completed upload that must wait for the node's
 * earlier one (metadata `after`) is kept in a small list of deferred
 * uploads, looked at after every tus request, every finished job and on
 * a 250 ms timer while the list is not empty.
 *
 * Authentication happens once per request, at the server's gate, when
 * the headers are complete and before any body byte is read: an
 * unauthenticated PATCH costs its headers, never its 4 MiB chunk. The
 * node found travels with the exchange; tus_authorize (for /files) and the
 * router (for /v1) take it from there instead of looking it up again.
 * The Upload-Metadata of a creation is decoded once, by tus_server, and
 * checked against the token's node in tus_admit. Last contact is kept
 * in memory per node and written at most once a minute, because a write
 * per PATCH chunk would cost a synchronous commit on the loop each time.
 */
#include "hq_serve.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "buf.h"
#include "codec.h"
#include "hq_analyst_http.h"
#include "hq_verify.h"
#include "hq_apply.h"
#include "hq_store.h"
#include "hq_workers.h"
#include "http_server.h"
#include "log.h"
#include "outpost_config.h"
#include "procmetrics.h"
#include "sync_mac.h"
#include "timefmt.h"
#include "tus_server.h"

#define MAILBOX_PAGE 100
/* expire idle uploads and retry failed applies this often */
#define SWEEP_MS (60u * 1000u)
/* look at deferred uploads this often while there are any: for a
 * predecessor another receiver settles, and for receipt_wait_ms */
#define DEFER_TICK_MS 250u

/* Nodes whose last write of last contact is remembered (HQ serves
 * hundreds); past it the table starts afresh and each node writes once
 * more. */
#define SEEN_MAX 4096u

/* When a node's last contact was last written, by the monotonic clock. */
struct seen {
    char name[HQ_NODE_MAX]; /* "" for a free slot */
    uint64_t at;
    int again; /* the pool's write failed: write at the next request */
};

struct hq_serve {
    const struct hq_config *cfg;
    uv_loop_t *loop;
    struct hq_store store;
    struct hq_serve_clock clock;
    struct hq_policies *policies;
    struct tus_server *tus;
    struct hq_workers *workers; /* NULL: applies run on the loop thread */
    int redeliver_owed;         /* a completion was turned away: offer it again when room */
    struct deferred *deferred;  /* completed uploads waiting for an earlier one (below) */
    unsigned n_deferred;
    int defer_owed; /* a completion found the deferral caps full: offer it again when room */
    uv_timer_t defer_timer; /* runs while uploads are deferred */
    int timers_ready;       /* sweep and defer_timer initialised (the start succeeded) */
    struct http_server *server;
    uv_timer_t sweep;
    struct seen *seen; /* open addressing, seen_cap a power of two */
    size_t seen_cap, seen_n;
    int stopping;
    void (*stop_cb)(void *ctx);
    void *stop_ctx;
    double started_s; /* Unix s, for process_start_time_seconds */
};

/* A completed upload whose Upload-Metadata `after` names the node's
 * earlier upload, which HQ still holds unsettled: it is taken
 * (TUS_COMPLETE_LATER) but not applied until that one settles
 * (docs/SYNC_PROTOCOL.md, "Two uploads in flight"). */
struct deferred {
    char id[TUS_ID_LEN + 1];
    char after[TUS_ID_LEN + 1];
    char principal[TUS_PRINCIPAL_MAX];
    char *meta_node, *meta_segment, *path;
    struct http_exchange *x; /* the completing request still waiting, or NULL */
    uint64_t since_ms;       /* loop time it was deferred */
    struct deferred *next;
};

static void on_defer_timer(uv_timer_t *t);

static int64_t real_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t real_mono_ms(void *ctx)
{
    (void)ctx;
    return uv_hrtime() / 1000000u;
}

static int64_t now_ms(const struct hq_serve *hq)
{
    return hq->clock.wall_ms(hq->clock.ctx);
}

/* tus_server's clock: the same wall clock. */
static uint64_t tus_clock(void *ctx)
{
    int64_t ms = now_ms(ctx);
    return ms > 0 ? (uint64_t)ms : 0;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The slot of name in the table (its own, or the free one it would take). */
static struct seen *seen_slot(struct seen *tab, size_t cap, const char *name)
{
    size_t i = (size_t)name_hash(name) & (cap - 1);
    while (tab[i].name[0] && strcmp(tab[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* Makes room for one more node: empties the table at SEEN_MAX, grows it
 * at 3/4 full. -ENOMEM leaves it as it was. */
static int seen_reserve(struct hq_serve *hq)
{
    if (hq->seen_n >= SEEN_MAX) {
        memset(hq->seen, 0, hq->seen_cap * sizeof *hq->seen);
        hq->seen_n = 0;
        return 0;
    }
    if (hq->seen && (hq->seen_n + 1) * 4 <= hq->seen_cap * 3)
        return 0;
    size_t cap = hq->seen_cap ? hq->seen_cap * 2 : 64;
    struct seen *tab = calloc(cap, sizeof *tab);
    if (!tab)
        return -ENOMEM;
    for (size_t i = 0; i < hq->seen_cap; i++)
        if (hq->seen[i].name[0])
            *seen_slot(tab, cap, hq->seen[i].name) = hq->seen[i];
    free(hq->seen);
    hq->seen = tab;
    hq->seen_cap = cap;
    return 0;
}

/* Writes the node's last contact unless it was written less than
 * HQ_SERVE_TOUCH_MS ago by this process. Remembered only once the write
 * succeeded, so a failed write is tried again at the next request. */
static void touch_node(struct hq_serve *hq, const char *name)
{
    uint64_t now = hq->clock.mono_ms(hq->clock.ctx);
    struct seen *e = hq->seen ? seen_slot(hq->seen, hq->seen_cap, name) : NULL;
    if (e && e->name[0] && !e->again && now - e->at < HQ_SERVE_TOUCH_MS)
        return;
    if (hq->workers) {
        /* Written by the pool: an apply may hold the store's write lock,
         * and the loop must not wait for it. Remembered now; a failure
         * (job_done) makes the next request write again. */
        struct hq_job *j = hq_job_new(NULL, name, NULL, NULL, NULL, now_ms(hq));
        if (!j || hq_workers_submit_touch(hq->workers, j) < 0) {
            hq_job_free(j);
            return;
        }
    } else {
        struct op_error err;
        op_error_clear(&err);
        if (hq->store.ops->node_touch(hq->store.impl, name, now_ms(hq), &err) < 0) {
            log_warning("node %s: last contact not recorded: %s", name, err.msg);
            return;
        }
    }
    if (!e || !e->name[0]) {
        if (seen_reserve(hq) < 0)
            return; /* not remembered: the next request writes again */
        e = seen_slot(hq->seen, hq->seen_cap, name);
        snprintf(e->name, sizeof e->name, "%s", name);
        hq->seen_n++;
    }
    e->at = now;
    e->again = 0;
}

/* The pool could not write a node's last contact: the next request
 * writes it again. */
static void touch_failed(struct hq_serve *hq, const struct hq_job *j)
{
    if (j->rc == -ECANCELED)
        return;
    log_warning("node %s: last contact not recorded: %s", j->principal, j->err.msg);
    struct seen *e = hq->seen ? seen_slot(hq->seen, hq->seen_cap, j->principal) : NULL;
    if (e && e->name[0])
        e->again = 1;
}

static void iso_time(int64_t ms, char out[32])
{
    (void)timefmt_iso_ms(ms, out, 32);
}

static void respond_json(struct http_exchange *x, int status, const char *type, json_t *o)
{
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) {
        http_respond(x, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    http_respond(x, status, type, body, strlen(body));
    free(body);
}

static void problem(struct http_exchange *x, int status, const char *detail)
{
    http_respond_problem(x, status, NULL, detail);
}

/* 405 with the path's methods in Allow (RFC 9110 15.5.6): they are the
 * whole answer's point, so the detail names them too. */
static void not_allowed(struct http_exchange *x, const char *allow)
{
    char d[96];
    snprintf(d, sizeof d, "method %.16s not allowed here (allowed: %s)", http_method(x), allow);
    (void)http_add_header(x, "Allow", allow);
    problem(x, 405, d);
}

static int is_get(const char *method)
{
    return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

/* Looks up the node of the request's bearer token and notes the contact.
 * Returns 0 and *out, or a negative errno: -EACCES for a missing, unknown
 * or revoked token. Called once per request. */
static int authenticate(struct hq_serve *hq, struct http_exchange *x, struct hq_node *out)
{
    const char *h = http_header(x, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return -EACCES;
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    if (!len || len > 256)
        return -EACCES;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, len, digest);
    struct op_error err;
    op_error_clear(&err);
    int rc = hq->store.ops->node_by_token(hq->store.impl, digest, out, &err);
    if (rc == -ENOENT)
        return -EACCES;
    if (rc < 0) {
        log_err("authenticate: %s", err.msg);
        return rc;
    }
    if (out->revoked)
        return -EACCES;
    touch_node(hq, out->name);
    http_set_user(x, out->name);
    return 0;
}

#define UNAUTHORIZED "unknown or revoked node token: enrol with 'outpost-hq node add'"

static void unauthorized(struct http_exchange *x)
{
    (void)http_add_header(x, "WWW-Authenticate", "Bearer realm=\"outpost-hq\"");
    problem(x, 401, UNAUTHORIZED);
}

/* The body a request that needs no credentials (or a /v1 GET) may have. */
#define HQ_GATE_SMALL_BODY 16384

static int needs_node(const char *path)
{
    return !strcmp(path, "/files") || !strncmp(path, "/files/", 7) ||
           !strncmp(path, "/v1/receipts/", 13) || !strcmp(path, "/v1/mailbox") ||
           hq_verify_path(path);
}

/* The http_server gate: /files and /v1 need a node's token, looked up
 * here once; a refusal is sent without reading the body. Uploads may
 * carry a body up to max_body_bytes (a tus chunk), the rest a small one. */
static void gate(void *ctx, struct http_exchange *x)
{
    struct hq_serve *hq = ctx;
    const char *path = http_path(x);
    if (!needs_node(path)) {
        http_gate_pass(x, HQ_GATE_SMALL_BODY);
        return;
    }
    int tus = path[1] == 'f';
    struct hq_node *n = malloc(sizeof *n);
    int rc = n ? authenticate(hq, x, n) : -ENOMEM;
    if (rc < 0) {
        free(n);
        if (tus)
            (void)http_add_header(x, "Tus-Resumable", "1.0.0");
        if (rc == -EACCES)
            unauthorized(x);
        else
            problem(x, 503, "the credentials cannot be checked now: retry later");
        return;
    }
    http_set_data(x, n, free);
    /* The mailbox hint rides on every answer to a node: it fetches its
     * mailbox only when this is above what it stored. */
    char seq[24];
    snprintf(seq, sizeof seq, "%" PRIu64, n->mailbox_last);
    (void)http_add_header(x, "Outpost-Mailbox-Last", seq);
    if (tus && tus_server_gate(hq->tus, x, n->name))
        return;
    http_gate_pass(x, tus ? 0 : hq_verify_path(path) ? HQ_VERIFY_BODY_MAX : HQ_GATE_SMALL_BODY);
}

/* Every request under /files: tus_server calls this once, first. The
 * gate authenticated it already. */
static int tus_authorize(void *ctx, struct http_exchange *x, char *principal, size_t cap)
{
    (void)ctx;
    const struct hq_node *n = http_data(x);
    if (!n) {
        (void)http_add_header(x, "WWW-Authenticate", "Bearer realm=\"outpost-hq\"");
        return -EACCES;
    }
    if (strlen(n->name) >= cap)
        return -EACCES;
    snprintf(principal, cap, "%s", n->name);
    return 0;
}

/* Whether `after` has the form of an upload id (tus_upload_id's). */
static int after_ok(const char *v, size_t len)
{
    return len == TUS_ID_LEN && strlen(v) == len && codec_hex_valid(v, len, CODEC_HEX_LOWER);
}

/* A creation: the upload must name the token's node (403 otherwise),
 * checked on the metadata tus_server decoded, before anything is stored. */
static int tus_admit(void *ctx, const char *principal, const struct tus_metadata *md, char *detail,
                     size_t cap)
{
    (void)ctx;
    size_t len = 0;
    const char *node = tus_metadata_get(md, "node", &len);
    if (!node || len != strlen(principal) || memcmp(node, principal, len) != 0) {
        snprintf(detail, cap, "Upload-Metadata node '%.64s' is not this token's node %s",
                 node ? node : "", principal);
        return -EPERM;
    }
    const char *after = tus_metadata_get(md, "after", &len);
    if (after && !after_ok(after, len)) {
        snprintf(detail, cap,
                 "Upload-Metadata after is not an upload id: it must be the %d lowercase hex "
                 "characters that end the earlier upload's URL",
                 TUS_ID_LEN);
        return -EINVAL;
    }
    return 0;
}

/* The receipt document GET /v1/receipts/N answers with, MAC under the
 * node's key; NULL when out of memory or the MAC cannot be made. The
 * caller frees it. */
static char *receipt_json(struct hq_serve *hq, const struct hq_node *n, const struct hq_receipt *r)
{
    char mac[SYNC_MAC_HEX], at[32];
    const char *status = hq_receipt_status_name(r->status);
    if (sync_receipt_mac(n->hq_key, r->node, r->segment, status, r->to_urgent, r->to_ordinary,
                         mac) < 0)
        return NULL;
    iso_time(r->received_ms, at);
    json_t *o =
        json_pack("{s:s, s:I, s:s, s:{s:I, s:I}, s:I, s:I, s:I, s:s, s:s, s:s}", "node", r->node,
                  "segment", (json_int_t)r->segment, "status", status, "to", "urgent",
                  (json_int_t)r->to_urgent, "ordinary", (json_int_t)r->to_ordinary, "records",
                  (json_int_t)r->records, "applied", (json_int_t)r->applied, "set_aside",
                  (json_int_t)r->set_aside, "reason", r->reason, "received_at", at, "mac", mac);
    struct op_error err;
    op_error_clear(&err);
    if (o && hq_apply_receipt_extras(&hq->store, r, n->hq_key, o, &err) < 0) {
        log_err("receipt for node %s segment %" PRIu64 ": %s", r->node, r->segment, err.msg);
        json_decref(o);
        return NULL;
    }
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return body;
}

/* Puts the receipt into the answer of the PATCH that completed its
 * upload, so the node needs no GET for it. */
static void add_receipt_header(struct hq_serve *hq, struct http_exchange *x,
                               const struct hq_receipt *r)
{
    const struct hq_node *n = http_data(x); /* the gate's */
    if (!n)
        return;
    char *body = receipt_json(hq, n, r);
    if (!body)
        return;
    size_t len = strlen(body);
    unsigned flags = CODEC_B64_URL | CODEC_B64_NOPAD;
    size_t cap = codec_b64_len(len, flags) + 1;
    char *enc = malloc(cap);
    if (enc && codec_b64_encode(body, len, flags, enc, cap) >= 0 &&
        http_add_header(x, "Outpost-Receipt", enc) < 0)
        log_warning("node %s segment %" PRIu64 ": receipt too large for a header; the node "
                    "fetches it",
                    n->name, r->segment);
    free(enc);
    free(body);
}

/* What follows an apply, on the loop: the log line, the receipt on the
 * waiting PATCH x (or NULL), the upload settled. Returns 0, or -EBADMSG
 * for a refused upload (tus_server releases it and answers 460). */
static int apply_outcome(struct hq_serve *hq, const char *upload_id, const char *principal,
                         const char *segname, const struct hq_apply_result *rp,
                         struct http_exchange *x)
{
    const struct hq_apply_result res = *rp;
    int rc;
    switch (res.outcome) {
    case HQ_APPLY_REFUSED:
        /* Not a valid segment of this node (digest, MAC, header): its
         * bytes go, and the node sends the segment again as a new upload
         * (its PATCH, if waiting, gets 460; HEAD answers 404). */
        log_warning("node %s segment %s refused, upload discarded: %s", principal, segname,
                    res.reason);
        return -EBADMSG;
    case HQ_APPLY_REJECTED:
        log_err("node %s segment %" PRIu64 " rejected: %s", principal, res.receipt.segment,
                res.reason);
        break;
    case HQ_APPLY_REPLAY:
        log_info("node %s segment %" PRIu64 " replayed: the %s receipt stands", principal,
                 res.receipt.segment, hq_receipt_status_name(res.receipt.status));
        break;
    case HQ_APPLY_APPLIED:
        log_info("node %s segment %" PRIu64 " applied: %" PRIu64 " records, %" PRIu64
                 " changed, %" PRIu64 " set aside",
                 principal, res.receipt.segment, res.receipt.records, res.receipt.applied,
                 res.receipt.set_aside);
        break;
    }
    if (x)
        add_receipt_header(hq, x, &res.receipt);
    /* Every outcome above is final. Settling drops the bytes but keeps the
     * upload answering "complete" for a while, so a node whose final 204
     * was lost finishes with one HEAD instead of sending the segment again. */
    rc = tus_server_settle(hq->tus, upload_id);
    if (rc < 0 && rc != -ENOENT) {
        /* A disk error: free the space the old way (a node that lost the
         * final answer then sends the segment again and gets a replay). */
        log_warning("upload %s: cannot settle (%s); deleting it", upload_id, strerror(-rc));
        rc = tus_server_release(hq->tus, upload_id);
    }
    if (rc < 0 && rc != -ENOENT)
        log_warning("upload %s: data not removed (%s); removed at next start", upload_id,
                    strerror(-rc));
    return 0;
}

/* Applies on the loop thread (no pool). */
static int apply_here(struct hq_serve *hq, const char *upload_id, const struct hq_upload *u)
{
    const char *segname = u->meta_segment ? u->meta_segment : "?";
    struct hq_apply_result res;
    struct op_error err;
    op_error_clear(&err);
    int rc = hq_apply_upload(&hq->store, hq->policies, u, now_ms(hq), &res, &err);
    if (rc < 0) {
        log_warning("node %s segment %s: cannot apply now, kept for a retry: %s", u->principal,
                    segname, err.msg[0] ? err.msg : strerror(-rc));
        return rc;
    }
    return apply_outcome(hq, upload_id, u->principal, segname, &res,
                         tus_server_completing(hq->tus));
}

/* ---- uploads deferred behind an earlier one ---- */

static void deferred_free(struct deferred *d)
{
    if (!d)
        return;
    free(d->meta_node);
    free(d->meta_segment);
    free(d->path);
    free(d);
}

static struct deferred *deferred_find(const struct hq_serve *hq, const char *id)
{
    for (struct deferred *d = hq->deferred; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return d;
    return NULL;
}

static void deferred_unlink(struct hq_serve *hq, struct deferred *d)
{
    for (struct deferred **pp = &hq->deferred; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            hq->n_deferred--;
            return;
        }
}

/* Whether the upload `after` names keeps upload_id waiting: HQ holds it
 * for the same node and it has not settled (being written, complete but
 * not applied, or deferred itself), and waiting would not close a circle
 * (after's own chain of deferrals leads back to upload_id: only a node
 * that names its uploads wrongly makes one, and it must not stall). */
static int must_wait(struct hq_serve *hq, const char *upload_id, const char *principal,
                     const char *after)
{
    if (!after || !after_ok(after, strlen(after)) || strcmp(after, upload_id) == 0)
        return 0;
    enum tus_upload_state st = tus_server_upload_state(hq->tus, after, principal);
    if (st != TUS_UPLOAD_PARTIAL && st != TUS_UPLOAD_COMPLETE && st != TUS_UPLOAD_TAKEN)
        return 0;
    const char *cur = after;
    for (unsigned i = 0; i <= hq->n_deferred; i++) {
        const struct deferred *d = deferred_find(hq, cur);
        if (!d)
            break;
        if (strcmp(d->after, upload_id) == 0)
            return 0;
        cur = d->after;
    }
    return 1;
}

static int deferred_add(struct hq_serve *hq, const char *upload_id, const char *principal,
                        const char *after, const struct hq_upload *u)
{
    struct deferred *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    snprintf(d->id, sizeof d->id, "%s", upload_id);
    snprintf(d->after, sizeof d->after, "%s", after);
    snprintf(d->principal, sizeof d->principal, "%s", principal);
    d->meta_node = u->meta_node ? strdup(u->meta_node) : NULL;
    d->meta_segment = u->meta_segment ? strdup(u->meta_segment) : NULL;
    d->path = strdup(u->path);
    if ((u->meta_node && !d->meta_node) || (u->meta_segment && !d->meta_segment) || !d->path) {
        deferred_free(d);
        return -ENOMEM;
    }
    d->x = tus_server_completing(hq->tus);
    d->since_ms = uv_now(hq->loop);
    d->next = hq->deferred;
    hq->deferred = d;
    hq->n_deferred++;
    if (hq->timers_ready && !uv_is_active((uv_handle_t *)&hq->defer_timer))
        uv_timer_start(&hq->defer_timer, on_defer_timer, DEFER_TICK_MS, DEFER_TICK_MS);
    return 0;
}

/* Deferred uploads of principal now. */
static unsigned deferred_of(const struct hq_serve *hq, const char *principal)
{
    unsigned n = 0;
    for (const struct deferred *d = hq->deferred; d; d = d->next)
        n += strcmp(d->principal, principal) == 0;
    return n;
}

/* Applies a deferred upload whose predecessor settled: on the pool (its
 * waiting request answered from job_done) or here. Returns 0 when it
 * went (d is then the caller's to free), or -EAGAIN when the pool's queue
 * is full (it stays deferred and is tried at the next tick). */
static int deferred_apply(struct hq_serve *hq, struct deferred *d)
{
    if (hq->workers) {
        struct hq_job *j =
            hq_job_new(d->id, d->principal, d->meta_node, d->meta_segment, d->path, now_ms(hq));
        if (!j)
            return -EAGAIN;
        j->x = d->x;
        if (hq_workers_submit(hq->workers, j) < 0) {
            hq_job_free(j);
            return -EAGAIN;
        }
        return 0;
    }
    struct hq_upload u = {d->principal, d->meta_node, d->meta_segment, d->path};
    const char *segname = d->meta_segment ? d->meta_segment : "?";
    struct hq_apply_result res;
    struct op_error err;
    op_error_clear(&err);
    int rc = hq_apply_upload(&hq->store, hq->policies, &u, now_ms(hq), &res, &err);
    if (rc < 0)
        log_warning("node %s segment %s: cannot apply now, kept for a retry: %s", d->principal,
                    segname, err.msg[0] ? err.msg : strerror(-rc));
    else
        rc = apply_outcome(hq, d->id, d->principal, segname, &res, d->x);
    tus_server_finish(hq->tus, d->id, d->x, rc);
    return 0;
}

/* Looks at every deferred upload: one whose predecessor settled (or went)
 * is applied now; a waiting request past receipt_wait_ms is answered
 * without its receipt. With `tick` (the timer), a predecessor complete
 * but taken by nobody here is offered (a cut after its last byte, or its
 * receiver died), so that it does not wait for the minute sweep. Never
 * from inside a tus_server callback. */
static void deferred_check(struct hq_serve *hq, int tick)
{
    if (hq->stopping)
        return;
    int again = 1;
    unsigned settled = 0;
    for (unsigned round = 0; again && round < 64; round++) {
        again = 0;
        for (struct deferred *d = hq->deferred; d; d = d->next) {
            enum tus_upload_state st = tus_server_upload_state(hq->tus, d->after, d->principal);
            if (st == TUS_UPLOAD_COMPLETE && tick && !deferred_find(hq, d->after)) {
                if (tus_server_offer(hq->tus, d->after) != 0) {
                    again = 1; /* the list may have changed */
                    break;
                }
            }
            if (st == TUS_UPLOAD_PARTIAL || st == TUS_UPLOAD_COMPLETE || st == TUS_UPLOAD_TAKEN)
                continue;
            deferred_unlink(hq, d);
            if (deferred_apply(hq, d) < 0) {
                d->next = hq->deferred; /* the pool is full: the next tick */
                hq->deferred = d;
                hq->n_deferred++;
                again = 0;
                break;
            }
            deferred_free(d);
            settled++;
            again = 1;
            break;
        }
    }
    uint64_t now = uv_now(hq->loop), wait = hq->cfg->receipt_wait_ms;
    for (struct deferred *d = hq->deferred; d; d = d->next)
        if (d->x && now - d->since_ms >= wait) {
            /* The node falls back to GET /v1/receipts/N (404 until applied). */
            (void)tus_server_answer_waiting(hq->tus, d->id, d->x);
            d->x = NULL;
        }
    if (hq->timers_ready && !hq->deferred)
        (void)uv_timer_stop(&hq->defer_timer);
    else if (hq->timers_ready && !uv_is_active((uv_handle_t *)&hq->defer_timer))
        uv_timer_start(&hq->defer_timer, on_defer_timer, DEFER_TICK_MS, DEFER_TICK_MS);
    if (settled && hq->defer_owed) {
        hq->defer_owed = 0;
        int n = tus_server_redeliver(hq->tus);
        if (n < 0)
            log_warning("retrying completed uploads: %s", strerror(-n));
    }
}

static void on_defer_timer(uv_timer_t *t)
{
    deferred_check(t->data, 1);
}

/* At a stop: every deferred upload stays complete on disk and is offered
 * again after the next start; a waiting request hears 503. */
static void deferred_abandon(struct hq_serve *hq)
{
    while (hq->deferred) {
        struct deferred *d = hq->deferred;
        deferred_unlink(hq, d);
        if (hq->tus)
            tus_server_finish(hq->tus, d->id, d->x, -ECANCELED);
        deferred_free(d);
    }
}

static int tus_complete(void *ctx, const char *upload_id, const char *principal,
                        const struct tus_metadata *md, const char *data_path, uint64_t length)
{
    struct hq_serve *hq = ctx;
    (void)length;
    struct hq_upload u = {
        .principal = principal,
        .meta_node = tus_metadata_get(md, "node", NULL),
        .meta_segment = tus_metadata_get(md, "segment", NULL),
        .path = data_path,
    };
    const char *after = tus_metadata_get(md, "after", NULL);
    if (must_wait(hq, upload_id, principal, after)) {
        if (hq->stopping)
            return -ESHUTDOWN; /* complete on disk: after the next start */
        if (deferred_of(hq, principal) >= hq->cfg->max_incomplete_per_node ||
            hq->n_deferred >= hq->cfg->max_uploads) {
            /* Kept complete and offered again when a deferral ends (or
             * at the sweep); the node's final PATCH gets no receipt. */
            hq->defer_owed = 1;
            return -EAGAIN;
        }
        int rc = deferred_add(hq, upload_id, principal, after, &u);
        if (rc < 0)
            return rc;
        log_info("node %s segment %s: complete, applied after its earlier upload %s settles",
                 principal, u.meta_segment ? u.meta_segment : "?", after);
        return TUS_COMPLETE_LATER;
    }
    if (!hq->workers)
        return apply_here(hq, upload_id, &u);
    if (hq->stopping)
        return -ESHUTDOWN; /* complete on disk: applied after the next start */
    struct hq_job *j =
        hq_job_new(upload_id, principal, u.meta_node, u.meta_segment, data_path, now_ms(hq));
    if (!j)
        return -ENOMEM;
    j->x = tus_server_completing(hq->tus);
    int rc = hq_workers_submit(hq->workers, j);
    if (rc < 0) {
        /* Full (a completion the gate could not see coming: a cut after
         * the last byte, a restart's backlog): offered again when a job
         * finishes. */
        hq_job_free(j);
        hq->redeliver_owed = 1;
        return rc;
    }
    return TUS_COMPLETE_LATER;
}

/* The pool finished (or abandoned) a job: on the loop. */
static void job_done(void *ctx, struct hq_job *j)
{
    struct hq_serve *hq = ctx;
    if (j->kind == HQ_JOB_RUN) { /* a digest answered off the loop (digest_on_pool) */
        hq_verify_digest_finish(j->arg, j->x, j->rc);
        hq_job_free(j);
        return;
    }
    if (j->kind == HQ_JOB_TOUCH) {
        if (j->rc < 0)
            touch_failed(hq, j);
        hq_job_free(j);
        return;
    }
    struct http_exchange *x = j->x;
    const char *segname = j->meta_segment ? j->meta_segment : "?";
    int rc = j->rc;
    if (rc == -ECANCELED) {
        log_info("node %s segment %s: not applied before the stop; kept, applied after the next "
                 "start",
                 j->principal, segname);
    } else if (rc < 0) {
        log_warning("node %s segment %s: cannot apply now, kept for a retry: %s", j->principal,
                    segname, j->err.msg[0] ? j->err.msg : strerror(-rc));
    } else {
        rc = apply_outcome(hq, j->upload_id, j->principal, segname, &j->res, x);
    }
    tus_server_finish(hq->tus, j->upload_id, x, rc);
    hq_job_free(j);
    if (hq->deferred)
        deferred_check(hq, 0);
    if (hq->redeliver_owed && !hq->stopping && !hq_workers_full(hq->workers)) {
        hq->redeliver_owed = 0;
        int n = tus_server_redeliver(hq->tus);
        if (n < 0)
            log_warning("retrying completed uploads: %s", strerror(-n));
    }
}

/* A digest is answered on the apply pool: building a large node's set
 * takes a second or more of CPU, which the loop would otherwise spend
 * while every other request waits. The answer follows from job_done. A
 * full queue (or a stop) answers 503 with Retry-After at once. */
static void digest_on_pool(struct hq_serve *hq, struct http_exchange *x, const struct hq_node *n)
{
    struct hq_verify_digest *d = hq_verify_digest_new(x, n, now_ms(hq));
    struct hq_job *j = d ? hq_job_run_new(n->name, hq_verify_digest_run, d) : NULL;
    int rc = !j ? -ENOMEM : hq->stopping ? -ESHUTDOWN : 0;
    if (rc == 0) {
        j->x = x;
        rc = hq_workers_submit_run(hq->workers, j);
    }
    if (rc == 0)
        return;
    hq_job_free(j);
    hq_verify_digest_free(d);
    (void)http_add_header(x, "Retry-After", "5");
    problem(x, 503,
            rc == -EAGAIN ? "HQ is busy answering digests; retry later"
                          : "HQ cannot answer digests now; retry later");
}

/* tus_server's question at the gate: can a completion be taken now? */
static unsigned tus_busy(void *ctx)
{
    struct hq_serve *hq = ctx;
    if (hq->stopping)
        return 5;
    return hq->workers && hq_workers_full(hq->workers) ? 2 : 0;
}

static void handle_receipt(struct hq_serve *hq, struct http_exchange *x, const struct hq_node *n,
                           const char *num)
{
    uint64_t seg = 0;
    size_t len = strlen(num);
    int ok = len > 0 && len <= 16;
    for (size_t i = 0; ok && i < len; i++) {
        ok = num[i] >= '0' && num[i] <= '9';
        seg = seg * 10 + (uint64_t)(num[i] - '0');
    }
    if (!ok) {
        problem(x, 404, "no such receipt: the path is /v1/receipts/SEGMENT-NUMBER");
        return;
    }
    struct hq_receipt r;
    struct op_error err;
    op_error_clear(&err);
    int rc = hq->store.ops->receipt_get(hq->store.impl, n->name, seg, &r, &err);
    if (rc == -ENOENT) {
        char d[160];
        snprintf(d, sizeof d,
                 "segment %" PRIu64 " of node %s has not been received or not yet applied", seg,
                 n->name);
        problem(x, 404, d);
        return;
    }
    if (rc < 0) {
        log_err("receipt: %s", err.msg);
        problem(x, 503, "the HQ store is not available; try again later");
        return;
    }
    char *body = receipt_json(hq, n, &r);
    if (!body) {
        problem(x, 500, "cannot compute the receipt");
        return;
    }
    http_respond(x, 200, "application/json", body, strlen(body));
    free(body);
}

struct mailbox_page {
    const struct hq_node *n;
    json_t *arr;
    uint64_t last;
    int failed;
};

static int mailbox_row(void *ctx, const struct hq_mailbox_msg *m)
{
    struct mailbox_page *pg = ctx;
    char mac[SYNC_MAC_HEX], at[32];
    if (sync_mailbox_mac(pg->n->hq_key, pg->n->name, m->seq, m->kind, m->body, m->body_len, mac) <
        0) {
        pg->failed = 1;
        return 1;
    }
    iso_time(m->created_ms, at);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s#, s:s}", "seq", (json_int_t)m->seq, "kind", m->kind,
                          "created_at", at, "body", m->body, (int)m->body_len, "mac", mac);
    if (!o || json_array_append_new(pg->arr, o) < 0) {
        pg->failed = 1;
        return 1;
    }
    pg->last = m->seq;
    return 0;
}

static void handle_mailbox(struct hq_serve *hq, struct http_exchange *x, const struct hq_node *n)
{
    char after_s[32];
    uint64_t after = 0;
    int rc = http_query_param(x, "after", after_s, sizeof after_s);
    if (rc >= 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(after_s, &end, 10);
        if (errno || end == after_s || *end || after_s[0] == '-') {
            problem(x, 400, "after must be a whole number (the last seq the node stored)");
            return;
        }
        after = v;
    } else if (rc != -ENOENT) {
        problem(x, 400, "after must be a whole number (the last seq the node stored)");
        return;
    }
    struct mailbox_page pg = {.n = n, .arr = json_array(), .last = after};
    struct op_error err;
    op_error_clear(&err);
    rc = pg.arr ? hq->store.ops->mailbox_list(hq->store.impl, n->name, after, MAILBOX_PAGE,
                                              mailbox_row, &pg, &err)
                : -ENOMEM;
    if (rc < 0 || pg.failed) {
        json_decref(pg.arr);
        if (rc < 0)
            log_err("mailbox: %s", err.msg);
        problem(x, 503, "the mailbox is not available; try again later");
        return;
    }
    respond_json(x, 200, "application/json",
                 json_pack("{s:o, s:I}", "messages", pg.arr, "last", (json_int_t)pg.last));
}

/* One gauge or counter with its HELP and TYPE (promtool check metrics
 * wants both for every family). */
static int metric(struct buf *b, const char *name, const char *type, const char *help,
                  uint64_t value)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                      name, value);
}

static void handle_metrics(struct hq_serve *hq, struct http_exchange *x)
{
    struct hq_totals t;
    struct op_error err;
    op_error_clear(&err);
    if (hq->store.ops->totals(hq->store.impl, &t, &err) < 0) {
        log_err("metrics: %s", err.msg);
        problem(x, 503, "the HQ store is not available");
        return;
    }
    struct tus_server_stats ts;
    tus_server_stats(hq->tus, &ts);
    struct buf b = BUF_INIT(1u << 20);
    int rc = 0;
    rc |=
        metric(&b, "outpost_hq_nodes", "gauge", "Nodes enrolled, revoked ones included.", t.nodes);
    rc |= metric(&b, "outpost_hq_nodes_revoked", "gauge", "Nodes whose token is refused.",
                 t.nodes_revoked);
    rc |= metric(&b, "outpost_hq_records", "gauge", "Records HQ holds from all nodes.", t.records);
    rc |= metric(&b, "outpost_hq_tombstones", "gauge", "Records held as deleted (tombstones).",
                 t.tombstones);
    rc |= metric(&b, "outpost_hq_segments_applied_total", "counter",
                 "Segments applied (receipts with status applied).", t.receipts_applied);
    rc |= metric(&b, "outpost_hq_segments_rejected_total", "counter",
                 "Segments rejected by the policy re-check (the node's sync stops).",
                 t.receipts_rejected);
    rc |= metric(&b, "outpost_hq_segments_refused_total", "counter",
                 "Uploads refused before apply (bad metadata, MAC or node).", t.refused);
    rc |= metric(&b, "outpost_hq_records_set_aside_total", "counter",
                 "Records HQ could not apply and set aside.", t.set_aside);
    rc |= metric(&b, "outpost_hq_mailbox_messages", "gauge",
                 "Messages queued in the nodes' mailboxes.", t.mailbox);
    rc |= metric(&b, "outpost_hq_uploads", "gauge", "Uploads open in the spool.", ts.uploads);
    rc |= metric(&b, "outpost_hq_uploads_complete", "gauge",
                 "Uploads with every byte received, not yet settled.", ts.complete);
    rc |= metric(&b, "outpost_hq_uploads_settled", "gauge",
                 "Uploads applied or refused, kept until the node has its answer.", ts.settled);
    rc |= metric(&b, "outpost_hq_spool_bytes", "gauge", "Bytes the upload spool holds.",
                 ts.spool_bytes);
    rc |= metric(&b, "outpost_hq_applies_pending", "gauge",
                 "Completed uploads queued for or being applied by the apply pool.",
                 hq->workers ? hq_workers_pending(hq->workers) : 0u);
    rc |= metric(&b, "outpost_hq_uploads_deferred", "gauge",
                 "Completed uploads waiting for the same node's earlier upload to settle.",
                 hq->n_deferred);
    rc |= metric(&b, "outpost_hq_connections", "gauge", "Connections open now.",
                 hq->server ? http_server_connections(hq->server) : 0u);
    if (!rc)
        rc = procmetrics_render(&b, "outpost-hq", OUTPOST_VERSION, hq->started_s);
    if (rc) {
        buf_done(&b);
        problem(x, 503, "out of memory");
        return;
    }
    http_respond(x, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    buf_done(&b);
}

static void handler(void *ctx, struct http_exchange *x)
{
    struct hq_serve *hq = ctx;
    const char *path = http_path(x), *method = http_method(x);
    if (!strcmp(path, "/healthz") || !strcmp(path, "/metrics")) {
        if (!is_get(method))
            not_allowed(x, "GET, HEAD");
        else if (path[1] == 'h')
            respond_json(x, 200, "application/json", json_pack("{s:s}", "status", "ok"));
        else
            handle_metrics(hq, x);
        return;
    }
    if (!strcmp(path, "/files") || !strncmp(path, "/files/", 7)) {
        /* authenticated (tus_authorize) and, for a creation, checked
         * against the token's node (tus_admit) by tus_server itself */
        if (!tus_server_handle(hq->tus, x))
            problem(x, 404, "no such path");
        if (hq->deferred) /* an earlier upload may have settled or gone */
            deferred_check(hq, 0);
        return;
    }
    if (!strncmp(path, "/v1/receipts/", 13) || !strcmp(path, "/v1/mailbox")) {
        if (strcmp(method, "GET") != 0) {
            not_allowed(x, "GET");
            return;
        }
        const struct hq_node *n = http_data(x); /* the gate's */
        if (!n) {
            unauthorized(x);
            return;
        }
        if (path[4] == 'r')
            handle_receipt(hq, x, n, path + 13);
        else
            handle_mailbox(hq, x, n);
        return;
    }
    if (hq_verify_path(path)) { /* anti-entropy: the gate authenticated the node */
        const struct hq_node *n = http_data(x);
        if (!n)
            unauthorized(x);
        else if (hq->workers && hq_verify_is_digest(x))
            digest_on_pool(hq, x, n);
        else
            hq_verify_handle(&hq->store, x, n, now_ms(hq));
        return;
    }
    /* the analysts' aggregates: their own tokens, checked there */
    if (hq_analyst_http_handle(&hq->store, x, now_ms(hq)))
        return;
    problem(x, 404, "no such path");
}

static void on_log(void *ctx, const struct http_log_entry *e)
{
    struct hq_serve *hq = ctx;
    if (!hq->cfg->log_requests)
        return;
    log_msg(e->status >= 500 ? LOG_LEVEL_WARNING : LOG_LEVEL_INFO,
            "%s %s %s %d %" PRIu64 "B %.1fms %s", e->remote, e->user, e->method, e->status,
            e->bytes_out, e->duration_ms, e->path);
}

static void on_sweep(uv_timer_t *t)
{
    struct hq_serve *hq = t->data;
    if (hq->stopping)
        return;
    int rc = tus_server_expire(hq->tus, hq->cfg->upload_expire_s);
    if (rc > 0)
        log_info("expired %d idle unfinished uploads", rc);
    else if (rc < 0)
        log_warning("expiring idle uploads: %s", strerror(-rc));
    rc = tus_server_redeliver(hq->tus);
    if (rc < 0)
        log_warning("retrying completed uploads: %s", strerror(-rc));
    if (hq->deferred)
        deferred_check(hq, 0);
    /* An erasure's commit truncates the log at once unless a reader (an
     * `outpost-hq records` run) held it; then it is finished here. A
     * reader still holding it (-EBUSY) is simply tried again next time. */
    struct op_error err;
    op_error_clear(&err);
    rc = hq->store.ops->forget(hq->store.impl, &err);
    if (rc < 0 && rc != -EBUSY)
        log_warning("removing erased data from the store's log: %s", err.msg);
}

static void hq_free(struct hq_serve *hq)
{
    hq_verify_forget();
    while (hq->deferred) {
        struct deferred *d = hq->deferred;
        hq->deferred = d->next;
        deferred_free(d);
    }
    tus_server_free(hq->tus);
    hq_policies_free(hq->policies);
    free(hq->seen);
    free(hq);
}

static void sweep_closed(uv_handle_t *h)
{
    struct hq_serve *hq = h->data;
    void (*done)(void *) = hq->stop_cb;
    void *ctx = hq->stop_ctx;
    hq_free(hq);
    if (done)
        done(ctx);
}

/* The pool of a start that failed later has ended. */
static void pool_failed(void *ctx)
{
    hq_free(ctx);
}

/* The deferral timer is closed first, the sweep after it, and the
 * receiver freed when the sweep's close is done. */
static void defer_timer_closed(uv_handle_t *h)
{
    struct hq_serve *hq = h->data;
    uv_close((uv_handle_t *)&hq->sweep, sweep_closed);
}

static void server_stopped(void *arg)
{
    struct hq_serve *hq = arg;
    hq->server = NULL;
    uv_close((uv_handle_t *)&hq->defer_timer, defer_timer_closed);
}

/* Bodies held in memory at once: 64 upload chunks (max_body_bytes each,
 * 4 MiB by default: 256 MiB), at least 64 MiB, at most 1 GiB. Past it a
 * PATCH is answered 503 with Retry-After and the node resumes later. */
static size_t buffered_budget(const struct hq_config *cfg)
{
    uint64_t b = (uint64_t)cfg->max_body_bytes * 64;
    if (b < (uint64_t)64 << 20)
        b = (uint64_t)64 << 20;
    if (b > (uint64_t)1 << 30)
        b = (uint64_t)1 << 30;
    return (size_t)b;
}

int hq_serve_start(uv_loop_t *loop, const struct hq_config *cfg, const struct hq_store *store,
                   const struct hq_serve_clock *clock, struct hq_serve **out, struct op_error *err)
{
    return hq_serve_start_pool(loop, cfg, store, NULL, clock, out, err);
}

int hq_serve_start_pool(uv_loop_t *loop, const struct hq_config *cfg, const struct hq_store *store,
                        const struct hq_store_opener *opener, const struct hq_serve_clock *clock,
                        struct hq_serve **out, struct op_error *err)
{
    struct hq_serve *hq = calloc(1, sizeof *hq);
    if (!hq)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    hq->cfg = cfg;
    hq->loop = loop;
    hq->store = *store;
    hq->started_s = (double)real_wall_ms(NULL) / 1000.0;
    if (clock)
        hq->clock = *clock;
    if (!hq->clock.wall_ms)
        hq->clock.wall_ms = real_wall_ms;
    if (!hq->clock.mono_ms)
        hq->clock.mono_ms = real_mono_ms;
    if (hq_policies_new(&hq->policies) < 0) {
        free(hq);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    struct tus_server_config tc = {
        .spool_dir = cfg->spool_dir,
        .base_path = "/files",
        .max_upload_bytes = cfg->max_upload_bytes,
        .max_spool_bytes = cfg->max_spool_bytes,
        .max_uploads = (unsigned)cfg->max_uploads,
        .max_incomplete_per_principal = (unsigned)cfg->max_incomplete_per_node,
        .authorize = tus_authorize,
        .admit = tus_admit,
        .on_complete = tus_complete,
        .busy = tus_busy,
        .ctx = hq,
        .unauthorized_detail = UNAUTHORIZED,
        .now_ms = tus_clock,
        .clock_ctx = hq,
        .deliver_before_answer = cfg->receipt_wait_ms > 0,
        .shared = cfg->shared_spool,
    };
    struct op_error terr;
    op_error_clear(&terr);
    int rc = tus_server_new(&tc, &hq->tus, &terr);
    if (rc < 0) {
        hq_free(hq);
        return op_error_set(err, rc, "spool_dir", "upload spool: %s", terr.msg);
    }
    if (opener && cfg->apply_workers > 0) {
        rc = hq_workers_start(loop, (unsigned)cfg->apply_workers, (unsigned)cfg->apply_queue,
                              opener, job_done, hq, &hq->workers, err);
        if (rc < 0) {
            hq_free(hq);
            return rc;
        }
    }
    rc = tus_server_redeliver(hq->tus);
    if (rc > 0)
        log_info("took %d completed uploads left by the last run", rc);

    struct http_server_config hc = {
        .listen = cfg->listen,
        .max_header_bytes = (size_t)cfg->max_header_bytes,
        .max_body_bytes = (size_t)cfg->max_body_bytes,
        .max_connections = (unsigned)cfg->max_connections,
        .max_connections_per_address = (unsigned)cfg->max_connections_per_address,
        .header_timeout_ms = (unsigned)cfg->header_timeout_ms,
        .body_timeout_ms = (unsigned)cfg->body_timeout_ms,
        .idle_timeout_ms = (unsigned)cfg->idle_timeout_ms,
        .tls_cert_file = cfg->tls_cert[0] ? cfg->tls_cert : NULL,
        .tls_key_file = cfg->tls_key[0] ? cfg->tls_key : NULL,
        .max_buffered_bytes = buffered_budget(cfg),
        .gate = gate,
    };
    rc = http_server_start(loop, &hc, handler, on_log, hq, &hq->server, err);
    if (rc < 0) {
        if (hq->workers) {
            /* Freed on the loop once its threads have ended; the jobs
             * the redelivery above queued are abandoned (kept on disk). */
            hq->stopping = 1;
            hq_workers_stop(hq->workers, pool_failed, hq);
            return rc;
        }
        hq_free(hq);
        return rc;
    }
    uv_timer_init(loop, &hq->sweep);
    hq->sweep.data = hq;
    uv_timer_start(&hq->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_timer_init(loop, &hq->defer_timer);
    hq->defer_timer.data = hq;
    hq->timers_ready = 1;
    if (hq->deferred) /* the redelivery above deferred some */
        deferred_check(hq, 1);
    *out = hq;
    return 0;
}

int hq_serve_port(const struct hq_serve *hq)
{
    return http_server_port(hq->server);
}

void hq_serve_reload(struct hq_serve *hq)
{
    hq_policies_clear(hq->policies);
    if (hq->workers)
        hq_workers_reload(hq->workers);
}

/* The pool has ended (applies under way finished, queued ones abandoned
 * and answered): now the HTTP server stops. */
static void pool_stopped(void *ctx)
{
    struct hq_serve *hq = ctx;
    hq->workers = NULL;
    http_server_stop(hq->server, server_stopped, hq);
}

void hq_serve_stop(struct hq_serve *hq, void (*done)(void *ctx), void *ctx)
{
    if (!hq || hq->stopping)
        return;
    hq->stopping = 1;
    hq->stop_cb = done;
    hq->stop_ctx = ctx;
    (void)uv_timer_stop(&hq->sweep);
    (void)uv_timer_stop(&hq->defer_timer);
    deferred_abandon(hq);
    if (hq->workers)
        hq_workers_stop(hq->workers, pool_stopped, hq);
    else
        http_server_stop(hq->server, server_stopped, hq);
}
