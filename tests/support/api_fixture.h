/*
 * A node for the API unit tests (test_api_*.c): a database in a temporary
 * directory, initialized for EU-DE under a test policy (a forbidden
 * field, a custom field, consent modes), five users with API tokens, and
 * an api serving it through api_serve: no socket, no thread pool. call()
 * builds a request the way http_server hands it over and keeps the
 * answer in R, its parsed JSON body in J.
 */
#ifndef OUTPOST_TEST_API_FIXTURE_H
#define OUTPOST_TEST_API_FIXTURE_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api.h"
#include "api_reply.h"
#include "api_request.h"
#include "auth.h"
#include "store_fixture.h"

#define FX_POLICY                                                                                  \
    "format: outpost-region-policy/1\n"                                                            \
    "region: EU-DE\n"                                                                              \
    "country: DE\n"                                                                                \
    "name: API test\n"                                                                             \
    "default_class: local_only\n"                                                                  \
    "default_basis: \"test\"\n"                                                                    \
    "custom_fields:\n"                                                                             \
    "  - entity: contact\n"                                                                        \
    "    name: segment\n"                                                                          \
    "    type: enum\n"                                                                             \
    "    values: [retail, wholesale]\n"                                                            \
    "    basis: \"test\"\n"                                                                        \
    "forbidden:\n"                                                                                 \
    "  - field: contact.birth_date\n"                                                              \
    "    reason: \"not asked here\"\n"                                                             \
    "    basis: \"rule BD-1\"\n"                                                                   \
    "consent:\n"                                                                                   \
    "  email: {mode: double_opt_in, token_ttl_hours: 2, basis: \"test\"}\n"                        \
    "  sms: {mode: single_opt_in, basis: \"test\"}\n"                                              \
    "  call: {mode: opt_out, basis: \"test\"}\n"

/* The users: name, role, and after fx_open their id and API token. */
struct fx_user {
    const char *name;
    enum auth_role role;
    char id[AUTH_ID_LEN];
    char token[AUTH_TOKEN_BUF];
};

static struct fx_user ANA __attribute__((unused)) = {"ana", AUTH_ROLE_FIELD, "", ""};
static struct fx_user BEN __attribute__((unused)) = {"ben", AUTH_ROLE_FIELD, "", ""};
static struct fx_user MARIA __attribute__((unused)) = {"maria", AUTH_ROLE_MANAGER, "", ""};
static struct fx_user ROOT __attribute__((unused)) = {"root", AUTH_ROLE_ADMIN, "", ""};
static struct fx_user HQ __attribute__((unused)) = {"hq", AUTH_ROLE_HQ, "", ""};

static char fx_policy[FX_PATH_MAX];
static uv_loop_t fx_loop;
static struct api *A;

static struct api_response R; /* the last answer */
static json_t *J;             /* its body parsed, when it is JSON */

/* The password of a fixture user: "correct horse NAME". */
static inline void fx_password(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "correct horse %s", name);
}

static inline void fx_open(void)
{
    struct op_error err;
    op_error_clear(&err);
    fx_tmpdir("api");
    fx_write_file(fx_path(fx_policy, sizeof fx_policy, "EU-DE.yaml"), FX_POLICY);
    struct store *s = fx_store("node.db");
    struct auth *au = NULL;
    if (auth_new(s, &au, &err) < 0)
        fx_die("auth_new", &err);
    struct fx_user *users[] = {&ANA, &BEN, &MARIA, &ROOT, &HQ};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        char pw[64];
        fx_password(users[i]->name, pw, sizeof pw);
        if (auth_user_create(au, users[i]->name, users[i]->role, NULL, pw, users[i]->id, &err) <
                0 ||
            auth_token_create(au, users[i]->name, "test", 0, users[i]->token, NULL, &err) < 0)
            fx_die(users[i]->name, &err);
    }
    auth_free(au);
    store_close(s);
    if (uv_loop_init(&fx_loop) < 0)
        fx_die("uv_loop_init", NULL);
    struct api_options o = {
        .db_path = fx_db,
        .workers = 2,
        .session_ttl_s = 3600,
        .log_requests = 0,
        .policy_file = fx_policy,
    };
    if (api_new(&fx_loop, &o, &A, &err) < 0)
        fx_die("api_new", &err);
}

static inline void fx_reset(void)
{
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    json_decref(J);
    J = NULL;
}

static inline void fx_close(void)
{
    fx_reset();
    api_free(A);
    (void)uv_loop_close(&fx_loop);
    if (fx_remove_tree(fx_dir) < 0)
        fprintf(stderr, "could not remove %s\n", fx_dir);
}

/* Serves v; returns the status. */
static inline int fx_serve(const struct api_request_view *v)
{
    fx_reset();
    int rc = api_serve(A, v, &R);
    CHECK_EQ(rc, 0);
    if (R.body && R.type && strstr(R.type, "json"))
        J = json_loadb(R.body, R.body_len, 0, NULL);
    return R.status;
}

/* METHOD PATH[?QUERY] as user u (NULL: no credentials) with a JSON body
 * (NULL: none) and If-Match (NULL: none); returns the status. */
static inline int call(const char *method, const char *path, const struct fx_user *u,
                       const char *body, const char *if_match)
{
    char p[512], authz[128];
    snprintf(p, sizeof p, "%s", path);
    char *q = strchr(p, '?');
    if (q)
        *q++ = '\0';
    if (u)
        snprintf(authz, sizeof authz, "Bearer %s", u->token);
    struct api_request_view v = {
        .method = method,
        .path = p,
        .remote = "192.0.2.7:40000",
        .query = q ? q : "",
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .authorization = u ? authz : NULL,
        .if_match = if_match,
        .content_type = body ? "application/json" : NULL,
    };
    return fx_serve(&v);
}

/* A response header of R, or NULL. */
static inline const char *hdr(const char *name)
{
    struct api_header h[API_REPLY_HEADERS_MAX];
    unsigned n = api_reply_headers(&R, h);
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(h[i].name, name))
            return h[i].value;
    return NULL;
}

/* A string member of J, or NULL. */
static inline const char *jstr(const char *key)
{
    return json_string_value(json_object_get(J, key));
}

/* The problem's errors[0].pointer, or NULL when it names no field. */
static inline const char *pointer(void)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(J, "errors"), 0), "pointer"));
}

/* Checks that R is a problem+json of this status. */
#define CHECK_PROBLEM(st)                                                                          \
    do {                                                                                           \
        CHECK_EQ(R.status, (st));                                                                  \
        CHECK_STR(R.type, "application/problem+json");                                             \
        CHECK_EQ(json_integer_value(json_object_get(J, "status")), (st));                          \
        CHECK_STR(jstr("type"), "about:blank");                                                    \
    } while (0)

/* Creates a contact as u from a JSON body and copies its id; fails the
 * test run if it cannot. */
static inline void fx_contact(const struct fx_user *u, const char *body, char id[AUTH_ID_LEN])
{
    if (call("POST", "/api/v1/contacts?skip_duplicate_check=true", u, body, NULL) != 201 ||
        !jstr("id")) {
        fprintf(stderr, "fixture: cannot create a contact: %s\n", R.body ? R.body : "");
        exit(1);
    }
    snprintf(id, AUTH_ID_LEN, "%s", jstr("id"));
}

#endif
