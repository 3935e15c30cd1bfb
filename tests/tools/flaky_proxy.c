/*
 * flaky_proxy: a TCP proxy that behaves like the branch office's bad link,
 * for the sync tests and benchmarks. Between a client and one target it
 * caps bandwidth with a token bucket per direction (shared by all
 * connections, as one physical link is), delays data by a one-way latency
 * (a timer queue, never a blocking call), cuts connections after a random
 * number of bytes (clean close, or RST when --reset-prob hits), and stalls
 * forwarding for random times. Every random choice comes from a PRNG seeded
 * by --seed and the connection's index (0, 1, 2, ... in accept order), so
 * a failing run replays: the same seed gives connection N the same cut
 * point, reset decision and stall lengths. Invariants: no connection ever
 * delivers a byte past its cut point (the summary's after_cut_bytes counts
 * any that did and must be 0); user-space memory per direction stays under
 * --buffer-bytes plus one read chunk, because a side whose data cannot be
 * forwarded yet is no longer read (backpressure). Not installed.
 *
 * Usage: flaky_proxy --listen HOST:PORT --target HOST:PORT [--seed N]
 *          [--rate-kbit K] [--latency-ms MS] [--cut-after-bytes MIN:MAX]
 *          [--stall-ms MIN:MAX --stall-every-bytes N] [--reset-prob P]
 *          [--stall-conn-prob P --stall-conn-ms MIN:MAX
 *           [--stall-conn-after-bytes MIN:MAX] [--stall-seed N]]
 *          [--max-conns N] [--duration-s S] [--buffer-bytes N] [--quiet]
 * Prints "listening HOST:PORT" as the first line on stdout; on SIGTERM,
 * SIGINT or the end of --duration-s prints one summary line on stderr.
 * See docs/FLAKY_PROXY.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#define FP_CHUNK 16384                   /* one read */
#define FP_NEVER UINT64_MAX              /* no cut, no wake-up */
#define FP_MAX_BYTES (UINT64_C(1) << 48) /* cap on byte counts from the command line */
#define FP_MAX_RATE_KBIT 10000000u       /* 10 Gbit/s */
#define FP_MAX_LATENCY_MS 60000u
#define FP_MAX_STALL_MS 600000u
#define FP_MAX_CONNS 4096u
#define FP_MAX_DURATION_S (7u * 86400u)
#define FP_MIN_BUFFER 1024u
#define FP_MAX_BUFFER (16u << 20)
#define FP_CUT_GRACE_NS (UINT64_C(2) * 1000000000u) /* wait for in-flight writes at a cut */
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)

enum { UP = 0, DOWN = 1 }; /* client->target, target->client */

struct range {
    uint64_t min, max;
};

struct opts {
    struct sockaddr_storage listen_addr, target_addr;
    char listen_host[64];
    uint64_t seed;
    uint64_t stall_seed; /* the silent-connection draws; --seed unless given */
    bool have_stall_seed;
    uint64_t rate_bps; /* bytes per second per direction; 0 = unlimited */
    uint64_t latency_ms;
    struct range cut; /* max 0 = no cuts */
    struct range stall_ms;
    uint64_t stall_every; /* 0 = no stalls */
    double stall_conn_prob;
    struct range stall_conn_ms, stall_conn_at; /* stall_conn_at.max 0 = from the cut point */
    double reset_prob;
    unsigned max_conns;
    uint64_t duration_s;
    size_t buffer_bytes;
    bool quiet;
};

struct bucket {
    double rate;    /* bytes per second, 0 = unlimited */
    double tokens;  /* bytes that may be sent now */
    double depth;   /* burst: 50 ms of the rate */
    double quantum; /* smallest write worth a wake-up */
    uint64_t last_ns;
};

/* Data read from one side, waiting for its latency and tokens. */
struct chunk {
    STAILQ_ENTRY(chunk) link;
    uint64_t ready_ns;
    size_t len, off;
    char data[];
};

/* Data that went through the bucket: on the wire for --latency-ms (in the
 * direction's delay line), then handed to uv_write. */
struct wreq {
    uv_write_t req;
    STAILQ_ENTRY(wreq) link;
    struct dir *d;
    uint64_t ready_ns;
    size_t n;
    char data[];
};

struct conn;

struct dir {
    struct conn *c;
    TAILQ_ENTRY(dir) link; /* in the proxy's queue for this direction */
    bool in_list;
    int idx;
    uv_tcp_t *src, *dst;
    STAILQ_HEAD(, chunk) chunks; /* read, waiting for tokens: the modem's queue */
    STAILQ_HEAD(, wreq) line;    /* sent through the bucket, waiting out the latency */
    size_t queued;               /* bytes in chunks: what read backpressure bounds */
    size_t line_bytes;           /* bytes in line */
    size_t inflight;             /* handed to uv_write, not yet completed */
    uint64_t fwd;                /* bytes delivered in this direction */
    uint64_t eof_ready_ns;
    bool reading, eof, eof_sent, shut, done;
    uv_shutdown_t shutdown_req;
};

struct proxy;

struct conn {
    struct proxy *p;
    TAILQ_ENTRY(conn) link;
    uint64_t index;
    uv_tcp_t client, target;
    uv_connect_t connect_req;
    int open_handles;
    bool in_list, connected, cutting, closing, reset;
    struct dir dir[2];
    uint64_t sent;   /* both directions, through the bucket: what cuts and stalls count */
    uint64_t fwd;    /* both directions, delivered */
    uint64_t cut_at; /* FP_NEVER without --cut-after-bytes */
    uint64_t next_stall_at;
    uint64_t silent_at; /* FP_NEVER unless this connection stalls silently */
    uint64_t silent_ms;
    uint64_t stalled_until_ns;
    uint64_t cut_ns;
    uint64_t stall_rng;
    char why[160]; /* how it ended, for the log line */
};

struct stats {
    uint64_t conns, refused, connect_failed, bytes[2], cuts, resets, stalls, stall_ms, after_cut;
    uint64_t silent_stalls;
    uint64_t buffered, peak_buffered; /* bytes held in user space, all connections */
    /* wall clock, ms since the epoch (0: never): the first connection
     * accepted, the last byte written on towards HQ and towards the node */
    uint64_t first_conn_ms, last_fwd_ms[2];
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct proxy {
    uv_loop_t *loop;
    struct opts o;
    uv_tcp_t listener;
    uv_timer_t pump_timer, duration_timer;
    uv_signal_t sigterm, sigint;
    bool stopping;
    size_t line_cap; /* per direction: delay line + writes, rate x latency + --buffer-bytes */
    struct bucket bucket[2];
    TAILQ_HEAD(, conn) conns;         /* open connections */
    TAILQ_HEAD(dir_queue, dir) dq[2]; /* per direction; served ones go to the back */
    unsigned nconns;
    uint64_t next_index;
    struct stats st;
};

/* ---- seeded randomness --------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [r.min, r.max]; the modulo bias is far below what a test sees. */
static uint64_t draw(uint64_t *s, struct range r)
{
    return r.min + splitmix64(s) % (r.max - r.min + 1);
}

static double draw_unit(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) / (double)(UINT64_C(1) << 53);
}

/* Each connection gets two independent streams: one for its cut point and
 * reset decision (drawn at accept, so they never depend on timing), one for
 * stall lengths. */
static uint64_t stream_seed(uint64_t seed, uint64_t index, uint64_t stream)
{
    uint64_t s = seed;
    uint64_t a = splitmix64(&s);
    uint64_t t = index * UINT64_C(0xD1B54A32D192ED03) + stream * UINT64_C(0xA24BAED4963EE407);
    return a ^ splitmix64(&t);
}

/* ---- helpers -------------------------------------------------------------- */

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void say(struct proxy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct proxy *p, const char *fmt, ...)
{
    va_list ap;
    if (p->o.quiet)
        return;
    fputs("flaky_proxy: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void pump(struct proxy *p);
static void conn_close(struct conn *c, bool reset, const char *why);

static void bucket_refill(struct bucket *b, uint64_t now)
{
    if (b->rate <= 0)
        return;
    b->tokens += (double)(now - b->last_ns) * b->rate / (double)NS_PER_S;
    if (b->tokens > b->depth)
        b->tokens = b->depth;
    b->last_ns = now;
}

/* Every change to a direction's queue goes through here, so the summary's
 * peak_buffered_bytes is the true high-water mark of the proxy's buffers. */
static void held_add(struct dir *d, size_t *counter, size_t n)
{
    struct stats *st = &d->c->p->st;
    *counter += n;
    st->buffered += n;
    if (st->buffered > st->peak_buffered)
        st->peak_buffered = st->buffered;
}

static void held_sub(struct dir *d, size_t *counter, size_t n)
{
    *counter -= n;
    d->c->p->st.buffered -= n;
}

static void free_chunks(struct dir *d)
{
    struct chunk *k;
    while ((k = STAILQ_FIRST(&d->chunks)) != NULL) {
        STAILQ_REMOVE_HEAD(&d->chunks, link);
        held_sub(d, &d->queued, k->len - k->off);
        free(k);
    }
}

static void free_line(struct dir *d)
{
    struct wreq *w;
    while ((w = STAILQ_FIRST(&d->line)) != NULL) {
        STAILQ_REMOVE_HEAD(&d->line, link);
        held_sub(d, &d->line_bytes, w->n);
        free(w);
    }
}

static void list_remove(struct proxy *p, struct conn *c)
{
    if (!c->in_list)
        return;
    TAILQ_REMOVE(&p->conns, c, link);
    c->in_list = false;
}

static void list_append(struct proxy *p, struct conn *c)
{
    TAILQ_INSERT_TAIL(&p->conns, c, link);
    c->in_list = true;
}

static void dlist_remove(struct proxy *p, struct dir *d)
{
    if (!d->in_list)
        return;
    TAILQ_REMOVE(&p->dq[d->idx], d, link);
    d->in_list = false;
}

static void dlist_append(struct proxy *p, struct dir *d)
{
    TAILQ_INSERT_TAIL(&p->dq[d->idx], d, link);
    d->in_list = true;
}

/* ---- connection end -------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct proxy *p = c->p;
    list_remove(p, c);
    dlist_remove(p, &c->dir[UP]);
    dlist_remove(p, &c->dir[DOWN]);
    for (int i = 0; i < 2; i++) {
        free_chunks(&c->dir[i]);
        free_line(&c->dir[i]);
    }
    p->nconns--;
    free(c);
}

static void close_handle(struct conn *c, uv_tcp_t *h, bool reset)
{
    if (uv_is_closing((uv_handle_t *)h))
        return;
    /* uv_tcp_close_reset refuses a handle with a shutdown under way; such a
     * side gets an ordinary close. */
    if (reset && uv_tcp_close_reset(h, on_conn_handle_closed) == 0)
        return;
    uv_close((uv_handle_t *)h, on_conn_handle_closed);
}

static void conn_close(struct conn *c, bool reset, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    if (!c->why[0])
        snprintf(c->why, sizeof c->why, "%s", why);
    if (c->cutting)
        say(c->p,
            "conn %" PRIu64 " cut after %" PRIu64 " bytes (up %" PRIu64 ", down %" PRIu64 ")%s",
            c->index, c->fwd, c->dir[UP].fwd, c->dir[DOWN].fwd, reset ? ", reset" : "");
    else
        say(c->p, "conn %" PRIu64 " closed: %s (up %" PRIu64 ", down %" PRIu64 ")", c->index,
            c->why, c->dir[UP].fwd, c->dir[DOWN].fwd);
    close_handle(c, &c->client, reset);
    if (c->open_handles > 1)
        close_handle(c, &c->target, reset);
}

static void conn_fail(struct conn *c, int err, const char *where)
{
    if (!c->closing && !c->why[0])
        snprintf(c->why, sizeof c->why, "%s: %s", where, uv_strerror(err));
    conn_close(c, false, "error");
}

/* A cut drops what still waits for tokens; what already went through the
 * bucket is on the wire and is delivered after its latency. Both sides are
 * closed once the delay lines are empty and the writes handed to the kernel
 * have completed, so the receiver sees exactly cut_at bytes (fewer with a
 * reset, which discards unsent kernel data). */
static void cut_begin(struct conn *c, uint64_t now)
{
    struct proxy *p = c->p;
    c->cutting = true;
    c->cut_ns = now;
    p->st.cuts++;
    if (c->reset)
        p->st.resets++;
    for (int i = 0; i < 2; i++) {
        struct dir *d = &c->dir[i];
        if (d->reading)
            (void)uv_read_stop((uv_stream_t *)d->src);
        d->reading = false;
        free_chunks(d);
    }
}

static bool cut_drained(const struct conn *c)
{
    return c->dir[UP].line_bytes + c->dir[DOWN].line_bytes + c->dir[UP].inflight +
               c->dir[DOWN].inflight ==
           0;
}

/* ---- reading ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct chunk *k = malloc(sizeof *k + FP_CHUNK);
    *buf = uv_buf_init(k ? k->data : NULL, k ? FP_CHUNK : 0);
}

static struct chunk *chunk_of(const uv_buf_t *buf)
{
    return buf->base ? (struct chunk *)(buf->base - offsetof(struct chunk, data)) : NULL;
}

static void dir_read_start(struct dir *d);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct proxy *p = c->p;
    struct dir *d = (s == (uv_stream_t *)&c->client) ? &c->dir[UP] : &c->dir[DOWN];
    struct chunk *k = chunk_of(buf);

    if (nread <= 0) {
        free(k);
        if (nread == 0)
            return;
        if (nread == UV_ENOBUFS) {
            conn_fail(c, nread, "out of memory");
            return;
        }
        if (nread != UV_EOF) {
            conn_fail(c, (int)nread, d->idx == UP ? "reading client" : "reading target");
            return;
        }
        (void)uv_read_stop(s);
        d->reading = false;
        d->eof = true;
        pump(p);
        return;
    }
    if (c->cutting || c->closing) {
        free(k); /* past the cut: lost on the wire */
        return;
    }
    if ((size_t)nread < FP_CHUNK / 2) {
        /* Slow links deliver small reads; keep them from pinning 16 KiB each. */
        struct chunk *small = realloc(k, sizeof *k + (size_t)nread);
        if (small)
            k = small;
    }
    k->len = (size_t)nread;
    k->off = 0;
    STAILQ_INSERT_TAIL(&d->chunks, k, link);
    held_add(d, &d->queued, (size_t)nread);
    if (d->queued >= p->o.buffer_bytes) {
        (void)uv_read_stop(s);
        d->reading = false;
    }
    pump(p);
}

static void dir_read_start(struct dir *d)
{
    struct conn *c = d->c;
    if (d->reading || d->eof || c->cutting || c->closing)
        return;
    if (d->queued >= c->p->o.buffer_bytes / 2)
        return;
    int r = uv_read_start((uv_stream_t *)d->src, on_alloc, on_read);
    if (r < 0) {
        conn_fail(c, r, "starting to read");
        return;
    }
    d->reading = true;
}

/* ---- writing ------------------------------------------------------------------ */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct dir *d = w->d;
    struct conn *c = d->c;
    held_sub(d, &d->inflight, w->n);
    free(w);
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0) {
        conn_fail(c, status, d->idx == UP ? "writing to target" : "writing to client");
        return;
    }
    pump(c->p);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct dir *d = req->data;
    struct conn *c = d->c;
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0) {
        conn_fail(c, status, "half-closing");
        return;
    }
    d->done = true;
    if (c->dir[UP].done && c->dir[DOWN].done)
        conn_close(c, false, "both sides finished");
}

/* Hands one piece of the delay line to the kernel; takes ownership of w. */
static int dir_write(struct dir *d, struct wreq *w)
{
    struct conn *c = d->c;
    struct proxy *p = c->p;
    size_t n = w->n;
    /* The self-check the summary reports: bytes beyond the cut point. */
    if (c->cut_at != FP_NEVER && c->fwd + n > c->cut_at)
        p->st.after_cut += c->fwd + n - (c->fwd > c->cut_at ? c->fwd : c->cut_at);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
    int r = uv_write(&w->req, (uv_stream_t *)d->dst, &buf, 1, on_write);
    if (r < 0) {
        free(w);
        return r;
    }
    held_add(d, &d->inflight, n);
    c->fwd += n;
    d->fwd += n;
    p->st.bytes[d->idx] += n;
    p->st.last_fwd_ms[d->idx] = wall_ms();
    return 0;
}

/* ---- the pump: tokens, stalls, cuts, then the delay line ---------------- */

static void wake_at(uint64_t *wake, uint64_t t)
{
    if (t < *wake)
        *wake = t;
}

static void stall_begin(struct conn *c, uint64_t now, uint64_t ms, bool silent)
{
    struct proxy *p = c->p;
    if (now + ms * NS_PER_MS > c->stalled_until_ns)
        c->stalled_until_ns = now + ms * NS_PER_MS;
    p->st.stalls++;
    p->st.stall_ms += ms;
    if (silent) {
        p->st.silent_stalls++;
        say(p, "conn %" PRIu64 " stalls silently for %" PRIu64 " ms after %" PRIu64 " bytes",
            c->index, ms, c->sent);
    }
}

/* Sends at most one quantum of one direction through the bucket into its
 * delay line, as the link's modem does; true if it did. Cuts and stalls
 * count these bytes, in both directions together. */
static bool dir_admit(struct dir *d, uint64_t now, uint64_t *wake)
{
    struct conn *c = d->c;
    struct proxy *p = c->p;
    if (c->closing || c->cutting || !c->connected)
        return false;
    if (c->stalled_until_ns > now) {
        wake_at(wake, c->stalled_until_ns);
        return false;
    }
    struct chunk *k = STAILQ_FIRST(&d->chunks);
    if (!k) {
        /* End-of-stream follows the last byte onto the wire. */
        if (d->eof && !d->eof_sent) {
            d->eof_sent = true;
            d->eof_ready_ns = now + p->o.latency_ms * NS_PER_MS;
        }
        return false;
    }
    /* A receiver that does not read holds the line back (on_write wakes us). */
    if (d->line_bytes + d->inflight >= p->line_cap)
        return false;
    uint64_t n = k->len - k->off;
    if (c->cut_at != FP_NEVER)
        n = min64(n, c->cut_at - c->sent);
    if (p->o.stall_every)
        n = min64(n, c->next_stall_at - c->sent);
    if (c->silent_at != FP_NEVER && c->silent_at > c->sent)
        n = min64(n, c->silent_at - c->sent);
    struct bucket *b = &p->bucket[d->idx];
    if (b->rate > 0) {
        double need = (double)n < b->quantum ? (double)n : b->quantum;
        if (b->tokens < need) {
            wake_at(wake, now + (uint64_t)((need - b->tokens) * (double)NS_PER_S / b->rate) + 1);
            return false;
        }
        n = min64(n, (uint64_t)b->quantum);
        n = min64(n, (uint64_t)b->tokens);
        b->tokens -= (double)n;
    }
    struct wreq *w = malloc(sizeof *w + n);
    if (!w) {
        conn_fail(c, UV_ENOMEM, "out of memory");
        return false;
    }
    memcpy(w->data, k->data + k->off, n);
    w->d = d;
    w->n = (size_t)n;
    w->ready_ns = now + p->o.latency_ms * NS_PER_MS;
    STAILQ_INSERT_TAIL(&d->line, w, link);
    held_add(d, &d->line_bytes, (size_t)n);
    k->off += (size_t)n;
    held_sub(d, &d->queued, (size_t)n);
    if (k->off == k->len) {
        STAILQ_REMOVE_HEAD(&d->chunks, link);
        free(k);
    }
    c->sent += n;
    if (c->sent == c->cut_at) {
        cut_begin(c, now);
        return true;
    }
    if (p->o.stall_every && c->sent == c->next_stall_at) {
        stall_begin(c, now, draw(&c->stall_rng, p->o.stall_ms), false);
        c->next_stall_at += p->o.stall_every;
    }
    if (c->sent == c->silent_at)
        stall_begin(c, now, c->silent_ms, true);
    if (c->stalled_until_ns > now)
        wake_at(wake, c->stalled_until_ns);
    dir_read_start(d);
    return true;
}

/* Delivers what has waited out its latency, then end-of-stream once
 * everything before it is through. */
static void dir_release(struct dir *d, uint64_t now, uint64_t *wake)
{
    struct conn *c = d->c;
    struct wreq *w;
    if (c->closing)
        return;
    while ((w = STAILQ_FIRST(&d->line)) != NULL) {
        if (w->ready_ns > now) {
            wake_at(wake, w->ready_ns);
            return;
        }
        STAILQ_REMOVE_HEAD(&d->line, link);
        held_sub(d, &d->line_bytes, w->n);
        int r = dir_write(d, w);
        if (r < 0) {
            conn_fail(c, r, d->idx == UP ? "writing to target" : "writing to client");
            return;
        }
    }
    if (d->eof_sent && !d->shut && d->inflight == 0 && !c->cutting) {
        if (d->eof_ready_ns > now) {
            wake_at(wake, d->eof_ready_ns);
            return;
        }
        d->shut = true;
        d->shutdown_req.data = d;
        int r = uv_shutdown(&d->shutdown_req, (uv_stream_t *)d->dst, on_shutdown);
        if (r < 0)
            conn_fail(c, r, "half-closing");
    }
}

static void release_all(struct proxy *p, uint64_t now, uint64_t *wake)
{
    struct conn *c, *next;
    for (c = TAILQ_FIRST(&p->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (!c->connected)
            continue;
        dir_release(&c->dir[UP], now, wake);
        dir_release(&c->dir[DOWN], now, wake);
    }
}

static void on_pump_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* Called after every event that can let data move. Serves every connection
 * a quantum at a time, round-robin per direction, until nothing more can go
 * now, then arms the timer for the earliest moment something can. A
 * direction that was served moves to the back of its queue: with a shared
 * bucket refilled one quantum per wake-up, a fixed order would starve every
 * connection but the first. */
static void pump(struct proxy *p)
{
    if (p->stopping)
        return;
    uint64_t now = uv_hrtime();
    uint64_t wake = FP_NEVER;
    bucket_refill(&p->bucket[UP], now);
    bucket_refill(&p->bucket[DOWN], now);
    release_all(p, now, &wake);
    for (int i = 0; i < 2; i++) {
        bool progress = true;
        while (progress && !TAILQ_EMPTY(&p->dq[i])) {
            progress = false;
            struct dir *last = TAILQ_LAST(&p->dq[i], dir_queue);
            struct dir *next;
            for (struct dir *d = TAILQ_FIRST(&p->dq[i]); d; d = next) {
                next = TAILQ_NEXT(d, link);
                if (dir_admit(d, now, &wake)) {
                    progress = true;
                    dlist_remove(p, d);
                    dlist_append(p, d);
                }
                if (d == last)
                    break;
            }
        }
    }
    /* Without latency what was just sent is due now. */
    release_all(p, now, &wake);
    struct conn *c, *cnext;
    for (c = TAILQ_FIRST(&p->conns); c; c = cnext) {
        cnext = TAILQ_NEXT(c, link);
        if (c->cutting && !c->closing) {
            uint64_t deadline = c->cut_ns + p->o.latency_ms * NS_PER_MS + FP_CUT_GRACE_NS;
            if (cut_drained(c) || now >= deadline)
                conn_close(c, c->reset, "cut");
            else
                wake_at(&wake, deadline);
        }
    }
    if (wake == FP_NEVER) {
        (void)uv_timer_stop(&p->pump_timer);
        return;
    }
    uint64_t ms = wake > now ? (wake - now + NS_PER_MS - 1) / NS_PER_MS : 1;
    uv_update_time(p->loop);
    (void)uv_timer_start(&p->pump_timer, on_pump_timer, ms ? ms : 1, 0);
}

/* ---- accepting -------------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0) {
        c->p->st.connect_failed++;
        conn_fail(c, status, "connecting to target");
        return;
    }
    c->connected = true;
    dir_read_start(&c->dir[DOWN]);
    pump(c->p);
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct proxy *p = server->data;
    if (status < 0) {
        fprintf(stderr, "flaky_proxy: accept: %s\n", uv_strerror(status));
        return;
    }
    if (p->stopping || p->nconns >= p->o.max_conns) {
        uv_tcp_t *h = malloc(sizeof *h);
        if (!h)
            return;
        (void)uv_tcp_init(p->loop, h);
        if (uv_accept(server, (uv_stream_t *)h) == 0)
            p->st.refused++;
        uv_close((uv_handle_t *)h, on_refused_closed);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->p = p;
    c->client.data = c;
    c->target.data = c;
    c->connect_req.data = c;
    (void)uv_tcp_init(p->loop, &c->client);
    c->open_handles = 1;
    p->nconns++;
    list_append(p, c);
    int r = uv_accept(server, (uv_stream_t *)&c->client);
    if (r < 0) {
        conn_fail(c, r, "accepting");
        return;
    }
    c->index = p->next_index++;
    p->st.conns++;
    if (!p->st.first_conn_ms)
        p->st.first_conn_ms = wall_ms();

    uint64_t rng = stream_seed(p->o.seed, c->index, 0);
    c->cut_at = p->o.cut.max ? draw(&rng, p->o.cut) : FP_NEVER;
    c->reset = p->o.reset_prob > 0 && draw_unit(&rng) < p->o.reset_prob;
    c->stall_rng = stream_seed(p->o.seed, c->index, 1);
    c->next_stall_at = p->o.stall_every ? p->o.stall_every : FP_NEVER;
    /* A third stream decides whether this connection goes silent, where and
     * for how long, so adding the option changes no other draw. */
    uint64_t silent_rng =
        stream_seed(p->o.have_stall_seed ? p->o.stall_seed : p->o.seed, c->index, 2);
    c->silent_at = FP_NEVER;
    if (p->o.stall_conn_prob > 0 && draw_unit(&silent_rng) < p->o.stall_conn_prob) {
        struct range at = p->o.stall_conn_at;
        if (at.max == 0)
            at = (struct range){0, c->cut_at != FP_NEVER ? c->cut_at - 1 : 65535};
        c->silent_at = draw(&silent_rng, at);
        c->silent_ms = draw(&silent_rng, p->o.stall_conn_ms);
    }
    for (int i = 0; i < 2; i++) {
        c->dir[i].c = c;
        c->dir[i].idx = i;
        STAILQ_INIT(&c->dir[i].chunks);
        STAILQ_INIT(&c->dir[i].line);
        dlist_append(p, &c->dir[i]);
    }
    c->dir[UP].src = &c->client;
    c->dir[UP].dst = &c->target;
    c->dir[DOWN].src = &c->target;
    c->dir[DOWN].dst = &c->client;
    if (c->cut_at != FP_NEVER)
        say(p, "conn %" PRIu64 " accepted: cut after %" PRIu64 " bytes%s", c->index, c->cut_at,
            c->reset ? " with reset" : "");
    else
        say(p, "conn %" PRIu64 " accepted", c->index);
    if (c->silent_at != FP_NEVER)
        say(p, "conn %" PRIu64 " will stall silently after %" PRIu64 " bytes for %" PRIu64 " ms",
            c->index, c->silent_at, c->silent_ms);
    if (c->silent_at == 0)
        stall_begin(c, uv_hrtime(), c->silent_ms, true);

    (void)uv_tcp_nodelay(&c->client, 1);
    r = uv_tcp_init_ex(p->loop, &c->target, p->o.target_addr.ss_family);
    if (r < 0) {
        conn_fail(c, r, "creating the target socket");
        return;
    }
    c->open_handles = 2;
    int rcvbuf = (int)p->o.buffer_bytes;
    (void)uv_recv_buffer_size((uv_handle_t *)&c->target, &rcvbuf);
    (void)uv_tcp_nodelay(&c->target, 1);
    r = uv_tcp_connect(&c->connect_req, &c->target, (const struct sockaddr *)&p->o.target_addr,
                       on_connect);
    if (r < 0) {
        p->st.connect_failed++;
        conn_fail(c, r, "connecting to target");
        return;
    }
    dir_read_start(&c->dir[UP]);
}

/* ---- start and stop --------------------------------------------------------- */

static void proxy_stop(struct proxy *p)
{
    if (p->stopping)
        return;
    p->stopping = true;
    uv_close((uv_handle_t *)&p->listener, NULL);
    uv_close((uv_handle_t *)&p->pump_timer, NULL);
    uv_close((uv_handle_t *)&p->duration_timer, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->sigint, NULL);
    struct conn *c;
    TAILQ_FOREACH(c, &p->conns, link)
    conn_close(c, false, "proxy stopping");
}

static void on_signal(uv_signal_t *s, int signum)
{
    proxy_stop(s->data);
}

static void on_duration(uv_timer_t *t)
{
    proxy_stop(t->data);
}

static void print_summary(const struct proxy *p)
{
    const struct stats *s = &p->st;
    fprintf(stderr,
            "flaky_proxy: summary seed=%" PRIu64 " conns=%" PRIu64 " refused=%" PRIu64
            " connect_failed=%" PRIu64 " up_bytes=%" PRIu64 " down_bytes=%" PRIu64 " cuts=%" PRIu64
            " resets=%" PRIu64 " stalls=%" PRIu64 " stall_ms=%" PRIu64 " silent_stalls=%" PRIu64
            " after_cut_bytes=%" PRIu64 " peak_buffered_bytes=%" PRIu64 " first_conn_ms=%" PRIu64
            " last_up_ms=%" PRIu64 " last_down_ms=%" PRIu64 "\n",
            p->o.seed, s->conns, s->refused, s->connect_failed, s->bytes[UP], s->bytes[DOWN],
            s->cuts, s->resets, s->stalls, s->stall_ms, s->silent_stalls, s->after_cut,
            s->peak_buffered, s->first_conn_ms, s->last_fwd_ms[UP], s->last_fwd_ms[DOWN]);
    fflush(stderr);
}

static int proxy_start(struct proxy *p)
{
    int r;
    char host[64];
    int port;
    struct sockaddr_storage bound;
    int len = sizeof bound;

    p->listener.data = p;
    p->pump_timer.data = p;
    p->duration_timer.data = p;
    p->sigterm.data = p;
    p->sigint.data = p;
    (void)uv_tcp_init(p->loop, &p->listener);
    (void)uv_timer_init(p->loop, &p->pump_timer);
    (void)uv_timer_init(p->loop, &p->duration_timer);
    (void)uv_signal_init(p->loop, &p->sigterm);
    (void)uv_signal_init(p->loop, &p->sigint);

    uint64_t now = uv_hrtime();
    for (int i = 0; i < 2; i++) {
        struct bucket *b = &p->bucket[i];
        b->rate = (double)p->o.rate_bps;
        b->depth = b->rate / 20 > 512 ? b->rate / 20 : 512;
        b->quantum = b->depth / 2;
        b->tokens = b->depth;
        b->last_ns = now;
    }
    /* The delay line holds what the link carries in one latency: rate x
     * latency, the bandwidth-delay product, plus --buffer-bytes of slack for
     * the bucket's bursts and the writes under way. Without a rate cap
     * there is no product; --buffer-bytes is then the window. */
    p->line_cap = p->o.buffer_bytes;
    if (p->o.rate_bps)
        p->line_cap += (size_t)(p->o.rate_bps * p->o.latency_ms / 1000);

    r = uv_tcp_bind(&p->listener, (const struct sockaddr *)&p->o.listen_addr, 0);
    if (r < 0) {
        fprintf(stderr, "flaky_proxy: cannot bind %s: %s\n", p->o.listen_host, uv_strerror(r));
        return r;
    }
    /* Accepted sockets inherit this: the kernel's share of the link buffer
     * stays near --buffer-bytes too. */
    int rcvbuf = (int)p->o.buffer_bytes;
    (void)uv_recv_buffer_size((uv_handle_t *)&p->listener, &rcvbuf);
    r = uv_listen((uv_stream_t *)&p->listener, 128, on_connection);
    if (r < 0) {
        fprintf(stderr, "flaky_proxy: cannot listen on %s: %s\n", p->o.listen_host, uv_strerror(r));
        return r;
    }
    r = uv_tcp_getsockname(&p->listener, (struct sockaddr *)&bound, &len);
    if (r < 0)
        return r;
    if (bound.ss_family == AF_INET6) {
        (void)uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        printf("listening [%s]:%d\n", host, port);
    } else {
        (void)uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        printf("listening %s:%d\n", host, port);
    }
    fflush(stdout);

    (void)uv_signal_start(&p->sigterm, on_signal, SIGTERM);
    (void)uv_signal_start(&p->sigint, on_signal, SIGINT);
    if (p->o.duration_s)
        (void)uv_timer_start(&p->duration_timer, on_duration, p->o.duration_s * 1000, 0);
    return 0;
}

/* ---- command line ------------------------------------------------------------ */

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

static int parse_range(const char *s, uint64_t max, struct range *out)
{
    char buf[64];
    size_t n = strlen(s);
    if (n >= sizeof buf)
        return -ERANGE;
    memcpy(buf, s, n + 1);
    char *colon = strchr(buf, ':');
    struct range r;
    if (colon)
        *colon = '\0';
    if (parse_u64(buf, max, &r.min) < 0)
        return -EINVAL;
    if (!colon)
        r.max = r.min;
    else if (parse_u64(colon + 1, max, &r.max) < 0)
        return -EINVAL;
    if (r.max < r.min)
        return -EINVAL;
    *out = r;
    return 0;
}

static int parse_prob(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= 0 && v <= 1))
        return -EINVAL;
    *out = v;
    return 0;
}

/* HOST:PORT with a numeric IPv4 host, or [IPv6]:PORT. */
static int parse_addr(const char *s, struct sockaddr_storage *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    uint64_t port;
    if (!colon || parse_u64(colon + 1, 65535, &port) < 0)
        return -EINVAL;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= sizeof host)
        return -EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    memset(out, 0, sizeof *out);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out) == 0 ? 0 : -EINVAL;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0 ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
    fputs("usage: flaky_proxy --listen HOST:PORT --target HOST:PORT [--seed N]\n"
          "         [--rate-kbit K] [--latency-ms MS] [--cut-after-bytes MIN:MAX]\n"
          "         [--stall-ms MIN:MAX --stall-every-bytes N] [--reset-prob P]\n"
          "         [--stall-conn-prob P --stall-conn-ms MIN:MAX\n"
          "          [--stall-conn-after-bytes MIN:MAX] [--stall-seed N]]\n"
          "         [--max-conns N] [--duration-s S] [--buffer-bytes N] [--quiet]\n",
          f);
}

static int bad(const char *opt, const char *val, const char *want)
{
    fprintf(stderr, "flaky_proxy: %s '%s': %s\n", opt, val, want);
    return 2;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"target", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},
        {"rate-kbit", required_argument, NULL, 'r'},
        {"latency-ms", required_argument, NULL, 'L'},
        {"cut-after-bytes", required_argument, NULL, 'c'},
        {"stall-ms", required_argument, NULL, 'S'},
        {"stall-every-bytes", required_argument, NULL, 'E'},
        {"reset-prob", required_argument, NULL, 'R'},
        {"stall-conn-prob", required_argument, NULL, 'P'},
        {"stall-conn-ms", required_argument, NULL, 'M'},
        {"stall-conn-after-bytes", required_argument, NULL, 'A'},
        {"stall-seed", required_argument, NULL, 'D'},
        {"max-conns", required_argument, NULL, 'm'},
        {"duration-s", required_argument, NULL, 'd'},
        {"buffer-bytes", required_argument, NULL, 'b'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool have_listen = false, have_target = false, have_seed = false, have_stall_ms = false;
    bool have_conn_ms = false, have_conn_at = false;
    uint64_t v;
    int ch;

    memset(o, 0, sizeof *o);
    o->max_conns = 64;
    o->buffer_bytes = 65536;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'l':
            if (parse_addr(optarg, &o->listen_addr) < 0)
                return bad("--listen", optarg, "want IPv4:PORT or [IPv6]:PORT");
            snprintf(o->listen_host, sizeof o->listen_host, "%s", optarg);
            have_listen = true;
            break;
        case 't':
            if (parse_addr(optarg, &o->target_addr) < 0)
                return bad("--target", optarg, "want IPv4:PORT or [IPv6]:PORT");
            have_target = true;
            break;
        case 's':
            if (parse_u64(optarg, UINT64_MAX, &o->seed) < 0)
                return bad("--seed", optarg, "want an unsigned 64-bit integer");
            have_seed = true;
            break;
        case 'D':
            if (parse_u64(optarg, UINT64_MAX, &o->stall_seed) < 0)
                return bad("--stall-seed", optarg, "want an unsigned 64-bit integer");
            o->have_stall_seed = true;
            break;
        case 'r':
            if (parse_u64(optarg, FP_MAX_RATE_KBIT, &v) < 0)
                return bad("--rate-kbit", optarg, "want 0 (unlimited) to 10000000");
            o->rate_bps = v * 125; /* 1 kbit/s = 1000 bit/s = 125 bytes/s */
            break;
        case 'L':
            if (parse_u64(optarg, FP_MAX_LATENCY_MS, &o->latency_ms) < 0)
                return bad("--latency-ms", optarg, "want 0 to 60000");
            break;
        case 'c':
            if (parse_range(optarg, FP_MAX_BYTES, &o->cut) < 0 || o->cut.min == 0)
                return bad("--cut-after-bytes", optarg, "want MIN:MAX (or N), 1 <= MIN <= MAX");
            break;
        case 'S':
            if (parse_range(optarg, FP_MAX_STALL_MS, &o->stall_ms) < 0)
                return bad("--stall-ms", optarg, "want MIN:MAX (or N), 0 to 600000");
            have_stall_ms = true;
            break;
        case 'E':
            if (parse_u64(optarg, FP_MAX_BYTES, &o->stall_every) < 0 || o->stall_every == 0)
                return bad("--stall-every-bytes", optarg, "want a positive byte count");
            break;
        case 'R':
            if (parse_prob(optarg, &o->reset_prob) < 0)
                return bad("--reset-prob", optarg, "want a probability from 0 to 1");
            break;
        case 'P':
            if (parse_prob(optarg, &o->stall_conn_prob) < 0)
                return bad("--stall-conn-prob", optarg, "want a probability from 0 to 1");
            break;
        case 'M':
            if (parse_range(optarg, FP_MAX_STALL_MS, &o->stall_conn_ms) < 0)
                return bad("--stall-conn-ms", optarg, "want MIN:MAX (or N), 0 to 600000");
            have_conn_ms = true;
            break;
        case 'A':
            if (parse_range(optarg, FP_MAX_BYTES, &o->stall_conn_at) < 0 ||
                o->stall_conn_at.max == 0)
                return bad("--stall-conn-after-bytes", optarg,
                           "want MIN:MAX (or N), 0 <= MIN <= MAX, MAX >= 1");
            have_conn_at = true;
            break;
        case 'm':
            if (parse_u64(optarg, FP_MAX_CONNS, &v) < 0 || v == 0)
                return bad("--max-conns", optarg, "want 1 to 4096");
            o->max_conns = (unsigned)v;
            break;
        case 'd':
            if (parse_u64(optarg, FP_MAX_DURATION_S, &o->duration_s) < 0 || o->duration_s == 0)
                return bad("--duration-s", optarg, "want 1 to 604800");
            break;
        case 'b':
            if (parse_u64(optarg, FP_MAX_BUFFER, &v) < 0 || v < FP_MIN_BUFFER)
                return bad("--buffer-bytes", optarg, "want 1024 to 16777216");
            o->buffer_bytes = (size_t)v;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "flaky_proxy: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!have_listen || !have_target) {
        fputs("flaky_proxy: --listen and --target are required\n", stderr);
        usage(stderr);
        return 2;
    }
    if (have_stall_ms != (o->stall_every != 0)) {
        fputs("flaky_proxy: --stall-ms and --stall-every-bytes go together\n", stderr);
        return 2;
    }
    if ((o->stall_conn_prob > 0) != have_conn_ms) {
        fputs("flaky_proxy: --stall-conn-prob (above 0) and --stall-conn-ms go together\n", stderr);
        return 2;
    }
    if (o->have_stall_seed && !have_conn_ms) {
        fputs("flaky_proxy: --stall-seed needs --stall-conn-prob and --stall-conn-ms\n", stderr);
        return 2;
    }
    if (have_conn_at && !have_conn_ms) {
        fputs("flaky_proxy: --stall-conn-after-bytes needs --stall-conn-prob and "
              "--stall-conn-ms\n",
              stderr);
        return 2;
    }
    if (o->reset_prob > 0 && o->cut.max == 0) {
        fputs("flaky_proxy: --reset-prob needs --cut-after-bytes (resets happen at cuts)\n",
              stderr);
        return 2;
    }
    if (!have_seed) {
        /* Still replayable: the seed is in the summary line. */
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        o->seed = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct proxy p;
    memset(&p, 0, sizeof p);
    TAILQ_INIT(&p.conns);
    TAILQ_INIT(&p.dq[UP]);
    TAILQ_INIT(&p.dq[DOWN]);
    int r = parse_args(argc, argv, &p.o);
    if (r)
        return r;
    /* A peer that vanishes mid-write must become an EPIPE, not a signal. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);

    p.loop = uv_default_loop();
    if (proxy_start(&p) < 0)
        return 1;
    fprintf(stderr, "flaky_proxy: seed %" PRIu64 "\n", p.o.seed);
    r = uv_run(p.loop, UV_RUN_DEFAULT);
    print_summary(&p);
    (void)uv_loop_close(p.loop);
    return r < 0 ? 1 : 0;
}
