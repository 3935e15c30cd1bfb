/* Tests for sync/toolkit/csv_writer.c: when fields are quoted, how quotes are
 * doubled, CRLF row ends, the formula guard, sticky write errors, and that csv_reader reads
 * back exactly what was written, for awkward and for random values. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv_reader.h"
#include "csv_writer.h"
#include "testlib.h"

/* Writes one row of n fields and returns the bytes written. */
static char *row(const char *const *fields, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    struct csv_writer w;
    csv_writer_init(&w, o);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(csv_writer_str(&w, fields[i]), 0);
    CHECK_EQ(csv_writer_end_row(&w), 0);
    fclose(o);
    return buf;
}

#define ROW(expected, ...)                                                                         \
    do {                                                                                           \
        const char *f_[] = {__VA_ARGS__};                                                          \
        char *got_ = row(f_, sizeof f_ / sizeof f_[0]);                                            \
        CHECK_STR(got_, expected);                                                                 \
        free(got_);                                                                                \
    } while (0)

static void test_quoting(void)
{
    ROW("a,b,c\r\n", "a", "b", "c");
    ROW("\"a,b\",c\r\n", "a,b", "c");
    ROW("\"say \"\"hi\"\"\"\r\n", "say \"hi\"");
    ROW("\"\"\"\"\r\n", "\"");
    ROW("\"l1\nl2\",\"l1\r\nl2\",\"cr\rx\"\r\n", "l1\nl2", "l1\r\nl2", "cr\rx");
    ROW("\" lead\",\"trail \",\"\ttab\",in side\r\n", " lead", "trail ", "\ttab", "in side");
    ROW(",,\r\n", "", NULL, "");
    ROW("Łódź,\xe4\xb8\xad\xe6\x96\x87,\xe0\xa4\xb9\xe0\xa4\xbf\r\n", "Łódź",
        "\xe4\xb8\xad\xe6\x96\x87", "\xe0\xa4\xb9\xe0\xa4\xbf");
    /* a row of one empty field must not be a blank line */
    ROW("\"\"\r\n", "");
    ROW("x\r\n", "x");
    /* quotes only where needed: a lone quote in the middle is still quoted */
    ROW("\"a\"\"b\"\r\n", "a\"b");
}

static void test_forced_quotes(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    struct csv_writer w;
    csv_writer_init(&w, o);
    csv_writer_quoted(&w, "", 0);
    csv_writer_field(&w, NULL, 0);
    csv_writer_quoted(&w, "a\"b", 3);
    csv_writer_end_row(&w);
    csv_writer_quoted(&w, NULL, 0); /* one quoted empty field: already not blank */
    csv_writer_end_row(&w);
    fclose(o);
    CHECK_STR(buf, "\"\",,\"a\"\"b\"\r\n\"\"\r\n");
    free(buf);
}

static void test_needs_quotes(void)
{
    CHECK_EQ(csv_needs_quotes("plain", 5), 0);
    CHECK_EQ(csv_needs_quotes("", 0), 0);
    CHECK_EQ(csv_needs_quotes("a;b", 3), 0);
    CHECK_EQ(csv_needs_quotes("a,b", 3), 1);
    CHECK_EQ(csv_needs_quotes("a\"b", 3), 1);
    CHECK_EQ(csv_needs_quotes("a\rb", 3), 1);
    CHECK_EQ(csv_needs_quotes("a\nb", 3), 1);
    CHECK_EQ(csv_needs_quotes(" a", 2), 1);
    CHECK_EQ(csv_needs_quotes("a ", 2), 1);
    CHECK_EQ(csv_needs_quotes("\xEF\xBB\xBFx", 4), 1);
    /* length is honoured: the comma is past the end */
    CHECK_EQ(csv_needs_quotes("ab,", 2), 0);
}

/* The formula guard: which cells a spreadsheet would run, and how
 * csv_writer_text writes them. */
static void test_formula_guard(void)
{
    CHECK(csv_starts_formula("=1+1", 4));
    CHECK(csv_starts_formula("  @SUM(A1)", 10));
    CHECK(csv_starts_formula("\tx", 2));
    CHECK(csv_starts_formula("\rx", 2));
    CHECK(csv_starts_formula("\nx", 2));
    CHECK(csv_starts_formula("-12", 3));
    CHECK(csv_starts_formula("+49 30 1234567", 14));
    CHECK(!csv_starts_formula("a=1", 3));
    CHECK(!csv_starts_formula("'=1", 3));
    CHECK(!csv_starts_formula("", 0));
    CHECK(!csv_starts_formula("   ", 3));
    CHECK(!csv_starts_formula("=", 0)); /* the length is what counts */
    CHECK(!csv_starts_formula("\0=", 2));

    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    struct csv_writer w;
    csv_writer_init(&w, o);
    static const char *const cells[] = {
        "=HYPERLINK(\"http://x/\")", "+49 30 1", "-12", "@a", " =1", "plain", "a=b", "", NULL};
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++)
        CHECK_EQ(csv_writer_text(&w, cells[i], cells[i] ? strlen(cells[i]) : 0), 0);
    CHECK_EQ(csv_writer_end_row(&w), 0);
    fclose(o);
    CHECK_STR(buf, "\"'=HYPERLINK(\"\"http://x/\"\")\",\"'+49 30 1\",\"'-12\",\"'@a\",\"' =1\","
                   "plain,a=b,,\r\n");
    free(buf);
}

static void test_write_error(void)
{
    FILE *ro = fopen("/dev/null", "r");
    CHECK(ro != NULL);
    if (!ro)
        return;
    setvbuf(ro, NULL, _IONBF, 0); /* fail on the write, not on a later flush */
    struct csv_writer w;
    csv_writer_init(&w, ro);
    int rc = csv_writer_str(&w, "x");
    CHECK(rc < 0);
    CHECK(csv_writer_end_row(&w) < 0);
    CHECK_EQ(w.error, rc);
    fclose(ro);
}

/* Deterministic pseudo-random values over an alphabet full of separators,
 * quotes, line ends, spaces and multi-byte characters. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static const char *const atoms[] = {
    ",", "\"", "\r", "\n", "\r\n", " ", "\t", "a", "Z", "0", "é", "Ж", "中", "ह", "😀", "\"\"", ";",
};

static void random_value(char *buf, size_t cap)
{
    size_t n = next_rand() % 12, o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *a = atoms[next_rand() % (sizeof atoms / sizeof atoms[0])];
        size_t l = strlen(a);
        if (o + l + 1 > cap)
            break;
        memcpy(buf + o, a, l + 1);
        o += l;
    }
}

static void test_round_trip(void)
{
    enum { ROWS = 2000, COLS = 5 };
    static char values[ROWS][COLS][64];
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    struct csv_writer w;
    csv_writer_init(&w, o);
    for (int r = 0; r < ROWS; r++) {
        for (int c = 0; c < COLS; c++) {
            random_value(values[r][c], sizeof values[r][c]);
            csv_writer_str(&w, values[r][c]);
        }
        /* all-empty rows would be blank lines if COLS were 1; with 5 they are ",,,," */
        csv_writer_end_row(&w);
    }
    CHECK_EQ(w.error, 0);
    fclose(o);

    FILE *in = fmemopen(buf, len, "r");
    struct csv_reader *rd;
    CHECK_EQ(csv_reader_new(in, NULL, &rd), 0);
    struct op_error err;
    int mismatches = 0, rows = 0, n;
    while ((n = csv_reader_next(rd, &err)) > 0) {
        CHECK_EQ(n, COLS);
        const struct csv_field *fs = csv_reader_fields(rd);
        for (int c = 0; c < COLS && rows < ROWS; c++)
            if (strcmp(fs[c].data, values[rows][c])) {
                if (!mismatches)
                    fprintf(stderr, "row %d col %d: wrote \"%s\" read \"%s\"\n", rows, c,
                            values[rows][c], fs[c].data);
                mismatches++;
            }
        rows++;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(rows, ROWS);
    CHECK_EQ(mismatches, 0);
    csv_reader_free(rd);
    fclose(in);
    free(buf);
}

int main(void)
{
    RUN(test_quoting);
    RUN(test_forced_quotes);
    RUN(test_needs_quotes);
    RUN(test_formula_guard);
    RUN(test_write_error);
    RUN(test_round_trip);
    return tl_report();
}
