#!/usr/bin/env python3
"""wslq drain / wslq resume with the real programs (two workers, one GPU each).

* Refusals: a user who is not an admin (the scheduler refuses it, nothing changes), an unknown
  node, resuming a node that is not drained, no --reason (usage, exit 2).
* Drain without --now: the running job on the node finishes COMPLETED in its first attempt;
  the node is "draining", then "drained", with reason, who and since when in `wslq nodes`
  (--json and text), `wslq top --once`, /api/v1/nodes, /api/v1/summary and /metrics; a job
  that could only run there waits PENDING.
* Across a scheduler restart (SIGKILL) the node is still drained with its reason, and the
  waiting job is still not placed there; `wslq resume` lets it run.
* Drain --now: the running job gets SIGTERM (its trap writes to the log), goes back to
  PENDING at once without using a retry (it has none), runs again on the other node and
  completes; its events say why."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, free_port, wait_for  # noqa: E402
from test_http import Http  # noqa: E402

REASON = "windows update"


def node_of(c, jid):
    j = c.job(jid)
    allocs = j.get("allocs") if j else None
    return allocs[0]["node"] if allocs else None


def node(c, name):
    for n in c.json("nodes")["nodes"]:
        if n["name"] == name:
            return n
    return None


port = free_port()
c = Cluster(workers=[("pc1", 1), ("pc2", 1)], sched_args=["--http", f"127.0.0.1:{port}"])
try:
    h = Http(port, c.token())
    bob = c.enrol("bob")

    # ---- refusals: nothing changes ----
    r = c.cli("drain", "pc1", "--reason", REASON, env=bob)
    check(r.returncode == 1 and r.stderr.strip() == "wslq: only an admin may do this (bob is "
          "not one)", f"a non-admin is refused: {r.returncode} {r.stderr.strip()}")
    r = c.cli("resume", "pc1", env=bob)
    check(r.returncode == 1 and "only an admin" in r.stderr, "a non-admin may not resume")
    check(node(c, "pc1")["drained"] is False, "the refused drain changed nothing")
    r = c.cli("drain", "pc9", "--reason", REASON)
    check(r.returncode == 1 and r.stderr.strip() == "wslq: node pc9 not found",
          f"unknown node: {r.stderr.strip()}")
    r = c.cli("resume", "pc2")
    check(r.returncode == 1 and r.stderr.strip() == "wslq: node pc2 is not drained",
          f"resume of a node not drained: {r.stderr.strip()}")
    r = c.cli("drain", "pc1")
    check(r.returncode == 2 and "--reason TEXT is needed" in r.stderr,
          f"no reason: {r.returncode} {r.stderr.strip()}")
    r = c.cli("drain", "pc1", "--reason", "two\nlines")
    check(r.returncode == 2 and "one line" in r.stderr, f"a reason of two lines: {r.stderr}")

    # ---- drain: the running job finishes, nothing new is placed ----
    a = c.submit("--gpus", "1", "--", "sleep", "6")
    c.wait_state(a, "RUNNING")
    n1 = node_of(c, a)
    n2 = "pc2" if n1 == "pc1" else "pc1"
    r = c.cli("drain", n1, "--reason", REASON)
    check(r.returncode == 0 and r.stdout.strip() ==
          f"Node {n1} draining ({REASON}): 1 job left to finish, nothing new placed",
          f"drain: {r.stdout.strip()} {r.stderr.strip()}")
    n = node(c, n1)
    check(n["state"] == "draining" and n["drained"] is True and n["drain_reason"] == REASON
          and n["drain_by"] == c.user and n["drain_since_ms"] > 0,
          f"draining in nodes --json: {n['state']} {n.get('drain_reason')}")
    b = c.submit("--gpus", "1", "--", "sleep", "120")  # takes the other node
    c.wait_state(b, "RUNNING")
    check(node_of(c, b) == n2, "the new job went to the node not drained")
    w = c.submit("--gpus", "1", "--", "true")  # could only run on the drained node
    c.wait_state(a, "COMPLETED", timeout=60)
    check(c.job(a)["attempt"] == 0, "the running job finished in its first attempt")
    wait_for(lambda: node(c, n1)["state"] == "drained", 10, "the node to be drained")
    time.sleep(2)  # a few scheduling passes with the node free
    check(c.state(w) == "PENDING", f"nothing new placed on the drained node: {c.state(w)}")
    r = c.cli("nodes")
    check(f"{n1} drained by {c.user}" in r.stdout and REASON in r.stdout,
          f"wslq nodes says who drained it and why:\n{r.stdout}")
    r = c.cli("top", "--once")
    check("drained" in r.stdout and REASON in r.stdout, f"wslq top shows it:\n{r.stdout}")
    st, _, body = h.get("/api/v1/nodes")
    check(st == 200 and f'"drain_reason":"{REASON}"' in body.decode(),
          "the API's nodes carry the reason")
    st, _, body = h.get("/api/v1/summary")
    check(st == 200 and '"drained":1' in body.decode().replace(" ", ""),
          "the summary counts the drained node")
    st, _, body = h.get("/metrics")
    text = body.decode()
    check(f'wslq_node_drained{{node="{n1}",reason="{REASON}"}} 1' in text
          and 'wslq_nodes{state="drained"} 1' in text, "/metrics shows the drained node")

    # ---- a scheduler restart keeps it ----
    c.kill_scheduler()
    c.start_scheduler()
    wait_for(lambda: c.node_state(n1) not in (None, "torpid", "lost"), 20, "workers back")
    n = node(c, n1)
    check(n["drained"] is True and n["drain_reason"] == REASON and n["state"] == "drained",
          f"drained across a restart: {n['state']} {n.get('drain_reason')}")
    time.sleep(2)
    check(c.state(w) == "PENDING", "still nothing placed on it after the restart")
    r = c.cli("resume", n1)
    check(r.returncode == 0 and r.stdout.strip() == f"Node {n1} resumed: it takes jobs again",
          f"resume: {r.stdout.strip()} {r.stderr.strip()}")
    c.wait_state(w, "COMPLETED", timeout=60)
    check(node_of(c, w) == n1, "the waiting job ran on the resumed node")
    n = node(c, n1)
    check(n["drained"] is False and "drain_reason" not in n, "resumed: no drain left")
    # the dashboard's snapshot follows the loop within a second (at most every 250 ms)
    check(bool(wait_for(lambda: "wslq_node_drained{" not in h.get("/metrics")[2].decode(), 10,
                        "the drained node to leave /metrics")), "/metrics: no drained node left")

    # ---- drain --now: SIGTERM, requeued at once without using a retry, runs elsewhere ----
    r = c.cli("cancel", str(b))
    c.wait_state(b, "CANCELLED", timeout=60)
    d = c.submit("--gpus", "1", "--", "sh", "-c",
                 "echo attempt; trap 'echo got TERM; exit 0' TERM; sleep 300 & wait")
    c.wait_state(d, "RUNNING")
    wait_for(lambda: "attempt" in c.cli("logs", str(d)).stdout, 20, "the job's first line")
    x = node_of(c, d)
    y = "pc2" if x == "pc1" else "pc1"
    r = c.cli("drain", x, "--reason", "repair", "--now")
    check(r.returncode == 0 and r.stdout.strip() == f"Node {x} drained (repair): 1 job requeued",
          f"drain --now: {r.stdout.strip()} {r.stderr.strip()}")
    wait_for(lambda: c.job(d)["attempt"] == 1 and c.state(d) == "RUNNING", 60,
             "the job to run again")
    j = c.job(d)
    check(node_of(c, d) == y, f"it runs again on the other node: {node_of(c, d)}")
    s = c.show(d)
    reasons = " | ".join(e.get("reason", "") for e in s["events"])
    check(f"node {x} drained by {c.user}: repair" in reasons and "retries not used" in reasons,
          f"its events say why: {reasons}")
    check("got TERM" in c.cli("logs", str(d)).stdout, "its ranks got SIGTERM first")
    check(j["state"] == "RUNNING", "requeued although it has no retries")
    c.cli("cancel", str(d))
    c.wait_state(d, "CANCELLED", timeout=60)
    check(c.cli("resume", x).returncode == 0, "resume after --now")
finally:
    c.stop()
finish()
