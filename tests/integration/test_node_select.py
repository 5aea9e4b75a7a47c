#!/usr/bin/env python3
"""Choosing nodes: `wslq admin node tag`, and `wslq submit --nodelist / --exclude /
--constraint`, with the real programs (two workers, one GPU each).

* Tags: an admin sets them (over the admin socket), they replace the old ones, '' clears
  them; a user who is not an admin cannot set them (--remote); bad tags and unknown nodes are
  refused. `wslq nodes` (text and --json) shows them, and they survive a scheduler restart.
* --constraint runs a job only on nodes with every tag; --nodelist only on the nodes named;
  --exclude never on those; `wslq show` lists what the job asked.
* Refused at submit with the reason: a constraint no node has, a --nodelist naming no node,
  a node both listed and excluded (a usage error), a bad tag (a usage error).
* A job whose only node is busy waits PENDING rather than going elsewhere."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402


def node_of(c, jid):
    j = c.job(jid)
    return j["allocs"][0]["node"] if j and j.get("allocs") else None


def tags(c, name):
    for n in c.json("nodes")["nodes"]:
        if n["name"] == name:
            return n["tags"]
    return None


c = Cluster(workers=[("pc1", 1), ("pc2", 1)])
try:
    # ---- tags ----
    r = c.admin("node", "tag", "pc2", "ampere")
    check(r.returncode == 0 and r.stdout.strip() == "Node pc2 is tagged ampere",
          f"tag: {r.stdout.strip()} {r.stderr.strip()}")
    r = c.admin("node", "tag", "pc2", "ampere,48g,ampere")
    check(r.returncode == 0 and tags(c, "pc2") == ["ampere", "48g"],
          f"tags replace the old ones, duplicates dropped: {tags(c, 'pc2')}")
    r = c.admin("node", "tag", "pc1", "old")
    r = c.admin("node", "tag", "pc1", "")
    check(r.returncode == 0 and r.stdout.strip() == "Node pc1 has no tags now"
          and tags(c, "pc1") == [], f"'' clears: {r.stdout.strip()} {tags(c, 'pc1')}")
    r = c.admin("node", "tag", "pc9", "x")
    check(r.returncode == 1 and r.stderr.strip() == "wslq: node pc9 not found",
          f"unknown node: {r.stderr.strip()}")
    r = c.admin("node", "tag", "pc2", "a b")
    check(r.returncode == 2 and "'a b' is not a tag" in r.stderr, f"bad tag: {r.stderr.strip()}")
    r = c.admin("node", "tag", "pc2")
    check(r.returncode == 2 and "needs NAME and TAG" in r.stderr, f"no tags: {r.stderr.strip()}")
    bob = c.enrol("bob")
    r = c.cli("admin", "node", "tag", "pc1", "ampere", "--remote", env=bob)
    check(r.returncode == 1 and "only an admin may do this" in r.stderr,
          f"a non-admin may not tag: {r.stderr.strip()}")
    check(tags(c, "pc1") == [], "the refused tag changed nothing")
    r = c.cli("nodes")
    check("pc2 tags: ampere,48g" in r.stdout, f"wslq nodes shows the tags:\n{r.stdout}")

    c.kill_scheduler()
    c.start_scheduler()
    wait_for(lambda: c.node_state("pc2") not in (None, "torpid", "lost"), 20, "workers back")
    check(tags(c, "pc2") == ["ampere", "48g"], "tags survive a restart")

    # ---- placement ----
    for args, want in ((["--constraint", "ampere"], "pc2"), (["-C", "48g,ampere"], "pc2"),
                       (["--nodelist", "pc1"], "pc1"), (["-w", "pc1,pc2", "-C", "48g"], "pc2"),
                       (["--exclude", "pc1"], "pc2")):
        for _ in range(2):  # twice: not a lucky first choice
            j = c.submit("--gpus", "1", *args, "--", "true")
            c.wait_state(j, "COMPLETED", timeout=60)
            check(node_of(c, j) == want, f"{' '.join(args)} runs on {want} (ran on {node_of(c, j)})")
    r = c.cli("show", str(j))
    check("Exclude:      pc1" in r.stdout, f"show lists the exclusion:\n{r.stdout}")
    s = c.job(j)["spec"]
    check(s["exclude"] == ["pc1"] and s["nodelist"] == [] and s["constraints"] == [],
          f"--json spec: {s['exclude']} {s['nodelist']} {s['constraints']}")

    # the only node allowed is busy: wait for it, do not go elsewhere
    busy = c.submit("--gpus", "1", "--nodelist", "pc2", "--", "sleep", "30")
    c.wait_state(busy, "RUNNING")
    w = c.submit("--gpus", "1", "--constraint", "ampere", "--", "true")
    wait_for(lambda: c.job(w)["reason"] != "", 10, "a wait reason")
    check(c.state(w) == "PENDING", f"waits for its node: {c.state(w)} {c.job(w)['reason']}")
    c.cli("cancel", str(busy))
    c.wait_state(w, "COMPLETED", timeout=60)
    check(node_of(c, w) == "pc2", "then runs there")

    # ---- refusals ----
    r = c.cli("submit", "--constraint", "hopper", "--", "true")
    check(r.returncode == 1 and "job refused: no node matches its --nodelist, --exclude and "
          "--constraint" in r.stderr, f"no node has the tag: {r.stderr.strip()}")
    r = c.cli("submit", "--nodelist", "pc9", "--", "true")
    check(r.returncode == 1 and r.stderr.strip() ==
          "wslq: job refused: --nodelist names pc9, which is not a node",
          f"unknown node in the list: {r.stderr.strip()}")
    r = c.cli("submit", "--nodelist", "pc1", "--exclude", "pc1", "--", "true")
    check(r.returncode == 2 and "pc1 is in both --nodelist and --exclude" in r.stderr,
          f"listed and excluded: {r.stderr.strip()}")
    r = c.cli("submit", "--constraint", "a/b", "--", "true")
    check(r.returncode == 2 and "'a/b' is not a tag" in r.stderr, f"bad tag: {r.stderr.strip()}")
    r = c.cli("submit", "--gpus", "2", "--constraint", "ampere", "--", "true")
    check(r.returncode == 1 and "job refused" in r.stderr,
          f"more GPUs than the matching nodes have: {r.stderr.strip()}")
finally:
    c.stop()
finish()
