#!/usr/bin/env python3
"""Who is who, with CURVE on, against the real programs on loopback.

* Peers the scheduler must not serve: a ZMTP client without CURVE, a key nobody enrolled
  posing as a real node, a client pinning another server's key, a user's key sending a
  node's Register, a node's key submitting a job. None gets a job, a log line or a queue
  entry; the node list and the queue are as they were.
* Ownership: bob sees alice's job in the queue (id, user, name, state) but not its command
  or environment; he may not cancel it or read its log, over the CLI or the HTTP API; an
  admin may. A `--secret-env` value reaches the job and shows nowhere: not in `wslq show`,
  the queue, the API, the logs of the scheduler or the worker.
* Codes work once and expire; a removed user's key and tokens stop working at once; a
  removed node's key is refused and it gets no more jobs.
* The scheduler's state directory and what is in it are its account's alone (0700/0600)."""
import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, free_port, wait_for  # noqa: E402

SECRET = "hf_Zq81-the-secret-value"


def http(port, path, token=None):
    """(status, body text) of GET path, signed in with token if given."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def intruder(c, mode, node, creds=None):
    """wslq-frame-sender's intruder: the lines it printed."""
    env = c.env(WSLQ_CREDENTIALS=creds or c.creds)
    r = subprocess.run([f"{BIN}/wslq-frame-sender", c.addr, "intruder", mode, node],
                       capture_output=True, text=True, timeout=60, env=env)
    return r.stdout.splitlines()


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


http_port = free_port()
c = Cluster(workers=[("pc1", 1)],
            sched_args=["--http", f"127.0.0.1:{http_port}", "--http-rate", "0"])
try:
    alice = c.enrol("alice")
    bob = c.enrol("bob")
    r = c.cli("queue", env=alice)
    check(r.returncode == 0, f"alice enrolled with a one-time code and may use wslq ({r.stderr})")

    # ---- ownership and --secret-env ----
    r = c.cli("submit", "--parsable", "--name", "alicejob", "--secret-env", f"HF_TOKEN={SECRET}",
              "--env", "PLAIN=visible", "--", "sh", "-c",
              'echo "secret length ${#HF_TOKEN}"; echo "uid $(id -u)"; sleep 120', env=alice)
    jid = r.stdout.strip()
    check(r.returncode == 0 and jid.isdigit(), f"alice submitted job {jid} {r.stderr.strip()}")
    running = wait_for(lambda: (c.json("show", jid) or {}).get("job", {}).get("state") ==
                       "RUNNING", 30, "alice's job to run")
    check(bool(running), "alice's job runs")
    wait_for(lambda: "uid" in c.cli("logs", jid, env=alice).stdout, 15, "its output")
    r = c.cli("logs", jid, env=alice)
    check(r.returncode == 0 and f"secret length {len(SECRET)}" in r.stdout,
          f"the job got the --secret-env value (its length is in the log): {r.stdout!r}")
    r = c.cli("show", jid, "--json", env=alice)
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    spec = doc.get("job", {}).get("spec", {})
    check(spec.get("user") == "alice", f"the job's owner is the enrolled name ({spec.get('user')})")
    check("sh" in spec.get("argv", []) and "PLAIN=visible" in spec.get("env", []),
          "alice sees her job's command and environment")
    check(spec.get("secret_env") == ["HF_TOKEN"], "and the name of its secret, not the value")
    check(SECRET not in r.stdout, "wslq show (the owner's) never shows the secret value")

    r = c.cli("queue", "--json", env=bob)
    listed = [j for j in json.loads(r.stdout)["jobs"] if str(j["id"]) == jid] \
        if r.returncode == 0 else []
    check(listed and listed[0]["spec"]["user"] == "alice" and
          listed[0]["spec"]["name"] == "alicejob",
          "bob sees alice's job in the queue: id, owner, name")
    r = c.cli("show", jid, "--json", env=bob)
    spec = json.loads(r.stdout)["job"]["spec"] if r.returncode == 0 else {}
    check(spec.get("argv") == ["(hidden: not your job)"] and not spec.get("env")
          and not spec.get("cwd") and not spec.get("secret_env"),
          f"bob does not see its command, directory or environment: {spec}")
    check("visible" not in r.stdout and SECRET not in r.stdout, "nor any value of it")
    r = c.cli("cancel", jid, env=bob)
    check(r.returncode == 1 and "only its owner or an admin may cancel" in r.stderr,
          f"bob may not cancel alice's job: {r.stderr.strip()}")
    r = c.cli("logs", jid, env=bob)
    check(r.returncode == 1 and "only its owner or an admin" in r.stderr and "secret" not in
          r.stdout, f"bob may not read its log: {r.stderr.strip()}")
    check(c.json("show", jid)["job"]["state"] == "RUNNING", "the job runs on, untouched")
    r = c.cli("submit", "--parsable", "--", "true", env=bob)
    bjid = r.stdout.strip()
    c.wait_state(bjid, "COMPLETED")
    check(c.job(bjid)["spec"]["user"] == "bob", "bob's own job is bob's")

    # ---- the same over HTTP ----
    tok_a = c.cli("token", env=alice).stdout.strip()
    tok_b = c.cli("token", env=bob).stdout.strip()
    check(len(tok_a) == 64 and tok_a != tok_b, "wslq token gives each user a token")
    st, _ = http(http_port, "/api/v1/jobs")
    check(st == 401, f"the API without a token: 401 ({st})")
    st, _ = http(http_port, "/api/v1/jobs", "not-a-token")
    check(st == 401, f"the API with a made-up token: 401 ({st})")
    st, body = http(http_port, "/api/v1/whoami", tok_b)
    check(st == 200 and json.loads(body) == {"user": "bob", "admin": False, "open": False},
          f"whoami with bob's token: {body}")
    st, body = http(http_port, "/api/v1/jobs?state=running", tok_b)
    jobs = {str(j["id"]): j for j in json.loads(body)["jobs"]} if st == 200 else {}
    check(jid in jobs and jobs[jid]["spec"]["user"] == "alice"
          and jobs[jid]["spec"]["argv"] == ["(hidden: not your job)"],
          "bob's API view of the queue: alice's job listed, its command hidden")
    st, body = http(http_port, f"/api/v1/jobs/{jid}", tok_b)
    check(st == 200 and "visible" not in body and SECRET not in body,
          "bob's API view of the job: no environment")
    for path in (f"/api/v1/jobs/{jid}/log", f"/api/v1/jobs/{jid}/metrics",
                 f"/api/v1/events?job={jid}"):
        st, body = http(http_port, path, tok_b)
        check(st == 403 and "owner" in body, f"bob: {path} -> 403 ({st})")
    st, body = http(http_port, f"/api/v1/jobs/{jid}/log", tok_a)
    check(st == 200 and "secret length" in body, "alice reads her job's log over the API")
    st, body = http(http_port, f"/api/v1/jobs/{jid}", tok_a)
    check(st == 200 and "PLAIN=" in body and "HF_TOKEN" in body and SECRET not in body,
          f"alice's API view: her variables' names, never the secret ({st})")
    st, body = http(http_port, "/metrics", tok_b)
    check(st == 200 and "wslq_forbidden_total" in body, "any signed-in user reads /metrics")

    # an admin may act on anyone's job
    r = c.cli("cancel", jid)
    check(r.returncode == 0, f"an admin cancels alice's job ({r.stderr.strip()})")
    c.wait_state(jid, "CANCELLED")

    # ---- intruders ----
    nodes_before = c.json("nodes")["nodes"]
    jobs_before = len(c.json("queue", "--all")["jobs"])
    lines = intruder(c, "plain", "pc1")
    check(not any(ln.startswith("reply") for ln in lines),
          f"a client without CURVE gets no message at all: {lines}")
    lines = intruder(c, "wrong-server", "pc1")
    check(not any(ln.startswith("reply") for ln in lines) and "handshake failed" in lines,
          f"a client pinning another server's key gets nothing, its handshake fails: {lines}")
    lines = intruder(c, "unknown", "pc1")
    replies = [ln for ln in lines if ln.startswith("reply")]
    check(len(replies) == 6 and all("does not know this key" in ln for ln in replies),
          f"an uninvited key posing as node pc1: six refusals, nothing else: {replies}")
    lines = intruder(c, "creds", "pc1", creds=alice["WSLQ_CREDENTIALS"])
    reg = [ln for ln in lines if ln.startswith("reply")]
    check(any("only a node may send this" in ln for ln in reg),
          f"alice's key may not register as a node: {reg}")
    node_creds = os.path.join(c.dir, "w-pc1", "credentials")
    r = c.cli("submit", "--", "true", env={"WSLQ_CREDENTIALS": node_creds})
    check(r.returncode == 1 and "a node's key (pc1) may not be used for this" in r.stderr,
          f"a node's key may not submit jobs: {r.stderr.strip()}")
    nodes_after = c.json("nodes")["nodes"]
    check([(n["name"], n["ip"]) for n in nodes_after] == [(n["name"], n["ip"])
                                                         for n in nodes_before],
          "the node list is as it was")
    queue = c.json("queue", "--all")["jobs"]
    check(len(queue) == jobs_before and not any(j["spec"]["name"] == "intruder" for j in queue),
          "no intruder's job was queued")
    st, body = http(http_port, "/metrics", tok_a)
    denied = [ln for ln in body.splitlines() if ln.startswith("wslq_auth_denied_total ")]
    check(denied and float(denied[0].split()[1]) >= 2,
          f"the failed handshakes are counted: {denied}")

    # ---- administration over the network: admins only ----
    r = c.cli("admin", "user", "list", "--remote", env=alice)
    check(r.returncode == 1 and "only an admin may do this (alice is not one)" in r.stderr,
          f"alice may not administer: {r.stderr.strip()}")
    r = c.cli("admin", "user", "list", "--remote", "--json")
    names = {p["name"] for p in json.loads(r.stdout)["principals"]} if r.returncode == 0 else set()
    check({"alice", "bob", c.user} <= names, f"an admin user lists the users remotely: {names}")
    r = c.cli("admin", "user", "list", env={"WSLQ_ADMIN_SOCKET": "/nonexistent/admin.sock"})
    check(r.returncode == 1 and "cannot use the admin socket" in r.stderr,
          f"without --remote, the local socket is needed: {r.stderr.strip()}")

    # ---- codes: once, and not after they expire ----
    code = c.code("user", "add", "carol")
    e = c.env(WSLQ_CREDENTIALS=os.path.join(c.dir, "creds", "carol"))
    r1 = subprocess.run([f"{BIN}/wslq", "login", code], capture_output=True, text=True,
                        timeout=30, env=e)
    e2 = c.env(WSLQ_CREDENTIALS=os.path.join(c.dir, "creds", "carol2"))
    r2 = subprocess.run([f"{BIN}/wslq", "login", code], capture_output=True, text=True,
                        timeout=30, env=e2)
    check(r1.returncode == 0 and r2.returncode == 1 and "used" in r2.stderr,
          f"an enrolment code works once: {r2.stderr.strip()}")
    check(not os.path.exists(os.path.join(c.dir, "creds", "carol2")),
          "the refused login left no credentials behind")
    code = c.code("user", "add", "dave", "--valid", "1s")
    time.sleep(2.2)
    e = c.env(WSLQ_CREDENTIALS=os.path.join(c.dir, "creds", "dave"))
    r = subprocess.run([f"{BIN}/wslq", "login", code], capture_output=True, text=True,
                       timeout=30, env=e)
    check(r.returncode == 1 and "expired" in r.stderr, f"an expired code: {r.stderr.strip()}")
    bad = code[:-70] + "0" * 32 + code[-38:]
    r = subprocess.run([f"{BIN}/wslq", "login", bad], capture_output=True, text=True,
                       timeout=30, env=e)
    check(r.returncode == 1, f"a made-up code is refused: {r.stderr.strip()}")

    # ---- removing a user: keys and tokens stop at once ----
    r = c.admin("user", "remove", "bob")
    check(r.returncode == 0, "wslq admin user remove bob")
    r = c.cli("queue", env=bob, timeout=30)
    check(r.returncode == 1 and "refused this key" in r.stderr,
          f"bob's key is refused: {r.stderr.strip()}")
    st, _ = http(http_port, "/api/v1/jobs", tok_b)
    check(st == 401, f"bob's token stopped working ({st})")

    # ---- removing a node: its key is refused, it gets no more jobs ----
    c.start_worker("pc2", 1)
    r = c.admin("node", "remove", "pc2")
    check(r.returncode == 0, f"wslq admin node remove pc2 {r.stderr.strip()}")
    gone = wait_for(lambda: "pc2" not in [n["name"] for n in c.json("nodes")["nodes"]], 10,
                    "pc2 to leave the node list")
    check(bool(gone), "the removed node left the node list")
    ids = [c.submit("--", "true") for _ in range(4)]
    for i in ids:
        c.wait_state(i, "COMPLETED")
    check(all([a["node"] for a in c.job(i)["allocs"]] == ["pc1"] for i in ids),
          "every later job ran on pc1")
    refused_log = wait_for(lambda: "this key was revoked by an admin (it was pc2's)" in
                           open(os.path.join(c.dir, "worker-pc2.log")).read(), 15,
                           "pc2 to log the refusal")
    check(bool(refused_log), "the removed worker says why it is refused")

    # ---- files ----
    sched = os.path.join(c.dir, "sched")
    check(mode_of(sched) == 0o700, f"state directory 0700 ({oct(mode_of(sched))})")
    for f in ("queue.db", "server.key", "admin.sock", "scheduler.lock"):
        p = os.path.join(sched, f)
        check(mode_of(p) == 0o600, f"{f} 0600 ({oct(mode_of(p))})")
    check(mode_of(os.path.join(sched, "logs")) == 0o700, "logs/ 0700")
    logs = os.listdir(os.path.join(sched, "logs"))
    check(logs and all(mode_of(os.path.join(sched, "logs", f)) == 0o600 for f in logs),
          f"job logs 0600 ({len(logs)} files)")
    check(mode_of(c.creds) == 0o600, "the user's credentials 0600")

    # ---- the secret value, nowhere ----
    for f in ("scheduler.log", "worker-pc1.log"):
        text = open(os.path.join(c.dir, f), errors="replace").read()
        check(SECRET not in text, f"the secret is not in {f}")
    everywhere = [c.cli("queue", "--all", "--json").stdout,
                  c.cli("show", jid, "--json").stdout,
                  http(http_port, "/api/v1/jobs?limit=100", tok_a)[1],
                  http(http_port, f"/api/v1/jobs/{jid}", tok_a)[1]]
    check(not any(SECRET in t for t in everywhere),
          "nor in the queue, wslq show or the API, for the owner or an admin")
finally:
    c.stop()
finish()
