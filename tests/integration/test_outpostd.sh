#!/bin/bash
# outpostd end to end over HTTP on 127.0.0.1 with a port it picks: login,
# roles, CRUD with ETags, duplicates, validation errors, lists, search,
# consents, metrics, reload and graceful stop; log lines with the priority
# journald reads (<3> err ... <7> debug) and the log_level threshold.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
init_node EU-DE
for u in ana:field ben:field maria:manager root:admin hq:hq; do
    add_user "${u%%:*}" "${u##*:}"
done
start_outpostd --workers 2

expect_req 200 '"status":"ok"' GET /healthz
req GET /api/v1/contacts
expect_status 401
[ -n "$(header WWW-Authenticate)" ] || die "401 without WWW-Authenticate"
expect_contains "$OUT" '"status":401'
req GET /api/v1/contacts "not-a-token"
expect_status 401
expect_req 401 "wrong user name or password" POST /api/v1/session "" \
    '{"name":"ana","password":"wrong password!"}'
expect_req 401 "wrong user name or password" POST /api/v1/session "" \
    '{"name":"nobody","password":"wrong password!"}'
req GET /nowhere
expect_status 404

ANA=$(login ana)
BEN=$(login ben)
MARIA=$(login maria)
ROOT=$(login root)
HQ=$(login hq)
[ -n "$ANA" ] && [ -n "$MARIA" ] || die "no token"

# Create, read, update with ETags.
req POST /api/v1/contacts "$ANA" \
    '{"given_name":"José","family_name":"Müller","email":"jose@example.org","locality":"Łódź"}'
expect_status 201
ID=$(json_field id)
[ "$(header Location)" = "/api/v1/contacts/$ID" ] || die "Location: $(header Location)"
[ "$(header ETag)" = '"1"' ] || die "ETag on create: $(header ETag)"
expect_req 200 '"given_name":"José"' GET "/api/v1/contacts/$ID" "$ANA"
req PATCH "/api/v1/contacts/$ID" "$ANA" '{"job_title":"Buyer"}'
expect_status 428
req PATCH "/api/v1/contacts/$ID" "$ANA" '{"job_title":"Buyer"}' 'If-Match: "7"'
expect_status 412
req PATCH "/api/v1/contacts/$ID" "$ANA" '{"job_title":"Buyer"}' 'If-Match: "1"'
expect_status 200
[ "$(header ETag)" = '"2"' ] || die "ETag after update: $(header ETag)"
expect_contains "$OUT" '"job_title":"Buyer"'

# Duplicates, validation, malformed bodies.
expect_req 409 "\"existing_id\":\"$ID\"" POST /api/v1/contacts "$ANA" \
    '{"given_name":"J","email":"JOSE@example.org"}'
req POST "/api/v1/contacts?skip_duplicate_check=true" "$ANA" '{"given_name":"J","email":"JOSE@example.org"}'
expect_status 201
expect_req 422 '"pointer":"/email"' POST /api/v1/contacts "$ANA" \
    '{"given_name":"Ana","email":"ana@"}'
expect_req 422 '"pointer":"/shoe_size"' POST /api/v1/contacts "$ANA" \
    '{"given_name":"Ana","shoe_size":42}'
expect_req 400 "invalid JSON at line 1" POST /api/v1/contacts "$ANA" '{"given_name": "Ana",'
req POST /api/v1/contacts "$ANA" '["not","an","object"]'
expect_status 400
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' -X POST -H "Authorization: Bearer $ANA" \
    -H 'Content-Type: text/plain' --data 'x' "$BASE/api/v1/contacts")
expect_status 415
req PUT "/api/v1/contacts/$ID" "$ANA" '{}'
expect_status 405

# Lists with a cursor, filters, search.
for i in 1 2 3 4 5; do
    req POST /api/v1/contacts "$ANA" "{\"given_name\":\"P$i\",\"email\":\"p$i@example.org\"}"
    expect_status 201
done
req GET "/api/v1/contacts?limit=3" "$ANA"
expect_status 200
CURSOR=$(json_field next_cursor)
[ -n "$CURSOR" ] || die "no next_cursor on a full page"
req GET "/api/v1/contacts?limit=3&cursor=$CURSOR" "$ANA"
expect_status 200
[ "$(grep -o '"id":' "$OUT" | wc -l)" = 3 ] || die "second page should have 3 items"
req GET "/api/v1/contacts?limit=3&cursor=$(json_field next_cursor)" "$ANA"
expect_contains "$OUT" '"next_cursor":null'
expect_req 400 "unknown query parameter 'colour'" GET "/api/v1/contacts?colour=blue" "$ANA"
req GET "/api/v1/contacts?limit=0" "$ANA"
expect_status 400
expect_req 200 '"label":"José Müller"' GET "/api/v1/search?q=lodz" "$ANA"
req GET "/api/v1/search" "$ANA"
expect_status 400
expect_req 400 "limit: expected a whole number from 1 to 200" \
    GET "/api/v1/search?q=jose&limit=10abc" "$ANA"
expect_req 400 "query parameter 'q' is badly encoded" GET "/api/v1/search?q=%zz" "$ANA"

# Roles: another field user cannot see Ana's contact; a manager can.
req GET "/api/v1/contacts/$ID" "$BEN"
expect_status 404
req GET "/api/v1/search?q=jose" "$BEN"
expect_not_contains "$OUT" "$ID"
req GET "/api/v1/contacts/$ID" "$MARIA"
expect_status 200
req POST /api/v1/contacts "$BEN" "{\"given_name\":\"Zed\",\"owner_id\":\"$(json_field owner_id)\"}"
expect_status 403

# A field user cannot take, unrestrict or probe: a shared restricted record
# stays shared and restricted; Ana's private contact is neither named by
# the duplicate check nor reachable by a note.
req POST /api/v1/contacts "$MARIA" '{"given_name":"Pool","owner_id":null,"restricted":true}'
expect_status 201
POOL=$(json_field id)
req POST /api/v1/contacts "$BEN" '{"given_name":"Bens own"}'
expect_status 201
BEN_ID=$(json_field owner_id)
expect_req 403 "only a manager can change who owns a record" \
    PATCH "/api/v1/contacts/$POOL" "$BEN" "{\"owner_id\":\"$BEN_ID\"}" 'If-Match: *'
expect_req 403 "only a manager can clear the restricted flag" \
    PATCH "/api/v1/contacts/$POOL" "$BEN" '{"restricted":false}' 'If-Match: *'
expect_req 200 '"restricted":true' GET "/api/v1/contacts/$POOL" "$ANA"
expect_contains "$OUT" '"version":1'
req POST /api/v1/contacts "$BEN" '{"given_name":"Jo","email":"jose@example.org"}'
expect_status 409
expect_contains "$OUT" "exists and is not yours"
expect_not_contains "$OUT" "$ID"
expect_req 422 "contact_id: no contact with id $ID" \
    POST /api/v1/notes "$BEN" "{\"body\":\"hi\",\"contact_id\":\"$ID\"}"
req PATCH "/api/v1/contacts/$POOL" "$MARIA" '{"restricted":false}' 'If-Match: *'
expect_status 200

req GET /api/v1/contacts "$HQ"
expect_status 403
req GET /api/v1/contacts "$ROOT"
expect_status 403
req GET /metrics "$ANA"
expect_status 403

# Consents.
req POST "/api/v1/contacts/$ID/consents" "$ANA" \
    '{"channel":"email","purpose":"newsletter","method":"double_opt_in","evidence":{"source":"web form"}}'
expect_status 201
CID=$(json_field id)
expect_contains "$OUT" '"status":"pending"'
expect_contains "$OUT" '"ip":"127.0.0.1"'
expect_req 200 "$CID" GET "/api/v1/contacts/$ID/consents" "$ANA"
expect_req 200 '"status":"withdrawn"' POST "/api/v1/contacts/$ID/consents/$CID/withdraw" "$ANA"
req POST "/api/v1/contacts/$ID/consents" "$BEN" '{"channel":"email","purpose":"x","method":"opt_out"}'
expect_status 404

# Double opt-in end to end: only a manager receives the token (to forward
# the link); the contact confirms without credentials, exactly once.
DOI='{"channel":"email","purpose":"offers","method":"double_opt_in","evidence":{"source":"web form"}}'
req POST "/api/v1/contacts/$ID/consents" "$ANA" "$DOI"
expect_status 201
expect_not_contains "$OUT" "confirmation_token"
req POST "/api/v1/contacts/$ID/consents" "$MARIA" "$DOI"
expect_status 201
TOK=$(json_field confirmation_token)
[ "${#TOK}" = 43 ] || die "expected a 43-character confirmation token: $(cat "$OUT")"
expect_req 422 "status: not accepted" POST "/api/v1/contacts/$ID/consents" "$ANA" \
    '{"channel":"email","purpose":"x","method":"opt_out","status":"granted"}'
expect_req 200 '"allowed":false' \
    GET "/api/v1/contacts/$ID/consents/status?channel=email&purpose=offers" "$ANA"
expect_contains "$OUT" '"state":"pending"'
expect_contains "$OUT" "EU-DE email is double opt-in"
req GET "/api/v1/contacts/$ID/consents/status?channel=email" "$ANA"
expect_status 400
req GET "/api/v1/contacts/$ID/consents/status?channel=email&purpose=offers" "$BEN"
expect_status 404
expect_req 404 "unknown confirmation token" POST /api/v1/consents/confirm "" \
    '{"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'
req GET /api/v1/consents/confirm
expect_status 405
expect_req 200 '"status":"granted"' POST /api/v1/consents/confirm "" "{\"token\":\"$TOK\"}"
expect_req 409 "already used" POST /api/v1/consents/confirm "" "{\"token\":\"$TOK\"}"
req GET "/api/v1/contacts/$ID/consents/status?channel=email&purpose=offers" "$ANA"
expect_contains "$OUT" '"allowed":true'
CID2=$(json_field consent_id)
expect_req 200 '"status":"withdrawn"' POST "/api/v1/contacts/$ID/consents/$CID2/withdraw" "$ANA"
req GET "/api/v1/contacts/$ID/consents/status?channel=email&purpose=offers" "$ANA"
expect_contains "$OUT" '"allowed":false'
expect_contains "$OUT" "suppression list"

# Delete leaves a tombstone.
req DELETE "/api/v1/contacts/$ID" "$ANA" "" 'If-Match: "1"'
expect_status 412
req DELETE "/api/v1/contacts/$ID" "$ANA" "" 'If-Match: "2"'
expect_status 204
req GET "/api/v1/contacts/$ID" "$ANA"
expect_status 404

# Metrics for a manager.
expect_req 200 'outpost_http_requests_total{route="/api/v1/contacts/{id}",status="412"}' \
    GET /metrics "$MARIA"
expect_contains "$OUT" 'outpost_http_request_duration_seconds_bucket{route="/api/v1/contacts",le="+Inf"}'
expect_contains "$OUT" "outpost_http_open_connections"
expect_contains "$OUT" "outpost_db_size_bytes"

# The audit log names the user and the address of every write.
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM audit_log WHERE record_id = '$ID' AND actor = 'ana' AND address = '127.0.0.1'")" = 3 ] ||
    die "audit rows for $ID: $(sqlite3 "$OUTPOST_DB" "SELECT action, actor, address FROM audit_log WHERE record_id = '$ID'")"
grep -q "PATCH /api/v1/contacts/$ID 412 .* ana 127.0.0.1:" "$T/daemon.log" || die "no request log line"

# Logout ends the session.
req DELETE /api/v1/session "$ANA"
expect_status 204
req GET /api/v1/contacts "$ANA"
expect_status 401

# A bad config on SIGHUP is refused and the daemon keeps serving.
printf 'listen = 127.0.0.1:0\nworkers = many\n' >"$T/bad.conf"
kill $DPID
wait $DPID
rc=$?
[ $rc = 0 ] || die "outpostd exited $rc on SIGTERM: $(tail -5 "$T/daemon.log")"
grep -q "outpostd: stopped" "$T/daemon.log" || die "no clean stop in the log"
[ ! -s "$OUTPOST_DB-wal" ] || die "WAL not checkpointed on stop"

# Every line starts with its priority for the journal: start and stop are
# notices, a request is info.
grep -q "^<5>outpostd: serving the API on http://127.0.0.1:$PORT/ (port $PORT)" "$T/daemon.log" ||
    die "no start line at notice: $(head -n 3 "$T/daemon.log")"
grep -q "^<6>outpostd: PATCH /api/v1/contacts/$ID 412 " "$T/daemon.log" ||
    die "no request line at info"
grep -q "^<5>outpostd: stopped$" "$T/daemon.log" || die "no stop line at notice"
if grep -qv '^<[3-7]>outpostd: ' "$T/daemon.log"; then
    die "lines without a priority: $(grep -v '^<[3-7]>outpostd: ' "$T/daemon.log" | head -n 3)"
fi

expect_exit 2 "$OUTPOSTD" --config "$T/bad.conf" --db "$OUTPOST_DB"
expect_contains "$ERR" "<3>outpostd: $T/bad.conf:2: workers: expected a whole number"
expect_exit 2 "$OUTPOSTD" --db "$OUTPOST_DB" --colour blue
expect_contains "$ERR" "unknown key 'colour'"
expect_exit 1 "$OUTPOSTD" --db "$T/none.db" --listen 127.0.0.1:0
expect_contains "$ERR" "none.db"
expect_exit 0 "$OUTPOSTD" --version

printf 'db = %s\nlisten = 127.0.0.1:0\n' "$OUTPOST_DB" >"$T/good.conf"
"$OUTPOSTD" --config "$T/good.conf" 2>"$T/daemon2.log" &
DPID=$!
track $DPID
wait_grep "$T/daemon2.log" "(port" 100
PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/daemon2.log")
BASE="http://127.0.0.1:$PORT"
cp "$T/bad.conf" "$T/good.conf"
kill -HUP $DPID
wait_grep "$T/daemon2.log" "reload refused"
expect_contains "$T/daemon2.log" "<3>outpostd: reload refused, keeping the running config"
expect_contains "$T/daemon2.log" "good.conf:2: workers"
req GET /healthz
expect_status 200

# log_level = warning on a reload: what is less severe is left out from
# then on (the reload's own notice, requests, the stop), a warning is not.
printf 'db = %s\nlisten = 127.0.0.1:0\nworkers = 2\nlog_level = warning\n' "$OUTPOST_DB" \
    >"$T/good.conf"
kill -HUP $DPID
wait_grep "$T/daemon2.log" "take effect after a restart"
expect_contains "$T/daemon2.log" "<4>outpostd: listen, db, tls and workers changes take effect"
lines=$(wc -l <"$T/daemon2.log")
req GET /healthz
expect_status 200
kill $DPID
wait $DPID || die "second outpostd did not stop cleanly"
[ "$(wc -l <"$T/daemon2.log")" = "$lines" ] ||
    die "lines below warning after log_level = warning: $(tail -n +"$((lines + 1))" "$T/daemon2.log")"
expect_exit 2 "$OUTPOSTD" --db "$OUTPOST_DB" --log-level verbose
expect_contains "$ERR" "<3>outpostd: --log-level: log_level: expected err, warning, notice, info or debug, got 'verbose'"

# HQ unreachable (nothing listens on its port): the node starts (notice)
# and says at warning that sync cannot reach HQ, once.
printf '{"format":"outpost-node-credentials-1","node_id":"log-1","region":"EU-DE","token":"%s","hq_key":"%s"}\n' \
    "$(printf '%064d' 1)" "$(printf '%064d' 2)" >"$T/cred.json"
chmod 600 "$T/cred.json"
"$OUTPOSTD" --db "$OUTPOST_DB" --listen 127.0.0.1:0 --hq_credentials "$T/cred.json" \
    --hq_url http://127.0.0.1:1 --sync_interval_ms 200 2>"$T/daemon3.log" &
DPID=$!
track $DPID
wait_grep "$T/daemon3.log" '^<4>outpostd: sync: ' 100
grep -q '^<5>outpostd: serving the API on ' "$T/daemon3.log" ||
    die "no start line at notice: $(head -n 5 "$T/daemon3.log")"
grep -q '^<4>outpostd: sync: .*127.0.0.1' "$T/daemon3.log" ||
    die "HQ unreachable is not a warning: $(head -n 10 "$T/daemon3.log")"
kill $DPID
wait $DPID || die "third outpostd did not stop cleanly: $(tail -n 5 "$T/daemon3.log")"
pass
