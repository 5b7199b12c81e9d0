#!/usr/bin/env python3
"""Misbehaving clients of the CA's RPC, for the robustness tests
(standard library only; frames are encoded by hand, independently of the
protobuf-c code under test).

  rpc_attack.py --ca H:P --bundle B pipeline-rst N
      send N TrustBundle calls at once, then reset the connection
  rpc_attack.py --ca H:P --bundle B no-read SECONDS
      send TrustBundle calls for SECONDS without reading any answer
  rpc_attack.py --ca H:P --bundle B --cert C --key K stale-renewal CSR NOT_AFTER
      connect with an SVID whose notAfter is NOT_AFTER (seconds since the
      epoch), make one call to see the CA accept the connection, wait
      until the SVID has expired, then ask for a renewal on the same
      connection; prints the answer's code name
"""
import argparse
import socket
import ssl
import struct
import sys
import time

CODES = {0: "OK", 3: "INVALID_ARGUMENT", 7: "PERMISSION_DENIED",
         8: "RESOURCE_EXHAUSTED", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def frame(call_id, method, body=b""):
    msg = field(1, 0, call_id) + field(2, 2, method.encode()) + field(5, 2, body)
    return struct.pack(">I", len(msg)) + msg


def parse_code(msg):
    """The Frame's code (field 3) and message (field 4)."""
    i, code, text = 0, 0, ""
    while i < len(msg):
        key, i = read_varint(msg, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = read_varint(msg, i)
            if num == 3:
                code = val
        elif wire == 2:
            n, i = read_varint(msg, i)
            if num == 4:
                text = msg[i:i + n].decode(errors="replace")
            i += n
        else:
            break
    return code, text


def read_varint(b, i):
    shift = val = 0
    while True:
        c = b[i]
        i += 1
        val |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return val, i


def connect(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(args.bundle)
    ctx.set_alpn_protocols(["lanyard-ca/1"])
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    host, port = args.ca.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=30)
    # The TLS socket takes over raw's descriptor: raw is closed from here
    # on, and every socket call goes to the returned socket.
    return ctx.wrap_socket(raw)


def read_frame(s):
    """The next answer on s: (code, message)."""
    head = b""
    while len(head) < 4:
        more = s.recv(4 - len(head))
        if not more:
            raise ConnectionError("the CA closed the connection")
        head += more
    n = struct.unpack(">I", head)[0]
    body = b""
    while len(body) < n:
        more = s.recv(n - len(body))
        if not more:
            raise ConnectionError("the CA closed the connection")
        body += more
    return parse_code(body)


def pipeline_rst(args):
    s = connect(args)
    s.sendall(b"".join(frame(i + 1, "TrustBundle") for i in range(args.n)))
    # linger 0: the close is a reset, not a FIN
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return 0


def no_read(args):
    s = connect(args)
    s.settimeout(2)
    batch = b"".join(frame(i + 1, "TrustBundle") for i in range(256))
    end = time.time() + args.seconds
    sent = 0
    while time.time() < end:
        try:
            s.sendall(batch)
            sent += len(batch)
        except (socket.timeout, OSError):
            break  # the server stopped reading: that is the point
    print("sent_bytes=%d" % sent)
    return 0


def stale_renewal(args):
    with open(args.csr, "rb") as f:
        csr = f.read()
    s = connect(args)
    # Under TLS 1.3 the client is done with the handshake before the CA
    # has judged its certificate: an answer on the connection is what
    # shows that the CA accepted it while it was still valid.
    try:
        s.sendall(frame(1, "TrustBundle"))
        code, text = read_frame(s)
    except OSError as e:
        print("setup: the CA did not accept the connection (%s); did the "
              "certificate expire before the handshake? (notAfter in %.1fs)"
              % (e, args.not_after - time.time()))
        return 1
    print("accepted with %.1fs of validity left" % (args.not_after - time.time()))
    # The CA compares whole seconds (expired when now > notAfter), read
    # with time(), which glibc serves from the coarse clock: it can lag
    # this process's clock by a timer tick, so stay clear of the edge.
    expired = args.not_after + 1.5
    while time.time() < expired:
        time.sleep(expired - time.time())
    s.sendall(frame(2, "Sign", field(1, 2, csr)))
    code, text = read_frame(s)
    print("code=%s message=%s" % (CODES.get(code, code), text))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ca", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("pipeline-rst")
    sp.add_argument("n", type=int)
    sp = sub.add_parser("no-read")
    sp.add_argument("seconds", type=float)
    sp = sub.add_parser("stale-renewal")
    sp.add_argument("csr")
    sp.add_argument("not_after", type=int)
    a = p.parse_args()
    return {"pipeline-rst": pipeline_rst, "no-read": no_read,
            "stale-renewal": stale_renewal}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
