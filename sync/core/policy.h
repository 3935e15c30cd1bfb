/*
 * A region policy: the rules that make a node legal in its country, loaded
 * from one YAML file per region (schema/regions/<CODE>.yaml, format in
 * docs/REGION_POLICY.md). This header is the in-memory model every other
 * part reads: the egress function (what may leave), the store and the
 * importer (forbidden and custom fields), consent, retention and
 * aggregates.
 *
 * Invariants: a struct policy is immutable once loaded (SIGHUP swaps the
 * whole object); every field of every entity has exactly one class (listed
 * or default_class); every rule carries the legal basis it follows; the
 * hash is the SHA-256 of the file's bytes and is recorded with every
 * egress.
 */
#ifndef OUTPOST_POLICY_H
#define OUTPOST_POLICY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "entity.h"
#include "op_error.h"
#include "quiet_hours.h"

#define POLICY_MAX_BYTES (256 * 1024)
#define POLICY_HASH_HEX 65 /* SHA-256 as lower-case hex, with NUL */
#define POLICY_FORMAT "outpost-region-policy/1"

enum policy_class {
    POLICY_LOCAL_ONLY = 0, /* never leaves */
    POLICY_LOCAL_PRIMARY,  /* system of record here; a copy leaves only if transfer.allowed */
    POLICY_PSEUDONYMIZE,   /* leaves only as HMAC-SHA-256 of the normalized value */
    POLICY_EXPORTABLE,     /* leaves as is */
    POLICY_AGGREGATE_ONLY, /* leaves only inside aggregates */
    POLICY_CLASS_COUNT
};

enum policy_consent_mode {
    POLICY_CONSENT_DOUBLE_OPT_IN = 0, /* pending until confirmed through a single-use token */
    POLICY_CONSENT_SINGLE_OPT_IN,     /* granted when recorded with evidence */
    POLICY_CONSENT_OPT_OUT,           /* allowed unless withdrawn or suppressed */
};

enum policy_custom_type {
    POLICY_CUSTOM_TEXT = 0,
    POLICY_CUSTOM_ENUM,
    POLICY_CUSTOM_INTEGER,
    POLICY_CUSTOM_DATE,
    POLICY_CUSTOM_BOOLEAN,
};

/* The class of one field (a built-in field or "custom.NAME"). */
struct policy_field_rule {
    const struct entity_def *entity;
    char field[80]; /* "email", "custom.cpf" */
    enum policy_class cls;
    char basis[256];
    int line; /* where in the file, for messages */
};

/* A field the region's law or culture forbids collecting. */
struct policy_forbidden {
    const struct entity_def *entity;
    char field[80];
    char reason[256];
    char basis[256];
    int line;
};

struct policy_label {
    char lang[16];
    char text[128];
};

struct policy_custom_field {
    const struct entity_def *entity;
    char name[64]; /* stored as custom[name] */
    enum policy_custom_type type;
    char pattern[256]; /* POSIX extended regex for text, "" if none */
    void *regex;       /* `pattern` compiled (a regex_t *), NULL if none; owned */
    char **values;     /* enum: allowed values (also NULL-terminated) */
    size_t nvalues;
    unsigned max_length; /* bytes, text only; 0 = 200 */
    int required;
    struct policy_label *labels;
    size_t nlabels;
    char basis[256];
    int line;
};

/* Records that stay on the node as a whole: entity records whose `field`
 * (built-in or "custom.NAME") has one of `values`. The values are stored
 * normalized the way the store keeps them (country codes upper-case, text
 * trimmed; integers in decimal, booleans "true"/"false"), so a plain string
 * comparison with the stored value decides. */
struct policy_pin {
    const struct entity_def *entity;
    char field[80];
    char **values; /* also NULL-terminated */
    size_t nvalues;
    char basis[256];
    int line;
};

struct policy_consent_rule {
    char channel[32]; /* an activity channel: email, sms, call, ... */
    enum policy_consent_mode mode;
    unsigned token_ttl_hours; /* double opt-in: how long a confirmation token lives */
    char basis[256];
    int line;
};

struct policy_retention {
    const struct entity_def *entity;
    unsigned days;
    char basis[256];
    int line;
};

struct policy_aggregate {
    char name[64]; /* one of the built-in whitelisted queries */
    int standing;  /* listed in aggregates.standing: sent unasked, once per grid point */
    char basis[256];
    int line;
};

/* aggregates.define: an aggregate the profile adds (docs/AGGREGATES.md,
 * "Aggregates a profile defines"): a count of one entity's live records
 * by one or two dimensions, each an entry of policy_aggregate_dims[], so
 * the engine never reads a column name from the file. */
enum policy_grain {
    POLICY_GRAIN_NONE = 0, /* the value as stored (codes, enums, folded text) */
    POLICY_GRAIN_WEEK,     /* a date by the Monday of its ISO week */
    POLICY_GRAIN_MONTH,
    POLICY_GRAIN_QUARTER,
};

/* What a dimension is, and so how it may be counted. */
enum policy_dim_kind {
    POLICY_DIM_CODE, /* a closed or coded value: enum, language, country */
    POLICY_DIM_TEXT, /* free text the engine trims and folds under k into (other) */
    POLICY_DIM_DATE, /* a date or time: only with a grain */
};

/* A field a defined aggregate may count by. `column` is its position in
 * the entity's query define_ENTITY in sql/aggregate.sql. */
struct policy_aggregate_dim {
    const char *entity, *field;
    enum policy_dim_kind kind;
    unsigned column;
};

/* The fields a defined aggregate may count by, NULL-ended (entity NULL). */
extern const struct policy_aggregate_dim policy_aggregate_dims[];

#define POLICY_DEFINE_MAX 32

struct policy_aggregate_define {
    char name[49];                           /* [a-z0-9_]{3,48}, not a built-in name */
    const struct policy_aggregate_dim *rows; /* from policy_aggregate_dims[] */
    const struct policy_aggregate_dim *cols; /* NULL: one column "all" */
    enum policy_grain grain;                 /* for a date dimension */
    char qualified[2][64];                   /* "entity.field" of rows, cols */
    int line;
};

/* "week", "month", "quarter" ("" for none). */
const char *policy_grain_name(enum policy_grain g);

/* aggregates.noise: calibrated noise on the counts of every aggregate
 * answer (docs/AGGREGATES.md), with a privacy budget per period. Epsilon
 * is kept in millionths so spending adds integers exactly. */
enum policy_noise_period {
    POLICY_NOISE_MONTH = 0,
    POLICY_NOISE_QUARTER,
    POLICY_NOISE_YEAR,
};

struct policy_noise {
    int on;                          /* the section is present */
    uint32_t epsilon_micro;          /* spent by one answer */
    uint32_t budget_micro;           /* at most this much per period */
    enum policy_noise_period period; /* the calendar period a budget lasts */
    int line;
};

/* "month", "quarter", "year". */
const char *policy_noise_period_name(enum policy_noise_period p);

struct policy {
    char path[1024];
    char hash[POLICY_HASH_HEX];
    char region[16]; /* "EU-DE" */
    char country[3]; /* ISO 3166-1 alpha-2 */
    char name[128];
    /* locale */
    char language[16];
    char date_format[32];
    char phone_example[32];
    char address_format[256];
    char **preferred_channels;
    size_t npreferred_channels;
    char time_zone[QUIET_HOURS_ZONE_MAX]; /* IANA zone, "" when not set */
    struct quiet_hours quiet_sms;         /* locale.quiet_hours.sms */
    struct quiet_hours quiet_call;        /* locale.quiet_hours.call */
    /* transfer of local_primary copies */
    int transfer_allowed;
    char transfer_basis[256];
    enum policy_class default_class;
    char default_basis[256];

    struct policy_field_rule *fields;
    size_t nfields;
    struct policy_forbidden *forbidden;
    size_t nforbidden;
    struct policy_custom_field *custom;
    size_t ncustom;
    struct policy_pin *pins;
    size_t npins;
    struct policy_consent_rule *consent;
    size_t nconsent;
    struct policy_retention *retention;
    size_t nretention;
    unsigned min_cell_size;
    struct policy_aggregate *aggregates;
    size_t naggregates;
    struct policy_aggregate_define *defines;
    size_t ndefines;
    struct policy_noise noise;
};

/* The built-in aggregate queries a policy may name, NULL-terminated. */
extern const char *const policy_aggregate_queries[];

/* The aggregates.define entry named `name`, or NULL. */
const struct policy_aggregate_define *policy_define_named(const struct policy *p, const char *name);

/* Finds <region>.yaml: in $OUTPOST_REGIONS_DIR when set, then the installed
 * directory, then the source tree's schema/regions (uninstalled builds).
 * The region name must be A-Z, 0-9 and '-' (so it cannot name another
 * path). Writes the path to out (cap bytes) and returns 0; -EINVAL for a
 * bad name, -ENOENT (the message lists the places looked in),
 * -ENAMETOOLONG if the path does not fit. */
int policy_find_file(const char *region, char *out, size_t cap, struct op_error *err);

/* Loads and validates a policy file. On failure returns -EINVAL (or a
 * negative errno for I/O) and err->msg reads "FILE:LINE: KEY: what is
 * wrong" (the line of the offending key or value). *out is freed with
 * policy_free. */
int policy_load_file(const char *path, struct policy **out, struct op_error *err);

/* Same, from memory; `name` stands in for the file name in messages. */
int policy_load_buffer(const char *name, const char *data, size_t len, struct policy **out,
                       struct op_error *err);

/* Same, for text whose name says nothing of its region (a policy from
 * HQ's mailbox, a file an administrator names): `region` is what the
 * file's `region` must say (else "NAME:LINE: region: \"KE\" is not RU, the
 * region it is loaded for"), and `name` stands for the text in messages. */
int policy_load_buffer_for(const char *name, const char *region, const char *data, size_t len,
                           struct policy **out, struct op_error *err);

/* policy_load_file for a file whose name says nothing of its region:
 * `region` is what its `region` must say, as for policy_load_buffer_for. */
int policy_load_file_for(const char *path, const char *region, struct policy **out,
                         struct op_error *err);

void policy_free(struct policy *p);

/* The class of a field of an entity ("email", "custom.cpf"); the listed
 * rule or default_class. */
enum policy_class policy_class_of(const struct policy *p, const struct entity_def *e,
                                  const char *field);

/* The forbidden rule for a field, or NULL. */
const struct policy_forbidden *
policy_forbidden_field(const struct policy *p, const struct entity_def *e, const char *field);

/* The custom field definition, or NULL. */
const struct policy_custom_field *policy_custom_field(const struct policy *p,
                                                      const struct entity_def *e, const char *name);

/* Checks a value for custom field f (from the API or an import) against
 * its type, pattern, enumeration and length, and returns it normalized in
 * *normalized (a new reference: text trimmed, integers as JSON integers,
 * booleans as JSON booleans; "" or null become JSON null). On failure
 * returns -EINVAL and err names the field ("custom.cpf: ..."). */
int policy_custom_check(const struct policy_custom_field *f, json_t *value, json_t **normalized,
                        struct op_error *err);

/* The consent rule for a channel, or NULL (no rule: nothing may be sent
 * for marketing on that channel). */
const struct policy_consent_rule *policy_consent_for(const struct policy *p, const char *channel);

/* Retention, the one rule the purge (appliance/store/retention.c) and egress
 * (egress_expired) share; docs/SUBJECT_RIGHTS.md, "Retention". */

/* The record field a record's age counts from: "occurred_at" for
 * activities (when the call or visit happened, whenever it was entered),
 * "updated_at" (its last change) for every other entity, so a note or
 * task still being worked on is not stale. */
const char *policy_retention_age_field(const struct entity_def *e);

/* The retention rule for e, or NULL when p keeps e's records without a
 * limit (always for users: accounts are disabled, not purged). */
const struct policy_retention *policy_retention_for(const struct policy *p,
                                                    const struct entity_def *e);

/* The cutoff in Unix milliseconds at now_ms: a record whose age field is
 * before it is past its retention (now_ms - r->days days; 0 when that is
 * before the epoch). */
uint64_t policy_retention_cutoff_ms(const struct policy_retention *r, uint64_t now_ms);

/* "local_only", "local_primary", "pseudonymize", "exportable",
 * "aggregate_only". */
const char *policy_class_name(enum policy_class c);

/* "double_opt_in", "single_opt_in", "opt_out". */
const char *policy_consent_mode_name(enum policy_consent_mode m);

#endif
