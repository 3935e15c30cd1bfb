#!/bin/bash
# The browser test run from a copy of tests/browser without node_modules
# (a checkout where `npm ci` was not run): it fails at once with one line
# naming the command, never Node's bare ERR_MODULE_NOT_FOUND.
set -u
die() { echo "FAIL: $*" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp "$TESTS_DIR"/browser/{app.test.mjs,lib.mjs,deps.mjs,package.json} "$T/"
node "$T/app.test.mjs" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" = 1 ] || die "expected exit 1 without node_modules, got $rc"
[ "$(wc -l <"$T/err")" = 1 ] || die "expected one line on stderr, got: $(cat "$T/err")"
grep -q "run 'npm ci' in $T" "$T/err" || die "the line does not name the command: $(cat "$T/err")"
grep -q "playwright-core" "$T/err" || die "the line does not name the package: $(cat "$T/err")"
! grep -q ERR_MODULE_NOT_FOUND "$T/err" "$T/out" || die "Node's bare error leaked: $(cat "$T/err")"
[ ! -s "$T/out" ] || die "output before the check: $(cat "$T/out")"
echo "ok: $(cat "$T/err")"
