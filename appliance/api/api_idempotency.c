/*
 * Creates under an idempotency key; see api_idempotency.h.
 */
#include "api_idempotency.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_queries.h"
#include "api_auth.h"
#include "api_route.h"
#include "codec.h"
#include "hlc.h"
#include "store.h"

int api_idempotency_key_check(struct api_call *c)
{
    const char *k = c->req.idempotency_key;
    size_t n = c->req.idempotency_key_len;
    int ok = n >= API_IDEMPOTENCY_KEY_MIN && n <= API_IDEMPOTENCY_KEY_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
             (k[i] >= '0' && k[i] <= '9') || k[i] == '-' || k[i] == '_';
    if (ok)
        return 0;
    api_reply_problem(&c->resp, 400,
                      "Idempotency-Key: expected 8 to 128 characters of A-Z, a-z, 0-9, '-' "
                      "and '_' (a UUID will do)",
                      NULL);
    return -EINVAL;
}

int api_idempotency_fingerprint(const struct api_request *r, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(r->body ? r->body : "", r->body_len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != sizeof md)
        return -EIO;
    return codec_hex_encode(md, sizeof md, out, 65) < 0 ? -EIO : 0;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    return v ? (const char *)v : "";
}

int api_idempotency_find(struct sql_cache *q, const struct api_call *c, const char *user,
                         const char *path, const char *sha, struct api_idempotency_earlier *out,
                         struct op_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    int rc = sql_get_st(q, API_Q_IDEMPOTENCY_FIND, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->req.idempotency_key, -1, SQLITE_STATIC);
    rc = sql_step(q, API_Q_IDEMPOTENCY_FIND, st, err);
    if (rc == 1) {
        out->found = 1;
        out->same = !strcmp(col(st, 0), c->req.method) && !strcmp(col(st, 1), path) &&
                    !strcmp(col(st, 2), sha);
        out->status = sqlite3_column_int(st, 3);
        snprintf(out->entity, sizeof out->entity, "%s", col(st, 4));
        snprintf(out->id, sizeof out->id, "%s", col(st, 5));
        int has_answer = sqlite3_column_type(st, 6) != SQLITE_NULL;
        if (has_answer)
            out->answer = strdup(col(st, 6));
        sqlite3_reset(st); /* no read snapshot left open on the writer */
        rc = has_answer && !out->answer ? op_error_set(err, -ENOMEM, NULL, "out of memory") : 0;
    }
    return rc;
}

int api_idempotency_remember(struct sql_cache *q, const struct api_call *c, const char *user,
                             const char *path, const char *sha, int status, const char *entity,
                             const char *id, const char *answer, struct op_error *err)
{
    int64_t now = (int64_t)hlc_wall_ms(NULL);
    sqlite3_stmt *st;
    int rc = sql_get_st(q, API_Q_IDEMPOTENCY_PRUNE, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now - API_IDEMPOTENCY_KEEP_MS);
    rc = sql_run(q, API_Q_IDEMPOTENCY_PRUNE, st, err);
    if (rc < 0)
        return rc;
    rc = sql_get_st(q, API_Q_IDEMPOTENCY_INSERT, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->req.idempotency_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->req.method, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, sha, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, status);
    sqlite3_bind_text(st, 7, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, now);
    if (answer)
        sqlite3_bind_text(st, 10, answer, -1, SQLITE_STATIC);
    rc = sql_run(q, API_Q_IDEMPOTENCY_INSERT, st, err);
    return rc < 0 ? rc : 0;
}

void api_idempotency_create(struct api_db *db, struct api_call *c, const struct auth_user *u,
                            json_t *body, unsigned flags)
{
    const struct entity_def *e = c->route.e;
    char sha[65];
    if (api_idempotency_fingerprint(&c->req, sha) < 0) {
        json_decref(body);
        api_reply_problem(&c->resp, 500, "the request could not be fingerprinted", NULL);
        return;
    }
    struct op_error err;
    struct api_write w;
    op_error_clear(&err);
    int brc = api_db_write_begin(db, u->name, c->req.ip, api_auth_viewer(u), &w, &err);
    if (brc < 0) {
        json_decref(body);
        api_reply_store_error(&c->resp, brc, &err);
        return;
    }
    struct store *s = w.conn->store;
    struct sql_cache q;
    json_t *rec = NULL;
    struct api_idempotency_earlier was;
    int status = 201, replay = 0, mismatch = 0;
    int rc = store_queries_bind(s, &q, &api_queries, &err);
    if (rc == 0) {
        rc = api_idempotency_find(&q, c, u->name, e->plural, sha, &was, &err);
        if (rc == 0 && was.found && !was.same) {
            mismatch = 1;
        } else if (rc == 0 && was.found) {
            replay = 1;
            status = was.status;
            rc = store_get(s, e, was.id, 0, &rec, &err);
        } else if (rc == 0) {
            rc = sql_exec(&q, API_Q_IDEMPOTENCY_SAVEPOINT, &err);
            if (rc >= 0) { /* sql_exec counts rows changed: none here */
                rc = store_create(s, e, body, flags, &rec, &err);
                if (rc == 0)
                    rc = api_idempotency_remember(&q, c, u->name, e->plural, sha, 201, e->name,
                                                  json_string_value(json_object_get(rec, "id")),
                                                  NULL, &err);
                if (rc < 0)
                    (void)sql_exec(&q, API_Q_IDEMPOTENCY_ROLLBACK_TO, NULL);
                (void)sql_exec(&q, API_Q_IDEMPOTENCY_RELEASE, NULL);
            }
        }
        sql_cache_close(&q);
    }
    free(was.answer);
    rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    json_decref(body);
    if (mismatch) {
        json_decref(rec);
        api_reply_problem(&c->resp, 422,
                          "Idempotency-Key: this key was already used for a different request "
                          "(another collection or body); make a new key for a new record",
                          NULL);
        return;
    }
    if (rc == 0)
        snprintf(c->resp.location, sizeof c->resp.location, "%s/%s/%s", API_PREFIX, e->plural,
                 json_string_value(json_object_get(rec, "id")));
    api_reply_record(&c->resp, rc, &err, status, rec);
    c->resp.replayed = replay && rc == 0;
}
