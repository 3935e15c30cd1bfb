#!/bin/bash
# The test run skips nothing for want of a package (.ci/run, and
# packaging/build-deps.txt, docs/DEPENDENCIES.md):
# - every program a test checks for with `need`, `command -v` or
#   `type -P` is provided by a package in packaging/build-deps.txt
#   (looked up with dpkg -S on this machine, where that list is installed);
# - .ci/run's skip accounting moves a skipped test that does not say why
#   it can never run here (lib.sh's skip_never) from skipped to failed, and
#   leaves one that says so, or a test that passed, alone.
set -u
. "$TESTS_DIR/cli/lib.sh"
SRC=$(cd "$TESTS_DIR/.." && pwd)
T=$(mktmp)
deps=$(sed -e 's/#.*//' "$SRC/packaging/build-deps.txt" | xargs -n1 | sort -u)

# ---- the skip accounting ----------------------------------------------
eval "$(sed -n '/^skips() {/,/^}/p' "$SRC/.ci/run")"
declare -F skips >/dev/null || die ".ci/run has no skips function"
cat >"$T/testlog.json" <<'JSON'
{"name": "outpost:lint / lint_format", "result": "SKIP", "stdout": "", "stderr": "clang-format is not installed; formatting not checked\n"}
{"name": "outpost:integration / it_outpostd_login", "result": "SKIP", "stdout": "", "stderr": "SKIP (cannot run here): cannot bind loopback source addresses here\n"}
{"name": "outpost:unit / log", "result": "OK", "stdout": "ok\n"}
{"name": "outpost:packaging / packaging_deb", "result": "SKIP", "stdout": "SKIP: dpkg-dev is not installed\n"}
JSON
failed=0 skipped=3
skips "$T/testlog.json" 2>"$T/ci.err"
[ "$failed" = 2 ] && [ "$skipped" = 1 ] ||
    die "skips counted failed=$failed skipped=$skipped, expected 2 and 1: $(cat "$T/ci.err")"
expect_contains "$T/ci.err" "lint_format skipped without saying why it cannot run here (clang-format is not installed"
expect_contains "$T/ci.err" "packaging_deb skipped without saying why"
expect_not_contains "$T/ci.err" "it_outpostd_login"
failed=0 skipped=0
skips "$T/none.json"
[ "$failed" = 0 ] || die "a missing test log counted as a failure"

# ---- every program a test needs comes from build-deps.txt ---------------
command -v dpkg >/dev/null || skip "dpkg is not installed (not a Debian system)"
# The listed packages and what they depend on directly (python3 brings
# /usr/bin/python3 in python3-minimal).
brought=$(for d in $deps; do
    echo "$d"
    dpkg-query -W -f='${Depends}\n${Pre-Depends}\n' "$d" 2>/dev/null | tr ',|' '\n\n' |
        sed -e 's/([^)]*)//g' -e 's/:any//' -e 's/^ *//' -e 's/ .*//'
done | sed '/^$/d' | sort -u)
progs=$(cat "$SRC"/tests/*/*.sh "$SRC"/tests/cli/lib.sh |
    sed -n -e 's/^[[:space:]]*need \([a-z0-9 _-]*\).*/\1/p' \
        -e 's/.*command -v \([a-z0-9_-]*\) .*/\1/p' -e 's/.*type -P \([a-z0-9_-]*\).*/\1/p' |
    xargs -n1 | grep -v '^"' | sort -u)
[ -n "$progs" ] || die "no programs found in the tests' need/command -v lines"
for p in $progs; do
    path=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$p") || die "a test needs '$p', which is not installed: add its package to packaging/build-deps.txt"
    # The name as found (clang-format's link), else the file it resolves
    # to; /bin and /usr/bin are one directory on a merged-/usr system.
    pkg=""
    for f in "$path" "${path/#\/usr\/bin/\/bin}" "$(readlink -f "$path")"; do
        pkg=$(dpkg -S "$f" 2>/dev/null | head -n1 | cut -d: -f1)
        [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] || die "'$p' ($path) belongs to no Debian package here"
    # Essential packages (coreutils, dpkg, ...) are on every Debian system.
    [ "$(dpkg-query -W -f='${Essential}' "$pkg" 2>/dev/null)" = yes ] && continue
    grep -qxF "$pkg" <<<"$brought" ||
        die "a test needs '$p' from package $pkg, which packaging/build-deps.txt does not list"
    echo "$p: $pkg (in build-deps.txt)"
done
# The package build needs build-essential before anything else.
grep -qxF build-essential <<<"$deps" || die "build-essential is not in packaging/build-deps.txt"
pass
