/*
 * The parent's side of the unit tests of servers on the libuv loop
 * (http_server, tus_server, hq_serve): a loop whose waits are bounded by a
 * watchdog, and a forked child that plays the client while the parent
 * serves. Every wait ends: the child has an alarm and the parent a deadline.
 */
#ifndef OUTPOST_TESTLOOP_H
#define OUTPOST_TESTLOOP_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

/* A loop for a server under test, with a watchdog that bounds every wait
 * on it. */
struct th_loop {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int timed_out;
};

static inline void th_loop_init(struct th_loop *t)
{
    memset(t, 0, sizeof *t);
    uv_loop_init(&t->loop);
    uv_timer_init(&t->loop, &t->watchdog);
    t->watchdog.data = t;
}

static inline void th_on_watchdog(uv_timer_t *w)
{
    struct th_loop *t = w->data;
    t->timed_out = 1;
}

/* Runs the loop until *flag is set or ms pass; returns 0 or -ETIMEDOUT. */
static inline int th_run_until(struct th_loop *t, int *flag, uint64_t ms)
{
    t->timed_out = 0;
    uv_timer_start(&t->watchdog, th_on_watchdog, ms, 0);
    while (!*flag && !t->timed_out)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_timer_stop(&t->watchdog);
    return *flag ? 0 : -ETIMEDOUT;
}

/* Closes the watchdog, runs the loop dry and closes it: uv_loop_close's
 * result, 0 when every handle was closed (nothing leaked on the loop). */
static inline int th_loop_done(struct th_loop *t)
{
    uv_close((uv_handle_t *)&t->watchdog, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&t->loop);
}

struct th_run {
    uv_timer_t reaper;
    pid_t pid;
    int done, status;
    uint64_t deadline;
};

static inline void th_reap(uv_timer_t *t)
{
    struct th_run *r = t->data;
    int st;
    if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
        r->done = 1;
        r->status = st;
    }
}

/* Runs fn(port, arg) in a forked child (alarm: 20 s) while the parent runs
 * loop, so that a server on the loop answers it. Returns the child's exit
 * code (its failed checks), 97 if it died of a signal, 98 if it did not
 * end within 25 s, 99 if fork failed. */
static inline int th_run_client(uv_loop_t *loop, int port, int (*fn)(int port, void *arg),
                                void *arg)
{
    fflush(stdout);
    fflush(stderr);
    struct th_run r = {.pid = fork()};
    if (r.pid < 0)
        return 99;
    if (r.pid == 0) {
        /* Drop the parent's sockets: a copy here would keep a connection
         * open after the server closed it. */
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        signal(SIGPIPE, SIG_IGN);
        alarm(20);
        int rc = fn(port, arg);
        _exit(rc > 90 ? 90 : rc);
    }
    uv_timer_init(loop, &r.reaper);
    r.reaper.data = &r;
    uv_timer_start(&r.reaper, th_reap, 5, 5);
    uv_update_time(loop);
    r.deadline = uv_now(loop) + 25000;
    while (!r.done && uv_now(loop) < r.deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&r.reaper, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (!r.done) {
        kill(r.pid, SIGKILL);
        waitpid(r.pid, NULL, 0);
        fprintf(stderr, "client timed out\n");
        return 98;
    }
    if (WIFEXITED(r.status))
        return WEXITSTATUS(r.status);
    fprintf(stderr, "client died of signal %d\n", WTERMSIG(r.status));
    return 97;
}

#endif
