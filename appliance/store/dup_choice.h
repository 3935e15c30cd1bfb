/*
 * What happens to a record that is a probable duplicate of a live contact
 * (docs/DATA_MODEL.md, "Duplicate detection"): the choice `outpost import
 * --on-duplicate` and the API's bulk create (`on_duplicate=`, docs/API.md)
 * share, decided and applied here once so that both input paths give the
 * same answer for the same record. The record is left out (skip), updates
 * the existing contact from its non-null fields at an expected version
 * (update), is created all the same (new), or stays refused (refuse).
 *
 * Invariants: the existing record changes only under DUP_CHOICE_UPDATE and
 * only at the expected version (one that moved on is a conflict and is
 * left as it was); every write goes through store_create or store_update,
 * so validation, a field user's rules, residency and the outbox apply as
 * for any other write.
 */
#ifndef OUTPOST_DUP_CHOICE_H
#define OUTPOST_DUP_CHOICE_H

#include <jansson.h>
#include <stdint.h>

#include "entity.h"
#include "op_error.h"
#include "store.h"

enum dup_choice {
    DUP_CHOICE_REFUSE = 0, /* the duplicate is not written */
    DUP_CHOICE_SKIP,       /* the duplicate is left out; the existing record is unchanged */
    DUP_CHOICE_UPDATE,     /* the existing record takes the duplicate's non-null fields */
    DUP_CHOICE_NEW,        /* the duplicate is created as a new record all the same */
};

/* What was done with one record. */
enum dup_action {
    DUP_ACTION_CREATED = 0, /* not a duplicate: created */
    DUP_ACTION_SKIPPED,     /* a duplicate, left out */
    DUP_ACTION_UPDATED,     /* a duplicate that updated the existing record */
    DUP_ACTION_NEW,         /* a duplicate created as new */
    DUP_ACTION_CONFLICT,    /* a duplicate not updated: the existing record is at another
                               version than the one expected */
    DUP_ACTION_REFUSED,     /* a duplicate refused (DUP_CHOICE_REFUSE, or an update of a record
                               the viewer may not see) */
};

struct dup_outcome {
    enum dup_action action;
    /* The matched record ("" when there is none or the viewer may not see
     * it); for DUP_ACTION_CREATED the contact its warning names, if any. */
    char existing_id[64];
    /* The rule that matched ("same e-mail address", "similar name at the
     * same street"), or a created record's warning; "" for none. */
    char reason[200];
    /* DUP_ACTION_CONFLICT: the store's message about the versions. */
    char detail[200];
};

/* Parses "refuse", "skip", "update" or "new"; -EINVAL for anything else. */
int dup_choice_parse(const char *text, enum dup_choice *out);

/* "refuse", "skip", "update", "new". */
const char *dup_choice_name(enum dup_choice c);

/* After store_create refused `fields` as a probable duplicate (dup: that
 * STORE_EDUP error, with its ref and message), applies `choice`. An
 * update writes the non-null fields of `fields` but its id and the
 * record metadata (version, created_at, updated_at, deleted) into the
 * existing record, expecting `version` (0: the version it has now). A
 * duplicate the viewer may not see (dup->ref "") is skipped, created as
 * new, or refused (refuse and update). Returns 0 with *o filled and *out
 * (optional) the record written (NULL when none was), or a negative code
 * of the store (a value the update or create refused) with err filled.
 * DUP_CHOICE_REFUSE returns 0 with DUP_ACTION_REFUSED. */
int dup_choice_resolve(struct store *s, const struct entity_def *e, json_t *fields,
                       enum dup_choice choice, int64_t version, const struct op_error *dup,
                       struct dup_outcome *o, json_t **out, struct op_error *err);

/* store_create(s, e, fields, flags) and, when it refuses the record as a
 * probable duplicate, dup_choice_resolve with `choice` and `version`. A
 * created record's warning (store_warning) goes into o->reason. Returns
 * as dup_choice_resolve. */
int dup_choice_create(struct store *s, const struct entity_def *e, json_t *fields, unsigned flags,
                      enum dup_choice choice, int64_t version, struct dup_outcome *o, json_t **out,
                      struct op_error *err);

#endif
