#!/usr/bin/env python3
"""The suite's last test: no process started by it is still running.

    leftovers.py BUILD_DIR

Every test runs with WQTEST_SUITE=BUILD_DIR in its environment (cmake/WslqOptions.cmake), and
the processes it starts inherit it: trainer ranks, schedulers, workers and the jobs workers
start (a worker passes its environment on, minus WSLQ_*). ctest runs this test as the cleanup
of the fixture every test requires, so after all of them. A process still carrying the mark a
few seconds later was left behind: it is named here (PID, process group, command line, working
directory), then ended by PID, and the test fails.

Only this build directory's mark counts, so suites run from other build directories on the same
machine at the same time are neither flagged nor touched. (Two ctest runs in one build directory
at once would see each other's processes.) A process that replaced its whole environment would
escape the mark; none of the suite's do.

Break this catches: cluster.py's stop() without its end_marked() (it killed by command-line
pattern before), which leaves the `sleep 60` job of the worker test_gang.py SIGKILLs running."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))
from cluster import processes_marked  # noqa: E402

GRACE_S = 5  # processes of the last tests may still be exiting (a SIGKILLed group being reaped)


def describe(pid):
    def read(name):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                return f.read()
        except OSError:
            return b""
    cmd = read("cmdline").replace(b"\0", b" ").decode(errors="replace").strip()
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        pgid = os.getpgid(pid)
    except OSError:
        cwd, pgid = "?", "?"
    stat = read("stat").decode(errors="replace")
    ppid = stat.rsplit(")", 1)[1].split()[1] if ")" in stat else "?"
    return f"pid {pid} ppid {ppid} pgid {pgid} cwd {cwd}: {cmd}"


def main():
    if len(sys.argv) != 2:
        print("usage: leftovers.py BUILD_DIR", file=sys.stderr)
        return 2
    mark = f"WQTEST_SUITE={sys.argv[1]}"
    deadline = time.monotonic() + GRACE_S
    left = processes_marked(mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_marked(mark)
    if not left:
        print(f"ok: no process marked {mark} is left")
        return 0
    print(f"FAIL: {len(left)} process(es) started by the suite still run {GRACE_S} s after "
          f"its last test:")
    for pid in left:
        print("  " + describe(pid))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print("they have been sent SIGKILL")
    return 1


if __name__ == "__main__":
    sys.exit(main())
