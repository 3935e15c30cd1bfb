/*
 * Tests for sync/toolkit/timefmt.c: both formats at known instants, leap years
 * and the last four-digit year, the caps, the strict parser's refusals
 * (impossible dates, other forms, ranges) and parse-format round trips.
 */
#include <errno.h>
#include <string.h>

#include "testlib.h"
#include "timefmt.h"

static void formats(void)
{
    char out[TIMEFMT_ISO_BUF];
    CHECK_EQ(timefmt_iso_ms(0, out, sizeof out), 24);
    CHECK_STR(out, "1970-01-01T00:00:00.000Z");
    CHECK_EQ(timefmt_iso_ms(INT64_C(1795514400007), out, sizeof out), 24);
    CHECK_STR(out, "2026-11-24T10:00:00.007Z");
    CHECK_EQ(timefmt_iso_s(INT64_C(1795514400999), out, sizeof out), 20);
    CHECK_STR(out, "2026-11-24T10:00:00Z"); /* truncated, not rounded */
    CHECK_EQ(timefmt_iso_ms(INT64_C(951782400000), out, sizeof out), 24);
    CHECK_STR(out, "2000-02-29T00:00:00.000Z"); /* 2000 is a leap year */
    CHECK_EQ(timefmt_iso_ms(TIMEFMT_MS_MAX, out, sizeof out), 24);
    CHECK_STR(out, "9999-12-31T23:59:59.999Z");
    CHECK_EQ(timefmt_iso_ms(TIMEFMT_MS_MAX + 1, out, sizeof out), 25);
    CHECK_STR(out, "10000-01-01T00:00:00.000Z");
    CHECK_EQ(timefmt_iso_ms(-1, out, sizeof out), -ERANGE);
    CHECK_EQ(timefmt_iso_s(-1000, out, sizeof out), -ERANGE);
}

static void caps(void)
{
    char out[TIMEFMT_ISO_BUF];
    memset(out, 'x', sizeof out);
    CHECK_EQ(timefmt_iso_ms(0, out, 24), -ENOBUFS); /* the NUL */
    CHECK_EQ(out[0], 'x');                          /* untouched */
    CHECK_EQ(timefmt_iso_ms(0, out, 25), 24);
    CHECK_EQ(timefmt_iso_s(0, out, 20), -ENOBUFS);
    CHECK_EQ(timefmt_iso_s(0, out, 21), 20);
    CHECK_STR(out, "1970-01-01T00:00:00Z");
}

static void parse(void)
{
    int64_t ms = 42;
    CHECK_EQ(timefmt_parse_iso_ms("2026-11-24T10:00:00.007Z", &ms), 0);
    CHECK_EQ(ms, INT64_C(1795514400007));
    CHECK_EQ(timefmt_parse_iso_ms("1970-01-01T00:00:00.000Z", &ms), 0);
    CHECK_EQ(ms, 0);
    CHECK_EQ(timefmt_parse_iso_ms("2024-02-29T12:00:00.000Z", &ms), 0);
    CHECK_EQ(timefmt_parse_iso_ms("9999-12-31T23:59:59.999Z", &ms), 0);
    CHECK_EQ(ms, TIMEFMT_MS_MAX);

    static const char *bad[] = {
        "2023-02-29T12:00:00.000Z", /* not a leap year */
        "1900-02-29T12:00:00.000Z", /* before 1970, and not a leap year either */
        "2100-02-29T12:00:00.000Z", /* century, not a leap year */
        "2026-04-31T00:00:00.000Z",
        "2026-13-01T00:00:00.000Z",
        "2026-00-01T00:00:00.000Z",
        "2026-01-00T00:00:00.000Z",
        "2026-01-01T24:00:00.000Z",
        "2026-01-01T00:60:00.000Z",
        "2026-01-01T00:00:60.000Z", /* no leap seconds: it is another instant's text */
        "1969-12-31T23:59:59.999Z",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.00Z",
        "2026-01-01T00:00:00.0000Z",
        "2026-01-01 00:00:00.000Z",
        "2026-01-01T00:00:00.000+00:00",
        "2026-01-01t00:00:00.000z",
        "2026-1-01T00:00:00.000Z",
        "+026-01-01T00:00:00.000Z",
        "2026-01-01T00:00: 0.000Z",
        "",
        "garbage"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 42;
        CHECK_EQ(timefmt_parse_iso_ms(bad[i], &ms), -EINVAL);
        CHECK_EQ(ms, 42); /* untouched */
    }
}

/* The forgiving form a user types: a date, seconds, any fraction. */
static void parse_forgiving(void)
{
    int64_t ms = 42;
    CHECK_EQ(timefmt_parse_iso("2026-11-24", &ms), 0);
    CHECK_EQ(ms, INT64_C(1795478400000));
    CHECK_EQ(timefmt_parse_iso("2026-11-24T10:00:00Z", &ms), 0);
    CHECK_EQ(ms, INT64_C(1795514400000));
    CHECK_EQ(timefmt_parse_iso("2026-11-24T10:00:00.0071Z", &ms), 0);
    CHECK_EQ(ms, INT64_C(1795514400007));
    CHECK_EQ(timefmt_parse_iso("2026-11-24T10:00:00.5Z", &ms), 0);
    CHECK_EQ(ms, INT64_C(1795514400500));

    static const char *bad[] = {
        "2026-11-24T10:00:00", "2026-11-24T10:00Z", "2026-11-24 10:00:00Z",  "2026-13-01",
        "1969-12-31",          "yesterday",         "2026-11-24T10:00:00ZZ", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 42;
        CHECK_EQ(timefmt_parse_iso(bad[i], &ms), -EINVAL);
        CHECK_EQ(ms, 42); /* untouched */
    }
}

static void round_trips(void)
{
    /* 1970 to 9999, with odd steps to land on every month and leap day */
    for (int64_t ms = 0; ms <= TIMEFMT_MS_MAX; ms += INT64_C(86400000) * 97 + 3600007) {
        char out[TIMEFMT_ISO_BUF];
        int64_t back = -1;
        CHECK_EQ(timefmt_iso_ms(ms, out, sizeof out), 24);
        CHECK_EQ(timefmt_parse_iso_ms(out, &back), 0);
        CHECK_EQ(back, ms);
    }
}

int main(void)
{
    RUN(formats);
    RUN(caps);
    RUN(parse);
    RUN(parse_forgiving);
    RUN(round_trips);
    return tl_report();
}
