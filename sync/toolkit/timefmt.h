/*
 * ISO 8601 times in UTC as the product writes them: Unix milliseconds to
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" (or "YYYY-MM-DDTHH:MM:SSZ" where only
 * seconds are shown), and the strict parser of the millisecond form. The
 * invariant: the parser accepts exactly what the formatter writes, so
 * parse and format round-trip and equal times compare equal as strings.
 */
#ifndef OUTPOST_TIMEFMT_H
#define OUTPOST_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for either form of any year up to 9999, with the NUL. */
#define TIMEFMT_ISO_BUF 32

/* 9999-12-31T23:59:59.999Z, the last time with a four-digit year. */
#define TIMEFMT_MS_MAX INT64_C(253402300799999)

/* Writes ms (milliseconds since 1970, UTC) as "YYYY-MM-DDTHH:MM:SS.mmmZ"
 * and a NUL into out (cap bytes). A year past 9999 is written with all
 * its digits. Returns the length without the NUL; -ERANGE for a negative
 * ms or one the C library cannot break down; -ENOBUFS when it does not
 * fit. out is written only on success. */
int timefmt_iso_ms(int64_t ms, char *out, size_t cap);

/* The same without the milliseconds (truncated): "YYYY-MM-DDTHH:MM:SSZ". */
int timefmt_iso_s(int64_t ms, char *out, size_t cap);

/* Strict "YYYY-MM-DDTHH:MM:SS.mmmZ" (the form timefmt_iso_ms writes, years
 * 1970 to 9999) to milliseconds in *out. Returns 0, or -EINVAL for
 * anything else: another length or separator, a non-digit, a date that
 * does not exist (31 February, 29 February of a common year) or a time
 * out of range. *out is written only on success. */
int timefmt_parse_iso_ms(const char *s, int64_t *out);

/* The forgiving parser for times a user types: "YYYY-MM-DD" (midnight),
 * "YYYY-MM-DDTHH:MM:SSZ", or that with a fraction of any length (read to
 * the millisecond). A day past the month's end rolls over as timegm does.
 * Returns 0, or -EINVAL (also before 1970); *out is written only on
 * success. */
int timefmt_parse_iso(const char *text, int64_t *out);

#endif
