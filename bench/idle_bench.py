#!/usr/bin/env python3
"""Idle daemons: CPU and system calls of a loopback cluster that has nothing to do.

    python3 bench/idle_bench.py [BIN] [--seconds S] [--strace] [--worker-args ARGS]

BIN defaults to build/bin. A CURVE-secured scheduler (--sync full, the shipped --torpid 3s and
--lost 10s) and 4 workers (heartbeat_ms 1,000 and the idle interval that follows from it:
5,000 ms, half of --lost, where the build's scheduler says so; 3,000 ms in older builds; no
GPUs) start on loopback; after 3 s
each daemon's CPU time over S seconds (default 20) is read from /proc/PID/task/*/schedstat
(nanoseconds, all threads) and printed as % of one core, with how many times a second its
threads were woken (put on a CPU: the third field there). Last, the floor under it: what one
wake from a timed sleep costs a thread that does nothing else (wslq-bench-wake,
bench/wake_floor.c; from BIN, else from build/bin), after sleeps as long as the idle
daemons' (2.5 s, beside them over the same window) and after 5 ms ones (a virtual machine can
make those several times cheaper), and so how much of the figure the wake-ups alone are.
With --strace the scheduler and the first worker are also counted with `strace -c -f` over
the same window (strace slows the traced processes, and its stops are wake-ups: read their
CPU from a run without it; the floor is not measured then).
--worker-args ARGS adds ARGS (split at blanks) to each worker's command line: e.g.
--worker-args "--idle-heartbeat-ms 3000" for the idle interval of older builds.
"""
import os
import re
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
# the idle daemons' sleeps: a worker's 5 s between heartbeats, the scheduler's 2.5 s from a
# heartbeat to its nodes' next deadline (it wakes for both)
LONG_SLEEP_MS = 2500
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
from benchlib import cpu_ns, lab_cluster, wakes  # noqa: E402

WAKE = next((p for p in (os.path.join(os.environ["WSLQ_BIN"], "wslq-bench-wake"),
                         os.path.join(here, "../build/bin/wslq-bench-wake"))
             if os.access(p, os.X_OK)), None)


def wake_floor(proc):
    """What the finished wslq-bench-wake proc printed: (wakes, median, least, most), in us."""
    line = proc.communicate(timeout=120)[0].strip()
    m = re.match(r"(\d+) wakes .* median ([0-9.]+) us .*least ([0-9.]+), most ([0-9.]+)", line)
    if proc.returncode != 0 or m is None:
        raise SystemExit(f"idle_bench.py: {WAKE} failed: {line or 'no output'}")
    return int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4))


c = lab_cluster(["--sync", "full"], secure=True, worker_args=worker_args)
out = "/tmp/wslq-idle-bench-%d" % os.getpid()
long_floor = None
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
    floor = WAKE is not None and not use_strace  # the tracer's stops would be wake-ups too
    n_long = int(secs * 1000 // LONG_SLEEP_MS)
    if floor and n_long > 0:
        long_floor = subprocess.Popen([WAKE, str(LONG_SLEEP_MS), str(n_long)],
                                      stdout=subprocess.PIPE, text=True)
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
    if use_strace:
        print("(with --strace the tracer's stops are wake-ups too: no figure a wake-up)")
    elif total_wakes > 0:
        us_each = total / 100 * secs / total_wakes * 1e6
        print(f"one wake-up of a daemon's thread: {us_each:.1f} us of CPU on average")
    if WAKE is None and not use_strace:
        print("no wslq-bench-wake in BIN or build/bin: the floor of a wake is not measured")
    floors = []
    if long_floor is not None:
        floors.append((f"{LONG_SLEEP_MS / 1000:g} s asleep, as long as the idle daemons' "
                       f"(beside them)", long_floor))
    if floor:
        floors.append(("5 ms asleep", subprocess.Popen([WAKE, "5", "200"],
                                                       stdout=subprocess.PIPE, text=True)))
    for what, proc in floors:
        n, us, least, most = wake_floor(proc)
        pc = total_wakes / secs * us / 1e4
        print(f"the floor, a wake of a thread that does nothing else, after {what}: "
              f"{us:.1f} us (median of {n}, {least:.1f}-{most:.1f}): the daemons' wake-ups at "
              f"that are {pc:.3f} % of a core"
              + (f", {pc / total * 100:.0f} % of their figure" if total > 0 else ""))
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
    if long_floor is not None and long_floor.poll() is None:
        long_floor.kill()
        long_floor.wait()
    c.stop()
