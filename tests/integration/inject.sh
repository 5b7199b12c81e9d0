# shellcheck shell=bash
# Kubernetes sidecar injection: `lanyard inject` over real manifests (the
# shared test data and our own), and `lanyard injector` over HTTPS with the
# AdmissionReviews from the test data, checked with independent tools:
# PyYAML reads the manifests, Debian's python3-jsonpatch applies the
# webhook's patches, curl and Python's ssl are the clients.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
"$PY" -c 'import yaml, jsonpatch' 2>/dev/null || {
  echo "skip: needs Debian's python3-yaml and python3-jsonpatch"
  exit 77
}
K8S=$LY_TESTDATA/k8s
M=$K8S/manifests
OWN=$K8S/own

# --- lanyard inject ---------------------------------------------------------

# py SCRIPT ARGS...: a check in Python; exit status 0 means it holds.
py() { "$PY" - "$@"; }

# Every manifest: injected, then injected again (same bytes), then
# removed (the original objects).
for f in "$M"/bookinfo.yaml "$M"/bookinfo-psa.yaml "$M"/istio-hello-multi.yaml \
  "$M"/istio-list.yaml "$OWN"/kinds.yaml "$OWN"/probes.yaml "$OWN"/annotated.yaml; do
  b=$(basename "$f" .yaml)
  rc=0
  "$LANYARD" inject -f "$f" >"$T/$b.1.yaml" 2>"$T/$b.1.err" || rc=$?
  check "$b: inject succeeds" [ "$rc" -eq 0 ]
  check "$b: inject | inject gives the same bytes" \
    bash -c "'$LANYARD' inject -f - <'$T/$b.1.yaml' 2>'$T/$b.2.err' | cmp -s - '$T/$b.1.yaml'"
  check "$b: the second run says every workload is unchanged" \
    bash -c "! grep -v 'unchanged (already injected)' '$T/$b.2.err'"
  "$LANYARD" inject --remove -f "$T/$b.1.yaml" >"$T/$b.r.yaml" 2>"$T/$b.r.err" || true
  check "$b: --remove gives back the original objects" py "$f" "$T/$b.r.yaml" <<'EOF'
import sys, yaml
a = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
b = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d is not None]
sys.exit(0 if a == b else 1)
EOF
done

# bookinfo (EXPECTED.txt): 6 Deployments injected, Services and
# ServiceAccounts unchanged, order and count kept, volumes and
# annotations kept, comments kept.
check "bookinfo: six Deployments reported injected" \
  test "$(grep -c '^deployment/.* injected$' "$T/bookinfo.1.err")" -eq 6
check "bookinfo: objects, order and the untouched documents as expected" \
  py "$M/bookinfo.yaml" "$T/bookinfo.1.yaml" <<'EOF'
import sys, yaml
a = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
b = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d is not None]
assert len(a) == len(b) == 14, (len(a), len(b))
for x, y in zip(a, b):
    assert (x['kind'], x['metadata']['name']) == (y['kind'], y['metadata']['name'])
    if x['kind'] != 'Deployment':
        assert x == y, x['metadata']['name']
        continue
    s = y['spec']['template']['spec']
    names = [c['name'] for c in s['initContainers']]
    assert names[:2] == ['lanyard-init', 'lanyard-agent'], names
    assert s['serviceAccountName'] == x['spec']['template']['spec']['serviceAccountName']
    for v in x['spec']['template']['spec'].get('volumes', []):
        assert v in s['volumes'], v
    old = x['spec']['template']['spec']['containers']
    assert [c['name'] for c in s['containers']] == [c['name'] for c in old]
    for c, o in zip(s['containers'], old):
        assert c.get('volumeMounts') == o.get('volumeMounts')
    ann = y['spec']['template']['metadata']['annotations']
    for k, v in x['spec']['template']['metadata'].get('annotations', {}).items():
        assert ann[k] == v, k
    assert 'lanyard.io/status' in ann
EOF
check "bookinfo: the licence header and the banners between documents are kept" \
  bash -c "head -13 '$M/bookinfo.yaml' | cmp -s - <(head -13 '$T/bookinfo.1.yaml') &&
    test \"\$(grep -c '^# .* service$' '$M/bookinfo.yaml')\" = \"\$(grep -c '^# .* service$' '$T/bookinfo.1.yaml')\""
check "bookinfo-psa: the injected containers meet PSA restricted" \
  py "$T/bookinfo-psa.1.yaml" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d or d['kind'] != 'Deployment':
        continue
    s = d['spec']['template']['spec']
    agent = [c for c in s['initContainers'] if c['name'] == 'lanyard-agent'][0]
    sc = agent['securityContext']
    assert sc['runAsNonRoot'] is True and sc['allowPrivilegeEscalation'] is False
    assert sc['capabilities']['drop'] == ['ALL']
    assert sc['seccompProfile']['type'] == 'RuntimeDefault'
    assert sc['runAsUser'] == 1337 and sc['readOnlyRootFilesystem'] is True
EOF
check "kinds: every kind with a pod template is injected, List items too" \
  bash -c "for w in pod/solo deployment/web statefulset/db daemonset/logs replicaset/rs job/migrate cronjob/nightly pod/listed; do
    grep -qx \"\$w injected\" '$T/kinds.1.err' || { echo \"no \$w\"; exit 1; }; done"
check "kinds: the ConfigMap and the Service go out byte for byte, comments too" \
  bash -c "grep -q '  name: settings  # a comment that must survive' '$T/kinds.1.yaml' &&
    grep -q '^# The web Deployment' '$T/kinds.1.yaml' && tail -1 '$T/kinds.1.yaml' | grep -qx '# trailing comment'"
check "kinds: the CronJob's jobTemplate and the Job's pod carry the agent" \
  py "$T/kinds.1.yaml" <<'EOF'
import sys, yaml
docs = {d['metadata'].get('name') if 'metadata' in d else d['kind']: d
        for d in yaml.safe_load_all(open(sys.argv[1])) if d and d['kind'] != 'Service'}
cj = docs['nightly']['spec']['jobTemplate']['spec']['template']['spec']
assert [c['name'] for c in cj['initContainers']] == ['lanyard-init', 'lanyard-agent']
job = docs['migrate']['spec']['template']['spec']
assert job['initContainers'][1]['restartPolicy'] == 'Always'
items = docs['List']['items']
assert items[0]['spec']['initContainers'][1]['name'] == 'lanyard-agent'
assert 'initContainers' not in items[1].get('spec', {})
web = docs['web']['spec']['template']['spec']
assert [v for v in web['volumes'] if v['name'] == 'cfg'][0]['configMap']['defaultMode'] == 0o644
EOF

"$LANYARD" inject -f "$OWN/skips.yaml" >"$T/skips.yaml" 2>"$T/skips.err"
for want in "pod/node-agent skipped: hostNetwork" "pod/dns skipped: system namespace kube-system" \
  "pod/pub skipped: system namespace kube-public" "pod/lease skipped: system namespace kube-node-lease" \
  "pod/ca skipped: namespace lanyard is Lanyard's own" "pod/istio skipped: another mesh's sidecar (istio-proxy)" \
  "pod/linkerd skipped: another mesh's sidecar (linkerd-proxy)" "pod/optout skipped: annotation lanyard.io/inject: disabled"; do
  check "skips: '$want'" grep -qF "$want" "$T/skips.err"
done
check "skips: the skipped pods go out unchanged" cmp -s "$OWN/skips.yaml" "$T/skips.yaml"

check "probes: httpGet and tcpSocket point at /app-health, exec stays, originals in LANYARD_APP_PROBES" \
  py "$T/probes.1.yaml" <<'EOF'
import sys, yaml, json
s = yaml.safe_load(open(sys.argv[1]))['spec']
assert [c['name'] for c in s['initContainers']] == ['lanyard-init', 'lanyard-agent', 'setup']
web, tls = s['containers']
assert web['livenessProbe'] == {'periodSeconds': 5, 'httpGet': {'path': '/app-health/web/liveness', 'port': 15020, 'scheme': 'HTTP'}}
assert web['readinessProbe']['httpGet'] == {'path': '/app-health/web/readiness', 'port': 15020, 'scheme': 'HTTP'}
assert 'exec' in web['startupProbe']
assert tls['readinessProbe']['httpGet']['path'] == '/app-health/tls/readiness'
env = {e['name']: e for e in s['initContainers'][1]['env']}
probes = json.loads(env['LANYARD_APP_PROBES']['value'])
assert probes['web/readiness'] == {'httpGet': {'path': '/healthz', 'port': 'http', 'httpHeaders': [{'name': 'X-Probe', 'value': '1'}]}, 'port': 8080}, probes
assert probes['web/liveness'] == {'tcpSocket': {'port': 8080}, 'port': 8080}
assert probes['tls/readiness']['httpGet']['scheme'] == 'HTTPS'
for k in ('LANYARD_NAMESPACE', 'LANYARD_SERVICE_ACCOUNT', 'LANYARD_POD_NAME', 'LANYARD_POD_IP'):
    assert 'fieldRef' in env[k]['valueFrom'], k
assert s['initContainers'][1]['command'] == ['lanyard', 'agent', '--from-env']
EOF

check "annotations: every one reaches the pod (fallback mode, ports, CIDRs, TTL, resources)" \
  py "$T/annotated.1.yaml" <<'EOF'
import sys, yaml
s = yaml.safe_load(open(sys.argv[1]))['spec']['template']['spec']
assert [c['name'] for c in s['initContainers']] == ['lanyard-init']
agent = s['containers'][0]
assert agent['name'] == 'lanyard-agent' and 'restartPolicy' not in agent
assert agent['lifecycle']['postStart']['exec']['command'] == ['lanyard', 'healthcheck', '--admin', '127.0.0.1:15020', '--wait', '2m']
assert agent['resources'] == {'requests': {'cpu': '50m', 'memory': '32Mi'}}
env = {e['name']: e.get('value') for e in agent['env']}
assert env['LANYARD_MODE'] == 'permissive' and env['LANYARD_TTL'] == '2h'
cmd = s['initContainers'][0]['command']
args = dict(zip(cmd[2::2], cmd[3::2]))
assert args['--exclude-inbound-ports'] == '9090,9091'
assert args['--exclude-outbound-ports'] == '5432'
assert args['--exclude-outbound-cidrs'] == '10.96.0.0/12,fd00::/8'
assert args['--include-inbound-ports'] == '8080'
assert args['--proxy-uid'] == '1337'
EOF

# The iptables flags the init container gets are ones `lanyard iptables`
# accepts (its dry run prints rules without privileges).
check "annotations: the init container's command is a valid 'lanyard iptables'" \
  bash -c "\"$PY\" -c 'import sys,yaml; print(\"\\n\".join(yaml.safe_load(open(sys.argv[1]))[\"spec\"][\"template\"][\"spec\"][\"initContainers\"][0][\"command\"][2:]))' '$T/annotated.1.yaml' |
    xargs -d '\n' '$LANYARD' iptables --dry-run --no-ipv6 >/dev/null"

check "--native-sidecar=false: the agent is the first container" \
  bash -c "'$LANYARD' inject --native-sidecar=false -f '$M/istio-hello-multi.yaml' 2>/dev/null |
    \"$PY\" -c 'import sys,yaml; d=[x for x in yaml.safe_load_all(sys.stdin) if x]; assert all(x[\"spec\"][\"template\"][\"spec\"][\"containers\"][0][\"name\"]==\"lanyard-agent\" for x in d)'"
check "namespace annotations apply, the pod's win" \
  bash -c "'$LANYARD' inject --namespace-annotation lanyard.io/inject=disabled -f '$M/istio-hello-multi.yaml' 2>&1 >/dev/null | grep -q 'skipped: annotation lanyard.io/inject: disabled' &&
    '$LANYARD' inject --namespace-annotation lanyard.io/mode=permissive -f '$OWN/kinds.yaml' 2>/dev/null | grep -q 'value: permissive'"

# A changed annotation on an injected workload is rendered afresh.
sed 's|lanyard.io/proxy-cpu: 50m|lanyard.io/proxy-cpu: 75m|' "$T/annotated.1.yaml" >"$T/annotated.changed.yaml"
check "an injected workload with a changed annotation is rendered again" \
  bash -c "'$LANYARD' inject -f '$T/annotated.changed.yaml' 2>'$T/changed.err' | grep -q 'cpu: 75m' && grep -qx 'deployment/tuned injected' '$T/changed.err'"

# Bad annotations: an error that names the annotation, nothing written.
for bad in "inject: maybe" "mode: loose" "exclude-inbound-ports: 80,x" \
  "exclude-outbound-ports: 70000" "exclude-outbound-cidrs: 10.0.0.0/33" \
  "include-inbound-ports: all" "ttl: soon" "native-sidecar: yes-please" \
  "proxy-cpu: lots" "proxy-memory: -5Mi" "injet: enabled"; do
  k=${bad%%:*}
  v=${bad#*: }
  printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    lanyard.io/%s: "%s"\nspec:\n  containers: [{name: a, image: x}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: fine}\nspec:\n  containers: [{name: a, image: x}]\n' \
    "$k" "$v" >"$T/bad.yaml"
  rc=0
  "$LANYARD" inject -f "$T/bad.yaml" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
  check "bad annotation lanyard.io/$k='$v': exit 1, named, nothing written" \
    bash -c "[ $rc -eq 1 ] && grep -q 'pod/p: .*lanyard.io/$k' '$T/bad.err' && [ ! -s '$T/bad.out' ]"
done
printf 'kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a}\n  b: c\n' >"$T/broken.yaml"
rc=0
"$LANYARD" inject -f "$T/broken.yaml" >/dev/null 2>"$T/broken.err" || rc=$?
check "broken YAML: exit 1 with file:line:column" \
  bash -c "[ $rc -eq 1 ] && grep -qE 'broken.yaml:[0-9]+:[0-9]+: ' '$T/broken.err'"
check "a folder is read (*.yaml), and stdin with -f -" \
  bash -c "'$LANYARD' inject -f '$M' 2>&1 >/dev/null | grep -c ' injected\$' | grep -qx 16 &&
    '$LANYARD' inject -f - <'$OWN/probes.yaml' 2>&1 >/dev/null | grep -qx 'pod/probed injected'"

# The injected objects against the Kubernetes API schemas (npm's
# kubernetes-models, pinned and cached by tests/tools/k8s_tools.sh). Both
# renderings: podman and kind clusters without native sidecars use the
# fallback.
VALIDATE=$LY_SOURCE_DIR/tests/tools/k8s_validate.mjs
if K8S_TOOLS=$("$LY_SOURCE_DIR/tests/tools/k8s_tools.sh" 2>"$T/k8s_tools.err"); then
  for native in true false; do
    "$LANYARD" inject --native-sidecar=$native -f "$M" -f "$OWN/kinds.yaml" -f "$OWN/probes.yaml" \
      -f "$OWN/annotated.yaml" 2>/dev/null |
      "$PY" -c 'import sys,yaml,json; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))' >"$T/objs-$native.json"
    check "native-sidecar=$native: every injected object is valid against the Kubernetes schemas" \
      bash -c "node '$VALIDATE' '$K8S_TOOLS/models' <'$T/objs-$native.json' >'$T/valid-$native.out'"
  done
  "$PY" -c '
import json, sys
o = json.load(open(sys.argv[1]))
p = [x for x in o if x["kind"] == "Pod"][0]
p["spec"]["initContainers"][0]["securityContext"]["capabilities"]["add"] = "NET_ADMIN"
json.dump([p], open(sys.argv[2], "w"))' "$T/objs-true.json" "$T/objs-broken.json"
  check "the schema check does catch a broken pod" \
    bash -c "! node '$VALIDATE' '$K8S_TOOLS/models' <'$T/objs-broken.json' >'$T/broken.out' &&
      grep -q 'capabilities/add must be array' '$T/broken.out'"
else
  echo "skip - schema validation: $(cat "$T/k8s_tools.err")"
fi

# --- lanyard healthcheck (the fallback's postStart hook) ---------------------
# Against a real agent: not ready while its CA is down, ready once the CA
# is up and the agent holds an SVID.
ca_setup "$T/ca" hc.test
agent_yaml "$T/hc" spiffe://hc.test/ns/default/sa/web "$T/ca"
HC_ADMIN=$(sed -n 's/^admin: //p' "$T/hc/agent.yaml")
"$LANYARD" agent -c "$T/hc/agent.yaml" >>"$T/hc/agent.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 "${HC_ADMIN##*:}" 10
rc=0
"$LANYARD" healthcheck --admin "$HC_ADMIN" 2>"$T/hc.err" || rc=$?
check "healthcheck: exit 1 while the agent has no identity" \
  bash -c "[ $rc -eq 1 ] && grep -q 'HTTP 503' '$T/hc.err'"
"$LANYARD" healthcheck --admin "$HC_ADMIN" --wait 60s 2>"$T/hc-wait.err" &
HC_PID=$!
ca_start "$T/ca"
rc=0
wait "$HC_PID" || rc=$?
check "healthcheck --wait: exit 0 once the agent is ready" [ "$rc" -eq 0 ]
rc=0
"$LANYARD" healthcheck --admin 127.0.0.1:1 --wait 1s 2>/dev/null || rc=$?
check "healthcheck: exit 1 when nothing answers within --wait" [ "$rc" -eq 1 ]

# --- lanyard injector --------------------------------------------------------

command -v curl >/dev/null && command -v openssl >/dev/null || {
  echo "skip: the webhook checks need curl and openssl"
  finish
  exit $?
}
A=$K8S/admission
# mkcert DIR CN: a self-signed serving pair with the webhook's DNS SAN.
mkcert() {
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1/key.pem" -out "$1/cert.pem" -days 2 -subj "/CN=$2" \
    -addext "subjectAltName=DNS:lanyard-injector.lanyard.svc,IP:127.0.0.1" 2>/dev/null
}
mkcert "$T/pki1" first
cp "$T/pki1/cert.pem" "$T/cert.pem"
cp "$T/pki1/key.pem" "$T/key.pem"
PORT=$(free_port)
"$LANYARD" injector --listen "127.0.0.1:$PORT" --cert "$T/cert.pem" --key "$T/key.pem" \
  --max-bytes 262144 >"$T/injector.log" 2>&1 &
PIDS+=($!)
wait_log "$T/injector.log" "injector_listening" 10
URL=https://127.0.0.1:$PORT/mutate

post() { # file -> response body in $T/resp.json, status in $T/resp.code
  curl -sS --cacert "$T/pki1/cert.pem" -H 'Content-Type: application/json' \
    --data-binary @"$1" -o "$T/resp.json" -w '%{http_code}' "$URL" >"$T/resp.code" 2>"$T/curl.err" || true
}

# The Lanyard opt-out: test 06 with the agent's own annotation.
"$PY" - "$A/06-pod-create-optout-annotation-SKIP-if-supported.json" "$T/06-lanyard-optout.json" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
ann = r['request']['object']['metadata'].setdefault('annotations', {})
ann.pop('sidecar.istio.io/inject', None)
ann['lanyard.io/inject'] = 'disabled'
json.dump(r, open(sys.argv[2], 'w'))
EOF2

# Each injected review: the patch, applied by python3-jsonpatch to the
# request's object, gives exactly the CLI's pod.
for f in "$A"/01-*.json "$A"/02-*.json "$A"/03-*.json "$A"/05-*.json; do
  b=$(basename "$f" .json)
  post "$f"
  "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))["request"]; print(json.dumps(r["object"]))' "$f" >"$T/$b.obj.json"
  ns=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["request"]["namespace"])' "$f")
  "$LANYARD" inject --namespace "$ns" -f "$T/$b.obj.json" >"$T/$b.cli.yaml" 2>/dev/null
  check "$b: 200, uid echoed, JSONPatch that gives the CLI's pod" \
    bash -c "[ \"\$(cat '$T/resp.code')\" = 200 ] && \"$PY\" - '$f' '$T/resp.json' '$T/$b.cli.yaml' '$T/$b.patched.json' <<'EOF2'
import base64, json, sys, yaml, jsonpatch
req = json.load(open(sys.argv[1]))['request']
rv = json.load(open(sys.argv[2]))
assert rv['apiVersion'] == 'admission.k8s.io/v1' and rv['kind'] == 'AdmissionReview'
r = rv['response']
assert r['uid'] == req['uid'] and r['allowed'] is True and r['patchType'] == 'JSONPatch'
patch = json.loads(base64.b64decode(r['patch']))
# the pod's own arrays are added to, never replaced
for op in patch:
    assert op['op'] != 'replace' or not isinstance(op.get('value'), list), op['path']
got = jsonpatch.apply_patch(req['object'], patch)
cli = yaml.safe_load(open(sys.argv[3]))
assert got == cli, 'webhook and CLI differ'
json.dump(got, open(sys.argv[4], 'w'))
EOF2"
done
check "01: the existing annotation, volumes and mounts are kept" "$PY" - "$T/01-pod-create-deployment-nginx-annotated.patched.json" "$A/01-pod-create-deployment-nginx-annotated.json" <<'EOF2'
import json, sys
got = json.load(open(sys.argv[1]))
orig = json.load(open(sys.argv[2]))['request']['object']
for k, v in orig['metadata']['annotations'].items():
    assert got['metadata']['annotations'][k] == v
assert got['spec']['volumes'][:len(orig['spec']['volumes'])] == orig['spec']['volumes']
for c, o in zip([c for c in got['spec']['containers'] if c['name'] != 'lanyard-agent'], orig['spec']['containers']):
    assert c.get('volumeMounts') == o.get('volumeMounts')
EOF2
check "02: the pod's own init containers follow the agent, in order" "$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))["spec"]
assert [c["name"] for c in s["initContainers"]] == ["lanyard-init", "lanyard-agent", "init-one", "init-two"], s["initContainers"]
' "$T/02-pod-create-multi-init.patched.json"
post "$A/03-pod-create-multi-container-annotated.json"
check "03: annotation keys with '/' are escaped ~1 in the patch" \
  bash -c "\"$PY\" -c 'import json,sys,base64; p=json.loads(base64.b64decode(json.load(open(sys.argv[1]))[\"response\"][\"patch\"])); assert any(\"lanyard.io~1status\" in o[\"path\"] for o in p)' '$T/resp.json'"
check "05: the pod's own native sidecar is kept" "$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))["spec"]
own = [c for c in s["initContainers"] if not c["name"].startswith("lanyard-")]
assert own and all(c.get("restartPolicy") == "Always" for c in own), own
' "$T/05-pod-create-bare-native-sidecar.patched.json"

# Skips: allowed, no patch, a warning with the reason.
for f in "$A/04-pod-create-hostnetwork-SKIP.json:hostNetwork" "$T/06-lanyard-optout.json:inject: disabled"; do
  post "${f%%:*}"
  check "$(basename "${f%%:*}" .json): allowed, no patch, warning '${f#*:}'" "$PY" - "$T/resp.json" "${f#*:}" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))['response']
assert r['allowed'] is True and 'patch' not in r and 'patchType' not in r, r
assert any(sys.argv[2] in w for w in r['warnings']), r
EOF2
done
post "$A/90-pod-delete-object-null.json"
check "90: DELETE with a null object: allowed, no patch" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["response"]
assert r["allowed"] is True and "patch" not in r and r["uid"].endswith("99")' "$T/resp.json"

# Reinvocation: the injected pod again gives no patch.
"$PY" - "$A/01-pod-create-deployment-nginx-annotated.json" "$T/01-pod-create-deployment-nginx-annotated.patched.json" "$T/again.json" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
r['request']['object'] = json.load(open(sys.argv[2]))
r['request']['dryRun'] = True
json.dump(r, open(sys.argv[3], 'w'))
EOF2
post "$T/again.json"
check "an injected pod sent again (dryRun): no patch" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["response"]
assert r["allowed"] is True and "patch" not in r, r' "$T/resp.json"

# A bad annotation refuses the pod and names the annotation.
"$PY" - "$A/01-pod-create-deployment-nginx-annotated.json" "$T/badann.json" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
r['request']['object']['metadata']['annotations']['lanyard.io/proxy-memory'] = 'plenty'
json.dump(r, open(sys.argv[2], 'w'))
EOF2
post "$T/badann.json"
check "a bad annotation: allowed false, the message names it" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["response"]
assert r["allowed"] is False and "lanyard.io/proxy-memory" in r["status"]["message"], r' "$T/resp.json"

# admission.k8s.io/v1beta1 with a Deployment: answered in v1beta1.
"$PY" - "$A/01-pod-create-deployment-nginx-annotated.json" "$T/v1beta1.json" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
pod = r['request']['object']
r['apiVersion'] = 'admission.k8s.io/v1beta1'
r['request']['kind'] = {'group': 'apps', 'version': 'v1', 'kind': 'Deployment'}
r['request']['object'] = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'd'},
                          'spec': {'template': {'metadata': {}, 'spec': pod['spec']}}}
json.dump(r, open(sys.argv[2], 'w'))
EOF2
post "$T/v1beta1.json"
check "v1beta1 Deployment review: answered in v1beta1 with a patch" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["apiVersion"] == "admission.k8s.io/v1beta1" and r["response"]["patchType"] == "JSONPatch", r' "$T/resp.json"

# Malformed, oversized and wrong requests: 4xx with a reason, and the
# injector still answers afterwards.
printf '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {' >"$T/trunc.json"
post "$T/trunc.json"
check "malformed JSON: 400 with the reason" \
  bash -c "[ \"\$(cat '$T/resp.code')\" = 400 ] && grep -q 'malformed JSON' '$T/resp.json'"
printf '{"kind": "Pod"}' >"$T/notreview.json"
post "$T/notreview.json"
check "not an AdmissionReview: 400" \
  bash -c "[ \"\$(cat '$T/resp.code')\" = 400 ] && grep -q 'not an AdmissionReview' '$T/resp.json'"
printf '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"object": {}}}' >"$T/nouid.json"
post "$T/nouid.json"
check "no request.uid: 400" \
  bash -c "[ \"\$(cat '$T/resp.code')\" = 400 ] && grep -q 'uid' '$T/resp.json'"
"$PY" -c 'print("{\"pad\": \"" + "x" * 300000 + "\"}")' >"$T/big.json"
post "$T/big.json"
check "a review over --max-bytes: 413" \
  bash -c "[ \"\$(cat '$T/resp.code')\" = 413 ] && grep -q 'larger than 262144' '$T/resp.json'"
check "GET on the webhook path: 405; /healthz: 200" \
  bash -c "[ \"\$(curl -s --cacert '$T/pki1/cert.pem' -o /dev/null -w '%{http_code}' '$URL')\" = 405 ] &&
    [ \"\$(curl -s --cacert '$T/pki1/cert.pem' -o /dev/null -w '%{http_code}' https://127.0.0.1:$PORT/healthz)\" = 200 ]"
check "plain HTTP and garbage bytes get no answer, and do no harm" \
  bash -c "! curl -s -m 5 http://127.0.0.1:$PORT/mutate -d x >/dev/null; head -c 5000 /dev/urandom | timeout 5 \"$PY\" -c 'import socket,sys; s=socket.create_connection((\"127.0.0.1\",$PORT)); s.sendall(sys.stdin.buffer.read()); s.settimeout(3)
try: s.recv(100)
except Exception: pass' ; true"

# Python's ssl: the name checked against the DNS SAN, a review, and an
# oversized one.
check "Python ssl: the webhook's DNS SAN verifies, a review is answered, oversize is 413" \
  "$PY" - "$T/pki1/cert.pem" "$PORT" "$A/02-pod-create-multi-init.json" <<'EOF2'
import json, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
def call(body):
    raw = socket.create_connection(('127.0.0.1', int(sys.argv[2])))
    s = ctx.wrap_socket(raw, server_hostname='lanyard-injector.lanyard.svc')
    s.sendall(b'POST /mutate HTTP/1.1\r\nHost: lanyard-injector.lanyard.svc\r\n'
              b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    data = b''
    while True:
        try:
            got = s.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not got:
            break
        data += got
    head, _, payload = data.partition(b'\r\n\r\n')
    return int(head.split()[1]), payload
code, payload = call(open(sys.argv[3], 'rb').read())
assert code == 200 and json.loads(payload)['response']['patchType'] == 'JSONPatch'
code, payload = call(b'{"x": "' + b'y' * 400000 + b'"}')
assert code == 413, code
EOF2

# Mangled reviews (random subtrees replaced with values of other types,
# truncations): every one gets 200 or 400, every patch applies to its
# object, and the injector is still there afterwards. Seeded: a failure
# repeats.
check "600 mangled reviews: 200 or 400 each, every patch applies, no crash" \
  "$PY" - "$T/pki1/cert.pem" "$PORT" "$A" <<'EOF2'
import base64, copy, glob, json, random, socket, ssl, sys
import jsonpatch
ctx = ssl.create_default_context(cafile=sys.argv[1])
def call(body):
    raw = socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=15)
    s = ctx.wrap_socket(raw, server_hostname='127.0.0.1')
    s.sendall(b'POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    data = b''
    while True:
        got = s.recv(65536)
        if not got:
            break
        data += got
    s.close()
    head, _, payload = data.partition(b'\r\n\r\n')
    return int(head.split()[1]), payload
reviews = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[3] + '/*.json'))]
values = [None, 0, -1, 1.5, 'x', '', 'http', True, [], {}, [1], ['a'], {'a': 'b'}, [{}], [None], 2**62]
def paths(x, at=()):
    yield at
    if isinstance(x, dict):
        for k, v in x.items():
            yield from paths(v, at + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from paths(v, at + (i,))
rnd = random.Random(12)
for n in range(600):
    r = copy.deepcopy(rnd.choice(reviews))
    for _ in range(rnd.randint(1, 3)):
        ps = [p for p in paths(r) if p]
        p = rnd.choice(ps)
        parent = r
        for k in p[:-1]:
            parent = parent[k]
        if rnd.random() < 0.2 and isinstance(parent, dict):
            del parent[p[-1]]
        else:
            parent[p[-1]] = copy.deepcopy(rnd.choice(values))
    body = json.dumps(r).encode()
    if n % 10 == 0:
        body = body[:rnd.randint(0, len(body))]
    code, payload = call(body)
    assert code in (200, 400), (n, code, payload[:200])
    if code != 200:
        continue
    resp = json.loads(payload)['response']
    if 'patch' in resp:
        patch = json.loads(base64.b64decode(resp['patch']))
        jsonpatch.apply_patch(r['request']['object'], patch)
code, _ = call(json.dumps(reviews[0]).encode())
assert code == 200
EOF2

# Defaults for every pod (the chart's values): the pod's own annotations
# win; a bad default stops the injector at start, naming it.
rc=0
"$LANYARD" injector --listen 127.0.0.1:0 --cert "$T/pki1/cert.pem" --key "$T/pki1/key.pem" \
  --default-annotation lanyard.io/mode=lax >/dev/null 2>"$T/baddef.err" || rc=$?
check "a bad --default-annotation: exit 2, named" \
  bash -c "[ $rc -eq 2 ] && grep -q 'lanyard.io/mode' '$T/baddef.err'"
PORT2=$(free_port)
"$LANYARD" injector --listen "127.0.0.1:$PORT2" --cert "$T/pki1/cert.pem" --key "$T/pki1/key.pem" \
  --default-annotation lanyard.io/mode=permissive --default-annotation lanyard.io/proxy-memory=24Mi \
  >"$T/injector2.log" 2>&1 &
PIDS+=($!)
wait_log "$T/injector2.log" "injector_listening" 10
"$PY" - "$A/02-pod-create-multi-init.json" "$T/strict.json" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
r['request']['object']['metadata'].setdefault('annotations', {})['lanyard.io/mode'] = 'strict'
json.dump(r, open(sys.argv[2], 'w'))
EOF2
for f in "$A/02-pod-create-multi-init.json:permissive" "$T/strict.json:strict"; do
  curl -sS --cacert "$T/pki1/cert.pem" --data-binary @"${f%%:*}" -o "$T/resp2.json" "https://127.0.0.1:$PORT2/mutate"
  check "--default-annotation: $(basename "${f%%:*}") gets mode ${f#*:} and the default memory" "$PY" - "$T/resp2.json" "${f#*:}" <<'EOF2'
import base64, json, sys
p = json.loads(base64.b64decode(json.load(open(sys.argv[1]))['response']['patch']))
agent = [o['value'] for o in p if isinstance(o.get('value'), dict) and o['value'].get('name') == 'lanyard-agent'][0]
env = {e['name']: e.get('value') for e in agent['env']}
assert env['LANYARD_MODE'] == sys.argv[2], env['LANYARD_MODE']
assert agent['resources']['requests']['memory'] == '24Mi'
EOF2
done

# Rotation: new files in place; new connections get the new certificate.
mkcert "$T/pki2" second
cp "$T/pki2/cert.pem" "$T/cert.new" && cp "$T/pki2/key.pem" "$T/key.new"
mv "$T/key.new" "$T/key.pem" && mv "$T/cert.new" "$T/cert.pem"
served_cn() {
  openssl s_client -connect "127.0.0.1:$PORT" -servername lanyard-injector.lanyard.svc </dev/null 2>/dev/null |
    openssl x509 -noout -subject 2>/dev/null
}
rotated=0
for _ in $(seq 1 50); do
  if served_cn | grep -q second; then rotated=1; break; fi
  sleep 0.2
done
check "the serving certificate reloads when the files change" [ "$rotated" -eq 1 ]
check "after the reload, a review verifies against the new certificate" \
  bash -c "[ \"\$(curl -sS --cacert '$T/pki2/cert.pem' -o /dev/null -w '%{http_code}' --data-binary @'$A/02-pod-create-multi-init.json' '$URL')\" = 200 ]"
printf 'not a key\n' >"$T/key.bad" && mv "$T/key.bad" "$T/key.pem"
wait_log "$T/injector.log" "injector_cert_reload_failed" 10 || true
check "a broken key file is logged" grep -q injector_cert_reload_failed "$T/injector.log"
served_cn >"$T/served.txt" || true
check "the last good pair keeps serving" grep -q second "$T/served.txt"

finish
