#!/bin/sh
# Runs shellcheck on every shell script of deploy/, scripts/ and these tests; 77 (skipped) without
# it.
# usage: shellcheck_test.sh SOURCE_DIR
set -eu
src=$1
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "shellcheck_test: shellcheck not installed, skipping"
    exit 77
fi
files=$(find "$src/deploy" "$src/scripts" "$src/node/tests" -name '*.sh' -type f 2>/dev/null | sort)
if [ -z "$files" ]; then
    echo "shellcheck_test: no scripts found under $src/deploy" >&2
    exit 1
fi
# shellcheck disable=SC2086 # one path per word is intended; paths have no spaces
shellcheck -x $files
echo "shellcheck_test: $(echo "$files" | wc -l) scripts clean"
