/*
 * Outreach events: the one way a transport's report about a sent message
 * (a delivery report, a bounce, a failure, a reply, an unsubscribe) is
 * recorded (docs/OUTREACH.md "The tables"). The event is inserted and the
 * message's outcome set in one transaction: delivered -> delivered;
 * bounced_hard, bounced_soft, failed -> bounced; replied -> replied (and
 * a reply is never overwritten by a later report); unsubscribed leaves the
 * outcome as it is.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_OUTREACH_EVENTS_H
#define OUTPOST_OUTREACH_EVENTS_H

#include <stdint.h>

#include "op_error.h"
#include "store.h"

#define OUTREACH_EVENT_DETAIL_MAX 200 /* bytes of the transport's words kept */

/* 1 when kind is one of delivered, bounced_hard, bounced_soft, failed,
 * replied, unsubscribed. */
int outreach_event_kind_valid(const char *kind);

/* Records the event, in the caller's transaction when one is open.
 * detail is cut to OUTREACH_EVENT_DETAIL_MAX bytes (at a character
 * boundary) and control characters become spaces. -EINVAL unknown kind
 * (err->field "kind"); -ENOENT no such message. at_ms 0: now. */
int outreach_record_event(struct store *s, int64_t message_id, const char *kind, int64_t at_ms,
                          const char *detail, struct op_error *err);

#endif
