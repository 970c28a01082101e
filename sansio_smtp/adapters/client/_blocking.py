# Blocking SMTP/ESMTP/LMTP client on the stdlib socket and ssl modules.
#
# Strategy: SMTPClient is the I/O loop around ClientEngine (_engine): the engine's
# generators say READ / Write / HANDSHAKE and this module serves each with socket calls
# under that phase's timeout (RFC 5321 §4.5.3.2, from Connection.timeout). Protocol
# decisions live in the engine (shared with the asyncio and AnyIO runtimes, which are not
# built on this one).
#
# Rules: the socket is non-blocking and every wait is a selector's select() bounded by
# the time left until the step's due time from the engine (a whole reply, a whole write
# block, the TLS handshake, and the session ``deadline``), so a peer that trickles
# octets in or reads slowly cannot restart a timeout; no settimeout() system call
# between phases. The clock is time.monotonic(), passed to the engine. A timeout, a lost
# connection or a failed TLS handshake closes the socket, so a late reply can never be read as the
# answer to a later command. TLS is ssl.create_default_context() unless an ssl_context is
# given (certificate and host name checked; SSL_CERT_FILE honoured). Not thread-safe: one
# thread per client. The selector is a PollSelector where select.poll exists (no
# descriptor of its own, no FD_SETSIZE limit on the socket's number), else a
# SelectSelector (Windows); chosen at connect(), not at import as
# selectors.DefaultSelector is, which would also cost an epoll/kqueue descriptor per client.
# Reads recv() first while the peer answers as fast as we read (on loopback or a LAN
# it has usually answered by the time the reply is read), so a round trip costs one
# send() and one recv(), as with smtplib's blocking socket; after a read that had to
# wait they wait first (no recv() that could only say EAGAIN) until a wait finds the
# reply there already (_recv). They wait on a
# select.poll object of their own where there is one (_wait_readable): the same poll()
# system call, without the selector's Python layer (keys, event lists). A socket timeout
# (settimeout) would cost an ioctl per read and another to make the socket non-blocking
# again for the next write, and CPython polls before every recv() under one. A Write the
# engine marks ``read`` (a reply follows) is followed by that read at once, before the
# engine resumes (engine.read_after_write): one resumption of its generators per round
# trip.
"""A blocking SMTP, ESMTP and LMTP client.

with SMTPClient("mail.example.org", 587, tls=TLSMode.STARTTLS_REQUIRED,
                username="me", password="secret") as smtp:
    result = smtp.send_message(msg)
    result.refused     # {recipient: Reply} for recipients that did not get it
"""

from __future__ import annotations

import contextlib
import email.message
import math
import select
import selectors
import socket
import ssl
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar, cast

from ..._events import Help, Noop, Reply, Rset, Vrfy
from ..._state import Phase
from .._io import READ, Steps, Write
from ._base import ClientBase
from ._engine import ClientEngine
from ._errors import (
    SMTPConnectError,
    SMTPError,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
)
from ._message import MessageSpec, as_content, as_recipients, flatten_message
from ._options import TLSMode, address_literal
from ._results import SendResult

__all__ = ["SMTPClient"]

T = TypeVar("T")
_RECV_SIZE = 65536
#: A wait for a reply shorter than this found it there already, or all but (poll()
#: returned at once, or the peer answered within a context switch): the next read
#: tries recv() before waiting.
_ANSWERED = 50e-6


def _new_selector() -> selectors.BaseSelector:
    """A selector for the one socket of a client: poll() where the platform has it,
    select() elsewhere (Windows has no select.poll)."""
    if hasattr(select, "poll"):
        return selectors.PollSelector()
    return selectors.SelectSelector()


class SMTPClient(ClientBase):
    """A blocking SMTP client for one server; use it as a context manager (or call
    ``connect()`` and ``quit()``/``close()``).

    - ``host``, ``port``: the server (port 465 defaults to implicit TLS).
    - ``tls``: a TLSMode; default IMPLICIT on port 465, else STARTTLS_OPPORTUNISTIC.
    - ``ssl_context``: default ``ssl.create_default_context()`` (verifies the certificate
      and host name). ``server_hostname``: the name to verify, default ``host``.
    - ``local_hostname``: our EHLO name, default the address literal of our socket.
    - ``username`` with ``password`` (or ``token`` for OAUTHBEARER/XOAUTH2), ``authzid``:
      AUTH right after the session opens, with the strongest mechanism both sides have
      (``auth_mechanisms``: our preference order). Without TLS no credentials of any
      mechanism are sent (SMTPAuthNeedsTLSError, before any AUTH) unless
      ``allow_plaintext_auth``.
    - ``lmtp``: speak LMTP (RFC 2033): LHLO, and one result per recipient after the data.
    - ``timeout``: seconds for every phase; ``timeouts``: per phase ("connect", "tls",
      "greeting", "MAIL", "RCPT", "DATA", "data block", "end of data", "command"),
      overriding it. Default: the RFC 5321 §4.5.3.2 values, 60 s for connect and TLS.
      Each bounds a whole reply (from the first read for it, however slowly it comes),
      the TLS handshake, and each write (per started MiB for message content).
    - ``deadline``: seconds the whole session may last from ``connect()`` (connect, TLS,
      every command and reply, QUIT); None (default) for no limit. When it passes,
      SMTPTimeoutError with ``phase`` "session" and the connection is closed.
    - ``pipelining``/``chunking``: use PIPELINING (RFC 2920) and CHUNKING/BDAT (RFC 3030)
      when offered; ``bdat_chunk_size``: the largest BDAT chunk.
    - ``transcript``: keep the dialogue in ``self.transcript`` (AUTH data redacted);
      ``on_transcript``: also call this with each TranscriptEntry.
    """

    def _init_transport(self) -> None:
        self._sock: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._awaiting = 0  # the events the socket is registered for in _selector
        self._readable: select.poll | None = None  # reads' own poll object (_wait_readable)
        self._recv_first = True  # the peer answers as fast as we read (_recv)

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> SMTPClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._sock is not None and self._engine.usable:
                with contextlib.suppress(SMTPError):
                    self.quit()
        finally:
            self.close()

    def __del__(self) -> None:
        if getattr(self, "_sock", None) is not None:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            with contextlib.suppress(Exception):
                self.close()

    def connect(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured. On failure
        the connection is closed (after a QUIT when the session allows one)."""
        if self._sock is not None:
            raise RuntimeError("already connected")
        opts = self._options
        engine = self._engine = ClientEngine(opts)
        engine.read_after_write = True  # _run serves Write(read=True)
        now = time.monotonic()
        engine.start_clock(now)
        due = engine.step_due(Phase.CONNECT, now)
        try:
            sock = socket.create_connection(
                (opts.host, opts.port), timeout=due - now, source_address=self._source_address
            )
        except TimeoutError:
            raise engine.timed_out(Phase.CONNECT, due) from None
        except OSError as exc:
            raise SMTPConnectError(f"cannot connect to {opts.host}:{opts.port}: {exc}") from exc
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(0.0)  # non-blocking: _wait() selects with each phase's timeout
        self._selector = _new_selector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._awaiting = selectors.EVENT_READ
        if hasattr(select, "poll"):
            self._readable = select.poll()
            self._readable.register(sock, select.POLLIN)
        self._sock = sock
        if opts.local_hostname is None:
            engine.local_hostname = address_literal(sock.getsockname())
        engine.note(f"connected to {opts.host}:{opts.port}")
        try:
            if opts.tls is TLSMode.IMPLICIT:
                self._handshake()
            self._run(engine.open())
        except BaseException:
            if self._sock is not None and engine.usable:
                with contextlib.suppress(SMTPError):
                    self._run(engine.quit())
            self.close()
            raise

    def quit(self) -> Reply | None:
        """QUIT (RFC 5321 §4.1.1.10) and close. Returns the 221 reply, or None when the
        session was not in a state to QUIT or the server closed first."""
        if self._sock is None:
            return None
        try:
            return self._run(self._engine.quit())
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection at once (no QUIT). Safe to call more than once."""
        sock, self._sock = self._sock, None
        selector, self._selector = self._selector, None
        self._readable = None
        if selector is not None:
            selector.close()
        if sock is not None:
            self._engine.broken = True
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------- sending

    def send_message(
        self,
        msg: email.message.Message,
        from_addr: str | None = None,
        to_addrs: str | Sequence[str] | None = None,
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> SendResult:
        """Send an email.message.Message with the envelope taken from its headers, as
        ``smtplib.SMTP.send_message`` does (Sender/From; To, Cc, Bcc; Resent-* when
        present; Bcc not transmitted; SMTPUTF8 for non-ASCII addresses).

        Returns the SendResult when at least one recipient accepted the message; raises
        SMTPSenderRefused, SMTPRecipientsRefused or SMTPDataError otherwise."""
        sender, recipients, content, international = flatten_message(msg, from_addr, to_addrs)
        return self._run(
            self._engine.send_mail(
                sender, recipients, content, mail_params, rcpt_params, international=international
            )
        )

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Iterable[str],
        msg: bytes | bytearray | memoryview | str,
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> SendResult:
        """Send RFC 5322 message content (bytes; str is encoded as UTF-8) from
        ``from_addr`` ("" for the null reverse-path) to ``to_addrs``. Bare CR/LF become
        CRLF; BODY=8BITMIME, SMTPUTF8, SIZE and BDAT are chosen automatically. Returns the
        SendResult or raises like send_message."""
        return self._run(
            self._engine.send_mail(
                from_addr, as_recipients(to_addrs), as_content(msg), mail_params, rcpt_params
            )
        )

    def sendmail_many(self, messages: Iterable[MessageSpec]) -> list[SendResult]:
        """Send a batch of messages on this session: each an OutgoingMessage or a tuple
        ``(from_addr, to_addrs, msg)`` with sendmail's arguments. Returns one SendResult
        per message, in order; a refused message is not an exception here (its result has
        ``ok`` False, with every recipient's refusal: the MAIL reply when the sender was
        refused, the final reply when the content was).

        On a server with PIPELINING and no CHUNKING, the content and "." of each message
        go in the same write as the next message's MAIL, RCPTs and DATA (RFC 2920 §3.1),
        so a batch takes about one round trip per message where sendmail takes two. With
        CHUNKING each message is one round trip anyway (MAIL RCPT... BDAT LAST); without
        PIPELINING, and in LMTP, messages go one by one as sendmail sends them.

        Every message is checked first: SMTPNotSupportedError, ValueError (a bad address,
        no recipients) are raised before anything is sent. If the connection fails midway
        (lost, closed by a 421, timed out, broken protocol), SMTPBatchInterrupted is
        raised: its ``results`` are those of the first messages, whose outcome is known,
        and the original error is its ``__cause__``; the connection is closed."""
        return self._run(self._engine.send_many(messages))

    def noop(self) -> Reply:
        """NOOP (RFC 5321 §4.1.1.9); the reply whatever its code."""
        return self._run(self._engine.command(Noop()))

    def rset(self) -> Reply:
        """RSET (RFC 5321 §4.1.1.5): abort the current transaction."""
        return self._run(self._engine.command(Rset()))

    def vrfy(self, text: str) -> Reply:
        """VRFY (RFC 5321 §4.1.1.6)."""
        return self._run(self._engine.command(Vrfy(text=text)))

    def help(self, topic: str | None = None) -> Reply:
        """HELP (RFC 5321 §4.1.1.8)."""
        return self._run(self._engine.command(Help(topic=topic)))

    # ---------------------------------------------------------------- introspection

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def ssl_object(self) -> ssl.SSLSocket | None:
        """The TLS socket once TLS is active (``version()``, ``getpeercert()``...)."""
        return self._sock if isinstance(self._sock, ssl.SSLSocket) else None

    # ------------------------------------------------------------------------ I/O

    def _run(self, steps: Steps[T]) -> T:
        """Serve the engine's I/O requests until the operation returns or raises."""
        sock = self._sock
        engine = self._engine
        if sock is None:
            steps.close()
            raise SMTPServerDisconnected("not connected")
        conn = engine.conn
        try:
            op = next(steps)
            while True:
                if type(op) is Write:
                    self._send(op)
                    # a reply comes next: read it before resuming (one resumption), when
                    # the core holds nothing, as the operation would READ
                    if op.read and not conn.buffered and not conn.peer_closed:
                        conn.receive_data(self._recv())
                elif op is READ:
                    conn.receive_data(self._recv())
                else:
                    self._handshake()
                op = steps.send(None)
        except StopIteration as stop:
            if engine.broken:  # e.g. a 421 ended the session (RFC 5321 §3.8)
                self.close()
            return cast(T, stop.value)
        except BaseException:
            steps.close()
            if not engine.usable:
                self.close()
            raise

    def _wait(self, sock: socket.socket, events: int, due: float, phase: Phase) -> None:
        """Wait until ``sock`` is ready for ``events`` (selectors.EVENT_READ /
        EVENT_WRITE), at the latest until the clock reaches ``due``. The socket is
        non-blocking, so no call below can block for longer."""
        selector = self._selector
        assert selector is not None
        if events != self._awaiting:  # mostly reads: re-register only on a change
            selector.modify(sock, events)
            self._awaiting = events
        while True:
            seconds = due - time.monotonic()
            try:
                if selector.select(max(0.0, seconds)):
                    return
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                pass
            if seconds <= 0:
                raise self._engine.timed_out(phase, due)

    def _wait_readable(self, sock: socket.socket, due: float, phase: Phase) -> None:
        """_wait(sock, EVENT_READ, due, phase) on the reads' own poll object: poll() in
        milliseconds rounded up, as PollSelector asks it. Without select.poll, _wait."""
        readable = self._readable
        if readable is None:
            self._wait(sock, selectors.EVENT_READ, due, phase)
            return
        while True:
            seconds = due - time.monotonic()
            if readable.poll(math.ceil(seconds * 1e3) if seconds > 0 else 0):
                return
            if seconds <= 0:
                raise self._engine.timed_out(phase, due)

    def _recv(self) -> bytes:
        """Some bytes from the peer (b"" at its end of file), within the time left for
        the reply awaited. The socket is non-blocking: recv() first while the peer
        answers as fast as we read (its reply is there already: no wait), else wait
        first, as a recv() would only say EAGAIN (a slow or distant peer; TLS with a
        record already received reads at once). The reply's timeout runs from the first
        wait for it (read_due): a read that does not wait takes no time from it."""
        sock = self._sock
        assert sock is not None
        try:
            writing = False
            if self._recv_first or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                try:
                    return sock.recv(_RECV_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    pass
                except ssl.SSLWantWriteError:  # pragma: no cover - TLS renegotiation
                    writing = True
            start = time.monotonic()
            phase, due = self._engine.read_due(start)
            while True:
                if writing:  # pragma: no cover - TLS renegotiation
                    self._wait(sock, selectors.EVENT_WRITE, due, phase)
                else:
                    self._wait_readable(sock, due, phase)
                try:
                    data = sock.recv(_RECV_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    writing = False
                    continue
                except ssl.SSLWantWriteError:  # pragma: no cover - TLS renegotiation
                    writing = True
                    continue
                # recv() first next time when the wait was (almost) none
                self._recv_first = time.monotonic() - start < _ANSWERED
                return data
        except SMTPTimeoutError:  # a TimeoutError, hence an OSError: not "connection lost"
            raise
        except ssl.SSLError as exc:
            self._engine.broken = True
            raise SMTPTLSError(f"TLS error: {exc}") from exc
        except OSError as exc:
            self._engine.broken = True
            raise SMTPServerDisconnected(f"connection lost: {exc}") from exc

    def _send(self, op: Write) -> None:
        sock = self._sock
        assert sock is not None
        engine = self._engine
        phase = op.phase
        started = time.monotonic()
        done = 0  # octets of op written so far: each started block extends the time allowed
        try:
            for chunk in op.chunks:
                try:
                    sent = sock.send(chunk)  # usually all of it at once
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    sent = 0
                done += sent
                if sent == len(chunk):
                    continue
                view = memoryview(chunk)[sent:]
                while view:
                    try:
                        sent = sock.send(view)
                    except (BlockingIOError, ssl.SSLWantWriteError):
                        due = engine.write_due(phase, started, done)
                        self._wait(sock, selectors.EVENT_WRITE, due, phase)
                        continue
                    except ssl.SSLWantReadError:  # pragma: no cover - TLS renegotiation
                        due = engine.write_due(phase, started, done)
                        self._wait(sock, selectors.EVENT_READ, due, phase)
                        continue
                    done += sent
                    view = view[sent:]
        except SMTPTimeoutError:
            raise
        except OSError as exc:
            engine.broken = True
            raise SMTPServerDisconnected(f"connection lost: {exc}") from exc

    def _handshake(self) -> None:
        """Wrap the socket in TLS (implicit TLS, or after STARTTLS's 220). Everything
        received so far is already in the core, which refuses plaintext left over. The
        handshake is non-blocking, so the whole of it is bounded by the "tls" timeout
        (a peer sending its records an octet at a time cannot stretch it)."""
        sock = self._sock
        assert sock is not None
        engine = self._engine
        opts = self._options
        context = self._ssl_context
        if context is None:
            context = self._ssl_context = ssl.create_default_context()
        due = engine.step_due(Phase.TLS, time.monotonic())
        selector = self._selector
        assert selector is not None
        selector.unregister(sock)
        name = opts.server_hostname or opts.host
        try:
            tls_sock = context.wrap_socket(
                sock, server_hostname=name, do_handshake_on_connect=False
            )
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            engine.broken = True
            raise SMTPTLSError(f"TLS handshake with {name} failed: {exc}") from exc
        self._sock = tls_sock  # closed by close() whatever happens next
        selector.register(tls_sock, selectors.EVENT_READ)
        self._awaiting = selectors.EVENT_READ
        if self._readable is not None:  # the same descriptor: registered again all the same
            self._readable.register(tls_sock, select.POLLIN)
        try:
            while True:
                try:
                    tls_sock.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._wait(tls_sock, selectors.EVENT_READ, due, Phase.TLS)
                except ssl.SSLWantWriteError:
                    self._wait(tls_sock, selectors.EVENT_WRITE, due, Phase.TLS)
        except SMTPTimeoutError:
            raise
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            engine.broken = True
            raise SMTPTLSError(f"TLS handshake with {name} failed: {exc}") from exc
        engine.tls_ready(tls_sock)
