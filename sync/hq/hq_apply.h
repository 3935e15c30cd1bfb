/*
 * Verifying and applying one completed segment upload at HQ, exactly as
 * docs/SYNC_PROTOCOL.md ("Segments: upload and apply") orders it: the
 * metadata node is the token's node; the file opens as a segment under
 * the node's hq_key; its header names the same node and segment number;
 * then (a receipt already there: replay) the policy hash is the node's
 * region profile's or that of a policy HQ posted to that node, and every
 * record passes egress_verify under that policy.
 *
 * Invariants: an upload that fails one of the first three checks leaves
 * nothing but a count and a reason on the node (no receipt); otherwise
 * exactly one receipt is written, in the same transaction as every record
 * change of the segment, and a rejected receipt comes with no record
 * change at all. The segment is streamed record by record: memory does
 * not grow with its size. The region profiles are read from disk
 * (policy_find_file) on first use per region, policies posted to nodes
 * from the store on first use, and both cached until cleared.
 */
#ifndef OUTPOST_HQ_APPLY_H
#define OUTPOST_HQ_APPLY_H

#include <jansson.h>
#include <stdint.h>

#include "hq_store.h"
#include "op_error.h"
#include "policy.h"
#include "sync_mac.h"

/* The region profiles HQ verifies against, by region code. */
struct hq_policies;

/* Returns 0 and *out, or -ENOMEM. */
int hq_policies_new(struct hq_policies **out);

/* NULL is allowed. */
void hq_policies_free(struct hq_policies *pc);

/* Forgets every cached profile (SIGHUP): the next use reads the file. */
void hq_policies_clear(struct hq_policies *pc);

/* The profile of region (found by policy_find_file, so
 * $OUTPOST_REGIONS_DIR applies), loaded on first use. Borrowed until the
 * next hq_policies_clear/free. Returns 0; -ENOENT (no profile), -EINVAL
 * (invalid profile; err says file:line), -E2BIG (too many regions). */
int hq_policies_get(struct hq_policies *pc, const char *region, const struct policy **out,
                    struct op_error *err);

/* The policy a segment of `node` (in `region`) says it was cut under, by
 * the policy hash in its header: the region's profile when the hash is
 * its hash, else a policy HQ posted to that very node's mailbox (found
 * with st->ops->mailbox_policy_get, loaded for the region, cached). *out
 * is NULL (and 0 returned) when HQ knows no policy of that hash for that
 * node. Borrowed until the next call or hq_policies_clear/free. Errors:
 * those of hq_policies_get when the profile is needed (the hash is no
 * posted policy's); the store's; -EINVAL when the posted policy no longer
 * loads. */
int hq_policies_for_segment(struct hq_policies *pc, struct hq_store *st, const char *node,
                            const char *region, const char *hash, const struct policy **out,
                            struct op_error *err);

enum hq_apply_outcome {
    HQ_APPLY_APPLIED = 0, /* a new applied receipt */
    HQ_APPLY_REJECTED,    /* a new rejected receipt; nothing applied */
    HQ_APPLY_REPLAY,      /* a receipt existed; nothing changed */
    HQ_APPLY_REFUSED,     /* not a segment from this node: no receipt, counted on the node */
};

struct hq_upload {
    const char *principal;    /* the node the upload's token belongs to */
    const char *meta_node;    /* Upload-Metadata "node" (NULL if absent) */
    const char *meta_segment; /* Upload-Metadata "segment", decimal (NULL if absent) */
    const char *path;         /* the complete upload's data file */
};

struct hq_apply_result {
    enum hq_apply_outcome outcome;
    struct hq_receipt receipt;  /* APPLIED, REJECTED, REPLAY: the receipt as stored */
    char reason[HQ_REASON_MAX]; /* REFUSED and REJECTED: why */
};

/* Verifies and applies the upload u. now_ms is the receipt's received
 * time. Returns 0 with *out filled when the upload has been dealt with
 * for good (any outcome: release it; a replay also when another
 * receiver applying the same segment committed its receipt first, found
 * as -EEXIST from receipt_put: that receipt is the answer); a negative
 * errno when it could not
 * be dealt with now (database busy or full, I/O, the node's region
 * profile missing or invalid at HQ): nothing was written, err says why,
 * and the upload should be kept and tried again. */
int hq_apply_upload(struct hq_store *st, struct hq_policies *pc, const struct hq_upload *u,
                    int64_t now_ms, struct hq_apply_result *out, struct op_error *err);

/* Adds to receipt document `doc` (of r, as hq_serve answers it) what a
 * node needs for field-level deltas (docs/HQ.md, "Patches"): "patch":
 * true, this HQ applies patches; and for an applied segment with patches
 * HQ could not apply (their base was not what it holds),
 * "needs_whole": [[ENTITY, ID], ...], the records to send whole; and
 * "extras_mac", the MAC of both under the node's key
 * (sync_receipt_extras_mac), so a node refuses a list or a patch flag
 * that was changed on the way. Returns 0, or the store's error /
 * -ENOMEM / -EIO (then answer without the receipt). */
int hq_apply_receipt_extras(struct hq_store *st, const struct hq_receipt *r,
                            const unsigned char key[SYNC_MAC_KEY_BYTES], json_t *doc,
                            struct op_error *err);

#endif
