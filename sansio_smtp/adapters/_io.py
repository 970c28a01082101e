# The I/O requests of the adapters' sans-IO drivers. A driver (the client engine, the
# server dispatcher) is a generator: it yields what it needs done - READ some bytes,
# Write(chunks), HANDSHAKE (TLS) - and the runtime (blocking sockets, asyncio, AnyIO)
# serves each and resumes it. The runtimes own the transport, the clock and TLS; the
# drivers own every protocol decision. The server dispatcher also yields Await and CLOSE.
from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Final, Literal, Protocol, TypeVar, final

from .._events import BytesLike
from .._state import Phase

__all__ = [
    "CLOSE",
    "HANDSHAKE",
    "READ",
    "Await",
    "Op",
    "ServerOp",
    "ServerSteps",
    "Steps",
    "TLSInfo",
    "Write",
    "coalesce",
]

T = TypeVar("T")

_COALESCE: Final = 64 * 1024  # join smaller pieces into one write


class TLSInfo(Protocol):
    """What the engine reads from a finished TLS handshake: ``ssl.SSLSocket`` and
    ``ssl.SSLObject`` both are one."""

    def version(self) -> str | None: ...

    def cipher(self) -> tuple[str, str, int] | None: ...

    def getpeercert(self, binary_form: Literal[True]) -> bytes | None: ...


@final
class _Read:
    """Read some bytes from the transport and pass them to ``engine.conn.receive_data``
    (``b""`` at end of file). Time out after ``engine.read_timeout()``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "READ"


@final
class _Handshake:
    """Do the TLS handshake on the transport (after STARTTLS's 220). Bytes the adapter
    buffered outside the core must be passed to ``receive_data`` first (they are plaintext
    injected by an attacker) and then no handshake done: the engine raises."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HANDSHAKE"


@final
class Write:
    """Write ``chunks`` in order, within ``engine.timeout(phase)`` seconds (``phase``: what
    the write is, RFC 5321 §4.5.3.2: a command, a data block).

    ``read``: a reply or command is awaited next. The server's driver would ask READ
    next: the runtime may serve that READ before resuming it, saving a resumption per
    read (lock-step clients); one that resumes it at once gets READ next. The client
    engine marks every write that a reply follows; with ``read_after_write`` set it
    leaves the first READ to the runtime, which reads when the core holds nothing."""

    __slots__ = ("chunks", "phase", "read")

    def __init__(
        self, chunks: list[BytesLike], phase: Phase = Phase.COMMAND, *, read: bool = False
    ) -> None:
        self.chunks = chunks
        self.phase = phase
        self.read = read

    def __repr__(self) -> str:
        return f"Write({sum(len(c) for c in self.chunks)} octets)"


@final
class Await:
    """(Server) Wait for ``awaitable`` - a hook's awaitable result, or blocking work run
    off the event loop - then send its value into the driver, or throw its exception in."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: Awaitable[object]) -> None:
        self.awaitable = awaitable

    def __repr__(self) -> str:
        return f"Await({self.awaitable!r})"


@final
class _Close:
    """(Server) Close the connection: the driver has nothing more to say."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSE"


READ: Final = _Read()
HANDSHAKE: Final = _Handshake()
CLOSE: Final = _Close()
Op = _Read | _Handshake | Write
Steps = Generator[Op, None, T]
#: The server dispatcher's requests. What the runtime sends back: None after READ (the
#: bytes went to ``receive_data``) and Write, the ``TLSInfo`` (or None) after HANDSHAKE,
#: the awaited value after Await (its exception is thrown in instead).
ServerOp = _Read | _Handshake | Write | Await | _Close
ServerSteps = Generator[ServerOp, object, None]


def coalesce(chunks: list[BytesLike]) -> list[BytesLike]:
    """Join runs of small pieces so a pipelined group is one write (one TCP segment)."""
    if len(chunks) == 1:
        return chunks
    total = 0
    for c in chunks:
        total += len(c)
    if total <= _COALESCE:
        return [b"".join(chunks)]
    out: list[BytesLike] = []
    small: list[BytesLike] = []
    for c in chunks:
        if len(c) < 4096:
            small.append(c)
            continue
        if small:
            out.append(b"".join(small))
            small = []
        out.append(c)
    if small:
        out.append(b"".join(small))
    return out
