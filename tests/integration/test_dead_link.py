#!/usr/bin/env python3
"""A worker's connection that dies silently is dropped and made again within seconds: the
scheduler's end of a veth pair goes down for 9 s (nothing is refused, nothing comes back).
The worker's heartbeats stay unacknowledged, and ZMQ_TCP_MAXRT (5 s) has the kernel give
the connection up; ZeroMQ connects again once the link is back. The worker's ZMTP pings
(every 30 s) are only a backup, so a 9 s outage is mostly over before one is due: the
connection seen afterwards must be a new one (another local port). Then the node is idle
again: the new connection takes the worker's routing id (the scheduler's ROUTER hands it
over; before, it kept the id for the old connection and the node stayed lost), and the
scheduler's kernel drops its end of the dead connection (TCP keep-alive).
Two network namespaces made here (netlab.py); needs root and iproute2 (exits 77 otherwise)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import check, finish, wait_for  # noqa: E402
from netlab import PORT, Lab, in_ns, ip, need  # noqa: E402

need("ip", "ss")
tag = f"wd{os.getpid() % 100000}"
work_ns = f"{tag}w"
SCHED_IP = "10.231.8.1"
lab = Lab(tag, SCHED_IP, {work_ns: "10.231.8.11"})


def worker_ports():
    """The local ports of the worker's established connections to the scheduler."""
    r = subprocess.run(in_ns(work_ns, "ss", "-Htn", "state", "established", "dst",
                             f"{SCHED_IP}:{PORT}"), capture_output=True, text=True)
    return {ln.split()[-2].rsplit(":", 1)[1] for ln in r.stdout.splitlines() if ln.split()}


lab.setup()
work = tempfile.mkdtemp(prefix="wslq-deadlink-")
try:
    lab.start(work, ["--torpid", "3s", "--lost", "10s"])
    # 1 s heartbeats, 3 s when idle: the lab's
    lab.worker(work_ns, work, ["--heartbeat-ms", "1000", "--run-as", "worker"])

    def node_state():
        r = lab.cli("nodes", "--json")
        nodes = json.loads(r.stdout)["nodes"] if r.returncode == 0 else []
        return nodes[0]["state"] if nodes else None
    check(wait_for(lambda: node_state() == "idle", 15, "the worker"), "the worker registered")
    time.sleep(4)  # past the first idle heartbeat
    before = worker_ports()
    check(len(before) == 1, f"one connection to the scheduler: {before}")

    ip("-n", lab.sched_ns, "link", "set", lab.link(0), "down")
    time.sleep(9)
    ip("-n", lab.sched_ns, "link", "set", lab.link(0), "up")
    check(wait_for(lambda: worker_ports() - before, 15, "a new connection"),
          f"the dead connection was dropped and a new one made (ports before {before}, "
          f"now {worker_ports()})")
    # The node comes back: the scheduler's end of the dead connection outlives the outage
    # (it sends nothing to an idle worker), and its ROUTER keeps the routing id for it, so
    # the new connection is heard only once TCP keep-alive (5 s silent, then probes) has
    # the scheduler's kernel drop the old one.
    check(wait_for(lambda: node_state() == "idle", 30, "the node idle again"),
          f"the node is idle again after the outage (now {node_state()})")

    def sched_conns():
        r = subprocess.run(in_ns(lab.sched_ns, "ss", "-Htn", "state", "established", "src",
                                 f"{SCHED_IP}:{PORT}"), capture_output=True, text=True)
        return [ln for ln in r.stdout.splitlines() if ln.strip()]
    check(wait_for(lambda: len(sched_conns()) == 1, 20, "the dead end dropped"),
          f"the scheduler's end of the dead connection is dropped: {sched_conns()}")
finally:
    lab.stop()
    if os.environ.get("WSLQ_TEST_KEEP"):
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
finish()
