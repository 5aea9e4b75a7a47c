#!/usr/bin/env python3
"""Backfill with reservations: a 2-node job submitted while small 1-GPU jobs hold the GPUs, with
a stream of newer small jobs behind it, gets a reservation (when and where, from the running
jobs' time limits; the planning default for one without --time), is not starved by the
stream, and starts when the GPUs it reserved free up; meanwhile a short job backfills onto a
freed GPU and a long one waits with the reason Reservation. wslq why, wslq queue and the JSON
show the estimate."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

# Jobs without --time are planned as running 15 minutes (for planning only).
c = Cluster(sched_args=["--default-time-limit", "15m"])
for name in ("pc1", "pc2"):
    c.start_worker(name, 2, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
try:
    def gated(gate, *spec):
        return c.submit("--gpus", "1", *spec, "--wrap",
                        f"while [ ! -e {gate} ]; do sleep 0.1; done")

    # Four 1-GPU jobs hold the cluster's 4 GPUs: three with a 10 minute limit, one with none
    # (planned with default_time_limit, 15 minutes: it ends last).
    gates = [os.path.join(c.dir, f"gate{i}") for i in range(4)]
    small = [gated(gates[i], "--time", "10") for i in range(3)] + [gated(gates[3])]
    for s in small:
        check(c.wait_state(s, "RUNNING", 60), f"small job {s} runs")

    # The 2-node job, then a stream of newer 1-GPU jobs with a 20 minute limit.
    g = c.submit("--nodes", "2", "--gpus-per-node", "2", "--time", "5", "--wrap", "sleep 0.5")
    stream = [c.submit("--gpus", "1", "--time", "20", "--wrap", "true") for _ in range(30)]
    check(g is not None and all(stream), "2-node job and the stream submitted")
    jg = wait_for(lambda: (lambda j: j if j and j.get("est_start_ms") else None)(c.job(g)), 30,
                  "the 2-node job's reservation")
    check(jg is not None and jg["wait_reason"] in ("Resources", "Priority"),
          f"the 2-node job waits with a reservation: {jg and jg.get('wait_reason')}")
    starts = {s: c.job(s)["start_ms"] for s in small}
    expect = starts[small[3]] + 15 * 60 * 1000  # the job with no --time ends last
    check(jg["est_start_ms"] == expect,
          f"estimated start = the unlimited job's start + the 15 minute default: "
          f"{jg['est_start_ms']} vs {expect}")
    check(jg.get("est_after_job") == small[3] and jg.get("est_by_default") is True,
          f"the estimate names the job it waits for, planned with the default: "
          f"{jg.get('est_after_job')} {jg.get('est_by_default')}")
    check(sorted(jg.get("est_nodes", "").split(",")) == ["pc1", "pc2"],
          f"reserved on both nodes: {jg.get('est_nodes')}")
    why = c.cli("why", str(g))
    check(why.returncode == 0 and "estimated start" in why.stdout and
          f"when job {small[3]} reaches the planning default" in why.stdout,
          f"wslq why gives the estimate and its cause: {why.stdout}")
    q = c.cli("queue")
    line = [x for x in q.stdout.splitlines() if x.split() and x.split()[0] == str(g)]
    check(len(line) == 1 and "start ~" in line[0], f"wslq queue shows the estimate: {line}")

    # The first small job ends: its GPU is reserved. A short job (ends before the reservation
    # starts) backfills onto it; a long one and the stream wait.
    open(gates[0], "w").close()
    check(c.wait_state(small[0], "COMPLETED", 30), "first small job completed")
    long_job = c.submit("--gpus", "1", "--time", "1-00:00:00", "--wrap", "true")
    short = c.submit("--gpus", "1", "--time", "1", "--wrap", "sleep 0.2")
    check(c.wait_state(short, "COMPLETED", 30),
          f"a short job backfills onto the freed GPU: {c.state(short)}, "
          f"{(c.job(short) or {}).get('reason')!r}")
    jl = wait_for(lambda: (lambda j: j if j and j.get("wait_reason") == "Reservation" else None)(
        c.job(long_job)), 20, "the long job's reason")
    check(jl is not None and jl["state"] == "PENDING" and jl.get("kept_for_job") == g,
          f"a long job waits: the GPU is kept for job {g}: {jl}")
    why = c.cli("why", str(long_job))
    check(why.returncode == 0 and f"kept for job {g}" in why.stdout,
          f"wslq why names the reservation: {why.stdout}")
    check(all(c.state(s) == "PENDING" for s in stream),
          "no job of the stream jumped the reservation")
    check(c.state(g) == "PENDING", "the 2-node job waits for the rest")

    # The other small jobs end: the 2-node job starts before any job of the stream.
    for gate in gates[1:]:
        open(gate, "w").close()
    check(c.wait_state(g, ("RUNNING", "COMPLETED"), 60), f"the 2-node job starts: {c.state(g)}")
    check(c.wait_state(g, "COMPLETED", 60), "the 2-node job completed")
    jg = c.job(g)
    for s in stream:
        check(c.wait_state(s, "COMPLETED", 60), f"stream job {s} completed after it")
    firsts = [c.job(s)["start_ms"] for s in stream]
    check(min(firsts) >= jg["start_ms"],
          f"the stream started only after the 2-node job: {min(firsts)} vs {jg['start_ms']}")
    check(c.wait_state(long_job, "COMPLETED", 60) and
          c.job(long_job)["start_ms"] >= jg["start_ms"], "the long job ran after it")
finally:
    c.stop()
finish()
