/*
 * Writing RFC 4180 CSV: fields are quoted only when they must be (a comma,
 * a quote, CR or LF inside, white space at either end that a reader
 * might trim, or a leading U+FEFF that a reader would take for a byte
 * order mark), quotes inside are doubled, and rows end in CRLF as the RFC
 * says. The invariant: csv_reader reads back exactly the field values that
 * were written, byte for byte (csv_writer_text, for files people open in
 * a spreadsheet, is the one exception, and says so).
 */
#ifndef OUTPOST_CSV_WRITER_H
#define OUTPOST_CSV_WRITER_H

#include <stddef.h>
#include <stdio.h>

/* An embedded object (csv_writer_init); owns nothing. */
struct csv_writer {
    FILE *out;
    size_t nfields; /* fields written in the current row */
    int last_empty; /* the last field written was empty */
    int error;      /* sticky negative errno once a write failed */
};

/* Starts writing to `out`, which stays owned by the caller. */
void csv_writer_init(struct csv_writer *w, FILE *out);

/* Writes one field of the current row; `s` may be NULL (an empty field).
 * Returns 0 or the sticky negative errno of an earlier or this failure. */
int csv_writer_field(struct csv_writer *w, const char *s, size_t len);

/* Writes a field in quotes whether or not it needs them. An empty quoted
 * field ("") is how an empty string is told apart from an absent value,
 * which is written as nothing at all (csv_field.quoted on reading). */
int csv_writer_quoted(struct csv_writer *w, const char *s, size_t len);

/* Writes a text field for a file people open in a spreadsheet: a value
 * that a spreadsheet would run as a formula (csv_starts_formula) is
 * written quoted with a single quote in front ("'=1+1"), the OWASP
 * CSV-injection rule, so that it shows as text and never runs; any other
 * value as csv_writer_field does. The guard changes what a reader reads
 * back, so files meant for csv_reader use csv_writer_field. */
int csv_writer_text(struct csv_writer *w, const char *s, size_t len);

/* True when a spreadsheet would take a cell holding `s` for a formula:
 * its first character other than a space is = + - @ TAB CR or LF. */
int csv_starts_formula(const char *s, size_t len);

/* Convenience for a NUL-terminated string (NULL allowed). */
int csv_writer_str(struct csv_writer *w, const char *s);

/* Ends the row with CRLF. A row of one empty field is written as "" so
 * that it is not a blank line (which readers skip). Returns 0 or the
 * sticky negative errno. */
int csv_writer_end_row(struct csv_writer *w);

/* True when the value has to be quoted. */
int csv_needs_quotes(const char *s, size_t len);

#endif
