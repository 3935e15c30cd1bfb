/*
 * libFuzzer target for sync/core/policy.c (policy_load_buffer). Beyond "no
 * crash, no leak, no overflow" it checks the loader's promises: a refused
 * input leaves *out untouched and says "NAME:LINE: KEY: ..." with a line
 * inside the input; an accepted one has a 64-digit hash, a region equal to
 * the file name, every string within its bounds, and every custom field's
 * own check runs on its pin values and a few probes without failing
 * unsafely.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_policy -max_len=300000 tests/fuzz/corpus/policy
 * (a -dict=FILE of the key names in docs/REGION_POLICY.md helps). Inputs
 * are loaded as "BR.yaml", so seeds should say region: BR to get past the
 * region check.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "policy.h"

static void must_nul(const char *s, size_t cap, const char *what)
{
    must(memchr(s, '\0', cap) != NULL, what);
}

static void probe(const struct policy_custom_field *f, json_t *v)
{
    json_t *out = NULL;
    struct op_error err;
    op_error_clear(&err);
    if (!v)
        return;
    int rc = policy_custom_check(f, v, &out, &err);
    if (rc == 0) {
        must(out != NULL, "custom check gave no value");
        json_decref(out);
    } else {
        must(rc < 0 && err.msg[0], "custom check failed without a message");
    }
    json_decref(v);
}

static void check_policy(const struct policy *p)
{
    must(strlen(p->hash) == 64, "hash is 64 hex digits");
    must(!strcmp(p->region, "BR"), "region equals the file name");
    must((unsigned)p->default_class < POLICY_CLASS_COUNT, "default class in range");
    must_nul(p->name, sizeof p->name, "name terminated");
    must_nul(p->address_format, sizeof p->address_format, "address_format terminated");
    for (size_t i = 0; i < p->nfields; i++) {
        must(p->fields[i].entity != NULL, "field rule has an entity");
        must(p->fields[i].basis[0] != '\0', "field rule has a basis");
        must(policy_class_of(p, p->fields[i].entity, p->fields[i].field) == p->fields[i].cls,
             "a listed field has its listed class");
    }
    for (size_t i = 0; i < p->nforbidden; i++)
        must(policy_forbidden_field(p, p->forbidden[i].entity, p->forbidden[i].field) != NULL,
             "forbidden lookup finds the rule");
    for (size_t i = 0; i < p->ncustom; i++) {
        const struct policy_custom_field *f = &p->custom[i];
        must(policy_custom_field(p, f->entity, f->name) == f, "custom lookup finds the field");
        must(f->type != POLICY_CUSTOM_ENUM || (f->nvalues > 0 && !f->values[f->nvalues]),
             "enum values non-empty and NULL-terminated");
        probe(f, json_string("x"));
        probe(f, json_string(" 2024-02-29 "));
        probe(f, json_integer(-1));
        probe(f, json_true());
        for (size_t j = 0; j < f->nvalues; j++)
            probe(f, json_string(f->values[j]));
    }
    for (size_t i = 0; i < p->npins; i++) {
        must(p->pins[i].nvalues > 0 && !p->pins[i].values[p->pins[i].nvalues],
             "pin values non-empty and NULL-terminated");
    }
    for (size_t i = 0; i < p->nconsent; i++) {
        const struct policy_consent_rule *c = &p->consent[i];
        must(policy_consent_for(p, c->channel) == c, "consent lookup finds the rule");
        must(c->mode == POLICY_CONSENT_DOUBLE_OPT_IN
                 ? c->token_ttl_hours >= 1 && c->token_ttl_hours <= 720
                 : c->token_ttl_hours == 0,
             "token lifetime only with double opt-in, 1..720");
    }
    for (size_t i = 0; i < p->nretention; i++)
        must(p->retention[i].days >= 1 && p->retention[i].days <= 36500, "retention days");
    if (p->naggregates)
        must(p->min_cell_size >= 2 && p->min_cell_size <= 1000, "min cell size");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy *p = (struct policy *)1; /* must stay as is on failure */
    struct op_error err;
    op_error_clear(&err);
    int rc = policy_load_buffer("BR.yaml", (const char *)data, size, &p, &err);
    if (rc < 0) {
        must(p == (struct policy *)1, "*out untouched on failure");
        must(err.msg[0] != '\0', "an error has a message");
        if (rc == -EINVAL) {
            long line = 0;
            must(sscanf(err.msg, "BR.yaml:%ld: ", &line) == 1, "message starts NAME:LINE:");
            long lines = 1;
            for (size_t i = 0; i < size; i++) /* LF, CR and CRLF, as YAML counts */
                lines +=
                    data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n'));
            must(line >= 1 && (line <= lines + 1 || size > POLICY_MAX_BYTES),
                 "line within the input");
        }
        return 0;
    }
    must(rc == 0 && p != NULL, "success gives a policy");
    check_policy(p);
    policy_free(p);
    return 0;
}
