#!/usr/bin/env python3
"""A TensorFlow multi-worker rank without TensorFlow: reads TF_CONFIG the way
tf.distribute.cluster_resolver.TFConfigClusterResolver does, listens on its own address,
connects to every peer the cluster names and checks each one answers with the index the list
gives it. Writes what it saw to a file tf.<index>.json in OUTDIR. Usage: tf_worker.py OUTDIR"""
import hashlib
import json
import os
import socket
import sys
import threading
import time

out = sys.argv[1]
DEADLINE = time.monotonic() + 90


def load_tf_config():
    # TFConfigClusterResolver: json.loads(os.environ.get('TF_CONFIG', '{}')); the cluster is
    # ClusterSpec(tf_config['cluster']); task type and index from tf_config['task']; the
    # address of a task is cluster[type][index]; rpc_layer (optional) defaults to grpc.
    raw = os.environ.get("TF_CONFIG", "{}")
    cfg = json.loads(raw) if raw else {}
    cluster = cfg.get("cluster", {})
    if not isinstance(cluster, dict) or not cluster:
        raise SystemExit(f"TF_CONFIG has no cluster: {raw!r}")
    for job, tasks in cluster.items():
        # ClusterSpec takes a list (task i = item i) or a dict {index: address}
        if isinstance(tasks, dict):
            tasks = [tasks[k] for k in sorted(tasks, key=int)]
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise SystemExit(f"job {job!r}: tasks are not a list of addresses")
        cluster[job] = tasks
    task = cfg.get("task", {})
    task_type = task.get("type")
    task_id = int(task.get("index"))
    if task_type not in cluster:
        raise SystemExit(f"task type {task_type!r} is not a job of the cluster")
    if not 0 <= task_id < len(cluster[task_type]):
        raise SystemExit(f"task index {task_id} is outside {task_type} 0..{len(cluster[task_type])-1}")
    rpc_layer = cfg.get("rpc_layer", "grpc")
    return cfg, cluster, task_type, task_id, rpc_layer


def split_addr(a):
    host, _, port = a.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


cfg, cluster, task_type, index, rpc_layer = load_tf_config()
workers = cluster[task_type]
master = f"{rpc_layer}://{workers[index]}"
digest = hashlib.sha256(json.dumps(workers).encode()).hexdigest()[:16]
host, port = split_addr(workers[index])
srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(len(workers))
srv.settimeout(1)

heard = {}  # index a peer said it has -> its list digest


def serve():
    while len(heard) < len(workers) - 1 and time.monotonic() < DEADLINE:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(10)
            line = conn.makefile().readline().split()
            if len(line) == 2:
                heard[int(line[0])] = line[1]
            conn.sendall(f"{index} {digest}\n".encode())


t = threading.Thread(target=serve)
t.start()
answered = {}  # peer index in our list -> (index it says it has, its digest)
for j, addr in enumerate(workers):
    if j == index:
        continue
    while time.monotonic() < DEADLINE:
        try:
            with socket.create_connection(split_addr(addr), timeout=5) as s:
                s.sendall(f"{index} {digest}\n".encode())
                line = s.makefile().readline().split()
                answered[j] = (int(line[0]), line[1])
                break
        except (OSError, ValueError, IndexError):
            time.sleep(0.2)
t.join()
srv.close()
result = {"TF_CONFIG": os.environ.get("TF_CONFIG"), "index": index, "workers": workers,
          "master": master, "RANK": os.environ.get("RANK"),
          "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
          "TF_FORCE_GPU_ALLOW_GROWTH": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH"),
          "answered": {str(k): list(v) for k, v in answered.items()},
          "heard": {str(k): v for k, v in heard.items()}}
with open(os.path.join(out, f"tf.{index}.json"), "w") as f:
    json.dump(result, f)
ok = all(answered.get(j) == (j, digest) for j in range(len(workers)) if j != index) and \
    sorted(heard) == [j for j in range(len(workers)) if j != index] and \
    set(heard.values()) <= {digest}
print(f"tf worker {index}/{len(workers)} at {workers[index]}: {'agreed' if ok else 'DISAGREED'}",
      flush=True)
sys.exit(0 if ok else 1)
