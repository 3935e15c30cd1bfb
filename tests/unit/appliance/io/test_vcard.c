/* Tests for appliance/io/vcard.c: exact output for a minimal and a full
 * contact, RFC 6350 escaping, folding of long multi-byte values (every
 * physical line at most 75 octets and valid UTF-8, unfolding restores the
 * value) and reporting of write errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "vcard.h"

/* Renders a contact given as JSON text; returns a malloc'd string and the
 * return code of vcard_write in *rc. */
static char *render(const char *json_text, int *rc)
{
    json_error_t jerr;
    json_t *c = json_loads(json_text, 0, &jerr);
    if (!c) {
        fprintf(stderr, "bad test JSON: %s\n", jerr.text);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        json_decref(c);
        return NULL;
    }
    *rc = vcard_write(f, c);
    fclose(f);
    json_decref(c);
    return buf;
}

/* Independent UTF-8 validation of n octets. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* Checks the physical-line rules over a whole card: CRLF endings only,
 * at most 75 octets per line, valid UTF-8 per line, continuation lines
 * start with exactly one space. Returns the number of violations. */
static int line_violations(const char *card)
{
    int bad = 0;
    const char *p = card;
    while (*p) {
        const char *e = strstr(p, "\r\n");
        if (!e) {
            fprintf(stderr, "  line without CRLF: \"%s\"\n", p);
            return bad + 1;
        }
        size_t n = (size_t)(e - p);
        if (memchr(p, '\n', n) || memchr(p, '\r', n)) {
            fprintf(stderr, "  bare CR or LF inside a line\n");
            bad++;
        }
        if (n > 75) {
            fprintf(stderr, "  line of %zu octets: \"%.*s\"\n", n, (int)n, p);
            bad++;
        }
        if (!valid_utf8((const unsigned char *)p, n)) {
            fprintf(stderr, "  line is not valid UTF-8: \"%.*s\"\n", (int)n, p);
            bad++;
        }
        if (n >= 2 && p[0] == ' ' && p[1] == ' ') {
            fprintf(stderr, "  continuation starts with two spaces\n");
            bad++;
        }
        p = e + 2;
    }
    return bad;
}

/* Removes CRLF + one space (RFC 6350 3.2 unfolding), in place. */
static void unfold(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\r' && r[1] == '\n' && r[2] == ' ') {
            r += 3;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
}

/* Copies the value of the unfolded property line starting with `prefix`
 * (e.g. "TITLE:") into a malloc'd string, unescaping \n \\ \, \;. */
static char *prop_value(const char *unfolded, const char *prefix)
{
    const char *p = unfolded;
    size_t pl = strlen(prefix);
    while (p && *p) {
        if (!strncmp(p, prefix, pl))
            break;
        p = strstr(p, "\r\n");
        if (p)
            p += 2;
    }
    if (!p || !*p)
        return NULL;
    p += pl;
    const char *e = strstr(p, "\r\n");
    size_t n = e ? (size_t)(e - p) : strlen(p);
    char *out = malloc(n + 1), *w = out;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            i++;
            *w++ = (p[i] == 'n' || p[i] == 'N') ? '\n' : p[i];
        } else {
            *w++ = p[i];
        }
    }
    *w = '\0';
    return out;
}

static void test_minimal(void)
{
    int rc = 1;
    char *card = render("{\"id\":\"01935a6e-7c2b-7d4e-9f10-123456789abc\","
                        "\"email\":\"x@example.org\",\"given_name\":null,\"custom\":{}}",
                        &rc);
    CHECK_EQ(rc, 0);
    CHECK_STR(card, "BEGIN:VCARD\r\n"
                    "VERSION:4.0\r\n"
                    "UID:urn:uuid:01935a6e-7c2b-7d4e-9f10-123456789abc\r\n"
                    "FN:x@example.org\r\n"
                    "N:;;;;\r\n"
                    "EMAIL:x@example.org\r\n"
                    "END:VCARD\r\n");
    free(card);

    /* No name and no e-mail: FN is still there, because 4.0 requires it. */
    card = render("{\"phone\":\"+49 30 1234567\"}", &rc);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(card, "\r\nFN:(no name)\r\n");
    CHECK_CONTAINS(card, "\r\nTEL;VALUE=uri:tel:+49301234567\r\n");
    free(card);
}

static void test_full(void)
{
    int rc = 1;
    char *card = render("{\"id\":\"01935a6e-7c2b-7d4e-9f10-123456789abc\",\"version\":3,"
                        "\"created_at\":\"2026-11-20T08:00:00.000Z\","
                        "\"updated_at\":\"2026-11-24T13:10:35.123Z\",\"deleted\":false,"
                        "\"owner_id\":null,\"restricted\":false,\"custom\":{\"segment\":\"B\"},"
                        "\"given_name\":\"José\",\"family_name\":\"Müller\","
                        "\"email\":\"jose@example.org\",\"phone\":\"+49 (30) 123-4567\","
                        "\"street\":\"Hauptstraße 5\",\"locality\":\"Berlin\","
                        "\"region\":\"BE\",\"postal_code\":\"10115\",\"country\":\"DE\","
                        "\"language\":\"de\",\"job_title\":\"Einkaufsleiter\","
                        "\"birth_date\":\"1980-04-12\"}",
                        &rc);
    CHECK_EQ(rc, 0);
    CHECK_STR(card, "BEGIN:VCARD\r\n"
                    "VERSION:4.0\r\n"
                    "UID:urn:uuid:01935a6e-7c2b-7d4e-9f10-123456789abc\r\n"
                    "FN:José Müller\r\n"
                    "N:Müller;José;;;\r\n"
                    "EMAIL:jose@example.org\r\n"
                    "TEL;VALUE=uri:tel:+49301234567\r\n"
                    "ADR:;;Hauptstraße 5;Berlin;BE;10115;DE\r\n"
                    "TITLE:Einkaufsleiter\r\n"
                    "LANG:de\r\n"
                    "BDAY:19800412\r\n"
                    "REV:20261124T131035Z\r\n"
                    "END:VCARD\r\n");
    CHECK_EQ(line_violations(card ? card : ""), 0);
    free(card);

    /* Only a family name; a national phone number stays as written (text);
     * an address with only a country still has all seven components. */
    card = render("{\"family_name\":\"Okafor\",\"phone\":\"030 1234567\",\"country\":\"NG\","
                  "\"updated_at\":\"2026-01-02T03:04:05Z\"}",
                  &rc);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(card, "\r\nFN:Okafor\r\nN:Okafor;;;;\r\n");
    CHECK_CONTAINS(card, "\r\nTEL:030 1234567\r\n");
    CHECK_CONTAINS(card, "\r\nADR:;;;;;;NG\r\n");
    CHECK_CONTAINS(card, "\r\nREV:20260102T030405Z\r\n");
    free(card);

    /* A birth date that is not YYYY-MM-DD is kept as text, a timestamp that
     * cannot be read leaves REV out rather than inventing one. */
    card = render("{\"given_name\":\"A\",\"birth_date\":\"--0412\",\"updated_at\":\"yesterday\"}",
                  &rc);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(card, "\r\nBDAY;VALUE=text:--0412\r\n");
    CHECK(card && !strstr(card, "REV:"));
    free(card);
}

static void test_escaping(void)
{
    int rc = 1;
    char *card = render("{\"given_name\":\"Anne, Marie\",\"family_name\":\"O;Brien\\\\Smith\","
                        "\"job_title\":\"Head of sales\\nNorth, East; West\","
                        "\"street\":\"Line 1\\r\\nLine 2\",\"locality\":\"a;b,c\"}",
                        &rc);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(card, "\r\nFN:Anne\\, Marie O\\;Brien\\\\Smith\r\n");
    /* In N the semicolon inside a component is escaped, separators are not. */
    CHECK_CONTAINS(card, "\r\nN:O\\;Brien\\\\Smith;Anne\\, Marie;;;\r\n");
    CHECK_CONTAINS(card, "\r\nTITLE:Head of sales\\nNorth\\, East\\; West\r\n");
    /* CRLF inside a value is one line break, not two. */
    CHECK_CONTAINS(card, "\r\nADR:;;Line 1\\nLine 2;a\\;b\\,c;;;\r\n");
    CHECK_EQ(line_violations(card ? card : ""), 0);
    free(card);

    /* Invalid UTF-8 in a value (the store refuses it; a card must stay valid
     * anyway) is replaced by U+FFFD. */
    json_t *c = json_object();
    json_object_set_new(c, "given_name", json_string_nocheck("ab\xff\xc3(cd"));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_EQ(vcard_write(f, c), 0);
    fclose(f);
    CHECK_CONTAINS(buf, "\r\nFN:ab\xef\xbf\xbd\xef\xbf\xbd(cd\r\n");
    CHECK_EQ(line_violations(buf ? buf : ""), 0);
    free(buf);
    json_decref(c);
}

/* Builds a long value from pieces of 1-, 2-, 3- and 4-octet characters and
 * escapes, renders it in `key`, and checks line rules and round trip. */
static void fold_round_trip(const char *key, const char *value)
{
    json_t *c = json_pack("{s:s,s:s}", "id", "01935a6e-7c2b-7d4e-9f10-123456789abc", key, value);
    char *card = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&card, &len);
    CHECK_EQ(vcard_write(f, c), 0);
    fclose(f);
    json_decref(c);
    CHECK_EQ(line_violations(card), 0);
    /* Folding happened: the value is far longer than a line. */
    CHECK(strstr(card, "\r\n ") != NULL);
    unfold(card);
    const char *prefix = !strcmp(key, "job_title") ? "TITLE:" : "FN:";
    char *got = prop_value(card, prefix);
    CHECK_STR(got, value);
    free(got);
    free(card);
}

/* Appends piece to buf (NUL-terminated, capacity cap), truncating. */
static void append(char *buf, size_t cap, const char *piece)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s", piece);
}

static void test_folding(void)
{
    /* Devanagari: 3-octet characters with combining marks. */
    char deva[4096] = "";
    for (int i = 0; i < 20; i++)
        append(deva, sizeof deva, "नमस्ते दुनिया, ");
    fold_round_trip("job_title", deva);

    /* Han plus 4-octet characters, escapes and ASCII, shifted by one octet
     * per round so every alignment of a sequence against the fold point
     * occurs. */
    for (int shift = 0; shift < 8; shift++) {
        char mixed[4096];
        size_t n = 0;
        for (int i = 0; i < shift; i++)
            mixed[n++] = 'a';
        mixed[n] = '\0';
        for (int i = 0; i < 30; i++)
            append(mixed, sizeof mixed, "漢字;𝄞é\\x,");
        fold_round_trip("given_name", mixed);
    }

    /* Exactly 75 octets fits on one line; 76 folds. */
    char exact[80];
    memset(exact, 'x', sizeof exact);
    exact[75 - 6] = '\0'; /* "TITLE:" + 69 = 75 */
    json_t *c = json_pack("{s:s}", "job_title", exact);
    char *card = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&card, &len);
    CHECK_EQ(vcard_write(f, c), 0);
    fclose(f);
    CHECK(card && !strstr(card, "\r\n "));
    free(card);
    exact[75 - 6] = 'x';
    exact[76 - 6] = '\0';
    json_object_set_new(c, "job_title", json_string(exact));
    f = open_memstream(&card, &len);
    CHECK_EQ(vcard_write(f, c), 0);
    fclose(f);
    char want[100];
    exact[75 - 6] = '\0';
    snprintf(want, sizeof want, "\r\nTITLE:%s\r\n x\r\n", exact);
    CHECK_CONTAINS(card, want);
    free(card);
    json_decref(c);
}

static void test_errors(void)
{
    json_t *arr = json_array();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_EQ(vcard_write(f, arr), -EINVAL);
    CHECK_EQ(vcard_write(f, NULL), -EINVAL);
    fclose(f);
    free(buf);
    json_decref(arr);

    /* A full disk is reported, not swallowed. Unbuffered so the write fails
     * inside vcard_write rather than at a later flush. */
    FILE *full = fopen("/dev/full", "w");
    if (!full) {
        fprintf(stderr, "skip: no /dev/full\n");
        return;
    }
    setvbuf(full, NULL, _IONBF, 0);
    json_t *c = json_pack("{s:s}", "email", "x@example.org");
    int rc = vcard_write(full, c);
    CHECK_EQ(rc, -ENOSPC);
    fclose(full);
    json_decref(c);
}

int main(void)
{
    RUN(test_minimal);
    RUN(test_full);
    RUN(test_escaping);
    RUN(test_folding);
    RUN(test_errors);
    return tl_report();
}
