#!/usr/bin/env python3
"""Isolation that matches the request, with the real programs.

* CPU binding (cpu_bind = cores, the default): a job's ranks see exactly the CPUs in
  WSLQ_CPUS (/proc/self/status Cpus_allowed_list), as many as it asked for, and `wslq show`
  names them; two jobs on one node at once get disjoint CPUs.
* The memory watch (cgroup = none): a job that touches more memory than its --mem ends
  OUT_OF_MEMORY, with "used N MiB, more than its --mem 128M" in `wslq show`, the queue
  listing and `wslq history --state OUT_OF_MEMORY` (and OOM); a job under its --mem
  completes.
* A real cgroup (cgroup = auto) where this machine lets the worker make one (v2, or v1's
  memory controller): the kernel's OOM killer ends the job over its --mem, and the job ends
  OUT_OF_MEMORY the same way. Skipped, with the reason printed, where no cgroup can be made.
Exit 77 when this machine has fewer than 2 CPUs (nothing to keep apart)."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
# touches every page: bytes filled with 'x', then waits to be ended
HOG = f"{PY} -c \"import time; b = b'x' * (400 << 20); print('allocated', flush=True); time.sleep(120)\""
SMALL = f"{PY} -c \"b = b'x' * (16 << 20); print('small ok', flush=True)\""

if len(os.sched_getaffinity(0)) < 2:
    print("skip: fewer than 2 CPUs here, nothing to keep apart")
    sys.exit(77)


def cpus_of(text):
    out = set()
    for part in text.strip().split(","):
        if "-" in part:
            a, b = part.split("-")
            out |= set(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out


def log_of(c, jid):
    r = c.cli("logs", str(jid))
    return r.stdout if r.returncode == 0 else ""


def field(log, key):
    for line in log.splitlines():
        if line.startswith(key):
            return line[len(key):].strip()
    return None


c = Cluster()
try:
    c.start_worker("pc1", 0, extra=["--cgroup", "none"])
    # --- CPU binding: two jobs on one node at once
    probe = ("echo WSLQ_CPUS=$WSLQ_CPUS; grep Cpus_allowed_list /proc/self/status | "
             "sed 's/.*:[[:space:]]*/ALLOWED=/'; sleep 4")
    a = c.submit("-w", "pc1", "-c", "1", "--wrap", probe)
    b = c.submit("-w", "pc1", "-c", "1", "--wrap", probe)
    check(a and b, "two one-CPU jobs submitted")
    check(c.wait_state(a, "RUNNING") and c.wait_state(b, "RUNNING"), "both run at once")
    shown = wait_for(lambda: (c.job(a) or {}).get("allocs", [{}])[0].get("cpus"), 10,
                     "the CPUs in wslq show")
    check(c.wait_state(a, "COMPLETED") and c.wait_state(b, "COMPLETED"), "both completed")
    la, lb = log_of(c, a), log_of(c, b)
    ca, cb = field(la, "WSLQ_CPUS="), field(lb, "WSLQ_CPUS=")
    check(ca and cb, f"WSLQ_CPUS set in both jobs ({ca!r}, {cb!r})")
    check(ca and field(la, "ALLOWED=") == ca and cb and field(lb, "ALLOWED=") == cb,
          "each job's affinity (Cpus_allowed_list) is its WSLQ_CPUS")
    check(ca and len(cpus_of(ca)) == 1 and cb and len(cpus_of(cb)) == 1,
          "each has the one CPU it asked for")
    check(ca and cb and not (cpus_of(ca) & cpus_of(cb)), f"disjoint CPUs: {ca} and {cb}")
    check(shown == ca, f"wslq show names the CPUs ({shown!r})")
    r = c.cli("show", str(a))
    check("CPUS" in r.stdout and ca in r.stdout, "the text of wslq show has a CPUS column")
    ended = (c.job(a) or {}).get("allocs", [{}])[0].get("cpus")
    check(ended == ca, "the ended job's record keeps its CPUs")
    # two CPUs asked: two CPUs given
    d = c.submit("-w", "pc1", "-c", "2", "--wrap", probe.replace("sleep 4", "true"))
    check(c.wait_state(d, "COMPLETED"), "a two-CPU job completed")
    ld = log_of(c, d)
    cd = field(ld, "WSLQ_CPUS=")
    check(cd and len(cpus_of(cd)) == 2 and field(ld, "ALLOWED=") == cd,
          f"a -c 2 job is bound to 2 CPUs ({cd!r})")

    # --- the memory watch
    hog = c.submit("-w", "pc1", "--mem", "128M", "--wrap", HOG)
    check(c.wait_state(hog, "OUT_OF_MEMORY", timeout=60), "a job over its --mem: OUT_OF_MEMORY")
    j = c.job(hog) or {}
    reason = j.get("reason", "")
    check("out of memory on pc1" in reason and "more than its --mem 128M" in reason
          and "used " in reason, f"the reason says so: {reason!r}")
    r = c.cli("show", str(hog))
    check("OUT_OF_MEMORY" in r.stdout and "more than its --mem 128M" in r.stdout,
          "wslq show prints the state and the reason")
    check("out of memory" in log_of(c, hog), "the job's log says it too")
    r = c.cli("history", "--state", "OUT_OF_MEMORY")
    check(r.returncode == 0 and str(hog) in r.stdout, "wslq history --state OUT_OF_MEMORY lists it")
    r = c.cli("history", "--state", "OOM", "--json")
    check(r.returncode == 0 and str(hog) in r.stdout, "and --state OOM")
    r = c.cli("queue", "--state", "OUT_OF_MEMORY")
    check(r.returncode == 0 and str(hog) in r.stdout and "OUT_OF_MEMORY" in r.stdout,
          "wslq queue --state OUT_OF_MEMORY lists it")
    r = c.cli("history", "--state", "OUT_OF_MEMOR")
    check(r.returncode != 0 and "OUT_OF_MEMORY" in r.stderr, "a misspelt state is refused, "
          "naming OUT_OF_MEMORY")
    small = c.submit("-w", "pc1", "--mem", "256M", "--wrap", SMALL)
    check(c.wait_state(small, "COMPLETED", timeout=60), "a job under its --mem completes")

    # --- a real cgroup, where this machine has one the worker may use
    c.start_worker("pc2", 0, extra=["--cgroup", "auto"])
    wlog = open(os.path.join(c.dir, "worker-pc2.log"), errors="replace").read()
    if "cgroup v2 at" in wlog or "cgroup v1 memory at" in wlog:
        hog2 = c.submit("-w", "pc2", "--mem", "128M", "--wrap", HOG)
        check(c.wait_state(hog2, "OUT_OF_MEMORY", timeout=60),
              "with a real cgroup: OUT_OF_MEMORY (the kernel's OOM killer)")
        reason = (c.job(hog2) or {}).get("reason", "")
        check("out of memory on pc2" in reason and "more than its --mem 128M" in reason,
              f"its reason: {reason!r}")
        # every rank of a two-rank job is in the job's cgroup
        two = c.submit("-w", "pc2", "--mem", "256M", "--ranks-per-node", "2", "--wrap",
                       "grep -c wslq-job- /proc/self/cgroup | sed 's/^/INCG=/'")
        check(c.wait_state(two, "COMPLETED", timeout=60), "a two-rank job with a cgroup completed")
        lt = log_of(c, two)
        check(lt.count("INCG=1") == 2, f"both of its ranks were in the job's cgroup: {lt!r}")
        small2 = c.submit("-w", "pc2", "--mem", "256M", "--wrap", SMALL)
        check(c.wait_state(small2, "COMPLETED", timeout=60),
              "with a real cgroup: a job under its --mem completes")
    else:
        print("note: skipped the real-cgroup part: the worker could make no cgroup here",
              flush=True)
finally:
    c.stop()
finish()
