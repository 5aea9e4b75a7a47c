#!/usr/bin/env python3
"""Preemption with the real programs: one worker, one GPU.

* A --preemptible job (priority 0) holds the only GPU. A job of priority 10 that cannot start
  otherwise preempts it: the preemptible job gets SIGTERM (its trap writes a checkpoint
  line), is requeued PENDING with attempt 1 (no retry used: it had none), the event is in
  `wslq show` (history and `Preemptible:` line), and the high-priority job runs.
* That job is not preemptible: a job of priority 20 waits behind it and never preempts it.
* When both end, the preempted job starts again (attempt 1) after them and completes.
* A job of an equal priority never preempts: a priority-0 job waits while the restarted
  preemptible one runs.
Gate files, never bare sleeps, decide when each job ends."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402


def lines(path):
    try:
        with open(path) as f:
            return f.read().split("\n")
    except FileNotFoundError:
        return []


def events(c, jid):
    s = c.show(jid)
    return s["events"] if s else []


def job_script(log, gate):
    """A job that logs its start and its SIGTERM (its checkpoint) and runs until the gate."""
    return (f"trap 'echo term $WSLQ_ATTEMPT >> {log}; exit 0' TERM; "
            f"echo start $WSLQ_ATTEMPT >> {log}; i=0; "
            f"while [ ! -e {gate} ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done")


c = Cluster(workers=[("pc1", 1)], sched_args=["--preempt-grace", "5s"])
try:
    d = c.dir
    a_log, a_gate = os.path.join(d, "a.log"), os.path.join(d, "a.gate")
    b_gate = os.path.join(d, "b.gate")

    # bad input: --preemptible takes no value
    r = c.cli("submit", "--preemptible=yes", "--", "true")
    check(r.returncode != 0 and r.stderr.strip().count("\n") == 0,
          f"--preemptible=yes refused in one line: {r.returncode} {r.stderr.strip()}")

    a = c.submit("--preemptible", "--gpus", "1", "--name", "low", "--wrap",
                 job_script(a_log, a_gate))
    c.wait_state(a, "RUNNING", timeout=60)
    wait_for(lambda: "start 0" in lines(a_log), 30, "job A to start")
    check(c.job(a)["spec"].get("preemptible") is True, "the spec says preemptible")

    # B, priority 10, not preemptible: A is preempted for it
    b = c.submit("--gpus", "1", "--priority", "10", "--name", "high", "--wrap",
                 f"i=0; while [ ! -e {b_gate} ] && [ $i -lt 3000 ]; do sleep 0.1; "
                 f"i=$((i+1)); done")
    wait_for(lambda: "term 0" in lines(a_log), 60, "A's SIGTERM (checkpoint)")
    check("term 0" in lines(a_log), f"A got SIGTERM: {lines(a_log)}")
    c.wait_state(b, "RUNNING", timeout=60)
    ja = c.job(a)
    check(ja["state"] in ("PENDING", "STARTING", "RUNNING") and ja.get("attempt") == 1,
          f"A requeued with attempt 1: {ja['state']} attempt {ja.get('attempt')}")
    check(ja.get("uncounted_requeues") == 1 and ja.get("preemptions") == 1,
          f"no retry used, preempted once: {ja.get('uncounted_requeues')} "
          f"{ja.get('preemptions')}")
    ev = [e.get("reason", "") for e in events(c, a)]
    check(any(f"preempted for job {b} (priority 10)" == r for r in ev),
          f"the preemption is in A's history: {ev}")
    check(any(r.startswith(f"requeued: preempted for job {b}") for r in ev),
          f"A's requeue is in its history: {ev}")
    r = c.cli("show", str(a))
    check("Preemptible:" in r.stdout and "preempted or evicted 1 time" in r.stdout,
          f"wslq show says it:\n{r.stdout}")
    check(c.state(a) == "PENDING", f"A waits while B runs: {c.state(a)}")

    # C, priority 20: B is not preemptible, so C waits and B keeps running
    cj = c.submit("--gpus", "1", "--priority", "20", "--name", "higher", "--wrap",
                  f"i=0; while [ ! -e {b_gate} ] && [ $i -lt 3000 ]; do sleep 0.1; "
                  f"i=$((i+1)); done")
    wait_for(lambda: (c.job(cj) or {}).get("reason"), 30, "C's wait reason")
    check(c.state(cj) == "PENDING" and c.state(b) == "RUNNING",
          f"C waits, B runs: {c.state(cj)} {c.state(b)}")
    check(not any("preempt" in e.get("reason", "") for e in events(c, b)),
          "B was never preempted")

    # B and C end (one gate); A restarts after them with attempt 1 and completes
    open(b_gate, "w").close()
    c.wait_state(b, "COMPLETED", timeout=60)
    c.wait_state(cj, "COMPLETED", timeout=90)
    c.wait_state(a, "RUNNING", timeout=60)
    wait_for(lambda: "start 1" in lines(a_log), 30, "A's second start")
    check(lines(a_log)[:3] == ["start 0", "term 0", "start 1"], f"A's log: {lines(a_log)}")

    # an equal priority never preempts
    e = c.submit("--gpus", "1", "--name", "same", "--", "true")
    wait_for(lambda: (c.job(e) or {}).get("reason"), 30, "E's wait reason")
    check(c.state(e) == "PENDING" and c.state(a) == "RUNNING",
          f"equal priority: E waits, A runs: {c.state(e)} {c.state(a)}")
    open(a_gate, "w").close()
    c.wait_state(a, "COMPLETED", timeout=60)
    ja = c.job(a)
    check(ja["state"] == "COMPLETED" and ja.get("attempt") == 1 and ja.get("preemptions") == 1,
          f"A completed on attempt 1: {ja['state']} {ja.get('attempt')}")
    c.wait_state(e, "COMPLETED", timeout=60)
    check("term 1" not in lines(a_log), f"A was not preempted again: {lines(a_log)}")
finally:
    c.stop()
finish()
