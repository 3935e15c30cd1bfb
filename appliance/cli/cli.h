/*
 * Shared pieces of the `outpost` admin CLI: the command table and the one
 * way a command line is read (common options --db and --help, the
 * command's own options, subcommands, usage errors), exit codes, where the
 * database is, opening it, reporting an error once, and progress lines on
 * a terminal. Each command lives in cmd_<name>.c as one `struct
 * cli_command` that says what it takes; cli_main parses the command line
 * by it before the handler runs, so a handler sees only valid options and
 * never a --help (which never touches the database).
 */
#ifndef OUTPOST_CLI_H
#define OUTPOST_CLI_H

#include <stddef.h>
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
    CLI_DRIFT = 7,    /* `sync verify`: node and HQ differed (repairs queued or drift reported) */
};

#define CLI_DEFAULT_DB "/var/lib/outpost/node.db"

/* The database path: `opt` if given, else $OUTPOST_DB, else CLI_DEFAULT_DB. */
const char *cli_db_path(const char *opt);

/* How long a command waits for another process's write lock before it
 * gives up with "database is locked": OUTPOST_LOCK_WAIT seconds (1 to
 * CLI_LOCK_WAIT_MAX), else CLI_LOCK_WAIT_DEFAULT. The daemon's own
 * connections wait DB_BUSY_TIMEOUT_MS and answer 503 + Retry-After. -EINVAL
 * when the variable is not such a number (*seconds the default). */
#define CLI_LOCK_WAIT_DEFAULT 30
#define CLI_LOCK_WAIT_MAX 3600
int cli_lock_wait(unsigned *seconds);

/* Opens the store at path (store_open) without the actor or the region
 * policy cli_open_store adds; on failure prints "outpost CMD: why" and
 * returns an exit code (non-zero). */
int cli_open_plain(const char *cmd, const char *path, unsigned db_flags, struct store **out);

/* Opens the store at path for a command; on failure prints
 * "outpost CMD: cannot open database PATH: why" and returns an exit code
 * (non-zero). `actor` for the audit log is "cli:<login name>". A store
 * opened for writing gets the node's region policy (node_policy: the file
 * named by $OUTPOST_POLICY, else a policy-override.yaml from HQ beside the
 * database, else the region's profile found by policy_find_file),
 * which lives until the process exits; a missing or invalid policy fails
 * the command with a message naming the file, line and key. */
int cli_open_store(const char *cmd, const char *path, unsigned db_flags, struct store **out);

/* cli_open_store for a write that needs an initialized node: else prints
 * "outpost CMD: the database has no node yet; run 'outpost init'". */
int cli_open_node(const char *cmd, const char *path, struct store **out);

/* Who is at the keyboard, for the audit log and the policy ledger:
 * "cli:<login name>". */
void cli_actor(char *out, size_t cap);

/* Maps a negative code from the store or db to an exit code. */
int cli_exit_for(int rc);

/* A command's own exit code for one error code. A list of them ends with
 * {0, OTHERS}: OTHERS is the exit code of every error not listed, or
 * CLI_EXIT_FOR for cli_exit_for's. */
struct cli_exit_rule {
    int rc;
    int exit;
};
#define CLI_EXIT_FOR (-1)

/* The exit code for rc by rules (NULL: cli_exit_for); CLI_OK for 0. */
int cli_exit_by(int rc, const struct cli_exit_rule *rules);

/* Prints "outpost CMD: message" to stderr (with the duplicate's id or the
 * field when err names them; strerror(rc) when it has no message) and
 * returns cli_exit_for(rc). */
int cli_fail(const char *cmd, int rc, const struct op_error *err);

/* cli_fail, with the exit code by rules. */
int cli_fail_by(const char *cmd, int rc, const struct op_error *err,
                const struct cli_exit_rule *rules);

/* Prints "outpost CMD: <formatted>" to stderr and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal number in [min, max]; returns 0 or -EINVAL. */
int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Progress on long work: a line on stderr, rewritten in place (the first
 * tick at once, then at most four times a second), and only when stderr
 * is a terminal, so a pipe or a log file gets nothing of it:
 *   "exported 12000 rows, 10532 rows/s"
 *   "purged 1500 of 20000 rows (7%), 2210 rows/s, about 8 s left"
 * The rate and the time left are from the start of the work. */
struct cli_progress {
    const char *what; /* "imported", "exported" */
    const char *unit; /* "rows" unless cli_progress_total said otherwise */
    int enabled;
    uint64_t start_ms;
    uint64_t last_ms;
    uint64_t done;
    uint64_t total; /* 0: not known, no percentage or time left */
    int shown;      /* a line is on the terminal */
};
void cli_progress_start(struct cli_progress *p, const char *what);
/* The amount the work will reach, and its unit (NULL: "rows"). */
void cli_progress_total(struct cli_progress *p, uint64_t total, const char *unit);
void cli_progress_tick(struct cli_progress *p, uint64_t done);
/* Clears the progress line. */
void cli_progress_done(struct cli_progress *p);

/* Monotonic milliseconds. */
uint64_t cli_now_ms(void);

/* ---- the command table -------------------------------------------------- */

/* How an option takes its value and what cli_main stores for it in the
 * command's argument struct (at `off`); a bad value is a usage error that
 * names the option, reported where it stands on the command line. */
enum cli_opt_kind {
    CLI_OPT_FLAG,   /* --NAME: an int set to 1 */
    CLI_OPT_STR,    /* --NAME VALUE: a const char * */
    CLI_OPT_FILE,   /* --NAME FILE: a const char *, not empty ("--NAME needs a file name") */
    CLI_OPT_INT,    /* --NAME N: an int64_t in [min, max] ("--NAME: expected MIN to MAX") */
    CLI_OPT_CHOICE, /* --NAME WORD: an int, WORD's index in choices ("unknown NAME 'WORD'") */
    CLI_OPT_REFUSE, /* --NAME[=VALUE]: always refused, with `why` */
};

struct cli_option {
    const char *name; /* without the leading "--"; NULL ends a list */
    enum cli_opt_kind kind;
    size_t off;
    int64_t min, max;           /* CLI_OPT_INT */
    const char *const *choices; /* CLI_OPT_CHOICE, NULL-terminated */
    const char *why;            /* CLI_OPT_REFUSE */
};

/* Option declarations for a command's table: --n stores into member m of
 * the command's argument struct T, whose type the compiler checks. */
// clang-format off
#define CLI_OPT_AT(T, m, type)                                                                     \
    (offsetof(T, m) + 0 * sizeof(struct {                                                          \
         int cli_ok_;                                                                              \
         _Static_assert(_Generic(((T *)0)->m, type: 1, default: 0),                                \
                        "option stored in a member of the wrong type");                           \
     }))
#define CLI_FLAG(n, T, m) {.name = (n), .kind = CLI_OPT_FLAG, .off = CLI_OPT_AT(T, m, int)}
#define CLI_STR(n, T, m) {.name = (n), .kind = CLI_OPT_STR, .off = CLI_OPT_AT(T, m, const char *)}
#define CLI_FILE(n, T, m) {.name = (n), .kind = CLI_OPT_FILE, .off = CLI_OPT_AT(T, m, const char *)}
#define CLI_INT(n, T, m, lo, hi)                                                                   \
    {.name = (n), .kind = CLI_OPT_INT, .off = CLI_OPT_AT(T, m, int64_t), .min = (lo), .max = (hi)}
#define CLI_CHOICE(n, T, m, ...)                                                                   \
    {.name = (n), .kind = CLI_OPT_CHOICE, .off = CLI_OPT_AT(T, m, int),                            \
     .choices = (const char *const[]){__VA_ARGS__, NULL}}
#define CLI_REFUSE(n, text) {.name = (n), .kind = CLI_OPT_REFUSE, .why = (text)}
#define CLI_OPT_END {.name = NULL}
// clang-format on

enum {
    CLI_IN_ORDER = 1u << 0,   /* options end at the first argument (`search foo --json`) */
    CLI_NO_ARGS = 1u << 1,    /* nothing but options: an argument is a usage error */
    CLI_OWN_PARSER = 1u << 2, /* the handler reads pos itself (contact: options from the schema) */
};

struct cli_call;

/* The fields of a command with options (struct cli_command below): its
 * name and summary line, its handler and --help text, and its options with
 * the argument struct T they store into. .subs and .flags may follow. */
#define CLI_COMMAND(n, text, run_fn, usage_fn, options, T)                                         \
    .name = (n), .summary = (text), .run = (run_fn), .usage = (usage_fn), .opts = (options),       \
    .args_size = sizeof(T)

/* One command of `outpost`. With subs, the first argument names one of
 * them (before any option: "outpost user add NAME --role admin") and
 * usage errors name it too ("outpost user: add: ..."). Every command takes
 * --db PATH and --help besides opts. */
struct cli_command {
    const char *name;
    const char *summary;                  /* one line for `outpost --help` */
    int (*run)(const struct cli_call *c); /* returns an enum cli_exit */
    void (*usage)(FILE *out);             /* the command's --help text */
    const struct cli_option *opts;        /* NULL-name terminated, or NULL */
    size_t args_size;                     /* the struct opts point into; zeroed before parsing */
    const char *const *subs;              /* NULL-terminated, or NULL */
    unsigned flags;                       /* CLI_IN_ORDER, CLI_NO_ARGS, CLI_OWN_PARSER */
};

/* A parsed command line, as a handler sees it. */
struct cli_call {
    const struct cli_command *cmd;
    const char *sub;     /* the subcommand named, or NULL */
    int isub;            /* its index in cmd->subs */
    const char *db_path; /* --db, else $OUTPOST_DB, else CLI_DEFAULT_DB */
    void *args;          /* cmd->args_size bytes, as cmd->opts filled them in */
    char **pos;          /* the arguments that are not options (after the subcommand) */
    int npos;
};

/* Runs `outpost ARGS...` (argv[0] is the program) and returns its exit
 * code: the top-level --help and --version, else the command named. */
int cli_main(int argc, char **argv);

/* Runs one command by its table entry; argv[0] is the command's name.
 * cli_main calls it for the command named; tests call it with their own. */
int cli_run(const struct cli_command *cmd, int argc, char **argv);

/* Prints "outpost CMD: [SUB: ]<formatted>" and the pointer to --help to
 * stderr and returns CLI_USAGE. */
int cli_bad(const struct cli_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The commands, in the order `outpost --help` lists them. */
extern const struct cli_command cmd_init, cmd_contact, cmd_search, cmd_import, cmd_export,
    cmd_backup, cmd_restore, cmd_check, cmd_user, cmd_token, cmd_cert, cmd_retention, cmd_subject,
    cmd_consent, cmd_egress_report, cmd_status, cmd_sync, cmd_policy, cmd_aggregate, cmd_outreach,
    cmd_campaign;

/* `outpost cert create` with these hosts, for `outpost init --tls-hosts`. */
int cmd_cert_create(const char *db_path, const char *hosts);

#endif
