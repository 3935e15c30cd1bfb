#!/bin/bash
# outpost restore BACKUP (docs/BACKUP_AND_CHECK.md, "Restoring"): a backup
# that fails the check, is not Outpost's or is newer is refused and nothing
# changes; a database some process holds open is not replaced; a good
# backup replaces the database, whose old content is kept whole beside it;
# no temporary file is left behind.
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3
node_dir
init_node EU-DE
"$OUTPOST" contact add --given-name Ana --family-name Nowak >/dev/null || die "add Ana"
"$OUTPOST" backup "$T/b1.db" >/dev/null || die "backup"
"$OUTPOST" contact add --given-name Ben --family-name Okafor >/dev/null || die "add Ben"
before=$(db_checksum "$DB")
unchanged() {
    [ "$(db_checksum "$DB")" = "$before" ] || die "the database changed after: $1"
    ls "$T" | grep -q 'restoring\|replaced' && die "files left after: $1: $(ls "$T")"
    return 0
}

# Usage.
expect_exit 2 "$OUTPOST" restore
expect_contains "$ERR" "BACKUP is required"
expect_exit 2 "$OUTPOST" restore "$T/b1.db" extra
expect_exit 2 "$OUTPOST" restore "$DB"
expect_contains "$ERR" "BACKUP is the database itself"
expect_exit 0 "$OUTPOST" restore --help
expect_contains "$OUT" "usage: outpost restore BACKUP"
unchanged "usage errors"

# Backups that must not be restored.
expect_exit 1 "$OUTPOST" restore "$T/missing.db"
expect_contains "$ERR" "missing.db: No such file or directory; nothing changed"
unchanged "a missing backup"
head -c 3000 "$T/b1.db" >"$T/cut.db"
expect_exit 1 "$OUTPOST" restore "$T/cut.db"
expect_contains "$ERR" "nothing changed"
unchanged "a truncated backup"
# A copy whose search indexes no longer match its table (written with the
# triggers off): `outpost check` finds both the full-text and the name
# index out of step, so restore refuses it.
cp "$T/b1.db" "$T/damaged.db"
printf ".dbconfig enable_trigger off\nUPDATE contacts SET given_name = 'Zed';\n" |
    sqlite3 "$T/damaged.db" >/dev/null || die "sqlite3 update"
"$OUTPOST" check --db "$T/damaged.db" >/dev/null 2>&1 && die "the damaged copy passes the check: the test proves nothing"
expect_exit 1 "$OUTPOST" restore "$T/damaged.db"
expect_contains "$ERR" "search index contacts_fts: does not match the table contacts"
expect_contains "$ERR" "search index search_names: 2 keys no live name gives, 2 missing"
expect_contains "$ERR" "fails the check (2 problems, above); nothing changed"
unchanged "a damaged backup"
sqlite3 "$T/foreign.db" "CREATE TABLE t (x); INSERT INTO t VALUES (1)"
expect_exit 1 "$OUTPOST" restore "$T/foreign.db"
expect_contains "$ERR" "not an Outpost database; nothing changed"
unchanged "a foreign database"
cp "$T/b1.db" "$T/newer.db"
sqlite3 "$T/newer.db" "PRAGMA user_version = 999"
expect_exit 1 "$OUTPOST" restore "$T/newer.db"
expect_contains "$ERR" "newer than this build of Outpost supports"
expect_contains "$ERR" "install a newer Outpost; nothing changed"
unchanged "a backup from a newer Outpost"

# A process holds the database open (as outpostd would): refused.
sleep 60 7<"$DB" &
holder=$!
track "$holder"
sleep 0.2
expect_exit 1 "$OUTPOST" restore "$T/b1.db"
expect_contains "$ERR" "process $holder (sleep) has $DB open: stop it first"
kill "$holder"
wait "$holder" 2>/dev/null
unchanged "a database held open"

# The restore.
expect_exit 0 "$OUTPOST" restore "$T/b1.db"
expect_contains "$OUT" "restored $T/b1.db to $DB"
aside=$(sed -n 's/^the replaced database is //p' "$OUT")
[ -n "$aside" ] && [ -f "$aside" ] || die "no replaced database named: $(cat "$OUT")"
expect_exit 0 "$OUTPOST" contact list
expect_contains "$OUT" "Ana"
expect_not_contains "$OUT" "Ben"
expect_exit 0 "$OUTPOST" check
# The old database is whole: Ben is in it, and it checks clean.
expect_exit 0 "$OUTPOST" contact list --db "$aside"
expect_contains "$OUT" "Ben"
expect_exit 0 "$OUTPOST" check --db "$aside"
[ "$(db_checksum "$aside")" = "$before" ] || die "the replaced database is not the old one"
[ ! -e "$DB.restoring" ] || die "the temporary copy was left behind"
[ "$(stat -c %a "$DB")" = 600 ] || die "the restored database is mode $(stat -c %a "$DB"), want 600"
# The node works on the restored copy.
"$OUTPOST" contact add --given-name Cleo --family-name Diaz >/dev/null || die "add after restore"

# Restoring where no database is yet: put in place, nothing set aside.
rm -f "$T/fresh.db"
expect_exit 0 "$OUTPOST" restore --db "$T/fresh.db" "$T/b1.db"
expect_not_contains "$OUT" "replaced database"
expect_exit 0 "$OUTPOST" contact list --db "$T/fresh.db"
expect_contains "$OUT" "Ana"
pass
