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

finish
