/*
 * `outpost consent add|confirm|withdraw|check|list`: the consent ledger
 * from the command line (consent.h, docs/CONSENT.md). `check` prints the
 * derived permission and the rule that decided it and exits 0 when
 * allowed, 1 when not, so scripts can gate a send on it. A double opt-in
 * token is printed once, alone on stdout; the node keeps only its hash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "consent.h"
#include "outreach.h"
#include "db.h"
#include "policy.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost consent add CONTACT --channel C --purpose P --method M\n"
            "                           [--source S] [--text-version V] [--kind K]\n"
            "       outpost consent confirm TOKEN\n"
            "       outpost consent withdraw CONTACT --channel C --purpose P [--kind K]\n"
            "                           [--reason TEXT]\n"
            "       outpost consent check CONTACT CHANNEL PURPOSE [--kind K]\n"
            "       outpost consent list CONTACT\n"
            "Every form takes --db PATH (default: $OUTPOST_DB, else %s) and\n"
            "--policy FILE (default: $OUTPOST_POLICY, else the node region's policy).\n\n"
            "Channels: visit, call, sms, messaging_app, email, direct_mail, meeting.\n"
            "Kinds: marketing (default), transactional. Methods: double_opt_in,\n"
            "single_opt_in, opt_out, verbal, written, imported.\n\n"
            "add records consent as the region's mode for the channel says: on a\n"
            "double opt-in channel the record stays pending and a confirmation token\n"
            "is printed once on stdout (send the contact the link; 'confirm' or\n"
            "POST /api/v1/consents/confirm redeems it); on a single opt-in channel\n"
            "--source (where the consent was given) is required.\n"
            "withdraw takes effect at once and puts the contact's address on the\n"
            "suppression list for the channel.\n"
            "check prints 'allowed' or 'not allowed' and the rule that decided; exit 0\n"
            "when allowed, 1 when not.\n",
            CLI_DEFAULT_DB);
}

struct opts {
    const char *policy, *channel, *purpose, *method, *source, *text_version, *kind, *reason;
};

/* The policy for the command: --policy, else what cli_open_store set on
 * the store, else $OUTPOST_POLICY or the region's file. *owned is what
 * the caller frees. */
static int get_policy(struct store *s, const char *override, const struct policy **out,
                      struct policy **owned)
{
    *owned = NULL;
    if (!override && store_policy(s)) {
        *out = store_policy(s);
        return CLI_OK;
    }
    char path[1024];
    struct op_error err;
    op_error_clear(&err);
    const char *env = getenv("OUTPOST_POLICY");
    const char *region = store_region(s);
    if (override)
        snprintf(path, sizeof path, "%s", override);
    else if (env && *env)
        snprintf(path, sizeof path, "%s", env);
    else if (!region) {
        fprintf(stderr, "outpost consent: the node is not initialized; run 'outpost init'\n");
        return CLI_FAIL;
    } else if (policy_find_file(region, path, sizeof path, &err) < 0) {
        fprintf(stderr,
                "outpost consent: no region policy for %s: %s (or name one with --policy)\n",
                region, err.msg);
        return CLI_FAIL;
    }
    int rc = policy_load_file(path, owned, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost consent: invalid region policy: %s\n", err.msg);
        return CLI_FAIL;
    }
    if (region && strcmp((*owned)->region, region)) {
        fprintf(stderr, "outpost consent: %s is the policy of %s, but this node is in %s\n", path,
                (*owned)->region, region);
        policy_free(*owned);
        *owned = NULL;
        return CLI_FAIL;
    }
    *out = *owned;
    return CLI_OK;
}

/* A token already redeemed, or withdrawn before it was: a conflict. */
static const struct cli_exit_rule confirm_rules[] = {
    {-EALREADY, CLI_CONFLICT}, {-ECANCELED, CLI_CONFLICT}, {0, CLI_EXIT_FOR}};

static int do_add(struct store *s, const struct policy *p, const char *contact,
                  const struct opts *o)
{
    struct consent_request req = {
        .contact_id = contact,
        .channel = o->channel,
        .purpose = o->purpose,
        .kind = o->kind,
        .method = o->method,
        .source = o->source,
        .text_version = o->text_version,
    };
    char token[CONSENT_TOKEN_BUF];
    json_t *rec = NULL;
    struct op_error err;
    op_error_clear(&err);
    /* The consent and its confirmation message, in one transaction. */
    int64_t msg = 0;
    int rc = store_begin(s, &err);
    if (rc == 0)
        rc = consent_record(s, p, &req, 0, &rec, token, &err);
    if (rc == 0 && token[0])
        rc = outreach_queue_confirmation(s, contact, o->channel, o->purpose, token, 0, &msg, &err);
    if (rc == 0)
        rc = store_commit(s, &err);
    else
        store_rollback(s);
    if (rc < 0) {
        json_decref(rec);
        explicit_bzero(token, sizeof token);
        return cli_fail("consent", rc, &err);
    }
    const char *id = json_string_value(json_object_get(rec, "id"));
    const char *status = json_string_value(json_object_get(rec, "status"));
    if (token[0]) {
        printf("%s\n", token);
        fflush(stdout);
        explicit_bzero(token, sizeof token);
        const struct policy_consent_rule *r = policy_consent_for(p, o->channel);
        fprintf(stderr,
                "recorded consent %s (pending): %s %s is double opt-in, so nothing is sent for "
                "'%s' until the contact confirms.\n"
                "Send the contact the confirmation link with the token above (shown only this\n"
                "once; it expires in %u hours). 'outpost consent confirm TOKEN' redeems it.\n",
                id, p->region, o->channel, o->purpose,
                r && r->token_ttl_hours ? r->token_ttl_hours : CONSENT_TTL_DEFAULT);
        if (msg)
            fprintf(stderr,
                    "The confirmation e-mail is queued as outreach message %lld; outpostd sends "
                    "it through its relay (outpost outreach show %lld).\n",
                    (long long)msg, (long long)msg);
    } else {
        printf("recorded consent %s (%s)\n", id, status);
    }
    json_decref(rec);
    return CLI_OK;
}

static int do_list(struct store *s, const char *contact)
{
    struct op_error err;
    op_error_clear(&err);
    json_t *c = NULL;
    int rc = store_get(s, &entity_contact, contact, 0, &c, &err);
    json_decref(c);
    if (rc < 0)
        return cli_fail("consent", rc, &err);
    struct store_filter f = {"contact_id", contact};
    char cursor[STORE_CURSOR_MAX] = "";
    int n = 0;
    do {
        struct store_query q = {.cursor = cursor[0] ? cursor : NULL,
                                .limit = STORE_LIST_MAX,
                                .filters = &f,
                                .nfilters = 1};
        json_t *items = NULL;
        char next[STORE_CURSOR_MAX];
        rc = store_list(s, &entity_consent, &q, &items, next, &err);
        if (rc < 0)
            return cli_fail("consent", rc, &err);
        size_t i;
        json_t *r;
        json_array_foreach(items, i, r)
        {
            if (n++ == 0)
                printf("%-36s %-13s %-20s %-13s %-9s %-13s %-24s %-24s %s\n", "ID", "CHANNEL",
                       "PURPOSE", "KIND", "STATUS", "METHOD", "REQUESTED", "CONFIRMED",
                       "WITHDRAWN");
            const char *conf = json_string_value(json_object_get(r, "confirmed_at"));
            const char *wd = json_string_value(json_object_get(r, "withdrawn_at"));
            printf("%-36s %-13s %-20s %-13s %-9s %-13s %-24s %-24s %s\n",
                   json_string_value(json_object_get(r, "id")),
                   json_string_value(json_object_get(r, "channel")),
                   json_string_value(json_object_get(r, "purpose")),
                   json_string_value(json_object_get(r, "kind")),
                   json_string_value(json_object_get(r, "status")),
                   json_string_value(json_object_get(r, "method")),
                   json_string_value(json_object_get(r, "requested_at")), conf ? conf : "-",
                   wd ? wd : "-");
        }
        json_decref(items);
        snprintf(cursor, sizeof cursor, "%s", next);
    } while (cursor[0]);
    if (n == 0)
        fprintf(stderr, "no consent records for contact %s\n", contact);
    return CLI_OK;
}

enum { ADD, CONFIRM, WITHDRAW, CHECK, LIST };

static int run(const struct cli_call *c)
{
    static const int npos_of[] = {1, 1, 1, 3, 1};
    static const char *const pos_names[] = {"CONTACT", "TOKEN", "CONTACT",
                                            "CONTACT CHANNEL PURPOSE", "CONTACT"};
    const struct opts o = *(const struct opts *)c->args;
    int which = c->isub;
    char **pos = c->pos;
    int npos = c->npos;
    if (npos < npos_of[which])
        return cli_bad(c, "%s %s missing", pos_names[which], npos_of[which] > 1 ? "are" : "is");
    if (npos > npos_of[which])
        return cli_bad(c, "unexpected argument '%s'", pos[npos_of[which]]);
    int is_add = which == ADD, is_withdraw = which == WITHDRAW, is_check = which == CHECK;
    if ((is_add || is_withdraw) && (!o.channel || !o.purpose))
        return cli_bad(c, "--channel and --purpose are required");
    if (is_add && !o.method)
        return cli_bad(c, "--method is required (double_opt_in, single_opt_in, opt_out, verbal, "
                          "written, imported)");
    if (!is_add && (o.method || o.source || o.text_version))
        return cli_bad(c, "--method, --source and --text-version are for add");
    if (!(is_add || is_withdraw) && (o.channel || o.purpose))
        return cli_bad(c, "takes no --channel or --purpose%s",
                       is_check ? " (they are arguments: CONTACT CHANNEL PURPOSE)" : "");
    if (o.kind && !(is_add || is_withdraw || is_check))
        return cli_bad(c, "takes no --kind");
    if (o.reason && !is_withdraw)
        return cli_bad(c, "--reason is for withdraw");

    int readonly = is_check || which == LIST;
    struct store *s;
    int rc = cli_open_store("consent", c->db_path, readonly ? DB_OPEN_READONLY : 0, &s);
    if (rc != CLI_OK)
        return rc;
    const struct policy *p = NULL;
    struct policy *owned = NULL;
    if (is_add || is_check) {
        rc = get_policy(s, o.policy, &p, &owned);
        if (rc != CLI_OK) {
            store_close(s);
            return rc;
        }
    }
    struct op_error err;
    op_error_clear(&err);
    int r;
    switch (which) {
    case ADD:
        rc = do_add(s, p, pos[0], &o);
        break;
    case CONFIRM: {
        char id[40];
        r = consent_confirm(s, pos[0], NULL, 0, id, &err);
        if (r == 0)
            printf("confirmed consent %s\n", id);
        rc = r == 0 ? CLI_OK : cli_fail_by("consent", r, &err, confirm_rules);
        break;
    }
    case WITHDRAW: {
        int n = 0;
        r = consent_withdraw(s, pos[0], o.channel, o.purpose, o.kind, o.reason, 0, &n, &err);
        if (r == 0)
            printf("withdrew consent of %s for %s on %s (%d record%s); effective now\n", pos[0],
                   o.purpose, o.channel, n, n == 1 ? "" : "s");
        rc = r == 0 ? CLI_OK : cli_fail("consent", r, &err);
        break;
    }
    case CHECK: {
        struct consent_decision d;
        r = consent_check(s, p, pos[0], pos[1], pos[2], o.kind, 0, &d, &err);
        if (r < 0)
            rc = cli_fail("consent", r, &err);
        else {
            printf("%s\n%s\n", d.allowed ? "allowed" : "not allowed", d.rule);
            rc = d.allowed ? CLI_OK : CLI_FAIL;
        }
        break;
    }
    default:
        rc = do_list(s, pos[0]);
        break;
    }
    policy_free(owned);
    store_close(s);
    return rc;
}

static const struct cli_option opts[] = {
    CLI_STR("policy", struct opts, policy),
    CLI_STR("channel", struct opts, channel),
    CLI_STR("purpose", struct opts, purpose),
    CLI_STR("method", struct opts, method),
    CLI_STR("source", struct opts, source),
    CLI_STR("text-version", struct opts, text_version),
    CLI_STR("kind", struct opts, kind),
    CLI_STR("reason", struct opts, reason),
    CLI_OPT_END,
};

const struct cli_command cmd_consent = {
    CLI_COMMAND("consent", "record, confirm, withdraw and check consent to contact", run, usage,
                opts, struct opts),
    .subs = (const char *const[]){"add", "confirm", "withdraw", "check", "list", NULL},
};
