/*
 * Quiet hours; see quiet_hours.h. TZ is a process-wide setting of the C
 * library: it is changed only under `tz_lock`, and put back before the lock
 * is released.
 */
#include "quiet_hours.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static int two_digits(const char *s, unsigned max, unsigned *out)
{
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
        return -1;
    unsigned v = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static int hhmm(const char *s, unsigned *min)
{
    unsigned h, m;
    if (two_digits(s, 23, &h) < 0 || s[2] != ':' || two_digits(s + 3, 59, &m) < 0)
        return -1;
    *min = h * 60 + m;
    return 0;
}

int quiet_hours_parse(const char *s, struct quiet_hours *q, char *why, size_t why_cap)
{
    memset(q, 0, sizeof *q);
    if (!s || strlen(s) != 11 || s[5] != '-' || hhmm(s, &q->start_min) < 0 ||
        hhmm(s + 6, &q->end_min) < 0) {
        snprintf(why, why_cap,
                 "\"%.40s\" is not HH:MM-HH:MM in 24-hour local time (e.g. \"21:00-08:00\")",
                 s ? s : "");
        return -EINVAL;
    }
    if (q->start_min == q->end_min) {
        snprintf(why, why_cap, "\"%s\" starts and ends at the same minute", s);
        return -EINVAL;
    }
    q->set = 1;
    return 0;
}

int quiet_hours_zone_check(const char *zone, char *why, size_t why_cap)
{
    size_t n = zone ? strlen(zone) : 0;
    int ok = n > 0 && n < QUIET_HOURS_ZONE_MAX && zone[0] != '/' && !strstr(zone, "..");
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)zone[i]) || strchr("_+-/", zone[i]);
    if (!ok) {
        snprintf(why, why_cap,
                 "\"%.64s\" is not a time zone name of the TZ database (e.g. Africa/Nairobi)",
                 zone ? zone : "");
        return -EINVAL;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", zone);
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_cap, "\"%s\" is not in the TZ database (no %s)", zone, path);
        return -EINVAL;
    }
    return 0;
}

/* Runs with TZ set to zone: fills *tm with the local time of *t, or, with
 * to_epoch, converts the local time *tm to *t. Returns -1 on failure. */
static int in_zone(const char *zone, time_t *t, struct tm *tm, int to_epoch)
{
    char z[QUIET_HOURS_ZONE_MAX + 1];
    char why[160];
    if (quiet_hours_zone_check(zone, why, sizeof why) < 0)
        return -1;
    snprintf(z, sizeof z, ":%s", zone);
    pthread_mutex_lock(&tz_lock);
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    int rc = setenv("TZ", z, 1);
    if (rc == 0) {
        tzset();
        if (to_epoch) {
            time_t v = mktime(tm);
            if (v == (time_t)-1)
                rc = -1;
            else
                *t = v;
        } else if (!localtime_r(t, tm)) {
            rc = -1;
        }
    }
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    pthread_mutex_unlock(&tz_lock);
    return rc;
}

int quiet_hours_local_minute(const char *zone, int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    if (in_zone(zone, &t, &tm, 0) < 0)
        return -1;
    return tm.tm_hour * 60 + tm.tm_min;
}

int64_t quiet_hours_release(const char *zone, const struct quiet_hours *q, int64_t now_ms)
{
    if (!q || !q->set)
        return now_ms;
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    if (in_zone(zone, &t, &tm, 0) < 0)
        return now_ms;
    unsigned m = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
    int quiet, next_day = 0;
    if (q->start_min < q->end_min) {
        quiet = m >= q->start_min && m < q->end_min;
    } else {
        quiet = m >= q->start_min || m < q->end_min;
        next_day = m >= q->start_min;
    }
    if (!quiet)
        return now_ms;
    struct tm end = {0};
    end.tm_year = tm.tm_year;
    end.tm_mon = tm.tm_mon;
    end.tm_mday = tm.tm_mday + next_day; /* mktime normalises the month's end */
    end.tm_hour = (int)(q->end_min / 60);
    end.tm_min = (int)(q->end_min % 60);
    end.tm_isdst = -1; /* the zone decides whether that day is on summer time */
    time_t e;
    if (in_zone(zone, &e, &end, 1) < 0)
        return now_ms;
    int64_t ms = (int64_t)e * 1000;
    return ms > now_ms ? ms : now_ms;
}
