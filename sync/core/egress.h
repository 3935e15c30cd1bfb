/*
 * The one egress function: given a record, its entity and the region
 * policy, it returns exactly what may leave the node (or nothing) and
 * counts what it withheld or transformed. Design and rules:
 * docs/EGRESS.md.
 *
 * Invariant: struct egress_record is opaque and only egress_project (and
 * egress_tombstone, for the ops that carry no data) creates one, so network code that accepts
 * nothing but `const struct egress_record *` can only send what the policy allows.
 * tests/tools/check_egress.sh keeps the definition private to egress.c
 * and network APIs out of files that can read the store.
 */
#ifndef OUTPOST_EGRESS_H
#define OUTPOST_EGRESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "entity.h"
#include "op_error.h"
#include "policy.h"

#define EGRESS_KEY_BYTES 32
#define EGRESS_PSEUDONYM_PREFIX "h:"
/* A pseudonym is HMAC-SHA-256 truncated to its first 128 bits (RFC 2104
 * section 5 allows half the hash): collisions stay out of reach (about
 * 1e-21 for a billion values) and the wire carries 16 incompressible
 * bytes a value instead of 32. */
#define EGRESS_PSEUDONYM_BYTES 16
/* "h:" + 32 hex digits + NUL */
#define EGRESS_PSEUDONYM_LEN (2 + 2 * EGRESS_PSEUDONYM_BYTES + 1)

/* What happened to one value. */
enum egress_outcome {
    EGRESS_AS_IS = 0,     /* left unchanged */
    EGRESS_PSEUDONYMIZED, /* left as "h:" + hex of HMAC-SHA-256, first 128 bits */
    EGRESS_WITHHELD,      /* did not leave */
    EGRESS_OUTCOME_COUNT
};

/* Why: the field's class, or something that overrides it. */
enum egress_reason {
    EGRESS_BY_CLASS = 0,  /* the policy's class of the field decided */
    EGRESS_RESTRICTED,    /* the record is flagged restricted: nothing leaves */
    EGRESS_PINNED,        /* a pin_records rule matched: nothing leaves */
    EGRESS_UNKNOWN_FIELD, /* not in the entity descriptor: withheld (fail closed) */
    EGRESS_INTERNAL,      /* FIELD_INTERNAL: never leaves */
};

/* Counts of non-null values and of records; add with egress_counts_add. */
struct egress_counts {
    uint64_t records;            /* records given to egress_project */
    uint64_t records_out;        /* records that may leave (a projection was returned) */
    uint64_t records_restricted; /* withheld whole: flagged restricted */
    uint64_t records_pinned;     /* withheld whole: a pin rule matched */
    /* values by the class of their field and what happened to them; values
     * of records withheld whole count as withheld */
    uint64_t values[POLICY_CLASS_COUNT][EGRESS_OUTCOME_COUNT];
    uint64_t unknown;  /* values of fields the descriptor does not know (withheld) */
    uint64_t internal; /* values of FIELD_INTERNAL fields (withheld) */
};

/* Opaque: defined in egress.c only. */
struct egress_record;

/* What a record in a segment asks HQ to do (docs/EGRESS.md). UPSERT and
 * DELETE carry a projection; ERASE, PURGE and WITHDRAW carry a tombstone,
 * only {"id":ID,"version":N}. */
enum egress_op {
    EGRESS_OP_UPSERT = 0,
    EGRESS_OP_DELETE,
    EGRESS_OP_ERASE,
    EGRESS_OP_PURGE,
    EGRESS_OP_WITHDRAW,
    EGRESS_OP_AGGREGATE, /* an aggregate answer or refusal (egress_aggregate), entity "aggregate" */
    EGRESS_OP_PATCH,     /* the fields of an upsert that changed against a base (egress_patch) */
    EGRESS_OP_COUNT
};

/* One value's fate, for callers that report per field. `field` is the
 * built-in name or "custom.NAME" (borrowed for the call); `cls` is the
 * policy class (POLICY_LOCAL_ONLY for unknown and internal fields). */
struct egress_event {
    const char *field;
    enum policy_class cls;
    enum egress_outcome outcome;
    enum egress_reason reason;
};
typedef void (*egress_trace_fn)(void *ctx, const struct egress_event *ev);

/* Projects `record` (a store record of entity e: meta fields, descriptor
 * fields, "custom"; borrowed, not modified) under policy p with the node's
 * pseudonymization key. On success returns 0 and sets *out to the
 * projection (free with egress_record_free), or to NULL when nothing may
 * leave (restricted or pinned). `counts`, if not NULL, is added to (not
 * cleared). Returns -EPERM for a node-local entity (ENTITY_NODE_LOCAL:
 * user accounts never leave, whatever the policy); -EINVAL when the
 * record is not an object or has no string "id" (err says which),
 * -ENOMEM. */
int egress_project(const struct policy *p, const unsigned char key[EGRESS_KEY_BYTES],
                   const struct entity_def *e, json_t *record, struct egress_record **out,
                   struct egress_counts *counts, struct op_error *err);

/* 1 when egress_project would withhold `record` whole: it is restricted
 * (anything but false or null), it matches a pin_records rule of p (p may
 * be NULL: no pins), or it is not an object. 0 otherwise. Pure: the
 * relation rules (what is about a withheld record) need the store and live
 * in appliance/store/residency.c. */
int egress_withheld(const struct policy *p, const struct entity_def *e, json_t *record);

/* Same, and calls trace (if not NULL) once per non-null value: built-in
 * fields in descriptor order, then custom keys, then unknown keys. When it
 * fails, some values may have been traced already; counts are untouched. */
int egress_project_traced(const struct policy *p, const unsigned char key[EGRESS_KEY_BYTES],
                          const struct entity_def *e, json_t *record, struct egress_record **out,
                          struct egress_counts *counts, egress_trace_fn trace, void *ctx,
                          struct op_error *err);

/* What the store already worked out about a record when it wrote it, so
 * that egress need not work it out again (docs/EGRESS.md, "Phone numbers
 * from the store"). `region` is the region code the store read numbers
 * under (store_region); `phone_key` the key phone_parse made at write from
 * the record's "phone" as stored, or NULL or "" when there is none.
 * Egress takes the key in place of parsing the number only when region is
 * the policy's region, the key is a key as phone_parse writes them ("+"
 * and digits, perhaps ";ext=" and digits) and the value is a string
 * without NUL bytes:
 * otherwise it parses, as without it. The result is the same either way;
 * tests/unit/sync/core/test_egress_phone_key.c runs both over every
 * locale of tests/tools/gen_contacts. */
struct egress_known {
    const char *region;
    const char *phone_key;
};

/* egress_project, taking what the store knows (`known`, borrowed; NULL:
 * nothing, the same as egress_project). */
int egress_project_known(const struct policy *p, const unsigned char key[EGRESS_KEY_BYTES],
                         const struct entity_def *e, json_t *record,
                         const struct egress_known *known, struct egress_record **out,
                         struct egress_counts *counts, struct op_error *err);

/* The projected record as compact JSON: the bytes that may leave.
 * Borrowed; NUL-terminated; valid until egress_record_free. */
/* Whether `record` (an object as the store returns it) of entity e is
 * past the retention p gives e at now_ms (Unix ms), by the rule the purge
 * uses (policy_retention_age_field, policy_retention_cutoff_ms): its
 * activity's occurred_at, or its updated_at, is before the cutoff,
 * compared as the purge's SQL compares them (the ISO text against the
 * cutoff as hlc_format_iso writes it). Pure: reads nothing else, keeps
 * nothing. Returns 1 when it is past (the segmenter sends nothing of it,
 * as for a purged record), 0 when it is not or p sets no retention for e,
 * -EINVAL when record is not an object or its age field is missing or
 * not a UTC time: callers fail closed and send nothing then either. */
int egress_expired(const struct policy *p, const struct entity_def *e, json_t *record,
                   int64_t now_ms);

const char *egress_record_json(const struct egress_record *r);
size_t egress_record_len(const struct egress_record *r);

/* The record's entity and id (borrowed). */
const struct entity_def *egress_record_entity(const struct egress_record *r);
const char *egress_record_id(const struct egress_record *r);

/* The hash of the policy that decided (p->hash), recorded with every
 * egress. Borrowed. */
const char *egress_record_policy_hash(const struct egress_record *r);

/* NULL is allowed. */
void egress_record_free(struct egress_record *r);

/* The record's bytes (egress_record_json) parsed, and their field
 * digests (projection_field_digests), made on first use and kept with the
 * record: the cut compares every record with what HQ holds and then cuts
 * its patch, and both need them. Borrowed and read-only, valid until
 * egress_record_free; NULL when out of memory. Made from the bytes that
 * leave, never from the record they were projected from. */
const json_t *egress_record_object(const struct egress_record *r);
const json_t *egress_record_field_digests(const struct egress_record *r);

/* "upsert", "delete", "erase", "purge", "withdraw", "aggregate", "patch"; "" for a value
 * outside the enum. */
const char *egress_op_name(enum egress_op op);

/* The op named `name`. Returns 0 and *out, or -EINVAL for anything else
 * (case matters). */
int egress_op_parse(const char *name, enum egress_op *out);

/* The op a record travels as: a tombstone's op; for a projection UPSERT,
 * or DELETE when the record has "deleted" true or a non-zero number. */
enum egress_op egress_record_op(const struct egress_record *r);

/* Makes the tombstone of record `id` (version `version`) of entity e for
 * op ERASE, PURGE or WITHDRAW: JSON {"id":ID,"version":N}, policy hash
 * p->hash, nothing else of the record. Returns 0 and *out (free with
 * egress_record_free); -EPERM for a node-local entity; -EINVAL for another
 * op, an empty or too long id
 * (field "id") or a negative version (field "version"); -ENOMEM. */
int egress_tombstone(const struct policy *p, const struct entity_def *e, const char *id,
                     int64_t version, enum egress_op op, struct egress_record **out,
                     struct op_error *err);

/* HQ side: checks that `record` (borrowed) is something egress_project
 * (op UPSERT/DELETE), egress_patch (PATCH: "base" an integer from 0 to
 * "version", "unset" an array of member names not also set, the other
 * members as for UPSERT) or egress_tombstone (ERASE/PURGE/WITHDRAW) could have
 * produced for entity e under policy p: only meta fields, descriptor
 * fields and custom keys whose class lets them leave (as is for
 * exportable, and local_primary when p->transfer_allowed; pseudonymize
 * only as "h:" + 32 lower-case hex or null); no internal, unknown or
 * withheld field; a tombstone only "id" and "version"; never a node-local
 * entity (user accounts). Returns 0; -EPERM with err->field the offending
 * field ("email", "custom.cpf") and a
 * message; -EINVAL when the record is malformed (not an object, no string
 * id, a bad op, "custom" not an object). */
int egress_verify(const struct policy *p, const struct entity_def *e, enum egress_op op,
                  json_t *record, struct op_error *err);

/* A patch (docs/SEGMENT_FORMAT.md, "Patches"): the members of `whole`
 * (an UPSERT projection from egress_project, borrowed) whose field digest
 * (projection_field_digests) differs from `base_fields`, the digests of
 * the projection HQ holds at version `base`, and the names of the members
 * `base_fields` has that `whole` lacks, as
 * {"id","version","base":BASE,CHANGED...,"unset":[NAMES]} ("unset" only
 * when there are some). Nothing but bytes of `whole` and field names HQ
 * already holds: residency is egress_project's. Returns 0 and *out
 * (op PATCH, free with egress_record_free); -EINVAL when whole is not an
 * UPSERT, base is negative or above whole's version, or base_fields is
 * not an object; -ENOMEM. */
int egress_patch(const struct egress_record *whole, int64_t base, const json_t *base_fields,
                 struct egress_record **out, struct op_error *err);

/* HQ side: what a patch makes of the record HQ holds. `base` is the
 * stored projection (an object), `patch` a patch record egress_verify
 * accepted (op PATCH). Sets *out (free()) to the merged record as compact
 * JSON with the members in the order egress_project writes them (meta
 * fields, descriptor fields, "custom"), so the text equals what the whole
 * upsert of the same projection would have carried. Returns 0; -EINVAL
 * for a base that is not an object; -ENOMEM. */
int egress_patch_merge(const struct entity_def *e, const json_t *base, const json_t *patch,
                       char **out, struct op_error *err);

/* An aggregate's answer (or refusal) as a segment record, entity
 * "aggregate", op AGGREGATE, policy hash p->hash: `json` (borrowed) must
 * pass egress_verify_aggregate under p, and is carried byte for byte.
 * Returns 0 and *out; -EPERM or -EINVAL as egress_verify_aggregate;
 * -ENOMEM. docs/AGGREGATES.md. */
int egress_aggregate(const struct policy *p, const char *json, size_t len,
                     struct egress_record **out, struct op_error *err);

/* Both sides: checks that `record` is an aggregate answer that may leave
 * under p: made under p (its policy_hash), for an aggregate p's
 * aggregates.queries names, with p's minimum cell size, holding only the
 * answer's keys, string labels, and cells whose count is null (marked
 * suppressed), 0, or at least the minimum cell size; or a refusal
 * {"aggregate","request","region","policy_hash","refused","computed_at"}. Returns 0;
 * -EPERM (a count under the minimum, an aggregate the policy does not
 * allow) or -EINVAL (any other shape) with err->field the key. */
int egress_verify_aggregate(const struct policy *p, const json_t *record, struct op_error *err);

/* dst += src, field by field. */
void egress_counts_add(struct egress_counts *dst, const struct egress_counts *src);

/* Writes "h:" + hex HMAC-SHA-256(key, value) of an already normalized
 * value of len bytes to out. Returns 0, or -EIO if the MAC fails. */
int egress_pseudonym(const unsigned char key[EGRESS_KEY_BYTES], const char *value, size_t len,
                     char out[EGRESS_PSEUDONYM_LEN]);

/* "as-is", "pseudonymized", "withheld". */
const char *egress_outcome_name(enum egress_outcome o);

#endif
