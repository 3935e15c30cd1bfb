#!/usr/bin/env python3
"""Embed a room's named SQL queries into C (see sync/toolkit/sql.h).

usage: embed_queries.py SET_queries.c SET_queries.h DEPFILE SQLDIR

Every SQLDIR/*.sql file is in the set, in name order; DEPFILE tells the
build which files (and the folder, for a file added to it) to watch. The
set's name (the room's) comes from the output's name: store_queries.c
makes the set `store`.

Each FILE.sql holds queries, each headed by a line `-- name: NAME`; the
query is the text up to the next such line or the end of the file, without
its comments and trailing white space. A query may be written once for
several tables:

    -- name: get_{table}
    -- each table: contacts organizations deals
    SELECT body FROM {table} WHERE id = ?1;

makes get_contacts, get_organizations and get_deals, in that order, so
code may index them from the first (their enum values are consecutive).
The generated header holds `enum SET_query_id { SET_Q_<FILE>_<NAME>, ...,
SET_Q_COUNT }` and `extern const struct sql_queries SET_queries;`.
Names must be lower case [a-z0-9_], unique in the set, and each query one
statement, not empty; anything else stops the build naming the file and
line.
"""
import os
import re
import sys

NAME_RE = re.compile(r'^--\s*name:\s*(\S+)\s*$')
EACH_RE = re.compile(r'^--\s*each\s+([a-z_]+):\s*(.+?)\s*$')


def fail(where, msg):
    sys.exit(f'{where}: {msg}')


def c_string(text):
    lines = text.split('\n')
    out = []
    for i, line in enumerate(lines):
        esc = line.replace('\\', '\\\\').replace('"', '\\"')
        out.append('    "' + esc + ('\\n' if i < len(lines) - 1 else '') + '"')
    return '\n'.join(out)


def strip_sql(lines):
    """Drops comment lines and blank lines at either end; keeps the rest."""
    body = [l.rstrip() for l in lines if not l.lstrip().startswith('--')]
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    return '\n'.join(body)


def parse(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    if not re.fullmatch(r'[a-z][a-z0-9_]*', stem):
        fail(path, 'a query file name must be lower case [a-z0-9_].sql')
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    out = []
    cur = None  # [name, line, each, body]
    for n, line in enumerate(lines, start=1):
        m = NAME_RE.match(line)
        if m:
            if cur:
                out.append(cur)
            cur = [m.group(1), n, None, []]
            continue
        e = EACH_RE.match(line)
        if e and cur and not cur[3]:
            cur[2] = (e.group(1), e.group(2).split())
            continue
        if cur is None:
            if line.strip() and not line.lstrip().startswith('--'):
                fail(f'{path}:{n}', 'SQL before the first "-- name:" line')
            continue
        cur[3].append(line)
    if cur:
        out.append(cur)
    queries = []
    for name, n, each, body in out:
        where = f'{path}:{n}'
        text = strip_sql(body)
        if not text:
            fail(where, f'query {name} is empty')
        if ';' in text.rstrip().rstrip(';'):
            fail(where, f'query {name} holds more than one statement')
        if each:
            var, values = each
            if '{' + var + '}' not in name:
                fail(where, f'query {name} is for each {var} but its name lacks {{{var}}}')
            for v in values:
                queries.append((where, stem + '_' + name.replace('{' + var + '}', v),
                                text.replace('{' + var + '}', v)))
        else:
            if '{' in name:
                fail(where, f'query {name} has a {{placeholder}} but no "-- each" line')
            queries.append((where, stem + '_' + name, text))
    for where, name, _ in queries:
        if not re.fullmatch(r'[a-z][a-z0-9_]*', name):
            fail(where, f'query name {name} must be lower case [a-z0-9_]')
    return queries


def main():
    if len(sys.argv) != 5:
        sys.exit('usage: embed_queries.py SET_queries.c SET_queries.h DEPFILE SQLDIR')
    out_c, out_h, depfile, sqldir = sys.argv[1:5]
    inputs = sorted(os.path.join(sqldir, f) for f in os.listdir(sqldir) if f.endswith('.sql'))
    if not inputs:
        sys.exit(f'{sqldir}: no .sql files')
    m = re.fullmatch(r'([a-z][a-z0-9_]*)_queries\.c', os.path.basename(out_c))
    if not m or os.path.basename(out_h) != m.group(1) + '_queries.h':
        sys.exit(f'{out_c}, {out_h}: the outputs must be SET_queries.c and SET_queries.h')
    qset = m.group(1)
    queries, seen = [], {}
    for path in inputs:
        for where, name, text in parse(path):
            if name in seen:
                fail(where, f'query {name} is also at {seen[name]}')
            seen[name] = where
            queries.append((name, text))
    with open(depfile, 'w', encoding='utf-8') as f:
        deps = [sqldir] + inputs
        f.write(out_c + ': ' + ' '.join(d.replace(' ', '\\ ') for d in deps) + '\n')
    up = qset.upper()
    guard = f'OUTPOST_{up}_QUERIES_H'
    with open(out_h, 'w', encoding='utf-8') as f:
        f.write(f'/* Generated by sync/toolkit/embed_queries.py from the {qset} room\'s .sql\n'
                ' * files; do not edit. */\n')
        f.write(f'#ifndef {guard}\n#define {guard}\n\n#include "sql.h"\n\n')
        f.write(f'enum {qset}_query_id {{\n')
        for name, _ in queries:
            f.write(f'    {up}_Q_{name.upper()},\n')
        f.write(f'    {up}_Q_COUNT\n}};\n\n')
        f.write(f'extern const struct sql_queries {qset}_queries;\n\n#endif\n')
    with open(out_c, 'w', encoding='utf-8') as f:
        f.write('/* Generated by sync/toolkit/embed_queries.py; do not edit. */\n')
        f.write(f'#include "{os.path.basename(out_h)}"\n\n')
        f.write(f'static const char *const names[] = {{\n')
        for name, _ in queries:
            f.write(f'    "{name}",\n')
        f.write('    NULL\n};\n\n')
        f.write('static const char *const text[] = {\n')
        for name, text in queries:
            f.write(f'    /* {name} */\n{c_string(text)},\n')
        f.write('    NULL\n};\n\n')
        f.write(f'const struct sql_queries {qset}_queries = {{"{qset}", {len(queries)}, names, '
                'text};\n')


if __name__ == '__main__':
    main()
