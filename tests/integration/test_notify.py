#!/usr/bin/env python3
"""wslq submit --notify: webhooks posted by the scheduler, received by HTTP servers of this
test on loopback.

* Configuration: a scheduler given a webhook URL that is not http(s), a user name missing
  after notify-url., or a bad retry count exits 2 with a one-line reason.
* Refusals: --notify with a bad event list is a usage error (exit 2) and queues nothing; a
  --notify job of a user with no webhook (no lab-wide URL, none of their own) is refused with
  the reason, and nothing is queued.
* The lab's webhook (notify-url) gets the test user's jobs; bob's own (notify-url.bob) gets
  his, and the lab's never sees them.
* A receiver that is down (HTTP 503 to its first posts) gets the notification when it is up
  again: retried with backoff, the loop never waits (a job submitted meanwhile is answered).
* What is posted: --notify all of a job that exits 3 posts "start" then "fail" with the state,
  exit code, reason, times and node; --notify end of a job that completes posts one "end";
  --notify fail of a job that completes posts nothing; a job without --notify posts nothing.
  No body carries the command, its environment or a --secret-env value.
* /metrics counts the posts sent."""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check, finish, free_port, wait_for  # noqa: E402
from test_http import Http  # noqa: E402

SECRET = "s3cr3t-value-never-posted"


class Receiver:
    """A webhook receiver: records each JSON body; answers 503 to the first 'fail_first'."""

    def __init__(self, fail_first=0):
        self.bodies = []
        self.refused = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(n)
                with rec.lock:
                    if rec.refused < rec.fail_first:
                        rec.refused += 1
                        code = 503
                    else:
                        code = 200
                        rec.bodies.append((self.headers.get("Content-Type"), data))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, job_id):
        with self.lock:
            out = []
            for _, data in self.bodies:
                b = json.loads(data)
                if b["job_id"] == job_id:
                    out.append(b)
            return out

    def all(self):
        with self.lock:
            return list(self.bodies)

    def stop(self):
        self.server.shutdown()


# ---- configuration the scheduler refuses ----
with tempfile.TemporaryDirectory() as d:
    for args, want in ((["--notify-url", "ftp://x.example/"], "does not start with http"),
                       (["--notify-url", "http://"], "names no host"),
                       (["--notify-retries", "-1"], "notify-retries")):
        r = subprocess.run([f"{BIN}/wslq-scheduler", "--state-dir", d, "--insecure", "yes",
                            "--listen", f"tcp://127.0.0.1:{free_port()}", "--http", "off"] + args,
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and want in r.stderr and r.stderr.count("\n") == 1,
              f"scheduler {' '.join(args)}: exit 2, one line: {r.returncode} {r.stderr.strip()}")
    conf = os.path.join(d, "bad.conf")
    with open(conf, "w") as f:
        f.write("[scheduler]\nnotify-url. = http://127.0.0.1:1/\n")
    r = subprocess.run([f"{BIN}/wslq-scheduler", "--config", conf, "--state-dir", d],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "user name after 'notify-url.'" in r.stderr,
          f"config notify-url. without a user: {r.returncode} {r.stderr.strip()}")

# ---- a scheduler with no webhook refuses --notify ----
c0 = Cluster(workers=[])
try:
    r = c0.cli("submit", "--notify", "end", "--", "/bin/true")
    check(r.returncode == 1 and "no webhook is configured for user" in r.stderr
          and r.stderr.count("\n") == 1, f"no webhook: refused: {r.returncode} {r.stderr.strip()}")
    check(c0.json("queue", "--all")["jobs"] == [], "the refused job was not queued")
finally:
    c0.stop()

lab = Receiver(fail_first=2)
own = Receiver()
port = free_port()
conf_dir = tempfile.mkdtemp(prefix="wslq-notify-")
conf = os.path.join(conf_dir, "scheduler.conf")
with open(conf, "w") as f:
    f.write(f"[scheduler]\nnotify-url = {lab.url}\nnotify-url.bob = {own.url}\n"
            "notify-timeout = 5s\nnotify-retries = 6\n")
c = Cluster(workers=[("pc1", 1)], sched_args=["--config", conf, "--http", f"127.0.0.1:{port}"])
try:
    bob = c.enrol("bob")
    before = len(c.json("queue", "--all")["jobs"])
    for bad in ("", "ends", "end,", "start;end", "END"):
        r = c.cli("submit", "--notify", bad, "--", "/bin/true")
        check(r.returncode == 2 and "--notify" in r.stderr and r.stderr.count("\n") == 1,
              f"--notify '{bad}': usage error: {r.returncode} {r.stderr.strip()}")
    check(len(c.json("queue", "--all")["jobs"]) == before, "bad --notify queued nothing")

    # The lab's receiver refuses its first two posts: both of this job's are retried.
    failing = c.submit("--notify", "all", "--secret-env", f"TOKEN={SECRET}", "--env",
                       f"VISIBLE={SECRET}", "--wrap", "sleep 1; exit 3")
    # the loop does not wait for the receiver: another submit is answered meanwhile
    quiet = c.submit("--", "/bin/true")
    check(quiet is not None, "a submit is answered while the webhook is down")
    c.wait_state(failing, ["COMPLETED", "FAILED"], timeout=120)
    check(c.state(failing) == "FAILED", "the exit-3 job FAILED")
    show = c.cli("show", str(failing)).stdout
    check("start,end,fail,requeue (webhook)" in show, "wslq show says what it notifies")
    wait_for(lambda: len(lab.events(failing)) >= 2, 120,
             "both notifications of the failing job after the receiver came up")
    ev = lab.events(failing)
    check([e["event"] for e in ev] == ["start", "fail"], f"start then fail: {ev}")
    check(lab.refused == 2, f"the receiver refused the first two posts ({lab.refused})")
    if len(ev) == 2:
        s, f = ev
        check(s["state"] == "RUNNING" and s["nodes"] == ["pc1"] and s["start_time"] and
              s["end_time"] is None, f"start body: {s}")
        check(f["state"] == "FAILED" and f["exit_code"] == 3 and f["end_time"] and
              f["user"] == c.user and f["job_id"] == failing and "FAILED" in f["text"],
              f"fail body: {f}")

    done_ok = c.submit("--notify", "end", "--", "/bin/true")
    fail_only = c.submit("--notify", "fail", "--", "/bin/true")
    r = c.cli("submit", "--parsable", "--notify", "end", "--", "/bin/true", env=bob)
    check(r.returncode == 0, f"bob's --notify job accepted: {r.stderr.strip()}")
    bobs = int(r.stdout.strip())
    for j in (quiet, done_ok, fail_only, bobs):
        c.wait_state(j, ["COMPLETED", "FAILED"], timeout=120)
    raw = b"".join(data for _, data in lab.all())
    check(SECRET.encode() not in raw and b"sleep 1" not in raw,
          "no body carries the command, the environment or a secret")
    check(all(ct == "application/json" for ct, _ in lab.all()), "posted as application/json")

    wait_for(lambda: len(lab.events(done_ok)) >= 1, 60, "the end notification")
    ev = lab.events(done_ok)
    check([(e["event"], e["state"], e["exit_code"]) for e in ev] == [("end", "COMPLETED", 0)],
          f"--notify end of a completed job: one end post: {ev}")
    wait_for(lambda: len(own.events(bobs)) >= 1, 60, "bob's notification at his own webhook")
    check([e["event"] for e in own.events(bobs)] == ["end"] and own.events(bobs)[0]["user"] ==
          "bob", "bob's job posted to his own webhook")
    check(lab.events(bobs) == [], "the lab's webhook did not get bob's job")
    # by now the later posts are in: the ones that must not exist would be too
    time.sleep(1)
    check(lab.events(fail_only) == [], "--notify fail of a completed job posts nothing")
    check(lab.events(quiet) == [] and own.events(quiet) == [], "no --notify, no post")

    status, _, body = Http(port, c.token()).get("/metrics")
    metrics = body.decode()
    sent = [ln for ln in metrics.splitlines() if ln.startswith("wslq_notify_sent_total ")]
    check(sent and int(sent[0].split()[1]) >= 4, f"/metrics counts the posts: {sent}")
finally:
    c.stop()
    lab.stop()
    own.stop()
finish()
