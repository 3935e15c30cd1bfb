/*
 * The HQ store: what outpost-hq keeps about nodes, the records they sent,
 * receipts, set-aside records and mailbox messages. Protocol code
 * (hq_apply, hq_serve, the CLI) sees only this interface: a table of
 * function pointers behind an opaque handle. hq_store_sqlite.c is the
 * SQLite backend, hq_store_pg.c the PostgreSQL one; hq_store.c picks one
 * by the store's spec (docs/HQ.md, "Choosing a backend").
 *
 * Invariants every backend keeps: a record is keyed (node, entity, id) and
 * its stored version never decreases; an erase/purge/withdraw keeps only a
 * tombstone (id, version), never data, and once the transaction that
 * applied it has committed (and `forget` has succeeded, if a reader held
 * the log then) no byte of the dropped data is left in the store's files;
 * a receipt, once written for (node, segment), is never changed; every
 * mailbox message is kept, and a policy message can be found by node and
 * the SHA-256 of its text; everything between begin and commit is one
 * transaction (all or nothing); a node's token is kept only as its
 * SHA-256, and so is an analyst's; an analyst's token never finds a node
 * nor a node's an analyst.
 */
#ifndef OUTPOST_HQ_STORE_H
#define OUTPOST_HQ_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"

#define HQ_NODE_MAX 65    /* node id with NUL */
#define HQ_REGION_MAX 16  /* region code with NUL */
#define HQ_REASON_MAX 512 /* a reason text with NUL */
#define HQ_MAILBOX_BODY_MAX (1024u * 1024u)
#define HQ_OP_MAX 16 /* an egress op name with NUL */

struct hq_node {
    char name[HQ_NODE_MAX];
    char region[HQ_REGION_MAX];
    unsigned char hq_key[32];
    int revoked;
    int64_t created_ms;
    int64_t last_contact_ms;          /* 0: never */
    uint64_t segments_applied;        /* applied receipts */
    uint64_t segments_rejected;       /* rejected receipts */
    uint64_t segments_refused;        /* uploads refused without a receipt */
    uint64_t set_aside;               /* set-aside records over all segments */
    int has_last_segment;             /* 0: no applied segment yet */
    uint64_t last_segment;            /* the highest applied segment number */
    int64_t last_segment_created_ms;  /* its header's created time */
    char last_refusal[HQ_REASON_MAX]; /* "" if none */
    uint64_t mailbox_last;            /* the highest mailbox seq posted to it (0: none) */
};

/* The last anti-entropy check of a node (docs/SYNC_PROTOCOL.md,
 * "Anti-entropy"): the node's report, time-stamped by HQ. */
struct hq_verify {
    char node[HQ_NODE_MAX];
    int64_t at_ms;
    char result[16]; /* "agree", "repaired", "drift", "failed" */
    uint64_t compared, hq_records, ranges, requests, bytes, drift, resent, reported;
};

/* An HQ analyst: reads combined aggregates over HTTP, never uploads. */
struct hq_analyst {
    char name[HQ_NODE_MAX];
    int revoked;
    int64_t created_ms, revoked_ms; /* revoked_ms 0: not revoked */
    int64_t last_used_ms;           /* 0: never */
};

enum hq_receipt_status { HQ_RECEIPT_APPLIED = 0, HQ_RECEIPT_REJECTED };

struct hq_receipt {
    char node[HQ_NODE_MAX];
    uint64_t segment;
    enum hq_receipt_status status;
    uint64_t to_urgent, to_ordinary;
    uint64_t records;           /* lines in the segment */
    uint64_t applied;           /* records that changed the store */
    uint64_t set_aside;         /* records set aside */
    char reason[HQ_REASON_MAX]; /* "" when applied */
    int64_t received_ms;
    int64_t segment_created_ms; /* the header's created time */
};

/* What applying one record did. */
enum hq_record_result {
    HQ_RECORD_CHANGED = 0, /* stored (or its data removed, for a tombstone op) */
    HQ_RECORD_STALE,       /* version not above the stored one: ignored */
};

/* One stored record, for listings. json is the record object ("" for a
 * tombstone); all pointers are borrowed for the callback. */
struct hq_record_row {
    const char *node, *entity, *id, *op, *json;
    int64_t version;
};

struct hq_set_aside_row {
    const char *node, *entity, *id, *reason;
    uint64_t segment, line;
};

struct hq_mailbox_msg {
    uint64_t seq;
    const char *kind, *body; /* body: body_len bytes, NUL-terminated */
    size_t body_len;
    int64_t created_ms;
};

struct hq_totals {
    uint64_t nodes, nodes_revoked, records, tombstones, receipts_applied, receipts_rejected,
        refused, set_aside, mailbox;
};

/* Callbacks for listings: a non-zero return stops the listing and is
 * returned. */
typedef int (*hq_node_fn)(void *ctx, const struct hq_node *n);
typedef int (*hq_record_fn)(void *ctx, const struct hq_record_row *r);
typedef int (*hq_receipt_fn)(void *ctx, const struct hq_receipt *r);
typedef int (*hq_set_aside_fn)(void *ctx, const struct hq_set_aside_row *r);
typedef int (*hq_mailbox_fn)(void *ctx, const struct hq_mailbox_msg *m);
typedef int (*hq_analyst_fn)(void *ctx, const struct hq_analyst *a);
typedef int (*hq_count_fn)(void *ctx, const char *entity, uint64_t count);

/* The backend's operations. Every function returns 0 (or a count where
 * said) or a negative errno, and fills err (may be NULL) naming what
 * failed. Unless inside begin/commit, each writing call is its own
 * transaction. */
struct hq_store_ops {
    void (*close)(void *impl);

    /* Nodes. node_add: -EEXIST when the name is taken. token_sha256: 32
     * bytes. node_get / node_by_token: -ENOENT when unknown (by_token also
     * finds revoked nodes; the caller checks n->revoked). */
    int (*node_add)(void *impl, const char *name, const char *region,
                    const unsigned char token_sha256[32], const unsigned char hq_key[32],
                    int64_t now_ms, struct op_error *err);
    int (*node_get)(void *impl, const char *name, struct hq_node *out, struct op_error *err);
    int (*node_by_token)(void *impl, const unsigned char token_sha256[32], struct hq_node *out,
                         struct op_error *err);
    /* -ENOENT when unknown; revoking a revoked node is not an error. */
    int (*node_revoke)(void *impl, const char *name, int64_t now_ms, struct op_error *err);
    /* Records a request from the node (last contact). hq_serve calls it
     * at most once a minute per node (HQ_SERVE_TOUCH_MS). */
    int (*node_touch)(void *impl, const char *name, int64_t now_ms, struct op_error *err);
    /* Counts an upload refused without a receipt and keeps the reason. */
    int (*node_refused)(void *impl, const char *name, const char *reason, int64_t now_ms,
                        struct op_error *err);
    int (*node_list)(void *impl, hq_node_fn cb, void *ctx, struct op_error *err);

    /* One segment's apply: begin, then record_apply / set_aside_add /
     * receipt_put, then commit (or rollback, which is always safe to
     * call). Only one transaction at a time per handle. A commit that
     * applied an erase/purge/withdraw also removes the dropped data from
     * the store's files (log included) before it returns, as far as
     * readers allow; commit returns 0 once the transaction is durable, and
     * what readers held back waits for `forget`. */
    int (*begin)(void *impl, struct op_error *err);
    int (*commit)(void *impl, struct op_error *err);
    void (*rollback)(void *impl);
    /* Finishes removing dropped data that a reader kept in the store's
     * files at the last commit (call it from a timer). 0 when nothing is
     * pending or it is done now; -EBUSY while a reader still holds it. */
    int (*forget)(void *impl, struct op_error *err);
    /* The receipt for (node, segment): 0 and *out, or -ENOENT. */
    int (*receipt_get)(void *impl, const char *node, uint64_t segment, struct hq_receipt *out,
                       struct op_error *err);
    /* -EEXIST when one exists (receipts are never replaced). */
    int (*receipt_put)(void *impl, const struct hq_receipt *r, struct op_error *err);
    /* Applies one record: op is an egress op name ("upsert", "delete",
     * "erase", "purge", "withdraw"); json the record object (ignored and
     * not kept for the tombstone ops). upsert/delete store json when
     * version is above the stored one; the tombstone ops always drop the
     * data and keep (id, max(version, stored)). Sets *result. */
    int (*record_apply)(void *impl, const char *node, const char *entity, const char *id,
                        int64_t version, const char *op, const char *json, size_t len,
                        uint64_t segment, enum hq_record_result *result, struct op_error *err);
    int (*set_aside_add)(void *impl, const char *node, uint64_t segment, uint64_t line,
                         const char *entity, const char *id, const char *reason,
                         struct op_error *err);
    /* Patches (docs/HQ.md, "Patches"; schema 4). record_get: the stored
     * record (node, entity, id): its version, its op and *json (malloc'd;
     * NULL for a tombstone), or -ENOENT. needs_whole_add: a set-aside
     * record (counted as one) that the receipt asks the node to send
     * whole, a patch whose base HQ lacks; needs_whole_list: those of
     * (node, segment), in line order. */
    int (*record_get)(void *impl, const char *node, const char *entity, const char *id,
                      int64_t *version, char op[HQ_OP_MAX], char **json, struct op_error *err);
    int (*needs_whole_add)(void *impl, const char *node, uint64_t segment, uint64_t line,
                           const char *entity, const char *id, const char *reason,
                           struct op_error *err);
    int (*needs_whole_list)(void *impl, const char *node, uint64_t segment, hq_set_aside_fn cb,
                            void *ctx, struct op_error *err);

    /* Listings. node, entity: NULL for all. records_list skips
     * tombstones and sorts by node, entity, id; records_count calls cb per
     * entity (sorted) with the count of records that are not tombstones. */
    int (*records_list)(void *impl, const char *node, const char *entity, hq_record_fn cb,
                        void *ctx, struct op_error *err);
    /* A node's tombstones (op erase, purge or withdraw; json ""),
     * sorted by entity and id: what anti-entropy compares as gone
     * (hq_verify.c, docs/SYNC_PROTOCOL.md "Anti-entropy"). Reads only;
     * a backend answers it from the same records it lists above. */
    int (*tombstones_list)(void *impl, const char *node, hq_record_fn cb, void *ctx,
                           struct op_error *err);
    int (*records_count)(void *impl, const char *node, const char *entity, hq_count_fn cb,
                         void *ctx, struct op_error *err);
    int (*receipts_list)(void *impl, const char *node, hq_receipt_fn cb, void *ctx,
                         struct op_error *err);
    int (*set_aside_list)(void *impl, const char *node, hq_set_aside_fn cb, void *ctx,
                          struct op_error *err);
    int (*totals)(void *impl, struct hq_totals *out, struct op_error *err);

    /* Mailbox: mailbox_post assigns the node's next seq (1, 2, ...) and
     * returns it in *seq; mailbox_list calls cb for seq > after, in
     * order, at most limit messages. */
    int (*mailbox_post)(void *impl, const char *node, const char *kind, const char *body,
                        size_t body_len, int64_t now_ms, uint64_t *seq, struct op_error *err);
    int (*mailbox_list)(void *impl, const char *node, uint64_t after, unsigned limit,
                        hq_mailbox_fn cb, void *ctx, struct op_error *err);
    /* The first policy message posted to node whose text has SHA-256 hash
     * (64 lower-case hex digits, as struct policy's hash): cb once with it
     * (its return is returned); -ENOENT when HQ never posted such a policy
     * to that node. A backend keeps the hash of every policy message
     * (mailbox_post computes it), so the lookup does not read the bodies. */
    int (*mailbox_policy_get)(void *impl, const char *node, const char *hash, hq_mailbox_fn cb,
                              void *ctx, struct op_error *err);

    /* Analysts. analyst_add: -EEXIST when the name is taken.
     * analyst_by_token: -ENOENT when unknown (revoked ones are found; the
     * caller checks a->revoked). analyst_revoke: -ENOENT when unknown;
     * revoking twice is not an error. analyst_touch records a request
     * (at most one write per 5 s). analyst_list: sorted by name. */
    int (*analyst_add)(void *impl, const char *name, const unsigned char token_sha256[32],
                       int64_t now_ms, struct op_error *err);
    int (*analyst_by_token)(void *impl, const unsigned char token_sha256[32],
                            struct hq_analyst *out, struct op_error *err);
    int (*analyst_revoke)(void *impl, const char *name, int64_t now_ms, struct op_error *err);
    int (*analyst_touch)(void *impl, const char *name, int64_t now_ms, struct op_error *err);
    int (*analyst_list)(void *impl, hq_analyst_fn cb, void *ctx, struct op_error *err);

    /* Anti-entropy. verify_put keeps v as the node's last check (replacing
     * the one before); verify_get: -ENOENT when the node has none. */
    int (*verify_put)(void *impl, const struct hq_verify *v, struct op_error *err);
    int (*verify_get)(void *impl, const char *node, struct hq_verify *out, struct op_error *err);
};

/* The handle protocol code holds. */
struct hq_store {
    const struct hq_store_ops *ops;
    void *impl;
};

/* "applied" / "rejected". */
const char *hq_receipt_status_name(enum hq_receipt_status s);

/* Opens (creating and migrating as needed) the SQLite store at path and
 * fills *out. Returns 0; -EINVAL for a file that is not an HQ store
 * (application_id), -EPROTO for a schema newer than this build, or a
 * negative errno; err names the path. */
int hq_store_sqlite_open(const char *path, struct hq_store *out, struct op_error *err);

/* Opens (creating and migrating as needed) the PostgreSQL store at
 * conninfo (postgresql://... or key=value pairs) and fills *out. Returns
 * 0; -EINVAL for a database that holds other tables but is not an HQ
 * store, -EPROTO for a schema newer than this build, -EACCES when the
 * server refuses the login, or a negative errno; err names the database
 * and server, never the conninfo (it may hold a password). */
int hq_store_pg_open(const char *conninfo, struct hq_store *out, struct op_error *err);

/* Whether spec names a PostgreSQL store: postgresql:// or postgres://,
 * or a key=value conninfo ("host=/run/postgresql dbname=hq"). */
int hq_store_is_pg(const char *spec);

/* Opens the store spec names: PostgreSQL (hq_store_is_pg) or else the
 * SQLite file at that path. */
int hq_store_open(const char *spec, struct hq_store *out, struct op_error *err);

/* Closes the store (NULL or a closed store is allowed). */
void hq_store_close(struct hq_store *st);

#endif
