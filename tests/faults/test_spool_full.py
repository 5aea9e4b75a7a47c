#!/usr/bin/env python3
"""Faults: a worker whose spool fills up says so instead of losing output silently.

The worker's state directory is a small tmpfs (in a mount namespace of this test's own;
skipped where it may not make one). A job writes more than fits: it ends with a job event
"output lost"; the node check disk.spool turns FAIL, `wslq nodes` shows the node "full" and
no new job is placed there; once space is freed the node takes jobs again. Before, the job
COMPLETED with an empty log and nothing said why."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))
from cluster import BIN, Cluster, check, finish, wait_for  # noqa: E402

probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
if probe.returncode != 0 or subprocess.run(["which", "nsenter"], capture_output=True).returncode:
    print("SKIP: this test may not make a mount namespace (or nsenter is missing): "
          f"{probe.stderr.decode().strip()}", flush=True)
    sys.exit(77)

c = Cluster()
worker = None
try:
    state = os.path.join(c.dir, "w-small")
    os.makedirs(state)
    log = open(os.path.join(c.dir, "worker-small.log"), "ab")
    # its keys beside the state directory: the tmpfs mounted over it would hide them
    creds = os.path.join(c.dir, "small.credentials")
    c.join("small", state, creds)
    cmd = ["unshare", "--mount", "sh", "-c",
           f'mount -t tmpfs -o size=80m tmpfs "{state}" && exec "$@"', "sh",
           f"{BIN}/wslq-worker", "--scheduler", c.addr, "--name", "small", "--state-dir", state,
           "--credentials", creds, "--run-as", "worker",
           "--gpus", "1", "--cpus", "4", "--heartbeat-ms", "200", "--ip", "127.0.0.1"]
    worker = subprocess.Popen(cmd, stdout=log, stderr=log)
    c.workers["small"] = worker
    wait_for(lambda: c.node_state("small") == "idle", 15, "the worker on a small disk")

    def check_of(cid):
        doc = c.json("nodes") or {}
        for n in doc.get("nodes", []):
            if n["name"] == "small":
                for ck in n.get("checks", []):
                    if ck["id"] == cid:
                        return ck
        return None

    ck = check_of("disk.spool")
    check(ck is not None and ck["verdict"] in ("pass", "warn"),
          f"disk.spool reported at registration: {ck}")

    big = c.submit("--wrap", "head -c 150000000 /dev/zero | tr '\\0' x; echo done")
    check(big is not None and c.wait_state(big, ("COMPLETED", "FAILED"), 60),
          f"the job that filled the spool ended: {c.state(big)}")
    show = c.show(big) or {}
    lost = [e for e in show.get("events", []) if e.get("reason") == "output lost"]
    check(len(lost) == 1 and "spool was full" in lost[0].get("detail", ""),
          f"its story says its output was lost: {[e.get('reason') for e in show.get('events', [])]}")
    ck = wait_for(lambda: (check_of("disk.spool") or {}).get("verdict") == "fail" and
                  check_of("disk.spool"), 10, "disk.spool FAIL")
    check(bool(ck) and "no new jobs here" in ck["summary"] and ck["fix"],
          f"disk.spool FAIL with a fix: {ck}")
    check(c.node_state("small") == "full", f"wslq nodes shows it full: {c.node_state('small')}")
    r = c.cli("doctor", "--node", "small")
    check(r.returncode == 1 and any(ln.startswith("FAIL") and "disk.spool" in ln
                                    for ln in r.stdout.splitlines()),
          f"wslq doctor --node small: FAIL disk.spool, exit 1 ({r.returncode})")

    waiting = c.submit("--wrap", "echo room again")
    time.sleep(2)
    check(c.state(waiting) == "PENDING", f"no new job is placed on a full node: {c.state(waiting)}")

    # Free the space (inside the worker's mount namespace): the node takes jobs again.
    spool = os.path.join(state, "spool")
    rm = subprocess.run(["nsenter", "-t", str(worker.pid), "-m", "sh", "-c",
                         f'rm -rf "{spool}"/*'], capture_output=True, text=True)
    check(rm.returncode == 0, f"space freed ({rm.stderr.strip()})")
    check(c.wait_state(waiting, "COMPLETED", 30), f"then the waiting job runs: {c.state(waiting)}")
    check(c.cli("logs", str(waiting)).stdout == "room again\n", "with its whole output")
    check(c.node_state("small") in ("idle", "mixed"), f"node no longer full: {c.node_state('small')}")
finally:
    c.stop()
finish()
