# shellcheck shell=bash
# Sourced by the scripts that install Python tools under .cache/venvs. Needs a `log` function.
# fresh_venv VENV: (re)creates VENV, first installing python3-venv with apt-get when this Python has no venv or
# ensurepip (a fresh Debian 12); exits when that is impossible.
fresh_venv() {
  local venv="$1"
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1 \
    || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      log "python3 with venv support missing; installing python3-venv with apt-get"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      log "python3 venv support is missing and apt-get is unavailable"
      exit 1
    fi
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
}
