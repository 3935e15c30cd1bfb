/*
 * The reader of Internet messages; see mime_reader.h.
 */
#include "mime_reader.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

int mime_input_check(const char *data, size_t len, size_t max, struct op_error *err)
{
    if (len > max)
        return op_error_set(err, -EFBIG, "input", "input: larger than %zu bytes", max);
    if (!len)
        return op_error_set(err, -EINVAL, "input", "input: empty");
    const char *nul = memchr(data, '\0', len);
    if (nul)
        return op_error_set(err, -EINVAL, "input", "input: a NUL byte at byte %zu",
                            (size_t)(nul - data));
    return 0;
}

int mime_next_line(struct mime_cursor *c, const char **line, size_t *n)
{
    if (c->p >= c->end)
        return 0;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    const char *stop = nl ? nl : c->end;
    *line = c->p;
    *n = (size_t)(stop - c->p);
    if (*n && (*line)[*n - 1] == '\r')
        (*n)--;
    c->p = nl ? nl + 1 : c->end;
    return 1;
}

static int continues(const struct mime_cursor *c)
{
    return c->p < c->end && (*c->p == ' ' || *c->p == '\t');
}

/* Appends a run of the value, tabs as spaces, no leading space. */
static void append(struct mime_field *f, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = v[i] == '\t' ? ' ' : v[i];
        if (f->len == 0 && ch == ' ')
            continue;
        if (f->len < f->cap - 1)
            f->value[f->len] = ch;
        f->len++;
    }
}

int mime_next_field(struct mime_cursor *c, struct mime_field *f)
{
    const char *line;
    size_t n;
    for (;;) {
        if (!mime_next_line(c, &line, &n) || n == 0)
            return 0;
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line || (size_t)(colon - line) >= MIME_NAME_MAX)
            continue;
        size_t nl = (size_t)(colon - line);
        memcpy(f->name, line, nl);
        f->name[nl] = '\0';
        f->len = 0;
        const char *v = colon + 1;
        size_t rest = n - nl - 1;
        for (;;) {
            append(f, v, rest);
            if (!continues(c) || !mime_next_line(c, &v, &rest))
                break;
            while (rest && (*v == ' ' || *v == '\t')) { /* one space for the fold */
                v++;
                rest--;
            }
            if (f->len)
                append(f, " ", 1);
        }
        /* trailing spaces are not the value's, wherever the cut fell */
        size_t kept = f->len < f->cap - 1 ? f->len : f->cap - 1;
        if (f->len == kept) {
            while (kept && f->value[kept - 1] == ' ')
                kept--;
            f->len = kept;
        }
        f->value[kept] = '\0';
        f->cut = f->len > kept;
        return 1;
    }
}

int mime_field_whole(const struct mime_field *f, struct op_error *err)
{
    if (!f->cut)
        return 0;
    return op_error_set(err, -EFBIG, f->name,
                        "%s: the field is %zu bytes, longer than the %zu this reader keeps",
                        f->name, f->len, f->cap - 1);
}

void mime_media_type(const char *value, char *out, size_t cap)
{
    size_t n = strcspn(value, "; \t");
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)value[i]);
    out[n] = '\0';
}

int mime_param(const char *value, const char *name, char *out, size_t cap, struct op_error *err)
{
    size_t nl = strlen(name);
    const char *at = NULL;
    for (const char *p = value; *p && !at; p++)
        if ((p == value || p[-1] == ';' || p[-1] == ' ') && !strncasecmp(p, name, nl) &&
            p[nl] == '=')
            at = p;
    if (!at)
        return 0;
    const char *v = at + nl + 1;
    size_t n = 0;
    if (*v == '"') {
        v++;
        while (v[n] && v[n] != '"')
            n++;
        if (!v[n])
            return op_error_set(err, -EINVAL, name,
                                "parameter %s: the quoted value has no closing '\"'", name);
    } else {
        while (v[n] && v[n] != ';' && v[n] != ' ')
            n++;
    }
    if (!n)
        return op_error_set(err, -EINVAL, name, "parameter %s: empty", name);
    if (n >= cap)
        return op_error_set(err, -EFBIG, name,
                            "parameter %s: %zu bytes, longer than the %zu this reader keeps", name,
                            n, cap - 1);
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

/* 1 when the line is the delimiter --boundary, 2 when it is the closing
 * one (--boundary--); trailing spaces and tabs allowed (RFC 2046 5.1.1). */
static int delimiter(const char *line, size_t n, const char *b, size_t bl)
{
    if (n < bl + 2 || line[0] != '-' || line[1] != '-' || memcmp(line + 2, b, bl))
        return 0;
    size_t i = bl + 2;
    int closing = 0;
    if (n >= i + 2 && line[i] == '-' && line[i + 1] == '-') {
        closing = 1;
        i += 2;
    }
    for (; i < n; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return 0;
    return closing ? 2 : 1;
}

int mime_parts_begin(struct mime_parts *m, struct mime_cursor body, const char *boundary,
                     const char *what, struct op_error *err)
{
    memset(m, 0, sizeof *m);
    m->boundary = boundary;
    m->blen = strlen(boundary);
    if (!m->blen)
        return op_error_set(err, -EINVAL, "boundary", "%s: an empty boundary", what);
    const char *line;
    size_t n;
    while (mime_next_line(&body, &line, &n)) {
        int dl = delimiter(line, n, boundary, m->blen);
        if (dl == 1) {
            m->rest = body;
            m->more = 1;
            return 0;
        }
        if (dl == 2) { /* closed before any part: no part at all */
            m->closed = 1;
            break;
        }
    }
    return op_error_set(err, -EINVAL, "boundary", "%s: no part starts with its boundary '--%.*s'",
                        what, (int)(m->blen > 70 ? 70 : m->blen), boundary);
}

int mime_parts_next(struct mime_parts *m, struct mime_cursor *part)
{
    if (!m->more)
        return 0;
    part->p = m->rest.p;
    part->end = m->rest.end;
    m->more = 0;
    const char *line;
    size_t n;
    while (mime_next_line(&m->rest, &line, &n)) {
        int dl = delimiter(line, n, m->boundary, m->blen);
        if (!dl)
            continue;
        part->end = line;
        if (dl == 1)
            m->more = 1;
        else
            m->closed = 1;
        break;
    }
    return 1;
}
