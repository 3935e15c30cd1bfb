#!/bin/bash
# Tests tests/tools/flaky_proxy by measurement: small servers on 127.0.0.1
# (echo, endless source, sink, fixed-size source) sit behind the proxy and
# the test times and counts what comes through: throughput near the cap in
# each direction with two connections sharing it, added latency, cut points
# inside the configured range and equal for equal seeds, resets, stalls,
# backpressure (bounded proxy memory while the client does not read), the
# summary line, --duration-s, --max-conns, a dead target, the delay line
# (a bulk stream gets the nominal rate at any latency), silently stalling
# connections, and refused bad options. Needs FLAKY_PROXY (the binary) and
# python3; skips (77) without python3. About 50 s.
set -u
: "${FLAKY_PROXY:?set FLAKY_PROXY to the flaky_proxy binary}"
command -v python3 >/dev/null || {
    echo "python3 not found; flaky_proxy not tested" >&2
    exit 77
}
# The watchdog: a hung run fails instead of stalling the suite.
exec timeout -k 5 150 python3 - "$FLAKY_PROXY" <<'PY'
import os, re, signal, socket, subprocess, sys, tempfile, threading, time

PROXY = sys.argv[1]
failures = 0


def check(cond, what, got, want):
    global failures
    if cond:
        print(f"ok   {what}: {got}")
    else:
        failures += 1
        print(f"FAIL {what}: got {got}, want {want}")


class Server:
    """A TCP server on 127.0.0.1 with a free port; one thread per connection.
    mode: echo | source (send forever) | sink | both (sink + source) | fixed:N"""

    def __init__(self, mode):
        self.mode = mode
        self.received = []  # per connection, bytes received (sink, both)
        self.sent = []      # per connection, bytes sent (source, both, fixed)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            i = len(self.received)
            self.received.append(0)
            self.sent.append(0)
            threading.Thread(target=self._handle, args=(c, i), daemon=True).start()

    def _sink(self, c, i):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                self.received[i] += len(d)
        except OSError:
            return

    def _source(self, c, i, limit=None):
        block = b"s" * 4096
        try:
            while limit is None or self.sent[i] < limit:
                n = len(block) if limit is None else min(len(block), limit - self.sent[i])
                c.sendall(block[:n])
                self.sent[i] += n
        except OSError:
            pass

    def _handle(self, c, i):
        try:
            if self.mode == "echo":
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
            elif self.mode == "source":
                self._source(c, i)
            elif self.mode == "sink":
                self._sink(c, i)
            elif self.mode == "both":
                threading.Thread(target=self._sink, args=(c, i), daemon=True).start()
                self._source(c, i)
            elif self.mode.startswith("fixed:"):
                self._source(c, i, int(self.mode[6:]))
                c.shutdown(socket.SHUT_WR)
                while c.recv(65536):
                    pass
        except OSError:
            pass
        finally:
            if self.mode != "both":
                c.close()

    def close(self):
        self.sock.close()


class Proxy:
    def __init__(self, server, *args):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(
            [PROXY, "--listen", "127.0.0.1:0", "--target", f"127.0.0.1:{server.port}", *args],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.p.stdout.readline().strip()
        m = re.fullmatch(r"listening 127\.0\.0\.1:(\d+)", line)
        if not m:
            self.p.kill()
            raise SystemExit(f"FAIL proxy did not print its port: {line!r}")
        self.port = int(m.group(1))

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stop(self):
        """SIGTERM; returns (exit code, stderr text, summary dict)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = "killed after 10 s"
        self.err.seek(0)
        text = self.err.read()
        # Under ASan/UBSan a report on stderr fails the test, exit code or not.
        bad = [l for l in text.splitlines() if "Sanitizer" in l or "runtime error:" in l]
        check(not bad and rc == 0, "proxy exits cleanly", (rc, bad[:3]), "(0, no sanitizer report)")
        return rc, text, summary(text)


def summary(text):
    lines = [l for l in text.splitlines() if l.startswith("flaky_proxy: summary ")]
    if len(lines) != 1:
        return None
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[0])}


def read_to_end(s, limit=4 << 20):
    """Bytes until the peer closes: ('eof'|'reset'|'still open', n)."""
    n = 0
    try:
        while n < limit:
            d = s.recv(65536)
            if not d:
                return "eof", n
            n += len(d)
    except ConnectionResetError:
        return "reset", n
    except socket.timeout:
        pass
    return "still open", n


# 1. Throughput: two connections, each sending and receiving flat out
#    through a 64 kbit/s link. Each direction's total is the cap
#    (8000 bytes/s), shared between the connections.
srv = Server("both")
px = Proxy(srv, "--seed", "1", "--rate-kbit", "64", "--quiet")
down = [0, 0]
stop = threading.Event()


def pusher(s):
    block = b"u" * 1024
    try:
        while not stop.is_set():
            s.sendall(block)
    except OSError:
        pass


def puller(s, i):
    try:
        while not stop.is_set():
            d = s.recv(65536)
            if not d:
                return
            down[i] += len(d)
    except OSError:
        pass


socks = [px.connect(), px.connect()]
for i, s in enumerate(socks):
    threading.Thread(target=pusher, args=(s,), daemon=True).start()
    threading.Thread(target=puller, args=(s, i), daemon=True).start()
time.sleep(0.5)
up0, down0, per0, t0 = sum(srv.received), sum(down), list(down), time.monotonic()
time.sleep(3.0)
up1, down1, per1, t1 = sum(srv.received), sum(down), list(down), time.monotonic()
stop.set()
rc, err, summ = px.stop()
for s in socks:
    s.close()
srv.close()
up_rate = (up1 - up0) / (t1 - t0)
down_rate = (down1 - down0) / (t1 - t0)
check(6400 <= up_rate <= 9600, "upstream rate at 64 kbit/s (bytes/s over 3 s)",
      round(up_rate), "8000 +-20%")
check(6400 <= down_rate <= 9600, "downstream rate at 64 kbit/s (bytes/s over 3 s)",
      round(down_rate), "8000 +-20%")
share = [(per1[i] - per0[i]) / max(1, down1 - down0) for i in range(2)]
check(min(share) >= 0.3, "the two connections share the link (downstream shares)",
      [round(x, 2) for x in share], "each >= 0.3")
check(summ is not None and summ["conns"] == 2, "summary line after SIGTERM", summ, "conns=2")

# 2. Latency: 200 ms each way, so an echo round trip takes at least 400 ms;
#    three clients at once take no longer than one (data waits in a timer
#    queue, nothing blocks).
srv = Server("echo")
px = Proxy(srv, "--seed", "1", "--latency-ms", "200", "--quiet")
rtts = []


def pinger():
    s = px.connect()
    for _ in range(2):
        t = time.monotonic()
        s.sendall(b"p")
        s.recv(1)
        rtts.append(time.monotonic() - t)
    s.close()


t = time.monotonic()
threads = [threading.Thread(target=pinger) for _ in range(3)]
for th in threads:
    th.start()
for th in threads:
    th.join(10)
elapsed = time.monotonic() - t
px.stop()
srv.close()
check(len(rtts) == 6 and min(rtts) >= 0.4, "echo round trip with --latency-ms 200 (min s)",
      round(min(rtts), 3) if rtts else None, ">= 0.400")
check(len(rtts) == 6 and max(rtts) < 0.6, "echo round trip (max s)",
      round(max(rtts), 3) if rtts else None, "< 0.600")
check(elapsed < 1.2, "3 concurrent clients x 2 round trips (s)", round(elapsed, 3),
      "< 1.2 (serialised would be 2.4)")

# 3. Cuts: five connections in a row each read an endless stream until the
#    proxy cuts it; the client sees a clean close after a byte count inside
#    --cut-after-bytes, the same counts for the same seed, others for
#    another seed, and the proxy's own log agrees.


def cut_run(seed):
    srv = Server("source")
    px = Proxy(srv, "--seed", str(seed), "--cut-after-bytes", "20000:200000")
    ends = []
    for _ in range(5):
        s = px.connect()
        ends.append(read_to_end(s))
        s.close()
    rc, err, summ = px.stop()
    srv.close()
    logged = [int(x) for x in re.findall(r"conn \d+ cut after (\d+) bytes", err)]
    return ends, logged, summ


ends_a, logged_a, summ_a = cut_run(42)
offsets_a = [n for _, n in ends_a]
check(all(how == "eof" for how, _ in ends_a), "client sees the cut as a close",
      [how for how, _ in ends_a], "all eof")
check(all(20000 <= n <= 200000 for n in offsets_a), "cut offsets seen by the client (seed 42)",
      offsets_a, "each in 20000..200000")
check(logged_a == offsets_a, "proxy log agrees with the client", logged_a, offsets_a)
check(summ_a is not None and summ_a["cuts"] == 5 and summ_a["after_cut_bytes"] == 0,
      "summary after cuts", summ_a, "cuts=5 after_cut_bytes=0")
ends_b, _, _ = cut_run(42)
offsets_b = [n for _, n in ends_b]
check(offsets_b == offsets_a, "same seed, same cut offsets", offsets_b, offsets_a)
ends_c, _, _ = cut_run(43)
offsets_c = [n for _, n in ends_c]
check(offsets_c != offsets_a, "another seed, other cut offsets", offsets_c, f"!= {offsets_a}")

# 4. A cut upstream: the sink gets exactly the cut point, the sender sees
#    the connection end.
srv = Server("sink")
px = Proxy(srv, "--seed", "7", "--cut-after-bytes", "30000", "--quiet")
s = px.connect()
how = "no error"
try:
    for _ in range(100):
        s.sendall(b"u" * 10000)
        time.sleep(0.01)
    how = "eof" if s.recv(1) == b"" else "data"
except (BrokenPipeError, ConnectionResetError) as e:
    how = type(e).__name__
s.close()
time.sleep(0.2)
px.stop()
srv.close()
check(srv.received == [30000], "bytes reaching the sink with --cut-after-bytes 30000",
      srv.received, [30000])
check(how != "no error" and how != "data", "the sender sees the cut", how,
      "BrokenPipeError, ConnectionResetError or eof")

# 5. Reset: --reset-prob 1 turns the cut into an RST.
srv = Server("source")
px = Proxy(srv, "--seed", "7", "--cut-after-bytes", "5000", "--reset-prob", "1", "--quiet")
s = px.connect()
how, n = read_to_end(s)
s.close()
rc, err, summ = px.stop()
srv.close()
check(how == "reset" and n <= 5000, "client sees a reset after at most 5000 bytes",
      (how, n), ("reset", "<= 5000"))
check(summ is not None and summ["resets"] == 1, "summary counts the reset", summ, "resets=1")

# 6. Stalls: 30000 bytes with a 300 ms stall every 10000 bytes take at least
#    two stalls' time.
srv = Server("fixed:30000")
px = Proxy(srv, "--seed", "7", "--stall-every-bytes", "10000", "--stall-ms", "300",
           "--quiet")
s = px.connect()
t = time.monotonic()
how, n = read_to_end(s)
elapsed = time.monotonic() - t
s.close()
rc, err, summ = px.stop()
srv.close()
check(how == "eof" and n == 30000, "all data through a stalling link", (how, n), ("eof", 30000))
check(elapsed >= 0.58, "time for 30000 bytes with stalls (s)", round(elapsed, 3), ">= 0.6")
check(summ is not None and summ["stalls"] >= 2, "summary counts stalls", summ, "stalls >= 2")

# 7. Backpressure: the client does not read for a second while the server
#    sends flat out; the proxy stops reading, so the server is held back and
#    the proxy's memory stays small.


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


srv = Server("source")
px = Proxy(srv, "--seed", "7", "--quiet")
rss0 = rss_kb(px.p.pid)
s = px.connect()
time.sleep(1.0)
growth = rss_kb(px.p.pid) - rss0
sent = sum(srv.sent)
with open(f"/proc/{px.p.pid}/maps") as f:
    asan = "asan" in f.read()  # ASan's quarantine keeps freed memory resident
s.close()
rc, err, summ = px.stop()
srv.close()
check(sent < 32 << 20, "bytes the server got out while the client did not read", sent,
      "< 32 MiB (kernel buffers + 64 KiB)")
peak = summ["peak_buffered_bytes"] if summ else None
check(peak is not None and peak <= 2 * (65536 + 16384), "peak bytes buffered by the proxy",
      peak, "<= 2 x (--buffer-bytes 65536 + one 16 KiB read)")
if asan:
    print(f"skip proxy RSS growth under ASan: {growth} KiB")
else:
    check(growth < 4096, "proxy RSS growth while blocked (KiB)", growth, "< 4096")

# 8. --duration-s: exits by itself with the summary.
srv = Server("echo")
px = Proxy(srv, "--seed", "7", "--duration-s", "1")
t = time.monotonic()
try:
    rc = px.p.wait(timeout=5)
except subprocess.TimeoutExpired:
    rc = None
elapsed = time.monotonic() - t
_, err, summ = px.stop()
srv.close()
check(rc == 0 and 0.8 <= elapsed <= 2.5, "exit after --duration-s 1 (code, s)",
      (rc, round(elapsed, 2)), "(0, about 1)")
check(summ is not None and summ["seed"] == 7, "summary on exit", summ, "seed=7")

# 9. --max-conns 1: a second connection at once is accepted and closed at
#    once; a dead target closes the client's connection too.
srv = Server("echo")
px = Proxy(srv, "--seed", "7", "--max-conns", "1", "--quiet")
first = px.connect()
second = px.connect()
how, n = read_to_end(second)
first.sendall(b"still here")
echoed = first.recv(64)
first.close()
second.close()
srv.close()
dead = socket.socket()
dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
rc, err, summ = px.stop()
check(how == "eof" and echoed == b"still here", "second connection over --max-conns 1 closed",
      (how, echoed), ("eof", b"still here"))
check(summ is not None and summ["refused"] == 1, "summary counts the refusal", summ, "refused=1")


class Dead:
    port = dead.getsockname()[1]


px = Proxy(Dead, "--seed", "7", "--quiet")
s = px.connect()
how, n = read_to_end(s)
s.close()
rc, err, summ = px.stop()
dead.close()
check(how in ("eof", "reset") and n == 0, "client of a dead target sees its connection end",
      (how, n), ("eof", 0))
check(summ is not None and summ["connect_failed"] == 1, "summary counts the failed connect",
      summ, "connect_failed=1")

# 10. The delay line: a bulk stream of 1 MB at 256 kbit/s (32,000 B/s) gets
#     at least 95% of the rate, measured from its first byte (so the latency
#     itself is not counted), at a 100 ms, a 2 s and a 4 s round trip
#     (--latency-ms is one way), and with --buffer-bytes far below the
#     bandwidth-delay product. A proxy that counted the bytes in flight
#     against --buffer-bytes would stop reading once rate x latency filled it
#     and turn into stop-and-wait: before the delay line, the 4 s round trip
#     got 61% of the rate and the 16 KiB buffer at 2 s about half.
BULK = 1 << 20


def bulk(latency_ms, extra, out):
    srv = Server(f"fixed:{BULK}")
    px = Proxy(srv, "--seed", "3", "--rate-kbit", "256", "--latency-ms", str(latency_ms),
               "--quiet", *extra)
    s = px.connect()
    s.settimeout(60)
    n, first, t_first = 0, 0, None
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            if t_first is None:
                t_first, first = time.monotonic(), len(d)
            n += len(d)
    except OSError:
        pass
    t_end = time.monotonic()
    s.close()
    out.append((latency_ms, extra, n, (n - first) / max(t_end - t_first, 1e-9)
                if t_first else 0, px, srv))


runs = []
threads = [threading.Thread(target=bulk, args=(lat, extra, runs)) for lat, extra in
           [(50, []), (1000, []), (2000, []), (1000, ["--buffer-bytes", "16384"])]]
for th in threads:
    th.start()
for th in threads:
    th.join(90)
for lat, extra, n, rate, px, srv in sorted(runs, key=lambda r: (r[0], len(r[1]))):
    rc, err, summ = px.stop()
    srv.close()
    check(n == BULK and rate >= 0.95 * 32000,
          f"bulk stream, --latency-ms {lat} {' '.join(extra)} (bytes, B/s after the first byte)",
          (n, round(rate)), f"({BULK}, >= 30400)")
check(len(runs) == 4, "bulk streams finished", len(runs), 4)

# 11. A cut with latency: what went onto the wire before the cut still
#     arrives, so the client gets exactly the cut point, then end-of-stream.
srv = Server("source")
px = Proxy(srv, "--seed", "7", "--latency-ms", "200", "--rate-kbit", "1000",
           "--cut-after-bytes", "30000", "--quiet")
s = px.connect()
how, n = read_to_end(s)
s.close()
rc, err, summ = px.stop()
srv.close()
check((how, n) == ("eof", 30000), "cut at 30000 with 200 ms latency", (how, n), ("eof", 30000))

# 12. A silent stall: every connection (--stall-conn-prob 1) freezes after
#     10000 bytes for 800 ms, then goes on; nothing is lost.
srv = Server("fixed:30000")
px = Proxy(srv, "--seed", "7", "--stall-conn-prob", "1", "--stall-conn-ms", "800",
           "--stall-conn-after-bytes", "10000", "--quiet")
s = px.connect()
t = time.monotonic()
n, gap, last = 0, 0.0, None
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        now = time.monotonic()
        if last is not None and n == 10000:
            gap = now - last
        n += len(d)
        last = now
except OSError:
    pass
s.close()
rc, err, summ = px.stop()
srv.close()
check(n == 30000 and gap >= 0.78, "silent stall after 10000 bytes (bytes, s of silence)",
      (n, round(gap, 3)), "(30000, >= 0.8)")
check(summ is not None and summ["silent_stalls"] == 1 and summ["stall_ms"] == 800,
      "summary counts the silent stall", summ, "silent_stalls=1 stall_ms=800")

# 13. Which connections go silent is drawn from the seed: with
#     --stall-conn-prob 0.5 the same seed picks the same connections, at
#     the same points (drawn below each one's cut point).


def silent_run(seed, *extra):
    srv = Server("echo")
    px = Proxy(srv, "--seed", str(seed), "--stall-conn-prob", "0.5", "--stall-conn-ms", "1",
               "--cut-after-bytes", "1000:2000", *extra)
    for _ in range(8):
        c = px.connect()
        c.close()
    time.sleep(0.2)
    rc, err, summ = px.stop()
    srv.close()
    return re.findall(r"conn (\d+) will stall silently after (\d+) bytes", err), \
        [int(x) for x in re.findall(r"conn \d+ accepted: cut after (\d+)", err)]


picks_a, cut_a = silent_run(11)
picks_b, _ = silent_run(11)
check(1 <= len(picks_a) <= 7 and picks_a == picks_b, "seeded choice of silent connections",
      picks_a, "same for the same seed, some but not all of 8")
check(all(int(at) < cut_a[int(i)] for i, at in picks_a), "silent points below the cut",
      [(at, cut_a[int(i)]) for i, at in picks_a], "each below its connection's cut")

# --stall-seed draws the silent connections alone: the cuts stay those of
# --seed, the choice is that of a run whose --seed is the stall seed.
picks_c, cut_c = silent_run(11, "--stall-seed", "12")
picks_d, _ = silent_run(12)
check(cut_c == cut_a and [i for i, _ in picks_c] == [i for i, _ in picks_d] and
      picks_c != picks_a, "--stall-seed draws the silent connections alone",
      (picks_c, picks_d, picks_a), "cuts of seed 11, silent connections of seed 12")

# 14. Bad options are refused with a message naming the option.
for args, name in [(["--rate-kbit", "fast"], "--rate-kbit"),
                   (["--cut-after-bytes", "9:3"], "--cut-after-bytes"),
                   (["--stall-ms", "10"], "--stall-every-bytes"),
                   (["--reset-prob", "1.5"], "--reset-prob"),
                   (["--stall-conn-prob", "2"], "--stall-conn-prob"),
                   (["--stall-conn-prob", "0.1"], "--stall-conn-ms"),
                   (["--stall-conn-ms", "10"], "--stall-conn-prob"),
                   (["--stall-conn-prob", "0.1", "--stall-conn-ms", "x"], "--stall-conn-ms"),
                   (["--stall-conn-prob", "0.1", "--stall-conn-ms", "10",
                     "--stall-conn-after-bytes", "0"], "--stall-conn-after-bytes"),
                   (["--stall-conn-after-bytes", "100"], "--stall-conn-ms"),
                   (["--stall-seed", "3"], "--stall-seed"),
                   (["--stall-conn-prob", "0.1", "--stall-conn-ms", "10", "--stall-seed", "x"],
                    "--stall-seed")]:
    r = subprocess.run([PROXY, "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", *args],
                       capture_output=True, text=True, timeout=5)
    check(r.returncode == 2 and name in r.stderr, f"refuses {' '.join(args)}",
          (r.returncode, r.stderr.strip()), f"exit 2 naming {name}")

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
PY
