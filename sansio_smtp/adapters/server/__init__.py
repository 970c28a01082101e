# The server side of the adapters: a handler API, the Dispatcher that drives the core for
# it, the stores and the relay, and three runtimes (blocking threads, asyncio, AnyIO), each
# a short loop serving the Dispatcher's generator of I/O requests. One responsibility per
# module:
#
#   _handler      Handler, Session, Envelope, Reject, received_header: the application API
#   _stores       Sink / Memory / Maildir / Mbox / Print handlers and the spool
#   _relay        RelayHandler: forward to a smart host through the client adapters
#   _credentials  PasswordTable, default mechanisms, the Config a server runs with,
#                 channel binding of the server certificate
#   _dispatcher   Hooks and the Dispatcher: core events -> hook calls -> replies
#   _auth_steps   the Dispatcher's AUTH exchange (SASL steps, the credential check)
#   _content_steps the Dispatcher's message content (data_chunk, data, LMTP replies)
#   _options      ServerOptions and ServerBase: options, 421 replies, per-client limits,
#                 the peer address, the deadline and write-timeout policy
#   _traffic      the opt-in traffic log, AUTH redacted
#   _limits       what the servers count under abuse (read deadline, per-client limits)
#   _blocking     SyncServer
#   _asyncio      AsyncioServer, serve: listening, shutdown, the deadline sweep
#   _asyncio_conn one asyncio connection (an asyncio.Protocol serving the Dispatcher)
#   _anyio        AnyioServer, serve_anyio
#
# The AnyIO runtime needs the optional extra sansio_smtp[anyio]: imported on first use.
"""SMTP/LMTP servers and their handler API (also exported by ``sansio_smtp.adapters``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._asyncio import AsyncioServer, serve
from ._credentials import PasswordTable
from ._handler import Authenticator, Envelope, Handler, Reject, Session, received_header
from ._options import (
    DEFAULT_AUTH_FAILURE_WINDOW,
    DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_MAX_MESSAGE_SIZE,
    ServerOptions,
)
from ._relay import RelayHandler
from ._stores import MaildirHandler, MboxHandler, MemoryHandler, PrintHandler, SinkHandler

if TYPE_CHECKING:
    from ._blocking import SyncServer

__all__ = [
    "DEFAULT_AUTH_FAILURE_WINDOW",
    "DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT",
    "DEFAULT_MAX_CONNECTIONS_PER_CLIENT",
    "DEFAULT_MAX_MESSAGE_SIZE",
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
]

_ANYIO: dict[str, str] = {"AnyioServer": "AnyioServer", "serve_anyio": "serve_anyio"}


def __getattr__(name: str) -> object:
    # The blocking server is imported on first use (an asyncio server never loads its
    # threads and socketserver); the AnyIO one too, as it needs the extra.
    if name == "SyncServer":
        from ._blocking import SyncServer

        return SyncServer
    if name in _ANYIO:
        try:
            from . import _anyio
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"{name} needs anyio: pip install 'sansio_smtp[anyio]'") from exc
        return getattr(_anyio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
