"""Our clients (sync and asyncio) against real SMTP servers on 127.0.0.1:

- aiosmtpd (pip), its Controller run in-process: plain, STARTTLS required (trustme
  certificates from tests/certs.py), AUTH PLAIN/LOGIN through its authenticator,
  per-recipient refusals, SMTPUTF8. aiosmtpd hands us the content exactly as received,
  so messages are compared byte for byte.
- Postfix's smtp-sink (Debian postfix; ``bash .ci/peers.sh``), a C test server with
  PIPELINING, AUTH and LMTP but no TLS: each transaction is dumped with ``-d``. The dump
  format (smtp-sink(1), DUMP FILE FORMAT) writes the lines as received, un-stuffed, ending
  in LF, after its own X-*/Received header lines and followed by one empty line; the test
  compares the message with that, line for line and octet for octet.

A peer is skipped only when it is not installed, with the reason. Every socket call of the
clients has a timeout, and each server is stopped at the end of its test.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sansio_smtp.adapters.client import (
    AsyncSMTPClient,
    SendResult,
    SMTPAuthError,
    SMTPClient,
    SMTPDataError,
    SMTPRecipientsRefused,
    SMTPTLSError,
    TLSMode,
)

from .certs import TestCerts, test_certs

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: interop\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".this line starts with a dot\r\n"
    b"..and this one with two\r\n"
    b".\r\n"
    b"\r\n"
    b"Bye.\r\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_async(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), 30))


def send(
    flavour: str,
    port: int,
    *,
    message: bytes = MESSAGE,
    to: list[str] | None = None,
    msg: email.message.EmailMessage | None = None,
    **kwargs: Any,
) -> list[SendResult]:
    """Open a session with the given client flavour, send the message twice (two
    transactions on one connection), QUIT."""
    kwargs.setdefault("timeout", 10.0)
    kwargs.setdefault("tls", TLSMode.PLAIN)
    rcpts = to or ["bob@example.net"]
    if flavour == "sync":
        with SMTPClient("127.0.0.1", port, **kwargs) as client:
            if msg is not None:
                return [client.send_message(msg)]
            return [client.sendmail("alice@example.org", rcpts, message) for _ in range(2)]

    async def main() -> list[SendResult]:
        async with AsyncSMTPClient("127.0.0.1", port, **kwargs) as client:
            if msg is not None:
                return [await client.send_message(msg)]
            return [await client.sendmail("alice@example.org", rcpts, message) for _ in range(2)]

    return list(_run_async(main))


@pytest.fixture(params=["sync", "asyncio"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ============================================================================ aiosmtpd


class _Recorder:
    """aiosmtpd handler: records each envelope; refuses RCPT to anything@refused.example."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.endswith("@refused.example"):
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 OK: queued"


@contextlib.contextmanager
def aiosmtpd_server(
    *, certs: TestCerts | None = None, users: dict[str, str] | None = None
) -> Iterator[tuple[int, _Recorder]]:
    controller_mod = pytest.importorskip(
        "aiosmtpd.controller", reason="aiosmtpd is not installed (pip install aiosmtpd)"
    )
    from aiosmtpd.smtp import AuthResult, LoginPassword

    handler = _Recorder()
    kwargs: dict[str, Any] = {"decode_data": False, "enable_SMTPUTF8": True}
    if certs is not None:
        kwargs.update(tls_context=certs.server_context(), require_starttls=True)
    if users is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> Any:
            ok = isinstance(auth_data, LoginPassword) and (
                users.get(auth_data.login.decode()) == auth_data.password.decode()
            )
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies

        kwargs.update(authenticator=authenticator, auth_require_tls=True)
    port = _free_port()
    controller = controller_mod.Controller(
        handler, hostname="127.0.0.1", port=port, ready_timeout=10, **kwargs
    )
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def test_aiosmtpd_plain(flavour: str) -> None:
    # RFC 5321 §4.5.2: dot-stuffed on the wire, un-stuffed by the server: the same octets
    with aiosmtpd_server() as (port, handler):
        results = send(flavour, port, to=["bob@example.net", "carol@example.net"])
    assert all(list(r.accepted) == ["bob@example.net", "carol@example.net"] for r in results)
    assert len(handler.envelopes) == 2
    for envelope in handler.envelopes:
        assert envelope.content == MESSAGE
        assert envelope.mail_from == "alice@example.org"
        assert envelope.rcpt_tos == ["bob@example.net", "carol@example.net"]
        assert f"SIZE={len(MESSAGE)}" in envelope.mail_options  # RFC 1870, it offers SIZE


def test_aiosmtpd_per_recipient_refusal(flavour: str) -> None:
    # RFC 5321 §4.1.1.3 and RFC 3463 enhanced codes, parsed from a real server's reply
    with aiosmtpd_server() as (port, handler):
        results = send(flavour, port, to=["bob@example.net", "x@refused.example"])
        with pytest.raises(SMTPRecipientsRefused) as info:
            send(flavour, port, to=["y@refused.example"])
    refusal = results[0].refused["x@refused.example"]
    assert refusal.code == 550 and str(refusal.enhanced) == "5.1.1"
    assert list(results[0].accepted) == ["bob@example.net"]
    assert info.value.reply.code == 550
    assert [e.rcpt_tos for e in handler.envelopes] == [["bob@example.net"]] * 2


def test_aiosmtpd_starttls_and_auth(flavour: str) -> None:
    # RFC 3207: STARTTLS, then EHLO again; RFC 4954: AUTH only under TLS (aiosmtpd's
    # require_starttls refuses MAIL before TLS, auth_require_tls AUTH before it)
    certs = test_certs()
    users = {"alice": "wonderland"}
    with aiosmtpd_server(certs=certs, users=users) as (port, handler):
        for mechanisms in (None, ("LOGIN",)):
            send(
                flavour,
                port,
                tls=TLSMode.STARTTLS_REQUIRED,
                ssl_context=certs.client_context(),
                username="alice",
                password="wonderland",
                auth_mechanisms=mechanisms,
            )
        with pytest.raises(SMTPAuthError) as info:
            send(
                flavour,
                port,
                tls=TLSMode.STARTTLS_REQUIRED,
                ssl_context=certs.client_context(),
                username="alice",
                password="wrong",
            )
        with pytest.raises(SMTPTLSError):  # the name on the certificate is checked
            send(
                flavour,
                port,
                tls=TLSMode.STARTTLS_REQUIRED,
                ssl_context=certs.client_context(),
                server_hostname="mail.example.com",
            )
    assert info.value.reply is not None and info.value.reply.code == 535
    assert [e.content for e in handler.envelopes] == [MESSAGE] * 4


def test_aiosmtpd_send_message_smtputf8(flavour: str) -> None:
    # RFC 6531: SMTPUTF8 for a non-ASCII address; RFC 6532 UTF-8 headers
    msg = email.message.EmailMessage()
    msg["From"] = "jörg@example.org"
    msg["To"] = "pépé@example.net"
    msg["Bcc"] = "hidden@example.net"
    msg["Subject"] = "grüße"
    msg.set_content("Ünïcödé\n")
    with aiosmtpd_server() as (port, handler):
        (result,) = send(flavour, port, msg=msg)
    assert list(result.accepted) == ["pépé@example.net", "hidden@example.net"]
    (envelope,) = handler.envelopes
    assert "SMTPUTF8" in envelope.mail_options and envelope.mail_from == "jörg@example.org"
    assert "Subject: grüße".encode() in envelope.content
    assert b"hidden@" not in envelope.content  # Bcc is not transmitted


# ============================================================================ smtp-sink


def _smtp_sink_binary() -> str:
    found = shutil.which("smtp-sink") or shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.skip("Postfix smtp-sink is not installed (Debian postfix; bash .ci/peers.sh)")
    return found


@contextlib.contextmanager
def smtp_sink(tmp_path: Path, *options: str) -> Iterator[tuple[int, Path]]:
    """Run smtp-sink on 127.0.0.1 dumping each transaction into a fresh directory."""
    binary = _smtp_sink_binary()
    cmd = [binary, *options]
    if os.geteuid() == 0:
        # smtp-sink drops to this user after binding; pytest's tmp_path is private to
        # root, so the dump directory goes where "nobody" can write.
        dump = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
        dump.chmod(0o777)
        cmd += ["-u", "nobody"]
    else:
        dump = tmp_path / f"dump{len(list(tmp_path.iterdir()))}"
        dump.mkdir()
    port = _free_port()
    cmd += ["-d", f"{dump}/%M.", f"127.0.0.1:{port}", "100"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else b""
                pytest.fail(f"smtp-sink exited with {proc.returncode}: {out!r}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                pytest.fail("smtp-sink did not start listening")
            time.sleep(0.05)
        yield port, dump
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
        if os.geteuid() == 0:
            shutil.rmtree(dump, ignore_errors=True)


def sink_dumps(dump: Path, count: int) -> list[tuple[dict[str, list[str]], bytes]]:
    """The ``count`` dumped transactions: (X-* header values, message as dumped). Waits
    (bounded) for smtp-sink to write them."""
    deadline = time.monotonic() + 10
    while len(files := sorted(dump.iterdir(), key=lambda p: p.stat().st_mtime_ns)) < count:
        assert time.monotonic() < deadline, f"smtp-sink dumped {len(files)} of {count}"
        time.sleep(0.05)
    out = []
    for path in files:
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        meta: dict[str, list[str]] = {}
        i = 0
        while lines[i].startswith(b"X-"):
            key, _, value = lines[i].decode().partition(": ")
            meta.setdefault(key, []).append(value)
            i += 1
        assert lines[i].startswith(b"Received: ") and lines[i + 1].startswith(b"\tby ")
        body = b"\n".join(lines[i + 3 :])  # after the three Received lines
        out.append((meta, body))
    return out


def as_dumped(message: bytes) -> bytes:
    """The message as smtp-sink's dump format writes it: LF line ends, then one empty line."""
    return message.replace(b"\r\n", b"\n") + b"\n"


def test_smtp_sink_pipelined(flavour: str, tmp_path: Path) -> None:
    # smtp-sink offers PIPELINING (RFC 2920): MAIL, RCPTs and DATA go as one group
    with smtp_sink(tmp_path) as (port, dump):
        results = send(flavour, port, to=["bob@example.net", "carol@example.net"])
        dumps = sink_dumps(dump, 2)
    assert all(len(r.accepted) == 2 and r.data_reply is not None for r in results)
    for meta, body in dumps:
        assert body == as_dumped(MESSAGE)
        # no SIZE=: smtp-sink does not offer SIZE (RFC 1870 §4: only when advertised)
        assert meta["X-Mail-Args"] == ["<alice@example.org>"]
        assert meta["X-Rcpt-Args"] == ["<bob@example.net>", "<carol@example.net>"]
        assert meta["X-Helo-Args"] == ["[127.0.0.1]"]


def test_smtp_sink_auth(flavour: str, tmp_path: Path) -> None:
    # smtp-sink offers AUTH PLAIN LOGIN without TLS: we refuse to send credentials in the
    # clear (RFC 4954 §4) unless explicitly allowed, and then AUTH works
    with smtp_sink(tmp_path) as (port, dump):
        with pytest.raises(SMTPAuthError, match="no usable AUTH mechanism"):
            send(flavour, port, username="u", password="p")
        send(flavour, port, username="u", password="p", allow_plaintext_auth=True)
        dumps = sink_dumps(dump, 2)
    assert [body for _, body in dumps] == [as_dumped(MESSAGE)] * 2


def test_smtp_sink_lmtp(flavour: str, tmp_path: Path) -> None:
    # RFC 2033: LHLO, and one reply per recipient after the data
    with smtp_sink(tmp_path, "-L") as (port, dump):
        results = send(flavour, port, lmtp=True, to=["bob@example.net", "carol@example.net"])
        dumps = sink_dumps(dump, 2)
    for result in results:
        assert list(result.accepted) == ["bob@example.net", "carol@example.net"]
        assert all(str(r.enhanced) == "2.2.0" for r in result.accepted.values())  # delivery
    assert [m["X-Client-Proto"] for m, _ in dumps] == [["LMTP"]] * 2
    assert [body for _, body in dumps] == [as_dumped(MESSAGE)] * 2


def test_smtp_sink_refusals_lockstep(flavour: str, tmp_path: Path) -> None:
    # smtp-sink -r/-f refuse commands (and then do not offer PIPELINING): RCPT 450 4.3.0
    # for every recipient, then DATA 500 5.3.0
    refusing_rcpt = smtp_sink(tmp_path, "-r", "RCPT")
    with refusing_rcpt as (port, _dump), pytest.raises(SMTPRecipientsRefused) as rcpt:
        send(flavour, port, to=["bob@example.net", "carol@example.net"])
    assert set(rcpt.value.refused) == {"bob@example.net", "carol@example.net"}
    assert rcpt.value.reply.code == 450 and str(rcpt.value.reply.enhanced) == "4.3.0"
    with smtp_sink(tmp_path, "-f", "DATA") as (port, _dump), pytest.raises(SMTPDataError) as data:
        send(flavour, port)
    assert data.value.reply.code == 500 and str(data.value.reply.enhanced) == "5.3.0"
