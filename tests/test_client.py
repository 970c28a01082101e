"""The client role: reading replies, sending commands (RFC 5321 §4.2, §4.1)."""

from __future__ import annotations

import pytest

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    Address,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Greeting,
    Helo,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Rset,
    State,
    Vrfy,
)
from sansio_smtp._events import Event

from .helpers import drain, feed_ways


def client_after(*wire: bytes, commands: tuple[Event, ...] = ()) -> Connection:
    conn = Connection(CLIENT)
    conn.receive_data(b"220 mx.example.org ESMTP\r\n")
    assert isinstance(conn.next_event(), Greeting)
    for cmd, data in zip(commands, wire, strict=True):
        conn.send(cmd)
        conn.receive_data(data)
        assert isinstance(conn.next_event(), Reply)
    return conn


def read_reply(conn_factory: object, data: bytes) -> Event:
    """Feed ``data`` whole, bytewise and with trailing bytes; all must give one equal event."""
    assert callable(conn_factory)
    results = []
    for _, pieces in feed_ways(data):
        conn = conn_factory()
        events = []
        for p in pieces:
            conn.receive_data(p)
            events.extend(drain(conn))
        assert len(events) == 1, events
        results.append(events[0])
    conn = conn_factory()
    conn.receive_data(data + b"250 trailing")
    results.append(conn.next_event())
    assert conn.next_event() is NEED_DATA
    assert all(r == results[0] for r in results)
    return results[0]


def noop_pending() -> Connection:
    conn = client_after()
    conn.send(Noop())
    return conn


def test_greeting() -> None:
    # RFC 5321 §4.2, §3.1: the greeting may be multi-line
    def fresh() -> Connection:
        return Connection(CLIENT)

    event = read_reply(fresh, b"220-mx.example.org ESMTP\r\n220 welcome\r\n")
    assert event == Greeting(code=220, lines=("mx.example.org ESMTP", "welcome"))


def test_554_greeting_means_only_quit() -> None:
    # RFC 5321 §3.1: 554 greeting -> the client SHOULD send QUIT
    conn = Connection(CLIENT)
    conn.receive_data(b"554 no service\r\n")
    assert conn.next_event() == Greeting(code=554, lines="no service")
    assert conn.state is State.REJECTED
    with pytest.raises(LocalProtocolError):
        conn.send(Ehlo(domain="c"))
    assert conn.send(Quit()) == b"QUIT\r\n"


def test_non_greeting_code_is_remote_error() -> None:
    # RFC 5321 §4.3.2: connection establishment S: 220, E: 554
    conn = Connection(CLIENT)
    conn.receive_data(b"250 hello\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.state is State.ERROR
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_multiline_reply_with_enhanced_codes() -> None:
    # RFC 5321 §4.2.1 multi-line; RFC 2034 §3 enhanced code on every line
    event = read_reply(
        noop_pending, b"250-2.0.0 first line\r\n250-2.0.0 second\r\n250 2.0.0 last\r\n"
    )
    assert event == Reply(code=250, lines=("first line", "second", "last"), enhanced="2.0.0")


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"250\r\n", ("",)),  # RFC 5321 §4.2: Reply-code [ SP textstring ] CRLF
        (b"250-\r\n250\r\n", ("", "")),
        (b"250 \r\n", ("",)),
        (b"250 OK\n", ("OK",)),  # tolerate a bare LF from the server
    ],
)
def test_bare_code_lines(data: bytes, lines: tuple[str, ...]) -> None:
    assert read_reply(noop_pending, data) == Reply(code=250, lines=lines)


def test_utf8_reply_text_is_tolerated() -> None:
    # RFC 6531 §3.7.4.2 allows UTF-8 text; invalid bytes are replaced, never a crash
    event = read_reply(noop_pending, "250 grüß dich\r\n".encode())
    assert isinstance(event, Reply) and event.lines == ("grüß dich",)
    event = read_reply(noop_pending, b"250 bad \xff\xfe bytes\r\n")
    assert isinstance(event, Reply) and event.code == 250


def test_enhanced_code_of_another_class_is_text() -> None:
    # RFC 3463 §2: the class must match the reply code's first digit
    event = read_reply(noop_pending, b"250 5.1.1 odd\r\n")
    assert event == Reply(code=250, lines="5.1.1 odd")


@pytest.mark.parametrize(
    "data",
    [
        b"250-first\r\n251 second\r\n",  # RFC 5321 §4.2.1: every line has the same code
        b"25 short\r\n",
        b"abc text\r\n",
        b"250xtext\r\n",
        b"199 below range\r\n",
        b"260 second digit over 5\r\n",  # RFC 5321 §4.2: second digit 0-5
    ],
)
def test_malformed_replies_are_remote_errors(data: bytes) -> None:
    conn = noop_pending()
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_reply_line_limit() -> None:
    # RFC 5321 §4.5.3.1.5: reply lines are at most 512 octets including CRLF
    ok = b"250 " + b"x" * 506 + b"\r\n"
    assert len(ok) == 512
    conn = noop_pending()
    conn.receive_data(ok)
    assert isinstance(conn.next_event(), Reply)
    conn = noop_pending()
    conn.receive_data(b"250 " + b"x" * 600)  # no newline yet: still refused, bounded
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_reply_lines_limit() -> None:
    conn = Connection(CLIENT, Config(max_reply_lines=100))
    conn.receive_data(b"220 hi\r\n")
    conn.next_event()
    conn.send(Noop())
    conn.receive_data(b"250-x\r\n" * 200)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_unsolicited_reply_is_remote_error_except_421() -> None:
    conn = client_after()
    conn.receive_data(b"250 what?\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    # RFC 5321 §3.8: 421 may arrive at any time and closes the session
    conn = client_after()
    conn.receive_data(b"421 4.3.2 shutting down\r\n")
    assert conn.next_event() == Reply(code=421, lines="shutting down", enhanced="4.3.2")
    assert conn.state is State.CLOSED


def test_ehlo_reply_parsed_into_extensions() -> None:
    # RFC 5321 §4.1.1.1: keywords case-insensitive, parameters separated by spaces
    conn = client_after(
        b"250-mx.example.org\r\n250-size 1000000\r\n250-AUTH PLAIN LOGIN\r\n250 8bitmime\r\n",
        commands=(Ehlo(domain="c.example"),),
    )
    ext = conn.extensions
    assert "SIZE" in ext and ext["size"] == ("1000000",)
    assert ext["Auth"] == ("PLAIN", "LOGIN")
    assert "8BITMIME" in ext and "PIPELINING" not in ext
    assert conn.state is State.READY
    assert conn.last_answered == Ehlo(domain="c.example")


def test_helo_fallback_after_ehlo_500() -> None:
    # RFC 5321 §3.2: a client whose EHLO gets 500/502 may fall back to HELO
    conn = client_after(b"502 5.5.1 EHLO not supported\r\n", commands=(Ehlo(domain="c"),))
    assert conn.state is State.CONNECTED
    conn.send(Helo(domain="c"))
    conn.receive_data(b"250 mx.example.org\r\n")
    conn.next_event()
    assert conn.state is State.READY and len(conn.extensions) == 0


# ----------------------------------------------------------------------- sending


def test_commands_on_the_wire() -> None:
    # RFC 5321 §4.1.1, §4.1.2
    conn = client_after(b"250 ok\r\n", commands=(Ehlo(domain="c.example"),))
    assert conn.send(MailFrom(reverse_path=None)) == b"MAIL FROM:<>\r\n"
    conn.receive_data(b"250 ok\r\n")
    conn.next_event()
    wire = conn.send(RcptTo(forward_path=Address("john doe", "example.org")))
    assert wire == b'RCPT TO:<"john doe"@example.org>\r\n'


def test_greeting_must_come_first() -> None:
    conn = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        conn.send(Ehlo(domain="c"))
    assert conn.state is State.GREETING


@pytest.mark.parametrize(
    "event",
    [
        MailFrom(reverse_path="a@b.example"),
        RcptTo(forward_path="a@b.example"),
        Data(),
        MessageData(data=b"x"),
        EndOfMessage(),
    ],
)
def test_out_of_sequence_sends_are_refused(event: Event) -> None:
    # RFC 5321 §4.1.4: MAIL needs EHLO/HELO, RCPT needs MAIL, DATA needs RCPT
    conn = client_after()
    with pytest.raises(LocalProtocolError):
        conn.send(event)
    assert conn.state is State.CONNECTED and conn.pending == ()
    conn.send(Noop())  # still usable: a refused send changes nothing


def test_no_pipelining_unless_advertised() -> None:
    # RFC 2920 §3: without PIPELINING the client waits for each reply
    conn = client_after(b"250 ok\r\n", commands=(Ehlo(domain="c"),))
    conn.send(MailFrom(reverse_path="a@b.example"))
    with pytest.raises(LocalProtocolError):
        conn.send(RcptTo(forward_path="c@d.example"))


def test_pipelining_when_advertised() -> None:
    # RFC 2920 §3.1: MAIL, RCPT..., DATA as one group; DATA ends the group
    conn = client_after(b"250-mx\r\n250 PIPELINING\r\n", commands=(Ehlo(domain="c"),))
    conn.send(MailFrom(reverse_path="a@b.example"))
    conn.send(RcptTo(forward_path="c@d.example"))
    conn.send(RcptTo(forward_path="e@d.example"))
    conn.send(Data())
    with pytest.raises(LocalProtocolError):
        conn.send(Rset())  # nothing after DATA before its reply
    conn.receive_data(b"250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n")
    codes = []
    answered = []
    for _ in range(4):
        ev = conn.next_event()
        assert isinstance(ev, Reply)
        codes.append(ev.code)
        answered.append(type(conn.last_answered).__name__)
    assert codes == [250, 550, 250, 354]
    assert answered == ["MailFrom", "RcptTo", "RcptTo", "Data"]
    assert conn.state is State.DATA


def test_pipelined_mail_failure_then_the_rest() -> None:
    # RFC 2920 §3.1: a 5xx to MAIL is followed by replies (503/554) for the rest
    conn = client_after(b"250-mx\r\n250 PIPELINING\r\n", commands=(Ehlo(domain="c"),))
    for cmd in (MailFrom(reverse_path="a@b.example"), RcptTo(forward_path="c@d.example"), Data()):
        conn.send(cmd)
    conn.receive_data(b"550 no\r\n503 no MAIL\r\n554 no valid recipients\r\n")
    assert [conn.next_event().code for _ in range(3)] == [550, 503, 554]  # type: ignore[union-attr]
    assert conn.state is State.READY and conn.pending == ()


@pytest.mark.parametrize(
    "event",
    [
        Ehlo(domain="c.example\r\nRCPT TO:<x@y>"),
        Ehlo(domain="two words"),
        Vrfy(text="bob\rDATA"),
        Noop(text="x\x00y"),
        Helo(domain="h\n"),
    ],
)
def test_control_characters_never_reach_the_wire(event: Event) -> None:
    # Command injection: CR, LF and other controls in arguments are refused
    conn = client_after(b"250 ok\r\n", commands=(Ehlo(domain="c"),))
    with pytest.raises(LocalProtocolError):
        conn.send(event)


def test_addresses_with_controls_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        RcptTo(forward_path="a\r\n@b.example")
    with pytest.raises(ValueError):
        Address("a\nb", "example.org")


def test_params_need_their_extension() -> None:
    # RFC 5321 §4.1.1.11 / RFC 1870: no SIZE= unless the server advertised SIZE
    conn = client_after(b"250 ok\r\n", commands=(Ehlo(domain="c"),))
    with pytest.raises(LocalProtocolError):
        conn.send(MailFrom(reverse_path="a@b.example", params={"SIZE": "10"}))
    conn = client_after(b"250-mx\r\n250 SIZE 100\r\n", commands=(Ehlo(domain="c"),))
    assert conn.send(MailFrom(reverse_path="a@b.example", params={"size": "10"})) == (
        b"MAIL FROM:<a@b.example> SIZE=10\r\n"
    )


def test_utf8_address_needs_smtputf8_parameter() -> None:
    # RFC 6531 §3.4
    conn = client_after(b"250-mx\r\n250 SMTPUTF8\r\n", commands=(Ehlo(domain="c"),))
    with pytest.raises(LocalProtocolError):
        conn.send(MailFrom(reverse_path="jörg@example.org"))
    wire = conn.send(MailFrom(reverse_path="jörg@example.org", params={"SMTPUTF8": None}))
    assert wire == "MAIL FROM:<jörg@example.org> SMTPUTF8\r\n".encode()


def test_command_line_too_long_is_refused() -> None:
    # RFC 5321 §4.5.3.1.4
    conn = client_after()
    with pytest.raises(LocalProtocolError):
        conn.send(Noop(text="x" * 600))


def test_server_close_gives_connection_closed() -> None:
    conn = client_after()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError):
        conn.send(Noop())


def test_send_failed_poisons_the_connection() -> None:
    conn = client_after()
    conn.send(Noop())
    conn.send_failed()
    assert conn.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        conn.send(Quit())
