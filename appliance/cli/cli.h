/*
 * Shared pieces of the `outpost` admin CLI: exit codes, where the database
 * is, reporting an error once, and progress lines on a terminal. Each
 * command lives in cmd_<name>.c as `int cmd_<name>(int argc, char **argv)`
 * (argv[0] is the command name) and returns one of enum cli_exit.
 */
#ifndef OUTPOST_CLI_H
#define OUTPOST_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "op_error.h"
#include "store.h"

/* Exit codes, documented in README.md; keep the two in step. */
enum cli_exit {
    CLI_OK = 0,       /* success */
    CLI_FAIL = 1,     /* the operation failed (I/O, database, check found problems) */
    CLI_USAGE = 2,    /* bad command line */
    CLI_BADINPUT = 3, /* bad input data (CSV, field value); nothing was changed */
    CLI_CONFLICT = 4, /* stale version or probable duplicate; nothing was changed */
    CLI_NOTFOUND = 5, /* no such record */
    CLI_LOOSENS = 6,  /* `policy diff`: the policy offered loosens the one in force */
};

#define CLI_DEFAULT_DB "/var/lib/outpost/node.db"

/* The database path: `opt` if given, else $OUTPOST_DB, else CLI_DEFAULT_DB. */
const char *cli_db_path(const char *opt);

/* Opens the store at path for a command; on failure prints
 * "outpost CMD: cannot open database PATH: why" and returns an exit code
 * (non-zero). `actor` for the audit log is "cli:<login name>". A store
 * opened for writing gets the node's region policy (node_policy: the file
 * named by $OUTPOST_POLICY, else a policy-override.yaml from HQ beside the
 * database, else the region's profile found by policy_find_file),
 * which lives until the process exits; a missing or invalid policy fails
 * the command with a message naming the file, line and key. */
int cli_open_store(const char *cmd, const char *path, unsigned db_flags, struct store **out);

/* Who is at the keyboard, for the audit log and the policy ledger:
 * "cli:<login name>". */
void cli_actor(char *out, size_t cap);

/* Maps a negative code from the store or db to an exit code. */
int cli_exit_for(int rc);

/* Prints "outpost CMD: message" to stderr (with the duplicate's id or the
 * field when err names them) and returns cli_exit_for(rc). */
int cli_fail(const char *cmd, int rc, const struct op_error *err);

/* Prints "outpost CMD: <formatted>" to stderr and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal number in [min, max]; returns 0 or -EINVAL. */
int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Progress on long work: a line on stderr, rewritten in place at most a
 * few times a second, and only when stderr is a terminal. */
struct cli_progress {
    const char *what; /* "imported", "exported" */
    int enabled;
    uint64_t start_ms;
    uint64_t last_ms;
    uint64_t done;
};
void cli_progress_start(struct cli_progress *p, const char *what);
void cli_progress_tick(struct cli_progress *p, uint64_t done);
/* Clears the progress line. */
void cli_progress_done(struct cli_progress *p);

/* Monotonic milliseconds. */
uint64_t cli_now_ms(void);

/* The commands. */
int cmd_init(int argc, char **argv);
int cmd_contact(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_retention(int argc, char **argv);
int cmd_subject(int argc, char **argv);
int cmd_consent(int argc, char **argv);
int cmd_egress_report(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_policy(int argc, char **argv);

#endif
