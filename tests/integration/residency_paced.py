#!/usr/bin/env python3
"""Residency while paced segments wait in the spool or go, for
tests/integration/test_residency_paced.sh (docs/EGRESS.md, "Paced segments").

It reuses residency_canary.py as a library (its plan, planter, spool
decoder, capture proxy control and final judgement) and adds one step:

  residency_paced.py paced DIR

run after residency_canary.py's `plant` and `arrived`, with outpostd at its
default pacing (a small first segment, then segments twice as large, cut
while the one before uploads) behind a slow link. With the link held it
writes a backlog in one outbox run: fillers, group PS2 (canary records
meant for the second or third segment of the backlog), fillers, group PS3
(meant for a later segment, or still in the outbox), fillers. It opens the
link and waits until a segment holding PS2 is cut while an earlier segment
of the backlog is still unacknowledged (uploading, or, with two uploads in
flight, uploading beside it: OUTPOST_TEST_UPLOADS_IN_FLIGHT=2 waits for
that). Then, with the link slowed further but still going, it restricts (CLI and API) and erases (`outpost subject erase`) the
PS2 and PS3 records and restricts and erases scenario 4's records (at HQ
already), taking a capture mark after each command returned, and checks
that the spool files that held the old values are gone. residency_canary.py
`final` then judges every canary on the wire against its record's mark:
the exportable values of these records may have crossed only before their
restriction returned, nothing of them may remain at HQ, and HQ must equal
the node's egress report.

  residency_paced.py settle DIR

after the drain, from the capture: if no byte of the segment that held PS2
crossed the link, the PS2 records are judged like scenario 2's (not even
their ids may leave).

  residency_paced.py once DIR

after the drain: HQ holds every record of the node exactly once, and every
filler of the backlog arrived.

Unless RESIDENCY_PACED_TIGHTEN=0, step (c) follows: once a segment cut
again after the voiding holds PT (a contact whose one canary is in a
contact text field the profile exports) and waits behind another, HQ posts
a policy that makes that field local_only; from the moment the node logs
it in force (mark PT-policy) no old value of the field may leave, and HQ
must end without it, its files included.

Environment: as residency_canary.py (PROFILE, OUTPOST, OUTPOST_DB,
OUTPOST_HQ, HQ_DB, HQ_NODE, API, TOKEN, PROXY_CTL, CAPTURE, SPOOL), and
NODE_LOG (outpostd's log, for step (c)).
"""
import hashlib
import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import residency_canary as rc  # noqa: E402

# The paced canary groups (their records' role and tag prefix); PT is step (c)'s.
GROUPS = ("PS2", "PS3")
LINK_RATE = 8000  # bytes/s at the capture proxy: flaky_proxy's 64 kbit/s


def tightenable(prof):
    """A contact text field the profile exports as is, named on a line of
    its own (`contact.F: {class: exportable, ...}`): the one a tightened
    policy from HQ keeps on the node. None if the profile has none."""
    text = open(os.environ["PROFILE"], encoding="utf-8").read()
    for field, ftype, cap, spec in prof.fields("contact"):
        if ftype == rc.TEXT and not field.startswith("custom.") and \
                prof.klass("contact", field) == "exportable" and \
                re.search(r"^\s*contact\.%s: \{class: exportable" % re.escape(field), text, re.M):
            return field, cap
    return None, 0


def tightened_policy(field, path):
    """The region's profile with contact.FIELD local_only, written to path;
    its SHA-256 (what outpostd logs when it is in force)."""
    text = open(os.environ["PROFILE"], encoding="utf-8").read()
    new = "# tightened at HQ: contact.%s stays on the node\n" % field + re.sub(
        r"^(\s*contact\.%s: \{class: )exportable" % re.escape(field), r"\1local_only", text,
        count=1, flags=re.M)
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)
    return hashlib.sha256(new.encode()).hexdigest()


def link():
    """The capture proxy forwards at the link's rate."""
    rc.proxy("rate %d" % LINK_RATE)


def node_rows(sql, args=()):
    """Rows of a query on the node's database, read-only beside outpostd."""
    db = sqlite3.connect("file:%s?mode=ro" % os.environ["OUTPOST_DB"], uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def segments():
    """The node's unacknowledged segments: [(no, path, upload_url, state)]."""
    return node_rows("SELECT no, path, upload_url, state FROM sync_segments "
                     "WHERE state IN (0, 1) ORDER BY no")


def goodput():
    return node_rows("SELECT goodput_bps FROM sync_state")[0][0]


def last_segment_no():
    return node_rows("SELECT coalesce(max(no), 0) FROM sync_segments")[0][0]


def groups_in(plan, path):
    """The paced groups whose canaries the spool file holds (decoded)."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return set()
    hdr, start, text, _ = rc.decode_segment(data)
    if hdr is None:
        return set()
    found = set()
    for c, _, _ in rc.Finder(plan, lambda c: plan.d["records"].get(c["tag"], {}).get("role")
                             in GROUPS + ("PT",)).find(text):
        if c is not None:
            found.add(plan.d["records"][c["tag"]]["role"])
    return found


def wait_cut_behind(plan, group, from_no, both, what):
    """Until a segment numbered from_no or later holds `group` (decoded),
    is recorded, and an earlier one from from_no is not acknowledged (with
    two uploads in flight: both uploading). Returns its state."""
    state = {}

    def cut_behind_another():
        segs = segments()
        for no, path, url, st in segs:
            if no < from_no or not path.endswith(".seg"):
                continue
            if group in groups_in(plan, path):
                earlier = [s for s in segs if from_no <= s[0] < no]
                state.update(no=no, path=path, url=url, earlier=earlier, all=segs)
                return bool(earlier) and (not both or (bool(url) and
                                                       any(s[2] for s in earlier)))
        return False

    t0 = time.monotonic()
    while not cut_behind_another():
        if both and state.get("seen_behind") and not state.get("earlier"):
            # The one before was acknowledged before this one began: two
            # in flight was not arranged this run; what is judged stays
            # the same, the note says so.
            state["alone"] = True
            return state
        if state.get("earlier"):
            state["seen_behind"] = True
        if state.get("no") is not None and not state.get("earlier"):
            # Seen first after the one before it was acknowledged (a
            # loaded machine polls late; two uploads in flight drain the
            # one before sooner): the restrictions still hit a segment
            # that is cut and not yet acknowledged, and are judged the
            # same; the note says what was arranged.
            state["alone"] = True
            return state
        if time.monotonic() - t0 > 40:
            rc.die("no segment holding the %s records was seen cut behind an unacknowledged "
                   "one within 40 s (segments: %s)" % (group, segments()))
        time.sleep(0.01)
    return state


def describe(state):
    if state.get("alone"):
        return ("segment %d %s, with none unacknowledged before it: the one before was "
                "acknowledged before it was seen (cut behind another not arranged this run)" %
                (state["no"], "uploading" if state["url"] else "waiting"))
    return "segment %d %s, with %s unacknowledged before it" % (
        state["no"], "uploading (URL recorded)" if state["url"] else "cut, waiting for the link",
        ", ".join("%d (%s)" % (s[0], "uploading" if s[2] else "waiting")
                  for s in state["earlier"]))


def cmd_paced(dirpath):
    pl = rc.Planter(dirpath)
    plan = pl.plan
    gp = goodput()
    if gp <= 0:
        rc.die("the node measured no goodput in the first drain: the first segment of the "
               "backlog would not be paced by the link")
    # docs/OUTBOX.md, "When a segment is cut": the first segment of a
    # backlog is about goodput x 1.5 s, each next one twice the one before.
    first = min(max(gp * 1.5, 8192), 4 << 20)
    fb = plan.d["filler_bytes"]
    both = int(os.environ.get("OUTPOST_TEST_UPLOADS_IN_FLIGHT") or 1) >= 2
    # PS2 past the first segment; with two in flight, late in the segment
    # that uploads beside the one before it, so that it has not left when
    # both are caught uploading
    n1 = max(40, int((2.4 if both else 1.6) * first / fb))
    n2 = max(40, int(2.0 * first / fb))  # PS3 past the second
    n3 = max(40, int(3.0 * first / fb))  # PT past the segments cut again after the voiding
    field, cap = tightenable(pl.prof) if os.environ.get("RESIDENCY_PACED_TIGHTEN", "1") != "0" \
        else (None, 0)
    first_no = last_segment_no() + 1
    rc.hold_idle()
    pl.import_fillers("PF1", n1)
    for g in GROUPS:
        c = pl.create(g + "-contact", "contact", g, everything=True, policy="until",
                      withheld=False)
        pl.create(g + "-note", "note", g, {"contact_id": c}, everything=True, policy="until",
                  withheld=False, mark=g + "-contact")
        pl.create(g + "E-contact", "contact", g, everything=True, policy="until", withheld=False)
        pl.create(g + "-organization", "organization", g, everything=True, policy="until",
                  withheld=False)
        pl.import_fillers("PF2" if g == "PS2" else "PF3", n2 if g == "PS2" else n3)
    if field:
        # (c) a visible contact whose one canary is in the field a policy
        # from HQ will keep on the node: it may leave only before the node
        # put that policy in force (mark PT-policy)
        v = plan.text(field, plan.new_n(), cap)
        plan.add("PT-contact", "contact", field, v, "strong", [v], "until")
        pl.create("PT-contact", "contact", "PT", extra={field: v}, withheld=False,
                  mark="PT-policy")
        pl.import_fillers("PF4", n3)
    pl.save()
    t_open = time.monotonic()
    rc.proxy("open")

    state = wait_cut_behind(plan, "PS2", first_no, both,
                            "the layout did not put them past the first paced segment, or the "
                            "link took them before they could be caught waiting (goodput %.0f "
                            "B/s, filler %.1f bytes)" % (gp, fb))
    # Slower still while the commands run, so that the link is going but
    # however long they take on a loaded machine, little crosses meanwhile.
    rc.proxy("rate 500")
    cut_at = time.monotonic() - t_open
    spooled = [s[1] for s in state["all"] if s[0] >= first_no]
    before = {g: [p for p in spooled if g in groups_in(plan, p)] for g in GROUPS}
    plan.d["notes"].append(
        "paced: first backlog segment %d; goodput %.0f B/s (first segment about %.0f bytes); "
        "%.1f s after the link opened, PS2 was in %s; PS3 was %s" %
        (first_no, gp, first, cut_at, describe(state),
         "in segment(s) %s" % ", ".join(os.path.basename(p) for p in before["PS3"])
         if before["PS3"] else "not cut yet (in the outbox)"))
    plan.d["paced_state"] = {"segment": state["no"], "uploading": bool(state["url"]),
                             "earlier": [s[0] for s in state["earlier"]], "first": first_no,
                             "ps2_segments": sorted({str(s[0]) for s in state["all"]
                                                     if s[1] in before["PS2"]} |
                                                    {str(state["no"])})}
    pl.save()
    # (a) erase, (b) restrict through the CLI and the API; each returns
    # before the next starts, and the mark says what had left by then.
    pl.restrict_cli("PS2-contact")
    pl.mark("PS2-contact")
    pl.erase("PS2E-contact")
    pl.mark("PS2E-contact")
    pl.patch("PS2-organization", {"restricted": True})
    pl.mark("PS2-organization")
    pl.patch("PS3-contact", {"restricted": True})
    pl.mark("PS3-contact")
    pl.erase("PS3E-contact")
    pl.mark("PS3E-contact")
    pl.patch("PS3-organization", {"restricted": True})
    pl.mark("PS3-organization")
    # scenario 4's records, at HQ since the first drain, withdrawn while
    # the backlog's segments wait or go (urgent rows)
    pl.patch("S4-contact", {"restricted": True})
    pl.mark("S4-contact")
    pl.patch("S4-organization", {"restricted": True})
    pl.mark("S4-organization")
    pl.erase("S4E-contact")
    pl.mark("S4E-contact")
    rc.check_spool_after(plan, before["PS2"] + before["PS3"], "paced")
    link()
    pl.save()
    if not field:
        plan.d["notes"].append("paced: no policy was tightened (RESIDENCY_PACED_TIGHTEN=0, "
                               "or the profile exports no contact text field on a line of "
                               "its own)")
        pl.save()
        return 0

    # (c) The segments cut again after the voiding: once the one holding PT
    # waits behind another, HQ posts a policy that keeps the field on the
    # node. The node applies it by itself (it only tightens); from the
    # moment it is in force, no old value of the field may leave.
    again = max(s[0] for s in state["all"]) + 1
    st = wait_cut_behind(plan, "PT", again, both,
                         "the segments cut again after the voiding put PT in the first one")
    pol = os.path.join(dirpath, "tight.yaml")
    h = tightened_policy(field, pol)
    rc.run(os.environ["OUTPOST_HQ"], "--db", os.environ["HQ_DB"], "mailbox", "post",
           os.environ["HQ_NODE"], "--kind", "policy", pol)
    t_post = time.monotonic()
    line = "region policy from HQ in force (sha256 %s)" % h
    rc.wait_for("the node to put the tightened policy in force (its log: %s)" % line,
                lambda: line in open(os.environ["NODE_LOG"], encoding="utf-8",
                                     errors="replace").read(), 40, 0.01)
    pl.mark("PT-policy")
    plan.d["notes"].append("paced: contact.%s tightened to local_only by a policy from HQ, "
                           "posted while PT was in %s; in force at the node %.1f s later" %
                           (field, describe(st), time.monotonic() - t_post))
    rc.check_spool_after(plan, [st["path"]], "paced (c) policy")
    plan.d["tightened"] = {"field": field, "hash": h, "segment": st["no"]}
    pl.save()
    return 0


def cmd_settle(dirpath):
    """Before the final judgement: if not one byte of the segments that held
    PS2 crossed the link (they waited in the spool), HQ may not even hear of
    the PS2 records (docs/EGRESS.md, "What HQ hears of records it never
    had"): they are judged as scenario 2's, ids included."""
    path = os.path.join(dirpath, "state.json")
    d = json.load(open(path))
    segs = d["paced_state"]["ps2_segments"]
    seg = ", ".join(segs)
    wire = rc.Wire(os.environ["CAPTURE"])
    sent = sum(n for up in wire.uploads.values() if up["segment"] in segs
               for _, _, _, n, _ in up["pieces"])
    if sent:
        d["notes"].append("paced: %d bytes of segment(s) %s crossed the link before it was voided: "
                          "the PS2 records are judged by when their restriction returned" %
                          (sent, seg))
    else:
        tags = [t for t, r in d["records"].items() if r["role"] == "PS2"]
        for t in tags:
            d["records"][t].update(role="S2", withheld=True)
        d["notes"].append("paced: no byte of segment(s) %s crossed the link: %s may not leave at "
                          "all, not even their ids" % (seg, ", ".join(sorted(tags))))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1)
    os.replace(tmp, path)
    return 0


def cmd_once(dirpath):
    """HQ holds each record of the node once, and every backlog filler."""
    plan = rc.Plan(rc.Profile(os.environ["PROFILE"]).region,
                   json.load(open(os.path.join(dirpath, "state.json"))))
    p = rc.run(os.environ["OUTPOST_HQ"], "--db", os.environ["HQ_DB"], "records", "--json")
    seen, dup = {}, []
    for line in p.stdout.splitlines():
        o = json.loads(line)
        if o["node"] != os.environ["HQ_NODE"]:
            continue
        k = (o["entity"], o["id"])
        if k in seen:
            dup.append(k)
        seen[k] = o
    if dup:
        rc.die("HQ holds %d records more than once: %s" % (len(dup), dup[:5]))
    ids = [r[0] for r in node_rows("SELECT id FROM contacts WHERE deleted = 0 AND "
                                   "email LIKE 'PF_.%'")]
    want = sum(v for k, v in plan.d.get("fillers", {}).items() if k.startswith("PF"))
    if len(ids) != want:
        rc.die("the node holds %d backlog fillers, the test imported %d" % (len(ids), want))
    missing = [i for i in ids if seen.get(("contact", i), {}).get("op") != "upsert"]
    if missing:
        rc.die("%d of the %d backlog fillers are not live at HQ, e.g. %s" %
               (len(missing), want, missing[:3]))
    print("HQ holds %d records of the node, each once; the %d backlog fillers all arrived" %
          (len(seen), want))
    return 0


def main():
    fn = {"paced": cmd_paced, "settle": cmd_settle, "once": cmd_once}.get(
        sys.argv[1] if len(sys.argv) == 3 else None)
    if fn is None:
        sys.exit(__doc__)
    sys.exit(fn(sys.argv[2]) or 0)


if __name__ == "__main__":
    main()
