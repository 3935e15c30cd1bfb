/*
 * Call lists as CSV (docs/OUTREACH.md, "Printed mail and call lists"):
 * one row a due call with what the caller needs (name, E.164 number,
 * language, the script in that language, the consent decision and its
 * rule, the local call window) and the message id a result is recorded
 * against. Written beside its final name, synced and renamed into place.
 * A cell a spreadsheet would run as a formula is written as text.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_CALL_LIST_H
#define OUTPOST_CALL_LIST_H

#include <stddef.h>

#include "op_error.h"
#include "outreach_handout.h"
#include "quiet_hours.h"

/* The header row, comma-separated. */
#define CALL_LIST_COLUMNS "message,name,phone,language,script,consent,rule,call_window"

/* The call window a region's quiet hours for calls leave, in its time
 * zone: quiet hours 21:00-08:00 in America/Los_Angeles give
 * "08:00-21:00 America/Los_Angeles". "" when q is unset (calls at any
 * hour). out holds at least CALL_LIST_WINDOW_MAX bytes. */
#define CALL_LIST_WINDOW_MAX (12 + QUIET_HOURS_ZONE_MAX)
void call_list_window(const struct quiet_hours *q, const char *zone, char *out, size_t cap);

/* Writes the rows of h to path (via path.tmp, fsync, rename, fsync of the
 * directory). call_window is the same for every row (the region's hours
 * outside quiet hours; "" when the region has none). No file is left
 * behind on an error (call_list_window gives call_window). */
int call_list_write(const char *path, const struct outreach_handout *h, const char *call_window,
                    struct op_error *err);

#endif
