#!/bin/bash
# outpost search folds case and diacritics and matches word prefixes;
# in scripts without spaces, any two or more characters; options after the
# text are options, and "--" makes the rest text.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir
init_node EU-FR
add() { "$OUTPOST" contact add "$@" >/dev/null || die "add $*"; }
add --given-name José --family-name Müller --locality Łódź
add --given-name Zoë --family-name Ørsted --locality Ærøskøbing
add --given-name Jürgen --family-name Großmann --locality Köln
add --given-name Иван --family-name Петров --locality Москва

expect_exit 0 "$OUTPOST" search jose
expect_contains "$OUT" "José Müller"
expect_exit 0 "$OUTPOST" search lodz
expect_contains "$OUT" "José Müller"
expect_exit 0 "$OUTPOST" search muller
expect_contains "$OUT" "José Müller"
expect_exit 0 "$OUTPOST" search ORSTED aero
expect_contains "$OUT" "Zoë Ørsted"
expect_exit 0 "$OUTPOST" search grossm
expect_contains "$OUT" "Jürgen Großmann"
expect_exit 0 "$OUTPOST" search иван
expect_contains "$OUT" "Иван Петров"
expect_exit 0 "$OUTPOST" search paris
[ ! -s "$OUT" ] || die "unexpected hits for paris"
expect_contains "$ERR" "no matches"
expect_exit 0 "$OUTPOST" search --json jose
expect_contains "$OUT" '"locality": "Łódź"'
# Options after the text: "--limit 2" is the limit, not words to find.
add --given-name Jan --family-name Lodzki --locality Łódź
add --given-name Ola --family-name Lodzka --locality Łódź
expect_exit 0 "$OUTPOST" search lodz
[ "$(wc -l <"$OUT")" = 3 ] || die "three hits for lodz expected: $(cat "$OUT")"
expect_exit 0 "$OUTPOST" search lodz --limit 2
[ "$(wc -l <"$OUT")" = 2 ] || die "--limit 2 after the text was not the limit: $(cat "$OUT")"
expect_exit 0 "$OUTPOST" search lodz --json
expect_contains "$OUT" '"locality": "Łódź"'
expect_exit 2 "$OUTPOST" search lodz --limit
expect_contains "$ERR" "outpost search: --limit needs a value"
expect_exit 2 "$OUTPOST" search lodz --limt 2
expect_contains "$ERR" "outpost search: unknown option '--limt'"
# After "--" every word is text (nothing matches "--limit").
expect_exit 0 "$OUTPOST" search -- --limit
expect_contains "$ERR" "no matches for '--limit'"
expect_exit 2 "$OUTPOST" search
expect_contains "$ERR" "what to search for is missing"
expect_exit 2 "$OUTPOST" search --limit 999 jose
expect_exit 3 "$OUTPOST" search "$(head -c 300 /dev/zero | tr '\0' a)"
expect_contains "$ERR" "longer than 256 bytes"

# Scripts written without spaces: any two characters match, anywhere.
node_dir
init_node CN
add --given-name 小明 --family-name 王 --locality 上海市海淀区
add --given-name 太郎 --family-name 山田 --locality 東京都新宿区
add --given-name สมชาย --family-name ใจดี --locality กรุงเทพมหานคร
expect_exit 0 "$OUTPOST" search 海淀
expect_contains "$OUT" "小明 王"
expect_exit 0 "$OUTPOST" search 新宿
expect_contains "$OUT" "太郎 山田"
expect_exit 0 "$OUTPOST" search เทพมหา
expect_contains "$OUT" "สมชาย ใจดี"
expect_exit 0 "$OUTPOST" search 海南
[ ! -s "$OUT" ] || die "海南 is not in 上海市海淀区: $(cat "$OUT")"
pass
