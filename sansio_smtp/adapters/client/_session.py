# The session half of the client engine: the Connection it drives, the clock (due times
# from the adapter's "now"), the transcript, reading replies, and setting up the session:
# greeting, EHLO/LHLO (HELO fallback), STARTTLS, AUTH; NOOP/RSET/VRFY/HELP and QUIT.
# The transcript is the core's Transcript: the engine adds the commands it sent (as
# _redact shows them), the replies it read and its notes; message content is shown by
# its size (ClientEngine). ``client.transcript`` is its lines, ``on_transcript`` its
# ``on_line``.
#
# Strategy: SessionEngine is sans-IO like the core it drives. Each operation is a
# generator that yields I/O requests (READ, Write(chunks, phase), HANDSHAKE; adapters/_io)
# and returns its result; the runtime (blocking, asyncio, AnyIO) serves them. ClientEngine
# (_engine) adds mail transactions and batches on top; one engine drives every runtime.
#
# Rules: the engine writes nothing but what Connection.send() returned; it reads replies
# until no command is pending, so a reply can never be matched with the wrong command. An
# operation that fails leaves the session usable only when ``usable`` says so (a refused
# transaction does; a timeout, a broken peer or a half-sent message does not), and
# adapters close the transport otherwise. Secrets never reach the transcript.
from __future__ import annotations

from typing import Final

from ... import sasl
from ..._connection import NEED_DATA, Connection
from ..._errors import PlaintextAfterStartTLS, RemoteProtocolError
from ..._events import (
    Auth,
    AuthResponse,
    Command,
    ConnectionClosed,
    Ehlo,
    Greeting,
    Helo,
    Lhlo,
    Quit,
    Reply,
    StartTLS,
)
from ..._redact import redact_client_line
from ..._state import CLIENT_TIMEOUTS, Phase, Role, State
from ..._transcript import LineKind, Transcript, TranscriptLine
from ...config import MAX_AUTH_LINE, Config
from .._io import HANDSHAKE, READ, Steps, TLSInfo, Write
from ._errors import (
    SMTPAuthError,
    SMTPAuthNeedsTLSError,
    SMTPConnectError,
    SMTPError,
    SMTPHeloError,
    SMTPProtocolViolation,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
)
from ._options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TLS_TIMEOUT,
    WRITE_BLOCK,
    ClientOptions,
    TLSMode,
)

__all__ = ["SessionEngine"]

_HELO_FALLBACK_CODES: Final = frozenset({500, 502})  # RFC 5321 §3.2, §4.1.1.1
#: Session states in which the server's next words can only be a reply (RFC 5321 §4.1.4:
#: a greeted session, a mail transaction); the core reads them with its reply reader.
_REPLY_STATES: Final = frozenset({State.READY, State.MAIL, State.RCPT, State.DATA, State.BDAT})
#: Session states in which another command can be sent (``usable``).
_USABLE: Final = frozenset(
    {State.CONNECTED, State.READY, State.MAIL, State.RCPT, State.BDAT, State.REJECTED}
)


class SessionEngine:
    """The client session without I/O (see the module comment): the base of ClientEngine.
    One per connection."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        # The core's rules are all in force (8-bit content only when declared, RFC 6152
        # §3): the engine declares what a message needs and asks the core (ClientEngine).
        config = Config(lmtp=options.lmtp, allow_plaintext_auth=options.allow_plaintext_auth)
        self.conn = Connection(Role.CLIENT, config, tls=options.tls is TLSMode.IMPLICIT)
        self.greeting: Greeting | None = None
        self.esmtp = False  # EHLO/LHLO was accepted (not HELO)
        self.broken = False  # an operation left the session in an unknown state
        self.local_hostname = options.local_hostname or "localhost"
        self._log = options.transcript or options.on_transcript is not None
        #: The dialogue (kept with ``transcript=True``, streamed to ``on_transcript``).
        self.log = Transcript(on_line=options.on_transcript, store=options.transcript)
        defaults: dict[Phase, float] = {
            Phase.CONNECT: DEFAULT_CONNECT_TIMEOUT,
            Phase.TLS: DEFAULT_TLS_TIMEOUT,
            **CLIENT_TIMEOUTS,  # RFC 5321 §4.5.3.2
        }
        self._timeouts: dict[str, float] = {
            phase: options.timeouts.get(phase, options.timeout or seconds)
            for phase, seconds in defaults.items()
        }
        # The clock belongs to the adapter, which passes its monotonic "now" in: the clock
        # value the session must end by (``deadline``), and the one by which the reply
        # awaited now must be complete (set at the first read for it, cleared when a new
        # reply is awaited), so a reply that trickles in cannot restart its timeout.
        self._session_end: float | None = None
        self._reply_due: float | None = None  # None while no read for the awaited reply
        #: The runtime serves a ``Write(read=True)`` by reading at once when the core holds
        #: no byte yet (what the operation would READ first), before resuming it: the
        #: operation then reads its replies without looking at the buffer first (the
        #: blocking client; the async runtimes resume at once and get READ next).
        self.read_after_write = False
        #: tls-server-end-point data of the server's certificate once TLS is up (RFC
        #: 5929 §4), for SCRAM -PLUS; None without TLS or for a certificate whose
        #: signature algorithm leaves the binding undefined (e.g. Ed25519).
        self.channel_binding: sasl.ChannelBinding | None = None

    # ----------------------------------------------------------------- bookkeeping

    @property
    def usable(self) -> bool:
        """The session can take another command: nothing half-done, not closed."""
        if self.broken:
            return False
        conn = self.conn
        return not conn.pending and conn.state in _USABLE

    def timeout(self, phase: Phase) -> float:
        """Seconds allowed for ``phase``: the ``timeouts`` mapping, else ``timeout``, else
        the RFC 5321 §4.5.3.2 value (60 s for "connect" and "tls")."""
        seconds = self._timeouts.get(phase)
        return seconds if seconds is not None else self._timeouts[Phase.COMMAND]

    def read_timeout(self) -> tuple[Phase, float]:
        """What the connection waits for now, and the whole timeout for it."""
        awaited = self.conn.timeout
        phase = awaited.phase if awaited is not None else Phase.COMMAND
        return phase, self._timeouts.get(phase) or self._timeouts[Phase.COMMAND]

    # --------------------------------------------------------------- deadlines
    # Adapters pass their monotonic clock's "now" and get back clock values ("due") by
    # which a step must be done; when one passes, timed_out() builds the error.

    def start_clock(self, now: float) -> None:
        """The adapter starts connecting at ``now``: the session deadline runs from here."""
        deadline = self.options.deadline
        self._session_end = None if deadline is None else now + deadline
        self._reply_due = None

    def _cap(self, due: float) -> float:
        end = self._session_end
        return due if end is None or due < end else end

    def step_due(self, phase: Phase, now: float) -> float:
        """When a step starting at ``now`` (Phase.CONNECT, Phase.TLS) must be done."""
        return self._cap(now + self.timeout(phase))

    def read_due(self, now: float) -> tuple[Phase, float]:
        """The phase of the READ asked for now and when it must be done: the whole reply
        awaited is due ``timeout(phase)`` after the first read for it (RFC 5321
        §4.5.3.2), not after the last octet received."""
        phase, seconds = self.read_timeout()
        if self._reply_due is None:
            self._reply_due = now + seconds
        return phase, self._cap(self._reply_due)

    def write_due(self, phase: Phase, started: float, sent: int) -> float:
        """When a Write of ``phase`` begun at ``started``, with ``sent`` octets written so
        far, must be done: the phase's timeout for each block of WRITE_BLOCK octets it
        has started (RFC 5321 §4.5.3.2.5)."""
        return self._cap(started + self.timeout(phase) * (1 + sent // WRITE_BLOCK))

    def timed_out(self, phase: Phase, due: float) -> SMTPTimeoutError:
        """The error for a step of ``phase`` whose ``due`` time passed; the session
        cannot go on (``broken``)."""
        self.broken = True
        if due == self._session_end and self.options.deadline is not None:
            return SMTPTimeoutError(Phase.SESSION, self.options.deadline, waiting_for=phase)
        return SMTPTimeoutError(phase, self.timeout(phase))

    def tls_ready(self, tls: TLSInfo) -> None:
        """The adapter finished a TLS handshake (implicit TLS, or after STARTTLS): note it
        and take channel binding data from the server's certificate (RFC 5929 §4.1)."""
        self.note(f"TLS established: {tls.version()} {(tls.cipher() or ('',))[0]}")
        certificate = tls.getpeercert(binary_form=True)
        self.channel_binding = None
        if certificate:
            try:
                self.channel_binding = sasl.tls_server_end_point(certificate)
            except ValueError as exc:
                self.note(f"no channel binding: {exc}")

    @property
    def transcript(self) -> list[TranscriptLine]:
        """The lines of the dialogue so far (none unless ``transcript=True``)."""
        return self.log.lines()

    def note(self, text: str) -> None:
        """Add a "*" line to the transcript (adapters: connection and TLS events)."""
        if self._log:
            self.log.note(text)

    def _record(self, direction: str, text: str, kind: LineKind | None = None) -> None:
        self.log.add_line(direction, text, kind=kind)

    def _log_command(self, command: Command, wire: bytes) -> None:
        # the command line as _redact shows it; an AuthResponse answers a 334 challenge
        line = redact_client_line(wire.rstrip(b"\r\n"), in_auth=type(command) is AuthResponse)
        self._record("C", line.decode("utf-8", "replace"))

    def _log_reply(self, reply: Reply | Greeting) -> None:
        self.log.add_reply(reply)

    def send(self, command: Command) -> bytes:
        """``conn.send(command)``, logged."""
        wire = self.conn.send(command)
        if self._log:
            self._log_command(command, wire)
        return wire

    def _violation(self, exc: RemoteProtocolError) -> SMTPError:
        self.broken = True
        if isinstance(exc, PlaintextAfterStartTLS):  # RFC 3207 §4.2, CVE-2011-0411
            return SMTPTLSError(f"plaintext received after the 220 to STARTTLS: {exc}")
        return SMTPProtocolViolation(f"the server broke the protocol: {exc}")

    def _reply(self) -> Steps[Reply]:
        """Read the next reply, right after a write: first see whether anything is
        buffered (usually nothing is), unless the runtime read after the write."""
        conn = self.conn
        # Nothing buffered: the reply reader could only say NEED_DATA; read first.
        if (
            not self.read_after_write
            and conn.state in _REPLY_STATES
            and not conn.buffered
            and not conn.peer_closed
        ):
            yield READ
        while True:
            reply = self._next_reply()
            if reply is not None:
                return reply
            yield READ

    def _next_reply(self) -> Reply | None:
        """The next reply when it is buffered whole, else None (read, then ask again).
        Without a generator of its own: a run of pipelined replies, read together,
        costs a call each (_collect). A whole reply ends its timer: the next reply's
        timeout starts at the first read for it (read_due)."""
        try:
            event = self.conn.next_event()
        except RemoteProtocolError as exc:
            raise self._violation(exc) from exc
        if type(event) is Reply:
            self._reply_due = None
            if self._log:
                self._log_reply(event)
            return event
        if event is NEED_DATA:
            return None
        raise self._not_a_reply(event)

    def _not_a_reply(self, event: object) -> SMTPError:
        """The error for what the core gave where a reply was awaited; the session cannot
        go on."""
        self.broken = True
        if isinstance(event, ConnectionClosed):
            return SMTPServerDisconnected("the server closed the connection")
        # Greetings are read by open(); PAUSED comes only in State.TLS, handled there.
        return SMTPProtocolViolation(f"unexpected {event!r}")  # pragma: no cover - a bug

    def _exchange(self, command: Command, phase: Phase = Phase.COMMAND) -> Steps[Reply]:
        """Send one command and read its reply (lock-step)."""
        yield Write([self.send(command)], phase, read=True)
        return (yield from self._reply())

    # ------------------------------------------------------------------------ open

    def open(self) -> Steps[None]:
        """Greeting, EHLO/LHLO (or HELO), STARTTLS per the TLS mode, AUTH if credentials
        were given. Raises SMTPConnectError, SMTPHeloError, SMTPTLSError, SMTPAuthError."""
        conn = self.conn
        self._reply_due = None
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                self.broken = True
                raise SMTPConnectError(f"malformed greeting: {exc}") from exc
            if event is NEED_DATA:
                yield READ
                continue
            break
        if isinstance(event, ConnectionClosed):
            self.broken = True
            raise SMTPConnectError("the server closed the connection before its greeting")
        assert isinstance(event, Greeting)
        self._reply_due = None  # the greeting's time is over
        self.greeting = event
        if self._log:
            self._log_reply(event)
        if event.code != 220:  # RFC 5321 §3.1: 554 (only QUIT allowed) or 421
            reply = Reply(code=event.code, lines=event.lines)
            raise SMTPConnectError("the server refused the session", reply)
        yield from self.hello()
        mode = self.options.tls
        if mode in (TLSMode.STARTTLS_REQUIRED, TLSMode.STARTTLS_OPPORTUNISTIC):
            if "STARTTLS" in conn.extensions:
                yield from self.starttls(required=mode is TLSMode.STARTTLS_REQUIRED)
            elif mode is TLSMode.STARTTLS_REQUIRED:
                raise SMTPTLSError("the server does not offer STARTTLS (RFC 3207 §4)")
        if self.options.username is not None or self.options.token is not None:
            yield from self.authenticate()

    def hello(self) -> Steps[Reply]:
        """EHLO (LHLO in LMTP); HELO when EHLO is not recognised (RFC 5321 §3.2)."""
        name = self.local_hostname
        if self.options.lmtp:
            reply = yield from self._exchange(Lhlo(domain=name))
        else:
            reply = yield from self._exchange(Ehlo(domain=name))
            if reply.code in _HELO_FALLBACK_CODES:
                reply = yield from self._exchange(Helo(domain=name))
                if reply.is_positive:
                    self.esmtp = False
                    return reply
        if not reply.is_positive:
            raise SMTPHeloError("the server refused our greeting", reply)
        self.esmtp = True
        return reply

    def starttls(self, *, required: bool = True) -> Steps[None]:
        """STARTTLS, the handshake, and EHLO again (RFC 3207 §4.2)."""
        conn = self.conn
        reply = yield from self._exchange(StartTLS())
        if reply.code != 220:
            if required:
                raise SMTPTLSError("the server refused STARTTLS", reply)
            self.note("STARTTLS refused; continuing without TLS")
            return
        try:
            conn.next_event()  # PAUSED, or PlaintextAfterStartTLS for bytes after the 220
        except RemoteProtocolError as exc:
            raise self._violation(exc) from exc
        yield HANDSHAKE
        try:
            conn.tls_established()
        except RemoteProtocolError as exc:
            raise self._violation(exc) from exc
        yield from self.hello()

    # ------------------------------------------------------------------------ AUTH

    def authenticate(self) -> Steps[None]:
        """AUTH with the strongest mechanism both sides support that the transport allows
        (sansio_smtp.sasl.choose_mechanism; RFC 4954)."""
        opts = self.options
        conn = self.conn
        offered = conn.extensions.get("AUTH")
        if offered is None:
            where = "" if conn.tls_active else " without TLS"
            raise SMTPAuthError(f"the server does not offer AUTH{where} (RFC 4954 §3)")
        if not conn.tls_active and not opts.allow_plaintext_auth:
            # Any mechanism, not only PLAIN/LOGIN: a CRAM-MD5 or SCRAM response lets
            # whoever sees it (a man in the middle that stripped STARTTLS) guess the
            # password offline (RFC 4954 §4, §14; RFC 3207 §6).
            raise SMTPAuthNeedsTLSError(
                f"no usable AUTH mechanism without TLS (offered: {' '.join(offered)}):"
                " credentials are sent only over TLS (use STARTTLS or implicit TLS) unless"
                " allow_plaintext_auth=True"
            )
        binding = self.channel_binding if conn.tls_active else None
        name = sasl.choose_mechanism(
            offered,
            tls=conn.tls_active,
            allow_plaintext=opts.allow_plaintext_auth,
            have_password=opts.password is not None,
            have_token=opts.token is not None,
            have_channel_binding=binding is not None,
            preference=tuple(opts.auth_mechanisms or sasl.DEFAULT_PREFERENCE),
        )
        if name is None:
            raise SMTPAuthError(f"no usable AUTH mechanism among {' '.join(offered)}")
        if not sasl.binds_channel(name) and any(sasl.binds_channel(m) for m in offered):
            # RFC 5802 §6: flag "y" (we could bind, the server seems unable to) makes a
            # server that offers -PLUS fail us as a downgrade; it is for servers without.
            binding = None
        mech = sasl.client_mechanism(
            name,
            username=opts.username,
            password=opts.password,
            token=opts.token,
            authzid=opts.authzid,
            host=opts.server_hostname or opts.host,
            port=opts.port,
            channel_binding=binding,
        )
        initial = mech.initial_response()
        if initial is not None and (len(initial) + 2) // 3 * 4 + len(name) + 8 > MAX_AUTH_LINE:
            initial = None  # RFC 4954 §4: too long for the AUTH line; answer the 334 instead
        reply = yield from self._exchange(Auth(mechanism=name, initial_response=initial))
        while reply.code == 334:
            try:
                response: bytes | None = mech.respond(reply.challenge)
                problem = None
            except (sasl.SASLError, ValueError) as exc:
                response, problem = None, exc  # RFC 4954 §4: cancel with "*"
            reply = yield from self._exchange(AuthResponse(data=response))
            if problem is not None:
                raise SMTPAuthError(f"AUTH {name} cancelled: {problem}", reply) from problem
        if not reply.is_positive:
            raise SMTPAuthError(f"AUTH {name} refused", reply)
        try:
            mech.finish()
        except sasl.SASLError as exc:
            self.broken = True  # the server claims success but did not prove itself
            raise SMTPAuthError(f"AUTH {name}: {exc}", reply) from exc

    # --------------------------------------------------------------- other commands

    def command(self, command: Command) -> Steps[Reply]:
        """Send any command outside a transaction (NOOP, RSET, VRFY, HELP...) and return
        its reply, whatever the code."""
        if not self.usable:
            raise SMTPServerDisconnected("the session is not usable (closed or broken)")
        return (yield from self._exchange(command))

    def quit(self) -> Steps[Reply | None]:
        """QUIT (RFC 5321 §4.1.1.10) when the session allows it; None when it does not or
        the server closed without answering."""
        if not self.usable:
            return None
        try:
            reply = yield from self._exchange(Quit())
        except SMTPServerDisconnected:
            return None
        return reply
