/*
 * Who is asking, for the API; see api_auth.h. Password checks and token
 * lookups run on worker threads (auth.c is pure or takes a connection);
 * the limiter and the hashing slots are shared by all workers under one
 * mutex, held only to reserve and settle, never while hashing. A worker
 * that finds every hashing slot taken answers 503 at once instead of
 * waiting, so logins can never hold more than their share of the pool.
 */
#include "api_auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hlc.h"
#include "timefmt.h"

struct api_auth {
    pthread_mutex_t lock; /* the limiter, the hashing slots, the TTL SIGHUP changes */
    struct auth_limiter *limiter;
    unsigned session_ttl_s;
    unsigned hash_slots; /* password checks allowed at once */
    unsigned hash_busy;  /* ...running now */
    api_auth_verify_fn verify;
};

int api_auth_new(unsigned session_ttl_s, unsigned workers, struct api_auth **out,
                 struct op_error *err)
{
    struct api_auth *a = calloc(1, sizeof *a);
    if (!a)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    pthread_mutex_init(&a->lock, NULL);
    a->session_ttl_s = session_ttl_s;
    a->hash_slots = workers / 2 > 0 ? workers / 2 : 1;
    int rc = auth_limiter_new(NULL, &a->limiter);
    if (rc < 0) {
        op_error_set(err, rc, NULL, "cannot create the login limiter");
        api_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void api_auth_free(struct api_auth *a)
{
    if (!a)
        return;
    auth_limiter_free(a->limiter);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void api_auth_set_session_ttl(struct api_auth *a, unsigned ttl_s)
{
    pthread_mutex_lock(&a->lock);
    a->session_ttl_s = ttl_s;
    pthread_mutex_unlock(&a->lock);
}

unsigned api_auth_hash_slots(const struct api_auth *a)
{
    return a->hash_slots;
}

void api_auth_set_verifier(struct api_auth *a, api_auth_verify_fn verify)
{
    pthread_mutex_lock(&a->lock);
    a->verify = verify;
    pthread_mutex_unlock(&a->lock);
}

int api_auth_authenticate(struct api_db *db, struct api_conn *rd, struct api_call *c,
                          struct auth_user *u)
{
    if (!c->req.bearer) {
        c->resp.www_authenticate = 1;
        api_reply_problem(&c->resp, 401,
                          "credentials missing: send Authorization: Bearer TOKEN (POST "
                          "/api/v1/session to get one)",
                          NULL);
        return -1;
    }
    struct op_error err;
    op_error_clear(&err);
    int rc = auth_lookup_bearer(rd->auth, c->req.bearer, u, &err);
    if (rc < 0) {
        c->resp.www_authenticate = 1;
        if (rc == -EACCES)
            api_reply_problem(&c->resp, 401,
                              "the token is unknown, expired or revoked; log in again", NULL);
        else
            api_reply_store_error(&c->resp, rc, &err);
        return -1;
    }
    snprintf(c->resp.user, sizeof c->resp.user, "%s", u->name);
    if (u->touch_due) {
        /* The lookup ran on a read-only connection; record the use on the
         * writer (at most once a minute per credential). Best effort. */
        struct api_write w;
        if (api_db_write_begin(db, u->name, c->req.ip, NULL, &w, &err) == 0) {
            (void)auth_touch(w.conn->auth, u, NULL);
            (void)api_db_write_end(db, &w);
        }
    }
    return 0;
}

int api_auth_require_crm_role(struct api_call *c, const struct auth_user *u)
{
    if (u->role == AUTH_ROLE_FIELD || u->role == AUTH_ROLE_MANAGER)
        return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "the %s role has no access to CRM records", auth_role_name(u->role));
    api_reply_problem(&c->resp, 403, msg, NULL);
    return -1;
}

const char *api_auth_viewer(const struct auth_user *u)
{
    return u->role == AUTH_ROLE_FIELD ? u->id : NULL;
}

void api_auth_login(struct api_auth *a, struct api_db *db, struct api_call *c)
{
    json_t *b = api_request_json(&c->req, &c->resp);
    if (!b)
        return;
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *password = json_string_value(json_object_get(b, "password"));
    if (!name || !password) {
        api_reply_problem(&c->resp, 422, "name and password are required strings",
                          name ? "password" : "name");
        json_decref(b);
        return;
    }
    /* Reserve a try and a hashing slot in one step under the lock, so that
     * parallel guesses cannot all pass a check before any is counted. */
    struct auth_limiter_try try;
    int64_t retry = 0;
    pthread_mutex_lock(&a->lock);
    int lim =
        auth_limiter_begin(a->limiter, name, c->req.ip, (int64_t)hlc_wall_ms(NULL), &try, &retry);
    /* With two slots or more, one is kept for a pair that logged in
     * before, so that the staff get in during a flood from elsewhere. */
    unsigned cap =
        lim == 0 && !try.trusted && a->hash_slots > 1 ? a->hash_slots - 1 : a->hash_slots;
    int slot = lim == 0 && a->hash_busy < cap;
    if (slot)
        a->hash_busy++;
    else if (lim == 0)
        auth_limiter_end(a->limiter, &try, AUTH_LIMITER_CANCEL, (int64_t)hlc_wall_ms(NULL));
    api_auth_verify_fn verify = a->verify;
    pthread_mutex_unlock(&a->lock);
    if (lim == -EAGAIN) {
        snprintf(c->resp.retry_after, sizeof c->resp.retry_after, "%lld",
                 (long long)(retry + 999) / 1000);
        api_reply_problem(&c->resp, 429, "too many failed logins; wait before trying again", NULL);
        json_decref(b);
        return;
    }
    if (!slot) {
        snprintf(c->resp.retry_after, sizeof c->resp.retry_after, "1");
        api_reply_problem(&c->resp, 503, "too many logins at once; try again in a second", NULL);
        json_decref(b);
        return;
    }
    struct api_conn *rd = api_db_reader(db);
    struct auth_credentials cred;
    struct op_error err;
    op_error_clear(&err);
    int rc = rd ? auth_credentials_get(rd->auth, name, &cred, &err) : -EBUSY;
    if (rd)
        api_db_reader_release(db, rd);
    enum auth_limiter_outcome outcome = AUTH_LIMITER_CANCEL;
    if (rc == 0) {
        if (cred.found && cred.hash[0])
            rc = verify ? verify(password, cred.hash) : auth_password_verify(password, cred.hash);
        else {
            if (verify)
                (void)verify(password, NULL);
            else
                auth_password_dummy_verify(password);
            rc = -EACCES;
        }
        explicit_bzero(cred.hash, sizeof cred.hash);
        outcome = rc == 0 ? AUTH_LIMITER_OK : AUTH_LIMITER_FAILED;
    }
    pthread_mutex_lock(&a->lock);
    a->hash_busy--;
    auth_limiter_end(a->limiter, &try, outcome, (int64_t)hlc_wall_ms(NULL));
    pthread_mutex_unlock(&a->lock);
    json_decref(b);
    if (outcome == AUTH_LIMITER_CANCEL) { /* the store failed: no password was checked */
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    if (rc < 0) {
        api_reply_problem(&c->resp, 401, "wrong user name or password", NULL);
        return;
    }
    if (cred.disabled) {
        api_reply_problem(&c->resp, 403, "this account is disabled; ask an administrator", NULL);
        return;
    }
    char token[AUTH_TOKEN_BUF];
    struct api_write w;
    unsigned ttl = 0;
    rc = api_db_write_begin(db, cred.user.name, c->req.ip, NULL, &w, &err);
    if (rc == 0) {
        pthread_mutex_lock(&a->lock); /* SIGHUP changes the TTL */
        ttl = a->session_ttl_s;
        pthread_mutex_unlock(&a->lock);
        rc = auth_session_issue(w.conn->auth, cred.user.id, c->req.ip, (int)ttl, token, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    if (rc < 0) {
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    snprintf(c->resp.user, sizeof c->resp.user, "%s", cred.user.name);
    char expires[32];
    (void)timefmt_iso_s(((int64_t)time(NULL) + (int64_t)ttl) * 1000, expires, sizeof expires);
    api_reply_json(&c->resp, 201,
                   json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "token", token, "token_type",
                             "Bearer", "expires_at", expires, "user", "id", cred.user.id, "name",
                             cred.user.name, "role", auth_role_name(cred.user.role)));
    memset(token, 0, sizeof token);
}

void api_auth_logout(struct api_db *db, struct api_call *c)
{
    struct op_error err;
    op_error_clear(&err);
    if (!c->req.bearer) {
        c->resp.www_authenticate = 1;
        api_reply_problem(&c->resp, 401, "no session to end: send Authorization: Bearer TOKEN",
                          NULL);
        return;
    }
    struct api_write w;
    int rc = api_db_write_begin(db, "system", c->req.ip, NULL, &w, &err);
    if (rc == 0) {
        rc = auth_session_revoke(w.conn->auth, c->req.bearer, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    if (rc == -EACCES) {
        c->resp.www_authenticate = 1;
        api_reply_problem(&c->resp, 401, "no such live session", NULL);
        return;
    }
    if (rc < 0) {
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    c->resp.status = 204;
}
