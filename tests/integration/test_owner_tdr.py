#!/usr/bin/env python3
"""A job that fails because Windows reset the GPU (TDR) ends with its own reason, with the
real programs; the owner file (deploy/windows/README.md) is written by the test.

* A job prints the CUDA driver's launch-timeout message and exits 1: FAILED, reason
  "GPU reset by Windows (TDR) on pc1: ..."; /metrics counts it for pc1.
* With --retries 1 it is requeued once (attempt 2 of 2), then FAILED with the same reason.
* A job that prints nothing of the kind and exits 1 while the reporter's TDR event count rises
  (the test raises it, then lets the job end): FAILED with the TDR reason.
* The message in a job that exits 0 (COMPLETED), a message early in a long output (only the
  tail is read) and a plain `exit 1` are ordinary endings."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, free_port, wait_for  # noqa: E402
from test_http import Http  # noqa: E402

MSG = "RuntimeError: CUDA error: the launch timed out and was terminated"


def write_owner(path, events):
    text = json.dumps({"version": 1, "time": int(time.time()), "idle_s": 5,
                       "fullscreen": False, "gpu_ok": True, "gpu_procs": [],
                       "tdr": {"delay_s": 2, "level": 3, "events": events}})
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def ended(c, jid):
    c.wait_state(jid, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"), 60)
    return c.state(jid)


port = free_port()
c = Cluster(sched_args=["--http", f"127.0.0.1:{port}", "--http-rate", "0"])
try:
    h = Http(port, c.token())
    f1 = os.path.join(c.dir, "owner-pc1.json")
    write_owner(f1, 4)
    c.start_worker("pc1", 1, extra=["--owner", "ignore", "--owner-file", f1,
                                    "--owner-stale-s", "3600"])

    # the driver's message, then exit 1
    j1 = c.submit("--gpus", "0", "--wrap", f"echo step 1; echo '{MSG}' >&2; exit 1")
    check(ended(c, j1) == "FAILED", f"job {j1} FAILED")
    j = c.job(j1)
    check(j["reason"].startswith("GPU reset by Windows (TDR) on pc1: a CUDA launch timeout in "
                                 "the job's output: " + MSG), f"TDR reason: {j['reason']}")
    metrics = lambda: h.get("/metrics")[2].decode()  # noqa: E731
    wait_for(lambda: 'wslq_gpu_resets_total{node="pc1"} 1\n' in metrics(), 20, "/metrics")
    check('wslq_gpu_resets_total{node="pc1"} 1\n' in metrics(), "/metrics counts the reset")

    # --retries 1: requeued once, then FAILED
    j2 = c.submit("--gpus", "0", "--retries", "1", "--wrap",
                  f"echo attempt $WSLQ_ATTEMPT; echo '{MSG}'; exit 1")
    check(ended(c, j2) == "FAILED", f"job {j2} FAILED in the end")
    s = c.show(j2)
    j = s["job"]
    check(j.get("attempt") == 1, f"two attempts: attempt={j.get('attempt')}")
    check("GPU reset by Windows (TDR) on pc1" in j["reason"], f"final reason: {j['reason']}")
    requeues = [e for e in s["events"] if e.get("reason", "").startswith(
        "requeued after FAILED: GPU reset by Windows (TDR) on pc1")]
    check(len(requeues) == 1 and "(attempt 2 of 2)" in requeues[0]["reason"],
          f"one requeue: {[e.get('reason') for e in s['events']]}")

    # the reporter's event count rises while the job runs; the job says nothing about it
    gate = os.path.join(c.dir, "gate")
    j3 = c.submit("--gpus", "0", "--wrap",
                  f"i=0; while [ ! -e {gate} ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); "
                  "done; echo done; exit 1")
    c.wait_state(j3, "RUNNING", 30)
    time.sleep(0.5)  # the worker read the count at the launch
    write_owner(f1, 5)
    open(gate, "w").close()
    check(ended(c, j3) == "FAILED", f"job {j3} FAILED")
    j = c.job(j3)
    check(j["reason"] == "GPU reset by Windows (TDR) on pc1: Windows logged 1 display driver "
          "reset (TDR) while it ran", f"TDR count reason: {j['reason']}")

    # ordinary endings: the message with exit 0; early in a long output; no message at all
    j4 = c.submit("--gpus", "0", "--wrap", f"echo '{MSG}'; exit 0")
    check(ended(c, j4) == "COMPLETED", f"job {j4} with exit 0 COMPLETED")
    j5 = c.submit("--gpus", "0", "--wrap",
                  f"echo '{MSG}'; head -c 200000 /dev/zero | tr '\\0' 'a' | fold -w 99; exit 1")
    check(ended(c, j5) == "FAILED", f"job {j5} FAILED")
    j = c.job(j5)
    check(j["reason"] == "rank 0 on pc1 exited with code 1", f"early message: {j['reason']}")
    j6 = c.submit("--gpus", "0", "--wrap", "echo no luck; exit 1")
    check(ended(c, j6) == "FAILED", f"job {j6} FAILED")
    j = c.job(j6)
    check(j["reason"] == "rank 0 on pc1 exited with code 1", f"plain failure: {j['reason']}")
    # the dashboard publishes a snapshot at most every so often (more seldom the more one
    # costs, as on a loaded machine): its figures may lag the last job's end a little
    check(wait_for(lambda: 'wslq_gpu_resets_total{node="pc1"} 4\n' in metrics(), 10,
                   "the resets on /metrics"), "/metrics: four resets (j1, j2 twice, j3)")

    def pc1():
        st, _, body = h.get("/api/v1/nodes")
        return [x for x in json.loads(body)["nodes"] if x["name"] == "pc1"][0] if st == 200 \
            else {}
    # the dashboard's nodes API, wslq nodes and wslq top show the owner and the resets
    wait_for(lambda: pc1().get("gpu_resets") == 4, 10, "the resets in /api/v1/nodes")
    n = pc1()
    check(n.get("gpu_resets") == 4 and n.get("owner") == "ignore" and
          n.get("owner_state") == "present", f"/api/v1/nodes pc1: {n}")
    for args in (("nodes",), ("top", "--once")):
        r = c.cli(*args)
        check(r.returncode == 0 and "pc1 owner present, policy ignore: input" in r.stdout and
              "pc1 GPU resets by Windows (TDR): 4 jobs failed" in r.stdout,
              f"wslq {' '.join(args)}:\n{r.stdout}")
    # wslq doctor --node: the worker's owner.reporter check (policy, the file fresh)
    r = c.cli("doctor", "--node", "pc1")
    line = [ln for ln in r.stdout.splitlines() if "owner.reporter" in ln]
    check(line and line[0].split()[0] == "PASS" and
          "owner policy ignore; reporter file fresh" in line[0] and
          "TDR event" in line[0], f"wslq doctor --node pc1:\n{r.stdout}")
finally:
    c.stop()
finish()
