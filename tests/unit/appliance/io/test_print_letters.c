/*
 * Tests for appliance/io/print_letters.c: the recipient block laid out by
 * each region's address format (Germany, the US, Brazil, China with the
 * family name first and no spaces, and a right-to-left profile in
 * Arabic), with empty lines dropped, dangling separators trimmed and the
 * country line only abroad; label sheets of 3 x 8 (A4) and 3 x 10 (US
 * Letter) start a new page at the right label; a long body continues on a
 * second page; a letter without a sender and a file that cannot be
 * written are refused and leave no file.
 */
#include "print_letters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

static json_t *contact(const char *given, const char *family, const char *street,
                       const char *postal, const char *locality, const char *region,
                       const char *country)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "given_name", given, "family_name",
                     family, "street", street, "postal_code", postal, "locality", locality,
                     "region", region, "country", country);
}

static const char *layout(const char *format, const char *country, const char *lang, json_t *c)
{
    static char out[PRINT_ADDRESS_MAX];
    CHECK_EQ(print_address(format, country, lang, c, out, sizeof out), 0);
    json_decref(c);
    return out;
}

static void test_formats(void)
{
    const char *de = "{street}\n{postal_code} {locality}\n{country}";
    CHECK_STR(layout(de, "DE", "de",
                     contact("Jürgen", "Weiß", "Hauptstraße 5", "10115", "Berlin", "", "DE")),
              "Jürgen Weiß\nHauptstraße 5\n10115 Berlin");
    CHECK_STR(layout(de, "DE", "de",
                     contact("Ana", "Lima", "Rua Augusta 10", "1100-053", "Lisboa", "", "PT")),
              "Ana Lima\nRua Augusta 10\n1100-053 Lisboa\nPT");
    const char *us = "{street}\n{locality}, {region} {postal_code}\n{country}";
    CHECK_STR(
        layout(us, "US", "en", contact("Jo", "Doe", "1 Main St", "78701", "Austin", "TX", "US")),
        "Jo Doe\n1 Main St\nAustin, TX 78701");
    /* no region: the comma does not dangle */
    CHECK_STR(layout(us, "US", "en", contact("Jo", "Doe", "1 Main St", "", "Austin", "", "")),
              "Jo Doe\n1 Main St\nAustin");
    const char *br = "{street}\n{locality}-{region}\n{postal_code}\n{country}";
    CHECK_STR(
        layout(br, "BR", "pt",
               contact("João", "Silva", "Av. Paulista 1000", "01310-100", "São Paulo", "SP", "BR")),
        "João Silva\nAv. Paulista 1000\nSão Paulo-SP\n01310-100");
    CHECK_STR(
        layout(br, "BR", "pt",
               contact("João", "Silva", "Av. Paulista 1000", "01310-100", "São Paulo", "", "BR")),
        "João Silva\nAv. Paulista 1000\nSão Paulo\n01310-100");
    /* China: large to small, the family name first, no space */
    const char *cn = "{postal_code}\n{country}\n{region}{locality}\n{street}";
    CHECK_STR(layout(cn, "CN", "zh",
                     contact("小明", "王", "朝阳区建国路88号", "100022", "北京市", "", "CN")),
              "王小明\n100022\n北京市\n朝阳区建国路88号");
    /* a right-to-left profile: the text stays in logical order (Pango
     * lays it out right to left) */
    const char *ar = "{street}\n{locality} {postal_code}\n{country}";
    CHECK_STR(layout(ar, "EG", "ar",
                     contact("أحمد", "حسن", "شارع التحرير ١٠", "11511", "القاهرة", "", "EG")),
              "أحمد حسن\nشارع التحرير ١٠\nالقاهرة 11511");
    /* no format: the default; literal text kept */
    CHECK_STR(layout(NULL, "DE", "de", contact("A", "B", "S 1", "1", "L", "", "DE")),
              "A B\nS 1\n1 L");
    CHECK_STR(layout("Attn: {street}", "DE", "de", contact("A", "B", "S 1", "", "", "", "")),
              "A B\nAttn: S 1");
    char small[8];
    json_t *c = contact("Jürgen", "Weiß", "Hauptstraße 5", "10115", "Berlin", "", "DE");
    CHECK_EQ(print_address(de, "DE", "de", c, small, sizeof small), -ENOBUFS);
    json_decref(c);
}

/* Pages of a PDF cairo wrote: its "/Type /Page" objects. */
static int pages(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    static char buf[4 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (size_t i = 0; i + 11 < n; i++)
        if (!memcmp(buf + i, "/Type /Page", 11) && buf[i + 11] != 's')
            count++;
    return count;
}

static struct outreach_handout make(size_t n, const char *body)
{
    struct outreach_handout h = {.channel = "print"};
    h.rows = calloc(n, sizeof *h.rows);
    h.n = n;
    for (size_t i = 0; i < n; i++) {
        h.rows[i].id = (int64_t)i + 1;
        h.rows[i].subject = strdup("Angebot");
        h.rows[i].body = strdup(body);
        h.rows[i].contact = contact("Jürgen", "Weiß", "Hauptstraße 5", "10115", "Berlin", "", "DE");
    }
    return h;
}

static void test_files(void)
{
    char dir[] = "/tmp/outpost-print.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], tmp[300];
    snprintf(path, sizeof path, "%s/out.pdf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct op_error err;
    op_error_clear(&err);
    struct print_options o = {.paper = PRINT_A4,
                              .labels = 1,
                              .country = "DE",
                              .format = "{street}\n{postal_code} {locality}\n{country}",
                              .language = "de"};
    /* A4: 24 labels a sheet */
    struct outreach_handout h = make(25, "x");
    CHECK_EQ(print_letters_write(path, &h, &o, &err), 0);
    CHECK_EQ(pages(path), 2);
    CHECK(access(tmp, F_OK) != 0);
    h.n = 24;
    CHECK_EQ(print_letters_write(path, &h, &o, &err), 0);
    CHECK_EQ(pages(path), 1);
    /* Letter: 30 a sheet */
    o.paper = PRINT_LETTER;
    h.n = 25;
    CHECK_EQ(print_letters_write(path, &h, &o, &err), 0);
    CHECK_EQ(pages(path), 1);
    outreach_handout_free(&h);
    /* letters: one a page; a long body continues on the next page */
    o.labels = 0;
    o.paper = PRINT_A4;
    o.sender = "Outpost GmbH\nAm Markt 1\n10117 Berlin";
    h = make(2, "kurz");
    CHECK_EQ(print_letters_write(path, &h, &o, &err), 0);
    CHECK_EQ(pages(path), 2);
    outreach_handout_free(&h);
    static const char line[] = "Zeile des Briefes, die lang genug ist.\n";
    size_t ll = sizeof line - 1;
    char *longb = malloc(200 * ll + 1);
    for (int i = 0; i < 200; i++)
        memcpy(longb + (size_t)i * ll, line, ll);
    longb[200 * ll] = '\0';
    h = make(1, longb);
    free(longb);
    CHECK_EQ(print_letters_write(path, &h, &o, &err), 0);
    CHECK(pages(path) >= 3);
    /* refused: no sender on a letter; a directory that does not exist */
    o.sender = "";
    unlink(path);
    CHECK_EQ(print_letters_write(path, &h, &o, &err), -EINVAL);
    CHECK_STR(err.field, "sender");
    CHECK(access(path, F_OK) != 0);
    o.sender = "X";
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/out.pdf", dir);
    op_error_clear(&err);
    CHECK(print_letters_write(bad, &h, &o, &err) < 0);
    CHECK_CONTAINS(err.msg, "cannot write");
    outreach_handout_free(&h);
    struct outreach_handout empty = {.channel = "print"};
    CHECK_EQ(print_letters_write(path, &empty, &o, &err), -EINVAL);
    CHECK(access(path, F_OK) != 0);
    rmdir(dir);
}

int main(void)
{
    RUN(test_formats);
    RUN(test_files);
    return tl_report();
}
