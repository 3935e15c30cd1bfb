/*
 * What changes between two region policies of the same region, each
 * difference classified by whether it lets more personal data be
 * collected, kept or leave the node (LOOSENS) or less (TIGHTENS). A node
 * applies a policy from HQ by itself only when nothing loosens; a person
 * at the node accepts the rest (docs/REGION_POLICY.md, "Policies from
 * HQ"). Pure: no database, no files.
 *
 * The invariant: the diff fails closed. Whatever changes and cannot be
 * ranked (a changed pattern, a custom field's type, the country) loosens;
 * only texts a person reads and nothing enforces (basis, labels, reasons,
 * the locale) are NEUTRAL. Comments and layout are not in a parsed policy,
 * so two files that differ only there have no differences.
 *
 * Field classes, from closed to open: local_only < aggregate_only (leaves
 * inside aggregates) < pseudonymize < local_primary without transfer <
 * local_primary with transfer < exportable. A move is also a loosening
 * when it lets more of the value leave right now (local_primary without
 * transfer, which sends nothing, to pseudonymize), so both orders are
 * checked.
 */
#ifndef OUTPOST_POLICY_DIFF_H
#define OUTPOST_POLICY_DIFF_H

#include <stddef.h>

#include "op_error.h"

struct policy;

enum policy_diff_kind {
    POLICY_DIFF_NEUTRAL = 0, /* a text nothing enforces: basis, labels, locale */
    POLICY_DIFF_TIGHTENS,    /* less is collected, kept or leaves */
    POLICY_DIFF_LOOSENS,     /* more may be collected, kept or leave; or cannot be ranked */
};

struct policy_diff_item {
    enum policy_diff_kind kind;
    char key[128];  /* the policy key: "fields.contact.email", "transfer.allowed" */
    char text[512]; /* for a person: "contact.email: pseudonymize -> exportable (loosens)" */
};

struct policy_diff {
    struct policy_diff_item *items; /* in policy order: country, transfer, classes, ... */
    size_t n;
    size_t loosens, tightens, neutral; /* items of each kind */
    size_t cap_;
};

/* Compares `from` (the policy in force) with `to` (the one offered). Both
 * must be policies of the same region: else -EINVAL, err->field "region".
 * -ENOMEM. On success *out is the caller's (policy_diff_free); identical
 * policies give n = 0. */
int policy_diff(const struct policy *from, const struct policy *to, struct policy_diff **out,
                struct op_error *err);

void policy_diff_free(struct policy_diff *d);

/* "LOOSEN", "TIGHTEN", "NEUTRAL". */
const char *policy_diff_kind_tag(enum policy_diff_kind k);

/* One line for ledgers and status: "2 loosen, 1 tightens, 0 neutral:
 * contact.email: pseudonymize -> exportable; ..." with as many item texts
 * as fit in cap (then "..."); "no change of substance" when nothing
 * loosens or tightens. Always NUL-terminates. */
void policy_diff_summary(const struct policy_diff *d, char *out, size_t cap);

#endif
