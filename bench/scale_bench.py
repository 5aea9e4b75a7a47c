#!/usr/bin/env python3
"""The scheduler with a lab's backlog: N pending jobs (default 100,000) queued behind a job
that holds on, on a CURVE-secured loopback cluster (scheduler + 4 workers x 16 slots).
    python3 bench/scale_bench.py [BIN] [--pending N] [--idle-s S] [--mode curve|insecure]
BIN defaults to build/bin; wslq-bench-submit (the load driver) is taken from BIN too.

Figures, each first with the queue empty (the reference) and then with N pending:
  * submit round trip over one connection, one at a time (wslq-bench-submit rtt): median, p90
  * `wslq submit` commands in a bash loop: median wall time of one command
  * the scheduler idle over --idle-s seconds (default 30): CPU (% of one core) and RSS
  * a runnable job while N wait (its submit-to-end, through a pass that sees them all)
  * restart with N active jobs: SIGTERM, start again, time to the first answer"""
import os
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../tests/integration"))
args = sys.argv[1:]


def opt(name, default):
    if name not in args:
        return default
    i = args.index(name)
    val = args[i + 1] if i + 1 < len(args) else ""
    del args[i:i + 2]
    return val


n_pending = int(opt("--pending", "100000"))
idle_s = float(opt("--idle-s", "30"))
mode = opt("--mode", "curve")
if mode not in ("curve", "insecure"):
    sys.exit("--mode must be curve or insecure")
if args:
    os.environ["WSLQ_BIN"] = os.path.abspath(args[0])
import cluster  # noqa: E402

BIN = cluster.BIN
HZ = os.sysconf("SC_CLK_TCK")


def clk_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


c = cluster.Cluster(workers=[], sched_args=["--sync", "full"], secure=mode == "curve")
try:
    for i in range(4):
        c.start_worker(f"w{i}", 0, extra=["--cpus", "16", "--heartbeat-ms", "1000"])
    env = c.env(WSLQ_SCHEDULER=c.addr)
    if mode == "curve":
        env["WSLQ_CREDENTIALS"] = c.creds
    else:
        env["WSLQ_INSECURE"] = "yes"
    hold = c.submit("--wrap", "sleep 100000")
    c.wait_state(hold, "RUNNING", timeout=120)

    def figures(label):
        r = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "rtt", "200", str(hold)],
                           env=env, check=True, capture_output=True, text=True, timeout=600)
        rtt = sorted(float(x) for x in r.stdout.split())
        print(f"  {label}: submit round trip, one connection: median {statistics.median(rtt):.2f} ms, "
              f"p90 {rtt[int(len(rtt) * 0.9)]:.2f} ms", flush=True)
        walls = []
        for _ in range(50):
            t0 = time.monotonic()
            subprocess.run([f"{BIN}/wslq", "submit", "--dependency", f"afterok:{hold}", "--",
                            "/bin/true"], env=env, check=True, capture_output=True)
            walls.append((time.monotonic() - t0) * 1000)
        print(f"  {label}: `wslq submit` command: median {statistics.median(walls):.2f} ms",
              flush=True)
        pid = c.sched.pid
        time.sleep(2)
        t0, c0 = time.monotonic(), clk_ticks(pid)
        time.sleep(idle_s)
        t1, c1 = time.monotonic(), clk_ticks(pid)
        print(f"  {label}: scheduler idle over {idle_s:.0f} s: "
              f"{(c1 - c0) / HZ / (t1 - t0) * 100:.2f}% of one core, RSS {rss_mib(pid):.1f} MiB",
              flush=True)
        t0 = time.monotonic()
        jid = c.submit("--", "/bin/true")
        c.wait_state(jid, ("COMPLETED", "FAILED"), timeout=300)
        print(f"  {label}: a runnable job, submit to COMPLETED seen: "
              f"{(time.monotonic() - t0) * 1000:.0f} ms", flush=True)

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
