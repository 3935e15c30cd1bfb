#!/bin/bash
# Source checks run as tests (suite "lint"), so that `meson test` and CI
# refuse what review would: `lint.sh banned` fails on the unsafe string
# functions STYLE.md bans; `lint.sh format` fails on C files that differ
# from .clang-format, and skips (77) where clang-format is not installed.
# SOURCE_ROOT is the source tree.
set -u
cd "${SOURCE_ROOT:?}" || exit 1
dirs=(appliance sync schema tests)

case ${1:-} in
banned)
    # sprintf, not snprintf; gets, not fgets: the name must start a word.
    hits=$(grep -rnE --include='*.c' --include='*.h' \
        '(^|[^A-Za-z0-9_])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|gets)[[:space:]]*\(' \
        "${dirs[@]}")
    if [ -n "$hits" ]; then
        echo "banned functions (use snprintf, memcpy with a checked length, strtok_r," >&2
        echo "strtol with checks, fgets):" >&2
        echo "$hits" >&2
        exit 1
    fi
    ;;
format)
    if ! command -v clang-format >/dev/null; then
        echo "clang-format is not installed; formatting not checked" >&2
        exit 77
    fi
    mapfile -t files < <(find "${dirs[@]}" -name '*.[ch]' | sort)
    bad=()
    for f in "${files[@]}"; do
        clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if [ ${#bad[@]} -gt 0 ]; then
        echo "$(clang-format --version): ${#bad[@]} of ${#files[@]} files need formatting;" >&2
        echo "fix with: clang-format -i ${bad[*]}" >&2
        clang-format --dry-run "${bad[0]}" 2>&1 | head -n 20 >&2
        exit 1
    fi
    ;;
*)
    echo "usage: lint.sh banned|format" >&2
    exit 2
    ;;
esac
