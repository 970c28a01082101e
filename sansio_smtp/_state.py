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

from ._events import (
    Command,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Helo,
    Help,
    InvalidCommand,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    Vrfy,
)
from ._util import LocalProtocolError

__all__ = ["TRANSITIONS", "ConnectionState", "Role", "State"]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    """Where the session is, as confirmed by the server's replies."""

    GREETING = "GREETING"  # connected, waiting for the server's greeting
    CONNECTED = "CONNECTED"  # greeted with 220; no EHLO/HELO accepted yet
    REJECTED = "REJECTED"  # greeted with 554: only QUIT (RFC 5321 §3.1)
    READY = "READY"  # EHLO/HELO accepted; no mail transaction
    MAIL = "MAIL"  # MAIL accepted; no recipient accepted yet
    RCPT = "RCPT"  # at least one RCPT accepted
    DATA = "DATA"  # DATA got 354: message content flows until <CRLF>.<CRLF>
    CLOSED = "CLOSED"  # QUIT answered, 421 received, or the connection closed
    ERROR = "ERROR"  # a protocol error; the connection is unusable


# Commands that work in any session state once greeted (RFC 5321 §4.1.4: NOOP, HELP,
# EXPN, VRFY and RSET "can be used at any time during a session"), with where they lead.
def _anytime(state: State) -> dict[type[Event], State]:
    return {Noop: state, Help: state, Vrfy: state, Expn: state, Quit: State.CLOSED}


_HELLO: dict[type[Event], State] = {Ehlo: State.READY, Helo: State.READY}

#: (state) -> {event type: state after a positive reply}. MessageData gets no reply.
TRANSITIONS: Mapping[State, Mapping[type[Event], State]] = {
    State.GREETING: {},
    State.CONNECTED: {**_HELLO, Rset: State.CONNECTED, **_anytime(State.CONNECTED)},
    State.REJECTED: {Quit: State.CLOSED},
    State.READY: {**_HELLO, MailFrom: State.MAIL, Rset: State.READY, **_anytime(State.READY)},
    State.MAIL: {**_HELLO, RcptTo: State.RCPT, Rset: State.READY, **_anytime(State.MAIL)},
    State.RCPT: {
        **_HELLO,
        RcptTo: State.RCPT,
        Data: State.DATA,
        Rset: State.READY,
        **_anytime(State.RCPT),
    },
    State.DATA: {MessageData: State.DATA, EndOfMessage: State.READY},
    State.CLOSED: {},
    State.ERROR: {},
}

#: The greeting's code -> the state it leads to (RFC 5321 §3.1, §3.8).
GREETING_TRANSITIONS: Mapping[int, State] = {
    220: State.CONNECTED,
    554: State.REJECTED,
    421: State.CLOSED,
}

# RFC 2920 §3.1: these may only be the last command of a pipelined group. Nothing can be
# sent after them before their reply arrives.
_GROUP_ENDERS = (Ehlo, Helo, Data, Quit, Noop, Vrfy, Expn, Help)


def positive_reply_code(command: Event) -> tuple[int, int]:
    """The range of reply codes that accept ``command``: 354 for DATA (RFC 5321 §4.3.2),
    2xx for everything else."""
    if isinstance(command, Data):
        return (354, 355)
    return (200, 300)


def check_reply_fits(command: Event, reply: Reply) -> None:
    """Raise LocalProtocolError for a reply that cannot answer ``command`` (RFC 5321 §4.3.2:
    DATA is answered 354 or an error, nothing else with 3xx)."""
    if reply.code == 421 or reply.code >= 400:
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
    if isinstance(command, EndOfMessage):  # RFC 5321 §4.1.1.4: the transaction is over
        return State.READY
    low, high = positive_reply_code(command)
    if low <= reply.code < high:
        return TRANSITIONS[state].get(type(command), state)
    return state


def out_of_sequence_reply(state: State, command: Command) -> Reply:
    """The reply a server gives a command that is not in TRANSITIONS[state]."""
    if state is State.CONNECTED and isinstance(command, (MailFrom, RcptTo, Data)):
        return Reply(code=503, lines="Send HELO/EHLO first", enhanced="5.5.1")
    if state is State.MAIL and isinstance(command, Data):
        # RFC 5321 §3.3: no valid recipients -> 503 or 554
        return Reply(code=554, lines="No valid recipients", enhanced="5.5.1")
    if state is State.READY and isinstance(command, (RcptTo, Data)):
        return Reply(code=503, lines="Need MAIL command", enhanced="5.5.1")
    if isinstance(command, MailFrom) and state in (State.MAIL, State.RCPT):
        return Reply(code=503, lines="Nested MAIL command", enhanced="5.5.1")
    return Reply(code=503, lines="Bad sequence of commands", enhanced="5.5.1")


class ConnectionState:
    """What both peers know about the session.

    ``state`` changes only on replies. ``pending`` holds the events awaiting a reply, oldest
    first. ``projected`` is the state once every pending command has succeeded: a client
    checks the next command against it, which is what makes pipelining (RFC 2920) work."""

    def __init__(self) -> None:
        self.state = State.GREETING
        self.pending: deque[Event] = deque()
        self.projected = State.GREETING
        self.recipients = 0  # RCPTs accepted in this transaction

    def allows(self, event: Event) -> bool:
        """True when ``event`` is in sequence after all pending commands succeed."""
        if isinstance(event, (MessageData, EndOfMessage)):
            # Content only after a confirmed 354 (RFC 2920 §3.1: DATA ends a group).
            return self.state is State.DATA and not self.pending
        return type(event) in TRANSITIONS[self.projected]

    def pipelining_allows(self, event: Event) -> bool:
        """RFC 2920 §3.1: nothing may follow a group-ending command before its reply."""
        return not self.pending or not isinstance(self.pending[-1], _GROUP_ENDERS)

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
        """A reply was sent / received. Returns the command it answered (None for an
        unsolicited 421, which closes)."""
        if not self.pending:
            if reply.code == 421:  # RFC 5321 §3.8: may come at any time
                self.state = self.projected = State.CLOSED
                return None
            raise LocalProtocolError(f"reply {reply.code} answers no command")
        command = self.pending[0]
        check_reply_fits(command, reply)
        self.pending.popleft()
        new = after_reply(self.state, command, reply)
        if new is State.RCPT and isinstance(command, RcptTo):
            self.recipients += 1
        elif new is not State.RCPT and new is not State.DATA:
            self.recipients = 0
        self.state = new
        self._reproject()
        return command

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
