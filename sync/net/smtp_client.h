/*
 * The SMTP transport of outreach (docs/OUTREACH.md): one message, already
 * built, to one relay through libcurl, STARTTLS required unless the caller
 * allows a plain relay (which it does only for one on loopback). Blocking:
 * the outreach sender calls it from its own thread. It sees the envelope
 * and the message bytes and nothing else; it cannot read the store (the
 * net room does not stand on it).
 *
 * The outcome is classified for the queue: sent (250 after DATA);
 * temporary (a 4xx answer, no connection, a timeout before the message
 * was handed over, a refused login: retry later); permanent (a 5xx answer); unknown (the
 * connection was lost after the whole message was handed over and before
 * the relay answered: it may have it, so it must not be sent again
 * blindly).
 */
#ifndef OUTPOST_SMTP_CLIENT_H
#define OUTPOST_SMTP_CLIENT_H

#include <stddef.h>

#include "op_error.h"

struct smtp_message {
    const char *relay;   /* smtp://host[:port] (STARTTLS) or smtps://host[:port] */
    int allow_plain;     /* smtp:// without STARTTLS (loopback relays only) */
    const char *ca_file; /* "" or NULL: the system's */
    const char *user;    /* "" or NULL: no AUTH */
    const char *password;
    const char *from; /* envelope sender */
    const char *to;   /* envelope recipient */
    const char *data; /* the RFC 5322 message, CRLF line ends */
    size_t len;
    long timeout_ms; /* the whole transaction */
};

enum smtp_outcome { SMTP_SENT, SMTP_TEMPORARY, SMTP_PERMANENT, SMTP_UNKNOWN };

struct smtp_result {
    enum smtp_outcome outcome;
    long code;        /* the relay's last reply code, 0 if none */
    char detail[256]; /* what happened, for the message's error column */
};

/* Once, from the main thread, before any send. */
int smtp_client_global_init(struct op_error *err);

/* Sends; the result is always filled. Returns 0 when sent, else -EIO. */
int smtp_client_send(const struct smtp_message *m, struct smtp_result *r);

/* 1 when the relay URL's host is loopback (127.0.0.0/8, ::1, localhost). */
int smtp_client_relay_is_loopback(const char *relay);

/* Checks a relay URL: scheme smtp or smtps, a host, an optional port,
 * nothing after. -EINVAL with err naming `key`. */
int smtp_client_check_relay(const char *relay, const char *key, struct op_error *err);

#endif
