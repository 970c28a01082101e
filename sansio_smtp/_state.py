# The SMTP dialogue as one transition table, shared by both roles.
#
# SMTP is lock-step: a command changes the session only once the server accepts it. So the
# table says, for each session state, which commands are in sequence and the state a
# *positive* reply to each leads to. A command missing from its state's row is out of
# sequence: a server answers 503 (RFC 5321 §4.1.4) and a client refuses to send it. A
# negative reply leaves the state as it was (RFC 5321 §4.1.4: "the SMTP server MUST stay in
# the same state"), with three exceptions the table cannot hold and after_reply() applies:
# any reply to QUIT or any 421 closes (§3.8, §4.1.1.10), and any reply to the end of the
# message content ends the transaction (§4.1.1.4).
#
# The table knows no "our role": the client uses it to check what it sends, the server to
# check what it receives. ConnectionState tracks what both peers know: the state confirmed
# by replies, the commands still awaiting a reply (several, when a client pipelines), and
# the state the client will be in if all of them succeed.
from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from typing import final

import attrs

from ._errors import LocalProtocolError
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Helo,
    Help,
    InvalidCommand,
    Lhlo,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
)

__all__ = ["TRANSITIONS", "ConnectionState", "Phase", "Role", "State", "Timeout"]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"

    # Members are singletons: identity hashing is correct and, unlike Enum.__hash__,
    # runs in C (the table is looked up several times per command).
    __hash__ = object.__hash__


class State(enum.Enum):
    """Where the session is, as confirmed by the server's replies."""

    GREETING = "GREETING"  # connected, waiting for the server's greeting
    CONNECTED = "CONNECTED"  # greeted with 220; no EHLO/HELO accepted yet
    REJECTED = "REJECTED"  # greeted with 554: only QUIT (RFC 5321 §3.1)
    READY = "READY"  # EHLO/HELO accepted; no mail transaction
    MAIL = "MAIL"  # MAIL accepted; no recipient accepted yet
    RCPT = "RCPT"  # at least one RCPT accepted
    DATA = "DATA"  # DATA got 354: message content flows until <CRLF>.<CRLF>
    BDAT = "BDAT"  # a BDAT chunk was accepted and LAST has not come (RFC 3030)
    TLS = "TLS"  # STARTTLS got 220: the TLS handshake is under way (RFC 3207)
    AUTH = "AUTH"  # AUTH got a 334 challenge: the client answers next (RFC 4954)

    __hash__ = object.__hash__  # as Role
    CLOSED = "CLOSED"  # QUIT answered, 421 received, or the connection closed
    ERROR = "ERROR"  # a protocol error; the connection is unusable


# Commands that work in any session state once greeted (RFC 5321 §4.1.4: NOOP, HELP,
# EXPN, VRFY and RSET "can be used at any time during a session"), with where they lead.
def _anytime(state: State) -> dict[type[Event], State]:
    return {Noop: state, Help: state, Vrfy: state, Expn: state, Quit: State.CLOSED}


_HELLO: dict[type[Event], State] = {Ehlo: State.READY, Helo: State.READY, Lhlo: State.READY}

#: (state) -> {event type: state after a positive reply}. MessageData gets no reply.
#: A negative reply leaves the state as it is, except as after_reply() says.
TRANSITIONS: Mapping[State, Mapping[type[Event], State]] = {
    State.GREETING: {},
    State.CONNECTED: {**_HELLO, Rset: State.CONNECTED, **_anytime(State.CONNECTED)},
    State.REJECTED: {Quit: State.CLOSED},
    State.READY: {
        **_HELLO,
        MailFrom: State.MAIL,
        StartTLS: State.TLS,
        Auth: State.READY,
        Rset: State.READY,
        **_anytime(State.READY),
    },
    State.MAIL: {**_HELLO, RcptTo: State.RCPT, Rset: State.READY, **_anytime(State.MAIL)},
    State.RCPT: {
        **_HELLO,
        RcptTo: State.RCPT,
        Data: State.DATA,
        Bdat: State.BDAT,
        Rset: State.READY,
        **_anytime(State.RCPT),
    },
    State.DATA: {MessageData: State.DATA, EndOfMessage: State.READY},
    State.BDAT: {**_HELLO, Bdat: State.BDAT, Rset: State.READY, **_anytime(State.BDAT)},
    State.TLS: {},
    State.AUTH: {AuthResponse: State.READY},
    State.CLOSED: {},
    State.ERROR: {},
}

#: The greeting's code -> the state it leads to (RFC 5321 §3.1, §3.8).
GREETING_TRANSITIONS: Mapping[int, State] = {
    220: State.CONNECTED,
    554: State.REJECTED,
    421: State.CLOSED,
}

# RFC 2920 §3.1: these may only be the last command of a pipelined group (EHLO, DATA,
# VRFY, EXPN, TURN, QUIT, NOOP), and so are the commands that change what the session is
# (STARTTLS: RFC 3207 §4.2; LHLO like EHLO). Nothing may follow them before their reply.
# AUTH too (RFC 4954 §4: the exchange is lock-step).
GROUP_ENDERS = (Ehlo, Helo, Lhlo, Data, Quit, Noop, Vrfy, Expn, Help, StartTLS, Auth, AuthResponse)


def ends_group(event: Event) -> bool:
    """RFC 2920 §3.1 (and RFC 3030 §4.2 for BDAT LAST): nothing may be pipelined after."""
    return isinstance(event, GROUP_ENDERS) or (isinstance(event, Bdat) and event.last)


def positive_reply_code(command: Event) -> tuple[int, int]:
    """The range of reply codes that accept ``command``: 354 for DATA (RFC 5321 §4.3.2),
    2xx for everything else."""
    if isinstance(command, Data):
        return (354, 355)
    return (200, 300)


def check_reply_fits(command: Event, reply: Reply) -> None:
    """Raise LocalProtocolError for a reply that cannot answer ``command`` (RFC 5321 §4.3.2:
    DATA is answered 354 or an error; RFC 4954 §4: AUTH may get 334; nothing else 3xx)."""
    if reply.code == 421 or reply.code >= 400:
        return
    if reply.code == 334 and isinstance(command, (Auth, AuthResponse)):
        return
    low, high = positive_reply_code(command)
    if not low <= reply.code < high:
        raise LocalProtocolError(
            f"{reply.code} cannot answer {type(command).__name__} (RFC 5321 §4.3.2)"
        )


def after_reply(state: State, command: Event, reply: Reply) -> State:
    """The state after ``reply`` answers ``command`` in ``state``."""
    if reply.code == 421 or isinstance(command, Quit):  # RFC 5321 §3.8, §4.1.1.10
        return State.CLOSED
    if state is State.AUTH and reply.code != 334:
        return State.READY  # RFC 4954 §4: any final reply ends the AUTH exchange
    if isinstance(command, EndOfMessage):  # RFC 5321 §4.1.1.4: the transaction is over
        return State.READY
    if reply.code == 334 and isinstance(command, (Auth, AuthResponse)):
        return State.AUTH  # RFC 4954 §4: a challenge; the client answers
    if isinstance(command, Data) and reply.code == 354:
        # Whatever the client thought of its recipients, 354 opens the content (RFC 2920
        # §3.1: after all RCPTs failed, a client given 354 sends a lone "." to end it).
        return State.DATA
    low, high = positive_reply_code(command)
    positive = low <= reply.code < high
    if isinstance(command, AuthResponse) and not positive:
        return State.READY  # RFC 4954 §4: 535, 501 (cancelled)... end the exchange
    if isinstance(command, Bdat) and (command.last or not positive):
        # RFC 3030 §2: BDAT LAST ends the transaction; after a failed chunk the client must
        # send no more BDAT and must RSET: the transaction is over.
        return State.READY
    if positive:
        return TRANSITIONS[state].get(type(command), state)
    return state


def out_of_sequence_reply(state: State, command: Command, *, lmtp: bool = False) -> Reply:
    """The reply a server gives a command that is not in TRANSITIONS[state]."""
    if state is State.CONNECTED and isinstance(command, (MailFrom, RcptTo, Data, Bdat)):
        return Reply(code=503, lines="Send HELO/EHLO first", enhanced="5.5.1")
    if state is State.MAIL and isinstance(command, (Data, Bdat)):
        # RFC 5321 §3.3: no valid recipients -> 503 or 554. RFC 2033 §4.2: in LMTP "the
        # DATA command MUST fail with a 503 reply code"; BDAT, which stands for DATA
        # (RFC 3030 §2), gets the same.
        code = 503 if lmtp else 554
        return Reply(code=code, lines="No valid recipients", enhanced="5.5.1")
    if state is State.READY and isinstance(command, (RcptTo, Data, Bdat)):
        return Reply(code=503, lines="Need MAIL command", enhanced="5.5.1")
    if isinstance(command, MailFrom) and state in (State.MAIL, State.RCPT, State.BDAT):
        return Reply(code=503, lines="Nested MAIL command", enhanced="5.5.1")
    if isinstance(command, Data) and state is State.BDAT:
        # RFC 3030 §2: DATA and BDAT cannot be mixed in one transaction
        return Reply(code=503, lines="DATA after BDAT", enhanced="5.5.1")
    if isinstance(command, Auth) and state in (State.MAIL, State.RCPT, State.BDAT):
        # RFC 4954 §4: AUTH is not permitted during a mail transaction
        return Reply(code=503, lines="AUTH not permitted in a transaction", enhanced="5.5.1")
    if isinstance(command, (StartTLS, Auth)) and state is State.CONNECTED:
        return Reply(code=503, lines="Send EHLO first", enhanced="5.5.1")
    if isinstance(command, StartTLS) and state in (State.MAIL, State.RCPT, State.BDAT):
        return Reply(code=503, lines="Mail transaction in progress", enhanced="5.5.1")
    return Reply(code=503, lines="Bad sequence of commands", enhanced="5.5.1")


@final
@attrs.frozen(kw_only=True)
class LmtpDelivery(Event):
    """A pending LMTP reply: after the end of a message, one reply per accepted recipient,
    in RCPT order (RFC 2033 §4.2). The first answers the end of the message itself; these
    stand for the rest.

    ``refusal``: the reply every recipient gets because the message itself was refused
    (InvalidMessage: too large, a line too long, ...): a refused message is delivered to
    none of them (RFC 2033 §4.2). None when each recipient's delivery is decided on its
    own."""

    recipient: RcptTo
    refusal: Reply | None = None


def ends_message(event: Event) -> bool:
    return isinstance(event, EndOfMessage) or (isinstance(event, Bdat) and event.last)


class ConnectionState:
    """What both peers know about the session.

    ``state`` changes only on replies. ``pending`` holds the events awaiting a reply, oldest
    first. ``projected`` is the state once every pending command has succeeded: a client
    checks the next command against it, which is what makes pipelining (RFC 2920) work.
    ``accepted`` lists the RCPTs accepted in this transaction."""

    def __init__(self, *, lmtp: bool = False) -> None:
        self.state = State.GREETING
        self.pending: deque[Event] = deque()
        self.projected = State.GREETING
        self.accepted: list[RcptTo] = []
        self.lmtp = lmtp
        #: The reply_hint of the InvalidMessage that ended the message content now
        #: awaiting its reply (server), so that LMTP refuses it for every recipient.
        self.content_refusal: Reply | None = None

    def copy(self) -> ConnectionState:
        """An independent copy (Connection.check tries a send on it)."""
        new = ConnectionState.__new__(ConnectionState)
        new.__dict__.update(self.__dict__)
        new.pending = deque(self.pending)
        new.accepted = list(self.accepted)
        return new

    @property
    def recipients(self) -> int:
        return len(self.accepted)

    def allows(self, event: Event) -> bool:
        """True when ``event`` is in sequence after all pending commands succeed."""
        if isinstance(event, (MessageData, EndOfMessage)):
            # Content only after a confirmed 354 (RFC 2920 §3.1: DATA ends a group).
            return self.state is State.DATA and not self.pending
        return type(event) in TRANSITIONS[self.projected]

    def pipelining_allows(self, event: Event) -> bool:
        """RFC 2920 §3.1: nothing may follow a group-ending command before its reply."""
        return not self.pending or not ends_group(self.pending[-1])

    def process_command(self, event: Event) -> None:
        """A command (or InvalidCommand, or content) was sent / received."""
        if isinstance(event, MessageData):
            return
        self.pending.append(event)
        if not isinstance(event, InvalidCommand):
            self.projected = TRANSITIONS[self.projected].get(type(event), self.projected)

    def process_greeting(self, code: int) -> None:
        if self.state is not State.GREETING:
            raise LocalProtocolError("the greeting was already given")
        self.state = self.projected = GREETING_TRANSITIONS[code]

    def process_reply(self, reply: Reply) -> Event | None:
        """A reply was sent / received. Returns what it answered: the command, the RcptTo
        of an LMTP per-recipient reply, or None for an unsolicited 421 (which closes)."""
        if not self.pending:
            if reply.code == 421:  # RFC 5321 §3.8: may come at any time
                self.state = self.projected = State.CLOSED
                return None
            raise LocalProtocolError(f"reply {reply.code} answers no command")
        command = self.pending[0]
        if isinstance(command, InvalidCommand) and command.command is not None:
            # A refused command moves the state as the same command does on the client.
            command = command.command
        check_reply_fits(command, reply)
        self.pending.popleft()
        answered: Event = command
        refused: Reply | None = None
        if isinstance(command, (EndOfMessage, Bdat)):
            refused, self.content_refusal = self.content_refusal, None
        if isinstance(command, LmtpDelivery):
            answered = command.recipient
        elif self.lmtp and ends_message(command) and self.accepted and reply.code != 421:
            # RFC 2033 §4.2: one reply per accepted recipient. The RCPT replies all came
            # before this one, so the list is complete now even when pipelined. A message
            # the server refused as a whole is refused for every recipient: the refusal
            # sent about the first one (or the reader's hint, if that was not negative).
            answered = self.accepted[0]
            if refused is not None and reply.code >= 400:
                refused = reply
            more = [LmtpDelivery(recipient=r, refusal=refused) for r in self.accepted[1:]]
            self.pending.extendleft(reversed(more))
        new = after_reply(self.state, command, reply)
        if isinstance(command, RcptTo) and new is State.RCPT and reply.is_positive:
            self.accepted.append(command)
        elif new not in (State.RCPT, State.DATA, State.BDAT) and not isinstance(
            command, LmtpDelivery
        ):
            self.accepted = []
        self.state = new
        if new is State.CLOSED:
            self.pending.clear()  # RFC 5321 §3.8: no reply will come for the rest
        self._reproject()
        return answered

    def _reproject(self) -> None:
        projected = self.state
        for event in self.pending:
            if not isinstance(event, InvalidCommand):
                projected = TRANSITIONS[projected].get(type(event), projected)
        self.projected = projected

    def close(self) -> None:
        self.state = self.projected = State.CLOSED

    def error(self) -> None:
        self.state = self.projected = State.ERROR


# --------------------------------------------------------------------------- timeouts


class Phase(str, enum.Enum):
    """What a side is waiting for, which sets its timeout (RFC 5321 §4.5.3.2). Members are
    strings, so a ``timeouts={"MAIL": 60}`` mapping names them as well as ``Phase.MAIL``.
    CONNECT, TLS and SESSION are the adapters': RFC 5321 gives them no value."""

    GREETING = "greeting"  # §4.5.3.2.1 initial 220 message
    MAIL = "MAIL"  # §4.5.3.2.2 MAIL command
    RCPT = "RCPT"  # §4.5.3.2.3 RCPT command
    DATA = "DATA"  # §4.5.3.2.4 DATA initiation
    DATA_BLOCK = "data block"  # §4.5.3.2.5 each data block sent
    END_OF_DATA = "end of data"  # §4.5.3.2.6 DATA termination
    COMMAND = "command"  # other commands: as MAIL
    CLIENT = "client"  # §4.5.3.2.7 a server waiting for the next command or data
    CONNECT = "connect"  # the TCP connection (adapters)
    TLS = "tls"  # the TLS handshake (adapters)
    SESSION = "session"  # a whole-session deadline (adapters)

    def __str__(self) -> str:  # "MAIL", as the string it stands for
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@final
@attrs.frozen
class Timeout:
    """How long to wait for what the connection is waiting for now (RFC 5321 §4.5.3.2).

    The core has no clock: adapters read ``Connection.timeout`` after each step and arm
    their timer with ``seconds``. ``phase`` names what is awaited."""

    phase: Phase
    seconds: float


# RFC 5321 §4.5.3.2.1-7, in seconds
CLIENT_TIMEOUTS: Mapping[Phase, float] = {
    Phase.GREETING: 300.0,  # §4.5.3.2.1 initial 220 message: 5 minutes
    Phase.MAIL: 300.0,  # §4.5.3.2.2 MAIL command: 5 minutes
    Phase.RCPT: 300.0,  # §4.5.3.2.3 RCPT command: 5 minutes
    Phase.DATA: 120.0,  # §4.5.3.2.4 DATA initiation: 2 minutes
    Phase.DATA_BLOCK: 180.0,  # §4.5.3.2.5 each data block sent: 3 minutes
    Phase.END_OF_DATA: 600.0,  # §4.5.3.2.6 DATA termination: 10 minutes
    Phase.COMMAND: 300.0,  # other commands: as MAIL
}
SERVER_TIMEOUT = 300.0  # §4.5.3.2.7 server waiting for the next command or data: 5 minutes


def client_timeout(state: State, pending: deque[Event]) -> Timeout | None:
    """What a client waits for and how long, or None when it waits for nothing."""
    if state is State.GREETING:
        return Timeout(Phase.GREETING, CLIENT_TIMEOUTS[Phase.GREETING])
    if pending:
        first = pending[0]
        if isinstance(first, MailFrom):
            phase = Phase.MAIL
        elif isinstance(first, RcptTo):
            phase = Phase.RCPT
        elif isinstance(first, Data):
            phase = Phase.DATA
        elif isinstance(first, (EndOfMessage, Bdat, LmtpDelivery)):
            phase = Phase.END_OF_DATA
        else:
            phase = Phase.COMMAND
        return Timeout(phase, CLIENT_TIMEOUTS[phase])
    if state is State.DATA:
        return Timeout(Phase.DATA_BLOCK, CLIENT_TIMEOUTS[Phase.DATA_BLOCK])
    return None


def server_timeout(state: State, *, owes_reply: bool) -> Timeout | None:
    """A server waits for the client 5 minutes, except while it owes a reply."""
    if state in (State.GREETING, State.CLOSED, State.ERROR, State.TLS) or owes_reply:
        return None
    return Timeout(Phase.CLIENT, SERVER_TIMEOUT)
