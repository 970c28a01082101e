# I/O adapters around the sans-IO core: servers (asyncio_server, sync_server) sharing one
# handler API (handlers), and clients (the client package). Each adapter is a short
# loop: read, Connection.receive_data, drain next_event, answer, write. Timeouts, TLS and
# concurrency live here, never in the core. This package re-exports both sides.
"""I/O adapters: ``AsyncioServer`` and ``SyncServer`` with their handler API, and the
clients ``SMTPClient`` (blocking) and ``AsyncSMTPClient``.

    from sansio_smtp.adapters import AsyncioServer, MemoryHandler, SMTPClient

    handler = MemoryHandler()
    async with AsyncioServer(handler, port=0) as server:
        ...  # clients send to 127.0.0.1:server.port
    handler.messages[0].content
"""

from __future__ import annotations

from .asyncio_server import AsyncioServer, serve
from .client import (
    AsyncSMTPClient,
    OutgoingMessage,
    SendResult,
    SMTPAuthError,
    SMTPAuthNeedsTLSError,
    SMTPBatchInterrupted,
    SMTPClient,
    SMTPConnectError,
    SMTPDataError,
    SMTPError,
    SMTPHeloError,
    SMTPNotSupportedError,
    SMTPProtocolViolation,
    SMTPRecipientsRefused,
    SMTPReplyError,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
    TLSMode,
)
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
    "AsyncSMTPClient",
    "AsyncioServer",
    "Authenticator",
    "Envelope",
    "Handler",
    "MaildirHandler",
    "MboxHandler",
    "MemoryHandler",
    "OutgoingMessage",
    "PasswordTable",
    "PrintHandler",
    "Reject",
    "RelayHandler",
    "SMTPAuthError",
    "SMTPAuthNeedsTLSError",
    "SMTPBatchInterrupted",
    "SMTPClient",
    "SMTPConnectError",
    "SMTPDataError",
    "SMTPError",
    "SMTPHeloError",
    "SMTPNotSupportedError",
    "SMTPProtocolViolation",
    "SMTPRecipientsRefused",
    "SMTPReplyError",
    "SMTPSenderRefused",
    "SMTPServerDisconnected",
    "SMTPTLSError",
    "SMTPTimeoutError",
    "SendResult",
    "Session",
    "SinkHandler",
    "SyncServer",
    "TLSMode",
    "received_header",
    "serve",
]


def __getattr__(name: str) -> object:
    # The AnyIO flavour needs the optional extra sansio_smtp[anyio]: imported on first use.
    if name == "AnyioSMTPClient":
        from . import client

        return client.AnyioSMTPClient
    if name in ("AnyioServer", "serve_anyio"):
        try:
            from . import anyio_server
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"{name} needs anyio: pip install 'sansio_smtp[anyio]'") from exc
        return getattr(anyio_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
