#!/bin/bash
# Runs a command against a throwaway PostgreSQL cluster (docs/HQ.md,
# "Testing on PostgreSQL"):
#
#     pg_cluster.sh COMMAND [ARGS...]
#
# initdb in a fresh temporary directory, owned by an unprivileged user
# when run as root (PostgreSQL refuses to run as root): the `postgres`
# user of Debian's package, else `nobody`. The server listens on a Unix
# socket in that directory only (listen_addresses is empty), so parallel
# runs never meet on a TCP port; its port number is picked at random and
# only names the socket. The superuser `postgres` logs in by trust over
# that socket, every other role by SCRAM password (the analysts' test
# checks that). Exported to COMMAND:
#   OUTPOST_TEST_PG   a conninfo of the empty database outpost_test
#   OUTPOST_TEST_PG_ADMIN  the same, without dbname (to create more)
#   PGHOST PGPORT PGUSER   for psql
# The server is stopped (by its pid file) and the directory removed when
# COMMAND ends, whatever its end; COMMAND's exit status is returned. Exits
# 77 (skip) with the reason when PostgreSQL 15 is not installed.
set -u

PGBIN=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
        PGBIN=$d
        break
    fi
done
if [ -z "$PGBIN" ]; then
    echo "SKIP: PostgreSQL server binaries (initdb, pg_ctl) are not installed;" \
        "install postgresql (packaging/build-deps.txt)" >&2
    exit 77
fi
if ! command -v psql >/dev/null; then
    echo "SKIP: psql is not installed; install postgresql-client" >&2
    exit 77
fi

as_user=()
owner=""
if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
    as_user=(runuser -u "$owner" --)
fi

dir=$(mktemp -d /tmp/outpost-pg.XXXXXX)
chmod 755 "$dir"
[ -n "$owner" ] && chown "$owner" "$dir"
data="$dir/data"
port=$((20000 + RANDOM % 20000))

cleanup() {
    if [ -f "$data/postmaster.pid" ]; then
        "${as_user[@]}" "$PGBIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
# a timeout's SIGTERM (or ^C) ends the run through the EXIT trap too, so
# no server is left behind (pg_ctl starts it in a session of its own)
trap 'exit 143' TERM
trap 'exit 130' INT

pwfile="$dir/pw"
echo postgres >"$pwfile"
[ -n "$owner" ] && chown "$owner" "$pwfile"
if ! "${as_user[@]}" "$PGBIN/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=reject -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1; then
    echo "pg_cluster.sh: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
fi
# the superuser by trust over the socket; everyone else by password
printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$data/pg_hba.conf"
if ! "${as_user[@]}" "$PGBIN/pg_ctl" -D "$data" -w -t 30 -l "$dir/server.log" \
    -o "-c listen_addresses= -k $dir -p $port -c fsync=on -c log_min_messages=warning" \
    start >/dev/null 2>&1; then
    echo "pg_cluster.sh: the server did not start:" >&2
    cat "$dir/server.log" >&2
    exit 1
fi

export PGHOST=$dir PGPORT=$port PGUSER=postgres
unset PGDATABASE PGPASSWORD PGSERVICE
export OUTPOST_TEST_PG_ADMIN="host=$dir port=$port user=postgres"
export OUTPOST_TEST_PG="$OUTPOST_TEST_PG_ADMIN dbname=outpost_test"
psql -X -q -d postgres -c 'CREATE DATABASE outpost_test' >/dev/null || exit 1

"$@"
