/*
 * Who is asking: user accounts, password hashing, login sessions, API
 * tokens for scripts, and a failed-login limiter, for outpostd and the
 * admin CLI. Users are records of entity_user in the store (so every change
 * to one is versioned and audited); sessions and API tokens live in their
 * own local tables (schema/migrations/0003_auth.sql).
 *
 * Invariants: no secret is ever stored. Passwords are kept as yescrypt
 * hashes (libxcrypt), session and API tokens as the SHA-256 of the token
 * text; a token is shown to its holder once, when made. A credential works
 * only while its user exists and is not disabled, and a session only until
 * its fixed expiry. Failed logins for an unknown user and for a wrong
 * password take the same time and give the same error.
 *
 * Errors: 0 on success or a negative code: -EACCES (wrong user name or
 * password, or an unknown, expired or revoked token: deliberately one
 * code), -EPERM (right password but the account is disabled), -EINVAL (bad
 * input; err->field names it), -EEXIST (a user of that name exists),
 * -ENOENT (no such user or token, for admin calls), -EAGAIN (limiter:
 * locked out), -ENOMEM, and the store's and database's negative errnos.
 * `err` may be NULL everywhere.
 */
#ifndef OUTPOST_AUTH_H
#define OUTPOST_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "hlc.h"
#include "op_error.h"
#include "store.h"

#define AUTH_PASSWORD_MIN_CHARS 10 /* Unicode code points */
#define AUTH_PASSWORD_MAX_BYTES 1024
#define AUTH_NAME_MAX 64   /* bytes; entity_user's cap on "name" */
#define AUTH_ID_LEN 37     /* a UUIDv7 as text, with its NUL */
#define AUTH_ADDR_MAX 64   /* a remote address as text, with its NUL */
#define AUTH_LABEL_MAX 200 /* API token label, bytes */

/* Session tokens are base64url(32 random bytes), 43 characters; API tokens
 * are "opk_" followed by the same, so that logs and secret scanners can
 * tell them apart. AUTH_TOKEN_BUF holds either with its NUL. */
#define AUTH_TOKEN_BYTES 32
#define AUTH_API_TOKEN_PREFIX "opk_"
#define AUTH_TOKEN_BUF 64

#define AUTH_SESSION_TTL_DEFAULT (12 * 3600) /* seconds */
#define AUTH_SESSION_TTL_MIN 60
#define AUTH_SESSION_TTL_MAX (30 * 24 * 3600)
#define AUTH_SESSIONS_PER_USER 20 /* the oldest beyond this are ended */
#define AUTH_TOKENS_PER_USER 100  /* live API tokens; more are refused */
#define AUTH_TOKEN_DAYS_MAX 3650

enum auth_role {
    AUTH_ROLE_FIELD = 0, /* own and shared records */
    AUTH_ROLE_MANAGER,   /* everything in the branch */
    AUTH_ROLE_ADMIN,     /* users and settings */
    AUTH_ROLE_HQ,        /* nothing but aggregates */
};

/* "field", "manager", "admin", "hq". */
const char *auth_role_name(enum auth_role r);
/* Parses a role name; 0 or -EINVAL. */
int auth_role_parse(const char *name, enum auth_role *out);
/* "field, manager, admin, hq", for messages. */
#define AUTH_ROLE_LIST "field, manager, admin, hq"

/* What a credential may do beyond its role: a session and an API token
 * made without a scope may do all the role allows; a token of scope
 * `metrics` reads GET /metrics and nothing else (no record, no search, no
 * aggregate), for a monitoring system. */
enum auth_scope {
    AUTH_SCOPE_ALL = 0,
    AUTH_SCOPE_METRICS,
};

/* "" for AUTH_SCOPE_ALL, "metrics". */
const char *auth_scope_name(enum auth_scope s);
/* Parses a scope given on the command line ("metrics"): 0, or -EINVAL
 * with a message naming the value and the scopes there are. */
int auth_scope_parse(const char *name, enum auth_scope *out, struct op_error *err);
#define AUTH_SCOPE_LIST "metrics"

/* A user name is 1..64 bytes of a-z, 0-9, '.', '_', '-', '@', starting
 * with a letter or digit (lower case only, so that "Ana" and "ana" cannot
 * be two accounts). Returns 0 or -EINVAL with the reason in err. */
int auth_name_check(const char *name, struct op_error *err);

/* Checks a new password against the limits: at least
 * AUTH_PASSWORD_MIN_CHARS code points, at most AUTH_PASSWORD_MAX_BYTES
 * bytes, valid UTF-8 without control characters. 0 or -EINVAL. */
int auth_password_check(const char *password, struct op_error *err);

/* Hashes a password with yescrypt and a fresh random salt. On success *out
 * is a malloc'd crypt(3) string ("$y$...") the caller frees. */
int auth_password_hash(const char *password, char **out, struct op_error *err);

/* Compares a password with a stored crypt(3) hash in constant time.
 * Returns 0 on a match, -EACCES on a mismatch, -EINVAL for a hash that is
 * not a supported method. Pure: touches no database, so a daemon may run
 * it on a worker thread. */
int auth_password_verify(const char *password, const char *hash);

/* Burns the time of one verification against a default-cost hash (for an
 * unknown user, so that it cannot be told from a wrong password). */
void auth_password_dummy_verify(const char *password);

/* The authenticated principal. */
struct auth_user {
    char id[AUTH_ID_LEN];
    char name[AUTH_NAME_MAX + 1];
    enum auth_role role;
    enum auth_scope scope; /* AUTH_SCOPE_ALL but for a scoped API token */
    int via_api_token;     /* 1 for an API token, 0 for a session */
    int64_t credential_id; /* the session's or API token's row id */
    int64_t expires_ms;    /* Unix ms; 0 for an API token without expiry */
    int touch_due;         /* last use not recorded (read-only connection): see auth_touch */
};

struct auth;

/* Makes an authentication context over an open store (borrowed; it must
 * outlive the context). The context caches prepared statements; use it
 * from the thread that uses the store. */
int auth_new(struct store *s, struct auth **out, struct op_error *err);

/* Frees the context; NULL is allowed. */
void auth_free(struct auth *a);

/* Replaces the wall clock (Unix ms) used for expiry (tests). NULL restores
 * the real one. */
void auth_set_clock(struct auth *a, hlc_clock_fn now_ms, void *ctx);

/* ---- users (writes go through the store, so they are audited) ----
 * These open their own store transaction (store_begin), so they must not
 * be called while the caller holds one (-EBUSY). */

/* Creates a user. display_name may be NULL. On success, if id is not NULL,
 * it receives the new user's id. -EEXIST if the name is taken. */
int auth_user_create(struct auth *a, const char *name, enum auth_role role,
                     const char *display_name, const char *password, char id[AUTH_ID_LEN],
                     struct op_error *err);

/* Sets a new password and ends every session of the user, in one
 * transaction. API tokens stay valid (they are separate credentials).
 * -ENOENT for an unknown user. */
int auth_user_set_password(struct auth *a, const char *name, const char *password,
                           struct op_error *err);

/* Disables (1) or enables (0) a user. Disabling also ends the user's
 * sessions; a disabled user's API tokens are refused until it is enabled
 * again. Setting the state it already has succeeds without a write. */
int auth_user_set_disabled(struct auth *a, const char *name, int disabled, struct op_error *err);

/* Finds a live (not deleted) user by name; id receives its id and, if not
 * NULL, *role and *disabled its role and state. -ENOENT if none. */
int auth_user_find(struct auth *a, const char *name, char id[AUTH_ID_LEN], enum auth_role *role,
                   int *disabled, struct op_error *err);

/* ---- sessions ---- */

/* Logs in: checks the password and, on success, stores a new session for
 * the user (fixed expiry ttl_s seconds from now; 0 means
 * AUTH_SESSION_TTL_DEFAULT) and writes its token, to be given to the
 * client once, into token. remote_addr (may be NULL) is recorded. Unknown
 * user, no password set and wrong password all return -EACCES with the
 * same message after the same work; a disabled user -EPERM (told only to
 * someone who knows the password). Runs yescrypt on the calling thread; a
 * daemon that must not block can instead call auth_credentials_get, then
 * auth_password_verify on a worker, then auth_session_issue. */
int auth_session_create(struct auth *a, const char *name, const char *password,
                        const char *remote_addr, int ttl_s, char token[AUTH_TOKEN_BUF],
                        struct op_error *err);

/* The parts of auth_session_create, for a daemon that verifies passwords
 * off its event loop: auth_credentials_get reads what a login needs (it
 * returns 0 whenever the lookup itself worked, found or not; no secret is
 * in it, but callers wipe it anyway), the caller runs
 * auth_password_verify(password, c.hash) when c.found and c.hash[0], else
 * auth_password_dummy_verify(password), refuses -EACCES on a mismatch and
 * -EPERM when c.disabled, and then calls auth_session_issue. */
struct auth_credentials {
    int found;             /* a live user of that name exists */
    int disabled;          /* ...and is disabled */
    struct auth_user user; /* valid when found */
    char hash[513];        /* the stored crypt(3) hash; "" when none is set */
};
int auth_credentials_get(struct auth *a, const char *name, struct auth_credentials *c,
                         struct op_error *err);
int auth_session_issue(struct auth *a, const char *user_id, const char *remote_addr, int ttl_s,
                       char token[AUTH_TOKEN_BUF], struct op_error *err);

/* Ends the session whose token this is (logout). -EACCES if no such live
 * session. */
int auth_session_revoke(struct auth *a, const char *token, struct op_error *err);

/* Ends every session of a user (by id). Returns the number ended. */
int auth_sessions_revoke_user(struct auth *a, const char *user_id, struct op_error *err);

/* Deletes expired sessions. Returns the number deleted. Logins do this
 * too; a daemon may call it now and then. */
int auth_sessions_prune(struct auth *a, struct op_error *err);

/* ---- bearer tokens (sessions and API tokens alike) ---- */

/* Authenticates an "Authorization: Bearer" token or session cookie value:
 * a session token or an API token ("opk_..."). On success fills *user.
 * Unknown, expired, revoked, or belonging to a deleted or disabled user:
 * -EACCES. Records the credential's last use, at most once a minute; on a
 * read-only connection it cannot, and sets user->touch_due instead. */
int auth_lookup_bearer(struct auth *a, const char *token, struct auth_user *user,
                       struct op_error *err);

/* Records the last use of the credential that authenticated u (when
 * u->touch_due), for a daemon that looks tokens up on read-only
 * connections: call it on the writer's context. 0 or a negative errno. */
int auth_touch(struct auth *a, const struct auth_user *u, struct op_error *err);

/* ---- API tokens ---- */

/* Makes an API token for a user by name. label may be NULL; expires_days 0
 * means no expiry, else 1..AUTH_TOKEN_DAYS_MAX. token receives the token
 * (shown once) and *id, if not NULL, its row id. */
int auth_token_create(struct auth *a, const char *user_name, const char *label, int expires_days,
                      char token[AUTH_TOKEN_BUF], int64_t *id, struct op_error *err);
/* The same with a scope. AUTH_SCOPE_METRICS is only for a user whose role
 * may read /metrics (manager, admin): -EINVAL otherwise, nothing written. */
int auth_token_create_scoped(struct auth *a, const char *user_name, const char *label,
                             int expires_days, enum auth_scope scope, char token[AUTH_TOKEN_BUF],
                             int64_t *id, struct op_error *err);

/* Revokes an API token by id. -ENOENT if there is none; revoking a revoked
 * token succeeds and keeps the first revocation time. */
int auth_token_revoke(struct auth *a, int64_t id, struct op_error *err);

/* One API token as listed (never the token or its hash). */
struct auth_token_info {
    int64_t id;
    char user_name[AUTH_NAME_MAX + 1];
    char label[AUTH_LABEL_MAX + 1];
    int64_t created_ms;
    int64_t expires_ms;   /* 0: never */
    int64_t revoked_ms;   /* 0: not revoked */
    int64_t last_used_ms; /* 0: never used */
    enum auth_scope scope;
};

/* Calls cb for each API token (of one user when user_name is not NULL) in
 * id order. A non-zero return from cb stops the walk and is returned.
 * -ENOENT if user_name names no user. */
int auth_token_each(struct auth *a, const char *user_name,
                    int (*cb)(void *ctx, const struct auth_token_info *t), void *ctx,
                    struct op_error *err);

/* ---- failed-login limiter ---- */

/* Counts failed logins in a fixed table (no allocation after
 * auth_limiter_new, so a flood of names or addresses cannot grow memory)
 * under three keys:
 *   - the pair (user name, address): pair_max_failures, so that an
 *     attacker guessing from one address locks out that address for that
 *     name, not the owner logging in from elsewhere;
 *   - the address across names: addr_max_failures (password spraying);
 *   - the name across addresses: name_max_failures, much higher, to slow
 *     a distributed guess at one name.
 * A key that reaches its limit is locked for lockout_ms; each further
 * lockout of the same key doubles it, up to max_lockout_ms. Failures older
 * than forget_ms are forgotten. A pair that logged in successfully is
 * trusted for trust_ms: the address and name locks do not stop it (its own
 * pair lock still does), so the owner gets in during a spraying or
 * distributed attack. Addresses are keyed by their IPv6 /64 (an IPv4 or
 * IPv4-mapped address by itself), as one host usually holds a whole /64.
 *
 * A try is reserved before the password is checked and settled after, in
 * one step each (auth_limiter_begin, auth_limiter_end): tries in flight
 * count against the limits, so N parallel guesses get exactly the allowed
 * number. The daemon owns one limiter; nothing is global. Not
 * thread-safe: callers serialize the calls (but not the hashing between
 * them). */
struct auth_limiter_config {
    int pair_max_failures;  /* default 5 */
    int addr_max_failures;  /* default 20 (several staff may share an address) */
    int name_max_failures;  /* default 100 */
    int64_t lockout_ms;     /* default 30 s */
    int64_t max_lockout_ms; /* default 15 min */
    int64_t forget_ms;      /* default 15 min */
    int64_t trust_ms;       /* default 30 days */
    size_t slots;           /* table size, default 4096, at most 1 << 20 */
};

struct auth_limiter;

/* cfg may be NULL for the defaults; zero fields take their default.
 * -EINVAL for a table size out of range, -ENOMEM. */
int auth_limiter_new(const struct auth_limiter_config *cfg, struct auth_limiter **out);
void auth_limiter_free(struct auth_limiter *l);

#define AUTH_LIMIT_KEY_MAX 136 /* "p:" name '\n' address, truncated, with its NUL */

/* One reserved try, between auth_limiter_begin and auth_limiter_end. */
struct auth_limiter_try {
    int n;       /* keys held */
    int trusted; /* the pair logged in successfully within trust_ms */
    char keys[3][AUTH_LIMIT_KEY_MAX];
};

/* How a try ended. */
enum auth_limiter_outcome {
    AUTH_LIMITER_FAILED = 0, /* wrong password or unknown user alike */
    AUTH_LIMITER_OK,         /* the right password */
    AUTH_LIMITER_CANCEL,     /* the password was not checked (busy, store error) */
};

/* Reserves a try for name from addr (either may be NULL) before checking a
 * password: 0 with *t filled, or -EAGAIN with *retry_after_ms (if not
 * NULL) set to the wait, when a key is locked or its failures plus the
 * tries in flight reach its limit (then the wait is 1 s), or when the
 * table has no free slot near the key (1 s). Every 0 must be followed by
 * exactly one auth_limiter_end(t). */
int auth_limiter_begin(struct auth_limiter *l, const char *name, const char *addr, int64_t now_ms,
                       struct auth_limiter_try *t, int64_t *retry_after_ms);

/* Settles a try: FAILED counts a failure on each key (and may lock it);
 * OK forgets the pair's failures and trusts the pair (not the address's or
 * the name's failures: one known account must not launder guesses at
 * others); CANCEL only gives the try back. */
void auth_limiter_end(struct auth_limiter *l, struct auth_limiter_try *t,
                      enum auth_limiter_outcome outcome, int64_t now_ms);

/* ---- helpers ---- */

/* Fills buf with n random bytes from getrandom(2). 0 or a negative errno. */
int auth_random(void *buf, size_t n);

#endif
