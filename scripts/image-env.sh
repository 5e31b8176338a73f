#!/usr/bin/env bash
# Sourced by the image scripts: a project-local podman setup that works on this kind of machine
# (no Docker engine, cgroups v1 hybrid, no CAP_SYS_RESOURCE; see docs/image.md).
# Defines ROOT, IMAGE_CACHE, the podman config files, and the function `pm` (podman with that config).

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
IMAGE_CACHE=${IMAGE_CACHE:-$ROOT/.cache/image}
DOWNLOADS=${DOWNLOADS:-$ROOT/.cache/downloads}
PODMAN_DIR=${PODMAN_DIR:-$ROOT/.cache/podman}
# Podman's run state and temp files hold unix sockets (slirp4netns API, conmon), whose paths must stay
# under 108 bytes: keep them in a short directory outside the checkout, one per checkout.
PODMAN_RUN=${PODMAN_RUN:-$([[ -d /run ]] && echo /run || echo /tmp)/thp-$(printf %s "$ROOT" | sha256sum | cut -c1-8)}
mkdir -p "$IMAGE_CACHE" "$DOWNLOADS" "$PODMAN_DIR/root" "$PODMAN_RUN/run" "$PODMAN_RUN/tmp"

# crun fails here (setrlimit EPERM, "cgroups in hybrid mode not supported"): use runc, cgroupfs, and
# explicit ulimits: podman's defaults (nofile 1048576) are above this machine's hard limits, and raising
# a hard limit needs CAP_SYS_RESOURCE. nofile follows this shell's hard limit (capped at 65536); nproc
# is a fixed 4096 (values above ~20000 were refused here even below the shell's hard limit).
nofile=$(ulimit -Hn)
[[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
nproc=4096
cat > "$PODMAN_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
tmp_dir = "$PODMAN_RUN/tmp"
CONF
cat > "$PODMAN_DIR/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/root"
runroot = "$PODMAN_RUN/run"
CONF
# No registry is reachable: never search one for a short name.
cat > "$PODMAN_DIR/registries.conf" <<CONF
unqualified-search-registries = []
short-name-mode = "disabled"
CONF
export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
export CONTAINERS_REGISTRIES_CONF=$PODMAN_DIR/registries.conf

# Podman with the settings above.
pm() { podman "$@"; }

# Install the Debian packages the image scripts need, if any is missing.
image_need_packages() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  command -v slirp4netns >/dev/null || missing+=(slirp4netns)
  command -v fuse-overlayfs >/dev/null || missing+=(fuse-overlayfs)
  [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
  if ((${#missing[@]})); then
    echo "image: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" uidmap >/dev/null
  fi
}
