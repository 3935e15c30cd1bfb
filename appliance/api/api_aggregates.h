/*
 * The aggregate handler of the API: `GET /api/v1/aggregates/NAME?KEY=VALUE`
 * for a caller with the hq role, the direct way for HQ to pull a
 * permitted aggregate over the LAN or VPN (docs/AGGREGATES.md). What is
 * computed and what may leave is aggregate.c's decision under the policy
 * in force; this maps requests onto it and its refusals onto statuses.
 * The invariant: an answer is recorded in the aggregate egress ledger
 * before its bytes are handed to the network, and not sent if it cannot
 * be recorded.
 */
#ifndef OUTPOST_API_AGGREGATES_H
#define OUTPOST_API_AGGREGATES_H

#include "api_db.h"
#include "api_request.h"
#include "auth.h"

/* GET /api/v1/aggregates/{name}[?as_of=|quarter=|year=]: 200 with the
 * answer; 403 for a role other than hq or when the policy refuses the
 * aggregate (the reason in detail), 404 for a name that is not shipped,
 * 400 for a parameter off the grid, 429 when the privacy budget of the
 * period is spent (aggregates.noise), 503 when the policy changed while it
 * was computed or every reader is busy (ask again), 500 when it cannot be
 * recorded. Computed on a read connection; the writer is held only to
 * keep the answer and record it. */
void api_aggregates_get(struct api_db *db, struct api_call *c, const struct auth_user *u);

#endif
