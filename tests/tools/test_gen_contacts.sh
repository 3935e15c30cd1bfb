#!/bin/bash
# gen_contacts: the demo and benchmark data. Same seed, same bytes; a
# longer file starts with the rows of a shorter one; e-mails and phones are
# unique; and the file imports whole into a fresh node without tripping the
# duplicate detector, with folded search finding its diacritics.
set -u
. "$TESTS_DIR/cli/lib.sh"
T=$(mktmp)
cd "$T" || die "cannot enter $T"
GEN=$GEN_CONTACTS
HEADER='given_name,family_name,email,phone,street,locality,region,postal_code,country,language,job_title,birth_date'

# --- the command line ---------------------------------------------------
expect_exit 0 "$GEN" --help
expect_contains "$OUT" "usage: gen_contacts --count N"
expect_exit 2 "$GEN"
expect_contains "$ERR" "--count is required"
expect_exit 2 "$GEN" --count 12x
expect_contains "$ERR" "--count: expected 0 to 1000000, got '12x'"
expect_exit 2 "$GEN" --count 1000001
expect_exit 2 "$GEN" --count -1
expect_exit 2 "$GEN" --count 5 --seed banana
expect_contains "$ERR" "--seed: expected an unsigned number"
expect_exit 2 "$GEN" --count 5 stray
expect_contains "$ERR" "unexpected argument 'stray'"
expect_exit 1 "$GEN" --count 5 --out "$T/no/such/dir/x.csv"
expect_contains "$ERR" "cannot create"
# the tables come from a data file; a bad one is refused with FILE:LINE
expect_exit 1 "$GEN" --count 5 --data "$T/none.tsv"
expect_contains "$ERR" "cannot open $T/none.tsv"
printf 'locale\tDE\tde-DE\tspace\t0\t{street} {house}\t10\ngiven\tAnna\tanna\tx\n' >"$T/bad.tsv"
expect_exit 1 "$GEN" --count 5 --data "$T/bad.tsv"
expect_contains "$ERR" "$T/bad.tsv:2: sex is f or m"
printf 'locale\tDE\tde-DE\tspace\t0\t{street} {house}\t10\ngiven\tAnna\tanna\tf\n' >"$T/one.tsv"
expect_exit 1 "$GEN" --count 5 --data "$T/one.tsv"
expect_contains "$ERR" "locale DE needs given names of both sexes"

# --- shape and determinism ------------------------------------------------
expect_exit 0 "$GEN" --count 0
[ "$(cat "$OUT")" = "$(printf '%s\r' "$HEADER")" ] || die "--count 0 should print the header only"

"$GEN" --count 2000 --seed 42 --out a.csv || die "gen --out failed"
[ ! -e a.csv.tmp ] || die "a.csv.tmp left behind"
[ "$(head -n 1 a.csv)" = "$(printf '%s\r' "$HEADER")" ] || die "bad header: $(head -n 1 a.csv)"
[ "$(wc -l <a.csv)" = 2001 ] || die "expected 2001 lines, got $(wc -l <a.csv)"
"$GEN" --count 2000 --seed 42 >b.csv || die "gen to stdout failed"
cmp -s a.csv b.csv || die "the same seed gave different files"
"$GEN" --count 2000 --seed 43 >c.csv || die "gen seed 43 failed"
! cmp -s a.csv c.csv || die "different seeds gave the same file"
"$GEN" --count 50 --seed 42 >short.csv || die "gen 50 failed"
[ "$(head -n 51 a.csv)" = "$(cat short.csv)" ] || die "a longer run does not start with the shorter one"

# Every locale and script shows up, and the CSV-awkward values too.
for text in Łódź José Müller Москва 北京 मुंबई Fúnmiláyọ̀ Nairobi Jakarta Bogotá Rosario \
    'São Paulo' '+49 ' '+55 ' '+86 ' '+1 (' ',"Avenida' '""C""' '-DE,' ',pt-BR,' ',zh-CN,'; do
    expect_contains a.csv "$text"
done
"$GEN" --count 20000 --seed 9 >big.csv || die "gen 20000 failed"
expect_contains big.csv '"Head of ""Special Projects"""'

# Uniqueness over a larger file: the first four columns never need quotes.
dups=$(tail -n +2 big.csv | cut -d, -f3 | sort | uniq -d | head -n 3)
[ -z "$dups" ] || die "duplicate e-mails: $dups"
dups=$(tail -n +2 big.csv | cut -d, -f4 | tr -d ' ()-' | sort | uniq -d | head -n 3)
[ -z "$dups" ] || die "duplicate phones: $dups"

# --- it imports whole, and search folds -------------------------------------
export OUTPOST_DB="$T/node.db"
"$OUTPOST" init --region EU-DE >/dev/null || die "init failed"
expect_exit 0 "$OUTPOST" import a.csv
expect_contains "$OUT" "imported 2000 contacts from a.csv"
[ "$(sqlite3 "$OUTPOST_DB" 'SELECT count(*) FROM contacts')" = 2000 ] ||
    die "expected 2000 contacts in the database"
expect_exit 0 "$OUTPOST" search --json --limit 200 lodz
expect_contains "$OUT" '"locality": "Łódź"'
expect_exit 0 "$OUTPOST" search --limit 200 jose
expect_contains "$OUT" "José "
pass
