#!/usr/bin/env python3
"""The layout check behind docs/ARCHITECTURE.md, run by `meson test` in the
lint suite. Sources live in rooms (a folder under appliance/ or sync/, or
schema/), and a room may include headers only from the rooms it stands on
(ALLOWED below). It fails when:
  1. a source file sits in a folder that is not a room on the map;
  2. a file includes a header of a room its room does not stand on
     (an arrow against the direction, or into a room it has no business in);
  3. two headers share a name (includes are by name, so a name must say
     which room it comes from);
  4. the map in docs/ARCHITECTURE.md ("Rooms and arrows": each room's
     "stands on") says otherwise than ALLOWED, or README's layout table
     does not name each room, so the maps a maintainer reads always match
     what the check enforces;
  5. SQL is reached another way than the one (docs/ARCHITECTURE.md, "One
     way into each database"): sqlite3_prepare or sqlite3_exec outside
     sync/toolkit/sql.c, store_db() outside the store room, or SQL text in
     a C string literal (it belongs in a room's sql/*.sql file);
  6. modules include each other, directly or round a longer loop
     (module A.c or A.h includes B.h, and B's files lead back to A.h;
     A_int.h, a module's internal header, is part of A).
`check_layout.py selftest` copies the tree, breaks each rule in turn and
fails unless the check catches every break. SOURCE_ROOT is the source tree.
"""
import os
import re
import shutil
import sys
import tempfile

# Each room, and the rooms whose headers it may include. Keep in step with
# the meson.build of each room (its dependencies) and docs/ARCHITECTURE.md.
ALLOWED = {
    'sync/toolkit': [],
    'sync/core': ['sync/toolkit'],
    'sync/net': ['sync/toolkit'],
    'sync/hq': ['sync/toolkit', 'sync/core', 'sync/net'],
    'schema': [],
    'appliance/store': ['sync/toolkit', 'sync/core', 'schema'],
    'appliance/io': ['sync/toolkit', 'sync/core', 'appliance/store'],
    'appliance/uplink': ['sync/toolkit', 'sync/core', 'sync/net', 'appliance/store'],
    'appliance/api': ['sync/toolkit', 'sync/core', 'sync/net', 'appliance/store',
                      'appliance/uplink'],
    'appliance/web': ['sync/toolkit', 'sync/net'],
    'appliance/daemon': ['sync/toolkit', 'sync/core', 'sync/net', 'appliance/store',
                         'appliance/uplink', 'appliance/api', 'appliance/web'],
    'appliance/cli': ['sync/toolkit', 'sync/core', 'sync/net', 'appliance/store',
                      'appliance/io', 'appliance/uplink'],
}
# Headers made by the build, not in the tree: the room that makes them
# (None: the build root's, which any room may include).
GENERATED = {'outpost_config.h': None}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
# the one gate to SQLite, and what only it may call
SQL_GATE = 'sync/toolkit/sql.c'
SQL_CALL_RE = re.compile(r'\b(sqlite3_prepare\w*|sqlite3_exec)\s*\(')
STORE_DB_RE = re.compile(r'\bstore_db\s*\(')
SQL_TEXT_RE = re.compile(r'"\s*(SELECT\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|'
                         r'DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX|TRIGGER|VIEW|UNIQUE)\s|'
                         r'DROP\s+\w+\s|PRAGMA\s|BEGIN(\s+IMMEDIATE)?\s*;?"|COMMIT\s*;?"|'
                         r'ROLLBACK\s*;?"|SAVEPOINT\s|RELEASE\s)')


def sources(root):
    out = []
    for top in ('appliance', 'sync', 'schema'):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in names:
                if n.endswith(('.c', '.h')):
                    out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def module_of(path):
    """A module is a room's file stem: store.c and store.h; a module's
    internal header (sync_ledger_int.h) belongs to it too."""
    stem = os.path.splitext(path)[0]
    return stem[:-len('_int')] if stem.endswith('_int') else stem


def strip_comments(text):
    return re.sub(r'/\*.*?\*/|//[^\n]*', lambda m: '\n' * m.group(0).count('\n'), text,
                  flags=re.S)


ROW_RE = re.compile(r'^\| `([a-z/]+)` \| [^|]+ \| ([^|]+) \|', re.M)


def map_problems(root):
    """The documented map against ALLOWED."""
    path = os.path.join(root, 'docs', 'ARCHITECTURE.md')
    if not os.path.exists(path):
        return []
    with open(path, encoding='utf-8') as fh:
        text = fh.read()
    documented = {}
    for m in ROW_RE.finditer(text):
        if m.group(1) not in ALLOWED and '/' not in m.group(1) and m.group(1) != 'schema':
            continue
        cell = m.group(2).strip()
        documented[m.group(1)] = [] if cell == 'nothing' else \
            [('sync/' if r.strip() in ('toolkit', 'core', 'net', 'hq') else
              '' if r.strip() == 'schema' else 'appliance/') + r.strip()
             for r in cell.split(',')]
    problems = []
    for room, stands in ALLOWED.items():
        if room not in documented:
            problems.append(f'docs/ARCHITECTURE.md: room {room} is missing from the map')
        elif sorted(documented[room]) != sorted(stands):
            problems.append(f'docs/ARCHITECTURE.md: the map says {room} stands on '
                            f'{", ".join(documented[room]) or "nothing"}, the check says '
                            f'{", ".join(stands) or "nothing"}')
    for room in documented:
        if room not in ALLOWED:
            problems.append(f'docs/ARCHITECTURE.md: room {room} is on the map but not in '
                            'check_layout.py')
    # README's layout table names each room folder, and no other
    readme = os.path.join(root, 'README.md')
    if os.path.exists(readme):
        with open(readme, encoding='utf-8') as fh:
            listed = set(re.findall(r'^\| `((?:appliance|sync)/[a-z_]+)/` \|', fh.read(), re.M))
        for room in ALLOWED:
            if room != 'schema' and room not in listed:
                problems.append(f'README.md: the layout table lacks {room}/')
        for room in sorted(listed - set(ALLOWED)):
            problems.append(f'README.md: the layout table names {room}/, which is not a room')
    return problems


def check(root):
    problems = map_problems(root)
    files = sources(root)
    header_room = dict(GENERATED)
    header_path = {}
    # a room with a sql/ folder makes <room>_queries.h from it (sql.h)
    for room in ALLOWED:
        if os.path.isdir(os.path.join(root, room, 'sql')):
            name = os.path.basename(room) + '_queries.h'
            header_room[name] = room
            header_path[name] = os.path.join(room, name)
    for f in files:
        room = os.path.dirname(f)
        if room not in ALLOWED:
            problems.append(f'{f}: the folder {room}/ is not a room on the map '
                            '(tests/tools/check_layout.py ALLOWED, docs/ARCHITECTURE.md)')
            continue
        if f.endswith('.h'):
            name = os.path.basename(f)
            if name in header_path:
                problems.append(f'{f}: a header of the same name is {header_path[name]}; '
                                'includes are by name, so rename one')
            header_path[name] = f
            header_room[name] = room

    # module graph: a module is a room's file stem (store.c + store.h)
    edges = {}
    for f in files:
        room = os.path.dirname(f)
        if room not in ALLOWED:
            continue
        with open(os.path.join(root, f), encoding='utf-8', errors='replace') as fh:
            text = strip_comments(fh.read())
        me = module_of(f)
        if f.endswith('.c') or f.endswith('.h'):
            for n, line in enumerate(text.split('\n'), start=1):
                if f != SQL_GATE and SQL_CALL_RE.search(line):
                    problems.append(f'{f}:{n}: calls SQLite with SQL text; run a named query '
                                    f'through sql.h instead')
                if room != 'appliance/store' and STORE_DB_RE.search(line):
                    problems.append(f'{f}:{n}: store_db() outside the store; bind the room\'s '
                                    'queries with store_queries_bind or call a store function')
                if SQL_TEXT_RE.search(line):
                    problems.append(f'{f}:{n}: SQL text in C; put it in the room\'s sql/*.sql '
                                    'as a named query')
        for m in INCLUDE_RE.finditer(text):
            name = m.group(1)
            line = text.count('\n', 0, m.start()) + 1
            if name not in header_room:
                problems.append(f'{f}:{line}: includes "{name}", which no room has')
                continue
            target = header_room[name]
            if target is None:
                continue
            if target != room and target not in ALLOWED[room]:
                problems.append(f'{f}:{line}: includes "{name}" from {target}/, but {room}/ '
                                f'stands only on {", ".join(ALLOWED[room]) or "nothing of ours"}')
            them = module_of(header_path[name])
            if them != me:
                edges.setdefault(me, set()).add(them)

    # loops between modules (depth-first search, each loop named once)
    state, stack, seen_loops = {}, [], set()

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(edges.get(n, ())):
            if state.get(t) == 1:
                loop = stack[stack.index(t):]
                key = frozenset(loop)
                if key not in seen_loops:
                    seen_loops.add(key)
                    problems.append('modules include each other: ' +
                                    ' -> '.join(loop + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return problems


def selftest(root):
    """Breaks each rule in a copy of the tree; a break is caught when the
    check reports something it did not report for the tree as it is."""
    fail = 0
    baseline = set(check(root))

    def found(path, text, mode='a'):
        tmp = tempfile.mkdtemp()
        try:
            for top in ('appliance', 'sync', 'schema', 'docs'):
                shutil.copytree(os.path.join(root, top), os.path.join(tmp, top))
            shutil.copy(os.path.join(root, 'README.md'), tmp)
            p = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, mode) as fh:
                fh.write(text)
            return set(check(tmp)) - baseline
        finally:
            shutil.rmtree(tmp)

    def expect(what, path, text, mode='a'):
        nonlocal fail
        if found(path, text, mode):
            print(f'caught: {what}')
        else:
            print(f'MISSED: {what}', file=sys.stderr)
            fail = 1

    expect('the store including the API', 'appliance/store/store.c', '#include "api.h"\n')
    expect('the toolkit including the core', 'sync/toolkit/log.c', '#include "entity.h"\n')
    expect('HQ including the node', 'sync/hq/hq_apply.c', '#include "store.h"\n')
    expect('the node including HQ', 'appliance/uplink/uplink.c', '#include "hq_store.h"\n')
    expect('the network layer reading the store', 'sync/net/tus_client.c',
           '#include "db.h"\n')
    expect('a folder off the map', 'appliance/misc/thing.c', 'int thing;\n', 'w')
    expect('two headers of one name', 'appliance/api/store.h', '#pragma once\n', 'w')
    expect('a header nobody has', 'appliance/api/api.c', '#include "nowhere.h"\n')
    expect('two modules including each other', 'sync/core/region.c', '#include "phone.h"\n')
    expect('the documented map drifting from the check', 'docs/ARCHITECTURE.md',
           '\n| `appliance/io` | `io` | toolkit, core, store, api | x |\n')
    expect('README naming a folder that is not a room', 'README.md',
           '\n| `appliance/misc/` | x |\n')
    expect('SQL prepared outside the gate', 'appliance/api/api.c',
           'static void f(sqlite3 *d) { sqlite3_exec(d, 0, 0, 0, 0); }\n')
    expect('the raw connection taken outside the store', 'appliance/uplink/outbox.c',
           'static void *g(struct store *s) { return store_db(s); }\n')
    expect('SQL text in a C file', 'sync/hq/hq_apply.c',
           'static const char *q = "SELECT body FROM records WHERE id = ?1";\n')
    expect('a loop of three (policy -> segment -> egress -> policy)', 'sync/core/policy.c',
           '#include "segment.h"\n')
    if found('appliance/store/store.c', '/* #include "api.h" */\n// #include "api.h"\n'):
        print('MISSED: an include in a comment was taken for code', file=sys.stderr)
        fail = 1
    else:
        print('caught: nothing (an include in a comment is not code)')
    return fail


def main():
    root = os.environ.get('SOURCE_ROOT')
    if not root:
        print('check_layout: set SOURCE_ROOT to the source tree', file=sys.stderr)
        return 2
    mode = sys.argv[1] if len(sys.argv) > 1 else 'check'
    if mode == 'selftest':
        return selftest(root)
    if mode != 'check':
        print(f'check_layout: unknown mode {mode!r} (check or selftest)', file=sys.stderr)
        return 2
    problems = check(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f'{len(problems)} layout problem(s); the map is docs/ARCHITECTURE.md',
              file=sys.stderr)
        return 1
    print(f'layout: {len(sources(root))} files in {len(ALLOWED)} rooms, every include '
          'points down, no loops')
    return 0


if __name__ == '__main__':
    sys.exit(main())
