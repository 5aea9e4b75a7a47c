#!/usr/bin/env python3
"""The two `wslq submit` figures of vs_tsp.py over the scheduler host's user socket (or, with
--way tcp, over CURVE TCP as from another PC), two builds side by side: each build runs its
own lab-sized cluster (scheduler --sync full with --user-socket, 4 workers x 16 CPU slots,
CURVE), and every round measures both, one after the other and each first in turn, so a
machine whose load changes weighs on both alike (use an even number of rounds). Prints the
median of the rounds for each figure and the ratio B / A.
    bench/usock_pair.py BIN_A BIN_B [--rounds R] [--loop N] [--lat L] [--way unix|tcp]
Figures, per round: a bash loop of N (default 250) `wslq submit -- /bin/true` while the jobs
run (submits/s), the CPU time of that loop's commands a submit (user + system of the bash
and its children: the wslq processes and bash's forks), the CPU time the scheduler and the
workers spent a job of that loop (all their threads, until the queue is empty again; what a
loaded machine inflates least), and the median submit-to-start latency of L (default 25)
jobs one at a time on the idle cluster (from just before `wslq submit` starts to the job's
first instruction, bench/stamp.c)."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../tests/integration"))
sys.path.insert(0, here)
import benchlib  # noqa: E402
from benchlib import cpu_ns, opt as _opt, wait_stamp  # noqa: E402

args = sys.argv[1:]
rounds = int(_opt(args, "--rounds", "5"))
nloop = int(_opt(args, "--loop", "250"))
nlat = int(_opt(args, "--lat", "25"))
way = _opt(args, "--way", "unix")
if len(args) != 2 or rounds < 1 or nloop < 1 or nlat < 1 or way not in ("unix", "tcp"):
    sys.exit(__doc__)
bins = [os.path.abspath(a) for a in args]
import cluster  # noqa: E402

results = {}  # figure -> [[per-round values of A], [of B]]


def add(fig, k, value):
    results.setdefault(fig, [[], []])[k].append(value)


clusters, dirs = [], []
try:
    setups = []
    for b in bins:
        cluster.BIN = b
        udir, usock = benchlib.user_socket_dir()
        dirs.append(udir)
        c = benchlib.lab_cluster(["--sync", "full", "--user-socket", usock], secure=True)
        clusters.append(c)
        os.chmod(c.dir, 0o755)
        env = benchlib.client_env(c)
        wait_env = dict(env)
        if way == "unix":
            env = benchlib.usock_env(env, usock)
        stamps = os.path.join(c.dir, "stamps")
        os.mkdir(stamps)
        os.chmod(stamps, 0o777)
        setups.append((b, c, env, wait_env, stamps))
    print(f"A = {bins[0]}\nB = {bins[1]}\n{rounds} rounds over {way}: loop {nloop}, latency {nlat}; "
          f"files under "
          f"{tempfile.gettempdir()} ({benchlib.fs_note(tempfile.gettempdir())})", flush=True)

    def wait_idle(b, c, e):
        subprocess.run([f"{b}/wslq-bench-submit", c.addr, "empty", "250"], env=e, check=True,
                       capture_output=True, timeout=600)

    for r in range(rounds):
        # A then B in odd rounds, B then A in even ones: the build measured second in a
        # round ran up to 12 % slower, whichever it was
        for k in ((0, 1) if r % 2 == 0 else (1, 0)):
            b, c, env, wenv, stamps = setups[k]
            script = (f"for ((i = 0; i < {nloop}; i++)); do "
                      f"{b}/wslq submit -- /bin/true >/dev/null || exit 1; done")
            pids = [c.sched.pid] + [p.pid for p in c.workers.values()]
            c0 = sum(cpu_ns(p) for p in pids)
            t0, u0 = time.monotonic(), os.times()
            subprocess.run(["bash", "-c", script], env=env, check=True)
            u1 = os.times()
            add("submit loop, jobs running (/s)", k, nloop / (time.monotonic() - t0))
            add("the loop's commands' CPU a submit (us)", k,
                (u1.children_user + u1.children_system - u0.children_user -
                 u0.children_system) * 1e6 / nloop)
            wait_idle(b, c, wenv)
            # what the daemons spent a job (the queue polls of wait_idle included, alike)
            add("scheduler + workers CPU a job (us)", k,
                (sum(cpu_ns(p) for p in pids) - c0) / 1e3 / nloop)
            lat = []
            for i in range(nlat):
                path = os.path.join(stamps, f"{r}-{i}")
                t0 = time.time_ns()
                subprocess.run([f"{b}/wslq", "submit", "--", f"{b}/wslq-bench-stamp", path],
                               env=env, check=True, capture_output=True)
                lat.append((wait_stamp(path) - t0) / 1e6)
                time.sleep(0.05)
            add("submit-to-start latency, median (ms)", k, statistics.median(lat))
            wait_idle(b, c, wenv)
        print(f"  round {r + 1}: " + "; ".join(
            f"{fig} A {v[0][-1]:.2f} B {v[1][-1]:.2f}" for fig, v in results.items()), flush=True)
finally:
    for c in clusters:
        c.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)

print(f"\nmedians of {rounds} rounds; ratio = B / A")
print(f"  {'figure':40} {'A':>9} {'B':>9} {'ratio':>7}")
for fig, (a, b) in results.items():
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"  {fig:40} {ma:>9.2f} {mb:>9.2f} {mb / ma:>6.2f}x")
