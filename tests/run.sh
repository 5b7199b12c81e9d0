#!/usr/bin/env bash
# Every test suite: installs what is missing (Debian 12, as root), builds
# (normal, AddressSanitizer+UBSan, and libFuzzer with clang), and runs the
# suites through CTest.
# A second run on a warm tree rebuilds nothing that did not change.
# For one suite while developing: cd build && ctest -R <name>.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

deploy/deps.sh test

# One optimized wolfSSL for both builds (it is not instrumented: ASan
# checks Lanyard's own code).
wolfssl=(-DLANYARD_WOLFSSL_WORKDIR="$root/.cache/wolfssl-src"
  -DLANYARD_WOLFSSL_PREFIX="$root/.cache/wolfssl")
jobs=$(nproc)

build() { # dir extra-cmake-args...
  local dir=$1; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S . -B "$dir" "${wolfssl[@]}" "$@" >/dev/null
  fi
  cmake --build "$dir" -j"$jobs" 2>&1 | grep -E "error|warning:" || true
  cmake --build "$dir" -j"$jobs" >/dev/null # fails loudly if broken
}

summary=()
digest=() # the failed checks of failed suites, repeated at the very end
total_pass=0
total_fail=0
run_ctest() { # dir label-regex
  local dir=$1 regex=$2 log
  log=$(mktemp)
  set +e
  (cd "$dir" && ctest --output-on-failure -j"$jobs" -L "$regex") | tee "$log"
  set -e
  local line passed failed
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1 || true)
  # A CI log is often shown cut in the middle: keep what failed for the end.
  mapfile -t -O "${#digest[@]}" digest < <(grep -E "^(FAIL - | *MISSED |.*\*\*\*(Failed|Timeout|Exception))|(ERROR|runtime error|Sanitizer)" "$log" |
    sed "s|^|$dir: |" | head -40)
  failed=$(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/p' <<<"$line")
  total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' <<<"$line")
  rm -f "$log"
  if [ -z "$line" ]; then failed=1; total=1; fi
  passed=$((total - failed))
  total_pass=$((total_pass + passed))
  total_fail=$((total_fail + failed))
  summary+=("$dir: $passed passed, $failed failed")
}

echo "== build (release)"
build build
"$root/build/lanyard" version
echo "== tests"
run_ctest build '.'
echo "== build (AddressSanitizer + UBSan)"
build build-asan -DLANYARD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under sanitizers (unit, config, integration, interop, e2e)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest build-asan 'unit|config|integration|interop|e2e'
echo "== build (libFuzzer, clang)"
CC=clang-14 build build-fuzz -DLANYARD_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
echo "== fuzz smoke runs (each target for a few seconds; tests/fuzz)"
run_ctest build-fuzz 'fuzz'

if [ "${#digest[@]}" -gt 0 ]; then
  echo "== what failed"
  printf '%s\n' "${digest[@]}"
fi
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
