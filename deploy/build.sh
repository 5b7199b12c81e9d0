#!/usr/bin/env bash
# Builds the release binary, build/lanyard, showing progress: the first
# run fetches and compiles wolfSSL (kept in .cache/, so later runs skip
# it), then compiles Lanyard.
#
#   deploy/build.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }
if [ ! -f build/CMakeCache.txt ] || [ ! -f .cache/wolfssl/lib/libwolfssl.a ]; then
  echo "build: configuring (the first time this builds wolfSSL from Debian's source package: about 3 minutes on 2 cores)"
fi
mkdir -p .cache
log=.cache/configure.log
# wolfSSL's steps show as they happen; the rest goes to the log.
{
  rc=0
  cmake -S . -B build -DLANYARD_WOLFSSL_WORKDIR="$root/.cache/wolfssl-src" \
    -DLANYARD_WOLFSSL_PREFIX="$root/.cache/wolfssl" 2>&1 || rc=$?
  echo "configure exit $rc"
} | tee "$log" | grep --line-buffered '^wolfssl:' || true
grep -qx "configure exit 0" "$log" || { cat "$log" >&2; echo "build: configure failed" >&2; exit 1; }
echo "build: compiling lanyard ($(elapsed) so far; about a minute more the first time)"
# CMake's own percentages, one line per tenth.
if ! cmake --build build -j"$(nproc)" --target lanyard 2>&1 | awk '
  /^\[ *[0-9]+%\]/ { p = substr($0, 2, index($0, "%") - 2) + 0
                     if (p >= next_p) { printf "build: %3d%%\n", p; fflush(); next_p = p - p % 10 + 10 } }
  /error|warning:/ { print }'; then
  echo "build: failed" >&2
  exit 1
fi
echo "build: build/lanyard ready ($(elapsed))"
