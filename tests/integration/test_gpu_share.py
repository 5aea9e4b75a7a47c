#!/usr/bin/env python3
"""Choosing and sharing GPUs with the real programs, on GPUs from the NVML fake (pc1: an RTX
4090 of 24564 MiB whose desktop holds 2000 MiB; pc2: an RTX 3090).

* `wslq nodes` shows each GPU's model, memory and compute capability.
* Two `--gpu-mem 10G` jobs run on pc1's GPU 0 at once, each with CUDA_VISIBLE_DEVICES=0,
  WSLQ_GPU_MEM=10240, the fraction and the allocator hints; a third would go past the card
  less the desktop's part and waits with the reason; a whole-GPU job does not take the shared
  GPU. `wslq nodes` shows the share, and it is the same after a scheduler restart.
* `--gpu-type 3090` runs on pc2; requests no GPU could ever satisfy are refused at submit
  with the reason; bad values are usage errors.
* When the sharing jobs end, the waiting ones run.
* A worker with the fake libdxcore: its NVIDIA GPU gets the adapter's LUID, its AMD adapter
  is a `dx` GPU; `--gpu-type dx` runs there with DML_VISIBLE_DEVICES and WSLQ_DX_ADAPTERS."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, wait_for  # noqa: E402

fake = os.path.abspath(os.path.join(BIN, "..", "lib", "libfake_nvml.so"))
if not os.path.exists(fake):
    print("skipped: the fake NVML library (node/tests) is not built", flush=True)
    sys.exit(77)

base = {"WSLQ_NVML_LIB": fake, "FAKE_NVML_GPUS": "1", "FAKE_NVML_STEADY": "1",
        "FAKE_NVML_GPU0_USED": "2000"}


def gpu0(c, name):
    for n in (c.json("nodes") or {}).get("nodes", []):
        if n["name"] == name and n["gpus"]:
            return n["gpus"][0]
    return None


def node_of(c, jid):
    j = c.job(jid)
    return j["allocs"][0]["node"] if j and j.get("allocs") else None


c = Cluster()
try:
    c.start_worker("pc1", None, env=base)
    c.start_worker("pc2", None, env=dict(base, FAKE_NVML_GPU0_NAME="NVIDIA GeForce RTX 3090"))
    g = gpu0(c, "pc1")
    check(g is not None and g["name"] == "NVIDIA GeForce RTX 4090" and g["mem_total_mb"] == 24564
          and g["compute_capability"] == "8.9" and g["kind"] == "nvidia",
          f"pc1's GPU from NVML: {g}")
    r = c.cli("nodes")
    check("NVIDIA GeForce RTX 4090" in r.stdout and "cc 8.9" in r.stdout
          and "NVIDIA GeForce RTX 3090" in r.stdout, f"wslq nodes shows the models:\n{r.stdout}")

    out = os.path.join(c.dir, "share")
    os.makedirs(out)
    os.chmod(out, 0o777)
    go = os.path.join(out, "go")
    script = (f'echo "$CUDA_VISIBLE_DEVICES $WSLQ_GPU_MEM $WSLQ_GPU_MEM_FRACTION '
              f'$PYTORCH_CUDA_ALLOC_CONF $TF_FORCE_GPU_ALLOW_GROWTH" > {out}/$WSLQ_JOB_ID.env; '
              f'while [ ! -e {go} ]; do sleep 0.05; done')
    a = c.submit("--gpu-type", "4090", "--gpu-mem", "10G", "--wrap", script)
    b = c.submit("--gpu-mem", "10G", "--gpu-type", "RTX 4090", "--wrap", script)
    check(a and b, "two sharing jobs submitted")
    both = wait_for(lambda: c.state(a) == "RUNNING" and c.state(b) == "RUNNING", 60,
                    "both sharing jobs running")
    check(both, f"two 10G shares run at once on one 24G GPU: {c.state(a)} {c.state(b)}")
    for j in (a, b):
        wait_for(lambda: os.path.exists(f"{out}/{j}.env"), 30, f"job {j}'s environment")
        with open(f"{out}/{j}.env") as f:
            seen = f.read().split()
        check(seen == ["0", "10240", "0.417", "expandable_segments:True", "true"],
              f"job {j}: CUDA_VISIBLE_DEVICES, WSLQ_GPU_MEM, fraction, hints: {seen}")
        alloc = c.job(j)["allocs"][0]
        check(alloc["node"] == "pc1" and alloc["gpus"] == [0] and alloc["gpu_mem_mb"] == 10240,
              f"job {j}'s allocation: {alloc}")

    # a third 10G share: 24564 - 2000 (desktop) - 20480 leaves 2084 MiB
    third = c.submit("--gpu-mem", "10G", "--gpu-type", "4090", "--", "true")
    wait_for(lambda: c.job(third)["reason"] != "", 20, "a wait reason")
    j3 = c.job(third)
    check(j3["state"] == "PENDING" and "waiting for GPU memory" in j3["reason"]
          and "the most free on a GPU now: 2084 MiB" in j3["reason"],
          f"the third share waits with the reason: {j3['state']} {j3['reason']}")
    whole = c.submit("--gpus", "1", "--gpu-type", "4090", "--", "true")
    wait_for(lambda: c.job(whole)["reason"] != "", 20, "a wait reason")
    jw = c.job(whole)
    check(jw["state"] == "PENDING" and "1 GPU of type 4090" in jw["reason"],
          f"a whole-GPU job does not take the shared GPU: {jw['state']} {jw['reason']}")

    def share_view():
        g = gpu0(c, "pc1")
        return g and g["mem_shared_mb"] == 20480 and sorted(g["shared_jobs"]) == sorted([a, b]) \
            and g["mem_other_mb"] == 2000 and g["job_id"] is None
    check(wait_for(share_view, 20, "the share in wslq nodes"), f"nodes --json: {gpu0(c, 'pc1')}")
    r = c.cli("nodes")
    check(f"{min(a, b)},{max(a, b)} share 20.0G of 22.0G" in r.stdout,
          f"wslq nodes shows who shares GPU 0:\n{r.stdout}")

    # the use is rebuilt from the running jobs after a restart
    c.kill_scheduler()
    c.start_scheduler()
    wait_for(lambda: c.node_state("pc1") not in (None, "torpid", "lost"), 30, "pc1 back")
    check(wait_for(share_view, 30, "the share after a restart"),
          f"the share after a restart: {gpu0(c, 'pc1')}")
    check(c.state(third) == "PENDING" and c.state(whole) == "PENDING",
          f"still waiting after a restart: {c.state(third)} {c.state(whole)}")

    # --gpu-type chooses the node
    t = c.submit("--gpu-type", "3090", "--", "true")
    c.wait_state(t, "COMPLETED", timeout=60)
    check(node_of(c, t) == "pc2", f"--gpu-type 3090 ran on pc2 ({node_of(c, t)})")

    # refused at submit, with the reason
    for args, want in ((["--gpu-type", "a100"], "job refused: no GPU matches --gpu-type a100 "
                        "(the GPUs here: NVIDIA GeForce RTX 4090, NVIDIA GeForce RTX 3090)"),
                       (["--gpu-mem", "30G"],
                        "job refused: no GPU has 30720 MiB of memory; the largest has 24564 MiB"),
                       (["--gpu-mem-min", "40G", "--gpu-type", "4090"],
                        "job refused: no GPU of type 4090 has 40960 MiB of memory; the largest "
                        "has 24564 MiB"),
                       (["--gpus", "2", "--gpu-type", "3090"],
                        "job refused: no node has 2 GPUs")):
        r = c.cli("submit", *args, "--", "true")
        check(r.returncode == 1 and want in r.stderr, f"{' '.join(args)}: {r.stderr.strip()}")
    for args, want in ((["--gpu-mem", "0"], "--gpu-mem: a share must be more than 0"),
                       (["--gpu-mem", "lots"], "--gpu-mem"),
                       (["--gpu-type", ""], "--gpu-type: empty GPU type"),
                       (["--gpu-type", "rtx\t4090"], "--gpu-type: only printable ASCII"),
                       (["--gpu-type", "x" * 129], "GPU type is longer than 128 bytes"),
                       (["--gpus", "0", "--gpu-mem", "1G"], "need GPUs")):
        r = c.cli("submit", *args, "--", "true")
        check(r.returncode == 2 and want in r.stderr, f"{' '.join(args)}: {r.stderr.strip()}")

    open(go, "w").close()
    for j in (a, b, third, whole):
        c.wait_state(j, ("COMPLETED", "FAILED"), timeout=90)
        check(c.state(j) == "COMPLETED", f"job {j} completed ({c.state(j)})")

    # DirectX GPUs (the fake libdxcore): pc3's RTX 4090 gets its adapter LUID, its AMD Radeon
    # becomes a dx GPU; --gpu-type dx runs there with DML_VISIBLE_DEVICES and the LUID
    dxfake = os.path.abspath(os.path.join(BIN, "..", "lib", "libfake_dxcore.so"))
    c.start_worker("pc3", None, env=dict(base, WSLQ_DXCORE_LIB=dxfake))
    gs = next(n for n in c.json("nodes")["nodes"] if n["name"] == "pc3")["gpus"]
    check(len(gs) == 2 and gs[0].get("luid") == "0x000000000001a2b3" and gs[0]["kind"] == "nvidia"
          and gs[1]["kind"] == "dx" and gs[1]["name"] == "AMD Radeon RX 7900 XTX"
          and gs[1]["vendor"] == "AMD" and gs[1]["mem_total_mb"] == 24560,
          f"pc3's GPUs: {gs}")
    r = c.cli("nodes", "pc3")
    check("dx AMD" in r.stdout, f"wslq nodes marks the dx GPU:\n{r.stdout}")
    dx = c.submit("--gpu-type", "dx", "--wrap",
                  f'echo "[$CUDA_VISIBLE_DEVICES] $DML_VISIBLE_DEVICES $WSLQ_DX_ADAPTERS" '
                  f'> {out}/dx.env')
    c.wait_state(dx, ("COMPLETED", "FAILED"), timeout=60)
    with open(f"{out}/dx.env") as f:
        seen = f.read().split()
    check(c.state(dx) == "COMPLETED" and node_of(c, dx) == "pc3"
          and seen == ["[]", "1", "0x0000000000054321"],
          f"a dx job: no CUDA GPU, DML_VISIBLE_DEVICES, WSLQ_DX_ADAPTERS: {seen}")
    r = c.cli("submit", "--gpu-type", "dx", "--gpus", "2", "--", "true")
    check(r.returncode == 1 and "no node has 2 GPUs of type dx" in r.stderr,
          f"two dx GPUs on one node: {r.stderr.strip()}")
finally:
    c.stop()
finish()
