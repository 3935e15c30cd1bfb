/*
 * Tests for appliance/store/outreach_bounce.c: delivery status
 * notifications as real MTAs write them (Postfix, Exim with a folded
 * token, a Gmail-style report returning the whole message, CRLF line
 * ends) parse to the token, the status and the kind; malformed reports
 * (no DSN, no boundary, no delivery-status part, no Status, a bad status,
 * no token, a bad token, a NUL byte, too large, a truncated report) are
 * refused naming what is wrong; matching by the token's hash records the
 * event once, an unknown token changes nothing, and the limit of hard
 * bounces suppresses the contact's address for e-mail in the same step.
 */
#include "outreach_bounce.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "consent_policy.h"
#include "db.h"
#include "entity.h"
#include "outreach.h"
#include "outreach_events.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

#define T0 1795514400000LL
#define TOKEN "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde" /* 43 base64url */

static struct store *s;
static struct policy *pol;
static struct op_error err;

/* A sample of tests/data/dsn with @TOKEN@ and @RCPT@ filled in
 * (malloc'd). */
static char *sample(const char *name, const char *token, size_t *len)
{
    char path[1024];
    const char *dir = getenv("TESTS_DIR");
    snprintf(path, sizeof path, "%s/data/dsn/%s", dir ? dir : "tests", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    static char raw[65536];
    size_t n = fread(raw, 1, sizeof raw - 1, f);
    fclose(f);
    raw[n] = '\0';
    size_t cap = 2 * n + 1024;
    char *out = malloc(cap);
    size_t k = 0;
    for (const char *p = raw; *p;) {
        if (!strncmp(p, "@TOKEN@", 7)) {
            k += (size_t)snprintf(out + k, cap - k, "%s", token);
            p += 7;
        } else if (!strncmp(p, "@RCPT@", 6)) {
            k += (size_t)snprintf(out + k, cap - k, "ana@example.org");
            p += 6;
        } else {
            out[k++] = *p++;
        }
    }
    out[k] = '\0';
    *len = k;
    return out;
}

static int parse_text(const char *text, struct outreach_dsn *d)
{
    op_error_clear(&err);
    return outreach_dsn_parse(text, strlen(text), d, &err);
}

static void test_real_reports(void)
{
    struct outreach_dsn d;
    size_t n;
    char *t = sample("postfix_5xx.eml", TOKEN, &n);
    CHECK_EQ(outreach_dsn_parse(t, n, &d, &err), 0);
    CHECK_STR(d.token, TOKEN);
    CHECK_STR(d.status, "5.1.1");
    CHECK_STR(d.action, "failed");
    CHECK_STR(d.kind, "bounced_hard");
    CHECK_STR(d.recipient, "rfc822; ana@example.org");
    CHECK_STR(d.diagnostic,
              "smtp; 550 5.1.1 <ana@example.org>: Recipient address rejected: User unknown");
    /* the same with CRLF line ends */
    char *crlf = malloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\n')
            crlf[k++] = '\r';
        crlf[k++] = t[i];
    }
    CHECK_EQ(outreach_dsn_parse(crlf, k, &d, &err), 0);
    CHECK_STR(d.token, TOKEN);
    CHECK_STR(d.status, "5.1.1");
    free(crlf);
    free(t);

    t = sample("exim_delayed.eml", TOKEN, &n);
    CHECK_EQ(outreach_dsn_parse(t, n, &d, &err), 0);
    CHECK_STR(d.token, TOKEN); /* folded onto the next line */
    CHECK_STR(d.status, "4.0.0");
    CHECK_STR(d.action, "delayed");
    CHECK_STR(d.kind, "bounced_soft");
    free(t);

    /* Gmail style: message/rfc822 with the whole original, a status with
     * a comment, upper-case field names, a quoted boundary with '=' */
    const char *gmail = "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
                        "Content-Type: multipart/report; boundary=\"00000000000012ab=34\"; "
                        "report-type=delivery-status\n"
                        "\n"
                        "--00000000000012ab=34\n"
                        "Content-Type: text/plain; charset=\"UTF-8\"\n"
                        "\n"
                        "Address not found\n"
                        "--00000000000012ab=34\n"
                        "Content-Type: message/delivery-status\n"
                        "\n"
                        "Reporting-MTA: dns; googlemail.com\n"
                        "\n"
                        "FINAL-RECIPIENT: rfc822; ana@example.org\n"
                        "ACTION: failed\n"
                        "STATUS: 5.1.1 (bad destination mailbox address)\n"
                        "\n"
                        "--00000000000012ab=34\n"
                        "Content-Type: message/rfc822\n"
                        "\n"
                        "From: news@branch.example\n"
                        "x-outpost-bounce: " TOKEN "\n"
                        "\n"
                        "Olá\n"
                        "--00000000000012ab=34--\n";
    CHECK_EQ(parse_text(gmail, &d), 0);
    CHECK_STR(d.token, TOKEN);
    CHECK_STR(d.status, "5.1.1");
    CHECK_STR(d.kind, "bounced_hard");
    /* a success report (NOTIFY=SUCCESS) is a delivery */
    const char *ok = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
                     "--b\nContent-Type: message/delivery-status\n\n"
                     "Action: delivered\nStatus: 2.0.0\n\n"
                     "--b\nContent-Type: text/rfc822-headers\n\nX-Outpost-Bounce: " TOKEN "\n"
                     "--b--\n";
    CHECK_EQ(parse_text(ok, &d), 0);
    CHECK_STR(d.kind, "delivered");
}

static void refused(const char *text, int rc, const char *msg)
{
    struct outreach_dsn d;
    CHECK_EQ(parse_text(text, &d), rc);
    CHECK_CONTAINS(err.msg, msg);
}

static void test_malformed_reports(void)
{
    refused("From: a@b\nSubject: hi\n\nhello\n", -EINVAL, "the message has no Content-Type header");
    refused("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--b--\n", -EINVAL,
            "Content-Type is 'multipart/mixed; boundary=b', not multipart/report");
    refused("Content-Type: multipart/report; report-type=disposition-notification; "
            "boundary=b\n\n",
            -EINVAL, "not multipart/report; report-type=delivery-status");
    refused("Content-Type: multipart/report; report-type=delivery-status\n\nx\n", -EINVAL,
            "multipart/report without a boundary");
    /* the shared reader's errors (mime_reader.h), through the parser */
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "no delimiter\n--c\n",
            -EINVAL, "multipart/report: no part starts with its boundary '--b'");
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\n\n"
            "--b\n",
            -EINVAL, "parameter boundary: the quoted value has no closing '\"'");
    {
        static char big[2400];
        int n = snprintf(big, sizeof big,
                         "Content-Type: multipart/report; report-type=delivery-status;\n"
                         " boundary=b; x=");
        memset(big + n, 'y', 1200);
        snprintf(big + n + 1200, sizeof big - (size_t)n - 1200, "\n\n--b\n");
        refused(big, -EFBIG, "Content-Type: the field is 1261 bytes, longer than the 1023");
        CHECK_EQ(err.code, -EFBIG);
    }
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: text/plain\n\nsorry\n--b--\n",
            -EINVAL, "without a message/delivery-status part");
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
            "Action: failed\n\n--b--\n",
            -EINVAL, "no per-recipient block with a Status field");
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: message/delivery-status\n\nStatus: 550\n\n--b--\n",
            -EINVAL, "Status '550' is not a status code");
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: message/delivery-status\n\nStatus: 5.1.1\n\n"
            "--b\nContent-Type: text/rfc822-headers\n\nFrom: x@y\n--b--\n",
            -EINVAL, "no X-Outpost-Bounce header in the returned message");
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: message/delivery-status\n\nStatus: 5.1.1\n\n"
            "--b\nContent-Type: text/rfc822-headers\n\nX-Outpost-Bounce: abc<script>\n--b--\n",
            -EINVAL, "X-Outpost-Bounce: malformed token");
    /* truncated in the middle of the delivery-status part: no Status yet */
    refused("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\nAct",
            -EINVAL, "no per-recipient block with a Status field");
    struct outreach_dsn d;
    const char nul[] = "Content-Type: text/plain\n\na\0b";
    op_error_clear(&err);
    CHECK_EQ(outreach_dsn_parse(nul, sizeof nul - 1, &d, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "a NUL byte at byte 27");
    char *big = malloc(OUTREACH_BOUNCE_MAX + 2);
    memset(big, 'x', OUTREACH_BOUNCE_MAX + 1);
    op_error_clear(&err);
    CHECK_EQ(outreach_dsn_parse(big, OUTREACH_BOUNCE_MAX + 1, &d, &err), -EFBIG);
    CHECK_CONTAINS(err.msg, "larger than 1048576 bytes");
    free(big);
    op_error_clear(&err);
    CHECK_EQ(outreach_dsn_parse("", 0, &d, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "input: empty");
}

static char *new_contact(const char *email)
{
    json_t *f = json_pack("{s:s, s:s}", "family_name", "Lima", "email", email);
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

/* A transactional e-mail to the contact, sent with bounce token tok. */
static int64_t sent_with(const char *contact, const char *tok)
{
    struct outreach_new m = {.contact_id = contact,
                             .channel = "email",
                             .purpose = "receipts",
                             .kind = "transactional",
                             .subject = "Ihre Quittung",
                             .body = "Danke\n"};
    int64_t id = 0;
    CHECK_EQ(outreach_queue(s, &m, T0, &id, &err), 0);
    struct outreach_job job;
    CHECK_EQ(outreach_next(s, pol, T0, &job, &err), 1);
    CHECK_EQ(job.id, id);
    CHECK_EQ(store_begin(s, &err), 0);
    CHECK_EQ(outreach_bounce_ref(s, id, tok, &err), 0);
    CHECK_EQ(outreach_attempt(s, &job, "smtp://127.0.0.1:1", tok, T0, &err), 0);
    CHECK_EQ(store_commit(s, &err), 0);
    outreach_job_free(&job);
    CHECK_EQ(outreach_outcome(s, id, OUTREACH_SENT, "", 60, 8, T0, &err), 0);
    return id;
}

static int64_t count(const char *sql)
{
    return fx_count(s, sql);
}

static void test_match_and_limit(void)
{
    char *a = new_contact("Ana@Example.org");
    const char *tok1 = "tok1tok1tok1tok1tok1tok1tok1tok1tok1tok1tok";
    const char *tok2 = "tok2tok2tok2tok2tok2tok2tok2tok2tok2tok2tok";
    int64_t m1 = sent_with(a, tok1), m2 = sent_with(a, tok2);
    /* the token is kept only as its hash */
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE gateway_ref LIKE '%tok1%'"), 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE length(gateway_ref) = 64"), 2);

    struct outreach_dsn d;
    size_t n;
    int64_t id = 0;
    int dup = 0, sup = 0;
    /* an unknown token: nothing changes */
    char *t = sample("postfix_5xx.eml", TOKEN, &n);
    CHECK_EQ(outreach_dsn_parse(t, n, &d, &err), 0);
    free(t);
    op_error_clear(&err);
    CHECK_EQ(outreach_bounce_apply(s, &d, 2, T0, &id, &dup, &sup, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "no message of this node has this bounce token");
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), 0);

    /* the first hard bounce: an event, the outcome; not suppressed yet */
    t = sample("postfix_5xx.eml", tok1, &n);
    CHECK_EQ(outreach_dsn_parse(t, n, &d, &err), 0);
    free(t);
    CHECK_EQ(outreach_bounce_apply(s, &d, 2, T0 + 1000, &id, &dup, &sup, &err), 0);
    CHECK_EQ(id, m1);
    CHECK_EQ(dup, 0);
    CHECK_EQ(sup, 0);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE kind = 'bounced_hard'"), 1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'bounced'"), 1);
    /* the same report again: nothing changes */
    CHECK_EQ(outreach_bounce_apply(s, &d, 2, T0 + 2000, &id, &dup, &sup, &err), 0);
    CHECK_EQ(dup, 1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), 1);
    /* a soft bounce of the second message does not count */
    t = sample("exim_delayed.eml", tok2, &n);
    CHECK_EQ(outreach_dsn_parse(t, n, &d, &err), 0);
    free(t);
    CHECK_EQ(outreach_bounce_apply(s, &d, 2, T0 + 3000, &id, &dup, &sup, &err), 0);
    CHECK_EQ(id, m2);
    CHECK_EQ(sup, 0);
    int suppressed = 0;
    CHECK_EQ(consent_is_suppressed(s, "email", NULL, "ana@example.org", &suppressed, &err), 0);
    CHECK_EQ(suppressed, 0);
    /* the second message bounces hard: the limit is reached, suppressed
     * in the same step; the consent check refuses with that reason */
    CHECK_EQ(outreach_record_bounce(s, m2, "bounced_hard", "5.2.1 failed", 2, T0 + 4000, &dup, &sup,
                                    &err),
             0);
    CHECK_EQ(sup, 1);
    CHECK_EQ(consent_is_suppressed(s, "email", NULL, "ana@example.org", &suppressed, &err), 0);
    CHECK_EQ(suppressed, 1);
    struct consent_decision dec;
    CHECK_EQ(consent_check(s, pol, a, "email", "newsletter", "marketing", T0 + 5000, &dec, &err),
             0);
    CHECK_EQ(dec.allowed, 0);
    CHECK_EQ(dec.state, CONSENT_SUPPRESSED);
    CHECK_CONTAINS(dec.rule, "2 hard bounces");

    /* a limit of 1 suppresses at the first */
    char *b = new_contact("bea@example.org");
    int64_t m3 = sent_with(b, "tok3tok3tok3tok3tok3tok3tok3tok3tok3tok3tok");
    CHECK_EQ(outreach_record_bounce(s, m3, "bounced_hard", "554", 1, T0, &dup, &sup, &err), 0);
    CHECK_EQ(sup, 1);
    /* bad arguments change nothing */
    int64_t before = count("SELECT count(*) FROM outreach_events");
    CHECK_EQ(outreach_record_bounce(s, m3, "bounced_hard", "x", 0, T0, &dup, &sup, &err), -EINVAL);
    CHECK_EQ(outreach_record_bounce(s, m3, "replied", "x", 2, T0, &dup, &sup, &err), -EINVAL);
    CHECK_EQ(outreach_record_bounce(s, 9999, "bounced_hard", "x", 2, T0, &dup, &sup, &err),
             -ENOENT);
    CHECK_EQ(outreach_bounce_ref(s, m3, "short", &err), -EINVAL);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), before);
    free(a);
    free(b);
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
    RUN(test_real_reports);
    RUN(test_malformed_reports);
    RUN(test_match_and_limit);
    store_close(s);
    policy_free(pol);
    return tl_report();
}
