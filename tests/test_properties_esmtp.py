"""Laws of the ESMTP extensions in the core, as Hypothesis properties: pipelining changes
nothing but the round trips (RFC 2920), BDAT moves octets exactly (RFC 3030), LMTP gives one
reply per accepted recipient (RFC 2033), and no plaintext survives STARTTLS (RFC 3207)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Bdat,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Greeting,
    InvalidCommand,
    Lhlo,
    MailFrom,
    MessageData,
    RcptTo,
    RemoteProtocolError,
    Reply,
    StartTLS,
    State,
)

from .helpers import chunked

EXTENSIONS = {"PIPELINING": (), "CHUNKING": (), "BINARYMIME": (), "8BITMIME": (), "STARTTLS": ()}

# Per recipient: does the server accept it?
verdicts = st.lists(st.booleans(), min_size=1, max_size=12)
sizes = st.lists(st.integers(1, 4096), min_size=1, max_size=8)


def connected(*, lmtp: bool = False) -> tuple[Connection, Connection]:
    client = Connection(CLIENT, Config(lmtp=lmtp))
    server = Connection(SERVER, Config(extensions=EXTENSIONS, lmtp=lmtp))
    client.receive_data(server.send(Greeting(lines="mx.example.org")))
    client.next_event()
    hello: Event = Lhlo(domain="c.example") if lmtp else Ehlo(domain="c.example")
    server.receive_data(client.send(hello))
    client.receive_data(server.send(server.default_reply(server.next_event())))  # type: ignore[arg-type]
    client.next_event()
    return client, server


def answer(server: Connection, event: Event, accept: dict[str, bool]) -> Reply:
    if isinstance(event, InvalidCommand):
        return event.reply_hint
    if isinstance(event, RcptTo) and not accept.get(str(event.forward_path), True):
        return Reply(code=550, lines="No such user", enhanced="5.1.1")
    return server.default_reply(event)


def serve_all(server: Connection, accept: dict[str, bool], tcp: list[int], data: bytes) -> bytes:
    """Feed ``data`` in ``tcp`` pieces, answering every command; return the replies."""
    out = bytearray()
    for piece in chunked(data, tcp) or [b""]:
        if piece:
            server.receive_data(piece)
        while True:
            event = server.next_event()
            if event is NEED_DATA:
                break
            if event is PAUSED:
                if not server.pending:
                    break
                out += server.send(server.default_reply(server.pending[0]))
                continue
            assert isinstance(event, Event)
            if isinstance(event, MessageData):
                continue
            out += server.send(answer(server, event, accept))
    return bytes(out)


def transaction(verdicts: list[bool]) -> tuple[list[Event], dict[str, bool]]:
    rcpts = [RcptTo(forward_path=f"r{i}@example.net") for i in range(len(verdicts))]
    accept = {str(r.forward_path): v for r, v in zip(rcpts, verdicts, strict=True)}
    return [MailFrom(reverse_path="s@example.org"), *rcpts, Data()], accept


@given(verdicts=verdicts, tcp=st.lists(st.integers(1, 64), min_size=1, max_size=5))
def test_pipelined_and_lockstep_give_the_same_replies(verdicts: list[bool], tcp: list[int]) -> None:
    """Law (RFC 2920 §3): sending MAIL + RCPTs + DATA as one group gives the same replies,
    answering the same commands, and the same end states as one command at a time.
    (With every recipient refused a lock-step client does not send DATA at all.)"""
    assume(any(verdicts))
    commands, accept = transaction(verdicts)
    outcomes = []
    for pipelined in (True, False):
        client, server = connected()
        seen: list[tuple[int, str]] = []
        batches = [commands] if pipelined else [[c] for c in commands]
        for batch in batches:
            wire = b"".join(client.send(c) for c in batch)
            client.receive_data(serve_all(server, accept, tcp, wire))
            for _ in batch:
                reply = client.next_event()
                assert isinstance(reply, Reply)
                seen.append((reply.code, repr(client.last_answered)))
        assert client.state is server.state is State.DATA
        assert client.pending == server.pending == ()
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]


@given(
    body=st.binary(max_size=20_000),
    chunks=sizes,
    tcp=st.lists(st.integers(1, 5000), min_size=1, max_size=6),
)
def test_bdat_moves_octets_exactly(body: bytes, chunks: list[int], tcp: list[int]) -> None:
    """Law (RFC 3030 §2): a body sent as BDAT chunks of any sizes, over any TCP
    segmentation, arrives byte for byte: no stuffing, no line-ending changes."""
    client, server = connected()
    for command in (
        MailFrom(reverse_path="s@example.org", params={"BODY": "BINARYMIME"}),
        RcptTo(forward_path="r@example.net"),
    ):
        server.receive_data(client.send(command))
        client.receive_data(server.send(server.default_reply(server.next_event())))  # type: ignore[arg-type]
        client.next_event()
    wire = bytearray()
    pieces = chunked(body, chunks) or [b""]
    for i, piece in enumerate(pieces):
        wire += client.send(Bdat(size=len(piece), last=i == len(pieces) - 1))
        if piece:
            wire += client.send(MessageData(data=piece))
    received = bytearray()
    ends = 0
    for segment in chunked(bytes(wire), tcp):
        server.receive_data(segment)
        while True:
            event = server.next_event()
            if event is NEED_DATA:
                break
            if event is PAUSED:
                client.receive_data(server.send(server.default_reply(server.pending[0])))
                continue
            if isinstance(event, MessageData):
                received += event.data
            elif isinstance(event, EndOfMessage):
                ends += 1
    assert bytes(received) == body and ends == 1
    assert server.pending == ()
    assert server.state is State.READY


@given(verdicts=verdicts, use_bdat=st.booleans())
def test_lmtp_one_reply_per_accepted_recipient(verdicts: list[bool], use_bdat: bool) -> None:
    """Law (RFC 2033 §4.2): after the message the server owes, and the client reads,
    exactly one reply per accepted recipient, each correlated to it in RCPT order."""
    assume(any(verdicts))
    client, server = connected(lmtp=True)
    commands, accept = transaction(verdicts)
    for command in commands[:-1]:  # MAIL and the RCPTs, one at a time
        client.receive_data(serve_all(server, accept, [4096], client.send(command)))
        assert isinstance(client.next_event(), Reply)
    accepted = [c for c in commands if isinstance(c, RcptTo) and accept[str(c.forward_path)]]
    assert client.accepted_recipients == server.accepted_recipients == tuple(accepted)
    if use_bdat:
        wire = client.send(Bdat(size=4, last=True)) + client.send(MessageData(data=b"hi\r\n"))
    else:
        client.receive_data(serve_all(server, accept, [4096], client.send(Data())))
        assert client.next_event() == Reply(code=354, lines="End data with <CR><LF>.<CR><LF>")
        wire = client.send(MessageData(data=b"hi\r\n")) + client.send(EndOfMessage())
    owed = 0
    server.receive_data(wire)
    while server.next_event() is not PAUSED:
        pass
    replies = bytearray()
    while server.pending:
        replies += server.send(server.default_reply(server.pending[0]))
        owed += 1
    client.receive_data(bytes(replies))
    correlated = []
    while isinstance(client.next_event(), Reply):
        correlated.append(client.last_answered)
    assert owed == len(accepted)
    assert correlated == accepted
    assert client.pending == server.pending == ()
    assert client.state is server.state is State.READY


@given(
    injected=st.binary(min_size=1, max_size=64),
    when=st.sampled_from(["with the 220", "after the 220"]),
    role=st.sampled_from(["client", "server"]),
)
def test_no_plaintext_survives_starttls(injected: bytes, when: str, role: str) -> None:
    """Law (RFC 3207 §4.2; CVE-2011-0411): any octets received after the STARTTLS line
    (server) or the 220 (client) and before the TLS handshake raise RemoteProtocolError;
    none is ever read as post-TLS data."""

    def injected_connection() -> Connection:
        client, server = connected()
        line = client.send(StartTLS())
        if role == "server":
            server.receive_data(line + (injected if when == "with the 220" else b""))
            server.send(server.default_reply(server.next_event()))  # type: ignore[arg-type]
            if when == "after the 220":
                server.receive_data(injected)
            return server
        server.receive_data(line)
        reply = server.send(server.default_reply(server.next_event()))  # type: ignore[arg-type]
        client.receive_data(reply + (injected if when == "with the 220" else b""))
        assert isinstance(client.next_event(), Reply)
        if when == "after the 220":
            client.receive_data(injected)
        return client

    with pytest.raises(RemoteProtocolError):
        injected_connection().next_event()
    with pytest.raises(RemoteProtocolError):
        injected_connection().tls_established()
