#!/bin/bash
# Anti-entropy (docs/SYNC_PROTOCOL.md, "Anti-entropy") with real daemons:
# a node of 200 contacts syncs to HQ; `outpost sync verify` finds them in
# agreement for about a kilobyte on the wire. Then HQ drifts while it is
# stopped (as a restored backup or a lost apply would leave it): rows
# deleted, a version rolled back, the tombstone of an erasure and the
# withdrawal of a restricted contact replaced by their old data, a delete
# undone, and the tombstones of another erasure and another withdrawal
# deleted (tombstones HQ never got). The next check finds exactly those
# nine records, queues them again, and the sync sends only them: the
# restricted contacts as withdrawals (the canary never crosses the wire,
# checked on a capture of every byte), the erased ones as their erase
# tombstones. outpostd is killed
# (-9) right after the repairs are queued, and HQ as they start to go;
# after the restarts HQ holds the node's projection exactly (no record lost
# or doubled: its receipts count nine records) and a last check agrees,
# for under 1,200 bytes on the wire, heads included. Bad digest requests
# are refused 400 with nothing changed.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3 curl
HERE="$TESTS_DIR/integration"
CANARY="CNRYVERIFYR"
CANARY_CLEAR="CNRYVERIFYREGION" # contact.region is exportable as is in KE

init_node KE
import_contacts 200 21
hq_enrol verify-1 KE
ids() { sqlite3 "$OUTPOST_DB" "SELECT id FROM contacts WHERE deleted = 0 ORDER BY id LIMIT $1 OFFSET $2"; }
ver() { sqlite3 "$OUTPOST_DB" "SELECT version FROM contacts WHERE id = '$1'"; }
"$OUTPOST" contact add --given_name "$CANARY" --family_name Restricted --region "$CANARY_CLEAR" \
    >"$T/r.out" || die "contact add failed"
R=$(grep -o '[0-9a-f]\{8\}-[0-9a-f-]*' "$T/r.out" | head -n1)
[ -n "$R" ] || die "no id for the canary contact: $(cat "$T/r.out")"

start_hq "$HQDB"
NODE_ARGS=(--sync_interval_ms 200 --verify_interval 0)
start_node "http://127.0.0.1:$HQ_PORT" "${NODE_ARGS[@]}"
wait_drained 40

# 1. Agreement costs about a kilobyte: one request of one digest.
expect_exit 0 "$OUTPOST" sync verify --json --timeout 30
python3 - "$OUT" <<'PY' || die "agreement: $(cat "$OUT")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["result"] == "agree", r
assert r["compared"] == 201 and r["hq_records"] == 201, r
assert r["requests"] == 1 and r["drift"] == 0, r
assert r["bytes"] < 1024, r
PY
"$OUTPOST_HQ" --db "$HQDB" nodes --json >"$T/nodes.json" || die "outpost-hq nodes failed"
grep -q '"verify": *{[^}]*"result": *"agree"' "$T/nodes.json" ||
    grep -q '"result":"agree"' "$T/nodes.json" || die "HQ does not show the check: $(cat "$T/nodes.json")"
"$OUTPOST" status >"$T/status.txt" || die "status failed"
grep -q '^verify: last check .*: agree; 201 records here, 201 at HQ' "$T/status.txt" ||
    die "status does not show the check: $(cat "$T/status.txt")"

# 2. Changes that leave tombstones and a new version at HQ.
E=$(ids 1 10) D=$(ids 1 11) V=$(ids 1 12) E2=$(ids 1 13) W=$(ids 1 14)
hqrec() { printf "%s" "$(sqlite3 "$HQDB" "SELECT record FROM records WHERE node = 'verify-1' AND id = '$1'")"; }
hqrec "$E" >"$T/E.json"
hqrec "$R" >"$T/R.json"
# KE pseudonymizes names: what HQ holds of the canary is its pseudonym,
# and that is what a repair that ignored the restriction would send
PSEUDO=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['given_name'])" "$T/R.json")
case $PSEUDO in h:*) ;; *) die "the canary contact is not at HQ as expected: $(cat "$T/R.json")" ;; esac
grep -q "\"region\":\"$CANARY_CLEAR\"" "$T/R.json" ||
    die "the clear canary is not at HQ: $(cat "$T/R.json")"
"$OUTPOST" contact update --version "$(ver "$R")" "$R" --restricted true >/dev/null ||
    die "restrict failed"
"$OUTPOST" subject erase "$E" --yes >/dev/null || die "erase failed"
"$OUTPOST" subject erase "$E2" --yes >/dev/null || die "erase failed"
"$OUTPOST" contact update --version "$(ver "$W")" "$W" --restricted true >/dev/null ||
    die "restrict failed"
"$OUTPOST" contact delete --version "$(ver "$D")" "$D" >/dev/null || die "delete failed"
"$OUTPOST" contact update --version "$(ver "$V")" "$V" --given_name Newer >/dev/null ||
    die "update failed"
wait_drained 40
[ "$(sqlite3 "$HQDB" "SELECT op FROM records WHERE id = '$R'")" = withdraw ] ||
    die "the restricted contact was not withdrawn at HQ"
[ "$(sqlite3 "$HQDB" "SELECT op FROM records WHERE id IN ('$E2', '$W') ORDER BY op")" = \
    "$(printf 'erase\nwithdraw')" ] || die "the second erasure or withdrawal did not reach HQ"

# 3. HQ drifts while it is stopped.
kill "$HQ_PID"
wait "$HQ_PID" 2>/dev/null
G1=$(ids 1 20) G2=$(ids 1 21) G3=$(ids 1 22)
sqlite3 "$HQDB" <<SQL || die "cannot make HQ drift"
DELETE FROM records WHERE id IN ('$G1', '$G2', '$G3');
DELETE FROM records WHERE id IN ('$E2', '$W');
UPDATE records SET version = version - 1,
       record = json_set(record, '$.version', version - 1, '$.given_name', 'Older')
 WHERE id = '$V';
UPDATE records SET op = 'upsert', record = CAST(readfile('$T/E.json') AS TEXT) WHERE id = '$E';
UPDATE records SET op = 'upsert', record = CAST(readfile('$T/R.json') AS TEXT) WHERE id = '$R';
UPDATE records SET op = 'upsert', record = json_set(record, '$.deleted', json('false'))
 WHERE id = '$D';
SQL
n_before=$(sqlite3 "$HQDB" "SELECT coalesce(sum(records), 0) FROM receipts WHERE node = 'verify-1'")

# Every byte of the repair goes through a capture proxy.
HQ_SAME_PORT=1 start_hq "$HQDB"
kill "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
python3 "$HERE/capture_proxy.py" --target "127.0.0.1:$HQ_PORT" --capture "$T/capture.bin" \
    --control "$T/proxy.sock" >"$T/cproxy.out" 2>"$T/cproxy.log" &
CPROXY_PID=$!
track "$CPROXY_PID"
CPORT=$(wait_line "$T/cproxy.out" 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$CPROXY_PID" \
    capture_proxy) || exit 1
start_node "http://127.0.0.1:$CPORT" "${NODE_ARGS[@]}"

# 4. The check finds exactly the nine records and queues them again; the
# node is killed at once, before the repairs can be sent.
expect_exit 7 "$OUTPOST" sync verify --json --timeout 30
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
python3 - "$OUT" <<'PY' || die "drift: $(cat "$OUT")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["result"] == "repaired", r
assert r["drift"] == 9 and r["resent"] == 9 and r["reported"] == 0, r
PY
start_node "http://127.0.0.1:$CPORT" "${NODE_ARGS[@]}"
# HQ is killed (-9) as the repairs start to go, and comes back
sleep 0.3
kill -9 "$HQ_PID"
wait "$HQ_PID" 2>/dev/null
HQ_SAME_PORT=1 start_hq "$HQDB"
wait_drained 40
kill "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
kill "$CPROXY_PID"
wait "$CPROXY_PID" 2>/dev/null

# Only the differing records were sent, each once, and the canary never.
n_after=$(sqlite3 "$HQDB" "SELECT coalesce(sum(records), 0) FROM receipts WHERE node = 'verify-1'")
[ $((n_after - n_before)) = 9 ] || die "HQ received $((n_after - n_before)) records, not 9"
python3 "$HERE/verify_wire.py" "$T/capture.bin" "$CANARY" "$PSEUDO" "$CANARY_CLEAR" >"$T/wire.json" ||
    die "cannot decode the capture"
python3 - "$T/wire.json" "$R" "$E" "$D" "$V" "$E2" "$W" "$G1" "$G2" "$G3" <<'PY' || die "wire: $(cat "$T/wire.json")"
import json, sys
w = json.load(open(sys.argv[1]))
R, E, D, V, E2, W, *G = sys.argv[2:]
assert not w["canary_raw"] and not w["canary_segment"], "the canary crossed the wire"
# a segment sent again after HQ's crash is decoded once per upload: the
# set of what crossed must be exactly the nine (HQ's receipts count them
# once, above)
got = sorted(set((r["id"], r["op"]) for r in w["records"]))
want = sorted([(R, "withdraw"), (E, "erase"), (D, "delete"), (V, "upsert"), (E2, "erase"),
               (W, "withdraw")] + [(g, "upsert") for g in G])
assert got == want, (got, want)
assert w["digest_requests"] >= 2, w
PY
# the tombstones HQ lost are back
[ "$(sqlite3 "$HQDB" "SELECT op FROM records WHERE id IN ('$E2', '$W') ORDER BY op")" = \
    "$(printf 'erase\nwithdraw')" ] || die "the lost tombstones were not repaired at HQ"
grep -q -e "$PSEUDO" -e "$CANARY_CLEAR" <(sqlite3 "$HQDB" "SELECT record FROM records WHERE id = '$R'") &&
    die "HQ still holds the restricted contact's data"

# 5. HQ holds the node's projection again, and the next check agrees.
sqlite3 "$OUTPOST_DB" "SELECT given_name FROM contacts WHERE id = '$R'" >"$T/forbidden"
hq_compare verify-1
# through a capture again, to weigh the whole check: heads and bodies
python3 "$HERE/capture_proxy.py" --target "127.0.0.1:$HQ_PORT" --capture "$T/capture2.bin" \
    --control "$T/proxy2.sock" >"$T/cproxy2.out" 2>"$T/cproxy2.log" &
CPROXY_PID=$!
track "$CPROXY_PID"
CPORT=$(wait_line "$T/cproxy2.out" 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$CPROXY_PID" \
    capture_proxy) || exit 1
start_node "http://127.0.0.1:$CPORT" "${NODE_ARGS[@]}"
expect_exit 0 "$OUTPOST" sync verify --json --timeout 30
grep -q '"result":"agree"' "$OUT" || die "no agreement after the repair: $(cat "$OUT")"
kill "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
kill "$CPROXY_PID"
wait "$CPROXY_PID" 2>/dev/null
python3 "$HERE/verify_wire.py" "$T/capture2.bin" "$CANARY" "$PSEUDO" "$CANARY_CLEAR" >"$T/wire2.json" ||
    die "cannot decode the second capture"
python3 - "$T/wire2.json" <<'PY' || die "agreement on the wire: $(cat "$T/wire2.json")"
import json, sys
w = json.load(open(sys.argv[1]))
print("agreement on the wire: %d bytes (digest request and report, heads included)"
      % w["check_wire_bytes"])
assert w["digest_requests"] == 1 and w["records"] == [], w
assert 0 < w["check_wire_bytes"] <= 1200, w
PY
start_node "http://127.0.0.1:$HQ_PORT" "${NODE_ARGS[@]}"

# 6. Bad digest requests: 400 naming what, nothing stored; a node's
# token is needed.
TOKEN=$(python3 -c "import json; print(json.load(open('$T/cred.json'))['token'])")
before=$(sqlite3 "$HQDB" "SELECT count(*), sum(version) FROM records; SELECT * FROM verify_last")
post() {
    curl -s -o "$T/post.out" -w '%{http_code}' -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$HQ_PORT$2"
}
[ "$(post "$TOKEN" /v1/digest 'not json')" = 400 ] || die "not JSON: $(cat "$T/post.out")"
grep -q 'not a JSON object' "$T/post.out" || die "400 without the reason: $(cat "$T/post.out")"
[ "$(post "$TOKEN" /v1/digest '{"format":"outpost-digest-1","ranges":[["G","00112233445566778899aabbccddeeff",1]]}')" = 400 ] ||
    die "a bad prefix was taken: $(cat "$T/post.out")"
grep -q 'ranges\[0\]' "$T/post.out" || die "400 does not name ranges[0]: $(cat "$T/post.out")"
[ "$(post "$TOKEN" /v1/verify '{"result":"fine"}')" = 400 ] || die "a bad report was taken"
[ "$(post nope /v1/digest '{}')" = 401 ] || die "an unknown token was answered"
python3 -c "print('{\"format\":\"outpost-digest-1\",\"ranges\":[' + ','.join('[\"%x\",\"00112233445566778899aabbccddeeff\",0]' % i for i in range(3000)) + ']}')" >"$T/big.json"
code=$(post "$TOKEN" /v1/digest "@$T/big.json")
[ "$code" = 400 ] || [ "$code" = 413 ] || die "an oversized request answered $code"
after=$(sqlite3 "$HQDB" "SELECT count(*), sum(version) FROM records; SELECT * FROM verify_last")
[ "$before" = "$after" ] || die "a refused request changed HQ's store"
pass
