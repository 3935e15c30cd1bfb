/*
 * When and how fast the node may use its uplink: the sync window (local
 * time of day, "HH:MM-HH:MM", may wrap past midnight), the daily byte
 * budget (counted per UTC day) and the byte sizes and rates the config
 * accepts ("480KB", "256MiB", "64kbit"). Pure functions, no clock of their
 * own: the caller passes the time, so every rule is testable. The
 * invariant: a text either parses completely into a value or is refused
 * with a message that says what is accepted; nothing is guessed.
 */
#ifndef OUTPOST_SYNC_SCHED_H
#define OUTPOST_SYNC_SCHED_H

#include <stdint.h>

#include "op_error.h"

struct sync_window {
    int always;         /* 1: no window configured, sync any time */
    unsigned start_min; /* minute of the day the window opens, 0..1439 */
    unsigned end_min;   /* minute it closes (exclusive); < start_min wraps midnight */
};

/* "" (always) or "HH:MM-HH:MM" with HH 00..23 and MM 00..59, start != end.
 * Returns 0 and *out, or -EINVAL with err saying what is expected. */
int sync_window_parse(const char *s, struct sync_window *out, struct op_error *err);

/* 1 when minute_of_day (0..1439, local time) is inside the window. */
int sync_window_contains(const struct sync_window *w, unsigned minute_of_day);

/* Milliseconds from `minute_of_day` (plus `second` 0..59) until the window
 * next opens; 0 when it is open now. */
uint64_t sync_window_wait_ms(const struct sync_window *w, unsigned minute_of_day, unsigned second);

/* Milliseconds from `minute_of_day` (plus `second`) until the window
 * closes; 0 when it is closed now; UINT64_MAX when there is no window. */
uint64_t sync_window_left_ms(const struct sync_window *w, unsigned minute_of_day, unsigned second);

/* A byte size or, with allow_bits, a rate in bytes per second: a decimal
 * number and an optional unit (case-insensitive, spaces allowed before
 * it, "/s" allowed after it): B; KB MB GB (powers of 1000); KiB MiB GiB
 * (powers of 1024); and with allow_bits: bit kbit Mbit Gbit (powers of
 * 1000 bits, divided by 8, rounded down). Returns 0 and *out; -EINVAL for
 * anything else; -ERANGE past 2^63. */
int sync_size_parse(const char *s, int allow_bits, uint64_t *out, struct op_error *err);

/* The UTC day number (days since 1970-01-01) of a Unix time in ms. */
int64_t sync_utc_day(int64_t unix_ms);

/* Bytes an upload may still send today under a daily budget (0 =
 * unlimited: UINT64_MAX) with sent_today bytes already sent; 0 when the
 * budget is spent. An upload starts only while this is above 0 and is
 * paused when it has sent this much (a segment larger than the budget
 * goes over several days, resumed where HQ stopped). */
uint64_t sync_budget_left(uint64_t budget, uint64_t sent_today);

#endif
