#!/usr/bin/env bash
# Stop the MLflow server started by scripts/start-mlflow.sh on MLFLOW_PORT (default 55500); removes its env file
# (MLFLOW_ENV_FILE, default .cache/run/mlflow.env) when it names that port.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.cache/run"
PORT="${MLFLOW_PORT:-55500}"
PIDFILE="$RUN_DIR/mlflow-$PORT.pid"

if [ ! -f "$PIDFILE" ]; then
  echo "stop-mlflow: no server recorded for port $PORT" >&2
  exit 0
fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
  kill -TERM -- "-$PID" 2>/dev/null || kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 75); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$PID" 2>/dev/null; then
    kill -KILL -- "-$PID" 2>/dev/null || kill -KILL "$PID" 2>/dev/null || true
  fi
fi
rm -f "$PIDFILE"
ENVFILE="${MLFLOW_ENV_FILE:-$RUN_DIR/mlflow.env}"
if [ -f "$ENVFILE" ] && grep -q ":$PORT\$" "$ENVFILE"; then
  rm -f "$ENVFILE"
fi
echo "stop-mlflow: stopped pid $PID (port $PORT)" >&2
