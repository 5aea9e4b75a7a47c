#!/usr/bin/env python3
"""Accounting and job updates on a real cluster.

* Jobs of two users run and end; `wslq history` lists each with its GPUs, wait, run time and
  GPU-seconds (= GPUs x run time, the run time from the job's own start and end); `wslq
  usage` sums them per user and per node. Filters (--user, --all-users, --state, --node,
  --name, --since, --until, --limit) narrow by what they say.
* A user who is not an admin asking for another user's history, and every bad filter, get
  one line on stderr and a non-zero exit.
* `wslq update` changes a pending job's time, priority, name and GPUs, each change an event in
  `wslq show` (a raised priority moves the job ahead of older ones); it refuses (changing
  nothing) GPUs no node has, another user's job, an ended job, and anything but a lower time
  limit for a running job; array selectors work.
* `wslq logs ARRAY_INDEX` reads one array task's log.
* The dashboard's `/api/v1/usage` gives the same per-user GPU-seconds for the last 7 days."""
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, free_port  # noqa: E402


def one_line_error(r, what, code=None):
    lines = r.stderr.strip().splitlines()
    check(r.returncode != 0 and (code is None or r.returncode == code) and len(lines) == 1 and
          lines[0].startswith("wslq: "),
          f"{what}: one-line error, exit {r.returncode}: {r.stderr.strip()!r}")


def hist(c, *args, env=None):
    r = c.cli("history", "--json", *args, env=env)
    check(r.returncode == 0, f"history {args}: {r.stderr.strip()}")
    return json.loads(r.stdout)["jobs"] if r.returncode == 0 else []


http_port = free_port()
c = Cluster(workers=[("pc1", 2), ("pc2", 1)], sched_args=["--http", f"127.0.0.1:{http_port}"])
try:
    bob = c.enrol("bob")
    me = c.user

    # ---- jobs that run and end ----
    a = c.submit("--gpus", "2", "--name", "acct-a", "--wrap", "sleep 2")
    b = c.submit("--gpus", "1", "--cpus", "2", "--name", "acct-b", "--wrap", "sleep 1; exit 3")
    r = c.cli("submit", "--parsable", "--gpus", "1", "--name", "acct-bob", "--wrap", "sleep 1",
              env=bob)
    check(r.returncode == 0, f"bob submits: {r.stderr.strip()}")
    bj = int(r.stdout.strip())
    for jid in (a, b, bj):
        c.wait_state(jid, ("COMPLETED", "FAILED", "CANCELLED"), timeout=120)
    check(c.state(a) == "COMPLETED" and c.state(b) == "FAILED" and c.state(bj) == "COMPLETED",
          f"states: {c.state(a)} {c.state(b)} {c.state(bj)}")

    mine = hist(c)
    ids = [j["id"] for j in mine]
    check(a in ids and b in ids and bj not in ids, f"my history has my jobs only: {ids}")
    for jid, gpus, cpus in ((a, 2, 1), (b, 1, 2)):
        j = next((x for x in mine if x["id"] == jid), None)
        s = c.job(jid)
        if j is None or s is None:
            check(False, f"job {jid} in history and show")
            continue
        run_s = (s["end_ms"] - s["start_ms"]) // 1000
        wait_s = (s["start_ms"] - s["submit_ms"]) // 1000
        check(j["gpus"] == gpus and j["cpus"] == cpus, f"job {jid}: GPUs and CPUs {j}")
        check(j["run_s"] == run_s and j["wait_s"] == wait_s and j["start_ms"] == s["start_ms"],
              f"job {jid}: run {j['run_s']} (show {run_s}), wait {j['wait_s']} ({wait_s})")
        check(j["gpu_seconds"] == gpus * run_s and j["cpu_seconds"] == cpus * run_s,
              f"job {jid}: GPU-seconds {j['gpu_seconds']} = {gpus} x {run_s}")
        check(abs(j["gpu_hours"] - gpus * run_s / 3600) < 1e-6, f"job {jid}: GPU-hours")
        check(j["nodes"] == [x["node"] for x in s["allocs"]], f"job {jid}: nodes {j['nodes']}")
    ja = next((x for x in mine if x["id"] == a), {})
    check(ja.get("run_s", 0) >= 1, f"job {a} ran about 2 s: {ja.get('run_s')}")
    jb = next((x for x in mine if x["id"] == b), {})
    check(jb.get("state") == "FAILED" and jb.get("exit_code") == 3 and jb.get("end_cause"),
          f"job {b}: FAILED with its end cause: {jb}")

    # text output: the columns, the GPU-hours
    r = c.cli("history")
    check(r.returncode == 0 and "GPU-HOURS" in r.stdout and "acct-a" in r.stdout and
          "END CAUSE" in r.stdout and "acct-bob" not in r.stdout, f"history text:\n{r.stdout}")

    # ---- filters ----
    check([j["id"] for j in hist(c, "--state", "FAILED")] == [b], "--state FAILED")
    check([j["id"] for j in hist(c, "--name", "acct-a")] == [a], "--name")
    on_pc2 = [j["id"] for j in hist(c, "--all-users", "--node", "pc2")]
    want_pc2 = [jid for jid in (a, b, bj) if c.job(jid)["allocs"][0]["node"] == "pc2"]
    check(sorted(on_pc2) == sorted(want_pc2), f"--node pc2: {on_pc2} want {want_pc2}")
    check(len(hist(c, "--since", "1h")) == 2, "--since 1h: both of mine")
    check(hist(c, "--until", "2020-01-01") == [], "--until 2020-01-01: none")
    check(hist(c, "--since", "2099-01-01T00:00Z") == [], "--since in the future: none")
    check(len(hist(c, "--limit", "1")) == 1, "--limit 1")
    every = [j["id"] for j in hist(c, "--all-users")]
    check(all(x in every for x in (a, b, bj)), f"--all-users as admin: {every}")
    check([j["id"] for j in hist(c, "--user", "bob")] == [bj], "an admin sees bob's history")
    check([j["id"] for j in hist(c, env=bob)] == [bj], "bob's own history")

    # ---- refusals: one line, non-zero, nothing shown ----
    one_line_error(c.cli("history", "--user", me, env=bob), "bob asks for another's history", 1)
    r = c.cli("history", "--all-users", env=bob)
    one_line_error(r, "bob asks for everyone's history", 1)
    check("admin" in r.stderr and r.stdout == "", f"says only an admin may: {r.stderr!r}")
    for bad in (["--since", "yesterday"], ["--since", "2026-02-31"], ["--until", "7x"],
                ["--since", "12h", "--until", "1d"], ["--state", "RUNNING"], ["--limit", "0"],
                ["--state", "NOPE"], ["--user", "x", "--all-users"], ["stray"]):
        one_line_error(c.cli("history", *bad), f"history {bad}", 2)
    one_line_error(c.cli("usage", "--since", "soon"), "usage --since soon", 2)

    # ---- usage ----
    r = c.cli("usage", "--since", "30d", "--json")
    check(r.returncode == 0, f"usage --json: {r.stderr.strip()}")
    u = json.loads(r.stdout) if r.returncode == 0 else {"users": [], "nodes": []}
    by_user = {x["user"]: x for x in u["users"]}
    all_jobs = {j["id"]: j for j in hist(c, "--all-users")}
    want_me = sum(all_jobs[x]["gpu_seconds"] for x in (a, b))
    check(by_user.get(me, {}).get("gpu_seconds") == want_me and by_user[me]["jobs"] >= 2,
          f"usage of {me}: {by_user.get(me)} want {want_me} GPU-s")
    check(by_user.get("bob", {}).get("gpu_seconds") == all_jobs[bj]["gpu_seconds"] and
          by_user["bob"]["jobs"] == 1, f"usage of bob: {by_user.get('bob')}")
    by_node = {x["node"]: x for x in u["nodes"]}
    for n in ("pc1", "pc2"):
        want = sum(j["gpu_seconds"] for j in all_jobs.values() if j["nodes"] == [n])
        check(by_node.get(n, {}).get("gpu_seconds", 0) == want, f"usage of {n}: {by_node.get(n)}")
    # the dashboard's JSON API: the same figures for the last 7 days, and the page's table
    req = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/v1/usage", headers=c.auth())
    with urllib.request.urlopen(req, timeout=30) as resp:
        api = json.loads(resp.read())
    api_users = {x["user"]: x for x in api["users"]}
    check(api["days"] == 7 and api_users.get(me, {}).get("gpu_seconds") == want_me and
          api_users.get("bob", {}).get("gpu_seconds") == all_jobs[bj]["gpu_seconds"],
          f"/api/v1/usage: {api}")
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=30) as resp:
        page = resp.read().decode()
    check('id="usage"' in page and "GPU-hours, last 7 days" in page, "the page has the table")
    r = c.cli("usage", "--since", "30d")
    check(r.returncode == 0 and "GPU-HOURS" in r.stdout and "bob" in r.stdout and
          "pc1" in r.stdout, f"usage text:\n{r.stdout}")
    r = c.cli("usage", "--since", "2099-01-01", "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["users"] == [], "usage of a future window")

    # ---- wslq update ----
    p = c.submit("--hold", "--gpus", "1", "--name", "upd", "--time", "10m", "--wrap", "true")
    r = c.cli("update", str(p), "--time", "2h", "--priority", "5", "--name", "renamed",
              "--gpus", "2")
    check(r.returncode == 0 and f"Updated job {p}" in r.stdout, f"update: {r.stderr.strip()}")
    s = c.show(p)
    sp = s["job"]["spec"]
    check(sp["time_limit_s"] == 7200 and sp["priority"] == 5 and sp["name"] == "renamed" and
          sp["gpus_per_node"] == 2, f"the pending job changed: {sp}")
    ev = [e for e in s["events"] if e["reason"] == "updated"]
    check(len(ev) == 1 and "time limit" in ev[0]["detail"] and "priority 0 -> 5" in
          ev[0]["detail"] and "name upd -> renamed" in ev[0]["detail"],
          f"one event says every change: {ev}")
    check(any(j["id"] == p for j in c.json("queue", "--name", "renamed")["jobs"]),
          "queue --name finds the new name")

    def unchanged(what):
        s2 = c.show(p)
        check(s2["job"]["spec"] == sp and len(s2["events"]) == len(s["events"]),
              f"{what}: nothing changed")

    one_line_error(c.cli("update", str(p), "--gpus", "5", "--priority", "9"),
                   "GPUs no node has", 1)
    unchanged("--gpus 5")
    one_line_error(c.cli("update", str(p), "--priority", "1", env=bob), "bob updates mine", 1)
    unchanged("bob's update")
    for bad in (["--time", "soon"], ["--gpus", "-1"], [], ["--name", ""], ["--priority", "x"]):
        one_line_error(c.cli("update", str(p), *bad), f"update {bad}", 2)
    unchanged("bad options")
    one_line_error(c.cli("update", "999999", "--priority", "1"), "update of no job", 1)
    one_line_error(c.cli("update", str(a), "--priority", "1"), "update of an ended job", 1)
    c.cli("cancel", str(p))

    # a running job: only a lower time limit
    run = c.submit("--gpus", "1", "--time", "10m", "--wrap", "sleep 60")
    c.wait_state(run, "RUNNING", timeout=60)
    r = c.cli("update", str(run), "--time", "1h")
    one_line_error(r, "a running job's time raised", 1)
    check("lowered" in r.stderr, f"says it can only be lowered: {r.stderr!r}")
    one_line_error(c.cli("update", str(run), "--priority", "3"), "a running job's priority", 1)
    check(c.job(run)["spec"]["time_limit_s"] == 600, "the running job is unchanged")
    r = c.cli("update", str(run), "--time", "3s")
    check(r.returncode == 0, f"a running job's time lowered: {r.stderr.strip()}")
    c.wait_state(run, "TIMEOUT", timeout=60)
    check(c.state(run) == "TIMEOUT", f"the lower limit ends it: {c.state(run)}")

    # a raised priority moves a pending job ahead of an older one: only pc1 holds 2 GPUs
    blocker = c.submit("--gpus", "2", "--wrap", "sleep 60")
    c.wait_state(blocker, "RUNNING", timeout=60)
    older = c.submit("--gpus", "2", "--wrap", "sleep 30")
    newer = c.submit("--gpus", "2", "--wrap", "sleep 30")
    r = c.cli("update", str(newer), "--priority", "10")
    check(r.returncode == 0, f"priority raised: {r.stderr.strip()}")
    c.cli("cancel", str(blocker))
    c.wait_state(newer, ("STARTING", "RUNNING"), timeout=60)
    check(c.state(newer) in ("STARTING", "RUNNING") and c.state(older) == "PENDING",
          f"the raised job starts first: newer {c.state(newer)}, older {c.state(older)}")
    c.cli("cancel", str(older), str(newer))

    # array selectors: the whole array, one task
    r = c.cli("submit", "--parsable", "--hold", "--array", "0-3", "--wrap", "true")
    arr = int(r.stdout.strip())
    r = c.cli("update", str(arr), "--priority", "7")
    check(r.returncode == 0 and r.stdout.count("Updated job") == 4, f"whole array: {r.stdout}")
    check(all(c.job(arr + k)["spec"]["priority"] == 7 for k in range(4)), "every task changed")
    r = c.cli("update", f"{arr}_2", "--name", "task2")
    check(r.returncode == 0 and c.job(arr + 2)["spec"]["name"] == "task2" and
          c.job(arr + 1)["spec"]["name"] != "task2", "one task by its index")
    c.cli("cancel", str(arr))

    # ---- wslq logs ARRAY_INDEX ----
    r = c.cli("submit", "--parsable", "--array", "4-6", "--wrap", 'echo "idx=$WSLQ_ARRAY_INDEX"')
    arr = int(r.stdout.strip())
    for k in range(3):
        c.wait_state(arr + k, "COMPLETED", timeout=60)
    r = c.cli("logs", f"{arr}_5")
    check(r.returncode == 0 and r.stdout == "idx=5\n", f"logs {arr}_5: {r.stdout!r}")
    one_line_error(c.cli("logs", f"{arr}_9"), "logs of a task the array lacks", 1)
    one_line_error(c.cli("logs", f"{arr}_[4-5]"), "logs of two tasks", 2)
    one_line_error(c.cli("logs", f"{arr}_5", env=bob), "bob reads my task's log", 1)
finally:
    c.stop()
finish()
