/*
 * Outreach messages as bytes: an RFC 5322 e-mail built from a queued row
 * (docs/OUTREACH.md, "The message"), and the fixed texts of the pages a
 * contact sees after confirming or unsubscribing, in the contact's
 * language with a fallback. Pure: no store, no network. The transport gets
 * exactly what this module builds.
 *
 * Invariants: every message carries List-Unsubscribe (the https URL and a
 * mailto) and List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC
 * 8058); an address or URL with a control character, space, '<', '>' or
 * ',' is refused (no header injection); the body is base64 of UTF-8 text.
 * A bounce token, when given, goes in X-Outpost-Bounce, which delivery
 * status notifications return with the original headers, and in the
 * Message-ID (outreach-ID.TOKEN@domain), which replies name in
 * In-Reply-To and References.
 */
#ifndef OUTPOST_OUTREACH_MAIL_H
#define OUTPOST_OUTREACH_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"
#include "policy.h"

struct outreach_mail_in {
    int64_t id;
    const char *node_id;
    const char *from;
    const char *to;
    const char *language;      /* the contact's; "" falls back to the policy's, then en */
    const char *tmpl;          /* "confirm", "test" or "" (subject and body given) */
    const char *purpose;       /* for confirm */
    const char *confirm_token; /* for confirm */
    const char *subject;
    const char *body;
    const char *public_url; /* https://host[:port], no trailing slash needed */
    const char *unsub_token;
    const char *bounce_token;   /* X-Outpost-Bounce (outreach_bounce.h); NULL or "" none */
    const char *postal_address; /* appended when the policy's country is US; "" none */
    const struct policy *policy;
    int64_t now_ms;
};

/* Builds the message into *out (malloc'd, CRLF line ends, *len bytes).
 * *lang_used (8 bytes) gets the language chosen. -EINVAL with err naming
 * the bad input; -ENOMEM. */
int outreach_mail_build(const struct outreach_mail_in *in, char **out, size_t *len,
                        char lang_used[8], struct op_error *err);

/* 1 when an address or URL is safe in a header (no control character,
 * space, '<', '>', ',', '"' and at most 320 bytes). */
int outreach_mail_header_safe(const char *text);

enum outreach_page {
    OUTREACH_PAGE_CONFIRM_ASK, /* the button that confirms */
    OUTREACH_PAGE_CONFIRMED,
    OUTREACH_PAGE_UNSUB_ASK, /* the button that unsubscribes */
    OUTREACH_PAGE_UNSUBSCRIBED,
    OUTREACH_PAGE_BAD_LINK
};

/* A small HTML page for the contact, in lang (fallback en). For the two
 * _ASK pages, action is the form's target and token its hidden field t
 * (both header-safe). Returns a malloc'd string or NULL. */
char *outreach_mail_page(enum outreach_page which, const char *lang, const char *action,
                         const char *token);

/* The primary subtag of lang if a text exists for it, else "en". */
const char *outreach_mail_language(const char *lang, const struct policy *p);

#endif
