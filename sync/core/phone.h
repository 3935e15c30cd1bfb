/*
 * Phone numbers to E.164 (+ and up to 15 digits), the key duplicate
 * detection compares. Numbers written internationally (+CC or 00CC) keep
 * their country; national numbers take the node region's calling code
 * after dropping its trunk prefix. This is deliberately not a full
 * numbering-plan library: it normalizes, it does not validate ranges.
 */
#ifndef OUTPOST_PHONE_H
#define OUTPOST_PHONE_H

#include "region.h"

#define PHONE_E164_MAX 17 /* "+", 15 digits, NUL */

/* Writes the E.164 form of `phone` into out. `region` may be NULL, in
 * which case only international numbers normalize. Returns 0, or -EINVAL
 * when the number cannot be put in E.164 form (out is then untouched). */
int phone_to_e164(const char *phone, const struct region_info *region, char out[PHONE_E164_MAX]);

#endif
