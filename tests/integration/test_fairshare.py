#!/usr/bin/env python3
"""Fair-share and per-user limits with the real programs (one worker, 2 GPUs, four enrolled
users and the admin).

* Bad fair-share settings stop the scheduler at start with exit 2 and a line naming the
  setting (file:line).
* Fair-share: alice's jobs hold both GPUs for a while; then alice queues a sweep, and after
  it bob queues his: when alice cancels her first jobs, bob's start before her sweep (in
  priority order alone, alice's would, being older). `wslq share` (text and --json) shows
  alice's decayed GPU-hours above bob's and her factor below his; `wslq show` and `wslq why`
  give a pending job's effective priority and its parts.
* Limits: carol (max-running-gpus.carol = 1) gets one job running and the other PENDING with
  reason Limit, "user carol runs 1 GPU, the limit is 1 ..."; it starts when she cancels the
  first. The lab-wide max-pending-jobs = 6 refuses dave's 7-task array with one line and stores
  nothing, takes a 6-task held array, then refuses one more job."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, wait_for  # noqa: E402

# ---- bad settings: exit 2 at start, nothing else ----
for line, says in [("share.alice = 0", "share.alice"),
                   ("fairshare-halflife = never", "fairshare-halflife"),
                   ("max-running-gpus = -2", "max-running-gpus"),
                   ("max-age.bob = 1d", "lab-wide"),
                   ("priority-weight = 1e9", "priority-weight")]:
    d = tempfile.mkdtemp(prefix="wslq-fs-conf-")
    conf = os.path.join(d, "wslq.conf")
    with open(conf, "w") as f:
        f.write("[scheduler]\nhttp = off\n" + line + "\n")
    r = subprocess.run([f"{BIN}/wslq-scheduler", "--config", conf, "--state-dir",
                        os.path.join(d, "state"), "--listen", "tcp://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30)
    err = r.stderr.strip()
    check(r.returncode == 2, f"'{line}': exit {r.returncode}, not 2")
    check(says in err and ":3:" in err and len(err.splitlines()) == 1,
          f"'{line}': one line naming it and the line number, got {err!r}")
    check(not os.path.exists(os.path.join(d, "state", "queue.db")),
          f"'{line}': the scheduler made its queue anyway")

conf_dir = tempfile.mkdtemp(prefix="wslq-fs-conf-")
conf = os.path.join(conf_dir, "wslq.conf")
with open(conf, "w") as f:
    f.write("[scheduler]\nhttp = off\nfairshare-halflife = 7d\nmax-pending-jobs = 6\n"
            "max-pending-jobs.alice = 0\nmax-pending-jobs.bob = 0\n"
            "max-running-gpus.carol = 1\nshare.bob = 1\n")

c = Cluster(workers=[("pc1", 2)], sched_args=["--config", conf])
try:
    users = {u: c.enrol(u) for u in ("alice", "bob", "carol", "dave")}

    def run(user, *args):
        return c.cli(*args, env=users[user])

    def submit(user, *args):
        r = run(user, "submit", "--parsable", *args)
        if r.returncode != 0:
            print(f"submit as {user} failed: {r.stderr.strip()}", flush=True)
            return None
        return int(r.stdout.strip())

    def start_ms(jid):
        j = c.job(jid)
        return j["start_ms"] if j and j.get("start_ms") else None

    # ---- fair-share ----
    # alice's first jobs hold both GPUs until both sweeps wait (then they are cancelled)
    first = [submit("alice", "--gpus", "1", "--", "sleep", "300") for _ in range(2)]
    check(all(first), "alice's first jobs accepted")
    for jid in first:
        check(c.wait_state(jid, "RUNNING", 30), f"alice's job {jid} runs")
    time.sleep(1)  # alice's use: the time her jobs run
    sweep_a = submit("alice", "--gpus", "1", "--array", "0-3", "--", "sleep", "1")
    sweep_b = submit("bob", "--gpus", "1", "--array", "0-3", "--", "sleep", "1")
    check(sweep_a and sweep_b and sweep_a < sweep_b, "both sweeps accepted, alice's first")
    a_ids = [sweep_a + i for i in range(4)]
    b_ids = [sweep_b + i for i in range(4)]
    # while they wait: the effective priority in show and why
    shown = c.job(a_ids[0])
    ep = shown.get("effective_priority") if shown else None
    check(ep is not None and 0 <= ep["fairshare_factor"] < 1,
          f"show --json gives alice's pending job its fair-share factor: {ep}")
    eb = (c.job(b_ids[0]) or {}).get("effective_priority")
    check(eb is not None and eb["value"] > ep["value"],
          f"bob's pending job has the higher effective priority: {eb} vs {ep}")
    r = c.cli("show", str(a_ids[0]))
    check(r.returncode == 0 and "Effective:" in r.stdout and "(fair-share)" in r.stdout,
          f"wslq show prints the effective priority: {r.stdout}")
    r = c.cli("why", str(a_ids[0]))
    check(r.returncode == 0 and "effective priority" in r.stdout and "alice" in r.stdout,
          f"wslq why gives the effective priority and alice's use: {r.stdout}")
    r = run("alice", "cancel", *map(str, first))
    check(r.returncode == 0, f"alice cancels her first jobs: {r.stderr}")
    for jid in a_ids + b_ids:
        check(c.wait_state(jid, "COMPLETED", 120), f"sweep job {jid} completes")
    starts_a = [start_ms(j) for j in a_ids]
    starts_b = [start_ms(j) for j in b_ids]
    check(all(starts_a) and all(starts_b), "every sweep job has a start time")
    if all(starts_a) and all(starts_b):
        check(sorted(starts_b)[1] <= sorted(starts_a)[0],
              f"bob's first two jobs start before any of alice's sweep (bob {starts_b}, "
              f"alice {starts_a})")
    sh = c.json("share")
    rows = {u["user"]: u for u in (sh or {}).get("users", [])}
    check("alice" in rows and "bob" in rows, f"wslq share lists alice and bob: {sh}")
    if "alice" in rows and "bob" in rows:
        check(rows["alice"]["gpu_hours"] > rows["bob"]["gpu_hours"] > 0,
              f"alice used more GPU-hours than bob: {rows}")
        check(rows["alice"]["fairshare_factor"] < rows["bob"]["fairshare_factor"],
              f"alice's factor is below bob's: {rows}")
        check(abs(sum(u["norm_usage"] for u in rows.values()) - 1) < 1e-6,
              "the users' parts of all use add up to 1")
        check(sh["halflife_s"] == 7 * 86400, "the configured half-life is reported")
    r = c.cli("share")
    check(r.returncode == 0 and "FACTOR" in r.stdout and "alice" in r.stdout
          and "half-life 7.0 days" in r.stdout, f"wslq share prints a table: {r.stdout}")
    r = c.cli("share", "a", "b")
    check(r.returncode == 2 and r.stderr.count("\n") == 1, "two user names: a usage error")

    # ---- the running limit ----
    c1 = submit("carol", "--gpus", "1", "--", "sleep", "300")
    c2 = submit("carol", "--gpus", "1", "--", "true")
    check(c1 and c2, "carol's jobs accepted")
    check(c.wait_state(c1, "RUNNING", 30), "carol's first job runs")
    j2 = wait_for(lambda: (c.job(c2) or {}).get("wait_reason") == "Limit" and c.job(c2), 20,
                  "carol's second job to wait for the limit")
    check(j2 and j2["state"] == "PENDING" and
          j2["reason"] == "user carol runs 1 GPU, the limit is 1 (this job needs 1)",
          f"carol's second job waits with the limit as reason: {j2}")
    r = c.cli("queue")
    check("Limit" in r.stdout, f"wslq queue shows the reason Limit: {r.stdout}")
    r = run("carol", "cancel", str(c1))
    check(r.returncode == 0, f"carol cancels her first job: {r.stderr}")
    check(c.wait_state(c2, "COMPLETED", 60), "carol's second job runs after her first ends")

    # ---- the pending limit ----
    r = run("dave", "submit", "--hold", "--array", "0-6", "--", "true")
    check(r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and
          "the limit is 6" in r.stderr, f"a 7-task array over the limit is refused: {r.stderr}")
    q = c.json("queue", "--user", "dave")
    check(q is not None and len(q["jobs"]) == 0, f"nothing of it is stored: {q}")
    held = submit("dave", "--hold", "--array", "0-5", "--", "true")
    check(held is not None, "a 6-task array fits the limit")
    r = run("dave", "submit", "--hold", "--", "true")
    check(r.returncode != 0 and
          "user dave has 6 pending jobs, the limit is 6" in r.stderr,
          f"one more job is refused: {r.stderr}")
    sh = c.json("share", "dave")
    d = (sh or {}).get("users", [{}])[0]
    check(d.get("pending") == 6 and d.get("max_pending_jobs") == 6,
          f"wslq share dave: 6 pending, limit 6: {sh}")
    run("dave", "cancel", str(held))
finally:
    c.stop()
finish()
