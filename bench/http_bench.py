#!/usr/bin/env python3
"""Dashboard render times with 10,000 jobs in history. Run from the repository root:
    python3 bench/http_bench.py [build/bin] [N]
A loopback cluster (scheduler with --http, 4 workers with 2 declared GPUs each) drains N
(default 10,000) trivial jobs, so the history holds N COMPLETED jobs with their events; then
each endpoint is fetched 200 times over one keep-alive connection and the client-side time
per request is printed (median, p90, max), with the body size. Then N more jobs are queued
behind a dependency that never completes, and the loop's snapshot cost with N active jobs
is read from the scheduler's debug log (WSLQ_DEBUG=http)."""
import http.client
import os
import re
import statistics
import subprocess
import sys
import time

import benchlib

N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
os.environ["WSLQ_DEBUG"] = "http"
cluster = benchlib.load_cluster(sys.argv[1] if len(sys.argv) > 1 else None)

BIN = cluster.BIN


def timed(conn, path, n=200):
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=c.auth())
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, (path, r.status, body[:200])
        size = len(body)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)], times[-1], size


def snapshot_ms(logfile, since):
    with open(logfile, errors="replace") as f:
        f.seek(since)
        vals = [float(m) for m in re.findall(r"http snapshot version=\d+ ms=([0-9.]+)", f.read())]
    return vals


port = cluster.free_port()
c = cluster.Cluster(workers=[(f"w{i}", 2) for i in range(4)],
                    sched_args=["--sync", "full", "--http", f"127.0.0.1:{port}",
                                "--http-rate", "0"])
env = c.env(WSLQ_CREDENTIALS=c.creds)
try:
    t0 = time.monotonic()
    r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "drain", str(N)], capture_output=True,
                       text=True, check=True, env=env)
    print(f"history: {N} jobs drained in {time.monotonic() - t0:.1f} s "
          f"({r.stdout.strip().splitlines()[-1]})")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    paths = [
        "/metrics",
        "/api/v1/summary",
        "/api/v1/nodes",
        "/api/v1/jobs",
        "/api/v1/jobs?limit=1000",
        f"/api/v1/jobs?state=completed&before={N // 2}",
        "/api/v1/jobs?user=bench&limit=50",
        "/api/v1/jobs?name=no-such-name",
        f"/api/v1/jobs/{N // 2}",
    ]
    print(f"{'endpoint':48} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'bytes':>9}")
    for p in paths:
        med, p90, mx, size = timed(conn, p, 50 if "limit=1000" in p else 200)
        print(f"{p:48} {med:10.2f} {p90:8.2f} {mx:8.2f} {size:9d}")

    # N active jobs: a holder that never ends, and N jobs waiting on it.
    log = os.path.join(c.dir, "scheduler.log")
    hold = c.submit("--", "sleep", "600")
    c.wait_state(hold, "RUNNING")
    r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "pending", str(N), str(hold)], env=env,
                       capture_output=True, text=True)
    if r.returncode == 0:
        since = os.path.getsize(log)
        time.sleep(5)
        vals = snapshot_ms(log, since)
        if vals:
            print(f"loop snapshot with {N} active jobs, 8 GPUs: median {statistics.median(vals):.2f} ms, "
                  f"max {max(vals):.2f} ms ({len(vals)} snapshots in 5 s)")
        med, p90, mx, size = timed(conn, "/metrics")
        print(f"/metrics with {N} active jobs: median {med:.2f} ms, p90 {p90:.2f} ms")
        med, p90, mx, size = timed(conn, "/api/v1/jobs?state=active")
        print(f"/api/v1/jobs?state=active with {N} active jobs: median {med:.2f} ms, "
              f"p90 {p90:.2f} ms")
    else:
        print("(wslq-bench-submit has no 'pending' mode; active-job figures skipped)")
    c.cli("cancel", str(hold))
finally:
    c.stop()
