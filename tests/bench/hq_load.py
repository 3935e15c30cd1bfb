#!/usr/bin/env python3
"""The load of tests/bench/hq_load against one running outpost-hq.

N simulated nodes upload their real signed segments over tus at once (one
thread each: POST, one PATCH with the whole segment, the receipt from the
answer's Outpost-Receipt or, without it, from GET /v1/receipts/N; a 503
is waited out for its Retry-After and the PATCH sent again, as a node
does). Meanwhile a separate process probes the receiver on keep-alive
connections, one HEAD of an unfinished upload and one receipt GET of an
applied segment after the other, and records each latency. Prints one
JSON object: the probes' count, p50, p99 and max per kind, the segments
and records applied, the window from the first PATCH to the last
receipt, and the 503s.

usage: hq_load.py PORT PLAN_FILE PROBE_TOKEN PROBE_UPLOAD_PATH PROBE_SEGMENT
PLAN_FILE: one line per node: NAME TOKEN SEGNO:PATH[:RECORDS] ...
"""
import base64
import http.client
import json
import multiprocessing
import sys
import threading
import time


def b64(s):
    return base64.b64encode(s.encode()).decode()


def node_run(port, name, token, segs, out, errors):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    auth = {"Authorization": "Bearer " + token, "Tus-Resumable": "1.0.0"}
    for segno, path, records in segs:
        data = open(path, "rb").read()
        try:
            h = dict(auth)
            h["Upload-Length"] = str(len(data))
            h["Upload-Metadata"] = "node %s,segment %s" % (b64(name), b64(str(segno)))
            conn.request("POST", "/files/", body=b"", headers=h)
            r = conn.getresponse()
            r.read()
            if r.status != 201:
                errors.append("%s segment %s: POST %d" % (name, segno, r.status))
                return
            loc = r.getheader("Location")
            loc = loc[loc.index("/files/"):] if "/files/" in loc else loc
            busy = 0
            while True:
                h = dict(auth)
                h["Content-Type"] = "application/offset+octet-stream"
                h["Upload-Offset"] = "0"
                conn.request("PATCH", loc, body=data, headers=h)
                r = conn.getresponse()
                r.read()
                if r.status == 503:
                    busy += 1
                    time.sleep(float(r.getheader("Retry-After") or "1"))
                    continue
                break
            if r.status != 204:
                errors.append("%s segment %s: PATCH %d" % (name, segno, r.status))
                return
            receipt = r.getheader("Outpost-Receipt")
            if receipt:
                body = base64.urlsafe_b64decode(receipt + "=" * (-len(receipt) % 4))
            else:
                while True:
                    conn.request("GET", "/v1/receipts/%d" % segno, headers=auth)
                    g = conn.getresponse()
                    body = g.read()
                    if g.status == 200:
                        break
                    time.sleep(0.2)
            rec = json.loads(body)
            out.append((time.monotonic(), rec.get("status"), rec.get("applied", 0), busy))
        except Exception as e:  # a bench reports, it does not stop
            errors.append("%s segment %s: %s" % (name, segno, e))
            return


def probe(port, token, upload_path, segno, stop, q):
    lat = {"HEAD": [], "receipt": []}
    auth = {"Authorization": "Bearer " + token, "Tus-Resumable": "1.0.0"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    errors = 0
    while not stop.is_set():
        for kind, method, path in (("HEAD", "HEAD", upload_path),
                                   ("receipt", "GET", "/v1/receipts/%s" % segno)):
            t0 = time.perf_counter()
            try:
                conn.request(method, path, headers=auth)
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except Exception:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            dt = (time.perf_counter() - t0) * 1000.0
            if ok:
                lat[kind].append(dt)
            else:
                errors += 1
        time.sleep(0.005)
    q.put((lat, errors))


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return round(v[min(len(v) - 1, int(p / 100.0 * len(v)))], 2)


def main():
    port = int(sys.argv[1])
    plan = []
    for line in open(sys.argv[2]):
        f = line.split()
        segs = []
        for s in f[2:]:
            parts = s.split(":")
            segs.append((int(parts[0]), parts[1], int(parts[2]) if len(parts) > 2 else 0))
        plan.append((f[0], f[1], segs))
    ptoken, ppath, pseg = sys.argv[3], sys.argv[4], sys.argv[5]

    stop = multiprocessing.Event()
    q = multiprocessing.Queue()
    pr = multiprocessing.Process(target=probe, args=(port, ptoken, ppath, pseg, stop, q))
    pr.start()
    time.sleep(0.5)  # the probe's connection is up

    out, errors = [], []
    threads = [threading.Thread(target=node_run, args=(port, n, t, s, out, errors))
               for n, t, s in plan]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1 = max([o[0] for o in out] or [time.monotonic()])
    stop.set()
    lat, perr = q.get()
    pr.join()

    window = t1 - t0
    applied = sum(o[2] for o in out)
    res = {
        "nodes": len(plan),
        "segments": len(out),
        "segments_applied": sum(1 for o in out if o[1] == "applied"),
        "records_applied": applied,
        "window_s": round(window, 2),
        "records_per_s": round(applied / window, 1) if window > 0 else None,
        "segments_per_s": round(len(out) / window, 2) if window > 0 else None,
        "busy_503": sum(o[3] for o in out),
        "errors": errors[:5],
        "n_errors": len(errors),
        "probe_errors": perr,
    }
    for kind in ("HEAD", "receipt"):
        v = lat[kind]
        res[kind] = {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99),
                     "max_ms": round(max(v), 2) if v else None}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
