#!/usr/bin/env python3
"""Faults: a worker killed and restarted while its jobs run keeps their real exit status.

Every rank runs under wslq-rank, which records the rank's wait status in the spool; a new
worker adopts the jobs and reads it. Before, each adopted job ended FAILED "rank -1 ...
code -1" though it exited 0 (its afterok dependents were cancelled), and so did a job that
ended while its worker was down."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))
from cluster import Cluster, check, finish  # noqa: E402

# The worker is down for seconds at a time; a lost timeout well above that (and above a slow
# start under ASan on a busy machine) keeps the node from being declared lost meanwhile.
c = Cluster(workers=[("pc1", 2)], sched_args=["--lost", "20s"])


def restart_worker(down_s, while_down=None):
    w = c.workers["pc1"]
    w.send_signal(signal.SIGKILL)
    w.wait(10)
    if while_down:
        while_down()
    time.sleep(down_s)
    c.start_worker("pc1", 2)


try:
    # Each job runs until its gate file appears (at most 60 s), so however slow the machine,
    # the test sees it running and it ends only when the test says.
    def gated(name, then):
        gate = os.path.join(c.dir, name)
        return gate, f"for i in $(seq 600); do [ -e {gate} ] && break; sleep 0.1; done; {then}"

    gate1, ok_cmd = gated("gate1", "echo done; exit 0")
    _, bad_cmd = gated("gate1", "exit 3")
    ok = c.submit("--wrap", ok_cmd)
    bad = c.submit("--wrap", bad_cmd)
    after = c.submit("--dependency", f"afterok:{ok}", "--wrap", "echo after")
    check(c.wait_state(ok, "RUNNING", 30) and c.wait_state(bad, "RUNNING", 30), "both running")
    restart_worker(0.5)  # they still run: the new worker adopts them
    open(gate1, "w").close()  # and they end under the new worker
    check(c.wait_state(ok, ("COMPLETED", "FAILED", "NODE_FAIL"), 30) and
          c.state(ok) == "COMPLETED",
          f"the adopted job that exited 0 is COMPLETED: {c.state(ok)} {c.job(ok)['reason']!r}")
    check(c.wait_state(bad, ("COMPLETED", "FAILED", "NODE_FAIL"), 30) and
          c.job(bad)["reason"] == "rank 0 on pc1 exited with code 3",
          f"the adopted job that exited 3 says so: {c.job(bad)['reason']!r}")
    check(c.wait_state(after, "COMPLETED", 30), f"its afterok dependent ran: {c.state(after)}")
    check(c.cli("logs", str(ok)).stdout == "done\n", "the adopted job's output is whole")

    # A job that ends while its worker is down: the restarted worker reports how it ended.
    # Its gate opens only once the worker is gone.
    gate, quick_cmd = gated("gate2", "exit 0")
    _, quick_bad_cmd = gated("gate2", "exit 4")
    quick = c.submit("--wrap", quick_cmd)
    quick_bad = c.submit("--wrap", quick_bad_cmd)
    check(c.wait_state(quick, "RUNNING", 30) and c.wait_state(quick_bad, "RUNNING", 30),
          "two short jobs running")
    # down 2 s after the gate opens: longer than the jobs then run, under the lost timeout
    restart_worker(2.0, while_down=lambda: open(gate, "w").close())
    check(c.wait_state(quick, ("COMPLETED", "FAILED", "NODE_FAIL"), 30) and
          c.state(quick) == "COMPLETED",
          f"ended while the worker was down, exit 0: {c.state(quick)} {c.job(quick)['reason']!r}")
    check(c.wait_state(quick_bad, ("COMPLETED", "FAILED", "NODE_FAIL"), 30) and
          c.job(quick_bad)["reason"] == "rank 0 on pc1 exited with code 4",
          f"ended while the worker was down, exit 4: {c.job(quick_bad)['reason']!r}")
finally:
    c.stop()
finish()
