#!/usr/bin/env bash
# `lanyard ca certs`: the CA's inventory lists every certificate it issued,
# newest first, with its root; it survives a CA restart, and its file is
# bounded by inventory.max_entries.
. "$(dirname "$0")/lib.sh"
need_tools jq

TD=example.org
WEB=spiffe://$TD/ns/default/sa/web
ca_setup "$T/ca" "$TD"
printf 'inventory:\n  max_entries: 100\n' >>"$T/ca/ca.yaml"
ca_start "$T/ca"
certs() { "$LANYARD" ca certs -c "$T/ca/ca.yaml" "$@"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }
renew() { # N: renewals of $T/web over mTLS; the last certificate in $T/last.pem
  for _ in $(seq 1 "$1"); do
    "$CA_PROBE" --ca "127.0.0.1:$CA_PORT" --bundle "$T/ca/bundle.pem" --td "$TD" \
      --cert "$T/web/cert.pem" --key "$T/web/key.pem" \
      sign --csr "$T/web/csr.der" --out "$T/last.pem" >/dev/null || return 1
  done
}

svid_for "$WEB" "$T/web"
check "99 renewals over mTLS" renew 99
certs --json >"$T/certs.json"
check "all 100 issuances are listed ($(jq length "$T/certs.json"))" \
  test "$(jq length "$T/certs.json")" -eq 100
check "newest first: the last renewal heads the list" \
  test "$(jq -r '.[0].serial' "$T/certs.json" | sed 's/^0*//')" = "$(serial_of "$T/last.pem")"
check "the join-token issuance is the oldest" \
  test "$(jq -r '.[-1] | .credential + " " + .serial' "$T/certs.json" | sed 's/ 0*/ /')" = \
  "join_token $(serial_of "$T/web/cert.pem")"
check "99 entries say mtls" test "$(jq '[.[] | select(.credential == "mtls")] | length' "$T/certs.json")" -eq 99
root_fp=$(openssl x509 -in "$T/ca/root.pem" -outform DER | sha256sum | cut -d' ' -f1)
int_fp=$(openssl x509 -in "$T/ca/signing.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "every entry names the root and the intermediate that signed it" \
  test "$(jq --arg r "$root_fp" --arg i "$int_fp" \
    '[.[] | select(.root_sha256 == $r and .intermediate_sha256 == $i)] | length' "$T/certs.json")" -eq 100
check "the not_after is the certificate's" \
  test "$(jq -r '.[0].not_after' "$T/certs.json")" = \
  "$(date -d "$(openssl x509 -in "$T/last.pem" -noout -enddate | cut -d= -f2)" +%s)"
check "the table has a row per certificate and the path it read" \
  bash -c "out=\$(\"$LANYARD\" ca certs -c '$T/ca/ca.yaml'); grep -q '^# 100 certificates in .*certs.jsonl' <<<\"\$out\" && test \$(grep -c '$WEB' <<<\"\$out\") -eq 100"

# -- filters
svid_for "spiffe://$TD/ns/batch/sa/job" "$T/job" 60
check "--id selects by prefix" \
  test "$(certs --json --id "spiffe://$TD/ns/batch/" | jq -r '.[].spiffe_id')" = "spiffe://$TD/ns/batch/sa/job"
check "--expiring 2m lists only the 60-second certificate" \
  test "$(certs --json --expiring 2m | jq -r '.[].spiffe_id')" = "spiffe://$TD/ns/batch/sa/job"
check "a bad --expiring is a usage error" bash -c "! \"$LANYARD\" ca certs -c '$T/ca/ca.yaml' --expiring soon 2>/dev/null"

# -- a restart keeps the inventory
ca_stop
ca_start "$T/ca"
check "after a restart the 101 entries are still listed" test "$(certs --json | jq length)" -eq 101
renew 1
check "and the CA appends to them" test "$(certs --json | jq -r '.[0].serial' | sed 's/^0*//')" = "$(serial_of "$T/last.pem")"

# -- the bound: at twice max_entries the file is cut to the newest max
check "98 more renewals" renew 98
lines=$(wc -l <"$T/ca/certs.jsonl")
check "the file stays within 2 x max_entries ($lines lines)" test "$lines" -ge 100 -a "$lines" -lt 200
check "the newest entry survived the compaction" \
  test "$(certs --json | jq -r '.[0].serial' | sed 's/^0*//')" = "$(serial_of "$T/last.pem")"
check "the file is no secret, and not world-writable" test "$(stat -c %a "$T/ca/certs.jsonl")" = 640
finish
