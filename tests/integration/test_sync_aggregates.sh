#!/bin/bash
# Aggregates through the sync mailbox, end to end, three nodes in three
# regions: HQ asks each node (outpost-hq aggregate-request), each node
# answers in its next segment after disclosure control, HQ checks the
# answer against the node's policy and keeps it, and `outpost-hq
# aggregate` combines the latest answer of every region: the CN node's
# policy refuses the aggregate and says why, the EU-DE node answered long
# enough ago to be stale (its age shown), suppressed cells stay suppressed
# in the combined row. Canaries planted in row-level fields appear nowhere
# at HQ, and each node's egress ledger holds the answer it sent.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup sqlite3
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
