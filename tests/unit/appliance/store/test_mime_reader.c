/*
 * Tests for appliance/store/mime_reader.c, the reader of returned mail
 * that the bounce and reply parsers share: the input refused when too
 * large, empty or holding a NUL byte; lines with LF, CRLF and no
 * end; folded header fields unfolded into one line (tabs, several
 * folds, a blank line ending the block); lines that are not fields
 * skipped; a field longer than its buffer marked cut and refused by
 * mime_field_whole with its name and sizes; parameters in any case,
 * quoted or not, only as whole names, with precise errors for an
 * unclosed quote, an empty value and one too long; multipart bodies
 * split into their parts (preamble and epilogue ignored, trailing
 * blanks on a delimiter, a boundary that only prefixes a line, a
 * message cut before its closing delimiter) and a boundary that starts
 * no part refused naming it.
 */
#include "mime_reader.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

static struct mime_cursor cur(const char *text)
{
    return (struct mime_cursor){text, text + strlen(text)};
}

/* The text of a cursor's range, for comparisons. */
static const char *range(struct mime_cursor c)
{
    static char buf[512];
    size_t n = (size_t)(c.end - c.p);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, c.p, n);
    buf[n] = '\0';
    return buf;
}

static void test_input(void)
{
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(mime_input_check("Subject: x\n", 11, 11, &err), 0);
    CHECK_EQ(mime_input_check("Subject: x\n", 11, 10, &err), -EFBIG);
    CHECK_STR(err.field, "input");
    CHECK_CONTAINS(err.msg, "input: larger than 10 bytes");
    op_error_clear(&err);
    CHECK_EQ(mime_input_check("", 0, 10, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "input: empty");
    op_error_clear(&err);
    CHECK_EQ(mime_input_check("ab\0cd", 5, 10, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "input: a NUL byte at byte 2");
}

static void test_lines(void)
{
    struct mime_cursor c = cur("one\r\ntwo\n\nlast");
    const char *line;
    size_t n;
    CHECK_EQ(mime_next_line(&c, &line, &n), 1);
    CHECK_EQ(n, 3);
    CHECK_EQ(memcmp(line, "one", 3), 0); /* CR is not the line's */
    CHECK_EQ(mime_next_line(&c, &line, &n), 1);
    CHECK_EQ(n, 3);
    CHECK_EQ(mime_next_line(&c, &line, &n), 1);
    CHECK_EQ(n, 0);
    CHECK_EQ(mime_next_line(&c, &line, &n), 1); /* the last line without LF */
    CHECK_EQ(n, 4);
    CHECK_EQ(mime_next_line(&c, &line, &n), 0);
}

static void test_folded_fields(void)
{
    char value[128];
    struct mime_field f = {.value = value, .cap = sizeof value};
    struct mime_cursor c =
        cur("Subject: Ihre\r\n  Quittung\r\n\tvom Montag  \r\n"
            "not a field line\r\n"
            ": no name\r\n"
            "Content-Type: multipart/report;\n report-type=delivery-status;\n\tboundary=\"b1\"\n"
            "X-Empty:\n"
            "\n"
            "Body: not a field\n");
    CHECK_EQ(mime_next_field(&c, &f), 1);
    CHECK_STR(f.name, "Subject");
    CHECK_STR(value, "Ihre Quittung vom Montag"); /* one space a fold, trailing ones gone */
    CHECK_EQ(f.cut, 0);
    CHECK_EQ(mime_next_field(&c, &f), 1); /* the lines without a name are skipped */
    CHECK_STR(f.name, "Content-Type");
    CHECK_STR(value, "multipart/report; report-type=delivery-status; boundary=\"b1\"");
    CHECK_EQ(mime_next_field(&c, &f), 1);
    CHECK_STR(f.name, "X-Empty");
    CHECK_STR(value, "");
    CHECK_EQ(mime_next_field(&c, &f), 0); /* the blank line ends the block */
    CHECK_STR(range(c), "Body: not a field\n");

    /* a name of MIME_NAME_MAX bytes or more is not a field name */
    char longname[200];
    memset(longname, 'X', MIME_NAME_MAX);
    snprintf(longname + MIME_NAME_MAX, sizeof longname - MIME_NAME_MAX, ": v\nTo: a\n");
    c = cur(longname);
    CHECK_EQ(mime_next_field(&c, &f), 1);
    CHECK_STR(f.name, "To");
}

static void test_overlong_field(void)
{
    char value[16];
    struct mime_field f = {.value = value, .cap = sizeof value};
    struct mime_cursor c = cur("Content-Type: text/plain;\n charset=iso-8859-1; format=flowed\n"
                               "References: <a@b>\n");
    CHECK_EQ(mime_next_field(&c, &f), 1);
    CHECK_EQ(f.cut, 1);
    CHECK_EQ(strlen(value), sizeof value - 1); /* the first 15 bytes, terminated */
    CHECK_STR(value, "text/plain; cha");
    CHECK_EQ(f.len, strlen("text/plain; charset=iso-8859-1; format=flowed"));
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(mime_field_whole(&f, &err), -EFBIG);
    CHECK_STR(err.field, "Content-Type");
    CHECK_CONTAINS(err.msg, "Content-Type: the field is 45 bytes, longer than the 15 this "
                            "reader keeps");
    /* the next field is read as usual after a cut one */
    CHECK_EQ(mime_next_field(&c, &f), 1);
    CHECK_STR(f.name, "References");
    CHECK_EQ(f.cut, 0);
    CHECK_EQ(mime_field_whole(&f, &err), 0);
    /* a value of exactly cap - 1 bytes is whole */
    c = cur("A: 123456789012345\n");
    CHECK_EQ(mime_next_field(&c, &f), 1);
    CHECK_EQ(f.cut, 0);
    CHECK_STR(value, "123456789012345");
}

static void test_params(void)
{
    char out[16];
    struct op_error err;
    op_error_clear(&err);
    const char *ct = "Multipart/Report; REPORT-TYPE=delivery-status; boundary=\"a b;c\"";
    char mt[32];
    mime_media_type(ct, mt, sizeof mt);
    CHECK_STR(mt, "multipart/report");
    CHECK_EQ(mime_param(ct, "report-type", out, sizeof out, &err), 1);
    CHECK_STR(out, "delivery-status");
    CHECK_EQ(mime_param(ct, "boundary", out, sizeof out, &err), 1);
    CHECK_STR(out, "a b;c"); /* quoted: spaces and ';' are the value's */
    CHECK_EQ(mime_param(ct, "charset", out, sizeof out, &err), 0);
    /* only a whole name: "xboundary" is not "boundary" */
    CHECK_EQ(mime_param("text/plain; xboundary=1", "boundary", out, sizeof out, &err), 0);
    CHECK_EQ(mime_param("text/plain;charset=utf-8;format=flowed", "charset", out, sizeof out, &err),
             1);
    CHECK_STR(out, "utf-8");

    op_error_clear(&err);
    CHECK_EQ(mime_param("multipart/mixed; boundary=\"open", "boundary", out, sizeof out, &err),
             -EINVAL);
    CHECK_STR(err.field, "boundary");
    CHECK_CONTAINS(err.msg, "parameter boundary: the quoted value has no closing '\"'");
    op_error_clear(&err);
    CHECK_EQ(mime_param("multipart/mixed; boundary=", "boundary", out, sizeof out, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "parameter boundary: empty");
    op_error_clear(&err);
    CHECK_EQ(mime_param("multipart/mixed; boundary=\"\"", "boundary", out, sizeof out, &err),
             -EINVAL);
    op_error_clear(&err);
    CHECK_EQ(mime_param("text/plain; charset=a-very-long-charset-name", "charset", out, sizeof out,
                        &err),
             -EFBIG);
    CHECK_STR(err.field, "charset");
    CHECK_CONTAINS(err.msg, "parameter charset: 24 bytes, longer than the 15 this reader keeps");
}

static void test_parts(void)
{
    struct op_error err;
    op_error_clear(&err);
    struct mime_parts m;
    struct mime_cursor part;
    const char *body = "preamble\r\n"
                       "--b1\r\n"
                       "Content-Type: text/plain\r\n\r\nfirst\r\n"
                       "--b1x\r\n"   /* not a delimiter: the boundary only prefixes it */
                       "--b1 \t\r\n" /* trailing blanks are allowed */
                       "\r\nsecond\r\n"
                       "--b1--\r\n"
                       "epilogue\r\n";
    CHECK_EQ(mime_parts_begin(&m, cur(body), "b1", "multipart/mixed", &err), 0);
    CHECK_EQ(mime_parts_next(&m, &part), 1);
    CHECK_STR(range(part), "Content-Type: text/plain\r\n\r\nfirst\r\n--b1x\r\n");
    CHECK_EQ(m.closed, 0);
    CHECK_EQ(mime_parts_next(&m, &part), 1);
    CHECK_STR(range(part), "\r\nsecond\r\n");
    CHECK_EQ(m.closed, 1);
    CHECK_EQ(mime_parts_next(&m, &part), 0); /* the epilogue is no part */

    /* cut before its closing delimiter: the last part runs to the end */
    CHECK_EQ(mime_parts_begin(&m, cur("--z\nonly\n"), "z", "multipart/mixed", &err), 0);
    CHECK_EQ(mime_parts_next(&m, &part), 1);
    CHECK_STR(range(part), "only\n");
    CHECK_EQ(m.closed, 0);
    CHECK_EQ(mime_parts_next(&m, &part), 0);

    /* missing delimiter: no line starts a part */
    op_error_clear(&err);
    CHECK_EQ(mime_parts_begin(&m, cur("text\n-- b1\n--B1\n"), "b1", "multipart/report", &err),
             -EINVAL);
    CHECK_STR(err.field, "boundary");
    CHECK_CONTAINS(err.msg, "multipart/report: no part starts with its boundary '--b1'");
    /* only the closing delimiter: no part either */
    op_error_clear(&err);
    CHECK_EQ(mime_parts_begin(&m, cur("--b1--\n"), "b1", "multipart/mixed", &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "no part starts with its boundary '--b1'");
    op_error_clear(&err);
    CHECK_EQ(mime_parts_begin(&m, cur("--\n"), "", "multipart/mixed", &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "multipart/mixed: an empty boundary");
}

int main(void)
{
    RUN(test_input);
    RUN(test_lines);
    RUN(test_folded_fields);
    RUN(test_overlong_field);
    RUN(test_params);
    RUN(test_parts);
    return tl_report();
}
