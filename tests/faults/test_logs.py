#!/usr/bin/env python3
"""Faults: no output is lost at a job's end or at a requeue, byte for byte.

A job that writes 3,000,000 bytes and then exits at once: `wslq logs` returns every byte,
the tail included (it used to keep 1,048,576: the scheduler forgot the job at its end
message and dropped the chunks still on their way). A requeued job's log holds both
attempts, the second after a line that says so (it used to lose the first N bytes of the
second attempt, N the first attempt's size)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))
from cluster import Cluster, check, finish  # noqa: E402

BIG = 3_000_000
c = Cluster(workers=[("pc1", 2), ("pc2", 2)])
try:
    jobs = [c.submit("--wrap", f"head -c {BIG} /dev/zero | tr '\\0' x; echo TAIL")
            for _ in range(4)]
    for jid in jobs:
        check(jid is not None and c.wait_state(jid, "COMPLETED", 60), f"big job {jid} completed")
    for jid in jobs:
        r = c.cli("logs", str(jid), timeout=60)
        out = r.stdout
        check(r.returncode == 0 and len(out) == BIG + 5 and out.endswith("xTAIL\n") and
              out.count("x") == BIG, f"job {jid}: every byte of the log, the tail included "
              f"({len(out)} of {BIG + 5})")

    # Requeue: attempt 0 writes and fails, attempt 1 writes and succeeds.
    line = ('echo "attempt $WSLQ_ATTEMPT says hello"; '
            'head -c 100000 /dev/zero | tr "\\0" a; echo; [ "$WSLQ_ATTEMPT" -ge 1 ]')
    jid = c.submit("--retries", "1", "--requeue-on-fail", "--wrap", line)
    check(jid is not None and c.wait_state(jid, "COMPLETED", 60), "requeued job completed")
    out = c.cli("logs", str(jid)).stdout
    a = "a" * 100000
    want = (f"attempt 0 says hello\n{a}\n--- wslq: attempt 2 of 2 ---\n"
            f"attempt 1 says hello\n{a}\n")
    check(out == want, f"both attempts, byte for byte ({len(out)} of {len(want)} bytes; "
          f"first line {out[:25]!r})")

    # logs -f on a job that writes a lot just before it ends sees everything, then stops.
    jid = c.submit("--wrap", f"sleep 1; head -c {BIG} /dev/zero | tr '\\0' y; echo END")
    r = c.cli("logs", "-f", str(jid), timeout=90)
    check(r.returncode == 0 and len(r.stdout) == BIG + 4 and r.stdout.endswith("yEND\n"),
          f"logs -f: every byte, then end of file ({len(r.stdout)} of {BIG + 4})")
finally:
    c.stop()
finish()
