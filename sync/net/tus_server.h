/*
 * The tus 1.0.0 resumable-upload server (core, creation, checksum and
 * termination extensions) that outpost-hq serves segment uploads with, as
 * a handler on the http_server stack. Every upload lives in a spool directory as a data
 * file and a small state file (length, offset, completion, principal,
 * metadata); a completed upload is handed to the embedder through a
 * callback and deleted only when the embedder releases or settles it. A
 * settled upload keeps only its state file for a while, so a client that
 * missed the final answer learns from HEAD that it is done. A client may
 * terminate (DELETE) its own upload until the embedder has taken it; its
 * files are deleted then.
 *
 * Invariant (crash-only): the offset recorded in a state file never exceeds
 * the bytes made durable in its data file. A PATCH writes and fsyncs the
 * data before it replaces the state file (temp, fsync, rename, fsync of the
 * directory), so after kill -9 at any point a restarted server reports an
 * offset the client can resume from, and bytes beyond it are simply
 * overwritten by the resumed PATCH.
 */
#ifndef OUTPOST_TUS_SERVER_H
#define OUTPOST_TUS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http_server.h"
#include "op_error.h"

#define TUS_ID_LEN 32         /* lowercase hex characters of an upload id */
#define TUS_PRINCIPAL_MAX 128 /* bytes of a principal, NUL included */
#define TUS_METADATA_MAX_PAIRS 32
#define TUS_KEY_MAX 64 /* bytes of an Outpost-Upload-Key, NUL excluded */

/* The id of the upload that `principal` creates with the request header
 * `Outpost-Upload-Key: key` (docs/TUS.md, "Uploads named by the client"):
 * the first 128 bits of SHA-256("outpost-tus-key" NUL principal NUL key)
 * in lowercase hex, so a client knows its upload's URL before it sends a
 * byte, and no principal can name another's upload. key is 1 to
 * TUS_KEY_MAX characters of [A-Za-z0-9._-]. Returns 0, or -EINVAL for a
 * bad key or principal. */
int tus_upload_id(const char *principal, const char *key, char out[TUS_ID_LEN + 1]);

struct tus_server;

/* One Upload-Metadata pair; the value is base64-decoded, may hold any byte
 * and is NUL-terminated for convenience (len excludes the NUL). */
struct tus_meta_pair {
    const char *key;
    const char *value;
    size_t len;
};

struct tus_metadata {
    size_t n;
    struct tus_meta_pair pair[TUS_METADATA_MAX_PAIRS];
};

/* The value of key, or NULL if absent; *len (if not NULL) receives its length. */
const char *tus_metadata_get(const struct tus_metadata *md, const char *key, size_t *len);

/* Authenticates a request before anything else is looked at; called once
 * per request. Writes the principal (1 to cap - 1 printable ASCII bytes
 * 0x21-0x7e, no spaces, NUL-terminated; e.g. the node id) and returns 0;
 * or returns -EACCES (or -EPERM) for missing, unknown or revoked
 * credentials, answered 401, or another negative errno when it cannot
 * check them now (a store error), answered 503. It may add response
 * headers (WWW-Authenticate) with http_add_header, and must not call
 * http_respond. Uploads belong to the principal that created them. */
typedef int (*tus_authorize_fn)(void *ctx, struct http_exchange *x, char *principal, size_t cap);

/* Decides whether a creation may go ahead, with the metadata the server
 * parsed (the same pairs on_complete gets later): called for a POST after
 * authorize, once its headers and Upload-Metadata are valid and before
 * any cap is applied or anything is stored. Returns 0 to go on; or
 * -EPERM (answered 403), -EINVAL (400) or another negative errno (503),
 * and may write a detail for the answer (plain text, at most cap - 1
 * bytes) into detail. The pointers are valid during the call. */
typedef int (*tus_admit_fn)(void *ctx, const char *principal, const struct tus_metadata *md,
                            char *detail, size_t cap);

/* Wall-clock milliseconds since the epoch; tests inject their own. */
typedef uint64_t (*tus_server_clock_fn)(void *ctx);

/* on_complete's answer for "taken; the outcome comes later": the embedder
 * works on the upload elsewhere (a worker thread) and reports with
 * tus_server_finish on the loop. */
#define TUS_COMPLETE_LATER 1

/* Called once per process when an upload's offset reaches its length (after
 * the completion is durable; after the final PATCH was answered, or just
 * before with deliver_before_answer), and again by
 * tus_server_redeliver for complete uploads it did not accept: after a
 * failed call, and after every restart for uploads not yet released. So
 * the embedder must be idempotent (key on the metadata, not on the call).
 * data_path names the complete data file; the pointers are valid during the
 * call. Return 0 when the upload was taken (then settle or release it, now
 * or later), -EBADMSG when its content is invalid for good (the server
 * releases it, HEAD answers 404, and a waiting final PATCH gets 460),
 * TUS_COMPLETE_LATER when it was taken and its outcome follows with
 * tus_server_finish (a waiting final PATCH stays unanswered until then;
 * the upload counts as taken: not redelivered, not terminable), or
 * another negative errno to have it redelivered. */
typedef int (*tus_complete_fn)(void *ctx, const char *upload_id, const char *principal,
                               const struct tus_metadata *md, const char *data_path,
                               uint64_t length);

/* Whether a completed upload could be taken now: 0 yes, or the seconds a
 * client should wait (Retry-After) because the embedder's queue is full.
 * Asked at the gate for a request whose body would complete an upload,
 * before a byte of it is read: such a request is answered 503 with
 * Retry-After and the client sends it again later (nothing was stored,
 * the upload keeps its offset). */
typedef unsigned (*tus_busy_fn)(void *ctx);

struct tus_server_config {
    const char *spool_dir;     /* created (0700) if missing; one server per directory
                                  unless shared (below) */
    const char *base_path;     /* URL path of the collection; NULL = "/files" */
    uint64_t max_upload_bytes; /* Tus-Max-Size; over it: 413. 0 = 64 MiB */
    uint64_t max_spool_bytes;  /* sum of Upload-Length held; over it: 507. 0 = 1 GiB */
    unsigned max_uploads;      /* uploads held in total; over it: 507. 0 = 4096 */
    /* Unfinished uploads per principal; at the cap a creation replaces the
     * principal's least recently written one (which then answers 404).
     * 0 = 4 */
    unsigned max_incomplete_per_principal;
    size_t max_metadata_bytes; /* Upload-Metadata header; over it: 400. 0 = 4 KiB */
    /* How long a settled upload is remembered (tus_server_expire forgets
     * it afterwards). 0 = 3600 */
    uint64_t settled_keep_seconds;
    tus_authorize_fn authorize;  /* required */
    tus_admit_fn admit;          /* may be NULL (every valid creation goes ahead) */
    tus_complete_fn on_complete; /* may be NULL (then uploads wait for tus_server_release) */
    tus_busy_fn busy;            /* may be NULL (completions are always taken) */
    void *ctx;                   /* passed to the callbacks */
    /* The detail of a 401 answer (plain text); NULL = "authentication
     * required" */
    const char *unauthorized_detail;
    /* The clock for idle and keep times, eviction order and the settled
     * time written to state files (so it must be the wall clock: those
     * times outlive the process); NULL = CLOCK_REALTIME. */
    tus_server_clock_fn now_ms;
    void *clock_ctx;
    /* Non-zero: the request that completes an upload is answered after
     * on_complete returned, so the embedder can put the outcome into that
     * answer (tus_server_completing) or refuse the content (-EBADMSG).
     * 0: answered first, delivered after. */
    int deliver_before_answer;
    /* Non-zero: several processes (receivers behind one address) serve
     * this spool_dir at once, and any of them may take any request of any
     * upload (docs/TUS.md, "A spool shared by several servers"). Each
     * request then reads the upload's state file again instead of trusting
     * memory; a process writing or applying an upload holds an flock on
     * its data file (the kernel drops it when the process dies), and a
     * request to an upload another process holds is answered 423 with
     * Retry-After before its body is read. A HEAD of a complete upload
     * that nobody holds has it delivered here (its applier died). The caps
     * (max_uploads, max_spool_bytes, max_incomplete_per_principal) count
     * what this process has seen, refreshed by tus_server_redeliver and
     * tus_server_expire. */
    int shared;
};

/* Opens (creating if needed) the spool directory and reloads every upload
 * recorded there: leftover temp files and data files without a state file
 * (a crash during creation) are removed; a data file shorter than its
 * recorded offset (a storage fault) lowers the offset to what is there.
 * State files that cannot be parsed are left alone and counted in
 * tus_server_stats. Does not call on_complete (see tus_server_redeliver).
 * err names the directory or file and the reason. */
int tus_server_new(const struct tus_server_config *cfg, struct tus_server **out,
                   struct op_error *err);

/* Frees the in-memory state; the spool is untouched. NULL is allowed. Not
 * from inside a callback. */
void tus_server_free(struct tus_server *s);

/* Answers x if its path is the collection (base_path) or an upload under
 * it, and returns 1; returns 0 and leaves x alone otherwise, so an embedder
 * can route other paths itself. Every answer is given before it returns. */
int tus_server_handle(struct tus_server *s, struct http_exchange *x);

/* For an http_server gate, with the principal it authenticated: when x is
 * a PATCH (Content-Length above 0, right headers) to one of principal's
 * unfinished uploads, either answers 409 at once (the offset does not
 * match; the body is never read), or lets it pass with
 * http_gate_stream so that its body is written to the upload's file as
 * it arrives, and returns 1. A body that breaks off keeps what arrived:
 * made durable, then recorded (the next HEAD reports it); its
 * Upload-Checksum, which covers the whole body, is then not checked.
 * A body that completes is checked against Upload-Checksum (460 puts the
 * offset back where the PATCH began) and answered by tus_server_handle
 * as usual. Any other request returns 0 and is left to the caller (pass
 * it on as usual). A new request to an upload whose older PATCH still
 * streams closes that older connection first, keeping its bytes. */
int tus_server_gate(struct tus_server *s, struct http_exchange *x, const char *principal);

/* During on_complete: the request that completed the upload and is
 * answered after the callback (deliver_before_answer), so the callback
 * may add headers to its answer; NULL otherwise (redelivery). */
struct http_exchange *tus_server_completing(const struct tus_server *s);

/* Reports the outcome of an upload on_complete took with
 * TUS_COMPLETE_LATER, on the loop: rc 0 (done: the embedder settled or
 * released it), -EBADMSG (its content is invalid for good: released, HEAD
 * answers 404), -ECANCELED (abandoned because the embedder stops: the
 * upload stays complete on disk and is offered again after the next
 * start) or another negative errno (offered again by
 * tus_server_redeliver). x is the request that completed the upload, as
 * tus_server_completing gave it during on_complete (the embedder may
 * have added headers), or NULL: it is answered now, 204 (201 for a
 * creation), 460 for -EBADMSG, 503 with Retry-After for -ECANCELED. */
void tus_server_finish(struct tus_server *s, const char *upload_id, struct http_exchange *x,
                       int rc);

/* An http_handler_fn (ctx = the tus_server) that answers paths outside the
 * collection with 404. */
void tus_server_handler(void *ctx, struct http_exchange *x);

/* Calls on_complete for every complete upload not accepted in this process
 * (after a restart, or after the callback failed). Returns how many calls
 * were accepted, or a negative errno. Not from inside a callback. */
int tus_server_redeliver(struct tus_server *s);

/* Releases every unfinished upload not created or written to for
 * max_idle_seconds (by the data file's mtime across restarts), and forgets
 * every settled upload settled settled_keep_seconds ago or more (by the
 * time in its state file); "now" is the configured clock's. Call it from
 * a timer. Returns how many unfinished uploads it released (forgotten
 * settled ones are not counted), or the errno of a failed release. Not
 * from inside a callback. */
int tus_server_expire(struct tus_server *s, uint64_t max_idle_seconds);

/* Deletes an upload (complete or not) and its files; its bytes no longer
 * count towards the caps and its id answers 404. Allowed from inside
 * on_complete for the upload being delivered. -ENOENT if unknown, or the
 * errno of a failed unlink (the upload is then forgotten in memory but its
 * state file may remain for the next start to reload). */
int tus_server_release(struct tus_server *s, const char *upload_id);

/* Marks a complete upload as processed: its data file is deleted, its
 * state file is rewritten (atomically) to say it settled and when, and
 * the record is kept for settled_keep_seconds. Until then HEAD answers 200
 * with Upload-Offset = Upload-Length, an empty PATCH at that offset 204,
 * any other PATCH 409 with that offset; it is never offered to on_complete
 * again (also not after a restart), and it counts neither towards
 * max_uploads and max_spool_bytes nor as an unfinished upload. Settled
 * records are themselves bounded by max_uploads: past it the oldest is
 * forgotten early. Allowed from inside on_complete for the upload being
 * delivered. Returns 0 (also if it was settled already); -ENOENT if
 * unknown; -EINVAL if not complete; the errno of a failed state write
 * (then nothing changed); or the errno of a failed unlink of the data
 * (the upload is settled, the next start deletes the data). */
int tus_server_settle(struct tus_server *s, const char *upload_id);

struct tus_server_stats {
    unsigned uploads;         /* held, complete or not; settled ones not counted */
    unsigned complete;        /* complete and neither released nor settled */
    unsigned settled;         /* settled records remembered */
    uint64_t spool_bytes;     /* sum of Upload-Length held */
    unsigned bad_state_files; /* found at start and ignored */
};

void tus_server_stats(const struct tus_server *s, struct tus_server_stats *out);

/* Copies an upload's offset and length (for tests and status pages); a
 * settled upload has both equal. -ENOENT if unknown. */
int tus_server_upload_offset(const struct tus_server *s, const char *upload_id, uint64_t *offset,
                             uint64_t *length);

/* What the spool holds under an upload id for a principal
 * (tus_server_upload_state). */
enum tus_upload_state {
    TUS_UPLOAD_NONE = 0, /* no such upload of this principal (never, released, expired,
                            evicted, terminated, or another principal's) */
    TUS_UPLOAD_PARTIAL,  /* not complete yet */
    TUS_UPLOAD_COMPLETE, /* complete, not settled, not taken by this process (another
                            process may apply it, or it waits for a redelivery) */
    TUS_UPLOAD_TAKEN,    /* complete and taken by on_complete here; its outcome pending */
    TUS_UPLOAD_SETTLED,  /* processed: its record is kept (tus_server_settle) */
};

/* The state of upload id as principal would see it: an upload of another
 * principal is TUS_UPLOAD_NONE. With a shared spool its state file is
 * read again (one small read), so an upload another process settled or
 * released is seen as such. A malformed id is TUS_UPLOAD_NONE. Not from
 * inside a callback. */
enum tus_upload_state tus_server_upload_state(struct tus_server *s, const char *upload_id,
                                              const char *principal);

/* Offers one complete upload that no on_complete of this process has
 * taken (as tus_server_redeliver does for all of them): 1 when taken, 0
 * when not (not complete, taken already, settled, unknown, or another
 * process of a shared spool holds it), -EBADMSG when the embedder found
 * it invalid (released). Not from inside a callback. */
int tus_server_offer(struct tus_server *s, const char *upload_id);

/* Answers x, the request that completed upload_id and waits for its
 * TUS_COMPLETE_LATER outcome, now: as tus_server_finish would for a
 * success (204, or 201 for a creation), with Upload-Offset, but the
 * upload stays taken; its outcome follows with tus_server_finish(s, id,
 * NULL, rc). For an embedder that will not keep the client waiting
 * longer. -ENOENT if the upload is unknown (x is answered all the
 * same). */
int tus_server_answer_waiting(struct tus_server *s, const char *upload_id, struct http_exchange *x);

#endif
