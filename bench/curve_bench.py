#!/usr/bin/env python3
"""What CURVE costs: two loopback clusters side by side, one enrolled as a lab's (every
connection CURVE) and one started --insecure, measured in alternating rounds so the
machine's noise falls on both alike. Run from the repository root:
    python3 bench/curve_bench.py [BIN] [ROUNDS]
Figures (median, and CURVE / insecure):
* one `wslq submit` process per job, jobs held by a dependency (process start, key load,
  handshake, one request, one commit);
* submit-to-start latency of a trivial job on an idle cluster (wslq-bench-submit latency:
  one connection; the time from the submit's acknowledgement to the job's first
  instruction, through the worker's CURVE connection);
* submissions over one connection, pipelined (wslq-bench-submit drain: the per-message cost
  of encryption)."""
import os
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import client_env

cluster = benchlib.load_cluster(sys.argv[1] if len(sys.argv) > 1 else None)
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10

BIN = cluster.BIN


def submits(c, dep, n):
    """Seconds per `wslq submit` process, n of them one after another."""
    e = client_env(c)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([f"{BIN}/wslq", "submit", "--parsable", "--dependency", dep, "--",
                        "/bin/true"], env=e, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


def latencies(c, n):
    stamps = os.path.join(c.dir, f"stamps-{time.monotonic_ns()}")
    r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "latency", str(n), stamps,
                        f"{BIN}/wslq-bench-stamp"], capture_output=True, text=True, check=True,
                       env=client_env(c))
    sub = {int(a): int(b) for a, b in (ln.split() for ln in r.stdout.split("\n") if ln)}
    with open(stamps) as f:
        start = {int(a): int(b) for a, b in (ln.split() for ln in f.read().split("\n") if ln)}
    return [(start[j] - sub[j]) / 1e6 for j in sub if j in start]


def drain_rate(c, n):
    r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "drain", str(n)],
                       capture_output=True, text=True, check=True, env=client_env(c))
    # "submitted N jobs in S s: R jobs/s (one connection, pipelined); drained ..."
    first = r.stdout.split("\n")[0]
    return float(first.split(": ")[1].split(" jobs/s")[0])


def row(what, a, b, unit, lower_is_better=True):
    ma, mb = statistics.median(a), statistics.median(b)
    ratio = ma / mb
    print(f"{what:58} {ma:9.2f} {mb:9.2f} {unit:6} {ratio:6.3f}", flush=True)


curve = cluster.Cluster(workers=[("c0", 0)], sched_args=["--sync", "full"])
plain = cluster.Cluster(workers=[("p0", 0)], sched_args=["--sync", "full"], secure=False)
try:
    holds = {}
    for c in (curve, plain):
        r = subprocess.run([f"{BIN}/wslq", "submit", "--parsable", "--wrap", "sleep 3600"],
                           env=client_env(c), check=True, capture_output=True, text=True)
        holds[c] = f"afterok:{r.stdout.strip()}"
    sub = {curve: [], plain: []}
    lat = {curve: [], plain: []}
    rate = {curve: [], plain: []}
    for i in range(ROUNDS):
        # alternate which goes first, so neither always meets the other's leftovers
        order = (curve, plain) if i % 2 == 0 else (plain, curve)
        for c in order:
            sub[c] += [s * 1000 for s in submits(c, holds[c], 20)]
    for c in (curve, plain):
        subprocess.run([f"{BIN}/wslq", "cancel", holds[c].split(":")[1]], env=client_env(c),
                       check=True, capture_output=True)
        cluster.wait_for(lambda: not c.json("queue")["jobs"], 120, "held jobs to end")
    for i in range(ROUNDS):
        order = (curve, plain) if i % 2 == 0 else (plain, curve)
        for c in order:
            lat[c] += latencies(c, 20)
        for c in order:
            rate[c].append(drain_rate(c, 500))
            cluster.wait_for(lambda: not c.json("queue")["jobs"], 120, "the drain to finish")
    print(f"{'':58} {'CURVE':>9} {'insecure':>9} {'':6} {'ratio':>6}")
    row(f"wslq submit, one process per job ({len(sub[curve])} each)", sub[curve], sub[plain],
        "ms")
    row(f"submit-to-start latency ({len(lat[curve])} jobs each)", lat[curve], lat[plain], "ms")
    row(f"submits over one connection, pipelined ({ROUNDS} x 500)", rate[curve], rate[plain],
        "jobs/s")
finally:
    curve.stop()
    plain.stop()
