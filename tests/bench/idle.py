#!/usr/bin/env python3
"""Idle connections for the benchmark's memory figures (standard library).

  idle.py serve PORT
        accept any number of connections; echo each one's first line,
        then hold it open, reading and dropping whatever else arrives
  idle.py open HOST:PORT N
        open N connections, send a line on each and wait for its echo
        (so every hop, mTLS included, is established end to end), print
        "ready N", then hold them until stdin closes or the process is
        killed. Prints "failed K" instead when K could not be opened.
"""
import asyncio
import resource
import sys


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(port):
    async def handle(reader, writer):
        try:
            line = await reader.readline()
            writer.write(line)
            await writer.drain()
            while await reader.read(65536):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def open_many(host, port, n):
    held = []
    sem = asyncio.Semaphore(256)  # connects in flight: stay under backlogs

    async def one(i):
        async with sem:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), 30)
            writer.write(b"idle %d\n" % i)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line.startswith(b"idle"):
                raise ConnectionError("no echo")
            held.append(writer)

    results = await asyncio.gather(*(one(i) for i in range(n)),
                                   return_exceptions=True)
    failed = sum(1 for r in results if isinstance(r, BaseException))
    print("failed %d" % failed if failed else "ready %d" % n, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for w in held:
        w.close()


def main():
    raise_fd_limit()
    if sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2])))
    elif sys.argv[1] == "open":
        host, port = sys.argv[2].rsplit(":", 1)
        asyncio.run(open_many(host, int(port), int(sys.argv[3])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
