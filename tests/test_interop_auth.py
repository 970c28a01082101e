"""AUTH end to end (RFC 4954): stdlib smtplib logs in to our server with PLAIN, LOGIN and
CRAM-MD5, and our client logs in to our server with every password mechanism, through the
real adapters on loopback; wrong passwords fail with 535 and nothing is delivered."""

from __future__ import annotations

import smtplib

import pytest

from sansio_smtp import Config
from sansio_smtp.adapters import (
    MemoryHandler,
    SMTPAuthError,
    SMTPClient,
    SyncServer,
    TLSMode,
)

MESSAGE = b"Subject: auth\r\n\r\nhello\r\n"
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256")


def server(mechanisms: tuple[str, ...]) -> tuple[SyncServer, MemoryHandler]:
    handler = MemoryHandler()
    config = Config(
        hostname="mx.test",
        extensions={"AUTH": mechanisms, "PIPELINING": (), "8BITMIME": ()},
        # loopback tests without TLS: the policy switch that allows AUTH in the clear
        allow_plaintext_auth=True,
    )
    return SyncServer(handler, port=0, config=config, auth={"alice": "wonder land"}), handler


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_logs_in(mechanism: str) -> None:
    srv, handler = server((mechanism,))
    with srv, smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as smtp:
        smtp.ehlo("c.example")
        assert smtp.has_extn("auth")
        smtp.user, smtp.password = "alice", "wonder land"
        code, _ = smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))
        assert code == 235  # RFC 4954 §6: 235 2.7.0 Authentication Succeeded
        smtp.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
        assert handler.wait_for(1)
        assert handler.messages[0].authenticated_user == "alice"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_wrong_password(mechanism: str) -> None:
    srv, _handler = server((mechanism,))
    with srv, smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as smtp:
        smtp.ehlo("c.example")
        smtp.user, smtp.password = "alice", "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))
        assert info.value.smtp_code == 535  # RFC 4954 §6: 535 5.7.8


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_our_client_logs_in_with_each_mechanism(mechanism: str) -> None:
    srv, handler = server((mechanism,))
    with (
        srv,
        SMTPClient(
            "127.0.0.1",
            srv.port,
            tls=TLSMode.PLAIN,
            username="alice",
            password="wonder land",
            allow_plaintext_auth=True,
        ) as client,
    ):
        assert client.authenticated
        result = client.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
        assert result.ok
    assert handler.messages[0].authenticated_user == "alice"


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_our_client_wrong_password(mechanism: str) -> None:
    srv, handler = server((mechanism,))
    with srv:
        client = SMTPClient(
            "127.0.0.1",
            srv.port,
            tls=TLSMode.PLAIN,
            username="alice",
            password="not it",
            allow_plaintext_auth=True,
        )
        with pytest.raises(SMTPAuthError) as info:
            client.connect()
        client.close()
        assert info.value.reply is not None and info.value.reply.code == 535
    assert handler.messages == []


def test_client_picks_the_strongest_common_mechanism() -> None:
    srv, _ = server(MECHANISMS)
    transcript: list[str] = []
    with (
        srv,
        SMTPClient(
            "127.0.0.1",
            srv.port,
            tls=TLSMode.PLAIN,
            username="alice",
            password="wonder land",
            allow_plaintext_auth=True,
            transcript=True,
        ) as client,
    ):
        transcript = [entry.text for entry in client.transcript]
    auth_lines = [t for t in transcript if t.startswith("AUTH ")]
    assert auth_lines and auth_lines[0].startswith("AUTH SCRAM-SHA-256")
    assert "wonder land" not in "\n".join(transcript)  # redacted
