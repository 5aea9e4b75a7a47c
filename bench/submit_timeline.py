#!/usr/bin/env python3
"""Where one job's submit-to-start time goes, hop by hop. N jobs of `wslq-bench-stamp FILE`
(it writes its start time as its first act) are submitted one at a time, 0.1 s apart, while
`perf` records the kernel's scheduler events on every CPU. For each job the critical path is
walked back from the job's stamp to the exec of the submit command: which thread made the
next one runnable, how long that one ran before it did, how long each waited for a CPU, and
how long each slept in the kernel (the disk, a CPU migration) until an interrupt or a kernel
thread woke it.
    bench/submit_timeline.py [BIN] [--n N] [--way unix|tcp|tsp] [--sync full|normal] [--keep]
--way unix: `wslq submit` over the scheduler host's user socket; tcp: over CURVE TCP; both
against a loopback cluster of a scheduler (--sync, --user-socket) and one worker of 16 CPU
slots. tsp: `tsp -n` against a task-spooler server of 64 slots, for comparison (Debian
task-spooler). Needs root and `perf` (Debian linux-perf); installs nothing. BIN: the
programs (build/bin; wslq-bench-stamp is taken from it for tsp too). Prints each job's path,
then each part's median and mean over the N jobs (the medians need not add up to the median
of the total, printed too). --keep keeps perf's recording and says where."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import benchlib  # noqa: E402

args = sys.argv[1:]
keep = "--keep" in args
if keep:
    args.remove("--keep")
try:
    n = int(benchlib.opt(args, "--n", "20"))
except ValueError:
    sys.exit("submit_timeline.py: --n takes a number of jobs")
way = benchlib.opt(args, "--way", "unix")
sync = benchlib.opt(args, "--sync", "full")
if len(args) > 1 or n < 1 or way not in ("unix", "tcp", "tsp") or sync not in ("full", "normal"):
    sys.exit(__doc__)
if os.geteuid() != 0:
    sys.exit("submit_timeline.py: needs root (perf records every CPU's scheduler events)")
if shutil.which("perf") is None:
    sys.exit("submit_timeline.py: no perf on PATH (Debian: apt-get install linux-perf)")
if way == "tsp" and shutil.which("tsp") is None:
    sys.exit("submit_timeline.py: --way tsp needs tsp on PATH (Debian: task-spooler)")
bin_dir = os.path.abspath(args[0] if args else os.path.join(here, "../build/bin"))
STAMP = os.path.join(bin_dir, "wslq-bench-stamp")
if not os.access(STAMP, os.X_OK):
    sys.exit(f"submit_timeline.py: no {STAMP} (build the project first)")

EVENTS = ["sched:sched_switch", "sched:sched_waking", "sched:sched_wakeup_new",
          "sched:sched_process_exec"]
HEAD = re.compile(r"^\s*(.+?)\s+(-?\d+)/(-?\d+)\s+\[\d+\]\s+(\d+\.\d+):\s+(\S+):\s*(.*)$")
SWITCH = re.compile(r"prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=.* next_pid=(\d+)")
WAKE = re.compile(r"comm=.* pid=(\d+) prio=")
EXEC = re.compile(r"filename=(\S+)")
# threads of the kernel: a thread they wake was waiting on the kernel, not on a program
KERNEL = re.compile(r"^(swapper|ksoftirqd|kworker|migration|rcu_|irq/|kcompactd|kswapd|"
                    r"jbd2|cpuhp|idle_inject|kdamond|khugepaged)")


class Events:
    """Each thread's switch-ins, switch-outs (with the state it left the CPU in), wakings
    (time, waker, whether it is a new task's first) and execs, in time order"""

    def __init__(self, path):
        out = subprocess.run(["perf", "script", "-i", path, "--ns", "-F",
                              "comm,pid,tid,cpu,time,event,trace"],
                             capture_output=True, text=True, check=True).stdout
        self.ins, self.outs, self.wakes, self.execs = {}, {}, {}, []
        self.tgid, self.comm = {}, {}
        for line in out.splitlines():
            m = HEAD.match(line)
            if m is None:
                continue
            comm, pid, tid, t, ev, rest = m.groups()
            ns, tid, ev = int(t.replace(".", "")), int(tid), ev.split(":")[-1]
            self.tgid.setdefault(tid, int(pid))
            self.comm[tid] = comm
            if ev == "sched_switch" and (s := SWITCH.search(rest)):
                self.outs.setdefault(int(s.group(1)), []).append((ns, s.group(2)))
                self.ins.setdefault(int(s.group(3)), []).append(ns)
            elif ev in ("sched_waking", "sched_wakeup_new") and (w := WAKE.search(rest)):
                self.wakes.setdefault(int(w.group(1)), []).append(
                    (ns, tid, ev == "sched_wakeup_new"))
            elif ev == "sched_process_exec" and (x := EXEC.search(rest)):
                self.execs.append((ns, tid, x.group(1)))
        for seq in (self.ins, self.outs, self.wakes):
            for v in seq.values():
                v.sort()
        self.execs.sort()

    def kernel(self, tid):
        """whether tid is a thread of the kernel: its PF_KTHREAD flag while it lives (they
        mostly do), else its name"""
        if tid == 0:
            return True
        try:
            with open(f"/proc/{tid}/stat") as f:
                return bool(int(f.read().rsplit(")", 1)[1].split()[6]) & 0x00200000)
        except (OSError, IndexError, ValueError):
            return KERNEL.match(self.comm.get(tid, "")) is not None


def last_before(seq, t, key=lambda x: x):
    best = None
    for x in seq:
        if key(x) > t:
            break
        best = x
    return best


def walk(ev, job, stamp_ns, client, start_ns, name_of):
    """The critical path back from the job's stamp to the client's exec at start_ns: a list
    of (part, ns), the last part first"""
    parts = []
    tid, t = job, stamp_ns
    for _ in range(300):  # bounded: a path has a few dozen hops
        name = name_of(tid)
        if tid == client:
            parts.append((f"{name} starts (exec, libraries, its request)", t - start_ns))
            return parts
        s_in = last_before(ev.ins.get(tid, []), t)
        w = last_before(ev.wakes.get(tid, []), t, key=lambda x: x[0])
        if w is not None and (s_in is None or w[0] > s_in):
            s_in = w[0]  # its switch-in is missing from the events: taken as at once
        if s_in is None or s_in <= start_ns:
            break
        parts.append((name + " runs", t - s_in))
        w = last_before(ev.wakes.get(tid, []), s_in, key=lambda x: x[0])
        out = last_before(ev.outs.get(tid, []), s_in, key=lambda x: x[0])
        if out is not None and out[1].startswith("R") and (w is None or out[0] >= w[0]):
            parts.append((name + " waits for a CPU", s_in - out[0]))  # preempted
            t = out[0]
            continue
        if w is None or w[0] <= start_ns:
            break
        tw, waker, new = w
        parts.append((name + " waits for a CPU", s_in - tw))
        if ev.kernel(waker) and not new:
            # woken by an interrupt or a kernel thread (the disk, a migration): asleep in the
            # kernel since it last left the CPU; the path goes on from there
            out = last_before(ev.outs.get(tid, []), tw, key=lambda x: x[0])
            if out is None or out[0] <= start_ns:
                break
            by = re.sub(r"[/:].*$", "", ev.comm.get(waker, "?"))
            parts.append((f"{name} in the kernel (woken by {by})", tw - out[0]))
            t = out[0]
            continue
        tid, t = waker, tw
    return None  # the events do not reach the client's exec


def submit_fn(env, argv_head, stamps):
    """A function that submits one stamp job and returns (monotonic ns before the command,
    its pid, the job's stamp as monotonic ns)"""
    def submit(name):
        path = os.path.join(stamps, name)
        t0 = time.monotonic_ns()
        p = subprocess.Popen(argv_head + [STAMP, path], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        if p.wait(timeout=60) != 0:
            sys.exit(f"submit_timeline.py: {' '.join(argv_head)} failed ({p.returncode})")
        off = time.time_ns() - time.monotonic_ns()  # the stamp is CLOCK_REALTIME
        return t0, p.pid, benchlib.wait_stamp(path) - off
    return submit


def main():
    work = tempfile.mkdtemp(prefix="wslq-bench-timeline-")
    os.chmod(work, 0o755)
    stamps = os.path.join(work, "stamps")
    os.mkdir(stamps)
    os.chmod(stamps, 0o777)
    c, udir, tenv = None, None, None
    try:
        if way == "tsp":
            tenv = benchlib.tsp_env(work)
            subprocess.run(["tsp", "-S", "64"], env=tenv, check=True, capture_output=True)
            submit = submit_fn(tenv, ["tsp", "-n"], stamps)
            roles = {}
            what = "tsp -n (a task-spooler server of 64 slots)"
        else:
            benchlib.load_cluster(bin_dir)  # lab_cluster takes its programs from bin_dir
            udir, usock = benchlib.user_socket_dir()
            c = benchlib.lab_cluster(["--sync", sync, "--user-socket", usock], secure=True,
                                     workers=1)
            env = benchlib.client_env(c)
            if way == "unix":
                env = benchlib.usock_env(env, usock)
            submit = submit_fn(env, [os.path.join(bin_dir, "wslq"), "submit", "--"], stamps)
            roles = {c.sched.pid: "scheduler"}
            roles.update({w.pid: "worker" for w in c.workers.values()})
            what = (f"wslq submit over {way} (a scheduler with --sync {sync} and one worker "
                    f"of 16 CPU slots, CURVE)")
        for i in range(3):
            submit(f"warm-{i}")
        if c is not None:
            roles.update({k: "rank keeper" for k in benchlib.keeper_pids(c)})
        data = os.path.join(work, "perf.data")
        rec = subprocess.Popen(["perf", "record", "-q", "-a", "-k", "mono", "-o", data] +
                               sum((["-e", e] for e in EVENTS), []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        runs = []
        for i in range(n):
            runs.append(submit(f"job-{i}"))
            time.sleep(0.1)
        rec.send_signal(2)
        rec.wait(timeout=120)
        ev = Events(data)
        print(f"{n} jobs: {what}; files under {tempfile.gettempdir()} "
              f"({benchlib.fs_note(tempfile.gettempdir())})")
        per_part, totals = {}, []
        for t0, pid, stamp_ns in runs:
            start = next((t for t, tid, _ in ev.execs if tid == pid and t >= t0), None)
            job = next((tid for t, tid, f in ev.execs
                        if f == STAMP and start is not None and start < t < stamp_ns), None)
            if start is None or job is None:
                print("  a job whose command's or own exec the events do not show: left out")
                continue

            def name_of(tid, pid=pid, job=job):
                g = ev.tgid.get(tid, tid)
                if tid == job:
                    return "job"
                if g == pid:
                    base = "wslq" if way != "tsp" else "tsp"
                elif g in roles:
                    base = roles[g]
                else:
                    return re.sub(r"[/:].*$", "", ev.comm.get(tid, "?"))
                return base if tid == g else f"{base} (ZMQ I/O thread)"

            parts = walk(ev, job, stamp_ns, pid, start, name_of)
            if parts is None:
                print("  a job whose path the events do not reach back from: left out")
                continue
            totals.append(stamp_ns - start)
            merged = {}
            for name, ns in parts:
                merged[name] = merged.get(name, 0) + ns
            for name, ns in merged.items():
                per_part.setdefault(name, []).append(ns)
            print(f"  {(stamp_ns - start) / 1e6:.2f} ms: " + ", ".join(
                f"{name} {ns / 1e6:.2f}" for name, ns in reversed(parts) if ns > 0))
        if not totals:
            sys.exit("submit_timeline.py: no job's path was found in the events")
        print(f"\nmedian over {len(totals)} jobs, from the exec of the submit command to the "
              f"job's first instruction: {statistics.median(totals) / 1e6:.2f} ms")
        rows = []
        for name, v in per_part.items():
            v = v + [0] * (len(totals) - len(v))  # a part absent from a job's path: 0 there
            rows.append((statistics.median(v), statistics.mean(v), name))
        for med, mean, name in sorted(rows, reverse=True):
            print(f"  {name:<48} median {med / 1e6:6.3f} ms   mean {mean / 1e6:6.3f} ms")
    finally:
        if c is not None:
            c.stop()
        if tenv is not None:
            subprocess.run(["tsp", "-K"], env=tenv, capture_output=True)
        if udir is not None:
            shutil.rmtree(udir, ignore_errors=True)
        if keep:
            print(f"kept: {work}/perf.data (perf script -i ...)")
        else:
            shutil.rmtree(work, ignore_errors=True)


main()
