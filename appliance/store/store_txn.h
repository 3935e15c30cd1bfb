/*
 * A store module's unit of work (docs/OUTREACH.md, "One transaction a
 * step"): the store room's named queries bound to the store's connection,
 * and one transaction that is the caller's when one is open (an outreach
 * attempt, a reply joining its event and activity) or else the step's own
 * (store_begin's BEGIN IMMEDIATE, then store_commit, or store_rollback on
 * an error); and the time a step records, the caller's or the wall clock.
 * The invariant: a step's writes are kept together or not at all, and a
 * step never commits or rolls back a transaction it did not open. The
 * outreach and campaign modules (campaign.c, outreach.c, outreach_events.c,
 * outreach_sms.c, outreach_handout.c, outreach_reply.c) share it.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_STORE_TXN_H
#define OUTPOST_STORE_TXN_H

#include <stdint.h>

#include "op_error.h"
#include "sql.h"
#include "store.h"

/* Binds the store room's queries to *c and joins the open transaction
 * (*own = 0) or opens one (*own = 1). On an error nothing is left open or
 * bound. */
int store_txn_begin(struct store *s, struct sql_cache *c, int *own, struct op_error *err);

/* Ends the step with its result rc: when the step opened the transaction
 * (own), commits it if rc >= 0 and rolls it back otherwise; a joined
 * transaction is left to its owner. Closes *c. Returns rc, or the
 * commit's negative errno when the commit failed (all rolled back). */
int store_txn_end(struct store *s, struct sql_cache *c, int own, int rc, struct op_error *err);

/* The time a step records: now_ms when the caller gives one (tests, a
 * transport's report), else the wall clock in Unix ms. */
int64_t store_txn_now(int64_t now_ms);

#endif
