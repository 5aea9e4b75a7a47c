#!/usr/bin/env python3
"""wslq against task-spooler (Debian `task-spooler`, command `tsp`), figure by figure, back to
back on the same machine; prints each figure with the ratio wslq / tsp. Installs nothing:
without `tsp` on PATH only wslq's figures are printed. Run from the build tree's parent:
    bench/vs_tsp.sh [BIN] [--mode curve|insecure] [--idle-s S]
BIN defaults to build/bin. --mode curve (the default) secures every connection with CURVE and
enrols the bench's user and each worker as a lab would; insecure runs the same programs with
--insecure. wslq runs a scheduler and 4 workers x 16 slots on loopback; tsp one server with
64 slots (`tsp -S 64`) and its own socket.

Figures, measured the same way for both:
  * floor: a bash loop of 1,000 `/bin/true`; `wslq --version` against `tsp -V`, 1,000 each
  * a bash loop of 1,000 submits of /bin/true while the jobs run (N / wall time of the loop)
  * N jobs queued behind one that holds on (a dependency), released at once: N / (release ->
    queue empty); N is 1,000 for wslq, 900 for tsp (each queued tsp job keeps a client
    process connected to its server, and the server takes at most TS_MAXCONN=1000)
  * submit-to-start latency on an idle system: from just before the submit command starts to
    the job's first instruction (bench/stamp.c), 100 jobs one at a time
  * the daemons idle for --idle-s seconds (default 30), fresh and after 3,000 jobs: CPU (% of
    one core) and the scheduler's (tsp server's) resident memory"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../tests/integration"))
args = sys.argv[1:]


def opt(name, default):
    if name not in args:
        return default
    i = args.index(name)
    val = args[i + 1] if i + 1 < len(args) else ""
    del args[i:i + 2]
    return val


mode = opt("--mode", "curve")
idle_s = float(opt("--idle-s", "30"))
if mode not in ("curve", "insecure"):
    sys.exit("--mode must be curve or insecure")
if args:
    os.environ["WSLQ_BIN"] = os.path.abspath(args[0])
import cluster  # noqa: E402

BIN = cluster.BIN
TSP = shutil.which("tsp")
N = 1000
N_TSP_QUEUE = 900
HZ = os.sysconf("SC_CLK_TCK")
results = {}  # figure -> {"tsp": value, "wslq": value}, higher is better unless noted


def note(fig, who, value, text):
    results.setdefault(fig, {})[who] = value
    print(f"  {who:5} {fig}: {text}", flush=True)


def loop_rate(cmd, env, n=N):
    """n runs of the shell line cmd in one bash loop; runs per second of wall time."""
    script = f"for ((i = 0; i < {n}; i++)); do {cmd} >/dev/null || exit 1; done"
    t0 = time.monotonic()
    subprocess.run(["bash", "-c", script], env=env, check=True)
    return n / (time.monotonic() - t0)


def clk_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def idle_cpu(pids):
    """% of one core each pid used over idle_s seconds (after a second to settle)."""
    time.sleep(1)
    t0, c0 = time.monotonic(), [clk_ticks(p) for p in pids]
    time.sleep(idle_s)
    t1, c1 = time.monotonic(), [clk_ticks(p) for p in pids]
    return [(b - a) / HZ / (t1 - t0) * 100 for a, b in zip(c0, c1)]


def stamp_latency(submit, stamps, n=100):
    """Median, p90 of ms from just before submit(path) starts to the job's first instruction;
    each job ends (and the system is idle) before the next."""
    lat = []
    for i in range(n):
        path = os.path.join(stamps, str(i))
        t0 = time.time_ns()
        submit(path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    line = f.read()
                if line.endswith("\n"):
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.0005)
        else:
            raise RuntimeError(f"latency job {i} never started")
        lat.append((int(line.split()[1]) - t0) / 1e6)
        time.sleep(0.05)  # let it end: the next starts on an idle system
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.9)]


# ---------- the floor ----------
print(f"wslq: {mode}, scheduler + 4 workers x 16 slots; tsp: {TSP or 'not installed'}, 64 slots")
print("floor:")
base_env = dict(os.environ)
floor = loop_rate("/bin/true", base_env)
print(f"  bash  loop of /bin/true: {floor:.0f}/s")

# ---------- task-spooler ----------
tsp_pids = []
if TSP:
    tdir = tempfile.mkdtemp(prefix="wslq-bench-tsp-")
    tenv = dict(os.environ, TS_SOCKET=os.path.join(tdir, "socket"), TMPDIR=tdir,
                TS_MAXFINISHED="1000", WSLQ_BENCH_TSP=tdir)

    def tsp(*a, check=True):
        return subprocess.run([TSP, *a], env=tenv, check=check, capture_output=True, text=True)

    def tsp_busy():
        out = tsp("-l").stdout
        return any(w in out for w in (" running ", " queued ", " allocating "))

    def tsp_wait_idle(timeout=300):
        cluster.wait_for(lambda: not tsp_busy(), timeout, "tsp's queue to empty", interval=0.01)

    try:
        print("task-spooler:")
        r = loop_rate(f"{TSP} -V", tenv)
        note("--version loop", "tsp", r, f"{r:.0f}/s")
        tsp("-S", "64")  # starts the server
        server = cluster.processes_marked(f"WSLQ_BENCH_TSP={tdir}")
        tsp_pids = server
        cpu = idle_cpu(server)
        note("idle CPU, fresh", "tsp", sum(cpu), f"{sum(cpu):.3f}% of a core")
        note("RSS, fresh", "tsp", rss_mib(server[0]), f"{rss_mib(server[0]):.1f} MiB")
        r = loop_rate(f"{TSP} -n /bin/true", tenv)
        note("submit loop, jobs running", "tsp", r, f"{r:.0f}/s ({r / floor:.2f}x the floor)")
        tsp_wait_idle()
        tsp("-C")
        # N jobs behind one that waits on a FIFO; release = write to it.
        fifo = os.path.join(tdir, "fifo")
        os.mkfifo(fifo)
        hold = tsp("sh", "-c", f"read x < {fifo}").stdout.strip()  # -n would hide the id
        subprocess.run(["bash", "-c", f"for ((i = 0; i < {N_TSP_QUEUE}; i++)); do "
                        f"{TSP} -n -D {hold} /bin/true >/dev/null; done"], env=tenv, check=True)
        time.sleep(1)
        t0 = time.monotonic()
        with open(fifo, "w") as f:
            f.write("go\n")
        tsp_wait_idle()
        dt = time.monotonic() - t0
        out = tsp("-l").stdout
        done = sum(1 for line in out.splitlines() if " finished " in line)
        note("drain after release", "tsp", N_TSP_QUEUE / dt,
             f"{N_TSP_QUEUE / dt:.0f} jobs/s ({N_TSP_QUEUE} jobs in {dt:.3f} s; "
             f"{done} finished listed)")
        tsp("-C")
        stamps = os.path.join(tdir, "stamps")
        os.mkdir(stamps)
        med, p90 = stamp_latency(lambda p: subprocess.run(
            [TSP, "-n", f"{BIN}/wslq-bench-stamp", p], env=tenv, check=True,
            capture_output=True), stamps)
        note("submit-to-start latency (ms, lower is better)", "tsp", med,
             f"median {med:.2f} ms, p90 {p90:.2f} ms")
        tsp_wait_idle()
        subprocess.run(["bash", "-c", f"for ((i = 0; i < {3000 - N - N_TSP_QUEUE - 100}; i++)); "
                        f"do {TSP} -n /bin/true >/dev/null; done"], env=tenv, check=True)
        tsp_wait_idle()
        cpu = idle_cpu(server)
        note("idle CPU, after 3,000 jobs", "tsp", sum(cpu), f"{sum(cpu):.3f}% of a core")
        note("RSS, after 3,000 jobs", "tsp", rss_mib(server[0]),
             f"{rss_mib(server[0]):.1f} MiB")
    finally:
        tsp("-K", check=False)
        cluster.end_marked(f"WSLQ_BENCH_TSP={tdir}")
        shutil.rmtree(tdir, ignore_errors=True)

# ---------- wslq ----------
print(f"wslq ({mode}):")
c = cluster.Cluster(workers=[], sched_args=["--sync", "full"], secure=mode == "curve")
try:
    for i in range(4):
        c.start_worker(f"w{i}", 0, extra=["--cpus", "16", "--heartbeat-ms", "1000"])
    env = c.env(WSLQ_SCHEDULER=c.addr)
    if mode == "curve":
        env["WSLQ_CREDENTIALS"] = c.creds
    else:
        env["WSLQ_INSECURE"] = "yes"
    W = f"{BIN}/wslq"
    r = loop_rate(f"{W} --version", env)
    note("--version loop", "wslq", r, f"{r:.0f}/s")
    pids = [c.sched.pid] + [p.pid for p in c.workers.values()]
    cpu = idle_cpu(pids)
    note("idle CPU, fresh", "wslq", sum(cpu),
         f"{sum(cpu):.3f}% of a core (scheduler {cpu[0]:.3f}%, workers "
         + " ".join(f"{x:.3f}%" for x in cpu[1:]) + ")")
    note("RSS, fresh", "wslq", rss_mib(pids[0]), f"{rss_mib(pids[0]):.1f} MiB (scheduler)")

    def busy():
        q = c.json("queue")
        return q is None or bool(q["jobs"])

    r = loop_rate(f"{W} submit -- /bin/true", env)
    note("submit loop, jobs running", "wslq", r, f"{r:.0f}/s ({r / floor:.2f}x the floor)")
    cluster.wait_for(lambda: not busy(), 300, "the queue to drain", interval=0.1)

    fifo = os.path.join(c.dir, "fifo")
    os.mkfifo(fifo)
    os.chmod(c.dir, 0o755)
    os.chmod(fifo, 0o666)
    hold = c.submit("--wrap", f"read x < {fifo}")
    c.wait_state(hold, "RUNNING", timeout=120)
    q = subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "pending", str(N), str(hold)],
                       env=env, check=True, capture_output=True, text=True)
    time.sleep(1)
    t0 = time.monotonic()
    with open(fifo, "w") as f:
        f.write("go\n")
    subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "empty", "10"], env=env, check=True,
                   capture_output=True, timeout=600)
    dt = time.monotonic() - t0
    note("drain after release", "wslq", N / dt, f"{N / dt:.0f} jobs/s ({N} jobs in {dt:.3f} s)")

    stamps = os.path.join(c.dir, "stamps")
    os.mkdir(stamps)
    os.chmod(stamps, 0o777)
    med, p90 = stamp_latency(lambda p: subprocess.run(
        [W, "submit", "--", f"{BIN}/wslq-bench-stamp", p], env=env, check=True,
        capture_output=True), stamps)
    note("submit-to-start latency (ms, lower is better)", "wslq", med,
         f"median {med:.2f} ms, p90 {p90:.2f} ms")
    subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "drain", str(3000 - 2 * N - 100)],
                   env=env, check=True, capture_output=True, timeout=600)
    cpu = idle_cpu(pids)
    note("idle CPU, after 3,000 jobs", "wslq", sum(cpu),
         f"{sum(cpu):.3f}% of a core (scheduler {cpu[0]:.3f}%, workers "
         + " ".join(f"{x:.3f}%" for x in cpu[1:]) + ")")
    note("RSS, after 3,000 jobs", "wslq", rss_mib(pids[0]),
         f"{rss_mib(pids[0]):.1f} MiB (scheduler)")
finally:
    c.stop()

print(f"\nside by side (wslq {mode}, ratio = wslq / tsp):")
print(f"  {'figure':46} {'tsp':>10} {'wslq':>10} {'ratio':>7}")
for fig, v in results.items():
    t, w = v.get("tsp"), v.get("wslq")
    ratio = f"{w / t:.2f}x" if t and w is not None else "-"
    ts = f"{t:.3f}" if t is not None else "-"
    ws = f"{w:.3f}" if w is not None else "-"
    print(f"  {fig:46} {ts:>10} {ws:>10} {ratio:>7}")
print(f"  bash loop of /bin/true (the floor): {floor:.0f}/s")
