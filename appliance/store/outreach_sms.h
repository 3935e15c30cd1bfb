/*
 * The SMS side of the outreach queue (docs/OUTREACH.md "SMS"): the
 * contact's number, the text's segments, quiet-hours deferral, the
 * delivery-report token a message carries, and what comes back from the
 * gateway: delivery reports (by token) and mobile-originated messages
 * (matched to a contact by number, logged as an activity, the outcome
 * `replied`, and STOP words withdrawing SMS consent at once).
 *
 * It reads and writes the store; it never talks to the network.
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_OUTREACH_SMS_H
#define OUTPOST_OUTREACH_SMS_H

#include <stdint.h>

#include "op_error.h"
#include "phone.h"
#include "sms_text.h"
#include "store.h"

#define OUTREACH_SMS_SEGMENTS_MAX 10 /* the concatenation most gateways take */
#define OUTREACH_SMS_MO_TEXT_MAX 1600
#define OUTREACH_SMS_REF_BUF 72 /* "dlr:" + 64 hex + NUL */

/* Checks an SMS text for the queue: UTF-8, 1..OUTREACH_SMS_SEGMENTS_MAX
 * segments. *c gets the count. -EINVAL with err->field "body". */
int outreach_sms_check_text(const char *text, struct sms_count *c, struct op_error *err);

/* The contact's number in E.164 ("" when it has none or no valid one).
 * -ENOENT for a contact that does not exist (or was deleted). */
int outreach_sms_number(struct store *s, const char *contact_id, char out[PHONE_E164_MAX],
                        struct op_error *err);

/* A queued message waits until until_ms (quiet hours), committed; nothing
 * else changes. -ESTALE when it is no longer queued. */
int outreach_sms_defer(struct store *s, int64_t id, int64_t until_ms, struct op_error *err);

/* The reference of a delivery-report token: "dlr:" and its SHA-256. */
int outreach_sms_token_ref(const char *token, char ref[OUTREACH_SMS_REF_BUF]);

/* Before the attempt: the queued message's gateway_ref becomes ref
 * (committed). -ESTALE when it is no longer queued. */
int outreach_sms_set_ref(struct store *s, int64_t id, const char *ref, struct op_error *err);

/* After a send: a sent message's gateway_ref becomes ref (the gateway's
 * own id, "json:ID"). */
int outreach_sms_set_sent_ref(struct store *s, int64_t id, const char *ref, struct op_error *err);

/* A delivery report: Kannel's type (1 delivered, 2 failed, 16 rejected by
 * the SMSC; 4 and 8 intermediate) for the message whose token it is.
 * *recorded is 1 when an event was recorded, 0 for an intermediate
 * report. -ENOENT unknown token (nothing changed), -EINVAL unknown type
 * (err->field "type"). */
int outreach_sms_dlr(struct store *s, const char *token, long type, const char *smsc_words,
                     int64_t now_ms, int *recorded, struct op_error *err);

struct outreach_sms_mo_result {
    int matched;        /* a live contact has the number */
    int stop;           /* the text was a stop word: SMS consent withdrawn */
    int64_t message_id; /* the SMS that got the outcome replied, 0 if none */
    char contact_id[40];
};

/* A mobile-originated message from `from` (as the operator wrote it; read
 * as dialled in the node's region). In one transaction: the activity
 * (sms, inbound, subject sms-in, the text as body), the outcome replied
 * on the contact's latest sent SMS, and for a stop word the withdrawal of
 * every open SMS consent and the number on the suppression list for every
 * purpose (the caller's transaction when one is open). No contact with
 * the number: nothing is written, matched 0.
 * -EINVAL (err->field "from" or "text") for a number that is none or a
 * text that is not UTF-8 or longer than OUTREACH_SMS_MO_TEXT_MAX bytes. */
int outreach_sms_mo(struct store *s, const char *from, const char *text, int64_t now_ms,
                    struct outreach_sms_mo_result *r, struct op_error *err);

/* 1 when text's first word is a stop word (STOP, STOPP, UNSUBSCRIBE,
 * ARRET, ARRÊT, PARAR, BAJA, CANCELAR, END, CANCEL, QUIT, СТОП, in any
 * case of ASCII letters or as written). */
int outreach_sms_is_stop(const char *text);

#endif
