/*
 * The region policy loader: reads one YAML file (docs/REGION_POLICY.md)
 * with libyaml into the immutable struct policy of policy.h, checking every
 * name against the entity descriptors of entity.c. The invariant: a policy
 * handed out has passed every rule of the format, and anything else is
 * refused with "FILE:LINE: KEY: what is wrong" and frees all it built. A
 * typo must never weaken a rule silently, so unknown keys, duplicate keys
 * and YAML features a reader could misread (anchors, aliases, tags, several
 * documents) are errors, not warnings. Errors about the file as a whole use
 * the key "(file)"; errors libyaml or the YAML features raise use "(yaml)".
 */
#include "policy.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "codec.h"
#include "outpost_config.h"

const char *const policy_aggregate_queries[] = {
    "contacts_by_country",
    "contacts_by_language",
    "deals_by_stage",
    "deals_by_stage_month",
    "activities_by_channel_month",
    "consents_by_channel_status",
    /* the shipped aggregates (appliance/store/aggregate.c); the names
     * above are older ones a file may still carry, refused when asked */
    "contacts_by_segment_district",
    "consent_rates_by_channel_purpose",
    "activities_by_channel_week",
    "pipeline_by_stage_month",
    "conversion_by_channel",
    "outreach_by_channel_country",
    "completeness_by_field",
    NULL,
};

/* The fields an aggregates.define entry may count by: codes and enums as
 * they are, free text the engine folds (an industry, a first-level
 * district), dates only by a grain. Names, addresses, e-mail, phone,
 * locality, postal code, job title and birth date are not here: they name
 * or nearly name a person. `column` is the field's position in the
 * entity's query define_ENTITY in sql/aggregate.sql (appliance/store/sql). */
const struct policy_aggregate_dim policy_aggregate_dims[] = {
    {"contact", "language", POLICY_DIM_CODE, 0},
    {"contact", "country", POLICY_DIM_CODE, 1},
    {"contact", "region", POLICY_DIM_TEXT, 2},
    {"organization", "industry", POLICY_DIM_TEXT, 0},
    {"organization", "country", POLICY_DIM_CODE, 1},
    {"activity", "channel", POLICY_DIM_CODE, 0},
    {"activity", "direction", POLICY_DIM_CODE, 1},
    {"activity", "occurred_at", POLICY_DIM_DATE, 2},
    {"deal", "stage", POLICY_DIM_CODE, 0},
    {"deal", "currency", POLICY_DIM_CODE, 1},
    {"deal", "expected_close", POLICY_DIM_DATE, 2},
    {NULL, NULL, POLICY_DIM_CODE, 0},
};

static const char *const define_entities[] = {"contact", "organization", "activity", "deal", NULL};
static const char *const grain_names[] = {"", "week", "month", "quarter", NULL};

const char *policy_grain_name(enum policy_grain g)
{
    return (unsigned)g <= POLICY_GRAIN_QUARTER ? grain_names[g] : "?";
}

static const char *const class_names[POLICY_CLASS_COUNT + 1] = {
    "local_only", "local_primary", "pseudonymize", "exportable", "aggregate_only", NULL,
};
static const char *const mode_names[] = {"double_opt_in", "single_opt_in", "opt_out", NULL};
static const char *const type_names[] = {"text", "enum", "integer", "date", "boolean", NULL};
/* The common columns every record carries (not in the descriptors). */
static const char *const meta_fields[] = {"id",         "version", "created_at",
                                          "updated_at", "deleted", NULL};

#define CUSTOM_TEXT_DEFAULT_MAX 200
#define CUSTOM_TEXT_MAX 16384 /* the store caps the whole custom object at 16 KiB */
#define VALUE_MAX 200         /* enum and pin values */
#define TTL_DEFAULT 72
#define KEY_MAX 192

/* ---- loading context and errors ----------------------------------------- */

struct ld {
    const char *name; /* the file name in messages */
    const char *data; /* the file's bytes */
    size_t len;
    yaml_document_t *doc;
    struct policy *p;
    struct op_error *err;
    const char *region; /* what `region` must say; NULL: the file name without .yaml */
};

static int fail_at(struct ld *l, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct ld *l, int line, const char *key, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return op_error_set(l->err, -EINVAL, key, "%s:%d: %s: %s", l->name, line, key, what);
}

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

#define fail(l, n, key, ...) fail_at(l, line_of(n), key, __VA_ARGS__)

static int oom(struct ld *l)
{
    return op_error_set(l->err, -ENOMEM, NULL, "%s: out of memory", l->name);
}

static yaml_node_t *node_at(struct ld *l, int index)
{
    return yaml_document_get_node(l->doc, index);
}

/* "a.b" + "c" -> "a.b.c"; the top level has an empty path. */
static void join(char *out, const char *path, const char *key)
{
    /* A key path cut at KEY_MAX still says where; the line says the rest. */
    if (snprintf(out, KEY_MAX, "%s%s%s", path, *path ? "." : "", key) < 0)
        out[0] = '\0';
}

static void joinidx(char *out, const char *path, size_t i)
{
    if (snprintf(out, KEY_MAX, "%s[%zu]", path, i) < 0)
        out[0] = '\0';
}

static int in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(list[i], s))
            return (int)i;
    return -1;
}

static void list_join(char *buf, size_t cap, const char *const *list)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && o < cap; i++) {
        int n = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", list[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

/* ---- scalars ------------------------------------------------------------ */

static const char *kind_of(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a single value";
    }
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* The text of a scalar node; refuses lists and mappings and text a person
 * could not see (NUL, control characters written as escapes). A YAML null
 * reads as "". */
static int scalar(struct ld *l, const yaml_node_t *n, const char *key, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail(l, n, key, "expected a single value, not %s", kind_of(n));
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    long bad = entity_utf8_bad_offset(s, len);
    if (bad >= 0)
        return fail(l, n, key, "control character or NUL at byte %ld of the value", bad + 1);
    *out = is_null(n) ? "" : s;
    return 0;
}

/* Copies a text value into buf (cap bytes with the NUL). */
static int text(struct ld *l, const yaml_node_t *n, const char *key, char *buf, size_t cap,
                int nonempty)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    size_t len = strlen(s);
    if (len >= cap)
        return fail(l, n, key, "longer than %zu bytes (%zu)", cap - 1, len);
    int blank = 1;
    for (const char *c = s; *c && blank; c++)
        blank = isspace((unsigned char)*c) != 0;
    if (nonempty && blank)
        return fail(l, n, key, "empty");
    memcpy(buf, s, len + 1);
    return 0;
}

static int basis(struct ld *l, const yaml_node_t *n, const char *key, char *buf, size_t cap)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    int blank = 1;
    for (const char *c = s; *c && blank; c++)
        blank = isspace((unsigned char)*c) != 0;
    if (blank)
        return fail(l, n, key,
                    "empty; every rule names the law and article it follows (or \"design: why\")");
    return text(l, n, key, buf, cap, 1);
}

static int uint_in(struct ld *l, const yaml_node_t *n, const char *key, unsigned min, unsigned max,
                   unsigned *out)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    size_t len = strlen(s);
    int ok = len > 0 && len <= 9 && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    for (size_t i = 0; ok && i < len; i++)
        ok = isdigit((unsigned char)s[i]) != 0;
    unsigned long v = ok ? strtoul(s, NULL, 10) : 0;
    if (!ok || v < min || v > max)
        return fail(l, n, key, "must be a whole number from %u to %u (got \"%.40s\")", min, max, s);
    *out = (unsigned)v;
    return 0;
}

static int boolean(struct ld *l, const yaml_node_t *n, const char *key, int *out)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    int plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (plain && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")))
        *out = 1;
    else if (plain && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")))
        *out = 0;
    else
        return fail(l, n, key, "must be true or false (got \"%.40s\")", s);
    return 0;
}

/* One of `names` (exact spelling); the index. */
static int choice(struct ld *l, const yaml_node_t *n, const char *key, const char *const *names,
                  int *out)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    int i = in_list(names, s);
    if (i < 0) {
        char all[256];
        list_join(all, sizeof all, names);
        return fail(l, n, key, "\"%.60s\" is not one of %s", s, all);
    }
    *out = i;
    return 0;
}

/* ---- mappings and lists ------------------------------------------------- */

/* Checks that n is a mapping whose keys are distinct non-empty texts. */
static int mapping(struct ld *l, const yaml_node_t *n, const char *path)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(l, n, *path ? path : "(file)", "expected a mapping (key: value lines), not %s",
                    kind_of(n));
    const yaml_node_pair_t *pairs = n->data.mapping.pairs.start;
    size_t np = (size_t)(n->data.mapping.pairs.top - pairs);
    for (size_t i = 0; i < np; i++) {
        const yaml_node_t *k = node_at(l, pairs[i].key);
        char key[KEY_MAX];
        if (!k)
            return oom(l);
        if (k->type != YAML_SCALAR_NODE || is_null(k))
            return fail(l, k, *path ? path : "(file)", "a key must be a name, not %s",
                        k->type == YAML_SCALAR_NODE ? "empty" : kind_of(k));
        join(key, path, (const char *)k->data.scalar.value);
        const char *s;
        int rc = scalar(l, k, key, &s);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            const yaml_node_t *o = node_at(l, pairs[j].key);
            if (o && o->type == YAML_SCALAR_NODE &&
                o->data.scalar.length == k->data.scalar.length &&
                !memcmp(o->data.scalar.value, k->data.scalar.value, k->data.scalar.length))
                return fail(l, k, key, "appears twice (first on line %d)", line_of(o));
        }
    }
    return 0;
}

/* The mapping twin of sequence() below: checks that n is a mapping (mapping())
 * and gives its number of entries. */
static int entries(struct ld *l, const yaml_node_t *n, const char *path, size_t *count)
{
    int rc = mapping(l, n, path);
    if (rc == 0)
        *count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    return rc;
}

/* The key and value of a mapping's entry i; out of memory when either is
 * missing. */
static int pair(struct ld *l, const yaml_node_t *n, size_t i, const yaml_node_t **k,
                const yaml_node_t **v)
{
    *k = node_at(l, n->data.mapping.pairs.start[i].key);
    *v = node_at(l, n->data.mapping.pairs.start[i].value);
    return *k && *v ? 0 : oom(l);
}

struct keyspec {
    const char *name;
    int required;
};

/* Picks the values of a mapping with a fixed set of keys into vals[] (in
 * the order of spec; NULL when absent), refusing unknown and missing keys. */
static int fields_of(struct ld *l, const yaml_node_t *n, const char *path,
                     const struct keyspec *spec, const yaml_node_t **vals)
{
    size_t np = 0;
    int rc = entries(l, n, path, &np);
    if (rc < 0)
        return rc;
    size_t nspec = 0;
    while (spec[nspec].name)
        vals[nspec++] = NULL;
    for (size_t i = 0; i < np; i++) {
        const yaml_node_t *k, *v;
        rc = pair(l, n, i, &k, &v);
        if (rc < 0)
            return rc;
        const char *name = (const char *)k->data.scalar.value;
        size_t j = 0;
        while (j < nspec && strcmp(spec[j].name, name))
            j++;
        char key[KEY_MAX];
        join(key, path, name);
        if (j == nspec) {
            char all[256];
            size_t o = 0;
            all[0] = '\0';
            for (size_t s = 0; s < nspec && o < sizeof all; s++) {
                int w = snprintf(all + o, sizeof all - o, "%s%s", s ? ", " : "", spec[s].name);
                o += w > 0 ? (size_t)w : 0;
            }
            return fail(l, k, key, "unknown key (expected %s)", all);
        }
        vals[j] = v;
    }
    for (size_t j = 0; j < nspec; j++) {
        if (spec[j].required && !vals[j]) {
            char key[KEY_MAX];
            join(key, path, spec[j].name);
            return fail(l, n, key, "missing");
        }
    }
    return 0;
}

static int sequence(struct ld *l, const yaml_node_t *n, const char *key, size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, key, "expected a list, not %s", kind_of(n));
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    return 0;
}

static const yaml_node_t *item(struct ld *l, const yaml_node_t *n, size_t i)
{
    return node_at(l, n->data.sequence.items.start[i]);
}

/* The most keys a row of a listing section takes (custom_fields). */
#define ROW_KEYS_MAX 9

/* A section that lists rows: a sequence of mappings, or (when `key` is set)
 * a mapping from a name to a mapping. `rows` and `count` are where the
 * policy keeps the row array and its length, `line` and `basis` where a row
 * keeps its line (int) and its basis (char[basis_cap]); all offsetof. The
 * last key of every spec is the row's basis. */
struct section {
    const char *name;
    const struct keyspec *spec;
    size_t size, rows, count, line, basis, basis_cap;
    /* Checks a keyed row's name, before its keys; path names the row. */
    int (*key)(struct ld *l, size_t i, const yaml_node_t *k, const char *path);
    /* Loads row i from its node n and the values v picked by spec. */
    int (*row)(struct ld *l, size_t i, const yaml_node_t *n, const yaml_node_t **v,
               const char *path);
};

/* Checks the shape of a listing section, allocates its rows into the policy
 * and loads them one by one, each row's keys picked by the section's spec. */
static int load_rows(struct ld *l, const yaml_node_t *n, const struct section *s)
{
    size_t count = 0, nspec = 0;
    while (s->spec[nspec].name)
        nspec++;
    if (nspec > ROW_KEYS_MAX)
        return fail(l, n, s->name, "internal error: a row takes at most %d keys", ROW_KEYS_MAX);
    int rc = s->key ? entries(l, n, s->name, &count) : sequence(l, n, s->name, &count);
    if (rc < 0 || count == 0)
        return rc;
    void *all = calloc(count, s->size);
    if (!all)
        return oom(l);
    /* The members at rows and count are the section's (struct row *) and size_t. */
    memcpy((char *)l->p + s->rows, &all, sizeof all);
    memcpy((char *)l->p + s->count, &count, sizeof count);
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *k, *it, *v[ROW_KEYS_MAX];
        char path[KEY_MAX];
        if (s->key) {
            rc = pair(l, n, i, &k, &it);
            if (rc < 0)
                return rc;
            join(path, s->name, (const char *)k->data.scalar.value);
            rc = s->key(l, i, k, path);
        } else {
            joinidx(path, s->name, i);
            it = item(l, n, i);
            rc = it ? 0 : oom(l);
        }
        char *row = (char *)all + i * s->size, key[KEY_MAX];
        if (rc == 0) {
            *(int *)(row + s->line) = line_of(s->key ? k : it);
            rc = fields_of(l, it, path, s->spec, v);
        }
        if (rc == 0)
            rc = s->row(l, i, it, v, path);
        join(key, path, "basis");
        if (rc == 0)
            rc = basis(l, v[nspec - 1], key, row + s->basis, s->basis_cap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A list of distinct non-empty texts up to VALUE_MAX bytes, as a
 * NULL-terminated array of n entries. */
static int text_list(struct ld *l, const yaml_node_t *n, const char *key, int nonempty, char ***out,
                     size_t *nout)
{
    size_t count = 0;
    int rc = sequence(l, n, key, &count);
    if (rc < 0)
        return rc;
    if (nonempty && count == 0)
        return fail(l, n, key, "empty list");
    char **v = calloc(count + 1, sizeof *v);
    if (!v)
        return oom(l);
    *out = v;
    *nout = count;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *it = item(l, n, i);
        char ikey[KEY_MAX], buf[VALUE_MAX + 1];
        joinidx(ikey, key, i);
        if (!it)
            return oom(l);
        rc = text(l, it, ikey, buf, sizeof buf, 1);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(v[j], buf))
                return fail(l, it, ikey, "\"%s\" listed twice", buf);
        v[i] = strdup(buf);
        if (!v[i])
            return oom(l);
    }
    return 0;
}

/* ---- names: entities, fields, channels ---------------------------------- */

static int entity_named(struct ld *l, const yaml_node_t *n, const char *key, const char *name,
                        size_t len, const struct entity_def **out)
{
    for (size_t i = 0; entity_all[i]; i++) {
        const struct entity_def *e = entity_all[i];
        if (strlen(e->name) == len && !strncmp(e->name, name, len)) {
            *out = e;
            return 0;
        }
    }
    char all[256];
    size_t o = 0;
    for (size_t i = 0; entity_all[i] && o < sizeof all; i++) {
        int w = snprintf(all + o, sizeof all - o, "%s%s", i ? ", " : "", entity_all[i]->name);
        o += w > 0 ? (size_t)w : 0;
    }
    for (size_t i = 0; entity_all[i]; i++)
        if (strlen(entity_all[i]->plural) == len && !strncmp(entity_all[i]->plural, name, len))
            return fail(l, n, key, "entities are named in the singular: %s, not %.*s",
                        entity_all[i]->name, (int)len, name);
    return fail(l, n, key, "no entity \"%.*s\" (entities: %s)", (int)len, name, all);
}

static int entity_value(struct ld *l, const yaml_node_t *n, const char *key,
                        const struct entity_def **out)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    return entity_named(l, n, key, s, strlen(s), out);
}

static const struct policy_custom_field *custom_of(const struct policy *p,
                                                   const struct entity_def *e, const char *name)
{
    for (size_t i = 0; i < p->ncustom; i++)
        if (p->custom[i].entity == e && !strcmp(p->custom[i].name, name))
            return &p->custom[i];
    return NULL;
}

/* Checks that `field` names a built-in field of e that may carry a rule, or
 * a custom field declared in this file; `what` says what the rule does
 * ("classified", "forbidden", "pinned on"). Sets *cf for a custom field. */
static int field_named(struct ld *l, const yaml_node_t *n, const char *key,
                       const struct entity_def *e, const char *field, const char *what,
                       const struct field_def **fd, const struct policy_custom_field **cf)
{
    *fd = NULL;
    *cf = NULL;
    if (strlen(field) >= sizeof l->p->fields[0].field)
        return fail(l, n, key, "field name longer than %zu bytes",
                    sizeof l->p->fields[0].field - 1);
    if (!strncmp(field, "custom.", 7)) {
        *cf = custom_of(l->p, e, field + 7);
        if (!*cf)
            return fail(l, n, key, "custom field %s.%s is not declared in custom_fields", e->name,
                        field);
        return 0;
    }
    if (in_list(meta_fields, field) >= 0)
        return fail(l, n, key,
                    "%s is a meta field and cannot be %s: it travels with every record that "
                    "leaves (sync needs it)",
                    field, what);
    if (!strcmp(field, "custom"))
        return fail(l, n, key, "name custom fields one at a time, as %s.custom.NAME", e->name);
    *fd = entity_field(e, field);
    if (!*fd)
        return fail(l, n, key, "%s has no field \"%s\"", e->name, field);
    if ((*fd)->flags & FIELD_INTERNAL)
        return fail(l, n, key,
                    "%s.%s is internal (never read from or shown to the outside) and cannot be %s",
                    e->name, field, what);
    return 0;
}

/* "entity.field" or "entity.custom.NAME". */
static int dotted_field(struct ld *l, const yaml_node_t *n, const char *key, const char *s,
                        const char *what, const struct entity_def **e, const char **field)
{
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1])
        return fail(l, n, key, "expected ENTITY.FIELD such as contact.email (got \"%.60s\")", s);
    int rc = entity_named(l, n, key, s, (size_t)(dot - s), e);
    if (rc < 0)
        return rc;
    const struct field_def *fd;
    const struct policy_custom_field *cf;
    rc = field_named(l, n, key, *e, dot + 1, what, &fd, &cf);
    if (rc < 0)
        return rc;
    *field = dot + 1;
    return 0;
}

static const char *const *activity_channels(void)
{
    const struct field_def *f = entity_field(&entity_activity, "channel");
    return f ? f->values : NULL;
}

static int channel(struct ld *l, const yaml_node_t *n, const char *key, const char *s)
{
    const char *const *channels = activity_channels();
    if (channels && in_list(channels, s) >= 0)
        return 0;
    char all[256] = "";
    if (channels)
        list_join(all, sizeof all, channels);
    return fail(l, n, key, "\"%.60s\" is not an activity channel (%s)", s, all);
}

/* ---- sections ----------------------------------------------------------- */

/* locale.quiet_hours: {sms: "HH:MM-HH:MM", call: "HH:MM-HH:MM"}, in
 * locale.time_zone (which must be given). */
static int load_quiet_hours(struct ld *l, const yaml_node_t *n)
{
    static const struct keyspec spec[] = {{"sms", 0}, {"call", 0}, {NULL, 0}};
    const yaml_node_t *v[2];
    struct policy *p = l->p;
    int rc = fields_of(l, n, "locale.quiet_hours", spec, v);
    struct quiet_hours *q[2] = {&p->quiet_sms, &p->quiet_call};
    static const char *const keys[2] = {"locale.quiet_hours.sms", "locale.quiet_hours.call"};
    for (int i = 0; rc == 0 && i < 2; i++) {
        if (!v[i])
            continue;
        const char *s;
        char why[200];
        rc = scalar(l, v[i], keys[i], &s);
        if (rc == 0 && quiet_hours_parse(s, q[i], why, sizeof why) < 0)
            return fail(l, v[i], keys[i], "%s", why);
    }
    if (rc == 0 && (p->quiet_sms.set || p->quiet_call.set) && !p->time_zone[0])
        return fail(l, n, "locale.quiet_hours",
                    "needs locale.time_zone: quiet hours are local time (e.g. time_zone: "
                    "Africa/Nairobi)");
    return rc;
}

static int load_locale(struct ld *l, const yaml_node_t *n)
{
    static const struct keyspec spec[] = {
        {"language", 0},           {"date_format", 0}, {"phone_example", 0}, {"address_format", 0},
        {"preferred_channels", 0}, {"time_zone", 0},   {"quiet_hours", 0},   {NULL, 0},
    };
    const yaml_node_t *v[7];
    struct policy *p = l->p;
    int rc = fields_of(l, n, "locale", spec, v);
    if (rc == 0 && v[0]) {
        rc = text(l, v[0], "locale.language", p->language, sizeof p->language, 1);
        if (rc == 0) {
            static const struct field_def lang = {"language", FIELD_LANGUAGE, 0,   15,
                                                  NULL,       NULL,           NULL};
            json_t *in = json_string(p->language), *out = NULL;
            struct op_error e2;
            if (!in)
                return oom(l);
            rc = entity_normalize_value(&lang, in, &out, &e2);
            json_decref(in);
            json_decref(out);
            if (rc < 0)
                return fail(l, v[0], "locale.language",
                            "\"%s\" is not a BCP 47 language tag such as de or pt-BR", p->language);
        }
    }
    if (rc == 0 && v[1])
        rc = text(l, v[1], "locale.date_format", p->date_format, sizeof p->date_format, 1);
    if (rc == 0 && v[2])
        rc = text(l, v[2], "locale.phone_example", p->phone_example, sizeof p->phone_example, 1);
    if (rc == 0 && v[3]) {
        rc = text(l, v[3], "locale.address_format", p->address_format, sizeof p->address_format, 1);
        /* Placeholders name contact address fields: a typo would blank a
         * line of every printed address. */
        for (const char *c = p->address_format; rc == 0 && (c = strchr(c, '{')); c++) {
            const char *end = strchr(c, '}');
            char name[64];
            size_t len = end ? (size_t)(end - c - 1) : 0;
            if (!end || len == 0 || len >= sizeof name)
                return fail(l, v[3], "locale.address_format",
                            "a { without a field name and }: use {street}, {postal_code}, ...");
            memcpy(name, c + 1, len);
            name[len] = '\0';
            const struct field_def *fd = entity_field(&entity_contact, name);
            if (!fd || fd->type == FIELD_OBJECT || fd->type == FIELD_REF ||
                (fd->flags & FIELD_INTERNAL))
                return fail(l, v[3], "locale.address_format",
                            "{%s} is not a field of a contact's address", name);
        }
    }
    if (rc == 0 && v[4]) {
        rc = text_list(l, v[4], "locale.preferred_channels", 0, &p->preferred_channels,
                       &p->npreferred_channels);
        for (size_t i = 0; rc == 0 && i < p->npreferred_channels; i++) {
            char key[KEY_MAX];
            joinidx(key, "locale.preferred_channels", i);
            rc = channel(l, item(l, v[4], i), key, p->preferred_channels[i]);
        }
    }
    if (rc == 0 && v[5]) {
        rc = text(l, v[5], "locale.time_zone", p->time_zone, sizeof p->time_zone, 1);
        char why[200];
        if (rc == 0 && quiet_hours_zone_check(p->time_zone, why, sizeof why) < 0)
            return fail(l, v[5], "locale.time_zone", "%s", why);
    }
    if (rc == 0 && v[6])
        rc = load_quiet_hours(l, v[6]);
    return rc;
}

static int load_transfer(struct ld *l, const yaml_node_t *n)
{
    static const struct keyspec spec[] = {{"allowed", 1}, {"basis", 1}, {NULL, 0}};
    const yaml_node_t *v[2];
    int rc = fields_of(l, n, "transfer", spec, v);
    if (rc == 0)
        rc = boolean(l, v[0], "transfer.allowed", &l->p->transfer_allowed);
    if (rc == 0)
        rc = basis(l, v[1], "transfer.basis", l->p->transfer_basis, sizeof l->p->transfer_basis);
    return rc;
}

static int custom_name(struct ld *l, const yaml_node_t *n, const char *key, char *buf, size_t cap)
{
    int rc = text(l, n, key, buf, cap, 1);
    if (rc < 0)
        return rc;
    int ok = islower((unsigned char)buf[0]) != 0;
    for (const char *c = buf; ok && *c; c++)
        ok = islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_';
    if (!ok)
        return fail(l, n, key,
                    "\"%s\" must be lower-case letters, digits and _, starting with a letter", buf);
    return 0;
}

static int load_labels(struct ld *l, const yaml_node_t *n, const char *path,
                       struct policy_custom_field *cf)
{
    size_t np = 0;
    int rc = entries(l, n, path, &np);
    if (rc < 0 || np == 0)
        return rc;
    cf->labels = calloc(np, sizeof *cf->labels);
    if (!cf->labels)
        return oom(l);
    cf->nlabels = np;
    static const struct field_def lang = {"label", FIELD_LANGUAGE, 0, 15, NULL, NULL, NULL};
    for (size_t i = 0; i < np; i++) {
        const yaml_node_t *k, *v;
        char key[KEY_MAX];
        rc = pair(l, n, i, &k, &v);
        if (rc < 0)
            return rc;
        join(key, path, (const char *)k->data.scalar.value);
        struct policy_label *lb = &cf->labels[i];
        rc = text(l, k, key, lb->lang, sizeof lb->lang, 1);
        if (rc < 0)
            return rc;
        json_t *in = json_string(lb->lang), *out = NULL;
        struct op_error e2;
        if (!in)
            return oom(l);
        rc = entity_normalize_value(&lang, in, &out, &e2);
        json_decref(in);
        json_decref(out);
        if (rc < 0)
            return fail(l, k, key, "\"%s\" is not a BCP 47 language tag such as en or pt-BR",
                        lb->lang);
        rc = text(l, v, key, lb->text, sizeof lb->text, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int custom_row(struct ld *l, size_t index, const yaml_node_t *n, const yaml_node_t **v,
                      const char *path)
{
    struct policy_custom_field *cf = &l->p->custom[index];
    char key[KEY_MAX];
    join(key, path, "entity");
    int rc = entity_value(l, v[0], key, &cf->entity);
    if (rc < 0)
        return rc;
    join(key, path, "name");
    rc = custom_name(l, v[1], key, cf->name, sizeof cf->name);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < index; i++)
        if (l->p->custom[i].entity == cf->entity && !strcmp(l->p->custom[i].name, cf->name))
            return fail(l, v[1], key, "%s.custom.%s declared twice (first on line %d)",
                        cf->entity->name, cf->name, l->p->custom[i].line);
    int t;
    join(key, path, "type");
    rc = choice(l, v[2], key, type_names, &t);
    if (rc < 0)
        return rc;
    cf->type = (enum policy_custom_type)t;
    if (v[3]) {
        join(key, path, "pattern");
        if (cf->type != POLICY_CUSTOM_TEXT)
            return fail(l, v[3], key, "only text fields take a pattern");
        rc = text(l, v[3], key, cf->pattern, sizeof cf->pattern, 1);
        if (rc < 0)
            return rc;
        regex_t *re = calloc(1, sizeof *re);
        if (!re)
            return oom(l);
        int rr = regcomp(re, cf->pattern, REG_EXTENDED | REG_NOSUB);
        if (rr != 0) {
            char why[128];
            regerror(rr, re, why, sizeof why);
            free(re);
            return fail(l, v[3], key, "not a POSIX extended regular expression: %s", why);
        }
        cf->regex = re;
    }
    join(key, path, "values");
    if (v[4] && cf->type != POLICY_CUSTOM_ENUM)
        return fail(l, v[4], key, "only enum fields take values");
    if (!v[4] && cf->type == POLICY_CUSTOM_ENUM)
        return fail(l, n, key, "missing: an enum field lists its values");
    if (v[4]) {
        rc = text_list(l, v[4], key, 1, &cf->values, &cf->nvalues);
        if (rc < 0)
            return rc;
    }
    if (v[5]) {
        join(key, path, "max_length");
        if (cf->type != POLICY_CUSTOM_TEXT)
            return fail(l, v[5], key, "only text fields take max_length");
        rc = uint_in(l, v[5], key, 1, CUSTOM_TEXT_MAX, &cf->max_length);
        if (rc < 0)
            return rc;
    }
    if (v[6]) {
        join(key, path, "required");
        rc = boolean(l, v[6], key, &cf->required);
        if (rc < 0)
            return rc;
    }
    join(key, path, "labels");
    return v[7] ? load_labels(l, v[7], key, cf) : 0;
}

static int field_key(struct ld *l, size_t i, const yaml_node_t *k, const char *path)
{
    struct policy_field_rule *r = &l->p->fields[i];
    const char *field;
    int rc = dotted_field(l, k, path, (const char *)k->data.scalar.value, "classified", &r->entity,
                          &field);
    if (rc < 0)
        return rc;
    snprintf(r->field, sizeof r->field, "%s", field);
    return 0;
}

static int field_row(struct ld *l, size_t i, const yaml_node_t *n, const yaml_node_t **vals,
                     const char *path)
{
    struct policy_field_rule *r = &l->p->fields[i];
    char key[KEY_MAX];
    int c;
    (void)n;
    join(key, path, "class");
    int rc = choice(l, vals[0], key, class_names, &c);
    if (rc < 0)
        return rc;
    r->cls = (enum policy_class)c;
    return 0;
}

static int forbidden_row(struct ld *l, size_t i, const yaml_node_t *n, const yaml_node_t **v,
                         const char *path)
{
    struct policy *p = l->p;
    struct policy_forbidden *f = &p->forbidden[i];
    char key[KEY_MAX];
    const char *s, *field;
    (void)n;
    join(key, path, "field");
    int rc = scalar(l, v[0], key, &s);
    if (rc == 0)
        rc = dotted_field(l, v[0], key, s, "forbidden", &f->entity, &field);
    if (rc < 0)
        return rc;
    snprintf(f->field, sizeof f->field, "%s", field);
    const struct field_def *fd = entity_field(f->entity, f->field);
    if (fd && (fd->flags & FIELD_REQUIRED))
        return fail(l, v[0], key, "%s.%s is required by every %s and cannot be forbidden",
                    f->entity->name, f->field, f->entity->name);
    for (size_t j = 0; j < i; j++)
        if (p->forbidden[j].entity == f->entity && !strcmp(p->forbidden[j].field, f->field))
            return fail(l, v[0], key, "%s.%s is forbidden twice (first on line %d)",
                        f->entity->name, f->field, p->forbidden[j].line);
    f->line = line_of(v[0]);
    join(key, path, "reason");
    return text(l, v[1], key, f->reason, sizeof f->reason, 1);
}

/* A pin value in the form the store keeps it, so egress compares strings. */
static int pin_value(struct ld *l, const yaml_node_t *n, const char *key,
                     const struct field_def *fd, const struct policy_custom_field *cf, char **v)
{
    json_t *in = json_string(*v), *out = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    if (!in)
        return oom(l);
    int rc =
        cf ? policy_custom_check(cf, in, &out, &e2) : entity_normalize_value(fd, in, &out, &e2);
    json_decref(in);
    if (rc < 0)
        return fail(l, n, key, "not a valid value: %s", e2.msg);
    char buf[64];
    const char *s = NULL;
    if (json_is_string(out))
        s = json_string_value(out);
    else if (json_is_integer(out))
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(out)), s = buf;
    else if (json_is_boolean(out))
        s = json_is_true(out) ? "true" : "false";
    if (!s) {
        json_decref(out);
        return fail(l, n, key, "not a value a record can hold");
    }
    char *copy = strdup(s);
    json_decref(out);
    if (!copy)
        return oom(l);
    free(*v);
    *v = copy;
    return 0;
}

static int pin_row(struct ld *l, size_t i, const yaml_node_t *n, const yaml_node_t **v,
                   const char *path)
{
    struct policy_pin *pin = &l->p->pins[i];
    char key[KEY_MAX];
    join(key, path, "entity");
    int rc = entity_value(l, v[0], key, &pin->entity);
    if (rc < 0)
        return rc;
    join(key, path, "field");
    const struct field_def *fd;
    const struct policy_custom_field *cf;
    const char *s;
    rc = scalar(l, v[1], key, &s);
    if (rc == 0)
        rc = field_named(l, v[1], key, pin->entity, s, "pinned on", &fd, &cf);
    if (rc < 0)
        return rc;
    snprintf(pin->field, sizeof pin->field, "%s", s);
    join(key, path, "values");
    rc = text_list(l, v[2], key, 1, &pin->values, &pin->nvalues);
    for (size_t j = 0; rc == 0 && j < pin->nvalues; j++) {
        char ikey[KEY_MAX];
        joinidx(ikey, key, j);
        rc = pin_value(l, item(l, v[2], j), ikey, fd, cf, &pin->values[j]);
    }
    return rc;
}

static int consent_key(struct ld *l, size_t i, const yaml_node_t *k, const char *path)
{
    struct policy_consent_rule *r = &l->p->consent[i];
    int rc = channel(l, k, path, (const char *)k->data.scalar.value);
    if (rc < 0)
        return rc;
    snprintf(r->channel, sizeof r->channel, "%s", (const char *)k->data.scalar.value);
    return 0;
}

static int consent_row(struct ld *l, size_t i, const yaml_node_t *n, const yaml_node_t **vals,
                       const char *path)
{
    struct policy_consent_rule *r = &l->p->consent[i];
    char key[KEY_MAX];
    int m;
    (void)n;
    join(key, path, "mode");
    int rc = choice(l, vals[0], key, mode_names, &m);
    if (rc < 0)
        return rc;
    r->mode = (enum policy_consent_mode)m;
    if (r->mode == POLICY_CONSENT_DOUBLE_OPT_IN)
        r->token_ttl_hours = TTL_DEFAULT;
    if (vals[1]) {
        join(key, path, "token_ttl_hours");
        if (r->mode != POLICY_CONSENT_DOUBLE_OPT_IN)
            return fail(l, vals[1], key, "only double_opt_in takes a token lifetime (mode is %s)",
                        mode_names[m]);
        rc = uint_in(l, vals[1], key, 1, 720, &r->token_ttl_hours);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int retention_key(struct ld *l, size_t i, const yaml_node_t *k, const char *path)
{
    struct policy_retention *r = &l->p->retention[i];
    const char *name = (const char *)k->data.scalar.value;
    int rc = entity_named(l, k, path, name, strlen(name), &r->entity);
    if (rc < 0)
        return rc;
    if (r->entity == &entity_user)
        return fail(l, k, path, "user accounts are not purged by retention (disable them)");
    return 0;
}

static int retention_row(struct ld *l, size_t i, const yaml_node_t *n, const yaml_node_t **vals,
                         const char *path)
{
    struct policy_retention *r = &l->p->retention[i];
    char key[KEY_MAX];
    (void)n;
    join(key, path, "days");
    return uint_in(l, vals[0], key, 1, 36500, &r->days);
}

/* The listing sections, in the order load_root() loads them. A section's
 * rows are struct type, kept in the policy's member and n<member>; its keys
 * are the ones given, then basis. */
#define SECTION(name, member, type, key, row, ...)                                                 \
    {                                                                                              \
        name, (const struct keyspec[]){__VA_ARGS__, {"basis", 1}, {NULL, 0}}, sizeof(type),        \
            offsetof(struct policy, member), offsetof(struct policy, n##member),                   \
            offsetof(type, line), offsetof(type, basis), sizeof((type *)0)->basis, key, row        \
    }
static const struct section sections[] = {
    SECTION("custom_fields", custom, struct policy_custom_field, NULL, custom_row, {"entity", 1},
            {"name", 1}, {"type", 1}, {"pattern", 0}, {"values", 0}, {"max_length", 0},
            {"required", 0}, {"labels", 0}),
    SECTION("fields", fields, struct policy_field_rule, field_key, field_row, {"class", 1}),
    SECTION("pin_records", pins, struct policy_pin, NULL, pin_row, {"entity", 1}, {"field", 1},
            {"values", 1}),
    SECTION("forbidden", forbidden, struct policy_forbidden, NULL, forbidden_row, {"field", 1},
            {"reason", 1}),
    SECTION("consent", consent, struct policy_consent_rule, consent_key, consent_row, {"mode", 1},
            {"token_ttl_hours", 0}),
    SECTION("retention", retention, struct policy_retention, retention_key, retention_row,
            {"days", 1}),
};

static const char *const noise_periods[] = {"month", "quarter", "year", NULL};
static const char *const noise_mechanisms[] = {"geometric", NULL};

const char *policy_noise_period_name(enum policy_noise_period p)
{
    return (unsigned)p < 3 ? noise_periods[p] : "?";
}

/* A privacy budget's epsilon: a plain decimal number with at most six
 * decimals, from min to max millionths, kept in millionths. */
static int epsilon_in(struct ld *l, const yaml_node_t *n, const char *key, uint32_t min,
                      uint32_t max, uint32_t *out)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    uint64_t whole = 0, frac = 0;
    size_t i = 0, nd = 0, nf = 0;
    int ok = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    for (; ok && isdigit((unsigned char)s[i]) && nd < 6; i++, nd++)
        whole = whole * 10 + (uint64_t)(s[i] - '0');
    if (ok && s[i] == '.') {
        for (i++; isdigit((unsigned char)s[i]) && nf < 6; i++, nf++)
            frac = frac * 10 + (uint64_t)(s[i] - '0');
        ok = nf > 0;
    }
    ok = ok && nd > 0 && s[i] == '\0';
    for (size_t k = nf; k < 6; k++)
        frac *= 10;
    uint64_t v = whole * 1000000u + frac;
    if (!ok || v < min || v > max)
        return fail(l, n, key,
                    "must be a decimal number from %u.%06u to %u (at most six decimals; got "
                    "\"%.40s\")",
                    min / 1000000u, min % 1000000u, max / 1000000u, s);
    *out = (uint32_t)v;
    return 0;
}

/* aggregates.noise: mechanism, epsilon (per answer), budget (per period),
 * period. */
static int load_noise(struct ld *l, const yaml_node_t *n)
{
    static const struct keyspec spec[] = {
        {"mechanism", 1}, {"epsilon", 1}, {"budget", 1}, {"period", 1}, {NULL, 0}};
    const yaml_node_t *v[4];
    struct policy_noise *z = &l->p->noise;
    int m, per;
    int rc = fields_of(l, n, "aggregates.noise", spec, v);
    if (rc == 0)
        rc = choice(l, v[0], "aggregates.noise.mechanism", noise_mechanisms, &m);
    if (rc == 0)
        rc = epsilon_in(l, v[1], "aggregates.noise.epsilon", 10000u, 10000000u, &z->epsilon_micro);
    if (rc == 0)
        rc = epsilon_in(l, v[2], "aggregates.noise.budget", 10000u, 1000000000u, &z->budget_micro);
    if (rc == 0)
        rc = choice(l, v[3], "aggregates.noise.period", noise_periods, &per);
    if (rc < 0)
        return rc;
    if (z->budget_micro < z->epsilon_micro)
        return fail(l, v[2], "aggregates.noise.budget",
                    "%u.%06u is less than one answer's epsilon %u.%06u: no answer could be given",
                    z->budget_micro / 1000000u, z->budget_micro % 1000000u,
                    z->epsilon_micro / 1000000u, z->epsilon_micro % 1000000u);
    z->period = (enum policy_noise_period)per;
    z->on = 1;
    z->line = line_of(n);
    return 0;
}

/* The fields of entity e that policy_aggregate_dims[] lists, for messages. */
static void dims_of(const char *entity, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; policy_aggregate_dims[i].entity && o < cap; i++) {
        const struct policy_aggregate_dim *d = &policy_aggregate_dims[i];
        if (strcmp(d->entity, entity))
            continue;
        int w = snprintf(out + o, cap - o, "%s%s%s", o ? ", " : "", d->field,
                         d->kind == POLICY_DIM_DATE ? " (with coarsen)" : "");
        o += w > 0 ? (size_t)w : 0;
    }
}

/* One dimension of a define entry: a field of the counted entity that
 * policy_aggregate_dims[] lists and that may leave inside a count here. */
static int define_dim(struct ld *l, const yaml_node_t *n, const char *key,
                      const struct entity_def *e, const struct policy_aggregate_dim **out)
{
    const char *s;
    int rc = scalar(l, n, key, &s);
    if (rc < 0)
        return rc;
    char allowed[256];
    dims_of(e->name, allowed, sizeof allowed);
    const struct policy_aggregate_dim *d = NULL;
    for (size_t i = 0; policy_aggregate_dims[i].entity && !d; i++)
        if (!strcmp(policy_aggregate_dims[i].entity, e->name) &&
            !strcmp(policy_aggregate_dims[i].field, s))
            d = &policy_aggregate_dims[i];
    if (!d) {
        if (!entity_field(e, s))
            return fail(l, n, key, "%s has no field \"%.60s\" (it may count by: %s)", e->name, s,
                        allowed);
        return fail(l, n, key,
                    "%s.%s cannot be counted by: it is free text or names a person, and the "
                    "engine cannot fold it safely (%s may count by: %s)",
                    e->name, s, e->name, allowed);
    }
    enum policy_class c = policy_class_of(l->p, e, d->field);
    if (c == POLICY_LOCAL_ONLY)
        return fail(l, n, key,
                    "%s.%s is local_only in this policy: it may not leave, not even inside a "
                    "count",
                    e->name, d->field);
    *out = d;
    return 0;
}

static int define_row(struct ld *l, size_t i, const yaml_node_t *n)
{
    static const struct keyspec spec[] = {{"name", 1},    {"count", 1},   {"rows", 1},
                                          {"columns", 0}, {"coarsen", 0}, {NULL, 0}};
    const yaml_node_t *v[5];
    struct policy_aggregate_define *d = &l->p->defines[i];
    char path[KEY_MAX], key[KEY_MAX];
    const char *s;
    joinidx(path, "aggregates.define", i);
    int rc = fields_of(l, n, path, spec, v);
    if (rc < 0)
        return rc;
    join(key, path, "name");
    if ((rc = scalar(l, v[0], key, &s)) < 0)
        return rc;
    size_t len = strlen(s);
    int ok = len >= 3 && len <= 48;
    for (size_t j = 0; ok && j < len; j++)
        ok = (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= '0' && s[j] <= '9') || s[j] == '_';
    if (!ok)
        return fail(l, v[0], key, "\"%.60s\" is not a name: 3 to 48 of a-z, 0-9 and _", s);
    if (in_list(policy_aggregate_queries, s) >= 0)
        return fail(l, v[0], key, "%s is a built-in aggregate; a defined one needs its own name",
                    s);
    for (size_t j = 0; j < i; j++)
        if (!strcmp(l->p->defines[j].name, s))
            return fail(l, v[0], key, "%s is defined twice (first on line %d)", s,
                        l->p->defines[j].line);
    memcpy(d->name, s, len + 1);
    d->line = line_of(n);

    join(key, path, "count");
    const struct entity_def *e;
    if ((rc = entity_value(l, v[1], key, &e)) < 0)
        return rc;
    if (in_list(define_entities, e->name) < 0) {
        char all[128];
        list_join(all, sizeof all, define_entities);
        return fail(l, v[1], key, "%s records cannot be counted by a defined aggregate (%s can)",
                    e->name, all);
    }
    join(key, path, "rows");
    if ((rc = define_dim(l, v[2], key, e, &d->rows)) < 0)
        return rc;
    if (v[3]) {
        join(key, path, "columns");
        if ((rc = define_dim(l, v[3], key, e, &d->cols)) < 0)
            return rc;
        if (d->cols == d->rows)
            return fail(l, v[3], key, "%s is already the rows", d->cols->field);
    }
    int dated = d->rows->kind == POLICY_DIM_DATE || (d->cols && d->cols->kind == POLICY_DIM_DATE);
    join(key, path, "coarsen");
    if (v[4]) {
        int g;
        static const char *const grains[] = {"week", "month", "quarter", NULL};
        if ((rc = scalar(l, v[4], key, &s)) < 0)
            return rc;
        if (!strcmp(s, "day"))
            return fail(l, v[4], key, "never by day: week, month or quarter");
        if ((rc = choice(l, v[4], key, grains, &g)) < 0)
            return rc;
        if (!dated)
            return fail(l, v[4], key,
                        "applies to a date field, and neither rows nor columns is one");
        d->grain = (enum policy_grain)(g + 1);
    } else if (dated) {
        const struct policy_aggregate_dim *dd =
            d->rows->kind == POLICY_DIM_DATE ? d->rows : d->cols;
        return fail(l, n, key,
                    "%s.%s is a date: say coarsen: week, month or quarter (never by day)", e->name,
                    dd->field);
    }
    snprintf(d->qualified[0], sizeof d->qualified[0], "%s.%s", e->name, d->rows->field);
    if (d->cols)
        snprintf(d->qualified[1], sizeof d->qualified[1], "%s.%s", e->name, d->cols->field);
    return 0;
}

/* aggregates.define: the aggregates this profile adds (at most
 * POLICY_DEFINE_MAX). */
static int load_defines(struct ld *l, const yaml_node_t *n)
{
    size_t count = 0;
    int rc = sequence(l, n, "aggregates.define", &count);
    if (rc < 0)
        return rc;
    if (count > POLICY_DEFINE_MAX)
        return fail(l, n, "aggregates.define", "%zu definitions; at most %d", count,
                    POLICY_DEFINE_MAX);
    l->p->defines = calloc(count ? count : 1, sizeof *l->p->defines);
    if (!l->p->defines)
        return oom(l);
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *it = item(l, n, i);
        if (!it)
            return oom(l);
        if ((rc = define_row(l, i, it)) < 0)
            return rc;
        l->p->ndefines = i + 1;
    }
    return 0;
}

const struct policy_aggregate_define *policy_define_named(const struct policy *p, const char *name)
{
    for (size_t i = 0; p && i < p->ndefines; i++)
        if (!strcmp(p->defines[i].name, name))
            return &p->defines[i];
    return NULL;
}

static int load_aggregates(struct ld *l, const yaml_node_t *n)
{
    static const struct keyspec spec[] = {
        {"min_cell_size", 1}, {"basis", 1},  {"queries", 1}, {"standing", 0},
        {"noise", 0},         {"define", 0}, {NULL, 0}};
    const yaml_node_t *v[6];
    struct policy *p = l->p;
    char bas[256];
    size_t count = 0;
    int rc = fields_of(l, n, "aggregates", spec, v);
    if (rc == 0)
        rc = uint_in(l, v[0], "aggregates.min_cell_size", 2, 1000, &p->min_cell_size);
    if (rc == 0)
        rc = basis(l, v[1], "aggregates.basis", bas, sizeof bas);
    if (rc == 0 && v[5])
        rc = load_defines(l, v[5]);
    if (rc == 0)
        rc = sequence(l, v[2], "aggregates.queries", &count);
    if (rc < 0)
        return rc;
    p->aggregates = calloc(count ? count : 1, sizeof *p->aggregates);
    if (!p->aggregates)
        return oom(l);
    p->naggregates = count;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *it = item(l, v[2], i);
        struct policy_aggregate *a = &p->aggregates[i];
        char key[KEY_MAX];
        const char *s;
        if (!it)
            return oom(l);
        joinidx(key, "aggregates.queries", i);
        rc = scalar(l, it, key, &s);
        if (rc < 0)
            return rc;
        if (in_list(policy_aggregate_queries, s) < 0 && !policy_define_named(p, s)) {
            char all[256];
            list_join(all, sizeof all, policy_aggregate_queries);
            return fail(l, it, key,
                        "\"%.60s\" is not a built-in query (%s) nor one in aggregates.define", s,
                        all);
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->aggregates[j].name, s))
                return fail(l, it, key, "%s listed twice", s);
        snprintf(a->name, sizeof a->name, "%s", s);
        memcpy(a->basis, bas, sizeof a->basis);
        a->line = line_of(it);
    }
    /* standing: a subset of queries, sent without a request */
    size_t ns = 0;
    if (v[3] && (rc = sequence(l, v[3], "aggregates.standing", &ns)) < 0)
        return rc;
    for (size_t i = 0; i < ns; i++) {
        const yaml_node_t *it = item(l, v[3], i);
        char key[KEY_MAX];
        const char *s;
        if (!it)
            return oom(l);
        joinidx(key, "aggregates.standing", i);
        rc = scalar(l, it, key, &s);
        if (rc < 0)
            return rc;
        size_t j = 0;
        while (j < count && strcmp(p->aggregates[j].name, s))
            j++;
        if (j == count)
            return fail(l, it, key, "\"%.60s\" is not in aggregates.queries", s);
        if (p->aggregates[j].standing)
            return fail(l, it, key, "%s listed twice", s);
        p->aggregates[j].standing = 1;
    }
    return v[4] ? load_noise(l, v[4]) : 0;
}

/* ---- the document ------------------------------------------------------- */

/* The file name without directories and ".yaml": what `region` must say. */
static void file_region(const char *name, char *out, size_t cap)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".yaml"))
        len -= 5;
    snprintf(out, cap, "%.*s", (int)len, base);
}

static int valid_region(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof((struct policy *)0)->region || s[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

static int load_root(struct ld *l, const yaml_node_t *root)
{
    static const struct keyspec spec[] = {
        {"format", 1},  {"region", 1},      {"country", 1},       {"name", 0},
        {"locale", 0},  {"transfer", 0},    {"default_class", 1}, {"default_basis", 1},
        {"fields", 0},  {"pin_records", 0}, {"forbidden", 0},     {"custom_fields", 0},
        {"consent", 0}, {"retention", 0},   {"aggregates", 0},    {NULL, 0},
    };
    enum {
        K_FORMAT,
        K_REGION,
        K_COUNTRY,
        K_NAME,
        K_LOCALE,
        K_TRANSFER,
        K_DEFCLASS,
        K_DEFBASIS,
        K_FIELDS,
        K_PINS,
        K_FORBIDDEN,
        K_CUSTOM,
        K_CONSENT,
        K_RETENTION,
        K_AGGREGATES,
        K_N
    };
    const yaml_node_t *v[K_N];
    struct policy *p = l->p;
    if (root->type != YAML_MAPPING_NODE)
        return fail(l, root, "(file)",
                    "the top level must be a mapping (format: ..., region: ...), not %s",
                    kind_of(root));
    int rc = fields_of(l, root, "", spec, v);
    if (rc < 0)
        return rc;

    const char *s;
    rc = scalar(l, v[K_FORMAT], "format", &s);
    if (rc < 0)
        return rc;
    if (strcmp(s, POLICY_FORMAT))
        return fail(l, v[K_FORMAT], "format", "expected %s (got \"%.60s\")", POLICY_FORMAT, s);

    char want[64];
    if (l->region)
        snprintf(want, sizeof want, "%s", l->region);
    else
        file_region(l->name, want, sizeof want);
    rc = text(l, v[K_REGION], "region", p->region, sizeof p->region, 1);
    if (rc < 0)
        return rc;
    if (!valid_region(p->region))
        return fail(l, v[K_REGION], "region",
                    "\"%s\" is not a region code (A-Z, 0-9 and -, such as BR or EU-DE)", p->region);
    if (strcmp(p->region, want) && l->region)
        return fail(l, v[K_REGION], "region", "\"%s\" is not %s, the region it is loaded for",
                    p->region, want);
    if (strcmp(p->region, want))
        return fail(l, v[K_REGION], "region", "\"%s\" does not match the file name (%s.yaml)",
                    p->region, want);

    rc = scalar(l, v[K_COUNTRY], "country", &s);
    if (rc < 0)
        return rc;
    {
        static const struct field_def country = {"country", FIELD_COUNTRY, 0, 2, NULL, NULL, NULL};
        json_t *in = json_string(s), *out = NULL;
        struct op_error e2;
        if (!in)
            return oom(l);
        rc = entity_normalize_value(&country, in, &out, &e2);
        json_decref(in);
        int same = rc == 0 && json_is_string(out) && !strcmp(json_string_value(out), s);
        json_decref(out);
        if (!same)
            return fail(l, v[K_COUNTRY], "country",
                        "\"%.40s\" is not an ISO 3166-1 alpha-2 country code (upper-case, such as "
                        "BR or DE)",
                        s);
        memcpy(p->country, s, 3);
    }
    if (v[K_NAME] && (rc = text(l, v[K_NAME], "name", p->name, sizeof p->name, 1)) < 0)
        return rc;
    if (v[K_LOCALE] && (rc = load_locale(l, v[K_LOCALE])) < 0)
        return rc;
    if (v[K_TRANSFER] && (rc = load_transfer(l, v[K_TRANSFER])) < 0)
        return rc;
    int c;
    rc = choice(l, v[K_DEFCLASS], "default_class", class_names, &c);
    if (rc < 0)
        return rc;
    p->default_class = (enum policy_class)c;
    rc = basis(l, v[K_DEFBASIS], "default_basis", p->default_basis, sizeof p->default_basis);
    if (rc < 0)
        return rc;
    /* Custom fields first: the other sections may name them. */
    static const int section_key[] = {K_CUSTOM,    K_FIELDS,  K_PINS,
                                      K_FORBIDDEN, K_CONSENT, K_RETENTION};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if (v[section_key[i]] && (rc = load_rows(l, v[section_key[i]], &sections[i])) < 0)
            return rc;
    if (v[K_AGGREGATES] && (rc = load_aggregates(l, v[K_AGGREGATES])) < 0)
        return rc;
    return 0;
}

/* YAML counts LF, CR and CRLF as one line break each. */
static int is_break(const char *data, size_t len, size_t i)
{
    return data[i] == '\n' || (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n'));
}

static int yaml_error(struct ld *l, const yaml_parser_t *y)
{
    if (y->error == YAML_MEMORY_ERROR)
        return oom(l);
    const yaml_mark_t *m = &y->problem_mark;
    if (y->error == YAML_READER_ERROR)
        return fail_at(l, 1, "(yaml)", "%s at byte %zu", y->problem ? y->problem : "unreadable",
                       y->problem_offset + 1);
    /* Tabs cannot indent YAML; libyaml's words for it do not say so. */
    const char *hint = "";
    size_t at = 0;
    for (size_t line = 0; at < l->len && line < m->line; at++)
        line += is_break(l->data, l->len, at);
    while (at < l->len && l->data[at] == ' ')
        at++;
    if (at < l->len && l->data[at] == '\t')
        hint = "; indent with spaces, not tabs";
    if (y->context)
        return fail_at(l, (int)m->line + 1, "(yaml)", "%s at column %zu (%s on line %zu)%s",
                       y->problem ? y->problem : "syntax error", m->column + 1, y->context,
                       y->context_mark.line + 1, hint);
    return fail_at(l, (int)m->line + 1, "(yaml)", "%s at column %zu%s",
                   y->problem ? y->problem : "syntax error", m->column + 1, hint);
}

/* One pass over the events to refuse what the document API would hide: a
 * second document, anchors, aliases and explicit tags. */
static int prescan(struct ld *l, const unsigned char *data, size_t len)
{
    yaml_parser_t y;
    yaml_event_t ev;
    int rc = 0, ndocs = 0;
    if (!yaml_parser_initialize(&y))
        return oom(l);
    yaml_parser_set_input_string(&y, data, len);
    yaml_parser_set_encoding(&y, YAML_UTF8_ENCODING);
    for (;;) {
        if (!yaml_parser_parse(&y, &ev)) {
            rc = yaml_error(l, &y);
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        const yaml_char_t *anchor = NULL, *tag = NULL;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1)
                rc = fail_at(l, line, "(yaml)", "a second YAML document; a policy file holds one");
            break;
        case YAML_ALIAS_EVENT:
            rc = fail_at(l, line, "(yaml)", "alias *%s: aliases are not allowed, write it out",
                         (const char *)ev.data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            tag = ev.data.scalar.tag;
            break;
        case YAML_SEQUENCE_START_EVENT:
            anchor = ev.data.sequence_start.anchor;
            tag = ev.data.sequence_start.tag;
            break;
        case YAML_MAPPING_START_EVENT:
            anchor = ev.data.mapping_start.anchor;
            tag = ev.data.mapping_start.tag;
            break;
        default:
            break;
        }
        if (rc == 0 && anchor)
            rc = fail_at(l, line, "(yaml)", "anchor &%s: anchors are not allowed",
                         (const char *)anchor);
        if (rc == 0 && tag)
            rc = fail_at(l, line, "(yaml)", "tag %s: tags are not allowed", (const char *)tag);
        int end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (rc < 0 || end)
            break;
    }
    yaml_parser_delete(&y);
    return rc;
}

static int load(const char *name, const char *region, const char *data, size_t len,
                struct policy **out, struct op_error *err)
{
    struct ld l = {name, data, len, NULL, NULL, err, region};
    if (len > POLICY_MAX_BYTES)
        return fail_at(&l, 1, "(file)", "larger than %d bytes (%zu)", POLICY_MAX_BYTES, len);
    long bad = entity_utf8_bad_offset(data, len);
    if (bad >= 0) {
        int line = 1;
        for (long i = 0; i < bad; i++)
            line += is_break(data, len, (size_t)i);
        return fail_at(&l, line, "(file)",
                       "not UTF-8 text (bad byte or control character at "
                       "byte %ld)",
                       bad + 1);
    }
    int rc = prescan(&l, (const unsigned char *)data, len);
    if (rc < 0)
        return rc;

    struct policy *p = calloc(1, sizeof *p);
    if (!p)
        return oom(&l);
    l.p = p;
    p->min_cell_size = 10;
    if (strlen(name) >= sizeof p->path) {
        free(p);
        return op_error_set(err, -ENAMETOOLONG, NULL, "%.80s...: path too long", name);
    }
    memcpy(p->path, name, strlen(name) + 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        free(p);
        return op_error_set(err, -EIO, NULL, "%s: cannot compute SHA-256", name);
    }
    (void)codec_hex_encode(md, mdlen, p->hash, sizeof p->hash);

    yaml_parser_t y;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&y)) {
        free(p);
        return oom(&l);
    }
    yaml_parser_set_input_string(&y, (const unsigned char *)data, len);
    yaml_parser_set_encoding(&y, YAML_UTF8_ENCODING);
    if (!yaml_parser_load(&y, &doc)) {
        rc = yaml_error(&l, &y);
        yaml_parser_delete(&y);
        policy_free(p);
        return rc;
    }
    yaml_parser_delete(&y);
    l.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        rc = fail_at(&l, 1, "(file)", "empty; a policy starts with format: %s", POLICY_FORMAT);
    else
        rc = load_root(&l, root);
    yaml_document_delete(&doc);
    if (rc < 0) {
        policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int policy_load_buffer(const char *name, const char *data, size_t len, struct policy **out,
                       struct op_error *err)
{
    return load(name, NULL, data, len, out, err);
}

int policy_load_buffer_for(const char *name, const char *region, const char *data, size_t len,
                           struct policy **out, struct op_error *err)
{
    return load(name, region, data, len, out, err);
}

/* Reads the file at path (a regular file, at most POLICY_MAX_BYTES) and
 * loads it, for `region` when not NULL. */
static int load_file(const char *path, const char *region, struct policy **out,
                     struct op_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return op_error_set(err, -errno, NULL, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return op_error_set(err, -e, NULL, "cannot read %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return op_error_set(err, -EINVAL, NULL, "%s: not a regular file", path);
    }
    if (st.st_size > POLICY_MAX_BYTES) {
        close(fd);
        return op_error_set(err, -EINVAL, "(file)", "%s:1: (file): larger than %d bytes (%lld)",
                            path, POLICY_MAX_BYTES, (long long)st.st_size);
    }
    /* One byte more than the cap, to notice a file that grew meanwhile. */
    char *buf = malloc(POLICY_MAX_BYTES + 1);
    if (!buf) {
        close(fd);
        return op_error_set(err, -ENOMEM, NULL, "%s: out of memory", path);
    }
    size_t len = 0;
    while (len < POLICY_MAX_BYTES + 1) {
        ssize_t n = read(fd, buf + len, POLICY_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return op_error_set(err, -e, NULL, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    int rc = load(path, region, buf, len, out, err);
    free(buf);
    return rc;
}

int policy_load_file(const char *path, struct policy **out, struct op_error *err)
{
    return load_file(path, NULL, out, err);
}

int policy_load_file_for(const char *path, const char *region, struct policy **out,
                         struct op_error *err)
{
    return load_file(path, region, out, err);
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    free_strv(p->preferred_channels, p->npreferred_channels);
    free(p->fields);
    free(p->forbidden);
    for (size_t i = 0; i < p->ncustom; i++) {
        struct policy_custom_field *cf = &p->custom[i];
        free_strv(cf->values, cf->nvalues);
        free(cf->labels);
        if (cf->regex) {
            regfree(cf->regex);
            free(cf->regex);
        }
    }
    free(p->custom);
    for (size_t i = 0; i < p->npins; i++)
        free_strv(p->pins[i].values, p->pins[i].nvalues);
    free(p->pins);
    free(p->consent);
    free(p->retention);
    free(p->aggregates);
    free(p->defines);
    free(p);
}

/* ---- lookups ------------------------------------------------------------ */

enum policy_class policy_class_of(const struct policy *p, const struct entity_def *e,
                                  const char *field)
{
    for (size_t i = 0; i < p->nfields; i++)
        if (p->fields[i].entity == e && !strcmp(p->fields[i].field, field))
            return p->fields[i].cls;
    return p->default_class;
}

const struct policy_forbidden *policy_forbidden_field(const struct policy *p,
                                                      const struct entity_def *e, const char *field)
{
    for (size_t i = 0; i < p->nforbidden; i++)
        if (p->forbidden[i].entity == e && !strcmp(p->forbidden[i].field, field))
            return &p->forbidden[i];
    return NULL;
}

const struct policy_custom_field *policy_custom_field(const struct policy *p,
                                                      const struct entity_def *e, const char *name)
{
    return custom_of(p, e, name);
}

const struct policy_consent_rule *policy_consent_for(const struct policy *p, const char *channel)
{
    for (size_t i = 0; i < p->nconsent; i++)
        if (!strcmp(p->consent[i].channel, channel))
            return &p->consent[i];
    return NULL;
}

const char *policy_retention_age_field(const struct entity_def *e)
{
    return e == &entity_activity ? "occurred_at" : "updated_at";
}

const struct policy_retention *policy_retention_for(const struct policy *p,
                                                    const struct entity_def *e)
{
    if (!p || !e || e == &entity_user)
        return NULL;
    for (size_t i = 0; i < p->nretention; i++)
        if (p->retention[i].entity == e)
            return &p->retention[i];
    return NULL;
}

uint64_t policy_retention_cutoff_ms(const struct policy_retention *r, uint64_t now_ms)
{
    uint64_t span = (uint64_t)r->days * UINT64_C(86400000);
    return now_ms > span ? now_ms - span : 0;
}

const char *policy_class_name(enum policy_class c)
{
    return (unsigned)c < POLICY_CLASS_COUNT ? class_names[c] : "?";
}

const char *policy_consent_mode_name(enum policy_consent_mode m)
{
    return (unsigned)m <= POLICY_CONSENT_OPT_OUT ? mode_names[m] : "?";
}

int policy_custom_check(const struct policy_custom_field *f, json_t *value, json_t **normalized,
                        struct op_error *err)
{
    char name[80];
    snprintf(name, sizeof name, "custom.%s", f->name);
    if (!value || json_is_null(value)) {
        *normalized = json_null();
        return 0;
    }
    struct field_def d = {name, FIELD_TEXT, 0, 0, NULL, NULL, NULL};
    json_t *v = NULL;
    int rc;
    switch (f->type) {
    case POLICY_CUSTOM_TEXT:
        d.max_len = f->max_length ? f->max_length : CUSTOM_TEXT_DEFAULT_MAX;
        rc = entity_normalize_value(&d, value, &v, err);
        if (rc < 0)
            return rc;
        if (f->regex && json_is_string(v) &&
            regexec(f->regex, json_string_value(v), 0, NULL, 0) != 0) {
            rc = op_error_set(err, -EINVAL, name, "%s: \"%.80s\" does not match the pattern %s",
                              name, json_string_value(v), f->pattern);
            json_decref(v);
            return rc;
        }
        break;
    case POLICY_CUSTOM_ENUM:
        d.type = FIELD_ENUM;
        d.max_len = VALUE_MAX;
        d.values = (const char *const *)f->values;
        if (!d.values)
            return op_error_set(err, -EINVAL, name, "%s: no values defined", name);
        rc = entity_normalize_value(&d, value, &v, err);
        if (rc < 0)
            return rc;
        break;
    case POLICY_CUSTOM_INTEGER: {
        if (json_is_integer(value)) {
            v = json_incref(value);
            break;
        }
        const char *s = json_is_string(value) ? json_string_value(value) : NULL;
        if (!s)
            return op_error_set(err, -EINVAL, name, "%s: expected a whole number", name);
        while (isspace((unsigned char)*s))
            s++;
        if (!*s) {
            v = json_null();
            break;
        }
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (errno || *end || !isdigit((unsigned char)s[*s == '-' || *s == '+']))
            return op_error_set(err, -EINVAL, name, "%s: expected a whole number: \"%.80s\"", name,
                                json_string_value(value));
        v = json_integer(n);
        if (!v)
            return op_error_set(err, -ENOMEM, name, "out of memory");
        break;
    }
    case POLICY_CUSTOM_DATE:
        d.type = FIELD_DATE;
        rc = entity_normalize_value(&d, value, &v, err);
        if (rc < 0)
            return rc;
        break;
    case POLICY_CUSTOM_BOOLEAN:
        d.type = FIELD_BOOL;
        rc = entity_normalize_value(&d, value, &v, err);
        if (rc < 0)
            return rc;
        break;
    default:
        return op_error_set(err, -EINVAL, name, "%s: unknown type", name);
    }
    *normalized = v;
    return 0;
}

/* ---- finding the file --------------------------------------------------- */

int policy_find_file(const char *region, char *out, size_t cap, struct op_error *err)
{
    if (!region || !valid_region(region))
        return op_error_set(err, -EINVAL, "region",
                            "\"%.40s\" is not a region code (A-Z, 0-9 and -, such as BR or EU-DE)",
                            region ? region : "");
    const char *env = getenv("OUTPOST_REGIONS_DIR");
    const char *dirs[3];
    size_t nd = 0;
    if (env && *env)
        dirs[nd++] = env;
    dirs[nd++] = OUTPOST_REGIONS_DIR;
    dirs[nd++] = OUTPOST_SOURCE_REGIONS_DIR;
    char looked[400];
    size_t o = 0;
    looked[0] = '\0';
    for (size_t i = 0; i < nd; i++) {
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/%s.yaml", dirs[i], region);
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if ((size_t)n >= cap)
                return op_error_set(err, -ENAMETOOLONG, NULL, "%s: path too long", path);
            memcpy(out, path, (size_t)n + 1);
            return 0;
        }
        if (o < sizeof looked) {
            int w = snprintf(looked + o, sizeof looked - o, "%s%s", i ? ", " : "", dirs[i]);
            o += w > 0 ? (size_t)w : 0;
        }
    }
    return op_error_set(err, -ENOENT, "region",
                        "no policy file %s.yaml for region %s (looked in %s; set "
                        "OUTPOST_REGIONS_DIR to a directory that has it)",
                        region, region, looked);
}
