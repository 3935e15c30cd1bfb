/*
 * Building outreach e-mails and the contact's pages; see outreach_mail.h.
 */
#include "outreach_mail.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "consent.h"

#define BODY_MAX (64 * 1024)

/* The texts, one row a language; the first is the fallback. */
static const struct texts {
    const char *lang;
    const char *confirm_subject;
    const char *test_subject;
    const char *test_body;
    const char *unsub_line; /* %s: the unsubscribe URL */
    const char *confirm_button;
    const char *confirm_ask;
    const char *confirmed;
    const char *unsub_button;
    const char *unsub_ask;
    const char *unsubscribed;
    const char *bad_link;
} texts[] = {
    {"en", "Please confirm your subscription", "Test message from Outpost",
     "This is a test message from the Outpost node. It needs no answer.\n",
     "To receive no further messages: %s\n", "Confirm",
     "Please confirm that you want to receive these messages.",
     "Thank you: your consent is confirmed.", "Unsubscribe",
     "Do you want to receive no further messages of this kind?",
     "You are unsubscribed: you will receive no further messages of this kind.",
     "This link is not valid. Check that the whole link was copied."},
    {"de", "Bitte bestätigen Sie Ihre Anmeldung", "Testnachricht von Outpost",
     "Dies ist eine Testnachricht des Outpost-Knotens. Sie brauchen nicht zu antworten.\n",
     "Keine weiteren Nachrichten erhalten: %s\n", "Bestätigen",
     "Bitte bestätigen Sie, dass Sie diese Nachrichten erhalten möchten.",
     "Danke: Ihre Einwilligung ist bestätigt.", "Abmelden",
     "Möchten Sie keine weiteren Nachrichten dieser Art erhalten?",
     "Sie sind abgemeldet: Sie erhalten keine weiteren Nachrichten dieser Art.",
     "Dieser Link ist ungültig. Prüfen Sie, ob der ganze Link kopiert wurde."},
    {"pt", "Confirme a sua inscrição", "Mensagem de teste do Outpost",
     "Esta é uma mensagem de teste do nó Outpost. Não precisa de resposta.\n",
     "Para não receber mais mensagens: %s\n", "Confirmar",
     "Confirme que deseja receber estas mensagens.",
     "Obrigado: o seu consentimento está confirmado.", "Cancelar inscrição",
     "Não deseja receber mais mensagens deste tipo?",
     "A sua inscrição foi cancelada: não receberá mais mensagens deste tipo.",
     "Este link não é válido. Verifique se copiou o link inteiro."},
    {"fr", "Veuillez confirmer votre inscription", "Message de test d'Outpost",
     "Ceci est un message de test du nœud Outpost. Il n'appelle pas de réponse.\n",
     "Pour ne plus recevoir de messages : %s\n", "Confirmer",
     "Veuillez confirmer que vous souhaitez recevoir ces messages.",
     "Merci : votre consentement est confirmé.", "Se désinscrire",
     "Ne souhaitez-vous plus recevoir de messages de ce type ?",
     "Vous êtes désinscrit : vous ne recevrez plus de messages de ce type.",
     "Ce lien n'est pas valide. Vérifiez que le lien a été copié en entier."},
    {"es", "Confirme su suscripción", "Mensaje de prueba de Outpost",
     "Este es un mensaje de prueba del nodo Outpost. No necesita respuesta.\n",
     "Para no recibir más mensajes: %s\n", "Confirmar",
     "Confirme que desea recibir estos mensajes.", "Gracias: su consentimiento está confirmado.",
     "Darse de baja", "¿No desea recibir más mensajes de este tipo?",
     "Se ha dado de baja: no recibirá más mensajes de este tipo.",
     "Este enlace no es válido. Compruebe que copió el enlace completo."},
    {"ru", "Подтвердите, пожалуйста, подписку", "Тестовое сообщение от Outpost",
     "Это тестовое сообщение узла Outpost. Отвечать на него не нужно.\n",
     "Чтобы больше не получать сообщения: %s\n", "Подтвердить",
     "Пожалуйста, подтвердите, что вы хотите получать эти сообщения.",
     "Спасибо: ваше согласие подтверждено.", "Отписаться",
     "Вы хотите больше не получать сообщения такого рода?",
     "Вы отписались: сообщения такого рода больше не будут приходить.",
     "Эта ссылка недействительна. Проверьте, что ссылка скопирована полностью."},
};
#define NTEXTS (sizeof texts / sizeof texts[0])

static const struct texts *pick(const char *lang)
{
    char primary[8] = "";
    if (lang) {
        size_t n = strcspn(lang, "-_");
        if (n < sizeof primary) {
            for (size_t i = 0; i < n; i++)
                primary[i] = (char)tolower((unsigned char)lang[i]);
            primary[n] = '\0';
        }
    }
    for (size_t i = 0; i < NTEXTS; i++)
        if (!strcmp(texts[i].lang, primary))
            return &texts[i];
    return NULL;
}

const char *outreach_mail_language(const char *lang, const struct policy *p)
{
    const struct texts *t = lang && *lang ? pick(lang) : NULL;
    if (!t && p)
        t = pick(p->language);
    return t ? t->lang : "en";
}

int outreach_mail_header_safe(const char *text)
{
    if (!text || !*text || strlen(text) > 320)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr("<>,\"", *p))
            return 0;
    return 1;
}

/* A growing buffer. */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096) + n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void adds(struct buf *b, const char *s)
{
    add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void addf(struct buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1;
        return;
    }
    add(b, tmp, (size_t)n);
}

/* base64 of text, in lines of 76 with CRLF. */
static void add_b64_lines(struct buf *b, const char *text, size_t n)
{
    size_t cap = codec_b64_len(n, 0) + 1;
    char *enc = malloc(cap);
    if (!enc || codec_b64_encode(text, n, 0, enc, cap) < 0) {
        free(enc);
        b->oom = 1;
        return;
    }
    size_t elen = strlen(enc);
    for (size_t i = 0; i < elen; i += 76) {
        add(b, enc + i, elen - i < 76 ? elen - i : 76);
        adds(b, "\r\n");
    }
    free(enc);
}

/* RFC 2047 encoded word for a UTF-8 subject (B encoding, split so that no
 * encoded word exceeds 75 characters and no UTF-8 sequence is cut). */
static void add_subject(struct buf *b, const char *subject)
{
    adds(b, "Subject:");
    size_t n = strlen(subject), i = 0;
    if (!n)
        adds(b, " ");
    while (i < n) {
        size_t take = n - i < 45 ? n - i : 45;
        while (take > 1 && i + take < n && ((unsigned char)subject[i + take] & 0xC0) == 0x80)
            take--;
        char enc[80];
        if (codec_b64_encode(subject + i, take, 0, enc, sizeof enc) < 0) {
            b->oom = 1;
            return;
        }
        addf(b, "%s=?UTF-8?B?%s?=\r\n", i ? " " : " ", enc);
        i += take;
    }
    if (!n)
        adds(b, "\r\n");
}

static int has_ctl_but_newline(const char *t)
{
    for (; t && *t; t++)
        if (((unsigned char)*t < 0x20 && *t != '\n' && *t != '\t') || *t == 0x7f)
            return 1;
    return 0;
}

int outreach_mail_build(const struct outreach_mail_in *in, char **out, size_t *len,
                        char lang_used[8], struct op_error *err)
{
    if (!outreach_mail_header_safe(in->from) || !strchr(in->from, '@'))
        return op_error_set(err, -EINVAL, "outreach_from",
                            "outreach_from: '%.64s' is not a plain e-mail address", in->from);
    if (!outreach_mail_header_safe(in->to) || !strchr(in->to, '@'))
        return op_error_set(err, -EINVAL, "email",
                            "the contact's e-mail address is not one a message can go to");
    if (in->bounce_token && !outreach_mail_header_safe(in->bounce_token))
        return op_error_set(err, -EINVAL, "bounce_token", "the bounce token cannot go in a header");
    if (!outreach_mail_header_safe(in->public_url) || !outreach_mail_header_safe(in->unsub_token))
        return op_error_set(err, -EINVAL, "outreach_public_url",
                            "outreach_public_url: not a URL that can go in a header");
    const char *lang = outreach_mail_language(in->language, in->policy);
    const struct texts *t = pick(lang);
    snprintf(lang_used, 8, "%s", lang);

    const char *base = in->public_url;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    char unsub_url[512];
    snprintf(unsub_url, sizeof unsub_url, "%.*s/o/unsubscribe/%s?l=%s", (int)blen, base,
             in->unsub_token, lang);

    /* subject and body */
    const char *subject = in->subject ? in->subject : "";
    char *body = malloc(BODY_MAX);
    if (!body)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    body[0] = '\0';
    if (!strcmp(in->tmpl, "confirm")) {
        char link[512];
        snprintf(link, sizeof link, "%.*s/o/confirm?t=%s&l=%s", (int)blen, base,
                 in->confirm_token ? in->confirm_token : "", lang);
        if (!in->confirm_token || !outreach_mail_header_safe(in->confirm_token) ||
            consent_confirmation_text(NULL, lang, in->purpose ? in->purpose : "", link, body,
                                      BODY_MAX) < 0) {
            free(body);
            return op_error_set(err, -EINVAL, "params",
                                "the confirmation message cannot be built from its token");
        }
        subject = t->confirm_subject;
    } else if (!strcmp(in->tmpl, "test")) {
        snprintf(body, BODY_MAX, "%s", t->test_body);
        subject = t->test_subject;
    } else if (in->tmpl[0]) {
        free(body);
        return op_error_set(err, -EINVAL, "template", "template: '%.32s' is not known", in->tmpl);
    } else {
        if (has_ctl_but_newline(in->body) || has_ctl_but_newline(in->subject)) {
            free(body);
            return op_error_set(err, -EINVAL, "body", "the message has control characters");
        }
        snprintf(body, BODY_MAX, "%s", in->body ? in->body : "");
    }
    if (strchr(subject, '\n') || strchr(subject, '\r')) {
        free(body);
        return op_error_set(err, -EINVAL, "subject", "subject: a line break is not allowed");
    }
    size_t used = strlen(body);
    int w = snprintf(body + used, BODY_MAX - used, "\n--\n");
    used += w > 0 ? (size_t)w : 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    w = snprintf(body + used, BODY_MAX - used, t->unsub_line, unsub_url);
#pragma GCC diagnostic pop
    used += w > 0 ? (size_t)w : 0;
    /* CAN-SPAM 15 U.S.C. 7704(a)(5)(A)(iii): a valid physical postal address */
    if (in->policy && !strcmp(in->policy->country, "US") && in->postal_address &&
        *in->postal_address)
        snprintf(body + used, BODY_MAX - used, "%s\n", in->postal_address);

    /* headers */
    char date[64];
    time_t secs = (time_t)(in->now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *domain = strchr(in->from, '@') + 1;
    struct buf b = {0};
    addf(&b, "From: %s\r\n", in->from);
    addf(&b, "To: %s\r\n", in->to);
    add_subject(&b, subject);
    addf(&b, "Date: %s\r\n", date);
    /* With a bounce token, the Message-ID carries it: a reply names it in
     * In-Reply-To/References and is matched by the token's hash
     * (outreach_reply.h). */
    if (in->bounce_token && in->bounce_token[0])
        addf(&b, "Message-ID: <outreach-%lld.%s@%s>\r\n", (long long)in->id, in->bounce_token,
             domain);
    else
        addf(&b, "Message-ID: <outreach-%lld.%s@%s>\r\n", (long long)in->id,
             in->node_id ? in->node_id : "node", domain);
    adds(&b, "MIME-Version: 1.0\r\n");
    adds(&b, "Content-Type: text/plain; charset=utf-8\r\n");
    adds(&b, "Content-Transfer-Encoding: base64\r\n");
    addf(&b, "Content-Language: %s\r\n", lang);
    addf(&b, "List-Unsubscribe: <%s>, <mailto:%s?subject=unsubscribe%%20%s>\r\n", unsub_url,
         in->from, in->unsub_token);
    adds(&b, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    addf(&b, "X-Outpost-Message: %lld\r\n", (long long)in->id);
    if (in->bounce_token && in->bounce_token[0])
        addf(&b, "X-Outpost-Bounce: %s\r\n", in->bounce_token);
    adds(&b, "\r\n");
    add_b64_lines(&b, body, strlen(body));
    free(body);
    if (b.oom) {
        free(b.p);
        return op_error_set(err, -ENOMEM, NULL, "out of memory building the message");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* Text into HTML: &, <, >, " escaped. */
static void add_html(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            adds(b, "&amp;");
            break;
        case '<':
            adds(b, "&lt;");
            break;
        case '>':
            adds(b, "&gt;");
            break;
        case '"':
            adds(b, "&quot;");
            break;
        default:
            add(b, s, 1);
        }
    }
}

char *outreach_mail_page(enum outreach_page which, const char *lang, const char *action,
                         const char *token)
{
    const struct texts *t = pick(lang && *lang ? lang : "en");
    if (!t)
        t = &texts[0];
    struct buf b = {0};
    addf(&b,
         "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width\"><title>Outpost</title></head>"
         "<body>\n<p>",
         t->lang);
    const char *text = which == OUTREACH_PAGE_CONFIRM_ASK    ? t->confirm_ask
                       : which == OUTREACH_PAGE_CONFIRMED    ? t->confirmed
                       : which == OUTREACH_PAGE_UNSUB_ASK    ? t->unsub_ask
                       : which == OUTREACH_PAGE_UNSUBSCRIBED ? t->unsubscribed
                                                             : t->bad_link;
    add_html(&b, text);
    adds(&b, "</p>\n");
    if ((which == OUTREACH_PAGE_CONFIRM_ASK || which == OUTREACH_PAGE_UNSUB_ASK) && action &&
        token) {
        adds(&b, "<form method=\"post\" action=\"");
        add_html(&b, action);
        adds(&b, "\"><input type=\"hidden\" name=\"t\" value=\"");
        add_html(&b, token);
        adds(&b, "\"><button type=\"submit\">");
        add_html(&b, which == OUTREACH_PAGE_CONFIRM_ASK ? t->confirm_button : t->unsub_button);
        adds(&b, "</button></form>\n");
    }
    adds(&b, "</body></html>\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
