# The SMTP dialogue as one transition table, shared by both roles, and the state machine
# that owns every change to the session.
#
# SMTP is lock-step: a command changes the session only once the server accepts it. So the
# table says, for each session state, which commands are in sequence and the state a
# *positive* reply to each leads to. A command missing from its state's row is out of
# sequence: a server answers it with the reply OUT_OF_SEQUENCE lists beside the table (503
# by default, RFC 5321 §4.1.4; LMTP_OUT_OF_SEQUENCE for LMTP's differences) and a client
# refuses to send it. A negative reply leaves the state as it was (RFC 5321 §4.1.4: "the
# SMTP server MUST stay in the same state"), with three exceptions the table cannot hold
# and after_reply() applies: any reply to QUIT or any 421 closes (§3.8, §4.1.1.10), and any
# reply to the end of the message content ends the transaction (§4.1.1.4).
#
# The table knows no "our role": the client uses it to check what it sends, the server to
# check what it receives. ConnectionState tracks what both peers know: the state confirmed
# by replies, the commands still awaiting a reply (several, when a client pipelines), the
# state the client will be in if all of them succeed, and the session facts (TLS, AUTH,
# extensions in force, the transaction, content size, LMTP per-recipient replies, counters),
# each changed only by its named methods. The rules that read these facts are _rules.py's.
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
from ._extensions import Extensions
from ._util import quote

__all__ = [
    "LMTP_OUT_OF_SEQUENCE",
    "OUT_OF_SEQUENCE",
    "TRANSITIONS",
    "ConnectionState",
    "Phase",
    "Role",
    "State",
    "Timeout",
]


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


# The hot paths (once per command and reply) compare with these module-level names: in
# Python 3.11 ``State.READY`` is a descriptor call on the enum class, several times the
# cost of a global load.
_GREETING = State.GREETING
_CONNECTED = State.CONNECTED
_READY = State.READY
_RCPT = State.RCPT
_DATA = State.DATA
_TLS = State.TLS
_AUTH = State.AUTH
_CLOSED = State.CLOSED
_ERROR = State.ERROR


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


GROUP_ENDER_TYPES = frozenset(GROUP_ENDERS)


def ends_group(event: Event) -> bool:
    """RFC 2920 §3.1 (and RFC 3030 §4.2 for BDAT LAST): nothing may be pipelined after."""
    # (event classes are final: a set lookup, not isinstance against twelve classes)
    return type(event) in GROUP_ENDER_TYPES or (isinstance(event, Bdat) and event.last)


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


#: The commands after_reply has a rule for beyond the table: for every other command a
#: reply other than 421, outside an AUTH exchange, moves the state as TRANSITIONS says.
_REPLY_RULES = frozenset((Quit, EndOfMessage, Auth, AuthResponse, Data, Bdat))


def after_reply(state: State, command: Event, reply: Reply) -> State:
    """The state after ``reply`` answers ``command`` in ``state``."""
    code = reply.code
    if type(command) not in _REPLY_RULES and code != 421 and state is not _AUTH:
        # the common case, where only the table decides (the rules below agree)
        return TRANSITIONS[state].get(type(command), state) if 200 <= code < 300 else state
    if code == 421 or isinstance(command, Quit):  # RFC 5321 §3.8, §4.1.1.10
        return _CLOSED
    if state is _AUTH and reply.code != 334:
        return _READY  # RFC 4954 §4: any final reply ends the AUTH exchange
    if isinstance(command, EndOfMessage):  # RFC 5321 §4.1.1.4: the transaction is over
        return _READY
    if reply.code == 334 and isinstance(command, (Auth, AuthResponse)):
        return _AUTH  # RFC 4954 §4: a challenge; the client answers
    if isinstance(command, Data) and reply.code == 354:
        # Whatever the client thought of its recipients, 354 opens the content (RFC 2920
        # §3.1: after all RCPTs failed, a client given 354 sends a lone "." to end it).
        return _DATA
    low, high = positive_reply_code(command)
    positive = low <= reply.code < high
    if isinstance(command, AuthResponse) and not positive:
        return _READY  # RFC 4954 §4: 535, 501 (cancelled)... end the exchange
    if isinstance(command, Bdat) and (command.last or not positive):
        # RFC 3030 §2: BDAT LAST ends the transaction; after a failed chunk the client must
        # send no more BDAT and must RSET: the transaction is over.
        return _READY
    if positive:
        return TRANSITIONS[state].get(type(command), state)
    return state


def _seq(text: str, code: int = 503) -> Reply:
    return Reply(code=code, lines=text, enhanced="5.5.1")


#: The reply to a command in sequence nowhere it was sent (RFC 5321 §4.1.4: 503).
BAD_SEQUENCE = _seq("Bad sequence of commands")
_NEED_HELLO = _seq("Send HELO/EHLO first")
_NEED_EHLO = _seq("Send EHLO first")
_NEED_MAIL = _seq("Need MAIL command")
_NESTED_MAIL = _seq("Nested MAIL command")
# RFC 4954 §4: AUTH is not permitted during a mail transaction
_AUTH_IN_TRANSACTION = _seq("AUTH not permitted in a transaction")
_TLS_IN_TRANSACTION = _seq("Mail transaction in progress")
# RFC 5321 §3.3: DATA (or BDAT, which stands for it: RFC 3030 §2) with no valid recipient
# gets 503 or 554; we answer 554 (LMTP's 503: LMTP_OUT_OF_SEQUENCE).
_NO_RECIPIENTS = _seq("No valid recipients", 554)
_IN_TRANSACTION: Mapping[type[Event], Reply] = {
    MailFrom: _NESTED_MAIL,
    Auth: _AUTH_IN_TRANSACTION,
    StartTLS: _TLS_IN_TRANSACTION,
}

#: (state) -> {event type missing from TRANSITIONS[state]: the reply a server gives it}.
#: What is not listed gets BAD_SEQUENCE. Read beside TRANSITIONS: a command absent from a
#: state's row there is refused here with this reply.
OUT_OF_SEQUENCE: Mapping[State, Mapping[type[Event], Reply]] = {
    State.CONNECTED: {
        MailFrom: _NEED_HELLO,
        RcptTo: _NEED_HELLO,
        Data: _NEED_HELLO,
        Bdat: _NEED_HELLO,
        StartTLS: _NEED_EHLO,
        Auth: _NEED_EHLO,
    },
    State.READY: {RcptTo: _NEED_MAIL, Data: _NEED_MAIL, Bdat: _NEED_MAIL},
    State.MAIL: {Data: _NO_RECIPIENTS, Bdat: _NO_RECIPIENTS, **_IN_TRANSACTION},
    State.RCPT: _IN_TRANSACTION,
    # RFC 3030 §2: DATA and BDAT cannot be mixed in one transaction
    State.BDAT: {Data: _seq("DATA after BDAT"), **_IN_TRANSACTION},
}

#: LMTP's differences from OUT_OF_SEQUENCE: RFC 2033 §4.2, with no valid recipient "the
#: DATA command MUST fail with a 503 reply code"; BDAT gets the same.
LMTP_OUT_OF_SEQUENCE: Mapping[State, Mapping[type[Event], Reply]] = {
    **OUT_OF_SEQUENCE,
    State.MAIL: {
        **OUT_OF_SEQUENCE[State.MAIL],
        Data: _seq("No valid recipients"),
        Bdat: _seq("No valid recipients"),
    },
}


_NOTHING: Mapping[type[Event], Reply] = {}


def out_of_sequence_reply(state: State, command: Event, *, lmtp: bool = False) -> Reply:
    """The reply a server gives a command that is not in TRANSITIONS[state]: the table
    lookup, BAD_SEQUENCE when the table lists none."""
    table = LMTP_OUT_OF_SEQUENCE if lmtp else OUT_OF_SEQUENCE
    return table.get(state, _NOTHING).get(type(command), BAD_SEQUENCE)


@final
@attrs.frozen(kw_only=True, repr=False)  # Event.__repr__, as for every event
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


# A forward path shown in a reply as it is up to this length (RFC 5321 §4.5.3.1.3: a path
# is at most 256 octets), quoted and cut beyond, so the reply line stays within 512.
_MAX_SHOWN_PATH = 256


def lmtp_delivery_reply(delivery: LmtpDelivery) -> Reply:
    """The default reply for one recipient after an LMTP message (RFC 2033 §4.2): the
    refusal of the whole message, or 250 for its delivery."""
    if delivery.refusal is not None:
        return delivery.refusal
    path = str(delivery.recipient.forward_path)
    if len(path.encode("utf-8", "replace")) > _MAX_SHOWN_PATH:  # keep the line in bounds
        path = quote(path, _MAX_SHOWN_PATH)
    return Reply(code=250, lines=f"<{path}> delivered", enhanced="2.1.5")


def ends_message(event: Event) -> bool:
    return isinstance(event, EndOfMessage) or (isinstance(event, Bdat) and event.last)


#: Commands that move no mail (Postfix's "junk": NOOP, VRFY, ETRN, RSET; ours adds EXPN,
#: HELP and the greetings, which a client needs once, twice around STARTTLS): a session
#: that sends nothing else is only using the server's time (Config.max_junk_commands).
JUNK_COMMANDS = (Noop, Vrfy, Expn, Help, Rset, Ehlo, Helo, Lhlo)
JUNK_TYPES = frozenset(JUNK_COMMANDS)
_HELLO_TYPES = frozenset(_HELLO)
_TRANSACTION_STATES = frozenset((State.MAIL, State.RCPT, State.DATA, State.BDAT))
_RESETS = frozenset((Rset, Ehlo, Helo, Lhlo, StartTLS))
#: The commands whose replies move the state by TRANSITIONS alone: none has a rule in
#: after_reply (_REPLY_RULES), changes the session's extensions or AUTH, or leads to
#: CLOSED (from another state), DATA or TLS; of _RESETS only RSET (process_reply's
#: shortcut).
_PLAIN_REPLY_KINDS = frozenset((MailFrom, RcptTo, Rset, Noop, Help, Vrfy, Expn))


#: the extensions of a session before EHLO: one immutable empty Extensions for all
_NO_EXTENSIONS = Extensions()


class ConnectionState:
    """What both peers know about the session, and every change to it.

    ``state`` changes only on replies. ``pending`` holds the events awaiting a reply, oldest
    first. ``projected`` is the state once every pending command has succeeded: a client
    checks the next command against it, which is what makes pipelining (RFC 2920) work.
    ``accepted`` lists the RCPTs accepted in this transaction.

    The session facts beside the table state live here too, changed only by the methods
    below (commands, replies, content, the TLS handshake): ``tls``, ``extensions`` (as
    advertised in the last positive EHLO/LHLO reply), ``authenticated`` and
    ``auth_failures``, the transaction's ``mail`` and ``recipients``, ``transactions``,
    ``content_size``, and the ``junk_commands`` / ``invalid_commands`` counters.

    ``optimistic``: the transaction (``mail``, ``recipients``) follows the commands as they
    are sent, which a client that pipelines must do; otherwise (a server) it follows what
    the replies accepted."""

    def __init__(self, *, lmtp: bool = False, tls: bool = False, optimistic: bool = False) -> None:
        self.state = _GREETING
        self.pending: deque[Event] = deque()
        self.projected = _GREETING
        self.accepted: list[RcptTo] = []
        self.lmtp = lmtp
        self.optimistic = optimistic
        #: The reply_hint of the InvalidMessage that ended the message content now
        #: awaiting its reply (server), so that LMTP refuses it for every recipient.
        self.content_refusal: Reply | None = None
        self.content_size = 0  # message content octets in this transaction
        self._reset_session(tls=tls)

    def _reset_session(self, *, tls: bool) -> None:
        self.tls = tls  # TLS is active (STARTTLS done, or implicit TLS)
        self._set_extensions(_NO_EXTENSIONS)
        self.mail: MailFrom | None = None  # the MAIL of the current transaction
        self.recipients = 0  # RCPTs accepted (server) / sent (optimistic) in this transaction
        self.transactions = 0  # MAIL commands accepted (server) / sent (client)
        self.authenticated = False  # AUTH succeeded (235)
        self.auth_failures = 0  # AUTH exchanges that ended in failure
        self.junk_commands = 0  # JUNK_COMMANDS since a message was accepted
        self.invalid_commands = 0  # command lines refused since a message was accepted

    def _set_extensions(self, extensions: Extensions) -> None:
        self.extensions = extensions
        if extensions is _NO_EXTENSIONS:  # every new session: nothing to look up
            self.pipelining = self.enhanced_status_codes = False
            self._advertised_size: int | None = None
            return
        # Asked on every command and reply: looked up here once, not per use.
        #: PIPELINING is in force (RFC 2920).
        self.pipelining = "PIPELINING" in extensions
        #: ENHANCEDSTATUSCODES is in force (RFC 2034).
        self.enhanced_status_codes = "ENHANCEDSTATUSCODES" in extensions
        # the SIZE value advertised, when it sets a limit (RFC 1870 §4: 0 sets none)
        advertised = extensions.get("SIZE") or ("",)
        size = int(advertised[0]) if advertised[0].isdigit() else 0
        self._advertised_size = size if size > 0 else None

    # ------------------------------------------------------------------ derived facts

    def size_limit(self, config_limit: int | None) -> int | None:
        """The message size limit in force: ``config_limit`` (Config.max_message_size)
        and/or the SIZE value advertised (RFC 1870 §4: 0 means no fixed limit)."""
        value = self._advertised_size
        if value is None:
            return config_limit
        return value if config_limit is None else min(config_limit, value)

    @property
    def eight_bit_ok(self) -> bool:
        """8-bit content may be sent in this transaction: BODY=8BITMIME/BINARYMIME
        (RFC 6152 §3, RFC 3030 §3) or SMTPUTF8 (RFC 6531 §3.4) was declared."""
        if self.mail is None:
            return False
        params = self.mail.params
        return "SMTPUTF8" in params or (params.get("BODY") or "").upper() in (
            "8BITMIME",
            "BINARYMIME",
        )

    @property
    def binarymime(self) -> bool:
        return self.mail is not None and (self.mail.params.get("BODY") or "").upper() == (
            "BINARYMIME"
        )

    @property
    def utf8_transaction(self) -> bool:
        """The transaction declared SMTPUTF8 (RFC 6531 §3.4)."""
        mail = self.mail
        return mail is not None and "SMTPUTF8" in mail.params

    def allows(self, event: Event) -> bool:
        """True when ``event`` is in sequence after all pending commands succeed."""
        if isinstance(event, (MessageData, EndOfMessage)):
            # Content only after a confirmed 354 (RFC 2920 §3.1: DATA ends a group).
            return self.state is _DATA and not self.pending
        return type(event) in TRANSITIONS[self.projected]

    def pipelining_allows(self, event: Event) -> bool:
        """RFC 2920 §3.1: nothing may follow a group-ending command before its reply."""
        return not self.pending or not ends_group(self.pending[-1])

    # --------------------------------------------------------------------- changes

    def process_command(self, event: Event) -> None:
        """A command (or InvalidCommand, or the end of the content) was sent / received."""
        kind = type(event)
        if kind is MessageData:
            return
        if kind is MailFrom:
            assert isinstance(event, MailFrom)
            self.mail = event
            self.transactions += 1
            self.recipients = 0
        elif kind in JUNK_TYPES:
            self.junk_commands += 1  # Config.max_junk_commands (a server's limit)
        elif self.optimistic:
            # A client knows its transaction by what it sent (replies may lag behind when
            # it pipelines). It ends at the end of its content whatever the reply;
            # RSET/EHLO/... end it when accepted (process_reply).
            if kind is RcptTo:
                self.recipients += 1
            elif kind is EndOfMessage:
                self.mail = None
        if kind is Bdat:
            assert isinstance(event, Bdat)
            if self.projected is _RCPT:
                self.content_size = 0  # the first chunk of a transaction
            if self.optimistic and event.last and not event.size:
                self.mail = None
        self.pending.append(event)
        if kind is not InvalidCommand:
            self.projected = TRANSITIONS[self.projected].get(kind, self.projected)

    def count_invalid(self) -> None:
        """A received command line was refused (Config.max_invalid_commands)."""
        self.invalid_commands += 1

    def process_content(self, size: int, *, ends_message: bool = False) -> None:
        """``size`` octets of message content were sent / accepted; ``ends_message``:
        they complete the chunk of a BDAT LAST (RFC 3030 §2)."""
        self.content_size += size
        if ends_message and self.optimistic:
            self.mail = None  # its octets are sent: the transaction is over

    def refuse_content(self, reply: Reply) -> None:
        """The message content was refused (InvalidMessage: too large, a line too long,
        ...) before the end of the content: its reply answers the end of it, and in LMTP
        every recipient (RFC 2033 §4.2)."""
        self.content_refusal = reply

    def process_greeting(self, code: int) -> None:
        if self.state is not _GREETING:
            raise LocalProtocolError("the greeting was already given")
        self.state = self.projected = GREETING_TRANSITIONS[code]

    def check_reply(self, reply: Reply) -> None:
        """Raise LocalProtocolError, changing nothing, for a reply that answers nothing
        pending or cannot answer what it would answer (check_reply_fits)."""
        if not self.pending:
            if reply.code != 421:  # RFC 5321 §3.8: 421 may come at any time
                raise LocalProtocolError(f"reply {reply.code} answers no command")
            return
        entry = self.pending[0]
        if type(entry) is InvalidCommand:
            assert isinstance(entry, InvalidCommand)
            entry = entry.command or entry
        check_reply_fits(entry, reply)

    def process_reply(self, reply: Reply) -> Event | None:
        """A reply was sent / received. Returns what it answered: the command, the RcptTo
        of an LMTP per-recipient reply, or None for an unsolicited 421 (which closes)."""
        pending = self.pending
        code = reply.code
        state = self.state
        # The common case, where the table alone decides: the reply to MAIL, RCPT, RSET
        # or NOOP... (_PLAIN_REPLY_KINDS), outside LMTP and AUTH, 2xx or a refusal other
        # than 421 (which always fits: check_reply_fits). The general code, _process_reply,
        # gives the same for it (tests/test_core_shortcuts.py), after a dozen more tests.
        if (
            pending
            and (200 <= code < 300 or (code >= 400 and code != 421))
            and type(pending[0]) in _PLAIN_REPLY_KINDS
            and state is not _AUTH
            and not self.lmtp
        ):
            command = pending.popleft()
            kind = type(command)
            positive = code < 300
            moved = TRANSITIONS[state].get(kind, state)
            new = moved if positive else state
            if kind is RcptTo and new is _RCPT and positive:
                self.accepted.append(command)  # type: ignore[arg-type]
            elif new not in _TRANSACTION_STATES:
                self.accepted = []
            self.state = new
            if new is _CLOSED:  # (only when it was already: the table leads nowhere else)
                pending.clear()
            if not pending:
                self.projected = new
            elif new is not moved:
                self._reproject()  # a refusal: the projection assumed success
            if self.optimistic:
                if positive and kind is Rset and not any(type(p) is MailFrom for p in pending):
                    self.mail = None  # a reset took effect, and no newer MAIL was sent since
            else:
                self.recipients = len(self.accepted)
                if new not in _TRANSACTION_STATES:
                    self.mail = None
            return command
        return self._process_reply(reply)

    def _process_reply(self, reply: Reply) -> Event | None:
        """process_reply for every reply (the general code)."""
        pending = self.pending
        code = reply.code
        if not pending:
            if code == 421:  # RFC 5321 §3.8: may come at any time
                self.state = self.projected = _CLOSED
                return None
            raise LocalProtocolError(f"reply {code} answers no command")
        entry = pending[0]
        command = entry
        refused = False
        if type(entry) is InvalidCommand:
            assert isinstance(entry, InvalidCommand)
            refused = True
            if entry.command is not None:
                # A refused command moves the state as the same command does on the client.
                command = entry.command
        kind = type(command)
        positive = 200 <= code < 300
        if code < 400 and (code != 354 if kind is Data else not positive):
            # (any 4xx/5xx fits; 354 fits DATA, 2xx all but DATA)
            check_reply_fits(command, reply)
        state = self.state
        pending.popleft()
        answered: Event = command
        content_refusal: Reply | None = None
        if kind is EndOfMessage or kind is Bdat:
            content_refusal, self.content_refusal = self.content_refusal, None
        if kind is LmtpDelivery:
            assert isinstance(command, LmtpDelivery)
            answered = command.recipient
        elif self.lmtp and ends_message(command) and self.accepted and code != 421:
            # RFC 2033 §4.2: one reply per accepted recipient. The RCPT replies all came
            # before this one, so the list is complete now even when pipelined. A message
            # the server refused as a whole is refused for every recipient: the refusal
            # sent about the first one (or the reader's hint, if that was not negative).
            answered = self.accepted[0]
            if content_refusal is not None and code >= 400:
                content_refusal = reply
            more = [LmtpDelivery(recipient=r, refusal=content_refusal) for r in self.accepted[1:]]
            pending.extendleft(reversed(more))
        if kind not in _REPLY_RULES and code != 421 and state is not _AUTH:
            # after_reply's common case, inline: only the table decides
            new = TRANSITIONS[state].get(kind, state) if positive else state
        else:
            new = after_reply(state, command, reply)
        if kind is RcptTo and new is _RCPT and positive:
            assert isinstance(command, RcptTo)
            self.accepted.append(command)
        elif new not in _TRANSACTION_STATES and kind is not LmtpDelivery:
            self.accepted = []
        self.state = new
        if new is _CLOSED:
            pending.clear()  # RFC 5321 §3.8: no reply will come for the rest
        if not pending:
            self.projected = new
        elif (
            new is not (state if refused else TRANSITIONS[state].get(kind, state))
            or kind is LmtpDelivery
            or self.lmtp
        ):
            # The reply moved the state other than the projection assumed (a refusal,
            # after_reply's rules), or LMTP added replies to wait for: project again. Else
            # the projection over the commands still pending stands, and a client that
            # pipelined a hundred RCPTs does not walk them all for every reply.
            self._reproject()
        # An exchange that ran (not one the rules refused up front) and failed counts
        # towards max_auth_failures; so does a malformed response inside it.
        if state is _AUTH or (kind is Auth and not refused):
            if positive:
                self.authenticated = True
            elif code >= 400:
                self.auth_failures += 1
        if positive and kind in _HELLO_TYPES:
            self._set_extensions(
                Extensions() if kind is Helo else Extensions.from_ehlo_lines(reply.lines[1:])
            )
        if self.optimistic:
            if positive and kind in _RESETS and not any(type(p) is MailFrom for p in pending):
                self.mail = None  # a reset took effect, and no newer MAIL was sent since
        else:
            self.recipients = len(self.accepted)
            if positive and (kind is EndOfMessage or kind is Bdat) and ends_message(command):
                # a message was accepted: the session is useful
                self.junk_commands = self.invalid_commands = 0
            if new not in _TRANSACTION_STATES:
                self.mail = None
        if new is _DATA and kind is Data:
            self.content_size = 0
        return answered

    def _reproject(self) -> None:
        projected = self.state
        for event in self.pending:
            if type(event) is not InvalidCommand:
                projected = TRANSITIONS[projected].get(type(event), projected)
        self.projected = projected

    def tls_established(self) -> None:
        """RFC 3207 §4.2: after the handshake both sides forget what they learned before
        TLS: the session starts over from the greeting state CONNECTED."""
        if self.state is not _TLS:
            raise LocalProtocolError("no TLS handshake is due (send or receive STARTTLS first)")
        self.state = self.projected = _CONNECTED
        self.accepted = []
        self._reset_session(tls=True)

    def close(self) -> None:
        self.state = self.projected = _CLOSED

    def error(self) -> None:
        self.state = self.projected = _ERROR


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


# The timeouts are constants: each is built once here, not on every read (adapters ask
# for the timeout before each wait). Timeout is frozen, so one object serves every caller.
_CLIENT_WAITS: Mapping[Phase, Timeout] = {
    phase: Timeout(phase, seconds) for phase, seconds in CLIENT_TIMEOUTS.items()
}
#: what a client waits for, by the type of the oldest command pending (the event classes
#: are final: their type is the whole test); any other command: Phase.COMMAND
_CLIENT_WAIT_FOR: Mapping[type[Event], Timeout] = {
    MailFrom: _CLIENT_WAITS[Phase.MAIL],
    RcptTo: _CLIENT_WAITS[Phase.RCPT],
    Data: _CLIENT_WAITS[Phase.DATA],
    EndOfMessage: _CLIENT_WAITS[Phase.END_OF_DATA],
    Bdat: _CLIENT_WAITS[Phase.END_OF_DATA],
    LmtpDelivery: _CLIENT_WAITS[Phase.END_OF_DATA],
}
_COMMAND_WAIT = _CLIENT_WAITS[Phase.COMMAND]
_GREETING_WAIT = _CLIENT_WAITS[Phase.GREETING]
_DATA_BLOCK_WAIT = _CLIENT_WAITS[Phase.DATA_BLOCK]
_SERVER_WAIT = Timeout(Phase.CLIENT, SERVER_TIMEOUT)


def client_timeout(state: State, pending: deque[Event]) -> Timeout | None:
    """What a client waits for and how long, or None when it waits for nothing."""
    if state is _GREETING:
        return _GREETING_WAIT
    if pending:
        return _CLIENT_WAIT_FOR.get(type(pending[0]), _COMMAND_WAIT)
    if state is _DATA:
        return _DATA_BLOCK_WAIT
    return None


def server_timeout(state: State, *, owes_reply: bool) -> Timeout | None:
    """A server waits for the client 5 minutes, except while it owes a reply."""
    # identity tests: an Enum member's hash is a Python call
    if owes_reply or state is _GREETING or state is _CLOSED or state is _ERROR or state is _TLS:
        return None
    return _SERVER_WAIT
