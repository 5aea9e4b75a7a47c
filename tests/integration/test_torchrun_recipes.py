#!/usr/bin/env python3
"""The README's torchrun recipes as written there, on 2 workers with 2 GPUs each (Debian's
python3-torch, CPU, gloo): --per-node with the static rendezvous (--node_rank $NODE_RANK,
--nproc_per_node $WSLQ_NPROC_PER_NODE), with c10d and torchrun's own restarts (a rank that
crashes once is restarted by torchrun and the job completes), and a rank that keeps failing
ends the job FAILED with every launcher and its children gone."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

PY = "/usr/bin/python3"
r = subprocess.run([PY, "-c", "import torch.distributed.run"], capture_output=True, text=True)
if r.returncode != 0:
    print(f"skipped: torch is not importable by {PY} (Debian package python3-torch): "
          f"{r.stderr.strip().splitlines()[-1:]}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = [PY, "-m", "torch.distributed.run",
       # Debian's torch 1.13 on Python 3.11 cannot parse the default "--redirects 0"
       # (test_torchrun.py): send stdout to its log and tee it to ours
       "--redirects", "1", "--tee", "1"]
STATIC = RUN + ["--nnodes", "$NNODES", "--nproc_per_node", "$WSLQ_NPROC_PER_NODE",
                "--node_rank", "$NODE_RANK", "--master_addr", "$MASTER_ADDR",
                "--master_port", "$MASTER_PORT"]
C10D = RUN + ["--nnodes", "$NNODES", "--nproc_per_node", "$WSLQ_NPROC_PER_NODE",
              "--rdzv_backend", "c10d", "--rdzv_endpoint", "$MASTER_ADDR:$MASTER_PORT",
              "--rdzv_id", "$WSLQ_JOB_ID"]
JOB = ["--nodes", "2", "--gpus-per-node", "2", "--per-node", "--time", "10m",
       "--env", "OMP_NUM_THREADS=1"]


def alive_with(text):
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


def run(label, *args, timeout=300):
    jid = c.submit(*JOB, *args)
    check(jid is not None, f"{label}: queued")
    c.wait_state(jid, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), timeout)
    return jid, c.job(jid), c.cli("logs", str(jid)).stdout


def all_reduced(log):
    return all(f"ddp rank={r} world=4 " in log for r in range(4)) and log.count("sum=10") == 4


c = Cluster()
for name in ("pc1", "pc2"):
    c.start_worker(name, 2, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
try:
    # Static rendezvous: node ranks from wslq, torchrun's store on MASTER_ADDR:MASTER_PORT.
    jid, j, log = run("static", "--", *STATIC, os.path.join(HERE, "ddp_allreduce.py"))
    check(j["state"] == "COMPLETED", f"static: completed: {j.get('reason')}\n{log}")
    check(all_reduced(log), f"static: 2 nodes x $WSLQ_NPROC_PER_NODE (2) all-reduced\n{log}")

    # c10d with --max_restarts 1: rank 3 crashes in round 0, torchrun restarts the workers.
    jid, j, log = run("restart", "--env", "WQTEST_CRASH_ONCE=3", "--", *C10D,
                      "--max_restarts", "1", os.path.join(HERE, "ddp_crash.py"))
    check(j["state"] == "COMPLETED", f"restart: completed after torchrun's restart: "
          f"{j.get('reason')}\n{log}")
    check("ddp rank=3 crashes in round 0" in log and "ddp rank=3 round=1" in log,
          f"restart: rank 3 crashed once and ran again in round 1\n{log}")
    check(all_reduced(log), f"restart: the restarted world all-reduced\n{log}")
    check(j["attempt"] == 0, "restart: torchrun restarted it, not wslq (attempt 0)")

    # A rank that keeps failing: the job fails and no launcher or child is left anywhere.
    # torch 1.13's launcher whose rank failed waits at its exit barrier (300 s, not settable
    # from the command line) for the others, whose ranks wait for the failed one; when it
    # exits, wslq stops the other launchers and their processes.
    mark = f"wslq-torchrun-fail-{os.getpid()}"
    jid, j, log = run("fail", "--env", "WQTEST_FAIL=3", "--", *C10D, "--max_restarts", "0",
                      os.path.join(HERE, "ddp_crash.py"), mark, timeout=480)
    check(j["state"] == "FAILED", f"fail: the job FAILED: {j['state']} {j.get('reason')}\n{log}")
    wait_for(lambda: not alive_with(mark) and not alive_with(f"--rdzv_id {jid}"), 60,
             "no launcher or child left")
    check(not alive_with(mark) and not alive_with(f"--rdzv_id {jid}"),
          f"fail: no launcher or rank left: {alive_with(mark)}")
finally:
    c.stop()
finish()
