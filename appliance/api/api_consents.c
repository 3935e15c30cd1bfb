/*
 * The consent handlers; see api_consents.h. Consent (consent.h,
 * docs/CONSENT.md) decides what is recorded and what may be sent; these
 * handlers map requests and errors.
 */
#include "api_consents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_query.h"
#include "api_records.h"
#include "consent.h"
#include "outreach.h"

static void consent_problem(struct api_call *c, int rc, const struct op_error *err)
{
    switch (rc) {
    case -EALREADY:
    case -ECANCELED:
        api_reply_problem(&c->resp, 409, err->msg, NULL);
        return;
    case -ETIME:
        api_reply_problem(&c->resp, 410, err->msg, NULL);
        return;
    default:
        api_reply_store_error(&c->resp, rc, err);
        return;
    }
}

void api_consents_list(struct store *rd, struct api_call *c, const struct auth_user *u)
{
    json_t *contact = NULL;
    struct op_error err;
    op_error_clear(&err);
    store_set_viewer(rd, api_auth_viewer(u));
    int rc = store_get(rd, &entity_contact, c->route.id, 0, &contact, &err);
    store_set_viewer(rd, NULL);
    json_decref(contact);
    if (rc < 0)
        api_reply_store_error(&c->resp, rc, &err);
    else
        api_records_list(rd, c, u, &entity_consent, "contact_id", c->route.id);
}

void api_consents_create(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    static const char *const keys[] = {"channel", "purpose", "kind", "method", "evidence", NULL};
    json_t *body = api_request_json(&c->req, &c->resp);
    if (!body)
        return;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], key))
            i++;
        char msg[240];
        if (!keys[i]) {
            snprintf(msg, sizeof msg,
                     "%.64s: not accepted; a consent takes channel, purpose, kind, method and "
                     "evidence (its status and times are set by the node)",
                     key);
            api_reply_problem(&c->resp, 422, msg, key);
            json_decref(body);
            return;
        }
        if (strcmp(key, "evidence") && !json_is_string(v)) {
            snprintf(msg, sizeof msg, "%s: must be a string", key);
            api_reply_problem(&c->resp, 422, msg, key);
            json_decref(body);
            return;
        }
    }
    struct consent_request req = {
        .contact_id = c->route.id,
        .channel = json_string_value(json_object_get(body, "channel")),
        .purpose = json_string_value(json_object_get(body, "purpose")),
        .kind = json_string_value(json_object_get(body, "kind")),
        .method = json_string_value(json_object_get(body, "method")),
        .evidence = json_object_get(body, "evidence"),
        .ip = c->req.ip,
    };
    char token[CONSENT_TOKEN_BUF] = "";
    struct op_error err;
    op_error_clear(&err);
    json_t *rec = NULL;
    int64_t msg = 0;
    struct api_write w;
    int rc = api_db_write_begin(db, u->name, c->req.ip, api_auth_viewer(u), &w, &err);
    if (rc == 0) {
        rc = consent_record(w.conn->store, w.policy, &req, 0, &rec, token, &err);
        /* the confirmation e-mail, in the same transaction */
        if (rc == 0 && token[0])
            rc = outreach_queue_confirmation(w.conn->store, c->route.id, req.channel, req.purpose,
                                             token, 0, &msg, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    json_decref(body);
    if (rc < 0) {
        json_decref(rec);
        consent_problem(c, rc, &err);
        return;
    }
    api_reply_etag(&c->resp, rec);
    snprintf(c->resp.location, sizeof c->resp.location, "%s/contacts/%s/consents/%s", API_PREFIX,
             c->route.id, json_string_value(json_object_get(rec, "id")));
    /* The token belongs to the contact. The node queues the confirmation
     * e-mail itself (confirmation_message); where no relay is configured
     * or the contact has no address, a manager may take the token to
     * forward the link; nobody else ever sees it (the ledger keeps only
     * its hash). */
    if (msg)
        json_object_set_new(rec, "confirmation_message", json_integer(msg));
    if (token[0] && u->role == AUTH_ROLE_MANAGER)
        json_object_set_new(rec, "confirmation_token", json_string(token));
    explicit_bzero(token, sizeof token);
    api_reply_json(&c->resp, 201, rec);
}

void api_consents_withdraw(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    const char *reason = NULL;
    json_t *body = NULL;
    if (c->req.body_len) {
        body = api_request_json(&c->req, &c->resp);
        if (!body)
            return;
        reason = json_string_value(json_object_get(body, "reason"));
    }
    struct op_error err;
    json_t *cur = NULL, *rec = NULL;
    struct api_write w;
    int rc = api_records_write_begin(db, c, u, body, &w, &err);
    if (rc < 0)
        return;
    struct store *s = w.conn->store;
    rc = store_get(s, &entity_contact, c->route.id, 0, &cur, &err);
    json_decref(cur);
    cur = NULL;
    if (rc == 0)
        rc = store_get(s, &entity_consent, c->route.sub_id, 0, &cur, &err);
    if (rc == 0 && strcmp(json_string_value(json_object_get(cur, "contact_id")), c->route.id))
        rc = op_error_set(&err, -ENOENT, NULL, "no consent %s for contact %s", c->route.sub_id,
                          c->route.id);
    /* Withdrawing one record withdraws the consent it stands for: every
     * open record of the contact for that channel, purpose and kind. */
    if (rc == 0 && strcmp(json_string_value(json_object_get(cur, "status")), "withdrawn"))
        rc = consent_withdraw(s, c->route.id, json_string_value(json_object_get(cur, "channel")),
                              json_string_value(json_object_get(cur, "purpose")),
                              json_string_value(json_object_get(cur, "kind")), reason, 0, NULL,
                              &err);
    if (rc == 0)
        rc = store_get(s, &entity_consent, c->route.sub_id, 0, &rec, &err);
    rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    json_decref(cur);
    json_decref(body);
    api_reply_record(&c->resp, rc, &err, 200, rec);
}

void api_consents_status(struct api_db *db, struct store *rd, struct api_call *c,
                         const struct auth_user *u)
{
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = api_query_params(c, ps);
    if (n < 0)
        return;
    const char *channel = NULL, *purpose = NULL, *kind = NULL;
    for (int i = 0; i < n; i++) {
        if (!strcmp(ps[i].name, "channel"))
            channel = ps[i].value;
        else if (!strcmp(ps[i].name, "purpose"))
            purpose = ps[i].value;
        else if (!strcmp(ps[i].name, "kind"))
            kind = ps[i].value;
        else {
            api_reply_problem(&c->resp, 400, "unknown query parameter (channel, purpose, kind)",
                              NULL);
            return;
        }
    }
    if (!channel || !purpose) {
        api_reply_problem(
            &c->resp, 400,
            "channel and purpose are required "
            "(GET /api/v1/contacts/{id}/consents/status?channel=email&purpose=newsletter)",
            NULL);
        return;
    }
    struct consent_decision d;
    struct op_error err;
    op_error_clear(&err);
    char hash[POLICY_HASH_HEX] = "";
    /* One policy throughout: SIGHUP may swap it meanwhile. */
    const struct policy *p = api_db_policy_hold(db);
    if (p)
        snprintf(hash, sizeof hash, "%s", p->hash);
    store_set_viewer(rd, api_auth_viewer(u));
    int rc = consent_check(rd, p, c->route.id, channel, purpose, kind && *kind ? kind : NULL, 0, &d,
                           &err);
    store_set_viewer(rd, NULL);
    api_db_policy_release(db);
    if (rc == -EINVAL) {
        api_reply_problem(&c->resp, 400, err.msg, NULL);
        return;
    }
    if (rc < 0) {
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    api_reply_json(&c->resp, 200,
                   json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s?, s:s}", "contact_id",
                             c->route.id, "channel", channel, "purpose", purpose, "kind",
                             kind && *kind ? kind : "marketing", "allowed", d.allowed, "state",
                             consent_state_name(d.state), "rule", d.rule, "consent_id",
                             d.consent_id[0] ? d.consent_id : NULL, "policy_hash", hash));
}

void api_consents_confirm(struct api_db *db, struct api_call *c)
{
    json_t *body = api_request_json(&c->req, &c->resp);
    if (!body)
        return;
    const char *token = json_string_value(json_object_get(body, "token"));
    if (!token) {
        api_reply_problem(&c->resp, 422, "token: required, the string from the confirmation link",
                          "token");
        json_decref(body);
        return;
    }
    char id[40] = "";
    struct op_error err;
    op_error_clear(&err);
    struct api_write w;
    int rc = api_db_write_begin(db, "contact:confirmation-link", c->req.ip, NULL, &w, &err);
    if (rc == 0) {
        rc = consent_confirm(w.conn->store, token, c->req.ip, 0, id, &err);
        rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    }
    json_decref(body);
    if (rc < 0) {
        consent_problem(c, rc, &err);
        return;
    }
    api_reply_json(&c->resp, 200, json_pack("{s:s, s:s}", "consent_id", id, "status", "granted"));
}
