#!/usr/bin/env python3
"""A scheduler and two workers with declared GPUs: placement never shares a GPU, logs round
trip, cancel, time limit, impossible jobs refused, errors and exit codes of the CLI."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

c = Cluster(workers=[("pc1", 2), ("pc2", 2)])
try:
    out = os.path.join(c.dir, "gpu-use")
    os.makedirs(out)
    # 20 one-GPU jobs on 4 GPUs: each writes its GPU, node and start/end times. Each holds its
    # GPU until every submit is in (the go file), so the first four fill the cluster however
    # slowly the submits come (an ASan build on busy cores submits slower than a job runs).
    go = os.path.join(out, "go")
    script = (f'echo "$CUDA_VISIBLE_DEVICES $(date +%s.%N)" > {out}/$WSLQ_JOB_ID.start; '
              f'while [ ! -e {go} ]; do sleep 0.05; done; '
              f'sleep 0.3; date +%s.%N > {out}/$WSLQ_JOB_ID.end; echo done $WSLQ_JOB_ID')
    ids = [c.submit("--gpus", "1", "--name", f"g{i}", "--wrap", script) for i in range(20)]
    check(all(ids), "20 submits acknowledged")
    open(go, "w").close()
    for jid in ids:
        c.wait_state(jid, ("COMPLETED", "FAILED"), timeout=60)
    states = [c.state(j) for j in ids]
    check(states.count("COMPLETED") == 20, f"all 20 completed (states {set(states)})")
    spans = []
    for jid in ids:
        job = c.job(jid)
        alloc = job["allocs"][0]
        with open(f"{out}/{jid}.start") as f:
            cvd, t0 = f.read().split()
        with open(f"{out}/{jid}.end") as f:
            t1 = f.read().strip()
        check(cvd == ",".join(str(g) for g in alloc["gpus"]),
              f"job {jid} saw CUDA_VISIBLE_DEVICES={cvd}, its allocation {alloc['gpus']}")
        spans.append((alloc["node"], cvd, float(t0), float(t1), jid))
    overlaps = [(a[4], b[4]) for i, a in enumerate(spans) for b in spans[i + 1:]
                if a[0] == b[0] and a[1] == b[1] and a[2] < b[3] and b[2] < a[3]]
    check(not overlaps, f"no GPU was ever held by two running jobs at once {overlaps}")
    check(len({(s[0], s[1]) for s in spans}) == 4, "the jobs used all four GPUs")

    # Logs round trip, and every state change is in `show`.
    r = c.cli("logs", str(ids[0]))
    check(r.returncode == 0 and r.stdout == f"done {ids[0]}\n", f"logs round trip: {r.stdout!r}")
    ev = [e["state"] for e in c.show(ids[0])["events"]]
    check(ev[0] == "PENDING" and "STARTING" in ev and "RUNNING" in ev and ev[-1] == "COMPLETED",
          f"events tell the story: {ev}")

    # Follow a running job's log until it ends.
    jid = c.submit("--wrap", "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    r = c.cli("logs", "-f", str(jid), timeout=30)
    check(r.returncode == 0 and r.stdout == "line1\nline2\nline3\n", f"logs -f: {r.stdout!r}")

    # Exit codes and the failing rank are recorded.
    jid = c.submit("--", "sh", "-c", "exit 3")
    c.wait_state(jid, "FAILED")
    j = c.job(jid)
    check(j["state"] == "FAILED" and j.get("exit_code") == 3, f"exit 3 -> FAILED: {j.get('reason')}")

    # Cancel a running job: the whole process group goes.
    marker = os.path.join(c.dir, "cancel-marker")
    jid = c.submit("--wrap", f"sleep 60 & echo $! > {marker}; wait")
    c.wait_state(jid, "RUNNING")
    wait_for(lambda: os.path.exists(marker) and open(marker).read().strip(), 5, "marker")
    r = c.cli("cancel", str(jid))
    check(r.returncode == 0, f"cancel answered: {r.stdout.strip()} {r.stderr.strip()}")
    check(c.wait_state(jid, "CANCELLED", 15), "cancelled job ends CANCELLED")
    child = int(open(marker).read().strip())
    gone = wait_for(lambda: not os.path.exists(f"/proc/{child}") or
                    open(f"/proc/{child}/stat").read().split()[2] == "Z", 10, "child gone")
    check(gone, "the job's background child was killed with it")
    r = c.cli("cancel", str(jid))
    check(r.returncode == 1 and "already ended" in r.stderr, f"cancel twice: {r.stderr.strip()}")

    # Time limit: SIGTERM, grace, SIGKILL -> TIMEOUT.
    jid = c.submit("--time", "1s", "--wrap", "trap '' TERM; sleep 30")
    check(c.wait_state(jid, "TIMEOUT", 20), "a job past its time limit ends TIMEOUT")

    # A job no node could ever hold is refused with the reason.
    r = c.cli("submit", "--gpus", "4", "--", "true")
    check(r.returncode == 1 and "no node has 4 GPUs; the largest has 2" in r.stderr,
          f"impossible job refused: {r.stderr.strip()}")

    # Unknown ids, bad flags, unreachable scheduler.
    r = c.cli("show", "999999")
    check(r.returncode == 1 and r.stderr.strip() == "wslq: job 999999 not found",
          f"unknown job: {r.stderr.strip()}")
    r = c.cli("submit", "--gpus", "many", "--", "true")
    check(r.returncode == 2 and r.stderr.count("\n") == 1, f"bad flag: {r.stderr.strip()}")
    r = c.cli("queue", "--timeout", "1", env={"WSLQ_SCHEDULER": "tcp://127.0.0.1:1"})
    check(r.returncode == 1 and "cannot reach scheduler at tcp://127.0.0.1:1" in r.stderr,
          f"unreachable: {r.stderr.strip()}")

    # Nodes show their GPUs and CPUs.
    nodes = c.json("nodes")["nodes"]
    check(sorted(n["name"] for n in nodes) == ["pc1", "pc2"], "both nodes listed")
    check(all(len(n["gpus"]) == 2 for n in nodes), "two GPUs per node")

    # The worker's doctor checks reach the scheduler as node attributes.
    r = c.cli("doctor", "--node", "pc1")
    check(r.returncode == 0 and "net.iface" in r.stdout and "wsl.detect" in r.stdout,
          f"wslq doctor --node shows the node's checks: {r.stdout[:200]!r}")
    r = c.cli("doctor", "--node", "nosuch")
    check(r.returncode == 1 and "node nosuch not found" in r.stderr, "doctor of an unknown node")
    r = c.cli("nodes", "pc1")
    check("nccl_profile=default" in r.stdout, "the node's NCCL profile is shown")

    # The scheduler's log names each submitted job by its id from the first line on.
    with open(os.path.join(c.dir, "scheduler.log"), errors="replace") as f:
        slog = f.read()
    check(f"job={ids[0]} state=PENDING attempt=0 reason=\"submitted\"" in slog
          and "job=0 state=" not in slog, "each submit's log line names its job id")
finally:
    c.stop()
finish()
