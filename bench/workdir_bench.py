#!/usr/bin/env python3
"""What `wslq submit --workdir` costs, on one loopback cluster (a scheduler and one worker).
Run from the repository root:
    python3 bench/workdir_bench.py [BIN] [ROUNDS] [MIB]
The directory: MIB MiB of incompressible files (4 MiB each) and 500 small text files. Each
round changes one small file, so the first submit of a round packs and uploads a new
snapshot. Figures (medians over ROUNDS):
* `wslq submit --hold -- true` (no snapshot), for comparison;
* `wslq submit --hold --workdir DIR`, a new snapshot: pack, hash, upload in 4 MiB chunks;
* the same again: pack and hash only (the scheduler has it, nothing is sent);
* submit to COMPLETED of a one-rank job, without and with the (stored) snapshot: the CLI
  still packs and hashes, the worker fetches it in chunks and unpacks it before the rank
  starts; polled every 20 ms."""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import benchlib

cluster = benchlib.load_cluster(sys.argv[1] if len(sys.argv) > 1 else None)
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
MIB = int(sys.argv[3]) if len(sys.argv) > 3 else 64

tmp = tempfile.mkdtemp(prefix="wslq-wdb-")
proj = os.path.join(tmp, "proj")
os.makedirs(os.path.join(proj, "src"))
for i in range(MIB // 4):
    with open(os.path.join(proj, f"blob{i}.bin"), "wb") as f:
        f.write(os.urandom(4 << 20))
for i in range(500):
    with open(os.path.join(proj, "src", f"m{i}.py"), "w") as f:
        f.write(f"# module {i}\n" + "x = 1\n" * 50)
cfg = os.path.join(tmp, "sched.conf")
with open(cfg, "w") as f:
    f.write(f"[scheduler]\nhttp = off\nworkdir_max_mb = {MIB + 16}\n")


def timed(c, *args):
    t = time.perf_counter()
    r = c.cli("submit", "--parsable", *args)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return dt, r.stdout.strip()


def to_end(c, *args):
    t = time.perf_counter()
    r = c.cli("submit", "--parsable", *args, "--", "true")
    jid = r.stdout.strip()
    while True:
        s = c.cli("show", jid, "--json")
        if s.returncode == 0 and json.loads(s.stdout)["job"]["state"] in ("COMPLETED", "FAILED"):
            return time.perf_counter() - t
        time.sleep(0.02)


c = cluster.Cluster(workers=[("pc1", 0)], sched_args=["--config", cfg])
rows = {k: [] for k in ("plain", "new", "again", "end_plain", "end_workdir")}
try:
    for r in range(ROUNDS):
        with open(os.path.join(proj, "src", "m0.py"), "a") as f:
            f.write(f"round = {r}\n")
        rows["plain"].append(timed(c, "--hold", "--", "true")[0])
        rows["new"].append(timed(c, "--hold", "--workdir", proj, "--", "true")[0])
        rows["again"].append(timed(c, "--hold", "--workdir", proj, "--", "true")[0])
        rows["end_plain"].append(to_end(c))
        rows["end_workdir"].append(to_end(c, "--workdir", proj))
finally:
    c.stop()
    shutil.rmtree(tmp, ignore_errors=True)

med = {k: statistics.median(v) for k, v in rows.items()}
print(f"directory: {MIB} MiB incompressible + 500 small files; {ROUNDS} rounds; medians")
print(f"  submit, no snapshot            {med['plain'] * 1000:8.0f} ms")
print(f"  submit --workdir, new snapshot {med['new'] * 1000:8.0f} ms  "
      f"({MIB / med['new']:.0f} MiB/s end to end)")
print(f"  submit --workdir, stored       {med['again'] * 1000:8.0f} ms  "
      f"({med['again'] / med['new']:.2f} x the new one)")
print(f"  submit to COMPLETED, plain     {med['end_plain'] * 1000:8.0f} ms")
fetch = med['end_workdir'] - med['end_plain'] - med['again'] + med['plain']
print(f"  submit to COMPLETED, --workdir {med['end_workdir'] * 1000:8.0f} ms  "
      f"(about {fetch * 1000:.0f} ms of it the worker's fetch and unpack: less the plain "
      f"job and the stored submit's packing)")
