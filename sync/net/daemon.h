/*
 * What outpostd and outpost-hq do alike around their libuv loop, so both
 * behave the same to a person and to systemd (Type=notify, ExecReload
 * with SIGHUP, WatchdogSec): SIGTERM and SIGINT stop, once, after
 * "SIGTERM: stopping; finishing in-flight requests" and STOPPING=1;
 * SIGHUP reloads between RELOADING=1 and READY=1; READY=1 with a STATUS
 * once serving; WATCHDOG=1 at half the interval systemd asks for. What a
 * reload re-reads and how a stop winds down stay the daemon's own (its
 * hooks); a daemon builds its config with conf_load (conf_table.h) at
 * start and in its reload hook alike.
 *
 * struct daemon is embedded in the daemon's own state; its handles are
 * the loop's until daemon_close has closed them, after which uv_run ends
 * once the daemon's own handles are closed too.
 */
#ifndef OUTPOST_DAEMON_H
#define OUTPOST_DAEMON_H

#include <stddef.h>

#include <uv.h>

struct daemon;

/* reload: on SIGHUP, between RELOADING=1 and READY=1; it logs what it
 * took and what it refused. stop: on the first SIGTERM or SIGINT, after
 * the notice and STOPPING=1; it stops what runs on the loop and calls
 * daemon_close once that has stopped. Both get the ctx given to
 * daemon_start. */
struct daemon_hooks {
    void (*reload)(void *ctx);
    void (*stop)(void *ctx);
};

struct daemon {
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog;
    int watchdog_on;
    int stopping; /* a stop has begun: timers the daemon owns do nothing more */
    const struct daemon_hooks *hooks;
    void *ctx;
};

/* The first thing a daemon's main does: lines on stderr named `program`
 * at info until the config says otherwise (log.h), SIGPIPE ignored (a
 * peer that went away is an error on that write, not the end of the
 * process), and the umask set to 077, so every file and directory the
 * daemon creates (its database, keys, upload spool) is its user's alone
 * whatever umask it was started with. */
void daemon_init(const char *program);

/* The flag and the environment variable that let a daemon run as root,
 * for a container whose only user is root. */
#define DAEMON_ALLOW_ROOT_FLAG "--allow-root"
#define DAEMON_ALLOW_ROOT_ENV "OUTPOST_ALLOW_ROOT"

/* Takes every DAEMON_ALLOW_ROOT_FLAG out of argv (the rest move down,
 * argv[*argc] stays NULL) so the config's own flag parsing never sees it.
 * Returns 1 when it was there, else 0. */
int daemon_take_allow_root(int *argc, char **argv);

/* Refuses root: with effective uid 0, unless allow_root (the flag) or
 * DAEMON_ALLOW_ROOT_ENV is "1", logs at err why and what to do and
 * returns -EPERM; the caller exits (2, as for a bad config: restarting
 * will not help) before it opens or creates anything. Else returns 0. */
int daemon_check_user(int allow_root);

/* Watches SIGTERM, SIGINT and SIGHUP on loop and starts the watchdog
 * pings when systemd asks for them. hooks (both required) and ctx are
 * borrowed until daemon_close. Returns 0 or a libuv error (nothing is
 * left watching then). */
int daemon_start(struct daemon *d, uv_loop_t *loop, const struct daemon_hooks *hooks, void *ctx);

/* Tells systemd the daemon serves: READY=1 and STATUS=status. */
void daemon_ready(const char *status);

/* Closes the handles daemon_start opened (from the stop hook's last
 * callback); a second call does nothing. */
void daemon_close(struct daemon *d);

/* The host part of a listen address, for the line saying where the
 * daemon listens: "0.0.0.0:8080" -> "0.0.0.0", "[::1]:8443" -> "[::1]".
 * Cut to fit cap. */
void daemon_listen_host(const char *listen, char *out, size_t cap);

#endif
