"""What the loopback-cluster benchmarks of bench/ share: their option parsing, the test
fixture (tests/integration/cluster.py) taken from a chosen build, the lab-sized cluster
(a scheduler and 4 workers x 16 CPU slots, 1 s heartbeats), the environment of a `wslq`
command against it, and a process's CPU time and resident memory read from /proc.

A script imports this module first, parses its options, then calls load_cluster(): the
fixture reads WSLQ_BIN once, when it is imported."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "../tests/integration"))

HZ = os.sysconf("SC_CLK_TCK")  # /proc's clock ticks a second


def opt(args, name, default):
    """The value after the option `name` in the list args, both taken out of it; default
    when the option is absent ("" when it is last, with no value)."""
    if name not in args:
        return default
    i = args.index(name)
    val = args[i + 1] if i + 1 < len(args) else ""
    del args[i:i + 2]
    return val


def load_cluster(bin_dir=None):
    """The fixture module cluster, its programs taken from bin_dir (made absolute); without
    one, from WSLQ_BIN or the fixture's default (build/bin)."""
    if bin_dir in ("-h", "--help"):
        print(sys.modules["__main__"].__doc__)
        sys.exit(0)
    if bin_dir and bin_dir.startswith("-"):
        sys.exit(f"{bin_dir}: unknown option (BIN, the build's bin directory, comes first; "
                 "see --help)")
    if bin_dir and not os.path.isfile(os.path.join(bin_dir, "wslq-scheduler")):
        sys.exit(f"{bin_dir}: no wslq-scheduler there (BIN is the build's bin directory, "
                 "e.g. build/bin)")
    if bin_dir:
        os.environ["WSLQ_BIN"] = os.path.abspath(bin_dir)
    import cluster
    return cluster


def lab_cluster(sched_args, secure, workers=4, slots=16, worker_args=()):
    """A loopback cluster as a lab's: a scheduler started with the shipped --torpid 3s and
    --lost 10s, then sched_args (CURVE-enrolled when secure, else --insecure), and workers
    w0, w1, ... of `slots` CPU slots each, no GPUs, heartbeats every 1,000 ms (when idle
    5,000 ms, half of --lost, in a build whose scheduler says so; 3,000 ms before), then
    worker_args. Not the fixture's --torpid 1s --lost 3s of the tests, which are not what a
    lab runs and would make idle workers beat every 1.5 s. A worker that does not come up
    (a bad option in worker_args) stops the cluster and the script with its log's last
    line."""
    import cluster
    c = cluster.Cluster(workers=[], sched_args=["--torpid", "3s", "--lost", "10s"] + sched_args,
                        secure=secure)
    try:
        for i in range(workers):
            name = f"w{i}"
            p = c.start_worker(name, 0, extra=["--cpus", str(slots), "--heartbeat-ms", "1000",
                                               *worker_args])
            if p.poll() is not None or c.node_state(name) in (None, "lost", "torpid"):
                with open(c.worker_log(name), errors="replace") as f:
                    last = ([ln.strip() for ln in f if ln.strip()] or ["(no output)"])[-1]
                raise SystemExit(f"worker {name} did not come up: {last}")
    except BaseException:
        c.stop()
        raise
    return c


def user_socket_dir():
    """A directory every account may reach (0755) for a scheduler's --user-socket, and the
    socket's path in it: (dir, path). The caller removes dir."""
    d = tempfile.mkdtemp(prefix="wslq-bench-usock-")
    os.chmod(d, 0o755)
    return d, os.path.join(d, "user.sock")


def usock_env(env, path):
    """env, for a `wslq` command over the scheduler host's user socket at path instead: no
    credentials and no --insecure (the kernel gives the scheduler our uid)."""
    e = dict(env, WSLQ_SCHEDULER=f"unix:{path}")
    e.pop("WSLQ_CREDENTIALS", None)
    e.pop("WSLQ_INSECURE", None)
    return e


def tsp_env(d, **extra):
    """The environment of task-spooler commands with their own server, its socket and
    files in directory d, which keeps the last 1,000 finished jobs; plus extra."""
    return dict(os.environ, TS_SOCKET=os.path.join(d, "socket"), TMPDIR=d,
                TS_MAXFINISHED="1000", **extra)


def client_env(c):
    """The environment of a `wslq` command against cluster c: its address, and its
    credentials when it is CURVE-secured, else WSLQ_INSECURE=yes."""
    e = c.env(WSLQ_SCHEDULER=c.addr)
    if c.secure:
        e["WSLQ_CREDENTIALS"] = c.creds
    else:
        e["WSLQ_INSECURE"] = "yes"
    return e


def clk_ticks(pid, gone=None):
    """User + system CPU time of process pid in clock ticks (HZ a second), from
    /proc/PID/stat. A process that has gone: the OSError, or `gone` when given."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        if gone is None:
            raise
        return gone
    return int(fields[11]) + int(fields[12])


def rss_mib(pid):
    """Resident memory of process pid in MiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def idle_cpu(pids, seconds, settle, gone=None):
    """After `settle` seconds, each of pids' CPU time over the same `seconds`, as % of one
    core (a list in the order of pids), from cpu_ns: an idle daemon's few milliseconds a
    second are below the 10 ms clock tick of clk_ticks, which charges a whole tick to
    whichever process it finds running (0.05 % of a core over 20 s per tick, either way).
    gone: what a process that has gone counts (its OSError when None)."""
    def ns(p):
        try:
            return cpu_ns(p)
        except OSError:
            if gone is None:
                raise
            return None

    time.sleep(settle)
    t0 = time.monotonic()
    c0 = [ns(p) for p in pids]
    time.sleep(seconds)
    c1 = [ns(p) for p in pids]
    dt = time.monotonic() - t0
    return [gone if a is None or b is None else (b - a) / 1e9 / dt * 100
            for a, b in zip(c0, c1)]


def wait_stamp(path, poll=0.0005):
    """The start time (CLOCK_REALTIME ns) that wslq-bench-stamp wrote to path, waiting up to
    60 s for the line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                line = f.read()
            if line.endswith("\n"):
                return int(line.split()[1])
        except FileNotFoundError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"the latency job of {path} never started")


def schedstat_sum(pid, field):
    """One field of /proc/PID/task/*/schedstat summed over the threads of pid (0: CPU time in
    ns, 2: times put on a CPU); a thread that ended meanwhile counts nothing."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[field])
        except FileNotFoundError:
            pass
    return total


def cpu_ns(pid):
    """CPU time of every thread of pid so far, in ns (finer than the clock ticks of
    clk_ticks)."""
    return schedstat_sum(pid, 0)


def busy_s():
    """CPU time every CPU of the machine has spent so far on anything but waiting (user, nice,
    system, irq and softirq; not idle, iowait or the hypervisor's steal), in seconds, from
    /proc/stat: what a window's processes cost all together, those that came and went in it
    included (the commands of a loop, their jobs)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    assert fields[0] == "cpu"
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def wakes(pid):
    """How many times the threads of pid were put on a CPU so far: an idle daemon's
    wake-ups, preemptions included."""
    return schedstat_sum(pid, 2)


def keeper_pids(c):
    """The rank keepers of cluster c's workers (cluster.keeper_pid: found by the socket each
    listens on in its worker's state directory): one per worker that has started a job."""
    import cluster
    pids = (cluster.keeper_pid(os.path.join(c.dir, f"w-{name}")) for name in c.workers)
    return [p for p in pids if p is not None]


def fs_note(path):
    """What file system holds path, for the figures' heading: e.g. "ext4 on vda, no journal".
    Files made per job cost what the file system makes them cost: ext4 without a journal
    checks every recently deleted inode it passes over when it allocates one (the kernel's
    recently_deleted()), so after many deletions each new file can take a millisecond of CPU.
    WSL 2's own disk is ext4 with a journal."""
    st = os.stat(path)
    fstype, dev = "?", f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[2] == dev:
                fstype = fields[sep + 1]  # the last mount of that device wins, as in the kernel
    try:
        name = os.path.basename(os.readlink(f"/sys/dev/block/{dev}"))
    except OSError:
        return fstype
    if fstype != "ext4":
        return f"{fstype} on {name}"
    journal = any(d.startswith(name + "-") for d in os.listdir("/proc/fs/jbd2")) \
        if os.path.isdir("/proc/fs/jbd2") else False
    return f"ext4 on {name}, {'with a' if journal else 'no'} journal"
