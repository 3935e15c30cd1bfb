#!/bin/bash
# A policy tightened at the node while a paced segment cut under the old
# one is being uploaded (docs/EGRESS.md, "Paced segments"): outpostd runs
# with the policy file named by OUTPOST_POLICY, a backlog of 6,000 KE
# contacts with a unique value in contact.region (exportable) goes out
# over a 64 kbit/s link, and once the sixth segment (about 180 KB) has
# begun, the file is edited to make contact.region local_only and
# `outpostd --reload` returns. From then on no old value of the field may
# leave: the capture of every byte at the box's edge is decoded, and each
# value that crossed past what the edge had received when the reload
# returned is counted (residency_canary.py's rule: what still sat in the
# node's own socket had not left). The reload voids segment 6 before it
# returns (its file emptied, the upload reset and terminated at HQ), so
# none may. HQ keeps what segments 1 to 5 carried while the field was
# exportable, and nothing of segment 6 or later: HQ does not know the
# edited policy, so it rejects the segments cut under it and sync stops
# with a rejection (docs/EGRESS.md, "Paced segments"), which the node must
# report. By hand:
#   TESTS_DIR=tests OUTPOST=... OUTPOSTD=... OUTPOST_HQ=... FLAKY_PROXY=... \
#     OUTPOST_ALLOW_ROOT=1 bash tests/integration/test_residency_paced_reload.sh
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
HERE="$TESTS_DIR/integration"
export CAPTURE="$T/capture.bin" PROXY_CTL="$T/proxy.sock"
mkdir -p "$T/policy" || die "mkdir"
cp "$TESTS_DIR/../schema/regions/KE.yaml" "$T/policy/KE.yaml" || die "cp"
export OUTPOST_POLICY="$T/policy/KE.yaml"
grep -q '^  contact.region: {class: exportable' "$OUTPOST_POLICY" ||
    die "KE no longer exports contact.region: pick another field"
contacts() { # FILE N PREFIX: contacts whose region is PREFIX-n
    python3 - "$@" <<'PY' || die "writing $1"
import csv, sys
w = csv.writer(open(sys.argv[1], "w", newline=""))
w.writerow(["given_name", "family_name", "region"])
for i in range(int(sys.argv[2])):
    w.writerow(["G%d" % i, "Reload %d" % i, "%s-%05d" % (sys.argv[3], i)])
PY
    "$OUTPOST" import "$1" --skip-duplicate-check >/dev/null || die "import $1"
}

init_node KE
hq_enrol reload-1 KE
start_hq "$HQDB"
start_proxy "$HQ_PORT" --seed 7 --rate-kbit 64 --latency-ms 50 --buffer-bytes 4096
start_capture "$PROXY_PORT"
python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import residency_paced as p; p.link()" \
    "$HERE" || die "the capture proxy refused its rate"
start_node "http://127.0.0.1:$CAPTURE_PORT" --sync_interval_ms 200
contacts "$T/warm.csv" 200 Warm # the node learns the link's goodput
wait_drained 60
contacts "$T/backlog.csv" 6000 CNRYREG
for _ in $(seq 1 6000); do
    up=$(sqlite3 "file:$OUTPOST_DB?mode=ro" \
        "SELECT count(*) FROM sync_segments WHERE no = 6 AND state = 0 AND upload_url <> ''")
    [ "$up" = 1 ] && break
    sleep 0.01
done
[ "$up" = 1 ] || die "segment 6 was never seen uploading"
sed 's/^  contact.region: {class: exportable/  contact.region: {class: local_only/' \
    "$OUTPOST_POLICY" >"$T/policy/KE.tmp" && mv "$T/policy/KE.tmp" "$OUTPOST_POLICY" ||
    die "editing the policy"
"$OUTPOSTD" --reload "$NODE_PID" || die "outpostd --reload refused the tightened policy"
python3 -c "import sys, json; sys.path.insert(0, sys.argv[1]); import residency_canary as rc
json.dump(rc.proxy('mark reloaded')['mark'], open(sys.argv[2], 'w'))" "$HERE" "$T/mark.json" ||
    die "mark"
# The records are cut again under the edited policy, which HQ does not
# know: once it has rejected one, nothing more is sent, and what sat in
# the proxies' small buffers has crossed a moment later.
blocked=
for _ in $(seq 1 900); do
    blocked=$(sqlite3 "file:$OUTPOST_DB?mode=ro" "SELECT blocked_kind FROM sync_state")
    [ "$blocked" = rejected ] && break
    sleep 0.1
done
sleep 2
kill -TERM "$CAPTURE_PID"
wait "$CAPTURE_PID" 2>/dev/null
leaked=0
python3 - "$HERE" "$CAPTURE" "$T/mark.json" <<'PY' >"$T/judge.out" || leaked=1
import json, re, sys
sys.path.insert(0, sys.argv[1])
import residency_canary as rc
mark = json.load(open(sys.argv[3]))
wire = rc.Wire(sys.argv[2])
after, total, where = 0, 0, {}
for path, up in wire.uploads.items():
    hdr, start, text, marks = rc.decode_segment(wire.image(path))
    for m in re.finditer(r"CNRYREG-\d{5}", text):
        total += 1
        off = rc.text_offset_to_file(start, marks, len(text[:m.end()].encode()))
        cr = wire.crossing(path, off)
        b = mark["conns"].get(str(cr[1])) if cr else None
        if cr and (cr[0] >= mark["time"] if b is None else cr[2] >= b["received"] + b["inq"]):
            after += 1
            where[up["segment"]] = where.get(up["segment"], 0) + 1
print("%d contact.region values on the wire, %d of them crossed after the reload returned %s"
      % (total, after, where))
if total == 0:
    print("positive control: no value found on the wire: the decoder is blind")
    sys.exit(1)
sys.exit(1 if after else 0)
PY
cat "$T/judge.out"
kept=$("$OUTPOST_HQ" --db "$HQDB" records --json | grep -c 'CNRYREG-')
late=$(sqlite3 "file:$HQDB?mode=ro" \
    "SELECT count(*) FROM records WHERE segment >= 6 AND record LIKE '%CNRYREG-%'")
blocked=$(sqlite3 "file:$OUTPOST_DB?mode=ro" "SELECT blocked_kind || ': ' || blocked FROM sync_state")
echo "HQ holds $kept records with contact.region values of the backlog, $late of them from" \
    "segment 6 or later; the node: $blocked"
[ "$leaked" = 0 ] || die "old values of contact.region left after the reload returned (above)"
[ "$late" = 0 ] || die "HQ keeps contact.region from the segment voided by the reload, or later"
[ "$kept" -gt 0 ] || die "HQ holds no value of the first segments: the check above is blind"
case "$blocked" in
rejected:*) ;;
*) die "sync did not stop on HQ's rejection of the policy it does not know: $blocked" ;;
esac
pass
