/*
 * The last step of a durable file write: after write, fsync and rename,
 * the directory that holds the new name is synced, so the rename itself
 * survives a power cut (STYLE.md, Durability). One place for it, so every
 * writer names the directory the same way.
 */
#ifndef OUTPOST_DURABLE_H
#define OUTPOST_DURABLE_H

#include <stddef.h>

/* Writes the directory that holds `path` into dir (size bytes): "." for a
 * bare name, "/" for a name at the root. A longer directory is cut to fit,
 * and the sync of it then fails. */
void durable_dir_of(const char *path, char *dir, size_t size);

/* Syncs directory `dir` to disk. Returns 0 or a negative errno. */
int durable_sync_dir(const char *dir);

/* Syncs the directory that holds `path`. Returns 0 or a negative errno. */
int durable_sync_dir_of(const char *path);

#endif
