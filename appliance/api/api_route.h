/*
 * The API's route table: which resource a request path names, the ids it
 * carries, and the fixed label /metrics counts it under. Pure (no I/O, no
 * allocation), so the loop thread matches every request before anything
 * is queued. The invariant: a label is a string literal of this table,
 * never text from the request, so the metric series stay bounded.
 */
#ifndef OUTPOST_API_ROUTE_H
#define OUTPOST_API_ROUTE_H

#include "entity.h"

#define API_PREFIX "/api/v1"
#define API_ROUTE_ID_MAX 64 /* a path segment, with its NUL; longer ones match nothing */

enum api_route_kind {
    API_ROUTE_NOT_FOUND,
    API_ROUTE_HEALTH,
    API_ROUTE_METRICS,
    API_ROUTE_SESSION,
    API_ROUTE_SEARCH,
    API_ROUTE_COLLECTION,      /* /api/v1/{plural} */
    API_ROUTE_RECORD,          /* /api/v1/{plural}/{id} */
    API_ROUTE_CONSENTS,        /* /api/v1/contacts/{id}/consents */
    API_ROUTE_WITHDRAW,        /* /api/v1/contacts/{id}/consents/{cid}/withdraw */
    API_ROUTE_CONSENT_STATUS,  /* /api/v1/contacts/{id}/consents/status */
    API_ROUTE_CONFIRM,         /* /api/v1/consents/confirm: the contact's link, no Bearer */
    API_ROUTE_AGGREGATE,       /* /api/v1/aggregates/{name}: the hq role only */
    API_ROUTE_LAYOUT,          /* /api/v1/layout: the region's form of each record kind */
    API_ROUTE_USERS,           /* /api/v1/users: who works here, for managers and admins */
    API_ROUTE_BULK,            /* /api/v1/contacts/bulk: many creates, one duplicate choice */
    API_ROUTE_O_CONFIRM,       /* /o/confirm: the double opt-in page, no Bearer */
    API_ROUTE_O_UNSUBSCRIBE,   /* /o/unsubscribe/{token}: one-click unsubscribe, no Bearer */
    API_ROUTE_OUTREACH,        /* /api/v1/outreach/messages: the queue, managers */
    API_ROUTE_O_SMS_DLR,       /* /o/sms/dlr: the SMS gateway's delivery report, token in the URL */
    API_ROUTE_O_SMS_MO,        /* /o/sms/mo: a reply by SMS from the gateway, shared secret */
    API_ROUTE_CALL_RESULT,     /* /api/v1/outreach/messages/{id}/call-result: managers */
    API_ROUTE_CAMPAIGNS,       /* /api/v1/campaigns: managers */
    API_ROUTE_CAMPAIGN,        /* /api/v1/campaigns/{id} */
    API_ROUTE_CAMPAIGN_ACTION, /* /api/v1/campaigns/{id}/{action}: dry-run, start, pause, cancel */
};

struct api_route {
    enum api_route_kind kind;
    const struct entity_def *e;    /* the collection's entity; contacts for the consent routes */
    const char *label;             /* the metric label: "/api/v1/contacts/{id}", "other" */
    char id[API_ROUTE_ID_MAX];     /* {id} (an aggregate's {name}), or "" */
    char sub_id[API_ROUTE_ID_MAX]; /* {cid} of WITHDRAW, or "" */
};

/* Matches a percent-decoded path (http_path). /healthz and /metrics match
 * only as written; under /api/v1 runs of '/' count as one and a trailing
 * '/' is ignored. Never fails: a path the table does not know, or with
 * more than seven segments or a segment of 64 bytes or more, is
 * API_ROUTE_NOT_FOUND with label "other". */
void api_route_match(const char *path, struct api_route *out);

/* The methods a route takes, as an Allow header lists them ("GET, HEAD,
 * POST"): the one table every 405 answer quotes. NULL for
 * API_ROUTE_NOT_FOUND. */
const char *api_route_allow(enum api_route_kind kind);

#endif
