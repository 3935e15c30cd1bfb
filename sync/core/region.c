/* The built-in region table; see region.h. */
#include "region.h"

#include <stdio.h>
#include <strings.h>

static const struct region_info regions[] = {
    {"EU-DE", "DE", "49", "0", "EUR", "de"},   {"EU-FR", "FR", "33", "0", "EUR", "fr"},
    {"BR", "BR", "55", "0", "BRL", "pt-BR"},   {"AR", "AR", "54", "0", "ARS", "es-AR"},
    {"CO", "CO", "57", "", "COP", "es-CO"},    {"RU", "RU", "7", "8", "RUB", "ru"},
    {"CN", "CN", "86", "0", "CNY", "zh-CN"},   {"IN", "IN", "91", "0", "INR", "hi"},
    {"ID", "ID", "62", "0", "IDR", "id"},      {"KE", "KE", "254", "0", "KES", "sw"},
    {"NG", "NG", "234", "0", "NGN", "en-NG"},  {"US-CA", "US", "1", "1", "USD", "en-US"},
    {"US-TX", "US", "1", "1", "USD", "en-US"},
};

const struct region_info *region_find(const char *code)
{
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++)
        if (!strcasecmp(regions[i].code, code))
            return &regions[i];
    return NULL;
}

const struct region_info *region_all(size_t *n)
{
    *n = sizeof regions / sizeof regions[0];
    return regions;
}

void region_list(char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof regions / sizeof regions[0] && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", regions[i].code);
}
