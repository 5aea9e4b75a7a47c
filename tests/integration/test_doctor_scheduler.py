#!/usr/bin/env python3
"""wslq doctor --scheduler-host against a real loopback cluster.

* The ok case: the config names the cluster's scheduler and --lan-addr 127.0.0.1 stands for
  the host's LAN address: the scheduler runs (its lock held, its pid) and answers over CURVE,
  its port and the dashboard's are reachable, the database is an SQLite file, the server key
  is its owner's only; exit 0; --json parses and says the same.
* Bound to 127.0.0.1 with the host's real addresses as the LAN: sched.listen warns that
  workers on other PCs cannot reach it and names the config key; a dashboard on 127.0.0.1
  with http_public = summary (meant for other machines) warns too.
* A world-readable server.key: keys.server FAILs with the chmod fix, exit 1.
* The scheduler stopped: sched.process and sched.answers FAIL, exit 1.
* Bad usage (--config without --scheduler-host, with --node, a --lan-addr that is no IPv4
  address, a broken config file): exit 2, nothing printed on stdout."""
import json
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, free_port, wait_for  # noqa: E402


def by_id(doc):
    return {c["id"]: c for c in doc["checks"]}


def doctor(c, conf, *extra):
    r = c.cli("doctor", "--scheduler-host", "--config", conf, *extra, timeout=60)
    return r


hport = free_port()
c = Cluster(workers=[("pc1", 1)], sched_args=["--http", f"127.0.0.1:{hport}"])
try:
    state = os.path.join(c.dir, "sched")
    conf = os.path.join(c.dir, "wslq.conf")
    with open(conf, "w") as f:
        f.write(f"[scheduler]\nlisten = {c.addr}\nstate_dir = {state}\n"
                f"http = 127.0.0.1:{hport}\n\n[worker]\nstate_dir = /nowhere\n")
    # the worker's clock offset is measured from its heartbeats
    wait_for(lambda: "time.offset" in json.dumps(c.json("nodes")), 20, "pc1's clock offset")

    # ---- ok ----
    r = doctor(c, conf, "--lan-addr", "127.0.0.1", "--json")
    check(r.returncode == 0, f"ok case exits 0: {r.returncode} {r.stdout} {r.stderr}")
    doc = json.loads(r.stdout)
    ck = by_id(doc)
    for cid in ("sched.process", "sched.answers", "sched.listen", "sched.http", "state.dir",
                "state.db", "keys.server", "time.nodes"):
        check(ck.get(cid, {}).get("verdict") == "pass",
              f"{cid} passes: {ck.get(cid)}")
    check(doc["scheduler"]["pid"] == c.sched.pid and f"pid {c.sched.pid}" in
          ck["sched.process"]["summary"], f"the running scheduler's pid: {doc['scheduler']}")
    check("over CURVE" in ck["sched.answers"]["summary"]
          and "nodes known: 1" in ck["sched.answers"]["summary"],
          f"answers over CURVE: {ck['sched.answers']['summary']}")
    check(f"reachable from this host at 127.0.0.1:{c.port}" in ck["sched.listen"]["summary"],
          f"its port is reachable: {ck['sched.listen']['summary']}")
    check(f"127.0.0.1:{hport}" in ck["sched.http"]["summary"], "the dashboard's port too")
    check(f"{state}/queue.db: SQLite, " in ck["state.db"]["summary"],
          f"the database: {ck['state.db']['summary']}")
    check("mode 0600" in ck["keys.server"]["summary"], ck["keys.server"]["summary"])
    check(ck["time.ntp"]["verdict"] in ("pass", "warn", "info"), "time.ntp is there")
    check(ck["state.disk"]["verdict"] in ("pass", "warn") and "free of" in
          ck["state.disk"]["summary"], f"disk: {ck['state.disk']}")
    check(doc["counts"]["fail"] == 0 and doc["exit_code"] == 0, f"counts: {doc['counts']}")

    # ---- 127.0.0.1 only, with the host's own addresses as the LAN ----
    conf2 = os.path.join(c.dir, "public.conf")
    with open(conf2, "w") as f:
        f.write(f"[scheduler]\nlisten = {c.addr}\nstate_dir = {state}\n"
                f"http = 127.0.0.1:{hport}\nhttp_public = summary\n")
    r = doctor(c, conf2)
    lines = r.stdout.splitlines()
    warn = [ln for ln in lines if ln.startswith("WARN") and "sched.listen" in ln]
    check(r.returncode == 0 and len(warn) == 1
          and f"listen = {c.addr} is this host only: workers and users on other PCs cannot "
              "reach it" in warn[0], f"the loopback-only warning:\n{r.stdout}")
    fix = lines[lines.index(warn[0]) + 1]
    check(f"fix: set listen = tcp://0.0.0.0:{c.port} in [scheduler] of {conf2}" in fix,
          f"the fix names the key and the file: {fix}")
    check(any(ln.startswith("WARN") and "sched.http" in ln and "this host only" in ln
              for ln in lines), f"a public dashboard on 127.0.0.1 warns:\n{r.stdout}")
    r = doctor(c, conf, "--json")
    http = by_id(json.loads(r.stdout))["sched.http"]
    check(http["verdict"] == "info" and "http = " in http["fix"],
          f"a dashboard meant for this host only is information: {http}")

    # ---- a world-readable server key ----
    key = os.path.join(state, "server.key")
    os.chmod(key, 0o644)
    try:
        r = doctor(c, conf, "--lan-addr", "127.0.0.1")
        line = [ln for ln in r.stdout.splitlines() if "keys.server" in ln]
        check(r.returncode == 1 and line and line[0].startswith("FAIL")
              and "mode 0644: every user of this host may read or change it" in line[0],
              f"world-readable key fails: {r.returncode}\n{r.stdout}")
        check(f"fix: chmod 600 {key}" in r.stdout, "with the chmod fix")
        check("1 fail" in r.stdout.splitlines()[-1], f"totals: {r.stdout.splitlines()[-1]}")
    finally:
        os.chmod(key, stat.S_IRUSR | stat.S_IWUSR)

    # ---- bad usage changes nothing ----
    r = c.cli("doctor", "--config", conf)
    check(r.returncode == 2 and "--config and --lan-addr go with --scheduler-host" in r.stderr,
          f"--config alone: {r.returncode} {r.stderr.strip()}")
    r = c.cli("doctor", "--scheduler-host", "--node", "pc1")
    check(r.returncode == 2 and "one or the other" in r.stderr, f"with --node: {r.stderr}")
    for bad in ("10.0.0", "eth0", ","):
        r = c.cli("doctor", "--scheduler-host", "--config", conf, "--lan-addr", bad)
        check(r.returncode == 2 and r.stdout == "" and "--lan-addr: " in r.stderr,
              f"--lan-addr {bad}: {r.returncode} {r.stderr.strip()}")
    with open(os.path.join(c.dir, "bad.conf"), "w") as f:
        f.write("[scheduler\nlisten = x\n")
    r = c.cli("doctor", "--scheduler-host", "--config", os.path.join(c.dir, "bad.conf"))
    check(r.returncode == 2 and "syntax error" in r.stderr, f"a broken config: {r.stderr}")

    # ---- the scheduler stopped ----
    c.kill_scheduler()
    r = doctor(c, conf, "--lan-addr", "127.0.0.1", "--json", "--timeout", "2")
    ck = by_id(json.loads(r.stdout))
    check(r.returncode == 1 and ck["sched.process"]["verdict"] == "fail"
          and "its lock is free" in ck["sched.process"]["summary"]
          and ck["sched.answers"]["verdict"] == "fail"
          and ck["sched.listen"]["verdict"] == "fail",
          f"a stopped scheduler fails: {r.returncode} {ck.get('sched.process')} "
          f"{ck.get('sched.answers')} {ck.get('sched.listen')}")
finally:
    c.stop()
finish()
