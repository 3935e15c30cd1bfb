/* Tests for sync/core/phone.c: E.164 keys for duplicate detection. */
#include <errno.h>

#include "phone.h"
#include "testlib.h"

static const char *e164(const char *in, const char *region)
{
    static char out[PHONE_E164_MAX];
    const struct region_info *r = region ? region_find(region) : NULL;
    if (phone_to_e164(in, r, out) < 0)
        return "ERR";
    return out;
}

static void national_numbers(void)
{
    CHECK_STR(e164("030 1234567", "EU-DE"), "+49301234567");
    CHECK_STR(e164("(030) 123-45-67", "EU-DE"), "+49301234567");
    CHECK_STR(e164("01 23 45 67 89", "EU-FR"), "+33123456789");
    CHECK_STR(e164("8 495 123-45-67", "RU"), "+74951234567");
    CHECK_STR(e164("(512) 555-0100", "US-TX"), "+15125550100");
    CHECK_STR(e164("1 512 555 0100", "US-CA"), "+15125550100");
    CHECK_STR(e164("601 2345678", "CO"), "+576012345678");
    CHECK_STR(e164("0712 345678", "KE"), "+254712345678");
}

static void international_numbers(void)
{
    CHECK_STR(e164("+49 30 1234567", "BR"), "+49301234567");
    CHECK_STR(e164("0049 30 1234567", "EU-FR"), "+49301234567");
    CHECK_STR(e164("+55 11 91234-5678", NULL), "+5511912345678");
}

static void refused(void)
{
    CHECK_STR(e164("030 1234567", NULL), "ERR");
    CHECK_STR(e164("call me", "EU-DE"), "ERR");
    CHECK_STR(e164("+49 30", "EU-DE"), "ERR");
    CHECK_STR(e164("+1234567890123456", "EU-DE"), "ERR");
    CHECK_STR(e164("030 1234567 ext 5", "EU-DE"), "ERR");
}

int main(void)
{
    RUN(national_numbers);
    RUN(international_numbers);
    RUN(refused);
    return tl_report();
}
