/*
 * Tests for sync/net/http_peers.c: addresses group as the server's
 * fairness cap needs (IPv4 by address, IPv4-mapped IPv6 as IPv4, IPv6 by
 * /64); the cap holds per group and frees on give; the table never holds
 * more groups than it was sized for; and a random workload of takes and
 * gives (with many collisions in a small table) agrees with a plain array
 * model, which checks the backward-shift deletion.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_peers.h"
#include "testlib.h"

static struct http_peer_key key4(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1234)};
    CHECK_EQ(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    struct http_peer_key k;
    CHECK_EQ(http_peer_key_of((struct sockaddr *)&a, &k), 0);
    return k;
}

static struct http_peer_key key6(const char *ip, uint16_t port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    CHECK_EQ(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    struct http_peer_key k;
    CHECK_EQ(http_peer_key_of((struct sockaddr *)&a, &k), 0);
    return k;
}

static int same(struct http_peer_key a, struct http_peer_key b)
{
    return a.len == b.len && memcmp(a.b, b.b, a.len) == 0;
}

static void grouping(void)
{
    CHECK(same(key4("192.0.2.4"), key4("192.0.2.4")));
    CHECK(!same(key4("192.0.2.4"), key4("192.0.2.5")));
    CHECK(!same(key4("127.0.0.1"), key4("127.0.0.2")));
    /* One /64, whatever the interface identifier or port. */
    CHECK(same(key6("2001:db8:1:2::1", 1), key6("2001:db8:1:2:ffff:ffff:ffff:ffff", 2)));
    CHECK(!same(key6("2001:db8:1:2::1", 1), key6("2001:db8:1:3::1", 1)));
    /* A dual-stack listener's IPv4 client is that IPv4 address. */
    CHECK(same(key6("::ffff:192.0.2.4", 9), key4("192.0.2.4")));
    CHECK(!same(key6("::ffff:192.0.2.4", 9), key6("::ffff:192.0.2.5", 9)));
    struct sockaddr other = {.sa_family = AF_UNIX};
    struct http_peer_key k = {.len = 99};
    CHECK_EQ(http_peer_key_of(&other, &k), -EAFNOSUPPORT);
    CHECK_EQ(k.len, 99); /* untouched on failure */
}

static void cap_per_group(void)
{
    struct http_peers p;
    CHECK_EQ(http_peers_init(&p, 0), -EINVAL);
    CHECK_EQ(http_peers_init(&p, 8), 0);
    struct http_peer_key a = key4("10.0.0.1"), b = key6("2001:db8::1", 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(http_peers_take(&p, &a, 3), 0);
    CHECK_EQ(http_peers_take(&p, &a, 3), -EAGAIN);
    CHECK_EQ(http_peers_count(&p, &a), 3);
    /* Another group is not affected by a's being full. */
    CHECK_EQ(http_peers_take(&p, &b, 3), 0);
    CHECK_EQ(http_peers_groups(&p), 2);
    http_peers_give(&p, &a);
    CHECK_EQ(http_peers_take(&p, &a, 3), 0);
    for (int i = 0; i < 3; i++)
        http_peers_give(&p, &a);
    CHECK_EQ(http_peers_count(&p, &a), 0);
    CHECK_EQ(http_peers_groups(&p), 1);
    http_peers_give(&p, &a); /* one too many: ignored */
    CHECK_EQ(http_peers_count(&p, &b), 1);
    CHECK_EQ(http_peers_take(&p, &a, 0), -EAGAIN);
    http_peers_done(&p);
    http_peers_done(&p); /* twice is harmless */
}

static void table_full(void)
{
    struct http_peers p;
    CHECK_EQ(http_peers_init(&p, 4), 0);
    char ip[32];
    for (int i = 0; i < 4; i++) {
        snprintf(ip, sizeof ip, "10.0.0.%d", i + 1);
        struct http_peer_key k = key4(ip);
        CHECK_EQ(http_peers_take(&p, &k, 10), 0);
    }
    struct http_peer_key e = key4("10.0.0.99");
    CHECK_EQ(http_peers_take(&p, &e, 10), -ENOSPC);
    struct http_peer_key one = key4("10.0.0.1");
    CHECK_EQ(http_peers_take(&p, &one, 10), 0); /* a known group still counts */
    http_peers_give(&p, &one);
    http_peers_give(&p, &one);
    CHECK_EQ(http_peers_take(&p, &e, 10), 0);
    http_peers_done(&p);
}

/* Many groups in a table of 16 slots: long runs, deletions in the middle
 * of them, wrap-around at the end of the table. */
static void random_model(void)
{
    enum { NKEYS = 8, STEPS = 200000 };
    struct http_peers p;
    CHECK_EQ(http_peers_init(&p, NKEYS), 0);
    struct http_peer_key keys[NKEYS];
    uint32_t model[NKEYS] = {0};
    for (int i = 0; i < NKEYS; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "2001:db8:%x::1", i * 7919);
        keys[i] = key6(ip, 1);
    }
    unsigned long long x = 88172645463325252ull;
    int bad = 0;
    for (int step = 0; step < STEPS && !bad; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % NKEYS);
        if ((x >> 8) & 1) {
            int rc = http_peers_take(&p, &keys[i], 3);
            int want = model[i] < 3 ? 0 : -EAGAIN;
            if (rc != want)
                bad = 1;
            if (rc == 0)
                model[i]++;
        } else {
            http_peers_give(&p, &keys[i]);
            if (model[i])
                model[i]--;
        }
        uint32_t groups = 0;
        for (int j = 0; j < NKEYS; j++) {
            if (http_peers_count(&p, &keys[j]) != model[j])
                bad = 1;
            groups += model[j] > 0;
        }
        if (groups != http_peers_groups(&p))
            bad = 1;
        if (bad)
            fprintf(stderr, "  diverged from the model at step %d\n", step);
    }
    CHECK_EQ(bad, 0);
    http_peers_done(&p);
}

int main(void)
{
    RUN(grouping);
    RUN(cap_per_group);
    RUN(table_full);
    RUN(random_model);
    return tl_report();
}
