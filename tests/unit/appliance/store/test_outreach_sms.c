/*
 * Tests for appliance/store/outreach_sms.c and outreach_events.c: an SMS is
 * queued with its segment count and refused over the limit or with bad
 * text (the field named, nothing queued); the sender gets the contact's
 * E.164 number and a contact without one fails the message; a delivery
 * report finds its message by the token's hash only, sets the outcome
 * through outreach_record_event and an unknown token or type changes
 * nothing; a reply by SMS is matched by number (as dialled nationally),
 * logged as an activity and marks the last sent SMS replied; STOP (in
 * several languages) withdraws SMS consent at once and suppresses the
 * number; a reply outcome is not overwritten by a later report.
 */
#include "outreach_sms.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "consent_policy.h"
#include "db.h"
#include "entity.h"
#include "outreach.h"
#include "outreach_events.h"
#include "policy.h"
#include "store.h"
#include "testlib.h"

#define T0 1795514400000LL /* 2026-11-24T10:00:00Z */

static struct store *s;
static struct policy *pol;
static struct op_error err;

static char *new_contact(const char *phone)
{
    json_t *f =
        json_pack("{s:s, s:s?, s:s}", "family_name", "Weber", "phone", phone, "language", "de");
    json_t *rec = NULL;
    op_error_clear(&err);
    if (store_create(s, &entity_contact, f, STORE_SKIP_DUP_CHECK, &rec, &err) < 0) {
        fprintf(stderr, "contact create: %s\n", err.msg);
        exit(1);
    }
    json_decref(f);
    char *id = strdup(json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    return id;
}

static void grant_sms(const char *contact, const char *purpose)
{
    struct consent_request req = {.contact_id = contact,
                                  .channel = "sms",
                                  .purpose = purpose,
                                  .method = "single_opt_in",
                                  .source = "paper form"};
    CHECK_EQ(consent_record(s, pol, &req, T0, NULL, NULL, &err), 0);
}

static int64_t queue_sms(const char *contact, const char *text)
{
    struct outreach_new m = {
        .contact_id = contact, .channel = "sms", .purpose = "offers", .body = text};
    int64_t id = 0;
    op_error_clear(&err);
    int rc = outreach_queue(s, &m, T0, &id, &err);
    return rc < 0 ? rc : id;
}

static int64_t count(const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static const char *text_of(const char *sql)
{
    static char buf[256];
    sqlite3_stmt *st = NULL;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

static void test_queue(void)
{
    char *a = new_contact("+49 151 23456789");
    int64_t id = queue_sms(a, "Привет! Скидка 10% до пятницы.");
    CHECK(id > 0);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT params FROM outreach_messages WHERE id = %lld",
             (long long)id);
    CHECK_STR(text_of(sql), "{\"segments\":1,\"coding\":\"ucs2\"}");
    /* the cost is shown with the message (outpost outreach show, the API's list) */
    json_t *shown = NULL;
    CHECK_EQ(outreach_get(s, id, &shown, &err), 0);
    CHECK_EQ(json_integer_value(json_object_get(shown, "segments")), 1);
    CHECK_STR(json_string_value(json_object_get(shown, "coding")), "ucs2");
    CHECK_STR(json_string_value(json_object_get(shown, "channel")), "sms");
    json_decref(shown);
    int64_t two = queue_sms(a, "Ωμέγα: μια πολύ μεγάλη προσφορά για όλους τους πελάτες μας στο "
                               "κατάστημα, μόνο αυτή την εβδομάδα!");
    CHECK(two > 0);
    CHECK_EQ(outreach_get(s, two, &shown, &err), 0);
    CHECK_EQ(json_integer_value(json_object_get(shown, "segments")), 2);
    json_decref(shown);
    int64_t before = count("SELECT count(*) FROM outreach_messages");
    /* 11 segments of GSM-7 */
    char *lng = malloc(153 * 11 + 1);
    memset(lng, 'a', 153 * 11);
    lng[153 * 11] = '\0';
    CHECK_EQ(queue_sms(a, lng), -EINVAL);
    CHECK_STR(err.field, "body");
    CHECK_CONTAINS(err.msg, "11 segments (1683 gsm7 units); an SMS takes at most 10");
    free(lng);
    CHECK_EQ(queue_sms(a, ""), -EINVAL);
    CHECK_STR(err.field, "body");
    CHECK_EQ(queue_sms(a, "bad \xc3("), -EINVAL);
    CHECK_CONTAINS(err.msg, "body: not UTF-8 at byte 5");
    CHECK_EQ(queue_sms(a, "a\x01"), -EINVAL);
    CHECK_STR(err.field, "body");
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages"), before);
    free(a);
}

static void test_number_for_the_sender(void)
{
    char *a = new_contact("0151 23456789"); /* national, read in DE */
    char *b = new_contact(NULL);
    grant_sms(a, "offers");
    grant_sms(b, "offers");
    int64_t ia = queue_sms(a, "Hallo");
    int64_t ib = queue_sms(b, "Hallo");
    char num[PHONE_E164_MAX];
    CHECK_EQ(outreach_sms_number(s, a, num, &err), 0);
    CHECK_STR(num, "+4915123456789");
    struct outreach_job job;
    /* drain older rows of other tests first */
    int found_a = 0;
    for (int i = 0; i < 20; i++) {
        int rc = outreach_next(s, pol, T0 + 1000, &job, &err);
        if (rc <= 0)
            break;
        if (job.id == ia) {
            found_a = 1;
            CHECK_STR(job.address, "+4915123456789");
        }
        (void)outreach_sms_defer(s, job.id, T0 + 86400000LL, &err);
        outreach_job_free(&job);
    }
    CHECK(found_a);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT state || ' ' || error FROM outreach_messages WHERE id = %lld",
             (long long)ib);
    CHECK_STR(text_of(sql), "failed the contact has no mobile number in E.164");
    /* deferred: still queued, later, no attempt counted */
    snprintf(sql, sizeof sql,
             "SELECT state || ' ' || attempts || ' ' || next_try_ms FROM outreach_messages WHERE "
             "id = %lld",
             (long long)ia);
    CHECK_STR(text_of(sql), "queued 0 1795600800000");
    CHECK_EQ(outreach_sms_number(s, "0190f000-0000-7000-8000-000000000000", num, &err), -ENOENT);
    free(a);
    free(b);
}

/* Queues, attempts and sends one SMS to contact; returns its id and the
 * delivery report token in tok. */
static int64_t sent_sms(const char *contact, char tok[OUTREACH_TOKEN_BUF])
{
    int64_t id = queue_sms(contact, "Angebot");
    struct outreach_job job = {0};
    job.id = id;
    char ref[OUTREACH_SMS_REF_BUF], unsub[OUTREACH_TOKEN_BUF];
    CHECK_EQ(outreach_new_token(tok, &err), 0);
    CHECK_EQ(outreach_new_token(unsub, &err), 0);
    CHECK_EQ(outreach_sms_token_ref(tok, ref), 0);
    CHECK_EQ(outreach_sms_set_ref(s, id, ref, &err), 0);
    CHECK_EQ(outreach_attempt(s, &job, "http://127.0.0.1:13013/cgi-bin/sendsms", unsub, T0, &err),
             0);
    CHECK_EQ(outreach_outcome(s, id, OUTREACH_SENT, "", 60, 8, T0 + 10, &err), 0);
    return id;
}

static void test_delivery_reports(void)
{
    char *a = new_contact("+49 151 11111111");
    char tok[OUTREACH_TOKEN_BUF];
    int64_t id = sent_sms(a, tok);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT gateway_ref FROM outreach_messages WHERE id = %lld",
             (long long)id);
    /* the token itself is nowhere in the database */
    CHECK(strncmp(text_of(sql), "dlr:", 4) == 0);
    CHECK(strstr(text_of(sql), tok) == NULL);
    int64_t events = count("SELECT count(*) FROM outreach_events");
    int rec = -1;
    /* intermediate reports: answered, nothing recorded */
    CHECK_EQ(outreach_sms_dlr(s, tok, 8, "ACK", T0 + 20, &rec, &err), 0);
    CHECK_EQ(rec, 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), events);
    /* forged or wrong: nothing changes */
    CHECK_EQ(
        outreach_sms_dlr(s, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1, "", T0, &rec, &err),
        -ENOENT);
    CHECK_EQ(outreach_sms_dlr(s, "", 1, "", T0, &rec, &err), -ENOENT);
    CHECK_EQ(outreach_sms_dlr(s, tok, 3, "", T0, &rec, &err), -EINVAL);
    CHECK_STR(err.field, "type");
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), events);
    snprintf(sql, sizeof sql, "SELECT outcome FROM outreach_messages WHERE id = %lld",
             (long long)id);
    CHECK_STR(text_of(sql), "");
    /* delivered */
    CHECK_EQ(
        outreach_sms_dlr(s, tok, 1, "id:1 sub:001 dlvrd:001 stat:DELIVRD\n", T0 + 30, &rec, &err),
        0);
    CHECK_EQ(rec, 1);
    CHECK_STR(text_of(sql), "delivered");
    snprintf(sql, sizeof sql,
             "SELECT kind || '|' || detail FROM outreach_events WHERE message_id = %lld",
             (long long)id);
    CHECK_STR(text_of(sql), "delivered|DLR 1: id:1 sub:001 dlvrd:001 stat:DELIVRD ");
    /* a failure report of another message */
    char tok2[OUTREACH_TOKEN_BUF];
    int64_t id2 = sent_sms(a, tok2);
    CHECK_EQ(outreach_sms_dlr(s, tok2, 16, "rejected", T0 + 40, &rec, &err), 0);
    snprintf(sql, sizeof sql, "SELECT outcome FROM outreach_messages WHERE id = %lld",
             (long long)id2);
    CHECK_STR(text_of(sql), "bounced");
    free(a);
}

static void test_record_event(void)
{
    char *a = new_contact("+49 151 22222222");
    char tok[OUTREACH_TOKEN_BUF];
    int64_t id = sent_sms(a, tok);
    int64_t events = count("SELECT count(*) FROM outreach_events");
    CHECK_EQ(outreach_record_event(s, id, "opened", T0, "", &err), -EINVAL);
    CHECK_STR(err.field, "kind");
    CHECK_EQ(outreach_record_event(s, 999999, "delivered", T0, "", &err), -ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), events);
    CHECK_EQ(outreach_record_event(s, id, "replied", T0 + 1, "x", &err), 0);
    CHECK_EQ(outreach_record_event(s, id, "delivered", T0 + 2, "late DLR", &err), 0);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT outcome FROM outreach_messages WHERE id = %lld",
             (long long)id);
    CHECK_STR(text_of(sql), "replied"); /* a reply stays */
    /* the detail is bounded, cut on a whole character */
    char big[600];
    for (int i = 0; i < 299; i++)
        memcpy(big + 2 * i, "é", 2);
    big[598] = '\0';
    CHECK_EQ(outreach_record_event(s, id, "bounced_soft", T0 + 3, big, &err), 0);
    snprintf(sql, sizeof sql,
             "SELECT length(CAST(detail AS BLOB)) FROM outreach_events WHERE message_id = %lld "
             "AND kind = 'bounced_soft'",
             (long long)id);
    CHECK_EQ(count(sql), OUTREACH_EVENT_DETAIL_MAX);
    free(a);
}

static void test_replies_and_stop(void)
{
    char *a = new_contact("+49 170 3333333");
    grant_sms(a, "offers");
    grant_sms(a, "events");
    char tok[OUTREACH_TOKEN_BUF];
    int64_t id = sent_sms(a, tok);
    struct outreach_sms_mo_result r;
    int64_t acts = count("SELECT count(*) FROM activities");
    /* bad input: named, nothing written */
    CHECK_EQ(outreach_sms_mo(s, "hello", "hi", T0, &r, &err), -EINVAL);
    CHECK_STR(err.field, "from");
    CHECK_EQ(outreach_sms_mo(s, "+491703333333", "bell\x07", T0, &r, &err), -EINVAL);
    CHECK_STR(err.field, "text");
    CHECK_EQ(count("SELECT count(*) FROM activities"), acts);
    /* an unknown number: nothing written */
    CHECK_EQ(outreach_sms_mo(s, "+491709999999", "Hallo", T0, &r, &err), 0);
    CHECK_EQ(r.matched, 0);
    CHECK_EQ(count("SELECT count(*) FROM activities"), acts);
    /* a reply, from the number as dialled nationally */
    CHECK_EQ(outreach_sms_mo(s, "0170 3333333", "Ja, gerne!", T0 + 100, &r, &err), 0);
    CHECK_EQ(r.matched, 1);
    CHECK_EQ(r.stop, 0);
    CHECK_EQ(r.message_id, id);
    CHECK_STR(r.contact_id, a);
    CHECK_EQ(count("SELECT count(*) FROM activities"), acts + 1);
    CHECK_STR(text_of("SELECT channel || '|' || direction || '|' || subject || '|' || body FROM "
                      "activities ORDER BY rowid DESC LIMIT 1"),
              "sms|inbound|sms-in|Ja, gerne!");
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT outcome FROM outreach_messages WHERE id = %lld",
             (long long)id);
    CHECK_STR(text_of(sql), "replied");
    struct consent_decision d;
    CHECK_EQ(consent_check(s, pol, a, "sms", "offers", NULL, T0 + 200, &d, &err), 0);
    CHECK_EQ(d.allowed, 1);
    /* STOP: every SMS purpose withdrawn at once, the number suppressed */
    CHECK_EQ(outreach_sms_mo(s, "+491703333333", "  stop please", T0 + 300, &r, &err), 0);
    CHECK_EQ(r.stop, 1);
    CHECK_EQ(consent_check(s, pol, a, "sms", "offers", NULL, T0 + 400, &d, &err), 0);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(consent_check(s, pol, a, "sms", "events", NULL, T0 + 400, &d, &err), 0);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(consent_check(s, pol, a, "sms", "a-new-purpose", NULL, T0 + 400, &d, &err), 0);
    CHECK_EQ(d.allowed, 0);
    int sup = 0;
    CHECK_EQ(consent_is_suppressed(s, "sms", NULL, "+491703333333", &sup, &err), 0);
    CHECK_EQ(sup, 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outreach_events WHERE message_id = %lld AND kind = "
             "'unsubscribed'",
             (long long)id);
    CHECK_EQ(count(sql), 1);
    free(a);
}

static void test_stop_words(void)
{
    static const char *const yes[] = {"STOP",        "stop",  "Stopp", "ARRET", "Arrêt",
                                      "ARRÊT",       "parar", "BAJA",  "СТОП",  "стоп",
                                      "UNSUBSCRIBE", "Stop.", "stop!"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!outreach_sms_is_stop(yes[i]))
            fprintf(stderr, "not a stop word: %s\n", yes[i]);
        CHECK(outreach_sms_is_stop(yes[i]));
    }
    static const char *const no[] = {"", "stopover", "please stop", "Hallo", "ST OP"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(!outreach_sms_is_stop(no[i]));
}

int main(void)
{
    pol = fx_consent_policy();
    op_error_clear(&err);
    if (store_open(":memory:", DB_OPEN_CREATE, &s, &err) < 0 ||
        store_init_node(s, "EU-DE", &err) < 0) {
        fprintf(stderr, "store: %s\n", err.msg);
        return 1;
    }
    RUN(test_queue);
    RUN(test_number_for_the_sender);
    RUN(test_delivery_reports);
    RUN(test_record_event);
    RUN(test_replies_and_stop);
    RUN(test_stop_words);
    store_close(s);
    policy_free(pol);
    return tl_report();
}
