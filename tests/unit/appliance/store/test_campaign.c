/*
 * Tests for appliance/store/campaign.c and the campaign hooks of
 * outreach.c: bad segments, templates, channels and schedules are refused
 * naming the member with nothing written; planning gives every contact of
 * the segment one message with the consent ledger's decision and rule,
 * in its language with a fallback, refused ones kept with the reason; the
 * dry run counts what planning then does; a batch cut by a crash (rolled
 * back) is planned again once and no contact twice; an erased contact
 * has no message left to send; pause holds the messages, cancel stops
 * them; the schedule's start and end; transport reports set outcomes and
 * the figures. Each channel: sms and call need the contact's E.164
 * number, print a postal address (street and locality or postal code);
 * print is decided as direct_mail in the consent ledger, as the hand-out
 * decides it, and an SMS needs no subject.
 */
#include "campaign.h"

#include "aggregate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "consent_policy.h"
#include "db.h"
#include "entity.h"
#include "outreach.h"
#include "outreach_handout.h"
#include "policy.h"
#include "store.h"
#include "store_fixture.h"
#include "subject.h"
#include "testlib.h"

#define T0 1795514400000LL /* 2026-11-24T10:00:00Z */

static struct store *s;
static struct policy *pol;
static struct op_error err;

static char *new_contact(const char *given, const char *email, const char *lang,
                         const char *country)
{
    json_t *f = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "given_name", given, "family_name",
                          "Lima", "email", email, "language", lang, "country", country);
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

static void request(const char *contact, int confirm)
{
    char token[CONSENT_TOKEN_BUF];
    struct consent_request req = {.contact_id = contact,
                                  .channel = "email",
                                  .purpose = "newsletter",
                                  .method = "double_opt_in",
                                  .source = "web form"};
    CHECK_EQ(consent_record(s, pol, &req, T0, NULL, token, &err), 0);
    if (confirm)
        CHECK_EQ(consent_confirm(s, token, NULL, T0 + 1000, NULL, &err), 0);
}

static void subscribe(const char *contact)
{
    request(contact, 1);
}

static json_t *spec(const char *segment_json)
{
    json_t *seg = json_loads(segment_json, 0, NULL);
    json_t *j = json_pack(
        "{s:s, s:o, s:s, s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}, s:s}", "name", "Winter",
        "segment", seg ? seg : json_object(), "channel", "email", "purpose", "newsletter",
        "templates", "en", "subject", "News for {{given_name}}", "body",
        "Hello {{name}},\nwinter is here.\n", "de", "subject", "Neues für {{given_name}}", "body",
        "Hallo {{given_name}},\nder Winter ist da.\n", "pt", "subject",
        "Novidades para {{given_name}}", "body", "Olá {{given_name}}\n", "fallback_language", "en");
    return j;
}

static int64_t count_campaigns(void)
{
    json_t *a = NULL;
    CHECK_EQ(campaign_list(s, NULL, 500, &a, &err), 0);
    int64_t n = (int64_t)json_array_size(a);
    json_decref(a);
    return n;
}

static void bad(json_t *j, const char *field, const char *words)
{
    int64_t before = count_campaigns(), id = 0;
    op_error_clear(&err);
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, field);
    CHECK_CONTAINS(err.msg, words);
    CHECK_EQ(count_campaigns(), before);
    json_decref(j);
}

static void test_bad_input_changes_nothing(void)
{
    json_t *j;
    j = spec("{\"country\": [\"DE\", \"germany\"]}");
    bad(j, "segment.country[1]", "ISO 3166-1");
    bad(spec("{\"tags\": [\"vip\"]}"), "segment.tags", "unknown filter");
    bad(spec("{\"activity\": {\"channel\": \"fax\", \"since\": \"2026-01-01\"}}"),
        "segment.activity.channel", "activity channel");
    bad(spec("{\"activity\": {\"channel\": \"visit\", \"since\": \"yesterday\"}}"),
        "segment.activity.since", "UTC time");
    bad(spec("{\"language\": []}"), "segment.language", "array of 1 to");
    j = spec("{}");
    json_object_set_new(json_object_get(json_object_get(j, "templates"), "de"), "body",
                        json_string("Hallo {{vorname}}"));
    bad(j, "templates.de.body", "unknown slot {{vorname}}");
    j = spec("{}");
    json_object_set_new(json_object_get(json_object_get(j, "templates"), "en"), "subject",
                        json_string("two\nlines"));
    bad(j, "templates.en.subject", "one line");
    j = spec("{}");
    json_object_set_new(json_object_get(json_object_get(j, "templates"), "pt"), "body",
                        json_string("Olá {{given_name"));
    bad(j, "templates.pt.body", "without");
    j = spec("{}");
    json_object_set_new(j, "fallback_language", json_string("fr"));
    bad(j, "fallback_language", "templates' languages");
    j = spec("{}");
    json_object_set_new(j, "channel", json_string("pigeon"));
    bad(j, "channel", "no transport");
    j = spec("{}");
    json_object_set_new(j, "start_at", json_string("2026-12-01T10:00:00Z"));
    json_object_set_new(j, "end_at", json_string("2026-11-30T10:00:00Z"));
    bad(j, "end_at", "after start_at");
    j = spec("{}");
    json_object_set_new(j, "start_at", json_string("soon"));
    bad(j, "start_at", "UTC time");
    j = spec("{}");
    json_object_set_new(j, "budget", json_integer(3));
    bad(j, "budget", "unknown member");
    j = spec("{}");
    json_object_del(j, "name");
    bad(j, "name", "name");
}

/* The campaign's messages by contact: state, decision, language, subject. */
static json_t *messages(void)
{
    json_t *a = NULL;
    CHECK_EQ(outreach_list(s, NULL, 1000, &a, &err), 0);
    return a;
}

static int messages_of(const char *contact)
{
    json_t *a = messages();
    size_t i;
    json_t *m;
    int n = 0;
    json_array_foreach(a, i, m) n +=
        !strcmp(json_string_value(json_object_get(m, "contact_id")), contact);
    json_decref(a);
    return n;
}

static json_t *message_of(const char *contact)
{
    json_t *a = messages(), *found = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(a, i, m) if (!strcmp(json_string_value(json_object_get(m, "contact_id")),
                                            contact)) found = json_incref(m);
    json_decref(a);
    return found;
}

static int64_t fig(int64_t id, const char *name)
{
    json_t *f = NULL;
    CHECK_EQ(campaign_figures(s, id, &f, &err), 0);
    int64_t v = json_integer_value(json_object_get(f, name));
    json_decref(f);
    return v;
}

static int64_t fig_reason(int64_t id, const char *reason)
{
    json_t *f = NULL;
    CHECK_EQ(campaign_figures(s, id, &f, &err), 0);
    int64_t v =
        json_integer_value(json_object_get(json_object_get(f, "refused_by_reason"), reason));
    json_decref(f);
    return v;
}

static char *de[12], *pt[6], *fr[4], *nomail[2], *withdrawn[3], *other[3];

static void make_people(void)
{
    char n[32], e[64];
    for (int i = 0; i < 12; i++) {
        snprintf(n, sizeof n, "Anna%d", i);
        snprintf(e, sizeof e, "anna%d@example.de", i);
        de[i] = new_contact(n, e, "de", "DE");
        request(de[i], i % 2 == 0); /* half of them never confirmed */
    }
    for (int i = 0; i < 6; i++) {
        snprintf(n, sizeof n, "João%d", i);
        snprintf(e, sizeof e, "joao%d@example.pt", i);
        pt[i] = new_contact(n, e, "pt-BR", "DE");
        subscribe(pt[i]);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "Marie%d", i);
        snprintf(e, sizeof e, "marie%d@example.fr", i);
        fr[i] = new_contact(n, e, "fr", "DE"); /* no French template: English */
        subscribe(fr[i]);
    }
    for (int i = 0; i < 2; i++)
        nomail[i] = new_contact("Kein", NULL, "de", "DE");
    for (int i = 0; i < 3; i++) {
        snprintf(e, sizeof e, "gone%d@example.de", i);
        withdrawn[i] = new_contact("Gone", e, "de", "DE");
        subscribe(withdrawn[i]);
        CHECK_EQ(consent_withdraw(s, withdrawn[i], "email", "newsletter", NULL, "asked", T0 + 2000,
                                  NULL, &err),
                 0);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(e, sizeof e, "other%d@example.at", i);
        other[i] = new_contact("Out", e, "de", "AT"); /* outside the segment */
        subscribe(other[i]);
    }
}

static int64_t create_started(const char *segment)
{
    json_t *j = spec(segment);
    int64_t id = 0;
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), 0);
    json_decref(j);
    CHECK_EQ(campaign_start(s, id, T0 + 5000, &err), 0);
    return id;
}

static void plan_all(int64_t id, unsigned batch)
{
    int done = 0;
    for (int guard = 0; !done && guard < 100; guard++)
        CHECK_EQ(campaign_plan_step(s, pol, id, batch, T0 + 6000, &done, NULL, &err), 0);
    CHECK_EQ(done, 1);
}

static void test_plan_and_dry_run(void)
{
    int64_t id = create_started("{\"country\": [\"DE\"]}");
    /* 12 + 6 + 4 + 2 + 3 = 27 in DE; 6 de unconfirmed (pending), 2 without
     * an address, 3 withdrawn (suppressed): 16 would be sent */
    json_t *dry = NULL;
    CHECK_EQ(campaign_dry_run(s, pol, id, T0 + 6000, &dry, &err), 0);
    CHECK_EQ(json_integer_value(json_object_get(dry, "segment")), 27);
    CHECK_EQ(json_integer_value(json_object_get(dry, "would_send")), 16);
    CHECK_EQ(json_integer_value(json_object_get(dry, "refused")), 11);
    json_t *by = json_object_get(dry, "refused_by_reason");
    CHECK_EQ(json_integer_value(json_object_get(by, "pending")), 6);
    CHECK_EQ(json_integer_value(json_object_get(by, "no_address")), 2);
    CHECK_EQ(json_integer_value(json_object_get(by, "suppressed")), 3);
    json_t *langs = json_object_get(dry, "would_send_by_language");
    CHECK_EQ(json_integer_value(json_object_get(langs, "de")), 6);
    CHECK_EQ(json_integer_value(json_object_get(langs, "pt")), 6);
    CHECK_EQ(json_integer_value(json_object_get(langs, "en")), 4);
    /* the dry run wrote nothing */
    CHECK_EQ(fig(id, "planned"), 0);
    plan_all(id, 5);
    /* the plan matches the dry run */
    CHECK_EQ(fig(id, "planned"), 27);
    CHECK_EQ(fig(id, "queued"), json_integer_value(json_object_get(dry, "would_send")));
    CHECK_EQ(fig(id, "refused"), 11);
    CHECK_EQ(fig_reason(id, "pending"), 6);
    CHECK_EQ(fig_reason(id, "no_address"), 2);
    CHECK_EQ(fig_reason(id, "suppressed"), 3);
    json_decref(dry);
    /* decisions and rules are stored as evidence, the text in the language */
    json_t *m = message_of(de[0]);
    CHECK_STR(json_string_value(json_object_get(m, "state")), "queued");
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "granted");
    CHECK_CONTAINS(json_string_value(json_object_get(m, "rule")), "double opt-in");
    CHECK_STR(json_string_value(json_object_get(m, "language")), "de");
    CHECK_STR(json_string_value(json_object_get(m, "subject")), "Neues für Anna0");
    json_decref(m);
    m = message_of(de[1]);
    CHECK_STR(json_string_value(json_object_get(m, "state")), "refused");
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "pending");
    CHECK(strlen(json_string_value(json_object_get(m, "rule"))) > 0);
    json_decref(m);
    m = message_of(pt[2]);
    CHECK_STR(json_string_value(json_object_get(m, "language")), "pt");
    CHECK_STR(json_string_value(json_object_get(m, "subject")), "Novidades para João2");
    json_decref(m);
    m = message_of(fr[1]);
    CHECK_STR(json_string_value(json_object_get(m, "language")), "en");
    CHECK_STR(json_string_value(json_object_get(m, "subject")), "News for Marie1");
    json_decref(m);
    m = message_of(withdrawn[0]);
    CHECK_STR(json_string_value(json_object_get(m, "state")), "refused");
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "suppressed");
    CHECK_CONTAINS(json_string_value(json_object_get(m, "rule")), "suppression list");
    json_decref(m);
    m = message_of(nomail[0]);
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "no_address");
    json_decref(m);
    CHECK_EQ(messages_of(other[0]), 0); /* AT is outside the segment */
    /* planning again plans no one twice */
    int done = 0;
    CHECK_EQ(campaign_plan_step(s, pol, id, 5, T0 + 7000, &done, NULL, &err), 0);
    CHECK_EQ(done, 1);
    CHECK_EQ(fig(id, "planned"), 27);

    /* the sender takes them; a paused campaign's wait */
    CHECK_EQ(campaign_pause(s, id, T0 + 8000, &err), 0);
    struct outreach_job job;
    CHECK_EQ(outreach_next(s, pol, T0 + 9000, &job, &err), 0);
    CHECK_EQ(campaign_pause(s, id, T0 + 8000, &err), -EALREADY);
    CHECK_EQ(campaign_start(s, id, T0 + 9000, &err), 0);
    CHECK_EQ(outreach_next(s, pol, T0 + 9000, &job, &err), 1);
    json_t *picked = NULL;
    CHECK_EQ(outreach_get(s, job.id, &picked, &err), 0);
    outreach_job_free(&job);
    json_decref(picked);
    /* cancel: the waiting ones fail, nothing is due any more */
    CHECK_EQ(campaign_cancel(s, id, T0 + 10000, &err), 0);
    CHECK_EQ(outreach_next(s, pol, T0 + 11000, &job, &err), 0);
    CHECK_EQ(fig(id, "queued"), 0);
    CHECK_EQ(fig(id, "failed"), 16);
    CHECK_EQ(campaign_start(s, id, T0 + 12000, &err), -EALREADY);
    CHECK_CONTAINS(err.msg, "cancelled");
}

/* A batch cut by a crash: its transaction never committed, the cursor did
 * not move; planning again goes on and plans no one twice. */
static void test_resume_after_crash(void)
{
    int64_t id = create_started("{\"language\": [\"de\"], \"country\": [\"DE\"]}");
    int done = 0;
    int64_t n = 0;
    CHECK_EQ(campaign_plan_step(s, pol, id, 4, T0 + 6000, &done, &n, &err), 0);
    CHECK_EQ(n, 4);
    CHECK_EQ(store_begin(s, &err), 0);
    CHECK_EQ(campaign_plan_step(s, pol, id, 4, T0 + 6000, &done, &n, &err), 0);
    store_rollback(s); /* kill -9 before the COMMIT */
    CHECK_EQ(fig(id, "planned"), 4);
    plan_all(id, 4);
    CHECK_EQ(fig(id, "planned"), 17); /* 12 + 2 + 3 German speakers in DE */
    for (int i = 0; i < 12; i++)
        CHECK_EQ(messages_of(de[i]), 2); /* this campaign's and the first's */
    CHECK_EQ(campaign_cancel(s, id, T0 + 7000, &err), 0);
}

/* Erased between planning and sending: its message is gone, nothing goes
 * out for it, and the figures no longer count it. */
static void test_erasure_mid_campaign(void)
{
    int64_t id = create_started("{\"language\": [\"pt\"]}");
    plan_all(id, 100);
    CHECK_EQ(fig(id, "planned"), 6);
    struct subject_erase_report rep;
    CHECK_EQ(subject_erase(s, pt[0], "asked", T0 + 7000, &rep, &err), 0);
    CHECK_EQ(messages_of(pt[0]), 0);
    CHECK_EQ(fig(id, "planned"), 5);
    struct outreach_job job;
    int sent_to_erased = 0, taken = 0;
    while (outreach_next(s, pol, T0 + 8000, &job, &err) == 1) {
        sent_to_erased |= !strcmp(job.contact_id, pt[0]);
        char tok[32];
        snprintf(tok, sizeof tok, "tok-e-%d", taken);
        CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", tok, T0 + 8000, &err), 0);
        CHECK_EQ(outreach_outcome(s, job.id, OUTREACH_SENT, "", 60, 8, T0 + 8000, &err), 0);
        outreach_job_free(&job);
        if (++taken > 10)
            break;
    }
    CHECK_EQ(sent_to_erased, 0);
    CHECK_EQ(taken, 5);
    CHECK_EQ(fig(id, "sent"), 5);
    /* a later plan of a new campaign does not see the erased contact */
    int64_t id2 = create_started("{\"language\": [\"pt\"]}");
    plan_all(id2, 100);
    CHECK_EQ(fig(id2, "planned"), 5);
    CHECK_EQ(campaign_cancel(s, id2, T0 + 9000, &err), 0);
    /* all sent: the clock marks the first done */
    int busy = 0;
    CHECK_EQ(campaign_tick(s, pol, 100, T0 + 9000, &busy, &err), 0);
    json_t *c = NULL;
    CHECK_EQ(campaign_get(s, id, &c, &err), 0);
    CHECK_STR(json_string_value(json_object_get(c, "state")), "done");
    json_decref(c);
}

static void test_events_and_figures(void)
{
    int64_t id = create_started("{\"language\": [\"fr\"]}");
    plan_all(id, 100);
    int64_t ids[4];
    struct outreach_job job;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(outreach_next(s, pol, T0 + 8000, &job, &err), 1);
        ids[i] = job.id;
        char tok[32];
        snprintf(tok, sizeof tok, "tok-f-%d", i);
        CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", tok, T0 + 8000, &err), 0);
        CHECK_EQ(outreach_outcome(s, job.id, OUTREACH_SENT, "", 60, 8, T0 + 8000, &err), 0);
        outreach_job_free(&job);
    }
    CHECK_EQ(outreach_record_event(s, ids[0], "delivered", T0 + 9000, "ok", &err), 0);
    CHECK_EQ(outreach_record_event(s, ids[1], "delivered", T0 + 9000, "ok", &err), 0);
    CHECK_EQ(outreach_record_event(s, ids[1], "bounced_hard", T0 + 9500, "550 no such user", &err),
             0);
    CHECK_EQ(outreach_record_event(s, ids[2], "bounced_soft", T0 + 9000, "mailbox full", &err), 0);
    CHECK_EQ(outreach_record_event(s, ids[3], "replied", T0 + 9000, "", &err), 0);
    CHECK_EQ(outreach_record_event(s, ids[3], "delivered", T0 + 9900, "", &err), 0);
    CHECK_EQ(outreach_record_event(s, ids[0], "unsubscribed", T0 + 9900, "", &err), 0);
    CHECK_EQ(fig(id, "sent"), 4);
    CHECK_EQ(fig(id, "delivered"), 1); /* ids[0] */
    CHECK_EQ(fig(id, "bounced"), 1);   /* ids[1]: the bounce came after the delivery */
    CHECK_EQ(fig(id, "responded"), 1); /* ids[3]: a late delivery report does not undo it */
    CHECK_EQ(fig(id, "unsubscribed"), 1);
    /* bad reports change nothing */
    CHECK_EQ(outreach_record_event(s, ids[0], "opened", T0, "", &err), -EINVAL);
    CHECK_STR(err.field, "kind");
    CHECK_EQ(outreach_record_event(s, 999999, "delivered", T0, "", &err), -ENOENT);
    CHECK_EQ(fig(id, "delivered"), 1);
}

static void test_schedule(void)
{
    json_t *j = spec("{\"language\": [\"fr\"]}");
    json_object_set_new(j, "start_at", json_string("2026-11-25T10:00:00Z")); /* T0 + 1 day */
    json_object_set_new(j, "end_at", json_string("2026-11-26T10:00:00Z"));
    int64_t id = 0;
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), 0);
    json_decref(j);
    CHECK_EQ(campaign_start(s, id, T0, &err), 0);
    json_t *c = NULL;
    CHECK_EQ(campaign_get(s, id, &c, &err), 0);
    CHECK_STR(json_string_value(json_object_get(c, "state")), "scheduled");
    CHECK_STR(json_string_value(json_object_get(c, "start_at")), "2026-11-25T10:00:00Z");
    json_decref(c);
    int busy = 0;
    CHECK_EQ(campaign_tick(s, pol, 100, T0 + 3600000, &busy, &err), 0);
    CHECK_EQ(busy, 0); /* not yet */
    CHECK_EQ(fig(id, "planned"), 0);
    CHECK_EQ(campaign_tick(s, pol, 100, T0 + 86400000, &busy, &err), 0);
    CHECK_EQ(busy, 1);
    CHECK_EQ(fig(id, "planned"), 4);
    CHECK_EQ(fig(id, "queued"), 4);
    /* the end passes with messages waiting: they fail, the campaign is done */
    CHECK_EQ(campaign_tick(s, pol, 100, T0 + 2 * 86400000LL, &busy, &err), 0);
    CHECK_EQ(fig(id, "queued"), 0);
    CHECK_EQ(fig(id, "failed"), 4);
    CHECK_EQ(campaign_get(s, id, &c, &err), 0);
    CHECK_STR(json_string_value(json_object_get(c, "state")), "done");
    json_decref(c);
    CHECK_EQ(campaign_start(s, id, T0, &err), -EALREADY);
    CHECK_EQ(campaign_start(s, 424242, T0, &err), -ENOENT);
}

/* The aggregate HQ may pull: campaign messages sent by channel and
 * country, small cells suppressed, no person in it. */
static void test_outreach_aggregate(void)
{
    int64_t id = create_started("{\"language\": [\"de\"]}");
    plan_all(id, 100);
    struct outreach_job job;
    int n = 0;
    while (outreach_next(s, pol, T0 + 20000, &job, &err) == 1 && n < 50) {
        char tok[32];
        snprintf(tok, sizeof tok, "tok-g-%d", n++);
        CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", tok, T0 + 20000, &err), 0);
        CHECK_EQ(outreach_outcome(s, job.id, OUTREACH_SENT, "", 60, 8, T0 + 20000, &err), 0);
        outreach_job_free(&job);
    }
    CHECK_EQ(n, 9); /* the confirmed German speakers: 6 in DE, 3 in AT */
    struct policy *eu = fx_policy_load("EU-DE");
    const uint64_t jan = UINT64_C(1799020800000); /* 2027-01-04: 2026-Q4 has ended */
    const char *params[1] = {"quarter=2026-Q4"};
    json_t *a = NULL;
    CHECK_EQ(aggregate_answer(s, eu, "outreach_by_channel_country", params, 1, jan, &a, &err), 0);
    char *text = json_dumps(a, JSON_COMPACT);
    CHECK(text != NULL);
    /* 5 + 4 + 6 sent to contacts in DE and 3 in AT, one answered: AT is
     * under the minimum cell (10) and suppressed, DE with it (the total
     * would give AT away), the answer rate's base is too small */
    CHECK_CONTAINS(text, "\"cols\":[\"AT\",\"DE\"]");
    CHECK_CONTAINS(text, "{\"key\":\"email\",\"cells\":[{\"n\":null,\"s\":\"primary\"");
    CHECK_CONTAINS(text, "{\"n\":null,\"s\":\"secondary\"");
    CHECK_CONTAINS(text, "\"total\":{\"n\":18,\"rate\":null,\"rs\":\"small_base\"}");
    CHECK(!strstr(text, "\"n\":3") && !strstr(text, "\"n\":15"));
    CHECK(!strstr(text, "example") && !strstr(text, "Anna"));
    free(text);
    json_decref(a);
    /* the policy decides: a region that keeps the country local refuses */
    for (size_t i = 0; i < eu->nfields; i++)
        if (eu->fields[i].entity == &entity_contact && !strcmp(eu->fields[i].field, "country"))
            eu->fields[i].cls = POLICY_LOCAL_ONLY;
    params[0] = "quarter=2026-Q3";
    CHECK_EQ(aggregate_answer(s, eu, "outreach_by_channel_country", params, 1, jan, &a, &err),
             -EPERM);
    CHECK_CONTAINS(err.msg, "contact.country, which is local_only");
    policy_free(eu);
}

/* The policy above with direct mail as opt-out, as EU-DE has it. */
static struct policy *policy_with_direct_mail(void)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s%s", fx_consent_policy_yaml,
             "  direct_mail: {mode: opt_out, basis: \"UWG §7(1)\"}\n");
    struct policy *p = NULL;
    CHECK_EQ(policy_load_buffer("EU-DE.yaml", yaml, strlen(yaml), &p, &err), 0);
    return p;
}

static char *reach_contact(const char *given, const char *phone, const char *street,
                           const char *postal_code, const char *locality)
{
    json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?}", "given_name", given,
                          "family_name", "Reach", "language", "de", "country", "LU", "phone", phone,
                          "street", street, "postal_code", postal_code, "locality", locality);
    json_t *rec = NULL;
    op_error_clear(&err);
    CHECK_EQ(store_create(s, &entity_contact, f, STORE_SKIP_DUP_CHECK, &rec, &err), 0);
    json_decref(f);
    char *id = strdup(json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    return id;
}

static json_t *channel_spec(const char *channel, int with_subject)
{
    json_t *t = json_pack("{s:s}", "body", "Hallo {{given_name}}, Winterangebot.");
    if (with_subject)
        json_object_set_new(t, "subject", json_string("Angebot für {{given_name}}"));
    return json_pack("{s:s, s:{s:[s]}, s:s, s:s, s:{s:o}, s:s}", "name", "Reach", "segment",
                     "country", "LU", "channel", channel, "purpose", "offers", "templates", "de", t,
                     "fallback_language", "de");
}

/* The campaign's message for a contact on a channel. */
static json_t *message_on(const char *contact, const char *channel)
{
    json_t *a = messages(), *found = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(
        a, i, m) if (!strcmp(json_string_value(json_object_get(m, "contact_id")), contact) &&
                     !strcmp(json_string_value(json_object_get(m, "channel")), channel)) found =
        json_incref(m);
    json_decref(a);
    return found;
}

/* Dry run, then plan; both must give want_send and the refusals by reason
 * (pairs of reason and count, NULL-terminated). */
static int64_t run_channel(const struct policy *p, const char *channel, int with_subject,
                           int64_t want_send, const char *const *reasons, const int *counts)
{
    json_t *j = channel_spec(channel, with_subject);
    int64_t id = 0;
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), 0);
    json_decref(j);
    CHECK_EQ(campaign_start(s, id, T0 + 5000, &err), 0);
    json_t *dry = NULL;
    CHECK_EQ(campaign_dry_run(s, p, id, T0 + 6000, &dry, &err), 0);
    CHECK_EQ(json_integer_value(json_object_get(dry, "segment")), 5);
    CHECK_EQ(json_integer_value(json_object_get(dry, "would_send")), want_send);
    CHECK_EQ(json_integer_value(json_object_get(dry, "refused")), 5 - want_send);
    json_t *by = json_object_get(dry, "refused_by_reason");
    for (size_t i = 0; reasons[i]; i++)
        CHECK_EQ(json_integer_value(json_object_get(by, reasons[i])), counts[i]);
    json_decref(dry);
    int done = 0;
    for (int guard = 0; !done && guard < 10; guard++)
        CHECK_EQ(campaign_plan_step(s, p, id, 2, T0 + 6000, &done, NULL, &err), 0);
    CHECK_EQ(fig(id, "planned"), 5);
    CHECK_EQ(fig(id, "queued"), want_send);
    for (size_t i = 0; reasons[i]; i++)
        CHECK_EQ(fig_reason(id, reasons[i]), counts[i]);
    return id;
}

static void test_channels(void)
{
    struct policy *dm = policy_with_direct_mail();
    /* A: all addresses, SMS consent; B: no phone, street and postal code;
     * C: all addresses, objected everywhere; D: all addresses, nothing on
     * file; E: no phone, a street only */
    char *a = reach_contact("Anja", "030 901820", "Hauptstraße 5", "10115", "Berlin");
    char *b = reach_contact("Bodo", NULL, "Ring 2", "50667", NULL);
    char *c = reach_contact("Carla", "030 901821", "Markt 3", "80331", "München");
    char *d = reach_contact("Dieter", "030 901822", "Weg 4", "20095", "Hamburg");
    char *e = reach_contact("Emil", NULL, "Gasse 5", NULL, NULL);
    struct consent_request req = {.contact_id = a,
                                  .channel = "sms",
                                  .purpose = "offers",
                                  .method = "single_opt_in",
                                  .source = "shop counter"};
    char token[CONSENT_TOKEN_BUF];
    CHECK_EQ(consent_record(s, dm, &req, T0, NULL, token, &err), 0);
    static const char *const objected[] = {"sms", "call", "direct_mail"};
    for (size_t i = 0; i < 3; i++)
        CHECK_EQ(
            consent_withdraw(s, c, objected[i], "offers", NULL, "objected", T0 + 1000, NULL, &err),
            0);

    /* templates: an SMS needs no subject, a letter does, so does e-mail */
    int64_t before = count_campaigns(), id = 0;
    json_t *j = channel_spec("print", 0);
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "templates.de.subject");
    json_decref(j);
    j = channel_spec("email", 0);
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "templates.de.subject");
    json_decref(j);
    j = channel_spec("sms", 1);
    json_object_set_new(json_object_get(json_object_get(j, "templates"), "de"), "subject",
                        json_integer(3));
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "templates.de.subject");
    json_decref(j);
    j = channel_spec("sms", 1);
    json_object_set_new(json_object_get(json_object_get(j, "templates"), "de"), "subject",
                        json_string("two\nlines"));
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "templates.de.subject");
    CHECK_CONTAINS(err.msg, "or no subject");
    json_decref(j);
    j = channel_spec("fax", 1);
    CHECK_EQ(campaign_create(s, j, "ana", T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "channel");
    CHECK_CONTAINS(err.msg, "email, sms, print, call");
    json_decref(j);
    CHECK_EQ(count_campaigns(), before);

    /* sms: single opt-in, so only A; C's number is on the suppression list */
    static const char *const sms_r[] = {"no_address", "suppressed", "none", NULL};
    static const int sms_n[] = {2, 1, 1};
    run_channel(dm, "sms", 0, 1, sms_r, sms_n);
    /* an empty subject, as a form sends it, is no subject */
    j = channel_spec("sms", 1);
    json_object_set_new(json_object_get(json_object_get(j, "templates"), "de"), "subject",
                        json_string(""));
    CHECK_EQ(campaign_validate(j, &err), 0);
    json_decref(j);
    json_t *m = message_on(a, "sms");
    CHECK_STR(json_string_value(json_object_get(m, "state")), "queued");
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "granted");
    CHECK_STR(json_string_value(json_object_get(m, "subject")), "");
    json_decref(m);
    m = message_on(b, "sms");
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "no_address");
    CHECK_CONTAINS(json_string_value(json_object_get(m, "rule")), "E.164");
    json_decref(m);

    /* call: opt-out, so A and D */
    static const char *const call_r[] = {"no_address", "suppressed", NULL};
    static const int call_n[] = {2, 1};
    run_channel(dm, "call", 0, 2, call_r, call_n);
    m = message_on(d, "call");
    CHECK_STR(json_string_value(json_object_get(m, "state")), "queued");
    CHECK_CONTAINS(json_string_value(json_object_get(m, "rule")), "no objection");
    json_decref(m);

    /* print: decided as direct_mail (opt-out), a street with a locality
     * or a postal code is an address: A, B, D; C objected to direct mail */
    static const char *const print_r[] = {"no_address", "withdrawn", NULL};
    static const int print_n[] = {1, 1};
    int64_t letters = run_channel(dm, "print", 1, 3, print_r, print_n);
    m = message_on(b, "print");
    CHECK_STR(json_string_value(json_object_get(m, "state")), "queued");
    CHECK_STR(json_string_value(json_object_get(m, "subject")), "Angebot für Bodo");
    CHECK_CONTAINS(json_string_value(json_object_get(m, "rule")), "direct_mail");
    json_decref(m);
    m = message_on(e, "print");
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "no_address");
    CHECK_CONTAINS(json_string_value(json_object_get(m, "rule")), "postal address");
    json_decref(m);

    /* under a policy without a direct-mail rule no letter goes */
    static const char *const none_r[] = {"no_address", "none", NULL};
    static const int none_n[] = {1, 4};
    int64_t strict = run_channel(pol, "print", 1, 0, none_r, none_n);
    CHECK_EQ(campaign_cancel(s, strict, T0 + 7000, &err), 0);

    /* the hand-out decides as the plan did: every queued letter and call
     * is handed out, none refused, none without an address */
    struct outreach_handout h;
    /* a paused campaign's letters wait, as its e-mails do */
    CHECK_EQ(campaign_pause(s, letters, T0 + 7500, &err), 0);
    CHECK_EQ(outreach_handout_take(s, dm, "print", 10, T0 + 8000, &h, &err), 0);
    CHECK_EQ((int64_t)h.n, 0);
    outreach_handout_free(&h);
    CHECK_EQ(campaign_start(s, letters, T0 + 7600, &err), 0);
    CHECK_EQ(outreach_handout_take(s, dm, "print", 10, T0 + 8000, &h, &err), 0);
    CHECK_EQ((int64_t)h.n, 3);
    CHECK_EQ(h.refused, 0);
    CHECK_EQ(h.failed, 0);
    CHECK_EQ(outreach_handout_done(s, &h, T0 + 8000, &err), 0);
    outreach_handout_free(&h);
    CHECK_EQ(outreach_handout_take(s, dm, "call", 10, T0 + 8000, &h, &err), 0);
    CHECK_EQ((int64_t)h.n, 2);
    CHECK_EQ(h.refused, 0);
    CHECK_EQ(h.failed, 0);
    CHECK_EQ(outreach_handout_done(s, &h, T0 + 8000, &err), 0);
    outreach_handout_free(&h);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    policy_free(dm);
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
    make_people();
    RUN(test_bad_input_changes_nothing);
    RUN(test_plan_and_dry_run);
    RUN(test_resume_after_crash);
    RUN(test_erasure_mid_campaign);
    RUN(test_events_and_figures);
    RUN(test_schedule);
    RUN(test_outreach_aggregate);
    RUN(test_channels);
    char **all[] = {de, pt, fr, nomail, withdrawn, other};
    size_t sizes[] = {12, 6, 4, 2, 3, 3};
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < sizes[i]; j++)
            free(all[i][j]);
    store_close(s);
    policy_free(pol);
    return tl_report();
}
