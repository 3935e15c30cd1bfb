/*
 * Resumable uploader: a tus 1.0.0 client (core, creation, checksum; and
 * termination, to take back an upload) that sends spool files to HQ over libcurl's multi socket
 * interface, driven by the caller's libuv loop. No thread and no blocking network call: every
 * socket is a uv_poll_t and curl's timeout is a uv_timer_t, so the loop
 * stays free for the LAN API while a segment crawls over a 64 kbit/s link.
 * The invariant: after any failure the client asks the server (HEAD) where
 * the upload stands and continues from exactly that offset, so a cut never
 * costs more than the chunk that was in flight, and a byte the server has
 * confirmed is never sent again. Files are immutable while uploading; they
 * are read a chunk at a time with pread, so memory is bounded by the
 * largest chunk. A file that shrinks or is removed while it is uploaded
 * was voided by its owner, and not one more byte of it is sent.
 */
#ifndef OUTPOST_TUS_CLIENT_H
#define OUTPOST_TUS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "op_error.h"

struct tus_client;

/* Caps on what comes from outside: header values we keep, upload URLs. */
#define TUS_URL_MAX 2048
#define TUS_META_MAX 4096    /* encoded Upload-Metadata header value */
#define TUS_RECEIPT_MAX 4096 /* decoded Outpost-Receipt; a longer one is ignored */

/* Returns milliseconds on a monotonic clock; tests inject their own. */
typedef uint64_t (*tus_clock_fn)(void *ctx);
/* Returns 32 uniformly random bits; tests inject their own. */
typedef uint32_t (*tus_rng_fn)(void *ctx);

struct tus_client_config {
    const char *endpoint;     /* creation URL, "https://hq.example/files/"; required */
    const char *auth;         /* Authorization header value ("Bearer ..."); NULL for none */
    const char *ca_file;      /* PEM bundle to trust; NULL: the system store */
    int insecure_skip_verify; /* 1 turns TLS peer and host checks off: tests only */
    /* Chunk size (docs/UPLOADER.md has the control law). A clean full
     * chunk doubles the size below ssthresh and adds a step above it, while
     * it took less than max(fast_chunk_ms, 8 round trips); one slower than
     * max(slow_chunk_ms, 4 x that) halves it, not below the bandwidth-delay
     * product. A cut connection sets size and ssthresh to half of what the
     * connection carried (learned from the next HEAD). */
    size_t min_chunk;     /* default 2 KiB: below a cutting connection's life */
    size_t max_chunk;     /* default 4 MiB; also the memory bound */
    size_t initial_chunk; /* default 64 KiB, clamped to [min, max] */
    /* 1: the server keeps the bytes of a PATCH cut before its end (HQ does,
     * docs/TUS.md), so a cut costs only the bytes in flight whatever the
     * chunk: each PATCH carries all that is left, up to max_chunk, and the
     * rules above do not size it. 0: a generic tus server. */
    int server_keeps_cut_bytes;
    uint64_t max_send_bps;   /* bandwidth cap in bytes/s; 0 = none */
    long connect_timeout_ms; /* default 15000 */
    /* Stalls: a request without progress (a byte written or answered) for
     * max(3 round trips, 1.25 x the time to carry what is in flight at the
     * measured rate + 2 round trips), within [stall_min_ms, stall_seconds],
     * is abandoned; stall_seconds alone until a round trip (and for a PATCH
     * a rate) was measured; twice HQ's measured answer wait more (3 s
     * until one was measured) while HQ processes a completed upload. */
    long stall_seconds;     /* the ceiling; also curl's low-speed limit time; default 30 */
    long stall_bytes_per_s; /* curl's low-speed limit; default 1 */
    uint64_t stall_min_ms;  /* the floor; default 2000 */
    uint64_t fast_chunk_ms; /* default 5000 */
    uint64_t slow_chunk_ms; /* default 30000 */
    /* Retries: after a cut that carried bytes, the next request starts at
     * once; after a further cut with no gain of the offset in between,
     * within a uniform [0, quick_retry_ms]; connects that fail, requests
     * that fail with no byte through, and error answers back off
     * exponentially. */
    uint64_t quick_retry_ms;          /* default 250 */
    uint64_t backoff_base_ms;         /* default 1000 */
    uint64_t backoff_max_ms;          /* default 300000 */
    unsigned max_checksum_mismatches; /* 460s in a row before giving up; default 10 */
    tus_clock_fn now_ms;              /* NULL: uv_hrtime */
    void *clock_ctx;
    tus_rng_fn rng; /* NULL: a generator seeded from getrandom */
    void *rng_ctx;
};

/* One Upload-Metadata pair; the value is sent base64-encoded. Keys must be
 * non-empty ASCII without spaces or commas. */
struct tus_meta {
    const char *key;
    const char *value;
};

/* Callbacks run on the loop thread, never from inside a curl callback, so
 * they may call tus_client_upload or tus_client_stop. Any may be NULL
 * except on_done. */
#define TUS_CREATED_HOLD 1

struct tus_upload_callbacks {
    /* The server created the upload at `url`. Persist it: bytes follow only
     * after this returns 0, or, when it returns TUS_CREATED_HOLD, after
     * tus_client_resume (so the URL can be persisted off the loop thread
     * first), and a restarted process resumes with it. */
    int (*on_created)(void *ctx, const char *url);
    /* `confirmed` bytes of `total` are stored by the server. */
    void (*on_progress)(void *ctx, uint64_t confirmed, uint64_t total);
    /* A request failed with `why`; the next one starts in `delay_ms`.
     * `attempt` counts the failures in a row of the same kind: quick
     * reconnects after cuts, or backed-off failures. */
    void (*on_retry)(void *ctx, unsigned attempt, uint64_t delay_ms, const struct op_error *why);
    /* The response that completed the upload carried HQ's receipt
     * (Outpost-Receipt: base64url without padding, docs/SYNC_PROTOCOL.md):
     * `receipt_json` is the decoded receipt, `len` bytes (at most
     * TUS_RECEIPT_MAX) and a NUL, living until the callback returns.
     * Called just before on_done with status 0, and only then; the callee
     * verifies it. A header that does not decode is ignored. */
    void (*on_receipt)(void *ctx, const char *receipt_json, size_t len);
    /* The upload ended. status 0: the whole file is stored at `url`.
     * Otherwise a negative errno with the detail in `err`:
     *   -EACCES   401/403 from the server;
     *   -EPERM    TLS: the server's certificate is not trusted;
     *   -EFBIG    413, the server refuses the size;
     *   -EPROTO   another 4xx, or a reply that breaks the protocol;
     *   -ESTALE   the file was voided: it is gone or empty when the upload
     *             starts, or it shrank below its length or lost its name
     *             (truncated or removed) while it was sent; the check runs
     *             before every request and in curl's read callback, so the
     *             chunk on the wire is abandoned and nothing of the file is
     *             sent after the change is seen (err names the path). Also
     *             when tus_client_terminate is called for the upload's URL
     *             (err->field "upload_url"). Never retried;
     *   -EIO      the file could not be read, or too many 460s;
     *   -EACCES... from opening the file (err names the path);
     *   -EINVAL   the file is not a regular file, or curl refused the URL;
     *   -EINTR    tus_client_cancel was called;
     *   -ECANCELED tus_client_stop was called.
     * Network errors, timeouts, stalls, 5xx, 408, 409, 423, 429 and 460
     * are retried (then HEAD, except after 460) and never reach on_done:
     * at once (within quick_retry_ms) after a cut or stall that followed
     * bytes going through, otherwise with backoff; 404/410 create the
     * upload again. `url` may be NULL
     * if none was created; it lives until the callback returns. */
    void (*on_done)(void *ctx, int status, const char *url, const struct op_error *err);
};

struct tus_upload_params {
    const char *path;       /* the immutable file to send; required */
    const char *upload_url; /* a URL from an earlier on_created: resume it; NULL: create */
    const struct tus_meta *meta;
    size_t nmeta;
    struct tus_upload_callbacks cb;
    void *ctx;
    /* The most one PATCH of this upload carries; 0: no bound beyond the
     * client's. A caller that stops the upload after N bytes (a daily
     * budget) sets N, so the PATCH that reaches it ends there. */
    uint64_t chunk_cap;
    /* Creation with upload under a name the client chooses (docs/TUS.md,
     * "Uploads named by the client"). With both set and no upload_url, the
     * key sent is upload_key, '.', and the first 128 bits of the file's
     * SHA-256 in hex (so other content never gets the same name); the URL
     * is the endpoint + tus_upload_id(principal, key). With
     * create_with_data it is reported through on_created before any
     * request and the POST that creates the upload carries its first
     * bytes; without, it is reported when HQ answered the creation, as a
     * plain creation's Location, and a creation repeated after a crash
     * finds the same upload instead of leaving an orphan. A server that refuses data on a creation
     * (400 or 415: an older one) gets a plain POST and a PATCH from then
     * on, with its own Location reported through on_created again.
     * upload_key: 1 to 24 characters of [A-Za-z0-9_-]; principal: the
     * name the server knows the client by (the node id). NULL: a plain
     * creation, the server names the upload. */
    const char *upload_key;
    const char *principal;
    /* With upload_key: 1, the creation carries the first bytes; 0, it is
     * a POST without a body (the name, the record before any request and
     * the idempotent creation stay; the bytes wait for HQ's answer). */
    int create_with_data;
};

struct tus_client_stats {
    uint64_t bytes_confirmed; /* offsets the server confirmed, gained by our PATCHes */
    uint64_t bytes_sent;      /* PATCH body bytes curl sent (or took to send when cut) */
    uint64_t bytes_resent;    /* sent but not (yet) confirmed when the offset was next learned */
    uint64_t retries;         /* requests repeated after a failure */
    uint64_t checksum_mismatches; /* 460 answers */
    uint64_t uploads_done;
    uint64_t uploads_failed;
    size_t chunk_size; /* the current adaptive chunk size; with server_keeps_cut_bytes,
                        * the length of the last PATCH */
    size_t queued;     /* uploads waiting behind the current one */
    int last_error;    /* negative errno of the last failure, 0 if none */
    char last_error_msg[512];
};

/* Creates a client on `loop`. Copies everything in `cfg`. Returns 0 and
 * sets *out, or -EINVAL (bad config, detail in err) or -ENOMEM. The caller
 * ends it with tus_client_stop. Calls curl_global_init once per process;
 * the caller should have called it before starting threads. */
int tus_client_new(uv_loop_t *loop, const struct tus_client_config *cfg, struct tus_client **out,
                   struct op_error *err);

/* Queues one upload; it starts at once if the client is idle, otherwise
 * after the uploads queued before it. Copies `p` (strings included).
 * Returns 0, -EINVAL (detail in err), -ENOMEM, or -ESHUTDOWN after stop.
 * Errors opening the file come later, through on_done. */
int tus_client_upload(struct tus_client *c, const struct tus_upload_params *p,
                      struct op_error *err);

/* The end of a GET. `status` is the HTTP status when an answer arrived
 * (any status: 200, 404 and 500 alike, with their body), or a negative
 * errno when none did:
 *   -EAGAIN   network error, timeout or stall (err->field "network");
 *   -EPERM    TLS: the server's certificate is not trusted ("tls");
 *   -EFBIG    the body passed max_body; nothing of it is returned ("body");
 *   -EINVAL   curl refused the URL ("url");
 *   -ENOMEM;
 *   -ECANCELED tus_client_stop was called.
 * `body` (NUL-terminated, `len` bytes without the NUL; "" when empty) and
 * `err` live until the callback returns. GETs are not retried: the caller
 * decides when to ask again. */
typedef void (*tus_get_cb)(void *ctx, int status, const char *body, size_t len,
                           const struct op_error *err);

#define TUS_GET_BODY_MAX ((size_t)64 * 1024 * 1024)

/* Queues a GET of `url` (absolute http(s); https only if the endpoint is)
 * with the client's Authorization header and TLS settings, on the same
 * curl multi handle as the uploads: it runs beside an upload, not behind
 * it. GETs run one at a time in the order queued. The body is kept up to
 * max_body bytes (1..TUS_GET_BODY_MAX); memory grows with what arrives.
 * `done` is called on the loop thread, never from inside curl, and may
 * call tus_client_get, tus_client_upload or tus_client_stop. Returns 0,
 * -EINVAL (detail in err), -ENOMEM, or -ESHUTDOWN after stop. */
int tus_client_get(struct tus_client *c, const char *url, size_t max_body, tus_get_cb done,
                   void *ctx, struct op_error *err);

/* Queues a POST of `body` (len bytes, copied; sent as application/json)
 * to `url`, otherwise exactly as tus_client_get: same queue, headers, TLS,
 * bound on the answer, and `done` with the answer's status and body. Not
 * retried. Used for HQ's anti-entropy routes (docs/SYNC_PROTOCOL.md). */
int tus_client_post(struct tus_client *c, const char *url, const char *body, size_t len,
                    size_t max_body, tus_get_cb done, void *ctx, struct op_error *err);

/* The end of a termination (tus_client_terminate). `status`:
 *   0          terminated: the server deleted the upload's data and state (204);
 *   -EALREADY  the server has the upload whole and took it (409): it was
 *              applied, rejected or refused, or is being; it cannot be
 *              terminated, and its receipt tells what became of it;
 *   -ENOENT    the server holds no such upload (404, 410): never created,
 *              expired, evicted, terminated before, or another node's;
 *   -EAGAIN    no answer (network, timeout, stall: err->field "network")
 *              or 5xx, 408, 423, 429 ("status"): try again later;
 *   -EACCES    401/403;
 *   -EPERM     TLS: the server's certificate is not trusted ("tls");
 *   -EPROTO    any other answer;
 *   -EINVAL    curl refused the URL ("url");
 *   -ENOMEM;
 *   -ECANCELED tus_client_stop was called.
 * `err` (NULL when status is 0) says what and where, with the server's
 * problem detail; it lives until the callback returns. */
typedef void (*tus_terminate_cb)(void *ctx, int status, const struct op_error *err);

/* Queues a DELETE of `upload_url` (tus termination: the server deletes
 * what it holds of the upload) with the client's Authorization header and
 * TLS settings, in the queue of the GETs: one at a time, beside an upload.
 * An upload of this client that is sending to `upload_url` (the current
 * one or a queued one) ends first, inside this call, with -ESTALE through
 * its on_done: nothing more is sent to a URL being terminated. Not
 * retried: after -EAGAIN the caller asks again when it sees fit. `done`
 * is called on the loop thread, never from inside curl, and may call any
 * function of the client. Returns 0, -EINVAL (detail in err), -ENOMEM, or
 * -ESHUTDOWN after stop. */
int tus_client_terminate(struct tus_client *c, const char *upload_url, tus_terminate_cb done,
                         void *ctx, struct op_error *err);

/* The newest Outpost-Mailbox-Last value HQ sent on any response (uploads,
 * HEAD, GET, DELETE): the highest mailbox seq it holds for this node. *known
 * is 0 (and the result 0) until a response carried a valid one. */
uint64_t tus_client_mailbox_last(const struct tus_client *c, int *known);

/* The smoothed round trip (ms) and PATCH rate (bytes/s) this client has
 * measured; 0 for what it has not measured yet. */
void tus_client_measured(const struct tus_client *c, uint64_t *srtt_ms, uint64_t *rate_bps);

/* Seeds what the client has not measured yet (a second client on the same
 * link, docs/UPLINK.md "Two uploads"), so its stall limits start from a
 * round trip and a rate instead of the stall_seconds ceiling; a value of 0,
 * or one the client measured already, is left alone. */
void tus_client_seed(struct tus_client *c, uint64_t srtt_ms, uint64_t rate_bps);

/* Copies the counters. */
void tus_client_get_stats(const struct tus_client *c, struct tus_client_stats *out);

/* Lets an upload held by on_created (TUS_CREATED_HOLD) go on sending; a
 * no-op when none is held. */
void tus_client_resume(struct tus_client *c);

/* Called from on_progress: the upload's next request waits for
 * tus_client_resume, so the caller can record the offset first (the
 * uplink charges what HQ holds to the day's budget before a resumed
 * PATCH is sized). A no-op without a current upload. */
void tus_client_hold(struct tus_client *c);

/* Sets the most one PATCH (or creation) of the current upload carries
 * from now on; 0: no bound of its own. A no-op without a current upload. */
void tus_client_set_chunk_cap(struct tus_client *c, uint64_t cap);

/* Interrupts the current upload and drops the queued ones, keeping the
 * client (and its GETs) running: each on_done gets -EINTR with `why` as
 * the message. A PATCH under way is abandoned at once; its bytes count as
 * sent. The server keeps what it confirmed, so a later upload with the
 * same URL resumes after a HEAD. Safe to call from the callbacks; a no-op
 * when no upload is queued or after stop. */
void tus_client_cancel(struct tus_client *c, const char *why);

/* Cancels the current and queued uploads, GETs and terminations (on_done
 * and the GET and termination callbacks get -ECANCELED;
 * the server keeps what it confirmed, so a later upload with the same URL
 * resumes), closes every handle, frees the client, and then calls
 * done(ctx) from the loop. `done` may be NULL. Safe to call from any of
 * the upload callbacks; calling it twice is a no-op. */
void tus_client_stop(struct tus_client *c, void (*done)(void *ctx), void *ctx);

#endif
