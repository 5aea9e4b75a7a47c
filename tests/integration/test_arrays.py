#!/usr/bin/env python3
"""Job arrays, hold, release and requeue on a real cluster: one submit makes N jobs, each with
WSLQ_ARRAY_INDEX / WSLQ_ARRAY_JOB_ID and its own log; %K caps how many run at once; `queue`
shows an array's pending tasks as one line; cancel/show/hold/release by array task selectors;
bad selectors and ranges change nothing; a held job never starts, survives a scheduler restart
and runs once released; a requeued running job comes back pending with attempt + 1; only the
owner (or an admin) may do any of it. Wait reasons and `wslq why`; the dependency types
afterany, afternotok and singleton."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

c = Cluster(workers=[("pc1", 4)])
try:
    out = os.path.join(c.dir, "arr")
    os.makedirs(out)
    os.chmod(out, 0o777)  # jobs run as the worker's account

    # ---- an array: env, logs, the %2 cap ----
    script = (f'echo "$(date +%s.%N)" > {out}/$WSLQ_ARRAY_INDEX.start; sleep 0.3; '
              f'date +%s.%N > {out}/$WSLQ_ARRAY_INDEX.end; '
              f'echo "idx=$WSLQ_ARRAY_INDEX arr=$WSLQ_ARRAY_JOB_ID job=$WSLQ_JOB_ID"')
    r = c.cli("submit", "--array", "1,3,5-13:2%2", "--gpus", "1", "--wrap", script)
    check(r.returncode == 0 and "Submitted array job" in r.stdout and "7 tasks" in r.stdout,
          f"one submit, 7 tasks: {r.stdout.strip()} {r.stderr.strip()}")
    arr = int(r.stdout.split()[3])
    ids = list(range(arr, arr + 7))
    for jid in ids:
        c.wait_state(jid, ("COMPLETED", "FAILED"), timeout=90)
    want = [1, 3, 5, 7, 9, 11, 13]
    for jid, idx in zip(ids, want):
        j = c.job(jid)
        check(j and j["state"] == "COMPLETED" and j.get("array_job_id") == arr and
              j.get("array_index") == idx and j.get("array_size") == 7 and
              j.get("array_limit") == 2, f"job {jid} is task {arr}_{idx} and completed: {j}")
        log = c.cli("logs", str(jid)).stdout
        check(log == f"idx={idx} arr={arr} job={jid}\n", f"task {idx} has its own log: {log!r}")
    spans = []
    for idx in want:
        with open(f"{out}/{idx}.start") as f0, open(f"{out}/{idx}.end") as f1:
            spans.append((float(f0.read()), float(f1.read())))
    most = max(sum(1 for s in spans if s[0] <= t < s[1]) for t, _ in spans)
    check(most <= 2, f"at most 2 tasks ran at once (%2), on 4 free GPUs: {most}")

    # $WSLQ_ARRAY_INDEX in the command itself (not through a shell) expands per task.
    r = c.cli("submit", "--parsable", "--array", "0-2", "--", "echo", "task",
              "$WSLQ_ARRAY_INDEX", "of", "${WSLQ_ARRAY_JOB_ID}")
    first = int(r.stdout.strip())
    for k in range(3):
        c.wait_state(first + k, "COMPLETED", timeout=60)
        log = c.cli("logs", str(first + k)).stdout
        check(log == f"task {k} of {first}\n", f"argv expansion in task {k}: {log!r}")
    r = c.cli("show", f"{first}_2")
    check(r.returncode == 0 and f"Job {first + 2}:" in r.stdout and
          f"{first}_2: task 2 of array {first}" in r.stdout,
          f"show ARRAY_INDEX names the task: {r.stdout[:200]!r}")

    # ---- a held array of 500: one line in the queue; selections ----
    r = c.cli("submit", "--parsable", "--hold", "--array", "0-499%8", "--", "true")
    big = int(r.stdout.strip())
    r = c.cli("queue", "--noheader")
    lines = [ln for ln in r.stdout.splitlines() if ln.split() and
             ln.split()[0].startswith(f"{big}_")]
    check(len(lines) == 1 and lines[0].split()[0] == f"{big}_[0-499%8]" and "PENDING" in lines[0]
          and "(held)" in lines[0], f"the pending array is one line: {lines}")
    r = c.cli("queue", "--noheader", "--array")
    n = sum(1 for ln in r.stdout.splitlines() if ln.split() and ln.split()[0].startswith(f"{big}_"))
    check(n == 500, f"queue --array lists every task: {n}")
    q = c.json("queue")
    one = [j for j in q["jobs"] if j.get("array_job_id") == big]
    check(len(one) == 1 and one[0]["array_pending"] == 500 and one[0]["array_tasks"] == "0-499",
          f"the JSON listing has the same line: {one[:1]}")

    r = c.cli("why", f"{big}_3")
    check(r.returncode == 0 and "waits: Held" in r.stdout and f"wslq release {big + 3}" in r.stdout
          and f"array {big}: 0 of its tasks run now, at most 8 at once" in r.stdout,
          f"why tells a held task's story: {r.stdout!r}")
    r = c.cli("queue", "--noheader")
    line = [ln.split() for ln in r.stdout.splitlines() if ln.split() and
            ln.split()[0].startswith(f"{big}_")]
    check(line and line[0][7] == "Held", f"the REASON column says Held: {line}")

    def states(lo, hi):
        return [c.state(big + k) for k in range(lo, hi)]

    # every bad selector: a one-line error, exit 2 or 1, nothing changed
    for bad, code in ((f"{big}_[3-", 2), (f"{big}_[9-3]", 2), (f"{big}_x", 2), ("0", 2),
                      (f"{big}_[1%2]", 2), (f"{big}_[500]", 1), (f"{big}_[499-500]", 1),
                      (f"{big + 1}_[1]", 1), (f"{ids[1]}_[0]", 1), ("99999999", 1)):
        r = c.cli("cancel", bad)
        check(r.returncode == code and r.stderr.count("\n") == 1 and r.stdout == "",
              f"cancel {bad}: exit {r.returncode}, one line: {r.stderr.strip()!r}")
    r = c.cli("cancel", f"{big}_[3-5]", f"{big}_[")
    check(r.returncode == 2 and r.stdout == "", "one bad operand: nothing is sent at all")
    check(set(states(0, 10)) == {"PENDING"}, f"nothing changed: {states(0, 10)}")

    r = c.cli("cancel", f"{big}_[3-5]")
    check(r.returncode == 0 and f"Cancelled job {big}_[3-5] (3 jobs)" in r.stdout,
          f"cancel a task range: {r.stdout.strip()} {r.stderr.strip()}")
    r = c.cli("cancel", f"{big}_7")
    check(r.returncode == 0, f"cancel one task: {r.stderr.strip()}")
    st = states(0, 10)
    check(st == ["PENDING"] * 3 + ["CANCELLED"] * 3 + ["PENDING", "CANCELLED", "PENDING", "PENDING"],
          f"exactly those tasks were cancelled: {st}")
    r = c.cli("cancel", f"{big}_7")
    check(r.returncode == 1 and "already ended" in r.stderr, f"again: {r.stderr.strip()}")
    r = c.cli("queue", "--noheader")
    label = [ln.split()[0] for ln in r.stdout.splitlines()
             if ln.split() and ln.split()[0].startswith(f"{big}_")]
    check(label == [f"{big}_[0-2,6,8-499%8]"], f"the line says which tasks still wait: {label}")

    # release part of it: at most 8 run at once, the rest wait with the array limit as reason
    r = c.cli("release", f"{big}_[0-19]")
    check(r.returncode == 0 and "Released" in r.stdout, f"release 16 tasks: {r.stdout.strip()}")
    wait_for(lambda: all(s == "COMPLETED" for s in states(0, 20) if s != "CANCELLED"), 90,
             "the released tasks to run")
    st = states(0, 30)
    check(st.count("COMPLETED") == 16 and st[20:] == ["PENDING"] * 10,
          f"only the released tasks ran: {st}")
    r = c.cli("hold", f"{big}_[0-2]")
    check(r.returncode == 1 and "every task" in r.stderr,
          f"hold of tasks that all ended: {r.stderr.strip()}")
    r = c.cli("cancel", str(big))
    check(r.returncode == 0 and "(480 jobs)" in r.stdout,
          f"the array's id cancels every task still waiting: {r.stdout.strip()}")
    check(set(states(20, 500)) == {"CANCELLED"}, "every one of them")

    # ---- hold / release / requeue of one job, owners, restart ----
    alice = c.enrol("alice")
    r = c.cli("submit", "--parsable", "--hold", "--", "sh", "-c", "echo ran", env=alice)
    held = int(r.stdout.strip())
    r = c.cli("show", str(held), env=alice)
    check("Held:" in r.stdout and "wslq release" in r.stdout, f"show says it is held: {r.stdout[:300]}")
    bob = c.enrol("bob")
    r = c.cli("release", str(held), env=bob)
    check(r.returncode == 1 and "alice" in r.stderr, f"bob may not release alice's job: {r.stderr}")
    r = c.cli("hold", str(held), env=alice)
    check(r.returncode == 1 and "held already" in r.stderr, f"hold twice: {r.stderr.strip()}")
    time.sleep(1.0)
    check(c.state(held) == "PENDING", "a held job does not start on a free cluster")

    c.kill_scheduler()
    c.start_scheduler()
    j = c.job(held)
    check(j and j["state"] == "PENDING" and j["held"], f"still held after a restart: {j}")
    time.sleep(1.0)
    check(c.state(held) == "PENDING", "and still not started")
    r = c.cli("release", str(held), env=alice)
    check(r.returncode == 0 and f"Released job {held}" in r.stdout, f"release: {r.stderr}")
    c.wait_state(held, "COMPLETED", timeout=60)
    ev = [e["reason"] for e in c.show(held)["events"]]
    check(ev[:2] == ["submitted held", "released"], f"the events tell it: {ev}")

    r = c.cli("submit", "--parsable", "--", "sh", "-c", "echo attempt $WSLQ_ATTEMPT; sleep 60",
              env=alice)
    run = int(r.stdout.strip())
    c.wait_state(run, "RUNNING", timeout=60)
    r = c.cli("requeue", str(run), env=bob)
    check(r.returncode == 1 and "alice" in r.stderr, f"bob may not requeue it: {r.stderr}")
    r = c.cli("hold", str(run), env=alice)
    check(r.returncode == 1 and "only a pending job" in r.stderr, f"hold a running job: {r.stderr}")
    r = c.cli("requeue", str(run), env=alice)
    check(r.returncode == 0 and f"Requeued job {run}" in r.stdout, f"requeue: {r.stderr}")
    wait_for(lambda: (c.job(run) or {}).get("attempt") == 1, 30, "the second attempt")
    c.wait_state(run, "RUNNING", timeout=60)
    j = c.job(run)
    check(j["attempt"] == 1 and j["state"] == "RUNNING", f"it runs again, attempt 1: {j['state']}")
    wait_for(lambda: "attempt 1" in c.cli("logs", str(run)).stdout, 15, "the new attempt's log")
    ev = [e["reason"] for e in c.show(run)["events"]]
    check("requeue requested" in ev and any("requeued by its owner" in e for e in ev),
          f"the events tell it: {ev}")
    r = c.cli("requeue", str(held))
    check(r.returncode == 1 and "already ended" in r.stderr, f"requeue an ended job: {r.stderr}")

    # ---- why: resources, priority, dependency ----
    gpu = c.submit("--gpus", "1", "--", "sleep", "60")
    c.wait_state(gpu, "RUNNING", timeout=60)
    four = c.submit("--gpus", "4", "--time", "1h", "--", "true")
    four2 = c.submit("--gpus", "4", "--", "true")
    dep = c.submit("-d", f"afterok:{gpu}", "--", "true")

    def reasons():
        q = c.json("queue") or {"jobs": []}
        return {j["id"]: j.get("wait_reason") for j in q["jobs"] if j["state"] == "PENDING"}
    wait_for(lambda: reasons().get(dep) == "Dependency", 30, "the dependency reason")
    got = reasons()
    check(got.get(four) == "Resources" and got.get(four2) == "Priority" and
          got.get(dep) == "Dependency", f"the reasons in the JSON listing: {got}")
    r = c.cli("queue", "--noheader")
    col = {ln.split()[0]: ln.split()[7] for ln in r.stdout.splitlines() if ln.split()}
    check(col.get(str(four)) == "Resources" and col.get(str(four2)) == "Priority" and
          col.get(str(dep)) == "Dependency", f"and in the REASON column: {col}")
    r = c.cli("why", str(four))
    check(r.returncode == 0 and "waits: Resources" in r.stdout and
          "does not fit the free resources now" in r.stdout and
          "0 pending jobs come before it" in r.stdout, f"why {four}: {r.stdout!r}")
    r = c.cli("why", str(four2), "--json")
    import json as _json
    doc = _json.loads(r.stdout) if r.returncode == 0 else {}
    lines = doc.get("lines", [])
    check(doc.get("job", {}).get("wait_reason") == "Priority" and
          any("1 pending job comes before it" in ln for ln in lines), f"why --json: {lines}")
    r = c.cli("why", str(dep))
    check(f"dependency afterok:{gpu}: that job is RUNNING" in r.stdout, f"why {dep}: {r.stdout!r}")
    r = c.cli("why", str(gpu))
    check(r.returncode == 0 and "it does not wait: it is RUNNING on pc1" in r.stdout,
          f"why of a running job: {r.stdout!r}")
    for bad, code in (("x", 2), (f"{gpu}_[1-2]", 2), ("99999999", 1), (f"{gpu}_1", 1)):
        r = c.cli("why", bad)
        check(r.returncode == code and r.stderr.count("\n") == 1, f"why {bad}: {r.stderr!r}")
    r = c.cli("cancel", str(dep), str(four2), str(four), str(gpu))
    check(r.returncode == 0, f"cancel them: {r.stderr}")
    r = c.cli("cancel", str(run))
    check(r.returncode == 0, "cancel it")
    c.wait_state(run, "CANCELLED", timeout=30)

    # ---- afterany, afternotok, singleton ----
    bad = c.submit("--", "sh", "-c", "exit 3")
    c.wait_state(bad, "FAILED", timeout=60)
    ok = c.submit("--", "true")
    c.wait_state(ok, "COMPLETED", timeout=60)
    notok = c.submit("-d", f"afternotok:{bad}", "--", "true")
    anyd = c.submit("-d", f"afterany:{bad},afterany:{ok}", "--", "true")
    c.wait_state(notok, "COMPLETED", timeout=60)
    c.wait_state(anyd, "COMPLETED", timeout=60)
    check(c.state(notok) == "COMPLETED" and c.state(anyd) == "COMPLETED",
          "afternotok of a failed job and afterany of ended jobs run")
    r = c.cli("submit", "-d", f"afternotok:{ok}", "--", "true")
    check(r.returncode == 1 and "could never be met" in r.stderr,
          f"afternotok of a completed job is refused: {r.stderr.strip()}")
    r = c.cli("submit", "-d", "afterany:99999999", "--", "true")
    check(r.returncode == 1 and "not found" in r.stderr, f"afterany of no job: {r.stderr.strip()}")
    gate = os.path.join(out, "gate")
    waitgate = f"while [ ! -e {gate} ]; do sleep 0.1; done"
    first = c.submit("--name", "single", "-d", "singleton", "--", "sh", "-c", waitgate)
    c.wait_state(first, "RUNNING", timeout=60)
    second = c.submit("--name", "single", "-d", "singleton", "--", "true")
    later_notok = c.submit("-d", f"afternotok:{first}", "--", "true")
    later_any = c.submit("-d", f"afterany:{first}", "--", "true")
    wait_for(lambda: reasons().get(second) == "Dependency" and
             reasons().get(later_any) == "Dependency", 30, "the dependency reasons")
    r = c.cli("why", str(second))
    check(f"singleton: job {first} of the same user and name is RUNNING" in r.stdout,
          f"why a singleton waits: {r.stdout!r}")
    r = c.cli("why", str(later_any))
    check(f"dependency afterany:{first}: that job is RUNNING, not ended yet" in r.stdout,
          f"why afterany waits: {r.stdout!r}")
    time.sleep(0.5)
    check(c.state(second) == "PENDING", "the second singleton waits while the first runs")
    open(gate, "w").close()
    for jid in (first, second, later_any):
        c.wait_state(jid, "COMPLETED", timeout=60)
    c.wait_state(later_notok, "CANCELLED", timeout=60)
    j1, j2 = c.job(first), c.job(second)
    check(j2["state"] == "COMPLETED" and j2["start_ms"] >= j1["end_ms"],
          f"the singleton started after the first ended ({j1['end_ms']} <= {j2['start_ms']})")
    j = c.job(later_notok)
    check("COMPLETED, so afternotok can never be met" in j["reason"],
          f"afternotok of a job that completed is cancelled, saying why: {j['reason']}")

    # ---- cancel --me: an array is one request; with --state each task is named ----
    r = c.cli("submit", "--parsable", "--hold", "--array", "0-199", "--", "true", env=alice)
    sweep = int(r.stdout.strip())
    plain = int(c.cli("submit", "--parsable", "--hold", "--", "true", env=alice).stdout.strip())
    bobs = int(c.cli("submit", "--parsable", "--hold", "--", "true", env=bob).stdout.strip())
    r = c.cli("cancel", "--me", env=alice)
    check(r.returncode == 0 and f"Cancelled job {sweep} (200 jobs)" in r.stdout and
          f"Cancelled job {plain}" in r.stdout, f"cancel --me: {r.stdout!r} {r.stderr!r}")
    check(c.state(sweep + 199) == "CANCELLED" and c.state(plain) == "CANCELLED" and
          c.state(bobs) == "PENDING", "alice's jobs ended, bob's waits")
    r = c.cli("submit", "--parsable", "--hold", "--array", "0-4", "--", "true", env=bob)
    small = int(r.stdout.strip())
    r = c.cli("cancel", "--me", "--state", "PENDING", env=bob)
    check(r.returncode == 0 and r.stdout.count("Cancelled job") == 6 and
          f"Cancelled job {small}_0\n" in r.stdout and
          all(c.state(small + k) == "CANCELLED" for k in range(5)),
          f"cancel --me --state PENDING names each task: {r.stdout!r}")

    # ---- bad arrays: one line, nothing queued ----
    before = c.json("queue", "--all")["jobs"][-1]["id"]
    for bad in ("", "5-1", "0-100000", "1%0", "a", "1,,2", "0-9%", "10000000"):
        r = c.cli("submit", "--array", bad, "--", "true")
        check(r.returncode == 2 and r.stderr.count("\n") == 1 and "--array" in r.stderr,
              f"--array {bad!r}: {r.stderr.strip()!r}")
    after = c.json("queue", "--all")["jobs"][-1]["id"]
    check(after == before, "no job was queued by a bad --array")
finally:
    c.stop()
finish()
