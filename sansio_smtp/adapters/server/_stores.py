# The built-in handlers that keep messages: Sink (discard), Memory (a list), Maildir and
# mbox (files, streamed through a spool), Print (a terminal, through a writer thread).
#
# Strategy: the file stores stream each message into a temporary file as it arrives, so
# memory per message is one chunk whatever its size, and store it when it ends: fsynced
# before the 250 (RFC 5321 §6.1). Their hooks block (``blocking_io``): the async servers
# run them in a worker thread.
# Rules: a spool left by a transaction that did not end in ``data`` is removed by the next
# transaction, RSET or the disconnect; what is printed is made terminal-safe. ``mailbox``
# and ``tempfile`` are imported by the store that uses them: a server that only accepts
# or sinks mail (SinkHandler is every server's default) does not load them.
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import socket
import sys
import threading
import time
from collections import deque
from typing import IO, Final

from ..._events import MailFrom, Reply, Rset
from ..._mailparams import Body, body
from ..._params import Params

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no mbox locking
    fcntl = None  # type: ignore[assignment]

from ._handler import Envelope, Handler, Session

log = logging.getLogger("sansio_smtp.server")


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


def _binary_body(params: Params) -> bool:
    """BODY=BINARYMIME (RFC 3030 §3): the content is octets, not lines. The BODY value
    is read by the core's parameter grammar (sansio_smtp.params); one it does not know
    is not BINARYMIME."""
    try:
        return body(params) is Body.BINARY_MIME
    except ValueError:
        return False


def _binary(envelope: Envelope) -> bool:
    return _binary_body(envelope.mail_params)


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

    def _deliver(self, spool: _Spool) -> str:  # pragma: no cover - abstract
        """Store the spooled message; where it went (for ``envelope.stored``)."""
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
                envelope.stored = self._deliver(spool)
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
        from pathlib import Path  # here: a server that stores no files never imports it

        self.path = Path(path)
        for sub in ("tmp", "new", "cur"):  # also in a directory that exists but is empty
            (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        import mailbox

        self.mailbox = mailbox.Maildir(self.path, create=False)
        host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
        self._host = host or "localhost"
        self._count = itertools.count()

    def _open(self, envelope: Envelope) -> _Spool:
        now = time.time()
        # the Maildir unique name: time, microseconds, pid, a counter and randomness
        name = (
            f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(self._count)}"
            f"R{os.urandom(4).hex()}.{self._host}"
        )
        path = os.path.join(self.path, "tmp", name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        return _Spool(envelope, os.fdopen(fd, "wb"), path, to_lf=not _binary(envelope))

    def _deliver(self, spool: _Spool) -> str:
        assert spool.path is not None
        spool.file.close()
        new = os.path.join(self.path, "new", os.path.basename(spool.path))
        try:
            os.link(spool.path, new)
        except (AttributeError, PermissionError):  # no hard links here
            os.rename(spool.path, new)
        _fsync_directory(os.path.join(self.path, "new"))
        return new


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
        from pathlib import Path  # here: a server that stores no files never imports it

        self.path = Path(path)
        self._lock = threading.Lock()
        with open(self.path, "ab"):  # fail early on a bad path
            pass

    def mail(self, session: Session, event: MailFrom) -> Reply | None:
        if _binary_body(event.params):
            # RFC 3463 5.6.1: media not supported (RFC 3030 §3)
            return Reply(
                code=555, lines="BODY=BINARYMIME cannot be stored in an mbox", enhanced="5.6.1"
            )
        return None

    def _open(self, envelope: Envelope) -> _Spool:
        # unnamed where the OS allows: nothing is left behind by a crash
        import tempfile

        spool = tempfile.TemporaryFile(dir=self.path.parent, prefix=".mbox-spool-")  # noqa: SIM115
        return _Spool(envelope, spool, None, to_lf=False)

    def _deliver(self, spool: _Spool) -> str:
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
        return str(self.path)


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
