/*
 * Tests for appliance/api/api_route.c: every route kind with its ids and
 * metric label, trailing and doubled slashes, unknown and over-long
 * paths, and the consent sub-routes matching only under contacts.
 */
#include <string.h>

#include "api_route.h"
#include "testlib.h"

static struct api_route r;

static enum api_route_kind match(const char *path)
{
    api_route_match(path, &r);
    return r.kind;
}

static void fixed_routes(void)
{
    CHECK_EQ(match("/healthz"), API_ROUTE_HEALTH);
    CHECK_STR(r.label, "/healthz");
    CHECK_EQ(match("/metrics"), API_ROUTE_METRICS);
    CHECK_STR(r.label, "/metrics");
    CHECK_EQ(match("/api/v1/session"), API_ROUTE_SESSION);
    CHECK_STR(r.label, "/api/v1/session");
    CHECK_EQ(match("/api/v1/search"), API_ROUTE_SEARCH);
    CHECK_STR(r.label, "/api/v1/search");
    CHECK_EQ(match("/api/v1/consents/confirm"), API_ROUTE_CONFIRM);
    CHECK_STR(r.label, "/api/v1/consents/confirm");
    CHECK_EQ(match("/api/v1/aggregates/contacts_by_segment_district"), API_ROUTE_AGGREGATE);
    CHECK_STR(r.label, "/api/v1/aggregates/{name}");
    CHECK_STR(r.id, "contacts_by_segment_district");
    CHECK_EQ(match("/api/v1/aggregates"), API_ROUTE_NOT_FOUND);
    /* outreach: the contact's pages outside /api/v1, the manager's list */
    CHECK_EQ(match("/o/confirm"), API_ROUTE_O_CONFIRM);
    CHECK_STR(r.label, "/o/confirm");
    CHECK_EQ(match("/o/unsubscribe/AbC-_9"), API_ROUTE_O_UNSUBSCRIBE);
    CHECK_STR(r.label, "/o/unsubscribe/{token}");
    CHECK_STR(r.id, "AbC-_9");
    CHECK_EQ(match("/o/unsubscribe"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/o/unsubscribe/a/b"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/o/unsubscribe/"
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
             API_ROUTE_NOT_FOUND); /* a segment of 64 bytes or more */
    CHECK_EQ(match("/o/other"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1/outreach/messages"), API_ROUTE_OUTREACH);
    CHECK_STR(r.label, "/api/v1/outreach/messages");
    CHECK_STR(api_route_allow(API_ROUTE_O_UNSUBSCRIBE), "GET, HEAD, POST");
    CHECK_STR(api_route_allow(API_ROUTE_OUTREACH), "GET, HEAD");
    CHECK_EQ(match("/api/v1/campaigns"), API_ROUTE_CAMPAIGNS);
    CHECK_STR(api_route_allow(API_ROUTE_CAMPAIGNS), "GET, HEAD, POST");
    CHECK_EQ(match("/api/v1/campaigns/12"), API_ROUTE_CAMPAIGN);
    CHECK_STR(r.id, "12");
    CHECK_STR(r.label, "/api/v1/campaigns/{id}");
    CHECK_EQ(match("/api/v1/campaigns/12/dry-run"), API_ROUTE_CAMPAIGN_ACTION);
    CHECK_STR(r.sub_id, "dry-run");
    CHECK_STR(r.label, "/api/v1/campaigns/{id}/{action}");
    CHECK_STR(api_route_allow(API_ROUTE_CAMPAIGN_ACTION), "POST");
    CHECK_EQ(match("/api/v1/campaigns/12/start/now"), API_ROUTE_NOT_FOUND);
    /* only as written: the probes have no aliases */
    CHECK_EQ(match("/healthz/"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/Healthz"), API_ROUTE_NOT_FOUND);
}

static void collections(void)
{
    static const struct {
        const char *path;
        const struct entity_def *e;
        const char *label;
    } cases[] = {
        {"/api/v1/contacts", &entity_contact, "/api/v1/contacts"},
        {"/api/v1/organizations", &entity_organization, "/api/v1/organizations"},
        {"/api/v1/contact_organizations", &entity_contact_organization,
         "/api/v1/contact_organizations"},
        {"/api/v1/deals", &entity_deal, "/api/v1/deals"},
        {"/api/v1/activities", &entity_activity, "/api/v1/activities"},
        {"/api/v1/tasks", &entity_task, "/api/v1/tasks"},
        {"/api/v1/notes", &entity_note, "/api/v1/notes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ(match(cases[i].path), API_ROUTE_COLLECTION);
        CHECK(r.e == cases[i].e);
        CHECK_STR(r.label, cases[i].label);
        CHECK_STR(r.id, "");
        char rec[128], label[128];
        snprintf(rec, sizeof rec, "%s/0190-abc", cases[i].path);
        snprintf(label, sizeof label, "%s/{id}", cases[i].label);
        CHECK_EQ(match(rec), API_ROUTE_RECORD);
        CHECK(r.e == cases[i].e);
        CHECK_STR(r.label, label);
        CHECK_STR(r.id, "0190-abc");
    }
    /* users are a read-only list, not a collection of records; consents
     * and the audit log are not collections of this API */
    CHECK_EQ(match("/api/v1/users"), API_ROUTE_USERS);
    CHECK_STR(r.label, "/api/v1/users");
    CHECK_EQ(match("/api/v1/users/0190-abc"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1/consents"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1/contact"), API_ROUTE_NOT_FOUND);
}

static void slashes(void)
{
    CHECK_EQ(match("/api/v1/contacts/"), API_ROUTE_COLLECTION);
    CHECK_EQ(match("/api/v1/contacts/X1/"), API_ROUTE_RECORD);
    CHECK_STR(r.id, "X1");
    CHECK_EQ(match("//api//v1///contacts//X2"), API_ROUTE_RECORD);
    CHECK_STR(r.id, "X2");
    CHECK_EQ(match("/api/v1/session/"), API_ROUTE_SESSION);
}

static void consent_routes(void)
{
    CHECK_EQ(match("/api/v1/contacts/C1/consents"), API_ROUTE_CONSENTS);
    CHECK(r.e == &entity_contact);
    CHECK_STR(r.id, "C1");
    CHECK_STR(r.label, "/api/v1/contacts/{id}/consents");
    CHECK_EQ(match("/api/v1/contacts/C1/consents/status"), API_ROUTE_CONSENT_STATUS);
    CHECK_STR(r.id, "C1");
    CHECK_STR(r.label, "/api/v1/contacts/{id}/consents/status");
    CHECK_EQ(match("/api/v1/contacts/C1/consents/K9/withdraw"), API_ROUTE_WITHDRAW);
    CHECK_STR(r.id, "C1");
    CHECK_STR(r.sub_id, "K9");
    CHECK_STR(r.label, "/api/v1/contacts/{id}/consents/{id}/withdraw");
    /* only under contacts, and only these shapes */
    CHECK_EQ(match("/api/v1/deals/D1/consents"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1/contacts/C1/notes"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1/contacts/C1/consents/K9"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1/contacts/C1/consents/K9/revoke"), API_ROUTE_NOT_FOUND);
    CHECK_STR(r.label, "other");
}

static void bulk_route(void)
{
    CHECK_EQ(match("/api/v1/contacts/bulk"), API_ROUTE_BULK);
    CHECK(r.e == &entity_contact);
    CHECK_STR(r.label, "/api/v1/contacts/bulk");
    CHECK_STR(api_route_allow(API_ROUTE_BULK), "POST");
    /* contacts only: elsewhere "bulk" is an id that never exists */
    CHECK_EQ(match("/api/v1/deals/bulk"), API_ROUTE_RECORD);
    CHECK_STR(r.id, "bulk");
    CHECK_EQ(match("/api/v1/contacts/bulk/x"), API_ROUTE_NOT_FOUND);
}

static void unknown_and_long(void)
{
    CHECK_EQ(match("/"), API_ROUTE_NOT_FOUND);
    CHECK_STR(r.label, "other");
    CHECK_EQ(match(""), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v2/contacts"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/v1/api/contacts"), API_ROUTE_NOT_FOUND);
    CHECK_EQ(match("/api/v1/contacts/a/b/c/d/e"), API_ROUTE_NOT_FOUND); /* 8 segments */
    char path[200];
    char id[70];
    memset(id, 'x', 63);
    id[63] = '\0';
    snprintf(path, sizeof path, "/api/v1/contacts/%s", id);
    CHECK_EQ(match(path), API_ROUTE_RECORD); /* 63 bytes: the longest id */
    CHECK_EQ(strlen(r.id), 63);
    memset(id, 'x', 64);
    id[64] = '\0';
    snprintf(path, sizeof path, "/api/v1/contacts/%s", id);
    CHECK_EQ(match(path), API_ROUTE_NOT_FOUND);
    CHECK_STR(r.label, "other");
}

int main(void)
{
    RUN(fixed_routes);
    RUN(collections);
    RUN(slashes);
    RUN(consent_routes);
    RUN(bulk_route);
    RUN(unknown_and_long);
    return tl_report();
}
