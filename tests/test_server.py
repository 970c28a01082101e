"""The server role: reading commands, sequencing, limits (RFC 5321 §3, §4.1)."""

from __future__ import annotations

import pytest

from sansio_smtp import (
    NEED_DATA,
    PAUSED,
    SERVER,
    Address,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Expn,
    Greeting,
    Helo,
    Help,
    InvalidCommand,
    LocalProtocolError,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    State,
    Vrfy,
)
from sansio_smtp._events import Event

from .helpers import drain, feed_ways


def greeted(config: Config | None = None) -> Connection:
    conn = Connection(SERVER, config)
    conn.send(Greeting(lines="mx.example.org ESMTP"))
    return conn


def read_one(conn: Connection, line: bytes) -> Event:
    """Feed ``line`` whole, byte by byte, and with trailing data; all must agree."""
    results = []
    for _, pieces in feed_ways(line):
        c = clone(conn)
        events = []
        for p in pieces:
            c.receive_data(p)
            events.extend(drain(c))
        assert len(events) == 1, events
        results.append(events[0])
    # with trailing data: the next command stays buffered, untouched
    c = clone(conn)
    c.receive_data(line + b"NOOP\r\n")
    first = c.next_event()
    assert c.next_event() is PAUSED
    results.append(first)
    assert all(r == results[0] for r in results), results
    # and the original connection processes it for real
    conn.receive_data(line)
    event = conn.next_event()
    assert event == results[0]
    return event


_HISTORY: dict[int, list[tuple[str, object]]] = {}


def clone(conn: Connection) -> Connection:
    """A fresh server brought to the same point by replaying what it was sent."""
    new = Connection(SERVER, conn.config)
    for kind, item in _HISTORY.get(id(conn), []):
        if kind == "recv":
            assert isinstance(item, bytes)
            new.receive_data(item)
            ev = new.next_event()
            assert not isinstance(ev, type(NEED_DATA))
        else:
            assert isinstance(item, (Greeting, Reply))
            new.send(item)
    return new


class Server:
    """A server under test that records its history so read_one can replay it."""

    def __init__(self, config: Config | None = None) -> None:
        self.conn = Connection(SERVER, config)
        self.history: list[tuple[str, object]] = []
        _HISTORY[id(self.conn)] = self.history
        self.send(Greeting(lines="mx.example.org ESMTP"))

    def send(self, event: Greeting | Reply) -> bytes:
        data = self.conn.send(event)
        self.history.append(("send", event))
        return data

    def read(self, line: bytes) -> Event:
        event = read_one(self.conn, line)
        self.history.append(("recv", line))
        return event

    def answer(self, event: Event) -> Reply:
        reply = self.conn.default_reply(event)
        self.send(reply)
        return reply

    def do(self, line: bytes) -> tuple[Event, Reply]:
        event = self.read(line)
        return event, self.answer(event)


def hint(event: Event) -> int:
    assert isinstance(event, InvalidCommand), event
    return event.reply_hint.code


# --------------------------------------------------------------------- greeting, PAUSED


def test_server_waits_for_its_greeting() -> None:
    # RFC 5321 §3.1: the server speaks first; an early talker's bytes stay buffered.
    conn = Connection(SERVER)
    conn.receive_data(b"EHLO early.example\r\n")
    assert conn.next_event() is PAUSED
    conn.send(Greeting())
    assert conn.next_event() == Ehlo(domain="early.example")


def test_server_pauses_until_each_command_is_answered() -> None:
    # RFC 5321 §4.1.1 / RFC 2920 §3.2: replies go out in command order, one per command.
    conn = greeted()
    conn.receive_data(b"EHLO a.example\r\nNOOP\r\n")
    assert conn.next_event() == Ehlo(domain="a.example")
    assert conn.next_event() is PAUSED
    conn.send(conn.ehlo_reply())
    assert conn.next_event() == Noop()


def test_reply_without_command_is_refused() -> None:
    conn = greeted()
    with pytest.raises(LocalProtocolError):
        conn.send(Reply(code=250, lines="OK"))
    # RFC 5321 §3.8: 421 may be sent at any time, and closes
    conn.send(Reply(code=421, lines="shutting down", enhanced="4.3.2"))
    assert conn.state is State.CLOSED


def test_greeting_twice_is_refused() -> None:
    conn = greeted()
    with pytest.raises(LocalProtocolError):
        conn.send(Greeting())


def test_554_greeting_allows_only_quit() -> None:
    # RFC 5321 §3.1: after 554 the server waits for QUIT and answers 503 to other commands
    conn = Connection(SERVER)
    conn.send(Greeting(code=554, lines="no service"))
    srv_events = []
    conn.receive_data(b"EHLO x\r\n")
    srv_events.append(conn.next_event())
    assert hint(srv_events[0]) == 503
    conn.send(conn.default_reply(srv_events[0]))
    conn.receive_data(b"QUIT\r\n")
    assert conn.next_event() == Quit()
    conn.send(conn.default_reply(Quit()))
    assert conn.state is State.CLOSED


# -------------------------------------------------------------------- command parsing


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"EHLO client.example.org\r\n", Ehlo(domain="client.example.org")),
        (b"ehlo [192.0.2.1]\r\n", Ehlo(domain="[192.0.2.1]")),
        (b"HELO my_host\r\n", Helo(domain="my_host")),
        (b"NOOP\r\n", Noop()),
        (b"noop anything at all\r\n", Noop(text="anything at all")),
        (b"HELP\r\n", Help()),
        (b"HELP MAIL\r\n", Help(topic="MAIL")),
        (b"VRFY bob\r\n", Vrfy(text="bob")),
        (b"EXPN staff\r\n", Expn(text="staff")),
        (b"RSET\r\n", Rset()),
        (b"QUIT\r\n", Quit()),
    ],
)
def test_command_parsing(line: bytes, expected: Event) -> None:
    # RFC 5321 §4.1.1: verbs are case-insensitive; §4.1.4: these work in any state
    server = Server()
    assert server.read(line) == expected


def test_mail_and_rcpt_parsing() -> None:
    # RFC 5321 §4.1.1.2 / §4.1.1.3 / §4.1.2; "FROM:" and "TO:" are case-insensitive
    server = Server()
    server.do(b"EHLO c.example\r\n")
    event, _ = server.do(b"mail from:<Alice.Smith@Example.ORG>\r\n")
    assert event == MailFrom(reverse_path=Address("Alice.Smith", "Example.ORG"))
    event, _ = server.do(b'RCPT To:<"john doe"@[IPv6:2001:db8::1]>\r\n')
    assert event == RcptTo(forward_path=Address("john doe", "[IPv6:2001:db8::1]"))
    event, _ = server.do(b"RCPT TO:<postmaster>\r\n")
    assert isinstance(event, RcptTo) and event.forward_path.is_postmaster


def test_null_reverse_path() -> None:
    # RFC 5321 §4.5.5: bounces use the null reverse-path <>
    server = Server()
    server.do(b"HELO c.example\r\n")
    event, _ = server.do(b"MAIL FROM:<>\r\n")
    assert event == MailFrom(reverse_path=None)


def test_source_route_is_dropped() -> None:
    # RFC 5321 §4.1.1.3 and Appendix C: accept source routes, ignore them
    server = Server()
    server.do(b"HELO c.example\r\n")
    server.do(b"MAIL FROM:<a@b.example>\r\n")
    event, _ = server.do(b"RCPT TO:<@relay1.example,@relay2.example:joe@c.example>\r\n")
    assert event == RcptTo(forward_path="joe@c.example")


def test_space_after_colon_is_tolerated() -> None:
    server = Server()
    server.do(b"HELO c.example\r\n")
    event, _ = server.do(b"MAIL FROM: <a@b.example>\r\n")
    assert event == MailFrom(reverse_path="a@b.example")


@pytest.mark.parametrize(
    "line",
    [
        b"MAIL FROM:a@b.example\r\n",  # no angle brackets
        b"MAIL FROM:<a@@b.example>\r\n",
        b"MAIL FROM:<a b@c.example>\r\n",
        b"MAIL TO:<a@b.example>\r\n",
        b"MAIL FROM:<a@-b.example>\r\n",
        b"MAIL FROM:<a@[300.1.1.1]>\r\n",
    ],
)
def test_mail_syntax_errors_get_501(line: bytes) -> None:
    # RFC 5321 §4.2.2: 501 Syntax error in parameters or arguments; never an exception
    server = Server()
    server.do(b"HELO c.example\r\n")
    event = server.read(line)
    assert hint(event) in (501, 553)


def test_unknown_verb_gets_500() -> None:
    # RFC 5321 §4.2.2: 500 Syntax error, command unrecognized
    server = Server()
    assert hint(server.read(b"FROB x\r\n")) == 500


def test_empty_line_gets_500() -> None:
    server = Server()
    assert hint(server.read(b"\r\n")) == 500


@pytest.mark.parametrize("line", [b"DATA now\r\n", b"QUIT please\r\n", b"EHLO\r\n", b"VRFY\r\n"])
def test_argument_errors_get_501(line: bytes) -> None:
    server = Server()
    assert hint(server.read(line)) == 501


def test_unknown_parameter_gets_555() -> None:
    # RFC 5321 §4.1.1.11: unrecognised MAIL/RCPT parameters get 555
    server = Server()
    server.do(b"EHLO c.example\r\n")
    assert hint(server.read(b"MAIL FROM:<a@b.example> FOO=BAR\r\n")) == 555


def test_parameter_of_unadvertised_extension_gets_555() -> None:
    # RFC 5321 §4.1.1.11 (+ RFC 1870): SIZE= is only known when SIZE was advertised
    server = Server()
    server.do(b"EHLO c.example\r\n")
    assert hint(server.read(b"MAIL FROM:<a@b.example> SIZE=100\r\n")) == 555
    server2 = Server(Config(extensions={"SIZE": ("1000",)}))
    server2.do(b"EHLO c.example\r\n")
    event = server2.read(b"MAIL FROM:<a@b.example> size=100\r\n")
    assert isinstance(event, MailFrom) and event.params == {"SIZE": "100"}


def test_duplicate_parameter_gets_501() -> None:
    server = Server(Config(extensions={"SIZE": ()}))
    server.do(b"EHLO c.example\r\n")
    assert hint(server.read(b"MAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\n")) == 501


def test_utf8_address_needs_smtputf8() -> None:
    # RFC 6531 §3.4 / §3.7.4.1: UTF-8 addresses only with SMTPUTF8 on MAIL, else 553 5.6.7
    server = Server(Config(extensions={"SMTPUTF8": ()}))
    server.do(b"EHLO c.example\r\n")
    event = server.read("MAIL FROM:<jörg@bücher.example>\r\n".encode())
    assert isinstance(event, InvalidCommand) and event.reply_hint.code == 553
    assert str(event.reply_hint.enhanced) == "5.6.7"
    server.answer(event)
    event, _ = server.do("MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".encode())
    assert event == MailFrom(reverse_path="jörg@bücher.example", params={"SMTPUTF8": None})
    event, _ = server.do("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n".encode())
    assert isinstance(event, RcptTo) and event.forward_path.local_part == "δοκιμή"


def test_invalid_utf8_is_a_500_not_a_crash() -> None:
    server = Server()
    assert hint(server.read(b"NOOP \xff\xfe\r\n")) == 500


# ----------------------------------------------------------------------- sequencing


def test_rcpt_before_mail_gets_503() -> None:
    # RFC 5321 §3.3 / §4.1.4: RCPT before MAIL is a bad sequence
    server = Server()
    server.do(b"EHLO c.example\r\n")
    assert hint(server.read(b"RCPT TO:<a@b.example>\r\n")) == 503


def test_mail_before_ehlo_gets_503() -> None:
    # RFC 5321 §4.1.4: a session that will contain mail transactions MUST first be
    # initialized by EHLO/HELO
    server = Server()
    assert hint(server.read(b"MAIL FROM:<a@b.example>\r\n")) == 503


def test_data_without_recipients() -> None:
    # RFC 5321 §3.3: DATA with no MAIL -> 503; with MAIL but no accepted RCPT -> 503 or 554
    server = Server()
    server.do(b"EHLO c.example\r\n")
    assert hint(server.read(b"DATA\r\n")) == 503
    server.answer(InvalidCommand(line=b"", reply_hint=Reply(code=503)))
    server.do(b"MAIL FROM:<a@b.example>\r\n")
    event = server.read(b"RCPT TO:<x@b.example>\r\n")
    server.send(Reply(code=550, lines="no such user", enhanced="5.1.1"))
    assert isinstance(event, RcptTo)
    assert hint(server.read(b"DATA\r\n")) == 554


def test_second_mail_gets_503() -> None:
    # RFC 5321 §4.1.4: MAIL in the middle of a transaction is a bad sequence
    server = Server()
    server.do(b"EHLO c.example\r\n")
    server.do(b"MAIL FROM:<a@b.example>\r\n")
    assert hint(server.read(b"MAIL FROM:<c@b.example>\r\n")) == 503


@pytest.mark.parametrize("reset", [b"RSET\r\n", b"EHLO c.example\r\n", b"HELO c.example\r\n"])
def test_rset_ehlo_helo_reset_the_transaction(reset: bytes) -> None:
    # RFC 5321 §4.1.4: RSET, EHLO and HELO abort the transaction; MAIL may follow
    server = Server()
    server.do(b"EHLO c.example\r\n")
    server.do(b"MAIL FROM:<a@b.example>\r\n")
    server.do(b"RCPT TO:<c@b.example>\r\n")
    server.do(reset)
    assert server.conn.state is State.READY
    event, _ = server.do(b"MAIL FROM:<d@b.example>\r\n")
    assert isinstance(event, MailFrom)


def test_rejected_mail_leaves_state() -> None:
    # RFC 5321 §4.1.4: after a failure reply the server stays in the same state
    server = Server()
    server.do(b"EHLO c.example\r\n")
    server.read(b"MAIL FROM:<spam@b.example>\r\n")
    server.send(Reply(code=550, lines="go away", enhanced="5.7.1"))
    assert server.conn.state is State.READY
    assert hint(server.read(b"RCPT TO:<c@b.example>\r\n")) == 503


def test_quit_closes() -> None:
    # RFC 5321 §4.1.1.10: QUIT -> 221 and close
    server = Server()
    _, reply = server.do(b"QUIT\r\n")
    assert reply.code == 221
    assert server.conn.state is State.CLOSED
    assert server.conn.next_event() == ConnectionClosed()


def test_too_many_recipients_gets_452() -> None:
    # RFC 5321 §4.5.3.1.8 (at least 100) and §4.5.3.1.10 (452 too many recipients)
    conn = greeted(Config(max_recipients=100))
    lines = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n" + b"".join(
        b"RCPT TO:<r%d@b.example>\r\n" % i for i in range(101)
    )
    conn.receive_data(lines)
    events = []
    while (ev := conn.next_event()) is not NEED_DATA:
        assert ev is not PAUSED
        events.append(ev)
        conn.send(conn.default_reply(ev))
    assert all(isinstance(e, RcptTo) for e in events[2:102])
    assert hint(events[-1]) == 452


def test_peer_close_gives_connection_closed() -> None:
    conn = greeted()
    conn.receive_data(b"NOO")
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.state is State.CLOSED


# ----------------------------------------------------------------------- line limits


def test_command_line_limit() -> None:
    # RFC 5321 §4.5.3.1.4: 512 octets including CRLF; longer -> 500
    server = Server()
    ok = b"NOOP " + b"x" * (512 - 7) + b"\r\n"
    assert len(ok) == 512
    assert server.do(ok)[0] == Noop(text="x" * 505)
    assert hint(server.read(b"NOOP " + b"x" * (512 - 6) + b"\r\n")) == 500


def test_overlong_line_is_dropped_in_bounded_memory() -> None:
    # RFC 5321 §4.5.3.1.4 / §4.5.3.1.10 "500 Line too long"; nothing grows without bound
    conn = greeted()
    chunk = b"A" * 65536
    for _ in range(64):  # 4 MiB without a newline
        conn.receive_data(chunk)
        assert conn.next_event() is NEED_DATA
        assert len(conn.trailing_data[0]) <= 65536 + 512
    conn.receive_data(b"AAAA\r\nNOOP\r\n")
    event = conn.next_event()
    assert hint(event) == 500
    conn.send(conn.default_reply(event))
    assert conn.next_event() == Noop()


def test_bare_lf_commands_accepted_by_default() -> None:
    # Postfix-like default: a bare-LF command line is treated as ending in CRLF
    conn = greeted()
    conn.receive_data(b"EHLO c.example\n")
    assert conn.next_event() == Ehlo(domain="c.example")


def test_bare_lf_commands_rejected_by_policy() -> None:
    from sansio_smtp import LineEndingPolicy

    conn = greeted(Config(line_endings=LineEndingPolicy.REJECT))
    conn.receive_data(b"EHLO c.example\n")
    assert hint(conn.next_event()) == 500


def test_ehlo_reply_from_extension_set() -> None:
    # RFC 5321 §4.1.1.1: ehlo-ok-rsp: domain line, then one keyword line each
    conn = greeted(Config(hostname="mx.example", extensions={"SIZE": "1000", "8bitmime": ()}))
    conn.receive_data(b"EHLO c\r\n")
    conn.next_event()
    wire = conn.send(conn.ehlo_reply("hello"))
    assert wire == b"250-mx.example hello\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
    assert "size" in conn.extensions and conn.extensions["SIZE"] == ("1000",)


def test_data_command_answered_with_250_is_refused() -> None:
    # RFC 5321 §4.3.2: DATA -> I: 354; a 2xx reply would desynchronise the client
    server = Server()
    server.do(b"EHLO c\r\n")
    server.do(b"MAIL FROM:<a@b.example>\r\n")
    server.do(b"RCPT TO:<c@b.example>\r\n")
    assert server.read(b"DATA\r\n") == Data()
    with pytest.raises(LocalProtocolError):
        server.conn.send(Reply(code=250, lines="OK"))
    server.send(Reply(code=354, lines="go"))
    assert server.conn.state is State.DATA
    server.conn.receive_data(b".\r\n")
    assert server.conn.next_event() == EndOfMessage()
