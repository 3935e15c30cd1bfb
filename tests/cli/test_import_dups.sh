#!/bin/bash
# outpost import with duplicates: --on-duplicate skip|update|new, the
# --report file of every row, the summary, and --dry-run showing the same
# while the database stays exactly as it was.
set -u
. "$TESTS_DIR/cli/lib.sh"

# A node holding three contacts; A is the one most rows below match.
fresh() {
    node_dir cd
    init_node EU-DE
    cat >base.csv <<'CSV'
given_name,family_name,email,phone,street,locality,job_title
José,Müller,jose@example.org,030 1234567,Hauptstr. 1,Berlin,Clerk
Anna,Nowak,anna@example.org,,,Hamburg,
Wei,Li,li.wei@example.cn,,,Berlin,
CSV
    "$OUTPOST" import base.csv >/dev/null || die "base import failed"
    A=$(sqlite3 "$DB" "SELECT id FROM contacts WHERE email = 'jose@example.org'")
    B=$(sqlite3 "$DB" "SELECT id FROM contacts WHERE email = 'anna@example.org'")
    # line 2: A by phone (another spelling); 3: B by e-mail; 4: the same
    # name as A in A's town but nothing else in common (a warning, not a
    # duplicate); 5: new; 6: A by a similar name (typo) at the same street
    cat >dups.csv <<'CSV'
given_name,family_name,email,phone,street,locality,job_title
Jose,Mueller,,+49 (0)30 123 4567,,,Buyer
Anna,Nowak,ANNA@example.org,,,,Manager
jose,muller,other@example.org,,,Berlin,
Maria,Silva,maria@example.org,,,Porto,
Jose,Muler,,,Hauptstr 1,Berlin,
CSV
}
contacts() { sqlite3 "$DB" "SELECT count(*) FROM contacts"; }
field() { sqlite3 "$DB" "SELECT $2 FROM contacts WHERE id = '$1'"; }

# --- the command line ---------------------------------------------------
fresh
expect_exit 2 "$OUTPOST" import dups.csv --on-duplicate merge
expect_contains "$ERR" "--on-duplicate: expected skip, update or new, not 'merge'"
expect_exit 2 "$OUTPOST" import dups.csv --on-duplicate skip --skip-duplicate-check
expect_contains "$ERR" "do not go together"

# --- without a choice: the first duplicate refuses the file -------------
before=$(db_checksum "$DB")
expect_exit 4 "$OUTPOST" import dups.csv --report refused.csv
expect_contains "$ERR" "dups.csv:2:"
expect_contains "$ERR" "probable duplicate of contact $A (same phone number)"
expect_contains "$ERR" "nothing imported from dups.csv; the database is unchanged"
[ "$(db_checksum "$DB")" = "$before" ] || die "a refused import changed the database"
expect_contains refused.csv "line,action,existing_id,reason"
expect_contains refused.csv "2,error,$A,"
ls refused.csv.tmp-* >/dev/null 2>&1 && die "a temporary report was left behind"

# --- dry run: the same report, nothing changed ---------------------------
expect_exit 0 "$OUTPOST" import dups.csv --dry-run --on-duplicate update --report dry.csv
expect_contains "$OUT" "dry run: 2 contacts would be imported, nothing changed"
expect_contains "$OUT" "dry run: 3 probable duplicates: 0 skipped, 3 updated, 0 imported as new"
expect_contains "$OUT" "1 imported with a warning (same name and locality)"
[ "$(db_checksum "$DB")" = "$before" ] || die "a dry run changed the database"
expect_contains dry.csv "2,update,$A,same phone number"
expect_contains dry.csv "3,update,$B,same e-mail address"
expect_contains dry.csv "4,create,$A,contact $A has the same name in the same locality"
expect_contains dry.csv "5,create,,"
expect_contains dry.csv "6,update,$A,similar name at the same street"
[ "$(wc -l <dry.csv)" = 6 ] || die "the report should have a header and 5 rows: $(cat dry.csv)"

# --- skip ----------------------------------------------------------------
expect_exit 0 "$OUTPOST" import dups.csv --on-duplicate skip --report skip.csv
expect_contains "$OUT" "imported 2 contacts from dups.csv"
expect_contains "$OUT" "3 probable duplicates: 3 skipped, 0 updated, 0 imported as new"
[ "$(contacts)" = 5 ] || die "skip should leave 3 + 2 contacts, not $(contacts)"
expect_contains skip.csv "2,skip,$A,same phone number"
expect_contains skip.csv "6,skip,$A,similar name at the same street"
[ "$(field "$A" job_title)" = Clerk ] || die "skip changed the existing contact"

# --- update: non-empty cells, with the version check ---------------------
fresh
expect_exit 0 "$OUTPOST" import dups.csv --on-duplicate update --report upd.csv
expect_contains "$OUT" "3 probable duplicates: 0 skipped, 3 updated"
[ "$(contacts)" = 5 ] || die "update should leave 3 + 2 contacts, not $(contacts)"
[ "$(field "$A" job_title)" = Buyer ] || die "A was not updated from line 2"
[ "$(field "$A" email)" = jose@example.org ] || die "an empty cell cleared A's e-mail"
[ "$(field "$A" phone)" = "+49 (0)30 123 4567" ] || die "A did not take line 2's phone"
[ "$(field "$A" version)" = 3 ] || die "A should be at version 3 (lines 2 and 6)"
[ "$(field "$B" job_title)" = Manager ] || die "B was not updated from line 3"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM audit_log WHERE action = 'update'")" = 3 ] ||
    die "each update should have its audit row"
# a row carrying a version (an export's) updates only at that version
cat >stale.csv <<CSV
email,job_title,version
jose@example.org,Director,2
anna@example.org,Director,2
CSV
expect_exit 0 "$OUTPOST" import stale.csv --on-duplicate update --report stale-report.csv
expect_contains "$OUT" "2 probable duplicates: 0 skipped, 1 updated, 0 imported as new, 1 not updated (version conflict)"
expect_contains stale-report.csv "2,conflict,$A,"
expect_contains stale-report.csv "is at version 3, not 2"
expect_contains stale-report.csv "3,update,$B,same e-mail address"
[ "$(field "$A" job_title)" = Buyer ] || die "a stale row changed A"
[ "$(field "$B" job_title)" = Director ] || die "B at version 2 was not updated"
cat >badver.csv <<CSV
email,job_title,version
jose@example.org,Director,two
CSV
before=$(db_checksum "$DB")
expect_exit 3 "$OUTPOST" import badver.csv --on-duplicate update
expect_contains "$ERR" "badver.csv:2:3 (version): expected a version number of 1 or more"
[ "$(db_checksum "$DB")" = "$before" ] || die "a bad version cell changed the database"

# --- new -----------------------------------------------------------------
fresh
expect_exit 0 "$OUTPOST" import dups.csv --on-duplicate new --report new.csv
expect_contains "$OUT" "imported 5 contacts from dups.csv"
expect_contains "$OUT" "3 probable duplicates: 0 skipped, 0 updated, 3 imported as new"
[ "$(contacts)" = 8 ] || die "new should leave 3 + 5 contacts, not $(contacts)"
expect_contains new.csv "3,new,$B,same e-mail address"

# --- a phone that is no valid number: imported as typed, the reason said -
fresh
printf 'given_name,phone\nEva,030 12\n' >badphone.csv
expect_exit 0 "$OUTPOST" import badphone.csv --report badphone-report.csv
expect_contains badphone-report.csv \
    "2,create,,\"phone: no such number in its country's numbering plan (read as dialled in DE); kept as typed, not used to find duplicates\""
[ "$(sqlite3 "$DB" "SELECT phone || '|' || ifnull(phone_e164, 'none') FROM contacts
                    WHERE given_name = 'Eva'")" = "030 12|none" ] ||
    die "the number should be kept as typed, with no key"

# --- a report that cannot be written: nothing imported -------------------
fresh
before=$(db_checksum "$DB")
expect_exit 1 "$OUTPOST" import dups.csv --on-duplicate skip --report /nonexistent/dir/r.csv
expect_contains "$ERR" "cannot create the report /nonexistent/dir/r.csv"
[ "$(db_checksum "$DB")" = "$before" ] || die "an unwritable report let the import through"
pass
