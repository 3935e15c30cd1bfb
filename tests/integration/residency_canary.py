#!/usr/bin/env python3
"""The compliance officer's check of "nothing restricted leaves the box".

Driven by tests/integration/test_residency.sh, one region at a time (the
design is in docs/EGRESS.md, "How the promise is tested"); every step
reads and writes DIR/state.json. Standard library only.

  residency_canary.py plant   DIR   records with canaries, link open
  residency_canary.py arrived DIR   after the first drain: scenario 4's records
                                    are at HQ; a filler's size on the wire
  residency_canary.py busy    DIR   scenario 2b (ends with outpostd killed)
  residency_canary.py spooled DIR   scenario 2 (link held) and scenario 4's
                                    restrictions, then scenario 3's records
  residency_canary.py upload  DIR   scenario 3 (link throttled)
  residency_canary.py final   DIR   decode the capture, scan everything,
                                    compare HQ with the node's egress report
  residency_canary.py hqdb    DIR   HQ's database once more, after HQ stopped

Environment (set by the shell): PROFILE (the region's YAML), OUTPOST,
OUTPOST_DB, OUTPOST_HQ, HQ_DB, HQ_NODE, API (http://127.0.0.1:PORT), TOKEN,
NODE_PID, PROXY_CTL (the capture proxy's control socket), CAPTURE, SPOOL,
HQ_UPLOADS, HQ_LOGS and NODE_LOGS (colon-separated files).

What is planted (every value unique: CNRY-<region>-<field>-<n>, or a value
of the field's type that occurs nowhere else, such as a date in the 1700s):
  V    one visible record of each entity, canaries in every field whose
       class is not exportable (local_only, aggregate_only, pseudonymize,
       local_primary without transfer)
  X    records restricted from creation (API and CSV), canaries everywhere
  R    records about a restricted contact, organization or deal
  P    records a pin_records rule keeps (API and CSV), canaries everywhere
  S4   visible records that reach HQ, then are restricted or erased
  S2   records restricted, erased or pinned while their segment waits in
       the spool with the link held (contacts created one by one and, S2K,
       by the API's bulk create)
  S2B  a record restricted after HQ created its segment's upload but before
       the node could record the upload's URL (its database busy): no byte
       of the segment may have left
  S3A, S3B  records restricted or erased while the segment they are in is
       being uploaded over a throttled link: S3A inside the chunk in
       flight, S3B past it
A canary is either never to leave (every non-exportable value, everything
of X, R, P, S2) or allowed to leave only before its record's restriction
returned (the exportable values of S4, S2B and S3), and never to remain at
HQ.

Each breach is printed as `BREACH [scenario] REGION: where: entity.field of
record = value` and makes `final` exit 1. A breach that a change still
being built (or a bug found by this test) explains carries a tag, explained
once per region; it fails all the same.
"""
import base64
import bisect
import csv
import datetime
import glob
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.parse
import uuid
import zlib

# ---- the region profile (the YAML subset schema/regions uses) ---------------


def _strip_comment(line):
    out, quote, i = [], None, 0
    while i < len(line):
        c = line[i]
        if quote:
            out.append(c)
            if c == "\\" and quote == '"' and i + 1 < len(line):
                out.append(line[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            out.append(c)
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).rstrip()


def _plain(v):
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    if v in ("null", "~", ""):
        return None
    return v


class _Flow:
    """Flow collections on one line: {a: b, c: "d"} and [a, b]."""

    def __init__(self, s):
        self.s, self.i = s, 0

    def _ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def value(self):
        self._ws()
        c = self.s[self.i]
        if c in "{[":
            close = "}" if c == "{" else "]"
            self.i += 1
            items = {} if c == "{" else []
            while True:
                self._ws()
                if self.s[self.i] == close:
                    self.i += 1
                    return items
                if c == "{":
                    k = self.scalar(":")
                    self._ws()
                    self.i += 1  # ':'
                    items[k] = self.value()
                else:
                    items.append(self.value())
                self._ws()
                if self.s[self.i] == ",":
                    self.i += 1
        return self.scalar(",}]")

    def scalar(self, stops):
        self._ws()
        q = self.s[self.i]
        if q == '"':
            j, out = self.i + 1, []
            while self.s[j] != '"':
                if self.s[j] == "\\":
                    out.append({"n": "\n", "t": "\t"}.get(self.s[j + 1], self.s[j + 1]))
                    j += 2
                else:
                    out.append(self.s[j])
                    j += 1
            self.i = j + 1
            return "".join(out)
        if q == "'":
            j = self.s.index("'", self.i + 1)
            v, self.i = self.s[self.i + 1:j], j + 1
            return v
        j = self.i
        while j < len(self.s) and self.s[j] not in stops:
            if ":" in stops and self.s[j] == ":" and (j + 1 == len(self.s) or self.s[j + 1] == " "):
                break
            j += 1
        v, self.i = self.s[self.i:j].strip(), j
        return _plain(v)


def load_yaml(text):
    lines = []
    for raw in text.split("\n"):
        s = _strip_comment(raw)
        if s.strip():
            lines.append([len(s) - len(s.lstrip(" ")), s.strip()])
    pos = [0]

    def block():
        ind, s = lines[pos[0]]
        return seq(ind) if s.startswith("-") else mapping(ind)

    def mapping(ind):
        d = {}
        while pos[0] < len(lines) and lines[pos[0]][0] == ind and not lines[pos[0]][1].startswith("-"):
            m = re.match(r'^([^:"\']+|"[^"]*"):(?:\s+(.*))?$', lines[pos[0]][1])
            if not m:
                raise ValueError("cannot read YAML line: %s" % lines[pos[0]][1])
            k, v = m.group(1).strip().strip('"'), m.group(2) or ""
            pos[0] += 1
            if v:
                d[k] = _Flow(v).value()
            elif pos[0] < len(lines) and (lines[pos[0]][0] > ind or
                                          (lines[pos[0]][0] == ind and lines[pos[0]][1].startswith("-"))):
                d[k] = block()
            else:
                d[k] = None
        return d

    def seq(ind):
        out = []
        while pos[0] < len(lines) and lines[pos[0]][0] == ind and lines[pos[0]][1].startswith("-"):
            rest = lines[pos[0]][1][1:].lstrip()
            if re.match(r"^[^:\"'\[{]+:(\s|$)", rest):
                lines[pos[0]] = [ind + 2, rest]  # "- key: v": a mapping at ind + 2
                out.append(mapping(ind + 2))
            else:
                pos[0] += 1
                out.append(_Flow(rest).value())
        return out

    return block()


# ---- the entities (sync/core/entity.c) -------------------------------------------
# Field types as the store checks them; the test refuses to run when a
# profile or the egress report names a field missing here, so a new field
# cannot go unplanted.
TEXT, EMAIL, PHONE, LANG, DATE, TIME, MONEY, CODE, ENUM, BOOL, REF, OBJ = (
    "text", "email", "phone", "language", "date", "time", "money", "code", "enum", "bool", "ref",
    "object")
ADDRESS = [("street", TEXT, 400), ("locality", TEXT, 200), ("region", TEXT, 200),
           ("postal_code", TEXT, 32), ("country", CODE, 2)]
ENTITIES = {
    "contact": [("given_name", TEXT, 200), ("family_name", TEXT, 200), ("email", EMAIL, 254),
                ("phone", PHONE, 64)] + ADDRESS + [("language", LANG, 35), ("job_title", TEXT, 200),
                                                   ("birth_date", DATE, 0)],
    "organization": [("name", TEXT, 300), ("website", TEXT, 2000), ("email", EMAIL, 254),
                     ("phone", PHONE, 64)] + ADDRESS + [("industry", TEXT, 200), ("tax_id", TEXT, 64)],
    "contact_organization": [("contact_id", REF, 0), ("organization_id", REF, 0), ("role", TEXT, 200)],
    "deal": [("title", TEXT, 300), ("stage", ENUM, 0), ("amount_minor", MONEY, 0),
             ("currency", CODE, 3), ("organization_id", REF, 0), ("contact_id", REF, 0),
             ("expected_close", DATE, 0)],
    "activity": [("channel", ENUM, 0), ("direction", ENUM, 0), ("outcome", TEXT, 200),
                 ("subject", TEXT, 300), ("body", TEXT, 65536), ("occurred_at", TIME, 0),
                 ("contact_id", REF, 0), ("organization_id", REF, 0), ("deal_id", REF, 0)],
    "task": [("title", TEXT, 300), ("status", ENUM, 0), ("due_at", TIME, 0), ("assignee_id", REF, 0),
             ("contact_id", REF, 0), ("organization_id", REF, 0), ("deal_id", REF, 0)],
    "note": [("body", TEXT, 65536), ("contact_id", REF, 0), ("organization_id", REF, 0),
             ("deal_id", REF, 0)],
    "consent": [("contact_id", REF, 0), ("channel", ENUM, 0), ("purpose", TEXT, 100),
                ("kind", ENUM, 0), ("status", ENUM, 0), ("method", ENUM, 0), ("evidence", OBJ, 0),
                ("requested_at", TIME, 0), ("confirmed_at", TIME, 0), ("withdrawn_at", TIME, 0),
                ("expires_at", TIME, 0)],
}
COMMON = ["owner_id", "restricted"]
META = {"id", "version", "created_at", "updated_at", "deleted"}
COLLECTION = {"contact": "contacts", "organization": "organizations",
              "contact_organization": "contact_organizations", "deal": "deals",
              "activity": "activities", "task": "tasks", "note": "notes"}
# Values the store requires, for fields that cannot carry a canary.
REQUIRED = {"deal": {"stage": "lead"}, "activity": {"channel": "visit", "direction": "inbound"},
            "task": {"status": "open"}}
CONSENT_FIXED = {"channel": "meeting", "kind": "marketing", "method": "opt_out"}
PSEUDONYM = re.compile(r"^h:[0-9a-f]{32}$")


class Profile:
    def __init__(self, path):
        self.doc = load_yaml(open(path, encoding="utf-8").read())
        d = self.doc
        self.region = d["region"]
        self.transfer = bool((d.get("transfer") or {}).get("allowed"))
        self.custom = {}  # entity -> {name: spec}
        for c in d.get("custom_fields") or []:
            self.custom.setdefault(c["entity"], {})[c["name"]] = c
        self.pins = d.get("pin_records") or []
        self.forbidden = {f["field"] for f in d.get("forbidden") or []}
        for key in d.get("fields") or {}:
            e, _, f = key.partition(".")
            if e == "user":
                continue
            if e not in ENTITIES:
                raise SystemExit("%s: the test does not know entity %s" % (path, e))
            if not f.startswith("custom.") and f not in COMMON and \
                    f not in [x[0] for x in ENTITIES[e]]:
                raise SystemExit("%s: the test does not know %s.%s: add it to ENTITIES" % (path, e, f))

    def klass(self, entity, field):
        spec = (self.doc.get("fields") or {}).get("%s.%s" % (entity, field))
        return spec["class"] if spec else self.doc["default_class"]

    def leaves(self, entity, field):
        """'as-is', 'pseudonym' or None: what of the field may leave."""
        c = self.klass(entity, field)
        if c == "exportable" or (c == "local_primary" and self.transfer):
            return "as-is"
        if c == "pseudonymize":
            return "pseudonym"
        return None

    def fields(self, entity):
        """(name, type, max, spec) of every field a record may carry, custom.NAME included."""
        out = [(f, t, m, None) for f, t, m in ENTITIES[entity]]
        for name, spec in sorted(self.custom.get(entity, {}).items()):
            out.append(("custom." + name, spec["type"], int(spec.get("max_length") or 200), spec))
        return [x for x in out if "%s.%s" % (entity, x[0]) not in self.forbidden]


# ---- values that fit a pattern (the POSIX ERE subset profiles use) ----------


def _parse_ere(p, i=0, stop=None):
    alts, seq = [], []
    while i < len(p) and p[i] != stop:
        c = p[i]
        if c == "|":
            alts.append(seq)
            seq, i = [], i + 1
            continue
        if c == "(":
            atom, i = _parse_ere(p, i + 1, ")")
            i += 1
        elif c == "[":
            j = p.index("]", i + 2)
            body, chars, k = p[i + 1:j], [], 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    chars += [chr(x) for x in range(ord(body[k]), ord(body[k + 2]) + 1)]
                    k += 3
                else:
                    chars.append(body[k])
                    k += 1
            atom, i = ("class", chars), j + 1
        elif c == "\\":
            atom, i = ("class", [p[i + 1]]), i + 2
        elif c in "^$":
            i += 1
            continue
        else:
            atom, i = ("class", [c]), i + 1
        lo = hi = 1
        if i < len(p) and p[i] == "{":
            j = p.index("}", i)
            a, comma, b = p[i + 1:j].partition(",")
            lo = int(a)
            hi = int(b) if b else (lo + 8 if comma else lo)
            i = j + 1
        elif i < len(p) and p[i] in "?*+":
            lo, hi = {"?": (0, 1), "*": (0, 8), "+": (1, 8)}[p[i]]
            i += 1
        seq.append((atom, lo, hi))
    alts.append(seq)
    return ("alt", alts), i


def _gen(node, rng):
    """The longest value the pattern allows, classes drawn from rng; also
    how many characters were drawn from a class of more than one."""
    kind, body = node
    if kind == "class":
        return (rng.choice(body), 1 if len(body) > 1 else 0)
    best = ("", -1)
    for seq in body:
        s, n = "", 0
        for atom, _lo, hi in seq:
            for _ in range(hi):
                v, k = _gen(atom, rng)
                s, n = s + v, n + k
        if (n, len(s)) > (best[1], len(best[0])):
            best = (s, n)
    return best


def pattern_value(pattern, rng):
    node, _ = _parse_ere(pattern)
    v, free = _gen(node, rng)
    if not re.fullmatch(pattern, v):
        raise SystemExit("cannot make a value for pattern %s (made %s): extend pattern_value" %
                         (pattern, v))
    return v, free


# ---- canaries ----------------------------------------------------------------


class Plan:
    """The records planted and their canaries; saved as DIR/state.json."""

    def __init__(self, region, data=None):
        self.region = region
        self.d = data or {"canaries": [], "records": {}, "n": 0, "marks": {}, "problems": [],
                          "notes": []}

    @property
    def canaries(self):
        return self.d["canaries"]

    def new_n(self):
        self.d["n"] += 1
        return self.d["n"]

    def rng(self, n):
        return random.Random("%s-%d" % (self.region, n))

    def add(self, tag, entity, field, value, kind, forms, policy):
        """kind strong (a CNRY- string: substring search, any case) or weak
        (a value of a type: searched with non-alphanumeric boundaries);
        policy 'never' or 'until' (may leave before its record's mark)."""
        self.canaries.append({"tag": tag, "entity": entity, "field": field, "value": value,
                              "kind": kind, "forms": forms, "policy": policy})

    def text(self, field, n, cap):
        short = field.split(".")[-1]
        v = "CNRY-%s-%s-%04d" % (self.region, short, n)
        return v if len(v) <= cap else "CNRY-%s-%04d" % (self.region, n)

    def value_for(self, tag, entity, field, ftype, cap, spec, policy):
        """A canary value for the field, registered; None if the type cannot
        carry one (codes, enums, booleans, references: checked by shape)."""
        n = self.new_n()
        rng = self.rng(n)
        day = datetime.date(1700, 1, 1) + datetime.timedelta(days=n * 37 + rng.randrange(30))
        if spec is not None and ftype == "text" and spec.get("pattern"):
            v, free = pattern_value(spec["pattern"], rng)
            if free < 7:
                return None
            self.add(tag, entity, field, v, "weak", [v], policy)
            return v
        if ftype in (TEXT, "text"):
            v = self.text(field, n, cap)
            self.add(tag, entity, field, v, "strong", [v], policy)
            return v
        if ftype == EMAIL:
            v = self.text(field, n, 200)
            self.add(tag, entity, field, v, "strong", [v], policy)
            return v + "@example.org"
        if ftype == PHONE:
            digits = "99%02d%06d" % (rng.randrange(100), n)
            v = "+%s %s %s" % (digits[:2], digits[2:4], digits[4:])
            self.add(tag, entity, field, v, "weak", [v, "+" + digits, digits], policy)
            return v
        if ftype == LANG:
            v = "xx-CNRY-%s-%04d" % (self.region, n)
            self.add(tag, entity, field, v, "strong", [v], policy)
            return v
        if ftype in (DATE, "date"):
            v = day.isoformat()
            self.add(tag, entity, field, v, "weak", [v], policy)
            return v
        if ftype == TIME:
            # In the 2090s, not the 1700s: a time can be what retention
            # counts from (an activity's occurred_at), and a record past
            # its retention rightly never leaves.
            later = datetime.date(2090, 1, 1) + datetime.timedelta(days=n * 37 + rng.randrange(30))
            v = "%sT%02d:%02d:%02dZ" % (later.isoformat(), rng.randrange(24), rng.randrange(60),
                                        rng.randrange(60))
            self.add(tag, entity, field, v, "weak", [v], policy)
            return v
        if ftype in (MONEY, "integer"):
            v = 7000000000 + n * 7919 + rng.randrange(7919)
            self.add(tag, entity, field, str(v), "weak", [str(v)], policy)
            return v
        if ftype == OBJ:
            v = self.text(field, n, 200)
            self.add(tag, entity, field, v, "strong", [v], policy)
            return {"source": v, "note": v}
        return None


def ordinary_value(entity, field, ftype, cap, spec, n):
    """A plain value for a field that may leave (no canary)."""
    if spec is not None:
        if spec["type"] == "enum":
            return None
        if spec["type"] == "text" and spec.get("pattern"):
            return pattern_value(spec["pattern"], random.Random(n))[0]
        return None
    if ftype == TEXT:
        return ("plain %s %s %d" % (entity, field, n))[-cap:]
    if ftype == DATE:
        return "2031-05-%02d" % (1 + n % 28)
    if ftype == TIME:
        return "2031-05-%02dT10:00:00Z" % (1 + n % 28)
    if ftype == MONEY:
        return 1000 + n
    if field == "currency":
        return "EUR"
    return None


# ---- talking to the node -------------------------------------------------------


class Api:
    def __init__(self, url, token):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.token = u.hostname, u.port, token
        self.conn = None

    def call(self, method, path, body=None, if_match=None):
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            h = {"Authorization": "Bearer " + self.token}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            if if_match:
                h["If-Match"] = if_match
            try:
                self.conn.request(method, "/api/v1/" + path, data, h)
                r = self.conn.getresponse()
                raw = r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)
                continue
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, raw.decode("utf-8", "replace")
        raise RuntimeError("unreachable")


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(*args, check=True, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        die("%s exited %d: %s %s" % (" ".join(args[:3]), p.returncode, p.stdout, p.stderr))
    return p


def status():
    p = run(os.environ["OUTPOST"], "status", "--json")
    return json.loads(p.stdout)


def proxy(cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.environ["PROXY_CTL"])
    s.sendall((cmd + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        part = s.recv(65536)
        if not part:
            break
        buf += part
    s.close()
    ans = json.loads(buf)
    if not ans.get("ok"):
        die("capture proxy refused %r: %s" % (cmd, ans))
    return ans


def wait_for(what, cond, limit=30.0, step=0.05):
    t0 = time.monotonic()
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() - t0 > limit:
            die("timed out after %.0f s waiting for %s" % (limit, what))
        time.sleep(step)


# ---- planting -----------------------------------------------------------------


class Planter:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.prof = Profile(os.environ["PROFILE"])
        self.region = self.prof.region
        path = os.path.join(state_dir, "state.json")
        self.plan = Plan(self.region, json.load(open(path)) if os.path.exists(path) else None)
        self.api = Api(os.environ["API"], os.environ["TOKEN"])

    def save(self):
        tmp = os.path.join(self.dir, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.plan.d, f, indent=1)
        os.replace(tmp, os.path.join(self.dir, "state.json"))

    def rec(self, tag):
        return self.plan.d["records"][tag]

    def create(self, tag, entity, role, refs=None, everything=False, policy="never", extra=None,
               withheld=True, mark=None):
        """Creates one record. everything: canaries in every field that can
        hold one (else only in fields that may not leave); policy of the
        canaries in fields that may leave. withheld: the record may never
        leave at all (so neither may its id). mark: the record whose
        restriction ends what may leave of it (default: itself)."""
        body = self.body_for(tag, entity, refs, everything, policy, extra)
        if entity == "consent":
            contact = body.pop("contact_id")
            for k in list(body):
                if k not in ("purpose", "evidence"):
                    del body[k]
            body.update(CONSENT_FIXED)
            st, r = self.api.call("POST", "contacts/%s/consents" % contact, body)
        else:
            path = COLLECTION[entity]
            if entity == "contact":
                path += "?skip_duplicate_check=true"
            st, r = self.api.call("POST", path, body)
        if st != 201:
            die("creating %s %s (%s) failed: %s %s; body %s" % (entity, tag, role, st, r, body))
        return self.created(tag, entity, role, r, refs, withheld, mark)

    def create_bulk(self, tags, role):
        """Contacts through POST /api/v1/contacts/bulk (the API's bulk input
        path), one request, canaries in every field that can hold one."""
        bodies = [self.body_for(tag, "contact", None, True, "never", None) for tag in tags]
        st, r = self.api.call("POST", "contacts/bulk?on_duplicate=new", bodies)
        if st != 200 or len(r.get("items", [])) != len(tags):
            die("bulk create of %s (%s) failed: %s %s" % (", ".join(tags), role, st, r))
        ids = []
        for tag, item in zip(tags, r["items"]):
            if item.get("result") != "created":
                die("bulk create: %s was not created: %s" % (tag, item))
            ids.append(self.created(tag, "contact", role, item, None, True, None))
        return ids

    def body_for(self, tag, entity, refs, everything, policy, extra):
        prof, plan = self.prof, self.plan
        body = {}
        for field, ftype, cap, spec in prof.fields(entity):
            if ftype == REF:
                continue
            if entity == "consent" and (field in CONSENT_FIXED or field == "status" or
                                        ftype == TIME):
                continue  # fixed here, or set by the node
            leaves = prof.leaves(entity, field)
            ctype = spec["type"] if spec else ftype
            if leaves != "as-is" or everything:
                pol = policy if leaves == "as-is" else "never"
                v = plan.value_for(tag, entity, field, ctype, cap, spec, pol)
            else:
                v = ordinary_value(entity, field, ftype, cap, spec, plan.new_n())
            if v is None:
                v = REQUIRED.get(entity, {}).get(field)
            if v is None and field == "country":
                v = "KE" if self.region != "KE" else "TZ"
            if v is None and field == "currency":
                v = "EUR"
            if v is None:
                continue
            if field.startswith("custom."):
                body.setdefault("custom", {})[field[7:]] = v
            else:
                body[field] = v
        for k, v in (REQUIRED.get(entity) or {}).items():
            body.setdefault(k, v)
        if entity == "activity":
            body.setdefault("occurred_at", "2031-05-01T10:00:00Z")
        for k, v in (refs or {}).items():
            body[k] = v
        for k, v in (extra or {}).items():
            if k.startswith("custom."):
                body.setdefault("custom", {})[k[7:]] = v
            else:
                body[k] = v
        return body

    def created(self, tag, entity, role, r, refs, withheld, mark):
        plan = self.plan
        # what the record is about, if that is not a visible record (V)
        about = None
        for k in ("contact_id", "organization_id", "deal_id"):
            t = self.tag_of((refs or {}).get(k))
            if t and not t.startswith("V-"):
                about = t
                break
        plan.d["records"][tag] = {"entity": entity, "id": r["id"], "version": r["version"],
                                  "role": role, "withheld": withheld, "about": about,
                                  "refs": {k: self.tag_of(v) for k, v in (refs or {}).items()}}
        for c in plan.canaries:
            if c["tag"] == tag:
                c["id"] = r["id"]
                c["mark"] = mark or tag
        return r["id"]

    def tag_of(self, rid):
        for t, r in self.plan.d["records"].items():
            if r["id"] == rid:
                return t
        return None

    def patch(self, tag, changes):
        r = self.rec(tag)
        st, out = self.api.call("PATCH", "%s/%s" % (COLLECTION[r["entity"]], r["id"]), changes,
                                if_match='"%d"' % r["version"])
        if st != 200:
            die("PATCH %s %s failed: %s %s" % (r["entity"], tag, st, out))
        r["version"] = out["version"]

    def erase(self, tag):
        r = self.rec(tag)
        run(os.environ["OUTPOST"], "subject", "erase", r["id"], "--yes", "--reason", "test")
        r["erased"] = True

    def mark(self, label):
        m = proxy("mark " + label)["mark"]
        self.plan.d["marks"][label] = m
        return m

    def import_contact(self, tag, role, extra):
        """One contact through `outpost import` (the CSV input path), with an
        id chosen here and canaries in every column that can hold one."""
        row = {}
        for field, ftype, cap, spec in self.prof.fields("contact"):
            v = self.plan.value_for(tag, "contact", field, spec["type"] if spec else ftype, cap,
                                    spec, "never")
            if v is not None:
                row[field] = v
        row.update(extra)
        ms = int(time.time() * 1000)
        rnd = os.urandom(10)
        rid = str(uuid.UUID(bytes=ms.to_bytes(6, "big") + bytes([0x70 | (rnd[0] & 0x0F), rnd[1],
                                                                  0x80 | (rnd[2] & 0x3F)]) + rnd[3:]))
        row["id"] = rid
        path = os.path.join(self.dir, tag + ".csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(row))
            w.writerow([str(v).lower() if isinstance(v, bool) else v for v in row.values()])
        run(os.environ["OUTPOST"], "import", path, "--skip-duplicate-check")
        self.plan.d["records"][tag] = {"entity": "contact", "id": rid, "version": 1, "role": role,
                                       "withheld": True, "about": None, "refs": {}}
        for c in self.plan.canaries:
            if c["tag"] == tag:
                c["id"], c["mark"] = rid, tag
        return rid

    def restrict_cli(self, tag):
        """Restricts a contact with `outpost contact update` (the CLI input path)."""
        r = self.rec(tag)
        run(os.environ["OUTPOST"], "contact", "update", "--version", str(r["version"]), r["id"],
            "--restricted", "true")
        r["version"] += 1

    def import_fillers(self, name, count):
        path = os.path.join(self.dir, name + ".csv")
        salt = hashlib.sha256(("%s-%s" % (self.region, name)).encode()).hexdigest()[:8]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["given_name", "family_name", "email"])
            for i in range(count):
                w.writerow(["Filler%d" % i, "%s %s" % (name, salt), "%s.%d.%s@example.net" %
                            (name, i, salt)])
        run(os.environ["OUTPOST"], "import", path, "--skip-duplicate-check")
        fill = self.plan.d.setdefault("fillers", {})
        fill[name] = count


def cmd_plant(dirpath):
    pl = Planter(dirpath)
    prof, plan = pl.prof, pl.plan
    # The node's egress report lists every field with its class: it must
    # agree with the profile as read here, or the plan below is wrong.
    rep = run(os.environ["OUTPOST"], "egress-report").stdout
    entity = None
    for line in rep.splitlines():
        m = re.match(r"^(\w+): \d+ records", line)
        if m:
            entity = {"contacts": "contact", "organizations": "organization",
                      "contact_organizations": "contact_organization", "deals": "deal",
                      "activities": "activity", "tasks": "task", "notes": "note",
                      "consents": "consent"}.get(m.group(1))
            continue
        m = re.match(r"^  (\S+)\s+(local_only|local_primary|pseudonymize|exportable|aggregate_only)\s",
                     line)
        if m and entity:
            field, klass = m.group(1), m.group(2)
            if field not in COMMON and field not in [x[0] for x in prof.fields(entity)] and \
                    "%s.%s" % (entity, field) not in prof.forbidden:
                die("the egress report lists %s.%s, which the test does not plant: add it" %
                    (entity, field))
            if prof.klass(entity, field) != klass:
                die("%s.%s: the egress report says %s, the profile as read here %s" %
                    (entity, field, klass, prof.klass(entity, field)))
    st, me = pl.api.call("GET", "contacts?limit=1")
    if st != 200:
        die("the API does not answer: %s %s" % (st, me))

    # V: visible, canaries where the class keeps the value
    vc = pl.create("V-contact", "contact", "V", withheld=False)
    vo = pl.create("V-organization", "organization", "V", withheld=False)
    pl.create("V-contact_organization", "contact_organization", "V",
              {"contact_id": vc, "organization_id": vo}, withheld=False)
    vd = pl.create("V-deal", "deal", "V", {"contact_id": vc, "organization_id": vo}, withheld=False)
    pl.create("V-activity", "activity", "V", {"contact_id": vc, "organization_id": vo,
                                              "deal_id": vd}, withheld=False)
    pl.create("V-task", "task", "V", {"contact_id": vc, "deal_id": vd}, withheld=False)
    pl.create("V-note", "note", "V", {"contact_id": vc}, withheld=False)
    pl.create("V-consent", "consent", "V", {"contact_id": vc}, withheld=False)

    # X: restricted from creation, canaries everywhere; never to appear at HQ, ids included
    xr = {"restricted": True}
    xc = pl.create("X-contact", "contact", "X", everything=True, extra=xr)
    xo = pl.create("X-organization", "organization", "X", everything=True, extra=xr)
    vo2 = pl.create("V-organization-2", "organization", "V", withheld=False)
    pl.create("X-contact_organization", "contact_organization", "X",
              {"contact_id": vc, "organization_id": vo2}, everything=True, extra=xr)
    xd = pl.create("X-deal", "deal", "X", {"organization_id": vo}, everything=True, extra=xr)
    pl.create("X-activity", "activity", "X", {"contact_id": vc}, everything=True, extra=xr)
    pl.create("X-task", "task", "X", {"contact_id": vc}, everything=True, extra=xr)
    pl.create("X-note", "note", "X", {"contact_id": vc}, everything=True, extra=xr)

    # R: about a restricted contact, organization or deal
    pl.create("R-contact_organization", "contact_organization", "R",
              {"contact_id": xc, "organization_id": vo}, everything=True)
    # a deal of a visible organization stays, without the person: only its
    # kept fields carry canaries, and the restricted contact's id must go
    pl.create("R-deal-of-org", "deal", "R", {"contact_id": xc, "organization_id": vo},
              withheld=False)
    pl.create("R-deal", "deal", "R", {"contact_id": xc}, everything=True)
    pl.create("R-activity", "activity", "R", {"contact_id": xc}, everything=True)
    pl.create("R-task", "task", "R", {"contact_id": xc}, everything=True)
    pl.create("R-note", "note", "R", {"contact_id": xc}, everything=True)
    pl.create("R-consent", "consent", "R", {"contact_id": xc}, everything=True)
    pl.create("R-activity-of-org", "activity", "R", {"organization_id": xo}, everything=True)
    pl.create("R-deal-of-xorg", "deal", "R", {"organization_id": xo}, everything=True)
    pl.create("R-note-of-deal", "note", "R", {"deal_id": xd}, everything=True)

    # P: what a pin_records rule keeps
    for i, pin in enumerate(prof.pins):
        tag = "P%d-%s" % (i, pin["entity"])
        pid = pl.create(tag, pin["entity"], "P", everything=True,
                        extra={pin["field"]: pin["values"][0]})
        if pin["entity"] == "contact":
            pl.create(tag + "-note", "note", "R", {"contact_id": pid}, everything=True)
            pl.import_contact(tag + "-csv", "P", {pin["field"]: pin["values"][0]})
    # the CSV input path: a contact imported restricted
    pl.import_contact("X-csv-contact", "X", {"restricted": True})

    # Forbidden fields: the API refuses them, and the value goes nowhere
    for i, f in enumerate(sorted(prof.forbidden)):
        ent, _, field = f.partition(".")
        if ent not in COLLECTION:
            continue
        n = plan.new_n()
        spec = prof.custom.get(ent, {}).get(field[7:]) if field.startswith("custom.") else None
        v = pattern_value(spec["pattern"], plan.rng(n))[0] if spec and spec.get("pattern") \
            else plan.text(field, n, 60)
        plan.add("F%d" % i, ent, field, v, "weak" if spec and spec.get("pattern") else "strong", [v],
                 "never")
        body = {"name": "Forbidden probe %d" % i} if ent == "organization" else \
            {"given_name": "Forbidden probe %d" % i}
        if field.startswith("custom."):
            body["custom"] = {field[7:]: v}
        else:
            body[field] = v
        st, r = pl.api.call("POST", COLLECTION[ent], body)
        if st != 422:
            plan.d["problems"].append("forbidden field %s was not refused by the API (status %s)" %
                                      (f, st))

    # S4: visible now, restricted or erased after they reached HQ
    s4c = pl.create("S4-contact", "contact", "S4", everything=True, policy="until", withheld=False)
    pl.create("S4-organization", "organization", "S4", everything=True, policy="until",
              withheld=False)
    s4e = pl.create("S4E-contact", "contact", "S4", everything=True, policy="until", withheld=False)
    pl.create("S4-deal", "deal", "S4", {"contact_id": s4c, "organization_id": vo}, withheld=False)
    pl.create("S4-note", "note", "S4", {"contact_id": s4c}, everything=True, policy="until",
              withheld=False, mark="S4-contact")
    pl.create("S4E-deal", "deal", "S4", {"contact_id": s4e, "organization_id": vo}, withheld=False)
    pl.create("S4E-activity", "activity", "S4", {"contact_id": s4e}, everything=True,
              policy="until", withheld=False, mark="S4E-contact")
    # the size of one filler record on the wire, to lay out scenario 3
    pl.import_fillers("F0", 300)
    pl.save()


def cmd_arrived(dirpath):
    """After the first drain: the S4 records are at HQ (so their withdrawal
    is a real one), and the filler size for scenario 3's layout."""
    pl = Planter(dirpath)
    hq = hq_records()
    for tag, r in pl.plan.d["records"].items():
        if r["role"] == "S4" and (r["entity"], r["id"]) not in hq:
            die("%s (%s %s) did not reach HQ before scenario 4" % (tag, r["entity"], r["id"]))
    # wire bytes per filler, from the projections the node would send
    rep = os.path.join(dirpath, "calib.jsonl")
    run(os.environ["OUTPOST"], "egress-report", "--output", rep)
    lines = []
    planted = {r["id"] for r in pl.plan.d["records"].values()}
    for line in open(rep, encoding="utf-8"):
        o = json.loads(line)
        if o["entity"] == "contact" and o["record"]["id"] not in planted:
            lines.append('{"entity":"contact","op":"upsert","record":%s}\n' %
                         json.dumps(o["record"], separators=(",", ":")))
    if len(lines) < 200:
        die("expected the 300 filler contacts in the egress report, found %d" % len(lines))
    z = zlib.compressobj(9)
    size = len(z.compress("".join(lines).encode()) + z.flush())
    pl.plan.d["filler_bytes"] = size / len(lines)
    pl.save()


def hold_idle():
    """Holds the link and waits until the node waits on HQ: its sync cycle is
    then stuck on a request and cuts no segment while records are written,
    so that they go into one segment together."""
    base = proxy("hold")["requests"]

    def stuck():
        st = proxy("stats")
        return st["requests"] > base or st["down_queued"] > 0

    wait_for("the node to wait on HQ", stuck, 30)


def spool_segment_held():
    """Lets the held request through; the node cuts a segment and asks HQ to
    create its upload, and that request is held: not a byte of it leaves."""
    proxy("hold-before POST")
    wait_for("the upload's POST to be held", lambda: proxy("stats")["held_request"], 30)
    wait_for("a segment in the spool", lambda: status()["spool_segments"] >= 1, 30)


def cmd_busy(dirpath):
    """Scenario 2b: the node's database is busy (the test holds the write
    lock, as a long import would) when HQ creates the upload, so the node
    cannot record the upload's URL; it is then killed and the record is
    restricted before it comes back. No byte of the segment may leave before
    its URL is recorded (else the node would not know HQ may hold the
    records, and no withdrawal would follow): HQ must get none of it unless
    the ledger recorded the URL before the first byte left. The node names
    its upload and records the URL before the POST that carries the first
    bytes (docs/UPLINK.md), so the POST the proxy held comes after the
    record and may go; if the record had failed, no POST would have been
    sent at all."""
    pl = Planter(dirpath)
    hold_idle()
    lc = pl.create("S2B-contact", "contact", "S2B", everything=True, policy="until",
                   withheld=False)
    pl.create("S2B-note", "note", "S2B", {"contact_id": lc}, everything=True, policy="until",
              withheld=False, mark="S2B-contact")
    pl.save()
    spool_segment_held()
    db = sqlite3.connect(os.environ["OUTPOST_DB"], timeout=0, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        proxy("open")
        deadline = time.time() + 3.0
        while time.time() < deadline:
            if ("contact", lc) in hq_records():
                # read inside the test's own write transaction: what the
                # node had committed before the lock was taken
                url = db.execute("SELECT upload_url FROM sync_segments ORDER BY no DESC "
                                 "LIMIT 1").fetchone()
                if url and url[0]:
                    pl.plan.d.setdefault("notes", []).append(
                        "scenario 2b: the upload's URL was recorded before its first byte "
                        "(%s); HQ took the segment while the database was busy" % url[0])
                    break
                pl.plan.d.setdefault("breaches", []).append({
                    "scenario": "2b uploaded, not yet recorded",
                    "where": "HQ records",
                    "canary": None,
                    "what": "HQ applied the S2B records while the node could not record the "
                            "upload's URL: bytes left before the ledger knew",
                    "gap": None})
                break
            time.sleep(0.1)
        proxy("hold")
        os.kill(int(os.environ["NODE_PID"]), signal.SIGKILL)
        time.sleep(0.2)
    finally:
        db.execute("ROLLBACK")
        db.close()
    pl.restrict_cli("S2B-contact")
    pl.mark("S2B-contact")
    proxy("open")
    pl.save()


def spool_files():
    d = os.environ["SPOOL"]
    return sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []


def cmd_spooled(dirpath):
    """Scenario 2, then scenario 3's records while the link is still held."""
    pl = Planter(dirpath)
    prof, plan = pl.prof, pl.plan
    hold_idle()
    s2c = pl.create("S2-contact", "contact", "S2", everything=True)
    pl.create("S2-organization", "organization", "S2", everything=True)
    pl.create("S2E-contact", "contact", "S2", everything=True)
    # the API's bulk create as an input path: one restricted, one erased
    pl.create_bulk(["S2K-contact", "S2KE-contact"], "S2")
    pl.create("S2-note", "note", "S2", {"contact_id": s2c}, everything=True)
    pl.create("S2-deal", "deal", "S2", {"contact_id": s2c}, everything=True)
    pins = []
    for i, pin in enumerate(prof.pins):
        tag = "S2P%d-%s" % (i, pin["entity"])
        other = None
        ftype = None
        spec = prof.custom.get(pin["entity"], {}).get(pin["field"][7:]) \
            if pin["field"].startswith("custom.") else None
        if spec and spec["type"] == "enum":
            other = [v for v in spec["values"] if v not in pin["values"]][0]
        elif spec and spec["type"] == "text":
            other = "DE" if "RU" in pin["values"] else "RU"
        else:
            ftype = "unsupported"
        if ftype:
            die("pin on %s.%s: the test cannot make a value that does not match" %
                (pin["entity"], pin["field"]))
        pl.create(tag, pin["entity"], "S2", everything=True, extra={pin["field"]: other})
        pins.append((tag, pin))
    pl.save()
    spool_segment_held()
    before = spool_files()
    hits = scan_spool(plan, lambda c: plan.d["records"].get(c["tag"], {}).get("role") == "S2")
    if not hits:
        die("positive control: the S2 canaries are not in the spooled segment %s: the spool "
            "decoder is blind" % before)
    plan.d["spool_s2_before"] = before
    # restrict (CLI and API), erase, pin; each returns before the next starts
    pl.restrict_cli("S2-contact")
    pl.mark("S2-contact")
    pl.patch("S2-organization", {"restricted": True})
    pl.mark("S2-organization")
    pl.erase("S2E-contact")
    pl.mark("S2E-contact")
    pl.patch("S2K-contact", {"restricted": True})
    pl.mark("S2K-contact")
    pl.erase("S2KE-contact")
    pl.mark("S2KE-contact")
    for tag, pin in pins:
        pl.patch(tag, {"custom": {pin["field"][7:]: pin["values"][0]}} if
                 pin["field"].startswith("custom.") else {pin["field"]: pin["values"][0]})
        pl.mark(tag)
    # scenario 4: records HQ holds are restricted and erased
    pl.patch("S4-contact", {"restricted": True})
    pl.mark("S4-contact")
    pl.patch("S4-organization", {"restricted": True})
    pl.mark("S4-organization")
    pl.erase("S4E-contact")
    pl.mark("S4E-contact")
    check_spool_after(plan, before, "scenario 2")
    # Scenario 3's records, while the held upload keeps the node from cutting
    # a segment: fillers, group A, fillers, group B, in one outbox run. The
    # fillers are sized so that A lands inside the first 64 KiB chunk of the
    # upload (past what has left when it is restricted) and B after it.
    fb = plan.d["filler_bytes"]
    n1 = max(50, int(36000 / fb))
    n2 = max(50, int(50000 / fb))
    pl.import_fillers("F1", n1)
    for g in ("S3A", "S3B"):
        pl.create(g + "-contact", "contact", g, everything=True, policy="until")
        pl.create(g + "E-contact", "contact", g, everything=True, policy="until")
        pl.create(g + "-organization", "organization", g, everything=True, policy="until")
        if g == "S3A":
            pl.import_fillers("F2", n2)
    pl.save()


def cmd_upload(dirpath):
    """Scenario 3: restrict and erase while the segment is on its way."""
    pl = Planter(dirpath)
    plan = pl.plan
    base = proxy("stats")["patch_bytes"]
    proxy("rate 8000")
    proxy("open")
    # the held upload fails (its file was voided); the node cuts again from
    # what HQ acknowledged, so the scenario 3 records may come in the first
    # new segment or a later one: find the one that holds them, and let the
    # new segments before it leave first
    before = plan.d["spool_s2_before"]

    def s3_segment():
        for f in spool_files():
            if f.endswith(".seg") and f not in before:
                try:
                    lay = layout(plan, f)
                except Exception:  # voided or being renamed under us: look again
                    continue
                if any(t.startswith("S3A") for t in lay):
                    return f, lay
        return None

    seg, lay = wait_for("the scenario 3 segment in the spool", s3_segment, 30)
    plan.d["s3_layout"] = lay
    wait_for("the segments before the scenario 3 one to leave",
             lambda: not [f for f in spool_files()
                          if f.endswith(".seg") and f not in before and f < seg], 60, 0.01)
    base = proxy("stats")["patch_bytes"]
    wait_for("the scenario 3 upload to start",
             lambda: proxy("stats")["patch_bytes"] - base >= 2048, 30, 0.01)
    # Slower still while the restrictions run, so that however long they
    # take on a loaded machine, S3A has not left when they return.
    proxy("rate 500")
    for g in ("S3A", "S3B"):
        if g == "S3A":
            pl.restrict_cli(g + "-contact")
        else:
            pl.patch(g + "-contact", {"restricted": True})
        pl.mark(g + "-contact")
        pl.patch(g + "-organization", {"restricted": True})
        pl.mark(g + "-organization")
        pl.erase(g + "E-contact")
        pl.mark(g + "E-contact")
    check_spool_after(plan, [seg], "scenario 3")
    proxy("rate 0")
    a = [o for t, o in lay.items() if t.startswith("S3A")]
    b = [o for t, o in lay.items() if t.startswith("S3B")]
    m = plan.d["marks"]["S3A-contact"]["conns"]
    plan.d["notes"].append("scenario 3: segment %s; S3A canaries at file bytes %s..%s, S3B at "
                           "%s..%s; when S3A was restricted the node had written %s" %
                           (os.path.basename(seg), min(a) if a else "-", max(a) if a else "-",
                            min(b) if b else "-", max(b) if b else "-",
                            ", ".join("%d bytes on connection %s (%d in the proxy, %d in its "
                                      "socket, %d in the node's send queue)" %
                                      (v["boundary"], k, v["received"], v["inq"], v["txq"])
                                      for k, v in m.items()) or "nothing"))
    # On a loaded machine the node may cut while the records are still being
    # written, so S3B can land in a later segment: every canary is still
    # searched on the wire; only the layout's note says the in-flight case
    # was not arranged this run.
    if not a or not b or max(a) >= 65536 or min(b) < 65536 + 4096:
        plan.d["notes"].append(
            "scenario 3 layout: S3A was not inside the first 64 KiB chunk or S3B not past it "
            "(S3A %s, S3B %s, filler bytes %.1f): the in-flight-chunk case was checked as a "
            "restriction during the upload only" %
            (sorted(a), sorted(b), plan.d["filler_bytes"]))
    pl.save()


# ---- the segment format (docs/SEGMENT_FORMAT.md) -------------------------------

MAGIC = b"OUTPOSTSEG\0"


def decode_segment(data):
    """(header or None, payload offset, text, checkpoints) of a whole or
    partial segment image: the zlib stream is inflated as far as the bytes
    go. checkpoints: (compressed bytes fed, text length) every 256 bytes."""
    if len(data) < 17 or not data.startswith(MAGIC):
        return None, 0, "", []
    hlen = struct.unpack(">I", data[13:17])[0]
    start = 17 + hlen
    header = None
    if len(data) >= start:
        try:
            header = json.loads(data[17:start])
        except ValueError:
            header = None
    end = len(data)
    if header and isinstance(header.get("payload_bytes"), int):
        end = min(end, start + header["payload_bytes"])
    d = zlib.decompressobj()
    out, marks, n = [], [], 0
    for i in range(start, end, 256):
        try:
            piece = d.decompress(data[i:min(i + 256, end)])
        except zlib.error:
            break
        out.append(piece)
        n += len(piece)
        marks.append((min(i + 256, end) - start, n))
    return header, start, b"".join(out).decode("utf-8", "replace"), marks


def text_offset_to_file(start, marks, text_end):
    """The file offset of the last compressed byte needed to produce text
    up to text_end (bytes)."""
    for fed, n in marks:
        if n >= text_end:
            return start + fed - 1
    return start + (marks[-1][0] if marks else 0)


# ---- finding canaries -----------------------------------------------------------


class Finder:
    """Finds canaries in bytes or text; `want` filters which are reported
    (every canary is still recognized, so none is mistaken for a fragment)."""

    def __init__(self, plan, want=None):
        self.region = plan.region
        self.want = want
        cs = plan.canaries
        self.strong = [(c["value"].lower().encode(), c) for c in cs if c["kind"] == "strong"]
        self.weak = {}
        for c in cs:
            if c["kind"] == "weak":
                for f in c["forms"]:
                    self.weak[f.encode()] = c
        self.weak_re = re.compile(
            rb"(?<![0-9A-Za-z])(" + b"|".join(re.escape(k) for k in
                                               sorted(self.weak, key=len, reverse=True)) +
            rb")(?![0-9A-Za-z])") if self.weak else None
        self.prefix = ("cnry-" + self.region.lower() + "-").encode()

    def find(self, data):
        """[(canary or None, offset, end)]: every canary in data (bytes or
        str); None for a CNRY- string of this region that is no canary
        whole (a truncated or altered one)."""
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        low = data.lower()
        hits = []
        pos = low.find(self.prefix)
        while pos >= 0:
            got = None
            for v, c in self.strong:
                k = v.find(b"cnry-")
                if low[pos - k:pos - k + len(v)] == v:
                    got = (c, pos - k, pos - k + len(v))
                    break
            hits.append(got or (None, pos, pos + 24))
            pos = low.find(self.prefix, pos + 1)
        if self.weak_re is not None:
            for m in self.weak_re.finditer(data):
                hits.append((self.weak[m.group(1)], m.start(1), m.end(1)))
        if self.want is not None:
            hits = [h for h in hits if h[0] is None or self.want(h[0])]
        return hits


def scan_spool(plan, want):
    f = Finder(plan, want)
    out = []
    for path in spool_files():
        try:
            data = open(path, "rb").read()
        except OSError:
            continue
        for c, _, _ in f.find(data):
            out.append((path, "raw", c))
        hdr, start, text, _ = decode_segment(data)
        for c, _, _ in f.find(text):
            out.append((path, "decoded", c))
    return out


def sendable_or_gone(path):
    """(sendable, settled): whether the node has `path` recorded as a
    segment still to send, and whether that is final (recorded, or the file
    is gone)."""
    if not os.path.exists(path):
        return False, True
    try:
        db = sqlite3.connect("file:%s?mode=ro" % os.environ["OUTPOST_DB"], uri=True, timeout=5)
        try:
            row = db.execute("SELECT count(*) FROM sync_segments WHERE state IN (0, 1) AND "
                             "path = ?", (path,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return True, False
    return bool(row and row[0]), bool(row and row[0])


def check_spool_after(plan, before, scenario):
    """After a restriction returned: the segments that held the old values
    are gone (or empty), and no file in the spool holds a canary of a record
    restricted by now."""
    restricted = set(plan.d["marks"])
    for path in before:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            plan.d.setdefault("breaches", []).append(
                {"scenario": scenario, "where": "node spool",
                 "what": "%s, spooled before the restriction, is still there with %d bytes" %
                 (os.path.basename(path), os.path.getsize(path))})
    found = scan_spool(plan, lambda c: c["policy"] == "never" or c["tag"] in restricted)
    # A file the segmenter renamed into place while it cut from values read
    # before the restriction is never recorded (the voiding bumped the
    # epoch) and is deleted a moment later: it cannot be sent. What counts
    # is a file the node may send (recorded as an unacknowledged segment),
    # or one that stays.
    # A file may also be replaced under the same name: the segmenter's
    # first cut fails the epoch check and is deleted, and its retry writes
    # a clean segment with the same number. So once the files settle, the
    # spool is read again and only what it holds then counts.
    if found:
        deadline = time.time() + 2.0
        while time.time() < deadline and any(not sendable_or_gone(p)[1] for p, _, _ in found):
            time.sleep(0.05)
        found = scan_spool(plan, lambda c: c["policy"] == "never" or c["tag"] in restricted)
    for path, how, c in found:
        sendable, settled = sendable_or_gone(path)
        if not sendable and settled:
            continue
        plan.d.setdefault("breaches", []).append(
            {"scenario": scenario, "where": "node spool %s (%s) after the restriction returned" %
             (os.path.basename(path), how), "canary": c,
             "what": None if c else "a CNRY- string that is no whole canary"})


def layout(plan, seg):
    """File offsets of the S3 canaries in the scenario 3 segment."""
    data = open(seg, "rb").read()
    hdr, start, text, marks = decode_segment(data)
    tb = text.encode()
    out = {}
    for c, s, e in Finder(plan, lambda c: c["tag"].startswith("S3")).find(tb):
        if c is not None:
            off = text_offset_to_file(start, marks, e)
            out[c["tag"]] = max(out.get(c["tag"], 0), off)
    return out


# ---- the capture ---------------------------------------------------------------

CAP_HDR = struct.Struct(">cIdI")


class Stream:
    def __init__(self):
        self.data = bytearray()
        self.offs, self.times = [], []

    def add(self, t, b):
        self.offs.append(len(self.data))
        self.times.append(t)
        self.data += b

    def time_at(self, off):
        i = bisect.bisect_right(self.offs, off) - 1
        return self.times[max(i, 0)] if self.times else 0.0


def read_capture(path):
    ups, downs, marks = {}, {}, []
    data = open(path, "rb").read()
    i = 0
    while i + CAP_HDR.size <= len(data):
        kind, cid, t, n = CAP_HDR.unpack_from(data, i)
        body = data[i + CAP_HDR.size:i + CAP_HDR.size + n]
        i += CAP_HDR.size + n
        if kind == b"U":
            ups.setdefault(cid, Stream()).add(t, body)
        elif kind == b"D":
            downs.setdefault(cid, Stream()).add(t, body)
        elif kind == b"M":
            marks.append(json.loads(body))
    return ups, downs, marks


def parse_http(buf, is_response=False, req_methods=None):
    """Messages in one direction of a connection: dicts with start, head
    fields, and body spans [(body offset, stream offset, length)]."""
    out, pos = [], 0
    while pos < len(buf):
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append({"start": pos, "partial_head": True, "line": bytes(buf[pos:pos + 80]).decode("latin-1")})
            break
        lines = bytes(buf[pos:end]).decode("latin-1").split("\r\n")
        h = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            h[k.strip().lower()] = v.strip()
        m = {"start": pos, "line": lines[0], "headers": h, "spans": [], "body_len": 0}
        p = end + 4
        if is_response:
            method = req_methods[len(out)] if req_methods and len(out) < len(req_methods) else ""
            code = int(lines[0].split(" ")[1]) if len(lines[0].split(" ")) > 1 else 0
            no_body = method == "HEAD" or code in (204, 304) or 100 <= code < 200
        else:
            no_body = False
        if no_body:
            n = 0
        elif "chunked" in h.get("transfer-encoding", "").lower():
            body_off = 0
            while True:
                le = buf.find(b"\r\n", p)
                if le < 0:
                    p = len(buf)
                    break
                size = int(bytes(buf[p:le]).split(b";")[0] or b"0", 16)
                p = le + 2
                if size == 0:  # trailers, then an empty line
                    while True:
                        le = buf.find(b"\r\n", p)
                        empty, p = le == p, (le + 2 if le >= 0 else len(buf))
                        if empty or le < 0:
                            break
                    break
                take = min(size, len(buf) - p)
                m["spans"].append((body_off, p, take))
                body_off += take
                p += size + 2
            m["body_len"] = body_off
            out.append(m)
            pos = p
            continue
        else:
            n = int(h.get("content-length", "0") or 0)
        take = min(n, len(buf) - p)
        if take > 0:
            m["spans"].append((0, p, take))
        m["body_len"] = take
        m["complete"] = take == n
        out.append(m)
        pos = p + n
    return out


class Wire:
    """The node->HQ stream taken apart: uploads by URL with their bytes at
    their offsets, and where every byte crossed."""

    def __init__(self, capture):
        self.ups, self.downs, self.marks = read_capture(capture)
        self.uploads = {}  # path -> {"segment", "pieces": [(file_off, cid, stream_off, len)]}
        self.requests = []
        for cid, st in sorted(self.ups.items()):
            reqs = parse_http(st.data)
            methods = [r.get("line", "").split(" ")[0] for r in reqs]
            resps = parse_http(self.downs[cid].data, True, methods) if cid in self.downs else []
            for i, r in enumerate(reqs):
                r["cid"] = cid
                r["time"] = st.time_at(r["start"])
                self.requests.append(r)
                if r.get("partial_head"):
                    continue
                method, path = (r["line"].split(" ") + ["", ""])[:2]
                path = urllib.parse.urlparse(path).path
                if method == "POST" and i < len(resps):
                    loc = resps[i].get("headers", {}).get("location", "")
                    if loc:
                        up = self.uploads.setdefault(urllib.parse.urlparse(loc).path,
                                                     {"segment": None, "pieces": []})
                        meta = dict(x.strip().split(" ", 1) for x in
                                    r["headers"].get("upload-metadata", "").split(",") if " " in x.strip())
                        if "segment" in meta:
                            up["segment"] = base64.b64decode(meta["segment"]).decode()
                key = r["headers"].get("outpost-upload-key", "")
                if method == "POST" and key and r["spans"]:
                    # a creation with its first bytes, at the upload the
                    # node named: SHA-256("outpost-tus-key" NUL node NUL key)
                    meta = dict(x.strip().split(" ", 1) for x in
                                r["headers"].get("upload-metadata", "").split(",") if " " in x.strip())
                    node = base64.b64decode(meta.get("node", "")).decode()
                    uid = hashlib.sha256(b"outpost-tus-key\0" + node.encode() + b"\0" +
                                         key.encode()).hexdigest()[:32]
                    path = path.rstrip("/") + "/" + uid
                    up = self.uploads.setdefault(path, {"segment": None, "pieces": []})
                    if "segment" in meta:
                        up["segment"] = base64.b64decode(meta["segment"]).decode()
                    for boff, soff, n in r["spans"]:
                        up["pieces"].append((boff, cid, soff, n, r))
                if method == "PATCH":
                    up = self.uploads.setdefault(path, {"segment": None, "pieces": []})
                    off = int(r["headers"].get("upload-offset", "0"))
                    for boff, soff, n in r["spans"]:
                        up["pieces"].append((off + boff, cid, soff, n, r))

    def image(self, path):
        up = self.uploads[path]
        size = max((o + n for o, _, _, n, _ in up["pieces"]), default=0)
        img = bytearray(size)
        have = bytearray(size)
        for o, cid, soff, n, _ in sorted(up["pieces"], key=lambda p: self.ups[p[1]].time_at(p[2])):
            img[o:o + n] = self.ups[cid].data[soff:soff + n]
            have[o:o + n] = b"\1" * n
        k = have.find(b"\0")
        return bytes(img[:size if k < 0 else k])

    def crossing(self, path, file_off):
        """The first crossing of a file byte: (time, cid, stream offset, request)."""
        best = None
        for o, cid, soff, n, r in self.uploads[path]["pieces"]:
            if o <= file_off < o + n:
                s = soff + file_off - o
                t = self.ups[cid].time_at(s)
                if best is None or t < best[0]:
                    best = (t, cid, s, r)
        return best


def hq_records():
    p = run(os.environ["OUTPOST_HQ"], "--db", os.environ["HQ_DB"], "records", "--json")
    out = {}
    for line in p.stdout.splitlines():
        o = json.loads(line)
        if o["node"] == os.environ["HQ_NODE"]:
            out[(o["entity"], o["id"])] = o
    return out


# Why a breach may be expected today: each is printed once per region as a
# legend, and the breach fails the test all the same.
GAP_A = "known gap a"
GAP_A_HQ = "known gap a, HQ side"
GAP_B = "known gap b"
REPORT_REL = "egress-report bug"
SECURE = "HQ secure deletion"
SENT_BUG = "residency bug: egress_sent forgotten"
LEGEND = {
    SENT_BUG: "residency_void_spool_tx (appliance/store/residency.c) drops the egress_sent rows of "
              "every unacknowledged segment whose upload_url is empty, as if no byte of it had "
              "left; but the uplink sends a segment's bytes before its URL is recorded "
              "(appliance/uplink/uplink.c on_created only queues J_SET_URL, and J_SET_URL and "
              "J_MARK_UPLOADED fail when the database stays busy or the node dies first). HQ "
              "applied the segment, the node believes HQ never had its records, and no "
              "withdrawal or erasure ever follows.",
    GAP_A: "the uploader sends the rest of a chunk it had read before its spool file was "
           "truncated: sync/net/tus_client.c does not stop at a shrunk file yet (being built). "
           "Stopping must also drop what the kernel holds in the socket's send queue (abort the "
           "connection with a reset, or keep the send buffer small), or that part still leaves.",
    GAP_A_HQ: "the voided upload is not terminated at HQ (being built), so what was sent of it "
              "stays in HQ's upload directory until it expires.",
    GAP_B: "HQ ignores a record re-projected at the same version (being built): the deal lost "
           "its link to a contact withheld since, at the version HQ holds, so HQ keeps naming "
           "that contact.",
    REPORT_REL: "`outpost egress-report` does not apply the relation rules: "
                "appliance/cli/cmd_egress_report.c on_record projects each record with "
                "egress_project_traced alone and never calls residency_judge/residency_apply, so "
                "what is about a withheld contact, organization or deal is reported (and written "
                "by --output) as leaving, and a deal keeps the withheld contact's id, while the "
                "segmenter (appliance/uplink/sync_ledger.c add_row) withholds them.",
    SECURE: "values of records withdrawn or erased at HQ linger in HQ's WAL or free pages: HQ "
            "must delete securely (docs/HQ.md). RESIDENCY_HQ_SECURE_DELETE=0 reports without "
            "failing.",
}


class Final:
    def __init__(self, dirpath):
        self.dir = dirpath
        self.prof = Profile(os.environ["PROFILE"])
        self.plan = Plan(self.prof.region, json.load(open(os.path.join(dirpath, "state.json"))))
        self.breaches = list(self.plan.d.get("breaches", []))
        self.notes = list(self.plan.d.get("notes", []))
        self.enforce_secure = os.environ.get("RESIDENCY_HQ_SECURE_DELETE", "1") == "1"
        self.secure_left = {}  # file -> values of withdrawn records left in it (not enforced)
        recs = self.plan.d["records"]
        self.by_id = {r["id"]: (t, r) for t, r in recs.items()}
        # ids HQ must never hear of: withheld from creation, and what was
        # restricted while its segment had sent nothing (scenario 2)
        self.never_ids = {r["id"]: t for t, r in recs.items()
                          if r["withheld"] and r["role"] in ("X", "R", "P", "S2")}
        self.never_ids[recs["X-contact"]["id"]] = "X-contact"
        self.gone = {t for t in recs if self._gone(t, recs)}

    def _gone(self, tag, recs):
        """Whether nothing of the record may be live at HQ now: withheld from
        creation, restricted, erased or pinned since, or about such a record
        (except a deal of a visible organization, which only loses the link)."""
        r = recs[tag]
        if r["withheld"] or tag in self.plan.d["marks"]:
            return True
        about = r.get("about")
        if not about or not self._gone(about, recs):
            return False
        org = (r.get("refs") or {}).get("organization_id")
        return not (r["entity"] == "deal" and org and not self._gone(org, recs))

    def breach(self, scenario, where, canary=None, what=None, gap=None):
        if gap is None and where.startswith("HQ") and \
                ((canary or {}).get("tag", "").startswith("S2B") or "(S2B-" in (what or "")):
            gap = SENT_BUG
        self.breaches.append({"scenario": scenario, "where": where, "canary": canary, "what": what,
                              "gap": gap})

    def mark_of(self, tag):
        return self.plan.d["marks"].get(tag)

    def scenario_of(self, tag):
        return {"V": "1 non-exportable field", "X": "1 restricted from creation",
                "R": "1 about a restricted record", "P": "1 pinned", "S2": "2 while spooled",
                "S3A": "3 while uploading (in the chunk in flight)",
                "S3B": "3 while uploading (past the chunk in flight)",
                "S4": "4 after sync", "F": "1 forbidden field",
                "S2B": "2b uploaded, not yet recorded"}.get(
            self.plan.d["records"].get(tag, {}).get("role", tag[:1]), tag)

    # -- the wire
    def scan_wire(self):
        wire = Wire(os.environ["CAPTURE"])
        finder = Finder(self.plan)
        seen_until = set()
        decoded_records = 0
        for path, up in sorted(wire.uploads.items()):
            img = wire.image(path)
            hdr, start, text, marks = decode_segment(img)
            segno = up["segment"] or (hdr or {}).get("segment", "?")
            where = "wire: upload %s (segment %s), decoded" % (path.rsplit("/", 1)[-1][:8], segno)
            tb = text.encode()
            for c, s, e in finder.find(tb):
                if c is None:
                    self.breach("?", where, what="a CNRY- string that is no whole canary: %r" %
                                tb[s:e + 16])
                    continue
                off = text_offset_to_file(start, marks, e)
                cr = wire.crossing(path, off)
                self.judge_crossing(c, where, cr, seen_until)
            for line in text.split("\n"):
                if line.startswith("{"):
                    try:
                        o = json.loads(line)
                    except ValueError:
                        continue
                    decoded_records += 1
                    self.check_shape(o.get("entity"), o.get("op"), o.get("record"), where)
        # positive control: the S4 values crossed before they were withdrawn
        s4 = {c["value"] for c in self.plan.canaries if c["tag"].startswith("S4") and
              c["policy"] == "until"}
        if s4 and not (s4 & seen_until):
            self.breach("control", "wire", what="positive control: none of the S4 values that "
                        "left before their restriction was found in the decoded uploads: the "
                        "capture decoder is blind")
        if decoded_records < 100:
            self.breach("control", "wire", what="only %d records decoded from the capture" %
                        decoded_records)
        # the raw streams, both directions (headers, URLs, anything uncompressed)
        ids = set(self.never_ids)
        for name, streams in (("node->HQ", wire.ups), ("HQ->node", wire.downs)):
            for cid, st in streams.items():
                for c, s, e in finder.find(bytes(st.data)):
                    self.breach(self.scenario_of(c["tag"]) if c else "?",
                                "wire: raw %s bytes of connection %d at %d" % (name, cid, s), c)
                for m in re.finditer(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                                     bytes(st.data)):
                    i = m.group().decode()
                    if i in ids:
                        self.breach("5 metadata", "wire: raw %s connection %d" % (name, cid),
                                    what="id of %s %s" % (self.never_ids[i], i))
        self.wire = wire
        self.notes.append("wire: %d connections, %d node->HQ bytes, %d uploads, %d records decoded" %
                          (len(wire.ups), sum(len(s.data) for s in wire.ups.values()),
                           len(wire.uploads), decoded_records))

    def judge_crossing(self, c, where, cr, seen_until):
        tag = c["tag"]
        scen = self.scenario_of(tag)
        m = self.mark_of(c.get("mark", tag))
        if cr is None:
            self.breach(scen, where, c, "found, crossing unknown")
            return
        t, cid, soff, req = cr
        if c["policy"] == "never" or m is None:
            self.breach(scen, where + " (crossed at stream byte %d of connection %d)" % (soff, cid),
                        c, "a value that may never leave")
            return
        b = m["conns"].get(str(cid))
        # What had left the node when the restriction returned: what the
        # proxy had (it stands for the link) and what waited in its socket.
        # Bytes still in the node's own send queue had not left the box.
        left = b["received"] + b["inq"] if b else None
        before_mark = t < m["time"] if b is None else soff < left
        if before_mark:
            seen_until.add(c["value"])
            if tag.startswith("S3"):
                self.breach(scen, where, c, "it left before the restriction returned: the test "
                            "restricted too late (the layout or the throttle needs tuning)")
            return
        req_before = req["time"] < m["time"] if b is None else req["start"] < left
        if req_before:
            queued = b is not None and soff < b["boundary"]
            self.breach(scen, where + " (byte %d of connection %d; %d bytes had left when the "
                        "restriction returned%s)" %
                        (soff, cid, left or 0, ", this one waited in the node's socket send "
                         "queue" if queued else ""), c,
                        "left after its restriction returned, in a PATCH begun before it",
                        gap=GAP_A)
        else:
            self.breach(scen, where, c, "left after its restriction returned, in a request begun "
                        "after it")

    def check_shape(self, entity, op, rec, where):
        """What a record line may carry, field by field (docs/EGRESS.md)."""
        if not isinstance(rec, dict) or entity not in ENTITIES:
            self.breach("shape", where, what="a line that is not a record of a known entity: %s %s" %
                        (entity, str(rec)[:100]))
            return
        rid = rec.get("id")
        tag = self.by_id.get(rid, ("filler", {}))[0]
        if rid in self.never_ids:
            self.breach("5 metadata", where, what="%s %s (%s), never to leave, is in a line with op %s" %
                        (entity, rid, tag, op))
        if op in ("erase", "purge", "withdraw"):
            extra = set(rec) - {"id", "version"}
            if extra:
                self.breach("shape", where, what="%s tombstone of %s carries %s" %
                            (op, rid, sorted(extra)))
            return
        if op == "patch":
            # a patch (docs/SEGMENT_FORMAT.md, "Patches"): "base" is a
            # version, "unset" names members to remove (names, no values);
            # what it sets is checked below like any record's members
            base, unset = rec.get("base"), rec.get("unset", [])
            if not isinstance(base, int) or not isinstance(unset, list) or \
                    not all(isinstance(u, str) for u in unset):
                self.breach("shape", where, what="patch of %s has base %r, unset %r" %
                            (rid, base, str(unset)[:60]))
            rec = {k: v for k, v in rec.items() if k not in ("base", "unset")}
        if rec.get("restricted") not in (False, None):
            self.breach("shape", where, what="%s %s (%s) leaves with restricted=%s" %
                        (entity, rid, tag, rec.get("restricted")))
        for pin in self.prof.pins:
            if pin["entity"] != entity:
                continue
            f = pin["field"]
            v = (rec.get("custom") or {}).get(f[7:]) if f.startswith("custom.") else rec.get(f)
            if v is not None and str(v) in [str(x) for x in pin["values"]]:
                self.breach("1 pinned", where, what="%s %s (%s) leaves with %s=%s, which a "
                            "pin_records rule keeps" % (entity, rid, tag, f, v))
        for k, v in rec.items():
            if k in META:
                continue
            if k == "custom":
                items = [("custom." + ck, cv) for ck, cv in (v or {}).items()] if isinstance(v, dict) \
                    else [("custom", v)]
            else:
                items = [(k, v)]
            for f, fv in items:
                known = f in COMMON or f in [x[0] for x in self.prof.fields(entity)] or \
                    "%s.%s" % (entity, f) in self.prof.forbidden
                leaves = self.prof.leaves(entity, f) if known else None
                if leaves is None:
                    self.breach("shape", where, what="%s.%s (class %s) is in record %s (%s)" %
                                (entity, f, self.prof.klass(entity, f) if known else "unknown",
                                 rid, tag))
                elif leaves == "pseudonym" and fv is not None and \
                        not (isinstance(fv, str) and PSEUDONYM.match(fv)):
                    self.breach("shape", where, what="%s.%s must leave as a pseudonym, record %s "
                                "(%s) has %r" % (entity, f, rid, tag, str(fv)[:40]))

    # -- HQ
    def scan_file(self, path, label, finder, secure_ok=False):
        try:
            data = open(path, "rb").read()
        except OSError:
            return
        hits = finder.find(data)
        hdr, start, text, _ = decode_segment(data)
        if hdr is not None or text:
            hits += [(c, s, e) for c, s, e in finder.find(text)]
        seen = set()
        for c, s, e in hits:
            if c is not None and c["value"] in seen:
                continue  # the same value in another page version
            seen.add(c["value"] if c else None)
            if c is None:
                self.breach("?", label, what="a CNRY- string that is no whole canary: %r" %
                            data[s:e + 8])
                continue
            gap = None
            if c["policy"] == "until" and secure_ok and c["tag"].startswith("S4"):
                gap = SECURE
                if not self.enforce_secure:
                    self.secure_left.setdefault(label, set()).add(c["value"])
                    continue
            if "upload" in label and c["tag"].startswith("S3A"):
                gap = GAP_A_HQ
            self.breach(self.scenario_of(c["tag"]), label, c, gap=gap)
        ids = set(re.findall(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", data))
        ids |= set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                              text))
        for i in ids:
            i = i.decode() if isinstance(i, bytes) else i
            if i in self.never_ids:
                self.breach("5 metadata", label, what="id of %s %s" % (self.never_ids[i], i))

    def scan_hq(self):
        finder = Finder(self.plan)
        db = os.environ["HQ_DB"]
        for suffix in ("", "-wal"):
            self.scan_file(db + suffix, "HQ database file %s" % os.path.basename(db + suffix),
                           finder, secure_ok=True)
        for f in sorted(glob.glob(os.path.join(os.environ["HQ_UPLOADS"], "*"))):
            self.scan_file(f, "HQ upload directory: %s" % os.path.basename(f), finder)
        for f in os.environ.get("HQ_LOGS", "").split(":"):
            if f:
                self.scan_file(f, "HQ log %s" % os.path.basename(f), finder)
        for f in os.environ.get("NODE_LOGS", "").split(":"):
            if f and os.path.exists(f):
                for c, s, e in finder.find(open(f, "rb").read()):
                    self.notes.append("node log %s holds %s (%s): local, not a breach" %
                                      (os.path.basename(f), c["value"] if c else "?",
                                       c["tag"] if c else "?"))

    def compare(self):
        hq = hq_records()
        rep = os.path.join(self.dir, "expected.jsonl")
        run(os.environ["OUTPOST"], "egress-report", "--output", rep)
        expected = {}
        for line in open(rep, encoding="utf-8"):
            o = json.loads(line)
            expected[(o["entity"], o["record"]["id"])] = o["record"]
        finder = Finder(self.plan)
        live = {}
        for key, o in hq.items():
            txt = json.dumps(o, ensure_ascii=False)
            for c, s, e in finder.find(txt):
                self.breach(self.scenario_of(c["tag"]) if c else "?", "HQ records (outpost-hq "
                            "records) %s %s" % key, c)
            self.check_shape(o["entity"], o["op"], o["record"], "HQ records")
            if o["op"] == "upsert":
                live[key] = o["record"]
        missing = sorted(k for k in expected if k not in live)
        extra = sorted(k for k in live if k not in expected)
        # An edit HQ cannot see sends nothing (docs/SYNC.md, "Nothing new,
        # nothing sent"): HQ may hold an older version and updated_at of a
        # record whose projection is otherwise the same, never a newer one.
        def visible(r):
            return {f: v for f, v in r.items() if f not in ("version", "updated_at")}
        differ = sorted(k for k in expected if k in live and
                        (visible(live[k]) != visible(expected[k]) or
                         live[k].get("version", 0) > expected[k].get("version", 0)))
        gone_ids = {self.plan.d["records"][t]["id"]: t for t in self.gone}
        # Nothing of a withheld record is live at HQ, and nothing live names one.
        for key, rec in sorted(live.items()):
            tag = self.by_id.get(key[1], ("filler",))[0]
            if key[1] in gone_ids:
                self.breach(self.scenario_of(tag), "HQ records", what="%s %s (%s) is live at HQ, "
                            "but it is withheld now" % (key[0], key[1], tag))
                continue
            for f in ("contact_id", "organization_id", "deal_id"):
                if rec.get(f) in gone_ids:
                    e = expected.get(key)
                    same = e is not None and e.get("version") == rec.get("version")
                    self.breach(self.scenario_of(gone_ids[rec[f]]), "HQ records",
                                what="%s %s (%s) at HQ names %s %s (%s), which is withheld now" %
                                (key[0], key[1], tag, f, rec[f], gone_ids[rec[f]]),
                                gap=GAP_B if same else None)
        for k in missing:
            tag = self.by_id.get(k[1], ("filler",))[0]
            self.breach("report", "HQ records", what="%s %s (%s) is in the egress report but not at "
                        "HQ" % (k[0], k[1], tag),
                        gap=REPORT_REL if tag in self.gone and
                        self.plan.d["records"][tag].get("about") else None)
        for k in extra:
            self.breach("report", "HQ records", what="%s %s (%s) is at HQ but not in the egress "
                        "report" % (k[0], k[1], self.by_id.get(k[1], ("filler",))[0]))
        for k in differ:
            e, h = expected[k], live[k]
            diff = {f: (h.get(f), e.get(f)) for f in set(e) | set(h) if e.get(f) != h.get(f)}
            tag = self.by_id.get(k[1], ("filler",))[0]
            gap = None
            if k[0] == "deal" and set(diff) == {"contact_id"}:
                if e.get("contact_id") in gone_ids:
                    gap = REPORT_REL
                elif e.get("contact_id") is None and h.get("version") == e.get("version"):
                    gap = GAP_B
            self.breach("report", "HQ records", what="%s %s (%s) differs: HQ has %s, the report %s" %
                        (k[0], k[1], tag, {f: v[0] for f, v in diff.items()},
                         {f: v[1] for f, v in diff.items()}), gap=gap)
        fillers = sum(self.plan.d.get("fillers", {}).values())
        if len(live) < fillers:
            self.breach("control", "HQ records", what="only %d live records at HQ, fewer than the "
                        "%d fillers: sync did not deliver" % (len(live), fillers))
        self.notes.append("HQ holds %d live records for the node; the egress report %d" %
                          (len(live), len(expected)))

    def secure_notes(self):
        for label, vals in sorted(self.secure_left.items()):
            self.notes.append("not enforced: %d values of records withdrawn or erased at HQ are "
                              "still in %s [%s: %s]" % (len(vals), label, SECURE, LEGEND[SECURE]))

    def report(self):
        out = self.report_breaches()
        for p in self.plan.d.get("problems", []):
            out.append("PROBLEM %s: %s" % (self.prof.region, p))
        return out

    def report_breaches(self):
        out = []
        for b in self.breaches:
            c = b.get("canary")
            what = b.get("what") or ""
            if c:
                what = ("%s.%s of %s %s = %r%s" % (c["entity"], c["field"], c["tag"],
                                                   c.get("id", ""), c["value"],
                                                   ": " + what if what else ""))
            line = "BREACH [%s] %s: %s: %s" % (b["scenario"], self.prof.region, b["where"], what)
            if b.get("gap"):
                line += " [%s]" % b["gap"]
            out.append(line)
        for gap in sorted({b["gap"] for b in self.breaches if b.get("gap")}):
            out.append("  [%s] %s" % (gap, LEGEND[gap]))
        return out


def cmd_final(dirpath):
    f = Final(dirpath)
    f.scan_wire()
    f.scan_hq()
    f.compare()
    f.secure_notes()
    lines = f.report()
    with open(os.path.join(dirpath, "result.txt"), "w") as out:
        for n in f.notes:
            out.write("note: %s\n" % n)
        for l in lines:
            out.write(l + "\n")
    for n in f.notes:
        print("note: %s" % n)
    for l in lines:
        print(l)
    return 1 if lines else 0


def cmd_hqdb(dirpath):
    """After HQ stopped (its WAL checkpointed into the database file)."""
    f = Final(dirpath)
    f.breaches = []
    f.scan_file(os.environ["HQ_DB"], "HQ database file after HQ stopped", Finder(f.plan),
                secure_ok=True)
    f.secure_notes()
    lines = f.report_breaches()
    with open(os.path.join(dirpath, "result.txt"), "a") as out:
        for n in f.notes[len(f.plan.d.get("notes", [])):]:
            out.write("note: %s\n" % n)
        for l in lines:
            out.write(l + "\n")
    for l in lines:
        print(l)
    return 1 if lines else 0


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    cmd, d = sys.argv[1], sys.argv[2]
    fn = {"plant": cmd_plant, "arrived": cmd_arrived, "spooled": cmd_spooled,
          "upload": cmd_upload, "final": cmd_final, "hqdb": cmd_hqdb, "busy": cmd_busy}.get(cmd)
    if fn is None:
        sys.exit(__doc__)
    sys.exit(fn(d) or 0)


if __name__ == "__main__":
    main()
