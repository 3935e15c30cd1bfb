/* `outpost search TEXT`: full-text search over contacts and organizations. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "db.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost search [--db PATH] [--limit N] [--json] TEXT...\n\n"
                 "Search contacts and organizations. Case and diacritics are ignored\n"
                 "(\"jose\" finds \"José\", \"lodz\" finds \"Łódź\") and each word matches\n"
                 "as a prefix. Prints one line per hit: entity, id, label.\n\n"
                 "  --limit N  at most N hits (1-200, default 20)\n"
                 "  --json     print the hits as a JSON array with the full records\n");
}

int cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"limit", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    int64_t limit = 20;
    int json_out = 0, c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'l':
            if (cli_parse_int(optarg, 1, STORE_SEARCH_MAX, &limit) < 0)
                return cli_usage_error("search", "--limit: expected 1 to %d, got '%s'",
                                       STORE_SEARCH_MAX, optarg);
            break;
        case 'j':
            json_out = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_usage_error("search", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("search", "what to search for is missing");
    char text[1024] = "";
    size_t o = 0;
    for (int i = optind; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (o + len + 2 > sizeof text)
            return cli_usage_error("search", "search text too long");
        if (o)
            text[o++] = ' ';
        memcpy(text + o, argv[i], len + 1);
        o += len;
    }
    struct store *s;
    int rc = cli_open_store("search", cli_db_path(db), DB_OPEN_READONLY, &s);
    if (rc != CLI_OK)
        return rc;
    struct op_error err;
    op_error_clear(&err);
    json_t *hits;
    int r = store_search(s, text, (int)limit, &hits, &err);
    if (r < 0) {
        store_close(s);
        return cli_fail("search", r, &err);
    }
    if (json_out) {
        size_t i;
        json_t *h;
        json_array_foreach(hits, i, h) json_object_del(h, "rank");
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
