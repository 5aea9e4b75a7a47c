#!/usr/bin/env python3
"""The wslq command's config files against a real cluster (cli/README.md, "Config files").

* The system file (WSLQ_SYSTEM_CONFIG stands in for /etc/wslq/wslq.conf) alone says where the
  scheduler is: `wslq queue` works with no WSLQ_SCHEDULER, over the enrolled user's keys.
* The user's file (~/.config/wslq/wslq.conf under a HOME of the test's) overrides it; then
  WSLQ_SCHEDULER overrides both, and --scheduler overrides that: each time the unreachable
  address shows in the error, and the reachable one works.
* A config's address wins over the one in the credentials (the credentials name the cluster,
  the file an unreachable port: the file's is used).
* timeout from the file applies ("timed out after 1 s"), WSLQ_TIMEOUT and --timeout over it.
* A file's `scheduler = unix:PATH` is the user socket: with none there, the one-line "cannot
  reach scheduler at unix:PATH (No such file or directory)".
* Other programs' sections ([scheduler], [worker]) in the same file are left alone.
* A broken file (unknown key, bad value, a line that is no INI) stops every command with one
  line naming the file and the line, exit 2, and nothing reaches the scheduler (the queue is
  unchanged); `wslq --help`, `wslq VERB --help` and `wslq help VERB` still work."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish  # noqa: E402

DEAD = "tcp://127.0.0.1:1"

c = Cluster(workers=[("pc1", 1)])
try:
    home = tempfile.mkdtemp(prefix="home-", dir=c.dir)
    os.makedirs(os.path.join(home, ".config", "wslq"))
    sysconf = os.path.join(c.dir, "system.conf")
    userconf = os.path.join(home, ".config", "wslq", "wslq.conf")

    def write(path, text):
        with open(path, "w") as f:
            f.write(text)

    def wslq(*args, env=None):
        """wslq as the enrolled user, with only the files (and env) saying where to go."""
        e = {"WSLQ_SCHEDULER": "", "WSLQ_SYSTEM_CONFIG": sysconf, "HOME": home,
             "XDG_CONFIG_HOME": ""}
        e.update(env or {})
        return c.cli(*args, env=e)

    # the system file alone; other programs' sections beside it
    write(sysconf, f"[scheduler]\nlisten = tcp://0.0.0.0:7420\nhttp = eth0:7421\n"
                   f"[worker]\nname = pc7\n[client]\nscheduler = {c.addr}\n")
    write(userconf, "")
    r = wslq("queue")
    check(r.returncode == 0, f"system file: wslq queue works: {r.stderr.strip()}")

    # a config's address wins over the credentials' (which name the cluster)
    write(sysconf, f"[client]\nscheduler = {DEAD}\ntimeout = 1\n")
    r = wslq("queue")
    check(r.returncode == 1 and f"cannot reach scheduler at {DEAD} (timed out after 1 s)"
          in r.stderr, f"the file's address and timeout are used: {r.stderr.strip()}")

    # the user's file over the system's
    write(userconf, f"[client]\nscheduler = {c.addr}\n")
    r = wslq("queue")
    check(r.returncode == 0, f"user file over system file: {r.stderr.strip()}")

    # the environment over the files, the flags over the environment
    r = wslq("queue", env={"WSLQ_SCHEDULER": DEAD, "WSLQ_TIMEOUT": "1"})
    check(r.returncode == 1 and DEAD in r.stderr, f"WSLQ_SCHEDULER over the files: {r.stderr}")
    r = wslq("queue", "--scheduler", c.addr, env={"WSLQ_SCHEDULER": DEAD})
    check(r.returncode == 0, f"--scheduler over WSLQ_SCHEDULER: {r.stderr.strip()}")
    # a multicast (PGM) address, which the client's socket cannot speak: one line, exit 1
    r = wslq("queue", env={"WSLQ_SCHEDULER": "epgm://127.0.0.1;239.192.1.1:5555"})
    check(r.returncode == 1 and r.stderr.startswith(
        "wslq: invalid scheduler address 'epgm://127.0.0.1;239.192.1.1:5555'")
        and r.stderr.count("\n") == 1, f"a PGM address is refused: {r.stderr!r}")
    write(userconf, f"[client]\nscheduler = {DEAD}\ntimeout = 30\n")
    r = wslq("queue", "--timeout", "1")
    check(r.returncode == 1 and "timed out after 1 s" in r.stderr,
          f"--timeout over the file's: {r.stderr.strip()}")

    # XDG_CONFIG_HOME moves the user's file
    xdg = os.path.join(c.dir, "xdg")
    os.makedirs(os.path.join(xdg, "wslq"))
    write(os.path.join(xdg, "wslq", "wslq.conf"), f"[client]\nscheduler = {c.addr}\n")
    r = wslq("queue", env={"XDG_CONFIG_HOME": xdg})
    check(r.returncode == 0, f"XDG_CONFIG_HOME/wslq/wslq.conf: {r.stderr.strip()}")

    # a file may name the scheduler host's user socket (unix:PATH): here none listens
    nosock = os.path.join(c.dir, "none.sock")
    write(userconf, f"[client]\nscheduler = unix:{nosock}\n")
    r = wslq("queue")
    check(r.returncode == 1 and r.stderr == f"wslq: cannot reach scheduler at unix:{nosock} (No "
          "such file or directory); is wslq-scheduler running?\n",
          f"a file's unix:PATH is used: {r.stderr!r}")
    write(userconf, "")

    # broken files: one line, file and line named, exit 2, nothing sent
    before = c.json("queue")
    broken = [
        (sysconf, f"[client]\nscheduler = {c.addr}\nschedular = x\n", "",
         f"{sysconf}:3: unknown key 'schedular' in [client] (scheduler, timeout, admin_socket)"),
        (sysconf, "[client\n", "", f"{sysconf}:1: syntax error"),
        (userconf, "", "# mine\n[client]\ntimeout = soon\n",
         f"{userconf}:3: timeout: 'soon' is not a timeout; use seconds, e.g. 5, 500ms, 2m"),
        (userconf, "", "[client]\nscheduler = 10.0.0.1:7420\n",
         f"{userconf}:2: scheduler: '10.0.0.1:7420' is not tcp://HOST:PORT, unix:PATH or ipc://PATH"),
    ]
    for path, systext, usertext, want in broken:
        write(sysconf, systext)
        write(userconf, usertext)
        r = wslq("submit", "--", "true", env={"WSLQ_SCHEDULER": c.addr})
        check(r.returncode == 2 and r.stderr == f"wslq: {want}\n" and r.stdout == "",
              f"broken {os.path.basename(path)}: exit {r.returncode}, {r.stderr!r}")
        r = wslq("--help")
        check(r.returncode == 0 and "Config files" in r.stdout,
              f"--help despite a broken file: {r.returncode} {r.stderr.strip()}")
        for args in (("submit", "--help"), ("queue", "-h"), ("help", "cancel")):
            r = wslq(*args)
            check(r.returncode == 0 and r.stdout.startswith("usage: wslq ") and r.stderr == "",
                  f"wslq {' '.join(args)} despite a broken file: {r.returncode} "
                  f"{r.stderr.strip()}")
    check(c.json("queue") == before, "no broken-config submit reached the queue")
finally:
    c.stop()
finish()
