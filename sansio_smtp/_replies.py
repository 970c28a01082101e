# The replies a server gives when it has nothing special to say: one per command, with the
# codes RFC 5321 §4.3.2 lists as success for it and the RFC 3463 enhanced codes that go
# with them. Connection.default_reply() uses these; applications answer with their own
# Reply wherever they decide something (a rejected recipient, a quarantined message).
from __future__ import annotations

from collections.abc import Callable, Mapping

from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
)
from ._state import LmtpDelivery
from ._util import quote

__all__ = ["DEFAULT_REPLIES", "default_reply_for"]

# A forward path shown in a reply as it is up to this length (RFC 5321 §4.5.3.1.3: a path
# is at most 256 octets), quoted and cut beyond, so the reply line stays within 512.
_MAX_SHOWN_PATH = 256

#: command type -> its default reply (RFC 5321 §4.3.2).
DEFAULT_REPLIES: Mapping[type[Event], Reply] = {
    MailFrom: Reply(code=250, lines="Sender OK", enhanced="2.1.0"),
    RcptTo: Reply(code=250, lines="Recipient OK", enhanced="2.1.5"),
    Data: Reply(code=354, lines="End data with <CR><LF>.<CR><LF>"),
    EndOfMessage: Reply(code=250, lines="OK: message accepted", enhanced="2.0.0"),
    Rset: Reply(code=250, lines="OK", enhanced="2.0.0"),
    Noop: Reply(code=250, lines="OK", enhanced="2.0.0"),
    # RFC 5321 §3.5.3: 252 when the server will not verify but will try to deliver
    Vrfy: Reply(code=252, lines="Cannot VRFY user, but will accept message", enhanced="2.5.2"),
    # RFC 5321 §3.5.2: a server may refuse to expand lists
    Expn: Reply(code=502, lines="EXPN not available", enhanced="5.5.1"),
    Help: Reply(code=214, lines="See RFC 5321", enhanced="2.0.0"),
    # RFC 3207 §4
    StartTLS: Reply(code=220, lines="Ready to start TLS", enhanced="2.0.0"),
    # No credential check here: AUTH needs the application (see sansio_smtp.sasl).
    Auth: Reply(code=535, lines="Authentication credentials invalid", enhanced="5.7.8"),
    AuthResponse: Reply(code=535, lines="Authentication credentials invalid", enhanced="5.7.8"),
}


def default_reply_for(event: Event, hostname: str, ehlo: Callable[[], Reply]) -> Reply:
    if isinstance(event, (Ehlo, Lhlo)):
        return ehlo()
    if isinstance(event, Bdat):
        # RFC 3030 §2: 250 per chunk; after LAST the transaction's reply
        if event.last:
            return DEFAULT_REPLIES[EndOfMessage]
        return Reply(code=250, lines=f"{event.size} octets received", enhanced="2.0.0")
    if isinstance(event, LmtpDelivery):
        # RFC 2033 §4.2: one reply per recipient after the message; a message refused as
        # a whole is refused for each of them
        if event.refusal is not None:
            return event.refusal
        path = str(event.recipient.forward_path)
        if len(path.encode("utf-8", "replace")) > _MAX_SHOWN_PATH:  # keep the line in bounds
            path = quote(path, _MAX_SHOWN_PATH)
        return Reply(code=250, lines=f"<{path}> delivered", enhanced="2.1.5")
    if isinstance(event, Helo):
        return Reply(code=250, lines=hostname)
    if isinstance(event, Quit):
        return Reply(code=221, lines=f"{hostname} closing connection", enhanced="2.0.0")
    try:
        return DEFAULT_REPLIES[type(event)]
    except KeyError:
        raise TypeError(f"{type(event).__name__} is not a command a server answers") from None
