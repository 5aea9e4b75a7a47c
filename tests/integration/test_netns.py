#!/usr/bin/env python3
"""The same gang job across separate hosts: four network namespaces made here (a scheduler
host with a bridge, three worker hosts joined to it by veth pairs, addresses 10.231.7.0/24
that exist only inside these namespaces). A 3-node job's ranks find rank 0 by its own
address and connect to it. Needs root and iproute2: exits 77 with the reason otherwise.

The namespaces and the enrolment as on a real LAN: netlab.py."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import check, finish, wait_for  # noqa: E402
from netlab import Lab, need  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
need("ip")
tag = f"wq{os.getpid() % 100000}"
hosts = {f"{tag}a": "10.231.7.11", f"{tag}b": "10.231.7.12", f"{tag}c": "10.231.7.13"}
lab = Lab(tag, "10.231.7.1", hosts)
lab.setup()
work = tempfile.mkdtemp(prefix="wslq-netns-")
try:
    lab.start(work)
    for ns in hosts:
        lab.worker(ns, work, ["--gpus", "1", "--heartbeat-ms", "200", "--run-as", "worker"])

    def nodes():
        r = lab.cli("nodes", "--json")
        return json.loads(r.stdout)["nodes"] if r.returncode == 0 else []
    ready = wait_for(lambda: len([n for n in nodes() if n["state"] == "idle"]) == 3, 15,
                     "three workers")
    check(ready, "three workers in three namespaces registered")
    ips = {n["name"]: n["ip"] for n in nodes()}
    check(ips == hosts, f"each worker detected its own address: {ips}")

    out = os.path.join(work, "out")
    os.makedirs(out)
    r = lab.cli("submit", "--parsable", "--nodes", "3", "--gpus-per-node", "1", "--",
            "python3", os.path.join(here, "rank_probe.py"), out)
    check(r.returncode == 0, f"3-node job submitted {r.stderr.strip()}")
    jid = r.stdout.strip()

    def state():
        s = lab.cli("show", jid, "--json")
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
    lab.stop()
    shutil.rmtree(work, ignore_errors=True)
finish()
