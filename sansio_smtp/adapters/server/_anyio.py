# The AnyIO SMTP/LMTP server (asyncio or trio underneath): a short loop per connection
# around the same Dispatcher the asyncio and blocking servers use.
#
# Strategy: one task per connection serving the Dispatcher's requests (its steps()
# generator: core events -> hooks -> replies): READ -> receive, Write -> send, Await ->
# await, HANDSHAKE -> TLSStream.wrap. Every read runs in a CancelScope whose deadline
# comes from Connection.timeout (RFC 5321 §4.5.3.2) or the minimum data rate during
# DATA/BDAT; shutdown() cancels the read scope of idle clients so they get their 421 at
# once. STARTTLS: after the 220 the core pauses, TLSStream.wrap() does the handshake
# (nothing is read ahead of the core, so any plaintext behind STARTTLS sits in the core,
# whose tls_established() refuses it: CVE-2011-0411).
# Rules: nothing here decides protocol questions; every wait is bounded except an awaited
# hook (as in the asyncio server); a broken connection never takes the server down.
from __future__ import annotations

import contextlib
import errno
import logging
import ssl
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import anyio.to_thread
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from ..._events import BytesLike, Reply
from .._io import HANDSHAKE, READ, Await, Write
from ._dispatcher import Dispatcher
from ._handler import Session
from ._limits import LogThrottle, ReadDeadline
from ._options import ServerBase, ServerKeywords, ServerOptions, peer_address

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AnyioServer", "serve_anyio"]

log = logging.getLogger("sansio_smtp.server")

_RECV_SIZE: Final = 65536
_STREAM_ERRORS: Final = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
)
#: accept() errors that mean "out of descriptors or memory": wait a moment, log once
_RESOURCE_ERRORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Client:
    """One connection's mutable state, seen by shutdown()."""

    def __init__(self, stream: anyio.abc.ByteStream, d: Dispatcher, rd: ReadDeadline) -> None:
        self.stream = stream
        self.d = d
        self.rd = rd
        self.scope = anyio.CancelScope()  # the whole session (cancelled at the deadline)
        self.read_scope: anyio.CancelScope | None = None  # set while waiting for the client


class AnyioServer(ServerBase):
    """An SMTP (or LMTP) server for AnyIO: runs under asyncio or trio.

    The options are ServerOptions' fields (keywords, ``options=``, or both), but for
    ``path`` and ``poll_interval``; hooks may be plain or ``async def`` (run in the
    connection's task, so they should use AnyIO or the running backend's primitives).

    In a task group, ``server = await tg.start(AnyioServer(handler).serve)`` (returns the
    server once listening; ``server.port`` is the bound port), later
    ``await server.shutdown()``; or ``async with AnyioServer(handler) as server:``.
    """

    _unsupported = frozenset({"path", "poll_interval"})
    _default_max_connections = 1000

    def __init__(
        self,
        handler: object = None,
        *,
        options: ServerOptions | None = None,
        **keywords: Unpack[ServerKeywords],
    ) -> None:
        self._configure(handler, self._options(options, keywords))
        self._slots = 0  # admitted connections, those still in a TLS handshake included
        self._accept_log = LogThrottle()
        self.backlog = self.options.backlog
        self._requested_port = self.options.port
        self._port: int | None = None
        self._clients: set[_Client] = set()
        self._closing = False
        self._started = False
        self._accept_scope: anyio.CancelScope | None = None
        self._serve_scope: anyio.CancelScope | None = None
        self._all_gone: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._own_tg: anyio.abc.TaskGroup | None = None

    # ---------------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The bound TCP port (the one the OS chose for port 0)."""
        if self._port is None:
            raise RuntimeError("the server is not listening (start serve() first)")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def connections(self) -> int:
        """Connections being served now (implicit-TLS handshakes in progress included)."""
        return self._slots

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[AnyioServer] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until shutdown() or stop(); reports ``self`` to
        ``task_status`` once listening (``await tg.start(server.serve)``)."""
        if self._started:
            raise RuntimeError("the server was already started")
        self._started = True
        self._stopped = anyio.Event()
        try:
            listener = await anyio.create_tcp_listener(
                local_host=self.host, local_port=self._requested_port, backlog=self.backlog
            )
            with anyio.CancelScope() as self._serve_scope:
                async with listener, anyio.create_task_group() as tg:
                    self._port = int(listener.extra(SocketAttribute.local_port))
                    task_status.started(self)
                    with anyio.CancelScope() as self._accept_scope:
                        if not self._closing:
                            async with anyio.create_task_group() as accepting:
                                for one in listener.listeners:
                                    accepting.start_soon(self._accept, one, tg)
                    await listener.aclose()  # refuse new clients while the rest finish
        finally:
            self._closing = True
            self._stopped.set()

    async def __aenter__(self) -> AnyioServer:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(self.serve)
        except BaseException as exc:
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._own_tg = tg
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        tg, self._own_tg = self._own_tg, None
        assert tg is not None
        try:
            await self.shutdown()
        finally:
            result = await tg.__aexit__(*exc_info)  # type: ignore[arg-type]
        return result

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Graceful shutdown: stop accepting; idle clients get ``421 4.3.2`` now, clients in
        a transaction (or waiting on a hook) may finish it within ``timeout`` seconds and
        then get the 421; the rest get it at the deadline (RFC 5321 §3.8). Returns once
        serve() has returned."""
        self._closing = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        for client in list(self._clients):
            if client.read_scope is not None and client.d.idle:
                client.read_scope.cancel()
        if self._clients:
            self._all_gone = anyio.Event()
            with anyio.move_on_after(timeout):
                await self._all_gone.wait()
        for client in list(self._clients):
            client.scope.cancel()  # the task says 421 (best effort) and closes
        if self._clients:
            self._all_gone = anyio.Event()
            with anyio.move_on_after(2.0):
                await self._all_gone.wait()
        self.stop()
        if self._stopped is not None:
            with anyio.move_on_after(2.0):
                await self._stopped.wait()

    def stop(self) -> None:
        """Stop now: stop listening and drop every connection (no 421)."""
        self._closing = True
        if self._serve_scope is not None:
            self._serve_scope.cancel()

    def __repr__(self) -> str:
        port = self._port if self._port is not None else self._requested_port
        return f"<AnyioServer {self.host}:{port} connections={len(self._clients)}>"

    def record_error(self, exc: BaseException) -> None:
        """Keep ``exc`` in ``errors`` and log it (handler bugs, broken connections)."""
        self.errors.append(exc)
        log.error("SMTP server error: %r", exc, exc_info=exc)

    # ------------------------------------------------------------------- connection

    async def _accept(
        self, listener: anyio.abc.Listener[anyio.abc.SocketStream], tg: anyio.abc.TaskGroup
    ) -> None:
        assert isinstance(listener, anyio.abc.SocketListener)  # create_tcp_listener's parts
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                # out of descriptors: log once per interval, let connections end, retry
                if self._accept_log.ready(anyio.current_time()):
                    log.error(
                        "cannot accept connections: %s (%d more not logged)",
                        exc,
                        self._accept_log.take(),
                    )
                await anyio.sleep(0.1)
                continue
            tg.start_soon(self._handle, stream)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:  # closing aborts: a client that does not read cannot hold it
            reply = self._busy
            admitted = not self._closing and self._slots < self.max_connections
            key: str | None = None
            if admitted:
                peer = peer_address(stream.extra(SocketAttribute.remote_address, None))
                key, admitted = self._admit_client(peer)
                reply = self._busy_client
            if not admitted:
                # RFC 5321 §3.1 / §3.8: 421 means try again later (in clear only without TLS)
                if not self.implicit_tls:
                    with anyio.move_on_after(1.0), contextlib.suppress(*_STREAM_ERRORS):
                        await stream.send(reply)
                return
            self._slots += 1
            try:
                await self._session(stream)
            except Exception as exc:  # a bug: keep the server up, drop this client
                self.record_error(exc)
            finally:
                self._slots -= 1
                self._release_client(key)

    async def _session(self, sock: anyio.abc.SocketStream) -> None:
        stream: anyio.abc.ByteStream = sock
        session = Session(
            peer=peer_address(sock.extra(SocketAttribute.remote_address, None)),
            local=peer_address(sock.extra(SocketAttribute.local_address, None)),
            hostname=self.config.hostname,
            lmtp=self.config.lmtp,
            tls=self.implicit_tls,
        )
        if self.implicit_tls:
            tls = await self._handshake(sock)
            if tls is None:
                return
            stream = tls
            session.tls_version, session.tls_cipher = _tls_info(tls)
        conn = self._connection(session, tls=self.implicit_tls)
        d = Dispatcher(
            conn,
            self._hooks,
            session,
            greeting=self.greeting,
            proxy_protocol=self.proxy_protocol,
            on_error=self.record_error,
            offload=lambda fn: anyio.to_thread.run_sync(fn),  # blocking store steps
        )
        rd = self._read_deadline()
        client = _Client(stream, d, rd)
        self._clients.add(client)
        try:
            with client.scope:
                await self._loop(client)
            if client.scope.cancelled_caught:  # shutdown() ran out of patience
                wire = d.goodbye(self._shutdown_reply)
                with anyio.move_on_after(1.0, shield=True):
                    await self._send(client, [wire])
        finally:
            self._clients.discard(client)
            if not self._clients and self._all_gone is not None:
                self._all_gone.set()
            with anyio.move_on_after(5.0, shield=True):
                await self._disconnected(session)

    async def _disconnected(self, session: Session) -> None:
        hook = self._hooks.disconnect
        if hook is None:
            return
        try:
            result = hook(session)
            if result is not None and hasattr(result, "__await__"):
                await result
        except Exception as exc:
            self.record_error(exc)

    async def _loop(self, client: _Client) -> None:
        """Serve the Dispatcher's requests for one connection."""
        d = client.d
        steps = d.steps()
        try:
            op = next(steps)
            while True:
                if type(op) is Write:
                    if not await self._send(client, op.chunks):
                        return
                    if not op.read:
                        op = steps.send(None)
                        continue
                    op = READ  # served here: the Dispatcher resumes once data came
                if op is READ:
                    data = await self._receive(client)
                    if type(data) is not bytes:  # a deadline or a shutdown: say 421
                        assert isinstance(data, Reply)
                        await self._send(client, [d.goodbye(data)])
                        return
                    d.feed(data)
                elif type(op) is Await:
                    try:
                        value = await op.awaitable
                    except Exception as exc:
                        op = steps.throw(exc)
                        continue
                    op = steps.send(value)
                    continue
                elif op is HANDSHAKE:
                    tls = await self._handshake(client.stream)
                    if tls is None:
                        return
                    client.stream = tls
                    op = steps.send(tls.extra(TLSAttribute.ssl_object, None))
                    continue
                else:  # CLOSE
                    return
                op = steps.send(None)
        except StopIteration:
            return
        finally:
            steps.close()

    async def _send(self, client: _Client, chunks: list[BytesLike]) -> bool:
        """Write ``chunks`` to the client; False if the connection broke."""
        data = b"".join(chunks)
        if not data:
            return True
        # a client that does not read holds this send at most the idle timeout (a 421
        # before closing: less); then the connection is dropped
        try:
            with anyio.fail_after(self._write_timeout(closing=client.d.closing)):
                await client.stream.send(data)
        except (TimeoutError, *_STREAM_ERRORS) as exc:
            log.debug("send to %s failed: %r", client.d.session.peer, exc)
            return False
        client.rd.sent()
        return True

    async def _receive(self, client: _Client) -> bytes | Reply:
        """The client's next bytes (b"" at its end), or the 421 to end with when the
        deadline passed or shutdown() interrupted an idle client."""
        d = client.d
        if self._closing and d.idle:
            return self._shutdown_reply
        conn = d.conn
        # the core's timeout (RFC 5321 §4.5.3.2), from our last reply for a command, with
        # the minimum data rate for content (DATA and every BDAT chunk)
        deadline = client.rd.next(conn, anyio.current_time())
        slow = client.rd.slow
        data: bytes | None = None
        with anyio.CancelScope(deadline=deadline) as scope:
            client.read_scope = scope
            try:
                data = await client.stream.receive(_RECV_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                data = b""
            finally:
                client.read_scope = None
        if data is None:
            return self._shutdown_reply if self._closing and d.idle else self._expired_reply(slow)
        client.rd.received(len(data))
        return data

    async def _handshake(self, stream: anyio.abc.ByteStream) -> TLSStream | None:
        assert self.tls_context is not None
        try:
            with anyio.fail_after(self.tls_handshake_timeout):
                return await TLSStream.wrap(
                    stream,
                    server_side=True,
                    ssl_context=self.tls_context,
                    standard_compatible=False,
                )
        except (TimeoutError, ssl.SSLError, *_STREAM_ERRORS) as exc:
            # handshake failed or timed out: nothing to say in clear
            log.debug("TLS handshake failed: %r", exc)
            return None


def _tls_info(stream: TLSStream) -> tuple[str | None, str | None]:
    obj = stream.extra(TLSAttribute.ssl_object, None)
    if obj is None:
        return None, None
    cipher = obj.cipher()
    return obj.version(), cipher[0] if cipher else None


async def serve_anyio(
    handler: object = None,
    *,
    task_status: anyio.abc.TaskStatus[AnyioServer] = anyio.TASK_STATUS_IGNORED,
    **options: Unpack[ServerKeywords],
) -> None:
    """Run an AnyioServer (options as its constructor) until cancelled or shut down:
    ``server = await tg.start(functools.partial(serve_anyio, handler, port=0))``."""
    server = AnyioServer(handler, **options)
    await server.serve(task_status=task_status)
