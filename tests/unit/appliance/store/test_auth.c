/* Tests for appliance/store/auth.c: password hashing and its limits, users,
 * sessions (expiry on an injected clock, logout, disabled users, password
 * changes, no user enumeration), API tokens and the failed-login limiter
 * (per name and address, spraying, distributed guessing, parallel guesses,
 * a bounded table). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "db.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

static uint64_t fake_now = 1790000000000u; /* Unix ms, somewhere in 2026 */

static uint64_t fake_clock(void *ctx)
{
    return *(uint64_t *)ctx;
}

struct fixture {
    struct store *s;
    struct auth *a;
};

static struct fixture open_fixture(const char *name)
{
    struct fixture f = {fx_store(name), NULL};
    struct op_error err;
    op_error_clear(&err);
    if (auth_new(f.s, &f.a, &err) < 0)
        fx_die("auth_new", &err);
    store_set_actor(f.s, "test:admin", "127.0.0.1");
    auth_set_clock(f.a, fake_clock, &fake_now);
    return f;
}

static void close_fixture(struct fixture *f)
{
    auth_free(f->a);
    store_close(f->s);
}

static void add_user(struct fixture *f, const char *name, enum auth_role role, const char *pw)
{
    struct op_error err;
    op_error_clear(&err);
    int rc = auth_user_create(f->a, name, role, NULL, pw, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "add_user %s: %d %s\n", name, rc, err.msg);
    CHECK_EQ(rc, 0);
}

/* A fixture whose one user is ana, with role and the password "correct
 * horse battery". */
static struct fixture open_with_ana(const char *name, enum auth_role role)
{
    struct fixture f = open_fixture(name);
    add_user(&f, "ana", role, "correct horse battery");
    return f;
}

static int login(struct fixture *f, const char *name, const char *pw, char token[AUTH_TOKEN_BUF],
                 struct op_error *err)
{
    op_error_clear(err);
    return auth_session_create(f->a, name, pw, "192.0.2.7", 0, token, err);
}

static int lookup(struct fixture *f, const char *token, struct auth_user *u)
{
    struct op_error err;
    op_error_clear(&err);
    return auth_lookup_bearer(f->a, token, u, &err);
}

/* ---- hashing ---- */

static void hash_and_verify(void)
{
    char *h1 = NULL, *h2 = NULL;
    struct op_error err;
    CHECK_EQ(auth_password_hash("correct horse battery", &h1, &err), 0);
    CHECK_EQ(auth_password_hash("correct horse battery", &h2, &err), 0);
    CHECK(h1 && !strncmp(h1, "$y$", 3));
    CHECK(h1 && h2 && strcmp(h1, h2) != 0); /* salted */
    CHECK_EQ(auth_password_verify("correct horse battery", h1), 0);
    CHECK_EQ(auth_password_verify("correct horse battery", h2), 0);
    CHECK_EQ(auth_password_verify("correct horse batterY", h1), -EACCES);
    CHECK_EQ(auth_password_verify("", h1), -EACCES);
    CHECK_EQ(auth_password_verify("correct horse battery", "not a hash"), -EINVAL);
    CHECK_EQ(auth_password_verify("correct horse battery", NULL), -EINVAL);
    free(h1);
    free(h2);
}

static void password_limits(void)
{
    struct op_error err;
    char *h = NULL;
    op_error_clear(&err);
    CHECK_EQ(auth_password_hash("123456789", &h, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "shorter than 10 characters");
    CHECK(h == NULL);
    CHECK_EQ(auth_password_check("1234567890", &err), 0);
    /* characters, not bytes: nine umlauts are 18 bytes but 9 characters */
    CHECK_EQ(auth_password_check("äöüäöüäöü", &err), -EINVAL);
    CHECK_EQ(auth_password_check("äöüäöüäöüß", &err), 0);
    char big[AUTH_PASSWORD_MAX_BYTES + 2];
    memset(big, 'x', sizeof big);
    big[AUTH_PASSWORD_MAX_BYTES] = '\0';
    CHECK_EQ(auth_password_check(big, &err), 0);
    big[AUTH_PASSWORD_MAX_BYTES] = 'x';
    big[AUTH_PASSWORD_MAX_BYTES + 1] = '\0';
    op_error_clear(&err);
    CHECK_EQ(auth_password_check(big, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "longer than 1024 bytes");
    CHECK_EQ(auth_password_check("tab\there12345", &err), -EINVAL);
    CHECK_EQ(auth_password_check("bad \xc3\x28 utf8 here", &err), -EINVAL);
    CHECK_EQ(auth_password_check(NULL, &err), -EINVAL);
}

static void names_and_roles(void)
{
    struct op_error err;
    CHECK_EQ(auth_name_check("ana.maria@branch-1", &err), 0);
    CHECK_EQ(auth_name_check("Ana", &err), -EINVAL);
    CHECK_EQ(auth_name_check("", &err), -EINVAL);
    CHECK_EQ(auth_name_check("-ana", &err), -EINVAL);
    CHECK_EQ(auth_name_check("ana maria", &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "character 4");
    char longname[80];
    memset(longname, 'a', sizeof longname);
    longname[65] = '\0';
    CHECK_EQ(auth_name_check(longname, &err), -EINVAL);
    enum auth_role r;
    CHECK_EQ(auth_role_parse("manager", &r), 0);
    CHECK_EQ(r, AUTH_ROLE_MANAGER);
    CHECK_EQ(auth_role_parse("Manager", &r), -EINVAL);
    CHECK_STR(auth_role_name(AUTH_ROLE_HQ), "hq");
}

/* ---- users ---- */

static void users(void)
{
    struct fixture f = open_fixture("users.db");
    struct op_error err;
    char id[AUTH_ID_LEN];
    op_error_clear(&err);
    CHECK_EQ(auth_user_create(f.a, "ana", AUTH_ROLE_FIELD, "Ana Lima", "correct horse battery", id,
                              &err),
             0);
    op_error_clear(&err);
    CHECK_EQ(
        auth_user_create(f.a, "ana", AUTH_ROLE_ADMIN, NULL, "correct horse battery", NULL, &err),
        -EEXIST);
    CHECK_CONTAINS(err.msg, "a user named 'ana' already exists");
    CHECK_EQ(auth_user_create(f.a, "Bad Name", AUTH_ROLE_FIELD, NULL, "correct horse battery", NULL,
                              &err),
             -EINVAL);
    CHECK_EQ(auth_user_create(f.a, "bo", AUTH_ROLE_FIELD, NULL, "short", NULL, &err), -EINVAL);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM users"), 1);

    /* The store never hands the hash out; the audit log has the write. */
    json_t *u = NULL;
    CHECK_EQ(store_user_get(f.s, id, &u, &err), 0);
    CHECK(u && json_object_get(u, "password_hash") == NULL);
    CHECK_STR(json_string_value(json_object_get(u, "display_name")), "Ana Lima");
    json_decref(u);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM audit_log WHERE entity = 'user' AND "
                           "action = 'create' AND actor = 'test:admin'"),
             1);

    enum auth_role role;
    int disabled = -1;
    char found[AUTH_ID_LEN];
    CHECK_EQ(auth_user_find(f.a, "ana", found, &role, &disabled, &err), 0);
    CHECK_STR(found, id);
    CHECK_EQ(role, AUTH_ROLE_FIELD);
    CHECK_EQ(disabled, 0);
    CHECK_EQ(auth_user_find(f.a, "nobody", found, NULL, NULL, &err), -ENOENT);

    /* Disabling twice writes once. */
    CHECK_EQ(auth_user_set_disabled(f.a, "ana", 1, &err), 0);
    CHECK_EQ(auth_user_set_disabled(f.a, "ana", 1, &err), 0);
    CHECK_EQ(fx_count(f.s, "SELECT version FROM users WHERE name = 'ana'"), 2);
    CHECK_EQ(auth_user_set_disabled(f.a, "nobody", 1, &err), -ENOENT);
    CHECK_EQ(auth_user_set_password(f.a, "nobody", "correct horse battery", &err), -ENOENT);
    CHECK_EQ(auth_user_set_password(f.a, "ana", "short", &err), -EINVAL);
    CHECK_EQ(fx_count(f.s, "SELECT version FROM users WHERE name = 'ana'"), 2);
    close_fixture(&f);
}

/* ---- sessions ---- */

static void sessions_basic(void)
{
    struct fixture f = open_with_ana("sessions.db", AUTH_ROLE_MANAGER);
    char tok[AUTH_TOKEN_BUF] = "";
    struct op_error err;
    CHECK_EQ(login(&f, "ana", "correct horse battery", tok, &err), 0);
    CHECK_EQ(strlen(tok), 43);
    struct auth_user u;
    CHECK_EQ(lookup(&f, tok, &u), 0);
    CHECK_STR(u.name, "ana");
    CHECK_EQ(u.role, AUTH_ROLE_MANAGER);
    CHECK_EQ(u.via_api_token, 0);
    CHECK_EQ(u.expires_ms, (int64_t)fake_now + AUTH_SESSION_TTL_DEFAULT * 1000LL);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM sessions WHERE remote_addr = '192.0.2.7'"), 1);

    /* Only a hash is stored: the token text is nowhere in the files. */
    char wal[320];
    snprintf(wal, sizeof wal, "%s-wal", fx_db);
    CHECK(!fx_file_contains(fx_db, tok));
    CHECK(!fx_file_contains(wal, tok));
    CHECK_EQ(fx_count(f.s, "SELECT length(token_hash) FROM sessions"), 32);

    /* Two logins are two sessions with different tokens. */
    char tok2[AUTH_TOKEN_BUF];
    CHECK_EQ(login(&f, "ana", "correct horse battery", tok2, &err), 0);
    CHECK(strcmp(tok, tok2) != 0);

    /* Garbage is refused without a database hit, and so is a near miss. */
    CHECK_EQ(lookup(&f, "", &u), -EACCES);
    CHECK_EQ(lookup(&f, "abc", &u), -EACCES);
    CHECK_EQ(lookup(&f, NULL, &u), -EACCES);
    char bad[AUTH_TOKEN_BUF];
    memcpy(bad, tok, sizeof bad);
    bad[5] = bad[5] == 'A' ? 'B' : 'A';
    CHECK_EQ(lookup(&f, bad, &u), -EACCES);
    bad[5] = '+';
    CHECK_EQ(lookup(&f, bad, &u), -EACCES);

    /* Logout ends exactly that session. */
    op_error_clear(&err);
    CHECK_EQ(auth_session_revoke(f.a, tok, &err), 0);
    CHECK_EQ(lookup(&f, tok, &u), -EACCES);
    CHECK_EQ(lookup(&f, tok2, &u), 0);
    CHECK_EQ(auth_session_revoke(f.a, tok, &err), -EACCES);

    /* TTL limits. */
    CHECK_EQ(auth_session_create(f.a, "ana", "correct horse battery", NULL, 5, tok, &err), -EINVAL);
    close_fixture(&f);
}

static void sessions_expire(void)
{
    struct fixture f = open_with_ana("expire.db", AUTH_ROLE_FIELD);
    uint64_t start = fake_now;
    char tok[AUTH_TOKEN_BUF];
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(auth_session_create(f.a, "ana", "correct horse battery", NULL, 3600, tok, &err), 0);
    struct auth_user u;
    fake_now = start + 3599 * 1000;
    CHECK_EQ(lookup(&f, tok, &u), 0);
    /* Fixed expiry: use does not extend it. */
    CHECK_EQ(fx_count(f.s, "SELECT last_used_ms - created_ms FROM sessions"), 3599 * 1000);
    fake_now = start + 3600 * 1000;
    CHECK_EQ(lookup(&f, tok, &u), -EACCES);
    CHECK_EQ(auth_session_revoke(f.a, tok, &err), -EACCES);
    /* The next login (or a prune) clears expired rows. */
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM sessions"), 1);
    char tok2[AUTH_TOKEN_BUF];
    CHECK_EQ(login(&f, "ana", "correct horse battery", tok2, &err), 0);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM sessions"), 1);
    fake_now += (uint64_t)AUTH_SESSION_TTL_DEFAULT * 1000;
    CHECK_EQ(auth_sessions_prune(f.a, &err), 1);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM sessions"), 0);
    close_fixture(&f);
}

static void sessions_capped(void)
{
    struct fixture f = open_with_ana("cap.db", AUTH_ROLE_FIELD);
    char first[AUTH_TOKEN_BUF], tok[AUTH_TOKEN_BUF];
    struct op_error err;
    CHECK_EQ(auth_session_issue(f.a, "x", NULL, 0, tok, &err) < 0, 1); /* no such user id */
    char id[AUTH_ID_LEN];
    CHECK_EQ(auth_user_find(f.a, "ana", id, NULL, NULL, &err), 0);
    for (int i = 0; i < AUTH_SESSIONS_PER_USER + 5; i++) {
        fake_now += 1000;
        CHECK_EQ(auth_session_issue(f.a, id, NULL, 0, i ? tok : first, &err), 0);
    }
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM sessions"), AUTH_SESSIONS_PER_USER);
    struct auth_user u;
    CHECK_EQ(lookup(&f, first, &u), -EACCES); /* the oldest went first */
    CHECK_EQ(lookup(&f, tok, &u), 0);
    close_fixture(&f);
}

static void disabled_users(void)
{
    struct fixture f = open_with_ana("disabled.db", AUTH_ROLE_FIELD);
    char tok[AUTH_TOKEN_BUF], api[AUTH_TOKEN_BUF];
    struct op_error err;
    CHECK_EQ(login(&f, "ana", "correct horse battery", tok, &err), 0);
    CHECK_EQ(auth_token_create(f.a, "ana", "sync script", 0, api, NULL, &err), 0);
    CHECK_EQ(auth_user_set_disabled(f.a, "ana", 1, &err), 0);
    struct auth_user u;
    CHECK_EQ(lookup(&f, tok, &u), -EACCES);
    CHECK_EQ(lookup(&f, api, &u), -EACCES);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM sessions"), 0);
    CHECK_EQ(login(&f, "ana", "correct horse battery", tok, &err), -EPERM);
    CHECK_CONTAINS(err.msg, "disabled");
    /* A wrong password for a disabled account says nothing about the state. */
    CHECK_EQ(login(&f, "ana", "wrong horse battery", tok, &err), -EACCES);
    CHECK_STR(err.msg, "wrong user name or password");
    CHECK_EQ(auth_token_create(f.a, "ana", NULL, 0, api, NULL, &err), -EPERM);

    /* Even a disabled flag set behind auth's back is honoured at lookup. */
    CHECK_EQ(auth_user_set_disabled(f.a, "ana", 0, &err), 0);
    CHECK_EQ(login(&f, "ana", "correct horse battery", tok, &err), 0);
    CHECK_EQ(lookup(&f, api, &u), 0); /* the API token works again */
    CHECK_EQ(u.via_api_token, 1);
    CHECK_EQ(sqlite3_exec(store_db(f.s), "UPDATE users SET disabled = 1", NULL, NULL, NULL), 0);
    CHECK_EQ(lookup(&f, tok, &u), -EACCES);
    CHECK_EQ(
        sqlite3_exec(store_db(f.s), "UPDATE users SET disabled = 0, deleted = 1", NULL, NULL, NULL),
        0);
    CHECK_EQ(lookup(&f, tok, &u), -EACCES); /* tombstoned user */
    close_fixture(&f);
}

/* A token of scope metrics carries its scope to every lookup, and to the
 * listing; a session and an unscoped token carry none. A scope that does
 * not exist, or a metrics token for a role that may not read /metrics, is
 * refused with the reason and no row is written. */
static int scope_of(void *ctx, const struct auth_token_info *t)
{
    ((enum auth_scope *)ctx)[t->id] = t->scope;
    return 0;
}

static void token_scopes(void)
{
    struct fixture f = open_with_ana("scopes.db", AUTH_ROLE_FIELD);
    add_user(&f, "maria", AUTH_ROLE_MANAGER, "another long password");
    char api[AUTH_TOKEN_BUF], sess[AUTH_TOKEN_BUF], all[AUTH_TOKEN_BUF];
    struct op_error err;
    int64_t id = 0, id_all = 0;
    CHECK_EQ(
        auth_token_create_scoped(f.a, "maria", "prometheus", 0, AUTH_SCOPE_METRICS, api, &id, &err),
        0);
    CHECK_EQ(auth_token_create(f.a, "maria", NULL, 0, all, &id_all, &err), 0);
    CHECK_EQ(login(&f, "maria", "another long password", sess, &err), 0);
    struct auth_user u;
    CHECK_EQ(lookup(&f, api, &u), 0);
    CHECK_EQ(u.scope, AUTH_SCOPE_METRICS);
    CHECK_EQ(u.role, AUTH_ROLE_MANAGER);
    CHECK_EQ(lookup(&f, all, &u), 0);
    CHECK_EQ(u.scope, AUTH_SCOPE_ALL);
    CHECK_EQ(lookup(&f, sess, &u), 0);
    CHECK_EQ(u.scope, AUTH_SCOPE_ALL);
    enum auth_scope seen[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    CHECK(id > 0 && id < 8 && id_all > 0 && id_all < 8);
    CHECK_EQ(auth_token_each(f.a, "maria", scope_of, seen, &err), 0);
    CHECK_EQ(seen[id], AUTH_SCOPE_METRICS);
    CHECK_EQ(seen[id_all], AUTH_SCOPE_ALL);

    enum auth_scope sc = AUTH_SCOPE_ALL;
    CHECK_EQ(auth_scope_parse("metrics", &sc, &err), 0);
    CHECK_EQ(sc, AUTH_SCOPE_METRICS);
    sc = AUTH_SCOPE_ALL;
    CHECK_EQ(auth_scope_parse("contacts", &sc, &err), -EINVAL);
    CHECK_STR(err.msg, "scope: unknown scope 'contacts' (expected: metrics)");
    CHECK_STR(err.field, "scope");
    CHECK_EQ(auth_scope_parse("", &sc, &err), -EINVAL);
    CHECK_EQ(sc, AUTH_SCOPE_ALL);

    int64_t before = fx_count(f.s, "SELECT count(*) FROM api_tokens");
    op_error_clear(&err);
    CHECK_EQ(auth_token_create_scoped(f.a, "ana", NULL, 0, AUTH_SCOPE_METRICS, api, NULL, &err),
             -EINVAL);
    CHECK_CONTAINS(err.msg, "scope metrics: user 'ana' has the field role");
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM api_tokens"), before);
    /* the schema holds the same line */
    CHECK(sqlite3_exec(store_db(f.s), "UPDATE api_tokens SET scope = 'contacts'", NULL, NULL,
                       NULL) != SQLITE_OK);
    close_fixture(&f);
}

static void password_change_ends_sessions(void)
{
    struct fixture f = open_with_ana("passwd.db", AUTH_ROLE_FIELD);
    add_user(&f, "bo", AUTH_ROLE_FIELD, "another long password");
    char a1[AUTH_TOKEN_BUF], a2[AUTH_TOKEN_BUF], b1[AUTH_TOKEN_BUF], api[AUTH_TOKEN_BUF];
    struct op_error err;
    CHECK_EQ(login(&f, "ana", "correct horse battery", a1, &err), 0);
    CHECK_EQ(login(&f, "ana", "correct horse battery", a2, &err), 0);
    CHECK_EQ(login(&f, "bo", "another long password", b1, &err), 0);
    CHECK_EQ(auth_token_create(f.a, "ana", NULL, 0, api, NULL, &err), 0);
    op_error_clear(&err);
    CHECK_EQ(auth_user_set_password(f.a, "ana", "a brand new passphrase", &err), 0);
    struct auth_user u;
    CHECK_EQ(lookup(&f, a1, &u), -EACCES);
    CHECK_EQ(lookup(&f, a2, &u), -EACCES);
    CHECK_EQ(lookup(&f, b1, &u), 0);  /* other users keep theirs */
    CHECK_EQ(lookup(&f, api, &u), 0); /* API tokens are separate credentials */
    CHECK_EQ(login(&f, "ana", "correct horse battery", a1, &err), -EACCES);
    CHECK_EQ(login(&f, "ana", "a brand new passphrase", a1, &err), 0);
    /* The change is a versioned, audited store write that names no value. */
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM audit_log WHERE action = 'update' AND "
                           "detail LIKE '%password_hash%' AND detail NOT LIKE '%$y$%'"),
             1);
    close_fixture(&f);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void no_user_enumeration(void)
{
    struct fixture f = open_with_ana("enum.db", AUTH_ROLE_FIELD);
    char tok[AUTH_TOKEN_BUF];
    struct op_error e1, e2, e3;
    CHECK_EQ(login(&f, "ana", "wrong horse battery", tok, &e1), -EACCES);
    CHECK_EQ(login(&f, "nobody", "wrong horse battery", tok, &e2), -EACCES);
    CHECK_EQ(login(&f, "ana", NULL, tok, &e3), -EACCES);
    CHECK_STR(e1.msg, e2.msg);
    CHECK_STR(e1.msg, e3.msg);
    CHECK_STR(e1.field, e2.field);

    /* Same work: an unknown user still costs one yescrypt run. Medians of
     * a few tries, with wide bounds; a missing dummy hash would make the
     * unknown-user case ~100 times faster. */
    enum { N = 5 };
    double known[N], unknown[N];
    for (int i = 0; i < N; i++) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        (void)login(&f, "ana", "wrong horse battery", tok, &e1);
        known[i] = ms_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        (void)login(&f, "nobody", "wrong horse battery", tok, &e1);
        unknown[i] = ms_since(&t0);
    }
    qsort(known, N, sizeof known[0], cmp_double);
    qsort(unknown, N, sizeof unknown[0], cmp_double);
    double ratio = unknown[N / 2] / known[N / 2];
    if (ratio < 0.33 || ratio > 3.0)
        fprintf(stderr, "login times: known user %.2f ms, unknown user %.2f ms\n", known[N / 2],
                unknown[N / 2]);
    CHECK(ratio >= 0.33 && ratio <= 3.0);
    CHECK(known[N / 2] > 1.0); /* yescrypt really ran */
    close_fixture(&f);
}

static void read_only_lookup(void)
{
    struct fixture f = open_with_ana("readonly.db", AUTH_ROLE_FIELD);
    char tok[AUTH_TOKEN_BUF];
    struct op_error err;
    CHECK_EQ(login(&f, "ana", "correct horse battery", tok, &err), 0);
    struct store *ro = NULL;
    struct auth *ra = NULL;
    op_error_clear(&err);
    CHECK_EQ(store_open(fx_db, DB_OPEN_READONLY, &ro, &err), 0);
    CHECK_EQ(auth_new(ro, &ra, &err), 0);
    if (!ra)
        return;
    auth_set_clock(ra, fake_clock, &fake_now);
    struct auth_user u;
    CHECK_EQ(auth_lookup_bearer(ra, tok, &u, &err), 0);
    CHECK_EQ(u.touch_due, 0); /* just made: nothing to record */
    fake_now += 120000;
    CHECK_EQ(auth_lookup_bearer(ra, tok, &u, &err), 0);
    CHECK_EQ(u.touch_due, 1);
    CHECK_EQ(fx_count(f.s, "SELECT last_used_ms = created_ms FROM sessions"), 1);
    CHECK_EQ(auth_touch(f.a, &u, &err), 0);
    CHECK_EQ(fx_count(f.s, "SELECT last_used_ms - created_ms FROM sessions"), 120000);
    /* On a writable connection the lookup records it itself. */
    fake_now += 120000;
    CHECK_EQ(lookup(&f, tok, &u), 0);
    CHECK_EQ(u.touch_due, 0);
    CHECK_EQ(fx_count(f.s, "SELECT last_used_ms - created_ms FROM sessions"), 240000);
    auth_free(ra);
    store_close(ro);
    close_fixture(&f);
}

/* ---- API tokens ---- */

struct listing {
    int n;
    int64_t ids[8];
    int revoked[8];
    char labels[8][AUTH_LABEL_MAX + 1];
};

static int collect(void *ctx, const struct auth_token_info *t)
{
    struct listing *l = ctx;
    if (l->n < 8) {
        l->ids[l->n] = t->id;
        l->revoked[l->n] = t->revoked_ms != 0;
        snprintf(l->labels[l->n], sizeof l->labels[0], "%s", t->label);
    }
    l->n++;
    return 0;
}

static void api_tokens(void)
{
    struct fixture f = open_with_ana("tokens.db", AUTH_ROLE_ADMIN);
    add_user(&f, "bo", AUTH_ROLE_HQ, "another long password");
    uint64_t start = fake_now;
    char t1[AUTH_TOKEN_BUF], t2[AUTH_TOKEN_BUF], t3[AUTH_TOKEN_BUF];
    int64_t id1 = 0, id2 = 0, id3 = 0;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(auth_token_create(f.a, "ana", "backup job", 0, t1, &id1, &err), 0);
    CHECK_EQ(strncmp(t1, "opk_", 4), 0);
    CHECK_EQ(strlen(t1), 47);
    CHECK_EQ(auth_token_create(f.a, "ana", NULL, 1, t2, &id2, &err), 0);
    CHECK_EQ(auth_token_create(f.a, "bo", "reports", 30, t3, &id3, &err), 0);
    CHECK(id1 < id2 && id2 < id3);

    struct auth_user u;
    CHECK_EQ(lookup(&f, t1, &u), 0);
    CHECK_STR(u.name, "ana");
    CHECK_EQ(u.role, AUTH_ROLE_ADMIN);
    CHECK_EQ(u.via_api_token, 1);
    CHECK_EQ(u.credential_id, id1);
    CHECK_EQ(u.expires_ms, 0);
    CHECK_EQ(lookup(&f, t3, &u), 0);
    CHECK_EQ(u.role, AUTH_ROLE_HQ);
    CHECK(!fx_file_contains(fx_db, t1));

    /* A session-shaped string is not an API token and vice versa. */
    CHECK_EQ(lookup(&f, t1 + 4, &u), -EACCES);
    CHECK_EQ(auth_session_revoke(f.a, t1, &err), -EACCES);

    /* Expiry: one day. */
    fake_now = start + 86400000 - 1;
    CHECK_EQ(lookup(&f, t2, &u), 0);
    fake_now = start + 86400000;
    CHECK_EQ(lookup(&f, t2, &u), -EACCES);
    CHECK_EQ(lookup(&f, t1, &u), 0);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM api_tokens WHERE last_used_ms IS NOT NULL"), 3);

    /* Revocation: immediate, idempotent, unknown ids refused. */
    CHECK_EQ(auth_token_revoke(f.a, id1, &err), 0);
    CHECK_EQ(lookup(&f, t1, &u), -EACCES);
    CHECK_EQ(auth_token_revoke(f.a, id1, &err), 0);
    op_error_clear(&err);
    CHECK_EQ(auth_token_revoke(f.a, 999, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "no API token with id 999");

    struct listing l = {0};
    CHECK_EQ(auth_token_each(f.a, NULL, collect, &l, &err), 0);
    CHECK_EQ(l.n, 3);
    CHECK_EQ(l.revoked[0], 1);
    CHECK_STR(l.labels[0], "backup job");
    CHECK_STR(l.labels[1], "");
    memset(&l, 0, sizeof l);
    CHECK_EQ(auth_token_each(f.a, "bo", collect, &l, &err), 0);
    CHECK_EQ(l.n, 1);
    CHECK_EQ(l.ids[0], id3);
    CHECK_EQ(auth_token_each(f.a, "nobody", collect, &l, &err), -ENOENT);

    /* Bad requests change nothing. */
    int64_t before = fx_count(f.s, "SELECT count(*) FROM api_tokens");
    CHECK_EQ(auth_token_create(f.a, "nobody", NULL, 0, t1, NULL, &err), -ENOENT);
    CHECK_EQ(auth_token_create(f.a, "ana", NULL, AUTH_TOKEN_DAYS_MAX + 1, t1, NULL, &err), -EINVAL);
    CHECK_EQ(auth_token_create(f.a, "ana", NULL, -1, t1, NULL, &err), -EINVAL);
    char label[AUTH_LABEL_MAX + 2];
    memset(label, 'l', sizeof label);
    label[AUTH_LABEL_MAX + 1] = '\0';
    CHECK_EQ(auth_token_create(f.a, "ana", label, 0, t1, NULL, &err), -EINVAL);
    CHECK_EQ(auth_token_create(f.a, "ana", "bad\x01label", 0, t1, NULL, &err), -EINVAL);
    CHECK_EQ(fx_count(f.s, "SELECT count(*) FROM api_tokens"), before);

    /* A cap on live tokens per user. */
    int made = 0, rc = 0;
    for (int i = 0; i < AUTH_TOKENS_PER_USER + 1 && rc == 0; i++) {
        rc = auth_token_create(f.a, "bo", NULL, 0, t1, NULL, &err);
        made += rc == 0;
    }
    CHECK_EQ(rc, -ENOSPC);
    CHECK_EQ(made, AUTH_TOKENS_PER_USER - 1); /* bo already had one */
    close_fixture(&f);
}

/* ---- limiter ---- */

/* One login try: reserves it and settles it as outcome. Returns what
 * auth_limiter_begin said. */
static int settle_try(struct auth_limiter *l, const char *name, const char *addr, int64_t t,
                      int64_t *wait, enum auth_limiter_outcome outcome)
{
    struct auth_limiter_try try;
    int rc = auth_limiter_begin(l, name, addr, t, &try, wait);
    if (rc == 0)
        auth_limiter_end(l, &try, outcome, t);
    return rc;
}

/* One failed login. */
static int fail_try(struct auth_limiter *l, const char *name, const char *addr, int64_t t,
                    int64_t *wait)
{
    return settle_try(l, name, addr, t, wait, AUTH_LIMITER_FAILED);
}

/* Whether a login may be tried now (the try is given back). */
static int may_try(struct auth_limiter *l, const char *name, const char *addr, int64_t t,
                   int64_t *wait)
{
    return settle_try(l, name, addr, t, wait, AUTH_LIMITER_CANCEL);
}

/* One good login. */
static int ok_try(struct auth_limiter *l, const char *name, const char *addr, int64_t t)
{
    return settle_try(l, name, addr, t, NULL, AUTH_LIMITER_OK);
}

/* Five failures lock the name for that address only: the owner at their
 * own address still gets in. */
static void limiter_pair(void)
{
    struct auth_limiter *l = NULL;
    CHECK_EQ(auth_limiter_new(NULL, &l), 0);
    int64_t t = 1000000, wait = 0;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fail_try(l, "ana", "10.0.0.5", t, &wait), 0);
    CHECK_EQ(may_try(l, "ana", "10.0.0.5", t, &wait), -EAGAIN);
    CHECK_EQ(wait, 30000);
    CHECK_EQ(may_try(l, "ANA", "10.0.0.5", t + 1000, &wait), -EAGAIN); /* names in any case */
    CHECK_EQ(wait, 29000);
    /* the owner, elsewhere, is not locked out; nor is another name */
    CHECK_EQ(may_try(l, "ana", "10.0.0.9", t, &wait), 0);
    CHECK_EQ(ok_try(l, "ana", "10.0.0.9", t), 0);
    CHECK_EQ(may_try(l, "bo", "10.0.0.5", t, &wait), 0);
    /* the next lockout of the same pair lasts twice as long */
    t += 30000;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fail_try(l, "ana", "10.0.0.5", t, &wait), 0);
    CHECK_EQ(may_try(l, "ana", "10.0.0.5", t, &wait), -EAGAIN);
    CHECK_EQ(wait, 60000);
    /* a success forgets the pair's failures */
    t += 60000;
    CHECK_EQ(fail_try(l, "ana", "10.0.0.5", t, &wait), 0);
    CHECK_EQ(ok_try(l, "ana", "10.0.0.5", t), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(fail_try(l, "ana", "10.0.0.5", t, &wait), 0);
    CHECK_EQ(may_try(l, "ana", "10.0.0.5", t, &wait), 0);
    /* and failures long ago are forgotten */
    t += 16 * 60000;
    CHECK_EQ(fail_try(l, "ana", "10.0.0.5", t, &wait), 0);
    CHECK_EQ(may_try(l, "ana", "10.0.0.5", t, &wait), 0);
    /* a try that was not made (CANCEL) counts nothing */
    for (int i = 0; i < 50; i++)
        CHECK_EQ(may_try(l, "cy", "10.0.0.5", t, &wait), 0);
    auth_limiter_free(l);
}

/* Password spraying: many names from one address lock the address. */
static void limiter_spraying(void)
{
    struct auth_limiter *l = NULL;
    CHECK_EQ(auth_limiter_new(NULL, &l), 0);
    int64_t t = 1000000, wait = 0;
    char name[16], addr[64];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "user%d", i);
        CHECK_EQ(fail_try(l, name, "10.0.0.66", t, &wait), 0);
    }
    CHECK_EQ(may_try(l, "someone", "10.0.0.66", t, &wait), -EAGAIN);
    CHECK_EQ(wait, 30000);
    CHECK_EQ(may_try(l, NULL, "10.0.0.66", t, &wait), -EAGAIN);
    CHECK_EQ(may_try(l, "someone", "::ffff:10.0.0.66", t, &wait), -EAGAIN); /* the same host */
    CHECK_EQ(may_try(l, "someone", "10.0.0.67", t, &wait), 0);

    /* an IPv6 host holds its whole /64: rotating inside it does not help */
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "user%d", i);
        snprintf(addr, sizeof addr, "2001:db8:1:2::%x", i + 1);
        CHECK_EQ(fail_try(l, name, addr, t, &wait), 0);
    }
    CHECK_EQ(may_try(l, "someone", "2001:db8:1:2:ffff:ffff:ffff:ffff", t, &wait), -EAGAIN);
    CHECK_EQ(may_try(l, "someone", "2001:db8:1:3::1", t, &wait), 0);
    /* ...nor does guessing one name from many addresses of the /64 */
    for (int i = 0; i < 5; i++) {
        snprintf(addr, sizeof addr, "2001:db8:9:9::%x", i + 1);
        CHECK_EQ(fail_try(l, "ana", addr, t, &wait), 0);
    }
    CHECK_EQ(may_try(l, "ana", "2001:db8:9:9::77", t, &wait), -EAGAIN);
    auth_limiter_free(l);
}

/* A distributed guess at one name: many addresses, a few tries each. The
 * name's ceiling slows it; a pair that logged in before still gets in. */
static void limiter_distributed(void)
{
    struct auth_limiter *l = NULL;
    CHECK_EQ(auth_limiter_new(NULL, &l), 0);
    int64_t t = 1000000, wait = 0;
    CHECK_EQ(ok_try(l, "ana", "10.0.0.5", t), 0); /* the owner's usual address */
    char addr[32];
    for (int i = 0; i < 100; i++) {
        snprintf(addr, sizeof addr, "198.51.100.%d", i + 1);
        CHECK_EQ(fail_try(l, "ana", addr, t, &wait), 0);
    }
    CHECK_EQ(may_try(l, "ana", "203.0.113.1", t, &wait), -EAGAIN);
    CHECK_EQ(wait, 30000);
    struct auth_limiter_try try;
    CHECK_EQ(auth_limiter_begin(l, "ana", "10.0.0.5", t, &try, &wait), 0);
    CHECK_EQ(try.trusted, 1);
    auth_limiter_end(l, &try, AUTH_LIMITER_OK, t);
    CHECK_EQ(auth_limiter_begin(l, "bo", "10.0.0.5", t, &try, &wait), 0);
    CHECK_EQ(try.trusted, 0);
    auth_limiter_end(l, &try, AUTH_LIMITER_CANCEL, t);
    /* the trusted pair's own failures still lock it */
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fail_try(l, "ana", "10.0.0.5", t, &wait), 0);
    CHECK_EQ(may_try(l, "ana", "10.0.0.5", t, &wait), -EAGAIN);
    /* a trusted pair passes its address's lock too (a shared NAT address
     * where someone sprays other names) */
    CHECK_EQ(ok_try(l, "bo", "10.0.0.7", t), 0);
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "user%d", i);
        CHECK_EQ(fail_try(l, name, "10.0.0.7", t, &wait), 0);
    }
    CHECK_EQ(may_try(l, "cy", "10.0.0.7", t, &wait), -EAGAIN);
    CHECK_EQ(may_try(l, "bo", "10.0.0.7", t, &wait), 0);
    auth_limiter_free(l);
}

/* Parallel guesses: the check and the count are one step, so 32 threads
 * guessing at once get exactly the allowed number of tries. */
struct race {
    struct auth_limiter *l;
    pthread_mutex_t lock;
    pthread_barrier_t start;
    int tried;
    int same_name; /* 1: all guess "ana"; 0: each its own name */
};

struct racer {
    struct race *r;
    int i;
};

static void *race_guess(void *arg)
{
    struct racer *me = arg;
    struct race *r = me->r;
    char name[16];
    snprintf(name, sizeof name, r->same_name ? "ana" : "user%d", me->i);
    (void)pthread_barrier_wait(&r->start);
    struct auth_limiter_try try;
    pthread_mutex_lock(&r->lock);
    int rc = auth_limiter_begin(r->l, name, "10.0.0.5", 1000000, &try, NULL);
    if (rc == 0)
        r->tried++;
    pthread_mutex_unlock(&r->lock);
    if (rc < 0)
        return NULL;
    struct timespec ts = {0, 20 * 1000000}; /* the hashing, off the lock */
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&r->lock);
    auth_limiter_end(r->l, &try, AUTH_LIMITER_FAILED, 1000000);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static int race(int same_name)
{
    enum { N = 32 };
    struct race r = {.same_name = same_name};
    CHECK_EQ(auth_limiter_new(NULL, &r.l), 0);
    pthread_mutex_init(&r.lock, NULL);
    pthread_barrier_init(&r.start, NULL, N);
    pthread_t th[N];
    struct racer who[N];
    for (int i = 0; i < N; i++) {
        who[i] = (struct racer){&r, i};
        CHECK_EQ(pthread_create(&th[i], NULL, race_guess, &who[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.start);
    pthread_mutex_destroy(&r.lock);
    auth_limiter_free(r.l);
    return r.tried;
}

static void limiter_atomic(void)
{
    CHECK_EQ(race(1), 5);  /* one name from one address: the pair's limit */
    CHECK_EQ(race(0), 20); /* 32 names from one address: the address's limit */
}

/* A tiny table under a flood stays bounded and keeps working; a try in
 * flight keeps its slot. */
static void limiter_bounded(void)
{
    struct auth_limiter_config cfg = {.slots = 16};
    struct auth_limiter *l = NULL;
    CHECK_EQ(auth_limiter_new(&cfg, &l), 0);
    int64_t t = 1000000, wait = 0;
    struct auth_limiter_try held;
    CHECK_EQ(auth_limiter_begin(l, "ana", "10.0.0.5", t, &held, &wait), 0);
    char name[16], addr[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "n%d", i);
        snprintf(addr, sizeof addr, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        int rc = fail_try(l, name, addr, t + i, &wait);
        CHECK(rc == 0 || rc == -EAGAIN);
    }
    auth_limiter_end(l, &held, AUTH_LIMITER_FAILED, t + 10000); /* counted: its slot was kept */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(fail_try(l, "ana", "10.0.0.5", t + 10000, &wait), 0);
    CHECK_EQ(may_try(l, "ana", "10.0.0.5", t + 10000, &wait), -EAGAIN);
    auth_limiter_free(l);

    /* when every slot near a key holds a try in flight, a new try is
     * refused (no allocation) and takes nothing */
    cfg.slots = 8;
    CHECK_EQ(auth_limiter_new(&cfg, &l), 0);
    struct auth_limiter_try a, b, c;
    CHECK_EQ(auth_limiter_begin(l, "ana", "10.0.0.1", t, &a, &wait), 0);
    CHECK_EQ(auth_limiter_begin(l, "bo", "10.0.0.2", t, &b, &wait), 0);
    CHECK_EQ(auth_limiter_begin(l, "cy", "10.0.0.3", t, &c, &wait), -EAGAIN);
    CHECK_EQ(wait, 1000);
    auth_limiter_end(l, &a, AUTH_LIMITER_CANCEL, t);
    CHECK_EQ(auth_limiter_begin(l, "cy", "10.0.0.3", t, &c, &wait), 0);
    auth_limiter_end(l, &b, AUTH_LIMITER_CANCEL, t);
    auth_limiter_end(l, &c, AUTH_LIMITER_CANCEL, t);
    auth_limiter_free(l);

    cfg.slots = 3;
    CHECK_EQ(auth_limiter_new(&cfg, &l), -EINVAL);
    cfg.slots = (1u << 20) + 1;
    CHECK_EQ(auth_limiter_new(&cfg, &l), -EINVAL);
    auth_limiter_free(NULL);
}

int main(void)
{
    fx_tmpdir("auth");
    RUN(hash_and_verify);
    RUN(password_limits);
    RUN(names_and_roles);
    RUN(users);
    RUN(sessions_basic);
    RUN(sessions_expire);
    RUN(sessions_capped);
    RUN(disabled_users);
    RUN(token_scopes);
    RUN(password_change_ends_sessions);
    RUN(no_user_enumeration);
    RUN(read_only_lookup);
    RUN(api_tokens);
    RUN(limiter_pair);
    RUN(limiter_spraying);
    RUN(limiter_distributed);
    RUN(limiter_atomic);
    RUN(limiter_bounded);
    return fx_finish();
}
