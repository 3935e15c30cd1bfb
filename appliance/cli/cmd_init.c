/* `outpost init`: create a node database for a region. */
#include <errno.h>
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

struct args {
    const char *region, *tls_hosts;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    const char *region = a->region, *tls_hosts = a->tls_hosts;
    if (!region)
        return cli_bad(c, "--region is required");
    if (!region_find(region)) {
        char list[256];
        region_list(list, sizeof list);
        return cli_bad(c, "unknown region '%s' (known: %s)", region, list);
    }
    struct node_cert_hosts hosts;
    struct op_error herr;
    op_error_clear(&herr);
    if (tls_hosts && node_cert_parse_hosts(tls_hosts, &hosts, &herr) < 0)
        return cli_bad(c, "--tls-hosts: %s", herr.msg);
    const char *path = c->db_path;
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
        if (r != -EEXIST)
            return cli_fail("init", r, &err);
        fprintf(stderr, "outpost init: %s: %s\n", path, err.msg);
        return CLI_CONFLICT;
    }
    printf("%s node %s for region %s in %s (schema v%d)\n", existed ? "initialized" : "created",
           store_node_id(s), store_region(s), path, db_latest_version());
    store_close(s);
    if (tls_hosts)
        return cmd_cert_create(path, tls_hosts);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_STR("region", struct args, region),
    CLI_STR("tls-hosts", struct args, tls_hosts),
    CLI_OPT_END,
};

const struct cli_command cmd_init = {
    CLI_COMMAND("init", "create a node database for a region", run, usage, opts, struct args),
    .flags = CLI_IN_ORDER | CLI_NO_ARGS,
};
