#!/usr/bin/env python3
"""Faults: the scheduler SIGKILLed again and again in the middle of a burst of submissions
loses no acknowledged job and runs none twice.

Four submitters loop `wslq submit` while the scheduler is killed with SIGKILL 6 times and
restarted each time; jobs run meanwhile on two workers and append their id to a file. In the
end every acknowledged id is in the queue exactly once, COMPLETED, and in the file exactly
once. Submissions that were not acknowledged (the scheduler died first) may or may not have
been stored; they must not run twice either."""
import collections
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

KILLS = 6
PER_ROUND = 10
c = Cluster(workers=[("pc1", 0), ("pc2", 0)])
try:
    ran = os.path.join(c.dir, "ran")
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def submitter():
        while not stop.is_set():
            r = c.cli("submit", "--parsable", "--wrap", f"echo $WSLQ_JOB_ID >> {ran}",
                      timeout=20, env={"WSLQ_TIMEOUT": "3s"})
            if r.returncode == 0 and r.stdout.strip().isdigit():
                with lock:
                    acked.append(int(r.stdout.strip()))

    threads = [threading.Thread(target=submitter) for _ in range(4)]
    for t in threads:
        t.start()
    # Each kill comes once the restarted scheduler has acknowledged PER_ROUND more submits
    # (bounded in time), so every kill lands mid-burst however slow the machine is, and each
    # restart must take submissions again.
    def acked_more(since):
        return lambda: len(acked) >= since + PER_ROUND

    rounds_ok = 0
    for k in range(KILLS + 1):
        if wait_for(acked_more(len(acked)), 60, f"{PER_ROUND} submits acknowledged"):
            rounds_ok += 1
        if k < KILLS:
            c.kill_scheduler()  # SIGKILL, mid-burst
            c.start_scheduler()
    stop.set()
    for t in threads:
        t.join(60)
    check(rounds_ok == KILLS + 1,
          f"before each of the {KILLS} kills and after the last restart, {PER_ROUND} submits "
          f"were acknowledged ({rounds_ok} of {KILLS + 1} rounds; {len(acked)} in all)")
    check(len(set(acked)) == len(acked), "no id was acknowledged twice")

    def all_done():
        doc = c.json("queue") or {}
        return doc.get("jobs") == [] and doc
    check(bool(wait_for(all_done, 120, "every job to end")), "every job ended")
    doc = c.json("queue", "--all", "--limit", "100000") or {"jobs": []}
    state = {j["id"]: j["state"] for j in doc["jobs"]}
    missing = [i for i in acked if i not in state]
    check(not missing, f"every acknowledged job is in the queue ({len(missing)} missing)")
    not_done = [i for i in acked if state.get(i) != "COMPLETED"]
    check(not not_done, f"every acknowledged job COMPLETED ({not_done[:5]})")
    counts = collections.Counter(int(x) for x in open(ran).read().split())
    twice = [i for i, n in counts.items() if n > 1]
    check(not twice, f"no job ran twice ({twice[:5]})")
    never = [i for i in acked if counts.get(i, 0) == 0]
    check(not never, f"every acknowledged job ran ({never[:5]})")
    print(f"counts: acknowledged {len(acked)}, stored {len(state)}, ran {len(counts)}, "
          f"scheduler kills {KILLS}", flush=True)
finally:
    c.stop()
finish()
