/*
 * RFC 4180 CSV output; see csv_writer.h. Write errors are remembered in the
 * writer so that a caller writing thousands of fields checks once per row
 * and still never reports success for a short file.
 */
#include "csv_writer.h"

#include <errno.h>
#include <string.h>

void csv_writer_init(struct csv_writer *w, FILE *out)
{
    w->out = out;
    w->nfields = 0;
    w->last_empty = 0;
    w->error = 0;
}

int csv_needs_quotes(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t')
        return 1;
    /* a leading U+FEFF would be taken for a byte order mark at file start */
    if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
        return 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ',' || c == '"' || c == '\r' || c == '\n')
            return 1;
    }
    return 0;
}

static int put(struct csv_writer *w, const char *s, size_t len)
{
    if (w->error)
        return w->error;
    errno = 0;
    if (len && fwrite(s, 1, len, w->out) != len)
        w->error = errno ? -errno : -EIO;
    return w->error;
}

int csv_starts_formula(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] == ' ')
        i++;
    return i < len && s[i] != '\0' && strchr("=+-@\t\r\n", s[i]) != NULL;
}

/* `guard`: a single quote goes in front, inside the quotes. */
static int field(struct csv_writer *w, const char *s, size_t len, int always, int guard)
{
    if (!s)
        len = 0;
    if (w->nfields > 0 && put(w, ",", 1) < 0)
        return w->error;
    w->nfields++;
    w->last_empty = len == 0 && !always;
    if (!always && !csv_needs_quotes(s, len))
        return put(w, s, len);
    if (put(w, guard ? "\"'" : "\"", guard ? 2 : 1) < 0)
        return w->error;
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            break;
        /* write up to and including the quote, then the quote again */
        if (put(w, p, (size_t)(q - p) + 1) < 0 || put(w, "\"", 1) < 0)
            return w->error;
        p = q + 1;
    }
    if (put(w, p, (size_t)(end - p)) < 0)
        return w->error;
    return put(w, "\"", 1);
}

int csv_writer_field(struct csv_writer *w, const char *s, size_t len)
{
    return field(w, s, len, 0, 0);
}

int csv_writer_quoted(struct csv_writer *w, const char *s, size_t len)
{
    return field(w, s ? s : "", s ? len : 0, 1, 0);
}

int csv_writer_text(struct csv_writer *w, const char *s, size_t len)
{
    if (s && csv_starts_formula(s, len))
        return field(w, s, len, 1, 1);
    return field(w, s, len, 0, 0);
}

int csv_writer_str(struct csv_writer *w, const char *s)
{
    return csv_writer_field(w, s, s ? strlen(s) : 0);
}

int csv_writer_end_row(struct csv_writer *w)
{
    if (w->nfields == 1 && w->last_empty && put(w, "\"\"", 2) < 0)
        return w->error;
    w->nfields = 0;
    w->last_empty = 0;
    return put(w, "\r\n", 2);
}
