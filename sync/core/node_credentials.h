/*
 * A node's HQ credentials: its node id, region, bearer token and hq_key
 * (the key of segment trailers, receipts and mailbox MACs), as HQ issues
 * them at enrolment and the node reads them from its `hq_credentials`
 * file (format in docs/SYNC_PROTOCOL.md, "outpost-node-credentials-1").
 *
 * Invariants: a loaded struct is complete and valid (node id, region,
 * 32-byte token and key); a credentials file is only ever read if no one
 * but its owner can read it, and only ever written whole (temporary file,
 * fsync, link into place without replacing, fsync of the directory) with
 * mode 0600.
 */
#ifndef OUTPOST_NODE_CREDENTIALS_H
#define OUTPOST_NODE_CREDENTIALS_H

#include <stddef.h>

#include "op_error.h"

#define NODE_CREDENTIALS_FORMAT "outpost-node-credentials-1"
#define NODE_ID_MAX 64
/* a credentials file is a few hundred bytes; anything far larger is not one */
#define NODE_CREDENTIALS_MAX_BYTES (16 * 1024)

struct node_credentials {
    char node_id[65]; /* 1..64 of [A-Za-z0-9._:-] */
    char region[16];  /* a region code: A-Z, 0-9, '-' */
    char token[65];   /* 64 lower-case hex digits (32 random bytes) */
    unsigned char hq_key[32];
    char hq_url[2048]; /* "" if absent */
};

/* Reads and validates the credentials file at path. Returns 0 and *out;
 * -EPERM when the file is readable or writable by group or others;
 * -EINVAL for bad content (an unknown "format", a missing or mistyped
 * key, bad hex, a wrong length, a bad node id or region, unknown keys),
 * -EFBIG over NODE_CREDENTIALS_MAX_BYTES, or a negative errno for I/O.
 * err->field is the key ("" for the file as a whole) and err->msg reads
 * "FILE: KEY: problem". */
int node_credentials_load(const char *path, struct node_credentials *out, struct op_error *err);

/* Writes c to path as one JSON object and a newline: a temporary file in
 * the same directory (mode 0600), fsync, linked into place without
 * replacing anything, fsync of the directory. Returns 0; -EEXIST when path
 * exists; -EINVAL when c is not valid (err->field names the key); a
 * negative errno for I/O (nothing is left behind). */
int node_credentials_write(const char *path, const struct node_credentials *c,
                           struct op_error *err);

/* Fills *out for a new node: node_id, region, hq_url (NULL or "" for none)
 * and a random token and hq_key from the OS random source. Returns 0;
 * -EINVAL for a bad node id, region or an over-long URL (err->field names
 * it); -EIO when no random bytes can be had. */
int node_credentials_generate(const char *node_id, const char *region, const char *hq_url,
                              struct node_credentials *out, struct op_error *err);

/* 1 when s is 1..64 of [A-Za-z0-9._:-], else 0 (NULL too). */
int node_id_valid(const char *s);

#endif
