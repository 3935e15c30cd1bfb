/*
 * The route table; see api_route.h. A path is split into at most seven
 * segments and matched against fixed names and the entity descriptors'
 * plural names.
 */
#include "api_route.h"

#include <stdio.h>
#include <string.h>

#define SEGMENTS_MAX 7

static const struct entity_def *const collections[] = {
    &entity_contact, &entity_organization, &entity_contact_organization,
    &entity_deal,    &entity_activity,     &entity_task,
    &entity_note,
};
#define NCOLLECTIONS (sizeof collections / sizeof collections[0])

/* Metric route labels: fixed strings, never raw paths. */
static const char *const collection_routes[NCOLLECTIONS][2] = {
    {"/api/v1/contacts", "/api/v1/contacts/{id}"},
    {"/api/v1/organizations", "/api/v1/organizations/{id}"},
    {"/api/v1/contact_organizations", "/api/v1/contact_organizations/{id}"},
    {"/api/v1/deals", "/api/v1/deals/{id}"},
    {"/api/v1/activities", "/api/v1/activities/{id}"},
    {"/api/v1/tasks", "/api/v1/tasks/{id}"},
    {"/api/v1/notes", "/api/v1/notes/{id}"},
};

/* Splits "/api/v1/a/b/c" into at most `max` segments of
 * API_ROUTE_ID_MAX bytes; -1 if there are more or one is longer. */
static int split_path(const char *path, char seg[][API_ROUTE_ID_MAX], int max)
{
    int n = 0;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p) {
        if (n == max)
            return -1;
        size_t len = strcspn(p, "/");
        if (len >= API_ROUTE_ID_MAX)
            return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
        while (*p == '/')
            p++;
    }
    return n;
}

void api_route_match(const char *path, struct api_route *r)
{
    memset(r, 0, sizeof *r);
    r->kind = API_ROUTE_NOT_FOUND;
    r->label = "other";
    if (!strcmp(path, "/healthz")) {
        r->kind = API_ROUTE_HEALTH;
        r->label = "/healthz";
        return;
    }
    if (!strcmp(path, "/metrics")) {
        r->kind = API_ROUTE_METRICS;
        r->label = "/metrics";
        return;
    }
    char seg[SEGMENTS_MAX][API_ROUTE_ID_MAX];
    int n = split_path(path, seg, SEGMENTS_MAX);
    /* the contact's pages, linked from outreach e-mails */
    if (n == 2 && !strcmp(seg[0], "o") && !strcmp(seg[1], "confirm")) {
        r->kind = API_ROUTE_O_CONFIRM;
        r->label = "/o/confirm";
        return;
    }
    if (n == 3 && !strcmp(seg[0], "o") && !strcmp(seg[1], "unsubscribe")) {
        r->kind = API_ROUTE_O_UNSUBSCRIBE;
        r->label = "/o/unsubscribe/{token}";
        snprintf(r->id, sizeof r->id, "%s", seg[2]);
        return;
    }
    /* the SMS gateway's callbacks */
    if (n == 3 && !strcmp(seg[0], "o") && !strcmp(seg[1], "sms") && !strcmp(seg[2], "dlr")) {
        r->kind = API_ROUTE_O_SMS_DLR;
        r->label = "/o/sms/dlr";
        return;
    }
    if (n == 3 && !strcmp(seg[0], "o") && !strcmp(seg[1], "sms") && !strcmp(seg[2], "mo")) {
        r->kind = API_ROUTE_O_SMS_MO;
        r->label = "/o/sms/mo";
        return;
    }
    if (n < 3 || strcmp(seg[0], "api") || strcmp(seg[1], "v1"))
        return;
    if (n == 3 && !strcmp(seg[2], "session")) {
        r->kind = API_ROUTE_SESSION;
        r->label = "/api/v1/session";
        return;
    }
    if (n == 3 && !strcmp(seg[2], "search")) {
        r->kind = API_ROUTE_SEARCH;
        r->label = "/api/v1/search";
        return;
    }
    if (n == 3 && !strcmp(seg[2], "layout")) {
        r->kind = API_ROUTE_LAYOUT;
        r->label = "/api/v1/layout";
        return;
    }
    if (n == 3 && !strcmp(seg[2], "users")) {
        r->kind = API_ROUTE_USERS;
        r->label = "/api/v1/users";
        return;
    }
    if (n == 4 && !strcmp(seg[2], "consents") && !strcmp(seg[3], "confirm")) {
        r->kind = API_ROUTE_CONFIRM;
        r->label = "/api/v1/consents/confirm";
        return;
    }
    if (n == 4 && !strcmp(seg[2], "outreach") && !strcmp(seg[3], "messages")) {
        r->kind = API_ROUTE_OUTREACH;
        r->label = "/api/v1/outreach/messages";
        return;
    }
    if (n == 6 && !strcmp(seg[2], "outreach") && !strcmp(seg[3], "messages") &&
        !strcmp(seg[5], "call-result")) {
        r->kind = API_ROUTE_CALL_RESULT;
        r->label = "/api/v1/outreach/messages/{id}/call-result";
        snprintf(r->id, sizeof r->id, "%s", seg[4]);
        return;
    }
    if (!strcmp(seg[2], "campaigns") && n <= 5) {
        r->kind = n == 3   ? API_ROUTE_CAMPAIGNS
                  : n == 4 ? API_ROUTE_CAMPAIGN
                           : API_ROUTE_CAMPAIGN_ACTION;
        r->label = n == 3   ? "/api/v1/campaigns"
                   : n == 4 ? "/api/v1/campaigns/{id}"
                            : "/api/v1/campaigns/{id}/{action}";
        if (n >= 4)
            snprintf(r->id, sizeof r->id, "%s", seg[3]);
        if (n == 5)
            snprintf(r->sub_id, sizeof r->sub_id, "%s", seg[4]);
        return;
    }
    if (n == 4 && !strcmp(seg[2], "aggregates")) {
        r->kind = API_ROUTE_AGGREGATE;
        r->label = "/api/v1/aggregates/{name}";
        snprintf(r->id, sizeof r->id, "%s", seg[3]);
        return;
    }
    for (size_t i = 0; i < NCOLLECTIONS; i++) {
        if (strcmp(seg[2], collections[i]->plural))
            continue;
        r->e = collections[i];
        if (n == 3) {
            r->kind = API_ROUTE_COLLECTION;
            r->label = collection_routes[i][0];
        } else if (n == 4 && r->e == &entity_contact && !strcmp(seg[3], "bulk")) {
            r->kind = API_ROUTE_BULK; /* ids are UUIDs: "bulk" is never one */
            r->label = "/api/v1/contacts/bulk";
        } else if (n == 4) {
            r->kind = API_ROUTE_RECORD;
            r->label = collection_routes[i][1];
            snprintf(r->id, sizeof r->id, "%s", seg[3]);
        } else if (n == 5 && r->e == &entity_contact && !strcmp(seg[4], "consents")) {
            r->kind = API_ROUTE_CONSENTS;
            r->label = "/api/v1/contacts/{id}/consents";
            snprintf(r->id, sizeof r->id, "%s", seg[3]);
        } else if (n == 6 && r->e == &entity_contact && !strcmp(seg[4], "consents") &&
                   !strcmp(seg[5], "status")) {
            r->kind = API_ROUTE_CONSENT_STATUS;
            r->label = "/api/v1/contacts/{id}/consents/status";
            snprintf(r->id, sizeof r->id, "%s", seg[3]);
        } else if (n == 7 && r->e == &entity_contact && !strcmp(seg[4], "consents") &&
                   !strcmp(seg[6], "withdraw")) {
            r->kind = API_ROUTE_WITHDRAW;
            r->label = "/api/v1/contacts/{id}/consents/{id}/withdraw";
            snprintf(r->id, sizeof r->id, "%s", seg[3]);
            snprintf(r->sub_id, sizeof r->sub_id, "%s", seg[5]);
        }
        return;
    }
}

const char *api_route_allow(enum api_route_kind kind)
{
    switch (kind) {
    case API_ROUTE_HEALTH:
    case API_ROUTE_METRICS:
    case API_ROUTE_SEARCH:
    case API_ROUTE_CONSENT_STATUS:
    case API_ROUTE_AGGREGATE:
    case API_ROUTE_LAYOUT:
    case API_ROUTE_USERS:
    case API_ROUTE_OUTREACH:
    case API_ROUTE_CAMPAIGN:
        return "GET, HEAD";
    case API_ROUTE_O_CONFIRM:
    case API_ROUTE_O_UNSUBSCRIBE:
        return "GET, HEAD, POST";
    case API_ROUTE_O_SMS_DLR:
    case API_ROUTE_O_SMS_MO:
        return "GET, POST";
    case API_ROUTE_SESSION:
        return "POST, DELETE";
    case API_ROUTE_COLLECTION:
    case API_ROUTE_CONSENTS:
    case API_ROUTE_CAMPAIGNS:
        return "GET, HEAD, POST";
    case API_ROUTE_RECORD:
        return "GET, HEAD, PATCH, DELETE";
    case API_ROUTE_WITHDRAW:
    case API_ROUTE_CONFIRM:
    case API_ROUTE_BULK:
    case API_ROUTE_CALL_RESULT:
    case API_ROUTE_CAMPAIGN_ACTION:
        return "POST";
    case API_ROUTE_NOT_FOUND:
        break;
    }
    return NULL;
}
