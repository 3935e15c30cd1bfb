/*
 * Tests for appliance/api/api_dispatch.c, driven through api_serve (no
 * socket): the loop-thread answers (/healthz, unknown paths), the order
 * of checks on a worker (authentication before the method, the method per
 * route with the methods allowed named), trailing slashes and ids, who may
 * read /metrics, the no-store mark on worker answers, the 500 when a
 * handler answers nothing, and a user authenticated at the gate taken as
 * is (no second lookup).
 */
#include "api_dispatch.h"

#include "api_fixture.h"

static void health(void)
{
    CHECK_EQ(call("GET", "/healthz", NULL, NULL, NULL), 200);
    CHECK_STR(R.type, "application/json");
    CHECK_STR(R.body, "{\"status\":\"ok\"}");
    CHECK_EQ(R.body_len, 15);
    CHECK(hdr("Cache-Control") == NULL); /* answered on the loop, like before */
    CHECK_EQ(call("HEAD", "/healthz", NULL, NULL, NULL), 200);
    CHECK_EQ(call("POST", "/healthz", NULL, NULL, NULL), 405);
    CHECK_PROBLEM(405);
    CHECK_STR(jstr("detail"), "method POST not allowed here (allowed: GET, HEAD)");
    CHECK_STR(jstr("title"), "Method Not Allowed");
    CHECK_STR(hdr("Allow"), "GET, HEAD");
    /* a bad token does not matter: nothing is looked up */
    CHECK_EQ(
        call("GET", "/healthz", &(struct fx_user){"x", AUTH_ROLE_FIELD, "", "bogus"}, NULL, NULL),
        200);
}

static void not_found(void)
{
    static const char *const paths[] = {"/",
                                        "/nowhere",
                                        "/api/v1",
                                        "/api/v2/contacts",
                                        "/api/v1/users/x",
                                        "/healthz/",
                                        "/api/v1/contacts/a/b"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        CHECK_EQ(call("GET", paths[i], &MARIA, NULL, NULL), 404);
        CHECK_PROBLEM(404);
        CHECK_STR(jstr("detail"), "no such resource");
        CHECK_STR(jstr("title"), "Not Found");
        CHECK(json_object_get(J, "errors") == NULL);
        CHECK(hdr("Cache-Control") == NULL);
    }
    /* unknown paths need no credentials to be unknown */
    CHECK_EQ(call("DELETE", "/nowhere", NULL, NULL, NULL), 404);
}

static void methods(void)
{
    static const struct {
        const char *method, *path, *allowed;
    } cases[] = {
        {"PUT", "/api/v1/contacts", "GET, HEAD, POST"},
        {"DELETE", "/api/v1/deals", "GET, HEAD, POST"},
        {"PUT", "/api/v1/contacts/X", "GET, HEAD, PATCH, DELETE"},
        {"POST", "/api/v1/notes/X", "GET, HEAD, PATCH, DELETE"},
        {"POST", "/api/v1/search", "GET, HEAD"},
        {"DELETE", "/api/v1/contacts/X/consents", "GET, HEAD, POST"},
        {"PATCH", "/api/v1/contacts/X/consents/status", "GET, HEAD"},
        {"GET", "/api/v1/contacts/X/consents/K/withdraw", "POST"},
        {"POST", "/metrics", "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ(call(cases[i].method, cases[i].path, &MARIA, NULL, NULL), 405);
        CHECK_PROBLEM(405);
        char want[128];
        snprintf(want, sizeof want, "method %s not allowed here (allowed: %s)", cases[i].method,
                 cases[i].allowed);
        CHECK_STR(jstr("detail"), want);
        /* every 405 names the route's methods in Allow (RFC 9110 15.5.6) */
        CHECK_STR(hdr("Allow"), cases[i].allowed);
        CHECK_STR(hdr("Cache-Control"), "no-store");
    }
    /* no credentials needed to be told: these routes check the method first */
    CHECK_EQ(call("GET", "/api/v1/session", NULL, NULL, NULL), 405);
    CHECK_STR(jstr("detail"), "method GET not allowed here (allowed: POST, DELETE)");
    CHECK_STR(hdr("Allow"), "POST, DELETE");
    CHECK_EQ(call("GET", "/api/v1/consents/confirm", NULL, NULL, NULL), 405);
    CHECK_STR(jstr("detail"), "method GET not allowed here (allowed: POST)");
    CHECK_STR(hdr("Allow"), "POST");
    /* answers that are not 405 carry no Allow */
    CHECK_EQ(call("GET", "/api/v1/contacts", &MARIA, NULL, NULL), 200);
    CHECK(hdr("Allow") == NULL);
    /* everything else authenticates first, then checks the role, then the method */
    CHECK_EQ(call("PUT", "/api/v1/contacts", NULL, NULL, NULL), 401);
    CHECK_EQ(call("PUT", "/api/v1/contacts", &ROOT, NULL, NULL), 403);
    /* HEAD reads like GET */
    CHECK_EQ(call("HEAD", "/api/v1/contacts", &MARIA, NULL, NULL), 200);
}

static void slashes_and_ids(void)
{
    char id[AUTH_ID_LEN], path[160];
    fx_contact(&MARIA, "{\"family_name\":\"Slash\"}", id);
    CHECK_EQ(call("GET", "/api/v1/contacts/", &MARIA, NULL, NULL), 200);
    CHECK(json_is_array(json_object_get(J, "items")));
    snprintf(path, sizeof path, "/api/v1/contacts/%s/", id);
    CHECK_EQ(call("GET", path, &MARIA, NULL, NULL), 200);
    CHECK_STR(jstr("id"), id);
    snprintf(path, sizeof path, "//api//v1/contacts//%s", id);
    CHECK_EQ(call("GET", path, &MARIA, NULL, NULL), 200);
    CHECK_STR(jstr("id"), id);
    /* the id of another collection is not found there */
    snprintf(path, sizeof path, "/api/v1/organizations/%s", id);
    CHECK_EQ(call("GET", path, &MARIA, NULL, NULL), 404);
    CHECK_PROBLEM(404);
}

static void metrics(void)
{
    CHECK_EQ(call("GET", "/metrics", NULL, NULL, NULL), 401);
    CHECK_EQ(call("GET", "/metrics", &ANA, NULL, NULL), 403);
    CHECK_STR(jstr("detail"), "metrics are for the manager and admin roles");
    CHECK_EQ(call("GET", "/metrics", &HQ, NULL, NULL), 403);
    CHECK_EQ(call("GET", "/metrics", &MARIA, NULL, NULL), 200);
    CHECK_STR(R.type, "text/plain; version=0.0.4; charset=utf-8");
    CHECK_CONTAINS(R.body, "outpost_db_size_bytes");
    CHECK_CONTAINS(R.body, "outpost_uptime_seconds");
    CHECK_STR(hdr("Cache-Control"), "no-store");
    CHECK_EQ(call("GET", "/metrics", &ROOT, NULL, NULL), 200);
}

static void unanswered(void)
{
    /* a handler that sets nothing still gets an answer */
    struct api_call c;
    memset(&c, 0, sizeof c);
    c.route.kind = API_ROUTE_RECORD;
    api_dispatch_finish(NULL, &c);
    CHECK_EQ(c.resp.status, 500);
    CHECK_CONTAINS(c.resp.body, "the request was not handled");
    CHECK_EQ(c.resp.no_store, 1);
    api_reply_done(&c.resp);
    /* the early step leaves routed requests to the workers */
    struct api_response r;
    memset(&r, 0, sizeof r);
    CHECK_EQ(api_dispatch_early(&c.route, "GET", &r), 0);
    CHECK_EQ(r.status, 0);
}

/* A request the gate authenticated carries its user (api_request_view.user):
 * dispatch takes it and does not look the token up again. */
static void gate_user(void)
{
    struct auth_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.id, sizeof u.id, "%s", MARIA.id);
    snprintf(u.name, sizeof u.name, "%s", MARIA.name);
    u.role = MARIA.role;
    struct api_request_view v = {
        .method = "GET",
        .path = "/api/v1/contacts",
        .remote = "192.0.2.7:40000",
        .query = "",
        .authorization = "Bearer opk_not_a_token", /* would be 401 if looked up */
        .user = &u,
    };
    CHECK_EQ(fx_serve(&v), 200);
    CHECK(json_is_array(json_object_get(J, "items")));
    v.user = NULL;
    CHECK_EQ(fx_serve(&v), 401);
    /* the gate's role is the one checked */
    u.role = AUTH_ROLE_ADMIN;
    v.user = &u;
    CHECK_EQ(fx_serve(&v), 403);
}

int main(void)
{
    fx_open();
    RUN(health);
    RUN(not_found);
    RUN(methods);
    RUN(slashes_and_ids);
    RUN(metrics);
    RUN(unanswered);
    RUN(gate_user);
    fx_close();
    return tl_report();
}
