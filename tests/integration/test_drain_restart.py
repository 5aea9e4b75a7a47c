#!/usr/bin/env python3
"""wslq drain --now across a scheduler restart (SIGKILL while the drain is under way).

A job on one of two workers traps SIGTERM and takes a few seconds to leave (a checkpoint);
the kill grace is long, so the drain's requeue is still in progress when the scheduler is
killed. After the restart the job must still go back to the queue as the drain asked: attempt
1, no retry used (it has none), run again on the other node and complete; its first attempt
left of its own accord (the trap ran to its end), and when its worker re-registered still
running it the kill was sent again. The node stays drained with its reason.
Before the fix the restarted scheduler forgot why the job was ending and called the exit 0
on SIGTERM COMPLETED.
A cancel under way when both the scheduler and the job's worker are killed -9: the restarted
worker adopts the job still stopping, the restarted scheduler sends its kill again, the job
gets one SIGTERM only and ends CANCELLED."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

SCRIPT = ("echo attempt $WSLQ_ATTEMPT on $WSLQ_NODE; "
          "if [ \"$WSLQ_ATTEMPT\" != 0 ]; then exit 0; fi; "
          "trap 'echo got TERM; sleep 12; echo leaving; exit 0' TERM; sleep 300 & wait")


def node_of(c, jid):
    j = c.job(jid)
    allocs = j.get("allocs") if j else None
    return allocs[0]["node"] if allocs else None


def node(c, name):
    r = c.json("nodes")
    for n in (r or {}).get("nodes", []):
        if n["name"] == name:
            return n
    return None


c = Cluster(workers=[("pc1", 1), ("pc2", 1)], sched_args=["--kill-grace", "60s"])
try:
    d = c.submit("--gpus", "1", "--", "sh", "-c", SCRIPT)
    c.wait_state(d, "RUNNING")
    wait_for(lambda: "attempt 0" in c.cli("logs", str(d)).stdout, 20, "the job's first line")
    x = node_of(c, d)
    y = "pc2" if x == "pc1" else "pc1"
    r = c.cli("drain", x, "--reason", "repair", "--now")
    check(r.returncode == 0 and r.stdout.strip() == f"Node {x} drained (repair): 1 job requeued",
          f"drain --now: {r.stdout.strip()} {r.stderr.strip()}")
    check(bool(wait_for(lambda: "got TERM" in c.cli("logs", str(d)).stdout, 20,
                        "the job to get SIGTERM")), "the job got SIGTERM")
    check(c.state(d) == "RUNNING" and c.job(d)["attempt"] == 0,
          f"still stopping when the scheduler dies: {c.state(d)}")

    c.kill_scheduler()  # SIGKILL while the job is in its trap
    c.start_scheduler()
    check(bool(wait_for(lambda: c.job(d) is not None and c.job(d)["attempt"] == 1
                        and c.state(d) in ("RUNNING", "COMPLETED"), 90,
                        "the job to run again after the restart")),
          f"requeued after the restart: {c.state(d)} attempt {(c.job(d) or {}).get('attempt')}")
    c.wait_state(d, "COMPLETED", timeout=60)
    j = c.job(d)
    check(j["state"] == "COMPLETED" and j["attempt"] == 1,
          f"completed in its second attempt: {j['state']} {j['attempt']}")
    check(node_of(c, d) == y, f"the second attempt ran on the other node: {node_of(c, d)}")
    check(j.get("uncounted_requeues") == 1, f"the requeue used no retry: {j}")
    reasons = " | ".join(e.get("reason", "") for e in c.show(d)["events"])
    check(f"node {x} drained by {c.user}: repair" in reasons and "retries not used" in reasons
          and "every rank exited 0" in reasons,
          f"its events say why: {reasons}")
    check(reasons.count("retries not used") == 1, f"requeued once: {reasons}")
    log = c.cli("logs", str(d)).stdout
    check("leaving" in log and f"attempt 1 on {y}" in log,
          f"the first attempt left of its own accord, the second ran on {y}:\n{log}")
    # A worker that re-registers still running the job gets its kill again (the one before the
    # restart may never have left the dying scheduler); one whose job ended meanwhile re-sends
    # its end. Which of the two happened depends on timing: the log says.
    slog = open(os.path.join(c.dir, "scheduler.log"), errors="replace").read()
    since = slog[slog.rfind("node drained name="):]
    adopted = any(f"node registered name={x} " in ln and "running=1" in ln
                  for ln in since.splitlines())
    if adopted:
        check(f"kill sent again to a re-registered node job={d} node={x} cause=drained" in since,
              "the restarted scheduler sent the drain's kill again to the worker still running it")
    else:
        print("note: the job had ended before its worker re-registered", flush=True)
    n = node(c, x)
    check(n is not None and n["drained"] is True and n["drain_reason"] == "repair"
          and n["state"] == "drained",
          f"the node stays drained with its reason: {n and (n['state'], n.get('drain_reason'))}")

    # ---- a cancel under way when both the scheduler and the job's worker are killed ----
    # The job logs each SIGTERM and leaves of its own accord later. The restarted worker
    # adopts it still stopping; the restarted scheduler sends its kill again; it gets no second
    # SIGTERM, and it ends CANCELLED.
    t_log = os.path.join(c.dir, "c-term.log")
    k = c.submit("--gpus", "1", "--wrap", f"trap 'echo term >> {t_log}' TERM; i=0; "
                 "while [ $i -lt 250 ]; do sleep 0.1; i=$((i+1)); done")
    c.wait_state(k, "RUNNING")
    check(node_of(c, k) == y, f"the job runs on {y}: {node_of(c, k)}")
    c.cli("cancel", str(k))
    check(bool(wait_for(lambda: os.path.exists(t_log), 20, "the job's SIGTERM")),
          "the cancelled job got SIGTERM")
    slog_at = os.path.getsize(os.path.join(c.dir, "scheduler.log"))
    c.kill_scheduler()
    c.workers[y].send_signal(signal.SIGKILL)
    c.workers[y].wait(5)
    c.start_scheduler()
    c.start_worker(y, 1)
    c.wait_state(k, ("CANCELLED", "COMPLETED", "FAILED"), timeout=60)
    check(c.state(k) == "CANCELLED", f"the cancel finished after both restarts: {c.state(k)}")
    with open(os.path.join(c.dir, "scheduler.log"), errors="replace") as f:
        f.seek(slog_at)
        since = f.read()
    if any(f"node registered name={y} " in ln and "running=1" in ln for ln in since.splitlines()):
        check(f"kill sent again to a re-registered node job={k} node={y} cause=cancelled"
              in since, "the restarted scheduler sent the cancel's kill again")
    else:
        print("note: the job had ended before its worker re-registered", flush=True)
    with open(t_log) as f:
        terms = f.read().split()
    check(terms == ["term"], f"one SIGTERM across both restarts: {terms}")
finally:
    c.stop()
finish()
