"""Round-trip properties: what one side writes, the other reads as equal events, whatever
the chunking of the byte stream; and both sides agree on the session state.

Each property's docstring names the law and the RFC rule behind it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    TRANSITIONS,
    Address,
    Command,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    EnhancedStatusCode,
    Event,
    Expn,
    Extensions,
    Greeting,
    Helo,
    Help,
    InvalidCommand,
    InvalidMessage,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    State,
    Vrfy,
)
from sansio_smtp import strategies as s

from .helpers import chunked, drain

_LOOKS_ENHANCED = re.compile(r"[245]\.[0-9]+\.[0-9]+(?: |\Z)")

# ----------------------------------------------------------------------------- model


def expected_content(body: bytes) -> bytes:
    """What a server must deliver for ``body`` sent by a client: bare CR and bare LF made
    CRLF (RFC 5321 §2.3.8, LineEndingPolicy.NORMALIZE), and a final CRLF added to a
    non-empty body that lacks one (RFC 5321 §4.1.1.4: the content ends with CRLF before
    the terminating ".")."""
    text = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


def stuff(content: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency, sender side: a line of ``content`` (CRLF lines)
    that starts with "." gets one more "."."""
    assert not content or content.endswith(b"\r\n")
    lines = content.split(b"\r\n")[:-1]
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def unstuff(wire: bytes) -> bytes:
    """RFC 5321 §4.5.2, receiver side: a line that starts with "." loses that "."."""
    assert not wire or wire.endswith(b"\r\n")
    lines = wire.split(b"\r\n")[:-1]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


# ----------------------------------------------------------------------- in-memory link


def as_written(server: Connection, reply: Reply | Greeting) -> Reply | Greeting:
    """The reply ``server`` puts on the wire for ``reply``: with ENHANCEDSTATUSCODES
    advertised, a 2xx/4xx/5xx reply without an enhanced code gets class.0.0, except the
    greeting and the replies to EHLO/HELO (RFC 2034 §3, RFC 3463 §3.1)."""
    if (
        isinstance(reply, Reply)
        and reply.enhanced is None
        and reply.code // 100 in (2, 4, 5)
        and "ENHANCEDSTATUSCODES" in server.extensions
        and not (server.pending and isinstance(server.pending[0], (Ehlo, Helo)))
    ):
        return Reply(code=reply.code, lines=reply.lines, enhanced=f"{reply.code // 100}.0.0")
    return reply


def seven_bit(body: bytes) -> bytes:
    return bytes(b & 0x7F for b in body)


def eight_bit_declared(mail: MailFrom) -> bool:
    """RFC 6152 §3 / RFC 6531 §3.4: 8-bit content only after BODY=8BITMIME or SMTPUTF8."""
    return "SMTPUTF8" in mail.params or (mail.params.get("BODY") or "").upper() == "8BITMIME"


def needs_reply(event: Event) -> bool:
    return isinstance(event, (Command, InvalidCommand, EndOfMessage, InvalidMessage))


class Link:
    """A client and a server joined by two byte pipes, each delivering in the given
    chunk sizes. The server answers every event that needs a reply as soon as it reads
    it, with ``answer(event)`` (its default reply unless told otherwise), so a pipelined
    group is read from one buffer, command by command."""

    def __init__(
        self,
        server_config: Config | None = None,
        client_config: Config | None = None,
        c2s: Sequence[int] = (1 << 30,),
        s2c: Sequence[int] = (1 << 30,),
        answer: Callable[[Connection, Event], Reply] | None = None,
    ) -> None:
        self.client = Connection(CLIENT, client_config)
        self.server = Connection(SERVER, server_config)
        self.c2s = list(c2s)
        self.s2c = list(s2c)
        self.answer = answer or (lambda server, event: server.default_reply(event))
        self.c2s_wire = bytearray()
        self.s2c_wire = bytearray()
        self.server_got: list[Event] = []
        self.client_got: list[Event] = []
        self.server_sent: list[Event] = []
        self.answers: list[tuple[Event, Reply]] = []  # what the server answered, and how

    def greet(self, greeting: Greeting) -> None:
        self._server_sends(greeting)

    def _server_sends(self, event: Reply | Greeting) -> None:
        self.server_sent.append(as_written(self.server, event))
        data = self.server.send(event)
        self.s2c_wire += data
        for piece in chunked(data, self.s2c):
            self.client.receive_data(piece)
            self.client_got.extend(drain(self.client))

    def client_sends(self, *events: Event) -> bytes:
        """The client sends ``events`` back to back (a pipelined group, or content),
        then the bytes travel to the server; returns those bytes."""
        data = b"".join(self.client.send(event) for event in events)
        self.c2s_wire += data
        for piece in chunked(data, self.c2s):
            self.server.receive_data(piece)
            self._serve()
        return data

    def _serve(self) -> None:
        while True:
            event = self.server.next_event()
            if event is NEED_DATA:
                return
            assert event is not PAUSED, "server paused with every command answered"
            assert isinstance(event, Event)
            self.server_got.append(event)
            if isinstance(event, ConnectionClosed):
                return
            if needs_reply(event):
                reply = self.answer(self.server, event)
                self.answers.append((event, reply))
                self._server_sends(reply)


def replies_read(link: Link) -> list[Event]:
    """What the client read, without the ConnectionClosed it reports once the session is
    over (after a 421 or the reply to QUIT, RFC 5321 §3.8, §4.1.1.10)."""
    events = link.client_got
    if events[-1:] == [ConnectionClosed()]:
        assert link.client.state is State.CLOSED
        events = events[:-1]
    return events


def server_commands(events: Sequence[Event]) -> list[Event]:
    # ConnectionClosed: a server whose QUIT was answered reports the end of the session
    return [e for e in events if not isinstance(e, (MessageData, ConnectionClosed))]


def content(events: Sequence[Event]) -> bytes:
    return b"".join(bytes(e.data) for e in events if isinstance(e, MessageData))


GREETING = Greeting(code=220, lines="mx.example.org ESMTP")

# ----------------------------------------------------------------- client -> server


_ANYTIME = st.lists(s.anytime_commands(), max_size=2)


@st.composite
def transactions(draw: st.DrawFn, ext: Extensions) -> list[tuple[Event, ...]]:
    """A legal command sequence after EHLO, as groups sent back to back (RFC 2920 groups
    when PIPELINING is advertised, single commands otherwise): transactions of MAIL,
    RCPTs, DATA + body or RSET, with commands valid at any time in between. Parameters
    are those legal under the advertised ``ext``; 8-bit content only when declared."""
    pipelining = "PIPELINING" in ext
    groups: list[tuple[Event, ...]] = []
    for _ in range(draw(st.integers(0, 2))):
        groups += [(c,) for c in draw(_ANYTIME)]
        mail = s.draw_mail_from(draw, ext)
        utf8 = "SMTPUTF8" in mail.params
        rcpts = [s.draw_rcpt_to(draw, ext, utf8) for _ in range(draw(st.integers(1, 3)))]
        end: Event = draw(st.sampled_from((Data(), Rset())))
        cmds = [mail, *rcpts, end]
        if pipelining:
            cut = draw(st.integers(1, len(cmds)))
            groups += [tuple(cmds[:cut]), tuple(cmds[cut:])] if cut < len(cmds) else [tuple(cmds)]
        else:
            groups += [(c,) for c in cmds]
        if isinstance(end, Data):
            body = draw(s.bodies(max_tokens=10))
            if not eight_bit_declared(mail):
                body = seven_bit(body)
            sizes = draw(s.chunkings())
            pieces: list[Event] = [MessageData(data=p) for p in chunked(body, sizes)]
            groups.append((*pieces, EndOfMessage()))
    if draw(st.booleans()):
        groups.append((Quit(),))
    return [g for g in groups if g]


@given(
    ext=s.extensions(),
    ehlo=s.ehlos(),
    data=st.data(),
    c2s=s.chunkings(),
    s2c=s.chunkings(),
)
def test_client_to_server_events_roundtrip(
    ext: Extensions, ehlo: Ehlo, data: st.DataObject, c2s: list[int], s2c: list[int]
) -> None:
    """Law: read(write(commands)) == commands. For any legal dialogue (EHLO, MAIL, RCPTs,
    DATA + content or RSET, NOOP/VRFY/EXPN/HELP/RSET in between, QUIT; pipelined when
    PIPELINING is advertised, RFC 2920) the server reads exactly the command events the
    client sent (RFC 5321 §4.1.1, §4.1.2 grammar), and the content of each message as
    expected_content(body) (RFC 5321 §4.5.2), whatever the TCP chunking. The client reads
    every reply the server wrote as an equal Reply."""
    link = Link(Config(extensions=ext), c2s=c2s, s2c=s2c)
    link.greet(GREETING)
    sent: list[Event] = []
    link.client_sends(ehlo)
    sent.append(ehlo)
    bodies_sent: list[bytes] = []
    for group in data.draw(transactions(link.client.extensions)):
        link.client_sends(*group)
        for event in group:
            if isinstance(event, MessageData):
                continue
            sent.append(event)
        if isinstance(group[-1], EndOfMessage):
            bodies_sent.append(b"".join(bytes(e.data) for e in group if isinstance(e, MessageData)))
        # checked after each group: a misread command would derail the rest of the dialogue
        assert server_commands(link.server_got) == sent
    # the content of each message, in order
    got_bodies: list[bytes] = []
    current: list[Event] = []
    for event in link.server_got:
        if isinstance(event, MessageData):
            current.append(event)
        elif isinstance(event, EndOfMessage):
            got_bodies.append(content(current))
            current = []
    assert got_bodies == [expected_content(b) for b in bodies_sent]
    assert replies_read(link) == link.server_sent
    assert link.client.pending == link.server.pending == ()
    assert link.client.state == link.server.state


@given(
    text=s.string_args(edge_spaces=True), which=st.sampled_from(["VRFY", "EXPN", "HELP", "NOOP"])
)
def test_string_argument_roundtrip(text: str, which: str) -> None:
    """Law: read(write(cmd)) == cmd for VRFY/EXPN/HELP/NOOP with any argument the writer
    accepts (RFC 5321 §4.1.1.6-9; the argument is a String, §4.1.2). An argument the
    reader would change (leading/trailing spaces) must be refused by the writer instead."""
    event: Event
    if which == "VRFY":
        event = Vrfy(text=text)
    elif which == "EXPN":
        event = Expn(text=text)
    elif which == "HELP":
        event = Help(topic=text)
    else:
        event = Noop(text=text)
    link = Link()
    link.greet(GREETING)
    try:
        link.client_sends(event)
    except LocalProtocolError:
        return  # refusing is fine
    assert link.server_got == [event]


# ----------------------------------------------------------------- server -> client


def _no_answer(server: Connection, event: Event) -> Reply:
    raise AssertionError(f"the test answers {event!r} itself")


def _client_awaiting(command: Event, ext: Extensions | None = None) -> Link:
    """A link ready for the client to send ``command``: greeted, after EHLO (and MAIL,
    RCPT for DATA). From here on the test sends and answers by hand."""
    link = Link(Config(extensions=ext or {}))
    link.greet(GREETING)
    link.client_sends(Ehlo(domain="client.example"))
    if isinstance(command, Data):
        link.client_sends(MailFrom(reverse_path="a@example.org"))
        link.client_sends(RcptTo(forward_path="b@example.org"))
    link.answer = _no_answer
    return link


def _reply_via(link: Link, command: Event, reply: Reply, s2c: list[int]) -> list[Event]:
    wire = link.client.send(command)
    link.server.receive_data(wire)
    (got,) = drain(link.server)
    assert got == command
    data = link.server.send(reply)
    events: list[Event] = []
    for piece in chunked(data, s2c):
        link.client.receive_data(piece)
        events += drain(link.client)
    if events[-1:] == [ConnectionClosed()]:  # after a 421 (RFC 5321 §3.8)
        assert reply.code == 421 and link.client.state is State.CLOSED
        events.pop()
    return events


@given(reply=s.replies(codes=s.reply_codes(first=(2, 4, 5))), s2c=s.chunkings())
def test_reply_roundtrip(reply: Reply, s2c: list[int]) -> None:
    """Law: client.read(server.write(reply)) == reply: code, every line of a multi-line
    reply (RFC 5321 §4.2.1), and the enhanced status code (RFC 2034 §4, RFC 3463 §2),
    whatever the chunking."""
    link = _client_awaiting(Noop())
    assert _reply_via(link, Noop(), reply, s2c) == [reply]
    assert link.client.state == link.server.state


@given(reply=s.replies(codes=st.just(354), enhanced=False), s2c=s.chunkings())
def test_354_reply_roundtrip(reply: Reply, s2c: list[int]) -> None:
    """Law: client.read(server.write(reply)) == reply for DATA's intermediate reply 354
    (RFC 5321 §4.3.2, the only 3xx a core command gets); both sides then are in DATA."""
    link = _client_awaiting(Data())
    assert _reply_via(link, Data(), reply, s2c) == [reply]
    assert link.client.state is link.server.state is State.DATA


@given(
    code=s.reply_codes(first=(2, 4, 5)) | st.just(354),
    enhanced=st.none()
    | st.builds(
        EnhancedStatusCode, st.sampled_from([2, 4, 5]), st.integers(0, 9), st.integers(0, 9)
    ),
    lines=st.lists(s.reply_texts(), min_size=1, max_size=3),
    s2c=s.chunkings(),
)
def test_any_reply_send_accepts_roundtrips(
    code: int, enhanced: EnhancedStatusCode | None, lines: list[str], s2c: list[int]
) -> None:
    """Law: a Reply that can be built and that server.send() accepts is read back equal
    by the client (or else it must be refused). Here the enhanced code's class may differ
    from the reply code's first digit, which RFC 3463 §2 / RFC 2034 §4 do not allow and
    the client's reader does not parse as an enhanced code. (As in s.replies, a first
    line that itself reads as an enhanced code is avoided when there is none.)"""
    if enhanced is None and _LOOKS_ENHANCED.match(lines[0]):
        lines[0] = "x" + lines[0]
    try:
        reply = Reply(code=code, lines=tuple(lines), enhanced=enhanced)
    except ValueError:
        return  # refused on construction: fine
    command: Event = Data() if code == 354 else Noop()
    link = _client_awaiting(command)
    wire = link.client.send(command)
    link.server.receive_data(wire)
    assert drain(link.server) == [command]
    try:
        data = link.server.send(reply)
    except LocalProtocolError:
        return  # refused on send: fine
    got: list[Event] = []
    for piece in chunked(data, s2c):
        link.client.receive_data(piece)
        got += drain(link.client)
    assert [e for e in got if e != ConnectionClosed()] == [reply]


@given(
    first=s.replies(codes=st.just(421) | s.reply_codes(first=(2, 4, 5))),
    rest=st.lists(s.replies(codes=s.reply_codes(first=(2, 4, 5)), max_lines=3), max_size=4),
    s2c=s.chunkings(),
)
def test_pipelined_replies_roundtrip(first: Reply, rest: list[Reply], s2c: list[int]) -> None:
    """Law: a stream of replies to a pipelined group (RFC 2920 §3.1) is read as the same
    replies in order, whatever the chunking splits, including splits between replies;
    afterwards both sides agree on the state and nothing is pending on either side (a 421
    closes the session, RFC 5321 §3.8: no reply will come for the rest of the group)."""
    link = Link(Config(extensions={"PIPELINING": ()}), s2c=s2c)
    link.greet(GREETING)
    link.client_sends(Ehlo(domain="client.example"))
    group: list[Event] = [MailFrom(reverse_path="a@example.org")]
    group += [RcptTo(forward_path=f"r{i}@example.org") for i in range(len(rest))]
    wire = b"".join(link.client.send(c) for c in group)
    link.server.receive_data(wire)
    out = bytearray()
    sent: list[Reply] = []
    for reply in [first, *rest]:
        if link.server.state is State.CLOSED:
            break  # a 421 closed the session (RFC 5321 §3.8)
        event = link.server.next_event()
        assert isinstance(event, Event)
        # answer a command the server found out of sequence (MAIL refused) with its hint
        answer = event.reply_hint if isinstance(event, InvalidCommand) else reply
        out += link.server.send(answer)
        sent.append(answer)
    got: list[Event] = []
    for piece in chunked(bytes(out), s2c):
        link.client.receive_data(piece)
        got += drain(link.client)
    if got[-1:] == [ConnectionClosed()]:
        assert sent[-1].code == 421
        got.pop()
    assert got == sent
    assert link.client.state == link.server.state
    assert link.client.pending == link.server.pending == ()


@given(greeting=s.greetings(), s2c=s.chunkings())
def test_greeting_roundtrip(greeting: Greeting, s2c: list[int]) -> None:
    """Law: client.read(server.write(greeting)) == greeting for 220/554/421 greetings
    (RFC 5321 §4.3.2, §3.8) with any text lines, whatever the chunking; both sides move
    to the state the code leads to (CONNECTED, REJECTED, CLOSED)."""
    link = Link(s2c=s2c)
    link.greet(greeting)
    assert replies_read(link) == [greeting]
    assert link.client.state == link.server.state


# ------------------------------------------------------------------------------ DATA


EIGHTBIT = Extensions({"8BITMIME": ()})


def open_data(link: Link) -> None:
    """Greet, EHLO, MAIL with BODY=8BITMIME (8-bit content is declared, RFC 6152 §3),
    RCPT, DATA; both sides end in State.DATA."""
    link.greet(GREETING)
    for command in (
        Ehlo(domain="c.example"),
        MailFrom(reverse_path="a@example.org", params={"BODY": "8BITMIME"}),
        RcptTo(forward_path="b@example.org"),
        Data(),
    ):
        link.client_sends(command)
    assert link.client.state is link.server.state is State.DATA


def _server_in_data(config: Config) -> Connection:
    """A server that has answered 354 to DATA (fed raw command lines)."""
    server = Connection(SERVER, config)
    server.send(GREETING)
    server.receive_data(
        b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    )
    for _ in range(4):
        event = server.next_event()
        assert isinstance(event, Event)
        server.send(server.default_reply(event))
    assert server.state is State.DATA
    return server


def _read_content(server: Connection, wire: bytes, sizes: list[int]) -> list[Event]:
    events: list[Event] = []
    for piece in chunked(wire, sizes):
        server.receive_data(piece)
        events += drain(server)
    return events


@given(
    body=s.bodies(),
    client_chunks=s.chunkings(),
    tcp=s.chunkings(),
    max_data_chunk=st.integers(5, 64) | st.just(Config().max_data_chunk),
    max_data_line=st.sampled_from([None, 1000]),
)
def test_data_roundtrip(
    body: bytes,
    client_chunks: list[int],
    tcp: list[int],
    max_data_chunk: int,
    max_data_line: int | None,
) -> None:
    """Law: server.read(client.write(body)) == expected_content(body), whatever the
    client's MessageData chunking and the TCP chunking: bare CR/LF become CRLF
    (RFC 5321 §2.3.8), a final CRLF is added, dot-stuffing (RFC 5321 §4.5.2) is undone,
    and the server's MessageData are non-empty and at most max_data_chunk bytes.
    On the wire: the content is exactly stuff(expected_content(body)) + ".CRLF", so every
    line starting with "." is doubled and the only CRLF.CRLF is the final one
    (RFC 5321 §4.1.1.4)."""
    server_config = Config(
        max_data_line=max_data_line, max_data_chunk=max_data_chunk, extensions=EIGHTBIT
    )
    link = Link(server_config, Config(max_data_line=max_data_line), c2s=tcp)
    open_data(link)
    assert link.client.state is link.server.state is State.DATA
    start_wire, start_events = len(link.c2s_wire), len(link.server_got)
    for piece in chunked(body, client_chunks):
        link.client_sends(MessageData(data=piece))
    link.client_sends(EndOfMessage())
    wire = bytes(link.c2s_wire[start_wire:])
    events = link.server_got[start_events:]

    want = expected_content(body)
    assert events[-1] == EndOfMessage()
    chunks = events[:-1]
    assert all(isinstance(e, MessageData) and 0 < len(e.data) <= max_data_chunk for e in chunks)
    assert content(chunks) == want
    # the wire format
    assert wire == stuff(want) + b".\r\n"
    if want:
        assert wire.find(b"\r\n.\r\n") == len(wire) - 5
    else:
        assert wire == b".\r\n"
    lines = wire.split(b"\r\n")[:-2]
    assert all(line.startswith(b"..") for line in lines if line.startswith(b"."))
    assert link.client.state is link.server.state is State.READY  # type: ignore[comparison-overlap]


def test_max_data_chunk_has_room_for_the_terminator() -> None:
    """Config refuses a MessageData cap too small to hold back a possible terminator
    start (the reader would stop making progress)."""
    for k in range(-1, 5):
        with pytest.raises(ValueError):
            Config(max_data_chunk=k)


@given(body=s.bodies(max_tokens=10), tcp=s.chunkings(), max_data_chunk=st.integers(5, 8))
def test_data_roundtrip_any_max_data_chunk(
    body: bytes, tcp: list[int], max_data_chunk: int
) -> None:
    """Law: as test_data_roundtrip, for the smallest max_data_chunk values that Config
    accepts: the content still arrives as expected_content(body) and the message ends
    (RFC 5321 §4.1.1.4), i.e. the reader never stops making progress."""
    server = _server_in_data(Config(max_data_line=None, max_data_chunk=max_data_chunk))
    wire = stuff(expected_content(body)) + b".\r\n"
    events = _read_content(server, wire, tcp)
    assert events[-1:] == [EndOfMessage()]
    assert content(events) == expected_content(body)


_content_lines = st.lists(
    st.one_of(
        st.sampled_from([b".", b"..", b"...", b".x", b"", b" .", b"x."]),
        st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    ),
    max_size=12,
)


@given(lines=_content_lines, tcp=s.chunkings(), client_chunks=s.chunkings())
def test_dot_stuffing_inverse_pair(
    lines: list[bytes], tcp: list[int], client_chunks: list[int]
) -> None:
    """Law: unstuff(stuff(c)) == c, stated on the wire (RFC 5321 §4.5.2). For canonical
    content c (CRLF lines): the client writes exactly stuff(c) + ".CRLF", and a server
    fed stuff(c) + ".CRLF" in any chunking reads exactly c."""
    c = b"".join(line + b"\r\n" for line in lines)
    # writer == stuff
    link = Link(Config(max_data_line=None, extensions=EIGHTBIT), Config(max_data_line=None))
    open_data(link)
    wire = b"".join(
        link.client.send(MessageData(data=piece)) for piece in chunked(c, client_chunks)
    ) + link.client.send(EndOfMessage())
    assert wire == stuff(c) + b".\r\n"
    # reader o stuff == identity
    server = _server_in_data(Config(max_data_line=None))
    events = _read_content(server, stuff(c) + b".\r\n", tcp)
    assert events[-1:] == [EndOfMessage()]
    assert content(events) == c


@given(lines=_content_lines, tcp=s.chunkings())
def test_unstuffing_any_wire(lines: list[bytes], tcp: list[int]) -> None:
    """Law: a server un-stuffs any content wire w (CRLF lines, none of them a lone ".")
    as unstuff(w): a line starting with "." loses exactly that "." (RFC 5321 §4.5.2,
    receiver rule), whether or not the sender stuffed consistently."""
    w = b"".join(line + b"\r\n" for line in lines if line != b".")
    server = _server_in_data(Config(max_data_line=None))
    events = _read_content(server, w + b".\r\n", tcp)
    assert events[-1:] == [EndOfMessage()]
    assert content(events) == unstuff(w)


# ---------------------------------------------------------------- state agreement


_REJECTIONS = s.replies(codes=s.reply_codes(first=(4, 5)).filter(lambda c: c != 421), max_lines=2)
_CLOSING = s.replies(codes=st.just(421), max_lines=2)


@st.composite
def _answers(draw: st.DrawFn, server: Connection, event: Event) -> Reply:
    """Mostly the server's default reply (RFC-correct; the hint for an invalid command),
    sometimes a rejection (any 4xx/5xx), now and then 421 (closing, RFC 5321 §3.8)."""
    roll = draw(st.integers(0, 15))
    if roll < 11:
        return server.default_reply(event)
    return draw(_REJECTIONS if roll < 15 else _CLOSING)


# Commands that may stand inside a pipelined group (RFC 2920 §3.1); the others end it.
_GROUP_INNER = (MailFrom, RcptTo, Rset)


@given(
    greeting=s.greetings(codes=(220,) * 8 + (554, 421)),
    ext=s.extensions(
        known=("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES")
    ),
    data=st.data(),
    c2s=s.chunkings(),
    s2c=s.chunkings(),
)
def test_client_and_server_states_agree(
    greeting: Greeting,
    ext: Extensions,
    data: st.DataObject,
    c2s: list[int],
    s2c: list[int],
) -> None:
    """Law: client.state == server.state and both pending queues are empty after every
    exchange of any legal dialogue, including commands the server rejects with 4xx/5xx
    (RFC 5321 §4.1.4: the server stays in the same state; 421 closes, §3.8), a 554
    greeting (§3.1: only QUIT), pipelined groups whose early commands fail (RFC 2920), and
    any reply to the end of the content (§4.1.1.4: the transaction ends)."""
    link = Link(
        Config(extensions=ext),
        c2s=c2s,
        s2c=s2c,
        answer=lambda server, event: data.draw(_answers(server, event)),
    )
    link.greet(greeting)
    assert link.client.state == link.server.state

    # The transaction's MAIL: the last MAIL accepted, while the state is MAIL/RCPT/DATA
    # (a rejected command, RSET and EHLO included, changes nothing: RFC 5321 §4.1.4).
    tx_mail: MailFrom | None = None
    for _ in range(data.draw(st.integers(0, 12), label="steps")):
        client = link.client
        if client.state in (State.CLOSED, State.ERROR):
            break
        if client.state is State.DATA:
            body = data.draw(s.bodies(max_tokens=6), label="body")
            if tx_mail is None or not eight_bit_declared(tx_mail):
                body = seven_bit(body)  # RFC 6152 §3
            link.client_sends(MessageData(data=body), EndOfMessage())
        else:
            group: list[Event] = []
            mail = tx_mail
            state: State = client.state
            size = data.draw(st.integers(1, 4)) if "PIPELINING" in client.extensions else 1
            while len(group) < size:
                choices: list[type[Event]] = sorted(
                    # the RFC 5321 commands (extensions' own verbs are tested elsewhere)
                    (t for t in TRANSITIONS[state] if t in s.COMMAND_TYPES),
                    key=lambda t: t.__name__,
                )
                inner: list[type[Event]] = [t for t in choices if t in _GROUP_INNER]
                if len(group) < size - 1 and inner:
                    choices = inner  # keep the group going (RFC 2920 §3.1)
                # draw the verb's name: Hypothesis's printer cannot show an Event class
                # (it calls the class's _repr_pretty_ unbound)
                name = data.draw(st.sampled_from(tuple(t.__name__ for t in choices)), label="verb")
                (cls,) = (t for t in choices if t.__name__ == name)
                utf8 = mail is not None and "SMTPUTF8" in mail.params
                event = s.draw_command(data.draw, cls, client.extensions, utf8)
                if isinstance(event, MailFrom):
                    mail = event
                group.append(event)
                state = TRANSITIONS[state][cls]
                if not isinstance(event, _GROUP_INNER):
                    break
            before = len(link.answers)
            link.client_sends(*group)
            for event, reply in link.answers[before:]:
                if isinstance(event, MailFrom) and reply.is_positive:
                    tx_mail = event
        if link.client.state not in (State.MAIL, State.RCPT, State.DATA):
            tx_mail = None
        assert link.client.state == link.server.state
        assert link.client.pending == link.server.pending == ()
        assert link.client.extensions == link.server.extensions


@given(
    rejected=st.sampled_from(["EHLO", "HELO", "RSET"]),
    rejection=_REJECTIONS,
    path=s.addresses(utf8=True),
    body=s.bodies(max_tokens=8),
)
def test_rejected_command_keeps_the_transaction(
    rejected: str, rejection: Reply, path: Address, body: bytes
) -> None:
    """Law: a rejected command changes nothing (RFC 5321 §4.1.4: "the SMTP server MUST
    stay in the same state"), so after MAIL FROM with SMTPUTF8 and BODY=8BITMIME was
    accepted and an EHLO, HELO or RSET was then refused with 4xx/5xx, the transaction
    still has its parameters on both sides: the client sends a UTF-8 RCPT
    (RFC 6531 §3.4) and 8-bit content (RFC 6152 §3), and the server reads them."""
    ext = Extensions({"SMTPUTF8": (), "8BITMIME": ()})
    link = Link(Config(extensions=ext, max_data_line=None), Config(max_data_line=None))
    link.greet(GREETING)
    link.client_sends(Ehlo(domain="c.example"))
    mail = MailFrom(reverse_path="a@example.org", params={"SMTPUTF8": None, "BODY": "8BITMIME"})
    link.client_sends(mail)
    assert link.client.state is link.server.state is State.MAIL
    command = {"EHLO": Ehlo(domain="c.example"), "HELO": Helo(domain="c.example")}.get(
        rejected, Rset()
    )
    link.answer = lambda server, event: rejection
    link.client_sends(command)
    assert link.client.state is link.server.state is State.MAIL
    link.answer = lambda server, event: server.default_reply(event)
    rcpt = RcptTo(forward_path=path)
    link.client_sends(rcpt)
    assert server_commands(link.server_got)[-1] == rcpt
    link.client_sends(Data())
    link.client_sends(MessageData(data=body), EndOfMessage())
    assert link.server_got[-1] == EndOfMessage()


# ---------------------------------------------------------------------- extensions


@given(ext=s.extensions(), hostname=s.domains(), s2c=s.chunkings())
def test_extensions_agree_after_ehlo(ext: Extensions, hostname: str, s2c: list[int]) -> None:
    """Law: a server configured with extensions X advertises X in its EHLO reply
    (RFC 5321 §4.1.1.1, one ehlo-line per keyword) and after it
    client.extensions == X == server.extensions, whatever the chunking. (X minus
    REQUIRETLS, which is only advertised under TLS, RFC 8689 §4; AUTH is advertised
    without TLS because the server config allows plaintext AUTH, RFC 4954 §6.)"""
    config = Config(hostname=hostname, extensions=ext, allow_plaintext_auth=True)
    link = Link(config, s2c=s2c)
    link.greet(GREETING)
    link.client_sends(Ehlo(domain="client.example"))
    (reply,) = link.client_got[1:]
    assert isinstance(reply, Reply) and reply.code == 250
    expected = Extensions({k: v for k, v in ext.items() if k != "REQUIRETLS"})
    assert link.client.extensions == expected == link.server.extensions
    if "REQUIRETLS" not in ext:
        assert link.client.extensions == ext
    # HELO (RFC 5321 §4.1.1.1: no extensions) resets both
    link.client_sends(Helo(domain="client.example"))
    assert link.client.extensions == Extensions() == link.server.extensions


@given(ext=s.extensions(), data=st.data())
def test_params_legal_for_extensions_roundtrip(ext: Extensions, data: st.DataObject) -> None:
    """Law: MAIL/RCPT parameters legal under the advertised extensions (RFC 5321
    §4.1.1.11; SMTPUTF8 addresses RFC 6531 §3.4) are read back equal, one command at a
    time, whole."""
    assume("SMTPUTF8" in ext or data.draw(st.booleans()))
    link = Link(Config(extensions=ext))
    link.greet(GREETING)
    link.client_sends(Ehlo(domain="client.example"))
    advertised = link.client.extensions
    mail = s.draw_mail_from(data.draw, advertised)
    rcpt = s.draw_rcpt_to(data.draw, advertised, utf8="SMTPUTF8" in mail.params)
    link.client_sends(mail)
    link.client_sends(rcpt)
    assert link.server_got[1:] == [mail, rcpt]
    assert link.client.state is link.server.state is State.RCPT


def test_model_sanity() -> None:
    """The test model itself: expected_content, stuff and unstuff on known values."""
    assert expected_content(b"") == b""
    assert expected_content(b"a") == b"a\r\n"
    assert expected_content(b"a\rb\nc\r\n") == b"a\r\nb\r\nc\r\n"
    assert expected_content(b"\n\r") == b"\r\n\r\n"
    assert stuff(b".\r\nx\r\n..\r\n") == b"..\r\nx\r\n...\r\n"
    assert unstuff(stuff(b".\r\nx\r\n..\r\n")) == b".\r\nx\r\n..\r\n"
    assert Rset() == Rset()
