/*
 * The HTTP/1.1 server; see http_server.h for the contract. Data flows
 * socket -> (TLS, http_tls.c) -> http_parser -> exchange -> handler, and
 * back handler -> http_respond -> one uv_write. A connection is a small
 * state machine (waiting, reading headers, reading the body, with the
 * handler, writing, lingering) driven by its read callback, its single
 * timer and its write callbacks. Invariants: a connection is read only
 * while it is waiting for or reading a request, so it has at most one
 * exchange in flight and at most one read buffer of pipelined bytes put
 * aside; every exchange that began is logged exactly once (with the status
 * sent, or 499 when the client went away first); a connection's memory is
 * freed only in its last close callback, and the server's only when the
 * listener and every connection are closed and the handler holds no
 * exchange.
 */
#include "http_server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <http_parser.h>

#include "buf.h"
#include "http_peers.h"
#include "http_tls.h"
#include "percent.h"
#include "problem.h"

#define HTTP_MAX_URL 8192        /* request target; over it: 414 */
#define HTTP_MAX_HEADERS 100     /* header fields; over it: 431 */
#define HTTP_MAX_RESP_HEADERS 32 /* http_add_header calls per response */
#define HTTP_MAX_RESP_HEAD 8192  /* bytes of those headers */
#define HTTP_LINGER_MS 2000      /* reading and dropping after a closing response */
#define HTTP_MAX_REFUSED 64      /* connections being told 503 at once */
#define HTTP_PER_ADDRESS 32      /* default connections per client address group */
#define HTTP_READ_BUF 65536      /* one socket read */
#define HTTP_PLAIN_BUF 16384     /* one TLS record of plaintext */
#define HTTP_STASH_MAX (HTTP_READ_BUF + HTTP_PLAIN_BUF)
#define HTTP_USER_MAX 128
#define HTTP_REMOTE_MAX 64
#define HTTP_DETAIL_MAX 192
#define HTTP_STATUS_GONE 499 /* logged when the client left before the response */
#define HTTP_MAX_BUFFERED_DEFAULT ((size_t)64 * 1024 * 1024)
/* Blocks of this many bytes or more come from mmap (glibc), so a freed
 * body goes back to the system at once instead of staying in the heap. */
#define HTTP_MMAP_THRESHOLD (128 * 1024)
/* Once this much was buffered, the heap is trimmed when it is all freed. */
#define HTTP_TRIM_MARK ((size_t)1024 * 1024)
#define HTTP_RETRY_AFTER "Retry-After: 5\r\n"

enum conn_state {
    C_WAIT,    /* no byte of the next request yet (TLS handshake included) */
    C_HEAD,    /* request line and headers arriving */
    C_GATE,    /* headers complete, with the gate; not reading */
    C_BODY,    /* body arriving */
    C_HANDLER, /* complete request with the handler; not reading */
    C_WRITE,   /* response being written; not reading */
    C_LINGER,  /* closing response sent; reading and dropping until EOF */
    C_CLOSED,  /* uv_close called */
};

enum write_kind { W_RAW, W_RESPONSE };

struct hdr {
    uint32_t name; /* offsets into the exchange's arena */
    uint32_t value;
    char *joined; /* repeated headers joined with ", ", made on first lookup */
};

struct http_exchange {
    struct http_server *srv;
    struct conn *conn; /* NULL once the connection is gone */
    const char *method;
    const char *path;  /* into url, decoded in place */
    const char *query; /* into url */
    struct buf url;
    struct buf arena; /* name\0value\0 for each header */
    struct hdr hdrs[HTTP_MAX_HEADERS];
    unsigned nhdrs;
    int hstate; /* 0 before the first field, 1 in a name, 2 in a value */
    size_t head_bytes;
    int url_done;
    int headers_done;
    struct buf body;
    struct buf rh; /* "Name: value\r\n" lines from http_add_header */
    unsigned nrh;
    char user[HTTP_USER_MAX];
    char remote[HTTP_REMOTE_MAX];
    uint64_t t_start;
    int keep_alive;
    int http10;
    int is_head;
    int close; /* answer with Connection: close, then close */
    int gone;
    int in_handler;
    int status;
    uint64_t bytes_out;
    int has_body;         /* Content-Length above 0, or chunked */
    int has_len;          /* the body's length was announced */
    uint64_t content_len; /* ...and this is it */
    size_t body_max;      /* the gate's cap, at most the server's */
    size_t body_acct;     /* bytes of body counted in the server's buffered total */
    void *data;           /* http_set_data */
    void (*data_free)(void *);
    /* http_gate_stream: the body goes to s_data, an unfinished one ends in s_cut */
    http_body_data_fn s_data;
    http_body_cut_fn s_cut;
    void *s_ctx;
    uint64_t streamed; /* bytes given to s_data */
    int s_done;        /* the body completed (or s_cut was called) */
};

struct conn {
    struct http_server *srv;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    struct conn *prev;
    struct conn *next;
    http_parser parser;
    enum conn_state state;
    int handles; /* open libuv handles; freed at 0 */
    int counted; /* holds one of max_connections */
    int refused; /* holds one of HTTP_MAX_REFUSED; answered 503 */
    int reading;
    struct http_exchange *x;
    int msg_done;
    int send_continue;
    int gate_due; /* the parser paused at the end of the headers for the gate */
    int gated;    /* the last conn_parse went to the gate (maybe using no byte) */
    int in_parse; /* inside http_parser_execute (a gate answering at once) */
    int skip_lf;  /* a refused bodiless request's last header byte is left */
    int refuse_status;
    char refuse_detail[HTTP_DETAIL_MAX];
    char *stash; /* pipelined bytes put aside while an exchange is in flight */
    size_t stash_off;
    size_t stash_len;
    size_t raw_head; /* raw bytes of a header section not yet complete */
    size_t last_wq;  /* write queue size at the last progress check */
    struct http_tls *tls;
    int tls_plain; /* plain HTTP arrived on the TLS port */
    int tls_seen;
    int peer_gone;
    char remote[HTTP_REMOTE_MAX];
    struct http_peer_key peer; /* the client's address group */
    int peer_held;             /* holds one of its group's connections */
    unsigned served;           /* responses written on this connection */
    int idle;                  /* on the server's idle list */
    struct conn *idle_prev;
    struct conn *idle_next;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    size_t max_header_bytes;
    size_t max_body_bytes;
    unsigned max_connections;
    unsigned max_per_address;
    unsigned header_timeout_ms;
    unsigned body_timeout_ms;
    unsigned idle_timeout_ms;
    http_handler_fn handler;
    http_log_fn log;
    void *ctx;
    struct http_tls_ctx *tls;
    http_parser_settings settings;
    struct conn *conns;
    unsigned nconns;
    unsigned nrefused;
    unsigned nhandler; /* exchanges the handler (or the gate) holds */
    http_gate_fn gate;
    size_t max_buffered;
    size_t buffered; /* body and stash bytes held by all connections */
    int trim_due;    /* buffered passed HTTP_TRIM_MARK since the last trim */
    struct http_peers peers;
    /* Idle keep-alive connections, oldest first: the first to go when a
     * new connection finds the server full. */
    struct conn *idle_head;
    struct conn *idle_tail;
    unsigned nidle;
    uint64_t refused_address;
    uint64_t refused_full;
    uint64_t evicted_idle;
    int port;
    int stopping;
    int listener_closed;
    int start_failed;
    void (*done)(void *arg);
    void *done_arg;
    char rbuf[HTTP_READ_BUF];  /* shared: a read is parsed before the next */
    char pbuf[HTTP_PLAIN_BUF]; /* shared: decrypted bytes, same reason */
};

static void conn_close(struct conn *c);
static void conn_pump(struct conn *c);
static void conn_refuse(struct conn *c, int status, const char *detail, const char *extra);
static void send_response(struct conn *c, struct http_exchange *x, int status, const char *ctype,
                          const void *body, size_t len, const char *extra);

/* ---- text helpers ---- */

static const struct {
    int status;
    const char *text;
} status_texts[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {460, "Checksum Mismatch"}, /* tus checksum extension */
    {499, "Client Closed Request"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {507, "Insufficient Storage"},
};

const char *http_status_text(int status)
{
    for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++)
        if (status_texts[i].status == status)
            return status_texts[i].text;
    if (status >= 100 && status < 200)
        return "Informational";
    if (status >= 200 && status < 300)
        return "Success";
    if (status >= 300 && status < 400)
        return "Redirection";
    if (status >= 400 && status < 500)
        return "Client Error";
    return "Server Error";
}

/* RFC 9110 IMF-fixdate, spelled out so the C locale does not matter. */
static void imf_date(char *out, size_t cap)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, cap, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* A response header value may not smuggle a line break or other controls. */
static int value_ok(const char *v)
{
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return 0;
    }
    return 1;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (uv_ip6_name(a, ip, sizeof ip) != 0)
            snprintf(ip, sizeof ip, "?");
        snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        if (uv_ip4_name(a, ip, sizeof ip) != 0)
            snprintf(ip, sizeof ip, "?");
        snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else {
        snprintf(out, cap, "-");
    }
}

/* "HOST:PORT" or "[V6]:PORT" with a numeric host. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, struct op_error *err)
{
    char host[64];
    const char *port;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            goto bad;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s || strchr(s, ':') != colon || (size_t)(colon - s) >= sizeof host)
            goto bad;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *endp = NULL;
    errno = 0;
    unsigned long p = strtoul(port, &endp, 10);
    if (!*port || *endp || errno || p > 65535 || port[0] == '-' || port[0] == '+')
        goto bad;
    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) != 0)
            goto bad;
    } else if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) != 0) {
        goto bad;
    }
    return 0;
bad:
    return op_error_set(err, -EINVAL, "listen",
                        "bad listen address \"%s\": expected IPV4:PORT or [IPV6]:PORT with a "
                        "numeric address and a port from 0 to 65535",
                        s);
}

/* ---- the buffered-bytes budget ---- */

/* Whether n more bytes fit in the server-wide budget. */
static int budget_fits(const struct http_server *s, size_t n)
{
    return n <= s->max_buffered - s->buffered;
}

static void budget_add(struct http_server *s, size_t n)
{
    s->buffered += n;
    if (s->buffered >= HTTP_TRIM_MARK)
        s->trim_due = 1;
}

/* Once everything a burst buffered is freed, hands the heap's free tail
 * back to the system: without it the resident size stays at the peak. */
static void budget_release(struct http_server *s, size_t n)
{
    s->buffered -= n < s->buffered ? n : s->buffered;
    if (s->buffered == 0 && s->trim_due) {
        s->trim_due = 0;
#ifdef __GLIBC__
        (void)malloc_trim(0);
#endif
    }
}

/* ---- exchanges ---- */

static struct http_exchange *x_new(struct conn *c)
{
    struct http_server *s = c->srv;
    struct http_exchange *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->srv = s;
    x->conn = c;
    x->method = "-";
    buf_init(&x->url, HTTP_MAX_URL + 1);
    buf_init(&x->arena, s->max_header_bytes + 2 * HTTP_MAX_HEADERS + 2);
    buf_init(&x->body, s->max_body_bytes);
    x->body_max = s->max_body_bytes;
    buf_init(&x->rh, HTTP_MAX_RESP_HEAD);
    x->keep_alive = 1;
    x->t_start = uv_hrtime();
    snprintf(x->remote, sizeof x->remote, "%s", c->remote);
    return x;
}

static void x_free(struct http_exchange *x)
{
    if (x->s_data && !x->s_done) {
        x->s_done = 1;
        x->s_cut(x->s_ctx, x, x->streamed);
    }
    if (x->data_free)
        x->data_free(x->data);
    for (unsigned i = 0; i < x->nhdrs; i++)
        free(x->hdrs[i].joined);
    buf_done(&x->url);
    buf_done(&x->arena);
    buf_done(&x->body);
    budget_release(x->srv, x->body_acct);
    buf_done(&x->rh);
    free(x);
}

/* The one place an exchange ends: it is logged, then freed. */
static void x_finish(struct http_exchange *x, int status, uint64_t bytes_out)
{
    struct http_server *s = x->srv;
    if (s->log) {
        struct http_log_entry e = {
            .method = x->method,
            .path = x->path ? x->path : "-",
            .status = status,
            .bytes_out = bytes_out,
            .duration_ms = (double)(uv_hrtime() - x->t_start) / 1e6,
            .user = x->user[0] ? x->user : "-",
            .remote = x->remote,
        };
        s->log(s->ctx, &e);
    }
    x_free(x);
}

static void maybe_done(struct http_server *s)
{
    if (!s->stopping || !s->listener_closed || s->conns || s->nhandler)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    http_tls_ctx_free(s->tls);
    http_peers_done(&s->peers);
    free(s);
    if (done)
        done(arg);
}

/* ---- connections: reading, writing, closing ---- */

static void conn_arm(struct conn *c, unsigned ms);

static void on_timer(uv_timer_t *t);

static void conn_arm(struct conn *c, unsigned ms)
{
    (void)uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* A keep-alive connection waiting for its next request joins the tail of
 * the idle list; it leaves on its next request's first byte or on close. */
static void idle_add(struct conn *c)
{
    struct http_server *s = c->srv;
    if (c->idle)
        return;
    c->idle = 1;
    c->idle_next = NULL;
    c->idle_prev = s->idle_tail;
    if (s->idle_tail)
        s->idle_tail->idle_next = c;
    else
        s->idle_head = c;
    s->idle_tail = c;
    s->nidle++;
}

static void idle_remove(struct conn *c)
{
    struct http_server *s = c->srv;
    if (!c->idle)
        return;
    c->idle = 0;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        s->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        s->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    s->nidle--;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    buf->base = c->srv->rbuf;
    buf->len = sizeof c->srv->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void conn_read(struct conn *c, int on)
{
    if (on && !c->reading && c->state != C_CLOSED) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        else
            conn_close(c);
    } else if (!on && c->reading) {
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static int conn_parsing(const struct conn *c)
{
    return c->state == C_WAIT || c->state == C_HEAD || c->state == C_BODY;
}

static void conn_update_reading(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    int want = (conn_parsing(c) && c->stash_len == 0) || c->state == C_LINGER;
    conn_read(c, want);
}

static void stash_clear(struct conn *c)
{
    budget_release(c->srv, c->stash_len);
    free(c->stash);
    c->stash = NULL;
    c->stash_off = c->stash_len = 0;
}

static int stash_put(struct conn *c, const char *data, size_t n)
{
    size_t have = c->stash_len - c->stash_off;
    if (have + n > HTTP_STASH_MAX)
        return -E2BIG;
    if (have + n > c->stash_len && !budget_fits(c->srv, have + n - c->stash_len))
        return -ENOBUFS;
    char *p = malloc(have + n);
    if (!p)
        return -ENOMEM;
    budget_add(c->srv, have + n);
    budget_release(c->srv, c->stash_len);
    if (have)
        memcpy(p, c->stash + c->stash_off, have);
    memcpy(p + have, data, n);
    free(c->stash);
    c->stash = p;
    c->stash_off = 0;
    c->stash_len = have + n;
    return 0;
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    http_tls_free(c->tls);
    stash_clear(c);
    free(c);
    maybe_done(s);
}

static void conn_close(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    struct http_server *s = c->srv;
    enum conn_state was = c->state;
    c->state = C_CLOSED;
    if (c->counted) {
        c->counted = 0;
        s->nconns--;
    }
    if (c->refused) {
        c->refused = 0;
        s->nrefused--;
    }
    if (c->peer_held) {
        c->peer_held = 0;
        http_peers_give(&s->peers, &c->peer);
    }
    idle_remove(c);
    struct http_exchange *x = c->x;
    if (x && x->in_handler) {
        /* The handler still holds it; http_respond will log and free it. */
        x->conn = NULL;
        x->gone = 1;
        c->x = NULL;
    } else if (x && was != C_WRITE) {
        /* A request that began and will never be answered. (During
         * C_WRITE the write callback, cancelled, ends the exchange.) */
        c->x = NULL;
        x_finish(x, HTTP_STATUS_GONE, 0);
    }
    if (c->reading) {
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    (void)uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

struct wreq {
    uv_write_t req;
    struct conn *c;
    enum write_kind kind;
    char *data;
};

static void response_written(struct conn *c, int status);

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    enum write_kind kind = w->kind;
    free(w->data);
    free(w);
    if (kind == W_RESPONSE)
        response_written(c, status);
    else if (status < 0)
        conn_close(c);
}

/* Puts bytes on the socket; takes data (freed in every case). */
static int conn_write_raw(struct conn *c, char *data, size_t len, enum write_kind kind)
{
    if (c->state == C_CLOSED || len > UINT32_MAX) {
        free(data);
        return UV_ECANCELED;
    }
    struct wreq *w = malloc(sizeof *w);
    if (!w) {
        free(data);
        return -ENOMEM;
    }
    w->c = c;
    w->kind = kind;
    w->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(data);
        free(w);
    }
    return rc;
}

/* Sends what TLS produced (handshake messages, alerts, close_notify). */
static void tls_flush(struct conn *c)
{
    if (!c->tls || c->tls_plain || c->state == C_CLOSED)
        return;
    char *out;
    size_t len;
    if (http_tls_take(c->tls, &out, &len) < 0) {
        conn_close(c);
        return;
    }
    if (out && conn_write_raw(c, out, len, W_RAW) < 0)
        conn_close(c);
}

/* Plaintext to the client, through TLS when the connection has it. Takes
 * data. */
static int conn_send(struct conn *c, char *data, size_t len, enum write_kind kind)
{
    if (!c->tls || c->tls_plain)
        return conn_write_raw(c, data, len, kind);
    int rc = http_tls_write(c->tls, data, len);
    free(data);
    if (rc < 0)
        return rc;
    char *out;
    size_t olen;
    rc = http_tls_take(c->tls, &out, &olen);
    if (rc < 0)
        return rc;
    if (!out)
        return -EPROTO;
    return conn_write_raw(c, out, olen, kind);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0)
        conn_close(c);
}

/* After a closing response: half-close, then read and drop what the
 * client still sends until it closes too (or HTTP_LINGER_MS pass).
 * Closing at once with unread bytes queued would make the kernel send a
 * reset, and the client could lose the response it has not read yet. */
static void conn_linger(struct conn *c)
{
    stash_clear(c);
    c->state = C_LINGER;
    if (c->tls && !c->tls_plain) {
        http_tls_shutdown(c->tls);
        tls_flush(c);
        if (c->state == C_CLOSED)
            return;
    }
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    conn_arm(c, HTTP_LINGER_MS);
    conn_read(c, 1);
}

static void response_written(struct conn *c, int status)
{
    struct http_server *s = c->srv;
    struct http_exchange *x = c->x;
    c->x = NULL;
    if (status < 0) {
        if (x)
            x_finish(x, HTTP_STATUS_GONE, 0);
        conn_close(c);
        return;
    }
    int close = !x || x->close;
    if (x)
        x_finish(x, x->status, x->bytes_out);
    if (c->state == C_CLOSED)
        return;
    if (close || s->stopping) {
        conn_linger(c);
        return;
    }
    c->state = C_WAIT;
    c->raw_head = 0;
    c->served++;
    idle_add(c);
    conn_arm(c, s->idle_timeout_ms);
    conn_pump(c);
}

/* ---- responses ---- */

static void send_response(struct conn *c, struct http_exchange *x, int status, const char *ctype,
                          const void *body, size_t len, const char *extra)
{
    struct http_server *s = c->srv;
    if (status < 100 || status > 599)
        status = 500;
    int no_body = status < 200 || status == 204 || status == 304;
    int close = x->close || s->stopping || !x->keep_alive;
    x->close = close;
    char date[64];
    imf_date(date, sizeof date);
    struct buf b = BUF_INIT(SIZE_MAX);
    int rc =
        buf_printf(&b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, http_status_text(status), date);
    if (rc == 0 && ctype && !no_body && value_ok(ctype))
        rc = buf_printf(&b, "Content-Type: %s\r\n", ctype);
    if (rc == 0 && !no_body)
        rc = buf_printf(&b, "Content-Length: %zu\r\n", len);
    if (rc == 0 && extra)
        rc = buf_append(&b, extra, strlen(extra));
    if (rc == 0 && x->rh.len)
        rc = buf_append(&b, x->rh.data, x->rh.len);
    if (rc == 0 && close)
        rc = buf_printf(&b, "Connection: close\r\n");
    else if (rc == 0 && x->http10)
        rc = buf_printf(&b, "Connection: keep-alive\r\n");
    if (rc == 0)
        rc = buf_append(&b, "\r\n", 2);
    int send_body = !no_body && !x->is_head && len > 0;
    if (rc == 0 && send_body)
        rc = buf_append(&b, body, len);
    x->status = status;
    x->bytes_out = send_body ? len : 0;

    c->state = C_WRITE;
    conn_read(c, 0);
    c->last_wq = SIZE_MAX;
    conn_arm(c, s->idle_timeout_ms);
    if (rc == 0)
        rc = conn_send(c, b.data, b.len, W_RESPONSE);
    else
        buf_done(&b);
    if (rc < 0) {
        c->x = NULL;
        x_finish(x, HTTP_STATUS_GONE, 0);
        conn_close(c);
    }
}

/* Answers the current (or a new) exchange with a problem+json error and
 * marks the connection for closing: after these the stream is in an
 * unknown state. */
static void conn_refuse(struct conn *c, int status, const char *detail, const char *extra)
{
    if (!conn_parsing(c)) {
        conn_close(c);
        return;
    }
    struct http_exchange *x = c->x;
    if (!x) {
        x = x_new(c);
        if (!x) {
            conn_close(c);
            return;
        }
        c->x = x;
    }
    if (x->s_data && !x->s_done) {
        /* The owner learns now that the body is cut, not once the refusal
         * is written (it may want what it was writing to right away). */
        x->s_done = 1;
        x->s_cut(x->s_ctx, x, x->streamed);
    }
    x->close = 1;
    stash_clear(c);
    struct buf b = BUF_INIT(4096);
    int rc = problem_render(&b, problem_new(status, http_status_text(status), detail));
    if (rc == 0)
        rc = buf_append(&b, "\n", 1);
    if (rc < 0) {
        buf_done(&b);
        c->x = NULL;
        x_finish(x, status, 0);
        conn_close(c);
        return;
    }
    send_response(c, x, status, PROBLEM_CONTENT_TYPE, b.data, b.len, extra);
    buf_done(&b);
}

/* ---- the parser's callbacks ---- */

static int cb_refuse(struct conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cb_refuse(struct conn *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->refuse_detail, sizeof c->refuse_detail, fmt, ap);
    va_end(ap);
    c->refuse_status = status;
    return -1;
}

static int cb_nomem(struct conn *c)
{
    return cb_refuse(c, 503, "the server is out of memory");
}

/* A body is announced and may be read: checks what its Content-Length
 * says against the cap and the budget (refusing like cb_refuse), then
 * starts reading it. The memory is taken as bytes arrive (on_body). */
static int body_begin(struct conn *c)
{
    struct http_exchange *x = c->x;
    struct http_server *s = c->srv;
    if (x->has_len && x->content_len > x->body_max)
        return cb_refuse(c, 413, "the body is %" PRIu64 " bytes; the limit is %zu", x->content_len,
                         x->body_max);
    if (x->has_len && !x->s_data && !budget_fits(s, (size_t)x->content_len))
        return cb_refuse(c, 503, "the server holds too many request bodies right now; retry later");
    x->body.max = x->has_len ? (size_t)x->content_len : x->body_max;
    c->state = C_BODY;
    conn_arm(c, s->body_timeout_ms);
    return 0;
}

static int count_head(struct conn *c, size_t n)
{
    struct http_exchange *x = c->x;
    x->head_bytes += n;
    if (x->head_bytes > c->srv->max_header_bytes)
        return cb_refuse(c, 431, "the request line and headers exceed %zu bytes",
                         c->srv->max_header_bytes);
    return 0;
}

/* Keeps len more bytes of a header's name or value, counted against the
 * cap on the head. */
static int head_append(struct conn *c, const char *at, size_t len)
{
    int rc = count_head(c, len);
    if (rc)
        return rc;
    if (buf_append(&c->x->arena, at, len) < 0)
        return cb_nomem(c);
    return 0;
}

/* The request target is complete: split off the query, decode the path. */
static int url_finish(struct conn *c)
{
    struct http_exchange *x = c->x;
    if (x->url_done)
        return 0;
    x->url_done = 1;
    int rc = count_head(c, x->url.len);
    if (rc)
        return rc;
    if (buf_append(&x->url, "", 1) < 0)
        return cb_nomem(c);
    char *u = x->url.data;
    char *hash = strchr(u, '#');
    if (hash)
        *hash = '\0';
    char *q = strchr(u, '?');
    if (q)
        *q = '\0';
    x->query = q ? q + 1 : "";
    if (u[0] != '/')
        return cb_refuse(c, 400, "the request target must be a path starting with '/'");
    if (percent_decode(u, strlen(u) + 1, u, strlen(u), 0) < 0)
        return cb_refuse(c, 400, "the path has a malformed or NUL percent-escape");
    x->path = u;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_exchange *x = c->x;
    if (x->method[0] == '-')
        x->method = http_method_str((enum http_method)p->method);
    if (x->url.len + len > HTTP_MAX_URL)
        return cb_refuse(c, 414, "the request target is longer than %d bytes", HTTP_MAX_URL);
    if (buf_append(&x->url, at, len) < 0)
        return cb_nomem(c);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_exchange *x = c->x;
    int rc = url_finish(c);
    if (rc)
        return rc;
    if (x->headers_done) /* a trailer: counted, not kept */
        return count_head(c, len);
    if (x->hstate != 1) {
        if (x->hstate == 2 && buf_append(&x->arena, "", 1) < 0)
            return cb_nomem(c);
        if (x->nhdrs == HTTP_MAX_HEADERS)
            return cb_refuse(c, 431, "more than %d header fields", HTTP_MAX_HEADERS);
        x->hdrs[x->nhdrs].name = (uint32_t)x->arena.len;
        x->hdrs[x->nhdrs].value = 0;
        x->hdrs[x->nhdrs].joined = NULL;
        x->nhdrs++;
        x->hstate = 1;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)at[i]))
            return cb_refuse(c, 400, "invalid character 0x%02x in a header name",
                             (unsigned char)at[i]);
    return head_append(c, at, len);
}

static int value_start(struct conn *c)
{
    struct http_exchange *x = c->x;
    if (x->hstate != 1)
        return 0;
    if (buf_append(&x->arena, "", 1) < 0)
        return cb_nomem(c);
    x->hdrs[x->nhdrs - 1].value = (uint32_t)x->arena.len;
    x->hstate = 2;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_exchange *x = c->x;
    if (x->headers_done)
        return count_head(c, len);
    int rc = value_start(c);
    if (rc)
        return rc;
    return head_append(c, at, len);
}

static unsigned header_count(const struct http_exchange *x, const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < x->nhdrs; i++)
        if (strcasecmp(x->arena.data + x->hdrs[i].name, name) == 0)
            n++;
    return n;
}

/* Returning 1 here would mean "no body" to http_parser, so refusals
 * return -1. */
static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct http_exchange *x = c->x;
    struct http_server *s = c->srv;
    int rc = url_finish(c);
    if (rc)
        return rc;
    if (x->hstate == 1 && value_start(c))
        return -1;
    if (x->hstate == 2 && buf_append(&x->arena, "", 1) < 0)
        return cb_nomem(c);
    x->hstate = 0;
    x->headers_done = 1;
    x->method = http_method_str((enum http_method)p->method);
    x->is_head = p->method == HTTP_HEAD;
    x->http10 = p->http_major == 1 && p->http_minor == 0;
    x->keep_alive = http_should_keep_alive(p);
    if (p->http_major != 1)
        return cb_refuse(c, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    if (p->http_minor >= 1 && header_count(x, "Host") != 1)
        return cb_refuse(c, 400, "an HTTP/1.1 request needs exactly one Host header");

    int chunked = (p->flags & F_CHUNKED) != 0;
    int has_len = !chunked && (p->flags & F_CONTENTLENGTH) != 0;
    if (has_len && p->content_length > s->max_body_bytes)
        return cb_refuse(c, 413, "the body is %" PRIu64 " bytes; the limit is %zu",
                         (uint64_t)p->content_length, s->max_body_bytes);
    x->has_body = chunked || (has_len && p->content_length > 0);
    x->has_len = has_len;
    x->content_len = has_len ? (uint64_t)p->content_length : 0;
    const char *expect = http_header(x, "Expect");
    if (expect && !x->http10) {
        if (strcasecmp(expect, "100-continue") != 0)
            return cb_refuse(c, 417, "only the expectation 100-continue is supported");
        c->send_continue = x->has_body;
    }
    if (s->gate) {
        /* Stop before the body: the parser hands back the last byte of
         * the head, and the gate decides whether anything more is read. */
        c->gate_due = 1;
        http_parser_pause(p, 1);
        return 0;
    }
    if (x->has_body)
        return body_begin(c);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_exchange *x = c->x;
    struct http_server *s = c->srv;
    if (x->s_data) {
        if (len > x->body_max - x->streamed)
            return cb_refuse(c, 413, "the body is larger than %zu bytes", x->body_max);
        int rc = x->s_data(x->s_ctx, x, at, len);
        if (rc < 0)
            return cb_refuse(c, rc == -ENOSPC || rc == -EDQUOT ? 507 : 500,
                             "the server cannot store the request body: %s", strerror(-rc));
        x->streamed += len;
        return 0;
    }
    if (len > x->body_max - x->body.len)
        return cb_refuse(c, 413, "the body is larger than %zu bytes", x->body_max);
    size_t need = x->body.len + len;
    if (need >= x->body.cap) {
        /* The body grows as it arrives (as buf_reserve grows it: doubling,
         * up to the announced length), and only within the budget. */
        size_t cap = x->body.cap ? x->body.cap : 64;
        while (cap <= need)
            cap *= 2;
        if (cap > x->body.max + 1)
            cap = x->body.max + 1;
        if (cap > x->body_acct && !budget_fits(s, cap - x->body_acct))
            return cb_refuse(c, 503,
                             "the server holds too many request bodies right now; retry later");
    }
    if (buf_append(&x->body, at, len) < 0)
        return cb_nomem(c);
    if (x->body.cap > x->body_acct) {
        budget_add(s, x->body.cap - x->body_acct);
        x->body_acct = x->body.cap;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->msg_done = 1; /* the body is NUL-terminated already (buf.h) */
    /* Stop right after this message: the rest of the buffer is the next
     * request, parsed only once this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- driving the parser ---- */

/* Hands a request whose headers are complete to the gate, reading paused. */
static void conn_gate(struct conn *c)
{
    struct http_server *s = c->srv;
    struct http_exchange *x = c->x;
    c->state = C_GATE;
    c->gated = 1;
    (void)uv_timer_stop(&c->timer);
    conn_read(c, 0);
    x->in_handler = 1;
    s->nhandler++;
    c->in_parse = 1;
    s->gate(s->ctx, x);
    c->in_parse = 0;
}

/* Headers are in, the body is not: tells the client to send it. */
static int send_continue(struct conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->send_continue = 0;
    char *m = malloc(sizeof cont - 1);
    if (!m)
        return -ENOMEM;
    memcpy(m, cont, sizeof cont - 1);
    return conn_send(c, m, sizeof cont - 1, W_RAW);
}

/* The gate answered instead of passing. A body announced is never read,
 * so the connection closes after the answer; without one it may go on,
 * with the parser started afresh past the head's last byte (still
 * unparsed, see on_headers_complete). */
static void gate_refused(struct conn *c, struct http_exchange *x)
{
    c->send_continue = 0;
    if (x->has_body) {
        x->close = 1;
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->skip_lf = 1;
}

static void conn_dispatch(struct conn *c)
{
    struct http_server *s = c->srv;
    struct http_exchange *x = c->x;
    x->s_done = 1; /* a streamed body is complete */
    c->state = C_HANDLER;
    (void)uv_timer_stop(&c->timer);
    conn_read(c, 0);
    x->in_handler = 1;
    s->nhandler++;
    s->handler(s->ctx, x);
}

/* What was wrong with the client's request, in HTTP's terms: never the
 * parser's own names (HPE_...) or wording, which say which library reads
 * the request and nothing the client can act on. */
static const char *parse_error_detail(enum http_errno e)
{
    switch (e) {
    case HPE_INVALID_METHOD:
        return "the request method is not an HTTP method: send GET, HEAD, POST, PUT, PATCH, "
               "DELETE or OPTIONS";
    case HPE_INVALID_VERSION:
        return "the request line must end in HTTP/1.1 or HTTP/1.0";
    case HPE_INVALID_URL:
    case HPE_INVALID_HOST:
    case HPE_INVALID_PORT:
    case HPE_INVALID_PATH:
    case HPE_INVALID_QUERY_STRING:
    case HPE_INVALID_FRAGMENT:
        return "the request target has a character a URL cannot hold; percent-encode it";
    case HPE_INVALID_HEADER_TOKEN:
        return "a header name or value has a character HTTP does not allow there";
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        return "Content-Length must be one decimal number, sent once, and not with "
               "Transfer-Encoding";
    case HPE_INVALID_CHUNK_SIZE:
        return "a chunk of the chunked body has a malformed size line";
    case HPE_INVALID_TRANSFER_ENCODING:
        return "Transfer-Encoding must end in chunked";
    case HPE_HEADER_OVERFLOW:
        return "the request line and headers are too long";
    case HPE_LF_EXPECTED:
    case HPE_INVALID_CONSTANT:
    case HPE_STRICT:
        return "the request is not well-formed HTTP/1.1: a line must end in CRLF and follow "
               "the request syntax";
    default:
        return "the request is not well-formed HTTP/1.1";
    }
}

/* Feeds bytes to the parser. Returns how many it used: fewer than len when
 * a request completed or went to the gate (the rest belongs to the next
 * one, or waits for the gate), all of them when the connection is
 * refused. It may use none when the head's last byte begins data and the
 * gate got the request (c->gated): the parser stopped before that byte. */
static size_t conn_parse(struct conn *c, const char *data, size_t len)
{
    struct http_server *s = c->srv;
    c->gated = 0;
    if (len == 0)
        return 0;
    if (c->skip_lf) {
        c->skip_lf = 0;
        if (data[0] == '\n')
            return 1;
    }
    if (!c->x) {
        if (c->refused) {
            conn_refuse(c, 503, "the server has reached its connection limit; retry later",
                        "Retry-After: 5\r\n");
            return len;
        }
        c->x = x_new(c);
        if (!c->x) {
            conn_close(c);
            return len;
        }
        c->state = C_HEAD;
        c->raw_head = 0;
        idle_remove(c);
        /* The header deadline is absolute: armed once per request, never
         * pushed back by bytes that trickle in. On a new connection it
         * runs from accept (armed there), so a client cannot hold the
         * connection for a silent header_timeout_ms and then another one
         * by sending a byte; after a keep-alive response it runs from the
         * request's first byte. */
        if (c->served > 0)
            conn_arm(c, s->header_timeout_ms);
    }
    c->refuse_status = 0;
    size_t n = http_parser_execute(&c->parser, &s->settings, data, len);
    if (c->msg_done) {
        c->msg_done = 0;
        c->send_continue = 0;
        http_parser_pause(&c->parser, 0);
        conn_dispatch(c);
        return n;
    }
    if (c->gate_due) {
        c->gate_due = 0;
        conn_gate(c);
        return n;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e != HPE_OK) {
        if (c->refuse_status) {
            conn_refuse(c, c->refuse_status, c->refuse_detail,
                        c->refuse_status == 503 ? HTTP_RETRY_AFTER : NULL);
        } else {
            conn_refuse(c, 400, parse_error_detail(e), NULL);
        }
        return len;
    }
    if (c->send_continue && send_continue(c) < 0) {
        conn_close(c);
        return len;
    }
    if (!c->x->headers_done) {
        /* Whitespace and folding are not in head_bytes; bound them too. */
        c->raw_head += n;
        if (c->raw_head > 2 * s->max_header_bytes + 1024) {
            char detail[HTTP_DETAIL_MAX];
            snprintf(detail, sizeof detail, "the request line and headers exceed %zu bytes",
                     s->max_header_bytes);
            conn_refuse(c, 431, detail, NULL);
            return len;
        }
    }
    return n;
}

/* Parses plaintext; what belongs to a later request is put aside. */
static void conn_input(struct conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && conn_parsing(c)) {
        size_t n = conn_parse(c, data + off, len - off);
        if (n == 0 && !c->gated) { /* no progress and no verdict: never loop on it */
            conn_close(c);
            return;
        }
        off += n;
    }
    if (off < len && (c->state == C_HANDLER || c->state == C_GATE ||
                      (c->state == C_WRITE && c->x && !c->x->close))) {
        if (stash_put(c, data + off, len - off) < 0)
            conn_close(c);
    }
}

/* Parses whatever is buffered (put-aside bytes, decrypted TLS records)
 * while the connection may take a request, then decides about reading. */
static void conn_pump(struct conn *c)
{
    struct http_server *s = c->srv;
    while (conn_parsing(c)) {
        if (c->stash_off < c->stash_len) {
            size_t n = conn_parse(c, c->stash + c->stash_off, c->stash_len - c->stash_off);
            if (n == 0 && !c->gated) {
                conn_close(c);
                return;
            }
            c->stash_off += n;
            if (c->stash_off >= c->stash_len)
                stash_clear(c);
            continue;
        }
        if (!c->tls || c->tls_plain)
            break;
        int r = http_tls_read(c->tls, s->pbuf, sizeof s->pbuf);
        if (r == 0)
            break;
        if (r < 0) {
            tls_flush(c); /* an alert, if TLS made one */
            conn_close(c);
            return;
        }
        conn_input(c, s->pbuf, (size_t)r);
    }
    tls_flush(c);
    conn_update_reading(c);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (n == 0 || c->state == C_CLOSED)
        return;
    if (n < 0) { /* end of stream or error alike: the client is gone */
        conn_close(c);
        return;
    }
    if (c->state == C_LINGER)
        return;
    if (c->tls && !c->tls_plain) {
        if (!c->tls_seen) {
            c->tls_seen = 1;
            /* A TLS record starts with a byte below 0x20; a request
             * method with a letter. */
            if (buf->base[0] >= 'A' && buf->base[0] <= 'Z') {
                c->tls_plain = 1;
                conn_refuse(c, 400, "this port speaks HTTPS; use an https:// URL", NULL);
                return;
            }
        }
        if (http_tls_feed(c->tls, buf->base, (size_t)n) < 0) {
            conn_close(c);
            return;
        }
        conn_pump(c);
        return;
    }
    if (c->tls_plain)
        return;
    conn_input(c, buf->base, (size_t)n);
    conn_pump(c);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct http_server *s = c->srv;
    char detail[HTTP_DETAIL_MAX];
    switch (c->state) {
    case C_WAIT:
    case C_LINGER:
        conn_close(c);
        break;
    case C_HEAD:
        snprintf(detail, sizeof detail, "the request headers did not arrive within %u ms",
                 s->header_timeout_ms);
        conn_refuse(c, 408, detail, NULL);
        break;
    case C_BODY:
        snprintf(detail, sizeof detail, "the request body did not arrive within %u ms",
                 s->body_timeout_ms);
        conn_refuse(c, 408, detail, NULL);
        break;
    case C_WRITE: {
        /* A response may take long to a slow client, but it must move. */
        size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
        if (q < c->last_wq) {
            c->last_wq = q;
            conn_arm(c, s->idle_timeout_ms);
        } else {
            conn_close(c);
        }
        break;
    }
    case C_GATE:
    case C_HANDLER:
    case C_CLOSED:
        break;
    }
}

int http_server_check_listen(const char *listen, struct op_error *err)
{
    struct sockaddr_storage ss;
    return parse_listen(listen ? listen : "", &ss, err);
}

/* ---- the listener ---- */

/* Tells a plain-HTTP client over its address's cap why, in one
 * non-blocking send on a socket whose buffer is empty; a TLS client is
 * just closed (a handshake would cost more than the refusal saves). The
 * caller closes. Best effort: a client that already sent its request may
 * see a reset instead. */
static void refuse_at_accept(struct conn *c)
{
    struct http_server *s = c->srv;
    if (s->tls)
        return;
    static const char body[] =
        "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
        "\"detail\":\"too many connections from this address; close some, or retry "
        "later\"}\n";
    char date[64];
    imf_date(date, sizeof date);
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nRetry-After: 5\r\nConnection: close\r\n\r\n%s",
                     date, PROBLEM_CONTENT_TYPE, sizeof body - 1, body);
    if (n <= 0 || (size_t)n >= sizeof msg)
        return;
    uv_buf_t b = uv_buf_init(msg, (unsigned)n);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *s = server->data;
    if (status < 0 || !s)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return; /* left in the backlog: without memory there is nothing better to do */
    c->srv = s;
    (void)uv_tcp_init(s->loop, &c->tcp);
    (void)uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->state = C_WAIT;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    snprintf(c->remote, sizeof c->remote, "-");
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || s->stopping) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) != 0 ||
        http_peer_key_of((struct sockaddr *)&ss, &c->peer) != 0) {
        conn_close(c); /* gone already, or not an IP peer: nothing to count it by */
        return;
    }
    format_addr((struct sockaddr *)&ss, c->remote, sizeof c->remote);
    /* One address may not take every connection: over its cap it is
     * refused before it costs a parser, a TLS session or a timer. */
    int rc = http_peers_take(&s->peers, &c->peer, s->max_per_address);
    if (rc < 0) {
        if (rc == -EAGAIN) {
            s->refused_address++;
            refuse_at_accept(c);
        }
        conn_close(c);
        return;
    }
    c->peer_held = 1;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;

    /* Full: an idle keep-alive connection is the cheapest to lose (its
     * client reconnects when it has something to ask), so the oldest one
     * makes room before anyone is refused. */
    if (s->nconns >= s->max_connections && s->idle_head) {
        s->evicted_idle++;
        conn_close(s->idle_head);
    }
    if (s->nconns >= s->max_connections) {
        s->refused_full++;
        if (s->nrefused >= HTTP_MAX_REFUSED) {
            conn_close(c);
            return;
        }
        c->refused = 1;
        s->nrefused++;
    } else {
        c->counted = 1;
        s->nconns++;
    }
    if (s->tls && http_tls_new(s->tls, &c->tls) < 0) {
        conn_close(c);
        return;
    }
    if (c->refused && !c->tls) {
        /* Said at once: a plain client learns it before sending. A TLS
         * client is told after its handshake, on its first request byte. */
        conn_refuse(c, 503, "the server has reached its connection limit; retry later",
                    "Retry-After: 5\r\n");
        return;
    }
    conn_arm(c, s->header_timeout_ms);
    conn_read(c, 1);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    if (s->start_failed) {
        http_tls_ctx_free(s->tls);
        http_peers_done(&s->peers);
        free(s);
        return;
    }
    s->listener_closed = 1;
    maybe_done(s);
}

int http_server_start(uv_loop_t *loop, const struct http_server_config *cfg,
                      http_handler_fn handler, http_log_fn log, void *ctx, struct http_server **out,
                      struct op_error *err)
{
    if (!loop || !cfg || !cfg->listen || !handler || !out)
        return op_error_set(err, -EINVAL, NULL, "http_server_start: missing argument");
    struct sockaddr_storage addr;
    int rc = parse_listen(cfg->listen, &addr, err);
    if (rc < 0)
        return rc;
    if (!cfg->tls_cert_file != !cfg->tls_key_file)
        return op_error_set(err, -EINVAL, cfg->tls_cert_file ? "tls_key_file" : "tls_cert_file",
                            "TLS needs both a certificate file and a key file");

    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return op_error_set(err, -ENOMEM, NULL, "out of memory for the HTTP server");
    s->loop = loop;
    s->max_header_bytes = cfg->max_header_bytes ? cfg->max_header_bytes : 16 * 1024;
    s->max_body_bytes = cfg->max_body_bytes ? cfg->max_body_bytes : 1024 * 1024;
    s->max_connections = cfg->max_connections ? cfg->max_connections : 512;
    s->max_per_address =
        cfg->max_connections_per_address ? cfg->max_connections_per_address : HTTP_PER_ADDRESS;
    s->header_timeout_ms = cfg->header_timeout_ms ? cfg->header_timeout_ms : 10000;
    s->body_timeout_ms = cfg->body_timeout_ms ? cfg->body_timeout_ms : 30000;
    s->idle_timeout_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 60000;
    s->max_buffered = cfg->max_buffered_bytes ? cfg->max_buffered_bytes : HTTP_MAX_BUFFERED_DEFAULT;
    if (s->max_buffered < s->max_body_bytes) /* else a body within its cap could never pass */
        s->max_buffered = s->max_body_bytes;
    s->gate = cfg->gate;
    if (s->max_body_bytes > SIZE_MAX / 2)
        s->max_body_bytes = SIZE_MAX / 2;
    if (s->max_header_bytes > UINT32_MAX / 2)
        s->max_header_bytes = UINT32_MAX / 2;
    s->handler = handler;
    s->log = log;
    s->ctx = ctx;
    http_parser_settings_init(&s->settings);
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;

    /* Every connection that holds a place (served or being told 503)
     * counts against its address group, and so does a new one while it is
     * being placed: at most that many groups at once. */
    if (s->max_connections > 1000000)
        s->max_connections = 1000000;
    rc = http_peers_init(&s->peers, s->max_connections + HTTP_MAX_REFUSED + 1);
    if (rc < 0) {
        free(s);
        return op_error_set(err, rc, NULL, "out of memory for the HTTP server");
    }
    if (cfg->tls_cert_file) {
        rc = http_tls_ctx_new(cfg->tls_cert_file, cfg->tls_key_file, &s->tls, err);
        if (rc < 0) {
            http_peers_done(&s->peers);
            free(s);
            return rc;
        }
    }
    rc = uv_tcp_init(loop, &s->listener);
    if (rc < 0) {
        http_tls_ctx_free(s->tls);
        http_peers_done(&s->peers);
        free(s);
        return op_error_set(err, rc, "listen", "cannot listen on %s: %s", cfg->listen,
                            uv_strerror(rc));
    }
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    if (rc < 0) {
        op_error_set(err, rc, "listen", "cannot listen on %s: %s", cfg->listen, uv_strerror(rc));
        /* The handle is initialised: it must be closed, and the server
         * is freed in the close callback on the loop's next turn. */
        s->start_failed = 1;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return rc;
    }
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);

#ifdef __GLIBC__
    /* glibc raises its mmap threshold to the largest block freed so far,
     * so after a burst of large bodies later ones come from the heap and
     * stay there. A fixed threshold keeps them in mmap, which free
     * returns to the system at once. (Process-wide; harmless for the
     * rest.) */
    (void)mallopt(M_MMAP_THRESHOLD, HTTP_MMAP_THRESHOLD);
#endif
    /* A client that resets the connection while a response is written
     * must cost an EPIPE, not the process. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        (void)sigaction(SIGPIPE, &sa, NULL);
    }
    *out = s;
    return 0;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

unsigned http_server_connections(const struct http_server *s)
{
    return s->nconns;
}

void http_server_get_stats(const struct http_server *s, struct http_server_stats *out)
{
    memset(out, 0, sizeof *out);
    out->connections = s->nconns;
    out->idle = s->nidle;
    out->addresses = http_peers_groups(&s->peers);
    out->refused_address = s->refused_address;
    out->refused_full = s->refused_full;
    out->evicted_idle = s->evicted_idle;
}

size_t http_server_buffered(const struct http_server *s)
{
    return s->buffered;
}

void http_server_stop(struct http_server *s, void (*done)(void *arg), void *arg)
{
    if (!s || s->stopping)
        return;
    s->stopping = 1;
    s->done = done;
    s->done_arg = arg;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == C_WAIT)
            conn_close(c);
    }
}

/* ---- the handler's side ---- */

const char *http_method(const struct http_exchange *x)
{
    return x->method;
}

const char *http_path(const struct http_exchange *x)
{
    return x->path ? x->path : "";
}

const char *http_query(const struct http_exchange *x)
{
    return x->query ? x->query : "";
}

const char *http_remote(const struct http_exchange *x)
{
    return x->remote;
}

const char *http_header(const struct http_exchange *x, const char *name)
{
    int first = -1;
    unsigned count = 0;
    size_t total = 0;
    for (unsigned i = 0; i < x->nhdrs; i++) {
        if (strcasecmp(x->arena.data + x->hdrs[i].name, name) != 0)
            continue;
        if (first < 0)
            first = (int)i;
        count++;
        total += strlen(x->arena.data + x->hdrs[i].value);
    }
    if (first < 0)
        return NULL;
    struct hdr *h = (struct hdr *)&x->hdrs[first]; /* the cache is not part of the request */
    if (count == 1)
        return x->arena.data + h->value;
    if (h->joined)
        return h->joined;
    size_t cap = total + 2 * (count - 1) + 1;
    char *j = malloc(cap);
    if (!j)
        return x->arena.data + h->value; /* the first one beats none */
    size_t o = 0;
    for (unsigned i = (unsigned)first; i < x->nhdrs; i++) {
        if (strcasecmp(x->arena.data + x->hdrs[i].name, name) != 0)
            continue;
        const char *v = x->arena.data + x->hdrs[i].value;
        size_t vl = strlen(v);
        if (o) {
            memcpy(j + o, ", ", 2);
            o += 2;
        }
        memcpy(j + o, v, vl);
        o += vl;
    }
    j[o] = '\0';
    h->joined = j;
    return j;
}

const char *http_body(const struct http_exchange *x, size_t *len)
{
    if (len)
        *len = x->body.len;
    return x->body.data ? x->body.data : "";
}

int http_query_param(const struct http_exchange *x, const char *name, char *out, size_t cap)
{
    const char *q = http_query(x);
    while (*q) {
        const char *end = strchr(q, '&');
        size_t seg = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', seg);
        size_t klen = eq ? (size_t)(eq - q) : seg;
        char key[256];
        int kl = percent_decode(key, sizeof key, q, klen, PERCENT_PLUS_SPACE);
        if (kl >= 0 && strcmp(key, name) == 0) {
            const char *v = eq ? eq + 1 : q + seg;
            size_t vlen = eq ? seg - klen - 1 : 0;
            if (cap == 0)
                return -E2BIG;
            return percent_decode(out, cap, v, vlen, PERCENT_PLUS_SPACE);
        }
        q += seg;
        if (*q == '&')
            q++;
    }
    return -ENOENT;
}

void http_set_user(struct http_exchange *x, const char *user)
{
    snprintf(x->user, sizeof x->user, "%s", user ? user : "");
    for (char *p = x->user; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

int http_add_header(struct http_exchange *x, const char *name, const char *value)
{
    if (!name || !value || !*name)
        return -EINVAL;
    for (const char *p = name; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return -EINVAL;
    if (!value_ok(value))
        return -EINVAL;
    /* The server owns framing and the date. */
    if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0 ||
        strcasecmp(name, "Date") == 0)
        return -EINVAL;
    if (strcasecmp(name, "Connection") == 0) {
        if (strcasecmp(value, "close") != 0)
            return -EINVAL;
        x->close = 1;
        return 0;
    }
    if (x->nrh >= HTTP_MAX_RESP_HEADERS)
        return -E2BIG;
    int rc = buf_printf(&x->rh, "%s: %s\r\n", name, value);
    if (rc < 0)
        return rc == -EFBIG ? -E2BIG : rc;
    x->nrh++;
    return 0;
}

void http_respond(struct http_exchange *x, int status, const char *content_type, const void *body,
                  size_t len)
{
    if (!x)
        return;
    struct http_server *s = x->srv;
    if (x->in_handler) {
        x->in_handler = 0;
        s->nhandler--;
    }
    struct conn *c = x->conn;
    if (!c || x->gone || c->peer_gone || (c->state != C_HANDLER && c->state != C_GATE)) {
        if (c) {
            c->x = NULL;
            conn_close(c);
        }
        x_finish(x, HTTP_STATUS_GONE, 0);
        maybe_done(s);
        return;
    }
    if (c->state == C_GATE)
        gate_refused(c, x);
    send_response(c, x, status, content_type, body ? body : "", body ? len : 0, NULL);
}

void http_respond_problem(struct http_exchange *x, int status, const char *title,
                          const char *detail)
{
    struct buf b = BUF_INIT(SIZE_MAX);
    if (problem_render(&b, problem_new(status, title ? title : http_status_text(status), detail)) <
        0)
        http_respond(x, 500, "text/plain", "out of memory\n", 14);
    else
        http_respond(x, status, PROBLEM_CONTENT_TYPE, b.data, b.len);
    buf_done(&b);
}

void http_gate_pass(struct http_exchange *x, size_t max_body)
{
    if (!x)
        return;
    struct conn *c = x->conn;
    if (!c || x->gone || c->peer_gone || c->state != C_GATE) {
        http_respond(x, 500, NULL, NULL, 0); /* the client left: logged as 499 */
        return;
    }
    struct http_server *s = x->srv;
    x->in_handler = 0;
    s->nhandler--;
    x->body_max = max_body && max_body < s->max_body_bytes ? max_body : s->max_body_bytes;
    http_parser_pause(&c->parser, 0);
    if (x->has_body) {
        c->state = C_BODY;
        if (body_begin(c) < 0) {
            conn_refuse(c, c->refuse_status, c->refuse_detail,
                        c->refuse_status == 503 ? HTTP_RETRY_AFTER : NULL);
            return;
        }
        if (c->send_continue && send_continue(c) < 0) {
            conn_close(c);
            return;
        }
    } else {
        /* What is left of the head completes the request at once. */
        c->state = C_HEAD;
        conn_arm(c, s->header_timeout_ms);
    }
    if (!c->in_parse) /* a gate that answered at once: the parse goes on */
        conn_pump(c);
}

void http_gate_stream(struct http_exchange *x, size_t max_body, http_body_data_fn on_data,
                      http_body_cut_fn on_cut, void *ctx)
{
    if (x && on_data && on_cut && x->conn && !x->gone && x->conn->state == C_GATE) {
        x->s_data = on_data;
        x->s_cut = on_cut;
        x->s_ctx = ctx;
    }
    http_gate_pass(x, max_body);
}

uint64_t http_body_streamed(const struct http_exchange *x)
{
    return x->streamed;
}

void http_exchange_abort(struct http_exchange *x)
{
    if (x && x->conn && x->conn->state == C_BODY)
        conn_close(x->conn);
}

void http_set_data(struct http_exchange *x, void *data, void (*free_fn)(void *))
{
    if (x->data_free)
        x->data_free(x->data);
    x->data = data;
    x->data_free = free_fn;
}

void *http_data(const struct http_exchange *x)
{
    return x->data;
}

int http_exchange_gone(const struct http_exchange *x)
{
    if (x->gone || !x->conn)
        return 1;
    struct conn *c = x->conn;
    if (c->peer_gone)
        return 1;
    /* Reading is paused while the handler works, so ask the socket: an
     * end of stream or an error waiting in it means the client left. */
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return 0;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        c->peer_gone = 1;
        return 1;
    }
    return 0;
}
