#!/usr/bin/env python3
"""Compares what HQ holds for a node with what the node says may leave.

usage: sync_compare.py EXPECTED HQ_RECORDS NODE FORBIDDEN

EXPECTED is `outpost egress-report --output` (one {"entity","record"} per
live record, projected exactly as sync projects), HQ_RECORDS is
`outpost-hq records --json` (one {"node","entity","id","version","op",
"record"} per record HQ holds), NODE the node id, FORBIDDEN a file of raw
values (one per line) that must not appear anywhere in HQ's records.
Exits 0 when HQ's live records are exactly the expected projections (none
missing, none extra, none twice, each equal field by field but for
"version" and "updated_at", and HQ's version never above the node's) and
no forbidden value appears; otherwise prints what differs (at most 10 of
each kind) and exits 1. The version and the time of an edit of a field
that does not leave need not reach HQ: such an edit sends nothing
(docs/SYNC.md, "Nothing new, nothing sent"), as the projection hash
leaves both out.
"""
import json
import sys

def load_lines(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    yield n, json.loads(line)
                except ValueError as e:
                    sys.exit(f"{path}:{n}: not JSON: {e}")


def visible(record):
    """The record as the projection hash sees it: no version, no updated_at."""
    return {k: v for k, v in record.items() if k not in ("version", "updated_at")}


def behind(hq, node):
    """Whether HQ's version is not above the node's."""
    return hq.get("version", 0) <= node.get("version", 0)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    expected_path, hq_path, node, forbidden_path = sys.argv[1:]
    expected = {}
    for n, obj in load_lines(expected_path):
        key = (obj["entity"], obj["record"]["id"])
        expected[key] = obj["record"]
    live, deleted, twice = {}, 0, []
    raw_hq = []
    for n, obj in load_lines(hq_path):
        if obj.get("node") != node:
            continue
        raw_hq.append(json.dumps(obj, ensure_ascii=False))
        key = (obj["entity"], obj["id"])
        if obj.get("op") == "delete":
            deleted += 1
            continue
        if key in live:
            twice.append(key)
        live[key] = obj["record"]
    problems = []
    missing = [k for k in expected if k not in live]
    extra = [k for k in live if k not in expected]
    differ = [k for k in expected if k in live and
              (visible(live[k]) != visible(expected[k]) or not behind(live[k], expected[k]))]
    for name, keys in (("missing at HQ", missing), ("extra at HQ", extra),
                       ("held twice at HQ", twice), ("different at HQ", differ)):
        if keys:
            problems.append(f"{len(keys)} records {name}, e.g. {keys[:10]}")
            if name == "different at HQ":
                k = keys[0]
                problems.append(f"  expected {json.dumps(expected[k], sort_keys=True)}")
                problems.append(f"  HQ has   {json.dumps(live[k], sort_keys=True)}")
    blob = "\n".join(raw_hq)
    with open(forbidden_path, encoding="utf-8") as f:
        forbidden = [v.strip() for v in f if len(v.strip()) >= 4]
    leaked = [v for v in forbidden if v in blob]
    if leaked:
        problems.append(f"{len(leaked)} withheld values found at HQ, e.g. {leaked[:10]}")
    print(f"compare: {len(expected)} expected live records, {len(live)} live and "
          f"{deleted} deleted at HQ, {len(forbidden)} withheld values searched")
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
