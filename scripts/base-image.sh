#!/usr/bin/env bash
# Build the offline base image splitbed-base:bookworm (Debian bookworm, python3 3.11,
# python3-venv, iproute2) with debootstrap + docker import: no Docker Hub needed.
#
#   sudo scripts/base-image.sh            # or: make base-image
#
# Settings (environment):
#   BASE_IMAGE     tag to build (default splitbed-base:bookworm); an existing image is kept
#   DEBIAN_MIRROR  mirror for debootstrap (default http://deb.debian.org/debian)
#   ARCH           debootstrap --arch (default: the host's, e.g. amd64)
#   FORCE          1: rebuild even when the image exists
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-splitbed-base:bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ARCH=${ARCH:-$(dpkg --print-architecture 2>/dev/null || echo amd64)}

die() { echo "base-image: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd, or see scripts/compose-e2e.sh)"
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base-image: $BASE_IMAGE already present"
  exit 0
fi
[[ $(id -u) == 0 ]] || die "debootstrap needs root"
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null || die "apt-get install debootstrap failed"
fi
work=$(mktemp -d /tmp/splitbed-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "base-image: debootstrap bookworm ($ARCH) into $work/rootfs"
debootstrap --variant=minbase --arch="$ARCH" --include=python3,python3-venv,iproute2,ca-certificates \
  bookworm "$work/rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
  || die "debootstrap failed: $(tail -n 5 "$work/debootstrap.log")"
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -c . | docker import -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
echo "base-image: built $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | numfmt --to=iec))"
