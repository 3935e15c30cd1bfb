/*
 * `outpost contact add|show|list|update|delete`. Field options are derived
 * from the contact descriptor (entity.c): every field NAME is accepted as
 * --NAME VALUE (dashes or underscores), so the CLI never lags the schema.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost contact add    [--db PATH] [--skip-duplicate-check] FIELDS...\n"
            "       outpost contact show   [--db PATH] [--json] ID\n"
            "       outpost contact list   [--db PATH] [--limit N] [--after CURSOR]\n"
            "                              [--sort id|updated] [--owner USER_ID]\n"
            "                              [--updated-since TIME] [--include-deleted] [--json]\n"
            "       outpost contact update [--db PATH] --version N [--skip-duplicate-check]\n"
            "                              ID FIELDS...\n"
            "       outpost contact delete [--db PATH] --version N ID\n\n"
            "FIELDS are --NAME VALUE pairs, NAME one of:\n ");
    for (size_t i = 0; i < entity_contact.nfields; i++)
        if (!(entity_contact.fields[i].flags & FIELD_INTERNAL) &&
            strcmp(entity_contact.fields[i].name, "custom"))
            fprintf(out, " %s", entity_contact.fields[i].name);
    fprintf(out, "\nplus --custom KEY=VALUE for a custom field (repeatable; empty VALUE\n"
                 "removes it on update). An empty VALUE clears a field on update.\n\n"
                 "A new contact with the same e-mail, phone (E.164) or folded name and\n"
                 "locality as an existing one is refused as a probable duplicate (exit 4)\n"
                 "naming the existing contact, unless --skip-duplicate-check is given.\n"
                 "update and delete need the version you last saw (--version); if the\n"
                 "contact changed since, they are refused (exit 4).\n");
}

struct args {
    const char *db;
    const char *id;
    const char *after;
    const char *owner;
    const char *since;
    int64_t version;
    int have_version;
    int64_t limit;
    int sort_updated;
    int include_deleted;
    int json;
    int skip_dup;
    json_t *fields;
};

static int field_name(const char *opt, char *out, size_t cap)
{
    size_t n = strlen(opt);
    if (n >= cap)
        return -1;
    for (size_t i = 0; i <= n; i++)
        out[i] = opt[i] == '-' ? '_' : opt[i];
    const struct field_def *f = entity_field(&entity_contact, out);
    return f && !(f->flags & FIELD_INTERNAL) && strcmp(out, "custom") ? 0 : -1;
}

/* Parses options after the subcommand; positional ID goes to a->id. */
static int parse(const struct cli_call *c, int argc, char **argv, struct args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) || !arg[2]) {
            if (a->id)
                return cli_bad(c, "unexpected argument '%s'", arg);
            a->id = arg;
            continue;
        }
        char name[64];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen >= sizeof name)
            return cli_bad(c, "unknown option '%s'", arg);
        memcpy(name, arg + 2, nlen);
        name[nlen] = '\0';
        static const char *const flags[] = {"json", "include-deleted", "skip-duplicate-check",
                                            "help"};
        int is_flag = 0;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            is_flag |= !strcmp(name, flags[k]);
        if (is_flag) {
            if (eq)
                return cli_bad(c, "--%s takes no value", name);
            if (!strcmp(name, "help"))
                return -1;
            a->json |= !strcmp(name, "json");
            a->include_deleted |= !strcmp(name, "include-deleted");
            a->skip_dup |= !strcmp(name, "skip-duplicate-check");
            continue;
        }
        /* An unknown name is said to be one, with or without a value. */
        static const char *const valued[] = {"db",    "version",       "limit", "after",
                                             "owner", "updated-since", "sort",  "custom"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known |= !strcmp(name, valued[k]);
        char fname[64];
        if (!known && field_name(name, fname, sizeof fname) < 0)
            return cli_bad(c, "unknown option or field '--%s'", name);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return cli_bad(c, "--%s needs a value", name);
        if (!strcmp(name, "db")) {
            a->db = value;
        } else if (!strcmp(name, "version")) {
            if (cli_parse_int(value, 1, INT64_MAX, &a->version) < 0)
                return cli_bad(c,
                               "--version: expected a positive "
                               "number, got '%s'",
                               value);
            a->have_version = 1;
        } else if (!strcmp(name, "limit")) {
            if (cli_parse_int(value, 1, STORE_LIST_MAX, &a->limit) < 0)
                return cli_bad(c, "--limit: expected 1 to %d, got '%s'", STORE_LIST_MAX, value);
        } else if (!strcmp(name, "after")) {
            a->after = value;
        } else if (!strcmp(name, "owner")) {
            a->owner = value;
        } else if (!strcmp(name, "updated-since")) {
            a->since = value;
        } else if (!strcmp(name, "sort")) {
            if (strcmp(value, "id") && strcmp(value, "updated"))
                return cli_bad(c, "--sort: expected id or updated");
            a->sort_updated = !strcmp(value, "updated");
        } else if (!strcmp(name, "custom")) {
            const char *ceq = strchr(value, '=');
            if (!ceq || ceq == value)
                return cli_bad(c, "--custom: expected KEY=VALUE");
            json_t *custom = json_object_get(a->fields, "custom");
            if (!custom) {
                custom = json_object();
                json_object_set_new(a->fields, "custom", custom);
            }
            char key[128];
            size_t klen = (size_t)(ceq - value);
            if (klen >= sizeof key)
                return cli_bad(c, "--custom: key too long");
            memcpy(key, value, klen);
            key[klen] = '\0';
            json_t *v = ceq[1] ? json_string(ceq + 1) : json_null();
            if (!v)
                return cli_bad(c, "--custom %s: not valid UTF-8", key);
            json_object_set_new(custom, key, v);
        } else {
            json_t *v = json_string(value);
            if (!v)
                return cli_bad(c, "--%s: value is not valid UTF-8", name);
            json_object_set_new(a->fields, fname, v);
        }
    }
    return 0;
}

static void print_record(json_t *rec, int as_json)
{
    if (as_json) {
        json_dumpf(rec, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(rec, k, v)
    {
        if (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0))
            continue;
        if (json_is_string(v))
            printf("%-12s %s\n", k, json_string_value(v));
        else {
            char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%-12s %s\n", k, d ? d : "?");
            free(d);
        }
    }
}

static const char *s_or(json_t *rec, const char *k)
{
    const char *v = json_string_value(json_object_get(rec, k));
    return v ? v : "";
}

static int run_args(const struct cli_call *c, struct args *a)
{
    const char *sub = c->sub;
    int writes = strcmp(sub, "show") && strcmp(sub, "list");
    int needs_id = strcmp(sub, "add") && strcmp(sub, "list");
    if (needs_id && !a->id)
        return cli_bad(c, "the contact id is missing");
    if (!needs_id && a->id)
        return cli_bad(c, "unexpected argument '%s'", a->id);
    if ((!strcmp(sub, "update") || !strcmp(sub, "delete")) && !a->have_version)
        return cli_bad(c, "--version N is required (see 'contact show')");
    if (!strcmp(sub, "update") && json_object_size(a->fields) == 0)
        return cli_bad(c, "no fields to change");
    if (strcmp(sub, "add") && strcmp(sub, "update") && json_object_size(a->fields) > 0)
        return cli_bad(c, "field options are for add and update");

    struct store *s;
    const char *path = cli_db_path(a->db);
    int rc = writes ? cli_open_node("contact", path, &s)
                    : cli_open_store("contact", path, DB_OPEN_READONLY, &s);
    if (rc != CLI_OK)
        return rc;
    struct op_error err;
    op_error_clear(&err);
    json_t *rec = NULL;
    unsigned flags = a->skip_dup ? STORE_SKIP_DUP_CHECK : 0;
    int r = 0;
    if (!strcmp(sub, "add")) {
        r = store_create(s, &entity_contact, a->fields, flags, &rec, &err);
        if (r == 0)
            printf("created contact %s (version 1)\n",
                   json_string_value(json_object_get(rec, "id")));
        if (r == 0 && store_warning(s, NULL))
            fprintf(stderr, "outpost contact: warning: %s\n", store_warning(s, NULL));
    } else if (!strcmp(sub, "show")) {
        r = store_get(s, &entity_contact, a->id, a->include_deleted ? STORE_INCLUDE_DELETED : 0,
                      &rec, &err);
        if (r == 0)
            print_record(rec, a->json);
    } else if (!strcmp(sub, "update")) {
        r = store_update(s, &entity_contact, a->id, a->version, a->fields, flags, &rec, &err);
        if (r == 0)
            printf("updated contact %s (version %lld)\n", a->id,
                   (long long)json_integer_value(json_object_get(rec, "version")));
    } else if (!strcmp(sub, "delete")) {
        r = store_delete(s, &entity_contact, a->id, a->version, &rec, &err);
        if (r == 0)
            printf("deleted contact %s (tombstone version %lld)\n", a->id,
                   (long long)json_integer_value(json_object_get(rec, "version")));
    } else {
        struct store_filter filter = {"owner_id", a->owner};
        struct store_query q = {
            .cursor = a->after,
            .limit = (int)a->limit,
            .sort = a->sort_updated ? STORE_SORT_UPDATED : STORE_SORT_ID,
            .filters = a->owner ? &filter : NULL,
            .nfilters = a->owner ? 1 : 0,
            .updated_since = a->since,
            .include_deleted = a->include_deleted,
        };
        char next[STORE_CURSOR_MAX];
        r = store_list(s, &entity_contact, &q, &rec, next, &err);
        if (r == 0 && a->json) {
            json_t *page =
                json_pack("{s:O, s:s?}", "items", rec, "next_cursor", next[0] ? next : NULL);
            json_dumpf(page, stdout, JSON_INDENT(2));
            putchar('\n');
            json_decref(page);
        } else if (r == 0) {
            size_t i;
            json_t *ct;
            json_array_foreach(rec, i, ct)
            {
                char name[420];
                snprintf(name, sizeof name, "%s %s", s_or(ct, "given_name"),
                         s_or(ct, "family_name"));
                printf("%s  v%-3lld %-32.32s %-28.28s %s\n", s_or(ct, "id"),
                       (long long)json_integer_value(json_object_get(ct, "version")), name,
                       s_or(ct, "email"), s_or(ct, "locality"));
            }
            if (next[0])
                fprintf(stderr, "more: outpost contact list --after %s\n", next);
        }
    }
    json_decref(rec);
    store_close(s);
    if (r < 0)
        return cli_fail("contact", r, &err);
    return CLI_OK;
}

static int run(const struct cli_call *c)
{
    struct args a = {.fields = json_object()};
    if (!a.fields) {
        fprintf(stderr, "outpost contact: out of memory\n");
        return CLI_FAIL;
    }
    int rc = parse(c, c->npos, c->pos, &a);
    if (rc < 0) {
        usage(stdout);
        rc = CLI_OK;
    } else if (rc == 0) {
        rc = run_args(c, &a);
    }
    json_decref(a.fields);
    return rc;
}

/* Its own parser: every contact field is an option (--given-name ...),
 * derived from the descriptor. */
const struct cli_command cmd_contact = {
    .name = "contact",
    .summary = "add, show, list, update or delete contacts",
    .run = run,
    .usage = usage,
    .subs = (const char *const[]){"add", "show", "list", "update", "delete", NULL},
    .flags = CLI_OWN_PARSER,
};
