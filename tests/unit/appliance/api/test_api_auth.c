/*
 * Tests for appliance/api/api_auth.c, driven through api_serve: requests
 * without credentials or with unknown ones (401 with WWW-Authenticate),
 * how the Authorization header is read, roles (403), login and logout
 * with their refusals, the failed-login limiter (429 with Retry-After),
 * and the session lifetime SIGHUP sets.
 */
#include "api_auth.h"

#include <time.h>

#include "api_fixture.h"

static int with_authorization(const char *method, const char *path, const char *authz)
{
    struct api_request_view v = {
        .method = method,
        .path = path,
        .remote = "192.0.2.7:40000",
        .query = "",
        .authorization = authz,
    };
    return fx_serve(&v);
}

static int login(const char *name, const char *password)
{
    char body[200];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    return call("POST", "/api/v1/session", NULL, body, NULL);
}

static void unauthenticated(void)
{
    CHECK_EQ(call("GET", "/api/v1/contacts", NULL, NULL, NULL), 401);
    CHECK_PROBLEM(401);
    CHECK_STR(jstr("detail"), "credentials missing: send Authorization: Bearer TOKEN (POST "
                              "/api/v1/session to get one)");
    CHECK_STR(hdr("WWW-Authenticate"), "Bearer realm=\"outpost\"");
    CHECK_STR(hdr("Cache-Control"), "no-store");
    CHECK_STR(R.user, "");

    CHECK_EQ(with_authorization("GET", "/api/v1/contacts", "Basic YW5hOng="), 401);
    CHECK_CONTAINS(jstr("detail"), "credentials missing");
    CHECK_EQ(with_authorization("GET", "/api/v1/contacts", "Bearer opk_not-a-token"), 401);
    CHECK_PROBLEM(401);
    CHECK_STR(jstr("detail"), "the token is unknown, expired or revoked; log in again");
    CHECK_STR(hdr("WWW-Authenticate"), "Bearer realm=\"outpost\"");

    /* a token too long to be one is no credential at all */
    char authz[160];
    snprintf(authz, sizeof authz, "Bearer %s%s", ANA.token, "0123456789012345678901234567890");
    CHECK_EQ(with_authorization("GET", "/api/v1/contacts", authz), 401);
    CHECK_CONTAINS(jstr("detail"), "credentials missing");
}

static void bearer_forms(void)
{
    char authz[160];
    snprintf(authz, sizeof authz, "bearer %s", ANA.token); /* the scheme is case-insensitive */
    CHECK_EQ(with_authorization("GET", "/api/v1/contacts", authz), 200);
    CHECK_STR(R.user, "ana"); /* for the log line */
    snprintf(authz, sizeof authz, "Bearer    %s", ANA.token);
    CHECK_EQ(with_authorization("GET", "/api/v1/contacts", authz), 200);
    CHECK(hdr("WWW-Authenticate") == NULL);
}

static void roles(void)
{
    CHECK_EQ(call("GET", "/api/v1/contacts", &ROOT, NULL, NULL), 403);
    CHECK_PROBLEM(403);
    CHECK_STR(jstr("detail"), "the admin role has no access to CRM records");
    CHECK(hdr("WWW-Authenticate") == NULL);
    CHECK_STR(R.user, "root");
    CHECK_EQ(call("POST", "/api/v1/contacts", &HQ, "{\"family_name\":\"X\"}", NULL), 403);
    CHECK_STR(jstr("detail"), "the hq role has no access to CRM records");
    CHECK_EQ(call("GET", "/api/v1/search?q=x", &HQ, NULL, NULL), 403);
    CHECK_EQ(call("GET", "/api/v1/contacts", &ANA, NULL, NULL), 200);
    CHECK_EQ(call("GET", "/api/v1/contacts", &MARIA, NULL, NULL), 200);
}

static void login_and_logout(void)
{
    CHECK_EQ(login("maria", "correct horse maria"), 201);
    CHECK_STR(R.type, "application/json");
    CHECK_STR(jstr("token_type"), "Bearer");
    CHECK(jstr("expires_at") != NULL);
    json_t *user = json_object_get(J, "user");
    CHECK_STR(json_string_value(json_object_get(user, "name")), "maria");
    CHECK_STR(json_string_value(json_object_get(user, "role")), "manager");
    CHECK_STR(json_string_value(json_object_get(user, "id")), MARIA.id);
    CHECK_STR(R.user, "maria");
    CHECK_STR(hdr("Cache-Control"), "no-store");
    struct fx_user session = {"maria", AUTH_ROLE_MANAGER, "", ""};
    snprintf(session.token, sizeof session.token, "%s", jstr("token") ? jstr("token") : "");
    CHECK(session.token[0] != '\0');

    CHECK_EQ(call("GET", "/api/v1/contacts", &session, NULL, NULL), 200);
    CHECK_EQ(call("DELETE", "/api/v1/session", &session, NULL, NULL), 204);
    CHECK(R.body == NULL);
    CHECK_EQ(call("GET", "/api/v1/contacts", &session, NULL, NULL), 401);
    CHECK_STR(jstr("detail"), "the token is unknown, expired or revoked; log in again");
    CHECK_EQ(call("DELETE", "/api/v1/session", &session, NULL, NULL), 401);
    CHECK_STR(jstr("detail"), "no such live session");
    CHECK_STR(hdr("WWW-Authenticate"), "Bearer realm=\"outpost\"");
    CHECK_EQ(call("DELETE", "/api/v1/session", NULL, NULL, NULL), 401);
    CHECK_STR(jstr("detail"), "no session to end: send Authorization: Bearer TOKEN");
}

static void login_refused(void)
{
    CHECK_EQ(login("ben", "wrong password!"), 401);
    CHECK_PROBLEM(401);
    CHECK_STR(jstr("detail"), "wrong user name or password");
    CHECK(hdr("WWW-Authenticate") == NULL);
    CHECK_EQ(login("nobody", "wrong password!"), 401); /* the same for an unknown user */
    CHECK_STR(jstr("detail"), "wrong user name or password");

    CHECK_EQ(call("POST", "/api/v1/session", NULL, "{\"name\":\"ben\"}", NULL), 422);
    CHECK_PROBLEM(422);
    CHECK_STR(jstr("detail"), "name and password are required strings");
    CHECK_STR(pointer(), "/password");
    CHECK_EQ(call("POST", "/api/v1/session", NULL, "{\"password\":\"x\",\"name\":7}", NULL), 422);
    CHECK_STR(pointer(), "/name");
    CHECK_EQ(call("POST", "/api/v1/session", NULL, "{\"name\":", NULL), 400);
    CHECK_CONTAINS(jstr("detail"), "invalid JSON at line 1");
    struct api_request_view v = {
        .method = "POST",
        .path = "/api/v1/session",
        .remote = "192.0.2.7:40000",
        .query = "",
        .body = "name=ben",
        .body_len = 8,
        .content_type = "application/x-www-form-urlencoded",
    };
    CHECK_EQ(fx_serve(&v), 415);
    CHECK_STR(jstr("detail"), "send the body as application/json");
}

static void limiter(void)
{
    /* five failures lock the name out, the right password included */
    for (int i = 0; i < 5; i++)
        CHECK_EQ(login("hq", "wrong password!"), 401);
    CHECK_EQ(login("hq", "correct horse hq"), 429);
    CHECK_PROBLEM(429);
    CHECK_STR(jstr("detail"), "too many failed logins; wait before trying again");
    const char *retry = hdr("Retry-After");
    CHECK(retry != NULL);
    long secs = retry ? strtol(retry, NULL, 10) : 0;
    CHECK_INT(secs, >=, 1);
    CHECK_INT(secs, <=, 30);
    /* others are not locked out */
    CHECK_EQ(login("ana", "correct horse ana"), 201);
}

static void session_ttl(void)
{
    api_set_options(A, 120, 0);
    time_t before = time(NULL);
    CHECK_EQ(login("ben", "correct horse ben"), 201);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *exp = jstr("expires_at");
    CHECK(exp && strptime(exp, "%Y-%m-%dT%H:%M:%SZ", &tm));
    time_t at = timegm(&tm);
    CHECK_INT(at, >=, before + 120);
    CHECK_INT(at, <=, time(NULL) + 120);
    api_set_options(A, 3600, 0);
}

int main(void)
{
    fx_open();
    RUN(unauthenticated);
    RUN(bearer_forms);
    RUN(roles);
    RUN(login_and_logout);
    RUN(login_refused);
    RUN(limiter);
    RUN(session_ttl);
    fx_close();
    return tl_report();
}
