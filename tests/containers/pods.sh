#!/usr/bin/env bash
# The injected pod specs run for real, under Debian's `podman kube play`
# (podman 4.3, runc): a CA pod, and `api`, `web` and a Job-like `job` pod
# rendered by `lanyard inject --native-sidecar=false` from a plain
# Deployment and plain Pods. Asserts what a user of the cluster would check: the init
# container installs the rules in the pod's network namespace, the agents
# get identities with their service-account tokens, web reaches api over
# mTLS only, api's rewritten readiness probe passes under strict mode, a
# Job-like pod ends with /quitquitquit, and nothing is left afterwards.
#
# podman is not Kubernetes; what it lacks is substituted, and said:
subst() { echo "substitution: $*"; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../integration/lib.sh"
require_images
command -v tcpdump >/dev/null || { echo "skip: tcpdump missing"; exit 77; }
command -v nsenter >/dev/null || { echo "skip: nsenter missing"; exit 77; }
python3 -c 'import yaml' 2>/dev/null || { echo "skip: python3 yaml missing (python3-yaml)"; exit 77; }
# podman builds its pods' infra image around catatonit (a Recommends).
if ! command -v podman >/dev/null || ! command -v catatonit >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "# installing Debian's podman and catatonit"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman catatonit >"$T/apt.log" 2>&1 ||
      { tail -5 "$T/apt.log"; echo "skip: apt-get install podman failed"; exit 77; }
  else
    echo "skip: podman missing (apt-get install podman)"
    exit 77
  fi
fi
MKJWT="python3 $LY_SOURCE_DIR/tests/tools/mkjwt.py"
TD=cluster.local
NS=shop
ISS=https://kubernetes.default.svc.cluster.local

# This run's podman settings only (CONTAINERS_CONF replaces the host's
# files for these commands): runc, and default ulimits under 20000 (the
# engine's defaults are higher than the machine allows).
cat >"$T/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$T/containers.conf
PODMAN=(podman)
pm() { "${PODMAN[@]}" "$@"; }

# Everything this run makes is named with its suffix, so the clean-up
# and the leftover check touch nothing else.
S=ly$$
NET=lanyard-$S
API_POD=api-$S-pod-0 # kube play names a Deployment's pod NAME-pod-0
PODS=("ca-$S" "$API_POD" "web-$S" "job-$S")
VOLS_BEFORE='' VOLS_SET='' # volumes that were there before: never removed
teardown() {
  local p
  if [ "$FAILS" -ne 0 ]; then
    for p in "${PODS[@]}"; do
      pm pod logs "$p" >"$T/$p.log" 2>&1 || true
    done
  fi
  for p in "${PODS[@]}"; do pm pod rm -f -t 2 "$p" >/dev/null 2>&1 || true; done
  pm network rm -f "$NET" >/dev/null 2>&1 || true
  if [ -n "$VOLS_SET" ]; then
    comm -13 <(echo "$VOLS_BEFORE") <(pm volume ls -q | sort) | xargs -r "${PODMAN[@]}" volume rm -f >/dev/null 2>&1 || true
  fi
  cleanup
}
trap teardown EXIT

echo "# images: from the engine into podman (cached by image ID)"
for img in "$LY_IMAGE" "$LY_APP_IMAGE"; do
  want=$("$DOCKER" image inspect -f '{{.Id}}' "$img")
  have=$(pm image inspect -f '{{.Id}}' "localhost/$img" 2>/dev/null || true)
  if [ "sha256:$have" != "$want" ] && [ "$have" != "$want" ]; then
    "$DOCKER" save "$img" | pm load >"$T/load.log" 2>&1 || { cat "$T/load.log"; bad "podman load $img"; exit 1; }
    echo "loaded $img (${want:7:12})"
    # The one it replaces is now untagged: it goes (fails if in use).
    [ -z "$have" ] || pm rmi "$have" >/dev/null 2>&1 || true
  else
    echo "podman already has $img (${want:7:12})"
  fi
done

VOLS_BEFORE=$(pm volume ls -q | sort) VOLS_SET=1
pm network create "$NET" >/dev/null
BRIDGE=$(pm network inspect -f '{{.NetworkInterface}}' "$NET")
SUBNET=$(pm network inspect -f '{{range .Subnets}}{{.Subnet}}{{end}}' "$NET")
echo "network $NET: $SUBNET on $BRIDGE"

# pod_ip POD: the pod's address on the network (from its infra container).
infra_of() { pm pod inspect -f '{{.InfraContainerID}}' "$1"; }
pod_ip() { pm inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(infra_of "$1")"; }
infra_pid() { pm inspect -f '{{.State.Pid}}' "$(infra_of "$1")"; }
play() { # play FILE: podman kube play on this run's network
  if ! pm kube play --network "$NET" "$1" >"$T/play.log" 2>&1; then
    cat "$T/play.log"
    bad "podman kube play $(basename "$1")"
    exit 1
  fi
}

echo "# the CA: lanyard ca serve in a pod, verifying Kubernetes tokens with a JWKS"
"$LANYARD" ca init --trust-domain "$TD" --dir "$T/ca" --listen 0.0.0.0:15012 \
  --admin 127.0.0.1:15014 >/dev/null
$MKJWT keygen --type ec --out "$T/k8s.pem"
$MKJWT jwks --out "$T/ca/jwks.json" "$T/k8s.pem:k1"
printf 'kubernetes:\n  jwks: jwks.json\n  issuer: %s\n' "$ISS" >>"$T/ca/ca.yaml"
chown -R 1337:1337 "$T/ca" # the image runs as 1337
chmod 755 "$T"
cat >"$T/ca-pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: ca-$S
spec:
  containers:
    - name: ca
      image: $LY_IMAGE
      args: ["ca", "serve", "-c", "/var/lib/lanyard/ca/ca.yaml"]
      volumeMounts:
        - name: state
          mountPath: /var/lib/lanyard/ca
  volumes:
    - name: state
      hostPath:
        path: $T/ca
        type: Directory
EOF
play "$T/ca-pod.yaml"
CA_IP=$(pod_ip "ca-$S")
check "the CA pod has an address ($CA_IP)" [ -n "$CA_IP" ]
wait_port "$CA_IP" 15012 30 || bad "the CA listens on $CA_IP:15012"
ca_log() { pm logs "ca-$S-ca" 2>&1; }
ca_issued() { ca_log | grep 'credential=k8s_token' | grep -q "spiffe_id=spiffe://$TD/ns/$NS/sa/$1"; }

echo "# the workloads: a plain Deployment (api) and Pods (web, job), through lanyard inject"
subst "pod-to-pod addressing: the api pod's podman IP (no Service DNS)"
subst "native sidecars: podman 4.3 ignores restartPolicy Always on init containers; --native-sidecar=false"
# app_manifest KIND NAME SA POD-SPEC-YAML: a user's manifest, nothing of
# Lanyard in it (POD-SPEC-YAML is indented for a Pod's spec).
app_manifest() {
  case $1 in
  Pod)
    printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  serviceAccountName: %s\n' \
      "$2" "$NS" "$3"
    printf '%s\n' "$4"
    ;;
  Deployment)
    printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  replicas: 1\n' "$2" "$NS"
    printf '  selector:\n    matchLabels:\n      app: %s\n  template:\n    metadata:\n      labels:\n        app: %s\n' "$2" "$2"
    printf '    spec:\n      serviceAccountName: %s\n' "$3"
    printf '%s\n' "$4" | sed 's/^/    /'
    ;;
  esac
}
inject() { "$LANYARD" inject -f "$1" --native-sidecar=false --image "$LY_IMAGE" --ca-addr "$CA_IP:15012"; }
# The substitutions for what podman 4.3 lacks, on the injected spec:
#  - the projected service-account token -> a hostPath holding a token
#    minted with the test's "cluster" key (mkjwt.py), as the kubelet would;
#  - the bundle ConfigMap -> a ConfigMap document in the same YAML;
#  - downward-API fields podman does not resolve -> their values.
k8s_subst() { # k8s_subst INJECTED POD-NAME TOKEN_DIR BUNDLE
  S=$S python3 - "$@" <<'PY'
import os, sys, yaml
src, pod, tokdir = sys.argv[1], sys.argv[2], sys.argv[3]
doc = yaml.safe_load(open(src))
tmpl = doc["spec"]["template"] if doc["kind"] == "Deployment" else doc
spec = tmpl["spec"]
# podman 4.3 caps annotation values at 63 characters (Kubernetes' label
# limit, not the annotation one): the status record goes.
for m in (doc["metadata"], tmpl.get("metadata") or {}):
    (m.get("annotations") or {}).pop("lanyard.io/status", None)
# kube play keeps a ConfigMap's data in a named volume of the same name:
# one per run, so that the clean-up finds it and no run sees another's.
cm_name = "lanyard-trust-bundle-" + os.environ["S"]
for v in spec["volumes"]:
    if v["name"] == "lanyard-token":
        v.pop("projected")
        v["hostPath"] = {"path": tokdir, "type": "Directory"}
    if v["name"] == "lanyard-trust-bundle":
        v["configMap"]["name"] = cm_name
# podman 4.3 applies the pod's restart policy to its init containers
# too: under Always it restarts lanyard-init for ever and the pod never
# starts. Kubernetes runs init containers once whatever the policy.
if spec.get("restartPolicy", "Always") == "Always":
    spec["restartPolicy"] = "OnFailure"
fields = {"metadata.namespace": doc["metadata"]["namespace"],
          "metadata.name": pod,
          "spec.serviceAccountName": spec["serviceAccountName"]}
for c in spec["containers"]:
    # podman publishes a containerPort on the host's same port: the
    # second pod's agent (15020) would not start. In Kubernetes the list
    # is informational.
    c.pop("ports", None)
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if ref in fields:
            e.pop("valueFrom")
            e["value"] = fields[ref]
        elif ref == "status.podIP":  # the agent does not need it to serve
            e.pop("valueFrom")
            e["value"] = ""
cm = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": cm_name},
      "data": {"bundle.pem": open(sys.argv[4]).read()}}
print(yaml.safe_dump_all([doc, cm], sort_keys=False))
PY
}
subst "projected service-account token -> hostPath file with a token minted by mkjwt.py"
subst "trust-bundle ConfigMap -> a ConfigMap document in the same kube play YAML (named lanyard-trust-bundle-$S: podman keeps it as a volume of that name)"
subst "the lanyard.io/status annotation is dropped (podman 4.3 refuses annotation values over 63 characters)"
subst "restartPolicy Always -> OnFailure (podman 4.3 restarts init containers under Always, for ever)"
subst "container ports lists dropped (podman 4.3 publishes containerPort on the host)"
subst "downward-API env (metadata.*, spec.serviceAccountName) -> literal values; status.podIP -> empty"
# mkpod KIND NAME SA POD-SPEC-YAML [POD-NAME]: writes $T/NAME.yaml
# (injected, substituted).
mkpod() {
  local kind=$1 name=$2 sa=$3 pod=${5:-$2}
  app_manifest "$kind" "$name" "$sa" "$4" >"$T/$name.plain.yaml"
  inject "$T/$name.plain.yaml" >"$T/$name.injected.yaml" 2>"$T/$name.inject.log" ||
    { cat "$T/$name.inject.log"; bad "lanyard inject $name"; exit 1; }
  mkdir -p "$T/tokens/$name"
  $MKJWT sign --key "$T/k8s.pem" --kid k1 --alg ES256 --iss "$ISS" --aud lanyard-ca \
    --ns "$NS" --sa "$sa" --exp-in 3600 --out "$T/tokens/$name/token"
  chown -R 1337:1337 "$T/tokens/$name"
  k8s_subst "$T/$name.injected.yaml" "$pod" "$T/tokens/$name" "$T/ca/bundle.pem" >"$T/$name.yaml"
}

mkpod Deployment "api-$S" api '  containers:
    - name: api
      image: '"$LY_APP_IMAGE"'
      command: ["busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/srv"]
      ports:
        - containerPort: 8080
      readinessProbe:
        httpGet:
          path: /index.html
          port: 8080
        periodSeconds: 2' "$API_POD"
play "$T/api-$S.yaml"
API_IP=$(pod_ip "$API_POD")
check "the api pod runs ($API_IP)" [ -n "$API_IP" ]
admin_ready() { curl -sf -m 2 "http://$1:15020/readyz" >/dev/null; }
wait_for() { # wait_for SECONDS CMD...
  local _
  for _ in $(seq 1 $(($1 * 4))); do "${@:2}" && return 0; sleep 0.25; done
  return 1
}
check "api's agent is ready (/readyz on its admin port)" wait_for 60 admin_ready "$API_IP"
rules=$(nsenter -t "$(infra_pid "$API_POD")" -n iptables-save 2>&1 || true)
check "lanyard-init installed the rules in api's network namespace" grep -q '^:LANYARD' <<<"$rules"
check "  inbound is redirected to the agent (15006)" grep -q -- '-j REDIRECT --to-ports 15006' <<<"$rules"
check "  outbound is redirected to the agent (15001)" grep -q -- '-j REDIRECT --to-ports 15001' <<<"$rules"
echo "$rules" | grep -E '^:LANYARD' | sed 's/^/  /'
check "the CA issued api's identity to its service-account token" \
  ca_issued api

echo "# api's readiness probe under strict mode, rewritten to /app-health"
subst "kube play has no readinessProbe (containers/podman#12417): the test GETs the rewritten URL from the host, as the kubelet would"
probe_path=$(python3 -c 'import sys,yaml; d=yaml.safe_load(open(sys.argv[1])); print([c for c in d["spec"]["template"]["spec"]["containers"] if c["name"]=="api"][0]["readinessProbe"]["httpGet"]["path"])' "$T/api-$S.injected.yaml")
check "inject rewrote the probe to $probe_path" [ "$probe_path" = /app-health/api/readiness ]
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://$API_IP:15020$probe_path" || true)
check "the kubelet's GET http://$API_IP:15020$probe_path passes ($code)" [ "$code" = 200 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://$API_IP:8080/index.html" || true)
check "the original probe (plain HTTP to :8080) gets no answer under strict ($code)" [ "$code" != 200 ]

mkpod Pod "web-$S" web '  containers:
    - name: web
      image: '"$LY_APP_IMAGE"'
      command: ["busybox", "sleep", "86400"]'
play "$T/web-$S.yaml"
WEB_IP=$(pod_ip "web-$S")
check "web's agent is ready ($WEB_IP)" wait_for 60 admin_ready "$WEB_IP"
rules=$(nsenter -t "$(infra_pid "web-$S")" -n iptables-save 2>&1 || true)
check "lanyard-init installed the rules in web's network namespace" grep -q '^:LANYARD' <<<"$rules"
check "the CA issued web's identity to its service-account token" \
  ca_issued web

echo "# web -> api over the pod network: TLS on the bridge, never the request"
m=$(marker)
tcpdump -i "$BRIDGE" --immediate-mode -nn -U -s 0 -w "$T/bridge.pcap" tcp \
  >"$T/tcpdump.log" 2>&1 &
cap=$!
PEERS+=("$cap")
for _ in $(seq 1 50); do grep -q "listening on" "$T/tcpdump.log" && break; sleep 0.1; done
body=$(pm exec "web-$S-web" curl -sS -m 10 -H "X-Marker: $m" "http://$API_IP:8080/?m=$m" 2>&1 || true)
check "web -> http://$API_IP:8080/ answers ('$body')" [ "$body" = "hello from api" ]
sleep 0.5 # the last segments reach the capture
kill "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
tcpdump -nn -r "$T/bridge.pcap" 2>/dev/null | head -5 | sed 's/^/  /'
n=$(tcpdump -nn -r "$T/bridge.pcap" "host $WEB_IP and host $API_IP" 2>/dev/null | wc -l)
tls=$(tls_records "$T/bridge.pcap")
check "the bridge carried web<->api segments ($n)" [ "$n" -gt 0 ]
check "they are TLS records ($tls segments start one)" [ "$tls" -gt 0 ]
check "the marker never crossed the bridge" bash -c "! grep -aq '$m' '$T/bridge.pcap'"

echo "# the sidecar's idle memory"
apid=$(pm inspect -f '{{.State.Pid}}' "$API_POD-lanyard-agent")
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$apid/status")
# As tests/bench's results.tsv lines: peer, figure, value.
echo "VmRSS of api's lanyard-agent (pid $apid), ready, after one request:"
printf 'lanyard\tsidecar_idle_rss_kb\t%s\n' "$rss"
check "the sidecar's RSS was read ($rss kB)" [ -n "$rss" ]

echo "# a Job-like pod: the app ends, then tells its agent to quit"
mkpod Pod "job-$S" job '  restartPolicy: Never
  containers:
    - name: task
      image: '"$LY_APP_IMAGE"'
      command: ["sh", "-c", "until curl -sf http://127.0.0.1:15020/readyz >/dev/null; do sleep 0.2; done; curl -sS -m 10 http://'"$API_IP"':8080/ && curl -sf -X POST http://127.0.0.1:15020/quitquitquit"]'
subst "the postStart hold: podman 4.3 starts a pod's containers together and runs no postStart hook (the times below), so the job's command waits for its agent's /readyz itself"
play "$T/job-$S.yaml"
job_done() { [ "$(pm pod inspect -f '{{.State}}' "job-$S")" = Exited ]; }
check "the job pod ends (every container exited)" wait_for 60 job_done
echo "  agent started $(pm inspect -f '{{.State.StartedAt}}' "job-$S-lanyard-agent"), task started $(pm inspect -f '{{.State.StartedAt}}' "job-$S-task")"
st=$(pm inspect -f '{{.State.ExitCode}}' "job-$S-task" 2>/dev/null || echo none)
check "  its task exited 0 ($st)" [ "$st" = 0 ]
out=$(pm logs "job-$S-task" 2>&1 || true)
check "  after reaching api over the mesh ('$out')" grep -q "hello from api" <<<"$out"
check "  with an identity from its own token" ca_issued job
st=$(pm inspect -f '{{.State.ExitCode}}' "job-$S-lanyard-agent" 2>/dev/null || echo none)
check "  its agent exited 0 on /quitquitquit ($st)" [ "$st" = 0 ]

echo "# clean-up"
for p in "${PODS[@]}"; do pm pod rm -f -t 2 "$p" >/dev/null 2>&1 || true; done
pm network rm -f "$NET" >/dev/null 2>&1 || true
pm volume rm -f "lanyard-trust-bundle-$S" >/dev/null 2>&1 || true # the ConfigMap's
left=$(
  pm pod ls -q --filter "name=$S"
  pm ps -aq --filter "name=$S"
  pm network ls -q --filter "name=$S"
  comm -13 <(echo "$VOLS_BEFORE") <(pm volume ls -q | sort)
)
check "no pod, container, network or volume of this run is left ('$left')" [ -z "$left" ]
finish
