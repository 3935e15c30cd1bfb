/*
 * ISO 8601 formatting and parsing, written once for both daemons. The
 * parser checks a date by formatting it back, which refuses impossible
 * days without a calendar table of its own.
 */
#include "timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int format(int64_t ms, int with_ms, char *out, size_t cap)
{
    if (ms < 0)
        return -ERANGE;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm))
        return -ERANGE;
    char buf[64];
    int n;
    if (with_ms)
        n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    else
        n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -ERANGE;
    if ((size_t)n + 1 > cap)
        return -ENOBUFS;
    memcpy(out, buf, (size_t)n + 1);
    return n;
}

int timefmt_iso_ms(int64_t ms, char *out, size_t cap)
{
    return format(ms, 1, out, cap);
}

int timefmt_iso_s(int64_t ms, char *out, size_t cap)
{
    return format(ms, 0, out, cap);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Milliseconds since 1970 of a UTC date and time, or -1 when a field is
 * out of range or the time is before 1970. */
static int64_t utc_ms(int y, int mo, int d, int h, int mi, int se, int ms)
{
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    return (int64_t)t * 1000 + ms;
}

int timefmt_parse_iso_ms(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, ms;
    if (strlen(s) != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != '.' || s[23] != 'Z')
        return -EINVAL;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se) ||
        digits(s + 20, 3, &ms))
        return -EINVAL;
    if (y < 1970)
        return -EINVAL;
    int64_t v = utc_ms(y, mo, d, h, mi, se, ms);
    if (v < 0)
        return -EINVAL;
    /* round trip: refuses 31 February and friends */
    char back[TIMEFMT_ISO_BUF];
    if (timefmt_iso_ms(v, back, sizeof back) != 24 || strcmp(back, s) != 0)
        return -EINVAL;
    *out = v;
    return 0;
}

int timefmt_parse_iso(const char *text, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    int n = 0;
    if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -EINVAL;
    const char *p = text + 10;
    if (*p == 'T') {
        int m = 0;
        if (sscanf(p, "T%2d:%2d:%2d%n", &h, &mi, &se, &m) != 3 || m != 9)
            return -EINVAL;
        p += m;
        if (*p == '.') {
            int frac = 0, digits = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                if (digits < 3)
                    frac = frac * 10 + (*p - '0');
            for (; digits < 3; digits++)
                frac *= 10;
            ms = frac;
        }
        if (strcmp(p, "Z"))
            return -EINVAL;
    } else if (*p) {
        return -EINVAL;
    }
    int64_t v = utc_ms(y, mo, d, h, mi, se, ms);
    if (v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}
