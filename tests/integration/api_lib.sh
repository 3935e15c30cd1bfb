# shellcheck shell=bash
# Shared by the tests that talk to outpostd's HTTP API with curl
# (test_outpostd.sh, test_outpostd_login.sh, test_outpostd_policy.sh).
# Sourced after tests/cli/lib.sh; skips the test without curl and makes the
# node's directory in $T (node_dir). Needs BASE (start_outpostd sets it).
#
#   req METHOD PATH [TOKEN] [BODY] [EXTRA-HEADER]
#                            status in $STATUS, body in $OUT, headers in
#                            $T/headers; BODY is sent as JSON
#   expect_status CODE       die unless the last answer had CODE
#   expect_req CODE TEXT METHOD PATH [TOKEN] [BODY] [EXTRA-HEADER]
#                            req, then die unless the answer has CODE and
#                            its body contains TEXT
#   header NAME              a header of the last answer
#   json_field NAME          the first string field NAME of the last body
#   login NAME               signs NAME in with add_user's default password
#                            (201 expected) and prints the session token

req() {
    local method=$1 path=$2 token=${3:-} body=${4:-} extra=${5:-}
    local args=(-s -o "$OUT" -D "$T/headers" -w '%{http_code}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    [ -n "$extra" ] && args+=(-H "$extra")
    STATUS=$(curl "${args[@]}" "$BASE$path") || die "curl $method $path failed"
}
expect_status() { [ "$STATUS" = "$1" ] || die "expected HTTP $1, got $STATUS: $(cat "$OUT")"; }
expect_req() {
    local code=$1 text=$2
    shift 2
    req "$@"
    expect_status "$code"
    expect_contains "$OUT" "$text"
}
header() { sed -n "s/^$1: *\\(.*\\)\\r$/\\1/Ip" "$T/headers" | head -1; }
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$OUT" | head -1; }
login() {
    req POST /api/v1/session "" "{\"name\":\"$1\",\"password\":\"correct horse $1\"}"
    expect_status 201
    json_field token
}

need curl
node_dir
