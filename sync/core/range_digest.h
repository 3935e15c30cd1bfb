/*
 * Range digests for anti-entropy (docs/SYNC_PROTOCOL.md, "Anti-entropy"):
 * the node and HQ each put what HQ holds (or should hold) of the node's
 * records into a range_set, one entry per record that carries data
 * (entity, id, version, projection hash), and compare the sets by ranges
 * without sending them: the node sends the digests of a level of ranges,
 * HQ answers which differ (and, for small ranges, its entries), the node
 * descends into those only. Agreement costs one request of one digest.
 *
 * A record's bucket is the first 64 bits of SHA-256(entity '\n' id), so
 * records spread evenly whatever their ids (UUIDv7 ids are time-ordered:
 * an id prefix would put a day's records in one range). A range is a
 * prefix of the bucket in hexadecimal nibbles: "" is everything, "3" one
 * sixteenth, "3a" one 256th, and so on to RANGE_DEPTH_MAX nibbles. Its
 * digest is the first RANGE_DIGEST_BYTES of SHA-256 over its entries in
 * (bucket, entity, id) order, each as entity '\n' id '\n' and the first
 * RANGE_HASH_BYTES of its projection hash; its count goes beside it.
 *
 * Pure: no I/O, no store. The node side (the walk) produces request
 * bodies and consumes answers; HQ answers with range_answer. Both bound
 * every input; errors fill op_error naming the member.
 */
#ifndef OUTPOST_RANGE_DIGEST_H
#define OUTPOST_RANGE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"
#include "projection_hash.h"

#define RANGE_FANOUT 16
#define RANGE_DEPTH_MAX 8            /* nibbles: 16^8 buckets */
#define RANGE_DIGEST_BYTES 16        /* a range digest on the wire: 32 hex digits */
#define RANGE_HASH_BYTES 16          /* a record's projection hash on the wire */
#define RANGE_LEAF_MAX 16            /* a range this small on both sides is answered by entries */
#define RANGE_REQUEST_MAX 1024       /* ranges in one request */
#define RANGE_ANSWER_ENTRIES 8192    /* entries in one answer (past it: counts only) */
#define RANGE_WALK_REQUESTS_MAX 4096 /* a walk that needs more is given up (-E2BIG) */
/* The request format a node sends: its set holds the tombstones HQ
 * acknowledged (hashed as gone), and HQ answers from a set with its
 * tombstones of the node. RANGE_FORMAT_V1 (an older node) leaves
 * tombstones out on both sides; HQ answers either. */
#define RANGE_FORMAT "outpost-digest-2"
#define RANGE_FORMAT_V1 "outpost-digest-1"

struct range_set;

/* An empty set. 0 or -ENOMEM. */
int range_set_new(struct range_set **out);
void range_set_free(struct range_set *s);

/* Adds one record (entity and id copied; hash is the full projection
 * hash). Adding the same (entity, id) twice is the caller's bug: the
 * later entry is dropped at range_set_seal. 0, -EINVAL (empty entity or
 * id, a newline in either), -ENOMEM. */
int range_set_add(struct range_set *s, const char *entity, const char *id, int64_t version,
                  const unsigned char hash[PROJECTION_HASH_BYTES]);

/* Sorts the set; call once after the last add, before any lookup. */
void range_set_seal(struct range_set *s);

size_t range_set_count(const struct range_set *s);

/* The bucket of a record (first 64 bits of SHA-256(entity '\n' id)). */
uint64_t range_bucket(const char *entity, const char *id);

/* 1 when p is a range name: 0..RANGE_DEPTH_MAX lower-case hex digits. */
int range_prefix_valid(const char *p);

/* The digest and count of range p of a sealed set. 0, -EINVAL for a bad
 * prefix, -EIO when the digest fails. */
int range_digest(const struct range_set *s, const char *prefix,
                 unsigned char out[RANGE_DIGEST_BYTES], uint64_t *count);

/* One entry, borrowed for the callback. */
struct range_entry {
    const char *entity, *id;
    int64_t version;
    unsigned char hash[RANGE_HASH_BYTES];
};
typedef int (*range_entry_fn)(void *ctx, const struct range_entry *e);

/* Calls cb for each entry of range p in order; a non-zero return stops
 * and is returned. -EINVAL for a bad prefix. */
int range_each(const struct range_set *s, const char *prefix, range_entry_fn cb, void *ctx);

/* HQ: answers one request body (len bytes, JSON)
 *   {"format":"outpost-digest-1","ranges":[[PREFIX,DIGEST_HEX,COUNT],...]}
 * against its sealed set `hq`: *answer (malloc'd, NUL-terminated JSON)
 *   {"differ":[[PREFIX,COUNT],...,[PREFIX,COUNT,[[ENTITY,ID,VERSION,HASH_HEX],...]]]}
 * lists the ranges whose digest or count differs, with HQ's entries when
 * HQ's count and the node's are at most RANGE_LEAF_MAX (or the range is at
 * RANGE_DEPTH_MAX) and the answer holds fewer than RANGE_ANSWER_ENTRIES.
 * The format is RANGE_FORMAT or RANGE_FORMAT_V1 (range_request_format
 * says which; the caller builds `hq` to match).
 * Returns 0; -EINVAL with err->field naming the member ("format",
 * "ranges", "ranges[3]") for a body that is not such a request (not
 * JSON, more than RANGE_REQUEST_MAX ranges, a bad prefix, digest or
 * count, a prefix given twice); -ENOMEM. */
int range_answer(const struct range_set *hq, const char *body, size_t len, char **answer,
                 struct op_error *err);

/* The format of a request body: 2 for RANGE_FORMAT, 1 for
 * RANGE_FORMAT_V1, 0 for anything else (range_answer names the error). */
int range_request_format(const char *body, size_t len);

/* What a walk found about one record. */
enum range_drift_kind {
    RANGE_DRIFT_MISSING = 0, /* the node has data HQ lacks */
    RANGE_DRIFT_DIFFERS,     /* both hold it, HQ's projection differs and is not newer */
    RANGE_DRIFT_HQ_NEWER,    /* HQ holds a higher version (a node restored from an old backup) */
    RANGE_DRIFT_HQ_ONLY,     /* HQ holds data the node would not send (or does not know) */
};
const char *range_drift_name(enum range_drift_kind k);

struct range_drift {
    enum range_drift_kind kind;
    const char *entity, *id;
    int64_t node_version, hq_version; /* -1 where a side has none */
    /* each side's projection hash on the wire (first RANGE_HASH_BYTES);
     * has_* 0 where a side has none */
    int has_node_hash, has_hq_hash;
    unsigned char node_hash[RANGE_HASH_BYTES], hq_hash[RANGE_HASH_BYTES];
};
typedef int (*range_drift_fn)(void *ctx, const struct range_drift *d);

/* The node's side of the exchange over its sealed set (borrowed; keep it
 * until the walk is freed). */
struct range_walk;

struct range_walk_stats {
    uint64_t requests;   /* request bodies produced */
    uint64_t ranges;     /* ranges sent */
    uint64_t bytes_out;  /* request body bytes */
    uint64_t bytes_in;   /* answer body bytes */
    uint64_t compared;   /* the node's records */
    uint64_t hq_records; /* HQ's count of the whole set (its answer to "") */
    uint64_t drift;      /* drift entries found */
};

int range_walk_new(const struct range_set *mine, struct range_walk **out);
void range_walk_free(struct range_walk *w);

/* The next request body (malloc'd) into *body; returns 1 and *body NULL
 * when the walk is over, 0 with a body, -E2BIG after
 * RANGE_WALK_REQUESTS_MAX requests (an HQ that never lets the walk end),
 * or -ENOMEM. */
int range_walk_request(struct range_walk *w, char **body, size_t *len);

/* Takes HQ's answer to the last request. Returns 0; -EBADMSG with
 * err->field naming the member for an answer that is not one to that
 * request (a range it did not ask, a bad entry); the walk is then over
 * and its results partial. */
int range_walk_answer(struct range_walk *w, const char *body, size_t len, struct op_error *err);

/* Calls cb for each drift found, in the order found. */
int range_walk_each_drift(const struct range_walk *w, range_drift_fn cb, void *ctx);
void range_walk_stats(const struct range_walk *w, struct range_walk_stats *out);

#endif
