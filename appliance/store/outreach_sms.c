/*
 * The SMS side of the outreach queue; see outreach_sms.h.
 */
#include "outreach_sms.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "consent.h"
#include "entity.h"
#include "outreach_events.h"
#include "region.h"
#include "sql.h"
#include "store_queries.h"
#include "store_txn.h"
#include "timefmt.h"
#include "utf8.h"

int outreach_sms_check_text(const char *text, struct sms_count *c, struct op_error *err)
{
    long bad = -1;
    if (!text || !*text)
        return op_error_set(err, -EINVAL, "body", "body: an SMS needs a text");
    if (sms_text_count(text, c, &bad) < 0)
        return op_error_set(err, -EINVAL, "body", "body: not UTF-8 at byte %ld", bad + 1);
    if (c->segments > OUTREACH_SMS_SEGMENTS_MAX)
        return op_error_set(err, -EINVAL, "body",
                            "body: %u segments (%u %s units); an SMS takes at most %d", c->segments,
                            c->units, sms_coding_name(c->coding), OUTREACH_SMS_SEGMENTS_MAX);
    return 0;
}

/* Runs one named statement that binds (?1 int64, ?2 text or int64) in
 * its own transaction; returns the rows changed or a negative errno. */
static int update_one(struct store *s, unsigned q, int64_t id, const char *text, int64_t num,
                      struct op_error *err)
{
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, q, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        if (text)
            sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 2, num);
        rc = sql_run(&c, q, st, err);
    }
    return store_txn_end(s, &c, own, rc, err);
}

int outreach_sms_number(struct store *s, const char *contact_id, char out[PHONE_E164_MAX],
                        struct op_error *err)
{
    out[0] = '\0';
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_SMS_CONTACT_NUMBER, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, contact_id, -1, SQLITE_STATIC);
        rc = sql_step(&c, STORE_Q_OUTREACH_SMS_CONTACT_NUMBER, st, err);
        if (rc == 1) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(out, PHONE_E164_MAX, "%s", t ? (const char *)t : "");
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, "contact_id", "no contact %s", contact_id);
        }
    }
    sql_cache_close(&c);
    /* an extension (;ext=) cannot receive an SMS */
    if (strchr(out, ';'))
        out[0] = '\0';
    return rc;
}

int outreach_sms_defer(struct store *s, int64_t id, int64_t until_ms, struct op_error *err)
{
    int rc = update_one(s, STORE_Q_OUTREACH_SMS_DEFER, id, NULL, until_ms, err);
    if (rc == 0)
        return op_error_set(err, -ESTALE, "id", "message %lld is no longer queued", (long long)id);
    return rc < 0 ? rc : 0;
}

int outreach_sms_token_ref(const char *token, char ref[OUTREACH_SMS_REF_BUF])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -EIO;
    memcpy(ref, "dlr:", 4);
    (void)codec_hex_encode(md, 32, ref + 4, OUTREACH_SMS_REF_BUF - 4);
    return 0;
}

int outreach_sms_set_ref(struct store *s, int64_t id, const char *ref, struct op_error *err)
{
    int rc = update_one(s, STORE_Q_OUTREACH_SMS_SET_REF, id, ref, 0, err);
    if (rc == 0)
        return op_error_set(err, -ESTALE, "id", "message %lld is no longer queued", (long long)id);
    return rc < 0 ? rc : 0;
}

int outreach_sms_set_sent_ref(struct store *s, int64_t id, const char *ref, struct op_error *err)
{
    int rc = update_one(s, STORE_Q_OUTREACH_SMS_SET_REF_SENT, id, ref, 0, err);
    return rc < 0 ? rc : 0;
}

/* The message a reference names; 0 and *id, or -ENOENT. */
static int message_by_ref(struct store *s, const char *ref, int64_t *id, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_SMS_BY_REF, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
        rc = sql_step(&c, STORE_Q_OUTREACH_SMS_BY_REF, st, err);
        if (rc == 1) {
            *id = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, "t", "unknown delivery report token");
        }
    }
    sql_cache_close(&c);
    return rc;
}

int outreach_sms_dlr(struct store *s, const char *token, long type, const char *smsc_words,
                     int64_t now_ms, int *recorded, struct op_error *err)
{
    *recorded = 0;
    const char *kind = type == 1 ? "delivered" : type == 2 || type == 16 ? "failed" : NULL;
    if (!kind && type != 4 && type != 8)
        return op_error_set(err, -EINVAL, "type",
                            "type: %ld is not a Kannel delivery report type (1, 2, 4, 8, 16)",
                            type);
    size_t tlen = token ? strlen(token) : 0;
    if (tlen < 16 || tlen > 64)
        return op_error_set(err, -ENOENT, "t", "unknown delivery report token");
    char ref[OUTREACH_SMS_REF_BUF];
    if (outreach_sms_token_ref(token, ref) < 0)
        return op_error_set(err, -EIO, NULL, "cannot hash the token");
    int64_t id = 0;
    int rc = message_by_ref(s, ref, &id, err);
    if (rc < 0 || !kind)
        return rc;
    char detail[OUTREACH_EVENT_DETAIL_MAX + 1];
    snprintf(detail, sizeof detail, "DLR %ld: %s", type, smsc_words ? smsc_words : "");
    rc = outreach_record_event(s, id, kind, store_txn_now(now_ms), detail, err);
    if (rc == 0)
        *recorded = 1;
    return rc;
}

int outreach_sms_is_stop(const char *text)
{
    static const char *const words[] = {
        "STOP", "STOPP", "UNSUBSCRIBE", "ARRET", "PARAR", "BAJA", "CANCELAR", "END", "CANCEL",
        "QUIT", "ARRÊT", "arrêt",       "Arrêt", "СТОП",  "стоп", "Стоп",     NULL};
    const char *p = text ? text : "";
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    size_t n = strcspn(p, " \t\r\n.!,;");
    for (size_t i = 0; words[i]; i++) {
        size_t wl = strlen(words[i]);
        if (wl == n && !strncasecmp(p, words[i], n))
            return 1;
    }
    return 0;
}

static int first_text(struct sql_cache *c, unsigned q, const char *arg, char *out, size_t cap,
                      struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    int rc = sql_get_st(c, q, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        rc = sql_step(c, q, st, err);
        if (rc == 1) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(out, cap, "%s", t ? (const char *)t : "");
            sqlite3_reset(st);
            rc = 1;
        }
    }
    return rc;
}

/* Withdraws every open SMS consent of the contact and suppresses the
 * number for every purpose. */
static int stop_all(struct store *s, struct sql_cache *c, const char *contact, const char *number,
                    int64_t now, struct op_error *err)
{
    char purposes[16][104];
    int n = 0;
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_OUTREACH_SMS_SMS_PURPOSES, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, contact, -1, SQLITE_STATIC);
        while ((rc = sql_step(c, STORE_Q_OUTREACH_SMS_SMS_PURPOSES, st, err)) == 1) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            if (n < 16)
                snprintf(purposes[n++], sizeof purposes[0], "%s", t ? (const char *)t : "");
        }
    }
    for (int i = 0; rc == 0 && i < n; i++)
        rc = consent_withdraw(s, contact, "sms", purposes[i], "marketing", "STOP by SMS", now, NULL,
                              err);
    if (rc == 0)
        rc = consent_suppress(s, "sms", number, "withdrawn", err);
    return rc;
}

int outreach_sms_mo(struct store *s, const char *from, const char *text, int64_t now_ms,
                    struct outreach_sms_mo_result *r, struct op_error *err)
{
    memset(r, 0, sizeof *r);
    const struct region_info *region = region_find(store_region(s));
    char number[PHONE_E164_MAX];
    if (!from || phone_to_e164(from, region, number) < 0 || strchr(number, ';'))
        return op_error_set(err, -EINVAL, "from", "from: '%.32s' is not a phone number",
                            from ? from : "");
    size_t tlen = text ? strlen(text) : 0;
    if (!text || tlen > OUTREACH_SMS_MO_TEXT_MAX ||
        utf8_bad_offset(text, tlen, UTF8_REFUSE_CONTROLS) >= 0)
        return op_error_set(err, -EINVAL, "text",
                            "text: UTF-8 of at most %d bytes without control characters",
                            OUTREACH_SMS_MO_TEXT_MAX);
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    int own; /* else the caller's transaction */
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    rc = first_text(&c, STORE_Q_OUTREACH_SMS_CONTACT_BY_NUMBER, number, r->contact_id,
                    sizeof r->contact_id, err);
    if (rc == 1) {
        r->matched = 1;
        char when[40];
        timefmt_iso_ms(now, when, sizeof when);
        json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "channel", "sms", "direction",
                              "inbound", "subject", "sms-in", "body", text, "occurred_at", when,
                              "contact_id", r->contact_id);
        rc = a ? store_create(s, &entity_activity, a, 0, NULL, err)
               : op_error_set(err, -ENOMEM, NULL, "out of memory");
        json_decref(a);
        char last[24];
        int got = rc == 0 ? first_text(&c, STORE_Q_OUTREACH_SMS_LAST_SENT, r->contact_id, last,
                                       sizeof last, err)
                          : rc;
        rc = got < 0 ? got : 0;
        if (got == 1) {
            r->message_id = strtoll(last, NULL, 10);
            rc = outreach_record_event(s, r->message_id, "replied", now, "a reply by SMS", err);
        }
        if (rc == 0 && outreach_sms_is_stop(text)) {
            r->stop = 1;
            rc = stop_all(s, &c, r->contact_id, number, now, err);
            if (rc == 0 && r->message_id)
                rc = outreach_record_event(s, r->message_id, "unsubscribed", now, "STOP by SMS",
                                           err);
        }
    }
    rc = store_txn_end(s, &c, own, rc, err);
    return rc < 0 ? rc : 0;
}
