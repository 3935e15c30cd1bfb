/* Shared helpers of the admin CLI; see cli.h. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "node_policy.h"
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

int cli_open_store(const char *cmd, const char *path, unsigned db_flags, struct store **out)
{
    struct op_error err;
    op_error_clear(&err);
    int rc = store_open(path, db_flags, out, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost %s: %s\n", cmd, err.msg);
        return rc == -ENOENT ? CLI_FAIL : cli_exit_for(rc);
    }
    char actor[128];
    cli_actor(actor, sizeof actor);
    store_set_actor(*out, actor, NULL);
    if (db_flags & DB_OPEN_READONLY)
        return CLI_OK; /* reads apply no collection rules */
    int ret = load_policy(cmd, path, *out);
    if (ret != CLI_OK) {
        store_close(*out);
        *out = NULL;
    }
    return ret;
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

int cli_fail(const char *cmd, int rc, const struct op_error *err)
{
    if (err && err->msg[0])
        fprintf(stderr, "outpost %s: %s\n", cmd, err->msg);
    else
        fprintf(stderr, "outpost %s: %s\n", cmd, strerror(rc < 0 && rc > -4096 ? -rc : EIO));
    return cli_exit_for(rc);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "outpost %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'outpost %s --help')\n", cmd);
    return CLI_USAGE;
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
    p->enabled = isatty(STDERR_FILENO);
    p->start_ms = p->last_ms = cli_now_ms();
}

void cli_progress_tick(struct cli_progress *p, uint64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    uint64_t now = cli_now_ms();
    if (now - p->last_ms < 250)
        return;
    p->last_ms = now;
    double secs = (double)(now - p->start_ms) / 1000.0;
    fprintf(stderr, "\r%s %" PRIu64 " rows (%.0f rows/s)   ", p->what, done,
            secs > 0 ? (double)done / secs : 0.0);
    fflush(stderr);
}

void cli_progress_done(struct cli_progress *p)
{
    if (p->enabled)
        fprintf(stderr, "\r\033[K");
}
