/*
 * SMS text: which coding a text needs on the air and how many segments it
 * takes, which is what an SMS costs (docs/OUTREACH.md "The text"). GSM-7
 * is the GSM 03.38 default alphabet plus its extension table (the
 * extension characters ^ { } \ [ ] ~ | and the euro sign take two
 * septets); any other character makes the whole text UCS-2, counted in
 * UTF-16 code units (a character beyond the BMP takes two). One segment
 * holds 160 septets or 70 units; a longer text is sent concatenated, 153
 * or 67 per segment (the rest is the concatenation header).
 *
 * Pure: no store, no network, no logging.
 */
#ifndef OUTPOST_SMS_TEXT_H
#define OUTPOST_SMS_TEXT_H

#include <stddef.h>

enum sms_coding { SMS_GSM7, SMS_UCS2 };

struct sms_count {
    enum sms_coding coding;
    unsigned units;    /* septets (GSM-7) or UTF-16 code units (UCS-2) */
    unsigned segments; /* 1 for an empty text */
};

/* Counts text (NUL-terminated UTF-8). -EINVAL when it is not valid UTF-8
 * (*bad_offset, may be NULL, gets the byte offset). */
int sms_text_count(const char *text, struct sms_count *out, long *bad_offset);

/* "gsm7" or "ucs2". */
const char *sms_coding_name(enum sms_coding c);

#endif
