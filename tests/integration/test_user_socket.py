#!/usr/bin/env python3
"""The scheduler host's user socket (--user-socket; scheduler/usock.c): local users reach the
scheduler over a Unix stream, known by the uid the kernel gives (SO_PEERCRED), as the
enrolled wslq user named as their account.

Needs root, useradd, userdel and runuser (skipped with the reason otherwise): two temporary
accounts are made, one enrolled as a wslq user (by its name, with `wslq login` over TCP as
any user enrols) and one not; the wslq command runs as them under runuser with
WSLQ_SCHEDULER=unix:PATH and no credentials file.

* The enrolled account submits, lists, shows, follows the log of (`logs -f`, a parked request
  on the same connection) and cancels its jobs over the socket; the jobs are its (spec.user);
  another user's job may not be cancelled or its log read.
* The account nobody enrolled is refused in one line naming the account and how to enrol.
* Root over the socket is the local admin (as on the admin socket).
* Junk gets the connection closed, an ErrorReply first where the peer can still read it, and
  counted (wslq_wire_protocol_errors_total): an oversized length, a zero length, a frame that
  does not decode, a half frame then close, a half frame left alone (closed after 5 s); more
  connections of one uid than the per-peer cap are closed at once. The scheduler serves on.
* A job acknowledged over the socket survives the scheduler's kill -9.
* A missing socket gives the one-line "cannot reach scheduler at unix:PATH (...)"."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, free_port, temp_accounts, wait_for  # noqa: E402

if os.geteuid() != 0:
    print(f"skipped: the test accounts need root (this runs as uid {os.geteuid()})")
    sys.exit(77)
missing = [t for t in ("useradd", "userdel", "runuser") if shutil.which(t) is None]
if missing:
    print(f"skipped: {', '.join(missing)} missing: no temporary accounts")
    sys.exit(77)

home = tempfile.mkdtemp(prefix="wqu-home-")
os.chmod(home, 0o755)
(enrolled, stranger), remove_accounts = temp_accounts(["wqu", "wqs"], home)

http_port = free_port()
c = Cluster(workers=[("pc1", 1)], user_socket=True,
            sched_args=["--http", f"127.0.0.1:{http_port}", "--http-rate", "0"])


def as_account(acct, *args, timeout=60):
    """wslq ARGS run as the account over the user socket: no credentials, HOME its own."""
    e = c.env(WSLQ_SCHEDULER=f"unix:{c.user_sock}", HOME=home, USER=acct, LOGNAME=acct)
    return subprocess.run(["runuser", "-u", acct, "--", f"{BIN}/wslq", *args],
                          capture_output=True, text=True, env=e, cwd="/tmp", timeout=timeout)


def refused_frames():
    """The scheduler's wslq_wire_protocol_errors_total, or None when /metrics does not say."""
    return c.metric(http_port, "wslq_wire_protocol_errors_total")


def raw(data, close_write=True, wait=10):
    """Send bytes on a fresh connection (as root); what comes back until the scheduler closes
    it, and whether it did within wait seconds."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(wait)
    s.connect(c.user_sock)
    s.sendall(data)
    if close_write:
        s.shutdown(socket.SHUT_WR)
    got, closed = b"", False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            got += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return got, closed


try:
    c.enrol(enrolled)
    other = c.enrol("wqo" + enrolled[3:])  # an enrolled name no account has

    # --- an enrolled account over the socket: its jobs, its name
    r = as_account(enrolled, "submit", "--parsable", "--name", "local", "--wrap",
                   "echo first; sleep 1; echo second")
    check(r.returncode == 0 and r.stdout.strip().isdigit(),
          f"{enrolled} submits over the user socket: {r.stderr.strip()}")
    jid = r.stdout.strip()
    j = c.job(jid) if jid.isdigit() else None
    check(j is not None and j["spec"]["user"] == enrolled,
          f"the job is {enrolled}'s: {j and j['spec'].get('user')}")
    r = as_account(enrolled, "logs", "-f", jid)
    check(r.returncode == 0 and "first" in r.stdout and "second" in r.stdout,
          f"logs -f over the socket follows the job to its end: {r.stdout!r} {r.stderr.strip()}")
    r = as_account(enrolled, "queue", "--all", "--json")
    check(r.returncode == 0 and f'"{enrolled}"' in r.stdout, f"queue over the socket: "
          f"{r.stderr.strip()}")
    r = as_account(enrolled, "show", jid)
    check(r.returncode == 0 and "echo first" in r.stdout, f"show over the socket: "
          f"{r.stderr.strip()}")
    r = as_account(enrolled, "submit", "--parsable", "--hold", "--", "true")
    hid = r.stdout.strip()
    r = as_account(enrolled, "cancel", hid)
    check(r.returncode == 0 and c.state(hid) == "CANCELLED",
          f"cancel of its own job over the socket: {r.stderr.strip()}")

    # --- another user's job: not this account's to touch
    r = c.cli("submit", "--parsable", "--hold", "--", "true", env=other)
    ojid = r.stdout.strip()
    r = as_account(enrolled, "cancel", ojid)
    check(r.returncode == 1 and "only its owner or an admin may cancel" in r.stderr,
          f"{enrolled} may not cancel another user's job: {r.stderr.strip()}")
    r = as_account(enrolled, "logs", ojid)
    check(r.returncode == 1 and "only its owner or an admin" in r.stderr,
          f"nor read its log: {r.stderr.strip()}")

    # --- an account nobody enrolled
    r = as_account(stranger, "queue")
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and
          f"account {stranger} is not an enrolled wslq user" in r.stderr and
          f"wslq admin user add {stranger}" in r.stderr,
          f"an account nobody enrolled is refused in one line: {r.stderr!r}")

    # --- root: the local admin, as on the admin socket
    r = c.cli("cancel", ojid, local=True)
    check(r.returncode == 0 and c.state(ojid) == "CANCELLED",
          f"root over the socket is the local admin: {r.stderr.strip()}")

    # --- junk
    before = refused_frames() or 0
    got, closed = raw(struct.pack(">I", 0xFFFFFFFF) + b"x" * 16)
    check(closed and len(got) > 4 and b"bad frame length" in got,
          f"an oversized length: an ErrorReply, then closed ({got[:80]!r})")
    got, closed = raw(struct.pack(">I", 0))
    check(closed and b"bad frame length 0" in got, f"a zero length: closed ({got[:80]!r})")
    got, closed = raw(struct.pack(">I", 12) + os.urandom(12))
    check(closed and len(got) > 4, f"a frame that does not decode: an error, then closed "
          f"({got[:80]!r})")
    got, closed = raw(struct.pack(">I", 100) + b"y" * 10)
    check(closed and got == b"", "a half frame then close: closed")
    got, closed = raw(struct.pack(">I", 100) + b"z" * 10, close_write=False, wait=30)
    check(closed and b"incomplete" in got, f"a half frame left alone: closed ({got[:80]!r})")
    wait_for(lambda: (refused_frames() or 0) >= before + 5, 10, "the bad frames counted")
    check((refused_frames() or 0) >= before + 5,
          f"the five bad frames were counted: {before} -> {refused_frames()}")
    socks, shut = [], 0
    for _ in range(300):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(c.user_sock)
        socks.append(s)
    for s in reversed(socks):  # the last ones are over the cap
        s.settimeout(10)
        try:
            if s.recv(1) == b"":
                shut += 1
            if shut >= 44:
                break
        except socket.timeout:
            break
    for s in socks:
        s.close()
    check(shut >= 44, f"over the per-uid cap (256), connections are closed at once ({shut} of 300)")
    r = as_account(enrolled, "queue")
    check(r.returncode == 0, f"the scheduler serves on after the junk: {r.stderr.strip()}")

    # --- acknowledged over the socket: durable
    r = as_account(enrolled, "submit", "--parsable", "--hold", "--name", "durable", "--", "true")
    did = r.stdout.strip()
    check(r.returncode == 0 and did.isdigit(), f"held job submitted: {r.stderr.strip()}")
    c.kill_scheduler()
    c.start_scheduler()
    j = c.job(did)
    check(j is not None and j["state"] == "PENDING" and j["spec"]["user"] == enrolled,
          f"the job acknowledged over the socket survived kill -9: {j and j['state']}")
    r = as_account(enrolled, "cancel", did)
    check(r.returncode == 0, f"the restarted scheduler's socket serves: {r.stderr.strip()}")

    # --- no scheduler there
    r = as_account(enrolled, "queue", "--scheduler", f"unix:{c.dir}/usock/nothing.sock")
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and
          "cannot reach scheduler at unix:" in r.stderr and "is wslq-scheduler running?" in
          r.stderr, f"a missing socket: one line ({r.stderr!r})")
finally:
    c.stop()
    remove_accounts()
finish()
