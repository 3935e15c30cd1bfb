/*
 * The key table and the file reader of outpost-hq's configuration; see
 * hq_config.h. File format as outpostd's (appliance/config.c): one
 * `key = value` per line, `#` comment lines, blank lines ignored, values
 * unquoted; every key at most once; an unknown key is an error.
 */
#include "hq_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum key_type { KEY_PATH, KEY_TEXT, KEY_U64, KEY_BOOL };

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size;
    uint64_t min, max;
    const char *dflt;
    const char *doc;
};

#define FIELD(f) offsetof(struct hq_config, f), sizeof(((struct hq_config *)0)->f)

static const struct key_def keys[] = {
    {"listen", KEY_TEXT, FIELD(listen), 0, 0, "127.0.0.1:8443",
     "address and port for the nodes: IPv4 a.b.c.d:port or IPv6 [addr]:port (port 0 picks one)"},
    {"db", KEY_PATH, FIELD(db), 0, 0, "/var/lib/outpost-hq/hq.db",
     "the HQ store (SQLite; created on first use)"},
    {"spool_dir", KEY_PATH, FIELD(spool_dir), 0, 0, "/var/lib/outpost-hq/uploads",
     "where tus uploads are held until applied"},
    {"tls_cert", KEY_PATH, FIELD(tls_cert), 0, 0, "",
     "PEM certificate chain; with tls_key, serve HTTPS only"},
    {"tls_key", KEY_PATH, FIELD(tls_key), 0, 0, "", "PEM private key for tls_cert"},
    {"max_upload_bytes", KEY_U64, FIELD(max_upload_bytes), 1024, 1ull << 40, "67108864",
     "largest upload (Tus-Max-Size); larger ones get 413"},
    {"max_spool_bytes", KEY_U64, FIELD(max_spool_bytes), 1024, 1ull << 50, "1073741824",
     "upload bytes held at once; beyond it creations get 507"},
    {"max_uploads", KEY_U64, FIELD(max_uploads), 1, 1000000, "4096",
     "uploads held at once; beyond it creations get 507"},
    {"max_incomplete_per_node", KEY_U64, FIELD(max_incomplete_per_node), 1, 1000, "4",
     "unfinished uploads per node; a new one replaces the node's oldest"},
    {"upload_expire_s", KEY_U64, FIELD(upload_expire_s), 60, 31536000, "604800",
     "an unfinished upload not written to for this long is deleted"},
    {"max_connections", KEY_U64, FIELD(max_connections), 1, 100000, "512",
     "open connections beyond this get 503 with Retry-After"},
    {"max_header_bytes", KEY_U64, FIELD(max_header_bytes), 1024, 1048576, "16384",
     "request line and headers larger than this get 431"},
    {"max_body_bytes", KEY_U64, FIELD(max_body_bytes), 1024, 268435456, "4194304",
     "one request body (one tus PATCH chunk) larger than this gets 413"},
    {"header_timeout_ms", KEY_U64, FIELD(header_timeout_ms), 100, 600000, "10000",
     "a request's headers must arrive within this (408)"},
    {"body_timeout_ms", KEY_U64, FIELD(body_timeout_ms), 100, 3600000, "120000",
     "a request's body must arrive within this after its headers (408); slow links need time"},
    {"idle_timeout_ms", KEY_U64, FIELD(idle_timeout_ms), 100, 3600000, "60000",
     "an idle keep-alive connection is closed after this"},
    {"log_requests", KEY_BOOL, FIELD(log_requests), 0, 0, "true",
     "one log line per request on stderr"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static int set_value(struct hq_config *c, const struct key_def *k, const char *value,
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
    case KEY_U64: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || v < k->min || v > k->max)
            return op_error_set(err, -EINVAL, k->name,
                                "%s: %s: expected a whole number from %" PRIu64 " to %" PRIu64
                                ", got '%s'",
                                where, k->name, k->min, k->max, value);
        uint64_t u = v;
        memcpy(dst, &u, sizeof u);
        return 0;
    }
    case KEY_BOOL: {
        int b;
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
            b = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
            b = 0;
        else
            return op_error_set(err, -EINVAL, k->name, "%s: %s: expected true or false, got '%s'",
                                where, k->name, value);
        memcpy(dst, &b, sizeof b);
        return 0;
    }
    }
    return -EINVAL;
}

void hq_config_defaults(struct hq_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++)
        (void)set_value(c, &keys[i], keys[i].dflt, "default", NULL);
}

int hq_config_set(struct hq_config *c, const char *key, const char *value, const char *where,
                  struct op_error *err)
{
    const struct key_def *k = find_key(key);
    if (!k)
        return op_error_set(err, -ENOENT, key, "%s: unknown key '%s' (see --describe-config)",
                            where, key);
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

int hq_config_load_file(struct hq_config *c, const char *path, struct op_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return op_error_set(err, -errno, NULL, "cannot read config %s: %s", path, strerror(errno));
    struct hq_config next = *c;
    unsigned char seen[NKEYS] = {0};
    char line[4096];
    char where[HQ_CONFIG_PATH_MAX + 32];
    int lineno = 0, rc = 0;
    size_t total = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        size_t len = strlen(line);
        total += len;
        if (total > HQ_CONFIG_FILE_MAX) {
            rc = op_error_set(err, -EFBIG, NULL, "%s: file larger than %d bytes", where,
                              HQ_CONFIG_FILE_MAX);
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
                              "%s: unknown key '%s' (see 'outpost-hq --describe-config')", where,
                              key);
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
        rc = hq_config_check(&next, err);
        if (rc < 0 && err) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            char field[sizeof err->field];
            snprintf(field, sizeof field, "%s", err->field);
            op_error_set(err, rc, field, "%s: %s", path, why);
        }
    }
    if (rc == 0)
        *c = next;
    return rc;
}

int hq_config_check(const struct hq_config *c, struct op_error *err)
{
    if (!c->tls_cert[0] != !c->tls_key[0])
        return op_error_set(err, -EINVAL, c->tls_cert[0] ? "tls_key" : "tls_cert",
                            "tls_cert and tls_key must be set together");
    if (!c->db[0])
        return op_error_set(err, -EINVAL, "db", "db: the store path is empty");
    if (!c->spool_dir[0])
        return op_error_set(err, -EINVAL, "spool_dir", "spool_dir: the upload spool is empty");
    if (c->max_upload_bytes > c->max_spool_bytes)
        return op_error_set(err, -EINVAL, "max_upload_bytes",
                            "max_upload_bytes (%" PRIu64 ") is over max_spool_bytes (%" PRIu64 ")",
                            c->max_upload_bytes, c->max_spool_bytes);
    return 0;
}

void hq_config_describe(FILE *out)
{
    fprintf(out, "# outpost-hq configuration: 'key = value' per line, '#' comments.\n"
                 "# Every key is optional; shown with its default.\n");
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(out, "\n# %s\n%s = %s\n", keys[i].doc, keys[i].name, keys[i].dflt);
}

void hq_config_print(FILE *out, const struct hq_config *c)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *p = (const char *)c + keys[i].offset;
        switch (keys[i].type) {
        case KEY_PATH:
        case KEY_TEXT:
            fprintf(out, "%s = %s\n", keys[i].name, p);
            break;
        case KEY_U64: {
            uint64_t v;
            memcpy(&v, p, sizeof v);
            fprintf(out, "%s = %" PRIu64 "\n", keys[i].name, v);
            break;
        }
        case KEY_BOOL: {
            int b;
            memcpy(&b, p, sizeof b);
            fprintf(out, "%s = %s\n", keys[i].name, b ? "true" : "false");
            break;
        }
        }
    }
}
