/*
 * Tests for appliance/store/outreach.c and outreach_mail.c: consent is
 * decided again right before a send (a withdrawal while queued refuses the
 * message with the rule), the attempt is recorded before the transport and
 * a crash leaves `unknown`, never `queued`; temporary failures back off and
 * end in `failed`; requeue only from unknown or failed; one-click
 * unsubscribe withdraws in the ledger and a forged token changes nothing;
 * bad input to the queue is refused naming the field; the built message
 * carries the RFC 8058 headers, the contact's language with a fallback,
 * and the postal address in US regions only.
 */
#include "outreach.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "consent.h"
#include "consent_policy.h"
#include "db.h"
#include "entity.h"
#include "outreach_mail.h"
#include "policy.h"
#include "store.h"
#include "testlib.h"

#define T0 1795514400000LL /* 2026-11-24T10:00:00Z */

static struct store *s;
static struct policy *pol;
static struct op_error err;

static char *new_contact(const char *email, const char *lang)
{
    json_t *f =
        json_pack("{s:s, s:s?, s:s?}", "family_name", "Lima", "email", email, "language", lang);
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

/* A contact with a confirmed double opt-in for e-mail "newsletter". */
static char *subscribed(const char *email)
{
    char *a = new_contact(email, "pt-BR");
    char token[CONSENT_TOKEN_BUF];
    struct consent_request req = {.contact_id = a,
                                  .channel = "email",
                                  .purpose = "newsletter",
                                  .method = "double_opt_in",
                                  .source = "web form"};
    CHECK_EQ(consent_record(s, pol, &req, T0, NULL, token, &err), 0);
    CHECK_EQ(consent_confirm(s, token, NULL, T0 + 1000, NULL, &err), 0);
    return a;
}

static int64_t queue(const char *contact, const char *kind)
{
    struct outreach_new m = {.contact_id = contact,
                             .channel = "email",
                             .purpose = "newsletter",
                             .kind = kind,
                             .subject = "Novidades",
                             .body = "Olá\n"};
    int64_t id = 0;
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), 0);
    CHECK(id > 0);
    return id;
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

/* Drains whatever is due into refused/failed and returns the next job id
 * (0: none). */
static int64_t next(int64_t now, struct outreach_job *job)
{
    int rc = outreach_next(s, pol, now, job, &err);
    CHECK(rc >= 0);
    return rc == 1 ? job->id : 0;
}

static void test_withdrawal_while_queued_refuses(void)
{
    char *a = subscribed("ana@example.org");
    int64_t id = queue(a, NULL);
    int n = 0;
    CHECK_EQ(consent_withdraw(s, a, "email", "newsletter", NULL, "asked", T0 + 2000, &n, &err), 0);
    struct outreach_job job;
    CHECK_EQ(next(T0 + 3000, &job), 0); /* nothing to send */
    CHECK_STR(state_of(id), "refused");
    json_t *m = NULL;
    CHECK_EQ(outreach_get(s, id, &m, &err), 0);
    CHECK_STR(json_string_value(json_object_get(m, "decision")), "suppressed");
    CHECK_CONTAINS(json_string_value(json_object_get(m, "rule")), "suppression list");
    CHECK_EQ(json_integer_value(json_object_get(m, "attempts")), 0);
    json_decref(m);
    free(a);
}

static void test_attempt_then_crash_is_unknown(void)
{
    char *a = subscribed("bea@example.org");
    int64_t id = queue(a, NULL);
    struct outreach_job job;
    CHECK_EQ(next(T0 + 1000, &job), id);
    CHECK_STR(job.address, "bea@example.org");
    CHECK_STR(job.language, "pt-BR");
    CHECK_EQ(job.decision.allowed, 1);
    CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", "tok-a", T0 + 1000, &err), 0);
    CHECK_STR(state_of(id), "sending");
    /* a second attempt on the same row is refused: it is no longer queued */
    CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", "tok-b", T0 + 1000, &err), -ESTALE);
    outreach_job_free(&job);
    /* "crash": the next start recovers */
    int64_t count = 0;
    CHECK_EQ(outreach_recover(s, &count, &err), 0);
    CHECK_EQ(count, 1);
    CHECK_STR(state_of(id), "unknown");
    CHECK_EQ(next(T0 + 5000, &job), 0); /* never picked again by itself */
    /* an outcome that arrives late does not resurrect it */
    CHECK_EQ(outreach_outcome(s, id, OUTREACH_SENT, "", 60, 8, T0 + 6000, &err), 0);
    CHECK_STR(state_of(id), "unknown");
    /* the operator requeues; then it goes */
    CHECK_EQ(outreach_requeue(s, id, T0 + 7000, &err), 0);
    CHECK_STR(state_of(id), "queued");
    CHECK_EQ(next(T0 + 7000, &job), id);
    CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", "tok-c", T0 + 7000, &err), 0);
    CHECK_EQ(outreach_outcome(s, id, OUTREACH_SENT, "", 60, 8, T0 + 7100, &err), 0);
    CHECK_STR(state_of(id), "sent");
    outreach_job_free(&job);
    /* requeue of a sent message: refused, naming the state */
    CHECK_EQ(outreach_requeue(s, id, T0, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "is sent: only unknown or failed messages are requeued");
    CHECK_EQ(outreach_requeue(s, 999999, T0, &err), -ENOENT);
    free(a);
}

static void test_backoff_then_failed(void)
{
    char *a = subscribed("cai@example.org");
    int64_t id = queue(a, NULL);
    int64_t now = T0;
    struct outreach_job job;
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ(next(now, &job), id);
        char tok[8];
        snprintf(tok, sizeof tok, "t%d", i);
        CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", tok, now, &err), 0);
        outreach_job_free(&job);
        CHECK_EQ(outreach_outcome(s, id, OUTREACH_TEMPORARY, "451 later", 10, 3, now, &err), 0);
        if (i < 3) {
            CHECK_STR(state_of(id), "queued");
            json_t *m = NULL;
            CHECK_EQ(outreach_get(s, id, &m, &err), 0);
            /* 10 s, then 20 s */
            CHECK_EQ(json_integer_value(json_object_get(m, "next_try_ms")) - now,
                     10000LL << (i - 1));
            json_decref(m);
            CHECK_EQ(next(now + (10000LL << (i - 1)) - 1, &job), 0); /* not before */
            now += 10000LL << (i - 1);
        }
    }
    CHECK_STR(state_of(id), "failed"); /* max_attempts 3 */
    /* a 5xx fails at once */
    int64_t id2 = queue(a, NULL);
    CHECK_EQ(next(now, &job), id2);
    CHECK_EQ(outreach_attempt(s, &job, "r", "perm-token", now, &err), 0);
    outreach_job_free(&job);
    CHECK_EQ(outreach_outcome(s, id2, OUTREACH_PERMANENT, "554 no", 10, 3, now, &err), 0);
    CHECK_STR(state_of(id2), "failed");
    free(a);
}

static void test_unsubscribe(void)
{
    char *a = subscribed("dan@example.org");
    int64_t id = queue(a, NULL);
    struct outreach_job job;
    CHECK_EQ(next(T0 + 1000, &job), id);
    char tok[OUTREACH_TOKEN_BUF];
    CHECK_EQ(outreach_new_token(tok, &err), 0);
    CHECK_EQ(strlen(tok), 43);
    CHECK_EQ(outreach_attempt(s, &job, "r", tok, T0 + 1000, &err), 0);
    outreach_job_free(&job);
    CHECK_EQ(outreach_outcome(s, id, OUTREACH_SENT, "", 10, 3, T0 + 1000, &err), 0);

    struct consent_decision d;
    CHECK_EQ(consent_check(s, pol, a, "email", "newsletter", NULL, T0 + 2000, &d, &err), 0);
    CHECK_EQ(d.allowed, 1);
    /* forged: one character changed, empty, too long */
    char forged[OUTREACH_TOKEN_BUF];
    snprintf(forged, sizeof forged, "%s", tok);
    forged[0] = forged[0] == 'A' ? 'B' : 'A';
    CHECK_EQ(outreach_unsubscribe(s, forged, T0 + 2000, NULL, &err), -ENOENT);
    CHECK_EQ(outreach_unsubscribe(s, "", T0 + 2000, NULL, &err), -ENOENT);
    CHECK_EQ(outreach_unsubscribe(s,
                                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                                  T0 + 2000, NULL, &err),
             -ENOENT);
    CHECK_EQ(consent_check(s, pol, a, "email", "newsletter", NULL, T0 + 2000, &d, &err), 0);
    CHECK_EQ(d.allowed, 1);
    char lang[36];
    CHECK_EQ(outreach_unsubscribe(s, tok, T0 + 3000, lang, &err), 0);
    CHECK_STR(lang, "pt-BR");
    CHECK_EQ(consent_check(s, pol, a, "email", "newsletter", NULL, T0 + 4000, &d, &err), 0);
    CHECK_EQ(d.allowed, 0);
    /* again: fine, nothing more */
    CHECK_EQ(outreach_unsubscribe(s, tok, T0 + 5000, NULL, &err), 0);
    free(a);
}

static void test_bad_input(void)
{
    char *a = new_contact("eva@example.org", NULL);
    struct outreach_new m = {
        .contact_id = a, .channel = "fax", .purpose = "p", .subject = "s", .body = "b"};
    int64_t id = 0;
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "channel");
    m.channel = "email";
    m.subject = "two\r\nBcc: x@y";
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "subject");
    m.subject = "ok";
    m.purpose = "";
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "purpose");
    m.purpose = "p";
    m.kind = "spam";
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "kind");
    m.kind = NULL;
    m.contact_id = "0190f000-0000-7000-8000-000000000000";
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), -ENOENT);
    json_t *l = NULL;
    CHECK_EQ(outreach_list(s, "lost", 10, &l, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "'lost' is not one of");
    CHECK_EQ(outreach_list(s, NULL, 0, &l, &err), -EINVAL);
    /* none of those was queued */
    CHECK_EQ(outreach_list(s, NULL, 1000, &l, &err), 0);
    size_t i;
    json_t *v;
    json_array_foreach(l, i, v)
        CHECK(strcmp(json_string_value(json_object_get(v, "contact_id")), a) != 0);
    json_decref(l);
    /* no address: no confirmation queued, and a test is refused */
    char *b = new_contact(NULL, NULL);
    CHECK_EQ(outreach_queue_confirmation(s, b, "email", "p", "tok", T0, &id, &err), 0);
    CHECK_EQ(id, 0);
    CHECK_EQ(outreach_queue_test(s, b, T0, &id, &err), -EINVAL);
    CHECK_STR(err.field, "email");
    free(a);
    free(b);
}

static char *build(const char *lang, const char *country, const char *to)
{
    struct policy p;
    memset(&p, 0, sizeof p);
    snprintf(p.country, sizeof p.country, "%s", country);
    snprintf(p.region, sizeof p.region, "%s", country);
    snprintf(p.language, sizeof p.language, "en");
    struct outreach_mail_in in = {
        .id = 7,
        .node_id = "n1",
        .from = "news@branch.example",
        .to = to,
        .language = lang,
        .tmpl = "confirm",
        .purpose = "newsletter",
        .confirm_token = "CTOKEN",
        .public_url = "https://crm.example/",
        .unsub_token = "UTOKEN",
        .postal_address = "1 Main St, Springfield, CA 90000",
        .policy = &p,
        .now_ms = T0,
    };
    char *out = NULL;
    size_t len = 0;
    char used[8];
    op_error_clear(&err);
    if (outreach_mail_build(&in, &out, &len, used, &err) < 0)
        return NULL;
    CHECK_EQ(strlen(out), len);
    return out;
}

static void test_mail(void)
{
    char *m = build("fr-CA", "US", "ana@example.org");
    CHECK(m != NULL);
    CHECK_CONTAINS(m, "List-Unsubscribe: <https://crm.example/o/unsubscribe/UTOKEN?l=fr>, "
                      "<mailto:news@branch.example?subject=unsubscribe%20UTOKEN>\r\n");
    CHECK_CONTAINS(m, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    CHECK_CONTAINS(m, "Content-Language: fr\r\n");
    CHECK_CONTAINS(m, "Message-ID: <outreach-7.n1@branch.example>\r\n");
    CHECK(strstr(m, "\r\n\r\n") != NULL);
    free(m);
    /* header injection through the address is refused */
    CHECK(build("en", "US", "ana@example.org\r\nBcc: all@example.org") == NULL);
    CHECK_STR(err.field, "email");
    CHECK(build("en", "US", "a b@example.org") == NULL);
    m = build("ru", "RU", "ana@example.org");
    CHECK_CONTAINS(m, "Content-Language: ru\r\n");
    free(m);
    /* an unknown language falls back to the policy's (en) */
    m = build("sw", "DE", "ana@example.org");
    CHECK_CONTAINS(m, "Content-Language: en\r\n");
    free(m);
    /* pages: the button POSTs, the token is escaped */
    char *pg = outreach_mail_page(OUTREACH_PAGE_UNSUB_ASK, "es", "/o/unsubscribe/x\"y", "t<1>");
    CHECK_CONTAINS(pg, "Darse de baja");
    CHECK_CONTAINS(pg, "action=\"/o/unsubscribe/x&quot;y\"");
    CHECK_CONTAINS(pg, "value=\"t&lt;1&gt;\"");
    free(pg);
}

/* The postal address is in the (base64) body in the US only. */
static void test_postal_address(void)
{
    char *us = build("en", "US", "ana@example.org");
    char *de = build("en", "DE", "ana@example.org");
    CHECK(us && de);
    /* the body of each is base64 after the blank line: decode and look */
    const char *addr = "1 Main St, Springfield, CA 90000";
    int found_us = 0, found_de = 0;
    for (int k = 0; k < 2; k++) {
        const char *b = strstr(k ? de : us, "\r\n\r\n") + 4;
        char joined[8192] = "";
        size_t n = 0;
        for (; *b && n < sizeof joined - 1; b++)
            if (*b != '\r' && *b != '\n')
                joined[n++] = *b;
        joined[n] = '\0';
        unsigned char dec[8192];
        ssize_t dl = codec_b64_decode(joined, n, dec, sizeof dec - 1, NULL);
        CHECK(dl > 0);
        dec[dl > 0 ? dl : 0] = '\0';
        if (strstr((char *)dec, addr))
            *(k ? &found_de : &found_us) = 1;
        if (!k)
            CHECK_CONTAINS((char *)dec, "https://crm.example/o/confirm?t=CTOKEN&l=en");
    }
    CHECK_EQ(found_us, 1);
    CHECK_EQ(found_de, 0);
    free(us);
    free(de);
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
    RUN(test_withdrawal_while_queued_refuses);
    RUN(test_attempt_then_crash_is_unknown);
    RUN(test_backoff_then_failed);
    RUN(test_unsubscribe);
    RUN(test_bad_input);
    RUN(test_mail);
    RUN(test_postal_address);
    store_close(s);
    policy_free(pol);
    return tl_report();
}
