/* `outpost init`: create a node database for a region. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "db.h"
#include "node_cert.h"
#include "region.h"

static void usage(FILE *out)
{
    char list[256];
    region_list(list, sizeof list);
    fprintf(out,
            "usage: outpost init --region CODE [--db PATH] [--tls-hosts NAME[,NAME...]]\n\n"
            "Create a node database (or initialize an empty one) for a region:\n"
            "applies the schema, records a new node id and the region.\n\n"
            "  --region CODE  one of: %s\n"
            "  --db PATH      database file (default: $OUTPOST_DB, else %s)\n"
            "  --tls-hosts L  also run 'outpost cert create --hosts L' (see its --help)\n",
            list, CLI_DEFAULT_DB);
}

int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"region", required_argument, NULL, 'r'},
        {"tls-hosts", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *region = NULL, *tls_hosts = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'r':
            region = optarg;
            break;
        case 't':
            tls_hosts = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_usage_error("init", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
    if (!region)
        return cli_usage_error("init", "--region is required");
    if (!region_find(region)) {
        char list[256];
        region_list(list, sizeof list);
        return cli_usage_error("init", "unknown region '%s' (known: %s)", region, list);
    }
    struct node_cert_hosts hosts;
    struct op_error herr;
    op_error_clear(&herr);
    if (tls_hosts && node_cert_parse_hosts(tls_hosts, &hosts, &herr) < 0)
        return cli_usage_error("init", "--tls-hosts: %s", herr.msg);
    const char *path = cli_db_path(db);
    struct stat sb;
    int existed = stat(path, &sb) == 0;
    struct store *s;
    int rc = cli_open_store("init", path, DB_OPEN_CREATE, &s);
    if (rc != CLI_OK)
        return rc;
    struct op_error err;
    op_error_clear(&err);
    int r = store_init_node(s, region, &err);
    if (r < 0) {
        store_close(s);
        if (r == -EEXIST)
            fprintf(stderr, "outpost init: %s: %s\n", path, err.msg);
        else
            fprintf(stderr, "outpost init: %s\n", err.msg);
        return r == -EEXIST ? CLI_CONFLICT : cli_exit_for(r);
    }
    printf("%s node %s for region %s in %s (schema v%d)\n", existed ? "initialized" : "created",
           store_node_id(s), store_region(s), path, db_latest_version());
    store_close(s);
    if (tls_hosts) {
        char *cert_argv[] = {"cert", "create",     "--hosts", (char *)tls_hosts,
                             "--db", (char *)path, NULL};
        return cmd_cert(6, cert_argv);
    }
    return CLI_OK;
}
