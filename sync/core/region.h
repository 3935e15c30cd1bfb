/*
 * The regions a node can be initialized for, with the facts the store
 * needs whatever the region policy says: the country, its telephone calling
 * code and national trunk prefix (for E.164 normalization), the default
 * currency and language. Region policy files (schema/regions/) extend this.
 */
#ifndef OUTPOST_REGION_H
#define OUTPOST_REGION_H

#include <stddef.h>

struct region_info {
    const char *code;         /* "EU-DE" */
    const char *country;      /* ISO 3166-1 alpha-2 */
    const char *calling_code; /* ITU-T E.164 country code, digits only */
    const char *trunk_prefix; /* dialled before national numbers, "" if none */
    const char *currency;     /* ISO 4217 */
    const char *language;     /* BCP 47 */
};

/* The region with this code (case-insensitive), or NULL. */
const struct region_info *region_find(const char *code);

/* All regions; *n receives the count. */
const struct region_info *region_all(size_t *n);

/* Writes "EU-DE, EU-FR, ..." into buf for error messages. */
void region_list(char *buf, size_t cap);

#endif
