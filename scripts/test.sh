#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, check formatting, build with
# -Werror and run every test; then build with ASan+UBSan and run the tests again (the long
# accuracy runs only once). Tests that cannot run here (no GPU, no root for network
# namespaces) exit 77 and show as skipped, with the reason in their output.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

echo "== format check"
git ls-files '*.c' '*.h' '*.cu' '*.cuh' | xargs -r clang-format --dry-run --Werror

echo "== build (gcc, -Werror)"
BUILD_DIR=build ./scripts/build.sh
echo "== tests"
(cd build && ctest --output-on-failure -j2 --timeout 900)

echo "== build (ASan + UBSan)"
BUILD_DIR=build-asan ./scripts/build.sh -DWSLQ_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
echo "== tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2 --timeout 900 -LE 'slow|gpu|browser')
