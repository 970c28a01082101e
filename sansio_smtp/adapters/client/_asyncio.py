# asyncio SMTP/ESMTP/LMTP client on an asyncio.BufferedProtocol (no streams).
#
# Strategy: AsyncSMTPClient is the I/O loop around ClientEngine (_engine), like the
# sync client but not built on it: the engine's generators say READ / Write / HANDSHAKE.
# The Protocol serves READ and Write itself, from the transport's callbacks: bytes that
# arrive while a READ waits go to the core at once and the operation resumes inside
# buffer_updated, writing its next request there (one transport.write per request). The
# caller's coroutine waits on a future only while a READ waits for bytes, and wakes only
# when the operation ends, or for a request served with awaits (the TLS handshake; a
# write under back-pressure): one event-loop iteration per reply read, not two, and none
# for an operation whose replies are buffered already. A Write that a reply follows
# (Write.read) is followed by that READ before the engine resumes (read_after_write): one
# resumption of its generators per round trip. One coroutine (_locked) takes the
# lock and runs the operation. The transport reads into one buffer per connection
# (BufferedProtocol): a plain Protocol gets a new bytes object per read, allocated at the
# transport's 256 KiB read size and then shrunk (at times an mmap/mremap/munmap per read);
# the core copies what it needs before buffer_updated returns. Between operations the
# Protocol keeps a copy of what arrives (and pauses reading past a high-water mark).
# Timeouts are loop timers armed with the time left until the step's due time from the
# engine: a whole reply (RFC 5321 §4.5.3.2 phases from Connection.timeout), a whole write
# block, the TLS handshake, and the session ``deadline``, so octets trickling in cannot
# restart a timeout. The clock is
# time.monotonic() (as the loop's), passed to the engine. TLS: loop.start_tls() on the
# same protocol, for STARTTLS and implicit TLS alike, which also works on Python 3.10
# (StreamWriter.start_tls is 3.11+).
#
# Rules: a timeout, a lost connection or a failed handshake aborts the transport, so no
# late reply can be taken for the answer to a later command. Bytes buffered here when the
# STARTTLS handshake is due are handed to the core, which rejects them as injected
# plaintext (RFC 3207 §4.2). One operation at a time: a lock serialises concurrent callers.
"""An asyncio SMTP, ESMTP and LMTP client.

async with AsyncSMTPClient("mail.example.org", 587, tls=TLSMode.STARTTLS_REQUIRED,
                           username="me", password="secret") as smtp:
    result = await smtp.send_message(msg)
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import ssl
import time
import warnings
from typing import Any, TypeVar, cast

from ..._state import Phase
from .._io import HANDSHAKE, READ, Op, Steps, Write
from ._base import AsyncClientCommands
from ._engine import ClientEngine
from ._errors import (
    SMTPConnectError,
    SMTPError,
    SMTPServerDisconnected,
    SMTPTLSError,
)
from ._options import TLSMode, address_literal

__all__ = ["AsyncSMTPClient"]

T = TypeVar("T")
_HIGH_WATER = 256 * 1024  # pause reading when this much is buffered and unread
_READ_SIZE = 256 * 1024  # the read buffer: the transport's own read size
_CLOSE_WAIT = 2.0  # seconds close() waits for the transport to finish closing


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _ClientProtocol(asyncio.BufferedProtocol):
    """Serves the engine's requests from the transport's callbacks: bytes that arrive
    while the operation waits for them go to the core at once, and the operation resumes
    there, writing its next request from ``buffer_updated``. The coroutine that runs the
    operation (``AsyncSMTPClient._locked``) waits on ``waiter`` only while a READ waits
    for bytes, and wakes when the operation ends or for a request served with awaits
    (HANDSHAKE; a Write under back-pressure). Between operations it buffers what arrives
    (pausing reading past a high-water mark)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, engine: ClientEngine) -> None:
        self._loop = loop
        self._engine = engine
        self.transport: asyncio.Transport | None = None
        # what the transport reads into: anonymous memory, backed only as reads reach it
        self._read_buffer = memoryview(mmap.mmap(-1, _READ_SIZE))
        self._chunks: list[bytes] = []
        self._size = 0
        self.eof = False
        self.error: BaseException | None = None
        self._reading_paused = False
        self.writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        # The operation served: its generator, and the future its coroutine awaits while
        # a READ waits (see serve()); ``value`` is what it returned. ``write_started``:
        # when the last Write began (monotonic), for its due time under back-pressure.
        self._steps: Steps[Any] | None = None
        self.waiter: asyncio.Future[Op | None] | None = None
        self.value: object = None
        self.write_started = 0.0
        # The READ waiting (``_reading``): the phase and due time (monotonic, the
        # engine's clock) of the reply awaited. One timer serves read after read
        # (_wait_for_bytes): the due time it is set for in _timer_due.
        self._reading = False
        self._read_phase = Phase.COMMAND
        self._read_due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0

    # -------------------------------------------------------------- callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = self._read_buffer[:nbytes]  # a view: valid until this returns
        if self._reading:  # a READ waits (so nothing is buffered here)
            self._reading = False
            self._engine.conn.receive_data(data)  # (copied into the core's buffer)
            self._resume()
            return
        self._chunks.append(bytes(data))
        self._size += nbytes
        if self._size > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        """End of file: a READ waiting gets b"" (the core makes it ConnectionClosed)."""
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._reading:
            self._reading = False
            self._engine.conn.receive_data(b"")
            self._resume()

    # -------------------------------------------------------------- operations

    def begin(self, steps: Steps[T]) -> None:
        """Serve ``steps`` from now on (``serve()`` runs it)."""
        self._steps = steps

    def end(self) -> None:
        """Serve the operation no more (it failed, or its coroutine was cancelled)."""
        self._steps = None
        self.waiter = None
        self._reading = False

    def wait(self) -> asyncio.Future[Op | None]:
        """The future the coroutine awaits while a READ waits: it gives what ``serve()``
        gives once the callbacks went on with the operation (never READ), or raises what
        the operation raised (a timeout included)."""
        waiter = self.waiter = self._loop.create_future()
        return waiter

    def serve(self) -> Op | None:
        """Resume the operation and serve its requests in place while no wait is needed:
        a READ of buffered bytes, a Write the transport takes. Returns READ when a READ
        waits for bytes (buffer_updated, end of file or the timer goes on), the request
        the coroutine must serve (HANDSHAKE; a Write under back-pressure), or None when
        the operation returned (``value``). Raises what the operation raised."""
        steps = self._steps
        if steps is None:  # pragma: no cover - ended meanwhile
            return None
        conn = self._engine.conn
        try:
            op = steps.send(None)
            while True:
                if type(op) is Write:
                    self.write_started = time.monotonic()
                    transport = self.transport
                    if transport is None or transport.is_closing() or self.eof:
                        self._engine.broken = True
                        raise SMTPServerDisconnected("connection lost")
                    for chunk in op.chunks:
                        transport.write(chunk)
                    if self.writing_paused:  # back-pressure: the coroutine drains
                        return op
                    # A reply comes next (engine.read_after_write): read before resuming,
                    # when the core holds nothing, as the operation would READ.
                    if not op.read or conn.buffered or conn.peer_closed:
                        op = steps.send(None)
                        continue
                elif op is not READ:
                    return op  # HANDSHAKE
                # READ
                if self._chunks:
                    conn.receive_data(self.take())
                elif self.eof:
                    conn.receive_data(b"")
                else:
                    self._wait_for_bytes()
                    return READ
                op = steps.send(None)
        except StopIteration as stop:
            self._steps = None
            self.value = stop.value
            return None

    def _resume(self) -> None:
        """Bytes (or the end of file) reached the READ waiting: go on with the operation
        here, and hand its coroutine what it must do next, unless a READ waits again."""
        waiter = self.waiter
        if waiter is None:  # pragma: no cover - ended meanwhile
            return
        try:
            op = self.serve()
        except BaseException as exc:
            self._steps = self.waiter = None
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if op is not READ:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(op)

    # ----------------------------------------------------------------- reading

    def take(self) -> bytes:
        """Everything buffered (b"" if nothing)."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._size = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def _wait_for_bytes(self) -> None:
        """The READ waits until the reply awaited is due (engine.read_due)."""
        now = time.monotonic()
        self._read_phase, due = self._engine.read_due(now)
        self._read_due = due
        self._reading = True
        # A timer is not set and cancelled per read: the one set for an earlier read
        # stays while it would fire no later than this read's due time, and when it fires
        # before that (_read_expired), it is set again for it. Each reply is due minutes
        # after it is awaited (RFC 5321 §4.5.3.2), so it rarely fires at all. Due times
        # are compared on the engine's clock: the loop's is read only to set the timer.
        if self._timer is None or self._timer_due > due:
            self._set_timer(due, now)

    def _set_timer(self, due: float, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = self._loop
        self._timer = loop.call_at(loop.time() + max(0.0, due - now), self._read_expired)
        self._timer_due = due

    def _read_expired(self) -> None:
        self._timer = None
        waiter = self.waiter
        if not self._reading or waiter is None or waiter.done():
            return  # no read waits now: the timer lapses
        now = time.monotonic()
        if now < self._read_due:
            self._set_timer(self._read_due, now)
            return
        self._reading = False
        self._steps = self.waiter = None
        waiter.set_exception(self._engine.timed_out(self._read_phase, self._read_due))

    async def drain(self, timeout: float) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if not self.writing_paused or self.eof:
            return
        waiter = self._drain_waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._drain_waiter = None


class AsyncSMTPClient(AsyncClientCommands):
    """An asyncio SMTP client for one server; use ``async with`` (or ``await connect()``
    and ``await quit()``/``close()``). The options are those of SMTPClient.

    - ``host``, ``port``: the server (port 465 defaults to implicit TLS).
    - ``tls``: a TLSMode; default IMPLICIT on port 465, else STARTTLS_OPPORTUNISTIC.
    - ``ssl_context``: default ``ssl.create_default_context()`` (verifies the certificate
      and host name). ``server_hostname``: the name to verify, default ``host``.
    - ``local_hostname``: our EHLO name, default the address literal of our socket.
    - ``username`` with ``password`` (or ``token``), ``authzid``, ``auth_mechanisms``,
      ``allow_plaintext_auth``: AUTH when the session opens (see SMTPClient).
    - ``lmtp``: speak LMTP (RFC 2033).
    - ``timeout``/``timeouts``: seconds for every phase / per phase, each bounding a whole
      reply; ``deadline``: seconds for the whole session (see SMTPClient).
    - ``pipelining``, ``chunking``, ``bdat_chunk_size``, ``transcript``, ``on_transcript``:
      as for SMTPClient.
    """

    def _init_transport(self) -> None:
        self._protocol: _ClientProtocol | None = None
        self._transport: asyncio.Transport | None = None
        self._lock: asyncio.Lock | None = None

    # ----------------------------------------------------------------- lifecycle

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            with contextlib.suppress(Exception):
                transport.abort()

    async def connect(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured. On failure
        the connection is closed (after a QUIT when the session allows one)."""
        if self._transport is not None:
            raise RuntimeError("already connected")
        opts = self._options
        loop = asyncio.get_running_loop()
        engine = self._engine = ClientEngine(opts)
        engine.read_after_write = True  # serve() reads after a Write(read=True)
        self._lock = asyncio.Lock()
        protocol = _ClientProtocol(loop, engine)
        now = time.monotonic()
        engine.start_clock(now)
        due = engine.step_due(Phase.CONNECT, now)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol, opts.host, opts.port, local_addr=self._source_address
                ),
                due - now,
            )
        except asyncio.TimeoutError:
            raise engine.timed_out(Phase.CONNECT, due) from None
        except OSError as exc:
            raise SMTPConnectError(f"cannot connect to {opts.host}:{opts.port}: {exc}") from exc
        self._protocol = protocol
        self._transport = transport
        if opts.local_hostname is None:
            engine.local_hostname = address_literal(transport.get_extra_info("sockname"))
        engine.note(f"connected to {opts.host}:{opts.port}")
        try:
            if opts.tls is TLSMode.IMPLICIT:
                await self._handshake(implicit=True)
            await self._locked(engine.open())
        except BaseException:
            if self._transport is not None and engine.usable:
                with contextlib.suppress(SMTPError, asyncio.TimeoutError):
                    await self._locked(engine.quit())
            if engine.broken:  # timed out, lost or broken: abort, no orderly close to wait for
                self.close()
            await self.aclose()
            raise

    def close(self) -> None:
        """Abort the connection at once (no QUIT). Safe to call more than once."""
        transport, self._transport = self._transport, None
        if transport is not None:
            self._engine.broken = True
            transport.abort()

    async def aclose(self) -> None:
        """Close the connection (no QUIT) and wait briefly until it is closed."""
        transport, self._transport = self._transport, None
        protocol = self._protocol
        if transport is None or protocol is None:
            return
        self._engine.broken = True
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(protocol.closed), _CLOSE_WAIT)
        except asyncio.TimeoutError:
            transport.abort()
        except asyncio.CancelledError:
            transport.abort()
            raise

    # ---------------------------------------------------------------- introspection

    @property
    def connected(self) -> bool:
        return self._transport is not None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS object once TLS is active (``version()``, ``getpeercert()``...)."""
        if self._transport is None:
            return None
        obj = self._transport.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    # ------------------------------------------------------------------------ I/O

    async def _locked(self, steps: Steps[T]) -> T:
        """Run an operation, one at a time: the protocol serves its requests, from the
        transport's callbacks once a READ waits for bytes; this coroutine serves those
        that need awaiting (HANDSHAKE, a Write under back-pressure) and wakes once more
        when the operation ends (not at all when it ends without waiting)."""
        lock = self._lock
        protocol = self._protocol
        if lock is None or protocol is None or self._transport is None:
            steps.close()
            raise SMTPServerDisconnected("not connected")
        await lock.acquire()  # as ``async with lock``, without its two coroutines
        try:
            if self._transport is None:  # closed by the operation before this one
                steps.close()
                raise SMTPServerDisconnected("not connected")
            engine = self._engine
            protocol.begin(steps)
            try:
                op = protocol.serve()
                while op is not None:
                    if op is READ:
                        op = await protocol.wait()  # the callbacks go on meanwhile
                        continue
                    if op is HANDSHAKE:
                        await self._handshake()
                    else:
                        await self._drain(protocol, cast(Write, op), protocol.write_started)
                    op = protocol.serve()
            except BaseException:
                protocol.end()
                steps.close()
                if not engine.usable:
                    self.close()
                raise
            if engine.broken:  # e.g. a 421 ended the session (RFC 5321 §3.8)
                self.close()
            value, protocol.value = protocol.value, None
            return cast(T, value)
        finally:
            lock.release()

    async def _drain(self, protocol: _ClientProtocol, op: Write, started: float) -> None:
        """Wait for the write buffer to drain, until the write's due time; the octets the
        kernel took meanwhile (each started block) extend it (engine.write_due)."""
        engine = self._engine
        phase = op.phase
        total = 0
        for chunk in op.chunks:
            total += len(chunk)
        while protocol.writing_paused and not protocol.eof:
            transport = self._transport
            unsent = transport.get_write_buffer_size() if transport is not None else 0
            due = engine.write_due(phase, started, max(0, total - unsent))
            seconds = due - time.monotonic()
            if seconds <= 0:
                raise engine.timed_out(phase, due)
            with contextlib.suppress(TimeoutError):
                await protocol.drain(seconds)

    async def _handshake(self, *, implicit: bool = False) -> None:
        """TLS on the connection (implicit TLS, or after STARTTLS's 220)."""
        engine = self._engine
        protocol = self._protocol
        transport = self._transport
        assert protocol is not None and transport is not None
        leftover = protocol.take()
        if leftover and implicit:
            # Implicit TLS: the server speaks only after our ClientHello (RFC 8314 §3.3).
            # Bytes already here are not TLS; taken as a plaintext greeting they would
            # make the session go on in the clear while the core believes TLS is active.
            engine.broken = True
            raise SMTPTLSError("the server sent data before the TLS handshake (implicit TLS)")
        if leftover:
            # Plaintext after the 220: hand it to the core, whose tls_established()
            # refuses it (RFC 3207 §4.2, CVE-2011-0411). No handshake.
            engine.conn.receive_data(leftover)
            return
        opts = self._options
        context = self._ssl_context
        if context is None:
            context = self._ssl_context = ssl.create_default_context()
        now = time.monotonic()
        due = engine.step_due(Phase.TLS, now)
        seconds = max(0.001, due - now)
        name = opts.server_hostname or opts.host
        loop = asyncio.get_running_loop()
        try:
            new_transport = await asyncio.wait_for(
                loop.start_tls(
                    transport,
                    protocol,
                    context,
                    server_hostname=name,
                    ssl_handshake_timeout=seconds * 2,
                ),
                seconds,
            )
        except asyncio.TimeoutError:
            raise engine.timed_out(Phase.TLS, due) from None
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            engine.broken = True
            raise SMTPTLSError(f"TLS handshake with {name} failed: {exc}") from exc
        if new_transport is None:  # pragma: no cover - the loop closed it
            engine.broken = True
            raise SMTPTLSError("TLS handshake failed: the transport was closed")
        self._transport = protocol.transport = new_transport
        obj = new_transport.get_extra_info("ssl_object")
        if obj is not None:
            engine.tls_ready(obj)
