/* E.164 normalization; see phone.h. */
#include "phone.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

int phone_to_e164(const char *phone, const struct region_info *region, char out[PHONE_E164_MAX])
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
        digits = d + 2; /* 00 international access prefix */
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
