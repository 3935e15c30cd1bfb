/*
 * Tests for sync/toolkit/fsutil.c: the directory part of each shape of
 * path, truncation to the caller's buffer, and the directory fsync on a
 * real directory, a missing one and a file; whole positional writes and
 * reads, a read past the end and a closed descriptor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "testlib.h"

static void dir_of(void)
{
    static const struct {
        const char *path;
        size_t cap;
        const char *want;
    } cases[] = {
        {"backup.db", 64, "."},
        {"/backup.db", 64, "/"},
        {"/var/lib/outpost/node.db", 64, "/var/lib/outpost"},
        {"a/b/", 64, "a/b"},
        {"/var/lib/outpost/node.db", 5, "/var"}, /* truncated, still terminated */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[64];
        fsutil_dir_of(cases[i].path, dir, cases[i].cap);
        CHECK_STR(dir, cases[i].want);
    }
}

static void fsync_dir(void)
{
    char tmp[] = "/tmp/test_fsutil-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(fsutil_fsync_dir(tmp, &err), 0);
    CHECK_EQ(fsutil_fsync_dir(".", NULL), 0);

    char missing[sizeof tmp + 16];
    snprintf(missing, sizeof missing, "%s/none", tmp);
    CHECK_EQ(fsutil_fsync_dir(missing, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "cannot open directory");
    CHECK_CONTAINS(err.msg, missing);
    CHECK_EQ(fsutil_fsync_dir(missing, NULL), -ENOENT);

    char file[sizeof tmp + 16];
    snprintf(file, sizeof file, "%s/file", tmp);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK_EQ(fsutil_fsync_dir(file, &err), -ENOTDIR);
    (void)unlink(file);
    (void)rmdir(tmp);
}

/* Whole positional writes and reads: at an offset, past the end (-EIO,
 * the file is shorter), and on a closed descriptor. */
static void pwrite_pread_all(void)
{
    char path[] = "/tmp/fsutil-rw-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    (void)unlink(path);
    CHECK_EQ(fsutil_pwrite_all(fd, "hello world", 11, 0), 0);
    CHECK_EQ(fsutil_pwrite_all(fd, "W", 1, 6), 0);
    CHECK_EQ(fsutil_pwrite_all(fd, "", 0, 100), 0);
    char buf[16] = "";
    CHECK_EQ(fsutil_pread_all(fd, buf, 11, 0), 0);
    CHECK_STR(buf, "hello World");
    CHECK_EQ(fsutil_pread_all(fd, buf, 4, 8), -EIO);
    close(fd);
    CHECK_EQ(fsutil_pwrite_all(fd, "x", 1, 0), -EBADF);
    CHECK_EQ(fsutil_pread_all(fd, buf, 1, 0), -EBADF);
}

int main(void)
{
    RUN(dir_of);
    RUN(fsync_dir);
    RUN(pwrite_pread_all);
    return tl_report();
}
