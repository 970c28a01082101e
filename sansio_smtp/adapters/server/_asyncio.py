# The asyncio SMTP/LMTP server: a thin loop around the sans-IO core, on asyncio.Protocol and
# transports (not streams: one callback per read, one write per batch of replies).
#
# Strategy: serve the Dispatcher's requests (its steps() generator: core events -> hooks
# -> replies): READ parks it until data arrives, Write -> one transport.write, Await
# and HANDSHAKE run in a task that resumes it. Reading pauses while a hook runs (the core
# is PAUSED anyway: SMTP answers commands in order). STARTTLS: after the 220 the core
# pauses, loop.start_tls() does the handshake, and Connection.tls_established() refuses any
# plaintext that was buffered behind the STARTTLS line. Timeouts come from
# Connection.timeout (RFC 5321 §4.5.3.2) and one server-wide sweep checks every
# connection's deadline, so the hot path never touches timers.
# Rules: nothing here decides protocol questions (the core and the Dispatcher do); every
# wait is bounded (idle timeout, minimum data rate during DATA/BDAT, TLS handshake timeout,
# shutdown deadline); AUTH is redacted in the opt-in traffic log.
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import warnings
import weakref
from asyncio.trsock import TransportSocket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._asyncio_conn import LoopServer, Refuse, SMTPProtocol
from ._limits import LogThrottle
from ._options import ServerKeywords, ServerOptions

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncioServer", "serve"]

log = logging.getLogger("sansio_smtp.server")


class AsyncioServer(LoopServer):
    """An SMTP (or LMTP) server for asyncio.

    ``handler``: a Handler (or any object with some of its hooks, sync or async); None
    accepts and discards everything. The options are ServerOptions' fields, given as
    keyword arguments, as ``options=ServerOptions(...)``, or both (keywords win).

    Use ``async with AsyncioServer(...) as server:`` (start, then graceful shutdown) or
    ``await server.start()`` ... ``await server.shutdown()``.
    """

    _unsupported = frozenset({"poll_interval"})
    _default_max_connections = 1000

    def __init__(
        self,
        handler: object = None,
        *,
        options: ServerOptions | None = None,
        **keywords: Unpack[ServerKeywords],
    ) -> None:
        self._configure(handler, self._options(options, keywords))
        self._init_loop_server()
        self.backlog = self.options.backlog
        self._requested_port = self.options.port
        self._port: int | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._previous_handler: Callable[..., object] | None = None
        self._our_handler: Callable[..., object] | None = None
        timeouts = [t for t in (self.idle_timeout, self.data_rate_grace) if t]
        self._tick = max(0.02, min([1.0, *(t / 4 for t in timeouts)]))

    # ---------------------------------------------------------------------- lifecycle

    async def start(self) -> AsyncioServer:
        """Bind and start accepting; returns self (``port`` is then known)."""
        if self._server is not None:
            raise RuntimeError("the server was already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        # Implicit TLS: each connection does its handshake (loop.start_tls) after it was
        # admitted and counted, so silent handshakes cannot take descriptors unbounded.
        backlog = self.backlog
        # The listening socket and the sweeper hold the server weakly, so an unclosed
        # server can be collected (and warn) like an unclosed socket.
        ref = weakref.ref(self)

        def factory() -> asyncio.BaseProtocol:
            server = ref()
            return SMTPProtocol(server) if server is not None else Refuse()

        if self.path is not None:
            self._server = await loop.create_unix_server(
                factory,
                self.path,
                backlog=backlog,
            )
        else:
            self._server = await loop.create_server(
                factory,
                self.host,
                self._requested_port,
                backlog=backlog,
                reuse_address=True,
            )
        if self.path is None:
            self._port = self._server.sockets[0].getsockname()[1]
        self._stopped = loop.create_future()
        self._sweeper = loop.call_later(self._tick, _sweep, ref)
        self._throttle_accept_errors(loop)
        return self

    def _throttle_accept_errors(self, loop: asyncio.AbstractEventLoop) -> None:
        """asyncio logs a traceback each time accept() runs out of descriptors (EMFILE)
        on our listening socket: let one through per interval, count the rest. Other
        errors go to the loop's previous handler unchanged."""
        previous = loop.get_exception_handler()
        throttle = LogThrottle()
        ref = weakref.ref(self)

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
            server = ref()
            sock = context.get("socket")
            fileno = sock.fileno() if isinstance(sock, (socket.socket, TransportSocket)) else -1
            ours = (
                server is not None
                and server._server is not None
                and any(fileno == listening.fileno() for listening in server._server.sockets)
            )
            if ours and context.get("message") == "socket.accept() out of system resource":
                if not throttle.ready(loop.time()):
                    return
                log.error(
                    "cannot accept connections: %s (%d more not logged)",
                    context.get("exception"),
                    throttle.take(),
                )
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)
        self._previous_handler = previous
        self._our_handler = handler

    @property
    def port(self) -> int:
        """The bound TCP port (the one the OS chose for port 0)."""
        if self._port is None:
            raise RuntimeError("the server is not listening (start() it first)")
        return self._port

    @property
    def address(self) -> tuple[str, int] | str:
        """(host, port) for TCP, the socket path for a Unix socket."""
        if self.path is not None:
            return self.path
        return (self.host, self.port)

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._protocols)

    async def serve_forever(self) -> None:
        """Run until shutdown() or close()."""
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        await asyncio.shield(self._stopped)

    async def __aenter__(self) -> AsyncioServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Graceful shutdown: stop accepting; idle clients get ``421 4.3.2`` now, clients in
        a transaction (or waiting on a hook) may finish it within ``timeout`` seconds and
        then get the 421; the rest get it at the deadline (RFC 5321 §3.8)."""
        if self._closed or self._server is None:
            self._closed = True
            return
        loop = asyncio.get_running_loop()
        self._closing = True
        self._server.close()
        for proto in list(self._protocols):
            proto.begin_shutdown()
        if self._protocols:
            self._all_closed = loop.create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._all_closed), timeout)
        for proto in list(self._protocols):
            proto.goodbye(self._shutdown_reply)
        if self._protocols:  # give the 421s a moment to go out, then cut what is left
            self._all_closed = loop.create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._all_closed), 1.0)
        self.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self._background:
            await asyncio.wait(list(self._background), timeout=1.0)

    def close(self) -> None:
        """Stop now: stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        self._closing = self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for proto in list(self._protocols):
            proto.abort()
        loop = self._loop
        if loop is not None and loop.get_exception_handler() is self._our_handler:
            loop.set_exception_handler(self._previous_handler)
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __del__(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None and not getattr(self, "_closed", True):
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            with contextlib.suppress(Exception):
                server.close()

    def __repr__(self) -> str:
        port = self._port if self._port is not None else self._requested_port
        where = self.path if self.path is not None else f"{self.host}:{port}"
        return f"<AsyncioServer {where} connections={len(self._protocols)}>"

    # ------------------------------------------------------------------------ helpers

    def _sweep(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for proto in list(self._protocols):
            if proto.deadline <= now:
                proto.timed_out()
        if not self._closed:
            self._sweeper = self._loop.call_later(self._tick, _sweep, weakref.ref(self))


def _sweep(ref: weakref.ref[AsyncioServer]) -> None:
    server = ref()
    if server is not None:
        server._sweep()


async def serve(handler: object = None, **options: Unpack[ServerKeywords]) -> AsyncioServer:
    """Start an AsyncioServer (options as its constructor) and return it, listening."""
    server = AsyncioServer(handler, **options)
    return await server.start()
