#!/bin/bash
# The Debian packages: packaging/build-deb.sh builds three from this tree,
# outpost (the node), outpost-hq (the HQ receiver) and outpost-common (what
# both need), and each holds what docs/INSTALL.md promises: the programs,
# units, man pages and bash completions of its part (a node gets no HQ
# configuration or unit), the region profiles, docs and system user in
# common, each default config a conffile of its package with every key
# commented out at its default, the .changes, .buildinfo and both -dbgsym
# packages kept beside them; a purge that asks (debconf, priority high,
# default keep) before deleting the state, answered by preseeding or
# OUTPOST_PURGE_DATA=yes; an upgrade from the 0.1.0 single package moves
# the files (Breaks/Replaces). And the programs run from the installed
# packages: outpostd --version, the shipped configs load and both daemons
# start with them, outpost init + check with the shipped region profiles,
# outpostd and outpost-hq serve on 127.0.0.1. lintian, when installed,
# reports no errors.
#
# The programs run from a throwaway root: as root, `dpkg --root --unpack`
# installs the packages there (scripts chrootless; a chrooted configure
# would need a whole Debian system, i.e. debootstrap and a network);
# otherwise a `dpkg-deb -x` tree. Skips when
# dpkg-buildpackage or debhelper or a build dependency is missing. The
# packages are built with DEB_BUILD_OPTIONS=nocheck: the unit and CLI
# suites run in this same `meson test` anyway.
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
SRC=$(cd "$TESTS_DIR/.." && pwd)
for tool in dpkg-buildpackage dpkg-deb dh dpkg-checkbuilddeps dpkg-parsechangelog; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install dpkg-dev debhelper)"
done
missing=$(dpkg-checkbuilddeps "$SRC/packaging/debian/control" 2>&1) ||
    skip "build dependencies missing: $missing"
T=$(mktmp)

# The package version (VERSION, or VERSION+N for a change to the packaging
# alone).
version=$(dpkg-parsechangelog -l "$SRC/packaging/debian/changelog" -S Version)
prog_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -n1)
arch=$(dpkg --print-architecture)
start=$(date +%s)
DEB_BUILD_OPTIONS=nocheck bash "$SRC/packaging/build-deb.sh" "$T" >"$T/build.out" 2>"$T/build.log" ||
    die "build-deb.sh failed: $(tail -n 40 "$T/build.log")"
echo "packages built in $(($(date +%s) - start)) s"
node_deb=$T/outpost_${version}_$arch.deb
hq_deb=$T/outpost-hq_${version}_$arch.deb
common_deb=$T/outpost-common_${version}_all.deb
printf '%s\n' "$node_deb" "$hq_deb" "$common_deb" >"$T/expected.out"
cmp -s "$T/build.out" "$T/expected.out" ||
    die "build-deb.sh printed '$(cat "$T/build.out")', expected '$(cat "$T/expected.out")'"
for deb in "$node_deb" "$hq_deb" "$common_deb"; do
    [ -s "$deb" ] || die "$deb is missing or empty"
done

# Contents: each package has its part and nothing of the others'.
contents() {
    dpkg-deb -c "$1" | awk '{print $1 " " $6}' >"$T/contents.$2" || die "dpkg-deb -c $1 failed"
}
has() {
    grep -qE "^[^ ]+ \./$2\$" "$T/contents.$1" ||
        die "package $1 lacks /$2; it has: $(cut -d' ' -f2 "$T/contents.$1")"
}
lacks() {
    ! grep -qE "^[^ ]+ \./$2\$" "$T/contents.$1" || die "package $1 has /$2, which is not its part"
}
contents "$node_deb" outpost
contents "$hq_deb" outpost-hq
contents "$common_deb" outpost-common
for f in usr/sbin/outpostd usr/bin/outpost usr/lib/outpost/outpost-backup \
    lib/systemd/system/outpostd.service lib/systemd/system/outpost-backup.service \
    lib/systemd/system/outpost-backup.timer etc/outpost/outpostd.conf \
    usr/share/man/man1/outpost.1.gz usr/share/man/man8/outpostd.8.gz \
    usr/share/bash-completion/completions/outpost usr/share/bash-completion/completions/outpostd; do
    has outpost "$f"
    lacks outpost-hq "$f"
    lacks outpost-common "$f"
done
has outpost usr/share/doc/outpost/copyright
for f in usr/sbin/outpost-hq etc/outpost/outpost-hq.conf lib/systemd/system/outpost-hq.service \
    usr/share/man/man8/outpost-hq.8.gz usr/share/bash-completion/completions/outpost-hq; do
    has outpost-hq "$f"
    lacks outpost "$f"
    lacks outpost-common "$f"
done
has outpost-hq usr/share/doc/outpost-hq/copyright
for f in usr/share/doc/outpost-common/INSTALL.md usr/share/doc/outpost-common/copyright \
    usr/share/doc/outpost-common/README.md; do
    has outpost-common "$f"
done
for y in "$SRC"/schema/regions/*.yaml; do
    has outpost-common "usr/share/outpost/regions/$(basename "$y")"
    lacks outpost "usr/share/outpost/regions/$(basename "$y")"
done
grep -q '^-rwxr-xr-x ./usr/sbin/outpostd$' "$T/contents.outpost" || die "outpostd is not mode 0755"
cat "$T"/contents.outpost* >"$T/contents.all"
! grep -qE '^[^ ]+ \./var/' "$T/contents.all" || die "a package ships state under /var (the postinst makes it)"
world=$(grep -E '^.{8}w' "$T/contents.all" | grep -v '^l' || :)
[ -z "$world" ] || die "world-writable files in the packages: $world"

# What the build made besides the packages is kept beside them, and the
# .changes lists each file, all of them there.
changes=$T/outpost_${version}_$arch.changes
[ -f "$changes" ] && [ -f "$T/outpost_${version}_$arch.buildinfo" ] ||
    die "build-deb.sh did not keep the .changes and .buildinfo: $(ls "$T")"
for p in outpost outpost-hq; do
    ls "$T/$p-dbgsym_${version}_$arch".*deb >/dev/null 2>&1 ||
        die "build-deb.sh did not keep the debug symbols package $p-dbgsym: $(ls "$T")"
done
sed -n '/^Files:/,$p' "$changes" | awk 'NF == 5 {print $5}' >"$T/changes.files"
[ "$(grep -c '' "$T/changes.files")" -ge 6 ] || die "the .changes lists too few files: $(cat "$T/changes.files")"
while read -r f; do
    [ -e "$T/$f" ] || die "the .changes lists $f, which build-deb.sh did not keep"
done <"$T/changes.files"

# Control: conffiles, versions and relations, maintainer scripts.
debs="outpost:$node_deb outpost-hq:$hq_deb outpost-common:$common_deb"
for pd in $debs; do
    p=${pd%%:*}
    dpkg-deb -e "${pd#*:}" "$T/control.$p" || die "dpkg-deb -e ${pd#*:} failed"
    grep -qx "Version: $version" "$T/control.$p/control" || die "$p control: $(cat "$T/control.$p/control")"
    for s in postinst postrm prerm preinst config; do
        [ ! -e "$T/control.$p/$s" ] || sh -n "$T/control.$p/$s" || die "$p $s is not valid sh"
    done
done
[ "$(cat "$T/control.outpost/conffiles")" = /etc/outpost/outpostd.conf ] ||
    die "outpost's conffiles: $(cat "$T/control.outpost/conffiles")"
[ "$(cat "$T/control.outpost-hq/conffiles")" = /etc/outpost/outpost-hq.conf ] ||
    die "outpost-hq's conffiles: $(cat "$T/control.outpost-hq/conffiles")"
[ ! -e "$T/control.outpost-common/conffiles" ] || die "outpost-common has conffiles"
for p in outpost outpost-hq; do
    grep -q "^Depends:.*outpost-common (= $version)" "$T/control.$p/control" ||
        die "$p does not depend on outpost-common (= $version): $(grep ^Depends "$T/control.$p/control")"
    grep -q "^Depends:.*debconf" "$T/control.$p/control" || die "$p does not depend on debconf"
    grep -q 'deb-systemd-helper' "$T/control.$p/postinst" || die "$p's postinst does not set up its units"
    grep -q 'db_purge' "$T/control.$p/postrm" || die "$p's postrm does not purge its debconf answers"
    grep -qx "Template: $p/purge-data" "$T/control.$p/templates" || die "$p has no purge-data template"
    [ -x "$T/control.$p/config" ] || die "$p has no debconf config script"
    grep -qE '^remove \|.*\) ;;$' "$T/control.$p/postrm" ||
        die "$p's postrm does something on remove: $(grep -n '^remove' "$T/control.$p/postrm")"
done
for p in outpost-hq outpost-common; do
    for rel in Breaks Replaces; do
        grep -qx "$rel: outpost (<< 0.1.0+1~)" "$T/control.$p/control" ||
            die "$p does not say $rel: outpost (<< 0.1.0+1~): $(cat "$T/control.$p/control")"
    done
done
grep -q 'adduser --system --group' "$T/control.outpost-common/postinst" ||
    die "outpost-common's postinst does not create the user"
grep -q 'outpost cert create --dir /var/lib/outpost' "$T/control.outpost/postinst" ||
    die "outpost's postinst does not make the node's TLS certificate"
grep -q "deb-systemd-helper.*enable 'outpostd.service'" "$T/control.outpost/postinst" ||
    die "outpost's postinst does not enable outpostd"
# (That outpost-hq's does not enable the receiver is seen under systemd below.)

# Purge asks before deleting the state, default keep. Each package's purge
# branch runs as its postrm (debconf's frontend starts it again by that
# name) against directories under $T (paths rewritten), with debconf's
# database in $T: the template from the package, answers preseeded or not.
purge_run() { # PACKAGE ROOT [ENV...]; the frontend's input on stdin
    local p=$1 root=$2 dir
    shift 2
    dir=/var/lib/$p
    mkdir -p "$root$dir/backups"
    echo db >"$root$dir/node.db"
    grep -qx "state=$dir" "$T/control.$p/postrm" || die "$p's postrm does not name its state $dir"
    {
        echo '#!/bin/sh'
        echo 'set -e'
        echo "state=$root$dir"
        echo 'case "$1" in'
        sed -n '/^purge)/,/^    ;;/p' "$T/control.$p/postrm"
        echo 'esac'
    } >"$root/$p.postrm"
    chmod +x "$root/$p.postrm"
    env DEBCONF_SYSTEMRC="$T/debconf.conf" "$@" "$root/$p.postrm" purge >"$T/purge.out" 2>"$T/purge.err" ||
        die "$p's purge branch failed: $(cat "$T/purge.err")"
}
dc() { DEBCONF_SYSTEMRC="$T/debconf.conf" "$@"; }
if [ -e /usr/share/debconf/confmodule ]; then
    mkdir -p "$T/debconf"
    printf '%s\n' 'Config: configdb' 'Templates: templatedb' '' 'Name: configdb' 'Driver: File' \
        "Filename: $T/debconf/config.dat" '' 'Name: templatedb' 'Driver: File' \
        "Filename: $T/debconf/templates.dat" >"$T/debconf.conf"
    # As debconf loads a package's templates at its installation.
    for p in outpost outpost-hq; do
        dc perl -MDebconf::Db -MDebconf::Template -e \
            'Debconf::Db->load; Debconf::Template->load($ARGV[1], $ARGV[0]); Debconf::Db->save' \
            "$p" "$T/control.$p/templates" || die "cannot load $p's template"
    done
    # Unattended (noninteractive): kept, and said how to delete it.
    for p in outpost outpost-hq; do
        purge_run "$p" "$T/p1" DEBIAN_FRONTEND=noninteractive </dev/null
        [ -f "$T/p1/var/lib/$p/node.db" ] || die "an unattended purge of $p deleted its state"
        expect_contains "$T/purge.err" "$p: kept $T/p1/var/lib/$p"
        expect_contains "$T/purge.err" "OUTPOST_PURGE_DATA=yes"
    done
    # Asked at priority high (a frontend that shows only high questions):
    # "no" keeps it, "yes" deletes it.
    purge_run outpost "$T/p2" DEBIAN_FRONTEND=teletype DEBIAN_PRIORITY=high <<<"no"
    expect_contains "$T/purge.out" "Delete the node's CRM database and all of its backups?"
    [ -f "$T/p2/var/lib/outpost/node.db" ] || die "the purge deleted the state after 'no'"
    dc debconf-communicate outpost <<<"RESET outpost/purge-data" >/dev/null
    purge_run outpost "$T/p3" DEBIAN_FRONTEND=teletype DEBIAN_PRIORITY=high <<<"yes"
    expect_contains "$T/purge.out" "Delete the node's CRM database and all of its backups?"
    [ ! -e "$T/p3/var/lib/outpost" ] || die "the purge kept the state after 'yes': $(cat "$T/purge.err")"
    expect_contains "$T/purge.err" "outpost: deleted $T/p3/var/lib/outpost"
    # A preseeded yes deletes it unattended.
    echo 'outpost-hq outpost-hq/purge-data boolean true' | dc debconf-set-selections ||
        die "preseeding failed"
    purge_run outpost-hq "$T/p4" DEBIAN_FRONTEND=noninteractive </dev/null
    [ ! -e "$T/p4/var/lib/outpost-hq" ] || die "a preseeded purge kept the state: $(cat "$T/purge.err")"
else
    echo "debconf is not installed: the purge runs without asking"
fi
# OUTPOST_PURGE_DATA=yes says yes without asking.
purge_run outpost "$T/p5" OUTPOST_PURGE_DATA=yes DEBIAN_FRONTEND=teletype </dev/null
[ ! -e "$T/p5/var/lib/outpost" ] || die "a purge with OUTPOST_PURGE_DATA=yes kept the state"
expect_not_contains "$T/purge.out" "Delete the"

# The programs, from the packages installed into a throwaway root. As root
# (CI), dpkg itself installs them there: `dpkg --root --unpack` records
# the packages in the root's own dpkg database and places every file; the
# maintainer scripts run chrootless (configure, which creates the system
# user, is left out because it would act on this machine's user
# database). Otherwise the files come from `dpkg-deb -x`.
dpkg_root() { # ROOT: an empty dpkg database
    mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates" "$1/var/lib/dpkg/triggers" &&
        touch "$1/var/lib/dpkg/status" || die "cannot make a dpkg root in $1"
}
D="$T/root"
if [ "$(id -u)" = 0 ]; then
    dpkg_root "$D"
    dpkg --root="$D" --force-script-chrootless --unpack "$common_deb" "$node_deb" "$hq_deb" \
        >"$T/dpkg.log" 2>&1 || die "dpkg --root --unpack failed: $(cat "$T/dpkg.log")"
    for p in outpost outpost-hq outpost-common; do
        dpkg --root="$D" -s "$p" 2>/dev/null | grep -q '^Version: '"$version"'$' ||
            die "the throwaway root's dpkg database does not list $p $version"
    done
    [ "$(dpkg --root="$D" -S /usr/sbin/outpost-hq | cut -d: -f1)" = outpost-hq ] ||
        die "dpkg -S in the throwaway root: $(dpkg --root="$D" -S /usr/sbin/outpost-hq)"
    # Unpacked conffiles wait as .dpkg-new until configure; put them in
    # place as configure would.
    for f in $(cat "$D"/var/lib/dpkg/info/*.conffiles); do
        [ -e "$D$f.dpkg-new" ] && mv "$D$f.dpkg-new" "$D$f"
    done
    echo "installed with dpkg --root into $D"

    # A node: outpost and outpost-common only, and no HQ configuration or
    # unit (the HQ unit's condition would hold on every node).
    N="$T/node-root"
    dpkg_root "$N"
    dpkg --root="$N" --force-script-chrootless --unpack "$common_deb" "$node_deb" \
        >"$T/dpkg.log" 2>&1 || die "dpkg --root --unpack of a node failed: $(cat "$T/dpkg.log")"
    for f in /etc/outpost/outpost-hq.conf /lib/systemd/system/outpost-hq.service /usr/sbin/outpost-hq; do
        [ ! -e "$N$f" ] && [ ! -e "$N$f.dpkg-new" ] || die "a node install has $f"
    done
    [ -e "$N/etc/outpost/outpostd.conf.dpkg-new" ] || die "a node install lacks outpostd.conf"

    # An upgrade from the 0.1.0 layout: one package outpost with the HQ
    # receiver, its unit and configuration inside. That package is made
    # here from the new packages' files and 0.1.0's control data (both
    # conffiles, no dependency on outpost-common), installed and configured
    # (it has no maintainer scripts), the admin edits outpost-hq.conf, and
    # the three new packages are unpacked over it: outpost-hq and
    # outpost-common take over their files and the conffile (Replaces), the
    # old outpost is deconfigured for their Breaks, and nothing is lost.
    O="$T/old"
    mkdir -p "$O/DEBIAN"
    for deb in "$node_deb" "$hq_deb" "$common_deb"; do
        dpkg-deb -x "$deb" "$O" || die "dpkg-deb -x $deb"
    done
    rm -rf "$O/usr/share/doc/outpost-hq" "$O/usr/share/doc/outpost-common"
    sed -e '/^Depends:/d' -e "s/^Version: .*/Version: 0.1.0/" "$T/control.outpost/control" >"$O/DEBIAN/control"
    printf '%s\n' /etc/outpost/outpostd.conf /etc/outpost/outpost-hq.conf >"$O/DEBIAN/conffiles"
    dpkg-deb --root-owner-group -b "$O" "$T/old.deb" >/dev/null || die "cannot make the 0.1.0 package"
    # In either order: the new packages first (the old outpost deconfigured
    # for their Breaks), or outpost first (its old files go, its old
    # conffile stays behind until outpost-hq takes it).
    n=0
    for order in "$common_deb $hq_deb $node_deb" "$node_deb $common_deb $hq_deb"; do
        n=$((n + 1))
        U="$T/upgrade-root.$n"
        dpkg_root "$U"
        dpkg --root="$U" --force-script-chrootless --install "$T/old.deb" >"$T/dpkg.log" 2>&1 ||
            die "installing the 0.1.0 layout failed: $(cat "$T/dpkg.log")"
        echo '# edited by the admin' >>"$U/etc/outpost/outpost-hq.conf"
        # shellcheck disable=SC2086 # the order is three paths
        dpkg --root="$U" --force-script-chrootless --auto-deconfigure --unpack $order \
            >"$T/dpkg.log" 2>&1 || die "upgrading the 0.1.0 layout ($order) failed: $(cat "$T/dpkg.log")"
        for f in /usr/sbin/outpost-hq:outpost-hq /lib/systemd/system/outpost-hq.service:outpost-hq \
            /usr/share/outpost/regions/EU-DE.yaml:outpost-common /usr/sbin/outpostd:outpost; do
            owner=$(dpkg --root="$U" -S "${f%%:*}" 2>&1) || die "after the upgrade no package owns ${f%%:*}"
            [ "${owner%%:*}" = "${f##*:}" ] || die "after the upgrade ${f%%:*} belongs to '$owner'"
            [ -e "$U${f%%:*}" ] || die "the upgrade ($order) lost ${f%%:*}"
        done
        dpkg --root="$U" -s outpost-hq | sed -n '/^Conffiles:/,/^[A-Z]/p' |
            grep -q '/etc/outpost/outpost-hq.conf' ||
            die "outpost-hq did not take over its conffile: $(dpkg --root="$U" -s outpost-hq)"
        grep -qx '# edited by the admin' "$U/etc/outpost/outpost-hq.conf" ||
            die "the upgrade ($order) lost the admin's edit to outpost-hq.conf"
        dpkg --root="$U" -s outpost | grep -q "^Version: $version\$" || die "outpost was not upgraded"
    done
    echo "upgraded the 0.1.0 layout to the three packages, in either order"
else
    for deb in "$node_deb" "$hq_deb" "$common_deb"; do
        dpkg-deb -x "$deb" "$D" || die "dpkg-deb -x $deb failed"
    done
fi
expect_exit 0 "$D/usr/sbin/outpostd" --version
expect_contains "$OUT" "outpostd $prog_version"
expect_exit 0 "$D/usr/bin/outpost" --version
expect_contains "$OUT" "outpost $prog_version"
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
# Every key the daemon knows is there, commented out at its default, under
# the line that says what it does.
for pc in outpostd:outpostd.conf outpost-hq:outpost-hq.conf; do
    conf=$D/etc/outpost/${pc#*:}
    "$D/usr/sbin/${pc%%:*}" --describe-config >"$T/describe" || die "${pc%%:*} --describe-config failed"
    keys=$(grep -cE '^[a-z][a-z0-9_]* = ' "$T/describe")
    [ "$keys" -gt 10 ] || die "${pc%%:*} --describe-config lists only $keys keys"
    grep -E '^[a-z][a-z0-9_]* = ' "$T/describe" | while IFS= read -r line; do
        grep -B1 -xF "#$line" "$conf" | head -n1 | grep -q '^# [a-zA-Z]' ||
            die "${pc#*:} lacks '#$line' under a line saying what it does"
    done || exit 1
done
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

# outpost-hq from the package starts with its shipped, all-commented
# config (state paths given as flags, the rest the defaults) and stops on
# SIGTERM.
"$D/usr/sbin/outpost-hq" --config "$D/etc/outpost/outpost-hq.conf" serve --db "$T/hq.db" \
    --spool_dir "$T/hq-uploads" --listen 127.0.0.1:0 2>"$T/hq.log" &
hpid=$!
trap 'kill -9 $hpid 2>/dev/null; rm -rf "$LIB_ROOT"' EXIT
hport=""
for _ in $(seq 1 100); do
    hport=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/hq.log")
    [ -n "$hport" ] && break
    kill -0 $hpid 2>/dev/null || die "outpost-hq exited with the shipped config: $(cat "$T/hq.log")"
    sleep 0.1
done
[ -n "$hport" ] || die "outpost-hq did not report its port: $(cat "$T/hq.log")"
kill -TERM $hpid
rc=0
wait $hpid || rc=$?
[ "$rc" = 0 ] || die "outpost-hq exited $rc on SIGTERM: $(cat "$T/hq.log")"
echo "outpost-hq from the package served on 127.0.0.1:$hport with the shipped config"

if command -v lintian >/dev/null; then
    lintian --no-tag-display-limit "$node_deb" "$hq_deb" "$common_deb" >"$T/lintian" 2>&1 || :
    echo "lintian: $(grep -c '^E:' "$T/lintian") errors, $(grep -c '^W:' "$T/lintian") warnings"
    grep -q '^E:' "$T/lintian" && die "lintian errors: $(grep '^E:' "$T/lintian")"
else
    echo "lintian not installed: not run"
fi
# The packages under a real systemd: a throwaway root made from this
# machine's own installed system (its /usr read-only, a few files of its
# /etc; nothing is downloaded) with the packages unpacked into it, booted
# with systemd-nspawn on a private network (only its own loopback).
# nspawn_probe.sh runs inside as a oneshot unit: it configures the
# packages (their maintainer scripts for real), starts outpostd.service,
# reloads it with a refused file, gives it a bad listen address and an
# unwritable database, purges the packages with dpkg, and writes what it
# saw to $B/results.
# This comes last: where the machine cannot boot a container, everything
# above has passed and the test says exactly why the boot was not run.
[ "$(id -u)" = 0 ] || skip_never "booting under systemd-nspawn needs root (this run is uid $(id -u))"
command -v systemd-nspawn >/dev/null ||
    skip "systemd-nspawn is not installed (packaging/build-deps.txt: systemd-container)"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd to boot (packaging/build-deps.txt: systemd)"
B="$T/boot"
mkdir -p "$B/root/etc" "$B/root/var/lib/dpkg" "$B/root/var/cache/debconf" "$B/root/var/log" \
    "$B/root/usr" "$B/results" || die "cannot lay out $B"
# The merged /usr of Debian 12: /lib is usr/lib and so on (made before
# dpkg unpacks, which would replace a dangling link with a directory).
for l in bin sbin lib lib64; do
    [ -e "/$l" ] || continue
    mkdir -p "$B/root/usr/$l" && ln -s "usr/$l" "$B/root/$l" || die "cannot link /$l"
done
# What the maintainer scripts and a login need of /etc (accounts, PAM for
# runuser, adduser's and debconf's settings, the TLS defaults).
for f in passwd group shadow gshadow login.defs adduser.conf debconf.conf nsswitch.conf pam.conf \
    pam.d security ssl default; do
    [ -e "/etc/$f" ] && cp -a "/etc/$f" "$B/root/etc/"
done
cp -L /etc/os-release "$B/root/etc/os-release" || die "no /etc/os-release"
: >"$B/root/etc/machine-id"
echo outpost-boot-test >"$B/root/etc/hostname"
dpkg_root "$B/root"
dpkg --root="$B/root" --force-script-chrootless --unpack "$common_deb" "$node_deb" "$hq_deb" \
    >"$T/dpkg.log" 2>&1 || die "dpkg --root --unpack into the boot root failed: $(cat "$T/dpkg.log")"
# The packages' /usr goes over the host's as an overlay whose upper layer
# is theirs: what dpkg --purge deletes there never touches the host's.
mv "$B/root/usr" "$B/usr-packages" && mkdir "$B/root/usr" || die "cannot move the packages' /usr"
install -m 0755 "$TESTS_DIR/packaging/nspawn_probe.sh" "$B/root/probe.sh" || die "cannot copy the probe"
mkdir -p "$B/root/etc/systemd/system/multi-user.target.wants"
printf '%s\n' '[Unit]' 'After=multi-user.target' '[Service]' 'Type=oneshot' \
    'ExecStart=/probe.sh' 'StandardOutput=journal' '[Install]' 'WantedBy=multi-user.target' \
    >"$B/root/etc/systemd/system/probe.service"
ln -s /etc/systemd/system/probe.service "$B/root/etc/systemd/system/multi-user.target.wants/"

# Can this machine run a container at all? A command, no boot, first: a
# failure here is the machine's (no namespaces, no permission), not ours.
# The machine's name is this run's, so that two runs at once do not meet.
machine=outpost-test-$$
if ! timeout 60 systemd-nspawn -q -D "$B/root" --machine="$machine" --register=no --keep-unit \
    --private-network --bind-ro=/usr /usr/bin/true >"$T/nspawn-probe.log" 2>&1; then
    skip_never "systemd-nspawn cannot start a container on this machine: $(head -c 300 "$T/nspawn-probe.log")"
fi
start=$(date +%s)
timeout 180 systemd-nspawn -q -D "$B/root" --machine="$machine" --register=no --keep-unit \
    --private-network --overlay="/usr:$B/usr-packages:/usr" --bind="$B/results:/results" -b \
    >"$T/boot.log" 2>&1 </dev/null || :
echo "booted under systemd-nspawn and powered off in $(($(date +%s) - start)) s"
R="$B/results"
[ -f "$R/done" ] || die "the probe did not finish inside the container: $(tail -n 30 "$T/boot.log")
probe: $(tail -n 30 "$R/probe.log" 2>/dev/null)"
val() { cat "$R/$1" 2>/dev/null; }
show() { echo "probe log:"; tail -n 40 "$R/probe.log"; }
[ "$(val configure.rc)" = 0 ] || die "dpkg --configure in the container failed: $(show)"
[ -n "$(val user)" ] || die "configure made no outpost user: $(show)"
[ "$(val enabled)" = enabled ] || die "outpostd.service is '$(val enabled)' after configure, not enabled"
[ "$(val hq-enabled)" = disabled ] || die "outpost-hq.service is '$(val hq-enabled)' after configure"
grep -qx 'ActiveState=inactive' "$R/before-init" && grep -qx 'ConditionResult=no' "$R/before-init" ||
    die "before outpost init the unit was not skipped by its condition: $(val before-init)"
[ "$(val init.rc)" = 0 ] || die "outpost init in the container failed: $(show)"
[ "$(val start.rc)" = 0 ] || die "systemctl start outpostd failed: $(val journal-all)"
[ "$(val active)" = active ] || die "systemctl is-active outpostd said '$(val active)'"
[ "$(val reload-bad.rc)" != 0 ] || die "systemctl reload with a refused file succeeded"
[ "$(val active-after-bad-reload)" = active ] || die "a refused reload stopped outpostd"
[ "$(val reload-good.rc)" = 0 ] || die "systemctl reload with the good file failed: $(val journal-all)"
[ "$(val restart-bad.rc)" != 0 ] || die "a restart with listen = not-an-address succeeded"
for f in bad-listen unwritable; do
    grep -qx 'NRestarts=0' "$R/$f" && grep -qx 'ExecMainStatus=2' "$R/$f" &&
        grep -qx 'ActiveState=failed' "$R/$f" || die "$f: not exit 2 without restarts: $(val "$f")"
done
[ "$(val start-unwritable.rc)" != 0 ] || die "outpostd started on a database it cannot write"
# The journal: each line at its own priority, named once.
expect_contains "$R/journal-err" "reload refused"
expect_contains "$R/journal-err" "not-an-address"
expect_contains "$R/journal-err" "is not writable by outpost"
expect_not_contains "$R/journal-err" "serving the API"
grep -q '"PRIORITY":"5".*serving the API\|serving the API.*"PRIORITY":"5"' "$R/journal.json" ||
    die "'serving the API' is not at priority notice: $(grep 'serving' "$R/journal.json" | head -n 3)"
! grep -q '^outpostd: ' "$R/journal-all" || die "journal lines are prefixed twice: $(grep '^outpostd: ' "$R/journal-all" | head -n 3)"
# dpkg --purge in the container: unattended it keeps the CRM data; a
# preseeded yes deletes outpost-hq's.
[ "$(val purge.rc)" = 0 ] && [ "$(val purge-hq.rc)" = 0 ] || die "dpkg --purge failed: $(show)"
[ "$(val purge-state)" = kept ] || die "an unattended dpkg --purge outpost deleted /var/lib/outpost"
[ "$(val purge-conf)" = removed ] || die "dpkg --purge outpost left /etc/outpost/outpostd.conf"
[ "$(val purge-hq-state)" = deleted ] || die "a preseeded yes did not delete /var/lib/outpost-hq"
echo "under systemd: outpostd.service active, a refused reload failed, exit 2 not restarted, priorities kept, purge asked"
pass
