#!/usr/bin/env python3
"""The scheduler at rest, two figures (issue 17), on the lab cluster of benchlib.lab_cluster
(CURVE, --sync full, scheduler + 4 workers x 16 slots):
    python3 bench/rest_bench.py [BIN] [--jobs 3000,10000] [--pending N] [--idle-s S]
  * its resident memory after each count of --jobs jobs run (/bin/true, wslq-bench-submit
    drain), read after 12 s of rest (past the 10 s after which freed memory is trimmed)
  * the CPU of every daemon (scheduler and workers, % of one core, from schedstat) over
    --idle-s seconds with nothing to do: fresh (after 2 s), and after each count of jobs
    (after that rest); --jobs 0 measures the fresh cluster alone
  * then its CPU over --idle-s seconds (default 30; % of one core, from
    /proc/PID/task/*/schedstat) with --pending jobs (default 100,000) queued behind a job
    that holds on"""
import subprocess
import sys
import time

import benchlib
from benchlib import cpu_ns, idle_cpu, opt, rss_mib

args = sys.argv[1:]
counts = [int(x) for x in opt(args, "--jobs", "3000,10000").split(",") if int(x) > 0]
n_pending = int(opt(args, "--pending", "100000"))
idle_s = float(opt(args, "--idle-s", "30"))
cluster = benchlib.load_cluster(args[0] if args else None)
BIN = cluster.BIN

c = benchlib.lab_cluster(["--sync", "full"], secure=True)
try:
    env = benchlib.client_env(c)
    pid = c.sched.pid
    pids = [pid] + [p.pid for p in c.workers.values()]

    def daemons_idle(label):
        cpu = idle_cpu(pids, idle_s, settle=0)
        print(f"daemons idle over {idle_s:.0f} s, {label}: {sum(cpu):.3f}% of one core "
              f"(scheduler {cpu[0]:.3f}%, workers {' '.join(f'{x:.3f}%' for x in cpu[1:])})",
              flush=True)

    time.sleep(2)
    print(f"scheduler RSS fresh: {rss_mib(pid):.1f} MiB", flush=True)
    daemons_idle("fresh")
    done = 0
    for n in counts:
        subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "drain", str(n - done)], env=env,
                       check=True, capture_output=True, timeout=3600)
        done = n
        time.sleep(12)
        print(f"scheduler RSS after {n} jobs: {rss_mib(pid):.1f} MiB", flush=True)
        daemons_idle(f"after {n} jobs")
    if n_pending > 0:
        hold = c.submit("--wrap", "sleep 100000")
        c.wait_state(hold, "RUNNING", timeout=120)
        subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "pending", str(n_pending),
                        str(hold)], env=env, check=True, capture_output=True, timeout=3600)
        time.sleep(3)
        n0, t0 = cpu_ns(pid), time.monotonic()
        time.sleep(idle_s)
        cpu = (cpu_ns(pid) - n0) / 1e9 / (time.monotonic() - t0) * 100
        print(f"scheduler idle over {idle_s:.0f} s with {n_pending} pending: {cpu:.3f}% of one "
              f"core, RSS {rss_mib(pid):.1f} MiB", flush=True)
finally:
    c.stop()
