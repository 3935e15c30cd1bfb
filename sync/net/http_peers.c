/*
 * Connections per client address; see http_peers.h for the contract. Open
 * addressing with linear probing and backward-shift deletion (no
 * tombstones, so a long-running server never degrades), at most half
 * full: the table has at least twice as many slots as groups it may
 * hold. Even a chain an attacker managed to aim at one slot is bounded by
 * the groups held, which the server's connection cap bounds.
 */
#include "http_peers.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

struct http_peer_slot {
    uint32_t count; /* 0: empty */
    struct http_peer_key key;
};

int http_peer_key_of(const struct sockaddr *sa, struct http_peer_key *out)
{
    struct http_peer_key k;
    memset(&k, 0, sizeof k);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        k.len = 4;
        memcpy(k.b, &a->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a->sin6_addr.s6_addr, v4mapped, sizeof v4mapped) == 0) {
            /* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d:
             * one address each, as on an IPv4 listener. */
            k.len = 4;
            memcpy(k.b, a->sin6_addr.s6_addr + 12, 4);
        } else {
            k.len = 8;
            memcpy(k.b, a->sin6_addr.s6_addr, 8);
        }
    } else {
        return -EAFNOSUPPORT;
    }
    *out = k;
    return 0;
}

static uint32_t key_hash(const struct http_peers *p, const struct http_peer_key *k)
{
    uint64_t h = p->seed ^ 0xcbf29ce484222325ull ^ k->len;
    for (unsigned i = 0; i < k->len; i++) {
        h ^= k->b[i];
        h *= 0x100000001b3ull;
    }
    /* The splitmix64 finaliser spreads every input bit over the slot bits. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (uint32_t)h;
}

static int key_eq(const struct http_peer_key *a, const struct http_peer_key *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

int http_peers_init(struct http_peers *p, uint32_t max_keys)
{
    memset(p, 0, sizeof *p);
    if (max_keys == 0 || max_keys > (1u << 28))
        return -EINVAL;
    uint32_t n = 16;
    while (n < 2 * max_keys)
        n *= 2;
    p->slots = calloc(n, sizeof *p->slots);
    if (!p->slots)
        return -ENOMEM;
    p->mask = n - 1;
    p->max_used = max_keys;
    if (uv_random(NULL, NULL, &p->seed, sizeof p->seed, 0, NULL) != 0)
        p->seed = uv_hrtime(); /* weaker, still not known in advance */
    return 0;
}

void http_peers_done(struct http_peers *p)
{
    free(p->slots);
    memset(p, 0, sizeof *p);
}

/* The slot holding k, or the empty slot where it would go. */
static uint32_t find(const struct http_peers *p, const struct http_peer_key *k)
{
    uint32_t i = key_hash(p, k) & p->mask;
    while (p->slots[i].count && !key_eq(&p->slots[i].key, k))
        i = (i + 1) & p->mask;
    return i;
}

int http_peers_take(struct http_peers *p, const struct http_peer_key *k, uint32_t limit)
{
    uint32_t i = find(p, k);
    struct http_peer_slot *s = &p->slots[i];
    if (s->count) {
        if (s->count >= limit)
            return -EAGAIN;
        s->count++;
        return 0;
    }
    if (limit == 0)
        return -EAGAIN;
    if (p->used >= p->max_used)
        return -ENOSPC;
    s->key = *k;
    s->count = 1;
    p->used++;
    return 0;
}

void http_peers_give(struct http_peers *p, const struct http_peer_key *k)
{
    uint32_t i = find(p, k);
    if (!p->slots[i].count)
        return;
    if (--p->slots[i].count)
        return;
    p->used--;
    /* Backward shift: move later members of the run into the hole when
     * their home slot is at or before it, so lookups never stop early. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & p->mask; p->slots[j].count; j = (j + 1) & p->mask) {
        uint32_t home = key_hash(p, &p->slots[j].key) & p->mask;
        /* j's home lies cyclically in (hole, j]: it must stay. */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays)
            continue;
        p->slots[hole] = p->slots[j];
        p->slots[j].count = 0;
        hole = j;
    }
    p->slots[hole].count = 0;
}

uint32_t http_peers_count(const struct http_peers *p, const struct http_peer_key *k)
{
    if (!p->slots)
        return 0;
    return p->slots[find(p, k)].count;
}

uint32_t http_peers_groups(const struct http_peers *p)
{
    return p->used;
}
