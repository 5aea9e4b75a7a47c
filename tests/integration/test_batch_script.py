#!/usr/bin/env python3
"""Batch scripts: `wslq submit train.sh` reads the script's #WSLQ lines as options (the
command line wins), sends the script with the job so an edit after submit changes nothing,
and each worker runs its copy by the "#!" line on two nodes. A bad directive is one line
naming the script and line, and queues nothing."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, check, finish  # noqa: E402

SCRIPT = """#!/bin/sh
# a training run
#WSLQ --nodes 2 --gpus-per-node 1
#WSLQ --time 4h --name 'batch run'   # the command line shortens it
#WSLQ --env GREETING=hello
echo "$GREETING from rank $RANK of $WORLD_SIZE args=$1,$2 version=1"
"""

c = Cluster(workers=[("pc1", 1), ("pc2", 1)])
try:
    path = os.path.join(c.dir, "train.sh")
    with open(path, "w") as f:
        f.write(SCRIPT)
    os.chmod(path, 0o644)  # the worker runs its own copy: no execute bit needed here
    jid = c.submit("--time", "10m", "--hold", "train.sh", "a", "b c")
    check(jid is not None, "the batch script was queued")
    # edited after submit: the job runs what was submitted
    with open(path, "w") as f:
        f.write(SCRIPT.replace("version=1", "version=2"))
    j = c.job(jid)
    spec = j["spec"]
    check(spec["nodes"] == 2 and spec["gpus_per_node"] == 1, f"#WSLQ resources: {spec}")
    check(spec["time_limit_s"] == 600, "the command line's --time won over the script's")
    check(spec["name"] == "batch run", "the script's --name")
    check("GREETING=hello" in spec["env"], "the script's --env")
    check(spec.get("script_bytes") == len(SCRIPT), "the script travels with the job")
    r = c.cli("show", "--script", str(jid))
    check(r.returncode == 0 and r.stdout == SCRIPT, f"wslq show --script: {r.stdout!r}")
    check(c.cli("release", str(jid)).returncode == 0, "released")
    c.wait_state(jid, ("COMPLETED", "FAILED"), 60)
    j = c.job(jid)
    log = c.cli("logs", str(jid)).stdout
    check(j["state"] == "COMPLETED", f"the script job completed: {j.get('reason')}")
    for rank in (0, 1):
        check(f"hello from rank {rank} of 2 args=a,b c version=1" in log,
              f"rank {rank} ran the submitted script with its arguments: {log!r}")
    check("version=2" not in log, "the edit after submit changed nothing")

    # Bad directives: one line naming the script and line; nothing queued.
    before = len(c.json("queue", "--all")["jobs"])
    bad = {
        "#!/bin/sh\n#WSLQ --gpus 1\n#WSLQ --gpuz 2\necho x\n": "train.sh:3: unknown option '--gpuz'",
        "#!/bin/sh\n#WSLQ --gpus 1\necho x\n#WSLQ --time 1h\n":
            "train.sh:4: #WSLQ after the first command (line 3) would be ignored; move it above",
        "#!/bin/sh\n\n#WSLQ --time soon\n": "train.sh:3: --time: 'soon' is not a duration",
    }
    for text, want in bad.items():
        with open(path, "w") as f:
            f.write(text)
        r = c.cli("submit", "train.sh")
        lines = r.stderr.strip().splitlines()
        check(r.returncode != 0 and len(lines) == 1 and want in lines[0],
              f"bad directive answered {want!r}: rc={r.returncode} {r.stderr!r}")
    # An array keeps a copy of the script per task: a big one times many tasks is refused.
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + "# padding\n" * 4000 + "true\n")
    r = c.cli("submit", "--array", "0-1999", "train.sh")
    check(r.returncode != 0 and "shorten the array or the script" in r.stderr,
          f"an array of 2000 copies of a 40 KB script is refused: {r.stderr!r}")
    check(len(c.json("queue", "--all")["jobs"]) == before, "no bad script was queued")
finally:
    c.stop()
finish()
