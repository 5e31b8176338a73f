#!/usr/bin/env bash
# Property-based API test: schemathesis (PyPI) against the runner's checked-in runner/openapi.json.
#
# Installs schemathesis into .cache/venvs/schemathesis when missing, starts the cerebros-runner debug binary on a
# temporary SQLite database and a free loopback port with the embedded defaults (no MLflow, no S3), runs
# schemathesis with a bounded number of examples per operation, prints the summary, saves it to
# .cache/api-fuzz/summary.txt and exits non-zero on any failure. The runner is stopped on exit.
#
# Checks: no 5xx (not_a_server_error), responses match the documented schemas, status codes and content types.
# /train bodies are capped by scripts/api_fuzz_hooks.py (epochs, widths, depth, patience) so fuzzing trains small
# networks: the API itself accepts trainings of up to 10 000 epochs and 10 M parameters.
#
# Usage: test-api-fuzz.sh [extra schemathesis arguments]
#
# Environment:
#   CARGO_TARGET_DIR         where the debug binary is (default: target/)
#   RUNNER_BIN               the runner binary (default: $CARGO_TARGET_DIR/debug/cerebros-runner; built when missing)
#   API_FUZZ_MAX_EXAMPLES    test cases per operation and phase (default 100)
#   API_FUZZ_SEED            schemathesis seed (default 1, so runs are reproducible)
#   API_FUZZ_WORKERS         concurrent workers (default 1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
VENV="$CACHE/venvs/schemathesis"
SCHEMATHESIS_VERSION="4.32.5"
OUT_DIR="$CACHE/api-fuzz"
SUMMARY="$OUT_DIR/summary.txt"
SPEC="$ROOT/runner/openapi.json"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${RUNNER_BIN:-$TARGET/debug/cerebros-runner}"
MAX_EXAMPLES="${API_FUZZ_MAX_EXAMPLES:-100}"
SEED="${API_FUZZ_SEED:-1}"
WORKERS="${API_FUZZ_WORKERS:-1}"

log() { echo "test-api-fuzz: $*" >&2; }
# shellcheck source=SCRIPTDIR/lib/venv.sh
source "$ROOT/scripts/lib/venv.sh"

mkdir -p "$CACHE/venvs" "$OUT_DIR" "$CACHE/run"

install_schemathesis() {
  if [ -x "$VENV/bin/schemathesis" ] && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$SCHEMATHESIS_VERSION" ]; then
    return 0
  fi
  log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
  fresh_venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# Serialise concurrent installs into the shared venv.
exec 9>"$CACHE/run/schemathesis.lock"
flock 9
install_schemathesis
flock -u 9

if [ ! -x "$BIN" ]; then
  log "building the runner ($BIN is missing)"
  (cd "$ROOT" && cargo build -p runner --bin cerebros-runner --locked)
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/api-fuzz.XXXXXX")"
RUNNER_PID=""
cleanup() {
  if [ -n "$RUNNER_PID" ] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$RUNNER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
RUNNER_LOG="$OUT_DIR/runner.log"

log "starting $BIN on $URL (data in $WORK)"
# Only the embedded defaults: no MLflow, no S3, no token. Clear what a caller's shell may have exported.
env -u MLFLOW_TRACKING_URI -u MINIO_ENDPOINT -u MLFLOW_S3_ENDPOINT_URL -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_S3 \
  -u RUNNER_API_TOKEN -u OTEL_EXPORTER_OTLP_ENDPOINT -u RUNNER_DATABASE_URL \
  RUNNER_BIND=127.0.0.1 PORT="$PORT" RUNNER_DATA_DIR="$WORK/data" \
  RUNNER_TRAIN_CONCURRENCY=1 RUNNER_TRAIN_QUEUE=8 RUST_LOG="${RUST_LOG:-warn}" \
  "$BIN" </dev/null >"$RUNNER_LOG" 2>&1 &
RUNNER_PID=$!

for _ in $(seq 1 100); do
  if ! kill -0 "$RUNNER_PID" 2>/dev/null; then
    log "the runner exited during start; last lines of $RUNNER_LOG:"
    tail -n 30 "$RUNNER_LOG" >&2 || true
    exit 1
  fi
  if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/healthz', timeout=1)" "$URL" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

log "fuzzing $URL with $SPEC (max $MAX_EXAMPLES examples per operation, seed $SEED)"
set +e
# Run from the temporary directory: schemathesis keeps a crash cache (.schemathesis/) in its working directory.
cd "$WORK"
SCHEMATHESIS_HOOKS="api_fuzz_hooks" PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 \
  "$VENV/bin/schemathesis" --no-color run "$SPEC" \
    --url "$URL" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers "$WORKERS" \
    --request-timeout 60 \
    "$@" 2>&1 | tee "$WORK/schemathesis.out"
STATUS=${PIPESTATUS[0]}
set -e

# The summary: everything from schemathesis' "SUMMARY" banner on (the whole output when there is none).
if grep -q "SUMMARY" "$WORK/schemathesis.out"; then
  sed -n '/SUMMARY/,$p' "$WORK/schemathesis.out" >"$SUMMARY"
else
  cp "$WORK/schemathesis.out" "$SUMMARY"
fi
if ! kill -0 "$RUNNER_PID" 2>/dev/null; then
  log "the runner died during the run; last lines of $RUNNER_LOG:"
  tail -n 30 "$RUNNER_LOG" >&2 || true
  STATUS=1
fi
log "summary saved to $SUMMARY (runner log: $RUNNER_LOG)"
if [ "$STATUS" -ne 0 ]; then
  log "FAILED (schemathesis exit $STATUS)"
  exit "$STATUS"
fi
log "passed"
