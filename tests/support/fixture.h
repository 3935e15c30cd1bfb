/*
 * The set-up every unit test shares: its own temporary directory (unique
 * per run, under $TMPDIR or /tmp, so tests run in parallel), removed with
 * everything in it when the test ends; a clock the test moves; a fatal
 * exit for set-up that cannot go on; and small file helpers. A test's
 * main calls fx_tmpdir("name") first and returns fx_finish() last.
 * Higher fixtures build on this one: store_fixture.h (a node database in
 * the directory), api_fixture.h, ledger_fixture.h.
 */
#ifndef OUTPOST_TEST_FIXTURE_H
#define OUTPOST_TEST_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op_error.h"
#include "testlib.h"

#define FX_PATH_MAX 256

/* The test's temporary directory, once fx_tmpdir has made it. */
static char fx_dir[FX_PATH_MAX] __attribute__((unused));

/* The time fx_clock reports, in ms since the epoch; the test moves it. */
static uint64_t fx_clock_ms __attribute__((unused));

/* A clock for store_set_clock and the like: fx_clock_ms. */
static inline uint64_t fx_clock(void *ctx)
{
    (void)ctx;
    return fx_clock_ms;
}

/* Ends the test run: set-up that fails is not a test result. */
static inline void fx_die(const char *what, const struct op_error *err)
{
    fprintf(stderr, "fixture: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

/* Makes a fresh directory outpost-test-NAME-XXXXXX under $TMPDIR (or /tmp)
 * into out (cap bytes); exits when it cannot. */
static inline const char *fx_mkdtemp(const char *name, char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(out, cap, "%s/outpost-test-%s-XXXXXX", base && *base ? base : "/tmp", name);
    if (n < 0 || (size_t)n >= cap)
        fx_die("temporary directory name too long", NULL);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(1);
    }
    return out;
}

/* Makes the test's own directory, fx_dir; exits when it cannot. */
static inline const char *fx_tmpdir(const char *name)
{
    return fx_mkdtemp(name, fx_dir, sizeof fx_dir);
}

/* fx_dir/NAME into out (cap bytes); returns out. */
static inline char *fx_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", fx_dir, name);
    if (n < 0 || (size_t)n >= cap)
        fx_die("path too long", NULL);
    return out;
}

static inline int fx_unlink_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(p) < 0 ? -1 : 0;
}

/* Removes dir and everything below it (files, folders, sockets);
 * returns 0 or -1. */
static inline int fx_remove_tree(const char *dir)
{
    return nftw(dir, fx_unlink_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes fx_dir (if made) and returns the test's exit code. */
static inline int fx_finish(void)
{
    if (fx_dir[0] && fx_remove_tree(fx_dir) < 0)
        fprintf(stderr, "could not remove %s\n", fx_dir);
    return tl_report();
}

/* Whether path names something. */
static inline int fx_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The number of entries in directory path other than . and .. (0 when
 * it cannot be opened): a test's way to see that no temporary file was
 * left behind. */
static inline int fx_count_entries(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* The whole of a file (at most 1 MiB), NUL-terminated, its length in
 * *len (when not NULL); NULL when it cannot be read. The caller frees. */
static inline char *fx_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

/* text with its first `old` replaced by `new`; exits when text has no
 * `old`. The caller frees. */
static inline char *fx_edit(const char *text, const char *old, const char *new)
{
    const char *at = strstr(text, old);
    if (!at)
        fx_die("test text edit: text not found", NULL);
    size_t n = strlen(text) - strlen(old) + strlen(new) + 1;
    char *out = malloc(n);
    if (!out)
        fx_die("out of memory", NULL);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, new, at + strlen(old));
    return out;
}

/* Writes text to path (created or truncated); exits when it cannot. */
static inline void fx_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fx_die("cannot write a test file", NULL);
}

/* Writes text to fx_dir/NAME; returns its path, valid until the next
 * call. */
static inline const char *fx_file(const char *name, const char *text)
{
    static char path[FX_PATH_MAX];
    fx_write_file(fx_path(path, sizeof path, name), text);
    return path;
}

/* Whether `needle` occurs anywhere in the file's bytes. */
static inline int fx_file_contains(const char *file, const char *needle)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return 0;
    size_t n = strlen(needle), cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    size_t got;
    int found = 0;
    while (buf && !found && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        for (size_t i = 0; i + n <= len; i++)
            if (!memcmp(buf + i, needle, n)) {
                found = 1;
                break;
            }
        if (len > n) {
            memmove(buf, buf + len - n, n);
            len = n;
        }
    }
    free(buf);
    fclose(f);
    return found;
}

#endif
