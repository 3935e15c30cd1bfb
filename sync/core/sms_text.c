/*
 * SMS coding and segments; see sms_text.h. The tables are GSM 03.38
 * (3GPP TS 23.038, 6.2.1 and its extension table 6.2.1.1) as Unicode code
 * points.
 */
#include "sms_text.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* The default alphabet's characters outside printable ASCII. */
static const uint32_t gsm_basic_extra[] = {
    0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x00D8, 0x00F8, 0x00C5,
    0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E,
    0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
    0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, '\n',   '\r',
};

/* 1: one septet, 2: an extension character (escape + septet), 0: not GSM-7. */
static int gsm_septets(uint32_t cp)
{
    if (cp == '^' || cp == '{' || cp == '}' || cp == '\\' || cp == '[' || cp == ']' || cp == '~' ||
        cp == '|' || cp == 0x20AC || cp == '\f')
        return 2;
    if (cp >= 0x20 && cp < 0x7F && cp != '`')
        return 1;
    for (size_t i = 0; i < sizeof gsm_basic_extra / sizeof gsm_basic_extra[0]; i++)
        if (gsm_basic_extra[i] == cp)
            return 1;
    return 0;
}

/* The code point at *p (valid UTF-8), advancing p. */
static uint32_t next_cp(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t cp;
    if (s[0] < 0x80) {
        cp = s[0];
        *p += 1;
    } else if (s[0] < 0xE0) {
        cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        *p += 2;
    } else if (s[0] < 0xF0) {
        cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        *p += 3;
    } else {
        cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
             ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        *p += 4;
    }
    return cp;
}

int sms_text_count(const char *text, struct sms_count *out, long *bad_offset)
{
    size_t len = strlen(text);
    long bad = utf8_bad_offset(text, len, 0);
    if (bad >= 0) {
        if (bad_offset)
            *bad_offset = bad;
        return -EINVAL;
    }
    unsigned septets = 0, units = 0;
    int gsm = 1;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        uint32_t cp = next_cp(&p);
        int s = gsm_septets(cp);
        if (!s)
            gsm = 0;
        septets += (unsigned)s;
        units += cp > 0xFFFF ? 2u : 1u;
    }
    out->coding = gsm ? SMS_GSM7 : SMS_UCS2;
    out->units = gsm ? septets : units;
    unsigned single = gsm ? 160 : 70, part = gsm ? 153 : 67;
    out->segments = out->units <= single ? 1 : (out->units + part - 1) / part;
    return 0;
}

const char *sms_coding_name(enum sms_coding c)
{
    return c == SMS_GSM7 ? "gsm7" : "ucs2";
}
