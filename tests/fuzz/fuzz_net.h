/*
 * One client exchange with an http_server on the fuzz target's loop, for
 * the targets that drive a real server (http_request, tus_headers): a new
 * non-blocking connection to 127.0.0.1, the input sent, a half-close, and
 * reads until the server closes, the loop run in between. Every path of
 * the server must end with it closing a client that has said all it will,
 * so a hang aborts (a bug, not a slow input). Header-only, static, like
 * fuzz_util.h.
 */
#ifndef OUTPOST_FUZZ_NET_H
#define OUTPOST_FUZZ_NET_H

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "fuzz_util.h"
#include "http_server.h"

static inline int64_t fuzz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends len bytes of req to server, half-closes and reads until the server
 * closes (within 1.5 s); then lets the server release the connection
 * (within 3 s of the start) and runs the loop for the close callbacks and
 * the last log lines. What the server answered goes to resp, NUL-terminated
 * and cut at cap, unless resp is NULL. Returns the bytes kept in resp. */
static inline size_t fuzz_exchange(uv_loop_t *loop, struct http_server *server, const void *req,
                                   size_t len, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    must(fd >= 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)http_server_port(server))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    must(rc == 0 || errno == EINPROGRESS, "connect");
    size_t off = 0, got = 0;
    int shut = 0, closed = 0;
    int64_t t0 = fuzz_now_ms();
    while (!closed) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (off < len) {
            ssize_t w = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
                off = len; /* the server closed on us: fine */
        } else if (!shut) {
            (void)shutdown(fd, SHUT_WR);
            shut = 1;
        }
        char sink[65536];
        ssize_t r = recv(fd, sink, sizeof sink, 0);
        if (r > 0 && resp) {
            size_t n = (size_t)r;
            if (n > cap - 1 - got)
                n = cap - 1 - got;
            memcpy(resp + got, sink, n);
            got += n;
        }
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN))
            closed = 1;
        must(fuzz_now_ms() - t0 < 1500, "the server answers and closes a finished client");
    }
    close(fd);
    while (http_server_connections(server) > 0 && fuzz_now_ms() - t0 < 3000)
        uv_run(loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 4; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    if (resp)
        resp[got] = '\0';
    return got;
}

#endif
