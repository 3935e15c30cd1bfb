/*
 * Bounce tokens, the DSN parser and matching; see outreach_bounce.h.
 * The parser walks the report line by line (LF or CRLF), unfolds header
 * fields into fixed buffers and never allocates: a report is at most
 * OUTREACH_BOUNCE_MAX bytes and every field it keeps is cut to its
 * buffer.
 */
#include "outreach_bounce.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "outreach_events.h"
#include "sql.h"
#include "store_queries.h"
#include "utf8.h"

#define FIELD_MAX 1024

struct cursor {
    const char *p, *end;
};

/* The next line (without its end) into line and n; 0 at the end. */
static int next_line(struct cursor *c, const char **line, size_t *n)
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

static int peek_continuation(const struct cursor *c)
{
    return c->p < c->end && (*c->p == ' ' || *c->p == '\t');
}

/* One header field (unfolded, cut at FIELD_MAX - 1) of a header block; 0
 * at the blank line that ends the block (or the end of input), 1 with
 * name and value set. Lines without a colon are skipped. */
static int next_field(struct cursor *c, char name[64], char value[FIELD_MAX])
{
    const char *line;
    size_t n;
    for (;;) {
        if (!next_line(c, &line, &n) || n == 0)
            return 0;
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line || (size_t)(colon - line) >= 64)
            continue;
        size_t nl = (size_t)(colon - line);
        memcpy(name, line, nl);
        name[nl] = '\0';
        size_t vl = 0;
        const char *v = colon + 1;
        size_t rest = n - nl - 1;
        for (;;) {
            for (size_t i = 0; i < rest && vl < FIELD_MAX - 1; i++) {
                char ch = v[i] == '\t' ? ' ' : v[i];
                if (vl == 0 && ch == ' ')
                    continue;
                value[vl++] = ch;
            }
            if (!peek_continuation(c))
                break;
            if (!next_line(c, &v, &rest))
                break;
            while (rest && (*v == ' ' || *v == '\t')) { /* one space for the fold */
                v++;
                rest--;
            }
            if (vl && vl < FIELD_MAX - 1)
                value[vl++] = ' ';
        }
        while (vl && value[vl - 1] == ' ')
            vl--;
        value[vl] = '\0';
        return 1;
    }
}

/* Copies text into out (cut to cap), control characters as '?'; when
 * the copy is not valid UTF-8 (a Latin-1 diagnostic, a cut sequence),
 * every byte beyond ASCII becomes '?' too. */
static void keep(char *out, size_t cap, const char *text)
{
    size_t n = 0;
    for (const unsigned char *t = (const unsigned char *)text; *t && n + 1 < cap; t++)
        out[n++] = (*t < 0x20 || *t == 0x7f) ? '?' : (char)*t;
    out[n] = '\0';
    if (utf8_bad_offset(out, n, 0) >= 0)
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] >= 0x80)
                out[i] = '?';
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* The value of parameter `param` (lower-case, with '=') in a lower-cased
 * copy `lc` of the header `orig`, taken from `orig` (boundaries are case
 * sensitive). */
static int param_of(const char *orig, const char *lc, const char *param, char *out, size_t cap)
{
    const char *at = lc;
    size_t pl = strlen(param);
    for (;;) {
        at = strstr(at, param);
        if (!at)
            return 0;
        if (at == lc || at[-1] == ';' || at[-1] == ' ')
            break;
        at += pl;
    }
    const char *v = orig + (at - lc) + pl;
    size_t n = 0;
    if (*v == '"') {
        v++;
        while (v[n] && v[n] != '"')
            n++;
    } else {
        while (v[n] && v[n] != ';' && v[n] != ' ')
            n++;
    }
    if (!n || n >= cap)
        return 0;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

static int token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n != 43)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '-' && t[i] != '_')
            return 0;
    return 1;
}

/* "5.1.1" possibly followed by a comment; 1 when well formed (class 2, 4
 * or 5, subject and detail of 1 to 3 digits), the code in out. */
static int status_ok(const char *v, char out[16])
{
    size_t i = 0;
    if (v[0] != '2' && v[0] != '4' && v[0] != '5')
        return 0;
    i = 1;
    for (int part = 0; part < 2; part++) {
        if (v[i] != '.')
            return 0;
        i++;
        size_t d = 0;
        while (isdigit((unsigned char)v[i]) && d < 4) {
            i++;
            d++;
        }
        if (d < 1 || d > 3)
            return 0;
    }
    if (v[i] && v[i] != ' ' && v[i] != '(')
        return 0;
    memcpy(out, v, i);
    out[i] = '\0';
    return 1;
}

/* The per-recipient block with a Status in a message/delivery-status
 * part. 1 found, 0 none, -1 malformed status. */
static int read_status(struct cursor c, struct outreach_dsn *d, char *bad, size_t badcap)
{
    char name[64], value[FIELD_MAX];
    while (c.p < c.end) {
        char action[16] = "", recip[256] = "", diag[256] = "", status[FIELD_MAX] = "";
        int any = 0;
        while (next_field(&c, name, value)) {
            any = 1;
            if (!strcasecmp(name, "Status"))
                snprintf(status, sizeof status, "%s", value);
            else if (!strcasecmp(name, "Action"))
                keep(action, sizeof action, value);
            else if (!strcasecmp(name, "Final-Recipient"))
                keep(recip, sizeof recip, value);
            else if (!strcasecmp(name, "Diagnostic-Code"))
                keep(diag, sizeof diag, value);
        }
        if (!any)
            continue;
        if (!status[0])
            continue;
        if (!status_ok(status, d->status)) {
            keep(bad, badcap, status);
            return -1;
        }
        lower(action);
        keep(d->action, sizeof d->action, action);
        snprintf(d->recipient, sizeof d->recipient, "%s", recip);
        snprintf(d->diagnostic, sizeof d->diagnostic, "%s", diag);
        return 1;
    }
    return 0;
}

/* The X-Outpost-Bounce field of the first header block at c; 1 found. */
static int read_token(struct cursor c, char *out, size_t cap)
{
    char name[64], value[FIELD_MAX];
    while (next_field(&c, name, value))
        if (!strcasecmp(name, OUTREACH_BOUNCE_HEADER)) {
            keep(out, cap, value);
            return 1;
        }
    return 0;
}

/* Fallback: a line anywhere that starts with the header's name (reports
 * that quote the original headers as text). */
static int scan_token(struct cursor c, char *out, size_t cap)
{
    const char *line;
    size_t n, hl = strlen(OUTREACH_BOUNCE_HEADER);
    while (next_line(&c, &line, &n)) {
        if (n > hl && !strncasecmp(line, OUTREACH_BOUNCE_HEADER, hl) && line[hl] == ':') {
            const char *v = line + hl + 1;
            size_t vl = n - hl - 1;
            while (vl && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
    }
    return 0;
}

/* 1 when the line is the delimiter --boundary (2 when closing). */
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

int outreach_dsn_parse(const char *data, size_t len, struct outreach_dsn *out, struct op_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > OUTREACH_BOUNCE_MAX)
        return op_error_set(err, -EFBIG, "input", "input: larger than %d bytes",
                            OUTREACH_BOUNCE_MAX);
    if (!len)
        return op_error_set(err, -EINVAL, "input", "input: empty");
    const char *nul = memchr(data, '\0', len);
    if (nul)
        return op_error_set(err, -EINVAL, "input", "input: a NUL byte at byte %zu",
                            (size_t)(nul - data));
    struct cursor c = {data, data + len};
    char name[64], value[FIELD_MAX], ctype[FIELD_MAX] = "";
    while (next_field(&c, name, value))
        if (!strcasecmp(name, "Content-Type"))
            snprintf(ctype, sizeof ctype, "%s", value);
    if (!ctype[0])
        return op_error_set(err, -EINVAL, "Content-Type",
                            "not a delivery status notification (RFC 3464): the message has no "
                            "Content-Type header");
    char lc[FIELD_MAX];
    snprintf(lc, sizeof lc, "%s", ctype);
    lower(lc);
    char tmp[64];
    if (strncmp(lc, "multipart/report", 16) || !param_of(ctype, lc, "report-type=", tmp, 64) ||
        strcasecmp(tmp, "delivery-status")) {
        char shown[80];
        keep(shown, sizeof shown, ctype);
        return op_error_set(err, -EINVAL, "Content-Type",
                            "not a delivery status notification (RFC 3464): Content-Type is "
                            "'%s', not multipart/report; report-type=delivery-status",
                            shown);
    }
    char boundary[200];
    if (!param_of(ctype, lc, "boundary=", boundary, sizeof boundary))
        return op_error_set(err, -EINVAL, "Content-Type",
                            "Content-Type: multipart/report without a boundary");
    size_t bl = strlen(boundary);
    /* Parts: each starts after a delimiter line. */
    const char *line;
    size_t n;
    int have_status = 0, have_part = 0, have_token = 0;
    char bad[40] = "";
    while (next_line(&c, &line, &n)) {
        int dl = delimiter(line, n, boundary, bl);
        if (dl == 2)
            break;
        if (dl != 1)
            continue;
        /* the part: its headers, then its body up to the next delimiter */
        char pct[FIELD_MAX] = "text/plain";
        while (next_field(&c, name, value))
            if (!strcasecmp(name, "Content-Type"))
                snprintf(pct, sizeof pct, "%s", value);
        lower(pct);
        struct cursor body = c;
        const char *bend = c.end;
        struct cursor scan = c;
        while (next_line(&scan, &line, &n))
            if (delimiter(line, n, boundary, bl)) {
                bend = line;
                break;
            }
        body.end = bend;
        c.p = bend;
        if (!strncmp(pct, "message/delivery-status", 23) ||
            !strncmp(pct, "message/global-delivery-status", 30)) {
            have_part = 1;
            if (!have_status) {
                int r = read_status(body, out, bad, sizeof bad);
                if (r < 0)
                    return op_error_set(err, -EINVAL, "Status",
                                        "delivery-status: Status '%s' is not a status code "
                                        "(RFC 3463: class.subject.detail, e.g. 5.1.1)",
                                        bad);
                have_status = r;
            }
        } else if (!have_token &&
                   (!strncmp(pct, "text/rfc822-headers", 19) ||
                    !strncmp(pct, "message/rfc822", 14) || !strncmp(pct, "message/global", 14))) {
            have_token = read_token(body, out->token, sizeof out->token);
        }
    }
    if (!have_part)
        return op_error_set(err, -EINVAL, "delivery-status",
                            "multipart/report without a message/delivery-status part");
    if (!have_status)
        return op_error_set(err, -EINVAL, "Status",
                            "delivery-status: no per-recipient block with a Status field");
    if (!have_token) {
        struct cursor all = {data, data + len};
        have_token = scan_token(all, out->token, sizeof out->token);
    }
    if (!have_token)
        return op_error_set(err, -EINVAL, OUTREACH_BOUNCE_HEADER,
                            "no %s header in the returned message: not a report on a message "
                            "this node sent (or the MTA returned no headers)",
                            OUTREACH_BOUNCE_HEADER);
    if (!token_ok(out->token)) {
        out->token[0] = '\0';
        return op_error_set(err, -EINVAL, OUTREACH_BOUNCE_HEADER,
                            "%s: malformed token (expected 43 base64url characters)",
                            OUTREACH_BOUNCE_HEADER);
    }
    if (out->status[0] == '5')
        out->kind = "bounced_hard";
    else if (out->status[0] == '4' || !strcmp(out->action, "delayed"))
        out->kind = "bounced_soft";
    else if (!strcmp(out->action, "failed"))
        out->kind = "bounced_hard";
    else
        out->kind = "delivered";
    return 0;
}

static int sha256_hex(const char *data, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -EIO;
    (void)codec_hex_encode(md, 32, out, 65);
    return 0;
}

int outreach_bounce_ref(struct store *s, int64_t message_id, const char *token,
                        struct op_error *err)
{
    char hash[65];
    if (!token || !token_ok(token))
        return op_error_set(err, -EINVAL, "token",
                            "bounce token: expected 43 base64url characters");
    if (sha256_hex(token, strlen(token), hash) < 0)
        return op_error_set(err, -EIO, NULL, "cannot hash the bounce token");
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_BOUNCE_SET_REF, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, message_id);
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
        rc = sql_run_what(&c, st, "cannot keep the bounce token", err);
    }
    sql_cache_close(&c);
    return rc;
}

int outreach_bounce_apply(struct store *s, const struct outreach_dsn *d, unsigned limit,
                          int64_t now_ms, int64_t *message_id, int *duplicate, int *suppressed,
                          struct op_error *err)
{
    *message_id = 0;
    char hash[65];
    if (!token_ok(d->token))
        return op_error_set(err, -EINVAL, OUTREACH_BOUNCE_HEADER, "malformed bounce token");
    if (sha256_hex(d->token, strlen(d->token), hash) < 0)
        return op_error_set(err, -EIO, NULL, "cannot hash the bounce token");
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_BOUNCE_FIND, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        rc = sql_step(&c, STORE_Q_OUTREACH_BOUNCE_FIND, st, err);
        if (rc == 1) {
            *message_id = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, OUTREACH_BOUNCE_HEADER,
                              "no message of this node has this bounce token (a report on "
                              "another sender's message, or on an erased contact's)");
        }
    }
    sql_cache_close(&c);
    if (rc < 0)
        return rc;
    char detail[700];
    snprintf(detail, sizeof detail, "%s %s%s%s%s%s", d->status, d->action[0] ? d->action : "-",
             d->recipient[0] ? "; Final-Recipient: " : "", d->recipient,
             d->diagnostic[0] ? "; Diagnostic-Code: " : "", d->diagnostic);
    return outreach_record_bounce(s, *message_id, d->kind, detail, limit, now_ms, duplicate,
                                  suppressed, err);
}
