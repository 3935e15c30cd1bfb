#!/usr/bin/env python3
"""Unauthenticated large bodies against a running daemon, and what they
cost it in resident memory (VmRSS of /proc/PID/status).

CONNS clients each send the head of a METHOD PATH request announcing a
body of BODY bytes (every other one with Expect: 100-continue), then push
the body as fast as the server takes it, as an attacker that ignores the
answer would, until the server answers and closes or TIMEOUT seconds pass.
The clients come from 127.0.0.2 upwards, 16 per address.
RSS is sampled throughout; after every client closed it is read again once
the daemon had SETTLE seconds to give memory back.

Prints "baseline_kib peak_kib after_kib answered statuses" on one line
(statuses: count per status code). With --max-peak-kib / --max-after-kib
it exits 1 when peak or after exceed baseline by more than that.
"""
import argparse
import collections
import selectors
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=300)
    ap.add_argument("--body", type=int, default=4 * 1024 * 1024)
    ap.add_argument("--method", default="PATCH")
    ap.add_argument("--path", default="/files/0123456789abcdef0123456789abcdef")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--max-peak-kib", type=int)
    ap.add_argument("--max-after-kib", type=int)
    a = ap.parse_args()

    baseline = rss_kib(a.pid)
    peak = baseline
    chunk = b"x" * 65536
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(a.conns):
        # 16 clients per source address (127.0.0.2, .3, ...): the memory
        # attack comes from many addresses, so the per-address connection
        # cap (32) does not answer it for the server.
        src = f"127.0.0.{2 + i // 16}"
        s = socket.create_connection(("127.0.0.1", a.port), source_address=(src, 0))
        s.setblocking(False)
        head = (f"{a.method} {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {a.body}\r\n")
        if a.method == "PATCH":  # as a tus client would
            head += ("Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                     "Content-Type: application/offset+octet-stream\r\n")
        for h in a.header:
            head += h + "\r\n"
        if i % 2:
            head += "Expect: 100-continue\r\n"
        head = (head + "\r\n").encode()
        state[s] = {"out": head, "sent_body": 0, "in": b"", "status": None}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)

    statuses = collections.Counter()
    deadline = time.monotonic() + a.timeout
    last_sample = 0.0
    while state and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.05):
            s = key.fileobj
            st = state.get(s)
            if st is None:
                continue
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                if data:
                    st["in"] += data
                    # skip interim answers (100 Continue)
                    while True:
                        end = st["in"].find(b"\r\n\r\n")
                        if end < 0:
                            break
                        code = int(st["in"][9:12])
                        st["in"] = st["in"][end + 4:]
                        if code >= 200 and st["status"] is None:
                            st["status"] = code
                        if code >= 200:
                            break
                    continue
                statuses[st["status"] or 0] += 1
                sel.unregister(s)
                s.close()
                del state[s]
                continue
            if ev & selectors.EVENT_WRITE:
                try:
                    if st["out"]:
                        n = s.send(st["out"])
                        st["out"] = st["out"][n:]
                    elif st["sent_body"] < a.body:
                        n = s.send(chunk[: min(len(chunk), a.body - st["sent_body"])])
                        st["sent_body"] += n
                    else:
                        sel.modify(s, selectors.EVENT_READ)
                except BlockingIOError:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    sel.modify(s, selectors.EVENT_READ)
        now = time.monotonic()
        if now - last_sample > 0.05:
            last_sample = now
            peak = max(peak, rss_kib(a.pid))
    for s, st in list(state.items()):
        statuses[st["status"] or 0] += 1
        sel.unregister(s)
        s.close()
    peak = max(peak, rss_kib(a.pid))
    time.sleep(a.settle)
    after = rss_kib(a.pid)
    answered = sum(n for code, n in statuses.items() if code)
    print(f"{baseline} {peak} {after} {answered} "
          + ",".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
    bad = False
    if a.max_peak_kib is not None and peak - baseline > a.max_peak_kib:
        print(f"peak {peak} KiB is more than {a.max_peak_kib} KiB over the baseline {baseline} KiB",
              file=sys.stderr)
        bad = True
    if a.max_after_kib is not None and after - baseline > a.max_after_kib:
        print(f"after {after} KiB is more than {a.max_after_kib} KiB over the baseline "
              f"{baseline} KiB", file=sys.stderr)
        bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
