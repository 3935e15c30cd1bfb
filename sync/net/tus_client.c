/*
 * tus 1.0.0 client on libcurl's multi socket interface and a libuv loop;
 * see tus_client.h for the contract. The shape follows curl's
 * docs/examples/multi-uv.c: CURLMOPT_SOCKETFUNCTION maps each socket to a
 * uv_poll_t, CURLMOPT_TIMERFUNCTION to one uv_timer_t, and both call
 * curl_multi_socket_action. One easy handle is reused (curl_easy_reset
 * keeps the connection and TLS session caches) and at most one request is
 * in flight. The invariants: the client only ever sends from an offset the
 * server stated (POST gives 0, a PATCH reply or a HEAD gives the rest);
 * after any failure that offset is forgotten and relearned with HEAD; user
 * callbacks run only outside curl's callbacks, and every step after one of
 * them checks whether the client was stopped meanwhile. A file that shrinks
 * or loses its name while it is sent has been voided by its owner: the
 * upload stops at once with -ESTALE (the read callback checks the file
 * before it hands curl a byte), and is neither retried nor HEADed again.
 * How long to wait before a retry, how large a chunk to send and when a
 * request counts as stalled follow one control law from measured round
 * trips, rate and connection lives (docs/UPLOADER.md): a link that cuts
 * but works is never treated like an HQ that is down.
 */
#include "tus_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "codec.h"
#include "tus_server.h"

#define DEF_MIN_CHUNK ((size_t)2 * 1024)
#define DEF_MAX_CHUNK ((size_t)4 * 1024 * 1024)
#define DEF_INITIAL_CHUNK ((size_t)64 * 1024)
#define HARD_MAX_CHUNK ((size_t)256 * 1024 * 1024)
#define BODY_KEEP 512
#define DEF_STALL_MIN_MS 2000
#define DEF_QUICK_RETRY_MS 250
#define QUICK_MAX 4       /* quick reconnects in a row without the offset moving */
#define STALL_TICK_MS 250 /* how often a request in flight is checked for progress */
#define FAST_RTTS 8       /* a chunk shorter than this many round trips leaves the link idle */
/* HQ's answer to a completed upload, until one was measured. Short: an
 * HQ slower than this costs one HEAD (it finds the upload complete and
 * the wait is learnt), a silent connection before the first completed
 * upload costs this much more than it must. */
#define FINAL_WAIT_MS 3000

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* REQ_CREATE: a POST that creates a named upload with its first bytes. */
enum req_kind { REQ_NONE, REQ_POST, REQ_HEAD, REQ_PATCH, REQ_CREATE };

/* A request whose body is the file's bytes. */
#define SENDS_DATA(k) ((k) == REQ_PATCH || (k) == REQ_CREATE)

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct tus_client *c;
    struct sock_ctx *next;
    struct sock_ctx **pprev;
};

struct job {
    struct job *next;
    char *path;
    char *url;  /* NULL until created (or given) */
    char *meta; /* encoded Upload-Metadata, NULL if none */
    struct tus_upload_callbacks cb;
    void *ctx;
    int fd;
    uint64_t length;
    uint64_t offset;       /* last offset the server stated */
    int offset_known;      /* 0 after a failure: HEAD before the next PATCH */
    int baseline_known;    /* the first offset learned is not credited to us */
    uint64_t pending_sent; /* PATCH bytes sent since the offset was last learned */
    unsigned attempt;      /* consecutive failures without progress */
    unsigned quick;        /* quick reconnects since the offset last moved */
    uint64_t fail_offset;  /* the offset when the last failure happened */
    unsigned mismatches;   /* consecutive 460s */
    uint64_t chunk_cap;    /* the most one PATCH carries; 0: no bound of its own */
    char *key;             /* Outpost-Upload-Key (with the file's digest), or NULL */
    char *principal;       /* with key: the client's name at the server */
    int must_create;       /* the URL is named but the creation is still owed */
    int with_data;         /* that creation carries the first bytes */
};

/* A queued or running GET, or DELETE (termination) when tdone is set. */
struct get_req {
    struct get_req *next;
    char *url;
    size_t max_body;
    tus_get_cb done;
    tus_terminate_cb tdone;
    void *ctx;
    char *post; /* a POST's body (post_len bytes), or NULL */
    size_t post_len;
};

struct tus_client {
    uv_loop_t *loop;
    char *endpoint;
    char *auth_hdr; /* "Authorization: ..." or NULL */
    char *ca_file;
    struct tus_client_config cfg; /* strings above are the owned copies */
    int endpoint_https;

    CURLM *multi;
    CURL *easy;
    uv_timer_t curl_timer;
    uv_timer_t step_timer;  /* backoff, and every start of a step */
    uv_timer_t stall_timer; /* checks the request in flight for progress */
    int open_handles;
    struct sock_ctx *socks;

    struct job *cur;
    struct job *qhead, *qtail;
    size_t nqueued;

    enum req_kind req;
    struct curl_slist *hdrs;
    unsigned char *buf;
    size_t buf_cap;
    size_t chunk;    /* adaptive chunk size */
    size_t ssthresh; /* doubling below, additive growth above; set by cuts */
    /* measurements: 0 until the first sample */
    uint64_t srtt_ms;  /* smoothed round trip, from HEAD and POST answer times */
    uint64_t rate_bps; /* smoothed PATCH goodput, bytes per second */
    /* what the current connection carried: confirmed by its PATCHes */
    uint64_t conn_confirmed;
    int resize_pending;      /* a connection was cut: size the chunk at the next HEAD */
    uint64_t resize_carried; /* what that connection had confirmed before the cut */
    uint64_t cut_busy_ms;    /* how long the cut PATCH wrote, for a rate sample at the HEAD */
    /* stall detection for the request in flight */
    uint64_t last_progress_ms, progress_mark, hdr_bytes;
    /* of a request that sends the file: the body bytes the next hop has
     * acknowledged (written less SIOCOUTQ) and when that count last moved */
    uint64_t acked_mark, last_ack_ms;
    uint64_t link_ack_gap_ms; /* the longest wait between two moves on any request: the link's */
    /* how long HQ took to answer a completed upload beyond the time the
     * link needed to carry it (its verify and apply); 0 until measured */
    uint64_t answer_wait_ms;
    /* a completing PATCH whose body had reached HQ was abandoned after this
     * long: if the next HEAD finds the upload complete, HQ was only slow */
    uint64_t final_stall_ms;
    int ack_seen;
    size_t chunk_len, chunk_pos;
    uint64_t chunk_ul_max; /* the most curl reported sent of this PATCH's body */
    uint64_t req_start_ms;
    int stale;                 /* on_read found the file voided: why is in stale_err */
    uv_fs_event_t watch;       /* the current upload's file: a voiding is seen at once */
    int held;                  /* on_created asked to wait for tus_client_resume */
    int no_create_data;        /* the server refused data on a creation: plain POSTs */
    curl_socket_t upload_fd;   /* the socket of the upload's transfer, or CURL_SOCKET_BAD */
    curl_socket_t req_fd;      /* the last socket of the upload's handle, kept after REMOVE */
    uint64_t close_unacked;    /* what the kernel still held of it when curl closed it */
    int close_seen;            /* curl closed the request's connection: close_unacked is set */
    struct op_error stale_err; /* -ESTALE naming the file */

    /* the response being received */
    int has_offset, has_length, bad_header;
    uint64_t resp_offset, resp_length;
    char location[TUS_URL_MAX + 1];
    int location_too_long;
    int hdr_done; /* the blank line that ends the answer's headers arrived */
    char body[BODY_KEEP];
    size_t body_len;
    char errbuf[CURL_ERROR_SIZE];
    char receipt[TUS_RECEIPT_MAX + 1]; /* decoded Outpost-Receipt of this response */
    size_t receipt_len;                /* 0: none */

    /* Outpost-Mailbox-Last, newest seen on any response */
    uint64_t mailbox_last;
    int mailbox_known;

    /* GETs: their own easy handle on the same multi handle, one at a time */
    CURL *get_easy;
    uv_timer_t get_timer; /* starts the next GET from the loop */
    struct get_req *gcur, *ghead, *gtail;
    struct curl_slist *ghdrs;
    struct buf gbody; /* the current answer's body, capped at its max_body */
    int gbody_over;
    char gerrbuf[CURL_ERROR_SIZE];

    struct tus_client_stats st;
    uint64_t rng_state;
    int stopping;
    void (*stop_cb)(void *);
    void *stop_ctx;
};

static void next_step(struct tus_client *c);
static void on_stall_tick(uv_timer_t *t);
static void schedule(struct tus_client *c, uint64_t delay_ms);
static void on_get_done(struct tus_client *c, CURLcode res);
static void next_get(uv_timer_t *t);

/* ---- small helpers ---------------------------------------------------- */

static uint64_t default_clock(void *ctx)
{
    (void)ctx;
    return uv_hrtime() / 1000000u;
}

static uint32_t default_rng(void *ctx)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    uint64_t *s = ctx;
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (uint32_t)((x * UINT64_C(2685821657736338717)) >> 32);
}

static uint64_t now_ms(struct tus_client *c)
{
    return c->cfg.now_ms(c->cfg.clock_ctx);
}

static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void set_last_error(struct tus_client *c, const struct op_error *e)
{
    c->st.last_error = e->code;
    snprintf(c->st.last_error_msg, sizeof c->st.last_error_msg, "%s", e->msg);
}

/* ---- curl <-> libuv, after docs/examples/multi-uv.c -------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct tus_client *c = h->data;
    if (h->type == UV_POLL)
        free(container_of((uv_poll_t *)h, struct sock_ctx, poll));
    if (--c->open_handles > 0)
        return;
    void (*cb)(void *) = c->stop_cb;
    void *ctx = c->stop_ctx;
    free(c->buf);
    buf_done(&c->gbody);
    free(c->endpoint);
    free(c->auth_hdr);
    free(c->ca_file);
    free(c);
    if (cb)
        cb(ctx);
}

static void sock_close(struct sock_ctx *s)
{
    *s->pprev = s->next;
    if (s->next)
        s->next->pprev = s->pprev;
    (void)uv_poll_stop(&s->poll);
    s->poll.data = s->c;
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void check_multi_info(struct tus_client *c);

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *s = container_of(p, struct sock_ctx, poll);
    struct tus_client *c = s->c;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    (void)curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_multi_info(c);
}

static void on_curl_timer(uv_timer_t *t)
{
    struct tus_client *c = t->data;
    int running = 0;
    (void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(c);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct tus_client *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        (void)uv_timer_stop(&c->curl_timer);
        return 0;
    }
    /* 0 means "now", but socket_action must not be called from here: the
     * loop runs it on its next turn. */
    return uv_timer_start(&c->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0) ? -1 : 0;
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct tus_client *c = userp;
    struct sock_ctx *s = socketp;
    if (easy == c->easy) {
        c->upload_fd = action == CURL_POLL_REMOVE ? CURL_SOCKET_BAD : fd;
        if (action != CURL_POLL_REMOVE)
            c->req_fd = fd;
    }
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            (void)curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = c;
        c->open_handles++;
        s->next = c->socks;
        if (s->next)
            s->next->pprev = &s->next;
        s->pprev = &c->socks;
        c->socks = s;
        if (curl_multi_assign(c->multi, fd, s) != CURLM_OK) {
            sock_close(s);
            return -1;
        }
    }
    int events = 0;
    if (action != CURL_POLL_IN)
        events |= UV_WRITABLE;
    if (action != CURL_POLL_OUT)
        events |= UV_READABLE;
    return uv_poll_start(&s->poll, events, on_poll) ? -1 : 0;
}

/* ---- request building ------------------------------------------------- */

/* A number header's value v (vlen bytes, trimmed) into *out, setting *has;
 * one that is not a number marks the response bad. */
static void header_u64(struct tus_client *c, const char *v, size_t vlen, uint64_t *out, int *has)
{
    char val[32];
    if (vlen < sizeof val) {
        memcpy(val, v, vlen);
        val[vlen] = '\0';
        if (parse_u64(val, out) == 0) {
            *has = 1;
            return;
        }
    }
    c->bad_header = 1;
}

/* Splits a header line into its name (nlen bytes at line) and its trimmed
 * value; 0 when the line is not a header. */
static int split_header(const char *line, size_t len, size_t *nlen, const char **v, size_t *vlen)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return 0;
    *nlen = (size_t)(colon - line);
    *v = colon + 1;
    *vlen = len - *nlen - 1;
    while (*vlen && (**v == ' ' || **v == '\t'))
        (*v)++, (*vlen)--;
    while (*vlen && ((*v)[*vlen - 1] == '\r' || (*v)[*vlen - 1] == '\n' || (*v)[*vlen - 1] == ' '))
        (*vlen)--;
    return 1;
}

/* HQ's hint of its newest mailbox seq for this node, on any response: the
 * newest one wins (an invalid value is ignored, never an error). */
static void note_mailbox_last(struct tus_client *c, const char *line, size_t nlen, const char *v,
                              size_t vlen)
{
    uint64_t seq = 0;
    int has = 0, bad = c->bad_header;
    if (nlen != 20 || strncasecmp(line, "Outpost-Mailbox-Last", 20) != 0)
        return;
    header_u64(c, v, vlen, &seq, &has);
    c->bad_header = bad; /* not a tus header: it cannot spoil the answer */
    if (has) {
        c->mailbox_last = seq;
        c->mailbox_known = 1;
    }
}

/* Outpost-Receipt: base64url without padding of the receipt JSON. Kept
 * decoded for on_receipt; anything that does not decode strictly, or is
 * longer than TUS_RECEIPT_MAX, is dropped (the caller asks with a GET). */
static void note_receipt(struct tus_client *c, const char *v, size_t vlen)
{
    char std[((TUS_RECEIPT_MAX + 2) / 3) * 4 + 1];
    c->receipt_len = 0;
    if (vlen == 0 || vlen >= sizeof std)
        return;
    for (size_t i = 0; i < vlen; i++) {
        char ch = v[i];
        if (ch == '+' || ch == '/' || ch == '=')
            return; /* not the URL alphabet, or padded */
        std[i] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
    }
    ssize_t n = codec_b64_decode(std, vlen, (unsigned char *)c->receipt, TUS_RECEIPT_MAX, NULL);
    if (n <= 0)
        return;
    c->receipt[n] = '\0';
    c->receipt_len = (size_t)n;
}

static size_t on_header(char *line, size_t size, size_t n, void *userp)
{
    struct tus_client *c = userp;
    size_t len = size * n;
    c->hdr_bytes += len; /* an answer arriving is progress */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the last. */
        c->has_offset = c->has_length = c->bad_header = 0;
        c->location[0] = '\0';
        c->location_too_long = 0;
        c->receipt_len = 0;
        c->hdr_done = 0;
        return len;
    }
    if ((len == 2 && line[0] == '\r' && line[1] == '\n') || (len == 1 && line[0] == '\n')) {
        c->hdr_done = 1;
        return len;
    }
    size_t nlen, vlen;
    const char *v;
    if (!split_header(line, len, &nlen, &v, &vlen))
        return len;
    note_mailbox_last(c, line, nlen, v, vlen);
    if (nlen == 15 && strncasecmp(line, "Outpost-Receipt", 15) == 0) {
        note_receipt(c, v, vlen);
    } else if (nlen == 13 && strncasecmp(line, "Upload-Offset", 13) == 0) {
        header_u64(c, v, vlen, &c->resp_offset, &c->has_offset);
    } else if (nlen == 13 && strncasecmp(line, "Upload-Length", 13) == 0) {
        header_u64(c, v, vlen, &c->resp_length, &c->has_length);
    } else if (nlen == 8 && strncasecmp(line, "Location", 8) == 0) {
        if (vlen > TUS_URL_MAX) {
            c->location_too_long = 1;
            return len;
        }
        memcpy(c->location, v, vlen);
        c->location[vlen] = '\0';
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct tus_client *c = userp;
    size_t len = size * n;
    size_t room = sizeof c->body - 1 - c->body_len;
    size_t take = len < room ? len : room;
    memcpy(c->body + c->body_len, data, take);
    c->body_len += take;
    c->body[c->body_len] = '\0';
    return len;
}

/* -ESTALE (err names the file) when the job's file is shorter than when
 * the upload started or has lost its name: its owner voided it (a spool
 * file is truncated to 0 or removed when its bytes must not leave). One
 * fstat of the open descriptor: cheap enough for every read callback. */
static int file_voided(const struct job *j, struct op_error *err)
{
    struct stat sb;
    if (fstat(j->fd, &sb) < 0)
        return op_error_set(err, -ESTALE, j->path, "%s cannot be checked (%s): upload stopped",
                            j->path, strerror(errno));
    if (sb.st_nlink == 0)
        return op_error_set(err, -ESTALE, j->path,
                            "%s was removed while uploading: upload stopped, nothing more is sent",
                            j->path);
    if ((uint64_t)sb.st_size < j->length)
        return op_error_set(err, -ESTALE, j->path,
                            "%s shrank to %lld of %llu bytes while uploading (voided): upload "
                            "stopped, nothing more is sent",
                            j->path, (long long)sb.st_size, (unsigned long long)j->length);
    return 0;
}

/* Makes the close of the current transfer's connection a reset: the
 * kernel then drops what it still holds to send instead of sending it.
 * Bytes of a voided file queued in the socket have not left yet, and must
 * not. */
static void reset_on_close(struct tus_client *c)
{
    /* The socket as curl_socket_cb last saw it for the upload's handle
     * (CURLINFO_ACTIVESOCKET answers only once a transfer is over). */
    if (c->upload_fd == CURL_SOCKET_BAD)
        return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(c->upload_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static size_t on_read(char *dst, size_t size, size_t n, void *userp)
{
    struct tus_client *c = userp;
    if (c->cur && file_voided(c->cur, &c->stale_err) < 0) {
        /* Not one more byte of a voided file: the transfer fails with
         * CURLE_ABORTED_BY_CALLBACK and on_request_done ends the job. */
        c->stale = 1;
        reset_on_close(c);
        return CURL_READFUNC_ABORT;
    }
    size_t want = size * n, left = c->chunk_len - c->chunk_pos;
    size_t take = want < left ? want : left;
    memcpy(dst, c->buf + c->chunk_pos, take);
    c->chunk_pos += take;
    return take;
}

/* curl rewinds the body to send it again by itself when a reused
 * connection dies before any answer. For a PATCH that is the wrong move:
 * the server may have stored the chunk and its answer was lost, and the
 * repeat would cost a whole chunk only to earn a 409. Refusing the rewind
 * fails the transfer instead, and the HEAD that follows finds out. */
static int on_seek(void *userp, curl_off_t off, int origin)
{
    (void)userp;
    (void)off;
    (void)origin;
    return CURL_SEEKFUNC_CANTSEEK;
}

/* Keeps the highest upload count curl reports: after a cut curl zeroes
 * its count when it tries to rewind the body (on_seek refuses), and the
 * bytes already sent must still be counted. */
static int on_xferinfo(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct tus_client *c = userp;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    if (ulnow > 0 && (uint64_t)ulnow > c->chunk_ul_max)
        c->chunk_ul_max = (uint64_t)ulnow;
    return 0;
}

static int add_hdr(struct tus_client *c, const char *h)
{
    struct curl_slist *n = curl_slist_append(c->hdrs, h);
    if (!n)
        return -ENOMEM;
    c->hdrs = n;
    return 0;
}

#define SET_ON(e, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK)                                             \
            return op_error_set(err, -EINVAL, #opt, "cannot set curl option %s", #opt);            \
    } while (0)
#define SET(opt, val) SET_ON(c->easy, opt, val)

/* What every request shares, uploads and GETs alike: protocols, TLS,
 * timeouts, the stall limit and the Authorization header. */
static int set_shared(struct tus_client *c, CURL *e, const char *url, char *errbuf,
                      struct curl_slist **hdrs, struct op_error *err)
{
    SET_ON(e, CURLOPT_URL, url);
    SET_ON(e, CURLOPT_PRIVATE, c);
    SET_ON(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET_ON(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET_ON(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET_ON(e, CURLOPT_FOLLOWLOCATION, 0L);
    SET_ON(e, CURLOPT_ERRORBUFFER, errbuf);
    SET_ON(e, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    SET_ON(e, CURLOPT_LOW_SPEED_LIMIT, c->cfg.stall_bytes_per_s);
    SET_ON(e, CURLOPT_LOW_SPEED_TIME, c->cfg.stall_seconds);
    SET_ON(e, CURLOPT_SSL_VERIFYPEER, c->cfg.insecure_skip_verify ? 0L : 1L);
    SET_ON(e, CURLOPT_SSL_VERIFYHOST, c->cfg.insecure_skip_verify ? 0L : 2L);
    SET_ON(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->ca_file)
        SET_ON(e, CURLOPT_CAINFO, c->ca_file);
    if (c->auth_hdr) {
        struct curl_slist *n = curl_slist_append(*hdrs, c->auth_hdr);
        if (!n)
            return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
        *hdrs = n;
    }
    return 0;
}

/* curl closes a connection: of a request that sends the file, what the
 * kernel still holds to send or to see acknowledged never left this host
 * (or is dropped with it), and is not counted as sent. */
static int on_close_socket(void *userp, curl_socket_t fd)
{
    struct tus_client *c = userp;
    if (fd == c->req_fd && SENDS_DATA(c->req) && !c->close_seen) {
        int n = 0;
        c->close_seen = 1;
        c->close_unacked = ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0 ? (uint64_t)n : 0;
    }
    if (fd == c->req_fd)
        c->req_fd = CURL_SOCKET_BAD;
    return close(fd);
}

static int set_common(struct tus_client *c, const char *url, struct op_error *err)
{
    int rc = set_shared(c, c->easy, url, c->errbuf, &c->hdrs, err);
    if (rc < 0)
        return rc;
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, c);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, c);
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, c);
    if (c->cfg.max_send_bps)
        SET(CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)c->cfg.max_send_bps);
    if (add_hdr(c, "Tus-Resumable: 1.0.0") || add_hdr(c, "Expect:"))
        return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
    return 0;
}

/* Reads the next chunk into c->buf and sets the PATCH headers. */
static int prepare_patch(struct tus_client *c, struct job *j, const char *method,
                         struct op_error *err)
{
    uint64_t left = j->length - j->offset;
    /* A server that keeps cut bytes loses only what is in flight at a cut,
     * so one PATCH carries all that is left: no round trip waits for the
     * answer to a chunk between two chunks. */
    size_t cap = c->cfg.server_keeps_cut_bytes ? c->cfg.max_chunk : c->chunk;
    if (j->chunk_cap && cap > j->chunk_cap)
        cap = (size_t)j->chunk_cap;
    size_t len = left < cap ? (size_t)left : cap;
    if (len > c->buf_cap) {
        unsigned char *nb = realloc(c->buf, len);
        if (!nb)
            return op_error_set(err, -ENOMEM, NULL, "out of memory for a %zu-byte chunk", len);
        c->buf = nb;
        c->buf_cap = len;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(j->fd, c->buf + got, len - got, (off_t)(j->offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return op_error_set(err, -EIO, j->path, "cannot read %s at offset %llu: %s", j->path,
                                (unsigned long long)(j->offset + got), strerror(errno));
        if (r == 0)
            return op_error_set(err, -ESTALE, j->path,
                                "%s shrank while uploading (ends before %llu bytes; voided): "
                                "upload stopped, nothing more is sent",
                                j->path, (unsigned long long)j->length);
        got += (size_t)r;
    }
    c->chunk_len = len;
    c->chunk_pos = 0;

    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(c->buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof md)
        return op_error_set(err, -EIO, NULL, "SHA-256 of the chunk failed");
    char sum[64], h[128];
    if (codec_b64_encode(md, sizeof md, 0, sum, sizeof sum) < 0)
        return op_error_set(err, -EIO, NULL, "checksum encoding failed");
    snprintf(h, sizeof h, "Upload-Checksum: sha256 %s", sum);
    if (add_hdr(c, h))
        return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
    snprintf(h, sizeof h, "Upload-Offset: %llu", (unsigned long long)j->offset);
    if ((strcmp(method, "PATCH") == 0 && add_hdr(c, h)) ||
        add_hdr(c, "Content-Type: application/offset+octet-stream"))
        return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");

    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_CUSTOMREQUEST, method);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    /* curl copies the body through a buffer of this size: the least it
     * allows, so that after a voided file is seen (on_read) at most this
     * much that was read before can still go out. */
    SET(CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    SET(CURLOPT_READFUNCTION, on_read);
    SET(CURLOPT_READDATA, c);
    SET(CURLOPT_SEEKFUNCTION, on_seek);
    SET(CURLOPT_SEEKDATA, c);
    c->chunk_ul_max = 0;
    SET(CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    SET(CURLOPT_XFERINFODATA, c);
    SET(CURLOPT_NOPROGRESS, 0L);
    return 0;
}

static int start_request(struct tus_client *c, enum req_kind kind, struct op_error *err)
{
    struct job *j = c->cur;
    curl_easy_reset(c->easy);
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    c->has_offset = c->has_length = c->bad_header = 0;
    c->location[0] = '\0';
    c->location_too_long = 0;
    c->hdr_done = 0;
    c->close_seen = 0;
    c->close_unacked = 0;
    c->body_len = 0;
    c->body[0] = '\0';
    c->errbuf[0] = '\0';
    c->receipt_len = 0;
    c->stale = 0;

    int post = kind == REQ_POST || kind == REQ_CREATE;
    int rc = set_common(c, post ? c->endpoint : j->url, err);
    if (rc < 0)
        return rc;
    if (post) {
        char h[TUS_KEY_MAX + 64];
        snprintf(h, sizeof h, "Upload-Length: %llu", (unsigned long long)j->length);
        if (add_hdr(c, h) || (!(kind == REQ_CREATE && j->with_data) && add_hdr(c, "Content-Type:")))
            return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
        snprintf(h, sizeof h, "Outpost-Upload-Key: %s", j->key ? j->key : "");
        if (kind == REQ_CREATE && add_hdr(c, h))
            return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
        if (j->meta) {
            char *m = malloc(strlen(j->meta) + 20);
            if (!m)
                return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
            snprintf(m, strlen(j->meta) + 20, "Upload-Metadata: %s", j->meta);
            rc = add_hdr(c, m);
            free(m);
            if (rc)
                return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
        }
        c->chunk_len = 0;
        if (kind == REQ_CREATE && j->with_data) {
            rc = prepare_patch(c, j, "POST", err);
            if (rc < 0)
                return rc;
        } else {
            SET(CURLOPT_POST, 1L);
            SET(CURLOPT_POSTFIELDS, "");
            SET(CURLOPT_POSTFIELDSIZE, 0L);
        }
    } else if (kind == REQ_HEAD) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        rc = prepare_patch(c, j, "PATCH", err);
        if (rc < 0)
            return rc;
    }
    SET(CURLOPT_HTTPHEADER, c->hdrs);
    c->req = kind;
    c->req_start_ms = now_ms(c);
    c->last_progress_ms = c->req_start_ms;
    c->progress_mark = 0;
    c->hdr_bytes = 0;
    c->acked_mark = c->last_ack_ms = 0;
    c->ack_seen = 0;
    if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK) {
        c->req = REQ_NONE;
        return op_error_set(err, -ENOMEM, NULL, "curl_multi_add_handle failed");
    }
    (void)uv_timer_start(&c->stall_timer, on_stall_tick, STALL_TICK_MS, STALL_TICK_MS);
    return 0;
}

/* ---- the upload state machine ---------------------------------------- */

static void free_job(struct job *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        (void)close(j->fd);
    free(j->path);
    free(j->url);
    free(j->meta);
    free(j->key);
    free(j->principal);
    free(j);
}

/* Ends the current upload and lines up the next one. */
static void finish_job(struct tus_client *c, int status, const struct op_error *e)
{
    struct job *j = c->cur;
    c->cur = NULL;
    c->held = 0;
    (void)uv_fs_event_stop(&c->watch);
    if (status == 0) {
        c->st.uploads_done++;
        /* the receipt came on the response that completed the upload */
        size_t rl = c->receipt_len;
        c->receipt_len = 0;
        if (rl && j->cb.on_receipt)
            j->cb.on_receipt(j->ctx, c->receipt, rl);
    } else {
        c->st.uploads_failed++;
        set_last_error(c, e);
    }
    j->cb.on_done(j->ctx, status, j->url, status ? e : NULL);
    free_job(j);
    if (!c->stopping && !c->cur && c->qhead)
        schedule(c, 0);
}

static void fail_job(struct tus_client *c, const struct op_error *e)
{
    finish_job(c, e->code, e);
}

/* ---- the control law: chunk size, retry delay, stall limit ----------- */

static size_t clamp_chunk(const struct tus_client *c, uint64_t n)
{
    if (n < c->cfg.min_chunk)
        return c->cfg.min_chunk;
    if (n > c->cfg.max_chunk)
        return c->cfg.max_chunk;
    return (size_t)n;
}

/* The bytes the link holds in one round trip at the measured rate: a chunk
 * shorter than this leaves the link idle for most of each PATCH. */
static uint64_t bdp_bytes(const struct tus_client *c)
{
    return c->rate_bps * c->srtt_ms / 1000;
}

/* A clean full chunk: double while below ssthresh (as TCP's slow start),
 * then add a step, so a link that cut once probes upwards gently. */
static void grow(struct tus_client *c)
{
    uint64_t n = c->chunk;
    if (n < c->ssthresh) {
        n *= 2;
        if (n > c->ssthresh)
            n = c->ssthresh;
    } else {
        uint64_t step = c->ssthresh / 4;
        n += step > c->cfg.min_chunk ? step : c->cfg.min_chunk;
    }
    c->chunk = clamp_chunk(c, n);
}

/* A chunk that took too long: halve it, but never below what keeps the
 * link busy for a round trip (that link does not cut; it is only slow). */
static void shrink_slow(struct tus_client *c)
{
    uint64_t n = c->chunk / 2, bdp = bdp_bytes(c);
    c->chunk = clamp_chunk(c, n > bdp ? n : bdp);
}

/* A connection was cut after it carried `carried` bytes that the server
 * kept: the next chunks get half of that, so most of them complete on a
 * connection of the same life. Nothing known to have arrived: halve. A
 * failure never grows the chunk. */
static void size_after_cut(struct tus_client *c, uint64_t carried)
{
    uint64_t n = carried ? carried / 2 : c->chunk / 2;
    size_t m = clamp_chunk(c, n);
    if (m < c->chunk)
        c->chunk = m;
    c->ssthresh = c->chunk;
}

static void rtt_sample(struct tus_client *c, uint64_t ms)
{
    if (ms == 0)
        ms = 1;
    c->srtt_ms = c->srtt_ms ? (3 * c->srtt_ms + ms) / 4 : ms;
}

static void rate_sample(struct tus_client *c, uint64_t bytes, uint64_t ms)
{
    if (ms == 0)
        ms = 1;
    uint64_t bps = bytes * 1000 / ms;
    if (bps == 0)
        bps = 1;
    c->rate_bps = c->rate_bps ? (3 * c->rate_bps + bps) / 4 : bps;
}

/* Full jitter: a uniform delay in [0, min(cap, base * 2^attempt)]. */
static uint64_t backoff_ms(struct tus_client *c, unsigned attempt)
{
    uint64_t ceil = c->cfg.backoff_base_ms;
    for (unsigned i = 0; i < attempt && ceil < c->cfg.backoff_max_ms; i++)
        ceil *= 2;
    if (ceil > c->cfg.backoff_max_ms)
        ceil = c->cfg.backoff_max_ms;
    uint64_t r = c->cfg.rng(c->cfg.rng_ctx);
    return ((ceil + 1) * r) >> 32;
}

/* A transient failure: forget the offset (unless the server told us it is
 * unchanged, as with 460) and try again. `cut`: the link broke after it
 * carried bytes (a PATCH body flowed, or the offset moved since the last
 * failure): the link works, HQ is up, so reconnect at once with a small
 * jitter, and size the chunk from what the connection carried once the
 * HEAD tells. Anything else (connects failing, a request failing with no
 * byte through, an error answer) backs off exponentially. A link that
 * takes bytes but never moves the offset gets QUICK_MAX quick tries and
 * then backs off as well. */
static void retry(struct tus_client *c, int keep_offset, int cut, const struct op_error *e)
{
    struct job *j = c->cur;
    if (!keep_offset)
        j->offset_known = 0;
    int quick = 0;
    if (cut) {
        if (j->offset > j->fail_offset)
            j->quick = 0;
        if (j->quick < QUICK_MAX) {
            quick = 1;
            j->quick++;
        }
        c->resize_pending = 1;
        c->resize_carried = c->conn_confirmed;
    }
    j->fail_offset = j->offset;
    set_last_error(c, e);
    uint64_t delay;
    unsigned attempt;
    if (quick) {
        /* The first cut since the offset last moved: the link carried bytes
         * up to it, so reconnect now. Cuts in a row without a gain are
         * spread by a jitter, as many nodes may lose the same link. */
        delay = j->quick == 1
                    ? 0
                    : ((c->cfg.quick_retry_ms + 1) * (uint64_t)c->cfg.rng(c->cfg.rng_ctx)) >> 32;
        attempt = j->quick;
    } else {
        delay = backoff_ms(c, j->attempt);
        attempt = ++j->attempt;
    }
    c->st.retries++;
    if (j->cb.on_retry)
        j->cb.on_retry(j->ctx, attempt, delay, e);
    if (c->stopping)
        return;
    schedule(c, delay);
}

/* The server stated its offset: credit what our PATCHes gained, count what
 * they sent beyond it as re-sent. Returns -1 if the offset is impossible. */
static int learn_offset(struct tus_client *c, uint64_t off)
{
    struct job *j = c->cur;
    if (off > j->length)
        return -1;
    uint64_t gained = 0;
    if (j->baseline_known && off > j->offset)
        gained = off - j->offset;
    if (gained)
        j->attempt = 0;
    c->st.bytes_confirmed += gained;
    c->st.bytes_resent += j->pending_sent > gained ? j->pending_sent - gained : 0;
    j->pending_sent = 0;
    int changed = !j->baseline_known || off != j->offset;
    j->offset = off;
    j->offset_known = 1;
    j->baseline_known = 1;
    if (changed && j->cb.on_progress)
        j->cb.on_progress(j->ctx, off, j->length);
    return 0;
}

/* Bytes the kernel still holds to send or to see acknowledged on the
 * upload's connection; 0 when unknown. */
static uint64_t unacked_bytes(const struct tus_client *c)
{
    int n = 0;
    if (c->upload_fd == CURL_SOCKET_BAD || ioctl(c->upload_fd, SIOCOUTQ, &n) < 0 || n < 0)
        return 0;
    return (uint64_t)n;
}

/* What a stall verdict weighed, for its message: which term set the
 * limit, and the measurements behind it. */
struct stall_terms {
    const char *rule;
    uint64_t rtt;      /* ms */
    uint64_t inflight; /* bytes that left this host and the rate has not carried yet */
    uint64_t queued;   /* bytes still in this host's send queue */
    uint64_t grace;    /* ms added for HQ's answer to a completed upload */
};

/* The round trip the limits count in: the smoothed one; before any was
 * measured, the connect of the request in flight (a TCP handshake takes
 * one round trip); 0 when neither is known. */
static uint64_t stall_rtt(const struct tus_client *c)
{
    if (c->srtt_ms)
        return c->srtt_ms;
    curl_off_t us = 0;
    if (curl_easy_getinfo(c->easy, CURLINFO_CONNECT_TIME_T, &us) != CURLE_OK || us <= 0)
        return 0;
    return (uint64_t)us >= 1000 ? (uint64_t)us / 1000 : 1;
}

/* HQ's answer to a completed upload came `elapsed` ms after the PATCH
 * began: what the link needed to carry its `len` bytes at the measured
 * rate and a round trip is the link's, the rest HQ's verify and apply.
 * The longest wait is kept, and forgotten slowly. */
static void answer_wait_sample(struct tus_client *c, uint64_t elapsed, uint64_t len)
{
    if (!c->srtt_ms || !c->rate_bps)
        return;
    uint64_t link = len * 1000 / c->rate_bps + c->srtt_ms;
    uint64_t w = elapsed > link ? elapsed - link : 0;
    c->answer_wait_ms = w >= c->answer_wait_ms ? w : (7 * c->answer_wait_ms + w) / 8;
    if (!c->answer_wait_ms)
        c->answer_wait_ms = 1; /* measured: HQ answers at once */
}

/* A HEAD after a completing PATCH was abandoned while HQ should have been
 * answering: if the upload is complete, the silence was HQ's processing,
 * which took at least as long as the client waited, so the answer wait
 * is at least that (the next completed upload is not abandoned the same
 * way). */
static void answer_wait_after_stall(struct tus_client *c, int complete)
{
    if (complete && c->final_stall_ms > c->answer_wait_ms)
        c->answer_wait_ms = c->final_stall_ms;
    c->final_stall_ms = 0;
}

/* How long the request in flight may go without progress (a byte written
 * to the connection or a byte of answer): three round trips; for a
 * request that sends the file, the time the observed rate needs to carry
 * what left this host (written, less what the kernel's send queue still
 * holds) beyond what it could have carried by the last progress (it waits
 * in buffers on the way, and a deep buffer takes all of a chunk at once),
 * a quarter more and two round trips for the answer, if that is longer;
 * within [stall_min_ms, stall_seconds]. Before a round trip is known, and
 * for a request that sends the file before a rate is known, the ceiling.
 * Once the completing chunk has reached HQ (the rate says it has, and the
 * peer acknowledged every byte), twice HQ's measured answer wait more
 * (FINAL_WAIT_MS until one was measured): HQ verifies and applies the
 * whole upload before it answers. */
static uint64_t stall_limit(const struct tus_client *c, uint64_t now, uint64_t up,
                            struct stall_terms *st)
{
    uint64_t ceil = (uint64_t)c->cfg.stall_seconds * 1000, floor = c->cfg.stall_min_ms;
    if (floor > ceil)
        floor = ceil;
    uint64_t rtt = stall_rtt(c);
    st->rtt = rtt;
    if (!rtt) {
        st->rule = "ceiling, no round trip measured";
        return ceil;
    }
    uint64_t lim = 3 * rtt;
    st->rule = "3 round trips";
    if (SENDS_DATA(c->req)) {
        const struct job *j = c->cur;
        if (!c->rate_bps) {
            st->rule = "ceiling, no rate measured";
            return ceil;
        }
        uint64_t lp =
            c->last_progress_ms > c->req_start_ms ? c->last_progress_ms - c->req_start_ms : 0;
        uint64_t drained = c->rate_bps * lp / 1000;
        /* what our own kernel still holds is not on the way: a PATCH that
         * carries a whole upload has most of it there */
        uint64_t queued = unacked_bytes(c), left_host = up > queued ? up - queued : 0;
        uint64_t inflight = left_host > drained ? left_host - drained : 0;
        st->inflight = inflight;
        st->queued = queued;
        uint64_t carry = inflight * 1000 / c->rate_bps;
        uint64_t need = carry + carry / 4 + 2 * rtt;
        if (need > lim) {
            lim = need;
            st->rule = "rate";
        }
        uint64_t t = now > c->req_start_ms ? now - c->req_start_ms : 0;
        if (j && j->offset + c->chunk_len == j->length && up >= c->chunk_len &&
            up <= c->rate_bps * t / 1000 && !queued) {
            st->grace = c->answer_wait_ms ? 2 * c->answer_wait_ms : FINAL_WAIT_MS;
            lim += st->grace;
        }
    }
    if (lim < floor) {
        lim = floor;
        st->rule = "floor";
    }
    if (lim > ceil) {
        lim = ceil;
        st->rule = "ceiling";
    }
    return lim;
}

static void on_request_done(struct tus_client *c, CURLcode res);

static void on_stall_tick(uv_timer_t *t)
{
    struct tus_client *c = t->data;
    if (c->stopping || c->req == REQ_NONE || !c->cur) {
        (void)uv_timer_stop(t);
        return;
    }
    uint64_t now = now_ms(c);
    curl_off_t pre = 0, up = 0, dn = 0;
    (void)curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
    if (pre <= 0) {
        /* Still connecting: connect_timeout_ms is the limit there. */
        c->last_progress_ms = now;
        return;
    }
    (void)curl_easy_getinfo(c->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    (void)curl_easy_getinfo(c->easy, CURLINFO_SIZE_DOWNLOAD_T, &dn);
    uint64_t u = up > 0 ? (uint64_t)up : 0;
    if (u < c->chunk_ul_max)
        u = c->chunk_ul_max;
    uint64_t mark = u + (dn > 0 ? (uint64_t)dn : 0) + c->hdr_bytes;
    uint64_t queued = SENDS_DATA(c->req) ? unacked_bytes(c) : 0;
    if (SENDS_DATA(c->req)) {
        uint64_t acked = u > queued ? u - queued : 0;
        if (!c->ack_seen || acked != c->acked_mark) {
            uint64_t gap = c->ack_seen && now > c->last_ack_ms ? now - c->last_ack_ms : 0;
            if (gap > c->link_ack_gap_ms)
                c->link_ack_gap_ms = gap;
            c->ack_seen = 1;
            c->acked_mark = acked;
            c->last_ack_ms = now;
        }
    }
    if (mark != c->progress_mark) {
        c->progress_mark = mark;
        c->last_progress_ms = now;
    }
    /* Bytes wait in this host's send queue and the next hop acknowledges
     * none of them. A live link acknowledges as its buffers drain, in
     * steps when a buffer stops taking bytes until it is half empty (a
     * proxy's backpressure), so at most the time the measured rate needs
     * to carry what left this host and is not yet carried (once, where
     * the no-progress rule waits twice that), nor less than twice the
     * longest wait between acknowledgements this link has shown. Before a
     * round trip and a rate are measured, only the no-progress rule. */
    uint64_t ack_lim = 0, ack_inflight = 0;
    if (queued > 0 && c->ack_seen && c->srtt_ms && c->rate_bps && !dn && !c->hdr_bytes) {
        uint64_t floor = c->cfg.stall_min_ms, ceil = (uint64_t)c->cfg.stall_seconds * 1000;
        uint64_t lp = c->last_ack_ms > c->req_start_ms ? c->last_ack_ms - c->req_start_ms : 0;
        uint64_t drained = c->rate_bps * lp / 1000;
        uint64_t inflight = c->acked_mark > drained ? c->acked_mark - drained : 0;
        ack_inflight = inflight;
        ack_lim = inflight * 1000 / c->rate_bps;
        if (ack_lim < 3 * c->srtt_ms)
            ack_lim = 3 * c->srtt_ms;
        if (ack_lim < 2 * c->link_ack_gap_ms)
            ack_lim = 2 * c->link_ack_gap_ms;
        if (ack_lim < floor)
            ack_lim = floor;
        if (ack_lim > ceil)
            ack_lim = ceil;
    }
    if (ack_lim && now >= c->last_ack_ms && now - c->last_ack_ms >= ack_lim) {
        snprintf(c->errbuf, sizeof c->errbuf,
                 "stalled: nothing acknowledged for %llu ms with %llu bytes queued (limit %llu ms: "
                 "%llu in flight, longest ack gap %llu ms, %llu ms round trip, %llu B/s)",
                 (unsigned long long)(now - c->last_ack_ms), (unsigned long long)queued,
                 (unsigned long long)ack_lim, (unsigned long long)ack_inflight,
                 (unsigned long long)c->link_ack_gap_ms, (unsigned long long)c->srtt_ms,
                 (unsigned long long)c->rate_bps);
        c->last_progress_ms = c->last_ack_ms;
    } else {
        if (c->last_progress_ms == now)
            return;
        struct stall_terms st = {0};
        uint64_t lim = stall_limit(c, now, u, &st);
        if (now < c->last_progress_ms || now - c->last_progress_ms < lim)
            return;
        c->final_stall_ms = st.grace ? now - c->last_progress_ms : 0;
        snprintf(c->errbuf, sizeof c->errbuf,
                 "stalled: no progress for %llu ms (limit %llu ms by %s: %llu bytes in flight, "
                 "%llu queued, answer wait %llu ms, %llu ms round trip, %llu B/s)",
                 (unsigned long long)(now - c->last_progress_ms), (unsigned long long)lim, st.rule,
                 (unsigned long long)st.inflight, (unsigned long long)st.queued,
                 (unsigned long long)st.grace, (unsigned long long)st.rtt,
                 (unsigned long long)c->rate_bps);
    }
    /* A request abandoned with body bytes still in this host's send queue
     * closes with a reset, so they are dropped, not delivered later (a
     * held link that opens after the file was voided). */
    if (SENDS_DATA(c->req))
        reset_on_close(c);
    (void)curl_multi_remove_handle(c->multi, c->easy);
    on_request_done(c, CURLE_OPERATION_TIMEDOUT);
}

static int is_cert_error(CURLcode r)
{
    return r == CURLE_PEER_FAILED_VERIFICATION || r == CURLE_SSL_CACERT_BADFILE ||
           r == CURLE_SSL_ISSUER_ERROR || r == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
           r == CURLE_SSL_INVALIDCERTSTATUS;
}

/* Maps a final HTTP status that is not retried to an error. */
static void permanent(struct tus_client *c, const char *what, long code, struct op_error *e)
{
    int rc = code == 401 || code == 403 ? -EACCES : code == 413 ? -EFBIG : -EPROTO;
    op_error_set(e, rc, "status", "%s %s answered %ld%s%s", what,
                 c->cur->url && strcmp(what, "POST") ? c->cur->url : c->endpoint, code,
                 c->body_len ? ": " : "", c->body);
}

static int transient_status(long code)
{
    return code >= 500 || code == 409 || code == 423 || code == 408 || code == 429;
}

static void on_post_done(struct tus_client *c, long code)
{
    struct job *j = c->cur;
    struct op_error e;
    op_error_clear(&e);
    if (transient_status(code)) {
        op_error_set(&e, -EAGAIN, "status", "POST %s answered %ld", c->endpoint, code);
        retry(c, 0, 0, &e);
        return;
    }
    if (code != 201) {
        permanent(c, "POST", code, &e);
        fail_job(c, &e);
        return;
    }
    if (!c->location[0] || c->location_too_long) {
        op_error_set(&e, -EPROTO, "Location", "POST %s answered 201 without a usable Location",
                     c->endpoint);
        fail_job(c, &e);
        return;
    }
    /* Location may be relative to the endpoint. */
    CURLU *u = curl_url();
    char *abs = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, c->endpoint, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_URL, c->location, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &abs, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        op_error_set(&e, -EPROTO, "Location", "POST %s answered an invalid Location \"%s\"",
                     c->endpoint, c->location);
        fail_job(c, &e);
        return;
    }
    curl_url_cleanup(u);
    if (c->endpoint_https && strncasecmp(abs, "https://", 8) != 0) {
        op_error_set(&e, -EPROTO, "Location",
                     "POST %s answered a Location that leaves https: \"%s\"", c->endpoint, abs);
        curl_free(abs);
        fail_job(c, &e);
        return;
    }
    free(j->url);
    j->url = strdup(abs);
    curl_free(abs);
    if (!j->url) {
        op_error_set(&e, -ENOMEM, NULL, "out of memory");
        fail_job(c, &e);
        return;
    }
    j->attempt = 0;
    j->offset = 0;
    j->offset_known = 1;
    j->baseline_known = 1;
    j->pending_sent = 0;
    if (j->cb.on_created && j->cb.on_created(j->ctx, j->url) == TUS_CREATED_HOLD) {
        c->held = 1; /* no byte before the caller has persisted the URL */
        return;
    }
    if (c->stopping)
        return;
    schedule(c, 0);
}

void tus_client_resume(struct tus_client *c)
{
    if (!c || c->stopping || !c->held)
        return;
    c->held = 0;
    if (c->cur && c->req == REQ_NONE)
        schedule(c, 0);
}

void tus_client_measured(const struct tus_client *c, uint64_t *srtt_ms, uint64_t *rate_bps)
{
    *srtt_ms = c ? c->srtt_ms : 0;
    *rate_bps = c ? c->rate_bps : 0;
}

void tus_client_seed(struct tus_client *c, uint64_t srtt_ms, uint64_t rate_bps)
{
    if (!c)
        return;
    if (!c->srtt_ms && srtt_ms)
        c->srtt_ms = srtt_ms;
    if (!c->rate_bps && rate_bps)
        c->rate_bps = rate_bps;
}

void tus_client_hold(struct tus_client *c)
{
    if (c && !c->stopping && c->cur)
        c->held = 1;
}

void tus_client_set_chunk_cap(struct tus_client *c, uint64_t cap)
{
    if (c && c->cur)
        c->cur->chunk_cap = cap;
}

static void on_patch_done(struct tus_client *c, long code, uint64_t elapsed);

/* The answer to a creation that carried the upload's first bytes. */
static void on_create_done(struct tus_client *c, long code, uint64_t elapsed)
{
    struct job *j = c->cur;
    struct op_error e;
    op_error_clear(&e);
    if (code == 400 || code == 415 || code == 409) {
        /* 400/415: a server without creation-with-upload (it refuses a
         * body on POST); 409: the key names an upload of other length or
         * metadata. Either way a plain creation, which the server names,
         * reported through on_created before any byte. */
        if (code != 409)
            c->no_create_data = 1;
        c->st.bytes_resent += j->pending_sent;
        j->pending_sent = 0;
        free(j->key);
        j->key = NULL;
        free(j->url);
        j->url = NULL;
        j->must_create = 0;
        j->offset_known = 0;
        j->baseline_known = 0;
        schedule(c, 0);
        return;
    }
    if (code == 201) {
        j->must_create = 0;
        CURLU *u = curl_url();
        char *abs = NULL;
        int ok = u && c->location[0] && !c->location_too_long &&
                 curl_url_set(u, CURLUPART_URL, c->endpoint, 0) == CURLUE_OK &&
                 curl_url_set(u, CURLUPART_URL, c->location, 0) == CURLUE_OK &&
                 curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK &&
                 (!c->endpoint_https || strncasecmp(abs, "https://", 8) == 0);
        curl_url_cleanup(u);
        if (ok && strcmp(abs, j->url) != 0) {
            /* A server that ignores the key named the upload itself: that
             * name is reported, and nothing more is sent before the
             * caller has it; plain creations from now on. */
            c->no_create_data = 1;
            char *nu = strdup(abs);
            curl_free(abs);
            if (!nu) {
                op_error_set(&e, -ENOMEM, NULL, "out of memory");
                fail_job(c, &e);
                return;
            }
            free(j->url);
            j->url = nu;
            j->offset_known = 0; /* HEAD after the caller recorded it */
            if (j->cb.on_created && j->cb.on_created(j->ctx, j->url) == TUS_CREATED_HOLD) {
                c->held = 1;
                return;
            }
            if (!c->stopping && c->cur == j)
                schedule(c, 0);
            return;
        }
        curl_free(abs);
        if (!ok) {
            op_error_set(&e, -EPROTO, "Location", "POST %s answered 201 without a usable Location",
                         c->endpoint);
            fail_job(c, &e);
            return;
        }
        if (c->has_offset && !c->bad_header && c->resp_offset <= j->length &&
            (!c->chunk_len || c->resp_offset != j->offset + c->chunk_len)) {
            /* Without data; or the upload existed already (the same
             * creation before), the body was not taken, and its offset
             * is not our gain. */
            c->st.bytes_resent += j->pending_sent;
            j->pending_sent = 0;
            if (c->chunk_len || c->resp_offset != j->offset)
                j->baseline_known = 0;
            (void)learn_offset(c, c->resp_offset);
            if (c->stopping || c->cur != j)
                return;
            if (!j->with_data && j->cb.on_created &&
                j->cb.on_created(j->ctx, j->url) == TUS_CREATED_HOLD) {
                c->held = 1; /* no byte before the caller has the URL */
                return;
            }
            if (!c->stopping && c->cur == j)
                schedule(c, 0);
            return;
        }
        on_patch_done(c, 204, elapsed);
        return;
    }
    if (code == 460) {
        j->must_create = 0; /* created; the bytes were refused */
        on_patch_done(c, code, elapsed);
        return;
    }
    if (transient_status(code)) {
        op_error_set(&e, -EAGAIN, "status", "POST %s answered %ld", c->endpoint, code);
        retry(c, 0, 0, &e);
        return;
    }
    permanent(c, "POST", code, &e);
    fail_job(c, &e);
}

static void on_head_done(struct tus_client *c, long code)
{
    struct job *j = c->cur;
    struct op_error e;
    op_error_clear(&e);
    if (code == 404 || code == 410) {
        /* The server forgot the upload (expired): start over, which is the
         * only way forward. */
        free(j->url);
        j->url = NULL;
        j->offset_known = 0;
        j->baseline_known = 0;
        schedule(c, 0);
        return;
    }
    if (transient_status(code)) {
        op_error_set(&e, -EAGAIN, "status", "HEAD %s answered %ld", j->url, code);
        retry(c, 0, 0, &e);
        return;
    }
    if (code != 200 && code != 204) {
        permanent(c, "HEAD", code, &e);
        fail_job(c, &e);
        return;
    }
    if (!c->has_offset || c->bad_header || (c->has_length && c->resp_length != j->length)) {
        op_error_set(&e, -EPROTO, "Upload-Offset",
                     "HEAD %s: no valid Upload-Offset, or Upload-Length is not %llu", j->url,
                     (unsigned long long)j->length);
        fail_job(c, &e);
        return;
    }
    uint64_t gained =
        j->baseline_known && c->resp_offset > j->offset ? c->resp_offset - j->offset : 0;
    int complete = c->resp_offset == j->length; /* j may be gone after learn_offset */
    if (learn_offset(c, c->resp_offset) < 0) {
        op_error_set(&e, -EPROTO, "Upload-Offset", "HEAD %s: offset %llu beyond length %llu",
                     j->url, (unsigned long long)c->resp_offset, (unsigned long long)j->length);
        fail_job(c, &e);
        return;
    }
    answer_wait_after_stall(c, complete);
    if (c->resize_pending) {
        /* What the cut connection carried: its confirmed chunks, and what
         * of the cut one the server kept. */
        c->resize_pending = 0;
        size_after_cut(c, c->resize_carried + gained);
        /* What the server kept of the cut PATCH over the time it was
         * written is a rate sample too: with PATCHes that carry a whole
         * upload on a cutting link, few end whole, and without a rate the
         * stall limit stays at its ceiling. */
        if (gained && c->cut_busy_ms)
            rate_sample(c, gained, c->cut_busy_ms);
        c->cut_busy_ms = 0;
    }
    if (c->stopping)
        return;
    schedule(c, 0);
}

static void on_patch_done(struct tus_client *c, long code, uint64_t elapsed)
{
    struct job *j = c->cur;
    struct op_error e;
    op_error_clear(&e);
    if (code == 460) {
        c->st.checksum_mismatches++;
        j->mismatches++;
        if (j->mismatches >= c->cfg.max_checksum_mismatches) {
            op_error_set(&e, -EIO, "Upload-Checksum",
                         "PATCH %s: %u checksum mismatches in a row at offset %llu", j->url,
                         j->mismatches, (unsigned long long)j->offset);
            fail_job(c, &e);
            return;
        }
        /* The server discarded the chunk and its offset is unchanged. */
        c->st.bytes_resent += j->pending_sent;
        j->pending_sent = 0;
        op_error_set(&e, -EAGAIN, "Upload-Checksum", "PATCH %s answered 460 at offset %llu", j->url,
                     (unsigned long long)j->offset);
        /* Damaged in transit: a smaller chunk costs less to send again. */
        c->chunk = clamp_chunk(c, c->chunk / 2);
        retry(c, 1, 0, &e);
        return;
    }
    if (code == 404 || code == 410) {
        free(j->url);
        j->url = NULL;
        j->offset_known = 0;
        j->baseline_known = 0;
        c->st.bytes_resent += j->pending_sent;
        j->pending_sent = 0;
        schedule(c, 0);
        return;
    }
    if (transient_status(code)) {
        op_error_set(&e, -EAGAIN, "status", "PATCH %s answered %ld at offset %llu", j->url, code,
                     (unsigned long long)j->offset);
        retry(c, 0, 0, &e);
        return;
    }
    if (code != 204 && code != 200) {
        permanent(c, "PATCH", code, &e);
        fail_job(c, &e);
        return;
    }
    uint64_t before = j->offset;
    if (!c->has_offset || c->bad_header || c->resp_offset < before ||
        c->resp_offset > before + c->chunk_len) {
        /* Not a usable answer: ask the server where it stands. */
        op_error_set(&e, -EAGAIN, "Upload-Offset", "PATCH %s: missing or impossible Upload-Offset",
                     j->url);
        retry(c, 0, 0, &e);
        return;
    }
    size_t sent_len = c->chunk_len;
    /* j may be gone after learn_offset (its progress callback may cancel) */
    int completes = c->resp_offset == before + sent_len && c->resp_offset == j->length;
    j->mismatches = 0;
    c->conn_confirmed += c->resp_offset - before;
    (void)learn_offset(c, c->resp_offset);
    if (c->stopping)
        return;
    if (completes)
        answer_wait_sample(c, elapsed, sent_len);
    if (c->resp_offset == before + sent_len) {
        /* The answer's round trip is not the link's rate: take it out when
         * the chunk clearly outlasted it. */
        uint64_t busy = elapsed > 2 * c->srtt_ms ? elapsed - c->srtt_ms : elapsed;
        rate_sample(c, sent_len, busy);
    }
    /* Grow while a chunk lasts less than a few round trips (the link idles
     * between chunks) or than fast_chunk_ms; shrink past four times that. */
    uint64_t fast = c->cfg.fast_chunk_ms, rtts = FAST_RTTS * c->srtt_ms;
    if (rtts > fast)
        fast = rtts;
    uint64_t slow = c->cfg.slow_chunk_ms > 4 * fast ? c->cfg.slow_chunk_ms : 4 * fast;
    if (elapsed > slow)
        shrink_slow(c);
    else if (elapsed < fast && sent_len == c->chunk && c->resp_offset == before + sent_len)
        grow(c);
    schedule(c, 0);
}

/* The body bytes of the PATCH that just ended: what curl reports as
 * uploaded, or the most it reported during the transfer (on_xferinfo)
 * when a cut made it zero the count. */
static uint64_t patch_bytes_sent(struct tus_client *c)
{
    curl_off_t up = 0;
    (void)curl_easy_getinfo(c->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    uint64_t u = up > 0 ? (uint64_t)up : 0;
    if (u < c->chunk_ul_max)
        u = c->chunk_ul_max;
    /* what the kernel still held when the connection closed never left */
    if (c->close_seen) {
        u = u > c->close_unacked ? u - c->close_unacked : 0;
        c->close_unacked = 0;
        c->close_seen = 0;
    }
    return u;
}

static void on_request_done(struct tus_client *c, CURLcode res)
{
    struct job *j = c->cur;
    enum req_kind kind = c->req;
    c->req = REQ_NONE;
    (void)uv_timer_stop(&c->stall_timer);
    long code = 0, connects = 0;
    (void)curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
    (void)curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &connects);
    if (connects > 0)
        c->conn_confirmed = 0; /* a new connection: it has carried nothing yet */
    uint64_t sent = 0;
    if (SENDS_DATA(kind)) {
        sent = patch_bytes_sent(c);
        c->st.bytes_sent += sent;
        j->pending_sent += sent;
    }
    uint64_t now = now_ms(c);
    uint64_t elapsed = now > c->req_start_ms ? now - c->req_start_ms : 0;
    if (res == CURLE_OK && code > 0 && !SENDS_DATA(kind)) {
        /* A HEAD or POST answer takes one round trip, plus the connect
         * (TCP, TLS) when the request opened the connection. */
        curl_off_t conn_us = 0;
        if (connects > 0 &&
            (curl_easy_getinfo(c->easy, CURLINFO_APPCONNECT_TIME_T, &conn_us) != CURLE_OK ||
             conn_us <= 0))
            (void)curl_easy_getinfo(c->easy, CURLINFO_CONNECT_TIME_T, &conn_us);
        uint64_t conn_ms = connects > 0 && conn_us > 0 ? (uint64_t)conn_us / 1000 : 0;
        rtt_sample(c, elapsed > conn_ms ? elapsed - conn_ms : elapsed);
    }
    const char *what = kind == REQ_POST || kind == REQ_CREATE ? "POST"
                       : kind == REQ_HEAD                     ? "HEAD"
                                                              : "PATCH";
    const char *url = kind == REQ_POST || kind == REQ_CREATE ? c->endpoint : j->url;
    struct op_error e;
    op_error_clear(&e);
    if (c->stale) {
        /* The file was voided mid-chunk: no retry, no HEAD. */
        c->stale = 0;
        fail_job(c, &c->stale_err);
        return;
    }
    /* curl calls an answer whose connection closed after some header
     * lines but before the blank line that ends them complete, with the
     * status of its first line: the link cut it, and what is missing
     * (Location, Upload-Offset) was never said. */
    int answer_cut = res == CURLE_OK && code > 0 && !c->hdr_done;
    if (answer_cut)
        res = CURLE_PARTIAL_FILE;
    if (res != CURLE_OK) {
        const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
        char why[160];
        if (answer_cut) {
            snprintf(why, sizeof why, "answer cut in its headers (after \"%ld\")", code);
            detail = why;
        } else if (res == CURLE_SEND_FAIL_REWIND) {
            /* A kept connection closed before any answer: curl would send
             * the body again on a new one, which on_seek refuses. */
            detail = "connection closed before the answer; the body is not sent again, a "
                     "HEAD learns what arrived";
        }
        if (is_cert_error(res)) {
            op_error_set(&e, -EPERM, "tls", "%s %s: TLS certificate not trusted: %s", what, url,
                         detail);
            fail_job(c, &e);
        } else if (res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_URL_MALFORMAT) {
            op_error_set(&e, -EINVAL, "url", "%s %s: %s", what, url, detail);
            fail_job(c, &e);
        } else {
            op_error_set(&e, -EAGAIN, "network", "%s %s: %s", what, url, detail);
            /* Bytes went through before the break: a cut, not a dead HQ.
             * So is an answer cut short (HQ answered), and a kept
             * connection that died under a request (it carried the last
             * one). */
            int cut = (SENDS_DATA(kind) && sent > 0) || j->offset > j->fail_offset || answer_cut ||
                      res == CURLE_SEND_FAIL_REWIND;
            /* how long the body went, for a rate sample at the HEAD: to
             * the cut. Of a stall nobody knows when the link went silent
             * (the last progress is when the buffers on the way were full,
             * which on a fresh connection is at once), so no sample. */
            c->cut_busy_ms = 0;
            if (SENDS_DATA(kind) && sent > 0 && res != CURLE_OPERATION_TIMEDOUT)
                c->cut_busy_ms = now > c->req_start_ms ? now - c->req_start_ms : 1;
            /* Bytes of a creation went: the upload exists, and a HEAD
             * learns how far (a POST again would send them again). */
            if (kind == REQ_CREATE && sent > 0)
                j->must_create = 0;
            retry(c, 0, cut, &e);
        }
        return;
    }
    if (kind == REQ_POST)
        on_post_done(c, code);
    else if (kind == REQ_CREATE)
        on_create_done(c, code, elapsed);
    else if (kind == REQ_HEAD)
        on_head_done(c, code);
    else
        on_patch_done(c, code, elapsed);
}

static void check_multi_info(struct tus_client *c)
{
    CURLMsg *m;
    int pending;
    while (!c->stopping && (m = curl_multi_info_read(c->multi, &pending))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode res = m->data.result;
        CURL *easy = m->easy_handle;
        (void)curl_multi_remove_handle(c->multi, easy);
        if (easy == c->get_easy) {
            if (c->gcur)
                on_get_done(c, res);
        } else if (c->req != REQ_NONE && c->cur) {
            on_request_done(c, res);
        }
    }
}

/* The current upload's file changed on disk (inotify): if its owner voided
 * it, stop now rather than at curl's next read, which may not come before
 * the kernel has sent the whole chunk curl already wrote to the socket. */
static void on_file_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    struct tus_client *c = h->data;
    (void)name;
    (void)events;
    if (status < 0 || c->stopping || !c->cur || c->cur->fd < 0)
        return;
    struct op_error e;
    op_error_clear(&e);
    if (file_voided(c->cur, &e) == 0)
        return;
    (void)uv_fs_event_stop(&c->watch);
    if (c->req != REQ_NONE) {
        if (SENDS_DATA(c->req)) {
            uint64_t up = patch_bytes_sent(c);
            c->st.bytes_sent += up;
            c->st.bytes_resent += up;
        }
        reset_on_close(c);
        (void)curl_multi_remove_handle(c->multi, c->easy);
        c->req = REQ_NONE;
    }
    (void)uv_timer_stop(&c->step_timer);
    c->stale = 0;
    fail_job(c, &e);
}

/* Sets j->url to the name of the upload j->key creates, and marks the
 * creation as owed: the offset is 0 until the server says otherwise. */
static int name_upload(struct tus_client *c, struct job *j, struct op_error *e)
{
    char id[TUS_ID_LEN + 1];
    if (tus_upload_id(j->principal, j->key, id) < 0)
        return op_error_set(e, -EINVAL, "upload_key", "cannot name the upload for key %s", j->key);
    size_t n = strlen(c->endpoint);
    const char *sep = n && c->endpoint[n - 1] == '/' ? "" : "/";
    size_t cap = n + sizeof id + 2;
    char *url = malloc(cap);
    if (!url)
        return op_error_set(e, -ENOMEM, NULL, "out of memory");
    snprintf(url, cap, "%s%s%s", c->endpoint, sep, id);
    free(j->url);
    j->url = url;
    j->must_create = 1;
    j->offset = 0;
    j->offset_known = 1;
    j->baseline_known = 1;
    j->pending_sent = 0;
    j->attempt = 0;
    return 0;
}

/* Appends '.' and the first 128 bits of the file's SHA-256 (hex) to
 * j->key: the same key never names other content. */
static int key_with_digest(struct job *j, struct op_error *e)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(m);
        return op_error_set(e, -ENOMEM, NULL, "out of memory for a digest");
    }
    unsigned char b[65536];
    uint64_t off = 0;
    int rc = 0;
    while (off < j->length && rc == 0) {
        ssize_t r = pread(j->fd, b, sizeof b, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || EVP_DigestUpdate(m, b, (size_t)r) != 1)
            rc = op_error_set(e, -EIO, j->path, "cannot read %s to name its upload", j->path);
        else
            off += (uint64_t)r;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(m, d, &dl) != 1 || dl < 16))
        rc = op_error_set(e, -EIO, NULL, "SHA-256 of %s failed", j->path);
    EVP_MD_CTX_free(m);
    if (rc < 0)
        return rc;
    size_t kl = strlen(j->key);
    char *k = malloc(kl + 34);
    if (!k)
        return op_error_set(e, -ENOMEM, NULL, "out of memory");
    memcpy(k, j->key, kl);
    k[kl] = '.';
    (void)codec_hex_encode(d, 16, k + kl + 1, 33);
    free(j->key);
    j->key = k;
    return 0;
}

static int start_job(struct tus_client *c, struct op_error *e)
{
    struct job *j = c->cur;
    j->fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (j->fd < 0 && errno == ENOENT)
        return op_error_set(e, -ESTALE, j->path,
                            "%s is gone (voided before its upload started): nothing is sent",
                            j->path);
    if (j->fd < 0)
        return op_error_set(e, -errno, j->path, "cannot open %s: %s", j->path, strerror(errno));
    struct stat sb;
    if (fstat(j->fd, &sb) < 0)
        return op_error_set(e, -errno, j->path, "cannot stat %s: %s", j->path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return op_error_set(e, -EINVAL, j->path, "%s is not a regular file", j->path);
    /* Spool files are never empty; an empty one was truncated to void it. */
    if (sb.st_size == 0)
        return op_error_set(e, -ESTALE, j->path,
                            "%s is empty (voided before its upload started): nothing is sent",
                            j->path);
    j->length = (uint64_t)sb.st_size;
    if (j->key) {
        int rc = key_with_digest(j, e);
        if (rc < 0)
            return rc;
    }
    /* Best effort: without the watch, on_read still sees a voided file. */
    (void)uv_fs_event_stop(&c->watch);
    (void)uv_fs_event_start(&c->watch, on_file_event, j->path, 0);
    return 0;
}

static void next_step(struct tus_client *c)
{
    struct op_error e;
    op_error_clear(&e);
    if (c->stopping || c->req != REQ_NONE || c->held)
        return;
    if (!c->cur) {
        if (!c->qhead)
            return;
        c->cur = c->qhead;
        c->qhead = c->cur->next;
        if (!c->qhead)
            c->qtail = NULL;
        c->nqueued--;
        c->cur->next = NULL;
        if (start_job(c, &e) < 0) {
            fail_job(c, &e);
            return;
        }
    }
    struct job *j = c->cur;
    if (file_voided(j, &e) < 0) {
        fail_job(c, &e); /* before a retry, a HEAD or the next chunk */
        return;
    }
    if (!j->url && j->key && !c->no_create_data) {
        /* The upload's name is known before it exists: the caller
         * records it, and only then does a byte leave. */
        if (name_upload(c, j, &e) < 0) {
            fail_job(c, &e);
            return;
        }
        /* Without data the caller hears of the URL with HQ's answer, as
         * for a plain creation: a recorded URL then still means HQ has
         * the upload (residency counts on it, docs/EGRESS.md). */
        if (j->with_data && j->cb.on_created &&
            j->cb.on_created(j->ctx, j->url) == TUS_CREATED_HOLD) {
            c->held = 1;
            return;
        }
        if (c->stopping || c->cur != j)
            return;
    }
    enum req_kind kind;
    if (!j->url)
        kind = REQ_POST;
    else if (j->must_create)
        kind = REQ_CREATE;
    else if (!j->offset_known)
        kind = REQ_HEAD;
    else if (j->offset == j->length) {
        finish_job(c, 0, NULL);
        return;
    } else
        kind = REQ_PATCH;
    if (start_request(c, kind, &e) < 0)
        fail_job(c, &e);
}

static void on_step_timer(uv_timer_t *t)
{
    next_step(t->data);
}

static void schedule(struct tus_client *c, uint64_t delay_ms)
{
    /* Every step starts from the loop, never from inside a user callback
     * or a curl callback; a failure to arm a timer cannot happen with a
     * valid handle, so the result is ignored on purpose. */
    (void)uv_timer_start(&c->step_timer, on_step_timer, delay_ms, 0);
}

/* ---- GETs ------------------------------------------------------------- */

static void free_get(struct get_req *g)
{
    if (!g)
        return;
    free(g->url);
    free(g->post);
    free(g);
}

static size_t on_get_body(char *data, size_t size, size_t n, void *userp)
{
    struct tus_client *c = userp;
    struct buf *b = &c->gbody;
    size_t len = size * n;
    if (len > b->max - b->len && c->gcur->tdone) {
        size_t keep = b->max - b->len; /* a DELETE's body is only for the message */
        if (keep && buf_append(b, data, keep) < 0)
            return 0;
        return len;
    }
    if (len > b->max - b->len) {
        c->gbody_over = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (buf_append(b, data, len) < 0)
        return 0;
    return len;
}

/* A GET's or DELETE's headers: only HQ's mailbox hint is kept. */
static size_t on_get_header(char *line, size_t size, size_t n, void *userp)
{
    struct tus_client *c = userp;
    size_t len = size * n, nlen, vlen;
    const char *v;
    if (split_header(line, len, &nlen, &v, &vlen))
        note_mailbox_last(c, line, nlen, v, vlen);
    return len;
}

static int start_get(struct tus_client *c, struct op_error *err)
{
    struct get_req *g = c->gcur;
    curl_easy_reset(c->get_easy);
    curl_slist_free_all(c->ghdrs);
    c->ghdrs = NULL;
    buf_clear(&c->gbody);
    c->gbody.max = g->max_body;
    c->gbody_over = 0;
    c->gerrbuf[0] = '\0';
    int rc = set_shared(c, c->get_easy, g->url, c->gerrbuf, &c->ghdrs, err);
    if (rc < 0)
        return rc;
    struct curl_slist *n = curl_slist_append(c->ghdrs, "Accept: application/json");
    if (n && g->post)
        n = curl_slist_append(n, "Content-Type: application/json");
    if (n && g->tdone)
        n = curl_slist_append(n, "Tus-Resumable: 1.0.0");
    if (!n)
        return op_error_set(err, -ENOMEM, NULL, "out of memory building headers");
    c->ghdrs = n;
    SET_ON(c->get_easy, CURLOPT_HTTPGET, 1L);
    if (g->post) {
        SET_ON(c->get_easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)g->post_len);
        SET_ON(c->get_easy, CURLOPT_POSTFIELDS, g->post);
    }
    if (g->tdone)
        SET_ON(c->get_easy, CURLOPT_CUSTOMREQUEST, "DELETE");
    SET_ON(c->get_easy, CURLOPT_WRITEFUNCTION, on_get_body);
    SET_ON(c->get_easy, CURLOPT_HEADERFUNCTION, on_get_header);
    SET_ON(c->get_easy, CURLOPT_HEADERDATA, c);
    SET_ON(c->get_easy, CURLOPT_WRITEDATA, c);
    SET_ON(c->get_easy, CURLOPT_HTTPHEADER, c->ghdrs);
    if (curl_multi_add_handle(c->multi, c->get_easy) != CURLM_OK)
        return op_error_set(err, -ENOMEM, NULL, "curl_multi_add_handle failed");
    return 0;
}

/* Ends the current GET (the callback may stop the client or queue more). */
static void finish_get(struct tus_client *c, int status, const struct op_error *e)
{
    struct get_req *g = c->gcur;
    c->gcur = NULL;
    int ok = status > 0;
    if (g->tdone)
        g->tdone(g->ctx, status, e);
    else
        g->done(g->ctx, status, ok && c->gbody.data ? c->gbody.data : "", ok ? c->gbody.len : 0, e);
    free_get(g);
    if (!c->stopping && c->ghead)
        (void)uv_timer_start(&c->get_timer, next_get, 0, 0);
}

static void next_get(uv_timer_t *t)
{
    struct tus_client *c = t->data;
    if (c->stopping || c->gcur || !c->ghead)
        return;
    c->gcur = c->ghead;
    c->ghead = c->gcur->next;
    if (!c->ghead)
        c->gtail = NULL;
    c->gcur->next = NULL;
    struct op_error e;
    op_error_clear(&e);
    if (start_get(c, &e) < 0)
        finish_get(c, e.code, &e);
}

/* What a DELETE's answer means for the caller (tus_terminate_cb). */
static void on_terminate_done(struct tus_client *c, long code)
{
    struct get_req *g = c->gcur;
    const char *body = c->gbody.data ? c->gbody.data : "";
    struct op_error e;
    op_error_clear(&e);
    if (code == 204 || code == 200) {
        finish_get(c, 0, NULL);
        return;
    }
    if (code == 409)
        op_error_set(&e, -EALREADY, "status",
                     "DELETE %s answered 409: the server has the upload whole and took it (it "
                     "was applied or is being); it cannot be terminated: %s",
                     g->url, body);
    else if (code == 404 || code == 410)
        op_error_set(&e, -ENOENT, "status",
                     "DELETE %s answered %ld: the server holds no such upload", g->url, code);
    else if (transient_status(code))
        op_error_set(&e, -EAGAIN, "status", "DELETE %s answered %ld: try again later: %s", g->url,
                     code, body);
    else
        op_error_set(&e, code == 401 || code == 403 ? -EACCES : -EPROTO, "status",
                     "DELETE %s answered %ld: %s", g->url, code, body);
    finish_get(c, e.code, &e);
}

static void on_get_done(struct tus_client *c, CURLcode res)
{
    struct get_req *g = c->gcur;
    struct op_error e;
    op_error_clear(&e);
    long code = 0;
    (void)curl_easy_getinfo(c->get_easy, CURLINFO_RESPONSE_CODE, &code);
    const char *what = g->tdone ? "DELETE" : g->post ? "POST" : "GET";
    if (c->gbody_over) {
        op_error_set(&e, -EFBIG, "body", "GET %s: answer longer than %zu bytes", g->url,
                     g->max_body);
        finish_get(c, -EFBIG, &e);
        return;
    }
    if (res != CURLE_OK) {
        const char *detail = c->gerrbuf[0] ? c->gerrbuf : curl_easy_strerror(res);
        if (is_cert_error(res))
            op_error_set(&e, -EPERM, "tls", "%s %s: TLS certificate not trusted: %s", what, g->url,
                         detail);
        else if (res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_URL_MALFORMAT)
            op_error_set(&e, -EINVAL, "url", "%s %s: %s", what, g->url, detail);
        else if (res == CURLE_WRITE_ERROR)
            op_error_set(&e, -ENOMEM, "body", "%s %s: out of memory for the answer", what, g->url);
        else
            op_error_set(&e, -EAGAIN, "network", "%s %s: %s", what, g->url, detail);
        finish_get(c, e.code, &e);
        return;
    }
    if (g->tdone)
        on_terminate_done(c, code);
    else
        finish_get(c, (int)code, NULL);
}

/* Checks a URL for a GET or DELETE: absolute http(s), no white space, and
 * https when the endpoint is. */
static int side_url_ok(const struct tus_client *c, const char *what, const char *url,
                       struct op_error *err)
{
    if (strlen(url) > TUS_URL_MAX ||
        (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0) ||
        strpbrk(url, " \r\n\t"))
        return op_error_set(err, -EINVAL, "url", "%s: \"%.100s\" is not a usable URL", what, url);
    if (c->endpoint_https && strncasecmp(url, "https://", 8) != 0)
        return op_error_set(err, -EINVAL, "url", "%s: %.100s is not https like the endpoint", what,
                            url);
    return 0;
}

/* Queues a GET or DELETE behind the others. */
static int side_queue(struct tus_client *c, const char *url, size_t max_body, tus_get_cb done,
                      tus_terminate_cb tdone, void *ctx, struct op_error *err)
{
    struct get_req *g = calloc(1, sizeof *g);
    if (!g || !(g->url = strdup(url))) {
        free(g);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    g->max_body = max_body;
    g->done = done;
    g->tdone = tdone;
    g->ctx = ctx;
    if (c->gtail)
        c->gtail->next = g;
    else
        c->ghead = g;
    c->gtail = g;
    if (!c->gcur)
        (void)uv_timer_start(&c->get_timer, next_get, 0, 0);
    return 0;
}

int tus_client_get(struct tus_client *c, const char *url, size_t max_body, tus_get_cb done,
                   void *ctx, struct op_error *err)
{
    if (!c || !url || !done)
        return op_error_set(err, -EINVAL, NULL, "tus_client_get: url and done required");
    if (c->stopping)
        return op_error_set(err, -ESHUTDOWN, NULL, "the uploader is stopping");
    if (max_body == 0 || max_body > TUS_GET_BODY_MAX)
        return op_error_set(err, -EINVAL, "max_body", "max_body must be 1 to %zu bytes",
                            TUS_GET_BODY_MAX);
    int rc = side_url_ok(c, "GET", url, err);
    return rc < 0 ? rc : side_queue(c, url, max_body, done, NULL, ctx, err);
}

int tus_client_post(struct tus_client *c, const char *url, const char *body, size_t len,
                    size_t max_body, tus_get_cb done, void *ctx, struct op_error *err)
{
    if (!c || !url || !done || !body)
        return op_error_set(err, -EINVAL, NULL, "tus_client_post: url, body and done required");
    if (c->stopping)
        return op_error_set(err, -ESHUTDOWN, NULL, "the uploader is stopping");
    if (max_body == 0 || max_body > TUS_GET_BODY_MAX)
        return op_error_set(err, -EINVAL, "max_body", "max_body must be 1 to %zu bytes",
                            TUS_GET_BODY_MAX);
    int rc = side_url_ok(c, "POST", url, err);
    if (rc < 0)
        return rc;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    memcpy(copy, body, len);
    rc = side_queue(c, url, max_body, done, NULL, ctx, err);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    c->gtail->post = copy;
    c->gtail->post_len = len;
    return 0;
}

/* Ends every upload of this client that sends to url (the current one and
 * queued ones) with -ESTALE; a request on the wire is abandoned. */
static void end_uploads_to(struct tus_client *c, const char *url)
{
    struct job *ended = NULL, **tail = &ended;
    if (c->cur && c->cur->url && !strcmp(c->cur->url, url)) {
        if (c->req != REQ_NONE) {
            if (SENDS_DATA(c->req)) {
                uint64_t up = patch_bytes_sent(c);
                c->st.bytes_sent += up;
                c->st.bytes_resent += up;
                reset_on_close(c); /* what waits in the send queue is dropped */
            }
            (void)curl_multi_remove_handle(c->multi, c->easy);
            c->req = REQ_NONE;
        }
        (void)uv_timer_stop(&c->step_timer);
        *tail = c->cur;
        tail = &c->cur->next;
        c->cur = NULL;
        c->held = 0;
        (void)uv_fs_event_stop(&c->watch);
    }
    for (struct job **pp = &c->qhead; *pp;) {
        struct job *j = *pp;
        if (j->url && !strcmp(j->url, url)) {
            *pp = j->next;
            j->next = NULL;
            *tail = j;
            tail = &j->next;
            c->nqueued--;
        } else {
            pp = &j->next;
        }
    }
    c->qtail = NULL;
    for (struct job *j = c->qhead; j; j = j->next)
        c->qtail = j;
    struct op_error e;
    op_error_set(&e, -ESTALE, "upload_url",
                 "the upload to %s is being terminated: nothing more is sent to it", url);
    while (ended) {
        struct job *j = ended;
        ended = j->next;
        c->st.uploads_failed++;
        set_last_error(c, &e);
        j->cb.on_done(j->ctx, -ESTALE, j->url, &e);
        free_job(j);
    }
    if (!c->stopping && !c->cur && c->req == REQ_NONE && c->qhead)
        schedule(c, 0);
}

int tus_client_terminate(struct tus_client *c, const char *upload_url, tus_terminate_cb done,
                         void *ctx, struct op_error *err)
{
    if (!c || !upload_url || !done)
        return op_error_set(err, -EINVAL, NULL, "tus_client_terminate: url and done required");
    if (c->stopping)
        return op_error_set(err, -ESHUTDOWN, NULL, "the uploader is stopping");
    int rc = side_url_ok(c, "DELETE", upload_url, err);
    if (rc < 0)
        return rc;
    rc = side_queue(c, upload_url, BODY_KEEP, NULL, done, ctx, err);
    if (rc < 0)
        return rc;
    end_uploads_to(c, upload_url);
    return 0;
}

/* ---- public API ------------------------------------------------------- */

int tus_client_new(uv_loop_t *loop, const struct tus_client_config *cfg, struct tus_client **out,
                   struct op_error *err)
{
    static int curl_ready;
    if (!loop || !cfg || !out)
        return op_error_set(err, -EINVAL, NULL, "tus_client_new: missing argument");
    if (!cfg->endpoint || (strncasecmp(cfg->endpoint, "https://", 8) != 0 &&
                           strncasecmp(cfg->endpoint, "http://", 7) != 0))
        return op_error_set(err, -EINVAL, "endpoint",
                            "tus endpoint must be an http:// or https:// URL");
    if (strlen(cfg->endpoint) > TUS_URL_MAX)
        return op_error_set(err, -EINVAL, "endpoint", "tus endpoint longer than %d bytes",
                            TUS_URL_MAX);
    if (cfg->auth && (strchr(cfg->auth, '\r') || strchr(cfg->auth, '\n')))
        return op_error_set(err, -EINVAL, "auth", "auth header value contains a line break");
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return op_error_set(err, -ENOMEM, NULL, "curl_global_init failed");
        curl_ready = 1;
    }

    struct tus_client *c = calloc(1, sizeof *c);
    if (!c)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    c->loop = loop;
    c->cfg = *cfg;
    struct tus_client_config *k = &c->cfg;
    if (!k->min_chunk)
        k->min_chunk = DEF_MIN_CHUNK;
    if (!k->max_chunk)
        k->max_chunk = DEF_MAX_CHUNK;
    if (!k->initial_chunk)
        k->initial_chunk = DEF_INITIAL_CHUNK;
    if (!k->connect_timeout_ms)
        k->connect_timeout_ms = 15000;
    if (!k->stall_seconds)
        k->stall_seconds = 30;
    if (!k->stall_min_ms)
        k->stall_min_ms = DEF_STALL_MIN_MS;
    if (!k->quick_retry_ms)
        k->quick_retry_ms = DEF_QUICK_RETRY_MS;
    if (!k->stall_bytes_per_s)
        k->stall_bytes_per_s = 1;
    if (!k->fast_chunk_ms)
        k->fast_chunk_ms = 5000;
    if (!k->slow_chunk_ms)
        k->slow_chunk_ms = 30000;
    if (!k->backoff_base_ms)
        k->backoff_base_ms = 1000;
    if (!k->backoff_max_ms)
        k->backoff_max_ms = 300000;
    if (!k->max_checksum_mismatches)
        k->max_checksum_mismatches = 10;
    if (k->min_chunk > k->max_chunk || k->max_chunk > HARD_MAX_CHUNK ||
        k->backoff_base_ms > k->backoff_max_ms || k->backoff_max_ms > UINT32_MAX ||
        k->quick_retry_ms > UINT32_MAX) {
        free(c);
        return op_error_set(err, -EINVAL, "chunk",
                            "need min_chunk <= max_chunk <= %zu, backoff base <= max <= 2^32 ms "
                            "and quick_retry_ms <= 2^32",
                            HARD_MAX_CHUNK);
    }
    if (k->initial_chunk < k->min_chunk)
        k->initial_chunk = k->min_chunk;
    if (k->initial_chunk > k->max_chunk)
        k->initial_chunk = k->max_chunk;
    if (!k->now_ms)
        k->now_ms = default_clock;
    if (!k->rng) {
        if (getrandom(&c->rng_state, sizeof c->rng_state, GRND_NONBLOCK) !=
            (ssize_t)sizeof c->rng_state)
            c->rng_state = uv_hrtime();
        c->rng_state |= 1;
        k->rng = default_rng;
        k->rng_ctx = &c->rng_state;
    }
    c->chunk = k->initial_chunk;
    c->ssthresh = k->max_chunk;
    c->endpoint_https = strncasecmp(cfg->endpoint, "https://", 8) == 0;
    c->endpoint = dup_str(cfg->endpoint);
    c->ca_file = dup_str(cfg->ca_file);
    if (cfg->auth) {
        size_t n = strlen(cfg->auth) + sizeof "Authorization: ";
        c->auth_hdr = malloc(n);
        if (c->auth_hdr)
            snprintf(c->auth_hdr, n, "Authorization: %s", cfg->auth);
    }
    k->endpoint = c->endpoint;
    k->ca_file = c->ca_file;
    k->auth = NULL;
    c->multi = curl_multi_init();
    c->easy = curl_easy_init();
    c->get_easy = curl_easy_init();
    if (!c->endpoint || (cfg->ca_file && !c->ca_file) || (cfg->auth && !c->auth_hdr) || !c->multi ||
        !c->easy || !c->get_easy) {
        curl_easy_cleanup(c->easy);
        curl_easy_cleanup(c->get_easy);
        (void)curl_multi_cleanup(c->multi);
        free(c->endpoint);
        free(c->ca_file);
        free(c->auth_hdr);
        free(c);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    (void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    (void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    (void)curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    (void)curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    (void)uv_timer_init(loop, &c->curl_timer);
    (void)uv_timer_init(loop, &c->step_timer);
    (void)uv_timer_init(loop, &c->stall_timer);
    (void)uv_timer_init(loop, &c->get_timer);
    (void)uv_fs_event_init(loop, &c->watch);
    c->curl_timer.data = c;
    c->step_timer.data = c;
    c->stall_timer.data = c;
    c->get_timer.data = c;
    c->watch.data = c;
    c->upload_fd = CURL_SOCKET_BAD;
    c->req_fd = CURL_SOCKET_BAD;
    c->open_handles = 5;
    c->st.chunk_size = c->chunk;
    *out = c;
    return 0;
}

static char *encode_meta(const struct tus_meta *m, size_t n, struct op_error *err, int *rc)
{
    char *out = calloc(1, TUS_META_MAX + 1);
    size_t used = 0;
    *rc = 0;
    if (!out) {
        *rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = m[i].key, *v = m[i].value ? m[i].value : "";
        if (!k || !*k || strpbrk(k, " ,\r\n\t")) {
            *rc = op_error_set(err, -EINVAL, "metadata",
                               "metadata key %zu is empty or holds a space or comma", i);
            break;
        }
        size_t klen = strlen(k), vlen = strlen(v);
        size_t need = (used ? 1 : 0) + klen + 1 + 4 * ((vlen + 2) / 3);
        if (vlen > TUS_META_MAX || used + need > TUS_META_MAX) {
            *rc = op_error_set(err, -EINVAL, "metadata", "metadata longer than %d bytes encoded",
                               TUS_META_MAX);
            break;
        }
        if (used)
            out[used++] = ',';
        memcpy(out + used, k, klen);
        used += klen;
        out[used++] = ' ';
        (void)codec_b64_encode(v, vlen, 0, out + used, TUS_META_MAX + 1 - used);
        used += strlen(out + used);
    }
    if (*rc < 0) {
        free(out);
        return NULL;
    }
    return out;
}

int tus_client_upload(struct tus_client *c, const struct tus_upload_params *p, struct op_error *err)
{
    if (!c || !p || !p->path || !p->cb.on_done)
        return op_error_set(err, -EINVAL, NULL, "tus_client_upload: path and on_done required");
    if (c->stopping)
        return op_error_set(err, -ESHUTDOWN, NULL, "the uploader is stopping");
    if (p->upload_url &&
        (strlen(p->upload_url) > TUS_URL_MAX || (strncasecmp(p->upload_url, "https://", 8) != 0 &&
                                                 strncasecmp(p->upload_url, "http://", 7) != 0)))
        return op_error_set(err, -EINVAL, "upload_url", "upload URL is not a usable URL");
    if (p->upload_url && c->endpoint_https && strncasecmp(p->upload_url, "https://", 8) != 0)
        return op_error_set(err, -EINVAL, "upload_url",
                            "upload URL %s is not https like the endpoint", p->upload_url);
    if (p->upload_key || p->principal) {
        size_t kl = p->upload_key ? strlen(p->upload_key) : 0;
        int ok = kl >= 1 && kl <= 24 && p->principal && p->principal[0] &&
                 strlen(p->principal) < TUS_PRINCIPAL_MAX;
        for (size_t i = 0; ok && i < kl; i++) {
            char ch = p->upload_key[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '-';
        }
        if (!ok)
            return op_error_set(err, -EINVAL, "upload_key",
                                "upload_key needs 1 to 24 characters of A-Z, a-z, 0-9, '_', '-' "
                                "and a principal");
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    j->fd = -1;
    j->cb = p->cb;
    j->ctx = p->ctx;
    j->chunk_cap = p->chunk_cap;
    j->path = strdup(p->path);
    j->url = dup_str(p->upload_url);
    j->key = dup_str(p->upload_key);
    j->principal = dup_str(p->principal);
    j->with_data = p->create_with_data;
    int rc = 0;
    if (p->nmeta) {
        j->meta = encode_meta(p->meta, p->nmeta, err, &rc);
        if (rc < 0) {
            free_job(j);
            return rc;
        }
    }
    if (!j->path || (p->upload_url && !j->url) || (p->upload_key && (!j->key || !j->principal))) {
        free_job(j);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    if (c->qtail)
        c->qtail->next = j;
    else
        c->qhead = j;
    c->qtail = j;
    c->nqueued++;
    if (!c->cur && c->req == REQ_NONE)
        schedule(c, 0);
    return 0;
}

uint64_t tus_client_mailbox_last(const struct tus_client *c, int *known)
{
    *known = c && c->mailbox_known;
    return *known ? c->mailbox_last : 0;
}

void tus_client_get_stats(const struct tus_client *c, struct tus_client_stats *out)
{
    *out = c->st;
    /* against a server that keeps cut bytes the rules size nothing: the
     * size is that of the last PATCH (the rest of its upload) */
    out->chunk_size = c->cfg.server_keeps_cut_bytes && c->chunk_len ? c->chunk_len : c->chunk;
    out->queued = c->nqueued;
}

void tus_client_cancel(struct tus_client *c, const char *why)
{
    if (!c || c->stopping || (!c->cur && !c->qhead))
        return;
    if (c->req != REQ_NONE) {
        if (SENDS_DATA(c->req)) {
            uint64_t up = patch_bytes_sent(c);
            c->st.bytes_sent += up;
            c->st.bytes_resent += up; /* HQ stores whole checksummed chunks only */
            reset_on_close(c);        /* what waits in the send queue is dropped */
        }
        (void)curl_multi_remove_handle(c->multi, c->easy);
        c->req = REQ_NONE;
    }
    (void)uv_timer_stop(&c->step_timer);
    /* Detach everything first: an on_done may queue a new upload. */
    struct job *list = c->cur;
    if (list)
        list->next = c->qhead;
    else
        list = c->qhead;
    c->cur = NULL;
    c->held = 0;
    (void)uv_fs_event_stop(&c->watch);
    c->qhead = c->qtail = NULL;
    c->nqueued = 0;
    struct op_error e;
    op_error_set(&e, -EINTR, NULL, "upload interrupted: %s", why ? why : "cancelled");
    while (list) {
        struct job *j = list;
        list = j->next;
        j->cb.on_done(j->ctx, -EINTR, j->url, &e);
        free_job(j);
    }
}

void tus_client_stop(struct tus_client *c, void (*done)(void *ctx), void *ctx)
{
    if (!c || c->stopping)
        return;
    c->stopping = 1;
    c->stop_cb = done;
    c->stop_ctx = ctx;
    if (c->req != REQ_NONE) {
        (void)curl_multi_remove_handle(c->multi, c->easy);
        c->req = REQ_NONE;
    }
    if (c->gcur)
        (void)curl_multi_remove_handle(c->multi, c->get_easy);
    /* Cleaning up curl closes its connections; its socket callback closes
     * the matching poll handles. Whatever is left is closed below. */
    curl_easy_cleanup(c->easy);
    c->easy = NULL;
    curl_easy_cleanup(c->get_easy);
    c->get_easy = NULL;
    (void)curl_multi_cleanup(c->multi);
    c->multi = NULL;
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    curl_slist_free_all(c->ghdrs);
    c->ghdrs = NULL;
    while (c->socks)
        sock_close(c->socks);
    (void)uv_timer_stop(&c->curl_timer);
    (void)uv_timer_stop(&c->step_timer);
    (void)uv_timer_stop(&c->stall_timer);
    (void)uv_timer_stop(&c->get_timer);
    uv_close((uv_handle_t *)&c->curl_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->step_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->stall_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->get_timer, on_handle_closed);
    (void)uv_fs_event_stop(&c->watch);
    uv_close((uv_handle_t *)&c->watch, on_handle_closed);

    struct op_error e;
    op_error_set(&e, -ECANCELED, NULL, "upload cancelled: the uploader stopped");
    if (c->cur) {
        struct job *j = c->cur;
        c->cur = NULL;
        c->held = 0;
        j->cb.on_done(j->ctx, -ECANCELED, j->url, &e);
        free_job(j);
    }
    while (c->qhead) {
        struct job *j = c->qhead;
        c->qhead = j->next;
        c->nqueued--;
        j->cb.on_done(j->ctx, -ECANCELED, j->url, &e);
        free_job(j);
    }
    c->qtail = NULL;
    if (c->gcur) {
        struct get_req *g = c->gcur;
        c->gcur = NULL;
        if (g->tdone)
            g->tdone(g->ctx, -ECANCELED, &e);
        else
            g->done(g->ctx, -ECANCELED, "", 0, &e);
        free_get(g);
    }
    while (c->ghead) {
        struct get_req *g = c->ghead;
        c->ghead = g->next;
        if (g->tdone)
            g->tdone(g->ctx, -ECANCELED, &e);
        else
            g->done(g->ctx, -ECANCELED, "", 0, &e);
        free_get(g);
    }
    c->gtail = NULL;
}
