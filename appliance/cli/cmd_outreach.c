/*
 * `outpost outreach list|show|requeue|send-test`: the operator's view of
 * the outreach queue (docs/OUTREACH.md). outpostd sends; this command
 * reads the queue, puts a message whose outcome is unknown (or that
 * failed) back in it, and queues a test message to a contact.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "outreach.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost outreach list [--state S] [--limit N] [--db PATH]\n"
            "       outpost outreach show ID [--db PATH]\n"
            "       outpost outreach requeue ID [--db PATH]\n"
            "       outpost outreach send-test CONTACT [--db PATH]\n\n"
            "The queue of messages outpostd sends to contacts (docs/OUTREACH.md).\n\n"
            "  list       newest first: id, state, attempts, channel, purpose, contact, error\n"
            "             (--state queued|sending|sent|failed|unknown|refused; --limit 1..%d,\n"
            "             default 50)\n"
            "  show       one message as JSON, with the consent decision and rule\n"
            "  requeue    an unknown or failed message is sent again (an unknown one may\n"
            "             already be with the relay: check before requeueing)\n"
            "  send-test  queue a transactional test e-mail to the contact's address\n\n"
            "  --db PATH  database file (default: $OUTPOST_DB, else %s)\n\n"
            "Exit status: 0 ok, 1 failed, 2 usage, 3 bad input (nothing changed), 5 no such\n"
            "message or contact.\n",
            OUTREACH_LIST_MAX, CLI_DEFAULT_DB);
}

struct args {
    const char *state;
    int64_t limit;
};

static const struct cli_exit_rule rules[] = {{-EINVAL, CLI_BADINPUT}, {0, CLI_EXIT_FOR}};

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

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    if (c->npos < 1)
        return cli_bad(c, "expected list, show ID, requeue ID or send-test CONTACT");
    const char *sub = c->pos[0];
    int want = !strcmp(sub, "list")                                                             ? 1
               : (!strcmp(sub, "show") || !strcmp(sub, "requeue") || !strcmp(sub, "send-test")) ? 2
                                                                                                : 0;
    if (!want)
        return cli_bad(c, "unknown subcommand '%.40s' (list, show, requeue, send-test)", sub);
    if ((int)c->npos != want)
        return cli_bad(c, want == 1 ? "%s takes no arguments" : "%s takes exactly one argument",
                       sub);
    if ((a->state || a->limit) && strcmp(sub, "list"))
        return cli_bad(c, "--state and --limit are for list");
    if (a->state && !outreach_state_valid(a->state))
        return cli_bad(c,
                       "--state: '%.32s' is not one of queued, sending, sent, failed, unknown, "
                       "refused",
                       a->state);
    int64_t id = 0;
    if ((!strcmp(sub, "show") || !strcmp(sub, "requeue")) && parse_id(c, c->pos[1], &id) != CLI_OK)
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
    CLI_INT("limit", struct args, limit, 1, OUTREACH_LIST_MAX),
    CLI_OPT_END,
};

const struct cli_command cmd_outreach = {
    CLI_COMMAND("outreach", "the queue of messages to contacts: list, show, requeue, send-test",
                run, usage, opts, struct args),
};
