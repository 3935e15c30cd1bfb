#!/bin/bash
# Aggregates through the sync mailbox, end to end, three nodes in three
# regions: HQ asks each node (outpost-hq aggregate-request), each node
# answers in its next segment after disclosure control, HQ checks the
# answer against the node's policy and keeps it, and `outpost-hq
# aggregate` combines the latest answer of every region: the CN node's
# policy refuses the aggregate and says why, the EU-DE node answered long
# enough ago to be stale (its age shown), suppressed cells stay suppressed
# in the combined row. Canaries planted in row-level fields appear nowhere
# at HQ, and each node's egress ledger holds the answer it sent (the CN
# node's its refusal, with the reason). An HQ analyst reads the same
# combined table over HTTP (GET /api/v1/aggregates/NAME) with a token of
# their own; a node's token is refused there (403), the analyst's at the
# upload route (401), and a revoked analyst's everywhere.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup sqlite3 curl
# US-CA's profile here also names a standing aggregate, sent unasked
mkdir -p "$T/regions"
cp "$TESTS_DIR/../schema/regions/"*.yaml "$T/regions/"
sed -i 's/^  queries: \(.*\)$/  queries: \1\n  standing: [activities_by_channel_week]/' "$T/regions/US-CA.yaml"
grep -q "standing: \[activities_by_channel_week\]" "$T/regions/US-CA.yaml" || die "no standing line"
export OUTPOST_REGIONS_DIR="$T/regions"
start_hq "$HQDB"
AGG=contacts_by_segment_district

add() { # N REGION
    local i
    for i in $(seq 1 "$1"); do
        "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-g$i" \
            --family-name CANARY-f --street "CANARY street $i" --locality CANARY-town \
            --region "$2" >/dev/null || die "contact add"
    done
}

# node NAME REGION: a node of its own (database, credentials, spool)
# that answers the request HQ queued for it, then stops.
node() {
    local name=$1 region=$2 k
    export OUTPOST_DB="$T/$name.db"
    init_node "$region"
    rm -f "$T/cred.json"
    hq_enrol "$name" "$region"
    case $name in
    de) add 25 Bayern; add 12 Berlin; add 3 Bremen ;;
    ca) add 30 CA; add 14 NV ;;
    cn) add 12 Beijing ;;
    esac
    "$OUTPOST_HQ" --db "$HQDB" aggregate-request "$name" "$AGG" >/dev/null 2>&1 ||
        die "aggregate-request $name"
    start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --spool_dir "$T/spool-$name"
    for k in $(seq 1 150); do
        st=$(sqlite3 "$OUTPOST_DB" "SELECT status FROM mailbox WHERE kind = 'aggregate_request'")
        [ -n "$st" ] && [ "$st" != pending ] && break
        sleep 0.1
    done
    [ -n "$st" ] && [ "$st" != pending ] || die "node $name did not answer (mailbox: '$st')"
    wait_drained 30
    kill "$NODE_PID" && wait "$NODE_PID" 2>/dev/null
}

node de EU-DE
node cn CN
sleep 8 # the EU-DE answer is stale at --max-age 6, US-CA's (below) is not
node ca US-CA

[ "$(sqlite3 "$T/cn.db" "SELECT status FROM mailbox")" = refused ] || die "CN did not refuse"
sqlite3 "$T/de.db" "SELECT via || ' ' || requester || ' ' || name FROM aggregate_egress" >"$T/ledger"
expect_contains "$T/ledger" "segment mailbox:1 $AGG"
[ "$(sqlite3 "$T/de.db" "SELECT count(*) FROM aggregate_egress WHERE segment_no IS NOT NULL")" = 1 ] ||
    die "the EU-DE ledger row does not name its segment"

expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" aggregate "$AGG" --format json --max-age 6
j="$OUT"
expect_contains "$j" '"node":"cn","region":"CN","computed_at"'
expect_contains "$j" '"status":"refused","reason":"contacts_by_segment_district is not allowed by the CN policy (aggregates.queries)"'
python3 - "$j" <<'PY' || die "combined table is wrong: $(cat "$j")"
import json, sys
t = json.load(open(sys.argv[1]))
st = {r["node"]: r for r in t["regions"]}
assert st["de"]["status"] == "stale" and st["de"]["age_s"] >= 8, st["de"]
assert st["ca"]["status"] == "answered", st["ca"]
assert st["cn"]["status"] == "refused", st["cn"]
cols = t["cols"]
# no region's small district is named; EU-DE's Bremen (3) is folded away
assert "Bremen" not in cols, cols
comb = {r["key"]: r for r in t["combined"]}["(none)"]["cells"]
de = [r for r in t["rows"] if r["node"] == "de"][0]["cells"]
for c, k in zip(cols, range(len(cols))):
    if de[k]["n"] is None:
        # suppressed at the node: never filled in by combining
        assert comb[k]["n"] is None and "EU-DE" in comb[k]["in"], (c, comb[k])
assert comb[cols.index("CA")]["n"] == 30, comb
assert comb[cols.index("Bayern")]["n"] == 25, comb
PY
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" aggregate "$AGG" --format csv
expect_contains "$OUT" "scope,region,node,status,age_s,row,col,n,mark,rate,sum"
expect_contains "$OUT" "region,CN,cn,refused,"
expect_contains "$OUT" "region,US-CA,ca,answered,"
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" aggregate "$AGG" --max-age 6
expect_contains "$OUT" "de                       stale     age"
expect_exit 5 "$OUTPOST_HQ" --db "$HQDB" aggregate pipeline_by_stage_month
expect_contains "$ERR" "no node has answered pipeline_by_stage_month yet"

# the CN node's refusal is in its egress ledger: no cells, the reason
[ "$(sqlite3 "$T/cn.db" "SELECT requester || ' ' || name || ' ' || (segment_no IS NOT NULL) || ' '
    || (instr(body, '"cells"') = 0) FROM aggregate_egress")" = "mailbox:1 $AGG 1 1" ] ||
    die "the CN refusal is not in its egress ledger: $(sqlite3 "$T/cn.db" "SELECT * FROM aggregate_egress")"
OUTPOST_DB="$T/cn.db" expect_exit 0 "$OUTPOST" egress-report
expect_contains "$OUT" "$AGG  via segment to mailbox:1 in segment"
expect_contains "$OUT" "refused (no cells): $AGG is not allowed by the CN policy (aggregates.queries)"
expect_contains "$OUT" "aggregates sent: 1 (1 of them refusals)"

# ---- the same table over HTTP, for an analyst ----
BASE="http://127.0.0.1:$HQ_PORT"
# req METHOD PATH TOKEN [curl args...]: status in $STATUS, body in $T/body
req() {
    local method=$1 path=$2 token=$3
    shift 3
    local args=(-s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    STATUS=$(curl "${args[@]}" "$@" "$BASE$path") || die "curl $method $path failed"
}
expect_status() { [ "$STATUS" = "$1" ] || die "expected HTTP $1, got $STATUS: $(cat "$T/body")"; }
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" analyst add hq-analyst
ANA=$(cat "$OUT")
[ "${#ANA}" = 64 ] || die "analyst add printed no token: $(cat "$OUT" "$ERR")"
expect_contains "$ERR" "shown only now"
grep -q "$ANA" "$HQDB" && die "the analyst's token is stored in clear"
req GET "/api/v1/aggregates/$AGG?format=json&max_age=6" "$ANA"
expect_status 200
cp "$T/body" "$T/http.json"
"$OUTPOST_HQ" --db "$HQDB" aggregate "$AGG" --format json --max-age 6 >"$T/cli.json" || die "aggregate"
python3 - "$T/http.json" "$T/cli.json" <<'PY' || die "HTTP and command tables differ"
import json, sys
h, c = (json.load(open(p)) for p in sys.argv[1:3])
for t in (h, c):
    t.pop("generated_at")
    for r in t["regions"]:
        r.pop("age_s", None)  # a second may pass between the two
assert h == c, (h, c)
st = {r["node"]: r["status"] for r in h["regions"]}
assert st == {"de": "stale", "ca": "answered", "cn": "refused"}, st
PY
req GET "/api/v1/aggregates/$AGG?format=csv&max_age=6" "$ANA"
expect_status 200
expect_contains "$T/headers" "text/csv"
expect_contains "$T/body" "region,CN,cn,refused,"
expect_contains "$T/body" "region,EU-DE,de,stale,"
expect_contains "$T/body" "combined,,,,,(none),CA,30,,,"
req GET "/api/v1/aggregates?max_age=6" "$ANA"
expect_status 200
expect_contains "$T/body" "{\"name\":\"$AGG\",\"answered\":1,\"stale\":1,\"refused\":1,\"no_answer\":0,"
# a node's token reads no aggregate; an analyst's uploads nothing
NODE_TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/cred.json")
req GET "/api/v1/aggregates/$AGG" "$NODE_TOKEN"
expect_status 403
expect_contains "$T/headers" "application/problem+json"
expect_contains "$T/body" "this is the token of node ca"
receipts_before=$(sqlite3 "$HQDB" "SELECT count(*) FROM receipts")
uploads_before=$(ls "$T/hq-uploads" | grep -c '\.state$')
req POST /files/ "$ANA" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 10' \
    -H "Upload-Metadata: node $(printf ca | base64 -w0),segment $(printf 99 | base64 -w0)"
expect_status 401
expect_contains "$T/headers" "application/problem+json"
[ "$(ls "$T/hq-uploads" | grep -c '\.state$')" = "$uploads_before" ] || die "an analyst's upload was stored"
[ "$(sqlite3 "$HQDB" "SELECT count(*) FROM receipts")" = "$receipts_before" ] || die "receipts changed"
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" analyst list
expect_contains "$OUT" "hq-analyst"
expect_not_contains "$OUT" "$ANA"
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" analyst revoke hq-analyst
expect_exit 5 "$OUTPOST_HQ" --db "$HQDB" analyst revoke nobody
expect_exit 4 "$OUTPOST_HQ" --db "$HQDB" analyst add hq-analyst
expect_exit 3 "$OUTPOST_HQ" --db "$HQDB" analyst add "bad name"
expect_exit 2 "$OUTPOST_HQ" --db "$HQDB" analyst
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" analyst list --json
expect_contains "$OUT" '{"name":"hq-analyst","status":"revoked","created":"'
expect_not_contains "$OUT" '"last_used":null' # it read the table above
[ "$(sqlite3 "$HQDB" "SELECT count(*) FROM analysts")" = 1 ] || die "a refused add wrote"
req GET "/api/v1/aggregates/$AGG" "$ANA"
expect_status 401
expect_contains "$T/body" "revoked"

# the standing aggregate left unasked, once, and HQ holds it
[ "$(sqlite3 "$T/ca.db" "SELECT count(*) FROM aggregate_egress WHERE requester = 'standing'
                         AND name = 'activities_by_channel_week'")" = 1 ] ||
    die "the standing aggregate was not sent once: $(sqlite3 "$T/ca.db" "SELECT requester, name FROM aggregate_egress")"
[ "$(sqlite3 "$T/de.db" "SELECT count(*) FROM aggregate_egress WHERE requester = 'standing'")" = 0 ] ||
    die "EU-DE names no standing aggregate but sent one"
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" aggregate activities_by_channel_week --format json
expect_contains "$OUT" '"node":"ca","region":"US-CA","computed_at"'
expect_contains "$OUT" '"status":"answered","params":{"quarter":"'

# canaries: nowhere at HQ, in any record or answer
"$OUTPOST_HQ" --db "$HQDB" records --json >"$T/hq.jsonl" || die "records"
expect_not_contains "$T/hq.jsonl" CANARY
sqlite3 "$HQDB" .dump | grep -q CANARY && die "a canary reached HQ's store"
pass
