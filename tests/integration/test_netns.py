#!/usr/bin/env python3
"""The same gang job across separate hosts: four network namespaces made here (a scheduler
host with a bridge, three worker hosts joined to it by veth pairs, addresses 10.231.7.0/24
that exist only inside these namespaces). A 3-node job's ranks find rank 0 by its own
address and connect to it. Needs root and iproute2: exits 77 with the reason otherwise.

Enrolment goes as on a real LAN: codes made over the scheduler's local socket carry its
address and key; the user logs in and each worker joins from its own host."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, check, finish, wait_for  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
if os.geteuid() != 0:
    print("skipped: network namespaces need root")
    sys.exit(77)
if shutil.which("ip") is None:
    print("skipped: the ip command (iproute2) is not installed")
    sys.exit(77)

tag = f"wq{os.getpid() % 100000}"
sched_ns = f"{tag}s"
hosts = {f"{tag}a": "10.231.7.11", f"{tag}b": "10.231.7.12", f"{tag}c": "10.231.7.13"}
SCHED_IP = "10.231.7.1"


def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def setup():
    r = ip("netns", "add", sched_ns)
    if r.returncode != 0:
        print(f"skipped: cannot create a network namespace: {r.stderr.strip()}")
        sys.exit(77)
    steps = [["-n", sched_ns, "link", "set", "lo", "up"],
             ["-n", sched_ns, "link", "add", "br0", "type", "bridge"],
             ["-n", sched_ns, "addr", "add", f"{SCHED_IP}/24", "dev", "br0"],
             ["-n", sched_ns, "link", "set", "br0", "up"]]
    for i, (ns, addr) in enumerate(hosts.items()):
        steps += [["netns", "add", ns],
                  ["link", "add", f"{tag}v{i}", "netns", sched_ns, "type", "veth", "peer",
                   "name", "eth0", "netns", ns],
                  ["-n", sched_ns, "link", "set", f"{tag}v{i}", "master", "br0", "up"],
                  ["-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0"],
                  ["-n", ns, "link", "set", "eth0", "up"],
                  ["-n", ns, "link", "set", "lo", "up"]]
    for s in steps:
        r = ip(*s)
        if r.returncode != 0:
            print(f"skipped: network setup failed at 'ip {' '.join(s)}': {r.stderr.strip()}")
            teardown()
            sys.exit(77)


def teardown():
    for ns in [sched_ns, *hosts]:
        subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
        pids = ip("netns", "pids", ns).stdout.split()
        for p in pids:
            subprocess.run(["kill", "-9", p], capture_output=True)
        ip("netns", "del", ns)


def in_ns(ns, *cmd, **kw):
    return ["ip", "netns", "exec", ns, *cmd]


setup()
work = tempfile.mkdtemp(prefix="wslq-netns-")
procs = []
try:
    addr = f"tcp://{SCHED_IP}:7420"
    log = open(os.path.join(work, "scheduler.log"), "wb")
    procs.append(subprocess.Popen(in_ns(sched_ns, f"{BIN}/wslq-scheduler", "--listen", addr,
                                        "--state-dir", f"{work}/sched"), stdout=log, stderr=log))

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
    user_code = code("user", "add", "root", "--admin")
    check(f"@{addr}" in user_code, f"the enrolment code names the scheduler's address: "
          f"{user_code[-40:]}")
    r = cli("login", user_code)
    check(r.returncode == 0, f"wslq login with the code: {r.stdout.strip()} {r.stderr.strip()}")
    for ns in hosts:
        # each host joins from its own namespace, with nothing but the code
        r = subprocess.run(in_ns(ns, f"{BIN}/wslq-worker", "--join", code("node", "invite", ns),
                                 "--state-dir", f"{work}/w-{ns}"),
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, f"{ns} joined: {r.stdout.strip()} {r.stderr.strip()}")
        wlog = open(os.path.join(work, f"worker-{ns}.log"), "wb")
        procs.append(subprocess.Popen(
            in_ns(ns, f"{BIN}/wslq-worker", "--state-dir", f"{work}/w-{ns}", "--gpus", "1",
                  "--heartbeat-ms", "200", "--run-as", "worker"),
            stdout=wlog, stderr=wlog))

    def nodes():
        r = cli("nodes", "--json")
        return json.loads(r.stdout)["nodes"] if r.returncode == 0 else []
    ready = wait_for(lambda: len([n for n in nodes() if n["state"] == "idle"]) == 3, 15,
                     "three workers")
    check(ready, "three workers in three namespaces registered")
    ips = {n["name"]: n["ip"] for n in nodes()}
    check(ips == hosts, f"each worker detected its own address: {ips}")

    out = os.path.join(work, "out")
    os.makedirs(out)
    r = cli("submit", "--parsable", "--nodes", "3", "--gpus-per-node", "1", "--",
            "python3", os.path.join(here, "rank_probe.py"), out)
    check(r.returncode == 0, f"3-node job submitted {r.stderr.strip()}")
    jid = r.stdout.strip()

    def state():
        s = cli("show", jid, "--json")
        return json.loads(s.stdout)["job"]["state"] if s.returncode == 0 else None
    wait_for(lambda: state() in ("COMPLETED", "FAILED", "NODE_FAIL"), 60, "job end")
    check(state() == "COMPLETED", f"3-node job completed: {state()}")
    envs = [json.load(open(os.path.join(out, f"env.{r}"))) for r in range(3)]
    masters = {(e["MASTER_ADDR"], e["MASTER_PORT"]) for e in envs}
    check(len(masters) == 1 and next(iter(masters))[0] in hosts.values(),
          f"MASTER_ADDR is rank 0's host address: {masters}")
    check(json.load(open(os.path.join(out, "wired"))) == [1, 2],
          "ranks on three hosts connected to rank 0 over the namespace network")
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    teardown()
    shutil.rmtree(work, ignore_errors=True)
finish()
