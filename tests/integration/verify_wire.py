#!/usr/bin/env python3
"""What crossed the wire during an anti-entropy repair (test_sync_verify.sh).

usage: verify_wire.py CAPTURE CANARY...

Takes the node->HQ stream of a capture_proxy.py capture apart with
residency_canary.py's decoder: every segment uploaded, decoded, and the
digest exchange. Prints one JSON object: the records each segment carried
({entity, id, op}), the bytes of the digest and report requests and their
answers (bodies, and check_wire_bytes: whole messages, heads included), and whether any CANARY occurs anywhere in the raw stream or in
a decoded segment (none may). Standard library only.
"""
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("rc", os.path.join(HERE, "residency_canary.py"))
rc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rc)


def main():
    capture, canaries = sys.argv[1], [c.encode() for c in sys.argv[2:]]
    wire = rc.Wire(capture)
    out = {"records": [], "digest_requests": 0, "digest_bytes_up": 0, "digest_bytes_down": 0,
           "check_wire_bytes": 0,
           "canary_raw": False, "canary_segment": False, "segments": 0}
    for st in list(wire.ups.values()) + list(wire.downs.values()):
        if any(c in bytes(st.data) for c in canaries):
            out["canary_raw"] = True
    for r in wire.requests:
        line = r.get("line", "")
        if " /v1/digest " in line or " /v1/verify " in line:
            out["digest_requests"] += line.startswith("POST /v1/digest")
            out["digest_bytes_up"] += r["body_len"]
    def lengths(msgs, total):
        """Each message's bytes on the wire, head included."""
        starts = [m["start"] for m in msgs] + [total]
        return [starts[i + 1] - starts[i] for i in range(len(msgs))]

    for cid, st in wire.ups.items():
        reqs = [r for r in wire.requests if r["cid"] == cid]
        methods = [r.get("line", "").split(" ")[0] for r in reqs]
        resps = rc.parse_http(wire.downs[cid].data, True, methods) if cid in wire.downs else []
        up_len = lengths(reqs, len(st.data))
        down_len = lengths(resps, len(wire.downs[cid].data)) if resps else []
        for i, req in enumerate(reqs):
            if "/v1/digest" not in req.get("line", "") and "/v1/verify" not in req.get("line", ""):
                continue
            out["check_wire_bytes"] += up_len[i] + (down_len[i] if i < len(down_len) else 0)
            if i < len(resps):
                out["digest_bytes_down"] += resps[i]["body_len"]
    for path in wire.uploads:
        header, _, text, _ = rc.decode_segment(wire.image(path))
        if header is None:
            continue
        out["segments"] += 1
        if any(c.decode() in text for c in canaries):
            out["canary_segment"] = True
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            body = rec.get("record") or rec.get("r") or {}
            out["records"].append({"entity": rec.get("entity", rec.get("e")),
                                   "op": rec.get("op", rec.get("o")),
                                   "id": body.get("id") if isinstance(body, dict) else None,
                                   "line": line[:200]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
