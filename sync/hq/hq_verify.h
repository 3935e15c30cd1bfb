/*
 * HQ's side of anti-entropy (docs/SYNC_PROTOCOL.md, "Anti-entropy"):
 * POST /v1/digest answers a node's level of range digests against what HQ
 * holds of that node (its records table, each record's text hashed with
 * projection_hash, and for a request of format 2 each tombstone hashed as
 * gone, as the node puts in the tombstones HQ acknowledged; format 1, an
 * older node, leaves tombstones out), and POST /v1/verify keeps the
 * node's report of the check that ended (HQ schema 5, `outpost-hq
 * nodes`).
 *
 * One check is several requests over a few seconds; HQ builds the node's
 * set once and keeps it (one node's at a time) while the node's applied
 * segments stay the same, for at most HQ_VERIFY_CACHE_MS: an apply in
 * between makes the next request build it again. Building a large node's
 * set takes a second or more of CPU, so hq_serve answers digests on the
 * apply pool (hq_workers.h, generic jobs: hq_verify_digest_new on the
 * loop, hq_verify_digest_run on a thread, hq_verify_digest_finish on the
 * loop again); the kept set is shared by the threads under a lock.
 *
 * The invariants: only the node's own records are read and only with its
 * token (the gate authenticates both paths); a digest request changes
 * nothing at HQ; every input is bounded (body size at the gate, ranges and
 * their members in range_answer, the report's members here) and a bad one
 * is answered 400 naming the member, with nothing stored.
 */
#ifndef OUTPOST_HQ_VERIFY_H
#define OUTPOST_HQ_VERIFY_H

#include <stdint.h>

#include "hq_store.h"
#include "http_server.h"
#include "op_error.h"
#include "range_digest.h"

/* The largest body either path takes (a full request of
 * RANGE_REQUEST_MAX ranges is about 60 KB). */
#define HQ_VERIFY_BODY_MAX (96u * 1024u)

#define HQ_VERIFY_CACHE_MS 60000

/* 1 for the paths this module answers. */
int hq_verify_path(const char *path);

/* HQ's sealed range set of node's records, with its tombstones (hashed
 * as gone) when tombstones is non-zero. 0, -ENOMEM, or the store's
 * error; a stored record whose text is not a JSON object goes in with the
 * hash of its text as it is, so it differs from anything the node holds
 * and is sent again. */
int hq_verify_set(const struct hq_store *st, const char *node, int tombstones,
                  struct range_set **out, struct op_error *err);

/* HQ's answer to one digest request of node n (range_answer's), from
 * the kept set when it is still the node's (above) or a new one. 0;
 * -EINVAL for a bad request (err names the member, nothing read), or the
 * store's error. */
int hq_verify_answer(const struct hq_store *st, const struct hq_node *n, int64_t now_ms,
                     const char *body, size_t len, char **answer, struct op_error *err);

/* The digest route off the loop. hq_verify_digest_new copies what the
 * answer needs from x (its body, the gate's node, the time); NULL when
 * out of memory. hq_verify_digest_run (an hq_job_run_fn, on a pool
 * thread with its store) computes the answer with hq_verify_answer.
 * hq_verify_digest_finish (on the loop) answers x as hq_verify_handle
 * would (200, 400 naming the member, 503 with Retry-After), or 503 when
 * the job was abandoned (rc -ECANCELED: HQ is stopping), and frees d. */
struct hq_verify_digest;
struct hq_verify_digest *hq_verify_digest_new(struct http_exchange *x, const struct hq_node *n,
                                              int64_t now_ms);
int hq_verify_digest_run(struct hq_store *st, void *arg);
void hq_verify_digest_finish(struct hq_verify_digest *d, struct http_exchange *x, int rc);
void hq_verify_digest_free(struct hq_verify_digest *d);

/* 1 for a POST /v1/digest (the request a pool answers). */
int hq_verify_is_digest(struct http_exchange *x);

/* Drops the kept set (tests, shutdown). */
void hq_verify_forget(void);

/* Answers x (a path hq_verify_path accepts, authenticated as node n):
 * POST only (405 otherwise). */
void hq_verify_handle(const struct hq_store *st, struct http_exchange *x, const struct hq_node *n,
                      int64_t now_ms);

#endif
