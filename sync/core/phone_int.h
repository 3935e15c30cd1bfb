/*
 * The phone module's internal header: the C face of phone_lib.cc, the thin
 * C++ shim over libphonenumber (Google's numbering-plan library, Debian's
 * libphonenumber-dev). Only phone.c calls it; everything else uses phone.h.
 */
#ifndef OUTPOST_PHONE_INT_H
#define OUTPOST_PHONE_INT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What libphonenumber made of a text (the values of enum phone_verdict). */
enum phone_lib_result {
    PHONE_LIB_VALID = 0,
    PHONE_LIB_NOT_A_NUMBER = 1,
    PHONE_LIB_NO_COUNTRY = 2,
    PHONE_LIB_TOO_SHORT = 3,
    PHONE_LIB_TOO_LONG = 4,
    PHONE_LIB_INVALID = 5,
    PHONE_LIB_FAILED = 6,
};

/* Parses `text` as dialled in `country` (ISO 3166-1 alpha-2, "ZZ" for
 * none) and, when it is a valid number, writes its E.164 form into e164
 * and its extension digits ("" for none) into ext. Both buffers are
 * written only on PHONE_LIB_VALID; a result that does not fit is
 * PHONE_LIB_TOO_LONG. Never throws. */
int phone_lib_parse(const char *text, const char *country, char *e164, size_t e164_cap, char *ext,
                    size_t ext_cap);

#ifdef __cplusplus
}
#endif

#endif
