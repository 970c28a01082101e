"""SCRAM -PLUS over the network: tls-server-end-point channel binding (RFC 5929 §4.1) taken
by the clients from the server's certificate and by the servers from their
``tls_certificate`` option, through every adapter; against independent implementations
(smtplib driven by scramp as the client; aiosmtpd with a scramp-backed mechanism as the
server); and the failures channel binding exists for: a TLS-terminating man in the middle
(the certificates differ) and a downgrade from -PLUS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sansio_smtp import (
    CLIENT,
    SERVER,
    Auth,
    Config,
    Connection,
    Ehlo,
    Greeting,
    InvalidCommand,
    LocalProtocolError,
)
from sansio_smtp.adapters import (
    AsyncioServer,
    AsyncSMTPClient,
    Envelope,
    MemoryHandler,
    Session,
    SMTPAuthError,
    SMTPClient,
    SyncServer,
    TLSMode,
)
from sansio_smtp.adapters.server._credentials import server_channel_binding

from .certs import TestCerts, test_certs

USERS = {"alice": "wonder land"}
MESSAGE = b"Subject: bound\r\n\r\nhello\r\n"
TIMEOUT = 10.0


class Recorder(MemoryHandler):
    """Also records the AUTH mechanism each message's session used."""

    def __init__(self) -> None:
        super().__init__()
        self.mechanisms: list[str | None] = []

    def data(self, session: Session, envelope: Envelope) -> None:
        self.mechanisms.append(session.auth_mechanism)
        super().data(session, envelope)


def bound_server(
    handler: object, certs: TestCerts, certificate: object = None, **options: Any
) -> SyncServer:
    """A SyncServer with the test certificate, a password table and (by default) its own
    certificate as ``tls_certificate``."""
    return SyncServer(
        handler,
        port=0,
        tls_context=certs.server_context(),
        tls_certificate=certs.cert_pem if certificate is None else certificate,
        auth=USERS,
        **options,
    )


def other_certificate() -> bytes:
    """A second certificate for localhost from another CA: what a TLS-terminating proxy
    would present instead of the server's own."""
    trustme = pytest.importorskip("trustme")
    return bytes(trustme.CA().issue_cert("localhost").cert_chain_pems[0].bytes())


def auth_lines(client: SMTPClient | AsyncSMTPClient) -> list[str]:
    return [e.text for e in client.transcript if e.text.startswith("AUTH ")]


def client_kwargs(certs: TestCerts, tls: TLSMode, **extra: Any) -> dict[str, Any]:
    return {
        "tls": tls,
        "ssl_context": certs.client_context(),
        "server_hostname": "localhost",
        "username": "alice",
        "password": "wonder land",
        "transcript": True,
        "timeout": TIMEOUT,
        **extra,
    }


# ------------------------------------------------------------------ our client, our servers


@pytest.mark.parametrize("tls", [TLSMode.STARTTLS_REQUIRED, TLSMode.IMPLICIT])
def test_sync_pair_uses_scram_plus(tls: TLSMode) -> None:
    # RFC 5802 §6: both ends have binding data, so -PLUS is offered and chosen
    certs = test_certs()
    handler = Recorder()
    server = bound_server(handler, certs, implicit_tls=tls is TLSMode.IMPLICIT)
    with server, SMTPClient("127.0.0.1", server.port, **client_kwargs(certs, tls)) as client:
        assert client.authenticated
        assert client.extensions["AUTH"][0] == "SCRAM-SHA-256-PLUS"
        assert client.sendmail("a@example.org", ["b@example.net"], MESSAGE).ok
        lines = auth_lines(client)
    assert handler.wait_for(1)
    assert lines[0].startswith("AUTH SCRAM-SHA-256-PLUS")
    assert handler.mechanisms == ["SCRAM-SHA-256-PLUS"]
    assert handler.messages[0].authenticated_user == "alice"


def test_asyncio_pair_uses_scram_plus() -> None:
    certs = test_certs()
    handler = Recorder()

    async def main() -> list[str]:
        async with (
            AsyncioServer(
                handler,
                port=0,
                tls_context=certs.server_context(),
                tls_certificate=certs.cert_pem.read_bytes(),  # the file's bytes work too
                auth=USERS,
            ) as server,
            AsyncSMTPClient(
                "127.0.0.1", server.port, **client_kwargs(certs, TLSMode.STARTTLS_REQUIRED)
            ) as client,
        ):
            assert (await client.sendmail("a@example.org", ["b@example.net"], MESSAGE)).ok
            return auth_lines(client)

    lines = asyncio.run(asyncio.wait_for(main(), 30))
    assert lines[0].startswith("AUTH SCRAM-SHA-256-PLUS")
    assert handler.mechanisms == ["SCRAM-SHA-256-PLUS"]


def test_anyio_pair_uses_scram_plus() -> None:
    anyio = pytest.importorskip("anyio")
    from sansio_smtp.adapters import AnyioServer, AnyioSMTPClient

    certs = test_certs()
    handler = Recorder()

    async def main() -> list[str]:
        async with (
            AnyioServer(
                handler,
                port=0,
                tls_context=certs.server_context(),
                implicit_tls=True,
                tls_certificate=str(certs.cert_pem),
                auth=USERS,
            ) as server,
            AnyioSMTPClient(
                "127.0.0.1", server.port, **client_kwargs(certs, TLSMode.IMPLICIT)
            ) as client,
        ):
            assert (await client.sendmail("a@example.org", ["b@example.net"], MESSAGE)).ok
            return auth_lines(client)

    lines = anyio.run(main)
    assert lines[0].startswith("AUTH SCRAM-SHA-256-PLUS")
    assert handler.mechanisms == ["SCRAM-SHA-256-PLUS"]


def test_man_in_the_middle_is_detected() -> None:
    # RFC 5929 §4 / RFC 5802 §6: the client binds to the certificate it sees; a server that
    # sits behind another certificate (a TLS-terminating proxy) computes different data,
    # and the exchange fails even though the password is right
    certs = test_certs()
    handler = Recorder()
    server = bound_server(handler, certs, other_certificate())
    with server:
        client = SMTPClient(
            "127.0.0.1", server.port, **client_kwargs(certs, TLSMode.STARTTLS_REQUIRED)
        )
        with pytest.raises(SMTPAuthError) as info:
            client.connect()
        client.close()
    assert info.value.reply is not None and info.value.reply.code == 535  # RFC 4954 §6
    assert handler.messages == []


def test_server_without_certificate_offers_plain_scram() -> None:
    # No tls_certificate: no -PLUS. The client can bind, so it says so with GS2 flag "y"
    # (RFC 5802 §6), which a server that does not offer -PLUS accepts.
    certs = test_certs()
    handler = Recorder()
    server = SyncServer(handler, port=0, tls_context=certs.server_context(), auth=USERS)
    with (
        server,
        SMTPClient(
            "127.0.0.1", server.port, **client_kwargs(certs, TLSMode.STARTTLS_REQUIRED)
        ) as client,
    ):
        assert client.extensions["AUTH"] == ("SCRAM-SHA-256", "PLAIN", "LOGIN")
        assert client.sendmail("a@example.org", ["b@example.net"], MESSAGE).ok
    assert handler.mechanisms == ["SCRAM-SHA-256"]


def test_client_restricted_to_scram_without_plus_still_logs_in() -> None:
    # RFC 5802 §6: flag "y" to a server that offers -PLUS would be a downgrade and fail,
    # so a client told to use SCRAM-SHA-256 there sends "n"
    certs = test_certs()
    handler = Recorder()
    server = bound_server(handler, certs)
    kwargs = client_kwargs(certs, TLSMode.STARTTLS_REQUIRED, auth_mechanisms=["SCRAM-SHA-256"])
    with server, SMTPClient("127.0.0.1", server.port, **kwargs) as client:
        assert client.sendmail("a@example.org", ["b@example.net"], MESSAGE).ok
    assert handler.mechanisms == ["SCRAM-SHA-256"]


def test_flag_y_to_a_plus_server_is_a_downgrade() -> None:
    # RFC 5802 §6: "If the flag is set to "y" and the server supports channel binding, the
    # server MUST fail authentication" -- scramp plays the client that believes -PLUS
    # was stripped from the EHLO reply
    scramp = pytest.importorskip("scramp")
    certs = test_certs()
    server = bound_server(None, certs)
    with server, smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
        smtp.starttls(context=certs.client_context())
        smtp.ehlo("c.example")
        scram = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "wonder land")
        first = scram.get_client_first()
        assert first.startswith("n,")
        first = "y" + first[1:]  # GS2 flag "y": client supports binding, server seems not
        code, _ = smtp.docmd("AUTH", "SCRAM-SHA-256 " + base64.b64encode(first.encode()).decode())
        assert code == 535  # RFC 4954 §6: 535 5.7.8


# ------------------------------------------------------------------------ the core's rules


def test_plus_is_not_advertised_before_tls() -> None:
    # RFC 5802 §6 / RFC 4954 §4: -PLUS binds to the TLS channel, so before TLS a server
    # that allows plaintext AUTH lists only the other mechanisms
    config = Config(
        extensions={"AUTH": ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")},
        allow_plaintext_auth=True,
    )
    server = Connection(SERVER, config)
    assert [line for line in server.ehlo_reply().lines if line.startswith("AUTH")] == [
        "AUTH SCRAM-SHA-256"
    ]
    only_plus = Connection(
        SERVER, Config(extensions={"AUTH": ("SCRAM-SHA-1-PLUS",)}, allow_plaintext_auth=True)
    )
    assert not any(line.startswith("AUTH") for line in only_plus.ehlo_reply().lines)
    under_tls = Connection(SERVER, config, tls=True)
    assert "AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256" in under_tls.ehlo_reply().lines


def test_auth_plus_before_tls_is_refused_538() -> None:
    # RFC 4954 §6: 538 5.7.11 Encryption required for requested authentication mechanism
    config = Config(extensions={"AUTH": ("SCRAM-SHA-256-PLUS",)}, allow_plaintext_auth=True)
    server = Connection(SERVER, config)
    server.send(Greeting())
    server.receive_data(b"EHLO c.example\r\n")
    server.next_event()
    server.send(server.ehlo_reply())
    server.receive_data(b"AUTH SCRAM-SHA-256-PLUS\r\n")
    event = server.next_event()
    assert isinstance(event, InvalidCommand)
    assert event.reply_hint.code == 538 and str(event.reply_hint.enhanced) == "5.7.11"


def test_client_refuses_to_send_auth_plus_without_tls() -> None:
    # RFC 5802 §6: there is no channel to bind to
    client = Connection(CLIENT, Config(allow_plaintext_auth=True))
    client.receive_data(b"220 mx\r\n")
    client.next_event()
    client.send(Ehlo(domain="c.example"))
    client.receive_data(b"250-mx\r\n250 AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256\r\n")
    client.next_event()
    with pytest.raises(LocalProtocolError):
        client.send(Auth(mechanism="SCRAM-SHA-256-PLUS"))
    client.send(Auth(mechanism="SCRAM-SHA-256"))  # the refused send changed nothing


# ------------------------------------------------------------------------ server options


def test_server_option_errors() -> None:
    certs = test_certs()
    with pytest.raises(ValueError, match="tls_context"):
        SyncServer(None, port=0, tls_certificate=certs.cert_pem, auth=USERS)
    with pytest.raises(ValueError, match="channel binding"):
        SyncServer(
            None,
            port=0,
            tls_context=certs.server_context(),
            config=Config(extensions={"AUTH": ("SCRAM-SHA-256-PLUS",)}),
            auth=USERS,
        )
    with pytest.raises(ValueError):
        server_channel_binding(b"not a certificate")


def test_server_binding_matches_what_the_client_sees() -> None:
    # RFC 5929 §4.1: both ends hash the same certificate (the leaf of the chain file)
    certs = test_certs()
    context = certs.client_context()
    with (
        SyncServer(None, port=0, tls_context=certs.server_context()) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as raw,
    ):
        reply = raw.makefile("rb")
        for command in (b"", b"EHLO c.example\r\n", b"STARTTLS\r\n"):
            raw.sendall(command)
            while (line := reply.readline())[3:4] == b"-":
                pass  # RFC 5321 §4.2.1: the last line of a reply has a space
        assert line.startswith(b"220")
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
            tls.sendall(b"QUIT\r\n")
            tls.recv(1024)
    assert der is not None
    assert server_channel_binding(der) == server_channel_binding(certs.cert_pem)


def test_handler_authenticator_keeps_plain_and_login() -> None:
    # A custom auth hook may not answer SCRAM key lookups: only PLAIN LOGIN by default
    certs = test_certs()

    def check(session: Session, request: object) -> object:
        return None

    server = SyncServer(
        None,
        port=0,
        tls_context=certs.server_context(),
        tls_certificate=certs.cert_pem,
        auth=check,  # type: ignore[arg-type]
    )
    with server:
        assert server.config.extensions["AUTH"] == ("PLAIN", "LOGIN")


# -------------------------------------------------------------- independent implementations


def test_smtplib_with_scramp_binds_to_our_server() -> None:
    # A real peer: stdlib smtplib carries scramp's SCRAM-SHA-256-PLUS, whose binding data
    # scramp computes from the TLS socket itself (RFC 5929 §4.1)
    scramp = pytest.importorskip("scramp")
    certs = test_certs()
    handler = Recorder()
    server = bound_server(handler, certs)
    with server, smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
        smtp.ehlo("c.example")
        assert "SCRAM-SHA-256-PLUS" not in smtp.esmtp_features.get("auth", "")
        smtp.starttls(context=certs.client_context())
        smtp.ehlo("c.example")
        assert "SCRAM-SHA-256-PLUS" in smtp.esmtp_features["auth"].split()
        scram = scramp.ScramClient(
            ["SCRAM-SHA-256-PLUS"],
            "alice",
            "wonder land",
            channel_binding=("tls-server-end-point", smtp.sock),
        )
        steps = iter(
            [
                scram.get_client_first,
                lambda c: (scram.set_server_first(c.decode()), scram.get_client_final())[1],
                lambda c: (scram.set_server_final(c.decode()), "")[1],
            ]
        )

        def authobject(challenge: bytes | None = None) -> str:
            step = next(steps)
            return step() if challenge is None else step(challenge)  # type: ignore[call-arg]

        code, _ = smtp.auth("SCRAM-SHA-256-PLUS", authobject)
        assert code == 235  # RFC 4954 §6: 235 2.7.0
        smtp.sendmail("a@example.org", ["b@example.net"], MESSAGE)
    assert handler.wait_for(1)
    assert handler.mechanisms == ["SCRAM-SHA-256-PLUS"]


@contextlib.contextmanager
def aiosmtpd_scram_plus(certs: TestCerts, bound_to: str) -> Iterator[tuple[int, list[bytes]]]:
    """aiosmtpd requiring STARTTLS, with a SCRAM-SHA-256-PLUS mechanism run by scramp's
    server, which takes its binding data from the PEM text ``bound_to``."""
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    scramp = pytest.importorskip("scramp")
    from aiosmtpd.smtp import MISSING, AuthResult, auth_mechanism

    mechanism = scramp.ScramMechanism("SCRAM-SHA-256-PLUS")
    info = mechanism.make_auth_info("wonder land", iteration_count=4096)
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 2.0.0 OK"

        @auth_mechanism("SCRAM-SHA-256-PLUS")
        async def auth_scram_plus(self, server: Any, args: list[str]) -> Any:
            scram = mechanism.make_server(
                lambda user: info, channel_binding=("tls-server-end-point", bound_to)
            )
            if len(args) > 1:
                first: Any = base64.b64decode(args[1])
            else:
                first = await server.challenge_auth("")
            if first is MISSING:
                return AuthResult(success=False, handled=True)
            try:
                scram.set_client_first(first.decode())
                final = await server.challenge_auth(scram.get_server_first())
                if final is MISSING:
                    return AuthResult(success=False, handled=True)
                scram.set_client_final(final.decode())
            except scramp.ScramException:
                return AuthResult(success=False, handled=False)  # aiosmtpd: 535 5.7.8
            if await server.challenge_auth(scram.get_server_final()) is MISSING:
                return AuthResult(success=False, handled=True)
            return AuthResult(success=True, auth_data=b"alice")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    controller = controller_mod.Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        ready_timeout=10,
        decode_data=False,
        tls_context=certs.server_context(),
        require_starttls=True,
        auth_require_tls=True,
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
    )
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_our_client_binds_to_aiosmtpd_with_scramp() -> None:
    certs = test_certs()
    pem = certs.cert_pem.read_text()
    with aiosmtpd_scram_plus(certs, pem) as (port, received):
        kwargs = client_kwargs(certs, TLSMode.STARTTLS_REQUIRED)
        with SMTPClient("127.0.0.1", port, **kwargs) as client:
            assert client.sendmail("a@example.org", ["b@example.net"], MESSAGE).ok
            lines = auth_lines(client)
    assert lines[0].startswith("AUTH SCRAM-SHA-256-PLUS")
    assert received == [MESSAGE]


def test_our_client_detects_a_middlebox_at_aiosmtpd() -> None:
    # scramp's server believes it presents another certificate: the bindings differ
    certs = test_certs()
    with aiosmtpd_scram_plus(certs, other_certificate().decode()) as (port, received):
        client = SMTPClient("127.0.0.1", port, **client_kwargs(certs, TLSMode.STARTTLS_REQUIRED))
        with pytest.raises(SMTPAuthError) as info:
            client.connect()
        client.close()
    assert info.value.reply is not None and info.value.reply.code == 535
    assert received == []


# ---------------------------------------------------------------------- the command line


def test_cli_serve_and_send_use_scram_plus(tmp_path: Path) -> None:
    # serve --tls-cert --auth offers SCRAM-SHA-256-PLUS after STARTTLS; send picks it
    certs = test_certs()
    root = Path(__file__).resolve().parent.parent
    serve = subprocess.Popen(
        [
            sys.executable, "-m", "sansio_smtp", "serve", "--port", "0", "--sink",
            "--tls-cert", str(certs.cert_pem), "--tls-key", str(certs.key_pem),
            "--auth", "alice:wonder land",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        message = tmp_path / "m.eml"
        message.write_bytes(MESSAGE)
        sent = subprocess.run(
            [
                sys.executable, "-m", "sansio_smtp", "send", "--server", f"localhost:{port}",
                "--from", "a@example.org", "--to", "b@example.net", "--file", str(message),
                "--starttls", "--cafile", str(certs.ca_pem), "--user", "alice",
                "--password", "wonder land", "--transcript",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    finally:
        serve.terminate()
        serve.communicate(timeout=15)
    assert sent.returncode == 0, sent.stderr
    output = sent.stdout + sent.stderr
    assert "AUTH SCRAM-SHA-256-PLUS" in output
    assert "wonder land" not in output


def test_cli_serve_with_an_ed25519_certificate_leaves_plus_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # RFC 5929 §4.1: Ed25519 signs without a separate hash, so tls-server-end-point is
    # undefined: serve warns and offers AUTH without -PLUS instead of refusing to start
    import argparse
    import datetime

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    from sansio_smtp._cli_serve import add_arguments, build

    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, None)
    )
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--tls-cert", str(cert_pem), "--tls-key", str(key_pem), "--auth", "alice:pw"]
    )
    server = build(args)
    assert server.config.extensions["AUTH"] == ("SCRAM-SHA-256", "PLAIN", "LOGIN")
    assert "no channel binding" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"1\.3\.101\.112"):  # the API itself refuses it
        server_channel_binding(cert_pem)
