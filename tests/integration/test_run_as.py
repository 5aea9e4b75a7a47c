#!/usr/bin/env python3
"""No job runs as root: a worker started as root switches every job's ranks to another account
(worker/README.md, "Run-as modes").

Needs root, useradd, userdel and runuser (skipped with the reason otherwise). A temporary system
account is made for the test and removed at the end, also when the test dies: a watchdog shell
in its own session removes it once this process's end of a pipe closes.

* run_as = service with service_user = the account: a job submitted by root runs as the account
  (id -u, id -g, groups, HOME, USER), no process of its session is root, it reaches its
  key/value store through the rendezvous socket (`wslq kv`), its spool directory is 0700 and its
  files 0600, all the account's, and the worker's jobs/ is 0700.
* run_as = owner: a job owned by the account runs as it; one submitted by root ends FAILED
  "refusing to run a job as root"; one whose owner has no account here ends FAILED "no local
  account '<name>' on <node> (run_as = owner)". Who owns a job is who submitted it: on a
  cluster with enrolment (Cluster.enrol), the user whose key signed the submission; without
  it, the name the CLI takes from its own uid, so the account's job is submitted by the CLI
  run under runuser, and the owner without an account is a uid with no passwd entry, which
  the CLI names by its number.
* The worker refuses to start, with one line saying how to fix it, when service_user does not
  exist, and in owner mode when it is not root."""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, temp_accounts, wait_for  # noqa: E402

if os.geteuid() != 0:
    print(f"skipped: switching jobs to another account needs root (this runs as uid "
          f"{os.geteuid()})")
    sys.exit(77)
missing = [t for t in ("useradd", "userdel", "runuser") if shutil.which(t) is None]
if missing:
    print(f"skipped: {', '.join(missing)} missing: no temporary account")
    sys.exit(77)

home = tempfile.mkdtemp(prefix="wqi-home-")
(acct,), remove_account = temp_accounts(["wqi"], home)
pw = pwd.getpwnam(acct)
os.chown(home, pw.pw_uid, pw.pw_gid)
os.chmod(home, 0o700)
WSLQ = f"{BIN}/wslq"

# What each job prints: who it runs as, its session (to look at every process in it), the
# key/value store through its rendezvous socket; then it waits for its go file.
JOB = ('echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME user=$USER"; '
       'echo "sid=$(cut -d" " -f6 /proc/$$/stat)"; '
       f'{WSLQ} kv put k hello && echo "kv=$({WSLQ} kv get k)"; '
       'while [ ! -e "$HOME/go-$WSLQ_JOB_ID" ]; do sleep 0.1; done; echo done')


def log_of(c, jid):
    r = c.cli("logs", str(jid))
    return r.stdout if r.returncode == 0 else ""


def field(text, name):
    for line in text.splitlines():
        for word in line.split():
            if word.startswith(name + "="):
                return word[len(name) + 1:]
    return None


def session_uids(sid):
    """uid lines (real, effective, saved, fs) of every live process in session sid."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if rest[0] == "Z" or int(rest[3]) != sid:
                continue
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        found[int(d)] = [int(x) for x in line.split()[1:]]
        except (OSError, IndexError, ValueError):
            continue
    return found


def run_checked_job(c, jid, what):
    """Wait for the job to be up, check every process of its session, let it finish; returns
    its log."""
    up = wait_for(lambda: "kv=" in log_of(c, jid), 60, f"{what}: job {jid} to report", 0.2)
    log = log_of(c, jid)
    check(up, f"{what}: the job ran and reported: {log!r}")
    sid = int(field(log, "sid") or 0)
    uids = session_uids(sid) if sid > 0 else {}
    # The leader is the rank's first process (the rank keeper execs the job in a session of
    # its own; wslq-rank leads it on the old path); what else is in it comes and goes (the
    # job's sleeps), so only the leader is certain to be there.
    check(sid in uids,
          f"{what}: its session {sid} is live, led by the job's rank: {uids}")
    check(uids and all(u == [pw.pw_uid] * 4 for u in uids.values()),
          f"{what}: every process of the job runs as {acct} ({pw.pw_uid}), none as root: {uids}")
    open(os.path.join(home, f"go-{jid}"), "w").close()
    c.wait_state(jid, ("COMPLETED", "FAILED"), 60)
    check(c.state(jid) == "COMPLETED", f"{what}: job {jid} COMPLETED ({c.state(jid)})")
    log = log_of(c, jid)
    m = re.search(r"^uid=(\d+) gid=(\d+) groups=([\d ]*) home=(\S*) user=(\S*)$", log, re.M)
    check(m is not None and m[1] == str(pw.pw_uid) and m[2] == str(pw.pw_gid),
          f"{what}: id -u/-g are {acct}'s: {log!r}")
    if m:
        groups = m[3].split()
        check(groups and groups[0] == str(pw.pw_gid) and "0" not in groups,
              f"{what}: the account's groups, no root group: {groups}")
        check(m[4] == home and m[5] == acct, f"{what}: HOME and USER are the account's: {log!r}")
    check("kv=hello" in log, f"{what}: the rank used its rendezvous socket (wslq kv): {log!r}")
    return log


def refused(c, jid, want, what):
    """The job ended FAILED at once, its worker's reason in `wslq show`'s events and its log."""
    c.wait_state(jid, ("COMPLETED", "FAILED"), 60)
    s = c.show(jid) or {"job": {}, "events": []}
    states = [e.get("state") for e in s["events"]]
    check(s["job"].get("state") == "FAILED" and "RUNNING" not in states,
          f"{what}: FAILED without running: {s['job'].get('state')} {states}")
    details = [e.get("detail", "") for e in s["events"]]
    check(any(want in d for d in details), f"{what}: the reason {want!r} in its events: {details}")
    check(want in log_of(c, jid), f"{what}: and in its log")


def mode_owner(path):
    st = os.lstat(path)
    return oct(st.st_mode & 0o7777), st.st_uid


def submit_as(c, who, *args):
    """Submit as user 'who': (returncode, stdout, stderr). who None: a uid with no account."""
    if getattr(c, "secure", False):  # the owner is the enrolled user whose key signs it
        name = who or f"wqn{acct[3:]}"
        r = c.cli("submit", "--parsable", *args, env=c.enrol(name))
    elif who is not None:  # the owner is the name the CLI takes from its uid
        r = subprocess.run(["runuser", "-u", who, "--", WSLQ, "submit", "--parsable", *args],
                           capture_output=True, text=True, env=c.env(WSLQ_SCHEDULER=c.addr),
                           cwd="/tmp", timeout=60)
    else:
        uid = next(u for u in range(59999, 40000, -1) if not any(p.pw_uid == u
                                                                for p in pwd.getpwall()))
        name = str(uid)
        r = subprocess.run([WSLQ, "submit", "--parsable", *args], capture_output=True,
                           text=True, env=c.env(WSLQ_SCHEDULER=c.addr), cwd="/tmp", timeout=60,
                           user=uid, group=uid, extra_groups=[])
    return r, (who or name)


# Flags a worker started outside a cluster needs to get as far as its run-as checks.
help_text = subprocess.run([f"{BIN}/wslq-worker", "--help"], capture_output=True,
                           text=True).stdout
ALONE = ["--insecure", "yes"] if "--insecure" in help_text else []

c = None
try:
    # ---- the worker refuses to start, saying how to fix it ----
    state = os.path.join(home, "refused")
    r = subprocess.run([f"{BIN}/wslq-worker", "--scheduler", "tcp://127.0.0.1:1", "--name", "x",
                        "--state-dir", state, "--service-user", "wqnosuchacct", *ALONE],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and "useradd --system" in r.stderr and
          "wqnosuchacct" in r.stderr, f"root worker without its service account: {r.stderr!r}")
    r = subprocess.run(["runuser", "-u", acct, "--", f"{BIN}/wslq-worker", "--scheduler",
                        "tcp://127.0.0.1:1", "--name", "x", "--state-dir", state, "--run-as",
                        "owner", *ALONE], capture_output=True, text=True, timeout=30, cwd="/tmp")
    check(r.returncode == 1 and "needs the worker to run as root" in r.stderr,
          f"run_as = owner without root: {r.stderr!r}")

    c = Cluster()
    os.chmod(c.dir, 0o711)  # mkdtemp's 0700 would keep the account out of its spool

    # ---- run_as = service: root's job runs as the service account ----
    c.start_worker("svc", 0, ["--run-as", "service", "--service-user", acct])
    jid = c.submit("--chdir", "/tmp", "--wrap", JOB)
    if check(jid is not None, "service mode: job submitted by root"):
        run_checked_job(c, jid, "service mode")
        sd = os.path.join(c.dir, "w-svc")
        check(mode_owner(os.path.join(sd, "jobs"))[0] == "0o700", "the worker's jobs/ is 0700")
        spool = os.path.join(sd, "spool", f"{jid}.0")
        got = mode_owner(spool) if os.path.exists(spool) else None
        check(got == ("0o700", pw.pw_uid), f"spool is 0700 and {acct}'s: {got}")
        for f in ("job.log", "metrics-0.jsonl", "rank-0.status"):
            p = os.path.join(spool, f)
            got = mode_owner(p) if os.path.exists(p) else None
            check(got == ("0o600", pw.pw_uid), f"{f} is 0600 and {acct}'s: {got}")

    # ---- run_as = owner: each job as its owner's account ----
    c.workers["svc"].terminate()
    c.workers["svc"].wait(30)
    wait_for(lambda: c.node_state("svc") == "lost", 30, "node svc to be lost")
    c.start_worker("own", 0, ["--run-as", "owner"])
    r, _ = submit_as(c, acct, "--chdir", "/tmp", "--wrap", JOB)
    check(r.returncode == 0, f"owner mode: {acct} submits its own job: {r.stderr.strip()}")
    if r.returncode == 0:
        jid = int(r.stdout.strip())
        owner = ((c.job(jid) or {}).get("spec") or {}).get("user")
        check(owner == acct, f"the job's owner is {acct}: {owner!r}")
        run_checked_job(c, jid, "owner mode")

    marker = os.path.join(c.dir, "root-job-ran")
    jid = c.submit("--chdir", "/tmp", "--wrap", f"touch {marker}")
    if check(jid is not None, "owner mode: root submits a job"):
        refused(c, jid, "refusing to run a job as root", "owner mode, root's job")
        check(not os.path.exists(marker), "and nothing of it ran")

    r, name = submit_as(c, None, "--chdir", "/tmp", "--", "true")
    check(r.returncode == 0, f"an owner without an account here submits: {r.stderr.strip()}")
    if r.returncode == 0:
        refused(c, int(r.stdout.strip()), f"no local account '{name}' on own (run_as = owner)",
                "owner mode, an owner without an account")
finally:
    if c is not None:
        c.stop()
    remove_account()
check(not any(p.pw_name == acct for p in pwd.getpwall()), f"temporary account {acct} removed")
finish()
