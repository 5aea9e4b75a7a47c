#!/usr/bin/env python3
"""A preempted wslq-train job resumes from its checkpoint and ends where an unpreempted run
ends: one worker, one GPU (declared; the trainer runs on the CPU).

* A --preemptible training job (priority 0, 2000 steps, checkpoints in a directory) runs; once
  its first epoch line is in the log, a priority-10 job preempts it: the trainer stops at a
  step, writes its checkpoint and exits 4 ("preempted at step S"); the job is requeued,
  restarts after the high-priority job with attempt 1, says "resumed from checkpoint ...
  step=S" and completes.
* The same training run straight through, outside the queue, ends with the same test loss
  and accuracy (the run is deterministic: data order and learning rate are functions of the
  step)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, wait_for  # noqa: E402

if not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    print("skipped: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
    sys.exit(77)

FINAL = re.compile(r"step 2000 .*test_loss ([0-9.]+)\s+test_acc ([0-9.]+)")


def train_cmd(ck):
    return (f"{BIN}/wslq-train --model mlp --max-steps 2000 --train-limit 4096 "
            f"--test-limit 512 --threads 1 --epochs 100 --checkpoint-dir {ck} "
            f"--checkpoint-every 100000")


c = Cluster(workers=[("pc1", 1)], sched_args=["--preempt-grace", "60s"])
try:
    ck = os.path.join(c.dir, "ck")
    gate = os.path.join(c.dir, "gate")
    # the trainer is the rank itself (not a child of a shell that would exit at the SIGTERM
    # and have the worker kill what its group left behind)
    t = c.submit("--preemptible", "--gpus", "1", "--name", "train", "--", *train_cmd(ck).split())
    c.wait_state(t, "RUNNING", timeout=60)
    wait_for(lambda: "epoch 1/100" in c.cli("logs", str(t)).stdout, 120, "the first epoch")
    h = c.submit("--gpus", "1", "--priority", "10", "--wrap",
                 f"i=0; while [ ! -e {gate} ] && [ $i -lt 3000 ]; do sleep 0.1; "
                 f"i=$((i+1)); done")
    c.wait_state(h, "RUNNING", timeout=120)
    log = c.cli("logs", str(t)).stdout
    m = re.search(r"preempted at step (\d+), checkpoint written", log)
    check(m is not None, f"the trainer checkpointed on SIGTERM:\n{log[-600:]}")
    step = int(m.group(1)) if m else -1
    check(0 < step < 2000, f"preempted mid-run at step {step}")
    jt = c.job(t)
    check(jt.get("attempt") == 1 and jt.get("preemptions") == 1 and jt["state"] == "PENDING",
          f"requeued: {jt['state']} attempt {jt.get('attempt')}")
    open(gate, "w").close()
    c.wait_state(h, "COMPLETED", timeout=60)
    c.wait_state(t, ("COMPLETED", "FAILED"), timeout=300)
    check(c.state(t) == "COMPLETED", f"the resumed training completed: {c.job(t).get('reason')}")
    log = c.cli("logs", str(t)).stdout
    check(f"resumed from checkpoint path={ck}/ckpt-{step:012d}.wqck step={step}" in log,
          f"resumed from step {step}'s checkpoint:\n{log[-800:]}")
    got = FINAL.search(log)
    check(got is not None, f"the final line:\n{log[-400:]}")

    # the same run, straight through, outside the queue
    ref = subprocess.run(train_cmd(os.path.join(c.dir, "ck-ref")).split(), capture_output=True,
                         text=True, timeout=600, env=c.env())
    want = FINAL.search(ref.stdout + ref.stderr)
    check(ref.returncode == 0 and want is not None,
          f"reference run: {ref.returncode} {ref.stderr[-300:]}")
    if got and want:
        check(got.groups() == want.groups(),
              f"same final test loss and accuracy: {got.groups()} vs {want.groups()}")
finally:
    c.stop()
finish()
