/*
 * The fairness goal of sync/net/http_server.c, end to end on loopback:
 * with 1,000 hostile connections opened from one address (127.0.0.2:
 * slowloris headers, slow bodies, idle keep-alive, or a mix of the three),
 * a normal client from another address (127.0.0.1), opening a fresh
 * connection per request, gets every answer, and its p99 latency stays
 * under twice the p99 it had with no attack, measured just before in the
 * same run (tests/support/hostile.h). The server runs in this process on
 * its loop with its default limits; a forked child is the normal client,
 * and a grandchild of it the attacker, which trickles a byte every 500 ms
 * into each connection it still holds. Without a cap per address the attacker fills the server
 * and the normal client is told 503.
 */
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "hostile.h"
#include "http_server.h"
#include "testlib.h"
#include "testloop.h"

#define SAMPLES 1000
#define ROUND 200 /* requests per round; rounds alternate idle and attack */

/* ---- the parent: the server ---- */

static void handler(void *ctx, struct http_exchange *x)
{
    (void)ctx;
    http_respond(x, 200, "text/plain", "ok\n", 3);
}

/* ---- the clients ---- */

static int client(int port, void *arg)
{
    enum hostile_kind kind = *(enum hostile_kind *)arg;
    static struct hostile_result r;
    int64_t t0 = hostile_now_us();
    for (int attempt = 1;; attempt++) {
        hostile_sleep_ms(100); /* the last test's connections are closed by now */
        hostile_run(port, "/ok", kind, SAMPLES / ROUND, ROUND, &r);
        double ratio = r.idle.p99 ? (double)r.attack.p99 / (double)r.idle.p99 : 0;
        fprintf(stderr,
                "  %-15s: hostile held %d..%d of %d; normal ok %d/%d idle, %d/%d under attack; "
                "p50/p99 idle %lld/%lld us, under attack %lld/%lld us; p99 ratio %.2f\n",
                hostile_names[kind], r.held_min, r.held_max, HOSTILE_CONNS, r.idle.ok, r.idle.tries,
                r.attack.ok, r.attack.tries, (long long)r.idle.p50, (long long)r.idle.p99,
                (long long)r.attack.p50, (long long)r.attack.p99, ratio);
        C_CHECK(r.held_min >= 1 && r.held_max <= 32); /* the attack took hold, within its cap */
        C_EQ(r.idle.ok, SAMPLES);
        C_EQ(r.attack.ok, SAMPLES);
        if (cfails || r.attack.p99 < 2 * r.idle.p99)
            break;
        /* Every answer came: only the latency missed, which a loaded
         * machine can cause on its own. Measure again while time allows
         * (the child has 20 s). */
        if (attempt == 3 || hostile_now_us() - t0 > 6000000) {
            C_CHECK(r.attack.p99 < 2 * r.idle.p99);
            break;
        }
        fprintf(stderr, "  (latency over twice the idle p99; measuring again)\n");
    }
    return cfails;
}

static void run(enum hostile_kind kind)
{
    struct th_loop tl;
    th_loop_init(&tl);
    struct http_server_config cfg = {.listen = "127.0.0.1:0"}; /* the defaults under test */
    struct http_server *srv = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = http_server_start(&tl.loop, &cfg, handler, NULL, NULL, &srv, &err);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        enum hostile_kind k = kind;
        CHECK_EQ(th_run_client(&tl.loop, http_server_port(srv), client, &k), 0);
        int stopped = 0;
        http_server_stop(srv, NULL, NULL);
        (void)th_run_until(&tl, &stopped, 500);
    }
    (void)th_loop_done(&tl);
}

static void test_slowloris(void)
{
    run(HOSTILE_SLOWLORIS);
}

static void test_slow_body(void)
{
    run(HOSTILE_SLOW_BODY);
}

static void test_idle_keepalive(void)
{
    run(HOSTILE_IDLE);
}

static void test_mixed(void)
{
    run(HOSTILE_MIXED);
}

int main(void)
{
    /* 1,000 hostile sockets in the attacker, as many here. */
    hostile_raise_nofile();
    RUN(test_slowloris);
    RUN(test_slow_body);
    RUN(test_idle_keepalive);
    RUN(test_mixed);
    return tl_report();
}
