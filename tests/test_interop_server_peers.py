"""Real SMTP clients against our AsyncioServer on 127.0.0.1: stdlib smtplib, aiosmtplib,
curl, swaks and Postfix's smtp-source; plain, with STARTTLS, with implicit TLS and with
AUTH PLAIN/LOGIN wherever the peer supports it.

Every message must arrive byte-identical to what that peer puts on the wire once its
transparency is undone (RFC 5321 §4.5.2): each test states the peer's own rules (smtplib
and aiosmtplib send bytes as given; swaks rewrites line endings to CRLF; smtp-source ends
every line with CRLF and adds an empty line) and compares exactly. A peer's tests are
skipped only when its binary or package is missing (``bash .ci/peers.sh`` installs
swaks, curl and postfix; ``pip install aiosmtplib trustme``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sansio_smtp import Config, Reply
from sansio_smtp.adapters import AsyncioServer, Envelope, Handler, MemoryHandler, Session

from .certs import TestCerts, test_certs

TIMEOUT = 30.0
EXT = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "DSN": (),
    "ENHANCEDSTATUSCODES": (),
}
USER, PASSWORD = "alice", "correct horse"
# (transport, AUTH mechanism): AUTH is offered only under TLS (RFC 4954 §4)
MODES = [
    ("plain", None),
    ("starttls", None),
    ("implicit", None),
    ("starttls", "PLAIN"),
    ("starttls", "LOGIN"),
    ("implicit", "PLAIN"),
    ("implicit", "LOGIN"),
]
SENDER, RECIPIENTS = "sender@client.example", ["one@server.example", "two@server.example"]

# Transparency (leading dots, a lone dot), 8-bit text and a long line: the parts a peer
# or a server gets wrong. CRLF line endings, ending in CRLF.
MESSAGE = (
    b"From: <sender@client.example>\r\n"
    b"To: <one@server.example>\r\n"
    b"Subject: interop\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b"na\xc3\xafve caf\xc3\xa9\r\n" + b"x" * 900 + b"\r\n"
    b"last line\r\n"
)


def sbin(name: str) -> str:
    """The path of a tool, also looking in the sbin directories (smtp-source lives there)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        pytest.skip(f"{name} is not installed (bash .ci/peers.sh installs it)")
    return found


def swaks_with_tls() -> str:
    """swaks, when it can speak TLS (it needs Perl's Net::SSLeay and IO::Socket::SSL)."""
    swaks = sbin("swaks")
    support = subprocess.run(
        [swaks, "--support"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if "TLS supported" not in support.stdout + support.stderr:
        pytest.skip("swaks has no TLS here (libnet-ssleay-perl / libio-socket-ssl-perl missing)")
    return swaks


class LoopServer:
    """An AsyncioServer on its own event loop in a background thread."""

    def __init__(self, handler: object, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = AsyncioServer(handler, **options)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.port = self.server.port

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.server.shutdown(2.0), self.loop)
        fut.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Recorder(MemoryHandler):
    """MemoryHandler that also records the session facts each message arrived with."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[tuple[bool, str | None]] = []

    def data(self, session: Session, envelope: Envelope) -> Reply | None:
        self.sessions.append((session.tls, session.authenticated_user))
        return super().data(session, envelope)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[LoopServer] = []

    def start(
        *, tls: str = "none", certs: TestCerts | None = None, lmtp: bool = False, **options: Any
    ) -> tuple[LoopServer, Recorder]:
        handler = Recorder()
        config = Config(hostname="mx.server.example", extensions=EXT, lmtp=lmtp)
        if tls != "none":
            assert certs is not None
            options["tls_context"] = certs.server_context()
            options["implicit_tls"] = tls == "implicit"
        server = LoopServer(handler, config=config, auth={USER: PASSWORD}, **options)
        servers.append(server)
        return server, handler

    yield start
    for server in servers:
        server.stop()
        assert list(server.server.errors) == []


def received(handler: Recorder, count: int = 1) -> list[Envelope]:
    assert handler.wait_for(count, 10), f"{len(handler.messages)} of {count} messages arrived"
    return handler.messages


def check(env: Envelope, content: bytes, recipients: list[str] = RECIPIENTS) -> None:
    assert str(env.mail_from) == SENDER
    assert [str(r) for r in env.rcpt_tos] == recipients
    assert env.content == content


def run(args: list[str], *, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, input=stdin, capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


# ------------------------------------------------------------------------ smtplib


@pytest.mark.parametrize(("mode", "auth"), MODES)
def test_smtplib(serve: Any, mode: str, auth: str | None) -> None:
    certs = test_certs() if mode != "plain" else None
    server, handler = serve(tls={"plain": "none"}.get(mode, mode), certs=certs)
    smtp: smtplib.SMTP
    if mode == "implicit":
        assert certs is not None
        smtp = smtplib.SMTP_SSL(
            "127.0.0.1", server.port, timeout=TIMEOUT, context=certs.client_context()
        )
    else:
        smtp = smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT)
    with smtp:
        smtp.ehlo("client.example")
        if mode == "starttls":
            assert certs is not None
            smtp.starttls(context=certs.client_context())
            smtp.ehlo("client.example")
        if auth == "PLAIN":
            smtp.login(USER, PASSWORD)  # smtplib's preference picks PLAIN
        elif auth == "LOGIN":
            # smtplib sends the user name as LOGIN's initial response
            smtp.user, smtp.password = USER, PASSWORD
            smtp.auth("LOGIN", smtp.auth_login)
        # smtplib sends bytes as given, dot-stuffed (RFC 5321 §4.5.2)
        refused = smtp.sendmail(SENDER, RECIPIENTS, MESSAGE, mail_options=["BODY=8BITMIME"])
        assert refused == {}
    (env,) = received(handler)
    check(env, MESSAGE)
    assert handler.sessions == [(mode != "plain", USER if auth else None)]


def test_smtplib_many_messages_one_session(serve: Any) -> None:
    server, handler = serve()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
        for n in range(20):
            smtp.sendmail(SENDER, RECIPIENTS, MESSAGE + b"n=%d\r\n" % n)
    messages = received(handler, 20)
    assert [m.content for m in messages] == [MESSAGE + b"n=%d\r\n" % n for n in range(20)]


# --------------------------------------------------------------------- aiosmtplib


@pytest.mark.parametrize(("mode", "auth"), MODES)
def test_aiosmtplib(serve: Any, mode: str, auth: str | None) -> None:
    aiosmtplib = pytest.importorskip("aiosmtplib", reason="pip install aiosmtplib")
    certs = test_certs() if mode != "plain" else None
    server, handler = serve(tls={"plain": "none"}.get(mode, mode), certs=certs)

    async def send() -> None:
        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=server.port,
            timeout=TIMEOUT,
            local_hostname="client.example",
            use_tls=mode == "implicit",
            start_tls=mode == "starttls",
            tls_context=certs.client_context() if certs else None,
        )
        await smtp.connect()
        if auth is not None:
            # connect() says EHLO only around STARTTLS, and not again after it (RFC 3207
            # §4.2 wants one); auth_plain()/auth_login() do not (login() would)
            await smtp.ehlo()
        if auth == "PLAIN":
            await smtp.auth_plain(USER, PASSWORD)
        elif auth == "LOGIN":
            await smtp.auth_login(USER, PASSWORD)
        # aiosmtplib rewrites line endings to CRLF and dot-stuffs: CRLF input is unchanged
        errors, _ = await smtp.sendmail(SENDER, RECIPIENTS, MESSAGE, mail_options=["BODY=8BITMIME"])
        assert errors == {}
        await smtp.quit()

    asyncio.run(asyncio.wait_for(send(), TIMEOUT))
    (env,) = received(handler)
    check(env, MESSAGE)
    assert handler.sessions == [(mode != "plain", USER if auth else None)]


def test_aiosmtplib_pipelined_concurrent_clients(serve: Any) -> None:
    aiosmtplib = pytest.importorskip("aiosmtplib", reason="pip install aiosmtplib")
    server, handler = serve()

    async def one(n: int) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, timeout=TIMEOUT) as smtp:
            for i in range(5):
                await smtp.sendmail(SENDER, RECIPIENTS, MESSAGE + b"%d.%d\r\n" % (n, i))

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(10)))

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    got = sorted(m.content for m in received(handler, 50))
    assert got == sorted(MESSAGE + b"%d.%d\r\n" % (n, i) for n in range(10) for i in range(5))


# --------------------------------------------------------------------------- curl


@pytest.mark.parametrize(("mode", "auth"), MODES)
def test_curl(serve: Any, mode: str, auth: str | None, tmp_path: Path) -> None:
    curl = sbin("curl")
    certs = test_certs() if mode != "plain" else None
    server, handler = serve(tls={"plain": "none"}.get(mode, mode), certs=certs)
    upload = tmp_path / "message.eml"
    upload.write_bytes(MESSAGE)
    scheme = "smtps" if mode == "implicit" else "smtp"
    args = [
        curl, "-sS", "--max-time", str(int(TIMEOUT)),
        f"{scheme}://127.0.0.1:{server.port}/client.example",  # the path is the EHLO name
        "--mail-from", SENDER,
        *(arg for rcpt in RECIPIENTS for arg in ("--mail-rcpt", rcpt)),
        "--upload-file", str(upload),
    ]  # fmt: skip
    if certs is not None:
        args += ["--cacert", str(certs.ca_pem)]
    if mode == "starttls":
        args.append("--ssl-reqd")  # STARTTLS or fail (RFC 3207)
    if auth is not None:
        args += ["--user", f"{USER}:{PASSWORD}", "--login-options", f"AUTH={auth}"]
    run(args)
    (env,) = received(handler)
    # curl sends the file as it is (dot-stuffed) when it ends with CRLF
    check(env, MESSAGE)
    assert env.helo_name == "client.example"
    assert handler.sessions == [(mode != "plain", USER if auth else None)]


# -------------------------------------------------------------------------- swaks


def swaks_file(tmp_path: Path) -> tuple[Path, bytes]:
    """swaks rewrites every line ending to CRLF and always adds CRLF before the final
    dot: a file with LF endings and no final newline arrives as MESSAGE."""
    path = tmp_path / "message.txt"
    path.write_bytes(MESSAGE[:-2].replace(b"\r\n", b"\n"))
    return path, MESSAGE


@pytest.mark.parametrize(("mode", "auth"), MODES)
def test_swaks(serve: Any, mode: str, auth: str | None, tmp_path: Path) -> None:
    swaks = sbin("swaks") if mode == "plain" else swaks_with_tls()
    certs = test_certs() if mode != "plain" else None
    server, handler = serve(tls={"plain": "none"}.get(mode, mode), certs=certs)
    path, expected = swaks_file(tmp_path)
    args = [
        swaks, "--server", "127.0.0.1", "--port", str(server.port),
        "--helo", "client.example", "--from", SENDER, "--to", ",".join(RECIPIENTS),
        "--data", f"@{path}", "--timeout", str(int(TIMEOUT)),
    ]  # fmt: skip
    if certs is not None:
        args += ["--tls-verify", "--tls-ca-path", str(certs.ca_pem)]
        args.append("--tls-on-connect" if mode == "implicit" else "--tls")
    if auth is not None:
        args += ["--auth", auth, "--auth-user", USER, "--auth-password", PASSWORD]
    run(args)
    (env,) = received(handler)
    check(env, expected)
    assert handler.sessions == [(mode != "plain", USER if auth else None)]


def test_swaks_pipelining(serve: Any, tmp_path: Path) -> None:
    # RFC 2920: swaks sends MAIL, the RCPTs and DATA as one group
    swaks = sbin("swaks")
    server, handler = serve(traffic_log=False)
    path, expected = swaks_file(tmp_path)
    run([
        swaks, "--server", "127.0.0.1", "--port", str(server.port), "--pipeline",
        "--from", SENDER, "--to", ",".join(RECIPIENTS), "--data", f"@{path}",
    ])  # fmt: skip
    check(received(handler)[0], expected)


def test_swaks_lmtp(serve: Any, tmp_path: Path) -> None:
    # RFC 2033: LHLO, then one reply per recipient after the message
    swaks = sbin("swaks")
    server, handler = serve(lmtp=True)
    path, expected = swaks_file(tmp_path)
    result = run([
        swaks, "--server", "127.0.0.1", "--port", str(server.port), "--protocol", "LMTP",
        "--from", SENDER, "--to", ",".join(RECIPIENTS), "--data", f"@{path}",
    ])  # fmt: skip
    check(received(handler)[0], expected)
    assert result.stdout.count(b"<one@server.example> delivered") == 1
    assert result.stdout.count(b"<two@server.example> delivered") == 1


# -------------------------------------------------------------------- smtp-source


def smtp_source_file(tmp_path: Path) -> tuple[Path, bytes]:
    """smtp-source -F sends each line of the file with CRLF, then one empty line."""
    path = tmp_path / "message.txt"
    text = MESSAGE.replace(b"\r\n", b"\n")
    path.write_bytes(text)
    expected = b"".join(line + b"\r\n" for line in text.split(b"\n")[:-1]) + b"\r\n"
    return path, expected


def test_smtp_source_content(serve: Any, tmp_path: Path) -> None:
    source = sbin("smtp-source")
    server, handler = serve()
    path, expected = smtp_source_file(tmp_path)
    run([
        source, "-m", "1", "-F", str(path), "-M", "client.example", "-f", SENDER,
        "-t", RECIPIENTS[0], f"127.0.0.1:{server.port}",
    ])  # fmt: skip
    (env,) = received(handler)
    check(env, expected, RECIPIENTS[:1])
    assert env.helo_name == "client.example"


def test_smtp_source_concurrent_sessions(serve: Any, tmp_path: Path) -> None:
    # 5 parallel sessions, 100 messages in all, 3 recipients each, ESMTP with pipelining
    source = sbin("smtp-source")
    server, handler = serve()
    path, expected = smtp_source_file(tmp_path)
    run([
        source, "-s", "5", "-m", "100", "-r", "3", "-F", str(path), "-f", SENDER,
        "-t", "rcpt@server.example", f"127.0.0.1:{server.port}",
    ])  # fmt: skip
    messages = received(handler, 100)
    assert len(messages) == 100
    assert all(m.content == expected and len(m.rcpt_tos) == 3 for m in messages)


def test_smtp_source_lmtp(serve: Any, tmp_path: Path) -> None:
    source = sbin("smtp-source")
    server, handler = serve(lmtp=True)
    path, expected = smtp_source_file(tmp_path)
    run([
        source, "-L", "-m", "3", "-r", "2", "-F", str(path), "-f", SENDER,
        "-t", "rcpt@server.example", f"127.0.0.1:{server.port}",
    ])  # fmt: skip
    messages = received(handler, 3)
    assert all(m.content == expected and len(m.rcpt_tos) == 2 for m in messages)


def test_smtp_source_has_no_tls() -> None:
    """smtp-source cannot do STARTTLS (Postfix's test client has no TLS code): its TLS
    coverage comes from the other peers. This records the fact, so a Postfix that gains
    the option shows up here."""
    source = sbin("smtp-source")
    usage = subprocess.run([source], capture_output=True, timeout=TIMEOUT, env={**os.environ})
    text = (usage.stdout + usage.stderr).decode(errors="replace")
    assert "usage" in text and "tls" not in text.lower()


# ---------------------------------------------------------------- handler replies


class Refuser(Handler):
    def rcpt(self, session: Session, event: Any) -> Reply | None:
        if event.forward_path.local_part == "two":
            return Reply(code=550, lines="No such user here", enhanced="5.1.1")
        return None


def test_refused_recipient_seen_by_smtplib() -> None:
    server = LoopServer(Refuser(), config=Config(extensions=EXT))
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
            refused = smtp.sendmail(SENDER, RECIPIENTS, MESSAGE)
        assert refused == {"two@server.example": (550, b"5.1.1 No such user here")}
    finally:
        server.stop()
