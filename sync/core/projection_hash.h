/*
 * The projection hash: one SHA-256 naming what HQ holds (or would hold)
 * of one record, so the node can tell "HQ already has exactly this"
 * without keeping the values (docs/SYNC_PROTOCOL.md, "Projection
 * hashes"). Both sides compute it the same way: the node over what egress
 * lets leave, HQ over what it stored. The version and the updated_at time
 * are left out: HQ does not need a version it cannot see, nor the time of
 * it, so an edit of a withheld field leaves the hash as it was.
 *
 * Also the per-field digests a patch is cut against (docs/SEGMENT_FORMAT.md,
 * "Patches"): a short digest of each top-level member of a projection,
 * so the node knows which fields HQ's copy has without keeping them.
 */
#ifndef OUTPOST_PROJECTION_HASH_H
#define OUTPOST_PROJECTION_HASH_H

#include <jansson.h>

#define PROJECTION_HASH_BYTES 32

enum projection_state { PROJECTION_LIVE = 0, PROJECTION_DELETED, PROJECTION_GONE };

/* SHA-256 over: entity name, '\n', state name ("live"|"deleted"|"gone"),
 * '\n', then for LIVE and DELETED the record object as jansson dumps it
 * with JSON_COMPACT | JSON_SORT_KEYS after removing its "version" and
 * "updated_at" members (every edit changes both);
 * for GONE (erase, purge, withdraw: a tombstone) the id alone. `record`
 * may be NULL for GONE (then `id` is used). Returns 0, -EINVAL (no
 * entity, a LIVE/DELETED state without an object record, GONE without an
 * id), -ENOMEM or -EIO. */
int projection_hash(const char *entity, enum projection_state state, const char *id,
                    const json_t *record, unsigned char out[PROJECTION_HASH_BYTES]);

/* "live", "deleted", "gone"; "" outside the enum. */
const char *projection_state_name(enum projection_state s);

/* The digests of a projection's top-level members except "id" and
 * "version": an object {NAME: 16 lower-case hex digits} (the first 64
 * bits of SHA-256 over NAME, NUL, and the member's value dumped with
 * JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY). Returns a new object,
 * or NULL when record is not an object or memory runs out. */
json_t *projection_field_digests(const json_t *record);

#endif
