/*
 * The key table and the file reader; see config.h. The file format: one
 * `key = value` per line, `#` starts a comment line, blank lines ignored,
 * surrounding white space trimmed, values unquoted. Every key may appear
 * once; an unknown key is an error (a typo must not silently fall back to
 * a default).
 */
#include "config.h"

#include "sync_sched.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum key_type {
    KEY_PATH,
    KEY_TEXT,
    KEY_UINT,
    KEY_BOOL,
    KEY_SIZE,  /* uint64_t bytes with an optional unit (sync_size_parse) */
    KEY_RATE,  /* uint64_t bytes/s, bit units allowed */
    KEY_WINDOW /* text, a valid sync window */
};

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size;
    unsigned long min, max;
    const char *dflt;
    const char *doc;
};

#define FIELD(f) offsetof(struct outpostd_config, f), sizeof(((struct outpostd_config *)0)->f)

static const struct key_def keys[] = {
    {"db", KEY_PATH, FIELD(db), 0, 0, "/var/lib/outpost/node.db",
     "the node database (created by 'outpost init')"},
    {"listen", KEY_TEXT, FIELD(listen), 0, 0, "0.0.0.0:8080",
     "address and port for the LAN API: IPv4 a.b.c.d:port or IPv6 [addr]:port"},
    {"tls_cert", KEY_PATH, FIELD(tls_cert), 0, 0, "",
     "PEM certificate chain; with tls_key, the API is served over HTTPS only"},
    {"tls_key", KEY_PATH, FIELD(tls_key), 0, 0, "", "PEM private key for tls_cert"},
    {"max_connections", KEY_UINT, FIELD(max_connections), 1, 100000, "512",
     "open connections beyond this get 503 with Retry-After"},
    {"max_header_bytes", KEY_UINT, FIELD(max_header_bytes), 1024, 1048576, "16384",
     "request line and headers larger than this get 431"},
    {"max_body_bytes", KEY_UINT, FIELD(max_body_bytes), 1024, 268435456, "1048576",
     "request bodies larger than this get 413"},
    {"header_timeout_ms", KEY_UINT, FIELD(header_timeout_ms), 100, 600000, "10000",
     "a request's headers must arrive within this (slow clients get 408)"},
    {"body_timeout_ms", KEY_UINT, FIELD(body_timeout_ms), 100, 3600000, "30000",
     "a request's body must arrive within this after its headers (408)"},
    {"idle_timeout_ms", KEY_UINT, FIELD(idle_timeout_ms), 100, 3600000, "60000",
     "an idle keep-alive connection is closed after this"},
    {"session_ttl_s", KEY_UINT, FIELD(session_ttl_s), 60, 2592000, "43200",
     "a login session expires this many seconds after it was created"},
    {"workers", KEY_UINT, FIELD(workers), 1, 64, "4",
     "threads running database work (each with its own read connection)"},
    {"log_requests", KEY_BOOL, FIELD(log_requests), 0, 0, "true",
     "one log line per request on stderr"},
    {"hq_credentials", KEY_PATH, FIELD(hq_credentials), 0, 0, "",
     "the node's HQ credentials file (from 'outpost-hq node add', mode 0600); empty: sync off"},
    {"hq_url", KEY_TEXT, FIELD(hq_url), 0, 0, "",
     "HQ base URL (https://hq.example:8443); empty: the one in the credentials file"},
    {"hq_ca_file", KEY_PATH, FIELD(hq_ca_file), 0, 0, "",
     "PEM bundle to trust for HQ's certificate; empty: the system store"},
    {"hq_insecure_tls", KEY_BOOL, FIELD(hq_insecure_tls), 0, 0, "false",
     "do not verify HQ's TLS certificate: for tests only, never in the field"},
    {"spool_dir", KEY_PATH, FIELD(spool_dir), 0, 0, "",
     "where segments wait for upload; empty: 'spool' beside the database"},
    {"spool_max_bytes", KEY_SIZE, FIELD(spool_max_bytes), 65536, 1UL << 40, "256MiB",
     "spool cap: segmenting stops (ALARM in the log and /metrics) when it is full"},
    {"segment_bytes", KEY_SIZE, FIELD(segment_bytes), 4096, 64UL << 20, "480KB",
     "target compressed size of one segment (about a minute at 64 kbit/s)"},
    {"sync_interval_ms", KEY_UINT, FIELD(sync_interval_ms), 100, 86400000, "10000",
     "how often to look for new changes and poll HQ's mailbox"},
    {"sync_bandwidth", KEY_RATE, FIELD(sync_bandwidth), 0, 1UL << 40, "0",
     "upload cap in bytes/s (units: KB, KiB, kbit, Mbit...; 64kbit = 8000); 0: no cap"},
    {"sync_window", KEY_WINDOW, FIELD(sync_window), 0, 0, "",
     "local time when sync may run, HH:MM-HH:MM (may wrap midnight); empty: any time"},
    {"sync_daily_bytes", KEY_SIZE, FIELD(sync_daily_bytes), 0, 1UL << 50, "0",
     "upload bytes per UTC day (e.g. 50MB); 0: unlimited"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static int set_value(struct outpostd_config *c, const struct key_def *k, const char *value,
                     const char *where, struct op_error *err)
{
    char *dst = (char *)c + k->offset;
    switch (k->type) {
    case KEY_PATH:
    case KEY_TEXT: {
        size_t len = strlen(value);
        if (len >= k->size)
            return op_error_set(err, -EINVAL, k->name, "%s: %s: longer than %zu bytes", where,
                                k->name, k->size - 1);
        if (k->type == KEY_PATH && len && value[0] != '/')
            return op_error_set(err, -EINVAL, k->name, "%s: %s: must be an absolute path, got '%s'",
                                where, k->name, value);
        memcpy(dst, value, len + 1);
        return 0;
    }
    case KEY_UINT: {
        char *end;
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || v < k->min || v > k->max)
            return op_error_set(err, -EINVAL, k->name,
                                "%s: %s: expected a whole number from %lu to %lu, got '%s'", where,
                                k->name, k->min, k->max, value);
        *(unsigned *)(void *)dst = (unsigned)v;
        return 0;
    }
    case KEY_SIZE:
    case KEY_RATE: {
        uint64_t v = 0;
        struct op_error e;
        op_error_clear(&e);
        if (sync_size_parse(value, k->type == KEY_RATE, &v, &e) < 0)
            return op_error_set(err, -EINVAL, k->name, "%s: %s: %s", where, k->name, e.msg);
        if (v < k->min || v > k->max)
            return op_error_set(err, -EINVAL, k->name,
                                "%s: %s: expected %lu to %lu bytes, got '%s' (%llu)", where,
                                k->name, k->min, k->max, value, (unsigned long long)v);
        *(uint64_t *)(void *)dst = v;
        return 0;
    }
    case KEY_WINDOW: {
        struct sync_window w;
        struct op_error e;
        op_error_clear(&e);
        if (strlen(value) >= k->size || sync_window_parse(value, &w, &e) < 0)
            return op_error_set(err, -EINVAL, k->name, "%s: %s: %s", where, k->name,
                                e.msg[0] ? e.msg : "expected HH:MM-HH:MM");
        memcpy(dst, value, strlen(value) + 1);
        return 0;
    }
    case KEY_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
            *(int *)(void *)dst = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
            *(int *)(void *)dst = 0;
        else
            return op_error_set(err, -EINVAL, k->name, "%s: %s: expected true or false, got '%s'",
                                where, k->name, value);
        return 0;
    }
    return -EINVAL;
}

void config_defaults(struct outpostd_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++)
        (void)set_value(c, &keys[i], keys[i].dflt, "default", NULL);
}

int config_set(struct outpostd_config *c, const char *key, const char *value, const char *where,
               struct op_error *err)
{
    const struct key_def *k = find_key(key);
    if (!k)
        return op_error_set(err, -ENOENT, key, "%s: unknown key '%s'", where, key);
    return set_value(c, k, value, where, err);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int config_load_file(struct outpostd_config *c, const char *path, struct op_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return op_error_set(err, -errno, NULL, "cannot read config %s: %s", path, strerror(errno));
    struct outpostd_config next = *c;
    unsigned char seen[NKEYS] = {0};
    char line[4096];
    char where[CONFIG_PATH_MAX + 32];
    int lineno = 0, rc = 0;
    size_t total = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        size_t len = strlen(line);
        total += len;
        if (total > CONFIG_FILE_MAX) {
            rc = op_error_set(err, -EFBIG, NULL, "%s: file larger than %d bytes", where,
                              CONFIG_FILE_MAX);
            break;
        }
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = op_error_set(err, -EINVAL, NULL, "%s: line longer than %zu bytes", where,
                              sizeof line - 2);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = op_error_set(err, -EINVAL, NULL, "%s: expected 'key = value', got '%.60s'", where,
                              s);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        const struct key_def *k = find_key(key);
        if (!k) {
            rc = op_error_set(err, -EINVAL, key,
                              "%s: unknown key '%s' (see 'outpostd "
                              "--describe-config')",
                              where, key);
            break;
        }
        size_t idx = (size_t)(k - keys);
        if (seen[idx]) {
            rc = op_error_set(err, -EINVAL, key, "%s: %s: set twice", where, key);
            break;
        }
        seen[idx] = 1;
        rc = set_value(&next, k, value, where, err);
        if (rc < 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = op_error_set(err, -EIO, NULL, "cannot read config %s", path);
    fclose(f);
    if (rc == 0) {
        rc = config_check(&next, err);
        if (rc < 0) {
            char why[sizeof err->msg], field[sizeof err->field];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            snprintf(field, sizeof field, "%s", err ? err->field : "");
            op_error_set(err, rc, field, "%s: %s", path, why);
        }
    }
    if (rc == 0)
        *c = next;
    return rc;
}

int config_check(const struct outpostd_config *c, struct op_error *err)
{
    if (!c->tls_cert[0] != !c->tls_key[0])
        return op_error_set(err, -EINVAL, c->tls_cert[0] ? "tls_key" : "tls_cert",
                            "tls_cert and tls_key must be set together");
    if (!c->db[0])
        return op_error_set(err, -EINVAL, "db", "db: the database path is empty");
    if (c->hq_url[0] && strncasecmp(c->hq_url, "https://", 8) &&
        strncasecmp(c->hq_url, "http://", 7))
        return op_error_set(err, -EINVAL, "hq_url",
                            "hq_url: expected an http:// or https:// URL, got '%.80s'", c->hq_url);
    return 0;
}

void config_describe(FILE *out)
{
    fprintf(out, "# outpostd configuration: 'key = value' per line, '#' comments.\n"
                 "# Every key is optional; shown with its default.\n");
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(out, "\n# %s\n%s = %s\n", keys[i].doc, keys[i].name, keys[i].dflt);
}

void config_print(FILE *out, const struct outpostd_config *c)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *p = (const char *)c + keys[i].offset;
        switch (keys[i].type) {
        case KEY_PATH:
        case KEY_TEXT:
        case KEY_WINDOW:
            fprintf(out, "%s = %s\n", keys[i].name, p);
            break;
        case KEY_UINT:
            fprintf(out, "%s = %u\n", keys[i].name, *(const unsigned *)(const void *)p);
            break;
        case KEY_BOOL:
            fprintf(out, "%s = %s\n", keys[i].name,
                    *(const int *)(const void *)p ? "true" : "false");
            break;
        case KEY_SIZE:
        case KEY_RATE:
            fprintf(out, "%s = %llu\n", keys[i].name,
                    (unsigned long long)*(const uint64_t *)(const void *)p);
            break;
        }
    }
}
