# shellcheck shell=bash
# Shared by the sync tests (test_sync_*.sh) and tests/bench/sync.sh: start
# and stop outpost-hq, the flaky-link proxy and outpostd on 127.0.0.1 with
# ports they pick, and wait for a node to drain. Sourced after
# tests/cli/lib.sh; needs OUTPOST, OUTPOSTD, OUTPOST_HQ, FLAKY_PROXY and a
# directory in $T. Every process started is recorded in SYNC_PIDS and
# killed on exit.
SYNC_PIDS=""
HQ_PID="" PROXY_PID="" NODE_PID=""
sync_cleanup() {
    local p
    for p in $SYNC_PIDS; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$LIB_ROOT"
}
trap sync_cleanup EXIT

# wait_line FILE SED-EXPR PID WHAT: prints the first match of SED-EXPR in
# FILE, waiting up to 10 s while PID lives.
wait_line() {
    local v=""
    for _ in $(seq 1 200); do
        v=$(sed -n "$2" "$1" 2>/dev/null | head -n1)
        [ -n "$v" ] && { echo "$v"; return 0; }
        kill -0 "$3" 2>/dev/null || die "$4 exited: $(tail -n 20 "$1")"
        sleep 0.05
    done
    die "$4 did not start: $(tail -n 20 "$1")"
}

# start_hq DB [ARGS...]: outpost-hq serve on a free port (on $HQ_PORT
# again when HQ_SAME_PORT=1: a restarted HQ keeps its address, as a real
# one does), its log in $T/hq.N.log ($HQ_LOG); sets HQ_PID, HQ_PORT.
HQ_STARTS=0
start_hq() {
    local db=$1
    shift
    local listen=127.0.0.1:0
    [ "${HQ_SAME_PORT:-0}" = 1 ] && listen="127.0.0.1:$HQ_PORT"
    "$OUTPOST_HQ" serve --db "$db" --spool_dir "$T/hq-uploads" --listen "$listen" \
        --log_requests false "$@" 2>"$T/hq.$((HQ_STARTS + 1)).log" &
    HQ_PID=$!
    SYNC_PIDS="$SYNC_PIDS $HQ_PID"
    HQ_STARTS=$((HQ_STARTS + 1))
    HQ_LOG="$T/hq.$HQ_STARTS.log"
    HQ_PORT=$(wait_line "$HQ_LOG" 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "$HQ_PID" outpost-hq)
}

# start_proxy TARGET_PORT ARGS...: the flaky link; sets PROXY_PID, PROXY_PORT.
start_proxy() {
    local target=$1
    shift
    "$FLAKY_PROXY" --listen 127.0.0.1:0 --target "127.0.0.1:$target" "$@" \
        >"$T/proxy.out" 2>"$T/proxy.log" &
    PROXY_PID=$!
    SYNC_PIDS="$SYNC_PIDS $PROXY_PID"
    PROXY_PORT=$(wait_line "$T/proxy.out" 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "$PROXY_PID" flaky_proxy)
}

# start_node HQ_URL ARGS...: outpostd syncing to HQ_URL, its log in
# $T/node.N.log (N counts starts; $NODE_LOG is the current one); sets
# NODE_PID, NODE_PORT.
NODE_STARTS=0
start_node() {
    local url=$1
    shift
    NODE_STARTS=$((NODE_STARTS + 1))
    NODE_LOG="$T/node.$NODE_STARTS.log"
    "$OUTPOSTD" --db "$OUTPOST_DB" --listen 127.0.0.1:0 --workers 2 --log_requests false \
        --hq_credentials "$T/cred.json" --hq_url "$url" "$@" 2>"$NODE_LOG" &
    NODE_PID=$!
    SYNC_PIDS="$SYNC_PIDS $NODE_PID"
    NODE_PORT=$(wait_line "$NODE_LOG" 's/.*(port \([0-9]*\)).*/\1/p' "$NODE_PID" outpostd)
}

# status_field NAME: one number from `outpost status --json`; dies with
# the reason when status fails or lacks NAME.
status_field() {
    "$OUTPOST" status --json >"$T/status.json" 2>"$T/status.err" ||
        die "outpost status failed ($1): $(cat "$T/status.err")"
    python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <"$T/status.json" \
        2>"$T/status.err" ||
        die "outpost status --json: no $1: $(cat "$T/status.json" "$T/status.err")"
}

# wait_drained SECONDS: until the outbox and the spool are empty.
wait_drained() {
    local limit=$1 start depth segs
    start=$(date +%s)
    while :; do
        depth=$(status_field outbox_depth) segs=$(status_field spool_segments)
        [ "$depth" = 0 ] && [ "$segs" = 0 ] && return 0
        [ $(($(date +%s) - start)) -lt "$limit" ] ||
            die "not drained after $limit s: outbox $depth, spool $segs segments;" \
                "node log: $(tail -n 15 "$NODE_LOG") HQ log: $(tail -n 10 "$HQ_LOG")"
        sleep 1
    done
}
