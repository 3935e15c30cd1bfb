/*
 * The field staff web app as outpostd serves it (docs/WEB_APP.md): the
 * assets under appliance/web/assets, gzipped into the binary at build time
 * by embed_web.py, and the one function that answers a request for them.
 * Serving touches no database and no thread pool: an asset is answered at
 * the HTTP server's gate, before any body is read.
 *
 * Invariants: every answer carries the strict Content-Security-Policy
 * (no inline script or style, nothing from another origin), an ETag that
 * changes with the asset's bytes, and Cache-Control: no-cache, so a
 * browser revalidates (304) and never runs a stale build.
 */
#ifndef OUTPOST_WEB_H
#define OUTPOST_WEB_H

#include <stddef.h>

struct http_exchange;

struct web_asset {
    const char *path;        /* below /app/: "index.html", "i18n/de.json" */
    const char *type;        /* Content-Type */
    const unsigned char *gz; /* the bytes, gzipped */
    size_t gz_len;
    size_t len;       /* uncompressed */
    const char *etag; /* "\"0123456789abcdef\"" */
};

/* The assets, from the generated web_assets.c, sorted by path. */
extern const struct web_asset web_assets[];
extern const size_t web_asset_count;

/* The header every asset answer carries. */
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "             \
    "form-action 'self'"

/* The asset at path, a request path ("/app/", "/app/app.js"); "/app/" and
 * "/app" are index.html. NULL if none (also for "..", which names none). */
const struct web_asset *web_find(const char *path);

/* 1 when path is the app's: "/" or "/app" or below "/app/"; else 0 (the
 * API's, /healthz, /metrics). */
int web_owns(const char *path);

/* Inflates a's bytes into out (cap bytes, at least a->len). Returns the
 * length, or -EIO when they do not inflate to a->len bytes, -ENOSPC when
 * cap is too small. */
long web_inflate(const struct web_asset *a, unsigned char *out, size_t cap);

/* Answers x, a request web_owns: "/" redirects (302) to "/app/"; GET and
 * HEAD of an asset 200 (gzip when Accept-Encoding allows it, else the
 * inflated bytes; HEAD with the Content-Length GET would send and no
 * body) or 304 when If-None-Match names its ETag; other methods
 * 405 with Allow; an unknown path 404. */
void web_serve(struct http_exchange *x);

#endif
