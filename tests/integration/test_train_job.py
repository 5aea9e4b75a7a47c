#!/usr/bin/env python3
"""wslq-train as a wslq job on two workers: the ranks meet through the job's rendezvous
store, train, report metric lines, and a second training in the same job does not pick up
the first one's addresses."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish  # noqa: E402

if not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    print("skipped: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
    sys.exit(77)

c = Cluster()
for name in ("pc1", "pc2"):
    c.start_worker(name, 1, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
try:
    train = (f"{BIN}/wslq-train --model mlp --max-steps 40 --train-limit 4096 --test-limit 512 "
             "--threads 1 --epochs 1")
    jid = c.submit("--nodes", "2", "--gpus-per-node", "1", "--wrap", f"{train} && {train}")
    c.wait_state(jid, ("COMPLETED", "FAILED"), 120)
    j = c.job(jid)
    r = c.cli("logs", str(jid))
    log = r.stdout
    check(j["state"] == "COMPLETED", f"2-node training job completed: {j.get('reason')}")
    check(log.count("rendezvous store") >= 2,
          "both trainings' ranks met through the rendezvous store")
    check(log.count("test_acc") >= 2, "both trainings reported test accuracy")
    metrics = os.path.join(c.dir, "sched", "logs", f"{jid}.metrics")
    check(os.path.exists(metrics) and "loss" in open(metrics).read(),
          "metric lines reached the scheduler")
finally:
    c.stop()
finish()
