/*
 * Aggregates: the shipped, named, parameterized statistics HQ may pull
 * from a node (docs/AGGREGATES.md), and the disclosure control applied to
 * them before anything leaves. A definition is a query in
 * sql/aggregate.sql run by name; HQ chooses a name and parameter values
 * from a fixed grid, never SQL.
 *
 * Invariant: an answer (the JSON aggregate_answer returns) holds no value
 * of any record field but the dimension labels, and no count below the
 * region's min_cell_size that could be read or recovered from the totals:
 * small cells are suppressed, complementary cells are suppressed so that
 * no row, column or total line has exactly one unknown, rates and sums
 * are shown only where their base is. The same name, parameters and
 * policy always give the same answer (kept in aggregate_answers). With
 * aggregates.noise in the policy, every answer carries calibrated noise
 * and a new one is kept only if the period's privacy budget pays for it.
 */
#ifndef OUTPOST_AGGREGATE_H
#define OUTPOST_AGGREGATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "op_error.h"
#include "policy.h"
#include "store.h"

/* What a table's second figure means. */
enum aggregate_value {
    AGGREGATE_COUNT, /* counts only */
    AGGREGATE_RATE,  /* x of n: a share (consent granted, deal won, field filled) */
    AGGREGATE_SUM,   /* x: a sum over the n records (pipeline value) */
};

/* How a cell stands after aggregate_protect. */
enum aggregate_mark {
    AGGREGATE_SHOWN = 0,
    AGGREGATE_PRIMARY = 1,   /* below the minimum cell size */
    AGGREGATE_SECONDARY = 2, /* hidden so that a primary one cannot be recovered */
};

/* Upper bounds on one table, checked before allocating. */
#define AGGREGATE_MAX_CELLS 100000
#define AGGREGATE_MAX_KEY 128

/* How an answer is written wherever it is kept, shown or sent: compact,
 * rates with 6 significant digits (they have 4 decimals), so the bytes
 * are the same everywhere. */
#define AGGREGATE_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))

/* The shipped aggregates, NULL-terminated. */
extern const char *const aggregate_names[];

/* A table of cells (rows x cols) with row, column and grand totals. Cell
 * (i, j) with i == nrows is a column total, j == ncols a row total. */
struct aggregate_table;

/* A table with the given labels (copied; each at most AGGREGATE_MAX_KEY
 * bytes) and all cells zero. -E2BIG past AGGREGATE_MAX_CELLS, -EINVAL for
 * a label too long, -ENOMEM. */
int aggregate_table_new(const char *const *rows, size_t nrows, const char *const *cols,
                        size_t ncols, struct aggregate_table **out, struct op_error *err);
void aggregate_table_free(struct aggregate_table *t);

/* Adds n records (and x, the numerator or the summed value) to cell
 * (i, j), i < nrows, j < ncols. Totals are computed by aggregate_protect. */
void aggregate_table_add(struct aggregate_table *t, size_t i, size_t j, int64_t n, int64_t x);

/* Computes the totals and applies disclosure control with minimum cell
 * size k (>= 2): primary suppression of 0 < n < k (cells and totals),
 * complementary suppression until no line has exactly one unknown, and
 * for rates and sums the same on the second figure (a rate is hidden when
 * its base is hidden or when x or n - x is between 0 and k). */
void aggregate_protect(struct aggregate_table *t, enum aggregate_value v, unsigned k);

/* After aggregate_protect: the count and its mark, and the second figure's
 * mark (AGGREGATE_SHOWN when the rate or sum is shown). */
int64_t aggregate_table_n(const struct aggregate_table *t, size_t i, size_t j);
enum aggregate_mark aggregate_table_mark(const struct aggregate_table *t, size_t i, size_t j);
enum aggregate_mark aggregate_table_xmark(const struct aggregate_table *t, size_t i, size_t j);

/* The protected table as the answer's "cols", "rows", "col_totals" and
 * "total" members, added to obj. Suppressed values are null, never the
 * number. -ENOMEM. */
int aggregate_table_json(const struct aggregate_table *t, enum aggregate_value v, json_t *obj);

/* Whether policy p lets `name` leave: 0, or -ENOENT (no such aggregate),
 * -EPERM (no policy, not in aggregates.queries, or a field it uses is
 * local_only here) with err saying which and why. */
int aggregate_allowed(const struct policy *p, const char *name, struct op_error *err);

/* Computes (or replays) aggregate `name` with parameters params[0..n-1],
 * each "key=value", at now_ms (Unix ms; tests inject it), under policy p.
 * On success *out is the answer (the caller owns it) and the answer is
 * kept in aggregate_answers, so the same name, parameters and policy give
 * the same answer again. Errors: those of aggregate_allowed; -EINVAL for
 * an unknown, repeated or off-grid parameter (err names it and the grid);
 * -E2BIG for more categories than a table holds; SQLite errors as errno.
 * The store must not be inside a store_begin transaction. */
int aggregate_answer(struct store *s, const struct policy *p, const char *name,
                     const char *const *params, size_t nparams, uint64_t now_ms, json_t **out,
                     struct op_error *err);

/* aggregate_answer in two steps, so that the computation can run on a
 * read-only connection and only the keeping needs the writer:
 * aggregate_compute checks, then gives the kept answer (*kept = 1) or
 * computes a new one (*kept = 0), writing nothing; with noise it refuses
 * with -EDQUOT (err naming the budget, what is used and when it renews)
 * when the period's budget cannot pay for one more answer. */
int aggregate_compute(struct store *s, const struct policy *p, const char *name,
                      const char *const *params, size_t nparams, uint64_t now_ms, json_t **out,
                      int *kept, struct op_error *err);

/* Keeps a new answer from aggregate_compute under p and, with noise,
 * spends its epsilon from the period's budget in the same transaction
 * (-EDQUOT and nothing kept when that would overspend). If an answer for
 * the same key was kept first, *answer is replaced by that one and
 * nothing is spent. -EAGAIN when p is not the policy the answer was
 * computed under. Not inside a store_begin transaction. */
int aggregate_keep(struct store *s, const struct policy *p, json_t **answer, uint64_t now_ms,
                   struct op_error *err);

/* The privacy budget of the period now_ms falls in (docs/AGGREGATES.md,
 * "Calibrated noise"). */
struct aggregate_budget_state {
    int on;                 /* the policy sets aggregates.noise */
    char period[24];        /* "2026-12", "2026-Q4", "2026" */
    int64_t spent_micro;    /* epsilon spent in it, millionths */
    uint32_t epsilon_micro; /* one answer's */
    uint32_t budget_micro;  /* the period's */
};
int aggregate_budget(struct store *s, const struct policy *p, uint64_t now_ms,
                     struct aggregate_budget_state *out, struct op_error *err);

/* One draw of the noise added to a figure: two-sided geometric with
 * alpha = e^(-epsilon / sensitivity), epsilon in millionths. 0 or -EIO
 * (no random bytes). */
int aggregate_noise_draw(uint32_t epsilon_micro, unsigned sensitivity, int64_t *out);

/* For tests only: draws come from a deterministic generator seeded with
 * *seed instead of getrandom(2); NULL goes back to getrandom. */
void aggregate_noise_seed(const uint64_t *seed);

/* For tests only: with on != 0, aggregate_answer computes every aggregate
 * with the plain queries of sql/aggregate.sql (what each definition
 * means) instead of the streams of the fast path, so the two can be
 * compared on the same data. Not thread-safe; off by default. */
void aggregate_reference(int on);

/* Records in the egress ledger (aggregate_egress) that `answer` (from
 * aggregate_answer) left or is about to leave: via "api" or "segment",
 * requester the hq user or the mailbox message, segment_no the segment
 * that carries it (-1: none). In the caller's transaction if it has one.
 * Returns 0 or a negative errno with err filled. */
int aggregate_record_egress(struct store *s, const char *via, const char *requester,
                            int64_t segment_no, const json_t *answer, uint64_t now_ms,
                            struct op_error *err);

/* Whether a standing aggregate is due at now_ms under p: no answer for
 * its current grid point (the parameters a request without any would
 * get: this month, the last ended quarter or year) has left in a segment
 * under p. Sets *due (0 or 1) and returns 0, or a negative errno with err
 * filled. */
int aggregate_standing_due(struct store *s, const struct policy *p, const char *name,
                           uint64_t now_ms, int *due, struct op_error *err);

/* One row of the egress ledger, borrowed for the callback's duration. */
struct aggregate_egress_row {
    int64_t seq, sent_ms, segment_no; /* segment_no -1: none */
    const char *via, *requester, *name, *params, *policy_hash, *body;
};

/* Calls fn for the newest `limit` rows of the ledger, newest first; fn
 * returns 0 to go on. Returns 0 or a negative errno with err filled. */
int aggregate_egress_each(struct store *s, unsigned limit,
                          int (*fn)(const struct aggregate_egress_row *r, void *ctx), void *ctx,
                          struct op_error *err);

#endif
