/*
 * OpenSSL 3 behind memory BIOs for the HTTP server; see http_tls.h. The
 * read BIO holds ciphertext the socket delivered and TLS has not consumed,
 * the write BIO ciphertext TLS produced and the socket has not taken. The
 * OpenSSL error queue is cleared before every call so SSL_get_error talks
 * about that call only, and emptied after a failure so one connection's
 * error never shows up on another.
 */
#include "http_tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct http_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct http_tls {
    SSL *ssl;
    BIO *rbio; /* network -> TLS */
    BIO *wbio; /* TLS -> network */
};

/* The reason of the newest queued OpenSSL error, then an empty queue. */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r)
        snprintf(buf, cap, "%s", r);
    else if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "unknown error");
    ERR_clear_error();
    return buf;
}

/* OpenSSL's own message for a missing file is "system lib"; opening the
 * file first gives the user the errno text instead. */
static int check_readable(const char *path, const char *field, const char *what,
                          struct op_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        return op_error_set(err, -e, field, "cannot read TLS %s %s: %s", what, path, strerror(e));
    }
    fclose(f);
    return 0;
}

/* Only HTTP/1.1 is spoken; without an answer to ALPN a client offering h2
 * would still fall back, but saying so is clearer. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;
    if (SSL_select_next_proto(&sel, &sel_len, h11, sizeof h11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

int http_tls_ctx_new(const char *cert_file, const char *key_file, struct http_tls_ctx **out,
                     struct op_error *err)
{
    char reason[256];
    int rc = check_readable(cert_file, "tls_cert_file", "certificate chain", err);
    if (rc < 0)
        return rc;
    rc = check_readable(key_file, "tls_key_file", "private key", err);
    if (rc < 0)
        return rc;

    struct http_tls_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return op_error_set(err, -ENOMEM, NULL, "out of memory for the TLS context");
    ERR_clear_error();
    c->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!c->ssl_ctx) {
        rc = op_error_set(err, -ENOMEM, NULL, "cannot create the TLS context: %s",
                          ssl_reason(reason, sizeof reason));
        goto fail;
    }
    SSL_CTX *sc = c->ssl_ctx;
    if (SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1) {
        rc = op_error_set(err, -EINVAL, NULL, "cannot require TLS 1.2: %s",
                          ssl_reason(reason, sizeof reason));
        goto fail;
    }
    /* TLS 1.2 with forward secrecy and AEAD only: no CBC suites (padding
     * oracles, Lucky13), no SHA-1 MACs, no static RSA key exchange. TLS 1.3
     * suites are all AEAD and keep OpenSSL's defaults. */
    if (SSL_CTX_set_cipher_list(sc, HTTP_TLS_CIPHERS_12) != 1) {
        rc = op_error_set(err, -EINVAL, NULL, "cannot set the TLS 1.2 cipher list: %s",
                          ssl_reason(reason, sizeof reason));
        goto fail;
    }
    /* Client-initiated renegotiation costs the server a handshake per
     * request of a hostile client; nothing here needs it. */
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                SSL_OP_NO_COMPRESSION);
    /* Idle keep-alive connections should not each hold 2 x 16 KiB. */
    SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(sc, select_alpn, NULL);

    if (SSL_CTX_use_certificate_chain_file(sc, cert_file) != 1) {
        rc = op_error_set(err, -EINVAL, "tls_cert_file", "cannot load TLS certificate chain %s: %s",
                          cert_file, ssl_reason(reason, sizeof reason));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(sc, key_file, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            rc = op_error_set(err, -EINVAL, "tls_key_file",
                              "TLS private key %s does not match certificate %s", key_file,
                              cert_file);
        else
            rc = op_error_set(err, -EINVAL, "tls_key_file", "cannot load TLS private key %s: %s",
                              key_file, ssl_reason(reason, sizeof reason));
        ERR_clear_error();
        goto fail;
    }
    if (SSL_CTX_check_private_key(sc) != 1) {
        rc = op_error_set(err, -EINVAL, "tls_key_file",
                          "TLS private key %s does not match certificate %s: %s", key_file,
                          cert_file, ssl_reason(reason, sizeof reason));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    http_tls_ctx_free(c);
    return rc;
}

void http_tls_ctx_free(struct http_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

int http_tls_new(struct http_tls_ctx *ctx, struct http_tls **out)
{
    struct http_tls *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    /* Empty read BIO = "try again later", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both BIOs now */
    SSL_set_accept_state(t->ssl);
    *out = t;
    return 0;
}

void http_tls_free(struct http_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

/* Passes all len bytes of data to put, in pieces an int can count; 0, or
 * fail when put takes nothing. */
static int put_all(struct http_tls *t, int (*put)(struct http_tls *, const void *, int),
                   const void *data, size_t len, int fail)
{
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        int w = put(t, data, n);
        if (w <= 0) {
            ERR_clear_error();
            return fail;
        }
        data = (const char *)data + w;
        len -= (size_t)w;
    }
    return 0;
}

static int put_ciphertext(struct http_tls *t, const void *data, int n)
{
    return BIO_write(t->rbio, data, n);
}

static int put_plaintext(struct http_tls *t, const void *data, int n)
{
    ERR_clear_error();
    return SSL_write(t->ssl, data, n);
}

int http_tls_feed(struct http_tls *t, const void *data, size_t len)
{
    return put_all(t, put_ciphertext, data, len, -ENOMEM);
}

int http_tls_read(struct http_tls *t, char *buf, size_t cap)
{
    int n = cap > INT_MAX ? INT_MAX : (int)cap;
    ERR_clear_error();
    int r = SSL_read(t->ssl, buf, n);
    if (r > 0)
        return r;
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* the write BIO never fills; be safe */
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return -EPIPE;
    default:
        ERR_clear_error();
        return -EPROTO;
    }
}

int http_tls_write(struct http_tls *t, const void *data, size_t len)
{
    return put_all(t, put_plaintext, data, len, -EPROTO);
}

void http_tls_shutdown(struct http_tls *t)
{
    ERR_clear_error();
    if (SSL_is_init_finished(t->ssl))
        (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

int http_tls_take(struct http_tls *t, char **out, size_t *len)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    *out = NULL;
    *len = 0;
    if (n == 0)
        return 0;
    char *b = malloc(n);
    if (!b)
        return -ENOMEM;
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        int r = BIO_read(t->wbio, b + got, want > INT_MAX ? INT_MAX : (int)want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == 0) {
        free(b);
        return 0;
    }
    *out = b;
    *len = got;
    return 0;
}

int http_tls_listen_is_loopback(const char *listen)
{
    char host[64];
    const char *colon;
    if (!listen)
        return 0;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || (size_t)(close - listen - 1) >= sizeof host)
            return 0;
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        unsigned char a6[16];
        if (inet_pton(AF_INET6, host, a6) != 1)
            return 0;
        static const unsigned char one[16] = {[15] = 1};
        static const unsigned char v4mapped[12] = {[10] = 0xff, [11] = 0xff};
        if (!memcmp(a6, one, 16))
            return 1;
        return !memcmp(a6, v4mapped, 12) && a6[12] == 127;
    }
    colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    if (n >= sizeof host)
        return 0;
    memcpy(host, listen, n);
    host[n] = '\0';
    unsigned char a4[4];
    return inet_pton(AF_INET, host, a4) == 1 && a4[0] == 127;
}
