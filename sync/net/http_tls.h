/*
 * The TLS layer of the HTTP server: OpenSSL driven through two memory BIOs,
 * so that the socket stays with libuv and no call here ever blocks.
 * Ciphertext read from the socket goes in with http_tls_feed, plaintext
 * comes out of http_tls_read (which also drives the handshake); plaintext
 * to send goes in with http_tls_write and the ciphertext to put on the
 * socket comes out of http_tls_take. Invariant: a connection's buffered
 * ciphertext is only what its caller fed and has not yet read, plus what
 * it wrote and has not yet taken; nothing is buffered behind its back.
 */
#ifndef OUTPOST_HTTP_TLS_H
#define OUTPOST_HTTP_TLS_H

#include <stddef.h>

#include "op_error.h"

struct http_tls_ctx;
struct http_tls;

/* The TLS 1.2 suites offered (OpenSSL cipher-list syntax): ECDHE key
 * exchange with AES-GCM or ChaCha20-Poly1305, nothing else. TLS 1.3 suites
 * are AEAD by definition and stay OpenSSL's defaults. */
#define HTTP_TLS_CIPHERS_12 "ECDHE+AESGCM:ECDHE+CHACHA20"

/* Loads the PEM certificate chain and private key (checked against each
 * other) into a server context with TLS 1.2 as the minimum version and
 * HTTP_TLS_CIPHERS_12 as the only TLS 1.2 suites. err
 * names the file that cannot be read or does not fit. Returns 0, -EINVAL
 * (bad or mismatched file), -ENOENT/-EACCES (unreadable), -ENOMEM. */
int http_tls_ctx_new(const char *cert_file, const char *key_file, struct http_tls_ctx **out,
                     struct op_error *err);

/* Frees the context; NULL is allowed. Connections made from it must have
 * been freed first. */
void http_tls_ctx_free(struct http_tls_ctx *ctx);

/* A server-side TLS state for one connection. Returns 0 or -ENOMEM. */
int http_tls_new(struct http_tls_ctx *ctx, struct http_tls **out);

/* NULL is allowed. */
void http_tls_free(struct http_tls *t);

/* Hands ciphertext from the network to TLS. Returns 0 or -ENOMEM. */
int http_tls_feed(struct http_tls *t, const void *data, size_t len);

/* Decrypts up to cap bytes into buf, advancing the handshake first. Returns
 * the byte count (> 0), 0 when more ciphertext is needed, -EPIPE when the
 * peer sent close_notify, -EPROTO on a handshake or record error. Output
 * produced on the way (handshake messages, alerts) waits for
 * http_tls_take. */
int http_tls_read(struct http_tls *t, char *buf, size_t cap);

/* Encrypts all of data into the outgoing buffer. Returns 0, -EPROTO. */
int http_tls_write(struct http_tls *t, const void *data, size_t len);

/* Queues close_notify. */
void http_tls_shutdown(struct http_tls *t);

/* Moves all pending ciphertext into a new heap buffer the caller frees.
 * *out is NULL and *len 0 when there is nothing. Returns 0 or -ENOMEM. */
int http_tls_take(struct http_tls *t, char **out, size_t *len);

/* 1 when a listen address ("a.b.c.d:port" or "[addr]:port") is a loopback
 * address (127.0.0.0/8, ::1, ::ffff:127.x.y.z): the only place plain HTTP
 * is served without the admin saying so. 0 for anything else, including
 * 0.0.0.0, [::] and text that is not an address. */
int http_tls_listen_is_loopback(const char *listen);

#endif
