#!/usr/bin/env python3
"""wslq against task-spooler (Debian `task-spooler`, command `tsp`), figure by figure on the
same machine; prints each figure with the ratio wslq / tsp. Installs nothing: without `tsp`
on PATH only wslq's figures are printed. Run from the build tree's parent:
    bench/vs_tsp.sh [BIN] [--mode curve|insecure] [--sync full|normal] [--idle-s S]
                    [--rounds R] [--jobs N] [--only FIGS] [--worker-args ARGS]
BIN defaults to build/bin. --mode curve (the default) secures every connection with CURVE and
enrols the bench's user and each worker as a lab would; insecure runs the same programs with
--insecure. wslq runs a scheduler and 4 workers x 16 slots on loopback; tsp one server with
64 slots (`tsp -S 64`) and its own socket. --sync full (the default, as shipped): every
acknowledged submit and every job start waits for an fsync; --sync normal: nothing waits
for the disk (a crash of the scheduler loses nothing, a power cut the last commits), which
is closer to tsp, whose queue is in its server's memory alone.

The figures of one `wslq` command (the submit loop, the latency) are measured over both of
wslq's ways in, side by side: "wslq unix" is the scheduler host's user socket
(--user-socket; WSLQ_SCHEDULER=unix:PATH: a plain Unix stream, the user known by uid, no
ZeroMQ), what a user on the scheduler's own PC uses, as tsp's users do; "wslq tcp" is ZeroMQ
over loopback TCP with CURVE (or --insecure), what a user on another PC uses. The user
socket is off with --mode insecure (no enrolled users), so there only "wslq tcp" is measured.
The daemon figures (drain, idle) are the scheduler's alone, whichever way the jobs came.

Both run at once and every figure alternates between them in R rounds (default 5), so a
machine whose load changes from minute to minute (a shared one) weighs on both alike; a
figure is the median of its rounds. Measured the same way for both:
  * floor: bash loops of `/bin/true`, `tsp -V` and `wslq --version`
  * a bash loop of submits of /bin/true while the jobs run (N / wall time of the loop):
    1,000 in all, 1,000/R a round. With it, over the loop's window: the CPU time of every
    process on the machine a turn (/proc/stat: the shell, the command, the daemons and the
    jobs that ran meanwhile), the daemons' part of it (tsp's server; wslq's scheduler,
    workers and rank keepers) and how busy the CPUs were: a loop that keeps them busy goes
    as fast as a turn's CPU allows, whichever process spends it
  * the bulk path: the same 1,000/R jobs from one `wslq submit --file` (N / its wall time),
    against tsp's loop, as tsp has no bulk submit
  * N jobs queued behind one that holds on (a dependency), released at once:
    N / (release -> queue empty); N is 1,000 for wslq, 900 for tsp (each queued tsp job keeps
    a client process connected to its server, and it takes at most TS_MAXCONN=1000); 2 rounds.
    Its floor, printed with it: 1,000 `/bin/true` started 64 at a time by one small process
    and reaped (wslq-bench-spawn, bench/spawn_floor.c), the fastest any queue could drain them
    on this machine; each drain is printed against it too.
    The end is found cheaply for both, so that the asking does not weigh on the drain: for
    tsp `tsp -w` on the last job, then `tsp -l` every 10 ms; for wslq one connection asking
    every 10 ms for the newest active job alone
  * submit-to-start latency on an idle system: from just before the submit command starts to
    the job's first instruction (bench/stamp.c), 100 jobs each, one at a time, alternating
  * the daemons idle for --idle-s seconds (default 30), in the same window: fresh, and after
    3,000 jobs each: CPU (% of one core) and the scheduler's (tsp server's) resident memory
Both keep their files (wslq's state directories, spools and database; tsp's socket) under
TMPDIR (default /tmp), whose file system the heading names: set TMPDIR to measure on another
(benchlib.fs_note says why it matters).
--only FIGS measures only the figures named, a comma-separated list of idle, floor, loop,
file, drain and latency (e.g. --only loop,latency); all of them by default.
--worker-args ARGS adds ARGS (split at blanks) to each worker's command line, to see what one
of a job's promises costs: e.g. --worker-args "--cgroup none" runs jobs without their cgroup
(and so without a memory limit), which no lab should ship; the heading says so."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import cpu_ns, opt, rss_mib, wait_stamp

args = sys.argv[1:]
mode = opt(args, "--mode", "curve")
sync = opt(args, "--sync", "full")
if sync not in ("full", "normal"):
    sys.exit("--sync takes full or normal")
idle_s = float(opt(args, "--idle-s", "30"))
rounds = int(opt(args, "--rounds", "5"))
N = int(opt(args, "--jobs", "1000"))  # fewer for a quick try of the script itself
FIGS = ("idle", "floor", "loop", "file", "drain", "latency")
only = set(opt(args, "--only", ",".join(FIGS)).split(","))
worker_args = opt(args, "--worker-args", None)
if worker_args is not None and not worker_args.split():
    sys.exit("--worker-args takes the workers' extra options, e.g. --worker-args '--cgroup none'")
worker_args = worker_args.split() if worker_args else []
if not only <= set(FIGS):
    sys.exit(f"--only takes a comma-separated list of {', '.join(FIGS)}")
if mode not in ("curve", "insecure") or rounds < 1:
    sys.exit("--mode must be curve or insecure; --rounds at least 1")
cluster = benchlib.load_cluster(args[0] if args else None)

BIN = cluster.BIN
TSP = shutil.which("tsp")
N_TSP_QUEUE = min(900, N)
results = {}  # figure -> {"tsp": [values], "wslq": [values], "bash": [the floor's]}
DRAIN_FLOOR = "drain floor: /bin/true x N, 64 at a time (/s)"
LOOP = "submit loop of /bin/true, jobs running (/s)"
LOOP_CPU = "  its CPU a turn, all processes (ms, lower is better)"
LOOP_DAEMONS = "  of it the daemons' (ms, lower is better)"
LOOP_BUSY = "  the CPUs busy meanwhile (% of all)"


def add(fig, who, value):
    results.setdefault(fig, {}).setdefault(who, []).append(value)


def loop_rate(cmd, env, n):
    """n runs of the shell line cmd in one bash loop; runs per second of wall time."""
    script = f"for ((i = 0; i < {n}; i++)); do {cmd} >/dev/null || exit 1; done"
    t0 = time.monotonic()
    subprocess.run(["bash", "-c", script], env=env, check=True)
    return n / (time.monotonic() - t0)




# ---------- task-spooler ----------
tdir = tempfile.mkdtemp(prefix="wslq-bench-tsp-")
tenv = benchlib.tsp_env(tdir, WSLQ_BENCH_TSP=tdir)


def tsp(*a, check=True):
    return subprocess.run([TSP, *a], env=tenv, check=check, capture_output=True, text=True)


def tsp_busy():
    out = tsp("-l").stdout
    return any(w in out for w in (" running ", " queued ", " allocating "))


def tsp_wait_idle(timeout=600):
    cluster.wait_for(lambda: not tsp_busy(), timeout, "tsp's queue to empty", interval=0.01)
    tsp("-C")


c = None
try:
    server = []
    if TSP:
        tsp("-S", "64")  # starts the server
        server = cluster.processes_marked(f"WSLQ_BENCH_TSP={tdir}")

    # ---------- wslq ----------
    # the shipped node timeouts: the test cluster's 1 s torpid flaps with 1 s heartbeats
    udir, usock = benchlib.user_socket_dir()
    usock = usock if mode == "curve" else None
    c = benchlib.lab_cluster(["--sync", sync, "--torpid", "3s", "--lost", "10s"] +
                             (["--user-socket", usock] if usock else []),
                             secure=mode == "curve", worker_args=worker_args)
    env = benchlib.client_env(c)
    # the scheduler host's user socket: no credentials, the kernel gives our uid
    uenv = benchlib.usock_env(env, usock) if usock else None
    ways = [("wslq unix", uenv), ("wslq tcp", env)] if uenv else [("wslq tcp", env)]
    W = f"{BIN}/wslq"
    pids = [c.sched.pid] + [p.pid for p in c.workers.values()]
    os.chmod(c.dir, 0o755)

    def wslq_wait_idle():
        subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "empty", "10"], env=env,
                       check=True, capture_output=True, timeout=600)

    wargs = f" ({' '.join(worker_args)})" if worker_args else ""
    print(f"wslq {mode}: scheduler (--sync {sync}) + 4 workers x 16 slots{wargs}; "
          f"tsp: {TSP or 'not installed'}, 64 slots; {rounds} rounds, alternating; "
          f"both under {tempfile.gettempdir()} ({benchlib.fs_note(tempfile.gettempdir())})",
          flush=True)

    def idle(label):
        # both in the same window; a process gone since counts 0 ticks
        both = benchlib.idle_cpu(pids + server, idle_s, settle=1, gone=0)
        cpu = {"wslq": both[:len(pids)], "tsp": both[len(pids):]}
        add(f"idle CPU, {label} (% of a core, lower is better)", "wslq tcp", sum(cpu["wslq"]))
        add(f"scheduler RSS, {label} (MiB, lower is better)", "wslq tcp", rss_mib(pids[0]))
        print(f"  idle {label}: wslq {sum(cpu['wslq']):.3f}% (scheduler {cpu['wslq'][0]:.3f}%,"
              f" workers {' '.join(f'{x:.3f}%' for x in cpu['wslq'][1:])}), scheduler RSS "
              f"{rss_mib(pids[0]):.1f} MiB", flush=True)
        if server:
            add(f"idle CPU, {label} (% of a core, lower is better)", "tsp", sum(cpu["tsp"]))
            add(f"scheduler RSS, {label} (MiB, lower is better)", "tsp", rss_mib(server[0]))
            print(f"  idle {label}: tsp {sum(cpu['tsp']):.3f}%, server RSS "
                  f"{rss_mib(server[0]):.1f} MiB", flush=True)

    if "idle" in only:
        idle("fresh")

    # the floor, the start-up of each command
    for r in range(rounds if "floor" in only else 0):
        k = max(N // rounds, 10)
        add("bash loop of /bin/true (/s)", "bash", loop_rate("/bin/true", env, k))
        if TSP:
            add("`tsp -V` / `wslq --version` loop (/s)", "tsp", loop_rate(f"{TSP} -V", tenv, k))
        add("`tsp -V` / `wslq --version` loop (/s)", "wslq tcp",
            loop_rate(f"{W} --version", env, k))
    print("  floor done", flush=True)

    # submits from a shell loop while the jobs run, and what a turn of it costs the CPUs
    def loop_cpu(who, cmd, e, n, daemons):
        """The submit loop's rate, and in its window the CPU of every process a turn (the
        shell, the command, the daemons, the jobs that ran meanwhile: /proc/stat), the
        daemons' part of it, and how busy the CPUs were. daemons() lists their pids now
        (a wslq rank keeper starts with its worker's first job, and counts from 0)."""
        before = {p: cpu_ns(p) for p in daemons()}
        b0 = benchlib.busy_s()
        rate = loop_rate(cmd, e, n)
        busy = benchlib.busy_s() - b0
        after = {p: cpu_ns(p) for p in daemons()}
        add(LOOP, who, rate)
        add(LOOP_CPU, who, busy / n * 1e3)
        add(LOOP_DAEMONS, who, sum(v - before.get(p, 0) for p, v in after.items()) / n / 1e6)
        add(LOOP_BUSY, who, busy / (n / rate * os.cpu_count()) * 100)

    per = N // rounds
    for r in range(rounds if "loop" in only else 0):
        if TSP:
            loop_cpu("tsp", f"{TSP} -n /bin/true", tenv, per, lambda: server)
            tsp_wait_idle()
        for who, e in ways:
            loop_cpu(who, f"{W} submit -- /bin/true", e, per,
                     lambda: pids + benchlib.keeper_pids(c))
            wslq_wait_idle()
    print("  submit loop done", flush=True)

    # the bulk path: the same jobs from one `wslq submit --file`, against tsp's loop (tsp
    # has no bulk submit)
    jobs_txt = os.path.join(tdir, "jobs.txt")
    with open(jobs_txt, "w") as f:
        f.write("/bin/true\n" * per)
    for r in range(rounds if "file" in only else 0):
        if TSP:
            add("N jobs from one `wslq submit --file` / tsp loop (/s)", "tsp",
                loop_rate(f"{TSP} -n /bin/true", tenv, per))
            tsp_wait_idle()
        for who, e in ways:
            t0 = time.monotonic()
            subprocess.run([W, "submit", "--file", jobs_txt], env=e, check=True,
                           capture_output=True, timeout=600)
            add("N jobs from one `wslq submit --file` / tsp loop (/s)", who,
                per / (time.monotonic() - t0))
            wslq_wait_idle()
    print("  submit --file done", flush=True)

    # queued behind a dependency, released at once; and the machine's floor for it: the same
    # number of /bin/true, 64 at a time, from one small process (bench/spawn_floor.c)
    for r in range(2 if "drain" in only else 0):
        out = subprocess.run([f"{BIN}/wslq-bench-spawn", str(N), "64", "/bin/true"],
                             check=True, capture_output=True, text=True).stdout
        add(DRAIN_FLOOR, "bash", float(out.split()[-1].rstrip("/s")))
        if TSP:
            fifo = os.path.join(tdir, f"fifo{r}")
            os.mkfifo(fifo)
            hold = tsp("sh", "-c", f"read x < {fifo}").stdout.strip()  # -n would hide the id
            last = subprocess.run(["bash", "-c", f"for ((i = 0; i < {N_TSP_QUEUE}; i++)); do "
                                   f"id=$({TSP} -n -D {hold} /bin/true) || exit 1; done; "
                                   f"echo $id"], env=tenv, check=True, capture_output=True,
                                  text=True).stdout.strip()
            time.sleep(1)
            t0 = time.monotonic()
            with open(fifo, "w") as f:
                f.write("go\n")
            # the end of the drain: tsp -w on the last job queued (its server answers when
            # the job ends, nothing polled meanwhile), then the list until nothing is left
            # (jobs of equal length end in the order they started, so this is rarely polled)
            subprocess.run([TSP, "-w", last], env=tenv, capture_output=True)
            cluster.wait_for(lambda: not tsp_busy(), 600, "tsp's queue to empty", interval=0.01)
            add("drain after release (jobs/s)", "tsp", N_TSP_QUEUE / (time.monotonic() - t0))
            tsp("-C")
        fifo = os.path.join(c.dir, f"fifo{r}")
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)
        hold = c.submit("--wrap", f"read x < {fifo}")
        c.wait_state(hold, "RUNNING", timeout=120)
        subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "pending", str(N), str(hold)],
                       env=env, check=True, capture_output=True, timeout=600)
        time.sleep(1)
        t0 = time.monotonic()
        with open(fifo, "w") as f:
            f.write("go\n")
        wslq_wait_idle()
        add("drain after release (jobs/s)", "wslq tcp", N / (time.monotonic() - t0))
    print("  drain done", flush=True)

    # submit-to-start latency, one job at a time, alternating
    stamps = os.path.join(c.dir, "stamps")
    os.mkdir(stamps)
    os.chmod(stamps, 0o777)
    for i in range(min(100, N) if "latency" in only else 0):
        if TSP:
            path = os.path.join(stamps, f"t{i}")
            t0 = time.time_ns()
            subprocess.run([TSP, "-n", f"{BIN}/wslq-bench-stamp", path], env=tenv, check=True,
                           capture_output=True)
            add("submit-to-start latency (ms, lower is better)", "tsp",
                (wait_stamp(path) - t0) / 1e6)
            time.sleep(0.05)
        for k, (who, e) in enumerate(ways):
            path = os.path.join(stamps, f"w{k}-{i}")
            t0 = time.time_ns()
            subprocess.run([W, "submit", "--", f"{BIN}/wslq-bench-stamp", path], env=e,
                           check=True, capture_output=True)
            add("submit-to-start latency (ms, lower is better)", who,
                (wait_stamp(path) - t0) / 1e6)
            time.sleep(0.05)
    if TSP:
        tsp_wait_idle()
    wslq_wait_idle()
    print("  latency done", flush=True)

    # up to 3,000 jobs each, counting those the figures measured ran (none with --only
    # idle), then idle again
    if "idle" in only:
        lat = min(100, N) if "latency" in only else 0
        done_wslq = (len(ways) * per * rounds * (("loop" in only) + ("file" in only)) +
                     (2 * (N + 1) if "drain" in only else 0) + len(ways) * lat)
        if done_wslq < 3000:
            subprocess.run([f"{BIN}/wslq-bench-submit", c.addr, "drain", str(3000 - done_wslq)],
                           env=env, check=True, capture_output=True, timeout=600)
        if TSP:
            left = 3000 - (per * rounds * (("loop" in only) + ("file" in only)) +
                           (2 * (N_TSP_QUEUE + 1) if "drain" in only else 0) + lat)
            if left > 0:
                subprocess.run(["bash", "-c", f"for ((i = 0; i < {left}; i++)); do "
                                f"{TSP} -n /bin/true >/dev/null; done"], env=tenv, check=True)
            tsp_wait_idle()
        idle("after 3,000 jobs")
finally:
    if c is not None:
        c.stop()
    if TSP:
        tsp("-K", check=False)
        cluster.end_marked(f"WSLQ_BENCH_TSP={tdir}")
    shutil.rmtree(tdir, ignore_errors=True)
    if "udir" in dir():
        shutil.rmtree(udir, ignore_errors=True)

print(f"\nmedians of the rounds (wslq {mode}; ratio = wslq / tsp; wslq unix: the scheduler "
      f"host's user socket, as a user on that PC; wslq tcp: ZeroMQ {mode} over TCP, as a user "
      f"on another PC; the daemon figures are the scheduler's, under wslq tcp):")
print(f"  {'figure':52} {'tsp':>9} {'wslq unix':>10} {'wslq tcp':>10} {'unix/tsp':>9} "
      f"{'tcp/tsp':>8}")


def med(v, who):
    return statistics.median(v[who]) if v.get(who) else None


for fig, v in results.items():
    if "bash" in v:
        print(f"  {fig:52} {statistics.median(v['bash']):>9.1f}  (the floor)")
        continue
    t, u, w = med(v, "tsp"), med(v, "wslq unix"), med(v, "wslq tcp")

    def num(x):
        return f"{x:.3f}" if x is not None else "-"

    def ratio(x):
        return f"{x / t:.2f}x" if t and x is not None else "-"

    print(f"  {fig:52} {num(t):>9} {num(u):>10} {num(w):>10} {ratio(u):>9} {ratio(w):>8}")
if {"floor", "loop"} <= only:
    floor = statistics.median(results["bash loop of /bin/true (/s)"]["bash"])
    sub = results[LOOP]
    print("  submit loop against the floor: "
          + "; ".join(f"{who} {statistics.median(sub[who]) / floor:.2f}x"
                      for who in ("wslq unix", "wslq tcp", "tsp") if sub.get(who)))
if "drain" in only:
    # no queue drains faster than its jobs can be started and reaped at all
    floor = statistics.median(results[DRAIN_FLOOR]["bash"])
    drain = results["drain after release (jobs/s)"]
    print("  drain against the floor: "
          + "; ".join(f"{who} {statistics.median(drain[who]) / floor:.2f}x"
                      for who in ("wslq tcp", "tsp") if drain.get(who))
          + (f"; 1.5x tsp's drain would be {1.5 * statistics.median(drain['tsp']) / floor:.2f}x"
             if drain.get("tsp") else ""))
