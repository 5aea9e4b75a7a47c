#!/usr/bin/env python3
"""torchrun as a --per-node job: one launcher on each of 2 workers, each starting 2
processes, meeting through torchrun's own c10d rendezvous on the job's MASTER_ADDR and
MASTER_PORT (Debian's python3-torch, CPU, gloo). Every rank's all-reduce sees the whole
world. Then a job that would run long is cancelled and no launcher or child is left."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

PY = "/usr/bin/python3"
r = subprocess.run([PY, "-c", "import torch.distributed.run"], capture_output=True, text=True)
if r.returncode != 0:
    print(f"skipped: torch is not importable by {PY} (Debian package python3-torch): "
          f"{r.stderr.strip().splitlines()[-1:] }")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
TORCHRUN = [PY, "-m", "torch.distributed.run", "--nnodes", "$NNODES", "--nproc_per_node", "2",
            "--rdzv_backend", "c10d", "--rdzv_endpoint", "$MASTER_ADDR:$MASTER_PORT",
            "--rdzv_id", "$WSLQ_JOB_ID",
            # Debian's torch 1.13 on Python 3.11 cannot parse the default "--redirects 0"
            # (its Std enum lookup misses NONE): send stdout to its log and tee it to ours
            "--redirects", "1", "--tee", "1"]


def alive_with(text):
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


c = Cluster()
for name in ("pc1", "pc2"):
    c.start_worker(name, 1, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
try:
    jid = c.submit("--nodes", "2", "--per-node", "--time", "5m", "--env", "OMP_NUM_THREADS=1",
                   "--", *TORCHRUN, os.path.join(HERE, "ddp_allreduce.py"))
    check(jid is not None, "the torchrun job was queued")
    c.wait_state(jid, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), 240)
    j = c.job(jid)
    log = c.cli("logs", str(jid)).stdout
    check(j["state"] == "COMPLETED", f"the torchrun job completed: {j.get('reason')}\n{log}")
    for rank in range(4):
        check(f"ddp rank={rank} world=4 " in log and log.count("sum=10") == 4,
              f"rank {rank} all-reduced over the 4-process world")

    # Cancel: every launcher and its children stop.
    mark = f"wslq-torchrun-cancel-{os.getpid()}"
    jid = c.submit("--nodes", "2", "--per-node", "--env", "OMP_NUM_THREADS=1", "--", *TORCHRUN,
                   "--no_python", PY, "-c", "import time; time.sleep(300)", mark)
    check(jid is not None, "the long torchrun job was queued")
    # the mark is in the argv of the 2 launchers and of their 4 processes
    def ranks():
        return [p for p in alive_with(mark) if p.split()[1:3] == [PY, "-c"]]
    wait_for(lambda: len(ranks()) == 4, 120, "4 ranks under the 2 launchers")
    check(len(ranks()) == 4, f"2 launchers, 2 processes each: {alive_with(mark)}")
    check(c.cli("cancel", str(jid)).returncode == 0, "cancelled")
    c.wait_state(jid, ("CANCELLED",), 60)
    wait_for(lambda: not alive_with(mark) and not alive_with(f"--rdzv_id {jid}"), 60,
             "no launcher or child left")
    check(not alive_with(mark), f"no rank left after cancel: {alive_with(mark)}")
    check(c.state(jid) == "CANCELLED", "the job is CANCELLED")
finally:
    c.stop()
finish()
