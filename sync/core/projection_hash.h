/*
 * The projection hash: one SHA-256 that says what HQ holds (or should
 * hold) of one record, the same on both sides. The node hashes the
 * projection egress would send now; HQ hashes the record text it stored.
 * Anti-entropy (docs/SYNC_PROTOCOL.md, "Anti-entropy") compares these.
 *
 * SHA-256 over: entity name, '\n', state name ("live", "deleted",
 * "gone"), '\n', then for LIVE and DELETED the record object as jansson
 * dumps it with JSON_COMPACT | JSON_SORT_KEYS after removing its
 * "version" member (HQ does not need a version it cannot see); for GONE
 * (erase, purge, withdraw: a tombstone) the id alone.
 */
#ifndef OUTPOST_PROJECTION_HASH_H
#define OUTPOST_PROJECTION_HASH_H

#include <jansson.h>

#define PROJECTION_HASH_BYTES 32

enum projection_state { PROJECTION_LIVE = 0, PROJECTION_DELETED, PROJECTION_GONE };

/* Writes the hash of one record to out. `record` (borrowed, not modified)
 * may be NULL for GONE (then `id` is used; with a record, its "id" when
 * `id` is NULL). Returns 0; -EINVAL for an unknown state, a missing
 * entity, a LIVE/DELETED record that is not an object, or a GONE without
 * an id; -ENOMEM; -EIO when the digest fails. */
int projection_hash(const char *entity, enum projection_state state, const char *id,
                    const json_t *record, unsigned char out[PROJECTION_HASH_BYTES]);

/* "live", "deleted", "gone"; "" outside the enum. */
const char *projection_state_name(enum projection_state s);

#endif
