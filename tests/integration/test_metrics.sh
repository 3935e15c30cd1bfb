#!/bin/bash
# /metrics of both daemons (docs/OUTPOSTD.md "Metrics", docs/HQ.md): the
# text passes `promtool check metrics` (every family with HELP and TYPE,
# names and types Prometheus accepts), and both carry the process_* series
# and outpost_build_info with their program and version. The check must
# be able to fail: a family without HELP is caught.
set -u
. "$TESTS_DIR/cli/lib.sh"
[ -n "${OUTPOST_HQ:-}" ] && [ -x "$OUTPOST_HQ" ] || skip "outpost-hq is not built"
need curl promtool
. "$TESTS_DIR/integration/api_lib.sh"
node_dir
init_node EU-DE
add_user maria manager
MARIA=$(api_token maria)
[ -n "$MARIA" ] || die "no token for maria"
version=$("$OUTPOSTD" --version | sed 's/^outpostd //')

# promtool_ok FILE WHAT: promtool check metrics says nothing about FILE.
promtool_ok() {
    promtool check metrics <"$1" >"$T/promtool.out" 2>&1 ||
        die "promtool check metrics failed for $2: $(cat "$T/promtool.out")"
    [ ! -s "$T/promtool.out" ] || die "promtool check metrics complained about $2: $(cat "$T/promtool.out")"
}

# The check can fail: a family without HELP.
printf '# TYPE outpost_x gauge\noutpost_x 1\n' >"$T/nohelp.txt"
if promtool check metrics <"$T/nohelp.txt" >"$T/promtool.out" 2>&1 && [ ! -s "$T/promtool.out" ]; then
    die "promtool check metrics took a family without HELP"
fi

# proc_series FILE PROGRAM: the process series and the build info.
proc_series() {
    local f=$1 prog=$2 name
    for name in process_cpu_seconds_total process_resident_memory_bytes \
        process_virtual_memory_bytes process_open_fds process_max_fds process_start_time_seconds; do
        grep -qE "^$name [0-9.e+]+$" "$f" || die "$prog: no $name sample: $(grep process_ "$f")"
    done
    grep -qxF "outpost_build_info{program=\"$prog\",version=\"$version\"} 1" "$f" ||
        die "$prog: no build info for $version: $(grep build_info "$f")"
    # started within the last minute
    local start now
    start=$(sed -n 's/^process_start_time_seconds \([0-9]*\).*/\1/p' "$f")
    now=$(date +%s)
    [ $((now - start)) -ge 0 ] && [ $((now - start)) -lt 60 ] ||
        die "$prog: process_start_time_seconds $start is not within a minute of $now"
}

# ---- the node ----
start_outpostd
req GET /api/v1/contacts "$MARIA" # a request, so the per-route families have samples
req GET /metrics "$MARIA"
expect_status 200
cp "$OUT" "$T/node.metrics"
promtool_ok "$T/node.metrics" "outpostd"
proc_series "$T/node.metrics" outpostd
stop_outpostd

# ---- HQ ----
"$OUTPOST_HQ" serve --db "$T/hq.db" --spool_dir "$T/hq-uploads" --listen 127.0.0.1:0 \
    2>"$T/hq.log" &
hpid=$!
track "$hpid"
port=$(wait_line "$T/hq.log" 's|.*listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$hpid" outpost-hq) ||
    exit 1
curl -sf "http://127.0.0.1:$port/metrics" >"$T/hq.metrics" || die "GET HQ /metrics failed"
promtool_ok "$T/hq.metrics" "outpost-hq"
proc_series "$T/hq.metrics" outpost-hq
for name in outpost_hq_nodes outpost_hq_segments_applied_total outpost_hq_spool_bytes \
    outpost_hq_connections outpost_hq_applies_pending; do
    grep -q "^# HELP $name " "$T/hq.metrics" || die "HQ: no HELP for $name"
done
kill -TERM "$hpid"
wait "$hpid" || die "outpost-hq did not stop cleanly: $(tail -n 5 "$T/hq.log")"
pass
