/*
 * libFuzzer target for sync/net/http_server.c: each input is sent, as one
 * client's byte stream, to a real server on 127.0.0.1 (parser, limits,
 * pipelining, percent-decoding, refusals and the connection state machine
 * all run as in production), then the client half-closes and reads until
 * the server closes. Beyond "no crash, no leak, no overflow" it checks the
 * module's promises: the handler sees a path starting with '/', a body
 * within the limit and NUL-terminated, query values that decode to what
 * http_query_param says; every exchange the handler got is logged exactly
 * once; logged statuses are real HTTP statuses; and the server always
 * closes a connection whose client has finished sending.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_http_request -max_len=100000 tests/fuzz/corpus/http_request
 * The first input byte picks the server: even = default limits, odd = tiny
 * limits (256-byte headers, 64-byte bodies) so the limit paths are reached
 * with short inputs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "fuzz_net.h"
#include "http_server.h"

struct counts {
    unsigned handled;
    unsigned logged_handled;
    unsigned logged;
};

static uv_loop_t *loop;
static struct http_server *servers[2];
static size_t body_limit[2] = {0, 64};
static struct counts counts;

static void on_log(void *ctx, const struct http_log_entry *e)
{
    must(e->method && e->path && e->user && e->remote, "log fields set");
    must(e->status >= 100 && e->status <= 599, "logged status is an HTTP status");
    counts.logged++;
    if (strcmp(e->user, "fuzz") == 0)
        counts.logged_handled++;
}

static void handler(void *ctx, struct http_exchange *x)
{
    size_t limit = *(size_t *)ctx;
    counts.handled++;
    http_set_user(x, "fuzz");
    const char *path = http_path(x);
    must(path[0] == '/', "path starts with /");
    must(http_method(x)[0] != '\0', "method set");
    size_t len;
    const char *body = http_body(x, &len);
    must(body != NULL && body[len] == '\0', "body NUL-terminated");
    must(len <= limit, "body within the limit");
    (void)http_header(x, "host");
    (void)http_header(x, "x-a");
    char v[16];
    int n = http_query_param(x, "a", v, sizeof v);
    must(n == -ENOENT || n == -E2BIG || n == -EINVAL || (n >= 0 && strlen(v) == (size_t)n),
         "query param length");
    must(!http_exchange_gone(x) || 1, "gone is callable");
    (void)http_add_header(x, "X-Len", "1");
    http_respond(x, len ? 200 : 204, "text/plain", body, len);
}

static void start(int i)
{
    struct http_server_config cfg = {
        .listen = "127.0.0.1:0",
        .header_timeout_ms = 2000,
        .body_timeout_ms = 2000,
        .idle_timeout_ms = 2000,
    };
    if (i == 1) {
        cfg.max_header_bytes = 256;
        cfg.max_body_bytes = 64;
    }
    body_limit[i] = i == 1 ? 64 : 1024 * 1024;
    struct op_error err;
    if (http_server_start(loop, &cfg, handler, on_log, &body_limit[i], &servers[i], &err) < 0) {
        fprintf(stderr, "cannot start: %s\n", err.msg);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    start(0);
    start(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct http_server *s = servers[data[0] & 1];
    data++;
    size--;
    memset(&counts, 0, sizeof counts);

    (void)fuzz_exchange(loop, s, data, size, NULL, 0);
    must(http_server_connections(s) == 0, "connection released");
    must(counts.logged_handled == counts.handled, "every handled exchange logged once");
    return 0;
}
