#!/usr/bin/env bash
# The whole test suite: starts the real services the tests need (PostgreSQL, MLflow, an S3 server), runs the
# Rust tests of every crate, then the chart and image checks. Services are installed and cached under .cache/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
mkdir -p .cache/run
MLFLOW_S3_PORT="${MLFLOW_S3_PORT:-55501}"
MLFLOW_S3_ENV="$ROOT/.cache/run/mlflow-s3.env"

step() { printf '\n==> %s\n' "$*" >&2; }
stop_services() {
  MLFLOW_PORT="$MLFLOW_S3_PORT" MLFLOW_ENV_FILE="$MLFLOW_S3_ENV" scripts/stop-mlflow.sh >/dev/null 2>&1 || true
  for svc in mlflow s3 postgres; do
    [ -x "scripts/stop-$svc.sh" ] && "scripts/stop-$svc.sh" >/dev/null 2>&1 || true
  done
}
trap stop_services EXIT

for svc in postgres s3 mlflow; do
  if [ -x "scripts/start-$svc.sh" ]; then
    step "starting $svc"
    "scripts/start-$svc.sh"
    # shellcheck disable=SC1090
    source ".cache/run/$svc.env"
  fi
done

# A second MLflow stores its artifacts in the S3 server's `mlflow` bucket, so a test can find a trial's files there
# (the first keeps a local store). Its env file exports THUNDERHELM_MLFLOW_S3_URI, not MLFLOW_TRACKING_URI.
step "starting mlflow with S3 artifacts"
MLFLOW_PORT="$MLFLOW_S3_PORT" MLFLOW_WORKERS=1 MLFLOW_ARTIFACTS_DESTINATION=s3://mlflow/artifacts \
  MLFLOW_ENV_FILE="$MLFLOW_S3_ENV" MLFLOW_ENV_URI_VAR=THUNDERHELM_MLFLOW_S3_URI \
  MLFLOW_ENV_DEST_VAR=THUNDERHELM_MLFLOW_S3_DESTINATION scripts/start-mlflow.sh

step "building binaries"
cargo build --workspace --bins --locked

step "rust tests"
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"

# The image test packs the debug binaries built above rather than compiling the workspace a second time.
export TEST_IMAGE_PROFILE="${TEST_IMAGE_PROFILE:-debug}" TEST_IMAGE_NO_CARGO="${TEST_IMAGE_NO_CARGO:-1}"
for extra in test-chart test-image test-api-fuzz test-report; do
  if [ -x "scripts/$extra.sh" ]; then
    step "$extra"
    "scripts/$extra.sh"
  fi
done

step "all tests passed"
