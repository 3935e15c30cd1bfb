#!/bin/bash
# Duplicates within one import file and against the records already in
# (docs/IMPORT_EXPORT.md, "Duplicates within the file"). On a node with no
# live contact the import looks the file's own keys up in memory; on any
# other node it asks the database. Both must find the same duplicates:
# the same 19,000-row file gives the same report either way, row 19,000
# duplicating row 5 is caught, a row duplicating a record already in is
# caught, and an update inside the file sends the lookups back to the
# database so that the changed keys are found.
set -u
. "$TESTS_DIR/cli/lib.sh"
[ -x "${GEN_CONTACTS:-}" ] || die "GEN_CONTACTS is not set to the gen_contacts binary"

node_dir cd
work=$T

# 19,000 generated rows with fixed ids (so that two imports report the
# same existing ids), then duplicates of earlier rows planted:
#   row 19,000: row 5's e-mail in capitals
#   row 15,000: the phone of an early row with other separators
#   row 12,000: the name of an early Latin-script row with a typo, at its
#               street and locality
# plant.txt gets the rows whose duplicates were planted.
"$GEN_CONTACTS" --count 19000 --seed 7 --out gen.csv || die "gen_contacts failed"
python3 - gen.csv planted.csv plant.txt <<'PY' || die "cannot plant the duplicates"
import csv, re, sys
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
head = rows[0]
for n, r in enumerate(rows[1:], 1):
    r.insert(0, "01900000-0000-7000-8000-%012x" % n)
rows[0] = ["id"] + head
G, F, E, P, S, L = 1, 2, 3, 4, 5, 6
def first(ok, start):
    return next(n for n in range(start, 100) if ok(rows[n]))
p = first(lambda r: r[P].startswith("+") and " " in r[P], 9)
t = first(lambda r: re.fullmatch("[A-Za-z]{5,7}", r[F]) and r[S] and r[L], 11)
rows[19000][E] = rows[5][E].upper()
rows[15000][P] = rows[p][P].replace(" ", "-")
rows[15000][E] = "planted15000@example.invalid"
name = rows[t][F]
rows[12000][G] = rows[t][G]
rows[12000][F] = name[:-1] + ("e" if name[-1] != "e" else "a")
rows[12000][E] = "planted12000@example.invalid"
rows[12000][P] = ""
rows[12000][S] = rows[t][S]
rows[12000][L] = rows[t][L]
w = csv.writer(open(sys.argv[2], "w", newline="", encoding="utf-8"), lineterminator="\n")
w.writerows(rows)
open(sys.argv[3], "w").write("%d %d %s\n" % (p, t, rows[5][E]))
PY
read -r prow trow r5_email <plant.txt
id_of() { printf '01900000-0000-7000-8000-%012x' "$1"; }
# generated records hold no line breaks, so row N is on line N + 1
[ "$(wc -l <planted.csv)" = 19001 ] || die "expected one line per row"

# --- an empty node: the keys of the file in memory ----------------------
export OUTPOST_DB="$work/empty.db"
init_node EU-DE
expect_exit 0 "$OUTPOST" import planted.csv --on-duplicate skip --report "$work/empty.csv"
expect_contains "$work/empty.csv" "19001,skip,$(id_of 5),same e-mail address"
expect_contains "$work/empty.csv" "15001,skip,$(id_of "$prow"),same phone number"
expect_contains "$work/empty.csv" "12001,skip,$(id_of "$trow"),similar name at the same street"
skipped=$(grep -c ',skip,' "$work/empty.csv")
imported=$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts")
[ $((skipped + imported)) = 19000 ] ||
    die "19,000 rows should be $imported imported + $skipped skipped"
[ "$skipped" -ge 3 ] || die "the planted duplicates were not all skipped"

# --- a node already holding one unrelated contact: lookups in SQLite ----
export OUTPOST_DB="$work/held.db"
init_node EU-DE
printf 'given_name,family_name,email,phone,street,locality\n%s\n' \
    'Zygmunt,Quellwasser,zq@example.invalid,+49 30 9999999,Nirgendweg 9,Nirgendwo' >one.csv
"$OUTPOST" import one.csv >/dev/null || die "cannot import the one contact"
expect_exit 0 "$OUTPOST" import planted.csv --on-duplicate skip --report "$work/held.csv"
cmp -s "$work/empty.csv" "$work/held.csv" ||
    die "the two ways of looking up found different duplicates: $(diff "$work/empty.csv" "$work/held.csv" | head -20)"

# --- a row duplicating a record already in ------------------------------
export OUTPOST_DB="$work/empty.db"
printf 'given_name,family_name,email\nNew,Person,%s\n' "$r5_email" >again.csv
before=$(db_checksum "$OUTPOST_DB")
expect_exit 4 "$OUTPOST" import again.csv
expect_contains "$ERR" "again.csv:2:3 (email): probable duplicate of contact $(id_of 5) (same e-mail address)"
[ "$(db_checksum "$OUTPOST_DB")" = "$before" ] || die "a refused import changed the database"

# --- an update inside the file changes keys the later rows must meet ----
export OUTPOST_DB="$work/upd.db"
init_node EU-DE
cat >upd.csv <<'CSV'
given_name,family_name,email,phone
Olga,Petrova,olga@example.invalid,
Olga,Petrova,olga@example.invalid,+49 30 7654321
Ivan,Sidorov,ivan@example.invalid,030 7654321
CSV
expect_exit 0 "$OUTPOST" import upd.csv --on-duplicate update --report "$work/upd-report.csv"
olga=$(sqlite3 "$OUTPOST_DB" "SELECT id FROM contacts WHERE given_name = 'Ivan'") # line 4 renamed her
expect_contains "$work/upd-report.csv" "3,update,$olga,same e-mail address"
expect_contains "$work/upd-report.csv" "4,update,$olga,same phone number"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts")" = 1 ] ||
    die "line 4 should have updated Olga (the phone line 3 gave her), not made a contact"
pass
