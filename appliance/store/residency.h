/*
 * The node's residency rules that need its database (docs/EGRESS.md, "The
 * promise in time", "Relations" and "What HQ hears of records it never
 * had"). egress_project (sync/core/egress.c) decides what of one record may
 * leave; this module adds what one record cannot tell alone:
 *
 *   - relations: what is about a withheld contact, organization or deal is
 *     withheld too (a deal of a visible organization loses only its link
 *     to the withheld contact);
 *   - time: once a write that withholds a record (restricts, pins, erases,
 *     purges) commits, every unacknowledged segment is voided in the same
 *     transaction, and its spool file truncated before the write returns,
 *     so no old value waiting in the spool or in a half-sent upload leaves
 *     afterwards; a changed policy does the same and queues every record
 *     again so HQ ends with the current projection;
 *   - metadata: which records HQ may hold (egress_sent), so a tombstone
 *     goes only for those.
 *
 * The store calls residency_judge and residency_enqueue_related from
 * inside its write transactions and the voiding around its commit
 * (appliance/store/store.c), so no input path can skip them. This module
 * stands below the store and never includes store.h: it works on the
 * connection's named queries and reads a parent record through the
 * callback in struct residency_db, which the store fills
 * (store_residency). The segmenter (appliance/uplink/sync_ledger.c) and
 * `outpost egress-report` judge with the same function. All functions
 * return 0 or a negative errno and fill *err.
 */
#ifndef OUTPOST_RESIDENCY_H
#define OUTPOST_RESIDENCY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "entity.h"
#include "op_error.h"
#include "sql.h"

struct policy;

/* What the rules need of the node's database: the store room's named
 * queries on its connection (store_queries.h; this module's are in
 * sql/residency.sql), and a way to read any record whoever the viewer is,
 * tombstones included (-ENOENT when there is none; *out a new reference).
 * Borrowed from the store for as long as it is open. */
struct residency_db {
    struct sql_cache *q;
    int (*get)(void *ctx, const struct entity_def *e, const char *id, json_t **out,
               struct op_error *err);
    void *ctx;
};

enum residency_verdict {
    RESIDENCY_KEEP = 0,         /* egress_project decides */
    RESIDENCY_WITHHOLD = 1,     /* nothing of the record leaves */
    RESIDENCY_DROP_CONTACT = 2, /* a deal of a visible organization whose contact is withheld:
                                   projected with contact_id null */
};

/* Judges `rec` (a store record of e, borrowed) under p (NULL: no pins):
 * WITHHOLD when egress_withheld says so, or a record it is about (its
 * contact, organization or deal) is withheld or its contact was erased;
 * DROP_CONTACT for a deal as described above; KEEP otherwise. Parents are
 * read with r->get, whoever the store's viewer is. A reference to a record
 * that does not exist does not withhold. */
int residency_judge(const struct residency_db *r, const struct policy *p,
                    const struct entity_def *e, json_t *rec, enum residency_verdict *out,
                    struct op_error *err);

/* Applies a verdict to a record about to be projected: DROP_CONTACT sets
 * its contact_id to null. */
void residency_apply(enum residency_verdict v, json_t *rec);

/* 1 for the entities others are about (contact, organization, deal). */
int residency_is_parent(const struct entity_def *e);

/* Queues (outbox, ordinary lane) every record about parent `id` of e, and
 * for a contact or organization the records about their deals, so the
 * segmenter judges them again: a withdraw reaches HQ for what it holds, or
 * the records go out again when the parent is visible again. Call inside
 * the write transaction that changed the parent's verdict. deals_only: an
 * erased contact, whose other records are purged with it; only its deals
 * stay and lose their link to the person. */
int residency_enqueue_related(const struct residency_db *r, const struct entity_def *e,
                              const char *id, int deals_only, struct op_error *err);

/* Inside the caller's write transaction: moves every unacknowledged
 * segment to spool_voided (reason `why`), forgets the records of those that
 * sent no byte from egress_sent, rewinds the segmented cursor to the
 * acknowledged one and bumps spool_epoch. Refuses (-EACCES, nothing
 * changed, err names the file) when a spool file exists that this process
 * cannot truncate: the write must then fail rather than leave old values
 * sendable. *n (may be NULL) is the number of segments voided. */
int residency_void_spool_tx(const struct residency_db *r, const char *why, int *n,
                            struct op_error *err);

/* After the voiding committed: truncates and unlinks the files listed in
 * spool_voided, and drops the rows that need no termination at HQ. Safe to
 * repeat; files already gone are fine. */
int residency_sweep(const struct residency_db *r, struct op_error *err);

/* Inside the caller's write transaction: the policy in force is now
 * `new_hash` (its previous hash is recorded in sync_state.policy_hash). If
 * it differs from the recorded one (and one was recorded): voids the spool
 * (reason `why`) and queues every record again, so each is cut under the
 * new rules and HQ's copy ends as the new projection (a record now withheld
 * becomes a withdraw; one now visible goes out). Records the hash. *voided
 * is 1 when the spool was voided: the caller sweeps after it commits.
 * store_policy_changed (store.h) is the whole step, in its own transaction. */
int residency_policy_changed_tx(const struct residency_db *r, const char *new_hash, const char *why,
                                int *voided, struct op_error *err);

/* Whether the outbox holds a change of the record (so a segment spooled,
 * half sent or being cut may hold an older version of it). Call before the
 * write that adds its own row. */
int residency_queued(const struct residency_db *r, const char *entity, const char *id, int *out,
                     struct op_error *err);

/* Whether a record was put in a recorded segment (so HQ may hold it). */
int residency_hq_may_have(const struct residency_db *r, const char *entity, const char *id,
                          int *out, struct op_error *err);

/* The records one segment under construction puts in front of HQ: a small
 * set kept by the segmenter and recorded with the segment. */
struct residency_sent;
int residency_sent_new(struct residency_sent **out);
void residency_sent_free(struct residency_sent *rs);
int residency_sent_add(struct residency_sent *rs, const char *entity, const char *id);
int residency_sent_has(const struct residency_sent *rs, const char *entity, const char *id);
/* Inside the transaction that records segment `no`. */
int residency_sent_record(const struct residency_db *r, const struct residency_sent *rs,
                          uint64_t no, struct op_error *err);

#endif
