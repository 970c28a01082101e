# Connection: one side of an SMTP session. Owns the receive buffer, picks the reader for
# what the peer sends next, runs events through the shared state table and the rules of
# _rules.py, and translates errors (LocalProtocolError inside next_event becomes
# RemoteProtocolError).
#
# Contract (h11's): receive_data() only buffers; next_event() returns one event per call,
# NEED_DATA or PAUSED; send() returns the exact bytes to write and changes state. send()
# is atomic: it validates before it changes anything, so a refused send (bad argument, out
# of sequence) leaves the connection as it was and usable - nothing was written. (h11 moves
# to ERROR on any send error; an SMTP client refused a malformed address should still be
# able to QUIT politely.) Any other failure moves the connection to State.ERROR.
#
# STARTTLS (RFC 3207): after the 220 the state is TLS and both sides pause. Bytes that
# arrived after the STARTTLS line (server) or after the 220 (client) are plaintext an
# attacker may have injected (CVE-2011-0411): next_event() and tls_established() raise
# RemoteProtocolError instead of ever carrying them over.
from __future__ import annotations

import copy
import enum
from typing import TYPE_CHECKING

import attrs

from ._display import PrettyPrinter, html_of, pretty_of
from ._errors import LocalProtocolError, PlaintextAfterStartTLS, RemoteProtocolError
from ._events import (
    Auth,
    Bdat,
    BytesLike,
    Command,
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
from ._extensions import Extensions
from ._readers import (
    OVERLONG_LINE_KEPT,
    CommandRejected,
    Context,
    DataReader,
    ReplyReader,
    is_auth_line,
    line_too_long,
    make_reply,
    parse_auth_response,
    parse_command,
    split_command_line,
)
from ._receivebuffer import ReceiveBuffer
from ._redact import redact_client_line
from ._replies import default_reply_for
from ._rules import (
    JUNK_COMMANDS,
    Facts,
    auth_offered,
    check_content,
    check_received,
    check_to_send,
    too_many_errors,
)
from ._sasl._base import binds_channel
from ._state import (
    ConnectionState,
    Role,
    State,
    Timeout,
    client_timeout,
    ends_group,
    ends_message,
    server_timeout,
)
from ._writers import DataWriter, write_command, write_reply
from .config import MAX_AUTH_LINE, Config

if TYPE_CHECKING:
    from ._recorder import Recorder as Transcript  # what a Transcript offers Connection

__all__ = ["NEED_DATA", "PAUSED", "Connection", "Sentinel"]


class Sentinel(enum.Enum):
    """What next_event returns when it has no event."""

    NEED_DATA = "NEED_DATA"  # feed more bytes with receive_data()
    PAUSED = "PAUSED"  # stop reading: a server owes a reply, or a TLS handshake is due


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED

CLIENT = Role.CLIENT
SERVER = Role.SERVER

_SYNC_ERROR = Reply(code=554, lines="SMTP synchronization error", enhanced="5.5.0")


@attrs.define
class _Chunk:
    """A BDAT chunk being read (server) or sent (client)."""

    remaining: int
    last: bool
    held: InvalidCommand | None = None  # refused BDAT: emitted once its octets are skipped
    error: InvalidMessage | None = None


class Connection:
    """One side of an SMTP session, without I/O.

    ``tls=True`` starts with TLS already active (implicit TLS, RFC 8314).
    ``transcript``: a Transcript that records the bytes and events each way.

    >>> server = Connection(SERVER)
    >>> server.send(Greeting(lines="mx.example.org ESMTP"))
    b'220 mx.example.org ESMTP\\r\\n'
    """

    def __init__(
        self,
        our_role: Role,
        config: Config | None = None,
        *,
        tls: bool = False,
        transcript: Transcript | None = None,
    ) -> None:
        if not isinstance(our_role, Role):
            raise TypeError(f"our_role must be CLIENT or SERVER, not {our_role!r}")
        self.our_role = our_role
        self.their_role = SERVER if our_role is CLIENT else CLIENT
        self.config = config if config is not None else Config()
        self._state = ConnectionState(lmtp=self.config.lmtp)
        self._facts = Facts(config=self.config, extensions=Extensions(), tls=tls)
        self._buf = ReceiveBuffer()
        self._peer_closed = False
        self._reply_reader = ReplyReader(self.config)
        self._data_reader: DataReader | None = None
        self._data_writer: DataWriter | None = None
        self._chunk: _Chunk | None = None
        self._content_size = 0  # message content octets in this transaction
        self._last_answered: Event | None = None
        self._discarding: bytes | None = None  # start of an over-long line being dropped
        self._sync_violation = False
        #: True once the peer pipelined commands it had no right to (server side), or spoke
        #: before the greeting.
        self.improper_pipelining = False
        self._transcript = transcript

    # ------------------------------------------------------------------ introspection

    @property
    def state(self) -> State:
        """The session state, as confirmed by replies."""
        return self._state.state

    @property
    def pending(self) -> tuple[Event, ...]:
        """What awaits a reply, oldest first: commands sent (client) or received (server),
        and LmtpDelivery entries for LMTP's per-recipient replies."""
        return tuple(self._state.pending)

    @property
    def extensions(self) -> Extensions:
        """The EHLO extensions in effect: what the server advertised in its last positive
        EHLO/LHLO reply (empty after HELO, before EHLO, and after STARTTLS)."""
        return self._facts.extensions

    @property
    def tls_active(self) -> bool:
        return self._facts.tls

    @property
    def authenticated(self) -> bool:
        """AUTH succeeded in this session (RFC 4954)."""
        return self._facts.authenticated

    @property
    def last_answered(self) -> Event | None:
        """What the most recent reply answered: a command, or for an LMTP per-recipient
        reply the RcptTo it is about."""
        return self._last_answered

    @property
    def accepted_recipients(self) -> tuple[RcptTo, ...]:
        """The RCPTs accepted so far in the current transaction."""
        return tuple(self._state.accepted)

    @property
    def size_limit(self) -> int | None:
        """The message size limit in force (Config.max_message_size / advertised SIZE)."""
        return self._facts.size_limit

    @property
    def timeout(self) -> Timeout | None:
        """What the connection waits for now and how long an adapter should wait for it
        (RFC 5321 §4.5.3.2), or None."""
        st = self._state
        if self.our_role is CLIENT:
            return client_timeout(st.state, st.pending)
        owes_reply = bool(st.pending) and self._chunk is None
        return server_timeout(st.state, owes_reply=owes_reply)

    @property
    def in_chunk(self) -> bool:
        """The octets of a BDAT chunk are being read (server; a refused chunk's too, as
        they are skipped) or sent (client): RFC 3030 §2."""
        return self._chunk is not None

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not consumed, and whether the peer has closed."""
        return bytes(self._buf), self._peer_closed

    def __repr__(self) -> str:
        return (
            f"<Connection {self.our_role.value} state={self.state.value}"
            f" pending={len(self._state.pending)}>"
        )

    # Rich display in notebooks and IPython: the renderer _repr registers.
    def _repr_html_(self) -> str:
        return html_of(self)

    def _repr_pretty_(self, p: PrettyPrinter, cycle: bool) -> None:
        pretty_of(self, p, cycle)

    # ---------------------------------------------------------------------- receiving

    def receive_data(self, data: BytesLike) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed the connection."""
        if data:
            if self._peer_closed:
                raise RuntimeError("received data after the peer closed the connection")
            if self._state.state is not State.CLOSED:  # after QUIT/421 nothing is read
                self._buf += data
        else:
            self._peer_closed = True
        if self._transcript is not None:
            self._transcript.record_received(self.our_role, data)

    def next_event(self) -> Event | Sentinel:
        """The next event from the peer, NEED_DATA, or PAUSED."""
        if self._state.state is State.ERROR:
            raise RemoteProtocolError("the connection is in the ERROR state")
        try:
            event = self._extract_event()
        except LocalProtocolError as exc:
            self._state.error()
            exc._reraise_as_remote_protocol_error()
        except RemoteProtocolError:  # raised as such: PlaintextAfterStartTLS
            self._state.error()
            raise
        except Exception:  # pragma: no cover - a bug; keep the state honest
            self._state.error()
            raise
        if self._transcript is not None:
            self._transcript.record_event(self.our_role, event)
        return event

    def _extract_event(self) -> Event | Sentinel:
        state = self._state.state
        if state is State.CLOSED:
            return ConnectionClosed()
        if state is State.TLS:
            if self._buf:
                raise PlaintextAfterStartTLS
            return PAUSED
        if self.our_role is SERVER:
            event = self._extract_server_event()
        else:
            event = self._extract_client_event()
        if event is NEED_DATA and self._peer_closed:
            self._state.close()
            return ConnectionClosed()
        return event

    def _extract_server_event(self) -> Event | Sentinel:
        st = self._state
        if st.state is State.GREETING:
            return PAUSED
        if self._chunk is not None:
            return self._read_chunk(self._chunk)
        if st.pending:
            return PAUSED
        if st.state is State.DATA:
            assert self._data_reader is not None
            event = self._data_reader.read(self._buf)
            if event is None:
                return NEED_DATA
            if isinstance(event, (EndOfMessage, InvalidMessage)):
                self._data_reader = None
                if isinstance(event, InvalidMessage):
                    st.content_refusal = event.reply_hint  # RFC 2033 §4.2: for all
                # Either way the end of the content awaits the transaction's reply.
                st.process_command(EndOfMessage())
            return event
        raw = self._buf.maybe_extract_line()
        if raw is None:
            auth = is_auth_line(self._discarding or self._buf.raw, in_auth=st.state is State.AUTH)
            if len(self._buf) > (MAX_AUTH_LINE if auth else self.config.max_command_line):
                # Drop an over-long line as it arrives (memory stays bounded); refuse it
                # once its end arrives, so the reply lines up with it.
                self._discarding = self._discarding or bytes(self._buf.raw[:OVERLONG_LINE_KEPT])
                self._buf.clear()
            return NEED_DATA
        return self._server_command(raw)

    def _server_command(self, raw: bytes) -> Event | Sentinel:
        in_auth = self._state.state is State.AUTH
        line, rejected = split_command_line(raw, self.config, auth=in_auth)
        if self._discarding is not None:
            # the same refusal as for the line arriving whole (split_command_line)
            line, self._discarding = self._discarding, None
            rejected = line_too_long(auth=is_auth_line(line, in_auth=in_auth))
        event: Event
        command: Command | None = None
        if rejected is None:
            try:
                if in_auth:
                    # (a refused response is a secret too: redacted below)
                    event = parse_auth_response(line)
                    self._process_command(event)
                    return event
                command = parse_command(
                    line, Context(self._facts.extensions, self._utf8, lmtp=self.config.lmtp)
                )
            except CommandRejected as exc:
                rejected = exc
        if command is not None:
            refusal = check_received(command, self._state.state, self._facts)
            refusal = self._check_synchronization(command) or refusal
            if isinstance(command, Bdat):
                return self._start_chunk(command, line, refusal)
            event = self._refused(line, refusal, command) if refusal else command
        else:
            assert rejected is not None
            if in_auth:
                line = redact_client_line(line, in_auth=True)
            event = self._refused(line, rejected.reply)
        self._process_command(event)
        return event

    def _refused(self, line: bytes, reply: Reply, command: Command | None = None) -> InvalidCommand:
        """The event for a refused command line; past Config.max_invalid_commands its
        reply closes the session instead."""
        facts = self._facts
        reply = too_many_errors(facts) or reply
        facts.invalid_commands += 1
        return InvalidCommand(line=line, reply_hint=reply, command=command)

    @property
    def _utf8(self) -> bool:
        mail = self._facts.mail
        return mail is not None and "SMTPUTF8" in mail.params  # RFC 6531 §3.4

    def _check_synchronization(self, command: Command) -> Reply | None:
        """RFC 2920 §3.1: a client may send the next command before this one's reply only
        when PIPELINING was advertised and this command does not end a group."""
        if isinstance(command, (Bdat, Quit)):
            return None  # BDAT is followed by its chunk; anything after QUIT is moot
        if self._buf and ("PIPELINING" not in self._facts.extensions or ends_group(command)):
            self.improper_pipelining = True
            self._sync_violation = True
        if self._sync_violation and self.config.reject_improper_pipelining:
            return _SYNC_ERROR
        return None

    def _start_chunk(self, command: Bdat, line: bytes, refusal: Reply | None) -> Event | Sentinel:
        """RFC 3030 §2: the chunk's octets follow the BDAT line whatever the reply will be;
        a refused BDAT still has them skipped before the refusal is emitted."""
        if refusal is not None:
            held = self._refused(line, refusal, command)
            self._chunk = _Chunk(remaining=command.size, last=command.last, held=held)
            return self._read_chunk(self._chunk)
        if self._state.state is State.RCPT:
            self._content_size = 0  # the first chunk of a transaction
        self._chunk = _Chunk(remaining=command.size, last=command.last)
        self._process_command(command)
        return command

    def _read_chunk(self, chunk: _Chunk) -> Event | Sentinel:
        while chunk.remaining:
            count = min(chunk.remaining, len(self._buf), self.config.max_data_chunk)
            if not count:
                return NEED_DATA
            data = self._buf.extract(count)
            chunk.remaining -= count
            if chunk.held is not None or chunk.error is not None:
                continue
            self._content_size += count
            limit = self._facts.size_limit
            if limit is not None and self._content_size > limit:
                # RFC 1870 §6.1 / RFC 3030 §2: 552, and the chunk is still consumed
                hint = Reply(code=552, lines="Message size exceeds fixed maximum", enhanced="5.3.4")
                chunk.error = InvalidMessage(reason="message too large", reply_hint=hint)
                continue
            return MessageData(data=data)
        self._chunk = None
        if chunk.held is not None:
            self._process_command(chunk.held)
            return chunk.held
        if chunk.error is not None:
            self._state.content_refusal = chunk.error.reply_hint  # RFC 2033 §4.2: for all
            return chunk.error
        if chunk.last:
            return EndOfMessage()
        return PAUSED

    def _extract_client_event(self) -> Event | Sentinel:
        got = self._reply_reader.read(self._buf)
        if got is None:
            return NEED_DATA
        code, texts = got
        if self._state.state is State.GREETING:
            if code not in (220, 421, 554):
                raise LocalProtocolError(f"{code} is not a greeting (RFC 5321 §4.3.2)")
            greeting = Greeting(code=code, lines=tuple(texts))
            self._state.process_greeting(code)
            return greeting
        reply = make_reply(code, texts)
        self._process_reply(reply)
        return reply

    # ------------------------------------------------------------------------ sending

    def send(self, event: Event) -> bytes:
        """The bytes that put ``event`` on the wire; the state moves on as if they were
        written (call send_failed() if they could not be)."""
        return b"".join(self.send_with_data_passthrough(event))

    def send_with_data_passthrough(self, event: Event) -> list[BytesLike]:
        """Like send(), but a MessageData whose content needs no change comes back as the
        caller's own object, so large messages are not copied."""
        state = self._state.state
        if state is State.ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if state is State.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if state is State.TLS:
            raise LocalProtocolError("finish the TLS handshake first (tls_established())")
        sent: list[BytesLike] = (
            [self._send_server(event)] if self.our_role is SERVER else self._send_client(event)
        )
        if self._transcript is not None:
            self._transcript.record_sent(self.our_role, event, sent)
        return sent

    def check(self, event: Event) -> LocalProtocolError | None:
        """The error send(``event``) would raise now, or None when it would be sent; the
        connection does not change. A client asks before it commits to a command (RFC 5321
        §4.1.4 sequence, extensions advertised, SIZE, LIMITS, the TLS and AUTH policy)."""
        probe = copy.copy(self)
        probe._state = self._state.copy()
        probe._facts = attrs.evolve(self._facts)
        probe._chunk = copy.copy(self._chunk)
        probe._data_writer = copy.copy(self._data_writer)
        probe._transcript = None
        try:
            probe.send_with_data_passthrough(event)
        except LocalProtocolError as exc:
            return exc
        return None

    def send_failed(self) -> None:
        """The bytes of the last send() could not be written: the session is lost."""
        self._state.error()

    def tls_established(self) -> None:
        """The adapter finished the TLS handshake that STARTTLS's 220 started.

        RFC 3207 §4.2: both sides forget what they learned before TLS: the session starts
        over from the greeting state CONNECTED, and the client must send EHLO again."""
        st = self._state
        if st.state is not State.TLS:
            raise LocalProtocolError("no TLS handshake is due (send or receive STARTTLS first)")
        if self._buf:
            st.error()
            raise PlaintextAfterStartTLS
        st.state = st.projected = State.CONNECTED
        st.accepted = []
        self._facts = Facts(config=self.config, extensions=Extensions(), tls=True)

    def _send_server(self, event: Event) -> bytes:
        st = self._state
        if isinstance(event, Greeting):
            if st.state is not State.GREETING:
                raise LocalProtocolError("the greeting was already sent")
            wire = write_reply(event, self.config)
            st.process_greeting(event.code)
            if self._buf:  # the client spoke first
                self.improper_pipelining = self._sync_violation = True
            return wire
        if isinstance(event, Reply):
            if st.state is State.GREETING:
                raise LocalProtocolError("send the Greeting first (RFC 5321 §3.1)")
            if not st.pending and event.code != 421:
                raise LocalProtocolError(f"reply {event.code} answers no command")
            if self._chunk is not None and event.code != 421:
                raise LocalProtocolError("read the whole BDAT chunk before replying")
            event = self._with_enhanced_code(event)
            wire = write_reply(event, self.config)
            self._process_reply(event)
            return wire
        raise LocalProtocolError(f"a server cannot send {type(event).__name__}")

    def _with_enhanced_code(self, reply: Reply) -> Reply:
        """RFC 2034 §3: with ENHANCEDSTATUSCODES advertised, every reply but the greeting
        and the EHLO/HELO/LHLO replies carries an enhanced code; class.0.0 when the
        application gave none (RFC 3463 §3.1)."""
        if reply.enhanced is not None or "ENHANCEDSTATUSCODES" not in self._facts.extensions:
            return reply
        if reply.code // 100 not in (2, 4, 5):
            return reply
        pending = self._state.pending
        if pending and isinstance(pending[0], (Ehlo, Helo, Lhlo)):
            return reply
        return attrs.evolve(reply, enhanced=f"{reply.code // 100}.0.0")

    def _send_client(self, event: Event) -> list[BytesLike]:
        st = self._state
        if isinstance(event, MessageData):
            return self._send_content(event)
        if isinstance(event, EndOfMessage):
            if not st.allows(event):
                raise LocalProtocolError(f"cannot end a message in state {st.state.value}")
            assert self._data_writer is not None
            wire = self._data_writer.end()
            self._data_writer = None
            st.process_command(event)
            return [wire]
        if not isinstance(event, Command):
            raise LocalProtocolError(f"a client cannot send {type(event).__name__}")
        if st.state is State.GREETING:
            raise LocalProtocolError("wait for the server's greeting (RFC 5321 §3.1)")
        if self._chunk is not None and self._chunk.remaining:
            raise LocalProtocolError(
                f"send the {self._chunk.remaining} octets left of the BDAT chunk first"
            )
        check_to_send(event, st.projected, self._facts)
        if st.pending and not (
            "PIPELINING" in self._facts.extensions and st.pipelining_allows(event)
        ):
            raise LocalProtocolError(
                f"cannot send {event.verb} before the reply to"
                f" {type(st.pending[-1]).__name__} (RFC 2920)"
            )
        utf8 = "SMTPUTF8" in event.params if isinstance(event, MailFrom) else self._utf8
        wire = write_command(
            event, self.config, extensions=self._facts.extensions, utf8_transaction=utf8
        )
        if isinstance(event, Bdat):
            if st.projected is State.RCPT:
                self._content_size = 0
            if event.size:
                self._chunk = _Chunk(remaining=event.size, last=event.last)
            elif event.last:
                self._facts.mail = None
        self._process_command(event)
        return [wire]

    def _send_content(self, event: MessageData) -> list[BytesLike]:
        data = event.data
        chunk = self._chunk
        if chunk is not None:  # BDAT: the octets as they are (RFC 3030 §2)
            if len(data) > chunk.remaining:
                raise LocalProtocolError(
                    f"{len(data)} octets sent where the BDAT chunk has {chunk.remaining} left"
                )
            check_content(data, self._facts, self._content_size + len(data))
            chunk.remaining -= len(data)
            self._content_size += len(data)
            if not chunk.remaining:
                self._chunk = None
                if chunk.last:
                    self._facts.mail = None
            return [data]
        if not self._state.allows(event):
            raise LocalProtocolError(
                f"cannot send message content in state {self._state.state.value}"
            )
        assert self._data_writer is not None
        view = data.tobytes() if isinstance(data, memoryview) else data
        check_content(view, self._facts, self._content_size + len(data))
        wire = self._data_writer.write(view)
        self._content_size += len(data)
        return wire

    # ------------------------------------------------------------- shared bookkeeping

    def _process_command(self, event: Event) -> None:
        facts = self._facts
        if isinstance(event, MailFrom):
            facts.mail = event
            facts.transactions += 1
            facts.recipients = 0
        elif self.our_role is CLIENT:
            # A client knows its transaction by what it sent (replies may lag behind
            # when it pipelines); a server by what it accepted (_process_reply).
            # The transaction ends at the end of its content whatever the reply (after
            # BDAT LAST: once its octets are sent); RSET/EHLO/... end it when accepted.
            if isinstance(event, RcptTo):
                facts.recipients += 1
            elif isinstance(event, EndOfMessage):
                facts.mail = None
        elif isinstance(event, JUNK_COMMANDS):
            facts.junk_commands += 1  # Config.max_junk_commands
        self._state.process_command(event)

    def _process_reply(self, reply: Reply) -> None:
        st = self._state
        entry = st.pending[0] if st.pending else None
        refused = isinstance(entry, InvalidCommand)
        command = entry.command if isinstance(entry, InvalidCommand) and entry.command else entry
        in_auth = st.state is State.AUTH
        answered = st.process_reply(reply)
        self._last_answered = answered
        facts = self._facts
        # An exchange that ran (not one the rules refused up front) and failed counts
        # towards max_auth_failures; so does a malformed response inside it.
        if in_auth or (isinstance(command, Auth) and not refused):
            if reply.is_positive:
                facts.authenticated = True
            elif reply.code >= 400:
                facts.auth_failures += 1
        if reply.is_positive and isinstance(command, (Ehlo, Lhlo)):
            facts.extensions = Extensions.from_ehlo_lines(reply.lines[1:])
        elif reply.is_positive and isinstance(command, Helo):
            facts.extensions = Extensions()
        if self.our_role is SERVER:
            facts.recipients = st.recipients
            if reply.is_positive and command is not None and ends_message(command):
                # a message was accepted: the session is useful
                facts.junk_commands = facts.invalid_commands = 0
            if st.state not in (State.MAIL, State.RCPT, State.DATA, State.BDAT):
                facts.mail = None
        elif (
            reply.is_positive
            and isinstance(command, (Rset, Ehlo, Helo, Lhlo, StartTLS))
            and not any(isinstance(p, MailFrom) for p in st.pending)
        ):
            facts.mail = None  # a reset took effect, and no newer MAIL was sent since
        if st.state is State.DATA and isinstance(command, Data):
            self._content_size = 0
            if self.our_role is SERVER:
                self._data_reader = DataReader(self.config, size_limit=facts.size_limit)
            else:
                self._data_writer = DataWriter(self.config)

    # ---------------------------------------------------------------------- helpers

    def ehlo_reply(self, greeting: str | None = None) -> Reply:
        """The 250 reply to EHLO/LHLO advertising ``config.extensions`` (RFC 5321
        §4.1.1.1): STARTTLS is left out once TLS is active (RFC 3207 §4.2), REQUIRETLS
        and the -PLUS SASL mechanisms until it is (RFC 8689 §4, RFC 5802 §6), and a bare
        SIZE gets ``config.max_message_size``."""
        config = self.config
        first = config.hostname if greeting is None else f"{config.hostname} {greeting}"
        lines = [first]
        for keyword, params in config.extensions.items():
            if keyword == "STARTTLS" and self._facts.tls:
                continue
            if keyword == "AUTH":
                if not auth_offered(self._facts):
                    continue  # RFC 4954 §6 / Config.allow_plaintext_auth
                bound = [m for m in params if binds_channel(m)]
                if bound and not self._facts.tls:  # RFC 5802 §6: -PLUS needs a TLS channel
                    params = tuple(m for m in params if m not in bound)
                    if not params:
                        continue
            if keyword == "REQUIRETLS" and not self._facts.tls:
                continue
            if keyword == "SIZE" and not params and config.max_message_size is not None:
                params = (str(config.max_message_size),)
            lines.append(" ".join((keyword, *params)))
        return Reply(code=250, lines=tuple(lines))

    def default_reply(self, event: Event) -> Reply:
        """An RFC-correct reply for a received command: what a server that accepts
        everything says. Invalid commands and messages get their reply_hint."""
        if isinstance(event, (InvalidCommand, InvalidMessage)):
            return event.reply_hint
        return default_reply_for(event, self.config.hostname, self.ehlo_reply)
