/*
 * Node credentials files (see node_credentials.h; format in
 * docs/SYNC_PROTOCOL.md). Loading checks the file's mode before reading a
 * byte, caps its size, and validates every key, so a struct that comes
 * back is usable as it is; writing never replaces a file (link(2) refuses
 * to), so an enrolment cannot silently overwrite another node's key.
 */
#include "node_credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "uuid7.h"

#define KEY_BYTES 32

int node_id_valid(const char *s)
{
    if (!s)
        return 0;
    size_t i;
    for (i = 0; s[i]; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
            return 0;
    return i >= 1 && i <= NODE_ID_MAX;
}

/* A region code as policy_find_file accepts it: A-Z, 0-9 and '-'. */
static int region_valid(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return i >= 1 && i < sizeof((struct node_credentials *)0)->region;
}

static int url_valid(const char *s)
{
    if (!*s)
        return 1;
    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return strlen(s) < sizeof((struct node_credentials *)0)->hq_url;
}

/* 64 lower-case hex digits to 32 bytes; -1 otherwise. */
static int from_hex(const char *s, size_t len, unsigned char out[KEY_BYTES])
{
    if (len != 2 * KEY_BYTES)
        return -1;
    return codec_hex_decode(s, len, CODEC_HEX_LOWER, out, KEY_BYTES) == KEY_BYTES ? 0 : -1;
}

/* The string at key, or NULL after setting err ("FILE: KEY: ..."). */
static const char *get_string(const char *path, json_t *o, const char *key, size_t *len,
                              struct op_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        op_error_set(err, -EINVAL, key, "%s: %s: missing", path, key);
        return NULL;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        op_error_set(err, -EINVAL, key, "%s: %s: must be a string", path, key);
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

static int parse(const char *path, json_t *o, struct node_credentials *c, struct op_error *err)
{
    static const char *const known[] = {"format", "node_id", "region", "token",
                                        "hq_key", "hq_url",  NULL};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t i;
        for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
            ;
        if (!known[i])
            return op_error_set(err, -EINVAL, key, "%s: %s: unknown key", path, key);
    }
    size_t n;
    const char *s = get_string(path, o, "format", &n, err);
    if (!s)
        return -EINVAL;
    if (strcmp(s, NODE_CREDENTIALS_FORMAT) != 0)
        return op_error_set(err, -EINVAL, "format", "%s: format: \"%.64s\" is not \"%s\"", path, s,
                            NODE_CREDENTIALS_FORMAT);
    if (!(s = get_string(path, o, "node_id", &n, err)))
        return -EINVAL;
    if (!node_id_valid(s))
        return op_error_set(err, -EINVAL, "node_id",
                            "%s: node_id: must be 1 to %d characters of A-Z a-z 0-9 . _ : -", path,
                            NODE_ID_MAX);
    memcpy(c->node_id, s, n + 1);
    if (!(s = get_string(path, o, "region", &n, err)))
        return -EINVAL;
    if (!region_valid(s))
        return op_error_set(err, -EINVAL, "region",
                            "%s: region: must be 1 to %zu characters of A-Z 0-9 -", path,
                            sizeof c->region - 1);
    memcpy(c->region, s, n + 1);
    unsigned char tok[KEY_BYTES];
    if (!(s = get_string(path, o, "token", &n, err)))
        return -EINVAL;
    if (from_hex(s, n, tok) != 0)
        return op_error_set(err, -EINVAL, "token",
                            "%s: token: must be 64 lower-case hex digits (32 bytes), not %zu "
                            "characters%s",
                            path, n, n == 64 ? " with a non-hex one" : "");
    OPENSSL_cleanse(tok, sizeof tok);
    memcpy(c->token, s, n + 1);
    if (!(s = get_string(path, o, "hq_key", &n, err)))
        return -EINVAL;
    if (from_hex(s, n, c->hq_key) != 0)
        return op_error_set(err, -EINVAL, "hq_key",
                            "%s: hq_key: must be 64 lower-case hex digits (32 bytes), not %zu "
                            "characters%s",
                            path, n, n == 64 ? " with a non-hex one" : "");
    c->hq_url[0] = '\0';
    if (json_object_get(o, "hq_url")) {
        if (!(s = get_string(path, o, "hq_url", &n, err)))
            return -EINVAL;
        if (n >= sizeof c->hq_url)
            return op_error_set(err, -EINVAL, "hq_url", "%s: hq_url: longer than %zu bytes", path,
                                sizeof c->hq_url - 1);
        if (!url_valid(s))
            return op_error_set(err, -EINVAL, "hq_url",
                                "%s: hq_url: must be an http:// or https:// URL without spaces",
                                path);
        memcpy(c->hq_url, s, n + 1);
    }
    return 0;
}

int node_credentials_load(const char *path, struct node_credentials *out, struct op_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = -errno;
        return op_error_set(err, e, "", "%s: cannot open: %s", path, strerror(-e));
    }
    int rc;
    char *buf = NULL;
    json_t *o = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = op_error_set(err, -errno, "", "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = op_error_set(err, -EINVAL, "", "%s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = op_error_set(err, -EPERM, "",
                          "%s: mode %04o lets group or others at the node's HQ secrets; "
                          "chmod 600 it",
                          path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size > NODE_CREDENTIALS_MAX_BYTES) {
        rc = op_error_set(err, -EFBIG, "", "%s: %lld bytes, a credentials file holds at most %d",
                          path, (long long)st.st_size, NODE_CREDENTIALS_MAX_BYTES);
        goto out;
    }
    buf = malloc(NODE_CREDENTIALS_MAX_BYTES + 1);
    if (!buf) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, NODE_CREDENTIALS_MAX_BYTES + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = op_error_set(err, -errno, "", "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > NODE_CREDENTIALS_MAX_BYTES) {
            rc = op_error_set(err, -EFBIG, "", "%s: a credentials file holds at most %d bytes",
                              path, NODE_CREDENTIALS_MAX_BYTES);
            goto out;
        }
    }
    json_error_t je;
    o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        rc = op_error_set(err, -EINVAL, "", "%s:%d:%d: not valid JSON: %s", path, je.line,
                          je.column, je.text);
        goto out;
    }
    if (!json_is_object(o)) {
        rc = op_error_set(err, -EINVAL, "", "%s: not a JSON object", path);
        goto out;
    }
    struct node_credentials c;
    memset(&c, 0, sizeof c);
    rc = parse(path, o, &c, err);
    if (rc == 0)
        *out = c;
    OPENSSL_cleanse(&c, sizeof c);
out:
    if (buf) {
        OPENSSL_cleanse(buf, NODE_CREDENTIALS_MAX_BYTES + 1);
        free(buf);
    }
    json_decref(o);
    close(fd);
    return rc;
}

static int check(const struct node_credentials *c, struct op_error *err)
{
    if (!node_id_valid(c->node_id))
        return op_error_set(err, -EINVAL, "node_id",
                            "node_id: must be 1 to %d characters of A-Z a-z 0-9 . _ : -",
                            NODE_ID_MAX);
    if (!memchr(c->region, '\0', sizeof c->region) || !region_valid(c->region))
        return op_error_set(err, -EINVAL, "region",
                            "region: must be 1 to %zu characters of A-Z 0-9 -",
                            sizeof c->region - 1);
    unsigned char tok[KEY_BYTES];
    if (!memchr(c->token, '\0', sizeof c->token) || from_hex(c->token, strlen(c->token), tok) != 0)
        return op_error_set(err, -EINVAL, "token", "token: must be 64 lower-case hex digits");
    if (!memchr(c->hq_url, '\0', sizeof c->hq_url) || !url_valid(c->hq_url))
        return op_error_set(err, -EINVAL, "hq_url",
                            "hq_url: must be empty or an http:// or https:// URL without spaces");
    return 0;
}

int node_credentials_write(const char *path, const struct node_credentials *c, struct op_error *err)
{
    int rc = check(c, err);
    if (rc < 0)
        return rc;
    char key_hex[2 * KEY_BYTES + 1];
    (void)codec_hex_encode(c->hq_key, KEY_BYTES, key_hex, sizeof key_hex);
    json_t *o = json_pack("{ssssssssss}", "format", NODE_CREDENTIALS_FORMAT, "node_id", c->node_id,
                          "region", c->region, "token", c->token, "hq_key", key_hex);
    OPENSSL_cleanse(key_hex, sizeof key_hex);
    if (o && c->hq_url[0] && json_object_set_new(o, "hq_url", json_string(c->hq_url)) < 0) {
        json_decref(o);
        o = NULL;
    }
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    size_t tlen = strlen(text);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    char *dir = malloc(plen + 2);
    int fd = -1, dfd = -1, linked = 0;
    if (!tmp || !dir) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, plen + 2, ".");
    else if (slash == path)
        snprintf(dir, plen + 2, "/");
    else
        snprintf(dir, plen + 2, "%.*s", (int)(slash - path), path);
    /* cheap early answer; link() below is what really refuses to replace */
    if (access(path, F_OK) == 0) {
        rc = op_error_set(err, -EEXIST, "", "%s: exists; credentials are never overwritten", path);
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = op_error_set(err, -errno, "", "%s: cannot create a temporary file in %s: %s", path,
                          dir, strerror(errno));
        tmp[0] = '\0';
        goto out;
    }
    if (fchmod(fd, 0600) != 0) {
        rc = op_error_set(err, -errno, "", "%s: cannot chmod: %s", tmp, strerror(errno));
        goto out;
    }
    for (size_t off = 0; off < tlen + 1;) {
        const char *p = off < tlen ? text + off : "\n";
        size_t n = off < tlen ? tlen - off : 1;
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = op_error_set(err, -errno, "", "%s: cannot write: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)k;
    }
    if (fsync(fd) != 0) {
        rc = op_error_set(err, -errno, "", "%s: cannot fsync: %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) != 0) {
        int e = errno;
        rc = op_error_set(err, -e, "", "%s: %s", path,
                          e == EEXIST ? "exists; credentials are never overwritten" : strerror(e));
        goto out;
    }
    linked = 1;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    (void)unlink(tmp);
    tmp[0] = '\0';
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = op_error_set(err, -errno, "", "%s: cannot fsync directory %s: %s", path, dir,
                          strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc < 0 && linked)
        (void)unlink(path); /* not durable: leave nothing half-done */
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp && tmp[0] && fd >= 0)
        (void)unlink(tmp);
    OPENSSL_cleanse(text, tlen);
    free(text);
    free(tmp);
    free(dir);
    return rc;
}

int node_credentials_generate(const char *node_id, const char *region, const char *hq_url,
                              struct node_credentials *out, struct op_error *err)
{
    struct node_credentials c;
    memset(&c, 0, sizeof c);
    if (!node_id_valid(node_id))
        return op_error_set(err, -EINVAL, "node_id",
                            "node id must be 1 to %d characters of A-Z a-z 0-9 . _ : -",
                            NODE_ID_MAX);
    if (!region || !region_valid(region))
        return op_error_set(err, -EINVAL, "region",
                            "region must be 1 to %zu characters of A-Z 0-9 -", sizeof c.region - 1);
    if (!hq_url)
        hq_url = "";
    if (strlen(hq_url) >= sizeof c.hq_url || !url_valid(hq_url))
        return op_error_set(err, -EINVAL, "hq_url",
                            "hq_url must be an http:// or https:// URL without spaces, under "
                            "%zu bytes",
                            sizeof c.hq_url);
    snprintf(c.node_id, sizeof c.node_id, "%s", node_id);
    snprintf(c.region, sizeof c.region, "%s", region);
    snprintf(c.hq_url, sizeof c.hq_url, "%s", hq_url);
    unsigned char rnd[2 * KEY_BYTES];
    int rc = uuid7_os_random(NULL, rnd, sizeof rnd);
    if (rc < 0)
        return op_error_set(err, -EIO, NULL, "no random bytes: %s", strerror(-rc));
    (void)codec_hex_encode(rnd, KEY_BYTES, c.token, sizeof c.token);
    memcpy(c.hq_key, rnd + KEY_BYTES, KEY_BYTES);
    OPENSSL_cleanse(rnd, sizeof rnd);
    *out = c;
    OPENSSL_cleanse(&c, sizeof c);
    return 0;
}
