/* Phone keys through libphonenumber; see phone.h. */
#include "phone.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "phone_int.h"

/* libphonenumber reads at most 250 characters; a longer text is no number */
#define PHONE_TEXT_MAX 250

enum phone_verdict phone_parse(const char *phone, const struct region_info *region,
                               char out[PHONE_E164_MAX])
{
    if (!phone || strnlen(phone, PHONE_TEXT_MAX + 1) > PHONE_TEXT_MAX)
        return PHONE_NOT_A_NUMBER;
    char e164[17], ext[11]; /* "+" and 15 digits; up to 10 extension digits */
    /* A number of digits and separators only is handed over without the
     * separators: the library's text extraction (regular expressions) is
     * most of its cost, and the digits mean the same without them. */
    char packed[PHONE_TEXT_MAX + 1];
    size_t k = 0;
    const char *p;
    for (p = phone; *p; p++) {
        if ((*p >= '0' && *p <= '9') || *p == '+')
            packed[k++] = *p;
        else if (!strchr(" ()./-", *p))
            break;
    }
    packed[k] = '\0';
    int r = phone_lib_parse(*p ? phone : packed, region ? region->country : "ZZ", e164, sizeof e164,
                            ext, sizeof ext);
    switch (r) {
    case PHONE_LIB_VALID:
        break;
    case PHONE_LIB_NO_COUNTRY:
        return PHONE_NO_COUNTRY;
    case PHONE_LIB_TOO_SHORT:
        return PHONE_TOO_SHORT;
    case PHONE_LIB_TOO_LONG:
        return PHONE_TOO_LONG;
    case PHONE_LIB_INVALID:
        return PHONE_NOT_IN_PLAN;
    default:
        return PHONE_NOT_A_NUMBER;
    }
    if (ext[0])
        snprintf(out, PHONE_E164_MAX, "%s;ext=%s", e164, ext);
    else
        snprintf(out, PHONE_E164_MAX, "%s", e164);
    return PHONE_VALID;
}

const char *phone_reason(enum phone_verdict v, const struct region_info *region, char *buf,
                         size_t cap)
{
    const char *where = region ? region->country : "any country";
    switch (v) {
    case PHONE_VALID:
        snprintf(buf, cap, "a valid number");
        break;
    case PHONE_NO_COUNTRY:
        snprintf(buf, cap,
                 region ? "no such country calling code"
                        : "a national number and no region to read it in (write it with +)");
        break;
    case PHONE_TOO_SHORT:
        snprintf(buf, cap, "too few digits (read as dialled in %s)", where);
        break;
    case PHONE_TOO_LONG:
        snprintf(buf, cap, "too many digits (read as dialled in %s)", where);
        break;
    case PHONE_NOT_IN_PLAN:
        snprintf(buf, cap, "no such number in its country's numbering plan (read as dialled in %s)",
                 where);
        break;
    case PHONE_NOT_A_NUMBER:
    default:
        snprintf(buf, cap, "not a telephone number");
        break;
    }
    return buf;
}

int phone_to_e164(const char *phone, const struct region_info *region, char out[PHONE_E164_MAX])
{
    return phone_parse(phone, region, out) == PHONE_VALID ? 0 : -EINVAL;
}

int phone_legacy_e164(const char *phone, const struct region_info *region, char out[PHONE_E164_MAX])
{
    char d[32];
    size_t n = 0;
    int plus = 0;
    const char *p = phone;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+') {
        plus = 1;
        p++;
    }
    for (; *p; p++) {
        if (isdigit((unsigned char)*p)) {
            if (n + 1 >= sizeof d)
                return -EINVAL;
            d[n++] = *p;
        } else if (!strchr(" ()./-", *p)) {
            return -EINVAL;
        }
    }
    d[n] = '\0';
    const char *digits = d;
    char buf[40];
    if (!plus && n > 2 && d[0] == '0' && d[1] == '0') {
        digits = d + 2;
    } else if (!plus) {
        if (!region)
            return -EINVAL;
        const char *national = d;
        size_t tl = strlen(region->trunk_prefix);
        if (tl && !strncmp(d, region->trunk_prefix, tl))
            national = d + tl;
        size_t cl = strlen(region->calling_code), nl = strlen(national);
        if (cl + nl + 1 > sizeof buf)
            return -EINVAL;
        memcpy(buf, region->calling_code, cl);
        memcpy(buf + cl, national, nl + 1);
        digits = buf;
    }
    size_t len = strlen(digits);
    if (len < 7 || len > 15 || digits[0] == '0')
        return -EINVAL;
    out[0] = '+';
    memcpy(out + 1, digits, len + 1);
    return 0;
}

void phone_legacy_key(const char *phone, const struct region_info *region, char *buf, size_t cap)
{
    /* egress trimmed the text first */
    char t[PHONE_TEXT_MAX + 1], e164[PHONE_E164_MAX];
    const char *p = phone;
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strnlen(p, PHONE_TEXT_MAX);
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    memcpy(t, p, n);
    t[n] = '\0';
    if (phone_legacy_e164(t, region, e164) == 0) {
        snprintf(buf, cap, "%s", e164);
        return;
    }
    /* then kept a leading '+' and the digits */
    size_t k = 0;
    if (t[0] == '+' && k + 1 < cap)
        buf[k++] = '+';
    for (p = t; *p && k + 1 < cap; p++)
        if (*p >= '0' && *p <= '9')
            buf[k++] = *p;
    if (cap)
        buf[k] = '\0';
}
