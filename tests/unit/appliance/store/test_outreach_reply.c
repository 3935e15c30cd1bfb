/*
 * Tests for appliance/store/outreach_reply.c: replies as real mail
 * programs write them (Thunderbird plain text with a quoted original,
 * Outlook multipart/alternative in ISO-8859-1 quoted-printable with an
 * encoded-word Subject, Gmail base64 UTF-8 with a wrapped attribution and
 * the node's id in the middle of References, CRLF line ends) give the
 * token, the Subject and the reply's own words; auto-replies are known
 * as such; malformed input (no header, no In-Reply-To/References, ids of
 * another sender, a multipart without boundary, bad base64, an unknown
 * charset, text that is not its charset, a NUL byte, too large, empty) is
 * refused naming what is wrong. Matching records the activity and the
 * outcome once, an auto-reply only as an event, an unknown token changes
 * nothing, a stop word in the Subject withdraws e-mail consent and
 * suppresses the address, and erasing the contact deletes the activity.
 */
#include "outreach_reply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "consent_policy.h"
#include "db.h"
#include "entity.h"
#include "outreach.h"
#include "outreach_bounce.h"
#include "outreach_events.h"
#include "outreach_mail.h"
#include "store.h"
#include "store_fixture.h"
#include "subject.h"
#include "testlib.h"

#define T0 1795514400000LL
#define TOKEN "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde" /* 43 base64url */

static struct store *s;
static struct policy *pol;
static struct op_error err;

/* Thunderbird 115, plain text, format=flowed, 8bit UTF-8 */
#define THUNDERBIRD(tok)                                                                           \
    "Message-ID: <5b1e0c7a-1f0e-4c2b-9d1e-3f0a7c2d9e11@example.org>\n"                             \
    "Date: Mon, 7 Dec 2026 10:12:03 +0100\n"                                                       \
    "MIME-Version: 1.0\n"                                                                          \
    "User-Agent: Mozilla Thunderbird\n"                                                            \
    "Subject: Re: Ihre Quittung\n"                                                                 \
    "Content-Language: de-DE\n"                                                                    \
    "To: news@branch.example\n"                                                                    \
    "References: <outreach-12." tok "@branch.example>\n"                                           \
    "From: Ana Lima <ana@example.org>\n"                                                           \
    "In-Reply-To: <outreach-12." tok "@branch.example>\n"                                          \
    "Content-Type: text/plain; charset=UTF-8; format=flowed\n"                                     \
    "Content-Transfer-Encoding: 8bit\n"                                                            \
    "\n"                                                                                           \
    "Danke, die Quittung ist angekommen. Können Sie mir\n"                                        \
    "auch die vom März schicken?\n"                                                               \
    "\n"                                                                                           \
    "Grüße\n"                                                                                    \
    "Ana\n"                                                                                        \
    "\n"                                                                                           \
    "Am 07.12.26 um 09:00 schrieb news@branch.example:\n"                                          \
    "> Danke\n"                                                                                    \
    "> --\n"                                                                                       \
    "> Keine weiteren Nachrichten erhalten: https://branch.example/o/unsubscribe/x\n"

static const char outlook[] =
    "Received: from EX01.example.com (10.0.0.1) by EX02.example.com\r\n"
    "From: \"Ana Lima\" <ana@example.com>\r\n"
    "To: \"news@branch.example\" <news@branch.example>\r\n"
    "Subject: AW: =?iso-8859-1?Q?Ihre_Quittung_f=FCr?=\r\n"
    " =?iso-8859-1?Q?_M=E4rz?=\r\n"
    "Thread-Topic: Ihre Quittung\r\n"
    "Thread-Index: AQHZ1234567890abcdef==\r\n"
    "Date: Mon, 7 Dec 2026 09:14:22 +0000\r\n"
    "Message-ID: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com>\r\n"
    "In-Reply-To: <outreach-3." TOKEN "@branch.example>\r\n"
    "Accept-Language: de-DE, en-US\r\n"
    "Content-Type: multipart/alternative;\r\n"
    "\tboundary=\"_000_AM0PR01MB1234ABCD_\"\r\n"
    "MIME-Version: 1.0\r\n"
    "\r\n"
    "--_000_AM0PR01MB1234ABCD_\r\n"
    "Content-Type: text/plain; charset=\"iso-8859-1\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Sehr geehrte Damen und Herren, bitte senden Sie mir die Quittung f=FCr M=E4=\r\n"
    "rz erneut.\r\n"
    "\r\n"
    "Mit freundlichen Gr=FC=DFen\r\n"
    "Ana Lima\r\n"
    "\r\n"
    "________________________________\r\n"
    "Von: news@branch.example <news@branch.example>\r\n"
    "Gesendet: Montag, 7. Dezember 2026 09:00\r\n"
    "Betreff: Ihre Quittung\r\n"
    "\r\n"
    "Danke\r\n"
    "\r\n"
    "--_000_AM0PR01MB1234ABCD_\r\n"
    "Content-Type: text/html; charset=\"iso-8859-1\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<html><body><p>Sehr geehrte Damen und Herren</p></body></html>\r\n"
    "\r\n"
    "--_000_AM0PR01MB1234ABCD_--\r\n";

/* Gmail: multipart/alternative, base64 UTF-8; the attribution wrapped.
 * The text: "Obrigada! Chego às 10h.\r\n\r\nOn Mon, Dec 7, 2026 at 9:00 AM
 * Branch <\r\nnews@branch.example> wrote:\r\n\r\n> Olá\r\n" */
static const char gmail[] =
    "MIME-Version: 1.0\n"
    "References: <CAold1@mail.gmail.com> <outreach-9." TOKEN "@branch.example>\n"
    " <CAold2@mail.gmail.com>\n"
    "In-Reply-To: <CAold2@mail.gmail.com>\n"
    "From: Ana Lima <ana.lima@gmail.com>\n"
    "Date: Mon, 7 Dec 2026 10:01:12 +0100\n"
    "Message-ID: <CAH3xYz+ABC=def@mail.gmail.com>\n"
    "Subject: =?UTF-8?B?UmU6IE9sw6EgZGEgZmlsaWFs?=\n"
    "To: news@branch.example\n"
    "Content-Type: multipart/alternative; boundary=\"000000000000a1b2c3\"\n"
    "\n"
    "--000000000000a1b2c3\n"
    "Content-Type: text/plain; charset=\"UTF-8\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "T2JyaWdhZGEhIENoZWdvIMOgcyAxMGguDQoNCk9uIE1vbiwgRGVjIDcsIDIwMjYgYXQgOTowMCBB\n"
    "TSBCcmFuY2ggPA0KbmV3c0BicmFuY2guZXhhbXBsZT4gd3JvdGU6DQoNCj4gT2zDoQ0K\n"
    "--000000000000a1b2c3\n"
    "Content-Type: text/html; charset=\"UTF-8\"\n"
    "\n"
    "<div dir=\"ltr\">Obrigada!</div>\n"
    "--000000000000a1b2c3--\n";

#define AUTOREPLY(tok, extra)                                                                      \
    "From: ana@example.org\n"                                                                      \
    "Subject: Automatische Antwort: Ihre Quittung\n"                                               \
    "Message-ID: <auto-1@example.org>\n"                                                           \
    "In-Reply-To: <outreach-12." tok "@branch.example>\n" extra                                    \
    "Content-Type: text/plain; charset=us-ascii\n"                                                 \
    "\n"                                                                                           \
    "I am out of the office until 14 December.\n"

static int parse_text(const char *text, struct outreach_reply *r)
{
    op_error_clear(&err);
    return outreach_reply_parse(text, strlen(text), r, &err);
}

static void test_real_replies(void)
{
    static struct outreach_reply r;
    CHECK_EQ(parse_text(THUNDERBIRD(TOKEN), &r), 0);
    CHECK_EQ(r.ntokens, 1);
    CHECK_STR(r.tokens[0], TOKEN);
    CHECK_STR(r.subject, "Re: Ihre Quittung");
    CHECK_STR(r.body, "Danke, die Quittung ist angekommen. Können Sie mir\n"
                      "auch die vom März schicken?\n\nGrüße\nAna");
    CHECK_STR(r.id, "Message-ID <5b1e0c7a-1f0e-4c2b-9d1e-3f0a7c2d9e11@example.org>");
    CHECK_EQ(r.automatic, 0);
    CHECK_EQ(r.stop, 0);

    CHECK_EQ(parse_text(outlook, &r), 0);
    CHECK_STR(r.tokens[0], TOKEN);
    CHECK_STR(r.subject, "AW: Ihre Quittung für März");
    CHECK_STR(r.body, "Sehr geehrte Damen und Herren, bitte senden Sie mir die Quittung für "
                      "März erneut.\n\nMit freundlichen Grüßen\nAna Lima");

    CHECK_EQ(parse_text(gmail, &r), 0);
    CHECK_EQ(r.ntokens, 1); /* found in References, In-Reply-To names Gmail's own */
    CHECK_STR(r.tokens[0], TOKEN);
    CHECK_STR(r.subject, "Re: Olá da filial");
    CHECK_STR(r.body, "Obrigada! Chego às 10h.");
    CHECK_STR(r.id, "Message-ID <CAH3xYz+ABC=def@mail.gmail.com>");

    /* no Message-ID: the reply is known by its hash */
    const char *bare = "In-Reply-To: <outreach-1." TOKEN "@b.example>\n\nyes\n";
    CHECK_EQ(parse_text(bare, &r), 0);
    CHECK_EQ(strncmp(r.id, "sha256 ", 7), 0);
    CHECK_EQ(strlen(r.id), 7 + 64);
    CHECK_STR(r.body, "yes");
    CHECK_STR(r.subject, "");

    /* a body longer than the bound is cut at a character boundary */
    size_t big = OUTREACH_REPLY_BODY_MAX * 2;
    char *longer = malloc(big + 200);
    int k = snprintf(longer, 200, "In-Reply-To: <outreach-1." TOKEN "@b.example>\n\n");
    for (size_t i = 0; i < big; i += 2)
        memcpy(longer + k + i, "é", 2);
    longer[k + (int)big] = '\0';
    CHECK_EQ(parse_text(longer, &r), 0);
    CHECK_EQ(strlen(r.body), OUTREACH_REPLY_BODY_MAX);
    free(longer);

    /* stop words in the Subject, after reply prefixes */
    CHECK_EQ(parse_text("Subject: unsubscribe\nIn-Reply-To: <outreach-1." TOKEN
                        "@b.example>\n\nplease\n",
                        &r),
             0);
    CHECK_EQ(r.stop, 1);
    CHECK_EQ(parse_text(
                 "Subject: AW: Re: STOP!\nIn-Reply-To: <outreach-1." TOKEN "@b.example>\n\n\n", &r),
             0);
    CHECK_EQ(r.stop, 1);
    CHECK_EQ(parse_text("Subject: Re: stop the letters to my old address\nIn-Reply-To: "
                        "<outreach-1." TOKEN "@b.example>\n\n\n",
                        &r),
             0);
    CHECK_EQ(r.stop, 0); /* a sentence, not a withdrawal */

    /* auto-replies */
    CHECK_EQ(parse_text(AUTOREPLY(TOKEN, "Auto-Submitted: auto-replied\n"), &r), 0);
    CHECK_EQ(r.automatic, 1);
    CHECK_EQ(parse_text(AUTOREPLY(TOKEN, "Precedence: bulk\n"), &r), 0);
    CHECK_EQ(r.automatic, 1);
    CHECK_EQ(parse_text(AUTOREPLY(TOKEN, "Precedence: auto_reply\n"), &r), 0);
    CHECK_EQ(r.automatic, 1);
    CHECK_EQ(parse_text(AUTOREPLY(TOKEN, "Auto-Submitted: no\n"), &r), 0);
    CHECK_EQ(r.automatic, 0);
    CHECK_EQ(parse_text(AUTOREPLY(TOKEN, "X-Autoreply: yes\n"), &r), 0);
    CHECK_EQ(r.automatic, 1);
    CHECK_EQ(parse_text(AUTOREPLY(TOKEN, "X-Autogenerated: Reply\n"), &r), 0);
    CHECK_EQ(r.automatic, 1);
    /* servers that send no Auto-Submitted: the Subject says it */
    CHECK_EQ(parse_text("Subject: Out of Office: Ihre Quittung\nIn-Reply-To: <outreach-1." TOKEN
                        "@b.example>\n\nI am away until Monday.\n",
                        &r),
             0);
    CHECK_EQ(r.automatic, 1);
    CHECK_EQ(parse_text("Subject: Automatic reply: unsubscribe\nIn-Reply-To: <outreach-1." TOKEN
                        "@b.example>\n\naway\n",
                        &r),
             0);
    CHECK_EQ(r.automatic, 1);
    CHECK_EQ(r.stop, 0); /* a machine's echo of the Subject withdraws nothing */
    CHECK_EQ(parse_text("Subject: Re: out of office hours, can you call?\nIn-Reply-To: "
                        "<outreach-1." TOKEN "@b.example>\n\nplease\n",
                        &r),
             0);
    CHECK_EQ(r.automatic, 0); /* a person's words about the office */
}

/* The Message-ID the node builds carries the token; a reply naming it
 * gives the token back. An HTML-only reply keeps an empty body; a text
 * part inside nested multiparts is found. */
static void test_round_trip(void)
{
    struct outreach_mail_in in = {.id = 42,
                                  .node_id = "n1",
                                  .from = "news@branch.example",
                                  .to = "ana@example.org",
                                  .language = "de",
                                  .tmpl = "",
                                  .subject = "Hallo",
                                  .body = "Text\n",
                                  .public_url = "https://crm.example",
                                  .unsub_token = "UTOKEN",
                                  .bounce_token = TOKEN,
                                  .now_ms = T0};
    char *m = NULL, used[8];
    size_t len = 0;
    op_error_clear(&err);
    CHECK_EQ(outreach_mail_build(&in, &m, &len, used, &err), 0);
    CHECK_CONTAINS(m, "Message-ID: <outreach-42." TOKEN "@branch.example>\r\n");
    const char *at = strstr(m, "Message-ID: ");
    char reply[512];
    snprintf(reply, sizeof reply, "Subject: Re: Hallo\nIn-Reply-To: %.*s\n\nJa\n",
             (int)(strchr(at, '\r') - at - 12), at + 12);
    free(m);
    static struct outreach_reply r;
    CHECK_EQ(parse_text(reply, &r), 0);
    CHECK_STR(r.tokens[0], TOKEN);
    CHECK_STR(r.body, "Ja");

    CHECK_EQ(parse_text("In-Reply-To: <outreach-1." TOKEN "@b.example>\n"
                        "Content-Type: text/html; charset=utf-8\n\n<p>Ja</p>\n",
                        &r),
             0);
    CHECK_STR(r.body, "");
    CHECK_EQ(parse_text("In-Reply-To: <outreach-1." TOKEN "@b.example>\n"
                        "Content-Type: multipart/mixed; boundary=outer\n\n"
                        "--outer\nContent-Type: multipart/alternative; boundary=inner\n\n"
                        "--inner\nContent-Type: text/plain; charset=windows-1252\n"
                        "Content-Transfer-Encoding: quoted-printable\n\n"
                        "=93Ja=94 =80 5\n--inner--\n"
                        "--outer\nContent-Type: application/pdf\n\nxx\n--outer--\n",
                        &r),
             0);
    CHECK_STR(r.body, "\u201cJa\u201d \u20ac 5");
}

static void refused(const char *text, int code, const char *words)
{
    static struct outreach_reply r;
    CHECK_EQ(parse_text(text, &r), code);
    CHECK_CONTAINS(err.msg, words);
}

#define IRT "In-Reply-To: <outreach-1." TOKEN "@b.example>\n"

static void test_malformed(void)
{
    refused("\nhello\n", -EINVAL, "not an e-mail message: no header fields");
    refused("Subject: hello\nFrom: a@b.example\n\nhi\n", -EINVAL,
            "not a reply: the message has neither In-Reply-To nor References");
    refused("Subject: hello\nIn-Reply-To: <CAx@mail.gmail.com>\nReferences: <outreach-1.short@b>\n"
            "\nhi\n",
            -ENOENT, "In-Reply-To and References name no <outreach-N.TOKEN@...> message id");
    refused(IRT "Content-Type: multipart/alternative\n\nhi\n", -EINVAL,
            "Content-Type: multipart/alternative without a boundary");
    refused(IRT "Content-Type: multipart/mixed; boundary=b\n\nno delimiter here\n", -EINVAL,
            "multipart/mixed: no part starts with its boundary '--b'");
    refused(IRT "Content-Type: text/plain; charset=\"utf-8\n\nhi\n", -EINVAL,
            "parameter charset: the quoted value has no closing '\"'");
    refused(IRT "Content-Type: multipart/mixed; boundary=\"\"\n\n--\n", -EINVAL,
            "parameter boundary: empty");
    {
        static char big[2400];
        int n = snprintf(big, sizeof big, IRT "Content-Type: multipart/mixed; boundary=");
        memset(big + n, 'b', 300);
        snprintf(big + n + 300, sizeof big - (size_t)n - 300, "\n\nhi\n");
        refused(big, -EFBIG,
                "parameter boundary: 300 bytes, longer than the 199 this reader keeps");
    }
    refused(IRT "Content-Transfer-Encoding: base64\n\n!!not base64!!\n", -EINVAL,
            "the text part is not base64 as its Content-Transfer-Encoding says");
    refused(IRT "Content-Transfer-Encoding: x-uuencode\n\nbegin 644\n", -EINVAL,
            "Content-Transfer-Encoding: 'x-uuencode' is not one of");
    refused(IRT "Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\n", -EINVAL,
            "charset 'koi8-r' of the text part is not supported");
    refused(IRT "Content-Type: text/plain; charset=utf-8\n\nGr\xfc\xdf\x65\n", -EINVAL,
            "the text part says charset UTF-8 but is not valid UTF-8");
    refused("Subject: =?utf-8?B?//79?=\n" IRT "\nhi\n", -EINVAL,
            "Subject: an encoded word is not valid utf-8");
    static struct outreach_reply r;
    static const char nul[] = "Subject: x\n" IRT "\nab\0cd";
    op_error_clear(&err);
    CHECK_EQ(outreach_reply_parse(nul, sizeof nul - 1, &r, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "a NUL byte at byte");
    char *big = malloc(OUTREACH_REPLY_MAX + 2);
    memset(big, 'x', OUTREACH_REPLY_MAX + 1);
    op_error_clear(&err);
    CHECK_EQ(outreach_reply_parse(big, OUTREACH_REPLY_MAX + 1, &r, &err), -EFBIG);
    CHECK_CONTAINS(err.msg, "larger than 1048576 bytes");
    free(big);
    op_error_clear(&err);
    CHECK_EQ(outreach_reply_parse("", 0, &r, &err), -EINVAL);
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

/* An e-mail to the contact, sent with token tok. */
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

#define TOK1 "tok1tok1tok1tok1tok1tok1tok1tok1tok1tok1tok"
#define TOK2 "tok2tok2tok2tok2tok2tok2tok2tok2tok2tok2tok"

static void test_match(void)
{
    char *a = new_contact("ana@example.org");
    int64_t m1 = sent_with(a, TOK1), m2 = sent_with(a, TOK2);
    static struct outreach_reply r;
    struct outreach_reply_result res;
    int64_t acts = count("SELECT count(*) FROM activities");

    /* a reply to another sender's (or an erased) message: nothing changes */
    CHECK_EQ(parse_text(THUNDERBIRD(TOKEN), &r), 0);
    op_error_clear(&err);
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 500, &res, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "no message of this node has the message id this reply answers");
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), 0);
    CHECK_EQ(count("SELECT count(*) FROM activities"), acts);

    /* the reply: the activity, the event, the outcome */
    CHECK_EQ(parse_text(THUNDERBIRD(TOK1), &r), 0);
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 1000, &res, &err), 0);
    CHECK_EQ(res.message_id, m1);
    CHECK_EQ(res.duplicate, 0);
    CHECK_EQ(res.automatic, 0);
    CHECK_EQ(strlen(res.activity_id) > 0, 1);
    CHECK_EQ(count("SELECT count(*) FROM activities WHERE channel = 'email' AND direction = "
                   "'inbound' AND subject = 'Re: Ihre Quittung' AND body LIKE 'Danke, die "
                   "Quittung%Ana'"),
             1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'replied'"), 1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE kind = 'replied' AND detail = "
                   "'reply Message-ID <5b1e0c7a-1f0e-4c2b-9d1e-3f0a7c2d9e11@example.org>'"),
             1);
    /* the same reply again: nothing changes */
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 2000, &res, &err), 0);
    CHECK_EQ(res.duplicate, 1);
    CHECK_EQ(count("SELECT count(*) FROM activities"), acts + 1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), 1);

    /* an auto-reply to the second: an event only, no activity, no reply */
    CHECK_EQ(parse_text(AUTOREPLY(TOK2, "Auto-Submitted: auto-replied\n"), &r), 0);
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 3000, &res, &err), 0);
    CHECK_EQ(res.message_id, m2);
    CHECK_EQ(res.automatic, 1);
    CHECK_EQ(count("SELECT count(*) FROM activities"), acts + 1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE message_id = 2 AND kind = "
                   "'auto_replied' AND detail = 'auto-reply Message-ID <auto-1@example.org>'"),
             1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE message_id = 2 AND kind <> "
                   "'auto_replied'"),
             0);
    /* it arrived, nobody answered: delivered, never replied */
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE id = 2 AND outcome = "
                   "'delivered'"),
             1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'replied'"), 1);
    /* the same auto-reply again: recorded once */
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 3500, &res, &err), 0);
    CHECK_EQ(res.duplicate, 1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE kind = 'auto_replied'"), 1);

    /* "unsubscribe" in the Subject: a reply and a withdrawal, suppressed */
    int sup = 0;
    CHECK_EQ(consent_is_suppressed(s, "email", NULL, "ana@example.org", &sup, &err), 0);
    CHECK_EQ(sup, 0);
    CHECK_EQ(parse_text("Message-ID: <u1@example.org>\nSubject: Re: unsubscribe\n"
                        "In-Reply-To: <outreach-2." TOK2 "@branch.example>\n\nplease\n",
                        &r),
             0);
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 4000, &res, &err), 0);
    CHECK_EQ(res.stop, 1);
    CHECK_EQ(consent_is_suppressed(s, "email", NULL, "ana@example.org", &sup, &err), 0);
    CHECK_EQ(sup, 1);
    sup = 0; /* for every purpose, not only the message's */
    CHECK_EQ(consent_is_suppressed(s, "email", "newsletter", "ana@example.org", &sup, &err), 0);
    CHECK_EQ(sup, 1);
    CHECK_EQ(count("SELECT count(*) FROM consents WHERE channel = 'email' AND purpose = "
                   "'receipts' AND status = 'withdrawn'"),
             1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events WHERE message_id = 2 AND kind = "
                   "'unsubscribed'"),
             1);
    CHECK_EQ(count("SELECT count(*) FROM outreach_messages WHERE outcome = 'replied'"), 2);

    /* an HTML-only reply: an activity with an empty body */
    CHECK_EQ(parse_text("Message-ID: <h1@example.org>\nSubject: Re: Ihre Quittung\n"
                        "In-Reply-To: <outreach-1." TOK1 "@branch.example>\n"
                        "Content-Type: text/html; charset=utf-8\n\n<p>Ja</p>\n",
                        &r),
             0);
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 4500, &res, &err), 0);
    CHECK_EQ(res.message_id, m1);
    CHECK_EQ(count("SELECT count(*) FROM activities WHERE channel = 'email' AND "
                   "coalesce(body, '') = ''"),
             1);

    /* erasure deletes the reply activities with the contact */
    struct subject_erase_report rep;
    CHECK_EQ(subject_erase(s, a, "request", (uint64_t)T0 + 5000, &rep, &err), 0);
    CHECK_EQ(count("SELECT count(*) FROM activities WHERE body LIKE '%Quittung%' OR body = "
                   "'please'"),
             0);
    /* and a reply after the erasure is not ours any more */
    CHECK_EQ(parse_text(THUNDERBIRD(TOK1), &r), 0);
    int64_t events = count("SELECT count(*) FROM outreach_events");
    CHECK_EQ(outreach_reply_apply(s, &r, T0 + 6000, &res, &err), -ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM outreach_events"), events);
    free(a);
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
    RUN(test_real_replies);
    RUN(test_round_trip);
    RUN(test_malformed);
    RUN(test_match);
    store_close(s);
    policy_free(pol);
    return tl_report();
}
