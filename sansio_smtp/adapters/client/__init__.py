# The SMTP/ESMTP/LMTP client, one responsibility per module:
#   _errors        the SMTPError hierarchy
#   _results       SendResult, TranscriptEntry
#   _message       message shaping: OutgoingMessage, flatten_message, as_content
#   _options       TLSMode, ClientOptions, default timeouts and TIMEOUT_PHASES
#   _session       SessionEngine: the Connection, clock, transcript, replies, and session
#                  setup (greeting, EHLO/HELO, STARTTLS, AUTH), NOOP/RSET/QUIT
#   _transactions  the bookkeeping of a mail transaction's replies and its Outcome
#   _prepare       MessageEngine: the choices for a message (MAIL parameters, DATA or
#                  BDAT, its events), made before anything of it is written
#   _engine        ClientEngine: mail transactions and batches on that session
#   _base          ClientBase, AsyncClientCommands: what the runtimes share
#   _blocking, _asyncio, _anyio   the runtimes: short I/O loops serving the engine's
#                  READ / Write / HANDSHAKE requests (adapters/_io)
# One engine drives every runtime; no runtime is built on another. AnyIO is optional
# (the extra sansio_smtp[anyio]) and imported on first use of AnyioSMTPClient.
"""The SMTP clients: ``SMTPClient`` (blocking), ``AsyncSMTPClient`` (asyncio) and
``AnyioSMTPClient`` (AnyIO: asyncio or trio), with their results and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import (
    SMTPAuthError,
    SMTPAuthNeedsTLSError,
    SMTPBatchInterrupted,
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
)
from ._message import MessageSpec, OutgoingMessage, flatten_message
from ._options import TIMEOUT_PHASES, TLSMode
from ._results import SendResult, TranscriptEntry

if TYPE_CHECKING:
    from ._anyio import AnyioSMTPClient
    from ._asyncio import AsyncSMTPClient
    from ._blocking import SMTPClient

__all__ = [
    "TIMEOUT_PHASES",
    "AnyioSMTPClient",
    "AsyncSMTPClient",
    "MessageSpec",
    "OutgoingMessage",
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
    "TLSMode",
    "TranscriptEntry",
    "flatten_message",
]


def __getattr__(name: str) -> object:
    # Each runtime is imported on first use: a blocking program never imports asyncio's.
    # The AnyIO runtime needs the optional extra sansio_smtp[anyio].
    if name == "SMTPClient":
        from ._blocking import SMTPClient

        return SMTPClient
    if name == "AsyncSMTPClient":
        from ._asyncio import AsyncSMTPClient

        return AsyncSMTPClient
    if name == "AnyioSMTPClient":
        try:
            from ._anyio import AnyioSMTPClient
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"{name} needs anyio: pip install 'sansio_smtp[anyio]'") from exc
        return AnyioSMTPClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
