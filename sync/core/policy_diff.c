/*
 * The differences between two policies of one region, each ranked as
 * loosening, tightening or neutral (contract and orders in policy_diff.h).
 * Every rule kind of struct policy is compared here; a rule kind added to
 * the policy model must be added here too, or its changes go unseen
 * (tests/unit/test_policy_diff.c changes each one).
 */
#include "policy_diff.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "policy.h"

/* Appends one difference: `fmt` says what changed, `why` (may be NULL)
 * explains the kind: "x -> y (loosens: why)". */
static int add(struct policy_diff *d, enum policy_diff_kind kind, const char *key, const char *why,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int add(struct policy_diff *d, enum policy_diff_kind kind, const char *key, const char *why,
               const char *fmt, ...)
{
    if (d->n == d->cap_) {
        size_t cap = d->cap_ ? d->cap_ * 2 : 16;
        struct policy_diff_item *it = realloc(d->items, cap * sizeof *it);
        if (!it)
            return -ENOMEM;
        d->items = it;
        d->cap_ = cap;
    }
    struct policy_diff_item *it = &d->items[d->n];
    it->kind = kind;
    snprintf(it->key, sizeof it->key, "%s", key);
    char what[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *tail = kind == POLICY_DIFF_LOOSENS    ? "loosens"
                       : kind == POLICY_DIFF_TIGHTENS ? "tightens"
                                                      : "neutral";
    snprintf(it->text, sizeof it->text, "%s (%s%s%s)", what, tail, why ? ": " : "", why ? why : "");
    d->n++;
    if (kind == POLICY_DIFF_LOOSENS)
        d->loosens++;
    else if (kind == POLICY_DIFF_TIGHTENS)
        d->tightens++;
    else
        d->neutral++;
    return 0;
}

/* ---- field classes ------------------------------------------------------ */

struct fstate {
    enum policy_class cls;
    int transfer; /* only meaningful for local_primary */
};

/* The spec order: how open the class is, counting what one more switch
 * (transfer) would let out. */
static int openness(struct fstate s)
{
    switch (s.cls) {
    case POLICY_LOCAL_ONLY:
        return 0;
    case POLICY_AGGREGATE_ONLY:
        return 1;
    case POLICY_PSEUDONYMIZE:
        return 2;
    case POLICY_LOCAL_PRIMARY:
        return s.transfer ? 4 : 3;
    case POLICY_EXPORTABLE:
        return 5;
    default:
        return 6; /* unknown: the most open, so any move to it loosens */
    }
}

/* What of the value leaves with a record now: 0 nothing, 1 a pseudonym,
 * 2 the value. */
static int leaves(struct fstate s)
{
    switch (s.cls) {
    case POLICY_LOCAL_ONLY:
    case POLICY_AGGREGATE_ONLY:
        return 0;
    case POLICY_PSEUDONYMIZE:
        return 1;
    case POLICY_LOCAL_PRIMARY:
        return s.transfer ? 2 : 0;
    default:
        return 2;
    }
}

static void state_name(struct fstate s, char *out, size_t cap)
{
    if (s.cls == POLICY_LOCAL_PRIMARY)
        snprintf(out, cap, "local_primary (transfer %s)", s.transfer ? "allowed" : "not allowed");
    else
        snprintf(out, cap, "%s", policy_class_name(s.cls));
}

/* -1 tightens, 0 same, 1 loosens. Loosening wins when the two orders
 * disagree (pseudonymize -> local_primary without transfer sends less now
 * but is one switch away from sending the value). */
static int class_move(struct fstate a, struct fstate b)
{
    if (a.cls == b.cls && (a.cls != POLICY_LOCAL_PRIMARY || a.transfer == b.transfer))
        return 0;
    if (openness(b) > openness(a) || leaves(b) > leaves(a))
        return 1;
    return -1;
}

static int field_line(struct policy_diff *d, const char *key, const char *label, struct fstate a,
                      struct fstate b)
{
    int m = class_move(a, b);
    if (!m)
        return 0;
    char sa[48], sb[48];
    state_name(a, sa, sizeof sa);
    state_name(b, sb, sizeof sb);
    return add(d, m > 0 ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS, key, NULL, "%s: %s -> %s",
               label, sa, sb);
}

static const struct policy_field_rule *rule_of(const struct policy *p, const struct entity_def *e,
                                               const char *field)
{
    for (size_t i = 0; i < p->nfields; i++)
        if (p->fields[i].entity == e && !strcmp(p->fields[i].field, field))
            return &p->fields[i];
    return NULL;
}

static int one_field(struct policy_diff *d, const struct policy *a, const struct policy *b,
                     const struct entity_def *e, const char *field)
{
    char key[128], label[112];
    snprintf(key, sizeof key, "fields.%s.%s", e->name, field);
    snprintf(label, sizeof label, "%s.%s", e->name, field);
    /* Only the field's own class: a transfer switch is one line of its own. */
    struct fstate sa = {policy_class_of(a, e, field), a->transfer_allowed};
    struct fstate sb = {policy_class_of(b, e, field), b->transfer_allowed};
    if (sa.cls == sb.cls) {
        const struct policy_field_rule *ra = rule_of(a, e, field), *rb = rule_of(b, e, field);
        if (!ra && !rb)
            return 0; /* a new default_basis has its own line */
        const char *ba = ra ? ra->basis : a->default_basis;
        const char *bb = rb ? rb->basis : b->default_basis;
        if (strcmp(ba, bb))
            return add(d, POLICY_DIFF_NEUTRAL, key, NULL, "%s: basis changed", label);
        return 0;
    }
    /* Compare the classes under one transfer setting each, as they apply. */
    return field_line(d, key, label, sa, sb);
}

static int has_custom_name(const struct policy *p, const struct entity_def *e, const char *name)
{
    return policy_custom_field(p, e, name) != NULL;
}

static int fields(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    int rc;
    for (size_t i = 0; entity_all[i]; i++) {
        const struct entity_def *e = entity_all[i];
        for (size_t j = 0; j < e->nfields; j++) {
            const struct field_def *f = &e->fields[j];
            if (!strcmp(f->name, "custom") || (f->flags & FIELD_INTERNAL))
                continue;
            if ((rc = one_field(d, a, b, e, f->name)) < 0)
                return rc;
        }
        /* Custom fields declared in either policy; one declared in only one
         * has the default class in the other (undeclared custom keys fall
         * to it in the egress). */
        const struct policy *both[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            const struct policy *p = both[k];
            for (size_t j = 0; j < p->ncustom; j++) {
                if (p->custom[j].entity != e)
                    continue;
                if (k == 1 && has_custom_name(a, e, p->custom[j].name))
                    continue; /* done in the first pass */
                char field[80];
                snprintf(field, sizeof field, "custom.%s", p->custom[j].name);
                if ((rc = one_field(d, a, b, e, field)) < 0)
                    return rc;
            }
        }
    }
    return 0;
}

static size_t count_local_primary(const struct policy *p)
{
    size_t n = 0;
    for (size_t i = 0; entity_all[i]; i++) {
        const struct entity_def *e = entity_all[i];
        for (size_t j = 0; j < e->nfields; j++) {
            const struct field_def *f = &e->fields[j];
            if (strcmp(f->name, "custom") && !(f->flags & FIELD_INTERNAL) &&
                policy_class_of(p, e, f->name) == POLICY_LOCAL_PRIMARY)
                n++;
        }
    }
    for (size_t j = 0; j < p->ncustom; j++) {
        char field[80];
        snprintf(field, sizeof field, "custom.%s", p->custom[j].name);
        if (policy_class_of(p, p->custom[j].entity, field) == POLICY_LOCAL_PRIMARY)
            n++;
    }
    return n;
}

static int top(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    int rc = 0;
    if (strcmp(a->country, b->country) &&
        (rc = add(d, POLICY_DIFF_LOOSENS, "country",
                  "cannot be ranked; phone pseudonyms follow the country", "country: %s -> %s",
                  a->country, b->country)) < 0)
        return rc;
    if (a->transfer_allowed != b->transfer_allowed) {
        size_t n = count_local_primary(b);
        char why[96];
        snprintf(why, sizeof why, "%zu local_primary field%s %s", n, n == 1 ? "" : "s",
                 b->transfer_allowed ? "leave as they are" : "stay on the node");
        if (b->transfer_allowed)
            rc = add(d, POLICY_DIFF_LOOSENS, "transfer.allowed", why,
                     "transfer.allowed: false -> true");
        else
            rc = add(d, POLICY_DIFF_TIGHTENS, "transfer.allowed", why,
                     "transfer.allowed: true -> false");
        if (rc < 0)
            return rc;
    } else if (strcmp(a->transfer_basis, b->transfer_basis) &&
               (rc = add(d, POLICY_DIFF_NEUTRAL, "transfer.basis", NULL,
                         "transfer: basis changed")) < 0) {
        return rc;
    }
    struct fstate da = {a->default_class, a->transfer_allowed};
    struct fstate db = {b->default_class, b->transfer_allowed};
    if (a->default_class != b->default_class) {
        /* as above: the transfer switch has its own line */
        db.transfer = da.transfer;
        int m = class_move(da, db);
        rc = add(d, m > 0 ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS, "default_class", NULL,
                 "default_class: %s -> %s", policy_class_name(a->default_class),
                 policy_class_name(b->default_class));
    } else if (strcmp(a->default_basis, b->default_basis)) {
        rc = add(d, POLICY_DIFF_NEUTRAL, "default_basis", NULL, "default_class: basis changed");
    }
    return rc < 0 ? rc : 0;
}

/* ---- pins ----------------------------------------------------------------- */

static int pins_value(const struct policy *p, const struct entity_def *e, const char *field,
                      const char *value)
{
    for (size_t i = 0; i < p->npins; i++) {
        const struct policy_pin *pin = &p->pins[i];
        if (pin->entity != e || strcmp(pin->field, field))
            continue;
        for (size_t j = 0; j < pin->nvalues; j++)
            if (!strcmp(pin->values[j], value))
                return 1;
    }
    return 0;
}

static const struct policy_pin *pin_rule(const struct policy *p, const struct entity_def *e,
                                         const char *field)
{
    for (size_t i = 0; i < p->npins; i++)
        if (p->pins[i].entity == e && !strcmp(p->pins[i].field, field))
            return &p->pins[i];
    return NULL;
}

/* Appends to list (", "-separated) the values `from` pins on (e, field)
 * that `other` does not. Returns how many. */
static size_t values_missing(const struct policy *from, const struct policy *other,
                             const struct entity_def *e, const char *field, char *list, size_t cap)
{
    size_t n = 0, used = strlen(list);
    for (size_t i = 0; i < from->npins; i++) {
        const struct policy_pin *pin = &from->pins[i];
        if (pin->entity != e || strcmp(pin->field, field))
            continue;
        for (size_t j = 0; j < pin->nvalues; j++) {
            if (pins_value(other, e, field, pin->values[j]))
                continue;
            /* the same value twice in `from`: count it once */
            int seen = 0;
            for (size_t k = 0; k < i && !seen; k++)
                if (from->pins[k].entity == e && !strcmp(from->pins[k].field, field))
                    for (size_t m = 0; m < from->pins[k].nvalues && !seen; m++)
                        seen = !strcmp(from->pins[k].values[m], pin->values[j]);
            for (size_t m = 0; m < j && !seen; m++)
                seen = !strcmp(pin->values[m], pin->values[j]);
            if (seen)
                continue;
            n++;
            if (used + 4 < cap) {
                int w =
                    snprintf(list + used, cap - used, "%s%s", n > 1 ? ", " : "", pin->values[j]);
                if (w > 0)
                    used = used + (size_t)w < cap ? used + (size_t)w : cap - 1;
            }
        }
    }
    if (used + 1 >= cap && cap > 4)
        memcpy(list + cap - 4, "...", 4);
    return n;
}

static int pin_pair(struct policy_diff *d, const struct policy *a, const struct policy *b,
                    const struct entity_def *e, const char *field)
{
    char key[128], gone[200] = "", added[200] = "";
    snprintf(key, sizeof key, "pin_records.%s.%s", e->name, field);
    const struct policy_pin *ra = pin_rule(a, e, field), *rb = pin_rule(b, e, field);
    size_t ngone = values_missing(a, b, e, field, gone, sizeof gone);
    size_t nadded = values_missing(b, a, e, field, added, sizeof added);
    int rc = 0;
    if (ra && !rb)
        rc = add(d, POLICY_DIFF_LOOSENS, key, "rule removed",
                 "pin_records: %s records with %s in [%s] no longer stay on the node", e->name,
                 field, gone);
    else if (ngone)
        rc = add(d, POLICY_DIFF_LOOSENS, key, "narrowed", "pin_records: %s.%s no longer pins %s",
                 e->name, field, gone);
    if (rc < 0)
        return rc;
    if (!ra && rb)
        rc = add(d, POLICY_DIFF_TIGHTENS, key, "rule added",
                 "pin_records: %s records with %s in [%s] stay on the node", e->name, field, added);
    else if (nadded)
        rc = add(d, POLICY_DIFF_TIGHTENS, key, NULL, "pin_records: %s.%s also pins %s", e->name,
                 field, added);
    if (rc < 0)
        return rc;
    if (ra && rb && !ngone && !nadded && strcmp(ra->basis, rb->basis))
        rc = add(d, POLICY_DIFF_NEUTRAL, key, NULL, "pin_records: %s.%s: basis changed", e->name,
                 field);
    return rc < 0 ? rc : 0;
}

static int pins(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    const struct policy *both[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < both[k]->npins; i++) {
            const struct policy_pin *pin = &both[k]->pins[i];
            /* each (entity, field) once: at its first rule in a, else in b */
            if (pin_rule(both[k], pin->entity, pin->field) != pin)
                continue;
            if (k == 1 && pin_rule(a, pin->entity, pin->field))
                continue;
            int rc = pin_pair(d, a, b, pin->entity, pin->field);
            if (rc < 0)
                return rc;
        }
    return 0;
}

/* ---- forbidden fields ------------------------------------------------------ */

static int forbidden(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    int rc = 0;
    char key[128];
    for (size_t i = 0; i < a->nforbidden && rc == 0; i++) {
        const struct policy_forbidden *fa = &a->forbidden[i];
        const struct policy_forbidden *fb = policy_forbidden_field(b, fa->entity, fa->field);
        snprintf(key, sizeof key, "forbidden.%s.%s", fa->entity->name, fa->field);
        if (!fb)
            rc = add(d, POLICY_DIFF_LOOSENS, key, "may be collected again",
                     "forbidden: %s.%s no longer forbidden", fa->entity->name, fa->field);
        else if (strcmp(fa->reason, fb->reason) || strcmp(fa->basis, fb->basis))
            rc = add(d, POLICY_DIFF_NEUTRAL, key, NULL, "forbidden: %s.%s: reason or basis changed",
                     fa->entity->name, fa->field);
    }
    for (size_t i = 0; i < b->nforbidden && rc == 0; i++) {
        const struct policy_forbidden *fb = &b->forbidden[i];
        if (policy_forbidden_field(a, fb->entity, fb->field))
            continue;
        snprintf(key, sizeof key, "forbidden.%s.%s", fb->entity->name, fb->field);
        rc = add(d, POLICY_DIFF_TIGHTENS, key, NULL, "forbidden: %s.%s is forbidden",
                 fb->entity->name, fb->field);
    }
    return rc < 0 ? rc : 0;
}

/* ---- custom field definitions --------------------------------------------- */

static const char *custom_type_name(enum policy_custom_type t)
{
    static const char *const names[] = {"text", "enum", "integer", "date", "boolean"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static int has_value(const struct policy_custom_field *f, const char *v)
{
    for (size_t i = 0; i < f->nvalues; i++)
        if (!strcmp(f->values[i], v))
            return 1;
    return 0;
}

static int labels_differ(const struct policy_custom_field *x, const struct policy_custom_field *y)
{
    if (x->nlabels != y->nlabels)
        return 1;
    for (size_t i = 0; i < x->nlabels; i++) {
        size_t j = 0;
        while (j < y->nlabels && strcmp(x->labels[i].lang, y->labels[j].lang))
            j++;
        if (j == y->nlabels || strcmp(x->labels[i].text, y->labels[j].text))
            return 1;
    }
    return 0;
}

static int custom_pair(struct policy_diff *d, const struct policy_custom_field *x,
                       const struct policy_custom_field *y)
{
    char key[128], label[96];
    snprintf(label, sizeof label, "%s.custom.%s", x->entity->name, x->name);
    snprintf(key, sizeof key, "custom_fields.%s", label);
    int rc = 0;
    if (x->type != y->type)
        return add(d, POLICY_DIFF_LOOSENS, key, "cannot be ranked",
                   "custom_fields: %s: type %s -> %s", label, custom_type_name(x->type),
                   custom_type_name(y->type));
    if (strcmp(x->pattern, y->pattern)) {
        if (!y->pattern[0])
            rc = add(d, POLICY_DIFF_LOOSENS, key, "any text is accepted",
                     "custom_fields: %s: pattern removed", label);
        else if (!x->pattern[0])
            rc = add(d, POLICY_DIFF_TIGHTENS, key, NULL, "custom_fields: %s: pattern added", label);
        else
            rc = add(d, POLICY_DIFF_LOOSENS, key, "two patterns cannot be ranked",
                     "custom_fields: %s: pattern changed", label);
        if (rc < 0)
            return rc;
    }
    unsigned mx = x->max_length ? x->max_length : 200, my = y->max_length ? y->max_length : 200;
    if (mx != my && (rc = add(d, my > mx ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS, key, NULL,
                              "custom_fields: %s: max_length %u -> %u", label, mx, my)) < 0)
        return rc;
    size_t more = 0, fewer = 0;
    for (size_t i = 0; i < y->nvalues; i++)
        more += !has_value(x, y->values[i]);
    for (size_t i = 0; i < x->nvalues; i++)
        fewer += !has_value(y, x->values[i]);
    if (more &&
        (rc = add(d, POLICY_DIFF_LOOSENS, key, NULL, "custom_fields: %s: %zu enum value%s added",
                  label, more, more == 1 ? "" : "s")) < 0)
        return rc;
    if (fewer &&
        (rc = add(d, POLICY_DIFF_TIGHTENS, key, NULL, "custom_fields: %s: %zu enum value%s removed",
                  label, fewer, fewer == 1 ? "" : "s")) < 0)
        return rc;
    if (x->required != y->required &&
        (rc = add(d, y->required ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS, key,
                  y->required ? "collected from everyone" : NULL,
                  y->required ? "custom_fields: %s: now required"
                              : "custom_fields: %s: no longer required",
                  label)) < 0)
        return rc;
    if ((strcmp(x->basis, y->basis) || labels_differ(x, y)) &&
        (rc = add(d, POLICY_DIFF_NEUTRAL, key, NULL, "custom_fields: %s: labels or basis changed",
                  label)) < 0)
        return rc;
    return 0;
}

static int customs(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    int rc = 0;
    char key[128];
    for (size_t i = 0; i < a->ncustom && rc == 0; i++) {
        const struct policy_custom_field *x = &a->custom[i];
        const struct policy_custom_field *y = policy_custom_field(b, x->entity, x->name);
        if (y) {
            rc = custom_pair(d, x, y);
            continue;
        }
        snprintf(key, sizeof key, "custom_fields.%s.custom.%s", x->entity->name, x->name);
        rc = add(d, POLICY_DIFF_TIGHTENS, key, "no longer collected",
                 "custom_fields: %s.custom.%s removed", x->entity->name, x->name);
    }
    for (size_t i = 0; i < b->ncustom && rc == 0; i++) {
        const struct policy_custom_field *y = &b->custom[i];
        if (policy_custom_field(a, y->entity, y->name))
            continue;
        snprintf(key, sizeof key, "custom_fields.%s.custom.%s", y->entity->name, y->name);
        rc = add(d, POLICY_DIFF_LOOSENS, key, "the node may collect it",
                 "custom_fields: %s.custom.%s added", y->entity->name, y->name);
    }
    return rc < 0 ? rc : 0;
}

/* ---- consent, retention, aggregates --------------------------------------- */

/* double opt-in is the strictest; a higher number is more open */
static int consent_rank(enum policy_consent_mode m)
{
    switch (m) {
    case POLICY_CONSENT_DOUBLE_OPT_IN:
        return 0;
    case POLICY_CONSENT_SINGLE_OPT_IN:
        return 1;
    case POLICY_CONSENT_OPT_OUT:
        return 2;
    default:
        return 3;
    }
}

static int consent(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    int rc = 0;
    char key[128];
    for (size_t i = 0; i < a->nconsent && rc == 0; i++) {
        const struct policy_consent_rule *x = &a->consent[i];
        const struct policy_consent_rule *y = policy_consent_for(b, x->channel);
        snprintf(key, sizeof key, "consent.%s", x->channel);
        if (!y) {
            /* no rule: nothing may be sent for marketing on the channel */
            rc = add(d, POLICY_DIFF_TIGHTENS, key, "no marketing on the channel",
                     "consent.%s: %s -> no rule", x->channel, policy_consent_mode_name(x->mode));
            continue;
        }
        int ra = consent_rank(x->mode), rb = consent_rank(y->mode);
        if (ra != rb) {
            rc = add(d, rb > ra ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS, key, NULL,
                     "consent.%s: %s -> %s", x->channel, policy_consent_mode_name(x->mode),
                     policy_consent_mode_name(y->mode));
            continue;
        }
        if (x->mode == POLICY_CONSENT_DOUBLE_OPT_IN && x->token_ttl_hours != y->token_ttl_hours) {
            rc = add(d,
                     y->token_ttl_hours > x->token_ttl_hours ? POLICY_DIFF_LOOSENS
                                                             : POLICY_DIFF_TIGHTENS,
                     key, NULL, "consent.%s: token_ttl_hours %u -> %u", x->channel,
                     x->token_ttl_hours, y->token_ttl_hours);
            continue;
        }
        if (strcmp(x->basis, y->basis))
            rc = add(d, POLICY_DIFF_NEUTRAL, key, NULL, "consent.%s: basis changed", x->channel);
    }
    for (size_t i = 0; i < b->nconsent && rc == 0; i++) {
        const struct policy_consent_rule *y = &b->consent[i];
        if (policy_consent_for(a, y->channel))
            continue;
        snprintf(key, sizeof key, "consent.%s", y->channel);
        rc = add(d, POLICY_DIFF_LOOSENS, key, "marketing on the channel becomes possible",
                 "consent.%s: no rule -> %s", y->channel, policy_consent_mode_name(y->mode));
    }
    return rc < 0 ? rc : 0;
}

static const struct policy_retention *retention_for(const struct policy *p,
                                                    const struct entity_def *e)
{
    for (size_t i = 0; i < p->nretention; i++)
        if (p->retention[i].entity == e)
            return &p->retention[i];
    return NULL;
}

static int retention(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    int rc = 0;
    char key[128];
    for (size_t i = 0; entity_all[i] && rc == 0; i++) {
        const struct entity_def *e = entity_all[i];
        const struct policy_retention *x = retention_for(a, e), *y = retention_for(b, e);
        if (!x && !y)
            continue;
        snprintf(key, sizeof key, "retention.%s", e->name);
        if (x && !y)
            rc = add(d, POLICY_DIFF_LOOSENS, key, "kept without limit",
                     "retention.%s: %u days -> no limit", e->name, x->days);
        else if (!x)
            rc = add(d, POLICY_DIFF_TIGHTENS, key, NULL, "retention.%s: no limit -> %u days",
                     e->name, y->days);
        else if (x->days != y->days)
            rc = add(d, y->days > x->days ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS, key, NULL,
                     "retention.%s: %u -> %u days", e->name, x->days, y->days);
        else if (strcmp(x->basis, y->basis))
            rc = add(d, POLICY_DIFF_NEUTRAL, key, NULL, "retention.%s: basis changed", e->name);
    }
    return rc < 0 ? rc : 0;
}

static const struct policy_aggregate *aggregate_named(const struct policy *p, const char *name)
{
    for (size_t i = 0; i < p->naggregates; i++)
        if (!strcmp(p->aggregates[i].name, name))
            return &p->aggregates[i];
    return NULL;
}

/* aggregates.noise: less noise (none, a larger epsilon per answer, a
 * larger budget, a shorter period for the same budget) loosens. */
static int noise(struct policy_diff *d, const struct policy_noise *x, const struct policy_noise *y)
{
    const char *key = "aggregates.noise";
    if (!x->on && !y->on)
        return 0;
    if (x->on && !y->on)
        return add(d, POLICY_DIFF_LOOSENS, key, "answers carry exact counts",
                   "aggregates.noise: removed");
    if (!x->on)
        return add(d, POLICY_DIFF_TIGHTENS, key, NULL, "aggregates.noise: added");
    int rc = 0;
    if (x->epsilon_micro != y->epsilon_micro)
        rc =
            add(d, y->epsilon_micro > x->epsilon_micro ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS,
                "aggregates.noise.epsilon", NULL, "aggregates.noise.epsilon: %u -> %u millionths",
                x->epsilon_micro, y->epsilon_micro);
    if (rc == 0 && x->budget_micro != y->budget_micro)
        rc = add(d, y->budget_micro > x->budget_micro ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS,
                 "aggregates.noise.budget", NULL, "aggregates.noise.budget: %u -> %u millionths",
                 x->budget_micro, y->budget_micro);
    if (rc == 0 && x->period != y->period)
        rc = add(d, y->period < x->period ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS,
                 "aggregates.noise.period", NULL, "aggregates.noise.period: %s -> %s",
                 policy_noise_period_name(x->period), policy_noise_period_name(y->period));
    return rc;
}

/* Whether aggregate `name` counts something else in b than in a (defined
 * in one only, or by other fields or grain): HQ would pull a new table
 * under an old name. */
static int define_changed(const struct policy *a, const struct policy *b, const char *name)
{
    const struct policy_aggregate_define *x = policy_define_named(a, name);
    const struct policy_aggregate_define *y = policy_define_named(b, name);
    if (!x || !y)
        return !x != !y;
    return x->rows != y->rows || x->cols != y->cols || x->grain != y->grain;
}

static int aggregates(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    int rc = 0;
    char key[128];
    if (a->min_cell_size != b->min_cell_size &&
        (rc = add(d,
                  b->min_cell_size < a->min_cell_size ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS,
                  "aggregates.min_cell_size", NULL, "aggregates.min_cell_size: %u -> %u",
                  a->min_cell_size, b->min_cell_size)) < 0)
        return rc;
    for (size_t i = 0; i < a->naggregates && rc == 0; i++) {
        const struct policy_aggregate *x = &a->aggregates[i];
        const struct policy_aggregate *y = aggregate_named(b, x->name);
        snprintf(key, sizeof key, "aggregates.queries.%s", x->name);
        if (!y)
            rc = add(d, POLICY_DIFF_TIGHTENS, key, NULL, "aggregates: %s removed", x->name);
        else if (strcmp(x->basis, y->basis))
            rc = add(d, POLICY_DIFF_NEUTRAL, key, NULL, "aggregates: %s: basis changed", x->name);
        if (y && rc == 0 && define_changed(a, b, x->name))
            rc = add(d, POLICY_DIFF_LOOSENS, key, "a changed definition cannot be ranked",
                     "aggregates: %s: definition changed", x->name);
    }
    for (size_t i = 0; i < b->naggregates && rc == 0; i++) {
        const struct policy_aggregate *y = &b->aggregates[i];
        if (aggregate_named(a, y->name))
            continue;
        snprintf(key, sizeof key, "aggregates.queries.%s", y->name);
        rc = add(d, POLICY_DIFF_LOOSENS, key, "HQ may pull it", "aggregates: %s added", y->name);
    }
    if (rc == 0)
        rc = noise(d, &a->noise, &b->noise);
    return rc < 0 ? rc : 0;
}

/* ---- texts nothing enforces --------------------------------------------- */

static int channels_differ(const struct policy *a, const struct policy *b)
{
    if (a->npreferred_channels != b->npreferred_channels)
        return 1;
    for (size_t i = 0; i < a->npreferred_channels; i++)
        if (strcmp(a->preferred_channels[i], b->preferred_channels[i]))
            return 1;
    return 0;
}

static int locale(struct policy_diff *d, const struct policy *a, const struct policy *b)
{
    static const struct {
        const char *key;
        size_t off;
    } texts[] = {
        {"name", offsetof(struct policy, name)},
        {"locale.language", offsetof(struct policy, language)},
        {"locale.date_format", offsetof(struct policy, date_format)},
        {"locale.phone_example", offsetof(struct policy, phone_example)},
        {"locale.address_format", offsetof(struct policy, address_format)},
    };
    int rc;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *x = (const char *)a + texts[i].off, *y = (const char *)b + texts[i].off;
        if (strcmp(x, y) && (rc = add(d, POLICY_DIFF_NEUTRAL, texts[i].key, NULL,
                                      "%s: \"%.120s\" -> \"%.120s\"", texts[i].key, x, y)) < 0)
            return rc;
    }
    if (channels_differ(a, b) && (rc = add(d, POLICY_DIFF_NEUTRAL, "locale.preferred_channels",
                                           NULL, "locale.preferred_channels changed")) < 0)
        return rc;
    return 0;
}

/* ---- the whole ------------------------------------------------------------ */

int policy_diff(const struct policy *from, const struct policy *to, struct policy_diff **out,
                struct op_error *err)
{
    if (strcmp(from->region, to->region))
        return op_error_set(err, -EINVAL, "region",
                            "cannot compare policies of two regions (%s and %s)", from->region,
                            to->region);
    struct policy_diff *d = calloc(1, sizeof *d);
    if (!d)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc;
    if ((rc = top(d, from, to)) < 0 || (rc = fields(d, from, to)) < 0 ||
        (rc = customs(d, from, to)) < 0 || (rc = pins(d, from, to)) < 0 ||
        (rc = forbidden(d, from, to)) < 0 || (rc = consent(d, from, to)) < 0 ||
        (rc = retention(d, from, to)) < 0 || (rc = aggregates(d, from, to)) < 0 ||
        (rc = locale(d, from, to)) < 0) {
        policy_diff_free(d);
        return op_error_set(err, rc, NULL, "out of memory");
    }
    *out = d;
    return 0;
}

void policy_diff_free(struct policy_diff *d)
{
    if (!d)
        return;
    free(d->items);
    free(d);
}

const char *policy_diff_kind_tag(enum policy_diff_kind k)
{
    switch (k) {
    case POLICY_DIFF_LOOSENS:
        return "LOOSEN";
    case POLICY_DIFF_TIGHTENS:
        return "TIGHTEN";
    default:
        return "NEUTRAL";
    }
}

void policy_diff_summary(const struct policy_diff *d, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (!d->loosens && !d->tightens) {
        snprintf(out, cap, "no change of substance (%zu neutral)", d->neutral);
        return;
    }
    size_t used = 0;
    int w = snprintf(out, cap, "%zu loosen, %zu tighten, %zu neutral", d->loosens, d->tightens,
                     d->neutral);
    if (w < 0 || (size_t)w >= cap)
        return;
    used = (size_t)w;
    int first = 1;
    /* loosenings first: they are what a person must decide on */
    for (int pass = 0; pass < 2; pass++) {
        enum policy_diff_kind k = pass == 0 ? POLICY_DIFF_LOOSENS : POLICY_DIFF_TIGHTENS;
        for (size_t i = 0; i < d->n; i++) {
            if (d->items[i].kind != k)
                continue;
            w = snprintf(out + used, cap - used, "%s%s", first ? ": " : "; ", d->items[i].text);
            first = 0;
            if (w < 0 || used + (size_t)w >= cap - 4) {
                if (cap > 4 && used < cap - 4)
                    snprintf(out + used, cap - used, "...");
                else if (cap > 4)
                    memcpy(out + cap - 4, "...", 4);
                return;
            }
            used += (size_t)w;
        }
    }
}
