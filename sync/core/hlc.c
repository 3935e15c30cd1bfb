/*
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014),
 * packed into one 64-bit integer so that stamps compare as integers and
 * store as one SQLite INTEGER. Monotonicity is kept by never issuing a
 * stamp <= h->last; the wall clock only ever pulls the physical part up.
 */
#include "hlc.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "timefmt.h"

uint64_t hlc_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hlc_init(struct hlc *h, hlc_stamp last, hlc_clock_fn now_ms, void *clock_ctx)
{
    h->last = last;
    h->now_ms = now_ms ? now_ms : hlc_wall_ms;
    h->clock_ctx = clock_ctx;
}

static hlc_stamp advance(struct hlc *h, hlc_stamp floor)
{
    uint64_t wall = h->now_ms(h->clock_ctx);
    if (wall > HLC_MAX_MS)
        wall = HLC_MAX_MS;
    hlc_stamp candidate = wall << HLC_COUNTER_BITS;
    if (candidate <= floor)
        candidate = floor + 1; /* same ms: bump the counter, carrying into ms */
    h->last = candidate;
    return candidate;
}

hlc_stamp hlc_next(struct hlc *h)
{
    return advance(h, h->last);
}

int hlc_observe(struct hlc *h, hlc_stamp remote, hlc_stamp *out)
{
    uint64_t wall = h->now_ms(h->clock_ctx);
    if (hlc_ms(remote) > wall + HLC_MAX_DRIFT_MS)
        return -ERANGE;
    hlc_stamp floor = remote > h->last ? remote : h->last;
    *out = advance(h, floor);
    return 0;
}

void hlc_format_iso(hlc_stamp s, char out[HLC_ISO_LEN])
{
    /* the physical part has 48 bits: always a non-negative int64_t */
    if (timefmt_iso_ms((int64_t)hlc_ms(s), out, HLC_ISO_LEN) < 0)
        snprintf(out, HLC_ISO_LEN, "invalid");
}
