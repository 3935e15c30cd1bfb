/*
 * Tests for sync/net/tus_client.c against a fake tus server that runs on the
 * same libuv loop (uv_tcp on 127.0.0.1, a port the kernel picks, optional
 * TLS through OpenSSL memory BIOs). The fake parses just enough HTTP for
 * the requests the client sends, verifies every Upload-Checksum, keeps the
 * received bytes, and has knobs for the faults a branch link produces: a
 * cut after N bytes of a PATCH body, a lost response, a 409 after the
 * server lost data, a corrupted chunk (460), a 500, a 403, slow answers.
 * Each test runs on a fresh loop under a watchdog and closes every handle,
 * so uv_loop_close proves nothing leaked. Termination runs against the
 * real tus server (sync/net/tus_server.c on http_server) on the same
 * loop, so the DELETE is checked end to end against its spool files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "http_server.h"
#include "fixture.h"
#include "testlib.h"
#include "tus_client.h"
#include "tus_server.h"

#define KiB 1024u
#define MAX_UPLOADS 8
#define MAX_PATCH_LOG 256
#define MAX_BODY (8u * 1024 * 1024)

/* ---- fake tus server ---------------------------------------------------- */

struct fupload {
    uint64_t length, offset;
    unsigned char *data;
    char meta[TUS_META_MAX + 1];
};

struct fconn;

struct fake {
    uv_loop_t *loop;
    uv_tcp_t srv;
    int port;
    SSL_CTX *tls;
    struct fconn *conns;
    struct fupload up[MAX_UPLOADS];
    int nup;

    /* knobs; PATCH numbers count from 1 */
    int cut_patch_no;
    size_t cut_after;
    int cut_keep; /* store the bytes received before the cut */
    int lose_patch_no;
    int corrupt_patch_no;
    int fail_patch_no, fail_patch_status;
    int fail_next, fail_status; /* the next fail_next requests of any kind */
    int rewind_patch_no;        /* before this PATCH, the server forgets to rewind_to */
    uint64_t rewind_to;
    int forbid;
    uint64_t delay_ms;
    size_t cut_every;        /* close each connection after this many PATCH body bytes */
    int cut_every_keep;      /* and keep what arrived of the PATCH it cut, as HQ does */
    int stall_patch_no;      /* this PATCH's connection goes silent: no read, no answer */
    int trunc_req_no;        /* this request's answer (counting every request from 1)... */
    size_t trunc_at;         /* ...stops after this many bytes and the connection closes */
    uint64_t read_pace_ms;   /* after each read, read nothing for this long (a slow link) */
    uint64_t final_delay_ms; /* the answer to the completing PATCH waits this long */
    uint64_t slow_bps;       /* PATCH answers wait as long as the body takes at this rate */
    /* a virtual link for the client's injected clock: each request moves
     * vt by a round trip plus its body at v_bps */
    uint64_t vt, v_rtt_ms, v_bps;

    /* observations */
    int n_req, n_post, n_post_data, n_head, n_patch, n_get, n_409, n_460, n_sum_ok, n_sum_missing;
    uint64_t patch_bytes; /* every PATCH body byte received */
    size_t patch_len[MAX_PATCH_LOG];
    uint64_t req_at[64]; /* uv_now of each request */
    char auth[128], tus[32], meta[TUS_META_MAX + 1];
};

struct fconn {
    uv_tcp_t tcp;
    uv_timer_t delay;
    uv_timer_t pace; /* read_pace_ms: reading starts again */
    struct fake *f;
    struct fconn *next;
    int closing, handles;
    SSL *ssl;
    BIO *rbio, *wbio;
    char hdr[16384];
    size_t hlen;
    int in_body;
    char method[16], path[128];
    char h_offset[32], h_length[32], h_sum[128], h_ctype[64];
    uint64_t clen, got;
    unsigned char *body;
    int patch_no;
    int silent;        /* stalled: reads nothing, answers nothing */
    size_t conn_bytes; /* PATCH body bytes this connection received */
    char resp[1024];
    size_t resp_len;
};

struct wreq {
    uv_write_t req;
    char data[];
};

static void conn_closed(uv_handle_t *h)
{
    struct fconn *k = h->data;
    if (--k->handles > 0)
        return;
    if (k->ssl)
        SSL_free(k->ssl);
    free(k->body);
    free(k);
}

static void conn_close(struct fconn *k)
{
    if (k->closing)
        return;
    k->closing = 1;
    struct fconn **pp = &k->f->conns;
    while (*pp && *pp != k)
        pp = &(*pp)->next;
    if (*pp)
        *pp = k->next;
    uv_close((uv_handle_t *)&k->tcp, conn_closed);
    uv_close((uv_handle_t *)&k->delay, conn_closed);
    uv_close((uv_handle_t *)&k->pace, conn_closed);
}

static void write_done(uv_write_t *req, int status)
{
    free(req);
}

static void raw_write(struct fconn *k, const void *p, size_t n)
{
    struct wreq *w = malloc(sizeof *w + n);
    if (!w)
        return;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&k->tcp, &b, 1, write_done) != 0)
        free(w);
}

static void flush_tls(struct fconn *k)
{
    char tmp[16384];
    int n;
    while ((n = BIO_read(k->wbio, tmp, sizeof tmp)) > 0)
        raw_write(k, tmp, (size_t)n);
}

static void conn_write(struct fconn *k, const char *p, size_t n)
{
    if (k->ssl) {
        (void)SSL_write(k->ssl, p, (int)n);
        flush_tls(k);
    } else {
        raw_write(k, p, n);
    }
}

static void send_delayed(uv_timer_t *t)
{
    struct fconn *k = t->data;
    conn_write(k, k->resp, k->resp_len);
}

static void respond(struct fconn *k, int status, const char *extra)
{
    const char *reason = status == 201   ? "Created"
                         : status == 204 ? "No Content"
                         : status == 200 ? "OK"
                                         : "Status";
    int n =
        snprintf(k->resp, sizeof k->resp,
                 "HTTP/1.1 %d %s\r\nTus-Resumable: 1.0.0\r\n%sContent-Length: %d\r\n\r\n%s", status,
                 reason, extra, status >= 400 ? 9 : 0, status >= 400 ? "rejected\n" : "");
    k->resp_len = (size_t)n;
    if (k->f->trunc_req_no && k->f->trunc_req_no == k->f->n_req && k->f->trunc_at < k->resp_len) {
        /* the link dies in the middle of the answer's headers */
        conn_write(k, k->resp, k->f->trunc_at);
        conn_close(k);
        return;
    }
    if (k->f->delay_ms)
        (void)uv_timer_start(&k->delay, send_delayed, k->f->delay_ms, 0);
    else
        conn_write(k, k->resp, k->resp_len);
}

/* A GET answer with a body of `n` bytes: `text` repeated. */
static void respond_body(struct fconn *k, int status, const char *text, size_t n)
{
    char head[256];
    int h =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 status, status == 200 ? "OK" : "Status", n);
    char *buf = malloc((size_t)h + n);
    memcpy(buf, head, (size_t)h);
    size_t tl = strlen(text);
    for (size_t i = 0; i < n; i++)
        buf[h + i] = text[i % tl];
    if (k->f->delay_ms && (size_t)h + n <= sizeof k->resp) {
        memcpy(k->resp, buf, (size_t)h + n);
        k->resp_len = (size_t)h + n;
        (void)uv_timer_start(&k->delay, send_delayed, k->f->delay_ms, 0);
    } else {
        conn_write(k, buf, (size_t)h + n);
    }
    free(buf);
}

static struct fupload *find_upload(struct fake *f, const char *path)
{
    if (strncmp(path, "/files/", 7) != 0 || !path[7])
        return NULL;
    int id = (int)strtol(path + 7, NULL, 10);
    return id >= 1 && id <= f->nup ? &f->up[id - 1] : NULL;
}

static void store(struct fupload *u, const unsigned char *p, size_t n)
{
    memcpy(u->data + u->offset, p, n);
    u->offset += n;
}

static int checksum_ok(struct fconn *k)
{
    if (strncmp(k->h_sum, "sha256 ", 7) != 0)
        return 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char b64[64];
    EVP_Digest(k->body, k->got, md, &mdlen, EVP_sha256(), NULL);
    EVP_EncodeBlock((unsigned char *)b64, md, 32);
    return strcmp(b64, k->h_sum + 7) == 0;
}

/* A whole request arrived: answer it. */
static void handle(struct fconn *k)
{
    struct fake *f = k->f;
    char extra[256];
    extra[0] = '\0';
    if (f->v_rtt_ms || f->v_bps)
        f->vt += f->v_rtt_ms + (f->v_bps ? k->got * 1000 / f->v_bps : 0);
    if (f->forbid) {
        respond(k, 403, "");
        return;
    }
    if (f->fail_next > 0) {
        f->fail_next--;
        respond(k, f->fail_status, "");
        return;
    }
    if (strcmp(k->method, "GET") == 0) {
        f->n_get++;
        if (strcmp(k->path, "/v1/receipts/7") == 0)
            respond_body(k, 200, "{\"segment\":7}", 13);
        else if (strcmp(k->path, "/v1/big") == 0)
            respond_body(k, 200, "x", 100000);
        else if (strcmp(k->path, "/v1/empty") == 0)
            respond_body(k, 200, "", 0);
        else
            respond_body(k, 404, "{\"title\":\"not yet\"}", 19);
        return;
    }
    if (strcmp(k->method, "POST") == 0) {
        uint64_t len = strtoull(k->h_length, NULL, 10);
        if (k->clen > 0) { /* as outpost-hq before creation-with-upload */
            f->n_post_data++;
            respond(k, 400, "");
            return;
        }
        if (f->nup >= MAX_UPLOADS || len > MAX_BODY) {
            respond(k, 413, "");
            return;
        }
        struct fupload *u = &f->up[f->nup++];
        u->length = len;
        u->offset = 0;
        u->data = calloc(1, len + 1);
        snprintf(extra, sizeof extra, "Location: /files/%d\r\n", f->nup);
        respond(k, 201, extra);
        return;
    }
    struct fupload *u = find_upload(f, k->path);
    if (!u) {
        respond(k, 404, "");
        return;
    }
    if (strcmp(k->method, "HEAD") == 0) {
        snprintf(extra, sizeof extra,
                 "Upload-Offset: %llu\r\nUpload-Length: %llu\r\nCache-Control: no-store\r\n",
                 (unsigned long long)u->offset, (unsigned long long)u->length);
        respond(k, 200, extra);
        return;
    }
    if (strcmp(k->method, "PATCH") != 0) {
        respond(k, 405, "");
        return;
    }
    if (k->patch_no == f->fail_patch_no) {
        respond(k, f->fail_patch_status, "");
        return;
    }
    if (strcmp(k->h_ctype, "application/offset+octet-stream") != 0) {
        respond(k, 415, "");
        return;
    }
    uint64_t off = strtoull(k->h_offset, NULL, 10);
    if (off != u->offset || off + k->got > u->length) {
        f->n_409++;
        snprintf(extra, sizeof extra, "Upload-Offset: %llu\r\n", (unsigned long long)u->offset);
        respond(k, 409, extra);
        return;
    }
    if (k->patch_no == f->corrupt_patch_no && k->got > 0)
        k->body[k->got / 2] ^= 0x20; /* damaged in transit */
    if (!k->h_sum[0]) {
        f->n_sum_missing++;
    } else if (!checksum_ok(k)) {
        f->n_460++;
        respond(k, 460, "");
        return;
    } else {
        f->n_sum_ok++;
    }
    store(u, k->body, k->got);
    if (k->patch_no == f->lose_patch_no) {
        conn_close(k); /* stored, but the answer never arrives */
        return;
    }
    snprintf(extra, sizeof extra, "Upload-Offset: %llu\r\n", (unsigned long long)u->offset);
    uint64_t delay = f->delay_ms;
    if (f->slow_bps)
        f->delay_ms = k->got * 1000 / f->slow_bps; /* a deep buffer in front of a slow link */
    if (u->offset == u->length && f->final_delay_ms)
        f->delay_ms = f->final_delay_ms; /* verifying and applying the whole upload */
    respond(k, 204, extra);
    f->delay_ms = delay;
}

static void header_value(const char *hdrs, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = hdrs; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

static void begin_request(struct fconn *k)
{
    struct fake *f = k->f;
    char cl[32];
    k->method[0] = k->path[0] = '\0';
    (void)sscanf(k->hdr, "%15s %127s", k->method, k->path);
    header_value(k->hdr, "Content-Length", cl, sizeof cl);
    header_value(k->hdr, "Upload-Offset", k->h_offset, sizeof k->h_offset);
    header_value(k->hdr, "Upload-Length", k->h_length, sizeof k->h_length);
    header_value(k->hdr, "Upload-Checksum", k->h_sum, sizeof k->h_sum);
    header_value(k->hdr, "Content-Type", k->h_ctype, sizeof k->h_ctype);
    header_value(k->hdr, "Authorization", f->auth, sizeof f->auth);
    header_value(k->hdr, "Tus-Resumable", f->tus, sizeof f->tus);
    if (strcmp(k->method, "POST") == 0)
        header_value(k->hdr, "Upload-Metadata", f->meta, sizeof f->meta);
    if (f->n_req < 64)
        f->req_at[f->n_req] = uv_now(f->loop);
    f->n_req++;
    k->clen = strtoull(cl, NULL, 10);
    if (k->clen > MAX_BODY)
        k->clen = MAX_BODY;
    k->got = 0;
    free(k->body);
    k->body = malloc(k->clen + 1);
    k->patch_no = 0;
    if (strcmp(k->method, "POST") == 0)
        f->n_post++;
    else if (strcmp(k->method, "HEAD") == 0)
        f->n_head++;
    else if (strcmp(k->method, "PATCH") == 0) {
        k->patch_no = ++f->n_patch;
        if (k->patch_no <= MAX_PATCH_LOG)
            f->patch_len[k->patch_no - 1] = (size_t)k->clen;
        if (k->patch_no == f->stall_patch_no) {
            k->silent = 1;
            (void)uv_read_stop((uv_stream_t *)&k->tcp);
            return;
        }
        if (k->patch_no == f->rewind_patch_no) {
            struct fupload *u = find_upload(f, k->path);
            if (u && u->offset > f->rewind_to)
                u->offset = f->rewind_to;
        }
    }
    k->in_body = 1;
}

/* Feeds plaintext bytes; may close the connection. */
static void feed(struct fconn *k, const char *p, size_t n)
{
    struct fake *f = k->f;
    while (n > 0 && !k->closing && !k->silent) {
        if (!k->in_body) {
            size_t room = sizeof k->hdr - 1 - k->hlen;
            size_t take = n < room ? n : room;
            memcpy(k->hdr + k->hlen, p, take);
            k->hlen += take;
            k->hdr[k->hlen] = '\0';
            char *end = strstr(k->hdr, "\r\n\r\n");
            if (!end) {
                if (take == room)
                    conn_close(k);
                return;
            }
            size_t used = (size_t)(end + 4 - k->hdr) - (k->hlen - take);
            *end = '\0';
            p += used;
            n -= used;
            k->hlen = 0;
            begin_request(k);
        }
        if (k->in_body) {
            uint64_t want = k->clen - k->got;
            if (k->patch_no && k->patch_no == f->cut_patch_no && f->cut_after - k->got < want)
                want = f->cut_after - k->got;
            if (k->patch_no && f->cut_every && f->cut_every - k->conn_bytes < want)
                want = f->cut_every - k->conn_bytes;
            size_t take = n < want ? n : (size_t)want;
            memcpy(k->body + k->got, p, take);
            k->got += take;
            if (k->patch_no) {
                f->patch_bytes += take;
                k->conn_bytes += take;
            }
            p += take;
            n -= take;
            if (k->patch_no && k->patch_no == f->cut_patch_no && k->got == f->cut_after) {
                struct fupload *u = find_upload(f, k->path);
                if (f->cut_keep && u && strtoull(k->h_offset, NULL, 10) == u->offset)
                    store(u, k->body, k->got);
                conn_close(k);
                return;
            }
            if (k->patch_no && f->cut_every && k->conn_bytes == f->cut_every && k->got < k->clen) {
                struct fupload *u = find_upload(f, k->path);
                if (f->cut_every_keep && u && strtoull(k->h_offset, NULL, 10) == u->offset)
                    store(u, k->body, k->got);
                conn_close(k); /* the link dies; what arrived of this PATCH is lost, or kept */
                return;
            }
            if (k->got == k->clen) {
                k->in_body = 0;
                handle(k);
            }
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void resume_read(uv_timer_t *t)
{
    struct fconn *k = t->data;
    if (!k->closing && !k->silent)
        uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fconn *k = s->data;
    if (k->silent) {
        free(buf->base);
        return;
    }
    if (nread < 0) {
        conn_close(k);
    } else if (nread > 0 && !k->ssl) {
        feed(k, buf->base, (size_t)nread);
    } else if (nread > 0) {
        (void)BIO_write(k->rbio, buf->base, (int)nread);
        char tmp[16384];
        for (;;) {
            int r = SSL_read(k->ssl, tmp, sizeof tmp);
            if (r > 0) {
                feed(k, tmp, (size_t)r);
                if (k->closing)
                    break;
                continue;
            }
            int e = SSL_get_error(k->ssl, r);
            flush_tls(k);
            if (e != SSL_ERROR_WANT_READ)
                conn_close(k);
            break;
        }
        if (!k->closing)
            flush_tls(k);
    }
    if (nread > 0 && k->f->read_pace_ms && !k->closing && !k->silent) {
        (void)uv_read_stop((uv_stream_t *)&k->tcp);
        (void)uv_timer_start(&k->pace, resume_read, k->f->read_pace_ms, 0);
    }
    free(buf->base);
}

static void on_conn(uv_stream_t *srv, int status)
{
    struct fake *f = srv->data;
    struct fconn *k = calloc(1, sizeof *k);
    if (status < 0 || !k) {
        free(k);
        return;
    }
    k->f = f;
    uv_tcp_init(f->loop, &k->tcp);
    uv_timer_init(f->loop, &k->delay);
    uv_timer_init(f->loop, &k->pace);
    k->tcp.data = k->delay.data = k->pace.data = k;
    k->handles = 3;
    k->next = f->conns;
    f->conns = k;
    if (uv_accept(srv, (uv_stream_t *)&k->tcp) != 0) {
        conn_close(k);
        return;
    }
    if (f->tls) {
        k->ssl = SSL_new(f->tls);
        k->rbio = BIO_new(BIO_s_mem());
        k->wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(k->ssl, k->rbio, k->wbio);
        SSL_set_accept_state(k->ssl);
    }
    uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
}

/* The server's sockets take at most about `bytes` the server has not
 * read: the kernel stops acknowledging once they are full. */
static void fake_small_rcvbuf(struct fake *f, int bytes)
{
    int v = bytes;
    (void)uv_recv_buffer_size((uv_handle_t *)&f->srv, &v);
}

static int fake_start(struct fake *f, uv_loop_t *loop, SSL_CTX *tls)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    f->tls = tls;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &f->srv);
    f->srv.data = f;
    if (uv_tcp_bind(&f->srv, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&f->srv, 16, on_conn) != 0)
        return -1;
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&f->srv, (struct sockaddr *)&got, &len);
    f->port = ntohs(got.sin_port);
    return 0;
}

static void fake_stop(struct fake *f)
{
    while (f->conns)
        conn_close(f->conns);
    uv_close((uv_handle_t *)&f->srv, NULL);
    for (int i = 0; i < f->nup; i++)
        free(f->up[i].data);
}

/* ---- harness ------------------------------------------------------------ */

struct run {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t waker;
    struct fake f;
    struct tus_client *c;
    uint64_t chunk_cap; /* given to each upload */
    char dir[64];
    char endpoint[96];
    int timed_out, stopped;
    /* callbacks record here */
    int done, status, created, created_at_patch, progress_calls, retries;
    uint64_t confirmed, total;
    char url[TUS_URL_MAX + 1], created_url[TUS_URL_MAX + 1], err[512];
    char retry_msg[512]; /* why the first retry */
    uint64_t delays[32];
    size_t chunk_at_retry[32];
    uint64_t stop_after;   /* stop the client once this much is confirmed */
    uint64_t cancel_after; /* tus_client_cancel once this much is confirmed */
    int hold;              /* on_created holds the upload until tus_client_resume */
    const char *key;       /* upload_key given to each upload (principal "node-a") */
    int key_no_data;       /* with key: a creation without data */
};

static void on_watchdog(uv_timer_t *t)
{
    struct run *r = t->data;
    r->timed_out = 1;
}

static void on_wake(uv_timer_t *t)
{
    (void)t; /* only wakes the loop */
}

static int cb_created(void *ctx, const char *url)
{
    struct run *r = ctx;
    r->created++;
    r->created_at_patch = r->f.n_patch;
    snprintf(r->created_url, sizeof r->created_url, "%s", url);
    return r->hold ? TUS_CREATED_HOLD : 0;
}

static void cb_stopped(void *ctx)
{
    struct run *r = ctx;
    r->stopped = 1;
    uv_stop(&r->loop);
}

static void cb_progress(void *ctx, uint64_t confirmed, uint64_t total)
{
    struct run *r = ctx;
    r->progress_calls++;
    r->confirmed = confirmed;
    r->total = total;
    if (r->stop_after && confirmed >= r->stop_after && r->c) {
        struct tus_client *c = r->c;
        r->c = NULL;
        tus_client_stop(c, cb_stopped, r);
    }
    if (r->cancel_after && confirmed >= r->cancel_after && r->c) {
        r->cancel_after = 0;
        tus_client_cancel(r->c, "the sync window closed");
    }
}

static void cb_retry(void *ctx, unsigned attempt, uint64_t delay_ms, const struct op_error *why)
{
    struct run *r = ctx;
    if (!r->retries)
        snprintf(r->retry_msg, sizeof r->retry_msg, "%s", why ? why->msg : "");
    if (r->retries < 32) {
        r->delays[r->retries] = delay_ms;
        struct tus_client_stats st;
        if (r->c) {
            tus_client_get_stats(r->c, &st);
            r->chunk_at_retry[r->retries] = st.chunk_size;
        }
    }
    r->retries++;
}

static void cb_done(void *ctx, int status, const char *url, const struct op_error *err)
{
    struct run *r = ctx;
    r->done++;
    uv_stop(&r->loop); /* let run_until_done look at the count */
    r->status = status;
    snprintf(r->url, sizeof r->url, "%s", url ? url : "");
    snprintf(r->err, sizeof r->err, "%s", err ? err->msg : "");
}

struct got {
    struct run *r;
    int calls, status, upload_done_before;
    size_t len;
    char body[64], err[512], field[64];
};

static void cb_got(void *ctx, int status, const char *body, size_t len, const struct op_error *err)
{
    struct got *g = ctx;
    g->calls++;
    g->status = status;
    g->len = len;
    g->upload_done_before = g->r->done;
    snprintf(g->body, sizeof g->body, "%s", body);
    snprintf(g->err, sizeof g->err, "%s", err ? err->msg : "");
    snprintf(g->field, sizeof g->field, "%s", err ? err->field : "");
    uv_stop(&g->r->loop);
}

static int get(struct run *r, const char *path, size_t max, struct got *g)
{
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", r->f.port, path);
    memset(g, 0, sizeof *g);
    g->r = r;
    struct op_error e;
    op_error_clear(&e);
    return tus_client_get(r->c, url, max, cb_got, g, &e);
}

static void run_until_got(struct run *r, const struct got *g)
{
    while (!g->calls && !r->timed_out)
        uv_run(&r->loop, UV_RUN_ONCE);
    CHECK(!r->timed_out);
}

static void run_setup(struct run *r, SSL_CTX *tls)
{
    memset(r, 0, sizeof *r);
    uv_loop_init(&r->loop);
    uv_timer_init(&r->loop, &r->watchdog);
    r->watchdog.data = r;
    uv_timer_start(&r->watchdog, on_watchdog, 30000, 0);
    uv_timer_init(&r->loop, &r->waker);
    CHECK_EQ(fake_start(&r->f, &r->loop, tls), 0);
    snprintf(r->endpoint, sizeof r->endpoint, "%s://127.0.0.1:%d/files/", tls ? "https" : "http",
             r->f.port);
    snprintf(r->dir, sizeof r->dir, "/tmp/tus_client_test.XXXXXX");
    CHECK(mkdtemp(r->dir) != NULL);
}

static struct tus_client_config base_cfg(struct run *r)
{
    struct tus_client_config cfg = {0};
    cfg.endpoint = r->endpoint;
    cfg.auth = "Bearer t0k";
    cfg.min_chunk = 16 * KiB;
    cfg.initial_chunk = 64 * KiB;
    cfg.max_chunk = 256 * KiB;
    cfg.backoff_base_ms = 5;
    cfg.backoff_max_ms = 50;
    return cfg;
}

static void new_client(struct run *r, const struct tus_client_config *cfg)
{
    struct op_error e;
    op_error_clear(&e);
    int rc = tus_client_new(&r->loop, cfg, &r->c, &e);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "tus_client_new: %s\n", e.msg);
}

/* Writes a file of `n` pseudo-random bytes and returns its path. */
static void make_file(struct run *r, const char *name, size_t n, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", r->dir, name);
    unsigned char *b = malloc(n ? n : 1);
    uint32_t x = 2463534242u ^ (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, b, n), (ssize_t)n);
    close(fd);
    free(b);
}

static int same_as_file(const struct fupload *u, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0)
        return 0;
    unsigned char *b = malloc((size_t)sb.st_size + 1);
    ssize_t n = read(fd, b, (size_t)sb.st_size);
    close(fd);
    int same = n == sb.st_size && u->length == (uint64_t)n && u->offset == (uint64_t)n &&
               memcmp(b, u->data, (size_t)n) == 0;
    free(b);
    return same;
}

static int upload(struct run *r, const char *path, const char *known_url)
{
    struct tus_meta meta[] = {{"filename", "seg-000001.ops"}, {"node", "branch-7"}};
    struct tus_upload_params p = {0};
    p.path = path;
    p.upload_url = known_url;
    p.meta = meta;
    p.nmeta = 2;
    p.cb.on_created = cb_created;
    p.cb.on_progress = cb_progress;
    p.cb.on_retry = cb_retry;
    p.cb.on_done = cb_done;
    p.ctx = r;
    p.chunk_cap = r->chunk_cap;
    p.upload_key = r->key;
    p.principal = r->key ? "node-a" : NULL;
    p.create_with_data = r->key != NULL && !r->key_no_data;
    struct op_error e;
    op_error_clear(&e);
    return tus_client_upload(r->c, &p, &e);
}

static void run_until_done(struct run *r, int n)
{
    while (r->done < n && !r->timed_out)
        uv_run(&r->loop, UV_RUN_ONCE);
    CHECK(!r->timed_out);
}

static void run_for(struct run *r, uint64_t ms)
{
    uint64_t end = uv_now(&r->loop) + ms;
    uv_timer_start(&r->waker, on_wake, ms, 0);
    while (uv_now(&r->loop) < end)
        uv_run(&r->loop, UV_RUN_ONCE);
}

static struct tus_client_stats stats(struct run *r)
{
    struct tus_client_stats st;
    memset(&st, 0, sizeof st);
    if (r->c)
        tus_client_get_stats(r->c, &st);
    return st;
}

static void run_teardown(struct run *r)
{
    if (r->c) {
        tus_client_stop(r->c, cb_stopped, r);
        r->c = NULL;
    }
    while (!r->stopped && !r->timed_out)
        uv_run(&r->loop, UV_RUN_ONCE);
    CHECK(r->stopped);
    fake_stop(&r->f);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    uv_close((uv_handle_t *)&r->waker, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&r->loop), 0);
    DIR *d = opendir(r->dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            CHECK_EQ(unlinkat(dirfd(d), de->d_name, 0), 0);
    }
    if (d)
        closedir(d);
    CHECK_EQ(rmdir(r->dir), 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_clean_upload(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    char path[128], path2[128];
    make_file(&r, "a.seg", 1024 * KiB + 123, path, sizeof path);
    make_file(&r, "b.seg", 3000, path2, sizeof path2);
    CHECK_EQ(upload(&r, path, NULL), 0);
    CHECK_EQ(upload(&r, path2, NULL), 0); /* queued behind the first */
    CHECK_EQ(stats(&r).queued, 2);
    run_until_done(&r, 2);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.f.nup, 2);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK(same_as_file(&r.f.up[1], path2));
    CHECK_EQ(r.created, 2);
    CHECK_EQ(r.created_at_patch, r.f.n_patch - 1); /* b's URL reported before its one PATCH */
    CHECK_CONTAINS(r.created_url, "/files/2");
    CHECK_CONTAINS(r.created_url, "http://127.0.0.1:");
    CHECK_STR(r.url, r.created_url);
    CHECK_EQ(r.f.n_sum_ok, r.f.n_patch);
    CHECK_EQ(r.f.n_sum_missing, 0);
    CHECK_EQ(r.f.n_head, 0);
    CHECK_STR(r.f.auth, "Bearer t0k");
    CHECK_STR(r.f.tus, "1.0.0");
    /* base64("seg-000001.ops") and base64("branch-7") */
    CHECK_STR(r.f.meta, "filename c2VnLTAwMDAwMS5vcHM=,node YnJhbmNoLTc=");
    /* chunks grew from 64 KiB to the 256 KiB cap on a fast clean link */
    CHECK_EQ(r.f.patch_len[0], 64 * KiB);
    CHECK_EQ(r.f.patch_len[1], 128 * KiB);
    CHECK_EQ(r.f.patch_len[2], 256 * KiB);
    CHECK_EQ(r.f.patch_len[3], 256 * KiB);
    struct tus_client_stats st = stats(&r);
    CHECK_EQ(st.bytes_confirmed, 1024 * KiB + 123 + 3000);
    CHECK_EQ(st.bytes_sent, 1024 * KiB + 123 + 3000);
    CHECK_EQ(st.bytes_resent, 0);
    CHECK_EQ(st.retries, 0);
    CHECK_EQ(st.uploads_done, 2);
    CHECK_EQ(r.confirmed, 3000);
    CHECK_EQ(r.total, 3000);
    run_teardown(&r);
}

/* An upload held by on_created sends no byte until it is resumed: the
 * caller records the URL first (off the loop), as the uplink does. */
static void test_hold_until_resumed(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "held.seg", 100 * KiB, path, sizeof path);
    r.hold = 1;
    CHECK_EQ(upload(&r, path, NULL), 0);
    while (!r.created && !r.timed_out)
        uv_run(&r.loop, UV_RUN_ONCE);
    CHECK_EQ(r.created, 1);
    run_for(&r, 300);
    CHECK_EQ(r.f.n_patch, 0); /* held: nothing of the file went */
    CHECK_EQ(r.done, 0);
    tus_client_resume(r.c);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(r.f.n_patch >= 1);
    CHECK(same_as_file(&r.f.up[0], path));
    /* resuming with nothing held is harmless */
    tus_client_resume(r.c);
    run_teardown(&r);
}

static void test_cut_mid_chunk(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 1024 * KiB, path, sizeof path);
    r.f.cut_patch_no = 3; /* a 256 KiB chunk, cut 10000 bytes in */
    r.f.cut_after = 10000;
    r.f.cut_keep = 1;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.n_head, 1);
    CHECK_EQ(r.f.n_post, 1);
    struct tus_client_stats st = stats(&r);
    CHECK_INT(st.bytes_resent, <=, 256 * KiB);
    CHECK_INT(st.bytes_resent, >, 0);
    CHECK_EQ(st.bytes_sent - st.bytes_resent, 1024 * KiB);
    CHECK_EQ(st.bytes_confirmed, 1024 * KiB);
    CHECK_EQ(st.retries, 1);
    /* half of what the cut connection carried: 64 + 128 KiB confirmed,
     * and the 10000 bytes the server kept of the cut chunk */
    CHECK_EQ(r.f.patch_len[3], (64 * KiB + 128 * KiB + 10000) / 2);
    /* the 10000 bytes the server kept were not sent again */
    CHECK_EQ(r.f.patch_bytes, 1024 * KiB);
    run_teardown(&r);
}

static void test_lost_response_not_resent(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.lose_patch_no = 2; /* stored, then the link drops before the 204 */
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.n_head, 1);
    CHECK_EQ(r.f.patch_bytes, 512 * KiB); /* nothing sent twice */
    CHECK_EQ(stats(&r).bytes_resent, 0);
    run_teardown(&r);
}

static uint32_t rng_max(void *ctx)
{
    return UINT32_MAX;
}

/* The link dies inside an answer's headers: curl hands over the status
 * line and the header lines that came and calls the transfer complete.
 * A 201 cut before its Location is a cut, not a server without Location
 * (the upload is created again), and a 204 cut before its Upload-Offset
 * is a cut after the body went (at once a HEAD, nothing sent twice). */
static void test_answer_cut_in_headers(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.backoff_base_ms = 2000;
    cfg.backoff_max_ms = 10000;
    cfg.rng = rng_max;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 100 * KiB, path, sizeof path);
    r.f.trunc_req_no = 1; /* the POST */
    r.f.trunc_at = strlen("HTTP/1.1 201 Created\r\nTus-Resumable: 1.0.0\r\n");
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(strstr(r.err, "without a usable Location") == NULL);
    CHECK_EQ(r.f.n_post, 2); /* the first upload is an orphan at the server */
    CHECK_EQ(r.created, 1);
    CHECK(same_as_file(&r.f.up[1], path));
    CHECK_EQ(r.retries, 1);
    CHECK(strstr(r.retry_msg, "answer cut") != NULL);
    run_teardown(&r);

    run_setup(&r, NULL);
    new_client(&r, &cfg);
    make_file(&r, "b.seg", 100 * KiB, path, sizeof path);
    r.f.trunc_req_no = 2; /* the first PATCH: stored, its 204 cut before Upload-Offset */
    r.f.trunc_at = strlen("HTTP/1.1 204 No Content\r\nTus-Resumable: 1.0.0\r\n");
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 1);
    CHECK_INT(r.delays[0], <=, 250); /* a cut after the body went: no backoff */
    CHECK(strstr(r.retry_msg, "answer cut") != NULL);
    CHECK_EQ(r.f.n_head, 1);
    CHECK_EQ(r.f.patch_bytes, 100 * KiB); /* nothing sent twice */
    CHECK_EQ(stats(&r).bytes_resent, 0);
    CHECK_EQ(stats(&r).bytes_confirmed, 100 * KiB);
    run_teardown(&r);
}

/* The answer to a PATCH on a kept connection is lost (the link closed
 * it): curl wants to send the body again on a new connection, the seek
 * callback refuses, and that is a cut like any other: a HEAD at once,
 * not a backoff, and a message that says what happened. */
static void test_lost_answer_on_kept_connection(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.backoff_base_ms = 2000;
    cfg.backoff_max_ms = 10000;
    cfg.rng = rng_max;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.lose_patch_no = 1; /* the POST's connection, kept, carries it */
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 1);
    CHECK_INT(r.delays[0], <=, 250);
    CHECK(strstr(r.retry_msg, "seek callback") == NULL);
    CHECK(strstr(r.retry_msg, "connection closed before the answer") != NULL);
    CHECK_EQ(r.f.n_head, 1);
    CHECK_EQ(r.f.patch_bytes, 512 * KiB);
    CHECK_EQ(stats(&r).bytes_resent, 0);
    run_teardown(&r);
}

static void test_conflict_409(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.max_chunk = 64 * KiB;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.rewind_patch_no = 4; /* the server lost its last chunk: it is at 128 KiB, not 192 */
    r.f.rewind_to = 128 * KiB;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.n_409, 1);
    CHECK_EQ(r.f.n_head, 1);
    CHECK_EQ(stats(&r).retries, 1);
    run_teardown(&r);
}

static void test_checksum_460_resends(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.max_chunk = 64 * KiB;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 256 * KiB, path, sizeof path);
    r.f.corrupt_patch_no = 2;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.n_460, 1);
    CHECK_EQ(r.f.n_head, 0); /* after 460 the offset is known unchanged */
    struct tus_client_stats st = stats(&r);
    CHECK_EQ(st.checksum_mismatches, 1);
    CHECK_EQ(st.retries, 1);
    CHECK_EQ(st.bytes_resent, 64 * KiB);
    CHECK_EQ(r.f.patch_len[2], 32 * KiB); /* resent, at half size */
    run_teardown(&r);
}

static void test_forbidden_is_permanent(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 100 * KiB, path, sizeof path);
    r.f.forbid = 1;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, -EACCES);
    CHECK_CONTAINS(r.err, "403");
    CHECK_CONTAINS(r.err, "rejected");
    run_for(&r, 200);
    CHECK_EQ(r.f.n_req, 1); /* no retry loop */
    CHECK_EQ(r.retries, 0);
    struct tus_client_stats st = stats(&r);
    CHECK_EQ(st.uploads_failed, 1);
    CHECK_EQ(st.last_error, -EACCES);
    CHECK_CONTAINS(st.last_error_msg, "403");

    /* a 403 in the middle of an upload ends it as well */
    r.f.forbid = 0;
    r.f.fail_patch_no = 2;
    r.f.fail_patch_status = 403;
    r.f.n_req = 0;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 2);
    CHECK_EQ(r.status, -EACCES);
    CHECK_CONTAINS(r.err, "PATCH");
    run_for(&r, 100);
    CHECK_EQ(r.f.n_req, 3); /* POST, PATCH, PATCH */

    /* a missing file (voided before it started) comes back through on_done */
    CHECK_EQ(upload(&r, "/nonexistent/seg", NULL), 0);
    run_until_done(&r, 3);
    CHECK_EQ(r.status, -ESTALE);
    CHECK_CONTAINS(r.err, "/nonexistent/seg");
    run_teardown(&r);
}

static uint32_t rng_half(void *ctx)
{
    return UINT32_C(1) << 31;
}

static void test_backoff(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.backoff_base_ms = 40;
    cfg.backoff_max_ms = 200;
    cfg.rng = rng_max;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 20 * KiB, path, sizeof path);
    r.f.fail_next = 5;
    r.f.fail_status = 503;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.retries, 5);
    uint64_t want[] = {40, 80, 160, 200, 200};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(r.delays[i], want[i]);
        /* the server saw the retry no earlier than the delay */
        CHECK_INT(r.f.req_at[i + 1] - r.f.req_at[i], >=, want[i]);
    }
    CHECK(same_as_file(&r.f.up[0], path));
    run_teardown(&r);

    /* full jitter: the delay is uniform in [0, ceiling] */
    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    cfg.backoff_base_ms = 1000;
    cfg.backoff_max_ms = 300000;
    cfg.rng = rng_half;
    new_client(&r, &cfg);
    make_file(&r, "a.seg", 20 * KiB, path, sizeof path);
    r.f.fail_next = 1;
    r.f.fail_status = 500;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_for(&r, 100);
    CHECK_EQ(r.retries, 1);
    CHECK_EQ(r.delays[0], 500); /* half of [0, 1000] */
    CHECK_EQ(r.done, 0);        /* still waiting */
    run_teardown(&r);
    CHECK_EQ(r.done, 1);
    CHECK_EQ(r.status, -ECANCELED);
}

/* The fake's virtual link time: each request it handles moves it. */
static uint64_t link_clock(void *ctx)
{
    const struct fake *f = ctx;
    return f->vt;
}

static void test_chunk_adapts(void)
{
    /* grows on fast clean chunks, halves on a failure */
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.initial_chunk = 32 * KiB;
    cfg.max_chunk = 128 * KiB;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 1024 * KiB, path, sizeof path);
    r.f.fail_patch_no = 4;
    r.f.fail_patch_status = 500;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.patch_len[0], 32 * KiB);
    CHECK_EQ(r.f.patch_len[1], 64 * KiB);
    CHECK_EQ(r.f.patch_len[2], 128 * KiB);
    CHECK_EQ(r.f.patch_len[3], 128 * KiB); /* answered 500 */
    /* an error answer says nothing about the link: the size holds */
    CHECK_EQ(r.f.patch_len[4], 128 * KiB);
    CHECK_EQ(r.chunk_at_retry[0], 128 * KiB);
    run_teardown(&r);

    /* halves when a chunk is slow (64 KiB at 2 KiB/s: 32 s, past
     * 4 x fast_chunk_ms), then holds (16 s is neither fast nor slow) */
    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    r.f.v_rtt_ms = 100;
    r.f.v_bps = 2 * KiB;
    cfg.now_ms = link_clock;
    cfg.clock_ctx = &r.f;
    cfg.fast_chunk_ms = 5000;
    cfg.slow_chunk_ms = 10000;
    cfg.stall_seconds = 3600; /* the virtual clock jumps; no stall verdicts */
    cfg.stall_min_ms = 3600 * 1000;
    new_client(&r, &cfg);
    make_file(&r, "a.seg", 200 * KiB, path, sizeof path);
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.patch_len[0], 64 * KiB);
    CHECK_EQ(r.f.patch_len[1], 32 * KiB);
    CHECK_EQ(r.f.patch_len[2], 32 * KiB);
    CHECK_EQ(r.f.patch_len[3], 32 * KiB);
    run_teardown(&r);
}

/* At a 2 s round trip and 16 KiB/s a 64 KiB chunk takes 6 s, of which 2 s
 * the link idles: the chunk grows until it lasts 8 round trips, whatever
 * fast_chunk_ms says. */
static void test_chunk_grows_at_long_rtt(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    r.f.v_rtt_ms = 2000;
    r.f.v_bps = 16 * KiB;
    cfg.now_ms = link_clock;
    cfg.clock_ctx = &r.f;
    cfg.max_chunk = 1024 * KiB;
    cfg.stall_seconds = 3600;
    cfg.stall_min_ms = 3600 * 1000;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 1024 * KiB, path, sizeof path);
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.patch_len[0], 64 * KiB);
    CHECK_EQ(r.f.patch_len[1], 128 * KiB); /* 6 s < 8 x 2 s */
    CHECK_EQ(r.f.patch_len[2], 256 * KiB); /* 10 s */
    CHECK_EQ(r.f.patch_len[3], 256 * KiB); /* 18 s: long enough, holds */
    run_teardown(&r);
}

/* A cut after bytes went through is a working link that breaks, not a
 * dead HQ: the HEAD follows at once, whatever the backoff says. */
static void test_cut_reconnects_at_once(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.backoff_base_ms = 2000;
    cfg.backoff_max_ms = 10000;
    cfg.rng = rng_max;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.cut_patch_no = 2;
    r.f.cut_after = 10000;
    r.f.cut_keep = 1;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 1);
    CHECK_INT(r.delays[0], <=, 250); /* the quick-retry jitter, not 2 s of backoff */
    CHECK_EQ(r.f.n_head, 1);
    /* POST, PATCH, PATCH (cut), HEAD */
    CHECK_INT(r.f.req_at[3] - r.f.req_at[2], <, 500);
    run_teardown(&r);
}

/* Connects that fail are a dead HQ (or no link): back off, doubling. */
static void test_connect_failures_back_off(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.backoff_base_ms = 20;
    cfg.backoff_max_ms = 1000;
    cfg.rng = rng_max;
    /* a port nobody listens on: bind one, note it, close it */
    uv_tcp_t probe;
    struct sockaddr_in a, got;
    int len = sizeof got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&r.loop, &probe);
    CHECK_EQ(uv_tcp_bind(&probe, (const struct sockaddr *)&a, 0), 0);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&probe, NULL);
    char dead[96];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/files/", ntohs(got.sin_port));
    cfg.endpoint = dead;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 20 * KiB, path, sizeof path);
    CHECK_EQ(upload(&r, path, NULL), 0);
    while (r.retries < 5 && !r.timed_out)
        uv_run(&r.loop, UV_RUN_ONCE);
    CHECK_EQ(r.done, 0);
    uint64_t want[] = {20, 40, 80, 160, 320};
    for (int i = 0; i < 5; i++)
        CHECK_EQ(r.delays[i], want[i]);
    run_teardown(&r);
}

/* A link that dies every 10000 bytes of upload (64 kbit/s GPRS), and a
 * server that drops the bytes of a cut PATCH: the chunk settles below what
 * a connection carries, every retry is a quick one, and the upload ends. */
static void test_cuts_every_10k(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.min_chunk = 0; /* the default */
    cfg.backoff_base_ms = 5000;
    cfg.backoff_max_ms = 300000;
    cfg.rng = rng_half;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 60 * KiB, path, sizeof path);
    r.f.cut_every = 10000;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    struct tus_client_stats st = stats(&r);
    CHECK_INT(st.chunk_size, <, 10000);
    CHECK_INT(r.retries, >=, 3);
    for (int i = 0; i < r.retries && i < 32; i++)
        CHECK_INT(r.delays[i], <=, 250);
    CHECK_INT(r.f.patch_len[r.f.n_patch - 2], <, 10000);
    /* the first cut follows progress: reconnect at once; the next cut
     * moved nothing (the server dropped the bytes): the jitter */
    CHECK_EQ(r.delays[0], 0);
    CHECK_EQ(r.delays[1], 125);
    run_teardown(&r);
}

/* A server that keeps the bytes of a cut PATCH (HQ): a cut costs only what
 * was in flight whatever the chunk, so every PATCH carries all that is
 * left; each cut is followed at once by a HEAD on a new connection and a
 * PATCH of the rest, and no byte is sent twice (loopback: nothing is in
 * flight when the connection closes). */
static void test_whole_rest_per_patch(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.server_keeps_cut_bytes = 1;
    cfg.backoff_max_ms = 60000; /* a backoff would show as a delay */
    cfg.rng = rng_max;
    new_client(&r, &cfg);
    char path[128];
    size_t len = 200 * KiB;
    make_file(&r, "a.seg", len, path, sizeof path);
    r.f.cut_every = 30000;
    r.f.cut_every_keep = 1;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    int cuts = (int)(len / 30000); /* 6 connections cut, the 7th ends it */
    CHECK_EQ(r.retries, cuts);
    CHECK_EQ(r.f.n_head, cuts);
    CHECK_EQ(r.f.n_patch, cuts + 1);
    for (int i = 0; i <= cuts; i++)
        CHECK_EQ(r.f.patch_len[i], len - (size_t)i * 30000);
    for (int i = 0; i < cuts; i++)
        CHECK_EQ(r.delays[i], 0);
    struct tus_client_stats st = stats(&r);
    CHECK_EQ(st.bytes_confirmed, len);
    CHECK_EQ(r.f.patch_bytes, len);                      /* the server read each byte once */
    CHECK_EQ(st.chunk_size, len - (size_t)cuts * 30000); /* the last PATCH, as sent */
    run_teardown(&r);

    /* a cap of the upload's own (a daily budget) bounds each PATCH */
    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    cfg.server_keeps_cut_bytes = 1;
    new_client(&r, &cfg);
    make_file(&r, "a.seg", len, path, sizeof path);
    r.chunk_cap = 100000;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.f.n_patch, 3);
    CHECK_EQ(r.f.patch_len[0], 100000);
    CHECK_EQ(r.f.patch_len[1], 100000);
    CHECK_EQ(r.f.patch_len[2], len - 200000);
    run_teardown(&r);
}

/* With PATCHes that carry the whole rest, on a link that cuts, no PATCH
 * ends whole before the last: the rate comes from what the server kept of
 * each cut one, so a silent connection is still seen from the rate (the
 * 2 s floor here), not after the 30 s ceiling. */
static void test_stall_seen_between_cuts(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.server_keeps_cut_bytes = 1;
    cfg.stall_seconds = 30;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 600000, path, sizeof path);
    r.f.cut_every = 200000;
    r.f.cut_every_keep = 1;
    r.f.stall_patch_no = 3;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_CONTAINS(stats(&r).last_error_msg, "stalled");
    /* POST, PATCH (cut), HEAD, PATCH (cut), HEAD, PATCH (silent), HEAD */
    CHECK_EQ(r.f.n_head, 3);
    uint64_t gap = r.f.req_at[6] - r.f.req_at[5];
    CHECK_INT(gap, >=, 1900);
    CHECK_INT(gap, <, 4000);
    run_teardown(&r);
}

/* HQ stops reading in the middle of a chunk and never answers: on a fast
 * link the client gives up after a few round trips at the measured rate
 * (here the 2 s floor), not after the 30 s ceiling, and resumes. */
static void test_stall_detected_from_rate(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.stall_seconds = 30;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 1024 * KiB, path, sizeof path);
    r.f.stall_patch_no = 3;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 1);
    CHECK_CONTAINS(stats(&r).last_error_msg, "stalled");
    /* POST, PATCH, PATCH, PATCH (silent), HEAD */
    uint64_t gap = r.f.req_at[4] - r.f.req_at[3];
    CHECK_INT(gap, >=, 1900);
    CHECK_INT(gap, <, 4000);
    run_teardown(&r);

    /* nor is a slow link behind a deep buffer that takes a whole chunk at
     * once and answers when the link has carried it (64 KiB/s: 1, 2, 4 s) */
    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    new_client(&r, &cfg);
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.slow_bps = 64 * KiB;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 0);
    CHECK_EQ(r.f.patch_len[2], 256 * KiB);
    run_teardown(&r);

    /* but the answer to the completing chunk may take HQ's processing
     * time: within the allowance (3 s until measured) that is not a stall
     * (longer costs one HEAD: test_slow_answer_learnt_after_false_stall) */
    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    new_client(&r, &cfg);
    make_file(&r, "a.seg", 1024 * KiB, path, sizeof path);
    r.f.final_delay_ms = 2500;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 0);
    CHECK_EQ(r.f.n_head, 0);
    run_teardown(&r);
}

/* A second client on the same link (docs/UPLINK.md, "Two uploads") seeded
 * with the first one's round trip and rate detects a silent first PATCH
 * from them, not at the stall_seconds ceiling an unseeded client waits;
 * the seed leaves what a client measured itself alone. */
static void test_seeded_stall(void)
{
    struct run r;
    char path[128];
    uint64_t gaps[2];
    for (int seeded = 0; seeded < 2; seeded++) {
        run_setup(&r, NULL);
        struct tus_client_config cfg = base_cfg(&r);
        cfg.stall_seconds = 5;
        new_client(&r, &cfg);
        uint64_t rtt = 1, rate = 1;
        tus_client_measured(r.c, &rtt, &rate);
        CHECK_EQ(rtt, 0);
        CHECK_EQ(rate, 0);
        if (seeded)
            tus_client_seed(r.c, 50, 512 * KiB);
        make_file(&r, "a.seg", 256 * KiB, path, sizeof path);
        r.f.stall_patch_no = 1;
        CHECK_EQ(upload(&r, path, NULL), 0);
        run_until_done(&r, 1);
        CHECK_EQ(r.status, 0);
        CHECK(same_as_file(&r.f.up[0], path));
        CHECK_EQ(r.retries, 1);
        /* POST, PATCH (silent), HEAD */
        gaps[seeded] = r.f.req_at[2] - r.f.req_at[1];
        tus_client_measured(r.c, &rtt, &rate);
        CHECK(rtt > 0);
        CHECK(rate > 0);
        uint64_t rtt2 = 0, rate2 = 0;
        tus_client_seed(r.c, rtt + 1000, rate + 1000); /* measured: left alone */
        tus_client_measured(r.c, &rtt2, &rate2);
        CHECK_EQ(rtt2, rtt);
        CHECK_EQ(rate2, rate);
        run_teardown(&r);
    }
    CHECK_INT(gaps[0], >=, 4900);
    CHECK_INT(gaps[1], <, 4000);
}

/* A PATCH whose bytes wait in this host's send queue while the next hop
 * acknowledges none of them is stalled once the measured rate would have
 * carried what is on the way (here, on a fast link, the 2 s floor), with
 * a message that says so; a slow reader that acknowledges a few KB every
 * 1.2 s on a first PATCH (no rate yet: the rule waits) is not a stall.
 * The gain over
 * the no-progress rule shows on a slow link with deep buffers (the
 * bench's stall row, BENCHMARKS.md): there it waited twice as long. */
static void test_stall_seen_from_acks(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.stall_seconds = 20;
    new_client(&r, &cfg);
    fake_small_rcvbuf(&r.f, 4096);
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.stall_patch_no = 3; /* reads its headers, then nothing */
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 1);
    CHECK_CONTAINS(r.retry_msg, "nothing acknowledged");
    /* POST, PATCH, PATCH, PATCH (silent), HEAD */
    uint64_t gap = r.f.req_at[4] - r.f.req_at[3];
    CHECK_INT(gap, >=, 1900);
    CHECK_INT(gap, <, 4000);
    run_teardown(&r);

    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    cfg.stall_seconds = 20;
    new_client(&r, &cfg);
    fake_small_rcvbuf(&r.f, 4096);
    make_file(&r, "b.seg", 24 * KiB, path, sizeof path);
    r.f.read_pace_ms = 1200;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(r.retries, 0);
    run_teardown(&r);
}

/* A fresh upload whose bytes all fit in the buffers on the way (nothing
 * waits in this host's send queue) goes silent on its first PATCH: with a
 * rate (from the cut of the upload before) and HQ's answer wait (from that
 * upload's completion) measured, it is abandoned after the 2 s floor, not
 * after a fixed 10 s allowance for HQ's processing; the message names the
 * rule and its terms. And the allowance is measured, not dropped: an HQ
 * that takes 2.5 s to answer each completed upload gets the next one
 * answered without a stall. */
static void test_stall_on_fresh_upload_after_cut(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.server_keeps_cut_bytes = 1;
    cfg.stall_seconds = 30;
    new_client(&r, &cfg);
    char a[128], b[128];
    make_file(&r, "a.seg", 200000, a, sizeof a);
    make_file(&r, "b.seg", 30000, b, sizeof b);
    r.f.cut_patch_no = 1;
    r.f.cut_after = 40000;
    r.f.cut_keep = 1;
    r.f.stall_patch_no = 3; /* b's first: reads its headers, then nothing */
    CHECK_EQ(upload(&r, a, NULL), 0);
    CHECK_EQ(upload(&r, b, NULL), 0);
    run_until_done(&r, 2);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], a));
    CHECK(same_as_file(&r.f.up[1], b));
    CHECK_EQ(r.retries, 2); /* the cut, the silence */
    CHECK_CONTAINS(stats(&r).last_error_msg, "stalled: no progress");
    CHECK_CONTAINS(stats(&r).last_error_msg, "by floor");
    CHECK_CONTAINS(stats(&r).last_error_msg, "0 queued");
    /* POST, PATCH (cut), HEAD, PATCH; POST, PATCH (silent), HEAD, PATCH */
    CHECK_EQ(r.f.n_head, 2);
    uint64_t gap = r.f.req_at[6] - r.f.req_at[5];
    CHECK_INT(gap, >=, 1900);
    CHECK_INT(gap, <, 4000);
    run_teardown(&r);

    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    cfg.server_keeps_cut_bytes = 1;
    cfg.stall_seconds = 30;
    new_client(&r, &cfg);
    make_file(&r, "a.seg", 200000, a, sizeof a);
    make_file(&r, "b.seg", 30000, b, sizeof b);
    r.f.cut_patch_no = 1;
    r.f.cut_after = 40000;
    r.f.cut_keep = 1;
    r.f.final_delay_ms = 2500;
    CHECK_EQ(upload(&r, a, NULL), 0);
    CHECK_EQ(upload(&r, b, NULL), 0);
    run_until_done(&r, 2);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], a));
    CHECK(same_as_file(&r.f.up[1], b));
    CHECK_EQ(r.retries, 1); /* the cut alone */
    CHECK_EQ(r.f.n_head, 1);
    CHECK_EQ(r.f.n_patch, 3);
    run_teardown(&r);
}

/* HQ answered the first upload at once, then takes 3 s to answer each
 * completed upload: the first such wait is taken for a silent link (the
 * 2 s floor), but the HEAD finds the upload complete, so the wait is
 * learnt and the next completed upload is waited for, not abandoned. */
static void test_slow_answer_learnt_after_false_stall(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.server_keeps_cut_bytes = 1;
    cfg.stall_seconds = 30;
    new_client(&r, &cfg);
    char a[128], b[128], c[128];
    make_file(&r, "a.seg", 200000, a, sizeof a);
    make_file(&r, "b.seg", 30000, b, sizeof b);
    make_file(&r, "c.seg", 30000, c, sizeof c);
    r.f.cut_patch_no = 1; /* a rate from the cut */
    r.f.cut_after = 40000;
    r.f.cut_keep = 1;
    CHECK_EQ(upload(&r, a, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    r.f.final_delay_ms = 3000;
    CHECK_EQ(upload(&r, b, NULL), 0);
    CHECK_EQ(upload(&r, c, NULL), 0);
    run_until_done(&r, 3);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], a));
    CHECK(same_as_file(&r.f.up[1], b));
    CHECK(same_as_file(&r.f.up[2], c));
    CHECK_EQ(r.retries, 2); /* a's cut, b's answer taken for a stall */
    /* a: POST, PATCH (cut), HEAD, PATCH; b: POST, PATCH, HEAD (complete);
     * c: POST, PATCH answered after 3 s */
    CHECK_EQ(r.f.n_head, 2);
    CHECK_EQ(r.f.n_patch, 4);
    run_teardown(&r);
}

static void test_resume_after_restart(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.max_chunk = 64 * KiB;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 640 * KiB, path, sizeof path);
    r.stop_after = 192 * KiB; /* the process "dies" after three chunks */
    CHECK_EQ(upload(&r, path, NULL), 0);
    while (!r.stopped && !r.timed_out)
        uv_run(&r.loop, UV_RUN_ONCE);
    CHECK(r.stopped);
    CHECK_EQ(r.status, -ECANCELED);
    CHECK_EQ(r.created, 1);
    uint64_t at_restart = r.f.up[0].offset;
    CHECK_INT(at_restart, >=, 192 * KiB);
    CHECK_INT(at_restart, <, 640 * KiB);

    /* a new client object, given only the persisted URL */
    char url[TUS_URL_MAX + 1];
    snprintf(url, sizeof url, "%s", r.created_url);
    r.stop_after = 0;
    r.stopped = 0;
    r.done = 0;
    new_client(&r, &cfg);
    CHECK_EQ(upload(&r, path, url), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_STR(r.url, url);
    CHECK_EQ(r.f.n_post, 1);
    CHECK_EQ(r.f.n_head, 1);
    CHECK(same_as_file(&r.f.up[0], path));
    struct tus_client_stats st = stats(&r);
    CHECK_EQ(st.bytes_confirmed, 640 * KiB - at_restart);
    CHECK_EQ(st.bytes_sent, 640 * KiB - at_restart);

    /* a URL the server no longer knows (expired): created anew */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/99", r.f.port);
    r.done = 0;
    r.created = 0;
    CHECK_EQ(upload(&r, path, url), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.created, 1);
    CHECK_CONTAINS(r.url, "/files/2");
    CHECK(same_as_file(&r.f.up[1], path));
    run_teardown(&r);
}

/* A cancelled upload stops at once, the client stays usable, and the
 * same URL resumes where the server stopped. */
static void test_cancel_and_resume(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.max_chunk = 64 * KiB;
    cfg.max_send_bps = 512 * KiB; /* a PATCH is still on the wire when cancel comes */
    new_client(&r, &cfg);
    char path[128], path2[128];
    make_file(&r, "a.seg", 640 * KiB, path, sizeof path);
    make_file(&r, "b.seg", 3000, path2, sizeof path2);
    r.cancel_after = 128 * KiB;
    CHECK_EQ(upload(&r, path, NULL), 0);
    CHECK_EQ(upload(&r, path2, NULL), 0); /* queued behind: dropped too */
    run_until_done(&r, 2);
    CHECK_EQ(r.status, -EINTR);
    CHECK_CONTAINS(r.err, "the sync window closed");
    CHECK_EQ(r.created, 1);
    uint64_t at_cancel = r.f.up[0].offset;
    CHECK_INT(at_cancel, >=, 128 * KiB);
    CHECK_INT(at_cancel, <, 640 * KiB);
    int patches = r.f.n_patch, posts = r.f.n_post;
    run_for(&r, 300);
    CHECK_EQ(r.f.n_patch, patches); /* nothing more goes out */
    CHECK_EQ(r.f.n_post, posts);
    CHECK_EQ(r.f.up[0].offset, at_cancel);
    tus_client_cancel(r.c, "again"); /* nothing queued: a no-op */

    struct got g;
    CHECK_EQ(get(&r, "/v1/receipts/7", 1024, &g), 0); /* GETs still work */
    run_until_got(&r, &g);
    CHECK_EQ(g.status, 200);

    char url[TUS_URL_MAX + 1];
    snprintf(url, sizeof url, "%s", r.created_url);
    r.done = 0;
    CHECK_EQ(upload(&r, path, url), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_STR(r.url, url);
    CHECK_EQ(r.f.n_post, posts); /* resumed, not created again */
    CHECK_EQ(r.f.n_head, 1);
    CHECK(same_as_file(&r.f.up[0], path));
    run_teardown(&r);
}

struct ticker {
    uv_timer_t t;
    uint64_t last, max_gap;
    int ticks;
};

static void on_tick(uv_timer_t *t)
{
    struct ticker *k = t->data;
    uint64_t now = uv_now(t->loop);
    if (k->ticks && now - k->last > k->max_gap)
        k->max_gap = now - k->last;
    k->last = now;
    k->ticks++;
}

static void test_loop_stays_responsive(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.max_send_bps = 512 * KiB; /* about a second for the file */
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.delay_ms = 50; /* and a slow server */
    struct ticker k = {0};
    uv_timer_init(&r.loop, &k.t);
    k.t.data = &k;
    uv_timer_start(&k.t, on_tick, 10, 10);
    uint64_t start = uv_now(&r.loop);
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    uint64_t took = uv_now(&r.loop) - start;
    uv_close((uv_handle_t *)&k.t, NULL);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_INT(took, >=, 600);
    CHECK_INT(k.ticks, >=, (int)(took / 10) / 2);
    CHECK_INT(k.max_gap, <, 60);
    run_teardown(&r);
}

/* A self-signed certificate for 127.0.0.1, made in memory. */
static SSL_CTX *make_tls(const char *pem_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, key, EVP_sha256());
    FILE *fp = fopen(pem_path, "w");
    if (fp) {
        PEM_write_X509(fp, x);
        fclose(fp);
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, x);
    SSL_CTX_use_PrivateKey(ctx, key);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

static void test_tls_verification(void)
{
    char pem[] = "/tmp/tus_client_ca.XXXXXX";
    int fd = mkstemp(pem);
    CHECK(fd >= 0);
    close(fd);
    SSL_CTX *tls = make_tls(pem);

    /* on by default: an untrusted self-signed certificate is an error */
    struct run r;
    run_setup(&r, tls);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 100 * KiB, path, sizeof path);
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, -EPERM);
    CHECK_CONTAINS(r.err, "certificate");
    CHECK_CONTAINS(r.err, "https://127.0.0.1:");
    CHECK_EQ(r.f.n_req, 0); /* no request got through */
    CHECK_EQ(r.retries, 0);
    run_teardown(&r);

    /* trusted through ca_file: the same server works, host checked */
    run_setup(&r, tls);
    cfg = base_cfg(&r);
    cfg.ca_file = pem;
    new_client(&r, &cfg);
    make_file(&r, "a.seg", 300 * KiB, path, sizeof path);
    r.f.cut_patch_no = 2;
    r.f.cut_after = 5000;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_CONTAINS(r.url, "https://127.0.0.1:");
    run_teardown(&r);

    SSL_CTX_free(tls);
    unlink(pem);
}

static void test_config_errors(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct tus_client *c = NULL;
    struct op_error e;
    struct tus_client_config cfg = {0};
    cfg.endpoint = "ftp://hq/files/";
    CHECK_EQ(tus_client_new(&loop, &cfg, &c, &e), -EINVAL);
    CHECK_STR(e.field, "endpoint");
    cfg.endpoint = "https://hq/files/";
    cfg.min_chunk = 1024 * KiB;
    cfg.max_chunk = 64 * KiB;
    CHECK_EQ(tus_client_new(&loop, &cfg, &c, &e), -EINVAL);
    cfg.min_chunk = 0;
    cfg.max_chunk = 0;
    cfg.auth = "Bearer x\r\nX-Evil: 1";
    CHECK_EQ(tus_client_new(&loop, &cfg, &c, &e), -EINVAL);
    cfg.auth = NULL;
    CHECK_EQ(tus_client_new(&loop, &cfg, &c, &e), 0);
    struct tus_meta bad[] = {{"has space", "v"}};
    struct tus_upload_params p = {0};
    p.path = "/tmp/x";
    p.meta = bad;
    p.nmeta = 1;
    CHECK_EQ(tus_client_upload(c, &p, &e), -EINVAL); /* no on_done */
    p.cb.on_done = cb_done;
    CHECK_EQ(tus_client_upload(c, &p, &e), -EINVAL);
    CHECK_STR(e.field, "metadata");
    p.nmeta = 0;
    p.upload_url = "http://hq/files/1"; /* would leave https */
    CHECK_EQ(tus_client_upload(c, &p, &e), -EINVAL);
    CHECK_STR(e.field, "upload_url");
    tus_client_stop(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
}

/* GET: statuses and bodies come back as they are, the cap holds, and a
 * GET is answered while an upload is still running on the same client. */
static void test_get(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    struct got g1, g2, g3, g4;
    CHECK_EQ(get(&r, "/v1/receipts/7", 1024, &g1), 0);
    CHECK_EQ(get(&r, "/v1/receipts/8", 1024, &g2), 0); /* queued behind g1 */
    run_until_got(&r, &g2);
    CHECK_EQ(g1.calls, 1);
    CHECK_EQ(g1.status, 200);
    CHECK_STR(g1.body, "{\"segment\":7}");
    CHECK_EQ(g1.len, 13);
    CHECK_STR(g1.err, "");
    CHECK_EQ(g2.calls, 1);
    CHECK_EQ(g2.status, 404);
    CHECK_STR(g2.body, "{\"title\":\"not yet\"}");
    CHECK_STR(r.f.auth, "Bearer t0k");

    /* over the cap: -EFBIG and no body; exactly at the cap: all of it */
    CHECK_EQ(get(&r, "/v1/big", 99999, &g3), 0);
    run_until_got(&r, &g3);
    CHECK_EQ(g3.status, -EFBIG);
    CHECK_EQ(g3.len, 0);
    CHECK_STR(g3.field, "body");
    CHECK_CONTAINS(g3.err, "/v1/big");
    CHECK_EQ(get(&r, "/v1/big", 100000, &g3), 0);
    run_until_got(&r, &g3);
    CHECK_EQ(g3.status, 200);
    CHECK_EQ(g3.len, 100000);
    CHECK_EQ(get(&r, "/v1/empty", 1, &g4), 0);
    run_until_got(&r, &g4);
    CHECK_EQ(g4.status, 200);
    CHECK_EQ(g4.len, 0);
    CHECK_STR(g4.body, "");

    /* beside a slow upload: answered long before the upload ends */
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    r.f.delay_ms = 40;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_for(&r, 60); /* the upload is under way */
    CHECK_EQ(get(&r, "/v1/receipts/7", 1024, &g1), 0);
    run_until_got(&r, &g1);
    CHECK_EQ(g1.status, 200);
    CHECK_EQ(g1.upload_done_before, 0);
    CHECK_INT(r.f.n_patch, <, 8); /* 512 KiB in 64-256 KiB chunks: not finished */
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK(same_as_file(&r.f.up[0], path));
    CHECK_EQ(stats(&r).bytes_sent, 512 * KiB); /* GETs do not count as upload bytes */

    /* refusals at queue time */
    struct op_error e;
    op_error_clear(&e);
    CHECK_EQ(tus_client_get(r.c, "ftp://127.0.0.1/x", 10, cb_got, &g1, &e), -EINVAL);
    CHECK_STR(e.field, "url");
    CHECK_EQ(tus_client_get(r.c, "http://127.0.0.1/x", 0, cb_got, &g1, &e), -EINVAL);
    CHECK_STR(e.field, "max_body");
    CHECK_EQ(tus_client_get(r.c, "http://127.0.0.1/x", 10, NULL, &g1, &e), -EINVAL);

    /* stop cancels a queued GET and the one in flight */
    r.f.delay_ms = 2000;
    CHECK_EQ(get(&r, "/v1/receipts/7", 1024, &g1), 0);
    CHECK_EQ(get(&r, "/v1/receipts/7", 1024, &g2), 0);
    run_for(&r, 30);
    CHECK_EQ(g1.calls, 0);
    run_teardown(&r);
    CHECK_EQ(g1.calls, 1);
    CHECK_EQ(g1.status, -ECANCELED);
    CHECK_EQ(g2.calls, 1);
    CHECK_EQ(g2.status, -ECANCELED);
}

/* A GET to a port nobody listens on is a network error, not a status. */
static void test_get_network_error(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    /* a port that was just free: bind, read it, close */
    uv_tcp_t t;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&r.loop, &t);
    CHECK_EQ(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/mailbox?after=0", ntohs(got.sin_port));
    struct got g;
    memset(&g, 0, sizeof g);
    g.r = &r;
    struct op_error e;
    CHECK_EQ(tus_client_get(r.c, url, 1024, cb_got, &g, &e), 0);
    run_until_got(&r, &g);
    CHECK_EQ(g.status, -EAGAIN);
    CHECK_STR(g.field, "network");
    CHECK_CONTAINS(g.err, "/v1/mailbox?after=0");
    run_teardown(&r);
}

/* ---- a voided file: -ESTALE, and nothing more is sent ---------------- */

struct voider {
    uv_timer_t t;
    const char *path;
    int unlink_it;
};

static void on_void(uv_timer_t *t)
{
    struct voider *v = t->data;
    if (v->unlink_it)
        CHECK_EQ(unlink(v->path), 0);
    else
        CHECK_EQ(truncate(v->path, 0), 0);
}

static void cb_progress_voids(void *ctx, uint64_t confirmed, uint64_t total)
{
    struct run *r = ctx;
    cb_progress(ctx, confirmed, total);
    char path[160];
    snprintf(path, sizeof path, "%s/a.seg", r->dir);
    if (confirmed == 64 * KiB)
        CHECK_EQ(truncate(path, 0), 0); /* between two chunks */
}

static void test_voided_file(void)
{
    /* truncated between chunks: the next step sees it before any request */
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.max_chunk = 64 * KiB;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
    struct tus_upload_params p = {0};
    p.path = path;
    p.cb.on_created = cb_created;
    p.cb.on_progress = cb_progress_voids;
    p.cb.on_retry = cb_retry;
    p.cb.on_done = cb_done;
    p.ctx = &r;
    struct op_error e;
    CHECK_EQ(tus_client_upload(r.c, &p, &e), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, -ESTALE);
    CHECK_CONTAINS(r.err, path);
    CHECK_CONTAINS(r.err, "shrank");
    run_for(&r, 200);
    CHECK_EQ(r.f.n_patch, 1);
    CHECK_EQ(r.f.n_head, 0);
    CHECK_EQ(r.retries, 0);
    CHECK_EQ(r.f.up[0].offset, 64 * KiB);
    struct tus_client_stats st = stats(&r);
    CHECK_EQ(st.last_error, -ESTALE);
    CHECK_EQ(st.uploads_failed, 1);
    run_teardown(&r);

    /* truncated while a PATCH is on the wire, and removed while one is:
     * the read callback stops the chunk, no HEAD, no further PATCH */
    for (int unlink_it = 0; unlink_it < 2; unlink_it++) {
        run_setup(&r, NULL);
        cfg = base_cfg(&r);
        cfg.initial_chunk = 256 * KiB;
        cfg.max_send_bps = 128 * KiB; /* two seconds for the chunk */
        new_client(&r, &cfg);
        make_file(&r, "a.seg", 512 * KiB, path, sizeof path);
        struct voider v = {.path = path, .unlink_it = unlink_it};
        uv_timer_init(&r.loop, &v.t);
        v.t.data = &v;
        uv_timer_start(&v.t, on_void, 400, 0);
        CHECK_EQ(upload(&r, path, NULL), 0);
        run_until_done(&r, 1);
        uv_close((uv_handle_t *)&v.t, NULL);
        CHECK_EQ(r.status, -ESTALE);
        CHECK_CONTAINS(r.err, path);
        CHECK_CONTAINS(r.err, unlink_it ? "removed" : "shrank");
        CHECK_EQ(r.f.n_patch, 1);
        int patches = r.f.n_patch, reqs = r.f.n_req;
        run_for(&r, 300);
        CHECK_EQ(r.f.n_patch, patches); /* no further PATCH */
        CHECK_EQ(r.f.n_req, reqs);      /* nor a HEAD */
        CHECK_EQ(r.f.n_head, 0);
        CHECK_EQ(r.retries, 0);
        CHECK_INT(r.f.patch_bytes, <, 256 * KiB); /* the chunk was cut short */
        CHECK_EQ(r.f.up[0].offset, 0);
        run_teardown(&r);
    }

    /* voided before its turn: emptied or removed while queued */
    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    new_client(&r, &cfg);
    char path2[128];
    make_file(&r, "a.seg", 3000, path, sizeof path);
    make_file(&r, "b.seg", 3000, path2, sizeof path2);
    CHECK_EQ(truncate(path, 0), 0);
    CHECK_EQ(unlink(path2), 0);
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, -ESTALE);
    CHECK_CONTAINS(r.err, "empty");
    CHECK_EQ(upload(&r, path2, NULL), 0);
    run_until_done(&r, 2);
    CHECK_EQ(r.status, -ESTALE);
    CHECK_CONTAINS(r.err, "b.seg is gone");
    CHECK_EQ(r.f.n_req, 0);
    run_teardown(&r);
}

/* ---- termination against the real tus server --------------------------- */

struct real {
    struct http_server *srv;
    struct tus_server *tus;
    char spool[160];
    int port, stopped, completes;
    unsigned char sha[32]; /* of the last completed upload's data */
    uint64_t sha_len;
};

static int real_authorize(void *ctx, struct http_exchange *x, char *principal, size_t cap)
{
    const char *a = http_header(x, "Authorization");
    if (!a || (strcmp(a, "Bearer node-a") != 0 && strcmp(a, "Bearer node-b") != 0))
        return -EACCES;
    snprintf(principal, cap, "%s", a + 7);
    return 0;
}

/* As outpost-hq does: apply (here: nothing) and settle at once. */
static int real_complete(void *ctx, const char *id, const char *principal,
                         const struct tus_metadata *md, const char *data_path, uint64_t length)
{
    struct real *s = ctx;
    s->completes++;
    FILE *fp = fopen(data_path, "rb");
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char b[65536];
    size_t n;
    s->sha_len = 0;
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    while (fp && (n = fread(b, 1, sizeof b, fp)) > 0) {
        EVP_DigestUpdate(m, b, n);
        s->sha_len += n;
    }
    EVP_DigestFinal_ex(m, s->sha, NULL);
    EVP_MD_CTX_free(m);
    if (fp)
        fclose(fp);
    CHECK_EQ(tus_server_settle(s->tus, id), 0);
    return 0;
}

static void real_start(struct run *r, struct real *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->spool, sizeof s->spool, "%s/hq-spool", r->dir);
    struct tus_server_config tc = {
        .spool_dir = s->spool,
        .authorize = real_authorize,
        .on_complete = real_complete,
        .ctx = s,
    };
    struct op_error e;
    op_error_clear(&e);
    CHECK_EQ(tus_server_new(&tc, &s->tus, &e), 0);
    struct http_server_config hc = {
        .listen = "127.0.0.1:0",
        .max_body_bytes = 1024 * 1024,
        .max_connections = 16,
        .header_timeout_ms = 3000,
        .body_timeout_ms = 3000,
        .idle_timeout_ms = 3000,
    };
    CHECK_EQ(http_server_start(&r->loop, &hc, tus_server_handler, NULL, s->tus, &s->srv, &e), 0);
    s->port = http_server_port(s->srv);
    snprintf(r->endpoint, sizeof r->endpoint, "http://127.0.0.1:%d/files/", s->port);
}

static void real_stopped(void *arg)
{
    struct real *s = arg;
    s->stopped = 1;
}

static void real_stop(struct run *r, struct real *s)
{
    http_server_stop(s->srv, real_stopped, s);
    while (!s->stopped && !r->timed_out)
        uv_run(&r->loop, UV_RUN_ONCE);
    tus_server_free(s->tus);
    (void)fx_remove_tree(s->spool);
}

/* The size of the spool file of the upload at url (".data", ".state"), or -1. */
static long long spool_file(const struct real *s, const char *url, const char *suffix)
{
    const char *id = strrchr(url, '/');
    char p[400];
    snprintf(p, sizeof p, "%s/%s%s", s->spool, id ? id + 1 : "", suffix);
    struct stat sb;
    return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

struct term {
    struct run *r;
    int calls, status;
    char err[512], field[64];
};

static void cb_term(void *ctx, int status, const struct op_error *err)
{
    struct term *t = ctx;
    t->calls++;
    t->status = status;
    snprintf(t->err, sizeof t->err, "%s", err ? err->msg : "");
    snprintf(t->field, sizeof t->field, "%s", err ? err->field : "");
    uv_stop(&t->r->loop);
}

static int terminate(struct run *r, struct tus_client *c, const char *url, struct term *t)
{
    memset(t, 0, sizeof *t);
    t->r = r;
    struct op_error e;
    op_error_clear(&e);
    int rc = tus_client_terminate(c, url, cb_term, t, &e);
    while (rc == 0 && !t->calls && !r->timed_out)
        uv_run(&r->loop, UV_RUN_ONCE);
    CHECK(!r->timed_out);
    return rc;
}

static void test_terminate(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct real s;
    real_start(&r, &s);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.max_chunk = 64 * KiB;
    cfg.auth = "Bearer node-a";
    new_client(&r, &cfg);
    struct tus_client *other = NULL;
    struct tus_client_config ocfg = base_cfg(&r);
    ocfg.auth = "Bearer node-b";
    struct op_error e;
    CHECK_EQ(tus_client_new(&r.loop, &ocfg, &other, &e), 0);
    char path[128];
    make_file(&r, "a.seg", 640 * KiB, path, sizeof path);

    /* half uploaded, then the node gives it up */
    r.cancel_after = 128 * KiB;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, -EINTR);
    char url[TUS_URL_MAX + 1];
    snprintf(url, sizeof url, "%s", r.created_url);
    CHECK_CONTAINS(url, "/files/");
    long long held = spool_file(&s, url, ".data");
    CHECK_INT(held, >=, 128 * KiB);
    CHECK_INT(held, <, 640 * KiB);
    CHECK(spool_file(&s, url, ".state") > 0);

    /* another node may not: for it the upload does not exist */
    struct term t;
    CHECK_EQ(terminate(&r, other, url, &t), 0);
    CHECK_EQ(t.status, -ENOENT);
    CHECK_CONTAINS(t.err, "404");
    CHECK_EQ(spool_file(&s, url, ".data"), held);

    /* its owner may: both files are gone when the callback runs */
    CHECK_EQ(terminate(&r, r.c, url, &t), 0);
    CHECK_EQ(t.status, 0);
    CHECK_STR(t.err, "");
    CHECK_EQ(spool_file(&s, url, ".data"), -1);
    CHECK_EQ(spool_file(&s, url, ".state"), -1);
    CHECK_EQ(tus_server_upload_offset(s.tus, strrchr(url, '/') + 1, NULL, NULL), -ENOENT);

    /* again, and a URL the server never issued: not found */
    CHECK_EQ(terminate(&r, r.c, url, &t), 0);
    CHECK_EQ(t.status, -ENOENT);
    char unknown[TUS_URL_MAX + 1];
    snprintf(unknown, sizeof unknown, "http://127.0.0.1:%d/files/0123456789abcdef0123456789abcdef",
             s.port);
    CHECK_EQ(terminate(&r, r.c, unknown, &t), 0);
    CHECK_EQ(t.status, -ENOENT);
    CHECK_CONTAINS(t.err, "0123456789abcdef0123456789abcdef");

    /* an upload HQ has taken whole (settled): reported as such, and its
     * URL still answers complete */
    r.done = 0;
    r.cancel_after = 0;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(s.completes, 1);
    snprintf(url, sizeof url, "%s", r.url);
    CHECK_EQ(terminate(&r, r.c, url, &t), 0);
    CHECK_EQ(t.status, -EALREADY);
    CHECK_STR(t.field, "status");
    CHECK_CONTAINS(t.err, "409");
    CHECK_CONTAINS(t.err, "cannot be terminated");
    uint64_t off = 0, len = 0;
    CHECK_EQ(tus_server_upload_offset(s.tus, strrchr(url, '/') + 1, &off, &len), 0);
    CHECK_EQ(off, 640 * KiB);
    CHECK_EQ(len, 640 * KiB);
    CHECK(spool_file(&s, url, ".state") > 0);
    CHECK_EQ(spool_file(&s, url, ".data"), -1);

    /* terminating the URL of the upload under way ends that upload at
     * once (-ESTALE), and the DELETE follows */
    r.done = 0;
    r.created = 0;
    CHECK_EQ(upload(&r, path, NULL), 0);
    while (!r.created && !r.timed_out)
        uv_run(&r.loop, UV_RUN_ONCE);
    snprintf(url, sizeof url, "%s", r.created_url);
    memset(&t, 0, sizeof t);
    t.r = &r;
    CHECK_EQ(tus_client_terminate(r.c, url, cb_term, &t, &e), 0);
    CHECK_EQ(r.done, 1); /* inside the call */
    CHECK_EQ(r.status, -ESTALE);
    CHECK_CONTAINS(r.err, "terminated");
    while (!t.calls && !r.timed_out)
        uv_run(&r.loop, UV_RUN_ONCE);
    CHECK_EQ(t.status, 0);
    CHECK_EQ(spool_file(&s, url, ".data"), -1);
    run_for(&r, 200);
    CHECK_EQ(r.done, 1);
    CHECK_EQ(s.completes, 1);

    /* refusals at queue time */
    CHECK_EQ(tus_client_terminate(r.c, "ftp://127.0.0.1/files/x", cb_term, &t, &e), -EINVAL);
    CHECK_STR(e.field, "url");
    CHECK_EQ(tus_client_terminate(r.c, url, NULL, &t, &e), -EINVAL);

    tus_client_stop(other, NULL, NULL);
    real_stop(&r, &s);
    CHECK(s.stopped);
    run_teardown(&r);
}

static void file_sha(const char *path, unsigned char out[32])
{
    FILE *fp = fopen(path, "rb");
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char b[65536];
    size_t n;
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    while (fp && (n = fread(b, 1, sizeof b, fp)) > 0)
        EVP_DigestUpdate(m, b, n);
    EVP_DigestFinal_ex(m, out, NULL);
    EVP_MD_CTX_free(m);
    if (fp)
        fclose(fp);
}

/* A named upload: the URL (the endpoint + the id derived from the
 * principal and the key with the file's digest) is reported before any
 * request, nothing reaches the server while the caller holds it, and one
 * POST carries the whole file. An older server that refuses data on a
 * creation gets a plain POST and PATCHes, and its own Location is
 * reported before those bytes. */
static void test_named_creation(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct real s;
    real_start(&r, &s);
    struct tus_client_config cfg = base_cfg(&r);
    cfg.auth = "Bearer node-a";
    cfg.server_keeps_cut_bytes = 1;
    new_client(&r, &cfg);
    char path[128];
    make_file(&r, "n.seg", 300 * KiB + 7, path, sizeof path);
    unsigned char d[32];
    file_sha(path, d);
    char key[80], id[TUS_ID_LEN + 1], want[TUS_URL_MAX + 1];
    snprintf(key, sizeof key, "seg-7.");
    for (int i = 0; i < 16; i++)
        snprintf(key + 6 + 2 * i, 3, "%02x", d[i]);
    CHECK_EQ(tus_upload_id("node-a", key, id), 0);
    snprintf(want, sizeof want, "%s%s", r.endpoint, id);
    r.key = "seg-7";
    r.hold = 1;
    CHECK_EQ(upload(&r, path, NULL), 0);
    for (int i = 0; i < 100 && !r.created; i++)
        run_for(&r, 20); /* no answer wakes the loop: the name comes from a timer */
    CHECK_STR(r.created_url, want);
    run_for(&r, 200);
    struct tus_server_stats ts;
    tus_server_stats(s.tus, &ts);
    CHECK_EQ(ts.uploads + ts.settled, 0); /* held: the server heard nothing */
    tus_client_resume(r.c);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_STR(r.url, want);
    CHECK_EQ(r.created, 1);
    CHECK_EQ(s.completes, 1);
    CHECK_EQ(s.sha_len, 300 * KiB + 7);
    CHECK(memcmp(s.sha, d, 32) == 0);
    struct tus_client_stats st = stats(&r);
    CHECK_EQ(st.bytes_sent, 300 * KiB + 7);
    CHECK_EQ(st.bytes_confirmed, 300 * KiB + 7);
    CHECK_EQ(st.retries, 0);
    /* the same file again (a node that lost the last answer): the server
     * says it is complete; at most the creation's chunk went again (this
     * server reads bodies whole), and nothing is stored or delivered twice */
    r.done = 0;
    r.hold = 0;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_STR(r.url, want);
    CHECK_EQ(s.completes, 1);
    CHECK_INT(stats(&r).bytes_sent, <=, 300 * KiB + 7 + 256 * KiB);
    CHECK_EQ(stats(&r).bytes_confirmed, 300 * KiB + 7);

    /* without data: the name comes with HQ's answer; a node that lost it
     * (killed before recording it) creates again and finds the same
     * upload, no orphan */
    make_file(&r, "m.seg", 200 * KiB, path, sizeof path);
    file_sha(path, d);
    snprintf(key, sizeof key, "seg-9.");
    for (int i = 0; i < 16; i++)
        snprintf(key + 6 + 2 * i, 3, "%02x", d[i]);
    CHECK_EQ(tus_upload_id("node-a", key, id), 0);
    snprintf(want, sizeof want, "%s%s", r.endpoint, id);
    r.key = "seg-9";
    r.key_no_data = 1;
    r.hold = 1;
    r.done = r.created = 0;
    CHECK_EQ(upload(&r, path, NULL), 0);
    while (!r.created && !r.timed_out)
        uv_run(&r.loop, UV_RUN_ONCE); /* HQ's answer wakes the loop */
    CHECK_STR(r.created_url, want);
    tus_server_stats(s.tus, &ts);
    CHECK_EQ(ts.uploads, 1); /* created, nothing of the file sent */
    CHECK_EQ(tus_server_upload_offset(s.tus, id, NULL, NULL), 0);
    tus_client_cancel(r.c, "killed before the URL was recorded");
    run_until_done(&r, 1);
    CHECK_EQ(r.status, -EINTR);
    r.done = 0;
    r.hold = 0;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_STR(r.url, want);
    CHECK_EQ(r.created, 2); /* the same name, reported twice */
    tus_server_stats(s.tus, &ts);
    CHECK_EQ(ts.uploads, 0); /* no orphan: the one upload, settled */
    CHECK_EQ(s.completes, 2);
    CHECK_EQ(s.sha_len, 200 * KiB);
    CHECK(memcmp(s.sha, d, 32) == 0);
    real_stop(&r, &s);
    run_teardown(&r);

    /* an older server: 400 to the data, then the plain way */
    run_setup(&r, NULL);
    cfg = base_cfg(&r);
    new_client(&r, &cfg);
    make_file(&r, "o.seg", 100 * KiB, path, sizeof path);
    r.key = "seg-8";
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.f.n_post_data, 1);
    CHECK_EQ(r.f.n_post, 2);
    CHECK_EQ(r.created, 2); /* the named URL, then the server's */
    CHECK_CONTAINS(r.created_url, "/files/1");
    CHECK_STR(r.url, r.created_url);
    CHECK(same_as_file(&r.f.up[0], path));
    /* and from then on it asks no more with data */
    make_file(&r, "p.seg", 10 * KiB, path, sizeof path);
    r.done = 0;
    CHECK_EQ(upload(&r, path, NULL), 0);
    run_until_done(&r, 1);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.f.n_post_data, 1);
    CHECK_EQ(r.f.n_post, 3);
    /* bad keys are refused at queue time */
    struct tus_upload_params p = {.path = path, .upload_key = "a/b", .principal = "node-a"};
    p.cb.on_done = cb_done;
    struct op_error e;
    CHECK_EQ(tus_client_upload(r.c, &p, &e), -EINVAL);
    CHECK_STR(e.field, "upload_key");
    p.upload_key = "seg-1";
    p.principal = NULL;
    CHECK_EQ(tus_client_upload(r.c, &p, &e), -EINVAL);
    run_teardown(&r);
}

/* A DELETE that gets no answer is a transient error, and stop cancels a
 * queued one. */
static void test_terminate_network_error(void)
{
    struct run r;
    run_setup(&r, NULL);
    struct tus_client_config cfg = base_cfg(&r);
    new_client(&r, &cfg);
    uv_tcp_t tcp;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&r.loop, &tcp);
    CHECK_EQ(uv_tcp_bind(&tcp, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&tcp, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&tcp, NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/1", ntohs(got.sin_port));
    struct term t;
    CHECK_EQ(terminate(&r, r.c, url, &t), 0);
    CHECK_EQ(t.status, -EAGAIN);
    CHECK_STR(t.field, "network");
    CHECK_CONTAINS(t.err, "DELETE");
    CHECK_CONTAINS(t.err, url);
    /* the fake server answers slowly: stop cancels the DELETE in flight */
    r.f.delay_ms = 2000;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/1", r.f.port);
    memset(&t, 0, sizeof t);
    t.r = &r;
    struct op_error e;
    CHECK_EQ(tus_client_terminate(r.c, url, cb_term, &t, &e), 0);
    run_for(&r, 30);
    CHECK_EQ(t.calls, 0);
    run_teardown(&r);
    CHECK_EQ(t.calls, 1);
    CHECK_EQ(t.status, -ECANCELED);
}

int main(void)
{

    RUN(test_config_errors);
    RUN(test_clean_upload);
    RUN(test_hold_until_resumed);
    RUN(test_cut_mid_chunk);
    RUN(test_lost_response_not_resent);
    RUN(test_answer_cut_in_headers);
    RUN(test_lost_answer_on_kept_connection);
    RUN(test_conflict_409);
    RUN(test_checksum_460_resends);
    RUN(test_forbidden_is_permanent);
    RUN(test_backoff);
    RUN(test_chunk_adapts);
    RUN(test_chunk_grows_at_long_rtt);
    RUN(test_cut_reconnects_at_once);
    RUN(test_connect_failures_back_off);
    RUN(test_cuts_every_10k);
    RUN(test_whole_rest_per_patch);
    RUN(test_stall_detected_from_rate);
    RUN(test_seeded_stall);
    RUN(test_stall_seen_from_acks);
    RUN(test_stall_seen_between_cuts);
    RUN(test_stall_on_fresh_upload_after_cut);
    RUN(test_slow_answer_learnt_after_false_stall);
    RUN(test_resume_after_restart);
    RUN(test_cancel_and_resume);
    RUN(test_loop_stays_responsive);
    RUN(test_tls_verification);
    RUN(test_get);
    RUN(test_get_network_error);
    RUN(test_voided_file);
    RUN(test_terminate);
    RUN(test_terminate_network_error);
    RUN(test_named_creation);
    return tl_report();
}
