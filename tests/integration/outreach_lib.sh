# shellcheck shell=bash
# Shared by the outreach tests (test_outreach.sh, test_outreach_transport.sh):
# the SMTP sink (tests/tools/smtp_sink.py, python3-aiosmtpd) on 127.0.0.1
# and outpostd's outreach configuration. Sourced after tests/cli/lib.sh and
# tests/integration/api_lib.sh; skips without python3-aiosmtpd or sqlite3.
#
#   start_sink [PORT] [TLS-ARGS...]  the sink (on PORT, default one it
#                            picks); sets SPID, SPORT
#   stop_sink                SIGTERM to the sink
#   sunk                     how many messages the sink took
#   wait_sunk N              wait up to 20 s for N messages at the sink
#   message N                the sink's message N, decoded: headers, body
#   write_conf               $T/outpostd.conf for the sink; lines on stdin
#                            replace or add keys
#   q SQL                    sqlite3 on $DB

need sqlite3
PY=/usr/bin/python3
"$PY" -c 'import aiosmtpd' 2>/dev/null || skip "python3-aiosmtpd is not installed"
q() { sqlite3 "$DB" "$1"; }

SINK_LOG="$T/sink.log"
SINK_CTL="$T/sink.ctl"
: >"$SINK_LOG"
start_sink() {
    local port=${1:-0}
    shift
    rm -f "$T/sink.port"
    "$PY" "$TESTS_DIR/tools/smtp_sink.py" --port "$port" --port-file "$T/sink.port" \
        --log "$SINK_LOG" --control "$SINK_CTL" "$@" 2>>"$T/sink.err" &
    SPID=$!
    track "$SPID"
    for _ in $(seq 1 100); do
        [ -s "$T/sink.port" ] && break
        kill -0 "$SPID" 2>/dev/null || die "the SMTP sink exited: $(cat "$T/sink.err")"
        sleep 0.05
    done
    SPORT=$(cat "$T/sink.port")
}
stop_sink() {
    kill "$SPID"
    wait "$SPID" 2>/dev/null
}
# the number of messages in the sink's log
sunk() { wc -l <"$SINK_LOG"; }
wait_sunk() { # N: wait up to 20 s for N messages in the sink's log
    for _ in $(seq 1 200); do
        [ "$(sunk)" -ge "$1" ] && return 0
        sleep 0.1
    done
    die "expected $1 messages at the SMTP sink, got $(sunk): $(tail -n 5 "$DAEMON_LOG")"
}
# the message N (1-based) of the sink's log, decoded: headers then body
message() {
    sed -n "${1}p" "$SINK_LOG" | "$PY" -c '
import email, json, sys
from email import policy
m = email.message_from_string(json.load(sys.stdin)["data"], policy=policy.default)
for k, v in m.items():
    print(f"{k}: {v}")
print()
print(m.get_content())'
}
write_conf() { # lines on stdin replace or add to these
    local extra line
    extra=$(cat)
    {
        for line in "outreach_relay = smtp://127.0.0.1:$SPORT" "outreach_allow_plain = true" \
            "outreach_from = news@branch.example" \
            "outreach_public_url = https://crm.branch.example" "outreach_retry_s = 1" \
            "outreach_rate = 100000"; do
            printf '%s\n' "$extra" | grep -q "^${line%% *} " || echo "$line"
        done
        printf '%s\n' "$extra"
    } >"$T/outpostd.conf"
}

