/* The admin CLI's command table, command-line parsing and shared helpers;
 * see cli.h. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "node_policy.h"
#include "outpost_config.h"
#include "policy.h"

/* The region policy of the store cli_open_store opened last: the store
 * only borrows it, and a CLI process opens one store, so it lives until
 * exit. */
static struct policy *cli_policy;

static void free_cli_policy(void)
{
    policy_free(cli_policy);
    cli_policy = NULL;
}

/* Loads the node's region policy (node_policy.h: $OUTPOST_POLICY, else
 * the HQ override beside the database, else the region's profile) and
 * sets it on the store. */
static int load_policy(const char *cmd, const char *db_path, struct store *s)
{
    const char *region = store_region(s);
    const char *env = getenv("OUTPOST_POLICY");
    struct op_error err;
    op_error_clear(&err);
    if (!region && !(env && *env))
        return CLI_OK; /* not initialized yet: no rules to apply */
    struct policy *p = NULL;
    int rc = node_policy_load(NULL, db_path, region, &p, &err);
    if (rc < 0) {
        if (rc != -EINVAL && !strcmp(err.field, "region"))
            fprintf(stderr,
                    "outpost %s: %s (install it, or name a policy file in OUTPOST_POLICY)\n", cmd,
                    err.msg);
        else
            fprintf(stderr, "outpost %s: %s\n", cmd, err.msg);
        return CLI_FAIL;
    }
    if (!cli_policy)
        atexit(free_cli_policy);
    policy_free(cli_policy);
    cli_policy = p;
    store_set_policy(s, p);
    return CLI_OK;
}

const char *cli_db_path(const char *opt)
{
    if (opt && *opt)
        return opt;
    const char *env = getenv("OUTPOST_DB");
    if (env && *env)
        return env;
    return CLI_DEFAULT_DB;
}

int cli_lock_wait(unsigned *seconds)
{
    *seconds = CLI_LOCK_WAIT_DEFAULT;
    const char *env = getenv("OUTPOST_LOCK_WAIT");
    if (!env || !*env)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(env, &end, 10);
    if (errno || *end || *env == '-' || v < 1 || v > CLI_LOCK_WAIT_MAX)
        return -EINVAL;
    *seconds = (unsigned)v;
    return 0;
}

int cli_open_plain(const char *cmd, const char *path, unsigned db_flags, struct store **out)
{
    static const struct cli_exit_rule rules[] = {{-ENOENT, CLI_FAIL}, {0, CLI_EXIT_FOR}};
    unsigned wait_s;
    if (cli_lock_wait(&wait_s) < 0) {
        fprintf(stderr,
                "outpost %s: OUTPOST_LOCK_WAIT: '%.40s' is not a number of seconds from 1 to "
                "%d\n",
                cmd, getenv("OUTPOST_LOCK_WAIT"), CLI_LOCK_WAIT_MAX);
        return CLI_USAGE;
    }
    struct op_error err;
    op_error_clear(&err);
    int rc = store_open(path, db_flags, out, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost %s: %s\n", cmd, err.msg);
        return cli_exit_by(rc, rules);
    }
    /* A person at a terminal waits for the daemon's write (a segment cut
     * under load can hold the lock for seconds) rather than retyping
     * (cli_main set it for every connection; this store is sure of it). */
    store_set_busy_timeout(*out, wait_s * 1000u);
    return CLI_OK;
}

int cli_open_store(const char *cmd, const char *path, unsigned db_flags, struct store **out)
{
    int ret = cli_open_plain(cmd, path, db_flags, out);
    if (ret != CLI_OK)
        return ret;
    char actor[128];
    cli_actor(actor, sizeof actor);
    store_set_actor(*out, actor, NULL);
    if (db_flags & DB_OPEN_READONLY)
        return CLI_OK; /* reads apply no collection rules */
    ret = load_policy(cmd, path, *out);
    if (ret != CLI_OK) {
        store_close(*out);
        *out = NULL;
    }
    return ret;
}

int cli_open_node(const char *cmd, const char *path, struct store **out)
{
    int ret = cli_open_store(cmd, path, 0, out);
    if (ret != CLI_OK)
        return ret;
    if (!store_node_id(*out)) {
        store_close(*out);
        *out = NULL;
        fprintf(stderr, "outpost %s: the database has no node yet; run 'outpost init'\n", cmd);
        return CLI_FAIL;
    }
    return CLI_OK;
}

void cli_actor(char *out, size_t cap)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(out, cap, "cli:%s", pw && pw->pw_name ? pw->pw_name : "unknown");
}

int cli_exit_for(int rc)
{
    switch (rc) {
    case 0:
        return CLI_OK;
    case -EINVAL:
        return CLI_BADINPUT;
    case -ENOENT:
        return CLI_NOTFOUND;
    case STORE_EVERSION:
    case STORE_EDUP:
    case -EEXIST:
        return CLI_CONFLICT;
    default:
        return CLI_FAIL;
    }
}

int cli_exit_by(int rc, const struct cli_exit_rule *rules)
{
    if (rc == 0 || !rules)
        return cli_exit_for(rc);
    for (; rules->rc; rules++)
        if (rules->rc == rc)
            return rules->exit;
    return rules->exit == CLI_EXIT_FOR ? cli_exit_for(rc) : rules->exit;
}

int cli_fail_by(const char *cmd, int rc, const struct op_error *err,
                const struct cli_exit_rule *rules)
{
    if (err && err->msg[0])
        fprintf(stderr, "outpost %s: %s\n", cmd, err->msg);
    else
        fprintf(stderr, "outpost %s: %s\n", cmd, strerror(rc < 0 && rc > -4096 ? -rc : EIO));
    unsigned wait_s;
    if (rc == -EBUSY && err && strstr(err->msg, "locked") && cli_lock_wait(&wait_s) == 0)
        fprintf(stderr,
                "outpost %s: another process held the database's write lock for more than %u s "
                "(outpostd cutting a segment, an import); nothing was changed: try again, or "
                "wait longer with OUTPOST_LOCK_WAIT=SECONDS\n",
                cmd, wait_s);
    return cli_exit_by(rc, rules);
}

int cli_fail(const char *cmd, int rc, const struct op_error *err)
{
    return cli_fail_by(cmd, rc, err, NULL);
}

__attribute__((format(printf, 3, 0))) static int usage_errorv(const char *cmd, const char *sub,
                                                              const char *fmt, va_list ap)
{
    fprintf(stderr, "outpost %s: ", cmd);
    if (sub)
        fprintf(stderr, "%s: ", sub);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'outpost %s --help')\n", cmd);
    return CLI_USAGE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = usage_errorv(cmd, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_bad(const struct cli_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = usage_errorv(c->cmd->name, c->sub, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

uint64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cli_progress_start(struct cli_progress *p, const char *what)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->unit = "rows";
    p->enabled = isatty(STDERR_FILENO);
    p->start_ms = p->last_ms = cli_now_ms();
}

void cli_progress_total(struct cli_progress *p, uint64_t total, const char *unit)
{
    p->total = total;
    if (unit)
        p->unit = unit;
}

void cli_progress_tick(struct cli_progress *p, uint64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    uint64_t now = cli_now_ms();
    if (p->shown && now - p->last_ms < 250)
        return;
    p->last_ms = now;
    p->shown = 1;
    double secs = (double)(now - p->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)done / secs : 0.0;
    char line[160];
    int n = snprintf(line, sizeof line, "%s %" PRIu64, p->what, done);
    if (p->total && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " of %" PRIu64, p->total);
    if (n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " %s", p->unit);
    if (p->total && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " (%d%%)",
                      (int)(100.0 * (double)done / (double)p->total));
    if (secs >= 0.2 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ", %.0f %s/s", rate, p->unit);
    if (p->total && done < p->total && rate > 0 && secs >= 0.2 && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, ", about %.0f s left",
                 (double)(p->total - done) / rate + 0.5);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
}

void cli_progress_done(struct cli_progress *p)
{
    if (p->enabled && p->shown)
        fprintf(stderr, "\r\033[K");
    p->shown = 0;
}

/* ---- the command line ------------------------------------------------------- */

static const struct cli_command *const commands[] = {
    &cmd_init,      &cmd_contact,  &cmd_search,        &cmd_import, &cmd_export, &cmd_backup,
    &cmd_restore,   &cmd_check,    &cmd_user,          &cmd_token,  &cmd_cert,   &cmd_retention,
    &cmd_subject,   &cmd_consent,  &cmd_egress_report, &cmd_status, &cmd_sync,   &cmd_policy,
    &cmd_aggregate, &cmd_outreach, &cmd_campaign,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Options a command may declare; more is a mistake in its table. */
#define CLI_OPTS_MAX 16
/* getopt_long's code for option i; clear of '?' and ':'. */
#define OPT_CODE 256

static int is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h") || !strcmp(arg, "help");
}

/* "a, b, c" (or "a or b") from a NULL-terminated list. */
static void join(const char *const *list, const char *sep, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; list[i] && o < cap; i++) {
        int n = snprintf(out + o, cap - o, "%s%s", i ? sep : "", list[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

/* Stores one option's value in c->args; a usage error's exit code if it
 * is not one the option takes. */
static int store_option(const struct cli_call *c, const struct cli_option *o, const char *val)
{
    char *at = (char *)c->args + o->off;
    switch (o->kind) {
    case CLI_OPT_FLAG:
        *(int *)(void *)at = 1;
        return CLI_OK;
    case CLI_OPT_FILE:
        if (!*val)
            return cli_bad(c, "--%s needs a file name", o->name);
        /* fall through */
    case CLI_OPT_STR:
        *(const char **)(void *)at = val;
        return CLI_OK;
    case CLI_OPT_INT:
        if (cli_parse_int(val, o->min, o->max, (int64_t *)(void *)at) < 0)
            return cli_bad(c, "--%s: expected %" PRId64 " to %" PRId64 ", got '%s'", o->name,
                           o->min, o->max, val);
        return CLI_OK;
    case CLI_OPT_CHOICE:
        for (int i = 0; o->choices[i]; i++)
            if (!strcmp(val, o->choices[i])) {
                *(int *)(void *)at = i;
                return CLI_OK;
            }
        char list[128];
        join(o->choices, " or ", list, sizeof list);
        return cli_bad(c, "unknown %s '%s' (%s)", o->name, val, list);
    case CLI_OPT_REFUSE:
        return cli_bad(c, "%s", o->why);
    }
    return CLI_FAIL;
}

/* Parses argv (argv[0] is the command or the subcommand) into c by
 * c->cmd's options. Returns -1 to run the command, else the exit code
 * to end with (after --help or a usage error). */
static int parse(struct cli_call *c, int argc, char **argv)
{
    const struct cli_command *cmd = c->cmd;
    struct option lo[CLI_OPTS_MAX + 3];
    size_t n = 0;
    for (; cmd->opts && cmd->opts[n].name; n++) {
        if (n == CLI_OPTS_MAX) {
            fprintf(stderr, "outpost %s: too many options in its table\n", cmd->name);
            return CLI_FAIL;
        }
        enum cli_opt_kind k = cmd->opts[n].kind;
        lo[n] = (struct option){cmd->opts[n].name,
                                k == CLI_OPT_FLAG     ? no_argument
                                : k == CLI_OPT_REFUSE ? optional_argument
                                                      : required_argument,
                                NULL, OPT_CODE + (int)n};
    }
    const int db_code = OPT_CODE + (int)n, help_code = db_code + 1;
    lo[n] = (struct option){"db", required_argument, NULL, db_code};
    lo[n + 1] = (struct option){"help", no_argument, NULL, help_code};
    lo[n + 2] = (struct option){NULL, 0, NULL, 0};
    /* ":" tells a missing value from an unknown option; "+": options end
     * at the first argument. Elsewhere options may follow the arguments
     * (`search lodz --limit 2`), and "--" ends them. */
    const char *optstring = (cmd->flags & CLI_IN_ORDER) ? "+:" : ":";
    const char *db = NULL;
    int ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, optstring, lo, NULL)) != -1) {
        if (ch == db_code) {
            db = optarg;
        } else if (ch == help_code) {
            cmd->usage(stdout);
            return CLI_OK;
        } else if (ch == ':') {
            return cli_bad(c, "%s needs a value", argv[optind - 1]);
        } else if (ch < OPT_CODE) {
            /* getopt_long also takes a unique prefix (--lim for --limit);
             * a prefix of two options is refused here too. */
            const char *arg = argv[optind - 1];
            if (ch != '?' || strncmp(arg, "--", 2))
                return cli_bad(c, "unknown option '%s'", arg);
            return cli_bad(c, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
        } else {
            int ret = store_option(c, &cmd->opts[ch - OPT_CODE], optarg);
            if (ret != CLI_OK)
                return ret;
        }
    }
    c->db_path = cli_db_path(db);
    c->pos = argv + optind;
    c->npos = argc - optind;
    if ((cmd->flags & CLI_NO_ARGS) && c->npos > 0)
        return cli_bad(c, "unexpected argument '%s'", c->pos[0]);
    return -1;
}

int cli_run(const struct cli_command *cmd, int argc, char **argv)
{
    struct cli_call c = {
        .cmd = cmd, .db_path = cli_db_path(NULL), .pos = argv + 1, .npos = argc - 1};
    if (cmd->subs) {
        if (argc < 2) {
            cmd->usage(stderr);
            return CLI_USAGE;
        }
        const char *sub = argv[1];
        /* contact's own parser never took the word "help" */
        if (is_help(sub) && !((cmd->flags & CLI_OWN_PARSER) && !strcmp(sub, "help"))) {
            cmd->usage(stdout);
            return CLI_OK;
        }
        c.isub = -1;
        for (int i = 0; cmd->subs[i]; i++)
            if (!strcmp(sub, cmd->subs[i]))
                c.isub = i;
        if (c.isub < 0) {
            char list[256];
            join(cmd->subs, ", ", list, sizeof list);
            return cli_usage_error(cmd->name, "unknown subcommand '%s' (%s)", sub, list);
        }
        argc--;
        argv++;
        c.sub = sub;
        c.pos = argv + 1;
        c.npos = argc - 1;
    }
    c.args = calloc(1, cmd->args_size ? cmd->args_size : 1);
    if (!c.args) {
        fprintf(stderr, "outpost %s: out of memory\n", cmd->name);
        return CLI_FAIL;
    }
    int ret = cmd->flags & CLI_OWN_PARSER ? -1 : parse(&c, argc, argv);
    if (ret < 0)
        ret = cmd->run(&c);
    free(c.args);
    return ret;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost COMMAND [OPTIONS]\n\n"
                 "Administer an Outpost node database.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out,
            "\nEvery command takes --db PATH (default: $OUTPOST_DB, else %s)\n"
            "and --help. Exit codes: 0 ok, 1 failed, 2 usage, 3 bad input (nothing\n"
            "changed), 4 conflict or duplicate (nothing changed), 5 not found,\n"
            "6 'policy diff': the policy offered loosens the one in force.\n",
            CLI_DEFAULT_DB);
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (is_help(name)) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("outpost %s\n", OUTPOST_VERSION);
        return CLI_OK;
    }
    /* Every connection of this run waits OUTPOST_LOCK_WAIT for another
     * writer (a malformed value is refused where the store is opened). */
    unsigned wait_s;
    if (cli_lock_wait(&wait_s) == 0)
        db_set_busy_timeout_default(wait_s * 1000u);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(name, commands[i]->name))
            return cli_run(commands[i], argc - 1, argv + 1);
    fprintf(stderr, "outpost: unknown command '%s'\n\n", name);
    usage(stderr);
    return CLI_USAGE;
}
