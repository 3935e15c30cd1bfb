/*
 * Phone numbers to their key: the E.164 form (+ and up to 15 digits) that
 * duplicate detection compares and that egress pseudonymizes, with
 * ";ext=" and the extension when the number has one (two people behind
 * one switchboard are two people). Numbers are read by libphonenumber
 * (phone_lib.cc) under the node region's country, so every spelling a
 * person dials there meets in one key: national with trunk prefix,
 * international with "+", "00" or the country's own international prefix
 * ("011" in the US, "8 10" in Russia), Argentina's mobile 9 and 15,
 * carrier codes in Brazil and Mexico, "(0)" after the country code.
 *
 * A number that is not valid in its country's numbering plan gets no key:
 * the store keeps it as typed, never uses it as a duplicate key, and
 * egress pseudonymizes the text as typed, never an E.164 guess
 * (docs/DATA_MODEL.md, "Phone numbers").
 */
#ifndef OUTPOST_PHONE_H
#define OUTPOST_PHONE_H

#include "region.h"

/* "+", 15 digits, ";ext=", 10 digits, NUL */
#define PHONE_E164_MAX 32

enum phone_verdict {
    PHONE_VALID = 0,
    PHONE_NOT_A_NUMBER, /* no telephone number in the text */
    PHONE_NO_COUNTRY,   /* national spelling and no region, or no such country code */
    PHONE_TOO_SHORT,    /* too few digits for its country */
    PHONE_TOO_LONG,     /* too many digits for its country */
    PHONE_NOT_IN_PLAN,  /* the right length, but no such number in its country */
};

/* Reads `phone` as dialled in `region` (NULL: only international
 * spellings read) and writes its key into out. Returns the verdict; out
 * is written only for PHONE_VALID. */
enum phone_verdict phone_parse(const char *phone, const struct region_info *region,
                               char out[PHONE_E164_MAX]);

/* Why a number has no key, for error messages and import reports:
 * "not a valid number for AR", written into buf. Returns buf. */
const char *phone_reason(enum phone_verdict v, const struct region_info *region, char *buf,
                         size_t cap);

/* phone_parse as 0 (valid, out written) or -EINVAL (no key). */
int phone_to_e164(const char *phone, const struct region_info *region, char out[PHONE_E164_MAX]);

/* The former normalizer (Outpost up to 0.1.0), kept as it was: the
 * region's calling code after its trunk prefix, '+' and '00' numbers as
 * written, no numbering plan. 0 and the key in out, or -EINVAL. The
 * suppression list still answers for entries hashed with it, and the
 * store's upgrade step compares it with phone_parse. */
int phone_legacy_e164(const char *phone, const struct region_info *region,
                      char out[PHONE_E164_MAX]);

/* What egress hashed for a phone number before keys came from
 * libphonenumber (Outpost up to 0.1.0: the region's calling code after its
 * trunk prefix, or, when that failed, a leading '+' and the digits), into
 * buf. Only the store's upgrade step calls it, to find the records whose
 * pseudonym changed and must be sent to HQ again. */
void phone_legacy_key(const char *phone, const struct region_info *region, char *buf, size_t cap);

#endif
