#!/usr/bin/env bash
# The main job: a one-machine wslq cluster (scheduler + one worker, state in .state/demo)
# running a demo data-parallel training job (Fashion-MNIST MLP, 2 ranks) start to finish.
#   ./scripts/demo.sh          build, run the demo, stop the cluster
#   ./scripts/demo.sh --keep   leave the cluster running afterwards (prints how to use it)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1

./scripts/deps.sh
BUILD_DIR=build ./scripts/build.sh

bin=$PWD/build/bin
state=$PWD/.state/demo
port=${WSLQ_DEMO_PORT:-7420}
export WSLQ_SCHEDULER=tcp://127.0.0.1:$port
mkdir -p "$state"

pids=()
cleanup() {
    if [ "$keep" = 0 ] && [ "${#pids[@]}" -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
}
trap cleanup EXIT

"$bin/wslq-scheduler" --listen "tcp://127.0.0.1:$port" --state-dir "$state/scheduler" \
    >"$state/scheduler.log" 2>&1 &
pids+=($!)
# No GPU here: declare two so the demo shows GPU placement; real nodes discover theirs.
"$bin/wslq-worker" --scheduler "$WSLQ_SCHEDULER" --name demo-pc --state-dir "$state/worker" \
    --gpus 2 >"$state/worker.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 50); do
    "$bin/wslq" nodes --json 2>/dev/null | grep -q demo-pc && break
    sleep 0.2
done
echo "== wslq nodes"
"$bin/wslq" nodes

echo "== wslq submit: 2-rank data-parallel MLP on Fashion-MNIST, one rank per (declared) GPU"
id=$("$bin/wslq" submit --parsable --name demo-train --gpus 2 --time 20m -- \
    "$bin/wslq-train" --model mlp --epochs 2 --threads 1)
echo "Submitted job $id"
"$bin/wslq" queue
echo "== wslq logs -f $id"
"$bin/wslq" logs -f "$id"
echo "== wslq show $id"
"$bin/wslq" show "$id"
state_now=$("$bin/wslq" show "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["state"])')
echo "demo job $id ended $state_now"

if [ "$keep" = 1 ]; then
    echo "cluster left running (pids ${pids[*]}); use it with:"
    echo "  export WSLQ_SCHEDULER=$WSLQ_SCHEDULER PATH=$bin:\$PATH"
fi
[ "$state_now" = COMPLETED ]
