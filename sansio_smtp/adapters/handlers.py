# The server-side application API shared by both server adapters: what a handler is, the
# Session and Envelope objects it sees, the built-in handlers, and the Dispatcher that turns
# core events into hook calls and replies.
#
# Strategy: a handler is any object with some of the hook methods of ``Handler`` (missing
# ones, and ones inherited unchanged from ``Handler``, are skipped at no cost). A hook
# returns a Reply, returns None for the RFC-correct default (``Connection.default_reply``),
# or raises ``Reject(reply)``; any other exception is logged and answered ``451 4.3.0``
# (RFC 5321 §4.2.3). Hooks are plain methods, so one handler serves the blocking and the
# asyncio server alike; the asyncio server also accepts ``async def`` hooks.
#
# The Dispatcher is sans-IO like the core: the adapter feeds it bytes, writes ``out``, and
# does what ``run()`` asks (read more, await a hook, start TLS, close). It never blocks and
# never awaits, so both servers share every protocol decision and differ only in I/O.
# Rules: the core decides what is legal; the Dispatcher only answers, in order, one reply per
# command (the core pauses until each is sent); AUTH secrets never reach a log or a repr.
from __future__ import annotations

import contextlib
import email.utils
import enum
import functools
import inspect
import itertools
import logging
import mailbox
import os
import re
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, TypeAlias

import attrs

from .. import sasl
from .._address import Address
from .._connection import NEED_DATA, PAUSED, Connection
from .._events import (
    Auth,
    AuthResponse,
    Bdat,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Greeting,
    Helo,
    InvalidCommand,
    InvalidMessage,
    Lhlo,
    MailFrom,
    MessageData,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
)
from .._params import Params
from .._state import LmtpDelivery, Role, State
from .._util import LocalProtocolError, RemoteProtocolError
from ..config import Config
from ._limits import (
    AuthFailureBudget,
    ClientLimits,
    LogThrottle,
    client_key,
    connection_cap,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no mbox locking
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import ssl

    from .client import SendResult, TLSMode

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "Action",
    "Authenticator",
    "Dispatcher",
    "Envelope",
    "Handler",
    "MaildirHandler",
    "MboxHandler",
    "MemoryHandler",
    "PasswordTable",
    "PeerAddress",
    "PrintHandler",
    "Reject",
    "RelayHandler",
    "ServerBase",
    "Session",
    "SinkHandler",
    "TrafficLog",
    "prepare_config",
    "printable",
    "received_header",
]

log = logging.getLogger("sansio_smtp.server")

#: The message size limit (octets) a server applies when its Config sets none, advertised
#: as ``SIZE`` (RFC 1870 §4). Without one a client may send any amount. 32 MiB, as
#: aiosmtpd's default (Postfix's message_size_limit is 10 MB): room for the attachments
#: mail commonly carries once base64 has grown them by a third.
DEFAULT_MAX_MESSAGE_SIZE: Final = 33554432

#: ``offload(fn)``: an awaitable of ``fn()`` run off the event loop (a worker thread)
Offload: TypeAlias = "Callable[[Callable[[], object]], Awaitable[object]]"

#: A client's address: (host, port) for TCP, the socket path (often "") for Unix sockets.
PeerAddress: TypeAlias = "tuple[str, int] | str | None"

#: What a hook may return: a Reply, None (the default reply), or, in the asyncio server, an
#: awaitable of either.
HookResult: TypeAlias = "Reply | Awaitable[Reply | None] | None"
DataResult: TypeAlias = "Reply | Sequence[Reply] | Awaitable[Reply | Sequence[Reply] | None] | None"
AuthAnswer: TypeAlias = "sasl.CredentialAnswer | None"
#: ``(session, request) -> answer``: checks credentials for AUTH (see Handler.auth).
Authenticator: TypeAlias = (
    "Callable[[Session, sasl.NeedCredentials], AuthAnswer | Awaitable[AuthAnswer]]"
)

# RFC 5321 §4.2.3: 451 Requested action aborted: local error in processing.
LOCAL_ERROR: Final = Reply(
    code=451, lines="Requested action aborted: local error in processing", enhanced="4.3.0"
)
# RFC 4954 §6: 454 4.7.0 Temporary authentication failure.
AUTH_TEMPFAIL: Final = Reply(code=454, lines="Temporary authentication failure", enhanced="4.7.0")

_MAIL, _RCPT, _DATA, _BDAT = State.MAIL, State.RCPT, State.DATA, State.BDAT


def in_transaction(state: State) -> bool:
    """A mail transaction is open (RFC 5321 §3.3). Identity tests: Enum hashing is slow."""
    return state is _RCPT or state is _DATA or state is _MAIL or state is _BDAT


_session_ids = itertools.count(1)
_ID_PREFIX: Final = f"{int(time.time()) & 0xFFFFFF:06X}{os.getpid() & 0xFFFF:04X}"


# ------------------------------------------------------------------------ the objects


class Reject(Exception):
    """Raise from a hook to answer with ``reply``: ``raise Reject(550, "No such user",
    "5.1.1")`` or ``raise Reject(Reply(...))``. The reply keeps its code (never only a
    string)."""

    def __init__(self, reply: Reply | int, text: str = "", enhanced: str | None = None) -> None:
        if not isinstance(reply, Reply):
            reply = Reply(code=reply, lines=text or "Rejected", enhanced=enhanced)
        super().__init__(str(reply))
        self.reply = reply


@attrs.define(eq=False)
class Envelope:
    """One mail transaction (RFC 5321 §3.3), as the handler sees it.

    - ``mail_from``: the reverse-path, None for the null path ``<>``; ``mail_params``.
    - ``rcpt_tos``: the accepted recipients, in order, with their ``rcpt_params``.
    - ``content``: the message as received (CRLF line endings, dot-stuffing removed), set
      when the message ends (empty while streaming, and for handlers that set
      ``buffer_content = False``).
    - Copied from the session when MAIL was accepted, for trace headers: ``peer``,
      ``helo_name``, ``hostname`` (ours), ``protocol`` (RFC 3848: ESMTP, ESMTPS, ESMTPSA,
      LMTP...), ``authenticated_user``, ``session_id``.
    """

    mail_from: Address | None
    mail_params: Params = attrs.field(factory=Params)
    rcpt_tos: list[Address] = attrs.field(factory=list)
    rcpt_params: list[Params] = attrs.field(factory=list)
    content: bytes = attrs.field(default=b"", repr=lambda c: f"<{len(c)} bytes>")
    peer: PeerAddress = None
    helo_name: str | None = None
    hostname: str = "localhost"
    protocol: str = "ESMTP"
    authenticated_user: str | None = None
    session_id: str = ""

    def received_header(self, *, date: str | None = None) -> bytes:
        """This transaction's ``Received:`` trace header (RFC 5321 §4.4), CRLF-terminated."""
        return received_header(self, date=date)

    def with_trace(self) -> bytes:
        """``content`` with the Received: header prepended (RFC 5321 §4.4: a relay or final
        delivery MUST insert it at the top of the message)."""
        return received_header(self) + self.content


@attrs.define(eq=False)
class Session:
    """One client connection, as the handler sees it; updated as the dialogue goes on.

    - ``peer`` / ``local``: the addresses of the two ends; ``hostname``: our name.
    - ``id``: a short unique id (used as the Received: ``id``).
    - ``helo_name``, ``esmtp`` (EHLO/LHLO rather than HELO), ``lmtp``.
    - ``tls`` (with ``tls_version`` and ``tls_cipher``), ``authenticated_user`` and
      ``auth_mechanism``: forgotten on STARTTLS, which starts the session over (RFC 3207
      §4.2), except ``tls``.
    - ``envelope``: the transaction in progress, or None; ``transactions``: messages
      accepted so far; ``extra``: the handler's own per-session state.
    """

    peer: PeerAddress = None
    local: PeerAddress = None
    hostname: str = "localhost"
    lmtp: bool = False
    id: str = attrs.field(factory=lambda: f"{_ID_PREFIX}{next(_session_ids):X}")
    helo_name: str | None = None
    esmtp: bool = False
    tls: bool = False
    tls_version: str | None = None
    tls_cipher: str | None = None
    authenticated_user: str | None = None
    auth_mechanism: str | None = None
    envelope: Envelope | None = None
    transactions: int = 0
    extra: dict[str, object] = attrs.field(factory=dict)

    @property
    def protocol(self) -> str:
        """The RFC 3848 ``with`` keyword for this session: SMTP (HELO), ESMTP, LMTP, plus
        S under TLS and A once authenticated (ESMTPSA, LMTPS...)."""
        if not self.esmtp and not self.lmtp:
            return "SMTP"
        base = "LMTP" if self.lmtp else "ESMTP"
        return base + ("S" if self.tls else "") + ("A" if self.authenticated_user else "")


def _tcp_info(peer: PeerAddress) -> str:
    # RFC 5321 §4.4 TCP-info: an address-literal (§4.1.3), "IPv6:" for IPv6.
    if isinstance(peer, tuple):
        host = peer[0]
        return f"[IPv6:{host}]" if ":" in host else f"[{host}]"
    return "localhost"


def received_header(envelope: Envelope, *, date: str | None = None) -> bytes:
    """``Received: from HELO (TCP-info) by HOST with PROTOCOL id ID [for <rcpt>]; DATE``
    (RFC 5321 §4.4 Time-stamp-line; RFC 3848 protocol names). ``for`` appears only with a
    single recipient, so a copy does not reveal the other recipients (§7.2)."""
    if date is None:
        date = email.utils.formatdate(localtime=False, usegmt=False)
    helo = envelope.helo_name or "unknown"
    parts = [f"Received: from {helo} ({_tcp_info(envelope.peer)})"]
    parts.append(f"\tby {envelope.hostname} with {envelope.protocol} id {envelope.session_id}")
    if len(envelope.rcpt_tos) == 1:
        parts.append(f"\tfor <{envelope.rcpt_tos[0]}>; {date}")
    else:
        parts[-1] += ";"
        parts.append(f"\t{date}")
    return ("\r\n".join(parts) + "\r\n").encode("utf-8")


# --------------------------------------------------------------------------- handlers


class Handler:
    """Base class of server handlers: every hook is optional and does the default.

    Hooks run in order, one at a time per connection, and may be ``async def`` in the
    asyncio server (reading stops while one runs). Each returns a Reply, None for the
    default (``Connection.default_reply``), or raises ``Reject``.

    - ``connect(session)``: None greets with 220; a 554 reply refuses service (the client
      may only QUIT, RFC 5321 §3.1), a 421 closes.
    - ``ehlo/helo/lhlo(session, event)``, ``mail(session, event)``, ``rcpt(session, event)``,
      ``rset(session, event)``, ``quit(session, event)``: answer that command.
      ``session.envelope`` is the transaction so far.
    - ``data_chunk(session, envelope, chunk)``: each piece of message content as it arrives
      (DATA or BDAT); raise Reject to fail the message (the reply is sent at its end).
    - ``data(session, envelope)``: the message has ended; ``envelope.content`` holds it
      unless ``buffer_content`` is False. LMTP (RFC 2033 §4.2): return one Reply per
      recipient in ``envelope.rcpt_tos`` order, or one Reply for all.
    - ``auth(session, request)``: check credentials for AUTH: ``request`` is a
      ``sasl.VerifyPassword`` (answer True/False), ``LookupPassword`` (``StoredPassword``),
      ``LookupScramKeys`` (``ScramStoredKeys``) or ``VerifyToken`` (True/False); None
      fails. A server built with a ``{user: password}`` mapping uses that instead.
    - ``disconnect(session)``: the connection is gone (no reply).

    Set ``blocking_io = True`` when ``data_chunk`` and ``data`` block on I/O (files,
    fsync): the async servers then run them in a worker thread, so other clients are
    served meanwhile; they must then be plain methods, safe to call from another thread.
    """

    #: keep the message content for ``data`` (False: only ``data_chunk`` sees it)
    buffer_content: bool = True
    #: ``data_chunk`` and ``data`` block: the async servers run them in a worker thread
    blocking_io: bool = False

    def connect(self, session: Session) -> HookResult:
        return None

    def ehlo(self, session: Session, event: Ehlo) -> HookResult:
        return None

    def helo(self, session: Session, event: Helo) -> HookResult:
        return None

    def lhlo(self, session: Session, event: Lhlo) -> HookResult:
        return None

    def mail(self, session: Session, event: MailFrom) -> HookResult:
        return None

    def rcpt(self, session: Session, event: RcptTo) -> HookResult:
        return None

    def data_chunk(
        self, session: Session, envelope: Envelope, chunk: bytes
    ) -> Awaitable[None] | None:
        return None

    def data(self, session: Session, envelope: Envelope) -> DataResult:
        return None

    def auth(
        self, session: Session, request: sasl.NeedCredentials
    ) -> AuthAnswer | Awaitable[AuthAnswer]:
        return None

    def rset(self, session: Session, event: Rset) -> HookResult:
        return None

    def quit(self, session: Session, event: Quit) -> HookResult:
        return None

    def disconnect(self, session: Session) -> Awaitable[None] | None:
        return None


class SinkHandler(Handler):
    """Accept every message and discard it (content is not even buffered)."""

    buffer_content = False


class MemoryHandler(Handler):
    """Collect each accepted transaction's Envelope (with its content) in ``messages``.
    Thread-safe; ``wait_for(n)`` waits until n messages have arrived."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self._cond = threading.Condition()

    def data(self, session: Session, envelope: Envelope) -> Reply | None:
        with self._cond:
            self.messages.append(envelope)
            self._cond.notify_all()
        return None

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` messages were collected; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)


class _Spool:
    """One message on its way to disk: a temporary file written chunk by chunk, so memory
    per message stays one chunk whatever its size. ``to_lf`` converts CRLF to LF as it
    goes (a CR at a chunk's end waits for the next chunk). ``lock`` serializes the worker
    thread that writes with a ``discard`` from the event loop (a client that went away):
    a spool in use is only marked ``abandoned`` and cleaned up by its user."""

    __slots__ = ("_cr", "_to_lf", "abandoned", "envelope", "file", "lock", "path")

    def __init__(
        self, envelope: Envelope, file: IO[bytes], path: str | None, *, to_lf: bool
    ) -> None:
        self.envelope = envelope
        self.file = file
        self.path = path  # None: an unnamed temporary file
        self.lock = threading.Lock()
        self.abandoned = False
        self._cr = False
        self._to_lf = to_lf
        self.write(envelope.received_header())  # RFC 5321 §4.4: trace header first

    def write(self, data: bytes) -> None:
        if self._to_lf:
            if self._cr:
                data = b"\r" + data
            self._cr = data.endswith(b"\r")
            if self._cr:
                data = data[:-1]
            data = data.replace(b"\r\n", b"\n")
        self.file.write(data)

    def finish(self) -> None:
        """Write what is held back, and make the file durable (RFC 5321 §6.1)."""
        if self._cr:
            self.file.write(b"\r")
            self._cr = False
        self.file.flush()
        os.fsync(self.file.fileno())

    def discard(self) -> None:
        """Close and remove the file, or leave that to the thread using it."""
        if not self.lock.acquire(blocking=False):
            self.abandoned = True
            return
        try:
            self.close(remove=True)
        finally:
            self.lock.release()

    def close(self, *, remove: bool) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        if remove and self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _binary(envelope: Envelope) -> bool:
    """BODY=BINARYMIME (RFC 3030 §3): the content is octets, not lines."""
    return (envelope.mail_params.get("BODY") or "").upper() == "BINARYMIME"


class _SpoolingHandler(Handler):
    """Shared by the file stores: each message streams into a temporary file (one spool
    per session, kept in ``session.extra``), and ``_deliver`` stores it when it ends.
    The hooks block on file I/O (``blocking_io``): the async servers run ``data_chunk``
    and ``data`` in a worker thread, the blocking server in the connection's thread.
    A transaction that ends without ``data`` (RSET, a refused message, a lost client)
    leaves its spool to the next transaction, RSET or the disconnect to remove."""

    buffer_content = False
    blocking_io = True
    _KEY: Final = "sansio_smtp.spool"

    def _open(self, envelope: Envelope) -> _Spool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _deliver(self, spool: _Spool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _spool(self, session: Session, envelope: Envelope) -> _Spool:
        spool = session.extra.get(self._KEY)
        if isinstance(spool, _Spool):
            if spool.envelope is envelope:
                return spool
            spool.discard()  # left over from a transaction that was not delivered
        spool = self._open(envelope)
        session.extra[self._KEY] = spool
        return spool

    def data_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        spool = self._spool(session, envelope)
        with spool.lock:
            if not spool.abandoned:
                spool.write(chunk)
                return
        spool.close(remove=True)

    def data(self, session: Session, envelope: Envelope) -> Reply | None:
        spool = self._spool(session, envelope)
        session.extra.pop(self._KEY, None)
        with spool.lock:
            try:
                if spool.abandoned:
                    raise ConnectionError("the client went away before the message was stored")
                spool.finish()
                self._deliver(spool)
            finally:
                spool.close(remove=True)
        return None

    def _forget(self, session: Session) -> None:
        spool = session.extra.pop(self._KEY, None)
        if isinstance(spool, _Spool):
            spool.discard()

    def rset(self, session: Session, event: Rset) -> None:
        self._forget(session)

    def disconnect(self, session: Session) -> None:
        self._forget(session)


def _fsync_directory(path: str | os.PathLike[str]) -> None:
    """fsync a directory, so a name just linked into it survives a crash (RFC 5321 §6.1:
    a 250 is a promise). Skipped where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MaildirHandler(_SpoolingHandler):
    """Deliver each message into the Maildir at ``path`` (created if missing), with a
    ``Received:`` trace header (RFC 5321 §4.4).

    The content streams into a file in ``tmp/`` as it arrives; at the end it is fsynced,
    linked into ``new/`` and ``new/`` is fsynced before the 250 (RFC 5321 §6.1). Line
    endings become LF as on disk, except for BODY=BINARYMIME (RFC 3030 §3), whose octets
    are stored exactly as received."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        for sub in ("tmp", "new", "cur"):  # also in a directory that exists but is empty
            (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.mailbox = mailbox.Maildir(self.path, create=False)
        host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
        self._host = host or "localhost"
        self._count = itertools.count()

    def _open(self, envelope: Envelope) -> _Spool:
        now = time.time()
        # the Maildir unique name: time, microseconds, pid, a counter and randomness
        name = (
            f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(self._count)}"
            f"R{secrets.token_hex(4)}.{self._host}"
        )
        path = os.path.join(self.path, "tmp", name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        return _Spool(envelope, os.fdopen(fd, "wb"), path, to_lf=not _binary(envelope))

    def _deliver(self, spool: _Spool) -> None:
        assert spool.path is not None
        spool.file.close()
        new = os.path.join(self.path, "new", os.path.basename(spool.path))
        try:
            os.link(spool.path, new)
        except (AttributeError, PermissionError):  # no hard links here
            os.rename(spool.path, new)
        _fsync_directory(os.path.join(self.path, "new"))


#: a line an mboxrd reader unquotes: any number of ">" then "From " (one ">" is added)
_MBOXRD_FROM: Final = re.compile(rb">*From ")
_MBOX_LINE: Final = 64 * 1024  # the longest piece of a line copied at once


def _copy_mboxrd(src: IO[bytes], dst: IO[bytes]) -> bool:
    """Copy a CRLF message as mbox text: LF line endings, and mboxrd quoting (a line
    matching ``>*From `` gets one more ``>``, which a reader removes: reversible, unlike
    mboxo). Reads a line at a time, in pieces of at most _MBOX_LINE. True if the copy
    ended with a line end."""
    at_start, held, last = True, b"", b"\n"
    while True:
        piece = src.readline(_MBOX_LINE)
        if not piece:
            break
        if held:
            piece, held = held + piece, b""
        if piece.endswith(b"\r"):  # maybe half of a CRLF split by the piece limit
            piece, held = piece[:-1], b"\r"
        elif piece.endswith(b"\r\n"):
            piece = piece[:-2] + b"\n"
        if at_start and _MBOXRD_FROM.match(piece):
            piece = b">" + piece
        at_start = piece.endswith(b"\n")
        if piece:
            dst.write(piece)
            last = piece
    if held:
        dst.write(held)
        last = held
    return last.endswith(b"\n")


class MboxHandler(_SpoolingHandler):
    """Append each message to the mbox file at ``path`` (mboxrd: LF line endings, body
    lines matching ``>*From `` get one more ``>``), with a ``Received:`` trace header and
    a ``From `` separator line naming the envelope sender.

    The content streams into an unnamed temporary file beside the mbox; at the end the
    mbox is locked (fcntl ``lockf``, as Python's mailbox and the MDAs that use it do),
    the message appended without reading the mailbox, and the file fsynced before the 250
    (RFC 5321 §6.1); a failed append is truncated away. An mbox cannot keep binary
    content exactly, so ``BODY=BINARYMIME`` is refused (555 5.6.1)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        with open(self.path, "ab"):  # fail early on a bad path
            pass

    def mail(self, session: Session, event: MailFrom) -> Reply | None:
        if (event.params.get("BODY") or "").upper() == "BINARYMIME":
            # RFC 3463 5.6.1: media not supported (RFC 3030 §3)
            return Reply(
                code=555, lines="BODY=BINARYMIME cannot be stored in an mbox", enhanced="5.6.1"
            )
        return None

    def _open(self, envelope: Envelope) -> _Spool:
        # unnamed where the OS allows: nothing is left behind by a crash
        spool = tempfile.TemporaryFile(dir=self.path.parent, prefix=".mbox-spool-")  # noqa: SIM115
        return _Spool(envelope, spool, None, to_lf=False)

    def _deliver(self, spool: _Spool) -> None:
        envelope = spool.envelope
        sender = str(envelope.mail_from) if envelope.mail_from is not None else "MAILER-DAEMON"
        from_line = f"From {sender} {time.asctime(time.gmtime())}\n".encode()
        spool.file.seek(0)
        with self._lock, open(self.path, "a+b") as box:
            if fcntl is not None:
                fcntl.lockf(box, fcntl.LOCK_EX)
            try:
                size = os.fstat(box.fileno()).st_size
                tail = b""
                if size:
                    box.seek(max(0, size - 2))
                    tail = box.read(2)
                # a blank line ends the previous message
                if not size or tail in (b"\n", b"\n\n"):
                    lead = b""
                elif tail.endswith(b"\n"):
                    lead = b"\n"
                else:
                    lead = b"\n\n"
                try:
                    box.write(lead + from_line)
                    ended = _copy_mboxrd(spool.file, box)
                    box.write(b"\n" if ended else b"\n\n")
                    box.flush()
                    os.fsync(box.fileno())
                except BaseException:
                    with contextlib.suppress(OSError):
                        box.truncate(size)
                    raise
            finally:
                if fcntl is not None:
                    fcntl.lockf(box, fcntl.LOCK_UN)


#: C0 controls but TAB and LF, DEL, and the C1 controls (U+0080-U+009F): what a terminal
#: may act on (ESC/CSI/OSC sequences, title changes, OSC 52 clipboard writes, CR overwrites)
_TERMINAL_CONTROLS: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe for a terminal: each control character other than TAB and LF (so
    the message keeps its lines) becomes a visible ``\\xNN`` escape."""
    return _TERMINAL_CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class PrintHandler(Handler):
    """Debugging: print each message's envelope and content to ``stream`` (stdout).

    What is printed is made terminal-safe: octets that are not UTF-8 show as ``\\xNN``,
    control characters as ``\\xNN`` escapes (TAB and LF are kept, CRLF shows as LF).
    Content beyond ``max_shown`` octets is left out (with a note). A writer thread does
    the printing, so a stream nobody reads never blocks the server: at most
    ``max_queued`` characters wait, and messages that do not fit are dropped and counted
    in a notice printed once the stream moves again. ``flush()`` waits for the queue."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        max_queued: int = 4 * 1024 * 1024,
        max_shown: int = 1024 * 1024,
    ) -> None:
        self.stream = stream
        self.max_queued = max_queued
        self.max_shown = max_shown
        self.dropped = 0  # messages not printed because the queue was full
        self._queue: deque[str] = deque()
        self._queued = 0
        self._writing = False
        self._reported = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def data(self, session: Session, envelope: Envelope) -> Reply | None:
        sender = "<>" if envelope.mail_from is None else f"<{envelope.mail_from}>"
        content = envelope.content
        more = len(content) - self.max_shown
        body = content[: self.max_shown] if more > 0 else content
        text = body.decode("utf-8", "backslashreplace").replace("\r\n", "\n").rstrip("\n")
        lines = [
            f"---------- message from {session.peer!r} ({session.helo_name})",
            f"MAIL FROM: {sender} {' '.join(_param_text(envelope.mail_params))}".rstrip(),
            *(f"RCPT TO: <{rcpt}>" for rcpt in envelope.rcpt_tos),
            "",
            text,
            *([f"[... {more} more octets not shown]"] if more > 0 else []),
            "---------- end of message",
        ]
        self._put(printable("\n".join(lines)) + "\n")
        return None

    def _put(self, text: str) -> None:
        with self._cond:
            if self._queued + len(text) > self.max_queued:
                self.dropped += 1
                return
            self._queue.append(text)
            self._queued += len(text)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write_forever, name="sansio_smtp PrintHandler", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _write_forever(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                text = self._queue.popleft()
                size = len(text)
                dropped, self._reported = self.dropped - self._reported, self.dropped
                self._writing = True
            if dropped:
                text = (
                    f"---------- {dropped} message(s) not printed: the output did not keep up\n"
                    + text
                )
            stream = self.stream if self.stream is not None else sys.stdout
            try:
                stream.write(text)
                stream.flush()
            except Exception as exc:  # a closed stream: nothing else to tell it
                log.warning("PrintHandler cannot write: %r", exc)
            finally:
                with self._cond:
                    self._queued -= size
                    self._writing = False
                    self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued was written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._writing, timeout)


def _param_text(params: Params) -> list[str]:
    return [k if v is None else f"{k}={v}" for k, v in params.items()]


# RFC 3463 4.4.1: no answer from host
UPSTREAM_DOWN: Final = Reply(
    code=451, lines="Upstream server unavailable, try again later", enhanced="4.4.1"
)
# DSN parameters a relay passes on (RFC 3461 §4.3-4.4); BODY, SMTPUTF8 and SIZE are chosen
# by the client adapter from the content itself.
_RELAYED_MAIL_PARAMS: Final = ("RET", "ENVID")


class RelayHandler(Handler):
    """Forward each accepted message to another server (a smart host) through the client
    adapters, with a ``Received:`` header added (RFC 5321 §4.4), and answer the client
    with the outcome. The same object works in both servers: under a running event loop
    (AsyncioServer) it uses AsyncSMTPClient, else SMTPClient. One upstream connection
    per message.

    Replies: all recipients accepted upstream -> 250; all refused -> the upstream refusal
    (its code and enhanced code); some refused -> 250 (the refusals are logged: this
    relay generates no bounces). In LMTP each recipient gets its own upstream outcome
    (RFC 2033 §4.2). Upstream unreachable or timing out -> ``451 4.4.1``.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        tls: TLSMode | None = None,
        ssl_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        local_hostname: str | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        self.host, self.port = host, port
        self._options: dict[str, object] = {
            "tls": tls,
            "ssl_context": ssl_context,
            "username": username,
            "password": password,
            "local_hostname": local_hostname,
            "timeout": timeout,
        }

    def data(self, session: Session, envelope: Envelope) -> DataResult:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._replies(session, envelope, self._send_blocking(envelope))
        return self._send_async(session, envelope)

    def _arguments(self, envelope: Envelope) -> tuple[str, list[str], bytes, dict[str, str | None]]:
        sender = "" if envelope.mail_from is None else str(envelope.mail_from)
        params = {k: v for k, v in envelope.mail_params.items() if k in _RELAYED_MAIL_PARAMS}
        return sender, [str(r) for r in envelope.rcpt_tos], envelope.with_trace(), params

    def _send_blocking(self, envelope: Envelope) -> SendResult | Reply:
        from .client import SMTPClient, SMTPError

        sender, rcpts, content, params = self._arguments(envelope)
        try:
            with SMTPClient(self.host, self.port, **self._options) as client:  # type: ignore[arg-type]
                return client.sendmail(sender, rcpts, content, mail_params=params)
        except SMTPError as exc:
            return self._failure(exc)

    async def _send_async(self, session: Session, envelope: Envelope) -> Reply | list[Reply]:
        from .client import AsyncSMTPClient, SMTPError

        sender, rcpts, content, params = self._arguments(envelope)
        outcome: SendResult | Reply
        try:
            async with AsyncSMTPClient(self.host, self.port, **self._options) as client:  # type: ignore[arg-type]
                outcome = await client.sendmail(sender, rcpts, content, mail_params=params)
        except SMTPError as exc:
            outcome = self._failure(exc)
        return self._replies(session, envelope, outcome)

    @staticmethod
    def _failure(exc: Exception) -> SendResult | Reply:
        result = getattr(exc, "result", None)
        if result is not None:
            return result  # type: ignore[no-any-return]
        reply = getattr(exc, "reply", None)
        if isinstance(reply, Reply) and reply.code >= 400:
            return reply
        log.warning("relay failed: %s", exc)
        return UPSTREAM_DOWN

    def _replies(
        self, session: Session, envelope: Envelope, outcome: SendResult | Reply
    ) -> Reply | list[Reply]:
        rcpts = [str(r) for r in envelope.rcpt_tos]
        if isinstance(outcome, Reply):
            return [outcome] * len(rcpts) if session.lmtp else outcome
        ok = Reply(code=250, lines=f"Relayed to {self.host}", enhanced="2.0.0")
        per_rcpt = [outcome.refused.get(r, ok) for r in rcpts]
        if session.lmtp:
            return per_rcpt
        if not outcome.accepted:
            return list(outcome.refused.values())[-1]
        if outcome.refused:
            log.warning("relay: recipients refused upstream: %s", dict(outcome.refused))
        return ok


# ----------------------------------------------------------------------- credentials


class PasswordTable:
    """An Authenticator from a ``{user: password}`` mapping: answers PLAIN/LOGIN checks
    (with SASLprep, constant time), CRAM-MD5 lookups and SCRAM key lookups (keys derived
    once per user with a random salt). Unknown users fail like wrong passwords."""

    def __init__(self, users: Mapping[str, str], *, scram_iterations: int = 4096) -> None:
        self._users = dict(users)
        self._iterations = scram_iterations
        self._scram: dict[tuple[str, str], sasl.ScramStoredKeys] = {}
        self._lock = threading.Lock()

    def __call__(self, session: Session, request: sasl.NeedCredentials) -> AuthAnswer:
        authcid = getattr(request, "authcid", None)
        stored = self._users.get(authcid) if isinstance(authcid, str) else None
        if isinstance(request, sasl.VerifyPassword):
            if stored is None:
                sasl.passwords_match(request.password, request.password)  # same work
                return sasl.Verdict.UNKNOWN_USER
            if request.authzid not in (None, request.authcid):
                return sasl.Verdict.NOT_AUTHORIZED
            return sasl.passwords_match(request.password, stored)
        if stored is None:
            return sasl.Verdict.UNKNOWN_USER
        if isinstance(request, sasl.LookupPassword):
            return sasl.StoredPassword(password=stored)
        if isinstance(request, sasl.LookupScramKeys):
            assert isinstance(authcid, str)
            if request.authzid not in (None, authcid):
                return sasl.Verdict.NOT_AUTHORIZED
            hash_name: sasl.ScramHash = "sha1" if "SHA-1" in request.mechanism else "sha256"
            with self._lock:
                keys = self._scram.get((authcid, hash_name))
                if keys is None:
                    keys = sasl.scram_stored_keys(
                        stored, secrets.token_bytes(16), self._iterations, hash_name
                    )
                    self._scram[(authcid, hash_name)] = keys
            return keys
        return sasl.Verdict.BAD_CREDENTIALS


def default_mechanisms(*, scram: bool, channel_binding: bool) -> tuple[str, ...]:
    """The AUTH mechanisms a server advertises when its Config names none: PLAIN and
    LOGIN for any authenticator; SCRAM-SHA-256 first when the authenticator can answer
    SCRAM key lookups (a PasswordTable), and its -PLUS variant when the server knows its
    certificate's channel binding (RFC 5802 §6; the core shows -PLUS only under TLS)."""
    plus = ("SCRAM-SHA-256-PLUS",) if scram and channel_binding else ()
    return (*plus, *(("SCRAM-SHA-256",) if scram else ()), "PLAIN", "LOGIN")


def prepare_config(
    config: Config | None,
    *,
    starttls: bool,
    auth: bool,
    hostname: str | None = None,
    mechanisms: Sequence[str] = ("PLAIN", "LOGIN"),
    channel_binding: bool = False,
) -> Config:
    """The Config a server runs with: STARTTLS advertised when a TLS context is there for
    it, AUTH ``mechanisms`` when an authenticator is and ``config`` names none. Raises
    ValueError when ``config`` advertises STARTTLS without a TLS context, or a -PLUS
    mechanism without ``channel_binding`` data to check it with."""
    config = config if config is not None else Config()
    extensions = dict(config.extensions.items())
    if starttls and "STARTTLS" not in extensions:
        extensions["STARTTLS"] = ()
    if not starttls and "STARTTLS" in extensions:
        raise ValueError("STARTTLS is advertised but the server has no TLS context for it")
    if auth and "AUTH" not in extensions:
        extensions["AUTH"] = tuple(mechanisms)
    plus = [m for m in extensions.get("AUTH", ()) if sasl.binds_channel(m)]
    if plus and not channel_binding:
        raise ValueError(
            f"AUTH {' '.join(plus)} is advertised but the server has no channel binding"
            " data: pass tls_certificate (RFC 5802 §6, RFC 5929 §4)"
        )
    if extensions != dict(config.extensions.items()):
        config = attrs.evolve(config, extensions=extensions)
    if hostname is not None:
        config = attrs.evolve(config, hostname=hostname)
    return config


#: A server's own certificate: a file path (PEM or DER), or the file's contents as bytes.
CertificateSource: TypeAlias = "str | os.PathLike[str] | bytes"


def server_channel_binding(certificate: CertificateSource) -> sasl.ChannelBinding:
    """tls-server-end-point data (RFC 5929 §4.1) of the certificate a server presents: the
    ssl module cannot tell a server its own certificate, so the servers take it from
    their ``tls_certificate`` option. Raises ValueError (OSError for an unreadable file)
    when the certificate's signature algorithm leaves the binding undefined."""
    data = certificate if isinstance(certificate, bytes) else Path(certificate).read_bytes()
    return sasl.tls_server_end_point(data)


#: connections one client address may hold at once (Postfix smtpd_client_connection_count_limit)
DEFAULT_MAX_CONNECTIONS_PER_CLIENT: Final = 50
#: AUTH failures one client address may cause per window before AUTH is refused for a while
DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT: Final = 10
DEFAULT_AUTH_FAILURE_WINDOW: Final = 300.0  # seconds


def _nofile_limit() -> int | None:
    """The soft RLIMIT_NOFILE of this process, None if unlimited or unknown."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


class ServerBase:
    """What the three servers share: the options every flavour takes, checked once, the
    421 replies they send on their own (RFC 5321 §3.8), and the per-client-address limits.

    - ``max_connections`` is lowered (with a warning) to leave descriptors free under the
      process's RLIMIT_NOFILE: max(32, limit/8) of them.
    - ``max_connections_per_client`` (default 50, as Postfix's
      smtpd_client_connection_count_limit) and ``max_connection_rate_per_client`` (new
      connections per minute, default None: off, as Postfix's
      smtpd_client_connection_rate_limit): a connection over either gets 421 and is
      closed (before any TLS handshake). A client is its IP address (IPv6: its /64);
      Unix-socket clients are not limited.
    - ``max_auth_failures_per_client`` (default 10; None: off) failed AUTH attempts
      within ``auth_failure_window`` seconds (default 300), after which that address's
      AUTH gets ``454 4.7.0`` until the oldest failure is that old, so guessing across
      connections is held to 10 per 5 minutes.
    """

    handler: object
    config: Config
    tls_context: ssl.SSLContext | None
    implicit_tls: bool
    max_connections: int
    max_connections_per_client: int | None
    max_connection_rate_per_client: int | None
    max_auth_failures_per_client: int | None
    auth_failure_window: float
    idle_timeout: float | None
    tls_handshake_timeout: float
    min_data_rate: float | None
    data_rate_grace: float
    greeting: str | None
    traffic: TrafficLog | None
    #: exceptions from handlers and connections (most recent 100), also logged
    errors: deque[BaseException]

    def _configure(
        self,
        handler: object,
        *,
        config: Config | None,
        hostname: str | None,
        tls_context: ssl.SSLContext | None,
        implicit_tls: bool,
        tls_certificate: CertificateSource | None,
        auth: Mapping[str, str] | Authenticator | None,
        max_connections: int,
        idle_timeout: float | None,
        tls_handshake_timeout: float,
        min_data_rate: float | None,
        data_rate_grace: float,
        greeting: str | None,
        traffic_log: bool | logging.Logger,
        max_connections_per_client: int | None = DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        max_connection_rate_per_client: int | None = None,
        max_auth_failures_per_client: int | None = DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT,
        auth_failure_window: float = DEFAULT_AUTH_FAILURE_WINDOW,
    ) -> None:
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        if tls_certificate is not None and tls_context is None:
            raise ValueError("tls_certificate needs a tls_context")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        authenticator = PasswordTable(auth) if isinstance(auth, Mapping) else auth
        self.handler = handler if handler is not None else SinkHandler()
        hooks = self._hooks = Hooks(self.handler, authenticator)
        self._limits_lock = threading.Lock()  # the blocking server's threads share these
        self._client_limits = ClientLimits(
            max_connections=max_connections_per_client,
            max_rate=max_connection_rate_per_client,
        )
        self._auth_budget = AuthFailureBudget(
            limit=max_auth_failures_per_client, window=auth_failure_window
        )
        self._refusals_log = LogThrottle()
        self._auth_unsettled: dict[str, str | None] = {}  # session id -> client key
        if tls_certificate is not None:
            hooks.channel_binding = server_channel_binding(tls_certificate)
        self.config = prepare_config(
            config,
            starttls=tls_context is not None and not implicit_tls,
            auth=hooks.auth is not None,
            hostname=hostname,
            mechanisms=default_mechanisms(
                scram=isinstance(authenticator, PasswordTable),
                channel_binding=hooks.channel_binding is not None,
            ),
            channel_binding=hooks.channel_binding is not None,
        )
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.max_connections = connection_cap(max_connections, _nofile_limit())
        if self.max_connections < max_connections:
            log.warning(
                "max_connections lowered from %d to %d to stay under RLIMIT_NOFILE",
                max_connections,
                self.max_connections,
            )
        self.max_connections_per_client = max_connections_per_client
        self.max_connection_rate_per_client = max_connection_rate_per_client
        self.max_auth_failures_per_client = max_auth_failures_per_client
        self.auth_failure_window = auth_failure_window
        self.idle_timeout = idle_timeout
        self.tls_handshake_timeout = tls_handshake_timeout
        self.min_data_rate = min_data_rate
        self.data_rate_grace = data_rate_grace
        self.greeting = greeting
        self.traffic = TrafficLog.from_option(traffic_log)
        self.errors = deque(maxlen=100)
        name = self.config.hostname
        self._busy = Connection(Role.SERVER, self.config).send(
            Greeting(code=421, lines=f"{name} Too many connections, try again later")
        )
        self._timeout_reply = Reply(
            code=421, lines=f"{name} Error: timeout exceeded", enhanced="4.4.2"
        )
        self._slow_reply = Reply(
            code=421, lines=f"{name} Error: minimum data rate not met", enhanced="4.4.2"
        )
        self._shutdown_reply = Reply(
            code=421, lines=f"{name} Service shutting down", enhanced="4.3.2"
        )
        # RFC 2034 §3: no enhanced status code in a greeting, so none here either
        self._busy_client = Connection(Role.SERVER, self.config).send(
            Greeting(code=421, lines=f"{name} Too many connections from your address")
        )
        self._auth_refusal = Reply(
            code=454,
            lines="Too many authentication failures, try again later",
            enhanced="4.7.0",
        )
        if hooks.auth is not None and max_auth_failures_per_client is not None:
            hooks.auth = self._budgeted_auth(hooks.auth)
            hooks.disconnect = self._settling_disconnect(hooks.disconnect)

    # --------------------------------------------------------- per-client-address limits

    def _admit_client(self, peer: PeerAddress) -> tuple[str | None, bool]:
        """Count a new connection from ``peer`` against the per-client limits: its key
        (for ``_release_client``) and whether it is admitted (if not, it was not counted:
        send ``_busy_client`` and close)."""
        key = client_key(peer)
        if key is None:
            return None, True
        now = time.monotonic()
        with self._limits_lock:
            why = self._client_limits.admit(key, now)
            if why is None:
                return key, True
            say = self._refusals_log.ready(now)
            held = self._refusals_log.take() if say else 0
        if say:
            log.warning(
                "refusing a connection from %s: too many %s from that address"
                " (%d more refusals not logged)",
                key,
                "connections" if why == "connections" else "new connections per minute",
                held,
            )
        return key, False

    def _release_client(self, key: str | None) -> None:
        if key is not None:
            with self._limits_lock:
                self._client_limits.release(key)

    _hooks_may_await: bool = True  # False where hooks must be plain (the blocking server)

    def _budgeted_auth(self, fn: Callable[..., object]) -> Callable[..., object]:
        """``fn`` (the credential check) behind the per-client AUTH failure budget: a
        client over it gets 454 4.7.0 without its credentials being checked. Every check
        counts as a failure up front (so parallel guesses are held too) and is taken back
        when it succeeds; a looked-up secret (CRAM-MD5, SCRAM) is settled at disconnect,
        once the session shows whether AUTH succeeded."""
        budget, lock, unsettled = self._auth_budget, self._limits_lock, self._auth_unsettled
        refusal = self._auth_refusal
        may_await = self._hooks_may_await

        def settle(key: str | None, session: Session, value: object) -> None:
            if value is True or value is sasl.Verdict.OK:
                ok = True
            elif value is None or isinstance(value, (bool, sasl.Verdict)):
                ok = value is sasl.Verdict.TEMPORARY_FAILURE
            else:  # a stored secret: the mechanism decides later
                with lock:
                    unsettled[session.id] = key
                return
            if ok:
                with lock:
                    budget.forgive(key)

        def budgeted(session: Session, request: object) -> object:
            key = client_key(session.peer)
            with lock:
                now = time.monotonic()
                if budget.blocked(key, now):
                    raise Reject(refusal)
                budget.failed(key, now)
            try:
                result = fn(session, request)
            except Exception:  # the application's failure, not a guess
                with lock:
                    budget.forgive(key)
                raise
            if type(result) is not Reply and inspect.isawaitable(result):
                if not may_await:  # answered 451 by the Dispatcher: not a guess
                    with lock:
                        budget.forgive(key)
                    return result
                return settle_later(key, session, result)
            settle(key, session, result)
            return result

        async def settle_later(
            key: str | None, session: Session, result: Awaitable[object]
        ) -> object:
            try:
                value = await result
            except Exception:
                with lock:
                    budget.forgive(key)
                raise
            settle(key, session, value)
            return value

        return budgeted

    def _settling_disconnect(self, fn: Callable[..., object] | None) -> Callable[..., object]:
        """The disconnect hook, first settling a looked-up-secret AUTH of the session."""
        budget, lock, unsettled = self._auth_budget, self._limits_lock, self._auth_unsettled

        def disconnect(session: Session) -> object:
            with lock:
                if session.id in unsettled:
                    key = unsettled.pop(session.id)
                    if session.authenticated_user is not None:
                        budget.forgive(key)
            return fn(session) if fn is not None else None

        return disconnect

    def _limit_size(self, max_message_size: int | None) -> None:
        """Apply ``max_message_size`` (the server option, DEFAULT_MAX_MESSAGE_SIZE unless
        given) when the Config sets no limit, and advertise the limit in force as SIZE
        (RFC 1870 §4) unless the Config names SIZE itself."""
        if max_message_size is not None and max_message_size < 1:
            raise ValueError("max_message_size must be positive (or None: no limit)")
        config = self.config
        if config.max_message_size is None and max_message_size is not None:
            config = attrs.evolve(config, max_message_size=max_message_size)
        if config.max_message_size is not None and "SIZE" not in config.extensions:
            config = attrs.evolve(config, extensions={**config.extensions, "SIZE": ()})
        self.config = config


# ----------------------------------------------------------------------- traffic log


def redact_client(data: bytes, *, in_auth: bool) -> bytes:
    """Client bytes for a log: the arguments of an ``AUTH`` line and every line of an AUTH
    exchange (RFC 4954 §4 responses) become ``<redacted>``."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        cr = b"\r" if line.endswith(b"\r") else b""
        if line[:5].upper() == b"AUTH ":
            words = line.rstrip(b"\r").split(b" ", 2)
            lines[i] = b" ".join(words[:2]) + (b" <redacted>" if len(words) > 2 else b"") + cr
            in_auth = True
        elif in_auth and line.strip():
            lines[i] = b"<redacted>" + cr
    return b"\n".join(lines)


def redact_server(data: bytes) -> bytes:
    """Server bytes for a log: the text of 334 challenges becomes ``<redacted>``."""
    if b"334" not in data:
        return data
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if line[:4] in (b"334 ", b"334-"):
            lines[i] = line[:4] + b"<redacted>\r"
    return b"\n".join(lines)


class TrafficLog:
    """The opt-in traffic log of a server: every byte at DEBUG level, AUTH redacted."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    @classmethod
    def from_option(cls, option: bool | logging.Logger) -> TrafficLog | None:
        if isinstance(option, logging.Logger):
            return cls(option)
        return cls(logging.getLogger("sansio_smtp.traffic")) if option else None

    def client(self, session_id: str, data: bytes, *, in_auth: bool) -> None:
        self.logger.debug("%s C: %r", session_id, redact_client(data, in_auth=in_auth))

    def server(self, session_id: str, data: bytes) -> None:
        self.logger.debug("%s S: %r", session_id, redact_server(data))


# ------------------------------------------------------------------------ dispatcher


class Action(enum.Enum):
    """What ``Dispatcher.run`` asks the adapter to do next (after writing ``out``)."""

    READ = "read"  # read more bytes, feed() them, run() again
    AWAIT = "await"  # await ``awaiting``, then resume() with its outcome, run() again
    STARTTLS = "starttls"  # do the TLS server handshake, tls_started(), run() again
    CLOSE = "close"  # close the connection


_Then: TypeAlias = "Callable[[object, BaseException | None], None]"

_HOOKS: Final = (
    "connect",
    "ehlo",
    "helo",
    "lhlo",
    "mail",
    "rcpt",
    "data_chunk",
    "data",
    "auth",
    "rset",
    "quit",
    "disconnect",
)


class Hooks:
    """A handler's hooks, resolved once per server: None where the handler has none or
    inherits Handler's default, so the Dispatcher skips the call."""

    def __init__(self, handler: object, authenticator: Authenticator | None = None) -> None:
        self.handler = handler
        found: dict[str, Callable[..., object] | None] = {}
        for name in _HOOKS:
            fn = getattr(handler, name, None)
            default = getattr(Handler, name)
            if getattr(type(handler), name, None) is default or not callable(fn):
                fn = None
            found[name] = fn
        self.connect = found["connect"]
        self.ehlo = found["ehlo"]
        self.helo = found["helo"]
        self.lhlo = found["lhlo"]
        self.mail = found["mail"]
        self.rcpt = found["rcpt"]
        self.data_chunk = found["data_chunk"]
        self.data = found["data"]
        self.rset = found["rset"]
        self.quit = found["quit"]
        self.disconnect = found["disconnect"]
        self.auth: Callable[..., object] | None = authenticator or found["auth"]
        self.buffer_content = bool(getattr(handler, "buffer_content", True))
        self.blocking_io = bool(getattr(handler, "blocking_io", False))
        #: the server certificate's tls-server-end-point data, for SCRAM -PLUS
        self.channel_binding: sasl.ChannelBinding | None = None
        #: one secret per server for unknown users' SCRAM mock salts, so a prober cannot
        #: tell them apart by a salt that changes between attempts (RFC 5802 §5.1)
        self.scram_mock_key = secrets.token_bytes(32)


def _close_awaitable(result: object) -> None:
    close = getattr(result, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


class Dispatcher:
    """Drives one server Connection for a handler, without I/O.

    The adapter: ``start()`` once, then repeatedly writes and clears ``out`` and does what
    the returned Action says: READ (``feed(data)`` then ``run()``), AWAIT (await
    ``awaiting``, ``resume(value, error)``, ``run()``), STARTTLS (handshake,
    ``tls_started()``, ``run()``) or CLOSE. ``allow_await=False`` (the blocking server)
    turns an awaitable hook result into an error reply. ``offload``, given by the async
    servers, runs the ``data_chunk`` and ``data`` hooks of a ``blocking_io`` handler off
    the event loop (AWAIT then waits for the worker thread); without it they run inline.
    """

    def __init__(
        self,
        conn: Connection,
        hooks: Hooks,
        session: Session,
        *,
        greeting: str | None = None,
        allow_await: bool = True,
        on_error: Callable[[BaseException], None] | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.conn = conn
        self.hooks = hooks
        self.session = session
        self.out: list[bytes] = []
        self.awaiting: Awaitable[object] | None = None
        self.error: BaseException | None = None  # why the connection was closed, if broken
        self._then: _Then | None = None
        self._greeting = greeting
        self._allow_await = allow_await
        self._on_error = on_error
        self._offload = offload if hooks.blocking_io else None
        self._closing = False
        self._chunks: list[bytes] = []
        self._data_error: BaseException | None = None
        self._lmtp_replies: deque[Reply | None] = deque()
        self._mech: sasl.ServerMechanism | None = None
        self._started = False

    # ------------------------------------------------------------- adapter interface

    @property
    def idle(self) -> bool:
        """No transaction in progress and nothing owed: safe to say 421 and close."""
        conn = self.conn
        return (
            self.awaiting is None
            and not in_transaction(conn.state)
            and conn.state is not State.AUTH
            and not conn.pending
        )

    @property
    def closing(self) -> bool:
        return self._closing

    def start(self) -> Action:
        """Greet the client (after the connect hook)."""
        if self._started:
            raise RuntimeError("the session was already started")
        self._started = True
        if self.hooks.connect is None:
            self._greet(None, None)
        else:
            self._call(self.hooks.connect, (self.session,), self._greet)
        return self.run()

    def feed(self, data: bytes) -> None:
        """Bytes from the client (b"" when it closed)."""
        if not self._closing:
            self.conn.receive_data(data)

    def resume(self, value: object, error: BaseException | None = None) -> None:
        """The awaited hook finished with ``value`` or raised ``error``."""
        then = self._then
        if then is None:
            raise RuntimeError("nothing is awaited")
        self._then = None
        self.awaiting = None
        then(value, error)

    def tls_started(self, version: str | None = None, cipher: str | None = None) -> None:
        """The STARTTLS handshake succeeded: the session starts over under TLS (RFC 3207
        §4.2: forget the EHLO argument and anything else learnt before). Raises
        RemoteProtocolError if the client had sent plaintext after STARTTLS."""
        self.conn.tls_established()
        session = self.session
        session.tls, session.tls_version, session.tls_cipher = True, version, cipher
        session.helo_name, session.esmtp, session.envelope = None, False, None
        session.authenticated_user = session.auth_mechanism = None

    def goodbye(self, reply: Reply) -> None:
        """Send an unsolicited ``reply`` (421, RFC 5321 §3.8) if the session allows it, and
        close."""
        if not self._closing:
            with contextlib.suppress(LocalProtocolError):
                self.out.append(self.conn.send(reply))
        self._closing = True

    def run(self) -> Action:
        """Process every buffered event until more input, an awaited hook, a TLS
        handshake or the end of the connection is needed."""
        conn = self.conn
        while True:
            if self.awaiting is not None:
                return Action.AWAIT
            if self._closing:
                return Action.CLOSE
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                # e.g. plaintext injected after STARTTLS (CVE-2011-0411): drop the client
                self.error = exc
                self._closing = True
                return Action.CLOSE
            if event is NEED_DATA:
                return Action.READ
            if event is PAUSED:
                if conn.state is State.TLS:
                    return Action.STARTTLS
                pending = conn.pending
                if not pending:  # pragma: no cover - the greeting is always sent first
                    return Action.READ
                self._owed(pending[0])
                continue
            if type(event) is MessageData:
                self._content(event)
                continue
            assert isinstance(event, Event)
            self._dispatch(event)

    # --------------------------------------------------------------------- internals

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(exc)
        else:
            log.error("handler error", exc_info=exc)

    def _call(
        self,
        fn: Callable[..., object],
        args: tuple[object, ...],
        then: _Then,
        *,
        blocking: bool = False,
    ) -> None:
        offload = self._offload
        if blocking and offload is not None:  # a store step: run it in a worker thread
            self.awaiting = offload(functools.partial(fn, *args))
            self._then = then
            return
        try:
            result = fn(*args)
        except Exception as exc:
            then(None, exc)
            return
        if result is not None and type(result) is not Reply and inspect.isawaitable(result):
            if not self._allow_await:
                _close_awaitable(result)
                error = TypeError(f"{fn!r} returned an awaitable: this server needs plain hooks")
                then(None, error)
                return
            self.awaiting = result
            self._then = then
            return
        then(result, None)

    def _reply_from(self, event: Event, value: object, error: BaseException | None) -> Reply:
        if error is not None:
            if isinstance(error, Reject):
                return error.reply
            self._report(error)
            return LOCAL_ERROR
        if value is None:
            return self.conn.default_reply(event)
        if isinstance(value, Reply):
            return value
        self._report(TypeError(f"a hook returned {type(value).__name__}, not a Reply or None"))
        return LOCAL_ERROR

    def _greet(self, value: object, error: BaseException | None) -> None:
        reply: Reply | None = None
        if error is not None:
            if isinstance(error, Reject):
                reply = error.reply
            else:
                self._report(error)
                reply = Reply(code=421, lines="Service not available", enhanced="4.3.0")
        elif isinstance(value, Reply):
            reply = value
        elif value is not None:
            self._report(TypeError(f"connect returned {type(value).__name__}"))
        if reply is None:
            kind = "LMTP" if self.conn.config.lmtp else "ESMTP"
            # RFC 5321 §4.2 Greeting: the server's domain comes first
            text = self._greeting or f"{kind} ready"
            greeting = Greeting(lines=f"{self.conn.config.hostname} {text}")
        else:
            code = reply.code if reply.code in (220, 421, 554) else 554
            lines = reply.lines
            if not lines[0].startswith(self.conn.config.hostname):
                # RFC 5321 §4.2 Greeting: the server's domain comes first
                lines = (f"{self.conn.config.hostname} {lines[0]}".rstrip(), *lines[1:])
            greeting = Greeting(code=code, lines=lines)
        self.out.append(self.conn.send(greeting))
        if greeting.code == 421:
            self._closing = True

    def _answer(self, event: Event, reply: Reply) -> None:
        """Send ``reply`` to ``event`` and keep Session/Envelope in step with the core."""
        conn = self.conn
        try:
            wire = conn.send(reply)
        except LocalProtocolError as exc:  # a reply that cannot answer this command
            self._report(exc)
            reply = conn.default_reply(event) if isinstance(event, Quit) else LOCAL_ERROR
            wire = conn.send(reply)
        self.out.append(wire)
        session = self.session
        state = conn.state
        if reply.code < 300:
            event_type = type(event)
            if event_type is MailFrom:
                assert isinstance(event, MailFrom)
                session.envelope = Envelope(
                    mail_from=event.reverse_path,
                    mail_params=event.params,
                    peer=session.peer,
                    helo_name=session.helo_name,
                    hostname=session.hostname,
                    protocol=session.protocol,
                    authenticated_user=session.authenticated_user,
                    session_id=session.id,
                )
            elif event_type is RcptTo:
                assert isinstance(event, RcptTo)
                envelope = session.envelope
                if envelope is not None:
                    envelope.rcpt_tos.append(event.forward_path)
                    envelope.rcpt_params.append(event.params)
            elif event_type is Ehlo or event_type is Helo or event_type is Lhlo:
                assert isinstance(event, (Ehlo, Helo, Lhlo))
                session.helo_name = event.domain
                session.esmtp = event_type is not Helo
            elif event_type is EndOfMessage or (event_type is Bdat and state is State.READY):
                session.transactions += 1
        if not in_transaction(state):
            session.envelope = None
            self._chunks.clear()
            self._data_error = None
        if state is State.CLOSED:
            self._closing = True

    def _default(self, event: Event) -> None:
        self._answer(event, self.conn.default_reply(event))

    def _hooked(self, fn: Callable[..., object] | None, event: Event) -> None:
        if fn is None:
            self._answer(event, self.conn.default_reply(event))
            return

        def then(value: object, error: BaseException | None) -> None:
            self._answer(event, self._reply_from(event, value, error))

        self._call(fn, (self.session, event), then)

    def _dispatch(self, event: Event) -> None:
        hooks = self.hooks
        kind = type(event)
        if kind is MailFrom:
            self._hooked(hooks.mail, event)
        elif kind is RcptTo:
            self._hooked(hooks.rcpt, event)
        elif kind is Data:
            self._default(event)
        elif kind is EndOfMessage:
            self._end_of_message(event)
        elif kind is Ehlo:
            self._hooked(hooks.ehlo, event)
        elif kind is Helo:
            self._hooked(hooks.helo, event)
        elif kind is Lhlo:
            self._hooked(hooks.lhlo, event)
        elif kind is Rset:
            self._hooked(hooks.rset, event)
        elif kind is Quit:
            self._hooked(hooks.quit, event)
        elif kind is InvalidCommand or kind is InvalidMessage:
            assert isinstance(event, (InvalidCommand, InvalidMessage))
            if kind is InvalidCommand:
                self._mech = None  # during AUTH the core ends the exchange (RFC 4954 §4)
            self._answer(event, event.reply_hint)
        elif kind is Bdat:
            pass  # its chunk follows; the reply comes once it has been read (RFC 3030 §2)
        elif kind is Auth:
            assert isinstance(event, Auth)
            self._auth_start(event)
        elif kind is AuthResponse:
            assert isinstance(event, AuthResponse)
            self._auth_response(event)
        elif kind is ConnectionClosed:
            self._closing = True
        elif kind is StartTLS:
            self._default(event)  # 220; the core then pauses for the handshake
        else:  # NOOP, VRFY, EXPN, HELP
            self._default(event)

    # ---------------------------------------------------------------------- content

    def _content(self, event: MessageData) -> None:
        data = event.data
        chunk = data if type(data) is bytes else bytes(data)
        if self.hooks.buffer_content:
            self._chunks.append(chunk)
        fn = self.hooks.data_chunk
        if fn is None or self._data_error is not None or self.session.envelope is None:
            return

        def then(_value: object, error: BaseException | None) -> None:
            if error is not None:
                self._data_error = error

        self._call(fn, (self.session, self.session.envelope, chunk), then, blocking=True)

    def _owed(self, item: Event) -> None:
        """A reply owed without a new event: a BDAT chunk was read (RFC 3030 §2), or the
        next LMTP per-recipient reply (RFC 2033 §4.2)."""
        if isinstance(item, LmtpDelivery):
            reply = self._lmtp_replies.popleft() if self._lmtp_replies else None
            self._answer(item, reply if reply is not None else self.conn.default_reply(item))
            return
        error = self._data_error
        if error is not None:
            self._answer(item, self._reply_from(item, None, error))
        else:
            self._default(item)

    def _end_of_message(self, event: Event) -> None:
        envelope = self.session.envelope
        owed = self.conn.pending[0]  # EndOfMessage (DATA) or the last Bdat
        if envelope is None:  # pragma: no cover - the core allows content only in a txn
            self._default(owed)
            return
        if self.hooks.buffer_content:
            envelope.content = b"".join(self._chunks)
            self._chunks.clear()
        if self._data_error is not None:
            self._finish_data(owed, None, self._data_error)
            return
        fn = self.hooks.data
        if fn is None:
            self._finish_data(owed, None, None)
            return
        self._call(
            fn, (self.session, envelope), lambda v, e: self._finish_data(owed, v, e), blocking=True
        )

    def _finish_data(self, owed: Event, value: object, error: BaseException | None) -> None:
        recipients = len(self.conn.accepted_recipients)
        replies: list[Reply | None]
        if error is None and value is None:
            replies = [None] * max(recipients, 1)  # the default, per recipient in LMTP
        elif error is not None or isinstance(value, Reply):
            replies = [self._reply_from(owed, value, error)] * max(recipients, 1)
        elif isinstance(value, Sequence) and all(isinstance(r, Reply) for r in value):
            replies = list(value)
            wanted = recipients if self.conn.config.lmtp else 1
            if len(replies) != wanted:
                self._report(ValueError(f"data returned {len(replies)} replies, not {wanted}"))
                replies = [LOCAL_ERROR] * max(recipients, 1)
        else:
            replies = [self._reply_from(owed, value, None)] * max(recipients, 1)
        if self.conn.config.lmtp:
            self._lmtp_replies.extend(replies[1:])
        first = replies[0]
        if first is None:
            accepted = self.conn.accepted_recipients
            if self.conn.config.lmtp and accepted:  # RFC 2033 §4.2: about the first RCPT
                first = self.conn.default_reply(LmtpDelivery(recipient=accepted[0]))
            else:
                first = self.conn.default_reply(owed)
        self._answer(owed, first)

    # ------------------------------------------------------------------------- AUTH

    def _auth_start(self, event: Auth) -> None:
        config = self.conn.config
        binding = self.hooks.channel_binding
        offered = config.extensions.get("AUTH", ())
        plus = self.session.tls and any(sasl.binds_channel(m) for m in offered)
        try:
            mech = sasl.server_mechanism(
                event.mechanism,
                hostname=config.hostname,
                timestamp=int(time.time()),
                # RFC 5802 §6: binding data iff -PLUS was advertised (a "y" client is
                # then a downgrade), which the core does only under TLS
                channel_bindings=(binding,) if plus and binding is not None else (),
                mock_key=self.hooks.scram_mock_key,
            )
        except sasl.UnsupportedMechanism as exc:
            self._answer(event, exc.reply_hint)
            return
        except ValueError as exc:  # e.g. a hostname CRAM-MD5 cannot use
            self._report(exc)
            self._answer(event, AUTH_TEMPFAIL)
            return
        self._mech = mech
        self._auth_step(event, lambda: mech.start(event.initial_response))

    def _auth_response(self, event: AuthResponse) -> None:
        mech = self._mech
        if mech is None:  # pragma: no cover - the core only emits it during AUTH
            self._answer(event, AUTH_TEMPFAIL)
            return
        if event.data is None:
            self._auth_step(event, mech.cancel)  # RFC 4954 §4: "*" -> 501
        else:
            data = event.data
            self._auth_step(event, lambda: mech.receive(data))

    def _auth_step(self, event: Event, advance: Callable[[], sasl.ServerStep]) -> None:
        mech = self._mech
        assert mech is not None
        try:
            step = advance()
        except (sasl.SASLError, TypeError, ValueError) as exc:
            self._report(exc)
            self._mech = None
            self._answer(event, AUTH_TEMPFAIL)
            return
        if isinstance(step, sasl.Challenge):
            self._answer(event, Reply.auth_challenge(step.data))
        elif isinstance(step, sasl.Success):
            self._mech = None
            session = self.session
            session.authenticated_user = step.authzid or step.authcid or ""
            session.auth_mechanism = step.mechanism
            self._answer(event, step.reply_hint)
        elif isinstance(step, sasl.Failure):
            self._mech = None
            self._answer(event, step.reply_hint)
        else:  # NeedCredentials: ask the application
            fn = self.hooks.auth
            if fn is None:
                self._auth_step(event, lambda: mech.supply(sasl.Verdict.UNKNOWN_USER))
                return

            def then(value: object, error: BaseException | None) -> None:
                if isinstance(error, Reject):
                    self._mech = None
                    self._answer(event, error.reply)
                    return
                if error is not None:
                    self._report(error)
                    answer: object = sasl.Verdict.TEMPORARY_FAILURE
                else:
                    answer = sasl.Verdict.UNKNOWN_USER if value is None else value
                self._auth_step(event, lambda: mech.supply(answer))  # type: ignore[arg-type]

            self._call(fn, (self.session, step), then)
