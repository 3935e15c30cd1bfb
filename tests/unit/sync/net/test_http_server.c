/*
 * Tests for sync/net/http_server.c. The parent process runs a real server
 * on 127.0.0.1 (port 0) on its libuv loop; each test forks a child that
 * plays one or more clients with plain blocking sockets (or OpenSSL, or
 * curl) and exits with its number of failed checks, which the parent
 * counts as failures. The parent then checks what the server logged and
 * stops the server gracefully. alarm() and loop watchdogs make sure the
 * test always ends.
 */
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
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <uv.h>

#include "http_server.h"
#include "testlib.h"
#include "testloop.h"
#include "testsock.h"

#define MAX_LOG 128
#define BIG_BODY (24u * 1024 * 1024)

/* ---- the parent: server, handler, log ---- */

struct logrec {
    char method[16];
    char path[64];
    char user[32];
    int status;
    uint64_t bytes_out;
    char remote[64];
};

struct fx {
    struct th_loop tl;
    struct http_server *srv;
    int port;
    struct logrec log[MAX_LOG];
    int nlog;
    int stop_called;
    int stopped;
    int nlog_at_done;
    int stop_on_async;
    int stopped_before_async_reply;
    int gone_seen;
    int gate_calls;
    /* streamed bodies (test_stream) */
    uint64_t s_got;        /* bytes on_data saw, of the current request */
    int s_order_bad;       /* a byte not where the pattern puts it */
    size_t s_piece_max;    /* the largest piece handed over */
    size_t s_buffered_max; /* http_server_buffered during on_data */
    int s_cuts;
    uint64_t s_cut_at;
    uint64_t s_done_len; /* http_body_streamed in the handler */
    int s_slow;          /* on_data sleeps 1 ms per piece */
};

static void on_log(void *ctx, const struct http_log_entry *e)
{
    struct fx *f = ctx;
    if (f->nlog >= MAX_LOG)
        return;
    struct logrec *r = &f->log[f->nlog++];
    snprintf(r->method, sizeof r->method, "%s", e->method);
    snprintf(r->path, sizeof r->path, "%s", e->path);
    snprintf(r->user, sizeof r->user, "%s", e->user);
    snprintf(r->remote, sizeof r->remote, "%s", e->remote);
    r->status = e->status;
    r->bytes_out = e->bytes_out;
}

static void on_done(void *arg)
{
    struct fx *f = arg;
    f->stopped = 1;
    f->nlog_at_done = f->nlog;
    f->srv = NULL;
}

static void free_handle(uv_handle_t *h)
{
    free(h->data);
}

struct later {
    uv_timer_t t;
    struct http_exchange *x;
    struct fx *f;
    int ticks;
};

static void async_reply(uv_timer_t *t)
{
    struct later *l = t->data;
    l->f->stopped_before_async_reply = l->f->stopped;
    static const char msg[] = "async done\n";
    http_respond(l->x, 200, "text/plain", msg, sizeof msg - 1);
    uv_close((uv_handle_t *)&l->t, free_handle);
}

static void gone_poll(uv_timer_t *t)
{
    struct later *l = t->data;
    int gone = http_exchange_gone(l->x);
    if (!gone && ++l->ticks < 150)
        return;
    if (gone)
        l->f->gone_seen = 1;
    http_respond(l->x, 200, "text/plain", "late\n", 5);
    uv_close((uv_handle_t *)&l->t, free_handle);
}

static void start_later(struct fx *f, struct http_exchange *x, uv_timer_cb cb, uint64_t ms,
                        uint64_t repeat)
{
    struct later *l = calloc(1, sizeof *l);
    if (!l) {
        http_respond(x, 500, NULL, NULL, 0);
        return;
    }
    l->x = x;
    l->f = f;
    l->t.data = l;
    uv_timer_init(&f->tl.loop, &l->t);
    uv_timer_start(&l->t, cb, ms, repeat);
}

/* /echo (and anything else) describes the request; /async answers after
 * 300 ms from a timer; /gone waits for the client to leave; /big sends
 * BIG_BODY bytes. */
static void handler(void *ctx, struct http_exchange *x)
{
    struct fx *f = ctx;
    const char *path = http_path(x);
    if (strcmp(path, "/async") == 0) {
        start_later(f, x, async_reply, 300, 0);
        if (f->stop_on_async && !f->stop_called) {
            f->stop_called = 1;
            http_server_stop(f->srv, on_done, f);
        }
        return;
    }
    if (strcmp(path, "/gone") == 0) {
        start_later(f, x, gone_poll, 20, 20);
        return;
    }
    if (strcmp(path, "/big") == 0) {
        char *b = malloc(BIG_BODY);
        if (b)
            memset(b, 'b', BIG_BODY);
        http_respond(x, b ? 200 : 500, "application/octet-stream", b, b ? BIG_BODY : 0);
        free(b);
        return;
    }
    if (strncmp(path, "/stream", 7) == 0) {
        size_t blen;
        (void)http_body(x, &blen);
        CHECK_EQ(blen, 0);
        f->s_done_len = http_body_streamed(x);
        CHECK_EQ(f->s_done_len, f->s_got);
        char out[64];
        int n = snprintf(out, sizeof out, "streamed=%llu\n", (unsigned long long)f->s_done_len);
        http_respond(x, 200, "text/plain", out, (size_t)n);
        return;
    }
    char q[128], small[4];
    int qn = http_query_param(x, "q", q, sizeof q);
    if (qn < 0)
        snprintf(q, sizeof q, "(%d)", qn);
    int sn = http_query_param(x, "q", small, sizeof small);
    size_t blen;
    const char *body = http_body(x, &blen);
    const char *multi = http_header(x, "x-multi");
    http_set_user(x, "tester");
    CHECK_EQ(http_add_header(x, "X-Echo", "yes"), 0);
    CHECK_EQ(http_add_header(x, "X-Bad", "a\r\nInjected: 1"), -EINVAL);
    CHECK_EQ(http_add_header(x, "Content-Length", "5"), -EINVAL);
    char out[70000];
    int n = snprintf(out, sizeof out,
                     "method=%s\npath=%s\nquery=%s\nq=%s\nqsmall=%d\nmulti=%s\nlen=%zu\nbody=%.*s\n"
                     "gate=%s\n",
                     http_method(x), path, http_query(x), q, sn, multi ? multi : "(none)", blen,
                     (int)(blen > 60000 ? 60000 : blen), body,
                     http_data(x) ? (const char *)http_data(x) : "(none)");
    http_respond(x, 200, "text/plain", out, (size_t)n);
}

/* The gate of the gate tests: "Authorization: Bearer good" passes, with
 * the data "ok" for the handler; anything else is answered 401 without
 * reading the body. Under /later the verdict comes from a timer 100 ms
 * later (as after thread-pool work); under /small the body may have at
 * most 16 bytes. */
static void gate_verdict(struct http_exchange *x)
{
    const char *a = http_header(x, "Authorization");
    if (!a || strcmp(a, "Bearer good") != 0) {
        CHECK_EQ(http_add_header(x, "WWW-Authenticate", "Bearer realm=\"test\""), 0);
        http_respond_problem(x, 401, NULL, "send Authorization: Bearer good");
        return;
    }
    http_set_data(x, strdup("ok"), free);
    http_gate_pass(x, strncmp(http_path(x), "/small", 6) == 0 ? 16 : 0);
}

static unsigned char pattern(uint64_t i)
{
    return (unsigned char)((i * 7u + i / 251u) % 251u);
}

static int stream_data(void *ctx, struct http_exchange *x, const char *data, size_t len)
{
    struct fx *f = ctx;
    if (strcmp(http_path(x), "/stream/full") == 0)
        return -ENOSPC;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] != pattern(f->s_got + i))
            f->s_order_bad++;
    f->s_got += len;
    if (len > f->s_piece_max)
        f->s_piece_max = len;
    size_t b = http_server_buffered(f->srv);
    if (b > f->s_buffered_max)
        f->s_buffered_max = b;
    if (f->s_slow)
        usleep(1000); /* a slow disk: the rest waits in the socket */
    return 0;
}

static void stream_cut(void *ctx, struct http_exchange *x, uint64_t received)
{
    struct fx *f = ctx;
    (void)x;
    f->s_cuts++;
    f->s_cut_at = received;
    CHECK_EQ(received, f->s_got);
    f->s_got = 0;
}

static void gate_later(uv_timer_t *t)
{
    struct later *l = t->data;
    gate_verdict(l->x);
    uv_close((uv_handle_t *)&l->t, free_handle);
}

static void gate(void *ctx, struct http_exchange *x)
{
    struct fx *f = ctx;
    f->gate_calls++;
    CHECK_EQ(http_body(x, NULL)[0], '\0'); /* nothing of the body yet */
    if (strncmp(http_path(x), "/later", 6) == 0) {
        start_later(f, x, gate_later, 100, 0);
        return;
    }
    if (strncmp(http_path(x), "/stream", 7) == 0) {
        f->s_got = 0;
        http_gate_stream(x, 0, stream_data, stream_cut, f);
        return;
    }
    gate_verdict(x);
}

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof *f);
    th_loop_init(&f->tl);
}

static void fx_done(struct fx *f)
{
    CHECK_EQ(th_loop_done(&f->tl), 0); /* every handle closed: nothing leaked on the loop */
}

static struct http_server_config base_cfg(void)
{
    struct http_server_config c = {
        .listen = "127.0.0.1:0",
        .max_header_bytes = 4096,
        .max_body_bytes = 65536,
        .max_connections = 16,
        .header_timeout_ms = 2000,
        .body_timeout_ms = 2000,
        .idle_timeout_ms = 5000,
    };
    return c;
}

static int fx_start(struct fx *f, const struct http_server_config *cfg)
{
    struct op_error err;
    op_error_clear(&err);
    f->nlog = 0;
    f->stop_called = f->stopped = 0;
    int rc = http_server_start(&f->tl.loop, cfg, handler, on_log, f, &f->srv, &err);
    if (rc < 0) {
        fprintf(stderr, "cannot start: %s\n", err.msg);
        return rc;
    }
    f->port = http_server_port(f->srv);
    return 0;
}

static void fx_stop(struct fx *f)
{
    if (f->srv && !f->stop_called) {
        f->stop_called = 1;
        http_server_stop(f->srv, on_done, f);
    }
    CHECK_EQ(th_run_until(&f->tl, &f->stopped, 5000), 0);
}

/* Lets the server finish closing what the client left. */
static void settle(struct fx *f, uint64_t ms)
{
    int never = 0;
    (void)th_run_until(&f->tl, &never, ms);
}

static const struct logrec *find_log(const struct fx *f, const char *path, int status)
{
    for (int i = 0; i < f->nlog; i++)
        if (strcmp(f->log[i].path, path) == 0 && f->log[i].status == status)
            return &f->log[i];
    return NULL;
}

static void dump_log(const struct fx *f)
{
    for (int i = 0; i < f->nlog; i++)
        fprintf(stderr, "  log[%d]: %s %s %d %llu %s %s\n", i, f->log[i].method, f->log[i].path,
                f->log[i].status, (unsigned long long)f->log[i].bytes_out, f->log[i].user,
                f->log[i].remote);
}

#define CHECK_LOG(f, path, status)                                                                 \
    do {                                                                                           \
        tl_checks++;                                                                               \
        if (!find_log(f, path, status)) {                                                          \
            tl_failed++;                                                                           \
            fprintf(stderr, "%s:%d: no log entry for %s with status %d\n", __FILE__, __LINE__,     \
                    path, status);                                                                 \
            dump_log(f);                                                                           \
        }                                                                                          \
    } while (0)

/* ---- the child: blocking clients ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct cl {
    int fd;
    size_t len;
    char in[1 << 17];
};

struct resp {
    int status;
    char head[8192];
    char body[65536];
    size_t body_len;
};

/* A connected client; a client that cannot even connect ends the child. */
static struct cl *cl_open(int port)
{
    struct cl *c = calloc(1, sizeof *c);
    if (c)
        c->fd = tcp_connect(port);
    if (!c || c->fd < 0) {
        fprintf(stderr, "  client: cannot connect to port %d: %s\n", port, strerror(errno));
        _exit(50);
    }
    return c;
}

static void cl_close(struct cl *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}

static int cl_send(struct cl *c, const char *s)
{
    return send_all(c->fd, s, strlen(s));
}

static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

/* A response header's value (first line only) into out, or "". */
static const char *resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\r\n%s:", name);
    out[0] = '\0';
    const char *h = find_ci(r->head, pat);
    if (!h)
        return out;
    h += strlen(pat);
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, "\r");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, h, n);
    out[n] = '\0';
    return out;
}

/* Reads one response (a 100 Continue counts as one). Returns its status,
 * 0 on end of stream before a response, -1 on error or timeout. */
static int cl_response(struct cl *c, struct resp *r, int head_request)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t hlen = (size_t)(end + 4 - c->in);
            if (hlen >= sizeof r->head)
                return -1;
            memcpy(r->head, c->in, hlen);
            r->head[hlen] = '\0';
            if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
                return -1;
            char v[64];
            size_t blen = 0;
            if (!head_request && r->status >= 200)
                blen = strtoul(resp_header(r, "Content-Length", v, sizeof v), NULL, 10);
            while (c->len < hlen + blen) {
                if (c->len == sizeof c->in)
                    return -1;
                ssize_t n = recv(c->fd, c->in + c->len, sizeof c->in - c->len, 0);
                if (n <= 0)
                    return -1;
                c->len += (size_t)n;
            }
            size_t keep = blen < sizeof r->body - 1 ? blen : sizeof r->body - 1;
            memcpy(r->body, c->in + hlen, keep);
            r->body[keep] = '\0';
            r->body_len = blen;
            memmove(c->in, c->in + hlen + blen, c->len - hlen - blen);
            c->len -= hlen + blen;
            return r->status;
        }
        if (c->len == sizeof c->in)
            return -1;
        ssize_t n = recv(c->fd, c->in + c->len, sizeof c->in - c->len, 0);
        if (n == 0)
            return c->len ? -1 : 0;
        if (n < 0)
            return -1;
        c->len += (size_t)n;
    }
}

/* Waits up to ms for the server to close: returns the wait in ms, or -1
 * when data came instead or the connection stayed open. */
static int cl_wait_eof(struct cl *c, int ms)
{
    int64_t t0 = now_ms();
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return -1;
    char b[256];
    ssize_t n = recv(c->fd, b, sizeof b, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
        return (int)(now_ms() - t0);
    return -1;
}

/* One request on a fresh connection; the whole response in r. */
static int one_shot(int port, const char *req, struct resp *r)
{
    struct cl *c = cl_open(port);
    if (!c)
        return -1;
    int st = -1;
    if (cl_send(c, req) == 0)
        st = cl_response(c, r, 0);
    cl_close(c);
    return st;
}

/* ---- the tests ---- */

static int client_get(int port, void *arg)
{
    struct resp r;
    C_EQ(one_shot(port, "GET /echo?q=hello%20world&x=1 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
    C_HAS(r.head, "HTTP/1.1 200 OK\r\n");
    C_HAS(r.head, "\r\nContent-Type: text/plain\r\n");
    C_HAS(r.head, "\r\nX-Echo: yes\r\n");
    C_CHECK(!strstr(r.head, "Injected"));
    C_CHECK(!find_ci(r.head, "\r\nConnection:"));
    char date[64];
    resp_header(&r, "Date", date, sizeof date);
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    C_EQ(strlen(date), 29);
    C_CHECK(date[3] == ',' && strcmp(date + 25, " GMT") == 0);
    C_HAS(r.body, "method=GET\n");
    C_HAS(r.body, "path=/echo\n");
    C_HAS(r.body, "query=q=hello%20world&x=1\n");
    C_HAS(r.body, "q=hello world\n");
    C_HAS(r.body, "qsmall=-7\n"); /* -E2BIG: 4 bytes do not hold "hello world" */
    C_HAS(r.body, "len=0\n");

    /* Repeated headers are joined. */
    C_EQ(one_shot(port, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Multi: a\r\nx-multi: b\r\n\r\n", &r),
         200);
    C_HAS(r.body, "multi=a, b\n");
    C_HAS(r.body, "q=(-2)\n"); /* -ENOENT */
    return cfails;
}

static void test_simple_get(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK(f.port > 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_get, NULL), 0);
    settle(&f, 20);
    CHECK_EQ(f.nlog, 2);
    const struct logrec *e = find_log(&f, "/echo", 200);
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(e->method, "GET");
        CHECK_STR(e->user, "tester");
        CHECK(e->bytes_out > 50);
        CHECK(strncmp(e->remote, "127.0.0.1:", 10) == 0);
    }
    fx_stop(&f);
    fx_done(&f);
}

static int client_keepalive(int port, void *arg)
{
    struct cl *c = cl_open(port);
    C_CHECK(c != NULL);
    if (!c)
        return cfails;
    struct resp r;
    cl_send(c, "GET /echo?q=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=1\n");
    cl_send(c, "GET /echo?q=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=2\n");

    /* Pipelined: three requests (one with a body) in one write, answered
     * in order. */
    cl_send(c, "GET /echo?q=3 HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST /echo?q=4 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
               "GET /echo?q=5 HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=3\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=4\n");
    C_HAS(r.body, "body=hello\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=5\n");

    /* HEAD: headers only; the connection stays usable. */
    cl_send(c, "HEAD /echo?q=6 HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 1), 200);
    char v[32];
    C_CHECK(strtol(resp_header(&r, "Content-Length", v, sizeof v), NULL, 10) > 0);
    cl_send(c, "GET /echo?q=7 HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.head, "HTTP/1.1 200 OK\r\n");
    C_HAS(r.body, "q=7\n");

    /* Connection: close is honoured. */
    cl_send(c, "GET /echo?q=8 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);

    /* HTTP/1.0: closed unless it asks for keep-alive. */
    c = cl_open(port);
    cl_send(c, "GET /echo?q=9 HTTP/1.0\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);
    c = cl_open(port);
    cl_send(c, "GET /echo?q=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.head, "\r\nConnection: keep-alive\r\n");
    cl_send(c, "GET /echo?q=11 HTTP/1.0\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=11\n");
    cl_close(c);
    return cfails;
}

static void test_keepalive_pipelining_head_http10(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_keepalive, NULL), 0);
    settle(&f, 20);
    CHECK_EQ(f.nlog, 11);
    /* The first eight exchanges shared one connection. */
    for (int i = 1; i < 8 && i < f.nlog; i++)
        CHECK_STR(f.log[i].remote, f.log[0].remote);
    const struct logrec *h = NULL;
    for (int i = 0; i < f.nlog; i++)
        if (strcmp(f.log[i].method, "HEAD") == 0)
            h = &f.log[i];
    CHECK(h != NULL);
    if (h)
        CHECK_EQ(h->bytes_out, 0);
    fx_stop(&f);
    fx_done(&f);
}

static int client_bodies(int port, void *arg)
{
    struct resp r;
    C_EQ(one_shot(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world",
                  &r),
         200);
    C_HAS(r.body, "len=11\nbody=hello world\n");

    C_EQ(one_shot(port,
                  "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                  &r),
         200);
    C_HAS(r.body, "len=11\nbody=hello world\n");

    /* Expect: 100-continue: the interim answer comes before the body. */
    struct cl *c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
               "Expect: 100-continue\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 100);
    cl_send(c, "0123456789");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "len=10\nbody=0123456789\n");
    cl_close(c);

    /* Too big for the limit: 413 straight away, no 100, then closed. */
    c = cl_open(port);
    int64_t t0 = now_ms();
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n"
               "Expect: 100-continue\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 413);
    C_CHECK(now_ms() - t0 < 500);
    C_HAS(r.head, "\r\nContent-Type: application/problem+json\r\n");
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_HAS(r.body, "\"status\":413");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);

    c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: magic\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 417);
    cl_close(c);
    return cfails;
}

static void test_bodies_and_expect(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_bodies, NULL), 0);
    settle(&f, 20);
    CHECK_LOG(&f, "/echo", 413);
    CHECK_LOG(&f, "/echo", 417);
    const struct logrec *e = find_log(&f, "/echo", 413);
    if (e)
        CHECK_STR(e->method, "POST");
    fx_stop(&f);
    fx_done(&f);
}

static int client_limits(int port, void *arg)
{
    struct resp r;
    char *req = malloc(65536);
    if (!req)
        return 1;

    /* 431: header section over max_header_bytes (4096). */
    size_t n = (size_t)snprintf(req, 65536, "GET /echo HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(req + n, 65536 - n, "X-Filler-%02d: %090d\r\n", i, 0);
    snprintf(req + n, 65536 - n, "\r\n");
    struct cl *c = cl_open(port);
    cl_send(c, req);
    C_EQ(cl_response(c, &r, 0), 431);
    C_HAS(r.body, "{\"type\":\"about:blank\",\"title\":\"Request Header Fields Too Large\","
                  "\"status\":431,\"detail\":\"");
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);

    /* 431: too many header fields, each small. */
    n = (size_t)snprintf(req, 65536, "GET /many HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(req + n, 65536 - n, "X%d: y\r\n", i);
    snprintf(req + n, 65536 - n, "\r\n");
    C_EQ(one_shot(port, req, &r), 431);
    C_HAS(r.body, "header fields");

    /* 414: a 9000-byte target. */
    n = (size_t)snprintf(req, 65536, "GET /");
    memset(req + n, 'a', 9000);
    n += 9000;
    snprintf(req + n, 65536 - n, " HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(one_shot(port, req, &r), 414);

    /* 413 from Content-Length, answered without the body being sent. */
    c = cl_open(port);
    int64_t t0 = now_ms();
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 413);
    C_CHECK(now_ms() - t0 < 500);
    C_HAS(r.body, "\"detail\":\"the body is 10000000 bytes; the limit is 65536\"");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);

    /* 413 for a chunked body that grows past the limit (64 KiB). */
    c = cl_open(port);
    cl_send(c, "POST /chunky HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[8200];
    memset(chunk, 'c', sizeof chunk);
    int chunk_head = snprintf(chunk, sizeof chunk, "2000\r\n");
    memset(chunk + chunk_head, 'c', 8192);
    memcpy(chunk + chunk_head + 8192, "\r\n", 2);
    for (int i = 0; i < 10; i++)
        if (send_all(c->fd, chunk, (size_t)chunk_head + 8194) < 0)
            break;
    C_EQ(cl_response(c, &r, 0), 413);
    C_HAS(r.body, "larger than 65536");
    cl_close(c);

    free(req);
    return cfails;
}

static void test_limits(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_limits, NULL), 0);
    settle(&f, 20);
    CHECK_LOG(&f, "/echo", 431);
    CHECK_LOG(&f, "/many", 431);
    CHECK_LOG(&f, "-", 414);
    CHECK_LOG(&f, "/echo", 413);
    CHECK_LOG(&f, "/chunky", 413);
    CHECK_EQ(f.nlog, 5);
    fx_stop(&f);
    fx_done(&f);
}

static int client_bad(int port, void *arg)
{
    struct resp r;
    /* The parser's complaints in HTTP's terms, never its own names. */
    C_EQ(one_shot(port, "\x01\x02garbage\r\n\r\n", &r), 400);
    C_HAS(r.body, "the request method is not an HTTP method");
    C_CHECK(!strstr(r.body, "HPE_") && !strstr(r.body, "invalid HTTP method"));
    C_EQ(one_shot(port, "GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", &r), 400);
    C_HAS(r.body, "Content-Length must be one decimal number");
    C_CHECK(!strstr(r.body, "HPE_"));
    C_EQ(one_shot(port, "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n", &r), 400);
    C_HAS(r.body, "percent");
    C_EQ(one_shot(port, "GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n", &r), 400);
    C_EQ(one_shot(port, "GET /a%4 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 400);
    C_EQ(one_shot(port, "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", &r), 400);
    C_EQ(one_shot(port, "GET /echo HTTP/1.1\r\n\r\n", &r), 400);
    C_HAS(r.body, "Host");
    C_EQ(one_shot(port, "GET /echo HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", &r), 400);
    C_EQ(one_shot(port, "GET /echo HTTP/1.1\r\nHost: t\r\nX: a\x01z\r\n\r\n", &r), 400);
    C_EQ(one_shot(port,
                  "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  &r),
         400);
    C_EQ(one_shot(port, "GET /echo HTTP/2.0\r\nHost: t\r\n\r\n", &r), 505);

    /* Percent-decoding of the path; the query stays raw. */
    C_EQ(one_shot(port, "GET /a%20b/%C3%A9?q=x%26y+z HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
    C_HAS(r.body, "path=/a b/\xc3\xa9\n");
    C_HAS(r.body, "query=q=x%26y+z\n");
    C_HAS(r.body, "q=x&y z\n");
    return cfails;
}

static void test_malformed_and_decoding(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_bad, NULL), 0);
    settle(&f, 20);
    CHECK_LOG(&f, "-", 400);
    CHECK_LOG(&f, "/echo", 505);
    CHECK_LOG(&f, "/a b/\xc3\xa9", 200);
    int n400 = 0;
    for (int i = 0; i < f.nlog; i++)
        n400 += f.log[i].status == 400;
    CHECK_EQ(n400, 10);
    fx_stop(&f);
    fx_done(&f);
}

/* A connection from 127.0.0.src (the whole of 127/8 is loopback on
 * Linux), or NULL. */
static struct cl *cl_open_from(int port, int src)
{
    struct cl *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    int ok = c->fd >= 0 && bind(c->fd, (struct sockaddr *)&a, sizeof a) == 0;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!ok || connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    return c;
}

static int client_maxconn(int port, void *arg)
{
    struct resp r;
    struct cl *a = cl_open(port), *b = cl_open(port);
    C_CHECK(a && b);
    if (!a || !b)
        return cfails;
    cl_send(a, "GET /echo?q=a HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(a, &r, 0), 200);
    sleep_ms(20); /* a has waited longer than b */
    cl_send(b, "GET /echo?q=b HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(b, &r, 0), 200);

    /* Full, but a and b are idle keep-alive connections: the oldest, a,
     * is closed to make room, and c is served. */
    struct cl *c = cl_open(port);
    cl_send(c, "GET /echo?q=c HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_CHECK(cl_wait_eof(a, 1000) >= 0);
    cl_close(a);
    cl_send(b, "GET /echo?q=b2 HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(b, &r, 0), 200);

    /* Full with b and c in the middle of a request: nobody idle to
     * close, so d is told 503. */
    cl_send(b, "GET /echo?q=b3 HTTP/1.1\r\n");
    cl_send(c, "GET /echo?q=c2 HTTP/1.1\r\n");
    sleep_ms(20);
    struct cl *d = cl_open(port);
    cl_send(d, "GET /echo?q=d HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(d, &r, 0), 503);
    char v[32];
    C_EQ(strcmp(resp_header(&r, "Retry-After", v, sizeof v), "5"), 0);
    C_HAS(r.body, "\"status\":503");
    C_CHECK(cl_wait_eof(d, 1000) >= 0);
    cl_close(d);
    /* The requests in progress were not disturbed. */
    cl_send(b, "Host: t\r\n\r\n");
    C_EQ(cl_response(b, &r, 0), 200);
    C_HAS(r.body, "q=b3\n");
    cl_send(c, "Host: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);

    /* One leaves; service resumes. */
    cl_close(c);
    int st = 0;
    for (int i = 0; i < 20 && st != 200; i++) {
        sleep_ms(25);
        st = one_shot(port, "GET /echo?q=e HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    }
    C_EQ(st, 200);
    cl_close(b);
    return cfails;
}

static void test_max_connections(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.max_connections = 2;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_maxconn, NULL), 0);
    settle(&f, 20);
    CHECK_LOG(&f, "/echo", 200);
    CHECK_LOG(&f, "-", 503);
    struct http_server_stats st;
    http_server_get_stats(f.srv, &st);
    CHECK_EQ(st.evicted_idle, 1);
    CHECK_EQ(st.refused_full, 1);
    CHECK_EQ(st.refused_address, 0);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.addresses, 0);
    CHECK_EQ(http_server_connections(f.srv), 0);
    fx_stop(&f);
    fx_done(&f);
}

static int client_per_address(int port, void *arg)
{
    struct resp r;
    /* 127.0.0.2 holds its cap of 3, one of them idle after a request. */
    struct cl *h[3];
    for (int i = 0; i < 3; i++) {
        h[i] = cl_open_from(port, 2);
        C_CHECK(h[i] != NULL);
        if (!h[i])
            return cfails;
    }
    cl_send(h[0], "GET /echo?q=h0 HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(h[0], &r, 0), 200);
    cl_send(h[1], "GET /echo?q=h1 HTTP/1.1\r\n"); /* a request in progress */
    sleep_ms(20);

    /* Its fourth is refused at once, before it sends anything. */
    struct cl *x = cl_open_from(port, 2);
    C_CHECK(x != NULL);
    if (x) {
        C_EQ(cl_response(x, &r, 0), 503);
        char v[32];
        C_EQ(strcmp(resp_header(&r, "Retry-After", v, sizeof v), "5"), 0);
        C_HAS(r.body, "too many connections from this address");
        C_CHECK(cl_wait_eof(x, 1000) >= 0);
        cl_close(x);
    }
    /* Another address is not affected. */
    for (int i = 0; i < 4; i++)
        C_EQ(one_shot(port, "GET /echo?q=other HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
    /* The capped address's own connections keep working. */
    cl_send(h[0], "GET /echo?q=h0b HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(h[0], &r, 0), 200);
    cl_send(h[1], "Host: t\r\n\r\n");
    C_EQ(cl_response(h[1], &r, 0), 200);
    /* One closes: the address may open one again. */
    cl_close(h[2]);
    h[2] = NULL;
    int st = 0;
    for (int i = 0; i < 20 && st != 200; i++) {
        sleep_ms(25);
        x = cl_open_from(port, 2);
        if (!x)
            continue;
        cl_send(x, "GET /echo?q=again HTTP/1.1\r\nHost: t\r\n\r\n");
        st = cl_response(x, &r, 0);
        cl_close(x);
    }
    C_EQ(st, 200);
    cl_close(h[0]);
    cl_close(h[1]);
    return cfails;
}

static void test_per_address_cap(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.max_connections_per_address = 3;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_per_address, NULL), 0);
    settle(&f, 20);
    struct http_server_stats st;
    http_server_get_stats(f.srv, &st);
    CHECK_EQ(st.refused_address, 1);
    CHECK_EQ(st.refused_full, 0);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.addresses, 0);
    CHECK(!find_log(&f, "-", 503)); /* a refusal at accept is not an exchange */
    fx_stop(&f);
    fx_done(&f);
}

static int client_slowloris(int port, void *arg)
{
    /* The request line at once, then the headers a byte at a time. */
    static const char slow[] = "Host: t\r\nX-Slow: 123456789\r\n\r\n";
    struct resp r;
    struct cl *a = cl_open(port), *b = cl_open(port);
    C_CHECK(a && b);
    if (!a || !b)
        return cfails;
    cl_send(a, "GET /echo?q=slow HTTP/1.1\r\n");
    int64_t t0 = now_ms(), got = -1;
    int served = 0;
    int64_t worst = 0;
    for (size_t i = 0; i < sizeof slow - 1 && now_ms() - t0 < 3000; i++) {
        (void)send_all(a->fd, slow + i, 1);
        /* The other client is served promptly meanwhile. */
        int64_t s0 = now_ms();
        cl_send(b, "GET /echo?q=fast HTTP/1.1\r\nHost: t\r\n\r\n");
        C_EQ(cl_response(b, &r, 0), 200);
        int64_t lat = now_ms() - s0;
        worst = lat > worst ? lat : worst;
        served++;
        struct pollfd p = {.fd = a->fd, .events = POLLIN};
        if (poll(&p, 1, 200) == 1) {
            got = now_ms() - t0;
            break;
        }
    }
    C_CHECK(got >= 0);
    C_EQ(cl_response(a, &r, 0), 408);
    C_HAS(r.body, "within 500 ms");
    fprintf(stderr, "  slowloris: 408 after %lld ms; %d other requests, worst latency %lld ms\n",
            (long long)got, served, (long long)worst);
    C_CHECK(got >= 400 && got <= 1000);
    C_CHECK(served >= 2);
    C_CHECK(worst < 200);
    C_CHECK(cl_wait_eof(a, 1000) >= 0);
    cl_close(a);
    cl_close(b);

    /* A first request's header deadline runs from accept: staying silent
     * first, then trickling, does not buy a second header_timeout_ms. */
    a = cl_open(port);
    t0 = now_ms();
    sleep_ms(300);
    cl_send(a, "GET /echo?q=late HTTP/1.1\r\n");
    got = -1;
    for (int i = 0; i < 30 && got < 0; i++) {
        (void)send_all(a->fd, "X", 1);
        struct pollfd p = {.fd = a->fd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1)
            got = now_ms() - t0;
    }
    C_EQ(cl_response(a, &r, 0), 408);
    fprintf(stderr, "  silent then trickling: 408 after %lld ms from connect\n", (long long)got);
    C_CHECK(got >= 400 && got <= 700);
    cl_close(a);

    /* A connection that sends nothing is closed silently after the header
     * timeout. */
    a = cl_open(port);
    int waited = cl_wait_eof(a, 2000);
    C_CHECK(waited >= 400 && waited <= 1200);
    C_EQ(a->len, 0);
    cl_close(a);

    /* A body that stalls: 408 after the body timeout. */
    a = cl_open(port);
    cl_send(a, "POST /stall HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    C_EQ(cl_response(a, &r, 0), 408);
    C_HAS(r.body, "body");
    cl_close(a);
    return cfails;
}

static void test_slowloris_and_timeouts(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.header_timeout_ms = 500;
    cfg.body_timeout_ms = 300;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_slowloris, NULL), 0);
    settle(&f, 20);
    CHECK_LOG(&f, "/echo", 408);
    CHECK_LOG(&f, "/stall", 408);
    const struct logrec *e = find_log(&f, "/echo", 408);
    if (e)
        CHECK_STR(e->method, "GET");
    fx_stop(&f);
    fx_done(&f);
}

static int client_idle(int port, void *arg)
{
    struct resp r;
    struct cl *a = cl_open(port);
    cl_send(a, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(a, &r, 0), 200);
    int waited = cl_wait_eof(a, 2000);
    C_CHECK(waited >= 200 && waited <= 1000);
    cl_close(a);
    return cfails;
}

static void test_idle_timeout(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.idle_timeout_ms = 300;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_idle, NULL), 0);
    settle(&f, 20);
    CHECK_EQ(f.nlog, 1); /* an idle close is not an exchange */
    fx_stop(&f);
    fx_done(&f);
}

static int client_disconnects(int port, void *arg)
{
    struct resp r;
    /* Mid-body. */
    struct cl *a = cl_open(port);
    cl_send(a, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789");
    sleep_ms(50);
    cl_close(a);
    C_EQ(one_shot(port, "GET /echo?q=after1 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);

    /* Mid-response: read a little of a large body, then reset. */
    a = cl_open(port);
    cl_send(a, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[4096];
    C_CHECK(recv(a->fd, buf, sizeof buf, 0) > 0);
    struct linger lg = {1, 0};
    setsockopt(a->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cl_close(a);
    C_EQ(one_shot(port, "GET /echo?q=after2 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);

    /* While the handler works: it notices and stops early. */
    a = cl_open(port);
    cl_send(a, "GET /gone HTTP/1.1\r\nHost: t\r\n\r\n");
    sleep_ms(60);
    cl_close(a);
    sleep_ms(200);
    C_EQ(one_shot(port, "GET /echo?q=after3 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
    return cfails;
}

static void test_client_disconnects(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_disconnects, NULL), 0);
    settle(&f, 50);
    CHECK_LOG(&f, "/upload", 499);
    CHECK_LOG(&f, "/big", 499);
    CHECK_LOG(&f, "/gone", 499);
    CHECK_EQ(f.gone_seen, 1);
    int ok = 0;
    for (int i = 0; i < f.nlog; i++)
        ok += f.log[i].status == 200;
    CHECK_EQ(ok, 3);
    fx_stop(&f);
    fx_done(&f);
}

static int client_async_stop(int port, void *arg)
{
    struct resp r;
    /* An idle keep-alive connection, and an exchange in flight. */
    struct cl *idle = cl_open(port), *busy = cl_open(port);
    C_CHECK(idle && busy);
    if (!idle || !busy)
        return cfails;
    cl_send(idle, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(idle, &r, 0), 200);
    int64_t t0 = now_ms();
    cl_send(busy, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
    /* The stop closes the idle connection at once... */
    int waited = cl_wait_eof(idle, 1000);
    C_CHECK(waited >= 0 && now_ms() - t0 < 250);
    /* ...while the exchange in flight gets its answer, with close. */
    C_EQ(cl_response(busy, &r, 0), 200);
    C_CHECK(now_ms() - t0 >= 250);
    C_HAS(r.body, "async done");
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(cl_wait_eof(busy, 1000) >= 0);
    cl_close(idle);
    cl_close(busy);
    /* The listener is gone. */
    C_CHECK(tcp_connect(port) < 0);
    return cfails;
}

static int client_async(int port, void *arg)
{
    struct resp r;
    struct cl *slow = cl_open(port);
    int64_t t0 = now_ms();
    cl_send(slow, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
    /* Others are served while the handler waits. */
    C_EQ(one_shot(port, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", &r), 200);
    C_CHECK(now_ms() - t0 < 200);
    C_EQ(cl_response(slow, &r, 0), 200);
    C_CHECK(now_ms() - t0 >= 250);
    C_HAS(r.body, "async done");
    C_CHECK(!find_ci(r.head, "\r\nConnection:"));
    cl_close(slow);
    return cfails;
}

static void test_async_and_stop_in_flight(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_async, NULL), 0);
    settle(&f, 20);
    CHECK_LOG(&f, "/async", 200);
    fx_stop(&f);

    CHECK_EQ(fx_start(&f, &cfg), 0);
    f.stop_on_async = 1;
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_async_stop, NULL), 0);
    CHECK_EQ(th_run_until(&f.tl, &f.stopped, 5000), 0);
    CHECK_EQ(f.stopped_before_async_reply, 0);
    CHECK_LOG(&f, "/async", 200);
    CHECK_EQ(f.nlog_at_done, 2); /* both exchanges logged before done */
    fx_done(&f);
}

/* ---- TLS ---- */

static char tmpdir[256];

static int write_pem(const char *path, EVP_PKEY *key, EVP_PKEY *cert_key)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    int ok = 1;
    if (cert_key) {
        X509 *x = X509_new();
        ok = x && X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, cert_key);
        X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
        ok = ok && n &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                        -1, -1, 0) &&
             X509_set_issuer_name(x, n) && X509_sign(x, cert_key, EVP_sha256()) > 0 &&
             PEM_write_X509(fp, x);
        X509_free(x);
    } else {
        ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    }
    fclose(fp);
    return ok ? 0 : -1;
}

static int make_certs(char *cert, char *key, char *other_key, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_http_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(cert, cap, "%s/cert.pem", tmpdir);
    snprintf(key, cap, "%s/key.pem", tmpdir);
    snprintf(other_key, cap, "%s/other.pem", tmpdir);
    EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
    int rc = k1 && k2 && write_pem(cert, NULL, k1) == 0 && write_pem(key, k1, NULL) == 0 &&
                     write_pem(other_key, k2, NULL) == 0
                 ? 0
                 : -1;
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    return rc;
}

/* Sends req over TLS and reads until the server closes. */
static int tls_exchange(int port, const char *req, char *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int fd = tcp_connect(port);
    if (!ctx || fd < 0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    size_t len = 0;
    int rc = -1;
    if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, (int)strlen(req)) == (int)strlen(req)) {
        for (;;) {
            int n = SSL_read(ssl, out + len, (int)(cap - 1 - len));
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        rc = (int)len;
    } else {
        ERR_print_errors_fp(stderr);
    }
    out[len] = '\0';
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return rc;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int client_tls(int port, void *arg)
{
    char *out = malloc(1 << 16);
    if (!out)
        return 1;
    C_CHECK(tls_exchange(port, "GET /echo?q=tls HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                         out, 1 << 16) > 0);
    C_HAS(out, "HTTP/1.1 200 OK\r\n");
    C_HAS(out, "q=tls\n");

    /* Pipelined on one TLS connection, with a body. */
    C_CHECK(tls_exchange(port,
                         "POST /echo?q=p1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                         "GET /echo?q=p2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                         out, 1 << 16) > 0);
    C_EQ(count_of(out, "HTTP/1.1 200 OK\r\n"), 2);
    C_HAS(out, "q=p1\nqsmall=2\nmulti=(none)\nlen=3\nbody=abc\n");
    C_HAS(out, "q=p2\n");

    /* curl, when there is one. */
    if (access("/usr/bin/curl", X_OK) == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "curl -sk --max-time 5 -d hello 'https://127.0.0.1:%d/echo?q=curl' 2>&1", port);
        FILE *p = popen(cmd, "r");
        size_t n = p ? fread(out, 1, (1 << 16) - 1, p) : 0;
        out[n] = '\0';
        if (p)
            C_EQ(pclose(p), 0);
        C_HAS(out, "q=curl\n");
        C_HAS(out, "len=5\nbody=hello\n");
    } else {
        fprintf(stderr, "  (no curl: skipped the curl request)\n");
    }

    /* Plain HTTP to the TLS port: told so in plain text, then closed. */
    struct cl *c = cl_open(port);
    struct resp r;
    cl_send(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 400);
    C_HAS(r.body, "https://");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);
    free(out);
    return cfails;
}

/* A finished TLS handshake, kept open. */
static SSL *tls_open(SSL_CTX *ctx, int port)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

static int client_tls_limits(int port, void *arg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    char out[4096];

    /* max_connections is 1: the second TLS client is told 503 over TLS. */
    SSL *first = tls_open(ctx, port);
    C_CHECK(first != NULL);
    C_CHECK(tls_exchange(port, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", out, sizeof out) > 0);
    C_HAS(out, "HTTP/1.1 503 Service Unavailable\r\n");
    C_HAS(out, "\r\nRetry-After: 5\r\n");
    if (first) {
        int fd = SSL_get_fd(first);
        SSL_free(first);
        close(fd);
    }

    /* The header timeout covers the handshake: a client that stops
     * half-way through its ClientHello is closed after it. */
    struct cl *c = cl_open(port);
    send_all(c->fd, "\x16\x03\x01\x02\x00\x01", 6);
    int waited = cl_wait_eof(c, 2000);
    C_CHECK(waited >= 400 && waited <= 1200);
    cl_close(c);
    SSL_CTX_free(ctx);
    return cfails;
}

static void test_tls_limits(const char *cert, const char *key)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    cfg.max_connections = 1;
    cfg.header_timeout_ms = 500;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    if (f.srv) {
        CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_tls_limits, NULL), 0);
        settle(&f, 20);
        CHECK_LOG(&f, "-", 503);
        fx_stop(&f);
    }
    fx_done(&f);
}

/* The gate behind TLS: records decrypted while the gate decides wait for
 * it, then are parsed in order. */
static int client_tls_gate(int port, void *arg)
{
    char out[16384];
    C_CHECK(tls_exchange(port,
                         "POST /later HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
                         "Content-Length: 5\r\n\r\nhello"
                         "GET /later?q=5 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
                         "Connection: close\r\n\r\n",
                         out, sizeof out) > 0);
    C_EQ(count_of(out, "HTTP/1.1 200 OK\r\n"), 2);
    C_HAS(out, "len=5\nbody=hello\n");
    C_HAS(out, "q=5\n");
    C_HAS(out, "gate=ok\n");
    C_CHECK(tls_exchange(port,
                         "PATCH /later HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n"
                         "Expect: 100-continue\r\n\r\n",
                         out, sizeof out) > 0);
    C_CHECK(strncmp(out, "HTTP/1.1 401 ", 13) == 0);
    C_HAS(out, "\r\nConnection: close\r\n");
    return cfails;
}

static void test_tls(void)
{
    char cert[300], key[300], other[300];
    CHECK_EQ(make_certs(cert, key, other, sizeof cert), 0);
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    if (f.srv) {
        CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_tls, NULL), 0);
        settle(&f, 20);
        CHECK_LOG(&f, "/echo", 200);
        CHECK_LOG(&f, "-", 400);
        fx_stop(&f);
    }
    cfg.gate = gate;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    if (f.srv) {
        CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_tls_gate, NULL), 0);
        settle(&f, 20);
        CHECK_LOG(&f, "/later", 401);
        fx_stop(&f);
    }
    cfg.gate = NULL;

    /* Unusable certificate files are named in the error. */
    struct op_error err;
    struct http_server *s = NULL;
    cfg.tls_cert_file = "/nonexistent/cert.pem";
    CHECK(http_server_start(&f.tl.loop, &cfg, handler, on_log, &f, &s, &err) < 0);
    CHECK_CONTAINS(err.msg, "/nonexistent/cert.pem");
    CHECK_CONTAINS(err.msg, "No such file");
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = other;
    CHECK(http_server_start(&f.tl.loop, &cfg, handler, on_log, &f, &s, &err) < 0);
    CHECK_CONTAINS(err.msg, other);
    CHECK_CONTAINS(err.msg, "does not match");
    cfg.tls_cert_file = key; /* a key where the certificate should be */
    cfg.tls_key_file = key;
    CHECK(http_server_start(&f.tl.loop, &cfg, handler, on_log, &f, &s, &err) < 0);
    CHECK_CONTAINS(err.msg, key);
    fx_done(&f);
    test_tls_limits(cert, key);
    unlink(cert);
    unlink(key);
    unlink(other);
    rmdir(tmpdir);
}

/* A gate that refuses answers while the client has sent only the head:
 * no 100 Continue, Connection: close, and the connection closes. */
static int client_gate(int port, void *arg)
{
    struct resp r;
    char v[128];
    /* 4 MB announced, with Expect: the 401 is the first and only answer. */
    struct cl *c = cl_open(port);
    cl_send(c, "PATCH /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4000000\r\n"
               "Expect: 100-continue\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 401);
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(strstr(resp_header(&r, "WWW-Authenticate", v, sizeof v), "Bearer") != NULL);
    C_CHECK(!strstr(c->in, "100 Continue"));
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);

    /* The same without Expect, the client pushing part of the body: the
     * answer still comes, and the connection closes. */
    c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4000000\r\n\r\n");
    char chunk[32768];
    memset(chunk, 'x', sizeof chunk);
    (void)send_all(c->fd, chunk, sizeof chunk);
    C_EQ(cl_response(c, &r, 0), 401);
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(cl_wait_eof(c, 3000) >= 0);
    cl_close(c);

    /* A refused request without a body keeps the connection: the next
     * one on it is parsed from a clean start. */
    c = cl_open(port);
    cl_send(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 401);
    C_CHECK(!find_ci(r.head, "\r\nConnection: close"));
    cl_send(c, "GET /echo?q=2 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=2\n");
    C_HAS(r.body, "gate=ok\n");
    cl_close(c);

    /* Passed at once, body and a pipelined request in one write. */
    c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
               "Content-Length: 5\r\n\r\nhello"
               "GET /echo?q=3 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "len=5\nbody=hello\n");
    C_HAS(r.body, "gate=ok\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=3\n");
    cl_close(c);

    /* The head's last byte arriving alone: the gate gets the request on a
     * read the parser used no byte of, and the connection goes on. */
    c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
               "Content-Length: 5\r\n\r");
    sleep_ms(50);
    cl_send(c, "\nhello");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "len=5\nbody=hello\n");
    cl_send(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r");
    sleep_ms(50);
    cl_send(c, "\n");
    C_EQ(cl_response(c, &r, 0), 401);
    cl_send(c, "GET /later?q=4 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n\r");
    sleep_ms(50);
    cl_send(c, "\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "q=4\n");
    cl_close(c);

    /* Passed later (asynchronously): then, and only then, 100 Continue. */
    c = cl_open(port);
    int64_t t0 = now_ms();
    cl_send(c, "POST /later HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
               "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 100);
    C_CHECK(now_ms() - t0 >= 90);
    cl_send(c, "0123456789");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "len=10\nbody=0123456789\n");
    C_HAS(r.body, "gate=ok\n");
    /* ...and a chunked body sent without waiting, on the same connection. */
    cl_send(c, "POST /later HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
               "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "len=3\nbody=abc\n");
    cl_close(c);

    /* Refused later: still no 100 and no body read. */
    c = cl_open(port);
    cl_send(c, "PUT /later HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer bad\r\n"
               "Content-Length: 4000000\r\nExpect: 100-continue\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 401);
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);

    /* The gate's cap: 413 from Content-Length at once, from a chunked
     * body as it passes 16 bytes. */
    c = cl_open(port);
    cl_send(c, "POST /small HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
               "Content-Length: 17\r\nExpect: 100-continue\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 413);
    C_HAS(r.body, "the limit is 16");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);
    C_EQ(one_shot(port,
                  "POST /small HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"
                  "1\r\nX\r\n0\r\n\r\n",
                  &r),
         413);
    C_EQ(one_shot(port,
                  "POST /small HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n"
                  "Content-Length: 16\r\n\r\n0123456789abcdef",
                  &r),
         200);
    return cfails;
}

static void test_gate(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.max_body_bytes = 8u * 1024 * 1024;
    cfg.gate = gate;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_gate, NULL), 0);
    settle(&f, 50);
    CHECK_LOG(&f, "/echo", 401);
    CHECK_LOG(&f, "/later", 200);
    CHECK_LOG(&f, "/later", 401);
    CHECK_LOG(&f, "/small", 413);
    CHECK(f.gate_calls >= 12);
    CHECK_EQ(http_server_buffered(f.srv), 0);
    fx_stop(&f);
    fx_done(&f);
}

#define STREAM_BIG (8u * 1024 * 1024)

static int client_stream(int port, void *arg)
{
    struct fx *f = arg;
    struct resp r;
    static unsigned char body[STREAM_BIG];
    for (uint64_t i = 0; i < STREAM_BIG; i++)
        body[i] = pattern(i);
    /* 8 MiB through a server that holds at most 64 KiB of bodies: in
     * order, in pieces of one read, nothing buffered, then the handler. */
    struct cl *c = cl_open(port);
    char h[256];
    snprintf(h, sizeof h, "PUT /stream HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n",
             STREAM_BIG);
    cl_send(c, h);
    C_EQ(send_all(c->fd, body, STREAM_BIG), 0);
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "streamed=8388608\n");
    /* Keep-alive goes on after a streamed body, a chunked one too. */
    cl_send(c, "PUT /stream HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    cl_send(c, "3\r\n");
    C_EQ(send_all(c->fd, body, 3), 0);
    cl_send(c, "\r\n0\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "streamed=3\n");
    cl_close(c);
    (void)f;
    /* Cut after 30,000 of 100,000 bytes: on_cut says 30,000, no handler. */
    c = cl_open(port);
    cl_send(c, "PUT /stream/cut HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    C_EQ(send_all(c->fd, body, 30000), 0);
    sleep_ms(100);
    cl_close(c);
    sleep_ms(100);
    /* The owner refuses the body (disk full): 507, the connection closes. */
    c = cl_open(port);
    cl_send(c, "PUT /stream/full HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n");
    cl_send(c, "0123456789");
    C_EQ(cl_response(c, &r, 0), 507);
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);
    return cfails;
}

/* A streamed body (http_gate_stream): handed over in order as it
 * arrives, a slow owner holding the rest back in the socket, memory
 * bounded by one read whatever the body's size, and a cut reported with
 * what arrived instead of reaching the handler. */
static void test_stream(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.max_body_bytes = 16u * 1024 * 1024;
    cfg.max_buffered_bytes = 64 * 1024;
    cfg.gate = gate;
    cfg.body_timeout_ms = 20000;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    f.s_slow = 1;
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_stream, &f), 0);
    settle(&f, 50);
    CHECK_EQ(f.s_order_bad, 0);
    CHECK_INT(f.s_piece_max, <=, 65536);
    CHECK_INT(f.s_buffered_max, <=, 0);
    CHECK_EQ(f.s_cuts, 2); /* the cut one and the refused one */
    CHECK_LOG(&f, "/stream", 200);
    CHECK_LOG(&f, "/stream/cut", 499);
    CHECK_LOG(&f, "/stream/full", 507);
    CHECK_EQ(http_server_buffered(f.srv), 0);
    fx_stop(&f);
    fx_done(&f);
}

/* The budget across connections: 256 KiB, bodies of at most 250,000
 * bytes. */
static int client_budget(int port, void *arg)
{
    struct resp r;
    char v[64];
    static char part[150000];
    memset(part, 'a', sizeof part);
    /* One connection holds most of it with a body half sent... */
    struct cl *a = cl_open(port);
    cl_send(a, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n");
    C_EQ(send_all(a->fd, part, sizeof part), 0);
    sleep_ms(200);
    /* ...so a chunked body on another is refused as it grows past the
     * rest... */
    struct cl *c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "186a0\r\n");
    (void)send_all(c->fd, part, 100000);
    C_EQ(cl_response(c, &r, 0), 503);
    C_EQ(strcmp(resp_header(&r, "Retry-After", v, sizeof v), "5"), 0);
    cl_close(c);
    /* ...and a length that does not fit what is left is refused before
     * the body, instead of 100 Continue. */
    c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
               "Expect: 100-continue\r\n\r\n");
    C_EQ(cl_response(c, &r, 0), 503);
    C_EQ(strcmp(resp_header(&r, "Retry-After", v, sizeof v), "5"), 0);
    C_HAS(r.head, "\r\nConnection: close\r\n");
    C_CHECK(cl_wait_eof(c, 1000) >= 0);
    cl_close(c);
    /* Small bodies still fit; the first finishes. */
    C_EQ(one_shot(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", &r), 200);
    C_EQ(send_all(a->fd, part, 50000), 0);
    C_EQ(cl_response(a, &r, 0), 200);
    C_HAS(r.body, "len=200000\n");
    cl_close(a);
    /* With it gone, the budget is free again. */
    sleep_ms(100);
    c = cl_open(port);
    cl_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    C_EQ(send_all(c->fd, part, 100000), 0);
    C_EQ(cl_response(c, &r, 0), 200);
    C_HAS(r.body, "len=100000\n");
    cl_close(c);
    return cfails;
}

static void test_buffered_budget(void)
{
    struct fx f;
    fx_init(&f);
    struct http_server_config cfg = base_cfg();
    cfg.max_body_bytes = 250000;
    cfg.max_buffered_bytes = 256 * 1024;
    CHECK_EQ(fx_start(&f, &cfg), 0);
    CHECK_EQ(th_run_client(&f.tl.loop, f.port, client_budget, NULL), 0);
    settle(&f, 50);
    CHECK_LOG(&f, "/echo", 503);
    CHECK_LOG(&f, "/echo", 200);
    CHECK_EQ(http_server_buffered(f.srv), 0);
    fx_stop(&f);
    fx_done(&f);
}

static void test_start_errors(void)
{
    struct fx f;
    fx_init(&f);
    struct op_error err;
    struct http_server *s = NULL;
    struct http_server_config cfg = base_cfg();
    cfg.listen = "localhost:80";
    CHECK_EQ(http_server_start(&f.tl.loop, &cfg, handler, on_log, &f, &s, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "localhost:80");
    cfg.listen = "127.0.0.1:99999";
    CHECK_EQ(http_server_start(&f.tl.loop, &cfg, handler, on_log, &f, &s, &err), -EINVAL);
    cfg.listen = "[::1]:0";
    if (http_server_start(&f.tl.loop, &cfg, handler, on_log, &f, &s, &err) == 0) {
        CHECK(http_server_port(s) > 0);
        f.srv = s;
        fx_stop(&f);
    }
    /* Address in use. */
    cfg = base_cfg();
    CHECK_EQ(fx_start(&f, &cfg), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f.port);
    cfg.listen = addr;
    CHECK_EQ(http_server_start(&f.tl.loop, &cfg, handler, on_log, &f, &s, &err), UV_EADDRINUSE);
    CHECK_CONTAINS(err.msg, addr);
    fx_stop(&f);
    fx_done(&f);

    CHECK_STR(http_status_text(404), "Not Found");
    CHECK_STR(http_status_text(431), "Request Header Fields Too Large");
    CHECK_STR(http_status_text(503), "Service Unavailable");
}

int main(void)
{
    alarm(120);
    signal(SIGPIPE, SIG_IGN);
    RUN(test_simple_get);
    RUN(test_keepalive_pipelining_head_http10);
    RUN(test_bodies_and_expect);
    RUN(test_limits);
    RUN(test_malformed_and_decoding);
    RUN(test_max_connections);
    RUN(test_per_address_cap);
    RUN(test_slowloris_and_timeouts);
    RUN(test_idle_timeout);
    RUN(test_client_disconnects);
    RUN(test_async_and_stop_in_flight);
    RUN(test_tls);
    RUN(test_gate);
    RUN(test_buffered_budget);
    RUN(test_stream);
    RUN(test_start_errors);
    return tl_report();
}
