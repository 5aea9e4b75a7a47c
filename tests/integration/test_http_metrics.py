"""/metrics passes `promtool check metrics` (Debian package prometheus) with jobs, nodes and
GPUs present, and has every family the dashboard documents. Exit 77 without promtool."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from cluster import BIN, Cluster, check, finish, free_port, wait_for
from test_http import Http, start_fake_gpu_worker

FAMILIES = [
    "wslq_jobs", "wslq_job_wait_seconds", "wslq_jobs_submitted_total", "wslq_jobs_ended_total",
    "wslq_jobs_requeued_total", "wslq_nodes", "wslq_gpu_memory_used_bytes",
    "wslq_gpu_memory_total_bytes", "wslq_gpu_temperature_celsius", "wslq_scheduler_loop_seconds",
    "wslq_wire_protocol_errors_total", "wslq_jobs_preempted_total", "wslq_jobs_evicted_total",
    "wslq_jobs_suspensions_total", "wslq_jobs_suspended", "wslq_node_owner",
]


def check_monitoring(promtool, text):
    """deploy/monitoring: the scrape config is valid, and every Grafana query parses as PromQL
    and names only metrics /metrics has."""
    mon = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "monitoring")
    r = subprocess.run([promtool, "check", "config", os.path.join(mon, "prometheus.yml")],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"promtool check config prometheus.yml {r.stderr.strip()}")
    dash = json.load(open(os.path.join(mon, "grafana-dashboard.json")))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    have = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    missing = set()
    for e in exprs:
        for name in re.findall(r"\b(wslq_[a-z_]+)", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in have and base not in have:
                missing.add(name)
    check(exprs and not missing, f"Grafana queries use only exported metrics ({missing or 'ok'})")
    # promtool check rules parses each query (template variables made concrete).
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("groups:\n  - name: grafana\n    rules:\n")
        for i, e in enumerate(exprs):
            e = e.replace("$job", ".*").replace("$node", ".*")
            f.write(f"      - record: grafana:q{i}\n        expr: {json.dumps(e)}\n")
    r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True,
                       timeout=30)
    os.unlink(f.name)
    check(r.returncode == 0, f"every Grafana query is valid PromQL {r.stdout.strip()[-200:]}")


def main():
    promtool = shutil.which("promtool")
    if promtool is None:
        print("SKIP: promtool not found (apt-get install prometheus)", flush=True)
        sys.exit(77)
    port = free_port()
    c = Cluster(sched_args=["--http", f"127.0.0.1:{port}", "--http-rate", "0"])
    h = Http(port, c.token())
    try:
        start_fake_gpu_worker(c, "pc1")
        c.start_worker("pc2", 2)
        for _ in range(3):
            c.wait_state(c.submit("--", "true"), "COMPLETED")
        c.submit("--", "false")
        subprocess.run([f"{BIN}/wslq-frame-sender", c.addr], capture_output=True, timeout=30,
                       env=c.env(WSLQ_CREDENTIALS=c.creds))
        wait_for(lambda: b"wslq_jobs_ended_total{state=\"failed\"} 1" in h.get("/metrics")[2], 10,
                 "the failed job to be counted")
        st, hd, body = h.get("/metrics")
        check(st == 200 and hd.get("content-type", "").startswith("text/plain; version=0.0.4"),
              "/metrics is Prometheus text 0.0.4")
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
        check(r.returncode == 0, "promtool check metrics passes "
              f"{(r.stdout + r.stderr).decode().strip()}")
        text = body.decode()
        for f in FAMILIES:
            check(f"# TYPE {f} " in text, f"family {f} present")
        check('wslq_jobs_ended_total{state="completed"} 3' in text, "completions counted")
        check("wslq_jobs_submitted_total 4" in text, "submissions counted")
        check('wslq_node_owner{node="pc2",policy="ignore",state="unknown"} 1' in text,
              "the owner policy and state of pc2")
        check('wslq_job_wait_seconds_bucket{le="+Inf"} 4' in text, "wait histogram count")
        check('wslq_nodes{state="idle"}' in text, "nodes by state")
        check_monitoring(promtool, text)
    finally:
        c.stop()
    finish()


if __name__ == "__main__":
    main()
