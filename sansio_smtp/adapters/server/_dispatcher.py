# The Dispatcher: turns one server Connection's events into handler hook calls and
# replies, without I/O.
#
# Strategy: the session is a generator of I/O requests (READ, Write, HANDSHAKE, Await,
# CLOSE from ``.._io``), the style of the client engine: each runtime serves them with a
# short loop. It never blocks and never awaits, so the three servers share every protocol
# decision and differ only in I/O. Replies to pipelined commands are collected and go out
# in one Write before the next wait. Hooks are resolved once per server (``Hooks``): a
# missing or default hook costs nothing.
# Rules: the core decides what is legal; the Dispatcher only answers, in order, one reply
# per command (the core pauses until each is sent); AUTH secrets never reach a log or a
# repr.
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Final, TypeAlias, cast

from ... import sasl
from ..._connection import NEED_DATA, PAUSED, Connection
from ..._errors import LocalProtocolError, PlaintextAfterStartTLS, RemoteProtocolError
from ..._events import (
    Auth,
    AuthResponse,
    Bdat,
    BytesLike,
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
)
from ..._extensions import Extensions
from ..._state import LmtpDelivery, Phase, State
from ...proxy import ProxyProtocolError
from .._io import CLOSE, HANDSHAKE, READ, Await, ServerOp, ServerSteps, Write

if TYPE_CHECKING:
    from .._io import TLSInfo
from ._handler import Envelope, Reject, Session
from ._hooks import Hooks
from ._proxy import apply_header, read_header

log = logging.getLogger("sansio_smtp.server")

#: ``offload(fn)``: an awaitable of ``fn()`` run off the event loop (a worker thread)
Offload: TypeAlias = "Callable[[Callable[[], object]], Awaitable[object]]"

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


def _close_awaitable(result: object) -> None:
    close = getattr(result, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


_Outcome: TypeAlias = "tuple[object, BaseException | None]"
_Steps: TypeAlias = "Generator[ServerOp, object, _Outcome]"


class Dispatcher:
    """Drives one server Connection for a handler, without I/O.

    ``steps()`` is the whole session as a generator of I/O requests (``.._io``), served
    by the runtime like the client engine's: READ (read, ``feed()``, resume with None),
    Write (write its chunks, resume), HANDSHAKE (the TLS server handshake, resume with
    its ``TLSInfo``), Await (await it, resume with its value or throw its exception in),
    CLOSE (close the connection; the session is over). ``goodbye()`` says 421 at any
    point (a deadline, a shutdown) and ends the session.

    ``allow_await=False`` (the blocking server) turns an awaitable hook result into an
    error reply. ``offload``, given by the async servers, runs the ``data_chunk`` and
    ``data`` hooks of a ``blocking_io`` handler off the event loop (Await then waits for
    the worker thread); without it they run inline.
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
        proxy_protocol: bool = False,
    ) -> None:
        self.conn = conn
        self.hooks = hooks
        self.session = session
        self.awaiting: Awaitable[object] | None = None
        self.error: BaseException | None = None  # why the connection was closed, if broken
        self._out: list[BytesLike] = []
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
        #: the PROXY protocol header's octets so far, while one is awaited
        self._proxy: bytearray | None = bytearray() if proxy_protocol else None

    # ------------------------------------------------------------- runtime interface

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
        """The session is ending: what is written now is its last word."""
        return self._closing

    def feed(self, data: bytes) -> None:
        """Bytes from the client (b"" when it closed)."""
        if self._closing:
            return
        if self._proxy is not None and data:
            self._proxy += data
        else:
            self.conn.receive_data(data)

    def goodbye(self, reply: Reply) -> bytes:
        """End the session with an unsolicited ``reply`` (421, RFC 5321 §3.8): the bytes
        to write before closing (none if the session cannot say it now, or ended)."""
        wire = b""
        if not self._closing:
            with contextlib.suppress(LocalProtocolError):
                wire = self.conn.send(reply)
        self._closing = True
        return wire

    def steps(self) -> ServerSteps:
        """The session: greet the client (after the connect hook), then answer every
        command, in order, until the connection ends."""
        if self._started:
            raise RuntimeError("the session was already started")
        self._started = True
        if self._proxy is not None and not (yield from self._proxy_header()):
            yield CLOSE
            return
        yield from self._greet()
        conn = self.conn
        hooks = self.hooks
        while not self._closing:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                # e.g. plaintext injected after STARTTLS (CVE-2011-0411): drop the client
                self.error = exc
                break
            if event is NEED_DATA:
                if self._out:
                    yield self._write()
                yield READ
                continue
            if event is PAUSED:
                if conn.state is State.TLS:
                    if not (yield from self._starttls()):
                        break
                    continue
                pending = conn.pending
                if not pending:  # pragma: no cover - the greeting is always sent first
                    yield READ
                    continue
                self._owed(pending[0])
                continue
            if type(event) is MessageData:  # the hot path of message content
                data = event.data
                chunk = data if type(data) is bytes else bytes(data)
                if hooks.buffer_content:
                    self._chunks.append(chunk)
                fn = hooks.data_chunk
                envelope = self.session.envelope
                if fn is not None and self._data_error is None and envelope is not None:
                    _, error = yield from self._call(fn, (self.session, envelope, chunk), True)
                    if error is not None:
                        self._data_error = error
                continue
            assert isinstance(event, Event)
            yield from self._dispatch(event)
        if self._out:
            yield self._write()
        yield CLOSE

    # --------------------------------------------------------------------- internals

    def _proxy_header(self) -> Generator[ServerOp, object, bool]:
        """Read the PROXY protocol header (``_proxy.read_header``); False (and ``error``
        set) when what came is not one: no SMTP is spoken then."""
        buf = self._proxy
        assert buf is not None
        try:
            header, rest = yield from read_header(buf)
        except ProxyProtocolError as exc:
            self.error = exc
            return False
        self._proxy = None
        apply_header(self.session, header)
        if rest:
            self.conn.receive_data(rest)
        return True

    def _write(self) -> Write:
        out, self._out = self._out, []
        return Write(out, Phase.CLIENT)

    def tls_started(self, version: str | None = None, cipher: str | None = None) -> None:
        """The STARTTLS handshake succeeded: the session starts over under TLS (RFC 3207
        §4.2: forget the EHLO argument and anything else learnt before). Raises
        PlaintextAfterStartTLS if the client had sent plaintext after STARTTLS."""
        self.conn.tls_established()
        session = self.session
        session.tls, session.tls_version, session.tls_cipher = True, version, cipher
        session.helo_name, session.esmtp, session.envelope = None, False, None
        session.authenticated_user = session.auth_mechanism = None

    def _starttls(self) -> Generator[ServerOp, object, bool]:
        """After STARTTLS's 220: the handshake, then the session starts over. False when
        the client had sent plaintext after STARTTLS (CVE-2011-0411): close."""
        if self._out:
            yield self._write()
        info = cast("TLSInfo | None", (yield HANDSHAKE))
        version = cipher = None
        if info is not None:
            version = info.version()
            cipher = (info.cipher() or (None,))[0]
        try:
            self.tls_started(version, cipher)
        except PlaintextAfterStartTLS as exc:  # CVE-2011-0411
            log.info("closing %s: %s", self.session.peer, exc)
            self.error = exc
            return False
        return True

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(exc)
        else:
            log.error("handler error", exc_info=exc)

    def _call(
        self, fn: Callable[..., object], args: tuple[object, ...], blocking: bool = False
    ) -> _Steps:
        """Call a hook: its value or the exception it raised, awaited if need be."""
        offload = self._offload
        if blocking and offload is not None:  # a store step: run it in a worker thread
            return (yield from self._await(offload(functools.partial(fn, *args))))
        try:
            result = fn(*args)
        except Exception as exc:
            return None, exc
        if result is not None and type(result) is not Reply and inspect.isawaitable(result):
            if not self._allow_await:
                _close_awaitable(result)
                return None, TypeError(
                    f"{fn!r} returned an awaitable: this server needs plain hooks"
                )
            return (yield from self._await(result))
        return result, None

    def _await(self, awaitable: Awaitable[object]) -> _Steps:
        if self._out:  # what is owed so far goes out before the wait
            yield self._write()
        self.awaiting = awaitable
        try:
            value = yield Await(awaitable)
        except Exception as exc:
            return None, exc
        finally:
            self.awaiting = None
        return value, None

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

    def _greet(self) -> Generator[ServerOp, object, None]:
        value: object = None
        error: BaseException | None = None
        if self.hooks.connect is not None:
            value, error = yield from self._call(self.hooks.connect, (self.session,))
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
        config = self.conn.config
        if reply is None:
            kind = "LMTP" if config.lmtp else "ESMTP"
            # RFC 5321 §4.2 Greeting: the server's domain comes first
            text = self._greeting or f"{kind} ready"
            greeting = Greeting(lines=f"{config.hostname} {text}")
        else:
            code = reply.code if reply.code in (220, 421, 554) else 554
            lines = reply.lines
            if not lines[0].startswith(config.hostname):
                # RFC 5321 §4.2 Greeting: the server's domain comes first
                lines = (f"{config.hostname} {lines[0]}".rstrip(), *lines[1:])
            greeting = Greeting(code=code, lines=lines)
        self._out.append(self.conn.send(greeting))
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
        self._out.append(wire)
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

    def _hooked(
        self, fn: Callable[..., object] | None, event: Event
    ) -> Generator[ServerOp, object, None]:
        if fn is None:
            self._answer(event, self.conn.default_reply(event))
            return
        value, error = yield from self._call(fn, (self.session, event))
        self._answer(event, self._reply_from(event, value, error))

    def _dispatch(self, event: Event) -> Generator[ServerOp, object, None]:
        hooks = self.hooks
        kind = type(event)
        if kind is MailFrom:
            yield from self._hooked(hooks.mail, event)
        elif kind is RcptTo:
            yield from self._hooked(hooks.rcpt, event)
        elif kind is Data:
            self._default(event)
        elif kind is EndOfMessage:
            yield from self._end_of_message()
        elif kind is Ehlo:
            yield from self._hooked(hooks.ehlo, event)
        elif kind is Helo:
            yield from self._hooked(hooks.helo, event)
        elif kind is Lhlo:
            yield from self._hooked(hooks.lhlo, event)
        elif kind is Rset:
            yield from self._hooked(hooks.rset, event)
        elif kind is Quit:
            yield from self._hooked(hooks.quit, event)
        elif kind is InvalidCommand or kind is InvalidMessage:
            assert isinstance(event, (InvalidCommand, InvalidMessage))
            if kind is InvalidCommand:
                self._mech = None  # during AUTH the core ends the exchange (RFC 4954 §4)
            self._answer(event, event.reply_hint)
        elif kind is Bdat:
            pass  # its chunk follows; the reply comes once it has been read (RFC 3030 §2)
        elif kind is Auth:
            assert isinstance(event, Auth)
            yield from self._auth_start(event)
        elif kind is AuthResponse:
            assert isinstance(event, AuthResponse)
            yield from self._auth_response(event)
        elif kind is ConnectionClosed:
            self._closing = True
        else:  # STARTTLS (220; the core then pauses for the handshake), NOOP, VRFY...
            self._default(event)

    # ---------------------------------------------------------------------- content

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

    def _end_of_message(self) -> Generator[ServerOp, object, None]:
        envelope = self.session.envelope
        owed = self.conn.pending[0]  # EndOfMessage (DATA) or the last Bdat
        if envelope is None:  # pragma: no cover - the core allows content only in a txn
            self._default(owed)
            return
        if self.hooks.buffer_content:
            envelope.content = b"".join(self._chunks)
            self._chunks.clear()
        value: object = None
        error = self._data_error
        fn = self.hooks.data
        if error is None and fn is not None:
            value, error = yield from self._call(fn, (self.session, envelope), True)
        self._finish_data(owed, value, error)

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

    def _auth_start(self, event: Auth) -> Generator[ServerOp, object, None]:
        conn = self.conn
        config = conn.config
        binding = self.hooks.channel_binding
        # What this server offers now is the core's rule (Connection.ehlo_reply: -PLUS
        # only under TLS, RFC 5802 §6), asked here rather than worked out again.
        offered = Extensions.from_ehlo_lines(conn.ehlo_reply().lines[1:]).get("AUTH", ())
        plus = any(sasl.binds_channel(m) for m in offered)
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
        initial = event.initial_response
        yield from self._auth_step(event, lambda: mech.start(initial))

    def _auth_response(self, event: AuthResponse) -> Generator[ServerOp, object, None]:
        mech = self._mech
        if mech is None:  # pragma: no cover - the core only emits it during AUTH
            self._answer(event, AUTH_TEMPFAIL)
            return
        data = event.data
        if data is None:
            yield from self._auth_step(event, mech.cancel)  # RFC 4954 §4: "*" -> 501
        else:
            yield from self._auth_step(event, lambda: mech.receive(data))

    def _auth_step(
        self, event: Event, advance: Callable[[], sasl.ServerStep]
    ) -> Generator[ServerOp, object, None]:
        """Advance the SASL exchange until it has something to say: a challenge, the
        outcome, or a question for the application (the credential check) first."""
        mech = self._mech
        assert mech is not None
        while True:
            try:
                step = advance()
            except (sasl.SASLError, TypeError, ValueError) as exc:
                self._report(exc)
                self._mech = None
                self._answer(event, AUTH_TEMPFAIL)
                return
            if isinstance(step, sasl.Challenge):
                self._answer(event, Reply.auth_challenge(step.data))
                return
            if isinstance(step, sasl.Success):
                self._mech = None
                session = self.session
                session.authenticated_user = step.authzid or step.authcid or ""
                session.auth_mechanism = step.mechanism
                self._answer(event, step.reply_hint)
                return
            if isinstance(step, sasl.Failure):
                self._mech = None
                self._answer(event, step.reply_hint)
                return
            # NeedCredentials: ask the application
            answer: object = sasl.Verdict.UNKNOWN_USER
            fn = self.hooks.auth
            if fn is not None:
                value, error = yield from self._call(fn, (self.session, step))
                if isinstance(error, Reject):
                    self._mech = None
                    self._answer(event, error.reply)
                    return
                if error is not None:
                    self._report(error)
                    answer = sasl.Verdict.TEMPORARY_FAILURE
                elif value is not None:
                    answer = value
            advance = functools.partial(mech.supply, answer)  # type: ignore[arg-type]
