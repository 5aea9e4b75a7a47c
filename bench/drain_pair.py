#!/usr/bin/env python3
"""The drain of 1,000 trivial jobs and the submit-to-start latency, two builds side by side:
each build runs its own lab-sized loopback cluster (a scheduler and 4 workers x 16 CPU slots,
benchlib.lab_cluster), and every round measures both, one after the other and each first in
turn, so a machine whose load changes weighs on both alike (use an even number of rounds).
Prints the median of the rounds for each figure and the ratio B / A (for jobs/s above 1 is
better, for latency below 1).
    bench/drain_pair.py BIN_A BIN_B [--rounds R] [--jobs N] [--lat L] [--mode curve|insecure]
Figures, per round: `wslq-bench-submit drain N` (default 1,000: first submit to last job ended,
jobs/s), the CPU time the scheduler, the workers and their rank keepers each spent a job of
that drain (all their threads, /proc/PID/task/*/schedstat: what a loaded machine inflates
least), and the median of `wslq-bench-submit latency L` (default 100: submit sent to the job's
first instruction, bench/stamp.c, one job at a time on the idle cluster)."""
import os
import re
import statistics
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../tests/integration"))
sys.path.insert(0, here)
import benchlib  # noqa: E402
from benchlib import cpu_ns, opt as _opt  # noqa: E402

args = sys.argv[1:]
rounds = int(_opt(args, "--rounds", "3"))
jobs = int(_opt(args, "--jobs", "1000"))
nlat = int(_opt(args, "--lat", "100"))
mode = _opt(args, "--mode", "curve")
if len(args) != 2 or rounds < 1 or jobs < 1 or nlat < 1 or mode not in ("curve", "insecure"):
    sys.exit(__doc__)
bins = [os.path.abspath(a) for a in args]
import cluster  # noqa: E402

results = {}  # figure -> [[per-round values of A], [of B]]


def add(fig, k, value):
    results.setdefault(fig, [[], []])[k].append(value)


clusters = []
try:
    setups = []
    for b in bins:
        cluster.BIN = b
        c = benchlib.lab_cluster(["--sync", "full"], secure=mode == "curve")
        clusters.append(c)
        setups.append((b, c, benchlib.client_env(c)))
        # a first few jobs start each worker's rank keeper, whose CPU a round then counts
        subprocess.run([f"{b}/wslq-bench-submit", c.addr, "drain", "20"], capture_output=True,
                       check=True, env=setups[-1][2])
    print(f"A = {bins[0]}\nB = {bins[1]}\n{mode}, {rounds} rounds: drain {jobs}, latency {nlat}; files under "
          f"{tempfile.gettempdir()} ({benchlib.fs_note(tempfile.gettempdir())})", flush=True)
    for r in range(rounds):
        # A then B in odd rounds, B then A in even ones: the build measured second in a
        # round ran up to 12 % slower, whichever it was
        for k in ((0, 1) if r % 2 == 0 else (1, 0)):
            b, c, env = setups[k]
            groups = (("scheduler", [c.sched.pid]),
                      ("workers", [p.pid for p in c.workers.values()]),
                      ("rank keepers", benchlib.keeper_pids(c)))
            c0 = [sum(cpu_ns(p) for p in pids) for _, pids in groups]
            out = subprocess.run([f"{b}/wslq-bench-submit", c.addr, "drain", str(jobs)],
                                 capture_output=True, text=True, check=True, env=env).stdout
            m = re.search(r"drained \d+ jobs in ([\d.]+) s from the first submit: (\d+) jobs/s",
                          out)
            add(f"drain {jobs} jobs (jobs/s)", k, float(m.group(2)))
            cluster.wait_for(lambda: not c.json("queue")["jobs"], 120, "queue to empty")
            # what each daemon spent a job of the drain (its end found by the queue polls)
            for (name, pids), before in zip(groups, c0):
                add(f"{name} CPU a drained job (us)", k,
                    (sum(cpu_ns(p) for p in pids) - before) / 1e3 / jobs)
            stamps = os.path.join(c.dir, f"stamps-{r}")
            out = subprocess.run([f"{b}/wslq-bench-submit", c.addr, "latency", str(nlat), stamps,
                                  f"{b}/wslq-bench-stamp"], capture_output=True, text=True,
                                 check=True, env=env).stdout
            sub = {int(a): int(t) for a, t in (ln.split() for ln in out.split("\n") if ln)}
            with open(stamps) as f:
                start = {int(a): int(t) for a, t in (ln.split() for ln in f.read().split("\n")
                                                     if ln)}
            lat = [(start[j] - sub[j]) / 1e6 for j in sub if j in start]
            add("submit-to-start latency, median (ms)", k, statistics.median(lat))
        print(f"  round {r + 1}: " + "; ".join(
            f"{fig} A {v[0][-1]:.2f} B {v[1][-1]:.2f}" for fig, v in results.items()), flush=True)
finally:
    for c in clusters:
        c.stop()

print(f"\nmedians of {rounds} rounds; ratio = B / A")
print(f"  {'figure':40} {'A':>9} {'B':>9} {'ratio':>7}")
for fig, (a, b) in results.items():
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"  {fig:40} {ma:>9.2f} {mb:>9.2f} {mb / ma:>6.2f}x")
