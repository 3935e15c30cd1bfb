#!/bin/bash
# outpost backup and outpost check as an administrator uses them: a backup
# taken while contacts are being added is a valid, checkable database; an
# existing file is only replaced with --force; a bad destination fails
# with a clear message and leaves no temporary file; check leaves the
# database byte for byte as it was, passes a clean one, and names the
# table of a broken foreign key or search index; files that are not
# Outpost databases are refused clearly; the documented restore works.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir
have_sqlite3=0
command -v sqlite3 >/dev/null && have_sqlite3=1

no_temp_files() {
    local left
    left=$(find "$T" -name '*.tmp-*' | head -5)
    [ -z "$left" ] || die "temporary files left behind: $left"
}

expect_exit 0 "$OUTPOST" init --region EU-DE
for i in 1 2 3; do
    expect_exit 0 "$OUTPOST" contact add --given-name "Name$i" --family-name "Łódź$i" \
        --email "person$i@example.org" --job-title "नमस्ते दुनिया $i"
done

# --help and usage errors, before anything touches a database.
expect_exit 0 "$OUTPOST" backup --help
expect_contains "$OUT" "usage: outpost backup DEST [--db PATH] [--force]"
expect_exit 0 "$OUTPOST" check --help
expect_contains "$OUT" "usage: outpost check [--db PATH]"
expect_exit 2 "$OUTPOST" backup
expect_contains "$ERR" "outpost backup: DEST is required"
expect_exit 2 "$OUTPOST" backup "$T/a.db" "$T/b.db"
expect_contains "$ERR" "outpost backup: unexpected argument '$T/b.db'"
expect_exit 2 "$OUTPOST" backup --frobnicate "$T/a.db"
expect_contains "$ERR" "unknown option '--frobnicate'"
expect_exit 2 "$OUTPOST" check extra
expect_contains "$ERR" "outpost check: unexpected argument 'extra'"
expect_exit 2 "$OUTPOST" check --db
expect_contains "$ERR" "outpost check: --db needs a value"
[ ! -e "$T/a.db" ] || die "a usage error wrote a file"

# A backup, with the database given by --db after DEST.
expect_exit 0 "$OUTPOST" backup "$T/b1.db" --db "$DB"
grep -Eq "^backup written to $T/b1.db \([0-9]+ pages, [0-9]+ bytes\) in [0-9.]+ s$" "$OUT" ||
    die "unexpected backup output: $(cat "$OUT")"
[ -s "$T/b1.db" ] || die "no backup file"
[ "$(stat -c %a "$T/b1.db")" = 600 ] || die "backup is not mode 600: $(stat -c %a "$T/b1.db")"
expect_exit 0 "$OUTPOST" check --db "$T/b1.db"
expect_contains "$OUT" "check: ok (integrity, foreign keys, search index, schema v"
expect_exit 0 "$OUTPOST" check
expect_contains "$OUT" "check: ok ("
if [ $have_sqlite3 = 1 ]; then
    [ "$(sqlite3 "$T/b1.db" 'SELECT count(*) FROM contacts')" = 3 ] || die "backup lacks contacts"
fi
no_temp_files

# Never overwritten without --force; replaced with it.
cp "$T/b1.db" "$T/b1.orig"
expect_exit 0 "$OUTPOST" contact add --given-name Late --family-name Comer --email late@example.org
expect_exit 4 "$OUTPOST" backup "$T/b1.db"
expect_contains "$ERR" "outpost backup: cannot write backup to $T/b1.db: file exists (use --force to replace it)"
cmp -s "$T/b1.db" "$T/b1.orig" || die "a refused backup changed the existing file"
expect_exit 0 "$OUTPOST" backup --force "$T/b1.db"
if [ $have_sqlite3 = 1 ]; then
    [ "$(sqlite3 "$T/b1.db" 'SELECT count(*) FROM contacts')" = 4 ] || die "--force did not replace"
fi
no_temp_files

# Bad destinations: clear message, nothing written, no temporary file.
expect_exit 1 "$OUTPOST" backup "$T/no/such/dir/b.db"
expect_contains "$ERR" "outpost backup: cannot write backup to $T/no/such/dir/b.db: directory $T/no/such/dir does not exist"
[ ! -e "$T/no" ] || die "a directory was created"
expect_exit 2 "$OUTPOST" backup --force "$T"
expect_contains "$ERR" "it is a directory"
expect_exit 2 "$OUTPOST" backup --force "$DB"
expect_contains "$ERR" "it is the database being backed up"
no_temp_files

# A backup taken while another process adds contacts is consistent.
(
    for i in $(seq 100 130); do
        "$OUTPOST" contact add --given-name "Busy$i" --email "busy$i@example.org" >/dev/null ||
            exit 1
    done
) &
writer=$!
for n in 1 2 3; do
    expect_exit 0 "$OUTPOST" backup "$T/busy$n.db"
    expect_exit 0 "$OUTPOST" check --db "$T/busy$n.db"
    expect_contains "$OUT" "check: ok ("
done
wait $writer || die "the concurrent contact adds failed"
no_temp_files

# check changes nothing, not even with outpostd stopped and no WAL around.
before=$(sha256sum <"$DB")
expect_exit 0 "$OUTPOST" check
[ "$(sha256sum <"$DB")" = "$before" ] || die "check changed the database file"
before=$(sha256sum <"$T/b1.db")
expect_exit 0 "$OUTPOST" check --db "$T/b1.db"
[ "$(sha256sum <"$T/b1.db")" = "$before" ] || die "check changed the backup file"

# Files that are not Outpost databases.
expect_exit 1 "$OUTPOST" check --db "$T/missing.db"
expect_contains "$ERR" "outpost check: cannot open database $T/missing.db"
printf 'name,email\nAna,ana@example.org\n' >"$T/contacts.csv"
expect_exit 1 "$OUTPOST" check --db "$T/contacts.csv"
expect_contains "$ERR" "outpost check: cannot open database $T/contacts.csv: file is not a database"
head -c 100000 /dev/urandom >"$T/noise.db"
expect_exit 1 "$OUTPOST" check --db "$T/noise.db"
expect_contains "$ERR" "outpost check: "
expect_not_contains "$ERR" "check: ok"
head -c 20000 "$T/b1.orig" >"$T/truncated.db"
code=0
"$OUTPOST" check --db "$T/truncated.db" >"$OUT" 2>"$ERR" || code=$?
[ $code = 1 ] || die "truncated database: exit $code, stderr: $(cat "$ERR")"
grep -q "check: ok" "$OUT" && die "a truncated database passed the check"
[ -s "$ERR" ] || [ -s "$OUT" ] || die "truncated database: no message at all"
if [ $have_sqlite3 = 1 ]; then
    sqlite3 "$T/other.db" "CREATE TABLE notes (body TEXT)"
    expect_exit 1 "$OUTPOST" check --db "$T/other.db"
    expect_contains "$ERR" "not an Outpost database"
    expect_exit 1 "$OUTPOST" backup --db "$T/other.db" "$T/other-backup.db"
    expect_contains "$ERR" "outpost backup: cannot back up $T/other.db: not an Outpost database"
    [ ! -e "$T/other-backup.db" ] || die "a foreign database was backed up"
fi

# Broken references and search indexes are found and named (on copies).
if [ $have_sqlite3 = 1 ]; then
    cp "$T/b1.db" "$T/fk.db"
    rowid=$(sqlite3 "$T/fk.db" "SELECT rowid FROM contacts WHERE email = 'person2@example.org'")
    sqlite3 "$T/fk.db" "PRAGMA foreign_keys = OFF; UPDATE contacts SET owner_id = 'ghost' WHERE rowid = $rowid"
    expect_exit 1 "$OUTPOST" check --db "$T/fk.db"
    expect_contains "$OUT" "foreign key: contacts rowid $rowid: owner_id refers to a missing users row"
    expect_contains "$OUT" "check: 1 problem found in $T/fk.db"

    cp "$T/b1.db" "$T/fts.db"
    sqlite3 "$T/fts.db" "DELETE FROM contacts_fts_data WHERE id = (SELECT max(id) FROM contacts_fts_data)"
    expect_exit 1 "$OUTPOST" check --db "$T/fts.db"
    expect_contains "$OUT" "search index contacts_fts: does not match the table contacts"
    expect_not_contains "$OUT" "check: ok"
fi

# The restore described in docs/BACKUP_AND_CHECK.md: copy the backup over
# the database file, remove the old -wal and -shm.
cp "$T/b1.db" "$DB"
rm -f "$DB-wal" "$DB-shm"
expect_exit 0 "$OUTPOST" check
expect_contains "$OUT" "check: ok ("
expect_exit 0 "$OUTPOST" contact list
expect_contains "$OUT" "Late"
expect_not_contains "$OUT" "Busy"

# A search index out of step with its table (a change written with the
# triggers off, as a careless manual repair would) is found by check and
# repaired by --rebuild-search-index; nothing else changes.
R="$T/reindex.db"
"$OUTPOST" init --db "$R" --region EU-DE >/dev/null || die "init reindex db"
"$OUTPOST" contact add --db "$R" --given-name Ana --family-name Reindex >/dev/null || die "add"
printf ".dbconfig enable_trigger off\nUPDATE contacts SET given_name = 'Zed';\n" |
    sqlite3 "$R" >/dev/null || die "sqlite3 update"
expect_exit 1 "$OUTPOST" check --db "$R"
expect_contains "$OUT" "search index contacts_fts: does not match the table contacts"
expect_exit 0 "$OUTPOST" search --db "$R" zed
expect_contains "$ERR" "no matches"
expect_exit 0 "$OUTPOST" check --db "$R" --rebuild-search-index
expect_contains "$OUT" "search index rebuilt"
expect_contains "$OUT" "check: ok"
expect_exit 0 "$OUTPOST" search --db "$R" zed
expect_contains "$OUT" "Zed Reindex"

pass
