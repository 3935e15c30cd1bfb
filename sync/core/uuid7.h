/*
 * UUIDv7 generator (RFC 9562, section 5.7): 48 bits of Unix milliseconds,
 * then a 12-bit counter in rand_a (the "fixed-length dedicated counter" of
 * section 6.2, method 1), then 62 random bits. The invariant: ids from one
 * generator are strictly increasing as bytes and as text, even when the
 * wall clock goes backwards; the random tail keeps ids of different nodes
 * apart.
 */
#ifndef OUTPOST_UUID7_H
#define OUTPOST_UUID7_H

#include <stdint.h>

#include "hlc.h"

#define UUID_TEXT_LEN 37 /* 36 characters plus NUL */

typedef int (*uuid7_random_fn)(void *ctx, void *buf, size_t len);

struct uuid7_gen {
    uint64_t last_ms;
    uint16_t counter;
    hlc_clock_fn now_ms;
    void *clock_ctx;
    uuid7_random_fn random;
    void *random_ctx;
};

/* Kernel randomness (getrandom). Returns 0 or a negative errno. */
int uuid7_os_random(void *ctx, void *buf, size_t len);

/* NULL functions mean the wall clock and the kernel's random source. */
void uuid7_init(struct uuid7_gen *g, hlc_clock_fn now_ms, void *clock_ctx, uuid7_random_fn random,
                void *random_ctx);

/* Writes the next id. Returns 0, or a negative errno if no randomness could
 * be had (out is then untouched). */
int uuid7_next(struct uuid7_gen *g, uint8_t out[16]);

/* Same, as lower-case canonical text. */
int uuid7_next_text(struct uuid7_gen *g, char out[UUID_TEXT_LEN]);

void uuid_format(const uint8_t u[16], char out[UUID_TEXT_LEN]);

/* Parses canonical 8-4-4-4-12 hex (either case). Returns 0 or -EINVAL. */
int uuid_parse(const char *text, uint8_t out[16]);

/* True when `text` is a canonical UUID of version 7 and RFC variant. */
int uuid_is_v7_text(const char *text);

uint64_t uuid7_time_ms(const uint8_t u[16]);

#endif
