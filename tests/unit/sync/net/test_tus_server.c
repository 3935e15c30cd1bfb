/*
 * Tests for sync/net/tus_server.c. The parent runs a real http_server on
 * 127.0.0.1 (port 0) with the tus module as its handler; each test forks a
 * child that speaks tus over plain blocking sockets and exits with its
 * number of failed checks. The parent checks what reached the completion
 * callback and what is on disk, restarts the module on the same spool to
 * check durability, and fakes the leftovers of a crash (a torn append, an
 * orphan data file, a temp state file). alarm() and loop watchdogs make sure
 * the test always ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <uv.h>

#include "http_server.h"
#include "testhttp.h"
#include "fixture.h"
#include "testlib.h"
#include "tus_server.h"

#define CHUNK 40000u
#define TOTAL (3u * CHUNK)

/* ---- shared between parent and child ---- */

struct shared {
    char id[4][TUS_ID_LEN + 1];
    int port;       /* of the server child in test_kill9 */
    int completes;  /* completion calls seen by server children */
    int sha_bad;    /* completions whose data file was wrong */
    int applied;    /* completions that returned (test_shared_spool) */
    pid_t hang_pid; /* a server child whose on_complete never returns */
};

static struct shared *sh;

static unsigned char payload[TOTAL];

static void make_payload(void)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < TOTAL; i++) {
        x = x * 1103515245u + 12345u;
        payload[i] = (unsigned char)(x >> 16);
    }
}

static void sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static void b64(const void *p, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* ---- the parent: server, module, callbacks ---- */

struct fx {
    struct th_loop tl;
    struct http_server *srv;
    struct tus_server *tus;
    char dir[64];
    int port;
    int stopped;
    /* completion callback record */
    int completes;
    int complete_rc;   /* what the callback returns */
    int release_in_cb; /* call tus_server_release from the callback */
    int settle_in_cb;  /* call tus_server_settle from the callback */
    int settle_rc;     /* what the last tus_server_settle there returned */
    char c_id[TUS_ID_LEN + 1];
    char c_principal[TUS_PRINCIPAL_MAX];
    char c_segment[32];
    char c_node[32];
    uint64_t c_length;
    int c_sha_ok;
    unsigned cap_incomplete;
    uint64_t cap_spool;
    unsigned cap_uploads;
    uint64_t settled_keep;
    /* counted per call: each request must be authenticated exactly once */
    int authorizes;
    int auth_rc; /* when not 0, what authorize returns */
    /* the admit callback, when use_admit: what it saw and returns */
    int use_admit;
    int admits;
    int admit_rc;
    char admit_detail[128];
    char a_principal[TUS_PRINCIPAL_MAX];
    char a_node[32];
    /* the injected clock, when use_clock: wall ms since the epoch */
    int use_clock;
    uint64_t clock_ms;
    /* with an http_server gate that streams PATCH bodies (tus_server_gate) */
    int use_gate;
    /* completing later: deliver_before_answer, on_complete answers
     * TUS_COMPLETE_LATER and a timer calls tus_server_finish(finish_rc) */
    int before_answer;
    int later;
    int finish_rc;
    unsigned busy_s; /* what the busy callback answers */
    int shared;      /* tus_server_config.shared: one spool, several servers */
    uv_timer_t later_timer;
    int early; /* with later: answer the waiting request at 50 ms (tus_server_answer_waiting) */
    struct http_exchange *pend_x;
    char pend_id[TUS_ID_LEN + 1];
};

static uint64_t fake_clock(void *ctx)
{
    struct fx *f = ctx;
    return f->clock_ms;
}

static int admit(void *ctx, const char *principal, const struct tus_metadata *md, char *detail,
                 size_t cap)
{
    struct fx *f = ctx;
    f->admits++;
    snprintf(f->a_principal, sizeof f->a_principal, "%s", principal);
    const char *node = tus_metadata_get(md, "node_id", NULL);
    snprintf(f->a_node, sizeof f->a_node, "%s", node ? node : "(none)");
    snprintf(detail, cap, "%s", f->admit_detail);
    return f->admit_rc;
}

static int authorize(void *ctx, struct http_exchange *x, char *principal, size_t cap)
{
    struct fx *f = ctx;
    f->authorizes++;
    if (f->auth_rc)
        return f->auth_rc;
    const char *a = http_header(x, "Authorization");
    if (!a || strncmp(a, "Bearer ", 7) != 0)
        return -EACCES;
    if (strcmp(a + 7, "node-a") != 0 && strcmp(a + 7, "node-b") != 0 &&
        strcmp(a + 7, "node-c") != 0)
        return -EACCES;
    snprintf(principal, cap, "%s", a + 7);
    return 0;
}

/* The outcome of a completion taken with TUS_COMPLETE_LATER, 300 ms on. */
static void later_fire(uv_timer_t *t)
{
    struct fx *f = t->data;
    if (f->pend_x)
        (void)http_add_header(f->pend_x, "Test-Outcome", "finished later");
    if (f->finish_rc == 0)
        CHECK_EQ(tus_server_settle(f->tus, f->pend_id), 0);
    tus_server_finish(f->tus, f->pend_id, f->pend_x, f->finish_rc);
    f->pend_x = NULL;
}

/* The waiting request answered early; the outcome follows 250 ms on. */
static void early_fire(uv_timer_t *t)
{
    struct fx *f = t->data;
    CHECK_EQ(tus_server_answer_waiting(f->tus, f->pend_id, f->pend_x), 0);
    f->pend_x = NULL;
    uv_timer_start(&f->later_timer, later_fire, 250, 0);
}

static int on_complete(void *ctx, const char *id, const char *principal,
                       const struct tus_metadata *md, const char *data_path, uint64_t length)
{
    struct fx *f = ctx;
    f->completes++;
    snprintf(f->c_id, sizeof f->c_id, "%s", id);
    snprintf(f->c_principal, sizeof f->c_principal, "%s", principal);
    const char *seg = tus_metadata_get(md, "segment", NULL);
    const char *node = tus_metadata_get(md, "node_id", NULL);
    snprintf(f->c_segment, sizeof f->c_segment, "%s", seg ? seg : "(none)");
    snprintf(f->c_node, sizeof f->c_node, "%s", node ? node : "(none)");
    f->c_length = length;
    f->c_sha_ok = 0;
    FILE *fp = fopen(data_path, "rb");
    if (fp) {
        static unsigned char buf[TOTAL + 100];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        unsigned char a[32], b[32];
        sha256(buf, n, a);
        sha256(payload, TOTAL, b);
        f->c_sha_ok = n == TOTAL && memcmp(a, b, 32) == 0;
        if (!f->c_sha_ok && length == TOTAL)
            fprintf(stderr, "  data file has %zu bytes, sha256 %s\n", n,
                    memcmp(a, b, 32) ? "differs" : "matches");
    }
    sh->completes++;
    sh->sha_bad += length > 0 && !f->c_sha_ok;
    if (length == 0)
        f->c_sha_ok = -1; /* nothing to compare */
    if (sh->hang_pid == getpid())
        for (;;)
            pause(); /* an apply that never ends: killed with its server */
    if (f->release_in_cb)
        CHECK_EQ(tus_server_release(f->tus, id), 0);
    if (f->settle_in_cb)
        f->settle_rc = tus_server_settle(f->tus, id);
    sh->applied++;
    if (f->later) {
        f->pend_x = tus_server_completing(f->tus);
        snprintf(f->pend_id, sizeof f->pend_id, "%s", id);
        uv_timer_start(&f->later_timer, f->early ? early_fire : later_fire, f->early ? 50 : 300, 0);
        return TUS_COMPLETE_LATER;
    }
    return f->complete_rc;
}

static unsigned busy_cb(void *ctx)
{
    return ((struct fx *)ctx)->busy_s;
}

static void on_done(void *arg)
{
    struct fx *f = arg;
    f->stopped = 1;
    f->srv = NULL;
}

static int module_open(struct fx *f)
{
    struct tus_server_config c = {
        .spool_dir = f->dir,
        .max_upload_bytes = 1 << 20,
        .max_spool_bytes = f->cap_spool,
        .max_incomplete_per_principal = f->cap_incomplete,
        .max_uploads = f->cap_uploads,
        .settled_keep_seconds = f->settled_keep,
        .authorize = authorize,
        .admit = f->use_admit ? admit : NULL,
        .on_complete = on_complete,
        .busy = f->busy_s ? busy_cb : NULL,
        .deliver_before_answer = f->before_answer,
        .ctx = f,
        .now_ms = f->use_clock ? fake_clock : NULL,
        .clock_ctx = f,
        .shared = f->shared,
    };
    struct op_error err;
    op_error_clear(&err);
    int rc = tus_server_new(&c, &f->tus, &err);
    if (rc < 0)
        fprintf(stderr, "tus_server_new: %s\n", err.msg);
    return rc;
}

/* The gate an embedder puts in front: the principal as authorize finds
 * it, then tus_server_gate streams PATCH bodies to the upload's file. */
static void gate(void *ctx, struct http_exchange *x)
{
    struct tus_server *tus = ctx;
    const char *a = http_header(x, "Authorization");
    if (a && strncmp(a, "Bearer ", 7) == 0 && tus_server_gate(tus, x, a + 7))
        return;
    http_gate_pass(x, 0);
}

static int server_start(struct fx *f)
{
    struct http_server_config c = {
        .gate = f->use_gate ? gate : NULL,
        .listen = "127.0.0.1:0",
        .max_body_bytes = 65536,
        .max_connections = 16,
        .header_timeout_ms = 3000,
        .body_timeout_ms = 3000,
        .idle_timeout_ms = 3000,
    };
    struct op_error err;
    op_error_clear(&err);
    f->stopped = 0;
    int rc = http_server_start(&f->tl.loop, &c, tus_server_handler, NULL, f->tus, &f->srv, &err);
    if (rc < 0) {
        fprintf(stderr, "cannot start: %s\n", err.msg);
        return rc;
    }
    f->port = http_server_port(f->srv);
    return 0;
}

static void server_stop(struct fx *f)
{
    if (f->srv)
        http_server_stop(f->srv, on_done, f);
    CHECK_EQ(th_run_until(&f->tl, &f->stopped, 5000), 0);
}

static int fx_init_caps(struct fx *f, unsigned cap_incomplete, uint64_t cap_spool,
                        unsigned cap_uploads, uint64_t settled_keep)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_tus_XXXXXX");
    if (!mkdtemp(f->dir))
        return -errno;
    f->cap_incomplete = cap_incomplete;
    f->cap_spool = cap_spool;
    f->cap_uploads = cap_uploads;
    f->settled_keep = settled_keep;
    th_loop_init(&f->tl);
    memset(sh, 0, sizeof *sh);
    if (module_open(f) < 0 || server_start(f) < 0)
        return -1;
    return 0;
}

static int fx_init(struct fx *f, unsigned cap_incomplete, uint64_t cap_spool)
{
    return fx_init_caps(f, cap_incomplete, cap_spool, 0, 0);
}

/* Opens the module again on the same spool with what f says now. */
static void fx_reopen(struct fx *f)
{
    server_stop(f);
    tus_server_free(f->tus);
    f->tus = NULL;
    CHECK_EQ(module_open(f), 0);
    CHECK_EQ(server_start(f), 0);
}

/* Switches f to the injected clock, set to the real time (so that it
 * agrees with the files' mtimes) and then moved only by the test, and
 * reopens the module. */
static void fx_use_clock(struct fx *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    f->use_clock = 1;
    f->clock_ms = (uint64_t)ts.tv_sec * 1000u; /* a whole second: settled times are in seconds */
    fx_reopen(f);
}

static void rm_spool(const char *dir)
{
    (void)fx_remove_tree(dir);
}

static void fx_done(struct fx *f)
{
    server_stop(f);
    tus_server_free(f->tus);
    f->tus = NULL;
    CHECK_EQ(th_loop_done(&f->tl), 0);
    rm_spool(f->dir);
}

typedef int (*client_fn)(int port);

struct client {
    client_fn fn;
};

static int call_client(int port, void *arg)
{
    return ((struct client *)arg)->fn(port);
}

/* Runs fn against the server in a forked child (testloop.h). */
static int run_client(struct fx *f, client_fn fn)
{
    struct client c = {fn};
    return th_run_client(&f->tl.loop, f->port, call_client, &c);
}

static long long file_size(const struct fx *f, const char *id, const char *suffix)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s%s", f->dir, id, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static uint64_t stored_offset(const struct fx *f, const char *id)
{
    uint64_t off = UINT64_MAX;
    (void)tus_server_upload_offset(f->tus, id, &off, NULL);
    return off;
}

/* ---- the child: a blocking tus client (testhttp.h) ---- */

#define TUS "Tus-Resumable: 1.0.0\r\n"
#define AUTH_A "Authorization: Bearer node-a\r\n"
#define AUTH_B "Authorization: Bearer node-b\r\n"
#define OCTETS "Content-Type: application/offset+octet-stream\r\n"

/* Creates an upload of `length` for `auth`; copies its id into id. */
static int create(int port, const char *auth, uint64_t length, char *id)
{
    struct resp r;
    char h[512];
    /* metadata: node_id "node-a", segment "17" */
    snprintf(h, sizeof h,
             TUS
             "%sUpload-Length: %llu\r\nUpload-Metadata: node_id bm9kZS1h,segment MTc=,empty\r\n",
             auth, (unsigned long long)length);
    req(port, "POST", "/files", h, NULL, 0, &r);
    C_EQ(r.status, 201);
    const char *loc = rh(&r, "Location");
    if (!loc || strncmp(loc, "/files/", 7) != 0 || strlen(loc) != 7 + TUS_ID_LEN) {
        cfails++;
        fprintf(stderr, "  client: bad Location %s\n", loc ? loc : "(none)");
        return -1;
    }
    C_STR(rh(&r, "Tus-Resumable"), "1.0.0");
    memcpy(id, loc + 7, TUS_ID_LEN + 1);
    return 0;
}

/* PATCHes payload[off..off+len) with a correct sha256 checksum. */
static int patch(int port, const char *auth, const char *id, size_t off, size_t len, struct resp *r)
{
    unsigned char d[32];
    char d64[64], h[512], path[64];
    sha256(payload + off, len, d);
    b64(d, 32, d64);
    snprintf(h, sizeof h, TUS "%s" OCTETS "Upload-Offset: %zu\r\nUpload-Checksum: sha256 %s\r\n",
             auth, off, d64);
    snprintf(path, sizeof path, "/files/%s", id);
    return req(port, "PATCH", path, h, payload + off, len, r);
}

static long long head_offset(int port, const char *auth, const char *id)
{
    struct resp r;
    char h[256], path[64];
    snprintf(h, sizeof h, TUS "%s", auth);
    snprintf(path, sizeof path, "/files/%s", id);
    if (req(port, "HEAD", path, h, NULL, 0, &r) != 200)
        return -r.status;
    const char *o = rh(&r, "Upload-Offset");
    return o ? strtoll(o, NULL, 10) : -1;
}

/* ---- tests ---- */

static int c_options(int port)
{
    struct resp r;
    req(port, "OPTIONS", "/files", AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 204);
    C_STR(rh(&r, "Tus-Resumable"), "1.0.0");
    C_STR(rh(&r, "Tus-Version"), "1.0.0");
    C_HAS(rh(&r, "Tus-Extension"), "creation");
    C_HAS(rh(&r, "Tus-Extension"), "checksum");
    C_HAS(rh(&r, "Tus-Extension"), "termination");
    C_HAS(rh(&r, "Tus-Checksum-Algorithm"), "sha256");
    C_STR(rh(&r, "Tus-Max-Size"), "1048576");
    /* OPTIONS needs no Tus-Resumable, but it does need credentials */
    req(port, "OPTIONS", "/files", "", NULL, 0, &r);
    C_EQ(r.status, 401);
    return cfails;
}

static void test_options(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    CHECK_EQ(run_client(&f, c_options), 0);
    fx_done(&f);
}

static int c_full(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1];
    if (create(port, AUTH_A, TOTAL, id) < 0)
        return cfails;
    memcpy(sh->id[0], id, sizeof id);
    char h[256], path[64];
    snprintf(h, sizeof h, TUS AUTH_A);
    snprintf(path, sizeof path, "/files/%s", id);
    req(port, "HEAD", path, h, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_STR(rh(&r, "Upload-Offset"), "0");
    C_STR(rh(&r, "Upload-Length"), "120000");
    C_STR(rh(&r, "Cache-Control"), "no-store");
    C_HAS(rh(&r, "Upload-Metadata"), "segment MTc=");
    for (unsigned i = 0; i < 3; i++) {
        patch(port, AUTH_A, id, i * CHUNK, CHUNK, &r);
        C_EQ(r.status, 204);
        char want[24];
        snprintf(want, sizeof want, "%u", (i + 1) * CHUNK);
        C_STR(rh(&r, "Upload-Offset"), want);
    }
    C_EQ(head_offset(port, AUTH_A, id), TOTAL);
    /* An empty PATCH at the end changes nothing (and does not complete twice). */
    snprintf(h, sizeof h, TUS AUTH_A OCTETS "Upload-Offset: %u\r\n", TOTAL);
    req(port, "PATCH", path, h, NULL, 0, &r);
    C_EQ(r.status, 204);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    return cfails;
}

static int c_head_gone(int port)
{
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), -404);
    return cfails;
}

static void test_full_upload(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    CHECK_EQ(run_client(&f, c_full), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_STR(f.c_id, sh->id[0]);
    CHECK_STR(f.c_principal, "node-a");
    CHECK_STR(f.c_segment, "17");
    CHECK_STR(f.c_node, "node-a");
    CHECK_EQ(f.c_length, TOTAL);
    CHECK_EQ(f.c_sha_ok, 1);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1);
    CHECK_EQ(st.complete, 1);
    CHECK_EQ(st.spool_bytes, TOTAL);
    /* Nothing to redeliver: the callback accepted it. */
    CHECK_EQ(tus_server_redeliver(f.tus), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(tus_server_release(f.tus, sh->id[0]), 0);
    CHECK_EQ(tus_server_release(f.tus, sh->id[0]), -ENOENT);
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), -1);
    CHECK_EQ(file_size(&f, sh->id[0], ".state"), -1);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 0);
    CHECK_EQ(st.spool_bytes, 0);
    CHECK_EQ(run_client(&f, c_head_gone), 0);
    fx_done(&f);
}

static int c_refusals(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1], h[512], path[64];
    if (create(port, AUTH_A, TOTAL, id) < 0)
        return cfails;
    memcpy(sh->id[0], id, sizeof id);
    snprintf(path, sizeof path, "/files/%s", id);
    patch(port, AUTH_A, id, 0, CHUNK, &r);
    C_EQ(r.status, 204);

    /* wrong offset: 409 with the server's offset */
    patch(port, AUTH_A, id, 2 * CHUNK, CHUNK, &r);
    C_EQ(r.status, 409);
    C_STR(rh(&r, "Upload-Offset"), "40000");
    patch(port, AUTH_A, id, 0, CHUNK, &r); /* a replay of the first chunk */
    C_EQ(r.status, 409);

    /* bad checksum: 460, nothing appended */
    unsigned char d[32];
    char d64[64];
    sha256(payload, CHUNK, d); /* digest of another chunk */
    b64(d, 32, d64);
    snprintf(h, sizeof h, TUS AUTH_A OCTETS "Upload-Offset: %u\r\nUpload-Checksum: sha256 %s\r\n",
             CHUNK, d64);
    req(port, "PATCH", path, h, payload + CHUNK, CHUNK, &r);
    C_EQ(r.status, 460);
    C_HAS(r.body, "\"status\":460");
    /* unsupported algorithm: 400 */
    snprintf(h, sizeof h, TUS AUTH_A OCTETS "Upload-Offset: %u\r\nUpload-Checksum: md5 %s\r\n",
             CHUNK, d64);
    req(port, "PATCH", path, h, payload + CHUNK, CHUNK, &r);
    C_EQ(r.status, 400);
    /* digest that is not base64 */
    snprintf(h, sizeof h,
             TUS AUTH_A OCTETS "Upload-Offset: %u\r\nUpload-Checksum: sha256 !!notbase64!!\r\n",
             CHUNK);
    req(port, "PATCH", path, h, payload + CHUNK, CHUNK, &r);
    C_EQ(r.status, 400);
    /* wrong content type: 415 */
    snprintf(h, sizeof h, TUS AUTH_A "Content-Type: text/plain\r\nUpload-Offset: %u\r\n", CHUNK);
    req(port, "PATCH", path, h, payload + CHUNK, CHUNK, &r);
    C_EQ(r.status, 415);
    /* missing Tus-Resumable: 412 with Tus-Version */
    snprintf(h, sizeof h, AUTH_A OCTETS "Upload-Offset: %u\r\n", CHUNK);
    req(port, "PATCH", path, h, payload + CHUNK, CHUNK, &r);
    C_EQ(r.status, 412);
    C_STR(rh(&r, "Tus-Version"), "1.0.0");
    snprintf(h, sizeof h, "Tus-Resumable: 0.2.2\r\n" AUTH_A "Upload-Length: 10\r\n");
    req(port, "POST", "/files", h, NULL, 0, &r);
    C_EQ(r.status, 412);
    /* unknown id, malformed id: 404 */
    req(port, "HEAD", "/files/0123456789abcdef0123456789abcdef", TUS AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 404);
    req(port, "HEAD", "/files/../../etc/passwd", TUS AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 404);
    /* another principal: 404 for HEAD and PATCH */
    req(port, "HEAD", path, TUS AUTH_B, NULL, 0, &r);
    C_EQ(r.status, 404);
    patch(port, AUTH_B, id, CHUNK, CHUNK, &r);
    C_EQ(r.status, 404);
    /* no or unknown credentials: 401 */
    req(port, "HEAD", path, TUS, NULL, 0, &r);
    C_EQ(r.status, 401);
    patch(port, "Authorization: Bearer mallory\r\n", id, CHUNK, CHUNK, &r);
    C_EQ(r.status, 401);
    /* creation errors */
    req(port, "POST", "/files", TUS AUTH_A "Upload-Length: 1048577\r\n", NULL, 0, &r);
    C_EQ(r.status, 413);
    req(port, "POST", "/files", TUS AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 400);
    req(port, "POST", "/files", TUS AUTH_A "Upload-Length: -5\r\n", NULL, 0, &r);
    C_EQ(r.status, 400);
    req(port, "POST", "/files", TUS AUTH_A "Upload-Length: 10\r\nUpload-Metadata: a b!c\r\n", NULL,
        0, &r);
    C_EQ(r.status, 400);
    req(port, "POST", "/files",
        TUS AUTH_A "Upload-Length: 10\r\nUpload-Metadata: a eA==,a eA==\r\n", NULL, 0, &r);
    C_EQ(r.status, 400);
    req(port, "POST", "/files", TUS AUTH_A "Upload-Length: 10\r\nUpload-Metadata: a eA==,\r\n",
        NULL, 0, &r);
    C_EQ(r.status, 400);
    req(port, "POST", "/files", TUS AUTH_A "Upload-Length: 10\r\nUpload-Metadata: a eB==\r\n", NULL,
        0, &r); /* non-canonical base64: stray bits */
    C_EQ(r.status, 400);
    req(port, "POST", "/files", TUS AUTH_A "Upload-Defer-Length: 1\r\n", NULL, 0, &r);
    C_EQ(r.status, 400);
    req(port, "PUT", path, TUS AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 405);
    C_STR(rh(&r, "Allow"), "OPTIONS, HEAD, PATCH, DELETE");
    req(port, "DELETE", "/files", TUS AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 405);
    C_STR(rh(&r, "Allow"), "OPTIONS, POST");
    req(port, "GET", "/elsewhere", TUS AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 404);

    /* after all that the upload is intact and can be finished */
    C_EQ(head_offset(port, AUTH_A, id), CHUNK);
    patch(port, AUTH_A, id, CHUNK, CHUNK, &r);
    C_EQ(r.status, 204);
    /* a chunk that would pass Upload-Length (but fits the HTTP body cap):
     * 413, nothing appended */
    {
        static unsigned char big[CHUNK + 1];
        memset(big, 0xAB, sizeof big);
        snprintf(h, sizeof h, TUS AUTH_A OCTETS "Upload-Offset: %u\r\n", 2 * CHUNK);
        req(port, "PATCH", path, h, big, sizeof big, &r);
        C_EQ(r.status, 413);
        C_HAS(r.body, "Upload-Length");
        C_EQ(head_offset(port, AUTH_A, id), 2 * CHUNK);
    }
    patch(port, AUTH_A, id, 2 * CHUNK, CHUNK, &r);
    C_EQ(r.status, 204);
    return cfails;
}

static void test_refusals(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    CHECK_EQ(run_client(&f, c_refusals), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(f.c_sha_ok, 1); /* no refused byte made it into the data */
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), TOTAL);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1); /* the refused creations left nothing behind */
    fx_done(&f);
}

static int c_caps(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1];
    /* per-principal cap of 2 unfinished uploads: the least recently written
     * one makes room for a new one */
    create(port, AUTH_A, 100, sh->id[1]);
    create(port, AUTH_A, 100, sh->id[2]);
    char h[256], path[64];
    snprintf(h, sizeof h, TUS AUTH_A OCTETS "Upload-Offset: 0\r\n");
    snprintf(path, sizeof path, "/files/%s", sh->id[1]);
    req(port, "PATCH", path, h, payload, 10, &r); /* id[1] is now the more recent */
    C_EQ(r.status, 204);
    create(port, AUTH_A, 100, sh->id[3]);
    C_EQ(head_offset(port, AUTH_A, sh->id[2]), -404);
    C_EQ(head_offset(port, AUTH_A, sh->id[1]), 10);
    C_EQ(head_offset(port, AUTH_A, sh->id[3]), 0);
    /* node-b is not affected by node-a's uploads, but by the spool cap */
    create(port, AUTH_B, 300, id);
    req(port, "POST", "/files", TUS AUTH_B "Upload-Length: 501\r\n", NULL, 0, &r);
    C_EQ(r.status, 507);
    create(port, AUTH_B, 500, id); /* exactly fills 1000 bytes */
    req(port, "POST", "/files", TUS "Authorization: Bearer node-c\r\nUpload-Length: 1\r\n", NULL, 0,
        &r);
    C_EQ(r.status, 507);
    /* a zero-length upload is complete at once and costs no spool bytes */
    create(port, "Authorization: Bearer node-c\r\n", 0, id);
    memcpy(sh->id[0], id, sizeof id);
    return cfails;
}

static void test_caps(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 2, 1000), 0);
    CHECK_EQ(run_client(&f, c_caps), 0);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 5);
    CHECK_EQ(st.spool_bytes, 1000);
    CHECK_EQ(file_size(&f, sh->id[2], ".data"), -1); /* the evicted one */
    CHECK_EQ(file_size(&f, sh->id[2], ".state"), -1);
    CHECK_EQ(f.completes, 1);
    CHECK_STR(f.c_id, sh->id[0]);
    CHECK_EQ(f.c_length, 0);
    CHECK_EQ(f.c_sha_ok, -1);
    /* the idle sweep removes unfinished uploads only */
    CHECK_EQ(tus_server_expire(f.tus, 3600), 0);
    CHECK_EQ(tus_server_expire(f.tus, 0), 4);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1);
    CHECK_EQ(st.complete, 1);
    CHECK_EQ(st.spool_bytes, 0);
    fx_done(&f);
}

static int c_first_chunk(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1];
    if (create(port, AUTH_A, TOTAL, id) < 0)
        return cfails;
    memcpy(sh->id[0], id, sizeof id);
    patch(port, AUTH_A, id, 0, CHUNK, &r);
    C_EQ(r.status, 204);
    return cfails;
}

static int c_second_chunk(int port)
{
    struct resp r;
    patch(port, AUTH_A, sh->id[0], CHUNK, CHUNK, &r);
    C_EQ(r.status, 204);
    return cfails;
}

static int c_resume(int port)
{
    struct resp r;
    const char *id = sh->id[0];
    long long off = head_offset(port, AUTH_A, id);
    C_EQ(off, CHUNK);
    if (off != CHUNK)
        return cfails;
    patch(port, AUTH_A, id, CHUNK, CHUNK, &r);
    C_EQ(r.status, 204);
    patch(port, AUTH_A, id, 2 * CHUNK, CHUNK, &r);
    C_EQ(r.status, 204);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    return cfails;
}

/* Sends the head of a PATCH announcing len bytes and only the first k of
 * them; returns the socket (the caller closes it: the cut). */
static int send_patch_part(int port, const char *id, size_t off, size_t len, size_t k)
{
    char h[1024];
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    int n = snprintf(
        h, sizeof h,
        "PATCH /files/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n" TUS AUTH_A OCTETS
        "Upload-Offset: %zu\r\nUpload-Checksum: sha256 "
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        id, len, off);
    (void)send_all(fd, h, (size_t)n);
    (void)send_all(fd, payload + off, k);
    return fd;
}

/* Waits (up to 2 s) for HEAD to say want; returns what it said last. */
static long long head_wait(int port, const char *id, long long want)
{
    long long o = -1;
    for (int i = 0; i < 200; i++) {
        o = head_offset(port, AUTH_A, id);
        if (o == want)
            break;
        usleep(10000);
    }
    return o;
}

#define CUT_K 15000u

static int c_cut(int port)
{
    create(port, AUTH_A, TOTAL, sh->id[0]);
    const char *id = sh->id[0];
    /* A PATCH announcing a whole chunk, cut after CUT_K bytes: they stay. */
    int fd = send_patch_part(port, id, 0, CHUNK, CUT_K);
    if (fd >= 0)
        close(fd);
    C_EQ(head_wait(port, id, CUT_K), CUT_K);
    /* A complete PATCH whose checksum does not match: 460, offset unchanged. */
    struct resp r;
    char h[512], path[64];
    snprintf(path, sizeof path, "/files/%s", id);
    snprintf(h, sizeof h,
             TUS AUTH_A OCTETS "Upload-Offset: %u\r\nUpload-Checksum: sha256 "
                               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
             CUT_K);
    req(port, "PATCH", path, h, payload + CUT_K, 1000, &r);
    C_EQ(r.status, 460);
    C_EQ(head_offset(port, AUTH_A, id), CUT_K);
    /* A PATCH from the true offset, cut again after its first byte. */
    fd = send_patch_part(port, id, CUT_K, CHUNK, 1);
    if (fd >= 0)
        close(fd);
    C_EQ(head_wait(port, id, CUT_K + 1), CUT_K + 1);
    /* A PATCH whose connection still looks alive while the client comes
     * back on another one: the new request takes over, the old bytes stay. */
    int stale = send_patch_part(port, id, CUT_K + 1, 5000, 3000);
    usleep(100000);
    C_EQ(head_offset(port, AUTH_A, id), CUT_K + 1 + 3000);
    if (stale >= 0)
        close(stale);
    /* The rest, whole: the data is the payload. */
    size_t off = CUT_K + 1 + 3000;
    C_EQ(patch(port, AUTH_A, id, off, CHUNK, &r), 204);
    off += CHUNK;
    C_EQ(patch(port, AUTH_A, id, off, CHUNK, &r), 204);
    off += CHUNK;
    C_EQ(patch(port, AUTH_A, id, off, TOTAL - off, &r), 204);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    return cfails;
}

/* A PATCH cut after K bytes keeps them (HEAD says start + K); the state
 * file never records more than the data file holds; a complete PATCH with
 * a wrong checksum is 460 and moves nothing; the upload completes with
 * exactly the payload. */
static void test_cut_patch(void)
{
    struct fx f;
    if (fx_init(&f, 4, 1 << 30) < 0) {
        CHECK(0);
        return;
    }
    f.use_gate = 1;
    fx_reopen(&f);
    CHECK_EQ(run_client(&f, c_cut), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(f.c_sha_ok, 1);
    fx_done(&f);
}

static void write_file(const char *path, const void *p, size_t n, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_EQ(pwrite(fd, p, n, at), (long long)n);
    close(fd);
}

/* Stops the server and frees the module as a crash would leave them, fakes
 * a torn append and other debris, then restarts on the same spool. */
static void test_restart_torn_append(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    CHECK_EQ(run_client(&f, c_first_chunk), 0);
    char id[TUS_ID_LEN + 1];
    memcpy(id, sh->id[0], sizeof id);
    server_stop(&f);
    tus_server_free(f.tus);
    f.tus = NULL;

    char p[200];
    /* A crash between pwrite and the state update: bytes past the offset. */
    static unsigned char junk[2 * CHUNK + 777]; /* past the end of the upload */
    memset(junk, 0xEE, sizeof junk);
    snprintf(p, sizeof p, "%s/%s.data", f.dir, id);
    write_file(p, junk, sizeof junk, CHUNK);
    CHECK_EQ(file_size(&f, id, ".data"), CHUNK + sizeof junk);
    /* A crash during creation (data, no state) and during a state write. */
    snprintf(p, sizeof p, "%s/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.data", f.dir);
    write_file(p, "x", 1, 0);
    snprintf(p, sizeof p, "%s/%s.state.tmp", f.dir, id);
    write_file(p, "outpost-tus 1\nlength 5\n", 23, 0);
    /* A state file that does not parse is left alone and counted. */
    snprintf(p, sizeof p, "%s/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.state", f.dir);
    write_file(p, "garbage\n", 8, 0);

    CHECK_EQ(module_open(&f), 0);
    CHECK_EQ(server_start(&f), 0);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1);
    CHECK_EQ(st.bad_state_files, 1);
    CHECK_EQ(stored_offset(&f, id), CHUNK);
    CHECK_EQ(file_size(&f, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ".data"), -1);
    CHECK_EQ(file_size(&f, id, ".state.tmp"), -1);
    CHECK_EQ(file_size(&f, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", ".state"), 8);

    CHECK_EQ(run_client(&f, c_resume), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(f.c_sha_ok, 1); /* the junk was overwritten and cut off */
    CHECK_EQ(file_size(&f, id, ".data"), TOTAL);
    fx_done(&f);
}

/* A data file that lost bytes below the recorded offset (a storage fault):
 * the offset falls back to what is there and the client resumes from it. */
static void test_short_data_file(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    CHECK_EQ(run_client(&f, c_first_chunk), 0);
    char id[TUS_ID_LEN + 1];
    memcpy(id, sh->id[0], sizeof id);
    server_stop(&f);
    tus_server_free(f.tus);
    f.tus = NULL;
    char p[200];
    snprintf(p, sizeof p, "%s/%s.data", f.dir, id);
    CHECK_EQ(truncate(p, 1000), 0);
    CHECK_EQ(module_open(&f), 0);
    CHECK_EQ(server_start(&f), 0);
    CHECK_EQ(stored_offset(&f, id), 1000);
    fx_done(&f);
}

static int c_full_upload(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1];
    if (create(port, AUTH_A, TOTAL, id) < 0)
        return cfails;
    memcpy(sh->id[0], id, sizeof id);
    for (unsigned i = 0; i < 3; i++) {
        patch(port, AUTH_A, id, i * CHUNK, CHUNK, &r);
        C_EQ(r.status, 204);
    }
    return cfails;
}

/* A refused completion is redelivered, in the same process and after a
 * restart; an accepted one is released from inside the callback. */
static void test_redeliver(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    f.complete_rc = -EAGAIN;
    CHECK_EQ(run_client(&f, c_full_upload), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(tus_server_redeliver(f.tus), 0);
    CHECK_EQ(f.completes, 2);

    /* restart: the complete upload is still there and is offered again */
    server_stop(&f);
    tus_server_free(f.tus);
    f.tus = NULL;
    CHECK_EQ(module_open(&f), 0);
    CHECK_EQ(server_start(&f), 0);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.complete, 1);
    f.complete_rc = 0;
    f.release_in_cb = 1;
    CHECK_EQ(tus_server_redeliver(f.tus), 1);
    CHECK_EQ(f.completes, 3);
    CHECK_EQ(f.c_sha_ok, 1);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 0);
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), -1);
    CHECK_EQ(tus_server_redeliver(f.tus), 0);
    CHECK_EQ(f.completes, 3);
    fx_done(&f);
}

/* ---- completing later (TUS_COMPLETE_LATER, tus_server_finish) ---- */

static int c_want_last; /* the status the completing PATCH must get */

static int c_later(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1];
    if (create(port, AUTH_A, TOTAL, id) < 0)
        return cfails;
    memcpy(sh->id[0], id, sizeof id);
    for (unsigned i = 0; i < 2; i++)
        C_EQ(patch(port, AUTH_A, id, i * CHUNK, CHUNK, &r), 204);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    C_EQ(patch(port, AUTH_A, id, 2 * CHUNK, CHUNK, &r), c_want_last);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    C_CHECK(ms >= 250); /* answered by the timer's tus_server_finish, not at once */
    C_STR(rh(&r, "Test-Outcome"), "finished later");
    if (c_want_last == 460) {
        C_EQ(head_offset(port, AUTH_A, id), -404);
    } else {
        C_EQ(head_offset(port, AUTH_A, id), (long long)TOTAL);
    }
    if (c_want_last == 503)
        C_STR(rh(&r, "Retry-After"), "5");
    return cfails;
}

/* The last chunk turned away by busy: 503 with its Retry-After before the
 * body is read, nothing stored. */
static int c_busy(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1];
    if (create(port, AUTH_A, TOTAL, id) < 0)
        return cfails;
    memcpy(sh->id[0], id, sizeof id);
    for (unsigned i = 0; i < 2; i++)
        C_EQ(patch(port, AUTH_A, id, i * CHUNK, CHUNK, &r), 204); /* not completing: no ask */
    C_EQ(patch(port, AUTH_A, id, 2 * CHUNK, CHUNK, &r), 503);
    C_STR(rh(&r, "Retry-After"), "3");
    C_EQ(head_offset(port, AUTH_A, id), (long long)(2 * CHUNK));
    return cfails;
}

static int c_busy_again(int port)
{
    struct resp r;
    C_EQ(patch(port, AUTH_A, sh->id[0], 2 * CHUNK, CHUNK, &r), 204);
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), (long long)TOTAL);
    return cfails;
}

static void test_complete_later(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    uv_timer_init(&f.tl.loop, &f.later_timer);
    f.later_timer.data = &f;
    f.before_answer = 1;
    f.later = 1;
    fx_reopen(&f);
    struct tus_server_stats st;

    /* done: 204 with what the embedder added meanwhile; settled */
    f.finish_rc = 0;
    c_want_last = 204;
    CHECK_EQ(run_client(&f, c_later), 0);
    CHECK_EQ(f.completes, 1);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 1);
    CHECK_EQ(tus_server_redeliver(f.tus), 0);

    /* invalid content: 460, released */
    f.finish_rc = -EBADMSG;
    c_want_last = 460;
    CHECK_EQ(run_client(&f, c_later), 0);
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), -1);
    CHECK_EQ(file_size(&f, sh->id[0], ".state"), -1);

    /* abandoned at a stop: 503, complete on disk, offered again */
    f.finish_rc = -ECANCELED;
    c_want_last = 503;
    CHECK_EQ(run_client(&f, c_later), 0);
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), (long long)TOTAL);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.complete, 1);
    int before = f.completes;
    f.later = 0;
    f.complete_rc = 0;
    f.release_in_cb = 1;
    CHECK_EQ(tus_server_redeliver(f.tus), 1);
    CHECK_EQ(f.completes, before + 1);
    CHECK_EQ(f.c_sha_ok, 1);
    f.release_in_cb = 0;

    /* busy: the completing chunk waits, the others do not */
    f.use_gate = 1;
    f.busy_s = 3;
    fx_reopen(&f);
    before = f.completes;
    CHECK_EQ(run_client(&f, c_busy), 0);
    CHECK_EQ(f.completes, before);
    f.busy_s = 0;
    CHECK_EQ(run_client(&f, c_busy_again), 0);
    CHECK_EQ(f.completes, before + 1);
    uv_close((uv_handle_t *)&f.later_timer, NULL);
    fx_done(&f);
}

/* Stops the server and frees the module, then opens both again on the
 * same spool, as a restart would. */
static void restart(struct fx *f)
{
    server_stop(f);
    tus_server_free(f->tus);
    f->tus = NULL;
    CHECK_EQ(module_open(f), 0);
    CHECK_EQ(server_start(f), 0);
}

static int file_has(const struct fx *f, const char *id, const char *suffix, const char *needle)
{
    char p[200], buf[8192];
    snprintf(p, sizeof p, "%s/%s%s", f->dir, id, suffix);
    FILE *fp = fopen(p, "rb");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Rewrites the settled_at line of a settled upload's state file. */
static void set_settled_at(const struct fx *f, const char *id, long long t)
{
    char p[200], buf[8192];
    snprintf(p, sizeof p, "%s/%s.state", f->dir, id);
    FILE *fp = fopen(p, "rb");
    CHECK(fp != NULL);
    if (!fp)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *at = strstr(buf, "settled_at ");
    CHECK(at != NULL);
    if (!at)
        return;
    *at = '\0';
    fp = fopen(p, "wb");
    CHECK(fp != NULL);
    if (!fp)
        return;
    fprintf(fp, "%ssettled_at %lld\n", buf, t);
    fclose(fp);
}

/* What the settled upload sh->id[0] (TOTAL bytes, node-a's) answers: the
 * client learns it is complete and can send nothing more. */
static int c_settled(int port)
{
    struct resp r;
    char h[256], path[64];
    const char *id = sh->id[0];
    snprintf(path, sizeof path, "/files/%s", id);
    req(port, "HEAD", path, TUS AUTH_A, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    C_STR(rh(&r, "Upload-Length"), "120000");
    C_HAS(rh(&r, "Upload-Metadata"), "segment MTc=");
    /* an empty PATCH at the end: 204, nothing changes */
    snprintf(h, sizeof h, TUS AUTH_A OCTETS "Upload-Offset: %u\r\n", TOTAL);
    req(port, "PATCH", path, h, NULL, 0, &r);
    C_EQ(r.status, 204);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    /* bytes at the end, or a chunk from before: 409 with the length */
    req(port, "PATCH", path, h, payload, 1, &r);
    C_EQ(r.status, 409);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    patch(port, AUTH_A, id, 0, CHUNK, &r);
    C_EQ(r.status, 409);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    patch(port, AUTH_A, id, 2 * CHUNK, CHUNK, &r);
    C_EQ(r.status, 409);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    /* it is still node-a's alone */
    C_EQ(head_offset(port, AUTH_B, id), -404);
    C_EQ(head_offset(port, AUTH_A, id), TOTAL);
    return cfails;
}

/* Settled from inside the callback: the data is gone, the record answers
 * "complete", is never offered again, and survives a restart. */
static void test_settle(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    f.settle_in_cb = 1;
    f.settle_rc = 1;
    CHECK_EQ(run_client(&f, c_full_upload), 0);
    const char *id = sh->id[0];
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(f.settle_rc, 0);
    CHECK_EQ(f.c_sha_ok, 1); /* the callback saw the data before it settled */
    CHECK_EQ(file_size(&f, id, ".data"), -1);
    CHECK(file_has(&f, id, ".state", "\ncomplete 1\n"));
    CHECK(file_has(&f, id, ".state", "\nsettled 1\nsettled_at "));
    CHECK_EQ(file_size(&f, id, ".state.tmp"), -1);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 0);
    CHECK_EQ(st.complete, 0);
    CHECK_EQ(st.settled, 1);
    CHECK_EQ(st.spool_bytes, 0);
    uint64_t off = 0, len = 0;
    CHECK_EQ(tus_server_upload_offset(f.tus, id, &off, &len), 0);
    CHECK_EQ(off, TOTAL);
    CHECK_EQ(len, TOTAL);
    CHECK_EQ(tus_server_settle(f.tus, id), 0); /* again: nothing to do */
    CHECK_EQ(tus_server_settle(f.tus, "00000000000000000000000000000000"), -ENOENT);
    CHECK_EQ(tus_server_redeliver(f.tus), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(run_client(&f, c_settled), 0);
    CHECK_EQ(f.completes, 1);
    /* the idle sweep and the default keep time (an hour) leave it alone */
    CHECK_EQ(tus_server_expire(f.tus, 0), 0);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 1);

    /* restart: still settled, not offered again, no data file recreated */
    restart(&f);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 1);
    CHECK_EQ(st.uploads, 0);
    CHECK_EQ(st.complete, 0);
    CHECK_EQ(st.bad_state_files, 0);
    CHECK_EQ(tus_server_redeliver(f.tus), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(file_size(&f, id, ".data"), -1);
    CHECK_EQ(run_client(&f, c_settled), 0);
    CHECK_EQ(f.completes, 1);
    /* release still deletes outright */
    CHECK_EQ(tus_server_release(f.tus, id), 0);
    CHECK_EQ(file_size(&f, id, ".state"), -1);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 0);
    CHECK_EQ(run_client(&f, c_head_gone), 0);
    fx_done(&f);
}

/* The spool directory of the test's server, for a child to look into. */
static const char *child_spool;

static long long spool_file_size(const char *id, const char *suffix)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s%s", child_spool, id, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static int del(int port, const char *headers, const char *id, struct resp *r)
{
    char path[64];
    snprintf(path, sizeof path, "/files/%s", id);
    return req(port, "DELETE", path, headers, NULL, 0, r);
}

/* Termination of a half-received upload (sh->id[1]) and of another made
 * with X-HTTP-Method-Override (sh->id[2]); refusals that leave it alone. */
static int c_terminate(int port)
{
    struct resp r;
    if (create(port, AUTH_A, TOTAL, sh->id[1]) < 0 || create(port, AUTH_A, 100, sh->id[2]) < 0)
        return cfails;
    patch(port, AUTH_A, sh->id[1], 0, CHUNK, &r);
    C_EQ(r.status, 204);
    /* another node's DELETE: the upload does not exist for it */
    del(port, TUS AUTH_B, sh->id[1], &r);
    C_EQ(r.status, 404);
    /* no credentials, no Tus-Resumable */
    del(port, TUS, sh->id[1], &r);
    C_EQ(r.status, 401);
    del(port, AUTH_A, sh->id[1], &r);
    C_EQ(r.status, 412);
    C_EQ(head_offset(port, AUTH_A, sh->id[1]), CHUNK); /* all of that changed nothing */
    C_EQ(spool_file_size(sh->id[1], ".data"), CHUNK);
    C_EQ(spool_file_size(sh->id[1], ".state") > 0, 1);
    del(port, TUS AUTH_A, sh->id[1], &r);
    C_EQ(r.status, 204);
    C_EQ(spool_file_size(sh->id[1], ".data"), -1); /* gone before the answer */
    C_EQ(spool_file_size(sh->id[1], ".state"), -1);
    C_STR(rh(&r, "Tus-Resumable"), "1.0.0");
    C_EQ(head_offset(port, AUTH_A, sh->id[1]), -404);
    patch(port, AUTH_A, sh->id[1], CHUNK, CHUNK, &r);
    C_EQ(r.status, 404);
    del(port, TUS AUTH_A, sh->id[1], &r); /* again: it is gone */
    C_EQ(r.status, 404);
    del(port, TUS AUTH_A, "0123456789abcdef0123456789abcdef", &r);
    C_EQ(r.status, 404);
    del(port, TUS AUTH_A, "not-an-id", &r);
    C_EQ(r.status, 404);
    /* for proxies that pass only GET and POST */
    char path[64];
    snprintf(path, sizeof path, "/files/%s", sh->id[2]);
    req(port, "POST", path, TUS AUTH_A "X-HTTP-Method-Override: DELETE\r\n", NULL, 0, &r);
    C_EQ(r.status, 204);
    C_EQ(head_offset(port, AUTH_A, sh->id[2]), -404);
    return cfails;
}

/* An upload the embedder took is past terminating: 409, and it still
 * answers complete. */
static int c_terminate_taken(int port)
{
    struct resp r;
    if (create(port, AUTH_A, TOTAL, sh->id[0]) < 0)
        return cfails;
    for (unsigned i = 0; i < 3; i++)
        patch(port, AUTH_A, sh->id[0], i * CHUNK, CHUNK, &r);
    C_EQ(r.status, 204);
    del(port, TUS AUTH_A, sh->id[0], &r);
    C_EQ(r.status, 409);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    C_STR(rh(&r, "Upload-Length"), "120000");
    C_HAS(r.body, "\"status\":409");
    C_HAS(r.body, "complete and was taken for processing");
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), TOTAL);
    del(port, TUS AUTH_B, sh->id[0], &r);
    C_EQ(r.status, 404);
    return cfails;
}

/* A complete upload the embedder has not taken (its callback failed):
 * terminating it deletes it, and it is never offered again. */
static int c_terminate_untaken(int port)
{
    struct resp r;
    if (create(port, AUTH_A, TOTAL, sh->id[0]) < 0)
        return cfails;
    for (unsigned i = 0; i < 3; i++)
        patch(port, AUTH_A, sh->id[0], i * CHUNK, CHUNK, &r);
    C_EQ(r.status, 204);
    del(port, TUS AUTH_A, sh->id[0], &r);
    C_EQ(r.status, 204);
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), -404);
    return cfails;
}

/* A node voids a segment after HQ kept bytes of a cut PATCH, and while
 * another PATCH of it still looks alive: the DELETE takes both, and
 * nothing of the upload is left, not even what the stale connection sends
 * after the answer. */
static int c_terminate_cut(int port)
{
    create(port, AUTH_A, TOTAL, sh->id[0]);
    const char *id = sh->id[0];
    int fd = send_patch_part(port, id, 0, CHUNK, CUT_K);
    if (fd >= 0)
        close(fd);
    C_EQ(head_wait(port, id, CUT_K), CUT_K);
    int stale = send_patch_part(port, id, CUT_K, 5000, 3000);
    usleep(100000);
    C_EQ(spool_file_size(id, ".data"), CUT_K + 3000);
    struct resp r;
    del(port, TUS AUTH_A, id, &r);
    C_EQ(r.status, 204);
    C_EQ(spool_file_size(id, ".data"), -1);
    C_EQ(spool_file_size(id, ".state"), -1);
    if (stale >= 0) {
        (void)send_all(stale, payload + CUT_K + 3000, 2000);
        usleep(100000);
        close(stale);
    }
    usleep(100000);
    C_EQ(spool_file_size(id, ".data"), -1);
    C_EQ(spool_file_size(id, ".state"), -1);
    C_EQ(head_offset(port, AUTH_A, id), -404);
    return cfails;
}

static void test_terminate_cut(void)
{
    struct fx f;
    if (fx_init(&f, 4, 1 << 30) < 0) {
        CHECK(0);
        return;
    }
    f.use_gate = 1;
    fx_reopen(&f);
    child_spool = f.dir;
    CHECK_EQ(run_client(&f, c_terminate_cut), 0);
    CHECK_EQ(f.completes, 0);
    fx_done(&f);
}

static void test_terminate(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    child_spool = f.dir;
    CHECK_EQ(run_client(&f, c_terminate), 0);
    CHECK_EQ(file_size(&f, sh->id[1], ".data"), -1);
    CHECK_EQ(file_size(&f, sh->id[1], ".state"), -1);
    CHECK_EQ(file_size(&f, sh->id[2], ".data"), -1);
    CHECK_EQ(file_size(&f, sh->id[2], ".state"), -1);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 0);
    CHECK_EQ(st.spool_bytes, 0);
    CHECK_EQ(f.completes, 0);
    restart(&f); /* nothing comes back */
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 0);
    CHECK_EQ(st.bad_state_files, 0);
    fx_done(&f);

    /* settled: 409, the record (and HEAD) stay */
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    f.settle_in_cb = 1;
    CHECK_EQ(run_client(&f, c_terminate_taken), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), -1);
    CHECK(file_has(&f, sh->id[0], ".state", "\nsettled 1\n"));
    CHECK_EQ(run_client(&f, c_settled), 0);
    fx_done(&f);

    /* accepted, not settled yet: 409 too, and the data stays for the embedder */
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    CHECK_EQ(run_client(&f, c_terminate_taken), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), TOTAL);
    fx_done(&f);

    /* complete, refused by the callback (kept for redelivery): deleted */
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    f.complete_rc = -EAGAIN;
    CHECK_EQ(run_client(&f, c_terminate_untaken), 0);
    CHECK_EQ(f.completes, 1);
    CHECK_EQ(file_size(&f, sh->id[0], ".data"), -1);
    CHECK_EQ(file_size(&f, sh->id[0], ".state"), -1);
    CHECK_EQ(tus_server_redeliver(f.tus), 0);
    CHECK_EQ(f.completes, 1);
    fx_done(&f);
}

/* Uploads all of payload[0..len) to a new upload of node-a; its id into id. */
static void c_upload_small(int port, size_t len, char *id)
{
    struct resp r;
    if (create(port, AUTH_A, len, id) < 0)
        return;
    patch(port, AUTH_A, id, 0, len, &r);
    C_EQ(r.status, 204);
}

/* max_uploads 2, max_spool_bytes 1000: settled uploads take neither a slot
 * nor bytes; settled records past max_uploads forget the oldest. */
static int c_settled_caps(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1];
    c_upload_small(port, 600, sh->id[0]);
    c_upload_small(port, 600, sh->id[1]);
    /* two 600-byte uploads settled: without settling both caps would refuse */
    create(port, AUTH_A, 600, sh->id[2]);
    create(port, AUTH_A, 300, sh->id[3]);
    /* two unfinished uploads are max_uploads */
    req(port, "POST", "/files", TUS AUTH_B "Upload-Length: 1\r\n", NULL, 0, &r);
    C_EQ(r.status, 507);
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), 600);
    C_EQ(head_offset(port, AUTH_A, sh->id[1]), 600);
    /* a third settled record: the oldest one is forgotten */
    patch(port, AUTH_A, sh->id[2], 0, 600, &r);
    C_EQ(r.status, 204);
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), -404);
    C_EQ(head_offset(port, AUTH_A, sh->id[1]), 600);
    C_EQ(head_offset(port, AUTH_A, sh->id[2]), 600);
    /* and room for a new unfinished upload again */
    create(port, AUTH_B, 700, id);
    return cfails;
}

static void test_settled_caps(void)
{
    struct fx f;
    CHECK_EQ(fx_init_caps(&f, 4, 1000, 2, 0), 0);
    f.settle_in_cb = 1;
    CHECK_EQ(run_client(&f, c_settled_caps), 0);
    CHECK_EQ(f.completes, 3);
    CHECK_EQ(f.settle_rc, 0);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 2);
    CHECK_EQ(st.complete, 0);
    CHECK_EQ(st.settled, 2);
    CHECK_EQ(st.spool_bytes, 1000);
    CHECK_EQ(file_size(&f, sh->id[0], ".state"), -1);
    CHECK_EQ(file_size(&f, sh->id[1], ".data"), -1);
    /* only a complete upload can settle */
    CHECK_EQ(tus_server_settle(f.tus, sh->id[3]), -EINVAL);
    CHECK_EQ(file_size(&f, sh->id[3], ".data"), 0);
    /* the idle sweep releases the unfinished ones, not the settled ones */
    CHECK_EQ(tus_server_expire(f.tus, 0), 2);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 0);
    CHECK_EQ(st.settled, 2);
    fx_done(&f);
}

/* Settled records are forgotten settled_keep_seconds after they settled,
 * by the time in their state file (so across restarts too); a time
 * further ahead than the keep time (a clock that was wrong) goes as well. */
static void test_settled_expire(void)
{
    struct fx f;
    CHECK_EQ(fx_init_caps(&f, 4, 0, 0, 60), 0);
    f.settle_in_cb = 1;
    char ids[4][TUS_ID_LEN + 1];
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(run_client(&f, c_full_upload), 0);
        memcpy(ids[i], sh->id[0], sizeof ids[i]);
    }
    CHECK_EQ(f.completes, 4);
    CHECK_EQ(tus_server_expire(f.tus, 3600), 0);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 4); /* settled just now, kept 60 s */

    server_stop(&f);
    tus_server_free(f.tus);
    f.tus = NULL;
    long long now = (long long)time(NULL);
    set_settled_at(&f, ids[0], now - 61);   /* past the keep time */
    set_settled_at(&f, ids[1], now - 30);   /* within it */
    set_settled_at(&f, ids[2], now + 30);   /* a little ahead: kept */
    set_settled_at(&f, ids[3], now + 6100); /* far ahead: a wrong clock */
    CHECK_EQ(module_open(&f), 0);
    CHECK_EQ(server_start(&f), 0);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 4);
    CHECK_EQ(tus_server_expire(f.tus, 3600), 0); /* counts unfinished ones only */
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 2);
    CHECK_EQ(file_size(&f, ids[0], ".state"), -1);
    CHECK_EQ(file_size(&f, ids[3], ".state"), -1);
    CHECK_EQ(tus_server_upload_offset(f.tus, ids[0], NULL, NULL), -ENOENT);
    CHECK_EQ(tus_server_upload_offset(f.tus, ids[1], NULL, NULL), 0);
    CHECK_EQ(tus_server_upload_offset(f.tus, ids[2], NULL, NULL), 0);
    memcpy(sh->id[0], ids[0], sizeof ids[0]);
    CHECK_EQ(run_client(&f, c_head_gone), 0);
    memcpy(sh->id[0], ids[1], sizeof ids[1]);
    CHECK_EQ(run_client(&f, c_settled), 0);
    fx_done(&f);

    /* live, in one process, on the injected clock: kept for exactly the
     * keep time, not a second less */
    CHECK_EQ(fx_init_caps(&f, 4, 0, 0, 60), 0);
    fx_use_clock(&f);
    f.settle_in_cb = 1;
    CHECK_EQ(run_client(&f, c_full_upload), 0);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 1);
    f.clock_ms += 59999;
    CHECK_EQ(tus_server_expire(f.tus, 3600), 0);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 1);
    CHECK(file_size(&f, sh->id[0], ".state") > 0);
    CHECK_EQ(run_client(&f, c_settled), 0);
    f.clock_ms += 1;
    CHECK_EQ(tus_server_expire(f.tus, 3600), 0);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 0);
    CHECK_EQ(file_size(&f, sh->id[0], ".state"), -1);
    CHECK_EQ(run_client(&f, c_head_gone), 0);
    fx_done(&f);
}

/* The idle sweep on the injected clock: an unfinished upload is released
 * when it has not been written for max_idle_seconds, not a second earlier,
 * and a write starts its idle time again. */
static void test_idle_expire(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    fx_use_clock(&f);
    CHECK_EQ(run_client(&f, c_first_chunk), 0);
    char id[TUS_ID_LEN + 1];
    memcpy(id, sh->id[0], sizeof id);
    f.clock_ms += 3599 * 1000;
    CHECK_EQ(tus_server_expire(f.tus, 3600), 0);
    CHECK_EQ(stored_offset(&f, id), CHUNK);
    CHECK_EQ(run_client(&f, c_second_chunk), 0); /* written: idle from now */
    f.clock_ms += 3599 * 1000;
    CHECK_EQ(tus_server_expire(f.tus, 3600), 0);
    CHECK_EQ(stored_offset(&f, id), 2 * CHUNK);
    f.clock_ms += 1000;
    CHECK_EQ(tus_server_expire(f.tus, 3600), 1);
    CHECK_EQ(tus_server_upload_offset(f.tus, id, NULL, NULL), -ENOENT);
    CHECK_EQ(file_size(&f, id, ".data"), -1);
    CHECK_EQ(file_size(&f, id, ".state"), -1);
    CHECK_EQ(run_client(&f, c_head_gone), 0);
    fx_done(&f);
}

static void write_state_file(const struct fx *f, const char *id, const char *text)
{
    char p[200];
    snprintf(p, sizeof p, "%s/%s.state", f->dir, id);
    write_file(p, text, strlen(text), 0);
}

/* State files written before settling existed load as before; a settled
 * one whose data a crash left behind loses it; malformed settled lines
 * make a state file unreadable. */
static void test_settled_state_files(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    server_stop(&f);
    tus_server_free(f.tus);
    f.tus = NULL;
    const char *old = "11111111111111111111111111111111";
    const char *set = "22222222222222222222222222222222";
    char p[200];
    write_state_file(&f, old,
                     "outpost-tus 1\nlength 120000\noffset 120000\ncomplete 1\nprincipal node-a\n"
                     "metadata node_id bm9kZS1h,segment MTc=\n");
    snprintf(p, sizeof p, "%s/%s.data", f.dir, old);
    write_file(p, payload, TOTAL, 0);
    char text[512];
    snprintf(text, sizeof text,
             "outpost-tus 1\nlength 120000\noffset 120000\ncomplete 1\nprincipal node-a\n"
             "metadata node_id bm9kZS1h,segment MTc=\nsettled 1\nsettled_at %lld\n",
             (long long)time(NULL) - 10);
    write_state_file(&f, set, text);
    snprintf(p, sizeof p, "%s/%s.data", f.dir, set);
    write_file(p, payload, TOTAL, 0); /* a crash between the state write and the unlink */
    static const char *const bad[] = {
        "outpost-tus 1\nlength 5\noffset 5\ncomplete 1\nprincipal node-a\nmetadata \n"
        "settled 0\nsettled_at 1700000000\n",
        "outpost-tus 1\nlength 5\noffset 2\ncomplete 0\nprincipal node-a\nmetadata \n"
        "settled 1\nsettled_at 1700000000\n",
        "outpost-tus 1\nlength 5\noffset 5\ncomplete 1\nprincipal node-a\nmetadata \nsettled 1\n",
        "outpost-tus 1\nlength 5\noffset 5\ncomplete 1\nprincipal node-a\nmetadata \n"
        "settled 1\nsettled_at soon\n",
        "outpost-tus 1\nlength 5\noffset 5\ncomplete 1\nprincipal node-a\nmetadata \n"
        "settled 1\nsettled_at 1700000000\nextra 1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[TUS_ID_LEN + 1];
        snprintf(id, sizeof id, "%032zx", 0xa0 + i);
        write_state_file(&f, id, bad[i]);
    }
    CHECK_EQ(module_open(&f), 0);
    CHECK_EQ(server_start(&f), 0);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1);
    CHECK_EQ(st.complete, 1);
    CHECK_EQ(st.settled, 1);
    CHECK_EQ(st.spool_bytes, TOTAL);
    CHECK_EQ(st.bad_state_files, sizeof bad / sizeof bad[0]);
    CHECK_EQ(file_size(&f, set, ".data"), -1);
    /* the old-format upload is offered (and settles now); the settled one is not */
    f.settle_in_cb = 1;
    CHECK_EQ(tus_server_redeliver(f.tus), 1);
    CHECK_EQ(f.completes, 1);
    CHECK_STR(f.c_id, old);
    CHECK_EQ(f.c_sha_ok, 1);
    CHECK_EQ(f.settle_rc, 0);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.settled, 2);
    CHECK_EQ(st.spool_bytes, 0);
    memcpy(sh->id[0], set, TUS_ID_LEN + 1);
    CHECK_EQ(run_client(&f, c_settled), 0);
    memcpy(sh->id[0], old, TUS_ID_LEN + 1);
    CHECK_EQ(run_client(&f, c_settled), 0);
    CHECK_EQ(f.completes, 1);
    fx_done(&f);
}

/* Runs a server on dir in a child process, as a real receiver would start:
 * reload the spool, offer pending completions, serve. */
static pid_t spawn_server_opt(const char *dir, int shared)
{
    sh->port = 0;
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        alarm(60);
        static struct fx f;
        memset(&f, 0, sizeof f);
        snprintf(f.dir, sizeof f.dir, "%s", dir);
        f.cap_incomplete = 4;
        f.use_gate = 1;
        f.shared = shared;
        f.settle_in_cb = shared; /* an embedder that settles what it applied */
        uv_loop_init(&f.tl.loop);
        if (module_open(&f) < 0)
            _exit(3);
        (void)tus_server_redeliver(f.tus);
        if (server_start(&f) < 0)
            _exit(4);
        sh->port = f.port;
        uv_run(&f.tl.loop, UV_RUN_DEFAULT);
        _exit(0);
    }
    for (int i = 0; i < 500 && !sh->port; i++)
        usleep(10000);
    return pid;
}

static pid_t spawn_server(const char *dir)
{
    return spawn_server_opt(dir, 0);
}

static void kill_server(pid_t pid)
{
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st)); /* it was serving, not dead of its own accord */
}

/* Sends a PATCH and returns without reading the answer. */
static int send_patch(int port, const char *id, size_t off, size_t len)
{
    unsigned char d[32];
    char d64[64], h[1024];
    sha256(payload + off, len, d);
    b64(d, 32, d64);
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    int n = snprintf(
        h, sizeof h,
        "PATCH /files/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n" TUS AUTH_A OCTETS
        "Upload-Offset: %zu\r\nUpload-Checksum: sha256 %s\r\n\r\n",
        id, len, off, d64);
    (void)send_all(fd, h, (size_t)n);
    (void)send_all(fd, payload + off, len);
    return fd;
}

/* kill -9 the server at random moments while PATCHes are in flight (seeded;
 * TUS_SEED replays a run): after every restart HEAD reports either the old
 * or the new offset of the interrupted chunk, never anything else, and the
 * finished data is exactly the payload. */
static void test_kill9(void)
{
    const char *env = getenv("TUS_SEED");
    uint32_t seed = env ? (uint32_t)strtoul(env, NULL, 10) : 20261124u;
    uint32_t rnd = seed;
#define NEXT() (rnd = rnd * 1103515245u + 12345u, (rnd >> 8))
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test_tus_XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    cfails = 0;
    sh->completes = sh->sha_bad = 0;
    pid_t pid = spawn_server(dir);
    CHECK(sh->port > 0);
    char id[TUS_ID_LEN + 1] = "";
    if (sh->port <= 0 || create(sh->port, AUTH_A, TOTAL, id) < 0) {
        kill_server(pid);
        rm_spool(dir);
        CHECK(0);
        return;
    }
    size_t off = 0;
    int kills = 0, bad = 0, landed = 0, cuts = 0;
    size_t kept = 0;
    for (int iter = 0; off < TOTAL && iter < 400 && !bad; iter++) {
        size_t len = 200 + NEXT() % 6000;
        if (len > TOTAL - off)
            len = TOTAL - off;
        if (NEXT() % 3 == 0 && cuts < 25) {
            /* Cut after k bytes, then kill at a random moment: HEAD says
             * between off and off + k, and whatever it says is durable
             * (the finished data is compared with the payload below). */
            size_t k = 1 + NEXT() % len;
            int fd = send_patch_part(sh->port, id, off, len, k);
            if (fd >= 0)
                close(fd);
            /* every other one once the server saw the cut, the rest at random */
            usleep(cuts % 2 ? 50000 : NEXT() % 3000);
            kill_server(pid);
            cuts++;
            pid = spawn_server(dir);
            long long o = head_offset(sh->port, AUTH_A, id);
            if (o < (long long)off || o > (long long)(off + k)) {
                fprintf(stderr, "seed %u: after cut at %zu+%zu and kill HEAD says %lld\n", seed,
                        off, k, o);
                bad = 1;
            } else {
                kept += (size_t)o - off;
                off = (size_t)o;
            }
            continue;
        }
        if (NEXT() % 2 == 0 && kills < 25) {
            int fd = send_patch(sh->port, id, off, len);
            usleep(NEXT() % 4000);
            kill_server(pid);
            if (fd >= 0)
                close(fd);
            kills++;
            pid = spawn_server(dir);
            long long o = head_offset(sh->port, AUTH_A, id);
            if (o != (long long)off && o != (long long)(off + len)) {
                fprintf(stderr, "seed %u: after kill %d HEAD says %lld, expected %zu or %zu\n",
                        seed, kills, o, off, off + len);
                bad = 1;
            } else {
                landed += o != (long long)off;
                off = (size_t)o;
            }
            continue;
        }
        struct resp r;
        if (patch(sh->port, AUTH_A, id, off, len, &r) != 204) {
            fprintf(stderr, "seed %u: PATCH at %zu answered %d\n", seed, off, r.status);
            bad = 1;
            break;
        }
        off += len;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(off, TOTAL);
    CHECK_INT(kills, >=, 10);
    fprintf(stderr,
            "  seed %u: %d kills, %d of the interrupted chunks were stored; %d cuts kept %zu "
            "bytes\n",
            seed, kills, landed, cuts, kept);
    CHECK_INT(cuts, >=, 5);
    CHECK_INT(kept, >, 0);
    /* One more crash and restart after completion: still complete, and the
     * completion is offered again (at least once, never lost). */
    int before = sh->completes;
    kill_server(pid);
    pid = spawn_server(dir);
    CHECK_EQ(head_offset(sh->port, AUTH_A, id), TOTAL);
    kill_server(pid);
    CHECK_INT(before, >=, 1);
    CHECK_EQ(sh->completes, before + 1);
    CHECK_EQ(sh->sha_bad, 0);
    CHECK_EQ(cfails, 0);
    char p[128];
    snprintf(p, sizeof p, "%s/%s.data", dir, id);
    FILE *fp = fopen(p, "rb");
    static unsigned char got[TOTAL + 1];
    size_t n = fp ? fread(got, 1, sizeof got, fp) : 0;
    if (fp)
        fclose(fp);
    CHECK_EQ(n, TOTAL);
    CHECK(n == TOTAL && memcmp(got, payload, TOTAL) == 0);
    rm_spool(dir);
#undef NEXT
}

/* Answers status of a PATCH of payload[off..off+len) to port. */
static int patch_status(int port, const char *id, size_t off, size_t len, struct resp *r)
{
    return patch(port, AUTH_A, id, off, len, r);
}

/* Reads the data file of upload id in dir into got; its length. */
static size_t read_data(const char *dir, const char *id, unsigned char *got, size_t cap)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s.data", dir, id);
    FILE *fp = fopen(p, "rb");
    size_t n = fp ? fread(got, 1, cap, fp) : 0;
    if (fp)
        fclose(fp);
    return n;
}

/* Two server processes on one spool (shared): any of them takes any
 * request of any upload. A creation on A is seen by B, started later; a
 * PATCH to one and a HEAD to the other give the true offset; while A
 * streams a PATCH into the upload, a PATCH to B is refused (423, nothing
 * stored) and B's HEAD says the durable offset; the completion is applied
 * once, by one process; kill -9 of a process streaming into an upload
 * frees it for the other at once; and kill -9 of the process applying a
 * complete upload leaves it to the other, which applies it on the next
 * HEAD, once. */
static void test_shared_spool(void)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test_tus_XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    cfails = 0;
    memset(sh, 0, sizeof *sh);
    pid_t pa = spawn_server_opt(dir, 1);
    int a = sh->port;
    char id[TUS_ID_LEN + 1] = "";
    struct resp r;
    if (a <= 0 || create(a, AUTH_A, TOTAL, id) < 0) {
        kill_server(pa);
        rm_spool(dir);
        CHECK(0);
        return;
    }
    CHECK_EQ(patch_status(a, id, 0, CHUNK / 2, &r), 204);
    /* B starts after the creation and the first bytes */
    pid_t pb = spawn_server_opt(dir, 1);
    int b = sh->port;
    CHECK(b > 0 && b != a);
    CHECK_EQ(head_offset(b, AUTH_A, id), CHUNK / 2);
    CHECK_EQ(head_offset(b, AUTH_B, id), -404); /* still another principal's */
    /* PATCH to B, HEAD to A (whose memory says CHUNK / 2) */
    CHECK_EQ(patch_status(b, id, CHUNK / 2, CHUNK / 2, &r), 204);
    CHECK_EQ(head_offset(a, AUTH_A, id), CHUNK);
    /* a stale offset is refused by the one that did not write it too */
    CHECK_EQ(patch_status(a, id, CHUNK / 2, 100, &r), 409);
    CHECK_STR(rh(&r, "Upload-Offset"), "40000");

    /* A streams a PATCH (headers and part of its body; the rest never
     * comes): B refuses a concurrent PATCH of the upload before its body,
     * and stores nothing of it. */
    int fd = send_patch_part(a, id, CHUNK, CHUNK, 5000);
    usleep(200000);
    CHECK_EQ(patch_status(b, id, CHUNK, CHUNK, &r), 423);
    CHECK(rh(&r, "Retry-After") != NULL);
    CHECK_CONTAINS(r.body, "another receiver is writing or applying this upload");
    CHECK_EQ(head_offset(b, AUTH_A, id), CHUNK); /* the durable offset */
    /* the connection breaks: what A received is kept, and B sees it */
    if (fd >= 0)
        close(fd);
    CHECK_EQ(head_wait(b, id, CHUNK + 5000), CHUNK + 5000);

    /* kill -9 of A while it streams into the upload: the lock dies with
     * it and B takes the next PATCH at the durable offset */
    fd = send_patch_part(a, id, CHUNK + 5000, 3000, 1000);
    usleep(200000);
    CHECK_EQ(patch_status(b, id, CHUNK + 5000, 10, &r), 423);
    kill_server(pa);
    if (fd >= 0)
        close(fd);
    long long o = head_offset(b, AUTH_A, id);
    CHECK_EQ(o, CHUNK + 5000); /* unpublished bytes of the dead PATCH do not count */
    CHECK_EQ(patch_status(b, id, CHUNK + 5000, CHUNK - 5000, &r), 204);
    pa = spawn_server_opt(dir, 1);
    a = sh->port;
    /* the last chunk completes the upload on A: applied once, by A */
    CHECK_EQ(patch_status(a, id, 2 * CHUNK, CHUNK, &r), 204);
    CHECK_EQ(sh->completes, 1);
    CHECK_EQ(sh->applied, 1);
    CHECK_EQ(sh->sha_bad, 0);
    CHECK_EQ(head_offset(b, AUTH_A, id), TOTAL); /* settled: B says complete */
    CHECK_EQ(head_offset(a, AUTH_A, id), TOTAL);
    CHECK_EQ(sh->completes, 1); /* HEADs of a settled upload apply nothing */
    /* a PATCH of data to the settled upload, on either: 409 at the end */
    CHECK_EQ(patch_status(b, id, TOTAL - 10, 10, &r), 409);

    /* The applier dies mid-apply: A's on_complete never returns, A is
     * killed, and the complete upload goes to B on its next HEAD. */
    char id2[TUS_ID_LEN + 1] = "";
    CHECK_EQ(create(b, AUTH_A, TOTAL, id2), 0);
    CHECK_EQ(patch_status(b, id2, 0, CHUNK, &r), 204);
    CHECK_EQ(patch_status(a, id2, CHUNK, CHUNK, &r), 204);
    sh->hang_pid = pa;
    fd = send_patch(a, id2, 2 * CHUNK, CHUNK); /* its answer never comes */
    for (int i = 0; i < 300 && sh->completes < 2; i++)
        usleep(10000);
    CHECK_EQ(sh->completes, 2);
    CHECK_EQ(sh->applied, 1);
    /* A holds it: B's HEAD says complete and leaves it alone */
    CHECK_EQ(head_offset(b, AUTH_A, id2), TOTAL);
    usleep(100000);
    CHECK_EQ(sh->completes, 2);
    kill_server(pa);
    if (fd >= 0)
        close(fd);
    static unsigned char got[TOTAL + 1];
    size_t n = read_data(dir, id2, got, sizeof got);
    CHECK(n == TOTAL && memcmp(got, payload, TOTAL) == 0); /* complete on the spool */
    CHECK_EQ(head_offset(b, AUTH_A, id2), TOTAL);          /* B takes it now */
    for (int i = 0; i < 300 && sh->applied < 2; i++)
        usleep(10000);
    CHECK_EQ(sh->completes, 3);
    CHECK_EQ(sh->applied, 2);
    CHECK_EQ(sh->sha_bad, 0);
    CHECK_EQ(read_data(dir, id2, got, sizeof got), 0); /* settled: data gone */
    CHECK_EQ(head_offset(b, AUTH_A, id2), TOTAL);
    /* a server started now applies nothing again */
    pa = spawn_server_opt(dir, 1);
    a = sh->port;
    CHECK_EQ(head_offset(a, AUTH_A, id2), TOTAL);
    CHECK_EQ(head_offset(a, AUTH_A, id), TOTAL);
    CHECK_EQ(sh->applied, 2);
    CHECK_EQ(sh->completes, 3);
    kill_server(pa);
    kill_server(pb);
    CHECK_EQ(cfails, 0);
    rm_spool(dir);
}

/* POSTs with Upload-Metadata `meta`; expects `status` and a body that
 * contains `detail`. */
static void c_create_meta(int port, const char *meta, int status, const char *detail)
{
    struct resp r;
    char h[512];
    snprintf(h, sizeof h, TUS AUTH_A "Upload-Length: 10\r\nUpload-Metadata: %s\r\n", meta);
    req(port, "POST", "/files", h, NULL, 0, &r);
    C_EQ(r.status, status);
    C_HAS(r.body, detail);
}

/* Malformed metadata: 400 saying what is wrong and where, and nothing
 * changes (the per-principal cap is 1, so a creation that went as far as
 * making room would have released the upload made first). */
static int c_bad_metadata(int port)
{
    if (create(port, AUTH_A, TOTAL, sh->id[0]) < 0)
        return cfails;
    c_create_meta(port, "a eB==", 400,
                  "value of key 'a' is not standard base64: it is not canonical");
    /* "other" with stray bits: a lenient decoder reads it, this one does not */
    c_create_meta(port, "node_id bm9kZS1h,segment MTc=,node b3RoZXJ=", 400,
                  "value of key 'node' is not standard base64: it is not canonical");
    c_create_meta(port, "a b!c", 400, "character outside the base64 alphabet");
    c_create_meta(port, "a e=A=", 400, "padding ('=') is only allowed at the end");
    c_create_meta(port, "a eA==,b e", 400, "value of key 'b' is not standard base64: its length");
    c_create_meta(port, "a eA==,a eA==", 400, "key 'a' appears twice");
    c_create_meta(port, "a eA==,", 400, "Upload-Metadata ends with a comma");
    c_create_meta(port, "a eA==,,b eA==", 400, "Upload-Metadata pair 2 is empty");
    /* what the client sent is quoted, and the answer stays JSON */
    c_create_meta(port, "a\"b eA==,a\"b eA==", 400, "key 'a\\\"b' appears twice");
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), 0);
    return cfails;
}

static void test_bad_metadata(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 1, 0), 0);
    CHECK_EQ(run_client(&f, c_bad_metadata), 0);
    struct tus_server_stats st;
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1);
    CHECK_EQ(file_size(&f, sh->id[0], ".state") > 0, 1);
    fx_done(&f);
}

static const char *c_auth = AUTH_A; /* set before run_client: the child inherits it */
static const char *c_meta = "node_id bm9kZS1h,segment MTc=";
static int c_want;

static int c_post(int port)
{
    struct resp r;
    char h[512];
    snprintf(h, sizeof h, TUS "%sUpload-Length: 10\r\nUpload-Metadata: %s\r\n", c_auth, c_meta);
    req(port, "POST", "/files", h, NULL, 0, &r);
    C_EQ(r.status, c_want);
    if (r.status == 201) {
        const char *loc = rh(&r, "Location");
        if (loc && strlen(loc) == 7 + TUS_ID_LEN)
            memcpy(sh->id[0], loc + 7, TUS_ID_LEN + 1);
    } else {
        /* every answer is problem+json with a detail */
        C_HAS(r.body, "\"detail\":\"");
        C_STR(rh(&r, "Tus-Resumable"), "1.0.0");
    }
    return cfails;
}

static int c_head_patch(int port)
{
    struct resp r;
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), 0);
    char h[256], path[64];
    snprintf(h, sizeof h, TUS AUTH_A OCTETS "Upload-Offset: 0\r\n");
    snprintf(path, sizeof path, "/files/%s", sh->id[0]);
    req(port, "PATCH", path, h, payload, 4, &r);
    C_EQ(r.status, 204);
    return cfails;
}

/* Each request is authenticated once; a creation is admitted once, with
 * the metadata already parsed; the admit callback's refusals become 403,
 * 400 or 503 with its detail, and nothing is stored. */
static void test_admit(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    f.use_admit = 1;
    fx_reopen(&f);
    struct tus_server_stats st;

    c_want = 201;
    CHECK_EQ(run_client(&f, c_post), 0);
    CHECK_EQ(f.authorizes, 1);
    CHECK_EQ(f.admits, 1);
    CHECK_STR(f.a_principal, "node-a");
    CHECK_STR(f.a_node, "node-a");
    CHECK_EQ(run_client(&f, c_head_patch), 0); /* two requests, no creation */
    CHECK_EQ(f.authorizes, 3);
    CHECK_EQ(f.admits, 1);

    f.admit_rc = -EPERM;
    snprintf(f.admit_detail, sizeof f.admit_detail, "node \"x\" is not yours");
    c_want = 403;
    CHECK_EQ(run_client(&f, c_post), 0);
    CHECK_EQ(f.authorizes, 4);
    CHECK_EQ(f.admits, 2);
    f.admit_rc = -EIO;
    f.admit_detail[0] = '\0';
    c_want = 503;
    CHECK_EQ(run_client(&f, c_post), 0);
    f.admit_rc = -EINVAL;
    c_want = 400;
    CHECK_EQ(run_client(&f, c_post), 0);
    CHECK_EQ(f.admits, 4);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1);

    /* malformed metadata never reaches admit */
    f.admit_rc = 0;
    c_meta = "node_id bm9kZS1h,node_id bm9kZS1h";
    c_want = 400;
    CHECK_EQ(run_client(&f, c_post), 0);
    CHECK_EQ(f.admits, 4);
    c_meta = "node_id bm9kZS1h,segment MTc=";

    /* authorize: -EACCES is 401, any other error 503 (it could not check) */
    f.auth_rc = -EACCES;
    c_want = 401;
    CHECK_EQ(run_client(&f, c_post), 0);
    f.auth_rc = -EIO;
    c_want = 503;
    CHECK_EQ(run_client(&f, c_post), 0);
    CHECK_EQ(f.admits, 4);
    CHECK_EQ(f.authorizes, 9);
    tus_server_stats(f.tus, &st);
    CHECK_EQ(st.uploads, 1);
    f.auth_rc = 0;
    fx_done(&f);
}

/* The 403 detail with quotes, as the admit callback wrote it, escaped. */
static int c_forbidden_detail(int port)
{
    struct resp r;
    char h[512];
    snprintf(h, sizeof h, TUS AUTH_A "Upload-Length: 10\r\nUpload-Metadata: %s\r\n", c_meta);
    req(port, "POST", "/files", h, NULL, 0, &r);
    C_EQ(r.status, 403);
    C_HAS(r.body, "\"detail\":\"node \\\"x\\\" is not yours\"}");
    return cfails;
}

static void test_admit_detail(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    f.use_admit = 1;
    f.admit_rc = -EPERM;
    snprintf(f.admit_detail, sizeof f.admit_detail, "node \"x\" is not yours");
    fx_reopen(&f);
    CHECK_EQ(run_client(&f, c_forbidden_detail), 0);
    fx_done(&f);
}

static void test_metadata_get(void)
{
    struct tus_metadata md = {0};
    CHECK(tus_metadata_get(&md, "x", NULL) == NULL);
    CHECK(tus_metadata_get(NULL, "x", NULL) == NULL);
}

/* ---- uploads named by the client (Outpost-Upload-Key) ---- */

#define META_17 "node_id bm9kZS1h,segment MTc="

/* POSTs a creation under `key` of `length`, with payload[0..len) as its
 * first bytes (none when len is 0). */
static int post_named(int port, const char *auth, const char *key, uint64_t length,
                      const char *meta, size_t len, struct resp *r)
{
    char h[1024], ck[256] = "";
    if (len) {
        unsigned char d[32];
        char d64[64];
        sha256(payload, len, d);
        b64(d, 32, d64);
        snprintf(ck, sizeof ck, OCTETS "Upload-Checksum: sha256 %s\r\n", d64);
    }
    snprintf(h, sizeof h,
             TUS "%sOutpost-Upload-Key: %s\r\nUpload-Length: %llu\r\n"
                 "Upload-Metadata: %s\r\n%s",
             auth, key, (unsigned long long)length, meta, ck);
    return req(port, "POST", "/files", h, len ? payload : NULL, len, r);
}

static int c_gate_mode; /* the child knows whether the gate streams */

static int c_named(int port)
{
    struct resp r;
    char id[TUS_ID_LEN + 1], loc[64];
    C_EQ(tus_upload_id("node-a", "seg-17.abc", id), 0);
    snprintf(loc, sizeof loc, "/files/%s", id);
    /* created with its first chunk, at the name the client computed */
    C_EQ(post_named(port, AUTH_A, "seg-17.abc", TOTAL, META_17, CHUNK, &r), 201);
    C_STR(rh(&r, "Location"), loc);
    C_STR(rh(&r, "Upload-Offset"), "40000");
    /* the same creation again (its answer was lost): the upload as it stands */
    C_EQ(post_named(port, AUTH_A, "seg-17.abc", TOTAL, META_17, 0, &r), 201);
    C_STR(rh(&r, "Location"), loc);
    C_STR(rh(&r, "Upload-Offset"), "40000");
    /* again with its first bytes: they are not taken twice */
    C_EQ(post_named(port, AUTH_A, "seg-17.abc", TOTAL, META_17, CHUNK, &r), 201);
    C_STR(rh(&r, "Upload-Offset"), "40000");
    C_EQ(head_offset(port, AUTH_A, id), CHUNK);
    /* the same key with another length, or other metadata: 409, nothing changes */
    C_EQ(post_named(port, AUTH_A, "seg-17.abc", TOTAL + 1, META_17, 0, &r), 409);
    C_HAS(r.body, "another Upload-Length or Upload-Metadata");
    C_STR(rh(&r, "Upload-Offset"), "40000");
    C_EQ(post_named(port, AUTH_A, "seg-17.abc", TOTAL, "node_id bm9kZS1h,segment MTg=", CHUNK, &r),
         409);
    C_EQ(head_offset(port, AUTH_A, id), CHUNK);
    /* another node's same key is another upload; node-a's is not node-b's */
    char idb[TUS_ID_LEN + 1];
    C_EQ(tus_upload_id("node-b", "seg-17.abc", idb), 0);
    C_CHECK(strcmp(id, idb) != 0);
    C_EQ(post_named(port, AUTH_B, "seg-17.abc", 10, "node_id bm9kZS1i", 0, &r), 201);
    C_HAS(rh(&r, "Location"), idb);
    C_EQ(head_offset(port, AUTH_B, id), -404);
    /* malformed keys: 400, nothing stored */
    C_EQ(post_named(port, AUTH_A, "seg 17", TOTAL, META_17, 0, &r), 400);
    C_HAS(r.body, "Outpost-Upload-Key");
    C_EQ(post_named(port, AUTH_A,
                    "k2345678901234567890123456789012345678901234567890123456789012345", TOTAL,
                    META_17, 0, &r),
         400);
    /* data on a creation needs the tus content type */
    C_EQ(req(port, "POST", "/files",
             TUS AUTH_A "Outpost-Upload-Key: seg-99\r\nUpload-Length: 10\r\n", payload, 5, &r),
         415);
    char id99[TUS_ID_LEN + 1];
    C_EQ(tus_upload_id("node-a", "seg-99", id99), 0);
    C_EQ(head_offset(port, AUTH_A, id99), -404);
    /* a creation whose first chunk is cut: what arrived is kept (streamed) */
    char idc[TUS_ID_LEN + 1];
    C_EQ(tus_upload_id("node-a", "seg-18", idc), 0);
    int fd = tcp_connect(port);
    if (fd >= 0) {
        char h[512];
        int n = snprintf(
            h, sizeof h,
            "POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %u\r\n" TUS AUTH_A OCTETS
            "Outpost-Upload-Key: seg-18\r\nUpload-Length: %u\r\n"
            "Upload-Metadata: " META_17 "\r\n\r\n",
            CHUNK, TOTAL);
        (void)send_all(fd, h, (size_t)n);
        (void)send_all(fd, payload, CUT_K);
        close(fd);
    }
    long long kept = CUT_K;
    if (c_gate_mode) {
        C_EQ(head_wait(port, idc, kept), kept);
    } else {
        /* buffered, the cut request never reached the handler: no upload */
        usleep(50000);
        C_EQ(head_offset(port, AUTH_A, idc), -404);
        C_EQ(post_named(port, AUTH_A, "seg-18", TOTAL, META_17, CUT_K, &r), 201);
        C_HAS(rh(&r, "Location"), idc);
    }
    /* both finish with PATCHes from the offset HEAD gave */
    for (size_t off = (size_t)kept; off < TOTAL; off += CHUNK)
        C_EQ(patch(port, AUTH_A, idc, off, TOTAL - off < CHUNK ? TOTAL - off : CHUNK, &r), 204);
    C_EQ(patch(port, AUTH_A, id, CHUNK, CHUNK, &r), 204);
    C_EQ(patch(port, AUTH_A, id, 2 * CHUNK, CHUNK, &r), 204);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    /* complete: the creation again says so, and nothing is delivered twice */
    C_EQ(post_named(port, AUTH_A, "seg-17.abc", TOTAL, META_17, CHUNK, &r), 201);
    C_STR(rh(&r, "Upload-Offset"), "120000");
    return cfails;
}

/* A creation with Outpost-Upload-Key lands at the id both sides derive,
 * is idempotent (same key, length and metadata: the upload as it stands,
 * also with its first bytes again), refuses another length or metadata
 * with 409 and a malformed key with 400, and with the gate keeps the bytes
 * of a creation cut in its first chunk. Each completes once with exactly
 * the payload. */
static void test_named_creation(void)
{
    for (int gate_on = 0; gate_on <= 1; gate_on++) {
        struct fx f;
        if (fx_init(&f, 4, 1 << 30) < 0) {
            CHECK(0);
            return;
        }
        f.use_gate = gate_on;
        fx_reopen(&f);
        c_gate_mode = gate_on;
        sh->completes = sh->sha_bad = 0;
        CHECK_EQ(run_client(&f, c_named), 0);
        CHECK_EQ(f.completes, 2);
        CHECK_EQ(sh->sha_bad, 0);
        struct tus_server_stats ts;
        tus_server_stats(f.tus, &ts);
        CHECK_EQ(ts.uploads, 3); /* two complete uploads of node-a and node-b's one */
        fx_done(&f);
    }
    /* the id: fixed by principal and key, refused for bad keys */
    char a[TUS_ID_LEN + 1], b[TUS_ID_LEN + 1];
    CHECK_EQ(tus_upload_id("node-a", "k", a), 0);
    CHECK_EQ(tus_upload_id("node-a", "k", b), 0);
    CHECK_STR(a, b);
    CHECK_EQ(strlen(a), TUS_ID_LEN);
    CHECK_EQ(tus_upload_id("node-a", "", a), -EINVAL);
    CHECK_EQ(tus_upload_id("node-a", "a/b", a), -EINVAL);
    CHECK_EQ(tus_upload_id("", "k", a), -EINVAL);
}

/* ---- an upload's state for the embedder; answering a waiting request early ---- */

static int c_half(int port)
{
    struct resp r;
    if (create(port, AUTH_A, TOTAL, sh->id[0]) < 0)
        return cfails;
    C_EQ(patch(port, AUTH_A, sh->id[0], 0, CHUNK, &r), 204);
    return cfails;
}

static int c_rest(int port)
{
    struct resp r;
    for (unsigned i = 1; i < 3; i++)
        C_EQ(patch(port, AUTH_A, sh->id[0], i * CHUNK, CHUNK, &r), 204);
    return cfails;
}

/* The completing PATCH answered by tus_server_answer_waiting at 50 ms,
 * with the full offset, before the outcome (250 ms later); HEAD says
 * complete meanwhile and after. */
static int c_early(int port)
{
    struct resp r;
    if (create(port, AUTH_A, TOTAL, sh->id[0]) < 0)
        return cfails;
    for (unsigned i = 0; i < 2; i++)
        C_EQ(patch(port, AUTH_A, sh->id[0], i * CHUNK, CHUNK, &r), 204);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    C_EQ(patch(port, AUTH_A, sh->id[0], 2 * CHUNK, CHUNK, &r), 204);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    C_CHECK(ms >= 40 && ms < 250);
    C_CHECK(rh(&r, "Test-Outcome") == NULL); /* not the outcome's answer */
    char want[24];
    snprintf(want, sizeof want, "%u", TOTAL);
    C_STR(rh(&r, "Upload-Offset"), want);
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), (long long)TOTAL);
    usleep(400000);
    C_EQ(head_offset(port, AUTH_A, sh->id[0]), (long long)TOTAL);
    return cfails;
}

static void test_upload_state(void)
{
    struct fx f;
    f.shared = 0;
    CHECK_EQ(fx_init(&f, 4, 0), 0);
    f.shared = 1; /* a second module on the same spool reads its state files */
    fx_reopen(&f);
    struct tus_server *other = NULL;
    struct tus_server_config oc = {
        .spool_dir = f.dir, .authorize = authorize, .ctx = &f, .shared = 1};
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(tus_server_new(&oc, &other, &err), 0);

    CHECK_EQ(run_client(&f, c_half), 0);
    const char *id = sh->id[0];
    CHECK_EQ(tus_server_upload_state(f.tus, id, "node-a"), TUS_UPLOAD_PARTIAL);
    CHECK_EQ(tus_server_upload_state(other, id, "node-a"), TUS_UPLOAD_PARTIAL);
    CHECK_EQ(tus_server_upload_state(f.tus, id, "node-b"), TUS_UPLOAD_NONE); /* not hers */
    CHECK_EQ(tus_server_upload_state(f.tus, "0123", "node-a"), TUS_UPLOAD_NONE);
    char upper[TUS_ID_LEN + 1];
    for (int i = 0; i <= TUS_ID_LEN; i++)
        upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
    CHECK_EQ(tus_server_upload_state(f.tus, upper, "node-a"), TUS_UPLOAD_NONE);
    CHECK_EQ(tus_server_upload_state(f.tus, "0123456789abcdef0123456789abcdef", "node-a"),
             TUS_UPLOAD_NONE);

    /* complete, not taken (the callback failed): COMPLETE; offered: TAKEN */
    f.complete_rc = -EAGAIN;
    CHECK_EQ(run_client(&f, c_rest), 0);
    int before = f.completes;
    CHECK_EQ(tus_server_upload_state(f.tus, id, "node-a"), TUS_UPLOAD_COMPLETE);
    CHECK_EQ(tus_server_upload_state(other, id, "node-a"), TUS_UPLOAD_COMPLETE);
    f.complete_rc = TUS_COMPLETE_LATER;
    CHECK_EQ(tus_server_offer(f.tus, id), 1);
    CHECK_EQ(f.completes, before + 1);
    CHECK_EQ(tus_server_upload_state(f.tus, id, "node-a"), TUS_UPLOAD_TAKEN);
    CHECK_EQ(tus_server_offer(f.tus, id), 0); /* taken: not offered twice */
    CHECK_EQ(tus_server_offer(other, id), 0); /* this module holds it */
    CHECK_EQ(f.completes, before + 1);
    CHECK_EQ(tus_server_upload_state(other, id, "node-a"), TUS_UPLOAD_COMPLETE);

    /* settled here: SETTLED in both; released: NONE in both */
    CHECK_EQ(tus_server_settle(f.tus, id), 0);
    tus_server_finish(f.tus, id, NULL, 0);
    CHECK_EQ(tus_server_upload_state(f.tus, id, "node-a"), TUS_UPLOAD_SETTLED);
    CHECK_EQ(tus_server_upload_state(other, id, "node-a"), TUS_UPLOAD_SETTLED);
    CHECK_EQ(tus_server_release(f.tus, id), 0);
    CHECK_EQ(tus_server_upload_state(f.tus, id, "node-a"), TUS_UPLOAD_NONE);
    CHECK_EQ(tus_server_upload_state(other, id, "node-a"), TUS_UPLOAD_NONE);
    tus_server_free(other);

    /* answering the completing request before the outcome */
    f.shared = 0;
    uv_timer_init(&f.tl.loop, &f.later_timer);
    f.later_timer.data = &f;
    f.before_answer = 1;
    f.later = 1;
    f.early = 1;
    f.finish_rc = 0;
    fx_reopen(&f);
    CHECK_EQ(run_client(&f, c_early), 0);
    CHECK_EQ(tus_server_upload_state(f.tus, sh->id[0], "node-a"), TUS_UPLOAD_SETTLED);
    uv_close((uv_handle_t *)&f.later_timer, NULL);
    fx_done(&f);
}

int main(void)
{
    alarm(300);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    make_payload();
    RUN(test_metadata_get);
    RUN(test_options);
    RUN(test_full_upload);
    RUN(test_refusals);
    RUN(test_caps);
    RUN(test_restart_torn_append);
    RUN(test_short_data_file);
    RUN(test_redeliver);
    RUN(test_settle);
    RUN(test_terminate);
    RUN(test_terminate_cut);
    RUN(test_settled_caps);
    RUN(test_settled_expire);
    RUN(test_idle_expire);
    RUN(test_bad_metadata);
    RUN(test_admit);
    RUN(test_admit_detail);
    RUN(test_settled_state_files);
    RUN(test_cut_patch);
    RUN(test_named_creation);
    RUN(test_upload_state);
    RUN(test_kill9);
    RUN(test_shared_spool);
    RUN(test_complete_later);
    return tl_report();
}
