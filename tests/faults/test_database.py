#!/usr/bin/env python3
"""Faults: a queue database that cannot be trusted or written is refused at start with a
one-line reason and a way out (exit 3, which systemd does not restart), never used silently;
two schedulers never share a state directory; a disk that fills while the scheduler runs
stops it with the reason, told to the submitter.

Kinds of damage: truncated to 0 bytes, a garbage header, 20 bytes overwritten in the middle,
a job record damaged by hand, another program's SQLite file; a state directory on a
read-only file system and on a full one (these two in a mount namespace of the test's own,
skipped where the test may not make one)."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))
from cluster import BIN, check, finish, free_port, wait_for  # noqa: E402

root = tempfile.mkdtemp(prefix="wslq-faults-db-")
MARK = f"WQTEST_CLUSTER={root}"
procs = []


def env():
    return dict(os.environ, WQTEST_CLUSTER=root)


def sched_cmd(state, port, *extra):
    return [f"{BIN}/wslq-scheduler", "--listen", f"tcp://127.0.0.1:{port}", "--state-dir",
            state, "--http", "off", *extra]


def start(state, wrap=None):
    """A scheduler on state; returns (process, address). Its output goes to p.log_path. The
    address is its local admin socket: the test talks as root on the scheduler host does. The
    socket lies outside the state directory, which may be a mount only the scheduler sees."""
    port = free_port()
    sock = os.path.join(root, f"admin-{port}.sock")
    cmd = sched_cmd(state, port, "--admin-socket", sock)
    if wrap:
        cmd = wrap + cmd
    log_path = tempfile.mktemp(dir=root, suffix=".log")
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=log, env=env())
    p.log_path = log_path
    procs.append(p)
    return p, f"ipc://{sock}"


def cli(addr, *args, timeout=20):
    e = env()
    e["WSLQ_SCHEDULER"] = addr
    return subprocess.run([f"{BIN}/wslq", *args], capture_output=True, text=True, env=e,
                          timeout=timeout)


def refused(state, what, want, wrap=None):
    """The scheduler must exit 3 at once with a line naming the problem."""
    p, _ = start(state, wrap)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        check(False, f"{what}: refused (it started and ran instead)")
        return
    err = open(p.log_path).read()
    line = [ln for ln in err.splitlines() if ln.startswith("wslq-scheduler: ") and
            "info:" not in ln]
    check(p.returncode == 3 and line and want in line[-1],
          f"{what}: exit 3 with '{want}': rc={p.returncode} {line[-1] if line else err!r}")


def make_queue(n_pending):
    """A state directory whose queue holds n_pending PENDING jobs (no worker: they wait)."""
    state = tempfile.mkdtemp(dir=root)
    p, addr = start(state)
    wait_for(lambda: cli(addr, "queue").returncode == 0, 10, "scheduler to answer")
    r = cli(addr, "submit", "--parsable", "--wrap", "sleep 1000")
    first = int(r.stdout)
    subprocess.run([f"{BIN}/wslq-bench-submit", addr, "pending", str(n_pending - 1), str(first)],
                   capture_output=True, timeout=120, env=env())
    p.send_signal(signal.SIGTERM)
    p.wait(20)
    return state


try:
    # A sound queue first, as the reference: it restarts with every job.
    good = make_queue(3000)
    p, addr = start(good)
    ok = wait_for(lambda: cli(addr, "queue").returncode == 0, 10, "restart")
    n = len(cli(addr, "queue", "--json", "--limit", "5000").stdout.split('"id":')) - 1
    check(ok and n == 3000, f"a sound queue restarts with all 3000 pending jobs ({n})")
    p.send_signal(signal.SIGTERM)
    p.wait(20)

    # Two schedulers on one state directory: the second is refused, naming the first.
    p1, addr1 = start(good)
    wait_for(lambda: cli(addr1, "queue").returncode == 0, 10, "first scheduler")
    refused(good, "a second scheduler on the same state directory",
            f"is in use by another wslq-scheduler (pid {p1.pid})")
    check(p1.poll() is None and cli(addr1, "queue").returncode == 0,
          "the first scheduler runs on, undisturbed")
    p1.send_signal(signal.SIGTERM)
    p1.wait(20)

    db = lambda s: os.path.join(s, "queue.db")  # noqa: E731

    def copy_of(state):
        d = tempfile.mkdtemp(dir=root)
        shutil.rmtree(d)
        shutil.copytree(state, d)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db(d) + suffix):
                os.unlink(db(d) + suffix)
        return d

    s = copy_of(good)
    open(db(s), "w").close()
    refused(s, "a 0-byte queue.db", "is empty (0 bytes)")

    s = copy_of(good)
    with open(db(s), "r+b") as f:
        f.write(b"this is not a database header at all!!!")
    refused(s, "a garbage header", "is damaged or not a database")

    s = copy_of(good)
    size = os.path.getsize(db(s))
    page = 4096
    with open(db(s), "r+b") as f:
        f.seek((size // page // 2) * page)  # the header of a page in the middle
        f.write(b"\xff" * 20)
    refused(s, "20 bytes overwritten in the middle", "is damaged")

    s = copy_of(good)
    con = sqlite3.connect(db(s))
    con.execute("UPDATE jobs SET info = x'0a0d0e0f' WHERE id = 1500")
    con.commit()
    con.close()
    refused(s, "one job's record damaged by hand", "the record of job 1500 cannot be read")

    s = tempfile.mkdtemp(dir=root)
    con = sqlite3.connect(db(s))
    con.execute("CREATE TABLE photos (id INTEGER, data BLOB)")
    con.commit()
    con.close()
    refused(s, "another program's SQLite file", "is not a wslq queue")

    # Read-only and full file systems, in a mount namespace of this test's own.
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        print("SKIP read-only and full file systems: this test may not make a mount namespace "
              f"({probe.stderr.decode().strip()})", flush=True)
    else:
        s = copy_of(good)
        ro = ["unshare", "--mount", "sh", "-c",
              f'mount --bind "{s}" "{s}" && mount -o remount,ro,bind "{s}" && exec "$@"', "sh"]
        refused(s, "a read-only file system", "read-only file system", wrap=ro)

        s = tempfile.mkdtemp(dir=root)
        fill = ["unshare", "--mount", "sh", "-c",
                f'mount -t tmpfs -o size=512k tmpfs "{s}" && '
                f'(head -c 2000000 /dev/zero > "{s}/filler" 2>/dev/null; true) && exec "$@"', "sh"]
        refused(s, "a full file system at start", "no space is left", wrap=fill)

        # The disk fills while it runs: the submit that cannot be written is told why, and the
        # scheduler stops with exit 3 instead of answering from memory.
        s = tempfile.mkdtemp(dir=root)
        grow = ["unshare", "--mount", "sh", "-c",
                f'mount -t tmpfs -o size=600k tmpfs "{s}" && exec "$@"', "sh"]
        p, addr = start(s, wrap=grow)
        wait_for(lambda: cli(addr, "queue").returncode == 0, 10, "scheduler on a small disk")
        big_env = [f"--env=BLOB={'z' * 7000}"]
        last = None
        acked = 0
        for i in range(400):
            r = cli(addr, "submit", "--parsable", *big_env, "--wrap", "true")
            if r.returncode != 0:
                last = r.stderr.strip()
                break
            acked += 1
        check(last is not None and "cannot write its database" in last and "no space" in last,
              f"the submit that did not fit is told why after {acked} acknowledged: {last!r}")
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            pass
        check(p.returncode == 3, f"the scheduler stopped with exit 3 ({p.returncode})")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    shutil.rmtree(root, ignore_errors=True)
finish()
