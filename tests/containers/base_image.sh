#!/usr/bin/env bash
# Makes the Dockerfile's base image, debian:bookworm-slim, when the engine
# does not have it. No image registry is reachable here, so it is built
# the way Debian's own images start: debootstrap --variant=minbase, then
# `docker import`. The root filesystem is kept as a tarball in CACHE_DIR,
# so a later run (or a fresh engine) only imports it.
#
#   base_image.sh CACHE_DIR
set -euo pipefail
cache=$1
docker=${DOCKER:-/usr/bin/docker}
image=debian:bookworm-slim
if "$docker" image inspect "$image" >/dev/null 2>&1; then exit 0; fi
mkdir -p "$cache"
tarball=$cache/debian-bookworm-minbase.tar
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null ||
    { echo "base_image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "base_image: debootstrap --variant=minbase bookworm (a few minutes, once)" >&2
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian \
    >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  # What the official image adds: updates and security sources, and no
  # package caches kept in image layers.
  cat >"$root/etc/apt/sources.list" <<'LIST'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
echo "base_image: importing $image from $tarball" >&2
"$docker" import -c 'CMD ["bash"]' "$tarball" "$image" >/dev/null
