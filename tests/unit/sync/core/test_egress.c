/*
 * Tests for sync/core/egress.c, the one function that decides what leaves a
 * node. The heart is a property test: under every shipped region profile
 * (schema/regions/<CODE>.yaml), thousands of random records of every entity get
 * a unique canary string in every text value that must not leave in clear;
 * egress_project must not let any canary out, whether raw, JSON-escaped,
 * base64-encoded or inside zlib-compressed output, while every value that
 * may leave does leave, exactly as the policy says. The leak detector is
 * tested first, so a detector that cannot see a leak fails the run.
 * The same property test holds HQ's check to the node's function: every
 * projection passes egress_verify under its profile, and every mutation
 * that puts back something the policy keeps (a withheld value, a plain
 * value for a pseudonym, an unknown or internal key) fails it with -EPERM
 * naming that field. Ops, tombstones and egress_verify's edges have
 * focused tests.
 *
 * EGRESS_SEED=N reproduces a run (the seed is printed); EGRESS_RECORDS=N
 * sets records per entity and profile (default 250).
 */
#include "egress.h"
#include "phone.h"
#include "projection_hash.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "entity.h"
#include "outpost_config.h"
#include "policy.h"
#include "testlib.h"

/* ---- random values ------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64: small, fast, and reproducible from the printed seed */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static unsigned rnd_below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static void rnd_uuid(char out[37])
{
    uint64_t a = rnd(), b = rnd();
    snprintf(out, 37, "%08" PRIx64 "-%04" PRIx64 "-7%03" PRIx64 "-8%03" PRIx64 "-%012" PRIx64,
             a >> 32, (a >> 16) & 0xffff, a & 0xfff, b >> 52, b & 0xffffffffffffu);
}

/* ---- the leak detector -------------------------------------------------- */

enum leak_channel {
    LEAK_RAW = 1 << 0,        /* the canary as is */
    LEAK_LOWER = 1 << 1,      /* ASCII lower-cased (what normalization would make of it) */
    LEAK_ESCAPED = 1 << 2,    /* as JSON escapes it, with or without ensure_ascii */
    LEAK_BASE64 = 1 << 3,     /* base64 of the canary, at any alignment, in the output */
    LEAK_OUT_BASE64 = 1 << 4, /* the canary inside base64 of the whole output */
    LEAK_ZLIB_RAW = 1 << 5,   /* the raw canary in the compressed bytes */
    LEAK_ZLIB = 1 << 6,       /* the canary in the output compressed then inflated */
};

static char *b64(const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[k++] = abc[(v >> 18) & 63];
        out[k++] = abc[(v >> 12) & 63];
        out[k++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[k] = '\0';
    return out;
}

/* The part of base64(x^shift + canary) that depends on the canary alone:
 * whatever stream carries the canary at offset = shift (mod 3), its base64
 * contains this. */
static char *b64_inner(const char *canary, size_t shift)
{
    size_t n = strlen(canary);
    unsigned char *buf = malloc(n + shift);
    if (!buf)
        abort();
    memset(buf, 'x', shift);
    memcpy(buf + shift, canary, n);
    char *enc = b64(buf, n + shift);
    free(buf);
    size_t g0 = shift ? 1 : 0, g1 = (n + shift) / 3;
    memmove(enc, enc + 4 * g0, 4 * (g1 - g0));
    enc[4 * (g1 - g0)] = '\0';
    return enc;
}

static int has(const void *hay, size_t n, const char *needle)
{
    return *needle && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* One output and the transformed forms of it a canary is searched in,
 * made once per output. */
struct hay {
    const char *out;
    size_t n;
    char *b64;        /* base64 of the whole output */
    unsigned char *z; /* zlib-compressed output */
    size_t zlen;
    char *plain; /* z inflated again */
    size_t plainlen;
};

static void hay_init(struct hay *h, const char *out, size_t n)
{
    h->out = out;
    h->n = n;
    h->b64 = b64((const unsigned char *)out, n);
    uLongf zcap = compressBound((uLong)n);
    h->z = malloc(zcap);
    if (!h->z ||
        compress2(h->z, &zcap, (const Bytef *)out, (uLong)n, Z_DEFAULT_COMPRESSION) != Z_OK)
        abort();
    h->zlen = zcap;
    uLongf back = (uLongf)n + 1;
    h->plain = malloc(back);
    if (!h->plain || uncompress((Bytef *)h->plain, &back, h->z, zcap) != Z_OK || back != n ||
        memcmp(h->plain, out, n) != 0)
        abort(); /* the round trip itself is broken: not a property of egress */
    h->plainlen = back;
}

static void hay_done(struct hay *h)
{
    free(h->b64);
    free(h->z);
    free(h->plain);
}

/* Which channels carry `canary` in the output. */
static unsigned leaks_in(const struct hay *h, const char *canary)
{
    unsigned found = 0;
    if (has(h->out, h->n, canary))
        found |= LEAK_RAW;

    char *lower = strdup(canary);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (has(h->out, h->n, lower))
        found |= LEAK_LOWER;
    free(lower);

    json_t *js = json_string(canary);
    size_t flags[2] = {JSON_ENCODE_ANY, JSON_ENCODE_ANY | JSON_ENSURE_ASCII};
    for (int i = 0; i < 2; i++) {
        char *esc = json_dumps(js, flags[i]);
        size_t len = strlen(esc);
        esc[len - 1] = '\0'; /* the quotes are not part of the value */
        if (has(h->out, h->n, esc + 1))
            found |= LEAK_ESCAPED;
        free(esc);
    }
    json_decref(js);

    for (size_t shift = 0; shift < 3; shift++) {
        char *inner = b64_inner(canary, shift);
        if (has(h->out, h->n, inner))
            found |= LEAK_BASE64;
        if (has(h->b64, strlen(h->b64), inner))
            found |= LEAK_OUT_BASE64;
        free(inner);
    }

    if (has(h->z, h->zlen, canary))
        found |= LEAK_ZLIB_RAW;
    if (has(h->plain, h->plainlen, canary))
        found |= LEAK_ZLIB;
    return found;
}

static unsigned leaks(const char *out, size_t n, const char *canary)
{
    struct hay h;
    hay_init(&h, out, n);
    unsigned f = leaks_in(&h, canary);
    hay_done(&h);
    return f;
}

/* The detector must see a canary in every form it claims to look for,
 * or the property test below proves nothing. */
static void test_detector_sees_leaks(void)
{
    const char *canary = "CANARY-contact-email-0123456789abcdef-\"é\\/";
    CHECK_EQ(leaks("{\"a\":\"nothing here\"}", 20, canary), 0);

    char buf[512];
    snprintf(buf, sizeof buf, "{\"x\":\"%s\"}", canary);
    unsigned f = leaks(buf, strlen(buf), canary);
    CHECK(f & LEAK_RAW);
    CHECK(f & LEAK_OUT_BASE64);
    CHECK(f & LEAK_ZLIB);

    /* only lower-cased */
    snprintf(buf, sizeof buf, "{\"x\":\"canary-contact-email-0123456789abcdef-\"}");
    CHECK_EQ(leaks(buf, strlen(buf), "CANARY-contact-email-0123456789abcdef-"), LEAK_LOWER);

    /* only JSON-escaped, as jansson writes it, and as ensure_ascii writes it */
    json_t *o = json_pack("{ss}", "x", canary);
    char *dumped = json_dumps(o, JSON_COMPACT);
    f = leaks(dumped, strlen(dumped), canary);
    CHECK(f & LEAK_ESCAPED);
    CHECK(!(f & LEAK_RAW));
    free(dumped);
    dumped = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    f = leaks(dumped, strlen(dumped), canary);
    CHECK(f & LEAK_ESCAPED);
    free(dumped);
    json_decref(o);

    /* only base64-encoded, at each of the three alignments */
    for (size_t shift = 0; shift < 3; shift++) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%.*s%s", (int)shift, "ab", canary);
        char *enc = b64((const unsigned char *)tmp, strlen(tmp));
        snprintf(buf, sizeof buf, "{\"x\":\"%s\"}", enc);
        f = leaks(buf, strlen(buf), canary);
        if (!(f & LEAK_BASE64))
            fprintf(stderr, "base64 at shift %zu not seen in %s\n", shift, buf);
        CHECK(f & LEAK_BASE64);
        CHECK(!(f & LEAK_RAW));
        free(enc);
    }

    /* compressed: the inflated bytes carry the canary. (The raw canary in
     * the compressed bytes is looked for too, but deflate Huffman-codes
     * literals, so only a stored block would show it; nothing to assert.) */
    char big[2048];
    size_t k = 0;
    for (int i = 0; i < 8; i++)
        k +=
            (size_t)snprintf(big + k, sizeof big - k, "%016" PRIx64 "CANARY-z-%d-unique", rnd(), i);
    f = leaks(big, k, "CANARY-z-3-unique");
    CHECK(f & LEAK_ZLIB);
    CHECK(f & LEAK_RAW);
}

/* ---- expected values, computed independently of egress.c ---------------- */

static void ref_pseudonym(const unsigned char key[32], json_t *v, int phone,
                          char out[EGRESS_PSEUDONYM_LEN])
{
    char *norm;
    size_t len;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        while (n && strchr(" \t\r\n\v\f", s[n - 1]))
            n--;
        while (n && strchr(" \t\r\n\v\f", s[0]))
            s++, n--;
        norm = malloc(n + 1);
        len = 0;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (phone) {
                norm[len++] = c; /* no valid number: the text as typed */
            } else {
                norm[len++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
        }
        norm[len] = '\0';
        char e164[PHONE_E164_MAX];
        if (phone && phone_to_e164(norm, NULL, e164) == 0) {
            free(norm);
            norm = strdup(e164);
            len = strlen(norm);
        }
    } else {
        norm = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        len = strlen(norm);
    }
    unsigned char md[32];
    unsigned mdlen;
    HMAC(EVP_sha256(), key, 32, (unsigned char *)norm, len, md, &mdlen);
    free(norm);
    out[0] = 'h';
    out[1] = ':';
    for (int i = 0; i < 16; i++) /* the first 128 bits */
        snprintf(out + 2 + 2 * i, 3, "%02x", md[i]);
}

static void key_fill(unsigned char key[32], unsigned char base)
{
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)(base + i);
}

/* A policy built by hand: one class for everything, no rules. */
static void bare_policy(struct policy *p, enum policy_class cls, int transfer)
{
    memset(p, 0, sizeof *p);
    snprintf(p->region, sizeof p->region, "TEST");
    snprintf(p->hash, sizeof p->hash, "%064d", 7);
    p->default_class = cls;
    p->transfer_allowed = transfer;
}

static json_t *contact(void)
{
    return json_pack("{ss si ss ss sb sn sb s{} ss ss ss ss sn}", "id",
                     "01936b2e-1f00-7000-8000-000000000001", "version", 3, "created_at",
                     "2026-11-24T13:10:35.123Z", "updated_at", "2026-11-24T13:10:36.000Z",
                     "deleted", 0, "owner_id", "restricted", 0, "custom", "given_name", " José ",
                     "family_name", "Müller", "email", "  Alice@Example.ORG ", "phone",
                     "+49 (30) 123-456", "street");
}

/* ---- focused tests ------------------------------------------------------ */

static void test_pseudonym_known_answer(void)
{
    unsigned char key[32];
    key_fill(key, 0);
    char h[EGRESS_PSEUDONYM_LEN];
    /* computed with Python's hmac module */
    CHECK_EQ(egress_pseudonym(key, "alice@example.org", 17, h), 0);
    CHECK_STR(h, "h:03a2cceef95fc1b3c5757f658be5a2fe");
    CHECK_EQ(egress_pseudonym(key, "+4930123456", 11, h), 0);
    CHECK_STR(h, "h:a8e7e7332706acefdd8dc40317e591cf");
}

static void test_classes_and_normalization(void)
{
    unsigned char key[32];
    key_fill(key, 0);
    struct policy p;
    bare_policy(&p, POLICY_PSEUDONYMIZE, 0);
    json_t *r = contact();
    struct egress_record *out = NULL;
    struct egress_counts c = {0};
    struct op_error err;
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, &c, &err), 0);
    CHECK(out != NULL);
    json_t *o = json_loads(egress_record_json(out), 0, NULL);
    CHECK(o != NULL);
    /* e-mail: trimmed and lower-cased; phone: its E.164 key */
    CHECK_STR(json_string_value(json_object_get(o, "email")), "h:03a2cceef95fc1b3c5757f658be5a2fe");
    CHECK_STR(json_string_value(json_object_get(o, "phone")), "h:a8e7e7332706acefdd8dc40317e591cf");
    /* text trimmed, ASCII folded; "José" keeps its é */
    char want[EGRESS_PSEUDONYM_LEN];
    json_t *jose = json_string("josé");
    ref_pseudonym(key, jose, 0, want);
    json_decref(jose);
    CHECK_STR(json_string_value(json_object_get(o, "given_name")), want);
    /* null stays null, and the key is there */
    CHECK(json_is_null(json_object_get(o, "street")));
    /* meta fields travel as they are, first, in order */
    CHECK_STR(json_string_value(json_object_get(o, "id")), "01936b2e-1f00-7000-8000-000000000001");
    CHECK_EQ(json_integer_value(json_object_get(o, "version")), 3);
    CHECK(json_is_false(json_object_get(o, "deleted")));
    CHECK(!strncmp(egress_record_json(out), "{\"id\":", 6));
    CHECK_STR(egress_record_id(out), "01936b2e-1f00-7000-8000-000000000001");
    CHECK(egress_record_entity(out) == &entity_contact);
    CHECK_STR(egress_record_policy_hash(out), p.hash);
    CHECK_EQ(egress_record_len(out), strlen(egress_record_json(out)));
    /* counts: 4 non-null text values, restricted=false and owner null */
    CHECK_EQ(c.records, 1);
    CHECK_EQ(c.records_out, 1);
    CHECK_EQ(c.values[POLICY_PSEUDONYMIZE][EGRESS_PSEUDONYMIZED], 5); /* + restricted */
    json_decref(o);
    egress_record_free(out);

    /* exportable: as is, untouched by normalization */
    bare_policy(&p, POLICY_EXPORTABLE, 0);
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
    CHECK_CONTAINS(egress_record_json(out), "\"  Alice@Example.ORG \"");
    egress_record_free(out);

    /* local_primary: as is with transfer, absent without */
    bare_policy(&p, POLICY_LOCAL_PRIMARY, 1);
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
    CHECK_CONTAINS(egress_record_json(out), "Alice@Example.ORG");
    egress_record_free(out);
    bare_policy(&p, POLICY_LOCAL_PRIMARY, 0);
    memset(&c, 0, sizeof c);
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, &c, &err), 0);
    CHECK(!strstr(egress_record_json(out), "lice"));
    json_t *back = json_loads(egress_record_json(out), 0, NULL);
    CHECK(back && !json_object_get(back, "email"));
    json_decref(back);
    CHECK_EQ(c.values[POLICY_LOCAL_PRIMARY][EGRESS_WITHHELD], 5);
    egress_record_free(out);

    /* local_only and aggregate_only: only meta fields leave */
    enum policy_class stay[] = {POLICY_LOCAL_ONLY, POLICY_AGGREGATE_ONLY};
    for (int i = 0; i < 2; i++) {
        bare_policy(&p, stay[i], 1);
        CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
        CHECK_STR(egress_record_json(out),
                  "{\"id\":\"01936b2e-1f00-7000-8000-000000000001\",\"version\":3,"
                  "\"created_at\":\"2026-11-24T13:10:35.123Z\","
                  "\"updated_at\":\"2026-11-24T13:10:36.000Z\",\"deleted\":false}");
        egress_record_free(out);
    }
    json_decref(r);
}

static void test_whole_record_withheld(void)
{
    unsigned char key[32];
    key_fill(key, 0);
    struct policy p;
    bare_policy(&p, POLICY_EXPORTABLE, 1);
    struct op_error err;
    /* restricted: true, and anything else that is not false or null */
    json_t *flags[] = {json_true(), json_integer(1), json_string("no")};
    for (int i = 0; i < 3; i++) {
        json_t *r = contact();
        /* a real projection as the sentinel: *out must be overwritten */
        struct egress_record *out = NULL;
        CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
        struct egress_record *sentinel = out;
        CHECK(out != NULL);
        json_object_set_new(r, "restricted", flags[i]);
        struct egress_counts c = {0};
        CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, &c, &err), 0);
        CHECK(out == NULL);
        egress_record_free(sentinel);
        CHECK_EQ(c.records_restricted, 1);
        CHECK_EQ(c.records_out, 0);
        CHECK_EQ(c.values[POLICY_EXPORTABLE][EGRESS_AS_IS], 0);
        CHECK_EQ(c.values[POLICY_EXPORTABLE][EGRESS_WITHHELD], 5);
        json_decref(r);
    }

    /* a pin on a built-in field and on a custom field */
    char *ru[] = {"RU", NULL}, *yes[] = {"true", NULL}, *num[] = {"42", NULL};
    struct policy_pin pins[3] = {
        {.entity = &entity_contact, .field = "country", .values = ru, .nvalues = 1},
        {.entity = &entity_contact, .field = "custom.citizen", .values = yes, .nvalues = 1},
        {.entity = &entity_contact, .field = "custom.level", .values = num, .nvalues = 1},
    };
    p.pins = pins;
    p.npins = 3;
    struct {
        const char *field;
        json_t *value;
        int pinned;
    } cases[] = {
        {"country", json_string("RU"), 1},       {"country", json_string("DE"), 0},
        {"custom.citizen", json_true(), 1},      {"custom.citizen", json_false(), 0},
        {"custom.citizen", json_string("x"), 0}, {"custom.level", json_integer(42), 1},
        {"custom.level", json_integer(41), 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r = contact();
        if (!strncmp(cases[i].field, "custom.", 7))
            json_object_set_new(json_object_get(r, "custom"), cases[i].field + 7, cases[i].value);
        else
            json_object_set_new(r, cases[i].field, cases[i].value);
        struct egress_record *out = NULL;
        struct egress_counts c = {0};
        CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, &c, &err), 0);
        if ((out == NULL) != cases[i].pinned)
            fprintf(stderr, "pin case %zu (%s) wrong\n", i, cases[i].field);
        CHECK_EQ(out == NULL, cases[i].pinned);
        CHECK_EQ(c.records_pinned, cases[i].pinned);
        egress_record_free(out);
        json_decref(r);
    }
    /* a pin for another entity does not apply */
    pins[0].entity = &entity_organization;
    json_t *r = contact();
    json_object_set_new(r, "country", json_string("RU"));
    struct egress_record *out = NULL;
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
    CHECK(out != NULL);
    egress_record_free(out);
    json_decref(r);
}

static void test_fail_closed(void)
{
    unsigned char key[32];
    key_fill(key, 0);
    struct policy p;
    bare_policy(&p, POLICY_EXPORTABLE, 1); /* everything the policy can name may leave */
    struct op_error err;
    struct egress_counts c = {0};
    struct egress_record *out = NULL;

    /* an unknown column, an internal field, a custom that is not an object;
     * users never leave at all, so a copy of their descriptor that could
     * stands in for an entity with an internal field */
    struct entity_def staff = entity_user;
    staff.flags &= ~(unsigned)ENTITY_NODE_LOCAL;
    json_t *u =
        json_pack("{ss ss ss ss s[s]}", "id", "u1", "name", "ana", "password_hash",
                  "$y$CANARY-hash", "shadow_col", "CANARY-unknown", "custom", "CANARY-in-array");
    CHECK_EQ(egress_project(&p, key, &staff, u, &out, &c, &err), 0);
    const char *j = egress_record_json(out);
    CHECK_CONTAINS(j, "\"name\":\"ana\"");
    CHECK(!strstr(j, "CANARY"));
    CHECK(!strstr(j, "password_hash"));
    CHECK(!strstr(j, "custom"));
    CHECK_EQ(c.internal, 1);
    CHECK_EQ(c.unknown, 2);
    egress_record_free(out);
    json_decref(u);

    /* custom keys leave one by one by class; none left: no "custom" key */
    struct policy_field_rule rules[1] = {
        {.entity = &entity_contact, .field = "custom.cpf", .cls = POLICY_LOCAL_ONLY}};
    p.fields = rules;
    p.nfields = 1;
    json_t *r = contact();
    json_object_set_new(json_object_get(r, "custom"), "cpf", json_string("CANARY-cpf"));
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
    CHECK(!strstr(egress_record_json(out), "CANARY"));
    CHECK(!strstr(egress_record_json(out), "custom"));
    egress_record_free(out);
    json_object_set_new(json_object_get(r, "custom"), "segment", json_string("varejo"));
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
    CHECK_CONTAINS(egress_record_json(out), "\"custom\":{\"segment\":\"varejo\"}");
    CHECK(!strstr(egress_record_json(out), "CANARY"));
    egress_record_free(out);
    /* a class value outside the enum is treated as local_only */
    rules[0].cls = (enum policy_class)99;
    CHECK_EQ(egress_project(&p, key, &entity_contact, r, &out, NULL, &err), 0);
    CHECK(!strstr(egress_record_json(out), "CANARY"));
    egress_record_free(out);
    json_decref(r);

    /* bad input */
    json_t *arr = json_array();
    CHECK_EQ(egress_project(&p, key, &entity_contact, arr, &out, NULL, &err), -EINVAL);
    json_decref(arr);
    json_t *noid = json_pack("{ss}", "email", "a@b.c");
    json_t *ok = contact();
    CHECK_EQ(egress_project(&p, key, &entity_contact, ok, &out, NULL, &err), 0);
    struct egress_record *sentinel = out;
    struct egress_counts before = c;
    CHECK_EQ(egress_project(&p, key, &entity_contact, noid, &out, &c, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "no id");
    CHECK(out == sentinel); /* untouched on failure, and nothing counted */
    CHECK(!memcmp(&before, &c, sizeof c));
    egress_record_free(sentinel);
    json_decref(ok);
    json_decref(noid);
}

struct trace_log {
    char lines[64][128];
    int n;
};

static void trace_cb(void *ctx, const struct egress_event *ev)
{
    struct trace_log *t = ctx;
    if (t->n < 64)
        snprintf(t->lines[t->n++], 128, "%s %s %s", ev->field, policy_class_name(ev->cls),
                 egress_outcome_name(ev->outcome));
}

static void test_trace_and_counts_add(void)
{
    unsigned char key[32];
    key_fill(key, 0);
    struct policy p;
    bare_policy(&p, POLICY_LOCAL_ONLY, 0);
    struct policy_field_rule rules[] = {
        {.entity = &entity_contact, .field = "email", .cls = POLICY_PSEUDONYMIZE},
        {.entity = &entity_contact, .field = "custom.tier", .cls = POLICY_EXPORTABLE},
    };
    p.fields = rules;
    p.nfields = 2;
    json_t *r = json_pack("{ss ss ss s{ss} ss}", "id", "x1", "email", "a@b.c", "phone", "1",
                          "custom", "tier", "gold", "mystery", "m");
    struct trace_log t = {0};
    struct egress_record *out = NULL;
    struct op_error err;
    CHECK_EQ(egress_project_traced(&p, key, &entity_contact, r, &out, NULL, trace_cb, &t, &err), 0);
    CHECK_EQ(t.n, 4);
    CHECK_STR(t.lines[0], "email pseudonymize pseudonymized");
    CHECK_STR(t.lines[1], "phone local_only withheld");
    CHECK_STR(t.lines[2], "custom.tier exportable as-is");
    CHECK_STR(t.lines[3], "mystery local_only withheld");
    egress_record_free(out);
    json_decref(r);

    struct egress_counts a = {0}, b = {0};
    a.records = 2;
    a.values[POLICY_PSEUDONYMIZE][EGRESS_PSEUDONYMIZED] = 3;
    b.records = 5;
    b.records_pinned = 1;
    b.values[POLICY_PSEUDONYMIZE][EGRESS_PSEUDONYMIZED] = 4;
    b.unknown = 2;
    egress_counts_add(&a, &b);
    CHECK_EQ(a.records, 7);
    CHECK_EQ(a.records_pinned, 1);
    CHECK_EQ(a.values[POLICY_PSEUDONYMIZE][EGRESS_PSEUDONYMIZED], 7);
    CHECK_EQ(a.unknown, 2);
}

/* ---- ops, tombstones, verify --------------------------------------------- */

static void test_ops(void)
{
    static const char *const names[] = {"upsert",   "delete",    "erase", "purge",
                                        "withdraw", "aggregate", "patch"};
    for (int i = 0; i < EGRESS_OP_COUNT; i++) {
        enum egress_op op = EGRESS_OP_COUNT;
        CHECK_STR(egress_op_name((enum egress_op)i), names[i]);
        CHECK_EQ(egress_op_parse(names[i], &op), 0);
        CHECK_EQ(op, i);
    }
    enum egress_op op = EGRESS_OP_PURGE;
    CHECK_EQ(egress_op_parse("Upsert", &op), -EINVAL);
    CHECK_EQ(egress_op_parse("", &op), -EINVAL);
    CHECK_EQ(egress_op_parse("erased", &op), -EINVAL);
    CHECK_EQ(egress_op_parse(NULL, &op), -EINVAL);
    CHECK_EQ(op, EGRESS_OP_PURGE); /* untouched on failure */
    CHECK_STR(egress_op_name(EGRESS_OP_COUNT), "");

    /* a projection's op follows its "deleted" flag */
    struct policy p;
    bare_policy(&p, POLICY_EXPORTABLE, 0);
    unsigned char key[32];
    key_fill(key, 3);
    struct {
        json_t *deleted;
        enum egress_op want;
    } cases[] = {
        {json_false(), EGRESS_OP_UPSERT}, {json_integer(0), EGRESS_OP_UPSERT},
        {json_null(), EGRESS_OP_UPSERT},  {NULL, EGRESS_OP_UPSERT},
        {json_true(), EGRESS_OP_DELETE},  {json_integer(1), EGRESS_OP_DELETE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *rec = contact();
        if (cases[i].deleted)
            json_object_set_new(rec, "deleted", cases[i].deleted);
        else
            json_object_del(rec, "deleted");
        struct egress_record *r = NULL;
        struct op_error err;
        CHECK_EQ(egress_project(&p, key, &entity_contact, rec, &r, NULL, &err), 0);
        if (r) {
            CHECK_EQ(egress_record_op(r), cases[i].want);
            json_t *o = json_loads(egress_record_json(r), 0, NULL);
            CHECK_EQ(egress_verify(&p, &entity_contact, cases[i].want, o, &err), 0);
            /* the other op does not match the flag */
            enum egress_op other =
                cases[i].want == EGRESS_OP_UPSERT ? EGRESS_OP_DELETE : EGRESS_OP_UPSERT;
            CHECK_EQ(egress_verify(&p, &entity_contact, other, o, &err), -EINVAL);
            CHECK_STR(err.field, "deleted");
            json_decref(o);
        }
        egress_record_free(r);
        json_decref(rec);
    }
}

static void test_tombstone(void)
{
    struct policy p;
    bare_policy(&p, POLICY_LOCAL_ONLY, 0);
    struct egress_record *r = NULL;
    struct op_error err;
    static const enum egress_op ops[] = {EGRESS_OP_ERASE, EGRESS_OP_PURGE, EGRESS_OP_WITHDRAW};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(egress_tombstone(&p, &entity_consent, "01936b2e-1f00-7000-8000-00000000000c",
                                  42 + i, ops[i], &r, &err),
                 0);
        if (!r)
            continue;
        char want[96];
        snprintf(want, sizeof want,
                 "{\"id\":\"01936b2e-1f00-7000-8000-00000000000c\",\"version\":%d}", 42 + i);
        CHECK_STR(egress_record_json(r), want);
        CHECK_EQ(egress_record_len(r), strlen(want));
        CHECK_EQ(egress_record_op(r), ops[i]);
        CHECK(egress_record_entity(r) == &entity_consent);
        CHECK_STR(egress_record_id(r), "01936b2e-1f00-7000-8000-00000000000c");
        CHECK_STR(egress_record_policy_hash(r), p.hash);
        /* HQ accepts it under the op it travels with, even where nothing
         * of the entity may leave */
        json_t *o = json_loads(egress_record_json(r), 0, NULL);
        CHECK_EQ(egress_verify(&p, &entity_consent, ops[i], o, &err), 0);
        json_decref(o);
        egress_record_free(r);
        r = NULL;
    }
    /* an id that needs escaping stays one JSON string */
    CHECK_EQ(egress_tombstone(&p, &entity_contact, "a\"b", 0, EGRESS_OP_ERASE, &r, &err), 0);
    if (r)
        CHECK_STR(egress_record_json(r), "{\"id\":\"a\\\"b\",\"version\":0}");
    egress_record_free(r);
    r = NULL;
    /* refusals */
    CHECK_EQ(egress_tombstone(&p, &entity_contact, "x", 1, EGRESS_OP_UPSERT, &r, &err), -EINVAL);
    CHECK_STR(err.field, "op");
    CHECK_EQ(egress_tombstone(&p, &entity_contact, "x", 1, EGRESS_OP_DELETE, &r, &err), -EINVAL);
    CHECK_EQ(egress_tombstone(&p, &entity_contact, "", 1, EGRESS_OP_ERASE, &r, &err), -EINVAL);
    CHECK_STR(err.field, "id");
    CHECK_EQ(egress_tombstone(&p, &entity_contact, NULL, 1, EGRESS_OP_ERASE, &r, &err), -EINVAL);
    char longid[80];
    memset(longid, 'a', 64);
    longid[64] = '\0';
    CHECK_EQ(egress_tombstone(&p, &entity_contact, longid, 1, EGRESS_OP_ERASE, &r, &err), -EINVAL);
    CHECK_STR(err.field, "id");
    CHECK_EQ(egress_tombstone(&p, &entity_contact, "x", -1, EGRESS_OP_ERASE, &r, &err), -EINVAL);
    CHECK_STR(err.field, "version");
    CHECK(r == NULL);
}

/* egress_verify on a JSON text; err->field is copied to field. */
static int verify_text(const struct policy *p, const struct entity_def *e, enum egress_op op,
                       const char *text, char *field, size_t cap)
{
    json_error_t je;
    json_t *o = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!o) {
        fprintf(stderr, "bad test JSON %s: %s\n", text, je.text);
        abort();
    }
    struct op_error err;
    op_error_clear(&err);
    int rc = egress_verify(p, e, op, o, &err);
    snprintf(field, cap, "%s", err.field);
    if (rc < 0 && !err.msg[0])
        snprintf(field, cap, "(no message)");
    json_decref(o);
    return rc;
}

/* The pseudonym of a phone number hashes its E.164 form under the node's
 * region, so national and international spellings meet at HQ. */
static const char *phone_pseudonym(const char *region, const char *phone, char *buf, size_t cap)
{
    struct policy p;
    bare_policy(&p, POLICY_PSEUDONYMIZE, 1);
    snprintf(p.region, sizeof p.region, "%s", region);
    unsigned char key[32];
    key_fill(key, 3);
    json_t *r = json_pack("{s:s, s:i, s:s}", "id", "c1", "version", 1, "phone", phone);
    struct egress_record *out = NULL;
    struct op_error err;
    op_error_clear(&err);
    buf[0] = '\0';
    if (egress_project(&p, key, &entity_contact, r, &out, NULL, &err) == 0 && out) {
        json_t *o = json_loads(egress_record_json(out), 0, NULL);
        snprintf(buf, cap, "%s", json_string_value(json_object_get(o, "phone")));
        json_decref(o);
    }
    egress_record_free(out);
    json_decref(r);
    return buf;
}

static void test_phone_e164(void)
{
    char a[64], b[64], c[64];
    CHECK_STR(phone_pseudonym("EU-DE", "030 123456", a, sizeof a),
              phone_pseudonym("EU-DE", "+49 30 123456", b, sizeof b));
    CHECK_STR(a, phone_pseudonym("EU-DE", "0049 (30) 123-456", c, sizeof c));
    CHECK_EQ(strlen(a), EGRESS_PSEUDONYM_LEN - 1);
    CHECK_STR(phone_pseudonym("KE", "0712 345678", a, sizeof a),
              phone_pseudonym("KE", "+254 712 345 678", b, sizeof b));
    /* the same national digits in another region are another number */
    CHECK(strcmp(a, phone_pseudonym("EU-DE", "0712 345678", c, sizeof c)) != 0);
    /* the spellings the former normalizer split in two meet */
    CHECK_STR(phone_pseudonym("AR", "011 15-1234-5678", a, sizeof a),
              phone_pseudonym("AR", "+54 9 11 1234-5678", b, sizeof b));
    CHECK_STR(phone_pseudonym("EU-DE", "+49 (0)30 1234567", a, sizeof a),
              phone_pseudonym("RU", "8 10 49 30 1234567", b, sizeof b));
    CHECK_STR(a, phone_pseudonym("US-TX", "011 49 30 1234567", c, sizeof c));
    CHECK_STR(phone_pseudonym("BR", "0 21 11 91234-5678", a, sizeof a),
              phone_pseudonym("BR", "+55 11 91234 5678", b, sizeof b));
    /* what is no valid number hashes the text as typed (trimmed), never an
     * E.164 guess: "4930 1234567" in Brazil is not the Berlin number */
    unsigned char key[32];
    key_fill(key, 3);
    char want[EGRESS_PSEUDONYM_LEN];
    CHECK_EQ(egress_pseudonym(key, "ext. 12", 7, want), 0);
    CHECK_STR(phone_pseudonym("EU-DE", " ext. 12 ", a, sizeof a), want);
    CHECK(strcmp(phone_pseudonym("BR", "4930 1234567", a, sizeof a),
                 phone_pseudonym("EU-DE", "+49 30 1234567", b, sizeof b)) != 0);
    CHECK_EQ(egress_pseudonym(key, "4930 1234567", 12, want), 0);
    CHECK_STR(a, want);
}

/* User accounts never leave, whatever the policy: projection, tombstone
 * and HQ's check all refuse them, even when every field is exportable. */
static void test_node_local_users(void)
{
    struct policy p;
    bare_policy(&p, POLICY_EXPORTABLE, 1);
    unsigned char key[32];
    key_fill(key, 0);
    json_t *u = json_pack("{s:s, s:i, s:s, s:s}", "id", "u1", "version", 1, "name", "maria", "role",
                          "manager");
    struct egress_record *out = NULL;
    struct egress_counts c = {0};
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(egress_project(&p, key, &entity_user, u, &out, &c, &err), -EPERM);
    CHECK_CONTAINS(err.msg, "user records are node-local");
    CHECK(out == NULL);
    CHECK_EQ(c.records, 0);
    op_error_clear(&err);
    out = NULL;
    CHECK_EQ(egress_tombstone(&p, &entity_user, "u1", 1, EGRESS_OP_ERASE, &out, &err), -EPERM);
    CHECK(out == NULL);
    op_error_clear(&err);
    CHECK_EQ(egress_verify(&p, &entity_user, EGRESS_OP_UPSERT, u, &err), -EPERM);
    CHECK_CONTAINS(err.msg, "never leave the node");
    json_decref(u);
    /* the same fields of a contact pass: the entity is the reason */
    json_t *k = json_pack("{s:s, s:i, s:s}", "id", "c1", "version", 1, "given_name", "maria");
    op_error_clear(&err);
    CHECK_EQ(egress_verify(&p, &entity_contact, EGRESS_OP_UPSERT, k, &err), 0);
    json_decref(k);
}

static void test_verify_edges(void)
{
    struct policy p;
    char f[64];
    const struct entity_def *c = &entity_contact;
    const char *h32 = "h:0123456789abcdef0123456789abcdef";
    char buf[512];

    /* malformed */
    bare_policy(&p, POLICY_EXPORTABLE, 1);
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, "[1]", f, sizeof f), -EINVAL);
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, "{\"given_name\":\"x\"}", f, sizeof f), -EINVAL);
    CHECK_STR(f, "id");
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":7}", f, sizeof f), -EINVAL);
    CHECK_STR(f, "id");
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"\"}", f, sizeof f), -EINVAL);
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\\u0000b\"}", f, sizeof f), -EINVAL);
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"custom\":[1]}", f, sizeof f),
             -EINVAL);
    CHECK_STR(f, "custom");
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_COUNT, "{\"id\":\"a\"}", f, sizeof f), -EINVAL);
    CHECK_STR(f, "op");
    /* everything exportable: any descriptor field, any custom key */
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT,
                         "{\"id\":\"a\",\"version\":2,\"created_at\":\"x\",\"updated_at\":\"y\","
                         "\"deleted\":false,\"given_name\":\"A\",\"email\":\"a@b\",\"restricted\":"
                         "false,\"custom\":{\"cpf\":\"123\"}}",
                         f, sizeof f),
             0);
    /* but never an internal or unknown field, nor a restricted record
     * (users never leave at all: a copy of their descriptor that could) */
    struct entity_def staff = entity_user;
    staff.flags &= ~(unsigned)ENTITY_NODE_LOCAL;
    CHECK_EQ(verify_text(&p, &staff, EGRESS_OP_UPSERT,
                         "{\"id\":\"a\",\"password_hash\":\"$argon2\"}", f, sizeof f),
             -EPERM);
    CHECK_STR(f, "password_hash");
    CHECK_EQ(
        verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"email_norm\":\"a@b\"}", f, sizeof f),
        -EPERM);
    CHECK_STR(f, "email_norm");
    CHECK_EQ(
        verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"restricted\":true}", f, sizeof f),
        -EPERM);
    CHECK_STR(f, "restricted");
    /* "custom" only where the entity has custom fields */
    static const struct field_def plain_fields[] = {{"name", FIELD_TEXT, 0, 10, NULL, NULL, NULL}};
    static const struct entity_def plain = {"plain", "plains", "plains", plain_fields, 1, 0};
    CHECK_EQ(
        verify_text(&p, &plain, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"name\":\"n\"}", f, sizeof f), 0);
    CHECK_EQ(verify_text(&p, &plain, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"custom\":{}}", f, sizeof f),
             -EPERM);
    CHECK_STR(f, "custom");

    /* local_primary: leaves only with transfer allowed */
    bare_policy(&p, POLICY_LOCAL_PRIMARY, 1);
    CHECK_EQ(
        verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"given_name\":\"A\"}", f, sizeof f),
        0);
    p.transfer_allowed = 0;
    CHECK_EQ(
        verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"given_name\":\"A\"}", f, sizeof f),
        -EPERM);
    CHECK_STR(f, "given_name");
    /* meta fields always leave */
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_DELETE,
                         "{\"id\":\"a\",\"version\":9,\"deleted\":true,\"updated_at\":\"z\"}", f,
                         sizeof f),
             0);

    /* pseudonymize: "h:" + 32 lower-case hex, or null; nothing else */
    bare_policy(&p, POLICY_PSEUDONYMIZE, 1);
    snprintf(buf, sizeof buf,
             "{\"id\":\"a\",\"email\":\"%s\",\"phone\":null,\"custom\":{\"x\":\"%s\"}}", h32, h32);
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, buf, f, sizeof f), 0);
    static const char *const not_pseudonyms[] = {
        "\"alice@example.org\"",
        "\"h:0123456789ABCDEF0123456789abcdef\"",
        "\"h:0123456789abcdef0123456789abcde\"",
        "\"h:0123456789abcdef0123456789abcdef0\"",
        "\"h:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"", /* 256 bits */
        "\"x:0123456789abcdef0123456789abcdef\"",
        "\"h:0123456789abcdef0123456789abcdeg\"",
        "12345",
        "{\"h\":1}",
        "true",
    };
    for (size_t i = 0; i < sizeof not_pseudonyms / sizeof not_pseudonyms[0]; i++) {
        snprintf(buf, sizeof buf, "{\"id\":\"a\",\"email\":%s}", not_pseudonyms[i]);
        CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, buf, f, sizeof f), -EPERM);
        CHECK_STR(f, "email");
        snprintf(buf, sizeof buf, "{\"id\":\"a\",\"custom\":{\"cpf\":%s}}", not_pseudonyms[i]);
        CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, buf, f, sizeof f), -EPERM);
        CHECK_STR(f, "custom.cpf");
    }

    /* local_only and aggregate_only: not even a null leaves */
    for (int cls = POLICY_LOCAL_ONLY; cls <= POLICY_AGGREGATE_ONLY; cls += POLICY_AGGREGATE_ONLY) {
        bare_policy(&p, (enum policy_class)cls, 1);
        CHECK_EQ(
            verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"street\":null}", f, sizeof f),
            -EPERM);
        CHECK_STR(f, "street");
        CHECK_EQ(verify_text(&p, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"version\":1}", f, sizeof f),
                 0);
    }

    /* tombstones: id and version only */
    bare_policy(&p, POLICY_EXPORTABLE, 1);
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_ERASE, "{\"id\":\"a\",\"version\":3}", f, sizeof f), 0);
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_ERASE,
                         "{\"id\":\"a\",\"version\":3,\"given_name\":\"Still exportable\"}", f,
                         sizeof f),
             -EPERM);
    CHECK_STR(f, "given_name");
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_PURGE, "{\"id\":\"a\",\"version\":3,\"deleted\":true}", f,
                         sizeof f),
             -EPERM);
    CHECK_STR(f, "deleted");
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_WITHDRAW, "{\"id\":\"a\"}", f, sizeof f), -EINVAL);
    CHECK_STR(f, "version");
    CHECK_EQ(verify_text(&p, c, EGRESS_OP_WITHDRAW, "{\"id\":\"a\",\"version\":-1}", f, sizeof f),
             -EINVAL);
    CHECK_EQ(
        verify_text(&p, c, EGRESS_OP_WITHDRAW, "{\"id\":\"a\",\"version\":\"3\"}", f, sizeof f),
        -EINVAL);

    /* a pinned record cannot have been projected */
    static const char PINNED[] = "format: outpost-region-policy/1\n"
                                 "region: RU\n"
                                 "country: RU\n"
                                 "transfer:\n"
                                 "  allowed: true\n"
                                 "  basis: \"test\"\n"
                                 "default_class: exportable\n"
                                 "default_basis: \"test\"\n"
                                 "pin_records:\n"
                                 "  - entity: contact\n"
                                 "    field: country\n"
                                 "    values: [RU]\n"
                                 "    basis: \"test\"\n";
    struct policy *pp = NULL;
    struct op_error err;
    int rc = policy_load_buffer("RU.yaml", PINNED, strlen(PINNED), &pp, &err);
    if (rc)
        fprintf(stderr, "pinned policy: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    if (pp) {
        CHECK_EQ(
            verify_text(pp, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"country\":\"DE\"}", f, sizeof f),
            0);
        CHECK_EQ(
            verify_text(pp, c, EGRESS_OP_UPSERT, "{\"id\":\"a\",\"country\":\"RU\"}", f, sizeof f),
            -EPERM);
        CHECK_STR(f, "country");
        policy_free(pp);
    }
}

/* ---- the property test over every shipped profile ------------------------ */

enum expect { EXP_AS_IS, EXP_PSEUDONYM, EXP_ABSENT };

struct exp_value {
    char key[96]; /* "email" or "custom.NAME" */
    enum expect what;
    int phone;
    json_t *value; /* borrowed from the record */
};

struct gen {
    const struct policy *p;
    const struct entity_def *e;
    json_t *rec;
    struct exp_value exp[64];
    size_t nexp;
    char canaries[64][160];
    size_t ncanaries;
    char markers[64][96]; /* exportable text that must appear */
    size_t nmarkers;
    struct egress_counts rc;   /* what egress_project must count for this record */
    struct egress_counts want; /* ... and for all records so far */
};

static int leaves_clear(const struct policy *p, enum policy_class cls)
{
    return cls == POLICY_EXPORTABLE || (cls == POLICY_LOCAL_PRIMARY && p->transfer_allowed);
}

static enum expect expect_for(const struct policy *p, enum policy_class cls)
{
    if (leaves_clear(p, cls))
        return EXP_AS_IS;
    return cls == POLICY_PSEUDONYMIZE ? EXP_PSEUDONYM : EXP_ABSENT;
}

/* A canary for a text value that must not leave in clear; a third carry
 * characters JSON escapes, so the escaped form differs from the raw. */
static const char *canary(struct gen *g, const char *field)
{
    char *c = g->canaries[g->ncanaries++];
    snprintf(c, 160, "CANARY-%s-%s-%016" PRIx64 "%s", g->e->name, field, rnd(),
             rnd_below(3) == 0 ? "-\"é\\/\t" : "");
    return c;
}

static const char *marker(struct gen *g, const char *field)
{
    char *m = g->markers[g->nmarkers++];
    snprintf(m, sizeof g->markers[0], "EXPORT-%.20s-%.40s-%016" PRIx64, g->e->name, field, rnd());
    return m;
}

/* A value of field type t; `secret` plants a canary where the type allows
 * one (text, e-mail, phone digits, strings inside objects). */
static json_t *gen_value(struct gen *g, const struct field_def *f, const char *name, int secret)
{
    char buf[256];
    switch (f->type) {
    case FIELD_TEXT:
        return json_string(secret ? canary(g, name) : marker(g, name));
    case FIELD_EMAIL:
        if (secret) {
            snprintf(buf, sizeof buf, " %s@Example.org ", canary(g, name));
            return json_string(buf);
        }
        snprintf(buf, sizeof buf, "%s@example.org", marker(g, name));
        return json_string(buf);
    case FIELD_PHONE: {
        /* the digits are the secret: a 15-digit run nothing else makes */
        char *c = g->canaries[g->ncanaries++];
        snprintf(c, 160, "9%014" PRIu64, rnd() % 100000000000000u);
        snprintf(buf, sizeof buf, "%s+%s", rnd_below(2) ? " " : "", c);
        if (!secret)
            g->ncanaries--; /* it may leave: not a canary */
        return json_string(buf);
    }
    case FIELD_COUNTRY:
        return json_string(rnd_below(2) ? "DE" : "BR");
    case FIELD_LANGUAGE:
        return json_string(rnd_below(2) ? "de" : "pt-BR");
    case FIELD_DATE:
        snprintf(buf, sizeof buf, "20%02u-%02u-%02u", rnd_below(30), 1 + rnd_below(12),
                 1 + rnd_below(28));
        return json_string(buf);
    case FIELD_TIME:
        snprintf(buf, sizeof buf, "2026-%02u-%02uT%02u:%02u:%02u.%03uZ", 1 + rnd_below(12),
                 1 + rnd_below(28), rnd_below(24), rnd_below(60), rnd_below(60), rnd_below(1000));
        return json_string(buf);
    case FIELD_ENUM: {
        size_t n = 0;
        while (f->values[n])
            n++;
        return json_string(f->values[rnd_below((unsigned)n)]);
    }
    case FIELD_MONEY:
        return json_integer((json_int_t)rnd_below(10000000));
    case FIELD_CURRENCY:
        return json_string(rnd_below(2) ? "EUR" : "BRL");
    case FIELD_REF: {
        char id[37];
        rnd_uuid(id);
        return json_string(id);
    }
    case FIELD_BOOL:
        return json_boolean(rnd_below(2));
    case FIELD_OBJECT:
        if (secret)
            return json_pack("{ss ss}", "ip", canary(g, name), "text_version", "v3");
        return json_pack("{ss}", "note", marker(g, name));
    }
    return json_null();
}

static json_t *gen_custom_value(struct gen *g, const struct policy_custom_field *cf,
                                const char *name, int secret)
{
    switch (cf->type) {
    case POLICY_CUSTOM_TEXT:
        return json_string(secret ? canary(g, name) : marker(g, name));
    case POLICY_CUSTOM_ENUM:
        return json_string(cf->nvalues ? cf->values[rnd_below((unsigned)cf->nvalues)] : "x");
    case POLICY_CUSTOM_INTEGER:
        return json_integer((json_int_t)rnd_below(100000));
    case POLICY_CUSTOM_DATE:
        return json_string("2025-02-03");
    case POLICY_CUSTOM_BOOLEAN:
        return json_boolean(rnd_below(2));
    }
    return json_null();
}

static void expect(struct gen *g, const char *key, enum expect what, int phone, json_t *v)
{
    struct exp_value *x = &g->exp[g->nexp++];
    snprintf(x->key, sizeof x->key, "%s", key);
    x->what = what;
    x->phone = phone;
    x->value = v;
}

/* Tallies what egress_project must count for one non-null value. */
static void tally(struct gen *g, enum policy_class cls, enum expect what, json_t *v)
{
    if (json_is_null(v))
        return;
    enum egress_outcome o = what == EXP_AS_IS       ? EGRESS_AS_IS
                            : what == EXP_PSEUDONYM ? EGRESS_PSEUDONYMIZED
                                                    : EGRESS_WITHHELD;
    g->rc.values[cls][o]++;
}

static void gen_record(struct gen *g)
{
    g->nexp = g->ncanaries = g->nmarkers = 0;
    memset(&g->rc, 0, sizeof g->rc);
    g->rc.records = 1;
    g->rec = json_object();
    char id[37];
    rnd_uuid(id);
    json_object_set_new(g->rec, "id", json_string(id));
    json_object_set_new(g->rec, "version", json_integer(1 + rnd_below(50)));
    json_object_set_new(g->rec, "created_at", json_string("2026-01-02T03:04:05.006Z"));
    json_object_set_new(g->rec, "updated_at", json_string("2026-11-24T13:10:35.123Z"));
    json_object_set_new(g->rec, "deleted", json_boolean(rnd_below(20) == 0));
    for (size_t i = 0; i < g->e->nfields; i++) {
        const struct field_def *f = &g->e->fields[i];
        if (!strcmp(f->name, "custom")) {
            json_t *custom = json_object();
            for (size_t k = 0; k < g->p->ncustom; k++) {
                const struct policy_custom_field *cf = &g->p->custom[k];
                if (cf->entity != g->e)
                    continue;
                char name[96];
                snprintf(name, sizeof name, "custom.%s", cf->name);
                enum policy_class cls = policy_class_of(g->p, g->e, name);
                json_t *v = gen_custom_value(g, cf, name, !leaves_clear(g->p, cls));
                json_object_set_new(custom, cf->name, v);
                expect(g, name, expect_for(g->p, cls), 0, v);
                tally(g, cls, expect_for(g->p, cls), v);
            }
            /* a key no policy declares: the default class decides */
            char key[48], name[96];
            snprintf(key, sizeof key, "undeclared_%08x", (unsigned)rnd());
            snprintf(name, sizeof name, "custom.%s", key);
            enum policy_class cls = policy_class_of(g->p, g->e, name);
            json_t *v = json_string(leaves_clear(g->p, cls) ? marker(g, name) : canary(g, name));
            json_object_set_new(custom, key, v);
            expect(g, name, expect_for(g->p, cls), 0, v);
            tally(g, cls, expect_for(g->p, cls), v);
            json_object_set_new(g->rec, "custom", custom);
            continue;
        }
        if (!strcmp(f->name, "restricted")) {
            json_t *v = json_false();
            enum policy_class cls = policy_class_of(g->p, g->e, f->name);
            json_object_set_new(g->rec, f->name, v);
            expect(g, f->name, expect_for(g->p, cls), 0, v);
            tally(g, cls, expect_for(g->p, cls), v);
            continue;
        }
        if (f->flags & FIELD_INTERNAL) {
            json_t *v = json_string(canary(g, f->name));
            json_object_set_new(g->rec, f->name, v);
            expect(g, f->name, EXP_ABSENT, 0, v);
            g->rc.internal++;
            continue;
        }
        enum policy_class cls = policy_class_of(g->p, g->e, f->name);
        json_t *v =
            rnd_below(10) == 0 ? json_null() : gen_value(g, f, f->name, !leaves_clear(g->p, cls));
        json_object_set_new(g->rec, f->name, v);
        expect(g, f->name, expect_for(g->p, cls), f->type == FIELD_PHONE, v);
        tally(g, cls, expect_for(g->p, cls), v);
    }
    /* a column the descriptor does not know: withheld whatever the policy */
    char key[48];
    snprintf(key, sizeof key, "unknown_%08x", (unsigned)rnd());
    json_t *v = json_string(canary(g, key));
    json_object_set_new(g->rec, key, v);
    expect(g, key, EXP_ABSENT, 0, v);
    g->rc.unknown++;
}

static json_t *out_value(json_t *o, const char *key)
{
    if (!strncmp(key, "custom.", 7))
        return json_object_get(json_object_get(o, "custom"), key + 7);
    return json_object_get(o, key);
}

struct prop_stats {
    uint64_t records, canaries, leaks, wrong, pinned, restricted;
    uint64_t verified, mutations; /* egress_verify: projections passed, mutations refused */
};

static void report_wrong(struct prop_stats *st, const struct gen *g, const char *what,
                         const char *out)
{
    if (st->wrong++ < 10) {
        char *rec = json_dumps(g->rec, JSON_COMPACT);
        fprintf(stderr, "%s %s: %s\n  record: %s\n  output: %s\n", g->p->region, g->e->name, what,
                rec, out);
        free(rec);
    }
}

/* Checks one projection against the expectations built with the record. */
static void check_projection(struct prop_stats *st, const struct gen *g,
                             const unsigned char key[32], const struct egress_record *out)
{
    const char *j = egress_record_json(out);
    struct hay h;
    hay_init(&h, j, egress_record_len(out));
    for (size_t i = 0; i < g->ncanaries; i++) {
        st->canaries++;
        unsigned f = leaks_in(&h, g->canaries[i]);
        if (f) {
            char what[256];
            snprintf(what, sizeof what, "canary %s leaked (channels 0x%x)", g->canaries[i], f);
            st->leaks++;
            report_wrong(st, g, what, j);
        }
    }
    hay_done(&h);
    json_t *o = json_loads(j, 0, NULL);
    if (!o) {
        report_wrong(st, g, "output is not JSON", j);
        return;
    }
    char what[256];
    /* every key of the output is expected to be there */
    size_t expected_keys = 5; /* meta */
    for (size_t i = 0; i < g->nexp; i++) {
        const struct exp_value *x = &g->exp[i];
        json_t *got = out_value(o, x->key);
        switch (x->what) {
        case EXP_ABSENT:
            if (got) {
                snprintf(what, sizeof what, "%s left but its class keeps it", x->key);
                report_wrong(st, g, what, j);
            }
            break;
        case EXP_AS_IS:
            if (!got || !json_equal(got, x->value)) {
                snprintf(what, sizeof what, "%s did not leave as is", x->key);
                report_wrong(st, g, what, j);
            }
            if (strncmp(x->key, "custom.", 7))
                expected_keys++;
            break;
        case EXP_PSEUDONYM: {
            char want[EGRESS_PSEUDONYM_LEN];
            if (json_is_null(x->value)) {
                if (!json_is_null(got)) {
                    snprintf(what, sizeof what, "%s: null did not stay null", x->key);
                    report_wrong(st, g, what, j);
                }
            } else {
                ref_pseudonym(key, x->value, x->phone, want);
                if (!json_is_string(got) || strcmp(json_string_value(got), want)) {
                    snprintf(what, sizeof what, "%s: pseudonym is not %s", x->key, want);
                    report_wrong(st, g, what, j);
                }
            }
            if (strncmp(x->key, "custom.", 7))
                expected_keys++;
            break;
        }
        }
    }
    for (size_t i = 0; i < g->nmarkers; i++)
        if (!strstr(j, g->markers[i])) {
            snprintf(what, sizeof what, "exportable value %s missing", g->markers[i]);
            report_wrong(st, g, what, j);
        }
    if (json_object_get(o, "custom"))
        expected_keys++;
    if (json_object_size(o) != expected_keys) {
        snprintf(what, sizeof what, "output has %zu keys, expected %zu", json_object_size(o),
                 expected_keys);
        report_wrong(st, g, what, j);
    }
    json_decref(o);
}

/* Sets key ("name" or "custom.NAME") of projection o to v (a new
 * reference is taken). */
static void put_value(json_t *o, const char *key, json_t *v)
{
    if (!strncmp(key, "custom.", 7)) {
        json_t *c = json_object_get(o, "custom");
        if (!c) {
            c = json_object();
            json_object_set_new(o, "custom", c);
        }
        json_object_set(c, key + 7, v);
    } else {
        json_object_set(o, key, v);
    }
}

/* One mutation of a passing projection: must fail with -EPERM naming key. */
static void expect_refused(struct prop_stats *st, const struct gen *g, enum egress_op op,
                           json_t *mutant, const char *key, const char *what)
{
    struct op_error err;
    op_error_clear(&err);
    int rc = egress_verify(g->p, g->e, op, mutant, &err);
    st->mutations++;
    if (rc != -EPERM || strcmp(err.field, key) != 0 || !err.msg[0]) {
        char *j = json_dumps(mutant, JSON_COMPACT);
        char msg[512];
        snprintf(msg, sizeof msg, "%s (%s): egress_verify gave %d field \"%s\", want -EPERM \"%s\"",
                 what, key, rc, err.field, key);
        report_wrong(st, g, msg, j ? j : "");
        free(j);
    }
}

/* HQ's check agrees with the node's function: the projection passes, and
 * each way of putting back what the policy keeps is refused. */
static void verify_projection(struct prop_stats *st, const struct gen *g,
                              const struct egress_record *out)
{
    enum egress_op op = egress_record_op(out);
    json_t *o = json_loads(egress_record_json(out), 0, NULL);
    struct op_error err;
    op_error_clear(&err);
    int rc = egress_verify(g->p, g->e, op, o, &err);
    if (rc != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "egress_verify refused a projection: %d %s: %s", rc, err.field,
                 err.msg);
        report_wrong(st, g, msg, egress_record_json(out));
        json_decref(o);
        return;
    }
    st->verified++;
    /* one mutation per kept value, each on a fresh copy */
    for (size_t i = 0; i < g->nexp; i++) {
        const struct exp_value *x = &g->exp[i];
        if (x->what == EXP_AS_IS || (json_is_null(x->value) && x->what == EXP_PSEUDONYM))
            continue;
        json_t *m = json_deep_copy(o);
        put_value(m, x->key, x->value);
        expect_refused(st, g, op, m, x->key,
                       x->what == EXP_PSEUDONYM ? "plain value for a pseudonym"
                                                : "withheld value put back");
        json_decref(m);
    }
    /* an unknown key, however innocent its value */
    json_t *m = json_deep_copy(o);
    json_object_set_new(m, "hq_note", json_string("x"));
    expect_refused(st, g, op, m, "hq_note", "unknown key");
    json_decref(m);
    /* an internal field of the entity, if it has one */
    for (size_t i = 0; i < g->e->nfields; i++)
        if (g->e->fields[i].flags & FIELD_INTERNAL) {
            m = json_deep_copy(o);
            json_object_set_new(m, g->e->fields[i].name, json_null());
            expect_refused(st, g, op, m, g->e->fields[i].name, "internal field");
            json_decref(m);
        }
    /* the same record as a tombstone carries nothing but id and version */
    m = json_pack("{sOsO}", "id", json_object_get(o, "id"), "version",
                  json_object_get(o, "version"));
    op_error_clear(&err);
    if (egress_verify(g->p, g->e, EGRESS_OP_ERASE, m, &err) != 0)
        report_wrong(st, g, "a tombstone of the record was refused", err.msg);
    json_object_set(m, "updated_at", json_object_get(o, "updated_at"));
    expect_refused(st, g, EGRESS_OP_ERASE, m, "updated_at", "tombstone with an extra key");
    json_decref(m);
    json_decref(o);
}

/* A pin value as the record would hold it (a custom field's own type). */
static json_t *pin_json(const struct policy *p, const struct policy_pin *pin, const char *text)
{
    if (!strncmp(pin->field, "custom.", 7)) {
        const struct policy_custom_field *cf = policy_custom_field(p, pin->entity, pin->field + 7);
        if (cf && cf->type == POLICY_CUSTOM_INTEGER)
            return json_integer(strtoll(text, NULL, 10));
        if (cf && cf->type == POLICY_CUSTOM_BOOLEAN)
            return json_boolean(!strcmp(text, "true"));
    }
    return json_string(text);
}

/* Whether a pin rule matches, decided here independently of egress.c. */
static int ref_pinned(const struct policy *p, const struct entity_def *e, json_t *rec)
{
    for (size_t i = 0; i < p->npins; i++) {
        if (p->pins[i].entity != e)
            continue;
        const char *f = p->pins[i].field;
        json_t *v = !strncmp(f, "custom.", 7)
                        ? json_object_get(json_object_get(rec, "custom"), f + 7)
                        : json_object_get(rec, f);
        char buf[32];
        const char *t = NULL;
        if (json_is_string(v))
            t = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)), t = buf;
        else if (json_is_boolean(v))
            t = json_is_true(v) ? "true" : "false";
        for (size_t k = 0; t && k < p->pins[i].nvalues; k++)
            if (!strcmp(t, p->pins[i].values[k]))
                return 1;
    }
    return 0;
}

static void property_one_profile(const struct policy *p, unsigned nrec, struct prop_stats *st)
{
    unsigned char key[32], key2[32];
    key_fill(key, (unsigned char)rnd());
    key_fill(key2, (unsigned char)(key[0] + 1));
    struct egress_counts got = {0};
    struct gen g = {.p = p};
    for (size_t ei = 0; entity_all[ei]; ei++) {
        g.e = entity_all[ei];
        if (g.e->flags & ENTITY_NODE_LOCAL)
            continue; /* refused whole: test_node_local_users */
        for (unsigned i = 0; i < nrec; i++) {
            /* every 25th record is flagged restricted; the next pinned */
            int kind = (int)(i % 25);
            const struct policy_pin *pin = NULL;
            for (size_t k = 0; kind == 1 && k < p->npins; k++)
                if (p->pins[k].entity == g.e && p->pins[k].nvalues)
                    pin = &p->pins[k];
            /* other records must not match a pin by chance (a random enum
             * value can be a pinned one) */
            gen_record(&g);
            for (int tries = 0; kind != 0 && !pin && ref_pinned(p, g.e, g.rec); tries++) {
                json_decref(g.rec);
                if (tries > 1000)
                    abort();
                gen_record(&g);
            }
            st->records++;
            struct op_error err;
            struct egress_record *out = NULL;

            if (kind == 0 || pin) {
                if (kind == 0) {
                    json_object_set_new(g.rec, "restricted", json_true());
                    g.rc.records_restricted = 1;
                    st->restricted++;
                } else {
                    json_t *pv = pin_json(p, pin, pin->values[rnd_below((unsigned)pin->nvalues)]);
                    json_t *holder = g.rec;
                    const char *field = pin->field;
                    if (!strncmp(pin->field, "custom.", 7)) {
                        holder = json_object_get(g.rec, "custom");
                        field += 7;
                    }
                    json_t *was = json_object_get(holder, field);
                    if (!was || json_is_null(was)) /* one more value to count */
                        g.rc.values[policy_class_of(p, g.e, pin->field)][EGRESS_WITHHELD]++;
                    json_object_set_new(holder, field, pv);
                    g.rc.records_pinned = 1;
                    st->pinned++;
                }
                /* nothing leaves: every value counts as withheld */
                for (int cls = 0; cls < POLICY_CLASS_COUNT; cls++) {
                    g.rc.values[cls][EGRESS_WITHHELD] +=
                        g.rc.values[cls][EGRESS_AS_IS] + g.rc.values[cls][EGRESS_PSEUDONYMIZED];
                    g.rc.values[cls][EGRESS_AS_IS] = g.rc.values[cls][EGRESS_PSEUDONYMIZED] = 0;
                }
                egress_counts_add(&g.want, &g.rc);
                int rc = egress_project(p, key, g.e, g.rec, &out, &got, &err);
                if (rc != 0 || out != NULL)
                    report_wrong(st, &g,
                                 kind == 0 ? "restricted record left" : "pinned record left",
                                 out ? egress_record_json(out) : err.msg);
                egress_record_free(out);
                json_decref(g.rec);
                continue;
            }

            g.rc.records_out = 1;
            egress_counts_add(&g.want, &g.rc);
            int rc = egress_project(p, key, g.e, g.rec, &out, &got, &err);
            if (rc != 0 || !out) {
                report_wrong(st, &g, rc ? err.msg : "an ordinary record did not leave", "");
                json_decref(g.rec);
                continue;
            }
            check_projection(st, &g, key, out);
            verify_projection(st, &g, out);

            /* stable: the same record projects to the same bytes */
            struct egress_record *again = NULL;
            if (egress_project(p, key, g.e, g.rec, &again, NULL, &err) != 0 || !again ||
                strcmp(egress_record_json(again), egress_record_json(out)))
                report_wrong(st, &g, "projection not stable across calls", egress_record_json(out));
            egress_record_free(again);

            /* another node's key gives other pseudonyms */
            if (i % 10 == 3) {
                struct egress_record *other = NULL;
                if (egress_project(p, key2, g.e, g.rec, &other, NULL, &err) == 0 && other) {
                    json_t *a = json_loads(egress_record_json(out), 0, NULL);
                    json_t *b = json_loads(egress_record_json(other), 0, NULL);
                    for (size_t k = 0; k < g.nexp; k++) {
                        if (g.exp[k].what != EXP_PSEUDONYM || json_is_null(g.exp[k].value))
                            continue;
                        if (json_equal(out_value(a, g.exp[k].key), out_value(b, g.exp[k].key)))
                            report_wrong(st, &g, "same pseudonym under another key",
                                         egress_record_json(other));
                    }
                    json_decref(a);
                    json_decref(b);
                } else {
                    report_wrong(st, &g, "projection under a second key failed", "");
                }
                egress_record_free(other);
            }
            egress_record_free(out);
            json_decref(g.rec);
        }
    }
    /* the counts add up to what the records held */
    if (memcmp(&got, &g.want, sizeof got)) {
        fprintf(stderr,
                "%s: counts differ: records %" PRIu64 "/%" PRIu64 " out %" PRIu64 "/%" PRIu64
                " restricted %" PRIu64 "/%" PRIu64 " pinned %" PRIu64 "/%" PRIu64
                " unknown %" PRIu64 "/%" PRIu64 " internal %" PRIu64 "/%" PRIu64 "\n",
                p->region, got.records, g.want.records, got.records_out, g.want.records_out,
                got.records_restricted, g.want.records_restricted, got.records_pinned,
                g.want.records_pinned, got.unknown, g.want.unknown, got.internal, g.want.internal);
        for (int cls = 0; cls < POLICY_CLASS_COUNT; cls++)
            for (int o = 0; o < EGRESS_OUTCOME_COUNT; o++)
                if (got.values[cls][o] != g.want.values[cls][o])
                    fprintf(stderr, "  %s %s: %" PRIu64 " counted, %" PRIu64 " expected\n",
                            policy_class_name((enum policy_class)cls),
                            egress_outcome_name((enum egress_outcome)o), got.values[cls][o],
                            g.want.values[cls][o]);
        st->wrong++;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- retention: egress_expired ----------------------------------------- */

static json_t *aged(const char *updated_at, const char *occurred_at)
{
    json_t *r = json_pack("{ss si ss sb}", "id", "01936b2e-1f00-7000-8000-0000000000aa", "version",
                          2, "created_at", "2020-01-01T00:00:00.000Z", "deleted", 0);
    if (updated_at)
        json_object_set_new(r, "updated_at", json_string(updated_at));
    if (occurred_at)
        json_object_set_new(r, "occurred_at", json_string(occurred_at));
    return r;
}

static int expired(const struct policy *p, const struct entity_def *e, const char *updated_at,
                   const char *occurred_at, int64_t now)
{
    json_t *r = aged(updated_at, occurred_at);
    int rc = egress_expired(p, e, r, now);
    json_decref(r);
    return rc;
}

static void test_expired(void)
{
    struct policy p;
    bare_policy(&p, POLICY_EXPORTABLE, 0);
    struct policy_retention rules[2] = {
        {.entity = &entity_activity, .days = 365, .basis = "test"},
        {.entity = &entity_task, .days = 30, .basis = "test"},
    };
    p.retention = rules;
    p.nretention = 2;
    /* now: 2026-06-01T00:00:00Z; the task cutoff is 2026-05-02T00:00:00.000Z,
     * the activity cutoff 2025-06-01T00:00:00.000Z */
    const int64_t now = INT64_C(1780272000000);

    /* everything but activities ages by its last change */
    CHECK_EQ(expired(&p, &entity_task, "2026-05-01T23:59:59.999Z", NULL, now), 1);
    CHECK_EQ(expired(&p, &entity_task, "2026-05-02T00:00:00.000Z", NULL, now), 0); /* at it */
    CHECK_EQ(expired(&p, &entity_task, "2026-05-02T00:00:00.001Z", NULL, now), 0);
    CHECK_EQ(expired(&p, &entity_task, "2019-01-01T00:00:00.000Z", NULL, now), 1);
    CHECK_EQ(expired(&p, &entity_task, "2026-05-31T00:00:00.000Z", NULL, now), 0);
    /* activities age by when they happened, not when they were written */
    CHECK_EQ(expired(&p, &entity_activity, "2026-05-31T00:00:00.000Z", "2025-05-31T12:00:00Z", now),
             1);
    CHECK_EQ(expired(&p, &entity_activity, "2019-01-01T00:00:00.000Z", "2025-06-02T12:00:00Z", now),
             0);
    CHECK_EQ(expired(&p, &entity_activity, NULL, "2025-06-01T00:00:00.000Z", now), 0);
    CHECK_EQ(expired(&p, &entity_activity, NULL, "2025-05-31T23:59:59.999999Z", now), 1);
    /* the same record, a day later, is past it */
    CHECK_EQ(expired(&p, &entity_task, "2026-05-02T12:00:00.000Z", NULL, now), 0);
    CHECK_EQ(expired(&p, &entity_task, "2026-05-02T12:00:00.000Z", NULL, now + 86400000), 1);

    /* no rule for the entity: kept however old; users never expire */
    CHECK_EQ(expired(&p, &entity_contact, "1999-01-01T00:00:00.000Z", NULL, now), 0);
    CHECK_EQ(expired(&p, &entity_user, "1999-01-01T00:00:00.000Z", NULL, now), 0);
    struct policy none;
    bare_policy(&none, POLICY_EXPORTABLE, 0);
    CHECK_EQ(expired(&none, &entity_task, "1999-01-01T00:00:00.000Z", NULL, now), 0);
    /* a clock before the epoch plus the rule: nothing is before the cutoff */
    CHECK_EQ(expired(&p, &entity_task, "1970-01-01T00:00:00.000Z", NULL, 1000), 0);
    CHECK_EQ(expired(&p, &entity_task, "1970-01-01T00:00:00.000Z", NULL, -5), 0);

    /* what cannot be judged is an error (callers send nothing then) */
    CHECK_EQ(expired(&p, &entity_task, NULL, NULL, now), -EINVAL);
    CHECK_EQ(expired(&p, &entity_task, "yesterday", NULL, now), -EINVAL);
    CHECK_EQ(expired(&p, &entity_task, "2026-13-01T00:00:00Z", NULL, now), -EINVAL);
    CHECK_EQ(expired(&p, &entity_activity, "2019-01-01T00:00:00.000Z", NULL, now), -EINVAL);
    CHECK_EQ(expired(&p, &entity_activity, NULL, "", now), -EINVAL);
    json_t *r = aged(NULL, NULL);
    json_object_set_new(r, "updated_at", json_integer(1));
    CHECK_EQ(egress_expired(&p, &entity_task, r, now), -EINVAL);
    json_decref(r);
    r = json_array();
    CHECK_EQ(egress_expired(&p, &entity_task, r, now), -EINVAL);
    json_decref(r);
    CHECK_EQ(egress_expired(&p, &entity_task, NULL, now), -EINVAL);
    CHECK_EQ(egress_expired(&p, &entity_contact, NULL, now), 0); /* no rule: not looked at */

    /* the record is only read */
    r = aged("2019-01-01T00:00:00.000Z", NULL);
    char *before = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_EQ(egress_expired(&p, &entity_task, r, now), 1);
    char *after = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(after, before);
    free(before);
    free(after);
    json_decref(r);

    /* the shipped profiles: KE keeps tasks 365 days, activities 2190 */
    char path[1024];
    struct op_error err;
    struct policy *ke = NULL;
    CHECK_EQ(policy_find_file("KE", path, sizeof path, &err), 0);
    CHECK_EQ(policy_load_file(path, &ke, &err), 0);
    if (ke) {
        CHECK_EQ(expired(ke, &entity_task, "2025-05-31T00:00:00.000Z", NULL, now), 1);
        CHECK_EQ(expired(ke, &entity_task, "2025-06-02T00:00:00.000Z", NULL, now), 0);
        CHECK_EQ(expired(ke, &entity_activity, NULL, "2020-06-01T00:00:00Z", now), 1);
        CHECK_EQ(expired(ke, &entity_activity, NULL, "2020-06-03T00:00:00Z", now), 0);
        CHECK_EQ(expired(ke, &entity_contact, "2000-01-01T00:00:00.000Z", NULL, now), 0);
        policy_free(ke);
    }
}

static void test_property_every_profile(void)
{
    const char *env = getenv("EGRESS_RECORDS");
    unsigned nrec = env ? (unsigned)strtoul(env, NULL, 10) : 250;
    if (nrec < 26)
        nrec = 26; /* room for a restricted and a pinned record per entity */

    DIR *d = opendir(OUTPOST_SOURCE_REGIONS_DIR);
    CHECK(d != NULL);
    if (!d)
        return;
    char *names[64];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 64) {
        size_t len = strlen(de->d_name);
        if (len > 5 && !strcmp(de->d_name + len - 5, ".yaml"))
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    /* the issue names these; all must be there and load */
    const char *required[] = {"EU-DE", "EU-FR", "BR", "AR", "CO",    "RU",   "CN",
                              "IN",    "ID",    "KE", "NG", "US-CA", "US-TX"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "%s.yaml", required[i]);
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found |= !strcmp(names[k], want);
        if (!found)
            fprintf(stderr, "profile %s is not shipped\n", want);
        CHECK(found);
    }

    struct prop_stats total = {0};
    int with_pins = 0, without_transfer = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", OUTPOST_SOURCE_REGIONS_DIR, names[i]);
        struct policy *p = NULL;
        struct op_error err;
        op_error_clear(&err);
        int rc = policy_load_file(path, &p, &err);
        if (rc != 0)
            fprintf(stderr, "cannot load %s: %s\n", path, err.msg);
        CHECK_EQ(rc, 0);
        free(names[i]);
        if (rc != 0)
            continue;
        struct prop_stats st = {0};
        property_one_profile(p, nrec, &st);
        fprintf(stderr,
                "  %-6s %6" PRIu64 " records, %7" PRIu64 " canaries, %" PRIu64 " leaks, %" PRIu64
                " wrong, %" PRIu64 " pinned, %" PRIu64 " restricted; verify: %" PRIu64
                " passed, %" PRIu64 " mutations refused\n",
                p->region, st.records, st.canaries, st.leaks, st.wrong, st.pinned, st.restricted,
                st.verified, st.mutations);
        CHECK_EQ(st.leaks, 0);
        CHECK_EQ(st.wrong, 0);
        CHECK(st.canaries > 0);
        CHECK(st.restricted > 0);
        CHECK(st.verified > 0);
        CHECK(st.mutations > st.verified);
        if (p->npins) {
            with_pins++;
            CHECK(st.pinned > 0);
        }
        if (!p->transfer_allowed)
            without_transfer++;
        total.records += st.records;
        total.canaries += st.canaries;
        policy_free(p);
    }
    fprintf(stderr,
            "  %zu profiles (%d with pins, %d without transfer): %" PRIu64 " records, %" PRIu64
            " canaries\n",
            n, with_pins, without_transfer, total.records, total.canaries);
    CHECK(n >= 13);
    CHECK(total.records >= 13u * 9u * 26u);
}

/* ---- patches -------------------------------------------------------------- */

/* egress_project of `rec` (taken) under p (exportable by default). */
static struct egress_record *project(const struct policy *p, json_t *rec)
{
    unsigned char key[32];
    key_fill(key, 0);
    struct egress_record *r = NULL;
    struct op_error err;
    CHECK_EQ(egress_project(p, key, &entity_contact, rec, &r, NULL, &err), 0);
    json_decref(rec);
    return r;
}

/* A patch holds the members that changed and names those gone; merging it
 * onto the base gives the whole record's text; nothing else is accepted. */
static void test_patch(void)
{
    struct policy p;
    bare_policy(&p, POLICY_EXPORTABLE, 0);
    struct egress_record *old =
        project(&p, json_pack("{ss si ss ss s{si}}", "id", "c1", "version", 4, "region", "Bayern",
                              "language", "de", "custom", "tier", 1));
    struct egress_record *now = project(&p, json_pack("{ss si ss s{si}}", "id", "c1", "version", 6,
                                                      "region", "Berlin", "custom", "tier", 2));
    json_t *oj = json_loads(egress_record_json(old), 0, NULL);
    json_t *nj = json_loads(egress_record_json(now), 0, NULL);
    json_t *digests = projection_field_digests(oj);
    struct egress_record *patch = NULL;
    struct op_error err;
    CHECK_EQ(egress_patch(now, 4, digests, &patch, &err), 0);
    CHECK_STR(egress_record_json(patch),
              "{\"id\":\"c1\",\"version\":6,\"base\":4,\"region\":"
              "\"Berlin\",\"custom\":{\"tier\":2},\"unset\":[\"language\"]}");
    CHECK_EQ(egress_record_op(patch), EGRESS_OP_PATCH);
    CHECK_STR(egress_record_id(patch), "c1");
    CHECK_STR(egress_record_policy_hash(patch), p.hash);
    json_t *pj = json_loads(egress_record_json(patch), 0, NULL);
    CHECK_EQ(egress_verify(&p, &entity_contact, EGRESS_OP_PATCH, pj, &err), 0);
    char *merged = NULL;
    CHECK_EQ(egress_patch_merge(&entity_contact, oj, pj, &merged, &err), 0);
    CHECK_STR(merged, egress_record_json(now));
    free(merged);

    /* nothing changed but the version: a patch of id, version and base */
    struct egress_record *same = NULL;
    json_t *nd = projection_field_digests(nj);
    CHECK_EQ(egress_patch(now, 6, nd, &same, &err), 0);
    CHECK_STR(egress_record_json(same), "{\"id\":\"c1\",\"version\":6,\"base\":6}");
    egress_record_free(same);

    /* refused: a base above the version, a tombstone, no digests */
    CHECK_EQ(egress_patch(now, 7, digests, &same, &err), -EINVAL);
    CHECK_STR(err.field, "base");
    struct egress_record *tomb = NULL;
    CHECK_EQ(egress_tombstone(&p, &entity_contact, "c1", 7, EGRESS_OP_WITHDRAW, &tomb, &err), 0);
    CHECK_EQ(egress_patch(tomb, 4, digests, &same, &err), -EINVAL);
    CHECK_EQ(egress_patch(now, 4, NULL, &same, &err), -EINVAL);
    /* HQ refuses a patch that deletes, or unsets what is not a name */
    json_t *bad = json_loads("{\"id\":\"c1\",\"version\":6,\"base\":4,\"deleted\":true}", 0, NULL);
    CHECK_EQ(egress_verify(&p, &entity_contact, EGRESS_OP_PATCH, bad, &err), -EINVAL);
    CHECK_STR(err.field, "deleted");
    json_decref(bad);
    bad = json_loads("{\"id\":\"c1\",\"version\":6,\"base\":4,\"unset\":[\"version\"]}", 0, NULL);
    CHECK_EQ(egress_verify(&p, &entity_contact, EGRESS_OP_PATCH, bad, &err), -EINVAL);
    CHECK_STR(err.field, "unset");
    json_decref(bad);
    bad = json_loads("{\"id\":\"c1\",\"version\":6,\"base\":4,\"unset\":\"language\"}", 0, NULL);
    CHECK_EQ(egress_verify(&p, &entity_contact, EGRESS_OP_PATCH, bad, &err), -EINVAL);
    CHECK_STR(err.field, "unset");
    json_decref(bad);
    /* under a policy that keeps the region, a patch setting it is refused by name */
    struct policy strict;
    bare_policy(&strict, POLICY_LOCAL_ONLY, 0);
    CHECK_EQ(egress_verify(&strict, &entity_contact, EGRESS_OP_PATCH, pj, &err), -EPERM);
    CHECK_STR(err.field, "region");
    egress_record_free(tomb);
    egress_record_free(patch);
    egress_record_free(old);
    egress_record_free(now);
    json_decref(oj);
    json_decref(nj);
    json_decref(pj);
    json_decref(digests);
    json_decref(nd);
}

int main(void)
{
    const char *s = getenv("EGRESS_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed;
    fprintf(stderr, "EGRESS_SEED=%" PRIu64 "\n", seed);
    RUN(test_detector_sees_leaks);
    RUN(test_pseudonym_known_answer);
    RUN(test_classes_and_normalization);
    RUN(test_whole_record_withheld);
    RUN(test_fail_closed);
    RUN(test_trace_and_counts_add);
    RUN(test_ops);
    RUN(test_tombstone);
    RUN(test_verify_edges);
    RUN(test_node_local_users);
    RUN(test_phone_e164);
    RUN(test_expired);
    RUN(test_patch);
    RUN(test_property_every_profile);
    return tl_report();
}
