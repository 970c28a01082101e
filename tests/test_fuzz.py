"""Fuzz properties: arbitrary bytes, in arbitrary chunkings, after valid prefixes.

- A server that answers every command with its RFC default reply never raises,
  whatever it reads: bad input becomes InvalidCommand / InvalidMessage events (STYLE.md
  "Errors"; RFC 5321 §4.2.4 500/501/503 replies). The one exception is plaintext
  injected after STARTTLS (RFC 3207 §4.2, CVE-2011-0411), a RemoteProtocolError.
- A client reading arbitrary replies raises nothing but RemoteProtocolError, and is then
  in State.ERROR for good.
- Buffers stay bounded: a 100 MB line without a newline, in command mode or inside DATA,
  never accumulates (RFC 5321 §4.5.3.1.4, §4.5.3.1.6 limits), and is refused once.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Address,
    Auth,
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
    LineEndingPolicy,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    RcptTo,
    RemoteProtocolError,
    Reply,
    StartTLS,
    State,
)
from sansio_smtp import strategies as s

from .helpers import chunked, drain

# The most a server buffers of an unfinished command line: AUTH lines may be 12288 octets
# (RFC 4954 §4); other lines are dropped past Config.max_command_line.
MAX_BUFFERED_LINE = 12288

# ------------------------------------------------------------------------ fuzz input

_SERVER_TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b".\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
    b"EHLO c.example\r\n",
    b"HELO c.example\r\n",
    b"LHLO c.example\r\n",
    b"ehlo\r\n",
    b"MAIL FROM:<a@b.example>\r\n",
    b"MAIL FROM:<>\r\n",
    b"MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n",
    b"MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8\r\n",
    b'MAIL FROM:<"a b\\"c"@[IPv6:::1]> RET=FULL ENVID=x+2B\r\n',
    b"RCPT TO:<c@d.example>\r\n",
    b"RCPT TO:<Postmaster>\r\n",
    b"RCPT TO:<c@d.example> NOTIFY=NEVER ORCPT=rfc822;c@d.example\r\n",
    b"RCPT TO:<@x.example,@y.example:c@d.example>\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"BDAT 0 LAST\r\n",
    b"BDAT 3 LAST\r\nabc",
    b"BDAT 99999999999999999999\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"NOOP x\r\n",
    b"VRFY x\r\n",
    b"EXPN x\r\n",
    b"HELP\r\n",
    b"QUIT\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    b"AUTH LOGIN\r\n",
    b"*\r\n",
    b"MAIL FROM:<a@b.example> X-UNKNOWN=1\r\n",
    b"\x00\xff\xfe\x80\xc3",
    b"x" * 600,
    b"AUTH " + b"A" * 700,
    b"\r\n" * 5,
]

_CLIENT_TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"220 mx.example ESMTP\r\n",
    b"220-mx.example\r\n",
    b"250 OK\r\n",
    b"250-mx.example\r\n",
    b"250-PIPELINING\r\n",
    b"250 2.0.0 OK\r\n",
    b"250-2.0.0 a\r\n",
    b"251 forwarded\r\n",
    b"252 maybe\r\n",
    b"354 go ahead\r\n",
    b"334 \r\n",
    b"334 VXNlcm5hbWU6\r\n",
    b"221 2.0.0 bye\r\n",
    b"421 4.4.2 closing\r\n",
    b"450 4.2.0 busy\r\n",
    b"550 5.1.1 no such user\r\n",
    b"554 no service\r\n",
    b"599 x\r\n",
    b"199 x\r\n",
    b"250",
    b"25",
    b"250x\r\n",
    b"\x00\xff\xfe\x80\xc3",
    b"2" * 600,
]


def fuzz_bytes(tokens: list[bytes]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and concatenations of protocol fragments and random bytes (which
    reach far deeper states than uniform noise does)."""
    piece = st.sampled_from(tokens) | st.binary(max_size=12)
    return st.binary(max_size=300) | st.lists(piece, max_size=30).map(b"".join)


# ----------------------------------------------------------------------------- server


def server_configs() -> st.SearchStrategy[Config]:
    """Server configurations: any advertised extensions except STARTTLS (see
    test_server_starttls_fuzz), every line-ending policy, small and absent limits, LMTP,
    the pipelining and TLS policies."""
    known = tuple(k for k in s.KNOWN_EXTENSIONS if k != "STARTTLS")
    return st.builds(
        Config,
        extensions=s.extensions(known=known),
        line_endings=st.sampled_from(LineEndingPolicy),
        max_message_size=st.none() | st.integers(1, 200),
        max_data_line=st.sampled_from([None, 1000, 20]),
        max_data_chunk=st.integers(5, 64) | st.just(Config().max_data_chunk),
        max_recipients=st.just(100),
        # policies that refuse most of a dialogue are drawn less often, so that the
        # valid prefixes usually reach the deeper states
        lmtp=_RARELY,
        require_tls=_RARELY,
        reject_improper_pipelining=_RARELY,
        allow_plaintext_auth=st.booleans(),
    )


_RARELY = st.sampled_from([False, False, False, True])


_OWES_REPLY = (Command, InvalidCommand, EndOfMessage, InvalidMessage)


class Server:
    """A server that answers everything with Connection.default_reply: the RFC default
    for a command, the hint of an InvalidCommand / InvalidMessage. It answers when the
    connection pauses for a reply, so BDAT chunks are read before their reply (RFC 3030
    §2) and LMTP's per-recipient replies are all given (RFC 2033 §4.2)."""

    def __init__(
        self, config: Config, greeting: Greeting, tls: bool = False, challenge: bool = False
    ) -> None:
        self.conn = Connection(SERVER, config, tls=tls)
        self.conn.send(greeting)
        self.events: list[Event] = []
        self.started_tls = False
        self._owed: Event | None = None
        # challenge: answer AUTH with a 334 challenge (RFC 4954 §4), so the lines after it
        # are read inside the exchange; the response then gets its default (535).
        self._challenge = challenge

    def feed(self, data: bytes, sizes: list[int], close: bool = False) -> None:
        for piece in chunked(data, sizes):
            self.conn.receive_data(piece)
            self.serve()
        if close:
            self.conn.receive_data(b"")
            self.serve()

    def serve(self) -> None:
        conn = self.conn
        for _ in range(100_000):  # each round consumes input or answers; never loops
            event = conn.next_event()
            if event is NEED_DATA:
                data, _ = conn.trailing_data
                limit = 8 if conn.state is State.DATA else MAX_BUFFERED_LINE
                assert len(data) <= limit, (conn.state, len(data))
                return
            if event is PAUSED:
                if conn.state is State.TLS:
                    self.started_tls = True
                    conn.tls_established()  # the adapter's handshake, done at once
                    continue
                assert conn.pending, "PAUSED though no reply is owed"
                owed = self._owed if self._owed is not None else conn.pending[0]
                self._owed = None
                reply = conn.default_reply(owed)
                if isinstance(owed, (InvalidCommand, InvalidMessage)):
                    assert reply == owed.reply_hint
                elif self._challenge and isinstance(owed, Auth):
                    reply = Reply.auth_challenge(b"Username:")
                conn.send(reply)  # every suggested reply can be sent (STYLE.md "Errors")
                continue
            assert isinstance(event, Event)
            self.events.append(event)
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, _OWES_REPLY):
                self._owed = event
        raise AssertionError("the server makes no progress")


def _prefix(config: Config, depth: int) -> bytes:
    """Valid client input that takes a default-replying server to ever deeper states:
    nothing, HELLO, a transaction, inside DATA, inside a BDAT chunk."""
    hello = b"LHLO c.example\r\n" if config.lmtp else b"EHLO c.example\r\n"
    steps = [
        hello,
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n",
        b"DATA\r\n",
    ]
    if depth == 4:
        steps[2] = b"BDAT 1000 LAST\r\n"
    return b"".join(steps[: min(depth, 3)])


@given(
    config=server_configs(),
    greeting=s.greetings(codes=(220,) * 8 + (554, 421)),
    depth=st.integers(0, 4),
    data=fuzz_bytes(_SERVER_TOKENS),
    sizes=s.chunkings(max_size=64),
    close=st.booleans(),
    tls=st.booleans(),
)
def test_server_never_raises(
    config: Config,
    greeting: Greeting,
    depth: int,
    data: bytes,
    sizes: list[int],
    close: bool,
    tls: bool,
) -> None:
    """Law: for any bytes, after any valid prefix (greeting, EHLO/LHLO, MAIL+RCPT, DATA
    or BDAT), in any chunking, a server answering with default replies raises nothing:
    bad commands are InvalidCommand (RFC 5321 §4.2.4: 500, 501, 503, 504), bad content
    InvalidMessage; its buffer stays bounded; it only pauses when it owes a reply; and
    after every answer nothing is pending."""
    server = Server(config, greeting, tls=tls)
    wire = _prefix(config, depth) + data
    note(f"wire={wire!r}")
    server.feed(wire, sizes, close)
    conn = server.conn
    event(f"reached {sorted({type(e).__name__ for e in server.events})}"[:60])
    assert conn.state is not State.ERROR
    if conn.state is not State.CLOSED:
        # a reply is owed only while a BDAT chunk is still arriving (RFC 3030 §2)
        assert not conn.pending or isinstance(conn.pending[-1], Bdat)
    if close:
        assert server.events[-1:] == [ConnectionClosed()]


@given(
    config=server_configs(),
    before=fuzz_bytes(_SERVER_TOKENS),
    after=fuzz_bytes([*_SERVER_TOKENS, b"STARTTLS\r\n", b"EHLO x\r\n"]),
    sizes=s.chunkings(max_size=64),
)
def test_server_starttls_fuzz(
    config: Config, before: bytes, after: bytes, sizes: list[int]
) -> None:
    """Law: with STARTTLS advertised, the only exception a default-replying server raises
    is RemoteProtocolError for plaintext received after its STARTTLS 220 (RFC 3207 §4.2,
    CVE-2011-0411), and the connection is then in State.ERROR."""
    ext = Extensions([*config.extensions.items(), ("STARTTLS", ())])
    config = Config(extensions=ext, lmtp=config.lmtp, line_endings=config.line_endings)
    server = Server(config, Greeting(lines="mx.example ESMTP"))
    try:
        server.feed(b"EHLO c.example\r\n" + before + b"STARTTLS\r\n" + after, sizes)
    except RemoteProtocolError:
        event("plaintext after STARTTLS")
        assert server.conn.state is State.ERROR
        assert any(isinstance(e, StartTLS) for e in server.events)
        with pytest.raises(RemoteProtocolError):
            server.conn.next_event()


# ----------------------------------------------------------------------------- client


def _client_at(depth: int, ext: Extensions) -> Connection:
    """A client at a valid point of a dialogue with a default-replying server:
    0: before the greeting; 1: EHLO pending; 2: after EHLO with NOOP pending;
    3: MAIL, RCPT, DATA pipelined (PIPELINING advertised); 4: inside DATA."""
    client = Connection(CLIENT)
    server = Connection(SERVER, Config(extensions=ext))
    greeting = server.send(Greeting(lines="mx.example ESMTP"))
    if depth == 0:
        return client
    client.receive_data(greeting)
    drain(client)

    def exchange(*commands: Event) -> None:
        server.receive_data(b"".join(client.send(c) for c in commands))
        for _ in commands:
            (event,) = drain(server)
            client.receive_data(server.send(server.default_reply(event)))
            drain(client)

    if depth == 1:
        client.send(Ehlo(domain="c.example"))
        return client
    exchange(Ehlo(domain="c.example"))
    if depth == 2:
        client.send(Noop())
        return client
    group = [MailFrom(reverse_path="a@b.example"), RcptTo(forward_path="c@d.example"), Data()]
    if depth == 3:
        for command in group:
            client.send(command)
        return client
    exchange(*group)
    assert client.state is State.DATA
    client.send(MessageData(data=b"Subject: x\r\n\r\nhello\r\n"))
    return client


@given(
    depth=st.integers(0, 4),
    data=fuzz_bytes(_CLIENT_TOKENS),
    sizes=s.chunkings(max_size=64),
    close=st.booleans(),
)
def test_client_only_raises_remote_protocol_error(
    depth: int, data: bytes, sizes: list[int], close: bool
) -> None:
    """Law: for any bytes a server may send, at any point of a dialogue (before the
    greeting, commands pending, pipelined, inside DATA), in any chunking, a client's
    next_event returns events or raises RemoteProtocolError (a broken reply: RFC 5321
    §4.2 syntax, §4.5.3.1.5 length, a reply to no command, a code that cannot answer the
    command); after one the client is in State.ERROR and stays there."""
    client = _client_at(depth, Extensions({"PIPELINING": ()}))
    pieces = chunked(data, sizes) + ([b""] if close else [])
    try:
        for piece in pieces:
            client.receive_data(piece)
            drain(client)
            buffered, _ = client.trailing_data
            assert len(buffered) < Config().max_reply_line
    except RemoteProtocolError:
        event("RemoteProtocolError")
        assert client.state is State.ERROR
        with pytest.raises(RemoteProtocolError):
            client.next_event()
        with pytest.raises(LocalProtocolError):
            client.send(Noop())
        return
    assert client.state is not State.ERROR


# ----------------------------------------------------------------- bounded buffers

HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)  # one object, fed again and again: the test holds 64 KiB
TIME_LIMIT = 30.0  # seconds; linear code needs about one


def _feed_long_line(conn: Connection, bound: int) -> list[Event]:
    """Feed 100 MB of one line (no LF) in 64 KiB chunks, draining after each; check the
    buffer after every chunk and the elapsed time. Returns the events seen."""
    events: list[Event] = []
    start = time.monotonic()
    for _ in range(HUNDRED_MB // len(CHUNK)):
        conn.receive_data(CHUNK)
        events += drain(conn)
        assert len(conn.trailing_data[0]) <= bound
        assert time.monotonic() - start < TIME_LIMIT, "not linear in the input"
    return events


def test_server_100mb_command_line_is_bounded() -> None:
    """Law: a command line longer than the limit (RFC 5321 §4.5.3.1.4: 512 octets) is
    dropped as it arrives - the buffer never holds more than the limit - and refused once
    with 500 5.5.2 when its end arrives (§4.5.3.1.10 "500 Line too long"); the next
    command is read normally."""
    server = Server(Config(), Greeting(lines="mx.example ESMTP"))
    conn = server.conn
    events = _feed_long_line(conn, bound=4096)
    assert events == []
    conn.receive_data(b"\r\nNOOP\r\n")
    first = conn.next_event()
    assert isinstance(first, InvalidCommand)
    assert first.reply_hint.code == 500
    assert len(first.line) <= 4096
    conn.send(conn.default_reply(first))
    assert conn.next_event() == Noop()


def test_server_100mb_data_line_is_bounded() -> None:
    """Law: inside DATA a line over max_data_line (RFC 5321 §4.5.3.1.6: 1000 octets) does
    not accumulate either; the content is consumed up to <CRLF>.<CRLF> and the message
    ends as InvalidMessage with 500 5.5.2 (§4.5.3.1.10), after which the session goes on
    in State.READY."""
    server = Server(Config(), Greeting(lines="mx.example ESMTP"))
    conn = server.conn
    server.feed(
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n", [1 << 30]
    )
    assert conn.state is State.DATA
    events = _feed_long_line(conn, bound=4096)
    assert sum(len(e.data) for e in events if isinstance(e, MessageData)) <= 4096
    assert not any(isinstance(e, (EndOfMessage, InvalidMessage)) for e in events)
    conn.receive_data(b"\r\n.\r\n")
    (end,) = drain(conn)
    assert isinstance(end, InvalidMessage)
    assert end.reply_hint.code == 500
    conn.send(conn.default_reply(end))
    assert conn.state == State.READY  # type: ignore[comparison-overlap]  # mypy narrowed
    conn.receive_data(b"NOOP\r\n")
    assert conn.next_event() == Noop()


def test_client_100mb_reply_line_is_refused_early() -> None:
    """Law: a reply line longer than 512 octets (RFC 5321 §4.5.3.1.5) is a
    RemoteProtocolError as soon as the limit is passed, not after buffering it all."""
    client = _client_at(2, Extensions())
    client.receive_data(CHUNK)
    with pytest.raises(RemoteProtocolError):
        drain(client)
    assert client.state is State.ERROR


# ------------------------------------------------------------- send: only refusals


# any code point, lone surrogates (which Hypothesis's text() leaves out) included
_ANY_CHAR = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters(
    min_codepoint=0x20
)


@given(text=st.text(_ANY_CHAR | st.characters(), max_size=20))
def test_server_send_raises_only_local_protocol_error(text: str) -> None:
    """Law: server.send() returns bytes or raises LocalProtocolError for a Reply with
    any str text (lone surrogates, controls, non-ASCII): only valid UTF-8 text goes on
    the wire (RFC 5321 §4.2 textstring, RFC 6531 §3.7.4.2). Any other exception escaping
    the core is a bug (STYLE.md "Errors")."""
    server = Connection(SERVER)
    server.send(Greeting(lines="mx.example ESMTP"))
    server.receive_data(b"NOOP\r\n")
    assert server.next_event() == Noop()  # awaits its reply
    with contextlib.suppress(LocalProtocolError):
        server.send(Reply(code=250, lines=text))


@given(local=st.text(_ANY_CHAR, min_size=1, max_size=10))
def test_client_send_raises_only_local_protocol_error(local: str) -> None:
    """Law: client.send() returns bytes or raises LocalProtocolError for a MAIL whose
    address has any local part Address accepts (lone surrogates included) under
    SMTPUTF8: only valid UTF-8 goes on the wire (RFC 6531 §3.3)."""
    client = _client_at(2, Extensions({"SMTPUTF8": ()}))
    client.receive_data(b"250 OK\r\n")
    drain(client)
    try:
        address = Address(local, "example.org")
    except ValueError:
        return  # refused on construction: fine
    with contextlib.suppress(LocalProtocolError):
        client.send(MailFrom(reverse_path=address, params={"SMTPUTF8": None}))


# --------------------------------------------------- suggested replies, re-chunking


def rich_server_configs() -> st.SearchStrategy[Config]:
    """Servers that advertise every extension whose parameters a peer can quote back
    (SIZE, DSN, BODY, AUTH=, MT-PRIORITY, BY, SMTPUTF8, CHUNKING...) plus a random set,
    SMTP and LMTP, with small limits."""
    every = {
        "PIPELINING": (),
        "SIZE": (),
        "8BITMIME": (),
        "BINARYMIME": (),
        "SMTPUTF8": (),
        "DSN": (),
        "CHUNKING": (),
        "ENHANCEDSTATUSCODES": (),
        "AUTH": ("PLAIN", "LOGIN"),
        "MT-PRIORITY": (),
        "DELIVERBY": (),
        "REQUIRETLS": (),
    }
    return st.builds(
        lambda extra, **kw: Config(extensions={**dict(extra.items()), **every}, **kw),
        s.extensions(known=tuple(k for k in s.KNOWN_EXTENSIONS if k != "STARTTLS")),
        lmtp=st.booleans(),
        line_endings=st.sampled_from(LineEndingPolicy),
        max_message_size=st.none() | st.integers(1, 200),
        max_data_line=st.sampled_from([None, 1000, 20]),
        allow_plaintext_auth=st.just(True),
    )


def _hostile_input() -> st.SearchStrategy[bytes]:
    piece = s.hostile_lines() | st.sampled_from(_SERVER_TOKENS) | st.binary(max_size=12)
    return st.lists(piece, min_size=1, max_size=12).map(b"".join)


@given(
    config=rich_server_configs(),
    depth=st.integers(0, 4),
    data=_hostile_input(),
    sizes=s.chunkings(max_size=64),
    tls=st.booleans(),
    challenge=st.booleans(),
)
def test_every_suggested_reply_can_be_sent(
    config: Config, depth: int, data: bytes, sizes: list[int], tls: bool, challenge: bool
) -> None:
    """Law (issue 10 item 13; STYLE.md "Errors"): for any input, in any chunking, in any
    state reached (before HELLO, in a transaction, in DATA or a BDAT chunk, inside an AUTH
    exchange, SMTP and LMTP), every InvalidCommand / InvalidMessage reply_hint and every
    default_reply(event) is accepted by server.send(): peer text quoted in a reply is
    escaped and cut so that the line stays within 512 octets (RFC 5321 §4.5.3.1.5)."""
    server = Server(config, Greeting(lines="mx.example ESMTP"), tls=tls, challenge=challenge)
    wire = _prefix(config, depth) + data
    note(f"wire={wire!r}")
    server.feed(wire, sizes)  # Server.serve sends each default_reply; send() must accept it
    assert server.conn.state is not State.ERROR
    event(f"refused {sum(isinstance(e, InvalidCommand) for e in server.events)}"[:60])


def _normalized(events: list[Event]) -> list[Event]:
    """Events with adjacent MessageData merged, and the content of a message that is
    refused (InvalidMessage) or not finished (the input ends or the peer closes) left
    out: how much of it was streamed before the reader found the problem depends on
    where the reads were split; everything else must not."""
    out: list[Event] = []
    if ConnectionClosed() in events:  # the session is over (a read after it repeats it)
        events = events[: events.index(ConnectionClosed())]
    for ev in [*events, ConnectionClosed()]:
        if isinstance(ev, MessageData) and out and isinstance(out[-1], MessageData):
            out[-1] = MessageData(data=bytes(out[-1].data) + bytes(ev.data))
        elif isinstance(ev, MessageData):
            out.append(MessageData(data=bytes(ev.data)))
        else:
            if isinstance(ev, (InvalidMessage, ConnectionClosed)):
                while out and isinstance(out[-1], MessageData):
                    out.pop()
            out.append(ev)
    return out


_AUTH_TOKENS = [
    b"AUTH LOGIN\r\n",
    b"AUTH PLAIN\r\n",
    b"dXNlcg==\r\n",
    b"*\r\n",
    b"!!\r\n",
    b"A" * 600,
    b"A" * 12300,
    b"AUTH PLAIN " + b"A" * 12300 + b"\r\n",
    b"NOOP " + b"x" * 520 + b"\r\n",
]


@settings(deadline=None)  # feeds kilobytes byte by byte: slow on a loaded machine
@given(
    config=rich_server_configs(),
    depth=st.integers(0, 4),
    data=st.lists(
        s.hostile_lines() | st.sampled_from([*_SERVER_TOKENS, *_AUTH_TOKENS]), max_size=12
    ).map(b"".join),
    sizes=s.chunkings(max_size=700),
    challenge=st.booleans(),
    close=st.booleans(),
)
def test_server_events_do_not_depend_on_chunking(
    config: Config,
    depth: int,
    data: bytes,
    sizes: list[int],
    challenge: bool,
    close: bool,
) -> None:
    """Law (issue 10 item 14): the same server input gives the same events however it is
    split into reads - over-long lines (RFC 5321 §4.5.3.1.4; 12288 octets in AUTH, RFC
    4954 §4), AUTH exchanges, DATA and BDAT content (up to how much of a refused message
    was streamed before its refusal). Detecting improper pipelining (RFC 2920 §3.1)
    depends on what arrived together, so that policy is off here."""
    wire = _prefix(config, depth) + data
    note(f"wire={wire!r}")
    results = []
    for split in ([1 << 30], sizes):
        server = Server(config, Greeting(lines="mx.example ESMTP"), challenge=challenge)
        server.feed(wire, split, close)
        results.append(_normalized(server.events))
    assert results[0] == results[1]
