/*
 * The uplink: outpostd's sync state machine on the loop (docs/UPLINK.md).
 * Every sync_interval, and at once after the spool changed, it cuts new
 * segments, uploads the lowest unacknowledged one with tus, polls HQ for
 * its receipt, applies it, and polls the mailbox. It touches the node
 * database only through sync_ledger (one job at a time on the libuv
 * thread pool) and the network only through tus_client; it includes
 * neither store.h, db.h nor sqlite3.h (tests/tools/check_egress.sh).
 *
 * The invariant: segments are created at HQ strictly in number order; at
 * most uploads_in_flight (1 or 2) upload at once, and N+1's creation goes
 * only after HQ answered N's, naming N's upload in `after` while N has no
 * receipt (docs/UPLINK.md, "Two uploads"). Nothing here is durable by itself: every step that
 * matters is a ledger call, so a crash anywhere resumes from the ledger's state.
 */
#ifndef OUTPOST_UPLINK_H
#define OUTPOST_UPLINK_H

#include <stdint.h>
#include <uv.h>

#include "node_credentials.h"
#include "op_error.h"
#include "sync_ledger.h"

struct uplink;

struct uplink_config {
    const char *db_path;                 /* node database; required */
    const char *spool_dir;               /* NULL or "": <directory of db_path>/spool */
    const struct node_credentials *cred; /* required; copied */
    const char *hq_url;                  /* NULL or "": cred->hq_url */
    const char *ca_file;                 /* PEM bundle for HQ's certificate; NULL: system */
    int insecure_tls;                    /* tests only */
    uint64_t spool_max_bytes;            /* 0: the ledger's default */
    uint64_t segment_bytes;              /* 0: the ledger's default */
    uint64_t interval_ms;                /* 0: 10000 */
    /* anti-entropy checks (docs/SYNC_PROTOCOL.md): every this many ms plus
     * up to a tenth more at random; 0: only the ones asked for */
    uint64_t verify_interval_ms;
    uint64_t bandwidth_bps; /* upload cap; 0: none */
    const char *window;     /* NULL/"" or "HH:MM-HH:MM" local time */
    uint64_t daily_bytes;   /* upload bytes per UTC day; 0: unlimited */
    int create_with_data;   /* the creation carries the first bytes (TUS.md) */
    /* Segments uploading at once (docs/UPLINK.md, "Two uploads"): 2 lets
     * segment N+1 go while N waits for HQ's answers; 0 or 1: one. */
    unsigned uploads_in_flight;
    /* When segments are cut (sync_ledger_options.pace; docs/OUTBOX.md):
     * pace 0 cuts whatever the outbox holds each cycle. With pace 1 the
     * next segment is also cut while the link takes one ("cutting ahead"). */
    int pace;
    uint64_t first_segment_ms, hold_ms;
    const char *policy_file; /* as api_options.policy_file */
    /* Called on the loop after a policy from HQ's mailbox was stored, so
     * the caller reloads its own copy (api_reload_policy); the ledger's
     * copy is reloaded by the uplink. May be NULL. */
    void (*policy_changed)(void *ctx);
    void *ctx;
    /* The clocks the uplink decides by; tests inject their own. Timers
     * still run on the loop: a clock decides what a cycle does and how
     * long it waits, not how fast the loop's time goes. */
    /* Monotonic ms: upload durations, how long a receipt has been awaited
     * (also the uploader's clock). NULL: the loop's (uv_now). */
    uint64_t (*mono_ms)(void *ctx);
    /* Wall-clock ms since the epoch: the sync window (in local time), the
     * UTC day of the daily budget (also the ledger's clock, so it is
     * called from the thread pool too). NULL: CLOCK_REALTIME. */
    int64_t (*wall_ms)(void *ctx);
    void *clock_ctx;
};

/* Checks the config (URL, window), creates the tus client and queues the
 * first cycle, which opens the ledger on the thread pool. Returns 0 and
 * *out, or -EINVAL (err names the key: "hq_url", "sync_window"), -ENOMEM.
 * Errors after start (HQ unreachable, a region mismatch) are logged and
 * recorded in the ledger, never fatal: the node keeps serving. */
int uplink_start(uv_loop_t *loop, const struct uplink_config *cfg, struct uplink **out,
                 struct op_error *err);

/* Stops: cancels the upload and GETs in flight (HQ keeps what it has; the
 * next start resumes), waits for the running ledger job, closes the
 * ledger, frees the uplink and then calls done(ctx) on the loop. */
void uplink_stop(struct uplink *u, void (*done)(void *ctx), void *ctx);

/* SIGHUP: reloads the ledger's policy (which unblocks a sync stopped by a
 * rejected segment when the policy hash changed) and runs a cycle. */
void uplink_reload_policy(struct uplink *u);

/* Runs a cycle now (or right after the current one). */
void uplink_kick(struct uplink *u);

/* The status as of the last ledger job; NULL before the first one. The
 * pointer stays valid until uplink_stop. */
const struct sync_status *uplink_status(const struct uplink *u);

#endif
