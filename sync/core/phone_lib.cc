// libphonenumber behind a C function; see phone_int.h. The library keeps
// the numbering plans of every country (trunk and international prefixes,
// mobile tokens such as Argentina's 9 and 15, carrier selection codes in
// Brazil and Mexico, valid ranges), which is why Outpost does not.
#include "phone_int.h"

#include <cstring>
#include <string>

#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

static bool put(const std::string &s, char *out, size_t cap)
{
    if (s.size() + 1 > cap)
        return false;
    std::memcpy(out, s.c_str(), s.size() + 1);
    return true;
}

extern "C" int phone_lib_parse(const char *text, const char *country, char *e164, size_t e164_cap,
                               char *ext, size_t ext_cap)
{
    try {
        PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();
        PhoneNumber pn;
        switch (u->Parse(text, country, &pn)) {
        case PhoneNumberUtil::NO_PARSING_ERROR:
            break;
        case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
            return PHONE_LIB_NO_COUNTRY;
        case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
        case PhoneNumberUtil::TOO_SHORT_NSN:
            return PHONE_LIB_TOO_SHORT;
        case PhoneNumberUtil::TOO_LONG_NSN:
            return PHONE_LIB_TOO_LONG;
        default:
            return PHONE_LIB_NOT_A_NUMBER;
        }
        if (!u->IsValidNumber(pn)) {
            switch (u->IsPossibleNumberWithReason(pn)) {
            case PhoneNumberUtil::TOO_SHORT:
                return PHONE_LIB_TOO_SHORT;
            case PhoneNumberUtil::TOO_LONG:
                return PHONE_LIB_TOO_LONG;
            case PhoneNumberUtil::INVALID_COUNTRY_CODE:
                return PHONE_LIB_NO_COUNTRY;
            default:
                return PHONE_LIB_INVALID;
            }
        }
        std::string out;
        u->Format(pn, PhoneNumberUtil::E164, &out);
        std::string x = pn.has_extension() ? pn.extension() : std::string();
        if (out.size() + 1 > e164_cap || x.size() + 1 > ext_cap)
            return PHONE_LIB_TOO_LONG;
        put(out, e164, e164_cap);
        put(x, ext, ext_cap);
        return PHONE_LIB_VALID;
    } catch (...) {
        return PHONE_LIB_FAILED;
    }
}
