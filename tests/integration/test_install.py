#!/usr/bin/env python3
"""deploy/wsl/install.sh as a lab admin runs it, in fresh Debian trees (label slow).

For each Debian release (12 bookworm and 13 trixie; WSLQ_INSTALL_SUITES="bookworm" picks
fewer) a bare tree is made with `mmdebstrap --variant=apt` (apt and the essential packages,
nothing else), this source tree is copied into it, and in a chroot of it (own mount and PID
namespaces: nothing outlives the test):

* `install.sh --scheduler tcp://127.0.0.1:7420` installs the packages it needs, builds,
  installs the worker's programs, the service account, the config and the unit;
* the same command again changes nothing (no file under /etc, /usr/local, /var/lib/wslq,
  /var/lib/dpkg changes: path, size, mode, owner, mtime) and says "nothing changed";
* `install.sh --scheduler-host --http lo:7421 --user-socket` adds the scheduler; again,
  nothing changes;
* the config it wrote names the scheduler's TCP address for the worker, its user socket for
  the scheduler and for the wslq command, and the dashboard's address; `wslq` reads it (the
  socket shows in its "cannot reach" line, with no WSLQ_SCHEDULER);
* `scripts/demo.sh --installed` runs the demo job with the installed programs (in its own
  network namespace, so its port is its own) and it ends COMPLETED.

Skipped (77) with the reason when not root, without mmdebstrap or unshare, or when the
Debian archive cannot be reached (WSLQ_DEBIAN_MIRROR names another mirror). A release the
archive lacks is skipped alone. Takes minutes per release: most of it is the build."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from cluster import check, finish  # noqa: E402

SRC = os.environ.get("WSLQ_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
MIRROR = os.environ.get("WSLQ_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITES = os.environ.get("WSLQ_INSTALL_SUITES", "bookworm trixie").split()
NAMES = {"bookworm": "Debian 12", "trixie": "Debian 13"}


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


if os.geteuid() != 0:
    skip(f"mmdebstrap and chroot need root (this runs as uid {os.geteuid()})")
for tool in ("mmdebstrap", "unshare", "chroot"):
    if shutil.which(tool) is None:
        skip(f"{tool} is not installed (scripts/deps.sh installs mmdebstrap)")
probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "true"],
                       capture_output=True, text=True)
if probe.returncode != 0:
    skip(f"cannot make mount and PID namespaces here: {probe.stderr.strip()}")


def in_archive(suite):
    """True when the mirror has the release, False when it answers without it; None when it
    cannot be reached at all."""
    try:
        with urllib.request.urlopen(f"{MIRROR}/dists/{suite}/InRelease", timeout=20) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False
    except OSError:
        return None


available = []
for suite in SUITES:
    have = in_archive(suite)
    if have is None:
        skip(f"the Debian archive {MIRROR} cannot be reached from here")
    if have:
        available.append(suite)
    else:
        print(f"note: {MIRROR} has no {suite}; not tested")
if not available:
    skip(f"{MIRROR} has none of {' '.join(SUITES)}")


def source_files():
    """The tree as git sees it (tracked and new files, not what .gitignore names: no build
    directories); every file when it is not a git checkout."""
    r = subprocess.run(["git", "-C", SRC, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], capture_output=True)
    if r.returncode == 0:
        return [p for p in r.stdout.decode().split("\0") if p]
    out = []
    for d, dirs, files in os.walk(SRC):
        dirs[:] = [x for x in dirs if not x.startswith(("build", ".state", ".git"))]
        out += [os.path.relpath(os.path.join(d, f), SRC) for f in files]
    return out


def copy_tree(root):
    dest = os.path.join(root, "src", "wslq")
    for rel in source_files():
        src = os.path.join(SRC, rel)
        if not os.path.isfile(src):
            continue  # deleted but not yet committed
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


# The script run inside the tree; each step prints a marker line the test looks for.
INSIDE = r"""
set -u
cd /src/wslq
snapshot() {
    find /etc /usr/local /var/lib/wslq /var/lib/dpkg -xdev \
        -printf '%p %s %m %u %T@\n' 2>/dev/null | sort
}
step() {
    echo "== $*"
    "$@"
    echo "== rc $?"
}
step deploy/wsl/install.sh --scheduler tcp://127.0.0.1:7420
snapshot >/tmp/before
step deploy/wsl/install.sh --scheduler tcp://127.0.0.1:7420
snapshot >/tmp/after
if cmp -s /tmp/before /tmp/after; then echo "== same after worker rerun"; else
    echo "== changed after worker rerun:"; diff /tmp/before /tmp/after | head -n 20; fi
step deploy/wsl/install.sh --scheduler-host --http lo:7421 --user-socket
snapshot >/tmp/before
step deploy/wsl/install.sh --scheduler-host --http lo:7421 --user-socket
snapshot >/tmp/after
if cmp -s /tmp/before /tmp/after; then echo "== same after scheduler rerun"; else
    echo "== changed after scheduler rerun:"; diff /tmp/before /tmp/after | head -n 20; fi
echo "== config"
grep -n '^scheduler = \|^http = \|^user_socket = ' /etc/wslq/wslq.conf
echo "== wslq reads it"
WSLQ_INSECURE=yes /usr/local/bin/wslq --timeout 1 queue 2>&1
echo "== demo"
unshare --net sh -c 'ip link set lo up && scripts/demo.sh --installed' 2>&1
echo "== demo rc $?"
"""


def run_suite(suite):
    name = NAMES.get(suite, suite)
    base = tempfile.mkdtemp(prefix=f"wslq-install-{suite}-",
                            dir=os.environ.get("WSLQ_INSTALL_TMP", "/var/tmp"))
    root = os.path.join(base, "root")
    try:
        t0 = time.monotonic()
        r = subprocess.run(["mmdebstrap", "--variant=apt", "--mode=root", "--quiet", suite,
                            root, MIRROR], capture_output=True, text=True, timeout=1200)
        if r.returncode != 0:
            check(False, f"{name}: mmdebstrap failed: {r.stderr.strip()[-2000:]}")
            return
        t_tree = time.monotonic() - t0
        copy_tree(root)
        shutil.copy2("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
        with open(os.path.join(root, "root", "inside.sh"), "w") as f:
            f.write(INSIDE)
        # /proc, /dev and /sys of this machine inside the tree, in a mount namespace of its
        # own (gone with it); a PID namespace, so no process outlives the chroot.
        shell = (f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
                 f"mount --rbind /sys {root}/sys && "
                 f"exec chroot {root} /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:"
                 f"/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "
                 f"bash /root/inside.sh")
        t1 = time.monotonic()
        r = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--propagation",
                            "private", "sh", "-c", shell], capture_output=True, text=True,
                           timeout=3000)
        out = r.stdout + r.stderr
        t_inside = time.monotonic() - t1
        with open(os.path.join(os.environ.get("WQTEST_SUITE", base),
                               f"test_install_{suite}.log"), "w") as f:
            f.write(out)

        def section(title):
            i = out.find(f"== {title}")
            return out[i:] if i >= 0 else ""

        runs = [line for line in out.splitlines() if line.startswith("== rc ")]
        check(runs == ["== rc 0"] * 4, f"{name}: four install.sh runs succeed: {runs}\n"
              + out[-3000:])
        parts = out.split("== deploy/wsl/install.sh")
        check(len(parts) == 5, f"{name}: four install.sh runs seen")
        if len(parts) == 5:
            check("nothing changed" not in parts[1] and "changes" in parts[1],
                  f"{name}: the first run reports its changes")
            check("nothing changed, everything was in place already" in parts[2],
                  f"{name}: the worker rerun says nothing changed:\n{parts[2][-1500:]}")
            check("nothing changed, everything was in place already" in parts[4],
                  f"{name}: the scheduler rerun says nothing changed:\n{parts[4][-1500:]}")
            check("installed /usr/local/bin/wslq-scheduler" in parts[3],
                  f"{name}: --scheduler-host installs the scheduler")
        check("== same after worker rerun" in out,
              f"{name}: the worker rerun changes no file:\n{section('changed after worker')}")
        check("== same after scheduler rerun" in out,
              f"{name}: the scheduler rerun changes no file:\n"
              f"{section('changed after scheduler')}")
        conf = section("config")
        check(conf.count("scheduler = tcp://127.0.0.1:7420") == 1 and
              conf.count("scheduler = unix:/run/wslq/user.sock") == 1 and
              "user_socket = /run/wslq/user.sock" in conf,
              f"{name}: the config names the scheduler's TCP address in [worker], its user "
              f"socket in [scheduler] and [client]:\n{conf[:600]}")
        check("http = lo:7421" in conf, f"{name}: the config has the dashboard's address")
        reads = section("wslq reads it")
        check("cannot reach scheduler at unix:/run/wslq/user.sock" in reads.split("== demo")[0],
              f"{name}: wslq takes the scheduler from /etc/wslq/wslq.conf:\n{reads[:600]}")
        demo = section("demo")
        check("== demo rc 0" in demo and "ended COMPLETED" in demo,
              f"{name}: the demo job completes with the installed programs:\n{demo[-3000:]}")
        print(f"{name}: tree {t_tree:.0f} s, install x4 + demo {t_inside:.0f} s")
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", base])


for s in available:
    run_suite(s)
finish()
