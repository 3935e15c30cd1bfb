/*
 * `outpost user add|passwd|disable|enable|list`: the node's user accounts.
 * Every change is a store write (versioned, in the audit log under the CLI
 * user's name). Passwords come from a no-echo prompt (asked twice) or, for
 * scripts, one line on stdin with --password-stdin; never from the command
 * line, where shell history and `ps` would keep them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"
#include "db.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost user add NAME --role ROLE [--display-name TEXT] [--password-stdin]\n"
            "       outpost user passwd NAME [--password-stdin]\n"
            "       outpost user disable NAME\n"
            "       outpost user enable NAME\n"
            "       outpost user list\n"
            "Every form takes --db PATH (default: $OUTPOST_DB, else %s).\n\n"
            "ROLE is one of: %s\n"
            "  field    own and shared records\n"
            "  manager  every record in the branch\n"
            "  admin    users and settings\n"
            "  hq       aggregates only\n\n"
            "NAME: 1 to %d characters a-z 0-9 . _ - @ (lower case).\n"
            "The password is asked twice without echo when stdin is a terminal; with\n"
            "--password-stdin the first line of stdin is the password. It needs at least\n"
            "%d characters (at most %d bytes). passwd and disable end the user's open\n"
            "sessions; a disabled user's API tokens stop working until it is enabled.\n",
            CLI_DEFAULT_DB, AUTH_ROLE_LIST, AUTH_NAME_MAX, AUTH_PASSWORD_MIN_CHARS,
            AUTH_PASSWORD_MAX_BYTES);
}

/* ---- reading a password ------------------------------------------------------ */

/* The terminal settings to put back if a signal arrives mid-prompt (the
 * one piece of state a signal handler can reach). */
static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty(int sig)
{
    if (tty_changed)
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line into buf (cap = AUTH_PASSWORD_MAX_BYTES + 2), without its
 * line end. -E2BIG if it is longer than the limit, -ENODATA at EOF. */
static int read_line(FILE *in, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, in))
        return -ENODATA;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (n == cap - 1) {
        int c;
        while ((c = fgetc(in)) != EOF && c != '\n')
            ;
        return -E2BIG;
    }
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return 0;
}

static int prompt(const char *text, char *buf, size_t cap)
{
    if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
        return -errno;
    struct termios quiet = saved_tty;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    struct sigaction sa, old[3];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_tty;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &sa, &old[i]);
    int rc = 0;
    /* Echo off before the prompt shows, so nothing typed after it is
     * echoed or flushed away. */
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        rc = -errno;
    else
        tty_changed = 1;
    fprintf(stderr, "%s", text);
    fflush(stderr);
    if (rc == 0)
        rc = read_line(stdin, buf, cap);
    if (tty_changed) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        tty_changed = 0;
    }
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &old[i], NULL);
    return rc;
}

#define PW_BUF (AUTH_PASSWORD_MAX_BYTES + 2)

/* Gets a new password for `name` into pw (PW_BUF bytes) and checks it.
 * Returns CLI_OK or an exit code after printing why. */
static int get_password(const char *name, int from_stdin, char pw[PW_BUF])
{
    struct op_error err;
    op_error_clear(&err);
    int rc;
    if (from_stdin) {
        rc = read_line(stdin, pw, PW_BUF);
        if (rc == -ENODATA) {
            fprintf(stderr, "outpost user: --password-stdin: no password on stdin\n");
            return CLI_BADINPUT;
        }
    } else {
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr, "outpost user: stdin is not a terminal; to give the password from "
                            "a script, pipe it in with --password-stdin\n");
            return CLI_USAGE;
        }
        char again[PW_BUF], text[128];
        snprintf(text, sizeof text, "New password for %s: ", name);
        rc = prompt(text, pw, PW_BUF);
        if (rc == 0 && auth_password_check(pw, &err) == 0) {
            rc = prompt("Repeat it: ", again, sizeof again);
            if (rc == 0 && strcmp(pw, again) != 0) {
                explicit_bzero(again, sizeof again);
                fprintf(stderr, "outpost user: the two passwords differ; nothing changed\n");
                return CLI_BADINPUT;
            }
        }
        explicit_bzero(again, sizeof again);
        if (rc == -ENODATA) {
            fprintf(stderr, "outpost user: no password given; nothing changed\n");
            return CLI_BADINPUT;
        }
        if (rc < 0 && rc != -E2BIG) {
            fprintf(stderr, "outpost user: cannot read the password: %s\n", strerror(-rc));
            return CLI_FAIL;
        }
    }
    if (rc == -E2BIG) {
        fprintf(stderr, "outpost user: password: longer than %d bytes; nothing changed\n",
                AUTH_PASSWORD_MAX_BYTES);
        return CLI_BADINPUT;
    }
    if (auth_password_check(pw, &err) < 0) {
        fprintf(stderr, "outpost user: %s; nothing changed\n", err.msg);
        return CLI_BADINPUT;
    }
    return CLI_OK;
}

/* ---- the subcommands -------------------------------------------------------------- */

struct args {
    const char *db;
    const char *name;
    const char *role;
    const char *display_name;
    int password_stdin;
};

/* A change to one user: the store, an auth context over it, and the user
 * looked up by name before anything is asked (found: auth_user_find's
 * result, -ENOENT when there is no such user). */
struct user_op {
    struct store *s;
    struct auth *a;
    struct op_error err;
    char id[AUTH_ID_LEN];
    int disabled;
    int found;
};

static int op_begin(const struct args *x, struct user_op *u)
{
    memset(u, 0, sizeof *u);
    op_error_clear(&u->err);
    int rc = cli_open_node("user", x->db, &u->s);
    if (rc != CLI_OK)
        return rc;
    if (auth_new(u->s, &u->a, &u->err) < 0) {
        store_close(u->s);
        return cli_fail("user", -ENOMEM, &u->err);
    }
    u->found = auth_user_find(u->a, x->name, u->id, NULL, &u->disabled, &u->err);
    return CLI_OK;
}

static int op_end(struct user_op *u, int rc)
{
    auth_free(u->a);
    store_close(u->s);
    return rc;
}

static int user_add(struct args *x)
{
    enum auth_role role;
    struct op_error err;
    op_error_clear(&err);
    if (!x->role)
        return cli_usage_error("user", "add: --role is required (one of %s)", AUTH_ROLE_LIST);
    if (auth_role_parse(x->role, &role) < 0) {
        fprintf(stderr, "outpost user: --role: unknown role '%s' (roles: %s)\n", x->role,
                AUTH_ROLE_LIST);
        return CLI_BADINPUT;
    }
    if (auth_name_check(x->name, &err) < 0) {
        fprintf(stderr, "outpost user: %s\n", err.msg);
        return CLI_BADINPUT;
    }
    struct user_op u;
    int rc = op_begin(x, &u);
    if (rc != CLI_OK)
        return rc;
    /* Refuse a taken name before asking for a password. */
    char pw[PW_BUF];
    if (u.found == 0) {
        fprintf(stderr, "outpost user: a user named '%s' already exists\n", x->name);
        rc = CLI_CONFLICT;
    } else if (u.found != -ENOENT) {
        rc = cli_fail("user", u.found, &u.err);
    } else if ((rc = get_password(x->name, x->password_stdin, pw)) == CLI_OK) {
        op_error_clear(&u.err);
        int r = auth_user_create(u.a, x->name, role, x->display_name, pw, u.id, &u.err);
        if (r < 0)
            rc = cli_fail("user", r, &u.err);
        else
            printf("created user %s (role %s, id %s)\n", x->name, auth_role_name(role), u.id);
    }
    explicit_bzero(pw, sizeof pw);
    return op_end(&u, rc);
}

static int user_passwd(struct args *x)
{
    struct user_op u;
    int rc = op_begin(x, &u);
    if (rc != CLI_OK)
        return rc;
    /* Refuse an unknown name before asking for a password for it. */
    char pw[PW_BUF];
    if (u.found < 0) {
        rc = cli_fail("user", u.found, &u.err);
    } else if ((rc = get_password(x->name, x->password_stdin, pw)) == CLI_OK) {
        int r = auth_user_set_password(u.a, x->name, pw, &u.err);
        if (r < 0)
            rc = cli_fail("user", r, &u.err);
        else
            printf("changed the password of %s; their open sessions were ended\n", x->name);
    }
    explicit_bzero(pw, sizeof pw);
    return op_end(&u, rc);
}

static int user_set_disabled(struct args *x, int disable)
{
    struct user_op u;
    int rc = op_begin(x, &u);
    if (rc != CLI_OK)
        return rc;
    int r = u.found;
    if (r == 0 && u.disabled == disable)
        printf("user %s is already %s\n", x->name, disable ? "disabled" : "enabled");
    else if (r == 0)
        r = auth_user_set_disabled(u.a, x->name, disable, &u.err);
    if (r < 0)
        rc = cli_fail("user", r, &u.err);
    else if (u.disabled != disable)
        printf(disable ? "disabled user %s; their open sessions were ended\n" : "enabled user %s\n",
               x->name);
    return op_end(&u, rc);
}

static int user_list(struct args *x)
{
    struct store *s;
    int rc = cli_open_store("user", x->db, DB_OPEN_READONLY, &s);
    if (rc != CLI_OK)
        return rc;
    struct op_error err;
    op_error_clear(&err);
    char cursor[STORE_CURSOR_MAX] = "";
    int n = 0;
    do {
        struct store_query q = {.cursor = cursor[0] ? cursor : NULL, .limit = STORE_LIST_MAX};
        json_t *items = NULL;
        char next[STORE_CURSOR_MAX];
        int r = store_list(s, &entity_user, &q, &items, next, &err);
        if (r < 0) {
            store_close(s);
            return cli_fail("user", r, &err);
        }
        size_t i;
        json_t *u;
        json_array_foreach(items, i, u)
        {
            if (n++ == 0)
                printf("%-24s %-8s %-8s %-24s %s\n", "NAME", "ROLE", "STATUS", "CREATED",
                       "DISPLAY NAME");
            const char *dn = json_string_value(json_object_get(u, "display_name"));
            printf("%-24s %-8s %-8s %-24s %s\n", json_string_value(json_object_get(u, "name")),
                   json_string_value(json_object_get(u, "role")),
                   json_is_true(json_object_get(u, "disabled")) ? "disabled" : "active",
                   json_string_value(json_object_get(u, "created_at")), dn ? dn : "");
        }
        json_decref(items);
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);
    if (n == 0)
        fprintf(stderr, "no users yet; add one with 'outpost user add NAME --role admin'\n");
    store_close(s);
    return CLI_OK;
}

enum { ADD, PASSWD, DISABLE, ENABLE, LIST };

static int run(const struct cli_call *c)
{
    struct args x = *(const struct args *)c->args;
    x.db = c->db_path;
    int wants_name = c->isub != LIST;
    if (wants_name && c->npos == 0)
        return cli_bad(c, "the user NAME is missing");
    if (c->npos > wants_name)
        return cli_bad(c, "unexpected argument '%s'", c->pos[wants_name]);
    if (wants_name)
        x.name = c->pos[0];
    if (c->isub != ADD && (x.role || x.display_name))
        return cli_bad(c, "--role and --display-name are for add");
    if (c->isub != ADD && c->isub != PASSWD && x.password_stdin)
        return cli_bad(c, "--password-stdin is for add and passwd");

    switch (c->isub) {
    case ADD:
        return user_add(&x);
    case PASSWD:
        return user_passwd(&x);
    case DISABLE:
        return user_set_disabled(&x, 1);
    case ENABLE:
        return user_set_disabled(&x, 0);
    default:
        return user_list(&x);
    }
}

static const struct cli_option opts[] = {
    CLI_STR("role", struct args, role),
    CLI_STR("display-name", struct args, display_name),
    CLI_FLAG("password-stdin", struct args, password_stdin),
    CLI_REFUSE("password", "passwords are not taken on the command line (shell history and ps "
                           "would keep them); use the prompt or --password-stdin"),
    CLI_OPT_END,
};

/* Options may come before or after NAME. */
const struct cli_command cmd_user = {
    CLI_COMMAND("user", "add users, set passwords, disable or enable them, list them", run, usage,
                opts, struct args),
    .subs = (const char *const[]){"add", "passwd", "disable", "enable", "list", NULL},
};
