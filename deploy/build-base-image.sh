#!/usr/bin/env bash
# Make a local base image with Python 3 for the Dockerfile when no registry can be pulled from:
# debootstrap a minimal Debian bookworm with python3 and python3-venv, then `docker import` it.
#
#   deploy/build-base-image.sh [TAG]          # default TAG: orch-base:bookworm
#   docker build --network host --build-arg BASE=orch-base:bookworm -t orchlive .
#
# Needs root, debootstrap and a Docker engine. The rootfs is built in a temp dir and removed.
set -euo pipefail
tag="${1:-orch-base:bookworm}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$root" \
  http://deb.debian.org/debian
# Trust the same extra CAs as this host (a TLS-intercepting proxy's, as on build machines
# whose only way to PyPI goes through one), so `pip install` inside the build works.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$tag"
echo "imported $tag"
