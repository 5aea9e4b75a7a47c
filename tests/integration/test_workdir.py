#!/usr/bin/env python3
"""No shared file system: wslq submit --workdir, --output and wslq fetch (README "No shared
file system"), with two workers.

* A snapshot honours .gitignore and .wslqignore (names, globs, dir/, leading /) and leaves .git
  and links leading outside out; a 2-node job's ranks start in their node's work area, each
  lists it and reads a file from it, and ignored files are absent on both nodes.
* Over workdir_max_mb the submit is refused in one line naming the size, the limit and the
  biggest entry; nothing is stored at the scheduler.
* The same directory again uploads nothing: the scheduler still holds one snapshot file; once
  no job uses it, it is removed (snapshot_retention = 0).
* --output: each node's files come back; wslq fetch unpacks them into DEST/<node>/. Fetch of
  another user's job, of an unknown job, of a job without --output and of a running one is
  refused in one line.
* A job whose working directory is missing on the node ends FAILED with a reason naming the
  directory and the node; one whose snapshot is gone from the scheduler before it starts, with
  a one-line reason naming the node and the snapshot and saying to resubmit with --workdir
  (wslq show's Reason line)."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

tmp = tempfile.mkdtemp(prefix="wslq-wd-")
cfg = os.path.join(tmp, "sched.conf")
with open(cfg, "w") as f:
    f.write("[scheduler]\nhttp = off\nworkdir_max_mb = 1\nsnapshot_retention = 0\n")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


proj = os.path.join(tmp, "proj")
write(os.path.join(proj, "keep.txt"), "hello-from-snapshot\n")
write(os.path.join(proj, "sub", "data.txt"), "sub-data\n")
write(os.path.join(proj, "noise.log"), "ignored by a glob\n")
write(os.path.join(proj, "build", "out.o"), "ignored dir\n")
write(os.path.join(proj, "top-only.txt"), "ignored at the root only\n")
write(os.path.join(proj, "sub", "top-only.txt"), "kept below the root\n")
write(os.path.join(proj, "secret.key"), "ignored by .wslqignore\n")
write(os.path.join(proj, ".git", "config"), "never shipped\n")
write(os.path.join(proj, ".gitignore"), "*.log\nbuild/\n/top-only.txt\n")
write(os.path.join(proj, ".wslqignore"), "secret.*\n")
write(os.path.join(tmp, "outside.txt"), "outside\n")
os.symlink("../outside.txt", os.path.join(proj, "link-out"))
os.symlink("keep.txt", os.path.join(proj, "link-in"))

c = Cluster(workers=[("pc1", 1), ("pc2", 1)], sched_args=["--config", cfg])
snapdir = os.path.join(c.dir, "sched", "snapshots")


def stored():
    n = []
    for root, _, files in os.walk(snapdir):
        n += [os.path.join(root, f) for f in files]
    return n


try:
    # ---- a 2-node job in the snapshot ----
    # held until the store is looked at: with snapshot_retention = 0 the snapshot goes as soon
    # as the job ends, which a quick job can do before the look
    r = c.cli("submit", "--parsable", "--hold", "--nodes", "2", "--workdir", proj, "--", "sh",
              "-c", 'echo "node=$WSLQ_NODE cwd=$(pwd)"; echo "ls:" $(ls -A | sort); cat keep.txt; '
              'cat sub/data.txt sub/top-only.txt link-in')
    jid = r.stdout.strip()
    check(r.returncode == 0 and jid.isdigit(), f"2-node --workdir submit: {r.stderr.strip()}")
    check("uploaded" in r.stderr and "1 entries left out" in r.stderr,
          f"the CLI says it uploaded and left the outside link out: {r.stderr.strip()}")
    check(len(stored()) == 1, f"one snapshot stored: {stored()}")
    r = c.cli("release", jid)
    check(r.returncode == 0, f"the job released: {r.stderr.strip()}")
    c.wait_state(jid, ("COMPLETED", "FAILED", "CANCELLED"), timeout=60)
    j = c.job(jid)
    log = c.cli("logs", jid).stdout
    check(j["state"] == "COMPLETED", f"the job completed: {j['state']} {j.get('reason')} {log}")
    # the kept file and the link to it (inside the tree), read on each node
    check(log.count("hello-from-snapshot") == 4 and log.count("sub-data") == 2 and
          log.count("kept below the root") == 2,
          f"both nodes' ranks read the snapshot's files: {log!r}")
    for node in ("pc1", "pc2"):
        check(f"node={node} cwd={c.dir}/w-{node}/spool/{jid}.0/work" in log,
              f"{node}'s rank started in its work area: {log!r}")
    lines = [ln for ln in log.splitlines() if "ls:" in ln]
    check(len(lines) == 2 and all(ln.split("ls:", 1)[1].split() ==
                                  [".gitignore", ".wslqignore", "keep.txt", "link-in", "sub"]
                                  for ln in lines),
          f"ignored files, .git and the outside link are absent on both nodes: {lines}")
    c.wait_state(jid, "COMPLETED")
    check(wait_for(lambda: stored() == [], 30, "the unused snapshot to go"),
          "the snapshot no job uses is removed (snapshot_retention = 0)")

    # ---- dedup: the same directory twice, one file ----
    a = c.submit("--hold", "--workdir", proj, "--", "true")
    r = c.cli("submit", "--parsable", "--hold", "--workdir", proj, "--", "true")
    b = r.stdout.strip()
    check(a is not None and b.isdigit(), f"two held submits of the same directory {r.stderr}")
    check("already at the scheduler" in r.stderr, f"the second uploads nothing: {r.stderr}")
    check(len(stored()) == 1, f"still one snapshot stored: {stored()}")
    c.cli("cancel", str(a), b)
    check(wait_for(lambda: stored() == [], 30, "the snapshot to go after both jobs"),
          "removed when the last job using it ends")

    # ---- over the limit: refused, nothing stored ----
    big = os.path.join(tmp, "big")
    write(os.path.join(big, "small.txt"), "x\n")
    with open(os.path.join(big, "weights.bin"), "wb") as f:
        f.write(os.urandom(2 << 20))
    r = c.cli("submit", "--workdir", big, "--", "true")
    err = r.stderr.strip()
    check(r.returncode == 1 and len(err.splitlines()) == 1 and "2.0 MiB" in err and
          "limit of 1.0 MiB" in err and "weights.bin" in err,
          f"over workdir_max_mb: one line with size, limit and the biggest entry: {err}")
    check(stored() == [], f"nothing stored after the refusal: {stored()}")

    # ---- --output and wslq fetch ----
    r = c.cli("submit", "--parsable", "--nodes", "2", "--workdir", proj, "--output", "out",
              "--", "sh", "-c", 'mkdir -p out/deep && echo "result-$WSLQ_NODE" > out/r.txt && '
              'echo inner > out/deep/x')
    oj = r.stdout.strip()
    check(r.returncode == 0 and oj.isdigit(), f"--output submit: {r.stderr.strip()}")
    c.wait_state(oj, ("COMPLETED", "FAILED"), timeout=60)
    check(c.state(oj) == "COMPLETED", f"the --output job completed: {c.job(oj)}")
    dest = os.path.join(tmp, "fetched")
    r = c.cli("fetch", oj, "--dest", dest)
    check(r.returncode == 0, f"wslq fetch: {r.stdout} {r.stderr}")
    for node in ("pc1", "pc2"):
        p = os.path.join(dest, node, "r.txt")
        got = open(p).read() if os.path.exists(p) else None
        check(got == f"result-{node}\n", f"{node}'s output in DEST/{node}: {got!r}")
        check(os.path.exists(os.path.join(dest, node, "deep", "x")), f"{node}'s subdirectory")

    bob = c.enrol("bob")
    r = c.cli("fetch", oj, "--dest", os.path.join(tmp, "bob"), env=bob)
    check(r.returncode == 1 and "only its owner or an admin" in r.stderr and
          not os.path.exists(os.path.join(tmp, "bob")),
          f"another user's job refused: {r.stderr.strip()}")
    r = c.cli("fetch", "999999")
    check(r.returncode == 1 and "not found" in r.stderr, f"unknown job: {r.stderr.strip()}")
    r = c.cli("fetch", jid)
    check(r.returncode == 1 and "without --output" in r.stderr,
          f"a job without --output: {r.stderr.strip()}")
    run = c.submit("--workdir", proj, "--output", "out", "--", "sleep", "60")
    c.wait_state(run, "RUNNING", timeout=60)
    r = c.cli("fetch", str(run))
    check(r.returncode == 1 and "is RUNNING" in r.stderr, f"a running job: {r.stderr.strip()}")
    c.cli("cancel", str(run))

    # ---- a missing working directory, a snapshot gone ----
    missing = os.path.join(tmp, "no-such-dir")
    m = c.submit("--chdir", missing, "--nodelist", "pc2", "--", "true")
    c.wait_state(m, ("FAILED", "COMPLETED"), timeout=60)
    j = c.job(m)
    events = " | ".join(f"{e.get('reason', '')} {e.get('detail', '')}"
                        for e in c.show(m)["events"])
    check(j["state"] == "FAILED" and f"cannot use working directory {missing} on pc2" in events
          and f"cannot use working directory {missing} on pc2" in c.cli("logs", str(m)).stdout,
          f"missing directory: its events and log name it and the node: {events}")
    check(f"cannot use working directory {missing} on pc2" in (j.get("reason") or ""),
          f"missing directory: the job's own reason names it: {j.get('reason')}")
    g = c.submit("--hold", "--nodelist", "pc1", "--workdir", proj, "--", "true")
    gone = stored()
    check(len(gone) == 1, f"the held job's snapshot is stored: {gone}")
    short = os.path.basename(gone[0]).split(".")[0][:12]
    for p in gone:
        os.unlink(p)
    c.cli("release", str(g))
    c.wait_state(g, ("FAILED", "COMPLETED"), timeout=90)
    j = c.job(g)
    say = (f"the job's --workdir snapshot {short} is no longer stored on the scheduler "
           "(snapshot_retention); resubmit it with --workdir")
    text = " | ".join(f"{e.get('reason', '')} {e.get('detail', '')}" for e in c.show(g)["events"])
    check(j["state"] == "FAILED" and say in text,
          f"a snapshot gone before the start: its events say what to do: {text}")
    reason = j.get("reason") or ""
    check(reason == f"rank 0 on pc1 exited with code 1: {say}",
          f"a snapshot gone: the job's own reason names the node and what to do: {reason!r}")
    shown = c.cli("show", str(g)).stdout
    check(any(ln.strip().startswith("Reason:") and ln.rstrip().endswith(say)
              for ln in shown.splitlines()),
          f"wslq show gives it on the Reason line:\n{shown}")
finally:
    c.stop()
    shutil.rmtree(tmp, ignore_errors=True)
finish()
