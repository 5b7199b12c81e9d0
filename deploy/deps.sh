#!/usr/bin/env bash
# Installs the Debian 12 packages Lanyard needs, if missing, for one use:
#
#   deploy/deps.sh [--print] build|demo|test
#
#   build  to build the binary (and the optimized wolfSSL it links)
#   demo   build, plus what the local mesh runs (iproute2, iptables,
#          nginx-light, curl)
#   test   demo, plus the test suites' peers and tools (stunnel, tcpdump,
#          clang for the fuzzers, promtool from prometheus, Docker's engine
#          and docker-compose with debootstrap for the container suites,
#          ...)
#   --print  prints the profile's packages, one per line, and exits
#
# Quick when everything is there (one dpkg-query per package, no network).
# Says what it installs before it does, and never starts a host service:
# packages such as nginx-light and prometheus start daemons on :80 and
# :9090 when installed on a systemd host, so the install runs under a
# policy-rc.d that forbids starting services. Other systems: install the
# equivalents of these lists yourself.
set -euo pipefail
print=0
if [ "${1:-}" = --print ]; then print=1; shift; fi
profile=${1:-test}

build=(build-essential cmake pkg-config libuv1-dev libyaml-dev
  libprotobuf-c-dev protobuf-c-compiler libjansson-dev openssl
  autoconf automake libtool dpkg-dev)
demo=(iproute2 iptables nginx-light curl)
# python3-yaml and python3-jsonpatch: inject.sh reads manifests and applies
# the webhook's patches with implementations that share no code with ours.
# docker.io, docker-compose, debootstrap: the container suites.
test=(libcmocka-dev python3 bc stunnel4 tcpdump clang-14 libclang-rt-14-dev
  python3-yaml python3-jsonpatch docker.io docker-compose debootstrap faketime
  podman catatonit)
case "$profile" in
build) packages=("${build[@]}") ;;
demo) packages=("${build[@]}" "${demo[@]}") ;;
test)
  packages=("${build[@]}" "${demo[@]}" "${test[@]}")
  # promtool (tests check /metrics and the alert rules with it) comes with
  # Debian's prometheus.
  command -v promtool >/dev/null || packages+=(prometheus)
  ;;
*) echo "deps.sh: unknown profile '$profile' (build, demo, test)" >&2; exit 2 ;;
esac
if [ "$print" = 1 ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing for '$profile': ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: need root to install packages (or install them yourself)" >&2
  exit 1
fi

# No service starts during the install (invoke-rc.d and deb-systemd-invoke
# ask policy-rc.d; 101 means "not allowed"). An existing policy is kept.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# deploy/deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  own_policy=1
fi
restore() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap restore EXIT
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
