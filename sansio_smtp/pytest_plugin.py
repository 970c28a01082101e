# pytest plugin: an in-process SMTP server that collects what it receives, for testing code
# that sends mail. Registered through the ``pytest11`` entry point (or ``-p
# sansio_smtp.pytest_plugin``).
#
# Strategy: the blocking SyncServer on 127.0.0.1, an ephemeral port and a background thread,
# so the fixture works in plain and in async tests alike and needs no event loop; a
# MemoryHandler collects the messages. Rules: every wait is bounded; the server is shut
# down when the test ends, whatever happened.
"""pytest fixtures for testing code that sends mail.

    def test_signup_sends_mail(smtp_server):
        send_welcome_mail(host=smtp_server.host, port=smtp_server.port)
        (message,) = smtp_server.wait_for(1)
        assert message.rcpt_tos[0].local_part == "new.user"
        assert b"Welcome" in message.content

``smtp_server_factory(**options)`` starts more servers, with SyncServer options (for
instance ``tls_context=...``, ``auth={"user": "password"}``, ``config=Config(...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .adapters.server import Envelope, MemoryHandler, SyncServer
from .config import Config

__all__ = ["SMTPTestServer", "smtp_server", "smtp_server_factory"]

#: what the fixture's server advertises unless a Config is given
TEST_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "DSN": (),
    "ENHANCEDSTATUSCODES": (),
}


class SMTPTestServer:
    """A running server and what it received.

    - ``host``, ``port``: where to send; ``messages``: an Envelope per accepted message
      (``mail_from``, ``rcpt_tos``, ``content``...), in arrival order.
    - ``wait_for(count, timeout=5)``: wait until ``count`` messages have arrived and
      return them (raises AssertionError on timeout); ``clear()`` forgets them.
    - ``server``: the SyncServer itself (``errors`` lists handler/connection errors).
    """

    def __init__(self, server: SyncServer, handler: MemoryHandler) -> None:
        self.server = server
        self.handler = handler
        self.host = "127.0.0.1"
        self.port = server.port

    @property
    def messages(self) -> list[Envelope]:
        return self.handler.messages

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Envelope]:
        if not self.handler.wait_for(count, timeout):
            raise AssertionError(
                f"expected {count} message(s) within {timeout} s, got {len(self.handler.messages)}"
            )
        return list(self.handler.messages)

    def clear(self) -> None:
        self.handler.messages.clear()

    def close(self) -> None:
        self.server.shutdown(timeout=2.0)

    def __repr__(self) -> str:
        return f"<SMTPTestServer {self.host}:{self.port} messages={len(self.messages)}>"


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SMTPTestServer]]:
    """Start SMTPTestServers with SyncServer options; all are shut down after the test."""
    servers: list[SMTPTestServer] = []

    def start(**options: Any) -> SMTPTestServer:
        handler = MemoryHandler()
        options.setdefault("config", Config(hostname="smtp.test", extensions=TEST_EXTENSIONS))
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        server = SyncServer(handler, **options).start()
        test_server = SMTPTestServer(server, handler)
        servers.append(test_server)
        return test_server

    try:
        yield start
    finally:
        for test_server in servers:
            test_server.close()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SMTPTestServer]) -> SMTPTestServer:
    """An SMTP server on 127.0.0.1 (ephemeral port) collecting every message it accepts."""
    return smtp_server_factory()
