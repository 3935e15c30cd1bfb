/*
 * Outreach: the queue of messages to contacts in the node's database
 * (docs/OUTREACH.md). A message is queued in its caller's transaction,
 * checked against the consent ledger again right before it is sent,
 * recorded as `sending` (committed) before the transport is called and
 * given its outcome after; a message found in `sending` at start becomes
 * `unknown` and is never sent again unless an operator requeues it. The
 * one-click unsubscribe tokens of the messages are kept here by their
 * SHA-256, and using one withdraws consent in the ledger (consent.h).
 *
 * This module reads contacts and consent; it never talks to the network.
 * The sender (outpostd) builds the message with outreach_mail.h and hands
 * it to a transport.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_OUTREACH_H
#define OUTPOST_OUTREACH_H

#include <jansson.h>
#include <stdint.h>

#include "consent.h"
#include "op_error.h"
#include "outreach_events.h" /* outreach_record_event: a transport's report */
#include "policy.h"
#include "store.h"

#define OUTREACH_TOKEN_BUF 48 /* base64url of 32 bytes + NUL */
#define OUTREACH_LIST_MAX 1000

/* A message to queue (campaigns build these). */
struct outreach_new {
    const char *contact_id;
    const char *channel;  /* "email", "print" or "call" (handed out as files) */
    const char *purpose;  /* 1..100 bytes, as in the consent ledger */
    const char *kind;     /* "marketing" (NULL) or "transactional" */
    const char *language; /* BCP 47 or NULL: the contact's */
    const char *subject;  /* one line */
    const char *body;     /* UTF-8 text; no control characters but newline and tab */
};

/* Queues a message, due now, in the caller's transaction when one is
 * open. Consent is not decided here but right before sending. -EINVAL
 * with err->field naming the bad input; -ENOENT unknown contact. */
int outreach_queue(struct store *s, const struct outreach_new *m, int64_t now_ms, int64_t *id,
                   struct op_error *err);

/* Queues the double opt-in confirmation for a token consent_record made
 * (template "confirm", kind transactional, the contact's language), in
 * the caller's transaction when one is open. Only the email channel has a
 * transport: for another channel, or a contact without an e-mail address,
 * nothing is queued and *id is 0. */
int outreach_queue_confirmation(struct store *s, const char *contact_id, const char *channel,
                                const char *purpose, const char *token, int64_t now_ms, int64_t *id,
                                struct op_error *err);

/* Queues a transactional test message (template "test") to the contact's
 * e-mail address. -ENOENT unknown contact, -EINVAL no e-mail address. */
int outreach_queue_test(struct store *s, const char *contact_id, int64_t now_ms, int64_t *id,
                        struct op_error *err);

/* At start: every message in `sending` becomes `unknown`. *count gets how
 * many. */
int outreach_recover(struct store *s, int64_t *count, struct op_error *err);

/* An `unknown` or `failed` message goes back to `queued`, due now.
 * -ENOENT no such message; -EINVAL in another state (err says which). */
int outreach_requeue(struct store *s, int64_t id, int64_t now_ms, struct op_error *err);

/* Messages newest first, of one state (NULL: all), at most limit
 * (1..OUTREACH_LIST_MAX): a JSON array (new reference). -EINVAL for an
 * unknown state. */
int outreach_list(struct store *s, const char *state, unsigned limit, json_t **out,
                  struct op_error *err);

/* One message as a JSON object (new reference); -ENOENT if none. */
int outreach_get(struct store *s, int64_t id, json_t **out, struct op_error *err);

/* 1 when `state` is one of the queue's states. */
int outreach_state_valid(const char *state);

/* The next message due, ready to build: the row, the contact's address
 * and language, and the consent decision taken just now. */
struct outreach_job {
    int64_t id;
    char contact_id[40];
    char channel[24];
    char purpose[104];
    char kind[16];
    char language[36]; /* the message's, else the contact's, else "" */
    char tmpl[16];
    char confirm_token[OUTREACH_TOKEN_BUF]; /* template confirm */
    char address[324];
    char *subject; /* owned; outreach_job_free */
    char *body;
    int attempts;
    struct consent_decision decision;
};
void outreach_job_free(struct outreach_job *j);

/* Takes the next message due at now_ms into *job and returns 1; 0 when
 * none is due. A message consent refuses now is marked `refused` with the
 * rule, and one without an address `failed`, in their own transactions;
 * the search then goes on to the next. */
int outreach_next(struct store *s, const struct policy *p, int64_t now_ms, struct outreach_job *job,
                  struct op_error *err);

/* Records the attempt before the transport is called: state sending,
 * attempts + 1, the decision and rule as evidence, the relay, and the
 * hash of this attempt's unsubscribe token, committed. -ESTALE when the
 * message is no longer queued (an operator changed it meanwhile). */
int outreach_attempt(struct store *s, const struct outreach_job *job, const char *relay,
                     const char *unsub_token, int64_t now_ms, struct op_error *err);

enum outreach_outcome {
    OUTREACH_SENT,
    OUTREACH_TEMPORARY, /* 4xx, no connection, timeout: retry with backoff */
    OUTREACH_PERMANENT, /* 5xx: failed */
    OUTREACH_UNKNOWN    /* handed over, no answer: the relay may have it; never re-sent */
};

/* Records the outcome of an attempt. A temporary failure is retried after
 * retry_s * 2^(attempts-1) seconds (at most a day) until max_attempts,
 * then the message is failed. */
int outreach_outcome(struct store *s, int64_t id, enum outreach_outcome o, const char *error,
                     unsigned retry_s, unsigned max_attempts, int64_t now_ms, struct op_error *err);

/* Messages sent since since_ms (the daily cap). */
int outreach_sent_since(struct store *s, int64_t since_ms, int64_t *n, struct op_error *err);

/* The form in which the node keeps a secret token of a message (the
 * unsubscribe, bounce and Message-ID tokens) and names an input by its
 * bytes: SHA-256 in lower-case hex. -EIO when OpenSSL fails. */
int outreach_sha256_hex(const char *data, size_t n, char out[65]);

/* A fresh unsubscribe token (base64url of 32 random bytes). */
int outreach_new_token(char token[OUTREACH_TOKEN_BUF], struct op_error *err);

/* One-click unsubscribe: the token's message names the contact, channel
 * and purpose; their marketing consent is withdrawn in the ledger at once
 * (consent_withdraw, which also suppresses the address). Using a token
 * again changes nothing and succeeds. -ENOENT unknown or malformed token
 * (nothing changed). *lang (36 bytes, may be NULL) gets the message's
 * language, for the page that answers. */
int outreach_unsubscribe(struct store *s, const char *token, int64_t now_ms, char *lang,
                         struct op_error *err);

/* 1 when the node has a transport for the channel: email (SMTP), sms (the
 * gateway), print (letters) and call (call lists). Campaigns accept only
 * these; outreach_channels() lists them for messages. */
int outreach_channel_known(const char *channel);
const char *outreach_channels(void);

#endif
