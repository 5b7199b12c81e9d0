#!/usr/bin/env python3
"""Misbehaving clients of the agent's admin HTTP server, for the
integration tests (standard library only). Prints what the server did;
the calling test asserts on it. Exits 0 when the attack ran, 1 when it
could not connect, 2 on a usage error.

  http_attack.py HOST PORT MODE [ARG]

Modes printing the status code received, or "closed" when the server
closed without a response ("invalid" for bytes that are not HTTP):
  garbage        0x16 (as TLS would start) and random binary bytes, then
                 "\\r\\n\\r\\n"                                           (400)
  bigheader      a 1 MiB header field; the server may close mid-send (431)
  badline        "GET /healthz HTTP/9.9"                                (505)
  barelf         a request with bare LF line ends                       (400)
  absolute       "GET http://x/healthz HTTP/1.1"                        (400)
  longpath       a 9 KiB path                                           (414)
  te             POST with Transfer-Encoding: chunked                   (501)
  smuggle        POST with both Content-Length and Transfer-Encoding    (501)
  dupcl          POST with two Content-Length fields                    (400)
  bigbody        POST with Content-Length: 2000                         (413)
  bodyless-post  POST without Content-Length (no body: the handler's answer)
  post           POST with a 5-byte body (the handler's answer)
  nohost         HTTP/1.1 without Host                                  (400)
  http10         "GET /healthz HTTP/1.0" without Host (the handler's answer)
Modes printing the status and the body bytes received ("200 3"):
  get PATH, head PATH
Modes printing the status and the seconds until the server answered or
closed ("408 10.0"):
  drip           the request one byte every 0.5 s, for up to 40 s
  idle           connects and sends nothing, waits up to 40 s
  shortbody      POST announcing 5 body bytes, sending 2, waits up to 40 s
Other:
  many N         opens N connections at once, holds them 2 s, prints how
                 many the server kept open (it closes those over its limit)
"""
import os
import re
import select
import socket
import sys
import time

TIMEOUT = 30.0


def connect(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s):
    """Everything until the server closes (or resets, or goes silent)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def status(data):
    if not data:
        return "closed"
    m = re.match(rb"HTTP/1\.[01] ([0-9]{3}) ", data)
    return m.group(1).decode() if m else "invalid"


def body_len(data):
    i = data.find(b"\r\n\r\n")
    return 0 if i < 0 else len(data) - i - 4


def send(s, payload):
    """Sends what it can: a server that answers early may close on us."""
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass


def exchange(host, port, payload):
    s = connect(host, port)
    send(s, payload)
    data = read_all(s)
    s.close()
    return data


def slow(host, port, payload, interval, limit):
    """Sends payload one byte per interval, stopping when the server
    answers or closes; returns (data, seconds until then)."""
    s = connect(host, port)
    start = time.monotonic()
    answered = None
    i = 0
    while time.monotonic() - start < limit:
        if i < len(payload):
            try:
                s.send(payload[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                answered = time.monotonic() - start
                break
            i += 1
        wait = interval if i < len(payload) else limit
        wait = min(wait, max(0.0, limit - (time.monotonic() - start)))
        r, _, _ = select.select([s], [], [], wait)
        if r:
            answered = time.monotonic() - start
            break
    data = read_all(s) if answered is not None else b""
    s.close()
    if answered is None:
        answered = time.monotonic() - start
    return data, answered


def many(host, port, n):
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, port), timeout=5))
        except OSError:
            pass
    time.sleep(2)
    kept = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1):
                kept += 1  # accepted, and already answered
        except BlockingIOError:
            kept += 1  # accepted, still waiting for a request
        except OSError:
            pass  # reset: refused
    for s in socks:
        s.close()
    return kept


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, mode = argv[1], int(argv[2]), argv[3]
    arg = argv[4] if len(argv) > 4 else None
    h = b"Host: x\r\n"
    simple = {
        # not a token byte first, so never a 501 by chance
        "garbage": b"\x16" + os.urandom(511) + b"\r\n\r\n",
        "bigheader": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * (1 << 20) + b"\r\n\r\n",
        "badline": b"GET /healthz HTTP/9.9\r\n\r\n",
        "barelf": b"GET /healthz HTTP/1.1\nHost: x\n\n",
        "absolute": b"GET http://x/healthz HTTP/1.1\r\n" + h + b"\r\n",
        "longpath": b"GET /" + b"p" * 9216 + b" HTTP/1.1\r\n" + h + b"\r\n",
        "te": b"POST /healthz HTTP/1.1\r\n" + h
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "smuggle": b"POST /healthz HTTP/1.1\r\n" + h + b"Content-Length: 5\r\n"
        + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "dupcl": b"POST /healthz HTTP/1.1\r\n" + h + b"Content-Length: 5\r\n"
        + b"Content-Length: 5\r\n\r\nhello",
        "bigbody": b"POST /healthz HTTP/1.1\r\n" + h
        + b"Content-Length: 2000\r\n\r\n" + b"b" * 2000,
        "bodyless-post": b"POST /healthz HTTP/1.1\r\n" + h + b"\r\n",
        "post": b"POST /healthz HTTP/1.1\r\n" + h
        + b"Content-Length: 5\r\n\r\nhello",
        "nohost": b"GET /healthz HTTP/1.1\r\n\r\n",
        "http10": b"GET /healthz HTTP/1.0\r\n\r\n",
    }
    try:
        if mode in simple:
            print(status(exchange(host, port, simple[mode])))
        elif mode in ("get", "head") and arg:
            req = "%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (mode.upper(), arg)
            data = exchange(host, port, req.encode())
            print(status(data), body_len(data))
        elif mode == "drip":
            payload = b"GET /healthz HTTP/1.1\r\n" + b"X-Drip: a\r\n" * 10
            data, secs = slow(host, port, payload, 0.5, 40.0)
            print(status(data), "%.1f" % secs)
        elif mode == "idle":
            data, secs = slow(host, port, b"", 0.5, 40.0)
            print(status(data), "%.1f" % secs)
        elif mode == "shortbody":
            payload = (b"POST /healthz HTTP/1.1\r\n" + h
                       + b"Content-Length: 5\r\n\r\nhe")
            data, secs = slow(host, port, payload, 0.0, 40.0)
            print(status(data), "%.1f" % secs)
        elif mode == "many" and arg:
            print(many(host, port, int(arg)))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ConnectionRefusedError:
        print("refused")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
