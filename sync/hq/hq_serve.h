/*
 * `outpost-hq serve`: the HQ daemon. One libuv loop runs the HTTP server
 * (TLS when configured), the tus server at /files/ for segment uploads,
 * GET /v1/receipts/N, GET /v1/mailbox?after=SEQ, /healthz and /metrics
 * (requests and answers in docs/SYNC_PROTOCOL.md), and the analysts'
 * GET /api/v1/aggregates (hq_analyst_http.h: analysts' tokens, checked
 * there, never a node's). A completed upload is
 * verified and applied by hq_apply and then settled; with receipt_wait_ms
 * above 0 that happens before the completing PATCH is answered, which then
 * carries the receipt (Outpost-Receipt), or 460 for an upload that is not
 * a valid segment of the node (discarded). Every answer to a node carries
 * Outpost-Mailbox-Last. tus PATCH bodies are streamed to the spool as they
 * arrive (tus_server_gate), so a cut keeps what arrived. A node's
 * segments are applied in number order with two uploads in flight: an
 * upload whose metadata `after` names the node's earlier upload, still
 * unsettled here, is deferred until that one settles or goes
 * (docs/HQ.md, "Segments in order with two in flight").
 *
 * The receiver (hq_serve_start .. hq_serve_stop) runs on a loop the caller
 * owns, with a store and clocks the caller gives, so it can be tested
 * without the daemon around it; the daemon (store, signals, watchdog) is
 * `outpost-hq serve` in outpost_hq.c.
 *
 * Invariants: every request but /healthz and /metrics is authenticated
 * by its bearer token (SHA-256 looked up in the store) exactly once and
 * before anything else, so an unknown or revoked token gets 401 before a
 * byte is stored; a creation whose Upload-Metadata names another node
 * than the token's gets 403 before anything is stored; an upload is
 * released only after its outcome is committed (a failure leaves it for
 * redelivery at the next timer tick or start). A node's last contact is
 * written to the store at most once per HQ_SERVE_TOUCH_MS (its first
 * request after a start always writes), not at every PATCH. With
 * shared_spool several receivers serve one spool and one store at once
 * behind a load balancer (docs/HQ.md, "Several receivers"): the tus
 * server locks each upload it writes or applies, and the throttle of
 * last-contact writes is per receiver.
 */
#ifndef OUTPOST_HQ_SERVE_H
#define OUTPOST_HQ_SERVE_H

#include <stdint.h>

#include <uv.h>

#include "hq_config.h"
#include "hq_store.h"
#include "hq_workers.h"
#include "op_error.h"

/* How often at most a node's last contact is written to the store. */
#define HQ_SERVE_TOUCH_MS (60u * 1000u)

struct hq_serve;

/* The clocks the receiver reads; tests inject their own. A NULL function
 * is the real clock. */
struct hq_serve_clock {
    /* ms since the epoch: receipt times, last contact, upload spool times */
    int64_t (*wall_ms)(void *ctx);
    /* monotonic ms: how long ago a node's last contact was written */
    uint64_t (*mono_ms)(void *ctx);
    void *ctx;
};

/* Starts the receiver on loop: the upload spool (cfg->spool_dir; complete
 * uploads a previous run left are applied now), the HTTP server on
 * cfg->listen and the minute sweep. store is borrowed and must stay open
 * until done has been called by hq_serve_stop; cfg too. clock may be
 * NULL. Returns 0 and *out, or a negative errno and err saying what
 * failed ("upload spool: ...", the listen address). */
int hq_serve_start(uv_loop_t *loop, const struct hq_config *cfg, const struct hq_store *store,
                   const struct hq_serve_clock *clock, struct hq_serve **out, struct op_error *err);

/* As hq_serve_start, with the apply pool (hq_workers.h) when opener is
 * not NULL and cfg->apply_workers is above 0: that many threads, each
 * with a connection opener->open makes, apply completed uploads off the
 * loop (cfg->apply_queue waiting at most). A failure to open a thread's
 * connection fails the start with err saying why. */
int hq_serve_start_pool(uv_loop_t *loop, const struct hq_config *cfg, const struct hq_store *store,
                        const struct hq_store_opener *opener, const struct hq_serve_clock *clock,
                        struct hq_serve **out, struct op_error *err);

/* The port the HTTP server listens on (the one it picked for port 0). */
int hq_serve_port(const struct hq_serve *hq);

/* Forgets the cached region profiles and policies (SIGHUP): they are read
 * again on next use. */
void hq_serve_reload(struct hq_serve *hq);

/* Stops: applies under way finish, queued ones are abandoned (their
 * uploads stay complete on disk and are applied after the next start;
 * a waiting PATCH gets 503 with Retry-After); then no new connections,
 * in-flight requests finish; then the
 * receiver is freed and done(ctx) is called on the loop. NULL, or a
 * second call, does nothing. */
void hq_serve_stop(struct hq_serve *hq, void (*done)(void *ctx), void *ctx);

#endif
