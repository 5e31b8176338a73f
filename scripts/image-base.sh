#!/usr/bin/env bash
# Make the local base image the runner image's runtime stage starts FROM, without pulling anything:
# a minimal Debian 12 rootfs (debootstrap --variant=minbase, plus ca-certificates) imported with
# `podman import`. The rootfs tarball is cached in .cache/downloads/ and the image in the project's
# podman storage (.cache/podman/), so a rerun does nothing.
# Prints the image reference on stdout.
set -euo pipefail
# shellcheck source=scripts/image-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/image-env.sh"

SUITE=${IMAGE_BASE_SUITE:-bookworm}
MIRROR=${IMAGE_BASE_MIRROR:-http://deb.debian.org/debian}
ARCH=$(dpkg --print-architecture)
BASE_REF=${IMAGE_BASE_REF:-localhost/thunderhelm-base:$SUITE-$ARCH}
TARBALL=$DOWNLOADS/debian-$SUITE-minbase-$ARCH.tar.gz

image_need_packages

if [[ ! -s $TARBALL ]]; then
  rootfs=$(mktemp -d "$IMAGE_CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "image-base: debootstrap $SUITE ($ARCH) from $MIRROR" >&2
  debootstrap --variant=minbase --arch="$ARCH" --include=ca-certificates \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$SUITE" "$rootfs" "$MIRROR" \
    >"$IMAGE_CACHE/debootstrap.log" 2>&1 || { tail -20 "$IMAGE_CACHE/debootstrap.log" >&2; exit 1; }
  # Slim it the way Debian's -slim images are: no package caches, docs, man pages or locales.
  rm -rf "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/lib/apt/lists/* \
    "${rootfs:?}"/usr/share/doc/* "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/info/* \
    "${rootfs:?}"/usr/share/locale/* "${rootfs:?}"/var/log/* "${rootfs:?}"/tmp/* "${rootfs:?}"/dev/*
  tar --numeric-owner --xattrs -C "$rootfs" -czf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
  echo "image-base: cached $TARBALL ($(du -h "$TARBALL" | cut -f1))" >&2
fi

if ! pm image exists "$BASE_REF"; then
  pm import --quiet --change 'CMD ["/bin/bash"]' "$TARBALL" "$BASE_REF" >/dev/null
  echo "image-base: imported $BASE_REF" >&2
fi
echo "$BASE_REF"
