"""The blocking client where the platform has no ``select.poll`` (Windows).

issue 15 "Portability": the blocking client called ``select.poll()``, which Windows lacks;
its waits go through ``selectors`` now. These tests remove ``select.poll`` (as on Windows)
and run the client against a real local server: plaintext, STARTTLS (handshake waits),
a message big enough to fill the socket buffers (write waits), and a timeout.
"""

from __future__ import annotations

import select
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sansio_smtp.adapters import (
    MemoryHandler,
    SMTPClient,
    SMTPTimeoutError,
    SyncServer,
    TLSMode,
)

from .certs import test_certs

MESSAGE = b"Subject: portable\r\n\r\nhello\r\n"
TIMEOUT = 10.0  # generous: the machine may be loaded


@pytest.fixture
def no_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 15: Windows' select module has no poll()
    monkeypatch.delattr(select, "poll")


def test_plain_session_without_poll(no_poll: None) -> None:
    # issue 15 Portability: "prove the fallback with a test that runs the client with
    # select.poll removed"
    handler = MemoryHandler()
    with SyncServer(handler, port=0) as server:
        client = SMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=TIMEOUT)
        with client:
            assert isinstance(client._selector, selectors.SelectSelector)
            assert client.noop().code == 250
            assert client.sendmail("a@example.org", ["b@example.net"], MESSAGE).ok
        assert client._selector is None  # closed with the connection
        assert handler.wait_for(1)
    assert handler.messages[0].content == MESSAGE


def test_starttls_and_big_message_without_poll(no_poll: None) -> None:
    # RFC 3207 STARTTLS: the non-blocking handshake waits for read and write readiness;
    # 4 MiB of content fills the socket buffers, so sending waits for write readiness
    certs = test_certs()
    handler = MemoryHandler()
    body = b"".join(b"line %07d of a long message\r\n" % i for i in range(140_000))
    message = b"Subject: big\r\n\r\n" + body
    assert len(message) > 4 * 1024 * 1024
    with SyncServer(handler, port=0, tls_context=certs.server_context()) as server:
        with SMTPClient(
            "127.0.0.1",
            server.port,
            tls=TLSMode.STARTTLS_REQUIRED,
            ssl_context=certs.client_context(),
            server_hostname="localhost",
            timeout=TIMEOUT,
        ) as client:
            assert isinstance(client._selector, selectors.SelectSelector)
            assert client.ssl_object is not None
            assert client.sendmail("a@example.org", ["b@example.net"], message).ok
        assert handler.wait_for(1)
    assert handler.messages[0].content == message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listener that accepts and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for sock in accepted:
            sock.close()
        listener.close()


def test_timeout_without_poll(no_poll: None, silent_server: int) -> None:
    # RFC 5321 §4.5.3.2: the greeting timeout still bounds the wait on select()
    start = time.monotonic()
    with pytest.raises(SMTPTimeoutError):
        SMTPClient("127.0.0.1", silent_server, tls=TLSMode.PLAIN, timeout=0.5).connect()
    assert time.monotonic() - start < 5


def test_poll_preferred_where_present() -> None:
    # poll() needs no descriptor of its own and has no FD_SETSIZE limit
    handler = MemoryHandler()
    expected = selectors.PollSelector if hasattr(select, "poll") else selectors.SelectSelector
    with SyncServer(handler, port=0) as server:
        client = SMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=TIMEOUT)
        with client:
            assert isinstance(client._selector, expected)
