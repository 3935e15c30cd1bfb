/*
 * Tests for sync/hq/hq_serve.c: the HQ receiver started on the test's own
 * loop with a real SQLite store wrapped in counting operations and
 * injected clocks, answering forked blocking clients (testhttp.h). What
 * is checked is what the store sees: one token lookup per request, and
 * a node's last contact written at most once a minute, not at every
 * PATCH; plus the creation checks that used to need a second decoder of
 * Upload-Metadata (403 for another node, a precise 400 for a value that
 * is not canonical base64), and Allow on every 405. And the analysts'
 * aggregates (hq_analyst_http.c): the combined table for an analyst's
 * token, 403 for a node's, 401 for none or a revoked one, an analyst's
 * token refused at the upload and mailbox routes, precise 400s for a bad
 * query, nothing stored by any refusal.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "codec.h"
#include "egress.h"
#include "entity.h"
#include "hq_config.h"
#include "hq_serve.h"
#include "hq_store.h"
#include "policy.h"
#include "projection_hash.h"
#include "range_digest.h"
#include "segment.h"
#include "testhttp.h"
#include "fixture.h"
#include "testlib.h"

#define WALL0 1767225600000LL /* 2026-01-01T00:00:00Z */

/* ---- the store, wrapped: counts what the receiver asks of it ---- */

static const struct hq_store_ops *real_ops;
static struct hq_store_ops counting_ops;
static int n_by_token; /* token lookups: one per authenticated request */
static int n_touch;    /* last-contact writes */
static int touch_fail; /* the next node_touch calls fail with -EIO */

static int count_by_token(void *impl, const unsigned char sha[32], struct hq_node *out,
                          struct op_error *err)
{
    n_by_token++;
    return real_ops->node_by_token(impl, sha, out, err);
}

static int count_touch(void *impl, const char *name, int64_t now_ms, struct op_error *err)
{
    n_touch++;
    if (touch_fail > 0) {
        touch_fail--;
        return op_error_set(err, -EIO, NULL, "disk I/O error (injected)");
    }
    return real_ops->node_touch(impl, name, now_ms, err);
}

/* ---- the fixture ---- */

struct fx {
    uv_loop_t loop;
    char dir[64], db[128];
    struct hq_config cfg;
    struct hq_store real, wrapped;
    struct hq_serve *hq;
    int port;
    int stopped;
    int64_t wall;
    uint64_t mono;
};

static int64_t fake_wall(void *ctx)
{
    return ((struct fx *)ctx)->wall;
}

static uint64_t fake_mono(void *ctx)
{
    return ((struct fx *)ctx)->mono;
}

static void add_node(struct fx *f, const char *name, const char *token)
{
    unsigned char sha[32], key[32];
    SHA256((const unsigned char *)token, strlen(token), sha);
    memset(key, 7, sizeof key);
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(f->real.ops->node_add(f->real.impl, name, "KE", sha, key, WALL0, &err), 0);
}

static int start(struct fx *f)
{
    struct hq_serve_clock clock = {.wall_ms = fake_wall, .mono_ms = fake_mono, .ctx = f};
    struct op_error err;
    op_error_clear(&err);
    f->stopped = 0;
    int rc = hq_serve_start(&f->loop, &f->cfg, &f->wrapped, &clock, &f->hq, &err);
    if (rc < 0) {
        fprintf(stderr, "hq_serve_start: %s\n", err.msg);
        return rc;
    }
    f->port = hq_serve_port(f->hq);
    return 0;
}

static void on_stopped(void *ctx)
{
    ((struct fx *)ctx)->stopped = 1;
}

static void on_stopped_flag(void *ctx)
{
    *(int *)ctx = 1;
}

static void stop(struct fx *f)
{
    hq_serve_stop(f->hq, on_stopped, f);
    while (!f->stopped)
        uv_run(&f->loop, UV_RUN_ONCE);
    f->hq = NULL;
}

static int fx_init(struct fx *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_hq_serve_XXXXXX");
    if (!mkdtemp(f->dir))
        return -errno;
    snprintf(f->db, sizeof f->db, "%s/hq.db", f->dir);
    hq_config_defaults(&f->cfg);
    snprintf(f->cfg.listen, sizeof f->cfg.listen, "127.0.0.1:0");
    snprintf(f->cfg.db, sizeof f->cfg.db, "%s", f->db);
    snprintf(f->cfg.spool_dir, sizeof f->cfg.spool_dir, "%s/spool", f->dir);
    struct op_error err;
    op_error_clear(&err);
    if (hq_store_sqlite_open(f->db, &f->real, &err) < 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        return -1;
    }
    real_ops = f->real.ops;
    counting_ops = *real_ops;
    counting_ops.node_by_token = count_by_token;
    counting_ops.node_touch = count_touch;
    f->wrapped.ops = &counting_ops;
    f->wrapped.impl = f->real.impl;
    n_by_token = n_touch = touch_fail = 0;
    add_node(f, "nairobi-1", "token-one");
    add_node(f, "kisumu-1", "token-two");
    f->wall = WALL0 + 3600000;
    f->mono = 5000000;
    uv_loop_init(&f->loop);
    return start(f);
}

static void fx_done(struct fx *f)
{
    if (f->hq)
        stop(f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&f->loop), 0);
    hq_store_close(&f->real);
    (void)fx_remove_tree(f->dir);
}

static int64_t last_contact(struct fx *f, const char *name)
{
    struct hq_node n;
    struct op_error err;
    op_error_clear(&err);
    if (f->real.ops->node_get(f->real.impl, name, &n, &err) < 0)
        return -1;
    return n.last_contact_ms;
}

/* ---- the child: requests ---- */

#define TUS "Tus-Resumable: 1.0.0\r\n"
#define AUTH1 "Authorization: Bearer token-one\r\n"
#define AUTH2 "Authorization: Bearer token-two\r\n"
#define OCTETS "Content-Type: application/offset+octet-stream\r\n"
/* "nairobi-1", "kisumu-1", "7" in base64 */
#define B64_N1 "bmFpcm9iaS0x"
#define B64_N2 "a2lzdW11LTE="
#define B64_7 "Nw=="

/* What a client passes back to the parent (fork copies, so through a
 * file): the upload path it created. */
static char upload_path[128];
static char path_file[160];

static int post(int port, const char *auth, const char *meta, unsigned length, struct resp *r)
{
    char h[512];
    snprintf(h, sizeof h, TUS "%sUpload-Length: %u\r\nUpload-Metadata: %s\r\n", auth, length, meta);
    return req(port, "POST", "/files/", h, NULL, 0, r);
}

static void save_location(struct resp *r)
{
    const char *loc = rh(r, "Location");
    FILE *fp = fopen(path_file, "w");
    if (fp) {
        fprintf(fp, "%s", loc ? loc : "");
        fclose(fp);
    }
}

static void load_location(void)
{
    upload_path[0] = '\0';
    FILE *fp = fopen(path_file, "r");
    if (!fp)
        return;
    if (!fgets(upload_path, sizeof upload_path, fp))
        upload_path[0] = '\0';
    fclose(fp);
}

struct step {
    const char *name;
    int (*fn)(int port);
    int lookups; /* token lookups the request must cost */
};

static int c_create(int port)
{
    struct resp r;
    post(port, AUTH1, "node " B64_N1 ",segment " B64_7, 100, &r);
    C_EQ(r.status, 201);
    save_location(&r);
    return cfails;
}

static int c_head(int port)
{
    struct resp r;
    req(port, "HEAD", upload_path, TUS AUTH1, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_STR(rh(&r, "Upload-Length"), "100");
    return cfails;
}

static int c_receipt(int port)
{
    struct resp r;
    req(port, "GET", "/v1/receipts/7", AUTH1, NULL, 0, &r);
    C_EQ(r.status, 404);
    C_HAS(r.body, "has not been received");
    return cfails;
}

static int c_other_node(int port)
{
    struct resp r;
    post(port, AUTH1, "node " B64_N2 ",segment " B64_7, 100, &r);
    C_EQ(r.status, 403);
    C_HAS(r.body, "Upload-Metadata node 'kisumu-1' is not this token's node nairobi-1");
    C_STR(rh(&r, "Tus-Resumable"), "1.0.0");
    return cfails;
}

static int c_no_node(int port)
{
    struct resp r;
    post(port, AUTH1, "segment " B64_7, 100, &r);
    C_EQ(r.status, 403);
    C_HAS(r.body, "Upload-Metadata node '' is not this token's node nairobi-1");
    return cfails;
}

/* "kisumu-1" with bits set after its last byte: a lenient decoder reads
 * it as kisumu-1 (and answered 403), the one decoder refuses it. */
static int c_not_canonical(int port)
{
    struct resp r;
    post(port, AUTH1, "node a2lzdW11LTF=,segment " B64_7, 100, &r);
    C_EQ(r.status, 400);
    C_HAS(r.body, "Upload-Metadata value of key 'node' is not standard base64: it is not "
                  "canonical");
    return cfails;
}

static int c_unknown_token(int port)
{
    struct resp r;
    post(port, "Authorization: Bearer nobody\r\n", "node " B64_N1, 100, &r);
    C_EQ(r.status, 401);
    C_HAS(rh(&r, "WWW-Authenticate"), "Bearer");
    C_HAS(r.body, "enrol with 'outpost-hq node add'");
    req(port, "PATCH", upload_path,
        TUS "Authorization: Bearer nobody\r\n" OCTETS "Upload-Offset: 0\r\n", "x", 1, &r);
    C_EQ(r.status, 401);
    C_HAS(r.body, "enrol with 'outpost-hq node add'");
    return cfails;
}

/* A 4 MB chunk announced with an unknown token: the 401 comes while only
 * the head was sent (not a 100 Continue first), and the connection closes
 * without the body being read. */
static int c_unknown_token_head_only(int port)
{
    int fd = tcp_connect(port);
    C_CHECK(fd >= 0);
    if (fd < 0)
        return cfails;
    char h[512];
    snprintf(h, sizeof h,
             "PATCH %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" TUS OCTETS
             "Authorization: Bearer nobody\r\nUpload-Offset: 0\r\n"
             "Content-Length: 4194304\r\nExpect: 100-continue\r\n\r\n",
             upload_path);
    C_EQ(send_all(fd, h, strlen(h)), 0);
    char in[8192];
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, in + got, sizeof in - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got == sizeof in - 1)
            break;
    }
    close(fd);
    in[got] = '\0';
    C_CHECK(strncmp(in, "HTTP/1.1 401 ", 13) == 0);
    C_CHECK(strstr(in, "100 Continue") == NULL);
    C_HAS(in, "\r\nConnection: close\r\n");
    C_HAS(in, "\r\nTus-Resumable: 1.0.0\r\n");
    C_HAS(in, "enrol with 'outpost-hq node add'");
    return cfails;
}

static int c_healthz(int port)
{
    struct resp r;
    req(port, "GET", "/healthz", "", NULL, 0, &r);
    C_EQ(r.status, 200);
    return cfails;
}

/* Every 405 names the path's methods in Allow: HQ's own paths (before
 * any token is looked up) and the tus server's. */
static int c_not_allowed(int port)
{
    static const struct {
        const char *method, *path, *headers, *allow;
    } cases[] = {
        {"POST", "/healthz", "", "GET, HEAD"},          {"DELETE", "/metrics", "", "GET, HEAD"},
        {"POST", "/v1/mailbox", AUTH1, "GET"},          {"PUT", "/v1/receipts/7", AUTH1, "GET"},
        {"GET", "/files/", TUS AUTH1, "OPTIONS, POST"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r;
        req(port, cases[i].method, cases[i].path, cases[i].headers, NULL, 0, &r);
        C_EQ(r.status, 405);
        C_STR(rh(&r, "Allow"), cases[i].allow);
        C_HAS(r.body, "Method Not Allowed");
    }
    return cfails;
}

struct call {
    int (*fn)(int port);
};

static int run_fn(int port, void *arg)
{
    load_location();
    return ((struct call *)arg)->fn(port);
}

static int client(struct fx *f, int (*fn)(int port))
{
    struct call c = {fn};
    return th_run_client(&f->loop, f->port, run_fn, &c);
}

static int count_state_files(struct fx *f)
{
    char cmd[HQ_CONFIG_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls '%s'/*.state 2>/dev/null | wc -l", f->cfg.spool_dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

/* One token lookup per request, whatever the route; the creation checks
 * on the metadata tus_server decoded. */
static void test_authenticate_once(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f), 0);
    snprintf(path_file, sizeof path_file, "%s/location", f.dir);
    const struct step steps[] = {
        {"create", c_create, 1},
        {"head", c_head, 1},
        {"receipt", c_receipt, 1},
        {"another node's metadata", c_other_node, 1},
        {"no node in the metadata", c_no_node, 1},
        {"node not canonical base64", c_not_canonical, 1},
        {"unknown token, POST and PATCH", c_unknown_token, 2},
        {"unknown token, 4 MB announced", c_unknown_token_head_only, 1},
        {"healthz", c_healthz, 0},
        {"405 with Allow", c_not_allowed, 3}, /* one per request to a node route */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int before = n_by_token;
        int rc = client(&f, steps[i].fn);
        if (rc != 0 || n_by_token - before != steps[i].lookups)
            fprintf(stderr, "  step: %s\n", steps[i].name);
        CHECK_EQ(rc, 0);
        CHECK_EQ(n_by_token - before, steps[i].lookups);
    }
    CHECK_EQ(count_state_files(&f), 1); /* only the first creation stored anything */
    fx_done(&f);
}

static int c_patches(int port)
{
    struct resp r;
    char h[256];
    for (int i = 0; i < 50; i++) {
        snprintf(h, sizeof h, TUS AUTH1 OCTETS "Upload-Offset: %d\r\n", i);
        req(port, "PATCH", upload_path, h, "x", 1, &r);
        C_EQ(r.status, 204);
    }
    return cfails;
}

static int c_head_two(int port)
{
    struct resp r;
    req(port, "GET", "/v1/mailbox?after=0", AUTH2, NULL, 0, &r);
    C_EQ(r.status, 200);
    return cfails;
}

/* The first request after a start writes last contact; 50 PATCHes in the
 * same minute write nothing more; a minute later the next request writes
 * again; each node has its own minute; a failed write is tried again at
 * the next request; a restart writes again at once. */
static void test_last_contact(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f), 0);
    snprintf(path_file, sizeof path_file, "%s/location", f.dir);
    CHECK_EQ(last_contact(&f, "nairobi-1"), 0);
    CHECK_EQ(client(&f, c_create), 0); /* an upload of 100 bytes: 50 PATCHes leave it open */
    CHECK_EQ(n_touch, 1);
    CHECK_EQ(last_contact(&f, "nairobi-1"), f.wall);
    int64_t first = f.wall;

    f.wall += 59000;
    f.mono += 59000;
    CHECK_EQ(client(&f, c_patches), 0);
    CHECK_EQ(n_touch, 1);
    CHECK_EQ(last_contact(&f, "nairobi-1"), first);
    f.mono += 999;
    CHECK_EQ(client(&f, c_head), 0);
    CHECK_EQ(n_touch, 1);
    f.mono += 1; /* a minute after the write */
    f.wall += 1000;
    CHECK_EQ(client(&f, c_head), 0);
    CHECK_EQ(n_touch, 2);
    CHECK_EQ(last_contact(&f, "nairobi-1"), f.wall);

    /* another node is not held back by the first */
    CHECK_EQ(client(&f, c_head_two), 0);
    CHECK_EQ(n_touch, 3);
    CHECK_EQ(last_contact(&f, "kisumu-1"), f.wall);

    /* a failed write does not count as written */
    f.mono += HQ_SERVE_TOUCH_MS;
    touch_fail = 1;
    CHECK_EQ(client(&f, c_head), 0);
    CHECK_EQ(n_touch, 4);
    CHECK_EQ(client(&f, c_head), 0);
    CHECK_EQ(n_touch, 5);
    CHECK_EQ(client(&f, c_head), 0);
    CHECK_EQ(n_touch, 5);

    /* a new start knows nothing: its first request writes */
    stop(&f);
    f.wall += 10000; /* past the store's own 5 s guard */
    CHECK_EQ(start(&f), 0);
    CHECK_EQ(client(&f, c_head), 0);
    CHECK_EQ(n_touch, 6);
    CHECK_EQ(last_contact(&f, "nairobi-1"), f.wall);
    fx_done(&f);
}

/* ---- receipts on the completing PATCH, the mailbox hint ---- */

/* A segment as a node builds it: node nairobi-1 (key 7s), number no, one
 * contact, under the KE profile; read into seg_bytes (the child inherits
 * it through fork). */
static unsigned char seg_bytes[65536];
static size_t seg_len;
static unsigned seg_no;
static int seg_erase; /* non-zero: the segment erases contact c1 instead */
static int seg_patch; /* non-zero: a patch of c1 from version no - 1 (name "Njeri") instead */

static int build_segment(struct fx *f, unsigned no)
{
    struct op_error err;
    op_error_clear(&err);
    char ppath[1024], sub[256], out[1024];
    struct policy *p = NULL;
    if (policy_find_file("KE", ppath, sizeof ppath, &err) < 0 ||
        policy_load_file(ppath, &p, &err) < 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        return -1;
    }
    unsigned char key[32], pkey[32] = {0x5a};
    memset(key, 7, sizeof key);
    struct segment_info hdr = {0};
    snprintf(hdr.node_id, sizeof hdr.node_id, "nairobi-1");
    hdr.from_ordinary = no * 10;
    hdr.schema_version = 7;
    memcpy(hdr.policy_hash, p->hash, sizeof hdr.policy_hash);
    snprintf(sub, sizeof sub, "%s/seg", f->dir);
    (void)mkdir(sub, 0700);
    struct segment_writer *w = NULL;
    struct egress_counts counts = {0};
    struct egress_record *r = NULL;
    json_t *rec = json_pack("{s:s, s:i, s:s, s:s}", "id", "c1", "version", (int)no, "given_name",
                            "Wanjiru", "country", "KE");
    int rc = segment_writer_new(&hdr, key, sub, no, &w, &err);
    if (rc == 0 && seg_patch) {
        /* as the node cuts it: the new projection against the field
         * digests of the projection it holds HQ has (version no - 1) */
        json_t *now = json_pack("{s:s, s:i, s:s, s:s}", "id", "c1", "version", (int)no,
                                "given_name", "Njeri", "country", "KE");
        struct egress_record *whole = NULL, *old = NULL;
        json_object_set_new(rec, "version", json_integer((json_int_t)no - 1));
        rc = egress_project(p, pkey, entity_by_name("contact"), now, &whole, &counts, &err);
        if (rc == 0)
            rc = egress_project(p, pkey, entity_by_name("contact"), rec, &old, NULL, &err);
        json_t *oj = rc == 0 ? json_loads(egress_record_json(old), 0, NULL) : NULL;
        json_t *digests = oj ? projection_field_digests(oj) : NULL;
        if (rc == 0)
            rc = egress_patch(whole, (int64_t)no - 1, digests, &r, &err);
        json_decref(digests);
        json_decref(oj);
        json_decref(now);
        egress_record_free(whole);
        egress_record_free(old);
    } else if (rc == 0 && seg_erase)
        rc = egress_tombstone(p, entity_by_name("contact"), "c1", (int64_t)no, EGRESS_OP_ERASE, &r,
                              &err);
    else if (rc == 0)
        rc = egress_project(p, pkey, entity_by_name("contact"), rec, &r, &counts, &err);
    if (rc == 0)
        rc = segment_writer_add(w, r, &err);
    if (rc == 0)
        rc = segment_writer_finish(w, 1, no * 10 + 1, &counts, out, sizeof out, NULL, &err);
    egress_record_free(r);
    json_decref(rec);
    policy_free(p);
    if (rc < 0) {
        fprintf(stderr, "segment: %s\n", err.msg);
        return -1;
    }
    FILE *fp = fopen(out, "rb");
    seg_len = fp ? fread(seg_bytes, 1, sizeof seg_bytes, fp) : 0;
    if (fp)
        fclose(fp);
    seg_no = no;
    return seg_len > 0 && seg_len < sizeof seg_bytes ? 0 : -1;
}

/* What the client saw, for the parent (fork: through a file). */
static char result_file[160];

static void save_result(const char *text)
{
    FILE *fp = fopen(result_file, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static void load_result(char *out, size_t cap)
{
    out[0] = '\0';
    FILE *fp = fopen(result_file, "r");
    if (!fp)
        return;
    size_t n = fread(out, 1, cap - 1, fp);
    out[n] = '\0';
    fclose(fp);
}

/* Creates an upload of seg_bytes and PATCHes it whole; r gets the PATCH's
 * answer and the upload path is kept in upload_path. */
static int upload_segment(int port, struct resp *r)
{
    char meta[128], h[256];
    char seg[16], seg64[32];
    snprintf(seg, sizeof seg, "%u", seg_no);
    (void)codec_b64_encode(seg, strlen(seg), 0, seg64, sizeof seg64);
    snprintf(meta, sizeof meta, "node " B64_N1 ",segment %s", seg64);
    post(port, AUTH1, meta, (unsigned)seg_len, r);
    C_EQ(r->status, 201);
    C_CHECK(rh(r, "Outpost-Mailbox-Last") != NULL);
    const char *loc = rh(r, "Location");
    snprintf(upload_path, sizeof upload_path, "%.100s", loc ? loc : "/files/none");
    snprintf(h, sizeof h, TUS AUTH1 OCTETS "Upload-Offset: 0\r\n");
    return req(port, "PATCH", upload_path, h, seg_bytes, seg_len, r);
}

/* The receipt rides on the completing PATCH: base64url of exactly what
 * GET /v1/receipts/N answers. */
static int c_receipt_header(int port)
{
    struct resp r;
    C_EQ(upload_segment(port, &r), 204);
    const char *enc = rh(&r, "Outpost-Receipt");
    C_CHECK(enc != NULL);
    char b64[4096], json[4096];
    size_t n = 0;
    for (; enc && enc[n] && n < sizeof b64 - 4; n++)
        b64[n] = enc[n] == '-' ? '+' : enc[n] == '_' ? '/' : enc[n];
    b64[n] = '\0';
    ssize_t jl = codec_b64_decode(b64, n, (unsigned char *)json, sizeof json - 1, NULL);
    C_CHECK(jl > 0);
    json[jl > 0 ? jl : 0] = '\0';
    C_CHECK(enc && !strchr(enc, '=') && !strchr(enc, '+') && !strchr(enc, '/'));
    char path[32];
    snprintf(path, sizeof path, "/v1/receipts/%u", seg_no);
    req(port, "GET", path, AUTH1, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_STR(json, r.body);
    C_HAS(json, "\"status\":\"applied\"");
    return cfails;
}

static int c_no_receipt_header(int port)
{
    struct resp r;
    C_EQ(upload_segment(port, &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") == NULL);
    return cfails;
}

/* A completed upload that fails the segment's own checks: 460 with a
 * problem detail, and the upload is gone (HEAD 404). */
static int c_corrupt(int port)
{
    struct resp r;
    C_EQ(upload_segment(port, &r), 460);
    C_HAS(r.body, "discarded");
    C_CHECK(rh(&r, "Outpost-Receipt") == NULL);
    req(port, "HEAD", upload_path, TUS AUTH1, NULL, 0, &r);
    C_EQ(r.status, 404);
    return cfails;
}

/* The hint on tus and /v1 answers to each node. */
static int c_mailbox_hint(int port)
{
    struct resp r;
    char got[128];
    req(port, "OPTIONS", "/files", TUS AUTH1, NULL, 0, &r);
    const char *a = rh(&r, "Outpost-Mailbox-Last");
    req(port, "GET", "/v1/mailbox?after=0", AUTH1, NULL, 0, &r);
    const char *b = rh(&r, "Outpost-Mailbox-Last");
    C_EQ(r.status, 200);
    snprintf(got, sizeof got, "%.20s %.20s", a ? a : "-", b ? b : "-");
    req(port, "GET", "/v1/receipts/999", AUTH2, NULL, 0, &r);
    const char *c = rh(&r, "Outpost-Mailbox-Last");
    snprintf(got + strlen(got), sizeof got - strlen(got), " %.20s", c ? c : "-");
    req(port, "GET", "/healthz", "", NULL, 0, &r);
    C_CHECK(rh(&r, "Outpost-Mailbox-Last") == NULL);
    save_result(got);
    return cfails;
}

static void test_receipt_and_mailbox(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f), 0);
    snprintf(result_file, sizeof result_file, "%s/result", f.dir);
    char got[128];

    CHECK_EQ(build_segment(&f, 7), 0);
    CHECK_EQ(client(&f, c_receipt_header), 0);

    CHECK_EQ(client(&f, c_mailbox_hint), 0);
    load_result(got, sizeof got);
    CHECK_STR(got, "0 0 0");
    struct op_error err;
    op_error_clear(&err);
    uint64_t seq = 0;
    for (int i = 0; i < 2; i++)
        CHECK_EQ(f.real.ops->mailbox_post(f.real.impl, "nairobi-1", "reference", "{}", 2, f.wall,
                                          &seq, &err),
                 0);
    CHECK_EQ(client(&f, c_mailbox_hint), 0);
    load_result(got, sizeof got);
    CHECK_STR(got, "2 2 0");

    /* A segment whose bytes were damaged in transit. */
    CHECK_EQ(build_segment(&f, 8), 0);
    seg_bytes[seg_len - 20] ^= 0x40; /* in the compressed records */
    CHECK_EQ(client(&f, c_corrupt), 0);

    /* receipt_wait_ms 0: answered before applying, no header. */
    stop(&f);
    f.cfg.receipt_wait_ms = 0;
    CHECK_EQ(start(&f), 0);
    CHECK_EQ(build_segment(&f, 9), 0);
    CHECK_EQ(client(&f, c_no_receipt_header), 0);
    fx_done(&f);
}

/* ---- the apply pool: applies off the loop ---- */

/* The pool's connections: begin waits while hold_file exists (after
 * creating entered_file), so a test can keep an apply running for as
 * long as it needs to show what the loop does meanwhile. */
static char hold_file[160], entered_file[160];
static const struct hq_store_ops *pool_real_ops;
static struct hq_store_ops pool_ops;

static int held_begin(void *impl, struct op_error *err)
{
    if (access(hold_file, F_OK) == 0) {
        FILE *fp = fopen(entered_file, "w");
        if (fp)
            fclose(fp);
        while (access(hold_file, F_OK) == 0)
            usleep(2000);
    }
    return pool_real_ops->begin(impl, err);
}

/* The segments the pool's connections wrote receipts for, in order. */
static pthread_mutex_t put_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t put_order[16];
static unsigned n_put;

static int logged_receipt_put(void *impl, const struct hq_receipt *r, struct op_error *err)
{
    int rc = pool_real_ops->receipt_put(impl, r, err);
    pthread_mutex_lock(&put_mu);
    if (rc == 0 && n_put < 16)
        put_order[n_put++] = r->segment;
    pthread_mutex_unlock(&put_mu);
    return rc;
}

/* A digest's build on a pool connection waits while digest_hold exists
 * (after creating digest_entered): the time a large node's set takes. */
static char digest_hold[160], digest_entered[160];

static int held_records_list(void *impl, const char *node, const char *entity, hq_record_fn cb,
                             void *ctx, struct op_error *err)
{
    if (digest_hold[0] && access(digest_hold, F_OK) == 0) {
        FILE *fp = fopen(digest_entered, "w");
        if (fp)
            fclose(fp);
        while (access(digest_hold, F_OK) == 0)
            usleep(2000);
    }
    return pool_real_ops->records_list(impl, node, entity, cb, ctx, err);
}

static int open_held(void *ctx, struct hq_store *out, struct op_error *err)
{
    int rc = hq_store_sqlite_open(ctx, out, err);
    if (rc < 0)
        return rc;
    pool_real_ops = out->ops;
    pool_ops = *out->ops;
    pool_ops.begin = held_begin;
    pool_ops.records_list = held_records_list;
    pool_ops.receipt_put = logged_receipt_put;
    out->ops = &pool_ops;
    return 0;
}

static int start_pool(struct fx *f)
{
    struct hq_serve_clock clock = {.wall_ms = fake_wall, .mono_ms = fake_mono, .ctx = f};
    struct hq_store_opener opener = {.open = open_held, .ctx = f->db};
    struct op_error err;
    op_error_clear(&err);
    f->stopped = 0;
    int rc = hq_serve_start_pool(&f->loop, &f->cfg, &f->wrapped, &opener, &clock, &f->hq, &err);
    if (rc < 0) {
        fprintf(stderr, "hq_serve_start_pool: %s\n", err.msg);
        return rc;
    }
    f->port = hq_serve_port(f->hq);
    return 0;
}

#define POOL_SEGS 5
static unsigned char pool_seg[POOL_SEGS][65536];
static size_t pool_len[POOL_SEGS];
static unsigned pool_no[POOL_SEGS];

static void touch_file(const char *path)
{
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp)
        fclose(fp);
}

/* POST for pool segment i; its path into out. */
static int pool_create(int port, int i, char *out, size_t cap)
{
    struct resp r;
    char meta[128], seg[16], seg64[32];
    snprintf(seg, sizeof seg, "%u", pool_no[i]);
    (void)codec_b64_encode(seg, strlen(seg), 0, seg64, sizeof seg64);
    snprintf(meta, sizeof meta, "node " B64_N1 ",segment %s", seg64);
    post(port, AUTH1, meta, (unsigned)pool_len[i], &r);
    const char *loc = rh(&r, "Location");
    snprintf(out, cap, "%.100s", loc ? loc : "/files/none");
    return r.status;
}

/* Sends the whole of pool segment i as one PATCH and returns the socket
 * without reading the answer (read_answer). */
static int send_patch(int port, const char *path, int i)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    char h[512];
    int n = snprintf(h, sizeof h,
                     "PATCH %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n" TUS AUTH1 OCTETS "Upload-Offset: 0\r\n\r\n",
                     path, pool_len[i]);
    if (send_all(fd, h, (size_t)n) < 0 || send_all(fd, pool_seg[i], pool_len[i]) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int read_answer(int fd, struct resp *r)
{
    memset(r, 0, sizeof *r);
    r->status = -1;
    char in[16384];
    size_t got = recv_all(fd, in, sizeof in - 1);
    close(fd);
    in[got] = '\0';
    char *end = strstr(in, "\r\n\r\n");
    if (!end || strncmp(in, "HTTP/1.1 ", 9) != 0)
        return -1;
    size_t hl = (size_t)(end - in) + 2;
    if (hl >= sizeof r->head)
        return -1;
    memcpy(r->head, in, hl);
    r->head[hl] = '\0';
    snprintf(r->body, sizeof r->body, "%s", end + 4);
    r->status = (int)strtol(in + 9, NULL, 10);
    return r->status;
}

static int wait_for_file(const char *path)
{
    for (int i = 0; i < 2500 && access(path, F_OK) != 0; i++)
        usleep(2000);
    return access(path, F_OK) == 0 ? 0 : -1;
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* HEAD of path until its offset is want (the upload is complete, so it
 * has been handed to the pool); the offset last seen, or -1. */
static long long head_until(int port, const char *path, unsigned long long want)
{
    long long last = -1;
    for (int i = 0; i < 500; i++) {
        struct resp r;
        req(port, "HEAD", path, TUS AUTH1, NULL, 0, &r);
        const char *o = rh(&r, "Upload-Offset");
        last = o ? strtoll(o, NULL, 10) : -1;
        if (last >= 0 && (unsigned long long)last == want)
            break;
        usleep(2000);
    }
    return last;
}

/* Segments 0, 1, 2 while the pool's one thread is held in the apply of
 * segment 0: the loop answers HEAD and receipt requests meanwhile, the
 * queue (1) takes segment 1, segment 2's last chunk is turned away (503,
 * Retry-After, nothing stored) and taken when sent again; each completing
 * PATCH carries its receipt. */
static int c_pool(int port)
{
    char p[3][128];
    struct resp r;
    for (int i = 0; i < 3; i++)
        C_EQ(pool_create(port, i, p[i], sizeof p[i]), 201);
    int fa = send_patch(port, p[0], 0);
    C_CHECK(fa >= 0);
    C_EQ(wait_for_file(entered_file), 0); /* the thread is inside the apply */

    uint64_t t0 = ms_now();
    req(port, "HEAD", p[0], TUS AUTH1, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_EQ(strtoull(rh(&r, "Upload-Offset") ? r.val : "0", NULL, 10), pool_len[0]);
    char rp[32];
    snprintf(rp, sizeof rp, "/v1/receipts/%u", pool_no[0]);
    C_EQ(req(port, "GET", rp, AUTH1, NULL, 0, &r), 404); /* not applied yet */
    C_CHECK(ms_now() - t0 < 2000);                       /* the loop did not wait */

    int fb = send_patch(port, p[1], 1);
    C_CHECK(fb >= 0);
    C_EQ(head_until(port, p[1], pool_len[1]), (long long)pool_len[1]); /* queued */

    char h[256];
    snprintf(h, sizeof h, TUS AUTH1 OCTETS "Upload-Offset: 0\r\n");
    C_EQ(req(port, "PATCH", p[2], h, pool_seg[2], pool_len[2], &r), 503);
    C_CHECK(rh(&r, "Retry-After") != NULL);
    C_HAS(r.body, "Retry-After");
    req(port, "HEAD", p[2], TUS AUTH1, NULL, 0, &r);
    C_STR(rh(&r, "Upload-Offset") ? r.val : "-", "0"); /* nothing of it stored */

    unlink(hold_file);
    C_EQ(read_answer(fa, &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") != NULL);
    C_EQ(read_answer(fb, &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") != NULL);
    C_EQ(req(port, "PATCH", p[2], h, pool_seg[2], pool_len[2], &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") != NULL);
    for (int i = 0; i < 3; i++) {
        snprintf(rp, sizeof rp, "/v1/receipts/%u", pool_no[i]);
        C_EQ(req(port, "GET", rp, AUTH1, NULL, 0, &r), 200);
        C_HAS(r.body, "\"status\":\"applied\"");
    }
    return cfails;
}

/* Segments 3 and 4 sent while the thread is held in segment 3's apply,
 * then the client goes away; the test stops the receiver. */
static int c_pool_before_stop(int port)
{
    char p[2][128];
    for (int i = 0; i < 2; i++)
        C_EQ(pool_create(port, 3 + i, p[i], sizeof p[i]), 201);
    int fa = send_patch(port, p[0], 3);
    C_CHECK(fa >= 0);
    C_EQ(wait_for_file(entered_file), 0);
    int fb = send_patch(port, p[1], 4);
    C_CHECK(fb >= 0);
    C_EQ(head_until(port, p[1], pool_len[4]), (long long)pool_len[4]); /* queued */
    close(fa);
    close(fb);
    return cfails;
}

static int count_receipts_cb(void *ctx, const struct hq_receipt *r)
{
    (void)r;
    ++*(int *)ctx;
    return 0;
}

static int receipts_of(struct fx *f, const char *node)
{
    int n = 0;
    struct op_error err;
    op_error_clear(&err);
    if (f->real.ops->receipts_list(f->real.impl, node, count_receipts_cb, &n, &err) < 0)
        return -1;
    return n;
}

static int has_receipt(struct fx *f, unsigned seg)
{
    struct hq_receipt r;
    struct op_error err;
    op_error_clear(&err);
    return f->real.ops->receipt_get(f->real.impl, "nairobi-1", seg, &r, &err) == 0;
}

static void test_apply_pool(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f), 0);
    for (int i = 0; i < POOL_SEGS; i++) {
        CHECK_EQ(build_segment(&f, 20 + (unsigned)i), 0);
        memcpy(pool_seg[i], seg_bytes, seg_len);
        pool_len[i] = seg_len;
        pool_no[i] = seg_no;
    }
    stop(&f);
    f.cfg.apply_workers = 1;
    f.cfg.apply_queue = 1;
    snprintf(hold_file, sizeof hold_file, "%s/hold", f.dir);
    snprintf(entered_file, sizeof entered_file, "%s/entered", f.dir);
    CHECK_EQ(start_pool(&f), 0);
    touch_file(hold_file);
    CHECK_EQ(client(&f, c_pool), 0);
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 3);

    /* A stop while one apply runs and one waits: the running one
     * finishes, the waiting one is abandoned, complete on disk. */
    unlink(entered_file);
    touch_file(hold_file);
    CHECK_EQ(client(&f, c_pool_before_stop), 0);
    hq_serve_stop(f.hq, on_stopped, &f);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    unlink(hold_file);
    while (!f.stopped)
        uv_run(&f.loop, UV_RUN_ONCE);
    f.hq = NULL;
    CHECK(has_receipt(&f, pool_no[3]));
    CHECK(!has_receipt(&f, pool_no[4]));
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 4);

    /* The next start applies it, once. */
    CHECK_EQ(start_pool(&f), 0);
    for (int i = 0; i < 2500 && !has_receipt(&f, pool_no[4]); i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    CHECK(has_receipt(&f, pool_no[4]));
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 5);
    stop(&f);
    CHECK_EQ(start_pool(&f), 0); /* nothing left to apply again */
    for (int i = 0; i < 50; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 5);
    CHECK_EQ(count_state_files(&f), 5); /* settled: state files only */
    fx_done(&f);
}

/* Segment 0 held in its apply; then 2 and 1 of the same node complete,
 * in that order, while a second thread is idle. */
static int c_pool_order(int port)
{
    char p[3][128];
    for (int i = 0; i < 3; i++)
        C_EQ(pool_create(port, i, p[i], sizeof p[i]), 201);
    int fd[3];
    fd[0] = send_patch(port, p[0], 0);
    C_EQ(wait_for_file(entered_file), 0);
    fd[2] = send_patch(port, p[2], 2);
    C_EQ(head_until(port, p[2], pool_len[2]), (long long)pool_len[2]);
    fd[1] = send_patch(port, p[1], 1);
    C_EQ(head_until(port, p[1], pool_len[1]), (long long)pool_len[1]);
    unlink(hold_file);
    struct resp r;
    for (int i = 0; i < 3; i++) {
        C_EQ(read_answer(fd[i], &r), 204);
        C_CHECK(rh(&r, "Outpost-Receipt") != NULL);
    }
    return cfails;
}

/* Two threads, but one node's segments never at once and in number order. */
static void test_pool_order(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(build_segment(&f, 30 + (unsigned)i), 0);
        memcpy(pool_seg[i], seg_bytes, seg_len);
        pool_len[i] = seg_len;
        pool_no[i] = seg_no;
    }
    stop(&f);
    f.cfg.apply_workers = 2;
    f.cfg.apply_queue = 4;
    snprintf(hold_file, sizeof hold_file, "%s/hold", f.dir);
    snprintf(entered_file, sizeof entered_file, "%s/entered", f.dir);
    n_put = 0;
    CHECK_EQ(start_pool(&f), 0);
    touch_file(hold_file);
    CHECK_EQ(client(&f, c_pool_order), 0);
    CHECK_EQ(n_put, 3u);
    CHECK_EQ(put_order[0], 30u);
    CHECK_EQ(put_order[1], 31u);
    CHECK_EQ(put_order[2], 32u);
    fx_done(&f);
}

/* ---- two uploads in flight: applied in segment order ---- */

/* Segments 0 (upload A) and 1 (upload B, `after` = A's id) of pool_seg. */
static char order_file[160]; /* A's and B's paths, for the parent */
static int port2;            /* the second receiver (shared spool) */

/* POST for pool segment i, with `after` naming the upload at after_path
 * (NULL: none), as node auth; the answer's status, the path into out. */
static int create_after(int port, const char *auth, const char *node64, int i,
                        const char *after_path, char *out, size_t cap, struct resp *r)
{
    char meta[256], seg[16], seg64[32], a64[64] = "";
    snprintf(seg, sizeof seg, "%u", pool_no[i]);
    (void)codec_b64_encode(seg, strlen(seg), 0, seg64, sizeof seg64);
    if (after_path) {
        const char *id = strrchr(after_path, '/');
        id = id ? id + 1 : after_path;
        (void)codec_b64_encode(id, strlen(id), 0, a64, sizeof a64);
    }
    snprintf(meta, sizeof meta, "node %s,segment %s%s%s", node64, seg64, a64[0] ? ",after " : "",
             a64);
    post(port, auth, meta, (unsigned)pool_len[i], r);
    const char *loc = rh(r, "Location");
    snprintf(out, cap, "%.100s", loc ? loc : "/files/none");
    return r->status;
}

/* PATCH bytes [from, to) of pool segment i at offset from. */
static int patch_range(int port, const char *path, int i, size_t from, size_t to, struct resp *r)
{
    char h[256];
    snprintf(h, sizeof h, TUS AUTH1 OCTETS "Upload-Offset: %zu\r\n", from);
    return req(port, "PATCH", path, h, pool_seg[i] + from, to - from, r);
}

static int receipt_status(int port, unsigned no)
{
    struct resp r;
    char rp[32];
    snprintf(rp, sizeof rp, "/v1/receipts/%u", no);
    return req(port, "GET", rp, AUTH1, NULL, 0, &r);
}

static void save_paths(const char *a, const char *b)
{
    FILE *fp = fopen(order_file, "w");
    if (fp) {
        fprintf(fp, "%s\n%s\n", a, b);
        fclose(fp);
    }
}

static void load_paths(char *a, char *b, size_t cap)
{
    a[0] = b[0] = '\0';
    FILE *fp = fopen(order_file, "r");
    if (!fp)
        return;
    if (fgets(a, (int)cap, fp))
        a[strcspn(a, "\n")] = '\0';
    if (fgets(b, (int)cap, fp))
        b[strcspn(b, "\n")] = '\0';
    fclose(fp);
}

/* A created and half sent; B (after A) sent whole: its PATCH waits
 * receipt_wait_ms and is answered without a receipt, HEAD says complete,
 * and its receipt is not there. */
static int c_defer_b(int port)
{
    char a[128], b[128];
    struct resp r;
    C_EQ(create_after(port, AUTH1, B64_N1, 0, NULL, a, sizeof a, &r), 201);
    C_EQ(create_after(port, AUTH1, B64_N1, 1, a, b, sizeof b, &r), 201);
    C_EQ(patch_range(port, a, 0, 0, pool_len[0] / 2, &r), 204);
    uint64_t t0 = ms_now();
    C_EQ(patch_range(port, b, 1, 0, pool_len[1], &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") == NULL);
    C_CHECK(ms_now() - t0 >= 500); /* it waited for an apply that could not come */
    char want[24];
    snprintf(want, sizeof want, "%zu", pool_len[1]);
    C_STR(rh(&r, "Upload-Offset") ? r.val : "-", want);
    req(port, "HEAD", b, TUS AUTH1, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_STR(rh(&r, "Upload-Offset") ? r.val : "-", want);
    C_EQ(receipt_status(port, pool_no[1]), 404);
    req(port, "GET", "/metrics", "", NULL, 0, &r);
    C_HAS(r.body, "\noutpost_hq_uploads_deferred 1\n");
    save_paths(a, b);
    return cfails;
}

/* The rest of A: its PATCH carries A's receipt, and B is applied at once
 * after it. */
static int c_finish_a(int port)
{
    char a[128], b[128];
    struct resp r;
    load_paths(a, b, sizeof a);
    C_EQ(patch_range(port, a, 0, pool_len[0] / 2, pool_len[0], &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") != NULL);
    C_EQ(receipt_status(port, pool_no[0]), 200);
    /* at once on the loop; on the pool, as soon as a thread applied it */
    int st = 404;
    for (int i = 0; i < 100 && st == 404; i++)
        if ((st = receipt_status(port, pool_no[1])) == 404)
            usleep(20000);
    C_EQ(st, 200);
    req(port, "GET", "/metrics", "", NULL, 0, &r);
    C_HAS(r.body, "\noutpost_hq_uploads_deferred 0\n");
    return cfails;
}

/* A's termination (the node voided it) lets B go. */
static int c_terminate_a(int port)
{
    char a[128], b[128];
    struct resp r;
    load_paths(a, b, sizeof a);
    C_EQ(req(port, "DELETE", a, TUS AUTH1, NULL, 0, &r), 204);
    C_EQ(receipt_status(port, pool_no[1]), 200);
    C_EQ(receipt_status(port, pool_no[0]), 404);
    return cfails;
}

struct c1_state {
    int found;
    char op[HQ_OP_MAX];
    int64_t version;
};

static struct c1_state c1_of(struct fx *f)
{
    struct c1_state c = {0};
    struct op_error err;
    op_error_clear(&err);
    char *json = NULL;
    int rc = f->real.ops->record_get(f->real.impl, "nairobi-1", "contact", "c1", &c.version, c.op,
                                     &json, &err);
    free(json);
    c.found = rc == 0;
    return c;
}

/* Builds pool segments 0 (upsert of c1) and 1 (erasure of c1 when
 * erase_b) numbered no and no + 1. */
static void build_pair(struct fx *f, unsigned no, int erase_b)
{
    for (int i = 0; i < 2; i++) {
        seg_erase = i == 1 && erase_b;
        CHECK_EQ(build_segment(f, no + (unsigned)i), 0);
        memcpy(pool_seg[i], seg_bytes, seg_len);
        pool_len[i] = seg_len;
        pool_no[i] = seg_no;
    }
    seg_erase = 0;
}

/* The receiver on the test's loop with receipts logged in order. */
static void order_fx(struct fx *f)
{
    CHECK_EQ(fx_init(f), 0);
    stop(f);
    pool_real_ops = real_ops;
    counting_ops.receipt_put = logged_receipt_put;
    n_put = 0;
    f->cfg.receipt_wait_ms = 700;
    snprintf(order_file, sizeof order_file, "%s/paths", f->dir);
    CHECK_EQ(start(f), 0);
}

/* B (segment 6) erases c1, which A (segment 5) upserts; B completes
 * while A is half sent. Nothing of B is applied until A is, then both in
 * order, and c1 ends erased. With pool, on the apply threads. */
static void deferred_in_order(int pool)
{
    struct fx f;
    order_fx(&f);
    if (pool) {
        stop(&f);
        f.cfg.apply_workers = 2;
        f.cfg.apply_queue = 4;
        hold_file[0] = '\0';
        CHECK_EQ(start_pool(&f), 0);
    }
    build_pair(&f, 5, 1);
    CHECK_EQ(client(&f, c_defer_b), 0);
    CHECK(!has_receipt(&f, 6));
    CHECK_EQ(c1_of(&f).found, 0); /* neither the erasure nor anything else */
    CHECK_EQ(n_put, 0u);
    CHECK_EQ(client(&f, c_finish_a), 0);
    CHECK_EQ(n_put, 2u);
    CHECK_EQ(put_order[0], 5u);
    CHECK_EQ(put_order[1], 6u);
    struct c1_state c = c1_of(&f);
    CHECK_EQ(c.found, 1);
    CHECK_STR(c.op, "erase");
    CHECK_EQ(c.version, 6);
    fx_done(&f);
}

static void test_deferred_in_order(void)
{
    deferred_in_order(0);
}

static void test_deferred_in_order_pool(void)
{
    deferred_in_order(1);
}

static void test_deferred_terminated(void)
{
    struct fx f;
    order_fx(&f);
    build_pair(&f, 5, 0);
    CHECK_EQ(client(&f, c_defer_b), 0);
    CHECK(!has_receipt(&f, 6));
    CHECK_EQ(client(&f, c_terminate_a), 0);
    CHECK(has_receipt(&f, 6));
    CHECK(!has_receipt(&f, 5));
    fx_done(&f);
}

/* B (segment 8) patches c1 against the version A (segment 7) carries,
 * and completes first: applied after A, the patch finds its base (out
 * of order it would be set aside and the node asked for the whole
 * record). */
static void test_deferred_patch(void)
{
    struct fx f;
    order_fx(&f);
    for (int i = 0; i < 2; i++) {
        seg_patch = i == 1;
        CHECK_EQ(build_segment(&f, 7 + (unsigned)i), 0);
        memcpy(pool_seg[i], seg_bytes, seg_len);
        pool_len[i] = seg_len;
        pool_no[i] = seg_no;
    }
    seg_patch = 0;
    CHECK_EQ(client(&f, c_defer_b), 0);
    CHECK_EQ(client(&f, c_finish_a), 0);
    struct c1_state c = c1_of(&f);
    CHECK_EQ(c.version, 8);
    CHECK_STR(c.op, "upsert");
    struct hq_receipt r;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(f.real.ops->receipt_get(f.real.impl, "nairobi-1", 8, &r, &err), 0);
    CHECK_EQ(r.applied, 1);
    CHECK_EQ(r.set_aside, 0);
    fx_done(&f);
}

/* B deferred, the receiver stopped and started again (B is offered again
 * and deferred again: A is still half sent), then A completed: both
 * applied once, A first. */
static void test_deferred_restart(void)
{
    struct fx f;
    order_fx(&f);
    build_pair(&f, 5, 1);
    CHECK_EQ(client(&f, c_defer_b), 0);
    stop(&f);
    CHECK_EQ(start(&f), 0);
    for (int i = 0; i < 20; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    CHECK(!has_receipt(&f, 6));
    CHECK_EQ(n_put, 0u);
    CHECK_EQ(client(&f, c_finish_a), 0);
    CHECK_EQ(n_put, 2u);
    CHECK_EQ(put_order[0], 5u);
    CHECK_EQ(put_order[1], 6u);
    CHECK_STR(c1_of(&f).op, "erase");
    stop(&f);
    CHECK_EQ(start(&f), 0); /* nothing applied twice */
    for (int i = 0; i < 20; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    CHECK_EQ(n_put, 2u);
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 2);
    fx_done(&f);
}

/* The receiver in a child process of its own (its own loop and store
 * connection), so that it can be killed with SIGKILL; its port in
 * port_file. Returns the child's pid. */
static pid_t spawn_receiver(struct fx *f, const char *port_file)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    uv_loop_t loop;
    struct hq_store st;
    struct hq_serve *hq = NULL;
    struct op_error err;
    op_error_clear(&err);
    struct hq_serve_clock clock = {.wall_ms = fake_wall, .mono_ms = fake_mono, .ctx = f};
    if (uv_loop_init(&loop) < 0 || hq_store_sqlite_open(f->db, &st, &err) < 0 ||
        hq_serve_start(&loop, &f->cfg, &st, &clock, &hq, &err) < 0)
        _exit(3);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%.200s.tmp", port_file);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        _exit(4);
    fprintf(fp, "%d\n", hq_serve_port(hq));
    fclose(fp);
    if (rename(tmp, port_file) < 0)
        _exit(5);
    alarm(60);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
}

/* B deferred in a receiver that is then killed with SIGKILL; a new
 * receiver on the same spool and store finds B complete, defers it
 * again (A is still half sent), and applies both in order once A
 * completes. */
static void test_deferred_kill9(void)
{
    struct fx f;
    order_fx(&f);
    build_pair(&f, 5, 1);
    stop(&f);
    char port_file[200];
    snprintf(port_file, sizeof port_file, "%s/port", f.dir);
    pid_t pid = spawn_receiver(&f, port_file);
    CHECK(pid > 0);
    CHECK_EQ(wait_for_file(port_file), 0);
    FILE *fp = fopen(port_file, "r");
    CHECK(fp != NULL);
    if (!fp || fscanf(fp, "%d", &f.port) != 1)
        f.port = 0;
    if (fp)
        fclose(fp);
    CHECK_EQ(client(&f, c_defer_b), 0);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 0);

    CHECK_EQ(start(&f), 0);
    for (int i = 0; i < 20; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 0); /* deferred again, not applied */
    CHECK_EQ(client(&f, c_finish_a), 0);
    CHECK_EQ(n_put, 2u);
    CHECK_EQ(put_order[0], 5u);
    CHECK_EQ(put_order[1], 6u);
    CHECK_STR(c1_of(&f).op, "erase");
    fx_done(&f);
}

/* `after` naming another node's unfinished upload imposes no wait; an
 * `after` that is not an upload id is refused at creation, naming the
 * key, with nothing stored. */
static int c_after_other_node(int port)
{
    char x[128], b[128];
    struct resp r;
    char meta[128];
    snprintf(meta, sizeof meta, "node " B64_N2 ",segment " B64_7);
    post(port, AUTH2, meta, 100, &r);
    C_EQ(r.status, 201);
    snprintf(x, sizeof x, "%.100s", rh(&r, "Location") ? r.val : "/files/none");
    C_EQ(create_after(port, AUTH1, B64_N1, 1, x, b, sizeof b, &r), 201);
    uint64_t t0 = ms_now();
    C_EQ(patch_range(port, b, 1, 0, pool_len[1], &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") != NULL); /* applied at once */
    C_CHECK(ms_now() - t0 < 500);
    /* bad forms: too short, upper case, not hex */
    static const char *const bad[] = {"abc", "0123456789ABCDEF0123456789ABCDEF",
                                      "0123456789abcdef0123456789abcdeg"};
    for (int i = 0; i < 3; i++) {
        char a64[64];
        (void)codec_b64_encode(bad[i], strlen(bad[i]), 0, a64, sizeof a64);
        snprintf(meta, sizeof meta, "node " B64_N1 ",segment " B64_7 ",after %s", a64);
        post(port, AUTH1, meta, 100, &r);
        C_EQ(r.status, 400);
        C_HAS(r.body, "after");
        C_HAS(r.body, "upload id");
    }
    return cfails;
}

static void test_after_checked(void)
{
    struct fx f;
    order_fx(&f);
    build_pair(&f, 5, 0);
    CHECK_EQ(client(&f, c_after_other_node), 0);
    CHECK(has_receipt(&f, 6));
    CHECK_EQ(count_state_files(&f), 2); /* kisumu-1's upload and B: nothing of the 400s */
    fx_done(&f);
}

/* Two receivers on one spool and one store: B completes on the second
 * (deferred there), A on the first; the second applies B within a tick
 * of its timer. */
static int c_shared(int port)
{
    char a[128], b[128];
    struct resp r;
    C_EQ(create_after(port, AUTH1, B64_N1, 0, NULL, a, sizeof a, &r), 201);
    C_EQ(create_after(port2, AUTH1, B64_N1, 1, a, b, sizeof b, &r), 201);
    C_EQ(patch_range(port, a, 0, 0, pool_len[0] / 2, &r), 204);
    C_EQ(patch_range(port2, b, 1, 0, pool_len[1], &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") == NULL);
    C_EQ(receipt_status(port, pool_no[1]), 404);
    C_EQ(patch_range(port, a, 0, pool_len[0] / 2, pool_len[0], &r), 204);
    C_CHECK(rh(&r, "Outpost-Receipt") != NULL);
    uint64_t t0 = ms_now();
    int st = 404;
    while (st == 404 && ms_now() - t0 < 5000) {
        st = receipt_status(port, pool_no[1]);
        if (st == 404)
            usleep(20000);
    }
    C_EQ(st, 200);
    C_CHECK(ms_now() - t0 < 2000);
    return cfails;
}

static void test_deferred_shared_spool(void)
{
    struct fx f;
    order_fx(&f);
    stop(&f);
    f.cfg.shared_spool = 1;
    CHECK_EQ(start(&f), 0);
    struct hq_store second;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(hq_store_sqlite_open(f.db, &second, &err), 0);
    struct hq_serve *hq2 = NULL;
    struct hq_serve_clock clock = {.wall_ms = fake_wall, .mono_ms = fake_mono, .ctx = &f};
    CHECK_EQ(hq_serve_start(&f.loop, &f.cfg, &second, &clock, &hq2, &err), 0);
    port2 = hq_serve_port(hq2);
    build_pair(&f, 5, 1);
    CHECK_EQ(client(&f, c_shared), 0);
    CHECK_EQ(receipts_of(&f, "nairobi-1"), 2);
    CHECK_STR(c1_of(&f).op, "erase");
    int done = 0;
    hq_serve_stop(hq2, on_stopped_flag, &done);
    while (!done)
        uv_run(&f.loop, UV_RUN_ONCE);
    hq_store_close(&second);
    fx_done(&f);
}

/* ---- digests on the pool ---- */

#define DIGEST_A "{\"id\":\"da\",\"version\":1,\"given_name\":\"h:0a\"}"
#define DIGEST_B "{\"id\":\"db\",\"version\":2,\"given_name\":\"h:0b\"}"

/* The body of a node's first digest request over a set of contact da
 * (as HQ holds it) alone: HQ, holding da and db, lists the root with
 * its two entries. */
static char *digest_body(size_t *len)
{
    struct range_set *s = NULL;
    struct range_walk *w = NULL;
    char *body = NULL;
    json_t *j = json_loads(DIGEST_A, 0, NULL);
    unsigned char h[PROJECTION_HASH_BYTES];
    if (range_set_new(&s) == 0 && j &&
        projection_hash("contact", PROJECTION_LIVE, "da", j, h) == 0 &&
        range_set_add(s, "contact", "da", 1, h) == 0) {
        range_set_seal(s);
        if (range_walk_new(s, &w) == 0)
            (void)range_walk_request(w, &body, len);
    }
    json_decref(j);
    range_walk_free(w);
    range_set_free(s);
    return body;
}

/* Sends a digest request as node auth and returns the socket without
 * reading the answer. */
static int send_digest(int port, const char *auth)
{
    size_t len = 0;
    char *body = digest_body(&len);
    int fd = body ? tcp_connect(port) : -1;
    if (fd < 0) {
        free(body);
        return -1;
    }
    char h[512];
    int n = snprintf(h, sizeof h,
                     "POST /v1/digest HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
                     len, auth);
    if (send_all(fd, h, (size_t)n) < 0 || send_all(fd, body, len) < 0) {
        close(fd);
        fd = -1;
    }
    free(body);
    return fd;
}

/* While the pool's one thread builds nairobi-1's set (held), the loop
 * answers a health check and the node's mailbox; kisumu-1's digest waits
 * in the queue (1), a third is turned away 503 with Retry-After; once
 * the build ends both digests are answered, correctly. */
static int c_digest_pool(int port)
{
    int fa = send_digest(port, AUTH1);
    C_CHECK(fa >= 0);
    C_EQ(wait_for_file(digest_entered), 0); /* the thread is inside the build */
    struct resp r;
    C_EQ(req(port, "GET", "/healthz", "", NULL, 0, &r), 200);
    C_EQ(req(port, "GET", "/v1/mailbox?after=0", AUTH1, NULL, 0, &r), 200);
    int fb = send_digest(port, AUTH2);
    C_CHECK(fb >= 0);
    /* the queue holds kisumu-1's now: one more is refused at once */
    int fc = -1;
    for (int i = 0; i < 500; i++) {
        fc = send_digest(port, AUTH1);
        C_CHECK(fc >= 0);
        if (read_answer(fc, &r) == 503)
            break;
        usleep(2000);
    }
    C_EQ(r.status, 503);
    C_CHECK(rh(&r, "Retry-After") != NULL);
    C_HAS(r.body, "retry later");
    /* the held build still has not answered: the loop did all of the above
     * while it ran */
    C_CHECK(access(digest_hold, F_OK) == 0);
    unlink(digest_hold);
    C_EQ(read_answer(fa, &r), 200);
    C_HAS(r.body, "{\"differ\":[[\"\",2,[[");
    C_HAS(r.body, "[\"contact\",\"db\",2,\"");
    C_HAS(r.body, "[\"contact\",\"da\",1,\"");
    C_EQ(read_answer(fb, &r), 200);
    C_HAS(r.body, "{\"differ\":[[\"\",0,[]]]}"); /* kisumu-1 holds nothing */
    return cfails;
}

static void test_digest_pool(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f), 0);
    enum hq_record_result res;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(f.real.ops->record_apply(f.real.impl, "nairobi-1", "contact", "da", 1, "upsert",
                                      DIGEST_A, strlen(DIGEST_A), 1, &res, &err),
             0);
    CHECK_EQ(f.real.ops->record_apply(f.real.impl, "nairobi-1", "contact", "db", 2, "upsert",
                                      DIGEST_B, strlen(DIGEST_B), 1, &res, &err),
             0);
    stop(&f);
    f.cfg.apply_workers = 1;
    f.cfg.apply_queue = 1;
    hold_file[0] = '\0';
    snprintf(hold_file, sizeof hold_file, "%s/no-hold", f.dir);
    snprintf(digest_hold, sizeof digest_hold, "%s/digest-hold", f.dir);
    snprintf(digest_entered, sizeof digest_entered, "%s/digest-entered", f.dir);
    CHECK_EQ(start_pool(&f), 0);
    touch_file(digest_hold);
    CHECK_EQ(client(&f, c_digest_pool), 0);
    digest_hold[0] = '\0';
    fx_done(&f);
}

/* ---- the analysts' aggregates ---- */

#define ANALYST "Authorization: Bearer analyst-token-1\r\n"
#define REVOKED "Authorization: Bearer analyst-token-2\r\n"
#define AGG_PATH "/api/v1/aggregates/contacts_by_segment_district"

static void add_analyst(struct fx *f, const char *name, const char *token)
{
    unsigned char sha[32];
    SHA256((const unsigned char *)token, strlen(token), sha);
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(f->real.ops->analyst_add(f->real.impl, name, sha, WALL0, &err), 0);
}

static void put_answer(struct fx *f, const char *node, const char *json)
{
    enum hq_record_result res;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(f->real.ops->record_apply(f->real.impl, node, "aggregate",
                                       "contacts_by_segment_district", 1, "upsert", json,
                                       strlen(json), 1, &res, &err),
             0);
}

static int count_records(struct fx *f)
{
    sqlite3 *db = NULL;
    int n = -1;
    if (sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM records", -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return n;
}

static int c_analyst_json(int port)
{
    struct resp r;
    req(port, "GET", AGG_PATH, ANALYST, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_STR(rh(&r, "Content-Type"), "application/json");
    json_t *t = json_loadb(r.body, r.body_len, 0, NULL);
    C_CHECK(t != NULL);
    const json_t *regions = json_object_get(t, "regions");
    C_EQ(json_array_size(regions), 3);
    size_t i;
    const json_t *g;
    json_array_foreach(regions, i, g)
    {
        const char *node = json_string_value(json_object_get(g, "node"));
        const char *st = json_string_value(json_object_get(g, "status"));
        if (!strcmp(node, "nairobi-1")) {
            C_STR(st, "answered");
        } else if (!strcmp(node, "kisumu-1")) {
            C_STR(st, "stale");
            C_EQ(json_integer_value(json_object_get(g, "age_s")), 8 * 86400 + 3600);
        } else {
            C_STR(st, "refused");
            C_STR(json_string_value(json_object_get(g, "reason")),
                  "contacts_by_segment_district is not allowed by the KE policy");
        }
    }
    /* the combined row: A added over regions; B suppressed by nairobi-1
     * stays suppressed, never 20 */
    const json_t *cells =
        json_object_get(json_array_get(json_object_get(t, "combined"), 0), "cells");
    C_EQ(json_integer_value(json_object_get(json_array_get(cells, 0), "n")), 27);
    C_CHECK(json_is_null(json_object_get(json_array_get(cells, 1), "n")));
    C_STR(json_string_value(json_object_get(json_array_get(cells, 1), "s")), "suppressed");
    json_decref(t);
    /* a larger max_age: kisumu-1 is answered */
    req(port, "GET", AGG_PATH "?max_age=864000&format=json", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_HAS(r.body, "\"node\":\"kisumu-1\",\"region\":\"KE\",\"computed_at\"");
    C_CHECK(!strstr(r.body, "\"stale\""));
    return cfails;
}

static int c_analyst_csv(int port)
{
    struct resp r;
    req(port, "GET", AGG_PATH "?format=csv", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_STR(rh(&r, "Content-Type"), "text/csv; charset=utf-8");
    C_HAS(r.body, "scope,region,node,status,age_s,row,col,n,mark,rate,sum\n");
    C_HAS(r.body, "region,KE,nairobi-1,answered,60,x,B,,primary,,\n");
    C_HAS(r.body, "region,KE,kisumu-1,stale,694800,x,B,20,,,\n");
    C_HAS(r.body, "region,KE,mombasa-1,refused,60,contacts_by_segment_district is not allowed");
    C_HAS(r.body, "combined,,,,,x,A,27,,,\n");
    C_HAS(r.body, "combined,,,,,x,B,,suppressed,,\n");
    return cfails;
}

static int c_analyst_list(int port)
{
    struct resp r;
    req(port, "GET", "/api/v1/aggregates", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_HAS(r.body, "{\"name\":\"contacts_by_segment_district\",\"answered\":1,\"stale\":1,"
                  "\"refused\":1,\"no_answer\":0,");
    req(port, "GET", "/api/v1/aggregates/?format=csv", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 200);
    C_HAS(r.body, "aggregate,region,node,status,age_s,reason\n");
    C_HAS(r.body, "contacts_by_segment_district,KE,kisumu-1,stale,694800,\n");
    return cfails;
}

static int c_analyst_refusals(int port)
{
    struct resp r;
    /* a node's token does not read aggregates */
    req(port, "GET", AGG_PATH, AUTH1, NULL, 0, &r);
    C_EQ(r.status, 403);
    C_STR(rh(&r, "Content-Type"), "application/problem+json");
    C_HAS(r.body, "this is the token of node nairobi-1: a node's credentials do not read");
    /* no token, an unknown one, a revoked one */
    req(port, "GET", AGG_PATH, "", NULL, 0, &r);
    C_EQ(r.status, 401);
    C_STR(rh(&r, "Content-Type"), "application/problem+json");
    C_HAS(rh(&r, "WWW-Authenticate"), "Bearer");
    C_HAS(r.body, "an analyst token is required");
    req(port, "GET", AGG_PATH, "Authorization: Bearer nobody\r\n", NULL, 0, &r);
    C_EQ(r.status, 401);
    C_HAS(r.body, "unknown or revoked analyst token");
    req(port, "GET", "/api/v1/aggregates", REVOKED, NULL, 0, &r);
    C_EQ(r.status, 401);
    C_HAS(r.body, "this analyst token was revoked");
    /* an analyst's token does not upload, nor read a node's mailbox */
    post(port, ANALYST, "node " B64_N1 ",segment " B64_7, 100, &r);
    C_EQ(r.status, 401);
    C_STR(rh(&r, "Content-Type"), "application/problem+json");
    C_HAS(r.body, "unknown or revoked node token");
    req(port, "GET", "/v1/mailbox?after=0", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 401);
    /* bad queries, named */
    req(port, "GET", AGG_PATH "?format=xml", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 400);
    C_HAS(r.body, "format must be json or csv, not 'xml'");
    req(port, "GET", AGG_PATH "?format=csv&region=KE", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 400);
    C_HAS(r.body, "unknown query parameter 'region'");
    req(port, "GET", AGG_PATH "?max_age=0", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 400);
    C_HAS(r.body, "max_age must be a whole number of seconds");
    req(port, "GET", "/api/v1/aggregates/Bad;Name", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 404);
    C_HAS(r.body, "is not an aggregate name");
    req(port, "GET", "/api/v1/aggregates/pipeline_by_stage_month", ANALYST, NULL, 0, &r);
    C_EQ(r.status, 404);
    C_HAS(r.body, "no node has answered pipeline_by_stage_month yet");
    req(port, "POST", AGG_PATH, ANALYST, "{}", 2, &r);
    C_EQ(r.status, 405);
    C_STR(rh(&r, "Allow"), "GET");
    C_HAS(r.body, "method POST not allowed here (allowed: GET)");
    return cfails;
}

static void test_analysts(void)
{
    struct fx f;
    CHECK_EQ(fx_init(&f), 0);
    snprintf(path_file, sizeof path_file, "%s/location", f.dir);
    add_node(&f, "mombasa-1", "token-three");
    add_analyst(&f, "ana", "analyst-token-1");
    add_analyst(&f, "gone", "analyst-token-2");
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(f.real.ops->analyst_revoke(f.real.impl, "gone", WALL0, &err), 0);
    CHECK_EQ(f.real.ops->analyst_revoke(f.real.impl, "nobody", WALL0, &err), -ENOENT);
    CHECK_EQ(f.real.ops->analyst_add(f.real.impl, "ana",
                                     (const unsigned char *)"0123456789abcdef"
                                                            "0123456789abcdef",
                                     WALL0, &err),
             -EEXIST);
    /* now is WALL0 + 1 h: nairobi-1 and mombasa-1 answered a minute ago,
     * kisumu-1 eight days and an hour ago */
    put_answer(&f, "nairobi-1",
               "{\"aggregate\":\"contacts_by_segment_district\",\"region\":\"KE\","
               "\"computed_at\":\"2026-01-01T00:59:00.000Z\",\"params\":{\"as_of\":\"2026-01\"},"
               "\"rows_label\":\"segment\",\"cols_label\":\"district\",\"value\":\"count\","
               "\"cols\":[\"A\",\"B\"],\"rows\":[{\"key\":\"x\",\"cells\":[{\"n\":12},"
               "{\"n\":null,\"s\":\"primary\"}],\"total\":{\"n\":null,\"s\":\"secondary\"}}]}");
    put_answer(&f, "kisumu-1",
               "{\"aggregate\":\"contacts_by_segment_district\",\"region\":\"KE\","
               "\"computed_at\":\"2025-12-24T00:00:00.000Z\",\"params\":{\"as_of\":\"2025-12\"},"
               "\"rows_label\":\"segment\",\"cols_label\":\"district\",\"value\":\"count\","
               "\"cols\":[\"A\",\"B\"],\"rows\":[{\"key\":\"x\",\"cells\":[{\"n\":15},"
               "{\"n\":20}],\"total\":{\"n\":35}}]}");
    put_answer(&f, "mombasa-1",
               "{\"aggregate\":\"contacts_by_segment_district\",\"region\":\"KE\","
               "\"computed_at\":\"2026-01-01T00:59:00.000Z\",\"refused\":"
               "\"contacts_by_segment_district is not allowed by the KE policy\"}");
    int records = count_records(&f);
    CHECK_EQ(records, 3);
    CHECK_EQ(client(&f, c_analyst_json), 0);
    CHECK_EQ(client(&f, c_analyst_csv), 0);
    CHECK_EQ(client(&f, c_analyst_list), 0);
    CHECK_EQ(client(&f, c_analyst_refusals), 0);
    /* no refusal stored anything: no upload, no record */
    CHECK_EQ(count_state_files(&f), 0);
    CHECK_EQ(count_records(&f), records);
    fx_done(&f);
}

int main(void)
{
    alarm(180);
    RUN(test_authenticate_once);
    RUN(test_last_contact);
    RUN(test_receipt_and_mailbox);
    RUN(test_apply_pool);
    RUN(test_pool_order);
    RUN(test_deferred_in_order);
    RUN(test_deferred_in_order_pool);
    RUN(test_deferred_patch);
    RUN(test_deferred_terminated);
    RUN(test_deferred_restart);
    RUN(test_deferred_kill9);
    RUN(test_after_checked);
    RUN(test_deferred_shared_spool);
    RUN(test_digest_pool);
    RUN(test_analysts);
    return tl_report();
}
