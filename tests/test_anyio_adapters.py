"""The AnyIO adapters (AnyioServer, AnyioSMTPClient) on both AnyIO backends, against each
other, against stdlib smtplib, and against the asyncio and blocking servers."""

from __future__ import annotations

import functools
import importlib.util
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

anyio = pytest.importorskip("anyio")

from sansio_smtp._events import RcptTo, Reply  # noqa: E402
from sansio_smtp.adapters import (  # noqa: E402
    AsyncioServer,
    Envelope,
    MemoryHandler,
    Reject,
    SMTPRecipientsRefused,
    SMTPTimeoutError,
    SMTPTLSError,
    SyncServer,
    TLSMode,
)
from sansio_smtp.adapters.client._anyio import AnyioSMTPClient  # noqa: E402
from sansio_smtp.adapters.server import Session  # noqa: E402
from sansio_smtp.adapters.server._anyio import AnyioServer, serve_anyio  # noqa: E402

from .certs import test_certs  # noqa: E402

HAVE_TRIO = importlib.util.find_spec("trio") is not None

pytestmark = pytest.mark.anyio

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: test\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".a line that starts with a dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"Bye.\r\n"
)
LIMIT = 10.0  # seconds any one test may take


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param(
            "trio",
            id="trio",
            marks=pytest.mark.skipif(not HAVE_TRIO, reason="trio is not installed"),
        ),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Recorder(MemoryHandler):
    """Refuses nobody@ (550 5.1.1); async data hook; remembers each session's TLS state."""

    def __init__(self) -> None:
        super().__init__()
        self.tls: list[bool] = []
        self.disconnects = 0

    def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
        if str(event.forward_path).startswith("nobody@"):
            raise Reject(550, "No such user", "5.1.1")
        return None

    async def data(self, session: Session, envelope: Envelope) -> Reply | None:  # type: ignore[override]
        await anyio.sleep(0)  # a real await, on whichever backend runs
        self.tls.append(session.tls)
        return super().data(session, envelope)

    def disconnect(self, session: Session) -> None:
        self.disconnects += 1


@pytest.fixture
async def server_factory() -> AsyncIterator[functools.partial[AnyioServer]]:
    async with anyio.create_task_group() as tg:
        servers: list[AnyioServer] = []

        async def start(handler: object, **options: object) -> AnyioServer:
            server: AnyioServer = await tg.start(functools.partial(serve_anyio, handler, **options))
            servers.append(server)
            return server

        yield functools.partial(start)
        with anyio.fail_after(LIMIT):
            for server in servers:
                await server.shutdown(timeout=2.0)


async def test_plain_transaction_byte_identical_with_refused_recipient(
    server_factory: functools.partial[AnyioServer],
) -> None:
    handler = Recorder()
    server = await server_factory(handler)
    assert server.port > 0
    with anyio.fail_after(LIMIT):
        async with AnyioSMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN) as client:
            result = await client.sendmail(
                "alice@example.org", ["bob@example.net", "nobody@example.net"], MESSAGE
            )
            assert list(result.accepted) == ["bob@example.net"]
            assert list(result.refused) == ["nobody@example.net"]
            refusal = result.refused["nobody@example.net"]
            assert refusal.code == 550 and str(refusal.enhanced) == "5.1.1"
            assert result.data_reply is not None and result.data_reply.code == 250
            # every recipient refused: an exception carrying the result
            with pytest.raises(SMTPRecipientsRefused):
                await client.sendmail("alice@example.org", "nobody@example.net", MESSAGE)
            assert (await client.noop()).code == 250
        assert not client.connected
    (msg,) = handler.messages
    assert msg.content == MESSAGE
    assert str(msg.mail_from) == "alice@example.org"
    assert [str(r) for r in msg.rcpt_tos] == ["bob@example.net"]
    assert handler.tls == [False]
    assert list(server.errors) == []
    with anyio.fail_after(LIMIT):
        while handler.disconnects < 1:
            await anyio.sleep(0.01)


async def test_send_message_and_two_clients_at_once(
    server_factory: functools.partial[AnyioServer],
) -> None:
    handler = Recorder()
    server = await server_factory(handler)

    async def one(n: int) -> None:
        msg = EmailMessage()
        msg["From"] = "alice@example.org"
        msg["To"] = f"bob{n}@example.net"
        msg["Subject"] = f"n{n}"
        msg.set_content("hello\n")
        async with AnyioSMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN) as client:
            result = await client.send_message(msg)
            assert list(result.accepted) == [f"bob{n}@example.net"]

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 1)
            tg.start_soon(one, 2)
    assert sorted(str(m.rcpt_tos[0]) for m in handler.messages) == [
        "bob1@example.net",
        "bob2@example.net",
    ]


async def test_starttls(server_factory: functools.partial[AnyioServer]) -> None:
    certs = test_certs()
    handler = Recorder()
    server = await server_factory(handler, tls_context=certs.server_context())
    with anyio.fail_after(LIMIT):
        async with AnyioSMTPClient(
            "localhost",
            server.port,
            tls=TLSMode.STARTTLS_REQUIRED,
            ssl_context=certs.client_context(),
        ) as client:
            assert client.tls_active
            assert client.ssl_object is not None and client.ssl_object.version()
            result = await client.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
            assert result.ok
    (msg,) = handler.messages
    assert msg.content == MESSAGE
    assert msg.protocol == "ESMTPS"
    assert handler.tls == [True]


async def test_starttls_certificate_checked(
    server_factory: functools.partial[AnyioServer],
) -> None:
    certs = test_certs()
    server = await server_factory(Recorder(), tls_context=certs.server_context())
    with anyio.fail_after(LIMIT), pytest.raises(SMTPTLSError):
        # the default context does not trust the test CA
        async with AnyioSMTPClient(
            "localhost", server.port, tls=TLSMode.STARTTLS_REQUIRED, ssl_context=None
        ):
            pass


async def test_implicit_tls(server_factory: functools.partial[AnyioServer]) -> None:
    certs = test_certs()
    handler = Recorder()
    ctx = certs.server_context()
    server = await server_factory(handler, tls_context=ctx, implicit_tls=True)
    with anyio.fail_after(LIMIT):
        async with AnyioSMTPClient(
            "localhost", server.port, tls=TLSMode.IMPLICIT, ssl_context=certs.client_context()
        ) as client:
            assert client.tls_active
            await client.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
    assert handler.tls == [True]


async def test_smtplib_to_anyio_server(server_factory: functools.partial[AnyioServer]) -> None:
    certs = test_certs()
    handler = Recorder()
    server = await server_factory(handler, tls_context=certs.server_context())

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=LIMIT) as smtp:
            smtp.starttls(context=certs.client_context())  # the cert names 127.0.0.1 too
            return smtp.sendmail(
                "alice@example.org", ["bob@example.net", "nobody@example.net"], MESSAGE
            )

    with anyio.fail_after(LIMIT):
        refused = await anyio.to_thread.run_sync(send)
    assert refused == {"nobody@example.net": (550, b"5.1.1 No such user")}
    (msg,) = handler.messages
    assert msg.content == MESSAGE
    assert handler.tls == [True]


async def test_plaintext_after_starttls_is_dropped(
    server_factory: functools.partial[AnyioServer],
) -> None:
    certs = test_certs()
    server = await server_factory(Recorder(), tls_context=certs.server_context())
    with anyio.fail_after(LIMIT):
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        async with stream:
            await stream.receive()  # 220
            await stream.send(b"EHLO x\r\n")
            while not (await _read_until(stream, b"\r\n")).startswith(b"250 "):
                pass  # the EHLO reply's lines
            # RFC 3207 §4.2 / CVE-2011-0411: a command injected behind STARTTLS
            await stream.send(b"STARTTLS\r\nRSET\r\n")
            assert (await _read_until(stream, b"\r\n")).startswith(b"220 ")
            # the server closes instead of starting TLS (or answering RSET in clear)
            assert await _read_until(stream, b"\r\n") == b""


async def test_idle_timeout_says_421(server_factory: functools.partial[AnyioServer]) -> None:
    server = await server_factory(Recorder(), idle_timeout=0.3)
    with anyio.fail_after(LIMIT):
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        async with stream:
            assert (await _read_until(stream, b"\r\n")).startswith(b"220 ")
            goodbye = await _read_until(stream, b"\r\n")
            assert goodbye.startswith(b"421 4.4.2 "), goodbye
            assert await _read_until(stream, b"\r\n") == b""


async def test_graceful_shutdown(server_factory: functools.partial[AnyioServer]) -> None:
    server = await server_factory(Recorder())
    with anyio.fail_after(LIMIT):
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        async with stream:
            assert (await _read_until(stream, b"\r\n")).startswith(b"220 ")
            assert server.connections == 1
            await server.shutdown(timeout=5.0)
            goodbye = await _read_until(stream, b"\r\n")
            assert goodbye.startswith(b"421 4.3.2 "), goodbye
        assert server.connections == 0
        with pytest.raises(OSError):
            await anyio.connect_tcp("127.0.0.1", server.port)


async def test_async_context_manager_server() -> None:
    handler = Recorder()
    with anyio.fail_after(LIMIT):
        async with AnyioServer(handler) as server:  # noqa: SIM117 - the client needs the port
            async with AnyioSMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN) as c:
                await c.sendmail("a@example.org", "b@example.net", MESSAGE)
    assert [m.content for m in handler.messages] == [MESSAGE]


async def test_client_read_timeout() -> None:
    # a server that accepts but never greets
    with anyio.fail_after(LIMIT):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:

            async def silent(stream: anyio.abc.SocketStream) -> None:
                async with stream:
                    await anyio.sleep(LIMIT)

            tg.start_soon(listener.serve, silent)
            client = AnyioSMTPClient("127.0.0.1", port, tls=TLSMode.PLAIN, timeout=0.3)
            with pytest.raises(SMTPTimeoutError) as info:
                await client.connect()
            assert info.value.phase == "greeting" or "greeting" in str(info.value)
            assert not client.connected
            tg.cancel_scope.cancel()


async def test_client_to_sync_server() -> None:
    handler = MemoryHandler()
    with SyncServer(handler, port=0) as server, anyio.fail_after(LIMIT):
        async with AnyioSMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN) as client:
            result = await client.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
            assert result.ok
    assert [m.content for m in handler.messages] == [MESSAGE]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_client_to_asyncio_server_with_starttls(anyio_backend: str) -> None:
    certs = test_certs()
    handler = MemoryHandler()
    with anyio.fail_after(LIMIT):
        async with AsyncioServer(handler, tls_context=certs.server_context()) as server:  # noqa: SIM117
            async with AnyioSMTPClient(
                "localhost",
                server.port,
                tls=TLSMode.STARTTLS_REQUIRED,
                ssl_context=certs.client_context(),
            ) as client:
                assert client.tls_active
                await client.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
    (msg,) = handler.messages
    assert msg.content == MESSAGE and msg.protocol == "ESMTPS"


async def _read_until(stream: anyio.abc.ByteStream, end: bytes) -> bytes:
    """Bytes up to and including ``end`` (one reply line), or what came before EOF."""
    data = b""
    while end not in data:
        try:
            chunk = await stream.receive(1)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return data
        data += chunk
    return data
