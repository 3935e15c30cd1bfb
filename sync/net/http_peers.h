/*
 * Connections per client address, for the HTTP server's fairness cap: one
 * address (an IPv4 address, or an IPv6 /64, the block one host or one
 * customer line usually gets) may hold at most a configured number of the
 * server's connections, so that one hostile client cannot take them all.
 *
 * A fixed-size open-addressing table sized once for the most connections
 * the server will ever hold; every operation is O(1) on average and never
 * allocates after http_peers_init. Its hash is keyed with a random seed,
 * so that an attacker who picks addresses (many /64s of one /48) cannot
 * aim them at one slot chain.
 */
#ifndef OUTPOST_HTTP_PEERS_H
#define OUTPOST_HTTP_PEERS_H

#include <stdint.h>
#include <sys/socket.h>

/* An address group: 4 bytes (IPv4, IPv4-mapped IPv6 included) or the first
 * 8 bytes of an IPv6 address. */
struct http_peer_key {
    uint8_t len;
    uint8_t b[8];
};

struct http_peer_slot;

struct http_peers {
    struct http_peer_slot *slots;
    uint32_t mask; /* slot count - 1; a power of two */
    uint32_t used; /* slots holding a key */
    uint32_t max_used;
    uint64_t seed;
};

/* The group of a peer address. -EAFNOSUPPORT for anything but AF_INET and
 * AF_INET6. */
int http_peer_key_of(const struct sockaddr *sa, struct http_peer_key *out);

/* Prepares a table for up to max_keys distinct groups at once (the
 * server's most connections). -ENOMEM, -EINVAL for 0 or more than 2^28. */
int http_peers_init(struct http_peers *p, uint32_t max_keys);

/* Frees the table; p may be zeroed or already done. */
void http_peers_done(struct http_peers *p);

/* Counts one more connection of k unless k already holds limit of them:
 * 0 when counted, -EAGAIN over the limit, -ENOSPC when the table already
 * holds max_keys groups (the caller holds more connections than it said). */
int http_peers_take(struct http_peers *p, const struct http_peer_key *k, uint32_t limit);

/* Gives back a connection counted by http_peers_take. */
void http_peers_give(struct http_peers *p, const struct http_peer_key *k);

/* Connections k holds now. */
uint32_t http_peers_count(const struct http_peers *p, const struct http_peer_key *k);

/* Groups holding at least one connection now. */
uint32_t http_peers_groups(const struct http_peers *p);

#endif
