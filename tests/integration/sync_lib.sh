# shellcheck shell=bash
# Shared by the sync tests (test_sync_*.sh, test_residency.sh):
# start outpost-hq, the flaky-link proxy and outpostd
# on 127.0.0.1 with ports they pick, enrol a node, and wait for it to
# drain. Sourced after tests/cli/lib.sh, whose track kills every process
# started here when the test exits; needs OUTPOST, OUTPOSTD, OUTPOST_HQ,
# FLAKY_PROXY and a directory in $T.
#
#   sync_setup [CMD...]      skip unless outpost-hq is built and every CMD
#                            is installed; a new $T with the node's database
#                            in OUTPOST_DB (exported) and HQ's in HQDB;
#                            HQ_STORE holds the outpost-hq options naming
#                            HQ's store: --db "$HQDB", or --store with the
#                            PostgreSQL database OUTPOST_TEST_PG names when
#                            it is set (tests/support/pg_cluster.sh)
#   import_contacts N SEED   N generated contacts (gen_contacts) imported
#   hq_enrol NODE REGION     outpost-hq node add; credentials in $T/cred.json
#   hq_compare NODE          HQ's records of NODE against what `outpost
#                            egress-report` says may leave (sync_compare.py);
#                            no line of $T/forbidden (the caller's) at HQ
#   start_capture PORT       the capture proxy (capture_proxy.py) in front of PORT
HQ_PID="" PROXY_PID="" NODE_PID=""

sync_setup() {
    [ -n "${OUTPOST_HQ:-}" ] && [ -x "$OUTPOST_HQ" ] || skip "outpost-hq is not built"
    need "$@"
    node_dir
    HQDB="$T/hq.db"
    hq_store_args
}

# HQ_STORE: the PostgreSQL store when the test runs on one, else the SQLite
# file $HQDB names now (callers may set HQDB for one call).
hq_store_args() {
    if [ -n "${OUTPOST_TEST_PG:-}" ]; then
        HQ_STORE=(--store "$OUTPOST_TEST_PG")
    else
        HQ_STORE=(--db "$HQDB")
    fi
}

import_contacts() {
    "$GEN_CONTACTS" --count "$1" --seed "$2" --out "$T/contacts.csv" || die "gen_contacts failed"
    "$OUTPOST" import "$T/contacts.csv" >/dev/null || die "import failed"
}

hq_enrol() {
    hq_store_args
    "$OUTPOST_HQ" "${HQ_STORE[@]}" node add "$1" --region "$2" --out "$T/cred.json" \
        >"$T/add.out" 2>&1 || { lib_show "$T/add.out"; die "outpost-hq node add failed"; }
}

hq_compare() {
    hq_store_args
    "$OUTPOST" egress-report --output "$T/expected.jsonl" >/dev/null || die "egress-report failed"
    "$OUTPOST_HQ" "${HQ_STORE[@]}" records --json >"$T/hq.jsonl" || die "outpost-hq records failed"
    python3 "$TESTS_DIR/integration/sync_compare.py" "$T/expected.jsonl" "$T/hq.jsonl" "$1" \
        "$T/forbidden" >"$T/compare.out" || die "HQ does not match the node: $(cat "$T/compare.out")"
    cat "$T/compare.out"
}

# start_hq DB [ARGS...]: outpost-hq serve on a free port (on $HQ_PORT
# (DB is HQ's SQLite file; with OUTPOST_TEST_PG set, that database instead)
# again when HQ_SAME_PORT=1: a restarted HQ keeps its address, as a real
# one does), its log in $T/hq.N.log ($HQ_LOG); sets HQ_PID, HQ_PORT.
HQ_STARTS=0
start_hq() {
    local db=$1
    shift
    local listen=127.0.0.1:0
    [ "${HQ_SAME_PORT:-0}" = 1 ] && listen="127.0.0.1:$HQ_PORT"
    local store=(--db "$db")
    [ -n "${OUTPOST_TEST_PG:-}" ] && store=(--store "$OUTPOST_TEST_PG")
    "$OUTPOST_HQ" serve "${store[@]}" --spool_dir "$T/hq-uploads" --listen "$listen" \
        --log_requests false "$@" 2>"$T/hq.$((HQ_STARTS + 1)).log" &
    HQ_PID=$!
    track "$HQ_PID"
    HQ_STARTS=$((HQ_STARTS + 1))
    HQ_LOG="$T/hq.$HQ_STARTS.log"
    HQ_PORT=$(wait_line "$HQ_LOG" 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "$HQ_PID" outpost-hq) || exit 1
}

# start_proxy TARGET_PORT ARGS...: the flaky link; sets PROXY_PID, PROXY_PORT.
start_proxy() {
    local target=$1
    shift
    "$FLAKY_PROXY" --listen 127.0.0.1:0 --target "127.0.0.1:$target" "$@" \
        >"$T/proxy.out" 2>"$T/proxy.log" &
    PROXY_PID=$!
    track "$PROXY_PID"
    PROXY_PORT=$(wait_line "$T/proxy.out" 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "$PROXY_PID" flaky_proxy) || exit 1
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
    track "$NODE_PID"
    NODE_PORT=$(wait_line "$NODE_LOG" 's/.*(port \([0-9]*\)).*/\1/p' "$NODE_PID" outpostd) || exit 1
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

# start_capture TARGET_PORT: capture_proxy.py in front of TARGET_PORT,
# every byte it forwards recorded in $CAPTURE, its control socket at
# $PROXY_CTL (both set by the caller), its output in $T/capture.out and
# $T/capture.log; sets CAPTURE_PID, CAPTURE_PORT.
start_capture() {
    python3 "$TESTS_DIR/integration/capture_proxy.py" --target "127.0.0.1:$1" \
        --capture "$CAPTURE" --control "$PROXY_CTL" >"$T/capture.out" 2>"$T/capture.log" &
    CAPTURE_PID=$!
    track "$CAPTURE_PID"
    CAPTURE_PORT=$(wait_line "$T/capture.out" 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "$CAPTURE_PID" capture_proxy) || exit 1
}
