/*
 * libFuzzer target for the segment reader (sync/core/segment.c: segment_open_fd
 * and segment_next_record). The HMAC stops a random file long before the
 * payload, so the first input byte picks what the rest is:
 *   0: a whole segment file (magic, version, header caps, header JSON,
 *      lengths, SHA-256, HMAC);
 *   1: a compressed payload, framed with a correct header, SHA-256 and
 *      HMAC (inflate, the zip-bomb stop, line framing, counts);
 *   2: uncompressed JSON lines, compressed and framed likewise (record
 *      framing and JSON checks).
 * Beyond "no crash, no leak, no overflow" it checks the reader's promises:
 * a refusal carries a negative code, the check's name and a message; an
 * accepted record has a valid entity name, an op egress_op_parse accepts
 * and a NUL-terminated JSON object of the stated length; no more records
 * than the header declares; the header's cursors never go backwards.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_segment -max_len=200000 tests/fuzz/corpus/segment
 * (seed the corpus with a spool's .seg files prefixed by a 0 byte; the
 * key is KEY below, so tests/tools/make_segment with a credentials file
 * whose hq_key is 5e67 and 60 zeros makes authentic ones).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char KEY[SEGMENT_KEY_BYTES] = {0x5e, 0x67};

static int write_fd(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* A correctly framed, authentic segment around `payload`. */
static int frame(int fd, const unsigned char *payload, size_t plen, uint64_t raw, uint64_t records)
{
    unsigned char md[32];
    unsigned int l = 0;
    char sha[65];
    EVP_Digest(payload, plen, md, &l, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    char h[2048];
    int hl = snprintf(
        h, sizeof h,
        "{\"node_id\":\"n1\",\"segment\":1,\"from\":{\"urgent\":0,\"ordinary\":1},"
        "\"to\":{\"urgent\":1,\"ordinary\":2},\"schema_version\":5,"
        "\"policy_hash\":\"%064d\",\"records\":%llu,\"counts\":{\"records\":%llu,"
        "\"records_out\":%llu,\"records_restricted\":0,\"records_pinned\":0,\"unknown\":0,"
        "\"internal\":0,\"values\":{\"local_only\":{\"as-is\":0,\"pseudonymized\":0,"
        "\"withheld\":0},\"local_primary\":{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0},"
        "\"pseudonymize\":{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0},\"exportable\":"
        "{\"as-is\":0,\"pseudonymized\":0,\"withheld\":0},\"aggregate_only\":{\"as-is\":0,"
        "\"pseudonymized\":0,\"withheld\":0}}},\"created_at\":\"2026-11-24T13:10:35.123Z\","
        "\"payload_bytes\":%zu,\"payload_raw_bytes\":%llu,\"payload_sha256\":\"%s\"}",
        0, (unsigned long long)records, (unsigned long long)records, (unsigned long long)records,
        plen, (unsigned long long)raw, sha);
    unsigned char pre[SEGMENT_PREFIX_LEN];
    memcpy(pre, SEGMENT_MAGIC, SEGMENT_MAGIC_LEN);
    pre[11] = 0;
    pre[12] = SEGMENT_VERSION;
    pre[13] = 0;
    pre[14] = 0;
    pre[15] = (unsigned char)(hl >> 8);
    pre[16] = (unsigned char)hl;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(mac);
    char dg[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", dg, 0),
                           OSSL_PARAM_construct_end()};
    unsigned char tag[32];
    size_t tl = 0;
    EVP_MAC_init(m, KEY, sizeof KEY, params);
    EVP_MAC_update(m, pre, sizeof pre);
    EVP_MAC_update(m, (const unsigned char *)h, (size_t)hl);
    EVP_MAC_update(m, payload, plen);
    EVP_MAC_final(m, tag, &tl, sizeof tag);
    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);
    if (write_fd(fd, pre, sizeof pre) || write_fd(fd, h, (size_t)hl) ||
        write_fd(fd, payload, plen) || write_fd(fd, tag, sizeof tag))
        return -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    int fd = memfd_create("segment", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    int ok = 0;
    if (mode == 0) {
        ok = write_fd(fd, data, size) == 0;
    } else if (mode == 1) {
        /* first 4 bytes: declared raw size (KiB) and record count */
        if (size >= 4) {
            uint64_t raw = ((uint64_t)data[0] << 8 | data[1]) * 64;
            uint64_t recs = (uint64_t)data[2] << 8 | data[3];
            ok = frame(fd, data + 4, size - 4, raw, recs) == 0;
        }
    } else {
        uLongf zl = compressBound((uLong)size);
        unsigned char *z = malloc(zl);
        uint64_t lines = 0;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if (z && compress2(z, &zl, data, (uLong)size, 6) == Z_OK)
            ok = frame(fd, z, zl, size, lines) == 0;
        free(z);
    }
    if (!ok) {
        close(fd);
        return 0;
    }
    struct segment_limits lim = {.payload_max = 1u << 20, .raw_max = 4u << 20};
    struct segment *s = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = segment_open_fd(fd, KEY, &lim, &s, &err);
    close(fd);
    if (rc < 0) {
        must(err.code == rc && err.field[0] && err.msg[0], "a refusal names its check");
        must(s == NULL, "a refusal returns no segment");
        return 0;
    }
    const struct segment_info *info = segment_get_info(s);
    must(info->payload_raw_bytes <= lim.raw_max, "raw cap");
    must(info->from_urgent <= info->to_urgent && info->from_ordinary <= info->to_ordinary,
         "cursors never go backwards");
    const char *ent, *op, *json;
    size_t len;
    uint64_t n = 0;
    while ((rc = segment_next_record(s, &ent, &op, &json, &len, &err)) == 1) {
        n++;
        enum egress_op o;
        must(n <= info->records, "no more records than declared");
        must(strlen(ent) >= 1 && strlen(ent) <= SEGMENT_ENTITY_MAX, "entity name length");
        must(egress_op_parse(op, &o) == 0, "op is a known op");
        must(strlen(json) == len && len >= 2 && json[0] == '{' && json[len - 1] == '}',
             "record is a NUL-terminated object of the stated length");
    }
    if (rc < 0) {
        must(err.code == rc && err.field[0] && err.msg[0], "a refusal names its check");
        const char *e2, *o2, *j2;
        size_t l2;
        must(segment_next_record(s, &e2, &o2, &j2, &l2, &err) == rc, "errors are sticky");
    } else {
        must(n == info->records, "end only when the count matches");
    }
    segment_close(s);
    return 0;
}
