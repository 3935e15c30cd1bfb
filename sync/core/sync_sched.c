/*
 * Sync window, daily budget and size parsing; see sync_sched.h. Times are
 * minutes of the local day passed in by the caller; the budget day is the
 * UTC day, so a node's budget resets at the same instant whatever its
 * time zone or daylight saving does.
 */
#include "sync_sched.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

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

int sync_window_parse(const char *s, struct sync_window *out, struct op_error *err)
{
    struct sync_window w = {0};
    if (!s || !*s) {
        w.always = 1;
        *out = w;
        return 0;
    }
    unsigned h1, m1, h2, m2;
    if (strlen(s) != 11 || s[2] != ':' || s[5] != '-' || s[8] != ':' || two_digits(s, 23, &h1) ||
        two_digits(s + 3, 59, &m1) || two_digits(s + 6, 23, &h2) || two_digits(s + 9, 59, &m2))
        return op_error_set(err, -EINVAL, "sync_window",
                            "expected HH:MM-HH:MM in local time (e.g. 19:00-06:30), or nothing "
                            "for any time; got '%.40s'",
                            s);
    w.start_min = h1 * 60 + m1;
    w.end_min = h2 * 60 + m2;
    if (w.start_min == w.end_min)
        return op_error_set(err, -EINVAL, "sync_window",
                            "'%s' opens and closes at the same minute; leave it empty to sync "
                            "at any time",
                            s);
    *out = w;
    return 0;
}

int sync_window_contains(const struct sync_window *w, unsigned minute_of_day)
{
    if (w->always)
        return 1;
    unsigned m = minute_of_day % 1440;
    if (w->start_min < w->end_min)
        return m >= w->start_min && m < w->end_min;
    return m >= w->start_min || m < w->end_min; /* wraps midnight */
}

/* Milliseconds from minute_of_day:second until the clock next reads
 * target_min:00 (0 when that is now). */
static uint64_t ms_until(unsigned target_min, unsigned minute_of_day, unsigned second)
{
    unsigned m = minute_of_day % 1440;
    unsigned mins = (target_min + 1440 - m) % 1440;
    uint64_t ms = (uint64_t)mins * 60000u;
    uint64_t s = (uint64_t)(second % 60) * 1000u;
    return ms > s ? ms - s : 0;
}

uint64_t sync_window_wait_ms(const struct sync_window *w, unsigned minute_of_day, unsigned second)
{
    if (sync_window_contains(w, minute_of_day))
        return 0;
    return ms_until(w->start_min, minute_of_day, second);
}

uint64_t sync_window_left_ms(const struct sync_window *w, unsigned minute_of_day, unsigned second)
{
    if (w->always)
        return UINT64_MAX;
    if (!sync_window_contains(w, minute_of_day))
        return 0;
    return ms_until(w->end_min, minute_of_day, second);
}

struct unit {
    const char *name;
    uint64_t mul, div;
    int bits;
};

static const struct unit units[] = {
    {"", 1, 1, 0},
    {"b", 1, 1, 0},
    {"kb", 1000, 1, 0},
    {"mb", 1000000, 1, 0},
    {"gb", 1000000000, 1, 0},
    {"kib", 1024, 1, 0},
    {"mib", 1024 * 1024, 1, 0},
    {"gib", 1024 * 1024 * 1024, 1, 0},
    {"bit", 1, 8, 1},
    {"kbit", 1000, 8, 1},
    {"mbit", 1000000, 8, 1},
    {"gbit", 1000000000, 8, 1},
};

int sync_size_parse(const char *s, int allow_bits, uint64_t *out, struct op_error *err)
{
    const char *what = allow_bits ? "a rate: a number of bytes per second with an optional unit "
                                    "(B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit), e.g. "
                                    "64kbit"
                                  : "a size: a number with an optional unit (B, KB, MB, GB, KiB, "
                                    "MiB, GiB), e.g. 480KB";
    if (!s)
        s = "";
    const char *p = s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return op_error_set(err, -EINVAL, NULL, "expected %s; got '%.40s'", what, s);
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return op_error_set(err, -ERANGE, NULL, "'%.40s' is too large", s);
        v = v * 10 + d;
    }
    while (*p == ' ')
        p++;
    char u[8];
    size_t n = strcspn(p, "/");
    if (n >= sizeof u || (p[n] && strcmp(p + n, "/s") != 0))
        return op_error_set(err, -EINVAL, NULL, "expected %s; got '%.40s'", what, s);
    if (p[n] && !allow_bits)
        return op_error_set(err, -EINVAL, NULL, "expected %s; got '%.40s'", what, s);
    memcpy(u, p, n);
    u[n] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(u, units[i].name) != 0)
            continue;
        if (units[i].bits && !allow_bits)
            break;
        if (v > (UINT64_MAX >> 1) / units[i].mul)
            return op_error_set(err, -ERANGE, NULL, "'%.40s' is too large", s);
        *out = v * units[i].mul / units[i].div;
        return 0;
    }
    return op_error_set(err, -EINVAL, NULL, "expected %s; got '%.40s'", what, s);
}

int64_t sync_utc_day(int64_t unix_ms)
{
    int64_t d = unix_ms / 86400000;
    if (unix_ms < 0 && unix_ms % 86400000)
        d--;
    return d;
}

uint64_t sync_budget_left(uint64_t budget, uint64_t sent_today)
{
    if (!budget)
        return UINT64_MAX;
    return sent_today < budget ? budget - sent_today : 0;
}
