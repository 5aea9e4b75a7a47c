#!/usr/bin/env python3
"""A job probing its rendezvous store's limits over the worker's socket (WSLQ_RENDEZVOUS,
protocol in worker/README.md). Writes a JSON summary to OUTDIR/result; with --peek it
only records what GET k0 answers, to OUTDIR/peek."""
import json
import os
import socket
import sys


def call(line, payload=b""):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(os.environ["WSLQ_RENDEZVOUS"])
        s.sendall(line.encode() + payload)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1)
            if not chunk:
                break
            data += chunk
        return data.decode().strip()


out = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "--peek":
    with open(os.path.join(out, "peek"), "w") as f:
        json.dump({"k0": call("GET k0\n")}, f)
    sys.exit(0)
res = {}
res["big"] = call(f"PUT big {65537}\n", b"x" * 65537)
value = b"v" * 65536
stored = 0
refusal = ""
for i in range(80):
    r = call(f"PUT k{i} {len(value)}\n", value)
    if r != "OK":
        refusal = r
        break
    stored += 1
res["stored"] = stored
res["refusal"] = refusal
with open(os.path.join(out, "result"), "w") as f:
    json.dump(res, f)
