#!/usr/bin/env python3
"""Idle daemons: CPU and system calls of a loopback cluster that has nothing to do.

    python3 bench/idle_bench.py [BIN] [--seconds S] [--strace] [--worker-args ARGS]

BIN defaults to build/bin. A CURVE-secured scheduler (--sync full, the shipped --torpid 3s and
--lost 10s) and 4 workers (heartbeat_ms 1,000 and the idle interval that follows from it:
5,000 ms, half of --lost, where the build's scheduler says so; 3,000 ms in older builds; no
GPUs) start on loopback; after 3 s
each daemon's CPU time over S seconds (default 20) is read from /proc/PID/task/*/schedstat
(nanoseconds, all threads) and printed as % of one core, with how many times a second its
threads were woken (put on a CPU: the third field there). Last, what one wake from a timed
sleep costs a thread on this machine (benchlib.wake_cost_us) and so how much of the figure
the wake-ups alone are. With --strace the scheduler and the first worker are also counted
with `strace -c -f` over the same window (strace slows the traced processes: read their CPU
from a run without it). --worker-args ARGS adds ARGS (split at blanks) to each worker's command
line: e.g. --worker-args "--idle-heartbeat-ms 3000" for the idle interval of older builds.
"""
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
secs, use_strace, bins, worker_args = 20.0, False, [], []
while args:
    a = args.pop(0)
    if a == "--seconds" and args:
        secs = float(args.pop(0))
    elif a == "--strace":
        use_strace = True
    elif a == "--worker-args":
        worker_args = args.pop(0).split() if args else []
        if not worker_args:
            sys.exit("idle_bench.py: --worker-args takes the workers' extra options, "
                     "e.g. --worker-args '--idle-heartbeat-ms 3000'")
    elif a.startswith("-"):
        sys.exit(f"idle_bench.py: unknown option {a}")
    else:
        bins.append(a)
if bins:
    os.environ["WSLQ_BIN"] = os.path.abspath(bins[0])
elif "WSLQ_BIN" not in os.environ:
    os.environ["WSLQ_BIN"] = os.path.join(here, "../build/bin")
sys.path.insert(0, os.path.join(here, "../tests/integration"))
sys.path.insert(0, here)
from benchlib import cpu_ns, lab_cluster, wake_cost_us, wakes  # noqa: E402


c = lab_cluster(["--sync", "full"], secure=True, worker_args=worker_args)
out = "/tmp/wslq-idle-bench-%d" % os.getpid()
try:
    time.sleep(3)
    pids = [("scheduler", c.sched.pid)] + [(n, p.pid) for n, p in c.workers.items()]
    before = {n: cpu_ns(p) for n, p in pids}
    woke0 = {n: wakes(p) for n, p in pids}
    tracers = []
    if use_strace:
        for n, p in pids[:2]:
            tracers.append((n, subprocess.Popen(
                ["strace", "-c", "-f", "-p", str(p), "-o", f"{out}-{n}.txt"],
                stderr=subprocess.DEVNULL)))
    time.sleep(secs)
    for _, t in tracers:
        t.send_signal(2)
        t.wait(10)
    after = {n: cpu_ns(p) for n, p in pids}
    woke1 = {n: wakes(p) for n, p in pids}
    total, total_wakes = 0.0, 0
    for n, _ in pids:
        pc = (after[n] - before[n]) / 1e9 / secs * 100
        total += pc
        total_wakes += woke1[n] - woke0[n]
        print(f"{n}: {pc:.3f} % of a core, {(woke1[n] - woke0[n]) / secs:.2f} wake-ups a second")
    print(f"all daemons: {total:.3f} % of a core over {secs:g} s, "
          f"{total_wakes / secs:.2f} wake-ups a second")
    us = wake_cost_us()
    share = total_wakes / secs * us / 1e4
    print(f"one wake from a timed sleep costs a thread {us:.1f} us of CPU here (median of 200): "
          f"the wake-ups alone are {share:.3f} % of a core"
          + (f", {share / total * 100:.0f} % of the daemons' figure" if total > 0 else ""))
    for n, _ in tracers:
        with open(f"{out}-{n}.txt") as f:
            lines = f.read().splitlines()
        os.unlink(f"{out}-{n}.txt")
        rows = {ln.split()[-1]: int(ln.split()[3]) for ln in lines
                if len(ln.split()) >= 5 and ln.split()[3].isdigit()}
        tot = rows.get("total", 0)
        top = ", ".join(f"{k} {v}" for k, v in sorted(rows.items(), key=lambda kv: -kv[1])
                        if k != "total")
        print(f"{n} (strace): {tot / secs:.0f} system calls/s; {tot} in {secs:g} s: {top}")
finally:
    c.stop()
