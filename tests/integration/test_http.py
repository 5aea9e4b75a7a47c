"""The dashboard's HTTP side against a live loopback cluster: status codes, JSON shapes,
filters and paging, unknown ids, hostile requests, limits, the token, Server-Sent Events,
and that the scheduler keeps serving through all of it."""
import json
import os
import socket
import subprocess
import tempfile
import time

from cluster import BIN, Cluster, check, finish, free_port, wait_for


# The token of the cluster's admin user, sent by sse_events (set in main).
SSE_TOKEN = None


class Http:
    def __init__(self, port, token=None):
        """token: sent as 'Authorization: Bearer' unless a request sets its own."""
        self.port = port
        self.token = token

    def raw(self, data, read=65536, timeout=5):
        """Send raw bytes; return (status, headers dict, body bytes). Status 0 = no answer, and
        then self.ended says how the connection ended: "closed" (by the server), "reset" or
        "timeout" (left hanging)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        self.ended = "closed"
        try:
            s.sendall(data)
            buf = b""
            while True:
                try:
                    d = s.recv(read)
                except socket.timeout:
                    self.ended = "timeout"
                    break
                except ConnectionResetError:
                    self.ended = "reset"
                    break
                if not d:
                    break
                buf += d
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    hdrs = self._headers(head)
                    n = int(hdrs.get("content-length", "-1"))
                    if n >= 0 and len(body) >= n:
                        break
        finally:
            s.close()
        head, _, body = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1."):
            return 0, {}, b""
        return int(head.split(b" ")[1]), self._headers(head), body

    @staticmethod
    def _headers(head):
        out = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            out[k.strip().lower()] = v.strip()
        return out

    def get(self, path, method="GET", headers=None, body=b""):
        h = {"Host": "x", "Connection": "close"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        if body:
            h["Content-Length"] = str(len(body))
        req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        return self.raw(req.encode("latin-1") + b"\r\n" + body)

    def json(self, path, headers=None):
        st, hd, body = self.get(path, headers=headers)
        doc = None
        try:
            doc = json.loads(body)
        except ValueError:
            pass
        return st, hd, doc


def sse_events(port, path, until, timeout=10):
    """Read an event stream until until(events) is true; returns the (event, data) list."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if SSE_TOKEN:  # as the page does: EventSource cannot set headers
        path += ("&" if "?" in path else "?") + f"access_token={SSE_TOKEN}"
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf, events = b"", []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(events):
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            buf += d
            # Chunked transfer: drop chunk-size lines crudely by scanning for event blocks.
            text = buf.decode("utf-8", "replace")
            events = []
            for block in text.split("\n\n"):
                ev, data = None, None
                for line in block.split("\n"):
                    line = line.strip("\r")
                    if line.startswith("event: "):
                        ev = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                if ev and data is not None:
                    try:
                        events.append((ev, json.loads(data)))
                    except ValueError:
                        pass
    finally:
        s.close()
    return events


def main():
    port = free_port()
    c = Cluster(sched_args=["--http", f"127.0.0.1:{port}", "--http-rate", "0"])
    try:
        global SSE_TOKEN
        SSE_TOKEN = c.token()
        run(c, Http(port, c.token()))
        SSE_TOKEN = None
        run_snapshots_on_demand()
        run_token_and_rate()
        run_flags()
    finally:
        c.stop()
    finish()


def start_fake_gpu_worker(c, name):
    """A worker that discovers two GPUs through the fake NVML library of node's tests
    (memory, temperature, power; utilisation not reported), or declares two when that library
    was not built. Returns whether the fake was used."""
    fake = os.path.join(BIN, "..", "lib", "libfake_nvml.so")
    if not os.path.exists(fake):
        print("note: fake NVML library not built; GPUs are declared", flush=True)
        c.start_worker(name, 2)
        return False
    c.start_worker(name, None, env={"WSLQ_NVML_LIB": os.path.abspath(fake)})
    wait_for(lambda: c.node_state(name) == "idle", 10, f"{name} to register")
    return True


def run(c, h):
    fake = start_fake_gpu_worker(c, "pc1")
    c.start_worker("pc2", 1)

    # ---- basics ----
    st, hd, body = h.get("/healthz")
    check(st == 200 and body == b"ok\n", "/healthz answers ok")
    st, hd, body = h.get("/")
    check(st == 200 and hd.get("content-type", "").startswith("text/html")
          and b"/assets/app.js" in body, "/ serves the page")
    check("content-security-policy" in hd and "'self'" in hd["content-security-policy"],
          "the page is served with a content security policy")
    etag = hd.get("etag")
    st, _, body = h.get("/", headers={"If-None-Match": etag})
    check(st == 304 and body == b"", "the page answers If-None-Match with 304")
    for f in ("app.js", "app.css", "favicon.svg"):
        st, hd, _ = h.get(f"/assets/{f}")
        check(st == 200, f"/assets/{f} served ({hd.get('content-type')})")
    st, _, _ = h.get("/", method="HEAD")
    check(st == 200, "HEAD / answers 200")

    # ---- nodes and summary ----
    ok = wait_for(lambda: len(h.json("/api/v1/nodes")[2]["nodes"]) == 2, 5, "two nodes")
    st, hd, doc = h.json("/api/v1/nodes")
    check(st == 200 and hd.get("content-type") == "application/json", "/api/v1/nodes is JSON")
    check(ok and {n["name"] for n in doc["nodes"]} == {"pc1", "pc2"}, "both nodes listed")
    node = next(n for n in doc["nodes"] if n["name"] == "pc1")
    keys = {"name", "state", "hostname", "ip", "cpus", "cpus_alloc", "mem_mb", "gpus_total",
            "gpus_used", "last_seen_ms", "inbound_ok", "attrs", "gpus"}
    check(keys <= set(node), "node objects have the CLI's keys")
    gkeys = {"index", "uuid", "name", "mem_total_mb", "mem_used_mb", "temp_c", "util_pct",
             "power_w", "job_id", "declared"}
    check(node["gpus"] and gkeys <= set(node["gpus"][0]), "GPU objects have the CLI's keys")
    if fake:
        g0 = node["gpus"][0]
        check(g0["mem_total_mb"] > 0 and g0["temp_c"] == 45 and g0["util_pct"] is None,
              "reported GPU metrics reach the API (util not reported = null)")
    st, _, s = h.json("/api/v1/summary")
    check(st == 200 and s["nodes"]["total"] == 2 and s["gpus"]["total"] >= 3
          and s["jobs"]["total"] == 0 and "counters" in s and "wait" in s,
          f"/api/v1/summary shape ({s and s['gpus']})")

    # ---- jobs ----
    done = []
    for i in range(5):
        jid = c.submit("--name", "alpha" if i % 2 == 0 else "beta", "--env", "SECRET=hunter2",
                       "--", "sh", "-c",
                       f'echo line-{i}; echo "{{\\"step\\":1,\\"loss\\":{i}.5}}" >> "$WSLQ_METRICS"; '
                       f'echo "{{\\"step\\":2,\\"loss\\":{i}.25}}" >> "$WSLQ_METRICS"')
        done.append(jid)
    for jid in done:
        c.wait_state(jid, "COMPLETED")
    long_a = c.submit("--gpus", "1", "--name", "long", "--", "sleep", "60")
    c.wait_state(long_a, "RUNNING")
    waiting = c.submit("--dependency", f"afterok:{long_a}", "--name", "waiter", "--", "true")
    all_ids = done + [long_a, waiting]

    st, _, doc = h.json("/api/v1/jobs")
    check(st == 200 and [j["id"] for j in doc["jobs"]] == sorted(all_ids, reverse=True),
          "/api/v1/jobs lists every job, newest first")
    check(doc["more"] is False and doc["next_before"] is None, "one page: more=false")
    j0 = doc["jobs"][-1]
    jkeys = {"id", "state", "attempt", "submit_ms", "submit_time", "start_ms", "end_ms",
             "exit_code", "reason", "spec", "allocs"}
    check(jkeys <= set(j0) and {"argv", "user", "name", "gpus", "env"} <= set(j0["spec"]),
          "job objects have the CLI's keys")
    check(j0["spec"]["env"] == ["SECRET=\u2026"] and b"hunter2" not in h.get("/api/v1/jobs")[2],
          "environment values are hidden")
    st, _, doc = h.json("/api/v1/jobs?state=running")
    check([j["id"] for j in doc["jobs"]] == [long_a], "state=running filter")
    st, _, doc = h.json("/api/v1/jobs?state=completed&name=alpha")
    check(sorted(j["id"] for j in doc["jobs"]) == [done[0], done[2], done[4]],
          "state and name filters combine")
    st, _, doc = h.json("/api/v1/jobs?state=active")
    check(sorted(j["id"] for j in doc["jobs"]) == sorted([long_a, waiting]), "state=active")
    user = doc["jobs"][0]["spec"]["user"]
    st, _, doc = h.json(f"/api/v1/jobs?user={user}")
    check(len(doc["jobs"]) == len(all_ids), "user filter (own user)")
    st, _, doc = h.json("/api/v1/jobs?user=nobody-here")
    check(st == 200 and doc["jobs"] == [] and doc["more"] is False, "user filter (no match)")

    # Paging: limit=2 pages through everything once, newest first, then stops.
    seen, before, pages = [], 0, 0
    while pages < 10:
        q = "/api/v1/jobs?limit=2" + (f"&before={before}" if before else "")
        st, _, doc = h.json(q)
        seen += [j["id"] for j in doc["jobs"]]
        pages += 1
        if not doc["more"]:
            break
        before = doc["next_before"]
    check(seen == sorted(all_ids, reverse=True) and pages == 4,
          f"paging with limit/before ({pages} pages)")

    # One job: spec, events, allocs; log; metrics.
    jid = done[1]
    st, _, doc = h.json(f"/api/v1/jobs/{jid}")
    states = [e["state"] for e in doc["events"]]
    check(st == 200 and doc["job"]["id"] == jid and states[0] == "PENDING"
          and states[-1] == "COMPLETED" and doc["job"]["allocs"] and doc["log_bytes"] > 0,
          f"/api/v1/jobs/{jid}: job, events ({states}), allocs")
    st, _, doc = h.json(f"/api/v1/jobs/{jid}/log")
    check(st == 200 and doc["data"] == "line-1\n" and doc["eof"] is True
          and doc["state"] == "COMPLETED", "/log: the tail, eof for an ended job")
    st, _, doc = h.json(f"/api/v1/jobs/{jid}/log?offset=2&max=3")
    check(doc["data"] == "ne-" and doc["next_offset"] == 5 and doc["eof"] is False,
          "/log: offset and max")
    st, _, doc = h.json(f"/api/v1/jobs/{jid}/metrics")
    check(st == 200 and doc["series"] == {"loss": {"0": [[1, 1.5], [2, 1.25]]}},
          "/metrics of a job: series by key and rank")
    st, _, doc = h.json(f"/api/v1/jobs/{long_a}/log")
    check(st == 200 and doc["eof"] is False and doc["state"] == "RUNNING",
          "/log of a running job: not eof")

    # Unknown ids: 404 with a JSON error.
    for p in ("/api/v1/jobs/999999", "/api/v1/jobs/999999/log", "/api/v1/jobs/999999/metrics",
              "/api/v1/events?job=999999"):
        st, hd, doc = h.json(p)
        check(st == 404 and hd.get("content-type") == "application/json" and doc
              and "error" in doc, f"{p} -> 404 JSON ({doc})")

    # ---- Server-Sent Events ----
    evs = sse_events(port_of(h), "/api/v1/events", lambda e: any(x[0] == "update" for x in e))
    upd = [d for e, d in evs if e == "update"]
    check(evs and evs[0][0] == "hello" and upd and "summary" in upd[0] and "nodes" in upd[0],
          "event stream: hello, then an update with summary and nodes")
    check(upd and isinstance(upd[0]["nodes"], list)
          and all(isinstance(n, dict) and "name" in n and "gpus" in n for n in upd[0]["nodes"]),
          "the update's nodes are the node objects, as /api/v1/nodes has them")
    first_jv = upd[0]["jobs_version"] if upd else None
    box = {}

    def submit_later():
        box["id"] = c.submit("--name", "sse", "--", "true")
    import threading
    t = threading.Timer(0.5, submit_later)
    t.start()
    evs = sse_events(port_of(h), "/api/v1/events",
                     lambda e: any(x[0] == "update" and x[1]["jobs_version"] != first_jv
                                   and x[1]["summary"]["jobs"]["total"] == len(all_ids) + 1
                                   for x in e), timeout=10)
    t.join()
    check(any(e == "update" and d["summary"]["jobs"]["total"] == len(all_ids) + 1
              for e, d in evs), "a submission is pushed as an update with a new jobs_version")
    evs = sse_events(port_of(h), f"/api/v1/events?job={done[3]}",
                     lambda e: {"log", "metrics"} <= {x[0] for x in e})
    logs = [d for e, d in evs if e == "log"]
    mets = [d for e, d in evs if e == "metrics"]
    check(logs and logs[0]["data"] == "line-3\n" and mets
          and mets[0]["series"]["loss"]["0"] == [[1, 3.5], [2, 3.25]],
          "event stream with ?job=: the job's log and metric points")
    c.wait_state(box.get("id", 0), "COMPLETED")

    # ---- hostile requests ----
    hostile = [
        ("/../etc/passwd", (400,)), ("/assets/../../etc/passwd", (400,)),
        ("/assets/%2e%2e/%2e%2e/etc/passwd", (400,)), ("/assets/app.js%00.png", (400,)),
        ("/api/v1/jobs?name=%00", (400,)), ("/api/v1/jobs?name=%zz", (400,)),
        ("/api/v1/jobs?limit=0", (400,)), ("/api/v1/jobs?limit=5&limit=6", (400,)),
        ("/api/v1/jobs?state=bogus", (400,)), ("/api/v1/jobs?bogus=1", (400,)),
        ("/api/v1/jobs/abc", (404,)), ("/api/v1/jobs/-1", (404,)), ("/etc/passwd", (404,)),
        ("/assets/.htaccess", (404,)), ("/assets/nope.js", (404,)), ("/api/v2/jobs", (404,)),
        ("//api/v1/jobs", (404,)), ("/" + "a" * 3000, (414,)),
        ("/api/v1/jobs?name=" + "a" * 3000, (414,)), ("/" + "a/" * 200, (404, 400)),
        ("*", (400,)), ("http://evil/api/v1/jobs", (400,)),
    ]
    for p, want in hostile:
        st, hd, body = h.get(p)
        check(st in want, f"hostile target {p[:60]!r} -> {st} (want {want})")
    st, _, _ = h.get("/api/v1/summary", headers={"X-Big": "a" * 20000})
    check(st == 431, f"a 20 KB header -> {st} (431)")
    st, _, _ = h.get("/api/v1/summary", headers={f"X-H{i}": "v" * 40 for i in range(600)})
    check(st == 431, f"600 headers -> {st} (431)")
    st, _, _ = h.get("/api/v1/summary", headers={"X-Ok": "a" * 4000})
    check(st == 200, "a 4 KB header is fine")
    for m in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        st, hd, _ = h.get("/api/v1/jobs", method=m, body=b"{}" if m in ("POST", "PUT") else b"")
        check(st == 405 and hd.get("allow") == "GET, HEAD", f"{m} -> 405 with Allow")
    st, _, _ = h.get("/api/v1/jobs", body=b"x=1")
    check(st == 413, "GET with a body -> 413")
    # libmicrohttpd closes the connection on a request line it cannot parse: that is a refusal
    # only if the server closed it at once (not a connection left hanging) and still serves.
    t0 = time.monotonic()
    st, _, _ = h.raw(b"GARBAGE\r\n\r\n", timeout=20)
    took = time.monotonic() - t0
    check(st == 400 or (st == 0 and h.ended in ("closed", "reset") and took < 10),
          f"a garbage request line is refused: {st or h.ended} after {took:.1f} s")
    check(h.get("/api/v1/summary")[0] == 200, "and the next request is served")
    st, _, _ = h.raw(b"GET /api/v1/summary HTTP/9.9\r\nHost: x\r\n\r\n")
    check(st == 505, f"an unknown HTTP version is refused with 505 ({st or h.ended})")

    # ---- connection limit: idle connections past max_conns (64) get 503 ----
    socks = []
    for _ in range(66):
        socks.append(socket.create_connection(("127.0.0.1", port_of(h))))
    time.sleep(0.3)
    st, hd, _ = h.get("/api/v1/summary")
    check(st == 503 and hd.get("retry-after") == "1", f"past the connection limit -> {st} (503)")
    for s in socks:
        s.close()
    ok = wait_for(lambda: h.get("/api/v1/summary")[0] == 200, 5, "connections to drain")
    check(ok, "serving again once connections close")

    # ---- the scheduler kept serving ----
    r = c.cli("queue")
    check(r.returncode == 0, "wslq queue still answers after all that")
    jid = c.submit("--name", "after", "--", "true")
    check(c.wait_state(jid, "COMPLETED"), "a job still runs after all that")
    st, _, doc = h.json(f"/api/v1/jobs/{jid}")
    check(st == 200 and doc["job"]["state"] == "COMPLETED", "the API sees it")
    c.cli("cancel", str(long_a), str(waiting))


def port_of(h):
    return h.port


def snapshot_lines(c):
    """How many dashboard snapshots the scheduler has logged taking (WSLQ_DEBUG=http)."""
    with open(os.path.join(c.dir, "scheduler.log")) as f:
        return f.read().count("http snapshot version=")


def run_snapshots_on_demand():
    """With no one reading the dashboard for 5 s (READERS_MS, scheduler/http/http.c) the loop
    takes no snapshots, though jobs come and go; the next request gets a fresh one, taken after
    it was made and showing what happened meanwhile."""
    port = free_port()
    os.environ["WSLQ_DEBUG"] = "http"  # the scheduler logs each snapshot it takes
    try:
        c = Cluster(sched_args=["--http", f"127.0.0.1:{port}", "--http-rate", "0"])
    finally:
        del os.environ["WSLQ_DEBUG"]
    h = Http(port, c.token())
    try:
        c.start_worker("pc1", 0)
        wait_for(lambda: c.node_state("pc1") == "idle", 10, "pc1 to register")
        st, _, first = h.json("/api/v1/summary")
        check(st == 200 and first["jobs"]["total"] == 0, "the summary answers, no jobs yet")
        time.sleep(5.5)  # no reader for longer than READERS_MS
        before = snapshot_lines(c)
        job = c.submit("--", "true")
        c.wait_state(job, "COMPLETED")
        time.sleep(1.5)  # turns with changes, and the loop's 1 s refresh, would have published
        after = snapshot_lines(c)
        check(after == before, f"no snapshot taken with no one reading ({after - before} taken)")
        # A page loads several at once: none may get the stale one while the first waits.
        import threading
        docs = [None] * 4
        asked_ms = time.time() * 1000

        def get(i):
            docs[i] = h.json("/api/v1/summary" if i % 2 == 0 else "/api/v1/nodes")
        threads = [threading.Thread(target=get, args=(i,)) for i in range(len(docs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        sums = [d[2] for i, d in enumerate(docs) if i % 2 == 0 and d and d[0] == 200]
        check(len(sums) == 2 and all(d["time_ms"] >= asked_ms - 1 for d in sums),
              f"the next requests, made together, get a snapshot taken after they were made "
              f"({[d.get('time_ms') for d in sums]} against {asked_ms:.0f})")
        check(all(d["jobs"]["total"] == 1 and d["version"] > first["version"] for d in sums),
              f"the fresh snapshot shows the job that ran meanwhile ({[d['jobs'] for d in sums]})")
        nodes = [d for i, d in enumerate(docs) if i % 2 == 1]
        check(all(d and d[0] == 200 for d in nodes), "the nodes requests answered too")
        check(snapshot_lines(c) - after in (1, 2), f"one snapshot taken for them "
              f"({snapshot_lines(c) - after})")
        doc = sums[0]
        st, _, doc2 = h.json("/api/v1/summary")
        check(st == 200 and doc2["time_ms"] >= doc["time_ms"],
              "a request right after gets that snapshot or a newer one, never an older one")
    finally:
        c.stop()


def run_token_and_rate():
    port = free_port()
    tok = tempfile.NamedTemporaryFile("w", delete=False, suffix=".token")
    tok.write("s3cret-token\n")
    tok.close()
    c = Cluster(sched_args=["--http", f"127.0.0.1:{port}", "--http-token", tok.name,
                            "--http-rate", "3"])
    h = Http(port)
    try:
        st, _, _ = h.get("/")
        check(st == 200, "the page itself needs no token")
        st, hd, doc = h.json("/api/v1/summary")
        check(st == 401 and "bearer" in hd.get("www-authenticate", "").lower(),
              "token required: no token -> 401 with WWW-Authenticate")
        st, _, _ = h.get("/metrics", headers={"Authorization": "Bearer wrong"})
        check(st == 401, "wrong token -> 401")
        st, _, _ = h.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        check(st == 200, "right token in the header -> 200")
        st, _, _ = h.get("/api/v1/nodes?access_token=s3cret-token")
        check(st == 200, "right token as access_token -> 200")
        time.sleep(2.1)  # refill: 3 per second, bursts of 6
        answers = [h.get("/healthz") for _ in range(12)]
        codes = [a[0] for a in answers]
        check(codes[:4] == [200] * 4 and 429 in codes, f"rate limit answers 429 ({codes})")
        # Every 429 of the burst carries Retry-After; a burst without one fails above. Break
        # this catches: Retry-After added for 503 only (scheduler/http/http.c send_reply).
        limited = [a[1] for a in answers if a[0] == 429]
        check(limited and all(hd.get("retry-after") == "1" for hd in limited),
              f"every 429 carries Retry-After: 1 ({[hd.get('retry-after') for hd in limited]})")
        time.sleep(1.2)
        check(h.get("/healthz")[0] == 200, "allowed again after a pause")
    finally:
        c.stop()
        os.unlink(tok.name)


def run_flags():
    exe = f"{BIN}/wslq-scheduler"
    r = subprocess.run([exe, "--http", "nonsense:x", "--state-dir", "/nonexistent"],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "http" in r.stderr, f"bad --http -> exit 2 ({r.stderr.strip()})")
    # --http off: the scheduler runs and nothing listens on the default port from it.
    port = free_port()
    c = Cluster(sched_args=["--http", "off"])
    try:
        check(c.cli("queue").returncode == 0, "--http off: the scheduler still runs")
        log = open(os.path.join(c.dir, "scheduler.log")).read()
        check("dashboard listening" not in log, "--http off: no dashboard started")
    finally:
        c.stop()
    # The config file's keys.
    port = free_port()
    d = tempfile.mkdtemp(prefix="wslq-http-")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("conf-token\n")
    conf = os.path.join(d, "wslq.conf")
    with open(conf, "w") as f:
        f.write(f"[scheduler]\nhttp = 127.0.0.1:{port}\nhttp_token_file = {tok}\nhttp_rate = 0\n")
    c = Cluster(sched_args=["--config", conf])
    try:
        h = Http(port)
        check(h.get("/metrics")[0] == 401, "config: http and http_token_file apply")
        st = h.get("/metrics", headers={"Authorization": "Bearer conf-token"})[0]
        check(st == 200, "config: the token from http_token_file works")
    finally:
        c.stop()
    # An explicitly asked-for address that is taken is fatal; the default one only warns.
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        d = tempfile.mkdtemp(prefix="wslq-http-")
        r = subprocess.run([exe, "--listen", f"tcp://127.0.0.1:{free_port()}", "--state-dir", d,
                            "--http", f"127.0.0.1:{port}"], capture_output=True, text=True,
                           timeout=10)
        check(r.returncode == 1 and "cannot serve http" in r.stderr,
              f"--http on a taken port -> exit 1 ({r.stderr.strip()[-100:]})")


if __name__ == "__main__":
    main()
