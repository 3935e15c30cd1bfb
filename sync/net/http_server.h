/*
 * The HTTP/1.1 server outpostd and outpost-hq serve on: one libuv
 * loop, requests parsed by libhttp-parser, optional TLS through OpenSSL
 * memory BIOs. It enforces the limits that keep one bad client from hurting
 * the others (header size 431, body size 413, connections per client
 * address, connection cap 503 with Retry-After after closing the oldest
 * idle keep-alive connection, malformed 400, header/body/idle deadlines)
 * and hands each complete request to one handler as an exchange.
 *
 * Invariants: a connection has at most one exchange in flight (reading is
 * paused until it is answered, so pipelined requests are served in order and
 * a client cannot queue unbounded work); every exchange is answered exactly
 * once; memory per connection is bounded by the configured limits, and
 * the request bodies and put-aside bytes of all connections together by
 * max_buffered_bytes. With a gate, no body byte is read (and no
 * 100 Continue sent) before the gate let the request pass.
 */
#ifndef OUTPOST_HTTP_SERVER_H
#define OUTPOST_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "op_error.h"

struct http_exchange;
struct http_server;

/* Called once per request when its headers are complete, before any byte
 * of its body is read and before 100 Continue is sent; reading from the
 * connection is paused meanwhile. The gate answers, now or later from
 * another loop callback (after thread-pool work), with exactly one of
 * http_gate_pass (go on) or http_respond / http_respond_problem (refuse:
 * the body is never read; when one was announced the response carries
 * Connection: close and the connection closes after it). Only the method,
 * path, query, headers and remote address are known at that point. */
typedef void (*http_gate_fn)(void *ctx, struct http_exchange *x);

struct http_server_config {
    const char *listen;       /* "127.0.0.1:8080", "[::1]:0", "0.0.0.0:8443"; port 0 picks one */
    size_t max_header_bytes;  /* request line + headers; over it: 431. 0 = 16 KiB */
    size_t max_body_bytes;    /* decoded body; over it: 413. 0 = 1 MiB */
    unsigned max_connections; /* beyond it: the oldest idle keep-alive connection is closed
                                 to make room; if none, 503 + Retry-After, then close.
                                 0 = 512 */
    unsigned max_connections_per_address; /* one IPv4 address or IPv6 /64; beyond it: refused
                                             at accept (503 at once on plain HTTP, then close).
                                             0 = 32 */
    unsigned header_timeout_ms; /* until a request's last header, from accept (first request)
                                   or its first byte (later ones): 408. 0 = 10 s */
    unsigned body_timeout_ms;   /* from the end of headers to the end of the body: 408. 0 = 30 s */
    unsigned idle_timeout_ms;   /* keep-alive wait for the next request: close. 0 = 60 s */
    const char *tls_cert_file;  /* PEM chain; with tls_key_file, serve TLS only */
    const char *tls_key_file;
    /* Request bodies and pipelined bytes held in memory by all connections
     * together. A body that would pass it is answered 503 with Retry-After
     * (then the connection closes); nothing is allocated past it.
     * 0 = 64 MiB; never less than max_body_bytes */
    size_t max_buffered_bytes;
    /* Authenticates requests before their bodies are read; NULL: every
     * request goes straight on (with a body of at most max_body_bytes). */
    http_gate_fn gate;
};

/* Called once per complete request. The handler answers with http_respond,
 * now or later from another loop callback (after thread-pool work). */
typedef void (*http_handler_fn)(void *ctx, struct http_exchange *x);

/* What happened to one exchange; passed to the log callback after the
 * response was written (or the client went away). */
struct http_log_entry {
    const char *method;
    const char *path;
    int status;         /* as sent; 499 when the client left before it was written */
    uint64_t bytes_out; /* body bytes sent */
    double duration_ms; /* first request byte to last response byte */
    const char *user;   /* from http_set_user, or "-" */
    const char *remote; /* "192.0.2.4:51234" */
};
typedef void (*http_log_fn)(void *ctx, const struct http_log_entry *entry);

/* Checks a listen address as http_server_start reads it ("IPV4:PORT" or
 * "[IPV6]:PORT", numeric, port 0 to 65535), so a configuration can refuse
 * it before anything starts. Returns 0, or -EINVAL with err naming the
 * address and the expected form (field "listen"). */
int http_server_check_listen(const char *listen, struct op_error *err);

/* Binds, listens and starts serving on loop. err names the address and the
 * reason (address in use, bad address, unreadable certificate). Sets
 * SIGPIPE to ignored if it is at its default: a client that resets the
 * connection mid-response must cost an EPIPE, not the process. */
int http_server_start(uv_loop_t *loop, const struct http_server_config *cfg,
                      http_handler_fn handler, http_log_fn log, void *ctx, struct http_server **out,
                      struct op_error *err);

/* The bound port (useful with port 0). */
int http_server_port(const struct http_server *s);

/* Connections open right now. */
unsigned http_server_connections(const struct http_server *s);

/* What the connection limits did since the start, for metrics and tests. */
struct http_server_stats {
    unsigned connections;     /* open now, as http_server_connections */
    unsigned idle;            /* of them, idle keep-alive connections */
    unsigned addresses;       /* client address groups holding a connection */
    uint64_t refused_address; /* refused at accept: the address held its cap */
    uint64_t refused_full;    /* refused (503 or closed): the server was full */
    uint64_t evicted_idle;    /* idle keep-alive connections closed to make room */
};
void http_server_get_stats(const struct http_server *s, struct http_server_stats *out);

/* Graceful stop: closes the listener, closes idle connections, lets each
 * in-flight exchange finish (its response carries Connection: close), then
 * calls done(arg) once every handle is closed and frees the server. */
void http_server_stop(struct http_server *s, void (*done)(void *arg), void *arg);

/* Request accessors; strings are NUL-terminated and live until the
 * exchange is answered. */
const char *http_method(const struct http_exchange *x); /* "GET" */
const char *http_path(const struct http_exchange *x);   /* "/api/v1/contacts", percent-decoded */
const char *http_query(const struct http_exchange *x);  /* raw query without '?', or "" */
const char *http_remote(const struct http_exchange *x); /* "ip:port" */
/* A request header by name (case-insensitive); repeated headers are joined
 * with ", ". NULL if absent. */
const char *http_header(const struct http_exchange *x, const char *name);
/* The decoded body (Content-Length or chunked); *len gets its length.
 * Never NULL: an empty body is "". */
const char *http_body(const struct http_exchange *x, size_t *len);

/* Copies a value of the query string (percent-decoded, '+' as space) into
 * out. Returns its length, -ENOENT if absent, -E2BIG if it does not fit,
 * -EINVAL if its percent-encoding is malformed or encodes NUL. */
int http_query_param(const struct http_exchange *x, const char *name, char *out, size_t cap);

/* The authenticated user, for the log line. Copied. */
void http_set_user(struct http_exchange *x, const char *user);

/* Adds a response header (copied) before http_respond. Returns -E2BIG
 * past a fixed cap of headers (32, 8 KiB), -EINVAL for a name that is not
 * a token, a value with control characters (no header injection), or a
 * header the server owns (Content-Length, Transfer-Encoding, Date);
 * "Connection: close" is accepted and closes after the response. */
int http_add_header(struct http_exchange *x, const char *name, const char *value);

/* Sends the response and ends the exchange; call it exactly once, x is
 * invalid afterwards. Safe to call after the client disconnected (the
 * response is dropped and the exchange logged as 499). Adds
 * Content-Length, Date and, when closing, Connection: close. */
void http_respond(struct http_exchange *x, int status, const char *content_type, const void *body,
                  size_t len);

/* Answers like http_respond with an RFC 9457 problem document
 * (problem.h): title NULL is the status's reason phrase, detail says what
 * went wrong and what to do. Out of memory answers 500 text/plain
 * "out of memory" instead. */
void http_respond_problem(struct http_exchange *x, int status, const char *title,
                          const char *detail);

/* True once the client has gone away (the socket shows end of stream or
 * an error); a slow handler may stop early, and must still http_respond. */
int http_exchange_gone(const struct http_exchange *x);

/* Lets a request the gate is holding go on: sends 100 Continue if the
 * client asked for it and reads a body of at most max_body bytes (0 or
 * more than max_body_bytes: max_body_bytes); a larger one is answered 413
 * (at once when Content-Length announces it) and the connection closes.
 * Then the handler gets the request as usual. Call it exactly once
 * instead of http_respond, only from the gate's side; if the client left
 * meanwhile the exchange just ends (logged as 499). */
void http_gate_pass(struct http_exchange *x, size_t max_body);

/* A streamed body's bytes, handed over as they arrive (the body is never
 * buffered). Called on the loop; reading pauses until it returns, so a
 * callee that writes the bytes out is the back-pressure: the rest waits
 * in the socket. Returns 0, or a negative errno to refuse the request
 * (-ENOSPC and -EDQUOT answer 507, others 500; the connection closes and
 * on_cut follows). The exchange may be read (http_header, http_path) but
 * not answered from here. */
typedef int (*http_body_data_fn)(void *ctx, struct http_exchange *x, const char *data, size_t len);

/* A streamed body ended before its last byte: the client left, the body
 * deadline passed, the body broke the framing or its cap, on_data
 * refused it, the server stopped, or http_exchange_abort. received is
 * what on_data was given. Called exactly once, as the exchange ends (it
 * is never answered by its owner then; do not call http_respond). */
typedef void (*http_body_cut_fn)(void *ctx, struct http_exchange *x, uint64_t received);

/* Like http_gate_pass, but the body (at most max_body bytes, as there)
 * goes to on_data piece by piece instead of into memory: what the
 * connection holds is one socket read, whatever the body's size. When
 * the body is complete the handler gets the request as usual, with an
 * empty http_body and http_body_streamed telling how many bytes on_data
 * took; when it is not, on_cut is called instead and the handler never
 * sees the request. A request without a body goes to the handler at
 * once (on_data never called). Call exactly once instead of
 * http_gate_pass or http_respond, only from the gate's side. */
void http_gate_stream(struct http_exchange *x, size_t max_body, http_body_data_fn on_data,
                      http_body_cut_fn on_cut, void *ctx);

/* Body bytes handed to on_data so far (0 for a request not streamed). */
uint64_t http_body_streamed(const struct http_exchange *x);

/* Closes the connection of an exchange whose body is being streamed
 * (state body), for an owner that must take over what it was writing to
 * (a client that reconnected while its old connection looks alive):
 * on_cut is called before this returns and the exchange is gone. Does
 * nothing to an exchange in any other state. */
void http_exchange_abort(struct http_exchange *x);

/* Attaches data of the owner's to the exchange (e.g. the user the gate
 * authenticated, for the handler to reuse); free_fn(data) is called when
 * the exchange ends, however it ends (free_fn may be NULL). A second call
 * frees the first data. */
void http_set_data(struct http_exchange *x, void *data, void (*free_fn)(void *));

/* The data of http_set_data, or NULL. */
void *http_data(const struct http_exchange *x);

/* Bytes of bodies and pipelined input held right now by all connections
 * (counted against max_buffered_bytes). */
size_t http_server_buffered(const struct http_server *s);

/* The reason phrase of a status ("Not Found"). */
const char *http_status_text(int status);

#endif
