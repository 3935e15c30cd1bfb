/*
 * vCard 4.0 writer; see vcard.h. Output goes straight to the stream through
 * a small line writer that knows the current column: every character (a
 * whole UTF-8 sequence) and every escape pair ("\n", "\,") is an atom that
 * is never split, and a line is folded before the atom that would take it
 * past 75 octets. Because folding happens at write time, nothing is
 * buffered and no value length needs a cap here (the store caps them).
 */
#include "vcard.h"

#include <errno.h>
#include <string.h>

#include "phone.h"

struct vw {
    FILE *out;
    size_t col; /* octets on the current physical line */
    int err;    /* first write error as a negative errno; later writes are skipped */
};

static void vw_raw(struct vw *w, const char *p, size_t n)
{
    if (w->err || n == 0)
        return;
    errno = 0;
    if (fwrite(p, 1, n, w->out) != n)
        w->err = errno ? -errno : -EIO;
}

/* n octets that must stay on one physical line (n <= 4). A continuation
 * line starts with one space, which counts towards the 75. */
static void vw_atom(struct vw *w, const char *p, size_t n)
{
    if (w->col + n > VCARD_LINE_MAX) {
        vw_raw(w, "\r\n ", 3);
        w->col = 1;
    }
    vw_raw(w, p, n);
    w->col += n;
}

/* Property names, parameters and values we built ourselves: ASCII only. */
static void vw_ascii(struct vw *w, const char *s)
{
    for (; *s; s++)
        vw_atom(w, s, 1);
}

static void vw_end(struct vw *w)
{
    vw_raw(w, "\r\n", 2);
    w->col = 0;
}

/* A whole content line of our own ASCII: head (name, parameters and the
 * colon), then value when not NULL. */
static void vw_line(struct vw *w, const char *head, const char *value)
{
    vw_ascii(w, head);
    if (value)
        vw_ascii(w, value);
    vw_end(w);
}

/* Length of the well-formed UTF-8 sequence at s (n octets available), or 0
 * when it is not one (overlong forms, surrogates, beyond U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/* A text value (or one component of N/ADR) escaped per RFC 6350 3.4:
 * backslash, comma and semicolon get a backslash, a line break (CRLF, CR or
 * LF) becomes "\n". Commas and semicolons are escaped in every property,
 * which 3.4 allows and which keeps a reader from splitting a value. */
static void vw_text(struct vw *w, const char *s)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '\\' || c == ',' || c == ';') {
            char pair[2] = {'\\', (char)c};
            vw_atom(w, pair, 2);
            i++;
            continue;
        }
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && p[i + 1] == '\n')
                i++;
            vw_atom(w, "\\n", 2);
            i++;
            continue;
        }
        /* Control characters are not VALUE-CHARs; the store refuses them,
         * so this only keeps a card valid if one slipped in. */
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            vw_atom(w, replacement, 3);
            i++;
            continue;
        }
        size_t len = utf8_seq(p + i, n - i);
        if (len == 0) {
            vw_atom(w, replacement, 3);
            i++;
        } else {
            vw_atom(w, s + i, len);
            i += len;
        }
    }
}

/* The string value of key, or NULL when absent, not a string, or empty. */
static const char *field(json_t *c, const char *key)
{
    const char *v = json_string_value(json_object_get(c, key));
    return v && *v ? v : NULL;
}

static void prop_text(struct vw *w, const char *name, const char *value)
{
    if (!value)
        return;
    vw_ascii(w, name);
    vw_atom(w, ":", 1);
    vw_text(w, value);
    vw_end(w);
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

static void write_uid(struct vw *w, const char *id)
{
    if (!id)
        return;
    if (is_uuid(id)) {
        vw_line(w, "UID:urn:uuid:", id);
    } else {
        prop_text(w, "UID;VALUE=text", id); /* not a URI: keep it, as text */
    }
}

static void write_fn(struct vw *w, json_t *c)
{
    const char *given = field(c, "given_name"), *family = field(c, "family_name");
    vw_ascii(w, "FN:");
    if (given || family) {
        if (given)
            vw_text(w, given);
        if (given && family)
            vw_atom(w, " ", 1);
        if (family)
            vw_text(w, family);
    } else if (field(c, "email")) {
        vw_text(w, field(c, "email"));
    } else {
        vw_ascii(w, "(no name)");
    }
    vw_end(w);
}

/* A structured value: components escaped, separated by raw semicolons. */
static void prop_components(struct vw *w, const char *name, const char *const *parts, size_t n)
{
    vw_ascii(w, name);
    vw_atom(w, ":", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            vw_atom(w, ";", 1);
        if (parts[i])
            vw_text(w, parts[i]);
    }
    vw_end(w);
}

/* International numbers become a tel: URI with the E.164 digits (a tel URI
 * may not contain spaces). A national number cannot be a global tel: URI
 * without knowing its country, so it is written as stored, as TEL's
 * default text value, which a reader keeps verbatim. */
static void write_tel(struct vw *w, const char *phone)
{
    if (!phone)
        return;
    char e164[PHONE_E164_MAX];
    if (phone_to_e164(phone, NULL, e164) == 0) {
        vw_line(w, "TEL;VALUE=uri:tel:", e164);
    } else {
        prop_text(w, "TEL", phone);
    }
}

/* RFC 6350 4.3.1 has the complete date only in basic form, so the stored
 * YYYY-MM-DD is written as YYYYMMDD; anything else is kept as text. */
static void write_bday(struct vw *w, const char *d)
{
    if (!d)
        return;
    if (strlen(d) == 10 && d[4] == '-' && d[7] == '-' && all_digits(d, 4) && all_digits(d + 5, 2) &&
        all_digits(d + 8, 2)) {
        char basic[9] = {d[0], d[1], d[2], d[3], d[5], d[6], d[8], d[9], '\0'};
        vw_line(w, "BDAY:", basic);
    } else {
        prop_text(w, "BDAY;VALUE=text", d);
    }
}

/* REV is a timestamp in basic format: 2026-11-24T13:10:35.123Z ->
 * 20261124T131035Z. A value we cannot read is left out rather than
 * guessed. */
static void write_rev(struct vw *w, const char *t)
{
    if (!t || strlen(t) < 20)
        return;
    if (!(t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' && t[16] == ':' &&
          all_digits(t, 4) && all_digits(t + 5, 2) && all_digits(t + 8, 2) &&
          all_digits(t + 11, 2) && all_digits(t + 14, 2) && all_digits(t + 17, 2)))
        return;
    const char *z = t + 19;
    if (*z == '.') {
        z++;
        while (*z >= '0' && *z <= '9')
            z++;
    }
    if (strcmp(z, "Z") != 0)
        return;
    char basic[17] = {t[0],  t[1],  t[2],  t[3],  t[5],  t[6],  t[8], t[9], 'T',
                      t[11], t[12], t[14], t[15], t[17], t[18], 'Z',  '\0'};
    vw_line(w, "REV:", basic);
}

int vcard_write(FILE *out, json_t *contact)
{
    if (!out || !json_is_object(contact))
        return -EINVAL;
    struct vw w = {out, 0, 0};

    vw_line(&w, "BEGIN:VCARD", NULL);
    vw_line(&w, "VERSION:4.0", NULL);
    write_uid(&w, field(contact, "id"));
    write_fn(&w, contact);
    const char *n[] = {field(contact, "family_name"), field(contact, "given_name"), NULL, NULL,
                       NULL};
    prop_components(&w, "N", n, 5);
    prop_text(&w, "EMAIL", field(contact, "email"));
    write_tel(&w, field(contact, "phone"));
    const char *adr[] = {NULL,
                         NULL,
                         field(contact, "street"),
                         field(contact, "locality"),
                         field(contact, "region"),
                         field(contact, "postal_code"),
                         field(contact, "country")};
    if (adr[2] || adr[3] || adr[4] || adr[5] || adr[6])
        prop_components(&w, "ADR", adr, 7);
    prop_text(&w, "TITLE", field(contact, "job_title"));
    prop_text(&w, "LANG", field(contact, "language"));
    write_bday(&w, field(contact, "birth_date"));
    write_rev(&w, field(contact, "updated_at"));
    vw_line(&w, "END:VCARD", NULL);

    if (!w.err && ferror(out))
        w.err = -EIO;
    return w.err;
}
