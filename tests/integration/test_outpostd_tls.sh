#!/bin/bash
# outpostd over HTTPS with the node certificate from `outpost cert create`
# (verified by curl against the local CA, including the IP in the SAN), a
# long-lived API token for scripts, and the systemd notify protocol:
# READY=1, watchdog pings at half WATCHDOG_USEC, STOPPING=1 on SIGTERM.
set -u
. "$TESTS_DIR/cli/lib.sh"
need curl python3
node_dir
"$OUTPOST" init --region EU-FR --tls-hosts localhost,127.0.0.1 >/dev/null || die "init failed"
[ -s "$T/ca.pem" ] && [ -s "$T/node.pem" ] && [ -s "$T/node.key" ] || die "no certificate files in $T"
add_user robot manager 'correct horse script'
TOKEN=$(api_token robot --label ci)
[ -n "$TOKEN" ] || die "no API token printed"

# A stand-in for systemd's notify socket: records every datagram.
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "a", buffering=1) as log:
    try:
        while True:
            msg = s.recv(4096).decode()
            log.write(msg.replace("\n", " ") + "\n")
            if "STOPPING=1" in msg:
                break
    except socket.timeout:
        pass
PY
LISTENER=$!
track $LISTENER
for _ in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
[ -S "$T/notify.sock" ] || die "notify socket not created"

NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=400000 start_outpostd \
    --tls-cert "$T/node.pem" --tls-key "$T/node.key"
expect_contains "$T/daemon.log" "https://127.0.0.1:$PORT/"

# The chain verifies against the local CA, for the IP and the host name.
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' --cacert "$T/ca.pem" "https://127.0.0.1:$PORT/healthz")
[ "$STATUS" = 200 ] || die "HTTPS healthz: $STATUS"
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' --cacert "$T/ca.pem" \
    --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/healthz")
[ "$STATUS" = 200 ] || die "HTTPS by host name: $STATUS"
# Plain HTTP on the TLS port is refused.
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")
[ "$STATUS" != 200 ] || die "plain HTTP served on the TLS port"

# The API token works like a session token, and is refused once revoked.
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' --cacert "$T/ca.pem" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"given_name":"Élodie","family_name":"Marchand","email":"elodie@example.fr"}' \
    "https://127.0.0.1:$PORT/api/v1/contacts")
[ "$STATUS" = 201 ] || die "create with API token: $STATUS $(cat "$OUT")"
TOKEN_ID=$("$OUTPOST" token list --user robot | awk 'NR > 1 && $0 ~ /ci/ {print $1; exit}')
[ -n "$TOKEN_ID" ] || die "token list: $("$OUTPOST" token list --user robot)"
"$OUTPOST" token revoke "$TOKEN_ID" >/dev/null || die "revoke"
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' --cacert "$T/ca.pem" \
    -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT/api/v1/contacts")
[ "$STATUS" = 401 ] || die "revoked token: $STATUS"

sleep 1 # two or more watchdog periods
kill $DPID
wait $DPID || die "outpostd did not stop cleanly: $(tail -3 "$T/daemon.log")"
wait $LISTENER 2>/dev/null
expect_contains "$T/notify.log" "READY=1"
expect_contains "$T/notify.log" "STOPPING=1"
[ "$(grep -c '^WATCHDOG=1' "$T/notify.log")" -ge 2 ] ||
    die "expected watchdog pings: $(cat "$T/notify.log")"
pass
