#!/usr/bin/env python3
"""The inbound self-test and the clock offset: two workers on loopback test each other and
take a 2-node job; a worker that cannot listen on its pinned probe port fails the test, is
left out of multi-node jobs, and a job that needs it is refused naming the test; `wslq
doctor --node` shows net.inbound and time.offset. A re-registering worker is tested again.
Every address is on loopback (a peer that cannot be reached at all is what the network
namespace test's hosts are for)."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

LOOP = ["--ip", "127.0.0.1", "--inbound-ok", "yes"]
c = Cluster()
held = None
try:
    def attrs(name):
        doc = c.json("nodes")
        for n in (doc or {}).get("nodes", []):
            if n.get("name") == name:
                return n.get("attrs") or {}
        return {}

    def probe_of(name):
        return attrs(name).get("inbound_probe", "")

    def wait_probe(name, prefix, timeout=15):
        ok = wait_for(lambda: probe_of(name).startswith(prefix), timeout,
                      f"{name} inbound_probe to start with {prefix!r}", interval=0.1)
        return bool(ok)

    # One node alone: nobody can test it yet.
    c.start_worker("pc1", 1, extra=LOOP)
    first = wait_for(lambda: probe_of("pc1") != "", 10, "pc1 probe attribute")
    check(probe_of("pc1") in ("unverified: no peer",) or probe_of("pc1").startswith("passed"),
          f"a lone node is unverified: {probe_of('pc1')!r}")

    # The second node tests the first and is tested by it.
    c.start_worker("pc2", 1, extra=LOOP)
    check(wait_probe("pc1", "passed (by pc2"), f"pc1 passed, tested by pc2: {probe_of('pc1')!r}")
    check(wait_probe("pc2", "passed (by pc1"), f"pc2 passed, tested by pc1: {probe_of('pc2')!r}")
    r = c.cli("nodes", "pc1")
    check(r.returncode == 0 and "inbound_probe=passed (by pc2" in r.stdout,
          "wslq nodes pc1 shows the probe")

    jid = c.submit("--nodes", "2", "--gpus-per-node", "1", "--wrap", "true")
    check(jid is not None and c.wait_state(jid, ("COMPLETED", "FAILED"), 30) and
          c.state(jid) == "COMPLETED", "a 2-node job runs on the two tested nodes")

    # Doctor on the remote node: the test passed and the clock offset is small.
    ok = wait_for(lambda: attrs("pc1").get("doctor.time.offset", "").startswith("PASS"), 10,
                  "pc1 clock offset")
    r = c.cli("doctor", "--node", "pc1")
    lines = r.stdout.splitlines()
    check(any(ln.startswith("PASS") and "time.offset" in ln and "offset" in ln for ln in lines),
          f"doctor --node pc1: time.offset PASS: {r.stdout!r}")
    check(any(ln.startswith("PASS") and "net.inbound" in ln for ln in lines),
          "doctor --node pc1: net.inbound PASS")

    # pc3 pins a probe port another program already listens on: it cannot listen, so no
    # peer can reach it and its test fails.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    taken = held.getsockname()[1]
    c.start_worker("pc3", 1, extra=LOOP + ["--probe-port", str(taken)])
    check(wait_probe("pc3", "failed: worker could not listen"),
          f"pc3 could not listen: {probe_of('pc3')!r}")
    d3 = attrs("pc3").get("doctor.net.inbound", "")
    check(d3.startswith("FAIL") and "fix:" in d3, f"pc3 doctor.net.inbound FAIL with a fix: {d3!r}")
    r = c.cli("doctor", "--node", "pc3")
    check(r.returncode == 1 and any(ln.startswith("FAIL") and "net.inbound" in ln
                                    for ln in r.stdout.splitlines()),
          f"wslq doctor --node pc3 shows net.inbound FAIL, exit 1 (rc={r.returncode})")

    # A 3-node job needs a node that failed: refused at submit, naming the test.
    r = c.cli("submit", "--parsable", "--nodes", "3", "--gpus-per-node", "1", "--wrap", "true")
    check(r.returncode != 0 and "inbound test" in r.stderr and "1 failed it" in r.stderr,
          f"3-node job refused naming the inbound test: {r.stderr.strip()!r}")
    # Two-node jobs still go to the two nodes that passed.
    jid = c.submit("--nodes", "2", "--gpus-per-node", "1", "--wrap", "true")
    job = c.wait_state(jid, ("COMPLETED", "FAILED"), 30) and c.job(jid)
    check(bool(job) and job["state"] == "COMPLETED" and
          sorted(a["node"] for a in job["allocs"]) == ["pc1", "pc2"],
          "a 2-node job avoids the failed nodes")

    # A single-node job may still use a failed node (no peer has to reach it).
    jid = c.submit("--nodes", "1", "--gpus-per-node", "1", "--wrap", "sleep 0.1")
    check(jid is not None and c.wait_state(jid, "COMPLETED", 30), "single-node jobs still run")

    # Re-registering: pc2 restarts and is tested again.
    c.workers["pc2"].terminate()
    c.workers["pc2"].wait(10)
    c.start_worker("pc2", 1, extra=LOOP)
    check(wait_probe("pc2", "passed"), f"restarted pc2 tested again: {probe_of('pc2')!r}")
finally:
    if held is not None:
        held.close()
    c.stop()
finish()
