/*
 * Directory steps for durable writes (fsutil.h). Nothing here keeps state;
 * every descriptor opened is closed before returning.
 */
#include "fsutil.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void fsutil_dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

int fsutil_fsync_dir(const char *dir, struct op_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return op_error_set(err, -e, NULL, "cannot open directory %s: %s", dir, strerror(e));
    }
    int rc = 0;
    if (fsync(fd) < 0) {
        int e = errno;
        rc = op_error_set(err, -e, NULL, "cannot sync directory %s: %s", dir, strerror(e));
    }
    (void)close(fd);
    return rc;
}

int fsutil_fsync_dir_of(const char *path, struct op_error *err)
{
    char dir[PATH_MAX];
    fsutil_dir_of(path, dir, sizeof dir);
    return fsutil_fsync_dir(dir, err);
}

/* pwrite (writing) or pread until n bytes have moved; a call that moves
 * nothing (the file ended, or a write went nowhere) is -EIO rather than a
 * loop without end. */
static int rw_all(int fd, unsigned char *p, size_t n, uint64_t off, int writing)
{
    while (n > 0) {
        ssize_t k = writing ? pwrite(fd, p, n, (off_t)off) : pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int fsutil_pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    return rw_all(fd, (unsigned char *)buf, n, off, 1);
}

int fsutil_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    return rw_all(fd, buf, n, off, 0);
}
