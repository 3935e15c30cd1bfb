/*
 * outpost-hq's configuration: a table of keys with types, limits, defaults
 * and one line of documentation each, read from a `key = value` file and
 * from --KEY VALUE flags (the same format as outpostd's). Invariant: a
 * config either loads completely and valid, or the caller's config is
 * untouched and the error names the file, line and key.
 */
#ifndef OUTPOST_HQ_CONFIG_H
#define OUTPOST_HQ_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "conf_table.h"
#include "op_error.h"

#define HQ_CONFIG_PATH_MAX 1024
#define HQ_CONFIG_FILE_MAX (64 * 1024)

struct hq_config {
    char listen[128];
    char db[HQ_CONFIG_PATH_MAX];
    char store[HQ_CONFIG_PATH_MAX]; /* "": the SQLite file at db; else PostgreSQL */
    char spool_dir[HQ_CONFIG_PATH_MAX];
    int shared_spool; /* several receivers serve spool_dir and the store at once */
    char tls_cert[HQ_CONFIG_PATH_MAX];
    char tls_key[HQ_CONFIG_PATH_MAX];
    int allow_plain_http; /* plain HTTP on a non-loopback listen (behind a TLS proxy) */
    uint64_t max_upload_bytes;
    uint64_t max_spool_bytes;
    uint64_t max_uploads;
    uint64_t max_incomplete_per_node;
    uint64_t upload_expire_s;
    uint64_t max_connections;
    uint64_t max_connections_per_address;
    uint64_t max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t receipt_wait_ms; /* 0: answer the completing PATCH before applying */
    uint64_t apply_workers;   /* threads applying uploads; 0: on the loop thread */
    uint64_t apply_queue;     /* completed uploads waiting for a thread at most */
    int log_requests;
    int log_level;      /* enum log_level: lines less severe are left out */
    int log_timestamps; /* each line starts with its UTC time (not in the journal) */
};

/* Fills c with every default. */
void hq_config_defaults(struct hq_config *c);

/* Sets one key from text. Returns 0, -EINVAL (err says what the key
 * expects) or -ENOENT for an unknown key. `where` ("FILE:LINE" or
 * "--flag") prefixes the message. */
int hq_config_set(struct hq_config *c, const char *key, const char *value, const char *where,
                  struct op_error *err);

/* Reads a file on top of a copy of *c; on success replaces *c. On failure
 * *c is unchanged and err says "FILE:LINE: key: problem". */
int hq_config_load_file(struct hq_config *c, const char *path, struct op_error *err);

/* Builds the config the way outpost-hq does at start and on SIGHUP
 * (conf_load): defaults, the file at path (NULL: none), then overlay, the
 * command line, with ctx. On success replaces *c; otherwise *c is
 * unchanged and the return is the failing step's or overlay's. */
int hq_config_load(struct hq_config *c, const char *path, conf_overlay_fn overlay, void *ctx,
                   struct op_error *err);

/* Cross-key checks: TLS cert and key both or neither; plain HTTP only on a
 * loopback listen unless allow_plain_http (-EINVAL naming `listen`);
 * paths set. */
int hq_config_check(const struct hq_config *c, struct op_error *err);

/* Prints every key with its default and description, as the file format. */
void hq_config_describe(FILE *out);

/* The store outpost-hq opens (hq_store_open): `store` when set (a
 * PostgreSQL connection string), else the SQLite file at `db`. */
const char *hq_config_store(const struct hq_config *c);

/* Prints the effective values as a loadable file. */
void hq_config_print(FILE *out, const struct hq_config *c);

#endif
