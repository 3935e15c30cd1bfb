/*
 * Streaming RFC 4180 reader; see csv_reader.h. Input flows through one
 * chunk buffer; the current record is unquoted into one growable buffer
 * (fields separated by NUL terminators) whose size is capped by
 * max_columns * (max_field + 1), so no input can make it grow without
 * bound. Runs of ordinary bytes are found with a lookup table and copied
 * in one go, which keeps the per-byte cost low on large imports.
 */
#include "csv_reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "utf8.h"

#define CHUNK 65536u
#define REC_INITIAL 4096u

struct csv_reader {
    FILE *in;
    size_t max_field;
    size_t max_columns;
    int ragged;

    unsigned char *buf; /* CHUNK bytes of input */
    size_t pos, end;
    int in_eof;
    int io_error;
    int started; /* the byte order mark has been looked for */

    unsigned long line;     /* physical line of the next unread byte */
    unsigned long rec_line; /* where the current record starts */

    struct buf rec; /* the current record's unquoted fields, each NUL-terminated */
    size_t *offs;
    struct csv_field *fields;
    size_t nfields;
    size_t header_n; /* field count of the first record; 0 before it */

    int sticky; /* non-zero: an unrecoverable error; returned again */
    unsigned long err_line;
    size_t err_col;
    char err_msg[sizeof(((struct op_error *)0)->msg)];
};

/* Bytes that end a run inside an unquoted or a quoted field. */
static const unsigned char stop_unquoted[256] = {
    [0] = 1, [','] = 1, ['"'] = 1, ['\r'] = 1, ['\n'] = 1,
};
static const unsigned char stop_quoted[256] = {
    [0] = 1,
    ['"'] = 1,
    ['\r'] = 1,
    ['\n'] = 1,
};

int csv_reader_new(FILE *in, const struct csv_limits *limits, struct csv_reader **out)
{
    size_t max_field = limits && limits->max_field ? limits->max_field : CSV_MAX_FIELD_DEFAULT;
    size_t max_columns =
        limits && limits->max_columns ? limits->max_columns : CSV_MAX_COLUMNS_DEFAULT;
    if (!in || max_field > CSV_MAX_FIELD_LIMIT || max_columns > CSV_MAX_COLUMNS_LIMIT)
        return -EINVAL;

    struct csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->in = in;
    r->max_field = max_field;
    r->max_columns = max_columns;
    r->ragged = limits ? limits->ragged : 0;
    r->line = 1;
    /* 32-bit boards: the product of the largest caps does not fit */
    size_t recmax =
        max_field + 1 > SIZE_MAX / max_columns ? SIZE_MAX : max_columns * (max_field + 1);
    buf_init(&r->rec, recmax);
    r->buf = malloc(CHUNK);
    r->offs = calloc(max_columns, sizeof *r->offs);
    r->fields = calloc(max_columns, sizeof *r->fields);
    if (!r->buf || buf_reserve(&r->rec, REC_INITIAL < recmax ? REC_INITIAL : recmax) < 0 ||
        !r->offs || !r->fields) {
        csv_reader_free(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

void csv_reader_free(struct csv_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    buf_done(&r->rec);
    free(r->offs);
    free(r->fields);
    free(r);
}

const struct csv_field *csv_reader_fields(const struct csv_reader *r)
{
    return r->fields;
}

size_t csv_reader_nfields(const struct csv_reader *r)
{
    return r->nfields;
}

unsigned long csv_reader_line(const struct csv_reader *r)
{
    return r->rec_line;
}

int csv_reader_broken(const struct csv_reader *r)
{
    return r->sticky;
}

void csv_reader_error_pos(const struct csv_reader *r, unsigned long *line, size_t *column)
{
    if (line)
        *line = r->err_line;
    if (column)
        *column = r->err_col;
}

__attribute__((format(printf, 6, 7))) static int fail(struct csv_reader *r, struct op_error *err,
                                                      int sticky, unsigned long line, size_t col,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err_msg, sizeof r->err_msg, fmt, ap);
    va_end(ap);
    r->err_line = line;
    r->err_col = col;
    if (sticky)
        r->sticky = -EINVAL;
    return op_error_set(err, -EINVAL, NULL, "%s", r->err_msg);
}

static int fail_io(struct csv_reader *r, struct op_error *err)
{
    r->sticky = -EIO;
    r->err_line = r->line;
    r->err_col = 0;
    snprintf(r->err_msg, sizeof r->err_msg, "read error after line %lu", r->line);
    return op_error_set(err, -EIO, NULL, "%s", r->err_msg);
}

/* Makes input available; returns 1 if there is some, 0 at end or error. */
static int fill(struct csv_reader *r)
{
    if (r->pos < r->end)
        return 1;
    if (r->in_eof)
        return 0;
    size_t n = fread(r->buf, 1, CHUNK, r->in);
    r->pos = 0;
    r->end = n;
    if (n == 0) {
        r->in_eof = 1;
        if (ferror(r->in))
            r->io_error = 1;
        return 0;
    }
    return 1;
}

/* The next byte without consuming it, or -1 at end of input. */
static inline int peek(struct csv_reader *r)
{
    if (r->pos < r->end || fill(r))
        return r->buf[r->pos];
    return -1;
}

/* Appends to the record; the field and column caps, checked first, keep
 * it under its own cap, so only memory can run out. */
static int rec_add(struct csv_reader *r, struct op_error *err, const void *p, size_t n)
{
    if (buf_append(&r->rec, p, n) < 0) {
        r->sticky = -ENOMEM;
        return op_error_set(err, -ENOMEM, NULL, "out of memory reading CSV");
    }
    return 0;
}

/* Appends field bytes, enforcing the field length cap. */
static int put(struct csv_reader *r, struct op_error *err, const void *p, size_t n,
               size_t field_off, unsigned long field_line, size_t col)
{
    if (r->rec.len - field_off + n > r->max_field)
        return fail(r, err, 1, field_line, col, "field longer than %zu bytes", r->max_field);
    return rec_add(r, err, p, n);
}

static void describe_byte(int c, char out[16])
{
    if (c > 0x20 && c < 0x7f)
        snprintf(out, 16, "'%c'", c);
    else if (c == ' ')
        snprintf(out, 16, "a space");
    else
        snprintf(out, 16, "byte 0x%02X", (unsigned)c);
}

long csv_utf8_bad_offset(const char *s, size_t len)
{
    return utf8_bad_offset(s, len, 0);
}

/* Appends the buffered bytes up to the next one marked in stop (or the
 * buffer's end) to the field and consumes them. Returns 1 when the buffer
 * ran out first, 0 at a stop byte (not consumed), or a negative errno. */
static int put_run(struct csv_reader *r, struct op_error *err, const unsigned char stop[256],
                   size_t off, unsigned long fline, size_t col)
{
    const unsigned char *s = r->buf + r->pos, *e = r->buf + r->end, *p = s;
    while (p < e && !stop[*p])
        p++;
    if (p > s) {
        int rc = put(r, err, s, (size_t)(p - s), off, fline, col);
        if (rc < 0)
            return rc;
        r->pos += (size_t)(p - s);
    }
    return p == e;
}

/* Reads one quoted field (the opening quote consumed). */
static int read_quoted(struct csv_reader *r, struct op_error *err, size_t off, unsigned long fline,
                       size_t col)
{
    for (;;) {
        if (!fill(r)) {
            if (r->io_error)
                return fail_io(r, err);
            return fail(r, err, 1, fline, col,
                        "unterminated quoted field: the quote opened here is never closed");
        }
        int rc = put_run(r, err, stop_quoted, off, fline, col);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        int c = r->buf[r->pos];
        r->pos++;
        if (c == '"') {
            if (peek(r) != '"')
                return 0; /* the closing quote */
            r->pos++;
        } else if (c == 0) {
            return fail(r, err, 1, r->line, col, "NUL byte in field");
        }
        char ch = (char)c;
        rc = put(r, err, &ch, 1, off, fline, col);
        if (rc < 0)
            return rc;
        if (c == '\r') {
            r->line++;
            if (peek(r) == '\n') {
                r->pos++;
                rc = put(r, err, "\n", 1, off, fline, col);
                if (rc < 0)
                    return rc;
            }
        } else if (c == '\n') {
            r->line++;
        }
    }
}

/* Reads one unquoted field up to (not including) its terminator. */
static int read_unquoted(struct csv_reader *r, struct op_error *err, size_t off,
                         unsigned long fline, size_t col)
{
    for (;;) {
        if (!fill(r))
            return r->io_error ? fail_io(r, err) : 0;
        int rc = put_run(r, err, stop_unquoted, off, fline, col);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        const unsigned char *p = r->buf + r->pos;
        if (*p == '"')
            return fail(r, err, 1, r->line, col,
                        "quote inside an unquoted field (a field containing quotes must be "
                        "enclosed in quotes, with each quote doubled)");
        if (*p == 0)
            return fail(r, err, 1, r->line, col, "NUL byte in field");
        return 0; /* separator or line end, left for the caller */
    }
}

/* Consumes a line end (CR, LF or CRLF) when c, the next byte, starts
 * one, and counts the line. Returns whether it did. */
static int line_end(struct csv_reader *r, int c)
{
    if (c != '\r' && c != '\n')
        return 0;
    r->pos++;
    r->line++;
    if (c == '\r' && peek(r) == '\n')
        r->pos++;
    return 1;
}

int csv_reader_next(struct csv_reader *r, struct op_error *err)
{
    if (r->sticky)
        return op_error_set(err, r->sticky, NULL, "%s", r->err_msg);
    if (!r->started) {
        r->started = 1;
        if (fill(r) && r->end - r->pos >= 3 && !memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3))
            r->pos += 3;
    }
    r->nfields = 0;
    buf_clear(&r->rec);

    /* Blank lines are skipped but counted. */
    for (;;) {
        int c = peek(r);
        if (c < 0)
            return r->io_error ? fail_io(r, err) : 0;
        if (!line_end(r, c))
            break;
    }
    r->rec_line = r->line;

    unsigned long end_line;
    for (;;) {
        size_t col = r->nfields + 1;
        if (r->nfields == r->max_columns)
            return fail(r, err, 1, r->line, col, "more than %zu columns in one row",
                        r->max_columns);
        size_t off = r->rec.len;
        unsigned long fline = r->line;
        int quoted = 0;
        int rc;
        if (peek(r) == '"') {
            r->pos++;
            quoted = 1;
            rc = read_quoted(r, err, off, fline, col);
        } else {
            rc = read_unquoted(r, err, off, fline, col);
        }
        if (rc < 0)
            return rc;
        int c = peek(r);
        if (c < 0 && r->io_error)
            return fail_io(r, err);
        if (quoted && c >= 0 && c != ',' && c != '\r' && c != '\n') {
            char what[16];
            describe_byte(c, what);
            return fail(r, err, 1, r->line, col,
                        "%s after the closing quote; expected a comma or a line end", what);
        }
        rc = rec_add(r, err, "", 1);
        if (rc < 0)
            return rc;
        r->offs[r->nfields] = off;
        r->fields[r->nfields].len = r->rec.len - 1 - off;
        r->fields[r->nfields].line = fline;
        r->fields[r->nfields].quoted = quoted;
        r->nfields++;
        if (c == ',') {
            r->pos++;
            continue;
        }
        end_line = r->line;
        (void)line_end(r, c);
        break;
    }
    for (size_t i = 0; i < r->nfields; i++)
        r->fields[i].data = r->rec.data + r->offs[i];

    if (r->header_n == 0) {
        r->header_n = r->nfields;
    } else if (!r->ragged && r->nfields != r->header_n) {
        if (r->nfields > r->header_n)
            return fail(r, err, 0, r->fields[r->header_n].line, r->header_n + 1,
                        "expected %zu fields as in the first row, found %zu", r->header_n,
                        r->nfields);
        return fail(r, err, 0, end_line, r->nfields + 1,
                    "expected %zu fields as in the first row, found %zu", r->header_n, r->nfields);
    }

    for (size_t i = 0; i < r->nfields; i++) {
        const struct csv_field *f = &r->fields[i];
        long bad = csv_utf8_bad_offset(f->data, f->len);
        if (bad < 0)
            continue;
        unsigned long line = f->line;
        for (long k = 0; k < bad; k++) {
            if (f->data[k] == '\n' || (f->data[k] == '\r' && f->data[k + 1] != '\n'))
                line++;
        }
        return fail(r, err, 0, line, i + 1,
                    "invalid UTF-8 (byte 0x%02X at byte %ld of the field); save the file as "
                    "UTF-8",
                    (unsigned)(unsigned char)f->data[bad], bad + 1);
    }
    return (int)r->nfields;
}
