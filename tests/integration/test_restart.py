#!/usr/bin/env python3
"""kill -9 the scheduler right after a burst of acknowledged submits: after a restart every
acknowledged job is there and runs, and jobs that were running are adopted, not rerun."""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

c = Cluster(workers=[("pc1", 2), ("pc2", 2)])
try:
    runs = os.path.join(c.dir, "runs")
    os.makedirs(runs)
    # One long job that is running when the scheduler dies: it must not be started twice.
    long_id = c.submit("--wrap", f"echo x >> {runs}/long; sleep 3")
    c.wait_state(long_id, "RUNNING")
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: c.submit("--wrap", f"echo $WSLQ_JOB_ID >> {runs}/burst"),
                            range(120)))
    c.kill_scheduler()
    acked = [i for i in ids if i]
    check(len(acked) == 120, f"{len(acked)} of 120 submits acknowledged before the kill")
    c.start_scheduler()
    for jid in acked + [long_id]:
        c.wait_state(jid, ("COMPLETED", "FAILED", "NODE_FAIL"), timeout=60)
    states = {jid: c.state(jid) for jid in acked}
    missing = [j for j, s in states.items() if s is None]
    check(not missing, f"every acknowledged job is in the queue after the restart {missing[:5]}")
    done = [j for j, s in states.items() if s == "COMPLETED"]
    check(len(done) == len(acked), f"every acknowledged job ran: {len(done)} completed")
    with open(f"{runs}/burst") as f:
        ran = [int(x) for x in f.read().split()]
    check(sorted(ran) == sorted(acked), "each burst job ran exactly once")
    check(c.state(long_id) == "COMPLETED", f"the running job was adopted: {c.state(long_id)}")
    with open(f"{runs}/long") as f:
        check(f.read() == "x\n", "the running job was not started a second time")
finally:
    c.stop()
finish()
