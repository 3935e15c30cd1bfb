/* Tests for sync/core/conf_table.c with a small table of every type: accepted
 * and refused values with their exact messages, the file reader's
 * refusals (set twice, unknown key, bad line, too large), that a failed
 * load leaves the struct untouched, that describe and print give files
 * that load back to the same struct, the --key flag reader, and conf_load's
 * order (defaults, file, command line; all or nothing). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf_table.h"
#include "log.h"
#include "fixture.h"
#include "testlib.h"

struct tconf {
    char path[16];
    char text[8];
    unsigned u;
    unsigned wide;
    uint64_t big;
    int flag;
    uint64_t size;
    uint64_t rate;
    char window[12];
    int level;
};

#define FIELD(f) CONF_FIELD(struct tconf, f)

static const struct conf_key keys[] = {
    {"path", CONF_PATH, FIELD(path), 0, 0, "/srv/a", "an absolute path"},
    {"text", CONF_TEXT, FIELD(text), 0, 0, "hi", "some text"},
    {"u", CONF_UINT, FIELD(u), 1, 10, "5", "an unsigned from 1 to 10"},
    {"wide", CONF_UINT, FIELD(wide), 0, UINT64_MAX, "7", "an unsigned, table max too large"},
    {"big", CONF_U64, FIELD(big), 0, (uint64_t)1 << 40, "1099511627776", "a uint64_t"},
    {"flag", CONF_BOOL, FIELD(flag), 0, 0, "false", "a boolean"},
    {"size", CONF_SIZE, FIELD(size), 1024, 1 << 20, "4KiB", "a size"},
    {"rate", CONF_RATE, FIELD(rate), 0, 1 << 30, "64kbit", "a rate"},
    {"window", CONF_WINDOW, FIELD(window), 0, 0, "", "a sync window"},
    {"level", CONF_LOG_LEVEL, FIELD(level), 0, 0, "info", "a log level"},
};

static const struct conf_table table = {
    .keys = keys,
    .nkeys = sizeof keys / sizeof keys[0],
    .program = "testd",
    .size = sizeof(struct tconf),
    .file_max = 256,
};

/* Refuses flag > u when both are set: the cross-key check under test. */
static int check(const void *conf, struct op_error *err)
{
    const struct tconf *c = conf;
    if (c->flag && c->u > 8)
        return op_error_set(err, -EINVAL, "u", "u: at most 8 while flag is on, got %u", c->u);
    return 0;
}

static void defaults(void)
{
    struct tconf c;
    memset(&c, 0xa5, sizeof c);
    conf_defaults(&table, &c);
    CHECK_STR(c.path, "/srv/a");
    CHECK_STR(c.text, "hi");
    CHECK_EQ(c.u, 5);
    CHECK_EQ(c.wide, 7);
    CHECK(c.big == (uint64_t)1 << 40);
    CHECK_EQ(c.flag, 0);
    CHECK_EQ(c.size, 4096);
    CHECK_EQ(c.rate, 8000);
    CHECK_STR(c.window, "");
    CHECK_EQ(c.level, LOG_LEVEL_INFO);
}

/* Sets key to value with conf_set and expects success. */
static void accepts(const char *key, const char *value)
{
    struct tconf c;
    conf_defaults(&table, &c);
    struct op_error err;
    op_error_clear(&err);
    int rc = conf_set(&table, &c, key, value, "--x", &err);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s = '%s': %s\n", key, value, err.msg);
}

/* A refusal as promised: exactly msg, the field named, c as before. */
static void refused(const struct op_error *err, const char *msg, const char *field,
                    const struct tconf *c, const struct tconf *before)
{
    CHECK_STR(err->msg, msg);
    CHECK_STR(err->field, field);
    CHECK_EQ(memcmp(c, before, sizeof *c), 0);
}

/* Sets key to value and expects -EINVAL with exactly `msg`, the field
 * named, and the struct unchanged. */
static void refuses(const char *key, const char *value, const char *msg)
{
    struct tconf c, before;
    conf_defaults(&table, &c);
    before = c;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(conf_set(&table, &c, key, value, "--x", &err), -EINVAL);
    refused(&err, msg, key, &c, &before);
}

static void every_type(void)
{
    struct tconf c;
    conf_defaults(&table, &c);
    struct op_error err;
    CHECK_EQ(conf_set(&table, &c, "path", "/etc/x.conf", "--x", &err), 0);
    CHECK_STR(c.path, "/etc/x.conf");
    CHECK_EQ(conf_set(&table, &c, "path", "", "--x", &err), 0);
    CHECK_STR(c.path, "");
    accepts("path", "/123456789abcde"); /* 15 bytes: the most that fits */
    refuses("path", "relative/x", "--x: path: must be an absolute path, got 'relative/x'");
    refuses("path", "/123456789abcdef", "--x: path: longer than 15 bytes");

    CHECK_EQ(conf_set(&table, &c, "text", "any 7ch", "--x", &err), 0);
    CHECK_STR(c.text, "any 7ch");
    accepts("text", "");
    refuses("text", "12345678", "--x: text: longer than 7 bytes");

    CHECK_EQ(conf_set(&table, &c, "u", "10", "--x", &err), 0);
    CHECK_EQ(c.u, 10);
    accepts("u", "1");
    refuses("u", "0", "--x: u: expected a whole number from 1 to 10, got '0'");
    refuses("u", "11", "--x: u: expected a whole number from 1 to 10, got '11'");
    refuses("u", "-1", "--x: u: expected a whole number from 1 to 10, got '-1'");
    refuses("u", "5x", "--x: u: expected a whole number from 1 to 10, got '5x'");
    refuses("u", "", "--x: u: expected a whole number from 1 to 10, got ''");
    refuses("u", "99999999999999999999999",
            "--x: u: expected a whole number from 1 to 10, got '99999999999999999999999'");
    /* an unsigned field never takes more than UINT_MAX, whatever the table says */
    char max[32], over[32], want[128];
    snprintf(max, sizeof max, "%u", UINT_MAX);
    snprintf(over, sizeof over, "%llu", (unsigned long long)UINT_MAX + 1);
    CHECK_EQ(conf_set(&table, &c, "wide", max, "--x", &err), 0);
    CHECK(c.wide == UINT_MAX);
    snprintf(want, sizeof want, "--x: wide: expected a whole number from 0 to %u, got '%s'",
             UINT_MAX, over);
    refuses("wide", over, want);

    CHECK_EQ(conf_set(&table, &c, "big", "0", "--x", &err), 0);
    CHECK_EQ(c.big, 0);
    accepts("big", "1099511627776");
    refuses("big", "1099511627777",
            "--x: big: expected a whole number from 0 to 1099511627776, got '1099511627777'");
    refuses("big", "18446744073709551616",
            "--x: big: expected a whole number from 0 to 1099511627776, got "
            "'18446744073709551616'");

    static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};
    for (size_t i = 0; i < 3; i++) {
        c.flag = 0;
        CHECK_EQ(conf_set(&table, &c, "flag", yes[i], "--x", &err), 0);
        CHECK_EQ(c.flag, 1);
        CHECK_EQ(conf_set(&table, &c, "flag", no[i], "--x", &err), 0);
        CHECK_EQ(c.flag, 0);
    }
    refuses("flag", "perhaps", "--x: flag: expected true or false, got 'perhaps'");
    refuses("flag", "TRUE", "--x: flag: expected true or false, got 'TRUE'");

    CHECK_EQ(conf_set(&table, &c, "size", "480KB", "--x", &err), 0);
    CHECK_EQ(c.size, 480000);
    CHECK_EQ(conf_set(&table, &c, "size", "1MiB", "--x", &err), 0);
    CHECK_EQ(c.size, 1048576);
    refuses("size", "2MiB", "--x: size: expected 1024 to 1048576 bytes, got '2MiB' (2097152)");
    refuses("size", "1000", "--x: size: expected 1024 to 1048576 bytes, got '1000' (1000)");
    refuses("size", "64kbit",
            "--x: size: expected a size: a number with an optional unit (B, KB, MB, GB, KiB, "
            "MiB, GiB), e.g. 480KB; got '64kbit'");

    CHECK_EQ(conf_set(&table, &c, "rate", "1Mbit/s", "--x", &err), 0);
    CHECK_EQ(c.rate, 125000);
    CHECK_EQ(conf_set(&table, &c, "rate", "0", "--x", &err), 0);
    CHECK_EQ(c.rate, 0);
    refuses("rate", "fast",
            "--x: rate: expected a rate: a number of bytes per second with an optional unit "
            "(B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit), e.g. 64kbit; got 'fast'");
    refuses("rate", "2GB", "--x: rate: expected 0 to 1073741824 bytes, got '2GB' (2000000000)");

    CHECK_EQ(conf_set(&table, &c, "window", "22:00-06:00", "--x", &err), 0);
    CHECK_STR(c.window, "22:00-06:00");
    CHECK_EQ(conf_set(&table, &c, "window", "", "--x", &err), 0);
    CHECK_STR(c.window, "");
    refuses("window", "25:00-06:00",
            "--x: window: expected HH:MM-HH:MM in local time (e.g. 19:00-06:30), or nothing "
            "for any time; got '25:00-06:00'");
    refuses("window", "10:00-10:00",
            "--x: window: '10:00-10:00' opens and closes at the same minute; leave it empty "
            "to sync at any time");
    refuses("window", "22:00-06:00x", "--x: window: expected HH:MM-HH:MM");

    static const char *const levels[] = {"err", "warning", "notice", "info", "debug"};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(conf_set(&table, &c, "level", levels[i], "--x", &err), 0);
        CHECK_EQ(c.level, LOG_LEVEL_ERR + i);
    }
    refuses("level", "verbose",
            "--x: level: expected err, warning, notice, info or debug, got 'verbose'");
    refuses("level", "", "--x: level: expected err, warning, notice, info or debug, got ''");
    refuses("level", "7", "--x: level: expected err, warning, notice, info or debug, got '7'");
}

static void unknown_key_and_bad_table(void)
{
    struct tconf c, before;
    conf_defaults(&table, &c);
    before = c;
    struct op_error err;
    CHECK_EQ(conf_set(&table, &c, "nope", "1", "--nope", &err), -ENOENT);
    refused(&err, "--nope: unknown key 'nope' (see 'testd --describe-config')", "nope", &c,
            &before);

    /* a table whose field size does not match its type writes nothing */
    static const struct conf_key bad_keys[] = {
        {"u", CONF_U64, FIELD(u), 0, 10, "1", "a u64 over an unsigned"},
    };
    const struct conf_table bad = {bad_keys, 1, "testd", sizeof(struct tconf), 256};
    CHECK_EQ(conf_set(&bad, &c, "u", "1", "--u", &err), -EINVAL);
    CHECK_STR(err.msg, "--u: u: the key table gives a 4-byte field");
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0);
}

/* Loads text as t.conf on top of a struct with u = 3 and expects rc and
 * exactly "DIR/t.conf" + msg, with the struct untouched. */
static void load_refuses(const char *text, int rc, const char *msg, const char *field)
{
    struct tconf c, before;
    conf_defaults(&table, &c);
    c.u = 3;
    before = c;
    const char *p = fx_file("t.conf", text);
    struct op_error err;
    op_error_clear(&err);
    char want[600];
    snprintf(want, sizeof want, "%s%s", p, msg);
    CHECK_EQ(conf_load_file(&table, &c, p, check, &err), rc);
    refused(&err, want, field, &c, &before);
}

static void load_file(void)
{
    struct tconf c;
    conf_defaults(&table, &c);
    struct op_error err;
    const char *p = fx_file("ok.conf", "# a comment\n\n  u = 7  \nflag=yes\n"
                                       "\twindow = 19:00-06:30\nsize = 8 KiB\n");
    CHECK_EQ(conf_load_file(&table, &c, p, check, &err), 0);
    CHECK_EQ(c.u, 7);
    CHECK_EQ(c.flag, 1);
    CHECK_STR(c.window, "19:00-06:30");
    CHECK_EQ(c.size, 8192);
    CHECK_STR(c.path, "/srv/a"); /* untouched keys keep their value */

    load_refuses("u = 2\nu = 4\n", -EINVAL, ":2: u: set twice", "u");
    load_refuses("u = 2\ncolour = blue\n", -EINVAL,
                 ":2: unknown key 'colour' (see 'testd --describe-config')", "colour");
    load_refuses("u = 2\njust words\n", -EINVAL, ":2: expected 'key = value', got 'just words'",
                 "");
    /* the good lines before a bad one are not applied either */
    load_refuses("u = 9\ntext = fine\nbig = lots\n", -EINVAL,
                 ":3: big: expected a whole number from 0 to 1099511627776, got 'lots'", "big");
    load_refuses("path = here\n", -EINVAL, ":1: path: must be an absolute path, got 'here'",
                 "path");
    /* the cross-key check runs on the loaded copy; its message gets the file */
    load_refuses("u = 9\nflag = true\n", -EINVAL, ": u: at most 8 while flag is on, got 9", "u");

    char big[600];
    size_t n = 0;
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "# line %d of a file over its limit.....\n",
                              i);
    CHECK(n > 256);
    load_refuses(big, -EFBIG, ":7: file larger than 256 bytes", "");

    char missing[320];
    snprintf(missing, sizeof missing, "%s/missing.conf", fx_dir);
    CHECK_EQ(conf_load_file(&table, &c, missing, check, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "cannot read config ");
    CHECK_CONTAINS(err.msg, "missing.conf");
}

/* Writes n bytes (NULs included) to fx_dir/NAME; returns its path. */
static const char *bytes_file(const char *name, const char *data, size_t n)
{
    static char path[FX_PATH_MAX];
    FILE *f = fopen(fx_path(path, sizeof path, name), "w");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(data, 1, n, f), n);
    CHECK_EQ(fclose(f), 0);
    return path;
}

/* A NUL byte is refused with its line, and every byte of a line counts
 * toward file_max, those after a NUL too. */
static void nul_bytes(void)
{
    struct tconf c, before;
    conf_defaults(&table, &c);
    before = c;
    struct op_error err;
    static const char small[] = "u = 2\nflag = \0yes\n";
    const char *p = bytes_file("nul.conf", small, sizeof small - 1);
    CHECK_EQ(conf_load_file(&table, &c, p, check, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "nul.conf:2: a NUL byte");
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0);

    char big[400] = "u = 2\n# ";
    big[sizeof big - 1] = '\n'; /* 390 NULs on line 2: over the 256-byte limit */
    p = bytes_file("nulbig.conf", big, sizeof big);
    CHECK_EQ(conf_load_file(&table, &c, p, check, &err), -EFBIG);
    CHECK_CONTAINS(err.msg, "nulbig.conf:2: file larger than 256 bytes");
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0);
}

static void long_line(void)
{
    struct tconf c, before;
    conf_defaults(&table, &c);
    before = c;
    const struct conf_table roomy = {keys, table.nkeys, "testd", sizeof(struct tconf), 65536};
    char text[5000];
    memset(text, '#', 4500);
    text[4500] = '\n';
    text[4501] = '\0';
    const char *p = fx_file("long.conf", text);
    struct op_error err;
    CHECK_EQ(conf_load_file(&roomy, &c, p, NULL, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "long.conf:1: line longer than 4094 bytes");
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0);
}

/* Writes conf_print of c, or conf_describe when c is NULL, to a file and
 * returns its path. */
static const char *capture(const char *name, const struct tconf *c)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/%s", fx_dir, name);
    FILE *f = fopen(path, "w");
    if (c)
        conf_print(&table, f, c);
    else
        conf_describe(&table, f);
    fclose(f);
    return path;
}

static void describe_and_print_round_trip(void)
{
    const struct conf_table roomy = {keys, table.nkeys, "testd", sizeof(struct tconf), 65536};
    struct tconf a, b;
    struct op_error err;

    /* describe: the defaults, loadable */
    const char *p = capture("described.conf", NULL);
    conf_defaults(&table, &a);
    memset(&b, 0, sizeof b);
    CHECK_EQ(conf_load_file(&roomy, &b, p, check, &err), 0);
    CHECK_EQ(memcmp(&a, &b, sizeof a), 0);
    FILE *f = fopen(p, "r");
    char line[200] = "";
    CHECK(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    CHECK_STR(line, "# testd configuration: 'key = value' per line, '#' comments.\n");

    /* print: every value, non-default ones included, loads back the same */
    conf_defaults(&table, &a);
    CHECK_EQ(conf_set(&table, &a, "path", "", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "text", "a b=c", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "u", "8", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "wide", "4294967295", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "big", "123456789012", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "flag", "yes", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "size", "999KB", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "rate", "3Mbit", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "window", "23:59-00:01", "--x", &err), 0);
    CHECK_EQ(conf_set(&table, &a, "level", "warning", "--x", &err), 0);
    p = capture("printed.conf", &a);
    conf_defaults(&table, &b);
    op_error_clear(&err);
    CHECK_EQ(conf_load_file(&table, &b, p, check, &err), 0);
    CHECK_STR(err.msg, "");
    CHECK_EQ(memcmp(&a, &b, sizeof a), 0);
    CHECK_STR(b.text, "a b=c"); /* only the first '=' splits */
    CHECK_EQ(b.size, 999000);
    CHECK_EQ(b.rate, 375000);
    CHECK_EQ(b.level, LOG_LEVEL_WARNING);
}

/* --key value and --key=value, '-' read as '_', and the three ways a word
 * is not a flag. */
static void flags(void)
{
    char *argv[] = {"--log-level", "debug", "--u=7", "--x=", "plain", "--", "--path"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    struct conf_flag f;
    struct op_error err;
    int i = 0;
    CHECK_EQ(conf_flag_read(argc, argv, &i, &f, &err), 0);
    CHECK_STR(f.key, "log_level");
    CHECK_STR(f.value, "debug");
    CHECK_STR(f.where, "--log-level");
    CHECK_EQ(i, 1);
    i = 2;
    CHECK_EQ(conf_flag_read(argc, argv, &i, &f, &err), 0);
    CHECK_STR(f.key, "u");
    CHECK_STR(f.value, "7");
    CHECK_EQ(i, 2);
    i = 3;
    CHECK_EQ(conf_flag_read(argc, argv, &i, &f, &err), 0);
    CHECK_STR(f.value, "");
    i = 4;
    CHECK_EQ(conf_flag_read(argc, argv, &i, &f, &err), -EINVAL);
    CHECK_STR(err.msg, "unexpected argument 'plain'");
    i = 5;
    CHECK_EQ(conf_flag_read(argc, argv, &i, &f, &err), -EINVAL);
    CHECK_STR(err.msg, "unexpected argument '--'");
    i = 6;
    CHECK_EQ(conf_flag_read(argc, argv, &i, &f, &err), -EINVAL);
    CHECK_STR(err.msg, "--path needs a value");
    CHECK_EQ(i, 6);
    char lng[100] = "--";
    memset(lng + 2, 'k', 80);
    char *one[] = {lng};
    i = 0;
    CHECK_EQ(conf_flag_read(1, one, &i, &f, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "unknown option '--kkkk");
}

/* conf_load's overlay: the command line of the test, "u" then the check. */
static int overlay(void *conf, void *ctx, struct op_error *err)
{
    const char *u = ctx;
    if (!strcmp(u, "help"))
        return 1;
    int rc = conf_set(&table, conf, "u", u, "--u", err);
    return rc < 0 ? rc : check(conf, err);
}

/* Defaults, file, command line, in that order; all or nothing. */
static void load_in_order(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s", fx_file("order.conf", "u = 2\nflag = true\ntext = file\n"));
    struct tconf c;
    memset(&c, 0x5a, sizeof c);
    struct tconf before = c;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(conf_load(&table, &c, p, check, overlay, "8", &err), 0);
    CHECK_EQ(c.u, 8);
    CHECK_STR(c.text, "file");
    CHECK_STR(c.path, "/srv/a");
    CHECK_EQ(c.flag, 1);
    /* no file: defaults and the command line */
    CHECK_EQ(conf_load(&table, &c, NULL, check, overlay, "3", &err), 0);
    CHECK_EQ(c.u, 3);
    CHECK_EQ(c.flag, 0);
    CHECK_STR(c.text, "hi");
    /* the command line breaks the check: nothing changes */
    memcpy(&c, &before, sizeof c);
    CHECK_EQ(conf_load(&table, &c, p, check, overlay, "9", &err), -EINVAL);
    CHECK_STR(err.msg, "u: at most 8 while flag is on, got 9");
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0);
    /* a bad file: the file's message, the overlay not run */
    const char *bad = fx_file("bad_order.conf", "u = 11\n");
    CHECK_EQ(conf_load(&table, &c, bad, check, overlay, "help", &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "bad_order.conf:1: u: expected a whole number from 1 to 10");
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0);
    /* an overlay that stops (--help) stops the load, unchanged */
    CHECK_EQ(conf_load(&table, &c, p, check, overlay, "help", &err), 1);
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0);
    CHECK_EQ(conf_load(&table, &c, NULL, NULL, NULL, NULL, &err), 0);
    CHECK_EQ(c.u, 5);
}

int main(void)
{
    fx_tmpdir("conf-table");
    RUN(defaults);
    RUN(every_type);
    RUN(unknown_key_and_bad_table);
    RUN(load_file);
    RUN(long_line);
    RUN(nul_bytes);
    RUN(describe_and_print_round_trip);
    RUN(flags);
    RUN(load_in_order);
    return fx_finish();
}
