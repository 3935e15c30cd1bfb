/*
 * Tests for appliance/api/api_auth.c, driven through api_serve: requests
 * without credentials or with unknown ones (401 with WWW-Authenticate),
 * how the Authorization header is read, roles (403), login and logout
 * with their refusals, the failed-login limiter (429 with Retry-After;
 * the owner still gets in while an attacker's address is locked out), the
 * hashing share (a login flood on the thread pool leaves workers to other
 * calls), and the session lifetime SIGHUP sets.
 */
#include "api_auth.h"

#include <errno.h>
#include <time.h>

#include "api_db.h"
#include "api_dispatch.h"
#include "api_fixture.h"
#include "node_policy.h"

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

/* A login from another client address ("ip:port"). */
static int login_from(const char *remote, const char *name, const char *password)
{
    char body[200];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    struct api_request_view v = {
        .method = "POST",
        .path = "/api/v1/session",
        .remote = remote,
        .query = "",
        .body = body,
        .body_len = strlen(body),
        .content_type = "application/json",
    };
    return fx_serve(&v);
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

/* An attacker's address locked out of a name does not lock out the
 * owner, who logs in from their own address. */
static void owner_not_locked_out(void)
{
    for (int i = 0; i < 5; i++)
        CHECK_EQ(login_from("198.51.100.9:5000", "ben", "wrong password!"), 401);
    CHECK_EQ(login_from("198.51.100.9:5001", "ben", "correct horse ben"), 429);
    CHECK_PROBLEM(429);
    CHECK(hdr("Retry-After") != NULL);
    CHECK_EQ(login_from("192.0.2.50:40000", "ben", "correct horse ben"), 201);
    CHECK_STR(R.user, "ben");
    /* the attacker's address is still locked for that name */
    CHECK_EQ(login_from("198.51.100.9:5002", "ben", "correct horse ben"), 429);
}

/* ---- the hashing share: a login flood leaves workers to the rest ---- */

#define POOL 4      /* UV_THREADPOOL_SIZE for this test, set in main */
#define SLOW_MS 400 /* one injected password check */
#define FLOOD 8     /* logins queued ahead of one GET */

static int verifies; /* password checks run (atomic) */

/* A slow check that knows Maria's password. */
static int slow_verify(const char *password, const char *hash)
{
    __atomic_add_fetch(&verifies, 1, __ATOMIC_SEQ_CST);
    struct timespec ts = {SLOW_MS / 1000, (SLOW_MS % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return hash && !strcmp(password, "correct horse maria") ? 0 : -EACCES;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct share_job {
    uv_work_t work;
    struct api_db *db;
    struct api_auth *auth;
    char remote[32];
    char body[128];
    const char *authz; /* NULL: a login */
    int64_t started_ms;
    int status;
    char retry_after[32];
    int64_t queued_ms, done_ms;
};

static void share_work(uv_work_t *w)
{
    struct share_job *j = w->data;
    struct api_call c;
    memset(&c, 0, sizeof c);
    const char *path = j->authz ? "/api/v1/contacts" : "/api/v1/session";
    struct api_request_view v = {
        .method = j->authz ? "GET" : "POST",
        .path = path,
        .remote = j->remote,
        .query = "",
        .body = j->authz ? NULL : j->body,
        .body_len = j->authz ? 0 : strlen(j->body),
        .authorization = j->authz,
        .content_type = j->authz ? NULL : "application/json",
    };
    j->started_ms = mono_ms();
    api_route_match(path, &c.route);
    if (api_request_init(&c.req, &v) == 0) {
        api_dispatch_run(j->db, j->auth, &c);
        j->status = c.resp.status;
        snprintf(j->retry_after, sizeof j->retry_after, "%s", c.resp.retry_after);
    }
    api_call_done(&c);
    j->done_ms = mono_ms();
}

static void share_after(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

static void hashing_share(void)
{
    struct op_error err;
    op_error_clear(&err);
    struct api_db *db = NULL;
    struct api_auth *auth = NULL;
    struct policy *p = NULL;
    CHECK_EQ(api_db_open(fx_db, POOL, &db, &err), 0);
    CHECK_EQ(node_policy_load(fx_policy, fx_db, api_db_region(db), &p, &err), 0);
    api_db_set_policy(db, p);
    CHECK_EQ(api_auth_new(3600, POOL, &auth, &err), 0);
    CHECK_EQ(api_auth_hash_slots(auth), POOL / 2);
    api_auth_set_verifier(auth, slow_verify);

    /* Maria logs in from her usual address: that pair is now known. */
    static struct share_job jobs[FLOOD + 2];
    struct share_job *maria = &jobs[FLOOD], *get = &jobs[FLOOD + 1];
    memset(maria, 0, sizeof *maria);
    maria->db = db;
    maria->auth = auth;
    snprintf(maria->remote, sizeof maria->remote, "192.0.2.80:4000");
    snprintf(maria->body, sizeof maria->body,
             "{\"name\":\"maria\",\"password\":\"correct horse maria\"}");
    maria->work.data = maria;
    share_work(&maria->work);
    CHECK_EQ(maria->status, 201);

    /* FLOOD logins (each from its own address, so the limiter does not
     * stop them), then Maria's login and one normal call, all queued at
     * once on a pool of POOL threads. */
    char authz[128];
    snprintf(authz, sizeof authz, "Bearer %s", MARIA.token);
    int64_t t0 = mono_ms();
    for (int i = 0; i < FLOOD + 2; i++) {
        struct share_job *j = &jobs[i];
        if (j != maria) {
            memset(j, 0, sizeof *j);
            j->db = db;
            j->auth = auth;
            snprintf(j->remote, sizeof j->remote, "198.51.100.%d:4000", i + 1);
            snprintf(j->body, sizeof j->body, "{\"name\":\"user%d\",\"password\":\"guess\"}", i);
            j->authz = j == get ? authz : NULL;
        }
        j->work.data = j;
        j->status = 0;
        j->queued_ms = mono_ms();
        CHECK_EQ(uv_queue_work(&fx_loop, &j->work, share_work, share_after), 0);
    }
    CHECK_EQ(uv_run(&fx_loop, UV_RUN_DEFAULT), 0);

    CHECK_EQ(get->status, 200);
    int64_t took = get->done_ms - get->queued_ms;
    fprintf(stderr, "# GET behind %d slow logins on %d workers: %lld ms\n", FLOOD, POOL,
            (long long)took);
    CHECK_INT(took, <, SLOW_MS / 2); /* it did not wait behind a password check */
    /* the known pair got the slot kept for it, at once, during the flood */
    CHECK_EQ(maria->status, 201);
    CHECK_INT(maria->started_ms - t0, <, SLOW_MS / 2);
    int hashed = 0, refused = 0;
    for (int i = 0; i < FLOOD; i++) {
        if (jobs[i].status == 401)
            hashed++;
        else if (jobs[i].status == 503) {
            refused++;
            CHECK_STR(jobs[i].retry_after, "1");
        }
    }
    CHECK_EQ(hashed, POOL / 2 - 1); /* the flood gets the slots but the kept one */
    CHECK_EQ(refused, FLOOD - (POOL / 2 - 1));
    CHECK_EQ(__atomic_load_n(&verifies, __ATOMIC_SEQ_CST), 1 + (POOL / 2 - 1) + 1);

    api_auth_free(auth);
    api_db_close(db);
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
    setenv("UV_THREADPOOL_SIZE", "4", 1); /* POOL, before the pool starts */
    fx_open();
    RUN(unauthenticated);
    RUN(bearer_forms);
    RUN(roles);
    RUN(login_and_logout);
    RUN(login_refused);
    RUN(limiter);
    RUN(owner_not_locked_out);
    RUN(hashing_share);
    RUN(session_ttl);
    fx_close();
    return tl_report();
}
