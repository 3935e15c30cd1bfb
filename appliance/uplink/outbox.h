/*
 * The sync outbox (docs/OUTBOX.md): reading, acknowledging and measuring
 * the change rows that triggers (schema/migrations/0006_outbox.sql) queue
 * in the same transaction as every change to a record that syncs. The
 * invariant: a row leaves the outbox only through outbox_ack, after HQ
 * acknowledged it, so every committed change is sent at least once and the
 * record versions make a repeat harmless.
 *
 * Two lanes share the one sequence: the urgent lane (priority 0 purges
 * and erasures, priority 1 policy acknowledgements) and the ordinary lane
 * (priority 2). Each lane has its own cursor, so an erasure queued behind
 * a backlog of 100,000 ordinary changes still goes out in the next batch,
 * and each lane's acknowledged part is a prefix of it in seq order.
 */
#ifndef OUTPOST_OUTBOX_H
#define OUTPOST_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"

struct store;

enum outbox_priority {
    OUTBOX_URGENT = 0,   /* purge, erase */
    OUTBOX_POLICY = 1,   /* reserved: policy acknowledgements */
    OUTBOX_ORDINARY = 2, /* upsert, delete */
};

/* The most rows one batch may ask for. */
#define OUTBOX_BATCH_MAX 100000

struct outbox_row {
    int64_t seq;
    char entity[32]; /* singular entity name ("contact") */
    char record_id[40];
    int64_t version; /* the record's version after the change */
    uint64_t hlc;    /* the change's HLC stamp */
    char op[8];      /* "upsert", "delete", "purge", "erase" */
    int priority;    /* enum outbox_priority */
    int64_t created_ms;
};

/* Where each lane has been read (or acknowledged) up to, inclusive.
 * {0, 0} is the beginning. */
struct outbox_cursor {
    int64_t urgent;
    int64_t ordinary;
};

/* Reads the next batch past `after`: a window of at most max_rows rows
 * (1..OUTBOX_BATCH_MAX), urgent lane first, then as many ordinary rows as
 * fit, each lane in seq order. Within the window several rows of one record
 * collapse into the latest (the segmenter loads the record's current state
 * anyway), so *n may be less than the window. rows (capacity max_rows) come
 * out urgent first, then by seq. *covered (may equal `after`) is the cursor
 * at the end of the window: pass it to the next call, and to outbox_ack
 * once HQ has acknowledged the batch. An empty outbox gives *n = 0 and
 * *covered = *after. */
int outbox_next_batch(struct store *s, const struct outbox_cursor *after, size_t max_rows,
                      struct outbox_row *rows, size_t *n, struct outbox_cursor *covered,
                      struct op_error *err);

/* Deletes every row up to `upto` in each lane, and marks the erasures
 * whose 'erase' rows it deletes as sent at now_ms (Unix ms), in one
 * transaction (a savepoint inside the caller's). Acknowledging again is
 * harmless. A cursor past the last seq ever issued is refused (-ERANGE,
 * nothing changed): it would delete rows queued after the ack on a replay. */
int outbox_ack(struct store *s, const struct outbox_cursor *upto, int64_t now_ms,
               struct op_error *err);

/* For status and /metrics: rows waiting (*depth) and the queue time of the
 * oldest (*oldest_created_ms, Unix ms; 0 when the outbox is empty). */
int outbox_stats(struct store *s, int64_t *depth, int64_t *oldest_created_ms, struct op_error *err);

#endif
