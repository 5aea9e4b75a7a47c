#!/usr/bin/env python3
"""A job rank for gang tests: records its environment, then proves the wiring. Rank 0
listens on MASTER_ADDR:MASTER_PORT and collects every other rank's number; the others
connect and send theirs. Usage: rank_probe.py OUTDIR"""
import json
import os
import socket
import sys
import time

out = sys.argv[1]
keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK",
        "NNODES", "MASTER_ADDR", "MASTER_PORT", "CUDA_VISIBLE_DEVICES", "WSLQ_JOB_ID",
        "WSLQ_NODE", "WSLQ_ATTEMPT", "TORCHELASTIC_RESTART_COUNT", "NCCL_IB_DISABLE",
        "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"]
env = {k: os.environ.get(k) for k in keys}
rank = int(env["RANK"])
world = int(env["WORLD_SIZE"])
addr, port = env["MASTER_ADDR"], int(env["MASTER_PORT"])
with open(os.path.join(out, f"env.{rank}"), "w") as f:
    json.dump(env, f)
deadline = time.monotonic() + 20
if rank == 0:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(world)
    srv.settimeout(20)
    got = []
    while len(got) < world - 1 and time.monotonic() < deadline:
        conn, _ = srv.accept()
        got.append(int(conn.recv(16).decode()))
        conn.close()
    with open(os.path.join(out, "wired"), "w") as f:
        json.dump(sorted(got), f)
else:
    while True:
        try:
            with socket.create_connection((addr, port), timeout=2) as s:
                s.sendall(str(rank).encode())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
