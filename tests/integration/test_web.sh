#!/bin/bash
# The web app as outpostd serves it over HTTP (docs/WEB_APP.md, "Serving"):
# / redirects to /app/; the files come gzipped with the strict CSP, an
# ETag and no-cache, 304 for a matching If-None-Match, inflated bytes equal
# to the source file for a client without gzip; HEAD has no body and the
# length GET sends; other
# methods 405 with Allow; unknown and escaping paths 404; none of it needs
# credentials or touches the database, and the API beside it still wants
# its token.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
init_node EU-DE
add_user ana field
ASSETS="$TESTS_DIR/../appliance/web/assets"
before=$(db_checksum "$DB" sessions api_tokens)
start_outpostd

req GET /
expect_status 302
[ "$(header Location)" = /app/ ] || die "/ redirects to '$(header Location)'"
expect_contains "$T/headers" "Content-Security-Policy: default-src 'self'; script-src 'self';"

# gzip as browsers ask for it
curl -s -o "$T/app.js.gz" -D "$T/headers" -H 'Accept-Encoding: gzip, deflate, br' "$BASE/app/app.js" ||
    die "curl failed"
expect_contains "$T/headers" "HTTP/1.1 200"
[ "$(header Content-Encoding)" = gzip ] || die "app.js not gzipped: $(cat "$T/headers")"
[ "$(header Content-Type)" = "text/javascript; charset=utf-8" ] || die "type: $(header Content-Type)"
[ "$(header Cache-Control)" = no-cache ] || die "Cache-Control: $(header Cache-Control)"
[ "$(header X-Content-Type-Options)" = nosniff ] || die "no nosniff"
expect_not_contains "$T/headers" "unsafe-inline"
gunzip -c "$T/app.js.gz" | cmp -s - "$ASSETS/app.js" || die "gunzipped app.js differs from the source"
etag=$(header ETag)
[ -n "$etag" ] || die "no ETag"

# revalidation: the same ETag is 304 with no body
code=$(curl -s -o "$OUT" -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/app/app.js")
[ "$code" = 304 ] || die "If-None-Match: expected 304, got $code"
[ ! -s "$OUT" ] || die "a 304 with a body"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "0000000000000000"' "$BASE/app/app.js")
[ "$code" = 200 ] || die "a stale ETag: expected 200, got $code"

# a client without gzip gets the file as it is
req GET /app/
expect_status 200
cmp -s "$OUT" "$ASSETS/index.html" || die "/app/ is not index.html"
[ -z "$(header Content-Encoding)" ] || die "gzip sent to a client that did not ask"
req GET /app/i18n/sw.json
expect_status 200
expect_contains "$OUT" '"login.title": "Ingia"'

# gzip refused by q=0: the plain bytes
curl -s -o "$OUT" -D "$T/headers" -H 'Accept-Encoding: gzip;q=0, identity' "$BASE/app/app.css" ||
    die "curl failed"
[ -z "$(header Content-Encoding)" ] || die "gzip sent despite q=0"
cmp -s "$OUT" "$ASSETS/app.css" || die "app.css differs from the source"

# HEAD: headers only, with the length GET would send: the file as it is
# without gzip, the gzipped bytes with it (RFC 9110, 9.3.2)
got=$(curl -s -I -o /dev/null -w '%{size_download}' -D "$T/headers" "$BASE/app/app.css") ||
    die "curl -I failed"
expect_contains "$T/headers" "HTTP/1.1 200"
[ "$got" = 0 ] || die "HEAD answered a body of $got bytes"
want=$(stat -c %s "$ASSETS/app.css")
[ "$(header Content-Length)" = "$want" ] || die "HEAD app.css: Content-Length $(header Content-Length), GET sends $want"
[ "$want" -gt 0 ] || die "app.css is empty"
curl -s -I -o /dev/null -D "$T/headers" -H 'Accept-Encoding: gzip' "$BASE/app/app.js" || die "curl -I failed"
[ "$(header Content-Encoding)" = gzip ] || die "HEAD with gzip: $(cat "$T/headers")"
want=$(stat -c %s "$T/app.js.gz")
[ "$(header Content-Length)" = "$want" ] || die "HEAD app.js (gzip): Content-Length $(header Content-Length), GET sends $want"

# other methods, unknown paths, paths that try to climb out
req POST /app/app.js "" '{"x":1}'
expect_status 405
[ "$(header Allow)" = "GET, HEAD" ] || die "Allow: $(header Allow)"
for p in /app/nope.js /app/../schema/meson.build /app/i18n/../../README.md /app/%2e%2e/meson.build; do
    code=$(curl -s --path-as-is -o "$OUT" -w '%{http_code}' "$BASE$p")
    [ "$code" = 404 ] || [ "$code" = 400 ] || die "$p: expected 404, got $code"
    expect_not_contains "$OUT" "project("
done

# the API next to it still asks for credentials
req GET /api/v1/layout
expect_status 401

stop_outpostd
[ "$(db_checksum "$DB" sessions api_tokens)" = "$before" ] || die "serving the app wrote to the database"
pass
