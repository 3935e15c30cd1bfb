#!/bin/bash
# The daemons and root (docs/OUTPOSTD.md, docs/HQ.md): outpostd and
# `outpost-hq serve` started as root without --allow-root or
# OUTPOST_ALLOW_ROOT=1 exit 2 with a message saying what to do, and create
# nothing; with either they run. And whatever umask they were started with
# (022 here, the usual one), the files they and the CLIs create are their
# user's alone: hq.db, the credentials file, the node's database, its WAL
# and the spools are 0600 / 0700.
set -u
. "$TESTS_DIR/cli/lib.sh"
[ -n "${OUTPOST_HQ:-}" ] && [ -x "$OUTPOST_HQ" ] || skip "outpost-hq is not built"
need curl
umask 022
node_dir
init_node EU-DE

# mode FILE: its permission bits in octal ("600").
mode() { stat -c %a "$1"; }
expect_mode() {
    [ -e "$2" ] || die "$2 does not exist"
    [ "$(mode "$2")" = "$1" ] || die "$2 is mode $(mode "$2"), want $1"
}

# ---- refusing root -----------------------------------------------------
if [ "$(id -u)" = 0 ]; then
    ls -A "$T" >"$T.before"
    expect_exit 2 env -u OUTPOST_ALLOW_ROOT "$OUTPOSTD" --db "$DB" --listen 127.0.0.1:0
    expect_contains "$ERR" "refusing to run as root"
    expect_contains "$ERR" "--allow-root"
    expect_contains "$ERR" "OUTPOST_ALLOW_ROOT=1"
    expect_exit 2 env OUTPOST_ALLOW_ROOT=0 "$OUTPOSTD" --db "$DB" --listen 127.0.0.1:0
    expect_contains "$ERR" "refusing to run as root"
    expect_exit 2 env -u OUTPOST_ALLOW_ROOT "$OUTPOST_HQ" serve --db "$T/hq.db" \
        --spool_dir "$T/hq-uploads" --listen 127.0.0.1:0
    expect_contains "$ERR" "refusing to run as root"
    ls -A "$T" >"$T.after"
    cmp -s "$T.before" "$T.after" || die "a refused start created files: $(diff "$T.before" "$T.after")"
    rm -f "$T.before" "$T.after"
    # --version and --help need no override: they touch nothing.
    expect_exit 0 env -u OUTPOST_ALLOW_ROOT "$OUTPOSTD" --version
    expect_exit 0 env -u OUTPOST_ALLOW_ROOT "$OUTPOSTD" --help
    expect_contains "$OUT" "--allow-root"

    # The flag alone is enough (here with the variable unset).
    env -u OUTPOST_ALLOW_ROOT "$OUTPOSTD" --db "$DB" --listen 127.0.0.1:0 --allow-root \
        2>"$T/flag.log" &
    pid=$!
    track "$pid"
    wait_line "$T/flag.log" 's/.*(port \([0-9]*\)).*/\1/p' "$pid" outpostd >/dev/null || exit 1
    kill -TERM "$pid"
    wait "$pid" || die "outpostd --allow-root did not stop cleanly: $(cat "$T/flag.log")"
    env -u OUTPOST_ALLOW_ROOT "$OUTPOST_HQ" --allow-root serve --db "$T/flag-hq.db" \
        --spool_dir "$T/flag-uploads" --listen 127.0.0.1:0 2>"$T/flag-hq.log" &
    pid=$!
    track "$pid"
    wait_line "$T/flag-hq.log" 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "$pid" outpost-hq >/dev/null || exit 1
    kill -TERM "$pid"
    wait "$pid" || die "outpost-hq --allow-root did not stop cleanly: $(cat "$T/flag-hq.log")"
    expect_mode 600 "$T/flag-hq.db"
    expect_mode 700 "$T/flag-uploads"
else
    echo "not root: the refusal is not tested here" >&2
fi

# ---- modes of what gets created ----------------------------------------
# hq.db created by `outpost-hq serve` (it holds every node's key)
"$OUTPOST_HQ" serve --db "$T/hq.db" --spool_dir "$T/hq-uploads" --listen 127.0.0.1:0 \
    2>"$T/hq.log" &
HQ_PID=$!
track "$HQ_PID"
HQ_PORT=$(wait_line "$T/hq.log" 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$HQ_PID" outpost-hq) || exit 1
expect_mode 600 "$T/hq.db"
expect_mode 700 "$T/hq-uploads"
for f in "$T"/hq.db-*; do
    [ -e "$f" ] && expect_mode 600 "$f"
done
kill -TERM "$HQ_PID"
wait "$HQ_PID" || die "outpost-hq did not stop cleanly: $(cat "$T/hq.log")"

# hq.db created by `outpost-hq node add`, and the credentials file
expect_exit 0 "$OUTPOST_HQ" --db "$T/hq2.db" node add branch-1 --region EU-DE --out "$T/cred.json"
expect_mode 600 "$T/hq2.db"
expect_mode 600 "$T/cred.json"

# the node's database (outpost init), and what outpostd adds beside it
expect_mode 600 "$DB"
start_outpostd --hq_credentials "$T/cred.json" --hq_url "http://127.0.0.1:$HQ_PORT"
for _ in $(seq 1 50); do
    [ -d "$T/spool" ] && break
    sleep 0.1
done
for f in "$DB"-*; do
    [ -e "$f" ] && expect_mode 600 "$f"
done
expect_mode 700 "$T/spool"
stop_outpostd
pass
