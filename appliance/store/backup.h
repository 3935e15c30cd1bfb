/*
 * Online backup of an Outpost database to a file, while outpostd keeps
 * writing. The invariants: the copy is one consistent snapshot of the
 * database (a state some committed transaction left it in), it has passed
 * PRAGMA quick_check before it appears under its name, and it appears
 * atomically (write temp, fsync, rename, fsync dir): DEST is either the
 * previous file, untouched, or the complete verified copy, never anything
 * in between, and no temporary file is left behind on failure.
 */
#ifndef OUTPOST_BACKUP_H
#define OUTPOST_BACKUP_H

#include <sqlite3.h>
#include <stdint.h>

#include "op_error.h"

enum backup_flags {
    BACKUP_FORCE = 1u << 0, /* replace an existing DEST */
};

/* Pages copied per step between progress calls when step_pages is 0. */
#define BACKUP_STEP_PAGES 1024

struct backup_options {
    unsigned flags; /* enum backup_flags */
    int step_pages; /* pages per step; 0 means BACKUP_STEP_PAGES */
    /* Called after each step with the pages copied so far and the total.
     * A non-zero return cancels the backup (backup_to returns -ECANCELED
     * and DEST is untouched). May be NULL. */
    int (*progress)(void *ctx, int copied, int total);
    void *ctx;
};

struct backup_result {
    int pages;     /* pages copied */
    int page_size; /* octets per page */
    int64_t bytes; /* size of the written file */
};

/* Copies the main database of `src` to dest_path. `src` must not be inside
 * a transaction (-EBUSY otherwise); it is used for reading only and left as
 * it was. The copy is a standalone file in rollback-journal mode (no -wal
 * or -shm belongs to it); opening it with db_open switches it back to WAL.
 * The file is created with mode 0600: it holds personal data.
 *
 * opts may be NULL (defaults, no progress). On success fills *out (if not
 * NULL) and returns 0. Errors, with err naming the path and the cause:
 *   -EEXIST     dest_path exists and BACKUP_FORCE is not set
 *   -EISDIR     dest_path is a directory
 *   -EINVAL     dest_path is empty, too long, or the source database itself
 *   -ECANCELED  the progress callback asked to stop
 *   -EBADMSG    the copy failed its quick_check (the source may be damaged)
 *   other negative errnos from the file system or SQLite (-ENOENT for a
 *   missing directory, -ENOSPC, -EACCES, ...). */
int backup_to(sqlite3 *src, const char *dest_path, const struct backup_options *opts,
              struct backup_result *out, struct op_error *err);

#endif
