"""A wslq cluster on loopback for tests: one scheduler, N workers, the real CLI.

Every wait here is bounded; every address is 127.0.0.1 with a port the kernel picked.

Every process a cluster starts carries WQTEST_CLUSTER=<its temp dir> in its environment, and
so do the jobs its workers start (a worker passes its environment on, minus WSLQ_*): stop()
ends what is left by process group (jobs run in their own sessions) or PID, found by that
mark, never by a command-line pattern, which misses a job whose command line does not name
the directory (the `sleep 60` of a SIGKILLed worker's job).

A cluster is secured as a lab's is: the scheduler makes its CURVE key, the test's user is
enrolled as an admin with a one-time code (`wslq admin user add` over the scheduler's local
socket, then `wslq login`), and each worker joins with a node code (`wslq-worker --join`).
Cluster(secure=False) starts everything with --insecure instead, for the few tests that speak
raw ZeroMQ to the scheduler.

Cluster(user_socket=True) also opens the scheduler host's user socket (--user-socket) at
c.user_sock, in a directory every account may reach (the cluster's directory is made 0711 for
it); c.cli(..., local=True) talks over it (WSLQ_SCHEDULER=unix:PATH, no credentials)."""
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = os.environ.get("WSLQ_BIN") or os.path.join(os.path.dirname(__file__), "../../build/bin")

passed = 0
failed = 0


def check(cond, what):
    """Record one assertion; print it either way."""
    global passed, failed
    if cond:
        passed += 1
        print(f"ok: {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL: {what}", flush=True)
    return cond


def finish():
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PORT_BLOCK = 64


def port_block():
    """A block of _PORT_BLOCK ports below the default MASTER_PORT range (and the kernel's
    ephemeral one) that no other test cluster holds (an flock on a file per block, released
    when this process ends) and that nothing listens on now: the scheduler hands MASTER_PORT out of it, so two clusters
    tested at once never send their gang jobs' ranks to each other's rendezvous.
    Returns (lo, hi, the open lock file)."""
    import fcntl
    import random
    d = os.path.join(tempfile.gettempdir(), "wslq-test-ports")
    os.makedirs(d, exist_ok=True)
    for _ in range(500):
        lo = random.randrange(10240, 28672, _PORT_BLOCK)  # under 29500-29999, the default
        f = open(os.path.join(d, str(lo)), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        try:
            for port in range(lo, lo + _PORT_BLOCK):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            f.close()
            continue
        return lo, lo + _PORT_BLOCK - 1, f
    raise RuntimeError(f"no free block of {_PORT_BLOCK} ports between 10240 and 28735")


def temp_accounts(prefixes, home):
    """Temporary system accounts, one per prefix (the prefix and a tag of this run), with the
    directory home as their home. They and home are removed by the returned remove(), or when
    this process ends however it ends: a watchdog shell in its own session waits for its
    stdin to close. Needs root and useradd/userdel (the test checks first and skips). A
    refused useradd removes what was made, prints FAIL with its reason and exits 1.
    Returns (names, remove)."""
    tag = f"{os.getpid() & 0xffffff:06x}{int(time.time() * 1000) & 0xffff:04x}"
    names = [f"{p}{tag}" for p in prefixes]
    script = ("cat >/dev/null; " + "".join(f'userdel -f "${i + 1}" 2>/dev/null; '
                                           for i in range(len(names))) +
              f'rm -rf "${len(names) + 1}"')
    watchdog = subprocess.Popen(["/bin/sh", "-c", script, "sh", *names, home],
                                stdin=subprocess.PIPE, start_new_session=True)

    def remove():
        if watchdog.stdin and not watchdog.stdin.closed:
            watchdog.stdin.close()
        try:
            watchdog.wait(60)
        except subprocess.TimeoutExpired:
            pass

    for acct in names:
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", home,
                            "--shell", "/usr/sbin/nologin", acct], capture_output=True, text=True)
        if r.returncode != 0:
            remove()
            print(f"FAIL: useradd {acct}: {r.stderr.strip()}")
            sys.exit(1)
    return names, remove


def processes_marked(entry):
    """PIDs of live processes (this user's: others' environments are unreadable) whose
    environment holds the exact entry "NAME=value"."""
    want = entry.encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone, or not ours
        if want in env and state != "Z":
            found.append(int(d))
    return found


def end_marked(entry, timeout=10):
    """SIGKILL every process marked with entry: its whole process group when that is not this
    test's own, else the process alone. Returns the PIDs found; waits until they are gone."""
    pids = processes_marked(entry)
    own = os.getpgrp()
    for pid in pids:
        try:
            pgid = os.getpgid(pid)
            if pgid != own and pgid > 1:
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: not processes_marked(entry), timeout, f"processes marked {entry} to end")
    return pids


def socket_inodes(path):
    """Inodes of the listening Unix sockets bound at path (/proc/net/unix)."""
    found = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == path:
                found.add(parts[6])
    return found


def keeper_pid(state_dir):
    """The pid of the rank keeper (`wslq-rank --keeper`, worker/keeper.h) listening on the
    socket in a worker's state directory, or None."""
    inodes = socket_inodes(os.path.join(state_dir, "rank-keeper.sock"))
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if argv[:2] != [b"wslq-rank", b"--keeper"]:
                continue
            link = os.readlink(f"/proc/{d}/fd/3")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return int(d)
    return None


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until true or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    val = None
    while time.monotonic() < deadline:
        val = pred()
        if val:
            return val
        time.sleep(interval)
    print(f"timed out after {timeout}s waiting for {what}", flush=True)
    return val


class Cluster:
    def __init__(self, workers=(), sched_args=(), secure=True, legacy=False, user_socket=False):
        """legacy: programs from before enrolment existed (bench/ compares builds): no keys,
        and none of the flags they would not know."""
        self.dir = tempfile.mkdtemp(prefix="wslq-it-")
        self.mark = f"WQTEST_CLUSTER={self.dir}"
        self.port = free_port()
        self.addr = f"tcp://127.0.0.1:{self.port}"
        self.sched = None
        self.secure = secure and not legacy
        self.legacy = legacy
        self.user = getpass.getuser()
        self.admin_sock = os.path.join(self.dir, "sched", "admin.sock")
        self.creds = os.path.join(self.dir, "creds", self.user)
        self.sched_args = list(sched_args)
        self.user_sock = None
        if user_socket:
            os.chmod(self.dir, 0o711)
            os.makedirs(os.path.join(self.dir, "usock"), mode=0o755)
            self.user_sock = os.path.join(self.dir, "usock", "user.sock")
            self.sched_args += ["--user-socket", self.user_sock]
        self.ports_lock = None
        if "--port-range" not in self.sched_args:
            lo, hi, self.ports_lock = port_block()
            self.sched_args += ["--port-range", f"{lo}-{hi}"]
        if not secure and not legacy:
            self.sched_args += ["--insecure", "yes"]
        if "--http" not in self.sched_args and "--config" not in self.sched_args:
            self.sched_args += ["--http", "off"]  # tests that want the dashboard pass a port
        self.workers = {}
        try:
            self.start_scheduler()
            for name, gpus in workers:
                self.start_worker(name, gpus)
        except Exception:
            self.stop()
            raise

    def env(self, **extra):
        """The environment for a process of this cluster: the test's, the cluster's mark."""
        e = dict(os.environ, WQTEST_CLUSTER=self.dir, **extra)
        for k in ("WSLQ_CREDENTIALS", "WSLQ_INSECURE", "WSLQ_ADMIN_SOCKET"):
            if k not in extra:
                e.pop(k, None)
        # this machine's /etc/wslq/wslq.conf (an installed wslq) is not the test's
        e.setdefault("WSLQ_SYSTEM_CONFIG", os.devnull)
        return e

    def start_scheduler(self):
        log = open(os.path.join(self.dir, "scheduler.log"), "ab")
        self.sched = subprocess.Popen(
            [f"{BIN}/wslq-scheduler", "--listen", self.addr, "--state-dir",
             os.path.join(self.dir, "sched"), "--torpid", "1s", "--lost", "3s",
             "--kill-grace", "2s", "--sync", "full"] + self.sched_args,
            stdout=log, stderr=log, env=self.env())
        if self.secure and not os.path.exists(self.creds):
            wait_for(lambda: os.path.exists(self.admin_sock), 10, "the admin socket")
            self.enrol(self.user, admin=True, path=self.creds)
        wait_for(lambda: self.cli("queue").returncode == 0, 10, "scheduler to answer")

    def admin(self, *args):
        """`wslq admin ...` over the scheduler's local socket (as root on its host would)."""
        e = self.env(WSLQ_ADMIN_SOCKET=self.admin_sock)
        return subprocess.run([f"{BIN}/wslq", "admin", *args], capture_output=True, text=True,
                              timeout=30, env=e, cwd=self.dir)

    def code(self, *args):
        """A one-time code from `wslq admin user add NAME` or `node invite NAME`."""
        r = self.admin(*args)
        for word in r.stdout.split():
            if word.startswith("wq1:"):
                return word
        raise RuntimeError(f"no code from wslq admin {' '.join(args)}: {r.stderr.strip()}")

    def enrol(self, name, admin=False, path=None):
        """Enrol user name; returns the environment for running wslq as them."""
        path = path or os.path.join(self.dir, "creds", name)
        code = self.code("user", "add", name, *(["--admin"] if admin else []))
        e = self.env(WSLQ_CREDENTIALS=path)
        r = subprocess.run([f"{BIN}/wslq", "login", code], capture_output=True, text=True,
                           timeout=30, env=e, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"wslq login as {name} failed: {r.stderr.strip()}")
        return {"WSLQ_CREDENTIALS": path}

    def join(self, name, state_dir, creds=None):
        """Give a worker its node credentials (`wslq-worker --join CODE`) before it starts: in
        state_dir, or in the file creds (then start the worker with --credentials creds)."""
        creds = creds or os.path.join(state_dir, "credentials")
        if not self.secure or os.path.exists(creds):
            return
        code = self.code("node", "invite", name)
        r = subprocess.run([f"{BIN}/wslq-worker", "--join", code, "--state-dir", state_dir,
                            "--credentials", creds],
                           capture_output=True, text=True, timeout=30, env=self.env())
        if r.returncode != 0:
            raise RuntimeError(f"wslq-worker --join for {name} failed: {r.stderr.strip()}")

    def worker_log(self, name):
        """The path of worker name's output (stdout and stderr)."""
        return os.path.join(self.dir, f"worker-{name}.log")

    def start_worker(self, name, gpus, extra=(), env=None):
        """gpus=None: the worker discovers its GPUs (NVML); env: more environment for it."""
        log = open(self.worker_log(name), "ab")
        # Workers advertise loopback unless a test says otherwise, so every connection a test
        # causes (MASTER_ADDR, the inbound self-test) stays on this machine's loopback.
        if "--ip" not in extra:
            extra = ["--ip", "127.0.0.1", *extra]
        # The suite runs as root: jobs run as the worker's account unless a test asks for the
        # service account or the owner's (test_run_as.py).
        if "--run-as" not in extra and not self.legacy:
            extra = ["--run-as", "worker", *extra]
        state = os.path.join(self.dir, "w-" + name)
        self.join(name, state)
        if not self.secure and not self.legacy:
            extra = ["--insecure", "yes", *extra]
        if gpus is not None:
            extra = ["--gpus", str(gpus), *extra]
        p = subprocess.Popen(
            [f"{BIN}/wslq-worker", "--scheduler", self.addr, "--name", name, "--state-dir",
             state, "--cpus", "8", "--heartbeat-ms", "200"] + list(extra),
            stdout=log, stderr=log, env=self.env(**(env or {})))
        self.workers[name] = p
        wait_for(lambda: self.node_state(name) not in (None, "lost", "torpid"), 10,
                 f"worker {name} to register")
        return p

    def token(self):
        """A dashboard token of the cluster's admin user (`wslq token`), made once."""
        if getattr(self, "_token", None) is None:
            r = self.cli("token")
            if r.returncode != 0:
                raise RuntimeError(f"wslq token failed: {r.stderr.strip()}")
            self._token = r.stdout.strip()
        return self._token

    def auth(self):
        """HTTP headers that sign in as the cluster's admin user (none when insecure)."""
        return {"Authorization": f"Bearer {self.token()}"} if self.secure else {}

    def metric(self, http_port, name):
        """The value of an unlabelled counter or gauge on the dashboard's /metrics at
        127.0.0.1:http_port, or None when /metrics cannot be read or does not name it."""
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{http_port}/metrics",
                                         headers=self.auth())
            with urllib.request.urlopen(req, timeout=5) as r:
                m = re.search(rb"^" + re.escape(name.encode()) + rb" (\d+)$", r.read(), re.M)
                return int(m.group(1)) if m else None
        except OSError:
            return None

    def cli(self, *args, timeout=30, env=None, local=False):
        e = self.env()
        e["WSLQ_SCHEDULER"] = self.addr
        if local:
            e["WSLQ_SCHEDULER"] = f"unix:{self.user_sock}"
        elif self.secure:
            e["WSLQ_CREDENTIALS"] = self.creds
        elif not self.legacy:
            e["WSLQ_INSECURE"] = "yes"
        if env:
            e.update(env)
        return subprocess.run([f"{BIN}/wslq", *args], capture_output=True, text=True,
                              timeout=timeout, env=e, cwd=self.dir)

    def json(self, *args):
        r = self.cli(*args, "--json")
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def submit(self, *args):
        r = self.cli("submit", "--parsable", *args)
        if r.returncode != 0:
            print("submit failed:", r.stderr.strip(), flush=True)
            return None
        return int(r.stdout.strip())

    def node_state(self, name):
        r = self.cli("nodes", "--json")
        if r.returncode != 0:
            return None
        for n in json.loads(r.stdout)["nodes"]:
            if n.get("name") == name:
                return n.get("state")
        return None

    def show(self, jid):
        """{"job": {...}, "events": [...]} or None."""
        return self.json("show", str(jid))

    def job(self, jid):
        s = self.show(jid)
        return s["job"] if s else None

    def state(self, jid):
        j = self.job(jid)
        return j["state"] if j else None

    def wait_state(self, jid, states, timeout=30):
        if isinstance(states, str):
            states = (states,)
        return wait_for(lambda: self.state(jid) in states, timeout,
                        f"job {jid} to reach {states}", interval=0.1)

    def kill_scheduler(self, sig=signal.SIGKILL):
        self.sched.send_signal(sig)
        self.sched.wait(10)

    def stop(self):
        procs = list(self.workers.values()) + ([self.sched] if self.sched else [])
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        # Jobs a stopped (or SIGKILLed) worker left running: by their mark, in their own process
        # groups. Expected after a worker was killed; said so the log shows it.
        left = end_marked(self.mark)
        if left:
            print(f"note: ended {len(left)} job process(es) left by stopped workers: {left}",
                  flush=True)
        if self.ports_lock:
            self.ports_lock.close()
            self.ports_lock = None
        if failed == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"cluster files kept in {self.dir}", flush=True)
            for f in sorted(os.listdir(self.dir)):
                if f.endswith(".log"):
                    print(f"--- {f} (tail)")
                    with open(os.path.join(self.dir, f), errors="replace") as fh:
                        print("".join(fh.readlines()[-30:]))
