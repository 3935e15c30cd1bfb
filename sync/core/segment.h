/*
 * Segments: the immutable, signed files in which a node's projected
 * records travel to HQ (format byte by byte in docs/SEGMENT_FORMAT.md).
 * A writer streams egress records through deflate into a spool file and
 * publishes it atomically (temporary file, fsync, rename, fsync of the
 * directory); a reader verifies lengths, caps, the SHA-256 of the payload
 * and the HMAC under the node's HQ key before it yields a single record,
 * then inflates record by record with bounded memory.
 *
 * Invariants: record data enters a segment only as
 * `const struct egress_record *` (this module never sees the store);
 * a file named NNNNNNNNNNNNNNNN.seg in a spool is complete and durable;
 * neither side ever holds a payload in memory, and every size read from a
 * file is checked against a cap before it is used.
 */
#ifndef OUTPOST_SEGMENT_H
#define OUTPOST_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "egress.h"
#include "op_error.h"
#include "policy.h"

#define SEGMENT_MAGIC "OUTPOSTSEG" /* with its NUL: 11 bytes */
#define SEGMENT_MAGIC_LEN 11
#define SEGMENT_VERSION 2
/* magic, u16 version, u32 header length */
#define SEGMENT_PREFIX_LEN 17
#define SEGMENT_HEADER_MAX (64u * 1024u)
#define SEGMENT_MAC_LEN 32
#define SEGMENT_KEY_BYTES 32
#define SEGMENT_NODE_ID_MAX 64
/* segment numbers are 16 decimal digits in file names */
#define SEGMENT_NO_MAX 9999999999999999ull
/* "0000000000000042.seg" with NUL */
#define SEGMENT_NAME_LEN 21
/* one payload line: {"entity":"NAME","op":"OP","record":{...}}\n */
#define SEGMENT_LINE_MAX (1024u * 1024u)
#define SEGMENT_ENTITY_MAX 32
/* about a minute at 64 kbit/s */
#define SEGMENT_TARGET_BYTES 480000u
/* reader defaults (segment_limits with zeros) */
#define SEGMENT_PAYLOAD_MAX_DEFAULT (32ull * 1024 * 1024)
#define SEGMENT_RAW_MAX_DEFAULT (256ull * 1024 * 1024)

/* A segment's header. The writer takes node_id, from_urgent,
 * from_ordinary, schema_version, policy_hash and created_ms (0: now) from
 * the caller and fills the rest; the reader fills all of it from the file. */
struct segment_info {
    char node_id[SEGMENT_NODE_ID_MAX + 1]; /* 1..64 of [A-Za-z0-9._:-] */
    uint64_t segment_no;
    /* the outbox cursor (both lanes) before the segment and after it:
     * the segment holds the changes in (from_x, to_x]; from_x <= to_x */
    uint64_t from_urgent, from_ordinary;
    uint64_t to_urgent, to_ordinary;
    uint32_t schema_version;
    char policy_hash[POLICY_HASH_HEX]; /* 64 lower-case hex digits */
    uint64_t records;                  /* lines in the payload */
    struct egress_counts counts;       /* what egress_project did over the range */
    int64_t created_ms;                /* Unix time in milliseconds */
    uint64_t payload_bytes;            /* compressed */
    uint64_t payload_raw_bytes;        /* uncompressed */
    char payload_sha256[65];           /* of the compressed payload, hex */
};

/* Reader caps; a zero field takes the default above. */
struct segment_limits {
    uint64_t payload_max; /* compressed payload bytes */
    uint64_t raw_max;     /* uncompressed payload bytes (zip bombs) */
};

struct segment_writer;
struct segment;

/* Writes the file name of segment `no` ("%016llu.seg") to out. Returns 0
 * or -ERANGE when no > SEGMENT_NO_MAX. */
int segment_file_name(uint64_t no, char out[SEGMENT_NAME_LEN]);

/* Starts segment `segment_no` in spool_dir: creates
 * spool_dir/NNNNNNNNNNNNNNNN.seg.tmp (mode 0600, O_EXCL). hdr and hq_key
 * are copied. Returns 0 and *out; -EINVAL for a bad header field (err
 * names it), -ERANGE for a number over its cap, -EEXIST when the .tmp
 * exists (another writer, or a crash: segment_spool_scan removes it),
 * other negative errno for I/O, -ENOMEM. */
int segment_writer_new(const struct segment_info *hdr,
                       const unsigned char hq_key[SEGMENT_KEY_BYTES], const char *spool_dir,
                       uint64_t segment_no, struct segment_writer **out, struct op_error *err);

/* Appends one record (borrowed; the caller frees it) as a payload line
 * whose op is egress_record_op(r). Compresses as it goes; nothing of the
 * record is kept. Returns 0; -EINVAL when the
 * record's policy hash is not the header's or its JSON is not one line of
 * an object; -EFBIG when the line exceeds SEGMENT_LINE_MAX or the segment
 * would exceed the default reader caps; -EIO. After an error the writer
 * can only be aborted. */
int segment_writer_add(struct segment_writer *w, const struct egress_record *r,
                       struct op_error *err);

/* Compressed payload bytes produced so far (deflate may still hold a few
 * KiB), for closing a segment near SEGMENT_TARGET_BYTES. */
uint64_t segment_writer_compressed_bytes(const struct segment_writer *w);
/* The payload's compressed size if it were finished now: what deflate
 * produced, plus the input it still holds at the ratio seen so far (4:1
 * before its first output). For small segments, where what deflate holds
 * is most of the segment. */
uint64_t segment_writer_estimated_bytes(const struct segment_writer *w);

/* Records added so far. */
uint64_t segment_writer_records(const struct segment_writer *w);

/* Completes the segment: to_urgent and to_ordinary close the outbox range
 * (each at least the header's from_x, else -EINVAL with err->field
 * "to_urgent" or "to_ordinary"); counts are what egress_project counted
 * over it: counts->records_out must equal the projections added (records
 * whose op is UPSERT or DELETE). The writer adds the tombstones it was
 * given (ERASE, PURGE, WITHDRAW) to records and records_out itself, so the
 * header's counts.records_out always equals its records. A segment may
 * hold 0 records. Writes header, payload and HMAC trailer, fsyncs, renames
 * .seg.tmp to .seg (never over an existing segment: -EEXIST) and fsyncs the
 * directory. On success writes the path to out_path (if not NULL; cap
 * bytes) and the header to *info (if not NULL). Always frees w; on failure
 * the .tmp is removed. */
int segment_writer_finish(struct segment_writer *w, uint64_t to_urgent, uint64_t to_ordinary,
                          const struct egress_counts *counts, char *out_path, size_t cap,
                          struct segment_info *info, struct op_error *err);

/* Removes the .tmp and frees w. NULL is allowed. */
void segment_writer_abort(struct segment_writer *w);

/* Opens and verifies a segment: magic, version, header length cap, header
 * fields, payload caps (lim may be NULL), exact file length, SHA-256 of
 * the payload, HMAC-SHA-256 trailer (constant-time compare), in that
 * order. A path ending in ".tmp" is refused (an unfinished segment); a
 * path named NNNNNNNNNNNNNNNN.seg must hold that segment number. Returns
 * 0 and *out; -EBADMSG (corrupt, truncated, or not authentic),
 * -EFBIG (over a cap), -EPROTONOSUPPORT (a format version other than
 * SEGMENT_VERSION, version 1 included), or a
 * negative errno for I/O. err->field names the check ("magic", "version",
 * "header_len", "header", "header.NAME" such as
 * "header.to.urgent", "length", "payload_sha256",
 * "hmac", "path") and err->msg says at which byte. */
int segment_open(const char *path, const unsigned char hq_key[SEGMENT_KEY_BYTES],
                 const struct segment_limits *lim, struct segment **out, struct op_error *err);

/* Same on an open file (read with pread; fd is duplicated, the caller
 * keeps its own). */
int segment_open_fd(int fd, const unsigned char hq_key[SEGMENT_KEY_BYTES],
                    const struct segment_limits *lim, struct segment **out, struct op_error *err);

/* The verified header. Borrowed. */
const struct segment_info *segment_get_info(const struct segment *s);

/* The next record: sets *entity (the entity name), *op (its egress op
 * name, one egress_op_parse accepts), *json (the record, a compact JSON
 * object, NUL-terminated) and *len, all borrowed until the next call, and
 * returns 1; returns 0 at the end, once the stream, the
 * byte count and the record count have all matched the header. Returns
 * -EBADMSG for a malformed payload (field "payload" or "record", with the
 * record number and uncompressed byte offset), including more bytes than
 * the header declared (the zip-bomb stop); -EIO. After an error every
 * call returns the same error. */
int segment_next_record(struct segment *s, const char **entity, const char **op, const char **json,
                        size_t *len, struct op_error *err);

/* NULL is allowed. */
void segment_close(struct segment *s);

/* Called once per complete segment in number order; a non-zero return
 * stops the scan and is returned. path is borrowed for the call. */
typedef int (*segment_scan_fn)(void *ctx, uint64_t segment_no, const char *path);

/* Lists dir's complete segments (NNNNNNNNNNNNNNNN.seg) in number order and
 * deletes stray NNNNNNNNNNNNNNNN.seg.tmp files (unfinished writes); other
 * names are left alone. Call it when no writer is open on dir (at
 * startup). Returns the number of segments listed, the callback's
 * non-zero value, -E2BIG beyond 1,048,576 segments, or a negative errno. */
int segment_spool_scan(const char *dir, segment_scan_fn cb, void *ctx, struct op_error *err);

#endif
