# shellcheck shell=bash
# The shared table of hostile custom values (hostile_custom.tsv beside this
# file) as the input-path tests of the CLI (tests/cli/test_input_paths.sh)
# and of the API (tests/integration/test_outpostd_input_paths.sh) read it:
# one reader, so both run the same cases. Sourced after lib.sh; each case
# runs under its region's shipped profile, so the test policies are unset.
#
#   hostile_cases      print the cases, one a line, tab-separated: region,
#                      name, key, json, text, json_msg, text_msg; comments
#                      dropped, a text_msg of "=" replaced by json_msg
#   hostile_regions    print the regions of the cases, each once, in order
#
# A row with fields missing stops the test when this file is sourced (in
# the test's own shell: hostile_cases runs in a subshell, where die could
# not end the test).
HOSTILE_TABLE="$TESTS_DIR/cli/policy/hostile_custom.tsv"
[ -r "$HOSTILE_TABLE" ] || die "cannot read $HOSTILE_TABLE"
unset OUTPOST_POLICY OUTPOST_REGIONS_DIR
while IFS=$'\t' read -r region name _ _ _ _ text_msg; do
    case "$region" in '' | '#'*) continue ;; esac
    [ -n "$text_msg" ] || die "$HOSTILE_TABLE: $region $name: missing fields"
done <"$HOSTILE_TABLE"
unset region name text_msg

hostile_cases() {
    local region name key json text json_msg text_msg
    while IFS=$'\t' read -r region name key json text json_msg text_msg; do
        case "$region" in '' | '#'*) continue ;; esac
        [ "$text_msg" = "=" ] && text_msg=$json_msg
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$region" "$name" "$key" "$json" "$text" \
            "$json_msg" "$text_msg"
    done <"$HOSTILE_TABLE"
}

hostile_regions() {
    hostile_cases | cut -f1 | awk '!seen[$0]++'
}
