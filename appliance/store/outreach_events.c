/*
 * Outreach events and call results; see outreach_events.h and
 * docs/OUTREACH.md. Each function is one transaction (the caller's when
 * one is open), so an event, the outcome it sets and whatever follows
 * from it (a suppression, an activity, a withdrawal) are kept together or
 * not at all.
 */
#include "outreach_events.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "entity.h"
#include "sql.h"
#include "store_queries.h"
#include "store_txn.h"
#include "timefmt.h"
#include "utf8.h"

static const struct {
    const char *kind, *outcome;
} kinds[] = {
    {"delivered", "delivered"},    {"bounced_hard", "bounced"}, {"bounced_soft", ""},
    {"failed", "bounced"},         {"replied", "replied"},      {"unsubscribed", ""},
    {"auto_replied", "delivered"}, /* a machine's answer: it arrived, nobody replied */
};

int outreach_event_kind_valid(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].kind, kind))
            return 1;
    return 0;
}

static const char *outcome_of(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].kind, kind))
            return kinds[i].outcome;
    return NULL;
}

/* Copies detail into out, cut at OUTREACH_EVENT_DETAIL_MAX bytes on a
 * character boundary; control characters become spaces, so a detail is
 * one line (a transport's words are kept, not refused). -EINVAL for bad
 * UTF-8. */
static int bounded(const char *detail, char *out, size_t cap, struct op_error *err)
{
    const char *d = detail ? detail : "";
    size_t n = strlen(d);
    if (utf8_bad_offset(d, n, 0) >= 0)
        return op_error_set(err, -EINVAL, "detail", "detail: not valid UTF-8");
    if (n >= cap)
        n = cap - 1;
    while (n && ((unsigned char)d[n] & 0xC0) == 0x80)
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)d[i];
        out[i] = ch < 0x20 || ch == 0x7f ? ' ' : d[i];
    }
    out[n] = '\0';
    return 0;
}

struct msg {
    char contact[40], channel[24], purpose[104], state[16];
};

static int read_message(struct sql_cache *c, int64_t id, struct msg *m, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_OUTREACH_EVENTS_MESSAGE, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sql_step(c, STORE_Q_OUTREACH_EVENTS_MESSAGE, st, err);
    if (rc == 1) {
        const unsigned char *t;
        t = sqlite3_column_text(st, 0);
        snprintf(m->contact, sizeof m->contact, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(st, 1);
        snprintf(m->channel, sizeof m->channel, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(st, 2);
        snprintf(m->purpose, sizeof m->purpose, "%s", t ? (const char *)t : "");
        t = sqlite3_column_text(st, 3);
        snprintf(m->state, sizeof m->state, "%s", t ? (const char *)t : "");
        sqlite3_reset(st);
        return 0;
    }
    return rc < 0 ? rc : op_error_set(err, -ENOENT, "id", "no message %lld", (long long)id);
}

static int count(struct sql_cache *c, unsigned q, int64_t id, const char *a, const char *b,
                 int64_t *n, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, q, &st, err);
    if (rc < 0)
        return rc;
    if (q == STORE_Q_OUTREACH_EVENTS_HARD_BOUNCED_MESSAGES) {
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_int64(st, 1, id);
        if (a)
            sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC);
        if (b)
            sqlite3_bind_text(st, 3, b, -1, SQLITE_STATIC);
    }
    return sql_one_int64(c, q, st, "outreach events", n, 1, err);
}

/* The event and the outcome, inside an open transaction. */
static int insert_event(struct sql_cache *c, int64_t id, const char *kind, int64_t at,
                        const char *detail, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_OUTREACH_EVENTS_INSERT, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, at);
        sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
        rc = sql_run_what(c, st, "cannot record the outreach event", err);
    }
    if (rc == 0)
        rc = sql_get_st(c, STORE_Q_OUTREACH_EVENTS_SET_OUTCOME, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, outcome_of(kind), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, at);
        rc = sql_run_what(c, st, "cannot record the message's outcome", err);
    }
    return rc;
}

int outreach_record_event(struct store *s, int64_t message_id, const char *kind, int64_t at_ms,
                          const char *detail, struct op_error *err)
{
    if (!outcome_of(kind))
        return op_error_set(err, -EINVAL, "kind",
                            "kind: '%.32s' is not one of delivered, bounced_hard, bounced_soft, "
                            "failed, replied, unsubscribed, auto_replied",
                            kind ? kind : "");
    char text[OUTREACH_EVENT_DETAIL_MAX + 1];
    int rc = bounded(detail, text, sizeof text, err);
    if (rc < 0)
        return rc;
    struct sql_cache c;
    int own;
    rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    struct msg m;
    rc = read_message(&c, message_id, &m, err);
    if (rc == 0)
        rc = insert_event(&c, message_id, kind, store_txn_now(at_ms), text, err);
    return store_txn_end(s, &c, own, rc, err);
}

/* The contact's address for the channel ("" when none or erased). */
static int contact_field(struct store *s, const char *contact_id, const char *field, char *out,
                         size_t cap, struct op_error *err)
{
    out[0] = '\0';
    json_t *ct = NULL;
    int rc = store_get(s, &entity_contact, contact_id, STORE_IGNORE_VIEWER, &ct, err);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    const char *v = json_string_value(json_object_get(ct, field));
    snprintf(out, cap, "%s", v ? v : "");
    json_decref(ct);
    return 0;
}

int outreach_record_bounce(struct store *s, int64_t message_id, const char *kind,
                           const char *detail, unsigned limit, int64_t at_ms, int *duplicate,
                           int *suppressed, struct op_error *err)
{
    if (duplicate)
        *duplicate = 0;
    if (suppressed)
        *suppressed = 0;
    if (!kind ||
        (strcmp(kind, "bounced_hard") && strcmp(kind, "bounced_soft") && strcmp(kind, "delivered")))
        return op_error_set(err, -EINVAL, "kind",
                            "kind: expected bounced_hard, bounced_soft or delivered");
    if (limit < 1)
        return op_error_set(err, -EINVAL, "outreach_hard_bounce_limit",
                            "outreach_hard_bounce_limit: must be at least 1");
    char text[OUTREACH_EVENT_DETAIL_MAX + 1];
    int rc = bounded(detail, text, sizeof text, err);
    if (rc < 0)
        return rc;
    struct sql_cache c;
    int own;
    rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    struct msg m;
    int64_t n = 0;
    rc = read_message(&c, message_id, &m, err);
    if (rc == 0 && strcmp(m.channel, "email"))
        rc = op_error_set(err, -EINVAL, "id", "message %lld is a %s message, not an e-mail",
                          (long long)message_id, m.channel);
    if (rc == 0)
        rc = count(&c, STORE_Q_OUTREACH_EVENTS_SAME_EXISTS, message_id, kind, text, &n, err);
    if (rc == 0 && n > 0) {
        if (duplicate)
            *duplicate = 1;
        return store_txn_end(s, &c, own, 0, err);
    }
    if (rc == 0)
        rc = insert_event(&c, message_id, kind, store_txn_now(at_ms), text, err);
    if (rc == 0 && !strcmp(kind, "bounced_hard"))
        rc = count(&c, STORE_Q_OUTREACH_EVENTS_HARD_BOUNCED_MESSAGES, 0, m.contact, "email", &n,
                   err);
    if (rc == 0 && !strcmp(kind, "bounced_hard") && n >= (int64_t)limit) {
        char addr[324];
        rc = contact_field(s, m.contact, "email", addr, sizeof addr, err);
        char reason[64];
        snprintf(reason, sizeof reason, "%lld hard bounces", (long long)n);
        if (rc == 0 && addr[0])
            rc = consent_suppress(s, "email", addr, reason, err);
        if (rc == 0 && addr[0] && suppressed)
            *suppressed = 1;
    }
    return store_txn_end(s, &c, own, rc, err);
}

int outreach_call_result_parse(const char *text)
{
    static const char *const names[] = {"answered", "no-answer", "refused", "wrong-number"};
    for (int i = 0; text && i < 4; i++)
        if (!strcmp(names[i], text))
            return i;
    return -1;
}

int outreach_call_result(struct store *s, int64_t message_id, enum outreach_call_result r,
                         const char *note, int64_t at_ms, char *activity_id, struct op_error *err)
{
    static const char *const names[] = {"answered", "no-answer", "refused", "wrong-number"};
    static const char *const events[] = {"delivered", "bounced_soft", "unsubscribed",
                                         "bounced_hard"};
    if ((int)r < 0 || (int)r > 3)
        return op_error_set(err, -EINVAL, "result",
                            "result: expected answered, no-answer, refused or wrong-number");
    const char *n = note ? note : "";
    if (strlen(n) > OUTREACH_CALL_NOTE_MAX)
        return op_error_set(err, -EINVAL, "note", "note: at most %d bytes", OUTREACH_CALL_NOTE_MAX);
    for (const char *p = n; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
            return op_error_set(err, -EINVAL, "note",
                                "note: text without control characters (newline and tab allowed)");
    char text[OUTREACH_EVENT_DETAIL_MAX + 1];
    int rc = bounded(n, text, sizeof text, err);
    if (rc < 0)
        return op_error_set(err, -EINVAL, "note", "note: not valid UTF-8");
    int64_t at = store_txn_now(at_ms);
    struct sql_cache c;
    int own;
    rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    struct msg m;
    int64_t have = 0;
    rc = read_message(&c, message_id, &m, err);
    if (rc == 0 && (strcmp(m.channel, "call") || strcmp(m.state, "sent")))
        rc = op_error_set(err, -EINVAL, "id",
                          "message %lld (channel %s, state %s): only a call handed out in a "
                          "call list (sent) takes a result",
                          (long long)message_id, m.channel, m.state);
    if (rc == 0)
        rc = count(&c, STORE_Q_OUTREACH_EVENTS_COUNT_FOR_MESSAGE, message_id, NULL, NULL, &have,
                   err);
    if (rc == 0 && have > 0)
        rc = op_error_set(err, -EINVAL, "id", "message %lld has a call result already",
                          (long long)message_id);
    char full[OUTREACH_EVENT_DETAIL_MAX + 32], detail[OUTREACH_EVENT_DETAIL_MAX + 1];
    snprintf(full, sizeof full, "call: %s%s%s", names[r], text[0] ? ": " : "", text);
    if (rc == 0)
        rc = bounded(full, detail, sizeof detail, err);
    if (rc == 0)
        rc = insert_event(&c, message_id, events[r], at, detail, err);
    char when[40];
    if (rc == 0 && timefmt_iso_ms(at, when, sizeof when) < 0)
        rc = op_error_set(err, -EINVAL, "at", "cannot format the call's time");
    if (rc == 0) {
        json_t *f =
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "channel", "call", "direction", "outbound",
                      "outcome", names[r], "occurred_at", when, "contact_id", m.contact);
        if (f && text[0])
            json_object_set_new(f, "body", json_string(n));
        if (f)
            json_object_set_new(f, "subject", json_string(m.purpose));
        json_t *rec = NULL;
        rc = f ? store_create(s, &entity_activity, f, 0, &rec, err)
               : op_error_set(err, -ENOMEM, NULL, "out of memory");
        if (rc == 0 && activity_id)
            snprintf(activity_id, 40, "%s", json_string_value(json_object_get(rec, "id")));
        json_decref(rec);
        json_decref(f);
    }
    if (rc == 0 && r == OUTREACH_CALL_REFUSED)
        rc = consent_withdraw(s, m.contact, "call", m.purpose, "marketing",
                              "refused on the phone (do not call)", at, NULL, err);
    return store_txn_end(s, &c, own, rc, err);
}
