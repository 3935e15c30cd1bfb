/*
 * The SMS transport of outreach (docs/OUTREACH.md "SMS"): one text to one
 * number through an HTTP gateway, over libcurl's easy interface, blocking
 * (the outreach sender calls it from its own thread). Two gateway shapes:
 * Kannel's `sendsms` (GET with username, password, to, text, charset,
 * coding, dlr-mask, dlr-url) and a generic JSON gateway (POST of a body
 * template with {to}, {text} and {ref} slots, an Authorization header, the
 * gateway's message id read from the answer). It sees the number, the
 * text and the delivery-report token and nothing else; it cannot read the
 * store (the net room does not stand on it).
 *
 * The outcome is classified for the queue: sent (2xx); permanent (4xx:
 * the gateway refused this message or the node's credentials, never
 * retried, with the gateway's words); temporary (5xx, no connection, a
 * certificate that does not verify, a timeout before the request was
 * written); unknown (the request was written and no answer came: the
 * gateway may have it, so it must not be sent again blindly).
 */
#ifndef OUTPOST_SMS_GATEWAY_H
#define OUTPOST_SMS_GATEWAY_H

#include <stddef.h>

#include "op_error.h"

enum sms_gateway_kind { SMS_GATEWAY_KANNEL, SMS_GATEWAY_JSON };

#define SMS_GATEWAY_URL_MAX 512
#define SMS_GATEWAY_ID_MAX 128

struct sms_message {
    enum sms_gateway_kind kind;
    const char *url;       /* http(s)://... (plain http: loopback only, the caller checks) */
    const char *ca_file;   /* "" or NULL: the system's */
    const char *user;      /* Kannel username */
    const char *password;  /* Kannel password */
    const char *from;      /* sender id; "" or NULL: the gateway's default */
    const char *to;        /* E.164, "+" and digits */
    const char *text;      /* UTF-8 */
    int ucs2;              /* Kannel: coding=2 (the text is not GSM-7) */
    const char *dlr_url;   /* Kannel: the delivery-report URL ("" none) */
    const char *auth;      /* JSON: the Authorization header's value ("" none) */
    const char *json_body; /* JSON: the body template */
    const char *json_id;   /* JSON: the answer's member with the message id ("a" or "a.b") */
    const char *ref;       /* JSON: the value of {ref} */
    long timeout_ms;
};

enum sms_outcome { SMS_SENT, SMS_TEMPORARY, SMS_PERMANENT, SMS_UNKNOWN };

struct sms_result {
    enum sms_outcome outcome;
    long status;                         /* the HTTP status, 0 if none */
    char gateway_id[SMS_GATEWAY_ID_MAX]; /* JSON: the gateway's message id, "" if none */
    char detail[256]; /* what happened, in the gateway's words when it gave any */
};

/* Once, from the main thread, before any send. */
int sms_gateway_global_init(struct op_error *err);

/* Reads "kannel:URL" or "json:URL" (URL http:// or https://, a host, an
 * optional port and path, no user, query or fragment) into *kind and url
 * (SMS_GATEWAY_URL_MAX). -EINVAL with err naming `key`. */
int sms_gateway_parse(const char *spec, enum sms_gateway_kind *kind, char *url, const char *key,
                      struct op_error *err);

/* 1 when the URL's host is loopback (127.0.0.0/8, ::1, localhost). */
int sms_gateway_is_loopback(const char *url);

/* The JSON body: tmpl with {to}, {text} and {ref} replaced by the values
 * escaped as JSON string contents (the template puts the quotes). A new
 * string, NULL when out of memory or when tmpl has no {to} or no {text}. */
char *sms_gateway_json_body(const char *tmpl, const char *to, const char *text, const char *ref);

/* Sends; the result is always filled. Returns 0 when sent, else -EIO. */
int sms_gateway_send(const struct sms_message *m, struct sms_result *r);

#endif
