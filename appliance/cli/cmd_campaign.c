/*
 * `outpost campaign create|list|show|dry-run|start|pause|cancel`: the
 * manager's campaigns from the shell (docs/OUTREACH.md "Campaigns",
 * docs/CLI.md). A campaign is created from a JSON file or a file of
 * key=value lines; outpostd plans and sends it once it is started.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "cli.h"
#include "node_policy.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost campaign create FILE [--db PATH]\n"
            "       outpost campaign list [--state S] [--limit N] [--db PATH]\n"
            "       outpost campaign show ID [--db PATH]\n"
            "       outpost campaign dry-run ID [--policy FILE] [--db PATH]\n"
            "       outpost campaign start|pause|cancel ID [--db PATH]\n\n"
            "Campaigns: a segment, a channel, a purpose, templates per language and a\n"
            "schedule (docs/OUTREACH.md, \"Campaigns\"). outpostd plans and sends a started\n"
            "campaign.\n\n"
            "  create   from FILE ('-' for stdin): a JSON object, or key=value lines:\n"
            "           name, channel, purpose, fallback_language, start_at, end_at,\n"
            "           segment.KEY=v1,v2 (country, region, locality, language,\n"
            "           organization), segment.owner=ID, segment.activity=CHANNEL@SINCE,\n"
            "           template.LANG.subject=..., template.LANG.body=... (\\n for a newline)\n"
            "  list     newest first: id, state, name, channel, planned, sent, refused\n"
            "           (--state draft|scheduled|running|paused|done|cancelled)\n"
            "  show     the campaign and its figures as JSON\n"
            "  dry-run  how many would be sent and refused, by reason; writes nothing\n"
            "  start    draft or paused: running, or scheduled until start_at\n"
            "  pause    its queued messages wait\n"
            "  cancel   its queued messages fail\n\n"
            "  --db PATH  database file (default: $OUTPOST_DB, else %s)\n\n"
            "Exit status: 0 ok, 1 failed, 2 usage, 3 bad input (nothing changed), 4 the\n"
            "campaign's state does not allow it (nothing changed), 5 no such campaign.\n",
            CLI_DEFAULT_DB);
}

struct args {
    const char *state;
    int64_t limit;
    const char *policy;
};

static const struct cli_exit_rule rules[] = {
    {-EINVAL, CLI_BADINPUT}, {-EALREADY, CLI_CONFLICT}, {0, CLI_EXIT_FOR}};

static int parse_id(const struct cli_call *c, const char *text, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 1)
        return cli_bad(c, "'%.40s' is not a campaign id (a whole number from 1)", text);
    *id = v;
    return CLI_OK;
}

/* "a\nb" written as a\nb on one line. */
static json_t *unescaped(const char *v)
{
    size_t n = strlen(v);
    char *t = malloc(n + 1);
    if (!t)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\\' && v[i + 1] == 'n') {
            t[o++] = '\n';
            i++;
        } else {
            t[o++] = v[i];
        }
    }
    t[o] = '\0';
    json_t *j = json_string(t);
    free(t);
    return j;
}

static json_t *split_list(const char *v)
{
    json_t *a = json_array();
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        if (!p[n])
            break;
        p += n + 1;
    }
    return a;
}

/* key=value lines into the JSON campaign; -EINVAL naming the line. */
static int parse_kv(char *text, json_t **out, struct op_error *err)
{
    json_t *o = json_object(), *seg = json_object(), *tp = json_object();
    int line = 0, rc = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && rc == 0;
         l = strtok_r(NULL, "\n", &save)) {
        line++;
        l[strcspn(l, "\r")] = '\0';
        if (!l[0] || l[0] == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            rc = op_error_set(err, -EINVAL, "file", "line %d: expected key=value", line);
            break;
        }
        *eq = '\0';
        const char *k = l, *v = eq + 1;
        if (!strncmp(k, "segment.", 8)) {
            const char *f = k + 8;
            if (!strcmp(f, "owner")) {
                json_object_set_new(seg, f, json_string(v));
            } else if (!strcmp(f, "activity")) {
                const char *at = strchr(v, '@');
                if (!at) {
                    rc = op_error_set(err, -EINVAL, "segment.activity",
                                      "line %d: segment.activity: expected CHANNEL@SINCE", line);
                    break;
                }
                json_object_set_new(
                    seg, f,
                    json_pack("{s:s%, s:s}", "channel", v, (size_t)(at - v), "since", at + 1));
            } else {
                json_object_set_new(seg, f, split_list(v));
            }
        } else if (!strncmp(k, "template.", 9)) {
            char lang[16];
            const char *dot = strchr(k + 9, '.');
            size_t n = dot ? (size_t)(dot - k - 9) : 0;
            if (!dot || n == 0 || n >= sizeof lang) {
                rc = op_error_set(err, -EINVAL, "templates",
                                  "line %d: expected template.LANG.subject or template.LANG.body",
                                  line);
                break;
            }
            memcpy(lang, k + 9, n);
            lang[n] = '\0';
            json_t *t = json_object_get(tp, lang);
            if (!t) {
                t = json_object();
                json_object_set_new(tp, lang, t);
            }
            json_object_set_new(t, dot + 1, unescaped(v));
        } else {
            json_object_set_new(o, k, json_string(v));
        }
    }
    if (json_object_size(seg))
        json_object_set(o, "segment", seg);
    if (json_object_size(tp))
        json_object_set(o, "templates", tp);
    json_decref(seg);
    json_decref(tp);
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int read_spec(const char *path, json_t **out, struct op_error *err)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return op_error_set(err, -EIO, "file", "cannot read %s: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    if (buf)
        n = fread(buf, 1, cap + 1, f);
    if (f != stdin)
        fclose(f);
    if (!buf)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (n > cap) {
        free(buf);
        return op_error_set(err, -EINVAL, "file", "%s: larger than 1 MiB", path);
    }
    buf[n] = '\0';
    size_t skip = strspn(buf, " \t\r\n");
    int rc = 0;
    if (buf[skip] == '{') {
        json_error_t je;
        *out = json_loads(buf, 0, &je);
        if (!*out)
            rc = op_error_set(err, -EINVAL, "file", "%s:%d:%d: %s", path, je.line, je.column,
                              je.text);
    } else {
        rc = parse_kv(buf, out, err);
    }
    free(buf);
    return rc;
}

static int64_t figure(const json_t *k, const char *name)
{
    return json_integer_value(json_object_get(json_object_get(k, "figures"), name));
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", text ? text : "{}");
    free(text);
}

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    static const char *const subs[] = {"create", "list",  "show",   "dry-run",
                                       "start",  "pause", "cancel", NULL};
    if (c->npos < 1)
        return cli_bad(c, "expected create, list, show, dry-run, start, pause or cancel");
    const char *sub = c->pos[0];
    int known = 0;
    for (size_t i = 0; subs[i]; i++)
        known |= !strcmp(subs[i], sub);
    if (!known)
        return cli_bad(
            c, "unknown subcommand '%.40s' (create, list, show, dry-run, start, pause, cancel)",
            sub);
    int is_list = !strcmp(sub, "list");
    if ((int)c->npos != (is_list ? 1 : 2))
        return cli_bad(c, is_list ? "%s takes no arguments" : "%s takes exactly one argument", sub);
    if ((a->state || a->limit) && !is_list)
        return cli_bad(c, "--state and --limit are for list");
    if (a->policy && strcmp(sub, "dry-run"))
        return cli_bad(c, "--policy is for dry-run");
    if (a->state && !campaign_state_valid(a->state))
        return cli_bad(c,
                       "--state: '%.32s' is not one of draft, scheduled, running, paused, done, "
                       "cancelled",
                       a->state);
    int64_t id = 0;
    if (!is_list && strcmp(sub, "create") && parse_id(c, c->pos[1], &id) != CLI_OK)
        return CLI_USAGE;
    struct op_error err;
    op_error_clear(&err);
    json_t *spec = NULL;
    int rc = 0;
    if (!strcmp(sub, "create")) {
        rc = read_spec(c->pos[1], &spec, &err);
        if (rc == 0)
            rc = campaign_validate(spec, &err);
        if (rc < 0) {
            json_decref(spec);
            return cli_fail_by("campaign", rc, &err, rules);
        }
    }
    struct store *s;
    int ret = cli_open_store("campaign", c->db_path, 0, &s);
    if (ret != CLI_OK) {
        json_decref(spec);
        return ret;
    }
    json_t *out = NULL;
    if (spec) {
        const char *who = getenv("USER");
        rc = campaign_create(s, spec, who ? who : "cli", 0, &id, &err);
        if (rc == 0)
            printf("campaign %" PRId64 " created (draft): 'outpost campaign dry-run %" PRId64
                   "', then 'outpost campaign start %" PRId64 "'\n",
                   id, id, id);
    } else if (is_list) {
        rc = campaign_list(s, a->state, a->limit ? (unsigned)a->limit : 100, &out, &err);
        size_t i;
        json_t *k;
        json_array_foreach(out, i, k)
            printf("%" JSON_INTEGER_FORMAT "\t%s\t%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n",
                   json_integer_value(json_object_get(k, "id")),
                   json_string_value(json_object_get(k, "state")),
                   json_string_value(json_object_get(k, "name")),
                   json_string_value(json_object_get(k, "channel")), figure(k, "planned"),
                   figure(k, "sent"), figure(k, "refused"));
    } else if (!strcmp(sub, "show")) {
        rc = campaign_get(s, id, &out, &err);
        if (rc == 0)
            print_json(out);
    } else if (!strcmp(sub, "dry-run")) {
        struct policy *p = NULL;
        rc = node_policy_load(a->policy, c->db_path, store_region(s), &p, &err);
        if (rc == 0)
            rc = campaign_dry_run(s, p, id, 0, &out, &err);
        policy_free(p);
        if (rc == 0)
            print_json(out);
    } else {
        rc = !strcmp(sub, "start")   ? campaign_start(s, id, 0, &err)
             : !strcmp(sub, "pause") ? campaign_pause(s, id, 0, &err)
                                     : campaign_cancel(s, id, 0, &err);
        if (rc == 0)
            rc = campaign_get(s, id, &out, &err);
        if (rc == 0)
            printf("campaign %" PRId64 " is %s\n", id,
                   json_string_value(json_object_get(out, "state")));
    }
    json_decref(out);
    json_decref(spec);
    store_close(s);
    if (rc < 0)
        return cli_fail_by("campaign", rc, &err, rules);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_STR("state", struct args, state),
    CLI_INT("limit", struct args, limit, 1, CAMPAIGN_LIST_MAX),
    CLI_STR("policy", struct args, policy),
    CLI_OPT_END,
};

const struct cli_command cmd_campaign = {
    CLI_COMMAND("campaign",
                "campaigns: create, list, show, dry-run, start, pause, cancel (manager's work)",
                run, usage, opts, struct args),
};
