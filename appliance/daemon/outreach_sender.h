/*
 * outpostd's outreach sender (docs/OUTREACH.md): one thread with its own
 * connection to the node database that takes queued messages one at a
 * time, re-checks consent, records the attempt, hands the built message
 * to the SMTP transport and records the outcome, within the rate limit
 * and the daily cap. At start, messages left in `sending` by a crash
 * become `unknown` and are counted in the log, never re-sent.
 *
 * Residency: the relay receives contacts' addresses. A relay not on this
 * host must name its country, and a region profile that keeps personal
 * data in the country (transfer.allowed false) refuses a relay elsewhere.
 */
#ifndef OUTPOST_OUTREACH_SENDER_H
#define OUTPOST_OUTREACH_SENDER_H

#include <stdint.h>

#include "config.h"
#include "op_error.h"
#include "policy.h"

struct outreach_sender;

/* The checks that need the region profile: residency of the relay and
 * CAN-SPAM's postal address (US). -EINVAL with err naming the key. */
int outreach_sender_check(const struct outpostd_config *c, const struct policy *p,
                          struct op_error *err);

/* Opens the database, loads the policy (policy_file or the node's),
 * checks, marks crashed sends unknown (*unknown gets how many) and starts
 * the thread. Nothing is started when outreach_relay is empty (*out NULL,
 * return 0). */
int outreach_sender_start(const struct outpostd_config *c, const char *policy_file,
                          struct outreach_sender **out, int64_t *unknown, struct op_error *err);

/* Asks the thread to load the region policy again before its next
 * message (SIGHUP, a policy from HQ). */
void outreach_sender_reload(struct outreach_sender *o);

/* Stops the thread after the message in hand (its outcome recorded) and
 * frees everything. NULL is allowed. */
void outreach_sender_stop(struct outreach_sender *o);

#endif
