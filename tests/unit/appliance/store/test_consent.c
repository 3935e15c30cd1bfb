/*
 * Tests for appliance/store/consent.c: the double opt-in flow (request, confirm,
 * expiry with an injected clock, replay, unknown token), the permission
 * derived under each mode, withdrawal taking effect at once, the
 * suppression list surviving erasure and blocking a re-added address,
 * transactional versus marketing, and the fixed confirmation text.
 */
#include "consent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "entity.h"
#include "policy.h"
#include "store.h"
#include "consent_policy.h"
#include "testlib.h"

#define T0 1795514400000LL /* 2026-11-24T10:00:00Z */
#define HOUR 3600000LL

static struct store *s;
static struct policy *pol;

static struct store *open_store(void)
{
    struct store *st = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = store_open(":memory:", DB_OPEN_CREATE, &st, &err);
    if (rc < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        exit(1);
    }
    rc = store_init_node(st, "EU-DE", &err);
    if (rc < 0) {
        fprintf(stderr, "store_init_node: %s\n", err.msg);
        exit(1);
    }
    return st;
}

static char *new_contact(const char *email, const char *phone)
{
    json_t *f =
        json_pack("{s:s, s:s?, s:s?}", "family_name", "Lima", "email", email, "phone", phone);
    json_t *rec = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = store_create(s, &entity_contact, f, STORE_SKIP_DUP_CHECK, &rec, &err);
    json_decref(f);
    if (rc < 0) {
        fprintf(stderr, "contact create: %s\n", err.msg);
        exit(1);
    }
    char *id = strdup(json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    return id;
}

static long long count(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    long long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

static int record(const char *contact, const char *channel, const char *purpose, const char *kind,
                  const char *method, const char *source, int64_t now,
                  char token[CONSENT_TOKEN_BUF], struct op_error *err)
{
    struct consent_request req = {.contact_id = contact,
                                  .channel = channel,
                                  .purpose = purpose,
                                  .kind = kind,
                                  .method = method,
                                  .source = source,
                                  .text_version = "v1",
                                  .ip = "192.0.2.7"};
    op_error_clear(err);
    return consent_record(s, pol, &req, now, NULL, token, err);
}

static struct consent_decision check(const char *contact, const char *channel, const char *purpose,
                                     const char *kind, int64_t now)
{
    struct consent_decision d;
    memset(&d, 0, sizeof d);
    struct op_error err;
    op_error_clear(&err);
    int rc = consent_check(s, pol, contact, channel, purpose, kind, now, &d, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "consent_check: %s\n", err.msg);
    return d;
}

static void test_double_opt_in_flow(void)
{
    char *c = new_contact("ana@example.org", NULL);
    char token[CONSENT_TOKEN_BUF];
    struct op_error err;
    CHECK_EQ(record(c, "email", "newsletter", NULL, "double_opt_in", "web form", T0, token, &err),
             0);
    CHECK_EQ(strlen(token), 43);
    CHECK_EQ(count("SELECT count(*) FROM consents WHERE status = 'pending'"), 1);
    CHECK_EQ(count("SELECT count(*) FROM consent_tokens WHERE length(token_hash) = 64"), 1);

    /* Nothing marketing before the confirmation. */
    struct consent_decision d = check(c, "email", "newsletter", NULL, T0 + 1000);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.state, CONSENT_PENDING);
    CHECK_CONTAINS(d.rule, "EU-DE email is double opt-in (UWG §7(2) Nr. 2)");
    CHECK_CONTAINS(d.rule, "consent requested 2026-11-24T10:00:00.000Z is pending confirmation");

    /* Unknown and malformed tokens change nothing. */
    char id[40] = "";
    op_error_clear(&err);
    CHECK_EQ(consent_confirm(s, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, T0 + 2000, id,
                             &err),
             -ENOENT);
    CHECK_CONTAINS(err.msg, "unknown confirmation token");
    CHECK_EQ(consent_confirm(s, "", NULL, T0 + 2000, id, &err), -ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM consents WHERE status = 'pending'"), 1);

    /* The contact clicks the link. */
    op_error_clear(&err);
    CHECK_EQ(consent_confirm(s, token, "198.51.100.4", T0 + HOUR, id, &err), 0);
    CHECK_EQ(strlen(id), 36);
    CHECK_EQ(count("SELECT count(*) FROM consents WHERE status = 'granted' AND confirmed_at = "
                   "'2026-11-24T11:00:00.000Z' AND json_extract(evidence, '$.confirmed_ip') = "
                   "'198.51.100.4' AND json_extract(evidence, '$.source') = 'web form'"),
             1);
    d = check(c, "email", "newsletter", NULL, T0 + HOUR + 1);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(d.state, CONSENT_GRANTED);
    CHECK_STR(d.consent_id, id);
    CHECK_CONTAINS(d.rule, "confirmed 2026-11-24T11:00:00.000Z");
    /* Another purpose is not covered. */
    d = check(c, "email", "offers", NULL, T0 + HOUR + 1);
    CHECK_EQ(d.allowed, 0);
    CHECK_CONTAINS(d.rule, "no consent on file for 'offers'");

    /* Replay: refused, nothing changes. */
    long long v = count("SELECT sum(version) FROM consents");
    op_error_clear(&err);
    CHECK_EQ(consent_confirm(s, token, NULL, T0 + HOUR + 5, id, &err), -EALREADY);
    CHECK_CONTAINS(err.msg, "already used");
    CHECK_EQ(count("SELECT sum(version) FROM consents"), v);
    free(c);
}

/* A token never starts with '-' (it would read as an option on the
 * command line); 300 draws miss a 1-in-64 leak with odds under 1%. */
static void test_token_shape(void)
{
    char *c = new_contact("tok@example.org", NULL);
    char token[CONSENT_TOKEN_BUF];
    struct op_error err;
    int dash = 0, bad_len = 0;
    for (int i = 0; i < 300; i++) {
        if (record(c, "email", "shape", NULL, "double_opt_in", "test", T0, token, &err) < 0)
            break;
        dash += token[0] == '-';
        bad_len += strlen(token) != 43 ||
                   strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789-_") != 43;
    }
    CHECK_EQ(dash, 0);
    CHECK_EQ(bad_len, 0);
    CHECK_EQ(count("SELECT count(DISTINCT token_hash) FROM consent_tokens WHERE consent_id IN "
                   "(SELECT id FROM consents WHERE purpose = 'shape')"),
             300);
    free(c);
}

static void test_expired_token(void)
{
    char *c = new_contact("bo@example.org", NULL);
    char token[CONSENT_TOKEN_BUF];
    struct op_error err;
    CHECK_EQ(record(c, "email", "newsletter", NULL, "double_opt_in", "web form", T0, token, &err),
             0);
    long long v = count("SELECT sum(version) FROM consents");
    char id[40];
    op_error_clear(&err);
    /* ttl 2 hours: at exactly T0 + 2h the token is gone. */
    CHECK_EQ(consent_confirm(s, token, NULL, T0 + 2 * HOUR, id, &err), -ETIME);
    CHECK_CONTAINS(err.msg, "expired (2026-11-24T12:00:00.000Z)");
    CHECK_EQ(count("SELECT sum(version) FROM consents"), v);
    CHECK_EQ(count("SELECT count(*) FROM consent_tokens WHERE used_ms IS NOT NULL AND "
                   "consent_id IN (SELECT id FROM consents WHERE contact_id IN (SELECT id FROM "
                   "contacts WHERE email = 'bo@example.org'))"),
             0);
    struct consent_decision d = check(c, "email", "newsletter", NULL, T0 + 3 * HOUR);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.state, CONSENT_PENDING);
    /* One millisecond before the end it still works. */
    CHECK_EQ(record(c, "email", "newsletter", NULL, "double_opt_in", "web form", T0, token, &err),
             0);
    CHECK_EQ(consent_confirm(s, token, NULL, T0 + 2 * HOUR - 1, id, &err), 0);
    free(c);
}

static void test_withdraw_is_immediate(void)
{
    char *c = new_contact("cy@example.org", "030 1234567");
    char token[CONSENT_TOKEN_BUF], t2[CONSENT_TOKEN_BUF], id[40];
    struct op_error err;
    CHECK_EQ(record(c, "email", "newsletter", NULL, "double_opt_in", "web form", T0, token, &err),
             0);
    CHECK_EQ(consent_confirm(s, token, NULL, T0 + 60000, id, &err), 0);
    CHECK_EQ(check(c, "email", "newsletter", NULL, T0 + 60001).allowed, 1);
    /* A second request stays pending, then the contact unsubscribes. */
    CHECK_EQ(
        record(c, "email", "newsletter", NULL, "double_opt_in", "web form", T0 + 70000, t2, &err),
        0);
    int n = 0;
    op_error_clear(&err);
    CHECK_EQ(consent_withdraw(s, c, "email", "newsletter", NULL, "unsubscribe link", T0 + 80000, &n,
                              &err),
             0);
    CHECK_EQ(n, 2);
    struct consent_decision d = check(c, "email", "newsletter", NULL, T0 + 80001);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.state, CONSENT_SUPPRESSED);
    CHECK_CONTAINS(d.rule, "EU-DE email: the address is on the suppression list since "
                           "2026-11-24T10:01:20.000Z (withdrawn)");
    /* The pending request cannot be confirmed any more. */
    op_error_clear(&err);
    CHECK_EQ(consent_confirm(s, t2, NULL, T0 + 90000, id, &err), -ECANCELED);
    CHECK_CONTAINS(err.msg, "withdrawn");
    /* Opt-out channel: allowed without a record, not after an objection. */
    d = check(c, "call", "offers", NULL, T0);
    CHECK_EQ(d.allowed, 1);
    CHECK_CONTAINS(d.rule, "EU-DE call is opt-out (GDPR Art. 21): no objection on file");
    CHECK_EQ(consent_withdraw(s, c, "call", "offers", NULL, NULL, T0 + 1000, &n, &err), 0);
    CHECK_EQ(n, 1);
    d = check(c, "call", "offers", NULL, T0 + 1001);
    CHECK_EQ(d.allowed, 0);
    int sup = 0;
    CHECK_EQ(consent_is_suppressed(s, "call", "offers", "+49 30 1234567", &sup, &err), 0);
    CHECK_EQ(sup, 1);
    CHECK_EQ(consent_is_suppressed(s, "sms", "offers", "+49 30 1234567", &sup, &err), 0);
    CHECK_EQ(sup, 0);
    free(c);
}

static void test_suppression_survives_erasure(void)
{
    char *a = new_contact("Dee@Example.org", NULL);
    struct op_error err;
    int n;
    CHECK_EQ(consent_withdraw(s, a, "email", "newsletter", NULL, NULL, T0, &n, &err), 0);
    /* Only a keyed hash is kept: 64 hex digits, no trace of the address. */
    CHECK_EQ(count("SELECT count(*) FROM suppressions WHERE length(hash) != 64 OR hash GLOB "
                   "'*[^0-9a-f]*' OR reason LIKE '%@%'"),
             0);
    CHECK_EQ(count("SELECT count(*) FROM suppressions WHERE created_ms = 1795514400000 AND "
                   "channel = 'email' AND purpose = 'newsletter' AND reason = 'withdrawn'"),
             1);
    /* The contact is erased; the address stays blocked. */
    op_error_clear(&err);
    CHECK_EQ(store_purge(s, &entity_contact, a, "erase", "subject request", &err), 0);
    int sup = 0;
    CHECK_EQ(consent_is_suppressed(s, "email", "newsletter", "  DEE@example.ORG ", &sup, &err), 0);
    CHECK_EQ(sup, 1);
    /* Re-added under a new id (an import), with single-opt-in-like evidence. */
    char *b = new_contact("dee@example.org", NULL);
    char token[CONSENT_TOKEN_BUF], id[40];
    CHECK_EQ(record(b, "email", "newsletter", NULL, "imported", "old list", T0 + HOUR, token, &err),
             0);
    struct consent_decision d = check(b, "email", "newsletter", NULL, T0 + HOUR + 1);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.state, CONSENT_SUPPRESSED);
    /* Erasure's own entry (every purpose). */
    CHECK_EQ(consent_suppress(s, "email", "Eve@Example.org", "erased", &err), 0);
    char *e = new_contact("eve@example.org", NULL);
    d = check(e, "email", "anything", NULL, T0);
    CHECK_EQ(d.state, CONSENT_SUPPRESSED);
    CHECK_CONTAINS(d.rule, "(erased)");
    /* The person confirms a fresh request themselves: that lifts it. */
    CHECK_EQ(consent_confirm(s, token, NULL, T0 + HOUR + 2, id, &err), 0);
    d = check(b, "email", "newsletter", NULL, T0 + HOUR + 3);
    CHECK_EQ(d.allowed, 1);
    CHECK_EQ(consent_is_suppressed(s, "email", NULL, "dee@example.org", &sup, &err), 0);
    CHECK_EQ(sup, 0);
    free(a);
    free(b);
    free(e);
}

static void test_single_opt_in_needs_evidence(void)
{
    char *c = new_contact("fay@example.org", "+49 151 2345678");
    char token[CONSENT_TOKEN_BUF];
    struct op_error err;
    long long before = count("SELECT count(*) FROM consents");
    CHECK_EQ(record(c, "sms", "offers", NULL, "single_opt_in", NULL, T0, token, &err), -EINVAL);
    CHECK_STR(err.field, "evidence.source");
    CHECK_CONTAINS(err.msg, "EU-DE sms is single opt-in");
    CHECK_EQ(count("SELECT count(*) FROM consents"), before);
    CHECK_EQ(check(c, "sms", "offers", NULL, T0).allowed, 0);
    CHECK_EQ(record(c, "sms", "offers", NULL, "written", "signed sheet", T0, token, &err), 0);
    CHECK_STR(token, "");
    struct consent_decision d = check(c, "sms", "offers", NULL, T0 + 1);
    CHECK_EQ(d.allowed, 1);
    CHECK_CONTAINS(d.rule, "EU-DE sms is single opt-in (UWG §7(2) Nr. 2 (sms)): consent for "
                           "'offers' granted 2026-11-24T10:00:00.000Z (source: signed sheet)");
    /* No rule for the channel: nothing for marketing, nothing recorded. */
    CHECK_EQ(record(c, "visit", "offers", NULL, "verbal", "stand", T0, token, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "EU-DE has no consent rule for visit");
    d = check(c, "visit", "offers", NULL, T0);
    CHECK_EQ(d.allowed, 0);
    CHECK_CONTAINS(d.rule, "EU-DE has no consent rule for visit");
    /* Bad input names the field. */
    CHECK_EQ(record(c, "fax", "offers", NULL, "written", "x", T0, token, &err), -EINVAL);
    CHECK_STR(err.field, "channel");
    CHECK_EQ(record(c, "sms", "", NULL, "written", "x", T0, token, &err), -EINVAL);
    CHECK_STR(err.field, "purpose");
    CHECK_EQ(record(c, "sms", "offers", "promo", "written", "x", T0, token, &err), -EINVAL);
    CHECK_STR(err.field, "kind");
    CHECK_EQ(record("0190aaaa-0000-7000-8000-000000000000", "sms", "offers", NULL, "written", "x",
                    T0, token, &err),
             -ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM consents"), before + 1);
    /* No policy: nothing marketing. */
    struct consent_decision d2;
    CHECK_EQ(consent_check(s, NULL, c, "sms", "offers", NULL, T0, &d2, &err), 0);
    CHECK_EQ(d2.allowed, 0);
    CHECK_CONTAINS(d2.rule, "no region policy");
    free(c);
}

static void test_transactional(void)
{
    char *c = new_contact("gil@example.org", NULL);
    struct op_error err;
    int n;
    /* No consent, and even a marketing unsubscribe: receipts still go. */
    CHECK_EQ(consent_withdraw(s, c, "email", "orders", NULL, NULL, T0, &n, &err), 0);
    CHECK_EQ(check(c, "email", "orders", NULL, T0 + 1).allowed, 0);
    struct consent_decision d = check(c, "email", "orders", "transactional", T0 + 1);
    CHECK_EQ(d.allowed, 1);
    CHECK_CONTAINS(d.rule, "transactional messages are not marketing");
    /* An explicit transactional withdrawal blocks them. */
    CHECK_EQ(consent_withdraw(s, c, "email", "orders", "transactional", NULL, T0 + 5, &n, &err), 0);
    d = check(c, "email", "orders", "transactional", T0 + 6);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.state, CONSENT_WITHDRAWN);
    CHECK_CONTAINS(d.rule, "transactional messages for 'orders' on email were withdrawn");
    /* Unknown contact. */
    struct consent_decision d2;
    CHECK_EQ(consent_check(s, pol, "0190aaaa-0000-7000-8000-000000000000", "email", "x", NULL, T0,
                           &d2, &err),
             -ENOENT);
    free(c);
}

static void test_confirmation_text(void)
{
    char a[1024], b[1024];
    CHECK_EQ(
        consent_confirmation_text(pol, "de-DE", "newsletter", "https://n/c?t=XYZ", a, sizeof a), 0);
    CHECK_CONTAINS(a, "https://n/c?t=XYZ");
    CHECK_CONTAINS(a, "\"newsletter\"");
    CHECK_CONTAINS(a, "bitte bestätigen Sie");
    /* Nothing but the two slots varies: swapping them out gives the same text. */
    CHECK_EQ(consent_confirmation_text(pol, "de", "P", "L", b, sizeof b), 0);
    char *x = strstr(a, "\"newsletter\""), *y = strstr(b, "\"P\"");
    CHECK(x && y && x - a == y - b && !strncmp(a, b, (size_t)(x - a)));
    CHECK_EQ(consent_confirmation_text(pol, NULL, "p", "L", b, sizeof b), 0);
    CHECK_CONTAINS(b, "please confirm"); /* the policy's language: none set */
    CHECK_EQ(consent_confirmation_text(NULL, "fr", "p", "L", b, sizeof b), 0);
    CHECK_CONTAINS(b, "veuillez confirmer");
    CHECK_EQ(consent_confirmation_text(NULL, "es-MX", "p", "L", b, sizeof b), 0);
    CHECK_CONTAINS(b, "confirme que desea recibir");
    CHECK_EQ(consent_confirmation_text(NULL, "ru-RU", "p", "L", b, sizeof b), 0);
    CHECK_CONTAINS(b, "Пожалуйста, подтвердите");
    CHECK_EQ(consent_confirmation_text(NULL, "sw", "p", "L", b, sizeof b), 0);
    CHECK_CONTAINS(b, "please confirm"); /* no Swahili text: English */
    CHECK_EQ(consent_confirmation_text(pol, "en", "p", "L", b, 20), -ENOBUFS);
    CHECK_EQ(consent_confirmation_text(pol, "en", "p\nBUY NOW", "L", b, sizeof b), -EINVAL);
}

/* Entries hashed under the former phone keys still block: "0049 123 4567"
 * was keyed "+491234567" before libphonenumber (which finds no valid
 * number in it and keeps the text), so the entry an erasure made then
 * must still answer for it, for a send check and for a lookup. */
static void test_suppression_before_phone_keys(void)
{
    struct op_error err;
    int sup = 1;
    CHECK_EQ(consent_is_suppressed(s, "sms", NULL, "0049 123 4567", &sup, &err), 0);
    CHECK_EQ(sup, 0);
    /* the text as it was hashed then ("+491234567" is no valid number now
     * either, so it hashes as typed: the former key's hash) */
    CHECK_EQ(consent_suppress(s, "sms", "+491234567", "erased", &err), 0);
    CHECK_EQ(consent_is_suppressed(s, "sms", NULL, "0049 123 4567", &sup, &err), 0);
    CHECK_EQ(sup, 1);
    char *a = new_contact(NULL, "0049 123 4567");
    struct consent_decision d = check(a, "sms", "offers", NULL, T0);
    CHECK_EQ(d.allowed, 0);
    CHECK_EQ(d.state, CONSENT_SUPPRESSED);
    /* a number that is another person's is not blocked by it */
    CHECK_EQ(consent_is_suppressed(s, "sms", NULL, "0049 123 4568", &sup, &err), 0);
    CHECK_EQ(sup, 0);
    free(a);
}

int main(void)
{
    pol = fx_consent_policy();
    s = open_store();
    RUN(test_double_opt_in_flow);
    RUN(test_token_shape);
    RUN(test_expired_token);
    RUN(test_withdraw_is_immediate);
    RUN(test_suppression_survives_erasure);
    RUN(test_suppression_before_phone_keys);
    RUN(test_single_opt_in_needs_evidence);
    RUN(test_transactional);
    RUN(test_confirmation_text);
    store_close(s);
    policy_free(pol);
    return tl_report();
}
