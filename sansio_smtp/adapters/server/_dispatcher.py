# The Dispatcher: turns one server Connection's events into handler hook calls and
# replies, without I/O.
#
# Strategy: the session is a generator of I/O requests (READ, Write, HANDSHAKE, Await,
# CLOSE from ``.._io``), the style of the client engine: each runtime serves them with a
# short loop. It never blocks and never awaits, so the three servers share every protocol
# decision and differ only in I/O. Replies to pipelined commands are collected and go out
# in one Write before the next wait (RFC 2920 §3.1). Hooks are resolved once per server
# (``Hooks``): a missing or default hook costs nothing.
# The hot path: each event goes to its handler by one dict lookup on its type
# (_HANDLERS); a handler answers at once, and only a hook that must be waited for (an
# awaitable, a worker thread) costs a generator. The AUTH exchange is in _auth_steps.
# Rules: the core decides what is legal; the Dispatcher only answers, in order, one reply
# per command (the core pauses until each is sent); AUTH secrets never reach a log or a
# repr.
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast, final

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
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
)
from ..._state import Phase, State
from .._io import CLOSE, HANDSHAKE, READ, Await, ServerOp, ServerSteps, Write

if TYPE_CHECKING:
    from ... import sasl
    from .._io import TLSInfo
from ._auth_steps import AuthSteps, Outcome, Steps
from ._content_steps import LOCAL_ERROR, ContentSteps
from ._handler import Envelope, Reject, Session
from ._hooks import Hooks

log = logging.getLogger("sansio_smtp.server")

#: ``offload(fn)``: an awaitable of ``fn()`` run off the event loop (a worker thread)
Offload: TypeAlias = "Callable[[Callable[[], object]], Awaitable[object]]"

# Enum members read once: an attribute of an Enum class costs a descriptor call each time
_MAIL, _RCPT, _DATA, _BDAT = State.MAIL, State.RCPT, State.DATA, State.BDAT
_READY, _CLOSED, _TLS = State.READY, State.CLOSED, State.TLS
_TO_CLIENT = Phase.CLIENT


def in_transaction(state: State) -> bool:
    """A mail transaction is open (RFC 5321 §3.3). Identity tests: Enum hashing is slow."""
    return state is _RCPT or state is _DATA or state is _MAIL or state is _BDAT


@functools.lru_cache(maxsize=16)
def _greeting(hostname: str, text: str) -> Greeting:
    """The usual greeting (RFC 5321 §4.2: the server's domain comes first), made once per
    server rather than once per connection: a Greeting is immutable."""
    return Greeting(lines=f"{hostname} {text}")


def _close_awaitable(result: object) -> None:
    close = getattr(result, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


@final
class _Mark:
    """What answer_read() leaves to steps() besides a hook's steps."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_STARTTLS: Final = _Mark("_STARTTLS")  # after STARTTLS's 220: the handshake
_END: Final = _Mark("_END")  # the session is over (or the client broke it)

_Outcome: TypeAlias = Outcome
_Steps: TypeAlias = Steps
#: what an event's handler returns: None when it is dealt with, or the steps that wait
_Wait: TypeAlias = "Generator[ServerOp, object, None] | None"


class Dispatcher(AuthSteps, ContentSteps):
    """Drives one server Connection for a handler, without I/O.

    ``steps()`` is the whole session as a generator of I/O requests (``.._io``) that the
    runtime serves: READ (read, ``feed()``, resume with None), Write (write, resume; with
    ``read`` set, READ first), HANDSHAKE (the TLS handshake, resume with its ``TLSInfo``),
    Await (resume with its value or throw its exception in), CLOSE (the session is over).
    ``goodbye()`` says 421 at any point (a deadline, a shutdown) and ends the session.

    ``allow_await=False`` (the blocking server) makes an awaitable hook result an error
    reply; ``offload`` (the async servers) runs a ``blocking_io`` handler's ``data_chunk``
    and ``data`` hooks in a worker thread (Await waits for it), else they run inline.
    """

    # slots: one per connection, most of them idle
    __slots__ = (
        "_allow_await",
        "_chunks",
        "_closing",
        "_data_error",
        "_drained",
        "_greeting",
        "_handlers",
        "_left",
        "_lmtp_replies",
        "_offload",
        "_on_error",
        "_out",
        "_proxy",
        "_started",
        "answering",
        "awaiting",
        "conn",
        "error",
        "hooks",
        "session",
    )

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
        self._lmtp_replies: list[Reply | None] = []  # LMTP's per-recipient replies to come
        self._mech: sasl.ServerMechanism | None = None
        self._started = False
        #: what answer_read() left to steps(): a hook's steps, _STARTTLS or _END
        self._left: _Wait | _Mark = None
        #: the session loop runs: each READ steps() asks for is answered by answer_read()
        self.answering = False
        self._handlers = hooks.dispatch or _handlers_for(hooks)
        #: LMTP owes one reply per recipient after the content: not drained by the first
        self._drained = _DRAINED_LMTP if conn.config.lmtp else _DRAINED
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

    def feed(self, data: BytesLike) -> None:
        """Bytes from the client (b"" when it closed), copied before this returns."""
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
        self.answering = True
        conn = self.conn
        if not self._closing and not conn.buffered and not conn.peer_closed:
            yield self._write(read=True)  # nothing came yet: next_event() says NEED_DATA
        while True:
            left, self._left = self._left, None
            if left is None:  # resumed after READ (or a wait): answer what came
                out = self.answer_read()
                if out is not None:
                    # this read's replies in one write, then READ before resuming (Write.read)
                    yield Write(out, _TO_CLIENT, read=True) if out else READ
                    continue
                left, self._left = self._left, None
            if left is _END:
                break
            if left is _STARTTLS:
                if not (yield from self._starttls()):
                    break
                continue
            assert left is not None and not isinstance(left, _Mark)
            yield from left  # a hook to wait for
        if self._out:
            yield self._write()
        yield CLOSE

    def answer_read(self) -> list[BytesLike] | None:
        """Answer the commands (and content) read so far, as far as that needs no wait.

        The replies to write, after which the session waits for READ (the Connection
        needs data: next_event() says NEED_DATA); or None when it
        goes on in ``steps()`` (a hook to wait for, the STARTTLS handshake, the end).
        ``steps()`` calls it after each READ; once ``answering`` is set, a runtime may call
        it itself when it has fed what it read for steps()' READ, and resume steps() only
        when it returns None: the common read (commands answered at once) then costs no
        generator resumption and no Write request."""
        conn = self.conn
        next_event = conn.next_event
        handlers = self._handlers
        drained = self._drained
        while not self._closing:
            try:
                event = next_event()
            except RemoteProtocolError as exc:
                # e.g. plaintext injected after STARTTLS (CVE-2011-0411): drop the client
                self.error = exc
                break
            if event is NEED_DATA:
                out, self._out = self._out, []
                return out
            if event is PAUSED:
                if conn.state is _TLS:
                    self._left = _STARTTLS
                    return None
                pending = conn.pending
                if not pending:  # pragma: no cover - the greeting is always sent first
                    return []  # READ
                self._owed(pending[0])
                continue
            # Table dispatch on the event's type: the handler answers at once (None), or
            # gives the steps that wait for a hook (an awaitable, a worker thread). A type
            # without one (DATA, NOOP, a command without a hook...) gets its default reply
            # here, as _default would give it.
            event_type = type(event)
            handler = handlers.get(event_type)
            if handler is None:  # (an Event: the two sentinels were dealt with above)
                self._answer(event, conn.default_reply(event))  # type: ignore[arg-type]
            else:
                wait = handler(self, event)
                if wait is not None:
                    self._left = wait
                    return None
            # A command of _DRAINED answered, nothing more buffered, the peer still
            # there: next_event() would say NEED_DATA (see _DRAINED), so it is not asked.
            if event_type in drained and not (self._closing or conn.buffered or conn.peer_closed):
                out, self._out = self._out, []
                return out
        self._left = _END
        return None

    # --------------------------------------------------------------------- internals

    def _proxy_header(self) -> Generator[ServerOp, object, bool]:
        """Read the PROXY protocol header (``_proxy.read_header``); False (and ``error``
        set) when what came is not one: no SMTP is spoken then."""
        # here: a server without the PROXY protocol never loads it (nor ipaddress)
        from ...proxy import ProxyProtocolError
        from ._proxy import apply_header, read_header

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

    def _write(self, read: bool = False) -> Write:
        out, self._out = self._out, []
        return Write(out, _TO_CLIENT, read=read)

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
    ) -> _Outcome | _Steps:
        """Call a hook: (its value, None) or (None, the exception it raised) when it is
        done; the steps that wait for it when its result must be awaited or it runs in
        a worker thread (``blocking``, with ``offload``). So a plain hook costs no
        generator."""
        offload = self._offload
        if blocking and offload is not None:  # a store step: run it in a worker thread
            return self._await(offload(functools.partial(fn, *args)))
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
            return self._await(result)
        return result, None

    def _called(self, fn: Callable[..., object], args: tuple[object, ...]) -> _Steps:
        """``_call`` from code that is steps itself (the greeting, AUTH): the outcome."""
        outcome = self._call(fn, args)
        if isinstance(outcome, tuple):
            return outcome
        return (yield from outcome)

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
            value, error = yield from self._called(self.hooks.connect, (self.session,))
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
            text = self._greeting or ("LMTP ready" if config.lmtp else "ESMTP ready")
            greeting = _greeting(config.hostname, text)
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
            # the wire pieces join once, with the other replies to this read, in _write
            self._out += conn.send_with_data_passthrough(reply)
        except LocalProtocolError as exc:  # a reply that cannot answer this command
            self._report(exc)
            reply = conn.default_reply(event) if isinstance(event, Quit) else LOCAL_ERROR
            self._out += conn.send_with_data_passthrough(reply)
        session = self.session
        state = conn.state
        if reply.code < 300:
            event_type = type(event)
            if event_type is RcptTo:
                assert isinstance(event, RcptTo)
                envelope = session.envelope
                if envelope is not None:
                    envelope.rcpt_tos.append(event.forward_path)
                    envelope.rcpt_params.append(event.params)
            elif event_type is MailFrom:
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
            elif event_type is EndOfMessage or (event_type is Bdat and state is _READY):
                session.transactions += 1
            elif event_type is Ehlo or event_type is Helo or event_type is Lhlo:
                assert isinstance(event, (Ehlo, Helo, Lhlo))
                session.helo_name = event.domain
                session.esmtp = event_type is not Helo
        # identity tests, not in_transaction(): this runs for every reply
        if not (state is _RCPT or state is _DATA or state is _MAIL or state is _BDAT):
            session.envelope = None
            if self._chunks:
                self._chunks = []
            self._data_error = None
            if state is _CLOSED:
                self._closing = True

    def _hooked(self, fn: Callable[..., object] | None, event: Event) -> _Wait:
        """Answer ``event`` with what hook ``fn`` says (None: no hook, the default)."""
        if fn is None:
            self._answer(event, self.conn.default_reply(event))
            return None
        outcome = self._call(fn, (self.session, event))
        if isinstance(outcome, tuple):
            self._answer(event, self._reply_from(event, *outcome))
            return None
        return self._answer_after(event, outcome)

    def _answer_after(self, event: Event, call: _Steps) -> Generator[ServerOp, object, None]:
        value, error = yield from call
        self._answer(event, self._reply_from(event, value, error))

    # The handlers of _HANDLERS, one per event type: None when the event was dealt with,
    # or the steps that wait for a hook.

    def _default(self, event: Event) -> _Wait:
        """STARTTLS (220; the core then pauses for the handshake), NOOP, VRFY, DATA..."""
        self._answer(event, self.conn.default_reply(event))
        return None

    def _on_command(self, event: Event) -> _Wait:
        """EHLO, HELO, LHLO, MAIL, RCPT, RSET, QUIT: what their hook says."""
        return self._hooked(self.hooks.commands[type(event)], event)

    def _on_invalid(self, event: InvalidCommand | InvalidMessage) -> _Wait:
        if type(event) is InvalidCommand:
            self._mech = None  # during AUTH the core ends the exchange (RFC 4954 §4)
        self._answer(event, event.reply_hint)
        return None

    def _on_bdat(self, event: Bdat) -> _Wait:
        return None  # its chunk follows; the reply comes once it has been read (RFC 3030 §2)

    def _on_closed(self, event: ConnectionClosed) -> _Wait:
        self._closing = True
        return None

    def _on_auth(self, event: Auth) -> _Wait:
        return self._auth_start(event)

    def _on_auth_response(self, event: AuthResponse) -> _Wait:
        return self._auth_response(event)


#: The handler of each event type the core emits (the others - STARTTLS, NOOP, VRFY,
#: HELP, DATA... - get their default reply, as from Dispatcher._default): one dict lookup
#: instead of an isinstance chain.
_HANDLERS: Final[dict[type, Callable[[Dispatcher, Any], _Wait]]] = {
    MessageData: Dispatcher._on_content,
    MailFrom: Dispatcher._on_command,
    RcptTo: Dispatcher._on_command,
    EndOfMessage: Dispatcher._on_end,
    Ehlo: Dispatcher._on_command,
    Helo: Dispatcher._on_command,
    Lhlo: Dispatcher._on_command,
    Rset: Dispatcher._on_command,
    Quit: Dispatcher._on_command,
    InvalidCommand: Dispatcher._on_invalid,
    InvalidMessage: Dispatcher._on_invalid,
    Bdat: Dispatcher._on_bdat,
    Auth: Dispatcher._on_auth,
    AuthResponse: Dispatcher._on_auth_response,
    ConnectionClosed: Dispatcher._on_closed,
}


#: The commands after whose reply a server Connection, with nothing buffered and the peer
#: still there, can only say NEED_DATA: the reply answers the one command pending (SMTP
#: answers each before reading the next), leaves no BDAT chunk to read, no handshake due
#: (nor CLOSED: answer_read checks ``_closing``), and the state's reader (a command line,
#: or DATA's content, read afresh) needs octets. answer_read() then does not ask
#: next_event() (lock-step: one call in two); tests/test_server_answer_read.py checks.
_DRAINED: Final = frozenset({MailFrom, RcptTo, Data, EndOfMessage, Ehlo, Helo, Lhlo, Rset, Noop})
_DRAINED_LMTP: Final = _DRAINED - {EndOfMessage}


def _handlers_for(hooks: Hooks) -> dict[type, Callable[[Dispatcher, Any], _Wait]]:
    """_HANDLERS for ``hooks``, built once per server (kept on the Hooks), without the
    commands that have no hook: answer_read() gives them their default reply at once,
    without _on_command's look-up of the hook that is not there."""
    table = hooks.dispatch
    if table is None:
        table = dict(_HANDLERS)
        for event_type, fn in hooks.commands.items():
            if fn is None:
                del table[event_type]
        hooks.dispatch = table
    return table
