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
            "usage: outpost cert create [--hosts NAME[,NAME...]] [--dir DIR] [--days N]\n"
            "                           [--new-ca] [--db PATH]\n\n"
            "Creates a local certificate authority in DIR (%s, %s; once: an existing\n"
            "one is reused) and a new TLS certificate for the node signed by it\n"
            "(%s with the CA appended, key %s). Keys are written with mode 0600.\n"
            "A new CA may sign only for the hosts it is made for (X.509 name\n"
            "constraints), so its key cannot impersonate other sites.\n\n"
            "  --hosts LIST  every name and address staff type to reach the node,\n"
            "                comma-separated: DNS names (outpost.branch.lan) and IPv4 or\n"
            "                IPv6 addresses (192.168.1.10); the first DNS name is the\n"
            "                common name (default: this machine's host name and addresses)\n"
            "  --dir DIR     where the files go (default: the directory of the database)\n"
            "  --days N      node certificate lifetime, 1 to %d (default %d; browsers\n"
            "                refuse longer)\n"
            "  --new-ca      move the existing CA aside (%s.replaced-DATE) and make a new\n"
            "                one for LIST: needed for hosts outside the CA's names and to\n"
            "                replace a CA without name constraints; every device must\n"
            "                then install the new CA\n"
            "  --db PATH     database file whose directory is the default DIR\n"
            "                (default: $OUTPOST_DB, else %s)\n\n"
            "Install the CA certificate once on each staff device; see\n"
            "docs/USERS_AND_TLS.md.\n",
            NODE_CERT_CA_PEM, NODE_CERT_CA_KEY, NODE_CERT_NODE_PEM, NODE_CERT_NODE_KEY,
            NODE_CERT_DAYS_MAX, NODE_CERT_DAYS_DEFAULT, NODE_CERT_CA_PEM, CLI_DEFAULT_DB);
}

static int create(const char *dir, const char *hosts_list, int days, unsigned flags)
{
    struct node_cert_hosts hosts;
    struct op_error err;
    op_error_clear(&err);
    int r = hosts_list ? node_cert_parse_hosts(hosts_list, &hosts, &err)
                       : node_cert_local_hosts(NULL, &hosts, &err);
    if (r < 0) {
        fprintf(stderr, "outpost cert: %s\n", err.msg);
        return CLI_BADINPUT;
    }
    struct node_cert_result res;
    r = node_cert_create(dir, &hosts, days, flags, &res, &err);
    if (r < 0) {
        static const struct cli_exit_rule rules[] = {{-EINVAL, CLI_BADINPUT},
                                                     {-EEXIST, CLI_CONFLICT},
                                                     {-EPERM, CLI_CONFLICT},
                                                     {0, CLI_FAIL}};
        return cli_fail_by("cert", r, &err, rules);
    }
    if (res.ca_replaced)
        printf("moved the previous CA aside: %s/%s.replaced-*\n", dir, NODE_CERT_CA_PEM);
    printf("%s the local CA: %s/%s\n", res.ca_created ? "created" : "reused", dir,
           NODE_CERT_CA_PEM);
    printf("  SHA-256 fingerprint %s\n", res.ca_fingerprint);
    printf("node certificate: %s/%s (key %s/%s), valid until %s, for:", dir, NODE_CERT_NODE_PEM,
           dir, NODE_CERT_NODE_KEY, res.node_not_after);
    for (size_t i = 0; i < hosts.n; i++)
        printf("%s %s", i ? "," : "", hosts.name[i]);
    printf("\n");
    if (res.ca_created)
        printf("The CA may sign only for these names and addresses. Install %s/%s once\n"
               "on every staff device (browser or OS trust store) and compare the\n"
               "fingerprint above; see docs/USERS_AND_TLS.md. Keep %s secret: whoever\n"
               "has it can impersonate the node.\n",
               dir, NODE_CERT_CA_PEM, NODE_CERT_CA_KEY);
    else
        printf("Devices that trust this CA need no change. Restart outpostd to use the\n"
               "new certificate.\n");
    if (res.ca_unconstrained)
        fprintf(stderr,
                "outpost cert: WARNING: the local CA in %s/%s has no name constraints: whoever\n"
                "  obtains %s can make certificates for ANY site that devices trusting\n"
                "  it accept. Replace it with 'outpost cert create --new-ca --hosts ...'\n"
                "  and install the new CA on every device (then remove the old one).\n",
                dir, NODE_CERT_CA_PEM, NODE_CERT_CA_KEY);
    return CLI_OK;
}

/* From the database's path: the default directory. */
static int create_beside(const char *db_path, const char *hosts, int days, unsigned flags)
{
    char dbdir[PATH_MAX];
    fsutil_dir_of(db_path, dbdir, sizeof dbdir);
    return create(dbdir, hosts, days, flags);
}

int cmd_cert_create(const char *db_path, const char *hosts)
{
    return create_beside(db_path, hosts, 0, 0);
}

struct args {
    const char *dir, *hosts, *days;
    int new_ca;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    if (c->npos > 0)
        return cli_bad(c, "unexpected argument '%s'", c->pos[0]);
    int64_t days = 0;
    if (a->days && cli_parse_int(a->days, 1, NODE_CERT_DAYS_MAX, &days) < 0)
        return cli_bad(c, "--days: expected 1 to %d, got '%s'", NODE_CERT_DAYS_MAX, a->days);
    unsigned flags = a->new_ca ? NODE_CERT_NEW_CA : 0;
    if (!a->dir)
        return create_beside(c->db_path, a->hosts, (int)days, flags);
    return create(a->dir, a->hosts, (int)days, flags);
}

static const struct cli_option opts[] = {
    CLI_STR("dir", struct args, dir),
    CLI_STR("hosts", struct args, hosts),
    CLI_STR("days", struct args, days),
    CLI_FLAG("new-ca", struct args, new_ca),
    CLI_OPT_END,
};

const struct cli_command cmd_cert = {
    CLI_COMMAND("cert", "create the node's local CA and TLS certificate", run, usage, opts,
                struct args),
    .subs = (const char *const[]){"create", NULL},
};
