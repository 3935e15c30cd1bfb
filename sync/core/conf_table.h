/*
 * A daemon's configuration as a table of keys (name, type, where in the
 * caller's struct, limits, default, one line of documentation), read from a
 * `key = value` file and from --key flags, described and printed in that
 * same file format. outpostd (appliance/daemon/config.c) and outpost-hq
 * (sync/hq/hq_config.c) each keep their struct, table and cross-key check and
 * call these; conf_load is the one order both build a config in (defaults,
 * file, command line), at start and on SIGHUP. The invariant: a config either loads completely and
 * valid, or the caller's struct is untouched and the error names FILE:LINE: key (so a SIGHUP with a
 * bad file changes nothing).
 */
#ifndef OUTPOST_CONF_TABLE_H
#define OUTPOST_CONF_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "op_error.h"

enum conf_type {
    CONF_PATH,     /* char[size]: an absolute path, or empty */
    CONF_TEXT,     /* char[size] */
    CONF_UINT,     /* unsigned: a decimal whole number from min to max */
    CONF_U64,      /* uint64_t: a decimal whole number from min to max */
    CONF_BOOL,     /* int: true/yes/1 or false/no/0 */
    CONF_SIZE,     /* uint64_t bytes with an optional unit (sync_size_parse) */
    CONF_RATE,     /* uint64_t bytes/s, bit units allowed (sync_size_parse) */
    CONF_WINDOW,   /* char[size]: "" or HH:MM-HH:MM (sync_window_parse), kept as text */
    CONF_LOG_LEVEL /* int: a log level by name (log_level_parse: err, warning ... debug) */
};

struct conf_key {
    const char *name;
    enum conf_type type;
    size_t offset;     /* of the field in the caller's struct */
    size_t size;       /* of the field; must match the type's storage */
    uint64_t min, max; /* UINT, U64, SIZE, RATE; a UINT never exceeds UINT_MAX */
    const char *dflt;  /* text, as in a file; must be valid */
    const char *doc;   /* one line for describe */
};

/* Offset and size of field f of struct type T, for a conf_key. */
#define CONF_FIELD(T, f) offsetof(T, f), sizeof(((T *)0)->f)

struct conf_table {
    const struct conf_key *keys;
    size_t nkeys;
    const char *program; /* "outpostd": named in messages and in describe */
    size_t size;         /* sizeof the caller's config struct */
    size_t file_max;     /* a config file larger than this is refused */
};

/* A check across keys, run on the loaded copy before it replaces the
 * caller's struct: 0, or a negative code with err filled. */
typedef int (*conf_check_fn)(const void *conf, struct op_error *err);

/* Zeroes conf (t->size bytes) and sets every key to its default. */
void conf_defaults(const struct conf_table *t, void *conf);

/* Sets one key from text (as in a file, or a --key flag). Returns 0;
 * -EINVAL with err "WHERE: key: what it expects, got 'value'"; or -ENOENT
 * for an unknown key ("WHERE: unknown key 'k' (see 'PROGRAM
 * --describe-config')"). `where` is "FILE:LINE" or "--flag". On failure
 * conf is unchanged. */
int conf_set(const struct conf_table *t, void *conf, const char *key, const char *value,
             const char *where, struct op_error *err);

/* Reads the file at path on top of a heap copy of conf, runs check (may be
 * NULL) on the copy, and on success copies it over conf. On failure conf is
 * unchanged and returns a negative code: -errno when the file cannot be
 * opened; -EFBIG over t->file_max; -EINVAL for a bad line, unknown key, key
 * set twice or bad value ("FILE:LINE: key: problem"); check's code with
 * its message prefixed by "FILE: "; -ENOMEM. */
int conf_load_file(const struct conf_table *t, void *conf, const char *path, conf_check_fn check,
                   struct op_error *err);

/* One --key flag of a daemon's command line. */
struct conf_flag {
    char key[64];      /* as in a file: '-' read as '_' (--log-level sets log_level) */
    const char *value; /* borrowed from argv */
    char where[80];    /* the flag as written ("--log-level"), for conf_set */
};

/* Reads the flag at argv[*i], "--key value" or "--key=value", and moves
 * *i to its last word. Returns 0 and *out; or -EINVAL with err "unexpected
 * argument 'ARG'" (not a --flag), "unknown option 'ARG'" (a key too long
 * to be one) or "ARG needs a value". */
int conf_flag_read(int argc, char *const argv[], int *i, struct conf_flag *out,
                   struct op_error *err);

/* What a daemon's command line adds to the config conf_load builds: sets
 * keys on that copy (conf_flag_read, conf_set) and checks the whole.
 * Returns 0; a negative code with err filled; or a positive value to stop
 * without an error (--help), which conf_load returns. */
typedef int (*conf_overlay_fn)(void *conf, void *ctx, struct op_error *err);

/* Builds a daemon's config the one way, at start and on SIGHUP alike:
 * defaults, then the file at path (none when NULL; read as conf_load_file
 * does, with check), then overlay (may be NULL) on that copy. Only when
 * all of it succeeds does the copy replace conf; otherwise conf is
 * unchanged and the return is the failing step's (its err) or overlay's
 * positive value. -ENOMEM. */
int conf_load(const struct conf_table *t, void *conf, const char *path, conf_check_fn check,
              conf_overlay_fn overlay, void *ctx, struct op_error *err);

/* Prints every key with its doc and default, as a loadable file. */
void conf_describe(const struct conf_table *t, FILE *out);

/* Prints conf's values, one `key = value` per line, as a loadable file. */
void conf_print(const struct conf_table *t, FILE *out, const void *conf);

#endif
