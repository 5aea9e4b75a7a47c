#!/usr/bin/env python3
"""The PC owner's suspend and evict policies with the real programs; the owner files
(deploy/windows/README.md, version 1) are written by the test as the Windows reporter would.

* pc1 has `owner = suspend` and `owner_user = alice`; its owner is away. A --preemptible job
  and a job that is not preemptible (both CPU-only) run there, and a preemptible job of
  alice's. The owner arrives: the preemptible job's process is stopped (state T in
  /proc/PID/stat), `wslq show`, `queue` and `nodes` say it is suspended; the other two keep
  running. The owner leaves: it is resumed (running again, "resumed" in its history) and
  completes, with the suspended time shown.
* While pc1's owner is present, a new job for pc1 waits (like yield), but alice's runs.
* pc2 has `owner = evict`. A preemptible job runs there; its owner arrives: the job gets
  SIGTERM (its trap logs it), is requeued (attempt 1, "evicted" in its history) and runs
  on pc3; a job that is not preemptible keeps running on pc2."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, free_port, wait_for  # noqa: E402
from test_http import Http  # noqa: E402


def write_owner(path, idle_s):
    text = json.dumps({"version": 1, "time": int(time.time()), "idle_s": idle_s,
                       "fullscreen": False, "gpu_ok": True, "gpu_procs": [],
                       "tdr": {"delay_s": 2, "level": 3}})
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def node(c, name):
    for n in (c.json("nodes") or {"nodes": []})["nodes"]:
        if n["name"] == name:
            return n
    return None


def proc_state(pid_file):
    """The one-letter state of the process whose pid the job wrote, or None."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None


def lines(path):
    try:
        with open(path) as f:
            return f.read().split("\n")
    except FileNotFoundError:
        return []


def reasons(c, jid):
    s = c.show(jid)
    return [e.get("reason", "") for e in s["events"]] if s else []


def node_of(c, jid):
    j = c.job(jid)
    allocs = j.get("allocs") if j else None
    return allocs[0]["node"] if allocs else None


def looper(d, name):
    """A job that writes its shell's pid, logs SIGTERM, and counts until its gate."""
    pid, log, gate = (os.path.join(d, f"{name}.{x}") for x in ("pid", "log", "gate"))
    return pid, log, gate, (
        f"echo $$ > {pid}; trap 'echo term $WSLQ_ATTEMPT >> {log}; exit 0' TERM; "
        f"echo start $WSLQ_ATTEMPT >> {log}; i=0; "
        f"while [ ! -e {gate} ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done")


port = free_port()
c = Cluster(sched_args=["--http", f"127.0.0.1:{port}", "--http-rate", "0"])
try:
    h = Http(port, c.token())
    d = c.dir
    alice = c.enrol("alice")
    f1, f2, f3 = (os.path.join(d, f"owner-pc{i}.json") for i in (1, 2, 3))
    for f in (f1, f2, f3):
        write_owner(f, idle_s=600)  # away
    common = ["--owner-away-min", "1", "--owner-stale-s", "3600"]
    c.start_worker("pc1", 1, extra=["--owner", "suspend", "--owner-user", "alice",
                                    "--owner-file", f1, *common])
    c.start_worker("pc2", 1, extra=["--owner", "evict", "--owner-file", f2, *common])
    wait_for(lambda: (node(c, "pc1") or {}).get("owner_state") == "away", 20, "pc1 away")

    # ---- suspend ----
    s_pid, s_log, s_gate, s_cmd = looper(d, "s")
    n_pid, n_log, n_gate, n_cmd = looper(d, "n")
    a_pid, a_log, a_gate, a_cmd = looper(d, "a")
    s = c.submit("--preemptible", "--gpus", "0", "--nodelist", "pc1", "--wrap", s_cmd)
    n = c.submit("--gpus", "0", "--nodelist", "pc1", "--wrap", n_cmd)
    r = c.cli("submit", "--parsable", "--preemptible", "--gpus", "0", "--nodelist", "pc1",
              "--wrap", a_cmd, env=alice)
    a = int(r.stdout.strip()) if r.returncode == 0 else None
    check(a is not None, f"alice's submit: {r.stderr.strip()}")
    for j, pf in ((s, s_pid), (n, n_pid), (a, a_pid)):
        c.wait_state(j, "RUNNING", timeout=60)
        wait_for(lambda: proc_state(pf) is not None, 30, f"job {j}'s pid")
    check(proc_state(s_pid) in ("S", "R"), f"S runs: {proc_state(s_pid)}")

    write_owner(f1, idle_s=3)  # the owner arrives
    wait_for(lambda: proc_state(s_pid) == "T", 30, "S stopped")
    check(proc_state(s_pid) == "T", f"S's shell is stopped: {proc_state(s_pid)}")
    wait_for(lambda: (c.job(s) or {}).get("suspended"), 20, "S suspended in show")
    js = c.job(s)
    check(js["state"] == "RUNNING" and js.get("suspended") is True,
          f"S is RUNNING, suspended: {js['state']} {js.get('suspended')}")
    check(any(r.startswith("suspended: the owner of pc1 is present") for r in reasons(c, s)),
          f"S's history: {reasons(c, s)}")
    q = c.cli("queue")
    check(any(ln.split()[:1] == [str(s)] and "SUSPENDED" in ln for ln in q.stdout.splitlines()),
          f"wslq queue shows SUSPENDED:\n{q.stdout}")
    nd = c.cli("nodes")
    check(f"pc1 suspended jobs: {s}" in nd.stdout and
          "pc1 owner present, policy suspend (no new jobs)" in nd.stdout and
          "pc1 owner's user alice" in nd.stdout, f"wslq nodes:\n{nd.stdout}")
    check((node(c, "pc1") or {}).get("suspended_jobs") == [s], "nodes --json: suspended_jobs")
    metrics = lambda: h.get("/metrics")[2].decode()  # noqa: E731
    wait_for(lambda: "wslq_jobs_suspended 1\n" in metrics(), 20, "/metrics: one suspended")
    text = metrics()
    check("wslq_jobs_suspended 1\n" in text and "wslq_jobs_suspensions_total 1\n" in text and
          'wslq_node_owner{node="pc1",policy="suspend",state="present"} 1' in text,
          "/metrics: the suspended job and pc1's owner")
    sh = c.cli("show", str(s))
    check("Suspended:" in sh.stdout and "yes, while its PC's owner is present" in sh.stdout,
          f"wslq show:\n{sh.stdout}")
    # the non-preemptible job and alice's own job are left running (the same report of the
    # owner that stopped S decided about them)
    check(proc_state(n_pid) in ("S", "R"), f"non-preemptible N runs: {proc_state(n_pid)}")
    check(proc_state(a_pid) in ("S", "R"), f"alice's job runs: {proc_state(a_pid)}")
    check(not (c.job(n) or {}).get("suspended") and not (c.job(a) or {}).get("suspended"),
          "N and alice's job are not suspended")

    # new jobs: kept from pc1 while its owner is present, alice's start anyway
    w = c.submit("--gpus", "0", "--nodelist", "pc1", "--", "true")
    wait_for(lambda: "owner" in (c.job(w) or {}).get("reason", ""), 20, "W's owner reason")
    check(c.state(w) == "PENDING", f"W waits for pc1's owner: {c.state(w)}")
    r = c.cli("submit", "--parsable", "--gpus", "0", "--nodelist", "pc1", "--", "true",
              env=alice)
    aw = int(r.stdout.strip()) if r.returncode == 0 else None
    c.wait_state(aw, "COMPLETED", timeout=60)
    check(c.state(aw) == "COMPLETED", f"alice's new job ran on her PC: {c.state(aw)}")

    write_owner(f1, idle_s=600)  # the owner leaves
    wait_for(lambda: proc_state(s_pid) in ("S", "R"), 30, "S continued")
    check(proc_state(s_pid) in ("S", "R"), f"S runs again: {proc_state(s_pid)}")
    wait_for(lambda: "resumed" in reasons(c, s), 20, "resumed in S's history")
    check("resumed" in reasons(c, s), f"S's history: {reasons(c, s)}")
    for gate in (s_gate, n_gate, a_gate):
        open(gate, "w").close()
    for j in (s, n, a, w):
        c.wait_state(j, "COMPLETED", timeout=60)
        check(c.state(j) == "COMPLETED", f"job {j} completed: {c.state(j)}")
    js = c.job(s)
    check(js.get("attempt", 0) == 0 and js.get("suspended") is False and
          js.get("suspended_ms", 0) > 0, f"S: attempt {js.get('attempt')}, suspended "
          f"{js.get('suspended_ms')} ms")
    check("term 0" not in lines(s_log), "S was never sent SIGTERM")

    # ---- evict ----
    v_pid, v_log, v_gate, v_cmd = looper(d, "v")
    k_pid, k_log, k_gate, k_cmd = looper(d, "k")
    v = c.submit("--preemptible", "--gpus", "1", "--exclude", "pc1", "--wrap", v_cmd)
    k = c.submit("--gpus", "0", "--nodelist", "pc2", "--wrap", k_cmd)
    c.wait_state(v, "RUNNING", timeout=60)
    c.wait_state(k, "RUNNING", timeout=60)
    check(node_of(c, v) == "pc2", f"V runs on pc2: {node_of(c, v)}")
    c.start_worker("pc3", 1, extra=["--owner-file", f3, *common])
    write_owner(f2, idle_s=3)  # pc2's owner arrives
    wait_for(lambda: "term 0" in lines(v_log), 30, "V's SIGTERM")
    check("term 0" in lines(v_log), f"V got its checkpoint signal: {lines(v_log)}")
    wait_for(lambda: (c.job(v) or {}).get("attempt") == 1 and node_of(c, v) == "pc3", 60,
             "V on pc3")
    jv = c.job(v)
    check(jv.get("attempt") == 1 and node_of(c, v) == "pc3" and jv.get("preemptions") == 1,
          f"V requeued onto pc3: attempt {jv.get('attempt')} on {node_of(c, v)}")
    check(any(r.startswith("evicted: the owner of pc2 is present") for r in reasons(c, v)),
          f"V's history: {reasons(c, v)}")
    wait_for(lambda: "wslq_jobs_evicted_total 1\n" in metrics(), 20, "/metrics: evicted")
    check("wslq_jobs_evicted_total 1\n" in metrics(), "/metrics counts the eviction")
    check(c.state(k) == "RUNNING" and proc_state(k_pid) in ("S", "R"),
          f"non-preemptible K keeps running on pc2: {c.state(k)} {proc_state(k_pid)}")
    open(v_gate, "w").close()
    open(k_gate, "w").close()
    c.wait_state(v, "COMPLETED", timeout=60)
    c.wait_state(k, "COMPLETED", timeout=60)
    check(c.state(v) == "COMPLETED" and c.state(k) == "COMPLETED", "V and K completed")
finally:
    c.stop()
finish()
