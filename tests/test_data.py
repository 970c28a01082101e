"""Message content: dot-stuffing, the end-of-data rule, line endings, limits
(RFC 5321 §4.1.1.4, §4.5.2, §2.3.8, §4.5.3.1)."""

from __future__ import annotations

import pytest

from sansio_smtp import (
    NEED_DATA,
    SERVER,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Greeting,
    InvalidMessage,
    LineEndingPolicy,
    LocalProtocolError,
    MailFrom,
    MessageData,
    RcptTo,
    Reply,
    State,
)
from sansio_smtp._events import Event

from .helpers import ConnectionPair, drain, feed_ways


def server_in_data(config: Config | None = None) -> Connection:
    conn = Connection(SERVER, config)
    conn.send(Greeting())
    conn.receive_data(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    for _ in range(4):
        conn.send(conn.default_reply(conn.next_event()))  # type: ignore[arg-type]
    assert conn.state is State.DATA
    return conn


def client_in_data(config: Config | None = None) -> Connection:
    pair = ConnectionPair(config, config, greeting=Greeting())
    for cmd in (
        Ehlo(domain="c"),
        MailFrom(reverse_path="a@b.example"),
        RcptTo(forward_path="c@d.example"),
        Data(),
    ):
        pair.exchange(cmd)
    assert pair.client.state is State.DATA
    return pair.client


def receive(wire: bytes, config: Config | None = None) -> tuple[bytes, Event, bytes]:
    """Feed ``wire`` to a server in DATA state whole and bytewise; both must agree.
    Returns (content, final event, bytes left over)."""
    results = []
    for _, pieces in feed_ways(wire):
        conn = server_in_data(config)
        events: list[Event] = []
        for p in pieces:
            conn.receive_data(p)
            events.extend(drain(conn))
        content = b"".join(bytes(e.data) for e in events if isinstance(e, MessageData))
        finals = [e for e in events if not isinstance(e, MessageData)]
        assert len(finals) <= 1, finals
        final: Event = finals[0] if finals else NEED_DATA  # type: ignore[assignment]
        results.append((content, final, conn.trailing_data[0]))
    # After an InvalidMessage the content streamed before the error depends on chunking
    # (it is to be discarded); everything else must not.
    if isinstance(results[0][1], InvalidMessage):
        assert results[0][1:] == results[1][1:], results
    else:
        assert results[0] == results[1], results
    return results[0]


def test_unstuffing() -> None:
    # RFC 5321 §4.5.2: the receiver deletes the first "." of a line that starts with one
    content, final, rest = receive(b"..one\r\n...two\r\nthree\r\n.\r\n")
    assert content == b".one\r\n..two\r\nthree\r\n"
    assert final == EndOfMessage()
    assert rest == b""


def test_empty_message() -> None:
    content, final, _ = receive(b".\r\n")
    assert content == b"" and final == EndOfMessage()


def test_data_after_terminator_stays_buffered() -> None:
    # PIPELINING: the next command may follow the terminator in the same segment
    content, final, rest = receive(b"hi\r\n.\r\nQUIT\r\n")
    assert (content, final, rest) == (b"hi\r\n", EndOfMessage(), b"QUIT\r\n")


def test_end_of_message_awaits_the_reply_after_an_empty_buffer() -> None:
    # an empty buffer between pieces is NEED_DATA, as often as asked; the EndOfMessage
    # returned is the one that awaits the transaction's reply
    conn = server_in_data()
    conn.receive_data(b"hi\r\n")
    assert conn.next_event() == MessageData(data=b"hi\r\n")
    assert conn.next_event() is NEED_DATA
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b".\r\n")
    end = conn.next_event()
    assert end == EndOfMessage()
    assert conn.pending == (end,) and conn.pending[0] is end


@pytest.mark.parametrize(
    "smuggle",
    [
        b"\n.\n",  # bare LF terminators (CVE-2023-51764)
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n\x00.\r\n",
    ],
)
def test_only_crlf_dot_crlf_ends_data(smuggle: bytes) -> None:
    # RFC 5321 §4.1.1.4: the mail data is terminated by a line containing only ".",
    # i.e. <CRLF>.<CRLF>. Anything else is content: SMTP smuggling fails.
    wire = b"first" + smuggle + b"MAIL FROM:<evil@example.org>\r\n" + b".\r\n"
    for policy in LineEndingPolicy:
        content, final, rest = receive(wire, Config(line_endings=policy))
        assert rest == b""
        assert b"MAIL FROM" in content or isinstance(final, InvalidMessage)
        if policy is LineEndingPolicy.ALLOW:
            assert final == EndOfMessage()


def test_bare_lf_normalised_by_default() -> None:
    # Default policy NORMALIZE (as Postfix's smtpd_forbid_bare_newline=normalize)
    content, final, _ = receive(b"a\nb\rc\r\n.\r\n")
    assert content == b"a\r\nb\r\nc\r\n" and final == EndOfMessage()


def test_bare_lf_rejected_by_policy() -> None:
    _content, final, _ = receive(b"a\nb\r\n.\r\n", Config(line_endings=LineEndingPolicy.REJECT))
    assert isinstance(final, InvalidMessage)
    assert final.reply_hint.code == 550 and str(final.reply_hint.enhanced) == "5.5.2"


def test_bare_lf_allowed_by_policy() -> None:
    content, final, _ = receive(b"a\nb\r\n.\r\n", Config(line_endings=LineEndingPolicy.ALLOW))
    assert content == b"a\nb\r\n" and final == EndOfMessage()


def test_text_line_limit() -> None:
    # RFC 5321 §4.5.3.1.6: 1000 octets including CRLF; §4.5.3.1.10 "500 Line too long"
    ok = b"x" * 998 + b"\r\n"
    content, final, _ = receive(ok + b".\r\n")
    assert final == EndOfMessage() and content == ok
    content, final, _ = receive(b"y" * 999 + b"\r\n.\r\n")
    assert isinstance(final, InvalidMessage) and final.reply_hint.code == 500
    content, final, _ = receive(b"y" * 5000 + b"\r\n.\r\n", Config(max_data_line=None))
    assert final == EndOfMessage()


def test_message_size_limit() -> None:
    # RFC 1870 §6.1 / RFC 5321 §4.5.3.1.10: 552 too much mail data
    config = Config(max_message_size=100)
    _content, final, _ = receive(b"x" * 50 + b"\r\n" + b"x" * 50 + b"\r\n.\r\n", config)
    assert isinstance(final, InvalidMessage) and final.reply_hint.code == 552
    _content, final, _ = receive(b"x" * 98 + b"\r\n.\r\n", config)
    assert final == EndOfMessage()


def test_invalid_message_ends_transaction() -> None:
    conn = server_in_data(Config(max_message_size=10))
    conn.receive_data(b"0123456789abcdef\r\n.\r\nRSET\r\n")
    events = drain(conn)
    assert isinstance(events[-1], InvalidMessage)
    conn.send(conn.default_reply(events[-1]))
    assert conn.state is State.READY


def test_chunks_are_bounded() -> None:
    conn = server_in_data(Config(max_data_chunk=1000))
    conn.receive_data((b"z" * 98 + b"\r\n") * 500 + b".\r\n")
    events = drain(conn)
    sizes = [len(e.data) for e in events if isinstance(e, MessageData)]
    assert max(sizes) <= 1000 and sum(sizes) == 50000
    assert events[-1] == EndOfMessage()


def test_streaming_without_newline_is_bounded() -> None:
    # A long run without a newline inside DATA is streamed out, never accumulated.
    conn = server_in_data(Config(max_data_line=None))
    block = b"q" * 65536
    total = 0
    for _ in range(64):
        conn.receive_data(block)
        for e in drain(conn):
            assert isinstance(e, MessageData)
            total += len(e.data)
        assert len(conn.trailing_data[0]) <= 4
    assert total == 64 * 65536


# ------------------------------------------------------------------------ client side


def test_client_stuffs_and_terminates() -> None:
    # RFC 5321 §4.5.2: the sender doubles a leading "."; the message ends with CRLF.CRLF
    conn = client_in_data()
    wire = conn.send(MessageData(data=b".a\r\nb\r\n.\r\n..c"))
    wire += conn.send(EndOfMessage())
    assert wire == b"..a\r\nb\r\n..\r\n...c\r\n.\r\n"


def test_client_stuffs_across_chunks() -> None:
    conn = client_in_data()
    pieces = [b"a\r", b"\n", b".b", b"\r\n", b".", b"\r\n"]
    wire = b"".join(conn.send(MessageData(data=p)) for p in pieces) + conn.send(EndOfMessage())
    assert wire == b"a\r\n..b\r\n..\r\n.\r\n"


def test_client_normalises_bare_line_endings() -> None:
    conn = client_in_data()
    wire = conn.send(MessageData(data=b"a\nb\rc\r")) + conn.send(EndOfMessage())
    assert wire == b"a\r\nb\r\nc\r\n.\r\n"


def test_client_rejects_bare_line_endings_by_policy() -> None:
    conn = client_in_data(Config(line_endings=LineEndingPolicy.REJECT))
    with pytest.raises(LocalProtocolError):
        conn.send(MessageData(data=b"a\nb"))


def test_client_adds_final_crlf() -> None:
    conn = client_in_data()
    assert conn.send(MessageData(data=b"no newline")) + conn.send(EndOfMessage()) == (
        b"no newline\r\n.\r\n"
    )


def test_client_refuses_over_long_lines() -> None:
    # RFC 5321 §4.5.3.1.6
    conn = client_in_data()
    with pytest.raises(LocalProtocolError):
        conn.send(MessageData(data=b"x" * 1200 + b"\r\n"))


def test_passthrough_returns_the_same_object() -> None:
    conn = client_in_data()
    body = bytearray(b"Subject: x\r\n\r\nplain text\r\n" * 100)
    out = conn.send_with_data_passthrough(MessageData(data=body))
    assert len(out) == 1 and out[0] is body


def test_transaction_reply_after_data() -> None:
    pair = ConnectionPair(greeting=Greeting())
    for cmd in (
        Ehlo(domain="c"),
        MailFrom(reverse_path="a@b.example"),
        RcptTo(forward_path="c@d.example"),
        Data(),
    ):
        pair.exchange(cmd)
    got = pair.client_sends(MessageData(data=b"hello"))
    got += pair.client_sends(EndOfMessage())
    assert got[-1] == EndOfMessage()
    (reply,) = pair.server_sends(Reply(code=451, lines="try later", enhanced="4.3.0"))
    assert isinstance(reply, Reply) and reply.is_transient
    # RFC 5321 §4.1.1.4: the transaction is over whatever the reply
    assert pair.client.state is State.READY and pair.server.state is State.READY


def test_dot_lines_after_bare_lf_are_unstuffed() -> None:
    # RFC 5321 §4.5.2 under the NORMALIZE policy: a bare LF starts a line, and smtplib
    # given LF-only bytes stuffs the dots of such lines ("x\n.y" -> "x\n..y").
    content, final, _ = receive(b"x\n..y\n..\nz\r\n.\r\n")
    assert content == b"x\r\n.y\r\n.\r\nz\r\n" and final == EndOfMessage()


def test_lone_dot_after_bare_lf_is_content_not_the_end() -> None:
    # RFC 5321 §4.1.1.4: "\n.\r\n" is not <CRLF>.<CRLF> (SMTP smuggling)
    content, final, rest = receive(b"a\n.\r\nMAIL FROM:<x@y.example>\r\n.\r\n")
    assert final == EndOfMessage() and rest == b""
    assert content == b"a\r\n.\r\nMAIL FROM:<x@y.example>\r\n"
