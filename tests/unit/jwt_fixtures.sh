#!/usr/bin/env bash
# Generates the keys, JWKS documents and tokens test_jwt reads, with
# OpenSSL through tests/tools/mkjwt.py.
#
# usage: jwt_fixtures.sh OUTDIR
# Every token is minted at NOW (test_jwt verifies at the same instant), so
# the expected outcome of each case does not depend on the clock.
set -euo pipefail

out=$1
src=${LY_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
py=${PYTHON3:-python3}
mk() { "$py" "$src/tests/tools/mkjwt.py" "$@"; }

NOW=1700000000

mkdir -p "$out"
cd "$out"
rm -f ./*.jwt ./*.json ./*.batch

# Keys are kept between runs (RSA generation is the slow part); every
# document and token below is made afresh.
key() {
  local file=$1
  shift
  [ -s "$file" ] || mk keygen "$@" --out "$file"
}
key rsa.pem --type rsa
key ec.pem --type ec
key other_rsa.pem --type rsa
key other_ec.pem --type ec
key weak_rsa.pem --type rsa --bits 1024
key rsa4096.pem --type rsa --bits 4096
# a modulus that is not a whole number of bytes: signatures start below 0x10
key rsa2052.pem --type rsa --bits 2052
mk pubkey --key rsa.pem --out rsa_pub.pem

mk jwks --out jwks.json rsa.pem:rsa1 ec.pem:ec1 rsa4096.pem:rsa4096 \
  rsa2052.pem:rsa2052
mk jwks --out jwks_zero_pad.json --zero-pad rsa.pem:rsa1
mk jwks --out jwks_weak.json rsa.pem:rsa1 weak_rsa.pem:weak
mk jwks --out jwks_two_rsa.json rsa.pem:rsa1 other_rsa.pem:rsa2
mk jwks --out jwks_nokid.json rsa.pem

# name, then mkjwt.py sign arguments; all signed by one process at the end
batch=tokens.batch
: >"$batch"
tok() {
  local name=$1
  shift
  printf '%q ' sign --now "$NOW" --out "$name.jwt" "$@" >>"$batch"
  echo >>"$batch"
}

tok rs256_ok --key rsa.pem --kid rsa1 --alg RS256
tok es256_ok --key ec.pem --kid ec1 --alg ES256
tok rs256_4096 --key rsa4096.pem --kid rsa4096 --alg RS256
tok aud_string --key rsa.pem --kid rsa1 --aud lanyard-ca --aud-string
tok aud_multi --key ec.pem --kid ec1 --alg ES256 --aud other --aud lanyard-ca
tok wrong_aud --key rsa.pem --kid rsa1 --aud someone-else
tok wrong_aud_string --key rsa.pem --kid rsa1 --aud lanyard --aud-string
tok wrong_iss --key rsa.pem --kid rsa1 --iss https://evil.example
tok expired --key rsa.pem --kid rsa1 --exp-in -3600
tok expired_leeway --key rsa.pem --kid rsa1 --exp-in -10
tok no_exp --key rsa.pem --kid rsa1 --no-exp
tok nbf_future --key ec.pem --kid ec1 --alg ES256 --nbf-in 3600
tok nbf_leeway --key ec.pem --kid ec1 --alg ES256 --nbf-in 10
tok nbf_past --key ec.pem --kid ec1 --alg ES256 --nbf-in -10
tok other_key --key other_rsa.pem --kid rsa1
tok other_ec_key --key other_ec.pem --kid ec1 --alg ES256
tok unknown_kid --key rsa.pem --kid nope
tok no_kid --key rsa.pem
tok alg_none --kid rsa1 --alg none
tok hs256_confusion --kid rsa1 --alg HS256 --hmac-secret-file rsa_pub.pem
tok hs256_nokid --alg HS256 --hmac-secret-file rsa_pub.pem
tok es256_on_rsa_kid --key ec.pem --kid rsa1 --alg ES256
tok rs256_on_ec_kid --key rsa.pem --kid ec1 --alg RS256
tok es256_der_sig --key ec.pem --kid ec1 --alg ES256 --es256-der
tok crit --key rsa.pem --kid rsa1 --header '{"crit":["exp"],"exp":1}'
tok sub_fallback --key rsa.pem --kid rsa1 --no-k8s-claim --ns prod --sa api
tok no_identity --key rsa.pem --kid rsa1 --no-k8s-claim --sub ''
tok sub_other --key rsa.pem --kid rsa1 --no-k8s-claim --sub alice
tok sub_mismatch --key rsa.pem --kid rsa1 \
  --sub system:serviceaccount:kube-system:admin
tok k8s_malformed --key rsa.pem --kid rsa1 \
  --claims '{"kubernetes.io":{"namespace":"default"}}'
tok bad_ns --key rsa.pem --kid rsa1 --ns 'a/b' --sa web
tok weak --key weak_rsa.pem --kid weak
tok rs2 --key other_rsa.pem --kid rsa2
tok payload_not_json --key rsa.pem --kid rsa1 --payload-raw 'not json'
tok payload_array --key rsa.pem --kid rsa1 --payload-raw '[1,2]'
tok payload_dup --key rsa.pem --kid rsa1 \
  --payload-raw '{"iss":"https://kubernetes.default.svc.cluster.local","aud":"lanyard-ca","exp":1700003600,"sub":"system:serviceaccount:default:web","sub":"system:serviceaccount:kube-system:admin"}'
tok exp_string --key rsa.pem --kid rsa1 --claims '{"exp":"1700003600"}'
tok exp_real --key rsa.pem --kid rsa1 --claims '{"exp":1700003600.5}'
# RSA signatures whose DigestInfo names another hash, or is missing
tok rs256_sha512 --key rsa.pem --kid rsa1 --digest sha512
tok rs256_no_digestinfo --key rsa.pem --kid rsa1 --rsa-raw-hash
# SHA3-256's OID: same length as SHA-256's DigestInfo
tok rs256_sha3_oid --key rsa.pem --kid rsa1 \
  --rsa-digestinfo 3031300d060960864801650304020805000420
# parameters absent instead of NULL; or a byte after the hash
tok rs256_no_null --key rsa.pem --kid rsa1 \
  --rsa-digestinfo 302f300b06096086480165030402010420
tok rs256_trailer --key rsa.pem --kid rsa1 --rsa-trailer 00
# the standard encoding made by hand: must verify like rs256_ok
tok rs256_manual --key rsa.pem --kid rsa1 \
  --rsa-digestinfo 3031300d060960864801650304020105000420
tok es256_sha384 --key ec.pem --kid ec1 --alg ES256 --digest sha384
tok rs256_2052 --key rsa2052.pem --kid rsa2052
# Signatures whose numbers start with a zero byte and then one below 0x80,
# so that their DER INTEGER is a byte shorter: one ES256 signature in 256
# has such an r or s, one RS256 signature in 512 starts so.
tok es256_r_short --key ec.pem --kid ec1 --alg ES256 --leading-zeros 1:0
tok es256_s_short --key ec.pem --kid ec1 --alg ES256 --leading-zeros 0:1
tok rs256_short --key rsa.pem --kid rsa1 --leading-zeros 1
# Whatever comes up, many times over: one valid token a line
tok es256_many --key ec.pem --kid ec1 --alg ES256 --count 4096
tok rs256_many --key rsa.pem --kid rsa1 --count 512

mk batch "$batch"

# Rarer shapes cost hundreds of thousands of signatures, so they were
# made once, with a key whose x also starts with a zero byte, and are
# kept in jwt_vectors/ with its public JWKS (the private key is gone):
#   mkjwt.py sign --now 1700000000 --key K --kid es256-vectors --alg ES256
#     --leading-zeros 1:1 (es256_rs_short), 2:0 (es256_r2_short), 0:2 ...
cp "$src"/tests/unit/jwt_vectors/* .
