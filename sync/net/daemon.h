/*
 * What outpostd and outpost-hq do alike around their libuv loop, so both
 * behave the same to a person and to systemd (Type=notify, ExecReload
 * with SIGHUP, WatchdogSec): SIGTERM and SIGINT stop, once, after
 * "SIGTERM: stopping; finishing in-flight requests" and STOPPING=1;
 * SIGHUP reloads between RELOADING=1 and READY=1; READY=1 with a STATUS
 * once serving; WATCHDOG=1 at half the interval systemd asks for. Each
 * reload's outcome (taken, or refused and why) is written to the file
 * DAEMON_RELOAD_FILE in $RUNTIME_DIRECTORY (the unit's RuntimeDirectory=),
 * where daemon_reload_request, the unit's ExecReload, reads it: so
 * `systemctl reload` fails on a refused file, and no kill(1) is needed
 * (a minimal install has none). What a
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
#include <sys/types.h>

#include <uv.h>

#include "op_error.h"

struct daemon;

/* reload: on SIGHUP, between RELOADING=1 and READY=1; it logs what it
 * took and what it refused, and returns 0 when it took everything, or a
 * negative code with err saying what it refused (the running settings
 * stay). stop: on the first SIGTERM or SIGINT, after
 * the notice and STOPPING=1; it stops what runs on the loop and calls
 * daemon_close once that has stopped. Both get the ctx given to
 * daemon_start. */
struct daemon_hooks {
    int (*reload)(void *ctx, struct op_error *err);
    void (*stop)(void *ctx);
};

struct daemon {
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog;
    int watchdog_on;
    int stopping;     /* a stop has begun: timers the daemon owns do nothing more */
    unsigned reloads; /* SIGHUPs handled, for the reload file */
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

/* The file in $RUNTIME_DIRECTORY that holds the last reload's outcome, one
 * line: "PID N ok" or "PID N refused WHY" (N counts this process's
 * reloads from 1), replaced whole with a rename. */
#define DAEMON_RELOAD_FILE "reload-result"

/* The longest a reload request waits for the outcome. */
#define DAEMON_RELOAD_WAIT_MS 60000

/* A reload request's answer when the daemon refused the reload. */
#define DAEMON_RELOAD_REFUSED 1

/* The unit's ExecReload (`outpostd --reload $MAINPID`): sends SIGHUP to
 * pid_text (a process id, as systemd's $MAINPID gives it) with kill(2),
 * then, when $RUNTIME_DIRECTORY is set, waits up to wait_ms for the
 * daemon's DAEMON_RELOAD_FILE to name this reload. Returns 0 when the
 * reload was taken (or, without $RUNTIME_DIRECTORY, when the signal was
 * sent: the daemon's log then says the rest), DAEMON_RELOAD_REFUSED with
 * err->msg the daemon's reason, or a negative errno with err saying what
 * failed: -EINVAL for a pid that is not one, kill(2)'s error, -ETIMEDOUT
 * when no outcome came. */
int daemon_reload_request(const char *pid_text, unsigned wait_ms, struct op_error *err);

/* Closes the handles daemon_start opened (from the stop hook's last
 * callback); a second call does nothing. */
void daemon_close(struct daemon *d);

/* The host part of a listen address, for the line saying where the
 * daemon listens: "0.0.0.0:8080" -> "0.0.0.0", "[::1]:8443" -> "[::1]".
 * Cut to fit cap. */
void daemon_listen_host(const char *listen, char *out, size_t cap);

#endif
