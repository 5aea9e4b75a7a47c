#!/usr/bin/env python3
"""One `wslq submit` from a shell, two builds side by side: each build runs its own loopback
cluster (a scheduler with --sync full and one worker), and every round measures both, one
after the other, so a machine whose load changes weighs on both alike. Prints the median of
the rounds' medians for each figure and the ratio B / A.
    bench/submit_path.py BIN_A BIN_B [--rounds R] [--n N] [--mode curve|insecure]
                         [--sync full|normal]
Figures (each a median of N runs a round, default N=20, R=5), for the first three both the
wall time and the client's CPU time (user + system, all its threads: what a loaded machine
inflates least):
  * `wslq --version`: the process floor (loader, libraries, exit)
  * `wslq submit --hold -- true`: the whole client, start to exit (the job is held, so
    nothing runs)
  * `wslq nodes`: a read-only request, the same connection set-up and teardown
  * the scheduler's CPU time per `wslq submit --hold` (all its threads, from
    /proc/PID/task/*/schedstat over the N submits; the idle worker's heartbeats included)
  * submit-to-start latency: from just before `wslq submit -- wslq-bench-stamp FILE` starts to
    the job's first instruction (bench/stamp.c), one job at a time on an idle cluster
--mode curve (the default) secures every connection with CURVE as a lab would; --sync picks
the schedulers' --sync (full: every acknowledged submit is fsynced)."""
import os
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../tests/integration"))
sys.path.insert(0, here)
from benchlib import cpu_ns, opt as _opt, wait_stamp  # noqa: E402

args = sys.argv[1:]


def opt(name, default):
    return _opt(args, name, default)


rounds = int(opt("--rounds", "5"))
n = int(opt("--n", "20"))
mode = opt("--mode", "curve")
sync = opt("--sync", "full")
if len(args) != 2 or rounds < 1 or n < 1 or mode not in ("curve", "insecure"):
    sys.exit(__doc__)
bins = [os.path.abspath(a) for a in args]
import cluster  # noqa: E402

results = {}  # figure -> [[per-round medians of A], [of B]]


def add(fig, k, value):
    results.setdefault(fig, [[], []])[k].append(value)


NULL_OUT = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]


def run(argv, env):
    """(wall ms, CPU ms of the process: user + system, all its threads)"""
    t0 = time.monotonic()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=NULL_OUT)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.monotonic() - t0) * 1000
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (status {status})")
    return wall, (ru.ru_utime + ru.ru_stime) * 1000


def timed(fig, k, argv, env):
    """n runs of argv: the medians of their wall and CPU times go to fig"""
    runs = [run(argv, env) for _ in range(n)]
    add(fig + " wall (ms)", k, statistics.median(r[0] for r in runs))
    add(fig + " CPU (ms)", k, statistics.median(r[1] for r in runs))


clusters = []
try:
    setups = []
    for b in bins:
        cluster.BIN = b
        c = cluster.Cluster(workers=[], sched_args=["--sync", sync], secure=mode == "curve")
        clusters.append(c)
        c.start_worker("pc1", 0)
        env = c.env(WSLQ_SCHEDULER=c.addr)
        if mode == "curve":
            env["WSLQ_CREDENTIALS"] = c.creds
        else:
            env["WSLQ_INSECURE"] = "yes"
        os.chmod(c.dir, 0o755)
        stamps = os.path.join(c.dir, "stamps")
        os.mkdir(stamps)
        os.chmod(stamps, 0o777)
        setups.append((b, env, stamps, c.sched.pid))
    print(f"A = {bins[0]}\nB = {bins[1]}\n{mode}, --sync {sync}, {rounds} rounds of {n}",
          flush=True)
    seq = 0
    for r in range(rounds):
        for k, (b, env, stamps, spid) in enumerate(setups):
            w = f"{b}/wslq"
            timed("`wslq --version`", k, [w, "--version"], env)
            cpu0 = cpu_ns(spid) / 1e6
            timed("`wslq submit --hold -- true`", k, [w, "submit", "--hold", "--", "true"], env)
            add("scheduler CPU per submit --hold (ms)", k, (cpu_ns(spid) / 1e6 - cpu0) / n)
            timed("`wslq nodes`", k, [w, "nodes"], env)
            lat = []
            for _ in range(n):
                seq += 1
                path = os.path.join(stamps, f"s{seq}")
                t0 = time.time_ns()
                subprocess.run([w, "submit", "--", f"{b}/wslq-bench-stamp", path], env=env,
                               check=True, stdout=subprocess.DEVNULL)
                lat.append((wait_stamp(path) - t0) / 1e6)
                time.sleep(0.02)
            add("submit-to-start latency (ms)", k, statistics.median(lat))
        print(f"  round {r + 1} done", flush=True)
finally:
    for c in clusters:
        c.stop()

print(f"\nmedians of {rounds} rounds (each the median of {n} runs); ratio = B / A")
print(f"  {'figure':44} {'A':>8} {'B':>8} {'ratio':>7}")
for fig, (a, b) in results.items():
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"  {fig:44} {ma:>8.2f} {mb:>8.2f} {mb / ma:>6.2f}x")
