/*
 * Hybrid logical clock. A stamp is 64 bits: the upper 48 are milliseconds
 * since the Unix epoch, the lower 16 a counter that orders events within
 * one millisecond. The invariant: every stamp a clock issues is strictly
 * greater than every stamp it issued or observed before, even when the wall
 * clock jumps backwards, and across restarts when the caller seeds it with
 * the last stamp it persisted.
 */
#ifndef OUTPOST_HLC_H
#define OUTPOST_HLC_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t hlc_stamp;

#define HLC_COUNTER_BITS 16
#define HLC_MAX_MS ((UINT64_C(1) << 48) - 1)
/* A remote stamp further ahead of our wall clock than this is refused. */
#define HLC_MAX_DRIFT_MS (UINT64_C(60) * 60 * 1000)
/* Room for "YYYY-MM-DDTHH:MM:SS.mmmZ" plus NUL, with margin for any int year. */
#define HLC_ISO_LEN 64

typedef uint64_t (*hlc_clock_fn)(void *ctx);

struct hlc {
    hlc_stamp last;
    hlc_clock_fn now_ms;
    void *clock_ctx;
};

/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME). */
uint64_t hlc_wall_ms(void *ctx);

/* Starts a clock whose next stamp is greater than `last` (0 for a new
 * node). `now_ms` may be NULL for the wall clock; tests pass their own. */
void hlc_init(struct hlc *h, hlc_stamp last, hlc_clock_fn now_ms, void *clock_ctx);

/* Issues the stamp for a local event. Never fails; when the counter is
 * exhausted within one millisecond the physical part moves ahead by one. */
hlc_stamp hlc_next(struct hlc *h);

/* Merges a stamp received from another node and returns a stamp greater
 * than both. Returns -ERANGE (and leaves the clock unchanged) when the
 * remote stamp is more than HLC_MAX_DRIFT_MS ahead of the wall clock. */
int hlc_observe(struct hlc *h, hlc_stamp remote, hlc_stamp *out);

static inline uint64_t hlc_ms(hlc_stamp s)
{
    return s >> HLC_COUNTER_BITS;
}

static inline uint16_t hlc_counter(hlc_stamp s)
{
    return (uint16_t)(s & 0xffffu);
}

/* Writes the physical part as ISO 8601 UTC with milliseconds. */
void hlc_format_iso(hlc_stamp s, char out[HLC_ISO_LEN]);

#endif
