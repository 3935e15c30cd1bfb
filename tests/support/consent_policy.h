/*
 * The region policy the consent paths are tested under: EU-DE with double
 * opt-in for e-mail (tokens live two hours), single opt-in for SMS and
 * opt-out for calls, each with the basis a German node would cite. One
 * copy for the consent tests of the store and the outbox, so both see the
 * same rules.
 */
#ifndef OUTPOST_TEST_CONSENT_POLICY_H
#define OUTPOST_TEST_CONSENT_POLICY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static const char fx_consent_policy_yaml[] =
    "format: outpost-region-policy/1\n"
    "region: EU-DE\n"
    "country: DE\n"
    "name: Germany (test)\n"
    "default_class: local_only\n"
    "default_basis: \"design: test\"\n"
    "consent:\n"
    "  email: {mode: double_opt_in, token_ttl_hours: 2, basis: \"UWG §7(2) Nr. 2\"}\n"
    "  sms: {mode: single_opt_in, basis: \"UWG §7(2) Nr. 2 (sms)\"}\n"
    "  call: {mode: opt_out, basis: \"GDPR Art. 21\"}\n";

/* The policy above, parsed; the test stops (exit 1, the reason on stderr)
 * when it does not load. The caller frees it with policy_free. */
static inline struct policy *fx_consent_policy(void)
{
    struct policy *pol = NULL;
    struct op_error err;
    op_error_clear(&err);
    if (policy_load_buffer("EU-DE.yaml", fx_consent_policy_yaml, strlen(fx_consent_policy_yaml),
                           &pol, &err) < 0) {
        fprintf(stderr, "consent policy: %s\n", err.msg);
        exit(1);
    }
    return pol;
}

#endif
