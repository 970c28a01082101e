# I/O adapters around the sans-IO core, by role: the server package (handler API,
# dispatcher, stores, relay, credentials, blocking/asyncio/AnyIO runtimes) and the client
# package (engine, errors, results, blocking/asyncio/AnyIO runtimes). Each is a short
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

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from .server import (
        AsyncioServer,
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
        ServerOptions,
        Session,
        SinkHandler,
        SyncServer,
        received_header,
        serve,
    )

#: Which side each public name lives on: both are imported on first use (PEP 562), so a
#: program that only sends mail never imports the servers, and the reverse.
_CLIENT = frozenset(
    {
        "AsyncSMTPClient",
        "OutgoingMessage",
        "SendResult",
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
        "SMTPTimeoutError",
        "SMTPTLSError",
        "TLSMode",
        "AnyioSMTPClient",
    }
)
_SERVER = frozenset(
    {
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
        "ServerOptions",
        "Session",
        "SinkHandler",
        "SyncServer",
        "received_header",
        "serve",
        "AnyioServer",
        "serve_anyio",
    }
)

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
    "ServerOptions",
    "Session",
    "SinkHandler",
    "SyncServer",
    "TLSMode",
    "received_header",
    "serve",
]


def __getattr__(name: str) -> object:
    # The AnyIO flavour needs the optional extra sansio_smtp[anyio]: its own __getattr__
    # says so when it is missing.
    if name in _CLIENT:
        from . import client

        return getattr(client, name)
    if name in _SERVER:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
