/*
 * Small file-system steps that durability rests on (STYLE.md, "a state
 * change is ... a write-fsync-rename-fsync(dir) of a file"): the directory
 * that holds a path, and the fsync of that directory that makes a create
 * or rename in it survive a power cut; and whole positional writes and
 * reads, so a short write or read is never taken for a finished one.
 */
#ifndef OUTPOST_FSUTIL_H
#define OUTPOST_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "op_error.h"

/* Writes the directory part of path into dir (cap bytes, truncated to
 * fit): "." when path has no slash, "/" for a name at the root. */
void fsutil_dir_of(const char *path, char *dir, size_t cap);

/* Opens directory dir and fsyncs it. Returns 0 or a negative errno, with
 * err (may be NULL) as "cannot open directory DIR: ..." or "cannot sync
 * directory DIR: ...". */
int fsutil_fsync_dir(const char *dir, struct op_error *err);

/* fsutil_fsync_dir of the directory that holds path. */
int fsutil_fsync_dir_of(const char *path, struct op_error *err);

/* Writes all n bytes of buf to fd at offset off, retrying short writes
 * and EINTR. Returns 0 or a negative errno (what is written by then
 * stays). */
int fsutil_pwrite_all(int fd, const void *buf, size_t n, uint64_t off);

/* Reads exactly n bytes at offset off into buf, retrying short reads and
 * EINTR. Returns 0, -EIO when the file ends first (it shrank or was cut),
 * or a negative errno. */
int fsutil_pread_all(int fd, void *buf, size_t n, uint64_t off);

#endif
