/*
 * Tests for sync/core/segment.c: records projected by egress_project (with
 * Cyrillic, Han and emoji text) round-trip through a segment file; every
 * truncation and every single flipped byte of a segment is refused with a
 * named check; a wrong key, oversized lengths, a zip bomb and stray .tmp
 * files are refused; format version 1 and reversed cursors are refused;
 * projections, deletions and tombstones keep their op through a segment;
 * and a 50 MB segment is written and read with peak RSS far below its
 * size.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "egress.h"
#include "entity.h"
#include "policy.h"
#include "fixture.h"
#include "testlib.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan keeps freed blocks in a quarantine (256 MB by default), which would
 * show up as RSS in the bounded-memory test: every record the reader
 * checks is parsed and freed. A small quarantine keeps that test
 * meaningful under ASan; use-after-free is still caught within it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=4";
}
#endif

static const char POLICY[] = "format: outpost-region-policy/1\n"
                             "region: EU-DE\n"
                             "country: DE\n"
                             "transfer:\n"
                             "  allowed: true\n"
                             "  basis: \"test\"\n"
                             "default_class: local_only\n"
                             "default_basis: \"test: nothing leaves unless classified\"\n"
                             "fields:\n"
                             "  contact.given_name: {class: exportable, basis: \"test\"}\n"
                             "  contact.family_name: {class: exportable, basis: \"test\"}\n"
                             "  contact.locality: {class: exportable, basis: \"test\"}\n"
                             "  contact.job_title: {class: exportable, basis: \"test\"}\n"
                             "  contact.email: {class: pseudonymize, basis: \"test\"}\n"
                             "  contact.phone: {class: pseudonymize, basis: \"test\"}\n";

static const unsigned char PSEUDO_KEY[EGRESS_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
static const unsigned char HQ_KEY[SEGMENT_KEY_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
static struct policy *pol;
static char spool[FX_PATH_MAX];

static const char *const GIVEN[] = {"Иван", "Мария", "王", "芳", "José", "Zoë", "Ayşe", "🦊 Fox"};
static const char *const FAMILY[] = {"Петров", "李", "Müller", "O'Brien", "Nguyễn", "😀", "Søren"};
static const char *const TOWN[] = {"Москва", "北京",         "São Paulo",
                                   "Zürich", "🏙️ City", "Kraków"};

static uint64_t rng = 42;
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* One projected contact; counts added to c. */
static struct egress_record *make_record(int i, struct egress_counts *c)
{
    char id[40], email[64], phone[32], title[64];
    snprintf(id, sizeof id, "0190a000-0000-7000-8000-%012d", i);
    snprintf(email, sizeof email, "person%d@example.org", i);
    snprintf(phone, sizeof phone, "+49 30 %07d", (int)(rnd() % 10000000));
    snprintf(title, sizeof title, "Engineer %d", (int)(rnd() % 100));
    json_t *rec = json_pack(
        "{sssisssssbsnsbs{}sssssssssssssssn}", "id", id, "version", 1 + i % 3, "created_at",
        "2026-11-24T13:10:35.123Z", "updated_at", "2026-11-24T13:10:35.123Z", "deleted", 0,
        "owner_id", "restricted", 0, "custom", "given_name", GIVEN[rnd() % 8], "family_name",
        FAMILY[rnd() % 7], "email", email, "phone", phone, "locality", TOWN[rnd() % 6], "job_title",
        title, "street", "Hauptstraße 1", "birth_date");
    if (!rec)
        abort();
    struct egress_record *r = NULL;
    struct op_error err;
    if (egress_project(pol, PSEUDO_KEY, &entity_contact, rec, &r, c, &err) != 0 || !r) {
        fprintf(stderr, "egress_project: %s\n", err.msg);
        abort();
    }
    json_decref(rec);
    return r;
}

static void base_info(struct segment_info *h)
{
    memset(h, 0, sizeof *h);
    snprintf(h->node_id, sizeof h->node_id, "0190a000-1111-7000-8000-000000000001");
    h->from_urgent = 3;
    h->from_ordinary = 100;
    h->schema_version = 5;
    snprintf(h->policy_hash, sizeof h->policy_hash, "%s", pol->hash);
    h->created_ms = 1795958435123; /* 2026-11-29T... */
}

/* Writes segment `no` of n records; returns the path in out. Records'
 * JSON lines are kept in *keep (if not NULL) for comparison. */
static int write_segment(uint64_t no, int n, char *out, size_t cap, char ***keep,
                         struct segment_info *info)
{
    struct segment_info h;
    base_info(&h);
    struct segment_writer *w = NULL;
    struct op_error err;
    int rc = segment_writer_new(&h, HQ_KEY, spool, no, &w, &err);
    CHECK_EQ(rc, 0);
    if (rc)
        return rc;
    struct egress_counts c;
    memset(&c, 0, sizeof c);
    if (keep)
        *keep = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        struct egress_record *r = make_record(i, &c);
        if (keep)
            (*keep)[i] = strdup(egress_record_json(r));
        rc = segment_writer_add(w, r, &err);
        CHECK_EQ(rc, 0);
        egress_record_free(r);
    }
    CHECK_EQ(segment_writer_records(w), n);
    rc = segment_writer_finish(w, 7, 100 + (uint64_t)n + 5, &c, out, cap, info, &err);
    if (rc)
        fprintf(stderr, "finish: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    return rc;
}

static void free_keep(char **k)
{
    for (size_t i = 0; k && k[i]; i++)
        free(k[i]);
    free(k);
}

static int slurp(const char *path, unsigned char **buf, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)sz + 1);
    *n = fread(*buf, 1, (size_t)sz, f);
    fclose(f);
    return *n == (size_t)sz ? 0 : -1;
}

static void spew(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (fwrite(buf, 1, n, f) != n)
        abort();
    fclose(f);
}

/* Opens and reads every record; returns 0 or the first error. */
static int read_all_records(const char *path, const unsigned char *key,
                            const struct segment_limits *lim, uint64_t *nrec, struct op_error *err)
{
    struct segment *s = NULL;
    int rc = segment_open(path, key, lim, &s, err);
    if (rc < 0)
        return rc;
    const char *ent, *op, *json;
    size_t len;
    uint64_t k = 0;
    while ((rc = segment_next_record(s, &ent, &op, &json, &len, err)) == 1)
        k++;
    if (nrec)
        *nrec = k;
    segment_close(s);
    return rc;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_round_trip(void)
{
    char path[256];
    char **keep = NULL;
    struct segment_info wi;
    if (write_segment(7, 500, path, sizeof path, &keep, &wi) != 0)
        return;
    CHECK_CONTAINS(path, "/0000000000000007.seg");
    struct segment *s = NULL;
    struct op_error err;
    int rc = segment_open(path, HQ_KEY, NULL, &s, &err);
    CHECK_EQ(rc, 0);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        free_keep(keep);
        return;
    }
    const struct segment_info *ri = segment_get_info(s);
    CHECK_STR(ri->node_id, "0190a000-1111-7000-8000-000000000001");
    CHECK_EQ(ri->segment_no, 7);
    CHECK_EQ(ri->from_urgent, 3);
    CHECK_EQ(ri->from_ordinary, 100);
    CHECK_EQ(ri->to_urgent, 7);
    CHECK_EQ(ri->to_ordinary, 605);
    CHECK_EQ(wi.to_urgent, 7);
    CHECK_EQ(wi.to_ordinary, 605);
    CHECK_EQ(ri->schema_version, 5);
    CHECK_STR(ri->policy_hash, pol->hash);
    CHECK_EQ(ri->records, 500);
    CHECK_EQ(ri->created_ms, 1795958435123);
    CHECK_EQ(ri->counts.records, 500);
    CHECK_EQ(ri->counts.records_out, 500);
    CHECK_EQ(ri->counts.values[POLICY_PSEUDONYMIZE][EGRESS_PSEUDONYMIZED], 1000);
    /* street and the restricted flag */
    CHECK_EQ(ri->counts.values[POLICY_LOCAL_ONLY][EGRESS_WITHHELD], 1000);
    CHECK_EQ(ri->counts.values[POLICY_EXPORTABLE][EGRESS_AS_IS], 2000);
    CHECK_EQ(ri->payload_bytes, wi.payload_bytes);
    CHECK_EQ(ri->payload_raw_bytes, wi.payload_raw_bytes);
    CHECK_STR(ri->payload_sha256, wi.payload_sha256);
    const char *ent, *op, *json;
    size_t len;
    int k = 0, mism = 0;
    while ((rc = segment_next_record(s, &ent, &op, &json, &len, &err)) == 1) {
        if (k >= 500 || strcmp(ent, "contact") != 0 || strcmp(op, "upsert") != 0 ||
            strcmp(json, keep[k]) != 0 || strlen(json) != len)
            mism++;
        k++;
    }
    if (rc)
        fprintf(stderr, "next: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    CHECK_EQ(k, 500);
    CHECK_EQ(mism, 0);
    /* the end is sticky */
    CHECK_EQ(segment_next_record(s, &ent, &op, &json, &len, &err), 0);
    segment_close(s);
    int has_cyr = 0, has_han = 0, has_emoji = 0;
    for (int i = 0; i < 500; i++) {
        has_cyr |= strstr(keep[i], "Иван") || strstr(keep[i], "Москва");
        has_han |= strstr(keep[i], "北京") || strstr(keep[i], "李");
        has_emoji |= strstr(keep[i], "🦊") || strstr(keep[i], "😀");
        CHECK(strstr(keep[i], "Hauptstra") == NULL);    /* local_only */
        CHECK(strstr(keep[i], "@example.org") == NULL); /* pseudonymized */
    }
    CHECK(has_cyr && has_han && has_emoji);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    fprintf(stderr,
            "  500 contacts: %" PRIu64 " bytes raw, %" PRIu64
            " compressed (ratio %.2f, %.1f bytes/record), file %lld bytes\n",
            wi.payload_raw_bytes, wi.payload_bytes,
            (double)wi.payload_raw_bytes / (double)wi.payload_bytes,
            (double)wi.payload_bytes / 500.0, (long long)st.st_size);
    free_keep(keep);

    /* an empty segment (every record of the range withheld) is valid */
    char p2[256];
    struct segment_info ei;
    if (write_segment(8, 0, p2, sizeof p2, NULL, &ei) == 0) {
        uint64_t n = 99;
        CHECK_EQ(read_all_records(p2, HQ_KEY, NULL, &n, &err), 0);
        CHECK_EQ(n, 0);
        CHECK_EQ(segment_open(p2, HQ_KEY, NULL, &s, &err), 0);
        if (s) {
            ri = segment_get_info(s);
            CHECK_EQ(ri->records, 0);
            CHECK_EQ(ri->payload_raw_bytes, 0);
            CHECK_EQ(ri->from_ordinary, 100);
            CHECK_EQ(ri->to_ordinary, 105);
            CHECK_EQ(ri->to_urgent, 7);
            CHECK_EQ(ri->counts.records_out, 0);
            CHECK_EQ(segment_next_record(s, &ent, &op, &json, &len, &err), 0);
            segment_close(s);
        }
    }
}

static void test_truncated_and_flipped(void)
{
    char path[256], copy[300];
    if (write_segment(20, 3, path, sizeof path, NULL, NULL) != 0)
        return;
    snprintf(copy, sizeof copy, "%s/mutant", spool);
    unsigned char *buf = NULL;
    size_t n = 0;
    CHECK_EQ(slurp(path, &buf, &n), 0);
    struct op_error err;
    uint32_t hlen =
        (uint32_t)buf[13] << 24 | (uint32_t)buf[14] << 16 | (uint32_t)buf[15] << 8 | buf[16];
    int accepted = 0, by_field[8] = {0};
    const char *fields[8] = {"magic",  "version",        "header_len", "header",
                             "length", "payload_sha256", "hmac",       "other"};
    /* every truncation */
    for (size_t len = 0; len < n; len++) {
        spew(copy, buf, len);
        int rc = read_all_records(copy, HQ_KEY, NULL, NULL, &err);
        if (rc >= 0) {
            accepted++;
            continue;
        }
        /* a cut in the header is "length" (the prefix promises more) */
        if (len < SEGMENT_PREFIX_LEN + hlen)
            CHECK_STR(err.field, len < SEGMENT_MAGIC_LEN ? "length" : "length");
        else
            CHECK_STR(err.field, "length");
    }
    CHECK_EQ(accepted, 0);
    /* every byte flipped, two ways */
    int flips = 0;
    for (size_t i = 0; i < n; i++) {
        for (int m = 0; m < 2; m++) {
            unsigned char save = buf[i];
            buf[i] ^= m ? 0x80 : 0x01;
            spew(copy, buf, n);
            buf[i] = save;
            int rc = read_all_records(copy, HQ_KEY, NULL, NULL, &err);
            flips++;
            if (rc >= 0) {
                accepted++;
                fprintf(stderr, "  flip at byte %zu accepted\n", i);
                continue;
            }
            int f = strncmp(err.field, "header.", 7) == 0 ? 3 : 7;
            for (int j = 0; j < 7; j++)
                if (strcmp(err.field, fields[j]) == 0)
                    f = j;
            by_field[f]++;
            if (i < SEGMENT_MAGIC_LEN)
                CHECK_STR(err.field, "magic");
            else if (i >= n - SEGMENT_MAC_LEN)
                CHECK_STR(err.field, "hmac");
            else if (i >= SEGMENT_PREFIX_LEN + hlen)
                CHECK_STR(err.field, "payload_sha256");
        }
    }
    CHECK_EQ(accepted, 0);
    CHECK_EQ(by_field[7], 0);
    fprintf(stderr,
            "  %zu-byte segment: %zu truncations, %d flips refused: magic %d, version %d, "
            "header_len %d, header %d, length %d, sha256 %d, hmac %d\n",
            n, n, flips, by_field[0], by_field[1], by_field[2], by_field[3], by_field[4],
            by_field[5], by_field[6]);
    /* wrong key */
    unsigned char other[SEGMENT_KEY_BYTES];
    memcpy(other, HQ_KEY, sizeof other);
    other[31] ^= 1;
    CHECK_EQ(read_all_records(path, other, NULL, NULL, &err), -EBADMSG);
    CHECK_STR(err.field, "hmac");
    CHECK_CONTAINS(err.msg, "wrong HQ key");
    /* stray bytes after the trailer */
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, buf, n);
    longer[n] = 0;
    spew(copy, longer, n + 1);
    CHECK_EQ(read_all_records(copy, HQ_KEY, NULL, NULL, &err), -EBADMSG);
    CHECK_STR(err.field, "length");
    CHECK_CONTAINS(err.msg, "stray bytes");
    free(longer);
    /* unknown version, and version 1 (never deployed) */
    CHECK_EQ(buf[12], SEGMENT_VERSION);
    buf[12] = 3;
    spew(copy, buf, n);
    CHECK_EQ(read_all_records(copy, HQ_KEY, NULL, NULL, &err), -EPROTONOSUPPORT);
    CHECK_STR(err.field, "version");
    CHECK_CONTAINS(err.msg, "byte 11");
    buf[12] = 1;
    spew(copy, buf, n);
    CHECK_EQ(read_all_records(copy, HQ_KEY, NULL, NULL, &err), -EPROTONOSUPPORT);
    CHECK_STR(err.field, "version");
    CHECK_CONTAINS(err.msg, "version 1");
    /* a segment renamed to another number */
    buf[12] = SEGMENT_VERSION;
    char renamed[300];
    snprintf(renamed, sizeof renamed, "%s/0000000000000021.seg", spool);
    spew(renamed, buf, n);
    CHECK_EQ(read_all_records(renamed, HQ_KEY, NULL, NULL, &err), -EBADMSG);
    CHECK_STR(err.field, "path");
    unlink(renamed);
    unlink(copy);
    free(buf);
}

/* A segment file from parts (format version `version`), HMAC'd with key:
 * lets the tests state what a forged or buggy producer would write. */
static void craft_v(const char *path, unsigned version, uint32_t hlen, const char *header,
                    const unsigned char *payload, size_t plen, const unsigned char *key)
{
    size_t hl = strlen(header);
    size_t n = SEGMENT_PREFIX_LEN + hl + plen;
    unsigned char *b = malloc(n + SEGMENT_MAC_LEN);
    memcpy(b, SEGMENT_MAGIC, SEGMENT_MAGIC_LEN);
    b[11] = (unsigned char)(version >> 8);
    b[12] = (unsigned char)version;
    b[13] = (unsigned char)(hlen >> 24);
    b[14] = (unsigned char)(hlen >> 16);
    b[15] = (unsigned char)(hlen >> 8);
    b[16] = (unsigned char)hlen;
    memcpy(b + SEGMENT_PREFIX_LEN, header, hl);
    if (plen)
        memcpy(b + SEGMENT_PREFIX_LEN + hl, payload, plen);
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, SEGMENT_KEY_BYTES, b, n, b + n, &ml);
    spew(path, b, n + SEGMENT_MAC_LEN);
    free(b);
}

static void craft(const char *path, uint32_t hlen, const char *header, const unsigned char *payload,
                  size_t plen, const unsigned char *key)
{
    craft_v(path, SEGMENT_VERSION, hlen, header, payload, plen, key);
}

static void sha_hex(const unsigned char *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int l = 0;
    EVP_Digest(p, n, md, &l, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The header of a crafted segment with cursor `from`..`to` (JSON objects). */
static char *header_cur(const char *from, const char *to, uint64_t records, uint64_t pbytes,
                        uint64_t raw, const char *sha)
{
    static char h[2048];
    snprintf(h, sizeof h,
             "{\"node_id\":\"n1\",\"segment\":1,\"from\":%s,\"to\":%s,"
             "\"schema_version\":5,\"policy_hash\":\"%s\",\"records\":%" PRIu64
             ",\"counts\":{\"records\":%" PRIu64 ",\"records_out\":%" PRIu64
             ",\"records_restricted\":0,\"records_pinned\":0,\"unknown\":0,\"internal\":0,"
             "\"values\":{\"local_only\":{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0},"
             "\"local_primary\":{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0},"
             "\"pseudonymize\":{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0},"
             "\"exportable\":{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0},"
             "\"aggregate_only\":{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0}}},"
             "\"created_at\":\"2026-11-24T13:10:35.123Z\",\"payload_bytes\":%" PRIu64
             ",\"payload_raw_bytes\":%" PRIu64 ",\"payload_sha256\":\"%s\"}",
             from, to, pol->hash, records, records, records, pbytes, raw, sha);
    return h;
}

static char *header_for(uint64_t records, uint64_t pbytes, uint64_t raw, const char *sha)
{
    return header_cur("{\"urgent\":0,\"ordinary\":1}", "{\"urgent\":0,\"ordinary\":2}", records,
                      pbytes, raw, sha);
}

/* Projections (live and deleted) and tombstones of every op, mixed with
 * another entity: each comes back with its entity, op and exact JSON, and
 * the header counts the tombstones as records out. */
static void test_ops_round_trip(void)
{
    struct segment_info h;
    base_info(&h);
    h.from_urgent = 10;
    h.from_ordinary = 0;
    struct segment_writer *w = NULL;
    struct op_error err;
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 30, &w, &err), 0);
    if (!w)
        return;
    struct egress_counts c;
    memset(&c, 0, sizeof c);
    enum { N = 7 };
    const char *want_ent[N], *want_op[N];
    char *want_json[N];
    struct egress_record *r = NULL;
    int k = 0;
    /* 0: a live contact */
    r = make_record(1, &c);
    want_ent[k] = "contact", want_op[k] = "upsert", want_json[k++] = strdup(egress_record_json(r));
    CHECK_EQ(segment_writer_add(w, r, &err), 0);
    egress_record_free(r);
    /* 1: a deleted contact (a tombstone the store keeps): op delete */
    json_t *rec = json_pack("{sssisbss}", "id", "0190a000-0000-7000-8000-0000000000d1", "version",
                            4, "deleted", 1, "given_name", "Gone");
    CHECK_EQ(egress_project(pol, PSEUDO_KEY, &entity_contact, rec, &r, &c, &err), 0);
    json_decref(rec);
    CHECK_EQ(egress_record_op(r), EGRESS_OP_DELETE);
    want_ent[k] = "contact", want_op[k] = "delete", want_json[k++] = strdup(egress_record_json(r));
    CHECK_EQ(segment_writer_add(w, r, &err), 0);
    egress_record_free(r);
    /* 2..4: erase, purge, withdraw tombstones */
    static const enum egress_op ops[] = {EGRESS_OP_ERASE, EGRESS_OP_PURGE, EGRESS_OP_WITHDRAW};
    static const struct entity_def *const ents[] = {&entity_contact, &entity_deal, &entity_consent};
    for (int i = 0; i < 3; i++) {
        char id[64];
        snprintf(id, sizeof id, "0190a000-0000-7000-8000-00000000e00%d", i);
        CHECK_EQ(egress_tombstone(pol, ents[i], id, 9 + i, ops[i], &r, &err), 0);
        want_ent[k] = ents[i]->name, want_op[k] = egress_op_name(ops[i]);
        want_json[k++] = strdup(egress_record_json(r));
        CHECK_EQ(segment_writer_add(w, r, &err), 0);
        egress_record_free(r);
    }
    /* 5: an organization projection (nothing classified: only meta) */
    rec = json_pack("{sssiss}", "id", "0190a000-0000-7000-8000-0000000000f1", "version", 1, "name",
                    "ACME");
    CHECK_EQ(egress_project(pol, PSEUDO_KEY, &entity_organization, rec, &r, &c, &err), 0);
    json_decref(rec);
    want_ent[k] = "organization", want_op[k] = "upsert";
    want_json[k++] = strdup(egress_record_json(r));
    CHECK_EQ(segment_writer_add(w, r, &err), 0);
    egress_record_free(r);
    /* 6: another erase, last */
    CHECK_EQ(egress_tombstone(pol, &entity_contact, "z", 0, EGRESS_OP_ERASE, &r, &err), 0);
    want_ent[k] = "contact", want_op[k] = "erase", want_json[k++] = strdup(egress_record_json(r));
    CHECK_EQ(segment_writer_add(w, r, &err), 0);
    egress_record_free(r);
    CHECK_EQ(k, N);
    CHECK_EQ(c.records_out, 3);
    char path[256];
    struct segment_info wi;
    int rc = segment_writer_finish(w, 14, 0, &c, path, sizeof path, &wi, &err);
    if (rc)
        fprintf(stderr, "finish: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    CHECK_EQ(wi.records, N);
    CHECK_EQ(wi.counts.records_out, N);
    CHECK_EQ(wi.counts.records, 3 + 4);
    struct segment *s = NULL;
    CHECK_EQ(segment_open(path, HQ_KEY, NULL, &s, &err), 0);
    if (!s)
        goto out;
    const struct segment_info *ri = segment_get_info(s);
    CHECK_EQ(ri->from_urgent, 10);
    CHECK_EQ(ri->to_urgent, 14);
    CHECK_EQ(ri->from_ordinary, 0);
    CHECK_EQ(ri->to_ordinary, 0);
    CHECK_EQ(ri->counts.records_out, N);
    const char *ent, *op, *json;
    size_t len;
    int i = 0;
    while ((rc = segment_next_record(s, &ent, &op, &json, &len, &err)) == 1) {
        if (i < N) {
            CHECK_STR(ent, want_ent[i]);
            CHECK_STR(op, want_op[i]);
            CHECK_STR(json, want_json[i]);
            enum egress_op o;
            CHECK_EQ(egress_op_parse(op, &o), 0);
        }
        i++;
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(i, N);
    CHECK_STR(want_json[2], "{\"id\":\"0190a000-0000-7000-8000-00000000e000\",\"version\":9}");
    segment_close(s);
    unlink(path);
out:
    for (int j = 0; j < N; j++)
        free(want_json[j]);
}

static void test_caps_and_bombs(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/crafted", spool);
    struct op_error err;
    char sha[65];
    const char *lines = "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"a\"}}\n";
    unsigned char z[256];
    uLongf zl = sizeof z;
    compress2(z, &zl, (const Bytef *)lines, strlen(lines), 9);
    sha_hex(z, zl, sha);
    /* the crafting itself is right: a valid segment */
    const char *h = header_for(1, zl, strlen(lines), sha);
    craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
    uint64_t nrec = 0;
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, &nrec, &err), 0);
    CHECK_EQ(nrec, 1);
    /* the same, authentic, as format version 1: refused before the header */
    craft_v(path, 1, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EPROTONOSUPPORT);
    CHECK_STR(err.field, "version");
    /* cursors that go backwards, lane by lane, and malformed cursors */
    static const struct {
        const char *from, *to, *field;
    } cur[] = {
        {"{\"urgent\":5,\"ordinary\":1}", "{\"urgent\":4,\"ordinary\":2}", "header.to.urgent"},
        {"{\"urgent\":0,\"ordinary\":3}", "{\"urgent\":0,\"ordinary\":2}", "header.to.ordinary"},
        {"{\"urgent\":0}", "{\"urgent\":0,\"ordinary\":2}", "header.from.ordinary"},
        {"{\"urgent\":-1,\"ordinary\":1}", "{\"urgent\":0,\"ordinary\":2}", "header.from.urgent"},
        {"{\"urgent\":0,\"ordinary\":1}", "[0,2]", "header.to.urgent"},
        {"{\"urgent\":0,\"ordinary\":1,\"x\":1}", "{\"urgent\":0,\"ordinary\":2}", "header.from"},
    };
    for (size_t i = 0; i < sizeof cur / sizeof cur[0]; i++) {
        h = header_cur(cur[i].from, cur[i].to, 1, zl, strlen(lines), sha);
        craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
        CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EBADMSG);
        CHECK_STR(err.field, cur[i].field);
    }
    /* equal cursors (nothing new in a lane) are fine */
    h = header_cur("{\"urgent\":4,\"ordinary\":2}", "{\"urgent\":4,\"ordinary\":2}", 1, zl,
                   strlen(lines), sha);
    craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), 0);
    /* header length over the cap, in a 100-byte file: refused from the prefix */
    craft(path, 0xffffffffu, "{}", NULL, 0, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EFBIG);
    CHECK_STR(err.field, "header_len");
    CHECK_CONTAINS(err.msg, "byte 13");
    craft(path, SEGMENT_HEADER_MAX + 1, "{}", NULL, 0, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EFBIG);
    /* payload and uncompressed sizes over their caps */
    h = header_for(1, 1ull << 40, strlen(lines), sha);
    craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EFBIG);
    CHECK_STR(err.field, "header.payload_bytes");
    h = header_for(1, zl, 1ull << 40, sha);
    craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EFBIG);
    CHECK_STR(err.field, "header.payload_raw_bytes");
    struct segment_limits lim = {.payload_max = 10, .raw_max = 0};
    h = header_for(1, zl, strlen(lines), sha);
    craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, &lim, NULL, &err), -EFBIG);
    /* header not JSON: the byte offset is in the file */
    craft(path, 5, "{\"a\":", NULL, 0, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EBADMSG);
    CHECK_STR(err.field, "header");
    CHECK_CONTAINS(err.msg, "at byte 2");

    /* zip bomb: 64 MiB of zeros declared as 512 KiB, authentic */
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit(&zs, 9);
    unsigned char *zero = calloc(1, 1 << 20);
    size_t bcap = 1 << 20, blen = 0;
    unsigned char *bomb = malloc(bcap);
    for (int i = 0; i < 64; i++) {
        zs.next_in = zero;
        zs.avail_in = 1 << 20;
        do {
            zs.next_out = bomb + blen;
            zs.avail_out = (uInt)(bcap - blen);
            deflate(&zs, i == 63 ? Z_FINISH : Z_NO_FLUSH);
            blen = bcap - zs.avail_out;
        } while (zs.avail_in > 0 || (i == 63 && zs.avail_out == 0));
    }
    deflateEnd(&zs);
    free(zero);
    sha_hex(bomb, blen, sha);
    h = header_for(1, blen, 512u << 10, sha);
    craft(path, (uint32_t)strlen(h), h, bomb, blen, HQ_KEY);
    int rc = read_all_records(path, HQ_KEY, NULL, NULL, &err);
    CHECK_EQ(rc, -EBADMSG);
    CHECK_STR(err.field, "payload");
    CHECK_CONTAINS(err.msg, "zip bomb");
    /* and declared honestly it is over the default cap */
    h = header_for(1, blen, 64ull << 20, sha);
    craft(path, (uint32_t)strlen(h), h, bomb, blen, HQ_KEY);
    lim.payload_max = 0;
    lim.raw_max = 16u << 20;
    CHECK_EQ(read_all_records(path, HQ_KEY, &lim, NULL, &err), -EFBIG);
    free(bomb);

    /* one line longer than SEGMENT_LINE_MAX: refused, not buffered */
    size_t big = SEGMENT_LINE_MAX + 100;
    char *longline = malloc(big);
    memset(longline, 'a', big);
    uLongf ll = compressBound(big);
    unsigned char *lz = malloc(ll);
    compress2(lz, &ll, (const Bytef *)longline, big, 9);
    sha_hex(lz, ll, sha);
    h = header_for(1, ll, big, sha);
    craft(path, (uint32_t)strlen(h), h, lz, ll, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EBADMSG);
    CHECK_STR(err.field, "record");
    CHECK_CONTAINS(err.msg, "longer than");
    free(longline);
    free(lz);

    /* malformed lines, authentic: each named with its record number */
    static const char *const badlines[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"a\"}}\nnot json\n",
        "{\"entity\":\"Contact!\",\"op\":\"upsert\",\"record\":{}}\n",
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":[1]}\n",
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":\r{\"id\":\"a\"}}\n", /* fuzzer */
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"a\"} }\n",
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"a\"}}", /* no newline */
        /* version 1 lines had no op */
        "{\"entity\":\"contact\",\"record\":{\"id\":\"a\"}}\n",
        "{\"entity\":\"contact\",\"op\":\"frobnicate\",\"record\":{\"id\":\"a\"}}\n",
        "{\"entity\":\"contact\",\"op\":\"Upsert\",\"record\":{\"id\":\"a\"}}\n",
        "{\"entity\":\"contact\",\"op\":\"\",\"record\":{\"id\":\"a\"}}\n",
        "{\"entity\":\"contact\",\"op\":\"withdrawals\",\"record\":{\"id\":\"a\"}}\n",
        "{\"entity\":\"contact\",\"op\":\"erase}\n",
        "{\"entity\":\"contact\",\"op\":\"erase\"\n",
        "{\"entity\":\"contact\",\"op\":\"erase\",\"rec\":{\"id\":\"a\"}}\n",
        /* a NUL byte inside the record (found by the fuzzer): see the loop */
        "{\"entity\":\"contact\",\"op\":\"purge\",\"record\":{\"iu\":0@}}\n",
    };
    for (size_t i = 0; i < sizeof badlines / sizeof badlines[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s", badlines[i]);
        char *at = strchr(line, '@');
        if (at)
            *at = '\0';
        zl = sizeof z;
        compress2(z, &zl, (const Bytef *)line, strlen(badlines[i]), 9);
        sha_hex(z, zl, sha);
        h = header_for(2, zl, strlen(badlines[i]), sha);
        craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
        CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EBADMSG);
        CHECK_STR(err.field, "record");
        CHECK_CONTAINS(err.msg, "record ");
        if (at)
            CHECK_CONTAINS(err.msg, "NUL byte");
    }
    /* fewer records than declared */
    zl = sizeof z;
    compress2(z, &zl, (const Bytef *)lines, strlen(lines), 9);
    sha_hex(z, zl, sha);
    h = header_for(2, zl, strlen(lines), sha);
    craft(path, (uint32_t)strlen(h), h, z, zl, HQ_KEY);
    CHECK_EQ(read_all_records(path, HQ_KEY, NULL, NULL, &err), -EBADMSG);
    CHECK_CONTAINS(err.msg, "declares");
    unlink(path);
}

static int collect(void *ctx, uint64_t no, const char *path)
{
    char *out = ctx;
    char item[32];
    snprintf(item, sizeof item, "%" PRIu64 ",", no);
    strncat(out, item, 255 - strlen(out));
    (void)path;
    return 0;
}

static void test_crash_safety(void)
{
    char dir[] = "/tmp/test_segment_spool.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char saved[FX_PATH_MAX];
    snprintf(saved, sizeof saved, "%s", spool);
    snprintf(spool, sizeof spool, "%s", dir);
    char path[256];
    /* out of order */
    write_segment(12, 2, path, sizeof path, NULL, NULL);
    write_segment(3, 2, path, sizeof path, NULL, NULL);
    write_segment(100, 2, path, sizeof path, NULL, NULL);
    /* a complete segment whose rename never happened */
    write_segment(101, 2, path, sizeof path, NULL, NULL);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK_EQ(rename(path, tmp), 0);
    struct op_error err;
    struct segment *s = NULL;
    CHECK_EQ(segment_open(tmp, HQ_KEY, NULL, &s, &err), -EBADMSG);
    CHECK_STR(err.field, "path");
    /* a writer killed mid-segment */
    pid_t pid = fork();
    if (pid == 0) {
        struct segment_info h;
        base_info(&h);
        struct segment_writer *w = NULL;
        struct egress_counts c;
        memset(&c, 0, sizeof c);
        if (segment_writer_new(&h, HQ_KEY, spool, 102, &w, &err) != 0)
            _exit(1);
        for (int i = 0; i < 50; i++) {
            struct egress_record *r = make_record(i, &c);
            segment_writer_add(w, r, &err);
            egress_record_free(r);
        }
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_EQ(WEXITSTATUS(st), 0);
    snprintf(tmp, sizeof tmp, "%s/0000000000000102.seg.tmp", dir);
    CHECK_EQ(access(tmp, F_OK), 0);
    CHECK_EQ(segment_open(tmp, HQ_KEY, NULL, &s, &err), -EBADMSG);
    /* and a writer for that number cannot start until the scan cleans up */
    struct segment_info h;
    base_info(&h);
    struct segment_writer *w = NULL;
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 102, &w, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, "segment_spool_scan");
    /* an unrelated file is left alone */
    char other[300];
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    spew(other, (const unsigned char *)"x", 1);
    char got[256] = "";
    int n = segment_spool_scan(dir, collect, got, &err);
    CHECK_EQ(n, 3);
    CHECK_STR(got, "3,12,100,");
    CHECK(access(tmp, F_OK) != 0);
    snprintf(tmp, sizeof tmp, "%s/0000000000000101.seg.tmp", dir);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_EQ(access(other, F_OK), 0);
    /* segments are immutable: the same number again is refused */
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 12, &w, &err), 0);
    struct egress_counts c;
    memset(&c, 0, sizeof c);
    CHECK_EQ(segment_writer_finish(w, 7, 200, &c, NULL, 0, NULL, &err), -EEXIST);
    snprintf(tmp, sizeof tmp, "%s/0000000000000012.seg.tmp", dir);
    CHECK(access(tmp, F_OK) != 0);
    /* abort leaves nothing */
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 13, &w, &err), 0);
    segment_writer_abort(w);
    got[0] = '\0';
    CHECK_EQ(segment_spool_scan(dir, collect, got, &err), 3);
    unlink(other);
    for (int i = 0; i < 3; i++) {
        uint64_t nos[] = {3, 12, 100};
        char name[SEGMENT_NAME_LEN];
        segment_file_name(nos[i], name);
        snprintf(tmp, sizeof tmp, "%s/%s", dir, name);
        unlink(tmp);
    }
    CHECK_EQ(rmdir(dir), 0);
    snprintf(spool, sizeof spool, "%s", saved);
}

static void test_writer_refusals(void)
{
    struct segment_info h;
    base_info(&h);
    struct segment_writer *w = NULL;
    struct op_error err;
    struct segment_info bad = h;
    snprintf(bad.node_id, sizeof bad.node_id, "a b");
    CHECK_EQ(segment_writer_new(&bad, HQ_KEY, spool, 1, &w, &err), -EINVAL);
    CHECK_STR(err.field, "node_id");
    bad = h;
    snprintf(bad.policy_hash, sizeof bad.policy_hash, "xyz");
    CHECK_EQ(segment_writer_new(&bad, HQ_KEY, spool, 1, &w, &err), -EINVAL);
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, SEGMENT_NO_MAX + 1, &w, &err), -ERANGE);
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, "/nonexistent/spool", 1, &w, &err), -ENOENT);
    /* a record projected under another policy */
    bad = h;
    memset(bad.policy_hash, 'a', 64);
    CHECK_EQ(segment_writer_new(&bad, HQ_KEY, spool, 1, &w, &err), 0);
    struct egress_counts c;
    memset(&c, 0, sizeof c);
    struct egress_record *r = make_record(1, &c);
    CHECK_EQ(segment_writer_add(w, r, &err), -EINVAL);
    CHECK_STR(err.field, "policy_hash");
    segment_writer_abort(w);
    /* counts that do not match the records */
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 2, &w, &err), 0);
    CHECK_EQ(segment_writer_add(w, r, &err), 0);
    c.records_out = 5;
    CHECK_EQ(segment_writer_finish(w, 7, 150, &c, NULL, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "counts");
    /* a cursor that goes backwards, in either lane */
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 2, &w, &err), 0);
    c.records_out = 0;
    CHECK_EQ(segment_writer_finish(w, 7, 99, &c, NULL, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "to_ordinary");
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 2, &w, &err), 0);
    CHECK_EQ(segment_writer_finish(w, 2, 100, &c, NULL, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "to_urgent");
    bad = h;
    bad.from_ordinary = (uint64_t)INT64_MAX + 1;
    CHECK_EQ(segment_writer_new(&bad, HQ_KEY, spool, 2, &w, &err), -ERANGE);
    CHECK_STR(err.field, "from_ordinary");
    /* a tombstone counted by the caller as well as by the writer */
    struct egress_record *t = NULL;
    CHECK_EQ(egress_tombstone(pol, &entity_contact, "x1", 3, EGRESS_OP_ERASE, &t, &err), 0);
    CHECK_EQ(segment_writer_new(&h, HQ_KEY, spool, 2, &w, &err), 0);
    CHECK_EQ(segment_writer_add(w, t, &err), 0);
    c.records = c.records_out = 1;
    CHECK_EQ(segment_writer_finish(w, 7, 100, &c, NULL, 0, NULL, &err), -EINVAL);
    CHECK_STR(err.field, "counts");
    CHECK_CONTAINS(err.msg, "tombstones");
    egress_record_free(t);
    egress_record_free(r);
    char name[SEGMENT_NAME_LEN];
    CHECK_EQ(segment_file_name(42, name), 0);
    CHECK_STR(name, "0000000000000042.seg");
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* 50 MB uncompressed through the writer and the reader with bounded
 * memory. Run in a child so the peak RSS is this test's alone. */
static void test_bounded_memory(void)
{
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        enum { NREC = 2000 };
        struct egress_record **recs = calloc(NREC, sizeof *recs);
        struct egress_counts one;
        memset(&one, 0, sizeof one);
        for (int i = 0; i < NREC; i++)
            recs[i] = make_record(i, &one);
        long base = maxrss_kb();
        struct segment_info h;
        base_info(&h);
        struct segment_writer *w = NULL;
        struct op_error err;
        long result[6] = {0};
        if (segment_writer_new(&h, HQ_KEY, spool, 500, &w, &err) != 0)
            _exit(2);
        uint64_t added = 0;
        struct segment_info info;
        size_t raw = 0;
        while (raw < 50u * 1000 * 1000) {
            const struct egress_record *r = recs[added % NREC];
            if (segment_writer_add(w, r, &err) != 0)
                _exit(3);
            raw += egress_record_len(r) + 32;
            added++;
        }
        struct egress_counts c;
        memset(&c, 0, sizeof c);
        c.records = c.records_out = added;
        char path[256];
        if (segment_writer_finish(w, 3, 100 + added, &c, path, sizeof path, &info, &err) != 0)
            _exit(4);
        long after_write = maxrss_kb();
        uint64_t n = 0;
        struct segment_limits lim = {0, 0};
        int rc = read_all_records(path, HQ_KEY, &lim, &n, &err);
        result[0] = base;
        result[1] = after_write;
        result[2] = maxrss_kb();
        result[3] = rc == 0 && n == added;
        result[4] = (long)(info.payload_raw_bytes / 1024);
        result[5] = (long)(info.payload_bytes / 1024);
        if (write(pfd[1], result, sizeof result) != (ssize_t)sizeof result)
            _exit(5);
        unlink(path);
        for (int i = 0; i < NREC; i++)
            egress_record_free(recs[i]);
        free(recs);
        _exit(0);
    }
    close(pfd[1]);
    long res[6] = {0};
    ssize_t got = read(pfd[0], res, sizeof res);
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_EQ(got, (ssize_t)sizeof res);
    CHECK_EQ(WEXITSTATUS(st), 0);
    CHECK_EQ(res[3], 1);
    CHECK_INT(res[4], >=, 48000);
    long grow_w = res[1] - res[0], grow_r = res[2] - res[0];
    fprintf(stderr,
            "  %ld KiB raw -> %ld KiB compressed (ratio %.1f); peak RSS growth: write %ld KiB, "
            "read %ld KiB\n",
            res[4], res[5], res[5] ? (double)res[4] / (double)res[5] : 0.0, grow_w, grow_r);
    /* well under the payload: a tenth of the uncompressed size; a fifth
     * under AddressSanitizer, whose quarantine keeps freed blocks out of
     * reuse, so each record's short-lived buffers add to the peak (still
     * far from holding the 50 MB payload, which is what this bounds) */
#ifdef __SANITIZE_ADDRESS__
    const long bound = res[4] / 5;
#else
    const long bound = res[4] / 10;
#endif
    CHECK_INT(grow_w, <, bound);
    CHECK_INT(grow_r, <, bound);
}

int main(void)
{
    alarm(300); /* watchdog */
    struct op_error err;
    if (policy_load_buffer("EU-DE.yaml", POLICY, strlen(POLICY), &pol, &err) != 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        return 1;
    }
    fx_tmpdir("segment");
    snprintf(spool, sizeof spool, "%s", fx_dir);
    RUN(test_bounded_memory);
    RUN(test_round_trip);
    RUN(test_ops_round_trip);
    RUN(test_truncated_and_flipped);
    RUN(test_caps_and_bombs);
    RUN(test_crash_safety);
    RUN(test_writer_refusals);
    policy_free(pol);
    return fx_finish();
}
