#!/usr/bin/env bash
# Stop the SeaweedFS server started by scripts/start-s3.sh on S3_PORT (default 58333). Data stays in .cache/s3/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.cache/run"
PORT="${S3_PORT:-58333}"
PIDFILE="$RUN_DIR/s3-$PORT.pid"

if [ ! -f "$PIDFILE" ]; then
  echo "stop-s3: no server recorded for port $PORT" >&2
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
if [ -f "$RUN_DIR/s3.env" ] && grep -q "^export MINIO_ENDPOINT=http://127.0.0.1:$PORT\$" "$RUN_DIR/s3.env"; then
  rm -f "$RUN_DIR/s3.env"
fi
echo "stop-s3: stopped pid $PID (port $PORT)" >&2
