"""Stateful fuzzing: a client core and a server core driven together by Hypothesis.

A ``RuleBasedStateMachine`` plays both peers and the network between them. Its rules send
commands (in sequence or not; the client refuses what it may not send), pipeline them,
send message content (DATA and BDAT), run AUTH and STARTTLS, answer with default or
negative replies, and deliver the bytes each way in arbitrary pieces. After every step it
checks the laws that hold for any dialogue:

- what the client sent, the server read: the same commands, in order, none lost or
  duplicated (RFC 5321 §4.1; RFC 2920 §3.1 keeps pipelined commands in order);
- every command the server reads gets exactly one reply, and in LMTP the end of a message
  one reply per accepted recipient (RFC 2033 §4.2); the client reads exactly the replies
  the server sent;
- when the network is quiet and nothing is owed, both sides agree on the state;
- a refused send changes nothing on the client (send() is atomic);
- buffers stay within their limits, and every reply the server suggests can be sent;
- the same client bytes, delivered whole to a fresh server answering the same replies,
  give the same events (any chunking gives the same events).
"""

from __future__ import annotations

import hypothesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Extensions,
    Greeting,
    InvalidCommand,
    InvalidMessage,
    Lhlo,
    LmtpDelivery,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Quit,
    RcptTo,
    Reply,
    StartTLS,
    State,
)
from sansio_smtp import strategies as s

_EXT = Extensions(
    {
        "PIPELINING": (),
        "8BITMIME": (),
        "SMTPUTF8": (),
        "CHUNKING": (),
        "DSN": (),
        "ENHANCEDSTATUSCODES": (),
        "SIZE": ("100000",),
        "STARTTLS": (),
        "AUTH": ("PLAIN", "LOGIN"),
    }
)
# The most a server buffers of an unfinished line (AUTH lines: RFC 4954 §4).
_MAX_BUFFERED = 12288
_OWES_REPLY = (Command, InvalidCommand, EndOfMessage, InvalidMessage)
# how much the network moves at once: a few octets, or all that is waiting
_PIECE = st.integers(1, 64) | st.just(1 << 20)


class Dialogue(RuleBasedStateMachine):
    """Both peers and the network between them."""

    @initialize(
        lmtp=st.sampled_from([False, False, True]),
        pipelining=st.booleans(),
        greeting=st.sampled_from([220] * 9 + [554]),
    )
    def start(self, lmtp: bool, pipelining: bool, greeting: int) -> None:
        ext = (
            _EXT if pipelining else Extensions({k: v for k, v in _EXT.items() if k != "PIPELINING"})
        )
        self.lmtp = lmtp
        self.greeting = greeting
        self.server = Connection(
            SERVER,
            Config(hostname="mx.example", extensions=ext, lmtp=lmtp, allow_plaintext_auth=True),
        )
        self.client = Connection(CLIENT, Config(lmtp=lmtp, allow_plaintext_auth=True))
        self.c2s = bytearray()  # written by the client, not yet read by the server
        self.s2c = bytearray()
        self.server_input: list[bytes] = []  # what the server was fed, in order
        self.answers: list[Reply] = []  # every reply the server sent, in order
        self.sent: list[Event] = []  # commands the client sent
        self.read: list[Event] = []  # commands (and refusals) the server read
        self.replies_read: list[Reply] = []
        self.server_events: list[Event] = []
        self.owed: Event | None = None
        self.s2c += self.server.send(Greeting(code=greeting, lines="mx.example ESMTP"))

    # ------------------------------------------------------------------ the peers

    def _client_send(self, event: Event) -> bool:
        client = self.client
        before = (client.state, client.pending, dict(client.extensions.items()))
        try:
            wire = client.send(event)
        except LocalProtocolError:
            # a refused send changes nothing (atomic send)
            assert (client.state, client.pending, dict(client.extensions.items())) == before
            return False
        except ValueError:
            return False  # a value the client cannot encode (e.g. UTF-8 without SMTPUTF8)
        self.c2s += wire
        if not isinstance(event, MessageData):
            self.sent.append(event)
        return True

    def _serve(self, data: st.DataObject | None) -> None:
        """Run the server until it needs data: answer what it owes with the default reply
        or, sometimes, a negative one."""
        server = self.server
        for _ in range(10_000):
            event = server.next_event()
            if event is NEED_DATA:
                buffered, _ = server.trailing_data
                assert len(buffered) <= _MAX_BUFFERED
                return
            if event is PAUSED:
                if server.state is State.TLS:
                    return  # the handshake rule completes it
                assert server.pending, "PAUSED though no reply is owed"
                owed = self.owed if self.owed is not None else server.pending[0]
                self.owed = None
                reply = server.default_reply(owed)
                negative = data is not None and data.draw(st.integers(0, 5), label="neg") == 0
                if negative and reply.code < 400 and not isinstance(owed, LmtpDelivery):
                    reply = data.draw(s.negative_replies(), label="negative reply")
                self.s2c += server.send(reply)  # every suggested reply can be sent
                self.answers.append(reply)
                continue
            assert isinstance(event, Event)
            self.server_events.append(event)
            hypothesis.event(f"server read {type(event).__name__}")
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, InvalidCommand) and event.command is not None:
                self.read.append(event.command)
            elif isinstance(event, Command):
                self.read.append(event)
            elif isinstance(event, (EndOfMessage, InvalidMessage)) and not (
                self.read and isinstance(self.read[-1], Bdat)
            ):
                # the end of DATA content is the client's EndOfMessage; after BDAT it is
                # the server's own note that the chunks are done (RFC 3030 §2)
                self.read.append(EndOfMessage())
            if isinstance(event, _OWES_REPLY):
                self.owed = event
        raise AssertionError("the server makes no progress")

    # ---------------------------------------------------------------------- rules

    @rule(data=st.data())
    def client_sends_a_command(self, data: st.DataObject) -> None:
        command = data.draw(s.commands(self.client.extensions or None), label="command")
        if not isinstance(command, Quit):  # client_quits ends sessions, late
            self._client_send(command)

    @rule(data=st.data())
    def client_takes_the_next_step(self, data: st.DataObject) -> None:
        """The usual order (RFC 5321 §3.3) from where the client is: HELLO, MAIL, RCPTs,
        DATA or BDAT. A step the client may not take now is refused and changes nothing."""
        ext = self.client.extensions or None
        state = self.client.state
        command: Event
        if state is State.CONNECTED:
            command = Lhlo(domain="c.example") if self.lmtp else Ehlo(domain="c.example")
        elif state is State.READY:
            command = data.draw(s.command_of_type(MailFrom, ext), label="MAIL")
        elif state is State.MAIL or (state is State.RCPT and data.draw(st.booleans())):
            command = data.draw(s.command_of_type(RcptTo, ext), label="RCPT")
        elif (
            state is State.RCPT
            and "CHUNKING" in self.client.extensions
            and data.draw(st.booleans())
        ):
            body = data.draw(st.binary(max_size=40), label="chunk")
            self.client_sends_a_chunk(body, data.draw(st.booleans(), label="last"))
            return
        elif state is State.RCPT:
            command = Data()
        elif state is State.DATA:
            self.client_sends_a_message(data.draw(s.bodies(max_tokens=10), label="body"))
            return
        else:
            return
        self._client_send(command)

    @rule(size=_PIECE, data=st.data())
    def network_runs_until_quiet(self, size: int, data: st.DataObject) -> None:
        """Both directions, in pieces of ``size``, until nothing is in flight."""
        for _ in range(1000):
            if self.c2s:
                self.network_delivers_to_server(size, data)
            elif self.s2c:
                self.network_delivers_to_client(size)
            else:
                return

    @precondition(lambda self: len(self.sent) > 12)
    @rule()
    def client_quits(self) -> None:
        self._client_send(Quit())

    @precondition(lambda self: "AUTH" in self.client.extensions)
    @rule(good=st.booleans(), initial=st.booleans())
    def client_authenticates(self, good: bool, initial: bool) -> None:
        token = b"\0alice\0" + (b"secret" if good else b"wrong")
        self._client_send(Auth(mechanism="PLAIN", initial_response=token if initial else None))

    @precondition(lambda self: self.client.state is State.AUTH and not self.client.pending)
    @rule(cancel=st.booleans())
    def client_answers_the_challenge(self, cancel: bool) -> None:
        self._client_send(AuthResponse(data=None if cancel else b"\0alice\0secret"))

    @precondition(lambda self: "STARTTLS" in self.client.extensions)
    @rule()
    def client_starts_tls(self) -> None:
        self._client_send(StartTLS())

    @precondition(lambda self: self.client.state is State.DATA and not self.client.pending)
    @rule(body=s.bodies(max_tokens=10))
    def client_sends_a_message(self, body: bytes) -> None:
        self._client_send(MessageData(data=body))
        self._client_send(EndOfMessage())

    @precondition(lambda self: "CHUNKING" in self.client.extensions)
    @rule(body=st.binary(max_size=40), last=st.booleans())
    def client_sends_a_chunk(self, body: bytes, last: bool) -> None:
        if self._client_send(Bdat(size=len(body), last=last)) and body:
            self._client_send(MessageData(data=body))

    @precondition(lambda self: bool(self.c2s))
    @rule(size=_PIECE, data=st.data())
    def network_delivers_to_server(self, size: int, data: st.DataObject) -> None:
        piece = bytes(self.c2s[:size])
        del self.c2s[:size]
        self.server_input.append(piece)
        self.server.receive_data(piece)
        self._serve(data)

    @precondition(lambda self: bool(self.s2c))
    @rule(size=_PIECE)
    def network_delivers_to_client(self, size: int) -> None:
        piece = bytes(self.s2c[:size])
        del self.s2c[:size]
        self.client.receive_data(piece)
        while True:
            event = self.client.next_event()
            if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
                return
            if isinstance(event, Reply):
                self.replies_read.append(event)

    @precondition(
        lambda self: (
            self.client.state is State.TLS
            and self.server.state is State.TLS
            and not self.c2s
            and not self.s2c
        )
    )
    @rule()
    def tls_handshake(self) -> None:
        # RFC 3207 §4.2: both forget what they knew; the server may speak again
        self.client.tls_established()
        self.server.tls_established()
        self.server_input.append(b"<TLS>")

    # ----------------------------------------------------------------- invariants

    @invariant()
    def nothing_lost_or_duplicated(self) -> None:
        # the server read a prefix of what the client sent, in order (RFC 2920 §3.1)
        if hasattr(self, "sent"):
            assert self.read == self.sent[: len(self.read)]

    @invariant()
    def the_client_reads_what_the_server_sent(self) -> None:
        if hasattr(self, "answers") and not self.s2c and self.client.state is not State.ERROR:
            # a 221/421 closes: replies after it are not read
            read = [(r.code, r.lines) for r in self.replies_read]
            sent = [(r.code, r.lines) for r in self.answers]  # the server adds enhanced codes
            assert read == sent[: len(read)]
            if self.client.state is not State.CLOSED:
                assert len(self.replies_read) == len(self.answers)

    @invariant()
    def quiet_network_means_agreement(self) -> None:
        if not hasattr(self, "server") or self.c2s or self.s2c:
            return
        client, server = self.client, self.server
        if server.state is State.CLOSED or client.state is State.CLOSED:
            return
        if not server.pending and not client.pending:
            assert client.state is server.state, (client.state, server.state)
            assert client.extensions == server.extensions

    def teardown(self) -> None:
        if not hasattr(self, "server_input"):
            return
        # the same bytes, whole, to a fresh server answering the same replies
        replay_events = _replay(
            self.server.config, self.greeting, self.server_input, list(self.answers)
        )
        whole, split = _merged(replay_events), _merged(self.server_events)
        for i, (a, b) in enumerate(zip(whole, split, strict=False)):
            assert a == b, (i, a, b)
        assert len(whole) == len(split), (whole[len(split) :], split[len(whole) :])


def _merged(events: list[Event]) -> list[Event]:
    """Adjacent MessageData joined (how content is cut depends on how it arrived), and
    ConnectionClosed once (a closed connection says so each time it is read)."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, ConnectionClosed) and ConnectionClosed() in out:
            continue
        if isinstance(event, MessageData) and out and isinstance(out[-1], MessageData):
            out[-1] = MessageData(data=bytes(out[-1].data) + bytes(event.data))
        else:
            out.append(event)
    return out


def _replay(
    config: Config, greeting: int, pieces: list[bytes], answers: list[Reply]
) -> list[Event]:
    server = Connection(SERVER, config)
    server.send(Greeting(code=greeting, lines="mx.example ESMTP"))
    events: list[Event] = []
    whole = [bytearray()]
    for piece in pieces:
        if piece == b"<TLS>":
            whole.append(bytearray())
        else:
            whole[-1] += piece
    for i, block in enumerate(whole):
        if i:
            if server.state is not State.TLS:
                return events
            server.tls_established()
        if block:
            server.receive_data(bytes(block))
        while True:
            event = server.next_event()
            if event is NEED_DATA:
                break
            if event is PAUSED:
                if server.state is State.TLS or not answers:
                    break
                server.send(answers.pop(0))
                continue
            assert isinstance(event, Event)
            events.append(event)
            if isinstance(event, ConnectionClosed):
                break
    return events


TestDialogue = Dialogue.TestCase
TestDialogue.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
