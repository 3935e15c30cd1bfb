/* Tests for sync/core/quiet_hours.c: parsing "HH:MM-HH:MM" with precise
 * refusals, zone names checked against the TZ database, and the instant a
 * message may go: inside and outside the hours, across midnight, and
 * across a daylight-saving change in a US zone (the end follows the wall
 * clock, not a fixed offset). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quiet_hours.h"
#include "testlib.h"

/* UTC instant of a calendar time, for readable cases. */
static int64_t utc_ms(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm) * 1000;
}

static void parses_and_refuses(void)
{
    struct quiet_hours q;
    char why[200];
    CHECK_EQ(quiet_hours_parse("21:00-08:00", &q, why, sizeof why), 0);
    CHECK(q.set);
    CHECK_EQ(q.start_min, 21 * 60);
    CHECK_EQ(q.end_min, 8 * 60);
    CHECK_EQ(quiet_hours_parse("00:00-23:59", &q, why, sizeof why), 0);
    CHECK_EQ(q.end_min, 23 * 60 + 59);
    static const char *const bad[] = {"",
                                      "21:00",
                                      "9pm-8am",
                                      "21:00-8:00",
                                      "24:00-08:00",
                                      "21:60-08:00",
                                      "21:00 08:00",
                                      "21:00-08:00x",
                                      "2a:00-08:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(quiet_hours_parse(bad[i], &q, why, sizeof why), -EINVAL);
        CHECK_CONTAINS(why, "is not HH:MM-HH:MM");
        CHECK(!q.set);
    }
    CHECK_EQ(quiet_hours_parse("08:00-08:00", &q, why, sizeof why), -EINVAL);
    CHECK_CONTAINS(why, "starts and ends at the same minute");
}

static void zones_from_the_database(void)
{
    char why[200];
    CHECK_EQ(quiet_hours_zone_check("Africa/Nairobi", why, sizeof why), 0);
    CHECK_EQ(quiet_hours_zone_check("America/Argentina/Buenos_Aires", why, sizeof why), 0);
    CHECK_EQ(quiet_hours_zone_check("Mars/Olympus", why, sizeof why), -EINVAL);
    CHECK_CONTAINS(why, "\"Mars/Olympus\" is not in the TZ database");
    static const char *const bad[] = {"", "/etc/passwd", "../../etc/passwd", "Europe/Berlin;rm",
                                      "Europe/Berlin "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(quiet_hours_zone_check(bad[i], why, sizeof why), -EINVAL);
        CHECK_CONTAINS(why, "is not a time zone name");
    }
    /* A directory of the database is no zone. */
    CHECK_EQ(quiet_hours_zone_check("America", why, sizeof why), -EINVAL);
}

static void release_in_nairobi(void)
{
    struct quiet_hours q;
    char why[200];
    CHECK_EQ(quiet_hours_parse("20:00-08:00", &q, why, sizeof why), 0);
    const char *z = "Africa/Nairobi"; /* UTC+3, no summer time */
    /* 12:00 local: not quiet, goes now. */
    int64_t noon = utc_ms(2026, 3, 10, 9, 0);
    CHECK_EQ(quiet_hours_release(z, &q, noon), noon);
    CHECK_EQ(quiet_hours_local_minute(z, noon), 12 * 60);
    /* 19:59 local: still allowed; 20:00 local: quiet until 08:00 tomorrow. */
    int64_t before = utc_ms(2026, 3, 10, 16, 59);
    CHECK_EQ(quiet_hours_release(z, &q, before), before);
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 3, 10, 17, 0)), utc_ms(2026, 3, 11, 5, 0));
    /* 03:30 local after midnight: quiet until 08:00 the same day. */
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 3, 11, 0, 30)), utc_ms(2026, 3, 11, 5, 0));
    /* 08:00 local: the end is not quiet. */
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 3, 11, 5, 0)), utc_ms(2026, 3, 11, 5, 0));
    /* The month's last evening ends on the next month's first morning. */
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 3, 31, 19, 0)), utc_ms(2026, 4, 1, 5, 0));
    /* Unset quiet hours or an unreadable zone never hold a message. */
    struct quiet_hours none = {0};
    int64_t night = utc_ms(2026, 3, 10, 22, 0);
    CHECK_EQ(quiet_hours_release(z, &none, night), night);
    CHECK_EQ(quiet_hours_release("Mars/Olympus", &q, night), night);
}

static void daytime_window(void)
{
    struct quiet_hours q;
    char why[200];
    CHECK_EQ(quiet_hours_parse("12:00-14:00", &q, why, sizeof why), 0);
    CHECK_EQ(quiet_hours_release("UTC", &q, utc_ms(2026, 5, 5, 13, 0)), utc_ms(2026, 5, 5, 14, 0));
    CHECK_EQ(quiet_hours_release("UTC", &q, utc_ms(2026, 5, 5, 14, 0)), utc_ms(2026, 5, 5, 14, 0));
    CHECK_EQ(quiet_hours_release("UTC", &q, utc_ms(2026, 5, 5, 11, 59)),
             utc_ms(2026, 5, 5, 11, 59));
}

/* US TCPA hours (21:00-08:00) in Los Angeles across the spring-forward
 * night of 2026-03-08 (02:00 PST becomes 03:00 PDT) and the fall-back
 * night of 2026-11-01 (02:00 PDT becomes 01:00 PST). */
static void across_daylight_saving(void)
{
    struct quiet_hours q;
    char why[200];
    CHECK_EQ(quiet_hours_parse("21:00-08:00", &q, why, sizeof why), 0);
    const char *z = "America/Los_Angeles";
    /* 22:00 PST on Saturday 7 March (06:00 UTC on the 8th): the end is
     * 08:00 PDT on the 8th = 15:00 UTC, not 16:00 as a fixed -8 would say. */
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 3, 8, 6, 0)), utc_ms(2026, 3, 8, 15, 0));
    /* 21:30 PDT on Saturday 31 October (04:30 UTC on 1 November): the end
     * is 08:00 PST on 1 November = 16:00 UTC. */
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 11, 1, 4, 30)), utc_ms(2026, 11, 1, 16, 0));
    /* 07:59 PST is still quiet, 08:00 PST is not (winter offset). */
    CHECK_EQ(quiet_hours_local_minute(z, utc_ms(2026, 11, 1, 15, 59)), 7 * 60 + 59);
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 11, 1, 15, 59)), utc_ms(2026, 11, 1, 16, 0));
    CHECK_EQ(quiet_hours_release(z, &q, utc_ms(2026, 11, 1, 16, 0)), utc_ms(2026, 11, 1, 16, 0));
    /* The process's own TZ is left as it was. */
    const char *tz = getenv("TZ");
    CHECK(tz == NULL || strcmp(tz, ":America/Los_Angeles") != 0);
}

int main(void)
{
    RUN(parses_and_refuses);
    RUN(zones_from_the_database);
    RUN(release_in_nairobi);
    RUN(daytime_window);
    RUN(across_daylight_saving);
    return tl_report();
}
