#!/usr/bin/env python
"""A server under test, alone in its process: what ``run_all.py`` measures the servers in.

    python benchmarks/_serve.py sansio_smtp|aiosmtpd|floor

Prints the port; answers each line on stdin with the CPU time this process has used;
stops at the end of stdin or on SIGTERM. It imports only what the subject needs (asyncio
and the subject), not the harness (smtplib, statistics, argparse, subprocess...): the peak
RSS of the process is then the server's, and compares the servers rather than the harness
that every subject would otherwise carry alike.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):  # this checkout's sansio_smtp, and floor_server
    if _path not in sys.path:
        sys.path.insert(0, _path)

KINDS = ("sansio_smtp", "aiosmtpd", "floor")
#: the servers started here: an AsyncioServer refuses connections once it is collected
_RUNNING: list[object] = []

#: what our server advertises (as bench_server.EXTENSIONS, which tests keep equal)
EXTENSIONS = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "DSN": (),
    "ENHANCEDSTATUSCODES": (),
}


async def start(kind: str) -> int:
    """Start the server ``kind`` on 127.0.0.1; its port."""
    loop = asyncio.get_running_loop()
    if kind == "sansio_smtp":
        from sansio_smtp import Config
        from sansio_smtp.adapters import AsyncioServer, Handler

        # The base Handler buffers content and accepts it, as aiosmtpd's does.
        ours = AsyncioServer(
            Handler(),
            port=0,
            config=Config(hostname="bench", extensions=EXTENSIONS),
            max_connections_per_client=None,
            max_connections=10_000,
        )
        await ours.start()
        _RUNNING.append(ours)
        return ours.port
    if kind == "aiosmtpd":
        from aiosmtpd.smtp import SMTP

        class Sink:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                return "250 OK"

        aio = await loop.create_server(
            lambda: SMTP(Sink(), hostname="bench", data_size_limit=0),
            "127.0.0.1",
            0,
            backlog=1024,
        )
        _RUNNING.append(aio)
        return int(aio.sockets[0].getsockname()[1])
    if kind == "floor":
        import floor_server

        floor = await floor_server.start("127.0.0.1", 0)
        _RUNNING.append(floor)
        return int(floor.sockets[0].getsockname()[1])
    raise ValueError(f"unknown server {kind!r} (of {', '.join(KINDS)})")


async def serve(kind: str) -> None:
    """Run one server until SIGTERM or the end of stdin; print its port."""
    loop = asyncio.get_running_loop()
    print(await start(kind), flush=True)
    # Each line on stdin is answered with this process's CPU time (CLOCK_PROCESS_CPUTIME_ID:
    # finer than /proc's 10 ms ticks); end of stdin or SIGTERM stops the server.
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def answer() -> None:
        while await reader.readline():
            sys.stdout.write(f"{time.process_time()!r}\n")
            sys.stdout.flush()
        stop.set()

    task = asyncio.ensure_future(answer())
    await stop.wait()
    task.cancel()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(KINDS)}")
    asyncio.run(serve(sys.argv[1]))
