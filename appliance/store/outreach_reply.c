/*
 * Replies to outreach e-mails: the reading of a reply and the matching;
 * see outreach_reply.h. The header block, parameters and multipart
 * bodies are read by mime_reader (as the delivery status parser in
 * outreach_bounce.c reads them); this file decodes what it finds and
 * allocates only for the decoded text part (at most the size of the
 * input).
 */
#include "outreach_reply.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "consent.h"
#include "mime_reader.h"
#include "entity.h"
#include "outreach_events.h"
#include "outreach_sms.h"
#include "sql.h"
#include "store_queries.h"
#include "store_txn.h"
#include "timefmt.h"
#include "utf8.h"

#define FIELD_MAX 2048
#define DEPTH_MAX 4

/* Copies text into out, cut to cap - 1 bytes. */
static void copy(char *out, size_t cap, const char *text)
{
    size_t n = strlen(text);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Printable ASCII copy for error messages and ids. */
static void shown(char *out, size_t cap, const char *text)
{
    size_t n = 0;
    for (const unsigned char *t = (const unsigned char *)text; *t && n + 1 < cap; t++)
        out[n++] = (*t < 0x20 || *t >= 0x7f) ? '?' : (char)*t;
    out[n] = '\0';
}

/* ---- charsets and transfer encodings */

enum charset { CS_UTF8, CS_LATIN1, CS_CP1252, CS_UNKNOWN };

static enum charset charset_of(const char *name)
{
    if (!name || !*name || !strcasecmp(name, "utf-8") || !strcasecmp(name, "utf8") ||
        !strcasecmp(name, "us-ascii") || !strcasecmp(name, "ascii"))
        return CS_UTF8;
    if (!strcasecmp(name, "iso-8859-1") || !strcasecmp(name, "latin1") ||
        !strcasecmp(name, "iso-8859-15") || !strcasecmp(name, "iso_8859-1"))
        return CS_LATIN1;
    if (!strcasecmp(name, "windows-1252") || !strcasecmp(name, "cp1252"))
        return CS_CP1252;
    return CS_UNKNOWN;
}

/* The characters of windows-1252 in 0x80..0x9f that are not Latin-1's
 * controls (0 where it has none). */
static const unsigned short cp1252[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017d, 0,      0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178};

/* Appends in[0..n) in charset cs to out as UTF-8 (out holds at least
 * 3 * n + 1 bytes). -EINVAL when UTF-8 text is not UTF-8. */
static int to_utf8(const unsigned char *in, size_t n, enum charset cs, char *out, size_t *olen)
{
    size_t k = *olen;
    if (cs == CS_UTF8) {
        if (utf8_bad_offset((const char *)in, n, 0) >= 0)
            return -EINVAL;
        memcpy(out + k, in, n);
        k += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned cp = in[i];
            if (cs == CS_CP1252 && cp >= 0x80 && cp < 0xa0)
                cp = cp1252[cp - 0x80] ? cp1252[cp - 0x80] : '?';
            if (cp < 0x80) {
                out[k++] = (char)cp;
            } else if (cp < 0x800) {
                out[k++] = (char)(0xc0 | (cp >> 6));
                out[k++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[k++] = (char)(0xe0 | (cp >> 12));
                out[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[k++] = (char)(0x80 | (cp & 0x3f));
            }
        }
    }
    out[k] = '\0';
    *olen = k;
    return 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Quoted-printable (RFC 2045 6.7; in_header: RFC 2047 Q, '_' a space). */
static size_t qp_decode(const char *in, size_t n, unsigned char *out, int in_header)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=' && i + 1 < n && (in[i + 1] == '\n' || in[i + 1] == '\r')) {
            i++; /* a soft line break */
            if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
                i++;
        } else if (in[i] == '=' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            out[k++] = (unsigned char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else if (in_header && in[i] == '_') {
            out[k++] = ' ';
        } else {
            out[k++] = (unsigned char)in[i];
        }
    }
    return k;
}

/* Base64 with line breaks and spaces; -EINVAL when it is not base64. */
static ssize_t b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    char *clean = malloc(n + 1);
    if (!clean)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)in[i]))
            clean[k++] = in[i];
    ssize_t r = codec_b64_decode(clean, k, out, cap, NULL);
    free(clean);
    return r < 0 ? -EINVAL : r;
}

/* A Subject with RFC 2047 encoded words into UTF-8 (cut to cap at a
 * character boundary); raw bytes that are not UTF-8 are read as
 * Latin-1. Control characters become spaces. */
static int decode_subject(const char *v, char *out, size_t cap, struct op_error *err)
{
    size_t vn = strlen(v);
    char *tmp = malloc(3 * vn + 1);
    unsigned char *raw = malloc(vn + 1);
    if (!tmp || !raw) {
        free(tmp);
        free(raw);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    size_t k = 0;
    tmp[0] = '\0';
    const char *p = v;
    while (*p) {
        const char *q = NULL, *end = NULL;
        char cs[40] = "", enc = 0;
        if (p[0] == '=' && p[1] == '?') {
            const char *c1 = strchr(p + 2, '?');
            if (c1 && (size_t)(c1 - p - 2) < sizeof cs && c1[1] && c1[2] == '?') {
                memcpy(cs, p + 2, (size_t)(c1 - p - 2));
                cs[c1 - p - 2] = '\0';
                char *star = strchr(cs, '*'); /* RFC 2231 language */
                if (star)
                    *star = '\0';
                enc = (char)toupper((unsigned char)c1[1]);
                q = c1 + 3;
                end = strstr(q, "?=");
            }
        }
        if (end && (enc == 'B' || enc == 'Q') && charset_of(cs) != CS_UNKNOWN) {
            ssize_t rn;
            if (enc == 'B')
                rn = b64_decode(q, (size_t)(end - q), raw, vn + 1);
            else
                rn = (ssize_t)qp_decode(q, (size_t)(end - q), raw, 1);
            if (rn < 0 || to_utf8(raw, (size_t)rn, charset_of(cs), tmp, &k) < 0) {
                free(tmp);
                free(raw);
                return op_error_set(err, -EINVAL, "Subject",
                                    "Subject: an encoded word is not valid %s", cs);
            }
            p = end + 2;
            /* whitespace between two encoded words is not text */
            const char *w = p;
            while (*w == ' ')
                w++;
            if (w[0] == '=' && w[1] == '?')
                p = w;
            continue;
        }
        size_t run = 1;
        while (p[run] && !(p[run] == '=' && p[run + 1] == '?'))
            run++;
        if (to_utf8((const unsigned char *)p, run, CS_UTF8, tmp, &k) < 0)
            (void)to_utf8((const unsigned char *)p, run, CS_LATIN1, tmp, &k);
        p += run;
    }
    free(raw);
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f)
            tmp[i] = ' ';
    size_t n = k < cap - 1 ? k : cap - 1;
    while (n < k && n > 0 && ((unsigned char)tmp[n] & 0xc0) == 0x80)
        n--;
    memcpy(out, tmp, n);
    out[n] = '\0';
    free(tmp);
    return 0;
}

/* ---- the text part */

struct part {
    const char *p, *end;
    char cte[64];
    char charset[40];
};

/* The first text/plain part of the entity whose body is c: 1 found, 0
 * none, -EINVAL malformed. */
static int find_text(struct mime_cursor c, const char *ctype, const char *cte, int depth,
                     struct part *out, struct op_error *err)
{
    char mt[128];
    mime_media_type(ctype, mt, sizeof mt);
    if (!mt[0] || !strcmp(mt, "text/plain")) {
        out->p = c.p;
        out->end = c.end;
        copy(out->cte, sizeof out->cte, cte);
        lower(out->cte);
        int rc = mime_param(ctype, "charset", out->charset, sizeof out->charset, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            out->charset[0] = '\0';
        return 1;
    }
    if (strncmp(mt, "multipart/", 10))
        return 0;
    if (depth >= DEPTH_MAX)
        return op_error_set(err, -EINVAL, "Content-Type",
                            "Content-Type: multiparts nested more than %d deep", DEPTH_MAX);
    char boundary[MIME_BOUNDARY_MAX];
    int rc = mime_param(ctype, "boundary", boundary, sizeof boundary, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -EINVAL, "Content-Type", "Content-Type: %s without a boundary",
                            mt);
    struct mime_parts parts;
    rc = mime_parts_begin(&parts, c, boundary, mt, err);
    if (rc < 0)
        return rc;
    char value[FIELD_MAX];
    struct mime_field f = {.value = value, .cap = sizeof value};
    struct mime_cursor body;
    while (mime_parts_next(&parts, &body)) {
        char pct[FIELD_MAX] = "text/plain", pcte[64] = "";
        while (mime_next_field(&body, &f)) {
            if (!strcasecmp(f.name, "Content-Type")) {
                rc = mime_field_whole(&f, err);
                if (rc < 0)
                    return rc;
                snprintf(pct, sizeof pct, "%s", value);
            } else if (!strcasecmp(f.name, "Content-Transfer-Encoding")) {
                copy(pcte, sizeof pcte, value);
            }
        }
        rc = find_text(body, pct, pcte, depth + 1, out, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int starts(const char *line, size_t n, const char *with)
{
    size_t wl = strlen(with);
    return n >= wl && !strncasecmp(line, with, wl);
}

/* The reply's own words: the text up to the quoted original (a line
 * starting with '>', Outlook's separators), without the attribution
 * line(s) before it ("On ... wrote:"), trailing blank lines removed. */
static size_t own_words(char *t, size_t n)
{
    size_t cut = n, prev_start = 0, prev2_start = 0, at = 0;
    int have_prev = 0, have_prev2 = 0;
    while (at < n) {
        char *nl = memchr(t + at, '\n', n - at);
        size_t ln = nl ? (size_t)(nl - (t + at)) : n - at;
        const char *line = t + at;
        if ((ln && line[0] == '>') || starts(line, ln, "-----Original Message-----") ||
            starts(line, ln, "________________________________") ||
            starts(line, ln, "-------- Original Message --------") ||
            starts(line, ln, "-------- Forwarded Message --------")) {
            cut = at;
            /* the attribution: the last non-blank line ending with ':' */
            if (line[0] == '>' && have_prev) {
                size_t ps = prev_start;
                const char *pnl = memchr(t + ps, '\n', at - ps);
                size_t pe = pnl ? (size_t)(pnl - t) : at;
                while (pe > ps && (t[pe - 1] == ' ' || t[pe - 1] == '\r'))
                    pe--;
                if (pe > ps && t[pe - 1] == ':') {
                    cut = ps;
                    /* a long attribution wrapped onto two lines */
                    if (have_prev2 &&
                        (starts(t + prev2_start, ps - prev2_start, "On ") ||
                         starts(t + prev2_start, ps - prev2_start, "Am ") ||
                         starts(t + prev2_start, ps - prev2_start, "Le ") ||
                         starts(t + prev2_start, ps - prev2_start, "El ") ||
                         starts(t + prev2_start, ps - prev2_start, "Em ")) &&
                        !starts(t + ps, pe - ps, "On ") && !starts(t + ps, pe - ps, "Am "))
                        cut = prev2_start;
                }
            }
            break;
        }
        int blank = 1;
        for (size_t i = 0; i < ln; i++)
            if (line[i] != ' ' && line[i] != '\t')
                blank = 0;
        if (!blank) {
            prev2_start = prev_start;
            have_prev2 = have_prev;
            prev_start = at;
            have_prev = 1;
        }
        at += ln + (nl ? 1 : 0);
    }
    while (cut && (t[cut - 1] == '\n' || t[cut - 1] == ' ' || t[cut - 1] == '\t'))
        cut--;
    size_t lead = 0;
    while (lead < cut && (t[lead] == '\n' || t[lead] == ' '))
        lead++;
    memmove(t, t + lead, cut - lead);
    t[cut - lead] = '\0';
    return cut - lead;
}

static int read_body(const struct part *pt, struct outreach_reply *out, struct op_error *err)
{
    size_t n = (size_t)(pt->end - pt->p);
    unsigned char *raw = malloc(n + 1);
    char *text = malloc(3 * n + 1);
    int rc = 0;
    if (!raw || !text) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto done;
    }
    ssize_t rn;
    if (!pt->cte[0] || !strcmp(pt->cte, "7bit") || !strcmp(pt->cte, "8bit") ||
        !strcmp(pt->cte, "binary")) {
        memcpy(raw, pt->p, n);
        rn = (ssize_t)n;
    } else if (!strcmp(pt->cte, "quoted-printable")) {
        rn = (ssize_t)qp_decode(pt->p, n, raw, 0);
    } else if (!strcmp(pt->cte, "base64")) {
        rn = b64_decode(pt->p, n, raw, n + 1);
        if (rn < 0) {
            rc = op_error_set(err, -EINVAL, "Content-Transfer-Encoding",
                              "the text part is not base64 as its Content-Transfer-Encoding "
                              "says");
            goto done;
        }
    } else {
        char s[64];
        shown(s, sizeof s, pt->cte);
        rc = op_error_set(err, -EINVAL, "Content-Transfer-Encoding",
                          "Content-Transfer-Encoding: '%s' is not one of 7bit, 8bit, binary, "
                          "quoted-printable, base64",
                          s);
        goto done;
    }
    enum charset cs = charset_of(pt->charset);
    if (cs == CS_UNKNOWN) {
        char s[40];
        shown(s, sizeof s, pt->charset);
        rc = op_error_set(err, -EINVAL, "charset",
                          "charset '%s' of the text part is not supported (UTF-8, US-ASCII, "
                          "ISO-8859-1, ISO-8859-15, windows-1252)",
                          s);
        goto done;
    }
    size_t k = 0;
    if (to_utf8(raw, (size_t)rn, cs, text, &k) < 0) {
        rc = op_error_set(err, -EINVAL, "charset",
                          "the text part says charset %s but is not valid UTF-8",
                          pt->charset[0] ? "UTF-8" : "US-ASCII");
        goto done;
    }
    /* LF line ends, control characters as spaces */
    size_t j = 0;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\r')
            continue;
        text[j++] = (ch < 0x20 && ch != '\n') || ch == 0x7f ? ' ' : (char)ch;
    }
    text[j] = '\0';
    j = own_words(text, j);
    size_t cut = j < OUTREACH_REPLY_BODY_MAX ? j : OUTREACH_REPLY_BODY_MAX;
    while (cut < j && cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
        cut--;
    memcpy(out->body, text, cut);
    out->body[cut] = '\0';
done:
    free(raw);
    free(text);
    return rc;
}

/* ---- headers */

/* The tokens of message ids <outreach-N.TOKEN@host> in a header value,
 * appended to out (once each); from_end: the last id first. */
static void scan_ids(const char *v, struct outreach_reply *out, int from_end)
{
    const char *ids[64];
    int nids = 0;
    for (const char *p = strchr(v, '<'); p && nids < 64; p = strchr(p + 1, '<'))
        ids[nids++] = p + 1;
    for (int i = 0; i < nids && out->ntokens < OUTREACH_REPLY_REFS; i++) {
        const char *p = ids[from_end ? nids - 1 - i : i];
        if (strncmp(p, "outreach-", 9))
            continue;
        p += 9;
        if (!isdigit((unsigned char)*p))
            continue;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p != '.')
            continue;
        p++;
        size_t n = 0;
        while (isalnum((unsigned char)p[n]) || p[n] == '-' || p[n] == '_')
            n++;
        if (n != 43 || p[n] != '@')
            continue;
        int dup = 0;
        for (int j = 0; j < out->ntokens; j++)
            if (!strncmp(out->tokens[j], p, 43))
                dup = 1;
        if (dup)
            continue;
        memcpy(out->tokens[out->ntokens], p, 43);
        out->tokens[out->ntokens][43] = '\0';
        out->ntokens++;
    }
}

/* 1 when the subject, without Re:/AW:/SV:/... prefixes, is one stop word. */
static int subject_is_stop(const char *subject)
{
    static const char *const prefixes[] = {
        "re:", "aw:", "sv:", "antw:", "ref:", "res:", "rv:", "tr:", "wg:", "fwd:", "fw:", NULL};
    const char *p = subject;
    for (int again = 1; again;) {
        again = 0;
        while (*p == ' ')
            p++;
        for (int i = 0; prefixes[i]; i++)
            if (!strncasecmp(p, prefixes[i], strlen(prefixes[i]))) {
                p += strlen(prefixes[i]);
                again = 1;
            }
    }
    if (!outreach_sms_is_stop(p))
        return 0;
    size_t w = strcspn(p, " \t.!,;");
    for (p += w; *p; p++)
        if (!strchr(" \t.!,;", *p))
            return 0;
    return 1;
}

/* 1 when the Subject starts as the out-of-office answers of mail
 * servers that send no Auto-Submitted field do ("Out of Office: ...",
 * "Automatic reply: ..."). */
static int subject_is_auto(const char *subject)
{
    static const char *const starts_auto[] = {"out of office:",
                                              "out of the office:",
                                              "automatic reply:",
                                              "auto-reply:",
                                              "autoreply:",
                                              "auto reply:",
                                              NULL};
    const char *p = subject;
    while (*p == ' ')
        p++;
    for (int i = 0; starts_auto[i]; i++)
        if (!strncasecmp(p, starts_auto[i], strlen(starts_auto[i])))
            return 1;
    return 0;
}

int outreach_reply_parse(const char *data, size_t len, struct outreach_reply *out,
                         struct op_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = mime_input_check(data, len, OUTREACH_REPLY_MAX, err);
    if (rc < 0)
        return rc;
    struct mime_cursor c = {data, data + len};
    char value[FIELD_MAX], ctype[FIELD_MAX] = "", cte[64] = "", msgid[FIELD_MAX] = "";
    char subject[FIELD_MAX] = "", irt[FIELD_MAX] = "", refs[FIELD_MAX] = "";
    struct mime_field f = {.value = value, .cap = sizeof value};
    int fields = 0, have_ref = 0;
    while (mime_next_field(&c, &f)) {
        const char *name = f.name;
        fields++;
        if (!strcasecmp(name, "Content-Type")) {
            rc = mime_field_whole(&f, err);
            if (rc < 0)
                return rc;
            snprintf(ctype, sizeof ctype, "%s", value);
        } else if (!strcasecmp(name, "Content-Transfer-Encoding"))
            copy(cte, sizeof cte, value);
        else if (!strcasecmp(name, "Message-ID"))
            snprintf(msgid, sizeof msgid, "%s", value);
        else if (!strcasecmp(name, "Subject"))
            snprintf(subject, sizeof subject, "%s", value);
        else if (!strcasecmp(name, "In-Reply-To")) {
            snprintf(irt, sizeof irt, "%s", value);
            have_ref = 1;
        } else if (!strcasecmp(name, "References")) {
            snprintf(refs, sizeof refs, "%s", value);
            have_ref = 1;
        } else if (!strcasecmp(name, "Auto-Submitted")) {
            lower(value);
            if (strncmp(value, "no", 2) || isalnum((unsigned char)value[2]))
                out->automatic = 1;
        } else if (!strcasecmp(name, "Precedence")) {
            lower(value);
            if (!strcmp(value, "bulk") || !strcmp(value, "junk") || !strcmp(value, "list") ||
                !strcmp(value, "auto_reply"))
                out->automatic = 1;
        } else if (!strcasecmp(name, "X-Autoreply") || !strcasecmp(name, "X-Autorespond")) {
            out->automatic = 1;
        } else if (!strcasecmp(name, "X-Autogenerated")) {
            lower(value);
            if (!strcmp(value, "reply"))
                out->automatic = 1;
        }
    }
    if (!fields)
        return op_error_set(err, -EINVAL, "input",
                            "not an e-mail message: no header fields before the first blank "
                            "line");
    if (!have_ref)
        return op_error_set(err, -EINVAL, "In-Reply-To",
                            "not a reply: the message has neither In-Reply-To nor References");
    scan_ids(irt, out, 0);
    scan_ids(refs, out, 1);
    if (!out->ntokens)
        return op_error_set(err, -ENOENT, "In-Reply-To",
                            "not a reply to a message of this node: In-Reply-To and "
                            "References name no <outreach-N.TOKEN@...> message id");
    rc = decode_subject(subject, out->subject, sizeof out->subject, err);
    if (rc < 0)
        return rc;
    if (subject_is_auto(out->subject))
        out->automatic = 1;
    struct part pt = {0};
    rc = find_text(c, ctype, cte, 0, &pt, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        rc = read_body(&pt, out, err);
        if (rc < 0)
            return rc;
    }
    if (msgid[0]) {
        char s[200];
        shown(s, sizeof s, msgid);
        snprintf(out->id, sizeof out->id, "Message-ID %s", s);
    } else {
        char hex[65];
        if (outreach_sha256_hex(data, len, hex) < 0)
            return op_error_set(err, -EIO, NULL, "cannot hash the reply");
        snprintf(out->id, sizeof out->id, "sha256 %s", hex);
    }
    out->stop = !out->automatic && subject_is_stop(out->subject);
    return 0;
}

/* ---- matching and recording */

static int find_message(struct sql_cache *c, const struct outreach_reply *r, int64_t *id,
                        char contact[40], char purpose[104], struct op_error *err)
{
    for (int i = 0; i < r->ntokens; i++) {
        char hash[65];
        if (outreach_sha256_hex(r->tokens[i], strlen(r->tokens[i]), hash) < 0)
            return op_error_set(err, -EIO, NULL, "cannot hash the token");
        sqlite3_stmt *st = NULL;
        int rc = sql_get_st(c, STORE_Q_OUTREACH_REPLY_FIND, &st, err);
        if (rc < 0)
            return rc;
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
        rc = sql_step(c, STORE_Q_OUTREACH_REPLY_FIND, st, err);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *id = sqlite3_column_int64(st, 0);
            const unsigned char *ct = sqlite3_column_text(st, 1);
            const unsigned char *pp = sqlite3_column_text(st, 2);
            snprintf(contact, 40, "%s", ct ? (const char *)ct : "");
            snprintf(purpose, 104, "%s", pp ? (const char *)pp : "");
            sqlite3_reset(st);
            return 1;
        }
    }
    return 0;
}

static int seen(struct sql_cache *c, int64_t id, const char *detail, int *yes, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_OUTREACH_REPLY_SEEN, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, detail, -1, SQLITE_TRANSIENT);
    rc = sql_step(c, STORE_Q_OUTREACH_REPLY_SEEN, st, err);
    if (rc == 1) {
        *yes = sqlite3_column_int64(st, 0) > 0;
        sqlite3_reset(st);
        rc = 0;
    }
    return rc;
}

/* Withdraws the contact's e-mail marketing consent for the message's
 * purpose and every other open one, and puts the contact's address on
 * the suppression list for every purpose, as a STOP by SMS does. */
static int withdraw_all(struct store *s, struct sql_cache *c, const char *contact,
                        const char *purpose, int64_t now, struct op_error *err)
{
    char purposes[16][104];
    int n = 0;
    snprintf(purposes[n++], sizeof purposes[0], "%s", purpose);
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_OUTREACH_REPLY_EMAIL_PURPOSES, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, contact, -1, SQLITE_TRANSIENT);
        while ((rc = sql_step(c, STORE_Q_OUTREACH_REPLY_EMAIL_PURPOSES, st, err)) == 1) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            if (n < 16 && t && strcmp((const char *)t, purpose))
                snprintf(purposes[n++], sizeof purposes[0], "%s", (const char *)t);
        }
    }
    for (int i = 0; rc == 0 && i < n; i++)
        rc = consent_withdraw(s, contact, "email", purposes[i], "marketing",
                              "unsubscribe by e-mail reply", now, NULL, err);
    json_t *ct = NULL;
    if (rc == 0)
        rc = store_get(s, &entity_contact, contact, STORE_IGNORE_VIEWER, &ct, err);
    const char *addr = rc == 0 ? json_string_value(json_object_get(ct, "email")) : NULL;
    if (rc == 0 && addr && *addr)
        rc = consent_suppress(s, "email", addr, "withdrawn", err);
    json_decref(ct);
    return rc;
}

int outreach_reply_apply(struct store *s, const struct outreach_reply *r, int64_t now_ms,
                         struct outreach_reply_result *res, struct op_error *err)
{
    memset(res, 0, sizeof *res);
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    char contact[40], purpose[104];
    rc = find_message(&c, r, &res->message_id, contact, purpose, err);
    if (rc == 0)
        rc = op_error_set(err, -ENOENT, "In-Reply-To",
                          "no message of this node has the message id this reply answers (a "
                          "reply to another sender's message, or to an erased contact's)");
    char detail[OUTREACH_EVENT_DETAIL_MAX + 1];
    snprintf(detail, sizeof detail, "%s %s", r->automatic ? "auto-reply" : "reply", r->id);
    int dup = 0;
    if (rc == 1)
        rc = seen(&c, res->message_id, detail, &dup, err);
    if (rc == 0 && dup) {
        res->duplicate = 1;
    } else if (rc == 0 && r->automatic) {
        res->automatic = 1;
        rc = outreach_record_event(s, res->message_id, "auto_replied", now, detail, err);
    } else if (rc == 0) {
        char when[40];
        timefmt_iso_ms(now, when, sizeof when);
        json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "channel", "email", "direction",
                              "inbound", "subject", r->subject[0] ? r->subject : "(no subject)",
                              "body", r->body, "occurred_at", when, "contact_id", contact);
        json_t *rec = NULL;
        rc = a ? store_create(s, &entity_activity, a, 0, &rec, err)
               : op_error_set(err, -ENOMEM, NULL, "out of memory");
        json_decref(a);
        if (rc == 0) {
            const char *aid = json_string_value(json_object_get(rec, "id"));
            snprintf(res->activity_id, sizeof res->activity_id, "%s", aid ? aid : "");
        }
        json_decref(rec);
        if (rc == 0)
            rc = outreach_record_event(s, res->message_id, "replied", now, detail, err);
        if (rc == 0 && r->stop) {
            res->stop = 1;
            rc = withdraw_all(s, &c, contact, purpose, now, err);
            if (rc == 0)
                rc = outreach_record_event(s, res->message_id, "unsubscribed", now,
                                           "unsubscribe by e-mail reply", err);
        }
    }
    rc = store_txn_end(s, &c, own, rc, err);
    return rc < 0 ? rc : 0;
}
