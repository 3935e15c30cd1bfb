/*
 * libFuzzer target for sync/core/conf_table.c: each input is a config file
 * read with conf_load_file through a table with one key of every type
 * (path, text, whole numbers, bool, size, rate, window, log level) and a
 * cross-key check. Beyond "no crash, no leak, no overflow" it checks the
 * module's promises: a refused file leaves the caller's struct untouched,
 * comes back with a documented code and an error that names the file (and
 * for a bad line "FILE:LINE:" with a line inside the input); an accepted
 * one has every value within its key's limits, and what conf_print
 * prints loads back to the same values.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_conf_table -max_len=10000 tests/fuzz/corpus/conf_table
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_table.h"
#include "fuzz_util.h"

struct fz_conf {
    char path[64];
    char text[24];
    unsigned count;
    uint64_t big;
    int flag;
    uint64_t size;
    uint64_t rate;
    char window[16];
    int level;
};

static const struct conf_key keys[] = {
    {"path", CONF_PATH, CONF_FIELD(struct fz_conf, path), 0, 0, "", "a path"},
    {"text", CONF_TEXT, CONF_FIELD(struct fz_conf, text), 0, 0, "x", "some text"},
    {"count", CONF_UINT, CONF_FIELD(struct fz_conf, count), 1, 1000, "5", "a count"},
    {"big", CONF_U64, CONF_FIELD(struct fz_conf, big), 0, UINT64_MAX, "0", "a large number"},
    {"flag", CONF_BOOL, CONF_FIELD(struct fz_conf, flag), 0, 0, "false", "a flag"},
    {"size", CONF_SIZE, CONF_FIELD(struct fz_conf, size), 1024, 1ull << 40, "1048576", "a size"},
    {"rate", CONF_RATE, CONF_FIELD(struct fz_conf, rate), 0, UINT64_MAX, "0", "a rate"},
    {"window", CONF_WINDOW, CONF_FIELD(struct fz_conf, window), 0, 0, "", "a window"},
    {"level", CONF_LOG_LEVEL, CONF_FIELD(struct fz_conf, level), 0, 0, "info", "a log level"},
};

#define FILE_MAX 8192
#define CHECK_CODE (-ERANGE)

static const struct conf_table table = {
    .keys = keys,
    .nkeys = sizeof keys / sizeof keys[0],
    .program = "fuzzd",
    .size = sizeof(struct fz_conf),
    .file_max = FILE_MAX,
};

/* A cross-key rule, so the check's path and its message prefix run. */
static int check(const void *conf, struct op_error *err)
{
    const struct fz_conf *c = conf;
    if (c->flag && c->count > 500)
        return op_error_set(err, CHECK_CODE, "count", "count over 500 with flag set");
    return 0;
}

static char path[300], path2[300];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(path, sizeof path, "%s/fuzz.conf", fuzz_tmpdir());
    snprintf(path2, sizeof path2, "%s/printed.conf", fuzz_tmpdir());
    return 0;
}

static void same(const struct fz_conf *a, const struct fz_conf *b, const char *what)
{
    must(!strcmp(a->path, b->path) && !strcmp(a->text, b->text) && a->count == b->count &&
             a->big == b->big && a->flag == b->flag && a->size == b->size && a->rate == b->rate &&
             !strcmp(a->window, b->window) && a->level == b->level,
         what);
}

static void check_refusal(int rc, const struct op_error *err, const uint8_t *data, size_t size)
{
    must(rc == -EINVAL || rc == -EFBIG || rc == -EIO || rc == -ENOMEM || rc == CHECK_CODE,
         "a refusal has a documented code");
    must(err->msg[0] != '\0', "a refusal has a message");
    must(fuzz_starts(err->msg, path), "a refusal names the file");
    if (rc == -EINVAL) {
        long line = 0;
        must(sscanf(err->msg + strlen(path), ":%ld: ", &line) == 1, "a bad line says FILE:LINE:");
        long lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        must(line >= 1 && line <= lines, "the line is inside the input");
    }
    if (rc == CHECK_CODE)
        must(fuzz_starts(err->msg + strlen(path), ": count over 500"),
             "the check's message comes after FILE: ");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4 * FILE_MAX)
        return 0;
    fuzz_write_file(path, data, size, 0600);
    struct fz_conf conf, before;
    conf_defaults(&table, &conf);
    memcpy(&before, &conf, sizeof conf);
    struct op_error err;
    op_error_clear(&err);
    int rc = conf_load_file(&table, &conf, path, check, &err);
    if (rc < 0) {
        must(!memcmp(&conf, &before, sizeof conf), "a refused file leaves the struct untouched");
        check_refusal(rc, &err, data, size);
        return 0;
    }
    must(rc == 0, "success is 0");
    must(size <= FILE_MAX, "file_max holds");
    must(!memchr(data, '\0', size), "a file with a NUL byte is refused");
    must(memchr(conf.path, '\0', sizeof conf.path) && memchr(conf.text, '\0', sizeof conf.text) &&
             memchr(conf.window, '\0', sizeof conf.window),
         "text values are terminated");
    must(!conf.path[0] || conf.path[0] == '/', "a path is absolute or empty");
    must(conf.count >= 1 && conf.count <= 1000, "count within its limits");
    must(conf.size >= 1024 && conf.size <= (1ull << 40), "size within its limits");
    must(conf.flag == 0 || conf.flag == 1, "a bool is 0 or 1");
    must(!conf.window[0] || strlen(conf.window) == 11, "a window is HH:MM-HH:MM or empty");
    must(!(conf.flag && conf.count > 500), "the check ran");

    /* What conf_print prints is a loadable file with the same values. */
    FILE *f = fopen(path2, "we");
    must(f != NULL, "scratch file for conf_print");
    conf_print(&table, f, &conf);
    must(fclose(f) == 0, "conf_print written");
    struct fz_conf back;
    conf_defaults(&table, &back);
    op_error_clear(&err);
    rc = conf_load_file(&table, &back, path2, check, &err);
    if (rc < 0)
        fprintf(stderr, "printed config refused: %s\n", err.msg);
    must(rc == 0, "conf_print's output loads");
    same(&conf, &back, "conf_print's output loads to the same values");
    return 0;
}
