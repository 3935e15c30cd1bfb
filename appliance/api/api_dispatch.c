/*
 * Dispatch; see api_dispatch.h. The table of which methods each route
 * takes is the switch in api_dispatch_run.
 */
#include "api_dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_aggregates.h"
#include "api_bulk.h"
#include "api_consents.h"
#include "api_layout.h"
#include "api_outreach.h"
#include "api_campaigns.h"
#include "api_records.h"
#include "api_users.h"

int api_dispatch_early(const struct api_route *r, const char *method, struct api_response *resp)
{
    if (r->kind == API_ROUTE_HEALTH) {
        static const char ok[] = "{\"status\":\"ok\"}";
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            api_reply_method_not_allowed(resp, method, api_route_allow(r->kind));
            return 1;
        }
        resp->status = 200;
        resp->body = strdup(ok);
        resp->body_len = resp->body ? sizeof ok - 1 : 0;
        resp->type = "application/json";
        return 1;
    }
    if (r->kind == API_ROUTE_NOT_FOUND) {
        api_reply_problem(resp, 404, "no such resource", NULL);
        return 1;
    }
    return 0;
}

static int method_is(const struct api_call *c, const char *m)
{
    return !strcmp(c->req.method, m);
}

/* The 405 with the route's Allow (api_route_allow, the one table). */
static void method_not_allowed(struct api_call *c)
{
    api_reply_method_not_allowed(&c->resp, c->req.method, api_route_allow(c->route.kind));
}

void api_dispatch_run(struct api_db *db, struct api_auth *auth, struct api_call *c)
{
    const struct api_route *r = &c->route;

    if (r->kind == API_ROUTE_SESSION) {
        if (method_is(c, "POST"))
            api_auth_login(auth, db, c);
        else if (method_is(c, "DELETE"))
            api_auth_logout(db, c);
        else
            method_not_allowed(c);
        return;
    }
    /* The contact follows a link: the token is the credential. */
    if (r->kind == API_ROUTE_CONFIRM) {
        if (method_is(c, "POST"))
            api_consents_confirm(db, c);
        else
            method_not_allowed(c);
        return;
    }
    /* The contact follows a link in an outreach e-mail. */
    if (r->kind == API_ROUTE_O_CONFIRM) {
        api_outreach_confirm(db, c);
        return;
    }
    if (r->kind == API_ROUTE_O_UNSUBSCRIBE) {
        api_outreach_unsubscribe(db, c);
        return;
    }
    /* The SMS gateway reports: a token or a shared secret is the credential. */
    if (r->kind == API_ROUTE_O_SMS_DLR || r->kind == API_ROUTE_O_SMS_MO) {
        if (r->kind == API_ROUTE_O_SMS_DLR)
            api_outreach_sms_dlr(db, c);
        else
            api_outreach_sms_mo(db, c);
        return;
    }
    struct api_conn *rd = api_db_reader(db);
    if (!rd) {
        snprintf(c->resp.retry_after, sizeof c->resp.retry_after, "1");
        api_reply_problem(&c->resp, 503, "all database connections are busy", NULL);
        return;
    }
    struct auth_user u;
    if (c->req.has_user) /* authenticated once, at the gate, before the body was read */
        u = c->req.user;
    else if (api_auth_authenticate(db, rd, c, &u) < 0)
        goto out;
    /* A token of scope metrics reads /metrics and nothing else. */
    if (u.scope == AUTH_SCOPE_METRICS && r->kind != API_ROUTE_METRICS) {
        api_reply_problem(&c->resp, 403,
                          "this API token has the scope metrics: it may read GET /metrics only",
                          NULL);
        goto out;
    }
    if (r->kind == API_ROUTE_METRICS) {
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_metrics_authorize(c, &u);
        else
            method_not_allowed(c);
        goto out;
    }
    /* The hq role reads aggregates and nothing else (the handler checks it). */
    if (r->kind == API_ROUTE_AGGREGATE) {
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_aggregates_get(db, c, &u);
        else
            method_not_allowed(c);
        goto out;
    }
    /* Managers and admins (admins have no CRM records; the handler checks). */
    if (r->kind == API_ROUTE_USERS) {
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_users_list(rd->store, c, &u);
        else
            method_not_allowed(c);
        goto out;
    }
    if (api_auth_require_crm_role(c, &u) < 0)
        goto out;
    if (r->kind == API_ROUTE_OUTREACH) {
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_outreach_list(rd->store, c, &u);
        else
            method_not_allowed(c);
        goto out;
    }
    if (r->kind == API_ROUTE_CALL_RESULT) {
        if (method_is(c, "POST"))
            api_outreach_call_result(db, c, &u);
        else
            method_not_allowed(c);
        goto out;
    }
    if (r->kind == API_ROUTE_CAMPAIGNS) {
        api_campaigns_collection(db, rd->store, c, &u);
        goto out;
    }
    if (r->kind == API_ROUTE_CAMPAIGN) {
        api_campaigns_get(rd->store, c, &u);
        goto out;
    }
    if (r->kind == API_ROUTE_CAMPAIGN_ACTION) {
        api_campaigns_action(db, rd->store, c, &u);
        goto out;
    }
    switch (r->kind) {
    case API_ROUTE_SEARCH:
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_records_search(rd->store, c, &u);
        else
            method_not_allowed(c);
        break;
    case API_ROUTE_COLLECTION:
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_records_list(rd->store, c, &u, r->e, NULL, NULL);
        else if (method_is(c, "POST"))
            api_records_create(db, c, &u);
        else
            method_not_allowed(c);
        break;
    case API_ROUTE_BULK:
        if (method_is(c, "POST"))
            api_bulk_create(db, c, &u);
        else
            method_not_allowed(c);
        break;
    case API_ROUTE_RECORD:
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_records_get(rd->store, c, &u);
        else if (method_is(c, "PATCH"))
            api_records_update(db, c, &u);
        else if (method_is(c, "DELETE"))
            api_records_delete(db, c, &u);
        else
            method_not_allowed(c);
        break;
    case API_ROUTE_CONSENTS:
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_consents_list(rd->store, c, &u);
        else if (method_is(c, "POST"))
            api_consents_create(db, c, &u);
        else
            method_not_allowed(c);
        break;
    case API_ROUTE_WITHDRAW:
        if (method_is(c, "POST"))
            api_consents_withdraw(db, c, &u);
        else
            method_not_allowed(c);
        break;
    case API_ROUTE_LAYOUT:
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_layout_get(db, c);
        else
            method_not_allowed(c);
        break;
    case API_ROUTE_CONSENT_STATUS:
        if (method_is(c, "GET") || method_is(c, "HEAD"))
            api_consents_status(db, rd->store, c, &u);
        else
            method_not_allowed(c);
        break;
    default:
        api_reply_problem(&c->resp, 404, "no such resource", NULL);
        break;
    }
out:
    api_db_reader_release(db, rd);
}

void api_dispatch_finish(struct api_metrics *m, struct api_call *c)
{
    if (c->route.kind == API_ROUTE_METRICS && c->resp.status == 200)
        api_metrics_render(m, &c->resp);
    if (!c->resp.status)
        api_reply_problem(&c->resp, 500, "the request was not handled", NULL);
    c->resp.no_store = 1;
}
