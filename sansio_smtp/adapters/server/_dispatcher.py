# The Dispatcher: turns one server Connection's events into handler hook calls and
# replies, without I/O.
#
# Strategy: the adapter feeds it bytes, writes ``out``, and does what ``run()`` asks (read
# more, await a hook, start TLS, close). It never blocks and never awaits, so the three
# servers share every protocol decision and differ only in I/O. Hooks are resolved once per
# server (``Hooks``): a missing or default hook costs nothing.
# Rules: the core decides what is legal; the Dispatcher only answers, in order, one reply
# per command (the core pauses until each is sent); AUTH secrets never reach a log or a
# repr.
from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeAlias

from ... import sasl
from ..._connection import NEED_DATA, PAUSED, Connection
from ..._events import (
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
from ..._state import LmtpDelivery, State
from ..._util import LocalProtocolError, RemoteProtocolError
from ._handler import Authenticator, Envelope, Handler, Reject, Session

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
        PlaintextAfterStartTLS if the client had sent plaintext after STARTTLS."""
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
