#!/usr/bin/env python3
"""free_port.py GIVEN: print a loopback TCP port that nothing is bound to
and that this run has not handed out before (GIVEN lists those, one per
line, and gets the new one). The kernel may pick the same free port twice
while nothing binds it in between, and a script asks for several ports
before it starts the servers: two servers on one port would then share it
(SO_REUSEPORT) or fail to start."""
import socket
import sys


def main():
    given_file = sys.argv[1]
    try:
        with open(given_file) as f:
            given = set(f.read().split())
    except FileNotFoundError:
        given = set()
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
        s.close()
        if port not in given:
            break
    with open(given_file, "a") as f:
        f.write(port + "\n")
    print(port)


if __name__ == "__main__":
    main()
