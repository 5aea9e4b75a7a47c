#!/usr/bin/env python3
"""The PC's owner comes first (worker `owner` policy), with the real programs: two workers,
one GPU each, whose owner files (deploy/windows/README.md, version 1) the test writes.

* pc1 has `owner = yield`, pc2 `owner = ignore`; both owners are present. A job that may run
  only on pc1 waits PENDING, its reason naming the owner; `wslq nodes` (text and --json)
  shows each node's policy and owner state. A job for pc2 runs: ignore ignores the owner.
* pc1's owner goes away (no input past owner_away_min): the waiting job starts and completes.
* A stale file (written two hours ago) and a file that is not JSON are `unknown`: a new job
  for pc1 waits again; a fresh `away` lets it run.
* A full-screen application is `gaming`: it waits too."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402


def write_owner(path, idle_s, fullscreen=False, age_s=0, text=None):
    """The reporter's file, replaced atomically as the reporter does."""
    if text is None:
        text = json.dumps({"version": 1, "time": int(time.time()) - age_s, "idle_s": idle_s,
                           "fullscreen": fullscreen, "gpu_ok": True,
                           "gpu_procs": [{"name": "dwm", "pid": 1312, "mem_mb": 300,
                                          "engine_pct": 2.0}],
                           "tdr": {"delay_s": 2, "level": 3}})
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def node(c, name):
    for n in (c.json("nodes") or {"nodes": []})["nodes"]:
        if n["name"] == name:
            return n
    return None


def owner_state(c, name):
    n = node(c, name)
    return n.get("owner_state") if n else None


def node_of(c, jid):
    j = c.job(jid)
    allocs = j.get("allocs") if j else None
    return allocs[0]["node"] if allocs else None


c = Cluster()
try:
    f1 = os.path.join(c.dir, "owner-pc1.json")
    f2 = os.path.join(c.dir, "owner-pc2.json")
    write_owner(f1, idle_s=5)
    write_owner(f2, idle_s=5)
    # an hour of staleness allowed, so a slow machine does not make the present owner unknown
    common = ["--owner-away-min", "1", "--owner-stale-s", "3600"]
    c.start_worker("pc1", 1, extra=["--owner", "yield", "--owner-file", f1, *common])
    c.start_worker("pc2", 1, extra=["--owner", "ignore", "--owner-file", f2, *common])

    wait_for(lambda: owner_state(c, "pc1") == "present" and owner_state(c, "pc2") == "present",
             20, "both owners present")
    n1, n2 = node(c, "pc1"), node(c, "pc2")
    check(n1["owner"] == "yield" and n1["owner_state"] == "present" and "5 s" in n1["owner_why"],
          f"pc1 in --json: {n1.get('owner')} {n1.get('owner_state')} {n1.get('owner_why')}")
    check(n2["owner"] == "ignore" and n2["owner_state"] == "present",
          f"pc2 in --json: {n2.get('owner')} {n2.get('owner_state')}")
    r = c.cli("nodes")
    check("pc1 owner present, policy yield (no new jobs)" in r.stdout and
          "pc2 owner present, policy ignore:" in r.stdout, f"wslq nodes:\n{r.stdout}")

    # yield: a job for pc1 waits, with the reason; ignore: a job for pc2 runs
    j1 = c.submit("--gpus", "1", "--nodelist", "pc1", "--", "true")
    wait_for(lambda: "owner" in (c.job(j1) or {}).get("reason", ""), 20, "the owner reason")
    j = c.job(j1)
    check(j["state"] == "PENDING" and j["reason"].endswith(
        "1 of 1 free GPU is on PCs whose owners are present (pc1: present)") and
        "\n" not in j["reason"], f"waits for pc1's owner: {j['state']} '{j['reason']}'")
    check(j.get("wait_reason") == "Owner", f"wait_reason Owner: {j.get('wait_reason')}")
    r = c.cli("queue")
    row = [ln for ln in r.stdout.splitlines() if ln.split()[:1] == [str(j1)]]
    check(row and "Owner" in row[0].split(), f"wslq queue REASON column:\n{r.stdout}")
    j2 = c.submit("--gpus", "1", "--nodelist", "pc2", "--", "true")
    c.wait_state(j2, "COMPLETED", timeout=60)
    check(c.state(j2) == "COMPLETED" and node_of(c, j2) == "pc2", "ignore: runs on pc2")
    time.sleep(1)  # several heartbeats and placement passes
    check(c.state(j1) == "PENDING", f"still waits: {c.state(j1)}")

    # the owner leaves: the job starts
    write_owner(f1, idle_s=120)
    c.wait_state(j1, "COMPLETED", timeout=60)
    check(c.state(j1) == "COMPLETED" and node_of(c, j1) == "pc1",
          f"runs on pc1 once the owner is away: {c.state(j1)}")
    check(owner_state(c, "pc1") == "away", "pc1 owner away")

    # stale and garbage files are unknown, never away
    for what, kw in (("stale", {"idle_s": 9999, "age_s": 7200}),
                     ("not JSON", {"idle_s": 0, "text": "{not json"}),
                     ("full screen", {"idle_s": 9999, "fullscreen": True})):
        write_owner(f1, **kw)
        want = "gaming" if what == "full screen" else "unknown"
        wait_for(lambda: owner_state(c, "pc1") == want, 20, f"pc1 owner {want} ({what})")
        check(owner_state(c, "pc1") == want, f"{what}: owner {owner_state(c, 'pc1')}")
        j3 = c.submit("--gpus", "1", "--nodelist", "pc1", "--", "true")
        wait_for(lambda: "owner" in (c.job(j3) or {}).get("reason", ""), 20, "the reason")
        j = c.job(j3)
        check(j["state"] == "PENDING" and f"(pc1: {want})" in j["reason"],
              f"{what}: waits: {j['state']} '{j['reason']}'")
        write_owner(f1, idle_s=120)
        c.wait_state(j3, "COMPLETED", timeout=60)
        check(c.state(j3) == "COMPLETED", f"{what}: runs when the owner is away again")
finally:
    c.stop()
finish()
