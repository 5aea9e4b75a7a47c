"""Separate hosts for the network tests: network namespaces made here and removed again, a
scheduler host with a bridge and each worker host joined to it by a veth pair (addresses
that exist only inside these namespaces), and enrolment as on a real LAN: codes made over
the scheduler's local admin socket carry its address and key, the user logs in, and each
worker joins from its own host with nothing but its code. Needs root and iproute2; a test
exits 77 with the reason otherwise."""
import os
import shutil
import subprocess
import sys
import time

from cluster import BIN, check, wait_for

PORT = 7420  # inside the namespaces: nothing else listens there


def need(*commands):
    """Exit 77 (skipped) unless this runs as root and the commands are installed."""
    if os.geteuid() != 0:
        print("skipped: network namespaces need root")
        sys.exit(77)
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} (iproute2) not installed")
        sys.exit(77)


def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


class Lab:
    """hosts: namespace name -> worker host address in sched_ip's /24. Host i's veth on the
    scheduler's bridge is named link(i)."""

    def __init__(self, tag, sched_ip, hosts):
        self.tag, self.sched_ip, self.hosts = tag, sched_ip, hosts
        self.sched_ns = f"{tag}s"
        self.addr = f"tcp://{sched_ip}:{PORT}"
        self.procs = []
        self.env = None

    def link(self, i):
        return f"{self.tag}v{i}"

    def setup(self):
        s = self.sched_ns
        steps = [["netns", "add", s], ["-n", s, "link", "set", "lo", "up"],
                 ["-n", s, "link", "add", "br0", "type", "bridge"],
                 ["-n", s, "addr", "add", f"{self.sched_ip}/24", "dev", "br0"],
                 ["-n", s, "link", "set", "br0", "up"]]
        for i, (ns, addr) in enumerate(self.hosts.items()):
            steps += [["netns", "add", ns],
                      ["link", "add", self.link(i), "netns", s, "type", "veth", "peer", "name",
                       "eth0", "netns", ns],
                      ["-n", s, "link", "set", self.link(i), "master", "br0", "up"],
                      ["-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0"],
                      ["-n", ns, "link", "set", "eth0", "up"],
                      ["-n", ns, "link", "set", "lo", "up"]]
        for st in steps:
            r = ip(*st)
            if r.returncode != 0:
                print(f"skipped: network setup failed at 'ip {' '.join(st)}': "
                      f"{r.stderr.strip()}")
                self.teardown()
                sys.exit(77)

    def start(self, work, sched_args=()):
        """The scheduler in its namespace with its state under work, and the user (root, an
        admin) logged in from the scheduler's host."""
        log = open(os.path.join(work, "scheduler.log"), "wb")
        self.procs.append(subprocess.Popen(
            in_ns(self.sched_ns, f"{BIN}/wslq-scheduler", "--listen", self.addr, "--state-dir",
                  f"{work}/sched", *sched_args), stdout=log, stderr=log))
        admin_sock = f"{work}/sched/admin.sock"
        self.env = dict(os.environ, WSLQ_CREDENTIALS=f"{work}/user.credentials",
                        WSLQ_ADMIN_SOCKET=admin_sock)
        self.env.pop("WSLQ_SCHEDULER", None)
        wait_for(lambda: os.path.exists(admin_sock), 10, "the admin socket")
        user_code = self.code("user", "add", "root", "--admin")
        check(f"@{self.addr}" in user_code,
              f"the enrolment code names the scheduler's address: {user_code[-40:]}")
        r = self.cli("login", user_code)
        check(r.returncode == 0, f"wslq login with the code: {r.stdout.strip()} "
              f"{r.stderr.strip()}")

    def code(self, *args):
        """An enrolment code from `wslq admin ARGS` over the local admin socket."""
        r = subprocess.run([f"{BIN}/wslq", "admin", *args], capture_output=True, text=True,
                           timeout=30, env=self.env)
        return next((w for w in r.stdout.split() if w.startswith("wq1:")), r.stderr.strip())

    def cli(self, *args):
        """`wslq ARGS` run on the scheduler's host."""
        return subprocess.run(in_ns(self.sched_ns, f"{BIN}/wslq", *args), capture_output=True,
                              text=True, timeout=30, env=self.env)

    def worker(self, ns, work, args):
        """The worker of host ns: it joins with a code of its own, then runs with args."""
        state = f"{work}/w-{ns}"
        r = subprocess.run(in_ns(ns, f"{BIN}/wslq-worker", "--join", self.code("node", "invite",
                                                                            ns),
                                 "--state-dir", state), capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0, f"{ns} joined: {r.stdout.strip()} {r.stderr.strip()}")
        log = open(os.path.join(work, f"worker-{ns}.log"), "wb")
        self.procs.append(subprocess.Popen(in_ns(ns, f"{BIN}/wslq-worker", "--state-dir", state,
                                                 *args), stdout=log, stderr=log))

    def stop(self):
        """Every process started here, then the namespaces."""
        for p in self.procs:
            p.terminate()
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.teardown()

    def teardown(self):
        for ns in [self.sched_ns, *self.hosts]:
            for p in ip("netns", "pids", ns).stdout.split():
                subprocess.run(["kill", "-9", p], capture_output=True)
            ip("netns", "del", ns)
