/*
 * UUIDv7 generation. Ordering within a millisecond comes from a 12-bit
 * counter seeded randomly in its lower half at each new millisecond, so
 * that there are at least 2048 ids of headroom; when it runs out, or the
 * clock goes backwards, the timestamp is carried forward instead of ever
 * issuing a smaller id.
 */
#include "uuid7.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "codec.h"

int uuid7_os_random(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void uuid7_init(struct uuid7_gen *g, hlc_clock_fn now_ms, void *clock_ctx, uuid7_random_fn random,
                void *random_ctx)
{
    memset(g, 0, sizeof *g);
    g->now_ms = now_ms ? now_ms : hlc_wall_ms;
    g->clock_ctx = clock_ctx;
    g->random = random ? random : uuid7_os_random;
    g->random_ctx = random_ctx;
}

int uuid7_next(struct uuid7_gen *g, uint8_t out[16])
{
    uint8_t rnd[10];
    int rc = g->random(g->random_ctx, rnd, sizeof rnd);
    if (rc < 0)
        return rc;

    uint64_t now = g->now_ms(g->clock_ctx) & HLC_MAX_MS;
    uint64_t ms;
    uint16_t counter;
    if (now > g->last_ms) {
        ms = now;
        counter = (uint16_t)(((rnd[8] << 8) | rnd[9]) & 0x07ff);
    } else if (g->counter < 0x0fff) {
        ms = g->last_ms;
        counter = (uint16_t)(g->counter + 1);
    } else {
        ms = g->last_ms + 1;
        counter = (uint16_t)(((rnd[8] << 8) | rnd[9]) & 0x07ff);
    }
    g->last_ms = ms;
    g->counter = counter;

    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)(ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | (counter >> 8));
    out[7] = (uint8_t)(counter & 0xff);
    out[8] = (uint8_t)(0x80 | (rnd[0] & 0x3f));
    memcpy(out + 9, rnd + 1, 7);
    return 0;
}

int uuid7_next_text(struct uuid7_gen *g, char out[UUID_TEXT_LEN])
{
    uint8_t u[16];
    int rc = uuid7_next(g, u);
    if (rc < 0)
        return rc;
    uuid_format(u, out);
    return 0;
}

void uuid_format(const uint8_t u[16], char out[UUID_TEXT_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

int uuid_parse(const char *text, uint8_t out[16])
{
    uint8_t u[16];
    size_t i = 0;
    for (int b = 0; b < 16; b++) {
        if (b == 4 || b == 6 || b == 8 || b == 10) {
            if (text[i] != '-')
                return -EINVAL;
            i++;
        }
        /* stops at the first non-digit, so a NUL ends the read */
        if (codec_hex_decode(text + i, 2, 0, &u[b], 1) != 1)
            return -EINVAL;
        i += 2;
    }
    if (text[i] != '\0')
        return -EINVAL;
    memcpy(out, u, 16);
    return 0;
}

int uuid_is_v7_text(const char *text)
{
    uint8_t u[16];
    if (uuid_parse(text, u) < 0)
        return 0;
    return (u[6] >> 4) == 7 && (u[8] & 0xc0) == 0x80;
}

uint64_t uuid7_time_ms(const uint8_t u[16])
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | u[i];
    return ms;
}
