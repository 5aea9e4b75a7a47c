"""Browser test of the dashboard (ctest label `browser`): a loopback cluster with the HTTP
server on, Debian's chromium driven by playwright-core (dashboard_test.js).

Needs chromium, node and npm; installs chromium with apt-get when run as root, installs
playwright-core from package-lock.json into the build tree with `npm ci`, and exits 77
(skipped) with the reason when any of that cannot be done. Screenshots go to the folder
given as the first argument (default ./browser-artifacts)."""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def skip(why):
    print(f"SKIP: {why}", flush=True)
    sys.exit(77)


def ensure_chromium():
    if os.access(CHROMIUM, os.X_OK):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        skip(f"{CHROMIUM} is missing (apt-get install chromium, as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                       capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
        skip(f"could not install chromium: {r.stderr.strip()[-300:]}")


def ensure_playwright(out):
    """npm ci into <out>/node, so parallel build trees do not share a node_modules."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        skip("node and npm are needed (apt-get install nodejs npm)")
    dest = os.path.join(out, "node")
    os.makedirs(dest, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, f), dest)
    mod = os.path.join(dest, "node_modules", "playwright-core")
    if os.path.isdir(mod):
        return os.path.join(dest, "node_modules")
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=dest,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not os.path.isdir(mod):
        skip(f"npm ci failed (offline?): {r.stderr.strip()[-300:]}")
    return os.path.join(dest, "node_modules")


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "browser-artifacts")
    os.makedirs(out, exist_ok=True)
    ensure_chromium()
    modules = ensure_playwright(out)

    http_port = cluster.free_port()
    c = cluster.Cluster(sched_args=["--http", f"127.0.0.1:{http_port}", "--http-rate", "0"])
    try:
        # Two GPUs with memory and temperature from the fake NVML library (node tests),
        # so the page has bars to draw; declared GPUs when it was not built.
        fake = os.path.join(cluster.BIN, "..", "lib", "libfake_nvml.so")
        has_fake = os.path.exists(fake)
        if has_fake:  # the worker discovers its GPUs through $WSLQ_NVML_LIB
            c.start_worker("pc1", None, env={"WSLQ_NVML_LIB": os.path.abspath(fake)})
        else:
            c.start_worker("pc1", 2)
        # pc2's owner is away (owner = yield): the node card says so
        owner = os.path.join(c.dir, "owner-pc2.json")
        with open(owner, "w") as f:
            json.dump({"version": 1, "time": int(time.time()), "idle_s": 600,
                       "fullscreen": False, "gpu_ok": True, "gpu_procs": [],
                       "tdr": {"delay_s": 2, "level": 3}}, f)
        c.start_worker("pc2", 1, extra=["--owner", "yield", "--owner-file", owner,
                                        "--owner-away-min", "1", "--owner-stale-s", "3600"])
        # the page signs in with a token from `wslq token`, as a user would paste it
        env = dict(os.environ, WSLQ_URL=f"http://127.0.0.1:{http_port}/",
                   WSLQ_SCHEDULER=c.addr, WSLQ_CLI=os.path.join(cluster.BIN, "wslq"),
                   WSLQ_CREDENTIALS=c.creds, WSLQ_TEST_TOKEN=c.token(), WSLQ_TEST_USER=c.user,
                   WSLQ_ARTIFACTS=out, WSLQ_NODE_MODULES=modules, WSLQ_WORKDIR=c.dir,
                   WSLQ_CHROMIUM=CHROMIUM, WSLQ_NVML_FAKE="1" if has_fake else "")
        r = subprocess.run(["node", os.path.join(HERE, "dashboard_test.js")], env=env,
                           timeout=240)
        cluster.check(r.returncode == 0, "dashboard_test.js passed")
    finally:
        c.stop()
    print(f"screenshots in {out}", flush=True)
    cluster.finish()


if __name__ == "__main__":
    main()
