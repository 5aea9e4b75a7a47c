#!/usr/bin/env python3
"""A gang's life beyond the happy path: cancel stops every rank on every node; a lost node
requeues the whole gang with its attempt number raised (WSLQ_ATTEMPT,
TORCHELASTIC_RESTART_COUNT); ranks that never start within the start timeout tear the job
down."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


# Torpid after 3 s: the frozen worker below must still look alive when the job is placed.
c = Cluster(sched_args=["--start-timeout", "2s", "--torpid", "3s", "--lost", "6s"])
for name in ("pc1", "pc2", "pc3"):
    c.start_worker(name, 1, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
try:
    # Cancel: every rank on every node goes.
    pids = os.path.join(c.dir, "pids")
    os.makedirs(pids)
    jid = c.submit("--nodes", "3", "--gpus-per-node", "1", "--wrap",
                   f"echo $$ > {pids}/$RANK; exec sleep 60")
    c.wait_state(jid, "RUNNING")
    wait_for(lambda: len(os.listdir(pids)) == 3, 10, "all ranks up")
    ranks = [int(open(os.path.join(pids, f)).read()) for f in os.listdir(pids)]
    r = c.cli("cancel", str(jid))
    check(r.returncode == 0, "cancel of a 3-node job answered")
    check(c.wait_state(jid, "CANCELLED", 20), "3-node job CANCELLED")
    check(wait_for(lambda: not any(alive(p) for p in ranks), 5, "ranks gone"),
          "every rank on every node is gone")

    # Requeue the whole gang after a node is lost; the attempt shows in the environment.
    att = os.path.join(c.dir, "attempts")
    os.makedirs(att)
    jid = c.submit("--nodes", "2", "--gpus-per-node", "1", "--retries", "1", "--wrap",
                   f'echo "$WSLQ_ATTEMPT $TORCHELASTIC_RESTART_COUNT" > {att}/$WSLQ_ATTEMPT.$RANK; '
                   '[ "$WSLQ_ATTEMPT" = 0 ] && exec sleep 60; true')
    c.wait_state(jid, "RUNNING")
    first = [a["node"] for a in c.job(jid)["allocs"]]
    t_lost = time.monotonic()
    c.workers[first[1]].send_signal(signal.SIGKILL)
    c.workers[first[1]].wait(5)
    check(c.wait_state(jid, "COMPLETED", 40), f"requeued gang completed: {c.state(jid)}")
    j = c.job(jid)
    second = [a["node"] for a in j["allocs"]]
    check(j["attempt"] == 1 and first[1] not in second,
          f"attempt 1 ran on live nodes {second} (lost {first[1]})")
    check(sorted(os.listdir(att)) == ["0.0", "0.1", "1.0", "1.1"], "both attempts ran both ranks")
    check(open(os.path.join(att, "1.1")).read().split() == ["1", "1"],
          "WSLQ_ATTEMPT and TORCHELASTIC_RESTART_COUNT are 1 on the retry")
    ev = c.show(jid)["events"]
    requeued = [e for e in ev if e["state"] == "PENDING" and "requeued" in e["reason"]]
    started = [e for e in ev if e["state"] == "STARTING" and e["reason"] == "placed"]
    check(len(requeued) == 1 and len(started) == 2, "one requeue, two placements")
    # the backoff runs on the monotonic clock and ends on time (no tick to round it up);
    # the events carry wall-clock milliseconds read apart from it: a few ms either way
    waited = started[1]["ts_ms"] - requeued[0]["ts_ms"]
    check(waited >= 990, f"the retry waited out its backoff (1 s): {waited} ms")
    print(f"lost-to-completed: {time.monotonic() - t_lost:.1f} s")

    # A rank that never starts: the job is torn down after the start timeout.
    c.start_worker("pc4", 1, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
    frozen = c.workers["pc4"]
    frozen.send_signal(signal.SIGSTOP)
    try:
        jid = c.submit("--nodes", "3", "--gpus-per-node", "1", "--wrap", "sleep 30")
        check(c.wait_state(jid, ("FAILED", "NODE_FAIL"), 20), f"job torn down: {c.state(jid)}")
        ev = c.show(jid)["events"]
        check(any("not every rank started within 2 s" in e["reason"] for e in ev),
              "the start timeout is recorded")
    finally:
        frozen.send_signal(signal.SIGCONT)
finally:
    c.stop()
finish()
