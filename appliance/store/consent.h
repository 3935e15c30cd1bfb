/*
 * Consent: the ledger of evidence records in the `consents` table, the
 * single-use tokens of double opt-in, and the suppression list, from which
 * the permission to send a message is derived on every check. There is no
 * stored "may send" flag: consent_check reads the latest decisive record
 * for the contact, channel, purpose and kind, the suppression list and the
 * region policy's mode for the channel, and says which rule decided.
 *
 * Invariants: a confirmation token is stored only as its SHA-256 and
 * confirms its pending record at most once; a withdrawal takes effect in
 * the same transaction that records it; a marketing withdrawal puts the
 * keyed hash of the address (never the address) on the suppression list,
 * which outlives the contact and blocks the same address under any contact
 * id. Every write goes through the store (audit, version, HLC) or, for
 * the two side tables, inside the same transaction.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 * Writes run in their own transaction, or inside the caller's when one is
 * open (store_begin), in which case a failure leaves the caller's
 * transaction to be rolled back.
 */
#ifndef OUTPOST_CONSENT_H
#define OUTPOST_CONSENT_H

#include <jansson.h>
#include <stdint.h>

#include "op_error.h"
#include "policy.h"
#include "store.h"

#define CONSENT_TOKEN_BYTES 32
#define CONSENT_TOKEN_MAX 128  /* longer input is refused before hashing */
#define CONSENT_TOKEN_BUF 48   /* base64url of 32 bytes (43) + NUL, rounded */
#define CONSENT_TTL_DEFAULT 72 /* hours, when the rule names none */
#define CONSENT_RULE_MAX 640

/* The wall clock in milliseconds since the epoch; 0 passed as `now_ms`
 * anywhere below means "read the real clock". Tests inject times. */

struct consent_request {
    const char *contact_id;
    const char *channel;      /* an activity channel: email, sms, call, ... */
    const char *purpose;      /* "newsletter"; 1..100 bytes */
    const char *kind;         /* "marketing" (NULL) or "transactional" */
    const char *method;       /* double_opt_in, single_opt_in, opt_out, verbal, written, imported */
    json_t *evidence;         /* borrowed object or NULL; copied into the record */
    const char *source;       /* evidence.source unless evidence has one */
    const char *text_version; /* evidence.text_version unless evidence has one */
    const char *ip;           /* evidence.ip unless evidence has one; NULL for none */
};

/* Records a consent. By the policy's mode for the channel (marketing):
 *  - double_opt_in: a pending record, and a single-use token written to
 *    token (CONSENT_TOKEN_BUF bytes) that lives token_ttl_hours; only its
 *    SHA-256 is kept. The caller delivers the token to the contact.
 *  - single_opt_in: a granted record; evidence.source is required
 *    (-EINVAL, err->field "evidence.source").
 *  - opt_out: a granted record (an explicit yes; not needed to send).
 * No rule for the channel: -EINVAL (nothing may be sent for marketing
 * there, so recording would mislead). Transactional consents are recorded
 * granted on any channel. token[0] is '' when no token was made. *out (if
 * not NULL) is the stored record (new reference). -ENOENT for an unknown
 * or deleted contact, -EINVAL for bad input (err->field names it). */
int consent_record(struct store *s, const struct policy *p, const struct consent_request *req,
                   int64_t now_ms, json_t **out, char token[CONSENT_TOKEN_BUF],
                   struct op_error *err);

/* Confirms the pending record a token belongs to (status granted,
 * confirmed_at now, evidence.confirmed_via "token" and confirmed_ip when
 * ip is given), marks the token used and lifts the suppression of the
 * contact's address for that channel and purpose (the contact asked again,
 * in person). Refusals change nothing: -ENOENT unknown token, -EALREADY
 * used before (replay), -ETIME expired, -ECANCELED the request was
 * withdrawn or the contact deleted. consent_id (40 bytes) receives the record's id on success; it
 * may be NULL. */
int consent_confirm(struct store *s, const char *token, const char *ip, int64_t now_ms,
                    char consent_id[40], struct op_error *err);

/* Withdraws: every pending or granted record of the contact for the
 * channel, purpose and kind becomes withdrawn (withdrawn_at now); when
 * there is none, a withdrawn record is added, so an objection on an
 * opt-out channel is on file. For marketing, the contact's address for
 * the channel goes on the suppression list. *count (if not NULL) is the
 * number of records changed or added. */
int consent_withdraw(struct store *s, const char *contact_id, const char *channel,
                     const char *purpose, const char *kind, const char *reason, int64_t now_ms,
                     int *count, struct op_error *err);

enum consent_state {
    CONSENT_NONE = 0, /* no decisive record */
    CONSENT_PENDING,  /* double opt-in requested, not confirmed */
    CONSENT_GRANTED,
    CONSENT_DENIED,
    CONSENT_WITHDRAWN,
    CONSENT_EXPIRED,   /* granted, but expires_at has passed */
    CONSENT_SUPPRESSED /* the address is on the suppression list */
};

struct consent_decision {
    int allowed;
    enum consent_state state;
    char consent_id[40]; /* the record that decided, "" if none */
    char rule[CONSENT_RULE_MAX];
};

/* Derives whether a message of `kind` ("marketing" or NULL, or
 * "transactional") may be sent to the contact on the channel for the
 * purpose, and the rule that decided, in *out. Marketing: the suppression
 * list, then the policy's mode with the latest decisive record (no policy
 * or no rule: not allowed). Transactional: allowed unless the latest
 * transactional record for the purpose is withdrawn or denied. Returns 0
 * whatever the decision; -ENOENT for an unknown contact, -EINVAL for bad
 * arguments. */
int consent_check(struct store *s, const struct policy *p, const char *contact_id,
                  const char *channel, const char *purpose, const char *kind, int64_t now_ms,
                  struct consent_decision *out, struct op_error *err);

/* Puts an address on the suppression list for a channel and every purpose
 * (subject erasure calls this before it blanks the contact). The address
 * is normalized (e-mail lower-cased and trimmed; phone numbers to E.164 in
 * the node's region) and kept only as HMAC-SHA-256 under the node's key.
 * Channels without an address key (visit, meeting, direct_mail) and empty
 * addresses are a no-op. */
int consent_suppress(struct store *s, const char *channel, const char *address, const char *reason,
                     struct op_error *err);

/* *suppressed = 1 when the address is on the suppression list for the
 * channel, for `purpose` or for every purpose (purpose NULL: any entry). */
int consent_is_suppressed(struct store *s, const char *channel, const char *purpose,
                          const char *address, int *suppressed, struct op_error *err);

/* The fixed, transactional confirmation message: a greeting, which
 * purpose is being confirmed, the link, what happens if the contact does
 * nothing. It carries no other field and no advertising: a confirmation
 * request that advertises is itself advertising sent without consent
 * (UWG §7(2) Nr. 2 for e-mail in Germany). Languages: "de", "pt", "fr", "es", "ru", else English
 * (a BCP 47 tag's primary subtag decides). Writes into out; -ENOBUFS if
 * cap is too small, -EINVAL for a link or purpose with a control
 * character. */
int consent_confirmation_text(const struct policy *p, const char *lang, const char *purpose,
                              const char *link, char *out, size_t cap);

/* "pending", "granted", ... for a state. */
const char *consent_state_name(enum consent_state st);

#endif
