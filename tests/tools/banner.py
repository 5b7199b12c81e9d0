#!/usr/bin/env python3
"""A server-first protocol, SMTP-like, for tests.

serve HOST PORT BANNER: for each connection, write BANNER, read one line,
answer "250 hello <what followed the command>", close.
talk HOST PORT LINE: connect, read the banner, send LINE, read the answer;
prints "banner|answer". talk-first sends LINE before reading anything.
idle HOST PORT: connect, read the banner, then send nothing and wait for
the other side to close (up to 30 s); prints "banner|closed" or
"banner|open".
"""
import socket
import sys
import threading


def readline(conn):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode().rstrip("\r\n")


def handle(conn, banner):
    with conn:
        conn.sendall(banner.encode() + b"\r\n")
        line = readline(conn)
        conn.sendall(("250 hello " + line.partition(" ")[2]).encode() + b"\r\n")


def serve(host, port, banner):
    srv = socket.create_server((host, int(port)))
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, banner), daemon=True).start()


def talk(host, port, line, first=False):
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        if first:
            conn.sendall(line.encode() + b"\r\n")
        banner = readline(conn)
        if not first:
            conn.sendall(line.encode() + b"\r\n")
        print(banner + "|" + readline(conn))


def idle(host, port):
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        banner = readline(conn)
        try:
            state = "open" if conn.recv(1) else "closed"
        except socket.timeout:
            state = "open"
        print(banner + "|" + state)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(*args)
    elif cmd == "idle":
        idle(*args)
    else:
        talk(*args, first=(cmd == "talk-first"))
