/*
 * `outpost`, the admin CLI: dispatches to one command per file
 * (cmd_<name>.c). Commands open the database themselves, so `--help` and
 * usage errors never touch it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "outpost_config.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"init", cmd_init, "create a node database for a region"},
    {"contact", cmd_contact, "add, show, list, update or delete contacts"},
    {"search", cmd_search, "full-text search over contacts and organizations"},
    {"import", cmd_import, "import contacts from an RFC 4180 CSV file"},
    {"export", cmd_export, "export contacts as CSV or vCard 4.0"},
    {"backup", cmd_backup, "write a consistent copy of the database"},
    {"check", cmd_check, "check database integrity, foreign keys and the search index"},
    {"user", cmd_user, "add users, set passwords, disable or enable them, list them"},
    {"token", cmd_token, "create, list or revoke API tokens for scripts"},
    {"cert", cmd_cert, "create the node's local CA and TLS certificate"},
    {"retention", cmd_retention, "purge records past the region policy's retention limits"},
    {"subject", cmd_subject, "export or erase everything held about one person"},
    {"consent", cmd_consent, "record, confirm, withdraw and check consent to contact"},
    {"egress-report", cmd_egress_report, "dry run: what would leave the node under the policy"},
    {"status", cmd_status, "sync to HQ: backlog, spool, last sync, goodput, errors"},
    {"policy", cmd_policy, "the region policy in force; accept a policy from HQ that loosens it"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost COMMAND [OPTIONS]\n\n"
                 "Administer an Outpost node database.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nEvery command takes --db PATH (default: $OUTPOST_DB, else %s)\n"
            "and --help. Exit codes: 0 ok, 1 failed, 2 usage, 3 bad input (nothing\n"
            "changed), 4 conflict or duplicate (nothing changed), 5 not found,\n"
            "6 'policy diff': the policy offered loosens the one in force.\n",
            CLI_DEFAULT_DB);
}

int main(int argc, char **argv)
{
    /* Databases, backups and exports hold personal data: files this
     * process creates are for its user alone. */
    umask(077);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("outpost %s\n", OUTPOST_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "outpost: unknown command '%s'\n\n", name);
    usage(stderr);
    return CLI_USAGE;
}
