#!/bin/bash
# packaging/completions: bash completion for outpost, outpostd and
# outpost-hq, run as bash runs it (COMP_WORDS, COMP_CWORD, the function
# `complete` registered) against the built programs: commands,
# subcommands, each command's options (after positional words too), the
# daemons' config keys as --KEY options, and the values of --kind and
# --log_level. The package installs them (tests/packaging/test_deb.sh).
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
SRC=$(cd "$TESTS_DIR/.." && pwd)
T=$(mktmp)
# The programs by the names the completions are for, first on PATH.
mkdir -p "$T/bin"
ln -s "$OUTPOST" "$T/bin/outpost"
ln -s "$OUTPOSTD" "$T/bin/outpostd"
ln -s "$OUTPOST_HQ" "$T/bin/outpost-hq"
export PATH="$T/bin:$PATH"
for f in outpost outpostd outpost-hq; do
    # shellcheck disable=SC1090
    . "$SRC/packaging/completions/$f" || die "cannot source packaging/completions/$f"
    complete -p "$f" >/dev/null 2>&1 || die "packaging/completions/$f registers no completion for $f"
done

# complete_line "WORDS..." : what completing the last word offers, one per
# line, sorted (an empty last word: end the line with a space).
complete_line() {
    local line=$1 fn
    read -r -a COMP_WORDS <<<"$line"
    [ "${line: -1}" = " " ] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line
    COMP_POINT=${#line}
    fn=$(complete -p "${COMP_WORDS[0]}" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
    COMPREPLY=()
    "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]:-}"
    printf '%s\n' "${COMPREPLY[@]}" | sort
}

# offers LINE WORD...: completing LINE offers each WORD.
offers() {
    local line=$1 got w
    shift
    got=$(complete_line "$line")
    for w in "$@"; do
        grep -qxF -- "$w" <<<"$got" || die "completing '$line' does not offer '$w'; it offers: $(echo $got)"
    done
}
# offers_not LINE WORD...
offers_not() {
    local line=$1 got w
    shift
    got=$(complete_line "$line")
    for w in "$@"; do
        ! grep -qxF -- "$w" <<<"$got" || die "completing '$line' offers '$w': $(echo $got)"
    done
}

# outpost: every command of --help, subcommands, options.
offers "outpost " init contact search import export backup restore check user token cert retention \
    subject consent egress-report status policy
offers "outpost con" contact consent
offers "outpost out" outreach
offers "outpost outreach " list show requeue send-test print calls call-result bounce
offers "outpost outreach list --" --state --limit --db --help
offers_not "outpost con" init
offers "outpost user " add passwd disable enable list
offers "outpost user add alice --" --role --display-name --password-stdin --db --help
offers "outpost search lodz --" --limit --json
offers "outpost --" --help --version
cd "$T" || die "cannot enter $T"
: >contacts.csv
offers "outpost import contac" contacts.csv
offers "outpost backup --db " bin

# outpostd: its flags and every config key as --KEY.
offers "outpostd --" --config --reload --version --help --print-config --describe-config \
    --listen --db --log_level --log_timestamps --sync_daily_bytes
offers "outpostd --log_level " err warning notice info debug
offers "outpostd --config contac" contacts.csv

# outpost-hq: commands, node's, mailbox's and analyst's subcommands, each command's
# options, serve's config keys, --kind's values.
offers "outpost-hq " serve node nodes records receipts set-aside mailbox reload
offers "outpost-hq --db hq.db node " add revoke
offers "outpost-hq mailbox " post
offers "outpost-hq " analyst aggregate aggregate-request
offers "outpost-hq analyst " add list revoke grant-sql
offers "outpost-hq --store host=/run/postgresql analyst " add list revoke grant-sql
offers "outpost-hq --" --store --db
offers "outpost-hq analyst list --" --json --help
offers "outpost-hq node add n1 --" --region --url --out --help
offers "outpost-hq records --" --node --entity --json --count
offers "outpost-hq serve --" --listen --spool_dir --max_uploads --log_level --help
offers "outpost-hq mailbox post n1 --kind " policy reference aggregate_request
offers_not "outpost-hq nodes --" --region
pass
