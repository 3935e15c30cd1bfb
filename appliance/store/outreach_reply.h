/*
 * E-mail replies (docs/OUTREACH.md, "Replies"): a contact's answer to an
 * outreach e-mail, piped by the branch's MTA to `outpost outreach reply`,
 * becomes an inbound e-mail activity on the contact and the outcome
 * `replied` of the message it answers, in one transaction. The message is
 * found by the Message-ID the node put on it (outreach-ID.TOKEN@domain,
 * the attempt's unguessable bounce token, kept only as its SHA-256) that
 * the reply names in In-Reply-To or References.
 *
 * The parser is pure and bounded: at most OUTREACH_REPLY_MAX bytes; it
 * reads the header fields (unfolded), decodes RFC 2047 words in the
 * Subject, and takes the first text/plain part (nested multiparts,
 * quoted-printable or base64, UTF-8, US-ASCII, ISO-8859-1 or
 * windows-1252), up to the quoted original, cut to
 * OUTREACH_REPLY_BODY_MAX bytes. An automatic answer (Auto-Submitted
 * other than "no", Precedence bulk, junk, list or auto_reply) is only an
 * event on the message (kind delivered: it arrived), not a reply. A reply
 * whose Subject is only a stop word (unsubscribe, STOP, ... as for SMS,
 * after Re:/AW:/SV: prefixes) also withdraws the contact's e-mail
 * marketing consent, which puts the address on the suppression list.
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 * Nothing in the store changes on an error.
 */
#ifndef OUTPOST_OUTREACH_REPLY_H
#define OUTPOST_OUTREACH_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"
#include "outreach.h"
#include "store.h"

#define OUTREACH_REPLY_MAX (1024 * 1024) /* a reply larger than this is refused */
#define OUTREACH_REPLY_BODY_MAX 4000     /* bytes of the reply's text kept */
#define OUTREACH_REPLY_SUBJECT_MAX 300
#define OUTREACH_REPLY_REFS 8 /* message ids of this node looked at, at most */

struct outreach_reply {
    char tokens[OUTREACH_REPLY_REFS][OUTREACH_TOKEN_BUF]; /* In-Reply-To first */
    int ntokens;
    char id[256]; /* "Message-ID <...>" of the reply, or "sha256 <hex>" of it */
    char subject[OUTREACH_REPLY_SUBJECT_MAX + 1]; /* UTF-8 */
    char body[OUTREACH_REPLY_BODY_MAX + 1];       /* UTF-8, LF line ends */
    int automatic;                                /* an auto-reply */
    int stop;                                     /* the Subject is only a stop word */
};

/* Parses a reply into *out. -EFBIG larger than OUTREACH_REPLY_MAX;
 * -EINVAL empty, a NUL byte, no header, no In-Reply-To or References, a
 * multipart without boundary, a body that is not what its
 * Content-Transfer-Encoding says, an unknown charset or text that is not
 * in its charset (err->field names the header); -ENOENT when the reply
 * names no message id of the form this node writes. */
int outreach_reply_parse(const char *data, size_t len, struct outreach_reply *out,
                         struct op_error *err);

struct outreach_reply_result {
    int64_t message_id;
    int duplicate; /* this reply was recorded before: nothing changed */
    int automatic; /* recorded as an event only */
    int stop;      /* e-mail marketing consent withdrawn */
    char activity_id[40];
};

/* Matches a parsed reply to its message and records it in one
 * transaction: the activity (email, inbound, the Subject, the body), the
 * event replied (detail: the reply's id) and, for a stop word, the
 * withdrawal and the event unsubscribed. -ENOENT when no message of this
 * node has any of the tokens (nothing changed). now_ms 0 is now. */
int outreach_reply_apply(struct store *s, const struct outreach_reply *r, int64_t now_ms,
                         struct outreach_reply_result *res, struct op_error *err);

#endif
