# One client connection of the asyncio server: an asyncio.BufferedProtocol serving the
# Dispatcher's requests (READ parks it until data arrives, Write -> one transport.write,
# Await and HANDSHAKE run in a task that resumes it).
#
# Strategy: reading pauses while a hook or the TLS handshake runs and while our writes are
# blocked; the server's sweep compares ``deadline`` with the clock, so the hot path never
# touches timers. The transport reads into one buffer that the server's connections share
# (BufferedProtocol): a plain Protocol would get a new bytes object per read, allocated at
# the transport's 256 KiB read size (an mmap/munmap pair per read) and then shrunk; the
# core copies what it needs before buffer_updated returns, and nothing else keeps a view.
# Rules: every wait is bounded (idle timeout, minimum data rate, TLS handshake timeout, a
# client that does not read); a bug in one connection drops that client, never the server.
from __future__ import annotations

import asyncio
import logging
import math
import mmap
import time
from collections.abc import Awaitable, Callable
from typing import Final

from ..._connection import Connection
from ..._events import BytesLike, Reply
from .._io import CLOSE, READ, Await, ServerSteps, Write
from ._dispatcher import Dispatcher
from ._handler import PeerAddress, Session
from ._options import BLOCKED_WRITE_WAIT, ServerBase, peer_address

log = logging.getLogger("sansio_smtp.server")

#: seconds a closing connection may take to accept what we still have to send
_LINGER: Final = 30.0
#: the most one read takes (asyncio's own read size): one buffer of this size per server,
#: anonymous memory whose pages are only backed once a read reaches them
_READ_SIZE: Final = 256 * 1024
_LOOP_TIME: Final = asyncio.BaseEventLoop.time


class Refuse(asyncio.Protocol):
    """For a connection that arrives after its server object was collected."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class LoopServer(ServerBase):
    """The part of the asyncio server its connections use: the set of live connections,
    error reporting, and running work off the event loop or in the background.
    AsyncioServer is one."""

    _protocols: set[SMTPProtocol]
    _background: set[asyncio.Task[None]]
    _closing: bool
    _all_closed: asyncio.Future[None] | None
    #: the read buffer of every connection (one event loop thread: one read at a time)
    _read_buffer: memoryview

    def _init_loop_server(self) -> None:
        self._protocols = set()
        self._background = set()
        self._closing = False
        self._all_closed = None
        self._read_buffer = memoryview(mmap.mmap(-1, _READ_SIZE))

    def record_error(self, exc: BaseException) -> None:
        """Keep ``exc`` in ``errors`` and log it (handler bugs, broken connections)."""
        self.errors.append(exc)
        log.error("SMTP server error: %r", exc, exc_info=exc)

    def _forget(self, proto: SMTPProtocol) -> None:
        self._protocols.discard(proto)
        done = self._all_closed
        if not self._protocols and done is not None and not done.done():
            done.set_result(None)

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


class SMTPProtocol(asyncio.BufferedProtocol):
    """One client connection."""

    # slots: a server holds one per connection, most of them idle
    __slots__ = (
        "_blocked_since",
        "_busy",
        "_clock",
        "_closed",
        "_counted",
        "_key",
        "_loop",
        "_lost",
        "_parked",
        "_rd",
        "_reading",
        "_stash",
        "_steps",
        "_task",
        "_unread",
        "_write_paused",
        "d",
        "deadline",
        "server",
        "transport",
    )

    def __init__(self, server: LoopServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.d: Dispatcher | None = None
        self.deadline = math.inf
        self._loop = loop = asyncio.get_running_loop()
        # the loop's clock: time.monotonic itself when the loop keeps BaseEventLoop's
        # time() (one call per read instead of two)
        self._clock = time.monotonic if type(loop).time is _LOOP_TIME else loop.time
        self._busy = False  # a hook or the TLS handshake runs: not reading
        self._write_paused = False
        self._blocked_since: float | None = None  # our writes blocked since (loop time)
        self._reading = True
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._stash: list[bytes] | None = None  # data that arrived during start_tls
        # the stash, for the Dispatcher's next READ (an empty tuple, not a list per
        # connection: it is filled only after STARTTLS)
        self._unread: list[bytes] | tuple[()] = ()
        self._steps: ServerSteps | None = None
        #: steps() waits for READ in its session loop: reads go to Dispatcher.answer_read
        self._parked = False
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
            # nothing may be read before start_tls() takes the transport
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
        conn = server._connection(session, tls=tls)
        self.d = Dispatcher(
            conn,
            server._hooks,
            session,
            greeting=server.greeting,
            proxy_protocol=server.proxy_protocol,
            on_error=server.record_error,
            offload=server._offload,
        )
        self._steps = self.d.steps()
        try:
            self._resume(None)
        except Exception as exc:
            self._crashed(exc)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        d = self.d
        if d is None or self._closed:
            return
        data = self.server._read_buffer[:nbytes]  # a view: valid until this returns
        if self._stash is not None:  # decrypted data before start_tls() returned
            self._stash.append(bytes(data))
            return
        rd = self._rd
        rd.octets += nbytes  # (ReadDeadline.received, without the call)
        try:
            if not self._parked:
                d.feed(data)
                if not self._busy:
                    self._resume(None)
                return
            # The hot path. steps() waits for READ in its session loop (so the Dispatcher
            # reads no PROXY header and is not closing: feed() would pass the bytes on):
            # answer_read() answers what came without resuming steps(), and its replies
            # go out in one write; steps() is resumed only for what it must do itself
            # (a hook to wait for, the STARTTLS handshake, the end of the session).
            conn = d.conn
            conn.receive_data(data)
            out = d.answer_read()
            if out is None:
                self._resume(None)
                return
            replied = False
            if out:
                wire = b"".join(out)  # (one piece: the piece itself, not a copy)
                if wire:
                    transport = self.transport
                    assert transport is not None
                    transport.write(wire)
                    replied = True
            if self._blocked_since is None and not self.server._closing:
                # as _wait_read(), with ReadDeadline.sent() in the same call; replies from
                # answer_read() mean the connection needs data
                self.deadline = rd.next(conn, self._clock(), replied, True)
            else:
                if replied:
                    rd.sent()
                self._wait_read(d)
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
            if self._key is not None:  # (counted against a per-client limit)
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
            self._blocked_since = self._clock()
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
        self._parked = False
        try:
            op = steps.send(value) if error is None else steps.throw(error)
            while True:
                if type(op) is Write:
                    self._write(op.chunks)
                    if not op.read:
                        op = steps.send(None)
                        continue
                    op = READ  # served here: the Dispatcher resumes once data came
                if op is READ:
                    if self._unread:  # decrypted before start_tls() returned
                        for data in self._unread:
                            d.feed(data)
                        self._unread = ()
                        op = steps.send(None)
                        continue
                    self._wait_read(d)
                    return
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

    def _wait_read(self, d: Dispatcher) -> None:
        """steps() asked for READ: the deadline of the wait, and reading on; or, when the
        server shuts down and the session is idle, the 421 and the end."""
        if self.server._closing and d.idle:
            self._end(self.server._shutdown_reply)
            return
        if self._blocked_since is None:  # the common case of _set_deadline
            # steps() asks for READ in its session loop (``answering``) once answer_read()
            # gave replies: the connection needs data (the PROXY header's READ comes before)
            self.deadline = self._rd.next(d.conn, self._clock(), False, d.answering)
        else:
            self._set_deadline(d.conn)
        if self._busy:
            self._busy = False
            self._update_reading()
        self._parked = d.answering

    def _write(self, chunks: list[BytesLike]) -> None:
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        d, transport = self.d, self.transport
        if not data or transport is None or d is None:
            return
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
            try:  # (not contextlib.suppress: three calls less per session)
                steps.close()
            except ValueError:  # it is running: it ends by itself
                return

    def _set_deadline(self, conn: Connection) -> None:
        now = self._clock()
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
        self._unread = stash or ()
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
                self.deadline = self._clock() + linger
            else:
                self.deadline = math.inf

    def abort(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.abort()
