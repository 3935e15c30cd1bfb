/* Tests for sync/core/sync_sched.c: the sync window (with and without
 * wrapping midnight), the daily budget rule, UTC day numbers, and the
 * size and rate parser with its refusals. */
#include <errno.h>

#include "sync_sched.h"
#include "testlib.h"

static unsigned hm(unsigned h, unsigned m)
{
    return h * 60 + m;
}

static void window_parse(void)
{
    struct sync_window w;
    struct op_error e;
    CHECK_EQ(sync_window_parse("", &w, &e), 0);
    CHECK_EQ(w.always, 1);
    CHECK_EQ(sync_window_parse(NULL, &w, &e), 0);
    CHECK_EQ(w.always, 1);
    CHECK_EQ(sync_window_parse("19:00-06:30", &w, &e), 0);
    CHECK_EQ(w.always, 0);
    CHECK_EQ(w.start_min, hm(19, 0));
    CHECK_EQ(w.end_min, hm(6, 30));
    CHECK_EQ(sync_window_parse("00:00-23:59", &w, &e), 0);
    static const char *bad[] = {
        "19:00",       "7:00-9:00",   "24:00-06:00", "19:60-06:00", "19:00-06:00x",
        "19:00 06:00", "ab:cd-ef:gh", "08:00-08:00", "-",           "19:00-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op_error_clear(&e);
        CHECK_EQ(sync_window_parse(bad[i], &w, &e), -EINVAL);
        CHECK_STR(e.field, "sync_window");
    }
    CHECK_CONTAINS(e.msg, "HH:MM-HH:MM");
    (void)sync_window_parse("08:00-08:00", &w, &e);
    CHECK_CONTAINS(e.msg, "same minute");
}

static void window_contains(void)
{
    struct sync_window w;
    struct op_error e;
    CHECK_EQ(sync_window_parse("", &w, &e), 0);
    CHECK_EQ(sync_window_contains(&w, hm(12, 0)), 1);
    CHECK_EQ(sync_window_wait_ms(&w, hm(12, 0), 30), 0);

    /* a day window: start inclusive, end exclusive */
    CHECK_EQ(sync_window_parse("09:00-17:00", &w, &e), 0);
    CHECK_EQ(sync_window_contains(&w, hm(8, 59)), 0);
    CHECK_EQ(sync_window_contains(&w, hm(9, 0)), 1);
    CHECK_EQ(sync_window_contains(&w, hm(16, 59)), 1);
    CHECK_EQ(sync_window_contains(&w, hm(17, 0)), 0);
    CHECK_EQ(sync_window_contains(&w, hm(23, 0)), 0);
    CHECK_EQ(sync_window_wait_ms(&w, hm(8, 0), 0), 60u * 60000u);
    CHECK_EQ(sync_window_wait_ms(&w, hm(8, 59), 30), 30000u);
    CHECK_EQ(sync_window_wait_ms(&w, hm(17, 0), 0), 16u * 3600000u);
    CHECK_EQ(sync_window_wait_ms(&w, hm(10, 0), 0), 0);

    /* a night window wrapping midnight */
    CHECK_EQ(sync_window_parse("22:30-05:00", &w, &e), 0);
    CHECK_EQ(sync_window_contains(&w, hm(22, 29)), 0);
    CHECK_EQ(sync_window_contains(&w, hm(22, 30)), 1);
    CHECK_EQ(sync_window_contains(&w, hm(23, 59)), 1);
    CHECK_EQ(sync_window_contains(&w, hm(0, 0)), 1);
    CHECK_EQ(sync_window_contains(&w, hm(4, 59)), 1);
    CHECK_EQ(sync_window_contains(&w, hm(5, 0)), 0);
    CHECK_EQ(sync_window_contains(&w, hm(12, 0)), 0);
    CHECK_EQ(sync_window_wait_ms(&w, hm(5, 0), 0), (17u * 60u + 30u) * 60000u);
    CHECK_EQ(sync_window_wait_ms(&w, hm(1, 0), 0), 0);

    /* how long an open window stays open: an upload is paused then */
    CHECK_EQ(sync_window_left_ms(&w, hm(4, 59), 15), 45000u);
    CHECK_EQ(sync_window_left_ms(&w, hm(23, 0), 0), 6u * 3600000u);
    CHECK_EQ(sync_window_left_ms(&w, hm(5, 0), 0), 0); /* closed */
    CHECK_EQ(sync_window_left_ms(&w, hm(12, 0), 0), 0);
    CHECK_EQ(sync_window_parse("09:00-17:00", &w, &e), 0);
    CHECK_EQ(sync_window_left_ms(&w, hm(9, 0), 0), 8u * 3600000u);
    CHECK_EQ(sync_window_left_ms(&w, hm(16, 59), 59), 1000u);
    CHECK_EQ(sync_window_parse("", &w, &e), 0);
    CHECK_EQ(sync_window_left_ms(&w, hm(3, 0), 0), UINT64_MAX);
}

static void budget(void)
{
    CHECK_EQ(sync_budget_left(0, 1u << 30), UINT64_MAX); /* unlimited */
    CHECK_EQ(sync_budget_left(1000, 0), 1000);           /* a new day */
    CHECK_EQ(sync_budget_left(1000, 400), 600);
    CHECK_EQ(sync_budget_left(1000, 999), 1);
    CHECK_EQ(sync_budget_left(1000, 1000), 0); /* spent */
    CHECK_EQ(sync_budget_left(1000, 1500), 0); /* overspent by the last chunk */
    CHECK_EQ(sync_utc_day(0), 0);
    CHECK_EQ(sync_utc_day(86399999), 0);
    CHECK_EQ(sync_utc_day(86400000), 1);
    CHECK_EQ(sync_utc_day(-1), -1);
    CHECK_EQ(sync_utc_day(INT64_C(1764000000000)), 20416); /* 2025-11-24T16:00Z */
}

static void sizes(void)
{
    struct op_error e;
    uint64_t v = 0;
    static const struct {
        const char *text;
        int bits;
        uint64_t want;
    } ok[] = {
        {"0", 0, 0},
        {"480000", 0, 480000},
        {"480KB", 0, 480000},
        {"480 kb", 0, 480000},
        {"256MiB", 0, 268435456},
        {"1GB", 0, 1000000000},
        {"2GiB", 0, 2147483648u},
        {"12B", 0, 12},
        {"64kbit", 1, 8000},
        {"64 kbit/s", 1, 8000},
        {"1Mbit", 1, 125000},
        {"10bit", 1, 1},
        {"8KB/s", 1, 8000},
        {"8000", 1, 8000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        v = 12345;
        CHECK_EQ(sync_size_parse(ok[i].text, ok[i].bits, &v, &e), 0);
        CHECK_EQ(v, ok[i].want);
    }
    static const struct {
        const char *text;
        int bits, rc;
    } bad[] = {
        {"", 0, -EINVAL},
        {"-1", 0, -EINVAL},
        {"1.5MB", 0, -EINVAL},
        {"64kbit", 0, -EINVAL},
        {"8KB/s", 0, -EINVAL},
        {"10 parsecs", 0, -EINVAL},
        {"KB", 0, -EINVAL},
        {"5 MB/h", 1, -EINVAL},
        {"99999999999999999999", 0, -ERANGE},
        {"9000000000GiB", 0, -ERANGE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        CHECK_EQ(sync_size_parse(bad[i].text, bad[i].bits, &v, &e), bad[i].rc);
        CHECK_EQ(v, 7); /* untouched on failure */
    }
    (void)sync_size_parse("64kbit", 0, &v, &e);
    CHECK_CONTAINS(e.msg, "480KB");
    (void)sync_size_parse("x", 1, &v, &e);
    CHECK_CONTAINS(e.msg, "kbit");
}

int main(void)
{
    RUN(window_parse);
    RUN(window_contains);
    RUN(budget);
    RUN(sizes);
    return tl_report();
}
