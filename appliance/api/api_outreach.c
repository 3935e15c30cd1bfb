/*
 * The outreach handlers; see api_outreach.h. The queue and the tokens are
 * outreach.c's and consent.c's; these map requests, pages and errors.
 */
#include "api_outreach.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_query.h"
#include "api_records.h"
#include "api_reply.h"
#include "consent.h"
#include "outreach.h"
#include "outreach_events.h"
#include "outreach_mail.h"
#include "outreach_sms.h"

static void page(struct api_call *c, int status, enum outreach_page which, const char *lang,
                 const char *action, const char *token)
{
    char *html = outreach_mail_page(which, lang, action, token);
    if (!html) {
        api_reply_problem(&c->resp, 503, "out of memory", NULL);
        return;
    }
    c->resp.status = status;
    c->resp.body = html;
    c->resp.body_len = strlen(html);
    c->resp.type = "text/html; charset=utf-8";
    c->resp.no_store = 1;
}

/* The value of `name` in an application/x-www-form-urlencoded text (the
 * query or a form body), or "" */
static void form_value(const char *text, const char *name, char *out, size_t cap)
{
    struct api_param ps[API_QUERY_PARAMS_MAX];
    char bad[64];
    out[0] = '\0';
    int n = text ? api_query_parse(text, ps, API_QUERY_PARAMS_MAX, bad, sizeof bad) : -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(ps[i].name, name))
            snprintf(out, cap, "%s", ps[i].value);
}

static int is_method(const struct api_call *c, const char *m)
{
    return !strcmp(c->req.method, m);
}

void api_outreach_confirm(struct api_db *db, struct api_call *c)
{
    char token[CONSENT_TOKEN_MAX + 1], lang[36];
    form_value(c->req.query, "t", token, sizeof token);
    form_value(c->req.query, "l", lang, sizeof lang);
    if (is_method(c, "GET") || is_method(c, "HEAD")) {
        if (!token[0] || !outreach_mail_header_safe(token)) {
            page(c, 404, OUTREACH_PAGE_BAD_LINK, lang, NULL, NULL);
            return;
        }
        char action[96];
        snprintf(action, sizeof action, "/o/confirm%s%s", lang[0] ? "?l=" : "",
                 outreach_mail_header_safe(lang) ? lang : "");
        page(c, 200, OUTREACH_PAGE_CONFIRM_ASK, lang, action, token);
        return;
    }
    if (!is_method(c, "POST")) {
        api_reply_method_not_allowed(&c->resp, c->req.method, api_route_allow(c->route.kind));
        return;
    }
    char body_token[CONSENT_TOKEN_MAX + 1];
    form_value(c->req.body, "t", body_token, sizeof body_token);
    if (body_token[0])
        snprintf(token, sizeof token, "%s", body_token);
    char id[40] = "";
    struct op_error err;
    op_error_clear(&err);
    struct api_write w;
    int rc = api_db_write_begin(db, "contact:confirmation-link", c->req.ip, NULL, &w, &err);
    if (rc == 0) {
        rc = consent_confirm(w.conn->store, token, c->req.ip, 0, id, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    explicit_bzero(token, sizeof token);
    explicit_bzero(body_token, sizeof body_token);
    switch (rc) {
    case 0:
        page(c, 200, OUTREACH_PAGE_CONFIRMED, lang, NULL, NULL);
        return;
    case -EALREADY: /* confirmed before: the consent is on file */
        page(c, 200, OUTREACH_PAGE_CONFIRMED, lang, NULL, NULL);
        return;
    case -ENOENT:
        page(c, 404, OUTREACH_PAGE_BAD_LINK, lang, NULL, NULL);
        return;
    case -ETIME:
        page(c, 410, OUTREACH_PAGE_BAD_LINK, lang, NULL, NULL);
        return;
    case -ECANCELED:
        page(c, 409, OUTREACH_PAGE_BAD_LINK, lang, NULL, NULL);
        return;
    default:
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
}

void api_outreach_unsubscribe(struct api_db *db, struct api_call *c)
{
    const char *token = c->route.id;
    char lang[36];
    form_value(c->req.query, "l", lang, sizeof lang);
    if (!token[0] || strlen(token) >= OUTREACH_TOKEN_BUF || !outreach_mail_header_safe(token)) {
        if (is_method(c, "POST"))
            api_reply_problem(&c->resp, 400, "malformed unsubscribe link", NULL);
        else
            page(c, 404, OUTREACH_PAGE_BAD_LINK, lang, NULL, NULL);
        return;
    }
    if (is_method(c, "GET") || is_method(c, "HEAD")) {
        char action[128];
        snprintf(action, sizeof action, "/o/unsubscribe/%s", token);
        page(c, 200, OUTREACH_PAGE_UNSUB_ASK, lang, action, token);
        return;
    }
    if (!is_method(c, "POST")) {
        api_reply_method_not_allowed(&c->resp, c->req.method, api_route_allow(c->route.kind));
        return;
    }
    struct op_error err;
    op_error_clear(&err);
    struct api_write w;
    char mlang[36] = "";
    int rc = api_db_write_begin(db, "contact:unsubscribe-link", c->req.ip, NULL, &w, &err);
    if (rc == 0) {
        rc = outreach_unsubscribe(w.conn->store, token, 0, mlang, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    if (rc == -ENOENT) {
        page(c, 404, OUTREACH_PAGE_BAD_LINK, lang, NULL, NULL);
        return;
    }
    if (rc < 0) {
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    page(c, 200, OUTREACH_PAGE_UNSUBSCRIBED, mlang[0] ? mlang : lang, NULL, NULL);
}

void api_outreach_list(struct store *rd, struct api_call *c, const struct auth_user *u)
{
    if (u->role != AUTH_ROLE_MANAGER) {
        char msg[160];
        snprintf(msg, sizeof msg, "the outreach queue is for the manager role, not %s",
                 auth_role_name(u->role));
        api_reply_problem(&c->resp, 403, msg, NULL);
        return;
    }
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = api_query_params(c, ps);
    if (n < 0)
        return;
    const char *state = NULL;
    int limit = 50;
    for (int i = 0; i < n; i++) {
        if (!strcmp(ps[i].name, "state")) {
            state = ps[i].value;
        } else if (!strcmp(ps[i].name, "limit")) {
            limit = api_query_limit(c, ps[i].value, OUTREACH_LIST_MAX);
            if (limit < 0)
                return;
        } else {
            api_reply_problem(&c->resp, 400, "unknown query parameter (state, limit)", NULL);
            return;
        }
    }
    json_t *arr = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = outreach_list(rd, state, (unsigned)limit, &arr, &err);
    if (rc == -EINVAL) {
        api_reply_problem(&c->resp, 400, err.msg, NULL);
        return;
    }
    if (rc < 0) {
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    api_reply_json(&c->resp, 200, json_pack("{s:o}", "messages", arr));
}

/* ---- the SMS gateway's callbacks ---------------------------------------- */

static pthread_mutex_t mo_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char mo_hash[32];
static int mo_set;

void api_outreach_set_mo_secret(const char *secret)
{
    pthread_mutex_lock(&mo_lock);
    mo_set = secret && *secret;
    unsigned int n = 0;
    if (mo_set && (!EVP_Digest(secret, strlen(secret), mo_hash, &n, EVP_sha256(), NULL) ||
                   n != sizeof mo_hash))
        mo_set = 0;
    pthread_mutex_unlock(&mo_lock);
}

/* 1 when k is the shared secret (compared by hash, in constant time). */
static int mo_secret_ok(const char *k)
{
    unsigned char h[32];
    unsigned int n = 0;
    if (!k || !*k || !EVP_Digest(k, strlen(k), h, &n, EVP_sha256(), NULL) || n != sizeof h)
        return 0;
    pthread_mutex_lock(&mo_lock);
    int ok = mo_set && CRYPTO_memcmp(h, mo_hash, sizeof h) == 0;
    pthread_mutex_unlock(&mo_lock);
    return ok;
}

/* The parameters of a gateway callback: the query, or a form body on POST.
 * Returns the count, or -1 after a 400 naming the bad parameter. */
static int gateway_params(struct api_call *c, struct api_param *ps)
{
    const char *text = c->req.query && *c->req.query ? c->req.query : NULL;
    if (!text && is_method(c, "POST"))
        text = c->req.body;
    char bad[64] = "";
    int n = api_query_parse(text, ps, API_QUERY_PARAMS_MAX, bad, sizeof bad);
    if (n < 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "%.60s: malformed, too long (at most 511 bytes) or too many parameters", bad);
        api_reply_problem(&c->resp, 400, msg, NULL);
    }
    return n;
}

static const char *param(const struct api_param *ps, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ps[i].name, name))
            return ps[i].value;
    return NULL;
}

static void plain_ok(struct api_call *c)
{
    c->resp.status = 200;
    c->resp.body = strdup("");
    c->resp.body_len = 0;
    c->resp.type = "text/plain; charset=utf-8";
    c->resp.no_store = 1;
}

static int gateway_method(struct api_call *c)
{
    if (is_method(c, "GET") || is_method(c, "POST"))
        return 1;
    api_reply_method_not_allowed(&c->resp, c->req.method, api_route_allow(c->route.kind));
    return 0;
}

void api_outreach_sms_dlr(struct api_db *db, struct api_call *c)
{
    if (!gateway_method(c))
        return;
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = gateway_params(c, ps);
    if (n < 0)
        return;
    const char *t = param(ps, n, "t"), *type = param(ps, n, "type");
    const char *smsc = param(ps, n, "smsc");
    if (!t || !*t) {
        api_reply_problem(&c->resp, 400, "t: missing (the delivery report token)", NULL);
        return;
    }
    char *end = NULL;
    long ty = type ? strtol(type, &end, 10) : -1;
    if (!type || !*type || *end || ty < 0 || ty > 1000) {
        api_reply_problem(&c->resp, 400, "type: missing or not a number (Kannel's %d)", NULL);
        return;
    }
    struct op_error err;
    op_error_clear(&err);
    struct api_write w;
    int recorded = 0;
    int rc = api_db_write_begin(db, "sms:delivery-report", c->req.ip, NULL, &w, &err);
    if (rc == 0) {
        rc = outreach_sms_dlr(w.conn->store, t, ty, smsc ? smsc : "", 0, &recorded, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    if (rc == -ENOENT)
        api_reply_problem(&c->resp, 404, "unknown delivery report token", NULL);
    else if (rc == -EINVAL)
        api_reply_problem(&c->resp, 400, err.msg, NULL);
    else if (rc < 0)
        api_reply_store_error(&c->resp, rc, &err);
    else
        plain_ok(c);
}

void api_outreach_sms_mo(struct api_db *db, struct api_call *c)
{
    if (!gateway_method(c))
        return;
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = gateway_params(c, ps);
    if (n < 0)
        return;
    if (!mo_secret_ok(param(ps, n, "k"))) {
        api_reply_problem(&c->resp, 403, "k: not the shared secret of outreach_sms_mo_secret_file",
                          NULL);
        return;
    }
    const char *from = param(ps, n, "from"), *text = param(ps, n, "text");
    if (!from || !*from) {
        api_reply_problem(&c->resp, 400, "from: missing (the sender's number)", NULL);
        return;
    }
    if (!text) {
        api_reply_problem(&c->resp, 400, "text: missing", NULL);
        return;
    }
    struct op_error err;
    op_error_clear(&err);
    struct api_write w;
    struct outreach_sms_mo_result r;
    int rc = api_db_write_begin(db, "sms:reply", c->req.ip, NULL, &w, &err);
    if (rc == 0) {
        rc = outreach_sms_mo(w.conn->store, from, text, 0, &r, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    if (rc == -EINVAL)
        api_reply_problem(&c->resp, 400, err.msg, NULL);
    else if (rc < 0)
        api_reply_store_error(&c->resp, rc, &err);
    else
        plain_ok(c); /* an empty answer: Kannel sends nothing back */
}

void api_outreach_call_result(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    if (u->role != AUTH_ROLE_MANAGER) {
        char msg[160];
        snprintf(msg, sizeof msg, "call results are for the manager role, not %s",
                 auth_role_name(u->role));
        api_reply_problem(&c->resp, 403, msg, NULL);
        return;
    }
    char *end;
    errno = 0;
    long long id = strtoll(c->route.id, &end, 10);
    if (errno || end == c->route.id || *end || id < 1) {
        api_reply_problem(&c->resp, 404, "no such message", NULL);
        return;
    }
    json_t *body = api_request_json(&c->req, &c->resp);
    if (!body)
        return;
    json_t *jr = json_object_get(body, "result"), *jn = json_object_get(body, "note");
    int result = outreach_call_result_parse(json_string_value(jr));
    if (result < 0) {
        api_reply_problem(&c->resp, 400,
                          "result: expected answered, no-answer, refused or wrong-number",
                          "/result");
        json_decref(body);
        return;
    }
    if (jn && !json_is_string(jn)) {
        api_reply_problem(&c->resp, 400, "note: a string", "/note");
        json_decref(body);
        return;
    }
    char *note = jn ? strdup(json_string_value(jn)) : NULL;
    struct op_error err;
    op_error_clear(&err);
    struct api_write w;
    int rc = api_records_write_begin(db, c, u, body, &w, &err);
    if (rc < 0) {
        free(note);
        return;
    }
    char activity[40] = "";
    rc = outreach_call_result(w.conn->store, (int64_t)id, (enum outreach_call_result)result, note,
                              0, activity, &err);
    rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    free(note);
    json_decref(body);
    if (rc < 0) {
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    static const char *const names[] = {"answered", "no-answer", "refused", "wrong-number"};
    api_reply_json(&c->resp, 201,
                   json_pack("{s:I, s:s, s:s}", "message", (json_int_t)id, "result", names[result],
                             "activity_id", activity));
}
