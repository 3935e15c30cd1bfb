/*
 * The MACs of the sync protocol's answers from HQ to a node: receipts and
 * mailbox messages (texts fixed in docs/SYNC_PROTOCOL.md). Both sides call
 * these, so the node and HQ cannot disagree on a byte of the text.
 *
 * Invariant: a MAC is HMAC-SHA-256 under the node's 32-byte hq_key over a
 * text that starts with its own version tag ("outpost-receipt-v1",
 * "outpost-mailbox-v1"), so a receipt MAC can never pass as a mailbox MAC;
 * MACs are compared only with sync_mac_equal (constant time).
 */
#ifndef OUTPOST_SYNC_MAC_H
#define OUTPOST_SYNC_MAC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SYNC_MAC_KEY_BYTES 32
/* 64 lower-case hex digits and a NUL */
#define SYNC_MAC_HEX 65

/* HMAC-SHA-256 under key of
 * "outpost-receipt-v1\n{node}\n{segment}\n{status}\n{to_urgent}\n{to_ordinary}"
 * (numbers in decimal) as lower-case hex in out. Returns 0; -EINVAL when
 * node or status is NULL or holds a newline; -EIO if the MAC fails. */
int sync_receipt_mac(const unsigned char key[SYNC_MAC_KEY_BYTES], const char *node,
                     uint64_t segment, const char *status, uint64_t to_urgent, uint64_t to_ordinary,
                     char out[SYNC_MAC_HEX]);

/* HMAC-SHA-256 under key of the receipt's members that serve field-level
 * deltas (docs/SYNC_PROTOCOL.md, "Receipts"), member "extras_mac":
 * "outpost-receipt-extras-v1\n{node}\n{segment}\n{patch}\n{n}" and, for
 * each of the n entries of needs_whole in order, "\n{entity}\n{id}"
 * (patch 1 or 0; needs_whole NULL or an empty array: n = 0). Returns 0;
 * -EINVAL when node is NULL or holds a newline, needs_whole is neither
 * NULL nor an array, or an entry is not [entity, id] of two strings
 * without a newline; -EIO if the MAC fails. */
int sync_receipt_extras_mac(const unsigned char key[SYNC_MAC_KEY_BYTES], const char *node,
                            uint64_t segment, int patch, const json_t *needs_whole,
                            char out[SYNC_MAC_HEX]);

/* HMAC-SHA-256 under key of "outpost-mailbox-v1\n{node}\n{seq}\n{kind}\n{body}"
 * (body: body_len bytes as they are, NULs included) as lower-case hex in
 * out. Returns 0; -EINVAL when node or kind is NULL or holds a newline, or
 * body is NULL with body_len > 0; -EIO if the MAC fails. */
int sync_mailbox_mac(const unsigned char key[SYNC_MAC_KEY_BYTES], const char *node, uint64_t seq,
                     const char *kind, const char *body, size_t body_len, char out[SYNC_MAC_HEX]);

/* 1 if a_hex and b_hex are the same 64 hex digits (case-insensitive),
 * compared in constant time; 0 otherwise, and for NULL or a string that is
 * not 64 hex digits. */
int sync_mac_equal(const char *a_hex, const char *b_hex);

#endif
