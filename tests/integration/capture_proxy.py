#!/usr/bin/env python3
"""A TCP proxy that records every byte it forwards, for the residency test.

usage: capture_proxy.py --target HOST:PORT --capture FILE --control SOCKET
                        [--listen HOST:PORT]

It goes between a node and HQ (tests/integration/test_residency.sh) and
writes everything it forwards, in both directions, to FILE with the time
and the connection it belongs to, so that the test can take the node->HQ
stream apart afterwards (residency_canary.py). A UNIX socket takes one
command per connection and answers one JSON line:

  hold           stop forwarding in both directions; connections stay open
                 and the proxy stops reading once a small buffer is full,
                 so nothing reaches HQ and the node soon cannot write more
  open           forward again
  hold-before M  forward, but hold again just before the next HTTP request
                 with method M (POST: the node may cut a segment and ask to
                 upload it, and not one byte of it goes)
  rate N         cap node->HQ at N bytes/s (0: no cap)
  mark LABEL     record, for every open connection, how many bytes of its
                 node->HQ stream the node had written at this instant: what
                 the proxy received, plus what waits in the proxy's socket
                 (SIOCINQ) and in the node's send queue (/proc/net/tcp). A
                 byte at or past the mark had not left the node when the
                 mark was taken.
  stats          counters (below)

Counters: conns, up_bytes and down_bytes (forwarded), patch_bytes (upload
body bytes received from the node: PATCH bodies, and POST bodies that create
an upload with its first bytes), requests (requests received from the
node), held, held_request (the request held by hold-before, if any), rate.

stdout gets one line, `listening 127.0.0.1:PORT`, once the proxy listens.
SIGTERM or SIGINT: the capture is flushed and the proxy exits 0.

Capture file: records of a 17-byte header, big-endian
  kind (1 byte: O open, U node->HQ data, D HQ->node data, C close, M mark),
  connection id (u32), time (f64, seconds, CLOCK_MONOTONIC), length (u32),
then `length` bytes (data, or for M the mark as a JSON object).
"""
import argparse
import asyncio
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import termios
import time

HDR = struct.Struct(">cIdI")
QUEUE_CAP = 4096  # bytes held per direction before reading pauses
KERNEL_BUF = 4096  # receive buffer asked of the kernel for accepted sockets


class Requests:
    """Finds the requests in one node->HQ stream as it arrives (bodies by
    Content-Length): where each starts, its method, PATCH body bytes."""

    def __init__(self):
        self.head = b""
        self.head_at = 0  # stream offset of self.head[0]
        self.pos = 0  # stream offset of the next byte fed
        self.body_left = 0
        self.is_patch = False
        self.patch_bytes = 0
        self.starts = []  # (offset, method)

    def feed(self, data):
        while data:
            if self.body_left:
                n = min(self.body_left, len(data))
                if self.is_patch:
                    self.patch_bytes += n
                self.body_left -= n
                self.pos += n
                data = data[n:]
                continue
            if not self.head:
                self.head_at = self.pos
            take = data
            self.head += take
            self.pos += len(take)
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.head[:end]
            rest = self.head[end + 4:]
            self.pos -= len(rest)
            data, self.head = rest, b""
            line = head.split(b"\r\n", 1)[0]
            method = line.split(b" ", 1)[0].decode("latin-1")
            self.starts.append((self.head_at, method))
            self.is_patch = method in ("PATCH", "POST")
            for h in head.split(b"\r\n")[1:]:
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length" and v.strip().isdigit():
                    self.body_left = int(v.strip())


def tx_queue_of(local_port, remote_port):
    """The send queue of the socket 127.0.0.1:local_port -> 127.0.0.1:remote_port."""
    want_l, want_r = "0100007F:%04X" % local_port, "0100007F:%04X" % remote_port
    try:
        with open("/proc/net/tcp") as f:
            for line in f:
                p = line.split()
                if len(p) > 4 and p[1] == want_l and p[2] == want_r:
                    return int(p[4].split(":")[0], 16)
    except OSError:
        pass
    return 0


class Proxy:
    def __init__(self, args):
        self.target = args.target
        self.cap = open(args.capture, "wb")
        self.held = False
        self.hold_before = None  # a method: hold again before its next request
        self.held_request = None
        self.rate = 0
        self.tokens = 0.0
        self.last_fill = time.monotonic()
        self.conns = {}
        self.next_id = 0
        self.up_bytes = self.down_bytes = 0
        self.port = 0
        self.pump_handle = None
        self.ended_patch = self.ended_requests = 0  # of connections that ended

    def record(self, kind, cid, data):
        self.cap.write(HDR.pack(kind, cid, time.monotonic(), len(data)))
        self.cap.write(data)

    def refill(self):
        now = time.monotonic()
        if self.rate:
            burst = max(512.0, self.rate / 20.0)
            self.tokens = min(burst, self.tokens + (now - self.last_fill) * self.rate)
        self.last_fill = now

    def pump_all(self):
        self.pump_handle = None
        for c in list(self.conns.values()):
            c.pump()

    def schedule_pump(self, delay):
        if self.pump_handle is None:
            self.pump_handle = asyncio.get_running_loop().call_later(delay, self.pump_all)

    def stats(self):
        live = list(self.conns.values())
        return {"conns": len(live), "up_bytes": self.up_bytes, "down_bytes": self.down_bytes,
                "patch_bytes": self.ended_patch + sum(c.req.patch_bytes for c in live),
                "requests": self.ended_requests + sum(len(c.req.starts) for c in live),
                "down_queued": sum(len(c.q_down) for c in live),
                "held": self.held, "held_request": self.held_request, "rate": self.rate}


class Side(asyncio.Protocol):
    """One socket of a proxied connection: the node's or HQ's."""

    def __init__(self, conn):
        self.conn = conn
        self.transport = None
        self.paused = False

    def connection_made(self, transport):
        self.transport = transport
        self.conn.side_ready(self)

    def data_received(self, data):
        self.conn.received(self, data)

    def eof_received(self):
        self.conn.ended(self)
        return True

    def connection_lost(self, exc):
        self.conn.ended(self)

    def pause(self):
        if not self.paused and self.transport and not self.transport.is_closing():
            self.transport.pause_reading()
            self.paused = True

    def resume(self):
        if self.paused and self.transport and not self.transport.is_closing():
            self.transport.resume_reading()
            self.paused = False


class Conn:
    def __init__(self, proxy):
        self.p = proxy
        self.id = proxy.next_id
        proxy.next_id += 1
        self.node, self.hq = Side(self), Side(self)
        self.q_up, self.q_down = bytearray(), bytearray()
        self.fwd_up = 0  # node->HQ bytes forwarded (the stream offset of q_up[0])
        self.node_done = self.hq_done = self.closed = False
        self.req = Requests()

    def side_ready(self, side):
        if side is self.node:
            self.p.conns[self.id] = self
            self.p.record(b"O", self.id, b"")
            asyncio.get_running_loop().create_task(self.connect())

    async def connect(self):
        try:
            await asyncio.get_running_loop().create_connection(lambda: self.hq, *self.p.target)
        except OSError:
            self.close()
            return
        self.pump()

    def received(self, side, data):
        if side is self.node:
            self.q_up += data
            self.req.feed(data)
            if len(self.q_up) > QUEUE_CAP:
                self.node.pause()
        else:
            self.q_down += data
            if len(self.q_down) > QUEUE_CAP:
                self.hq.pause()
        self.pump()

    def ended(self, side):
        if side is self.node:
            self.node_done = True
        else:
            self.hq_done = True
        self.pump()

    def limit(self):
        """How many queued node->HQ bytes may go before hold-before applies."""
        p = self.p
        if p.hold_before is None:
            return len(self.q_up)
        for off, method in self.req.starts:
            if off >= self.fwd_up and method == p.hold_before:
                if off == self.fwd_up:
                    p.held, p.hold_before = True, None
                    p.held_request = "%s on connection %d" % (method, self.id)
                    return 0
                return off - self.fwd_up
        return len(self.q_up)

    def pump(self):
        p = self.p
        if self.closed:
            return
        if not p.held and self.hq.transport is not None:
            if self.q_down:
                data = bytes(self.q_down)
                self.q_down.clear()
                self.node.transport.write(data)
                p.record(b"D", self.id, data)
                p.down_bytes += len(data)
            while self.q_up and not p.held:
                n = self.limit()
                if n == 0:
                    break
                if p.rate:
                    p.refill()
                    if p.tokens < 1:
                        p.schedule_pump(max(0.005, (1 - p.tokens) / p.rate))
                        break
                    n = min(n, int(p.tokens))
                    p.tokens -= n
                data = bytes(self.q_up[:n])
                del self.q_up[:n]
                self.fwd_up += n
                self.hq.transport.write(data)
                p.record(b"U", self.id, data)
                p.up_bytes += n
        if len(self.q_up) < QUEUE_CAP // 2:
            self.node.resume()
        if len(self.q_down) < QUEUE_CAP // 2:
            self.hq.resume()
        if not p.held and ((self.node_done and not self.q_up) or (self.hq_done and not self.q_down)):
            self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.p.ended_patch += self.req.patch_bytes
        self.p.ended_requests += len(self.req.starts)
        for s in (self.node, self.hq):
            if s.transport is not None and not s.transport.is_closing():
                s.transport.close()
        self.p.conns.pop(self.id, None)
        self.p.record(b"C", self.id, b"")

    def mark(self):
        inq, peer_port = 0, 0
        t = self.node.transport
        sock = t.get_extra_info("socket") if t else None
        if sock is not None:
            buf = bytearray(4)
            try:
                fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
                inq = int.from_bytes(buf, sys.byteorder)
            except (OSError, ValueError):
                pass  # the node reset the connection: nothing is queued
            peer = t.get_extra_info("peername")
            peer_port = peer[1] if peer else 0
        txq = tx_queue_of(peer_port, self.p.port) if peer_port else 0
        received = self.fwd_up + len(self.q_up)
        return {"forwarded": self.fwd_up, "received": received, "inq": inq, "txq": txq,
                "boundary": received + inq + txq}


async def control(proxy, reader, writer):
    line = (await reader.readline()).decode().strip()
    cmd, _, arg = line.partition(" ")
    ans = {"ok": True}
    if cmd == "hold":
        proxy.held = True
    elif cmd in ("open", "hold-before"):
        proxy.held, proxy.held_request = False, None
        proxy.hold_before = arg if cmd == "hold-before" else None
        proxy.refill()
        proxy.pump_all()
    elif cmd == "rate":
        proxy.refill()
        proxy.rate, proxy.tokens = max(0, int(arg or "0")), 0.0
        proxy.pump_all()
    elif cmd == "mark":
        conns = {}
        for c in list(proxy.conns.values()):
            try:
                conns[str(c.id)] = c.mark()
            except Exception as e:  # a connection torn down under us: say so, go on
                conns[str(c.id)] = {"error": str(e), "forwarded": c.fwd_up,
                                    "received": c.fwd_up + len(c.q_up), "inq": 0, "txq": 0,
                                    "boundary": c.fwd_up + len(c.q_up)}
        m = {"label": arg, "time": time.monotonic(), "conns": conns}
        proxy.record(b"M", 0, json.dumps(m).encode())
        ans["mark"] = m
    elif cmd != "stats":
        ans = {"ok": False, "error": "unknown command %r" % line}
    proxy.cap.flush()
    ans.update(proxy.stats())
    writer.write((json.dumps(ans) + "\n").encode())
    await writer.drain()
    writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--target", required=True)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--control", required=True)
    args = ap.parse_args()
    h, _, p = args.target.rpartition(":")
    args.target = (h, int(p))
    proxy = Proxy(args)
    loop = asyncio.get_running_loop()
    # A small receive buffer, inherited by every accepted socket, so that
    # what the node has written and the proxy not yet forwarded stays small:
    # a held or throttled link holds the node back at once.
    lh, _, lp = args.listen.rpartition(":")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUF)
    lsock.bind((lh, int(lp)))
    server = await loop.create_server(lambda: Conn(proxy).node, sock=lsock)
    proxy.port = lsock.getsockname()[1]
    ctl = await asyncio.start_unix_server(lambda r, w: control(proxy, r, w), args.control)
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(True))
    print("listening %s:%d" % (lh, proxy.port), flush=True)
    await stop
    server.close()
    ctl.close()
    for c in list(proxy.conns.values()):
        c.close()
    proxy.cap.close()
    try:
        os.unlink(args.control)
    except OSError:
        pass
    print("capture_proxy: up %d bytes, down %d bytes, %d connections" %
          (proxy.up_bytes, proxy.down_bytes, proxy.next_id), file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
