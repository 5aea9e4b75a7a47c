#!/usr/bin/env python3
"""Restart to the first answer with a lab's backlog, builds side by side.
    python3 bench/restart_bench.py [BIN [BIN2 ...]] [--pending N] [--rounds R] [--save DIR]
BIN defaults to build/bin. One loopback cluster (--insecure, --sync full, 4 workers x 16
slots, heartbeats every 1 s) queues N jobs (default 100,000) behind a running job, over one
connection (wslq-bench-submit pending, from the first BIN). Then the scheduler is stopped
(SIGTERM) and started again R times (default 5) on that state directory, alternating the
scheduler of each BIN round by round, so the machine's noise falls on every build alike.
Each restart is timed to the first answer of `wslq queue` (one started every 20 ms), and
the scheduler's own CPU time until then is read from /proc (clock ticks: 10 ms). The
workers stay up and register again each time, as they would after a real restart."""
import os
import shutil
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import HZ, clk_ticks, opt

args = sys.argv[1:]
n_pending = int(opt(args, "--pending", "100000"))
rounds = int(opt(args, "--rounds", "5"))
save = opt(args, "--save", "")  # copy the queue's state directory here at the end (for perf)
bins = [os.path.abspath(a) for a in args] or [os.path.abspath("build/bin")]
benchlib.load_cluster(bins[0])

c = benchlib.lab_cluster(["--sync", "full"], secure=False)
try:
    env = benchlib.client_env(c)
    hold = c.submit("--wrap", "sleep 100000")
    c.wait_state(hold, "RUNNING", timeout=120)
    t0 = time.monotonic()
    subprocess.run([f"{bins[0]}/wslq-bench-submit", c.addr, "pending", str(n_pending), str(hold)],
                   env=env, check=True, capture_output=True, timeout=3600)
    print(f"queued {n_pending} jobs behind job {hold} in {time.monotonic() - t0:.1f} s",
          flush=True)
    res = {b: ([], []) for b in bins}
    for r in range(rounds):
        for b in bins:
            c.sched.terminate()
            c.sched.wait(120)
            time.sleep(1)
            log = open(os.path.join(c.dir, "scheduler.log"), "ab")
            t0 = time.monotonic()
            c.sched = subprocess.Popen(
                [f"{b}/wslq-scheduler", "--listen", c.addr, "--state-dir",
                 os.path.join(c.dir, "sched"), "--torpid", "1s", "--lost", "3s",
                 "--kill-grace", "2s"] + c.sched_args, stdout=log, stderr=log, env=c.env())
            ticks = None
            for _ in range(30000):
                q = subprocess.run([f"{bins[0]}/wslq", "--timeout", "60", "queue"], env=env,
                                   capture_output=True)
                if q.returncode == 0:
                    ticks = clk_ticks(c.sched.pid)
                    break
                if c.sched.poll() is not None:
                    raise RuntimeError(f"the scheduler of {b} exited: {c.sched.returncode}")
                time.sleep(0.02)
            wall = time.monotonic() - t0
            res[b][0].append(wall)
            res[b][1].append(ticks / HZ)
            print(f"  round {r + 1} {b}: first answer after {wall:.2f} s, "
                  f"scheduler CPU {ticks / HZ:.2f} s", flush=True)
    if save:
        c.sched.terminate()
        c.sched.wait(120)
        shutil.copytree(os.path.join(c.dir, "sched"), save, ignore=shutil.ignore_patterns("*.sock"))
    print(f"restart with {n_pending + 1} active jobs, median of {rounds}:")
    for b in bins:
        print(f"  {b}: first answer {statistics.median(res[b][0]):.2f} s wall, "
              f"scheduler CPU {statistics.median(res[b][1]):.2f} s", flush=True)
finally:
    c.stop()
