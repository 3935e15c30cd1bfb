/*
 * One hostile address against an HTTP server on loopback, for the
 * fairness test of http_server (tests/unit/sync/net/test_http_fairness.c)
 * and the benchmark against the real daemons (tests/bench/hostile_conns):
 * an attacker process opens HOSTILE_CONNS connections from 127.0.0.2
 * (the whole of 127/8 is loopback on Linux) and holds them with slowloris
 * headers, slow bodies, idle keep-alive or a mix, trickling a byte every
 * HOSTILE_TRICKLE_MS into each; a normal client from 127.0.0.1 opens a
 * fresh connection per request and records its latency. Rounds alternate
 * idle and attack, a fresh attacker each attack round, so that a burst of
 * load from the rest of a busy machine falls on both pools alike.
 *
 * The caller raises RLIMIT_NOFILE (hostile_raise_nofile) before forking.
 */
#ifndef OUTPOST_HOSTILE_H
#define OUTPOST_HOSTILE_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testsock.h"

#define HOSTILE_CONNS 1000
#define HOSTILE_TRICKLE_MS 500
#define HOSTILE_MAX_SAMPLES 100000

enum hostile_kind { HOSTILE_SLOWLORIS, HOSTILE_SLOW_BODY, HOSTILE_IDLE, HOSTILE_MIXED };
static const char *const hostile_names[] = {"slowloris", "slow body", "idle keep-alive", "mixed"};

static inline void hostile_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline int64_t hostile_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void hostile_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the server closed fd or answered on it (a 503, a 408): either
 * way the attacker no longer holds it. */
static inline int hostile_lost(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

/* The attacker's process: opens HOSTILE_CONNS connections from 127.0.0.2,
 * starts its attack on each, reports how many the server let it keep on
 * report_fd, then trickles until killed. An idle keep-alive connection
 * asks for path once and holds on after the answer. */
static inline void hostile_attacker(int port, const char *path, enum hostile_kind kind,
                                    int report_fd)
{
    static int fds[HOSTILE_CONNS];
    static enum hostile_kind kinds[HOSTILE_CONNS];
    for (int i = 0; i < HOSTILE_CONNS; i++) {
        fds[i] = tcp_connect_from(port, 2);
        kinds[i] = kind == HOSTILE_MIXED ? (enum hostile_kind)(i % 3) : kind;
    }
    hostile_sleep_ms(100);
    for (int i = 0; i < HOSTILE_CONNS; i++) {
        if (fds[i] < 0 || hostile_lost(fds[i]))
            continue;
        char start[256];
        if (kinds[i] == HOSTILE_SLOWLORIS)
            snprintf(start, sizeof start, "GET %s HTTP/1.1\r\nHost: h\r\n", path);
        else if (kinds[i] == HOSTILE_SLOW_BODY)
            snprintf(start, sizeof start,
                     "POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n", path);
        else
            snprintf(start, sizeof start, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
        (void)send_all(fds[i], start, strlen(start));
    }
    hostile_sleep_ms(100);
    int held = 0;
    for (int i = 0; i < HOSTILE_CONNS; i++) {
        if (fds[i] < 0)
            continue;
        if (kinds[i] == HOSTILE_IDLE) {
            /* Read the one answer; a connection answered with anything
             * but a 503 and left open is held idle. */
            char b[4096];
            ssize_t n = recv(fds[i], b, sizeof b, MSG_DONTWAIT);
            if (n > 12 && strncmp(b, "HTTP/1.1 ", 9) == 0 && strncmp(b + 9, "503", 3) != 0 &&
                !hostile_lost(fds[i])) {
                held++;
                continue;
            }
        } else if (!hostile_lost(fds[i])) {
            held++;
            continue;
        }
        close(fds[i]);
        fds[i] = -1;
    }
    if (write(report_fd, &held, sizeof held) != (ssize_t)sizeof held)
        _exit(1);
    for (;;) {
        hostile_sleep_ms(HOSTILE_TRICKLE_MS);
        for (int i = 0; i < HOSTILE_CONNS; i++)
            if (fds[i] >= 0 && kinds[i] != HOSTILE_IDLE &&
                send(fds[i], kinds[i] == HOSTILE_SLOWLORIS ? "X" : "a", 1, MSG_NOSIGNAL) < 0) {
                close(fds[i]);
                fds[i] = -1;
            }
    }
}

/* Starts an attacker; its pid, and in *held how many connections the
 * server let it keep (-1 if it did not say). */
static inline pid_t hostile_start(int port, const char *path, enum hostile_kind kind, int *held)
{
    /* The report pipe lives above the low descriptors: libuv's fork
     * handler closes the ones its signal lock had in the parent, and a
     * test's child closed and reused them. */
    int rep[2], low[2];
    *held = -1;
    if (pipe(low) != 0)
        return -1;
    rep[0] = fcntl(low[0], F_DUPFD_CLOEXEC, 200);
    rep[1] = fcntl(low[1], F_DUPFD_CLOEXEC, 200);
    close(low[0]);
    close(low[1]);
    pid_t pid = fork();
    if (pid == 0) {
        close(rep[0]);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(60);
        hostile_attacker(port, path, kind, rep[1]);
        _exit(0);
    }
    close(rep[1]);
    struct pollfd p = {.fd = rep[0], .events = POLLIN};
    if (pid > 0 && poll(&p, 1, 15000) == 1 &&
        read(rep[0], held, sizeof *held) != (ssize_t)sizeof *held)
        *held = -1;
    close(rep[0]);
    return pid;
}

static inline void hostile_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    hostile_sleep_ms(50); /* the server sees its connections close */
}

/* One request for path on a fresh connection from 127.0.0.1; its latency
 * in microseconds, or -1 if it was not answered 200. */
static inline int64_t hostile_request(int port, const char *path)
{
    int64_t t0 = hostile_now_us();
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    char rq[256];
    int n =
        snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    char b[4096] = "";
    if (send_all(fd, rq, (size_t)n) == 0)
        (void)recv_all(fd, b, sizeof b);
    close(fd);
    if (strncmp(b, "HTTP/1.1 200", 12) != 0 || !strstr(b, "\r\n\r\n"))
        return -1;
    return hostile_now_us() - t0;
}

struct hostile_pool {
    int ok, tries, n;
    int64_t p50, p99;
    int64_t lat[HOSTILE_MAX_SAMPLES];
};

static inline void hostile_measure(int port, const char *path, struct hostile_pool *p, int count)
{
    for (int i = 0; i < count && p->n < HOSTILE_MAX_SAMPLES; i++) {
        int64_t us = hostile_request(port, path);
        p->tries++;
        if (us >= 0) {
            p->ok++;
            p->lat[p->n++] = us;
        }
    }
}

static inline int hostile_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static inline void hostile_figures(struct hostile_pool *p)
{
    if (p->n == 0)
        return;
    qsort(p->lat, (size_t)p->n, sizeof p->lat[0], hostile_cmp);
    p->p50 = p->lat[p->n / 2];
    p->p99 = p->lat[(p->n * 99 + 99) / 100 - 1];
}

struct hostile_result {
    struct hostile_pool idle, attack;
    int held_min, held_max;
};

/* rounds of (round requests idle, a fresh attacker, round requests under
 * attack); the pools' figures are set. */
static inline void hostile_run(int port, const char *path, enum hostile_kind kind, int rounds,
                               int round, struct hostile_result *r)
{
    memset(r, 0, sizeof *r);
    r->held_min = HOSTILE_CONNS;
    r->held_max = -1;
    hostile_measure(port, path, &r->idle, round); /* warm-up: first-touch costs out */
    memset(&r->idle, 0, sizeof r->idle);
    for (int i = 0; i < rounds; i++) {
        hostile_measure(port, path, &r->idle, round);
        int held;
        pid_t pid = hostile_start(port, path, kind, &held);
        hostile_measure(port, path, &r->attack, round);
        hostile_stop(pid);
        r->held_min = held < r->held_min ? held : r->held_min;
        r->held_max = held > r->held_max ? held : r->held_max;
    }
    hostile_figures(&r->idle);
    hostile_figures(&r->attack);
}

#endif
