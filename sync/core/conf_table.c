/*
 * The config key table's setter, file reader, describe and print; see
 * conf_table.h. The file format: one `key = value` per line, `#` starts a
 * comment line, blank lines ignored, surrounding white space trimmed, values
 * unquoted. Every key may appear once; an unknown key is an error (a typo
 * must not silently fall back to a default). The file is read into a heap
 * copy of the caller's struct so a half-read file never shows.
 */
#include "conf_table.h"

#include "log.h"
#include "sync_sched.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Longest line, without its newline; longer lines are refused. */
#define LINE_MAX_BYTES 4094

static const struct conf_key *find_key(const struct conf_table *t, const char *name)
{
    for (size_t i = 0; i < t->nkeys; i++)
        if (!strcmp(t->keys[i].name, name))
            return &t->keys[i];
    return NULL;
}

static int unknown_key(const struct conf_table *t, int code, const char *key, const char *where,
                       struct op_error *err)
{
    return op_error_set(err, code, key, "%s: unknown key '%s' (see '%s --describe-config')", where,
                        key, t->program);
}

/* The bytes a fixed-size type stores; 0 for the text types. */
static size_t storage_size(enum conf_type type)
{
    switch (type) {
    case CONF_UINT:
        return sizeof(unsigned);
    case CONF_BOOL:
    case CONF_LOG_LEVEL:
        return sizeof(int);
    case CONF_U64:
    case CONF_SIZE:
    case CONF_RATE:
        return sizeof(uint64_t);
    case CONF_PATH:
    case CONF_TEXT:
    case CONF_WINDOW:
        break;
    }
    return 0;
}

static int set_value(void *conf, const struct conf_key *k, const char *value, const char *where,
                     struct op_error *err)
{
    char *dst = (char *)conf + k->offset;
    size_t want = storage_size(k->type);
    if ((want && k->size != want) || (!want && k->size == 0))
        return op_error_set(err, -EINVAL, k->name, "%s: %s: the key table gives a %zu-byte field",
                            where, k->name, k->size);
    switch (k->type) {
    case CONF_PATH:
    case CONF_TEXT: {
        size_t len = strlen(value);
        if (len >= k->size)
            return op_error_set(err, -EINVAL, k->name, "%s: %s: longer than %zu bytes", where,
                                k->name, k->size - 1);
        if (k->type == CONF_PATH && len && value[0] != '/')
            return op_error_set(err, -EINVAL, k->name, "%s: %s: must be an absolute path, got '%s'",
                                where, k->name, value);
        memcpy(dst, value, len + 1);
        return 0;
    }
    case CONF_UINT:
    case CONF_U64: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        uint64_t max = k->type == CONF_UINT && k->max > UINT_MAX ? UINT_MAX : k->max;
        if (errno || end == value || *end || value[0] == '-' || v < k->min || v > max)
            return op_error_set(err, -EINVAL, k->name,
                                "%s: %s: expected a whole number from %" PRIu64 " to %" PRIu64
                                ", got '%s'",
                                where, k->name, k->min, max, value);
        if (k->type == CONF_UINT) {
            unsigned u = (unsigned)v;
            memcpy(dst, &u, sizeof u);
        } else {
            uint64_t u = v;
            memcpy(dst, &u, sizeof u);
        }
        return 0;
    }
    case CONF_SIZE:
    case CONF_RATE: {
        uint64_t v = 0;
        struct op_error e;
        op_error_clear(&e);
        if (sync_size_parse(value, k->type == CONF_RATE, &v, &e) < 0)
            return op_error_set(err, -EINVAL, k->name, "%s: %s: %s", where, k->name, e.msg);
        if (v < k->min || v > k->max)
            return op_error_set(err, -EINVAL, k->name,
                                "%s: %s: expected %" PRIu64 " to %" PRIu64
                                " bytes, got '%s' (%" PRIu64 ")",
                                where, k->name, k->min, k->max, value, v);
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case CONF_WINDOW: {
        struct sync_window w;
        struct op_error e;
        op_error_clear(&e);
        size_t len = strlen(value);
        if (len >= k->size || sync_window_parse(value, &w, &e) < 0)
            return op_error_set(err, -EINVAL, k->name, "%s: %s: %s", where, k->name,
                                e.msg[0] ? e.msg : "expected HH:MM-HH:MM");
        memcpy(dst, value, len + 1);
        return 0;
    }
    case CONF_BOOL: {
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
    case CONF_LOG_LEVEL: {
        enum log_level level;
        if (log_level_parse(value, &level) < 0)
            return op_error_set(err, -EINVAL, k->name,
                                "%s: %s: expected err, warning, notice, info or debug, got '%s'",
                                where, k->name, value);
        int v = (int)level;
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    }
    return op_error_set(err, -EINVAL, k->name, "%s: %s: unknown key type", where, k->name);
}

void conf_defaults(const struct conf_table *t, void *conf)
{
    memset(conf, 0, t->size);
    for (size_t i = 0; i < t->nkeys; i++)
        (void)set_value(conf, &t->keys[i], t->keys[i].dflt, "default", NULL);
}

int conf_set(const struct conf_table *t, void *conf, const char *key, const char *value,
             const char *where, struct op_error *err)
{
    const struct conf_key *k = find_key(t, key);
    if (!k)
        return unknown_key(t, -ENOENT, key, where, err);
    return set_value(conf, k, value, where, err);
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

/* Reads one line (up to and with its newline, at most cap - 1 bytes) into
 * buf, NUL-terminated. Unlike fgets it returns the count of bytes read,
 * so a NUL byte in the line still counts toward the file's size; *nul
 * says whether there was one. 0 at end of file or on a read error. */
static size_t get_line(FILE *f, char *buf, size_t cap, int *nul)
{
    size_t n = 0;
    *nul = 0;
    int ch;
    while (n + 1 < cap && (ch = getc(f)) != EOF) {
        buf[n++] = (char)ch;
        if (ch == '\0')
            *nul = 1;
        if (ch == '\n')
            break;
    }
    buf[n] = '\0';
    return n;
}

/* Applies every line of f to conf; seen has one byte per key. Stops at the
 * first error. */
static int read_lines(const struct conf_table *t, FILE *f, const char *path, void *conf,
                      unsigned char *seen, struct op_error *err)
{
    char line[LINE_MAX_BYTES + 2];
    char where[1100];
    int lineno = 0;
    size_t total = 0;
    size_t len;
    int nul;
    while ((len = get_line(f, line, sizeof line, &nul)) > 0) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        total += len;
        if (total > t->file_max)
            return op_error_set(err, -EFBIG, NULL, "%s: file larger than %zu bytes", where,
                                t->file_max);
        if (len == sizeof line - 1 && line[len - 1] != '\n')
            return op_error_set(err, -EINVAL, NULL, "%s: line longer than %d bytes", where,
                                LINE_MAX_BYTES);
        if (nul)
            return op_error_set(err, -EINVAL, NULL,
                                "%s: a NUL byte; a config file is text (is this the right file?)",
                                where);
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            return op_error_set(err, -EINVAL, NULL, "%s: expected 'key = value', got '%.60s'",
                                where, s);
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        const struct conf_key *k = find_key(t, key);
        if (!k)
            return unknown_key(t, -EINVAL, key, where, err);
        size_t idx = (size_t)(k - t->keys);
        if (seen[idx])
            return op_error_set(err, -EINVAL, key, "%s: %s: set twice", where, key);
        seen[idx] = 1;
        int rc = set_value(conf, k, value, where, err);
        if (rc < 0)
            return rc;
    }
    if (ferror(f))
        return op_error_set(err, -EIO, NULL, "cannot read config %s", path);
    return 0;
}

int conf_load_file(const struct conf_table *t, void *conf, const char *path, conf_check_fn check,
                   struct op_error *err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        return op_error_set(err, -e, NULL, "cannot read config %s: %s", path, strerror(e));
    }
    int rc;
    void *next = malloc(t->size);
    unsigned char *seen = calloc(t->nkeys + 1, 1);
    if (!next || !seen) {
        rc = op_error_set(err, -ENOMEM, NULL, "cannot read config %s: out of memory", path);
        goto done;
    }
    memcpy(next, conf, t->size);
    rc = read_lines(t, f, path, next, seen, err);
    if (rc == 0 && check) {
        rc = check(next, err);
        if (rc < 0 && err) {
            char why[sizeof err->msg], field[sizeof err->field];
            snprintf(why, sizeof why, "%s", err->msg);
            snprintf(field, sizeof field, "%s", err->field);
            op_error_set(err, rc, field, "%s: %s", path, why);
        }
    }
    if (rc == 0)
        memcpy(conf, next, t->size);
done:
    free(seen);
    free(next);
    fclose(f);
    return rc;
}

int conf_flag_read(int argc, char *const argv[], int *i, struct conf_flag *out,
                   struct op_error *err)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) || !arg[2])
        return op_error_set(err, -EINVAL, NULL, "unexpected argument '%s'", arg);
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (klen >= sizeof out->key)
        return op_error_set(err, -EINVAL, NULL, "unknown option '%s'", arg);
    const char *value = eq ? eq + 1 : (*i + 1 < argc ? argv[*i + 1] : NULL);
    if (!value)
        return op_error_set(err, -EINVAL, NULL, "%s needs a value", arg);
    for (size_t k = 0; k < klen; k++)
        out->key[k] = arg[2 + k] == '-' ? '_' : arg[2 + k];
    out->key[klen] = '\0';
    out->value = value;
    snprintf(out->where, sizeof out->where, "--%.*s", (int)klen, arg + 2);
    if (!eq)
        (*i)++;
    return 0;
}

int conf_load(const struct conf_table *t, void *conf, const char *path, conf_check_fn check,
              conf_overlay_fn overlay, void *ctx, struct op_error *err)
{
    void *next = malloc(t->size);
    if (!next)
        return op_error_set(err, -ENOMEM, NULL, "cannot build the %s config: out of memory",
                            t->program);
    conf_defaults(t, next);
    int rc = path ? conf_load_file(t, next, path, check, err) : 0;
    if (rc == 0 && overlay)
        rc = overlay(next, ctx, err);
    if (rc == 0)
        memcpy(conf, next, t->size);
    free(next);
    return rc;
}

void conf_describe(const struct conf_table *t, FILE *out)
{
    fprintf(out,
            "# %s configuration: 'key = value' per line, '#' comments.\n"
            "# Every key is optional; shown with its default.\n",
            t->program);
    for (size_t i = 0; i < t->nkeys; i++)
        fprintf(out, "\n# %s\n%s = %s\n", t->keys[i].doc, t->keys[i].name, t->keys[i].dflt);
}

void conf_print(const struct conf_table *t, FILE *out, const void *conf)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct conf_key *k = &t->keys[i];
        const char *p = (const char *)conf + k->offset;
        switch (k->type) {
        case CONF_PATH:
        case CONF_TEXT:
        case CONF_WINDOW:
            fprintf(out, "%s = %s\n", k->name, p);
            break;
        case CONF_UINT: {
            unsigned u;
            memcpy(&u, p, sizeof u);
            fprintf(out, "%s = %u\n", k->name, u);
            break;
        }
        case CONF_BOOL: {
            int b;
            memcpy(&b, p, sizeof b);
            fprintf(out, "%s = %s\n", k->name, b ? "true" : "false");
            break;
        }
        case CONF_LOG_LEVEL: {
            int v;
            memcpy(&v, p, sizeof v);
            fprintf(out, "%s = %s\n", k->name, log_level_name((enum log_level)v));
            break;
        }
        case CONF_U64:
        case CONF_SIZE:
        case CONF_RATE: {
            uint64_t v;
            memcpy(&v, p, sizeof v);
            fprintf(out, "%s = %" PRIu64 "\n", k->name, v);
            break;
        }
        }
    }
}
