/* Tests for sync/net/http_tls.c: which clients the server's TLS accepts.
 * An OpenSSL client and the server's http_tls are joined through memory
 * buffers, so the handshake runs in-process without sockets: TLS 1.2 with
 * AES-GCM or ChaCha20-Poly1305 and TLS 1.3 succeed; TLS 1.1, CBC suites
 * (with SHA-1 or SHA-256 MACs) and static RSA key exchange fail. Also the
 * loopback test for listen addresses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fixture.h"
#include "http_tls.h"
#include "node_cert.h"
#include "testlib.h"

static char cert_path[FX_PATH_MAX + 16], key_path[FX_PATH_MAX + 16];

/* Moves everything pending in a memory BIO to the server. */
static int to_server(BIO *from, struct http_tls *srv)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(from, buf, sizeof buf)) > 0)
        if (http_tls_feed(srv, buf, (size_t)n) < 0)
            return -1;
    return 0;
}

static int to_client(struct http_tls *srv, BIO *to)
{
    char *out = NULL;
    size_t len = 0;
    if (http_tls_take(srv, &out, &len) < 0)
        return -1;
    int ok = len == 0 || BIO_write(to, out, (int)len) == (int)len;
    free(out);
    return ok ? 0 : -1;
}

struct outcome {
    int server_rc; /* http_tls_read's last result: > 0 data, -EPROTO refused */
    int client_ok; /* the client's handshake finished */
    int version;   /* SSL_version of the client on success */
    char cipher[64];
};

/* Runs a handshake between a client made from cctx and a fresh server
 * connection, then sends "ping" from the client. */
static struct outcome handshake(struct http_tls_ctx *sctx, SSL_CTX *cctx)
{
    struct outcome o = {0};
    struct http_tls *srv = NULL;
    if (http_tls_new(sctx, &srv) < 0)
        fx_die("http_tls_new", NULL);
    SSL *cli = SSL_new(cctx);
    BIO *crd = BIO_new(BIO_s_mem()), *cwr = BIO_new(BIO_s_mem());
    if (!cli || !crd || !cwr)
        fx_die("client SSL", NULL);
    BIO_set_mem_eof_return(crd, -1);
    SSL_set_bio(cli, crd, cwr);
    SSL_set_connect_state(cli);
    SSL_set_tlsext_host_name(cli, "outpost.lan");
    char buf[256];
    int sent = 0;
    for (int round = 0; round < 20; round++) {
        int r = SSL_do_handshake(cli);
        if (r == 1 && !sent) {
            o.client_ok = 1;
            sent = SSL_write(cli, "ping", 4) == 4;
        }
        if (to_server(cwr, srv) < 0)
            break;
        o.server_rc = http_tls_read(srv, buf, sizeof buf);
        if (to_client(srv, crd) < 0)
            break;
        if (o.server_rc != 0)
            break;
    }
    if (o.client_ok) {
        o.version = SSL_version(cli);
        snprintf(o.cipher, sizeof o.cipher, "%s", SSL_get_cipher_name(cli));
    }
    ERR_clear_error();
    SSL_free(cli);
    http_tls_free(srv);
    return o;
}

static SSL_CTX *client_ctx(int min, int max, const char *ciphers)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c)
        fx_die("SSL_CTX_new", NULL);
    /* Level 0 lets this client offer what a careless or old one would;
     * the server must still refuse it. */
    SSL_CTX_set_security_level(c, 0);
    SSL_CTX_set_min_proto_version(c, min);
    SSL_CTX_set_max_proto_version(c, max);
    if (ciphers && SSL_CTX_set_cipher_list(c, ciphers) != 1)
        fx_die(ciphers, NULL);
    return c;
}

/* The server's context from the test's certificate, or NULL (checked). */
static struct http_tls_ctx *server_ctx(void)
{
    struct http_tls_ctx *sctx = NULL;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(http_tls_ctx_new(cert_path, key_path, &sctx, &err), 0);
    return sctx;
}

/* What a client offers: versions min..max and ciphers (NULL: the
 * library's default list), and the cipher the server must pick when it
 * accepts (NULL: any AEAD). */
struct client_offer {
    int min, max;
    const char *ciphers, *want;
};

/* A handshake from a client making offer co. */
static struct outcome offer(struct http_tls_ctx *sctx, const struct client_offer *co)
{
    SSL_CTX *c = client_ctx(co->min, co->max, co->ciphers);
    struct outcome o = handshake(sctx, c);
    SSL_CTX_free(c);
    return o;
}

static void accepts_modern_clients(void)
{
    struct http_tls_ctx *sctx = server_ctx();
    if (!sctx)
        return;
    static const struct client_offer ok[] = {
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256",
         "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384",
         "ECDHE-ECDSA-AES256-GCM-SHA384"},
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305",
         "ECDHE-ECDSA-CHACHA20-POLY1305"},
        /* a browser's list: CBC offered too, but never chosen */
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256",
         "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct outcome o = offer(sctx, &ok[i]);
        CHECK_EQ(o.client_ok, 1);
        CHECK_EQ(o.server_rc, 4); /* "ping" arrived */
        CHECK_EQ(o.version, ok[i].max);
        if (ok[i].want)
            CHECK_STR(o.cipher, ok[i].want);
        else
            CHECK(strstr(o.cipher, "GCM") || strstr(o.cipher, "CHACHA20"));
    }
    http_tls_ctx_free(sctx);
}

static void refuses_old_clients(void)
{
    struct http_tls_ctx *sctx = server_ctx();
    if (!sctx)
        return;
    static const struct client_offer bad[] = {
        {TLS1_VERSION, TLS1_1_VERSION, "ALL:@SECLEVEL=0", NULL},             /* TLS 1.1 and older */
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA", NULL},    /* CBC, SHA-1 MAC */
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES256-SHA", NULL},    /* CBC, SHA-1 MAC */
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256", NULL}, /* CBC, SHA-256 MAC */
        {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES256-SHA384", NULL}, /* CBC, SHA-384 MAC */
        {TLS1_2_VERSION, TLS1_2_VERSION, "AES128-GCM-SHA256", NULL}, /* no forward secrecy */
        {TLS1_2_VERSION, TLS1_2_VERSION, "AES128-SHA256", NULL},     /* neither */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outcome o = offer(sctx, &bad[i]);
        if (o.client_ok)
            fprintf(stderr, "accepted %s with %s\n", bad[i].ciphers, o.cipher);
        CHECK_EQ(o.client_ok, 0);
        CHECK_EQ(o.server_rc, -EPROTO);
    }
    http_tls_ctx_free(sctx);
}

static void loopback(void)
{
    CHECK_EQ(http_tls_listen_is_loopback("127.0.0.1:8080"), 1);
    CHECK_EQ(http_tls_listen_is_loopback("127.1.2.3:0"), 1);
    CHECK_EQ(http_tls_listen_is_loopback("[::1]:8443"), 1);
    CHECK_EQ(http_tls_listen_is_loopback("[::ffff:127.0.0.1]:8443"), 1);
    CHECK_EQ(http_tls_listen_is_loopback("0.0.0.0:8080"), 0);
    CHECK_EQ(http_tls_listen_is_loopback("[::]:8080"), 0);
    CHECK_EQ(http_tls_listen_is_loopback("192.168.1.10:8443"), 0);
    CHECK_EQ(http_tls_listen_is_loopback("128.0.0.1:80"), 0);
    CHECK_EQ(http_tls_listen_is_loopback("localhost:8080"), 0); /* not an address */
    CHECK_EQ(http_tls_listen_is_loopback("[::1:8080"), 0);
    CHECK_EQ(http_tls_listen_is_loopback(""), 0);
    CHECK_EQ(http_tls_listen_is_loopback(NULL), 0);
}

int main(void)
{
    fx_tmpdir("tls");
    struct node_cert_hosts h;
    struct op_error err;
    op_error_clear(&err);
    if (node_cert_parse_hosts("outpost.lan", &h, &err) < 0 ||
        node_cert_create(fx_dir, &h, 0, 0, NULL, &err) < 0)
        fx_die("node certificate", &err);
    snprintf(cert_path, sizeof cert_path, "%s/%s", fx_dir, NODE_CERT_NODE_PEM);
    snprintf(key_path, sizeof key_path, "%s/%s", fx_dir, NODE_CERT_NODE_KEY);
    RUN(accepts_modern_clients);
    RUN(refuses_old_clients);
    RUN(loopback);
    return fx_finish();
}
