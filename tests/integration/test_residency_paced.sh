#!/bin/bash
# "Nothing restricted leaves the box" at the pacing outpostd ships
# (docs/EGRESS.md, "Paced segments"): a small first segment, then segments
# twice as large cut while the one before uploads. The link is slow
# (flaky_proxy at 64 kbit/s, 50 ms), so segments of a backlog wait in the
# spool or are on their way while records change. Every byte the node sends
# is recorded by capture_proxy.py in front of the link.
#
# One region (RESIDENCY_PACED_REGION, default KE): residency_canary.py
# plants its canaries (non-exportable fields, records restricted or pinned
# from creation, what is about them; scenario 4's records reach HQ), then
# residency_paced.py writes a backlog with canary records past the first
# segment, opens the link, and once a segment holding them is cut behind
# one still unacknowledged, restricts (CLI, API) and erases them and
# withdraws scenario 4's records. After the drain residency_canary.py
# judges every canary on the wire against the moment its restriction
# returned (and if no byte of their segment had crossed, not even their
# ids may reach HQ), scans HQ's database, WAL, upload directory and log, and
# compares HQ with `outpost egress-report`; HQ must hold each record once.
#
# Then a policy from HQ that keeps one exported contact field on the node,
# posted while a segment holding a canary in it waits (docs/EGRESS.md,
# "Paced segments"); RESIDENCY_PACED_TIGHTEN=0 leaves it out.
# OUTPOST_TEST_UPLOADS_IN_FLIGHT=N runs outpostd with
# --sync_uploads_in_flight N (not passed when unset): with 2, the segment
# voided is uploading beside the one before it.
# RESIDENCY_KEEP=DIR keeps the files (capture, databases, logs).
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3
HERE="$TESTS_DIR/integration"
R=${RESIDENCY_PACED_REGION:-KE}
export REGION=$R PROFILE="$TESTS_DIR/../schema/regions/$R.yaml" HQ_DB="$HQDB" HQ_NODE="paced-$R" \
    CAPTURE="$T/capture.bin" PROXY_CTL="$T/proxy.sock" SPOOL="$T/spool" HQ_UPLOADS="$T/hq-uploads"
export RESIDENCY_HQ_SECURE_DELETE=1
[ -f "$PROFILE" ] || die "no profile $PROFILE"
py() {
    python3 "$HERE/$1" "$2" "$T" || die "$1 $2 failed"
}
keep() {
    [ -z "${RESIDENCY_KEEP:-}" ] || { mkdir -p "$RESIDENCY_KEEP" && cp -a "$T"/. "$RESIDENCY_KEEP"/; }
}

init_node "$R"
add_user mgr manager 'canary manager pw'
TOKEN=$(api_token mgr)
[ -n "$TOKEN" ] || die "no API token"
export TOKEN
hq_enrol "$HQ_NODE" "$R"
start_hq "$HQDB"
# The link: 64 kbit/s, 50 ms, with a modem's small buffer. The capture
# proxy in front of it is the box's edge: it is capped at the same rate,
# so that the node's writes wait as they would on the link, instead of
# filling the proxies' buffers at loopback speed.
start_proxy "$HQ_PORT" --seed 7 --rate-kbit 64 --latency-ms 50 --buffer-bytes 4096
start_capture "$PROXY_PORT"
python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import residency_paced as p; p.link()" \
    "$HERE" || die "the capture proxy refused its rate"
# The default pacing: no --sync_first_segment_ms, --sync_hold_ms or
# --segment_bytes. The short interval only keeps the test from waiting on
# the timer between its steps.
node_args=(--sync_interval_ms 200)
if [ -n "${OUTPOST_TEST_UPLOADS_IN_FLIGHT:-}" ]; then
    node_args+=(--sync_uploads_in_flight "$OUTPOST_TEST_UPLOADS_IN_FLIGHT")
fi
start_node "http://127.0.0.1:$CAPTURE_PORT" "${node_args[@]}"
export API="http://127.0.0.1:$NODE_PORT" NODE_LOG
t0=$(date +%s)

py residency_canary.py plant
wait_drained 60
py residency_canary.py arrived
py residency_paced.py paced
wait_drained 60
echo "drained $(($(date +%s) - t0)) s after the node started"
kill -TERM "$NODE_PID" "$CAPTURE_PID"
wait "$NODE_PID" "$CAPTURE_PID" 2>/dev/null
export HQ_LOGS="$T/hq.1.log" NODE_LOGS="$NODE_LOG"
# HQ still runs: its WAL is scanned as it is.
py residency_paced.py settle
rc=0
python3 "$HERE/residency_canary.py" final "$T" || rc=1
python3 "$HERE/residency_paced.py" once "$T" || rc=1
kill -TERM "$HQ_PID"
wait "$HQ_PID" 2>/dev/null
python3 "$HERE/residency_canary.py" hqdb "$T" || rc=1
keep
[ "$rc" = 0 ] || die "a canary or a withheld id left the node, or HQ differs from the egress" \
    "report (above)"
pass
