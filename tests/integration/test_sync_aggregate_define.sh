#!/bin/bash
# An aggregate the region profile defines (aggregates.define), asked
# through the sync mailbox end to end: HQ asks the node by name
# (outpost-hq aggregate-request), the node answers in its next segment
# after disclosure control, HQ checks the answer against the node's policy
# and keeps it, and `outpost-hq aggregate NAME` shows it: counts beside
# folded and suppressed cells, no row-level value anywhere at HQ, and the
# answer in the node's egress ledger. A defined aggregate the profile does
# not list in aggregates.queries is refused, with the reason, at HQ.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup sqlite3 python3
mkdir -p "$T/regions"
cp "$TESTS_DIR/../schema/regions/"*.yaml "$T/regions/"
R="$T/regions/EU-DE.yaml"
sed -i 's/^  queries: \[\(.*\)$/  queries: [contacts_by_language_district, \1/' "$R"
cat >>"$R" <<'YAML'
  define:
    - {name: contacts_by_language_district, count: contact, rows: language, columns: region}
    - {name: contacts_by_country_x, count: contact, rows: country}
YAML
export OUTPOST_REGIONS_DIR="$T/regions"
start_hq "$HQDB"
AGG=contacts_by_language_district

add() { # N LANGUAGE REGION
    local i
    for i in $(seq 1 "$1"); do
        "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-g$i" \
            --family-name CANARY-f --locality CANARY-town --language "$2" \
            --region "$3" >/dev/null || die "contact add"
    done
}

export OUTPOST_DB="$T/de.db"
init_node EU-DE
hq_enrol de EU-DE
add 20 de-DE Bayern
add 12 en-GB Bayern
add 15 pl-PL Bayern
add 11 de-DE Berlin
add 10 en-GB Berlin
add 13 pl-PL Berlin
add 3 fr-FR Berlin
"$OUTPOST_HQ" --db "$HQDB" aggregate-request de "$AGG" >/dev/null 2>&1 || die "aggregate-request"
"$OUTPOST_HQ" --db "$HQDB" aggregate-request de contacts_by_country_x >/dev/null 2>&1 ||
    die "aggregate-request contacts_by_country_x"
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --spool_dir "$T/spool-de"
for k in $(seq 1 150); do
    n=$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM mailbox WHERE kind = 'aggregate_request' AND status != 'pending'")
    [ "$n" = 2 ] && break
    sleep 0.1
done
[ "$n" = 2 ] || die "the node did not answer both requests"
wait_drained 30
kill "$NODE_PID" && wait "$NODE_PID" 2>/dev/null

sqlite3 "$OUTPOST_DB" "SELECT via || ' ' || requester || ' ' || name FROM aggregate_egress" >"$T/ledger"
expect_contains "$T/ledger" "segment mailbox:1 $AGG"

expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" aggregate "$AGG" --format json
j="$OUT"
expect_not_contains "$j" "CANARY"
expect_not_contains "$j" "fr-FR"
python3 - "$j" <<'PY' || die "the table at HQ is wrong: $(cat "$j")"
import json, sys
t = json.load(open(sys.argv[1]))
st = {r["node"]: r for r in t["regions"]}
assert st["de"]["status"] == "answered", st["de"]
cols = t["cols"]
assert cols == ["Bayern", "Berlin"], cols
comb = {r["key"]: r["cells"] for r in t["combined"]}
assert [c["n"] for c in comb["de-DE"]] == [20, 11], comb["de-DE"]
assert comb["(other)"][cols.index("Berlin")]["n"] is None, comb["(other)"]
PY
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" aggregate contacts_by_country_x --format json
expect_contains "$OUT" '"status":"refused","reason":"contacts_by_country_x is not allowed by the EU-DE policy (aggregates.queries)"'
pass
