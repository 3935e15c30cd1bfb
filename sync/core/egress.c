/*
 * The single egress function (see egress.h and docs/EGRESS.md): decides,
 * value by value, what of a record may leave the node under the region
 * policy, and is the only code that can make a struct egress_record, the
 * one type network code accepts.
 *
 * Invariant: every byte of an egress_record's JSON is a meta field, a
 * value whose class lets it leave as is, a pseudonym, or a JSON null; a
 * field this file cannot classify (unknown, internal, a custom key under a
 * class that keeps it here) is absent. When in doubt, withhold.
 */
#include "egress.h"

#include "codec.h"
#include "hlc.h"
#include "phone.h"
#include "projection_hash.h"
#include "region.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 64
/* The longest custom name a policy can classify (policy_custom_field.name
 * is char[64]); a longer key can only take the default class. */
#define CUSTOM_NAME_MAX 63

struct egress_record {
    const struct entity_def *entity;
    enum egress_op op;
    char id[ID_MAX];
    char policy_hash[POLICY_HASH_HEX];
    char *json;
    size_t len;
    /* made from json when first asked for, then kept (they describe
     * bytes that never change): egress_record_object, _field_digests */
    json_t *obj;
    json_t *digests;
};

static const char *const meta_fields[] = {"id",         "version", "created_at",
                                          "updated_at", "deleted", NULL};

static int is_meta(const char *name)
{
    for (size_t i = 0; meta_fields[i]; i++)
        if (!strcmp(meta_fields[i], name))
            return 1;
    return 0;
}

enum norm { NORM_TEXT, NORM_PHONE };

/* One projection in progress. */
struct run {
    const struct policy *p;
    const unsigned char *key;
    const struct entity_def *e;
    enum egress_reason whole; /* EGRESS_BY_CLASS, or why the whole record stays */
    json_t *out;              /* the projection; NULL when the record stays whole */
    json_t *custom_out;       /* the custom keys that leave */
    struct egress_counts c;
    egress_trace_fn trace;
    void *tctx;
    const char *phone_key; /* the store's key of "phone", vetted (known_key); NULL: parse */
};

const char *egress_outcome_name(enum egress_outcome o)
{
    switch (o) {
    case EGRESS_AS_IS:
        return "as-is";
    case EGRESS_PSEUDONYMIZED:
        return "pseudonymized";
    case EGRESS_WITHHELD:
    default:
        return "withheld";
    }
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* The normalized text of a value, malloc'ed, in *out (length *len):
 * strings trimmed and ASCII lower-cased; phone numbers by their key
 * (phone_to_e164, read as dialled in the region), so "030 1234567" and
 * "+49 (0)30 1234567" hash alike, or, when they are no valid number, the
 * trimmed text as typed: never a guess at E.164 that could meet another
 * person's number; anything else its compact JSON with sorted keys. */
static int normalize(enum norm kind, const struct region_info *region, json_t *v, char **out,
                     size_t *len)
{
    if (!json_is_string(v)) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!s)
            return -ENOMEM;
        *out = s;
        *len = strlen(s);
        return 0;
    }
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    size_t a = 0, b = n;
    while (a < b && is_space(s[a]))
        a++;
    while (b > a && is_space(s[b - 1]))
        b--;
    /* room for the trimmed text, or for an E.164 number (which can be
     * longer: a trunk prefix "0" becomes "+49") */
    size_t cap = b - a + 1 > PHONE_E164_MAX ? b - a + 1 : PHONE_E164_MAX;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    size_t k = 0;
    if (kind == NORM_PHONE) {
        char e164[PHONE_E164_MAX];
        memcpy(buf, s + a, b - a);
        buf[b - a] = '\0';
        if (strlen(buf) == b - a && phone_to_e164(buf, region, e164) == 0) {
            snprintf(buf, cap, "%s", e164);
            *out = buf;
            *len = strlen(buf);
            return 0;
        }
        k = b - a; /* the text as typed, already copied */
    } else {
        for (size_t i = a; i < b; i++)
            buf[k++] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    }
    buf[k] = '\0';
    *out = buf;
    *len = k;
    return 0;
}

/* SHA-256, fetched once: HMAC() fetches the MAC and the digest by name at
 * every call, which was a third of a pseudonym's cost (docs/BENCHMARKS.md,
 * "Cutting segments"). Kept for the process's life. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* HMAC-SHA-256 (RFC 2104) of value under the 32-byte key, into md[32]. */
static int hmac_sha256(const unsigned char key[EGRESS_KEY_BYTES], const char *value, size_t len,
                       unsigned char md[32])
{
    (void)pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md) {
        unsigned int mdlen = 0;
        return HMAC(EVP_sha256(), key, EGRESS_KEY_BYTES, (const unsigned char *)value, len, md,
                    &mdlen) &&
                       mdlen == 32
                   ? 0
                   : -EIO;
    }
    unsigned char ipad[64], opad[64], inner[32];
    memset(ipad, 0x36, sizeof ipad);
    memset(opad, 0x5c, sizeof opad);
    for (size_t i = 0; i < EGRESS_KEY_BYTES; i++) {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n1 = 0, n2 = 0;
    int ok = c && EVP_DigestInit_ex(c, sha256_md, NULL) && EVP_DigestUpdate(c, ipad, sizeof ipad) &&
             EVP_DigestUpdate(c, value, len) && EVP_DigestFinal_ex(c, inner, &n1) &&
             EVP_DigestInit_ex(c, sha256_md, NULL) && EVP_DigestUpdate(c, opad, sizeof opad) &&
             EVP_DigestUpdate(c, inner, sizeof inner) && EVP_DigestFinal_ex(c, md, &n2) &&
             n1 == 32 && n2 == 32;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -EIO;
}

int egress_pseudonym(const unsigned char key[EGRESS_KEY_BYTES], const char *value, size_t len,
                     char out[EGRESS_PSEUDONYM_LEN])
{
    unsigned char md[32];
    if (hmac_sha256(key, value, len, md) < 0)
        return -EIO;
    memcpy(out, EGRESS_PSEUDONYM_PREFIX, 2);
    (void)codec_hex_encode(md, EGRESS_PSEUDONYM_BYTES, out + 2, EGRESS_PSEUDONYM_LEN - 2);
    return 0;
}

/* The store's phone key when egress may take it for the policy p: made
 * under p's region, and an E.164 key ("+", digits, ";ext=" and digits,
 * shorter than PHONE_E164_MAX); else NULL, and the number is parsed. */
static const char *known_key(const struct policy *p, const struct egress_known *k)
{
    if (!k || !k->phone_key || !k->region || strcmp(k->region, p->region))
        return NULL;
    const char *s = k->phone_key;
    size_t n = strnlen(s, PHONE_E164_MAX);
    if (n < 2 || n >= PHONE_E164_MAX || s[0] != '+')
        return NULL;
    size_t i = 1;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i < 2)
        return NULL;
    if (i < n) {
        if (strncmp(s + i, ";ext=", 5))
            return NULL;
        size_t from = i += 5;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == from)
            return NULL;
    }
    return i == n ? s : NULL;
}

/* `name` is the field's name in the projection: the store's key stands
 * for the descriptor field "phone" only, and only for a string value
 * without NUL bytes (normalize reads anything else as typed). */
static int pseudonymize(const struct run *r, enum norm kind, const char *name, json_t *v,
                        json_t **out)
{
    char *norm;
    size_t len;
    int rc;
    char h[EGRESS_PSEUDONYM_LEN];
    if (kind == NORM_PHONE && r->phone_key && !strcmp(name, "phone") && json_is_string(v) &&
        strlen(json_string_value(v)) == json_string_length(v)) {
        rc = egress_pseudonym(r->key, r->phone_key, strlen(r->phone_key), h);
        if (rc < 0)
            return rc;
        *out = json_string(h);
        return *out ? 0 : -ENOMEM;
    }
    rc = normalize(kind, region_find(r->p->region), v, &norm, &len);
    if (rc < 0)
        return rc;
    rc = egress_pseudonym(r->key, norm, len, h);
    free(norm);
    if (rc < 0)
        return rc;
    *out = json_string(h);
    return *out ? 0 : -ENOMEM;
}

/* Decides one value: puts what may leave into `dst` under `key` (nothing
 * if withheld), counts and traces it. `name` is the field's full name
 * ("email", "custom.cpf"). */
static int decide(struct run *r, json_t *dst, const char *key, const char *name,
                  enum policy_class cls, enum egress_reason reason, enum norm kind, json_t *v)
{
    enum egress_outcome o;
    if ((unsigned)cls >= POLICY_CLASS_COUNT)
        cls = POLICY_LOCAL_ONLY; /* not a class this file knows: fail closed */
    if (reason == EGRESS_BY_CLASS && r->whole != EGRESS_BY_CLASS)
        reason = r->whole; /* unknown and internal stay what they are, for the counts */
    if (reason != EGRESS_BY_CLASS)
        o = EGRESS_WITHHELD;
    else if (cls == POLICY_EXPORTABLE || (cls == POLICY_LOCAL_PRIMARY && r->p->transfer_allowed))
        o = EGRESS_AS_IS;
    else if (cls == POLICY_PSEUDONYMIZE)
        o = EGRESS_PSEUDONYMIZED;
    else
        o = EGRESS_WITHHELD;

    if (dst && o == EGRESS_AS_IS) {
        if (json_object_set(dst, key, v) < 0)
            return -ENOMEM;
    } else if (dst && o == EGRESS_PSEUDONYMIZED) {
        json_t *h = json_null();
        if (!json_is_null(v)) {
            int rc = pseudonymize(r, kind, key, v, &h);
            if (rc < 0)
                return rc;
        }
        if (json_object_set_new(dst, key, h) < 0)
            return -ENOMEM;
    }
    if (json_is_null(v))
        return 0; /* nothing to count: no value, nothing learned */
    if (reason == EGRESS_UNKNOWN_FIELD)
        r->c.unknown++;
    else if (reason == EGRESS_INTERNAL)
        r->c.internal++;
    else
        r->c.values[cls][o]++;
    if (r->trace) {
        struct egress_event ev = {
            name,
            reason == EGRESS_UNKNOWN_FIELD || reason == EGRESS_INTERNAL ? POLICY_LOCAL_ONLY : cls,
            o, reason};
        r->trace(r->tctx, &ev);
    }
    return 0;
}

/* "custom.NAME" for a custom key; the class of a key too long for any
 * policy rule is the default class. */
static enum policy_class custom_class(const struct run *r, const char *key, char *name, size_t cap)
{
    snprintf(name, cap, "custom.%s", key);
    if (strlen(key) > CUSTOM_NAME_MAX)
        return r->p->default_class;
    return policy_class_of(r->p, r->e, name);
}

static int do_custom(struct run *r, json_t *custom)
{
    const char *key;
    json_t *v;
    char name[96];
    if (!json_is_object(custom)) {
        /* Not what the store writes; fail closed. */
        return decide(r, NULL, "custom", "custom", POLICY_LOCAL_ONLY, EGRESS_UNKNOWN_FIELD,
                      NORM_TEXT, custom);
    }
    json_object_foreach(custom, key, v)
    {
        enum policy_class cls = custom_class(r, key, name, sizeof name);
        int rc = decide(r, r->custom_out, key, name, cls, EGRESS_BY_CLASS, NORM_TEXT, v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The value of a pin's field as the policy writes pin values, or NULL
 * when it has none (null, objects, arrays never match). */
static const char *pin_text(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_true(v))
        return "true";
    if (json_is_false(v))
        return "false";
    return NULL;
}

/* The pin rule that keeps `record` on the node, or NULL. */
static const struct policy_pin *pin_of(const struct policy *p, const struct entity_def *e,
                                       json_t *record)
{
    for (size_t i = 0; i < p->npins; i++) {
        const struct policy_pin *pin = &p->pins[i];
        if (pin->entity != e)
            continue;
        json_t *v;
        if (!strncmp(pin->field, "custom.", 7))
            v = json_object_get(json_object_get(record, "custom"), pin->field + 7);
        else
            v = json_object_get(record, pin->field);
        char buf[32];
        const char *t = pin_text(v, buf, sizeof buf);
        if (!t)
            continue;
        for (size_t j = 0; j < pin->nvalues; j++)
            if (!strcmp(pin->values[j], t))
                return pin;
    }
    return NULL;
}

static int pinned(const struct policy *p, const struct entity_def *e, json_t *record)
{
    return pin_of(p, e, record) != NULL;
}

/* "deleted" true or a non-zero number: the record is a tombstone. */
static int deleted_flag(json_t *record)
{
    json_t *v = json_object_get(record, "deleted");
    if (json_is_true(v))
        return 1;
    if (json_is_integer(v))
        return json_integer_value(v) != 0;
    if (json_is_real(v))
        return json_real_value(v) != 0.0;
    return 0;
}

/* Anything but false, null or absent counts as restricted. */
static int restricted(json_t *record)
{
    json_t *v = json_object_get(record, "restricted");
    return v && !json_is_false(v) && !json_is_null(v);
}

int egress_withheld(const struct policy *p, const struct entity_def *e, json_t *record)
{
    if (!json_is_object(record) || restricted(record))
        return 1;
    return p && pinned(p, e, record);
}

static int walk(struct run *r, json_t *record)
{
    int rc;
    if (r->out) {
        for (size_t i = 0; meta_fields[i]; i++) {
            json_t *v = json_object_get(record, meta_fields[i]);
            if (v && json_object_set(r->out, meta_fields[i], v) < 0)
                return -ENOMEM;
        }
    }
    for (size_t i = 0; i < r->e->nfields; i++) {
        const struct field_def *f = &r->e->fields[i];
        json_t *v = json_object_get(record, f->name);
        if (!v || !strcmp(f->name, "custom"))
            continue;
        enum egress_reason why = (f->flags & FIELD_INTERNAL) ? EGRESS_INTERNAL : EGRESS_BY_CLASS;
        enum policy_class cls =
            why == EGRESS_INTERNAL ? POLICY_LOCAL_ONLY : policy_class_of(r->p, r->e, f->name);
        rc = decide(r, r->out, f->name, f->name, cls, why,
                    f->type == FIELD_PHONE ? NORM_PHONE : NORM_TEXT, v);
        if (rc < 0)
            return rc;
    }
    json_t *custom = json_object_get(record, "custom");
    if (custom && entity_field(r->e, "custom")) {
        rc = do_custom(r, custom);
        if (rc < 0)
            return rc;
    }
    const char *key;
    json_t *v;
    json_object_foreach(record, key, v)
    {
        if (is_meta(key) || entity_field(r->e, key))
            continue;
        rc = decide(r, NULL, key, key, POLICY_LOCAL_ONLY, EGRESS_UNKNOWN_FIELD, NORM_TEXT, v);
        if (rc < 0)
            return rc;
    }
    if (r->out && json_object_size(r->custom_out) > 0 &&
        json_object_set(r->out, "custom", r->custom_out) < 0)
        return -ENOMEM;
    return 0;
}

/* -EPERM for an entity that never leaves the node, whatever the policy. */
static int node_local(const struct entity_def *e, struct op_error *err)
{
    if (!(e->flags & ENTITY_NODE_LOCAL))
        return 0;
    return op_error_set(err, -EPERM, NULL,
                        "%s records are node-local: they never leave the node, whatever the policy",
                        e->name);
}

static int project(const struct policy *p, const unsigned char key[EGRESS_KEY_BYTES],
                   const struct entity_def *e, json_t *record, const struct egress_known *known,
                   struct egress_record **out, struct egress_counts *counts, egress_trace_fn trace,
                   void *ctx, struct op_error *err)
{
    int nl = node_local(e, err);
    if (nl < 0)
        return nl;
    if (!json_is_object(record))
        return op_error_set(err, -EINVAL, NULL, "%s: the record is not a JSON object", e->name);
    const char *id = json_string_value(json_object_get(record, "id"));
    if (!id || !*id)
        return op_error_set(err, -EINVAL, "id", "%s: the record has no id", e->name);
    if (strlen(id) >= ID_MAX)
        return op_error_set(err, -EINVAL, "id", "%s: the record id is longer than %d bytes",
                            e->name, ID_MAX - 1);

    struct run r = {
        .p = p, .key = key, .e = e, .trace = trace, .tctx = ctx, .phone_key = known_key(p, known)};
    r.c.records = 1;
    if (restricted(record)) {
        r.whole = EGRESS_RESTRICTED;
        r.c.records_restricted = 1;
    } else if (pinned(p, e, record)) {
        r.whole = EGRESS_PINNED;
        r.c.records_pinned = 1;
    } else {
        r.whole = EGRESS_BY_CLASS;
        r.out = json_object();
        r.custom_out = json_object();
        if (!r.out || !r.custom_out) {
            json_decref(r.out);
            json_decref(r.custom_out);
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        }
    }

    struct egress_record *rec = NULL;
    int rc = walk(&r, record);
    if (rc == 0 && r.out) {
        rec = calloc(1, sizeof *rec);
        if (rec)
            rec->json = json_dumps(r.out, JSON_COMPACT);
        if (!rec || !rec->json) {
            rc = -ENOMEM;
        } else {
            rec->entity = e;
            rec->op = deleted_flag(record) ? EGRESS_OP_DELETE : EGRESS_OP_UPSERT;
            rec->len = strlen(rec->json);
            snprintf(rec->id, sizeof rec->id, "%s", id);
            snprintf(rec->policy_hash, sizeof rec->policy_hash, "%s", p->hash);
            r.c.records_out = 1;
        }
    }
    json_decref(r.out);
    json_decref(r.custom_out);
    if (rc < 0) {
        egress_record_free(rec);
        if (rc == -ENOMEM)
            return op_error_set(err, rc, NULL, "out of memory");
        return op_error_set(err, rc, NULL, "%s %s: cannot compute a pseudonym", e->name, id);
    }
    if (counts)
        egress_counts_add(counts, &r.c);
    *out = rec;
    return 0;
}

int egress_project_traced(const struct policy *p, const unsigned char key[EGRESS_KEY_BYTES],
                          const struct entity_def *e, json_t *record, struct egress_record **out,
                          struct egress_counts *counts, egress_trace_fn trace, void *ctx,
                          struct op_error *err)
{
    return project(p, key, e, record, NULL, out, counts, trace, ctx, err);
}

int egress_project(const struct policy *p, const unsigned char key[EGRESS_KEY_BYTES],
                   const struct entity_def *e, json_t *record, struct egress_record **out,
                   struct egress_counts *counts, struct op_error *err)
{
    return project(p, key, e, record, NULL, out, counts, NULL, NULL, err);
}

int egress_project_known(const struct policy *p, const unsigned char key[EGRESS_KEY_BYTES],
                         const struct entity_def *e, json_t *record,
                         const struct egress_known *known, struct egress_record **out,
                         struct egress_counts *counts, struct op_error *err)
{
    return project(p, key, e, record, known, out, counts, NULL, NULL, err);
}

const char *egress_record_json(const struct egress_record *r)
{
    return r->json;
}

size_t egress_record_len(const struct egress_record *r)
{
    return r->len;
}

const struct entity_def *egress_record_entity(const struct egress_record *r)
{
    return r->entity;
}

const char *egress_record_id(const struct egress_record *r)
{
    return r->id;
}

const char *egress_record_policy_hash(const struct egress_record *r)
{
    return r->policy_hash;
}

void egress_record_free(struct egress_record *r)
{
    if (!r)
        return;
    json_decref(r->obj);
    json_decref(r->digests);
    free(r->json);
    free(r);
}

/* The kept parse of r's bytes; the cache is no part of the record's
 * value, so it is filled through a const pointer. */
const json_t *egress_record_object(const struct egress_record *r)
{
    struct egress_record *m = (struct egress_record *)r;
    if (!m->obj)
        m->obj = json_loadb(m->json, m->len, 0, NULL);
    return m->obj;
}

const json_t *egress_record_field_digests(const struct egress_record *r)
{
    struct egress_record *m = (struct egress_record *)r;
    if (!m->digests)
        m->digests = projection_field_digests(egress_record_object(r));
    return m->digests;
}

void egress_counts_add(struct egress_counts *dst, const struct egress_counts *src)
{
    dst->records += src->records;
    dst->records_out += src->records_out;
    dst->records_restricted += src->records_restricted;
    dst->records_pinned += src->records_pinned;
    for (int c = 0; c < POLICY_CLASS_COUNT; c++)
        for (int o = 0; o < EGRESS_OUTCOME_COUNT; o++)
            dst->values[c][o] += src->values[c][o];
    dst->unknown += src->unknown;
    dst->internal += src->internal;
}

/* ---- ops, tombstones, verification -------------------------------------- */

static const char *const op_names[EGRESS_OP_COUNT] = {"upsert",   "delete",    "erase", "purge",
                                                      "withdraw", "aggregate", "patch"};

const char *egress_op_name(enum egress_op op)
{
    if ((unsigned)op >= EGRESS_OP_COUNT)
        return "";
    return op_names[op];
}

int egress_op_parse(const char *name, enum egress_op *out)
{
    if (!name)
        return -EINVAL;
    for (int i = 0; i < EGRESS_OP_COUNT; i++)
        if (!strcmp(op_names[i], name)) {
            *out = (enum egress_op)i;
            return 0;
        }
    return -EINVAL;
}

enum egress_op egress_record_op(const struct egress_record *r)
{
    return r->op;
}

static int is_tombstone_op(enum egress_op op)
{
    return op == EGRESS_OP_ERASE || op == EGRESS_OP_PURGE || op == EGRESS_OP_WITHDRAW;
}

int egress_tombstone(const struct policy *p, const struct entity_def *e, const char *id,
                     int64_t version, enum egress_op op, struct egress_record **out,
                     struct op_error *err)
{
    int nl = node_local(e, err);
    if (nl < 0)
        return nl;
    if (!is_tombstone_op(op))
        return op_error_set(err, -EINVAL, "op",
                            "%s: a tombstone is for erase, purge or withdraw, not \"%s\"", e->name,
                            egress_op_name(op));
    if (!id || !*id)
        return op_error_set(err, -EINVAL, "id", "%s: the tombstone has no id", e->name);
    if (strlen(id) >= ID_MAX)
        return op_error_set(err, -EINVAL, "id", "%s: the record id is longer than %d bytes",
                            e->name, ID_MAX - 1);
    if (version < 0)
        return op_error_set(err, -EINVAL, "version", "%s %s: version %" PRId64 " is negative",
                            e->name, id, version);
    json_t *o = json_pack("{sssI}", "id", id, "version", (json_int_t)version);
    struct egress_record *rec = o ? calloc(1, sizeof *rec) : NULL;
    if (rec)
        rec->json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!rec || !rec->json) {
        egress_record_free(rec);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    rec->entity = e;
    rec->op = op;
    rec->len = strlen(rec->json);
    snprintf(rec->id, sizeof rec->id, "%s", id);
    snprintf(rec->policy_hash, sizeof rec->policy_hash, "%s", p->hash);
    *out = rec;
    return 0;
}

static int is_pseudonym(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || json_string_length(v) != EGRESS_PSEUDONYM_LEN - 1 || strncmp(s, "h:", 2) != 0)
        return 0;
    for (size_t i = 2; i < EGRESS_PSEUDONYM_LEN - 1; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Could `v` be what decide() let out of a field of class cls? */
static int check_value(const struct policy *p, const struct entity_def *e, const char *name,
                       enum policy_class cls, json_t *v, struct op_error *err)
{
    if ((unsigned)cls >= POLICY_CLASS_COUNT)
        cls = POLICY_LOCAL_ONLY;
    if (cls == POLICY_EXPORTABLE || (cls == POLICY_LOCAL_PRIMARY && p->transfer_allowed))
        return 0;
    if (cls == POLICY_PSEUDONYMIZE) {
        if (json_is_null(v) || is_pseudonym(v))
            return 0;
        return op_error_set(err, -EPERM, name,
                            "%s.%s: class pseudonymize under policy %.12s... leaves only as "
                            "\"h:\" and 32 hex digits; this value is plain",
                            e->name, name, p->hash);
    }
    return op_error_set(err, -EPERM, name,
                        "%s.%s: class %s%s under policy %.12s... never leaves the node", e->name,
                        name, policy_class_name(cls),
                        cls == POLICY_LOCAL_PRIMARY ? " (transfer not allowed)" : "", p->hash);
}

static int verify_custom(const struct policy *p, const struct entity_def *e, json_t *custom,
                         struct op_error *err)
{
    if (!entity_field(e, "custom"))
        return op_error_set(err, -EPERM, "custom",
                            "%s has no custom fields; \"custom\" cannot leave", e->name);
    if (!json_is_object(custom))
        return op_error_set(err, -EINVAL, "custom", "%s: \"custom\" is not a JSON object", e->name);
    struct run r = {.p = p, .e = e};
    const char *key;
    json_t *v;
    char name[96];
    json_object_foreach(custom, key, v)
    {
        enum policy_class cls = custom_class(&r, key, name, sizeof name);
        int rc = check_value(p, e, name, cls, v, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int verify_tombstone(const struct entity_def *e, enum egress_op op, json_t *record,
                            struct op_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(record, key, v)
    {
        if (strcmp(key, "id") != 0 && strcmp(key, "version") != 0)
            return op_error_set(err, -EPERM, key,
                                "%s %s tombstone: \"%s\" is not allowed; a tombstone holds only "
                                "id and version",
                                e->name, egress_op_name(op), key);
    }
    json_t *ver = json_object_get(record, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 0)
        return op_error_set(err, -EINVAL, "version",
                            "%s %s tombstone: version must be an integer of at least 0", e->name,
                            egress_op_name(op));
    return 0;
}

/* ---- aggregates ------------------------------------------------------------ */

/* The entity aggregate answers travel as: not a table, not in entity_all. */
static const struct entity_def aggregate_entity = {"aggregate", "aggregates", NULL, NULL, 0, 0};

#define AGG_LABEL_MAX 128

static int agg_label(const json_t *v, const char *field, struct op_error *err)
{
    if (!json_is_string(v) || json_string_length(v) > AGG_LABEL_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
        return op_error_set(err, -EINVAL, field,
                            "aggregate: %s must be a string of at most %d bytes", field,
                            AGG_LABEL_MAX);
    return 0;
}

static int agg_keys(const json_t *o, const char *const *allowed, const char *what,
                    struct op_error *err)
{
    if (!json_is_object(o))
        return op_error_set(err, -EINVAL, what, "aggregate: %s is not an object", what);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok)
            return op_error_set(err, -EINVAL, k, "aggregate: %s has an unknown key \"%.64s\"", what,
                                k);
        (void)v;
    }
    return 0;
}

static int agg_cell(const json_t *c, json_int_t k, const char *where, struct op_error *err)
{
    static const char *const keys[] = {"n", "s", "rate", "rs", "sum", NULL};
    int rc = agg_keys(c, keys, where, err);
    if (rc < 0)
        return rc;
    const json_t *n = json_object_get(c, "n");
    const char *s = json_string_value(json_object_get(c, "s"));
    if (json_is_null(n)) {
        if (!s || (strcmp(s, "primary") && strcmp(s, "secondary")))
            return op_error_set(err, -EINVAL, "s",
                                "aggregate: %s: a suppressed count needs s primary or secondary",
                                where);
    } else if (!json_is_integer(n) || json_integer_value(n) < 0) {
        return op_error_set(err, -EINVAL, "n", "aggregate: %s: n is not a count", where);
    } else if (json_integer_value(n) > 0 && json_integer_value(n) < k) {
        return op_error_set(err, -EPERM, "n",
                            "aggregate: %s: a count of %" JSON_INTEGER_FORMAT
                            " is under the minimum cell size %" JSON_INTEGER_FORMAT,
                            where, json_integer_value(n), k);
    }
    const json_t *r = json_object_get(c, "rate");
    if (r && !json_is_null(r) && (json_is_null(n) || !json_is_number(r)))
        return op_error_set(err, -EPERM, "rate", "aggregate: %s: a rate without its base", where);
    const json_t *sum = json_object_get(c, "sum");
    if (sum && !json_is_null(sum) && (json_is_null(n) || !json_is_integer(sum)))
        return op_error_set(err, -EPERM, "sum", "aggregate: %s: a sum without its count", where);
    return 0;
}

static int agg_cells(const json_t *a, size_t want, json_int_t k, const char *where,
                     struct op_error *err)
{
    if (!json_is_array(a) || json_array_size(a) != want)
        return op_error_set(err, -EINVAL, where, "aggregate: %s is not an array of %zu cells",
                            where, want);
    size_t i;
    const json_t *c;
    json_array_foreach(a, i, c)
    {
        int rc = agg_cell(c, k, where, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* An answer carries "noise" exactly when the policy sets aggregates.noise,
 * saying the mechanism, the policy's epsilon and the budget's period. */
static int agg_noise(const struct policy *p, const char *name, const json_t *z,
                     struct op_error *err)
{
    static const char *const keys[] = {"mechanism", "epsilon", "period", NULL};
    if (!p->noise.on)
        return z ? op_error_set(err, -EINVAL, "noise",
                                "aggregate %s: noise, but the %s policy adds none", name, p->region)
                 : 0;
    if (!z)
        return op_error_set(err, -EPERM, "noise",
                            "aggregate %s: exact counts, but the %s policy asks for noise", name,
                            p->region);
    int rc = agg_keys(z, keys, "noise", err);
    if (rc < 0)
        return rc;
    const char *m = json_string_value(json_object_get(z, "mechanism"));
    const json_t *e = json_object_get(z, "epsilon");
    double want = (double)p->noise.epsilon_micro / 1e6;
    if (!m || strcmp(m, "geometric") || !json_is_number(e) || json_number_value(e) < want - 5e-7 ||
        json_number_value(e) > want + 5e-7)
        return op_error_set(err, -EPERM, "noise",
                            "aggregate %s: noise is not the geometric mechanism at the policy's "
                            "epsilon",
                            name);
    return agg_label(json_object_get(z, "period"), "noise.period", err);
}

int egress_verify_aggregate(const struct policy *p, const json_t *r, struct op_error *err)
{
    static const char *const answer_keys[] = {
        "aggregate",     "request",    "region",     "policy_hash", "params", "computed_at",
        "min_cell_size", "rows_label", "cols_label", "value",       "cols",   "rows",
        "col_totals",    "total",      "noise",      NULL};
    static const char *const refusal_keys[] = {"aggregate", "request",     "region", "policy_hash",
                                               "refused",   "computed_at", NULL};
    if (!json_is_object(r))
        return op_error_set(err, -EINVAL, NULL, "aggregate: the record is not a JSON object");
    const char *name = json_string_value(json_object_get(r, "aggregate"));
    const char *hash = json_string_value(json_object_get(r, "policy_hash"));
    if (!name || strlen(name) > 64)
        return op_error_set(err, -EINVAL, "aggregate", "aggregate: no aggregate name");
    if (!hash || strcmp(hash, p->hash))
        return op_error_set(err, -EPERM, "policy_hash",
                            "aggregate %s: made under another policy than the one in force", name);
    const json_t *req = json_object_get(r, "request");
    if (req && !json_is_string(req))
        return op_error_set(err, -EINVAL, "request", "aggregate %s: request is not a string", name);
    if (json_object_get(r, "refused")) {
        int rc = agg_keys(r, refusal_keys, "the refusal", err);
        const json_t *why = json_object_get(r, "refused");
        if (rc == 0 && (!json_is_string(why) || json_string_length(why) > 512))
            rc = op_error_set(err, -EINVAL, "refused",
                              "aggregate %s: refused must be a reason of at most 512 bytes", name);
        return rc;
    }
    int allowed = 0;
    for (size_t i = 0; i < p->naggregates && !allowed; i++)
        allowed = !strcmp(p->aggregates[i].name, name);
    if (!allowed)
        return op_error_set(err, -EPERM, "aggregate",
                            "aggregate %s is not allowed by the %s policy", name, p->region);
    int rc = agg_keys(r, answer_keys, "the answer", err);
    if (rc < 0)
        return rc;
    if ((rc = agg_noise(p, name, json_object_get(r, "noise"), err)) < 0)
        return rc;
    json_int_t k = p->min_cell_size ? (json_int_t)p->min_cell_size : 10;
    if (json_integer_value(json_object_get(r, "min_cell_size")) != k)
        return op_error_set(err, -EPERM, "min_cell_size",
                            "aggregate %s: min_cell_size is not the policy's %" JSON_INTEGER_FORMAT,
                            name, k);
    const char *v;
    const json_t *x;
    json_object_foreach((json_t *)json_object_get(r, "params"), v,
                        x) if ((rc = agg_label(x, "params", err)) < 0) return rc;
    if ((rc = agg_label(json_object_get(r, "rows_label"), "rows_label", err)) < 0 ||
        (rc = agg_label(json_object_get(r, "cols_label"), "cols_label", err)) < 0 ||
        (rc = agg_label(json_object_get(r, "value"), "value", err)) < 0 ||
        (rc = agg_label(json_object_get(r, "computed_at"), "computed_at", err)) < 0)
        return rc;
    const json_t *cols = json_object_get(r, "cols"), *rows = json_object_get(r, "rows");
    if (!json_is_array(cols) || !json_is_array(rows))
        return op_error_set(err, -EINVAL, "rows", "aggregate %s: no cols or rows", name);
    size_t nc = json_array_size(cols), i;
    json_array_foreach(cols, i, x) if ((rc = agg_label(x, "cols", err)) < 0) return rc;
    static const char *const row_keys[] = {"key", "cells", "total", NULL};
    json_array_foreach(rows, i, x)
    {
        if ((rc = agg_keys(x, row_keys, "a row", err)) < 0 ||
            (rc = agg_label(json_object_get(x, "key"), "key", err)) < 0 ||
            (rc = agg_cells(json_object_get(x, "cells"), nc, k, "cells", err)) < 0 ||
            (rc = agg_cell(json_object_get(x, "total"), k, "total", err)) < 0)
            return rc;
    }
    if ((rc = agg_cells(json_object_get(r, "col_totals"), nc, k, "col_totals", err)) < 0 ||
        (rc = agg_cell(json_object_get(r, "total"), k, "total", err)) < 0)
        return rc;
    return 0;
}

int egress_aggregate(const struct policy *p, const char *json, size_t len,
                     struct egress_record **out, struct op_error *err)
{
    json_error_t je;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!r)
        return op_error_set(err, -EINVAL, NULL, "aggregate: not JSON: %s", je.text);
    int rc = egress_verify_aggregate(p, r, err);
    json_decref(r);
    if (rc < 0)
        return rc;
    struct egress_record *rec = calloc(1, sizeof *rec);
    if (rec)
        rec->json = strndup(json, len);
    if (!rec || !rec->json) {
        egress_record_free(rec);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    rec->entity = &aggregate_entity;
    rec->op = EGRESS_OP_AGGREGATE;
    rec->len = len;
    snprintf(rec->policy_hash, sizeof rec->policy_hash, "%s", p->hash);
    *out = rec;
    return 0;
}

static int verify_patch(const struct policy *p, const struct entity_def *e, const char *id,
                        json_t *record, struct op_error *err);

int egress_verify(const struct policy *p, const struct entity_def *e, enum egress_op op,
                  json_t *record, struct op_error *err)
{
    if (op == EGRESS_OP_AGGREGATE)
        return op_error_set(err, -EINVAL, "op",
                            "%s: an aggregate is checked by egress_verify_aggregate", e->name);
    int nl = node_local(e, err);
    if (nl < 0)
        return nl;
    if ((unsigned)op >= EGRESS_OP_COUNT)
        return op_error_set(err, -EINVAL, "op", "%s: unknown op %d", e->name, (int)op);
    if (!json_is_object(record))
        return op_error_set(err, -EINVAL, NULL, "%s: the record is not a JSON object", e->name);
    json_t *idv = json_object_get(record, "id");
    const char *id = json_string_value(idv);
    if (!id || !*id || strlen(id) != json_string_length(idv))
        return op_error_set(err, -EINVAL, "id", "%s: the record has no string id", e->name);
    if (strlen(id) >= ID_MAX)
        return op_error_set(err, -EINVAL, "id", "%s: the record id is longer than %d bytes",
                            e->name, ID_MAX - 1);
    if (is_tombstone_op(op))
        return verify_tombstone(e, op, record, err);
    if (op == EGRESS_OP_PATCH)
        return verify_patch(p, e, id, record, err);

    if ((op == EGRESS_OP_DELETE) != deleted_flag(record))
        return op_error_set(err, -EINVAL, "deleted",
                            "%s %s: op %s does not match its \"deleted\" flag", e->name, id,
                            egress_op_name(op));
    if (restricted(record))
        return op_error_set(err, -EPERM, "restricted",
                            "%s %s is flagged restricted: nothing of it may leave", e->name, id);
    const struct policy_pin *pin = pin_of(p, e, record);
    if (pin)
        return op_error_set(err, -EPERM, pin->field,
                            "%s %s: %s matches a pin_records rule (policy line %d): it stays on "
                            "the node",
                            e->name, id, pin->field, pin->line);
    const char *key;
    json_t *v;
    json_object_foreach(record, key, v)
    {
        int rc;
        if (is_meta(key))
            continue;
        if (!strcmp(key, "custom")) {
            rc = verify_custom(p, e, v, err);
        } else {
            const struct field_def *f = entity_field(e, key);
            if (!f)
                return op_error_set(err, -EPERM, key,
                                    "%s %s: \"%s\" is not a field of %s; unknown fields never "
                                    "leave",
                                    e->name, id, key, e->name);
            if (f->flags & FIELD_INTERNAL)
                return op_error_set(err, -EPERM, key, "%s %s: \"%s\" is internal and never leaves",
                                    e->name, id, key);
            rc = check_value(p, e, key, policy_class_of(p, e, key), v, err);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int egress_expired(const struct policy *p, const struct entity_def *e, json_t *record,
                   int64_t now_ms)
{
    const struct policy_retention *rule = policy_retention_for(p, e);
    if (!rule)
        return 0;
    if (!json_is_object(record))
        return -EINVAL;
    /* The age field is a UTC time like any FIELD_TIME column (updated_at is
     * not in the descriptor, so it gets one of its own). */
    static const struct field_def updated_at = {.name = "updated_at", .type = FIELD_TIME};
    const char *name = policy_retention_age_field(e);
    const struct field_def *f = entity_field(e, name);
    if (!f)
        f = &updated_at;
    json_t *v = json_object_get(record, name);
    json_t *norm = NULL;
    struct op_error err;
    if (!json_is_string(v) || entity_normalize_value(f, v, &norm, &err) < 0 ||
        !json_is_string(norm)) {
        json_decref(norm);
        return -EINVAL;
    }
    uint64_t cutoff = policy_retention_cutoff_ms(rule, now_ms > 0 ? (uint64_t)now_ms : 0);
    char iso[HLC_ISO_LEN];
    hlc_format_iso((hlc_stamp)cutoff << HLC_COUNTER_BITS, iso);
    int past = strcmp(json_string_value(norm), iso) < 0;
    json_decref(norm);
    return past;
}

/* ---- patches ------------------------------------------------------------- */

#define PATCH_NAME_MAX 96

static int patch_reserved(const char *k)
{
    return !strcmp(k, "id") || !strcmp(k, "version") || !strcmp(k, "base") || !strcmp(k, "unset");
}

static int verify_patch(const struct policy *p, const struct entity_def *e, const char *id,
                        json_t *record, struct op_error *err)
{
    json_t *ver = json_object_get(record, "version");
    json_t *base = json_object_get(record, "base");
    if (!json_is_integer(ver) || json_integer_value(ver) < 0)
        return op_error_set(err, -EINVAL, "version",
                            "%s %s patch: version must be an integer of at least 0", e->name, id);
    if (!json_is_integer(base) || json_integer_value(base) < 0 ||
        json_integer_value(base) > json_integer_value(ver))
        return op_error_set(err, -EINVAL, "base",
                            "%s %s patch: base must be an integer from 0 to its version", e->name,
                            id);
    json_t *unset = json_object_get(record, "unset");
    if (unset && !json_is_array(unset))
        return op_error_set(err, -EINVAL, "unset", "%s %s patch: unset is not an array", e->name,
                            id);
    size_t i;
    json_t *u;
    json_array_foreach(unset, i, u)
    {
        const char *name = json_string_value(u);
        if (!name || !*name || strlen(name) != json_string_length(u) ||
            strlen(name) > PATCH_NAME_MAX || patch_reserved(name))
            return op_error_set(err, -EINVAL, "unset",
                                "%s %s patch: unset[%zu] is not the name of a member", e->name, id,
                                i);
        if (json_object_get(record, name))
            return op_error_set(err, -EINVAL, name, "%s %s patch: \"%s\" is both set and unset",
                                e->name, id, name);
    }
    /* What it sets is checked as an upsert's members are. */
    json_t *rest = json_copy(record);
    if (!rest)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    json_object_del(rest, "base");
    json_object_del(rest, "unset");
    int rc = deleted_flag(rest) ? op_error_set(err, -EINVAL, "deleted",
                                               "%s %s patch: a patch never deletes", e->name, id)
                                : egress_verify(p, e, EGRESS_OP_UPSERT, rest, err);
    json_decref(rest);
    return rc;
}

int egress_patch(const struct egress_record *whole, int64_t base, const json_t *base_fields,
                 struct egress_record **out, struct op_error *err)
{
    if (!whole || whole->op != EGRESS_OP_UPSERT || !json_is_object(base_fields) || base < 0)
        return op_error_set(err, -EINVAL, NULL, "a patch is cut from an upsert against a base");
    /* the parse and digests the cut may have asked for already */
    json_t *w = (json_t *)egress_record_object(whole);
    if (!w)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    json_t *ver = json_object_get(w, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < base)
        return op_error_set(err, -EINVAL, "base", "%s %s: base %lld is above the version",
                            whole->entity->name, whole->id, (long long)base);
    const json_t *digests = egress_record_field_digests(whole);
    json_t *o = json_object();
    json_t *unset = json_array();
    int rc = digests && o && unset ? 0 : -ENOMEM;
    if (rc == 0 && (json_object_set(o, "id", json_object_get(w, "id")) < 0 ||
                    json_object_set(o, "version", ver) < 0 ||
                    json_object_set_new(o, "base", json_integer(base)) < 0))
        rc = -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(w, k, v)
    {
        if (rc < 0)
            break;
        if (!strcmp(k, "id") || !strcmp(k, "version"))
            continue;
        if (!json_equal(json_object_get(digests, k), json_object_get(base_fields, k)) &&
            json_object_set(o, k, v) < 0)
            rc = -ENOMEM;
    }
    json_object_foreach((json_t *)base_fields, k, v)
    {
        if (rc < 0)
            break;
        if (!json_object_get(w, k) && !patch_reserved(k) &&
            json_array_append_new(unset, json_string(k)) < 0)
            rc = -ENOMEM;
    }
    if (rc == 0 && json_array_size(unset) > 0 && json_object_set(o, "unset", unset) < 0)
        rc = -ENOMEM;
    struct egress_record *rec = NULL;
    if (rc == 0) {
        rec = calloc(1, sizeof *rec);
        if (rec)
            rec->json = json_dumps(o, JSON_COMPACT);
        if (!rec || !rec->json)
            rc = -ENOMEM;
    }
    json_decref(o);
    json_decref(unset);
    if (rc < 0) {
        egress_record_free(rec);
        return op_error_set(err, rc, NULL, "out of memory");
    }
    rec->entity = whole->entity;
    rec->op = EGRESS_OP_PATCH;
    rec->len = strlen(rec->json);
    snprintf(rec->id, sizeof rec->id, "%s", whole->id);
    snprintf(rec->policy_hash, sizeof rec->policy_hash, "%s", whole->policy_hash);
    *out = rec;
    return 0;
}

int egress_patch_merge(const struct entity_def *e, const json_t *base, const json_t *patch,
                       char **out, struct op_error *err)
{
    if (!json_is_object(base) || !json_is_object(patch))
        return op_error_set(err, -EINVAL, NULL, "%s: a patch merges objects", e->name);
    json_t *m = json_copy((json_t *)base);
    json_t *o = json_object();
    int rc = m && o ? 0 : -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (rc == 0 && strcmp(k, "base") && strcmp(k, "unset") && json_object_set(m, k, v) < 0)
            rc = -ENOMEM;
    }
    size_t i;
    json_array_foreach(json_object_get(patch, "unset"), i, v)
    {
        if (json_is_string(v))
            json_object_del(m, json_string_value(v));
    }
    /* egress_project's order: meta fields, descriptor fields, custom, then
     * anything else (a verified record has nothing else) */
    for (size_t j = 0; rc == 0 && meta_fields[j]; j++)
        if ((v = json_object_get(m, meta_fields[j])) && json_object_set(o, meta_fields[j], v) < 0)
            rc = -ENOMEM;
    for (size_t j = 0; rc == 0 && j < e->nfields; j++) {
        const char *name = e->fields[j].name;
        if (strcmp(name, "custom") && (v = json_object_get(m, name)) &&
            json_object_set(o, name, v) < 0)
            rc = -ENOMEM;
    }
    if (rc == 0 && (v = json_object_get(m, "custom")) && json_object_set(o, "custom", v) < 0)
        rc = -ENOMEM;
    json_object_foreach(m, k, v)
    {
        if (rc == 0 && !json_object_get(o, k) && json_object_set(o, k, v) < 0)
            rc = -ENOMEM;
    }
    char *text = rc == 0 ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(m);
    json_decref(o);
    if (!text)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    *out = text;
    return 0;
}
