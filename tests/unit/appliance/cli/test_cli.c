/* Tests for appliance/cli/cli.c: the command-line parser every `outpost`
 * command goes through, on commands of the test's own (options of each
 * kind, subcommands, --db and --help, in-order parsing), the exact usage
 * errors it prints, and the exit-code rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "testlib.h"

struct args {
    int flag;
    const char *str, *file;
    int64_t num;
    int pick;
};

/* What the last run saw. */
static struct {
    int ran;
    struct args a;
    const char *sub, *db_path;
    int isub, npos;
    char *pos[4];
} seen;

static int usage_calls;

static void usage(FILE *out)
{
    usage_calls++;
    fprintf(out, "usage: outpost x\n");
}

static int run(const struct cli_call *c)
{
    seen.ran = 1;
    seen.a = *(const struct args *)c->args;
    seen.sub = c->sub;
    seen.isub = c->isub;
    seen.db_path = c->db_path;
    seen.npos = c->npos;
    for (int i = 0; i < c->npos && i < 4; i++)
        seen.pos[i] = c->pos[i];
    return 42;
}

static const struct cli_option opts[] = {
    CLI_FLAG("flag", struct args, flag),
    CLI_STR("str", struct args, str),
    CLI_FILE("file", struct args, file),
    CLI_INT("num", struct args, num, 1, 9),
    CLI_CHOICE("pick", struct args, pick, "csv", "vcard"),
    CLI_REFUSE("secret", "secrets are not taken here"),
    CLI_OPT_END,
};

#define TEST_COMMAND(nm, fl, sb)                                                                   \
    {                                                                                              \
        .name = (nm), .run = run, .usage = usage, .opts = opts, .args_size = sizeof(struct args),  \
        .flags = (fl), .subs = (sb)                                                                \
    }

static const struct cli_command flat = TEST_COMMAND("x", 0, NULL);
static const struct cli_command no_args = TEST_COMMAND("x", CLI_NO_ARGS, NULL);
static const struct cli_command in_order = TEST_COMMAND("x", CLI_IN_ORDER, NULL);
static const struct cli_command with_subs =
    TEST_COMMAND("y", 0, ((const char *const[]){"one", "two", NULL}));

static char err_text[4096];

/* Runs cmd on the words of line (space-separated, at most 15) with stdout
 * and stderr captured; stderr lands in err_text. */
static int call(const struct cli_command *cmd, const char *line)
{
    static char buf[512];
    char *argv[16];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && argc < 15;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    memset(&seen, 0, sizeof seen);
    usage_calls = 0;

    fflush(stdout);
    fflush(stderr);
    FILE *cap = tmpfile();
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    FILE *null = fopen("/dev/null", "we");
    dup2(fileno(null), STDOUT_FILENO);
    dup2(fileno(cap), STDERR_FILENO);
    int rc = cli_run(cmd, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    fclose(null);
    rewind(cap);
    size_t n = fread(err_text, 1, sizeof err_text - 1, cap);
    err_text[n] = '\0';
    fclose(cap);
    return rc;
}

static void test_options_of_each_kind(void)
{
    CHECK_EQ(call(&flat, "x --flag --str s --file f --num 7 --pick vcard --db /d.db a b"), 42);
    CHECK(seen.ran);
    CHECK_EQ(seen.a.flag, 1);
    CHECK_STR(seen.a.str, "s");
    CHECK_STR(seen.a.file, "f");
    CHECK_EQ(seen.a.num, 7);
    CHECK_EQ(seen.a.pick, 1);
    CHECK_STR(seen.db_path, "/d.db");
    CHECK(seen.sub == NULL);
    CHECK_EQ(seen.npos, 2);
    CHECK_STR(seen.pos[0], "a");
    CHECK_STR(seen.pos[1], "b");
    CHECK_STR(err_text, "");

    /* Options may follow arguments; unset ones stay zero. */
    CHECK_EQ(call(&flat, "x a --str=v"), 42);
    CHECK_STR(seen.a.str, "v");
    CHECK_EQ(seen.a.flag, 0);
    CHECK(seen.a.file == NULL);
    CHECK_EQ(seen.npos, 1);
}

static void test_db_path_default(void)
{
    setenv("OUTPOST_DB", "/env.db", 1);
    CHECK_EQ(call(&flat, "x"), 42);
    CHECK_STR(seen.db_path, "/env.db");
    unsetenv("OUTPOST_DB");
    CHECK_EQ(call(&flat, "x"), 42);
    CHECK_STR(seen.db_path, CLI_DEFAULT_DB);
}

static void test_help_runs_nothing(void)
{
    CHECK_EQ(call(&flat, "x --str s --help --bogus"), CLI_OK);
    CHECK(!seen.ran);
    CHECK_EQ(usage_calls, 1);
    /* An error before --help is reported first, as getopt meets it. */
    CHECK_EQ(call(&flat, "x --bogus --help"), CLI_USAGE);
    CHECK_EQ(usage_calls, 0);
}

#define SEE_X "\n(see 'outpost x --help')\n"
#define SEE_Y "\n(see 'outpost y --help')\n"

/* Command lines that are usage errors, and the whole of what each prints. */
static const struct {
    const struct cli_command *cmd;
    const char *line, *err;
} usage_errors[] = {
    {&flat, "x --bogus", "outpost x: unknown option '--bogus'" SEE_X},
    {&flat, "x --bogus=1", "outpost x: unknown option '--bogus'" SEE_X},
    {&flat, "x a --bogus", "outpost x: unknown option '--bogus'" SEE_X},
    {&flat, "x --str", "outpost x: --str needs a value" SEE_X},
    {&flat, "x a --str", "outpost x: --str needs a value" SEE_X},
    {&flat, "x --num 10", "outpost x: --num: expected 1 to 9, got '10'" SEE_X},
    {&flat, "x --pick xml", "outpost x: unknown pick 'xml' (csv or vcard)" SEE_X},
    {&flat, "x --file=", "outpost x: --file needs a file name" SEE_X},
    {&flat, "x --secret=abc", "outpost x: secrets are not taken here" SEE_X},
    {&no_args, "x --flag extra", "outpost x: unexpected argument 'extra'" SEE_X},
    /* With subcommands, the subcommand is named too. */
    {&with_subs, "y three", "outpost y: unknown subcommand 'three' (one, two)" SEE_Y},
    {&with_subs, "y two --str", "outpost y: two: --str needs a value" SEE_Y},
    {&with_subs, "y one --bogus", "outpost y: one: unknown option '--bogus'" SEE_Y},
    {&with_subs, "y one --secret", "outpost y: one: secrets are not taken here" SEE_Y},
};

static void test_usage_errors(void)
{
    for (size_t i = 0; i < sizeof usage_errors / sizeof usage_errors[0]; i++) {
        CHECK_EQ(call(usage_errors[i].cmd, usage_errors[i].line), CLI_USAGE);
        CHECK_STR(err_text, usage_errors[i].err);
        CHECK(!seen.ran);
    }
    CHECK_EQ(call(&flat, "x --num 3x"), CLI_USAGE);
    CHECK_CONTAINS(err_text, "--num: expected 1 to 9, got '3x'");
}

/* Options after the arguments are options ("search lodz --limit 2");
 * after "--" every word is an argument. */
static void test_options_after_arguments(void)
{
    CHECK_EQ(call(&flat, "x a --str s b --flag"), 42);
    CHECK_EQ(seen.a.flag, 1);
    CHECK_STR(seen.a.str, "s");
    CHECK_EQ(seen.npos, 2);
    CHECK_STR(seen.pos[0], "a");
    CHECK_STR(seen.pos[1], "b");
    CHECK_EQ(call(&flat, "x a -- --str s"), 42);
    CHECK(seen.a.str == NULL);
    CHECK_EQ(seen.npos, 3);
    CHECK_STR(seen.pos[1], "--str");
}

static void test_in_order(void)
{
    CHECK_EQ(call(&in_order, "x --flag a --str s"), 42);
    CHECK_EQ(seen.a.flag, 1);
    CHECK(seen.a.str == NULL);
    CHECK_EQ(seen.npos, 3);
    CHECK_STR(seen.pos[1], "--str");
}

/* Their usage errors are in usage_errors. */
static void test_subcommands(void)
{
    CHECK_EQ(call(&with_subs, "y"), CLI_USAGE);
    CHECK_EQ(usage_calls, 1);
    CHECK(!seen.ran);
    CHECK_EQ(call(&with_subs, "y help"), CLI_OK);
    CHECK_EQ(usage_calls, 1);
    CHECK_EQ(call(&with_subs, "y two NAME --flag"), 42);
    CHECK_STR(seen.sub, "two");
    CHECK_EQ(seen.isub, 1);
    CHECK_EQ(seen.npos, 1);
    CHECK_STR(seen.pos[0], "NAME");
    CHECK_EQ(seen.a.flag, 1);
    /* Options before the subcommand are not options. */
    CHECK_EQ(call(&with_subs, "y --flag one"), CLI_USAGE);
    CHECK_CONTAINS(err_text, "unknown subcommand '--flag'");
}

static void test_exit_rules(void)
{
    static const struct cli_exit_rule own[] = {{-EEXIST, CLI_USAGE}, {0, CLI_FAIL}};
    static const struct cli_exit_rule some[] = {{-EALREADY, CLI_CONFLICT}, {0, CLI_EXIT_FOR}};
    CHECK_EQ(cli_exit_by(0, own), CLI_OK);
    CHECK_EQ(cli_exit_by(-EEXIST, own), CLI_USAGE);
    CHECK_EQ(cli_exit_by(-ENOENT, own), CLI_FAIL);
    CHECK_EQ(cli_exit_by(-EALREADY, some), CLI_CONFLICT);
    CHECK_EQ(cli_exit_by(-ENOENT, some), CLI_NOTFOUND);
    CHECK_EQ(cli_exit_by(-EINVAL, NULL), CLI_BADINPUT);
    CHECK_EQ(cli_exit_by(-EIO, NULL), CLI_FAIL);
}

int main(void)
{
    RUN(test_options_of_each_kind);
    RUN(test_db_path_default);
    RUN(test_help_runs_nothing);
    RUN(test_usage_errors);
    RUN(test_in_order);
    RUN(test_options_after_arguments);
    RUN(test_subcommands);
    RUN(test_exit_rules);
    return tl_report();
}
