# The replies a server gives when it has nothing special to say: one per command, with the
# codes RFC 5321 §4.3.2 lists as success for it and the RFC 3463 enhanced codes that go
# with them (LMTP's per-recipient replies: _state.lmtp_delivery_reply). Connection's
# default_reply() uses these; applications answer with their own Reply wherever they
# decide something (a rejected recipient, a quarantined message).
from __future__ import annotations

import functools
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

__all__ = ["DEFAULT_REPLIES", "default_reply_for"]

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


def _bdat_reply(event: Event, hostname: str, ehlo: Callable[[], Reply]) -> Reply:
    # RFC 3030 §2: 250 per chunk; after LAST the transaction's reply
    assert isinstance(event, Bdat)
    if event.last:
        return DEFAULT_REPLIES[EndOfMessage]
    return Reply(code=250, lines=f"{event.size} octets received", enhanced="2.0.0")


def _ehlo_reply(event: Event, hostname: str, ehlo: Callable[[], Reply]) -> Reply:
    return ehlo()


def _helo_reply(event: Event, hostname: str, ehlo: Callable[[], Reply]) -> Reply:
    return _hostname_replies(hostname)[0]


def _quit_reply(event: Event, hostname: str, ehlo: Callable[[], Reply]) -> Reply:
    return _hostname_replies(hostname)[1]


@functools.lru_cache(maxsize=16)
def _hostname_replies(hostname: str) -> tuple[Reply, Reply]:
    """The HELO and QUIT replies naming ``hostname``: a server's sessions share its name,
    so each is made once per name, not once per session (a Reply is immutable; the same
    object also lets Connection write its bytes once)."""
    helo = Reply(code=250, lines=hostname)
    quit_ = Reply(code=221, lines=f"{hostname} closing connection", enhanced="2.0.0")
    return helo, quit_


#: command type -> its default reply, when that depends on the command or the server.
_REPLY_MAKERS: Mapping[type[Event], Callable[[Event, str, Callable[[], Reply]], Reply]] = {
    Ehlo: _ehlo_reply,
    Lhlo: _ehlo_reply,
    Helo: _helo_reply,
    Quit: _quit_reply,
    Bdat: _bdat_reply,
}


def default_reply_for(event: Event, hostname: str, ehlo: Callable[[], Reply]) -> Reply:
    """The default reply to a received command; ``ehlo`` makes the EHLO/LHLO reply."""
    kind = type(event)
    make = _REPLY_MAKERS.get(kind)
    if make is not None:
        return make(event, hostname, ehlo)
    try:
        return DEFAULT_REPLIES[kind]
    except KeyError:
        raise TypeError(f"{kind.__name__} is not a command a server answers") from None
