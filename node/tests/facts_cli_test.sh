#!/bin/sh
# wslq-node-facts end to end: exit codes and JSON on fixture roots.
# usage: facts_cli_test.sh PROBE FAKE_LIB FIXTURES
set -eu
facts=$1 fake=$2 fx=$3
export WSLQ_NVML_LIB="$fake" WSLQ_CUDA_LIB="$fake" WSLQ_NCCL_LIB="$fake"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

fail() {
    echo "facts_cli_test: $*" >&2
    cat "$out" >&2
    exit 1
}

"$facts" --root "$fx/wsl-mirrored" >"$out" || fail "wsl-mirrored: exit $?"
grep -q '^PASS  wsl.network ' "$out" || fail "wsl-mirrored: no PASS wsl.network"
grep -q '^gpu 1 .*cuda=0 ' "$out" || fail "wsl-mirrored: GPU 1 not mapped to CUDA 0"

rc=0
"$facts" --root "$fx/wsl-linux-driver" >"$out" || rc=$?
[ "$rc" -eq 1 ] || fail "wsl-linux-driver: exit $rc, want 1"
grep -q '^FAIL  gpu.shadow ' "$out" || fail "wsl-linux-driver: no FAIL gpu.shadow"

"$facts" --root "$fx/wsl-nat" --json >"$out" || fail "wsl-nat --json: exit $?"
grep -q '"net_mode":[[:space:]]*"nat"' "$out" || fail "wsl-nat: net_mode not nat"
grep -q '"exit_code":[[:space:]]*0' "$out" || fail "wsl-nat: exit_code not 0"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["nccl_profile"]=="no-shm-no-p2p"' "$out" ||
        fail "wsl-nat: JSON does not parse or wrong profile"
fi

rc=0
"$facts" --root /nonexistent >"$out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "bad root: exit $rc, want 2"
rc=0
"$facts" --bogus >"$out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "bad option: exit $rc, want 2"
echo "facts_cli_test: ok"
