/*
 * A blocking HTTP/1.1 client for the unit tests of servers on the libuv
 * loop (tus_server, hq_serve): the server runs in the parent, and a
 * forked child (testloop.h) sends one request per connection with these
 * helpers and reads the whole answer (Connection: close).
 */
#ifndef OUTPOST_TESTHTTP_H
#define OUTPOST_TESTHTTP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"
#include "testloop.h"
#include "testsock.h"

struct resp {
    int status;
    char head[8192];
    char body[4096];
    size_t body_len;
    char val[512];
};

/* One request on its own connection; headers are "Name: value\r\n" lines.
 * Returns the status, or -1 if the exchange failed. */
static inline int req(int port, const char *method, const char *path, const char *headers,
                      const void *body, size_t len, struct resp *r)
{
    memset(r, 0, sizeof *r);
    r->status = -1;
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    char h[4096];
    int n = snprintf(h, sizeof h,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     method, path, len, headers);
    if (send_all(fd, h, (size_t)n) < 0 || (len && send_all(fd, body, len) < 0)) {
        close(fd);
        return -1;
    }
    char in[16384];
    size_t got = recv_all(fd, in, sizeof in);
    close(fd);
    char *end = strstr(in, "\r\n\r\n");
    if (!end || strncmp(in, "HTTP/1.1 ", 9) != 0)
        return -1;
    size_t hl = (size_t)(end - in) + 2;
    if (hl >= sizeof r->head)
        return -1;
    memcpy(r->head, in, hl);
    r->head[hl] = '\0';
    r->body_len = got - hl - 2;
    if (r->body_len >= sizeof r->body)
        r->body_len = sizeof r->body - 1;
    memcpy(r->body, end + 4, r->body_len);
    r->status = (int)strtol(in + 9, NULL, 10);
    return r->status;
}

/* A response header's value (copied into r->val), or NULL. */
static inline const char *rh(struct resp *r, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\r\n%s:", name);
    const char *p = strcasestr(r->head, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    const char *e = strstr(p, "\r\n");
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= sizeof r->val)
        n = sizeof r->val - 1;
    memcpy(r->val, p, n);
    r->val[n] = '\0';
    return r->val;
}

#endif
