/* Tests for sync/core/hlc.c: monotonic stamps whatever the wall clock does. */
#include <errno.h>

#include "hlc.h"
#include "testlib.h"

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

/* A fresh clock at wall time now (ms). */
static void start_at(struct hlc *h, uint64_t now)
{
    fake_now = now;
    hlc_init(h, 0, fake_clock, NULL);
}

static void same_millisecond_counts_up(void)
{
    struct hlc h;
    start_at(&h, 1700000000000);
    hlc_stamp a = hlc_next(&h), b = hlc_next(&h), c = hlc_next(&h);
    CHECK_EQ(hlc_ms(a), 1700000000000);
    CHECK_EQ(hlc_counter(a), 0);
    CHECK_EQ(hlc_counter(b), 1);
    CHECK_EQ(hlc_counter(c), 2);
    fake_now++;
    hlc_stamp d = hlc_next(&h);
    CHECK_EQ(hlc_ms(d), 1700000000001);
    CHECK_EQ(hlc_counter(d), 0);
}

static void clock_going_backwards(void)
{
    struct hlc h;
    start_at(&h, 1700000005000);
    hlc_stamp prev = hlc_next(&h);
    fake_now -= 3600 * 1000; /* an hour back, as after an NTP correction */
    for (int i = 0; i < 1000; i++) {
        hlc_stamp s = hlc_next(&h);
        CHECK(s > prev);
        CHECK_EQ(hlc_ms(s), 1700000005000);
        prev = s;
    }
}

static void restart_with_persisted_stamp(void)
{
    struct hlc h;
    start_at(&h, 1700000010000);
    hlc_stamp before_restart = hlc_next(&h);
    /* The node restarts with a wall clock that is now a day behind. */
    fake_now -= 86400u * 1000u;
    struct hlc h2;
    hlc_init(&h2, before_restart, fake_clock, NULL);
    CHECK(hlc_next(&h2) > before_restart);
}

static void counter_exhaustion_carries(void)
{
    struct hlc h;
    start_at(&h, 1700000020000);
    hlc_stamp prev = hlc_next(&h);
    int ok = 1;
    for (int i = 0; i < 70000; i++) {
        hlc_stamp s = hlc_next(&h);
        ok &= s > prev;
        prev = s;
    }
    CHECK(ok);
    CHECK_EQ(hlc_ms(prev), 1700000020001);
}

static void observe_remote(void)
{
    struct hlc h;
    start_at(&h, 1700000030000);
    hlc_stamp local = hlc_next(&h);
    hlc_stamp remote = (UINT64_C(1700000031000) << HLC_COUNTER_BITS) | 7;
    hlc_stamp out = 0;
    CHECK_EQ(hlc_observe(&h, remote, &out), 0);
    CHECK(out > remote);
    CHECK(out > local);
    CHECK(hlc_next(&h) > out);

    hlc_stamp far = (UINT64_C(1700000030000) + HLC_MAX_DRIFT_MS + 1000) << HLC_COUNTER_BITS;
    hlc_stamp last = h.last;
    CHECK_EQ(hlc_observe(&h, far, &out), -ERANGE);
    CHECK_EQ(h.last, last);
}

static void iso_format(void)
{
    char buf[HLC_ISO_LEN];
    hlc_format_iso((UINT64_C(1700000000123) << HLC_COUNTER_BITS) | 5, buf);
    CHECK_STR(buf, "2023-11-14T22:13:20.123Z");
}

int main(void)
{
    RUN(same_millisecond_counts_up);
    RUN(clock_going_backwards);
    RUN(restart_with_persisted_stamp);
    RUN(counter_exhaustion_carries);
    RUN(observe_remote);
    RUN(iso_format);
    return tl_report();
}
