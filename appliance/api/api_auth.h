/*
 * Who is asking, for the API: a request's bearer token (a session or an
 * API token) resolved to a user through auth.c on a read connection, the
 * role checks, the viewer restriction of field users, and the session
 * resource (login through the failed-login limiter, logout). The
 * invariant: every request but login, logout and the contact's
 * confirmation link is authenticated before any store call, and a 401
 * says how to get credentials and carries WWW-Authenticate.
 */
#ifndef OUTPOST_API_AUTH_H
#define OUTPOST_API_AUTH_H

#include "api_db.h"
#include "api_request.h"
#include "auth.h"
#include "op_error.h"

struct api_auth;

/* Makes the login state: the failed-login limiter (auth.h defaults), the
 * lifetime of new sessions and the hashing slots: at most half of the
 * `workers` API worker threads (at least 1) check a password at once, so
 * that a login flood leaves the others to the rest of the API. 0, or a
 * negative errno with err filled. */
int api_auth_new(unsigned session_ttl_s, unsigned workers, struct api_auth **out,
                 struct op_error *err);

/* Frees it; NULL is allowed. */
void api_auth_free(struct api_auth *a);

/* Sets the lifetime of sessions issued from now on (SIGHUP). Any thread. */
void api_auth_set_session_ttl(struct api_auth *a, unsigned ttl_s);

/* The number of hashing slots (workers / 2, at least 1). */
unsigned api_auth_hash_slots(const struct api_auth *a);

/* Replaces the password check (tests: a slow or counting one). verify gets
 * the stored hash, or NULL for the dummy check of an unknown user, and
 * returns 0 on a match or -EACCES. NULL restores auth_password_verify. */
typedef int (*api_auth_verify_fn)(const char *password, const char *hash);
void api_auth_set_verifier(struct api_auth *a, api_auth_verify_fn verify);

/* Resolves the request's bearer token on the read connection rd into *u
 * and records the user for the log line; a use the read connection could
 * not record is recorded on the writer (best effort). Returns 0, or -1
 * after answering 401 with WWW-Authenticate (no token; unknown, expired or
 * revoked) or the store's error. */
int api_auth_authenticate(struct api_db *db, struct api_conn *rd, struct api_call *c,
                          struct auth_user *u);

/* CRM records are for the field and manager roles: 0, or -1 after
 * answering 403 naming the role. */
int api_auth_require_crm_role(struct api_call *c, const struct auth_user *u);

/* The store viewer for u (store_set_viewer): a field user sees only own
 * and shared records, so their id; NULL for everyone else. */
const char *api_auth_viewer(const struct auth_user *u);

/* POST /api/v1/session {"name", "password"}: reserves a try with the
 * limiter for the name and the client's address (429 with Retry-After when
 * locked), takes a hashing slot (503 with Retry-After: 1 at once when all
 * are busy, and the try is given back; with two slots or more, the last
 * is only for a name and address that logged in before), checks the
 * password off any lock (401 alike for an unknown user and a wrong
 * password; 403 if the account is disabled), settles the try, then issues
 * a session on the writer: 201 with the token, its expiry and the user. */
void api_auth_login(struct api_auth *a, struct api_db *db, struct api_call *c);

/* DELETE /api/v1/session: ends the session of the request's bearer token,
 * 204; 401 with WWW-Authenticate if there is none or it is not live. */
void api_auth_logout(struct api_db *db, struct api_call *c);

#endif
