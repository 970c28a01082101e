"""sansio_smtp: SMTP/ESMTP without I/O.

A Connection per side turns received bytes into typed events and events into bytes to
send; the caller owns the sockets, the clock and the policy.

``__all__`` is the protocol: events, Connection, roles and states, errors, Config and the
codes. The value types that MailFrom/RcptTo properties return are in
``sansio_smtp.params``; the notebook widgets in ``sansio_smtp.notebook``.
"""

import importlib
from typing import TYPE_CHECKING

from . import _display
from ._address import Address
from ._connection import NEED_DATA, PAUSED, Connection
from ._connection import Sentinel as Sentinel  # importable, not in __all__: internal
from ._errors import (
    LocalProtocolError,
    PlaintextAfterStartTLS,
    RemoteProtocolError,
    SMTPProtocolError,
)
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Greeting,
    Helo,
    Help,
    InvalidCommand,
    InvalidMessage,
    Lhlo,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
)
from ._extensions import Extensions
from ._params import Params
from ._state import TRANSITIONS, Phase, Role, State, Timeout
from ._state import LmtpDelivery as LmtpDelivery  # importable, not in __all__: internal
from ._status import EnhancedStatusCode, ReplyClass
from .config import Config, LineEndingPolicy

if TYPE_CHECKING:
    from . import codes
    from ._transcript import Transcript, TranscriptEvent, TranscriptLine

# Presentation on top, loaded when first needed: the HTML/pretty renderers on the first
# display, the code catalogue and the Transcript on first use (a program that speaks SMTP
# needs none of them).
_display.on_first_use(lambda: importlib.import_module(f"{__name__}._repr"))


def __getattr__(name: str) -> object:
    if name == "codes":
        return importlib.import_module(f"{__name__}.codes")
    if name in ("Transcript", "TranscriptEvent", "TranscriptLine"):
        return getattr(importlib.import_module(f"{__name__}._transcript"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CLIENT = Role.CLIENT
SERVER = Role.SERVER

__version__ = "0.1.0"

__all__ = [
    "CLIENT",
    "NEED_DATA",
    "PAUSED",
    "SERVER",
    "TRANSITIONS",
    "Address",
    "Auth",
    "AuthResponse",
    "Bdat",
    "Command",
    "Config",
    "Connection",
    "ConnectionClosed",
    "Data",
    "Ehlo",
    "EndOfMessage",
    "EnhancedStatusCode",
    "Event",
    "Expn",
    "Extensions",
    "Greeting",
    "Helo",
    "Help",
    "InvalidCommand",
    "InvalidMessage",
    "Lhlo",
    "LineEndingPolicy",
    "LocalProtocolError",
    "MailFrom",
    "MessageData",
    "Noop",
    "Params",
    "Phase",
    "PlaintextAfterStartTLS",
    "Quit",
    "RcptTo",
    "RemoteProtocolError",
    "Reply",
    "ReplyClass",
    "Role",
    "Rset",
    "SMTPProtocolError",
    "StartTLS",
    "State",
    "Timeout",
    "Transcript",
    "TranscriptEvent",
    "TranscriptLine",
    "Vrfy",
    "__version__",
    "codes",
]
