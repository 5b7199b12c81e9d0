#!/usr/bin/env bash
# x509-limbo path-validation cases through `lanyard svid verify
# --chain-only`, each at its own validation time.
#
# The verdict must equal the case's `expected` file (SUCCESS, FAILURE, or
# EITHER for both), which is x509-limbo's own expectation except that a CA
# certificate as the leaf is FAILURE, as for SPIFFE. The core group must
# agree except for the cases listed in differences.tsv, where Lanyard
# differs on purpose and says why; a listed case that agrees again fails
# too, so the table stays true. The other groups (policy, optional-crl,
# optional-maxdepth) are reported, never failed, except for a crash or a
# timeout, which is a bug in any group.
#
# Environment: LANYARD (the binary); LY_TESTDATA (default: tests/data).
# LIMBO_VERBOSE=1 prints every case's output.
set -uo pipefail

: "${LANYARD:?LANYARD must point at the lanyard binary}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
testdata=${LY_TESTDATA:-$here/../data}
limbo=$testdata/x509-limbo
diffs=$here/differences.tsv
[ -f "$limbo/index.tsv" ] || { echo "no x509-limbo data in $limbo"; exit 1; }

T=$(mktemp -d /tmp/lanyard-limbo.XXXXXX)
trap 'rm -rf "$T"' EXIT

# Per case: dir|validation epoch ("" means now)|the EKUs it requires.
# meta.json is JSON, so one python3 pass reads them all.
python3 - "$limbo" >"$T/meta.tsv" <<'PY' || { echo "cannot read meta.json files"; exit 1; }
import json, os, sys
root = sys.argv[1]
with open(os.path.join(root, "index.tsv")) as f:
    rows = [l.rstrip("\n").split("\t") for l in f][1:]
for row in rows:
    d = row[1]
    with open(os.path.join(root, "cases", d, "meta.json")) as f:
        m = json.load(f)
    ekus = set(m.get("extended_key_usage") or [])
    # a SERVER validation asks for serverAuth, a CLIENT one for clientAuth
    kind = m.get("validation_kind")
    if kind == "SERVER":
        ekus.add("serverAuth")
    elif kind == "CLIENT":
        ekus.add("clientAuth")
    ekus &= {"serverAuth", "clientAuth"}
    epoch = m.get("validation_epoch")
    epoch = "" if epoch in (None, "") else str(int(epoch))
    print("|".join([d, epoch, ",".join(sorted(ekus))]))
PY

declare -A listed=() listed_verdict=()
n_listed=0
while IFS=$'\t' read -r id verdict reason; do
  case "$id" in '' | '#'*) continue ;; esac
  listed[$id]=$reason
  listed_verdict[$id]=$verdict
  n_listed=$((n_listed + 1))
done <"$diffs"

declare -A at_of=() eku_of=()
while IFS='|' read -r d epoch ekus; do
  at_of[$d]=$epoch
  eku_of[$d]=$ekus
done <"$T/meta.tsv"

declare -A agree=() total=()
fails=0
informational=()
seen_listed=()

has_cert() { grep -q -- '-----BEGIN CERTIFICATE-----' "$1" 2>/dev/null; }

# run_case DIR: sets VERDICT (SUCCESS, FAILURE, TIMEOUT, ERROR) and OUT
run_case() {
  local c=$limbo/cases/$1
  local args=(svid verify --chain-only --bundle "$c/trusted.pem")
  has_cert "$c/intermediates.pem" && args+=(--untrusted "$c/intermediates.pem")
  [ -n "${at_of[$1]}" ] && args+=(--at "${at_of[$1]}")
  local e
  for e in ${eku_of[$1]//,/ }; do args+=(--eku "$e"); done
  local rc=0
  OUT=$(timeout 5 "$LANYARD" "${args[@]}" "$c/leaf.pem" 2>"$T/err") || rc=$?
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/err"; then
    VERDICT=ERROR
    OUT="$OUT $(head -c 2000 "$T/err")"
    return
  fi
  case $rc in
  0) VERDICT=SUCCESS ;;
  1) VERDICT=FAILURE ;;
  124) VERDICT=TIMEOUT ;;
  *)
    VERDICT=ERROR
    OUT="exit $rc: $OUT $(head -c 500 "$T/err")"
    ;;
  esac
}

while IFS=$'\t' read -r id dir group _rest; do
  [ "$id" = id ] && continue
  expected=$(tr -d ' \n' <"$limbo/cases/$dir/expected")
  run_case "$dir"
  total[$group]=$((${total[$group]:-0} + 1))
  ok=0
  case $expected/$VERDICT in
  EITHER/SUCCESS | EITHER/FAILURE | SUCCESS/SUCCESS | FAILURE/FAILURE) ok=1 ;;
  *) ;;
  esac
  [ "$ok" = 1 ] && agree[$group]=$((${agree[$group]:-0} + 1))
  [ "${LIMBO_VERBOSE:-0}" = 1 ] && echo "     $id: $VERDICT (expected $expected): $OUT"

  if [ "$VERDICT" = TIMEOUT ] || [ "$VERDICT" = ERROR ]; then
    echo "FAIL - $id [$group]: $VERDICT: $OUT"
    fails=$((fails + 1))
    continue
  fi
  if [ "$group" != core ]; then
    [ "$ok" = 1 ] || informational+=("$id [$group]: $VERDICT, x509-limbo expects $expected: $OUT")
    continue
  fi
  if [ -n "${listed[$id]+x}" ]; then
    seen_listed+=("$id")
    if [ "$ok" = 1 ]; then
      echo "FAIL - $id: listed in differences.tsv, but now agrees ($VERDICT); drop it from the table"
      fails=$((fails + 1))
    elif [ "$VERDICT" != "${listed_verdict[$id]}" ]; then
      echo "FAIL - $id: differences.tsv says $id gives ${listed_verdict[$id]}, it gave $VERDICT: $OUT"
      fails=$((fails + 1))
    else
      echo "ok   - $id: differs on purpose ($VERDICT, expected $expected): ${listed[$id]}"
    fi
  elif [ "$ok" != 1 ]; then
    echo "FAIL - $id: $VERDICT, expected $expected: $OUT"
    fails=$((fails + 1))
  fi
done <"$limbo/index.tsv"

# a row for a case that is not in the core group is a typo or stale
for id in "${!listed[@]}"; do
  found=0
  for s in "${seen_listed[@]:-}"; do [ "$s" = "$id" ] && found=1; done
  if [ "$found" = 0 ]; then
    echo "FAIL - differences.tsv lists $id, which is not a core case"
    fails=$((fails + 1))
  fi
done

if [ "${#informational[@]}" -gt 0 ]; then
  echo "informational (not failures): outside the core group, Lanyard differs on"
  printf '     %s\n' "${informational[@]}"
fi
for g in core policy optional-crl optional-maxdepth; do
  [ -n "${total[$g]+x}" ] && echo "group $g: ${agree[$g]:-0}/${total[$g]} agree"
done
echo "differences.tsv: $n_listed deliberate differences in the core group"
if [ "$fails" -ne 0 ]; then
  echo "x509-limbo: $fails failed"
  exit 1
fi
echo "x509-limbo: core group passes"
