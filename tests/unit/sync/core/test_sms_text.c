/* Tests for sync/core/sms_text.c: the coding a text needs and its segment
 * count (the cost of an SMS) at the boundaries where operators bill one
 * more segment: 160/161 and 306/307 GSM-7 septets, 70/71 and 134/135
 * UCS-2 units; extension characters counting twice; one non-GSM character
 * (Cyrillic, Arabic, an emoji, a backtick) switching the whole text to
 * UCS-2; invalid UTF-8 refused with its offset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sms_text.h"
#include "testlib.h"

static char *repeat(const char *unit, unsigned n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);
    for (unsigned i = 0; i < n; i++)
        memcpy(s + ul * i, unit, ul);
    s[ul * n] = '\0';
    return s;
}

static void count(const char *unit, unsigned n, enum sms_coding coding, unsigned units,
                  unsigned segments)
{
    char *s = repeat(unit, n);
    struct sms_count c;
    CHECK_EQ(sms_text_count(s, &c, NULL), 0);
    CHECK_EQ(c.coding, coding);
    CHECK_EQ(c.units, units);
    CHECK_EQ(c.segments, segments);
    free(s);
}

static void gsm7_boundaries(void)
{
    count("a", 160, SMS_GSM7, 160, 1);
    count("a", 161, SMS_GSM7, 161, 2);
    count("a", 306, SMS_GSM7, 306, 2);
    count("a", 307, SMS_GSM7, 307, 3);
    /* Accented Latin letters of the default alphabet stay GSM-7. */
    count("é", 160, SMS_GSM7, 160, 1);
    count("Ñ", 10, SMS_GSM7, 10, 1);
    /* Extension characters take two septets: 80 euros fill one segment. */
    count("€", 80, SMS_GSM7, 160, 1);
    count("€", 81, SMS_GSM7, 162, 2);
    count("{", 1, SMS_GSM7, 2, 1);
    count("", 1, SMS_GSM7, 0, 1);
}

static void ucs2_boundaries(void)
{
    count("д", 70, SMS_UCS2, 70, 1);
    count("д", 71, SMS_UCS2, 71, 2);
    count("д", 134, SMS_UCS2, 134, 2);
    count("д", 135, SMS_UCS2, 135, 3);
    /* Arabic and Chinese are UCS-2 */
    count("م", 3, SMS_UCS2, 3, 1);
    count("中", 70, SMS_UCS2, 70, 1);
    /* A character beyond the BMP takes two UTF-16 units. */
    count("😀", 35, SMS_UCS2, 70, 1);
    count("😀", 36, SMS_UCS2, 72, 2);
}

static void one_character_switches(void)
{
    struct sms_count c;
    /* 100 GSM letters and one Cyrillic: 101 UCS-2 units, 2 segments. */
    char *s = repeat("a", 100);
    size_t tcap = strlen(s) + 3;
    char *t = malloc(tcap);
    snprintf(t, tcap, "%sж", s);
    CHECK_EQ(sms_text_count(t, &c, NULL), 0);
    CHECK_EQ(c.coding, SMS_UCS2);
    CHECK_EQ(c.units, 101);
    CHECK_EQ(c.segments, 2);
    CHECK_STR(sms_coding_name(c.coding), "ucs2");
    /* The backtick is not in GSM 03.38. */
    CHECK_EQ(sms_text_count("it`s", &c, NULL), 0);
    CHECK_EQ(c.coding, SMS_UCS2);
    CHECK_EQ(sms_text_count("Hola, ¿qué tal? 5€", &c, NULL), 0);
    CHECK_EQ(c.coding, SMS_GSM7);
    CHECK_EQ(c.units, 19);
    CHECK_STR(sms_coding_name(c.coding), "gsm7");
    free(s);
    free(t);
}

static void invalid_utf8(void)
{
    struct sms_count c;
    long off = -1;
    CHECK_EQ(sms_text_count("ab\xc3(", &c, &off), -EINVAL);
    CHECK_EQ(off, 2);
    CHECK_EQ(sms_text_count("\xed\xa0\x80", &c, &off), -EINVAL); /* a surrogate */
    CHECK_EQ(off, 0);
}

int main(void)
{
    RUN(gsm7_boundaries);
    RUN(ucs2_boundaries);
    RUN(one_character_switches);
    RUN(invalid_utf8);
    return tl_report();
}
