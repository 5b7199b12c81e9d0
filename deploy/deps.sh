#!/usr/bin/env bash
# Installs the Debian packages Lanyard builds and tests with, if missing.
# Quick when everything is there (one dpkg-query per package, no network).
# Other systems: install the equivalents of this list yourself.
set -euo pipefail
packages=(build-essential cmake pkg-config libuv1-dev libyaml-dev
  libprotobuf-c-dev protobuf-c-compiler libjansson-dev libcmocka-dev
  openssl curl python3 autoconf automake libtool dpkg-dev iproute2 iptables
  bc nginx-light stunnel4 tcpdump clang-14 libclang-rt-14-dev)
# promtool (tests check /metrics with it) comes with Debian's prometheus.
command -v promtool >/dev/null || packages+=(prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to install packages (or install them yourself)" >&2
  exit 1
fi
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
