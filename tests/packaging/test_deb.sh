#!/bin/bash
# The Debian package: packaging/build-deb.sh builds outpost_VERSION_ARCH.deb
# from this tree; the package holds what docs/INSTALL.md promises (the
# programs, the region profiles, the units, the default config as a
# conffile with every key commented out at its default, man pages, docs,
# bash completion for the three programs, a purge that keeps the CRM data
# unless confirmed, the .changes, .buildinfo and -dbgsym kept beside the
# .deb, maintainer scripts that create the user and
# purge only on purge); and the programs run from the unpacked package:
# outpostd --version, the shipped config loads, outpost init + check with
# the shipped region profiles, outpostd serves /healthz on 127.0.0.1.
# lintian, when installed, reports no errors.
#
# The programs run from a throwaway root: as root, `dpkg --root --unpack`
# installs the package there (scripts chrootless; a chrooted configure
# would need a whole Debian system, i.e. debootstrap and a network);
# otherwise a `dpkg-deb -x` tree. Skips when
# dpkg-buildpackage or debhelper or a build dependency is missing. The
# package is built with DEB_BUILD_OPTIONS=nocheck: the unit and CLI suites
# run in this same `meson test` anyway.
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
SRC=$(cd "$TESTS_DIR/.." && pwd)
for tool in dpkg-buildpackage dpkg-deb dh dpkg-checkbuilddeps; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install dpkg-dev debhelper)"
done
missing=$(dpkg-checkbuilddeps "$SRC/packaging/debian/control" 2>&1) ||
    skip "build dependencies missing: $missing"
T=$(mktmp)

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -n1)
arch=$(dpkg --print-architecture)
start=$(date +%s)
DEB_BUILD_OPTIONS=nocheck bash "$SRC/packaging/build-deb.sh" "$T" >"$T/build.out" 2>"$T/build.log" ||
    die "build-deb.sh failed: $(tail -n 40 "$T/build.log")"
echo "package built in $(($(date +%s) - start)) s"
deb=$(tail -n1 "$T/build.out")
[ "$deb" = "$T/outpost_${version}_$arch.deb" ] ||
    die "build-deb.sh printed '$deb', expected $T/outpost_${version}_$arch.deb"
[ -s "$deb" ] || die "$deb is missing or empty"

# Contents.
dpkg-deb -c "$deb" | awk '{print $1 " " $6}' >"$T/contents" || die "dpkg-deb -c failed"
has() {
    grep -qE "^[^ ]+ \./$1\$" "$T/contents" || die "the package lacks /$1; it has: $(cut -d' ' -f2 "$T/contents")"
}
for f in usr/sbin/outpostd usr/sbin/outpost-hq etc/outpost/outpost-hq.conf \
    lib/systemd/system/outpost-hq.service usr/bin/outpost usr/lib/outpost/outpost-backup \
    lib/systemd/system/outpostd.service lib/systemd/system/outpost-backup.service \
    lib/systemd/system/outpost-backup.timer etc/outpost/outpostd.conf \
    usr/share/man/man1/outpost.1.gz usr/share/man/man8/outpostd.8.gz \
    usr/share/man/man8/outpost-hq.8.gz \
    usr/share/doc/outpost/INSTALL.md usr/share/doc/outpost/copyright \
    usr/share/bash-completion/completions/outpost usr/share/bash-completion/completions/outpostd \
    usr/share/bash-completion/completions/outpost-hq; do
    has "$f"
done
for y in "$SRC"/schema/regions/*.yaml; do
    has "usr/share/outpost/regions/$(basename "$y")"
done
grep -q '^-rwxr-xr-x ./usr/sbin/outpostd$' "$T/contents" || die "outpostd is not mode 0755"
grep -qE '^[^ ]+ \./var/' "$T/contents" && die "the package ships state under /var (the postinst makes it)"
world=$(grep -E '^.{8}w' "$T/contents" | grep -v '^l' || :)
[ -z "$world" ] || die "world-writable files in the package: $world"

# What the build made besides the .deb is kept beside it.
ls "$T"/outpost_"${version}"_"$arch".changes "$T"/outpost_"${version}"_"$arch".buildinfo >/dev/null 2>&1 ||
    die "build-deb.sh did not keep the .changes and .buildinfo: $(ls "$T")"
ls "$T"/outpost-dbgsym_"${version}"_"$arch".*deb >/dev/null 2>&1 ||
    die "build-deb.sh did not keep the debug symbols package: $(ls "$T")"

# Control: the conffile, the version, the maintainer scripts.
dpkg-deb -e "$deb" "$T/control" || die "dpkg-deb -e failed"
for conf in outpostd.conf outpost-hq.conf; do
    grep -qx "/etc/outpost/$conf" "$T/control/conffiles" ||
        die "/etc/outpost/$conf is not a conffile: $(cat "$T/control/conffiles")"
done
grep -qx "Version: $version" "$T/control/control" || die "control: $(cat "$T/control/control")"
grep -q 'adduser --system --group' "$T/control/postinst" || die "postinst does not create the user"
grep -q 'deb-systemd-helper' "$T/control/postinst" || die "postinst does not set up the units"
grep -q 'outpost cert create --dir /var/lib/outpost' "$T/control/postinst" ||
    die "postinst does not make the node's TLS certificate"
# Purge keeps the CRM database and its backups unless the admin confirms
# (OUTPOST_PURGE_DATA=yes), and says what it kept. The purge branch runs
# against directories under $T (paths rewritten) with the user database
# left alone (getent answers "no such user").
purge_run() {
    local root=$1
    shift
    mkdir -p "$root/var/lib/outpost/backups" "$root/var/lib/outpost-hq"
    echo db >"$root/var/lib/outpost/node.db"
    {
        echo 'getent() { return 2; }'
        echo 'set -- purge'
        echo 'case "$1" in'
        sed -n '/^purge)/,/^    ;;/p' "$T/control/postrm" | sed "s|/var/lib/|$root/var/lib/|g"
        echo 'esac'
    } >"$T/purge.sh"
    env "$@" sh "$T/purge.sh" 2>"$T/purge.err" || die "the purge branch failed: $(cat "$T/purge.err")"
}
purge_run "$T/p1"
[ -f "$T/p1/var/lib/outpost/node.db" ] || die "purge deleted the CRM database without a confirmation"
expect_contains "$T/purge.err" "kept $T/p1/var/lib/outpost (the CRM database and its backups)"
expect_contains "$T/purge.err" "OUTPOST_PURGE_DATA=yes"
purge_run "$T/p2" OUTPOST_PURGE_DATA=yes
[ ! -e "$T/p2/var/lib/outpost" ] && [ ! -e "$T/p2/var/lib/outpost-hq" ] ||
    die "a confirmed purge left the state: $(ls -R "$T/p2")"
# Our branch for remove (and upgrade) does nothing: state goes on purge only.
grep -qE '^remove \|.*\) ;;$' "$T/control/postrm" ||
    die "postrm does something on remove: $(grep -n '^remove' "$T/control/postrm")"
for s in postinst postrm prerm preinst; do
    [ ! -e "$T/control/$s" ] || sh -n "$T/control/$s" || die "$s is not valid sh"
done

# The programs, from the package installed into a throwaway root. As root
# (CI), dpkg itself installs it there: `dpkg --root --unpack` records the
# package in the root's own dpkg database and places every file; the
# maintainer scripts run chrootless (the preinst only acts on a live
# systemd; configure, which creates the system user, is left out because it
# would act on this machine's user database). Otherwise the files come from
# `dpkg-deb -x`.
D="$T/root"
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$D/var/lib/dpkg/info" "$D/var/lib/dpkg/updates" "$D/var/lib/dpkg/triggers" &&
        touch "$D/var/lib/dpkg/status" || die "cannot make a dpkg root in $D"
    dpkg --root="$D" --force-script-chrootless --force-depends --unpack "$deb" \
        >"$T/dpkg.log" 2>&1 || die "dpkg --root --unpack failed: $(cat "$T/dpkg.log")"
    dpkg --root="$D" -s outpost 2>/dev/null | grep -q '^Version: '"$version"'$' ||
        die "the throwaway root's dpkg database does not list outpost $version"
    dpkg --root="$D" -L outpost | grep -qx /usr/sbin/outpostd ||
        die "dpkg -L in the throwaway root does not list /usr/sbin/outpostd"
    # Unpacked conffiles wait as .dpkg-new until configure; put them in
    # place as configure would.
    for f in $(cat "$D/var/lib/dpkg/info/outpost.conffiles"); do
        [ -e "$D$f.dpkg-new" ] && mv "$D$f.dpkg-new" "$D$f"
    done
    echo "installed with dpkg --root into $D"
else
    dpkg-deb -x "$deb" "$D" || die "dpkg-deb -x failed"
fi
expect_exit 0 "$D/usr/sbin/outpostd" --version
expect_contains "$OUT" "outpostd $version"
expect_exit 0 "$D/usr/bin/outpost" --version
expect_contains "$OUT" "outpost $version"
# outpost-hq from the package reads its shipped config (the unit's ExecStart).
expect_exit 0 "$D/usr/sbin/outpost-hq" --config "$D/etc/outpost/outpost-hq.conf" serve --print-config
expect_contains "$OUT" "db = /var/lib/outpost-hq/hq.db"
# The shipped configs set nothing: every key is commented out at its
# default, so a changed default is no conffile prompt.
for conf in outpostd.conf outpost-hq.conf; do
    ! grep -q '^[a-z]' "$D/etc/outpost/$conf" ||
        die "$conf sets keys: $(grep '^[a-z]' "$D/etc/outpost/$conf" | head -n 3)"
done
grep -qx '#listen = 0.0.0.0:8443' "$D/etc/outpost/outpostd.conf" ||
    die "outpostd.conf does not show listen's default commented out"
# The shipped config loads and says what the defaults are.
expect_exit 0 "$D/usr/sbin/outpostd" --config "$D/etc/outpost/outpostd.conf" --print-config
expect_contains "$OUT" "db = /var/lib/outpost/node.db"
expect_contains "$OUT" "listen = 0.0.0.0:8443"
expect_contains "$OUT" "tls = auto"
# The region profiles are found where the package put them.
export OUTPOST_REGIONS_DIR="$D/usr/share/outpost/regions"
export OUTPOST_DB="$T/node.db"
expect_exit 0 "$D/usr/bin/outpost" init --region EU-DE
expect_contains "$OUT" "for region EU-DE"
expect_exit 0 "$D/usr/bin/outpost" check
expect_contains "$OUT" "check: ok"
# The backup script from the package, against the packaged programs.
OUTPOST="$D/usr/bin/outpost" OUTPOSTD="$D/usr/sbin/outpostd" OUTPOST_BACKUP_DIR="$T/backups" \
    OUTPOST_CONFIG="$T/none.conf" expect_exit 0 sh "$D/usr/lib/outpost/outpost-backup"
ls "$T"/backups/node-*.db >/dev/null 2>&1 || die "the packaged backup script wrote no backup"

# The installed completion completes the installed program (bash loads
# it by the command's name from this directory).
comp="$D/usr/share/bash-completion/completions"
got=$(PATH="$D/usr/bin:$D/usr/sbin:$PATH" bash -c '. "$1/outpost-hq" &&
    COMP_WORDS=(outpost-hq no) COMP_CWORD=1 && _outpost_hq outpost-hq no outpost-hq &&
    echo "${COMPREPLY[*]}"' _ "$comp") || die "the installed outpost-hq completion failed"
[ "$got" = "node nodes" ] || die "the installed outpost-hq completion offers '$got' for 'no'"
# The reload the units name, from the package: no kill program involved.
grep -qxF 'ExecReload=/usr/sbin/outpostd --reload $MAINPID' "$D/lib/systemd/system/outpostd.service" ||
    die "the packaged outpostd.service does not reload with outpostd --reload"

# outpostd from the package serves on loopback and stops on SIGTERM.
if command -v curl >/dev/null; then
    "$D/usr/sbin/outpostd" --config "$D/etc/outpost/outpostd.conf" --db "$OUTPOST_DB" \
        --listen 127.0.0.1:0 --workers 1 2>"$T/daemon.log" &
    dpid=$!
    trap 'kill -9 $dpid 2>/dev/null; rm -rf "$LIB_ROOT"' EXIT
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/daemon.log")
        [ -n "$port" ] && break
        kill -0 $dpid 2>/dev/null || die "outpostd exited: $(cat "$T/daemon.log")"
        sleep 0.1
    done
    [ -n "$port" ] || die "outpostd did not report its port: $(cat "$T/daemon.log")"
    body=$(curl -s --max-time 10 "http://127.0.0.1:$port/healthz") || die "GET /healthz failed"
    [[ "$body" == *'"ok"'* ]] || die "/healthz answered '$body'"
    kill -TERM $dpid
    rc=0
    for _ in $(seq 1 100); do
        kill -0 $dpid 2>/dev/null || break
        sleep 0.1
    done
    wait $dpid || rc=$?
    [ "$rc" = 0 ] || die "outpostd exited $rc on SIGTERM: $(cat "$T/daemon.log")"
    echo "outpostd from the package served /healthz on 127.0.0.1:$port"
fi

if command -v lintian >/dev/null; then
    lintian --no-tag-display-limit "$deb" >"$T/lintian" 2>&1 || :
    echo "lintian: $(grep -c '^E:' "$T/lintian") errors, $(grep -c '^W:' "$T/lintian") warnings"
    grep -q '^E:' "$T/lintian" && die "lintian errors: $(grep '^E:' "$T/lintian")"
else
    echo "lintian not installed: not run"
fi
pass
