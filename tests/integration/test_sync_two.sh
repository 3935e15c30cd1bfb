#!/bin/bash
# Two uploads in flight (docs/UPLINK.md, "Two uploads"), with real daemons
# over a 256 kbit/s link with a 400 ms round trip:
#  - with sync_uploads_in_flight 2 (the default) segment N+1's PATCHes run
#    while N still waits for HQ's final answer (HQ's request log), N+1's
#    creation carries Upload-Metadata after = N's upload id (HQ's upload
#    state), no creation is sent before the one before it was answered,
#    and HQ holds every record once;
#  - with 1 the same log shows no overlap and no `after`, so the checks
#    above tell the two apart;
#  - a later segment that completes first: with full segments from the
#    first (about 359 contacts each here; 1,107 contacts make three and a
#    fourth of about 30, which the second slot takes while the first has
#    just begun the third) over 128 kbit/s, the fourth completes before
#    the third; HQ holds it back ("complete, applied after its earlier
#    upload ... settles") and applies the two in number order, the node
#    drains and HQ holds every record once. (Receipts reaching the node in
#    either order are test_sync_ledger's test_receipts_out_of_order.)
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3

# run N [ARGS]: a fresh node and HQ, $CONTACTS (2,500) contacts over $RATE
# (256) kbit/s, drained with sync_uploads_in_flight N (and outpostd ARGS);
# HQ's log and upload states stay in $T.
run() {
    local n=$1
    shift
    [ -n "$NODE_PID" ] && { kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null; }
    [ -n "$HQ_PID" ] && { kill "$HQ_PID"; wait "$HQ_PID" 2>/dev/null; }
    [ -n "$PROXY_PID" ] && { kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null; }
    node_dir
    HQDB="$T/hq.db"
    init_node KE
    import_contacts "${CONTACTS:-2500}" 7
    hq_enrol two-1 KE
    start_hq "$HQDB" --log_requests true --log_timestamps true
    start_proxy "$HQ_PORT" --seed 3 --rate-kbit "${RATE:-256}" --latency-ms 200
    start_node "http://127.0.0.1:$PROXY_PORT" --sync_interval_ms 500 --segment_bytes 40KB \
        --sync_uploads_in_flight "$n" "$@"
    wait_drained 120
    : >"$T/forbidden"
    hq_compare two-1
}

# the overlaps and `after` values of HQ's log and upload states
analyse() {
    python3 - "$HQ_LOG" "$T/hq-uploads" <<'PY'
import base64, datetime, glob, os, re, sys
log, updir = sys.argv[1], sys.argv[2]
segs = {}  # segment no -> (id, after)
for f in glob.glob(os.path.join(updir, "*.state")):
    uid = os.path.basename(f)[:-6]
    meta = {}
    for line in open(f, errors="replace"):
        if line.startswith("metadata "):
            for pair in line[9:].strip().split(","):
                k, _, v = pair.partition(" ")
                meta[k] = base64.b64decode(v).decode() if v else ""
    if "segment" in meta:
        segs[int(meta["segment"])] = (uid, meta.get("after"))
# "2026-...Z ... METHOD STATUS NB D.Dms PATH"
rx = re.compile(r"^(\S+Z) .* (POST|PATCH|HEAD|GET|DELETE) (\d+) \d+B ([\d.]+)ms (\S+)")
reqs = []
for line in open(log, errors="replace"):
    m = rx.search(line)
    if not m:
        continue
    end = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
    reqs.append((m.group(2), end - float(m.group(4)) / 1000, end, m.group(5)))
ids = {uid: no for no, (uid, _) in segs.items()}
first_patch, last_patch = {}, {}
for method, start, end, path in reqs:
    no = ids.get(path.rstrip("/").rsplit("/", 1)[-1])
    if method == "PATCH" and no is not None:
        first_patch.setdefault(no, start)
        last_patch[no] = end
overlaps = [n for n in sorted(segs) if n - 1 in last_patch and n in first_patch
            and first_patch[n] < last_patch[n - 1]]
afters = [n for n in sorted(segs) if segs[n][1]]
right = [n for n in afters if n - 1 in segs and segs[n][1] == segs[n - 1][0]]
wrong = [n for n in afters if n not in right]
posts = [(s, e) for m, s, e, p in reqs if m == "POST" and p.rstrip("/").endswith("/files")]
early = sum(1 for a, b in zip(posts, posts[1:]) if b[0] < a[1])
# segments HQ applied before a lower one (an HQ that does not order), and
# uploads HQ held back because they completed before the one they follow
text = open(log, errors="replace").read()
applied = [int(m.group(1)) for m in re.finditer(r"segment (\d+) applied", text)]
inverted = sum(1 for i, n in enumerate(applied) if any(x > n for x in applied[:i]))
deferred = len(re.findall(r"complete, applied after its earlier upload", text))
print(f"segments {len(segs)} overlaps {len(overlaps)} after {len(afters)} "
      f"after_right {len(right)} after_wrong {len(wrong)} posts {len(posts)} early_posts {early} "
      f"inverted {inverted} deferred {deferred}")
PY
}

run 2
a2=$(analyse) || die "cannot read HQ's log"
echo "in flight 2: $a2"
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' <<<"$2"; }
[ "$(field segments "$a2")" -ge 4 ] || die "too few segments to show anything: $a2"
[ "$(field overlaps "$a2")" -ge 1 ] || die "no segment's PATCH ran before the one below it was answered: $a2"
[ "$(field after_right "$a2")" -ge 1 ] || die "no creation carried after = the lower upload's id: $a2"
[ "$(field after_wrong "$a2")" = 0 ] || die "a creation's after names another upload: $a2"
[ "$(field early_posts "$a2")" = 0 ] || die "a creation went before the one below it was answered: $a2"
grep -q "segment .* uploaded (" "$NODE_LOG" || die "no segment logged as uploaded"

run 1
a1=$(analyse) || die "cannot read HQ's log"
echo "in flight 1: $a1"
[ "$(field overlaps "$a1")" = 0 ] || die "one upload at a time overlapped: $a1"
[ "$(field after "$a1")" = 0 ] || die "one upload at a time sent after: $a1"
CONTACTS=1107 RATE=128 run 2 --sync_first_segment_ms 0
a3=$(analyse) || die "cannot read HQ's log"
echo "full segments, small last one, in flight 2: $a3"
# the small last segment completes before the one below it: HQ holds it
# back and applies the two in number order
[ "$(field deferred "$a3")" -ge 1 ] || die "no upload completed before the one it follows: $a3"
[ "$(field inverted "$a3")" = 0 ] || die "HQ applied a segment before a lower one: $a3"
echo "ok"
