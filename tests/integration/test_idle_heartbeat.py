#!/usr/bin/env python3
"""An idle worker heartbeats at idle_heartbeat_ms and says so; the scheduler stretches its
torpid threshold to that interval (never torpid while the heartbeats come), a running job
brings the worker back to heartbeat_ms, and a stopped idle worker is still torpid, then lost,
within the configured --lost; an interval over half of --lost is warned about once and
clamped; a worker left to its default idles as slowly as the scheduler takes, half its --lost,
at most 5 x heartbeat_ms (DESIGN.md §7.1)."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
# the scheduler logs each heartbeat it receives (name, running, next_ms) under WSLQ_DEBUG=sched
os.environ["WSLQ_DEBUG"] = "sched"
from cluster import Cluster, check, finish, wait_for  # noqa: E402

HB = re.compile(r"heartbeat name=pc1 running=(\d+) next_ms=(\d+)")


def log_text(c):
    with open(os.path.join(c.dir, "scheduler.log"), errors="replace") as f:
        return f.read()


def beats_since(c, offset):
    """(running, next_ms) of each of pc1's heartbeats logged after offset."""
    return [(int(a), int(b)) for a, b in HB.findall(log_text(c)[offset:])]


# --torpid 1s --lost 3s (the fixture's); the worker beats every 200 ms, every 1500 ms idle
c = Cluster()
try:
    w = c.start_worker("pc1", 1, extra=["--idle-heartbeat-ms", "1500"])
    # idle: the heartbeats announce 1500 ms
    check(wait_for(lambda: any(n == 1500 for _, n in beats_since(c, 0)), 15,
                   "an idle heartbeat announcing 1500 ms"),
          "an idle heartbeat announcing 1500 ms")
    start = len(log_text(c))
    time.sleep(4.5)  # three idle intervals; 22 heartbeats at 200 ms
    beats = beats_since(c, start)
    text = log_text(c)[start:]
    check(beats and all(b == (0, 1500) for b in beats), f"idle heartbeats announce 1500: {beats}")
    check(1 <= len(beats) <= 6, f"idle heartbeats ~1.5 s apart: {len(beats)} in 4.5 s")
    check("node torpid name=pc1" not in text, "the idle node never went torpid (--torpid 1s)")
    check(c.node_state("pc1") == "idle", f"pc1 is idle: {c.node_state('pc1')}")
    check("heartbeat interval too long" not in log_text(c), "1500 ms is within half of --lost")

    # a running job: back to 200 ms at once
    jid = c.submit("--gpus", "1", "--wrap", "sleep 4")
    check(c.wait_state(jid, "RUNNING"), f"job running: {c.state(jid)}")
    start = len(log_text(c))
    check(wait_for(lambda: sum(1 for r, _ in beats_since(c, start) if r == 1) >= 3, 15,
                   "three heartbeats while the job runs"),
          "three heartbeats while the job runs")
    busy = [b for b in beats_since(c, start) if b[0] == 1]
    check(all(n == 200 for _, n in busy), f"busy heartbeats announce 200: {busy}")
    check(c.wait_state(jid, "COMPLETED"), f"job completed: {c.state(jid)}")
    # idle again afterwards
    start = len(log_text(c))
    check(wait_for(lambda: any(b == (0, 1500) for b in beats_since(c, start)), 15,
                   "idle heartbeats again after the job"),
          "idle heartbeats again after the job")

    # a stopped idle worker (a PC asleep): torpid, then lost, within --lost
    start = len(log_text(c))
    w.send_signal(signal.SIGSTOP)
    try:
        check(wait_for(lambda: c.node_state("pc1") == "lost", 15, "pc1 lost"),
              "pc1 lost")
        text = log_text(c)[start:]
        torpid = text.find("node torpid name=pc1")
        lost = re.search(r"node lost name=pc1 silent_ms=(\d+)", text)
        check(torpid >= 0 and lost is not None and torpid < lost.start(),
              "torpid first, then lost")
        check(lost is not None and int(lost.group(1)) >= 3000,
              f"lost after --lost: {lost.group(0) if lost else None}")
    finally:
        w.send_signal(signal.SIGCONT)
    # it comes back: Reregister, idle heartbeats again
    check(wait_for(lambda: c.node_state("pc1") == "idle", 20, "pc1 back after SIGCONT"),
          "pc1 back after SIGCONT")

    # a SIGKILLed idle worker is lost too
    start = len(log_text(c))
    w.send_signal(signal.SIGKILL)
    w.wait(5)
    check(wait_for(lambda: c.node_state("pc1") == "lost", 15, "pc1 lost after SIGKILL"),
          "pc1 lost after SIGKILL")
    check("node lost name=pc1" in log_text(c)[start:], "the scheduler logged the loss")

    # an interval over half of --lost: one warning, taken as 1500 ms (torpid after 2250)
    start = len(log_text(c))
    c.start_worker("pc2", 1, extra=["--idle-heartbeat-ms", "2000"])
    check(wait_for(lambda: len(re.findall(r"heartbeat name=pc2 running=0 next_ms=2000",
                                          log_text(c)[start:])) >= 3, 20,
                   "three idle heartbeats of pc2 announcing 2000 ms"),
          "three idle heartbeats of pc2 announcing 2000 ms")
    text = log_text(c)[start:]
    warns = re.findall(r"node heartbeat interval too long name=pc2 next_ms=2000 lost_ms=3000",
                       text)
    check(len(warns) == 1, f"one warning for pc2's interval: {len(warns)}")
    check("node torpid name=pc2" not in text, "pc2 stays alive at 2000 ms")

    # no --idle-heartbeat-ms: the RegisterReply's half of --lost (1500 ms) caps 5 x 200 ms,
    # so pc3 idles at 1000 ms; no warning, never torpid
    start = len(log_text(c))
    c.start_worker("pc3", 1)
    check(wait_for(lambda: len(re.findall(r"heartbeat name=pc3 running=0 next_ms=1000",
                                          log_text(c)[start:])) >= 3, 20,
                   "three idle heartbeats of pc3 announcing 1000 ms"),
          "three idle heartbeats of pc3 announcing 1000 ms")
    text = log_text(c)[start:]
    other = [n for n in re.findall(r"heartbeat name=pc3 running=0 next_ms=(\d+)", text)
             if n not in ("200", "1000")]
    check(not other, f"pc3's idle heartbeats announce 1000 ms alone: {other}")
    check("heartbeat interval too long name=pc3" not in text, "no warning for pc3")
    check("node torpid name=pc3" not in text, "pc3 stays alive at 1000 ms")
finally:
    c.stop()
finish()
