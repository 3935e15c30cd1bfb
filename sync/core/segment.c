/*
 * The segment codec and the atomic spool writer (format in
 * docs/SEGMENT_FORMAT.md). The writer reserves a header slot sized for the
 * largest header its fields can produce, streams deflate output straight
 * into the .tmp file after it, then writes the real header into the slot
 * (padded with spaces), reads the file back once to compute the HMAC (the
 * header precedes the payload, so the MAC cannot be streamed), appends the
 * trailer and publishes the file with fsync, rename and fsync of the
 * directory. The reader checks every length against a cap before using
 * it, authenticates the whole file before yielding a record, and inflates
 * through fixed buffers; a record line is the only thing it holds, and
 * that is capped too.
 */
#include "segment.h"

#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "codec.h"
#include "fsutil.h"
#include "timefmt.h"

#define CHUNK (64u * 1024u)
/* 9 rather than 6: on contact JSON it is ~2% smaller for ~25% more CPU,
 * and the link, not the CPU, is the bottleneck (docs/SEGMENT_FORMAT.md) */
#ifndef SEGMENT_ZLEVEL
#define SEGMENT_ZLEVEL 9
#endif
#define TMP_SUFFIX ".tmp"
#define SCAN_MAX (1u << 20)
/* JSON integers are signed 64-bit (jansson) */
#define NUM_MAX ((uint64_t)INT64_MAX)

static const char line_head[] = "{\"entity\":\"";
static const char line_op[] = "\",\"op\":\"";
static const char line_mid[] = "\",\"record\":";
/* the longest op name ("aggregate") and its NUL */
#define OP_NAME_MAX 10

/* ---- small helpers ------------------------------------------------------ */

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int is_hex64(const char *s)
{
    return strlen(s) == 64 && codec_hex_valid(s, 64, CODEC_HEX_LOWER);
}

static int valid_node_id(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
            return 0;
    return i >= 1 && i <= SEGMENT_NODE_ID_MAX;
}

static int valid_entity(const char *s, size_t n)
{
    if (n < 1 || n > SEGMENT_ENTITY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return 0;
    return 1;
}

static EVP_MAC_CTX *hmac_new(const unsigned char key[SEGMENT_KEY_BYTES])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (!ctx)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_init(ctx, key, SEGMENT_KEY_BYTES, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int format_time(int64_t ms, char out[32])
{
    if (ms > TIMEFMT_MS_MAX || timefmt_iso_ms(ms, out, 32) < 0)
        return -ERANGE;
    return 0;
}

/* ---- header JSON --------------------------------------------------------- */

static json_t *counts_json(const struct egress_counts *c)
{
    json_t *values = json_object();
    for (int k = 0; values && k < POLICY_CLASS_COUNT; k++) {
        json_t *o = json_object();
        for (int j = 0; o && j < EGRESS_OUTCOME_COUNT; j++)
            json_object_set_new(o, egress_outcome_name((enum egress_outcome)j),
                                json_integer((json_int_t)c->values[k][j]));
        json_object_set_new(values, policy_class_name((enum policy_class)k), o);
    }
    return json_pack("{sIsIsIsIsIsIso}", "records", (json_int_t)c->records, "records_out",
                     (json_int_t)c->records_out, "records_restricted",
                     (json_int_t)c->records_restricted, "records_pinned",
                     (json_int_t)c->records_pinned, "unknown", (json_int_t)c->unknown, "internal",
                     (json_int_t)c->internal, "values", values);
}

static int counts_in_range(const struct egress_counts *c)
{
    if (c->records > NUM_MAX || c->records_out > NUM_MAX || c->records_restricted > NUM_MAX ||
        c->records_pinned > NUM_MAX || c->unknown > NUM_MAX || c->internal > NUM_MAX)
        return 0;
    for (int k = 0; k < POLICY_CLASS_COUNT; k++)
        for (int j = 0; j < EGRESS_OUTCOME_COUNT; j++)
            if (c->values[k][j] > NUM_MAX)
                return 0;
    return 1;
}

/* The header as compact JSON in a fixed key order (malloc'd), or NULL. */
static char *header_json(const struct segment_info *h)
{
    char created[32];
    if (format_time(h->created_ms, created) != 0)
        return NULL;
    json_t *counts = counts_json(&h->counts);
    if (!counts)
        return NULL;
    json_t *o = json_pack(
        "{sssIs{sIsI}s{sIsI}sIsssIsosssIsIss}", "node_id", h->node_id, "segment",
        (json_int_t)h->segment_no, "from", "urgent", (json_int_t)h->from_urgent, "ordinary",
        (json_int_t)h->from_ordinary, "to", "urgent", (json_int_t)h->to_urgent, "ordinary",
        (json_int_t)h->to_ordinary, "schema_version", (json_int_t)h->schema_version, "policy_hash",
        h->policy_hash, "records", (json_int_t)h->records, "counts", counts, "created_at", created,
        "payload_bytes", (json_int_t)h->payload_bytes, "payload_raw_bytes",
        (json_int_t)h->payload_raw_bytes, "payload_sha256", h->payload_sha256);
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* ---- writer -------------------------------------------------------------- */

struct segment_writer {
    struct segment_info info;
    unsigned char key[SEGMENT_KEY_BYTES];
    int dirfd;
    int fd;
    char dir[1024];
    char name[SEGMENT_NAME_LEN];
    char tmpname[SEGMENT_NAME_LEN + sizeof TMP_SUFFIX];
    size_t slot;         /* bytes reserved for the header JSON */
    uint64_t written;    /* payload bytes in the file */
    uint64_t tombstones; /* records added by egress_tombstone (not in the caller's counts) */
    z_stream zs;
    uint64_t out_seen, in_at_out; /* total_out when it last grew, and total_in then */
    EVP_MD_CTX *sha;
    int failed;
    unsigned char out[CHUNK];
};

int segment_file_name(uint64_t no, char out[SEGMENT_NAME_LEN])
{
    if (no > SEGMENT_NO_MAX)
        return -ERANGE;
    snprintf(out, SEGMENT_NAME_LEN, "%016" PRIu64 ".seg", no);
    return 0;
}

static void writer_free(struct segment_writer *w, int remove_tmp)
{
    if (w->fd >= 0)
        close(w->fd);
    if (remove_tmp && w->dirfd >= 0)
        (void)unlinkat(w->dirfd, w->tmpname, 0);
    if (w->dirfd >= 0)
        close(w->dirfd);
    deflateEnd(&w->zs);
    EVP_MD_CTX_free(w->sha);
    OPENSSL_cleanse(w->key, sizeof w->key);
    free(w);
}

int segment_writer_new(const struct segment_info *hdr,
                       const unsigned char hq_key[SEGMENT_KEY_BYTES], const char *spool_dir,
                       uint64_t segment_no, struct segment_writer **out, struct op_error *err)
{
    if (!valid_node_id(hdr->node_id))
        return op_error_set(err, -EINVAL, "node_id",
                            "node id must be 1 to %d characters of A-Z a-z 0-9 . _ : -",
                            SEGMENT_NODE_ID_MAX);
    if (!is_hex64(hdr->policy_hash))
        return op_error_set(err, -EINVAL, "policy_hash",
                            "policy hash must be 64 lower-case hex digits");
    if (segment_no > SEGMENT_NO_MAX)
        return op_error_set(err, -ERANGE, "segment", "segment number %" PRIu64 " is over %llu",
                            segment_no, SEGMENT_NO_MAX);
    if (hdr->from_urgent > NUM_MAX)
        return op_error_set(err, -ERANGE, "from_urgent", "from_urgent %" PRIu64 " is over %" PRIu64,
                            hdr->from_urgent, NUM_MAX);
    if (hdr->from_ordinary > NUM_MAX)
        return op_error_set(err, -ERANGE, "from_ordinary",
                            "from_ordinary %" PRIu64 " is over %" PRIu64, hdr->from_ordinary,
                            NUM_MAX);
    if (hdr->created_ms < 0)
        return op_error_set(err, -EINVAL, "created_ms", "created time is negative");
    if (strlen(spool_dir) >= sizeof((struct segment_writer *)0)->dir)
        return op_error_set(err, -ENAMETOOLONG, "spool_dir", "spool directory path is too long");

    struct segment_writer *w = calloc(1, sizeof *w);
    if (!w)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    w->fd = -1;
    w->dirfd = -1;
    w->info = *hdr;
    w->info.segment_no = segment_no;
    w->info.to_urgent = hdr->from_urgent;
    w->info.to_ordinary = hdr->from_ordinary;
    w->info.records = 0;
    memset(&w->info.counts, 0, sizeof w->info.counts);
    w->info.payload_bytes = w->info.payload_raw_bytes = 0;
    w->info.payload_sha256[0] = '\0';
    if (w->info.created_ms == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        w->info.created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    memcpy(w->key, hq_key, SEGMENT_KEY_BYTES);
    snprintf(w->dir, sizeof w->dir, "%s", spool_dir);
    (void)segment_file_name(segment_no, w->name);
    snprintf(w->tmpname, sizeof w->tmpname, "%s" TMP_SUFFIX, w->name);
    if (deflateInit(&w->zs, SEGMENT_ZLEVEL) != Z_OK) {
        free(w);
        return op_error_set(err, -ENOMEM, NULL, "cannot start deflate");
    }

    /* The slot fits the header with every number at its widest, so the
     * final header always fits whatever the counts turn out to be. */
    struct segment_info widest = w->info;
    widest.to_urgent = widest.to_ordinary = widest.records = widest.payload_bytes =
        widest.payload_raw_bytes = NUM_MAX;
    widest.segment_no = NUM_MAX;
    widest.counts.records = widest.counts.records_out = widest.counts.records_restricted =
        widest.counts.records_pinned = widest.counts.unknown = widest.counts.internal = NUM_MAX;
    for (int k = 0; k < POLICY_CLASS_COUNT; k++)
        for (int j = 0; j < EGRESS_OUTCOME_COUNT; j++)
            widest.counts.values[k][j] = NUM_MAX;
    memset(widest.payload_sha256, 'f', 64);
    widest.payload_sha256[64] = '\0';
    widest.created_ms = 253402300799999; /* 9999-12-31T23:59:59.999Z */
    char *probe = header_json(&widest);
    if (!probe) {
        writer_free(w, 0);
        return op_error_set(err, -ENOMEM, NULL, "cannot build the segment header");
    }
    w->slot = strlen(probe);
    free(probe);
    if (w->slot > SEGMENT_HEADER_MAX) {
        writer_free(w, 0);
        return op_error_set(err, -EFBIG, "header", "header would exceed %u bytes",
                            SEGMENT_HEADER_MAX);
    }

    w->sha = EVP_MD_CTX_new();
    if (!w->sha || !EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL)) {
        writer_free(w, 0);
        return op_error_set(err, -ENOMEM, NULL, "cannot start SHA-256");
    }
    w->dirfd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0) {
        int e = -errno;
        writer_free(w, 0);
        return op_error_set(err, e, "spool_dir", "cannot open spool directory %s: %s", spool_dir,
                            strerror(-e));
    }
    w->fd = openat(w->dirfd, w->tmpname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int e = -errno;
        if (e == -EEXIST)
            op_error_set(err, e, "segment",
                         "%s/%s exists: another writer has segment %" PRIu64
                         ", or a crash left it (segment_spool_scan removes it)",
                         spool_dir, w->tmpname, segment_no);
        else
            op_error_set(err, e, "segment", "cannot create %s/%s: %s", spool_dir, w->tmpname,
                         strerror(-e));
        writer_free(w, 0);
        return e;
    }
    *out = w;
    return 0;
}

/* Moves whatever deflate produced into the file. */
static int drain(struct segment_writer *w)
{
    size_t n = CHUNK - w->zs.avail_out;
    if (n == 0)
        return 0;
    int rc =
        fsutil_pwrite_all(w->fd, w->out, n, SEGMENT_PREFIX_LEN + (uint64_t)w->slot + w->written);
    if (rc < 0)
        return rc;
    if (!EVP_DigestUpdate(w->sha, w->out, n))
        return -EIO;
    w->written += n;
    w->zs.next_out = w->out;
    w->zs.avail_out = CHUNK;
    return 0;
}

static int feed(struct segment_writer *w, const void *data, size_t n, int flush)
{
    w->zs.next_in = (Bytef *)(uintptr_t)data;
    w->zs.avail_in = (uInt)n;
    for (;;) {
        if (w->zs.avail_out == 0 || !w->zs.next_out) {
            int rc = w->zs.next_out ? drain(w) : 0;
            if (rc < 0)
                return rc;
            w->zs.next_out = w->out;
            w->zs.avail_out = CHUNK;
        }
        int z = deflate(&w->zs, flush);
        if (w->zs.total_out != w->out_seen) {
            w->out_seen = w->zs.total_out;
            w->in_at_out = w->zs.total_in;
        }
        if (z == Z_STREAM_END)
            return drain(w);
        if (z != Z_OK && z != Z_BUF_ERROR)
            return -EIO;
        if (w->zs.avail_in == 0 && w->zs.avail_out > 0 && flush == Z_NO_FLUSH)
            return 0;
    }
}

int segment_writer_add(struct segment_writer *w, const struct egress_record *r,
                       struct op_error *err)
{
    if (w->failed)
        return op_error_set(err, -EINVAL, NULL, "segment writer failed earlier; abort it");
    const char *json = egress_record_json(r);
    size_t len = egress_record_len(r);
    const char *name = egress_record_entity(r)->name;
    size_t nlen = strlen(name);
    const char *op = egress_op_name(egress_record_op(r));
    size_t olen = strlen(op);
    if (strcmp(egress_record_policy_hash(r), w->info.policy_hash) != 0)
        return op_error_set(err, -EINVAL, "policy_hash",
                            "record %s was projected under policy %.12s..., segment %" PRIu64
                            " is for %.12s...",
                            egress_record_id(r), egress_record_policy_hash(r), w->info.segment_no,
                            w->info.policy_hash);
    if (!valid_entity(name, nlen))
        return op_error_set(err, -EINVAL, "entity", "entity name \"%s\" is not [a-z_]{1,%d}", name,
                            SEGMENT_ENTITY_MAX);
    if (olen == 0)
        return op_error_set(err, -EINVAL, "op", "record %s has no valid op", egress_record_id(r));
    if (len < 2 || json[0] != '{' || json[len - 1] != '}' || memchr(json, '\n', len))
        return op_error_set(err, -EINVAL, "record", "record %s is not one line of a JSON object",
                            egress_record_id(r));
    uint64_t line = (sizeof line_head - 1) + nlen + (sizeof line_op - 1) + olen +
                    (sizeof line_mid - 1) + len + 2;
    if (line > SEGMENT_LINE_MAX)
        return op_error_set(err, -EFBIG, "record",
                            "record %s is %zu bytes; a segment line holds at most %u",
                            egress_record_id(r), len, SEGMENT_LINE_MAX);
    if (w->info.payload_raw_bytes + line > SEGMENT_RAW_MAX_DEFAULT ||
        w->zs.total_out > SEGMENT_PAYLOAD_MAX_DEFAULT - CHUNK)
        return op_error_set(err, -EFBIG, "segment",
                            "segment %" PRIu64 " is full (over the default reader caps); finish "
                            "it and start the next",
                            w->info.segment_no);
    int rc = feed(w, line_head, sizeof line_head - 1, Z_NO_FLUSH);
    if (rc == 0)
        rc = feed(w, name, nlen, Z_NO_FLUSH);
    if (rc == 0)
        rc = feed(w, line_op, sizeof line_op - 1, Z_NO_FLUSH);
    if (rc == 0)
        rc = feed(w, op, olen, Z_NO_FLUSH);
    if (rc == 0)
        rc = feed(w, line_mid, sizeof line_mid - 1, Z_NO_FLUSH);
    if (rc == 0)
        rc = feed(w, json, len, Z_NO_FLUSH);
    if (rc == 0)
        rc = feed(w, "}\n", 2, Z_NO_FLUSH);
    if (rc < 0) {
        w->failed = 1;
        return op_error_set(err, rc, "segment", "cannot write %s/%s: %s", w->dir, w->tmpname,
                            strerror(-rc));
    }
    w->info.payload_raw_bytes += line;
    w->info.records++;
    enum egress_op opv = egress_record_op(r);
    if (opv != EGRESS_OP_UPSERT && opv != EGRESS_OP_DELETE && opv != EGRESS_OP_PATCH)
        w->tombstones++; /* a patch is cut from a projection the caller counted */
    return 0;
}

uint64_t segment_writer_compressed_bytes(const struct segment_writer *w)
{
    return w->zs.total_out;
}

uint64_t segment_writer_estimated_bytes(const struct segment_writer *w)
{
    uint64_t out = w->zs.total_out, in = w->zs.total_in;
    /* the first output is the 2-byte zlib header alone, not a ratio */
    if (w->in_at_out == 0 || out <= 2)
        return out + in / 4;
    return out + (in - w->in_at_out) * out / w->in_at_out;
}

uint64_t segment_writer_records(const struct segment_writer *w)
{
    return w->info.records;
}

void segment_writer_abort(struct segment_writer *w)
{
    if (w)
        writer_free(w, 1);
}

/* HMAC over [0, end) read back from the file, and SHA-256 of the payload
 * again, to catch a write the disk did not keep. */
static int readback(struct segment_writer *w, uint64_t end, unsigned char mac[SEGMENT_MAC_LEN],
                    char sha_hex[65])
{
    EVP_MAC_CTX *m = hmac_new(w->key);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    int rc = -ENOMEM;
    if (!m || !sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL))
        goto fail;
    uint64_t payload_off = SEGMENT_PREFIX_LEN + (uint64_t)w->slot;
    for (uint64_t off = 0; off < end;) {
        size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
        rc = fsutil_pread_all(w->fd, w->out, n, off);
        if (rc < 0)
            goto fail;
        rc = -EIO;
        if (!EVP_MAC_update(m, w->out, n))
            goto fail;
        if (off + n > payload_off) {
            size_t skip = off >= payload_off ? 0 : (size_t)(payload_off - off);
            if (!EVP_DigestUpdate(sha, w->out + skip, n - skip))
                goto fail;
        }
        off += n;
    }
    unsigned char md[32];
    size_t maclen = 0;
    rc = -EIO;
    if (!EVP_DigestFinal_ex(sha, md, NULL) || !EVP_MAC_final(m, mac, &maclen, SEGMENT_MAC_LEN) ||
        maclen != SEGMENT_MAC_LEN)
        goto fail;
    (void)codec_hex_encode(md, 32, sha_hex, 65);
    rc = 0;
fail:
    EVP_MAC_CTX_free(m);
    EVP_MD_CTX_free(sha);
    return rc;
}

static int publish(struct segment_writer *w)
{
    if (renameat2(w->dirfd, w->tmpname, w->dirfd, w->name, RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL && errno != ENOSYS)
            return -errno;
        /* a file system without RENAME_NOREPLACE: link refuses to replace too */
        if (linkat(w->dirfd, w->tmpname, w->dirfd, w->name, 0) != 0)
            return -errno;
        (void)unlinkat(w->dirfd, w->tmpname, 0);
    }
    return fsync(w->dirfd) == 0 ? 0 : -errno;
}

int segment_writer_finish(struct segment_writer *w, uint64_t to_urgent, uint64_t to_ordinary,
                          const struct egress_counts *counts, char *out_path, size_t cap,
                          struct segment_info *info, struct op_error *err)
{
    int rc;
    char *hj = NULL;
    char path[sizeof w->dir + SEGMENT_NAME_LEN + 1];
    snprintf(path, sizeof path, "%s/%s", w->dir, w->name);
    if (w->failed) {
        rc = op_error_set(err, -EINVAL, NULL, "segment writer failed earlier");
        goto fail;
    }
    if (to_urgent < w->info.from_urgent || to_urgent > NUM_MAX) {
        rc =
            op_error_set(err, -EINVAL, "to_urgent",
                         "urgent cursor %" PRIu64 " -> %" PRIu64 " goes backwards or over %" PRIu64,
                         w->info.from_urgent, to_urgent, NUM_MAX);
        goto fail;
    }
    if (to_ordinary < w->info.from_ordinary || to_ordinary > NUM_MAX) {
        rc = op_error_set(err, -EINVAL, "to_ordinary",
                          "ordinary cursor %" PRIu64 " -> %" PRIu64
                          " goes backwards or over %" PRIu64,
                          w->info.from_ordinary, to_ordinary, NUM_MAX);
        goto fail;
    }
    struct egress_counts total;
    if (counts) {
        total = *counts;
        total.records += w->tombstones;
        total.records_out += w->tombstones;
    }
    if (!counts || counts->records_out != w->info.records - w->tombstones ||
        total.records < counts->records || !counts_in_range(&total)) {
        rc = op_error_set(err, -EINVAL, "counts",
                          "counts say %" PRIu64 " projections left, %" PRIu64
                          " were added (and %" PRIu64 " tombstones, which the writer counts)",
                          counts ? counts->records_out : 0, w->info.records - w->tombstones,
                          w->tombstones);
        goto fail;
    }
    if (out_path && strlen(path) >= cap) {
        rc = op_error_set(err, -ENAMETOOLONG, NULL, "%s does not fit in %zu bytes", path, cap);
        goto fail;
    }
    rc = feed(w, "", 0, Z_FINISH);
    unsigned char md[32];
    if (rc == 0 && !EVP_DigestFinal_ex(w->sha, md, NULL))
        rc = -EIO;
    if (rc < 0) {
        op_error_set(err, rc, "segment", "cannot write %s/%s: %s", w->dir, w->tmpname,
                     strerror(-rc));
        goto fail;
    }
    w->info.to_urgent = to_urgent;
    w->info.to_ordinary = to_ordinary;
    w->info.counts = total;
    w->info.payload_bytes = w->written;
    (void)codec_hex_encode(md, 32, w->info.payload_sha256, sizeof w->info.payload_sha256);

    hj = header_json(&w->info);
    if (!hj) {
        rc = op_error_set(err, -ENOMEM, NULL, "cannot build the segment header");
        goto fail;
    }
    size_t hlen = strlen(hj);
    if (hlen > w->slot) {
        rc = op_error_set(err, -EOVERFLOW, "header", "header of %zu bytes exceeds its slot of %zu",
                          hlen, w->slot);
        goto fail;
    }
    unsigned char *prefix = malloc(SEGMENT_PREFIX_LEN + w->slot);
    if (!prefix) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto fail;
    }
    memcpy(prefix, SEGMENT_MAGIC, SEGMENT_MAGIC_LEN);
    put_u16(prefix + SEGMENT_MAGIC_LEN, SEGMENT_VERSION);
    put_u32(prefix + SEGMENT_MAGIC_LEN + 2, (uint32_t)w->slot);
    memcpy(prefix + SEGMENT_PREFIX_LEN, hj, hlen);
    memset(prefix + SEGMENT_PREFIX_LEN + hlen, ' ', w->slot - hlen);
    rc = fsutil_pwrite_all(w->fd, prefix, SEGMENT_PREFIX_LEN + w->slot, 0);
    free(prefix);
    uint64_t end = SEGMENT_PREFIX_LEN + (uint64_t)w->slot + w->written;
    unsigned char mac[SEGMENT_MAC_LEN];
    char again[65];
    if (rc == 0)
        rc = readback(w, end, mac, again);
    if (rc == 0 && strcmp(again, w->info.payload_sha256) != 0) {
        rc = op_error_set(err, -EIO, "payload_sha256",
                          "%s/%s: the payload read back differs from what was written", w->dir,
                          w->tmpname);
        goto fail;
    }
    if (rc == 0)
        rc = fsutil_pwrite_all(w->fd, mac, sizeof mac, end);
    if (rc == 0 && fsync(w->fd) != 0)
        rc = -errno;
    if (rc < 0) {
        op_error_set(err, rc, "segment", "cannot write %s/%s: %s", w->dir, w->tmpname,
                     strerror(-rc));
        goto fail;
    }
    rc = publish(w);
    if (rc < 0) {
        op_error_set(err, rc, "segment", "cannot publish %s: %s", path,
                     rc == -EEXIST ? "segment exists already (segments are immutable)"
                                   : strerror(-rc));
        goto fail;
    }
    if (out_path)
        snprintf(out_path, cap, "%s", path);
    if (info)
        *info = w->info;
    free(hj);
    writer_free(w, 0);
    return 0;
fail:
    free(hj);
    writer_free(w, 1);
    return rc;
}

/* ---- reader -------------------------------------------------------------- */

struct segment {
    int fd;
    struct segment_info info;
    uint64_t payload_off;
    uint64_t in_pos; /* payload bytes handed to inflate */
    uint64_t raw;    /* uncompressed bytes produced */
    uint64_t lines;
    z_stream zs;
    int z_ended;
    int error; /* sticky */
    struct op_error first_err;
    size_t out_pos, out_len;
    struct buf line; /* the record being read, without its newline */
    char entity[SEGMENT_ENTITY_MAX + 1];
    char op[OP_NAME_MAX];
    unsigned char in[CHUNK];
    unsigned char out[CHUNK];
};

static int bad(struct op_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(struct op_error *err, int code, const char *field, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return op_error_set(err, code, field, "%s", msg);
}

static int get_num(json_t *h, const char *key, uint64_t max, uint64_t *out, struct op_error *err)
{
    json_t *v = json_object_get(h, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        char f[64];
        snprintf(f, sizeof f, "header.%s", key);
        return bad(err, -EBADMSG, f,
                   "segment header (byte %d): %s must be an integer from 0 to %" PRIu64,
                   SEGMENT_PREFIX_LEN, key, max);
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_str(json_t *h, const char *key, char *out, size_t cap, struct op_error *err)
{
    json_t *v = json_object_get(h, key);
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        char f[64];
        snprintf(f, sizeof f, "header.%s", key);
        return bad(err, -EBADMSG, f,
                   "segment header (byte %d): %s must be a string of at most %zu bytes",
                   SEGMENT_PREFIX_LEN, key, cap - 1);
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* get_str for a SHA-256 in hex: 64 lower-case hex digits. */
static int get_hex64(json_t *h, const char *key, char *out, size_t cap, struct op_error *err)
{
    int rc = get_str(h, key, out, cap, err);
    if (rc < 0 || is_hex64(out))
        return rc;
    char f[64];
    snprintf(f, sizeof f, "header.%s", key);
    return bad(err, -EBADMSG, f, "segment header: %s is not 64 lower-case hex digits", key);
}

/* A lane's cursor may stay or move on within a segment, never go back. */
static int forward(uint64_t from, uint64_t to, const char *lane, struct op_error *err)
{
    if (from <= to)
        return 0;
    char f[64];
    snprintf(f, sizeof f, "header.to.%s", lane);
    return bad(err, -EBADMSG, f,
               "segment header: %s cursor goes backwards, from %" PRIu64 " to %" PRIu64, lane, from,
               to);
}

/* "NAME":{"urgent":N,"ordinary":N}; errors name "header.NAME.LANE". */
static int get_cursor(json_t *h, const char *key, uint64_t *urgent, uint64_t *ordinary,
                      struct op_error *err)
{
    json_t *o = json_object_get(h, key);
    static const char *const lanes[] = {"urgent", "ordinary"};
    uint64_t *dst[] = {urgent, ordinary};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(o, lanes[i]);
        if (!json_is_object(o) || !json_is_integer(v) || json_integer_value(v) < 0) {
            char f[64];
            snprintf(f, sizeof f, "header.%s.%s", key, lanes[i]);
            return bad(err, -EBADMSG, f,
                       "segment header (byte %d): %s.%s must be an integer from 0 to %" PRIu64,
                       SEGMENT_PREFIX_LEN, key, lanes[i], NUM_MAX);
        }
        *dst[i] = (uint64_t)json_integer_value(v);
    }
    if (json_object_size(o) != 2) {
        char f[64];
        snprintf(f, sizeof f, "header.%s", key);
        return bad(err, -EBADMSG, f,
                   "segment header (byte %d): %s must hold only \"urgent\" and \"ordinary\"",
                   SEGMENT_PREFIX_LEN, key);
    }
    return 0;
}

static int parse_counts(json_t *c, struct egress_counts *out, struct op_error *err)
{
    static const char *const names[] = {"records",        "records_out", "records_restricted",
                                        "records_pinned", "unknown",     "internal"};
    uint64_t *dst[] = {&out->records,        &out->records_out, &out->records_restricted,
                       &out->records_pinned, &out->unknown,     &out->internal};
    if (!json_is_object(c))
        return bad(err, -EBADMSG, "header.counts", "segment header: counts must be an object");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int rc = get_num(c, names[i], NUM_MAX, dst[i], err);
        if (rc < 0)
            return bad(err, rc, "header.counts",
                       "segment header: counts.%s must be an integer "
                       "from 0 to %" PRIu64,
                       names[i], NUM_MAX);
    }
    json_t *values = json_object_get(c, "values");
    for (int k = 0; k < POLICY_CLASS_COUNT; k++) {
        const char *cls = policy_class_name((enum policy_class)k);
        json_t *o = json_object_get(values, cls);
        for (int j = 0; j < EGRESS_OUTCOME_COUNT; j++) {
            const char *oc = egress_outcome_name((enum egress_outcome)j);
            if (get_num(o, oc, NUM_MAX, &out->values[k][j], err) < 0)
                return bad(err, -EBADMSG, "header.counts",
                           "segment header: counts.values.%s.%s must be an integer from 0 to "
                           "%" PRIu64,
                           cls, oc, NUM_MAX);
        }
    }
    return 0;
}

static int parse_header(const char *buf, size_t n, const struct segment_limits *lim,
                        struct segment_info *info, struct op_error *err)
{
    json_error_t je;
    json_t *h = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    if (!h)
        return bad(
            err, -EBADMSG, "header", "segment header is not valid JSON at byte %" PRIu64 ": %s",
            (uint64_t)SEGMENT_PREFIX_LEN + (uint64_t)(je.position > 0 ? je.position : 0), je.text);
    int rc = -EBADMSG;
    if (!json_is_object(h)) {
        rc = bad(err, -EBADMSG, "header", "segment header (byte %d) is not a JSON object",
                 SEGMENT_PREFIX_LEN);
        goto out;
    }
    uint64_t v;
    char created[32];
    if ((rc = get_str(h, "node_id", info->node_id, sizeof info->node_id, err)) < 0)
        goto out;
    if (!valid_node_id(info->node_id)) {
        rc = bad(err, -EBADMSG, "header.node_id", "segment header: node_id \"%s\" is not valid",
                 info->node_id);
        goto out;
    }
    if ((rc = get_num(h, "segment", SEGMENT_NO_MAX, &info->segment_no, err)) < 0 ||
        (rc = get_cursor(h, "from", &info->from_urgent, &info->from_ordinary, err)) < 0 ||
        (rc = get_cursor(h, "to", &info->to_urgent, &info->to_ordinary, err)) < 0 ||
        (rc = get_num(h, "schema_version", UINT32_MAX, &v, err)) < 0)
        goto out;
    info->schema_version = (uint32_t)v;
    if ((rc = forward(info->from_urgent, info->to_urgent, "urgent", err)) < 0 ||
        (rc = forward(info->from_ordinary, info->to_ordinary, "ordinary", err)) < 0 ||
        (rc = get_hex64(h, "policy_hash", info->policy_hash, sizeof info->policy_hash, err)) < 0)
        goto out;
    if ((rc = get_num(h, "records", NUM_MAX, &info->records, err)) < 0 ||
        (rc = parse_counts(json_object_get(h, "counts"), &info->counts, err)) < 0)
        goto out;
    if (info->counts.records_out != info->records) {
        rc = bad(err, -EBADMSG, "header.records",
                 "segment header: records %" PRIu64 " but counts.records_out %" PRIu64,
                 info->records, info->counts.records_out);
        goto out;
    }
    if ((rc = get_str(h, "created_at", created, sizeof created, err)) < 0)
        goto out;
    if (timefmt_parse_iso_ms(created, &info->created_ms) != 0) {
        rc = bad(err, -EBADMSG, "header.created_at",
                 "segment header: created_at \"%s\" is not YYYY-MM-DDTHH:MM:SS.mmmZ", created);
        goto out;
    }
    if ((rc = get_num(h, "payload_bytes", NUM_MAX, &info->payload_bytes, err)) < 0 ||
        (rc = get_num(h, "payload_raw_bytes", NUM_MAX, &info->payload_raw_bytes, err)) < 0 ||
        (rc = get_hex64(h, "payload_sha256", info->payload_sha256, sizeof info->payload_sha256,
                        err)) < 0)
        goto out;
    if (info->payload_bytes > lim->payload_max) {
        rc = bad(err, -EFBIG, "header.payload_bytes",
                 "segment header: payload of %" PRIu64 " bytes exceeds the limit of %" PRIu64,
                 info->payload_bytes, lim->payload_max);
        goto out;
    }
    if (info->payload_raw_bytes > lim->raw_max) {
        rc = bad(err, -EFBIG, "header.payload_raw_bytes",
                 "segment header: uncompressed payload of %" PRIu64
                 " bytes exceeds the limit of %" PRIu64,
                 info->payload_raw_bytes, lim->raw_max);
        goto out;
    }
    rc = 0;
out:
    json_decref(h);
    return rc;
}

/* Streams [0, end) through the HMAC and the payload part through SHA-256,
 * then compares both. */
static int authenticate(struct segment *s, uint64_t end, const unsigned char *key,
                        struct op_error *err)
{
    EVP_MAC_CTX *m = hmac_new(key);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    int rc = op_error_set(err, -ENOMEM, NULL, "cannot start SHA-256/HMAC");
    if (!m || !sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL))
        goto out;
    for (uint64_t off = 0; off < end;) {
        size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
        rc = fsutil_pread_all(s->fd, s->in, n, off);
        if (rc < 0) {
            rc = bad(err, rc, "length", "cannot read segment at byte %" PRIu64 ": %s", off,
                     strerror(-rc));
            goto out;
        }
        rc = op_error_set(err, -EIO, NULL, "SHA-256/HMAC failed");
        if (!EVP_MAC_update(m, s->in, n))
            goto out;
        if (off + n > s->payload_off) {
            size_t skip = off >= s->payload_off ? 0 : (size_t)(s->payload_off - off);
            if (!EVP_DigestUpdate(sha, s->in + skip, n - skip))
                goto out;
        }
        off += n;
    }
    unsigned char md[32], mac[SEGMENT_MAC_LEN], want[SEGMENT_MAC_LEN];
    char mdhex[65];
    size_t maclen = 0;
    rc = op_error_set(err, -EIO, NULL, "SHA-256/HMAC failed");
    if (!EVP_DigestFinal_ex(sha, md, NULL) || !EVP_MAC_final(m, mac, &maclen, sizeof mac) ||
        maclen != sizeof mac)
        goto out;
    (void)codec_hex_encode(md, 32, mdhex, sizeof mdhex);
    if (strcmp(mdhex, s->info.payload_sha256) != 0) {
        rc = bad(err, -EBADMSG, "payload_sha256",
                 "payload (bytes %" PRIu64 "..%" PRIu64 ") has SHA-256 %.16s..., the header "
                 "says %.16s...: the payload is corrupt",
                 s->payload_off, end, mdhex, s->info.payload_sha256);
        goto out;
    }
    rc = fsutil_pread_all(s->fd, want, sizeof want, end);
    if (rc < 0) {
        rc = bad(err, rc, "length", "cannot read the trailer at byte %" PRIu64, end);
        goto out;
    }
    if (CRYPTO_memcmp(mac, want, sizeof mac) != 0) {
        rc = bad(err, -EBADMSG, "hmac",
                 "HMAC trailer at byte %" PRIu64 " does not match: wrong HQ key, or the header "
                 "or trailer was altered",
                 end);
        goto out;
    }
    rc = 0;
out:
    EVP_MAC_CTX_free(m);
    EVP_MD_CTX_free(sha);
    return rc;
}

static int open_checked(struct segment *s, const unsigned char *key,
                        const struct segment_limits *lim_in, struct op_error *err)
{
    struct segment_limits lim = {SEGMENT_PAYLOAD_MAX_DEFAULT, SEGMENT_RAW_MAX_DEFAULT};
    if (lim_in && lim_in->payload_max)
        lim.payload_max = lim_in->payload_max;
    if (lim_in && lim_in->raw_max)
        lim.raw_max = lim_in->raw_max;
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return bad(err, -errno, "path", "cannot stat segment: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bad(err, -EBADMSG, "path", "segment is not a regular file");
    uint64_t size = (uint64_t)st.st_size;
    unsigned char pre[SEGMENT_PREFIX_LEN];
    size_t have = size < SEGMENT_PREFIX_LEN ? (size_t)size : SEGMENT_PREFIX_LEN;
    int rc = fsutil_pread_all(s->fd, pre, have, 0);
    if (rc < 0)
        return bad(err, rc, "length", "cannot read segment: %s", strerror(-rc));
    size_t m = have < SEGMENT_MAGIC_LEN ? have : SEGMENT_MAGIC_LEN;
    for (size_t i = 0; i < m; i++)
        if (pre[i] != (unsigned char)SEGMENT_MAGIC[i])
            return bad(err, -EBADMSG, "magic",
                       "not a segment: byte %zu is 0x%02x, the magic \"OUTPOSTSEG\\0\" has 0x%02x",
                       i, pre[i], (unsigned char)SEGMENT_MAGIC[i]);
    if (have < SEGMENT_PREFIX_LEN)
        return bad(err, -EBADMSG, "length",
                   "truncated: %" PRIu64 " bytes, a segment starts with a %d-byte prefix", size,
                   SEGMENT_PREFIX_LEN);
    unsigned version = (unsigned)pre[11] << 8 | pre[12];
    if (version != SEGMENT_VERSION)
        return bad(err, -EPROTONOSUPPORT, "version",
                   "segment format version %u at byte 11 is not supported (this build reads "
                   "only %d%s)",
                   version, SEGMENT_VERSION,
                   version < SEGMENT_VERSION ? "; version 1 was never deployed" : "");
    uint32_t hlen =
        (uint32_t)pre[13] << 24 | (uint32_t)pre[14] << 16 | (uint32_t)pre[15] << 8 | pre[16];
    if (hlen > SEGMENT_HEADER_MAX)
        return bad(err, -EFBIG, "header_len",
                   "header length %" PRIu32 " at byte 13 exceeds the cap of %u", hlen,
                   SEGMENT_HEADER_MAX);
    if (hlen < 2)
        return bad(err, -EBADMSG, "header_len", "header length %" PRIu32 " at byte 13 is too small",
                   hlen);
    if (size < SEGMENT_PREFIX_LEN + (uint64_t)hlen)
        return bad(err, -EBADMSG, "length",
                   "truncated: %" PRIu64 " bytes, the header ends at byte %" PRIu64, size,
                   SEGMENT_PREFIX_LEN + (uint64_t)hlen);
    char *hbuf = malloc(hlen);
    if (!hbuf)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    rc = fsutil_pread_all(s->fd, hbuf, hlen, SEGMENT_PREFIX_LEN);
    if (rc == 0)
        rc = parse_header(hbuf, hlen, &lim, &s->info, err);
    else
        bad(err, rc, "length", "cannot read the header: %s", strerror(-rc));
    free(hbuf);
    if (rc < 0)
        return rc;
    s->payload_off = SEGMENT_PREFIX_LEN + (uint64_t)hlen;
    uint64_t end = s->payload_off + s->info.payload_bytes;
    uint64_t want = end + SEGMENT_MAC_LEN;
    if (size < want)
        return bad(err, -EBADMSG, "length",
                   "truncated: %" PRIu64 " bytes, the header says the payload runs to byte %" PRIu64
                   " and the trailer to byte %" PRIu64,
                   size, end, want);
    if (size > want)
        return bad(err, -EBADMSG, "length",
                   "%" PRIu64 " stray bytes after the trailer, which ends at byte %" PRIu64,
                   size - want, want);
    return authenticate(s, end, key, err);
}

static struct segment *segment_alloc(void)
{
    struct segment *s = calloc(1, sizeof *s);
    if (s) {
        s->fd = -1;
        buf_init(&s->line, SEGMENT_LINE_MAX - 1); /* the newline counts */
    }
    return s;
}

int segment_open_fd(int fd, const unsigned char hq_key[SEGMENT_KEY_BYTES],
                    const struct segment_limits *lim, struct segment **out, struct op_error *err)
{
    struct segment *s = segment_alloc();
    if (!s)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (s->fd < 0) {
        int e = -errno;
        free(s);
        return op_error_set(err, e, "path", "cannot duplicate descriptor: %s", strerror(-e));
    }
    int rc = open_checked(s, hq_key, lim, err);
    if (rc == 0 && inflateInit(&s->zs) != Z_OK)
        rc = op_error_set(err, -ENOMEM, NULL, "cannot start inflate");
    if (rc < 0) {
        close(s->fd);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int segment_open(const char *path, const unsigned char hq_key[SEGMENT_KEY_BYTES],
                 const struct segment_limits *lim, struct segment **out, struct op_error *err)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, TMP_SUFFIX) == 0)
        return op_error_set(err, -EBADMSG, "path",
                            "%s is an unfinished segment (.tmp); it is never read", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        return op_error_set(err, e, "path", "cannot open segment %s: %s", path, strerror(-e));
    }
    struct segment *s = NULL;
    int rc = segment_open_fd(fd, hq_key, lim, &s, err);
    close(fd);
    if (rc < 0) {
        if (err) {
            /* the path first, the check's message after it */
            char msg[4096 + sizeof err->msg];
            snprintf(msg, sizeof msg, "%s: %s", path, err->msg);
            size_t l = strlen(msg);
            if (l >= sizeof err->msg)
                l = sizeof err->msg - 1;
            memcpy(err->msg, msg, l);
            err->msg[l] = '\0';
        }
        return rc;
    }
    /* a file named for a segment must hold that segment */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char want[SEGMENT_NAME_LEN];
    if (strlen(base) == SEGMENT_NAME_LEN - 1 && strcmp(base + 16, ".seg") == 0 &&
        strspn(base, "0123456789") == 16) {
        (void)segment_file_name(s->info.segment_no, want);
        if (strcmp(base, want) != 0) {
            rc = op_error_set(err, -EBADMSG, "path", "%s holds segment %" PRIu64 ", not %.16s",
                              path, s->info.segment_no, base);
            segment_close(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

const struct segment_info *segment_get_info(const struct segment *s)
{
    return &s->info;
}

void segment_close(struct segment *s)
{
    if (!s)
        return;
    inflateEnd(&s->zs);
    if (s->fd >= 0)
        close(s->fd);
    buf_done(&s->line);
    free(s);
}

static int fail_sticky(struct segment *s, int rc, struct op_error *err)
{
    s->error = rc;
    if (err)
        s->first_err = *err;
    return rc;
}

/* Inflates more into s->out; 0 with out_len > 0, or 0 with z_ended and
 * nothing new at the end of the stream, or an error. */
static int pump(struct segment *s, struct op_error *err)
{
    s->zs.next_out = s->out;
    s->zs.avail_out = CHUNK;
    for (;;) {
        if (s->zs.avail_in == 0 && s->in_pos < s->info.payload_bytes) {
            uint64_t left = s->info.payload_bytes - s->in_pos;
            size_t n = left < CHUNK ? (size_t)left : CHUNK;
            int rc = fsutil_pread_all(s->fd, s->in, n, s->payload_off + s->in_pos);
            if (rc < 0)
                return bad(err, rc, "payload", "cannot read payload at byte %" PRIu64 ": %s",
                           s->payload_off + s->in_pos, strerror(-rc));
            s->in_pos += n;
            s->zs.next_in = s->in;
            s->zs.avail_in = (uInt)n;
        }
        uint64_t before = s->zs.total_in;
        int z = inflate(&s->zs, Z_NO_FLUSH);
        size_t produced = CHUNK - s->zs.avail_out;
        s->raw += produced - s->out_len;
        s->out_len = produced;
        if (s->raw > s->info.payload_raw_bytes)
            return bad(err, -EBADMSG, "payload",
                       "payload inflates past the %" PRIu64 " bytes the header declares; "
                       "stopped (zip bomb or corrupt header)",
                       s->info.payload_raw_bytes);
        if (z == Z_STREAM_END) {
            s->z_ended = 1;
            if (s->zs.avail_in > 0 || s->in_pos < s->info.payload_bytes)
                return bad(err, -EBADMSG, "payload",
                           "%" PRIu64 " bytes after the end of the zlib stream at byte %" PRIu64,
                           s->info.payload_bytes - s->zs.total_in, s->payload_off + s->zs.total_in);
            return 0;
        }
        if (z == Z_NEED_DICT || z == Z_DATA_ERROR || z == Z_MEM_ERROR || z == Z_STREAM_ERROR)
            return bad(err, -EBADMSG, "payload",
                       "payload is not a valid zlib stream at byte %" PRIu64 ": %s",
                       s->payload_off + s->zs.total_in, s->zs.msg ? s->zs.msg : "inflate error");
        if (s->zs.avail_out == 0)
            return 0;
        if (s->zs.avail_in == 0 && s->in_pos >= s->info.payload_bytes &&
            (z == Z_BUF_ERROR || s->zs.total_in == before))
            return bad(err, -EBADMSG, "payload",
                       "payload ends at byte %" PRIu64 " before its zlib stream does",
                       s->payload_off + s->info.payload_bytes);
    }
}

static int take_line(struct segment *s, const char **entity, const char **op, const char **json,
                     size_t *len, struct op_error *err)
{
    char *l = s->line.data;
    size_t n = s->line.len;
    uint64_t at = s->raw - (s->out_len - s->out_pos) - n - 1; /* uncompressed offset */
    uint64_t rec = s->lines + 1;
    const size_t hl = sizeof line_head - 1, ol = sizeof line_op - 1, ml = sizeof line_mid - 1;
    const char *nul = memchr(l, '\0', n);
    if (nul)
        return bad(err, -EBADMSG, "record",
                   "record %" PRIu64 " holds a NUL byte at uncompressed byte %" PRIu64, rec,
                   at + (uint64_t)(nul - l));
    if (n < hl || memcmp(l, line_head, hl) != 0)
        return bad(err, -EBADMSG, "record",
                   "record %" PRIu64 " (uncompressed byte %" PRIu64
                   ") does not start with {\"entity\":\"",
                   rec, at);
    const char *q = memchr(l + hl, '"', n - hl);
    size_t nl = q ? (size_t)(q - (l + hl)) : 0;
    if (!q || !valid_entity(l + hl, nl))
        return bad(err, -EBADMSG, "record",
                   "record %" PRIu64 " (uncompressed byte %" PRIu64 "): bad entity name", rec, at);
    /* q points at the entity's closing quote */
    size_t after = hl + nl; /* offset of q */
    if (n < after + ol || memcmp(q, line_op, ol) != 0)
        return bad(err, -EBADMSG, "record",
                   "record %" PRIu64 " (uncompressed byte %" PRIu64
                   ") is not {\"entity\":NAME,\"op\":OP,\"record\":{...}}",
                   rec, at);
    const char *os = l + after + ol;
    const char *oq = memchr(os, '"', n - after - ol);
    size_t opl = oq ? (size_t)(oq - os) : 0;
    enum egress_op opv;
    char opname[OP_NAME_MAX];
    if (oq && opl < sizeof opname) {
        memcpy(opname, os, opl);
        opname[opl] = '\0';
    }
    if (!oq || opl >= sizeof opname || egress_op_parse(opname, &opv) != 0)
        return bad(err, -EBADMSG, "record",
                   "record %" PRIu64 " (uncompressed byte %" PRIu64
                   "): bad op (one of upsert, delete, erase, purge, withdraw, aggregate, patch)",
                   rec, at + after + ol);
    size_t body = after + ol + opl + ml;
    if (n < body + 3 || memcmp(oq, line_mid, ml) != 0 || l[body] != '{' || l[n - 2] != '}' ||
        l[n - 1] != '}')
        return bad(err, -EBADMSG, "record",
                   "record %" PRIu64 " (uncompressed byte %" PRIu64
                   ") is not {\"entity\":NAME,\"op\":OP,\"record\":{...}}",
                   rec, at);
    json_error_t je;
    json_t *o = json_loadb(l + body, n - 1 - body, JSON_REJECT_DUPLICATES, &je);
    int ok = json_is_object(o);
    json_decref(o);
    if (!ok)
        return bad(err, -EBADMSG, "record",
                   "record %" PRIu64 " (uncompressed byte %" PRIu64 "): not a JSON object: %s", rec,
                   at + body + (uint64_t)(je.position > 0 ? je.position : 0),
                   o ? "another JSON value" : je.text);
    memcpy(s->entity, l + hl, nl);
    s->entity[nl] = '\0';
    memcpy(s->op, opname, opl + 1);
    l[n - 1] = '\0';
    *entity = s->entity;
    *op = s->op;
    *json = l + body;
    *len = n - 1 - body;
    s->lines++;
    if (s->lines > s->info.records)
        return bad(err, -EBADMSG, "record",
                   "payload holds more records than the %" PRIu64 " the header declares",
                   s->info.records);
    return 1;
}

int segment_next_record(struct segment *s, const char **entity, const char **op, const char **json,
                        size_t *len, struct op_error *err)
{
    if (s->error) {
        if (err)
            *err = s->first_err;
        return s->error;
    }
    buf_clear(&s->line);
    for (;;) {
        if (s->out_pos < s->out_len) {
            unsigned char *p = s->out + s->out_pos;
            size_t avail = s->out_len - s->out_pos;
            unsigned char *nlp = memchr(p, '\n', avail);
            size_t take = nlp ? (size_t)(nlp - p) : avail;
            if (s->line.len + take + 1 > SEGMENT_LINE_MAX)
                return fail_sticky(s,
                                   bad(err, -EBADMSG, "record",
                                       "record %" PRIu64 " is longer than %u bytes", s->lines + 1,
                                       SEGMENT_LINE_MAX),
                                   err);
            if (buf_append(&s->line, p, take) < 0)
                return fail_sticky(s, op_error_set(err, -ENOMEM, NULL, "out of memory"), err);
            s->out_pos += take + (nlp ? 1 : 0);
            if (nlp) {
                int rc = take_line(s, entity, op, json, len, err);
                return rc < 0 ? fail_sticky(s, rc, err) : rc;
            }
            continue;
        }
        if (s->z_ended) {
            if (s->line.len > 0)
                return fail_sticky(s,
                                   bad(err, -EBADMSG, "record",
                                       "payload ends inside record %" PRIu64 " (no newline)",
                                       s->lines + 1),
                                   err);
            if (s->raw != s->info.payload_raw_bytes || s->lines != s->info.records)
                return fail_sticky(s,
                                   bad(err, -EBADMSG, "payload",
                                       "payload holds %" PRIu64 " bytes in %" PRIu64
                                       " records, the header declares %" PRIu64 " in %" PRIu64,
                                       s->raw, s->lines, s->info.payload_raw_bytes,
                                       s->info.records),
                                   err);
            return 0;
        }
        s->out_pos = s->out_len = 0;
        int rc = pump(s, err);
        if (rc < 0)
            return fail_sticky(s, rc, err);
    }
}

/* ---- spool scan ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 1 for NNNNNNNNNNNNNNNN.seg, 2 for .seg.tmp, 0 otherwise; *no the number */
static int name_kind(const char *name, uint64_t *no)
{
    if (strspn(name, "0123456789") != 16)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++)
        v = v * 10 + (uint64_t)(name[i] - '0');
    *no = v;
    if (strcmp(name + 16, ".seg") == 0)
        return 1;
    if (strcmp(name + 16, ".seg" TMP_SUFFIX) == 0)
        return 2;
    return 0;
}

int segment_spool_scan(const char *dir, segment_scan_fn cb, void *ctx, struct op_error *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = -errno;
        return op_error_set(err, e, "spool_dir", "cannot open spool directory %s: %s", dir,
                            strerror(-e));
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = -errno;
        close(dfd);
        return op_error_set(err, e, "spool_dir", "cannot read spool directory %s: %s", dir,
                            strerror(-e));
    }
    uint64_t *nums = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, removed = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t no;
        int kind = name_kind(de->d_name, &no);
        if (kind == 2) {
            if (unlinkat(dfd, de->d_name, 0) != 0 && errno != ENOENT) {
                rc = op_error_set(err, -errno, "spool_dir", "cannot remove %s/%s: %s", dir,
                                  de->d_name, strerror(errno));
                goto out;
            }
            removed = 1;
        } else if (kind == 1) {
            if (n == SCAN_MAX) {
                rc = op_error_set(err, -E2BIG, "spool_dir", "%s holds more than %u segments", dir,
                                  SCAN_MAX);
                goto out;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                uint64_t *nn = realloc(nums, nc * sizeof *nums);
                if (!nn) {
                    rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
                    goto out;
                }
                nums = nn;
                cap = nc;
            }
            nums[n++] = no;
        }
        errno = 0;
    }
    if (errno != 0) {
        rc = op_error_set(err, -errno, "spool_dir", "cannot read spool directory %s: %s", dir,
                          strerror(errno));
        goto out;
    }
    if (removed && fsync(dfd) != 0) {
        rc = op_error_set(err, -errno, "spool_dir", "cannot sync %s: %s", dir, strerror(errno));
        goto out;
    }
    if (n > 0)
        qsort(nums, n, sizeof *nums, cmp_u64);
    for (size_t i = 0; i < n; i++) {
        char name[SEGMENT_NAME_LEN], path[4096];
        (void)segment_file_name(nums[i], name);
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
            rc = op_error_set(err, -ENAMETOOLONG, "spool_dir", "spool path is too long");
            goto out;
        }
        if (cb) {
            rc = cb(ctx, nums[i], path);
            if (rc != 0)
                goto out;
        }
    }
    rc = (int)n;
out:
    free(nums);
    closedir(d);
    return rc;
}
