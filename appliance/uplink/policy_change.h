/*
 * How a node's region policy changes when HQ sends one (docs/REGION_POLICY.md,
 * "Policies from HQ"): a policy from HQ's mailbox takes effect by itself
 * only when it loosens nothing against the policy in force (policy_diff);
 * one that loosens anything waits in the mailbox as `pending` until a
 * person at the node accepts it by its hash. Every policy from HQ that
 * takes effect is recorded in the policy ledger (who, when, the hashes
 * before and after, what changed; schema/migrations/0010).
 *
 * The invariant: policy-override.yaml beside the database, which outranks
 * the region's profile (node_policy.h), is written only with a policy that
 * was judged not to loosen the policy in force, or with the pending policy
 * an administrator named by its hash; and always atomically.
 *
 * Used by the sync ledger (mailbox), `outpost policy` and `outpost status`.
 * Functions return 0 or a negative errno and fill *err.
 */
#ifndef OUTPOST_POLICY_CHANGE_H
#define OUTPOST_POLICY_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"
#include "policy.h"

struct store;

#define POLICY_CHANGE_ACCEPTED "accepted"   /* ledger kind: a person at the node accepted it */
#define POLICY_CHANGE_AUTO "auto-tightened" /* ledger kind: it loosened nothing */
#define POLICY_CHANGE_AUTO_ACTOR "hq"       /* who an automatic change is attributed to */
#define POLICY_CHANGE_SUMMARY_MAX 1024

/* Loads policy text as a policy of `region`; `name` stands for it in
 * messages ("NAME:LINE: KEY: what"). Text over NODE_POLICY_MAX_BYTES:
 * -EFBIG. *out is the caller's (policy_free). */
int policy_change_load_text(const char *name, const char *region, const char *text, size_t len,
                            struct policy **out, struct op_error *err);

/* Reads `path` and loads it as above (policy_load_file_for: a regular
 * file of at most POLICY_MAX_BYTES, as every policy file); messages name
 * the path. */
int policy_change_load_file(const char *path, const char *region, struct policy **out,
                            struct op_error *err);

/* Writes text as policy-override.yaml beside db_path: temporary file (mode
 * 0640), fsync, rename, fsync of the directory. */
int policy_change_write_override(const char *db_path, const char *text, size_t len,
                                 struct op_error *err);

enum policy_offer_verdict {
    POLICY_OFFER_REFUSED = 0, /* not a valid policy of the node's region */
    POLICY_OFFER_SAME,        /* byte for byte the policy in force */
    POLICY_OFFER_APPLY,       /* loosens nothing: takes effect by itself */
    POLICY_OFFER_PENDING,     /* loosens something: waits for a person at the node */
};

struct policy_offer {
    enum policy_offer_verdict verdict;
    char hash[POLICY_HASH_HEX];             /* of the offered text; "" when refused */
    size_t loosens, tightens;               /* policy_diff counts */
    char reason[POLICY_CHANGE_SUMMARY_MAX]; /* refused: why; else policy_diff_summary */
};

/* Judges the text of policy message `seq` from HQ against `in_force` (the
 * policy the node obeys now; the offered one must be of its region).
 * Returns 0 with *out filled, or -ENOMEM. */
int policy_change_judge(const struct policy *in_force, uint64_t seq, const char *text, size_t len,
                        struct policy_offer *out, struct op_error *err);

/* Appends a policy that took effect to the ledger (kind
 * POLICY_CHANGE_ACCEPTED or POLICY_CHANGE_AUTO). Runs in the caller's
 * transaction if one is open. */
int policy_change_record(struct store *s, const char *kind, const char *actor, const char *old_hash,
                         const char *new_hash, uint64_t seq, const char *summary,
                         struct op_error *err);

/* A newer policy message from HQ supersedes the ones still pending: they
 * become `refused`, "superseded by policy message SEQ from HQ". */
int policy_change_supersede(struct store *s, uint64_t seq, struct op_error *err);

/* The policy from HQ that waits for acceptance (the newest pending policy
 * message). */
struct policy_pending {
    uint64_t seq;
    char created_at[40];                    /* as HQ stamped it */
    int64_t received_ms;                    /* when the node stored it */
    char reason[POLICY_CHANGE_SUMMARY_MAX]; /* the diff summary when it arrived */
    char *text;                             /* the policy text; owned */
    size_t len;
    struct policy *p;     /* loaded for the store's region; NULL if it no longer loads */
    char load_error[512]; /* why, when p is NULL */
};

/* *found = 0 when nothing waits. Works on a read-only store.
 * policy_pending_done frees what *out holds (also after *found = 0). */
int policy_change_pending(struct store *s, struct policy_pending *out, int *found,
                          struct op_error *err);
void policy_pending_done(struct policy_pending *p);

struct policy_ledger_entry {
    int64_t at_ms;
    const char *actor, *kind, *old_hash, *new_hash, *summary; /* borrowed for the callback */
    uint64_t seq;
};
typedef int (*policy_ledger_fn)(void *ctx, const struct policy_ledger_entry *e);

/* Calls cb for the newest `limit` ledger entries (0: all), oldest first;
 * *total is the count of all. A non-zero return from cb stops and is
 * returned. */
int policy_change_ledger(struct store *s, unsigned limit, policy_ledger_fn cb, void *ctx,
                         uint64_t *total, struct op_error *err);

struct policy_accept {
    uint64_t seq; /* the mailbox message accepted */
    char old_hash[POLICY_HASH_HEX], new_hash[POLICY_HASH_HEX];
    char path[1024]; /* the override written */
    size_t loosens, tightens;
    char summary[POLICY_CHANGE_SUMMARY_MAX];
};

/* A person at the node accepts the pending policy whose SHA-256 is `hash`
 * (64 hex digits, either case): under the database's write lock, it is
 * written as policy-override.yaml, its mailbox message becomes `applied`
 * ("accepted at the node by ACTOR") and the ledger records it, against
 * the policy in force now (explicit_file as for node_policy_load).
 * Errors: -ENOENT, err->field "pending", when nothing waits; -ENOENT,
 * field "hash", naming the pending hash, when `hash` is another; -EINVAL
 * with "policy message N from HQ:LINE: KEY: what" when the pending text
 * no longer loads; the override's or the database's errors. Nothing is
 * recorded unless the file was written. */
int policy_change_accept(struct store *s, const char *db_path, const char *explicit_file,
                         const char *hash, const char *actor, struct policy_accept *out,
                         struct op_error *err);

#endif
