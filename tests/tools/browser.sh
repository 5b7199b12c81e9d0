#!/usr/bin/env bash
# Makes sure a headless browser can be driven, then prints the directory
# whose node_modules/ holds playwright-core (for LY_NODE_DIR or NODE_PATH).
#
#   dir=$(tests/tools/browser.sh) || exit $?   # 77: skip, no browser
#   LY_NODE_DIR=$dir node tests/tools/mesh_page.mjs URL shot.png ID...
#
# - Debian's chromium (/usr/bin/chromium): installed with apt-get only when
#   dpkg-query says it is missing (needs root and Debian's repositories).
# - playwright-core, pinned, into ${LY_CACHE:-<repo>/.cache}/node with npm,
#   only when that exact version is not there yet. It drives the system
#   chromium; it never downloads a browser of its own.
# Fast when both are present: two dpkg/file checks, no network.
# Exit 77 (CTest's skip code) with a message when either cannot be had.
set -euo pipefail

PLAYWRIGHT_VERSION=1.64.1 # drives Debian's chromium 156

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${LY_CACHE:-$repo/.cache}/node
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac

skip() {
  echo "browser.sh: $*" >&2
  exit 77
}

installed() { # installed PKG: dpkg knows it as installed
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

apt_install() { # apt_install PKG...: waits for another apt; updates once if needed
  [ "$(id -u)" -eq 0 ] || skip "$* missing and not root: apt-get install $*"
  command -v apt-get >/dev/null || skip "$* missing and no apt-get"
  local opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  echo "browser.sh: installing $* with apt-get" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >&2; then
    apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >&2 ||
      skip "could not install $* (no network or repository?)"
  fi
}

if ! installed chromium || [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
  [ -x /usr/bin/chromium ] || skip "chromium installed but /usr/bin/chromium is missing"
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 18 ] || skip "node $(node --version 2>/dev/null) is too old for playwright-core"

have_version() {
  grep -qs "\"version\": *\"$PLAYWRIGHT_VERSION\"" "$dir/node_modules/playwright-core/package.json"
}

if ! have_version; then
  mkdir -p "$dir"
  # Tests may run in parallel: one installs, the others wait for it.
  exec 9>"$dir/.install.lock"
  command -v flock >/dev/null && flock -w 600 9
  if ! have_version; then
    echo "browser.sh: installing playwright-core@$PLAYWRIGHT_VERSION into $dir" >&2
    [ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --save-exact \
      --no-audit --no-fund --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" >&2 ||
      skip "npm install playwright-core@$PLAYWRIGHT_VERSION failed (no network?)"
    have_version || skip "playwright-core@$PLAYWRIGHT_VERSION not found after npm install"
  fi
  exec 9>&-
fi

echo "$dir"
