"""sansio_smtp: SMTP/ESMTP without I/O.

A Connection per side turns received bytes into typed events and events into bytes to
send; the caller owns the sockets, the clock and the policy.
"""

from ._address import Address
from ._connection import NEED_DATA, PAUSED, Connection, Sentinel
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
from ._state import TRANSITIONS, LmtpDelivery, Phase, Role, State, Timeout
from ._status import EnhancedStatusCode, ReplyClass
from ._transcript import Transcript, TranscriptEvent, TranscriptLine
from ._util import (
    LocalProtocolError,
    PlaintextAfterStartTLS,
    RemoteProtocolError,
    SMTPProtocolError,
)
from .config import Config, LineEndingPolicy

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
    "LmtpDelivery",
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
    "Sentinel",
    "StartTLS",
    "State",
    "Timeout",
    "Transcript",
    "TranscriptEvent",
    "TranscriptLine",
    "Vrfy",
    "__version__",
]
