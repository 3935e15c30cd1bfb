/*
 * Creates with an Idempotency-Key (docs/WEB_APP.md, "Exactly once"). A
 * client that captured a record away from the office sends its create
 * with a key it made, and sends it again when it never saw the answer
 * (the link dropped after the node committed). The first create stores
 * the key with the request's fingerprint (method, path, SHA-256 of the
 * body) and the answer (status, record id) in idempotency_keys, in the
 * transaction that creates the record; a replay of the same request
 * answers the record as it is now, with the first status and
 * Idempotency-Replayed: true, and creates nothing.
 *
 * Invariants: a key's row exists exactly when its record was created (one
 * savepoint holds both); a key is per user; the same key with another
 * request is refused (422, pointer none, detail naming the header), never
 * answered with the first request's record.
 */
#ifndef OUTPOST_API_IDEMPOTENCY_H
#define OUTPOST_API_IDEMPOTENCY_H

#include <jansson.h>

#include "api_db.h"
#include "api_request.h"
#include "auth.h"
#include "sql.h"

#define API_IDEMPOTENCY_KEY_MIN 8
#define API_IDEMPOTENCY_KEY_MAX 128
#define API_IDEMPOTENCY_KEEP_MS (7LL * 24 * 3600 * 1000) /* rows pruned after a week */

/* 0 when c's Idempotency-Key is 8 to 128 characters of A-Z a-z 0-9 _ -;
 * else answers c 400 naming the header and returns -EINVAL. */
int api_idempotency_key_check(struct api_call *c);

/* The request's fingerprint: SHA-256 of the body bytes, as hex. 0 or
 * -EIO. */
int api_idempotency_fingerprint(const struct api_request *r, char out[65]);

/* A key found in idempotency_keys. */
struct api_idempotency_earlier {
    int found;       /* the user sent this key before */
    int same;        /* with the same method, path and body */
    int status;      /* the first answer's status */
    char entity[32]; /* the record it created (single creates) */
    char id[64];
    char *answer; /* the first answer's body (bulk creates; malloc'd), or NULL */
};

/* Looks c's key up for `user` (on the writer, inside the batch, through
 * q bound with api_queries); `path` is what the key's request is checked
 * against besides method and body ("contacts", "contacts/bulk"). 0 with
 * *out filled (free out->answer), or a negative code. */
int api_idempotency_find(struct sql_cache *q, const struct api_call *c, const char *user,
                         const char *path, const char *sha, struct api_idempotency_earlier *out,
                         struct op_error *err);

/* Stores c's key for `user` with the request's path and fingerprint and
 * the answer (status; the record entity/id created; the body `answer`,
 * NULL for none), pruning keys older than API_IDEMPOTENCY_KEEP_MS, in the
 * caller's transaction. */
int api_idempotency_remember(struct sql_cache *q, const struct api_call *c, const char *user,
                             const char *path, const char *sha, int status, const char *entity,
                             const char *id, const char *answer, struct op_error *err);

/* Creates body (taken) as a record of c's collection, as
 * api_records_create does, under c's Idempotency-Key (checked already),
 * and answers c: the new record (201), the replayed one, or the error. */
void api_idempotency_create(struct api_db *db, struct api_call *c, const struct auth_user *u,
                            json_t *body, unsigned flags);

#endif
