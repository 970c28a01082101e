# I/O adapters around the sans-IO core: servers (asyncio_server, sync_server) sharing one
# handler API (handlers), and clients (sync_client, asyncio_client). Each adapter is a short
# loop: read, Connection.receive_data, drain next_event, answer, write. Timeouts, TLS and
# concurrency live here, never in the core. This package re-exports the server side; the
# clients are imported from their modules.
"""I/O adapters: ``AsyncioServer`` and ``SyncServer`` with their handler API.

    from sansio_smtp.adapters import AsyncioServer, MemoryHandler

    handler = MemoryHandler()
    async with AsyncioServer(handler, port=0) as server:
        ...  # clients send to 127.0.0.1:server.port
    handler.messages[0].content
"""

from __future__ import annotations

from .asyncio_server import AsyncioServer, serve
from .handlers import (
    Authenticator,
    Envelope,
    Handler,
    MaildirHandler,
    MboxHandler,
    MemoryHandler,
    PasswordTable,
    PrintHandler,
    Reject,
    RelayHandler,
    Session,
    SinkHandler,
    received_header,
)
from .sync_server import SyncServer

__all__ = [
    "AsyncioServer",
    "Authenticator",
    "Envelope",
    "Handler",
    "MaildirHandler",
    "MboxHandler",
    "MemoryHandler",
    "PasswordTable",
    "PrintHandler",
    "Reject",
    "RelayHandler",
    "Session",
    "SinkHandler",
    "SyncServer",
    "received_header",
    "serve",
]
