"""AUTH framing in the core (RFC 4954): commands, 334 challenges, base64, cancel, the
policy around TLS, both roles. The SASL mechanisms themselves are tested in test_sasl."""

from __future__ import annotations

import pytest

from sansio_smtp import (
    CLIENT,
    SERVER,
    Auth,
    AuthResponse,
    Config,
    Connection,
    Ehlo,
    Greeting,
    InvalidCommand,
    LocalProtocolError,
    MailFrom,
    RcptTo,
    Reply,
    State,
)

from .helpers import ConnectionPair


def auth_pair(
    *, tls: bool = True, allow_plaintext: bool = False, **config: object
) -> ConnectionPair:
    server_config = Config(
        extensions={"AUTH": ("PLAIN", "LOGIN", "SCRAM-SHA-256"), "PIPELINING": ()},
        allow_plaintext_auth=allow_plaintext,
        **config,  # type: ignore[arg-type]
    )
    client_config = Config(allow_plaintext_auth=allow_plaintext)
    p = ConnectionPair(client_config, server_config)
    p.client = Connection(CLIENT, client_config, tls=tls)
    p.server = Connection(SERVER, server_config, tls=tls)
    p.server_sends(Greeting(lines="mx"))
    p.exchange(Ehlo(domain="c"))
    return p


def test_auth_plain_with_initial_response() -> None:
    # RFC 4954 §4: AUTH mechanism initial-response; 235 on success
    p = auth_pair()
    assert p.client.extensions["AUTH"] == ("PLAIN", "LOGIN", "SCRAM-SHA-256")
    wire = p.client.send(Auth(mechanism="plain", initial_response=b"\0user\0pass"))
    assert wire == b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"
    p.server.receive_data(wire)
    ev = p.server.next_event()
    assert ev == Auth(mechanism="PLAIN", initial_response=b"\0user\0pass")
    p.client.receive_data(p.server.send(Reply(code=235, lines="OK", enhanced="2.7.0")))
    assert p.client.next_event() == Reply(code=235, lines="OK", enhanced="2.7.0")
    assert p.client.authenticated and p.server.authenticated
    assert p.client.state is p.server.state is State.READY


def test_empty_initial_response_is_equals_sign() -> None:
    # RFC 4954 §4: "=" stands for an empty initial response
    p = auth_pair()
    assert p.client.send(Auth(mechanism="PLAIN", initial_response=b"")) == b"AUTH PLAIN =\r\n"
    p.server.receive_data(b"AUTH PLAIN =\r\n")
    assert p.server.next_event() == Auth(mechanism="PLAIN", initial_response=b"")


def test_challenge_response_exchange() -> None:
    # RFC 4954 §4: 334 base64 challenges, base64 responses
    p = auth_pair()
    (ev,) = p.client_sends(Auth(mechanism="LOGIN"))
    (reply,) = p.server_sends(Reply.auth_challenge(b"Username:"))
    assert isinstance(reply, Reply) and reply.challenge == b"Username:"
    assert p.client.state is p.server.state is State.AUTH
    (ev,) = p.client_sends(AuthResponse(data=b"user"))
    assert ev == AuthResponse(data=b"user")
    p.server_sends(Reply.auth_challenge(b"Password:"))
    (ev,) = p.client_sends(AuthResponse(data=b"secret"))
    p.server_sends(Reply(code=235, lines="ok", enhanced="2.7.0"))
    assert p.client.authenticated and p.client.state is State.READY


def test_cancel_with_star() -> None:
    # RFC 4954 §4: "*" cancels; the server MUST reject with 501
    p = auth_pair()
    p.client_sends(Auth(mechanism="LOGIN"))
    p.server_sends(Reply.auth_challenge(b"Username:"))
    assert p.client.send(AuthResponse(data=None)) == b"*\r\n"
    p.server.receive_data(b"*\r\n")
    assert p.server.next_event() == AuthResponse(data=None)
    p.client.receive_data(p.server.send(Reply(code=501, lines="cancelled", enhanced="5.7.0")))
    p.client.next_event()
    assert p.client.state is p.server.state is State.READY
    assert not p.client.authenticated


def test_undecodable_base64_gets_501() -> None:
    # RFC 4954 §4: a response that cannot be base64-decoded is rejected with 501
    p = auth_pair()
    p.server.receive_data(b"AUTH PLAIN not*base64\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 501
    p.server.send(ev.reply_hint)
    p.server.receive_data(b"AUTH LOGIN\r\n")
    p.server.next_event()
    p.server.send(Reply.auth_challenge(b"Username:"))
    p.server.receive_data(b"%%%\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 501
    p.server.send(ev.reply_hint)
    assert p.server.state is State.READY


def test_unknown_mechanism_gets_504() -> None:
    # RFC 4954 §4: 504 for an unsupported mechanism
    p = auth_pair()
    p.server.receive_data(b"AUTH CRAM-MD5\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 504
    with pytest.raises(LocalProtocolError):
        p.client.send(Auth(mechanism="CRAM-MD5"))


def test_auth_twice_gets_503() -> None:
    # RFC 4954 §4: after a successful AUTH, further AUTH commands get 503
    p = auth_pair()
    p.client_sends(Auth(mechanism="PLAIN", initial_response=b"\0u\0p"))
    p.server_sends(Reply(code=235, lines="ok"))
    with pytest.raises(LocalProtocolError):
        p.client.send(Auth(mechanism="PLAIN", initial_response=b"\0u\0p"))
    p.server.receive_data(b"AUTH PLAIN AHUAcA==\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 503


def test_auth_in_transaction_gets_503() -> None:
    # RFC 4954 §4: AUTH is not permitted during a mail transaction
    p = auth_pair()
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.server.receive_data(b"AUTH PLAIN AHUAcA==\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 503


def test_no_auth_before_tls_by_default() -> None:
    # RFC 4954 §6: 538 5.7.11 when the mechanism needs encryption; not advertised
    p = auth_pair(tls=False)
    assert "AUTH" not in p.client.extensions
    p.server.receive_data(b"AUTH PLAIN AHUAcA==\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 538
    assert str(ev.reply_hint.enhanced) == "5.7.11"


def test_client_never_sends_cleartext_credentials_without_tls() -> None:
    p = auth_pair(tls=False, allow_plaintext=True)
    assert "AUTH" in p.client.extensions
    strict = Connection(CLIENT, Config(), tls=False)
    strict.receive_data(b"220 mx\r\n")
    strict.next_event()
    strict.send(Ehlo(domain="c"))
    strict.receive_data(b"250-mx\r\n250 AUTH PLAIN SCRAM-SHA-256\r\n")
    strict.next_event()
    with pytest.raises(LocalProtocolError):
        strict.send(Auth(mechanism="PLAIN", initial_response=b"\0u\0p"))
    # issue 10 item 16: a SCRAM proof seen without TLS can be cracked offline
    with pytest.raises(LocalProtocolError):
        strict.send(Auth(mechanism="SCRAM-SHA-256", initial_response=b"n,,n=u,r=abc"))


def test_failed_attempts_limit() -> None:
    p = auth_pair(max_auth_failures=2)
    for _ in range(2):
        p.client_sends(Auth(mechanism="PLAIN", initial_response=b"\0u\0bad"))
        p.server_sends(Reply(code=535, lines="bad", enhanced="5.7.8"))
    p.server.receive_data(b"AUTH PLAIN AHUAcA==\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 421
    p.server.send(ev.reply_hint)
    assert p.server.state is State.CLOSED


def test_auth_line_may_be_long() -> None:
    # RFC 4954 §4: AUTH lines up to 12288 octets
    p = auth_pair()
    token = b"x" * 6000
    wire = p.client.send(Auth(mechanism="PLAIN", initial_response=token))
    assert len(wire) > 512
    p.server.receive_data(wire)
    assert p.server.next_event() == Auth(mechanism="PLAIN", initial_response=token)


def test_secrets_are_redacted() -> None:
    text = repr(Auth(mechanism="PLAIN", initial_response=b"\0user\0hunter2"))
    text += repr(AuthResponse(data=b"hunter2"))
    assert "hunter2" not in text and "redacted" in text


def test_mail_auth_parameter() -> None:
    # RFC 4954 §5: AUTH=<mailbox> on MAIL, xtext-encoded
    p = auth_pair()
    (ev,) = p.client_sends(MailFrom(reverse_path="a@b.example", params={"AUTH": "a+2Bb@b.example"}))
    assert isinstance(ev, MailFrom) and ev.params["AUTH"] == "a+2Bb@b.example"
    p.server_sends(p.server.default_reply(ev))
    p.exchange(RcptTo(forward_path="c@d.example"))
