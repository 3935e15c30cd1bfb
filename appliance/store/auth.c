/*
 * Users, passwords, sessions, API tokens and the failed-login limiter; see
 * auth.h. The invariant this file keeps: nothing that would let someone in
 * is ever written down. Passwords become yescrypt hashes before they reach
 * the store; session and API tokens are 32 bytes from getrandom(2), handed
 * out once, and only their SHA-256 is kept.
 *
 * Why yescrypt through libxcrypt: it is what Debian uses for /etc/shadow,
 * so it is maintained, reviewed and already on every target system (no
 * new dependency), and it is a memory-hard, salted, tunable scheme. The
 * hash string carries its method and cost, so a stronger default later
 * needs no migration. (argon2id through libsodium was the alternative; see
 * docs/USERS_AND_TLS.md.)
 *
 * Why a plain SHA-256 for tokens and not a slow hash: a token is 256 random
 * bits, so there is nothing to guess offline, and a bearer lookup runs on
 * every request. The index lookup by hash does not leak anything useful
 * through timing: an attacker does not control the hash of what he sends.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "codec.h"
#include "entity.h"
#include "sql.h"
#include "store_queries.h"

/* How often a credential's last_used_ms is written, at most. */
#define AUTH_TOUCH_INTERVAL_MS 60000

static const char *const role_names[] = {"field", "manager", "admin", "hq"};

const char *auth_role_name(enum auth_role r)
{
    return (unsigned)r < sizeof role_names / sizeof role_names[0] ? role_names[r] : "?";
}

int auth_role_parse(const char *name, enum auth_role *out)
{
    for (size_t i = 0; name && i < sizeof role_names / sizeof role_names[0]; i++)
        if (!strcmp(name, role_names[i])) {
            *out = (enum auth_role)i;
            return 0;
        }
    return -EINVAL;
}

const char *auth_scope_name(enum auth_scope s)
{
    return s == AUTH_SCOPE_METRICS ? "metrics" : "";
}

int auth_scope_parse(const char *name, enum auth_scope *out, struct op_error *err)
{
    if (name && !strcmp(name, "metrics")) {
        *out = AUTH_SCOPE_METRICS;
        return 0;
    }
    return op_error_set(err, -EINVAL, "scope", "scope: unknown scope '%.64s' (expected: %s)",
                        name ? name : "", AUTH_SCOPE_LIST);
}

/* The scope column as stored ('' or 'metrics'); anything else, which the
 * schema's CHECK rules out, is the narrowest scope. */
static enum auth_scope scope_col(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return s && !*s ? AUTH_SCOPE_ALL : AUTH_SCOPE_METRICS;
}

int auth_name_check(const char *name, struct op_error *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0)
        return op_error_set(err, -EINVAL, "name", "name: empty");
    if (n > AUTH_NAME_MAX)
        return op_error_set(err, -EINVAL, "name", "name: longer than %d bytes", AUTH_NAME_MAX);
    if (!islower((unsigned char)name[0]) && !isdigit((unsigned char)name[0]))
        return op_error_set(err, -EINVAL, "name",
                            "name: must start with a lower-case letter or a digit");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
            c == '@')
            continue;
        return op_error_set(err, -EINVAL, "name",
                            "name: character %zu is not allowed (use a-z, 0-9, '.', '_', '-', "
                            "'@'; lower case only)",
                            i + 1);
    }
    return 0;
}

/* A user-supplied text of at most max bytes, valid UTF-8 without control
 * characters; *len (if not NULL) is its length. `field` names it in err. */
static int text_check(const char *v, size_t max, const char *field, size_t *len,
                      struct op_error *err)
{
    size_t n = strnlen(v, max + 1);
    if (n > max)
        return op_error_set(err, -EINVAL, field, "%s: longer than %zu bytes", field, max);
    if (entity_utf8_bad_offset(v, n) >= 0)
        return op_error_set(err, -EINVAL, field,
                            "%s: not valid UTF-8 or contains control characters", field);
    if (len)
        *len = n;
    return 0;
}

int auth_password_check(const char *password, struct op_error *err)
{
    if (!password)
        return op_error_set(err, -EINVAL, "password", "password: missing");
    size_t n;
    int rc = text_check(password, AUTH_PASSWORD_MAX_BYTES, "password", &n, err);
    if (rc < 0)
        return rc;
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)password[i];
        if (c < 0x20 || c == 0x7f)
            return op_error_set(err, -EINVAL, "password",
                                "password: contains control characters (tab, line breaks)");
        chars += (c & 0xc0) != 0x80;
    }
    if (chars < AUTH_PASSWORD_MIN_CHARS)
        return op_error_set(err, -EINVAL, "password",
                            "password: shorter than %d characters; use a longer passphrase",
                            AUTH_PASSWORD_MIN_CHARS);
    return 0;
}

/* ---- hashing ------------------------------------------------------------ */

/* yescrypt at libxcrypt's default cost (count 0). */
#define AUTH_HASH_PREFIX "$y$"

int auth_password_hash(const char *password, char **out, struct op_error *err)
{
    int rc = auth_password_check(password, err);
    if (rc < 0)
        return rc;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn(AUTH_HASH_PREFIX, 0, NULL, 0, setting, (int)sizeof setting)) {
        int e = errno ? errno : EINVAL;
        return op_error_set(err, -e, NULL, "cannot make a password salt: %s", strerror(e));
    }
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    const char *h = crypt_rn(password, setting, cd, (int)sizeof *cd);
    char *copy = NULL;
    if (!h) {
        int e = errno ? errno : EINVAL;
        rc = op_error_set(err, -e, NULL, "cannot hash the password: %s", strerror(e));
    } else if (!(copy = strdup(h))) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    if (rc == 0)
        *out = copy;
    return rc;
}

int auth_password_verify(const char *password, const char *hash)
{
    if (!password || !hash || crypt_checksalt(hash) != CRYPT_SALT_OK)
        return -EINVAL;
    if (strnlen(password, AUTH_PASSWORD_MAX_BYTES + 1) > AUTH_PASSWORD_MAX_BYTES)
        return -EACCES;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return -ENOMEM;
    int rc = -EACCES;
    const char *h = crypt_rn(password, hash, cd, (int)sizeof *cd);
    if (h) {
        /* The lengths are public (they follow from the method); the bytes
         * are compared in constant time. */
        size_t hl = strlen(hash);
        if (strlen(h) == hl && CRYPTO_memcmp(h, hash, hl) == 0)
            rc = 0;
    }
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return rc;
}

void auth_password_dummy_verify(const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!password || !crypt_gensalt_rn(AUTH_HASH_PREFIX, 0, NULL, 0, setting, (int)sizeof setting))
        return;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return;
    const char *h = crypt_rn(password, setting, cd, (int)sizeof *cd);
    /* Compare as a real verification would, against itself. */
    if (h)
        (void)CRYPTO_memcmp(h, h, strlen(h));
    explicit_bzero(cd, sizeof *cd);
    free(cd);
}

/* ---- helpers ------------------------------------------------------------ */

int auth_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* The length of base64url(AUTH_TOKEN_BYTES bytes). */
#define AUTH_TOKEN_B64 43

/* Makes a token (with the prefix, which may be "") and its SHA-256. */
static int make_token(const char *prefix, char token[AUTH_TOKEN_BUF], unsigned char hash[32],
                      struct op_error *err)
{
    unsigned char raw[AUTH_TOKEN_BYTES];
    int rc = auth_random(raw, sizeof raw);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot make a token: no randomness: %s", strerror(-rc));
    size_t pl = strlen(prefix);
    memcpy(token, prefix, pl);
    rc = (int)codec_b64_encode(raw, sizeof raw, CODEC_B64_URL | CODEC_B64_NOPAD, token + pl,
                               AUTH_TOKEN_BUF - pl);
    explicit_bzero(raw, sizeof raw);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "token buffer too small");
    unsigned int mdlen = 0;
    if (!EVP_Digest(token, strlen(token), hash, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        explicit_bzero(token, AUTH_TOKEN_BUF);
        return op_error_set(err, -EIO, NULL, "cannot hash a token (OpenSSL SHA-256 failed)");
    }
    return 0;
}

/* Recognizes a token's shape and hashes it: 1 for an API token, 0 for a
 * session token, -EACCES for anything else (not even worth a query). */
static int token_kind_hash(const char *token, unsigned char hash[32])
{
    if (!token)
        return -EACCES;
    size_t pl = strlen(AUTH_API_TOKEN_PREFIX);
    int api = !strncmp(token, AUTH_API_TOKEN_PREFIX, pl);
    const char *body = api ? token + pl : token;
    size_t n = strnlen(body, AUTH_TOKEN_B64 + 1);
    if (n != AUTH_TOKEN_B64)
        return -EACCES;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)body[i];
        if (!isalnum(c) && c != '-' && c != '_')
            return -EACCES;
    }
    unsigned int mdlen = 0;
    if (!EVP_Digest(token, strlen(token), hash, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -EIO;
    return api;
}

/* ---- the context and its statements --------------------------------------- */

struct auth {
    struct store *store;
    struct sql_cache q; /* the store's queries on the store's connection */
    hlc_clock_fn now_ms;
    void *clock_ctx;
};

/* Resets a statement after use, so that it holds no lock between calls. */
static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
}

/* Runs a statement without rows (transaction control); `what` names the
 * step in err. */
static int exec(struct auth *a, unsigned id, const char *what, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&a->q, id, &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        rc = sql_fail(a->q.db, rc, what, err);
    else
        rc = 0;
    done(st);
    return rc;
}

static int64_t now_ms(struct auth *a)
{
    return (int64_t)a->now_ms(a->clock_ctx);
}

int auth_new(struct store *s, struct auth **out, struct op_error *err)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc = store_queries_bind(s, &a->q, &store_queries, err);
    if (rc < 0) {
        free(a);
        return rc;
    }
    a->store = s;
    a->now_ms = hlc_wall_ms;
    *out = a;
    return 0;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    sql_cache_close(&a->q);
    free(a);
}

void auth_set_clock(struct auth *a, hlc_clock_fn fn, void *ctx)
{
    a->now_ms = fn ? fn : hlc_wall_ms;
    a->clock_ctx = fn ? ctx : NULL;
}

/* A short transaction of our own for the sessions and api_tokens tables:
 * BEGIN IMMEDIATE (so the write lock is taken up front and the busy
 * timeout applies) or, inside the caller's transaction, a savepoint. */
static int txn_begin(struct auth *a, int *nested, struct op_error *err)
{
    *nested = !sqlite3_get_autocommit(a->q.db);
    return exec(a, *nested ? STORE_Q_AUTH_SAVEPOINT : STORE_Q_AUTH_BEGIN_IMMEDIATE,
                "cannot start a transaction", err);
}

static int txn_end(struct auth *a, int nested, int ok, struct op_error *err)
{
    int rc = 0;
    if (ok) {
        rc = exec(a, nested ? STORE_Q_AUTH_RELEASE : STORE_Q_AUTH_COMMIT, "cannot commit", err);
        if (rc == 0)
            return 0;
    }
    if (nested) {
        (void)exec(a, STORE_Q_AUTH_ROLLBACK_TO, NULL, NULL);
        (void)exec(a, STORE_Q_AUTH_RELEASE, NULL, NULL);
    } else {
        (void)exec(a, STORE_Q_AUTH_ROLLBACK, NULL, NULL);
    }
    return rc;
}

/* Makes a token (see make_token) and begins the transaction that stores
 * it (txn_begin); on failure nothing is left to undo. */
static int token_begin(struct auth *a, const char *prefix, char tok[AUTH_TOKEN_BUF],
                       unsigned char hash[32], int *nested, struct op_error *err)
{
    int rc = make_token(prefix, tok, hash, err);
    if (rc < 0)
        return rc;
    rc = txn_begin(a, nested, err);
    if (rc < 0)
        explicit_bzero(tok, AUTH_TOKEN_BUF);
    return rc;
}

/* Ends token_begin's transaction, committing when rc (the work's result)
 * is not negative; then hands tok out in token and wipes it. 0, or the
 * first negative errno. */
static int token_end(struct auth *a, int nested, int rc, char tok[AUTH_TOKEN_BUF],
                     char token[AUTH_TOKEN_BUF], struct op_error *err)
{
    int rc2 = txn_end(a, nested, rc >= 0, err);
    if (rc >= 0)
        rc = rc2;
    if (rc >= 0) {
        memcpy(token, tok, AUTH_TOKEN_BUF);
        rc = 0;
    }
    explicit_bzero(tok, AUTH_TOKEN_BUF);
    return rc;
}

/* ---- users -------------------------------------------------------------- */

struct user_row {
    char id[AUTH_ID_LEN];
    int64_t version;
    enum auth_role role;
    int disabled;
    char hash[513];
};

/* Steps query id with text bound as its one parameter: SQLite's result
 * code with *st to read and then pass to done(), or a negative errno. */
static int step_by_text(struct auth *a, unsigned id, const char *text, sqlite3_stmt **st,
                        struct op_error *err)
{
    int rc = sql_get_st(&a->q, id, st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(*st, 1, text, -1, SQLITE_STATIC);
    return sqlite3_step(*st);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Reads a live user by name: 1 found, 0 not found, or a negative error. */
static int user_row(struct auth *a, const char *name, struct user_row *u, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = step_by_text(a, STORE_Q_AUTH_USER_BY_NAME, name, &st, err);
    if (rc < 0)
        return rc;
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, u->id, sizeof u->id);
        u->version = sqlite3_column_int64(st, 1);
        if (auth_role_parse((const char *)sqlite3_column_text(st, 2), &u->role) < 0)
            u->role = AUTH_ROLE_FIELD; /* the schema's CHECK makes this unreachable */
        u->disabled = sqlite3_column_int(st, 3);
        copy_col(st, 4, u->hash, sizeof u->hash);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = sql_fail(a->q.db, rc, "cannot read users", err);
    }
    done(st);
    return rc;
}

/* A live user by name, its password hash wiped: 1, -ENOENT naming the
 * user when there is none, or another negative errno. */
static int user_known(struct auth *a, const char *name, struct user_row *u, struct op_error *err)
{
    int rc = user_row(a, name, u, err);
    explicit_bzero(u->hash, sizeof u->hash);
    if (rc == 0)
        return op_error_set(err, -ENOENT, "name", "no user named '%s'", name);
    return rc;
}

int auth_user_find(struct auth *a, const char *name, char id[AUTH_ID_LEN], enum auth_role *role,
                   int *disabled, struct op_error *err)
{
    struct user_row u;
    int rc = user_known(a, name, &u, err);
    if (rc < 0)
        return rc;
    memcpy(id, u.id, AUTH_ID_LEN);
    if (role)
        *role = u.role;
    if (disabled)
        *disabled = u.disabled;
    return 0;
}

int auth_user_create(struct auth *a, const char *name, enum auth_role role,
                     const char *display_name, const char *password, char id[AUTH_ID_LEN],
                     struct op_error *err)
{
    int rc = auth_name_check(name, err);
    if (rc < 0)
        return rc;
    if ((unsigned)role >= sizeof role_names / sizeof role_names[0])
        return op_error_set(err, -EINVAL, "role", "role: expected one of %s", AUTH_ROLE_LIST);
    char *hash = NULL;
    rc = auth_password_hash(password, &hash, err);
    if (rc < 0)
        return rc;
    json_t *f = json_pack("{s:s, s:s, s:s}", "name", name, "role", auth_role_name(role),
                          "password_hash", hash);
    if (f && display_name && *display_name) {
        json_t *dn = json_string(display_name);
        if (!dn) {
            json_decref(f);
            explicit_bzero(hash, strlen(hash));
            free(hash);
            return op_error_set(err, -EINVAL, "display_name", "display_name: not valid UTF-8");
        }
        json_object_set_new(f, "display_name", dn);
    }
    explicit_bzero(hash, strlen(hash));
    free(hash);
    if (!f)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    json_t *rec = NULL;
    rc = store_create(a->store, &entity_user, f, STORE_ALLOW_INTERNAL, &rec, err);
    json_decref(f);
    if (rc == -EEXIST && err && !strcmp(err->field, "name"))
        rc = op_error_set(err, -EEXIST, "name", "a user named '%s' already exists", name);
    if (rc == 0 && id)
        snprintf(id, AUTH_ID_LEN, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    return rc;
}

static int delete_user_sessions(struct auth *a, const char *user_id, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = step_by_text(a, STORE_Q_AUTH_SESSION_DELETE_USER, user_id, &st, err);
    if (rc < 0)
        return rc;
    done(st);
    if (rc != SQLITE_DONE)
        return sql_fail(a->q.db, rc, "cannot end sessions", err);
    return sqlite3_changes(a->q.db);
}

/* Applies `changes` to the user through the store and, if end_sessions,
 * ends the user's sessions, all in one transaction. */
static int user_change(struct auth *a, const char *name, json_t *changes, int end_sessions,
                       int (*skip)(const struct user_row *u, void *ctx), void *ctx,
                       struct op_error *err)
{
    int rc = store_begin(a->store, err);
    if (rc < 0)
        return rc;
    struct user_row u;
    rc = user_known(a, name, &u, err);
    if (rc == 1 && skip && skip(&u, ctx)) {
        store_rollback(a->store);
        return 0;
    }
    if (rc == 1)
        rc = store_update(a->store, &entity_user, u.id, u.version, changes, STORE_ALLOW_INTERNAL,
                          NULL, err);
    if (rc == 0 && end_sessions) {
        rc = delete_user_sessions(a, u.id, err);
        rc = rc > 0 ? 0 : rc;
    }
    if (rc < 0) {
        store_rollback(a->store);
        return rc;
    }
    return store_commit(a->store, err);
}

int auth_user_set_password(struct auth *a, const char *name, const char *password,
                           struct op_error *err)
{
    char *hash = NULL;
    int rc = auth_password_hash(password, &hash, err);
    if (rc < 0)
        return rc;
    json_t *ch = json_pack("{s:s}", "password_hash", hash);
    explicit_bzero(hash, strlen(hash));
    free(hash);
    if (!ch)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    rc = user_change(a, name, ch, 1, NULL, NULL, err);
    json_decref(ch);
    return rc;
}

static int same_state(const struct user_row *u, void *ctx)
{
    return u->disabled == *(int *)ctx;
}

int auth_user_set_disabled(struct auth *a, const char *name, int disabled, struct op_error *err)
{
    int want = disabled ? 1 : 0;
    json_t *ch = json_pack("{s:b}", "disabled", want);
    if (!ch)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc = user_change(a, name, ch, want, same_state, &want, err);
    json_decref(ch);
    return rc;
}

/* ---- sessions ------------------------------------------------------------- */

int auth_credentials_get(struct auth *a, const char *name, struct auth_credentials *c,
                         struct op_error *err)
{
    memset(c, 0, sizeof *c);
    /* A name that cannot exist is simply not found (same path, same time). */
    if (!name || strnlen(name, AUTH_NAME_MAX + 1) > AUTH_NAME_MAX)
        return 0;
    struct user_row u;
    int rc = user_row(a, name, &u, err);
    if (rc <= 0)
        return rc;
    c->found = 1;
    c->disabled = u.disabled;
    memcpy(c->user.id, u.id, sizeof c->user.id);
    snprintf(c->user.name, sizeof c->user.name, "%s", name);
    c->user.role = u.role;
    memcpy(c->hash, u.hash, sizeof c->hash);
    explicit_bzero(u.hash, sizeof u.hash);
    return 0;
}

static int prune(struct auth *a, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&a->q, STORE_Q_AUTH_SESSION_PRUNE, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms(a));
    rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return sql_fail(a->q.db, rc, "cannot delete expired sessions", err);
    return sqlite3_changes(a->q.db);
}

int auth_sessions_prune(struct auth *a, struct op_error *err)
{
    return prune(a, err);
}

int auth_session_issue(struct auth *a, const char *user_id, const char *remote_addr, int ttl_s,
                       char token[AUTH_TOKEN_BUF], struct op_error *err)
{
    if (ttl_s == 0)
        ttl_s = AUTH_SESSION_TTL_DEFAULT;
    if (ttl_s < AUTH_SESSION_TTL_MIN || ttl_s > AUTH_SESSION_TTL_MAX)
        return op_error_set(err, -EINVAL, "ttl", "session lifetime: expected %d to %d seconds",
                            AUTH_SESSION_TTL_MIN, AUTH_SESSION_TTL_MAX);
    if (remote_addr && strlen(remote_addr) >= AUTH_ADDR_MAX)
        return op_error_set(err, -EINVAL, "remote_addr", "remote address: longer than %d bytes",
                            AUTH_ADDR_MAX - 1);
    char tok[AUTH_TOKEN_BUF];
    unsigned char hash[32];
    int nested;
    int rc = token_begin(a, "", tok, hash, &nested, err);
    if (rc < 0)
        return rc;
    rc = prune(a, err);
    sqlite3_stmt *st = NULL;
    if (rc >= 0)
        rc = sql_get_st(&a->q, STORE_Q_AUTH_SESSION_INSERT, &st, err);
    if (rc >= 0) {
        int64_t now = now_ms(a);
        sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, now + (int64_t)ttl_s * 1000);
        if (remote_addr)
            sqlite3_bind_text(st, 5, remote_addr, -1, SQLITE_STATIC);
        rc = sql_run_what(&a->q, st, "cannot store the session", err);
    }
    if (rc >= 0)
        rc = sql_get_st(&a->q, STORE_Q_AUTH_SESSION_TRIM, &st, err);
    if (rc >= 0) {
        sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, AUTH_SESSIONS_PER_USER);
        rc = sql_run_what(&a->q, st, "cannot end old sessions", err);
    }
    return token_end(a, nested, rc, tok, token, err);
}

static int bad_login(struct op_error *err)
{
    return op_error_set(err, -EACCES, NULL, "wrong user name or password");
}

int auth_session_create(struct auth *a, const char *name, const char *password,
                        const char *remote_addr, int ttl_s, char token[AUTH_TOKEN_BUF],
                        struct op_error *err)
{
    struct auth_credentials c;
    int rc = auth_credentials_get(a, name, &c, err);
    if (rc < 0)
        return rc;
    int ok;
    if (c.found && c.hash[0])
        ok = auth_password_verify(password ? password : "", c.hash) == 0;
    else {
        auth_password_dummy_verify(password ? password : "");
        ok = 0;
    }
    explicit_bzero(c.hash, sizeof c.hash);
    if (!ok)
        return bad_login(err);
    if (c.disabled)
        return op_error_set(err, -EPERM, "name", "the account '%s' is disabled", c.user.name);
    return auth_session_issue(a, c.user.id, remote_addr, ttl_s, token, err);
}

int auth_session_revoke(struct auth *a, const char *token, struct op_error *err)
{
    unsigned char hash[32];
    int kind = token_kind_hash(token, hash);
    if (kind < 0 && kind != -EACCES)
        return op_error_set(err, kind, NULL, "cannot hash a token");
    if (kind != 0)
        return op_error_set(err, -EACCES, NULL, "not a session token");
    sqlite3_stmt *st;
    int rc = sql_get_st(&a->q, STORE_Q_AUTH_SESSION_DELETE, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms(a));
    rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return sql_fail(a->q.db, rc, "cannot end the session", err);
    if (sqlite3_changes(a->q.db) == 0)
        return op_error_set(err, -EACCES, NULL, "no such session (expired or ended)");
    return 0;
}

int auth_sessions_revoke_user(struct auth *a, const char *user_id, struct op_error *err)
{
    return delete_user_sessions(a, user_id, err);
}

/* ---- bearer lookup ---------------------------------------------------------- */

static int refused(struct op_error *err)
{
    return op_error_set(err, -EACCES, NULL, "invalid or expired credentials");
}

/* Writes last_used_ms of a session or API token. */
static int touch(struct auth *a, int api, int64_t id, int64_t now, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc =
        sql_get_st(&a->q, api ? STORE_Q_AUTH_TOKEN_TOUCH : STORE_Q_AUTH_SESSION_TOUCH, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    return sql_run_what(&a->q, st, "cannot record the last use", err);
}

int auth_touch(struct auth *a, const struct auth_user *u, struct op_error *err)
{
    if (!u->touch_due)
        return 0;
    return touch(a, u->via_api_token, u->credential_id, now_ms(a), err);
}

int auth_lookup_bearer(struct auth *a, const char *token, struct auth_user *user,
                       struct op_error *err)
{
    unsigned char hash[32];
    int kind = token_kind_hash(token, hash);
    if (kind == -EACCES)
        return refused(err);
    if (kind < 0)
        return op_error_set(err, kind, NULL, "cannot hash a token");
    sqlite3_stmt *st;
    int rc =
        sql_get_st(&a->q, kind ? STORE_Q_AUTH_TOKEN_LOOKUP : STORE_Q_AUTH_SESSION_LOOKUP, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        done(st);
        return rc == SQLITE_DONE ? refused(err)
                                 : sql_fail(a->q.db, rc, "cannot read sessions", err);
    }
    int64_t now = now_ms(a);
    struct auth_user u;
    memset(&u, 0, sizeof u);
    u.via_api_token = kind;
    u.credential_id = sqlite3_column_int64(st, 0);
    int ok, col;
    int64_t last;
    if (kind) {
        /* t.id, t.expires_ms, t.revoked_ms, t.last_used_ms, u.id, ... */
        int never = sqlite3_column_type(st, 1) == SQLITE_NULL;
        u.expires_ms = never ? 0 : sqlite3_column_int64(st, 1);
        ok = (never || u.expires_ms > now) && sqlite3_column_type(st, 2) == SQLITE_NULL;
        last = sqlite3_column_int64(st, 3);
        col = 4;
    } else {
        /* s.id, s.expires_ms, s.last_used_ms, u.id, ... */
        u.expires_ms = sqlite3_column_int64(st, 1);
        ok = u.expires_ms > now;
        last = sqlite3_column_int64(st, 2);
        col = 3;
    }
    copy_col(st, col, u.id, sizeof u.id);
    copy_col(st, col + 1, u.name, sizeof u.name);
    if (auth_role_parse((const char *)sqlite3_column_text(st, col + 2), &u.role) < 0)
        ok = 0;
    if (sqlite3_column_int(st, col + 3) || sqlite3_column_int(st, col + 4))
        ok = 0; /* disabled or deleted */
    u.scope = kind ? scope_col(st, col + 5) : AUTH_SCOPE_ALL;
    done(st);
    if (!ok)
        return refused(err);
    /* At most once a minute; and a failure (a busy database) is not worth
     * refusing a valid credential over, so it is left for the next use. */
    if (now - last >= AUTH_TOUCH_INTERVAL_MS) {
        if (sqlite3_db_readonly(a->q.db, "main") == 1)
            u.touch_due = 1;
        else
            (void)touch(a, kind, u.credential_id, now, NULL);
    }
    *user = u;
    return 0;
}

/* ---- API tokens -------------------------------------------------------------- */

int auth_token_create(struct auth *a, const char *user_name, const char *label, int expires_days,
                      char token[AUTH_TOKEN_BUF], int64_t *id, struct op_error *err)
{
    return auth_token_create_scoped(a, user_name, label, expires_days, AUTH_SCOPE_ALL, token, id,
                                    err);
}

int auth_token_create_scoped(struct auth *a, const char *user_name, const char *label,
                             int expires_days, enum auth_scope scope, char token[AUTH_TOKEN_BUF],
                             int64_t *id, struct op_error *err)
{
    if (expires_days < 0 || expires_days > AUTH_TOKEN_DAYS_MAX)
        return op_error_set(err, -EINVAL, "expires_days", "expiry: expected 1 to %d days (or none)",
                            AUTH_TOKEN_DAYS_MAX);
    if (label && *label) {
        int rc = text_check(label, AUTH_LABEL_MAX, "label", NULL, err);
        if (rc < 0)
            return rc;
    } else {
        label = NULL;
    }
    char tok[AUTH_TOKEN_BUF];
    unsigned char hash[32];
    int nested;
    int rc = token_begin(a, AUTH_API_TOKEN_PREFIX, tok, hash, &nested, err);
    if (rc < 0)
        return rc;
    struct user_row u;
    rc = user_known(a, user_name, &u, err);
    if (rc == 1 && u.disabled)
        rc = op_error_set(err, -EPERM, "user", "user '%s' is disabled; enable it first", user_name);
    if (rc == 1 && scope == AUTH_SCOPE_METRICS && u.role != AUTH_ROLE_MANAGER &&
        u.role != AUTH_ROLE_ADMIN)
        rc = op_error_set(err, -EINVAL, "scope",
                          "scope metrics: user '%s' has the %s role, which may not read /metrics "
                          "(manager or admin may)",
                          user_name, auth_role_name(u.role));
    int64_t now = now_ms(a);
    sqlite3_stmt *st = NULL;
    if (rc == 1)
        rc = sql_get_st(&a->q, STORE_Q_AUTH_TOKEN_COUNT_LIVE, &st, err);
    if (rc >= 0) {
        sqlite3_bind_text(st, 1, u.id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        int src = sqlite3_step(st);
        int64_t live = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        done(st);
        if (src != SQLITE_ROW)
            rc = sql_fail(a->q.db, src, "cannot count API tokens", err);
        else if (live >= AUTH_TOKENS_PER_USER)
            rc = op_error_set(err, -ENOSPC, "user",
                              "user '%s' already has %d live API tokens; revoke some first",
                              user_name, AUTH_TOKENS_PER_USER);
    }
    if (rc >= 0)
        rc = sql_get_st(&a->q, STORE_Q_AUTH_TOKEN_INSERT, &st, err);
    if (rc >= 0) {
        sqlite3_bind_text(st, 1, u.id, -1, SQLITE_STATIC);
        if (label)
            sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, hash, sizeof hash, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        if (expires_days > 0)
            sqlite3_bind_int64(st, 5, now + (int64_t)expires_days * 86400 * 1000);
        sqlite3_bind_text(st, 6, auth_scope_name(scope), -1, SQLITE_STATIC);
        rc = sql_run_what(&a->q, st, "cannot store the API token", err);
    }
    int64_t new_id = sqlite3_last_insert_rowid(a->q.db);
    rc = token_end(a, nested, rc, tok, token, err);
    if (rc == 0 && id)
        *id = new_id;
    return rc;
}

int auth_token_revoke(struct auth *a, int64_t id, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&a->q, STORE_Q_AUTH_TOKEN_REVOKE, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms(a));
    rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return sql_fail(a->q.db, rc, "cannot revoke the API token", err);
    if (sqlite3_changes(a->q.db) > 0)
        return 0;
    rc = sql_get_st(&a->q, STORE_Q_AUTH_TOKEN_EXISTS, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    done(st);
    if (rc == SQLITE_ROW)
        return 0; /* already revoked */
    if (rc != SQLITE_DONE)
        return sql_fail(a->q.db, rc, "cannot read API tokens", err);
    return op_error_set(err, -ENOENT, "id", "no API token with id %" PRId64, id);
}

int auth_token_each(struct auth *a, const char *user_name,
                    int (*cb)(void *ctx, const struct auth_token_info *t), void *ctx,
                    struct op_error *err)
{
    char uid[AUTH_ID_LEN];
    int rc;
    if (user_name) {
        rc = auth_user_find(a, user_name, uid, NULL, NULL, err);
        if (rc < 0)
            return rc;
    }
    sqlite3_stmt *st;
    rc = sql_get_st(&a->q, STORE_Q_AUTH_TOKEN_LIST, &st, err);
    if (rc < 0)
        return rc;
    if (user_name)
        sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    for (;;) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            rc = 0;
            break;
        }
        if (src != SQLITE_ROW) {
            rc = sql_fail(a->q.db, src, "cannot read API tokens", err);
            break;
        }
        struct auth_token_info t;
        t.id = sqlite3_column_int64(st, 0);
        copy_col(st, 1, t.user_name, sizeof t.user_name);
        copy_col(st, 2, t.label, sizeof t.label);
        t.created_ms = sqlite3_column_int64(st, 3);
        t.expires_ms = sqlite3_column_int64(st, 4);
        t.revoked_ms = sqlite3_column_int64(st, 5);
        t.last_used_ms = sqlite3_column_int64(st, 6);
        t.scope = scope_col(st, 7);
        rc = cb(ctx, &t);
        if (rc)
            break;
    }
    done(st);
    return rc;
}

/* ---- failed-login limiter ------------------------------------------------------ */

#define LIMIT_PROBE 8      /* slots searched from a key's home slot */
#define LIMIT_BUSY_MS 1000 /* the wait told when tries in flight fill a limit */

struct limit_slot {
    uint64_t hash; /* 0: empty */
    char key[AUTH_LIMIT_KEY_MAX];
    int failures;
    int lockouts;
    int pending; /* tries in flight; a slot with any is never evicted */
    int64_t last_failure_ms;
    int64_t locked_until_ms;
    int64_t trusted_until_ms; /* pairs only: a successful login from there */
};

struct auth_limiter {
    struct auth_limiter_config cfg;
    uint64_t seed; /* so that nobody can pick names that collide on purpose */
    struct limit_slot slots[];
};

int auth_limiter_new(const struct auth_limiter_config *cfg, struct auth_limiter **out)
{
    struct auth_limiter_config c = {0};
    if (cfg)
        c = *cfg;
    if (c.pair_max_failures <= 0)
        c.pair_max_failures = 5;
    if (c.addr_max_failures <= 0)
        c.addr_max_failures = 20;
    if (c.name_max_failures <= 0)
        c.name_max_failures = 100;
    if (c.lockout_ms <= 0)
        c.lockout_ms = 30000;
    if (c.max_lockout_ms < c.lockout_ms)
        c.max_lockout_ms = c.lockout_ms > 900000 ? c.lockout_ms : 900000;
    if (c.forget_ms <= 0)
        c.forget_ms = 900000;
    if (c.trust_ms <= 0)
        c.trust_ms = (int64_t)30 * 24 * 3600 * 1000;
    if (c.slots == 0)
        c.slots = 4096;
    if (c.slots < LIMIT_PROBE || c.slots > (1u << 20))
        return -EINVAL;
    struct auth_limiter *l = calloc(1, sizeof *l + c.slots * sizeof l->slots[0]);
    if (!l)
        return -ENOMEM;
    l->cfg = c;
    if (auth_random(&l->seed, sizeof l->seed) < 0)
        l->seed = (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15u;
    *out = l;
    return 0;
}

void auth_limiter_free(struct auth_limiter *l)
{
    free(l);
}

/* The address as keyed: an IPv6 address by its /64 ("2001:db8:1:2::/64"),
 * an IPv4-mapped one as IPv4, anything else as given. */
static void limit_addr(const char *addr, char out[INET6_ADDRSTRLEN + 4])
{
    unsigned char b[16];
    if (strchr(addr, ':') && inet_pton(AF_INET6, addr, b) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(b, mapped, sizeof mapped)) {
            (void)inet_ntop(AF_INET, b + 12, out, INET6_ADDRSTRLEN + 4);
            return;
        }
        memset(b + 8, 0, 8);
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, b, text, sizeof text)) {
            snprintf(out, INET6_ADDRSTRLEN + 4, "%s/64", text);
            return;
        }
    }
    snprintf(out, INET6_ADDRSTRLEN + 4, "%s", addr);
}

/* "p:name\naddr", "a:addr" or "n:name" (names ASCII-lower-cased),
 * truncated to fit. */
static void limit_key(char kind, const char *name, const char *addr, char key[AUTH_LIMIT_KEY_MAX])
{
    size_t n = 0;
    key[n++] = kind;
    key[n++] = ':';
    if (name)
        for (size_t i = 0; name[i] && i < AUTH_NAME_MAX && n + 1 < AUTH_LIMIT_KEY_MAX; i++)
            key[n++] = (char)tolower((unsigned char)name[i]);
    if (name && addr && n + 1 < AUTH_LIMIT_KEY_MAX)
        key[n++] = '\n';
    if (addr) {
        char a[INET6_ADDRSTRLEN + 4];
        limit_addr(addr, a);
        for (size_t i = 0; a[i] && n + 1 < AUTH_LIMIT_KEY_MAX; i++)
            key[n++] = a[i];
    }
    key[n] = '\0';
}

static uint64_t limit_hash(const struct auth_limiter *l, const char *key)
{
    uint64_t h = 0xcbf29ce484222325u ^ l->seed; /* FNV-1a, seeded */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3u;
    }
    return h ? h : 1;
}

/* Forgets a slot's failures once forget_ms passed since the last one and
 * it is not locked. */
static void limit_decay(const struct auth_limiter *l, struct limit_slot *s, int64_t now)
{
    if (s->failures + s->lockouts > 0 && s->locked_until_ms <= now &&
        now - s->last_failure_ms >= l->cfg.forget_ms) {
        s->failures = 0;
        s->lockouts = 0;
    }
}

/* How much a slot is worth keeping: 0 empty, 1 nothing to remember, 2
 * failures, 3 locked or trusted, 4 a try in flight (never evicted). */
static int limit_rank(const struct auth_limiter *l, const struct limit_slot *s, int64_t now)
{
    if (!s->hash)
        return 0;
    if (s->pending > 0)
        return 4;
    if (s->locked_until_ms > now || s->trusted_until_ms > now)
        return 3;
    return now - s->last_failure_ms >= l->cfg.forget_ms ? 1 : 2;
}

/* Finds the key's slot; with `create`, makes one, evicting the least
 * worth keeping (the oldest failure among equals). NULL when there is none
 * or every slot near the key has a try in flight. */
static struct limit_slot *limit_slot(struct auth_limiter *l, const char *key, int create,
                                     int64_t now)
{
    uint64_t h = limit_hash(l, key);
    size_t n = l->cfg.slots, home = (size_t)(h % n);
    struct limit_slot *victim = NULL;
    int victim_rank = 4;
    for (size_t i = 0; i < LIMIT_PROBE; i++) {
        struct limit_slot *s = &l->slots[(home + i) % n];
        if (s->hash == h && !strcmp(s->key, key)) {
            limit_decay(l, s, now);
            return s;
        }
        int rank = limit_rank(l, s, now);
        if (rank < victim_rank ||
            (rank == victim_rank && victim && s->last_failure_ms < victim->last_failure_ms)) {
            victim = s;
            victim_rank = rank;
        }
    }
    if (!create || !victim)
        return NULL;
    memset(victim, 0, sizeof *victim);
    victim->hash = h;
    snprintf(victim->key, sizeof victim->key, "%s", key);
    return victim;
}

static int limit_max(const struct auth_limiter *l, char kind)
{
    return kind == 'p'   ? l->cfg.pair_max_failures
           : kind == 'a' ? l->cfg.addr_max_failures
                         : l->cfg.name_max_failures;
}

/* The wait before a slot admits one more try; 0 if it does now. */
static int64_t limit_wait(const struct auth_limiter *l, const struct limit_slot *s, int64_t now)
{
    if (!s)
        return 0;
    if (s->locked_until_ms > now)
        return s->locked_until_ms - now;
    return s->failures + s->pending >= limit_max(l, s->key[0]) ? LIMIT_BUSY_MS : 0;
}

/* Gives the tries of t's first n keys back. */
static void limit_release(struct auth_limiter *l, struct auth_limiter_try *t, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        struct limit_slot *s = limit_slot(l, t->keys[i], 0, now);
        if (s && s->pending > 0)
            s->pending--;
    }
}

int auth_limiter_begin(struct auth_limiter *l, const char *name, const char *addr, int64_t now_ms,
                       struct auth_limiter_try *t, int64_t *retry_after_ms)
{
    struct auth_limiter_try r = {0};
    if (name && addr)
        limit_key('p', name, addr, r.keys[r.n++]);
    if (addr)
        limit_key('a', NULL, addr, r.keys[r.n++]);
    if (name)
        limit_key('n', name, NULL, r.keys[r.n++]);
    /* A trusted pair (it logged in before) passes the address and name
     * locks: those are what an attacker elsewhere can set off. */
    struct limit_slot *pair = name && addr ? limit_slot(l, r.keys[0], 0, now_ms) : NULL;
    int trusted = pair && pair->trusted_until_ms > now_ms;
    int64_t wait = 0;
    for (int i = 0; i < r.n; i++) {
        if (trusted && i > 0)
            break;
        int64_t w = limit_wait(l, limit_slot(l, r.keys[i], 0, now_ms), now_ms);
        if (w > wait)
            wait = w;
    }
    for (int i = 0; i < r.n && wait == 0; i++) {
        struct limit_slot *s = limit_slot(l, r.keys[i], 1, now_ms);
        if (!s) {
            limit_release(l, &r, i, now_ms);
            wait = LIMIT_BUSY_MS;
            break;
        }
        s->pending++;
    }
    if (wait > 0) {
        if (retry_after_ms)
            *retry_after_ms = wait;
        return -EAGAIN;
    }
    r.trusted = trusted;
    *t = r;
    return 0;
}

static void limit_fail(struct auth_limiter *l, struct limit_slot *s, int64_t now)
{
    s->last_failure_ms = now;
    if (++s->failures < limit_max(l, s->key[0]))
        return;
    s->failures = 0;
    int64_t lock = l->cfg.lockout_ms;
    for (int i = 0; i < s->lockouts && lock < l->cfg.max_lockout_ms; i++)
        lock *= 2;
    if (lock > l->cfg.max_lockout_ms)
        lock = l->cfg.max_lockout_ms;
    s->lockouts++;
    s->locked_until_ms = now + lock;
}

void auth_limiter_end(struct auth_limiter *l, struct auth_limiter_try *t,
                      enum auth_limiter_outcome outcome, int64_t now_ms)
{
    for (int i = 0; i < t->n; i++) {
        /* A slot with a try in flight is never evicted, so it is there. */
        struct limit_slot *s = limit_slot(l, t->keys[i], 0, now_ms);
        if (!s)
            continue;
        if (s->pending > 0)
            s->pending--;
        if (outcome == AUTH_LIMITER_FAILED)
            limit_fail(l, s, now_ms);
        else if (outcome == AUTH_LIMITER_OK && s->key[0] == 'p') {
            s->failures = 0;
            s->lockouts = 0;
            s->locked_until_ms = 0;
            s->trusted_until_ms = now_ms + l->cfg.trust_ms;
        }
    }
    t->n = 0;
}
