#!/usr/bin/env python3
"""Random, truncated, oversized and wrong-version frames, and raw TCP junk, sent to the
scheduler port: each gets an error reply or is dropped, and the scheduler keeps serving."""
import os
import random
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish  # noqa: E402

c = Cluster(workers=[("pc1", 1)])
try:
    jid = c.submit("--", "true")
    r = subprocess.run([f"{BIN}/wslq-frame-sender", c.addr], capture_output=True, text=True,
                       timeout=60)
    print(r.stdout, r.stderr)
    check(r.returncode == 0, "frame sender: bad frames answered with errors, good ones served")
    rnd = random.Random(5)
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", c.port), timeout=2) as s:
            s.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 400))))
    check(c.sched.poll() is None, "scheduler still running after raw junk")
    r = c.cli("show", str(jid))
    check(r.returncode == 0, "scheduler still answers")
    r = c.cli("submit", "--", "true")
    check(r.returncode == 0, "scheduler still accepts jobs")
finally:
    c.stop()
finish()
