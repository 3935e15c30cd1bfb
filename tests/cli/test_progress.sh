#!/bin/bash
# Progress on long work (docs/CLI.md, "Progress"): on a terminal, import,
# export, backup and retention show a line with the count, the rate and,
# where the total is known (backup pages, retention records), the
# percentage and the time left; the line is cleared at the end. When
# stderr is not a terminal (a pipe, a file, cron) nothing of it appears.
# The terminal is a pseudo-terminal from script(1).
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3 script
node_dir cd
mkdir -p "$T/p"
cat "$TESTS_DIR/cli/policy/EU-DE-head.yaml" - >"$T/p/EU-DE.yaml" <<'YAML'
retention:
  activity: {days: 365, basis: "test rule A-365"}
YAML
export OUTPOST_POLICY="$T/p/EU-DE.yaml"
init_node EU-DE

# on_tty FILE CMD...: runs CMD with stdin, stdout and stderr on a
# pseudo-terminal; what the terminal showed goes to FILE.
on_tty() {
    local file=$1
    shift
    local cmd
    printf -v cmd '%q ' "$@"
    script -qec "$cmd" /dev/null </dev/null >"$file" 2>&1 || die "on a terminal: $* failed: $(cat "$file")"
}

n=3000
{
    echo "given_name,family_name,email"
    for i in $(seq 1 $n); do echo "Ana$i,Nowak$i,ana$i@example.org"; done
} >"$T/people.csv"

# import: the count and the rate; nothing when stderr is a file.
on_tty "$T/import.tty" "$OUTPOST" import "$T/people.csv"
grep -qa "imported [0-9]* rows" "$T/import.tty" || die "no import progress on a terminal: $(cat -v "$T/import.tty")"
grep -qa $'\033\[K' "$T/import.tty" || die "the progress line is not cleared: $(cat -v "$T/import.tty")"
expect_exit 0 "$OUTPOST" contact list --limit 1 # the import went through
"$OUTPOST" export --out "$T/piped.csv" 2>"$T/export.err" | cat >/dev/null || die "export piped"
expect_not_contains "$T/export.err" "rows"
[ "$(wc -l <"$T/piped.csv")" -gt "$n" ] || die "the export is short: $(wc -l <"$T/piped.csv")"

# export on a terminal.
on_tty "$T/export.tty" "$OUTPOST" export --out "$T/all.csv"
grep -qa "exported [0-9]* rows" "$T/export.tty" || die "no export progress: $(cat -v "$T/export.tty")"

# backup: pages with the total, so a percentage.
on_tty "$T/backup.tty" "$OUTPOST" backup "$T/b.db"
grep -qaE "copied [0-9]+ of [0-9]+ pages \([0-9]+%\)" "$T/backup.tty" ||
    die "no backup progress with a total: $(cat -v "$T/backup.tty")"
"$OUTPOST" backup "$T/b2.db" 2>"$T/backup.err" >/dev/null || die "backup to a file"
expect_not_contains "$T/backup.err" "pages"

# retention: the total counted first, then the percentage.
cid=$("$OUTPOST" contact list --limit 1 --json | sed -n 's/.*"id": "\([0-9a-f-]*\)".*/\1/p' | head -n1)
[ -n "$cid" ] || die "no contact id"
sqlite3 "$DB" "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 1200)
INSERT INTO activities (id, version, created_hlc, updated_hlc, channel, direction, body,
                        occurred_at, contact_id)
SELECT printf('0190b5a0-0000-7000-8000-%012d', i), 1, 1, 1, 'call', 'outbound', 'old call',
       '2019-05-01T10:00:00Z', '$cid' FROM k;" || die "cannot set up activities"
on_tty "$T/retention.tty" "$OUTPOST" retention run --batch 100
grep -qaE "purged [0-9]+ of 1200 records \([0-9]+%\)" "$T/retention.tty" ||
    die "no retention progress with a total: $(cat -v "$T/retention.tty")"
grep -qa "purged 1200 records" "$T/retention.tty" || die "retention did not finish: $(cat -v "$T/retention.tty")"
pass
