#!/usr/bin/env bash
# Stop the MLflow server started by scripts/start-mlflow.sh on MLFLOW_PORT (default 55500); removes its env file
# (MLFLOW_ENV_FILE, default .cache/run/mlflow.env) when it names that port.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.cache/run"
PORT="${MLFLOW_PORT:-55500}"
# shellcheck source=SCRIPTDIR/lib/stop-server.sh
source "$ROOT/scripts/lib/stop-server.sh"

stop_recorded_server "stop-mlflow (port $PORT)" "$RUN_DIR/mlflow-$PORT.pid" || exit 0
ENVFILE="${MLFLOW_ENV_FILE:-$RUN_DIR/mlflow.env}"
if [ -f "$ENVFILE" ] && grep -q ":$PORT\$" "$ENVFILE"; then
  rm -f "$ENVFILE"
fi
