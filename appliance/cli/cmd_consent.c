/*
 * `outpost consent add|confirm|withdraw|check|list`: the consent ledger
 * from the command line (consent.h, docs/CONSENT.md). `check` prints the
 * derived permission and the rule that decided it and exits 0 when
 * allowed, 1 when not, so scripts can gate a send on it. A double opt-in
 * token is printed once, alone on stdout; the node keeps only its hash.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "consent.h"
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
    const char *db, *policy, *channel, *purpose, *method, *source, *text_version, *kind, *reason;
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

static int confirm_exit(int rc, const struct op_error *err)
{
    int ex = cli_fail("consent", rc, err);
    if (rc == -EALREADY || rc == -ECANCELED)
        return CLI_CONFLICT;
    return ex;
}

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
    int rc = consent_record(s, p, &req, 0, &rec, token, &err);
    if (rc < 0)
        return cli_fail("consent", rc, &err);
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

int cmd_consent(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"policy", required_argument, NULL, 'P'},
        {"channel", required_argument, NULL, 'c'},
        {"purpose", required_argument, NULL, 'p'},
        {"method", required_argument, NULL, 'm'},
        {"source", required_argument, NULL, 's'},
        {"text-version", required_argument, NULL, 't'},
        {"kind", required_argument, NULL, 'k'},
        {"reason", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    static const char *const subs[] = {"add", "confirm", "withdraw", "check", "list"};
    static const int npos_of[] = {1, 1, 1, 3, 1};
    static const char *const pos_names[] = {"CONTACT", "TOKEN", "CONTACT",
                                            "CONTACT CHANNEL PURPOSE", "CONTACT"};
    int which = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(sub, subs[i]))
            which = i;
    if (which < 0)
        return cli_usage_error(
            "consent", "unknown subcommand '%s' (add, confirm, withdraw, check, list)", sub);
    struct opts o = {0};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.db = optarg;
            break;
        case 'P':
            o.policy = optarg;
            break;
        case 'c':
            o.channel = optarg;
            break;
        case 'p':
            o.purpose = optarg;
            break;
        case 'm':
            o.method = optarg;
            break;
        case 's':
            o.source = optarg;
            break;
        case 't':
            o.text_version = optarg;
            break;
        case 'k':
            o.kind = optarg;
            break;
        case 'r':
            o.reason = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        case ':':
            return cli_usage_error("consent", "%s: %s needs a value", sub, argv[optind]);
        default:
            return cli_usage_error("consent", "%s: unknown option '%s'", sub, argv[optind]);
        }
    }
    char **pos = argv + 1 + optind;
    int npos = argc - 1 - optind;
    if (npos < npos_of[which])
        return cli_usage_error("consent", "%s: %s %s missing", sub, pos_names[which],
                               npos_of[which] > 1 ? "are" : "is");
    if (npos > npos_of[which])
        return cli_usage_error("consent", "%s: unexpected argument '%s'", sub, pos[npos_of[which]]);
    int is_add = which == 0, is_withdraw = which == 2, is_check = which == 3;
    if ((is_add || is_withdraw) && (!o.channel || !o.purpose))
        return cli_usage_error("consent", "%s: --channel and --purpose are required", sub);
    if (is_add && !o.method)
        return cli_usage_error("consent",
                               "add: --method is required (double_opt_in, single_opt_in, "
                               "opt_out, verbal, written, imported)");
    if (!is_add && (o.method || o.source || o.text_version))
        return cli_usage_error("consent", "%s: --method, --source and --text-version are for add",
                               sub);
    if (!(is_add || is_withdraw) && (o.channel || o.purpose))
        return cli_usage_error("consent", "%s: takes no --channel or --purpose%s", sub,
                               is_check ? " (they are arguments: CONTACT CHANNEL PURPOSE)" : "");
    if (o.kind && !(is_add || is_withdraw || is_check))
        return cli_usage_error("consent", "%s: takes no --kind", sub);
    if (o.reason && !is_withdraw)
        return cli_usage_error("consent", "%s: --reason is for withdraw", sub);

    int readonly = is_check || which == 4;
    struct store *s;
    int rc = cli_open_store("consent", cli_db_path(o.db), readonly ? DB_OPEN_READONLY : 0, &s);
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
    case 0:
        rc = do_add(s, p, pos[0], &o);
        break;
    case 1: {
        char id[40];
        r = consent_confirm(s, pos[0], NULL, 0, id, &err);
        if (r == 0)
            printf("confirmed consent %s\n", id);
        rc = r == 0 ? CLI_OK : confirm_exit(r, &err);
        break;
    }
    case 2: {
        int n = 0;
        r = consent_withdraw(s, pos[0], o.channel, o.purpose, o.kind, o.reason, 0, &n, &err);
        if (r == 0)
            printf("withdrew consent of %s for %s on %s (%d record%s); effective now\n", pos[0],
                   o.purpose, o.channel, n, n == 1 ? "" : "s");
        rc = r == 0 ? CLI_OK : cli_fail("consent", r, &err);
        break;
    }
    case 3: {
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
