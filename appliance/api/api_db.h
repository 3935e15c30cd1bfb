/*
 * The API's database connections: one read-only store per worker thread,
 * and the single writer, each with its auth context; writes that arrive
 * together share one commit (group commit), and the region policy the
 * writer obeys is swapped under the writer's lock. The invariant: a
 * write counts as done only once the commit that holds it succeeded, and
 * its caller learns that result before it answers anyone.
 */
#ifndef OUTPOST_API_DB_H
#define OUTPOST_API_DB_H

#include "auth.h"
#include "op_error.h"
#include "policy.h"
#include "store.h"

#define API_DB_BATCH_MAX 64 /* writes sharing one commit, at most */

struct api_db;

/* A store with its auth context, used by one thread at a time. */
struct api_conn {
    struct store *store;
    struct auth *auth;
    int busy;
};

/* One write's place in a batch, between api_db_write_begin and
 * api_db_write_end: the writer and the policy in force are valid there
 * and only there. */
struct api_write {
    struct api_conn *conn;
    const struct policy *policy; /* NULL until a policy is set */
    int done;                    /* the batch ended (api_db's business) */
    int rc;                      /* the batch's commit result */
};

/* Opens the writer and `readers` read-only connections (0: 4) on path,
 * which must be an initialized node database (else -EINVAL, err saying
 * how to initialize it). The writer has no policy until
 * api_db_set_policy. Returns 0 or a negative errno with err filled. */
int api_db_open(const char *path, unsigned readers, struct api_db **out, struct op_error *err);

/* Closes every connection and frees the policy; no thread may be using
 * db. NULL is allowed. */
void api_db_close(struct api_db *db);

/* The node's region code, from the writer (for finding its policy). */
const char *api_db_region(const struct api_db *db);

/* A free read connection, marked busy, or NULL if all are busy (the
 * caller answers 503). Give it back with api_db_reader_release. */
struct api_conn *api_db_reader(struct api_db *db);

/* Gives back a connection from api_db_reader (its viewer restriction
 * cleared by the caller). */
void api_db_reader_release(struct api_db *db, struct api_conn *c);

/* Joins the open batch (or opens one) on the writer and sets the audit
 * actor, the client address (may be NULL) and the viewer restriction
 * (store_set_viewer; NULL for none). On success the caller holds the
 * writer until api_db_write_end, which it must call; on failure (the
 * batch transaction could not start) it holds nothing and err says why. */
int api_db_write_begin(struct api_db *db, const char *actor, const char *ip, const char *viewer,
                       struct api_write *w, struct op_error *err);

/* Ends this write's part of the batch: the last writer queued (or the
 * API_DB_BATCH_MAXth) commits for everyone. Waits for that commit and
 * returns its result (0 or a negative errno). */
int api_db_write_end(struct api_db *db, struct api_write *w);

/* The result of a store or auth call rc made inside a batch, given the
 * batch's commit_rc: a change only counts once its commit succeeded, so
 * a failed commit turns success into -ENOSPC ("the node's disk is full;
 * nothing was written") or the commit's error, with err filled. */
int api_db_committed(int rc, int commit_rc, struct op_error *err);

/* Holds the policy in force (the writer's lock) for a read that must see
 * one policy throughout, and returns it (NULL if none is set). Release
 * with api_db_policy_release; no write may begin in between. */
const struct policy *api_db_policy_hold(struct api_db *db);

/* Ends api_db_policy_hold; the policy pointer is not to be used after. */
void api_db_policy_release(struct api_db *db);

/* Takes the writer for work outside the API's batches (retention): waits
 * until no batch is open and returns the writer, with *policy the policy
 * in force. Release with api_db_exclusive_end soon: API writes wait. */
struct api_conn *api_db_exclusive(struct api_db *db, const struct policy **policy);

/* Gives the writer back after api_db_exclusive (audit actor reset by the
 * caller); waiting API writes go on. */
void api_db_exclusive_end(struct api_db *db);

/* Replaces the policy the writer obeys (ownership passes to db) under
 * the writer's lock, and frees the old one. */
void api_db_set_policy(struct api_db *db, struct policy *p);

/* The SHA-256 of the policy in force, "" if none. Loop thread only (the
 * thread that sets policies). */
const char *api_db_policy_hash(const struct api_db *db);

#endif
