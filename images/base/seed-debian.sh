#!/usr/bin/env bash
# Makes `debian:bookworm-slim` available to the local Docker engine without pulling it.
#
# Machines that can pull from a container registry never need this: the stand-in Dockerfile
# just pulls the image. Offline build machines build the same root filesystem from Debian's
# package archive (the mirror in this machine's apt sources) and import it under that name.
# The host's CA bundle is copied in, so containers trust the same HTTPS proxy the host does.
set -euo pipefail

image="${1:-debian:bookworm-slim}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "seed: $image is already present"; exit 0
fi
if timeout 60 docker pull "$image" >/dev/null 2>&1; then
  echo "seed: pulled $image"; exit 0
fi

mirror="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -E '^(URIs:|deb )' | grep -v security | grep -oE 'https?://[^ ]+' | head -n1 || true)"
[[ -n "$mirror" ]] || { echo "seed: no Debian mirror found in apt sources" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
echo "seed: building $image from Debian's archive with debootstrap"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
echo "seed: imported $image"
