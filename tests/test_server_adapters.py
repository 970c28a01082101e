"""The server adapters (AsyncioServer, SyncServer) and the handler API, over loopback.

Most tests run against both servers (the ``kind`` parameter) with a small blocking raw
client, so each protocol rule is checked on the wire exactly as a peer sees it. The asyncio
server runs on its own event loop in a background thread. Everything binds 127.0.0.1 on
port 0 and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import io
import logging
import mailbox
import resource
import socket
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sansio_smtp import Config, Ehlo, MailFrom, RcptTo, Reply
from sansio_smtp import sasl as sasl_mod
from sansio_smtp.adapters import (
    AsyncioServer,
    Envelope,
    Handler,
    MaildirHandler,
    MboxHandler,
    MemoryHandler,
    PrintHandler,
    Reject,
    Session,
    SinkHandler,
    SyncServer,
    received_header,
)
from sansio_smtp.adapters.server._traffic import redact_client, redact_server

from .certs import test_certs

TIMEOUT = 5.0
EXT = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "DSN": (),
    "ENHANCEDSTATUSCODES": (),
}
KINDS = ["asyncio", "sync"]


# ----------------------------------------------------------------------- harness


class ThreadedAsyncioServer:
    """An AsyncioServer on its own loop in a background thread (same surface as
    SyncServer for the tests: port, errors, shutdown)."""

    def __init__(self, handler: object, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = AsyncioServer(handler, **options)
        self.call(self.server.start())

    def call(self, coro: Any, timeout: float = TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def errors(self) -> Any:
        return self.server.errors

    @property
    def connections(self) -> int:
        return self.server.connections

    def shutdown(self, timeout: float = TIMEOUT) -> None:
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.call(self.server.shutdown(timeout), timeout + TIMEOUT)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.close()


class ThreadedAnyioServer:
    """An AnyioServer (asyncio backend) served from a blocking portal's thread."""

    def __init__(self, handler: object, **options: Any) -> None:
        anyio_server = pytest.importorskip("sansio_smtp.adapters.server._anyio")
        from anyio.from_thread import start_blocking_portal

        self._cm = start_blocking_portal()
        self.portal = self._cm.__enter__()
        self.server = anyio_server.AnyioServer(handler, **options)
        self._future, _ = self.portal.start_task(self.server.serve)

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def connections(self) -> int:
        return int(self.server.connections)

    def shutdown(self, timeout: float = TIMEOUT) -> None:
        with contextlib.suppress(Exception):
            self.portal.call(self.server.shutdown, timeout)
        with contextlib.suppress(Exception):
            self._cm.__exit__(None, None, None)


Server = Any  # ThreadedAsyncioServer | ThreadedAnyioServer | SyncServer


@pytest.fixture
def make_server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(kind: str, handler: object = None, **options: Any) -> Server:
        options.setdefault("config", Config(hostname="mx.test", extensions=EXT))
        server: Server
        if kind == "asyncio":
            server = ThreadedAsyncioServer(handler, **options)
        elif kind == "anyio":
            server = ThreadedAnyioServer(handler, **options)
        else:
            server = SyncServer(handler, poll_interval=0.05, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.shutdown(2.0)


_PEERS: list[Peer] = []


@pytest.fixture(autouse=True)
def _close_peers() -> Iterator[None]:
    yield
    while _PEERS:
        _PEERS.pop().close()


class Peer:
    """A raw blocking SMTP client: write lines, read replies, no cleverness."""

    def __init__(self, port: int | None = None, *, path: str | None = None) -> None:
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(TIMEOUT)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port or 0), timeout=TIMEOUT)
        self.buf = b""
        _PEERS.append(self)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> tuple[int, list[str]]:
        lines: list[str] = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed; got {lines!r} and {self.buf!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode()
            lines.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), lines

    def cmd(self, line: str) -> tuple[int, list[str]]:
        self.send(line.encode() + b"\r\n")
        return self.read_reply()

    def expect(self, code: int, line: str | None = None) -> list[str]:
        got, lines = self.cmd(line) if line is not None else self.read_reply()
        assert got == code, (line, got, lines)
        return lines

    def closed(self) -> bool:
        """True when the server closed the connection (reads EOF, bounded)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def starttls(self, context: ssl.SSLContext) -> None:
        self.expect(220, "STARTTLS")
        assert not self.buf
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def transaction(peer: Peer, body: bytes = b"Subject: hi\r\n\r\nhello\r\n") -> list[str]:
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(354, "DATA")
    peer.send(body + b".\r\n")
    return peer.expect(250)


# ---------------------------------------------------------------- the basic dialogue


@pytest.mark.parametrize("kind", KINDS)
def test_transaction_reaches_handler(kind: str, make_server: Callable[..., Server]) -> None:
    handler = MemoryHandler()
    server = make_server(kind, handler)
    assert server.port > 0  # port 0 asked; the bound port is reported
    peer = Peer(server.port)
    greeting = peer.expect(220)
    assert greeting[0].startswith("mx.test ")  # RFC 5321 §4.2: the domain comes first
    ehlo = peer.expect(250, "EHLO client.example")
    assert "PIPELINING" in ehlo and "CHUNKING" in ehlo
    peer.expect(250, "MAIL FROM:<a@b.example> BODY=8BITMIME")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(250, "RCPT TO:<e@d.example> NOTIFY=NEVER")
    peer.expect(354, "DATA")
    # RFC 5321 §4.5.2: the client doubles a leading dot; the server removes it
    peer.send(b"Subject: hi\r\n\r\n..dot\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n")
    peer.expect(250)
    peer.expect(221, "QUIT")  # RFC 5321 §4.1.1.10: 221, then the server closes
    assert peer.closed()
    assert handler.wait_for(1)
    (env,) = handler.messages
    assert str(env.mail_from) == "a@b.example" and env.mail_params["BODY"] == "8BITMIME"
    assert [str(r) for r in env.rcpt_tos] == ["c@d.example", "e@d.example"]
    assert env.rcpt_params[1]["NOTIFY"] == "NEVER"
    assert env.content == b"Subject: hi\r\n\r\n.dot\r\n\xc3\xa9t\xc3\xa9\r\n"
    assert env.helo_name == "client.example" and env.protocol == "ESMTP"
    assert env.peer is not None and env.peer[0] == "127.0.0.1"
    assert list(server.errors) == []


@pytest.mark.parametrize("kind", KINDS)
def test_pipelined_commands_answered_in_order(
    kind: str, make_server: Callable[..., Server]
) -> None:
    # RFC 2920 §3.2: the server answers pipelined commands one by one, in order
    handler = MemoryHandler()
    peer = Peer(make_server(kind, handler).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.send(
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@d.example>\r\nRCPT TO:<bad address>\r\n"
        b"RCPT TO:<y@d.example>\r\nDATA\r\n"
    )
    codes = [peer.read_reply()[0] for _ in range(5)]
    assert codes == [250, 250, 501, 250, 354]
    peer.send(b"body\r\n.\r\nNOOP\r\n")
    assert [peer.read_reply()[0] for _ in range(2)] == [250, 250]
    assert handler.wait_for(1)
    assert [str(r) for r in handler.messages[0].rcpt_tos] == ["x@d.example", "y@d.example"]


@pytest.mark.parametrize("kind", KINDS)
def test_bdat_chunks(kind: str, make_server: Callable[..., Server]) -> None:
    # RFC 3030 §2: chunk octets are taken as they are, 250 after each chunk
    handler = MemoryHandler()
    peer = Peer(make_server(kind, handler).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example> BODY=BINARYMIME")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.send(b"BDAT 6\r\n.a\r\nb\n")
    peer.expect(250)
    peer.send(b"BDAT 4 LAST\r\n\x00\xff\r\n")
    peer.expect(250)
    assert handler.wait_for(1)
    assert handler.messages[0].content == b".a\r\nb\n\x00\xff\r\n"


@pytest.mark.parametrize("kind", KINDS)
def test_rset_and_second_transaction(kind: str, make_server: Callable[..., Server]) -> None:
    handler = MemoryHandler()
    peer = Peer(make_server(kind, handler).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(250, "MAIL FROM:<first@b.example>")
    peer.expect(250, "RSET")  # RFC 5321 §4.1.1.5: the transaction is abandoned
    peer.expect(250, "MAIL FROM:<>")  # the null reverse-path (§4.5.5)
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"x\r\n.\r\n")
    peer.expect(250)
    transaction(peer)
    assert handler.wait_for(2)
    assert handler.messages[0].mail_from is None
    assert str(handler.messages[1].mail_from) == "a@b.example"


# ---------------------------------------------------------------------- hooks


class Picky(Handler):
    """Refuses some senders and recipients in each of the three ways a hook can."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self.calls: list[str] = []

    def ehlo(self, session: Session, event: Ehlo) -> Reply | None:
        self.calls.append(f"ehlo {event.domain}")
        return None

    def mail(self, session: Session, event: MailFrom) -> Reply | None:
        if event.reverse_path is not None and event.reverse_path.local_part == "spammer":
            return Reply(code=550, lines="Go away", enhanced="5.7.1")
        return None

    def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
        local = event.forward_path.local_part
        if local == "nobody":
            raise Reject(550, "No such user", "5.1.1")
        if local == "crash":
            raise RuntimeError("the directory is down")
        if local == "weird":
            return "250 OK"  # type: ignore[return-value]
        return Reply(code=250, lines=f"<{event.forward_path}> OK", enhanced="2.1.5")

    def data(self, session: Session, envelope: Envelope) -> Reply | None:
        self.messages.append(envelope)
        assert session.envelope is envelope
        return Reply(code=250, lines="queued as 42", enhanced="2.0.0")


@pytest.mark.parametrize("kind", KINDS)
def test_hook_replies_rejects_and_errors(kind: str, make_server: Callable[..., Server]) -> None:
    handler = Picky()
    server = make_server(kind, handler)
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    assert peer.expect(550, "MAIL FROM:<spammer@b.example>") == ["5.7.1 Go away"]
    peer.expect(250, "MAIL FROM:<a@b.example>")
    assert peer.expect(550, "RCPT TO:<nobody@d.example>") == ["5.1.1 No such user"]
    # RFC 5321 §4.2.3: 451 local error in processing, and the session goes on
    assert peer.cmd("RCPT TO:<crash@d.example>")[1][0].startswith("4.3.0")
    assert peer.cmd("RCPT TO:<weird@d.example>")[0] == 451  # not a Reply: an error
    assert peer.expect(250, "RCPT TO:<ok@d.example>") == ["2.1.5 <ok@d.example> OK"]
    peer.expect(354, "DATA")
    peer.send(b"x\r\n.\r\n")
    assert peer.expect(250) == ["2.0.0 queued as 42"]
    assert [str(r) for r in handler.messages[0].rcpt_tos] == ["ok@d.example"]
    assert handler.calls == ["ehlo c.example"]
    errors = list(server.errors)
    assert any(isinstance(e, RuntimeError) for e in errors)
    assert any(isinstance(e, TypeError) for e in errors)


class Streaming(Handler):
    buffer_content = False

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.ended: list[Envelope] = []

    def data_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        self.chunks.append(chunk)
        if b"VIRUS" in chunk:
            raise Reject(554, "Message infected", "5.7.1")

    def data(self, session: Session, envelope: Envelope) -> Reply | None:
        self.ended.append(envelope)
        return None


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_content_and_reject_from_chunk(
    kind: str, make_server: Callable[..., Server]
) -> None:
    handler = Streaming()
    peer = Peer(make_server(kind, handler).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    transaction(peer, b"line one\r\nline two\r\n")
    assert b"".join(handler.chunks) == b"line one\r\nline two\r\n"
    assert handler.ended[0].content == b""  # not buffered
    handler.chunks.clear()
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"a VIRUS here\r\n.\r\n")
    assert peer.expect(554) == ["5.7.1 Message infected"]
    assert len(handler.ended) == 1  # data() is not called for a failed message
    transaction(peer)  # the next transaction is clean again


class Refusing(Handler):
    def connect(self, session: Session) -> Reply | None:
        return Reply(code=554, lines="No SMTP service here")


@pytest.mark.parametrize("kind", KINDS)
def test_connect_hook_refuses_service(kind: str, make_server: Callable[..., Server]) -> None:
    # RFC 5321 §3.1: after a 554 greeting the server answers 503 until QUIT
    peer = Peer(make_server(kind, Refusing()).port)
    assert peer.expect(554) == ["mx.test No SMTP service here"]
    peer.expect(503, "EHLO c.example")
    peer.expect(221, "QUIT")
    assert peer.closed()


def test_sync_server_refuses_async_hooks(make_server: Callable[..., Server]) -> None:
    class Async(Handler):
        async def mail(self, session: Session, event: MailFrom) -> Reply | None:
            return None

    server = make_server("sync", Async())
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    assert peer.cmd("MAIL FROM:<a@b.example>")[0] == 451
    assert any(isinstance(e, TypeError) for e in server.errors)


def test_async_hooks_run_one_at_a_time_in_order(make_server: Callable[..., Server]) -> None:
    # The core pauses until each reply is sent; the server stops reading while an async
    # hook runs, so hooks never overlap and replies keep the command order (RFC 2920 §3.2).
    class Slow(Handler):
        def __init__(self) -> None:
            self.running = 0
            self.overlap = False
            self.order: list[str] = []
            self.messages: list[Envelope] = []

        async def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
            self.running += 1
            self.overlap |= self.running > 1
            await asyncio.sleep(0.02)
            self.order.append(event.forward_path.local_part)
            self.running -= 1
            if event.forward_path.local_part == "r2":
                return Reply(code=450, lines="later", enhanced="4.2.0")
            return None

        async def data(self, session: Session, envelope: Envelope) -> Reply | None:
            await asyncio.sleep(0.01)
            self.messages.append(envelope)
            return None

    handler = Slow()
    peer = Peer(make_server("asyncio", handler).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    rcpts = "".join(f"RCPT TO:<r{i}@d.example>\r\n" for i in range(5))
    peer.send(f"MAIL FROM:<a@b.example>\r\n{rcpts}DATA\r\n".encode())
    codes = [peer.read_reply()[0] for _ in range(7)]
    assert codes == [250, 250, 250, 450, 250, 250, 354]
    peer.send(b"x\r\n.\r\n")
    peer.expect(250)
    assert handler.order == [f"r{i}" for i in range(5)] and not handler.overlap
    assert [r.local_part for r in handler.messages[0].rcpt_tos] == ["r0", "r1", "r3", "r4"]


# ----------------------------------------------------------------------- TLS


@pytest.mark.parametrize("kind", KINDS)
def test_starttls(kind: str, make_server: Callable[..., Server]) -> None:
    certs = test_certs()
    handler = MemoryHandler()
    peer = Peer(make_server(kind, handler, tls_context=certs.server_context()).port)
    peer.expect(220)
    assert "STARTTLS" in peer.expect(250, "EHLO c.example")
    peer.starttls(certs.client_context())
    # RFC 3207 §4.2: the client must EHLO again; STARTTLS is not offered twice
    peer.expect(503, "MAIL FROM:<a@b.example>")
    assert "STARTTLS" not in peer.expect(250, "EHLO c.example")
    peer.expect(503, "STARTTLS")
    transaction(peer)
    assert handler.wait_for(1)
    assert handler.messages[0].protocol == "ESMTPS"  # RFC 3848
    assert peer.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KINDS)
def test_plaintext_injected_after_starttls_is_dropped(
    kind: str, make_server: Callable[..., Server]
) -> None:
    # CVE-2011-0411: commands pipelined behind STARTTLS must not survive into the TLS
    # session; the server drops the connection instead of answering them.
    handler = MemoryHandler()
    certs = test_certs()
    peer = Peer(make_server(kind, handler, tls_context=certs.server_context()).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    assert peer.read_reply()[0] == 220
    assert peer.closed()


@pytest.mark.parametrize("kind", KINDS)
def test_implicit_tls(kind: str, make_server: Callable[..., Server]) -> None:
    # RFC 8314 §3: TLS from the first byte; no STARTTLS on top
    certs = test_certs()
    handler = MemoryHandler()
    server = make_server(kind, handler, tls_context=certs.server_context(), implicit_tls=True)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    peer = Peer.__new__(Peer)
    _PEERS.append(peer)
    peer.sock = certs.client_context().wrap_socket(raw, server_hostname="localhost")
    peer.buf = b""
    peer.expect(220)
    assert "STARTTLS" not in peer.expect(250, "EHLO c.example")
    transaction(peer)
    assert handler.wait_for(1)
    assert handler.messages[0].protocol == "ESMTPS"


@pytest.mark.parametrize("kind", KINDS)
def test_failed_tls_handshake_closes(kind: str, make_server: Callable[..., Server]) -> None:
    certs = test_certs()
    server = make_server(kind, None, tls_context=certs.server_context())
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(220, "STARTTLS")
    peer.send(b"this is not a TLS ClientHello\r\n" * 4)
    assert peer.closed()


# ----------------------------------------------------------------------- AUTH


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("kind", KINDS)
def test_auth_plain_and_login_after_starttls(kind: str, make_server: Callable[..., Server]) -> None:
    certs = test_certs()
    handler = MemoryHandler()
    server = make_server(
        kind, handler, tls_context=certs.server_context(), auth={"alice": "wonder land"}
    )
    peer = Peer(server.port)
    peer.expect(220)
    # RFC 4954 §4 / RFC 3207: no plaintext password mechanisms before TLS
    assert not any(line.startswith("AUTH") for line in peer.expect(250, "EHLO c.example"))
    assert peer.cmd("AUTH PLAIN " + b64(b"\0alice\0wonder land"))[0] == 538
    peer.starttls(certs.client_context())
    # a {user: password} table also answers SCRAM; -PLUS needs tls_certificate
    assert "AUTH SCRAM-SHA-256 PLAIN LOGIN" in peer.expect(250, "EHLO c.example")
    # RFC 4954 §6: 535 5.7.8 for bad credentials
    assert peer.expect(535, "AUTH PLAIN " + b64(b"\0alice\0wrong")) == [
        "5.7.8 Authentication credentials invalid"
    ]
    assert peer.expect(535, "AUTH PLAIN " + b64(b"\0mallory\0wonder land"))
    # LOGIN: two 334 challenges (draft-murchison-sasl-login)
    assert peer.expect(334, "AUTH LOGIN") == [b64(b"Username:")]
    assert peer.expect(334, b64(b"alice")) == [b64(b"Password:")]
    peer.expect(235, b64(b"wonder land"))
    peer.expect(503, "AUTH PLAIN " + b64(b"\0alice\0wonder land"))  # RFC 4954 §4: once
    transaction(peer)
    assert handler.wait_for(1)
    assert handler.messages[0].authenticated_user == "alice"
    assert handler.messages[0].protocol == "ESMTPSA"


@pytest.mark.parametrize("kind", KINDS)
def test_auth_plain_without_initial_response_and_cancel(
    kind: str, make_server: Callable[..., Server]
) -> None:
    server = make_server(
        kind,
        None,
        auth={"bob": "pw"},
        config=Config(hostname="mx.test", extensions=EXT, allow_plaintext_auth=True),
    )
    peer = Peer(server.port)
    peer.expect(220)
    assert "AUTH SCRAM-SHA-256 PLAIN LOGIN" in peer.expect(250, "EHLO c.example")
    assert peer.expect(334, "AUTH PLAIN") == [""]  # RFC 4954 §4: empty challenge
    peer.expect(501, "*")  # RFC 4954 §4: "*" cancels, the server answers 501
    peer.expect(334, "AUTH PLAIN")
    peer.expect(235, b64(b"\0bob\0pw"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5"])
def test_auth_challenge_mechanisms(
    kind: str, mechanism: str, make_server: Callable[..., Server]
) -> None:
    # multi-step SASL exchanges (RFC 5802, RFC 2195) driven by the sasl module's client
    config = Config(
        hostname="mx.test",
        extensions={**EXT, "AUTH": (mechanism,)},
        allow_plaintext_auth=True,
    )
    server = make_server(kind, None, auth={"carol": "s3cret"}, config=config)
    for password, code in (("s3cret", 235), ("wrong", 535)):
        peer = Peer(server.port)
        peer.expect(220)
        assert f"AUTH {mechanism}" in peer.expect(250, "EHLO c.example")
        client = sasl_mod.client_mechanism(mechanism, username="carol", password=password)
        first = client.initial_response()
        line = f"AUTH {mechanism}" + ("" if first is None else " " + b64(first))
        got, lines = peer.cmd(line)
        while got == 334:
            try:
                answer = client.respond(base64.b64decode(lines[0]))
            except sasl_mod.SASLError:
                got, lines = peer.cmd("*")
                break
            got, lines = peer.cmd(b64(answer))
        assert got == code, lines
        peer.close()


@pytest.mark.parametrize("kind", KINDS)
def test_auth_hook(kind: str, make_server: Callable[..., Server]) -> None:
    class Auth(Handler):
        def auth(self, session: Session, request: sasl_mod.NeedCredentials) -> Any:
            assert isinstance(request, sasl_mod.VerifyPassword)
            if request.authcid == "boom":
                raise RuntimeError("directory down")
            return request.password == "ok"

    config = Config(hostname="mx.test", extensions=EXT, allow_plaintext_auth=True)
    server = make_server(kind, Auth(), config=config)
    peer = Peer(server.port)
    peer.expect(220)
    assert "AUTH PLAIN LOGIN" in peer.expect(250, "EHLO c.example")
    peer.expect(535, "AUTH PLAIN " + b64(b"\0dave\0no"))
    peer.expect(454, "AUTH PLAIN " + b64(b"\0boom\0ok"))  # RFC 4954 §6: temporary
    peer.expect(235, "AUTH PLAIN " + b64(b"\0dave\0ok"))


def test_async_auth_hook(make_server: Callable[..., Server]) -> None:
    class Auth(Handler):
        async def auth(self, session: Session, request: sasl_mod.NeedCredentials) -> Any:
            await asyncio.sleep(0.01)
            return isinstance(request, sasl_mod.VerifyPassword) and request.password == "ok"

    config = Config(hostname="mx.test", extensions=EXT, allow_plaintext_auth=True)
    peer = Peer(make_server("asyncio", Auth(), config=config).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(535, "AUTH PLAIN " + b64(b"\0erin\0no"))
    peer.expect(235, "AUTH PLAIN " + b64(b"\0erin\0ok"))


# ----------------------------------------------------------------- limits, timeouts


@pytest.mark.parametrize("kind", KINDS)
def test_idle_timeout(kind: str, make_server: Callable[..., Server]) -> None:
    # RFC 5321 §4.5.3.2.7: the server may close an idle session (made short here)
    peer = Peer(make_server(kind, None, idle_timeout=0.3).port)
    peer.expect(220)
    start = time.monotonic()
    code, lines = peer.read_reply()
    assert code == 421 and lines[0].startswith("4.4.2")
    assert peer.closed()
    assert 0.25 < time.monotonic() - start < 3.0


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_is_reset_by_activity(kind: str, make_server: Callable[..., Server]) -> None:
    peer = Peer(make_server(kind, None, idle_timeout=1.0).port)
    peer.expect(220)
    for _ in range(4):
        time.sleep(0.3)
        peer.expect(250, "NOOP")  # 1.2 s in all, but never 1 s idle


@pytest.mark.parametrize("kind", KINDS)
def test_slow_client_during_data_is_dropped(kind: str, make_server: Callable[..., Server]) -> None:
    handler = MemoryHandler()
    server = make_server(
        kind, handler, idle_timeout=10.0, min_data_rate=1000.0, data_rate_grace=0.3
    )
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(354, "DATA")
    start = time.monotonic()
    with contextlib.suppress(OSError):
        for _ in range(40):  # 10 bytes every 0.05 s: 200 bytes/s < 1000 bytes/s
            peer.send(b"x" * 8 + b"\r\n")
            time.sleep(0.05)
            if b"421" in peer.buf or _readable(peer.sock):
                break
    code, lines = peer.read_reply()
    assert code == 421 and "minimum data rate" in lines[0]
    assert time.monotonic() - start < 2.0
    assert handler.messages == []


def _readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_connection_limit(kind: str, make_server: Callable[..., Server]) -> None:
    server = make_server(kind, None, max_connections=2)
    first, second = Peer(server.port), Peer(server.port)
    first.expect(220)
    second.expect(220)
    third = Peer(server.port)
    code, lines = third.read_reply()
    assert code == 421 and "Too many connections" in lines[0]
    assert third.closed()
    first.expect(221, "QUIT")
    assert first.closed()
    deadline = time.monotonic() + TIMEOUT
    while server.connections > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    fourth = Peer(server.port)
    fourth.expect(220)  # a slot is free again


@pytest.mark.parametrize("kind", KINDS)
def test_graceful_shutdown(kind: str, make_server: Callable[..., Server]) -> None:
    handler = MemoryHandler()
    server = make_server(kind, handler)
    idle, busy, stuck = Peer(server.port), Peer(server.port), Peer(server.port)
    for peer in (idle, busy, stuck):
        peer.expect(220)
        peer.expect(250, "EHLO c.example")
    for peer in (busy, stuck):
        peer.expect(250, "MAIL FROM:<a@b.example>")
        peer.expect(250, "RCPT TO:<c@d.example>")
        peer.expect(354, "DATA")
    busy.send(b"part one\r\n")
    stopper = threading.Thread(target=server.shutdown, args=(1.0,))
    stopper.start()
    try:
        # RFC 5321 §3.8: an idle client is told 421 and closed at once
        code, lines = idle.read_reply()
        assert code == 421 and lines[0].startswith("4.3.2")
        assert idle.closed()
        # a transaction in flight may finish, then gets the 421
        busy.send(b"part two\r\n.\r\n")
        busy.expect(250)
        assert busy.read_reply()[0] == 421
        # one that does not finish gets the 421 at the deadline
        assert stuck.read_reply()[0] == 421
        assert stuck.closed()
        with pytest.raises(OSError):
            Peer(server.port).expect(220)  # no longer accepting
    finally:
        stopper.join(TIMEOUT)
    assert handler.messages[0].content == b"part one\r\npart two\r\n"


# ------------------------------------------------------------------------ LMTP


class PerRecipient(Handler):
    def data(self, session: Session, envelope: Envelope) -> list[Reply]:
        return [
            Reply(code=250, lines=f"<{r}> delivered", enhanced="2.1.5")
            if r.local_part != "full"
            else Reply(code=452, lines="mailbox full", enhanced="4.2.2")
            for r in envelope.rcpt_tos
        ]


def lmtp_dialogue(peer: Peer) -> None:
    peer.expect(220)
    peer.expect(500, "EHLO c.example")  # RFC 2033 §4.1: LHLO only
    peer.expect(250, "LHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<one@d.example>")
    peer.expect(250, "RCPT TO:<full@d.example>")
    peer.expect(250, "RCPT TO:<two@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"hi\r\n.\r\n")
    # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order
    assert peer.expect(250) == ["2.1.5 <one@d.example> delivered"]
    assert peer.expect(452) == ["4.2.2 mailbox full"]
    assert peer.expect(250) == ["2.1.5 <two@d.example> delivered"]
    peer.expect(250, "NOOP")


@pytest.mark.parametrize("kind", KINDS)
def test_lmtp(kind: str, make_server: Callable[..., Server]) -> None:
    extensions = {"PIPELINING": (), "ENHANCEDSTATUSCODES": ()}
    config = Config(hostname="mx.test", lmtp=True, extensions=extensions)
    server = make_server(kind, PerRecipient(), config=config)
    lmtp_dialogue(Peer(server.port))


@pytest.mark.parametrize("kind", KINDS)
def test_lmtp_on_unix_socket(kind: str, make_server: Callable[..., Server], tmp_path: Path) -> None:
    path = str(tmp_path / "lmtp.sock")
    config = Config(hostname="mx.test", lmtp=True, extensions={"ENHANCEDSTATUSCODES": ()})
    make_server(kind, PerRecipient(), config=config, path=path)
    lmtp_dialogue(Peer(path=path))


@pytest.mark.parametrize("kind", KINDS)
def test_lmtp_default_replies(kind: str, make_server: Callable[..., Server]) -> None:
    config = Config(hostname="mx.test", lmtp=True)
    server = make_server(kind, MemoryHandler(), config=config)
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "LHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<one@d.example>")
    peer.expect(250, "RCPT TO:<two@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"hi\r\n.\r\n")
    # RFC 2033 §4.2: a reply per recipient, each naming its recipient
    assert peer.expect(250) == ["2.1.5 <one@d.example> delivered"]
    assert peer.expect(250) == ["2.1.5 <two@d.example> delivered"]


# --------------------------------------------------------------- lifecycle, logging


def test_asyncio_server_warns_when_not_closed() -> None:
    async def leak() -> None:
        server = AsyncioServer(None)
        await server.start()
        server._server.close()  # type: ignore[union-attr]  # free the socket, not the object
        with pytest.warns(ResourceWarning, match="unclosed"):
            del server
            gc.collect()

    asyncio.run(leak())


def test_sync_server_warns_when_not_closed() -> None:
    server = SyncServer(None)
    with pytest.warns(ResourceWarning, match="unclosed"):
        del server
        gc.collect()


def test_closed_servers_do_not_warn() -> None:
    async def clean() -> None:
        async with AsyncioServer(None):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        asyncio.run(clean())
        with SyncServer(None):
            pass
        gc.collect()


@pytest.mark.parametrize("kind", KINDS)
def test_traffic_log_redacts_auth(
    kind: str, make_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(hostname="mx.test", extensions=EXT, allow_plaintext_auth=True)
    server = make_server(kind, None, auth={"u": "hunter2"}, config=config, traffic_log=True)
    secret, wrong = b64(b"\0u\0hunter2"), b64(b"\0u\0hunter3")
    with caplog.at_level(logging.DEBUG, logger="sansio_smtp.traffic"):
        peer = Peer(server.port)
        peer.expect(220)
        peer.expect(250, "EHLO c.example")
        peer.expect(535, "AUTH PLAIN " + wrong)
        peer.expect(334, "AUTH LOGIN")
        peer.expect(334, b64(b"u"))
        peer.expect(235, b64(b"hunter2"))
        peer.expect(503, "AUTH PLAIN " + secret)  # RFC 4954 §4: already authenticated
        peer.expect(221, "QUIT")
        assert peer.closed()
        time.sleep(0.05)
    text = caplog.text
    assert "EHLO c.example" in text and "AUTH PLAIN <redacted>" in text
    assert secret not in text and wrong not in text
    assert "hunter2" not in text and b64(b"hunter2") not in text and b64(b"u") not in text


def test_redaction_helpers() -> None:
    assert redact_client(b"AUTH PLAIN AHUAcA==\r\n", in_auth=False) == b"AUTH PLAIN <redacted>\r\n"
    assert redact_client(b"AUTH LOGIN\r\n", in_auth=False) == b"AUTH LOGIN\r\n"
    assert redact_client(b"dXNlcg==\r\n", in_auth=True) == b"<redacted>\r\n"
    assert redact_client(b"MAIL FROM:<a@b>\r\n", in_auth=False) == b"MAIL FROM:<a@b>\r\n"
    assert redact_server(b"334 VXNlcm5hbWU6\r\n") == b"334 <redacted>\r\n"
    assert redact_server(b"250 OK\r\n") == b"250 OK\r\n"


# --------------------------------------------------------------- storage handlers


def _envelope(**fields: Any) -> Envelope:
    values: dict[str, Any] = {
        "mail_from": None,
        "peer": ("127.0.0.1", 4242),
        "helo_name": "c.example",
        "hostname": "mx.test",
        "protocol": "ESMTPS",
        "session_id": "ABC1",
        "content": b"Subject: s\r\n\r\nbody\r\n",
    }
    values.update(fields)
    env = Envelope(**values)
    return env


def test_received_header() -> None:
    # RFC 5321 §4.4: Received: from <helo> (<TCP-info>) by <host> with <proto> id <id>
    # for <rcpt>; <date>. "for" only with one recipient.
    from sansio_smtp import Address

    env = _envelope(rcpt_tos=[Address.parse("x@d.example")])
    date = "Sun, 29 Nov 2026 07:00:00 -0000"
    assert received_header(env, date=date) == (
        b"Received: from c.example ([127.0.0.1])\r\n"
        b"\tby mx.test with ESMTPS id ABC1\r\n"
        b"\tfor <x@d.example>; Sun, 29 Nov 2026 07:00:00 -0000\r\n"
    )
    env.rcpt_tos.append(Address.parse("y@d.example"))
    env.peer = ("::1", 25)
    text = received_header(env, date=date)
    assert b"for" not in text and b"([IPv6:::1])" in text
    assert text.endswith(b";\r\n\t" + date.encode() + b"\r\n")


def test_session_protocol_names() -> None:
    # RFC 3848 with-protocol keywords
    s = Session()
    assert s.protocol == "SMTP"
    s.esmtp = True
    assert s.protocol == "ESMTP"
    s.tls, s.authenticated_user = True, "u"
    assert s.protocol == "ESMTPSA"
    assert Session(lmtp=True, tls=True).protocol == "LMTPS"


@pytest.mark.parametrize("kind", KINDS)
def test_maildir_handler(kind: str, make_server: Callable[..., Server], tmp_path: Path) -> None:
    handler = MaildirHandler(tmp_path / "Maildir")
    peer = Peer(make_server(kind, handler).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    transaction(peer, b"Subject: stored\r\n\r\nline\r\n")
    box = mailbox.Maildir(tmp_path / "Maildir", create=False)
    (key,) = box.keys()
    stored = box.get_bytes(key)
    assert stored.startswith(b"Received: from c.example ([127.0.0.1])\n\tby mx.test with ESMTP id ")
    assert b"\n\tfor <c@d.example>; " in stored
    assert stored.endswith(b"\nSubject: stored\n\nline\n")


@pytest.mark.parametrize("kind", KINDS)
def test_mbox_handler(kind: str, make_server: Callable[..., Server], tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    handler = MboxHandler(path)
    peer = Peer(make_server(kind, handler).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    transaction(peer, b"Subject: one\r\n\r\nFrom here\r\n")
    transaction(peer, b"Subject: two\r\n\r\nx\r\n")
    raw = path.read_bytes()
    assert raw.startswith(b"From a@b.example ")
    assert raw.count(b"\nFrom a@b.example ") == 1  # two messages, two separators
    assert b"\n>From here\n" in raw  # mboxo escaping of a body line starting "From "
    box = mailbox.mbox(path, create=False)
    try:
        subjects = [m["Subject"] for m in box]
        assert subjects == ["one", "two"]
        assert all(m["Received"].startswith("from c.example ([127.0.0.1])") for m in box)
    finally:
        box.close()


def test_print_handler() -> None:
    out = io.StringIO()
    handler = PrintHandler(out)
    from sansio_smtp import Address

    env = _envelope(mail_from=Address.parse("a@b.example"), rcpt_tos=[Address.parse("x@d.example")])
    handler.data(Session(peer=("127.0.0.1", 1), helo_name="c.example"), env)
    assert handler.flush(5.0)  # issue 10 item 11: a writer thread prints, off the loop
    text = out.getvalue()
    assert "MAIL FROM: <a@b.example>" in text and "RCPT TO: <x@d.example>" in text
    assert "Subject: s\n\nbody" in text


@pytest.mark.parametrize("kind", KINDS)
def test_sink_handler_accepts(kind: str, make_server: Callable[..., Server]) -> None:
    peer = Peer(make_server(kind, SinkHandler()).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    transaction(peer)


def test_handler_can_be_any_object(make_server: Callable[..., Server]) -> None:
    seen: list[str] = []

    class Duck:  # not a Handler subclass: only the hooks it has are called
        def rcpt(self, session: Session, event: RcptTo) -> None:
            seen.append(str(event.forward_path))

    peer = Peer(make_server("asyncio", Duck()).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    transaction(peer)
    assert seen == ["c@d.example"]


# ------------------------------------------------------------------------ load


@contextlib.contextmanager
def _fd_limit(needed: int) -> Iterator[None]:
    """Raise the soft RLIMIT_NOFILE to ``needed`` (at most the hard limit) for a while."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the fd hard limit {hard} is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _load_client(port: int, n: int, opened: asyncio.Event, ready: list[int]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        line = await reader.readline()
        assert line.startswith(b"220 "), line
        ready.append(n)
        await opened.wait()  # hold the connection until all are open
        body = b"Subject: load %d\r\n\r\nmessage %d\r\n" % (n, n)
        writer.write(
            b"EHLO load.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r%d@d.example>\r\nDATA\r\n"
            % n
        )
        got = b""
        while got.count(b"\r\n354 ") + got.startswith(b"354 ") == 0:
            got += await reader.read(4096)
            if not got:
                raise ConnectionError("closed")
        writer.write(body + b".\r\nQUIT\r\n")
        rest = await reader.read()
        while True:
            more = await reader.read()
            if not more:
                break
            rest += more
        return got + rest
    finally:
        writer.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX fd limits")
def test_load_1000_concurrent_connections() -> None:
    # The asyncio server holds 1,000 connections at once and completes a transaction on
    # each; nothing is lost or mixed up.
    count = 1000
    handler = MemoryHandler()

    async def main() -> list[bytes]:
        # every client is 127.0.0.1: lift the per-client limit (issue 10 item 8)
        async with AsyncioServer(
            handler, max_connections=count + 10, max_connections_per_client=None
        ) as server:
            opened = asyncio.Event()
            ready: list[int] = []
            tasks = []
            for n in range(count):
                tasks.append(asyncio.create_task(_load_client(server.port, n, opened, ready)))
                if n % 100 == 99:
                    await asyncio.sleep(0.01)  # do not overrun the listen backlog
            while len(ready) < count:
                await asyncio.sleep(0.01)
            assert server.connections == count
            opened.set()
            return await asyncio.gather(*tasks)

    start = time.monotonic()
    with _fd_limit(2 * count + 200):  # both ends of every connection live in this process
        transcripts = asyncio.run(asyncio.wait_for(main(), 120))
    assert time.monotonic() - start < 120
    bye = b"221 2.0.0 localhost closing connection\r\n"
    assert all(b"\r\n250 2.0.0 " in t and t.endswith(bye) for t in transcripts)
    assert len(handler.messages) == count
    by_rcpt = {str(m.rcpt_tos[0]): m.content for m in handler.messages}
    assert by_rcpt == {
        f"r{n}@d.example": b"Subject: load %d\r\n\r\nmessage %d\r\n" % (n, n) for n in range(count)
    }


# -------------------------------------------------------------------------- CLI


class CLI:
    """``python -m sansio_smtp serve ...`` as a subprocess on an ephemeral port."""

    def __init__(self, *args: str) -> None:
        import subprocess

        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sansio_smtp", "serve", "--port", "0", *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed and flushed before serving
        assert line.startswith("listening on 127.0.0.1:"), line + self.proc.stderr.read()  # type: ignore[union-attr]
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> tuple[int, str, str]:
        import signal
        import subprocess

        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


@pytest.fixture
def cli() -> Iterator[Callable[..., CLI]]:
    running: list[CLI] = []

    def start(*args: str) -> CLI:
        running.append(CLI(*args))
        return running[-1]

    yield start
    for proc in running:
        if proc.proc.poll() is None:
            proc.stop()


def test_cli_prints_messages_by_default(cli: Callable[..., CLI]) -> None:
    import smtplib

    server = cli("--hostname", "mx.cli")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
        code, text = smtp.ehlo("c.example")
        features = text.decode().split("\n")
        assert features[0] == "mx.cli"
        # the default extension set; no STARTTLS or AUTH without their options; SIZE
        # with the default limit (issue 10 item 3)
        assert features[1:] == [
            "PIPELINING",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            "BINARYMIME",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "SIZE 33554432",
        ]
        smtp.sendmail("a@b.example", ["c@d.example"], b"Subject: cli\r\n\r\nprinted body\r\n")
    code, out, err = server.stop()
    assert code == 0, err
    assert "MAIL FROM: <a@b.example>" in out and "RCPT TO: <c@d.example>" in out
    assert "Subject: cli\n\nprinted body" in out


def test_cli_maildir_size_and_auth(cli: Callable[..., CLI], tmp_path: Path) -> None:
    import smtplib

    maildir = tmp_path / "md"
    server = cli(
        "--maildir",
        str(maildir),
        "--max-size",
        "2000",
        "--auth",
        "u:pa:ss",
        "--allow-plaintext-auth",
        "--hostname",
        "mx.cli",
    )
    with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
        smtp.ehlo("c.example")
        assert smtp.esmtp_features["size"] == "2000"  # RFC 1870 §4
        assert "PLAIN" in smtp.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("u", "pa")
        smtp.login("u", "pa:ss")  # the value splits at the FIRST colon
        smtp.sendmail("a@b.example", ["c@d.example"], b"Subject: md\r\n\r\nx\r\n")
        with pytest.raises(smtplib.SMTPSenderRefused) as info:  # RFC 1870 §6.1: 552
            smtp.sendmail("a@b.example", ["c@d.example"], b"x" * 3000)  # smtplib adds SIZE=
        assert info.value.smtp_code == 552
    assert server.stop()[0] == 0
    box = mailbox.Maildir(maildir, create=False)
    (key,) = box.keys()
    assert box.get_bytes(key).endswith(b"Subject: md\n\nx\n")


def test_cli_starttls_require_tls_and_auth(cli: Callable[..., CLI]) -> None:
    import smtplib

    certs = test_certs()
    server = cli(
        "--sink",
        "--tls-cert",
        str(certs.cert_pem),
        "--tls-key",
        str(certs.key_pem),
        "--require-tls",
        "--auth",
        "user:pw",
    )
    with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
        smtp.ehlo("c.example")
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        code, _ = smtp.mail("a@b.example")
        assert code == 530  # RFC 3207 §4: Must issue a STARTTLS command first
        smtp.rset()
        smtp.starttls(context=certs.client_context())
        smtp.ehlo("c.example")
        assert smtp.has_extn("auth") and not smtp.has_extn("starttls")
        smtp.login("user", "pw")
        smtp.sendmail("a@b.example", ["c@d.example"], b"Subject: s\r\n\r\nx\r\n")
    assert server.stop()[0] == 0


def test_cli_implicit_tls_and_lmtp(cli: Callable[..., CLI]) -> None:
    import smtplib

    certs = test_certs()
    server = cli(
        "--sink",
        "--lmtp",
        "--implicit-tls",
        "--tls-cert",
        str(certs.cert_pem),
        "--tls-key",
        str(certs.key_pem),
    )
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
        peer = Peer.__new__(Peer)
        peer.sock, peer.buf = tls, b""
        peer.expect(220)
        peer.expect(250, "LHLO c.example")
        peer.expect(221, "QUIT")
    assert server.stop()[0] == 0
    del smtplib


@pytest.mark.parametrize(
    "args",
    [
        ["--tls-cert", "x.pem"],
        ["--implicit-tls"],
        ["--require-tls"],
        ["--auth", "nocolon"],
        ["--max-size", "0"],
        ["--maildir", "a", "--mbox", "b"],
    ],
)
def test_cli_usage_errors(args: list[str]) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 2, result
    assert "listening" not in result.stdout


def test_cli_port_in_use() -> None:
    import argparse

    from sansio_smtp._cli_serve import add_arguments, run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(["--port", str(taken.getsockname()[1]), "--sink"])
        assert run(args) == 1


# ------------------------------------------------------------------ pytest plugin


pytest_plugins = ["pytester"]


def test_pytest_plugin_fixture(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", root)  # when the package is not installed
    pytester.makepyfile(
        """
        import smtplib

        def test_sends(smtp_server):
            with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
                smtp.sendmail("a@b.example", ["c@d.example"], b"Subject: t\\r\\n\\r\\nhi\\r\\n")
            (msg,) = smtp_server.wait_for(1)
            assert str(msg.rcpt_tos[0]) == "c@d.example"
            assert msg.content == b"Subject: t\\r\\n\\r\\nhi\\r\\n"

        def test_fresh_server_each_test(smtp_server):
            assert smtp_server.messages == []

        def test_factory(smtp_server_factory):
            a, b = smtp_server_factory(), smtp_server_factory(auth={"u": "p"})
            assert a.port != b.port

        def test_wait_for_times_out(smtp_server):
            import pytest
            with pytest.raises(AssertionError, match="expected 1 message"):
                smtp_server.wait_for(1, timeout=0.1)
        """
    )
    from importlib.metadata import entry_points

    # Installed with its pytest11 entry point, the plugin loads by itself (and pytest
    # refuses to register it twice); otherwise name it.
    plugins = entry_points(group="pytest11")
    installed = any(ep.value == "sansio_smtp.pytest_plugin" for ep in plugins)
    args = ["-q"] if installed else ["-q", "-p", "sansio_smtp.pytest_plugin"]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=4)


# ------------------------------------------------------------------------ relay


class UpstreamPolicy(MemoryHandler):
    def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
        if event.forward_path.local_part.startswith("bad"):
            return Reply(code=550, lines="No such user", enhanced="5.1.1")
        return None


@pytest.mark.parametrize("kind", KINDS)
def test_relay_handler(kind: str, make_server: Callable[..., Server]) -> None:
    from sansio_smtp.adapters import RelayHandler
    from sansio_smtp.adapters.client import TLSMode

    upstream_handler = UpstreamPolicy()
    upstream = make_server("asyncio", upstream_handler)
    relay = RelayHandler("127.0.0.1", upstream.port, tls=TLSMode.PLAIN, timeout=TIMEOUT)
    front = make_server(kind, relay)
    peer = Peer(front.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    body = b"Subject: relayed\r\n\r\n.dot\r\nbody\r\n"
    transaction(peer, body.replace(b"\n.", b"\n.."))  # dot-stuffed on the wire
    assert upstream_handler.wait_for(1)
    env = upstream_handler.messages[0]
    assert str(env.mail_from) == "a@b.example" and [str(r) for r in env.rcpt_tos] == ["c@d.example"]
    # RFC 5321 §4.4: the relay adds its Received: line on top, the rest is untouched
    assert env.content.startswith(b"Received: from c.example ([127.0.0.1])\r\n\tby mx.test ")
    assert env.content.endswith(b"\r\n" + body)
    # every recipient refused upstream: the client gets the upstream refusal
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<bad@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"x\r\n.\r\n")
    assert peer.expect(550) == ["5.1.1 No such user"]
    assert len(upstream_handler.messages) == 1
    assert list(front.errors) == []


def test_relay_handler_lmtp_and_unreachable(make_server: Callable[..., Server]) -> None:
    from sansio_smtp.adapters import RelayHandler
    from sansio_smtp.adapters.client import TLSMode

    upstream_handler = UpstreamPolicy()
    upstream = make_server("asyncio", upstream_handler)
    config = Config(hostname="mx.test", lmtp=True)
    relay = RelayHandler("127.0.0.1", upstream.port, tls=TLSMode.PLAIN, timeout=TIMEOUT)
    peer = Peer(make_server("asyncio", relay, config=config).port)
    peer.expect(220)
    peer.expect(250, "LHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    for rcpt in ("ok1", "bad1", "ok2"):
        peer.expect(250, f"RCPT TO:<{rcpt}@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"x\r\n.\r\n")
    # RFC 2033 §4.2: each recipient learns its own upstream outcome
    assert [peer.read_reply()[0] for _ in range(3)] == [250, 550, 250]
    # nothing listening upstream: 451 4.4.1, the client will retry
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    dead = RelayHandler("127.0.0.1", dead_port, tls=TLSMode.PLAIN, timeout=TIMEOUT)
    peer = Peer(make_server("sync", dead).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"x\r\n.\r\n")
    assert peer.expect(451)[0].startswith("4.4.1")
