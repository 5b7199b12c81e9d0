#!/usr/bin/env python3
"""Test keys, JWKS documents and JWTs, made with the openssl CLI.

Signatures come from OpenSSL, not from the library under test, so tests
check Lanyard's verifier against an independent signer. Only the Python
standard library, the `openssl` command and its libcrypto are needed.

  mkjwt.py keygen --type rsa|ec [--bits 2048] --out key.pem
  mkjwt.py pubkey --key key.pem --out pub.pem
  mkjwt.py jwks --out jwks.json key1.pem:kid1 key2.pem ...
  mkjwt.py sign --key key.pem [--kid k1] --alg RS256|ES256|HS256|none
                --iss ISS --aud AUD [--aud AUD2] [--ns default --sa web]
                --exp-in 3600 [--nbf-in N] [--no-k8s-claim] ... [--out F]
                [--count N] [--leading-zeros R[:S]]
  mkjwt.py batch FILE      (one of the commands above per line)

`sign` prints the JWT on stdout (or writes it to --out; --count N: N
tokens, one a line, each with its own claims and signature). Times are
relative to --now (default: the current time). The Kubernetes-shaped
claims follow a projected service-account token; --claims/--header merge
raw JSON over them. --leading-zeros signs again until the signature has
that shape (ES256: r and s each), for the verifier's edge cases.
"""

import argparse
import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import shlex
import subprocess
import sys
import time
import uuid

OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
# DigestInfo for SHA-256 up to the hash (RFC 8017 9.2, note 1)
SHA256_DIGESTINFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def openssl(*args, data=None):
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True)
    if proc.returncode != 0:
        sys.exit("openssl %s failed: %s"
                 % (" ".join(args), proc.stderr.decode(errors="replace")))
    return proc.stdout


# ---- a minimal DER reader (SubjectPublicKeyInfo, ECDSA-Sig-Value) ----------

def der_read(buf, pos):
    """Returns (tag, content, next_pos) for the TLV at pos."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        nbytes = length & 0x7F
        length = int.from_bytes(buf[pos:pos + nbytes], "big")
        pos += nbytes
    return tag, buf[pos:pos + length], pos + length


def der_children(content):
    out, pos = [], 0
    while pos < len(content):
        tag, value, pos = der_read(content, pos)
        out.append((tag, value))
    return out


def der_oid(value):
    first = value[0]
    parts = [first // 40, first % 40]
    n = 0
    for b in value[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(n)
            n = 0
    return ".".join(str(p) for p in parts)


def der_uint(value):
    return value.lstrip(b"\x00") or b"\x00"


def public_numbers(key_path):
    """('RSA', n, e) or ('EC', x, y) as big-endian bytes."""
    der = openssl("pkey", "-in", key_path, "-pubout", "-outform", "DER")
    _, spki, _ = der_read(der, 0)
    (_, alg), (_, bits) = der_children(spki)
    alg_parts = der_children(alg)
    oid = der_oid(alg_parts[0][1])
    key = bits[1:]  # skip the unused-bits byte
    if oid == OID_RSA:
        _, seq, _ = der_read(key, 0)
        (_, n), (_, e) = der_children(seq)
        return "RSA", der_uint(n), der_uint(e)
    if oid == OID_EC:
        if der_oid(alg_parts[1][1]) != OID_P256:
            sys.exit("%s: only P-256 EC keys are supported" % key_path)
        if key[0] != 4 or len(key) != 65:
            sys.exit("%s: expected an uncompressed point" % key_path)
        return "EC", key[1:33], key[33:65]
    sys.exit("%s: unsupported key type %s" % (key_path, oid))


def jwk(key_path, kid, zero_pad=False):
    kind, a, b = public_numbers(key_path)
    if kind == "RSA":
        if zero_pad:
            a, b = b"\x00" + a, b"\x00" + b
        out = {"kty": "RSA", "use": "sig", "alg": "RS256",
               "n": b64url(a), "e": b64url(b)}
    else:
        out = {"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256",
               "x": b64url(a), "y": b64url(b)}
    if kid:
        out["kid"] = kid
    return out


# ---- signing --------------------------------------------------------------

# Signing runs in libcrypto through ctypes: bulk and shaped tokens need
# thousands of signatures, and one `openssl` process each takes minutes.

_libcrypto = None
_signers = {}


def libcrypto():
    global _libcrypto
    if _libcrypto is None:
        lib = ctypes.CDLL(ctypes.util.find_library("crypto") or
                          "libcrypto.so.3")
        p, i, buf = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        for name, res, argtypes in (
                ("BIO_new_mem_buf", p, [buf, i]),
                ("BIO_free", i, [p]),
                ("PEM_read_bio_PrivateKey", p, [p, p, p, p]),
                ("EVP_get_digestbyname", p, [buf]),
                ("EVP_PKEY_CTX_new", p, [p, p]),
                ("EVP_PKEY_sign_init", i, [p]),
                ("EVP_PKEY_CTX_set_signature_md", i, [p, p]),
                ("EVP_PKEY_sign", i, [p, buf, ctypes.POINTER(ctypes.c_size_t),
                                      buf, ctypes.c_size_t])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, argtypes
        _libcrypto = lib
    return _libcrypto


def signer(key_path, digest):
    """A function that signs bytes as `openssl dgst -DIGEST -sign` does or,
    digest None, signs them as given, like `openssl pkeyutl -sign`. Keys
    stay loaded for the life of the process."""
    if (key_path, digest) in _signers:
        return _signers[key_path, digest]
    lib = libcrypto()
    with open(key_path, "rb") as f:
        pem = f.read()
    bio = lib.BIO_new_mem_buf(pem, len(pem))
    pkey = lib.PEM_read_bio_PrivateKey(bio, None, None, None)
    lib.BIO_free(bio)
    ctx = pkey and lib.EVP_PKEY_CTX_new(pkey, None)
    ok = ctx and lib.EVP_PKEY_sign_init(ctx) == 1
    if ok and digest:
        md = lib.EVP_get_digestbyname(digest.encode())
        ok = md and lib.EVP_PKEY_CTX_set_signature_md(ctx, md) == 1
    if not ok:
        sys.exit("%s: cannot sign with this key" % key_path)
    out = ctypes.create_string_buffer(2048)

    def sign(data):
        tbs = hashlib.new(digest, data).digest() if digest else data
        n = ctypes.c_size_t(len(out))
        if lib.EVP_PKEY_sign(ctx, out, ctypes.byref(n), tbs, len(tbs)) != 1:
            sys.exit("%s: signing failed" % key_path)
        return out.raw[:n.value]

    _signers[key_path, digest] = sign
    return sign


def sign_openssl(key_path, data, digest="sha256", encoded=None):
    """Signs with OpenSSL, or, given `encoded` (prefix, suffix), pads
    prefix || hash || suffix with PKCS #1 v1.5 type 1 as is, so tests can
    forge DigestInfo variants."""
    if encoded is not None:
        prefix, suffix = encoded
        tbs = prefix + hashlib.new(digest, data).digest() + suffix
        return signer(key_path, None)(tbs)
    return signer(key_path, digest)(data)


def ecdsa_der_to_raw(der):
    _, seq, _ = der_read(der, 0)
    (_, r), (_, s) = der_children(seq)
    r, s = r.lstrip(b"\x00"), s.lstrip(b"\x00")
    return r.rjust(32, b"\x00") + s.rjust(32, b"\x00")


def is_short(value, zeros):
    """True if value starts with `zeros` zero bytes and then a byte below
    0x80: its minimal (DER INTEGER) form is `zeros` bytes shorter."""
    return zeros == 0 or (value[:zeros] == bytes(zeros) and
                          len(value) > zeros and value[zeros] < 0x80)


def has_shape(alg, sig, zeros):
    if alg == "ES256":
        return is_short(sig[:32], zeros[0]) and is_short(sig[32:], zeros[1])
    return is_short(sig, zeros[0])


def signature(args, signing_input):
    alg = args.alg
    if alg == "none":
        return b""
    if alg == "HS256":
        if not args.hmac_secret_file:
            sys.exit("HS256 needs --hmac-secret-file")
        with open(args.hmac_secret_file, "rb") as f:
            secret = f.read()
        return hmac.new(secret, signing_input, hashlib.sha256).digest()
    if not args.key:
        sys.exit("%s needs --key" % alg)
    encoded = None
    if args.rsa_raw_hash:
        encoded = (b"", b"")
    elif args.rsa_digestinfo is not None or args.rsa_trailer:
        prefix = (SHA256_DIGESTINFO if args.rsa_digestinfo is None
                  else bytes.fromhex(args.rsa_digestinfo))
        encoded = (prefix, bytes.fromhex(args.rsa_trailer or ""))
    sig = sign_openssl(args.key, signing_input, args.digest, encoded)
    if alg == "ES256" and not args.es256_der:
        sig = ecdsa_der_to_raw(sig)
    return sig


def claims(args):
    now = int(args.now if args.now is not None else time.time())
    out = {}
    if args.aud:
        out["aud"] = args.aud[0] if args.aud_string else list(args.aud)
    if args.exp_in is not None:
        out["exp"] = now + args.exp_in
    out["iat"] = now
    if args.iss:
        out["iss"] = args.iss
    if not args.no_k8s_claim:
        out["kubernetes.io"] = {
            "namespace": args.ns,
            "pod": {"name": args.pod, "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": args.sa, "uid": str(uuid.uuid4())},
        }
    if args.nbf_in is not None:
        out["nbf"] = now + args.nbf_in
    if args.sub is not None:
        if args.sub:
            out["sub"] = args.sub
    else:
        out["sub"] = "system:serviceaccount:%s:%s" % (args.ns, args.sa)
    if args.claims:
        out.update(json.loads(args.claims))
    return out


def token(args):
    header = {"alg": args.alg}
    if args.kid:
        header["kid"] = args.kid
    if args.header:
        header.update(json.loads(args.header))
    enc = lambda o: b64url(json.dumps(o, separators=(",", ":")).encode())
    if args.payload_raw is not None:
        payload = b64url(args.payload_raw.encode())
    else:
        payload = enc(claims(args))
    signing_input = (enc(header) + "." + payload).encode("ascii")
    sig = signature(args, signing_input)
    if args.leading_zeros and not has_shape(args.alg, sig, args.leading_zeros):
        return None
    return signing_input.decode("ascii") + "." + b64url(sig)


def cmd_sign(args):
    if args.leading_zeros and (args.alg not in ("ES256", "RS256") or
                               args.es256_der or args.payload_raw is not None):
        sys.exit("--leading-zeros: ES256 or RS256 signatures of fresh claims")
    jwts, tries = [], 0
    while len(jwts) < args.count:
        # Signing again until the shape comes up: ECDSA signatures are
        # random, and RSA ones change with the claims (fresh uids).
        tries += 1
        if tries > 1 << 24:
            sys.exit("no signature of the wanted shape in %d tries" % tries)
        jwt = token(args)
        if jwt is not None:
            jwts.append(jwt)
    if args.out:
        with open(args.out, "w") as f:
            f.write("".join(j + "\n" for j in jwts))
    else:
        print("\n".join(jwts))


def cmd_keygen(args):
    if args.type == "rsa":
        out = openssl("genpkey", "-algorithm", "RSA",
                      "-pkeyopt", "rsa_keygen_bits:%d" % args.bits)
    else:
        out = openssl("genpkey", "-algorithm", "EC",
                      "-pkeyopt", "ec_paramgen_curve:P-256")
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(out)


def cmd_pubkey(args):
    with open(args.out, "wb") as f:
        f.write(openssl("pkey", "-in", args.key, "-pubout"))


def cmd_jwks(args):
    keys = []
    for spec in args.keys:
        path, _, kid = spec.partition(":")
        keys.append(jwk(path, kid, args.zero_pad))
    with open(args.out, "w") as f:
        json.dump({"keys": keys}, f, indent=2)
        f.write("\n")


def cmd_batch(args):
    parser = make_parser()
    with open(args.file) if args.file != "-" else sys.stdin as f:
        for lineno, line in enumerate(f, 1):
            words = shlex.split(line, comments=True)
            if not words:
                continue
            sub = parser.parse_args(words)
            if sub.cmd == "batch":
                sys.exit("%s:%d: batches do not nest" % (args.file, lineno))
            run(sub)


def zeros_arg(text):
    r, _, s = text.partition(":")
    return int(r), int(s or 0)


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    k = sub.add_parser("keygen", help="create an RSA or P-256 private key")
    k.add_argument("--type", choices=["rsa", "ec"], required=True)
    k.add_argument("--bits", type=int, default=2048, help="RSA modulus size")
    k.add_argument("--out", required=True)
    k.set_defaults(func=cmd_keygen)

    k = sub.add_parser("pubkey", help="write a key's public half (PEM)")
    k.add_argument("--key", required=True)
    k.add_argument("--out", required=True)
    k.set_defaults(func=cmd_pubkey)

    k = sub.add_parser("jwks", help="write a JWKS for keys (PATH[:KID] ...)")
    k.add_argument("--out", required=True)
    k.add_argument("--zero-pad", action="store_true",
                   help="RSA: a zero byte before n and e, as some encoders "
                   "write them")
    k.add_argument("keys", nargs="+", metavar="PATH[:KID]")
    k.set_defaults(func=cmd_jwks)

    k = sub.add_parser("sign", help="print a signed JWT")
    k.add_argument("--key", help="private key PEM (RS256, ES256)")
    k.add_argument("--kid", help="key id for the header (default: none)")
    k.add_argument("--alg", default="RS256",
                   choices=["RS256", "ES256", "HS256", "none"])
    k.add_argument("--iss",
                   default="https://kubernetes.default.svc.cluster.local")
    k.add_argument("--aud", action="append",
                   help="audience; repeat for several (default: lanyard-ca)")
    k.add_argument("--aud-string", action="store_true",
                   help="emit the first audience as a string, not an array")
    k.add_argument("--ns", default="default", help="namespace")
    k.add_argument("--sa", default="web", help="service account name")
    k.add_argument("--pod", default="web-0", help="pod name")
    k.add_argument("--sub", help="sub claim (default: derived from ns/sa; "
                   "empty string: none)")
    k.add_argument("--now", type=int, help="base time, unix seconds")
    k.add_argument("--exp-in", type=int, default=3600,
                   help="exp relative to now, seconds")
    k.add_argument("--no-exp", action="store_true", help="omit exp")
    k.add_argument("--nbf-in", type=int, help="nbf relative to now")
    k.add_argument("--no-k8s-claim", action="store_true",
                   help="omit the kubernetes.io claim")
    k.add_argument("--claims", help="JSON object merged over the claims")
    k.add_argument("--header", help="JSON object merged over the header")
    k.add_argument("--hmac-secret-file",
                   help="HS256 secret (e.g. a public key PEM)")
    k.add_argument("--payload-raw",
                   help="sign these bytes as the payload instead of claims")
    k.add_argument("--digest", default="sha256",
                   choices=["sha256", "sha384", "sha512"],
                   help="hash to sign with, whatever --alg says")
    k.add_argument("--rsa-raw-hash", action="store_true",
                   help="RSA: pad the bare hash, without a DigestInfo")
    k.add_argument("--rsa-digestinfo", metavar="HEX",
                   help="RSA: this DER prefix before the hash instead of "
                   "SHA-256's DigestInfo")
    k.add_argument("--rsa-trailer", metavar="HEX",
                   help="RSA: bytes to sign after the hash")
    k.add_argument("--es256-der", action="store_true",
                   help="leave the ES256 signature in DER (invalid JWS)")
    k.add_argument("--leading-zeros", metavar="R[:S]", type=zeros_arg,
                   help="sign until the signature (ES256: r, then s) "
                   "starts with R (S) zero bytes then a byte below 0x80")
    k.add_argument("--count", type=int, default=1,
                   help="this many tokens, one a line")
    k.add_argument("--out", help="write the JWT here instead of stdout")
    k.set_defaults(func=cmd_sign)

    k = sub.add_parser("batch", help="run one mkjwt command per line of "
                       "FILE ('-': stdin) in one process")
    k.add_argument("file", metavar="FILE")
    k.set_defaults(func=cmd_batch)
    return p


def run(args):
    if args.cmd == "sign":
        if not args.aud:
            args.aud = ["lanyard-ca"]
        if args.no_exp:
            args.exp_in = None
    args.func(args)


def main():
    run(make_parser().parse_args())


if __name__ == "__main__":
    main()
