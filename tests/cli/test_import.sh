#!/bin/bash
# outpost import: a CSV file goes in whole or not at all. Every kind of bad
# input is reported as FILE:LINE:COLUMN (NAME) with exit 3 (4 for a
# probable duplicate), and the database is left exactly as it was.
set -u
. "$TESTS_DIR/cli/lib.sh"
# These tests drive custom fields (tier, note) that no shipped profile
# declares; the fixture policy declares them (tests/cli/policy/EU-DE.yaml).
export OUTPOST_POLICY="$TESTS_DIR/cli/policy/EU-DE.yaml"
node_dir cd
init_node EU-DE

# What an import could change: rows, versions, the audit log. Only plain
# tables are read (the FTS tables need Outpost's own tokenizer).
state() {
    sqlite3 "$DB" "SELECT count(*) FROM contacts; SELECT count(*) FROM audit_log;
                   SELECT group_concat(id || ':' || version, ' ') FROM
                   (SELECT id, version FROM contacts ORDER BY id)" | tr '\n' ' '
}
# Runs a refused import and checks code, message and the unchanged state.
refused() {
    local code=$1 file=$2 message=$3
    local before
    before=$(state)
    expect_exit "$code" "$OUTPOST" import "$file"
    expect_contains "$ERR" "$message"
    expect_contains "$ERR" "nothing imported from $file; the database is unchanged"
    [ ! -s "$OUT" ] || die "a refused import printed to stdout: $(cat "$OUT")"
    [ "$(state)" = "$before" ] || die "refused import of $file changed the database"
    # the dry run finds the same first problem
    expect_exit "$code" "$OUTPOST" import --dry-run "$file"
    expect_contains "$ERR" "$message"
    [ "$(state)" = "$before" ] || die "dry run of $file changed the database"
}

# --- the command line ---------------------------------------------------
expect_exit 0 "$OUTPOST" import --help
expect_contains "$OUT" "usage: outpost import FILE.csv [--db PATH] [--dry-run]"
expect_contains "$OUT" "given_name"
expect_exit 2 "$OUTPOST" import
expect_contains "$ERR" "give the CSV file to import"
expect_exit 2 "$OUTPOST" import a.csv b.csv
expect_contains "$ERR" "unexpected argument 'b.csv'"
expect_exit 2 "$OUTPOST" import --frobnicate a.csv
expect_contains "$ERR" "unknown option '--frobnicate'"
expect_exit 2 "$OUTPOST" import a.csv --db
expect_exit 1 "$OUTPOST" import missing.csv
expect_contains "$ERR" "cannot open missing.csv: No such file or directory"
mkdir adir
expect_exit 1 "$OUTPOST" import adir
expect_contains "$ERR" "adir is a directory"
printf 'given_name\nA\n' > one.csv
expect_exit 1 "$OUTPOST" import one.csv --db "$T/absent.db"
[ ! -e "$T/absent.db" ] || die "import created a database"

# --- a good import ------------------------------------------------------
printf '\xef\xbb\xbfGiven_Name, family_name ,EMAIL,phone,locality,country,custom.tier,id\r\n' > good.csv
printf 'José,"Müller, Jr.",jose@example.org,030 1234567,Łódź,de,gold,01900000-0000-7000-8000-0000000000a1\r\n' >> good.csv
printf '"Анна","multi\r\nline ""quoted""",anna@example.org,,,,,\r\n' >> good.csv
printf '李,小龍,li@example.org,,北京,CN,,\r\n' >> good.csv
printf 'राजेश,शर्मा,,+91 11 2345 6789,,IN,silver,\r\n' >> good.csv
expect_exit 0 "$OUTPOST" import good.csv
expect_contains "$OUT" "imported 4 contacts from good.csv"
[ ! -s "$ERR" ] || die "progress or noise on a non-terminal stderr: $(cat "$ERR")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM contacts")" = 4 ] || die "expected 4 contacts"
[ "$(sqlite3 "$DB" "SELECT family_name || '|' || country || '|' || custom FROM contacts
                    WHERE id = '01900000-0000-7000-8000-0000000000a1'")" = 'Müller, Jr.|DE|{"tier":"gold"}' ] ||
    die "values or kept id wrong: $(sqlite3 "$DB" "SELECT * FROM contacts")"
[ "$(sqlite3 "$DB" "SELECT family_name FROM contacts WHERE email = 'anna@example.org'")" = "$(printf 'multi\r\nline "quoted"')" ] ||
    die "embedded line break or quotes damaged"

# Standard input works too.
printf 'given_name,email\nStdin,stdin@example.org\n' > stdin.csv
expect_exit 0 "$OUTPOST" import - < stdin.csv
expect_contains "$OUT" "imported 1 contacts from stdin"

# --- dry run --------------------------------------------------------------
printf 'given_name,email\nDry,dry@example.org\nRun,run@example.org\n' > dry.csv
before=$(state)
expect_exit 0 "$OUTPOST" import --dry-run dry.csv
expect_contains "$OUT" "dry run: 2 contacts would be imported, nothing changed"
[ "$(state)" = "$before" ] || die "a dry run changed the database"

# A dry run reports several problems, each with its position.
{
    printf 'given_name,email,birth_date\n'
    printf 'Ok,ok@example.org,\n'
    printf 'Bad,bad@,\n'
    printf 'Date,date@example.org,1990-02-30\n'
    printf 'Dup,JOSE@example.org,\n'
} > many.csv
expect_exit 3 "$OUTPOST" import --dry-run many.csv
expect_contains "$ERR" 'many.csv:3:2 (email): not an e-mail address: "bad@"'
expect_contains "$ERR" 'many.csv:4:3 (birth_date): not a date in the form YYYY-MM-DD: "1990-02-30"'
expect_contains "$ERR" "many.csv:5:2 (email): probable duplicate of contact 01900000-0000-7000-8000-0000000000a1"
expect_contains "$ERR" "dry run: 3 problems found, nothing changed"
[ "$(state)" = "$before" ] || die "a failed dry run changed the database"

# --- bad input: exit 3, position, nothing changed ------------------------
{
    printf 'given_name,family_name,email\n'
    for i in $(seq 1 15); do printf 'Person%s,Row%s,p%s@example.org\n' "$i" "$i" "$i"; done
    printf 'Bob,Builder,bob@\n'
} > contacts.csv
refused 3 contacts.csv 'contacts.csv:17:3 (email): not an e-mail address: "bob@"'

printf 'given_name,family_name\nAnn,Ok\nBen,"never closed\n\nmore\n' > unterminated.csv
refused 3 unterminated.csv "unterminated.csv:3:2 (family_name): unterminated quoted field"

printf 'given_name,family_name\nAnn,Ok\nBen,Bad"quote\n' > midquote.csv
refused 3 midquote.csv "midquote.csv:3:2 (family_name): quote inside an unquoted field"

printf 'given_name,family_name\nAnn,"Ok" x\n' > afterquote.csv
refused 3 afterquote.csv "afterquote.csv:2:2 (family_name): a space after the closing quote"

printf 'given_name,family_name\nAnn,Ok\nJos\xe9,Latin1\n' > latin1.csv
refused 3 latin1.csv "latin1.csv:3:1 (given_name): invalid UTF-8 (byte 0xE9 at byte 4 of the field)"

printf 'given_name,family_name\nAnn,Ok\nBen,B\0b\n' > nul.csv
refused 3 nul.csv "nul.csv:3:2 (family_name): NUL byte in field"

{ printf 'given_name,job_title\nAnn,'; head -c 65537 /dev/zero | tr '\0' x; printf '\n'; } > long.csv
refused 3 long.csv "long.csv:2:2 (job_title): field longer than 65536 bytes"

printf 'given_name,family_name\nAnn,Ok,extra\n' > wide.csv
refused 3 wide.csv "wide.csv:2:3: expected 2 fields as in the first row, found 3"

printf 'given_name,Emial\nAnn,ann@example.org\n' > unknown.csv
refused 3 unknown.csv 'unknown.csv:1:2: unknown column "Emial"; known columns: id, owner_id, restricted, custom, given_name, family_name, email'

printf 'email,given_name,Email\nx@example.org,X,y@example.org\n' > dupcol.csv
refused 3 dupcol.csv 'dupcol.csv:1:3 (email): duplicate column "email" (also column 1)'

printf 'given_name,country\nAnn,Germany\n' > country.csv
refused 3 country.csv 'country.csv:2:2 (country): not an ISO 3166-1 alpha-2 country code: "GERMANY"'

printf 'given_name,birth_date\nAnn,31.12.1990\n' > date.csv
refused 3 date.csv 'date.csv:2:2 (birth_date): not a date in the form YYYY-MM-DD: "31.12.1990"'

printf 'id,given_name\n12345,Ann\n' > badid.csv
refused 3 badid.csv "badid.csv:2:1 (id): not a UUIDv7"

printf 'job_title\nBoss\n' > noname.csv
refused 3 noname.csv "noname.csv:2: a contact needs at least a name, an e-mail or a phone"

: > empty.csv
refused 3 empty.csv "empty.csv:1: empty file; expected a header row"

# A bad row at the end of a large file: none of the good rows stay.
{
    printf 'given_name,family_name,email\n'
    for i in $(seq 1 3000); do printf 'G%s,F%s,bulk%s@example.org\n' "$i" "$i" "$i"; done
    printf 'Last,Row,last@\n'
} > bulk.csv
refused 3 bulk.csv 'bulk.csv:3002:3 (email): not an e-mail address: "last@"'

# --- duplicates: exit 4, naming the existing record and the line ---------
printf 'given_name,email\nNew,new@example.org\nJ,JOSE@example.org\n' > dupdb.csv
refused 4 dupdb.csv "dupdb.csv:3:2 (email): probable duplicate of contact 01900000-0000-7000-8000-0000000000a1 (same e-mail address)"
expect_contains "$ERR" "--skip-duplicate-check"

printf 'id,given_name,phone\n01900000-0000-7000-8000-0000000000b1,First,+49 89 7654321\n01900000-0000-7000-8000-0000000000b2,Second,089 7654321\n' > dupfile.csv
refused 4 dupfile.csv "dupfile.csv:3:3 (phone): probable duplicate of contact 01900000-0000-7000-8000-0000000000b1 (same phone number)"

printf 'id,given_name\n01900000-0000-7000-8000-0000000000a1,Someone\n' > dupid.csv
refused 4 dupid.csv "dupid.csv:2:1 (id): a contact with id 01900000-0000-7000-8000-0000000000a1 already exists"

before_count=$(sqlite3 "$DB" "SELECT count(*) FROM contacts")
expect_exit 0 "$OUTPOST" import --skip-duplicate-check dupdb.csv
expect_contains "$OUT" "imported 2 contacts from dupdb.csv"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM contacts")" = $((before_count + 2)) ] ||
    die "--skip-duplicate-check did not import"

# --- a database that cannot be written ------------------------------------
# Another writer holds the lock past the CLI's wait (OUTPOST_LOCK_WAIT, 2 s
# here; docs/CLI.md, "Waiting for the database"): the import gives up with a
# clear message and changes nothing.
before=$(state)
sqlite3 "$DB" "BEGIN IMMEDIATE;" ".shell sleep 5" &
holder=$!
sleep 0.5
OUTPOST_LOCK_WAIT=2 expect_exit 1 "$OUTPOST" import dry.csv
expect_contains "$ERR" "dry.csv: cannot start the import transaction"
expect_contains "$ERR" "locked"
wait "$holder"
[ "$(state)" = "$before" ] || die "an import blocked by a lock changed the database"

if [ "$(id -u)" = 0 ]; then
    echo "skipping the read-only database case: running as root, chmod does not stop writes" >&2
else
    before=$(state)
    chmod 444 "$DB"
    expect_exit 1 "$OUTPOST" import dry.csv
    expect_contains "$ERR" "readonly"
    chmod 644 "$DB"
    [ "$(state)" = "$before" ] || die "import into a read-only database changed it"
fi
exit 0
