/*
 * `outpost outreach list|show|requeue|send-test|print|calls|call-result|
 * bounce|reply`: the operator's view of the outreach queue (docs/OUTREACH.md).
 * outpostd sends e-mail; this command reads the queue, puts a message
 * whose outcome is unknown (or that failed) back in it, queues a test
 * message, hands out the printed mail and call lists as files, records a
 * call's result, and takes a returned delivery status notification or a
 * contact's reply from the MTA on its standard input.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "call_list.h"
#include "cli.h"
#include "outreach.h"
#include "outreach_bounce.h"
#include "outreach_events.h"
#include "outreach_handout.h"
#include "outreach_reply.h"
#include "print_letters.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost outreach list [--state S] [--limit N] [--db PATH]\n"
            "       outpost outreach show ID [--db PATH]\n"
            "       outpost outreach requeue ID [--db PATH]\n"
            "       outpost outreach send-test CONTACT [--db PATH]\n"
            "       outpost outreach print --out FILE.pdf [--labels] [--paper a4|letter]\n"
            "                              [--sender-file FILE] [--limit N] [--db PATH]\n"
            "       outpost outreach calls --out FILE.csv [--limit N] [--db PATH]\n"
            "       outpost outreach call-result ID answered|no-answer|refused|wrong-number\n"
            "                              [--note TEXT] [--db PATH]\n"
            "       outpost outreach bounce [--hard-bounce-limit N] [--db PATH] < REPORT\n"
            "       outpost outreach reply [--db PATH] < MESSAGE\n\n"
            "The queue of messages outpostd sends to contacts (docs/OUTREACH.md).\n\n"
            "  list       newest first: id, state, attempts, channel, purpose, contact, error\n"
            "             (--state queued|sending|sent|failed|unknown|refused; --limit 1..%d,\n"
            "             default 50)\n"
            "  show       one message as JSON, with the consent decision and rule\n"
            "  requeue    an unknown or failed message is sent again (an unknown one may\n"
            "             already be with the relay: check before requeueing)\n"
            "  send-test  queue a transactional test e-mail to the contact's address\n"
            "  print      the due printed mail as a PDF: letters (one a page; --sender-file\n"
            "             holds the sender's postal address) or --labels (3 x 8 on A4, 3 x 10\n"
            "             on Letter); the messages are sent once the file is in place\n"
            "  calls      the due calls as CSV (name, E.164 number, language, script,\n"
            "             consent, call window, message id)\n"
            "  call-result  what came of a listed call: an event, an activity on the\n"
            "             contact, and for refused a withdrawal of consent for calls\n"
            "  bounce     a delivery status notification (RFC 3464) on standard input, at\n"
            "             most 1 MiB: 5.x.x a hard bounce, 4.x.x a soft one; after\n"
            "             --hard-bounce-limit hard bounces (default 2) the contact's\n"
            "             address is suppressed for e-mail\n"
            "  reply      a contact's answer to an outreach e-mail on standard input, at\n"
            "             most 1 MiB: an inbound activity and the outcome replied; an\n"
            "             auto-reply is an event only; a Subject of only unsubscribe or\n"
            "             STOP also withdraws e-mail marketing consent\n\n"
            "  --db PATH  database file (default: $OUTPOST_DB, else %s)\n\n"
            "Exit status: 0 ok, 1 failed, 2 usage, 3 bad input (nothing changed), 5 no such\n"
            "message or contact (or no message of this node has the report's token or is\n"
            "the one the reply answers).\n",
            OUTREACH_LIST_MAX, CLI_DEFAULT_DB);
}

struct args {
    const char *state;
    int64_t limit;
    const char *out;
    int labels;
    int paper;
    const char *sender_file;
    const char *note;
    int64_t bounce_limit;
};

static const struct cli_exit_rule rules[] = {
    {-EINVAL, CLI_BADINPUT}, {-EFBIG, CLI_BADINPUT}, {0, CLI_EXIT_FOR}};

static int parse_id(const struct cli_call *c, const char *text, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 1)
        return cli_bad(c, "'%.40s' is not a message id (a whole number from 1)", text);
    *id = v;
    return CLI_OK;
}

static int do_list(struct store *s, const struct args *a)
{
    json_t *arr = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = outreach_list(s, a->state, a->limit ? (unsigned)a->limit : 50, &arr, &err);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        printf("%" JSON_INTEGER_FORMAT "\t%s\t%" JSON_INTEGER_FORMAT "\t%s\t%s\t%s\t%s\n",
               json_integer_value(json_object_get(m, "id")),
               json_string_value(json_object_get(m, "state")),
               json_integer_value(json_object_get(m, "attempts")),
               json_string_value(json_object_get(m, "channel")),
               json_string_value(json_object_get(m, "purpose")),
               json_string_value(json_object_get(m, "contact_id")),
               json_string_value(json_object_get(m, "error")));
    }
    if (a->state && !strcmp(a->state, "unknown") && json_array_size(arr))
        fprintf(stderr,
                "%zu message(s) with an unknown outcome: the relay may have them (outpostd "
                "stopped during the send, or the connection was lost after the hand-over). "
                "'outpost outreach requeue ID' sends one again.\n",
                json_array_size(arr));
    json_decref(arr);
    return CLI_OK;
}

/* Reads a small text file (the sender's address) into buf. */
static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "outpost outreach: --sender-file: cannot read %s: %s\n", path,
                strerror(errno));
        return CLI_FAIL;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    int big = !feof(f);
    fclose(f);
    buf[n] = '\0';
    if (big || memchr(buf, '\0', n)) {
        fprintf(stderr,
                "outpost outreach: --sender-file: %s is not a short text (at most %zu "
                "bytes)\n",
                path, cap - 1);
        return CLI_BADINPUT;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return CLI_OK;
}

/* print and calls: recover, take, write the file, record. */
static int do_handout(struct store *s, const char *channel, const struct args *a)
{
    struct op_error err;
    op_error_clear(&err);
    char sender[1024] = "";
    if (!strcmp(channel, "print") && a->sender_file) {
        int ret = read_small(a->sender_file, sender, sizeof sender);
        if (ret != CLI_OK)
            return ret;
    }
    if (!strcmp(channel, "print") && !a->labels && !sender[0]) {
        fprintf(stderr, "outpost outreach: print: letters need the sender's postal address "
                        "(--sender-file FILE), or print --labels\n");
        return CLI_USAGE;
    }
    const struct policy *p = store_policy(s);
    if (!p) {
        fprintf(stderr, "outpost outreach: no region policy is loaded: consent cannot be "
                        "decided, so nothing is handed out\n");
        return CLI_FAIL;
    }
    int64_t unknown = 0;
    int rc = outreach_handout_recover(s, channel, &unknown, &err);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    if (unknown)
        fprintf(stderr,
                "%" PRId64 " %s message(s) were taken by a run that stopped before recording "
                "its file: they are now unknown and not handed out again ('outpost outreach list "
                "--state unknown'; 'requeue ID' to hand one out again)\n",
                unknown, channel);
    struct outreach_handout h;
    rc = outreach_handout_take(s, p, channel, a->limit ? (unsigned)a->limit : 1000, 0, &h, &err);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    if (h.refused || h.failed)
        fprintf(stderr, "%" PRId64 " refused by consent, %" PRId64 " failed (no %s)\n", h.refused,
                h.failed, !strcmp(channel, "print") ? "postal address" : "valid phone number");
    if (!h.n) {
        printf("nothing due: no file written\n");
        outreach_handout_free(&h);
        return CLI_OK;
    }
    if (!strcmp(channel, "print")) {
        struct print_options o = {.paper = a->paper == 1 ? PRINT_LETTER : PRINT_A4,
                                  .labels = a->labels,
                                  .sender = sender,
                                  .country = p->country,
                                  .format = p->address_format,
                                  .language = p->language};
        rc = print_letters_write(a->out, &h, &o, &err);
    } else {
        char window[CALL_LIST_WINDOW_MAX];
        call_list_window(&p->quiet_call, p->time_zone, window, sizeof window);
        rc = call_list_write(a->out, &h, window, &err);
    }
    if (rc < 0) {
        struct op_error rerr;
        op_error_clear(&rerr);
        if (outreach_handout_release(s, &h, err.msg, &rerr) < 0)
            fprintf(stderr, "outpost outreach: cannot put the messages back in the queue: %s\n",
                    rerr.msg);
        outreach_handout_free(&h);
        static const struct cli_exit_rule write_rules[] = {{-EINVAL, CLI_BADINPUT}, {0, CLI_FAIL}};
        return cli_fail_by("outreach", rc, &err, write_rules);
    }
#ifdef OUTPOST_TEST_HOOKS
    /* Only in outpost-test-hooks (or a build with -Dtest_hooks=true), never
     * in the packaged binary: the tests' kill -9 between file and record. */
    if (getenv("OUTPOST_TEST_STOP_AFTER_FILE"))
        pause();
#endif
    rc = outreach_handout_done(s, &h, 0, &err);
    size_t n = h.n;
    outreach_handout_free(&h);
    if (rc < 0) {
        fprintf(stderr,
                "outpost outreach: %s is written but the messages could not be recorded "
                "as sent (%s): the next run reports them as unknown\n",
                a->out, err.msg);
        return CLI_FAIL;
    }
    printf("%zu %s written to %s\n", n,
           !strcmp(channel, "call") ? "calls"
           : a->labels              ? "labels"
                                    : "letters",
           a->out);
    return CLI_OK;
}

static int do_bounce(struct store *s, const struct args *a)
{
    static char buf[OUTREACH_BOUNCE_MAX + 1];
    size_t n = 0;
    for (;;) {
        size_t got = fread(buf + n, 1, sizeof buf - n, stdin);
        n += got;
        if (!got || n == sizeof buf)
            break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "outpost outreach: bounce: cannot read standard input\n");
        return CLI_FAIL;
    }
    struct op_error err;
    op_error_clear(&err);
    struct outreach_dsn d;
    int rc = outreach_dsn_parse(buf, n, &d, &err);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    int64_t id = 0;
    int dup = 0, sup = 0;
    rc = outreach_bounce_apply(
        s, &d, a->bounce_limit ? (unsigned)a->bounce_limit : OUTREACH_HARD_BOUNCE_LIMIT, 0, &id,
        &dup, &sup, &err);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    if (dup)
        printf("message %" PRId64 ": this report was recorded before; nothing changed\n", id);
    else
        printf("message %" PRId64 ": %s (%s)%s\n", id, d.kind, d.status,
               sup ? "; the contact's e-mail address is now suppressed" : "");
    return CLI_OK;
}

static int do_reply(struct store *s)
{
    static char buf[OUTREACH_REPLY_MAX + 1];
    size_t n = 0;
    for (;;) {
        size_t got = fread(buf + n, 1, sizeof buf - n, stdin);
        n += got;
        if (!got || n == sizeof buf)
            break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "outpost outreach: reply: cannot read standard input\n");
        return CLI_FAIL;
    }
    struct op_error err;
    op_error_clear(&err);
    static struct outreach_reply r;
    int rc = outreach_reply_parse(buf, n, &r, &err);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    struct outreach_reply_result res;
    rc = outreach_reply_apply(s, &r, 0, &res, &err);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    if (res.duplicate)
        printf("message %" PRId64 ": this reply was recorded before; nothing changed\n",
               res.message_id);
    else if (res.automatic)
        printf("message %" PRId64 ": an automatic reply, recorded as an event only\n",
               res.message_id);
    else
        printf("message %" PRId64 ": replied (activity %s)%s\n", res.message_id, res.activity_id,
               res.stop ? "; the contact's e-mail marketing consent is withdrawn" : "");
    return CLI_OK;
}

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    if (c->npos < 1)
        return cli_bad(c, "expected list, show ID, requeue ID, send-test CONTACT, print, calls, "
                          "call-result ID RESULT, bounce or reply");
    const char *sub = c->pos[0];
    int handout = !strcmp(sub, "print") || !strcmp(sub, "calls");
    int want = (!strcmp(sub, "list") || handout || !strcmp(sub, "bounce") || !strcmp(sub, "reply"))
                   ? 1
               : (!strcmp(sub, "show") || !strcmp(sub, "requeue") || !strcmp(sub, "send-test")) ? 2
               : !strcmp(sub, "call-result")                                                    ? 3
                                                                                                : 0;
    if (!want)
        return cli_bad(c,
                       "unknown subcommand '%.40s' (list, show, requeue, send-test, print, "
                       "calls, call-result, bounce, reply)",
                       sub);
    if ((int)c->npos != want)
        return cli_bad(c,
                       want == 1   ? "%s takes no arguments"
                       : want == 2 ? "%s takes exactly one argument"
                                   : "%s takes a message id and a result",
                       sub);
    if (a->state && strcmp(sub, "list"))
        return cli_bad(c, "--state is for list");
    if (a->limit > OUTREACH_LIST_MAX && !strcmp(sub, "list"))
        return cli_bad(c, "--limit: expected 1 to %d for list", OUTREACH_LIST_MAX);
    if (a->limit && strcmp(sub, "list") && !handout)
        return cli_bad(c, "--limit is for list, print and calls");
    if (a->out && !handout)
        return cli_bad(c, "--out is for print and calls");
    if (handout && !a->out)
        return cli_bad(c, "%s needs --out FILE", sub);
    if ((a->labels || a->paper || a->sender_file) && strcmp(sub, "print"))
        return cli_bad(c, "--labels, --paper and --sender-file are for print");
    if (a->note && strcmp(sub, "call-result"))
        return cli_bad(c, "--note is for call-result");
    if (a->bounce_limit && strcmp(sub, "bounce"))
        return cli_bad(c, "--hard-bounce-limit is for bounce");
    int result = -1;
    if (!strcmp(sub, "call-result")) {
        result = outreach_call_result_parse(c->pos[2]);
        if (result < 0)
            return cli_bad(c,
                           "'%.40s' is not a call result (answered, no-answer, refused, "
                           "wrong-number)",
                           c->pos[2]);
    }
    if (a->state && !outreach_state_valid(a->state))
        return cli_bad(c,
                       "--state: '%.32s' is not one of queued, sending, sent, failed, unknown, "
                       "refused",
                       a->state);
    int64_t id = 0;
    if ((!strcmp(sub, "show") || !strcmp(sub, "requeue") || !strcmp(sub, "call-result")) &&
        parse_id(c, c->pos[1], &id) != CLI_OK)
        return CLI_USAGE;

    struct store *s;
    int ret = cli_open_store("outreach", c->db_path, 0, &s);
    if (ret != CLI_OK)
        return ret;
    struct op_error err;
    op_error_clear(&err);
    int rc = 0;
    if (!strcmp(sub, "list")) {
        ret = do_list(s, a);
    } else if (handout) {
        ret = do_handout(s, !strcmp(sub, "print") ? "print" : "call", a);
    } else if (!strcmp(sub, "bounce")) {
        ret = do_bounce(s, a);
    } else if (!strcmp(sub, "reply")) {
        ret = do_reply(s);
    } else if (!strcmp(sub, "call-result")) {
        char act[40] = "";
        rc = outreach_call_result(s, id, (enum outreach_call_result)result, a->note, 0, act, &err);
        if (rc == 0)
            printf("message %" PRId64 ": %s recorded (activity %s)\n", id, c->pos[2], act);
    } else if (!strcmp(sub, "show")) {
        json_t *m = NULL;
        rc = outreach_get(s, id, &m, &err);
        if (rc == 0) {
            char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("%s\n", text ? text : "{}");
            free(text);
            json_decref(m);
        }
    } else if (!strcmp(sub, "requeue")) {
        rc = outreach_requeue(s, id, 0, &err);
        if (rc == 0)
            printf("message %" PRId64 " is queued again\n", id);
    } else {
        rc = outreach_queue_test(s, c->pos[1], 0, &id, &err);
        if (rc == 0)
            printf("queued test message %" PRId64 "\n", id);
    }
    store_close(s);
    if (rc < 0)
        return cli_fail_by("outreach", rc, &err, rules);
    return ret;
}

static const struct cli_option opts[] = {
    CLI_STR("state", struct args, state),
    CLI_INT("limit", struct args, limit, 1, OUTREACH_HANDOUT_MAX),
    CLI_FILE("out", struct args, out),
    CLI_FLAG("labels", struct args, labels),
    CLI_CHOICE("paper", struct args, paper, "a4", "letter"),
    CLI_FILE("sender-file", struct args, sender_file),
    CLI_STR("note", struct args, note),
    CLI_INT("hard-bounce-limit", struct args, bounce_limit, 1, 100),
    CLI_OPT_END,
};

const struct cli_command cmd_outreach = {
    CLI_COMMAND("outreach",
                "the queue of messages to contacts: list, show, requeue, send-test, print, "
                "calls, call-result, bounce, reply",
                run, usage, opts, struct args),
};
