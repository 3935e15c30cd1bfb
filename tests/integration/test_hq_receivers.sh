#!/bin/bash
# Three outpost-hq receivers behind nginx (round robin, no ip_hash, the
# request body streamed, a request passed on only when a receiver cannot
# be connected to) share one store and one upload spool (shared_spool).
# A real node syncs 3,000 contacts through a 384 kbit/s link to nginx,
# so every upload spans many requests. In the middle of the uploads the
# receiver holding an upload's lock (writing or applying it: its flock
# in /proc/locks) is killed with kill -9, later restarted, and then a
# second one is killed for good. At the end: the node drained through
# the others; HQ holds exactly the permitted projection of every record,
# each once (sync_compare.py); every segment has one receipt, applied;
# no segment was applied twice (one "applied" line per segment over all
# receivers' logs); requests of one upload were served by more than one
# receiver (nothing sticky); and the spool holds no unsettled upload.
# SYNC_SEED replays the link's timing.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || skip "nginx is not installed (packaging/build-deps.txt installs it)"
SEED=${SYNC_SEED:-$(date +%s)}
echo "seed $SEED (SYNC_SEED=$SEED replays)"

init_node KE
import_contacts 3000 23
hq_enrol multi-1 KE

# ---- three receivers on one store and one spool ----
declare -a RPID RPORT
start_receiver() { # INDEX [PORT]
    local i=$1 listen=127.0.0.1:0
    [ -n "${2:-}" ] && listen="127.0.0.1:$2"
    local log="$T/recv.$i.$SECONDS.log"
    "$OUTPOST_HQ" serve --db "$HQDB" --spool_dir "$T/hq-uploads" --shared_spool true \
        --listen "$listen" --max_connections_per_address 512 --log_requests false 2>"$log" &
    RPID[$i]=$!
    track "${RPID[$i]}"
    HQ_LOG=$log # the last one started, for wait_drained's message
    RPORT[$i]=$(wait_line "$log" 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "${RPID[$i]}" outpost-hq) || exit 1
}
for i in 1 2 3; do start_receiver $i; done

# ---- nginx in front, on a port nobody holds ----
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
NGX_PORT=$(free_port)
mkdir -p "$T/nginx/logs"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$T/nginx.conf" <<EOF
$user_line
daemon off;
master_process off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    log_format up '\$request_method \$uri \$status \$upstream_addr';
    access_log $T/nginx/access.log up;
    upstream outpost_hq {
        server 127.0.0.1:${RPORT[1]};
        server 127.0.0.1:${RPORT[2]};
        server 127.0.0.1:${RPORT[3]};
        keepalive 8;
    }
    server {
        listen 127.0.0.1:$NGX_PORT;
        client_max_body_size 8m;
        location / {
            proxy_pass http://outpost_hq;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream error;
            proxy_next_upstream_tries 3;
            proxy_read_timeout 60s;
        }
    }
}
EOF
# one process (no master, no worker left behind when the test kills it
# by its PID), its output in files
"$NGINX" -p "$T/nginx" -c "$T/nginx.conf" -e "$T/nginx/error.log" >"$T/nginx.stderr" 2>&1 &
NGX_PID=$!
track $NGX_PID
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$NGX_PORT/healthz" >/dev/null 2>&1 && break
    kill -0 $NGX_PID 2>/dev/null || die "nginx did not start: $(cat "$T/nginx.stderr" "$T/nginx/error.log")"
    sleep 0.1
done
curl -fs "http://127.0.0.1:$NGX_PORT/healthz" >/dev/null || die "nginx does not answer"

# ---- the node, over a slow link to nginx ----
start_proxy "$NGX_PORT" --seed "$SEED" --rate-kbit 384
start_node "http://127.0.0.1:$PROXY_PORT" --sync_interval_ms 200 --segment_bytes 16KB

# receiver_holding: the index of a receiver that holds an upload's lock
# now (an flock in /proc/locks whose pid is a receiver's), or nothing.
receiver_holding() {
    local pid i
    for pid in $(awk '$2 == "FLOCK" { print $5 }' /proc/locks); do
        for i in 1 2 3; do
            [ "$pid" = "${RPID[$i]}" ] && kill -0 "$pid" 2>/dev/null && {
                echo "$i"
                return 0
            }
        done
    done
    return 1
}
# kill_holder: kill -9 a receiver while it holds an upload (waits up to
# 20 s for one to); prints its index.
kill_holder() {
    local i
    for _ in $(seq 400); do
        if i=$(receiver_holding); then
            kill -9 "${RPID[$i]}"
            wait "${RPID[$i]}" 2>/dev/null
            echo "$i"
            return 0
        fi
        sleep 0.05
    done
    die "no receiver held an upload in 20 s: $(tail -n 5 "$NODE_LOG")"
}

sleep 2
k1=$(kill_holder) || exit 1
echo "killed receiver $k1 in the middle of an upload"
sleep 3
# it comes back at its address: it sees what the others did meanwhile
start_receiver "$k1" "${RPORT[$k1]}"
sleep 2
k2=$(kill_holder) || exit 1
echo "killed receiver $k2 in the middle of an upload; it stays down"

wait_drained 50

# ---- every record once, every segment applied once ----
sqlite3 "$OUTPOST_DB" "SELECT street FROM contacts WHERE street <> ''" >"$T/forbidden"
hq_compare multi-1
"$OUTPOST_HQ" --db "$HQDB" receipts multi-1 --json >"$T/receipts.json" || die "receipts failed"
cat "$T"/recv.*.log >"$T/all.log"
python3 - "$T/receipts.json" "$T/all.log" "$T/nginx/access.log" <<'EOF' || die "see above"
import json, re, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
segs = [r["segment"] for r in rows]
bad = [r for r in rows if r["status"] != "applied"]
if not rows or bad or sorted(segs) != list(range(min(segs), min(segs) + len(segs))):
    sys.exit(f"receipts: {len(rows)}, not applied {bad[:3]}, segments {sorted(segs)}")
applied = collections.Counter(
    int(m.group(1)) for m in re.finditer(r"node multi-1 segment (\d+) applied:", open(sys.argv[2]).read()))
twice = {s: n for s, n in applied.items() if n != 1}
if twice or set(applied) != set(segs):
    sys.exit(f"applied lines per segment off: twice {twice}, "
             f"logged {sorted(applied)} vs receipts {sorted(segs)}")
ups = collections.defaultdict(set)
statuses = collections.Counter()
for line in open(sys.argv[3]):
    parts = line.split()
    if len(parts) >= 4 and re.fullmatch(r"/files/[0-9a-f]{32}", parts[1]):
        ups[parts[1]].add(parts[3])
        statuses[parts[2]] += 1
spread = sum(1 for s in ups.values() if len(s) > 1)
if not spread:
    sys.exit("no upload was served by more than one receiver")
print(f"{len(segs)} segments, each applied once; {len(ups)} uploads, {spread} served by "
      f"more than one receiver; answers through nginx {dict(statuses)}")
EOF
# nothing left unsettled in the spool (settled records keep no data)
left=$(find "$T/hq-uploads" -name '*.data' | wc -l)
[ "$left" = 0 ] || die "$left upload data files left in the spool"
expect_exit 0 "$OUTPOST" check
pass
