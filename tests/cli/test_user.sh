#!/bin/bash
# outpost user, token and cert as an administrator drives them.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir
init_node EU-DE
q() { sqlite3 "$DB" "$1"; }
PW='correct horse battery staple'

# --help for each command, without a database.
for cmd in user token cert; do
    expect_exit 0 "$OUTPOST" "$cmd" --help
    expect_contains "$OUT" "usage: outpost $cmd"
done
expect_exit 0 "$OUTPOST" user add --help
expect_contains "$OUT" "field, manager, admin, hq"

# Adding users; the password comes from stdin, never the command line.
expect_exit 0 "$OUTPOST" user add ana --role admin --display-name "Ana Lima" --password-stdin \
    <<<"$PW"
expect_contains "$OUT" "created user ana (role admin, id "
expect_exit 0 "$OUTPOST" user add --password-stdin bo --role field <<<"another long password"
[ "$(q "SELECT count(*) FROM users")" = 2 ] || die "expected 2 users"
q "SELECT password_hash FROM users WHERE name = 'ana'" | grep -q '^\$y\$' ||
    die "the password is not stored as a yescrypt hash"
[ "$(q "SELECT count(*) FROM users WHERE password_hash LIKE '%$PW%'")" = 0 ] ||
    die "the password is stored in clear"
[ "$(q "SELECT count(*) FROM audit_log WHERE entity = 'user' AND action = 'create'")" = 2 ] ||
    die "user creation is not in the audit log"

before=$(q "SELECT count(*) FROM users")
expect_exit 3 "$OUTPOST" user add cy --role boss --password-stdin <<<"$PW"
expect_contains "$ERR" "unknown role 'boss' (roles: field, manager, admin, hq)"
expect_exit 2 "$OUTPOST" user add cy --password-stdin <<<"$PW"
expect_contains "$ERR" "--role is required"
expect_exit 4 "$OUTPOST" user add ana --role field --password-stdin <<<"$PW"
expect_contains "$ERR" "a user named 'ana' already exists"
expect_exit 3 "$OUTPOST" user add cy --role field --password-stdin <<<"short"
expect_contains "$ERR" "shorter than 10 characters"
expect_exit 3 "$OUTPOST" user add cy --role field --password-stdin \
    <<<"$(head -c 1025 /dev/zero | tr '\0' x)"
expect_contains "$ERR" "longer than 1024 bytes"
expect_exit 3 "$OUTPOST" user add cy --role field --password-stdin </dev/null
expect_contains "$ERR" "no password on stdin"
expect_exit 3 "$OUTPOST" user add "cy young" --role field --password-stdin <<<"$PW"
expect_contains "$ERR" "name: character 3 is not allowed"
expect_exit 3 "$OUTPOST" user add "Cy" --role field --password-stdin <<<"$PW"
expect_contains "$ERR" "must start with a lower-case letter or a digit"
expect_exit 2 "$OUTPOST" user add cy --role field --password "$PW"
expect_contains "$ERR" "passwords are not taken on the command line"
expect_not_contains "$ERR" "$PW"
expect_exit 2 "$OUTPOST" user add cy --role field --password="$PW"
expect_exit 2 "$OUTPOST" user add cy --role field </dev/null
expect_contains "$ERR" "stdin is not a terminal"
expect_exit 2 "$OUTPOST" user add --role field
expect_contains "$ERR" "NAME is missing"
expect_exit 2 "$OUTPOST" user frobnicate ana
expect_contains "$ERR" "unknown subcommand 'frobnicate'"
[ "$(q "SELECT count(*) FROM users")" = "$before" ] || die "a refused add changed the database"

# On a terminal the password is asked twice without echo (script(1) gives
# the command a pseudo-terminal; each answer waits for its prompt).
if command -v script >/dev/null && command -v mkfifo >/dev/null; then
    tty_add() { # NAME FIRST SECOND
        local fifo="$T/tty.in" log="$T/tty.out"
        rm -f "$fifo"
        mkfifo "$fifo"
        : >"$log"
        (
            exec 3>"$fifo"
            # Each answer waits for its own prompt (by position, not by
            # value: the two answers may be the same), so it cannot arrive
            # before the terminal is flushed for that prompt.
            for step in "New password:$2" "Repeat it:$3"; do
                prompt=${step%%:*}
                for _ in $(seq 1 300); do
                    grep -q "$prompt" "$log" && break
                    sleep 0.1
                done
                printf '%s\n' "${step#*:}" >&3
            done
            sleep 1
        ) &
        local rc=0
        script -qec "\"$OUTPOST\" user add $1 --role field" /dev/null <"$fifo" >"$log" 2>&1 ||
            rc=$?
        wait
        return $rc
    }
    tty_add dora "$PW" "$PW" || die "prompted add failed: $(cat "$T/tty.out")"
    grep -q "created user dora" "$T/tty.out" || die "no confirmation: $(cat "$T/tty.out")"
    grep -qF "$PW" "$T/tty.out" && die "the password was echoed: $(cat "$T/tty.out")"
    rc=0
    tty_add eve "$PW" "not the same password" || rc=$?
    [ "$rc" = 3 ] || die "mismatched passwords: expected exit 3, got $rc"
    grep -q "the two passwords differ" "$T/tty.out" || die "no mismatch message"
    [ "$(q "SELECT count(*) FROM users WHERE name = 'eve'")" = 0 ] || die "eve was added"
fi

# Listing never shows a hash.
expect_exit 0 "$OUTPOST" user list
expect_contains "$OUT" "NAME"
expect_contains "$OUT" "ana"
expect_contains "$OUT" "Ana Lima"
expect_contains "$OUT" "admin"
expect_not_contains "$OUT" '$y$'
expect_not_contains "$OUT" "hash"

# passwd: a new hash, and the old one is gone.
old=$(q "SELECT password_hash FROM users WHERE name = 'bo'")
q "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms, last_used_ms)
   SELECT randomblob(32), id, 1, 9999999999999, 1 FROM users WHERE name = 'bo'"
expect_exit 0 "$OUTPOST" user passwd bo --password-stdin <<<"a brand new passphrase"
expect_contains "$OUT" "changed the password of bo"
[ "$(q "SELECT password_hash FROM users WHERE name = 'bo'")" != "$old" ] || die "hash unchanged"
[ "$(q "SELECT count(*) FROM sessions")" = 0 ] || die "passwd did not end bo's sessions"
expect_exit 5 "$OUTPOST" user passwd nobody --password-stdin <<<"a brand new passphrase"
expect_contains "$ERR" "no user named 'nobody'"
expect_exit 3 "$OUTPOST" user passwd bo --password-stdin <<<"short"

# disable / enable
expect_exit 0 "$OUTPOST" user disable bo
expect_contains "$OUT" "disabled user bo"
expect_exit 0 "$OUTPOST" user list
grep -E '^bo +field +disabled' "$OUT" >/dev/null || die "bo not listed as disabled: $(cat "$OUT")"
expect_exit 0 "$OUTPOST" user disable bo
expect_contains "$OUT" "already disabled"
expect_exit 0 "$OUTPOST" user enable bo
expect_contains "$OUT" "enabled user bo"
[ "$(q "SELECT disabled FROM users WHERE name = 'bo'")" = 0 ] || die "bo still disabled"
expect_exit 5 "$OUTPOST" user disable nobody

# API tokens: shown once on stdout, stored only as a hash.
expect_exit 0 "$OUTPOST" token create --user ana --label "nightly export" --expires-days 30
tok=$(cat "$OUT")
[[ "$tok" =~ ^opk_[A-Za-z0-9_-]{43}$ ]] || die "not a token: $tok"
expect_contains "$ERR" "only time the token is shown"
id=$(sed -n 's/^created API token \([0-9]*\) .*/\1/p' "$ERR")
[ -n "$id" ] || die "no token id in: $(cat "$ERR")"
[ "$(q "SELECT length(token_hash) FROM api_tokens WHERE id = $id")" = 32 ] ||
    die "the token's hash is not a SHA-256"
grep -aqF "$tok" "$DB" "$DB-wal" 2>/dev/null && die "the token text is in the database"
expect_exit 0 "$OUTPOST" token create --user bo
expect_exit 0 "$OUTPOST" token list
expect_contains "$OUT" "nightly export"
expect_contains "$OUT" "active"
[ "$(grep -c active "$OUT")" = 2 ] || die "expected 2 active tokens"
expect_not_contains "$OUT" "$tok"
expect_exit 0 "$OUTPOST" token list --user bo
[ "$(grep -c active "$OUT")" = 1 ] || die "expected 1 token for bo"
expect_exit 5 "$OUTPOST" token list --user nobody
expect_exit 5 "$OUTPOST" token create --user nobody
expect_exit 2 "$OUTPOST" token create --user ana --expires-days 0
expect_contains "$ERR" "--expires-days: expected 1 to 3650"
expect_exit 2 "$OUTPOST" token create
expect_contains "$ERR" "--user NAME is required"
expect_exit 0 "$OUTPOST" token revoke "$id"
expect_contains "$OUT" "revoked API token $id"
expect_exit 0 "$OUTPOST" token list --user ana
expect_contains "$OUT" "revoked"
expect_exit 5 "$OUTPOST" token revoke 9999
expect_exit 2 "$OUTPOST" token revoke abc
expect_exit 2 "$OUTPOST" token revoke

# A disabled user's tokens cannot be made.
"$OUTPOST" user disable bo >/dev/null || die "disable bo"
expect_exit 1 "$OUTPOST" token create --user bo
expect_contains "$ERR" "is disabled"

# The node certificate: verified by openssl against the CA; keys 0600.
command -v openssl >/dev/null || skip "openssl CLI not installed"
C="$T/tls"
expect_exit 0 "$OUTPOST" cert create --hosts "outpost.branch.lan,192.168.1.10" --dir "$C"
expect_contains "$OUT" "created the local CA: $C/ca.pem"
expect_contains "$OUT" "SHA-256 fingerprint"
expect_contains "$OUT" "Install $C/ca.pem"
expect_exit 0 openssl verify -CAfile "$C/ca.pem" "$C/node.pem"
expect_exit 0 openssl verify -CAfile "$C/ca.pem" -verify_hostname outpost.branch.lan \
    -purpose sslserver "$C/node.pem"
expect_exit 0 openssl verify -CAfile "$C/ca.pem" -verify_ip 192.168.1.10 "$C/node.pem"
expect_exit 2 openssl verify -CAfile "$C/ca.pem" -verify_hostname elsewhere.lan "$C/node.pem"
[ "$(stat -c %a "$C/ca.key")" = 600 ] || die "ca.key is not 0600"
[ "$(stat -c %a "$C/node.key")" = 600 ] || die "node.key is not 0600"
fp=$(openssl x509 -in "$C/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
expect_exit 0 "$OUTPOST" cert create --hosts outpost.branch.lan --dir "$C" --days 30
expect_contains "$OUT" "reused the local CA"
expect_contains "$OUT" "$fp"
expect_exit 0 openssl verify -CAfile "$C/ca.pem" "$C/node.pem"
expect_exit 3 "$OUTPOST" cert create --hosts "bad host" --dir "$C"
expect_contains "$ERR" "'bad host' is neither an IP address nor a host name"
expect_exit 2 "$OUTPOST" cert create --hosts x.lan --days 826 --dir "$C"
# Outside the CA's names: refused with the way out; --new-ca makes a new CA.
expect_exit 4 "$OUTPOST" cert create --hosts outpost.branch.lan,10.9.9.9 --dir "$C"
expect_contains "$ERR" "'10.9.9.9' is outside the names the local CA"
expect_contains "$ERR" "--new-ca"
expect_exit 2 openssl verify -CAfile "$C/ca.pem" -verify_ip 10.9.9.9 "$C/node.pem"
expect_exit 0 "$OUTPOST" cert create --hosts outpost.branch.lan,10.9.9.9 --dir "$C" --new-ca
expect_contains "$OUT" "moved the previous CA aside"
expect_contains "$OUT" "created the local CA"
expect_exit 0 openssl verify -CAfile "$C/ca.pem" -verify_ip 10.9.9.9 "$C/node.pem"
ls "$C" | grep -q '^ca.key.replaced-' || die "the old CA key was not kept"
# A CA without name constraints (as made before them) is used, with a warning.
L="$T/legacy"
mkdir "$L"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$L/ca.key" \
    -out "$L/ca.pem" -days 30 -subj "/CN=old CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || die "openssl req"
expect_exit 0 "$OUTPOST" cert create --hosts outpost.lan --dir "$L"
expect_contains "$ERR" "has no name constraints"
expect_contains "$ERR" "--new-ca"
# Without --hosts: this machine's host name and addresses.
expect_exit 0 "$OUTPOST" cert create --dir "$T/here"
expect_contains "$OUT" "node certificate: $T/here/node.pem"

# init --tls-hosts puts the files next to the database; bad hosts change nothing.
D="$T/site"
mkdir "$D"
expect_exit 2 "$OUTPOST" init --region EU-DE --db "$D/node.db" --tls-hosts "a..b"
[ ! -e "$D/node.db" ] || die "a refused init created the database"
expect_exit 0 "$OUTPOST" init --region EU-DE --db "$D/node.db" --tls-hosts outpost.lan,10.0.0.2
expect_contains "$OUT" "created node"
expect_contains "$OUT" "$D/ca.pem"
expect_exit 0 openssl verify -CAfile "$D/ca.pem" "$D/node.pem"
pass
