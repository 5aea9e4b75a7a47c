#!/usr/bin/env python3
"""--tf: TF_CONFIG for TensorFlow's MultiWorkerMirroredStrategy. Each rank reads it as
TFConfigClusterResolver does (tf_worker.py), listens on its own host:port and reaches every
peer, which answers with the index the list gives it: 2 nodes x 1 rank and 1 node x 2 ranks,
both at once, with every port reserved from the MASTER_PORT range and no two alike. Bad
combinations are refused at submit with one line and nothing queued."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, port_block  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "tf_worker.py")
LO, HI, _held = port_block()  # held until this test ends

c = Cluster(sched_args=["--port-range", f"{LO}-{HI}"])
for name, gpus in (("pc1", 1), ("pc2", 1), ("pc3", 2)):
    c.start_worker(name, gpus, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
try:
    runs = {}
    for label, spec in (("2x1", ["--nodes", "2", "--gpus-per-node", "1"]),
                        ("1x2", ["--gpus", "2"])):
        out = os.path.join(c.dir, label)
        os.makedirs(out)
        runs[label] = (c.submit("--tf", "--time", "5m", *spec, "--", "python3", WORKER, out), out)
        check(runs[label][0] is not None, f"the {label} --tf job was queued")
    ports = []
    for label, (jid, out) in runs.items():
        c.wait_state(jid, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), 180)
        j = c.job(jid)
        log = c.cli("logs", str(jid)).stdout
        check(j["state"] == "COMPLETED", f"{label}: every TF worker agreed: {j.get('reason')}\n{log}")
        seen = [json.load(open(os.path.join(out, f"tf.{i}.json"))) for i in range(2)]
        workers = seen[0]["workers"]
        check(len(workers) == 2 and all(s["workers"] == workers for s in seen),
              f"{label}: both ranks got the same worker list {workers}")
        check([s["index"] for s in seen] == [0, 1] and [s["RANK"] for s in seen] == ["0", "1"],
              f"{label}: task index = RANK")
        for s in seen:
            cfg = json.loads(s["TF_CONFIG"])
            check(set(cfg) == {"cluster", "task"} and set(cfg["cluster"]) == {"worker"} and
                  cfg["task"] == {"type": "worker", "index": s["index"]},
                  f"{label}: TF_CONFIG is {{cluster: {{worker: [...]}}, task}}: {s['TF_CONFIG']}")
            check(s["TF_FORCE_GPU_ALLOW_GROWTH"] == "true", f"{label}: TF GPU memory growth on")
        check(sorted(s["CUDA_VISIBLE_DEVICES"] for s in seen) ==
              (["0", "1"] if label == "1x2" else ["0", "0"]),
              f"{label}: each rank pinned to its own GPU: {[s['CUDA_VISIBLE_DEVICES'] for s in seen]}")
        # rank order follows the allocations: the node of rank i holds workers[i]
        nodes = [a["node"] for a in j["allocs"]]
        check(len(set(nodes)) == (2 if label == "2x1" else 1), f"{label}: placed on {nodes}")
        tfp = [int(w.rpartition(":")[2]) for w in workers]
        check(j.get("tf_ports") == tfp, f"{label}: the job shows its TF ports {j.get('tf_ports')}")
        ports += tfp + [int(j["master_port"])]
        check(all(w.startswith("127.0.0.1:") for w in workers), f"{label}: node addresses {workers}")
        shown = c.cli("show", str(jid)).stdout
        check("TF_CONFIG for each rank; ports " + ",".join(map(str, tfp)) in shown,
              f"{label}: wslq show names the TF ports: {shown}")
    check(len(set(ports)) == len(ports) and all(LO <= p <= HI for p in ports),
          f"every TF port and MASTER_PORT of the two jobs is its own, within {LO}-{HI}: {ports}")

    # A job without --tf gets no TF_CONFIG.
    jid = c.submit("--", "sh", "-c", 'echo "tf=[${TF_CONFIG-unset}]"')
    c.wait_state(jid, ("COMPLETED", "FAILED"), 60)
    check("tf=[unset]" in c.cli("logs", str(jid)).stdout, "no TF_CONFIG without --tf")

    # Bad combinations: one line, non-zero, nothing queued.
    before = len(c.json("queue", "--all") or [])
    for args, want in ((["--tf", "--per-node", "--nodes", "2"], "--per-node"),
                       (["--container", "-v"], "--container"),
                       (["--container", "img name"], "not an image name"),
                       (["--container", ""], "--container")):
        r = c.cli("submit", *args, "--", "true")
        err = r.stderr.strip()
        check(r.returncode != 0 and want in err and len(err.splitlines()) == 1,
              f"submit {args} refused in one line: {err!r}")
    check(len(c.json("queue", "--all") or []) == before, "nothing was queued by the bad submits")
finally:
    c.stop()
finish()
