/*
 * Retention: purges records older than the region policy's per-entity
 * limit (policy->retention). Each purge goes through store_purge, so the
 * record's personal fields are blanked, it becomes a tombstone (which sync
 * carries to HQ so HQ's copy is purged too) and an audit row with action
 * "purge" says why. Age is measured per entity from the time that says how
 * old the information is: activities by occurred_at (when the call or visit
 * happened), every other entity by its last change (updated_at), so a task
 * or note still being worked on is not purged.
 *
 * Invariant: work is done in batches of at most opt->batch records per
 * transaction, so memory and transaction size stay bounded however much is
 * due; a purged record is never selected again (its audit row marks it).
 */
#ifndef OUTPOST_RETENTION_H
#define OUTPOST_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "hlc.h"
#include "op_error.h"
#include "policy.h"
#include "store.h"

#define RETENTION_BATCH_DEFAULT 500
#define RETENTION_BATCH_MAX 10000
#define RETENTION_MAX_RULES 16

struct retention_options {
    int dry_run;          /* count what is due; change nothing */
    unsigned batch;       /* records per transaction; 0 = RETENTION_BATCH_DEFAULT */
    uint64_t max_records; /* stop after this many purges (0 = no limit); report.more says
                             whether anything was left */
    /* Called after each committed batch with the records purged so far in
     * this run (optional; not called on a dry run). */
    void (*on_progress)(void *ctx, uint64_t purged);
    void *ctx;
};

/* What happened (or would happen) for one retention rule. */
struct retention_item {
    const struct entity_def *entity;
    unsigned days;
    const char *age_by;       /* "occurred_at" or "updated_at" */
    char cutoff[HLC_ISO_LEN]; /* records older than this are due */
    uint64_t purged;          /* purged (dry run: due) */
    char basis[256];
};

struct retention_report {
    struct retention_item items[RETENTION_MAX_RULES];
    size_t nitems;
    uint64_t total;
    int more; /* max_records stopped the run before everything due was purged */
};

/* Purges what policy p says is past its limit at now_ms (Unix ms; tests
 * inject it). `opt` may be NULL (defaults). The store must not be inside a
 * store_begin transaction: each batch is its own. Returns 0, or a negative
 * errno with err filled (purges committed before the failure stay, and
 * the report counts them). A policy without retention rules purges
 * nothing. */
int retention_run(struct store *s, const struct policy *p, uint64_t now_ms,
                  const struct retention_options *opt, struct retention_report *report,
                  struct op_error *err);

/* Sets PRAGMA secure_delete on the store's connection to `mode` (0 off,
 * 1 on, 2 fast) and returns the mode it had, or -1 if it could not be read.
 * Purges run with 1: the node's usual FAST zeroes freed space inside pages
 * that are written anyway, but not whole pages going to the freelist (the
 * overflow pages of a long text, index segments an optimize frees), and
 * those would keep the purged text in the file. */
int retention_secure_delete(struct store *s, int mode);

/* Folds the deleted text out of the search index of the entity, if it has
 * one: FTS5 keeps deleted tokens in old segments until they are merged, so
 * after purging contacts or organizations the index is optimized. */
int retention_compact_search(struct store *s, const struct entity_def *e, struct op_error *err);

#endif
