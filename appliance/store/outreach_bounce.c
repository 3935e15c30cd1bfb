/*
 * Bounce tokens, the DSN parser and matching; see outreach_bounce.h.
 * mime_reader walks the report (header blocks unfolded into fixed
 * buffers, the parts of the multipart/report) and nothing here allocates:
 * a report is at most OUTREACH_BOUNCE_MAX bytes and every field it keeps
 * is cut to its buffer.
 */
#include "outreach_bounce.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mime_reader.h"
#include "outreach_events.h"
#include "sql.h"
#include "store_queries.h"
#include "utf8.h"

#define FIELD_MAX 1024

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
static int read_status(struct mime_cursor c, struct outreach_dsn *d, char *bad, size_t badcap)
{
    char value[FIELD_MAX];
    struct mime_field f = {.value = value, .cap = sizeof value};
    while (c.p < c.end) {
        char action[16] = "", recip[256] = "", diag[256] = "", status[FIELD_MAX] = "";
        int any = 0;
        while (mime_next_field(&c, &f)) {
            any = 1;
            if (!strcasecmp(f.name, "Status"))
                snprintf(status, sizeof status, "%s", value);
            else if (!strcasecmp(f.name, "Action"))
                keep(action, sizeof action, value);
            else if (!strcasecmp(f.name, "Final-Recipient"))
                keep(recip, sizeof recip, value);
            else if (!strcasecmp(f.name, "Diagnostic-Code"))
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
static int read_token(struct mime_cursor c, char *out, size_t cap)
{
    char value[FIELD_MAX];
    struct mime_field f = {.value = value, .cap = sizeof value};
    while (mime_next_field(&c, &f))
        if (!strcasecmp(f.name, OUTREACH_BOUNCE_HEADER)) {
            keep(out, cap, value);
            return 1;
        }
    return 0;
}

/* Fallback: a line anywhere that starts with the header's name (reports
 * that quote the original headers as text). */
static int scan_token(struct mime_cursor c, char *out, size_t cap)
{
    const char *line;
    size_t n, hl = strlen(OUTREACH_BOUNCE_HEADER);
    while (mime_next_line(&c, &line, &n)) {
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

int outreach_dsn_parse(const char *data, size_t len, struct outreach_dsn *out, struct op_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = mime_input_check(data, len, OUTREACH_BOUNCE_MAX, err);
    if (rc < 0)
        return rc;
    struct mime_cursor c = {data, data + len};
    char value[FIELD_MAX], ctype[FIELD_MAX] = "";
    struct mime_field f = {.value = value, .cap = sizeof value};
    while (mime_next_field(&c, &f))
        if (!strcasecmp(f.name, "Content-Type")) {
            rc = mime_field_whole(&f, err);
            if (rc < 0)
                return rc;
            snprintf(ctype, sizeof ctype, "%s", value);
        }
    if (!ctype[0])
        return op_error_set(err, -EINVAL, "Content-Type",
                            "not a delivery status notification (RFC 3464): the message has no "
                            "Content-Type header");
    char mt[64], tmp[64];
    mime_media_type(ctype, mt, sizeof mt);
    rc =
        strcmp(mt, "multipart/report") ? 0 : mime_param(ctype, "report-type", tmp, sizeof tmp, err);
    if (rc < 0)
        return rc;
    if (rc == 0 || strcasecmp(tmp, "delivery-status")) {
        char shown[80];
        keep(shown, sizeof shown, ctype);
        return op_error_set(err, -EINVAL, "Content-Type",
                            "not a delivery status notification (RFC 3464): Content-Type is "
                            "'%s', not multipart/report; report-type=delivery-status",
                            shown);
    }
    char boundary[MIME_BOUNDARY_MAX];
    rc = mime_param(ctype, "boundary", boundary, sizeof boundary, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -EINVAL, "Content-Type",
                            "Content-Type: multipart/report without a boundary");
    struct mime_parts parts;
    rc = mime_parts_begin(&parts, c, boundary, "multipart/report", err);
    if (rc < 0)
        return rc;
    int have_status = 0, have_part = 0, have_token = 0;
    char bad[40] = "";
    struct mime_cursor body;
    while (mime_parts_next(&parts, &body)) {
        /* the part: its headers, then its body */
        char pct[FIELD_MAX] = "text/plain";
        while (mime_next_field(&body, &f))
            if (!strcasecmp(f.name, "Content-Type"))
                snprintf(pct, sizeof pct, "%s", value);
        lower(pct);
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
        struct mime_cursor all = {data, data + len};
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

int outreach_bounce_ref(struct store *s, int64_t message_id, const char *token,
                        struct op_error *err)
{
    char hash[65];
    if (!token || !token_ok(token))
        return op_error_set(err, -EINVAL, "token",
                            "bounce token: expected 43 base64url characters");
    if (outreach_sha256_hex(token, strlen(token), hash) < 0)
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
    if (outreach_sha256_hex(d->token, strlen(d->token), hash) < 0)
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
