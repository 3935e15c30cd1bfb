#!/bin/bash
# Bulk create over the API (docs/API.md, "Bulk create"): the import's
# duplicate choices (refuse, skip, update with the version check, new) on
# POST /api/v1/contacts/bulk, the answer per item with the existing id and
# the rule, bad items refused all together naming index and field with the
# database unchanged, a dry run that changes nothing, roles as for a single
# create, a replayed Idempotency-Key, and the created records queued for
# HQ in the outbox as single creates are.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
need python3 sqlite3
init_node EU-DE
for u in ana:field ben:field maria:manager root:admin hq:hq; do
    add_user "${u%%:*}" "${u##*:}"
done
start_outpostd --workers 2
ANA=$(login ana)
BEN=$(login ben)
MARIA=$(login maria)
ROOT=$(login root)
HQ=$(login hq)

# jq-like checks with python: `check EXPR` fails unless EXPR (python, with
# the last body as `a`) is true; `get EXPR` prints it.
check() {
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$OUT" "$1" || die "check failed: $1 on $(cat "$OUT")"
}
get() { python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$OUT" "$1"; }
# Every table but the sessions (each request touches them) and, of the
# node's settings, the clock's high-water mark: a refused bulk create or a
# dry run had stamped records before it rolled them back, and the clock
# never goes back (docs/API.md, "Bulk create").
unchanged() {
    db_checksum "$OUTPOST_DB" sessions api_tokens node_meta
    sqlite3 "$OUTPOST_DB" "SELECT key, value FROM node_meta WHERE key <> 'hlc' ORDER BY key"
}
contacts() { sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts"; }

BULK=/api/v1/contacts/bulk
req POST /api/v1/contacts "$MARIA" \
    '{"given_name":"José","family_name":"Müller","email":"jose@example.org","phone":"+49 30 1234567","street":"Piotrkowska 12","locality":"Łódź"}'
expect_status 201
JOSE=$(json_field id)

# ---- bad input: a clear error, nothing written ---------------------------
before=$(unchanged)
expect_req 400 "the body must be a JSON array" POST "$BULK" "$MARIA" '{"given_name":"A"}'
expect_req 400 "invalid JSON at line 1" POST "$BULK" "$MARIA" '[{"given_name":"A"}'
expect_req 422 "send 1 to 1000 contacts" POST "$BULK" "$MARIA" '[]'
big=$(python3 -c 'import json; print(json.dumps([{"family_name": "N%d" % i} for i in range(1001)]))')
expect_req 413 "not 1001; send them in parts" POST "$BULK" "$MARIA" "$big"
expect_req 400 "unknown query parameter 'skip'" POST "$BULK?skip=1" "$MARIA" '[{"family_name":"A"}]'
expect_req 400 "on_duplicate: expected refuse, skip, update or new" POST "$BULK?on_duplicate=merge" \
    "$MARIA" '[{"family_name":"A"}]'
expect_req 400 "dry_run: expected true or false" POST "$BULK?dry_run=perhaps" "$MARIA" \
    '[{"family_name":"A"}]'
# Bad items: every one named by index and field; the good ones before and
# after them are not written either.
req POST "$BULK?on_duplicate=skip" "$MARIA" \
    '[{"family_name":"Good"},{"family_name":"B","email":"bob@"},{"family_name":"C","shoe_size":"44"},"text",{"family_name":"D","version":0},{"family_name":"Good2"}]'
expect_status 422
check 'a["detail"].startswith("item 3: a contact must be a JSON object")'
check '"nothing was written" in a["detail"]'
check '[e["pointer"] for e in a["errors"]] == ["/3", "/4/version"]'
# the shape is checked first; with it right, the store's refusals
req POST "$BULK?on_duplicate=skip" "$MARIA" \
    '[{"family_name":"Good"},{"family_name":"B","email":"bob@"},{"family_name":"C","shoe_size":"44"},{"family_name":"E","custom":{"nope":1}},{"family_name":"Good2"}]'
expect_status 422
check '[e["pointer"] for e in a["errors"]] == ["/1/email", "/2/shoe_size", "/3/custom/nope"]'
check 'a["errors"][1]["detail"].startswith("item 2: shoe_size: unknown field")'
check 'a["detail"].startswith("item 1: email: not an e-mail address") and "3 items were refused" in a["detail"]'
[ "$(unchanged)" = "$before" ] || die "a refused bulk create changed the database"

# ---- roles as for a single create ------------------------------------------
expect_req 403 "" POST "$BULK" "$ROOT" '[{"family_name":"A"}]'
expect_req 403 "" POST "$BULK" "$HQ" '[{"family_name":"A"}]'
req GET /api/v1/users "$MARIA"
ANA_ID=$(python3 -c 'import json,sys; print([u["id"] for u in json.load(open(sys.argv[1]))["items"] if u["name"]=="ana"][0])' "$OUT")
req POST "$BULK" "$BEN" "[{\"family_name\":\"Mine\"},{\"family_name\":\"Planted\",\"owner_id\":\"$ANA_ID\"}]"
expect_status 403
check 'a["errors"][0]["pointer"] == "/1/owner_id"'
expect_req 405 "allowed: POST" GET "$BULK" "$MARIA"
[ "$(unchanged)" = "$before" ] || die "a refused bulk create changed the database"

# ---- a dry run answers as the real thing and writes nothing ---------------
req POST "$BULK?on_duplicate=update&dry_run=true" "$MARIA" \
    '[{"family_name":"Mueller","given_name":"Jose","email":"JOSE@example.org","job_title":"Buyer"},{"family_name":"Fresh"}]'
expect_status 200
check 'a["dry_run"] is True and a["on_duplicate"] == "update"'
check "a['items'][0]['result'] == 'updated' and a['items'][0]['existing_id'] == '$JOSE'"
check 'a["items"][0]["rule"] == "same e-mail address"'
check 'a["items"][1]["result"] == "created" and "id" not in a["items"][1]'
check 'a["summary"] == {"received": 2, "created": 1, "updated": 1, "skipped": 0, "refused": 0, "conflicts": 0, "duplicates": 1, "warnings": 0}'
[ "$(unchanged)" = "$before" ] || die "a dry run changed the database"

# ---- the choices ---------------------------------------------------------
n0=$(contacts)
# refuse (the default): the duplicate is not written, the rest is
req POST "$BULK" "$MARIA" '[{"family_name":"Other","email":"jose@example.org"},{"family_name":"Alpha","email":"alpha@example.org"}]'
expect_status 200
check "a['items'][0] == {'index': 0, 'result': 'refused', 'existing_id': '$JOSE', 'rule': 'same e-mail address'}"
check 'a["items"][1]["result"] == "created" and a["items"][1]["version"] == 1'
ALPHA=$(get 'a["items"][1]["id"]')
[ "$(contacts)" = $((n0 + 1)) ] || die "refuse: expected one new contact"
req GET "/api/v1/contacts/$ALPHA" "$MARIA"
expect_status 200
# skip: phone spelled another way; within one request a later item
# matches an earlier one
req POST "$BULK?on_duplicate=skip" "$MARIA" \
    '[{"family_name":"Someone","phone":"030 1234567"},{"family_name":"Beta","email":"beta@example.org"},{"family_name":"Beta again","email":"Beta@Example.org"}]'
expect_status 200
check "a['items'][0]['result'] == 'skipped' and a['items'][0]['existing_id'] == '$JOSE' and a['items'][0]['rule'] == 'same phone number'"
BETA=$(get 'a["items"][1]["id"]')
check "a['items'][2]['result'] == 'skipped' and a['items'][2]['existing_id'] == '$BETA'"
check 'a["summary"]["skipped"] == 2 and a["summary"]["created"] == 1'
[ "$(contacts)" = $((n0 + 2)) ] || die "skip: expected one more contact"
# update, with the version check: the item's version is its If-Match
req POST "$BULK?on_duplicate=update" "$MARIA" \
    '[{"given_name":"Jose","family_name":"Muller","email":"jose@example.org","job_title":"Buyer","version":1}]'
expect_status 200
check "a['items'][0] == {'index': 0, 'result': 'updated', 'id': '$JOSE', 'version': 2, 'existing_id': '$JOSE', 'rule': 'same e-mail address'}"
expect_req 200 '"job_title":"Buyer"' GET "/api/v1/contacts/$JOSE" "$MARIA"
expect_contains "$OUT" '"given_name":"Jose"'
expect_contains "$OUT" '"street":"Piotrkowska 12"' # null or absent fields never clear
req POST "$BULK?on_duplicate=update" "$MARIA" \
    '[{"family_name":"Muller","email":"jose@example.org","job_title":"Seller","version":1}]'
expect_status 200
check "a['items'][0]['result'] == 'conflict' and a['items'][0]['existing_id'] == '$JOSE'"
check '"at version 2, not 1" in a["items"][0]["detail"] and a["summary"]["conflicts"] == 1'
expect_req 200 '"job_title":"Buyer"' GET "/api/v1/contacts/$JOSE" "$MARIA"
# new: created all the same, saying what it matched
req POST "$BULK?on_duplicate=new" "$MARIA" '[{"family_name":"Twin","phone":"+49 30 1234567"}]'
expect_status 200
check "a['items'][0]['result'] == 'created' and a['items'][0]['existing_id'] == '$JOSE' and a['items'][0]['rule'] == 'same phone number'"
check 'a["summary"]["duplicates"] == 1 and a["summary"]["created"] == 1'
TWIN=$(get 'a["items"][0]["id"]')
[ "$(contacts)" = $((n0 + 3)) ] || die "new: expected one more contact"

# ---- a field user: own records, duplicates they may not see --------------
req POST /api/v1/contacts "$BEN" '{"family_name":"Bens","email":"bens@example.org"}'
expect_status 201
req POST "$BULK?on_duplicate=update" "$ANA" '[{"family_name":"Anas","email":"anas@example.org"},{"family_name":"X","email":"bens@example.org"}]'
expect_status 200
check 'a["items"][1]["result"] == "refused" and "existing_id" not in a["items"][1]'
check '"is not yours" in a["items"][1]["rule"]'
ANAS=$(get 'a["items"][0]["id"]')
[ "$(sqlite3 "$OUTPOST_DB" "SELECT owner_id FROM contacts WHERE id = '$ANAS'")" = "$ANA_ID" ] ||
    die "a field user's bulk create is not theirs"

# ---- Idempotency-Key: a replay answers the first answer, writes nothing --
KEY='Idempotency-Key: 0193a4c2-5a8e-7c1b-9f00-bulk00000001'
body='[{"family_name":"Gamma","email":"gamma@example.org"},{"family_name":"Alpha","email":"alpha@example.org"}]'
req POST "$BULK?on_duplicate=skip" "$MARIA" "$body" "$KEY"
expect_status 200
cp "$OUT" "$T/first.json"
[ -z "$(header Idempotency-Replayed)" ] || die "a first request marked as replayed"
n1=$(contacts)
req POST "$BULK?on_duplicate=skip" "$MARIA" "$body" "$KEY"
expect_status 200
[ "$(header Idempotency-Replayed)" = true ] || die "no Idempotency-Replayed on a replay"
cmp -s "$OUT" "$T/first.json" || die "the replay answered $(cat "$OUT"), first $(cat "$T/first.json")"
[ "$(contacts)" = "$n1" ] || die "a replay created records"
expect_req 422 "Idempotency-Key: this key was already used" POST "$BULK?on_duplicate=skip" \
    "$MARIA" '[{"family_name":"Delta"}]' "$KEY"
expect_req 400 "Idempotency-Key: expected 8 to 128" POST "$BULK" "$MARIA" "$body" \
    'Idempotency-Key: short'
[ "$(contacts)" = "$n1" ] || die "a refused key created records"

# ---- residency: the records are queued for HQ as single creates are ------
req POST /api/v1/contacts "$MARIA" '{"family_name":"Single","email":"single@example.org"}'
SINGLE=$(json_field id)
req POST /api/v1/contacts "$MARIA" '{"family_name":"Single kept","restricted":true}'
SINGLE_R=$(json_field id)
req POST "$BULK" "$MARIA" '[{"family_name":"Bulk","email":"bulk@example.org"},{"family_name":"Bulk kept","restricted":true}]'
expect_status 200
B1=$(get 'a["items"][0]["id"]')
B2=$(get 'a["items"][1]["id"]')
queued() { sqlite3 "$OUTPOST_DB" "SELECT group_concat(op || ':' || priority || ':' || version) FROM outbox WHERE entity = 'contact' AND record_id = '$1'"; }
[ -n "$(queued "$SINGLE")" ] || die "a single create is not in the outbox"
[ "$(queued "$B1")" = "$(queued "$SINGLE")" ] || die "bulk: outbox '$(queued "$B1")', single '$(queued "$SINGLE")'"
[ "$(queued "$B2")" = "$(queued "$SINGLE_R")" ] ||
    die "bulk restricted: outbox '$(queued "$B2")', single '$(queued "$SINGLE_R")'"
for id in "$ALPHA" "$BETA" "$TWIN" "$ANAS"; do
    [ -n "$(queued "$id")" ] || die "$id is not in the outbox"
done
# the update of a duplicate is queued too, at its new version
[ "$(sqlite3 "$OUTPOST_DB" "SELECT max(version) FROM outbox WHERE record_id = '$JOSE'")" = 2 ] ||
    die "the updated duplicate is not queued at version 2"

stop_outpostd
echo "ok"
