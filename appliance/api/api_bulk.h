/*
 * Bulk create of contacts over the API (docs/API.md, "Bulk create"):
 * POST /api/v1/contacts/bulk with a JSON array of records, and for the
 * probable duplicates among them the choice the import offers
 * (on_duplicate=refuse|skip|update|new, dup_choice.h), optionally as a dry
 * run. The answer says per item what was done (created, updated, skipped,
 * refused, conflict) with the matched record and the rule, and sums it up.
 *
 * Invariants: bad input changes nothing: one bad item (a value the store
 * refuses, a field user's rule) and the whole request is answered 422 (or
 * 403, 409 as a single create would be) listing every bad item by index
 * and field, with nothing written; duplicates are decisions, not bad
 * input. A dry run answers the same and writes nothing. Every record goes
 * through the store as a single create does (validation, a field user's
 * rules, residency, the outbox), inside the writer's batch under one
 * savepoint, and is acknowledged only after its commit. A keyed request
 * (Idempotency-Key) stores its answer with the key in the same savepoint
 * and a replay answers it again without writing.
 */
#ifndef OUTPOST_API_BULK_H
#define OUTPOST_API_BULK_H

#include "api_db.h"
#include "api_request.h"
#include "auth.h"

#define API_BULK_MAX_ITEMS 1000 /* records in one request (the body is capped at 1 MiB too) */
#define API_BULK_MAX_ERRORS 20  /* bad items listed in one answer */

/* POST /api/v1/contacts/bulk[?on_duplicate=...][&dry_run=true]: 200 with
 * {"dry_run", "on_duplicate", "summary", "items"}; 400 for an unknown or
 * malformed parameter, a body that is not a JSON array; 413 for more than
 * API_BULK_MAX_ITEMS records; 422 (403, 409) for bad items, nothing
 * written. */
void api_bulk_create(struct api_db *db, struct api_call *c, const struct auth_user *u);

#endif
