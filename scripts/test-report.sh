#!/usr/bin/env bash
# End-to-end check of the run report (GET /runs/{id}/report): starts a cerebros-runner on its embedded defaults
# (temp data dir, loopback, free port), seeds a run over HTTP, checks the page is self-contained, renders it in
# headless Chromium and checks the screenshot shows the plots. Keeps the screenshot at .cache/report/report.png.
#
# Installs Debian's chromium when it is missing (needs root and apt). Uses CEREBROS_RUNNER_BIN, else
# ${CARGO_TARGET_DIR:-target}/debug/cerebros-runner, building it when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

log() { printf 'test-report: %s\n' "$*" >&2; }

CHROMIUM="${CHROMIUM:-}"
if [ -z "$CHROMIUM" ]; then
  CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
fi
if [ -z "$CHROMIUM" ]; then
  log "installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  CHROMIUM="$(command -v chromium)"
fi
log "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNNER_BIN="${CEREBROS_RUNNER_BIN:-$TARGET_DIR/debug/cerebros-runner}"
if [ ! -x "$RUNNER_BIN" ]; then
  log "building cerebros-runner"
  cargo build -p runner --bin cerebros-runner
fi

WORK="$(mktemp -d)"
RUNNER_PID=""
cleanup() {
  if [ -n "$RUNNER_PID" ] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill "$RUNNER_PID" 2>/dev/null || true
    wait "$RUNNER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
URL="http://127.0.0.1:$PORT"
log "starting $RUNNER_BIN on $URL"
# The embedded defaults only: no MLflow, S3 or token from a caller's environment (scripts/test.sh exports them).
env -u MLFLOW_TRACKING_URI -u MINIO_ENDPOINT -u MLFLOW_S3_ENDPOINT_URL -u AWS_ENDPOINT_URL -u RUNNER_API_TOKEN \
  -u RUNNER_DATABASE_URL \
  PORT="$PORT" RUNNER_BIND=127.0.0.1 RUNNER_DATA_DIR="$WORK/data" RUST_LOG=warn \
  "$RUNNER_BIN" >"$WORK/runner.log" 2>&1 &
RUNNER_PID=$!

for _ in $(seq 1 100); do
  if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$URL/healthz" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$RUNNER_PID" 2>/dev/null; then
    log "the runner exited:"; cat "$WORK/runner.log" >&2; exit 1
  fi
  sleep 0.2
done
if ! python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$URL/healthz" 2>/dev/null; then
  log "the runner did not become healthy:"; cat "$WORK/runner.log" >&2; exit 1
fi

mkdir -p .cache/report
if ! python3 scripts/report_screenshot.py --url "$URL" --out .cache/report/report.png --chromium "$CHROMIUM"; then
  log "runner log:"; tail -n 50 "$WORK/runner.log" >&2
  exit 1
fi
log "report check passed"
