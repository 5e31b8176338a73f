"""Python side of the mlflow-client benchmark: the official MLflow client (mlflow==3.17.2).

Logs N metric points with MlflowClient.log_batch (which splits at 1000 metrics per request) and
uploads/downloads an M MiB artifact through the tracking server's artifact proxy, counting HTTP requests
(every requests.adapters.HTTPAdapter.send call), wall time and this process's CPU time. Prints one JSON line per repetition, in the
same shape as `cargo run --release -p mlflow-client --example bench`.

    MLFLOW_TRACKING_URI=http://127.0.0.1:55500 \
        .cache/venvs/mlflow/bin/python bench/mlflow_python_baseline.py [POINTS=10000] [MIB=64] [REPEAT=3]
"""

import json
import os
import shutil
import sys
import tempfile
import time

import requests.adapters

SENT = {"n": 0}
_send = requests.adapters.HTTPAdapter.send


def _counting_send(self, *args, **kwargs):
    SENT["n"] += 1
    return _send(self, *args, **kwargs)


requests.adapters.HTTPAdapter.send = _counting_send

from mlflow.entities import Metric  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


def measure(step):
    """Requests sent, wall milliseconds and CPU milliseconds of this process for step()."""
    before = SENT["n"]
    cpu_before = time.process_time()
    started = time.perf_counter()
    step()
    ms = (time.perf_counter() - started) * 1000.0
    cpu_ms = (time.process_time() - cpu_before) * 1000.0
    return SENT["n"] - before, round(ms, 1), round(cpu_ms, 1)


def main():
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    client = MlflowClient()
    exp = client.get_experiment_by_name("mlflow-client-bench")
    experiment_id = exp.experiment_id if exp else client.create_experiment("mlflow-client-bench")

    tmp = tempfile.mkdtemp(prefix="mlflow-python-bench-")
    blob = os.path.join(tmp, "blob.bin")
    with open(blob, "wb") as f:
        f.write(os.urandom(mib * 1024 * 1024))

    for rep in range(repeat):
        run = client.create_run(experiment_id, run_name=f"python-{rep}")
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(points)]

        metrics_requests, metrics_ms, metrics_cpu_ms = measure(lambda: client.log_batch(run_id, metrics=metrics))
        upload_requests, upload_ms, upload_cpu_ms = measure(
            lambda: client.log_artifact(run_id, blob, artifact_path="bench")
        )
        dst = os.path.join(tmp, f"down-{rep}")
        os.makedirs(dst)
        download_requests, download_ms, download_cpu_ms = measure(
            lambda: client.download_artifacts(run_id, "bench/blob.bin", dst)
        )
        if os.path.getsize(os.path.join(dst, "blob.bin")) != os.path.getsize(blob):
            raise SystemExit("downloaded size differs")
        print(
            json.dumps(
                {
                    "client": "python",
                    "rep": rep,
                    "points": points,
                    "metrics_requests": metrics_requests,
                    "metrics_ms": metrics_ms,
                    "metrics_cpu_ms": metrics_cpu_ms,
                    "artifact_mib": mib,
                    "upload_requests": upload_requests,
                    "upload_ms": upload_ms,
                    "upload_cpu_ms": upload_cpu_ms,
                    "download_requests": download_requests,
                    "download_ms": download_ms,
                    "download_cpu_ms": download_cpu_ms,
                }
            ),
            flush=True,
        )
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
