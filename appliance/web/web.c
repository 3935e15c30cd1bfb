/*
 * Serving the embedded web app; see web.h.
 */
#include "web.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http_server.h"

#define APP_PREFIX "/app/"

int web_owns(const char *path)
{
    return !strcmp(path, "/") || !strcmp(path, "/app") ||
           !strncmp(path, APP_PREFIX, sizeof APP_PREFIX - 1);
}

const struct web_asset *web_find(const char *path)
{
    const char *rel;
    if (!strcmp(path, "/app") || !strcmp(path, APP_PREFIX))
        rel = "index.html";
    else if (!strncmp(path, APP_PREFIX, sizeof APP_PREFIX - 1))
        rel = path + sizeof APP_PREFIX - 1;
    else
        return NULL;
    size_t lo = 0, hi = web_asset_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rel, web_assets[mid].path);
        if (!c)
            return &web_assets[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

long web_inflate(const struct web_asset *a, unsigned char *out, size_t cap)
{
    if (cap < a->len)
        return -ENOSPC;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* gzip wrapper */
        return -EIO;
    z.next_in = (unsigned char *)a->gz;
    z.avail_in = (uInt)a->gz_len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    size_t got = z.total_out;
    inflateEnd(&z);
    return rc == Z_STREAM_END && got == a->len ? (long)got : -EIO;
}

/* Whether the Accept-Encoding value allows gzip (a "gzip" token whose
 * q is not 0). */
static int accepts_gzip(const char *v)
{
    while (v && *v) {
        while (*v == ' ' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        if (n >= 4 && !strncasecmp(v, "gzip", 4) && (n == 4 || v[4] == ';' || v[4] == ' ')) {
            const char *q = strstr(v, "q=");
            if (!q || q > v + n || strtod(q + 2, NULL) > 0)
                return 1;
        }
        v += n;
    }
    return 0;
}

/* Whether If-None-Match lists etag (or is "*"). */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    if (!strcmp(inm, "*"))
        return 1;
    size_t n = strlen(etag);
    for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag))
        if ((p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return 1;
    return 0;
}

static void common_headers(struct http_exchange *x)
{
    http_add_header(x, "Content-Security-Policy", WEB_CSP);
    http_add_header(x, "X-Content-Type-Options", "nosniff");
    http_add_header(x, "Referrer-Policy", "no-referrer");
}

void web_serve(struct http_exchange *x)
{
    const char *path = http_path(x), *method = http_method(x);
    int head = !strcmp(method, "HEAD");
    if (!head && strcmp(method, "GET")) {
        http_add_header(x, "Allow", "GET, HEAD");
        http_respond_problem(x, 405, NULL, "the web app's files are read with GET or HEAD");
        return;
    }
    if (!strcmp(path, "/")) {
        common_headers(x);
        http_add_header(x, "Location", APP_PREFIX);
        http_add_header(x, "Cache-Control", "no-cache");
        http_respond(x, 302, NULL, NULL, 0);
        return;
    }
    const struct web_asset *a = web_find(path);
    if (!a) {
        http_respond_problem(x, 404, NULL, "no such file in the web app");
        return;
    }
    common_headers(x);
    http_add_header(x, "ETag", a->etag);
    http_add_header(x, "Cache-Control", "no-cache");
    http_add_header(x, "Vary", "Accept-Encoding");
    if (etag_matches(http_header(x, "If-None-Match"), a->etag)) {
        http_respond(x, 304, NULL, NULL, 0);
        return;
    }
    if (accepts_gzip(http_header(x, "Accept-Encoding"))) {
        http_add_header(x, "Content-Encoding", "gzip");
        /* HEAD too: the server sends the length and leaves the body out */
        http_respond(x, 200, a->type, a->gz, a->gz_len);
        return;
    }
    unsigned char *raw = malloc(a->len ? a->len : 1);
    long n = raw ? web_inflate(a, raw, a->len) : -ENOMEM;
    if (n < 0) {
        free(raw);
        http_respond_problem(x, 500, NULL, "the web app's file could not be unpacked");
        return;
    }
    http_respond(x, 200, a->type, raw, (size_t)n);
    free(raw);
}
