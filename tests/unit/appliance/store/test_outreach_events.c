/*
 * Tests for appliance/store/outreach_events.c and outreach_handout.c:
 * an event sets the message's outcome in the same transaction and bad
 * input (an unknown kind, a control character, no such message) changes
 * nothing; due calls are handed out with the consent decision and an
 * E.164 number, refused or failed when consent or the number is missing,
 * and a crash between the hand-out and its record leaves `unknown`; a
 * call's result is an event and an activity on the contact, `refused` a
 * withdrawal for calls in the consent ledger; a second result, a result
 * for a message that is not a sent call, and a bad note are refused with
 * nothing changed.
 */
#include "outreach_events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "consent_policy.h"
#include "db.h"
#include "entity.h"
#include "outreach.h"
#include "outreach_handout.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

#define T0 1795514400000LL

static struct store *s;
static struct policy *pol;
static struct op_error err;

static char *new_contact(const char *family, const char *phone)
{
    json_t *f =
        json_pack("{s:s, s:s?, s:s}", "family_name", family, "phone", phone, "language", "de");
    json_t *rec = NULL;
    op_error_clear(&err);
    if (store_create(s, &entity_contact, f, STORE_SKIP_DUP_CHECK, &rec, &err) < 0) {
        fprintf(stderr, "contact: %s\n", err.msg);
        exit(1);
    }
    json_decref(f);
    char *id = strdup(json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    return id;
}

static int64_t queue(const char *contact, const char *channel, const char *body)
{
    struct outreach_new m = {.contact_id = contact,
                             .channel = channel,
                             .purpose = "offers",
                             .subject = "Herbst",
                             .body = body};
    int64_t id = 0;
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), 0);
    return id;
}

static int64_t count(const char *sql)
{
    return fx_count(s, sql);
}

static const char *state_of(int64_t id)
{
    static char buf[16];
    json_t *m = NULL;
    CHECK_EQ(outreach_get(s, id, &m, &err), 0);
    snprintf(buf, sizeof buf, "%s", m ? json_string_value(json_object_get(m, "state")) : "?");
    json_decref(m);
    return buf;
}

static void test_record_event(void)
{
    char *a = new_contact("Lima", NULL);
    int64_t id = queue(a, "email", "x");
    CHECK_EQ(outreach_record_event(s, id, "delivered", T0 + 5, "250 ok", &err), 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'delivered' AND "
                   "outcome_ms = 1795514400005"),
             1);
    /* a failure reported after the delivery report: a bounce wins over it */
    CHECK_EQ(outreach_record_event(s, id, "failed", T0 + 6, "", &err), 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'bounced'"), 1);
    CHECK_EQ(outreach_record_event(s, id, "replied", T0 + 7, "Danke!", &err), 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'replied'"), 1);
    int64_t before = count("SELECT count(*) FROM outreach_events");
    op_error_clear(&err);
    CHECK_EQ(outreach_record_event(s, id, "opened", T0, "", &err), -EINVAL);
    CHECK_STR(err.field, "kind");
    CHECK_EQ(outreach_record_event(s, id, "delivered", T0, "\xff\xfe", &err), -EINVAL);
    CHECK_STR(err.field, "detail");
    CHECK_EQ(outreach_record_event(s, 99999, "delivered", T0, "", &err), -ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), before);
    /* a transport's control characters are kept as spaces, not refused */
    CHECK_EQ(outreach_record_event(s, id, "delivered", T0 + 8, "a\rb\001c", &err), 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE detail = 'a b c'"), 1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'replied'"), 1);
    /* a long detail is cut at a character boundary */
    char longd[2000];
    size_t k = 0;
    while (k + 2 < sizeof longd) {
        longd[k++] = '\xc3';
        longd[k++] = '\xa4'; /* ä */
    }
    longd[k] = '\0';
    CHECK_EQ(outreach_record_event(s, id, "failed", T0, longd, &err), 0);
    CHECK_EQ(count("SELECT max(length(CAST(detail AS BLOB))) FROM outreach_events"), 500);
    free(a);
}

static void test_calls(void)
{
    char *a = new_contact("Weiß", "030 901820");
    char *b = new_contact("Ohnenummer", NULL);
    char *c = new_contact("Einspruch", "0221 123456");
    int n = 0;
    /* c objected to calls (opt-out in the test policy) */
    CHECK_EQ(consent_withdraw(s, c, "call", "offers", NULL, "objected", T0, &n, &err), 0);
    int64_t k1 = queue(a, "call", "Guten Tag"), k2 = queue(b, "call", "x"),
            k3 = queue(c, "call", "y");
    int64_t e1 = queue(a, "email", "not a call");
    /* the sender never takes a call */
    struct outreach_job job;
    int rc = outreach_next(s, pol, T0 + 1, &job, &err);
    CHECK(rc == 0 || job.id == e1);
    if (rc == 1)
        outreach_job_free(&job);

    struct outreach_handout h;
    CHECK_EQ(outreach_handout_take(s, pol, "call", 100, T0 + 10, &h, &err), 0);
    CHECK_EQ(h.n, 1);
    CHECK_EQ(h.refused, 1);
    CHECK_EQ(h.failed, 1);
    CHECK_EQ(h.rows[0].id, k1);
    CHECK_STR(h.rows[0].phone, "+4930901820");
    CHECK_STR(h.rows[0].language, "de");
    CHECK_STR(h.rows[0].body, "Guten Tag");
    CHECK_EQ(h.rows[0].decision.allowed, 1);
    CHECK_STR(state_of(k1), "sending");
    CHECK_STR(state_of(k2), "failed");
    CHECK_STR(state_of(k3), "refused");
    /* "crash" before the record: the next run reports it unknown */
    int64_t unknown = 0;
    CHECK_EQ(outreach_handout_recover(s, "call", &unknown, &err), 0);
    CHECK_EQ(unknown, 1);
    CHECK_STR(state_of(k1), "unknown");
    outreach_handout_free(&h);
    CHECK_EQ(outreach_handout_take(s, pol, "call", 100, T0 + 20, &h, &err), 0);
    CHECK_EQ(h.n, 0); /* never handed out twice by itself */
    outreach_handout_free(&h);
    CHECK_EQ(outreach_requeue(s, k1, T0 + 30, &err), 0);
    CHECK_EQ(outreach_handout_take(s, pol, "call", 100, T0 + 40, &h, &err), 0);
    CHECK_EQ(h.n, 1);
    CHECK_EQ(outreach_handout_done(s, &h, T0 + 50, &err), 0);
    outreach_handout_free(&h);
    CHECK_STR(state_of(k1), "sent");

    /* results */
    int64_t ev = count("SELECT count(*) FROM outreach_events"),
            act = count("SELECT count(*) FROM activities");
    char act_id[40] = "";
    CHECK_EQ(outreach_call_result(s, k3, OUTREACH_CALL_ANSWERED, NULL, T0, act_id, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "(channel call, state refused): only a call handed out");
    CHECK_EQ(outreach_call_result(s, e1, OUTREACH_CALL_ANSWERED, NULL, T0, act_id, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "(channel email, state refused)");
    CHECK_EQ(outreach_call_result(s, 99999, OUTREACH_CALL_ANSWERED, NULL, T0, act_id, &err),
             -ENOENT);
    CHECK_EQ(outreach_call_result(s, k1, OUTREACH_CALL_REFUSED, "bad\x01", T0, act_id, &err),
             -EINVAL);
    CHECK_STR(err.field, "note");
    CHECK_EQ(outreach_call_result(s, k1, (enum outreach_call_result)7, NULL, T0, act_id, &err),
             -EINVAL);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), ev);
    CHECK_EQ(count("SELECT count(*) FROM activities"), act);

    struct consent_decision d;
    CHECK_EQ(consent_check(s, pol, a, "call", "offers", NULL, T0 + 60, &d, &err), 0);
    CHECK_EQ(d.allowed, 1); /* opt-out: allowed until the contact refuses */
    CHECK_EQ(outreach_call_result(s, k1, OUTREACH_CALL_REFUSED, "bitte nie wieder", T0 + 70, act_id,
                                  &err),
             0);
    CHECK(act_id[0]);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE kind = 'unsubscribed' AND "
                   "detail = 'call: refused: bitte nie wieder'"),
             1);
    CHECK_EQ(count("SELECT count(*) FROM activities WHERE channel = 'call' AND outcome = "
                   "'refused' AND direction = 'outbound' AND body = 'bitte nie wieder' AND "
                   "subject = 'offers'"),
             1);
    CHECK_EQ(consent_check(s, pol, a, "call", "offers", NULL, T0 + 80, &d, &err), 0);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(outreach_call_result(s, k1, OUTREACH_CALL_ANSWERED, NULL, T0, act_id, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "has a call result already");

    /* wrong number: a hard bounce event, no consent change */
    char *e = new_contact("Falsch", "030 901821");
    int64_t k4 = queue(e, "call", "z");
    CHECK_EQ(outreach_handout_take(s, pol, "call", 100, T0 + 90, &h, &err), 0);
    CHECK_EQ(h.n, 1);
    CHECK_EQ(outreach_handout_done(s, &h, T0 + 91, &err), 0);
    outreach_handout_free(&h);
    CHECK_EQ(outreach_call_result(s, k4, OUTREACH_CALL_WRONG_NUMBER, NULL, T0 + 92, NULL, &err), 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'bounced' AND "
                   "channel = 'call'"),
             1);
    CHECK_EQ(consent_check(s, pol, e, "call", "offers", NULL, T0 + 93, &d, &err), 0);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(outreach_call_result_parse("no-answer"), OUTREACH_CALL_NO_ANSWER);
    CHECK_EQ(outreach_call_result_parse("busy"), -1);
    free(a);
    free(b);
    free(c);
    free(e);
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
    RUN(test_record_event);
    RUN(test_calls);
    store_close(s);
    policy_free(pol);
    return tl_report();
}
