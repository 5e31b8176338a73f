#!/usr/bin/env bash
# Time per cerebros-bridge call with hyperfine: echo mode, and remote mode against a release cerebros-runner on
# loopback (SQLite in a temp dir, no MLflow). With STUB=/path/to/cerebros_bridge_stub.py set, Thunderline's
# Python stub is timed side by side under the same conditions (PYTHON, default /usr/bin/python3).
#
# Usage: bridge/bench/hyperfine.sh [OUT_DIR]   (needs `apt-get install -y hyperfine`)
# BRIDGE=… RUNNER=… use prebuilt binaries instead of building release ones; RUNS (300) sets the sample size.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/.cache/bench/bridge}"
target="${CARGO_TARGET_DIR:-$root/target}"
runs="${RUNS:-300}"
python="${PYTHON:-/usr/bin/python3}"
mkdir -p "$out"

for tool in hyperfine curl python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done
bridge="${BRIDGE:-$target/release/cerebros-bridge}"
runner="${RUNNER:-$target/release/cerebros-runner}"
if [[ -z "${BRIDGE:-}" || -z "${RUNNER:-}" ]]; then
    (cd "$root" && cargo build --release -p bridge --bin cerebros-bridge -p runner --bin cerebros-runner)
fi

data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
env -u MLFLOW_TRACKING_URI -u MINIO_ENDPOINT PORT="$port" RUNNER_BIND=127.0.0.1 RUNNER_DATA_DIR="$data" \
    RUST_LOG=warn "$runner" >"$out/runner.log" 2>&1 &
runner_pid=$!
trap 'kill "$runner_pid" 2>/dev/null || true; wait "$runner_pid" 2>/dev/null || true; rm -rf "$data"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 200); do
    curl -fsS "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done
curl -fsS "$url/healthz" >/dev/null

record='{"op":"record_trial","payload":{"trial_id":"t-01","run_id":"r-01","pulse_id":null,"candidate_id":null,"status":"succeeded","metrics":{"accuracy":0.91,"latency_ms":31.2},"parameters":{"lr":0.001,"head":"kgam"},"artifact_uri":null,"duration_ms":5400,"rank":1,"warnings":[],"spectral_norm":false,"mlflow_run_id":null}}'
start='{"op":"start_run","payload":{"run_id":"r-01","objective":"accuracy","timestamp":"2025-09-27T18:38:59Z"}}'
printf '%s' "$record" >"$out/record.json"

# The run must exist before the record; both are idempotent, so every timed call after the first is a retry.
CEREBROS_REMOTE_URL="$url" CEREBROS_BRIDGE_OP=start_run CEREBROS_BRIDGE_PAYLOAD="$start" "$bridge" >/dev/null
export CEREBROS_BRIDGE_OP=record_trial CEREBROS_BRIDGE_RUN_ID=r-01 CEREBROS_BRIDGE_TRIAL_ID=t-01
export CEREBROS_BRIDGE_PAYLOAD="$record" PYTHONUNBUFFERED=1

bridge_cmd="$bridge /app/priv/cerebros_bridge_stub.py --bridge-op record_trial"
stub_cmd="$python ${STUB:-} --bridge-op record_trial < $out/record.json"
run_mode() { # name, then extra env for the mode
    local name="$1"; shift
    echo "== $name: cerebros-bridge alone, no shell"
    env "$@" hyperfine -N --warmup 20 --runs "$runs" --export-json "$out/$name-bridge.json" "$bridge_cmd"
    if [[ -n "${STUB:-}" ]]; then
        echo "== $name: side by side with the Python stub (through a shell, which hyperfine subtracts)"
        env "$@" hyperfine --warmup 20 --runs "$runs" --export-json "$out/$name-side-by-side.json" \
            "$bridge_cmd < $out/record.json" "$stub_cmd"
    fi
}
run_mode echo -u CEREBROS_REMOTE_URL
run_mode remote CEREBROS_REMOTE_URL="$url"
