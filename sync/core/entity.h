/*
 * The CRM data model as data: one descriptor per entity naming its table
 * and its fields with their types and limits. The store, the CSV importer,
 * the exporters and (later) the region policy all read these descriptors,
 * so a field is declared once. The invariant: every column a descriptor
 * names exists in the schema (tests/unit/test_entity.c checks it).
 */
#ifndef OUTPOST_ENTITY_H
#define OUTPOST_ENTITY_H

#include <jansson.h>
#include <stddef.h>

#include "op_error.h"

enum field_type {
    FIELD_TEXT,     /* UTF-8 text up to max_len bytes */
    FIELD_EMAIL,    /* an e-mail address (local@domain) */
    FIELD_PHONE,    /* a phone number as written; the store adds an E.164 key */
    FIELD_COUNTRY,  /* ISO 3166-1 alpha-2, stored upper-case */
    FIELD_LANGUAGE, /* a BCP 47 language tag such as "de" or "pt-BR" */
    FIELD_DATE,     /* YYYY-MM-DD */
    FIELD_TIME,     /* ISO 8601 date-time in UTC, YYYY-MM-DDTHH:MM:SS[.fff]Z */
    FIELD_ENUM,     /* one of `values` */
    FIELD_MONEY,    /* integer amount in minor units */
    FIELD_CURRENCY, /* ISO 4217 alphabetic code, stored upper-case */
    FIELD_REF,      /* the id of a live record of entity `ref` */
    FIELD_BOOL,     /* true/false, stored 0/1 */
    FIELD_OBJECT,   /* a JSON object (custom fields, consent evidence) */
};

enum field_flags {
    FIELD_REQUIRED = 1u << 0, /* must be present and non-empty on create */
    FIELD_FILTER = 1u << 1,   /* lists may filter on it by equality */
    FIELD_INTERNAL = 1u << 2, /* never read from or shown to the outside (password hashes) */
};

struct entity_def;

struct field_def {
    const char *name; /* column name and JSON/CSV key */
    enum field_type type;
    unsigned flags;
    unsigned max_len;             /* for text-like types, in bytes */
    const char *const *values;    /* FIELD_ENUM: NULL-terminated allowed values */
    const struct entity_def *ref; /* FIELD_REF: the referenced entity */
    const char *dflt;             /* value used on create when absent, or NULL */
};

enum entity_flags {
    ENTITY_DEDUP = 1u << 0,      /* contacts: keep email_norm/phone_e164/name_key */
    ENTITY_SEARCH = 1u << 1,     /* has a <table>_fts full-text index */
    ENTITY_NODE_LOCAL = 1u << 2, /* never leaves the node: no outbox capture, and egress
                                    refuses it (staff accounts) */
};

struct entity_def {
    const char *name;   /* singular: "contact" */
    const char *plural; /* "contacts"; also the API collection name */
    const char *table;  /* SQL table */
    const struct field_def *fields;
    size_t nfields;
    unsigned flags;
};

/* Every entity. The common columns (id, version, created_at, updated_at,
 * deleted) are not in `fields`; owner_id, restricted and custom are. */
extern const struct entity_def entity_user;
extern const struct entity_def entity_contact;
extern const struct entity_def entity_organization;
extern const struct entity_def entity_contact_organization;
extern const struct entity_def entity_deal;
extern const struct entity_def entity_activity;
extern const struct entity_def entity_task;
extern const struct entity_def entity_note;
extern const struct entity_def entity_consent;

/* NULL-terminated list of all entities above. */
extern const struct entity_def *const entity_all[];

/* Looks up an entity by singular or plural name; NULL if unknown. */
const struct entity_def *entity_by_name(const char *name);

/* Looks up a field by name; NULL if the entity has none such. */
const struct field_def *entity_field(const struct entity_def *e, const char *name);

/* Checks one value against its field and returns it normalized (a new
 * reference the caller owns): country and currency codes upper-cased, text
 * trimmed of surrounding white space, "true"/"1" accepted for booleans when
 * given as strings, numbers accepted as strings for money. An empty string
 * or JSON null becomes JSON null. On failure returns -EINVAL and err names
 * the field and says what is expected. Reference existence is the store's
 * job, not this function's. */
int entity_normalize_value(const struct field_def *f, json_t *value, json_t **out,
                           struct op_error *err);

/* True for a valid ISO 4217 currency code (upper-case). */
int entity_is_currency(const char *code);

/* utf8_bad_offset with UTF8_REFUSE_CONTROLS (utf8.h): checks that `s` is
 * valid UTF-8 with no NUL and no C0 control characters
 * other than tab, CR and LF. Returns the byte offset of the first bad byte,
 * or -1 when the text is clean. */
long entity_utf8_bad_offset(const char *s, size_t len);

#endif
