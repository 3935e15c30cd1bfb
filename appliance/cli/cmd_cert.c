/*
 * `outpost cert create`: the node's local CA (made once) and its TLS server
 * certificate, in the database's directory unless told otherwise. Also run
 * by `outpost init --tls-hosts`.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fsutil.h"
#include "node_cert.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost cert create --hosts NAME[,NAME...] [--dir DIR] [--days N]\n"
            "                           [--db PATH]\n\n"
            "Creates a local certificate authority in DIR (%s, %s; once: an existing\n"
            "one is reused) and a new TLS certificate for the node signed by it\n"
            "(%s with the CA appended, key %s). Keys are written with mode 0600.\n\n"
            "  --hosts LIST  every name and address staff type to reach the node,\n"
            "                comma-separated: DNS names (outpost.branch.lan) and IPv4 or\n"
            "                IPv6 addresses (192.168.1.10); the first is the common name\n"
            "  --dir DIR     where the files go (default: the directory of the database)\n"
            "  --days N      node certificate lifetime, 1 to %d (default %d; browsers\n"
            "                refuse longer)\n"
            "  --db PATH     database file whose directory is the default DIR\n"
            "                (default: $OUTPOST_DB, else %s)\n\n"
            "Install the CA certificate once on each staff device; see\n"
            "docs/USERS_AND_TLS.md.\n",
            NODE_CERT_CA_PEM, NODE_CERT_CA_KEY, NODE_CERT_NODE_PEM, NODE_CERT_NODE_KEY,
            NODE_CERT_DAYS_MAX, NODE_CERT_DAYS_DEFAULT, CLI_DEFAULT_DB);
}

static int create(const char *dir, const char *hosts_list, int days)
{
    struct node_cert_hosts hosts;
    struct op_error err;
    op_error_clear(&err);
    int r = node_cert_parse_hosts(hosts_list, &hosts, &err);
    if (r < 0) {
        fprintf(stderr, "outpost cert: %s\n", err.msg);
        return CLI_BADINPUT;
    }
    struct node_cert_result res;
    r = node_cert_create(dir, &hosts, days, &res, &err);
    if (r < 0) {
        static const struct cli_exit_rule rules[] = {
            {-EINVAL, CLI_BADINPUT}, {-EEXIST, CLI_CONFLICT}, {0, CLI_FAIL}};
        return cli_fail_by("cert", r, &err, rules);
    }
    printf("%s the local CA: %s/%s\n", res.ca_created ? "created" : "reused", dir,
           NODE_CERT_CA_PEM);
    printf("  SHA-256 fingerprint %s\n", res.ca_fingerprint);
    printf("node certificate: %s/%s (key %s/%s), valid until %s, for:", dir, NODE_CERT_NODE_PEM,
           dir, NODE_CERT_NODE_KEY, res.node_not_after);
    for (size_t i = 0; i < hosts.n; i++)
        printf("%s %s", i ? "," : "", hosts.name[i]);
    printf("\n");
    if (res.ca_created)
        printf("Install %s/%s once on every staff device (browser or OS trust store)\n"
               "and compare the fingerprint above; see docs/USERS_AND_TLS.md. Keep %s\n"
               "secret: whoever has it can impersonate the node.\n",
               dir, NODE_CERT_CA_PEM, NODE_CERT_CA_KEY);
    else
        printf("Devices that trust this CA need no change. Restart outpostd to use the\n"
               "new certificate.\n");
    return CLI_OK;
}

/* From the database's path: the default directory. */
static int create_beside(const char *db_path, const char *hosts, int days)
{
    char dbdir[PATH_MAX];
    fsutil_dir_of(db_path, dbdir, sizeof dbdir);
    return create(dbdir, hosts, days);
}

int cmd_cert_create(const char *db_path, const char *hosts)
{
    return create_beside(db_path, hosts, 0);
}

struct args {
    const char *dir, *hosts, *days;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    if (c->npos > 0)
        return cli_bad(c, "unexpected argument '%s'", c->pos[0]);
    if (!a->hosts)
        return cli_bad(c, "--hosts is required (the names and addresses staff use to reach the "
                          "node)");
    int64_t days = 0;
    if (a->days && cli_parse_int(a->days, 1, NODE_CERT_DAYS_MAX, &days) < 0)
        return cli_bad(c, "--days: expected 1 to %d, got '%s'", NODE_CERT_DAYS_MAX, a->days);
    if (!a->dir)
        return create_beside(c->db_path, a->hosts, (int)days);
    return create(a->dir, a->hosts, (int)days);
}

static const struct cli_option opts[] = {
    CLI_STR("dir", struct args, dir),
    CLI_STR("hosts", struct args, hosts),
    CLI_STR("days", struct args, days),
    CLI_OPT_END,
};

const struct cli_command cmd_cert = {
    CLI_COMMAND("cert", "create the node's local CA and TLS certificate", run, usage, opts,
                struct args),
    .subs = (const char *const[]){"create", NULL},
};
