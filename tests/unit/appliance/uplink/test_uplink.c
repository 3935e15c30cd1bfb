/*
 * Tests for appliance/uplink/uplink.c on an injected wall clock: a node database,
 * the uplink, and the HQ receiver (hq_serve) with its own store, all on
 * the test's loop in one process. The clock decides the sync window and
 * the UTC day of the daily budget, so the tests move it instead of
 * waiting for real minutes and days, and they show that nothing is sent
 * by observing the cycle that decided not to send (its `waiting` line),
 * not by sleeping and counting. What reached HQ is read from HQ's spool
 * (one upload, its bytes) and store (the records applied).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "codec.h"
#include "db.h"
#include "http_server.h"
#include "hq_config.h"
#include "hq_serve.h"
#include "hq_store.h"
#include "segment.h"
#include "store.h"
#include "sync_mac.h"
#include "uplink.h"
#include "fixture.h"
#include "testlib.h"

#define NODE "branch-1"
#define TOKEN "4f1c2a7d9e0b3c5a6f8d1e2b4c7a9f0e3d5b8c1a6e9f2d4b7c0a3e5f8b1d6c9a"
#define CONTACTS 3000
#define DAY_MS 86400000LL

static _Atomic int64_t wall; /* the injected clock; read from the pool too */

static int64_t fake_wall(void *ctx)
{
    (void)ctx;
    return atomic_load(&wall);
}

/* ms since the epoch of day `day` (relative to today, UTC) at hh:mm:ss */
static int64_t at(int day, int hh, int mm, int ss)
{
    int64_t today = (int64_t)time(NULL) / 86400 * DAY_MS;
    return today + day * DAY_MS + ((int64_t)hh * 3600 + mm * 60 + ss) * 1000;
}

static void die(const char *what, const struct op_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->msg : "");
    exit(1);
}

struct fx {
    uv_loop_t loop;
    char dir[64], node_db[128], hq_db[128];
    struct hq_config hcfg;
    struct hq_store hq_store;
    struct hq_serve *hq;
    struct node_credentials cred;
    struct uplink *up;
    int stopped;
    uv_timer_t tick;
    int ticked;
};

/* A random name of 20 letters: the node pseudonymizes it, so each one
 * adds 16 incompressible bytes to the segment. */
static void rand_name(char *out, uint32_t *x)
{
    for (int i = 0; i < 20; i++) {
        *x = *x * 1103515245u + 12345u;
        out[i] = (char)('a' + (*x >> 16) % 26);
    }
    out[20] = '\0';
}

static void make_node(struct fx *f)
{
    struct store *st = NULL;
    struct op_error err;
    op_error_clear(&err);
    if (store_open(f->node_db, DB_OPEN_CREATE, &st, &err) < 0 ||
        store_init_node(st, "KE", &err) < 0)
        die("node store", &err);
    if (store_begin(st, &err) < 0)
        die("begin", &err);
    uint32_t x = 4242;
    for (int i = 0; i < CONTACTS; i++) {
        char g[21], fam[21], mail[40], phone[24];
        rand_name(g, &x);
        rand_name(fam, &x);
        snprintf(mail, sizeof mail, "%.12s@example.org", g);
        snprintf(phone, sizeof phone, "+2547%08d", i);
        json_t *in = json_pack("{ssssssss}", "given_name", g, "family_name", fam, "email", mail,
                               "phone", phone);
        json_t *out = NULL;
        if (store_create(st, &entity_contact, in, STORE_SKIP_DUP_CHECK, &out, &err) < 0)
            die("create", &err);
        json_decref(in);
        json_decref(out);
    }
    if (store_commit(st, &err) < 0)
        die("commit", &err);
    store_close(st);
}

static void on_stopped(void *ctx)
{
    (*(int *)ctx)++;
}

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_uplink_XXXXXX");
    if (!mkdtemp(f->dir))
        die("mkdtemp", NULL);
    snprintf(f->node_db, sizeof f->node_db, "%s/node.db", f->dir);
    snprintf(f->hq_db, sizeof f->hq_db, "%s/hq.db", f->dir);
    make_node(f);

    struct op_error err;
    op_error_clear(&err);
    if (hq_store_sqlite_open(f->hq_db, &f->hq_store, &err) < 0)
        die("hq store", &err);
    snprintf(f->cred.node_id, sizeof f->cred.node_id, NODE);
    snprintf(f->cred.region, sizeof f->cred.region, "KE");
    snprintf(f->cred.token, sizeof f->cred.token, TOKEN);
    for (int i = 0; i < 32; i++)
        f->cred.hq_key[i] = (unsigned char)(i * 7 + 1);
    unsigned char sha[32];
    SHA256((const unsigned char *)TOKEN, strlen(TOKEN), sha);
    if (f->hq_store.ops->node_add(f->hq_store.impl, NODE, "KE", sha, f->cred.hq_key, at(0, 0, 0, 0),
                                  &err) < 0)
        die("node add", &err);

    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->tick);
    hq_config_defaults(&f->hcfg);
    snprintf(f->hcfg.listen, sizeof f->hcfg.listen, "127.0.0.1:0");
    snprintf(f->hcfg.db, sizeof f->hcfg.db, "%s", f->hq_db);
    snprintf(f->hcfg.spool_dir, sizeof f->hcfg.spool_dir, "%s/hq-spool", f->dir);
    if (hq_serve_start(&f->loop, &f->hcfg, &f->hq_store, NULL, &f->hq, &err) < 0)
        die("hq_serve_start", &err);
    snprintf(f->cred.hq_url, sizeof f->cred.hq_url, "http://127.0.0.1:%d", hq_serve_port(f->hq));
}

static unsigned in_flight;                  /* uploads_in_flight of the next start_uplink */
static uint64_t fx_segment_bytes = 2000000; /* one segment */

static void start_uplink(struct fx *f, const char *window, uint64_t daily, uint64_t bps)
{
    struct uplink_config c = {
        .db_path = f->node_db,
        .cred = &f->cred,
        .segment_bytes = fx_segment_bytes,
        .uploads_in_flight = in_flight,
        .interval_ms = 200,
        .bandwidth_bps = bps,
        .window = window,
        .daily_bytes = daily,
        .wall_ms = fake_wall,
    };
    struct op_error err;
    op_error_clear(&err);
    if (uplink_start(&f->loop, &c, &f->up, &err) < 0)
        die("uplink_start", &err);
}

static void fx_done(struct fx *f)
{
    int n = 0;
    uplink_stop(f->up, on_stopped, &n);
    hq_serve_stop(f->hq, on_stopped, &n);
    while (n < 2)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&f->loop), 0);
    hq_store_close(&f->hq_store);
    (void)fx_remove_tree(f->dir);
}

/* ---- observing ---- */

static const struct sync_status *status(struct fx *f)
{
    return uplink_status(f->up);
}

static int waiting_has(struct fx *f, const char *text)
{
    const struct sync_status *s = status(f);
    return s && strstr(s->waiting, text) != NULL;
}

/* The uploads HQ holds (state files in its spool): how many, and the id
 * and data size of the last one listed. */
static int hq_uploads(struct fx *f, char id[33], long long *data_bytes)
{
    DIR *d = opendir(f->hcfg.spool_dir);
    int n = 0;
    if (id)
        id[0] = '\0';
    if (data_bytes)
        *data_bytes = -1;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len != 38 || strcmp(de->d_name + 32, ".state") != 0)
            continue;
        n++;
        if (id)
            snprintf(id, 33, "%.32s", de->d_name);
        if (data_bytes) {
            char p[HQ_CONFIG_PATH_MAX + 48];
            struct stat sb;
            snprintf(p, sizeof p, "%s/%.32s.data", f->hcfg.spool_dir, de->d_name);
            *data_bytes = stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
        }
    }
    closedir(d);
    return n;
}

static uint64_t hq_records(struct fx *f)
{
    struct hq_totals t;
    struct op_error err;
    op_error_clear(&err);
    if (f->hq_store.ops->totals(f->hq_store.impl, &t, &err) < 0)
        die("totals", &err);
    return t.records;
}

static void on_tick(uv_timer_t *t)
{
    ((struct fx *)t->data)->ticked = 1;
}

/* Runs the loop until pred(f) holds. The limit only keeps a broken build
 * from hanging; no check depends on how long anything took. */
static int run_until(struct fx *f, int (*pred)(struct fx *f), const char *what)
{
    uv_update_time(&f->loop);
    uint64_t limit = uv_now(&f->loop) + 60000;
    f->tick.data = f;
    uv_timer_start(&f->tick, on_tick, 5, 5);
    while (!pred(f) && uv_now(&f->loop) < limit)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->tick);
    if (!pred(f)) {
        const struct sync_status *s = status(f);
        fprintf(stderr, "  gave up waiting for %s (waiting: '%s')\n", what, s ? s->waiting : "?");
        return -1;
    }
    return 0;
}

static int outside_window(struct fx *f)
{
    return waiting_has(f, "outside the sync window 13:00-14:00 (local time)");
}

static int window_closed(struct fx *f)
{
    return waiting_has(f, "the sync window closed: segment 1 paused at");
}

static int budget_spent(struct fx *f)
{
    return waiting_has(f, "the daily budget of 100000 bytes is spent");
}

static int upload_created(struct fx *f)
{
    return hq_uploads(f, NULL, NULL) == 1;
}

static int first_chunk_at_hq(struct fx *f)
{
    long long bytes;
    return hq_uploads(f, NULL, &bytes) == 1 && bytes > 0;
}

static int drained(struct fx *f)
{
    const struct sync_status *s = status(f);
    return s && s->segments_acked == 1 && s->outbox_depth == 0 && s->spool_segments == 0;
}

/* HQ holds budget_want bytes of the upload and the day's budget is spent
 * and charged, or the segment went whole. */
static long long budget_want;
static int day_spent(struct fx *f)
{
    long long b = 0;
    if (drained(f))
        return 1;
    /* charged to the day too, before the test's clock moves on */
    return budget_spent(f) && status(f)->bytes_today == 100000 && hq_uploads(f, NULL, &b) == 1 &&
           b == budget_want;
}

static uint64_t mailbox_seq;

static void post_mailbox(struct fx *f)
{
    struct op_error err;
    op_error_clear(&err);
    const char *body = "reference data v1\n";
    if (f->hq_store.ops->mailbox_post(f->hq_store.impl, NODE, "reference", body, strlen(body),
                                      atomic_load(&wall), &mailbox_seq, &err) < 0)
        die("mailbox post", &err);
}

static int mailbox_fetched(struct fx *f)
{
    const struct sync_status *s = status(f);
    return s && s->mailbox_after >= mailbox_seq;
}

/* ---- a scripted HQ -------------------------------------------------------
 * A tus receiver on http_server that says what the real one would, with
 * the parts of the protocol under test scripted: the receipt on the PATCH
 * that completes an upload (valid, forged or garbled), the mailbox hint on
 * every response, and a link that loses half of every chunk and then
 * stops confirming anything. It counts the receipt and mailbox GETs, and
 * when each came (by the uploads completed so far). */

enum { RCPT_NONE, RCPT_VALID, RCPT_FORGED, RCPT_GARBLED, RCPT_ALTERNATE };

struct fake {
    uv_loop_t loop;
    struct http_server *srv;
    struct fx node; /* only its directory and node database */
    struct node_credentials cred;
    struct uplink *up;
    uv_timer_t tick;
    int ticked;
    /* the script */
    int receipts;  /* RCPT_* on the completing PATCH */
    uint64_t hint; /* Outpost-Mailbox-Last; hint_from: sent once this many uploads
                      completed (before: 0) */
    int hint_from;
    int hint_gets_only; /* only GET answers carry the hint */
    int never_receipt;  /* GET /v1/receipts/N is 404 whatever was applied */
    uint64_t mono_step; /* each receipt GET moves the uplink's clock on this far */
    uint64_t mono_extra;
    int half;          /* keep only the first half of every PATCH body */
    uint64_t stuck_at; /* past this offset every PATCH answers 503; 0: never */
    /* the upload in progress */
    int upload_id;
    unsigned char *data;
    uint64_t length, got;
    uint64_t seg_no;
    /* what happened */
    int completed; /* uploads completed */
    int receipt_gets, mailbox_gets, stuck_answers;
    int mailbox_gets_at[64]; /* mailbox GETs by uploads completed when they came */
    struct {
        uint64_t no, to_u, to_o;
    } done[64];
};

static void fk_hint(struct fake *k, struct http_exchange *x)
{
    if (k->hint_gets_only && strcmp(http_method(x), "GET"))
        return;
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)(k->completed >= k->hint_from ? k->hint : 0));
    (void)http_add_header(x, "Outpost-Mailbox-Last", v);
}

/* The receipt of done[i], as GET /v1/receipts/N answers it. */
static char *fk_receipt(struct fake *k, int i, int forged)
{
    char mac[SYNC_MAC_HEX];
    if (sync_receipt_mac(k->cred.hq_key, NODE, k->done[i].no, "applied", k->done[i].to_u,
                         k->done[i].to_o, mac) < 0)
        die("receipt mac", NULL);
    if (forged)
        mac[0] = mac[0] == '0' ? '1' : '0';
    json_t *r = json_pack("{sssIsss{sIsI}sssIsI}", "node", NODE, "segment",
                          (json_int_t)k->done[i].no, "status", "applied", "to", "urgent",
                          (json_int_t)k->done[i].to_u, "ordinary", (json_int_t)k->done[i].to_o,
                          "mac", mac, "applied", (json_int_t)1, "set_aside", (json_int_t)0);
    char *text = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    return text;
}

/* The upload is whole: read its segment's range as HQ would. */
static void fk_complete(struct fake *k)
{
    char path[256];
    snprintf(path, sizeof path, "%s/upload.seg", k->node.dir);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(k->data, 1, k->length, fp) != k->length || fclose(fp) != 0)
        die("write upload", NULL);
    struct segment *sg = NULL;
    struct op_error err;
    op_error_clear(&err);
    if (segment_open(path, k->cred.hq_key, NULL, &sg, &err) < 0)
        die("segment_open", &err);
    const struct segment_info *in = segment_get_info(sg);
    int i = k->completed < 64 ? k->completed : 63;
    k->done[i].no = in->segment_no;
    k->done[i].to_u = in->to_urgent;
    k->done[i].to_o = in->to_ordinary;
    segment_close(sg);
    k->completed++;
}

static void fk_handle(void *ctx, struct http_exchange *x)
{
    struct fake *k = ctx;
    const char *m = http_method(x), *path = http_path(x);
    char loc[32];
    snprintf(loc, sizeof loc, "/files/u%d", k->upload_id);
    (void)http_add_header(x, "Tus-Resumable", "1.0.0");
    if (!strcmp(m, "POST") && !strcmp(path, "/files/")) {
        const char *len = http_header(x, "Upload-Length");
        free(k->data);
        k->length = len ? strtoull(len, NULL, 10) : 0;
        k->data = malloc(k->length ? k->length : 1);
        k->got = 0;
        k->upload_id++;
        snprintf(loc, sizeof loc, "/files/u%d", k->upload_id);
        (void)http_add_header(x, "Location", loc);
        fk_hint(k, x);
        http_respond(x, 201, NULL, "", 0);
        return;
    }
    if (!strcmp(path, loc) && (!strcmp(m, "HEAD") || !strcmp(m, "PATCH"))) {
        char off[24], len[24];
        if (!strcmp(m, "PATCH")) {
            size_t n;
            const char *body = http_body(x, &n);
            const char *at = http_header(x, "Upload-Offset");
            if (!at || strtoull(at, NULL, 10) != k->got || k->got + n > k->length) {
                http_respond(x, 409, NULL, "", 0);
                return;
            }
            if (k->stuck_at && k->got >= k->stuck_at) {
                k->stuck_answers++;
                fk_hint(k, x);
                http_respond(x, 503, NULL, "", 0);
                return;
            }
            if (k->half && n > 1)
                n /= 2; /* a cut: HQ keeps what arrived, the rest is sent again */
            memcpy(k->data + k->got, body, n);
            k->got += n;
            if (k->got == k->length) {
                fk_complete(k);
                int i = k->completed - 1;
                int kind = k->receipts;
                if (kind == RCPT_ALTERNATE)
                    kind = (k->completed & 1) ? RCPT_FORGED : RCPT_GARBLED;
                if (kind == RCPT_VALID || kind == RCPT_FORGED) {
                    char *json = fk_receipt(k, i, kind == RCPT_FORGED);
                    char b64[2048];
                    if (codec_b64_encode(json, strlen(json), CODEC_B64_URL | CODEC_B64_NOPAD, b64,
                                         sizeof b64) < 0)
                        die("b64", NULL);
                    free(json);
                    (void)http_add_header(x, "Outpost-Receipt", b64);
                } else if (kind == RCPT_GARBLED) {
                    (void)http_add_header(x, "Outpost-Receipt", "eyJub2RlIjo*!garbled");
                }
            }
        }
        snprintf(off, sizeof off, "%llu", (unsigned long long)k->got);
        snprintf(len, sizeof len, "%llu", (unsigned long long)k->length);
        (void)http_add_header(x, "Upload-Offset", off);
        (void)http_add_header(x, "Upload-Length", len);
        fk_hint(k, x);
        http_respond(x, !strcmp(m, "HEAD") ? 200 : 204, NULL, "", 0);
        return;
    }
    if (!strcmp(m, "GET") && !strncmp(path, "/v1/receipts/", 13)) {
        k->receipt_gets++;
        k->mono_extra += k->mono_step;
        if (k->never_receipt) {
            http_respond(x, 404, NULL, "", 0);
            return;
        }
        uint64_t no = strtoull(path + 13, NULL, 10);
        fk_hint(k, x);
        for (int i = 0; i < k->completed && i < 64; i++) {
            if (k->done[i].no != no)
                continue;
            char *json = fk_receipt(k, i, 0);
            http_respond(x, 200, "application/json", json, strlen(json));
            free(json);
            return;
        }
        http_respond(x, 404, NULL, "", 0);
        return;
    }
    if (!strcmp(m, "GET") && !strcmp(path, "/v1/mailbox")) {
        k->mailbox_gets++;
        k->mailbox_gets_at[k->completed < 64 ? k->completed : 63]++;
        fk_hint(k, x);
        const char *body = "{\"messages\":[]}";
        http_respond(x, 200, "application/json", body, strlen(body));
        return;
    }
    http_respond(x, 404, NULL, "", 0);
}

static void fk_init(struct fake *k, uint64_t segment_bytes)
{
    memset(k, 0, sizeof *k);
    snprintf(k->node.dir, sizeof k->node.dir, "/tmp/test_uplink_XXXXXX");
    if (!mkdtemp(k->node.dir))
        die("mkdtemp", NULL);
    snprintf(k->node.node_db, sizeof k->node.node_db, "%s/node.db", k->node.dir);
    make_node(&k->node);
    uv_loop_init(&k->loop);
    uv_timer_init(&k->loop, &k->tick);
    struct http_server_config hc = {.listen = "127.0.0.1:0"};
    struct op_error err;
    op_error_clear(&err);
    if (http_server_start(&k->loop, &hc, fk_handle, NULL, k, &k->srv, &err) < 0)
        die("http_server_start", &err);
    snprintf(k->cred.node_id, sizeof k->cred.node_id, NODE);
    snprintf(k->cred.region, sizeof k->cred.region, "KE");
    snprintf(k->cred.token, sizeof k->cred.token, TOKEN);
    for (int i = 0; i < 32; i++)
        k->cred.hq_key[i] = (unsigned char)(i * 7 + 1);
    snprintf(k->cred.hq_url, sizeof k->cred.hq_url, "http://127.0.0.1:%d",
             http_server_port(k->srv));
    atomic_store(&wall, at(0, 10, 0, 0));
    (void)segment_bytes;
}

/* The loop's clock, moved on by what the script added (mono_step). */
static uint64_t fk_mono(void *ctx)
{
    struct fake *k = ctx;
    return uv_now(&k->loop) + k->mono_extra;
}

static void fk_start(struct fake *k, uint64_t segment_bytes)
{
    struct uplink_config c = {
        .db_path = k->node.node_db,
        .cred = &k->cred,
        .segment_bytes = segment_bytes,
        .interval_ms = 200,
        .wall_ms = fake_wall,
        .mono_ms = fk_mono,
        .clock_ctx = k,
    };
    struct op_error err;
    op_error_clear(&err);
    if (uplink_start(&k->loop, &c, &k->up, &err) < 0)
        die("uplink_start", &err);
}

static void fk_done(struct fake *k)
{
    int n = 0;
    uplink_stop(k->up, on_stopped, &n);
    http_server_stop(k->srv, on_stopped, &n);
    while (n < 2)
        uv_run(&k->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&k->tick, NULL);
    uv_run(&k->loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&k->loop), 0);
    free(k->data);
    (void)fx_remove_tree(k->node.dir);
}

static void fk_on_tick(uv_timer_t *t)
{
    ((struct fake *)t->data)->ticked = 1;
}

static int fk_run_until(struct fake *k, int (*pred)(struct fake *k), const char *what)
{
    uv_update_time(&k->loop);
    uint64_t limit = uv_now(&k->loop) + 60000;
    k->tick.data = k;
    uv_timer_start(&k->tick, fk_on_tick, 5, 5);
    while (!pred(k) && uv_now(&k->loop) < limit)
        uv_run(&k->loop, UV_RUN_ONCE);
    uv_timer_stop(&k->tick);
    if (!pred(k)) {
        fprintf(stderr, "  gave up waiting for %s\n", what);
        return -1;
    }
    return 0;
}

static const struct sync_status *fk_status(struct fake *k)
{
    return uplink_status(k->up);
}

static int fk_drained(struct fake *k)
{
    const struct sync_status *s = fk_status(k);
    return s && s->outbox_depth == 0 && s->spool_segments == 0 && s->segments_acked > 0;
}

/* ---- tests ---- */

/* After a kick the paused upload `id` goes on to the end: it is the only
 * upload HQ holds, and HQ holds every contact. */
static void check_resumed(struct fx *f, const char *id, const char *what)
{
    char id2[33];
    uplink_kick(f->up);
    CHECK_EQ(run_until(f, drained, what), 0);
    CHECK_EQ(hq_uploads(f, id2, NULL), 1);
    CHECK_STR(id2, id);
    CHECK_EQ(hq_records(f), CONTACTS);
    CHECK_STR(status(f)->waiting, "");
}

/* Outside the window nothing leaves; inside it the upload starts; when the
 * window closes mid-upload it pauses, and the next cycle, outside the
 * window again, sends nothing; the next day's window resumes the same
 * upload where HQ stopped, and the segment is applied once. */
static void test_window(void)
{
    struct fx f;
    fx_init(&f);
    atomic_store(&wall, at(0, 12, 0, 0));
    start_uplink(&f, "13:00-14:00", 0, 60000);

    CHECK_EQ(run_until(&f, outside_window, "the first cycle outside the window"), 0);
    CHECK_EQ(hq_uploads(&f, NULL, NULL), 0);
    CHECK_EQ(status(&f)->link_bytes_sent, 0);
    CHECK(status(&f)->outbox_depth == CONTACTS);

    /* a second before the window closes */
    atomic_store(&wall, at(0, 13, 59, 59));
    uplink_kick(f.up);
    CHECK_EQ(run_until(&f, upload_created, "the upload"), 0);
    CHECK_EQ(run_until(&f, first_chunk_at_hq, "the first chunk at HQ"), 0);
    atomic_store(&wall, at(0, 14, 0, 0));
    CHECK_EQ(run_until(&f, window_closed, "the pause"), 0);
    CHECK_EQ(run_until(&f, outside_window, "the next cycle after the pause"), 0);
    char id[33], id2[33];
    long long paused_bytes, bytes;
    CHECK_EQ(hq_uploads(&f, id, &paused_bytes), 1);
    CHECK(paused_bytes > 0);
    const struct sync_status *s = status(&f);
    CHECK(s->segments_acked == 0);
    uint64_t sent = s->link_bytes_sent;
    CHECK(sent > 0);
    /* the cycle that decided so sent nothing, and HQ holds what it had */
    CHECK_EQ(hq_uploads(&f, id2, &bytes), 1);
    CHECK_EQ(bytes, paused_bytes);
    CHECK_EQ(hq_records(&f), 0);

    /* the next day's window: the same upload goes on */
    atomic_store(&wall, at(1, 13, 0, 0));
    check_resumed(&f, id, "the drain");
    fx_done(&f);
}

/* The data bytes of each upload HQ holds; returns how many (at most n). */
static int hq_upload_bytes(struct fx *f, long long *bytes, int n)
{
    DIR *d = opendir(f->hcfg.spool_dir);
    int k = 0;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) && k < n) {
        size_t len = strlen(de->d_name);
        if (len != 38 || strcmp(de->d_name + 32, ".state") != 0)
            continue;
        char p[HQ_CONFIG_PATH_MAX + 48];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%.32s.data", f->hcfg.spool_dir, de->d_name);
        bytes[k++] = stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
    }
    closedir(d);
    return k;
}

static int two_flowing(struct fx *f)
{
    long long b[4];
    return hq_upload_bytes(f, b, 4) == 2 && b[0] > 0 && b[1] > 0;
}

static int closed_any(struct fx *f)
{
    return waiting_has(f, "the sync window closed: segment");
}

static int drained_all(struct fx *f)
{
    const struct sync_status *s = status(f);
    return s && s->segments_acked >= 2 && s->outbox_depth == 0 && s->spool_segments == 0;
}

/* With two uploads in flight the window's end pauses both: after the
 * pause HQ's two uploads grow no more through the next cycle, nothing is
 * applied, and the next day's window drains them, every record once. */
static void test_window_two(void)
{
    struct fx f;
    fx_init(&f);
    in_flight = 2;
    fx_segment_bytes = 60000;
    atomic_store(&wall, at(0, 13, 59, 57)); /* the pause timer fires in 3 s */
    start_uplink(&f, "13:00-14:00", 0, 10000);
    CHECK_EQ(run_until(&f, two_flowing, "two uploads at HQ"), 0);
    atomic_store(&wall, at(0, 14, 0, 0));
    CHECK_EQ(run_until(&f, closed_any, "the pause"), 0);
    CHECK_EQ(run_until(&f, outside_window, "the next cycle after the pause"), 0);
    long long b1[4], b2[4];
    CHECK_EQ(hq_upload_bytes(&f, b1, 4), 2);
    uplink_kick(f.up);
    CHECK_EQ(run_until(&f, outside_window, "another cycle"), 0);
    CHECK_EQ(hq_upload_bytes(&f, b2, 4), 2);
    CHECK_EQ(b1[0] + b1[1], b2[0] + b2[1]);
    CHECK_EQ(hq_records(&f), 0);
    CHECK(status(&f)->segments_acked == 0);

    atomic_store(&wall, at(1, 13, 0, 0));
    uplink_kick(f.up);
    CHECK_EQ(run_until(&f, drained_all, "the drain"), 0);
    CHECK_EQ(hq_records(&f), CONTACTS);
    fx_done(&f);
    in_flight = 0;
    fx_segment_bytes = 2000000;
}

/* The budget pauses the upload once it has sent exactly what today allows;
 * the next cycle that day sends nothing; each next UTC day the same upload
 * resumes for that day's budget, and it drains. */
static void test_budget(void)
{
    struct fx f;
    fx_init(&f);
    atomic_store(&wall, at(0, 10, 0, 0));
    start_uplink(&f, NULL, 100000, 0);

    CHECK_EQ(run_until(&f, budget_spent, "the budget pause"), 0);
    char id[33], id2[33];
    long long paused_bytes, bytes;
    CHECK_EQ(hq_uploads(&f, id, &paused_bytes), 1);
    /* the PATCH that reaches the budget ends at it */
    CHECK_EQ(paused_bytes, 100000);
    const struct sync_status *s = status(&f);
    CHECK(s->bytes_today >= 100000);
    CHECK(s->segments_acked == 0);
    uint64_t sent = s->link_bytes_sent;
    /* One more cycle a minute before midnight decides the same. It is seen
     * to have run by the mailbox message it fetched: a cycle polls the
     * mailbox after it has decided not to upload. */
    atomic_store(&wall, at(0, 23, 59, 0));
    post_mailbox(&f);
    uplink_kick(f.up);
    CHECK_EQ(run_until(&f, mailbox_fetched, "a cycle the same day"), 0);
    CHECK(budget_spent(&f));
    CHECK_EQ(hq_uploads(&f, id2, &bytes), 1);
    CHECK_EQ(bytes, paused_bytes);
    CHECK_EQ(status(&f)->link_bytes_sent, sent);

    /* Each next UTC day the same upload goes on, by exactly what the day
     * allows (the PATCH that reaches the budget ends there), until the
     * segment is whole. */
    int day = 1;
    for (; day < 10 && !drained(&f); day++) {
        atomic_store(&wall, at(day, 0, 0, 1));
        budget_want = paused_bytes + (long long)day * 100000;
        uplink_kick(f.up);
        CHECK_EQ(run_until(&f, day_spent, "the next day's budget"), 0);
        CHECK(status(&f)->bytes_today <= 100000);
        if (!drained(&f)) {
            CHECK_EQ(hq_uploads(&f, id2, &bytes), 1);
            CHECK_EQ(bytes, budget_want);
        }
    }
    CHECK(day >= 3); /* the segment is above twice the budget */
    CHECK(drained(&f));
    CHECK_EQ(hq_uploads(&f, id2, NULL), 1);
    CHECK_STR(id2, id);
    CHECK_EQ(hq_records(&f), CONTACTS);
    CHECK_STR(status(&f)->waiting, "");
    fx_done(&f);
}

/* The day's count is what HQ holds of the upload. */
static int charged_as_hq(struct fx *f)
{
    long long b = 0;
    const struct sync_status *s = status(f);
    return budget_spent(f) && s && hq_uploads(f, NULL, &b) == 1 && (long long)s->bytes_today == b;
}

/* The restart's HEAD charged what HQ held before the kill: the budget is
 * spent and the day's count holds at least those bytes. */
static int restart_charged(struct fx *f)
{
    const struct sync_status *s = status(f);
    return budget_spent(f) && s && s->bytes_today >= 100000;
}

/* The restart's charge with a larger budget: 150,000 after 100,000. */
static int restart_charged_150k(struct fx *f)
{
    const struct sync_status *s = status(f);
    return waiting_has(f, "the daily budget of 150000 bytes is spent") && s &&
           s->bytes_today >= 150000;
}

/* A kill -9 between HQ's answer and the commit of its charge: HQ holds
 * the bytes, the database has charged none of them (the state the old
 * 2 s reports left, measured as 65,536 bytes at HQ and 0 in the status).
 * The restarted node's HEAD learns HQ's offset and charges what is not
 * charged yet before anything more is sent, so the day's count holds what
 * HQ acknowledged, and the budget, spent by that charge, holds the upload
 * with not one more byte sent. With a larger budget after a second
 * restart, the resumed PATCH carries exactly what the day has left. */
static void test_budget_restart(void)
{
    struct fx f;
    fx_init(&f);
    atomic_store(&wall, at(0, 10, 0, 0));
    start_uplink(&f, NULL, 100000, 0);
    CHECK_EQ(run_until(&f, charged_as_hq, "the budget pause"), 0);
    long long held = 0;
    char id[33], id2[33];
    CHECK_EQ(hq_uploads(&f, id, &held), 1);
    CHECK_EQ(held, 100000);
    CHECK_EQ(status(&f)->bytes_today, 100000);
    int n = 0;
    uplink_stop(f.up, on_stopped, &n);
    while (n < 1)
        uv_run(&f.loop, UV_RUN_ONCE);

    sqlite3 *db = NULL;
    CHECK_EQ(sqlite3_open(f.node_db, &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db,
                          "UPDATE sync_state SET bytes_today = 0;"
                          "UPDATE sync_segments SET charged = 0;",
                          NULL, NULL, NULL),
             SQLITE_OK);
    sqlite3_close(db);

    start_uplink(&f, NULL, 100000, 0);
    CHECK_EQ(run_until(&f, restart_charged, "the restart's charge"), 0);
    long long now_held = 0;
    CHECK_EQ(hq_uploads(&f, id2, &now_held), 1);
    CHECK_STR(id2, id); /* the same upload resumed */
    const struct sync_status *s = status(&f);
    CHECK(s->bytes_today >= 100000); /* what HQ took before the kill is counted */
    CHECK_EQ(now_held, 100000);      /* held before the resumed PATCH: nothing more went */
    CHECK_EQ(s->bytes_today, 100000);
    CHECK_EQ(s->segments_acked, 0);

    /* again, the same kill, and the day's budget raised to 150,000: the
     * HEAD charges 100,000 and the resumed PATCH is cut at the 50,000 left */
    n = 0;
    uplink_stop(f.up, on_stopped, &n);
    while (n < 1)
        uv_run(&f.loop, UV_RUN_ONCE);
    CHECK_EQ(sqlite3_open(f.node_db, &db), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(db,
                          "UPDATE sync_state SET bytes_today = 0;"
                          "UPDATE sync_segments SET charged = 0;",
                          NULL, NULL, NULL),
             SQLITE_OK);
    sqlite3_close(db);
    start_uplink(&f, NULL, 150000, 0);
    CHECK_EQ(run_until(&f, restart_charged_150k, "the second restart's charge and pause"), 0);
    CHECK_EQ(hq_uploads(&f, id2, &now_held), 1);
    CHECK_STR(id2, id);
    CHECK_EQ(now_held, 150000);
    CHECK_EQ(status(&f)->bytes_today, 150000);
    CHECK_EQ(status(&f)->segments_acked, 0);

    fx_done(&f);
}

static int fk_inline_counted(struct fake *k)
{
    const struct sync_status *s = fk_status(k);
    return fk_drained(k) && s->receipts_inline == (uint64_t)k->completed;
}

/* Receipts ride on the completing PATCH: every segment is acknowledged
 * without a GET /v1/receipts/N, and the GETs saved are counted. While
 * HQ's hint equals the cursor the mailbox is not asked, at start neither;
 * once the hint is above the cursor, the cycle of every segment asks. */
static void test_round_trips(void)
{
    struct fake k;
    fk_init(&k, 0);
    k.receipts = RCPT_VALID;
    k.hint = 7;
    k.hint_from = 3;
    fk_start(&k, 40000);
    CHECK_EQ(fk_run_until(&k, fk_inline_counted, "the drain, receipts counted"), 0);
    int n = k.completed;
    CHECK(n >= 5);
    CHECK_EQ(k.receipt_gets, 0);
    CHECK_EQ(fk_status(&k)->segments_acked, (uint64_t)n);
    CHECK_EQ(fk_status(&k)->receipts_inline, (uint64_t)n);
    /* the start: the first segment's requests carried the hint, equal to
     * the cursor, so no poll, neither then nor in the idle cycle after */
    CHECK_EQ(k.mailbox_gets_at[0], 0);
    CHECK_EQ(k.mailbox_gets_at[1], 0);
    CHECK_EQ(k.mailbox_gets_at[2], 0);
    CHECK(fk_status(&k)->mailbox_skipped >= 1);
    /* the hint is above the cursor (HQ's fake mailbox stays empty, so it
     * stays above): a GET after every segment */
    for (int i = 3; i < n && i < 64; i++)
        CHECK(k.mailbox_gets_at[i] >= 1);
    fk_done(&k);
}

/* A receipt on the PATCH that does not verify (a forged MAC) or does not
 * decode is ignored: nothing is acknowledged through it, and the GET asks
 * for the receipt as before, which acknowledges the segment. The mailbox
 * hint is taken from GET answers too. */
static void test_inline_refused(void)
{
    struct fake k;
    fk_init(&k, 0);
    k.receipts = RCPT_ALTERNATE;
    k.hint = 7;
    k.hint_from = 2;
    k.hint_gets_only = 1;
    fk_start(&k, 60000);
    CHECK_EQ(fk_run_until(&k, fk_drained, "the drain through GETs"), 0);
    CHECK(k.completed >= 3);
    CHECK(k.receipt_gets >= k.completed);
    CHECK_EQ(fk_status(&k)->segments_acked, (uint64_t)k.completed);
    CHECK_EQ(fk_status(&k)->receipts_inline, 0);
    /* the hint on the receipt GETs' answers counts as on any response:
     * above the cursor, so the mailbox is fetched after every segment */
    for (int i = 2; i < k.completed && i < 64; i++)
        CHECK(k.mailbox_gets_at[i] >= 1);
    fk_done(&k);
}

static int fk_stuck_charged(struct fake *k)
{
    const struct sync_status *s = fk_status(k);
    /* the charge is committed at each offset, the wire counters every 2 s:
     * wait until these have been reported past the stuck point too */
    return k->stuck_answers >= 2 && s && s->bytes_today == k->got && s->bytes_sent_today >= k->got;
}

/* An upload that never completes (HQ keeps half of every chunk, then
 * confirms nothing more) is charged to the day as HQ acknowledges it, not
 * at an end that never comes; and what is charged is HQ's offset, not the
 * bytes sent, which a lossy link makes twice as many. */
static void test_stuck_charged(void)
{
    struct fake k;
    fk_init(&k, 0);
    k.receipts = RCPT_VALID;
    k.half = 1;
    k.stuck_at = 150000;
    fk_start(&k, 2000000);
    CHECK_EQ(fk_run_until(&k, fk_stuck_charged, "the stuck upload charged"), 0);
    const struct sync_status *s = fk_status(&k);
    CHECK(k.got >= 150000);
    CHECK_EQ(s->bytes_today, k.got);
    CHECK_EQ(s->segments_acked, 0);
    CHECK_EQ(k.completed, 0);
    /* the wire saw about twice as much, shown beside it */
    CHECK(s->bytes_sent_today >= s->bytes_today + s->bytes_today / 2);
    CHECK(s->bytes_resent_today >= s->bytes_today / 2);
    fk_done(&k);
}

static int fk_waiting_receipt(struct fake *k)
{
    const struct sync_status *s = fk_status(k);
    return s && strstr(s->waiting, "waiting for HQ's receipt of segment") != NULL;
}

/* A receiver that never gives a receipt: after the patience the segment
 * is uploaded once more; after the patience again the polls back off far
 * past the sync interval (not every 200 ms forever), and the status says
 * sync waits for a receipt. Each receipt GET moves the uplink's clock on
 * 15 s, so the minute of patience passes in a few polls. */
static void test_no_receipt_backs_off(void)
{
    struct fake k;
    fk_init(&k, 0);
    k.receipts = RCPT_NONE;
    k.never_receipt = 1;
    k.mono_step = 15000;
    fk_start(&k, 0);
    CHECK_EQ(fk_run_until(&k, fk_waiting_receipt, "the wait for a receipt in the status"), 0);
    CHECK_EQ(k.completed, 2); /* the upload and the one upload again */
    const struct sync_status *s = fk_status(&k);
    if (s)
        CHECK_CONTAINS(s->waiting, "asking less often");
    /* Two seconds: at the interval (200 ms) that would be about ten polls. */
    int before = k.receipt_gets;
    uv_update_time(&k.loop);
    uint64_t until = uv_now(&k.loop) + 2000;
    k.tick.data = &k;
    uv_timer_start(&k.tick, fk_on_tick, 5, 5);
    while (uv_now(&k.loop) < until)
        uv_run(&k.loop, UV_RUN_ONCE);
    uv_timer_stop(&k.tick);
    CHECK_INT(k.receipt_gets - before, <=, 1);
    CHECK_EQ(k.completed, 2); /* no third upload */
    fk_done(&k);
}

int main(void)
{
    alarm(300);
    setenv("TZ", "UTC", 1); /* the window is in local time */
    tzset();
    unsetenv("OUTPOST_POLICY");
    RUN(test_window);
    RUN(test_window_two);
    RUN(test_budget);
    RUN(test_budget_restart);
    RUN(test_round_trips);
    RUN(test_inline_refused);
    RUN(test_stuck_charged);
    RUN(test_no_receipt_backs_off);
    return tl_report();
}
