# The asyncio SMTP/LMTP server: a thin loop around the sans-IO core, on asyncio.Protocol and
# transports (not streams: one callback per read, one write per batch of replies).
#
# Strategy: serve the Dispatcher's requests (its steps() generator: core events -> hooks
# -> replies): READ parks it until data_received, Write -> one transport.write, Await
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
import math
import os
import socket
import warnings
import weakref
from asyncio.trsock import TransportSocket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from ..._connection import Connection
from ..._events import BytesLike, Reply
from ..._state import Role, State
from .._io import CLOSE, READ, Await, ServerSteps, Write
from ._dispatcher import Dispatcher
from ._handler import PeerAddress, Session
from ._limits import LogThrottle
from ._options import BLOCKED_WRITE_WAIT, ServerBase, ServerKeywords, ServerOptions, peer_address

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncioServer", "serve"]

log = logging.getLogger("sansio_smtp.server")

#: seconds a closing connection may take to accept what we still have to send
_LINGER: Final = 30.0


class AsyncioServer(ServerBase):
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
        self.backlog = self.options.backlog
        self._requested_port = self.options.port
        self._port: int | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._protocols: set[_SMTPProtocol] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed = False
        self._all_closed: asyncio.Future[None] | None = None
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

        def factory() -> asyncio.Protocol:
            server = ref()
            return _SMTPProtocol(server) if server is not None else _Refuse()

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

    def record_error(self, exc: BaseException) -> None:
        """Keep ``exc`` in ``errors`` and log it (handler bugs, broken connections)."""
        self.errors.append(exc)
        log.error("SMTP server error: %r", exc, exc_info=exc)

    def _forget(self, proto: _SMTPProtocol) -> None:
        self._protocols.discard(proto)
        done = self._all_closed
        if not self._protocols and done is not None and not done.done():
            done.set_result(None)

    def _sweep(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for proto in list(self._protocols):
            if proto.deadline <= now:
                proto.timed_out()
        if not self._closed:
            self._sweeper = self._loop.call_later(self._tick, _sweep, weakref.ref(self))

    def _offload(self, fn: Callable[[], object]) -> Awaitable[object]:
        """Run a blocking store step in the loop's default executor (a worker thread)."""
        return asyncio.get_running_loop().run_in_executor(None, fn)

    def _spawn(self, aw: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                await aw
            except Exception as exc:
                self.record_error(exc)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _sweep(ref: weakref.ref[AsyncioServer]) -> None:
    server = ref()
    if server is not None:
        server._sweep()


class _Refuse(asyncio.Protocol):
    """For a connection that arrives after its server object was collected."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class _SMTPProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: AsyncioServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.d: Dispatcher | None = None
        self.deadline = math.inf
        self._loop = asyncio.get_running_loop()
        self._busy = False  # a hook or the TLS handshake runs: not reading
        self._write_paused = False
        self._blocked_since: float | None = None  # our writes blocked since (loop time)
        self._reading = True
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._stash: list[bytes] | None = None  # data that arrived during start_tls
        self._unread: list[bytes] = []  # the stash, for the Dispatcher's next READ
        self._steps: ServerSteps | None = None
        self._rd = server._read_deadline()
        self._counted = False  # holds a slot (and a per-client count) of the server
        self._key: str | None = None
        self._lost = False

    # ----------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        peer = peer_address(transport.get_extra_info("peername"))
        if server._closing or len(server._protocols) >= server.max_connections:
            self._refuse(server._busy)  # RFC 5321 §3.1 / §3.8: 421 means try again later
            return
        self._key, admitted = server._admit_client(peer)
        if not admitted:
            self._refuse(server._busy_client)
            return
        self._counted = True
        server._protocols.add(self)
        if server.implicit_tls:
            # nothing may reach data_received before start_tls() takes the transport
            self._busy = True
            self._update_reading()
            self._task = self._loop.create_task(self._implicit_tls(peer))
            return
        self._begin(peer, tls=False)

    def _refuse(self, reply: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._closed = True
        if self.server.implicit_tls:  # no TLS yet: nothing can be said
            transport.abort()
            return
        transport.write(reply)
        if transport.get_write_buffer_size():  # not even 421 fits: do not wait for it
            transport.abort()
        else:
            transport.close()

    async def _implicit_tls(self, peer: PeerAddress) -> None:
        new = await self._handshake()
        if new is None or self._closed:
            self.abort()
            return
        self.transport = new
        self._busy = False
        self._reading = True  # the new transport reads until told otherwise
        self._begin(peer, tls=True)

    async def _handshake(self) -> asyncio.Transport | None:
        """The server side of a TLS handshake (implicit TLS or after STARTTLS's 220), or
        None when it failed or timed out: then the transport is closed, and as its
        protocol was then the SSL one, connection_lost() will not come: the slot is let
        go here. Nothing is said in the clear."""
        transport, server = self.transport, self.server
        assert transport is not None and server.tls_context is not None
        try:
            new = await self._loop.start_tls(
                transport,
                self,
                server.tls_context,
                server_side=True,
                ssl_handshake_timeout=server.tls_handshake_timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("TLS handshake failed: %r", exc)
            self._task = None
            self._closed = True
            transport.abort()
            self.connection_lost(None)
            return None
        self._task = None
        return new

    def _begin(self, peer: PeerAddress, *, tls: bool) -> None:
        transport, server = self.transport, self.server
        assert transport is not None
        config = server.config
        session = Session(
            peer=peer,
            local=peer_address(transport.get_extra_info("sockname")),
            hostname=config.hostname,
            lmtp=config.lmtp,
            tls=tls,
        )
        if tls:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                session.tls_version = ssl_object.version()
                session.tls_cipher = (ssl_object.cipher() or (None,))[0]
        conn = Connection(Role.SERVER, config, tls=tls)
        self.d = Dispatcher(
            conn,
            server._hooks,
            session,
            greeting=server.greeting,
            on_error=server.record_error,
            offload=server._offload,
        )
        self._steps = self.d.steps()
        try:
            self._resume(None)
        except Exception as exc:
            self._crashed(exc)

    def data_received(self, data: bytes) -> None:
        d = self.d
        if d is None or self._closed:
            return
        if self._stash is not None:  # decrypted data before start_tls() returned
            self._stash.append(data)
            return
        traffic = self.server.traffic
        if traffic is not None:
            traffic.client(d.session.id, data, in_auth=d.conn.state is State.AUTH)
        self._rd.received(len(data))
        try:
            d.feed(data)
            if not self._busy:
                self._resume(None)
        except Exception as exc:  # a bug: keep the server up, drop this client
            self._crashed(exc)

    def _crashed(self, exc: Exception) -> None:
        self.server.record_error(exc)
        self.abort()

    def eof_received(self) -> bool:
        d = self.d
        if d is not None and not self._closed:
            if self._stash is not None:
                self._stash.append(b"")
            else:
                try:
                    d.feed(b"")
                    if not self._busy:
                        self._resume(None)
                except Exception as exc:
                    self._crashed(exc)
        # Keep a plain socket half-open so the last replies still go out; SSL transports
        # cannot do that (asyncio warns), and close themselves.
        return self.transport is not None and self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = self._closed = True
        self.deadline = math.inf
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._end_steps()
        server = self.server
        if self._counted:
            self._counted = False
            server._forget(self)
            server._release_client(self._key)
        d = self.d
        if d is not None:
            hook = server._hooks.disconnect
            if hook is not None:
                try:
                    result = hook(d.session)
                except Exception as error:
                    server.record_error(error)
                else:
                    if result is not None and asyncio.iscoroutine(result):
                        server._spawn(result)

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._blocked_since is None:
            self._blocked_since = self._loop.time()
        if self.d is not None:
            self._set_deadline(self.d.conn)
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    # ------------------------------------------------------------------ the loop

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self._closed or self._stash is not None:
            return
        want = not (self._busy or self._write_paused)
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def _resume(self, value: object, error: BaseException | None = None) -> None:
        """Resume the Dispatcher with ``value`` (or throw ``error`` in) and serve its
        requests until it waits for the client, for a task (a hook, the handshake), or
        the session ends."""
        d, steps = self.d, self._steps
        assert d is not None and steps is not None
        try:
            op = steps.send(value) if error is None else steps.throw(error)
            while True:
                if op is READ:
                    if self._unread:  # decrypted before start_tls() returned
                        for data in self._unread:
                            d.feed(data)
                        self._unread = []
                        op = steps.send(None)
                        continue
                    if self.server._closing and d.idle:
                        self._end(self.server._shutdown_reply)
                        return
                    self._set_deadline(d.conn)
                    if self._busy:
                        self._busy = False
                        self._update_reading()
                    return
                if type(op) is Write:
                    self._write(op.chunks)
                    op = steps.send(None)
                    continue
                if op is CLOSE:
                    self._close()
                    return
                self.deadline = math.inf
                self._busy = True
                self._update_reading()
                if type(op) is Await:
                    self._task = self._loop.create_task(self._await(op.awaitable))
                else:  # HANDSHAKE
                    self._task = self._loop.create_task(self._starttls())
                return
        except StopIteration:
            self._close()

    def _write(self, chunks: list[BytesLike]) -> None:
        data = b"".join(chunks)
        d, transport = self.d, self.transport
        if not data or transport is None or d is None:
            return
        if self.server.traffic is not None:
            self.server.traffic.server(d.session.id, data)
        transport.write(data)
        self._rd.sent()

    def _end(self, reply: Reply) -> None:
        """Say ``reply`` (a 421) if the session allows it, and close."""
        d = self.d
        assert d is not None
        self._write([d.goodbye(reply)])
        self._close()
        self._end_steps()

    def _end_steps(self) -> None:
        steps, self._steps = self._steps, None
        if steps is not None:
            with contextlib.suppress(ValueError):  # it is running: it ends by itself
                steps.close()

    def _set_deadline(self, conn: Connection) -> None:
        now = self._loop.time()
        deadline = self._rd.next(conn, now)
        # A client that does not read: while our writes stay blocked, replies queued
        # behind them are no progress. The wait runs from the moment they blocked and is
        # reset only once the client has taken all we wrote.
        since = self._blocked_since
        if since is not None:
            transport = self.transport
            if transport is not None and not transport.get_write_buffer_size():
                self._blocked_since = None
            else:
                idle = self.server.idle_timeout
                wait = BLOCKED_WRITE_WAIT if idle is None else idle
                deadline = min(deadline, since + wait)
        self.deadline = deadline

    async def _await(self, awaitable: Awaitable[object]) -> None:
        try:
            value: object = await awaitable
            error: BaseException | None = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            value, error = None, exc
        self._task = None
        if self._closed:
            return
        try:
            self._resume(value, error)
        except Exception as exc:
            self._crashed(exc)

    async def _starttls(self) -> None:
        self._stash = []
        new = await self._handshake()
        stash, self._stash = self._stash, None
        if new is None or self._closed:
            self.abort()
            return
        self.transport = new
        self._reading = True  # the new transport reads until told otherwise
        self._unread = stash or []
        try:
            self._resume(new.get_extra_info("ssl_object"))
        except Exception as exc:
            self._crashed(exc)

    # --------------------------------------------------------------- server calls

    def timed_out(self) -> None:
        """The deadline passed: say 421 and close; a client that does not read (our
        writes are blocked) is aborted, as is one that still has not taken what we sent
        before closing."""
        d, transport = self.d, self.transport
        if self._lost or transport is None:
            return
        if d is None or self._closed:
            self.abort()
            return
        self._end(self.server._expired_reply(self._rd.slow))
        if transport.get_write_buffer_size():
            self.abort()

    def begin_shutdown(self) -> None:
        d = self.d
        if d is not None and not self._closed and not self._busy and d.idle:
            self.goodbye(self.server._shutdown_reply)

    def goodbye(self, reply: Reply) -> None:
        d = self.d
        if d is None or self._closed:
            return
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._end(reply)

    def _close(self) -> None:
        transport = self.transport
        if transport is not None and not self._closed:
            self._closed = True
            transport.close()  # waits until what we wrote has been taken...
            if transport.get_write_buffer_size():  # ...for a bounded time
                idle = self.server.idle_timeout
                linger = _LINGER if idle is None else min(idle, _LINGER)
                self.deadline = self._loop.time() + linger
            else:
                self.deadline = math.inf

    def abort(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.abort()


async def serve(handler: object = None, **options: Unpack[ServerKeywords]) -> AsyncioServer:
    """Start an AsyncioServer (options as its constructor) and return it, listening."""
    server = AsyncioServer(handler, **options)
    return await server.start()
