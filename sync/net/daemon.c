/*
 * Signals, systemd notifications and the watchdog for a daemon's loop;
 * see daemon.h. The signal watchers are libuv's, so the hooks run on the
 * loop thread like every other callback, never inside a signal handler.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* The directory of $RUNTIME_DIRECTORY (the first, when systemd lists
 * several with ':'), or 0 when there is none. */
static int runtime_dir(char *out, size_t cap)
{
    const char *env = getenv("RUNTIME_DIRECTORY");
    if (!env || env[0] != '/')
        return 0;
    size_t n = strcspn(env, ":");
    if (n >= cap)
        return 0;
    memcpy(out, env, n);
    out[n] = '\0';
    return 1;
}

/* Writes "PID N ok|refused WHY" to DAEMON_RELOAD_FILE whole (a temporary
 * file renamed over it). A daemon that cannot write it still reloaded:
 * the request then times out and says to read the log. */
static void write_reload_result(unsigned n, int rc, const struct op_error *err)
{
    char dir[512], path[600], tmp[620], line[700];
    if (!runtime_dir(dir, sizeof dir))
        return;
    snprintf(path, sizeof path, "%s/%s", dir, DAEMON_RELOAD_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int len =
        snprintf(line, sizeof line, "%ld %u %s%s%s\n", (long)getpid(), n, rc < 0 ? "refused" : "ok",
                 rc < 0 ? " " : "", rc < 0 ? (err->msg[0] ? err->msg : strerror(-rc)) : "");
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line) {
        len = (int)sizeof line - 1;
        line[len - 1] = '\n';
    }
    for (int i = 0; i < len - 1; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_warning("reload: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    ssize_t w = write(fd, line, (size_t)len);
    int ok = w == len;
    if (close(fd) < 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        log_warning("reload: cannot write %s: %s", path, strerror(errno));
        (void)unlink(tmp);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP) {
        (void)sd_notify_send("RELOADING=1");
        struct op_error err;
        op_error_clear(&err);
        int rc = d->hooks->reload(d->ctx, &err);
        write_reload_result(++d->reloads, rc, &err);
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

/* Reads the reload file into buf; 0 when there is none yet. */
static int read_result(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return (int)n;
}

int daemon_reload_request(const char *pid_text, unsigned wait_ms, struct op_error *err)
{
    char *end = NULL;
    errno = 0;
    long pid = pid_text ? strtol(pid_text, &end, 10) : 0;
    if (!pid_text || !*pid_text || *end || errno || pid <= 1 || pid > 0x7fffffffL)
        return op_error_set(err, -EINVAL, NULL,
                            "'%s' is not a process id (the unit passes $MAINPID)",
                            pid_text ? pid_text : "");
    char dir[512], path[600], before[700] = "", now[700];
    int have_dir = runtime_dir(dir, sizeof dir);
    if (have_dir) {
        snprintf(path, sizeof path, "%s/%s", dir, DAEMON_RELOAD_FILE);
        int rc = read_result(path, before, sizeof before);
        if (rc < 0)
            return op_error_set(err, rc, NULL, "cannot read %s: %s", path, strerror(-rc));
    }
    if (kill((pid_t)pid, SIGHUP) < 0) {
        int e = errno;
        return op_error_set(err, -e, NULL, "cannot signal process %ld: %s", pid, strerror(e));
    }
    if (!have_dir)
        return 0;
    /* The daemon writes a new line for every reload; the first line that
     * differs from the one before the signal is this reload's. */
    for (unsigned waited = 0; waited <= wait_ms; waited += 50) {
        int rc = read_result(path, now, sizeof now);
        if (rc < 0)
            return op_error_set(err, rc, NULL, "cannot read %s: %s", path, strerror(-rc));
        if (rc > 0 && strcmp(now, before)) {
            long who = 0;
            unsigned n = 0;
            int off = 0;
            char word[16] = "";
            if (sscanf(now, "%ld %u %15s%n", &who, &n, word, &off) < 3)
                return op_error_set(err, -EPROTO, NULL, "%s: unreadable: %s", path, now);
            now[strcspn(now, "\n")] = '\0';
            if (!strcmp(word, "ok"))
                return 0;
            const char *why = now + off;
            while (*why == ' ')
                why++;
            op_error_set(err, -EINVAL, NULL, "%s", why);
            return DAEMON_RELOAD_REFUSED;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return op_error_set(err, -ETIMEDOUT, NULL,
                        "process %ld did not report the reload within %u s; see its log", pid,
                        wait_ms / 1000);
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
