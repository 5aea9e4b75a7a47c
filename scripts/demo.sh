#!/usr/bin/env bash
# The main job: a one-machine wslq cluster (scheduler + one worker, state in .state/demo)
# running a demo data-parallel training job (Fashion-MNIST MLP, 2 ranks) start to finish.
#   ./scripts/demo.sh          build, run the demo, stop the cluster
#   ./scripts/demo.sh --keep   leave the cluster running afterwards (prints how to use it)
#   ./scripts/demo.sh --installed   use the programs deploy/wsl/install.sh installed in
#                              /usr/local/bin (WSLQ_DEMO_PREFIX/bin): no dependencies, no build
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
installed=0
for a in "$@"; do
    case $a in
    --keep) keep=1 ;;
    --installed) installed=1 ;;
    *)
        echo "usage: scripts/demo.sh [--keep] [--installed]" >&2
        exit 2
        ;;
    esac
done

if [ "$installed" = 1 ]; then
    bin=${WSLQ_DEMO_PREFIX:-/usr/local}/bin
    for b in wslq wslq-scheduler wslq-worker wslq-rank wslq-train; do
        [ -x "$bin/$b" ] || {
            echo "demo.sh: $bin/$b is not installed (deploy/wsl/install.sh, both roles)" >&2
            exit 1
        }
    done
else
    ./scripts/deps.sh
    BUILD_DIR=build ./scripts/build.sh
    bin=$PWD/build/bin
fi
state=$PWD/.state/demo
wstate=$state/worker
# No job runs as root. Run as root, the demo works as an installed PC does: the worker is
# root and switches the job to the service account wslq (made here if missing, as
# deploy/wsl/install.sh makes it), so the programs and the worker's state directory go where
# that account can reach them (a checkout under /root is closed to it).
if [ "$(id -u)" = 0 ]; then
    run=/var/lib/wslq-demo
    install -d -m 755 "$run"
    if [ "$installed" = 0 ]; then
        install -d -m 755 "$run/bin"
        for b in wslq wslq-scheduler wslq-worker wslq-rank wslq-train; do
            install -m 755 "$bin/$b" "$run/bin/$b"
        done
        bin=$run/bin
    fi
    wstate=$run/worker
    if ! getent passwd wslq >/dev/null; then
        install -d -m 755 /var/lib/wslq
        useradd --system --user-group --create-home --home-dir /var/lib/wslq/home \
            --shell /usr/sbin/nologin wslq
        echo "created the service account wslq: wslq runs jobs as it, never as root"
    fi
fi
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

# Keys from an earlier demo belong to its scheduler: a new scheduler state means new ones.
if [ ! -e "$state/scheduler/server.key" ]; then
    rm -f "$state/credentials" "$wstate/credentials"
fi
"$bin/wslq-scheduler" --listen "tcp://127.0.0.1:$port" --state-dir "$state/scheduler" \
    >"$state/scheduler.log" 2>&1 &
pids+=($!)

# Enrolment, as in a lab: one-time codes over the scheduler's local admin socket, then
# `wslq login` for you and `wslq-worker --join` for the PC (done once; kept in .state/demo).
admin_sock=$state/scheduler/admin.sock
export WSLQ_CREDENTIALS=$state/credentials
for _ in $(seq 1 50); do [ -S "$admin_sock" ] && break; sleep 0.1; done
if [ ! -s "$WSLQ_CREDENTIALS" ]; then
    code=$("$bin/wslq" admin user add "$(id -un)" --admin --admin-socket "$admin_sock" |
        awk '/wslq login/ {print $3}')
    "$bin/wslq" login "$code"
fi
if [ ! -s "$wstate/credentials" ]; then
    code=$("$bin/wslq" admin node invite demo-pc --admin-socket "$admin_sock" |
        awk '/wslq-worker --join/ {print $NF}')
    "$bin/wslq-worker" --join "$code" --state-dir "$wstate"
fi

# No GPU here: declare two so the demo shows GPU placement; real nodes discover theirs.
"$bin/wslq-worker" --scheduler "$WSLQ_SCHEDULER" --state-dir "$wstate" \
    --gpus 2 >"$state/worker.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 50); do
    "$bin/wslq" nodes --json 2>/dev/null | grep -q demo-pc && break
    sleep 0.2
done
echo "== wslq nodes"
"$bin/wslq" nodes

echo "== wslq submit: 2-rank data-parallel MLP on Fashion-MNIST, one rank per (declared) GPU"
id=$("$bin/wslq" submit --parsable --name demo-train --gpus 2 --time 20m --chdir /tmp -- \
    "$bin/wslq-train" --model mlp --epochs 2 --threads 1)
echo "Submitted job $id"
"$bin/wslq" queue
echo "== wslq logs -f $id"
"$bin/wslq" logs -f "$id"
echo "== wslq show $id"
"$bin/wslq" show "$id"
# The job's state is the first "state" of show's JSON ({"job": {"id", "state", ...}, ...}).
state_now=$("$bin/wslq" show "$id" --json | sed -n 's/^[[:space:]]*"state":[[:space:]]*"\([A-Z_]*\)".*/\1/p' | head -n 1)
echo "demo job $id ended $state_now"

if [ "$keep" = 1 ]; then
    echo "cluster left running (pids ${pids[*]}); use it with:"
    echo "  export WSLQ_SCHEDULER=$WSLQ_SCHEDULER WSLQ_CREDENTIALS=$WSLQ_CREDENTIALS PATH=$bin:\$PATH"
fi
[ "$state_now" = COMPLETED ]
