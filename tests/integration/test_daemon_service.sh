#!/bin/bash
# Both daemons as systemd runs them (docs/OUTPOSTD.md "Logging" and
# "Reloading", docs/HQ.md, docs/INSTALL.md):
# - with stderr on the journal's stream ($JOURNAL_STREAM names it) each
#   line carries its priority and no second name; elsewhere the name, and
#   with log_timestamps the UTC time first;
# - a bad listen address is a configuration error: exit 2 (the units'
#   RestartPreventExitStatus), before anything is opened;
# - the units' ExecReload (`outpostd --reload PID`, `outpost-hq reload
#   PID`) exits 0 when the daemon took the file and 1 with its reason when
#   it refused it, while the daemon keeps serving with the old settings;
# - a schema migration at start is logged with both versions.
set -u
. "$TESTS_DIR/cli/lib.sh"
[ -n "${OUTPOST_HQ:-}" ] && [ -x "$OUTPOST_HQ" ] || skip "outpost-hq is not built"
need curl
node_dir
init_node EU-DE

# ---- a bad listen address: exit 2, nothing created ----------------------
for bad in not-an-address 127.0.0.1 127.0.0.1:70000 '[::1]8443' host.example:8443; do
    expect_exit 2 "$OUTPOSTD" --db "$DB" --listen "$bad"
    expect_contains "$ERR" "<3>outpostd: listen: bad listen address \"$bad\""
    expect_exit 2 "$OUTPOST_HQ" serve --db "$T/hq.db" --spool_dir "$T/hq-uploads" --listen "$bad"
    expect_contains "$ERR" "listen: bad listen address \"$bad\""
done
[ ! -e "$T/hq.db" ] || die "a refused outpost-hq start created its store"
printf 'listen = not-an-address\n' >"$T/bad-listen.conf"
expect_exit 2 "$OUTPOSTD" --config "$T/bad-listen.conf" --print-config
expect_contains "$ERR" "bad listen address \"not-an-address\""

# ---- the journal's stream: one name (the journal's), priorities ---------
: >"$T/journal.log"
JS=$(stat -L -c '%d:%i' "$T/journal.log")
JOURNAL_STREAM=$JS "$OUTPOSTD" --db "$DB" --listen 127.0.0.1:0 --log_timestamps true \
    2>>"$T/journal.log" &
pid=$!
track "$pid"
wait_grep "$T/journal.log" "(port" 100
kill -TERM "$pid"
wait "$pid" || die "outpostd did not stop cleanly: $(cat "$T/journal.log")"
grep -q '^<5>serving the API on http://127.0.0.1:' "$T/journal.log" ||
    die "the start line is not '<5>serving ...' on the journal: $(cat "$T/journal.log")"
grep -q '^<5>stopped$' "$T/journal.log" || die "no '<5>stopped': $(cat "$T/journal.log")"
! grep -q 'outpostd:' "$T/journal.log" || die "the name twice on the journal: $(cat "$T/journal.log")"
! grep -qv '^<[3-7]>' "$T/journal.log" || die "a line without a priority: $(cat "$T/journal.log")"

# The same variable inherited with stderr elsewhere (a file): names, and
# with log_timestamps each line starts with its UTC time.
JOURNAL_STREAM=$JS "$OUTPOSTD" --db "$DB" --listen 127.0.0.1:0 --log_timestamps true \
    2>"$T/file.log" &
pid=$!
track "$pid"
wait_grep "$T/file.log" "(port" 100
kill -TERM "$pid"
wait "$pid" || die "outpostd did not stop cleanly: $(cat "$T/file.log")"
stamp='[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{3\}Z'
grep -q "^$stamp <5>outpostd: serving the API on " "$T/file.log" ||
    die "no time-stamped start line: $(cat "$T/file.log")"
! grep -qv "^$stamp <[3-7]>outpostd: " "$T/file.log" ||
    die "a line without its time: $(grep -v "^$stamp" "$T/file.log" | head -n 3)"
day=$(date -u +%Y-%m-%d)
grep -q "^$day" "$T/file.log" || grep -q "^$(date -u -d '1 minute ago' +%Y-%m-%d)" "$T/file.log" ||
    die "the time is not today's UTC date ($day): $(head -n 1 "$T/file.log")"

# ---- reload through the units' ExecReload -------------------------------
export RUNTIME_DIRECTORY="$T/run"
mkdir -p "$RUNTIME_DIRECTORY"
printf 'db = %s\nlisten = 127.0.0.1:0\n' "$DB" >"$T/node.conf"
"$OUTPOSTD" --config "$T/node.conf" 2>"$T/reload.log" &
pid=$!
track "$pid"
wait_grep "$T/reload.log" "(port" 100
PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/reload.log")
expect_exit 0 "$OUTPOSTD" --reload "$pid"
expect_contains "$T/reload.log" "<5>outpostd: configuration reloaded"
grep -q "^$pid 1 ok$" "$RUNTIME_DIRECTORY/reload-result" ||
    die "reload-result after a good reload: $(cat "$RUNTIME_DIRECTORY/reload-result")"
printf 'db = %s\nlisten = 127.0.0.1:0\nworkers = many\n' "$DB" >"$T/node.conf"
expect_exit 1 "$OUTPOSTD" --reload "$pid"
expect_contains "$ERR" "<3>outpostd: reload refused: configuration refused, the running one stays: $T/node.conf:3: workers"
expect_contains "$T/reload.log" "<3>outpostd: reload refused, keeping the running config"
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || die "outpostd stopped serving after a refused reload"
# A refused region policy fails the reload too.
printf 'db = %s\nlisten = 127.0.0.1:0\n' "$DB" >"$T/node.conf"
cp "$T/policy-override.yaml" "$T/override.saved" 2>/dev/null || :
printf 'this: is: not a policy\n' >"$T/policy-override.yaml"
expect_exit 1 "$OUTPOSTD" --reload "$pid"
expect_contains "$ERR" "region policy refused, the running one stays"
rm -f "$T/policy-override.yaml"
[ ! -e "$T/override.saved" ] || mv "$T/override.saved" "$T/policy-override.yaml"
expect_exit 0 "$OUTPOSTD" --reload "$pid"
expect_exit 2 "$OUTPOSTD" --reload not-a-pid
expect_contains "$ERR" "'not-a-pid' is not a process id"
expect_exit 2 "$OUTPOSTD" --reload
kill -TERM "$pid"
wait "$pid" || die "outpostd did not stop cleanly: $(tail -n 5 "$T/reload.log")"
# Gone: the request says so and fails.
expect_exit 1 "$OUTPOSTD" --reload "$pid"
expect_contains "$ERR" "cannot signal process $pid"

printf 'db = %s\nspool_dir = %s\nlisten = 127.0.0.1:0\n' "$T/hq.db" "$T/hq-uploads" >"$T/hq.conf"
"$OUTPOST_HQ" --config "$T/hq.conf" serve 2>"$T/hq.log" &
hpid=$!
track "$hpid"
wait_line "$T/hq.log" 's|.*listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$hpid" outpost-hq >/dev/null ||
    exit 1
expect_exit 0 "$OUTPOST_HQ" reload "$hpid"
printf 'max_uploads = lots\n' >>"$T/hq.conf"
expect_exit 1 "$OUTPOST_HQ" reload "$hpid"
expect_contains "$ERR" "reload refused: configuration refused, the running one stays: $T/hq.conf:4: max_uploads"
kill -0 "$hpid" || die "outpost-hq stopped after a refused reload"
expect_exit 2 "$OUTPOST_HQ" reload
kill -TERM "$hpid"
wait "$hpid" || die "outpost-hq did not stop cleanly: $(tail -n 5 "$T/hq.log")"
unset RUNTIME_DIRECTORY

# ---- a migration at start is logged -------------------------------------
# An empty file is an SQLite database at schema version 0: outpostd
# migrates it to the latest and says so, from which version to which.
: >"$T/empty.db"
"$OUTPOSTD" --db "$T/empty.db" --listen 127.0.0.1:0 >/dev/null 2>"$T/migrate.log" || :
latest=$(sed -n 's/.*schema migrated from version 0 to \([0-9]*\) .*/\1/p' "$T/migrate.log")
[ -n "$latest" ] && [ "$latest" -gt 0 ] || die "no migration line: $(cat "$T/migrate.log")"
expect_contains "$T/migrate.log" "<5>outpostd: database $T/empty.db: migrating the schema from version 0 to $latest"
expect_contains "$T/migrate.log" "($latest migrations, "
# Already at the latest: no migration line.
start_outpostd
stop_outpostd
expect_not_contains "$DAEMON_LOG" "migrat"
pass
