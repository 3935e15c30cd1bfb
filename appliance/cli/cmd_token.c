/*
 * `outpost token create|list|revoke`: API tokens for scripts. A token is
 * printed once, on stdout alone (so `TOKEN=$(outpost token create ...)`
 * works), and never again: the node keeps only its SHA-256.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cli.h"
#include "db.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost token create --user NAME [--label TEXT] [--expires-days N]\n"
            "                            [--scope metrics]\n"
            "       outpost token list [--user NAME]\n"
            "       outpost token revoke ID\n"
            "Every form takes --db PATH (default: $OUTPOST_DB, else %s).\n\n"
            "create prints a new token (\"%s...\") for the user on stdout. It is shown\n"
            "only this once; the node keeps only a hash of it. Scripts send it as\n"
            "\"Authorization: Bearer TOKEN\" and act with the user's role. Without\n"
            "--expires-days (1 to %d) the token lasts until revoked. A user may have\n"
            "at most %d live tokens. A disabled user's tokens are refused.\n"
            "--scope metrics makes a token that reads GET /metrics and nothing else\n"
            "(403 on every other route), for a monitoring system; the user must be\n"
            "a manager or an admin. Scopes: %s.\n",
            CLI_DEFAULT_DB, AUTH_API_TOKEN_PREFIX, AUTH_TOKEN_DAYS_MAX, AUTH_TOKENS_PER_USER,
            AUTH_SCOPE_LIST);
}

/* "2026-11-24 13:10Z", or "-" for 0. */
static const char *when(int64_t ms, char buf[32])
{
    if (ms <= 0)
        return "-";
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, 32, "%Y-%m-%d %H:%MZ", &tm))
        return "?";
    return buf;
}

struct list_ctx {
    int n;
    int64_t now;
};

static int print_token(void *ctx, const struct auth_token_info *t)
{
    struct list_ctx *lc = ctx;
    if (lc->n++ == 0)
        printf("%-6s %-20s %-8s %-18s %-18s %-18s %-8s %s\n", "ID", "USER", "STATUS", "CREATED",
               "EXPIRES", "LAST USED", "SCOPE", "LABEL");
    const char *status = t->revoked_ms                               ? "revoked"
                         : t->expires_ms && t->expires_ms <= lc->now ? "expired"
                                                                     : "active";
    char b1[32], b2[32], b3[32];
    const char *scope = t->scope == AUTH_SCOPE_ALL ? "all" : auth_scope_name(t->scope);
    printf("%-6" PRId64 " %-20s %-8s %-18s %-18s %-18s %-8s %s\n", t->id, t->user_name, status,
           when(t->created_ms, b1), when(t->expires_ms, b2), when(t->last_used_ms, b3), scope,
           t->label);
    return 0;
}

struct args {
    const char *user, *label, *expires, *scope;
};

enum { CREATE, LIST, REVOKE };

static int run(const struct cli_call *c)
{
    const struct args *o = c->args;
    const char *user = o->user, *label = o->label, *expires = o->expires, *scope = o->scope;
    int is_revoke = c->isub == REVOKE, is_create = c->isub == CREATE;
    if (is_revoke && c->npos == 0)
        return cli_bad(c, "the token ID is missing (see 'token list')");
    if (c->npos > is_revoke)
        return cli_bad(c, "unexpected argument '%s'", c->pos[is_revoke]);
    if (!is_create && (label || expires || scope))
        return cli_bad(c, "--label, --expires-days and --scope are for create");
    if (is_revoke && user)
        return cli_bad(c, "takes an ID, not --user");
    if (is_create && !user)
        return cli_bad(c, "--user NAME is required");
    int64_t days = 0, id = 0;
    if (expires && cli_parse_int(expires, 1, AUTH_TOKEN_DAYS_MAX, &days) < 0)
        return cli_bad(c, "--expires-days: expected 1 to %d, got '%s'", AUTH_TOKEN_DAYS_MAX,
                       expires);
    enum auth_scope sc = AUTH_SCOPE_ALL;
    struct op_error serr;
    op_error_clear(&serr);
    if (scope && auth_scope_parse(scope, &sc, &serr) < 0)
        return cli_bad(c, "--%s", serr.msg);
    if (is_revoke && cli_parse_int(c->pos[0], 1, INT64_MAX, &id) < 0)
        return cli_bad(c, "expected a token ID (a number from 'token list'), got '%s'", c->pos[0]);

    struct store *s;
    int rc = cli_open_store("token", c->db_path, is_create || is_revoke ? 0 : DB_OPEN_READONLY, &s);
    if (rc != CLI_OK)
        return rc;
    struct op_error err;
    op_error_clear(&err);
    struct auth *a;
    int r = auth_new(s, &a, &err);
    if (r < 0) {
        store_close(s);
        return cli_fail("token", r, &err);
    }
    if (is_create) {
        char token[AUTH_TOKEN_BUF];
        r = auth_token_create_scoped(a, user, label, (int)days, sc, token, &id, &err);
        if (r == 0) {
            printf("%s\n", token);
            fflush(stdout);
            explicit_bzero(token, sizeof token);
            char b[32];
            fprintf(stderr,
                    "created API token %" PRId64 " for user %s (expires: %s%s).\n"
                    "This is the only time the token is shown; store it now (a password\n"
                    "manager or the script's secret store). Revoke it with "
                    "'outpost token revoke %" PRId64 "'.\n",
                    id, user, days ? when(hlc_wall_ms(NULL) + days * 86400000, b) : "never",
                    sc == AUTH_SCOPE_METRICS ? "; scope: GET /metrics only" : "", id);
        }
    } else if (is_revoke) {
        r = auth_token_revoke(a, id, &err);
        if (r == 0)
            printf("revoked API token %" PRId64 "\n", id);
    } else {
        struct list_ctx lc = {0, (int64_t)hlc_wall_ms(NULL)};
        r = auth_token_each(a, user, print_token, &lc, &err);
        if (r == 0 && lc.n == 0)
            fprintf(stderr, "no API tokens%s%s\n", user ? " for " : "", user ? user : "");
    }
    if (r < 0)
        rc = cli_fail("token", r, &err);
    auth_free(a);
    store_close(s);
    return rc;
}

static const struct cli_option opts[] = {
    CLI_STR("user", struct args, user),
    CLI_STR("label", struct args, label),
    CLI_STR("expires-days", struct args, expires),
    CLI_STR("scope", struct args, scope),
    CLI_OPT_END,
};

const struct cli_command cmd_token = {
    CLI_COMMAND("token", "create, list or revoke API tokens for scripts", run, usage, opts,
                struct args),
    .subs = (const char *const[]){"create", "list", "revoke", NULL},
};
