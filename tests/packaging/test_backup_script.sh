#!/bin/bash
# systemd/outpost-backup, the script the backup timer and outpostd's
# ExecStartPre run: the nightly backup is a checked copy named by UTC time,
# rotation keeps the newest N node-*.db files and nothing else, a failed
# backup deletes nothing, and --before-upgrade copies the database once per
# installed version (before outpostd would migrate it); under the journal
# each line carries its priority and no second name; a config outpostd
# refuses, or a database the daemon's user cannot write, is left to
# outpostd's own exit status 2 at a start (which the unit does not retry),
# and outpostd does exit 2 for it without touching the database.
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
SCRIPT="$TESTS_DIR/../systemd/outpost-backup"
T=$(mktmp)
export OUTPOST OUTPOSTD
export OUTPOST_DB="$T/node.db" OUTPOST_BACKUP_DIR="$T/backups" OUTPOST_STATE_DIR="$T"
export OUTPOST_CONFIG="$T/none.conf"
B="$T/backups"

# Nothing to back up before `outpost init`: success, nothing written.
expect_exit 0 sh "$SCRIPT"
expect_contains "$ERR" "nothing to back up"
[ ! -e "$B" ] || die "a backup directory appeared without a database"

"$OUTPOST" init --region EU-DE >/dev/null || die "init failed"
"$OUTPOST" contact add --given_name Zoë --family_name Ørsted >/dev/null || die "contact add failed"

# Older backups (as if from earlier nights), plus files rotation must spare.
mkdir -p "$B"
for d in 20260101 20260102 20260103 20260104 20260105; do
    cp "$OUTPOST_DB" "$B/node-$d-023000.db"
done
touch "$B/keep-me.db" "$B/node-manual.db" "$B/pre-upgrade-0.0.9-to-0.1.0-20260101-000000.db"

export OUTPOST_BACKUP_KEEP=3
expect_exit 0 sh "$SCRIPT"
expect_contains "$ERR" "check: ok"
expect_contains "$ERR" "deleted 3"
mapfile -t nightly < <(cd "$B" && ls node-[0-9]*-[0-9]*.db)
[ "${#nightly[@]}" = 3 ] || die "expected 3 nightly backups, got ${#nightly[@]}: ${nightly[*]}"
[ "${nightly[0]}" = node-20260104-023000.db ] && [ "${nightly[1]}" = node-20260105-023000.db ] ||
    die "rotation kept the wrong ones: ${nightly[*]}"
[[ "${nightly[2]}" =~ ^node-[0-9]{8}-[0-9]{6}\.db$ ]] || die "new backup misnamed: ${nightly[2]}"
newest="$B/${nightly[2]}"
"$OUTPOST" check --db "$newest" >/dev/null || die "the new backup does not check clean"
"$OUTPOST" contact list --db "$newest" | grep -q Ørsted || die "the new backup lacks the contact"
for f in keep-me.db node-manual.db pre-upgrade-0.0.9-to-0.1.0-20260101-000000.db; do
    [ -e "$B/$f" ] || die "rotation deleted $f, which is not a nightly backup"
done
mode=$(stat -c %a "$newest")
[ "$mode" = 600 ] || die "backup mode is $mode, expected 600 (it holds personal data)"

# A failed backup (the database is not a database) deletes nothing.
before=$(ls "$B" | sort)
mv "$OUTPOST_DB" "$T/real.db"
rm -f "$T/node.db-wal" "$T/node.db-shm"
printf 'not a database at all, just text that is long enough\n%.0s' {1..200} >"$OUTPOST_DB"
OUTPOST_BACKUP_KEEP=1 expect_exit 1 sh "$SCRIPT"
expect_contains "$ERR" "older backups kept"
after=$(ls "$B" | sort)
[ "$before" = "$after" ] || die "a failed backup changed the backups: before [$before] after [$after]"
mv -f "$T/real.db" "$OUTPOST_DB"

# Bad settings are refused before anything happens.
OUTPOST_BACKUP_KEEP=0 expect_exit 1 sh "$SCRIPT"
expect_contains "$ERR" "OUTPOST_BACKUP_KEEP='0'"
OUTPOST_BACKUP_KEEP=abc expect_exit 1 sh "$SCRIPT"
expect_contains "$ERR" "whole number"
expect_exit 2 sh "$SCRIPT" --bogus

# --before-upgrade: a copy on the first start and on a version change,
# none when the version is the one that last started.
version=$("$OUTPOST" --version)
version=${version#outpost }
expect_exit 0 sh "$SCRIPT" --before-upgrade
expect_contains "$ERR" "before outpostd migrates it"
ls "$B"/pre-upgrade-none-to-"$version"-*.db >/dev/null 2>&1 ||
    die "no pre-upgrade-none-to-$version copy: $(ls "$B")"
[ "$(cat "$T/package-version")" = "$version" ] || die "version not noted: $(cat "$T/package-version")"
n1=$(ls "$B" | wc -l)
expect_exit 0 sh "$SCRIPT" --before-upgrade
[ "$(ls "$B" | wc -l)" = "$n1" ] || die "a start without an upgrade made a copy: $(ls "$B")"
echo 0.0.9 >"$T/package-version"
expect_exit 0 sh "$SCRIPT" --before-upgrade
ls "$B"/pre-upgrade-0.0.9-to-"$version"-*.db >/dev/null 2>&1 ||
    die "no pre-upgrade-0.0.9-to-$version copy after a version change: $(ls "$B")"

# A database from a newer Outpost (a downgrade): no copy, outpostd is not
# started, the message says why at err, and the noted version stays; the
# step itself succeeds, so systemd does not retry it: outpostd refuses the
# database with exit status 2, which the unit does not restart.
if command -v sqlite3 >/dev/null; then
    "$OUTPOST" backup --db "$OUTPOST_DB" "$T/newer.db" >/dev/null 2>&1 || die "backup for newer.db"
    sqlite3 "$T/newer.db" 'PRAGMA user_version = 99' || die "cannot set user_version"
    echo 9.9.9 >"$T/package-version"
    n1=$(ls "$B" | wc -l)
    JS=$(stat -L -c "%d:%i" "$ERR")
    OUTPOST_DB="$T/newer.db" JOURNAL_STREAM=$JS expect_exit 0 sh "$SCRIPT" --before-upgrade
    grep -q '^<3>.*newer than this build' "$ERR" ||
        die "the pre-start step does not say at err that the database is newer: $(cat "$ERR")"
    expect_contains "$ERR" "outpostd is not started"
    [ "$(cat "$T/package-version")" = 9.9.9 ] || die "the version was noted after a failed copy"
    [ "$(ls "$B" | wc -l)" = "$n1" ] || die "a failed pre-upgrade copy left a file: $(ls "$B")"
fi

# The database path comes from outpostd's config when OUTPOST_DB is unset.
mkdir "$T/elsewhere"
cp "$OUTPOST_DB" "$T/elsewhere/moved.db"
printf 'db = %s\n' "$T/elsewhere/moved.db" >"$T/outpostd.conf"
OUTPOST_DB='' OUTPOST_CONFIG="$T/outpostd.conf" OUTPOST_BACKUP_KEEP=14 \
    expect_exit 0 sh "$SCRIPT"
expect_contains "$ERR" "backed up $T/elsewhere/moved.db"

# Under systemd stderr is the journal's stream, named in JOURNAL_STREAM:
# then each line starts with its priority and carries no name of its own.
# ERR keeps its inode across expect_exit's redirection, so it can stand in.
: >"$ERR"
JS=$(stat -L -c '%d:%i' "$ERR")
JOURNAL_STREAM=$JS OUTPOST_BACKUP_KEEP=14 expect_exit 0 sh "$SCRIPT"
grep -q '^<5>backed up ' "$ERR" || die "the backup's line is not at notice: $(cat "$ERR")"
expect_not_contains "$ERR" "outpost-backup:"
JOURNAL_STREAM=$JS OUTPOST_BACKUP_KEEP=0 expect_exit 1 sh "$SCRIPT"
grep -q "^<3>OUTPOST_BACKUP_KEEP='0'" "$ERR" || die "a failure is not at err: $(cat "$ERR")"
# The variable inherited by a process whose stderr is elsewhere: names.
JOURNAL_STREAM=1:1 OUTPOST_BACKUP_KEEP=0 expect_exit 1 sh "$SCRIPT"
grep -q "^outpost-backup: OUTPOST_BACKUP_KEEP='0'" "$ERR" || die "no name off the journal: $(cat "$ERR")"

# A configuration outpostd refuses, at the unit's pre-start step: no copy,
# the version is not noted, and the step leaves the refusal to outpostd's
# own start (exit 2, which the unit does not retry) instead of failing
# itself (a failed pre-start step is retried like a crash).
printf 'listen = not-an-address\n' >"$T/bad.conf"
echo 0.0.8 >"$T/package-version"
n1=$(ls "$B" | wc -l)
: >"$ERR"
JS=$(stat -L -c '%d:%i' "$ERR")
OUTPOST_DB='' OUTPOST_CONFIG="$T/bad.conf" JOURNAL_STREAM=$JS \
    expect_exit 0 sh "$SCRIPT" --before-upgrade
expect_contains "$ERR" "listen"
grep -q "^<3>$T/bad.conf is refused by outpostd" "$ERR" || die "the refusal is not at err: $(cat "$ERR")"
[ "$(ls "$B" | wc -l)" = "$n1" ] || die "a copy was made under a refused config: $(ls "$B")"
[ "$(cat "$T/package-version")" = 0.0.8 ] || die "the version was noted under a refused config"
"$OUTPOSTD" --config "$T/bad.conf" --print-config >/dev/null 2>&1
[ $? = 2 ] || die "outpostd does not exit 2 for the refused config"
# The nightly job has no daemon to leave it to: it fails.
OUTPOST_DB='' OUTPOST_CONFIG="$T/bad.conf" expect_exit 1 sh "$SCRIPT"
expect_contains "$ERR" "cannot read the database path from $T/bad.conf"
# A database the daemon's user cannot write (made by root with `outpost
# init`): the pre-start step says why at err, makes no copy, notes no
# version and succeeds, leaving the refusal to outpostd, which exits 2
# (RestartPreventExitStatus=2: not restarted; a failed pre-start step
# would be) naming the file and the fix, and changes nothing. As root the
# two run as nobody, for whom a root-owned 0644 file is read-only.
R="$T/rodb"
: >"$T/empty.conf"
mkdir "$R"
cp "$OUTPOST_DB" "$R/node.db"
cp "$R/node.db" "$T/rodb.orig"
if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || die "setpriv (util-linux) is missing"
    chmod 0711 "$LIB_ROOT" "$T" && chmod 0755 "$R" && chmod 0644 "$R/node.db" || die "chmod"
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
    who=$(id -un 65534)
else
    chmod a-w "$R/node.db" "$R" || die "chmod"
    as_user() { "$@"; }
    who=$(id -un)
fi
echo 0.0.7 >"$T/package-version"
n1=$(ls "$B" | wc -l)
: >"$ERR"
JS=$(stat -L -c '%d:%i' "$ERR")
OUTPOST_DB="$R/node.db" JOURNAL_STREAM=$JS expect_exit 0 as_user sh "$SCRIPT" --before-upgrade
grep -q "^<3>$R/node.db is not writable by $who, so outpostd cannot use it; fix: chown -R" "$ERR" ||
    die "the pre-start step does not say at err that the database is not writable: $(cat "$ERR")"
expect_contains "$ERR" "outpostd will not start until it is fixed"
[ "$(ls "$B" | wc -l)" = "$n1" ] || die "a copy was made of an unwritable database: $(ls "$B")"
[ "$(cat "$T/package-version")" = 0.0.7 ] || die "the version was noted for an unwritable database"
expect_exit 2 as_user "$OUTPOSTD" --config "$T/empty.conf" --db "$R/node.db" --listen 127.0.0.1:0 --workers 1
expect_contains "$ERR" "$R/node.db is not writable by $who, so outpostd cannot use database $R/node.db"
expect_contains "$ERR" "fix: chown -R $who: $R"
cmp -s "$R/node.db" "$T/rodb.orig" || die "outpostd changed the database it refused"
[ ! -e "$R/node.db-wal" ] && [ ! -e "$R/node.db-shm" ] || die "outpostd left a -wal or -shm: $(ls "$R")"
# The directory alone read-only: SQLite could not make its -wal there.
if [ "$(id -u)" = 0 ]; then
    chmod 0666 "$R/node.db" || die "chmod"
else
    chmod u+w "$R/node.db" || die "chmod"
fi
expect_exit 2 as_user "$OUTPOSTD" --config "$T/empty.conf" --db "$R/node.db" --listen 127.0.0.1:0 --workers 1
expect_contains "$ERR" "$R is not writable by $who"
pass
