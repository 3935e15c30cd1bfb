#!/bin/bash
# outpostd's login limiter over HTTP, with clients at several loopback
# source addresses (curl --interface 127.0.0.N): 32 parallel wrong
# passwords from one address get exactly 5 checked tries, then that
# address is locked out of the name (429 with Retry-After) while the owner
# at their own address, and at a new one, still logs in; spraying many
# names from one address locks the address. Logins beyond the hashing
# slots are answered 503 with Retry-After.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
init_node EU-DE
add_user maria manager
start_outpostd --workers 4

# login_from SRC NAME PASSWORD: the status in $STATUS, headers in $T/h.SRC
login_from() {
    STATUS=$(curl -s -o /dev/null -D "$T/h.$1" -w '%{http_code}' --interface "$1" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"name\":\"$2\",\"password\":\"$3\"}" "$BASE/api/v1/session") ||
        die "curl from $1 failed"
}
if ! curl -s -o /dev/null --interface 127.0.0.2 "$BASE/healthz"; then
    skip_never "cannot bind loopback source addresses here (127.0.0.2: a network namespace without them)"
fi

login_from 127.0.0.1 maria "correct horse maria"
[ "$STATUS" = 201 ] || die "the owner cannot log in: $STATUS"

# 32 wrong passwords at once, then one after another until locked out:
# exactly 5 were checked (401) in all.
pids=""
for i in $(seq 1 32); do
    curl -s -o /dev/null -w '%{http_code}\n' --interface 127.0.0.2 \
        -H 'Content-Type: application/json' \
        --data-binary '{"name":"maria","password":"wrong password"}' \
        "$BASE/api/v1/session" >"$T/burst.$i" &
    pids="$pids $!"
done
# shellcheck disable=SC2086 # the curls, not the daemon
wait $pids
cat "$T"/burst.* >"$T/burst"
grep -qvE '^(401|429|503)$' "$T/burst" && die "unexpected answers: $(sort "$T/burst" | uniq -c)"
checked=$(grep -c '^401$' "$T/burst")
for _ in $(seq 1 40); do
    login_from 127.0.0.2 maria "wrong password"
    case $STATUS in
    401) checked=$((checked + 1)) ;;
    429) break ;;
    503) sleep 0.2 ;;
    *) die "unexpected answer $STATUS" ;;
    esac
done
[ "$STATUS" = 429 ] || die "never locked out"
[ "$checked" = 5 ] || die "expected 5 checked tries, got $checked ($(sort "$T/burst" | uniq -c))"
grep -qi '^Retry-After: [0-9]' "$T/h.127.0.0.2" || die "429 without Retry-After"

# The attacker's address stays locked for that name, the right password
# included; the owner gets in from their address and from a new one.
login_from 127.0.0.2 maria "correct horse maria"
[ "$STATUS" = 429 ] || die "the locked address got $STATUS"
login_from 127.0.0.1 maria "correct horse maria"
[ "$STATUS" = 201 ] || die "the owner was locked out: $STATUS"
login_from 127.0.0.3 maria "correct horse maria"
[ "$STATUS" = 201 ] || die "the owner at a new address was locked out: $STATUS"

# Spraying: 20 names from one address lock the address for any name.
for i in $(seq 1 20); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        login_from 127.0.0.4 "user$i" "wrong password"
        [ "$STATUS" = 503 ] || break
        sleep 0.2
    done
    [ "$STATUS" = 401 ] || die "spraying try $i got $STATUS"
done
login_from 127.0.0.4 maria "correct horse maria"
[ "$STATUS" = 429 ] || die "the spraying address got $STATUS"

stop_outpostd
pass
