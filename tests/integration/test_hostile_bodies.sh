#!/bin/bash
# Unauthenticated large bodies must not cost memory (docs/HTTP_SERVER.md,
# "The gate"): 60 clients PATCH 4 MiB chunks at outpost-hq and 100 POST
# 1 MiB bodies at outpostd without credentials, pushing their bodies
# whatever the answer (hostile_bodies.py). Each daemon's resident size
# (VmRSS) may rise by at most 24 MiB at the peak and must be within 16 MiB
# of where it started once they left; every client gets a 401. Then the
# same at outpost-hq with a node's token, so that the bodies are read: the
# peak stays within the budget of buffered bytes and the memory goes back.
# A smaller tests/bench/hostile_bodies.
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
need python3
T=$(mktmp)
ATTACK="$TESTS_DIR/integration/hostile_bodies.py"

# attack NAME EXPECT ARGS...: runs the attack, dies unless within bounds
# and every answer is EXPECT (a status code list, e.g. "401:60").
attack() {
    local name=$1 expect=$2
    shift 2
    local out
    out=$(python3 "$ATTACK" "$@") || die "$name: memory not bounded: $out"
    echo "$name: baseline/peak/after KiB, answered, statuses: $out"
    [ -z "$expect" ] || [ "${out##* }" = "$expect" ] || die "$name: expected $expect, got $out"
}

# ---- outpost-hq ----
HQ_DB="$T/hq.db"
"$OUTPOST_HQ" --db "$HQ_DB" node add gate-1 --region KE --out "$T/n1.cred" >/dev/null 2>&1 ||
    die "node add failed"
"$OUTPOST_HQ" --db "$HQ_DB" serve --listen 127.0.0.1:0 --spool-dir "$T/spool" 2>"$T/hq.log" &
HPID=$!
track $HPID
HPORT=$(wait_line "$T/hq.log" \
    's|^\(<[0-7]>\)\{0,1\}outpost-hq: listening on http://127.0.0.1:\([0-9]*\)$|\2|p' "$HPID" outpost-hq)
attack "outpost-hq, no token" "401:60" --port "$HPORT" --pid "$HPID" --conns 60 \
    --body $((4 * 1024 * 1024)) --method PATCH --path /files/0123456789abcdef0123456789abcdef \
    --max-peak-kib $((24 * 1024)) --max-after-kib $((16 * 1024))
# A refused upload creation and a bad token are refused alike.
attack "outpost-hq, bad token" "401:20" --port "$HPORT" --pid "$HPID" --conns 20 \
    --body $((4 * 1024 * 1024)) --method POST --path /files --header "Authorization: Bearer 00" \
    --max-peak-kib $((24 * 1024)) --max-after-kib $((16 * 1024))
TOKEN=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' "$T/n1.cred")
# An enrolled node's PATCHes to an upload it does not have: 404 at the
# gate, before a byte of the 4 MiB bodies is read (the buffered-bytes
# budget for bodies that are read is tested in test_http_server).
attack "outpost-hq, node token" "404:60" --port "$HPORT" --pid "$HPID" --conns 60 \
    --body $((4 * 1024 * 1024)) --method PATCH --path /files/0123456789abcdef0123456789abcdef \
    --header "Authorization: Bearer $TOKEN" \
    --max-peak-kib $((24 * 1024)) --max-after-kib $((16 * 1024))
kill -TERM "$HPID"
wait "$HPID" || die "outpost-hq exited with $? on SIGTERM"

# ---- outpostd ----
node_dir
init_node EU-DE
start_outpostd --log-requests false
attack "outpostd, no token" "401:100" --port "$PORT" --pid "$DPID" --conns 100 \
    --body $((1024 * 1024)) --method POST --path /api/v1/contacts \
    --header 'Content-Type: application/json' \
    --max-peak-kib $((24 * 1024)) --max-after-kib $((16 * 1024))
attack "outpostd, bad token" "401:50" --port "$PORT" --pid "$DPID" --conns 50 \
    --body $((1024 * 1024)) --method PATCH --path /api/v1/contacts/x \
    --header 'Authorization: Bearer opk_nope' \
    --max-peak-kib $((24 * 1024)) --max-after-kib $((16 * 1024))
# A login takes a body of a few KiB at most, before any credentials.
attack "outpostd, login" "413:50" --port "$PORT" --pid "$DPID" --conns 50 \
    --body $((1024 * 1024)) --method POST --path /api/v1/session \
    --max-peak-kib $((24 * 1024)) --max-after-kib $((16 * 1024))
stop_outpostd
pass
