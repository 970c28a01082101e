"""Session limits of the core: the junk-command limit (a server), and AUTH only under TLS
(a client), each with its source."""

from __future__ import annotations

import pytest

from sansio_smtp import (
    CLIENT,
    SERVER,
    Auth,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Greeting,
    InvalidCommand,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    RcptTo,
    Reply,
    State,
    Vrfy,
)

from .helpers import ConnectionPair, drain


def _serve(conn: Connection, wire: bytes) -> list[Reply]:
    """Feed ``wire`` and answer every command with its default reply."""
    conn.receive_data(wire)
    replies = []
    for _ in range(10_000):
        events = drain(conn)
        if not conn.pending or conn.state is State.CLOSED:
            return replies
        reply = conn.default_reply(conn.pending[0] if not events else events[-1])
        conn.send(reply)
        replies.append(reply)
    raise AssertionError("no progress")


def _greeted(config: Config | None = None) -> Connection:
    server = Connection(SERVER, config)
    server.send(Greeting(lines="mx.example ESMTP"))
    return server


# Postfix smtpd_junk_command_limit (default 100): NOOP, VRFY, ETRN, RSET; RFC 5321 §3.8: 421
@pytest.mark.parametrize("verb", [b"NOOP", b"RSET", b"VRFY x", b"EXPN x", b"HELP"])
def test_junk_commands_past_the_limit_get_421_and_close(verb: bytes) -> None:
    server = _greeted()
    replies = _serve(server, b"EHLO c.example\r\n" + (verb + b"\r\n") * 150)
    codes = [r.code for r in replies]
    # EHLO counts too: 99 more are answered, the 100th is refused
    assert codes[1:100] == [codes[1]] * 99 and codes[1] != 421
    assert codes[100] == 421 and str(replies[100].enhanced) == "4.7.0"
    assert len(codes) == 101  # nothing read after the 421
    assert server.state is State.CLOSED


def test_junk_count_starts_again_after_an_accepted_message() -> None:
    # Postfix: "The junk command count is reset after mail is delivered."
    server = _greeted(Config(max_junk_commands=5))
    message = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\n"
    wire = b"EHLO c\r\n" + b"NOOP\r\n" * 4 + message + b"NOOP\r\n" * 5 + b"NOOP\r\n"
    codes = [r.code for r in _serve(server, wire)]
    assert codes == [250] * 5 + [250, 250, 354, 250] + [250] * 5 + [421]


def test_refused_message_does_not_reset_the_junk_count() -> None:
    server = _greeted(Config(max_junk_commands=3, max_message_size=2))
    wire = (
        b"EHLO c\r\n"
        + b"NOOP\r\n" * 2
        + b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\ntoo long\r\n.\r\n"
        + b"RSET\r\n"
    )
    codes = [r.code for r in _serve(server, wire)]
    assert codes[-2] == 552 and codes[-1] == 421


def test_no_junk_limit() -> None:
    server = _greeted(Config(max_junk_commands=None))
    codes = [r.code for r in _serve(server, b"EHLO c\r\n" + b"NOOP\r\n" * 300)]
    assert set(codes) == {250} and len(codes) == 301


def test_junk_limit_is_a_positive_int_or_none() -> None:
    with pytest.raises(ValueError):
        Config(max_junk_commands=0)


def test_junk_refusal_is_an_invalid_command_event() -> None:
    server = _greeted(Config(max_junk_commands=2))
    _serve(server, b"EHLO c\r\nNOOP\r\n")
    server.receive_data(b"VRFY x\r\n")
    (event,) = drain(server)
    assert isinstance(event, InvalidCommand) and isinstance(event.command, Vrfy)
    assert event.reply_hint.code == 421


# RFC 4954 §4, §6 and RFC 3207 §6: without TLS the client sends no AUTH of any mechanism
# (a CRAM-MD5 or SCRAM exchange seen by a man in the middle who stripped STARTTLS can be
# cracked offline; issue 10 item 16), unless Config(allow_plaintext_auth=True)
@pytest.mark.parametrize(
    "mechanism", ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "XOAUTH2"]
)
def test_client_sends_no_auth_without_tls(mechanism: str) -> None:
    server_config = Config(
        extensions={"AUTH": (mechanism,)}, allow_plaintext_auth=True, hostname="mx"
    )
    pair = ConnectionPair(server_config=server_config, greeting=Greeting(lines="mx"))
    pair.exchange(Ehlo(domain="c.example"))
    with pytest.raises(LocalProtocolError, match="allow_plaintext_auth"):
        pair.client.send(Auth(mechanism=mechanism))
    assert pair.client.state is State.READY and not pair.client.pending

    allowed = ConnectionPair(
        client_config=Config(allow_plaintext_auth=True),
        server_config=server_config,
        greeting=Greeting(lines="mx"),
    )
    allowed.exchange(Ehlo(domain="c.example"))
    assert allowed.client.send(Auth(mechanism=mechanism)).startswith(b"AUTH ")


def test_client_sends_auth_under_tls() -> None:
    config = Config(extensions={"AUTH": ("CRAM-MD5",)})
    client, server = Connection(CLIENT, tls=True), Connection(SERVER, config, tls=True)
    client.receive_data(server.send(Greeting(lines="mx")))
    drain(client)
    server.receive_data(client.send(Ehlo(domain="c")))
    (ehlo,) = drain(server)
    client.receive_data(server.send(server.default_reply(ehlo)))
    drain(client)
    assert client.send(Auth(mechanism="CRAM-MD5")) == b"AUTH CRAM-MD5\r\n"


def test_message_events_still_flow_under_the_junk_limit() -> None:
    # a busy legitimate session: many messages, a NOOP between each
    pair = ConnectionPair(greeting=Greeting(lines="mx"))
    pair.exchange(Ehlo(domain="c.example"))
    for _ in range(150):
        assert pair.exchange(Noop()).code == 250
        assert pair.exchange(MailFrom(reverse_path="a@b.example")).code == 250
        assert pair.exchange(RcptTo(forward_path="c@d.example")).code == 250
        assert pair.exchange(Data()).code == 354
        pair.server.receive_data(pair.client.send(MessageData(data=b"hi\r\n")))
        pair.server.receive_data(pair.client.send(EndOfMessage()))
        events = drain(pair.server)
        assert isinstance(events[-1], EndOfMessage)
        pair.server_sends(pair.server.default_reply(events[-1]))
    assert pair.client.state is State.READY


def test_in_chunk_while_a_bdat_chunk_is_read_even_a_refused_one() -> None:
    # RFC 3030 §2: the chunk's octets follow the BDAT line whatever the reply will be
    for extensions in ({"CHUNKING": ()}, {}):  # without CHUNKING the BDAT is refused
        server = _greeted(Config(extensions=extensions))
        _serve(server, b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
        server.receive_data(b"BDAT 10 LAST\r\nhello")
        drain(server)
        assert server.in_chunk
        server.receive_data(b"world")
        drain(server)
        assert not server.in_chunk


# Postfix smtpd_hard_error_limit (20); RFC 5321 §3.8: 421 closes
def test_refused_command_lines_past_the_limit_get_421_and_close() -> None:
    server = _greeted()
    wire = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n" + b"MAIL FROM:<a@b.example>\r\n" * 30
    replies = _serve(server, wire)
    codes = [r.code for r in replies]
    assert codes[:2] == [250, 250]
    assert codes[2:22] == [503] * 20  # nested MAIL (RFC 5321 §4.1.4)
    assert codes[22] == 421 and str(replies[22].enhanced) == "4.7.0"
    assert len(codes) == 23 and server.state is State.CLOSED


def test_error_count_starts_again_after_an_accepted_message() -> None:
    server = _greeted(Config(max_invalid_commands=2))
    message = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\n"
    wire = b"EHLO c\r\n" + b"BOGUS\r\n" * 2 + message + b"BOGUS\r\n" * 3
    codes = [r.code for r in _serve(server, wire)]
    assert codes == [250, 500, 500, 250, 250, 354, 250, 500, 500, 421]


def test_repeated_ehlo_is_junk() -> None:
    server = _greeted(Config(max_junk_commands=3))
    codes = [r.code for r in _serve(server, b"EHLO c\r\n" * 5)]
    assert codes == [250, 250, 250, 421]
