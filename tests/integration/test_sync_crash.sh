#!/bin/bash
# Crash loop: kill -9 outpostd and outpost-hq at seeded random moments
# while a node syncs 3,000 contacts plus updates to HQ (through the proxy at
# 512 kbit/s so the sync lasts long enough to be hit), restart whichever
# died, many times; then let it drain. The end state must be the one a sync
# without crashes gives: HQ holds exactly the permitted projection of every
# live record, each once, and both databases pass their checks. The
# updates edit the region, which leaves KE as is, so they travel as patches
# against what HQ acknowledged and kills land between a patch's cut and its
# receipt too. A node
# restarted in an even round sends each upload's first bytes with its
# creation (sync_create_with_data), in an odd one it does not, so kills land
# in both kinds of creation and in the switch between them.
# SYNC_SEED replays the kill schedule and the proxy's cuts.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
SEED=${SYNC_SEED:-$(date +%s)}
ROUNDS=${SYNC_CRASH_ROUNDS:-12}
echo "seed $SEED (SYNC_SEED=$SEED replays), $ROUNDS kill rounds"
RANDOM=$SEED

init_node KE
import_contacts 3000 11
hq_enrol crash-1 KE

start_hq "$HQDB"
start_proxy "$HQ_PORT" --seed "$SEED" --rate-kbit 512
NODE_ARGS=(--sync_interval_ms 200 --segment_bytes 16KB)
start_node "http://127.0.0.1:$PROXY_PORT" "${NODE_ARGS[@]}"

sqlite3 "$OUTPOST_DB" "SELECT id, version FROM contacts ORDER BY id LIMIT 300" | tr '|' ' ' >"$T/ids"
kills_node=0 kills_hq=0
for round in $(seq 1 "$ROUNDS"); do
    # a few updates per round, so changes keep arriving between crashes
    sed -n "$(((round - 1) * 25 + 1)),$((round * 25))p" "$T/ids" | while read -r id v; do
        "$OUTPOST" contact update --version "$v" "$id" --region "round $round" >/dev/null ||
            echo "update $id failed" >>"$T/upd.err"
    done
    sleep "0.$((RANDOM % 9 + 1))"
    case $((RANDOM % 3)) in
    0 | 1)
        kill -9 "$NODE_PID"
        wait "$NODE_PID" 2>/dev/null
        kills_node=$((kills_node + 1))
        with_data=$([ $((round % 2)) = 0 ] && echo true || echo false)
        start_node "http://127.0.0.1:$PROXY_PORT" "${NODE_ARGS[@]}" \
            --sync_create_with_data "$with_data"
        ;;
    2)
        kill -9 "$HQ_PID"
        wait "$HQ_PID" 2>/dev/null
        kills_hq=$((kills_hq + 1))
        # HQ comes back at the same address, behind the same proxy
        HQ_SAME_PORT=1 start_hq "$HQDB"
        ;;
    esac
done
[ ! -s "$T/upd.err" ] || die "updates failed: $(head "$T/upd.err")"
echo "killed outpostd $kills_node times and outpost-hq $kills_hq times"

wait_drained 600
sqlite3 "$OUTPOST_DB" "SELECT street FROM contacts WHERE street <> ''" >"$T/forbidden"
hq_compare crash-1
# The comparison includes each record's version, so every update made
# between the crashes is at HQ in its latest version; the updated records
# must be there at version 2.
updated=$(grep -c '"version":2[,}]' "$T/hq.jsonl")
[ "$updated" -ge $((ROUNDS * 25)) ] || die "only $updated records at version 2 at HQ"
expect_exit 0 "$OUTPOST" check
pass
