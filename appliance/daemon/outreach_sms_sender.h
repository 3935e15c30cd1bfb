/*
 * The SMS branch of the outreach sender (docs/OUTREACH.md "SMS"): for a
 * message on channel sms that consent allowed, it keeps the region's quiet
 * hours (the message waits for their end), checks the segment limit,
 * commits the delivery-report reference and the attempt, hands the number
 * and text to sms_gateway and commits the outcome. It runs on the sender's
 * thread with the sender's store connection.
 */
#ifndef OUTPOST_OUTREACH_SMS_SENDER_H
#define OUTPOST_OUTREACH_SMS_SENDER_H

#include "config.h"
#include "op_error.h"
#include "outreach.h"
#include "policy.h"
#include "sms_gateway.h"
#include "store.h"

struct outreach_sms_sender {
    int on; /* a gateway is configured */
    enum sms_gateway_kind kind;
    char url[SMS_GATEWAY_URL_MAX];
    char password[256];
    char auth[512];
    const struct outpostd_config *cfg; /* the sender's copy */
};

/* Residency: a gateway not on loopback must be in the region profile's
 * country when the profile keeps personal data in the country
 * (transfer.allowed: false). Nothing when no gateway is set. */
int outreach_sms_sender_check(const struct outpostd_config *c, const struct policy *p,
                              struct op_error *err);

/* Reads the gateway and its secret files from *c (which must outlive x). */
int outreach_sms_sender_init(struct outreach_sms_sender *x, const struct outpostd_config *c,
                             struct op_error *err);

/* Sends one message (job from outreach_next, channel sms), or defers it. */
void outreach_sms_sender_send(struct outreach_sms_sender *x, struct store *s,
                              const struct policy *p, struct outreach_job *job);

/* Forgets the secrets. */
void outreach_sms_sender_clear(struct outreach_sms_sender *x);

/* Reads the first line of path into out ("" for an empty path). -errno
 * with err naming key when it cannot be read. */
int outreach_sms_read_secret(const char *path, const char *key, char *out, size_t cap,
                             struct op_error *err);

#endif
