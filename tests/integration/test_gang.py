#!/usr/bin/env python3
"""Jobs across several workers: gang placement on disjoint GPUs, the torchrun environment,
ranks wired through MASTER_ADDR:MASTER_PORT, no deadlock when two gangs oversubscribe the
cluster, one failing rank stops the others, a lost worker fails or requeues the gang."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, wait_for  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
probe = os.path.join(here, "rank_probe.py")
c = Cluster()
for name in ("pc1", "pc2", "pc3"):
    c.start_worker(name, 2, extra=["--ip", "127.0.0.1", "--inbound-ok", "yes"])
try:
    def run_probe(label, *spec):
        out = os.path.join(c.dir, label)
        os.makedirs(out)
        jid = c.submit(*spec, "--", "python3", probe, out)
        ok = c.wait_state(jid, ("COMPLETED", "FAILED", "NODE_FAIL"), 60)
        return jid, out, ok

    # 2 nodes x 2 GPUs: 4 ranks, one per GPU.
    jid, out, _ = run_probe("g22", "--nodes", "2", "--gpus-per-node", "2")
    check(c.state(jid) == "COMPLETED", f"2x2 job completed: {c.job(jid).get('reason')}")
    envs = [json.load(open(os.path.join(out, f"env.{r}"))) for r in range(4)]
    check(sorted(int(e["RANK"]) for e in envs) == [0, 1, 2, 3], "ranks 0..3")
    check({e["WORLD_SIZE"] for e in envs} == {"4"}, "WORLD_SIZE=4 everywhere")
    check(len({(e["MASTER_ADDR"], e["MASTER_PORT"]) for e in envs}) == 1,
          "one MASTER_ADDR:MASTER_PORT shared by all ranks")
    check({e["NNODES"] for e in envs} == {"2"}, "NNODES=2")
    check(sorted((e["NODE_RANK"], e["LOCAL_RANK"]) for e in envs) ==
          [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")], "NODE_RANK x LOCAL_RANK")
    check(all(e["GROUP_RANK"] == e["NODE_RANK"] and e["LOCAL_WORLD_SIZE"] == "2" for e in envs),
          "GROUP_RANK and LOCAL_WORLD_SIZE")
    check(all(e["NCCL_IB_DISABLE"] == "1" for e in envs), "NCCL_IB_DISABLE=1")
    job = c.job(jid)
    per_node = {}
    for e in envs:
        per_node.setdefault(e["NODE_RANK"], []).append(e["CUDA_VISIBLE_DEVICES"])
    check(all(sorted(v) == ["0", "1"] for v in per_node.values()),
          f"each rank sees its own GPU: {per_node}")
    nodes = [a["node"] for a in job["allocs"]]
    check(len(set(nodes)) == 2, f"two distinct nodes: {nodes}")
    check(json.load(open(os.path.join(out, "wired"))) == [1, 2, 3],
          "every rank reached rank 0 through MASTER_ADDR:MASTER_PORT")

    # 3 nodes x 1 GPU, one launcher per node.
    jid, out, _ = run_probe("g31", "--nodes", "3", "--gpus-per-node", "1", "--per-node")
    check(c.state(jid) == "COMPLETED", "3x1 per-node job completed")
    envs = [json.load(open(os.path.join(out, f"env.{r}"))) for r in range(3)]
    check(sorted(e["NODE_RANK"] for e in envs) == ["0", "1", "2"], "NODE_RANK 0..2")
    check({e["WORLD_SIZE"] for e in envs} == {"3"}, "one launcher per node")
    check(json.load(open(os.path.join(out, "wired"))) == [1, 2], "3 nodes wired")

    # A gang never holds part of what it needs. One GPU of the cluster is held, so a 3 x 2 gang
    # could take two whole nodes now (a partial placement is possible) and must not: it waits
    # with nothing allocated, and a 2 x 2 gang submitted after it runs on those two nodes
    # meanwhile. Break this catches: policy_place returning the nodes it found when they are
    # fewer than asked (scheduler/policy.c, "if (chosen < req->nodes)" weakened to
    # "if (chosen == 0)"): the 3 x 2 gang would start on two nodes and the 2 x 2 one would wait.
    release = os.path.join(c.dir, "release-blocker")
    blocker = c.submit("--gpus", "1", "--wrap",
                       f"while [ ! -e {release} ]; do sleep 0.1; done")
    check(c.wait_state(blocker, "RUNNING", 30), "a 1-GPU job holds one GPU")
    a = c.submit("--nodes", "3", "--gpus-per-node", "2", "--wrap", "sleep 1")
    reason = wait_for(lambda: (c.job(a) or {}).get("reason", "").startswith("waiting for"), 10,
                      "the 3 x 2 gang to be considered")
    ja = c.job(a)
    check(reason and ja["state"] == "PENDING" and not ja.get("allocs"),
          f"3 x 2 gang with 2 of 3 nodes free waits holding nothing: {ja['state']}, "
          f"{ja.get('reason')!r}, allocs {ja.get('allocs')}")
    # (with a time limit that ends before the 3 x 2 gang's reservation: backfill lets it)
    b = c.submit("--nodes", "2", "--gpus-per-node", "2", "--time", "1", "--wrap", "sleep 1")
    check(c.wait_state(b, "COMPLETED", 30), f"a 2 x 2 gang behind it runs meanwhile: "
          f"{c.state(b)}, {c.job(b).get('reason')!r}")
    ja = c.job(a)
    check(ja["state"] == "PENDING" and not ja.get("allocs"),
          f"the 3 x 2 gang still waits with nothing allocated: {ja['state']}")
    open(release, "w").close()
    check(c.wait_state(blocker, "COMPLETED", 30) and c.wait_state(a, "COMPLETED", 30),
          "once the GPU is free the 3 x 2 gang runs (no deadlock)")
    ja, jb, jx = c.job(a), c.job(b), c.job(blocker)
    check(ja["start_ms"] >= jx["end_ms"] and ja["start_ms"] >= jb["end_ms"],
          "the 3 x 2 gang started only after both others ended")
    check(len({x["node"] for x in ja["allocs"]}) == 3 and
          all(len(x["gpus"]) == 2 for x in ja["allocs"]), "on 3 nodes, 2 GPUs each")

    # One rank fails: the others are stopped within 5 s and the job records that rank.
    marker = os.path.join(c.dir, "failing")
    os.makedirs(marker)
    jid = c.submit("--nodes", "2", "--gpus-per-node", "2", "--wrap",
                   f'echo $$ > {marker}/$RANK; if [ "$RANK" = 2 ]; then sleep 1; '
                   f'date +%s%3N > {marker}/failed_at; exit 7; fi; '
                   'trap "" TERM; sleep 60')
    c.wait_state(jid, "RUNNING")
    t0 = time.monotonic()
    check(c.wait_state(jid, "FAILED", 20), f"gang FAILED: {c.state(jid)}")
    elapsed = time.monotonic() - t0
    j = c.job(jid)
    check(j.get("failed_rank") == 2 and j.get("exit_code") == 7,
          f"first failing rank recorded: rank {j.get('failed_rank')} exit {j.get('exit_code')}")
    pids = [int(open(os.path.join(marker, str(r))).read()) for r in (0, 1, 3)]
    alive = [p for p in pids if os.path.exists(f"/proc/{p}") and
             open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    check(not alive, f"other ranks gone (ended {elapsed:.1f} s after start of wait)")
    failed_at = int(open(os.path.join(marker, "failed_at")).read())
    gone_after = (j["end_ms"] - failed_at) / 1000
    check(gone_after <= 5, f"every other rank was gone {gone_after:.2f} s after rank 2 failed")

    # The rendezvous store: put by rank 0, wait by the others, through the worker's socket.
    kv = os.path.join(c.dir, "kv")
    os.makedirs(kv)
    w = f"{BIN}/wslq"
    script = (f'if [ "$RANK" = 0 ]; then sleep 0.5; {w} kv put addr "rank0 at $MASTER_ADDR" || exit 9; '
              f'{w} kv get missing 2> {kv}/get.err; echo $? > {kv}/get.rc; '
              f'{w} kv wait never --timeout 300ms 2> {kv}/wait.err; echo $? > {kv}/wait.rc; '
              f'else {w} kv wait addr --timeout 20s > {kv}/seen.$RANK || exit 8; fi')
    jid = c.submit("--nodes", "2", "--gpus-per-node", "1", "--ranks-per-node", "2", "--wrap", script)
    check(c.wait_state(jid, "COMPLETED", 30), f"kv job completed: {c.job(jid).get('reason')}")
    seen = sorted(open(os.path.join(kv, f)).read().strip() for f in os.listdir(kv)
                  if f.startswith("seen."))
    check(len(seen) == 3 and all(v == "rank0 at 127.0.0.1" for v in seen),
          f"ranks 1..3 got rank 0's value: {seen}")
    check(open(f"{kv}/get.rc").read().strip() == "1" and "not set" in open(f"{kv}/get.err").read(),
          "get of a missing key: exit 1, one line")
    werr = open(f"{kv}/wait.err").read()
    check(open(f"{kv}/wait.rc").read().strip() == "1" and "not set" in werr and werr.count("\n") == 1,
          f"wait times out: exit 1, one line: {werr.strip()}")

    # Limits: values over 64 KiB are refused at once; the store holds at most 4 MiB per job.
    lim = os.path.join(c.dir, "limit")
    os.makedirs(lim)
    jid = c.submit("--", "python3", os.path.join(here, "kv_limits.py"), lim)
    check(c.wait_state(jid, "COMPLETED", 30), f"kv limit probe ran: {c.job(jid).get('reason')}")
    res = json.load(open(os.path.join(lim, "result")))
    check(res["big"].startswith("ERR"), f"a 65 KiB value is refused: {res['big']}")
    check(res["stored"] == 63 and "exceed" in res["refusal"],
          f"the 4 MiB store limit refuses the next put: {res['stored']} puts, {res['refusal']}")
    jid2 = c.submit("--", "python3", os.path.join(here, "kv_limits.py"), lim, "--peek")
    c.wait_state(jid2, "COMPLETED", 30)
    res2 = json.load(open(os.path.join(lim, "peek")))
    check(res2["k0"] == "NONE", f"another job does not see the first job's keys: {res2['k0']}")

    # kill -9 one worker of a running gang: NODE_FAIL without retries.
    jid = c.submit("--nodes", "3", "--gpus-per-node", "1", "--wrap", "sleep 60")
    c.wait_state(jid, "RUNNING")
    victim = c.job(jid)["allocs"][1]["node"]
    c.workers[victim].send_signal(signal.SIGKILL)
    c.workers[victim].wait(5)
    check(c.wait_state(jid, "NODE_FAIL", 20), f"gang with a lost node: {c.state(jid)}")
    check(c.job(jid).get("failed_node") == victim, "the lost node is recorded")
finally:
    c.stop()
finish()
