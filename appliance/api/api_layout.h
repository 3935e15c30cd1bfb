/*
 * GET /api/v1/layout: the form of each record kind as the node's region
 * policy shapes it for the caller (docs/WEB_APP.md, "Region shaping"), so
 * that a client draws only what the region allows: built-in and custom
 * fields with their validation and local labels, forbidden fields left
 * out, a mark on fields that never leave the office, the address format
 * and the consent regime per channel.
 *
 * Invariant: a field the policy forbids is never in the answer; the
 * answer is built from one policy throughout (api_db_policy_hold).
 */
#ifndef OUTPOST_API_LAYOUT_H
#define OUTPOST_API_LAYOUT_H

#include "api_db.h"
#include "api_request.h"

/* Answers c with the layout (200), or 503 when no policy is loaded. */
void api_layout_get(struct api_db *db, struct api_call *c);

#endif
