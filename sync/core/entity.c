/*
 * The entity descriptors and per-field value checks; see entity.h. Limits
 * here are the caps on everything a user sends: every text field has a
 * maximum length in bytes, checked before anything is stored.
 */
#include "entity.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

#define OBJECT_MAX_BYTES 16384

static const char *const roles[] = {"field", "manager", "admin", "hq", NULL};
static const char *const stages[] = {"lead", "qualified", "proposal", "negotiation",
                                     "won",  "lost",      NULL};
static const char *const channels[] = {"visit", "call",        "sms",     "messaging_app",
                                       "email", "direct_mail", "meeting", NULL};
static const char *const directions[] = {"inbound", "outbound", NULL};
static const char *const task_states[] = {"open", "done", "cancelled", NULL};
static const char *const consent_kinds[] = {"marketing", "transactional", NULL};
static const char *const consent_states[] = {"pending", "granted", "denied", "withdrawn", NULL};
static const char *const consent_methods[] = {"double_opt_in", "single_opt_in", "opt_out", "verbal",
                                              "written",       "imported",      NULL};

#define TEXT(n, max, fl)                                                                           \
    {                                                                                              \
        n, FIELD_TEXT, fl, max, NULL, NULL, NULL                                                   \
    }
#define TYPED(n, t, fl)                                                                            \
    {                                                                                              \
        n, t, fl, 0, NULL, NULL, NULL                                                              \
    }
#define ENUMF(n, vals, fl, d)                                                                      \
    {                                                                                              \
        n, FIELD_ENUM, fl, 0, vals, NULL, d                                                        \
    }
#define REF(n, ent, fl)                                                                            \
    {                                                                                              \
        n, FIELD_REF, fl, 0, NULL, &ent, NULL                                                      \
    }
#define COMMON_FIELDS                                                                              \
    REF("owner_id", entity_user, FIELD_FILTER), TYPED("restricted", FIELD_BOOL, 0),                \
        TYPED("custom", FIELD_OBJECT, 0)
#define ADDRESS_FIELDS                                                                             \
    TEXT("street", 400, 0), TEXT("locality", 200, 0), TEXT("region", 200, 0),                      \
        TEXT("postal_code", 32, 0), TYPED("country", FIELD_COUNTRY, 0)
/* What an activity, a task or a note may be about: each link optional. */
#define LINK_FIELDS                                                                                \
    REF("contact_id", entity_contact, FIELD_FILTER),                                               \
        REF("organization_id", entity_organization, FIELD_FILTER),                                 \
        REF("deal_id", entity_deal, FIELD_FILTER)

#define DEF(var, sing, plur, tbl, arr, fl)                                                         \
    const struct entity_def var = {sing, plur, tbl, arr, sizeof arr / sizeof arr[0], fl}

static const struct field_def user_fields[] = {
    COMMON_FIELDS,
    TEXT("name", 64, FIELD_REQUIRED | FIELD_FILTER),
    TEXT("display_name", 200, 0),
    ENUMF("role", roles, FIELD_REQUIRED | FIELD_FILTER, NULL),
    TEXT("password_hash", 512, FIELD_INTERNAL),
    TYPED("disabled", FIELD_BOOL, 0),
};
DEF(entity_user, "user", "users", "users", user_fields, ENTITY_NODE_LOCAL);

static const struct field_def contact_fields[] = {
    COMMON_FIELDS,
    TEXT("given_name", 200, 0),
    TEXT("family_name", 200, 0),
    {"email", FIELD_EMAIL, 0, 254, NULL, NULL, NULL},
    {"phone", FIELD_PHONE, 0, 64, NULL, NULL, NULL},
    ADDRESS_FIELDS,
    {"language", FIELD_LANGUAGE, 0, 35, NULL, NULL, NULL},
    TEXT("job_title", 200, 0),
    TYPED("birth_date", FIELD_DATE, 0),
};
DEF(entity_contact, "contact", "contacts", "contacts", contact_fields,
    ENTITY_DEDUP | ENTITY_SEARCH);

static const struct field_def organization_fields[] = {
    COMMON_FIELDS,
    TEXT("name", 300, FIELD_REQUIRED),
    TEXT("website", 2000, 0),
    {"email", FIELD_EMAIL, 0, 254, NULL, NULL, NULL},
    {"phone", FIELD_PHONE, 0, 64, NULL, NULL, NULL},
    ADDRESS_FIELDS,
    TEXT("industry", 200, 0),
    TEXT("tax_id", 64, 0),
};
DEF(entity_organization, "organization", "organizations", "organizations", organization_fields,
    ENTITY_SEARCH);

static const struct field_def contact_organization_fields[] = {
    COMMON_FIELDS,
    REF("contact_id", entity_contact, FIELD_REQUIRED | FIELD_FILTER),
    REF("organization_id", entity_organization, FIELD_REQUIRED | FIELD_FILTER),
    TEXT("role", 200, 0),
};
DEF(entity_contact_organization, "contact_organization", "contact_organizations",
    "contact_organizations", contact_organization_fields, 0);

static const struct field_def deal_fields[] = {
    COMMON_FIELDS,
    TEXT("title", 300, FIELD_REQUIRED),
    ENUMF("stage", stages, FIELD_REQUIRED | FIELD_FILTER, "lead"),
    TYPED("amount_minor", FIELD_MONEY, 0),
    TYPED("currency", FIELD_CURRENCY, 0),
    REF("organization_id", entity_organization, FIELD_FILTER),
    REF("contact_id", entity_contact, FIELD_FILTER),
    TYPED("expected_close", FIELD_DATE, 0),
};
DEF(entity_deal, "deal", "deals", "deals", deal_fields, 0);

static const struct field_def activity_fields[] = {
    COMMON_FIELDS,
    ENUMF("channel", channels, FIELD_REQUIRED | FIELD_FILTER, NULL),
    ENUMF("direction", directions, FIELD_REQUIRED, "outbound"),
    TEXT("outcome", 200, 0),
    TEXT("subject", 300, 0),
    TEXT("body", 65536, 0),
    TYPED("occurred_at", FIELD_TIME, FIELD_REQUIRED),
    LINK_FIELDS,
};
DEF(entity_activity, "activity", "activities", "activities", activity_fields, 0);

static const struct field_def task_fields[] = {
    COMMON_FIELDS,
    TEXT("title", 300, FIELD_REQUIRED),
    ENUMF("status", task_states, FIELD_REQUIRED | FIELD_FILTER, "open"),
    TYPED("due_at", FIELD_TIME, 0),
    REF("assignee_id", entity_user, FIELD_FILTER),
    LINK_FIELDS,
};
DEF(entity_task, "task", "tasks", "tasks", task_fields, 0);

static const struct field_def note_fields[] = {
    COMMON_FIELDS,
    TEXT("body", 65536, FIELD_REQUIRED),
    LINK_FIELDS,
};
DEF(entity_note, "note", "notes", "notes", note_fields, 0);

static const struct field_def consent_fields[] = {
    COMMON_FIELDS,
    REF("contact_id", entity_contact, FIELD_REQUIRED | FIELD_FILTER),
    ENUMF("channel", channels, FIELD_REQUIRED | FIELD_FILTER, NULL),
    TEXT("purpose", 100, FIELD_REQUIRED | FIELD_FILTER),
    ENUMF("kind", consent_kinds, FIELD_REQUIRED, "marketing"),
    ENUMF("status", consent_states, FIELD_REQUIRED | FIELD_FILTER, NULL),
    ENUMF("method", consent_methods, FIELD_REQUIRED, NULL),
    TYPED("evidence", FIELD_OBJECT, 0),
    TYPED("requested_at", FIELD_TIME, FIELD_REQUIRED),
    TYPED("confirmed_at", FIELD_TIME, 0),
    TYPED("withdrawn_at", FIELD_TIME, 0),
    TYPED("expires_at", FIELD_TIME, 0),
};
DEF(entity_consent, "consent", "consents", "consents", consent_fields, 0);

const struct entity_def *const entity_all[] = {
    &entity_user,         &entity_contact,
    &entity_organization, &entity_contact_organization,
    &entity_deal,         &entity_activity,
    &entity_task,         &entity_note,
    &entity_consent,      NULL,
};

const struct entity_def *entity_by_name(const char *name)
{
    for (size_t i = 0; entity_all[i]; i++)
        if (!strcmp(entity_all[i]->name, name) || !strcmp(entity_all[i]->plural, name))
            return entity_all[i];
    return NULL;
}

const struct field_def *entity_field(const struct entity_def *e, const char *name)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (!strcmp(e->fields[i].name, name))
            return &e->fields[i];
    return NULL;
}

/* ISO 4217 active alphabetic codes (2024 list). */
static const char currencies[] =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP "
    "MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR "
    "RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT "
    "TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW "
    "ZWL";

/* ISO 3166-1 alpha-2 officially assigned codes. */
static const char countries[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

static int in_code_list(const char *list, const char *code, size_t len)
{
    for (const char *p = list; *p; p += len + 1) {
        if (!strncmp(p, code, len))
            return 1;
        if (!p[len])
            break;
    }
    return 0;
}

int entity_is_currency(const char *code)
{
    if (strlen(code) != 3)
        return 0;
    return in_code_list(currencies, code, 3);
}

long entity_utf8_bad_offset(const char *s, size_t len)
{
    return utf8_bad_offset(s, len, UTF8_REFUSE_CONTROLS);
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int valid_date(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return 0;
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return 0;
    int max = mdays[m - 1] + (m == 2 && is_leap(y));
    return d <= max;
}

static int valid_time(const char *s)
{
    int h, mi, se;
    if (!valid_date(s) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return 0;
    if (h > 23 || mi > 59 || se > 60)
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; isdigit((unsigned char)*p); p++)
            n++;
        if (n < 1 || n > 9)
            return 0;
    }
    return p[0] == 'Z' && p[1] == '\0';
}

static int valid_email(const char *s, size_t len)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@') || at[1] == '\0' || len > 254)
        return 0;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || *p == ',' || *p == ';' || *p == '<' || *p == '>')
            return 0;
    const char *dot = strchr(at + 1, '.');
    return dot && dot != at + 1 && dot[1] != '\0' && s[len - 1] != '.';
}

/* An extension after the number: a marker ("ext.", "x", "#", "доб.":
 * letters, '.', '#', ':', up to 16 bytes), optional spaces, 1 to 10
 * digits, the end. Returns where it starts, or NULL. */
static const char *phone_extension(const char *s)
{
    const char *m = s;
    while (*m && (isdigit((unsigned char)*m) || strchr("+ ()./-", *m)))
        m++;
    if (!*m)
        return NULL;
    const char *p = m;
    while (*p && (isalpha((unsigned char)*p) || (unsigned char)*p >= 0x80 || strchr(".#:", *p)))
        p++;
    if (p == m || p - m > 16)
        return NULL;
    while (*p == ' ')
        p++;
    int n = 0;
    while (isdigit((unsigned char)*p))
        p++, n++;
    return n >= 1 && n <= 10 && !*p ? m : NULL;
}

static int valid_phone(const char *s)
{
    int ndigits = 0;
    const char *end = phone_extension(s);
    for (const char *p = s; *p && p != end; p++) {
        if (isdigit((unsigned char)*p))
            ndigits++;
        else if (*p == '+' && p != s)
            return 0;
        else if (!strchr("+ ()./-", *p))
            return 0;
    }
    return ndigits >= 3 && ndigits <= 20;
}

static int valid_language(const char *s)
{
    const char *p = s;
    int n = 0;
    while (isalpha((unsigned char)*p))
        p++, n++;
    if (n < 2 || n > 3)
        return 0;
    while (*p == '-') {
        p++;
        n = 0;
        while (isalnum((unsigned char)*p))
            p++, n++;
        if (n < 1 || n > 8)
            return 0;
    }
    return *p == '\0';
}

static int bad_value(struct op_error *err, const struct field_def *f, const char *what,
                     const char *value)
{
    if (value)
        return op_error_set(err, -EINVAL, f->name, "%s: %s: \"%.80s\"", f->name, what, value);
    return op_error_set(err, -EINVAL, f->name, "%s: %s", f->name, what);
}

/* What a JSON value of the wrong type is, for "expected X, not Y": a
 * nested object or an array where a scalar belongs is named as such. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "true or false";
    default:
        return "null";
    }
}

static int wrong_type(struct op_error *err, const struct field_def *f, const char *want,
                      const json_t *value)
{
    return op_error_set(err, -EINVAL, f->name, "%s: expected %s, not %s", f->name, want,
                        json_kind(value));
}

/* Text-like input: the string, trimmed, validated as UTF-8 and capped. */
static int take_text(const struct field_def *f, json_t *value, char **out, struct op_error *err)
{
    if (!json_is_string(value))
        return wrong_type(err, f, "a string", value);
    const char *s = json_string_value(value);
    size_t len = json_string_length(value);
    long bad = entity_utf8_bad_offset(s, len);
    if (bad >= 0)
        return op_error_set(err, -EINVAL, f->name,
                            "%s: invalid UTF-8 or control character at byte %ld", f->name, bad + 1);
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    unsigned max = f->max_len ? f->max_len : 64;
    if (len > max)
        return op_error_set(err, -EINVAL, f->name, "%s: longer than %u bytes (%zu)", f->name, max,
                            len);
    char *copy = strndup(s, len);
    if (!copy)
        return op_error_set(err, -ENOMEM, f->name, "out of memory");
    *out = copy;
    return 0;
}

static int list_values(char *buf, size_t cap, const char *const *values)
{
    size_t o = 0;
    for (size_t i = 0; values[i] && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", values[i]);
    return 0;
}

int entity_normalize_value(const struct field_def *f, json_t *value, json_t **out,
                           struct op_error *err)
{
    if (!value || json_is_null(value)) {
        *out = json_null();
        return 0;
    }
    switch (f->type) {
    case FIELD_BOOL:
        if (json_is_boolean(value)) {
            *out = json_incref(value);
            return 0;
        }
        if (json_is_string(value)) {
            const char *s = json_string_value(value);
            if (!*s) {
                *out = json_null();
                return 0;
            }
            if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes")) {
                *out = json_true();
                return 0;
            }
            if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no")) {
                *out = json_false();
                return 0;
            }
        }
        if (!json_is_string(value))
            return wrong_type(err, f, "true or false", value);
        return bad_value(err, f, "expected true or false", json_string_value(value));
    case FIELD_MONEY: {
        if (json_is_integer(value)) {
            *out = json_incref(value);
            return 0;
        }
        if (!json_is_string(value))
            return wrong_type(err, f, "a whole number of minor units", value);
        const char *s = json_string_value(value);
        if (!*s) {
            *out = json_null();
            return 0;
        }
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end || end == s)
            return bad_value(err, f, "expected a whole number of minor units (1250 for 12.50)", s);
        *out = json_integer(v);
        return *out ? 0 : op_error_set(err, -ENOMEM, f->name, "out of memory");
    }
    case FIELD_OBJECT: {
        json_t *obj = value;
        json_t *parsed = NULL;
        if (json_is_string(value)) {
            const char *s = json_string_value(value);
            if (!*s) {
                *out = json_object();
                return 0;
            }
            json_error_t jerr;
            parsed = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
            if (!parsed)
                return op_error_set(err, -EINVAL, f->name, "%s: invalid JSON at column %d: %s",
                                    f->name, jerr.column, jerr.text);
            obj = parsed;
        }
        if (!json_is_object(obj)) {
            int rc = wrong_type(err, f, "a JSON object", obj);
            json_decref(parsed);
            return rc;
        }
        char *dump = json_dumps(obj, JSON_COMPACT);
        size_t len = dump ? strlen(dump) : 0;
        free(dump);
        if (len > OBJECT_MAX_BYTES) {
            json_decref(parsed);
            return op_error_set(err, -EINVAL, f->name, "%s: larger than %d bytes", f->name,
                                OBJECT_MAX_BYTES);
        }
        *out = parsed ? parsed : json_incref(obj);
        return 0;
    }
    default:
        break;
    }

    char *s = NULL;
    int rc = take_text(f, value, &s, err);
    if (rc < 0)
        return rc;
    size_t len = strlen(s);
    if (len == 0) {
        free(s);
        *out = json_null();
        return 0;
    }
    char listbuf[256];
    switch (f->type) {
    case FIELD_EMAIL:
        if (!valid_email(s, len))
            rc = bad_value(err, f, "not an e-mail address", s);
        break;
    case FIELD_PHONE:
        if (!valid_phone(s))
            rc = bad_value(err, f,
                           "not a phone number (digits, spaces, + ( ) . / - only; 3 to 20 "
                           "digits; an extension after it such as \"ext. 12\")",
                           s);
        break;
    case FIELD_COUNTRY:
        for (char *p = s; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (len != 2 || !in_code_list(countries, s, 2))
            rc = bad_value(err, f, "not an ISO 3166-1 alpha-2 country code", s);
        break;
    case FIELD_CURRENCY:
        for (char *p = s; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (!entity_is_currency(s))
            rc = bad_value(err, f, "not an ISO 4217 currency code", s);
        break;
    case FIELD_LANGUAGE:
        if (!valid_language(s))
            rc = bad_value(err, f, "not a BCP 47 language tag such as de or pt-BR", s);
        break;
    case FIELD_DATE:
        if (len != 10 || !valid_date(s))
            rc = bad_value(err, f, "not a date in the form YYYY-MM-DD", s);
        break;
    case FIELD_TIME:
        if (!valid_time(s))
            rc = bad_value(err, f, "not a UTC time in the form YYYY-MM-DDTHH:MM:SSZ", s);
        break;
    case FIELD_ENUM: {
        int found = 0;
        for (size_t i = 0; f->values[i]; i++)
            found |= !strcmp(f->values[i], s);
        if (!found) {
            list_values(listbuf, sizeof listbuf, f->values);
            rc = op_error_set(err, -EINVAL, f->name, "%s: \"%.40s\" is not one of: %s", f->name, s,
                              listbuf);
        }
        break;
    }
    case FIELD_REF:
        for (char *p = s; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (len != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' ||
            strspn(s, "0123456789abcdef-") != 36)
            rc = bad_value(err, f, "not a record id (a UUID)", s);
        break;
    default:
        break;
    }
    if (rc == 0) {
        *out = json_stringn(s, len);
        if (!*out)
            rc = op_error_set(err, -ENOMEM, f->name, "out of memory");
    }
    free(s);
    return rc;
}
