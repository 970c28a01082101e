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

import importlib
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


#: The names found in the server package (the rest of __all__ is the client's): looked up
#: without importing the client, so a server never loads the clients (nor the email
#: package their messages use). tests/test_server_package.py holds it to both packages.
_SERVER_NAMES = frozenset(
    (
        "AnyioServer",
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
        "serve_anyio",
    )
)


def __getattr__(name: str) -> object:
    # Each side is imported on first use (PEP 562): a program that only sends mail never
    # imports the servers, one that serves never imports the clients. Each side's own
    # __getattr__ loads its runtimes (AnyIO's needs the extra sansio_smtp[anyio] and says
    # so).
    if name not in _SERVER_NAMES:
        client = importlib.import_module(f"{__name__}.client")
        if name in client.__all__:
            return getattr(client, name)
    server = importlib.import_module(f"{__name__}.server")
    try:
        return getattr(server, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
