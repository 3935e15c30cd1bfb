/*
 * E-mail bounces (docs/OUTREACH.md, "Bounces"): the per-attempt token the
 * node puts in every message (X-Outpost-Bounce), kept by its SHA-256 with
 * the message; a parser for RFC 3464 delivery status notifications that
 * finds the token and the status in a returned report; and the step that
 * matches a report to its message and records it through
 * outreach_record_bounce (outreach_events.h).
 *
 * The parser is pure and bounded: at most OUTREACH_BOUNCE_MAX bytes, no
 * allocation, a precise error for input that is not a DSN of a message of
 * this node. Nothing in the store changes on an error.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_OUTREACH_BOUNCE_H
#define OUTPOST_OUTREACH_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"
#include "outreach.h"
#include "store.h"

#define OUTREACH_BOUNCE_MAX (1024 * 1024) /* a report larger than this is refused */
#define OUTREACH_BOUNCE_HEADER "X-Outpost-Bounce"

struct outreach_dsn {
    char token[OUTREACH_TOKEN_BUF];
    char status[16];     /* "5.1.1" */
    char action[16];     /* "failed", "delayed", "delivered", ... or "" */
    char recipient[256]; /* Final-Recipient, as reported */
    char diagnostic[256];
    const char *kind; /* "bounced_hard", "bounced_soft" or "delivered" */
};

/* Parses a delivery status notification (multipart/report;
 * report-type=delivery-status) into *out. -EFBIG larger than
 * OUTREACH_BOUNCE_MAX; -EINVAL not a DSN, no status, a malformed status,
 * no X-Outpost-Bounce header or a malformed token (err says which). */
int outreach_dsn_parse(const char *data, size_t len, struct outreach_dsn *out,
                       struct op_error *err);

/* Keeps the SHA-256 of an attempt's bounce token with a queued e-mail, in
 * the caller's transaction when one is open (the attempt's). */
int outreach_bounce_ref(struct store *s, int64_t message_id, const char *token,
                        struct op_error *err);

/* Matches a parsed report to its message and records it (one
 * transaction): *message_id gets the message; *duplicate = 1 when the
 * same report was recorded before (nothing changed); *suppressed = 1 when
 * this hard bounce reached `limit` and the address is now suppressed.
 * -ENOENT when no message of this node has the token (nothing changed). */
int outreach_bounce_apply(struct store *s, const struct outreach_dsn *d, unsigned limit,
                          int64_t now_ms, int64_t *message_id, int *duplicate, int *suppressed,
                          struct op_error *err);

#endif
