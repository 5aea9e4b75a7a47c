#!/usr/bin/env python3
"""kill -9 a worker: its jobs end NODE_FAIL, or are requeued and run elsewhere when the job
asked for retries."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish  # noqa: E402

c = Cluster(workers=[("pc1", 2)])
try:
    once = c.submit("--gpus", "1", "--name", "once", "--wrap", "sleep 60")
    retry = c.submit("--gpus", "1", "--name", "retry", "--retries", "1", "--wrap",
                     'if [ "$WSLQ_ATTEMPT" = 0 ]; then sleep 60; fi; echo attempt $WSLQ_ATTEMPT')
    check(c.wait_state(once, "RUNNING") and c.wait_state(retry, "RUNNING"), "both running on pc1")
    c.start_worker("pc2", 2)
    c.workers["pc1"].send_signal(signal.SIGKILL)
    c.workers["pc1"].wait(5)
    check(c.wait_state(once, "NODE_FAIL", 20), f"job without retries: {c.state(once)}")
    check(c.wait_state(retry, "COMPLETED", 30), f"job with retries: {c.state(retry)}")
    j = c.job(retry)
    check(j["attempt"] == 1 and j["allocs"][0]["node"] == "pc2", "requeued onto pc2 as attempt 1")
    ev = [(e["state"], e["reason"]) for e in c.show(retry)["events"]]
    check(any(s == "PENDING" and "requeued" in r for s, r in ev), f"requeue recorded: {ev}")
    check(c.node_state("pc1") == "lost", f"pc1 is lost: {c.node_state('pc1')}")
finally:
    c.stop()
finish()
