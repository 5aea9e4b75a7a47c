#!/usr/bin/env python3
"""wslq submit --file: one job per line of a file (or standard input), the other options
applied to every one, over CURVE TCP and over the scheduler host's user socket.

* A file of 300 lines (blank lines and # comments among them) queues one job a line, in
  order: ids printed one a line, each job's argv is /bin/sh -c LINE with the options' GPUs
  and name, and every job runs its own line (its log).
* --hold applies to all; --json prints {"jobs": [{"line", "job_id"}...]}; '-' reads stdin.
* Every line is checked before anything is sent: a line over the argument limit, an empty
  file, a file of comments only, a missing file, a NUL byte, --file with a command, --wrap or
  --array: one line naming the file (and line), exit 2, the queue unchanged.
* A line the scheduler refuses (a dependency on a job that does not exist) is named with its
  line on stderr, the others are queued, exit 1.
* The jobs acknowledged survive a scheduler kill -9."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish  # noqa: E402

c = Cluster(workers=[("pc1", 4)], user_socket=True)
try:
    out = os.path.join(c.dir, "out")
    os.makedirs(out)
    os.chmod(out, 0o777)  # jobs run as the worker's account

    def write(name, text, mode="w"):
        p = os.path.join(c.dir, name)
        with open(p, mode) as f:
            f.write(text)
        return p

    def count():
        q = c.json("queue", "--all")
        return len(q["jobs"]) if q else -1

    # ---- 300 jobs from one file, held ----
    lines = ["# a sweep", ""]
    for i in range(300):
        lines.append(f"echo line {i} > {out}/{i}.out")
        if i % 50 == 0:
            lines += ["   ", "  # a comment after blanks"]
    path = write("jobs.txt", "\r\n".join(lines[:5]) + "\n" + "\n".join(lines[5:]) + "\n")
    r = c.cli("submit", "--file", path, "--hold", "-J", "sweep", "--gpus", "1", timeout=120)
    ids = [int(ln.split()[-1]) for ln in r.stdout.splitlines() if ln.startswith("Submitted job")]
    check(r.returncode == 0 and len(ids) == 300 and r.stderr == "",
          f"300 jobs queued from the file: rc {r.returncode}, {len(ids)} ids, {r.stderr[:300]!r}")
    check(ids == list(range(ids[0], ids[0] + 300)), "one id a line, in the file's order")
    j = c.job(ids[7])
    check(j is not None and j["state"] == "PENDING" and j["spec"]["argv"] ==
          ["/bin/sh", "-c", f"echo line 7 > {out}/7.out"] and j["spec"]["name"] == "sweep" and
          j["spec"]["gpus_per_node"] == 1,
          f"each job is its line through /bin/sh -c, with the options: {j and j['spec']}")
    check(all(c.state(i) == "PENDING" for i in (ids[0], ids[150], ids[299])),
          "--hold applies to every job")

    # acknowledged: they survive a kill -9
    c.kill_scheduler()
    c.start_scheduler()
    check(c.state(ids[299]) == "PENDING" and c.state(ids[0]) == "PENDING",
          "the file's jobs survive a scheduler kill -9")
    r = c.cli("release", *map(str, ids))
    check(r.returncode == 0, f"all released: {r.stderr.strip()}")
    for i in (ids[0], ids[123], ids[299]):
        c.wait_state(i, ("COMPLETED", "FAILED"), timeout=120)
    for k, i in ((0, ids[0]), (123, ids[123]), (299, ids[299])):
        check(c.state(i) == "COMPLETED", f"job {i} (line of {k}) completed")
        with open(f"{out}/{k}.out") as f:
            check(f.read() == f"line {k}\n", f"job {i} ran its own line")

    # ---- the user socket, --json, stdin ----
    env = c.env(WSLQ_SCHEDULER=f"unix:{c.user_sock}")
    r = subprocess.run([f"{BIN}/wslq", "submit", "--file", "-", "--hold", "--json"],
                       input="true\n\n# x\nsleep 1\n", capture_output=True, text=True,
                       timeout=30, env=env)
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    jobs = doc.get("jobs", [])
    check(r.returncode == 0 and [x.get("line") for x in jobs] == [1, 4] and
          all(isinstance(x.get("job_id"), int) for x in jobs),
          f"--file - over the user socket with --json: {r.returncode} {r.stdout!r} {r.stderr!r}")

    # ---- every line is checked before anything is sent ----
    before = count()
    long = write("long.txt", "true\n" + "echo " + "x" * 5000 + "\ntrue\n")
    bad = [
        (["--file", long], f"{long}:2: "),
        (["--file", write("empty.txt", "")], "no job in it"),
        (["--file", write("comments.txt", "# a\n\n   \n")], "no job in it"),
        (["--file", os.path.join(c.dir, "missing.txt")], "cannot open: No such file"),
        (["--file", write("nul.txt", "true\0\n", "w")], "NUL byte"),
        (["--file", path, "--", "true"], "--file and a command cannot be used together"),
        (["--file", path, "--wrap", "true"], "--file and --wrap cannot be used together"),
        (["--file", path, "--array", "0-3"], "--file and --array cannot be used together"),
        (["--file", ""], "--file: empty path"),
    ]
    for args, want in bad:
        r = c.cli("submit", *args)
        check(r.returncode == 2 and want in r.stderr and r.stderr.count("\n") == 1 and
              r.stdout == "", f"submit {' '.join(args)[:60]}: one line, exit 2: "
              f"{r.returncode} {r.stderr!r}")
    check(count() == before, f"no refused file queued anything: {before} -> {count()}")

    # ---- a line the scheduler refuses: named, the rest queued, exit 1 ----
    mixed = write("mixed.txt", "true\ntrue\n")
    r = c.cli("submit", "--file", mixed, "--hold", "-d", "afterok:999999")
    check(r.returncode == 1 and r.stderr.startswith(f"wslq: {mixed}:1: ") and
          f"{mixed}:2: " in r.stderr and "0 of 2 jobs queued, 2 refused" in r.stderr,
          f"refused lines are named with the file and line: {r.returncode} {r.stderr!r}")
    check(count() == before, "the refused jobs are not queued")
finally:
    c.stop()
finish()
