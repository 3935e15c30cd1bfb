/*
 * HQ analysts' HTTP reading of aggregates (docs/HQ.md, "Analysts";
 * docs/AGGREGATES.md, "At HQ"): GET /api/v1/aggregates lists the
 * aggregates some region answered or refused, each with its regions'
 * status, and GET /api/v1/aggregates/NAME?format=json|csv gives the same
 * combined table as `outpost-hq aggregate NAME` (hq_aggregate.c).
 *
 * The invariants: only an analyst's token (outpost-hq analyst add, kept as
 * its SHA-256 in the store) reads here; a node's token gets 403 and an
 * unknown or revoked one 401, each as problem+json, before anything is
 * read. Nothing here writes records or uploads: the one write is the
 * analyst's last use. An analyst's token never opens /files or /v1 (the
 * receiver looks only at nodes there). The table is hq_aggregate's, so
 * a suppressed cell is never filled in by combining.
 */
#ifndef OUTPOST_HQ_ANALYST_HTTP_H
#define OUTPOST_HQ_ANALYST_HTTP_H

#include <stdint.h>

#include "hq_store.h"
#include "http_server.h"

/* The path prefix this module answers. */
#define HQ_ANALYST_HTTP_PREFIX "/api/v1/aggregates"

/* Answers x when its path is HQ_ANALYST_HTTP_PREFIX or under it and
 * returns 1; returns 0 (x untouched) for any other path. now_ms dates the
 * combined table and the ages of the answers. */
int hq_analyst_http_handle(const struct hq_store *st, struct http_exchange *x, int64_t now_ms);

#endif
