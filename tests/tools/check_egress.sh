#!/bin/bash
# The structural check behind docs/EGRESS.md ("no byte of record data
# reaches network code except through a struct egress_record made by
# egress_project"), run by `meson test` in the lint suite. It fails when:
#   1. a file other than sync/core/egress.c defines `struct egress_record {` or
#      casts something to `struct egress_record *` (forging one);
#   2. a file under appliance/ or sync/ uses an outbound network API and
#      is not on NETWORK_MODULES below;
#   3. a file on NETWORK_MODULES includes store.h, db.h or sqlite3.h (a
#      network module gets record data from egress.h and nothing else).
# `check_egress.sh selftest` copies the tree, breaks each rule in turn and
# fails unless the check catches every break. SOURCE_ROOT is the source
# tree.
set -u
cd "${SOURCE_ROOT:?}" || exit 1

# Files allowed to talk to the network, each with the reason. Add the
# uploader's modules here when they are written; rule 3 then applies.
NETWORK_MODULES=(
    sync/net/tus_client.c     # uploads spool files (segments) to HQ; reads files, not records
    sync/net/tus_client.h     # its interface
    sync/net/smtp_client.c    # outreach e-mail to the relay: gets a built message, never the
                              # store (docs/OUTREACH.md, "What leaves, and residency")
    sync/net/smtp_client.h    # its interface
    sync/net/sms_gateway.c    # outreach SMS to the gateway: gets a number and a text, never the
                              # store (docs/OUTREACH.md, "SMS")
    sync/net/sms_gateway.h    # its interface
    sync/net/net_curl.c       # the libcurl setup smtp_client and sms_gateway share (global
                              # init, options on a handle they made); sends nothing itself
    sync/net/net_curl.h       # its interface
    sync/toolkit/sd_notify.c  # READY=1/STATUS= to systemd's local socket; no record data
    appliance/uplink/uplink.c # hands spool files (segments) to tus_client, GETs receipts and
                              # the mailbox; reaches the database only through sync_ledger.h
)

# Outbound network APIs: libcurl, sockets that connect or send to an
# address, name resolution, TLS client handshakes, and the uploader's own
# interface (handing it a file is sending).
NET_RE='(^|[^A-Za-z0-9_])(curl_[A-Za-z_]+|connect|uv_tcp_connect|uv_pipe_connect|getaddrinfo|uv_getaddrinfo|SSL_connect|sendto|sendmsg|uv_udp_send|tus_client_[A-Za-z_]+)[[:space:]]*\(|#[[:space:]]*include[[:space:]]*[<"](curl/curl\.h|tus_client\.h)[>"]'
DEF_RE='struct[[:space:]]+egress_record[[:space:]]*\{'
CAST_RE='\([[:space:]]*(const[[:space:]]+)?struct[[:space:]]+egress_record[[:space:]]*\*[[:space:]]*\)'
INC_RE='#[[:space:]]*include[[:space:]]*[<"](store\.h|db\.h|sqlite3\.h)[>"]'

# Source lines without comments, as "FILE:LINE:text" (a comment that
# mentions connect() is not a call).
code_lines() {
    awk '
        FNR == 1 { inc = 0 }
        {
            line = $0; out = ""
            while (length(line) > 0) {
                if (inc) {
                    i = index(line, "*/")
                    if (i == 0) { line = ""; break }
                    line = substr(line, i + 2); inc = 0
                } else {
                    i = index(line, "/*"); j = index(line, "//")
                    if (j > 0 && (i == 0 || j < i)) { out = out substr(line, 1, j - 1); line = ""; break }
                    if (i == 0) { out = out line; line = ""; break }
                    out = out substr(line, 1, i - 1); line = substr(line, i + 2); inc = 1
                }
            }
            if (out ~ /[^[:space:]]/) print FILENAME ":" FNR ":" out
        }' "$@"
}

on_list() {
    local f
    for f in "${NETWORK_MODULES[@]}"; do
        [ "$f" = "$1" ] && return 0
    done
    return 1
}

check() {
    local fail=0 hits f code
    mapfile -t all < <(find appliance sync schema tests -name '*.[ch]' 2>/dev/null | sort)
    code=$(code_lines "${all[@]}")

    # line by line, then each file's code as one string (a definition may
    # put its brace on the next line)
    hits=$(printf '%s\n' "$code" | grep -E "$DEF_RE|$CAST_RE" | grep -v '^sync/core/egress\.c:')
    hits+=$(printf '%s\n' "$code" | awk '
        {
            f = $0; sub(/:.*/, "", f)
            t = $0; sub(/^[^:]*:[0-9]*:/, "", t)
            if (f != cur) { if (cur != "") files[cur] = buf; cur = f; buf = "" }
            buf = buf " " t
        }
        END {
            if (cur != "") files[cur] = buf
            for (f in files)
                if (f != "sync/core/egress.c" && files[f] ~ /struct[[:space:]]+egress_record[[:space:]]*[{]/)
                    print "\n" f ": defines struct egress_record"
        }')
    hits=$(printf '%s\n' "$hits" | sed '/^$/d')
    if [ -n "$hits" ]; then
        echo "struct egress_record is defined or forged outside sync/core/egress.c; only" >&2
        echo "egress_project may make one (docs/EGRESS.md):" >&2
        echo "$hits" >&2
        fail=1
    fi

    hits=$(printf '%s\n' "$code" | grep -E '^(appliance|sync)/' | grep -E "$NET_RE" |
        while IFS= read -r line; do
            on_list "${line%%:*}" || printf '%s\n' "$line"
        done)
    if [ -n "$hits" ]; then
        echo "files that use the network but are not network modules; record data must" >&2
        echo "leave through egress_project (docs/EGRESS.md), and network modules are" >&2
        echo "listed in tests/tools/check_egress.sh:" >&2
        echo "$hits" >&2
        fail=1
    fi

    for f in "${NETWORK_MODULES[@]}"; do
        hits=$(printf '%s\n' "$code" | grep -F "$f:" | grep -E "$INC_RE")
        if [ -n "$hits" ]; then
            echo "$f is a network module and must not read the store; it gets record" >&2
            echo "data as const struct egress_record * (egress.h) only:" >&2
            echo "$hits" >&2
            fail=1
        fi
    done
    return $fail
}

# Copies the tree, applies one break, and expects the check to fail.
expect_caught() {
    local what=$1 file=$2 text=$3 tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_egress.XXXXXX") || exit 1
    cp -r appliance sync tests "$tmp"/ 2>/dev/null
    mkdir -p "$tmp/$(dirname "$file")"
    printf '%s\n' "$text" >>"$tmp/$file"
    if (SOURCE_ROOT="$tmp" "$0" check >/dev/null 2>&1); then
        echo "FAIL: the check did not catch: $what" >&2
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$tmp"
    echo "caught: $what"
}

selftest() {
    local fail=0
    if ! check >/dev/null 2>&1; then
        echo "FAIL: the check fails on the tree as it is; run 'check_egress.sh check'" >&2
        return 1
    fi
    expect_caught "struct definition outside egress.c" appliance/api/api.c \
        'struct egress_record { char *json; };' || fail=1
    expect_caught "struct definition spread over lines" sync/core/hlc.c \
        'struct egress_record
{ int x; };' || fail=1
    expect_caught "a forged record (cast)" appliance/store/store.c \
        'static const void *f(const char *j) { return (const struct egress_record *)j; }' || fail=1
    expect_caught "libcurl in the store" appliance/store/store.c \
        'static void up(void *c) { curl_easy_setopt(c, 0, 0); }' || fail=1
    expect_caught "libcurl header in the API" appliance/api/api.c '#include <curl/curl.h>' || fail=1
    expect_caught "a raw socket connect in a new file" sync/leak.c \
        'int leak(int fd) { return connect(fd, 0, 0); }' || fail=1
    expect_caught "handing files to the uploader from outpostd" appliance/daemon/outpostd.c \
        'static void go(void *c) { tus_client_start(c); }' || fail=1
    expect_caught "a network module reading the store" sync/net/tus_client.c \
        '#include "store.h"' || fail=1
    # and comments are not calls
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_egress.XXXXXX") || exit 1
    cp -r appliance sync tests "$tmp"/ 2>/dev/null
    printf '/* we never connect() from here */\n// nor curl_easy_perform()\n' >>"$tmp/appliance/store/store.c"
    if ! (SOURCE_ROOT="$tmp" "$0" check >/dev/null 2>&1); then
        echo "FAIL: a comment mentioning connect() was taken for a call" >&2
        fail=1
    fi
    rm -rf "$tmp"
    return $fail
}

case ${1:-check} in
check)
    check
    ;;
selftest)
    selftest
    ;;
*)
    echo "usage: check_egress.sh [check|selftest]" >&2
    exit 2
    ;;
esac
