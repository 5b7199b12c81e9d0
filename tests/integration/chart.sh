#!/usr/bin/env bash
# charts/lanyard: `helm lint` and `helm template` with the default values
# and with every value changed; every rendered object validated against
# the Kubernetes API schemas; the renderings compared with golden files
# (tests/chart/golden/; LY_UPDATE_GOLDEN=1 rewrites them); bad values
# refused by values.schema.json; the rendered CA config accepted by the
# real CA; and `lanyard ca init --helm-values` feeding the chart.
. "$(dirname "$0")/lib.sh"

tools=$("$LY_SOURCE_DIR/tests/tools/k8s_tools.sh") || exit $?
HELM=$tools/bin/helm
CHART=$LY_SOURCE_DIR/charts/lanyard
DATA=$LY_SOURCE_DIR/tests/chart
TRUST=$DATA/values-trust.yaml
CUSTOM=$DATA/values-custom.yaml

# YAML stream -> JSON array of its objects
to_json() { python3 -c 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))'; }
validate() { node "$LY_SOURCE_DIR/tests/tools/k8s_validate.mjs" "$tools/models"; }
# jq-like access without jq: py EXPR FILE (the objects are `o`, a list)
py() { python3 -c "import json, sys; o = json.load(open(sys.argv[1])); $1" "$2"; }

check "helm is Helm 4 ($("$HELM" version --short))" bash -c "'$HELM' version --short | grep -q '^v4\.'"
check "helm lint, default values" "$HELM" lint --strict "$CHART" -f "$TRUST"
check "helm lint, every value changed" "$HELM" lint --strict "$CHART" -f "$TRUST" -f "$CUSTOM"

render() { # name values...: renders into $T/name.yaml and $T/name.json
  local name=$1; shift
  local args=()
  for f in "$@"; do args+=(-f "$f"); done
  "$HELM" template lanyard "$CHART" --namespace lanyard "${args[@]}" >"$T/$name.yaml" 2>"$T/$name.err" &&
    to_json <"$T/$name.yaml" >"$T/$name.json"
}
check "helm template, default values" render default "$TRUST"
check "helm template, every value changed" render custom "$TRUST" "$CUSTOM"

for r in default custom; do
  if validate <"$T/$r.json" >"$T/$r.valid" 2>&1; then
    ok "every object of the $r rendering validates against the Kubernetes schemas ($(grep -c '^ok' "$T/$r.valid") objects)"
  else
    bad "$r rendering does not validate: $(grep -v '^ok' "$T/$r.valid")"
  fi
  golden=$DATA/golden/$r.yaml
  if [ "${LY_UPDATE_GOLDEN:-}" = 1 ]; then
    cp "$T/$r.yaml" "$golden"
    ok "golden file $golden rewritten"
  elif diff -u "$golden" "$T/$r.yaml" >"$T/$r.diff"; then
    ok "the $r rendering is the golden one"
  else
    bad "the $r rendering differs from $golden (LY_UPDATE_GOLDEN=1 to accept):"
    head -40 "$T/$r.diff"
  fi
done
# the validator is no rubber stamp
py 'o = [d for d in o if d["kind"] == "Deployment"]; o[0]["spec"]["replicas"] = "two"; print(json.dumps(o))' \
  "$T/default.json" >"$T/broken.json"
check "  (a Deployment with replicas: \"two\" does not validate)" bash -c "! node '$LY_SOURCE_DIR/tests/tools/k8s_validate.mjs' '$tools/models' <'$T/broken.json' >/dev/null"

# -- what the objects say
obj() { # kind name expr file
  py "d = [x for x in o if x['kind'] == '$1' and x['metadata']['name'] == '$2'][0]; print($3)" "$4"
}
WH="obj MutatingWebhookConfiguration lanyard-injector-lanyard"
check "webhook: failurePolicy Ignore by default" test "$($WH "d['webhooks'][0]['failurePolicy']" "$T/default.json")" = Ignore
check "  Fail when asked" test "$($WH "d['webhooks'][0]['failurePolicy']" "$T/custom.json")" = Fail
check "  reinvocationPolicy IfNeeded" test "$($WH "d['webhooks'][0]['reinvocationPolicy']" "$T/default.json")" = IfNeeded
check "  only namespaces labelled lanyard.io/inject=enabled, never kube-system nor Lanyard's own" \
  test "$($WH "[(e['key'], e['operator'], e['values']) for e in d['webhooks'][0]['namespaceSelector']['matchExpressions']]" "$T/default.json")" = \
  "[('lanyard.io/inject', 'In', ['enabled']), ('kubernetes.io/metadata.name', 'NotIn', ['kube-system', 'kube-public', 'kube-node-lease', 'lanyard'])]"
$WH "__import__('base64').b64decode(d['webhooks'][0]['clientConfig']['caBundle']).decode()" "$T/default.json" >"$T/cabundle.pem"
python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["trustAnchorsPEM"])' "$TRUST" >"$T/anchors.pem"
check "  caBundle is the trust anchors" bash -c "diff <(openssl x509 -in '$T/cabundle.pem' -noout -fingerprint) <(openssl x509 -in '$T/anchors.pem' -noout -fingerprint)"
check "CA Service: 15012 (RPC) and 15014 (admin)" test "$(obj Service lanyard-ca "[p['port'] for p in d['spec']['ports']]" "$T/default.json")" = "[15012, 15014]"
check "PodDisruptionBudgets keep one CA and one injector through a drain" \
  test "$(py "print(sorted((x['metadata']['name'], x['spec']['minAvailable']) for x in o if x['kind'] == 'PodDisruptionBudget'))" "$T/default.json")" = \
  "[('lanyard-ca', 1), ('lanyard-injector', 1)]"
"$HELM" template lanyard "$CHART" -n lanyard -f "$TRUST" --set ca.replicas=1 >"$T/one.yaml"
check "  but none for a single CA replica (it could never be drained)" \
  bash -c "! grep -A2 'kind: PodDisruptionBudget' '$T/one.yaml' | grep -q 'name: lanyard-ca$'"
check "CA replicas from values" test "$(obj Deployment lanyard-ca "d['spec']['replicas']" "$T/custom.json")" = 3
check "CA replicas share the issuer Secret" test "$(obj Deployment lanyard-ca "[v['secret']['secretName'] for v in d['spec']['template']['spec']['volumes'] if 'secret' in v]" "$T/default.json")" = "['lanyard-ca-issuer']"
check "image from values" test "$(obj Deployment lanyard-injector "d['spec']['template']['spec']['containers'][0]['image']" "$T/custom.json")" = registry.example.com/mesh/lanyard:1.2.3
check "sidecar mode and TTL reach the injector" \
  bash -c "grep -q -- '--mode=permissive' '$T/custom.yaml' && grep -q -- '--ttl=2h' '$T/custom.yaml'"
# The chart and the binary agree: every rendered flag is one `lanyard
# injector` knows (getopt stops at the first unknown one, before --help).
obj Deployment lanyard-injector "'\n'.join(d['spec']['template']['spec']['containers'][0]['args'][1:])" "$T/custom.json" >"$T/inj.args"
check "the injector's rendered args are all flags of \`lanyard injector\`" \
  bash -c "mapfile -t a <'$T/inj.args'; '$LANYARD' injector \"\${a[@]}\" --help >/dev/null"
check "  with --trust-domain and the projected token" \
  bash -c "grep -qx -- '--trust-domain=.*' '$T/inj.args' && grep -qx -- '--token-file=.*' '$T/inj.args'"
check "the CA lets the injector's SVID carry its Service's DNS name" \
  bash -c "grep -A1 'sa/lanyard-injector:' '$T/default.yaml' | grep -q 'lanyard-injector.lanyard.svc'"
check "RBAC: ConfigMap updates only for lanyard-trust-bundle, no Secrets, no TokenReview" \
  bash -c "python3 -c \"import json; o = json.load(open('$T/default.json')); r = [x for x in o if x['kind'] == 'ClusterRole'][0]['rules']; \
assert all(u.get('resourceNames') == ['lanyard-trust-bundle'] for u in r if set(u['verbs']) & {'patch', 'update', 'get'}), r; \
assert not any(res in ('secrets', 'tokenreviews') for u in r for res in u['resources']), r\""

# -- the rendered CA config runs the real CA
mkdir -p "$T/ca"
python3 - "$T/default.json" "$T/ca" <<'PY'
import json, os, sys
objs, out = json.load(open(sys.argv[1])), sys.argv[2]
for o in objs:
    if o["kind"] == "Secret" and o["metadata"]["name"] == "lanyard-ca-issuer":
        for k, v in o["stringData"].items():
            with open(os.path.join(out, k), "w") as f:
                f.write(v)
            os.chmod(os.path.join(out, k), 0o600)
    if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "lanyard-ca-config":
        text = o["data"]["ca.yaml"].replace("/var/run/lanyard/issuer", out).replace("/var/lib/lanyard", out)
        with open(os.path.join(out, "ca.yaml"), "w") as f:
            f.write(text)
PY
check "the rendered ca.yaml and issuer pass \`lanyard ca serve --check\`: $("$LANYARD" ca serve -c "$T/ca/ca.yaml" --check 2>&1 | tr '\n' ' ')" \
  "$LANYARD" ca serve -c "$T/ca/ca.yaml" --check

# -- refusals
if "$HELM" template lanyard "$CHART" -n lanyard >/dev/null 2>"$T/notrust.err"; then
  bad "without trust anchors the chart renders anyway"
else
  check "without trust anchors: a clear error ($(grep -o 'trustAnchorsPEM is required.*' "$T/notrust.err"))" \
    grep -q "trustAnchorsPEM is required: make it with .lanyard ca init" "$T/notrust.err"
fi
refused() { # description --set ...: the schema refuses the value
  local what=$1; shift
  if "$HELM" template lanyard "$CHART" -n lanyard -f "$TRUST" "$@" >/dev/null 2>"$T/refused.err"; then
    bad "values.schema.json accepts $what"
  else
    ok "values.schema.json refuses $what: $(grep -m1 "at '" "$T/refused.err" | sed 's/^ *//')"
  fi
}
refused "failurePolicy: Sometimes" --set injector.failurePolicy=Sometimes
refused "mode: lax" --set proxy.mode=lax
refused "ttl: 1 year" --set proxy.ttl=1y
refused "a misspelled key" --set injector.failurPolicy=Fail
refused "replicas: 0" --set ca.replicas=0
refused "a trust anchor that is not PEM" --set trustAnchorsPEM=hello

# -- lanyard ca init --helm-values feeds the chart
"$LANYARD" ca init --trust-domain mesh.example --helm-values "$T/fresh-values.yaml" >"$T/init.out"
check "ca init --helm-values writes the values file with mode 0600" test "$(stat -c %a "$T/fresh-values.yaml")" = 600
check "  which the chart installs from" render fresh "$T/fresh-values.yaml"
check "  with its trust domain" grep -q "trust_domain: mesh.example" "$T/fresh.yaml"
check "  and whose objects validate" bash -c "node '$LY_SOURCE_DIR/tests/tools/k8s_validate.mjs' '$tools/models' <'$T/fresh.json' >/dev/null"
check "  and it refuses to overwrite it" bash -c "! '$LANYARD' ca init --trust-domain mesh.example --helm-values '$T/fresh-values.yaml' 2>/dev/null"
check "NOTES.txt says the next step (label a namespace)" \
  bash -c "'$HELM' install lanyard '$CHART' -n lanyard -f '$TRUST' --dry-run=client 2>&1 | grep -q 'kubectl label namespace NAMESPACE lanyard.io/inject=enabled'"
finish
