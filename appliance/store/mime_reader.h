/*
 * The one reader of Internet messages (RFC 5322 header blocks, RFC 2045
 * and 2046 MIME parameters and multipart bodies) for the outreach modules
 * that read mail a relay or a contact sent back: delivery status
 * notifications (outreach_bounce.c) and replies (outreach_reply.c). See
 * docs/OUTREACH.md, "Reading returned mail".
 *
 * It walks a buffer the caller holds, line by line (LF or CRLF), and never
 * allocates: header fields are unfolded into the caller's fixed buffers,
 * parts are ranges of the caller's buffer. What it keeps is bounded, and
 * what does not fit is said, never silently taken for the whole: a field
 * longer than its buffer is marked cut (mime_field_whole turns that into a
 * precise error for a field that must be whole), a parameter longer than
 * its buffer or with an unclosed quote is an error naming the parameter,
 * and a multipart whose boundary starts no part is an error naming the
 * boundary.
 *
 * Errors: 1 found or 0 none, else a negative errno; `err` (may be NULL)
 * says what and where (err->field names the header field or parameter).
 */
#ifndef OUTPOST_MIME_READER_H
#define OUTPOST_MIME_READER_H

#include <stddef.h>

#include "op_error.h"

#define MIME_NAME_MAX 64      /* a field name's buffer, NUL included */
#define MIME_BOUNDARY_MAX 200 /* RFC 2046 allows 70 characters */

/* A range of the caller's buffer still to read. */
struct mime_cursor {
    const char *p, *end;
};

/* One header field: its name, its value unfolded (each fold one space,
 * tabs as spaces, leading and trailing spaces removed) and cut to the
 * caller's buffer. */
struct mime_field {
    char name[MIME_NAME_MAX];
    char *value; /* the caller's buffer */
    size_t cap;  /* its size */
    size_t len;  /* bytes of the whole unfolded value (> cap - 1 when cut) */
    int cut;     /* 1 when value holds only the first cap - 1 bytes */
};

/* The checks every message passes before it is read: -EFBIG when len is
 * more than max ("input: larger than MAX bytes"), -EINVAL when it is empty
 * or holds a NUL byte ("input: a NUL byte at byte N"); err->field is
 * "input". 0 when it may be read. */
int mime_input_check(const char *data, size_t len, size_t max, struct op_error *err);

/* The next line at c (without its LF or CRLF) into line and n; 0 at the
 * end of the range. */
int mime_next_line(struct mime_cursor *c, const char **line, size_t *n);

/* The next field of the header block at c into f (value and cap set by
 * the caller, cap at least 1): 1 with the field, 0 at the blank line that
 * ends the block (consumed) or at the end of the range. Lines that are not
 * fields (no colon, an empty name or one of MIME_NAME_MAX bytes or more)
 * are skipped, as mail readers do. */
int mime_next_field(struct mime_cursor *c, struct mime_field *f);

/* 0 when f's value is whole; -EFBIG when it was cut ("NAME: the field is
 * N bytes, longer than the M this reader keeps"), for a field whose cut
 * value would be read wrong (Content-Type: its boundary). */
int mime_field_whole(const struct mime_field *f, struct op_error *err);

/* The media type of a Content-Type value ("multipart/report"), lower
 * case, cut to cap - 1 bytes; "" when the value is empty. */
void mime_media_type(const char *value, char *out, size_t cap);

/* The value of parameter `name` (any case, without '=') of a header value
 * such as Content-Type's, as written (a quoted value without its quotes):
 * 1 found, 0 absent. -EINVAL when the value is empty or its quote is not
 * closed, -EFBIG when it is cap bytes or longer (err->field is the
 * parameter's name). */
int mime_param(const char *value, const char *name, char *out, size_t cap, struct op_error *err);

/* The parts of a multipart body: mime_parts_begin finds the first
 * delimiter line "--boundary" in body (text before it is the preamble);
 * -EINVAL when no line is one ("multipart/...: no part starts with its
 * boundary '--...'"), -EINVAL for an empty boundary. mime_parts_next then
 * gives each part in turn (its header block and body, without the
 * delimiter lines) as a cursor: 1 with a part, 0 after the last.
 * m->closed is 1 once the closing "--boundary--" was read; a body that
 * ends without it (a cut message) still gives its last part. */
struct mime_parts {
    struct mime_cursor rest;
    const char *boundary;
    size_t blen;
    int more;   /* a delimiter was read and its part not yet given */
    int closed; /* the closing delimiter was read */
};
int mime_parts_begin(struct mime_parts *m, struct mime_cursor body, const char *boundary,
                     const char *what, struct op_error *err);
int mime_parts_next(struct mime_parts *m, struct mime_cursor *part);

#endif
