# Connection: one side of an SMTP session. Owns the receive buffer, picks the reader for
# what the peer sends next, runs events through the shared state table, and translates
# errors (LocalProtocolError inside next_event becomes RemoteProtocolError).
#
# Contract (h11's): receive_data() only buffers; next_event() returns one event per call,
# NEED_DATA or PAUSED; send() returns the exact bytes to write and changes state. send()
# is atomic: it validates before it changes anything, so a refused send (bad argument, out
# of sequence) leaves the connection as it was and usable - nothing was written. (h11 moves
# to ERROR on any send error; an SMTP client refused a malformed address should still be
# able to QUIT politely.) Any other failure moves the connection to State.ERROR.
from __future__ import annotations

import enum

from ._events import (
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
    MailFrom,
    MessageData,
    RcptTo,
    Reply,
)
from ._extensions import Extensions
from ._readers import (
    CommandRejected,
    Context,
    DataReader,
    ReplyReader,
    make_reply,
    parse_command,
    split_command_line,
)
from ._receivebuffer import ReceiveBuffer
from ._replies import default_reply_for
from ._state import TRANSITIONS, ConnectionState, Role, State, out_of_sequence_reply
from ._util import LocalProtocolError, RemoteProtocolError
from ._writers import DataWriter, write_command, write_reply
from .config import Config

__all__ = ["NEED_DATA", "PAUSED", "Connection", "Sentinel"]


class Sentinel(enum.Enum):
    """What next_event returns when it has no event."""

    NEED_DATA = "NEED_DATA"  # feed more bytes with receive_data()
    PAUSED = "PAUSED"  # waiting for us: a server must answer the last command first


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED

CLIENT = Role.CLIENT
SERVER = Role.SERVER


class Connection:
    """One side of an SMTP session, without I/O.

    >>> server = Connection(SERVER)
    >>> server.send(Greeting(lines="mx.example.org ESMTP"))
    b'220 mx.example.org ESMTP\\r\\n'
    """

    def __init__(self, our_role: Role, config: Config | None = None) -> None:
        if not isinstance(our_role, Role):
            raise TypeError(f"our_role must be CLIENT or SERVER, not {our_role!r}")
        self.our_role = our_role
        self.their_role = SERVER if our_role is CLIENT else CLIENT
        self.config = config if config is not None else Config()
        self._state = ConnectionState()
        self._buf = ReceiveBuffer()
        self._peer_closed = False
        self._reply_reader = ReplyReader(self.config)
        self._data_reader: DataReader | None = None
        self._data_writer: DataWriter | None = None
        self._extensions = Extensions()
        self._utf8_transaction = False
        self._last_answered: Event | None = None
        self._discarding: bytes | None = None  # start of an over-long line being dropped

    # ------------------------------------------------------------------ introspection

    @property
    def state(self) -> State:
        """The session state, as confirmed by replies."""
        return self._state.state

    @property
    def pending(self) -> tuple[Event, ...]:
        """Commands sent (client) or received (server) that await a reply, oldest first."""
        return tuple(self._state.pending)

    @property
    def extensions(self) -> Extensions:
        """The EHLO extensions in effect: what the server advertised in its last positive
        EHLO reply (empty after HELO or before EHLO). The same on both sides."""
        return self._extensions

    @property
    def last_answered(self) -> Event | None:
        """The command the most recent reply answered (sent or received)."""
        return self._last_answered

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not consumed, and whether the peer has closed."""
        return bytes(self._buf), self._peer_closed

    def __repr__(self) -> str:
        return (
            f"<Connection {self.our_role.value} state={self.state.value}"
            f" pending={len(self._state.pending)}>"
        )

    # ---------------------------------------------------------------------- receiving

    def receive_data(self, data: BytesLike) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed the connection."""
        if data:
            if self._peer_closed:
                raise RuntimeError("received data after the peer closed the connection")
            self._buf += data
        else:
            self._peer_closed = True

    def next_event(self) -> Event | Sentinel:
        """The next event from the peer, NEED_DATA, or PAUSED."""
        if self._state.state is State.ERROR:
            raise RemoteProtocolError("the connection is in the ERROR state")
        try:
            event = self._extract_event()
        except LocalProtocolError as exc:
            self._state.error()
            exc._reraise_as_remote_protocol_error()
        except Exception:  # pragma: no cover - a bug; keep the state honest
            self._state.error()
            raise
        return event

    def _extract_event(self) -> Event | Sentinel:
        if self._state.state is State.CLOSED:
            return ConnectionClosed()
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
        if st.state is State.GREETING or st.pending:
            return PAUSED
        if st.state is State.DATA:
            assert self._data_reader is not None
            event = self._data_reader.read(self._buf)
            if event is None:
                return NEED_DATA
            if isinstance(event, (EndOfMessage, InvalidMessage)):
                self._data_reader = None
                # Either way the end of the content awaits the transaction's reply.
                st.process_command(EndOfMessage())
            return event
        raw = self._buf.maybe_extract_line()
        if raw is None:
            if len(self._buf) > self.config.max_command_line:
                return self._discard_long_line()
            return NEED_DATA
        return self._server_command(raw)

    def _discard_long_line(self) -> Event | Sentinel:
        # A line over the limit is dropped as it arrives (memory stays bounded); the
        # rejection is emitted once its end arrives, so the reply lines up with it.
        self._discarding = bytes(self._buf.raw[:64])
        self._buf.clear()
        return NEED_DATA

    def _server_command(self, raw: bytes) -> Event:
        discarded = self._discarding
        line, rejected = split_command_line(raw, self.config)
        if discarded is not None:
            self._discarding = None
            line = discarded
            rejected = CommandRejected(Reply(code=500, lines="Line too long", enhanced="5.5.2"))
        event: Event
        if rejected is None:
            try:
                command = parse_command(line, Context(self._extensions, self._utf8_transaction))
                event = self._check_sequence(command, line)
            except CommandRejected as exc:
                rejected = exc
        if rejected is not None:
            event = InvalidCommand(line=line, reply_hint=rejected.reply)
        self._process_command(event)
        return event

    def _check_sequence(self, command: Command, line: bytes) -> Event:
        st = self._state
        if type(command) not in TRANSITIONS[st.state]:
            return InvalidCommand(line=line, reply_hint=out_of_sequence_reply(st.state, command))
        if isinstance(command, RcptTo) and st.recipients >= self.config.max_recipients:
            # RFC 5321 §4.5.3.1.10: "452 too many recipients"
            hint = Reply(code=452, lines="Too many recipients", enhanced="4.5.3")
            return InvalidCommand(line=line, reply_hint=hint)
        return command

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
        if self._state.state is State.ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if self._state.state is State.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if self.our_role is SERVER:
            return [self._send_server(event)]
        return self._send_client(event)

    def send_failed(self) -> None:
        """The bytes of the last send() could not be written: the session is lost."""
        self._state.error()

    def _send_server(self, event: Event) -> bytes:
        st = self._state
        if isinstance(event, Greeting):
            if st.state is not State.GREETING:
                raise LocalProtocolError("the greeting was already sent")
            wire = write_reply(event, self.config)
            st.process_greeting(event.code)
            return wire
        if isinstance(event, Reply):
            if st.state is State.GREETING:
                raise LocalProtocolError("send the Greeting first (RFC 5321 §3.1)")
            if not st.pending and event.code != 421:
                raise LocalProtocolError(f"reply {event.code} answers no command")
            wire = write_reply(event, self.config)
            self._process_reply(event)
            return wire
        raise LocalProtocolError(f"a server cannot send {type(event).__name__}")

    def _send_client(self, event: Event) -> list[BytesLike]:
        st = self._state
        if isinstance(event, MessageData):
            if not st.allows(event):
                raise LocalProtocolError(f"cannot send message content in state {st.state.value}")
            assert self._data_writer is not None
            return self._data_writer.write(event.data)
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
        if not st.allows(event):
            raise LocalProtocolError(
                f"cannot send {event.verb} in state {st.projected.value}"
                " (RFC 5321 §4.1.4 command sequence)"
            )
        if st.pending and not ("PIPELINING" in self._extensions and st.pipelining_allows(event)):
            raise LocalProtocolError(
                f"cannot send {event.verb} before the reply to"
                f" {type(st.pending[-1]).__name__} (RFC 2920)"
            )
        utf8 = self._utf8_transaction
        if isinstance(event, MailFrom):
            utf8 = "SMTPUTF8" in event.params
        wire = write_command(event, self.config, extensions=self._extensions, utf8_transaction=utf8)
        self._process_command(event)
        return [wire]

    # ------------------------------------------------------------- shared bookkeeping

    def _process_command(self, event: Event) -> None:
        if isinstance(event, MailFrom):
            self._utf8_transaction = "SMTPUTF8" in event.params  # RFC 6531 §3.4
        self._state.process_command(event)

    def _process_reply(self, reply: Reply) -> None:
        st = self._state
        command = st.process_reply(reply)
        self._last_answered = command
        if reply.is_positive and isinstance(command, Ehlo):
            self._extensions = Extensions.from_ehlo_lines(reply.lines[1:])
        elif reply.is_positive and isinstance(command, Helo):
            self._extensions = Extensions()
        if st.state is State.DATA and isinstance(command, Data):
            if self.our_role is SERVER:
                self._data_reader = DataReader(self.config)
            else:
                self._data_writer = DataWriter(self.config)

    # ---------------------------------------------------------------------- helpers

    def ehlo_reply(self, greeting: str | None = None) -> Reply:
        """The 250 reply to EHLO advertising ``config.extensions`` (RFC 5321 §4.1.1.1)."""
        first = self.config.hostname if greeting is None else f"{self.config.hostname} {greeting}"
        return Reply(code=250, lines=(first, *self.config.extensions.ehlo_lines()))

    def default_reply(self, event: Event) -> Reply:
        """An RFC-correct reply for a received command: what a server that accepts
        everything says. Invalid commands and messages get their reply_hint."""
        if isinstance(event, (InvalidCommand, InvalidMessage)):
            return event.reply_hint
        return default_reply_for(event, self.config.hostname, self.ehlo_reply)
