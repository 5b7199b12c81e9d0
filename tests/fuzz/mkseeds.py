#!/usr/bin/env python3
"""Writes the fuzz_frame and fuzz_token seeds of tests/fuzz/corpus/.

The other seeds are plain files made once with the openssl CLI and
tests/tools/mkjwt.py: CSRs (`openssl req`, P-256 and P-384 with a SPIFFE
URI SAN, and one refused for cA), a leaf signed by a `lanyard ca init`
intermediate (chain.pem, and the same chain in DER), JWTs signed at
1700000000 by the keys of fuzz_jwt/jwks.json (also embedded in
fuzz_jwt.c), and ca.yaml / agent.yaml as README.md documents them.

  mkseeds.py CORPUS_DIR CSR.der [JWT]
"""

import base64
import hashlib
import hmac
import os
import struct
import sys

# The secret fuzz_token.c verifies with: bytes 0, 1, ..., 31.
SECRET = bytes(range(32))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token(pattern, expiry):
    head = "lyt1.%s.%d" % (b64url(pattern.encode()), expiry)
    mac = hmac.new(SECRET, head.encode(), hashlib.sha256).digest()
    return "%s.%s" % (head, b64url(mac))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def frame(call_id, method, body, code=0, message=""):
    f = field(1, call_id) + field(2, method)
    if code:
        f += field(3, code)
    if message:
        f += field(4, message)
    f += field(5, body)
    return struct.pack(">I", len(f)) + f


def write(path, data):
    with open(path, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def main():
    corpus, csr_file, jwts = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(csr_file, "rb") as fh:
        csr = fh.read()
    jwt = open(jwts[0]).read().strip() if jwts else "a.b.c"

    d = os.path.join(corpus, "fuzz_token")
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "exact"),
          token("spiffe://example.org/ns/default/sa/web", 1800000000))
    write(os.path.join(d, "prefix"),
          token("spiffe://example.org/ns/default/*", 1800000000))
    write(os.path.join(d, "expired"),
          token("spiffe://example.org/a", 1600000000))

    d = os.path.join(corpus, "fuzz_frame")
    os.makedirs(d, exist_ok=True)
    tok = token("spiffe://example.org/ns/default/sa/web", 1800000000)
    sign_join = field(1, csr) + field(2, tok) + field(4, 3600)
    sign_k8s = field(1, csr) + field(3, jwt)
    write(os.path.join(d, "sign_join"), frame(1, "Sign", sign_join))
    write(os.path.join(d, "sign_k8s"), frame(2, "Sign", sign_k8s))
    write(os.path.join(d, "sign_renew"), frame(3, "Sign", field(1, csr)))
    # two frames back to back, and an error response
    write(os.path.join(d, "two_frames"),
          frame(4, "TrustBundle", b"") + frame(5, "Sign", sign_join))
    write(os.path.join(d, "error"),
          frame(6, "Sign", b"", code=7, message="permission denied"))


if __name__ == "__main__":
    main()
