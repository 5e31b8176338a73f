#!/usr/bin/env bash
# Stop the SeaweedFS server started by scripts/start-s3.sh on S3_PORT (default 58333). Data stays in .cache/s3/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.cache/run"
PORT="${S3_PORT:-58333}"
# shellcheck source=SCRIPTDIR/lib/stop-server.sh
source "$ROOT/scripts/lib/stop-server.sh"

stop_recorded_server "stop-s3 (port $PORT)" "$RUN_DIR/s3-$PORT.pid" || exit 0
if [ -f "$RUN_DIR/s3.env" ] && grep -q "^export MINIO_ENDPOINT=http://127.0.0.1:$PORT\$" "$RUN_DIR/s3.env"; then
  rm -f "$RUN_DIR/s3.env"
fi
