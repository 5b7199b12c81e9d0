#!/usr/bin/env python3
"""Small TCP peers for the data-path tests (standard library only).

Servers (run until killed; one thread per connection):
  tcpkit.py sink-hash --port P      read to EOF, answer "<sha256>\\n", close
  tcpkit.py source --port P --bytes N   send N pattern bytes, then close
  tcpkit.py echo --port P           echo every byte back until EOF
  tcpkit.py slow --port P --delay S [--log FILE]
        read one line, wait S seconds, answer "done\\n" and close; with
        --log, a line "request" goes to FILE as soon as the line is read
        (the request is in flight: tests wait for it)
  tcpkit.py hello --port P          read a TLS ClientHello, print its
                                    "groups=A,B key_share=A" (IANA
                                    numbers, in order), and close
Clients:
  tcpkit.py send-hash --connect H:P --bytes N
        send N pattern bytes, half-close, read the answer; prints
        "<sent sha256> <answer>" and exits 0 when they match
  tcpkit.py stream --connect H:P --seconds S [--interval 0.1]
        one long-lived connection: a numbered line every interval, each
        echo checked; prints "lines=N errors=E" and exits 0 if E == 0
  tcpkit.py hold --connect H:P --seconds S
        connect, send one line, read nothing for S seconds (a slow reader)
  tcpkit.py slow-request --connect H:P
        send one line, print the answer (for drain tests)
"""
import argparse
import hashlib
import signal
import socket
import sys
import threading
import time

CHUNK = 1 << 20


def pattern(n):
    """Deterministic, incompressible-looking bytes, generated in blocks."""
    block = hashlib.sha256(b"lanyard").digest() * (CHUNK // 32)
    sent = 0
    while sent < n:
        k = min(CHUNK, n - sent)
        yield block[:k]
        sent += k


def serve(port, handler):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=guarded, args=(handler, conn), daemon=True).start()


def guarded(handler, conn):
    try:
        handler(conn)
    except OSError:
        pass
    finally:
        conn.close()


def sink_hash(conn):
    h = hashlib.sha256()
    while True:
        data = conn.recv(CHUNK)
        if not data:
            break
        h.update(data)
    conn.sendall((h.hexdigest() + "\n").encode())


def make_source(nbytes):
    def source(conn):
        for block in pattern(nbytes):
            conn.sendall(block)
    return source


def echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)


def make_slow(delay, log):
    def slow(conn):
        f = conn.makefile("rb")
        # (a probe of the port connects and closes: no request)
        if f.readline() and log:
            with open(log, "a") as out:
                out.write("request\n")
        time.sleep(delay)
        conn.sendall(b"done\n")
    return slow


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        more = conn.recv(n - len(data))
        if not more:
            raise OSError("short read")
        data += more
    return data


def u16s(data):
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def client_hello(conn):
    """The supported_groups and key_share groups of a ClientHello (one
    record is enough for a ClientHello without post-quantum shares)."""
    header = read_exact(conn, 5)
    body = read_exact(conn, int.from_bytes(header[3:5], "big"))
    if header[0] != 22 or body[0] != 1:
        raise OSError("not a ClientHello")
    i = 4 + 2 + 32  # handshake header, version, random
    i += 1 + body[i]  # session id
    i += 2 + int.from_bytes(body[i:i + 2], "big")  # cipher suites
    i += 1 + body[i]  # compression methods
    end = i + 2 + int.from_bytes(body[i:i + 2], "big")
    i += 2
    groups, shares = [], []
    while i + 4 <= end:
        ext, n = int.from_bytes(body[i:i + 2], "big"), int.from_bytes(body[i + 2:i + 4], "big")
        data = body[i + 4:i + 4 + n]
        if ext == 10:  # supported_groups
            groups = u16s(data[2:])
        elif ext == 51:  # key_share: group, length, key
            j = 2
            while j + 4 <= len(data):
                shares.append(int.from_bytes(data[j:j + 2], "big"))
                j += 4 + int.from_bytes(data[j + 2:j + 4], "big")
        i += 4 + n
    print("groups=%s key_share=%s" % (",".join(map(str, groups)),
                                      ",".join(map(str, shares))), flush=True)


def connect(target):
    host, port = target.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=60)


def send_hash(args):
    s = connect(args.connect)
    h = hashlib.sha256()
    for block in pattern(args.bytes):
        h.update(block)
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    answer = s.makefile("rb").readline().decode().strip()
    print(h.hexdigest(), answer)
    return 0 if answer == h.hexdigest() else 1


def stream(args):
    s = connect(args.connect)
    f = s.makefile("rb")
    lines = errors = 0
    end = time.time() + args.seconds
    while time.time() < end:
        msg = ("line %d\n" % lines).encode()
        try:
            s.sendall(msg)
            if f.readline() != msg:
                errors += 1
        except OSError:
            errors += 1
            break
        lines += 1
        time.sleep(args.interval)
    print("lines=%d errors=%d" % (lines, errors))
    return 0 if errors == 0 and lines > 0 else 1


def hold(args):
    s = connect(args.connect)
    s.sendall(b"hello\n")
    time.sleep(args.seconds)
    return 0


def slow_request(args):
    s = connect(args.connect)
    s.sendall(b"request\n")
    print(s.makefile("rb").readline().decode().strip())
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("sink-hash", "source", "echo", "slow", "hello"):
        sp = sub.add_parser(name)
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--bytes", type=int, default=0)
        sp.add_argument("--delay", type=float, default=1.0)
        sp.add_argument("--log")
    for name in ("send-hash", "stream", "hold", "slow-request"):
        sp = sub.add_parser(name)
        sp.add_argument("--connect", required=True)
        sp.add_argument("--bytes", type=int, default=0)
        sp.add_argument("--seconds", type=float, default=10)
        sp.add_argument("--interval", type=float, default=0.1)
    a = p.parse_args()
    servers = {
        "sink-hash": lambda: sink_hash,
        "source": lambda: make_source(a.bytes),
        "echo": lambda: echo,
        "slow": lambda: make_slow(a.delay, a.log),
        "hello": lambda: client_hello,
    }
    if a.cmd in servers:
        # a clean exit on SIGTERM, like every daemon the tests stop
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(a.port, servers[a.cmd]())
        return 0
    clients = {"send-hash": send_hash, "stream": stream, "hold": hold,
               "slow-request": slow_request}
    return clients[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
