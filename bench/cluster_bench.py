#!/usr/bin/env python3
"""Cluster benchmarks on loopback; prints each figure. Run from the build tree's parent:
    python3 bench/cluster_bench.py [BIN] [--mode curve|insecure|legacy]
BIN defaults to build/bin. --mode: curve (the default: every connection CURVE, enrolled as
a lab would), insecure (the same build with --insecure: what CURVE costs), legacy (programs
built before enrolment existed, for before/after comparisons). Figures: submit rate with one `wslq submit` process per job (sequential and 8 at a time),
submit-to-start latency of a trivial job on an idle cluster, time to drain 1,000 trivial jobs
over 4 workers, scheduler idle CPU and RSS."""
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import benchlib
from benchlib import idle_cpu, opt, rss_mib

args = sys.argv[1:]
mode = opt(args, "--mode", "curve")
if mode not in ("curve", "insecure", "legacy"):
    sys.exit("--mode must be curve, insecure or legacy")
cluster = benchlib.load_cluster(args[0] if args else None)
BIN = cluster.BIN

c = cluster.Cluster(workers=[(f"w{i}", 0) for i in range(4)], sched_args=["--sync", "full"],
                    secure=mode == "curve", legacy=mode == "legacy")
print(f"mode: {mode}")
try:
    env = dict(os.environ, WSLQ_SCHEDULER=c.addr)
    if mode == "curve":
        env["WSLQ_CREDENTIALS"] = c.creds
    elif mode == "insecure":
        env["WSLQ_INSECURE"] = "yes"
    n = 500

    # Submission alone: every job waits on a job that holds on, so nothing runs meanwhile.
    hold = c.submit("--wrap", "sleep 600")
    dep = f"afterok:{hold}"

    def held(_):
        subprocess.run([f"{BIN}/wslq", "submit", "--parsable", "--dependency", dep, "--",
                        "/bin/true"], env=env, check=True, capture_output=True)
    t0 = time.monotonic()
    for i in range(n):
        held(i)
    dt = time.monotonic() - t0
    print(f"submit, one wslq process per job, sequential, jobs held: {n / dt:.0f} jobs/s "
          f"({dt / n * 1000:.2f} ms per submit)")
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(held, range(n)))
    dt = time.monotonic() - t0
    print(f"submit, one wslq process per job, 8 at a time, jobs held: {n / dt:.0f} jobs/s")
    subprocess.run([f"{BIN}/wslq", "cancel", str(hold)], env=env, check=True, capture_output=True)
    cluster.wait_for(lambda: not c.json("queue")["jobs"], 120, "held jobs to be cancelled")

    # Submission while the jobs run on the same two cores.
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.run([f"{BIN}/wslq", "submit", "--parsable", "--", "/bin/true"], env=env,
                       check=True, capture_output=True)
    dt = time.monotonic() - t0
    print(f"submit, one wslq process per job, sequential, jobs running: {n / dt:.0f} jobs/s "
          f"({dt / n * 1000:.2f} ms per submit)")
    cluster.wait_for(lambda: not c.json("queue")["jobs"], 120, "queue to drain")

    def one(_):
        subprocess.run([f"{BIN}/wslq", "submit", "--parsable", "--", "/bin/true"], env=env,
                       check=True, capture_output=True)
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    dt = time.monotonic() - t0
    print(f"submit, one wslq process per job, 8 at a time, jobs running: {n / dt:.0f} jobs/s")
    cluster.wait_for(lambda: not c.json("queue")["jobs"], 120, "queue to drain")

    stamps = os.path.join(c.dir, "stamps")
    r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "latency", "200", stamps,
                        f"{BIN}/wslq-bench-stamp"], capture_output=True, text=True, check=True,
                       env=env)
    sub = {int(a): int(b) for a, b in (l.split() for l in r.stdout.split("\n") if l)}
    with open(stamps) as f:
        start = {int(a): int(b) for a, b in (l.split() for l in f.read().split("\n") if l)}
    lat = sorted((start[j] - sub[j]) / 1e6 for j in sub if j in start)
    print(f"submit-to-start latency, idle cluster, {len(lat)} jobs: median {statistics.median(lat):.2f} ms, "
          f"p90 {lat[int(len(lat) * 0.9)]:.2f} ms, max {lat[-1]:.2f} ms")

    r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "drain", "1000"], capture_output=True,
                       text=True, check=True, env=env)
    print("drain over 4 workers:", r.stdout.strip().replace("\n", "; "))

    pid = c.sched.pid
    cpu = idle_cpu([pid], 10, settle=1)[0]
    print(f"scheduler idle with 4 workers: {cpu:.2f}% of one core, RSS {rss_mib(pid):.1f} MiB")
finally:
    c.stop()
