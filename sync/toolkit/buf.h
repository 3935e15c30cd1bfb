/*
 * A growable byte buffer with a hard cap: request heads and bodies,
 * rendered documents, a record being read. The invariant: len never
 * exceeds max, whatever the input, and once anything is allocated the
 * bytes are NUL-terminated at len (the terminator is not counted in len
 * or max), so text built here is a C string without a second copy. A
 * failed call leaves the buffer as it was.
 */
#ifndef OUTPOST_BUF_H
#define OUTPOST_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* NULL until the first allocation; then NUL-terminated at len */
    size_t len; /* bytes held */
    size_t cap; /* bytes allocated, the terminator's included */
    size_t max; /* the most len may reach */
};

/* An empty buffer that may hold up to max bytes; nothing is allocated. */
#define BUF_INIT(max_)                                                                             \
    {                                                                                              \
        .data = NULL, .len = 0, .cap = 0, .max = (max_)                                            \
    }

/* Makes b empty with cap max; nothing is allocated. */
void buf_init(struct buf *b, size_t max);

/* Makes room for extra more bytes (and the terminator), growing by
 * doubling. Returns 0, -EFBIG when len + extra would pass max, or
 * -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends n bytes of data (copied; data may be NULL when n is 0).
 * Returns 0, -EFBIG past max or -ENOMEM; nothing is appended on failure. */
int buf_append(struct buf *b, const void *data, size_t n);

/* Appends the NUL-terminated string s, without its NUL. Errors as
 * buf_append. */
int buf_puts(struct buf *b, const char *s);

/* Appends formatted text. Returns 0, -EFBIG past max, -ENOMEM, or
 * -EINVAL for a format vsnprintf refuses; nothing is appended on
 * failure. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Empties b, keeping its memory for reuse. */
void buf_clear(struct buf *b);

/* Hands the bytes to the caller: a malloc'd, NUL-terminated string of
 * b->len bytes (an empty buffer gives ""), its length in *len (len may be
 * NULL). b is left empty with the same max. Returns NULL (b unchanged)
 * when out of memory. */
char *buf_take(struct buf *b, size_t *len);

/* Frees the bytes and empties b; max is kept. b may then be reused. */
void buf_done(struct buf *b);

#endif
