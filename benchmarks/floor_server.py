#!/usr/bin/env python
"""The floor: the least an asyncio SMTP server in Python can do, for benchmarks only.

A reply is chosen by the first four octets of each command line (upper-cased), the end of
the message content is found with ``bytes.find(b"\\r\\n.\\r\\n")``, and nothing is parsed,
checked or stored: no addresses, no parameters, no state beyond "commands or content", no
un-stuffing. The replies to one read go out in one write. No real server on the same event
loop can be faster, so every server figure in ``run_all.py`` is also given against it.

It is NOT an SMTP server: it accepts anything in any order and keeps nothing.

    python benchmarks/floor_server.py --port 0      # prints "listening on HOST:PORT"

or, from Python: ``server = await floor_server.start("127.0.0.1", 0)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

GREETING = b"220 floor.test ESMTP floor\r\n"
EHLO = b"250-floor.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1073741824\r\n"
OK = b"250 2.0.0 OK\r\n"
#: canned replies by the upper-cased first four octets of a command line
REPLIES = {
    b"EHLO": EHLO,
    b"HELO": b"250 floor.test\r\n",
    b"LHLO": EHLO,
    b"MAIL": OK,
    b"RCPT": OK,
    b"RSET": OK,
    b"NOOP": OK,
    b"DATA": b"354 go ahead\r\n",
    b"QUIT": b"221 bye\r\n",
}
UNKNOWN = b"500 5.5.1 unknown command\r\n"
END = b"\r\n.\r\n"
MAX_LINE = 4096  # a command line longer than this closes the connection


#: One read buffer for every connection (the loop runs one callback at a time). A plain
#: asyncio.Protocol is handed a new bytes object per read (recv of up to 256 KiB, which the
#: allocator may map and unmap each time): a BufferedProtocol reads into memory it already
#: has, as the fastest real server does, so the floor does too.
_READ = bytearray(256 * 1024)
_VIEW = memoryview(_READ)


class FloorProtocol(asyncio.BufferedProtocol):
    """One connection: commands answered from ``REPLIES``, content skipped up to
    ``<CRLF>.<CRLF>``. Reads land in ``_READ``; content is searched where it lies."""

    __slots__ = ("buffer", "in_data", "transport")

    def __init__(self) -> None:
        self.buffer = b""
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(GREETING)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _VIEW

    def buffer_updated(self, nbytes: int) -> None:
        if self.in_data:
            # Content: search the read in place, keep only a tail that could begin the
            # end marker. Reads with the end (or with the marker across the cut) and
            # command lines take the general path.
            carry = self.buffer
            if END not in carry + _READ[: min(4, nbytes)] and _READ.find(END, 0, nbytes) < 0:
                if nbytes < 4:
                    self.buffer = (carry + _READ[:nbytes])[-4:]
                else:
                    self.buffer = bytes(_READ[nbytes - 4 : nbytes])
                return
        self.data_received(bytes(_VIEW[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """The general path, for one read's octets (``buffer_updated`` passes most
        reads here; tests call it directly)."""
        buffer = self.buffer + data if self.buffer else data
        out = []
        start = 0
        close = False
        while True:
            if self.in_data:
                end = buffer.find(END, start)
                if end < 0:
                    # keep only what could begin the end marker
                    buffer = buffer[max(start, len(buffer) - 4) :]
                    start = 0
                    break
                out.append(OK)
                self.in_data = False
                start = end + 5
                continue
            eol = buffer.find(b"\r\n", start)
            if eol < 0:
                buffer = buffer[start:]
                start = 0
                if len(buffer) > MAX_LINE:
                    close = True
                break
            verb = buffer[start : start + 4].upper()
            out.append(REPLIES.get(verb, UNKNOWN))
            if verb == b"DATA":
                self.in_data = True
                start = eol  # the CRLF ending "DATA" is the CRLF of "<CRLF>.<CRLF>"
            elif verb == b"QUIT":
                close = True
                break
            else:
                start = eol + 2
        self.buffer = buffer[start:] if start else buffer
        transport = self.transport
        assert transport is not None
        if out:
            transport.write(b"".join(out))
        if close:
            transport.close()


async def start(host: str = "127.0.0.1", port: int = 0, backlog: int = 1024) -> asyncio.Server:
    """Listen on ``host``:``port`` (0: any free port); the caller closes the server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(FloorProtocol, host, port, backlog=backlog)


async def _main(host: str, port: int) -> None:
    server = await start(host, port)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
