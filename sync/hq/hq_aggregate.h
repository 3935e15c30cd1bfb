/*
 * Aggregates at HQ (docs/AGGREGATES.md, docs/HQ.md): the latest answer of
 * one aggregate from every node, combined into one table. Each node's
 * answer arrives in a segment, checked against the node's policy by
 * hq_apply and kept as the node's record of entity "aggregate". The
 * invariant: combining never fills in a suppressed cell. A cell of the
 * combined table is the sum over regions only where every region's cell
 * is shown; where any region suppressed it, the combined cell is
 * suppressed too and names the regions. Rates and sums are not combined.
 */
#ifndef OUTPOST_HQ_AGGREGATE_H
#define OUTPOST_HQ_AGGREGATE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "hq_store.h"
#include "op_error.h"

/* An answer older than this is marked stale (its age is shown). */
#define HQ_AGGREGATE_MAX_AGE_MS (7 * 24 * 3600 * INT64_C(1000))

/* Combines the latest answer of aggregate `name` from every node of st at
 * now_ms: *out (the caller owns it) is
 *   {"aggregate", "generated_at", "max_age_s",
 *    "regions": [{"node", "region", "status": answered|stale|refused|no_answer,
 *                 "computed_at", "age_s", "params", "reason"}],
 *    "rows_label", "cols_label", "value", "cols",
 *    "rows": [{"region", "node", "key", "cells", "total"}],   (per region)
 *    "combined": [{"key", "cells"}]}                          (over regions)
 * Returns 0, -ENOENT when no node answered or refused it (err says so), or
 * a store error. max_age_ms 0: HQ_AGGREGATE_MAX_AGE_MS. */
int hq_aggregate_combine(struct hq_store *st, const char *name, int64_t now_ms, int64_t max_age_ms,
                         json_t **out, struct op_error *err);

/* Writes a combined table as CSV, one line per cell:
 * scope,region,node,status,age_s,row,col,n,mark,rate,sum (scope "region"
 * or "combined"; a suppressed cell has n empty and mark primary,
 * secondary or suppressed). Returns 0 or -EIO. */
int hq_aggregate_csv(const json_t *combined, FILE *out);

/* Writes one CSV field to F: as it is, or quoted when it holds a comma,
 * quote or line break (quotes doubled); NULL is the empty field. */
void hq_aggregate_csv_field(FILE *f, const char *s);

#endif
