/*
 * Blocking loopback sockets for the forked clients of the server tests:
 * a connection with 5 s timeouts each way (so that a stuck server fails
 * the check instead of hanging it), a send that writes everything and a
 * read of the whole answer; and a listener for the doubles of servers a
 * client test talks to.
 */
#ifndef OUTPOST_TESTSOCK_H
#define OUTPOST_TESTSOCK_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A connection to 127.0.0.1:port from 127.0.0.src (the whole of 127/8
 * is loopback on Linux) with Nagle off, or -1. */
static inline int tcp_connect_from(int port, int src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    if (src != 1 && bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A listening socket on 127.0.0.1 with a port the kernel picks (in
 * *port), backlog 4, or -1. */
static inline int tcp_listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A connection to 127.0.0.1:port from 127.0.0.1 with Nagle off, or -1. */
static inline int tcp_connect(int port)
{
    return tcp_connect_from(port, 1);
}

/* Sends all n bytes (no SIGPIPE); 0, or -1 when the connection failed. */
static inline int send_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads into buf until the peer closes, an error or timeout, or cap - 1
 * bytes; buf is NUL-terminated. Returns the bytes read. */
static inline size_t recv_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + got, cap - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got == cap - 1)
            break;
    }
    buf[got] = '\0';
    return got;
}

#endif
