#!/usr/bin/env python3
"""The rank keeper (worker/keeper.h): one `wslq-rank --keeper` per worker is the parent of every
rank. It outlives a worker killed with -9, which finds it again after its restart (the running
job's exit status still reported, later jobs started by the same keeper; a rank that ends while
its worker is stopped, the worker then killed, still reported); a keeper killed with
-9 ends its running job with a clear reason and the worker starts another; a program that does
not exist still ends 127 with the same reason; bad messages on its socket are refused."""
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, keeper_pid, wait_for  # noqa: E402


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def parent_of_tagged(tag):
    """(pid, ppid) of the live process whose command line holds tag, or None."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if tag.encode() not in f.read():
                    continue
            with open(f"/proc/{d}/stat") as f:
                return int(d), int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    return None


def kill_worker(c, name):
    c.workers[name].send_signal(signal.SIGKILL)
    c.workers[name].wait(10)


def restarted_reports(c, jid, code, what):
    """pc1 started again (after kill_worker): job jid then ends FAILED with exit code code."""
    c.start_worker("pc1", 2)
    c.wait_state(jid, ("COMPLETED", "FAILED", "NODE_FAIL"), timeout=60)
    j = c.job(jid)
    check(j["state"] == "FAILED" and j.get("exit_code") == code,
          f"{what}: {j['state']} {j.get('exit_code')} {j.get('reason')}")


c = Cluster(workers=[("pc1", 2)])
state = os.path.join(c.dir, "w-pc1")
try:
    # ---- the keeper is the rank's parent: one exec per rank ----
    tag = f"keeper-tag-{os.getpid()}"
    a = c.submit("--wrap", f"sleep 3; exit 7 # {tag}")
    c.wait_state(a, "RUNNING")
    k1 = wait_for(lambda: keeper_pid(state), 10, "the rank keeper")
    check(k1 is not None, "a rank keeper listens on the worker's socket")
    sock = os.path.join(state, "rank-keeper.sock")
    st = os.stat(sock)
    check(st.st_uid == os.geteuid() and (st.st_mode & 0o777) == 0o600,
          f"the keeper's socket is the worker's, 0600: {oct(st.st_mode)}")
    pp = wait_for(lambda: parent_of_tagged(tag), 10, "the rank's process")
    check(pp is not None and pp[1] == k1, f"the rank's parent is the keeper {k1}: {pp}")

    # ---- the worker killed with -9: the keeper stays, the status reaches the new worker ----
    kill_worker(c, "pc1")
    check(alive(k1), "the keeper outlives the worker killed with -9")
    restarted_reports(c, a, 7, "the running job's exit 7 reported after the restart")

    # ---- the worker stopped while a rank ends, then killed: the end the keeper told it of was
    # never handled; the restarted worker finds it in the status file and reports the exit
    # code (with another rank alive all along, or the keeper, left with no worker and no rank,
    # would exit and the next worker start a new one) ----
    hold = c.submit("--wrap", "sleep 60")
    h = c.submit("--wrap", "sleep 1; exit 5")
    c.wait_state(hold, "RUNNING")
    c.wait_state(h, "RUNNING")
    c.workers["pc1"].send_signal(signal.SIGSTOP)
    time.sleep(1.5)  # the rank ends meanwhile; its end waits in the stopped worker's socket
    kill_worker(c, "pc1")
    restarted_reports(c, h, 5, "the end the stopped worker missed is reported after the restart")
    c.cli("cancel", str(hold))
    c.wait_state(hold, "CANCELLED", timeout=30)

    # ---- a launch after the restart goes through the same keeper ----
    tag2 = f"keeper-tag2-{os.getpid()}"
    b = c.submit("--wrap", f"sleep 2 # {tag2}")
    c.wait_state(b, "RUNNING")
    pp = wait_for(lambda: parent_of_tagged(tag2), 10, "the second rank's process")
    check(pp is not None and pp[1] == k1,
          f"the restarted worker reused keeper {k1}: parent {pp}")
    c.wait_state(b, "COMPLETED", timeout=30)

    # ---- a program that does not exist: 127, the same reason as without a keeper ----
    m = c.submit("/nonexistent/wslq-no-such-program")
    c.wait_state(m, ("COMPLETED", "FAILED"), timeout=30)
    j = c.job(m)
    check(j["state"] == "FAILED" and j.get("exit_code") == 127 and
          "cannot run '/nonexistent/wslq-no-such-program': command not found"
          in (j.get("reason") or ""),
          f"a missing program ends 127: {j.get('exit_code')} {j.get('reason')}")

    # ---- hostile bytes on the keeper's socket: refused, the keeper stays ----
    bad = [b"x", b"\xff" * 64, struct.pack("<6I", 0x31504b57, 1, 0xFFFFFFFF, 0, 0, 0),
           struct.pack("<2I", 0x31504b57, 9) + b"\0" * 2000, os.urandom(5000)]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(sock)
    answers = []
    for msg in bad:
        s.send(msg)
        r = s.recv(64)
        answers.append(struct.unpack("<2I2i", r)[:2] if len(r) == 16 else r)
    check(all(x == (0x31504b57, 3) for x in answers),
          f"every bad message is refused (KEEPER_REFUSED): {answers}")
    s.close()
    check(alive(k1), "the keeper survives the bad messages")
    g = c.submit("--wrap", "true")
    c.wait_state(g, ("COMPLETED", "FAILED"), timeout=30)
    check(c.state(g) == "COMPLETED", f"a job after the bad messages runs: {c.state(g)}")

    # ---- the keeper killed with -9 while a job runs: a clear reason, a new keeper ----
    tag3 = f"keeper-tag3-{os.getpid()}"
    d = c.submit("--wrap", f"sleep 2 # {tag3}")
    c.wait_state(d, "RUNNING")
    wait_for(lambda: parent_of_tagged(tag3), 10, "the third rank's process")
    os.kill(k1, signal.SIGKILL)
    c.wait_state(d, ("COMPLETED", "FAILED", "NODE_FAIL"), timeout=60)
    j = c.job(d)
    check(j["state"] == "FAILED" and "rank keeper died; exit status lost" in (j.get("reason") or ""),
          f"the job whose keeper died ends with the reason: {j['state']} {j.get('reason')}")
    e = c.submit("--wrap", "exit 3")
    c.wait_state(e, ("COMPLETED", "FAILED"), timeout=30)
    j = c.job(e)
    check(j.get("exit_code") == 3, f"a later job runs and its status comes back: {j}")
    k2 = keeper_pid(state)
    check(k2 is not None and k2 != k1, f"the worker started a new keeper: {k1} -> {k2}")
finally:
    c.stop()
finish()
