/*
 * Quiet hours: the times of day, in a region's own time zone, when a
 * person may not be reached by SMS or phone (docs/OUTREACH.md "Quiet
 * hours", docs/REGION_POLICY.md locale.quiet_hours). This module parses
 * "HH:MM-HH:MM", checks an IANA zone name against the system's TZ database,
 * and answers "may I send now, and if not, when?" for an instant.
 *
 * Local time comes from the C library (localtime_r, mktime) with TZ set to
 * the zone under a process-wide lock and put back afterwards, so a
 * daylight-saving change moves the end of the quiet hours with the wall
 * clock. No store, no network, no logging.
 */
#ifndef OUTPOST_QUIET_HOURS_H
#define OUTPOST_QUIET_HOURS_H

#include <stddef.h>
#include <stdint.h>

#define QUIET_HOURS_ZONE_MAX 64

/* [start, end) in minutes of the local day; across midnight when
 * start > end. set == 0: no quiet hours. */
struct quiet_hours {
    int set;
    unsigned start_min;
    unsigned end_min;
};

/* "HH:MM-HH:MM" (00:00..23:59, start != end) into *q. -EINVAL with a
 * sentence in why (why_cap bytes) on anything else. */
int quiet_hours_parse(const char *s, struct quiet_hours *q, char *why, size_t why_cap);

/* 0 when zone names a zone of the TZ database (a file under $TZDIR or
 * /usr/share/zoneinfo, name made of letters, digits, _ + - and /, no ".."),
 * else -EINVAL with why. */
int quiet_hours_zone_check(const char *zone, char *why, size_t why_cap);

/* The instant a message may go: now_ms itself outside the quiet hours,
 * else the end of the quiet hours in zone's local time (the next day's
 * when the hours cross midnight and it is evening). A zone that cannot be
 * read (or q unset) answers now_ms. */
int64_t quiet_hours_release(const char *zone, const struct quiet_hours *q, int64_t now_ms);

/* The local minute of the day (0..1439) at now_ms in zone, -1 if the zone
 * cannot be read. */
int quiet_hours_local_minute(const char *zone, int64_t now_ms);

#endif
