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

# First start with TLS and no certificate: outpostd makes the CA and the
# node certificate beside the database, for its listen address, and serves
# HTTPS that verifies against that CA; the next start reuses them.
F="$T/first"
mkdir "$F"
OUTPOST_DB="$F/node.db" "$OUTPOST" init --region EU-FR >/dev/null || die "init $F"
OUTPOST_DB="$F/node.db" start_outpostd --tls on
expect_contains "$T/daemon.log" "no TLS certificate $F/node.pem: made one for"
expect_contains "$T/daemon.log" "https://127.0.0.1:$PORT/"
[ "$(stat -c %a "$F/node.key")" = 600 ] && [ "$(stat -c %a "$F/ca.key")" = 600 ] ||
    die "key modes: $(stat -c '%n %a' "$F"/*.key)"
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' --cacert "$F/ca.pem" "https://127.0.0.1:$PORT/healthz")
[ "$STATUS" = 200 ] || die "HTTPS with the certificate made at start: $STATUS"
if command -v openssl >/dev/null; then
    openssl x509 -in "$F/ca.pem" -noout -ext nameConstraints >"$OUT" 2>&1
    expect_contains "$OUT" "critical"
    expect_contains "$OUT" "IP:127.0.0.1/255.255.255.255"
    # TLS 1.1 and CBC suites are refused, TLS 1.2 with GCM is not.
    for old in "-tls1_1" "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA" \
        "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256"; do
        # shellcheck disable=SC2086 # the options are words
        if openssl s_client -connect "127.0.0.1:$PORT" $old -CAfile "$F/ca.pem" \
            </dev/null >"$OUT" 2>&1; then
            die "handshake with $old succeeded: $(grep -i 'cipher' "$OUT" | head -3)"
        fi
    done
    openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 \
        -CAfile "$F/ca.pem" </dev/null >"$OUT" 2>&1 || die "TLS 1.2 GCM refused: $(tail -3 "$OUT")"
fi
stop_outpostd
fp=$(md5sum <"$F/node.pem")
OUTPOST_DB="$F/node.db" start_outpostd --tls on
stop_outpostd
[ "$(md5sum <"$F/node.pem")" = "$fp" ] || die "the second start replaced node.pem"
if grep -q "no TLS certificate" "$T/daemon.log"; then die "the second start made a certificate"; fi

# Plain HTTP on a non-loopback address is refused at start, naming the key.
expect_exit 2 "$OUTPOSTD" --db "$F/node.db" --listen 0.0.0.0:0 --tls off
expect_contains "$ERR" "listen 0.0.0.0:0 is plain HTTP on a non-loopback address"
expect_contains "$ERR" "allow_plain_http"
pass
