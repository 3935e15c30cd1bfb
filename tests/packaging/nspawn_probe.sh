#!/bin/sh
# Runs inside the throwaway root that tests/packaging/test_deb.sh boots
# under systemd-nspawn, as a oneshot service once systemd is up (it is not
# a test of its own). It configures the installed packages as dpkg would
# on a real system, then drives outpostd.service through systemd and
# writes what it saw to /results (a directory of the host's test), one
# file per observation, and powers the container off.
set -u
R=/results
exec >"$R/probe.log" 2>&1
set -x

# The packages' maintainer scripts, for real: the user, the state
# directory, the TLS certificate, the units enabled.
dpkg --force-depends --configure -a
echo $? >"$R/configure.rc"
getent passwd outpost >"$R/user" || :
systemctl is-enabled outpostd.service >"$R/enabled" 2>&1 || :
systemctl is-enabled outpost-hq.service >"$R/hq-enabled" 2>&1 || :

# Before `outpost init` the unit is skipped by its condition, not failed.
systemctl start outpostd.service
systemctl show -p ActiveState -p ConditionResult outpostd.service >"$R/before-init"

runuser -u outpost -- outpost init --region EU-DE
echo $? >"$R/init.rc"
systemctl start outpostd.service
echo $? >"$R/start.rc"
systemctl is-active outpostd.service >"$R/active" 2>&1 || :

# A reload with a refused file fails and the daemon keeps running.
conf=/etc/outpost/outpostd.conf
cp "$conf" "$R/conf.orig"
echo 'log_level = loud' >>"$conf"
systemctl reload outpostd.service
echo $? >"$R/reload-bad.rc"
systemctl is-active outpostd.service >"$R/active-after-bad-reload" 2>&1 || :
cp "$R/conf.orig" "$conf"
systemctl reload outpostd.service
echo $? >"$R/reload-good.rc"

# A bad listen address: exit 2, and systemd does not restart it.
echo 'listen = not-an-address' >>"$conf"
systemctl restart outpostd.service
echo $? >"$R/restart-bad.rc"
sleep 7 # RestartSec=5: a restart would have happened by now
systemctl show -p ActiveState -p NRestarts -p ExecMainStatus outpostd.service >"$R/bad-listen"
cp "$R/conf.orig" "$conf"
systemctl reset-failed outpostd.service

# A database the daemon's user cannot write (made by root): exit 2 as
# well, not restarted, and the pre-start step did not fail.
chown root:root /var/lib/outpost/node.db
systemctl start outpostd.service
echo $? >"$R/start-unwritable.rc"
sleep 7
systemctl show -p ActiveState -p NRestarts -p ExecMainStatus -p ExecMainCode outpostd.service \
    >"$R/unwritable"
chown outpost:outpost /var/lib/outpost/node.db

# What reached the journal, with each line's priority.
journalctl --no-pager -u outpostd.service -o json \
    --output-fields=PRIORITY,MESSAGE >"$R/journal.json" 2>&1 || :
journalctl --no-pager -u outpostd.service -p err -o cat >"$R/journal-err" 2>&1 || :
journalctl --no-pager -u outpostd.service -o cat >"$R/journal-all" 2>&1 || :

# Purge, for real. Unattended, debconf's default: /var/lib/outpost stays
# and the conffile goes. A preseeded yes for outpost-hq: its state goes.
DEBIAN_FRONTEND=noninteractive dpkg --purge outpost
echo $? >"$R/purge.rc"
if [ -f /var/lib/outpost/node.db ]; then echo kept; else echo deleted; fi >"$R/purge-state"
if [ -e /etc/outpost/outpostd.conf ]; then echo left; else echo removed; fi >"$R/purge-conf"
mkdir -p /var/lib/outpost-hq && echo hq >/var/lib/outpost-hq/hq.db
echo 'outpost-hq outpost-hq/purge-data boolean true' | debconf-set-selections
DEBIAN_FRONTEND=noninteractive dpkg --purge outpost-hq
echo $? >"$R/purge-hq.rc"
if [ -e /var/lib/outpost-hq ]; then echo kept; else echo deleted; fi >"$R/purge-hq-state"
echo done >"$R/done"
systemctl poweroff
