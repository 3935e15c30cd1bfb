/* Tests for sync/toolkit/csv_reader.c: every RFC 4180 case, the extensions
 * (BOM, CR/LF/CRLF, blank lines) and every error with its line and column,
 * including input that straddles the reader's 64 KiB chunk boundary. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "csv_reader.h"
#include "testlib.h"

/* Parses `len` bytes and renders the records as "[a|b]\n" lines, fields
 * with their start line as "a@1" when with_lines is set. Stops at the
 * first error and appends "ERR line:col msg". */
static char *render(const char *in, size_t len, const struct csv_limits *lim, int with_lines)
{
    FILE *f = fmemopen((void *)in, len, "r");
    if (!len)
        f = fopen("/dev/null", "r");
    struct csv_reader *r = NULL;
    if (!f || csv_reader_new(f, lim, &r) < 0)
        return strdup("SETUP FAILED");
    char *out = NULL;
    size_t outlen = 0;
    FILE *o = open_memstream(&out, &outlen);
    for (;;) {
        struct op_error err;
        op_error_clear(&err);
        int n = csv_reader_next(r, &err);
        if (n == 0)
            break;
        if (n < 0) {
            unsigned long line;
            size_t col;
            csv_reader_error_pos(r, &line, &col);
            fprintf(o, "ERR %lu:%zu %s", line, col, err.msg);
            break;
        }
        const struct csv_field *fs = csv_reader_fields(r);
        CHECK_EQ(csv_reader_nfields(r), n);
        fputc('[', o);
        for (int i = 0; i < n; i++) {
            CHECK_EQ(strlen(fs[i].data), fs[i].len);
            fprintf(o, "%s%s", i ? "|" : "", fs[i].data);
            if (with_lines)
                fprintf(o, "@%lu", fs[i].line);
        }
        fputs("]\n", o);
    }
    fclose(o);
    csv_reader_free(r);
    fclose(f);
    return out;
}

/* check(rendered input, want): the rendering compared with CHECK_STR or
 * searched with CHECK_CONTAINS. */
#define EXPECT_AS(check, input, with_lines, want)                                                  \
    do {                                                                                           \
        char *got_ = render(input, sizeof(input) - 1, NULL, with_lines);                           \
        check(got_, want);                                                                         \
        free(got_);                                                                                \
    } while (0)
#define EXPECT(input, expected) EXPECT_AS(CHECK_STR, input, 0, expected)
#define EXPECT_LINES(input, expected) EXPECT_AS(CHECK_STR, input, 1, expected)
#define EXPECT_ERR(input, prefix) EXPECT_AS(CHECK_CONTAINS, input, 0, prefix)

static void test_basic(void)
{
    EXPECT("a,b,c\n1,2,3\n", "[a|b|c]\n[1|2|3]\n");
    EXPECT("a,b,c\n1,2,3", "[a|b|c]\n[1|2|3]\n");                   /* no final line end */
    EXPECT("a,b\r\n1,2\r\n", "[a|b]\n[1|2]\n");                     /* CRLF */
    EXPECT("a,b\r1,2\r", "[a|b]\n[1|2]\n");                         /* lone CR */
    EXPECT("a,b\r\n1,2\n3,4\r5,6", "[a|b]\n[1|2]\n[3|4]\n[5|6]\n"); /* mixed */
    EXPECT("a\n", "[a]\n");
    EXPECT("", "");
    EXPECT("\n\n", "");
}

static void test_empty_and_spaces(void)
{
    EXPECT("a,b,c\n,,\n", "[a|b|c]\n[||]\n");
    EXPECT("a,b\n\"\",\"\"\n", "[a|b]\n[|]\n");
    EXPECT("a,b\n x , y \n", "[a|b]\n[ x | y ]\n"); /* spaces belong to the field */
    EXPECT("a,b\n1,\n", "[a|b]\n[1|]\n");           /* empty last field */
    EXPECT("a,b\n1,", "[a|b]\n[1|]\n");
}

static void test_quoted(void)
{
    EXPECT("a,b\n\"x,y\",z\n", "[a|b]\n[x,y|z]\n");
    EXPECT("a\n\"say \"\"hi\"\"\"\n", "[a]\n[say \"hi\"]\n");
    EXPECT("a\n\"\"\"\"\n", "[a]\n[\"]\n");
    EXPECT("a,b\n\"line1\nline2\",x\n", "[a|b]\n[line1\nline2|x]\n");
    EXPECT("a,b\r\n\"line1\r\nline2\",x\r\n", "[a|b]\n[line1\r\nline2|x]\n");
    EXPECT("a\n\"\xc3\xa9t\xc3\xa9\"\n", "[a]\n[\xc3\xa9t\xc3\xa9]\n");
    /* a quoted last record without a line end */
    EXPECT("a,b\n1,\"2\"", "[a|b]\n[1|2]\n");
}

static void test_lines(void)
{
    /* an embedded line break moves the following fields to the next line */
    EXPECT_LINES("a,b,c\n\"x\ny\",\"p\r\nq\",z\nk,l,m\n",
                 "[a@1|b@1|c@1]\n[x\ny@2|p\r\nq@3|z@4]\n[k@5|l@5|m@5]\n");
    /* blank lines are skipped but counted, in the middle and at the end */
    EXPECT_LINES("a,b\n\n1,2\r\n\r\n\r\n3,4\n\n\n", "[a@1|b@1]\n[1@3|2@3]\n[3@6|4@6]\n");
    /* a lone CR inside quotes counts as a line break too */
    EXPECT_LINES("a,b\n\"x\ry\",z\n", "[a@1|b@1]\n[x\ry@2|z@3]\n");
}

static void test_bom(void)
{
    EXPECT("\xEF\xBB\xBFname,email\nx,y\n", "[name|email]\n[x|y]\n");
    EXPECT("\xEF\xBB\xBF", "");
    /* only at the very start: elsewhere it is data (U+FEFF is valid UTF-8) */
    EXPECT("a\n\xEF\xBB\xBFx\n", "[a]\n[\xEF\xBB\xBFx]\n");
}

static void test_errors(void)
{
    EXPECT_ERR("a,b\n1,\"open\n\n", "ERR 2:2 unterminated quoted field");
    EXPECT_ERR("a,b\n\n\n1,\"open\nmore\nmore", "ERR 4:2 unterminated quoted field");
    EXPECT_ERR("a,b\n1,ab\"c\n", "ERR 2:2 quote inside an unquoted field");
    EXPECT_ERR("a,b\n1, \"x\"\n", "ERR 2:2 quote inside an unquoted field");
    EXPECT_ERR("a,b\n\"x\"y,1\n", "ERR 2:1 'y' after the closing quote");
    EXPECT_ERR("a,b\n\"x\" ,1\n", "ERR 2:1 a space after the closing quote");
    EXPECT_ERR("a,b\n\"x\ny\"z,1\n", "ERR 3:1 'z' after the closing quote");
    EXPECT_ERR("a,b,c\n1,2\n", "ERR 2:3 expected 3 fields as in the first row, found 2");
    EXPECT_ERR("a,b\n1,2,3,4\n", "ERR 2:3 expected 2 fields as in the first row, found 4");
    EXPECT_ERR("a,b\n1,\"2\n\",3\n", "ERR 3:3 expected 2 fields");
    EXPECT_ERR("a,b\nx,\xff\n", "ERR 2:2 invalid UTF-8 (byte 0xFF at byte 1 of the field)");
    EXPECT_ERR("a,b\nx,\"ok\nstill ok\n\xc3(\"\n", "ERR 4:2 invalid UTF-8 (byte 0xC3 at byte 13");
    EXPECT_ERR("a\n\xc0\xaf\n", "ERR 2:1 invalid UTF-8");         /* overlong '/' */
    EXPECT_ERR("a\n\xed\xa0\x80\n", "ERR 2:1 invalid UTF-8");     /* surrogate */
    EXPECT_ERR("a\n\xf4\x90\x80\x80\n", "ERR 2:1 invalid UTF-8"); /* above U+10FFFF */
    EXPECT_ERR("a\nab\xe2\x82\n", "ERR 2:1 invalid UTF-8 (byte 0xE2 at byte 3"); /* truncated */
    EXPECT_ERR("a,b\nx,y\0z\n", "ERR 2:2 NUL byte in field");
    EXPECT_ERR("a,b\nx,\"y\0z\"\n", "ERR 2:2 NUL byte in field");
    EXPECT_ERR("a\xff,b\n", "ERR 1:1 invalid UTF-8");
}

/* A reader with the default limits over len bytes of in, its stream in *f. */
static struct csv_reader *reader_of(const char *in, size_t len, FILE **f)
{
    struct csv_reader *r = NULL;
    *f = fmemopen((void *)in, len, "r");
    CHECK_EQ(csv_reader_new(*f, NULL, &r), 0);
    return r;
}

/* After a field-count or UTF-8 error reading goes on; after a structural
 * error every call repeats it. */
static void test_recovery(void)
{
    static const char in[] = "a,b\n1\n\xff,2\n3,4\n";
    FILE *f;
    struct csv_reader *r = reader_of(in, sizeof in - 1, &f);
    struct op_error err;
    CHECK_EQ(csv_reader_next(r, &err), 2);
    CHECK_EQ(csv_reader_next(r, &err), -EINVAL);
    CHECK_EQ(csv_reader_broken(r), 0);
    CHECK_EQ(csv_reader_next(r, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "invalid UTF-8");
    CHECK_EQ(csv_reader_broken(r), 0);
    CHECK_EQ(csv_reader_next(r, &err), 2);
    CHECK_STR(csv_reader_fields(r)[0].data, "3");
    CHECK_EQ(csv_reader_line(r), 4);
    CHECK_EQ(csv_reader_next(r, &err), 0);
    csv_reader_free(r);
    fclose(f);

    static const char bad[] = "a\n\"x\n";
    f = fmemopen((void *)bad, sizeof bad - 1, "r");
    CHECK_EQ(csv_reader_new(f, NULL, &r), 0);
    CHECK_EQ(csv_reader_next(r, &err), 1);
    CHECK_EQ(csv_reader_next(r, &err), -EINVAL);
    CHECK(csv_reader_broken(r) != 0);
    op_error_clear(&err);
    CHECK_EQ(csv_reader_next(r, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "unterminated quoted field");
    csv_reader_free(r);
    fclose(f);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_caps(void)
{
    /* default: 65536 bytes allowed, one more refused */
    char *big = repeat('x', 65536);
    char *in = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&in, &len);
    fprintf(o, "a,b\n1,%s\n2,\"%sy\"\n", big, big);
    fclose(o);
    char *got = render(in, len, NULL, 0);
    CHECK_CONTAINS(got, "ERR 3:2 field longer than 65536 bytes");
    CHECK(strncmp(got, "[a|b]\n[1|x", 10) == 0);
    free(got);
    free(in);
    free(big);

    struct csv_limits lim = {.max_field = 4, .max_columns = 3};
    got = render("abcd,\"ab\"\"c\"\n", 13, &lim, 0);
    CHECK_STR(got, "[abcd|ab\"c]\n");
    free(got);
    got = render("a\nabcde\n", 8, &lim, 0);
    CHECK_STR(got, "[a]\nERR 2:1 field longer than 4 bytes");
    free(got);
    got = render("a,b,c,d\n", 8, &lim, 0);
    CHECK_STR(got, "ERR 1:4 more than 3 columns in one row");
    free(got);

    /* the default column cap is 256 */
    o = open_memstream(&in, &len);
    for (int i = 0; i < 257; i++)
        fprintf(o, "%sc%d", i ? "," : "", i);
    fputc('\n', o);
    fclose(o);
    got = render(in, len, NULL, 0);
    CHECK_STR(got, "ERR 1:257 more than 256 columns in one row");
    free(got);
    free(in);

    struct csv_limits too_big = {.max_field = CSV_MAX_FIELD_LIMIT + 1};
    struct csv_reader *r = NULL;
    CHECK_EQ(csv_reader_new(stdin, &too_big, &r), -EINVAL);
}

/* Line ends, escaped quotes and fields cut by the 64 KiB chunk boundary. */
static void test_chunk_boundaries(void)
{
    for (size_t shift = 0; shift <= 10; shift++) {
        FILE *f = tmpfile();
        fputs("a,b\n", f);
        /* pad so that, as shift grows, the boundary at offset 65536 falls
         * inside the escaped quote, the quoted CRLF, and the final CRLF */
        size_t pad = 65536 - 4 - 2 - shift;
        char *fill = repeat('p', pad);
        fprintf(f, "%s,\"q\"\"r\r\ns\"\r\nlast,\"\xc3\xa9\"\r\n", fill);
        rewind(f);
        struct csv_reader *r;
        CHECK_EQ(csv_reader_new(f, NULL, &r), 0);
        struct op_error err;
        CHECK_EQ(csv_reader_next(r, &err), 2);
        CHECK_EQ(csv_reader_next(r, &err), 2);
        const struct csv_field *fs = csv_reader_fields(r);
        CHECK_EQ(fs[0].len, pad);
        CHECK_STR(fs[1].data, "q\"r\r\ns");
        CHECK_EQ(fs[1].line, 2);
        CHECK_EQ(csv_reader_next(r, &err), 2);
        fs = csv_reader_fields(r);
        CHECK_STR(fs[0].data, "last");
        CHECK_STR(fs[1].data, "\xc3\xa9");
        CHECK_EQ(fs[0].line, 4);
        CHECK_EQ(csv_reader_next(r, &err), 0);
        csv_reader_free(r);
        fclose(f);
        free(fill);
    }
}

/* Many rows through a small constant memory: line numbers stay exact. */
static void test_many_rows(void)
{
    FILE *f = tmpfile();
    fputs("id,text\r\n", f);
    for (int i = 0; i < 50000; i++)
        fprintf(f, "%d,\"row %d, with \"\"quotes\"\"\"\r\n", i, i);
    fputs("bad,\"x\"y\r\n", f);
    rewind(f);
    struct csv_reader *r;
    CHECK_EQ(csv_reader_new(f, NULL, &r), 0);
    struct op_error err;
    int n, rows = 0, bad_text = 0;
    CHECK_EQ(csv_reader_next(r, &err), 2);
    char want[64];
    while ((n = csv_reader_next(r, &err)) > 0) {
        snprintf(want, sizeof want, "row %d, with \"quotes\"", rows);
        if (strcmp(csv_reader_fields(r)[1].data, want))
            bad_text++;
        rows++;
    }
    CHECK_EQ(rows, 50000);
    CHECK_EQ(bad_text, 0);
    CHECK_EQ(n, -EINVAL);
    unsigned long line;
    size_t col;
    csv_reader_error_pos(r, &line, &col);
    CHECK_EQ(line, 50002);
    CHECK_EQ(col, 2);
    csv_reader_free(r);
    fclose(f);
}

/* A quoted empty field is told apart from an empty one. */
static void test_quoted_flag(void)
{
    static const char in[] = "a,b,c\n\"\",,\"x\"\n";
    FILE *f;
    struct csv_reader *r = reader_of(in, sizeof in - 1, &f);
    struct op_error err;
    CHECK_EQ(csv_reader_next(r, &err), 3);
    CHECK_EQ(csv_reader_next(r, &err), 3);
    const struct csv_field *fs = csv_reader_fields(r);
    CHECK_EQ(fs[0].quoted, 1);
    CHECK_EQ(fs[0].len, 0);
    CHECK_EQ(fs[1].quoted, 0);
    CHECK_EQ(fs[1].len, 0);
    CHECK_EQ(fs[2].quoted, 1);
    csv_reader_free(r);
    fclose(f);
}

static void test_ragged(void)
{
    struct csv_limits lim = {.ragged = 1};
    char *got = render("a,b\n1\n1,2,3\n", 12, &lim, 0);
    CHECK_STR(got, "[a|b]\n[1]\n[1|2|3]\n");
    free(got);
}

static void test_utf8_validator(void)
{
    CHECK_EQ(csv_utf8_bad_offset("", 0), -1);
    CHECK_EQ(csv_utf8_bad_offset("plain", 5), -1);
    CHECK_EQ(csv_utf8_bad_offset("Ł\xc3\xb3"
                                 "d\xc5\xba",
                                 7),
             -1);
    CHECK_EQ(csv_utf8_bad_offset("\xe4\xb8\xad\xe6\x96\x87", 6), -1); /* Han */
    CHECK_EQ(csv_utf8_bad_offset("\xe0\xa4\xb9\xe0\xa4\xbf", 6), -1); /* Devanagari */
    CHECK_EQ(csv_utf8_bad_offset("\xf0\x9f\x98\x80", 4), -1);         /* emoji */
    CHECK_EQ(csv_utf8_bad_offset("ab\x80", 3), 2);                    /* stray continuation */
    CHECK_EQ(csv_utf8_bad_offset("\xe0\x80\xaf", 3), 0);              /* overlong */
    CHECK_EQ(csv_utf8_bad_offset("a\0b", 3), 1);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_empty_and_spaces);
    RUN(test_quoted);
    RUN(test_lines);
    RUN(test_bom);
    RUN(test_errors);
    RUN(test_recovery);
    RUN(test_caps);
    RUN(test_chunk_boundaries);
    RUN(test_many_rows);
    RUN(test_quoted_flag);
    RUN(test_ragged);
    RUN(test_utf8_validator);
    return tl_report();
}
