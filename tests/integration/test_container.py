#!/usr/bin/env python3
"""--container IMAGE with a real Podman (runc) and an image imported from a busybox-static
root file system (no registry): the rank runs inside with the job's variables, not as root,
in its working directory mounted at the same path; cancel, the time limit and a container that
ignores SIGTERM all leave no container behind (podman ps -a). Then shims standing in for
docker and podman record the exact command line each engine is given: the rank's GPUs only
(--gpus "device=UUID,UUID" / CDI nvidia.com/gpu=UUID), CUDA_VISIBLE_DEVICES renumbered,
variables passed by name (no value, secret or not, on the command line)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish, wait_for  # noqa: E402

# A secret no path or name on the engine's command line can hold by chance (a temporary
# directory's random letters once held "s3"): upper case and a dot.
SECRET = "S3cret.Value"

HERE = os.path.dirname(os.path.abspath(__file__))
PODMAN = shutil.which("podman")
BUSYBOX = "/bin/busybox"


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


if PODMAN is None:
    skip("podman is not installed (Debian package podman)")
if not os.path.exists(BUSYBOX) or b"statically linked" not in subprocess.run(
        ["file", "-L", BUSYBOX], capture_output=True).stdout:
    skip(f"{BUSYBOX} is missing or not static (Debian package busybox-static)")
if shutil.which("runc") is None:
    skip("runc is not installed (Debian package runc)")

work = tempfile.mkdtemp(prefix="wslq-ctr-")
os.chmod(work, 0o755)  # the job's directory: the container's user (nobody) reaches it
store = os.path.join(work, "store")
conf = os.path.join(work, "containers.conf")
with open(conf, "w") as f:
    # crun refuses this sandbox's rlimits and hybrid cgroups: runc and cgroupfs; no journald
    f.write('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n'
            'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
FLAGS = f"--root {store}/root --runroot {store}/run --storage-driver vfs"
ENV = dict(os.environ, CONTAINERS_CONF=conf)
IMAGE = "localhost/wslq-test-busybox:1"


def podman(*args, timeout=120):
    return subprocess.run([PODMAN, *FLAGS.split(), *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def ours():
    r = podman("ps", "-a", "--format", "{{.Names}}")
    return [n for n in r.stdout.split() if n.startswith("wslq-")]


# The image: a root file system of busybox and its applets.
rootfs = os.path.join(work, "rootfs")
for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
    os.makedirs(os.path.join(rootfs, d))
shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
for applet in ("sh", "id", "env", "pwd", "cat", "sleep", "echo", "touch", "ls"):
    os.symlink("busybox", os.path.join(rootfs, "bin", applet))
with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
    f.write("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
tar = os.path.join(work, "rootfs.tar")
subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
r = podman("import", tar, IMAGE)
if r.returncode != 0:
    skip(f"podman cannot import an image here: {r.stderr.strip()[-300:]}")
r = podman("run", "--rm", "--init", "--network", "host", IMAGE, "echo", "ready")
if r.returncode != 0 or "ready" not in r.stdout:
    skip(f"podman cannot run a container here: {r.stderr.strip()[-300:]}")

shim_dir = os.path.join(work, "shims")
shim_out = os.path.join(work, "shim-out")
for d in ("docker", "podman"):
    os.makedirs(os.path.join(shim_dir, d))
    os.symlink(os.path.join(HERE, "engine_shim.py"), os.path.join(shim_dir, d, d))
os.makedirs(shim_out)
os.chmod(shim_out, 0o777)

c = Cluster()
try:
    c.start_worker("pc1", 0, extra=["--container-flags", FLAGS, "--kill-grace-ms", "2000"],
                   env={"CONTAINERS_CONF": conf})
    c.start_worker("pc2", 2, extra=["--container-engine", f"{shim_dir}/docker/docker"],
                   env={"WQTEST_SHIM_OUT": shim_out})
    c.start_worker("pc3", 2, extra=["--container-engine", f"{shim_dir}/podman/podman"],
                   env={"WQTEST_SHIM_OUT": shim_out})
    with open(os.path.join(work, "marker"), "w") as f:
        f.write("from the host\n")

    # The rank inside: its variables, its uid, its directory.
    jid = c.submit("-w", "pc1", "--container", IMAGE, "--chdir", work, "--env", "MY_VAR=v 1",
                   "--secret-env", "MY_SECRET=s3", "--",
                   "sh", "-c", 'echo "uid=$(id -u) gid=$(id -g) cwd=$(pwd) job=$WSLQ_JOB_ID '
                   'rank=$RANK world=$WORLD_SIZE my=[$MY_VAR] secret=[$MY_SECRET] '
                   'cvd=[$CUDA_VISIBLE_DEVICES] container=$container"; cat marker; '
                   'echo "host path=[${WQTEST_CLUSTER-none}]"')
    check(jid is not None, "the container job was queued")
    c.wait_state(jid, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), 120)
    log = c.cli("logs", str(jid)).stdout
    check(c.state(jid) == "COMPLETED", f"the container job completed: {c.job(jid).get('reason')}\n{log}")
    check("uid=65534 gid=65534 " in log, f"not root inside: {log}")
    check(f"cwd={work} " in log and "from the host" in log, f"its directory mounted as cwd: {log}")
    check(f"job={jid} rank=0 world=1 " in log, f"the wslq variables: {log}")
    check("my=[v 1] secret=[s3] cvd=[] container=podman" in log,
          f"its --env and --secret-env, no GPU, inside podman: {log}")
    check("host path=[none]" in log, f"the worker's own variables stay outside: {log}")
    shown = [ln.split() for ln in c.cli("show", str(jid)).stdout.splitlines()]
    check(["Container:", IMAGE] in shown, f"wslq show names the image: {shown}")
    check(c.job(jid)["spec"].get("container") == IMAGE, "the job's JSON names the image")
    wait_for(lambda: not ours(), 30, "the finished container removed")
    check(not ours(), f"no container left after it ended: {ours()}")

    def stops(label, *args, state="CANCELLED", cancel=True):
        jid = c.submit("-w", "pc1", "--container", IMAGE, "--chdir", work, *args)
        check(jid is not None, f"{label}: queued")
        wait_for(lambda: any(f"-{jid}.0-" in n for n in ours()) and c.state(jid) == "RUNNING",
                 60, f"{label}: its container running")
        check(any(f"-{jid}.0-" in n for n in ours()), f"{label}: its container ran: {ours()}")
        if cancel:
            check(c.cli("cancel", str(jid)).returncode == 0, f"{label}: cancelled")
        c.wait_state(jid, (state,), 120)
        check(c.state(jid) == state, f"{label}: {state}: {c.job(jid).get('reason')}")
        wait_for(lambda: not ours(), 60, f"{label}: no container left")
        check(not ours(), f"{label}: no container left: {ours()}")

    stops("cancel", "--", "sleep", "300")
    # a limit long enough that the container is seen running on a loaded machine
    stops("time limit", "--time", "30s", "--", "sleep", "300", state="TIMEOUT", cancel=False)
    # SIGTERM ignored inside: the worker's SIGKILL ends the client, `podman rm -f` the rest
    stops("sigterm ignored", "--", "sh", "-c", "trap '' TERM; while true; do sleep 1; done")

    # The exact command lines, through the shims: docker with 2 GPUs in one rank.
    jid = c.submit("-w", "pc2", "--gpus", "2", "--ranks-per-node", "1", "--container", "lab/img:1", "--chdir", work,
                   "--env", "MY_VAR=x", "--secret-env", f"MY_SECRET={SECRET}", "--", "python3",
                   "train.py", "--lr", "0.1")
    c.wait_state(jid, ("COMPLETED", "FAILED"), 60)
    check(c.state(jid) == "COMPLETED", f"docker shim job: {c.job(jid).get('reason')}")
    j = c.job(jid)
    uuids = j["allocs"][0]["gpu_uuids"]
    spool = None
    recs = [json.load(open(os.path.join(shim_out, n))) for n in sorted(os.listdir(shim_out))]
    check(len(recs) == 1 and recs[0]["engine"] == "docker", f"one docker run: {recs}")
    a = recs[0]["argv"]
    name = a[a.index("--name") + 1]
    spool = a[a.index("--volume", a.index("--volume") + 1) + 1].split(":")[0]
    head = ["run", "--rm", "--init", "--sig-proxy=true", "--name", name, "--network", "host",
            "--ipc", "host", "--volume", f"{work}:{work}", "--volume", f"{spool}:{spool}",
            "--workdir", work, "--user", "65534:65534",
            "--gpus", f'"device={uuids[0]},{uuids[1]}"', "--env", "CUDA_VISIBLE_DEVICES=0,1"]
    check(a[:len(head)] == head, f"docker's options, in order:\n{a[:len(head)]}\n{head}")
    check(a[-5:] == ["lab/img:1", "python3", "train.py", "--lr", "0.1"],
          f"the image, then the command: {a[-5:]}")
    check(name.startswith(f"wslq-pc2-{jid}.0-0-") and f"/{jid}." in spool,
          f"the container's name and the job's spool: {name} {spool}")
    envs = [a[i + 1] for i in range(len(head), len(a) - 5, 2) if a[i] == "--env"]
    check(len(envs) * 2 == len(a) - 5 - len(head), f"only --env NAME after the GPUs: {a}")
    check(all("=" not in e for e in envs) and "MY_SECRET" in envs and "MY_VAR" in envs and
          "RANK" in envs and "WSLQ_JOB_ID" in envs and "WSLQ_NPROC_PER_NODE" in envs and
          "PATH" not in envs and "HOME" not in envs and "WQTEST_SHIM_OUT" not in envs,
          f"the job's variables by name, no value: {envs}")
    p = recs[0]["passed"]
    check(p["MY_SECRET"] == SECRET and p["MY_VAR"] == "x" and p["WSLQ_JOB_ID"] == str(jid),
          f"the values reach the engine through its environment: {p}")
    check(SECRET not in " ".join(a), f"the secret's value is not on the command line: {a}")

    # Podman: CDI devices, one GPU per rank, each renumbered 0.
    for n in os.listdir(shim_out):
        os.unlink(os.path.join(shim_out, n))
    jid = c.submit("-w", "pc3", "--gpus", "2", "--ranks-per-node", "2", "--container",
                   "lab/img:1", "--chdir", work, "--", "true")
    c.wait_state(jid, ("COMPLETED", "FAILED"), 60)
    check(c.state(jid) == "COMPLETED", f"podman shim job: {c.job(jid).get('reason')}")
    uuids = c.job(jid)["allocs"][0]["gpu_uuids"]
    recs = sorted((json.load(open(os.path.join(shim_out, n))) for n in os.listdir(shim_out)),
                  key=lambda r: r["argv"][r["argv"].index("--name") + 1])
    check(len(recs) == 2, f"one podman run per rank: {len(recs)}")
    for rank, rec in enumerate(recs):
        a = rec["argv"]
        devs = [a[i + 1] for i in range(len(a) - 1) if a[i] == "--device"]
        check(devs == [f"nvidia.com/gpu={uuids[rank]}"], f"rank {rank}: its GPU by CDI: {devs}")
        check("CUDA_VISIBLE_DEVICES=0" in a and "--gpus" not in a,
              f"rank {rank}: CUDA_VISIBLE_DEVICES=0 inside")
        check(a[a.index("--user") + 1] == "65534:65534", f"rank {rank}: not root inside")

    # No engine on a node: the job fails with the reason, at once.
    c.start_worker("pc4", 0, extra=["--container-engine", "/nonexistent/podman"])
    jid = c.submit("-w", "pc4", "--container", IMAGE, "--", "true")
    c.wait_state(jid, ("FAILED",), 60)
    log = c.cli("logs", str(jid)).stdout
    check(c.state(jid) == "FAILED" and "/nonexistent/podman is not installed" in log,
          f"a node without the engine says so: {log}")
finally:
    c.stop()
    for n in ours():
        podman("rm", "-f", n)
    podman("rmi", "-f", IMAGE)
    # vfs layers and the runtime's state are root's files: remove them with podman's help
    subprocess.run(["rm", "-rf", work], capture_output=True)
finish()
