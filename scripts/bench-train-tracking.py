#!/usr/bin/env python3
"""Tracking overhead of a sync /train (docs/benchmarks/training.md, "MLflow and S3 overhead").

Starts the runner binary once per mode, sends N sequential sync /train requests for the digits network
(64 -> 128 -> 64 -> 10 relu, Adam lr 1e-3, batch 32, 20 epochs) and, after each reply, polls /metrics until the
outbox is empty. Reports per mode the median (and min / max) of:
  reply     time from sending the request to having the reply
  delivered time from sending the request to the outbox being empty (everything in MLflow and S3)
  train     the trial's own train_seconds metric
  requests  MLflow requests the trial caused (mlflow_client_requests_total delta)

Modes: "off" (no MLflow, no S3: artifacts in the local directory) and "mlflow+s3" (MLflow and S3 from the env files
written by scripts/start-mlflow.sh and scripts/start-s3.sh). A first, unmeasured trial creates the experiment and
the parent run in each mode.

Usage: scripts/bench-train-tracking.py [--bin target/release/cerebros-runner] [-n 20] [--mlflow-env FILE]
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"export (\w+)=(.*)", line.strip())
            if m:
                env[m.group(1)] = m.group(2).strip('"')
    return env


def http(method, url, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def metric(base, name):
    text = http("GET", f"{base}/metrics").decode()
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def train_body(trial_id, digits):
    return {
        "trial_id": trial_id, "run_id": "bench", "dataset_id": digits,
        "params": {"levels": 2, "units_per_level": 1, "neurons_per_unit": [128, 64], "activation": "relu",
                   "predecessor_affinity": 1.0, "p_lateral_connection": 0, "dropout": 0, "normalization": False,
                   "lr": 0.001, "optimizer": "adam", "batch_size": 32, "epochs": 20, "patience": None, "seed": 0},
    }


def run_mode(binary, mode, n, extra_env, data_dir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    work = tempfile.mkdtemp(prefix=f"bench-train-{mode.replace('+', '-')}-")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "MINIO_", "AWS_", "THUNDERHELM_"))}
    env.update({"PORT": str(port), "RUNNER_BIND": "127.0.0.1", "RUNNER_DATA_DIR": work,
                "RUNNER_DATASET_DIRS": data_dir, "LOG_LEVEL": "warn", "RUNNER_TRAIN_CONCURRENCY": "1"})
    env.update(extra_env)
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                http("GET", f"{base}/healthz", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit(f"{mode}: the runner did not start")
                time.sleep(0.05)
        digits = f"file://{data_dir}/digits.csv"
        rows = []
        for i in range(n + 1):
            before = metric(base, "mlflow_client_requests_total")
            t0 = time.perf_counter()
            reply = json.loads(http("POST", f"{base}/train", train_body(f"{mode}-{uuid.uuid4().hex}", digits)))
            t_reply = time.perf_counter() - t0
            while metric(base, "outbox_backlog") > 0:
                if time.perf_counter() - t0 > 120:
                    raise SystemExit(f"{mode}: the outbox did not drain in 120 s")
                time.sleep(0.005)
            t_done = time.perf_counter() - t0
            requests = metric(base, "mlflow_client_requests_total") - before
            assert reply["status"] == "succeeded", reply
            if i > 0:
                rows.append((t_reply, t_done, reply["metrics"]["train_seconds"], requests, reply))
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def summary(values):
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                                  "release", "cerebros-runner"))
    ap.add_argument("-n", type=int, default=20, help="measured trials per mode (default 20)")
    ap.add_argument("--mlflow-env", default=os.path.join(ROOT, ".cache/run/mlflow.env"))
    ap.add_argument("--s3-env", default=os.path.join(ROOT, ".cache/run/s3.env"))
    ap.add_argument("--data", default=os.path.join(ROOT, "tests/data"))
    ap.add_argument("--modes", default="off,mlflow+s3")
    args = ap.parse_args()
    tracked = {**read_env(args.s3_env), **read_env(args.mlflow_env),
               "MLFLOW_EXPERIMENT_NAME": f"bench-train-{uuid.uuid4().hex[:8]}"}
    print(f"# sync /train on digits, {args.n} trials per mode, binary {args.bin}")
    print(f"# MLflow {tracked.get('MLFLOW_TRACKING_URI')}, S3 {tracked.get('MINIO_ENDPOINT')}, load {os.getloadavg()}")
    print("| mode | reply s, median (min–max) | delivered s, median (min–max) | train_seconds, median | "
          "MLflow requests per trial | pending in the reply |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        rows = run_mode(args.bin, mode, args.n, tracked if mode == "mlflow+s3" else {}, args.data)
        pending = {}
        for r in rows:
            key = ",".join(r[4].get("pending") or []) or "none"
            pending[key] = pending.get(key, 0) + 1
        print(f"| {mode} | {summary([r[0] for r in rows])} | {summary([r[1] for r in rows])} | "
              f"{statistics.median(r[2] for r in rows):.3f} | {statistics.median(r[3] for r in rows):.0f} | "
              f"{', '.join(f'{k}: {v}' for k, v in sorted(pending.items()))} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
