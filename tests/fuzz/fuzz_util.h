/*
 * Small helpers the fuzz targets share: the abort on a broken promise, a
 * scratch directory that lives as long as the process (under
 * $OUTPOST_FUZZ_TMPDIR, else on /dev/shm when there is one, so the fsyncs
 * of the modules under test cost nothing),
 * writing an input to a file, and emptying a directory between inputs.
 * Header-only, static: each target is one translation unit plus
 * replay_main.c or libFuzzer.
 */
#ifndef OUTPOST_FUZZ_UTIL_H
#define OUTPOST_FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A promise of the module under test is broken: say which, and crash so
 * libFuzzer keeps the input (and the replay fails). */
static inline void must(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "broken promise: %s\n", what);
        abort();
    }
}

/* Removes every file in dir; with subdirs, also empties and removes each
 * subdirectory (one level down), else subdirectories are left. */
static inline void fuzz_clear_dir(const char *dir, int subdirs)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char p[4096];
        int n = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (n < 0 || (size_t)n >= sizeof p)
            continue;
        if (subdirs && lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            fuzz_clear_dir(p, 0);
            (void)rmdir(p);
        } else {
            (void)unlink(p);
        }
    }
    closedir(d);
}

/* Removes every file in dir (not recursively; subdirectories are left). */
static inline void fuzz_empty_dir(const char *dir)
{
    fuzz_clear_dir(dir, 0);
}

/* The process's scratch directory (created on first use, mode 0700),
 * removed with its files at exit. */
static char fuzz_tmp[256];

static inline void fuzz_tmp_remove(void)
{
    if (!fuzz_tmp[0])
        return;
    fuzz_clear_dir(fuzz_tmp, 1);
    (void)rmdir(fuzz_tmp);
}

static inline const char *fuzz_tmpdir(void)
{
    if (fuzz_tmp[0])
        return fuzz_tmp;
    /* libFuzzer may end a run with _Exit, skipping the removal below:
     * tests/bench/fuzz gives each run a base it removes itself. */
    const char *base = getenv("OUTPOST_FUZZ_TMPDIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(fuzz_tmp, sizeof fuzz_tmp, "%s/outpost-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(fuzz_tmp)) {
        perror("mkdtemp");
        abort();
    }
    atexit(fuzz_tmp_remove);
    return fuzz_tmp;
}

/* Writes data to path (created or truncated) with the given mode. */
static inline void fuzz_write_file(const char *path, const void *data, size_t size, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    must(fd >= 0, "scratch file opens");
    const char *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        must(w > 0, "scratch file written");
        p += w;
        size -= (size_t)w;
    }
    must(fchmod(fd, mode) == 0, "scratch file mode");
    close(fd);
}

/* 1 when s starts with prefix. */
static inline int fuzz_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

#endif
