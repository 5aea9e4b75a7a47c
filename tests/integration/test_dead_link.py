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
Two network namespaces made here; needs root and iproute2 (exits 77 otherwise)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, check, finish, wait_for  # noqa: E402

if os.geteuid() != 0:
    print("skipped: network namespaces need root")
    sys.exit(77)
if shutil.which("ip") is None or shutil.which("ss") is None:
    print("skipped: the ip and ss commands (iproute2) are not installed")
    sys.exit(77)

tag = f"wd{os.getpid() % 100000}"
sched_ns, work_ns, veth = f"{tag}s", f"{tag}w", f"{tag}v"
SCHED_IP, WORKER_IP, PORT = "10.231.8.1", "10.231.8.11", 7420


def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def teardown():
    for ns in (sched_ns, work_ns):
        for p in ip("netns", "pids", ns).stdout.split():
            subprocess.run(["kill", "-9", p], capture_output=True)
        ip("netns", "del", ns)


def setup():
    steps = [["netns", "add", sched_ns], ["netns", "add", work_ns],
             ["link", "add", veth, "netns", sched_ns, "type", "veth", "peer", "name", "eth0",
              "netns", work_ns],
             ["-n", sched_ns, "addr", "add", f"{SCHED_IP}/24", "dev", veth],
             ["-n", sched_ns, "link", "set", veth, "up"],
             ["-n", sched_ns, "link", "set", "lo", "up"],
             ["-n", work_ns, "addr", "add", f"{WORKER_IP}/24", "dev", "eth0"],
             ["-n", work_ns, "link", "set", "eth0", "up"],
             ["-n", work_ns, "link", "set", "lo", "up"]]
    for s in steps:
        r = ip(*s)
        if r.returncode != 0:
            print(f"skipped: network setup failed at 'ip {' '.join(s)}': {r.stderr.strip()}")
            teardown()
            sys.exit(77)


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def worker_ports():
    """The local ports of the worker's established connections to the scheduler."""
    r = subprocess.run(in_ns(work_ns, "ss", "-Htn", "state", "established", "dst",
                             f"{SCHED_IP}:{PORT}"), capture_output=True, text=True)
    return {ln.split()[-2].rsplit(":", 1)[1] for ln in r.stdout.splitlines() if ln.split()}


setup()
work = tempfile.mkdtemp(prefix="wslq-deadlink-")
procs = []
try:
    addr = f"tcp://{SCHED_IP}:{PORT}"
    log = open(os.path.join(work, "scheduler.log"), "wb")
    procs.append(subprocess.Popen(in_ns(sched_ns, f"{BIN}/wslq-scheduler", "--listen", addr,
                                        "--state-dir", f"{work}/sched", "--torpid", "3s",
                                        "--lost", "10s"), stdout=log, stderr=log))
    admin_sock = f"{work}/sched/admin.sock"
    cred = f"{work}/user.credentials"
    env = dict(os.environ, WSLQ_CREDENTIALS=cred, WSLQ_ADMIN_SOCKET=admin_sock)
    env.pop("WSLQ_SCHEDULER", None)

    def code(*args):
        r = subprocess.run([f"{BIN}/wslq", "admin", *args], capture_output=True, text=True,
                           timeout=30, env=env)
        return next((w for w in r.stdout.split() if w.startswith("wq1:")), r.stderr.strip())

    def cli(*args):
        return subprocess.run(in_ns(sched_ns, f"{BIN}/wslq", *args), capture_output=True,
                              text=True, timeout=30, env=env)
    wait_for(lambda: os.path.exists(admin_sock), 10, "the admin socket")
    r = cli("login", code("user", "add", "root", "--admin"))
    check(r.returncode == 0, f"wslq login: {r.stdout.strip()} {r.stderr.strip()}")
    r = subprocess.run(in_ns(work_ns, f"{BIN}/wslq-worker", "--join",
                             code("node", "invite", "wd"), "--state-dir", f"{work}/w"),
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"the worker joined: {r.stdout.strip()} {r.stderr.strip()}")
    wlog = open(os.path.join(work, "worker.log"), "wb")
    # 1 s heartbeats, 3 s when idle: the lab's
    procs.append(subprocess.Popen(in_ns(work_ns, f"{BIN}/wslq-worker", "--state-dir",
                                        f"{work}/w", "--heartbeat-ms", "1000",
                                        "--run-as", "worker"),
                                  stdout=wlog, stderr=wlog))

    def node_state():
        r = cli("nodes", "--json")
        nodes = json.loads(r.stdout)["nodes"] if r.returncode == 0 else []
        return nodes[0]["state"] if nodes else None
    check(wait_for(lambda: node_state() == "idle", 15, "the worker"), "the worker registered")
    time.sleep(4)  # past the first idle heartbeat
    before = worker_ports()
    check(len(before) == 1, f"one connection to the scheduler: {before}")

    ip("-n", sched_ns, "link", "set", veth, "down")
    time.sleep(9)
    ip("-n", sched_ns, "link", "set", veth, "up")
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
        r = subprocess.run(in_ns(sched_ns, "ss", "-Htn", "state", "established", "src",
                                 f"{SCHED_IP}:{PORT}"), capture_output=True, text=True)
        return [ln for ln in r.stdout.splitlines() if ln.strip()]
    check(wait_for(lambda: len(sched_conns()) == 1, 20, "the dead end dropped"),
          f"the scheduler's end of the dead connection is dropped: {sched_conns()}")
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    if os.environ.get("WSLQ_TEST_KEEP"):
        print(f"kept {work}")
    teardown()
    if not os.environ.get("WSLQ_TEST_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
finish()
