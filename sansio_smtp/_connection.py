# Connection: one side of an SMTP session. Owns the receive buffer, picks the reader for
# what the peer sends next from READERS[(role, state)], asks _rules.check_command about
# every command (a refusal becomes InvalidCommand on a server, LocalProtocolError on a
# client), hands every change of the session to the state machine (_state.ConnectionState)
# and translates errors (LocalProtocolError inside next_event becomes RemoteProtocolError).
# What differs by role (readers, sender, what a 354 opens) is chosen once, in __init__;
# the timeout property asks _state's rule of its role.
#
# Contract (h11's): receive_data() only buffers; next_event() returns one event per call,
# NEED_DATA or PAUSED; send() returns the exact bytes to write and changes state. send()
# is atomic: it validates before it changes anything, so a refused send (bad argument, out
# of sequence) leaves the connection as it was and usable - nothing was written. (h11 moves
# to ERROR on any send error; an SMTP client refused a malformed address should still be
# able to QUIT politely.) Any other failure moves the connection to State.ERROR. check()
# runs the same validation and stops before the changes.
#
# STARTTLS (RFC 3207): after the 220 the state is TLS and both sides pause. Bytes that
# arrived after the STARTTLS line (server) or after the 220 (client) are plaintext an
# attacker may have injected (CVE-2011-0411): next_event() and tls_established() raise
# RemoteProtocolError instead of ever carrying them over.
from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

from ._display import PrettyPrinter, html_of, pretty_of
from ._errors import LocalProtocolError, PlaintextAfterStartTLS, RemoteProtocolError
from ._events import (
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
)
from ._extensions import Extensions
from ._mechanisms import binds_channel
from ._readers import (
    OVERLONG_LINE_KEPT,
    ChunkReader,
    CommandRejected,
    Context,
    DataReader,
    ReplyReader,
    is_auth_line,
    line_too_long,
    parse_auth_response,
    parse_command,
    parse_common,
    split_command_line,
)
from ._receivebuffer import ReceiveBuffer
from ._redact import redact_client_line
from ._replies import DEFAULT_REPLIES, default_reply_for
from ._rules import SYNC_ERROR, auth_offered, check_command, check_content, too_many_errors
from ._state import (
    GROUP_ENDER_TYPES,
    ConnectionState,
    LmtpDelivery,
    Role,
    State,
    Timeout,
    client_timeout,
    lmtp_delivery_reply,
    server_timeout,
)
from ._util import remember
from ._writers import (
    PREBUILT_REPLIES,
    WRITERS,
    ChunkWriter,
    DataWriter,
    write_command,
    write_reply,
)
from .config import MAX_AUTH_LINE, Config

if TYPE_CHECKING:
    from ._recorder import Recorder as Transcript  # what a Transcript offers Connection

__all__ = ["NEED_DATA", "PAUSED", "READERS", "Connection", "Sentinel"]


class Sentinel(enum.Enum):
    """What next_event returns when it has no event."""

    NEED_DATA = "NEED_DATA"  # feed more bytes with receive_data()
    PAUSED = "PAUSED"  # stop reading: a server owes a reply, or a TLS handshake is due


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED

CLIENT = Role.CLIENT
SERVER = Role.SERVER

#: The command types a client can write (WRITERS): _send_client knows them by type.
_WRITTEN_TYPES = frozenset(WRITERS)
#: the empty Params of a MAIL without parameters (the events' default, shared)
_NO_PARAMS = MailFrom(reverse_path=None).params

# The hot paths compare with module-level names: in Python 3.11 ``State.AUTH`` is a
# descriptor call on the enum class, several times the cost of a global load.
_GREETING = State.GREETING
_DATA = State.DATA
_AUTH = State.AUTH
_ERROR = State.ERROR
_CLOSED = State.CLOSED
_TLS = State.TLS


class Connection:
    """One side of an SMTP session, without I/O.

    ``tls=True`` starts with TLS already active (implicit TLS, RFC 8314).
    ``transcript``: a Transcript that records the bytes and events each way.

    >>> server = Connection(SERVER)
    >>> server.send(Greeting(lines="mx.example.org ESMTP"))
    b'220 mx.example.org ESMTP\\r\\n'
    """

    #: the client's reply reader (a server has none: it reads commands)
    _reply_reader: ReplyReader

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
        self._state = ConnectionState(lmtp=self.config.lmtp, tls=tls, optimistic=our_role is CLIENT)
        # What differs by role is chosen here, once: how to read what the peer sends in
        # each state, how to send, what a 354 opens.
        role = _ROLES[our_role]
        self._readers = role.readers
        self._sender = role.send
        self._open_content = role.open_content
        self._buf = ReceiveBuffer()
        # A command line no longer than this is within every line limit (RFC 5321
        # §4.5.3.1.4, RFC 4954 §4), whether or not it is an AUTH line.
        self._short_line = min(self.config.max_command_line, MAX_AUTH_LINE)
        self._peer_closed = False
        if our_role is CLIENT:  # a server reads no replies: it has none (nor its memory)
            self._reply_reader = ReplyReader(self.config)
        self._data_reader: DataReader | None = None
        self._data_writer: DataWriter | None = None
        # the BDAT chunk being read (server) or sent (client), RFC 3030 §2
        self._chunk_reader: ChunkReader | None = None
        self._chunk_writer: ChunkWriter | None = None
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
    def awaiting_replies(self) -> int:
        """``len(pending)``, without building the tuple: how many replies are awaited."""
        return len(self._state.pending)

    @property
    def extensions(self) -> Extensions:
        """The EHLO extensions in effect: what the server advertised in its last positive
        EHLO/LHLO reply (empty after HELO, before EHLO, and after STARTTLS)."""
        return self._state.extensions

    @property
    def tls_active(self) -> bool:
        return self._state.tls

    @property
    def authenticated(self) -> bool:
        """AUTH succeeded in this session (RFC 4954)."""
        return self._state.authenticated

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
        return self._state.size_limit(self.config.max_message_size)

    @property
    def timeout(self) -> Timeout | None:
        """What the connection waits for now and how long an adapter should wait for it
        (RFC 5321 §4.5.3.2), or None."""
        # (_state's rules, asked here by role: adapters ask before every wait, and a role
        # table's function would be one call more)
        st = self._state
        if self.our_role is CLIENT:
            return client_timeout(st.state, st.pending)
        return server_timeout(st.state, owes_reply=bool(st.pending) and self._chunk_reader is None)

    @property
    def in_chunk(self) -> bool:
        """The octets of a BDAT chunk are being read (server; a refused chunk's too, as
        they are skipped) or sent (client): RFC 3030 §2."""
        return self._chunk_reader is not None or self._chunk_writer is not None

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not consumed, and whether the peer has closed."""
        return bytes(self._buf), self._peer_closed

    @property
    def buffered(self) -> int:
        """How many octets are received and not consumed (``len(trailing_data[0])``,
        without copying them)."""
        return len(self._buf.raw)

    @property
    def peer_closed(self) -> bool:
        """The peer has closed the connection (``receive_data(b"")``; trailing_data[1])."""
        return self._peer_closed

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
            if self._state.state is not _CLOSED:  # after QUIT/421 nothing is read
                self._buf.raw += data  # (the bytearray itself: no __iadd__ call)
        else:
            self._peer_closed = True
        if self._transcript is not None:
            self._transcript.record_received(self.our_role, data)

    def next_event(self) -> Event | Sentinel:
        """The next event from the peer, NEED_DATA, or PAUSED."""
        st = self._state
        if st.state is _ERROR:
            raise RemoteProtocolError("the connection is in the ERROR state")
        try:
            # the reader of what the peer sends in this state (READERS)
            event = self._readers[st.state](self)
            if event is NEED_DATA and self._peer_closed:
                st.close()
                event = ConnectionClosed()
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

    # Readers, one per (role, state): READERS below.

    def _read_closed(self) -> Event | Sentinel:
        return ConnectionClosed()

    def _read_tls(self) -> Event | Sentinel:
        if self._buf:
            raise PlaintextAfterStartTLS
        return PAUSED

    def _read_nothing(self) -> Event | Sentinel:
        return PAUSED  # a server greets first (RFC 5321 §3.1)

    def _read_content(self) -> Event | Sentinel:
        """Server, after 354: message content until <CRLF>.<CRLF> (RFC 5321 §4.1.1.4)."""
        st = self._state
        if st.pending:
            return PAUSED
        assert self._data_reader is not None
        event = self._data_reader.read(self._buf)
        if event is None:
            return NEED_DATA
        if type(event) is MessageData:  # the common case: one test
            return event
        self._data_reader = None
        # Either way the end of the content awaits the transaction's reply.
        if isinstance(event, InvalidMessage):
            st.refuse_content(event.reply_hint)
            st.process_command(EndOfMessage())
        else:
            st.process_command(event)  # the EndOfMessage itself
        return event

    def _read_command(self) -> Event | Sentinel:
        """Server: the next command line, once the last one is answered.

        The common line (within the limits, CRLF-terminated, one of parse_common's forms)
        goes from the buffer to its event here, in one call; the rest takes the general
        steps of _other_line. (Within an AUTH exchange: _read_auth_response.)"""
        st = self._state
        if self._chunk_reader is not None:
            return self._read_chunk(self._chunk_reader)
        if st.pending:
            return PAUSED
        raw = self._buf.maybe_extract_line()
        if raw is None:
            return self._partial_line()
        if len(raw) > self._short_line or raw[-2:] != b"\r\n" or self._discarding is not None:
            return self._other_line(raw)
        line = raw[:-2]  # within every limit: split_command_line would refuse nothing
        try:
            command = parse_common(line)
        except CommandRejected as exc:
            event: Event = self._refused(line, exc.reply)
        else:
            if command is None:
                return self._other_line(raw)
            reply = self._refusal(command)
            event = self._refused(line, reply, command) if reply else command
        st.process_command(event)
        return event

    def _read_auth_response(self) -> Event | Sentinel:
        """Server, within an AUTH exchange (RFC 4954 §4): the client's response line."""
        if self._state.pending:
            return PAUSED
        raw = self._buf.maybe_extract_line()
        if raw is None:
            return self._partial_line()
        return self._other_line(raw)

    def _partial_line(self) -> Event | Sentinel:
        """No complete line is buffered: drop an over-long one as it arrives (memory
        stays bounded); it is refused once its end arrives, so the reply lines up."""
        st = self._state
        auth = is_auth_line(self._discarding or self._buf.raw, in_auth=st.state is _AUTH)
        if len(self._buf) > (MAX_AUTH_LINE if auth else self.config.max_command_line):
            self._discarding = self._discarding or bytes(self._buf.raw[:OVERLONG_LINE_KEPT])
            self._buf.clear()
        return NEED_DATA

    def _other_line(self, raw: bytes) -> Event | Sentinel:
        """Any command line (_read_command takes the common ones first): the line limits
        and line-ending policy, an AUTH response, parse_command."""
        st = self._state
        in_auth = st.state is _AUTH
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
                    st.process_command(event)
                    return event
                command = parse_command(
                    line, Context(st.extensions, st.utf8_transaction, lmtp=self.config.lmtp)
                )
            except CommandRejected as exc:
                rejected = exc
        if command is not None:
            reply = self._refusal(command)
            if type(command) is Bdat:
                assert isinstance(command, Bdat)
                return self._start_chunk(command, line, reply)
            event = self._refused(line, reply, command) if reply else command
        else:
            assert rejected is not None
            if in_auth:
                line = redact_client_line(line, in_auth=True)
            event = self._refused(line, rejected.reply)
        st.process_command(event)
        return event

    def _refusal(self, command: Command) -> Reply | None:
        """The reply refusing a received command (the rules, then RFC 2920's
        synchronization, which wins), or None."""
        refusal = check_command(command, self._state, self.config, sending=False)
        reply = None if refusal is None else refusal.reply
        # RFC 2920 §3.1: a client may send the next command before this one's reply only
        # when PIPELINING was advertised and this command does not end a group. (With
        # nothing buffered after it and no violation before, there is nothing to check.)
        kind = type(command)
        if (self._buf.raw or self._sync_violation) and kind is not Bdat and kind is not Quit:
            # (BDAT is followed by its chunk; anything after QUIT is moot)
            if self._buf.raw and (not self._state.pipelining or kind in GROUP_ENDER_TYPES):
                self.improper_pipelining = True
                self._sync_violation = True
            if self._sync_violation and self.config.reject_improper_pipelining:
                return SYNC_ERROR
        return reply

    def _refused(self, line: bytes, reply: Reply, command: Command | None = None) -> InvalidCommand:
        """The event for a refused command line; past Config.max_invalid_commands its
        reply closes the session instead."""
        st = self._state
        reply = too_many_errors(st, self.config) or reply
        st.count_invalid()
        return InvalidCommand(line=line, reply_hint=reply, command=command)

    def _start_chunk(self, command: Bdat, line: bytes, refusal: Reply | None) -> Event | Sentinel:
        """RFC 3030 §2: the chunk's octets follow the BDAT line whatever the reply will be;
        a refused BDAT still has them skipped before the refusal is emitted."""
        st = self._state
        if refusal is not None:
            held = self._refused(line, refusal, command)
            self._chunk_reader = ChunkReader(
                self.config, command.size, last=command.last, held=held
            )
            return self._read_chunk(self._chunk_reader)
        st.process_command(command)
        self._chunk_reader = ChunkReader(
            self.config,
            command.size,
            last=command.last,
            size_limit=st.size_limit(self.config.max_message_size),
            content_size=st.content_size,
        )
        return command

    def _read_chunk(self, reader: ChunkReader) -> Event | Sentinel:
        st = self._state
        event = reader.read(self._buf)
        if not reader.done:
            if event is None:
                return NEED_DATA
            assert isinstance(event, MessageData)
            st.process_content(len(event.data))
            return event
        self._chunk_reader = None
        if event is None:
            return PAUSED  # the chunk awaits its reply
        held = reader.held
        if held is not None and event is held:
            st.process_command(held)
        elif isinstance(event, InvalidMessage):
            st.refuse_content(event.reply_hint)
        assert event is not None
        return event

    def _read_greeting(self) -> Event | Sentinel:
        """Client: the server's greeting (RFC 5321 §3.1)."""
        got = self._reply_reader.read(self._buf)
        if got is None:
            return NEED_DATA
        code, texts = got
        if code not in (220, 421, 554):
            raise LocalProtocolError(f"{code} is not a greeting (RFC 5321 §4.3.2)")
        greeting = Greeting(code=code, lines=tuple(texts))
        self._state.process_greeting(code)
        return greeting

    def _read_reply(self) -> Event | Sentinel:
        """Client: the next reply."""
        reply = self._reply_reader.read_reply(self._buf)
        if reply is None:
            return NEED_DATA
        # the reply's bookkeeping (as a server's _send_server does for the replies it sends)
        st = self._state
        answered = st.process_reply(reply)
        self._last_answered = answered
        if st.state is _DATA and type(answered) is Data:
            self._open_content(self)
        return reply

    # ------------------------------------------------------------------------ sending

    def send(self, event: Event) -> bytes:
        """The bytes that put ``event`` on the wire; the state moves on as if they were
        written (call send_failed() if they could not be)."""
        # send_with_data_passthrough's steps, inline: this runs once per command or reply
        state = self._state.state
        # the states in which nothing can be sent (_check_usable says why), by identity:
        # an Enum member's hash is a Python call
        if state is _ERROR or state is _CLOSED or state is _TLS:
            self._check_usable()
        sent = self._sender(self, event, True)
        if self._transcript is not None:
            self._transcript.record_sent(self.our_role, event, sent)
        return b"".join(sent)  # (a list of one bytes object: that object, not a copy)

    def send_with_data_passthrough(self, event: Event) -> list[BytesLike]:
        """Like send(), but a MessageData whose content needs no change comes back as the
        caller's own object, so large messages are not copied."""
        state = self._state.state
        if state is _ERROR or state is _CLOSED or state is _TLS:  # (as in send())
            self._check_usable()
        sent = self._sender(self, event, True)
        if self._transcript is not None:
            self._transcript.record_sent(self.our_role, event, sent)
        return sent

    def check(self, event: Event) -> LocalProtocolError | None:
        """The error send(``event``) would raise now, or None when it would be sent; the
        connection does not change. A client asks before it commits to a command (RFC 5321
        §4.1.4 sequence, extensions advertised, SIZE, LIMITS, the TLS and AUTH policy)."""
        try:
            self._check_usable()
            self._sender(self, event, False)
        except LocalProtocolError as exc:
            return exc
        return None

    def _check_usable(self) -> None:
        state = self._state.state
        if state is _ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if state is _CLOSED:
            raise LocalProtocolError("the connection is closed")
        if state is _TLS:
            raise LocalProtocolError("finish the TLS handshake first (tls_established())")

    def send_failed(self) -> None:
        """The bytes of the last send() could not be written: the session is lost."""
        self._state.error()

    def tls_established(self) -> None:
        """The adapter finished the TLS handshake that STARTTLS's 220 started.

        RFC 3207 §4.2: both sides forget what they learned before TLS: the session starts
        over from the greeting state CONNECTED, and the client must send EHLO again."""
        st = self._state
        if st.state is _TLS and self._buf:
            st.error()
            raise PlaintextAfterStartTLS
        st.tls_established()

    # Senders, one per role: each validates everything before it changes anything, and
    # with ``commit`` false (check()) stops there.

    def _send_server(self, event: Event, commit: bool) -> list[BytesLike]:
        st = self._state
        if type(event) is Reply:  # (Reply and Greeting are final: the type is the test)
            if st.state is _GREETING:
                raise LocalProtocolError("send the Greeting first (RFC 5321 §3.1)")
            if event.code != 421:
                if not st.pending:
                    raise LocalProtocolError(f"reply {event.code} answers no command")
                if self._chunk_reader is not None:
                    raise LocalProtocolError("read the whole BDAT chunk before replying")
            if event.enhanced is None and st.enhanced_status_codes:
                event = self._with_enhanced_code(event)
            # the default replies' bytes were written once, at import
            wire = PREBUILT_REPLIES.get(id(event)) or self._write_reply(event)
            if commit:
                # the reply's bookkeeping (as the client's _read_reply does for the replies
                # it reads); process_reply raises, changing nothing, for a misfit
                answered = st.process_reply(event)
                self._last_answered = answered
                if st.state is _DATA and type(answered) is Data:
                    self._open_content(self)
            else:
                st.check_reply(event)
            return [wire]
        if type(event) is Greeting:
            if st.state is not _GREETING:
                raise LocalProtocolError("the greeting was already sent")
            wire = self._write_reply(event)
            if commit:
                st.process_greeting(event.code)
                if self._buf:  # the client spoke first
                    self.improper_pipelining = self._sync_violation = True
            return [wire]
        raise LocalProtocolError(f"a server cannot send {type(event).__name__}")

    def _write_reply(self, reply: Reply | Greeting) -> bytes:
        """write_reply(), once for each reply or greeting object a server sends again and
        again (_WIRES): the EHLO, HELO and QUIT replies and the greeting are shared by a
        server's sessions, so each session's are the same objects."""
        max_line = self.config.max_reply_line
        own = _WIRES.get(id(reply))
        if own is not None and own[0] is reply and own[1] == max_line:
            return own[2]
        wire = write_reply(reply, self.config)  # raises for a reply that cannot be sent
        remember(_WIRES, id(reply), (reply, max_line, wire), _WIRES_MAX)
        return wire

    def _with_enhanced_code(self, reply: Reply) -> Reply:
        """RFC 2034 §3: with ENHANCEDSTATUSCODES advertised, every reply but the greeting
        and the EHLO/HELO/LHLO replies carries an enhanced code; class.0.0 when the
        application gave none (RFC 3463 §3.1)."""
        if reply.enhanced is not None or not self._state.enhanced_status_codes:
            return reply
        if reply.code // 100 not in (2, 4, 5):
            return reply
        pending = self._state.pending
        if pending and isinstance(pending[0], (Ehlo, Helo, Lhlo)):
            return reply
        return attrs.evolve(reply, enhanced=f"{reply.code // 100}.0.0")

    def _send_client(self, event: Event, commit: bool) -> list[BytesLike]:
        st = self._state
        kind = type(event)
        # A command that has a writer (the common case) is known by one set lookup; the
        # rest are asked as before: content, its end, anything else.
        if kind not in _WRITTEN_TYPES:
            if isinstance(event, MessageData):
                return self._send_content(event, commit)
            if isinstance(event, EndOfMessage):
                if not st.allows(event):
                    raise LocalProtocolError(f"cannot end a message in state {st.state.value}")
                assert self._data_writer is not None
                wire = self._data_writer.end()
                if commit:
                    self._data_writer = None
                    st.process_command(event)
                return [wire]
            if not isinstance(event, Command):
                raise LocalProtocolError(f"a client cannot send {type(event).__name__}")
        # a Command either way: its type is one of WRITERS' (no isinstance call for that)
        command: Command = event  # type: ignore[assignment]
        if st.state is _GREETING:
            raise LocalProtocolError("wait for the server's greeting (RFC 5321 §3.1)")
        chunk = self._chunk_writer
        if chunk is not None and chunk.remaining:
            raise LocalProtocolError(
                f"send the {chunk.remaining} octets left of the BDAT chunk first"
            )
        refusal = check_command(command, st, self.config, sending=True)
        if refusal is not None:
            raise refusal.error()
        # (only MAIL and RCPT write an address: for the rest the flag is not asked)
        if type(event) is MailFrom:
            params = event.params
            utf8 = params is not _NO_PARAMS and "SMTPUTF8" in params
        else:
            utf8 = kind is RcptTo and st.utf8_transaction
        wire = write_command(command, self.config, extensions=st.extensions, utf8_transaction=utf8)
        if commit:
            if type(event) is Bdat and event.size:
                self._chunk_writer = ChunkWriter(event.size, last=event.last)
            st.process_command(event)
        return [wire]

    def _send_content(self, event: MessageData, commit: bool) -> list[BytesLike]:
        data = event.data
        st = self._state
        chunk = self._chunk_writer
        if chunk is not None:  # BDAT: the octets as they are (RFC 3030 §2)
            chunk.check(data)
            check_content(data, st, self.config, st.content_size + len(data))
            if commit:
                chunk.remaining -= len(data)
                done = not chunk.remaining
                if done:
                    self._chunk_writer = None
                st.process_content(len(data), ends_message=done and chunk.last)
            return [data]
        if not st.allows(event):
            raise LocalProtocolError(f"cannot send message content in state {st.state.value}")
        writer = self._data_writer
        assert writer is not None
        view = data.tobytes() if isinstance(data, memoryview) else data
        check_content(view, st, self.config, st.content_size + len(data))
        if not commit:
            writer = copy.copy(writer)  # write() changes it
        wire = writer.write(view)
        if commit:
            st.process_content(len(data))
        return wire

    # ---------------------------------------------------------------------- helpers

    def ehlo_reply(self, greeting: str | None = None) -> Reply:
        """The 250 reply to EHLO/LHLO advertising ``config.extensions`` (RFC 5321
        §4.1.1.1): STARTTLS is left out once TLS is active (RFC 3207 §4.2), REQUIRETLS
        and the -PLUS SASL mechanisms until it is (RFC 8689 §4, RFC 5802 §6), and a bare
        SIZE gets ``config.max_message_size``."""
        # It depends on the Config, TLS and the greeting only: built once for each
        # (_EHLO_REPLIES), not once per session.
        config, tls = self.config, self._state.tls
        key = (id(config), tls, greeting)
        own = _EHLO_REPLIES.get(key)
        if own is not None and own.config is config:
            return own.reply
        own = _EhloReply(config, self._build_ehlo_reply(greeting))
        return remember(_EHLO_REPLIES, key, own, _EHLO_MAX).reply

    def _build_ehlo_reply(self, greeting: str | None) -> Reply:
        config = self.config
        first = config.hostname if greeting is None else f"{config.hostname} {greeting}"
        lines = [first]
        for keyword, params in config.extensions.items():
            if keyword == "STARTTLS" and self._state.tls:
                continue
            if keyword == "AUTH":
                if not auth_offered(config, tls=self._state.tls):
                    continue  # RFC 4954 §6 / Config.allow_plaintext_auth
                bound = [m for m in params if binds_channel(m)]
                if bound and not self._state.tls:  # RFC 5802 §6: -PLUS needs a TLS channel
                    params = tuple(m for m in params if m not in bound)
                    if not params:
                        continue
            if keyword == "REQUIRETLS" and not self._state.tls:
                continue
            if keyword == "SIZE" and not params and config.max_message_size is not None:
                params = (str(config.max_message_size),)
            lines.append(" ".join((keyword, *params)))
        return Reply(code=250, lines=tuple(lines))

    def default_reply(self, event: Event) -> Reply:
        """An RFC-correct reply for a received command: what a server that accepts
        everything says. Invalid commands and messages get their reply_hint."""
        reply = DEFAULT_REPLIES.get(type(event))  # the common case: one lookup
        if reply is not None:
            return reply
        if isinstance(event, (InvalidCommand, InvalidMessage)):
            return event.reply_hint
        if type(event) is LmtpDelivery:
            assert isinstance(event, LmtpDelivery)
            return lmtp_delivery_reply(event)
        return default_reply_for(event, self.config.hostname, self.ehlo_reply)


# ------------------------------------------------------------------------ per role


class _EhloReply:
    """An EHLO reply ehlo_reply() built for one Config."""

    __slots__ = ("config", "reply")

    def __init__(self, config: Config, reply: Reply) -> None:
        self.config = config
        self.reply = reply


#: (id(config), TLS active, greeting) -> the EHLO reply built for them. A server's
#: connections share its Config, so most sessions get the same reply: it is built, and
#: written (_WIRES), once. Entries hold their Config, so an id is never stale while it is
#: here (and is checked against it). Bounded: cleared when full.
_EHLO_REPLIES: dict[tuple[int, bool, str | None], _EhloReply] = {}
_EHLO_MAX = 32
#: id(reply or greeting) -> (it, the max_reply_line it was written for, its bytes): what a
#: server sent lately, other than the default replies (PREBUILT_REPLIES). Looked up by
#: identity, as hashing a Reply costs more than writing it; an entry holds its object, so
#: an id here is never stale. The replies a server shares between sessions (EHLO, HELO,
#: QUIT, the greeting) are written once; one made afresh costs a dict entry until the
#: table is full and cleared (bounded).
_WIRES: dict[int, tuple[Reply | Greeting, int, bytes]] = {}
_WIRES_MAX = 64


def _server_open_content(conn: Connection) -> None:
    conn._data_reader = DataReader(
        conn.config, size_limit=conn._state.size_limit(conn.config.max_message_size)
    )


def _client_open_content(conn: Connection) -> None:
    conn._data_writer = DataWriter(conn.config)


_Reader = Callable[[Connection], "Event | Sentinel"]

#: (role, state) -> the reader of what the peer sends in that state (as h11's READERS).
READERS: Mapping[tuple[Role, State], _Reader] = {
    **{(role, State.CLOSED): Connection._read_closed for role in Role},
    **{(role, State.TLS): Connection._read_tls for role in Role},
    **{(role, State.ERROR): Connection._read_closed for role in Role},
    (CLIENT, State.GREETING): Connection._read_greeting,
    **{
        (CLIENT, state): Connection._read_reply
        for state in State
        if state not in (State.GREETING, State.TLS, State.CLOSED, State.ERROR)
    },
    (SERVER, State.GREETING): Connection._read_nothing,
    (SERVER, State.DATA): Connection._read_content,
    (SERVER, State.AUTH): Connection._read_auth_response,
    **{
        (SERVER, state): Connection._read_command
        for state in State
        if state
        not in (State.GREETING, State.DATA, State.TLS, State.CLOSED, State.ERROR, State.AUTH)
    },
}


@attrs.frozen
class _RoleParts:
    readers: Mapping[State, _Reader]
    send: Callable[[Connection, Event, bool], list[BytesLike]]
    open_content: Callable[[Connection], None]


def _readers_of(role: Role) -> Mapping[State, _Reader]:
    return {state: READERS[(role, state)] for state in State}


_ROLES: Mapping[Role, _RoleParts] = {
    CLIENT: _RoleParts(
        readers=_readers_of(CLIENT),
        send=Connection._send_client,
        open_content=_client_open_content,
    ),
    SERVER: _RoleParts(
        readers=_readers_of(SERVER),
        send=Connection._send_server,
        open_content=_server_open_content,
    ),
}
