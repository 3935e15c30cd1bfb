#!/bin/bash
# The systemd units in systemd/: `systemd-analyze security --offline=true`
# rates every service at 2.0 or lower (the figures are printed), and
# `systemd-analyze verify` finds nothing to say about any unit.
#
# verify checks that each Exec command exists and is executable and that
# each man: Documentation= link resolves, so it runs against a temporary
# root (--root) laid out as the package installs it: the built outpostd and
# outpost, the backup script, the man pages (MANPATH), the host's
# systemd targets (and no kill program: a minimal install has none), and the built outpost-hq, so its unit's
# ExecStart names the real binary. verify exits 0 even for an unknown key, so any output at all
# fails the test. Skips when systemd-analyze is missing (CI's base image).
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
SRC=$(cd "$TESTS_DIR/.." && pwd)
UNITS="$SRC/systemd"
MAX_EXPOSURE=2.0
T=$(mktmp)

# exposure UNIT-FILE: prints the overall exposure figure (e.g. 1.1);
# warnings about the unit's syntax fail the test.
exposure() {
    local out err
    out="$T/security.out" err="$T/security.err"
    systemd-analyze security --offline=true --no-pager "$1" >"$out" 2>"$err" ||
        die "systemd-analyze security $1 failed: $(cat "$err")"
    [ ! -s "$err" ] || die "systemd-analyze security $1 complained: $(cat "$err")"
    sed -n 's/^→ Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p' "$out" | tail -n1
}

# above A B: true when the decimal figure A is above B.
above() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'
}

# The check itself must be able to fail: an unhardened unit rates far above
# the limit, and its figure is parsed.
printf '[Service]\nExecStart=/usr/sbin/outpostd\n' >"$T/bare.service"
bare=$(exposure "$T/bare.service")
[ -n "$bare" ] || die "no exposure figure parsed for an unhardened unit"
above "$bare" "$MAX_EXPOSURE" ||
    die "an unhardened unit rated $bare, expected above $MAX_EXPOSURE: the check cannot fail"

for unit in outpostd.service outpost-hq.service outpost-backup.service; do
    fig=$(exposure "$UNITS/$unit")
    [ -n "$fig" ] || die "no exposure figure for $unit: $(cat "$T/security.out")"
    echo "systemd-analyze security: $unit exposure $fig (limit $MAX_EXPOSURE)"
    if above "$fig" "$MAX_EXPOSURE"; then
        grep '✗' "$T/security.out" >&2
        die "$unit rates $fig, above $MAX_EXPOSURE (the ✗ lines above are what it lacks)"
    fi
done

# What the issue asks of the daemon units, beyond the figure.
for unit in outpostd.service outpost-hq.service; do
    for want in Type=notify WatchdogSec=30 Restart=on-failure User=outpost \
        NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
        PrivateDevices=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
        ProtectKernelLogs=yes 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
        RestrictNamespaces=yes SystemCallFilter=@system-service CapabilityBoundingSet= \
        MemoryDenyWriteExecute=yes UMask=0077; do
        grep -qxF "$want" "$UNITS/$unit" || die "$unit lacks the line '$want'"
    done
done
grep -qx 'StateDirectory=outpost.*' "$UNITS/outpostd.service" || die "outpostd.service: no StateDirectory"
# Reload is the daemon's own request (SIGHUP by kill(2), then the outcome),
# not /bin/kill, which a minimal install lacks (procps is not a dependency);
# the outcome is written to the RuntimeDirectory, which ExecReload shares.
grep -qxF "ExecReload=/usr/sbin/outpostd --reload \$MAINPID" "$UNITS/outpostd.service" ||
    die "outpostd.service: reload is not outpostd --reload"
grep -qxF "ExecReload=/usr/sbin/outpost-hq reload \$MAINPID" "$UNITS/outpost-hq.service" ||
    die "outpost-hq.service: reload is not outpost-hq reload"
grep -qxF "RuntimeDirectory=outpostd" "$UNITS/outpostd.service" || die "outpostd.service: no RuntimeDirectory"
grep -qxF "RuntimeDirectory=outpost-hq" "$UNITS/outpost-hq.service" || die "outpost-hq.service: no RuntimeDirectory"
for unit in "$UNITS"/*.service; do
    ! grep -q '/bin/kill\|ExecReload=kill' "$unit" || die "$unit still names kill(1)"
    grep -qxF "RestartPreventExitStatus=2" "$unit" || [ "${unit##*/}" = outpost-backup.service ] ||
        die "$unit: a bad configuration (exit 2) would be restarted"
done
for want in Persistent=true 'RandomizedDelaySec=.*' 'OnCalendar=.*'; do
    grep -qx "$want" "$UNITS/outpost-backup.timer" || die "outpost-backup.timer lacks '$want'"
done
cal=$(sed -n 's/^OnCalendar=//p' "$UNITS/outpost-backup.timer")
systemd-analyze calendar --iterations=2 "$cal" >"$T/cal" 2>&1 ||
    die "the timer's OnCalendar=$cal does not parse: $(cat "$T/cal")"

# verify, in a root laid out like the installed package.
R="$T/root"
mkdir -p "$R/usr/sbin" "$R/usr/bin" "$R/bin" "$R/usr/lib/outpost" "$R/lib/systemd/system" \
    "$R/usr/share/man/man1" "$R/usr/share/man/man8" || die "cannot lay out $R"
# No kill program in the root: verify fails if a unit still needs one.
for pair in "$OUTPOSTD:usr/sbin/outpostd" "$OUTPOST:usr/bin/outpost" \
    "$UNITS/outpost-backup:usr/lib/outpost/outpost-backup" \
    "$SRC/packaging/debian/outpost.1:usr/share/man/man1/outpost.1" \
    "$SRC/packaging/debian/outpostd.8:usr/share/man/man8/outpostd.8" \
    "$SRC/packaging/debian/outpost-hq.8:usr/share/man/man8/outpost-hq.8"; do
    cp "${pair%%:*}" "$R/${pair#*:}" || die "cannot copy ${pair%%:*} to $R"
done
cp "$OUTPOST_HQ" "$R/usr/sbin/outpost-hq" || die "cannot copy $OUTPOST_HQ to $R"
chmod 0755 "$R/usr/sbin/outpost-hq" "$R/usr/lib/outpost/outpost-backup"
# The targets the units order against (sysinit.target, network.target, ...).
targets=0
for d in /lib/systemd/system /usr/lib/systemd/system; do
    for t in "$d"/*.target; do
        [ -e "$t" ] || continue
        cp -n "$t" "$R/lib/systemd/system/" && targets=$((targets + 1))
    done
done
[ "$targets" -gt 0 ] || skip_never "no systemd targets on this machine to verify against"
cp "$UNITS"/*.service "$UNITS"/*.timer "$R/lib/systemd/system/" || die "cannot copy the units"

# The verify check must be able to fail too: a unit with an unknown key.
printf '[Service]\nExecStart=/usr/sbin/outpostd\nNoSuchKey=1\n' >"$R/lib/systemd/system/bad.service"
MANPATH="$R/usr/share/man" systemd-analyze verify --root="$R" bad.service >"$T/verify" 2>&1 || :
grep -q NoSuchKey "$T/verify" || die "verify did not report an unknown key: $(cat "$T/verify")"
rm -f "$R/lib/systemd/system/bad.service"

for unit in outpostd.service outpost-hq.service outpost-backup.service outpost-backup.timer; do
    rc=0
    MANPATH="$R/usr/share/man" systemd-analyze verify --root="$R" "$unit" >"$T/verify" 2>&1 || rc=$?
    if [ "$rc" != 0 ] || [ -s "$T/verify" ]; then
        die "systemd-analyze verify $unit: exit $rc: $(cat "$T/verify")"
    fi
    echo "systemd-analyze verify: $unit clean"
done
pass
