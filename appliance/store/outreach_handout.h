/*
 * Printed mail and call lists: messages of the channels `print` and
 * `call` are not sent by a transport but handed out in a file a person
 * uses (docs/OUTREACH.md, "Printed mail and call lists"). This module
 * takes the due messages of one channel out of the queue with the
 * contact's data the file needs, after the consent ledger decided each
 * (print is the ledger's direct_mail channel), and records the attempt
 * (`sending`) before the file exists and `sent` after it was renamed into
 * place. A run that stops in between leaves `sending`, which the next run
 * turns into `unknown`: reported, never handed out twice by itself.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_OUTREACH_HANDOUT_H
#define OUTPOST_OUTREACH_HANDOUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "consent.h"
#include "op_error.h"
#include "policy.h"
#include "store.h"

#define OUTREACH_HANDOUT_MAX 5000 /* messages in one file */

struct outreach_handout_row {
    int64_t id;
    char contact_id[40];
    char purpose[104];
    char language[36]; /* the message's, else the contact's */
    char phone[24];    /* E.164 (call) */
    char *subject;     /* owned */
    char *body;        /* owned */
    json_t *contact;   /* the contact record (owned reference) */
    struct consent_decision decision;
};

struct outreach_handout {
    char channel[8];
    struct outreach_handout_row *rows;
    size_t n;
    int64_t refused; /* consent said no: now `refused` with the rule */
    int64_t failed;  /* no postal address / phone number: now `failed` */
};

/* Turns the channel's messages left in `sending` by an earlier run into
 * `unknown`; *count gets how many. */
int outreach_handout_recover(struct store *s, const char *channel, int64_t *count,
                             struct op_error *err);

/* Takes up to limit (1..OUTREACH_HANDOUT_MAX) due messages of channel
 * ("print" or "call") in one transaction: each is checked against the
 * consent ledger now; refused ones become `refused` with the rule, ones
 * without a postal address (print: street and locality or postal code)
 * or a phone number valid in the region (call) `failed`, the rest
 * `sending` (attempts + 1, the decision and rule as evidence) and land in
 * *out. */
int outreach_handout_take(struct store *s, const struct policy *p, const char *channel,
                          unsigned limit, int64_t now_ms, struct outreach_handout *out,
                          struct op_error *err);

/* The file is in place: every message of h becomes `sent`, one
 * transaction. */
int outreach_handout_done(struct store *s, const struct outreach_handout *h, int64_t now_ms,
                          struct op_error *err);

/* The file could not be written: every message of h goes back to
 * `queued` with `why` as its error, one transaction. */
int outreach_handout_release(struct store *s, const struct outreach_handout *h, const char *why,
                             struct op_error *err);

void outreach_handout_free(struct outreach_handout *h);

#endif
