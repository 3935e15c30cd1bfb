#!/bin/bash
# Phone keys that change change pseudonyms: HQ must end with one pseudonym
# per person (docs/DATA_MODEL.md, "When the keys change"). An AR node holds
# one person twice: A typed nationally ("011 15-1234-5678") and B typed
# internationally ("+54 9 11 1234-5678"), and a third contact C whose key
# did not change. All reach HQ. HQ is then made to hold A as a node of the
# former normalizer sent it (the pseudonym of "+54111512345678", the key
# that normalizer made of A's text), and the node's database is put back
# as that normalizer left it. outpostd restarts: the re-key step gives A,
# and only A, a new version; it reaches HQ; and HQ holds A and B under one
# pseudonym again.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
unset OUTPOST_POLICY
init_node AR
hq_enrol branch-ar AR

add() { # $1 name, $2 phone
    "$OUTPOST" contact add --family-name "$1" --phone "$2" --skip-duplicate-check \
        >"$T/add.out" 2>&1 || { lib_show "$T/add.out"; die "contact add $1 failed"; }
    sed -n 's/^created contact \([0-9a-f-]*\) .*/\1/p' "$T/add.out"
}
A=$(add Alvarez "011 15-1234-5678")
B=$(add Alvarez "+54 9 11 1234-5678")
C=$(add Benitez "+54 11 4123-4567")
hq_phone() { # $1 id: the phone pseudonym and the version HQ holds
    sqlite3 "$HQDB" "SELECT json_extract(record, '\$.phone') || ' ' || version FROM records
                     WHERE node = 'branch-ar' AND id = '$1'"
}

start_hq "$HQDB"
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --segment_bytes 4096
wait_drained 60
a1=$(hq_phone "$A") b1=$(hq_phone "$B") c1=$(hq_phone "$C")
[ -n "$a1" ] && [ -n "$b1" ] && [ -n "$c1" ] || die "HQ did not get the three contacts"
[ "${a1% *}" = "${b1% *}" ] || die "one number typed two ways has two pseudonyms at HQ: $a1 / $b1"

# HQ as the former normalizer left it: A under the pseudonym of its former key
old=$(python3 - "$(sqlite3 "$OUTPOST_DB" "SELECT value FROM node_meta WHERE key = 'pseudonym_key'")" <<'PY'
import hashlib, hmac, sys
print('h:' + hmac.new(bytes.fromhex(sys.argv[1]), b'+54111512345678', hashlib.sha256).hexdigest()[:32])
PY
)
sqlite3 "$HQDB" "UPDATE records SET record = json_set(record, '\$.phone', '$old')
                 WHERE node = 'branch-ar' AND id = '$A'" || die "cannot set HQ's old copy"
[ "$(hq_phone "$A")" != "$(hq_phone "$B")" ] || die "the old pseudonym was not planted"

# ... and the node too: A's former key, no marker, and (as a node from
# before field-level deltas) no record of what HQ holds
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
sqlite3 "$OUTPOST_DB" "UPDATE contacts SET phone_e164 = '+54111512345678' WHERE id = '$A';
                       DELETE FROM node_meta WHERE key = 'phone_keys';
                       DELETE FROM egress_held" ||
    die "cannot put the node back"
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --segment_bytes 4096
wait_drained 60

a2=$(hq_phone "$A") b2=$(hq_phone "$B") c2=$(hq_phone "$C")
[ "${a2#* }" = 2 ] || die "A should reach HQ again at version 2, HQ holds: $a2"
[ "${a2% *}" = "${b2% *}" ] || die "HQ still holds A and B under two pseudonyms: $a2 / $b2"
[ "$b2" = "$b1" ] || die "B's pseudonym did not change and should not have been sent again: $b1 -> $b2"
[ "$c2" = "$c1" ] || die "C's pseudonym did not change and should not have been sent again: $c1 -> $c2"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM audit_log WHERE action = 'rekey'")" = 1 ] ||
    die "exactly one record should have been re-keyed"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT phone_e164 FROM contacts WHERE id = '$A'")" = "+5491112345678" ] ||
    die "A's key was not made again"
pass
