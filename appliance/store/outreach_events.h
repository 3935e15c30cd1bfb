/*
 * Outreach events: what a transport, a returned bounce or a person
 * reported about a message after the node handed it over (docs/OUTREACH.md,
 * "Bounces", "Printed mail and call lists"). Every report goes through
 * outreach_record_event, which keeps the event and sets the message's
 * outcome in one transaction; a hard bounce also counts toward the
 * contact's limit, after which the address is suppressed for the channel.
 * A call's result is an event, an activity on the contact and, when the
 * contact refused, a withdrawal in the consent ledger, all in one
 * transaction.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_OUTREACH_EVENTS_H
#define OUTPOST_OUTREACH_EVENTS_H

#include <stdint.h>

#include "op_error.h"
#include "store.h"

#define OUTREACH_EVENT_DETAIL_MAX 500 /* longer detail is cut at a character boundary */
#define OUTREACH_HARD_BOUNCE_LIMIT 2  /* the default of outreach_hard_bounce_limit */
#define OUTREACH_CALL_NOTE_MAX 2000

/* 1 when kind is one of delivered, bounced_hard, bounced_soft, failed,
 * replied, unsubscribed, auto_replied. */
int outreach_event_kind_valid(const char *kind);

/* Records one event (kind: delivered, bounced_hard, bounced_soft, failed,
 * replied, unsubscribed, auto_replied) and sets the message's outcome in
 * one transaction, the caller's when one is open: delivered, auto_replied
 * (an out-of-office or other automatic answer) -> delivered;
 * bounced_hard, failed -> bounced; replied -> replied; bounced_soft (a
 * temporary failure: the message may still arrive) and unsubscribed leave
 * it. A reply wins over everything, a bounce over a
 * delivery report, a delivery only over nothing. detail is cut to
 * OUTREACH_EVENT_DETAIL_MAX bytes at a character boundary and its control
 * characters become spaces (one line). at_ms 0 is now.
 * -EINVAL unknown kind or a detail that is not UTF-8; -ENOENT no such
 * message. */
int outreach_record_event(struct store *s, int64_t message_id, const char *kind, int64_t at_ms,
                          const char *detail, struct op_error *err);

/* A report on an e-mail (kind bounced_hard, bounced_soft, or delivered
 * from a delivery status notification): the event as
 * outreach_record_event; for a hard one, when `limit` (>= 1) of the
 * contact's e-mail messages have bounced hard, the contact's address goes
 * on the suppression list for e-mail (*suppressed = 1), in the same
 * transaction. The same report (message, kind, detail) recorded before
 * changes nothing and sets *duplicate = 1. Either out pointer may be
 * NULL. */
int outreach_record_bounce(struct store *s, int64_t message_id, const char *kind,
                           const char *detail, unsigned limit, int64_t at_ms, int *duplicate,
                           int *suppressed, struct op_error *err);

enum outreach_call_result {
    OUTREACH_CALL_ANSWERED,
    OUTREACH_CALL_NO_ANSWER,
    OUTREACH_CALL_REFUSED,
    OUTREACH_CALL_WRONG_NUMBER
};

/* "answered", "no-answer", "refused", "wrong-number" to the enum; -1 for
 * anything else. */
int outreach_call_result_parse(const char *text);

/* Records a call's result: the event (answered: delivered, no-answer:
 * bounced_soft, wrong-number: bounced_hard, refused: unsubscribed), an
 * activity on the contact (channel call, outbound, outcome the result,
 * body the note) and, for refused, the withdrawal of the contact's
 * marketing consent for calls and the message's purpose; one transaction.
 * *activity_id (40 bytes, may be NULL) gets the activity's id. -ENOENT no
 * such message; -EINVAL a message that is not a call handed out (state
 * sent), one that has a result already, or a bad note. */
int outreach_call_result(struct store *s, int64_t message_id, enum outreach_call_result r,
                         const char *note, int64_t at_ms, char *activity_id, struct op_error *err);

#endif
