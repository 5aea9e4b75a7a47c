#!/usr/bin/env python3
"""The scheduler with a lab's backlog: N pending jobs (default 100,000) queued behind a job
that holds on, on a CURVE-secured loopback cluster (scheduler + 4 workers x 16 slots).
    python3 bench/scale_bench.py [BIN] [--pending N] [--idle-s S] [--mode curve|insecure]
BIN defaults to build/bin; wslq-bench-submit (the load driver) is taken from BIN too.

Figures, each first with the queue empty (the reference) and then with N pending:
  * submit round trip over one connection, one at a time (wslq-bench-submit rtt): median, p90
  * `wslq submit` commands one after another, over TCP (a user on another PC) and, with
    CURVE, over the scheduler host's user socket (a user on that PC): median wall time of one
    command
  * the scheduler idle over --idle-s seconds (default 30): CPU (% of one core) and RSS
  * a runnable job while N wait (its submit-to-end, through the passes its start and end make;
    median of 10)
  * restart with N active jobs: SIGTERM, start again, time to the first answer"""
import shutil
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import idle_cpu, opt, rss_mib

args = sys.argv[1:]
n_pending = int(opt(args, "--pending", "100000"))
idle_s = float(opt(args, "--idle-s", "30"))
mode = opt(args, "--mode", "curve")
if mode not in ("curve", "insecure"):
    sys.exit("--mode must be curve or insecure")
cluster = benchlib.load_cluster(args[0] if args else None)
BIN = cluster.BIN

udir, usock = benchlib.user_socket_dir()
c = benchlib.lab_cluster(["--sync", "full", "--user-socket", usock], secure=mode == "curve")
try:
    env = benchlib.client_env(c)
    # the scheduler host's user socket, which an --insecure scheduler does not open
    ways = {"TCP": env}
    if mode == "curve":
        ways["the user socket"] = benchlib.usock_env(env, usock)
    hold = c.submit("--wrap", "sleep 100000")
    c.wait_state(hold, "RUNNING", timeout=120)

    def figures(label):
        r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "rtt", "200", str(hold)],
                           env=env, check=True, capture_output=True, text=True, timeout=600)
        rtt = sorted(float(x) for x in r.stdout.split())
        print(f"  {label}: submit round trip, one connection: median {statistics.median(rtt):.2f} ms, "
              f"p90 {rtt[int(len(rtt) * 0.9)]:.2f} ms", flush=True)
        walls = {way: [] for way in ways}
        for _ in range(50):
            for way, e in ways.items():
                t0 = time.monotonic()
                subprocess.run([f"{BIN}/wslq", "submit", "--dependency", f"afterok:{hold}",
                                "--", "/bin/true"], env=e, check=True, capture_output=True)
                walls[way].append((time.monotonic() - t0) * 1000)
        t0 = time.monotonic()
        for _ in range(50):
            subprocess.run([f"{BIN}/wslq", "--version"], check=True, capture_output=True)
        floor = (time.monotonic() - t0) * 1000 / 50
        print(f"  {label}: `wslq submit` command: median " +
              ", ".join(f"{statistics.median(v):.2f} ms over {way}" for way, v in walls.items()) +
              f" (`wslq --version`: {floor:.2f} ms; {mode})", flush=True)
        pid = c.sched.pid
        cpu = idle_cpu([pid], idle_s, settle=2)[0]
        print(f"  {label}: scheduler idle over {idle_s:.0f} s: "
              f"{cpu:.2f}% of one core, RSS {rss_mib(pid):.1f} MiB",
              flush=True)
        turns = []
        for _ in range(10):
            t0 = time.monotonic()
            jid = c.submit("--", "/bin/true")
            c.wait_state(jid, ("COMPLETED", "FAILED"), timeout=300)
            turns.append((time.monotonic() - t0) * 1000)
        print(f"  {label}: a runnable job, submit to COMPLETED seen: median of 10 "
              f"{statistics.median(turns):.0f} ms, max {max(turns):.0f} ms", flush=True)

    print(f"mode: {mode}; scheduler + 4 workers x 16 slots, --sync full")
    figures("empty queue")
    t0 = time.monotonic()
    subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "pending", str(n_pending), str(hold)],
                   env=env, check=True, capture_output=True, timeout=3600)
    print(f"queued {n_pending} jobs behind job {hold} in {time.monotonic() - t0:.1f} s "
          f"(one connection, pipelined)", flush=True)
    figures(f"{n_pending} pending")

    c.sched.terminate()
    c.sched.wait(60)
    t0 = time.monotonic()
    c.start_scheduler()  # waits up to 10 s for an answer; past that, wait on here
    cluster.wait_for(lambda: c.cli("queue").returncode == 0, 600, "the restarted scheduler",
                     interval=0.05)
    print(f"  restart with {n_pending + 501} active jobs to the first answer: "
          f"{time.monotonic() - t0:.2f} s (polled every 50 ms by `wslq queue`)", flush=True)
finally:
    c.stop()
    shutil.rmtree(udir, ignore_errors=True)
