/*
 * The sync ledger's inside (docs/SYNC.md, "The sync ledger"), shared by
 * the modules it is made of and by their unit tests, never by the network
 * side: this header includes sqlite3.h and store.h, and uplink.c keeps to
 * sync_ledger.h (tests/tools/check_egress.sh). One concern per module:
 *
 *   sync_ledger.c       open, close, reload, reconciling spool and table
 *   ledger_state.c      the sync_state row and the segment table's rows
 *   ledger_segmenter.c  cutting the outbox into segments under the policy in force
 *   ledger_deltas.c     what HQ holds of each record: nothing new, a patch, or whole
 *   ledger_uploads.c    which segment goes next, its upload URL, voided uploads
 *   ledger_receipts.c   HQ's receipts: verify, acknowledge or block
 *   ledger_mailbox.c    HQ's mailbox and the policies it brings
 *   ledger_status.c     link statistics and the figures of `outpost status`
 *
 * Every function here does blocking SQLite or file I/O on the ledger's own
 * connection, through the named queries of appliance/uplink/sql/ (one
 * file per module); the errors are the ones sync_ledger.h describes.
 */
#ifndef OUTPOST_SYNC_LEDGER_INT_H
#define OUTPOST_SYNC_LEDGER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "egress.h"
#include "outbox.h"
#include "policy.h"
#include "sql.h"
#include "store.h"
#include "sync_ledger.h"
#include "uplink_queries.h"

#define LEDGER_SPOOL_MAX_DEFAULT (256ull * 1024 * 1024)
/* outbox rows read per batch while building a segment: bounds memory */
#define LEDGER_BATCH 128
/* compressed bytes per record assumed for the ETA before any segment */
#define LEDGER_BPR_DEFAULT 100.0
/* the largest receipt or mailbox answer parsed */
#define LEDGER_JSON_MAX (4u * 1024 * 1024)

struct sync_ledger {
    struct store *s;
    struct sql_cache q; /* the uplink's queries on s; closed before s */
    struct policy *p;
    unsigned char pkey[EGRESS_KEY_BYTES];
    struct node_credentials cred;
    char db_path[1024];
    char spool_dir[1024];
    char policy_file[1024]; /* "" unless given explicitly */
    uint64_t segment_bytes, spool_max;
    int pace; /* sync_ledger_options.pace, first_segment_ms, hold_ms */
    uint64_t first_ms, hold_ms;
    uint32_t schema_version;
    int64_t (*clock)(void *ctx); /* wall-clock ms since the epoch */
    void *clock_ctx;
    struct sync_ledger_news news; /* for the caller to log (sync_ledger_take_news) */
};

/* ---- ledger_state.c ------------------------------------------------------- */

/* The sync_state row. */
struct ledger_state {
    int64_t seg_u, seg_o, ack_u, ack_o;
    uint64_t next_no;
    char blocked[256], blocked_kind[16], blocked_policy[POLICY_HASH_HEX];
    int spool_full;
    double bpr, goodput;
    int64_t last_sync_ms, bytes_day, bytes_today;
    char last_error[256];
    uint64_t mailbox_after, spool_cap;
    int64_t spool_epoch;
    char policy_hash[POLICY_HASH_HEX];
};

/* CLOCK_REALTIME in ms (ctx unused); the ledger's clock unless one is given. */
int64_t ledger_real_clock(void *ctx);
/* The ledger's wall clock, ms since the epoch. */
int64_t ledger_now(const struct sync_ledger *l);

/* Column col as text into dst (cap bytes, truncated); NULL reads as "". */
void ledger_copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col);
/* A non-negative integer member of o: 0, else -1. */
int ledger_get_u64(json_t *o, const char *key, uint64_t *out);

/* The helpers below run one named query of c (the ledger's l->q, or a
 * cache bound to another store for `outpost status`). */

/* Reads the sync_state row into *o; a missing row is -EPROTO. */
int ledger_load_state(struct sql_cache *c, struct ledger_state *o, struct op_error *err);
/* Records why sync is stopped: kind "rejected" or "region", with the hash of
 * the policy a rejection happened under ("" for none). */
int ledger_set_blocked(struct sync_ledger *l, const char *kind, const char *why,
                       const char *policy_hash, struct op_error *err);
/* Bytes and count of the segments not yet acknowledged or rejected. */
int ledger_spool_usage(struct sql_cache *c, uint64_t *bytes, uint64_t *segments,
                       struct op_error *err);
/* Outbox rows past the segmented cursor (su, so). */
int ledger_unsegmented(struct sql_cache *c, int64_t su, int64_t so, int64_t *n,
                       struct op_error *err);

/* A row of the segment table, its columns in the order the queries that
 * read segments select them (no, from_urgent, from_ordinary, to_urgent,
 * to_ordinary, bytes, records, state, path, upload_url, created_ms). */
void ledger_row_to_segment(sqlite3_stmt *st, struct sync_segment *out);
/* Segment `no`: 1 and *out, or 0 when there is no such row. */
int ledger_get_segment(struct sql_cache *c, uint64_t no, struct sync_segment *out,
                       struct op_error *err);
/* Voids the spool and queues every record again when l->p is not the
 * policy the spool was cut under (store_policy_changed); the news says so.
 * Called on a reload and before every cut. */
int ledger_policy_in_force(struct sync_ledger *l, struct op_error *err);

/* Ends the transaction store_begin opened on l->s by how the work in it
 * went: rc < 0 rolls it back and comes back as is; otherwise it commits,
 * returning the commit's result (0 or a negative errno). */
int ledger_end_tx(struct sync_ledger *l, int rc, struct op_error *err);
/* Removes a spool file and syncs the directory; a missing file is fine. */
void ledger_unlink_spool(struct sync_ledger *l, const char *path);

/* ---- ledger_segmenter.c ---------------------------------------------------- */

/* The cursor after rows[0..i] (processed in order, each lane's seqs
 * increasing as outbox_next_batch returns them): 1 and *out if stopping
 * there leaves no earlier row of a lane unprocessed, else 0 and *out
 * untouched. Pure. */
int ledger_cursor_after(const struct outbox_row *rows, size_t n, size_t i,
                        const struct outbox_cursor *from, struct outbox_cursor *out);

/* The smallest first segment, and the first segment's size while the
 * link's goodput is not known (about 1.5 s at 256 kbit/s). */
#define LEDGER_FIRST_MIN (8u * 1024)
#define LEDGER_FIRST_DEFAULT (48u * 1024)

/* What the segmenter knows when it decides whether to cut now (pace on). */
struct ledger_pace_in {
    uint64_t segment_bytes;     /* a full segment */
    uint64_t first_ms, hold_ms; /* the options */
    double goodput;             /* bytes/s HQ confirmed, smoothed; 0 unknown */
    double bpr;                 /* compressed bytes per record of recent segments; 0 unknown */
    uint64_t waiting;           /* segments cut and neither acknowledged nor rejected */
    uint64_t untaken;           /* of them, not taken by the link yet (no upload URL) */
    uint64_t newest_bytes;      /* bytes of the newest waiting segment */
    int64_t urgent, ordinary;   /* unsegmented outbox rows per lane */
    int64_t oldest_age_ms;      /* how long the oldest unsegmented ordinary row waited */
    int64_t newest_age_ms;      /* and the newest: no row came since */
};

/* No row queued for this long: the rows there are the rest of a backlog,
 * not the start of a trickle, and are cut ahead without waiting. */
#define LEDGER_QUIET_MS 1000

/* 1 and *target (compressed bytes): cut now, up to target; 0 and *target:
 * hold, nothing is cut. Nothing waiting: the first segment's size, cut
 * now. Segments waiting: twice the newest (in [first, segment_bytes]),
 * cut when there are urgent rows; else held while a cut segment waits
 * for the link; else cut when the rows are estimated to fill it, the
 * oldest waited hold_ms, or none came for LEDGER_QUIET_MS. Pure. */
int ledger_pace(const struct ledger_pace_in *in, uint64_t *target);

/* ---- ledger_deltas.c ------------------------------------------------------- */

struct segment_writer;

/* One cut's view of what HQ holds (docs/SYNC.md, "Nothing new, nothing
 * sent"). */
struct ledger_cut;

/* Starts a cut: forgets in-flight rows of segments that are gone, reads
 * whether HQ applies patches. Outside any transaction. */
int ledger_cut_new(struct sync_ledger *l, struct ledger_cut **out, struct op_error *err);
/* NULL is allowed. */
void ledger_cut_free(struct ledger_cut *c);
/* Puts er (a projection or a tombstone, borrowed) into w: nothing when its
 * projection hash equals what HQ will hold of the record, a patch when
 * that is live and known, HQ applies patches and the patch is smaller,
 * else er whole. *sent: 1 when a line was written. */
int ledger_cut_add(struct sync_ledger *l, struct ledger_cut *c, struct segment_writer *w,
                   const struct egress_record *er, int *sent, struct op_error *err);
/* In segment `no`'s transaction: what it carries, as in flight. */
int ledger_cut_record(struct sync_ledger *l, const struct ledger_cut *c, uint64_t no,
                      struct op_error *err);
/* In a receipt's transaction: segment `no` was applied (what it carried is
 * what HQ holds, unless HQ holds a newer version) or not; its in-flight
 * rows go either way. */
int ledger_deltas_settled(struct sync_ledger *l, uint64_t no, int applied, struct op_error *err);
/* Forgets what the node believed HQ holds of (entity, id), held and in
 * flight, so the record's next change goes whole: for a record found to
 * differ at HQ (anti-entropy), whose belief was wrong. 0 or -errno. */
int ledger_deltas_forget(struct sync_ledger *l, const char *entity, const char *id,
                         struct op_error *err);
/* In a receipt's transaction: HQ's "needs_whole" list ([[ENTITY, ID]...])
 * of patches whose base it lacked. For each record this node sends, what
 * HQ holds is forgotten and the record queued again (whole next time);
 * *requeued counts the rows queued. Other items are ignored. */
int ledger_deltas_needs_whole(struct sync_ledger *l, const json_t *list, size_t *requeued,
                              struct op_error *err);
/* Whether HQ applies patches, from its latest receipt. */
int ledger_deltas_set_patches(struct sync_ledger *l, int on, struct op_error *err);
/* In a transaction: a cut that sent nothing while no segment waits; the
 * outbox rows up to `to` are consumed and both cursors move past them. */
int ledger_deltas_consume(struct sync_ledger *l, const struct outbox_cursor *to,
                          struct op_error *err);

#endif
