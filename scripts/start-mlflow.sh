#!/usr/bin/env bash
# Start a shared MLflow tracking server (mlflow==3.17.2) on loopback for the test suite and the demo.
#
# Idempotent: installs MLflow into .cache/venvs/mlflow when missing, starts the server unless one started by this
# script already answers on the port, waits until /health answers, and writes .cache/run/mlflow.env.
#
# Usage: start-mlflow.sh [--install-only]   (--install-only: install the venv and exit)
#
# Environment:
#   MLFLOW_PORT                    port to listen on (default 55500)
#   MLFLOW_HOST                    address to bind (default 127.0.0.1)
#   MLFLOW_WORKERS                 uvicorn workers (default 2)
#   MLFLOW_BACKEND_STORE_URI       backend store (default: SQLite under .cache/mlflow/<port>/)
#   MLFLOW_ARTIFACTS_DESTINATION   e.g. s3://bucket/prefix (default: a local directory under .cache/mlflow/<port>/);
#                                  AWS_* and MLFLOW_S3_ENDPOINT_URL are passed through to the server
#   MLFLOW_SERVER_ALLOWED_HOSTS    Host headers accepted by MLflow's security middleware
#                                  (default: localhost, 127.0.0.1 and [::1] on any port)
#   MLFLOW_RESET=1                 wipe the default SQLite store and artifact directory before starting
#   MLFLOW_START_TIMEOUT           seconds to wait for /health (default 180)
#   MLFLOW_ENV_FILE                where to write the env file (default .cache/run/mlflow.env)
#   MLFLOW_ENV_URI_VAR             the variable the env file exports the URI as (default MLFLOW_TRACKING_URI). A second
#                                  server must use another name: the tests read every .cache/run/*.env file
#   MLFLOW_ENV_DEST_VAR            when set, the env file also exports the artifact destination under this name
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
VENV="$CACHE/venvs/mlflow"
RUN_DIR="$CACHE/run"
MLFLOW_VERSION="3.17.2"
PORT="${MLFLOW_PORT:-55500}"
HOST="${MLFLOW_HOST:-127.0.0.1}"
WORKERS="${MLFLOW_WORKERS:-2}"
STATE="$CACHE/mlflow/$PORT"
PIDFILE="$RUN_DIR/mlflow-$PORT.pid"
LOG="$STATE/server.log"
ENVFILE="${MLFLOW_ENV_FILE:-$RUN_DIR/mlflow.env}"
TIMEOUT="${MLFLOW_START_TIMEOUT:-180}"
URI="http://127.0.0.1:$PORT"
[ "$HOST" = "127.0.0.1" ] || [ "$HOST" = "0.0.0.0" ] || URI="http://$HOST:$PORT"

log() { echo "start-mlflow: $*" >&2; }
# shellcheck source=SCRIPTDIR/lib/venv.sh
source "$ROOT/scripts/lib/venv.sh"
# shellcheck source=SCRIPTDIR/lib/stop-server.sh
source "$ROOT/scripts/lib/stop-server.sh"

mkdir -p "$RUN_DIR" "$CACHE/venvs" "$CACHE/mlflow"

# Serialise concurrent invocations (parallel test binaries may all call this script).
exec 9>"$RUN_DIR/mlflow.lock"
flock 9

health() {
  python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/health", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

write_env() {
  printf 'export %s=%s\n' "${MLFLOW_ENV_URI_VAR:-MLFLOW_TRACKING_URI}" "$URI" >"$ENVFILE.tmp"
  if [ -n "${MLFLOW_ENV_DEST_VAR:-}" ]; then
    printf 'export %s=%s\n' "$MLFLOW_ENV_DEST_VAR" "${MLFLOW_ARTIFACTS_DESTINATION:-$STATE/artifacts}" >>"$ENVFILE.tmp"
  fi
  mv "$ENVFILE.tmp" "$ENVFILE"
  log "ready at $URI (env in $ENVFILE)"
}

install_mlflow() {
  if [ -x "$VENV/bin/mlflow" ] && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null)" = "$MLFLOW_VERSION" ]; then
    return 0
  fi
  log "installing mlflow==$MLFLOW_VERSION into $VENV (about a minute)"
  fresh_venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "mlflow==$MLFLOW_VERSION" boto3 psycopg2-binary
}

if [ "${1:-}" = "--install-only" ]; then
  install_mlflow
  log "mlflow $MLFLOW_VERSION installed in $VENV"
  exit 0
fi

if [ -f "$PIDFILE" ]; then
  PID="$(cat "$PIDFILE")"
  if kill -0 "$PID" 2>/dev/null && health "$URI"; then
    log "already running (pid $PID)"
    write_env
    exit 0
  fi
  if kill -0 "$PID" 2>/dev/null; then
    log "pid $PID is alive but $URI/health does not answer; stopping it"
  fi
  stop_recorded_server "start-mlflow" "$PIDFILE"
fi

if health "$URI"; then
  log "something not started by this script already answers on $URI; set MLFLOW_PORT to another port"
  exit 1
fi

install_mlflow

if [ "${MLFLOW_RESET:-0}" = "1" ]; then
  rm -rf "$STATE"
fi
mkdir -p "$STATE/tmp" "$STATE/artifacts"

BACKEND="${MLFLOW_BACKEND_STORE_URI:-sqlite:///$STATE/mlflow.db}"
DEST="${MLFLOW_ARTIFACTS_DESTINATION:-$STATE/artifacts}"
ALLOWED="${MLFLOW_SERVER_ALLOWED_HOSTS:-localhost:*,127.0.0.1:*,[::1]:*}"

log "starting mlflow on $HOST:$PORT (backend $BACKEND, artifacts $DEST)"
# setsid gives the server its own process group, so stop-mlflow.sh can stop the workers with it.
MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false TMPDIR="$STATE/tmp" \
  setsid "$VENV/bin/mlflow" server \
    --host "$HOST" --port "$PORT" \
    --backend-store-uri "$BACKEND" \
    --serve-artifacts --artifacts-destination "$DEST" \
    --allowed-hosts "$ALLOWED" \
    --workers "$WORKERS" \
    </dev/null >"$LOG" 2>&1 9>&- &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 $((TIMEOUT * 2))); do
  if ! kill -0 "$PID" 2>/dev/null; then
    log "mlflow exited during start; last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if health "$URI"; then
    log "started (pid $PID)"
    write_env
    exit 0
  fi
  sleep 0.5
done
log "mlflow did not answer $URI/health within ${TIMEOUT}s; last lines of $LOG:"
tail -n 30 "$LOG" >&2 || true
exit 1
