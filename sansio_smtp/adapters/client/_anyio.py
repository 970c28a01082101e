# AnyIO SMTP/ESMTP/LMTP client (asyncio or trio underneath).
#
# Strategy: AnyioSMTPClient is the I/O loop around ClientEngine (_engine), as the sync
# and asyncio clients are: the engine's generators say READ / Write / HANDSHAKE and each is
# served here with an AnyIO byte stream, every wait under anyio.fail_after with the time
# left until the step's due time from the engine: a whole reply (RFC 5321 §4.5.3.2
# phases), a whole write block, the TLS handshake, and the session ``deadline``, so octets
# trickling in cannot restart a timeout. The clock is time.monotonic(), passed to the
# engine (only differences reach anyio, so trio's own clock need not match). Nothing is
# read ahead of the engine, so at HANDSHAKE no plaintext can be buffered outside the core
# (which refuses what it holds, RFC 3207 §4.2). TLS: TLSStream.wrap() for STARTTLS and
# implicit TLS alike.
#
# Rules: a timeout, a lost connection or a failed handshake closes the stream, so no late
# reply can be taken for the answer to a later command. One operation at a time: a lock
# serialises concurrent callers.
"""An AnyIO (asyncio or trio) SMTP, ESMTP and LMTP client.

async with AnyioSMTPClient("mail.example.org", 587, tls=TLSMode.STARTTLS_REQUIRED,
                           username="me", password="secret") as smtp:
    result = await smtp.send_message(msg)
"""

from __future__ import annotations

import contextlib
import ssl
import time
from typing import Final, TypeVar, cast

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from ..._state import Phase
from .._io import READ, Steps, Write
from ._base import AsyncClientCommands
from ._engine import ClientEngine
from ._errors import (
    SMTPConnectError,
    SMTPError,
    SMTPServerDisconnected,
    SMTPTLSError,
)
from ._options import WRITE_BLOCK, TLSMode, address_literal

__all__ = ["AnyioSMTPClient"]

T = TypeVar("T")
_RECV_SIZE: Final = 65536
_CLOSED: Final = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)


class AnyioSMTPClient(AsyncClientCommands):
    """An AnyIO SMTP client for one server; use ``async with`` (or ``await connect()``
    and ``await quit()``/``aclose()``). The options and results are those of
    AsyncSMTPClient (``tls``, ``ssl_context``, ``server_hostname``, ``local_hostname``,
    ``username``/``password``/``token``/``authzid``/``auth_mechanisms``,
    ``allow_plaintext_auth``, ``lmtp``, ``timeout``/``timeouts``, ``deadline``, ``pipelining``,
    ``chunking``, ``bdat_chunk_size``, ``transcript``, ``on_transcript``), except
    ``source_address``: only its host is used (AnyIO picks the local port).
    """

    def _init_transport(self) -> None:
        self._stream: anyio.abc.ByteStream | None = None
        self._lock: anyio.Lock | None = None

    # ----------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured. On failure
        the connection is closed (after a QUIT when the session allows one)."""
        if self._stream is not None:
            raise RuntimeError("already connected")
        opts = self._options
        engine = self._engine = ClientEngine(opts)
        self._lock = anyio.Lock()
        now = time.monotonic()
        engine.start_clock(now)
        due = engine.step_due(Phase.CONNECT, now)
        local_host = self._source_address[0] if self._source_address else None
        try:
            with anyio.fail_after(due - now):
                sock = await anyio.connect_tcp(opts.host, opts.port, local_host=local_host)
        except TimeoutError:
            raise engine.timed_out(Phase.CONNECT, due) from None
        except OSError as exc:
            raise SMTPConnectError(f"cannot connect to {opts.host}:{opts.port}: {exc}") from exc
        self._stream = sock
        if opts.local_hostname is None:
            engine.local_hostname = address_literal(sock.extra(SocketAttribute.local_address))
        engine.note(f"connected to {opts.host}:{opts.port}")
        try:
            if opts.tls is TLSMode.IMPLICIT:
                await self._handshake()
            async with self._lock:
                await self._run(engine.open())
        except BaseException:
            if self._stream is not None and engine.usable:
                with anyio.move_on_after(engine.timeout(Phase.COMMAND), shield=True):
                    with contextlib.suppress(SMTPError):
                        await self._run(engine.quit())
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection (no QUIT). Safe to call more than once."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._engine.broken = True
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)

    # ---------------------------------------------------------------- introspection

    @property
    def connected(self) -> bool:
        return self._stream is not None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS object once TLS is active (``version()``, ``getpeercert()``...)."""
        if self._stream is None:
            return None
        return self._stream.extra(TLSAttribute.ssl_object, None)

    # ------------------------------------------------------------------------ I/O

    async def _locked(self, steps: Steps[T]) -> T:
        lock = self._lock
        if lock is None or self._stream is None:
            steps.close()
            raise SMTPServerDisconnected("not connected")
        async with lock:
            return await self._run(steps)

    async def _run(self, steps: Steps[T]) -> T:
        """Serve the engine's I/O requests until the operation returns or raises."""
        engine = self._engine
        if self._stream is None:
            steps.close()
            raise SMTPServerDisconnected("not connected")
        conn = engine.conn
        try:
            op = next(steps)
            while True:
                if op is READ:
                    conn.receive_data(await self._read())
                elif type(op) is Write:
                    await self._write(op)
                else:
                    await self._handshake()
                op = steps.send(None)
        except StopIteration as stop:
            if engine.broken:  # e.g. a 421 ended the session (RFC 5321 §3.8)
                await self.aclose()
            return cast(T, stop.value)
        except BaseException:
            steps.close()
            if not engine.usable:
                await self.aclose()
            raise

    def _current(self) -> anyio.abc.ByteStream:
        stream = self._stream
        if stream is None:
            self._engine.broken = True
            raise SMTPServerDisconnected("connection lost")
        return stream

    async def _read(self) -> bytes:
        stream = self._current()
        phase, due = self._engine.read_due(time.monotonic())
        try:
            with anyio.fail_after(max(0.0, due - time.monotonic())):
                return await stream.receive(_RECV_SIZE)
        except _CLOSED:
            return b""  # the core turns it into ConnectionClosed
        except TimeoutError:
            raise self._engine.timed_out(phase, due) from None

    async def _write(self, op: Write) -> None:
        """Write op's chunks in pieces of at most WRITE_BLOCK octets, each under the
        write's due time so far (engine.write_due: a timeout per started block)."""
        stream = self._current()
        engine = self._engine
        phase = op.phase
        started = time.monotonic()
        done = 0
        due = engine.write_due(phase, started, done)
        try:
            for chunk in op.chunks:
                size = len(chunk)
                view = chunk if size <= WRITE_BLOCK else memoryview(chunk)
                for start in range(0, size, WRITE_BLOCK):
                    piece = view if size <= WRITE_BLOCK else view[start : start + WRITE_BLOCK]
                    due = engine.write_due(phase, started, done)
                    with anyio.fail_after(max(0.0, due - time.monotonic())):
                        await stream.send(piece if isinstance(piece, bytes) else bytes(piece))
                    done += len(piece)
        except TimeoutError:
            raise engine.timed_out(phase, due) from None
        except (*_CLOSED, OSError) as exc:
            self._engine.broken = True
            raise SMTPServerDisconnected("connection lost") from exc

    async def _handshake(self) -> None:
        """TLS on the stream (implicit TLS, or after STARTTLS's 220). Nothing was read
        ahead of the core, so there is no plaintext to hand over first."""
        engine = self._engine
        stream = self._current()
        opts = self._options
        context = self._ssl_context
        if context is None:
            context = self._ssl_context = ssl.create_default_context()
        now = time.monotonic()
        due = engine.step_due(Phase.TLS, now)
        name = opts.server_hostname or opts.host
        try:
            with anyio.fail_after(max(0.0, due - now)):
                tls = await TLSStream.wrap(
                    stream, hostname=name, ssl_context=context, standard_compatible=False
                )
        except TimeoutError:
            raise engine.timed_out(Phase.TLS, due) from None
        except (ssl.SSLError, OSError, *_CLOSED) as exc:
            engine.broken = True
            raise SMTPTLSError(f"TLS handshake with {name} failed: {exc}") from exc
        self._stream = tls
        obj = tls.extra(TLSAttribute.ssl_object, None)
        if obj is not None:
            engine.tls_ready(obj)
