#!/usr/bin/env python3
"""The owner's suspend and evict policies across a scheduler restart (kill -9, then started
again on the same state directory), with the real programs.

* pc1 has `owner = suspend`: a --preemptible job there is suspended when its owner comes.
  After the restart it is still RUNNING and suspended, with the same suspended_since_ms (so
  the suspend maximum counts from the real stop), and its process is still stopped. The
  owner leaves: it resumes, its suspended time includes the time across the restart, and it
  completes.
* pc2 has `owner = evict` and a long preempt grace: a --preemptible job that ignores SIGTERM
  is being evicted (SIGTERM sent, waiting out the grace) when the scheduler is killed; the
  owner leaves before it starts again. The restarted scheduler remembers why the job is
  ending: when the worker kills it after the grace it goes back to the queue (attempt 1, one
  preemption, no retry used) instead of FAILED ("killed by signal 9"), and it completes. When
  pc2 re-registers still running it, its kill is sent again (as for every cause: a kill lost
  with the old scheduler is made good); the worker, already stopping it, sends no second
  SIGTERM."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402


def write_owner(path, idle_s):
    text = json.dumps({"version": 1, "time": int(time.time()), "idle_s": idle_s,
                       "fullscreen": False, "gpu_ok": True, "gpu_procs": [],
                       "tdr": {"delay_s": 2, "level": 3}})
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def proc_state(pid_file):
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
            return [ln for ln in f.read().split("\n") if ln]
    except FileNotFoundError:
        return []


c = Cluster(sched_args=["--preempt-grace", "6s"])
try:
    d = c.dir
    f1, f2 = os.path.join(d, "owner-pc1.json"), os.path.join(d, "owner-pc2.json")
    write_owner(f1, 600)
    write_owner(f2, 600)
    common = ["--owner-away-min", "1", "--owner-stale-s", "3600"]
    c.start_worker("pc1", 1, extra=["--owner", "suspend", "--owner-file", f1, *common])
    c.start_worker("pc2", 1, extra=["--owner", "evict", "--owner-file", f2, *common])

    # S on pc1: counts until its gate
    s_pid, s_gate = os.path.join(d, "s.pid"), os.path.join(d, "s.gate")
    s = c.submit("--preemptible", "--gpus", "1", "--nodelist", "pc1", "--wrap",
                 f"echo $$ > {s_pid}; i=0; while [ ! -e {s_gate} ] && [ $i -lt 3000 ]; do "
                 "sleep 0.1; i=$((i+1)); done")
    c.wait_state(s, "RUNNING", 30)
    # E on pc2 (pc1's GPU is S's): ignores SIGTERM (logs it) on its first attempt; the second
    # ends at once
    e_log = os.path.join(d, "e.log")
    e = c.submit("--preemptible", "--gpus", "1", "--wrap", f"[ \"$WSLQ_ATTEMPT\" = 0 ] || exit 0; trap 'echo term >> {e_log}' "
                 "TERM; i=0; while [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done")
    check(s and e, f"submitted S={s} E={e}")
    c.wait_state(e, "RUNNING", 30)
    check((c.job(e).get("allocs") or [{}])[0].get("node") == "pc2", "E runs on pc2")
    wait_for(lambda: os.path.exists(s_pid), 20, "S's pid")

    # the owners come: S is suspended, E gets SIGTERM and its grace
    write_owner(f1, 1)
    write_owner(f2, 1)
    wait_for(lambda: (c.job(s) or {}).get("suspended"), 30, "S suspended")
    wait_for(lambda: proc_state(s_pid) == "T", 20, "S's process stopped")
    since = c.job(s).get("suspended_since_ms")
    check(since and since > 0 and proc_state(s_pid) == "T", f"S suspended since {since}")
    wait_for(lambda: lines(e_log), 20, "E's SIGTERM")
    check(lines(e_log) == ["term"] and c.state(e) == "RUNNING",
          f"E is being evicted: {lines(e_log)} {c.state(e)}")

    # kill -9 and start again while both are under way
    slog_path = os.path.join(c.dir, "scheduler.log")
    slog_at = os.path.getsize(slog_path)
    c.kill_scheduler()
    restart_ms = int(time.time() * 1000)
    # pc2's owner leaves meanwhile: the restarted scheduler has no reason of its own to evict E,
    # only what it kept
    write_owner(f2, 600)
    c.start_scheduler()

    j = c.job(s)
    check(j and j["state"] == "RUNNING" and j.get("suspended") and
          j.get("suspended_since_ms") == since,
          f"S after the restart: {j and (j['state'], j.get('suspended'), j.get('suspended_since_ms'))}")
    time.sleep(1)  # the workers re-register and report their owners again
    check(proc_state(s_pid) == "T" and (c.job(s) or {}).get("suspended"),
          f"S still stopped after the workers re-registered: {proc_state(s_pid)}")

    # E: killed after its grace by the worker; the restarted scheduler requeues it
    wait_for(lambda: (c.job(e) or {}).get("attempt") == 1, 60, "E requeued")
    j = c.job(e)
    check(j["attempt"] == 1 and j.get("preemptions") == 1 and j["state"] != "FAILED",
          f"E requeued, not failed: {j['state']} attempt={j['attempt']} "
          f"preemptions={j.get('preemptions')} '{j.get('reason')}'")
    ev = [x.get("reason", "") for x in c.show(e)["events"]]
    check(any(r.startswith("requeued: evicted: the owner of pc2 is present") for r in ev),
          f"E's history: {ev}")

    # pc1's owner leaves: S resumes; E runs again and completes
    write_owner(f1, 600)
    wait_for(lambda: not (c.job(s) or {}).get("suspended"), 30, "S resumed")
    j = c.job(s)
    check(not j.get("suspended") and j.get("suspended_ms", 0) >= restart_ms - since,
          f"S's suspended time spans the restart: {j.get('suspended_ms')} >= "
          f"{restart_ms - since}")
    wait_for(lambda: proc_state(s_pid) in ("S", "R"), 20, "S's process continues")
    open(s_gate, "w").close()
    c.wait_state(s, "COMPLETED", 60)
    check(c.state(s) == "COMPLETED", f"S completed: {c.state(s)}")
    c.wait_state(e, "COMPLETED", 60)
    j = c.job(e)
    check(j["state"] == "COMPLETED" and j["attempt"] == 1, f"E completed: {j['state']}")
    check(lines(e_log) == ["term"], f"one SIGTERM only: {lines(e_log)}")
    # whether pc2 re-registered still running E depends on timing (its grace is 6 s): the log
    # says; if it did, E's kill went to it again, and the SIGTERM above is still the only one
    with open(slog_path, errors="replace") as f:
        f.seek(slog_at)
        since = f.read()
    if any("node registered name=pc2 " in ln and "running=1" in ln for ln in since.splitlines()):
        check(f"kill sent again to a re-registered node job={e} node=pc2 cause=preempted"
              in since, "the restarted scheduler sent E's kill again to pc2")
    else:
        print("note: E had ended before pc2 re-registered", flush=True)
finally:
    c.stop()
finish()
