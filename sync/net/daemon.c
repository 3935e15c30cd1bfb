/*
 * Signals, systemd notifications and the watchdog for a daemon's loop;
 * see daemon.h. The signal watchers are libuv's, so the hooks run on the
 * loop thread like every other callback, never inside a signal handler.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sd_notify.h"

void daemon_init(const char *program)
{
    log_init(program, LOG_LEVEL_INFO);
    signal(SIGPIPE, SIG_IGN);
    umask(077);
}

int daemon_take_allow_root(int *argc, char **argv)
{
    int found = 0, n = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], DAEMON_ALLOW_ROOT_FLAG))
            found = 1;
        else
            argv[n++] = argv[i];
    }
    for (int i = n; i < *argc; i++)
        argv[i] = NULL;
    if (*argc > 0)
        *argc = n;
    return found;
}

int daemon_check_user(int allow_root)
{
    if (geteuid() != 0 || allow_root)
        return 0;
    const char *env = getenv(DAEMON_ALLOW_ROOT_ENV);
    if (env && !strcmp(env, "1"))
        return 0;
    /* A daemon that faces the network does not hold every right on the
     * machine: a flaw in it would hand an attacker all of them. */
    log_err("refusing to run as root: run it as the outpost user (the systemd unit does), "
            "or, in a container whose only user is root, pass " DAEMON_ALLOW_ROOT_FLAG
            " or set " DAEMON_ALLOW_ROOT_ENV "=1");
    return -EPERM;
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    (void)sd_notify_send("WATCHDOG=1");
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP) {
        (void)sd_notify_send("RELOADING=1");
        d->hooks->reload(d->ctx);
        (void)sd_notify_send("READY=1");
        return;
    }
    if (d->stopping)
        return;
    d->stopping = 1;
    log_notice("%s: stopping; finishing in-flight requests",
               signum == SIGTERM ? "SIGTERM" : "SIGINT");
    (void)sd_notify_send("STOPPING=1");
    d->hooks->stop(d->ctx);
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static int watch(struct daemon *d, uv_loop_t *loop, uv_signal_t *h, int signum)
{
    int rc = uv_signal_init(loop, h);
    if (rc < 0)
        return rc;
    h->data = d;
    rc = uv_signal_start(h, on_signal, signum);
    if (rc < 0)
        uv_close((uv_handle_t *)h, close_cb);
    return rc;
}

int daemon_start(struct daemon *d, uv_loop_t *loop, const struct daemon_hooks *hooks, void *ctx)
{
    memset(d, 0, sizeof *d);
    d->hooks = hooks;
    d->ctx = ctx;
    int rc = watch(d, loop, &d->sigterm, SIGTERM);
    if (rc < 0)
        return rc;
    if ((rc = watch(d, loop, &d->sigint, SIGINT)) < 0) {
        uv_close((uv_handle_t *)&d->sigterm, close_cb);
        return rc;
    }
    if ((rc = watch(d, loop, &d->sighup, SIGHUP)) < 0) {
        uv_close((uv_handle_t *)&d->sigterm, close_cb);
        uv_close((uv_handle_t *)&d->sigint, close_cb);
        return rc;
    }
    uint64_t wd = sd_notify_watchdog_usec();
    if (wd) {
        uv_timer_init(loop, &d->watchdog);
        uv_timer_start(&d->watchdog, on_watchdog, 0, wd / 2000 ? wd / 2000 : 1);
        d->watchdog_on = 1;
    }
    return 0;
}

void daemon_ready(const char *status)
{
    char state[160];
    snprintf(state, sizeof state, "READY=1\nSTATUS=%s", status);
    (void)sd_notify_send(state);
}

void daemon_close(struct daemon *d)
{
    if (uv_is_closing((uv_handle_t *)&d->sigterm))
        return;
    uv_close((uv_handle_t *)&d->sigterm, close_cb);
    uv_close((uv_handle_t *)&d->sigint, close_cb);
    uv_close((uv_handle_t *)&d->sighup, close_cb);
    if (d->watchdog_on)
        uv_close((uv_handle_t *)&d->watchdog, close_cb);
}

void daemon_listen_host(const char *listen, char *out, size_t cap)
{
    snprintf(out, cap, "%s", listen);
    char *colon = strrchr(out, ':');
    if (colon)
        *colon = '\0';
}
