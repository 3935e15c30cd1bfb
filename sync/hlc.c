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
    uint64_t ms = hlc_ms(s);
    time_t secs = (time_t)(ms / 1000u);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, HLC_ISO_LEN, "invalid");
        return;
    }
    snprintf(out, HLC_ISO_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000u));
}
