/*
 * The sync ledger (docs/SYNC.md, "The sync ledger"): the node's durable
 * record of what it has cut into segments, uploaded, and had acknowledged
 * by HQ, and the only way the network side (appliance/uplink/uplink.c) touches
 * the node database. The invariant: every state change here is one
 * committed SQLite transaction or one atomic rename, ordered so that a
 * crash at any point leaves a state sync_ledger_open can reconcile
 * (a spool file is renamed into place before its row commits; a row is
 * acknowledged before its file is unlinked), and an outbox row leaves the
 * outbox only through a receipt whose MAC, node, segment and range match.
 *
 * This header includes neither store.h, db.h nor sqlite3.h, so network
 * modules may include it (tests/tools/check_egress.sh). All functions do
 * blocking SQLite and file I/O: call them from uv_queue_work, one at a time
 * per ledger. They return 0 or a negative errno and fill *err.
 */
#ifndef OUTPOST_SYNC_LEDGER_H
#define OUTPOST_SYNC_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "node_credentials.h"
#include "op_error.h"

struct sync_ledger; /* opaque: its own SQLite connection to the node db, the policy, the keys */
struct policy;

enum sync_seg_state {
    SYNC_SEG_SPOOLED = 0,
    SYNC_SEG_UPLOADED = 1,
    SYNC_SEG_ACKED = 2,
    SYNC_SEG_REJECTED = 3,
    SYNC_SEG_VOIDED = 4 /* not in the table: voided (docs/EGRESS.md); a receipt for it only
                           ends its bookkeeping */
};

struct sync_segment {
    uint64_t no;
    uint64_t from_urgent, from_ordinary, to_urgent, to_ordinary;
    uint64_t bytes, records;
    int state;             /* enum sync_seg_state */
    char path[1024];       /* spool file */
    char upload_url[2048]; /* "" until the tus server created the upload */
    int64_t created_ms;
};

struct sync_error_count {
    char kind[32];
    uint64_t n;
};

struct sync_status {
    int enabled; /* credentials configured */
    char node_id[65], region[16];
    int64_t outbox_depth, oldest_unsent_ms; /* oldest_unsent_ms: Unix ms of the oldest queued
                                               change, 0 none */
    uint64_t spool_bytes, spool_segments, spool_cap;
    int spool_full; /* the cap stops segmenting: loud alarm */
    uint64_t acked_urgent, acked_ordinary, next_segment;
    uint64_t segments_acked, segments_rejected;
    int64_t last_sync_ms; /* last receipt applied (Unix ms), 0 never */
    double goodput_bps;   /* bytes/s confirmed by HQ, smoothed over recent uploads */
    double eta_s;         /* estimated time to drain: (spool bytes + estimated bytes of the
                             unsegmented outbox) / goodput; -1 unknown */
    uint64_t bytes_today; /* bytes HQ acknowledged today (UTC: the server's offset gained),
                             what the daily budget is charged */
    uint64_t bytes_sent_today, bytes_resent_today; /* put on the wire today, and of them sent
                                                      again after a cut or a refusal */
    uint64_t receipts_inline; /* receipts that came on the completing PATCH: GETs saved */
    uint64_t mailbox_skipped; /* mailbox GETs skipped: HQ's hint said nothing was new */
    char blocked[256];        /* "" or why sync is stopped (rejected segment, region mismatch) */
    char waiting[256];        /* "" or why it waits with nothing wrong (sync window, budget) */
    char last_error[256];
    size_t nerrors;
    struct sync_error_count errors[16]; /* errors by kind */
    uint64_t mailbox_after;
    /* the uploads HQ holds and has not settled (up to 4, lowest first):
     * segment number, HQ's offset last learned, the segment's bytes */
    size_t nuploads;
    struct {
        uint64_t no, at_hq, bytes;
    } uploads[4];
    /* the uplink's link counters since outpostd started (tus_client stats);
     * 0 when read from the database */
    uint64_t link_bytes_sent, link_bytes_resent, link_retries, link_chunk_bytes;
    uint64_t link_bytes_confirmed;
};

struct sync_ledger_options {
    const char *db_path;                 /* node database */
    const char *spool_dir;               /* created 0700 if missing */
    const struct node_credentials *cred; /* copied */
    uint64_t segment_bytes;   /* target compressed bytes per segment; 0 = SEGMENT_TARGET_BYTES */
    uint64_t spool_max_bytes; /* spool cap; 0 = 256 MiB */
    const char
        *policy_file; /* NULL: $OUTPOST_POLICY, else the region's profile (same rule as api.c) */
    /* Wall-clock ms since the epoch: segment and receipt times, retention
     * expiry at egress, and the UTC day the bytes sent are counted in (the
     * daily budget). NULL: CLOCK_REALTIME. The uplink passes its own. */
    int64_t (*now_ms)(void *ctx);
    void *clock_ctx;
    /* When a segment is cut (docs/OUTBOX.md, "When a segment is cut").
     * pace 0: every sync_ledger_make_segment cuts what the outbox holds, up
     * to segment_bytes. pace 1: with nothing waiting, a first segment of
     * what the link sends in first_segment_ms at its measured goodput (0:
     * full segments); while segments wait, one more is cut only once the
     * link has taken the newest (its upload URL is recorded), and then only
     * a full one (twice the newest, up to segment_bytes), one with urgent
     * rows, or one whose oldest row has waited hold_ms. */
    int pace;
    uint64_t first_segment_ms, hold_ms;
};

/* Opens its own connection, loads the policy and the pseudonymization key
 * (store_pseudonym_key), checks the credentials' region equals the node's
 * region (else -EINVAL "region"), and reconciles spool vs table
 * (segment_spool_scan: .tmp deleted; file without row deleted; non-acked
 * row without file: the row is dropped and the segmented cursor rewinds so
 * the range is segmented again under a new number). */
int sync_ledger_open(const struct sync_ledger_options *o, struct sync_ledger **out,
                     struct op_error *err);
void sync_ledger_close(struct sync_ledger *l);

/* SIGHUP: loads the policy again; if its hash is not the one the spool
 * was cut under, voids every spooled and uploading segment (their files
 * emptied) and queues every record again before it returns, as a
 * restriction does (docs/EGRESS.md, "Paced segments"). If the hash changed
 * and sync is blocked by a rejected segment, unblock and rewind the
 * segmented cursor to the acked one. */
int sync_ledger_reload_policy(struct sync_ledger *l, struct op_error *err);

/* If the outbox has rows past the segmented cursor, not blocked, and spool
 * below cap: reads batches (outbox_next_batch), loads each record's current
 * state via the store, egress_project (or egress_tombstone: ERASE/PURGE for
 * those ops, WITHDRAW when egress_project returns NULL, skip when an
 * upsert/delete row's record no longer exists), writes one segment up to
 * segment_bytes, records it in the segments table together with the new
 * segmented cursor (one transaction, after the atomic rename), *made = 1
 * and *out. Spool at cap: *made = 0, sets spool_full and says so in the
 * news (spool = 1; -1 when it is below the cap again) once per transition;
 * a new policy in force that voided the spool is news too. Bounded memory
 * regardless of backlog. */
int sync_ledger_make_segment(struct sync_ledger *l, int *made, struct sync_segment *out,
                             struct op_error *err);

/* The lowest-numbered segment in state SPOOLED or UPLOADED. */
int sync_ledger_next_upload(struct sync_ledger *l, int *found, struct sync_segment *out,
                            struct op_error *err);
/* The same, passing over segment except_no (another upload slot holds it;
 * 0: none). */
int sync_ledger_next_upload_except(struct sync_ledger *l, uint64_t except_no, int *found,
                                   struct sync_segment *out, struct op_error *err);
int sync_ledger_set_upload_url(struct sync_ledger *l, uint64_t no, const char *url,
                               struct op_error *err);
int sync_ledger_mark_uploaded(struct sync_ledger *l, uint64_t no, struct op_error *err);

/* Parses + verifies (sync_receipt_mac, to == recorded range, node == ours,
 * segment == no). applied: one transaction: outbox_ack(to), segment ACKED,
 * last_sync; then unlink the spool file (idempotent). rejected: segment
 * REJECTED with reason, blocked = reason, unlink file. *outcome =
 * SYNC_SEG_ACKED or SYNC_SEG_REJECTED. Bad receipt: -EBADMSG naming the
 * field, nothing changed. With two uploads in flight a receipt may come
 * for a segment while a lower one still waits for its own: the segment is
 * ACKED, and the outbox and the acked cursor advance only over the settled
 * prefix (up to the lowest segment still SPOOLED or UPLOADED), so nothing
 * leaves the outbox before every lower segment is settled. */
int sync_ledger_apply_receipt(struct sync_ledger *l, uint64_t no, const char *json, size_t len,
                              int *outcome, struct op_error *err);

int sync_ledger_mailbox_after(struct sync_ledger *l, uint64_t *after, struct op_error *err);

/* The lowest voided segment whose upload HQ may still hold part of
 * (spool_voided with an upload URL; docs/EGRESS.md, "In time"): *found,
 * its number and URL (url_cap bytes at most; a longer URL is -ENAMETOOLONG).
 * The uplink terminates it at HQ and then calls sync_ledger_forget_voided. */
int sync_ledger_next_voided(struct sync_ledger *l, int *found, uint64_t *no, char *url,
                            size_t url_cap, struct op_error *err);
int sync_ledger_forget_voided(struct sync_ledger *l, uint64_t no, struct op_error *err);

/* Voided segment `no` never reached HQ: HQ answered the termination of its
 * upload with "no such upload" and has no receipt for it (the upload URL
 * was recorded before the creation that would carry its first bytes, and
 * the creation never arrived). In one transaction the voided row goes,
 * and so do the egress_sent rows of the records that first went into
 * segment `no`, so no withdrawal names a record HQ never had (docs/EGRESS.md,
 * "In time"). If a segment was cut after `no` the rows stay (that segment
 * may carry the same records, and counts on them): *records is then 0,
 * else the rows forgotten; -1 on failure, with nothing changed. Applying
 * it twice is harmless. */
int sync_ledger_forget_unsent_voided(struct sync_ledger *l, uint64_t no, int64_t *records,
                                     struct op_error *err);

/* The GET /v1/mailbox answer: verify each message's MAC, store in table
 * mailbox with status (applied/refused/pending) and advance the cursor, one
 * transaction. A policy message is judged against the policy in force
 * (policy_change.h): one that loosens nothing is written atomically (temp,
 * fsync, rename, fsync dir) to `<directory of the db>/policy-override.yaml`
 * (mode 0640), recorded in the policy ledger when that puts it in force,
 * and then the ledger segments under it and *policy_changed = 1 so the
 * caller reloads; one that loosens anything is kept `pending` for a person
 * at the node (`outpost policy accept`), the policy stays, and the news
 * says so (pending_seq); one that is not a valid policy of our region is
 * `refused`. A valid one supersedes older pending ones. Bad MAC: -EBADMSG,
 * nothing stored. */
int sync_ledger_mailbox_store(struct sync_ledger *l, const char *json, size_t len,
                              int *policy_changed, struct op_error *err);

/* What the link did since the last report: the byte counts are added to
 * today's figures, so each byte is reported once. bytes_confirmed is
 * charged to the daily budget as well; the uplink charges through
 * sync_ledger_charge_upload instead and leaves it 0. */
struct sync_link_report {
    uint64_t bytes_sent, bytes_confirmed, bytes_resent;
    /* a goodput sample: sample_bytes confirmed over duration_ms (a whole
     * upload); 0 for none */
    uint64_t sample_bytes, duration_ms;
    uint64_t receipts_inline, mailbox_skipped; /* round trips saved, added to the totals */
    const char *error_kind; /* NULL on success; else "network","tls","auth","http","checksum",
                               "receipt","mailbox","spool","segment" ... */
    const char *error_msg;
};
int sync_ledger_note_link(struct sync_ledger *l, const struct sync_link_report *r,
                          struct op_error *err);

/* HQ stated `offset` for segment `no`'s upload (a PATCH's answer, or the
 * HEAD after a restart): what it holds beyond what is charged already is
 * charged to today's bytes (the daily budget), in the transaction that
 * stores the new value, so the day's count is what HQ acknowledged across
 * a kill -9. A new upload URL starts the segment again at 0. Sets
 * *charged (may be NULL) to the bytes charged now. -ENOENT: no such
 * segment, nothing written. */
int sync_ledger_charge_upload(struct sync_ledger *l, uint64_t no, uint64_t offset,
                              uint64_t *charged, struct op_error *err);

/* Records why sync waits although nothing is wrong ("" when it does not):
 * shown by `outpost status`. Writes only when the text changes. */
int sync_ledger_set_waiting(struct sync_ledger *l, const char *why, struct op_error *err);

int sync_ledger_status(struct sync_ledger *l, struct sync_status *out, struct op_error *err);

/* What the ledger changed that its operator should hear of. The ledger
 * does not log: sync_ledger_make_segment and sync_ledger_mailbox_store
 * note it here once the change is committed, and the caller takes it with
 * sync_ledger_take_news and logs it. A later change of the same kind
 * replaces one not yet taken. */
struct sync_ledger_news {
    int spool; /* 1: the spool reached its cap and segmenting stopped; -1: it is below
                  the cap again; 0: neither */
    uint64_t spool_bytes, spool_segments, spool_cap;
    char policy_now[65], policy_was[65]; /* policy_now[0]: the policy in force changed from
                                            policy_was (SHA-256 hex); the spool was voided
                                            and every record is cut again under it */
    uint64_t pending_seq; /* nonzero: this policy message from HQ loosens the policy in force
                             and waits for acceptance at the node */
    char pending_hash[65];
    size_t pending_loosens; /* how many of its differences loosen */
};

/* Copies the news since the last call into *out and clears it. */
void sync_ledger_take_news(struct sync_ledger *l, struct sync_ledger_news *out);

/* The same, read-only, for `outpost status` beside a running daemon (no
 * credentials needed: reads what the daemon recorded). */
int sync_ledger_status_db(const char *db_path, struct sync_status *out, struct op_error *err);

/* ---- anti-entropy (ledger_verify.c; docs/SYNC_PROTOCOL.md, "Anti-entropy") ---- */

struct range_set;
struct range_walk;

/* One check, asked for or done (the sync_verify table). */
struct sync_verify_row {
    int64_t id, requested_ms, finished_ms; /* finished_ms 0: not run yet */
    char origin[16];                       /* "cli", "schedule" */
    char result[16]; /* "" (not run), "agree", "repaired", "drift", "deferred", "failed" */
    uint64_t compared, hq_records, ranges, requests, bytes, drift, resent, reported;
    char detail[512];
};

/* The check to run now: the oldest asked for, or, when interval_ms > 0
 * and the last check ended more than interval_ms + jitter_ms ago, a new
 * one of origin "schedule". A node that never ended a check counts from
 * started_ms (when the caller started), so the first scheduled check
 * comes an interval after start, not in the first minutes of a node's
 * life. *id is 0 when none is due. */
int sync_ledger_verify_due(struct sync_ledger *l, int64_t interval_ms, int64_t jitter_ms,
                           int64_t started_ms, int64_t *id, struct op_error *err);

/* The node's side of the comparison: every record HQ should hold data of
 * (what the segmenter would send for it now: judged, projected, skipped
 * when past retention, withheld, or deleted before HQ had it), hashed
 * with projection_hash, in a sealed set (*out; free with range_set_free).
 * Nothing is compared while changes are in flight: when the outbox holds
 * rows or a segment awaits its receipt, *out is NULL and *in_flight their
 * number. */
int sync_ledger_verify_set(struct sync_ledger *l, struct range_set **out, uint64_t *in_flight,
                           struct op_error *err);

/* Ends check `id` in one transaction. With a walk (w, finished), every
 * record the node holds that differs (missing at HQ, different there, or
 * held by HQ though the node would not send it) is queued again in the
 * outbox, so the segmenter sends what egress gives now (a projection, or
 * a withdraw tombstone); HQ's newer versions and records the node does not
 * have are reported, not sent (detail names up to three). r->result is
 * then set ("agree", "repaired", "drift") with the counts. Without a walk,
 * r->result ("deferred" or "failed") and r->detail are written as given.
 * Keeps the last 100 checks. */
int sync_ledger_verify_finish(struct sync_ledger *l, int64_t id, const struct range_walk *w,
                              struct sync_verify_row *r, struct op_error *err);

/* For the CLI, on the database file (no daemon needed to read):
 * verify_request inserts a check of origin "cli" (*id); verify_get reads
 * check `id`, or the last finished one when id is 0 (-ENOENT: none). */
int sync_ledger_verify_request_db(const char *db_path, int64_t *id, struct op_error *err);
int sync_ledger_verify_get_db(const char *db_path, int64_t id, struct sync_verify_row *out,
                              struct op_error *err);

#endif
