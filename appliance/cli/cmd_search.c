/* `outpost search TEXT`: full-text search over contacts and organizations. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "db.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost search [--db PATH] [--limit N] [--json] TEXT...\n\n"
                 "Search contacts and organizations. Case and diacritics are ignored\n"
                 "(\"jose\" finds \"José\", \"lodz\" finds \"Łódź\") and each word matches\n"
                 "as a prefix. One or two words of at most four letters are type-ahead:\n"
                 "names with such a word come first (the exact word, then longer words\n"
                 "in order, then by family name), then other matches; longer text is\n"
                 "ranked best match first. Prints one line per hit: entity, id, label.\n"
                 "Options may come before or after TEXT; after '--' every word is TEXT.\n\n"
                 "  --limit N  at most N hits (1-200, default 20)\n"
                 "  --json     print the hits as a JSON array with the full records\n");
}

struct args {
    int64_t limit;
    int json;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    if (c->npos < 1)
        return cli_bad(c, "what to search for is missing");
    char text[1024] = "";
    size_t o = 0;
    for (int i = 0; i < c->npos; i++) {
        size_t len = strlen(c->pos[i]);
        if (o + len + 2 > sizeof text)
            return cli_bad(c, "search text too long");
        if (o)
            text[o++] = ' ';
        memcpy(text + o, c->pos[i], len + 1);
        o += len;
    }
    struct store *s;
    int rc = cli_open_store("search", c->db_path, DB_OPEN_READONLY, &s);
    if (rc != CLI_OK)
        return rc;
    struct op_error err;
    op_error_clear(&err);
    json_t *hits;
    int r = store_search(s, text, a->limit ? (int)a->limit : 20, &hits, &err);
    if (r < 0) {
        store_close(s);
        return cli_fail("search", r, &err);
    }
    if (a->json) {
        json_dumpf(hits, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        size_t i;
        json_t *h;
        json_array_foreach(hits, i, h)
        {
            printf("%-12s %s  %s\n", json_string_value(json_object_get(h, "entity")),
                   json_string_value(json_object_get(h, "id")),
                   json_string_value(json_object_get(h, "label")));
        }
        if (json_array_size(hits) == 0)
            fprintf(stderr, "no matches for '%s'\n", text);
    }
    json_decref(hits);
    store_close(s);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_INT("limit", struct args, limit, 1, STORE_SEARCH_MAX),
    CLI_FLAG("json", struct args, json),
    CLI_OPT_END,
};

/* Options may follow TEXT ("search lodz --limit 2"); "--" ends them, for
 * TEXT that starts with "--". */
const struct cli_command cmd_search = {
    CLI_COMMAND("search", "full-text search over contacts and organizations", run, usage, opts,
                struct args),
};
