/*
 * A streaming, strict RFC 4180 CSV reader. It pulls a FILE* through one
 * fixed-size chunk buffer and hands out one record at a time, so memory is
 * bounded by the caps (field length, columns per row) and not by the file.
 * Every field carries the physical line where it starts, and every error
 * says where it is (line and 1-based column), because a person has to find
 * the bad spot in a spreadsheet export of thousands of lines. The invariant:
 * a record returned by csv_reader_next is complete, valid UTF-8 without NUL
 * bytes, within the caps, and has as many fields as the first record.
 *
 * Accepted: quoted fields with embedded commas, quotes ("") and line
 * breaks; CRLF, LF or lone CR line ends (mixed, too); a UTF-8 byte order
 * mark at the start; no line end after the last record. Blank lines
 * (nothing at all between two line ends) are skipped wherever they are and
 * still counted for line numbers. Refused: an unterminated quote (reported
 * where the quote opened), a quote inside an unquoted field, anything but a
 * separator or line end after a closing quote, invalid UTF-8, NUL bytes,
 * fields over the length cap, rows over the column cap, and rows with a
 * different number of fields than the first row.
 */
#ifndef OUTPOST_CSV_READER_H
#define OUTPOST_CSV_READER_H

#include <stddef.h>
#include <stdio.h>

#include "op_error.h"

#define CSV_MAX_FIELD_DEFAULT 65536u
#define CSV_MAX_COLUMNS_DEFAULT 256u
#define CSV_MAX_FIELD_LIMIT (16u * 1024u * 1024u)
#define CSV_MAX_COLUMNS_LIMIT 4096u

struct csv_limits {
    size_t max_field;   /* bytes per field after unquoting; 0 = default */
    size_t max_columns; /* fields per record; 0 = default */
    int ragged;         /* non-zero: rows may differ in field count */
};

/* One field of the current record. `data` is NUL-terminated (the field
 * itself never contains NUL) and stays valid until the next call to
 * csv_reader_next or csv_reader_free. */
struct csv_field {
    const char *data;
    size_t len;
    unsigned long line; /* physical line (1-based) where the field starts */
    int quoted;         /* the field was written in quotes */
};

struct csv_reader;

/* Creates a reader over `in`, which stays owned by the caller and is read
 * with fread only. `limits` may be NULL for the defaults; values above the
 * *_LIMIT caps are refused with -EINVAL. Returns 0 or -ENOMEM/-EINVAL. */
int csv_reader_new(FILE *in, const struct csv_limits *limits, struct csv_reader **out);

/* Frees the reader; NULL is allowed. Does not close the FILE. */
void csv_reader_free(struct csv_reader *r);

/* Reads the next record. Returns its number of fields (>= 1), 0 at the end
 * of input, or a negative code: -EINVAL for malformed input (err->msg says
 * what, without the position; csv_reader_error_pos gives it), -EIO when
 * reading failed, -ENOMEM. After a field-count or UTF-8 error the record
 * has been consumed and reading may go on; after any other error every
 * further call returns the same error. */
int csv_reader_next(struct csv_reader *r, struct op_error *err);

/* The current record's fields (valid after csv_reader_next returned > 0). */
const struct csv_field *csv_reader_fields(const struct csv_reader *r);
size_t csv_reader_nfields(const struct csv_reader *r);

/* The physical line where the current record starts. */
unsigned long csv_reader_line(const struct csv_reader *r);

/* The position of the last error: physical line and 1-based column (field
 * number; 0 when the error is about the whole record or file). */
void csv_reader_error_pos(const struct csv_reader *r, unsigned long *line, size_t *column);

/* Non-zero once an error made further reading impossible (the code that
 * every further csv_reader_next returns); 0 while reading may go on. */
int csv_reader_broken(const struct csv_reader *r);

/* utf8_bad_offset without UTF8_REFUSE_CONTROLS (utf8.h): checks UTF-8
 * (shortest form, no surrogates, at most U+10FFFF) and the
 * absence of NUL. Returns the offset of the first bad byte or -1. */
long csv_utf8_bad_offset(const char *s, size_t len);

#endif
