/*
 * Data-subject rights for one contact: export everything the node holds
 * about the person (the contact, its organization links and those
 * organizations, deals, activities, tasks, notes, consents with their
 * evidence, and the audit rows about all of these), and erase it.
 *
 * Erasure invariant: in one transaction the contact and every record that
 * is about the person (organization links, activities, tasks, notes,
 * consents) are purged with store_purge (personal fields blanked,
 * tombstoned, audited as "erase"), the contact's e-mail address and phone
 * number go on the suppression list as keyed hashes, and one row per purged
 * record goes into `erasures`, which the sync outbox sends before ordinary
 * changes. Nothing else of the person is kept. Afterwards the search index
 * is compacted and the WAL checkpointed so the old values are not left in
 * the database files (docs/SUBJECT_RIGHTS.md).
 */
#ifndef OUTPOST_SUBJECT_H
#define OUTPOST_SUBJECT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "op_error.h"
#include "store.h"

#define SUBJECT_EXPORT_FORMAT "outpost-subject-export/1"
/* Records gathered for one export or erasure, all entities together. */
#define SUBJECT_MAX_RECORDS 200000
#define SUBJECT_REASON_MAX 500

/* Everything held about the contact, as one JSON object (see
 * docs/SUBJECT_RIGHTS.md for its shape); *out is a new reference. A
 * tombstoned contact is exported too (what is left of it). -ENOENT if
 * there is no such contact, -E2BIG past SUBJECT_MAX_RECORDS. now_ms stamps
 * "exported_at". */
int subject_export(struct store *s, const char *contact_id, uint64_t now_ms, json_t **out,
                   struct op_error *err);

/* Writes an export as CSV with the header entity,id,field,value: one row
 * per field that holds a value (objects such as evidence as compact
 * JSON), records in the order of the JSON export, audit rows as entity
 * "audit_log" with the sequence number as id. */
int subject_write_csv(json_t *export_doc, FILE *out, struct op_error *err);

struct subject_erase_report {
    uint64_t records;       /* purged, the contact included */
    uint64_t by_entity[16]; /* index as in subject_entities */
    unsigned suppressed;    /* addresses put on the suppression list */
};

/* The entities an erasure touches, in the order they are purged. */
extern const struct entity_def *const subject_entities[];

/* Erases the contact as described above. `reason` (may be NULL; at most
 * SUBJECT_REASON_MAX bytes) is kept in the audit log and `erasures`: it
 * must not itself hold personal data. -ENOENT if there is no such contact
 * (an already erased contact can be erased again: it finds nothing left
 * and records nothing new). On failure nothing was changed. */
int subject_erase(struct store *s, const char *contact_id, const char *reason, uint64_t now_ms,
                  struct subject_erase_report *report, struct op_error *err);

#endif
